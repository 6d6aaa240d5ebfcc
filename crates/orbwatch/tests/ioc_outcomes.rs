//! What an IOC finding says happened, end to end on real logs: outcomes,
//! severity, score and reasons; `--fail-on SEVERITY`; `findings
//! --min-severity`; and a value its feed lists on several rows.
//!
//! The feeds are written here (they name addresses the logs contain); the
//! logs are real: crowdsec hub test inputs and zat/Zeek files (MIT, copied
//! into `tests/data/` with attribution), Suricata's EVE and a capture of
//! Zeek's wikipedia trace (BSD), and fail2ban's sshd test log (GPL-2.0,
//! read from `../shared/corpus`, skipped when absent). Counts are checked
//! by hand against the files and asserted exactly; record totals are also
//! compared with an exact grep of the lines.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn data(rel: &str) -> PathBuf {
    repo().join("tests/data").join(rel)
}

fn run(args: &[&str], inputs: &[&Path]) -> (Vec<Value>, i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_orbwatch"))
        .env("TZ", "UTC") // year-less syslog is read in the machine's zone
        .args(args)
        .args(inputs)
        .env_remove("ORBWATCH_DB")
        .env("XDG_DATA_HOME", "/nonexistent")
        .output()
        .expect("run orbwatch");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 output");
    let findings = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    (
        findings,
        out.status.code().unwrap_or(-1),
        stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `hunt --no-behaviour --format jsonl` with `feed` on `inputs`: the IOC
/// findings, the exit code and stderr.
fn hunt(feed: &Path, extra: &[&str], inputs: &[&Path]) -> (Vec<Value>, i32, String) {
    let mut args = vec![
        "hunt",
        "--no-behaviour",
        "--format",
        "jsonl",
        "--evidence-limit",
        "0",
        "--feed",
        feed.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (f, code, _, err) = run(&args, inputs);
    (f, code, err)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The findings of one indicator.
fn of<'a>(fs: &'a [Value], indicator: &str) -> Vec<&'a Value> {
    fs.iter().filter(|f| f["indicator"] == indicator).collect()
}

/// The non-zero outcome counts of a finding, as `name=n` words in the
/// contract's order.
fn outcomes(f: &Value) -> String {
    let order = [
        "auth_success",
        "auth_failure",
        "blocked",
        "allowed",
        "dns",
        "http",
        "outbound",
        "unknown",
    ];
    let mut total = 0;
    let mut words = Vec::new();
    for k in order {
        let n = f["outcomes"][k]
            .as_u64()
            .unwrap_or_else(|| panic!("outcomes.{k} missing in {f}"));
        total += n;
        if n > 0 {
            words.push(format!("{k}={n}"));
        }
    }
    // The outcomes add up to the records counted.
    assert_eq!(Some(total), f["count"].as_u64(), "{f}");
    words.join(" ")
}

/// Lines of `path` naming `ip` as a whole token (an exact grep): no digit
/// or dot just before it, no digit or dot-and-digit just after it.
fn grep(path: &Path, ip: &str) -> u64 {
    let text = std::fs::read_to_string(path).unwrap();
    let whole = |l: &str, i: usize| {
        let before = l[..i].chars().next_back();
        let mut after = l[i + ip.len()..].chars();
        let next = after.next();
        let extends = match next {
            Some(c) if c.is_ascii_digit() => true,
            Some('.') => after.next().is_some_and(|c| c.is_ascii_digit()),
            _ => false,
        };
        let joined = before.is_some_and(|c| c.is_ascii_digit() || c == '.');
        !joined && !extends
    };
    text.lines()
        .filter(|l| l.match_indices(ip).any(|(i, _)| whole(l, i)))
        .count() as u64
}

fn count_sum(fs: &[&Value]) -> u64 {
    fs.iter().map(|f| f["count"].as_u64().unwrap()).sum()
}

#[test]
fn successful_login_is_critical_failures_medium() {
    let dir = tempfile::tempdir().unwrap();
    let log = data("logs-syslog/crowdsec_ssh-time-based-bf.log");
    let feed = write(dir.path(), "relays.csv", "ip\n10.0.0.102\n10.0.0.100\n");
    let (fs, code, err) = hunt(&feed, &["--year", "2024"], &[&log]);
    assert_eq!(code, 0, "{err}");
    // 10.0.0.102: two invalid users, the accepted password for `test`, one
    // more invalid user, all within 20 minutes: one finding.
    let ok = of(&fs, "10.0.0.102");
    assert_eq!(ok.len(), 1, "{fs:?}");
    let f = ok[0];
    assert_eq!(f["count"], 4);
    assert_eq!(count_sum(&ok), grep(&log, "10.0.0.102"));
    assert_eq!(outcomes(f), "auth_success=1 auth_failure=3");
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["score"], 95);
    assert_eq!(f["accounts"], serde_json::json!(["admin", "guest", "test"]));
    let reasons: Vec<&str> = f["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "10.0.0.102 listed by relays: 1 successful login (account test), 3 failed logins.",
            "Critical because a login from the listed address succeeded."
        ]
    );
    // 10.0.0.100: three invalid users, no success.
    let bad = of(&fs, "10.0.0.100");
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0]["count"], 3);
    assert_eq!(outcomes(bad[0]), "auth_failure=3");
    assert_eq!(bad[0]["severity"], "medium");
    assert_eq!(bad[0]["score"], 60);
    // Most serious first, in JSON lines too.
    assert_eq!(fs[0]["indicator"], "10.0.0.102");

    // --fail-on by severity: at least that serious.
    for (level, expect) in [("critical", 1), ("high", 1), ("medium", 1)] {
        let (_, code, err) = hunt(&feed, &["--year", "2024", "--fail-on", level], &[&log]);
        assert_eq!(code, expect, "--fail-on {level}: {err}");
    }
    let only_failures = write(dir.path(), "fail.csv", "ip\n10.0.0.100\n");
    let (_, code, _) = hunt(
        &only_failures,
        &["--year", "2024", "--fail-on", "high"],
        &[&log],
    );
    assert_eq!(code, 0, "failed logins alone are medium, below high");
    let (_, code, err) = hunt(
        &only_failures,
        &["--year", "2024", "--fail-on", "severe"],
        &[&log],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("critical") && err.contains("ioc_match"),
        "{err}"
    );
}

#[test]
fn table_lists_the_most_serious_first_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let log = data("logs-syslog/crowdsec_ssh-time-based-bf.log");
    let feed = write(dir.path(), "relays.csv", "ip\n10.0.0.100\n10.0.0.102\n");
    let (_, code, out, err) = run(
        &[
            "hunt",
            "--no-behaviour",
            "--year",
            "2024",
            "--format",
            "table",
            "--feed",
            feed.to_str().unwrap(),
        ],
        &[&log],
    );
    assert_eq!(code, 0, "{err}");
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("10.0.0.10") && !l.starts_with(' '))
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(rows[0].starts_with("critical") && rows[0].contains("10.0.0.102"));
    assert!(rows[1].starts_with("medium") && rows[1].contains("10.0.0.100"));
    assert!(out.contains("- Critical because a login from the listed address succeeded."));
}

#[test]
fn fail2ban_successful_logins_from_the_corpus() {
    let log = repo().join("../shared/corpus/auth-ssh/fail2ban_sshd.log");
    if !log.is_file() {
        eprintln!("skipped: {} is absent (GPL fixture)", log.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let feed = write(
        dir.path(),
        "f2b.csv",
        "ip\n192.0.2.113\n192.0.2.114\n192.0.2.116\n",
    );
    let (fs, code, err) = hunt(&feed, &["--year", "2005"], &[&log]);
    assert_eq!(code, 0, "{err}");
    // Each of these hosts failed twice and then logged in (fail2ban labels
    // the lines); .113 and .116 also have a "Connection closed by" line
    // that says nothing of the outcome. `# failJSON` comment lines are not
    // records.
    for (ip, count, what, accounts) in [
        (
            "192.0.2.113",
            4,
            "auth_success=1 auth_failure=2 unknown=1",
            "rda",
        ),
        ("192.0.2.114", 3, "auth_success=1 auth_failure=2", "known"),
        (
            "192.0.2.116",
            4,
            "auth_success=1 auth_failure=2 unknown=1",
            "known",
        ),
    ] {
        let found = of(&fs, ip);
        assert_eq!(found.len(), 1, "{ip}: {fs:?}");
        assert_eq!(found[0]["count"], count, "{ip}");
        assert_eq!(outcomes(found[0]), what, "{ip}");
        assert_eq!(found[0]["severity"], "critical", "{ip}");
        assert!(
            found[0]["reasons"][0]
                .as_str()
                .unwrap()
                .contains(&format!("1 successful login (account {accounts})")),
            "{ip}: {}",
            found[0]["reasons"]
        );
    }
}

#[test]
fn firewall_drops_are_low() {
    let dir = tempfile::tempdir().unwrap();
    let feed = write(
        dir.path(),
        "scanners.csv",
        "ip\n62.34.17.168\n36.97.161.219\n",
    );
    // iptables LOG lines of a SYN scan (no verdict word: a logged bare SYN)
    // and MikroTik `drop-tcp` lines.
    let ipt = data("logs-syslog/crowdsec_iptables-scan-multi-port.log");
    let mk = data("logs-syslog/crowdsec_mikrotik-scan-multi_ports.log");
    let (fs, code, err) = hunt(&feed, &["--year", "2024"], &[&ipt, &mk]);
    assert_eq!(code, 0, "{err}");
    for (ip, file, n) in [("62.34.17.168", &ipt, 17), ("36.97.161.219", &mk, 19)] {
        let found = of(&fs, ip);
        assert_eq!(found.len(), 1, "{ip}: {fs:?}");
        assert_eq!(found[0]["count"], n);
        assert_eq!(grep(file, ip), n);
        assert_eq!(outcomes(found[0]), format!("blocked={n}"));
        assert_eq!(found[0]["severity"], "low");
        assert_eq!(found[0]["score"], 20);
    }
    let (_, code, _) = hunt(&feed, &["--year", "2024", "--fail-on", "medium"], &[&ipt]);
    assert_eq!(code, 0, "blocked traffic does not fail --fail-on medium");
}

#[test]
fn zeek_conn_outbound_with_bytes_is_high() {
    let dir = tempfile::tempdir().unwrap();
    let log = data("logs-a/zat_conn.log");
    let feed = write(
        dir.path(),
        "c2.csv",
        "ip\n72.21.91.29\n194.165.17.4\n89.212.101.93\n",
    );
    let (fs, code, err) = hunt(&feed, &[], &[&log]);
    assert_eq!(code, 0, "{err}");
    // 192.168.33.10 opened two HTTP connections to 72.21.91.29 (RSTO after
    // 390 bytes out and 8133 back, each).
    let f = of(&fs, "72.21.91.29");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["count"], 2);
    assert_eq!(grep(&log, "72.21.91.29"), 2);
    assert_eq!(outcomes(f[0]), "outbound=2");
    assert_eq!(f[0]["direction"], "outbound");
    assert_eq!(f[0]["bytes_to_indicator"], 780);
    assert_eq!(f[0]["severity"], "high");
    assert_eq!(f[0]["score"], 80);
    // Eleven DNS and one NTP query to 194.165.17.4, never answered (S0).
    let f = of(&fs, "194.165.17.4");
    assert_eq!(count_sum(&f), 12);
    assert_eq!(grep(&log, "194.165.17.4"), 12);
    assert!(f.iter().all(|x| x["severity"] == "low"));
    assert!(f.iter().all(|x| outcomes(x).starts_with("blocked=")));
    // 89.212.101.93: a UDP packet to it unanswered, and an ICMP message
    // from it (Zeek OTH: nothing says what happened).
    let f = of(&fs, "89.212.101.93");
    assert_eq!(f.len(), 1);
    assert_eq!(outcomes(f[0]), "blocked=1 unknown=1");
    assert_eq!(f[0]["severity"], "low");
    assert_eq!(f[0]["score"], 30);
}

#[test]
fn dns_and_http_naming_a_listed_domain() {
    let dir = tempfile::tempdir().unwrap();
    let feed = write(dir.path(), "dom.csv", "domain\nmeta.wikimedia.org\n");
    // Suricata's EVE of Zeek's wikipedia trace: two queries and two
    // answers for meta.wikimedia.org, and one HTTP request to it.
    let eve = data("logs-a/zeek_wikipedia.eve.json");
    let (fs, code, err) = hunt(&feed, &[], &[&eve]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(count_sum(&of(&fs, "meta.wikimedia.org")), 5);
    let text = std::fs::read_to_string(&eve).unwrap();
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("meta.wikimedia.org"))
            .count(),
        5
    );
    let mut dns = 0;
    let mut http = 0;
    for f in &fs {
        dns += f["outcomes"]["dns"].as_u64().unwrap();
        http += f["outcomes"]["http"].as_u64().unwrap();
        assert_eq!(f["severity"], "medium", "{f}");
    }
    assert_eq!((dns, http), (4, 1));
    // The capture itself: orbwatch's own DNS and HTTP readers.
    let pcap = data("captures/zeek_wikipedia.pcap");
    let (fs, code, err) = hunt(&feed, &[], &[&pcap]);
    assert_eq!(code, 0, "{err}");
    let dns: u64 = fs
        .iter()
        .map(|f| f["outcomes"]["dns"].as_u64().unwrap())
        .sum();
    let http: u64 = fs
        .iter()
        .map(|f| f["outcomes"]["http"].as_u64().unwrap())
        .sum();
    assert_eq!((dns, http), (4, 1), "{fs:?}");
}

/// CERT-FR style: the same address on three rows with other dates and
/// tags. Windows (UTC, 2024-09-30): row 1 12:00–12:35, row 2 12:30–12:42
/// (overlapping row 1), row 3 12:49–13:00 (disjoint). The log names
/// 10.0.0.102 at 12:30 (rows 1 and 2), 12:40 (row 2), 12:45 (no row) and
/// 12:50 (row 3).
#[test]
fn one_value_on_several_rows_is_one_sighting_per_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = data("logs-syslog/crowdsec_ssh-time-based-bf.log");
    let feed = write(
        dir.path(),
        "rows.csv",
        "ip,valid_from,valid_until,tags,confidence\n\
         10.0.0.102,2024-09-30T12:00:00Z,2024-09-30T12:35:00Z,tier1,40\n\
         10.0.0.102,2024-09-30T12:30:00Z,2024-09-30T12:42:00Z,tier2,70\n\
         10.0.0.102,2024-09-30T12:49:00Z,2024-09-30T13:00:00Z,relay,60\n",
    );
    let (fs, code, err) = hunt(&feed, &["--year", "2024"], &[&log]);
    assert_eq!(code, 0, "{err}");
    let found = of(&fs, "10.0.0.102");
    // Four records name it: four sightings, not one per row.
    assert_eq!(count_sum(&found), 4);
    assert_eq!(grep(&log, "10.0.0.102"), 4);
    assert_eq!(found.len(), 2, "{found:?}");
    let inside: Vec<_> = found
        .iter()
        .filter(|f| f["in_validity_window"] == true)
        .collect();
    let outside: Vec<_> = found
        .iter()
        .filter(|f| f["in_validity_window"] == false)
        .collect();
    assert_eq!((inside.len(), outside.len()), (1, 1));
    assert_eq!(inside[0]["count"], 3);
    assert_eq!(outcomes(inside[0]), "auth_failure=3");
    assert_eq!(inside[0]["severity"], "medium");
    // The accepted login at 12:45 falls in no row's window: critical
    // lowered to high, and the reasons say so.
    assert_eq!(outside[0]["count"], 1);
    assert_eq!(outcomes(outside[0]), "auth_success=1");
    assert_eq!(outside[0]["severity"], "high");
    assert!(
        outside[0]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().contains(
                "outside the indicator's validity window (its 3 rows: valid 2024-09-30 12:00 UTC to 2024-09-30 12:35 UTC; valid 2024-09-30 12:30 UTC to 2024-09-30 12:42 UTC; valid 2024-09-30 12:49 UTC to 2024-09-30 13:00 UTC): severity lowered from critical to high"
            )),
        "{}",
        outside[0]["reasons"]
    );
    for f in &found {
        // Tags and windows of every row; the highest confidence.
        assert_eq!(
            f["tags"]["other"],
            serde_json::json!(["tier1", "tier2", "relay"]),
            "{f}"
        );
        assert_eq!(f["validity_windows"].as_array().unwrap().len(), 3);
        assert_eq!(f["confidence"], 70);
    }
    // Listed once with an open window, the same records count the same.
    let once = write(dir.path(), "once.csv", "ip\n10.0.0.102\n");
    let (fs1, _, _) = hunt(&once, &["--year", "2024"], &[&log]);
    assert_eq!(count_sum(&of(&fs1, "10.0.0.102")), 4);
}

/// Adversarial records, written here: a Zeek JSON conn log with a 150 MB
/// upload, a record without a time, and one whose two ends are both in a
/// listed network; and a text line without a time.
#[test]
fn volume_missing_time_and_both_ends_listed() {
    let dir = tempfile::tempdir().unwrap();
    let conn = write(
        dir.path(),
        "conn.json",
        concat!(
            r#"{"ts":1704100000.0,"uid":"C1","id.orig_h":"192.168.1.5","id.orig_p":50000,"id.resp_h":"203.0.113.5","id.resp_p":443,"proto":"tcp","conn_state":"SF","orig_bytes":150000000,"resp_bytes":4000}"#,
            "\n",
            r#"{"uid":"C2","id.orig_h":"192.168.1.6","id.orig_p":50001,"id.resp_h":"203.0.113.5","id.resp_p":443,"proto":"tcp","conn_state":"SF","orig_bytes":2000,"resp_bytes":4000}"#,
            "\n",
            r#"{"ts":1704100100.0,"uid":"C3","id.orig_h":"198.51.100.9","id.orig_p":50002,"id.resp_h":"198.51.100.20","id.resp_p":22,"proto":"tcp","conn_state":"REJ","orig_bytes":0,"resp_bytes":0}"#,
            "\n"
        ),
    );
    let feed = write(
        dir.path(),
        "w.csv",
        "ip,valid_from,valid_until\n\
         203.0.113.5,2024-01-01T00:00:00Z,2024-02-01T00:00:00Z\n\
         198.51.100.0/24,2024-01-01T00:00:00Z,2024-02-01T00:00:00Z\n",
    );
    let (fs, code, err) = hunt(&feed, &[], &[&conn]);
    assert_eq!(code, 0, "{err}");
    let up = of(&fs, "203.0.113.5");
    assert_eq!(up.len(), 2, "{up:?}");
    let timed = up.iter().find(|f| f["first_seen"].is_string()).unwrap();
    assert_eq!(outcomes(timed), "outbound=1");
    assert_eq!(timed["bytes_to_indicator"], 150_000_000);
    assert_eq!(timed["severity"], "critical");
    assert_eq!(timed["score"], 90);
    // No time: the bounded window cannot be checked, so high becomes
    // medium and a reason says why.
    let untimed = up.iter().find(|f| f["first_seen"].is_null()).unwrap();
    assert_eq!(untimed["count"], 1);
    assert_eq!(untimed["severity"], "medium");
    assert!(
        untimed["reasons"]
            .to_string()
            .contains("no time, so the validity window"),
        "{untimed}"
    );
    // Both ends in 198.51.100.0/24: one record, one sighting.
    let both = of(&fs, "198.51.100.0/24");
    assert_eq!(both.len(), 1);
    assert_eq!(both[0]["count"], 1);
    assert_eq!(outcomes(both[0]), "blocked=1");
    // The most serious first.
    assert_eq!(fs[0]["severity"], "critical");

    // A text line with no time and no verdict: unknown, lowered to info.
    let text = write(dir.path(), "notes.txt", "203.0.113.5 was seen\n");
    let (fs, code, err) = hunt(&feed, &[], &[&text]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(fs.len(), 1);
    assert_eq!(outcomes(&fs[0]), "unknown=1");
    assert_eq!(fs[0]["severity"], "info");
}

#[test]
fn findings_min_severity_filters_and_sorts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("case.db");
    let log = data("logs-syslog/crowdsec_ssh-time-based-bf.log");
    let ipt = data("logs-syslog/crowdsec_iptables-scan-multi-port.log");
    let feed = write(
        dir.path(),
        "relays.csv",
        "ip\n10.0.0.100\n10.0.0.102\n62.34.17.168\n",
    );
    let db_s = db.to_str().unwrap();
    let (_, code, _, err) = run(
        &[
            "--db",
            db_s,
            "hunt",
            "--no-behaviour",
            "--year",
            "2024",
            "--format",
            "jsonl",
            "--feed",
            feed.to_str().unwrap(),
        ],
        &[&log, &ipt],
    );
    assert_eq!(code, 0, "{err}");
    let list = |extra: &[&str]| {
        let mut args = vec!["--db", db_s, "findings", "--format", "jsonl"];
        args.extend_from_slice(extra);
        let (fs, code, _, err) = run(&args, &[]);
        assert_eq!(code, 0, "{err}");
        fs.iter()
            .map(|f| {
                format!(
                    "{} {}",
                    f["severity"].as_str().unwrap(),
                    f["indicator"].as_str().unwrap()
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        list(&[]),
        [
            "critical 10.0.0.102",
            "medium 10.0.0.100",
            "low 62.34.17.168"
        ]
    );
    assert_eq!(
        list(&["--min-severity", "medium"]),
        ["critical 10.0.0.102", "medium 10.0.0.100"]
    );
    assert_eq!(
        list(&["--min-severity", "critical"]),
        ["critical 10.0.0.102"]
    );
    let (_, code, _, err) = run(&["--db", db_s, "findings", "--min-severity", "urgent"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--min-severity") && err.contains("critical"),
        "{err}"
    );
}
