//! Validity windows learned from a subscribed feed's history: values that
//! leave and come back, dated entries, feeds that are not subscribed.

use std::ops::ControlFlow;

use jiff::{SignedDuration, Timestamp};
use orbwatch_intel::{FeedFormat, ReadOptions};
use orbwatch_store::{ImportOptions, Store, SubscriptionRow, WindowOrigin};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn import(store: &mut Store, name: &str, at: &str, body: &str, format: FeedFormat) {
    let mut opts = ReadOptions::new(name);
    opts.now = ts(at);
    let parsed = orbwatch_intel::read_feed(body.as_bytes(), "list", Some(format), &opts).unwrap();
    store
        .import_feed(
            name,
            format,
            "https://feeds.example/list",
            &parsed,
            &ImportOptions {
                at: Some(ts(at)),
                ..Default::default()
            },
        )
        .unwrap();
}

fn subscribe(store: &mut Store, name: &str, ttl: Option<SignedDuration>) {
    store
        .put_subscription(&SubscriptionRow {
            name: name.into(),
            source: "https://feeds.example/list".into(),
            spec: serde_json::json!({}),
            state: serde_json::json!({}),
            created_at: ts("2024-01-01T00:00:00Z"),
            lookback: SignedDuration::from_hours(24),
            grace: SignedDuration::from_hours(48),
            ttl,
        })
        .unwrap();
}

#[test]
fn a_value_that_leaves_and_comes_back_keeps_its_first_listing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    subscribe(&mut store, "l", Some(SignedDuration::from_hours(240)));
    import(
        &mut store,
        "l",
        "2024-01-01T00:00:00Z",
        "192.0.2.1\n192.0.2.2\n",
        FeedFormat::Plain,
    );
    import(
        &mut store,
        "l",
        "2024-01-10T00:00:00Z",
        "192.0.2.2\n",
        FeedFormat::Plain,
    );
    import(
        &mut store,
        "l",
        "2024-01-20T00:00:00Z",
        "192.0.2.1\n192.0.2.2\n",
        FeedFormat::Plain,
    );
    let w = store.history_windows("l").unwrap().unwrap();
    assert_eq!(w.len(), 2);
    for x in &w {
        assert_eq!(x.first_listed, ts("2024-01-01T00:00:00Z"), "{x:?}");
        assert!(x.present());
        assert_eq!(x.valid_from, Some(ts("2023-12-31T00:00:00Z")));
        // Still listed, with a TTL of 10 days from the latest version.
        assert_eq!(x.valid_until, Some(ts("2024-01-30T00:00:00Z")));
    }
}

#[test]
fn dated_entries_and_unsubscribed_feeds_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    // Not subscribed: no history, and the hunt's stream is the plain one.
    import(
        &mut store,
        "manual",
        "2024-01-01T00:00:00Z",
        "192.0.2.9\n",
        FeedFormat::Plain,
    );
    assert!(store.history_windows("manual").unwrap().is_none());
    // Subscribed, with one dated entry (CSV with first/last seen).
    subscribe(&mut store, "dated", None);
    import(
        &mut store,
        "dated",
        "2024-01-01T00:00:00Z",
        "ip,first_seen,last_seen\n198.51.100.1,2023-06-01,2023-06-30\n198.51.100.2,,\n",
        FeedFormat::Csv,
    );
    let mut seen = Vec::new();
    store
        .indicators_stream_with_history(None, |s, origin| {
            seen.push((
                s.indicator.value.to_string(),
                origin,
                s.indicator.valid_from,
            ));
            ControlFlow::Continue(())
        })
        .unwrap();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[0].0, "192.0.2.9");
    assert_eq!(seen[0].1, WindowOrigin::Feed);
    assert_eq!(seen[0].2, None);
    assert_eq!(seen[1].0, "198.51.100.1");
    assert_eq!(seen[1].1, WindowOrigin::Feed, "its own dates stay");
    assert_eq!(seen[2].0, "198.51.100.2");
    assert_eq!(seen[2].1, WindowOrigin::History);
    assert_eq!(seen[2].2, Some(ts("2023-12-31T00:00:00Z")));
}
