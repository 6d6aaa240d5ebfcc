//! `watch --routers INVENTORY --routers-reboot` against the router lab of
//! orbwatch-routers (tests/common there): the daemon audits the routers
//! when it starts, alerts on the memory-only implant, reboots each router
//! once inside its reboot window (open now), proves the reboot, and keeps
//! every step in the router history under its own run; SIGTERM stops it
//! with exit 0.

#[path = "../../orbwatch-routers/tests/common/mod.rs"]
mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Lab, LabSpec, Plant};

/// Kills the daemon if the test ends early.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// (router, action, step, ok, hunt_id) of every history row, in order.
fn history(db: &Path) -> Vec<(String, String, String, bool, Option<i64>)> {
    // Read-only: opening it read-write would create an empty file before
    // the daemon makes its store.
    let Ok(c) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return Vec::new();
    };
    let Ok(mut s) =
        c.prepare("SELECT router, action, step, ok, hunt_id FROM router_history ORDER BY seq")
    else {
        return Vec::new();
    };
    s.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .map(|rows| rows.filter_map(Result::ok).collect())
    .unwrap_or_default()
}

/// A daily window around now (UTC): an hour either side.
fn window_around_now() -> String {
    let now = jiff::Timestamp::now();
    let utc = |t: jiff::Timestamp| jiff::tz::TimeZone::UTC.to_datetime(t);
    let from = utc(now - jiff::SignedDuration::from_hours(1));
    let to = utc(now + jiff::SignedDuration::from_hours(1));
    format!(
        "daily {:02}:{:02}-{:02}:{:02} UTC",
        from.hour(),
        from.minute(),
        to.hour(),
        to.minute()
    )
}

#[test]
fn watch_audits_alerts_and_reboots_its_routers_once_inside_their_window() {
    let Some(lab) = Lab::start(&[
        LabSpec::new("clean", Plant::Clean),
        LabSpec::new("memory", Plant::MemoryImplant),
    ]) else {
        return;
    };
    let dir = lab.dir.path();
    let db = dir.join("store.db");
    let inv = dir.join("routers.toml");
    let window = window_around_now();
    std::fs::write(
        &inv,
        lab.inventory(|_| format!("reboot_window = \"{window}\"")),
    )
    .unwrap();
    let alerts = dir.join("alerts.jsonl");
    let log = dir.join("watch.log");
    let child = Command::new(env!("CARGO_BIN_EXE_orbwatch"))
        .arg("--db")
        .arg(&db)
        .args(["watch", "--stdin", "--min-severity", "low"])
        .arg("--routers")
        .arg(&inv)
        .arg("--routers-reboot")
        .arg("--alert-jsonl")
        .arg(&alerts)
        .args(["--commit-interval", "200ms"])
        .env("ORBWATCH_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("watch starts");
    let mut daemon = Daemon(child);
    let _stdin = daemon.0.stdin.take();
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    // The audit at start, then both reboots (one at a time), each proved,
    // health-checked and followed by a re-audit (its last step).
    let start = Instant::now();
    while !["clean", "memory"].iter().all(|r| {
        history(&db)
            .iter()
            .any(|s| s.0 == *r && s.1 == "reboot" && s.2 == "reaudit")
    }) {
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "both routers rebooted: history {:#?}\nlog:\n{}",
            history(&db),
            log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_for(
        "the memory implant's alert",
        Duration::from_secs(20),
        || {
            std::fs::read_to_string(&alerts)
                .is_ok_and(|t| t.contains("router_audit") && t.contains("\"memory\""))
        },
    );
    // A minute later the window is still open: no second attempt.
    std::thread::sleep(Duration::from_secs(65));
    let status = Command::new("kill")
        .args(["-TERM", &daemon.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let t = Instant::now();
    let exit = loop {
        if let Some(s) = daemon.0.try_wait().unwrap() {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "{}", log_text());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(exit.success(), "exit {exit:?}: {}", log_text());

    let h = history(&db);
    let run: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT MAX(id) FROM hunts", [], |r| r.get(0))
        .unwrap();
    for r in ["clean", "memory"] {
        let steps: Vec<_> = h.iter().filter(|s| s.0 == r).collect();
        let audited = steps
            .iter()
            .filter(|s| s.1 == "audit" && s.2 == "audited")
            .count();
        assert_eq!(audited, 1, "{r}: one audit at start: {steps:?}");
        let sent = steps
            .iter()
            .filter(|s| s.1 == "reboot" && s.2 == "sent")
            .count();
        assert_eq!(sent, 1, "{r}: rebooted once in this window: {steps:?}");
        assert!(
            steps.iter().any(|s| s.2 == "proof" && s.3),
            "{r}: the reboot is proved: {steps:?}"
        );
        assert!(
            steps.iter().all(|s| s.4 == Some(run)),
            "{r}: every step under the daemon's run {run}: {steps:?}"
        );
    }
    // The implant (in memory) did not survive the reboot.
    let memory_reaudit: Vec<_> = h
        .iter()
        .filter(|s| s.0 == "memory" && s.2 == "reaudit")
        .collect();
    assert!(
        memory_reaudit.iter().all(|s| s.3),
        "nothing persistent on the memory router: {memory_reaudit:?}"
    );
    // The findings are the daemon's: kept in its run.
    let mut out = String::new();
    Command::new(env!("CARGO_BIN_EXE_orbwatch"))
        .arg("--db")
        .arg(&db)
        .args(["findings", "--format", "jsonl", "--kind", "router_audit"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(
        out.lines().any(|l| l.contains("\"memory\"")),
        "router findings kept in the store: {out}"
    );
    assert!(
        log_text().contains("watch: routers audited: 2 of 2"),
        "{}",
        log_text()
    );
}
