//! The routers' history read back from the store: every step in order, per
//! router or all, paged by `seq`, a standing per router, from a read-only
//! connection too; a row with unreadable detail is an error naming it.

use orbwatch_store::rusqlite::params;
use orbwatch_store::{RouterStepDetail, Store};

/// Write steps the way `orbwatch routers` does (raw rows in a write
/// transaction): (router, at, action, step, ok, detail JSON).
fn write(store: &mut Store, rows: &[(&str, &str, &str, &str, bool, &str)]) {
    let tx = store.write_transaction().expect("tx");
    for (router, at, action, step, ok, detail) in rows {
        tx.execute(
            "INSERT INTO router_history (router, at, action, step, ok, hunt_id, detail_json) VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6)",
            params![router, at, action, step, ok, detail],
        )
        .expect("insert");
    }
    tx.commit().expect("commit");
}

const STEPS: &[(&str, &str, &str, &str, bool, &str)] = &[
    (
        "lyon",
        "2026-11-01T02:00:00.000000000Z",
        "audit",
        "audited",
        true,
        r#"{"findings":1}"#,
    ),
    (
        "paris",
        "2026-11-01T02:00:01.000000000Z",
        "audit",
        "audited",
        true,
        r#"{"findings":0}"#,
    ),
    (
        "lyon",
        "2026-11-08T02:00:00.000000000Z",
        "reboot",
        "sent",
        true,
        "{}",
    ),
    (
        "lyon",
        "2026-11-08T02:01:10.000000000Z",
        "reboot",
        "returned",
        true,
        r#"{"after_secs":70.0}"#,
    ),
    (
        "lyon",
        "2026-11-08T02:01:20.000000000Z",
        "reboot",
        "reaudit",
        false,
        r#"{"cleared":["listening"],"persistent":["persistence"],"new":[]}"#,
    ),
    (
        "paris",
        "2026-11-08T03:00:00.000000000Z",
        "reboot",
        "refused",
        false,
        r#"{"reason":"outside its reboot window"}"#,
    ),
];

#[test]
fn steps_come_back_in_order_per_router_and_paged() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("s.db");
    let mut store = Store::open(&db).expect("open");
    write(&mut store, STEPS);

    let all = store.router_history(None, None, 100).expect("all");
    assert_eq!(all.len(), STEPS.len());
    let got: Vec<(&str, &str)> = all
        .iter()
        .map(|s| (s.router.as_str(), s.step.as_str()))
        .collect();
    let want: Vec<(&str, &str)> = STEPS.iter().map(|s| (s.0, s.3)).collect();
    assert_eq!(got, want);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));

    let lyon = store.router_history(Some("lyon"), None, 100).expect("lyon");
    assert_eq!(
        lyon.iter().map(|s| s.step.as_str()).collect::<Vec<_>>(),
        ["audited", "sent", "returned", "reaudit"]
    );
    let reaudit = &lyon[3];
    assert!(!reaudit.ok);
    assert_eq!(reaudit.action, "reboot");
    match &reaudit.detail {
        RouterStepDetail::Reaudit(r) => {
            assert_eq!(r.cleared, ["listening"]);
            assert_eq!(r.persistent, ["persistence"]);
            assert!(r.new.is_empty());
        }
        other => panic!("the re-audit's detail is typed: {other:?}"),
    }
    assert_eq!(reaudit.at.to_string(), "2026-11-08T02:01:20Z");

    // Paging: two at a time, each page after the last seq seen.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.router_history(None, after, 2).expect("page");
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        after = page.last().map(|s| s.seq);
        seen.extend(page);
    }
    assert_eq!(seen, all);
    let recent = store.router_recent_steps("lyon", 2).expect("recent");
    assert_eq!(
        recent.iter().map(|s| s.step.as_str()).collect::<Vec<_>>(),
        ["returned", "reaudit"]
    );
    assert!(
        store
            .router_history(Some("nowhere"), None, 10)
            .expect("none")
            .is_empty()
    );
}

#[test]
fn each_router_has_a_standing_from_a_read_only_connection() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("s.db");
    let mut store = Store::open(&db).expect("open");
    assert!(store.router_standings().expect("empty").is_empty());
    write(&mut store, STEPS);
    drop(store);

    let reader = Store::open_read_only(&db).expect("read only");
    let s = reader.router_standings().expect("standings");
    assert_eq!(
        s.iter().map(|r| r.router.as_str()).collect::<Vec<_>>(),
        ["lyon", "paris"]
    );
    let lyon = &s[0];
    assert_eq!(lyon.steps, 4);
    assert_eq!(lyon.failed_steps, 1);
    assert_eq!(
        lyon.last_audit.map(|t| t.to_string()).as_deref(),
        Some("2026-11-01T02:00:00Z")
    );
    assert_eq!(
        lyon.last_reboot.map(|t| t.to_string()).as_deref(),
        Some("2026-11-08T02:00:00Z")
    );
    assert_eq!(lyon.last.step, "reaudit");
    let paris = &s[1];
    assert_eq!((paris.steps, paris.failed_steps), (2, 1));
    assert_eq!(paris.last_reboot, None, "a refused reboot was never sent");
    assert_eq!(paris.last.step, "refused");
}

#[test]
fn a_step_with_unreadable_detail_is_an_error_naming_its_row() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("s.db");
    let mut store = Store::open(&db).expect("open");
    write(
        &mut store,
        &[(
            "lyon",
            "2026-11-01T02:00:00.000000000Z",
            "audit",
            "audited",
            true,
            "{not json",
        )],
    );
    let e = store
        .router_history(None, None, 10)
        .expect_err("corrupt detail");
    let text = e.to_string();
    assert!(text.contains("router history row 1"), "{text}");
    assert!(text.contains("unreadable detail"), "{text}");
    let e = store.router_standings().expect_err("corrupt detail");
    assert!(e.to_string().contains("router history row 1"), "{e}");
}
