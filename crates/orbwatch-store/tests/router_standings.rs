//! `router_standings` over many routers: every standing agrees with one
//! worked out in Rust from the whole history (steps, failures, the latest
//! audit and reboot sent, the last step by `seq`), on a history where the
//! order of writing and the order of the `at` stamps disagree, and where
//! some routers were never audited or never rebooted.

use std::collections::BTreeMap;
use std::time::Instant;

use jiff::Timestamp;
use orbwatch_store::rusqlite::params;
use orbwatch_store::{RouterStanding, RouterStep, Store};

/// The step kinds `orbwatch routers` writes, with the action each belongs to.
const KINDS: &[(&str, &str)] = &[
    ("audit", "audited"),
    ("audit", "error"),
    ("audit", "skipped"),
    ("reboot", "precheck"),
    ("reboot", "refused"),
    ("reboot", "sent"),
    ("reboot", "returned"),
    ("reboot", "never_returned"),
    ("reboot", "proof"),
    ("reboot", "health"),
    ("reboot", "reaudit"),
    ("reboot", "done"),
    ("reboot", "dry_run"),
];

/// A small deterministic generator (a 64-bit LCG), so that a failure
/// comes back the same on every run.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// `routers` × `per_router` steps written interleaved (step j of every
/// router, then step j + 1), each at a time that does not follow the
/// writing order, in one write transaction as `orbwatch routers` writes.
fn seed(store: &mut Store, routers: usize, per_router: usize) {
    let mut rng = Lcg(0x5eed_0f0b);
    let tx = store.write_transaction().expect("write transaction");
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO router_history (router, at, action, step, ok, hunt_id, detail_json) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .expect("prepare");
        for j in 0..per_router {
            for r in 0..routers {
                // Router 7, 17, … never audited; 3, 13, … never sent a reboot.
                let (action, step) = loop {
                    let k = KINDS[rng.next(KINDS.len() as u64) as usize];
                    if (r % 10 == 7 && k.1 == "audited") || (r % 10 == 3 && k.1 == "sent") {
                        continue;
                    }
                    break k;
                };
                let day = 1 + rng.next(28);
                let secs = rng.next(86_400);
                let at = format!(
                    "2026-11-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
                    secs / 3600,
                    secs / 60 % 60,
                    secs % 60,
                    rng.next(1_000_000_000)
                );
                let ok = rng.next(4) != 0;
                let hunt = (step == "audited" || step == "reaudit").then_some(j as i64 + 1);
                let detail = format!(r#"{{"n":{j},"router":{r}}}"#);
                insert
                    .execute(params![
                        format!("r{r:04}"),
                        at,
                        action,
                        step,
                        ok,
                        hunt,
                        detail
                    ])
                    .expect("insert");
            }
        }
    }
    tx.commit().expect("commit");
}

/// The standings worked out from the whole history, step by step.
fn reference(history: &[RouterStep]) -> Vec<RouterStanding> {
    let mut by_router: BTreeMap<&str, Vec<&RouterStep>> = BTreeMap::new();
    for s in history {
        by_router.entry(s.router.as_str()).or_default().push(s);
    }
    let latest = |steps: &[&RouterStep], kind: &str| -> Option<Timestamp> {
        steps.iter().filter(|s| s.step == kind).map(|s| s.at).max()
    };
    by_router
        .into_iter()
        .map(|(router, steps)| RouterStanding {
            router: router.to_string(),
            steps: steps.len() as u64,
            failed_steps: steps.iter().filter(|s| !s.ok).count() as u64,
            last_audit: latest(&steps, "audited"),
            last_reboot: latest(&steps, "sent"),
            last: (*steps.iter().max_by_key(|s| s.seq).expect("a step")).clone(),
        })
        .collect()
}

#[test]
fn two_hundred_routers_of_twenty_steps_stand_as_their_history_says() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("s.db");
    let mut store = Store::open(&db).expect("open");
    seed(&mut store, 200, 20);
    let history = store
        .router_history(None, None, usize::MAX)
        .expect("history");
    assert_eq!(history.len(), 200 * 20);
    let want = reference(&history);
    assert_eq!(want.len(), 200);
    // The data are what the test claims: the last step by seq is not the
    // latest by time for most routers, and some routers lack an audit or
    // a reboot.
    assert!(
        want.iter()
            .filter(|s| history
                .iter()
                .filter(|h| h.router == s.router)
                .any(|h| h.at > s.last.at))
            .count()
            > 100
    );
    assert!(want.iter().any(|s| s.last_audit.is_none()));
    assert!(want.iter().any(|s| s.last_reboot.is_none()));

    let got = store.router_standings().expect("standings");
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "router {}", w.router);
    }
    // The same from a read-only connection, as `serve` and the report read.
    drop(store);
    let reader = Store::open_read_only(&db).expect("read only");
    assert_eq!(reader.router_standings().expect("standings"), want);
}

/// The time of `router_standings` over 1,000 routers of 20 steps (a
/// figure for bench/README.md, not an assertion). Run:
/// `cargo test -p orbwatch-store --test router_standings -- --ignored --nocapture`
#[test]
#[ignore = "a timing, not a check"]
fn standings_of_a_thousand_routers_timed() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut store = Store::open(dir.path().join("s.db")).expect("open");
    seed(&mut store, 1_000, 20);
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let s = store.router_standings().expect("standings");
        best = best.min(t.elapsed().as_secs_f64());
        assert_eq!(s.len(), 1_000);
    }
    println!(
        "router_standings, 1,000 routers x 20 steps: best of 5 {:.1} ms",
        best * 1e3
    );
}
