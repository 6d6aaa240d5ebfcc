//! Validity learned from a subscribed feed's history (issue 18): a plain
//! list without dates, published three times over March 2024 (values added
//! and removed), gives each value the window first listed − look-back …
//! removed + grace, shown by `feed show`; a hunt of a Zeek conn log across
//! the month puts each sighting in or out of window exactly as derived.
//!
//! The versions are stored through the store's own import at fixed times
//! (what `feed update` does at the time it runs), so the month is
//! reproducible; the log is written here, one connection per sighting,
//! each from its own internal host so that each finding is one sighting.

use std::path::PathBuf;
use std::process::Command;

use jiff::{SignedDuration, Timestamp};
use orbwatch_intel::{FeedFormat, ReadOptions};
use orbwatch_store::{ImportOptions, Store, SubscriptionRow};
use serde_json::{Value, json};

const A: &str = "203.0.113.10";
const B: &str = "203.0.113.11";
const C: &str = "203.0.113.12";
const D: &str = "203.0.113.13";
const E: &str = "203.0.113.14";

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn orbwatch(db: &PathBuf, args: &[&str]) -> (String, String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_orbwatch"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("ORBWATCH_DB")
        .output()
        .expect("run orbwatch");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

/// Store three versions of the list: 1 March {A,B,C}, 15 March {A,B,D},
/// 31 March {A,D,E}; subscription with a 3-day look-back and 2-day grace.
fn month_of_versions(db: &PathBuf) {
    let mut store = Store::open(db).unwrap();
    store
        .put_subscription(&SubscriptionRow {
            name: "relays".into(),
            source: "https://feeds.example/relays.txt".into(),
            spec: json!({"every": "1d", "max_bytes": 1000000, "timeout_secs": 30, "retries": 0,
                         "retry_wait_ms": 10, "grace": "7d"}),
            state: json!({}),
            created_at: ts("2024-03-01T00:00:00Z"),
            lookback: SignedDuration::from_hours(3 * 24),
            grace: SignedDuration::from_hours(2 * 24),
            ttl: None,
        })
        .unwrap();
    for (at, values) in [
        ("2024-03-01T00:00:00Z", [A, B, C]),
        ("2024-03-15T00:00:00Z", [A, B, D]),
        ("2024-03-31T00:00:00Z", [A, D, E]),
    ] {
        let body = values.join("\n");
        let mut opts = ReadOptions::new("relays");
        opts.now = ts(at);
        let parsed = orbwatch_intel::read_feed(
            body.as_bytes(),
            "relays.txt",
            Some(FeedFormat::Plain),
            &opts,
        )
        .unwrap();
        store
            .import_feed(
                "relays",
                FeedFormat::Plain,
                "https://feeds.example/relays.txt",
                &parsed,
                &ImportOptions {
                    at: Some(ts(at)),
                    ..Default::default()
                },
            )
            .unwrap();
    }
}

#[test]
fn feed_show_lists_the_windows_derived_from_history() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    month_of_versions(&db);
    let (out, err, code) = orbwatch(&db, &["feed", "show", "relays"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("history windows (5 undated values: first listed - 3d … removed + 2d; still listed: open while listed)"),
        "{out}"
    );
    let line = |v: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(&format!("{v} ")))
            .unwrap_or_else(|| panic!("no line for {v}: {out}"))
            .to_string()
    };
    let expect = [
        (
            A,
            "2024-03-01T00:00:00Z … now",
            "2024-02-27T00:00:00Z … open",
        ),
        (
            B,
            "2024-03-01T00:00:00Z … 2024-03-31T00:00:00Z",
            "2024-02-27T00:00:00Z … 2024-04-02T00:00:00Z",
        ),
        (
            C,
            "2024-03-01T00:00:00Z … 2024-03-15T00:00:00Z",
            "2024-02-27T00:00:00Z … 2024-03-17T00:00:00Z",
        ),
        (
            D,
            "2024-03-15T00:00:00Z … now",
            "2024-03-12T00:00:00Z … open",
        ),
        (
            E,
            "2024-03-31T00:00:00Z … now",
            "2024-03-28T00:00:00Z … open",
        ),
    ];
    for (v, listed, window) in expect {
        let l = line(v);
        assert!(l.contains(&format!("listed {listed}")), "{v}: {l}");
        assert!(l.contains(&format!("window {window}")), "{v}: {l}");
    }
    let (out, _, code) = orbwatch(&db, &["feed", "show", "relays", "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["history_windows"].as_array().unwrap().len(), 5);
    assert_eq!(v["subscription"]["lookback"], "3d");
}

#[test]
fn hunt_across_the_month_follows_the_history_windows() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    month_of_versions(&db);
    // (value, time of the sighting, in window?)
    let table: &[(&str, &str, bool)] = &[
        (A, "2024-02-20T12:00:00Z", false), // before first listed − 3d
        (A, "2024-02-28T12:00:00Z", true),  // look-back
        (A, "2024-03-30T12:00:00Z", true),  // still listed: open
        (B, "2024-03-25T12:00:00Z", true),
        (B, "2024-04-01T12:00:00Z", true), // removed 31 March, grace 2d
        (B, "2024-04-03T12:00:00Z", false),
        (C, "2024-03-10T12:00:00Z", true),
        (C, "2024-03-16T12:00:00Z", true), // removed 15 March, in grace
        (C, "2024-03-20T12:00:00Z", false),
        (D, "2024-03-05T12:00:00Z", false), // before its look-back
        (D, "2024-03-13T12:00:00Z", true),
        (E, "2024-03-20T12:00:00Z", false),
        (E, "2024-03-29T12:00:00Z", true),
    ];
    let mut log = String::new();
    for (i, (ip, t, _)) in table.iter().enumerate() {
        let secs = ts(t).as_second();
        log.push_str(
            &json!({"ts": secs as f64, "uid": format!("C{i}"), "id.orig_h": format!("10.0.0.{}", i + 1),
                    "id.orig_p": 40000 + i, "id.resp_h": ip, "id.resp_p": 443, "proto": "tcp",
                    "conn_state": "SF"})
            .to_string(),
        );
        log.push('\n');
    }
    let log_path = dir.path().join("conn.log");
    std::fs::write(&log_path, log).unwrap();
    let (out, err, code) = orbwatch(
        &db,
        &[
            "hunt",
            "--no-behaviour",
            "--format",
            "jsonl",
            log_path.to_str().unwrap(),
        ],
    );
    assert!(code == 0 || code == 1, "exit {code}: {err}");
    let findings: Vec<Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    assert_eq!(findings.len(), table.len(), "{out}\n{err}");
    for (i, (ip, t, inside)) in table.iter().enumerate() {
        let src = format!("10.0.0.{}", i + 1);
        let f = findings
            .iter()
            .find(|f| f["src_ip"] == src.as_str() || f["dst_ip"] == src.as_str())
            .unwrap_or_else(|| panic!("no finding for {ip} at {t}: {out}"));
        let text = f.to_string();
        assert!(text.contains(ip), "{ip} at {t}: {text}");
        assert_eq!(
            f["in_validity_window"].as_bool(),
            Some(*inside),
            "{ip} at {t}: {text}"
        );
        assert!(text.contains("window:feed-history"), "{ip} at {t}: {text}");
    }
}
