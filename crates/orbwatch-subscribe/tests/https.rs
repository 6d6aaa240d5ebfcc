//! Subscriptions over HTTPS against a real local server (127.0.0.1) with a
//! test CA: conditional requests (ETag → 304), a failing server, an
//! oversized response and a certificate from the wrong CA.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use common::{Body, Resp, Server, no_env, sub, test_pki};
use orbwatch_store::Store;
use orbwatch_subscribe::{HeaderSpec, SubscriptionSpec, UpdateOutcome, update};

/// The CERT-FR APT31 list (161 IPv4 relays), the project's sample feed.
fn certfr() -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/feeds/CERTFR-2021-IOC-003-IOC.csv"),
    )
    .unwrap()
}

fn write_ca(dir: &Path, pem: &str) -> PathBuf {
    let p = dir.join("ca.pem");
    std::fs::write(&p, pem).unwrap();
    p
}

fn spec_with(ca: Option<PathBuf>) -> SubscriptionSpec {
    SubscriptionSpec {
        ca_file: ca,
        retries: 1,
        retry_wait_ms: 10,
        timeout_secs: 10,
        ..Default::default()
    }
}

#[test]
fn second_update_is_a_304_and_costs_nothing() {
    let pki = test_pki("orbwatch test CA");
    let body = certfr();
    let served = body.clone();
    let server = Server::https(pki.server.clone(), move |req| {
        if req.header("if-none-match") == Some("\"certfr-v1\"") {
            return Resp::status(304).with_header("ETag", "\"certfr-v1\"");
        }
        Resp::ok(served.clone())
            .with_header("ETag", "\"certfr-v1\"")
            .with_header("Last-Modified", "Wed, 21 Jul 2021 00:00:00 GMT")
    });
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(dir.path(), &pki.ca_pem);
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    let url = server.url("https", "/feeds/CERTFR-2021-IOC-003-IOC.csv");
    sub(&mut store, "certfr", &url, &spec_with(Some(ca)));

    let first = update(&mut store, "certfr", &no_env).unwrap();
    let UpdateOutcome::Updated { report, bytes, .. } = first else {
        panic!("first update: {first:?}");
    };
    assert_eq!(report.version, 1);
    assert_eq!(report.loaded, 161);
    assert_eq!(bytes, body.len() as u64);
    let written_after_first = *server.written.lock().unwrap();

    let second = update(&mut store, "certfr", &no_env).unwrap();
    assert!(
        matches!(
            second,
            UpdateOutcome::Unchanged {
                version: Some(1),
                ..
            }
        ),
        "{second:?}"
    );
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].header("if-none-match"), None);
    assert_eq!(reqs[1].header("if-none-match"), Some("\"certfr-v1\""));
    assert_eq!(
        reqs[1].header("if-modified-since"),
        Some("Wed, 21 Jul 2021 00:00:00 GMT")
    );
    // The 304 carried no body: nothing more was sent.
    assert_eq!(*server.written.lock().unwrap(), written_after_first);
    let info = store.feed("certfr").unwrap().unwrap();
    assert_eq!(info.version, 1);
    assert_eq!(info.total(), 161);
    assert_eq!(store.feed_versions("certfr").unwrap().len(), 1);
}

#[test]
fn a_server_error_keeps_the_last_version() {
    let pki = test_pki("orbwatch test CA");
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let server = Server::https(pki.server.clone(), move |_| {
        if c.fetch_add(1, Ordering::SeqCst) == 0 {
            Resp::ok("203.0.113.7\n198.51.100.23\n192.0.2.200\n")
        } else {
            Resp::status(500)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(dir.path(), &pki.ca_pem);
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    sub(
        &mut store,
        "relays",
        &server.url("https", "/relays.txt"),
        &spec_with(Some(ca)),
    );
    let first = update(&mut store, "relays", &no_env).unwrap();
    assert!(matches!(first, UpdateOutcome::Updated { .. }), "{first:?}");

    let second = update(&mut store, "relays", &no_env).unwrap();
    let UpdateOutcome::Failed {
        error,
        kept_version,
        ..
    } = second
    else {
        panic!("second update: {second:?}");
    };
    assert!(error.contains("HTTP 500"), "{error}");
    assert!(
        error.contains("after") || error.contains("try again"),
        "{error}"
    );
    assert_eq!(kept_version, Some(1));
    // One first fetch, then the failing one and its one retry.
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let info = store.feed("relays").unwrap().unwrap();
    assert_eq!((info.version, info.total()), (1, 3));
    let state = store.subscription("relays").unwrap().unwrap().state;
    assert!(
        state["last_error"].as_str().unwrap().contains("HTTP 500"),
        "{state}"
    );
    assert_eq!(state["failures"], 1);
}

#[test]
fn an_oversized_response_is_cut_at_the_limit() {
    const TWO_GIB: u64 = 2 * 1024 * 1024 * 1024;
    const LIMIT: u64 = 1024 * 1024;
    let pki = test_pki("orbwatch test CA");
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let server = Server::https(pki.server.clone(), move |_| {
        match c.fetch_add(1, Ordering::SeqCst) {
            0 => Resp::ok("203.0.113.7\n"),
            // 2 GiB with its length declared: refused before reading.
            1 => Resp {
                status: 200,
                headers: vec![],
                body: Body::Endless {
                    total: TWO_GIB,
                    declare: true,
                },
            },
            // 2 GiB chunked, no length: read up to the limit, then cut.
            _ => Resp {
                status: 200,
                headers: vec![],
                body: Body::Endless {
                    total: TWO_GIB,
                    declare: false,
                },
            },
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(dir.path(), &pki.ca_pem);
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    let mut spec = spec_with(Some(ca));
    spec.max_bytes = LIMIT;
    spec.retries = 0;
    sub(&mut store, "big", &server.url("https", "/big.txt"), &spec);
    assert!(matches!(
        update(&mut store, "big", &no_env).unwrap(),
        UpdateOutcome::Updated { .. }
    ));

    for (round, what) in [(2, "declared"), (3, "chunked")] {
        let out = update(&mut store, "big", &no_env).unwrap();
        let UpdateOutcome::Failed {
            error,
            kept_version,
            ..
        } = out
        else {
            panic!("{what}: {out:?}");
        };
        assert!(
            error.contains("larger than the limit of 1048576 bytes"),
            "{what}: {error}"
        );
        assert!(error.contains("--max-size"), "{what}: {error}");
        if what == "declared" {
            assert!(error.contains("declares 2147483648 bytes"), "{error}");
        }
        assert_eq!(kept_version, Some(1), "{what}");
        assert_eq!(calls.load(Ordering::SeqCst), round);
    }
    // The client stopped reading at the limit: the server could write
    // only what the socket buffers took, far from 2 GiB.
    let written = *server.written.lock().unwrap();
    assert!(written < 64 * 1024 * 1024, "server wrote {written} bytes");
    let info = store.feed("big").unwrap().unwrap();
    assert_eq!((info.version, info.total()), (1, 1));
}

#[test]
fn a_certificate_from_another_ca_is_refused_and_named() {
    let trusted = test_pki("orbwatch trusted CA");
    let other = test_pki("orbwatch other CA");
    let server = Server::https(other.server.clone(), |_| Resp::ok("203.0.113.7\n"));
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(dir.path(), &trusted.ca_pem);
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    let url = server.url("https", "/relays.txt");
    for (name, ca) in [("with-ca", Some(ca)), ("system-roots", None)] {
        sub(&mut store, name, &url, &spec_with(ca));
        let out = update(&mut store, name, &no_env).unwrap();
        let UpdateOutcome::Failed {
            error,
            kept_version,
            ..
        } = out
        else {
            panic!("{name}: {out:?}");
        };
        assert!(
            error.starts_with("TLS: the server certificate of"),
            "{name}: {error}"
        );
        assert!(error.contains(&url), "{name}: {error}");
        assert!(error.contains("UnknownIssuer"), "{name}: {error}");
        assert!(error.contains("--ca-file"), "{name}: {error}");
        assert_eq!(kept_version, None);
        assert!(store.feed(name).unwrap().is_none());
    }
    // No request got through the handshake.
    assert!(server.requests().is_empty());
}

#[test]
fn credentials_come_from_the_environment_and_are_not_stored() {
    let pki = test_pki("orbwatch test CA");
    let server = Server::https(pki.server.clone(), |req| {
        if req.header("authorization") == Some("Bearer tok-6f1e2d") {
            Resp::ok("203.0.113.7\n")
        } else {
            Resp::status(401)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(dir.path(), &pki.ca_pem);
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    let mut spec = spec_with(Some(ca));
    spec.headers = vec![HeaderSpec::parse("Authorization: Bearer ${FEED_TOKEN}").unwrap()];
    spec.retries = 0;
    sub(&mut store, "private", &server.url("https", "/p.txt"), &spec);

    let env = |k: &str| (k == "FEED_TOKEN").then(|| "tok-6f1e2d".to_string());
    let out = update(&mut store, "private", &env).unwrap();
    assert!(matches!(out, UpdateOutcome::Updated { .. }), "{out:?}");

    // Without the variable: a clear error, no request without credentials.
    let out = update(&mut store, "private", &no_env).unwrap();
    let UpdateOutcome::Failed { error, .. } = out else {
        panic!("{out:?}")
    };
    assert!(error.contains("FEED_TOKEN, which is not set"), "{error}");
    assert_eq!(server.requests().len(), 1);

    // The store holds the reference, never the value.
    let row = store.subscription("private").unwrap().unwrap();
    let stored = format!("{} {}", row.spec, row.state);
    assert!(stored.contains("${FEED_TOKEN}"));
    assert!(!stored.contains("tok-6f1e2d"));
    drop(store);
    for f in ["s.db", "s.db-wal"] {
        if let Ok(raw) = std::fs::read(dir.path().join(f)) {
            assert!(!raw.windows(10).any(|w| w == b"tok-6f1e2d"), "{f}");
        }
    }
}

#[test]
fn a_redirect_from_https_to_plain_http_is_refused() {
    let pki = test_pki("orbwatch test CA");
    let plain = Server::http(|_| Resp::ok("203.0.113.7\n"));
    let target = plain.url("http", "/relays.txt");
    let server = Server::https(pki.server.clone(), move |_| {
        Resp::status(302).with_header("Location", &target)
    });
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(dir.path(), &pki.ca_pem);
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    let mut spec = spec_with(Some(ca));
    spec.retries = 0;
    sub(
        &mut store,
        "down",
        &server.url("https", "/relays.txt"),
        &spec,
    );
    let out = update(&mut store, "down", &no_env).unwrap();
    let UpdateOutcome::Failed { error, .. } = out else {
        panic!("{out:?}")
    };
    assert!(error.to_lowercase().contains("https"), "{error}");
    assert_eq!(server.requests().len(), 1);
    assert!(plain.requests().is_empty(), "the plain server was reached");
    assert!(store.feed("down").unwrap().is_none());
}
