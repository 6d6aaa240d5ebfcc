//! Store behaviour: versions and their diff, atomicity, windows, migrations,
//! removal. Feeds are built in the test (no reader involved) so that these
//! tests only depend on the store.

use jiff::Timestamp;
use orbwatch_intel::value::parse_value;
use orbwatch_intel::{FeedFormat, Indicator, ParsedFeed, Provenance, Rejected, Skipped, Tags};
use orbwatch_store::{ChangeKind, ImportOptions, SCHEMA_VERSION, Store, StoreError};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn ind(value: &str, line: u64) -> Indicator {
    Indicator::new(
        parse_value(value, None).unwrap(),
        Provenance {
            feed: "t".into(),
            file: "list.txt".into(),
            line,
            record_id: None,
        },
    )
}

fn feed(values: &[&str]) -> ParsedFeed {
    ParsedFeed {
        format: Some(FeedFormat::Plain),
        indicators: values
            .iter()
            .enumerate()
            .map(|(i, v)| ind(v, i as u64 + 1))
            .collect(),
        rejected: vec![],
        skipped: vec![],
    }
}

fn opts(at: &str) -> ImportOptions {
    ImportOptions {
        at: Some(ts(at)),
        ..Default::default()
    }
}

fn present_values(store: &Store, name: &str) -> Vec<String> {
    let mut v: Vec<String> = store
        .indicators(Some(name))
        .unwrap()
        .into_iter()
        .map(|s| s.indicator.value.to_string())
        .collect();
    v.sort();
    v
}

fn open_temp() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("s.db")).unwrap();
    (dir, store)
}

#[test]
fn import_list_reimport_diff_and_history() {
    let (_d, mut store) = open_temp();
    let v1 = feed(&["1.1.1.1", "2.2.2.2", "3.3.3.3", "10.0.0.0/8", "2001:db8::1"]);
    let r1 = store
        .import_feed(
            "relays",
            FeedFormat::Plain,
            "relays.txt",
            &v1,
            &opts("2024-01-01T00:00:00Z"),
        )
        .unwrap();
    assert_eq!(
        (r1.version, r1.loaded, r1.added, r1.removed, r1.unchanged),
        (1, 5, 5, 0, 0)
    );
    assert_eq!(r1.counts["ipv4"], 3);
    assert_eq!(r1.counts["cidr"], 1);
    assert_eq!(r1.counts["ipv6"], 1);
    assert_eq!(r1.counts.len(), 7);

    let list = store.list_feeds().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "relays");
    assert_eq!(list[0].format, "plain");
    assert_eq!(list[0].version, 1);
    assert_eq!(list[0].total(), 5);
    assert_eq!(list[0].added_at, ts("2024-01-01T00:00:00Z"));
    // Version 1 lists no per-indicator changes.
    assert!(store.feed_changes("relays").unwrap().is_empty());

    let v2 = feed(&["2.2.2.2", "3.3.3.3", "4.4.4.4", "5.5.5.5", "2001:db8::1"]);
    let r2 = store
        .import_feed(
            "relays",
            FeedFormat::Plain,
            "relays.txt",
            &v2,
            &opts("2024-02-01T00:00:00Z"),
        )
        .unwrap();
    assert_eq!(
        (r2.version, r2.loaded, r2.added, r2.removed, r2.unchanged),
        (2, 5, 2, 2, 3)
    );
    assert_eq!(
        present_values(&store, "relays"),
        ["2.2.2.2", "2001:db8::1", "3.3.3.3", "4.4.4.4", "5.5.5.5"]
    );
    let changes = store.feed_changes("relays").unwrap();
    let summary: Vec<(i64, ChangeKind, &str, &str)> = changes
        .iter()
        .map(|c| (c.version, c.change, c.value.as_str(), c.kind.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (2, ChangeKind::Added, "4.4.4.4", "ipv4"),
            (2, ChangeKind::Added, "5.5.5.5", "ipv4"),
            (2, ChangeKind::Removed, "10.0.0.0/8", "cidr"),
            (2, ChangeKind::Removed, "1.1.1.1", "ipv4"),
        ]
    );
    assert!(changes.iter().all(|c| c.at == ts("2024-02-01T00:00:00Z")));
    let info = store.feed("relays").unwrap().unwrap();
    assert_eq!(info.version, 2);
    assert_eq!(info.added_at, ts("2024-01-01T00:00:00Z"));
    assert_eq!(info.updated_at, ts("2024-02-01T00:00:00Z"));
    assert_eq!(info.counts["cidr"], 0);

    // Version 3 brings a removed indicator back.
    let v3 = feed(&["1.1.1.1", "2.2.2.2"]);
    let r3 = store
        .import_feed(
            "relays",
            FeedFormat::Plain,
            "relays.txt",
            &v3,
            &opts("2024-03-01T00:00:00Z"),
        )
        .unwrap();
    assert_eq!((r3.added, r3.removed, r3.unchanged), (1, 4, 1));
    assert_eq!(present_values(&store, "relays"), ["1.1.1.1", "2.2.2.2"]);

    let versions = store.feed_versions("relays").unwrap();
    let counts: Vec<(i64, u64, u64, u64, u64)> = versions
        .iter()
        .map(|v| (v.version, v.loaded, v.added, v.removed, v.unchanged))
        .collect();
    assert_eq!(counts, [(1, 5, 5, 0, 0), (2, 5, 2, 2, 3), (3, 2, 1, 4, 1)]);
    let v3_changes: Vec<_> = store
        .feed_changes("relays")
        .unwrap()
        .into_iter()
        .filter(|c| c.version == 3)
        .collect();
    assert_eq!(v3_changes.len(), 5);
    assert_eq!(
        v3_changes
            .iter()
            .filter(|c| c.change == ChangeKind::Added)
            .count(),
        1
    );
}

#[test]
fn metadata_round_trips_and_updates_on_reimport() {
    let (_d, mut store) = open_temp();
    let mut i = ind("evil.example", 3);
    i.valid_from = Some(ts("2021-01-01T00:00:00Z"));
    i.valid_until = Some(ts("2021-12-31T23:59:59.5Z"));
    i.first_seen = Some(ts("2021-02-01T00:00:00Z"));
    i.published = Some(ts("2021-07-20T00:00:00Z"));
    i.confidence = Some(80);
    i.description = Some("relay".into());
    i.tags = Tags {
        actors: vec!["APT31".into()],
        tlp: Some("white".into()),
        roles: vec!["relay".into()],
        ..Default::default()
    };
    i.provenance.record_id = Some("indicator--0b6a3e3c-0000-4000-8000-000000000001".into());
    let mut f = ParsedFeed {
        indicators: vec![i.clone()],
        ..Default::default()
    };
    store
        .import_feed(
            "m",
            FeedFormat::Stix,
            "m.json",
            &f,
            &ImportOptions::default(),
        )
        .unwrap();
    let got = store.indicators(Some("m")).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].feed, "m");
    let mut expected = i.clone();
    expected.provenance.feed = "m".into();
    assert_eq!(got[0].indicator, expected);

    // Same identity, new metadata: unchanged, but the row follows the file.
    f.indicators[0].provenance.line = 9;
    f.indicators[0].confidence = Some(50);
    let r = store
        .import_feed(
            "m",
            FeedFormat::Stix,
            "m.json",
            &f,
            &ImportOptions::default(),
        )
        .unwrap();
    assert_eq!((r.added, r.removed, r.unchanged), (0, 0, 1));
    let got = store.indicators(Some("m")).unwrap();
    assert_eq!(got[0].indicator.provenance.line, 9);
    assert_eq!(got[0].indicator.confidence, Some(50));

    let tags = store.tag_summary("m").unwrap();
    assert_eq!(tags.actors.get("APT31"), Some(&1));
    assert_eq!(tags.tlp.get("white"), Some(&1));
    assert_eq!(tags.roles.get("relay"), Some(&1));
    let w = store.window_summary("m").unwrap();
    assert_eq!(w.indicators, 1);
    assert_eq!(w.earliest_valid_from, Some(ts("2021-01-01T00:00:00Z")));
    assert_eq!(w.latest_valid_until, Some(ts("2021-12-31T23:59:59.5Z")));
    assert_eq!((w.open_start, w.open_end), (0, 0));
}

#[test]
fn two_windows_are_two_indicators_and_duplicates_are_stored_once() {
    let (_d, mut store) = open_temp();
    let mut a = ind("1.2.3.4", 1);
    a.valid_from = Some(ts("2021-01-01T00:00:00Z"));
    a.valid_until = Some(ts("2021-02-01T00:00:00Z"));
    let mut b = ind("1.2.3.4", 2);
    b.valid_from = Some(ts("2023-01-01T00:00:00Z"));
    b.valid_until = Some(ts("2023-02-01T00:00:00Z"));
    let mut a_again = a.clone();
    a_again.provenance.line = 3;
    let open = ind("1.2.3.4", 4);
    let open_again = ind("1.2.3.4", 5);
    let f = ParsedFeed {
        indicators: vec![a.clone(), b.clone(), a_again, open, open_again],
        ..Default::default()
    };
    let r = store
        .import_feed("w", FeedFormat::Csv, "w.csv", &f, &ImportOptions::default())
        .unwrap();
    assert_eq!(r.loaded, 3);
    assert_eq!(r.duplicates, 2);
    assert_eq!(r.counts["ipv4"], 3);
    let got = store.indicators(Some("w")).unwrap();
    assert_eq!(got.len(), 3);
    // First occurrence wins.
    assert_eq!(got[0].indicator.provenance.line, 1);
    assert_eq!(got[1].indicator.valid_from, b.valid_from);
    let w = store.window_summary("w").unwrap();
    assert_eq!(w.open_start, 1);
    assert_eq!(w.open_end, 1);
    assert_eq!(w.earliest_valid_from, a.valid_from);
    assert_eq!(w.latest_valid_until, b.valid_until);

    // Dropping one window removes that window only.
    let f2 = ParsedFeed {
        indicators: vec![b],
        ..Default::default()
    };
    let r2 = store
        .import_feed(
            "w",
            FeedFormat::Csv,
            "w.csv",
            &f2,
            &ImportOptions::default(),
        )
        .unwrap();
    assert_eq!((r2.added, r2.removed, r2.unchanged), (0, 2, 1));
}

/// Repeats are found across the import's internal chunks (rows are
/// prepared and checked for repeats about a thousand at a time), in feed
/// order: the first occurrence is kept, whichever chunk the repeat is in,
/// and rows from a second file keep their own file.
#[test]
fn repeats_far_apart_and_across_files_are_stored_once_first_wins() {
    let (_d, mut store) = open_temp();
    let addr = |i: u32| std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string();
    let mut indicators: Vec<Indicator> = (0..5000u32)
        .map(|i| ind(&addr(i), u64::from(i) + 1))
        .collect();
    // Every third address again, from another file, after all the others.
    for i in (0..5000u32).step_by(3) {
        let mut again = ind(&addr(i), 100_000 + u64::from(i));
        again.provenance.file = "second.txt".into();
        indicators.push(again);
    }
    // And new addresses from the second file.
    for i in 5000..5100u32 {
        let mut new = ind(&addr(i), 200_000 + u64::from(i));
        new.provenance.file = "second.txt".into();
        indicators.push(new);
    }
    let f = ParsedFeed {
        indicators,
        ..Default::default()
    };
    let r = store
        .import_feed(
            "far",
            FeedFormat::Plain,
            "far.txt",
            &f,
            &ImportOptions::default(),
        )
        .unwrap();
    assert_eq!(r.loaded, 5100);
    assert_eq!(r.duplicates, 1667);
    let got = store.indicators(Some("far")).unwrap();
    assert_eq!(got.len(), 5100);
    for (i, g) in got.iter().enumerate() {
        let i = i as u32;
        assert_eq!(g.indicator.value.to_string(), addr(i));
        let (file, line) = if i < 5000 {
            ("list.txt", u64::from(i) + 1)
        } else {
            ("second.txt", 200_000 + u64::from(i))
        };
        assert_eq!(g.indicator.provenance.file, file, "row {i}");
        assert_eq!(g.indicator.provenance.line, line, "row {i}");
    }
}

/// Everything the store holds, as text, to compare before and after.
fn dump(path: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut out = Vec::new();
    for table in [
        "feeds",
        "feed_versions",
        "indicators",
        "feed_changes",
        "feed_rejects",
    ] {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2"))
            .unwrap();
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                let mut s = format!("{table}:");
                for i in 0..n {
                    let v: rusqlite::types::Value = r.get(i)?;
                    s.push_str(&format!("{v:?}|"));
                }
                Ok(s)
            })
            .unwrap();
        for r in rows {
            out.push(r.unwrap());
        }
    }
    out
}

#[test]
fn a_failed_import_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut store = Store::open(&path).unwrap();
    let v1 = feed(&["1.1.1.1", "2.2.2.2", "3.3.3.3"]);
    store
        .import_feed(
            "a",
            FeedFormat::Plain,
            "a.txt",
            &v1,
            &ImportOptions::default(),
        )
        .unwrap();
    let before = dump(&path);

    // Make the store refuse one specific value, standing in for a disk
    // error or a crash in the middle of an import.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER boom BEFORE INSERT ON indicators WHEN NEW.value = '9.9.9.9' \
         BEGIN SELECT RAISE(ABORT, 'simulated failure'); END;",
    )
    .unwrap();
    drop(conn);

    // A re-import that adds, removes and would update before failing.
    let mut v2 = feed(&["2.2.2.2", "4.4.4.4", "5.5.5.5", "9.9.9.9", "6.6.6.6"]);
    v2.rejected.push(Rejected {
        file: "a.txt".into(),
        line: 7,
        reason: "bad".into(),
        raw: "x".into(),
    });
    let err = store
        .import_feed(
            "a",
            FeedFormat::Plain,
            "a.txt",
            &v2,
            &ImportOptions::default(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("simulated failure"), "{err}");
    assert_eq!(dump(&path), before);
    assert_eq!(store.feed("a").unwrap().unwrap().version, 1);

    // A new feed that fails half-way does not appear at all.
    let err = store
        .import_feed(
            "b",
            FeedFormat::Plain,
            "b.txt",
            &v2,
            &ImportOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::Sql { .. }));
    assert_eq!(dump(&path), before);
    assert!(store.feed("b").unwrap().is_none());

    // The store is still usable afterwards.
    store
        .import_feed(
            "c",
            FeedFormat::Plain,
            "c.txt",
            &feed(&["7.7.7.7"]),
            &ImportOptions::default(),
        )
        .unwrap();
    assert_eq!(store.list_feeds().unwrap().len(), 2);
}

#[test]
fn migrations_are_idempotent_and_newer_stores_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        store
            .import_feed(
                "a",
                FeedFormat::Plain,
                "a.txt",
                &feed(&["1.1.1.1"]),
                &ImportOptions::default(),
            )
            .unwrap();
    }
    for _ in 0..2 {
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(present_values(&store, "a"), ["1.1.1.1"]);
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 4)
        .unwrap();
    drop(conn);
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::TooNew { .. }));
    let msg = err.to_string();
    assert!(msg.contains("upgrade orbwatch"), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(
        msg.contains(&format!(
            "schema {} > {}",
            SCHEMA_VERSION + 4,
            SCHEMA_VERSION
        )),
        "{msg}"
    );

    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"this is not a database, just some text that is long enough to fill a header page of sqlite.......").unwrap();
    let err = Store::open(&junk).unwrap_err();
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err:?}");
    assert!(err.to_string().contains("junk.db"));
}

#[test]
fn remove_deletes_indicators_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut store = Store::open(&path).unwrap();
    let mut v1 = feed(&["1.1.1.1", "2.2.2.2"]);
    v1.skipped.push(Skipped {
        file: "a.txt".into(),
        line: 4,
        reason: "YARA rule".into(),
    });
    v1.rejected.push(Rejected {
        file: "a.txt".into(),
        line: 5,
        reason: "not an IP".into(),
        raw: "1.2.3.999".into(),
    });
    store
        .import_feed(
            "a",
            FeedFormat::Plain,
            "a.txt",
            &v1,
            &ImportOptions::default(),
        )
        .unwrap();
    store
        .import_feed(
            "a",
            FeedFormat::Plain,
            "a.txt",
            &feed(&["3.3.3.3"]),
            &ImportOptions::default(),
        )
        .unwrap();
    store
        .import_feed(
            "keep",
            FeedFormat::Plain,
            "k.txt",
            &feed(&["1.1.1.1"]),
            &ImportOptions::default(),
        )
        .unwrap();
    let rejects = store.feed_rejects("a", Some(1)).unwrap();
    assert_eq!(rejects.len(), 1);
    assert_eq!(
        (rejects[0].line, rejects[0].reason.as_str()),
        (5, "not an IP")
    );
    assert!(store.feed_rejects("a", None).unwrap().is_empty());
    assert_eq!(
        store.feed_versions("a").unwrap()[0]
            .skipped_reasons
            .get("YARA rule"),
        Some(&1)
    );

    let removed = store.remove_feed("a").unwrap();
    assert_eq!(removed.indicators, 3);
    assert_eq!(removed.versions, 2);
    assert!(store.feed("a").unwrap().is_none());
    assert_eq!(store.indicators(None).unwrap().len(), 1);
    let conn = rusqlite::Connection::open(&path).unwrap();
    for table in [
        "indicators",
        "feed_versions",
        "feed_changes",
        "feed_rejects",
    ] {
        let n: i64 = conn
            .query_row(
                &format!("SELECT count(*) FROM {table} t JOIN feeds f ON f.id = t.feed_id WHERE f.name = 'a'"),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 0, "{table}");
        let orphans: i64 = conn
            .query_row(
                &format!(
                    "SELECT count(*) FROM {table} WHERE feed_id NOT IN (SELECT id FROM feeds)"
                ),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(orphans, 0, "{table}");
    }

    let err = store.remove_feed("a").unwrap_err();
    assert!(matches!(err, StoreError::UnknownFeed { .. }));
    assert!(err.to_string().contains("orbwatch feed list"), "{err}");
    assert!(matches!(
        store.indicators(Some("nope")),
        Err(StoreError::UnknownFeed { .. })
    ));
}

#[test]
fn bad_names_are_refused() {
    let (_d, mut store) = open_temp();
    for name in ["", "  ", " x", "a\nb"] {
        let err = store
            .import_feed(
                name,
                FeedFormat::Plain,
                "a.txt",
                &feed(&["1.1.1.1"]),
                &ImportOptions::default(),
            )
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidName { .. }), "{name:?}");
    }
    assert!(store.list_feeds().unwrap().is_empty());
}

/// The feeds' generation changes with every import and removal (what a
/// live run polls to reload).
#[test]
fn the_feeds_generation_changes_with_every_import_and_removal() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path().join("s.db")).unwrap();
    let g0 = s.feeds_generation().unwrap();
    s.import_feed(
        "a",
        FeedFormat::Plain,
        "a.txt",
        &feed(&["198.51.100.1"]),
        &ImportOptions::default(),
    )
    .unwrap();
    let g1 = s.feeds_generation().unwrap();
    assert_ne!(g0, g1);
    s.remove_feed("a").unwrap();
    assert_ne!(g1, s.feeds_generation().unwrap());
}

/// A first version stores the rows without optional columns 64 at a time
/// (one multi-row INSERT) and the others one by one: the rows keep the
/// feed's order and each its own columns, across both kinds, a set cut
/// short by a full row and a last set of fewer than 64.
#[test]
fn bare_and_full_rows_keep_the_feed_order() {
    let (_d, mut store) = open_temp();
    let mut indicators = Vec::new();
    for i in 0..200u32 {
        let mut x = ind(&format!("10.{}.{}.1", i / 256, i % 256), u64::from(i) + 1);
        if i == 70 || i == 150 || i == 199 {
            x.confidence = Some(40 + (i % 50) as u8);
            x.valid_from = Some(ts("2024-01-01T00:00:00Z"));
        }
        indicators.push(x);
    }
    let f = ParsedFeed {
        format: Some(FeedFormat::Plain),
        indicators: indicators.clone(),
        rejected: vec![],
        skipped: vec![],
    };
    let r = store
        .import_feed(
            "order",
            FeedFormat::Plain,
            "list.txt",
            &f,
            &opts("2024-06-01T00:00:00Z"),
        )
        .unwrap();
    assert_eq!((r.loaded, r.added), (200, 200));
    let got: Vec<_> = store
        .indicators(Some("order"))
        .unwrap()
        .into_iter()
        .map(|s| {
            let i = s.indicator;
            (
                i.value.to_string(),
                i.provenance.line,
                i.provenance.file,
                i.confidence,
                i.valid_from,
            )
        })
        .collect();
    let want: Vec<_> = indicators
        .into_iter()
        .map(|i| {
            (
                i.value.to_string(),
                i.provenance.line,
                i.provenance.file,
                i.confidence,
                i.valid_from,
            )
        })
        .collect();
    assert_eq!(got, want);
}
