//! The typed detail of a router step reads the JSON exactly as
//! `orbwatch routers` wrote it before the type existed (so stores written
//! by earlier versions read unchanged), writes it back byte for byte (the
//! API and `routers history --format jsonl` pass it on as it was), and
//! keeps any detail it does not know as its raw JSON instead of failing.

use orbwatch_store::router_detail::{
    AuditDetail, HealthCheck, PrecheckPassed, PrecheckUnhealthy, ProofDetail, ReauditDetail,
    ReturnedDetail, SentDetail,
};
use orbwatch_store::rusqlite::params;
use orbwatch_store::{RouterStepDetail, Store};
use serde_json::json;

/// (step, detail JSON as stored) of every kind of step, as the writer
/// before the typed detail produced them: `serde_json::json!` in
/// crates/orbwatch-routers/src/reboot.rs and crates/orbwatch/src/cmd_routers.rs,
/// stored with `Value::to_string()` (keys in the macro's order: the
/// workspace's serde_json keeps insertion order).
const WRITTEN: &[(&str, &str)] = &[
    (
        "audited",
        r#"{"findings":3,"uptime_secs":86400.5,"error":null,"host_key_changed":false}"#,
    ),
    (
        "error",
        r#"{"findings":1,"uptime_secs":null,"error":"router lyon: ssh could not connect or log in: timed out","host_key_changed":true}"#,
    ),
    (
        "precheck",
        r#"{"uptime_secs":86400.0,"boot_id":"6f1c2d0e-aa41-4bb7-9d1e-0c7d1f3e2a10","findings":2,"health":[{"check":"wan_ping 192.0.2.1","ok":true,"detail":"$ ping -c 1 -W 2 192.0.2.1 -> exit 0: 1 packets transmitted, 1 received"}]}"#,
    ),
    (
        "precheck",
        r#"{"uptime_secs":86400.0,"boot_id":null,"findings":0,"health":[]}"#,
    ),
    (
        "precheck",
        r#"{"uptime_secs":120.0,"health":[{"check":"dns example.org @192.0.2.53","ok":false,"detail":"$ nslookup example.org 192.0.2.53 -> exit 1: ;; connection timed out"}]}"#,
    ),
    ("precheck", r#"{"error":"no uptime"}"#),
    (
        "refused",
        r#"{"reason":"outside its reboot window \"sun 02:00-04:00\""}"#,
    ),
    (
        "skipped",
        r#"{"reason":"already rebooted inside this window (up 300 s, the window \"sun 02:00-04:00\" lasts 7200 s)"}"#,
    ),
    (
        "not_started",
        r#"{"reason":"router lyon did not come back after its reboot; no further reboot was started"}"#,
    ),
    ("dry_run", r#"{"would_run":"reboot"}"#),
    ("sent", r#"{"command":"reboot"}"#),
    (
        "sent",
        r#"{"error":"router lyon: ssh could not connect or log in: refused"}"#,
    ),
    ("returned", r#"{"after_secs":65.25}"#),
    ("returned", r#"{"after_secs":null}"#),
    (
        "never_returned",
        r#"{"reason":"did not answer SSH with a lower uptime within 600 s of its reboot"}"#,
    ),
    (
        "proof",
        r#"{"uptime_before":86400.0,"uptime_after":12.0,"boot_id_changed":true}"#,
    ),
    (
        "proof",
        r#"{"uptime_before":86400.0,"uptime_after":12.0,"boot_id_changed":null}"#,
    ),
    (
        "health",
        r#"[{"check":"ssh","ok":true,"detail":"answers"},{"check":"listening 22","ok":false,"detail":"not listening"}]"#,
    ),
    (
        "reaudit",
        r#"{"cleared":["listening"],"persistent":["persistence","hash_indicator"],"new":[]}"#,
    ),
];

/// The literals above are what the old writer's macros give with this
/// workspace's serde_json (the same calls, copied from the code they
/// replace), so that the test reads what was really stored.
#[test]
fn the_literals_are_what_the_old_writer_wrote() {
    let health = json!([{"check": "ssh", "ok": true, "detail": "answers"},
        {"check": "listening 22", "ok": false, "detail": "not listening"}]);
    let none: Option<String> = None;
    let made = [
        json!({"findings": 3, "uptime_secs": Some(86400.5), "error": none, "host_key_changed": false}),
        json!({"uptime_secs": 120.0, "health": [{"check": "dns example.org @192.0.2.53", "ok": false,
            "detail": "$ nslookup example.org 192.0.2.53 -> exit 1: ;; connection timed out"}]}),
        json!({"error": "no uptime"}),
        json!({"command": "reboot"}),
        json!({"after_secs": Some(65.25)}),
        json!({"uptime_before": 86400.0, "uptime_after": 12.0, "boot_id_changed": Some(true)}),
        health,
        json!({
            "cleared": vec!["listening".to_string()],
            "persistent": vec!["persistence".to_string(), "hash_indicator".to_string()],
            "new": Vec::<String>::new(),
        }),
    ];
    for m in made {
        let text = m.to_string();
        assert!(
            WRITTEN.iter().any(|(_, w)| *w == text),
            "the old writer gives {text}, which is not among the literals"
        );
    }
}

#[test]
fn every_written_detail_reads_typed_and_writes_back_the_same() {
    for (step, text) in WRITTEN {
        let d = RouterStepDetail::read(step, serde_json::from_str(text).unwrap());
        assert!(
            !matches!(d, RouterStepDetail::Other(_)),
            "step {step}: {text} was not recognised"
        );
        assert_eq!(serde_json::to_string(&d).unwrap(), *text, "step {step}");
        assert_eq!(d.to_string(), *text, "step {step}: Display");
        assert_eq!(d.to_json().to_string(), *text, "step {step}: to_json");
    }
    // The typed values are the ones a reader expects.
    let read = |step: &str, i: usize| {
        RouterStepDetail::read(step, serde_json::from_str(WRITTEN[i].1).unwrap())
    };
    assert_eq!(
        read("audited", 0),
        RouterStepDetail::Audit(AuditDetail {
            findings: 3,
            uptime_secs: Some(86400.5),
            error: None,
            host_key_changed: false
        })
    );
    assert!(
        matches!(read("precheck", 2), RouterStepDetail::PrecheckPassed(PrecheckPassed { findings: 2, ref boot_id, .. }) if boot_id.is_some())
    );
    assert!(matches!(
        read("precheck", 3),
        RouterStepDetail::PrecheckPassed(PrecheckPassed { boot_id: None, .. })
    ));
    assert!(
        matches!(read("precheck", 4), RouterStepDetail::PrecheckUnhealthy(PrecheckUnhealthy { ref health, .. }) if !health[0].ok)
    );
    assert_eq!(read("precheck", 5), RouterStepDetail::failed("no uptime"));
    assert_eq!(
        read("sent", 10),
        RouterStepDetail::Sent(SentDetail {
            command: "reboot".into()
        })
    );
    assert!(matches!(read("sent", 11), RouterStepDetail::Failed(_)));
    assert_eq!(
        read("returned", 12),
        RouterStepDetail::Returned(ReturnedDetail {
            after_secs: Some(65.25)
        })
    );
    assert_eq!(
        read("proof", 15),
        RouterStepDetail::Proof(ProofDetail {
            uptime_before: 86400.0,
            uptime_after: 12.0,
            boot_id_changed: Some(true)
        })
    );
    assert_eq!(
        read("health", 17),
        RouterStepDetail::Health(vec![
            HealthCheck {
                check: "ssh".into(),
                ok: true,
                detail: "answers".into()
            },
            HealthCheck {
                check: "listening 22".into(),
                ok: false,
                detail: "not listening".into()
            },
        ])
    );
    assert_eq!(
        read("reaudit", 18),
        RouterStepDetail::Reaudit(ReauditDetail {
            cleared: vec!["listening".into()],
            persistent: vec!["persistence".into(), "hash_indicator".into()],
            new: vec![],
        })
    );
}

/// Details the type does not describe (older writers, a kind added later,
/// a key renamed or added, a number stored as an integer) stay as they
/// were: shown and passed on as their JSON, never an error.
#[test]
fn an_unknown_or_older_detail_is_kept_as_its_raw_json() {
    for (step, text) in [
        ("precheck", r#"{"uptime":86400}"#),
        ("audited", r#"{"findings":2}"#),
        ("sent", "{}"),
        ("returned", r#"{"after_secs":65}"#),
        ("proof", r#"{"uptime_before":86400.0,"uptime_after":12.0}"#),
        (
            "reaudit",
            r#"{"cleared":[],"persistent":[],"new":[],"moved":["x"]}"#,
        ),
        (
            "reaudit",
            r#"{"persistent":["persistence"],"cleared":[],"new":[]}"#,
        ),
        ("refused", r#"{"why":"outside its window"}"#),
        ("health", r#"{"ssh":"answers"}"#),
        ("rollback", r#"{"reason":"a step kind of a later version"}"#),
        ("done", "null"),
        ("audited", "[1,2,3]"),
    ] {
        let json: serde_json::Value = serde_json::from_str(text).unwrap();
        let d = RouterStepDetail::read(step, json.clone());
        assert_eq!(d, RouterStepDetail::Other(json), "step {step}: {text}");
        assert_eq!(d.to_string(), text, "step {step}");
        assert_eq!(serde_json::to_string(&d).unwrap(), text, "step {step}");
    }
}

/// Through the store: rows written as the old writer wrote them read
/// back typed, an unknown one as it was, and each step's JSON (what the
/// API and `routers history --format jsonl` print) carries the stored
/// detail unchanged.
#[test]
fn stored_details_read_back_typed_and_unchanged() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("s.db");
    let mut store = Store::open(&db).expect("open");
    let unknown = ("rollback", r#"{"to":"firmware 7.1"}"#);
    let tx = store.write_transaction().expect("tx");
    for (i, (step, detail)) in WRITTEN.iter().chain([&unknown]).enumerate() {
        tx.execute(
            "INSERT INTO router_history (router, at, action, step, ok, hunt_id, detail_json) \
             VALUES ('lyon', ?1, 'reboot', ?2, 1, NULL, ?3)",
            params![format!("2026-11-08T02:00:{i:02}.000000000Z"), step, detail],
        )
        .expect("insert");
    }
    tx.commit().expect("commit");
    drop(store);
    let reader = Store::open_read_only(&db).expect("read only");
    let steps = reader
        .router_history(Some("lyon"), None, 100)
        .expect("history");
    assert_eq!(steps.len(), WRITTEN.len() + 1);
    for (s, (step, detail)) in steps.iter().zip(WRITTEN.iter().chain([&unknown])) {
        assert_eq!(s.step, *step);
        let as_json = serde_json::to_string(s).unwrap();
        assert!(
            as_json.contains(&format!(r#""detail":{detail}"#)),
            "{as_json} does not carry {detail}"
        );
    }
    assert!(matches!(
        steps.last().unwrap().detail,
        RouterStepDetail::Other(_)
    ));
    assert!(matches!(steps[0].detail, RouterStepDetail::Audit(_)));
}
