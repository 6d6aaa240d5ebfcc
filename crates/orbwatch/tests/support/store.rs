//! Reading what a daemon (`worker --db`, `serve --findings-topic`) kept
//! in its store, while it runs: shared by the test files that check it
//! (included with `#[path]`). Every reader answers "nothing yet" until
//! the daemon has created the store and its tables.

// Each test file includes this module and uses part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

/// (run, finding JSON) of the stored findings matching the SQL condition
/// `cond` (e.g. `kind = 'ioc_match'`, or `1`).
pub fn findings_where(db: &Path, cond: &str) -> Vec<(i64, serde_json::Value)> {
    if !db.is_file() {
        return Vec::new();
    }
    let conn = rusqlite::Connection::open(db).expect("store");
    let Ok(mut st) = conn.prepare(&format!(
        "SELECT hunt_id, finding_json FROM findings WHERE {cond}"
    )) else {
        return Vec::new();
    };
    st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .expect("rows")
        .map(|r| {
            let (run, json) = r.expect("row");
            (run, serde_json::from_str(&json).expect("json"))
        })
        .collect()
}

/// The Kafka offsets the store keeps under `prefix` (the worker's
/// `kafka:GROUP:TOPIC:`, the findings intake's `kafka-findings:TOPIC:`):
/// partition -> next offset.
pub fn kept_offsets(db: &Path, prefix: &str) -> BTreeMap<i32, i64> {
    let Ok(conn) = rusqlite::Connection::open(db) else {
        return BTreeMap::new();
    };
    let Ok(mut st) = conn.prepare("SELECT path, position FROM tail_offsets") else {
        return BTreeMap::new();
    };
    let rows = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .map(|it| it.filter_map(Result::ok).collect::<Vec<_>>())
        .unwrap_or_default();
    rows.into_iter()
        .filter_map(|(p, o)| Some((p.strip_prefix(prefix)?.parse().ok()?, o)))
        .collect()
}
