//! `hunt` with behaviour detectors, on small logs written here: the
//! config file, the table output, the coverage section, ORB likelihood
//! joining an IOC match, a backdoor port and a brute force, and
//! enrichment with a real GeoLite2 database when installed.

use std::path::{Path, PathBuf};
use std::process::Command;

fn hunt(dir: &Path, args: &[&str]) -> (String, String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_orbwatch"))
        .env("TZ", "UTC") // year-less syslog is read in the machine's zone
        .arg("hunt")
        .args(args)
        .env("ORBWATCH_DB", dir.join("absent/orbwatch.db"))
        .output()
        .expect("run orbwatch");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

fn jsonl(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect()
}

/// A probe of the 7777 backdoor port and five SSH failures from one
/// external address, then 16 refused ports from another.
fn write_log(dir: &Path) -> PathBuf {
    let mut s = String::from(
        "Mar  1 10:00:00 fw kernel: [UFW BLOCK] IN=eth0 OUT= SRC=198.51.100.7 DST=10.0.0.2 LEN=60 TOS=0x00 PREC=0x00 TTL=50 ID=1 DF PROTO=TCP SPT=5555 DPT=7777 WINDOW=1024 RES=0x00 SYN URGP=0\n",
    );
    for i in 0..5 {
        s.push_str(&format!(
            "Mar  1 10:01:0{i} srv sshd[1{i}]: Failed password for root from 198.51.100.7 port 400{i} ssh2\n"
        ));
    }
    for p in 0..16 {
        s.push_str(&format!(
            "Mar  1 11:00:00 fw kernel: [UFW BLOCK] IN=eth0 OUT= SRC=203.0.113.9 DST=10.0.0.3 LEN=60 TOS=0x00 PREC=0x00 TTL=50 ID=1 DF PROTO=TCP SPT=5555 DPT={} WINDOW=1024 RES=0x00 SYN URGP=0\n",
            100 + p
        ));
    }
    let p = dir.join("mixed.log");
    std::fs::write(&p, s).unwrap();
    p
}

#[test]
fn findings_coverage_and_orb_likelihood() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path());
    let feed = dir.path().join("relays.txt");
    std::fs::write(&feed, "198.51.100.7\n").unwrap();
    let cov = dir.path().join("cov.json");
    let (out, err, code) = hunt(
        dir.path(),
        &[
            "--year",
            "2024",
            "--format",
            "jsonl",
            "--feed",
            feed.to_str().unwrap(),
            "--coverage",
            cov.to_str().unwrap(),
            log.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let f = jsonl(&out);
    let kinds: Vec<(&str, &str)> = f
        .iter()
        .map(|x| {
            (
                x["kind"].as_str().unwrap(),
                x["src_ip"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("brute_force", "198.51.100.7")),
        "{kinds:?}"
    );
    assert!(kinds.contains(&("port_scan", "203.0.113.9")), "{kinds:?}");
    let bf = f.iter().find(|x| x["kind"] == "brute_force").unwrap();
    assert_eq!(bf["count"], 5);
    assert_eq!(bf["evidence_total"], 5);
    assert_eq!(bf["evidence"].as_array().unwrap().len(), 5);
    assert!(
        bf["evidence"][0]["raw"]
            .as_str()
            .unwrap()
            .contains("Failed password for root from 198.51.100.7")
    );
    assert_eq!(bf["evidence"][0]["line"], 2);
    // ORB likelihood: listed (in window) 40 + brute force 10 + port 7777 25.
    let orb = &bf["details"]["orb_likelihood"];
    assert_eq!(orb["score"], 75, "{orb}");
    let reasons = orb["reasons"].to_string();
    assert!(
        reasons.contains("7777") && reasons.contains("relays"),
        "{reasons}"
    );
    let c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cov).unwrap()).unwrap();
    // 1 + 16 probes, 1 backdoor-port use, 5 failures.
    assert_eq!(c["behaviour"]["observations"], 23, "{}", c["behaviour"]);
    assert_eq!(c["behaviour"]["findings"]["brute_force"], 1);
    assert!(err.contains("enrichment skipped"), "{err}");
}

#[test]
fn config_file_changes_thresholds_and_bad_config_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path());
    let cfg = dir.path().join("b.toml");
    std::fs::write(
        &cfg,
        "[port_scan]\nmin_ports = 20\nburst_ports = 20\n[brute_force]\nmax_failures = 6\n",
    )
    .unwrap();
    let (out, err, code) = hunt(
        dir.path(),
        &[
            "--year",
            "2024",
            "--format",
            "jsonl",
            "--behaviour-config",
            cfg.to_str().unwrap(),
            log.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty(), "16 ports < 20 and 5 failures < 6: {out}");
    std::fs::write(&cfg, "[port_scan]\nmin_prots = 20\n").unwrap();
    let (_, err, code) = hunt(
        dir.path(),
        &[
            "--behaviour-config",
            cfg.to_str().unwrap(),
            log.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("b.toml") && err.contains("min_prots"), "{err}");
}

#[test]
fn table_shows_severity_score_and_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path());
    let (out, err, code) = hunt(
        dir.path(),
        &["--year", "2024", "--format", "table", log.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    let row = out.lines().find(|l| l.contains("brute_force")).expect(&out);
    assert!(
        row.contains("198.51.100.7") && row.contains("medium"),
        "{row}"
    );
    assert!(
        out.contains("- 5 failed logins for 1 account on sshd in 4 seconds"),
        "{out}"
    );
    let (csv, _, _) = hunt(
        dir.path(),
        &["--year", "2024", "--format", "csv", log.to_str().unwrap()],
    );
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .ends_with("severity,score,reasons,targets,accounts,outcomes")
    );
}

#[test]
fn geolite2_enrichment_in_findings() {
    let base = std::env::var_os("ORBWATCH_TEST_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/orbwatch-test"))
        });
    let asn = base.map(|b| b.join("geolite2/GeoLite2-ASN.mmdb"));
    let Some(asn) = asn.filter(|p| p.is_file()) else {
        if std::env::var("ORBWATCH_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("GeoLite2 databases not installed (ORBWATCH_REQUIRE_TOOLS=1)");
        }
        println!("skipped: GeoLite2 databases not installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // 8.8.8.8 (AS15169, Google) fails six logins.
    let log = dir.path().join("g.log");
    let s: String = (0..6)
        .map(|i| format!("Mar  1 10:01:0{i} srv sshd[1{i}]: Failed password for root from 8.8.8.8 port 400{i} ssh2\n"))
        .collect();
    std::fs::write(&log, s).unwrap();
    let (out, err, code) = hunt(
        dir.path(),
        &[
            "--year",
            "2024",
            "--format",
            "jsonl",
            "--asn-db",
            asn.to_str().unwrap(),
            log.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let f = jsonl(&out);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["details"]["enrichment"]["asn"], 15169);
    assert!(
        f[0]["reasons"].to_string().contains("AS15169"),
        "{}",
        f[0]["reasons"]
    );
    assert!(err.contains("enrichment from"), "{err}");
}

/// A file above the 32 MiB chunking size is read in parallel chunks with
/// -j 2: the findings must equal the single-thread run byte for byte, and
/// every evidence line must be the file's line of that number.
#[test]
fn chunked_parallel_hunt_equals_single_thread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.log");
    let mut s = String::with_capacity(37 << 20);
    let mut x: u64 = 7;
    let mut next = |n: u64| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) % n
    };
    while s.len() < 36 << 20 {
        s.push_str(&format!(
            "Mar  1 {:02}:{:02}:{:02} srv sshd[{}]: Failed password for user{} from 198.51.{}.{} port {} ssh2\n",
            next(24),
            next(60),
            next(60),
            next(99_999),
            next(50),
            next(4),
            next(256),
            1024 + next(60_000)
        ));
    }
    std::fs::write(&path, &s).unwrap();
    let run = |j: &str| {
        let (out, err, code) = hunt(
            dir.path(),
            &[
                "-j",
                j,
                "--year",
                "2024",
                "--format",
                "jsonl",
                path.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 0, "{err}");
        out
    };
    let (one, two) = (run("1"), run("2"));
    assert!(!one.is_empty());
    assert_eq!(one, two);
    let lines: Vec<&str> = s.lines().collect();
    let mut checked = 0;
    for f in jsonl(&two) {
        for e in f["evidence"].as_array().unwrap() {
            let n = e["line"].as_u64().unwrap() as usize;
            assert_eq!(lines[n - 1], e["raw"].as_str().unwrap());
            checked += 1;
        }
    }
    assert!(checked > 1000, "{checked}");
}

/// A memory budget of 3 observations spills sorted runs to disk and merges
/// them back: the findings are exactly those of a hunt that keeps
/// everything in memory, nothing is dropped, and the coverage says so.
#[test]
fn observation_budget_spills_to_disk_with_the_same_findings() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path());
    let spill = dir.path().join("spill");
    std::fs::create_dir(&spill).unwrap();
    let run = |cap: u64| {
        let cfg = dir.path().join(format!("cap{cap}.toml"));
        std::fs::write(&cfg, format!("max_observations = {cap}\n")).unwrap();
        let cov = dir.path().join(format!("cov{cap}.json"));
        let (out, err, code) = hunt(
            dir.path(),
            &[
                "--year",
                "2024",
                "--format",
                "jsonl",
                "--spill-dir",
                spill.to_str().unwrap(),
                "--behaviour-config",
                cfg.to_str().unwrap(),
                "--coverage",
                cov.to_str().unwrap(),
                log.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 0, "{err}");
        let c: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&cov).unwrap()).unwrap();
        (out, c, err)
    };
    let (all_in_memory, c0, _) = run(0);
    let (spilled, c3, err) = run(3);
    assert_eq!(spilled, all_in_memory);
    assert_eq!(jsonl(&spilled).len(), 2, "{spilled}");
    // 1 + 5 + 16 relevant records: the first gives 2 observations (probe,
    // backdoor port), the others 1 each.
    assert_eq!(c0["behaviour"]["observations"], 23);
    assert_eq!(c3["behaviour"]["observations"], 23);
    assert_eq!(c3["behaviour"]["dropped"], 0);
    assert!(
        err.contains("sorted runs went to a temporary directory"),
        "{err}"
    );
    // The spilled runs are removed when the hunt ends.
    assert_eq!(std::fs::read_dir(&spill).unwrap().count(), 0);
}
