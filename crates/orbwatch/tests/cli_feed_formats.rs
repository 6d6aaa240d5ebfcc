//! Feeds read as their authors meant them, through the CLI: STIX JSON
//! lines and STIX CSV exports load with their own readers; a structured
//! file that no reader takes is refused by `feed add` and `hunt --feed`
//! with a message naming the options; prose read as free text is said so
//! on stderr, with the counts; a list with a typo rejects the typo.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/feeds-stix-misp")
        .join(name)
}

fn bin(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_orbwatch"));
    // Year-less syslog is read in the machine's zone; the answers below are UTC.
    c.env("TZ", "UTC");
    c.env_remove("ORBWATCH_DB")
        .env_remove("ORBWATCH_LOG")
        .env("XDG_DATA_HOME", home)
        .env("ORBWATCH_CACHE_DIR", home.join("cache"));
    c
}

fn feed(db: &Path, args: &[&str]) -> Output {
    bin(db.parent().unwrap())
        .arg("--db")
        .arg(db)
        .arg("feed")
        .args(args)
        .output()
        .expect("run orbwatch")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[track_caller]
fn ok(o: &Output) -> (String, String) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    (text(&o.stdout), text(&o.stderr))
}

fn exported(db: &Path, name: &str) -> Vec<String> {
    let (out, _) = ok(&feed(db, &["export", name, "--to", "plain"]));
    out.lines().map(str::to_string).collect()
}

#[test]
fn stix_json_lines_and_csv_exports_load_with_their_readers() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let jsonl = fixture("stix21-attack-lines.jsonl");
    let (out, err) = ok(&feed(&db, &["add", jsonl.to_str().unwrap()]));
    assert!(
        out.contains("(stix, stix21-attack-lines.jsonl): 5 indicators"),
        "{out}"
    );
    assert!(!err.contains("free text"), "{err}");
    assert_eq!(
        exported(&db, "stix21-attack-lines"),
        vec![
            "192.0.2.41",
            "198.51.100.42",
            "198.51.100.43",
            "c2.relay-ops.example",
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        ]
    );

    let csv = fixture("opencti-indicators.csv");
    let (out, _) = ok(&feed(&db, &["add", csv.to_str().unwrap()]));
    assert!(
        out.contains("(stix-csv, opencti-indicators.csv): 6 indicators"),
        "{out}"
    );
    assert!(out.contains("rejected: 3"), "{out}");
    assert!(out.contains("opencti-indicators.csv:10:"), "{out}");
    assert!(out.contains("skipped: 3"), "{out}");
    assert_eq!(
        exported(&db, "opencti-indicators"),
        vec![
            "192.0.2.10",
            "192.0.2.11",
            "login-portal.relay-ops.example",
            "http://198.51.100.77/gate.php",
            "486ea46224d1bb4fb680f34f7c9ad96a8f24ec88be73ea8e5a6c65260e9cb8a7",
        ]
    );
}

#[test]
fn structured_files_no_reader_takes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let hosts = dir.path().join("hosts.csv");
    std::fs::write(
        &hosts,
        "machine,when,notes\nrelay-a.example,2024-01-02,\"see https://writeup.example/a\"\nrelay-b.example,2024-01-03,\n",
    )
    .unwrap();
    let o = feed(&db, &["add", hosts.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("hosts.csv: looks like a CSV table with the header (machine, when, notes)"),
        "{err}"
    );
    assert!(err.contains("--value-column NAME"), "{err}");
    assert!(err.contains("not read as free text"), "{err}");
    // Nothing was stored.
    let (list, _) = ok(&feed(&db, &["list", "--json"]));
    assert_eq!(list.trim(), "[]");
    // Named, it loads.
    let (out, _) = ok(&feed(
        &db,
        &[
            "add",
            hosts.to_str().unwrap(),
            "--format",
            "csv",
            "--value-column",
            "machine",
        ],
    ));
    assert!(out.contains("(csv, hosts.csv): 2 indicators"), "{out}");

    let api = dir.path().join("api.json");
    std::fs::write(
        &api,
        r#"{"data": [{"ip": "192.0.2.1", "ref": "https://blog.example/"}]}"#,
    )
    .unwrap();
    let o = feed(&db, &["add", api.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("JSON with the keys `data`"),
        "{}",
        text(&o.stderr)
    );
    // Asked for, free text reads it, without the warning.
    let (out, err) = ok(&feed(
        &db,
        &["add", api.to_str().unwrap(), "--format", "freetext"],
    ));
    assert!(out.contains("(freetext, api.json): 2 indicators"), "{out}");
    assert!(!err.contains("free text"), "{err}");

    // `hunt --feed` refuses it too, and names --feed-format.
    let log = dir.path().join("auth.log");
    std::fs::write(
        &log,
        "Jan  2 10:00:00 h sshd[1]: Accepted password for root from 192.0.2.1 port 22 ssh2\n",
    )
    .unwrap();
    let o = bin(dir.path())
        .args(["hunt", "--year", "2024", "--feed"])
        .arg(&hosts)
        .arg(&log)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("--feed-format"), "{err}");
}

#[test]
fn prose_is_read_as_free_text_loudly_and_lists_reject_typos() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let mail = dir.path().join("mail.txt");
    std::fs::write(
        &mail,
        "Please block 192.0.2.1 and hxxp://bad[.]example/x today.\n",
    )
    .unwrap();
    let (out, err) = ok(&feed(&db, &["add", mail.to_str().unwrap()]));
    assert!(out.contains("(freetext, mail.txt): 2 indicators"), "{out}");
    assert!(
        err.contains("read as free text (prose): 2 values extracted (1 ipv4, 1 url), 0 rejected"),
        "{err}"
    );

    let list = dir.path().join("typo.txt");
    std::fs::write(&list, "192.0.2.1\r\n192.0.2.2\r\n300.1.1.1\r\n").unwrap();
    let (out, err) = ok(&feed(&db, &["add", list.to_str().unwrap()]));
    assert!(out.contains("(plain, typo.txt): 2 indicators"), "{out}");
    assert!(
        out.contains("rejected: 1\n  typo.txt:3: `300.1.1.1`"),
        "{out}"
    );
    assert!(!err.contains("free text"), "{err}");
}

#[test]
fn hunt_with_a_stix_json_lines_feed_matches_patterns_not_prose() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    // 192.0.2.41 is an indicator; 198.18.0.0 and 203.0.113.250 are only
    // named in descriptions of the same feed.
    std::fs::write(
        &log,
        "Jan  2 10:00:00 gw sshd[11]: Accepted password for admin from 192.0.2.41 port 40022 ssh2\n\
         Jan  2 10:00:05 gw sshd[12]: Accepted password for admin from 198.18.0.0 port 40023 ssh2\n\
         Jan  2 10:00:09 gw sshd[13]: Accepted password for admin from 203.0.113.250 port 40024 ssh2\n",
    )
    .unwrap();
    let o = bin(dir.path())
        .args(["hunt", "--year", "2024", "--format", "jsonl", "--feed"])
        .arg(fixture("stix21-attack-lines.jsonl"))
        .arg(&log)
        .output()
        .unwrap();
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}\n{}", text(&o.stderr));
    let indicators: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|f| f["kind"] == "ioc_match")
        .map(|f| f["indicator"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(indicators, vec!["192.0.2.41"]);
}
