//! `orbwatch export blocklist` end to end: the built binary on feed files,
//! hunt findings and previous exports in a temporary folder.

use std::path::{Path, PathBuf};
use std::process::Output;

#[path = "support/cli.rs"]
mod cli;
use cli::{bin, ok, stderr, stdout};

fn run(dir: &Path, args: &[&str]) -> Output {
    bin()
        .current_dir(dir)
        .arg("--db")
        .arg(dir.join("absent.db"))
        .args(args)
        .output()
        .expect("run orbwatch")
}

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn fixture() -> String {
    repo("crates/orbwatch-blocklist/tests/data/small-feed.csv")
        .display()
        .to_string()
}

const TARGETS: [&str; 11] = [
    "nftables",
    "ipset",
    "iptables",
    "pf",
    "suricata-iprep",
    "suricata-dataset",
    "suricata-rules",
    "zeek-intel",
    "plain",
    "mikrotik",
    "csv",
];

#[test]
fn guard_feed_exports_nothing_and_names_every_refused_entry() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("guard.txt");
    std::fs::write(&feed, "10.0.0.0/8\n192.168.1.1\n8.8.8.8\n44.0.0.0/8\n").unwrap();
    let o = run(
        dir.path(),
        &[
            "export",
            "blocklist",
            "--target",
            "plain",
            "--feed",
            "guard.txt",
            "-o",
            "out.txt",
        ],
    );
    ok(&o);
    let err = stderr(&o);
    for line in [
        "refused 10.0.0.0/8 (from guard:1): wider than /16 (--max-prefix; --force-wide allows it); inside private network 10.0.0.0/8 (RFC 1918)",
        "refused 192.168.1.1 (from guard:2): inside private network 192.168.0.0/16 (RFC 1918)",
        "refused 8.8.8.8 (from guard:3): inside default allowlist:9 (Google Public DNS)",
        "refused 44.0.0.0/8 (from guard:4): wider than /16 (--max-prefix; --force-wide allows it)",
        "warning: the selection is empty",
    ] {
        assert!(err.contains(line), "missing `{line}` in:\n{err}");
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
        ""
    );
    // --internal and an allowlist file are guards too.
    std::fs::write(&feed, "45.1.0.1\n45.2.0.1\n45.3.0.1\n").unwrap();
    std::fs::write(dir.path().join("allow.txt"), "45.2.0.0/24 # partner VPN\n").unwrap();
    let o = run(
        dir.path(),
        &[
            "export",
            "blocklist",
            "--target",
            "plain",
            "--feed",
            "guard.txt",
            "--internal",
            "45.1.0.0/16",
            "--allowlist",
            "allow.txt",
        ],
    );
    assert_eq!(ok(&o), "45.3.0.1\n");
    let err = stderr(&o);
    assert!(
        err.contains(
            "refused 45.1.0.1 (from guard:1): inside internal network 45.1.0.0/16 (--internal)"
        ),
        "{err}"
    );
    assert!(
        err.contains("refused 45.2.0.1 (from guard:2): inside allow.txt:1 (partner VPN)"),
        "{err}"
    );
}

#[test]
fn certfr_list_exports_161_entries() {
    let dir = tempfile::tempdir().unwrap();
    let feed = repo("examples/feeds/CERTFR-2021-IOC-003-IOC.csv");
    let o = run(
        dir.path(),
        &[
            "export",
            "blocklist",
            "--target",
            "plain",
            "--feed",
            feed.to_str().unwrap(),
        ],
    );
    let out = ok(&o);
    assert_eq!(out.lines().count(), 161);
    assert!(
        stderr(&o).contains("161 entries (161 IPv4, 0 IPv6) from 161 selected of 161 looked at")
    );
}

#[test]
fn only_feed_selects_by_feed_name() {
    let dir = tempfile::tempdir().unwrap();
    let certfr = repo("examples/feeds/CERTFR-2021-IOC-003-IOC.csv");
    let f = fixture();
    let base = [
        "export",
        "blocklist",
        "--target",
        "plain",
        "--feed",
        certfr.to_str().unwrap(),
        "--feed",
        &f,
        "--at",
        "2026-06-15",
    ];
    let both = ok(&run(dir.path(), &base));
    assert_eq!(both.lines().count(), 161 + 1);
    let mut args = base.to_vec();
    args.extend(["--only-feed", "small-feed"]);
    // On 2026-06-15 only 198.100.7.0/24 (open-ended) is valid in the
    // fixture; 10.1.2.3 and 8.8.8.8 are refused by the guard.
    assert_eq!(ok(&run(dir.path(), &args)), "198.100.7.0/24\n");
}

/// Indicators from the store (no --feed): `feed add` then export.
#[test]
fn exports_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let f = fixture();
    let add = bin()
        .args([
            "--db",
            db.to_str().unwrap(),
            "feed",
            "add",
            &f,
            "--name",
            "small",
        ])
        .output()
        .unwrap();
    ok(&add);
    let o = bin()
        .args([
            "--db",
            db.to_str().unwrap(),
            "export",
            "blocklist",
            "--target",
            "plain",
            "--at",
            "2026-02-01",
            "--min-confidence",
            "80",
        ])
        .output()
        .unwrap();
    // Confidence >= 80 leaves 45.33.10.10 (40) and the IPv6 rows (75) out.
    assert_eq!(
        ok(&o),
        "1.1.1.0\n1.1.1.4/30\n1.1.1.8/29\n1.1.1.16/28\n1.1.1.32/27\n1.1.1.64/26\n1.1.1.128/25\n198.100.6.0/23\n203.0.114.1\n203.0.114.2/31\n"
    );
    assert!(
        stderr(&o).contains("refused 10.1.2.3 (from small:11)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn reruns_are_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture();
    for target in ["nftables", "ipset", "mikrotik", "csv"] {
        let mut outs = Vec::new();
        for n in 0..2 {
            let name = format!("{target}.{n}");
            ok(&run(
                dir.path(),
                &[
                    "export",
                    "blocklist",
                    "--target",
                    target,
                    "--feed",
                    &f,
                    "--at",
                    "2026-02-01T00:00:00Z",
                    "-o",
                    &name,
                ],
            ));
            outs.push(std::fs::read(dir.path().join(&name)).unwrap());
        }
        assert_eq!(outs[0], outs[1], "{target}");
    }
    // Without --at, entries without an end of validity have no timeout:
    // the file does not depend on the clock at all.
    let feed = repo("examples/feeds/CERTFR-2021-IOC-003-IOC.csv");
    let a = ok(&run(
        dir.path(),
        &[
            "export",
            "blocklist",
            "--target",
            "nftables",
            "--feed",
            feed.to_str().unwrap(),
        ],
    ));
    let b = ok(&run(
        dir.path(),
        &[
            "export",
            "blocklist",
            "--target",
            "nftables",
            "--feed",
            feed.to_str().unwrap(),
        ],
    ));
    assert_eq!(a, b);
    assert!(!a.contains("reference time"), "no time of now in the file");
}

#[test]
fn diff_reports_added_removed_and_expired_and_dry_run_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture();
    std::fs::write(dir.path().join("gone.txt"), "45.77.0.1\n").unwrap();
    std::fs::write(dir.path().join("new.txt"), "45.78.0.1\n").unwrap();
    for target in [
        "plain",
        "nftables",
        "ipset",
        "iptables",
        "csv",
        "mikrotik",
        "zeek-intel",
        "pf",
        "suricata-rules",
    ] {
        // February 1st, with gone.txt: the previous export.
        ok(&run(
            dir.path(),
            &[
                "export",
                "blocklist",
                "--target",
                target,
                "--feed",
                &f,
                "--feed",
                "gone.txt",
                "--at",
                "2026-02-01",
                "-o",
                "prev",
            ],
        ));
        let prev = std::fs::read(dir.path().join("prev")).unwrap();
        // March 2nd, gone.txt replaced by new.txt: 1.1.1.0/24 (less the
        // Cloudflare resolvers), 45.33.10.10, 203.0.114.1-3 and the /48
        // (but 2a03:2880:f12f::1, valid until April) expired.
        let o = run(
            dir.path(),
            &[
                "export",
                "blocklist",
                "--target",
                target,
                "--feed",
                &f,
                "--feed",
                "new.txt",
                "--at",
                "2026-03-02",
                "--diff",
                "prev",
                "--dry-run",
                "-o",
                "next",
            ],
        );
        let out = ok(&o);
        assert!(!dir.path().join("next").exists(), "--dry-run wrote a file");
        assert_eq!(std::fs::read(dir.path().join("prev")).unwrap(), prev);
        let lines: Vec<&str> = out.lines().collect();
        if target == "suricata-rules" {
            // The dataset never held the /48 (too wide to expand), but
            // now holds 2a03:2880:f12f::1 on its own.
            assert_eq!(
                lines[0],
                "diff against prev: 2 added, 1 removed, 10 expired"
            );
            assert_eq!(
                lines[1..3],
                ["added 45.78.0.1/32", "added 2a03:2880:f12f::1/128"]
            );
            continue;
        }
        // The /48 less one address is 80 prefixes (one per bit below /48;
        // Python's address_exclude agrees), 1.1.1.0/24 less three is 7,
        // plus 45.33.10.10, 203.0.114.1 and 203.0.114.2/31: 90.
        assert_eq!(
            lines[0], "diff against prev: 1 added, 1 removed, 90 expired",
            "{target}"
        );
        assert_eq!(lines.len(), 93, "{target}");
        for want in [
            "added 45.78.0.1/32",
            "removed 45.77.0.1/32",
            "expired 1.1.1.0/32",
            "expired 1.1.1.128/25",
            "expired 45.33.10.10/32",
            "expired 203.0.114.1/32",
            "expired 203.0.114.2/31",
            "expired 2a03:2880:f12f::/128",
            "expired 2a03:2880:f12f::2/127",
            "expired 2a03:2880:f12f:8000::/49",
        ] {
            assert!(lines.contains(&want), "{target}: no `{want}` in {lines:?}");
        }
        assert!(!out.contains("2a03:2880:f12f::1/128"), "{target}");
    }
}

#[test]
fn empty_selection_writes_a_valid_empty_file_for_every_target() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("none.txt");
    std::fs::write(&feed, "10.9.9.9\n").unwrap();
    for target in TARGETS {
        let o = run(
            dir.path(),
            &[
                "export",
                "blocklist",
                "--target",
                target,
                "--feed",
                "none.txt",
                "-o",
                target,
            ],
        );
        ok(&o);
        assert!(
            stderr(&o).contains("warning: the selection is empty"),
            "{target}"
        );
    }
    // Spot checks; the real tools load these in orbwatch-blocklist's tests.
    let nft = std::fs::read_to_string(dir.path().join("nftables")).unwrap();
    assert!(nft.contains("set blocklist_v4") && !nft.contains("elements"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("plain")).unwrap(),
        ""
    );
    assert!(dir.path().join("suricata-iprep.categories").exists());
    assert!(dir.path().join("suricata-iprep.list").exists());
    assert!(dir.path().join("suricata-rules.lst").exists());
    assert!(dir.path().join("iptables.v6").exists());
    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn unknown_target_lists_the_valid_ones() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), &["export", "blocklist", "--target", "cisco"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("[possible values: nftables, ipset, iptables, pf, suricata-iprep, suricata-dataset, suricata-rules, zeek-intel, plain, mikrotik, csv]"),
        "{err}"
    );
}

/// `--sighted` with real `hunt --format jsonl` output: the demo log holds
/// four CERT-FR addresses (examples/README.md). The oracle finds them by
/// plain text search of the log for every CERT-FR address.
#[test]
fn sighted_exports_only_what_hunt_found() {
    let dir = tempfile::tempdir().unwrap();
    let feed = repo("examples/feeds/CERTFR-2021-IOC-003-IOC.csv");
    let log = repo("examples/logs/demo-auth.log");
    let hunt = run(
        dir.path(),
        &[
            "hunt",
            "--feed",
            feed.to_str().unwrap(),
            "--year",
            "2021",
            "--format",
            "jsonl",
            log.to_str().unwrap(),
        ],
    );
    let findings = stdout(&hunt);
    assert!(
        hunt.status.code() == Some(0) || hunt.status.code() == Some(1),
        "{}",
        stderr(&hunt)
    );
    std::fs::write(dir.path().join("f.jsonl"), &findings).unwrap();

    let log_text = std::fs::read_to_string(&log).unwrap();
    let csv = std::fs::read_to_string(&feed).unwrap();
    let mut want: Vec<std::net::Ipv4Addr> = csv
        .lines()
        .skip(1)
        .filter_map(|l| l.rsplit(',').nth(1)?.parse().ok())
        .filter(|a: &std::net::Ipv4Addr| {
            let s = a.to_string();
            log_text.match_indices(&s).any(|(i, _)| {
                let before = log_text[..i].chars().last();
                let after = log_text[i + s.len()..].chars().next();
                !before.is_some_and(|c| c.is_ascii_digit() || c == '.')
                    && !after.is_some_and(|c| c.is_ascii_digit() || c == '.')
            })
        })
        .collect();
    want.sort();
    assert_eq!(want.len(), 4);

    let o = run(
        dir.path(),
        &[
            "export",
            "blocklist",
            "--target",
            "plain",
            "--feed",
            feed.to_str().unwrap(),
            "--sighted",
            "--findings",
            "f.jsonl",
            "--at",
            "2021-08-01",
        ],
    );
    let got: Vec<std::net::Ipv4Addr> = ok(&o).lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(got, want);
    assert!(
        stderr(&o).contains("157 not sighted in the findings (--sighted)"),
        "{}",
        stderr(&o)
    );
}

/// `--from-findings`: sources of behaviour findings at or above
/// --min-score, listed for --ttl after the finding's last_seen.
#[test]
fn from_findings_lists_sources_with_a_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let finding = |id: &str, kind: &str, src: &str, score: u8, last: &str, sources: &str| {
        format!(
            r#"{{"id":"{id}","kind":"{kind}","first_seen":"2026-01-30T00:00:00Z","last_seen":"{last}","count":10,"src_ip":"{src}","dst_ip":null,"score":{score},"sources":[{sources}],"evidence":[],"evidence_total":0}}"#
        )
    };
    let lines = [
        finding(
            "a",
            "port_scan",
            "45.9.9.9",
            80,
            "2026-01-31T12:00:00Z",
            r#""45.9.9.10""#,
        ),
        finding(
            "b",
            "brute_force",
            "45.9.9.20",
            30,
            "2026-01-31T12:00:00Z",
            "",
        ),
        finding(
            "c",
            "brute_force",
            "45.9.9.30",
            90,
            "2026-01-01T00:00:00Z",
            "",
        ),
        finding(
            "d",
            "distributed_bruteforce",
            "10.0.0.5",
            95,
            "2026-01-31T12:00:00Z",
            "",
        ),
        "not json".to_string(),
    ];
    std::fs::write(dir.path().join("f.jsonl"), lines.join("\n")).unwrap();
    std::fs::write(dir.path().join("empty.txt"), "").unwrap();
    let o = run(
        dir.path(),
        &[
            "export",
            "blocklist",
            "--target",
            "csv",
            "--feed",
            "empty.txt",
            "--from-findings",
            "--findings",
            "f.jsonl",
            "--ttl",
            "7d",
            "--at",
            "2026-02-01",
        ],
    );
    let out = ok(&o);
    assert_eq!(
        out,
        "network,family,addresses,valid_until,timeout_seconds,widened\n\
         45.9.9.9/32,ipv4,1,2026-02-07T12:00:00Z,561600,false\n\
         45.9.9.10/32,ipv4,1,2026-02-07T12:00:00Z,561600,false\n"
    );
    let err = stderr(&o);
    assert!(err.contains("f.jsonl:5: not a finding"), "{err}");
    assert!(
        err.contains("refused 10.0.0.5 (from findings (distributed_bruteforce):4)"),
        "{err}"
    );
    assert!(
        err.contains("1 validity ended before the reference time"),
        "{err}"
    );
    assert!(err.contains("1 finding below --min-score"), "{err}");
}

/// Without --findings, `--sighted` reads the hunts kept in the store, and
/// a finding that triage dismissed as a false positive is not blocked.
#[test]
fn sighted_from_the_store_leaves_out_dismissed_findings() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let feed = repo("examples/feeds/CERTFR-2021-IOC-003-IOC.csv");
    let log = repo("examples/logs/demo-auth.log");
    let with_db = |args: &[&str]| {
        bin()
            .current_dir(dir.path())
            .arg("--db")
            .arg(&db)
            .args(args)
            .output()
            .expect("run orbwatch")
    };
    let export = |with_db: &dyn Fn(&[&str]) -> Output| -> Vec<String> {
        let o = with_db(&[
            "export",
            "blocklist",
            "--target",
            "plain",
            "--sighted",
            "--at",
            "2021-08-01",
        ]);
        ok(&o).lines().map(str::to_string).collect()
    };
    // No store yet: a clear error, not an empty list.
    let o = with_db(&["export", "blocklist", "--target", "plain", "--sighted"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));

    ok(&with_db(&[
        "feed",
        "add",
        feed.to_str().unwrap(),
        "--name",
        "certfr",
    ]));
    let hunt = with_db(&[
        "hunt",
        "--year",
        "2021",
        "--format",
        "jsonl",
        log.to_str().unwrap(),
    ]);
    assert!(
        matches!(hunt.status.code(), Some(0 | 1)),
        "{}",
        stderr(&hunt)
    );
    let found: Vec<serde_json::Value> = stdout(&hunt)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut sighted: Vec<String> = found
        .iter()
        .map(|f| f["indicator"].as_str().unwrap().to_string())
        .collect();
    sighted.sort();
    sighted.dedup();
    assert_eq!(sighted.len(), 4, "{sighted:?}");
    let mut got = export(&with_db);
    got.sort();
    assert_eq!(got, sighted);

    // Dismiss every finding of one indicator: it leaves the blocklist.
    let gone = sighted[0].clone();
    for f in found.iter().filter(|f| f["indicator"] == gone.as_str()) {
        ok(&with_db(&[
            "triage",
            f["id"].as_str().unwrap(),
            "--status",
            "false-positive",
            "--note",
            "our own VPN egress",
        ]));
    }
    let got = export(&with_db);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(!got.contains(&gone), "{gone} was dismissed but exported");
}
