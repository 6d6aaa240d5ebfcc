//! When findings alert (raise, escalation, replays after a restart, the
//! filter) and the JSON lines sink that writes them.

mod common;

use std::time::Duration;

use common::{finding, ts, wait_for};
use orbwatch_alert::{
    AlertConfig, AlertDocument, AlertEvent, AlertFilter, Alerts, DeliveryConfig, JsonlTarget,
    SinkSpec,
};
use orbwatch_detect::{FindingKind, Severity};
use orbwatch_store::Store;

fn fast() -> DeliveryConfig {
    DeliveryConfig {
        poll: Duration::from_millis(10),
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        ..DeliveryConfig::default()
    }
}

#[test]
fn updates_alert_only_when_more_serious_and_replays_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let out = dir.path().join("alerts.jsonl");
    let mut store = Store::open(&db).unwrap();
    let cfg = AlertConfig {
        filter: AlertFilter {
            min_severity: Some(Severity::Medium),
            min_score: Some(50),
        },
        sinks: vec![SinkSpec::Jsonl(JsonlTarget::File(out.clone()))],
        delivery: fast(),
    };
    let alerts = Alerts::new(cfg.clone());
    let now = ts("2026-03-01T10:05:00Z");

    let a_medium = finding(
        "aaaa",
        FindingKind::BruteForce,
        "45.155.205.233",
        Severity::Medium,
        60,
    );
    let mut a_more = a_medium.clone();
    a_more.count = 370;
    let mut a_high = a_more.clone();
    a_high.severity = Some(Severity::High);
    let b_low = finding(
        "bbbb",
        FindingKind::PortScan,
        "45.155.205.9",
        Severity::Low,
        90,
    );
    let c_lowscore = finding(
        "cccc",
        FindingKind::PortScan,
        "45.155.205.10",
        Severity::High,
        40,
    );
    let mut c_noscore = c_lowscore.clone();
    c_noscore.id = "cccd".into();
    c_noscore.score = None;

    let batches = [
        vec![
            a_medium.clone(),
            b_low.clone(),
            c_lowscore.clone(),
            c_noscore.clone(),
        ],
        vec![a_more.clone()],
        vec![a_high.clone()],
        vec![a_medium.clone(), a_more.clone()],
    ];
    let mut counts = Vec::new();
    for b in &batches {
        let tx = store.write_transaction().unwrap();
        let c = alerts.on_findings_at(&tx, b, now).unwrap();
        tx.commit().unwrap();
        counts.push((c.queued, c.repeated, c.filtered));
    }
    // Raised; count only; escalated; lower severity again.
    assert_eq!(counts, [(1, 0, 3), (0, 1, 0), (1, 0, 0), (0, 2, 0)]);

    // A rolled-back transaction queues nothing, and the next call still
    // sees the finding as news.
    let d = finding(
        "dddd",
        FindingKind::BruteForce,
        "45.155.205.11",
        Severity::High,
        80,
    );
    {
        let tx = store.write_transaction().unwrap();
        assert_eq!(
            alerts
                .on_findings_at(&tx, std::slice::from_ref(&d), now)
                .unwrap()
                .queued,
            1
        );
    }
    // A restart (new Alerts) replaying everything queues only what is new.
    let alerts2 = Alerts::new(cfg);
    let tx = store.write_transaction().unwrap();
    let all: Vec<_> = batches
        .iter()
        .flatten()
        .cloned()
        .chain([d.clone()])
        .collect();
    let c = alerts2.on_findings_at(&tx, &all, now).unwrap();
    tx.commit().unwrap();
    assert_eq!(c.queued, 1, "only dddd is new");

    let handle = alerts2.start_delivery(&db).unwrap();
    let sink = alerts2.sink_names()[0].clone();
    wait_for(Duration::from_secs(20), "JSON lines delivery", || {
        Store::open(&db)
            .unwrap()
            .pending_alert_count(&sink)
            .unwrap()
            == 0
    });
    handle.stop();

    let text = std::fs::read_to_string(&out).unwrap();
    let docs: Vec<AlertDocument> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<_> = docs
        .iter()
        .map(|d| (d.alert_id.as_str(), d.event))
        .collect();
    assert_eq!(
        ids,
        [
            ("aaaa-medium", AlertEvent::Raised),
            ("aaaa-high", AlertEvent::Escalated),
            ("dddd-high", AlertEvent::Raised),
        ]
    );
    assert_eq!(docs[1].count, 370);
    assert_eq!(docs[1].finding.id, "aaaa");
    assert_eq!(
        docs[0].summary,
        "37 failed logins from 45.155.205.233 in 4 minutes"
    );
    assert_eq!(docs[2].created, now);
}

#[test]
fn an_unwritable_alert_file_fails_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    Store::open(&db).unwrap();
    let alerts = Alerts::new(AlertConfig {
        sinks: vec![SinkSpec::Jsonl(JsonlTarget::File(
            dir.path().join("no/such/dir/alerts.jsonl"),
        ))],
        ..AlertConfig::default()
    });
    let err = alerts.start_delivery(&db).err().expect("must fail");
    let msg = err.to_string();
    assert!(
        msg.contains("cannot open the alert file") && msg.contains("no/such/dir"),
        "{msg}"
    );
}

#[test]
fn a_webhook_url_that_cannot_work_fails_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    Store::open(&db).unwrap();
    for url in [
        "hooks.example.com/x",
        "ftp://a/b",
        "http://",
        "https:///path",
        "http://a b/",
    ] {
        let alerts = Alerts::new(AlertConfig {
            sinks: vec![SinkSpec::Webhook(orbwatch_alert::WebhookSpec::new(url))],
            ..AlertConfig::default()
        });
        let err = alerts.start_delivery(&db).err().expect(url).to_string();
        assert!(
            err.contains("is not an http:// or https:// URL"),
            "{url}: {err}"
        );
    }
}

#[test]
fn an_unreadable_queued_alert_is_abandoned_for_syslog_and_the_rest_goes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let mut store = Store::open(&db).unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let spec: orbwatch_alert::SyslogSpec = format!("udp://{}", udp.local_addr().unwrap())
        .parse()
        .unwrap();
    let alerts = Alerts::new(AlertConfig {
        sinks: vec![SinkSpec::Syslog(spec)],
        delivery: fast(),
        ..AlertConfig::default()
    });
    let sink = alerts.sink_names()[0].clone();
    // A row written by something else (or damaged): not an alert document.
    store
        .enqueue_alert(
            &sink,
            "garbage",
            "{\"not\": \"an alert\"",
            ts("2026-03-01T10:00:00Z"),
        )
        .unwrap();
    let f = finding(
        "ok",
        FindingKind::BruteForce,
        "45.155.205.233",
        Severity::High,
        80,
    );
    let tx = store.write_transaction().unwrap();
    alerts.on_findings(&tx, &[f]).unwrap();
    tx.commit().unwrap();
    let h = alerts.start_delivery(&db).unwrap();
    wait_for(Duration::from_secs(20), "delivery", || {
        store.pending_alert_count(&sink).unwrap() == 0
    });
    h.stop();
    let mut buf = [0u8; 8192];
    let n = udp.recv(&mut buf).unwrap();
    let msg = String::from_utf8_lossy(&buf[..n]);
    assert!(msg.contains("externalId=ok-high"), "{msg}");
    let rows = store.outbox(&sink).unwrap();
    assert_eq!(rows[0].alert_id, "garbage");
    assert!(
        rows[0]
            .last_error
            .as_deref()
            .unwrap()
            .starts_with("abandoned: the queued alert is not an alert document")
    );
}
