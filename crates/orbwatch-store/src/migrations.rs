//! Versioned schema migrations.
//!
//! The schema version lives in `PRAGMA user_version`. [`MIGRATIONS`] is the
//! ordered list of steps: step *i* (0-based) brings the store from version
//! *i* to version *i + 1*. Each step runs in its own transaction together
//! with the version bump, so a failed step leaves the store at the previous
//! version. Adding a migration is one new entry at the end of the list;
//! existing entries are never edited once released.
//!
//! Conventions for every table:
//! - Instants are TEXT in RFC 3339 UTC with exactly nine fractional digits
//!   (`2021-07-20T00:00:00.000000000Z`, see [`crate::rows::ts_text`]): fixed
//!   width, so they sort correctly as text and compare with `<`/`>` in SQL,
//!   and they round-trip without loss. NULL means an open bound / unknown.
//! - Counts are INTEGER; JSON documents are TEXT ending in `_json`.

use rusqlite::Connection;

use crate::error::{Result, StoreError};

/// Schema version 1: feeds, their versions and change history, indicators,
/// and the first rejected entries of each version.
const V1_FEEDS: &str = r#"
CREATE TABLE feeds (
    id             INTEGER PRIMARY KEY,
    name           TEXT    NOT NULL UNIQUE,
    format         TEXT    NOT NULL,
    source_path    TEXT    NOT NULL,
    source_sha256  TEXT,
    added_at       TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    -- present indicators per coarse kind: {"ipv4":161,"ipv6":0,...}
    counts_json    TEXT    NOT NULL,
    rejected       INTEGER NOT NULL,
    skipped        INTEGER NOT NULL,
    -- the reader options of the latest version (grace, ttl, window, csv mapping)
    options_json   TEXT    NOT NULL
);

-- One row per import of a feed.
CREATE TABLE feed_versions (
    feed_id        INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    version        INTEGER NOT NULL,
    at             TEXT    NOT NULL,
    format         TEXT    NOT NULL,
    source_path    TEXT    NOT NULL,
    source_sha256  TEXT,
    loaded         INTEGER NOT NULL,
    added          INTEGER NOT NULL,
    removed        INTEGER NOT NULL,
    unchanged      INTEGER NOT NULL,
    duplicates     INTEGER NOT NULL,
    rejected       INTEGER NOT NULL,
    skipped        INTEGER NOT NULL,
    -- {"reason": count} of the skipped entries
    skipped_json   TEXT    NOT NULL,
    options_json   TEXT    NOT NULL,
    PRIMARY KEY (feed_id, version)
) WITHOUT ROWID;

-- Every (value, window) a feed has ever had. Rows that a later version no
-- longer lists stay, with present = 0, for history and for old findings.
CREATE TABLE indicators (
    id              INTEGER PRIMARY KEY,
    feed_id         INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    kind            TEXT    NOT NULL,   -- ipv4 ipv6 cidr domain url hash cert
    type_name       TEXT    NOT NULL,   -- ipv4 … range … md5 … cert-sha1 …
    value           TEXT    NOT NULL,   -- normalised text (range: first-last)
    valid_from      TEXT,
    valid_until     TEXT,
    first_seen      TEXT,
    last_seen       TEXT,
    published       TEXT,
    confidence      INTEGER,
    tags_json       TEXT,               -- NULL when there are no tags
    description     TEXT,
    file            TEXT    NOT NULL,
    line            INTEGER NOT NULL,
    record_id       TEXT,
    -- FNV-1a of the metadata columns, to update only what changed on re-import
    meta_hash       INTEGER NOT NULL,
    present         INTEGER NOT NULL DEFAULT 1,
    added_version   INTEGER NOT NULL,
    removed_version INTEGER,
    removed_at      TEXT
);
CREATE INDEX indicators_by_feed ON indicators(feed_id, present);

-- What each re-import (version >= 2) added and removed. The first version's
-- indicators are not listed here: they are the rows with added_version = 1.
CREATE TABLE feed_changes (
    feed_id      INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    at           TEXT    NOT NULL,
    change       TEXT    NOT NULL CHECK (change IN ('added', 'removed')),
    value        TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    type_name    TEXT    NOT NULL,
    valid_from   TEXT,
    valid_until  TEXT
);
CREATE INDEX feed_changes_by_feed ON feed_changes(feed_id, version);

-- The first rejected entries of each version (at most REJECTS_KEPT).
CREATE TABLE feed_rejects (
    feed_id   INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    version   INTEGER NOT NULL,
    file      TEXT    NOT NULL,
    line      INTEGER NOT NULL,
    reason    TEXT    NOT NULL,
    raw       TEXT    NOT NULL
);
CREATE INDEX feed_rejects_by_feed ON feed_rejects(feed_id, version);
"#;

/// Schema version 2: hunts with their coverage, the findings of each hunt,
/// and the triage decisions (a history: rows are only ever added).
const V2_FINDINGS: &str = r#"
CREATE TABLE hunts (
    id             INTEGER PRIMARY KEY,
    started        TEXT,
    finished       TEXT,
    -- what was asked: inputs, feeds, options
    args_json      TEXT    NOT NULL,
    -- the Coverage document of the run
    coverage_json  TEXT    NOT NULL,
    findings       INTEGER NOT NULL
);

-- One row per finding per hunt: the full Finding JSON (the contract of
-- `hunt --format jsonl`) plus the columns that filters need.
CREATE TABLE findings (
    row            INTEGER PRIMARY KEY,
    hunt_id        INTEGER NOT NULL REFERENCES hunts(id) ON DELETE CASCADE,
    id             TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    first_seen     TEXT,
    last_seen      TEXT,
    count          INTEGER NOT NULL,
    src_ip         TEXT,
    dst_ip         TEXT,
    indicator      TEXT,
    feed           TEXT,
    in_window      INTEGER,
    severity       TEXT,
    score          INTEGER,
    -- ioc|<indicator>|<peer> or <kind>|<src_ip>: what triage suppresses
    suppress_key   TEXT    NOT NULL,
    finding_json   TEXT    NOT NULL,
    UNIQUE (hunt_id, id)
);
CREATE INDEX findings_by_id ON findings(id);
CREATE INDEX findings_by_key ON findings(suppress_key);
CREATE INDEX findings_by_first_seen ON findings(first_seen);

-- Triage decisions, never updated: the latest one per finding (and per
-- suppression key) is in force.
CREATE TABLE triage (
    seq            INTEGER PRIMARY KEY,
    finding_id     TEXT    NOT NULL,
    suppress_key   TEXT    NOT NULL,
    status         TEXT    NOT NULL
                   CHECK (status IN ('new', 'confirmed', 'false-positive', 'benign')),
    note           TEXT,
    author         TEXT    NOT NULL,
    at             TEXT    NOT NULL
);
CREATE INDEX triage_by_finding ON triage(finding_id);
CREATE INDEX triage_by_key ON triage(suppress_key);
"#;

/// Schema version 3: feed subscriptions (issue 18). One row per subscribed
/// feed: where it comes from and how to fetch it (`spec_json`, never a
/// secret: credentials are named by environment variable or file), what the
/// last fetch left (`state_json`: ETag, TAXII `added_after`, last error),
/// and the history policy that turns a bare list into a time-aware one.
/// No foreign key to `feeds`: a subscription exists before its first
/// successful fetch creates the feed.
const V3_SUBSCRIPTIONS: &str = r#"
CREATE TABLE subscriptions (
    name           TEXT    PRIMARY KEY,
    source         TEXT    NOT NULL,
    spec_json      TEXT    NOT NULL,
    state_json     TEXT    NOT NULL,
    created_at     TEXT    NOT NULL,
    -- history windows of undated entries: look-back before first listed,
    -- grace after last listed, lifetime of entries still listed (seconds)
    lookback_s     INTEGER NOT NULL,
    grace_s        INTEGER NOT NULL,
    ttl_s          INTEGER
);
"#;

/// Schema version 4: what `watch` keeps across restarts (issue 13).
/// `tail_offsets`: where each followed file was read to, with what
/// identifies the file (device, inode, a hash of its first bytes), so a
/// restart resumes exactly there and a rotated or truncated file is
/// recognised. `alert_outbox`: alerts waiting for (or delivered to) an
/// alert sink, in order, each with a stable id for deduplication, so a
/// webhook that is down for an hour gets every alert afterwards.
/// `blocks`: addresses put into (or refused from) a firewall set, with
/// the finding that asked and until when.
const V4_WATCH: &str = r#"
CREATE TABLE tail_offsets (
    path           TEXT    PRIMARY KEY,
    device         INTEGER NOT NULL,
    inode          INTEGER NOT NULL,
    position       INTEGER NOT NULL,
    -- hex SHA-256 of the first head_len bytes (at most 1024)
    head_hash      TEXT    NOT NULL,
    head_len       INTEGER NOT NULL,
    lines          INTEGER NOT NULL,
    updated        TEXT    NOT NULL
);

CREATE TABLE alert_outbox (
    seq            INTEGER PRIMARY KEY,
    -- which sink: 'webhook https://…', 'syslog tcp 10.0.0.5:514'…
    sink           TEXT    NOT NULL,
    alert_id       TEXT    NOT NULL,
    body           TEXT    NOT NULL,
    created        TEXT    NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    next_attempt   TEXT,
    last_error     TEXT,
    delivered      TEXT,
    UNIQUE (sink, alert_id)
);
CREATE INDEX alert_outbox_pending ON alert_outbox(sink, delivered, seq);

CREATE TABLE blocks (
    seq            INTEGER PRIMARY KEY,
    address        TEXT    NOT NULL,
    -- 'nftables inet filter orbwatch', 'ipset orbwatch'
    target         TEXT    NOT NULL,
    finding_id     TEXT    NOT NULL,
    -- 'blocked', 'refused', 'dry-run'
    action         TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    at             TEXT    NOT NULL,
    until          TEXT
);
CREATE INDEX blocks_by_address ON blocks(address);
"#;

/// Router history (`orbwatch routers`): one row per step of an audit or a
/// reboot of one router (pre-check, reboot sent, back, proof, health,
/// re-audit, never came back…), so that each router's story can be shown.
const V5_ROUTER_HISTORY: &str = r#"
CREATE TABLE router_history (
    seq            INTEGER PRIMARY KEY,
    router         TEXT    NOT NULL,
    at             TEXT    NOT NULL,
    -- 'audit', 'reboot'
    action         TEXT    NOT NULL,
    -- 'precheck', 'refused', 'sent', 'returned', 'never_returned', 'proof', 'health', 'reaudit', 'done', 'dry_run', 'audited', 'error'
    step           TEXT    NOT NULL,
    ok             INTEGER NOT NULL,
    -- the hunt row that holds this run's findings, when there is one
    hunt_id        INTEGER,
    detail_json    TEXT    NOT NULL
);
CREATE INDEX router_history_by_router ON router_history(router, seq);
"#;

/// Schema 6: API tokens of `orbwatch serve`. Only the SHA-256 of each
/// token is kept, so a copy of the store does not hand out access.
const V6_API_TOKENS: &str = r#"
CREATE TABLE api_tokens (
    id       INTEGER PRIMARY KEY,
    name     TEXT    NOT NULL UNIQUE,
    -- hex SHA-256 of the token's text
    sha256   TEXT    NOT NULL UNIQUE,
    -- 'read', 'triage', 'admin'
    scope    TEXT    NOT NULL,
    created  TEXT    NOT NULL,
    revoked  TEXT
);
"#;

/// Schema 7: what the findings list needs, kept on write (issue 14), so
/// that a page of `serve`'s list is an index range instead of a walk over
/// every finding with the triage worked out in Rust on each request.
///
/// - `is_latest`: 1 on the newest row (largest `row`) of each finding id,
///   the copy every list shows when no hunt is asked for.
/// - `decision_seq`, `triage_status`: the triage decision in force (the
///   finding's own latest decision, else the latest on its suppression
///   key, as `findings::effective` decides) and its status, `new` without.
/// - `sev_order`, `score_order`, `seen_order`: the list's order ("most
///   serious first": severity, score, first sighting, then id) as columns
///   that all sort ascending, so one index gives the order and a cursor is
///   a row-value comparison on it. Generated (virtual): they can never
///   disagree with `severity`, `score` and `first_seen`. `'~'` sorts after
///   every timestamp text, so undated findings come last, as before.
///
/// Triggers keep the first two right whoever writes (`record_hunt`,
/// `watch`'s commits, a replaced finding, a triage decision); existing
/// stores get them computed here.
const V7_FINDINGS_LIST: &str = r#"
ALTER TABLE findings ADD COLUMN is_latest INTEGER NOT NULL DEFAULT 0;
ALTER TABLE findings ADD COLUMN decision_seq INTEGER;
ALTER TABLE findings ADD COLUMN triage_status TEXT NOT NULL DEFAULT 'new';
ALTER TABLE findings ADD COLUMN sev_order INTEGER GENERATED ALWAYS AS (
    CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2
    WHEN 'low' THEN 3 WHEN 'info' THEN 4 ELSE 5 END) VIRTUAL;
ALTER TABLE findings ADD COLUMN score_order INTEGER GENERATED ALWAYS AS (
    -COALESCE(score, -1)) VIRTUAL;
ALTER TABLE findings ADD COLUMN seen_order TEXT GENERATED ALWAYS AS (
    COALESCE(first_seen, '~')) VIRTUAL;

UPDATE findings SET is_latest = 1
 WHERE row IN (SELECT MAX(row) FROM findings GROUP BY id);
UPDATE findings SET decision_seq = COALESCE(
    (SELECT MAX(t.seq) FROM triage t WHERE t.finding_id = findings.id),
    (SELECT MAX(t.seq) FROM triage t WHERE t.suppress_key = findings.suppress_key));
UPDATE findings SET triage_status = COALESCE(
    (SELECT t.status FROM triage t WHERE t.seq = findings.decision_seq), 'new');

-- The list in its order; status and kind ride along so that those filters
-- and the totals are read from the index alone.
CREATE INDEX findings_list ON findings(sev_order, score_order, seen_order, id,
    triage_status, kind) WHERE is_latest = 1;
-- Counts by kind, severity, status and day (`/metrics`, the overview).
CREATE INDEX findings_counts ON findings(kind, severity, triage_status, first_seen,
    last_seen) WHERE is_latest = 1;
-- A new row is the latest copy of its id unless a newer row exists (a
-- REPLACE deletes the old row without firing the delete trigger: the new
-- row, with a larger `row`, takes over here). Its triage state is that of
-- the decisions recorded so far.
CREATE TRIGGER findings_list_on_insert AFTER INSERT ON findings BEGIN
    UPDATE findings SET is_latest = 0
     WHERE id = NEW.id AND is_latest = 1 AND row < NEW.row;
    UPDATE findings SET
        is_latest = NOT EXISTS (SELECT 1 FROM findings g WHERE g.id = NEW.id AND g.row > NEW.row),
        decision_seq = COALESCE(
            (SELECT MAX(t.seq) FROM triage t WHERE t.finding_id = NEW.id),
            (SELECT MAX(t.seq) FROM triage t WHERE t.suppress_key = NEW.suppress_key))
     WHERE row = NEW.row;
    UPDATE findings SET triage_status = COALESCE(
        (SELECT t.status FROM triage t WHERE t.seq = findings.decision_seq), 'new')
     WHERE row = NEW.row;
END;

-- A deleted latest copy (its hunt deleted) hands over to the next newest.
CREATE TRIGGER findings_list_on_delete AFTER DELETE ON findings WHEN OLD.is_latest = 1 BEGIN
    UPDATE findings SET is_latest = 1
     WHERE row = (SELECT MAX(row) FROM findings WHERE id = OLD.id);
END;

-- A decision is in force on its own finding, and on every finding with
-- the same suppression key that has no decision of its own.
CREATE TRIGGER triage_status_on_insert AFTER INSERT ON triage BEGIN
    UPDATE findings SET decision_seq = NEW.seq, triage_status = NEW.status
     WHERE id = NEW.finding_id;
    UPDATE findings SET decision_seq = NEW.seq, triage_status = NEW.status
     WHERE suppress_key = NEW.suppress_key
       AND NOT EXISTS (SELECT 1 FROM triage t WHERE t.finding_id = findings.id);
END;
"#;

/// Schema version 8 (issue 19, `feed add` of ten million lines in seconds):
/// narrower indicator rows. Version 1 stored on every row the feed file's
/// path, and the kind and type name as text: for a plain list that was
/// more than half of each row, written ten million times. Now the path is
/// a `feed_files` row named by id, the type an `indicator_types` row named
/// by id (with its kind, which the type determines, so it is no longer a
/// column of its own). Rows keep their ids, so nothing that refers to an
/// indicator by id changes. `feed_changes` keeps its text columns: it
/// holds only what changed between versions.
///
/// `feed_files` rows are never deleted: a path no indicator refers to any
/// more (its feed removed, or an import that failed) costs one short row.
const V8_NARROW_INDICATORS: &str = r#"
CREATE TABLE feed_files (
    id    INTEGER PRIMARY KEY,
    -- the provenance file of indicators, as the reader named it
    path  TEXT    NOT NULL UNIQUE
);

CREATE TABLE indicator_types (
    id    INTEGER PRIMARY KEY,
    name  TEXT    NOT NULL UNIQUE,   -- ipv4 … range … md5 … cert-sha1 …
    kind  TEXT    NOT NULL           -- ipv4 ipv6 cidr domain url hash cert
);

INSERT INTO feed_files (path) SELECT DISTINCT file FROM indicators ORDER BY file;
INSERT INTO indicator_types (name, kind)
    SELECT type_name, min(kind) FROM indicators GROUP BY type_name ORDER BY type_name;

CREATE TABLE indicators_v8 (
    id              INTEGER PRIMARY KEY,
    -- feeds(id); not a declared foreign key either (see type_id): a feed's
    -- rows are deleted before its feeds row (discard_staged), never by a
    -- cascade
    feed_id         INTEGER NOT NULL,
    -- indicator_types(id) and feed_files(id): not declared as foreign keys,
    -- as SQLite checks each one on every insert (a cursor opened and a
    -- seek per key: 4 % of `feed add`'s instructions for these two); the
    -- import takes the ids from those tables and no row is ever deleted
    type_id         INTEGER NOT NULL,
    value           TEXT    NOT NULL,   -- normalised text (range: first-last)
    valid_from      TEXT,
    valid_until     TEXT,
    first_seen      TEXT,
    last_seen       TEXT,
    published       TEXT,
    confidence      INTEGER,
    tags_json       TEXT,               -- NULL when there are no tags
    description     TEXT,
    file_id         INTEGER NOT NULL,
    line            INTEGER NOT NULL,
    record_id       TEXT,
    -- FNV-1a of the metadata columns, to update only what changed on re-import
    meta_hash       INTEGER NOT NULL,
    present         INTEGER NOT NULL DEFAULT 1,
    added_version   INTEGER NOT NULL,
    removed_version INTEGER,
    removed_at      TEXT
);

INSERT INTO indicators_v8 (id, feed_id, type_id, value, valid_from, valid_until, first_seen,
    last_seen, published, confidence, tags_json, description, file_id, line, record_id,
    meta_hash, present, added_version, removed_version, removed_at)
SELECT i.id, i.feed_id, t.id, i.value, i.valid_from, i.valid_until, i.first_seen,
    i.last_seen, i.published, i.confidence, i.tags_json, i.description, ff.id, i.line,
    i.record_id, i.meta_hash, i.present, i.added_version, i.removed_version, i.removed_at
FROM indicators i
JOIN indicator_types t ON t.name = i.type_name
JOIN feed_files ff ON ff.path = i.file
ORDER BY i.id;

DROP TABLE indicators;
ALTER TABLE indicators_v8 RENAME TO indicators;
CREATE INDEX indicators_by_feed ON indicators(feed_id, present);
"#;

/// Schema 9: the filters of the findings list read from indexes.
///
/// With schema 7 a page is a range of `findings_list`, but a filter the
/// index did not hold (a feed, `since`, `min_score`, one hunt) made SQLite
/// read the table row of every finding it passed over, and one hunt's
/// list was sorted whole. Now:
/// - `findings_list` also carries `feed`, `first_seen`, `last_seen` and
///   `score`, so every filter of the list is checked in the index, and
///   only the page's rows are read. (The stored columns, not the virtual
///   `seen_order` and `score_order` it is ordered by: SQLite does not
///   count an index as covering a filter on a virtual column.)
/// - `findings_feed_list`: one feed's findings in the list's order;
/// - `findings_hunt_list`: one hunt's findings in the list's order (the
///   dashboard's hunt page, `findings --hunt N`, the report of one hunt).
const V9_LIST_FILTERS: &str = r#"
DROP INDEX findings_list;
CREATE INDEX findings_list ON findings(sev_order, score_order, seen_order, id,
    triage_status, kind, feed, first_seen, last_seen, score) WHERE is_latest = 1;
CREATE INDEX findings_feed_list ON findings(feed, sev_order, score_order, seen_order, id,
    triage_status, kind, first_seen, last_seen, score) WHERE is_latest = 1;
CREATE INDEX findings_hunt_list ON findings(hunt_id, sev_order, score_order, seen_order, id,
    triage_status, kind, feed, first_seen, last_seen, score);
"#;

/// Schema 10: two indexes on `findings` that no query needs any more,
/// dropped, because every index is written on every insert.
///
/// Figures for 100,000 findings, three runs of each schema
/// (bench/bench_findings_indexes.py, bench/README.md):
/// - `findings_by_first_seen` (schema 2): the only query SQLite still
///   took it for was the total of an `until` filter, which it then read
///   row by row from the table; without it that total is counted from
///   `findings_feed_list` (45-53 -> 20-35 ms; `since` and `until`
///   together 128-141 -> 22-46 ms).
/// - `findings_counts` (schema 7): `Store::finding_counts` now groups by
///   `sev_order` (the severity's rank, which `findings_list` and
///   `findings_feed_list` hold) and names the severity from it, a little
///   slower (159-185 -> 195-241 ms). SQLite also took it for the `kind`
///   filter's page, and sorted every finding of the kind (433-453 ms);
///   that page is a range of `findings_list` again (0.4-3.1 ms).
///
/// 100,000 findings inserted in one transaction: 29.8-31.1 s with schema
/// 9, 22.2-26.1 s without these two.
const V10_DROP_UNUSED_INDEXES: &str = r#"
DROP INDEX findings_by_first_seen;
DROP INDEX findings_counts;
"#;

/// The ordered migration steps. Append new steps; never edit released ones.
pub const MIGRATIONS: &[&str] = &[
    V1_FEEDS,
    V2_FINDINGS,
    V3_SUBSCRIPTIONS,
    V4_WATCH,
    V5_ROUTER_HISTORY,
    V6_API_TOKENS,
    V7_FINDINGS_LIST,
    V8_NARROW_INDICATORS,
    V9_LIST_FILTERS,
    V10_DROP_UNUSED_INDEXES,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Bring the store at `path` (open as `conn`) to [`SCHEMA_VERSION`].
pub(crate) fn migrate(conn: &mut Connection, path: &std::path::Path) -> Result<()> {
    let current: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|source| classify_open_error(path, source))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        let version = i as i64 + 1;
        let fail = |source| StoreError::Migration {
            path: path.to_path_buf(),
            version,
            source,
        };
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(fail)?;
        // Another process may have migrated while this one waited for the
        // write lock: look again under the lock.
        let now: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(fail)?;
        if now >= version {
            tx.commit().map_err(fail)?;
            continue;
        }
        tx.execute_batch(sql).map_err(fail)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(fail)?;
        tx.commit().map_err(fail)?;
        tracing::debug!(store = %path.display(), version, "store schema migrated");
    }
    Ok(())
}

/// Tell "not a database" apart from other open failures.
pub(crate) fn classify_open_error(path: &std::path::Path, source: rusqlite::Error) -> StoreError {
    let not_db = matches!(
        &source,
        rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::NotADatabase
    );
    if not_db {
        StoreError::NotAStore {
            path: path.to_path_buf(),
            source,
        }
    } else {
        StoreError::Open {
            path: path.to_path_buf(),
            source,
        }
    }
}
