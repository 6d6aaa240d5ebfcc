//! A webhook that is down (connection refused), then failing (HTTP 500),
//! then losing one answer, then up: every alert arrives afterwards, in
//! order, each accepted once, with its id in the headers. The delivery
//! threads are also restarted in the middle, as after a daemon restart.
//! The receiver is a real HTTP/1.1 server on 127.0.0.1.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{finding, ts, wait_for};
use orbwatch_alert::{AlertConfig, AlertDocument, Alerts, DeliveryConfig, SinkSpec, WebhookSpec};
use orbwatch_detect::{FindingKind, Severity};
use orbwatch_store::Store;

#[derive(Debug, Clone)]
struct Seen {
    idempotency_key: Option<String>,
    alert_id_header: Option<String>,
    body_alert_id: String,
    status: u16,
}

/// Lower-case header names and values, and the body.
type Request = (Vec<(String, String)>, Vec<u8>);

/// Read one request; None on a malformed one.
fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut r = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    if !line.starts_with("POST /hook ") {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())?;
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some((headers, body))
}

/// Serve: the first `fail` requests get 500, the next one is read and its
/// connection dropped without an answer, the rest get 200.
fn serve(listener: TcpListener, fail: usize, seen: Arc<Mutex<Vec<Seen>>>) {
    std::thread::spawn(move || {
        let mut n = 0usize;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Some((headers, body)) = read_request(&mut stream) else {
                continue;
            };
            let h = |name: &str| {
                headers
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            let doc: AlertDocument = serde_json::from_slice(&body).expect("alert document");
            let status = if n < fail {
                500
            } else if n == fail {
                0
            } else {
                200
            };
            n += 1;
            seen.lock().unwrap().push(Seen {
                idempotency_key: h("idempotency-key"),
                alert_id_header: h("x-orbwatch-alert-id"),
                body_alert_id: doc.alert_id,
                status,
            });
            if status == 0 {
                drop(stream);
                continue;
            }
            let reason = if status == 200 {
                "OK"
            } else {
                "Internal Server Error"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
}

#[test]
fn a_webhook_down_for_a_while_gets_every_alert_in_order_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let mut store = Store::open(&db).unwrap();

    // A port with nothing listening: connections are refused.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let mut spec = WebhookSpec::new(url);
    spec.timeout = Duration::from_secs(5);
    let cfg = AlertConfig {
        sinks: vec![SinkSpec::Webhook(spec)],
        delivery: DeliveryConfig {
            poll: Duration::from_millis(10),
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_millis(80),
            batch: 7,
            retention: None,
        },
        ..AlertConfig::default()
    };
    let alerts = Alerts::new(cfg.clone());
    let sink = alerts.sink_names()[0].clone();
    let now = ts("2026-03-01T10:05:00Z");
    let enqueue = |store: &mut Store, from: usize, to: usize| {
        let findings: Vec<_> = (from..to)
            .map(|i| {
                finding(
                    &format!("f{i:03}"),
                    FindingKind::BruteForce,
                    &format!("45.155.205.{i}"),
                    Severity::High,
                    80,
                )
            })
            .collect();
        let tx = store.write_transaction().unwrap();
        assert_eq!(
            alerts.on_findings_at(&tx, &findings, now).unwrap().queued,
            (to - from) as u64
        );
        tx.commit().unwrap();
    };
    enqueue(&mut store, 0, 20);

    let handle = alerts.start_delivery(&db).unwrap();
    // Refused, retried with backoff: the head's attempts grow.
    wait_for(Duration::from_secs(20), "three refused attempts", || {
        store
            .next_pending_alert(&sink)
            .unwrap()
            .is_some_and(|h| h.attempts >= 3)
    });
    let head = store.next_pending_alert(&sink).unwrap().unwrap();
    assert_eq!(head.alert_id, "f000-high");
    assert!(head.last_error.is_some());
    assert_eq!(store.pending_alert_count(&sink).unwrap(), 20);

    // More alerts while it is down.
    enqueue(&mut store, 20, 30);

    // Up, but failing 4 times, then losing one answer.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("rebind the webhook port");
    serve(listener, 4, seen.clone());

    // Restart delivery once some alerts went through.
    wait_for(Duration::from_secs(20), "ten accepted alerts", || {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|s| s.status == 200)
            .count()
            >= 10
    });
    let first = handle.stop().remove(0).1;
    enqueue(&mut store, 30, 40);
    let handle = alerts.start_delivery(&db).unwrap();
    wait_for(Duration::from_secs(30), "every alert delivered", || {
        store.pending_alert_count(&sink).unwrap() == 0
    });
    let (name, second) = handle.stats().remove(0);
    handle.stop();
    assert_eq!(name, sink);
    // Counted by the threads: refusals, four 500s and the lost answer
    // were all failures of the first run.
    assert!(first.failures >= 3 + 5, "{first:?}");
    assert_eq!(second.failures, 0);
    assert_eq!(first.abandoned + second.abandoned, 0);

    let seen = seen.lock().unwrap().clone();
    let accepted: Vec<&str> = seen
        .iter()
        .filter(|s| s.status == 200)
        .map(|s| s.body_alert_id.as_str())
        .collect();
    let expected: Vec<String> = (0..40).map(|i| format!("f{i:03}-high")).collect();
    assert_eq!(accepted, expected, "accepted once each, in queue order");
    // Every request carried the alert id in both headers.
    for s in &seen {
        assert_eq!(s.idempotency_key.as_deref(), Some(s.body_alert_id.as_str()));
        assert_eq!(s.alert_id_header.as_deref(), Some(s.body_alert_id.as_str()));
    }
    // The four 500s and the lost answer were all the head alert, retried
    // under the same id.
    let failed: Vec<(&str, u16)> = seen
        .iter()
        .filter(|s| s.status != 200)
        .map(|s| (s.body_alert_id.as_str(), s.status))
        .collect();
    assert_eq!(
        failed,
        [
            ("f000-high", 500),
            ("f000-high", 500),
            ("f000-high", 500),
            ("f000-high", 500),
            ("f000-high", 0)
        ]
    );
    assert_eq!(seen.len(), 45);
    // A stop lets the round in progress finish (send and mark), so the
    // two runs together delivered each alert once.
    assert_eq!(
        first.delivered + second.delivered,
        40,
        "{first:?} {second:?}"
    );
    let rows = store.outbox(&sink).unwrap();
    assert_eq!(rows.len(), 40);
    assert!(rows.iter().all(|r| r.delivered.is_some()));
    assert!(
        rows[0].attempts >= 3 + 5,
        "attempts of the head: {}",
        rows[0].attempts
    );
    assert!(rows[1..].iter().all(|r| r.attempts == 0));
}

#[test]
fn a_body_the_webhook_refuses_for_good_does_not_block_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let mut store = Store::open(&db).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Some((_, body)) = read_request(&mut stream) else {
                continue;
            };
            let doc: AlertDocument = serde_json::from_slice(&body).unwrap();
            let status = if doc.finding_id == "bad" { 400 } else { 200 };
            g.lock().unwrap().push((doc.alert_id, status));
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    let alerts = Alerts::new(AlertConfig {
        sinks: vec![SinkSpec::Webhook(WebhookSpec::new(format!(
            "http://127.0.0.1:{port}/hook"
        )))],
        delivery: DeliveryConfig {
            poll: Duration::from_millis(10),
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_millis(50),
            ..DeliveryConfig::default()
        },
        ..AlertConfig::default()
    });
    let sink = alerts.sink_names()[0].clone();
    let fs = [
        finding(
            "bad",
            FindingKind::BruteForce,
            "45.155.205.1",
            Severity::High,
            80,
        ),
        finding(
            "good",
            FindingKind::BruteForce,
            "45.155.205.2",
            Severity::High,
            80,
        ),
    ];
    let tx = store.write_transaction().unwrap();
    alerts.on_findings(&tx, &fs).unwrap();
    tx.commit().unwrap();
    let h = alerts.start_delivery(&db).unwrap();
    wait_for(Duration::from_secs(20), "delivery", || {
        store.pending_alert_count(&sink).unwrap() == 0
    });
    h.stop();
    assert_eq!(
        *got.lock().unwrap(),
        [
            ("bad-high".to_string(), 400),
            ("good-high".to_string(), 200)
        ]
    );
    let rows = store.outbox(&sink).unwrap();
    assert!(
        rows[0]
            .last_error
            .as_deref()
            .unwrap()
            .starts_with("abandoned: "),
        "{:?}",
        rows[0]
    );
    assert!(rows[0].last_error.as_deref().unwrap().contains("400"));
}
