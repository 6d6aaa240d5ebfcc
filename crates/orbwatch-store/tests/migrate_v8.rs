//! Schema 8 narrows the indicator rows: the provenance file and the type
//! are ids of `feed_files` and `indicator_types` rows instead of text on
//! every row. A store written by the build before it (schema 6, made with
//! that build's `orbwatch feed add`: see `tests/data/README.md`) must
//! upgrade and read back exactly what it held: every row, present or
//! removed, the changes and the rejected entries of both versions.

use orbwatch_intel::{FeedFormat, ParsedFeed};
use orbwatch_store::rusqlite::{self, Connection, types::Value};
use orbwatch_store::{ChangeKind, ImportOptions, SCHEMA_VERSION, Store};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/schema6-two-versions.db"
);

fn rows(conn: &Connection, sql: &str) -> Vec<Vec<Value>> {
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
        .unwrap()
        .collect::<rusqlite::Result<Vec<_>>>()
        .unwrap()
}

fn text(v: &Value) -> String {
    match v {
        Value::Text(s) => s.clone(),
        other => panic!("expected text, got {other:?}"),
    }
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Integer(i) => *i,
        other => panic!("expected an integer, got {other:?}"),
    }
}

/// Every indicator row with its feed, kind, type and file as text, in the
/// same column order for both schemas.
const OLD_ROWS: &str = "SELECT i.id, f.name, i.kind, i.type_name, i.value, i.valid_from, \
     i.valid_until, i.first_seen, i.last_seen, i.published, i.confidence, i.tags_json, \
     i.description, i.file, i.line, i.record_id, i.meta_hash, i.present, i.added_version, \
     i.removed_version, i.removed_at FROM indicators i JOIN feeds f ON f.id = i.feed_id ORDER BY i.id";
const NEW_ROWS: &str = "SELECT i.id, f.name, t.kind, t.name, i.value, i.valid_from, \
     i.valid_until, i.first_seen, i.last_seen, i.published, i.confidence, i.tags_json, \
     i.description, ff.path, i.line, i.record_id, i.meta_hash, i.present, i.added_version, \
     i.removed_version, i.removed_at FROM indicators i JOIN feeds f ON f.id = i.feed_id \
     JOIN indicator_types t ON t.id = i.type_id JOIN feed_files ff ON ff.id = i.file_id \
     ORDER BY i.id";
const OTHER_TABLES: &str = "SELECT 'v', feed_id, version, at, loaded, added, removed, unchanged, \
     rejected FROM feed_versions UNION ALL SELECT 'c', feed_id, version, at, change, value, kind, \
     type_name, coalesce(valid_from, '') FROM feed_changes UNION ALL SELECT 'r', feed_id, version, \
     file, line, reason, raw, '', '' FROM feed_rejects ORDER BY 1, 2, 3, 4, 5, 6";

#[test]
fn a_schema_6_store_with_two_versions_upgrades_and_reads_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    std::fs::copy(FIXTURE, &db).unwrap();

    let (old_rows, old_other) = {
        let conn = Connection::open(&db).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, 6, "the fixture is a schema-6 store");
        (rows(&conn, OLD_ROWS), rows(&conn, OTHER_TABLES))
    };
    // The fixture holds what the upgrade must carry: two versions of two
    // feeds, removed rows, several files and types, changes and rejects.
    assert!(old_rows.len() > 150, "{} rows", old_rows.len());
    assert!(old_rows.iter().any(|r| int(&r[17]) == 0), "no removed row");
    let files: std::collections::BTreeSet<String> = old_rows.iter().map(|r| text(&r[13])).collect();
    assert!(files.len() >= 3, "files: {files:?}");
    let types: std::collections::BTreeSet<String> = old_rows.iter().map(|r| text(&r[3])).collect();
    assert!(types.len() >= 6, "types: {types:?}");
    for tag in ["'v'", "'c'", "'r'"] {
        let tag = &tag[1..2];
        assert!(
            old_other.iter().any(|r| text(&r[0]) == tag),
            "the fixture has no `{tag}` rows"
        );
    }

    let mut store = Store::open(&db).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    {
        let conn = Connection::open(&db).unwrap();
        assert_eq!(rows(&conn, NEW_ROWS), old_rows, "indicator rows differ");
        assert_eq!(
            rows(&conn, OTHER_TABLES),
            old_other,
            "versions, changes or rejects differ"
        );
        let columns: Vec<String> = rows(&conn, "SELECT name FROM pragma_table_info('indicators')")
            .iter()
            .map(|r| text(&r[0]))
            .collect();
        for gone in ["file", "kind", "type_name"] {
            assert!(
                !columns.iter().any(|c| c == gone),
                "column {gone} is still there"
            );
        }
        let fk: Vec<Vec<Value>> = rows(&conn, "PRAGMA foreign_key_check");
        assert!(fk.is_empty(), "foreign keys broken: {fk:?}");
    }

    // Through the store's API: what `feed show`, `feed export`, `hunt --db`
    // and the serve API read.
    for feed in ["certfr", "mixed"] {
        let present: Vec<&Vec<Value>> = old_rows
            .iter()
            .filter(|r| text(&r[1]) == feed && int(&r[17]) == 1)
            .collect();
        let got = store.indicators(Some(feed)).unwrap();
        assert_eq!(got.len(), present.len(), "feed {feed}");
        for (s, r) in got.iter().zip(&present) {
            assert_eq!(s.id, int(&r[0]));
            assert_eq!(s.indicator.value.type_name(), text(&r[3]));
            assert_eq!(s.indicator.value.to_string(), text(&r[4]));
            assert_eq!(s.indicator.provenance.file, text(&r[13]));
            assert_eq!(s.indicator.provenance.line as i64, int(&r[14]));
            assert_eq!(s.indicator.provenance.feed, feed);
            let tags = match &r[11] {
                Value::Null => None,
                v => Some(serde_json::from_str::<serde_json::Value>(&text(v)).unwrap()),
            };
            let got_tags = (s.indicator.tags != Default::default())
                .then(|| serde_json::to_value(&s.indicator.tags).unwrap());
            assert_eq!(got_tags, tags, "tags of {}", s.indicator.value);
        }
        let versions = store.feed_versions(feed).unwrap();
        assert_eq!(versions.len(), 2, "feed {feed}");
        let changes = store.feed_changes(feed).unwrap();
        let removed_rows = old_rows
            .iter()
            .filter(|r| text(&r[1]) == feed && int(&r[17]) == 0)
            .count();
        assert_eq!(
            changes
                .iter()
                .filter(|c| c.change == ChangeKind::Removed)
                .count(),
            removed_rows,
            "feed {feed}"
        );
        assert_eq!(
            changes
                .iter()
                .filter(|c| c.change == ChangeKind::Added)
                .count() as u64,
            versions[1].added,
            "feed {feed}"
        );
    }
    let rejects = store.feed_rejects("mixed", None).unwrap();
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].version, 2);
    assert_eq!(store.feed_rejects("mixed", Some(1)).unwrap().len(), 2);

    // A new version after the upgrade diffs against the migrated rows: the
    // same indicators are all unchanged, and a dropped one is removed.
    let mut same = ParsedFeed {
        format: Some(FeedFormat::Plain),
        indicators: store
            .indicators(Some("mixed"))
            .unwrap()
            .into_iter()
            .map(|s| s.indicator)
            .collect(),
        rejected: vec![],
        skipped: vec![],
    };
    let n = same.indicators.len() as u64;
    let r = store
        .import_feed(
            "mixed",
            FeedFormat::Plain,
            "mixed.txt",
            &same,
            &ImportOptions::default(),
        )
        .unwrap();
    assert_eq!((r.version, r.unchanged, r.added, r.removed), (3, n, 0, 0));
    let dropped = same.indicators.pop().unwrap();
    let r = store
        .import_feed(
            "mixed",
            FeedFormat::Plain,
            "mixed.txt",
            &same,
            &ImportOptions::default(),
        )
        .unwrap();
    assert_eq!(
        (r.version, r.unchanged, r.added, r.removed),
        (4, n - 1, 0, 1)
    );
    let last = store.feed_changes("mixed").unwrap().pop().unwrap();
    assert_eq!(last.value, dropped.value.to_string());
    assert_eq!(last.type_name, dropped.value.type_name());
}
