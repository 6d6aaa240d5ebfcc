//! A plain HTTP(S) feed is downloaded to a temporary file next to the
//! store and stored from it as it is read (orbwatch-feedload), never held
//! whole in memory. Against real servers on 127.0.0.1: the result is the
//! same as `feed add` of the same file, and the temporary file is gone on
//! every way out (stored, too large, an empty body refused, a cut
//! connection).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use common::{Body, Resp, Server, failed, no_env, sub};
use orbwatch_store::Store;
use orbwatch_subscribe::http::FETCH_SPOOL_PREFIX;
use orbwatch_subscribe::{SubscriptionSpec, UpdateOutcome, update};

fn spec() -> SubscriptionSpec {
    SubscriptionSpec {
        retries: 0,
        retry_wait_ms: 10,
        timeout_secs: 20,
        ..Default::default()
    }
}

/// The download spool files in `dir` (there must be none once an update
/// has returned).
fn spool_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(FETCH_SPOOL_PREFIX))
        .collect()
}

/// `n` distinct public IPv4 addresses (in 23.0.0.0/8), one a line, with
/// a comment header as real lists have.
fn public_list(n: u32) -> Vec<u8> {
    let mut out = String::from("# generated test list\n");
    for i in 0..n {
        let host = i % 250 + 1;
        let rest = i / 250;
        out.push_str(&format!("23.{}.{}.{host}\n", rest / 256, rest % 256));
    }
    out.into_bytes()
}

#[test]
fn a_large_list_is_stored_as_feed_add_stores_it_and_leaves_no_file() {
    const N: u32 = 200_000;
    let list = public_list(N);
    let served = list.clone();
    let server = Server::http(move |_| Resp::ok(served.clone()).with_header("ETag", "\"v1\""));
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    sub(
        &mut store,
        "big",
        &server.url("http", "/lists/big.txt"),
        &spec(),
    );
    let out = update(&mut store, "big", &no_env).unwrap();
    let UpdateOutcome::Updated { report, bytes, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(bytes, list.len() as u64);
    assert_eq!((report.version, report.loaded), (1, N as u64));
    assert!(
        spool_files(dir.path()).is_empty(),
        "{:?}",
        spool_files(dir.path())
    );
    let state = store.subscription("big").unwrap().unwrap().state;
    assert_eq!(state["etag"], "\"v1\"", "{state}");

    // The same file through `feed add`'s loader, in another store.
    let file = dir.path().join("big.txt");
    std::fs::write(&file, &list).unwrap();
    let mut other = Store::open(dir.path().join("other.db")).unwrap();
    let opts = orbwatch_intel::ReadOptions::new("big");
    let added = orbwatch_feedload::load_feed_file(
        &mut other,
        &orbwatch_feedload::FeedFile {
            path: &file,
            name: "big",
            format: None,
            opts: &opts,
            label: "big.txt",
            source: "big.txt",
        },
    )
    .unwrap();
    let fetched = store.feed("big").unwrap().unwrap();
    let local = other.feed("big").unwrap().unwrap();
    assert_eq!(fetched.total(), N as u64);
    assert_eq!(fetched.counts, local.counts);
    assert_eq!(fetched.format, local.format);
    assert_eq!(fetched.rejected, local.rejected);
    assert_eq!(
        fetched.source_sha256.as_deref(),
        Some(added.sha256.as_str())
    );
    assert_eq!(fetched.source_sha256, local.source_sha256);
    let fetched_values: std::collections::BTreeSet<String> = store
        .indicators(Some("big"))
        .unwrap()
        .into_iter()
        .map(|s| s.indicator.value.to_string())
        .collect();
    let local_values: std::collections::BTreeSet<String> = other
        .indicators(Some("big"))
        .unwrap()
        .into_iter()
        .map(|s| s.indicator.value.to_string())
        .collect();
    assert_eq!(fetched_values.len(), N as usize);
    assert_eq!(fetched_values, local_values);
}

#[test]
fn a_body_over_the_limit_leaves_no_file_and_no_version() {
    const LIMIT: u64 = 1024 * 1024;
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let server = Server::http(move |_| match c.fetch_add(1, Ordering::SeqCst) {
        0 => Resp::ok("203.0.113.7\n198.51.100.23\n"),
        // Chunked, no length: read and written up to the limit, then cut.
        _ => Resp {
            status: 200,
            headers: vec![],
            body: Body::Endless {
                total: 64 * LIMIT,
                declare: false,
            },
        },
    });
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    let mut spec = spec();
    spec.max_bytes = LIMIT;
    sub(&mut store, "big", &server.url("http", "/big.txt"), &spec);
    let first = update(&mut store, "big", &no_env).unwrap();
    assert!(matches!(first, UpdateOutcome::Updated { .. }), "{first:?}");

    let (error, kept) = failed(update(&mut store, "big", &no_env).unwrap());
    assert!(
        error.contains("larger than the limit of 1048576 bytes"),
        "{error}"
    );
    assert!(error.contains("--max-size"), "{error}");
    assert_eq!(kept, Some(1));
    assert!(
        spool_files(dir.path()).is_empty(),
        "{:?}",
        spool_files(dir.path())
    );
    let info = store.feed("big").unwrap().unwrap();
    assert_eq!((info.version, info.total()), (1, 2));
    assert_eq!(store.feed_versions("big").unwrap().len(), 1);
}

#[test]
fn an_empty_or_garbage_body_keeps_the_version_and_is_a_failure() {
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let server = Server::http(move |_| match c.fetch_add(1, Ordering::SeqCst) {
        0 => Resp::ok("203.0.113.7\n198.51.100.23\n192.0.2.200\n").with_header("ETag", "\"good\""),
        1 => Resp::ok("").with_header("ETag", "\"empty\""),
        _ => Resp::ok(
            "<html><head><title>Maintenance</title></head>\n<body>Back soon.</body></html>\n",
        )
        .with_header("ETag", "\"maintenance\""),
    });
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    sub(
        &mut store,
        "relays",
        &server.url("http", "/relays.txt"),
        &spec(),
    );
    let first = update(&mut store, "relays", &no_env).unwrap();
    assert!(matches!(first, UpdateOutcome::Updated { .. }), "{first:?}");

    for (round, what) in [(1u64, "empty"), (2, "garbage")] {
        let (error, kept) = failed(update(&mut store, "relays", &no_env).unwrap());
        assert_eq!(kept, Some(1), "{what}");
        if what == "empty" {
            assert!(
                error.contains("gave no indicators") && error.contains("the feed has 3"),
                "{what}: {error}"
            );
        }
        assert!(error.contains("relays.txt"), "{what}: {error}");
        assert!(spool_files(dir.path()).is_empty(), "{what}");
        let info = store.feed("relays").unwrap().unwrap();
        assert_eq!((info.version, info.total()), (1, 3), "{what}");
        assert_eq!(store.feed_versions("relays").unwrap().len(), 1, "{what}");
        let state = store.subscription("relays").unwrap().unwrap().state;
        assert_eq!(state["failures"], round, "{what}: {state}");
        assert_eq!(state["last_error"].as_str(), Some(error.as_str()));
        // The validators of a body that was not stored are not kept: the
        // next update asks for the whole feed again.
        assert_eq!(state["etag"], "\"good\"", "{what}: {state}");
    }
    // Each failed update still asked with the last good validator.
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[2].header("if-none-match"), Some("\"good\""));
}

#[test]
fn a_connection_cut_midway_leaves_no_file_and_no_version() {
    let list = public_list(50_000);
    let half = list[..list.len() / 2].to_vec();
    let declared = list.len() as u64;
    let server = Server::http(move |_| Resp {
        status: 200,
        headers: vec![("ETag".into(), "\"cut\"".into())],
        body: Body::Cut {
            bytes: half.clone(),
            declared,
        },
    });
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    let mut spec = spec();
    spec.retries = 1;
    sub(&mut store, "cut", &server.url("http", "/cut.txt"), &spec);
    let (error, kept) = failed(update(&mut store, "cut", &no_env).unwrap());
    assert!(error.contains("reading the response failed"), "{error}");
    assert!(error.contains("cut.txt"), "{error}");
    assert!(error.contains("after 2 attempts"), "{error}");
    assert_eq!(kept, None);
    assert!(
        spool_files(dir.path()).is_empty(),
        "{:?}",
        spool_files(dir.path())
    );
    assert!(store.feed("cut").unwrap().is_none());
    assert_eq!(server.requests().len(), 2);
    let state = store.subscription("cut").unwrap().unwrap().state;
    assert!(state["etag"].is_null(), "{state}");
}

/// A spool file a killed `feed update` left (not written for two days) is
/// removed by the next update of a plain HTTP source; a recent one (an
/// update running beside it) and other files are left alone.
#[test]
fn a_download_left_by_a_killed_update_is_removed_by_the_next() {
    let server = Server::http(|_| Resp::ok("203.0.113.7\n"));
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join(format!("{FETCH_SPOOL_PREFIX}a1b2c3.part"));
    let recent = dir.path().join(format!("{FETCH_SPOOL_PREFIX}d4e5f6.part"));
    let unrelated = dir.path().join("notes.part");
    for p in [&old, &recent, &unrelated] {
        std::fs::write(p, "198.51.100.1\n").unwrap();
    }
    let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(48 * 3600);
    for p in [&old, &unrelated] {
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(two_days_ago)
            .unwrap();
    }
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    sub(&mut store, "one", &server.url("http", "/one.txt"), &spec());
    let out = update(&mut store, "one", &no_env).unwrap();
    assert!(matches!(out, UpdateOutcome::Updated { .. }), "{out:?}");
    assert!(!old.exists());
    assert!(recent.exists());
    assert!(unrelated.exists());
    assert_eq!(spool_files(dir.path()).len(), 1);
}
