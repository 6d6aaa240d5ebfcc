//! Hostile or broken servers and inputs: nothing panics, nothing empties a
//! feed, and each failure says what went wrong.

mod common;

use common::{Resp, Server, failed, no_env, sub};
use orbwatch_store::Store;
use orbwatch_subscribe::{
    HeaderSpec, Source, SubscriptionSpec, UpdateOutcome, misp, taxii, update,
};
use proptest::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

fn spec() -> SubscriptionSpec {
    SubscriptionSpec {
        retries: 0,
        retry_wait_ms: 10,
        timeout_secs: 5,
        ..Default::default()
    }
}

/// Serves `first` once, then `then` for every later request.
fn two_phase(first: &'static str, then: fn() -> Resp) -> Server {
    let n = Arc::new(AtomicU32::new(0));
    Server::http(move |_| {
        if n.fetch_add(1, Ordering::SeqCst) == 0 {
            Resp::ok(first)
        } else {
            then()
        }
    })
}

#[test]
fn an_empty_answer_does_not_empty_the_feed() {
    let server = two_phase("192.0.2.1\n192.0.2.2\n", || Resp::ok(""));
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    sub(&mut store, "l", &server.url("http", "/l.txt"), &spec());
    assert!(matches!(
        update(&mut store, "l", &no_env).unwrap(),
        UpdateOutcome::Updated { .. }
    ));
    let (error, kept) = failed(update(&mut store, "l", &no_env).unwrap());
    assert!(error.contains("gave no indicators"), "{error}");
    assert!(error.contains("while the feed has 2"), "{error}");
    assert_eq!(kept, Some(1));
    assert_eq!(store.feed("l").unwrap().unwrap().total(), 2);
}

#[test]
fn a_taxii_server_answering_html_or_looping_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    let html = Server::http(|_| Resp::ok("<html><body>login</body></html>"));
    sub(
        &mut store,
        "t1",
        &format!("taxii2+{}", html.url("http", "/api/collections/c1/")),
        &spec(),
    );
    let (error, kept) = failed(update(&mut store, "t1", &no_env).unwrap());
    assert!(error.contains("not JSON"), "{error}");
    assert!(error.contains("/api/collections/c1/objects/"), "{error}");
    assert_eq!(kept, None);

    // "more" forever with the same "next": refused, not followed forever.
    let looping = Server::http(|_| Resp::ok(r#"{"more":true,"next":"same","objects":[]}"#));
    sub(
        &mut store,
        "t2",
        &format!("taxii2+{}", looping.url("http", "/api/collections/c2/")),
        &spec(),
    );
    let (error, _) = failed(update(&mut store, "t2", &no_env).unwrap());
    assert!(error.contains("gives no new `next`"), "{error}");
    assert_eq!(looping.requests().len(), 2);
}

#[test]
fn a_misp_manifest_with_path_tricks_is_not_followed() {
    // Keys that are not uuids are rejected by the reader before any request.
    let server = Server::http(|req| {
        if req.path().ends_with("manifest.json") {
            Resp::ok(r#"{"../../etc/passwd": {"info": "x"}, "..": {"info": "y"}}"#)
        } else {
            Resp::status(404)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    sub(
        &mut store,
        "m",
        &format!("misp-feed+{}", server.url("http", "/feed/")),
        &spec(),
    );
    let out = update(&mut store, "m", &no_env).unwrap();
    let UpdateOutcome::Updated { report, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(report.loaded, 0);
    assert_eq!(report.rejected, 2);
    assert_eq!(
        server.requests().len(),
        1,
        "only the manifest was asked for"
    );
}

#[test]
fn nothing_listens() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    sub(
        &mut store,
        "gone",
        &format!("http://127.0.0.1:{port}/l.txt"),
        &spec(),
    );
    let (error, kept) = failed(update(&mut store, "gone", &no_env).unwrap());
    assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
    assert!(error.contains("after 1 attempt"), "{error}");
    assert_eq!(kept, None);
    let state = store.subscription("gone").unwrap().unwrap().state;
    assert_eq!(state["failures"], 1);
}

proptest! {
    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = taxii::parse_envelope(&bytes);
        let _ = misp::newest_timestamp(&bytes);
        let _ = misp::event_count(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        let _ = Source::parse(&text);
        if let Ok(h) = HeaderSpec::parse(&text) {
            let _ = h.resolve(&|_| Some("v".into()));
        }
    }

    #[test]
    fn envelope_like_json_never_panics(more in any::<bool>(), next in ".{0,20}", n in 0usize..5) {
        let objects: Vec<serde_json::Value> = (0..n).map(|i| serde_json::json!({"type": "indicator", "id": i})).collect();
        let doc = serde_json::json!({"more": more, "next": next, "objects": objects});
        let env = taxii::parse_envelope(doc.to_string().as_bytes()).unwrap();
        prop_assert_eq!(env.objects.len(), n);
        let url = taxii::objects_url("https://h/a/collections/c/", None, Some(&next), Some(1));
        prop_assert!(!url.contains(' '));
    }
}
