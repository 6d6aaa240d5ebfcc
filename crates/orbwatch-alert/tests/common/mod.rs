//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use orbwatch_detect::{Finding, FindingKind, Severity};

pub fn ts(s: &str) -> Timestamp {
    s.parse().expect("test timestamp")
}

/// A behaviour finding from `src` with the given severity and score.
pub fn finding(id: &str, kind: FindingKind, src: &str, sev: Severity, score: u8) -> Finding {
    Finding {
        id: id.to_string(),
        kind,
        first_seen: Some(ts("2026-03-01T10:00:00Z")),
        last_seen: Some(ts("2026-03-01T10:04:00Z")),
        count: 37,
        src_ip: Some(src.parse::<IpAddr>().expect("test address")),
        dst_ip: Some("10.0.0.5".parse().expect("test address")),
        ioc: None,
        targets: vec!["ssh".into()],
        accounts: vec!["root".into(), "admin".into()],
        severity: Some(sev),
        score: Some(score),
        reasons: vec![format!("37 failed logins from {src} in 4 minutes")],
        sources: Vec::new(),
        details: None,
        evidence: Vec::new(),
        evidence_total: 0,
    }
}

/// Wait until `cond` holds, or panic after `limit` naming `what`.
pub fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Path of an external tool, or None (after printing the skip line) when
/// it is missing. With ORBWATCH_REQUIRE_TOOLS=1 a missing tool fails.
pub fn tool(name: &str) -> Option<PathBuf> {
    for dir in [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
    ] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return Some(p);
        }
    }
    if std::env::var("ORBWATCH_REQUIRE_TOOLS").as_deref() == Ok("1") {
        panic!("{name} not installed and ORBWATCH_REQUIRE_TOOLS=1");
    }
    println!("skipped: {name} not installed");
    None
}
