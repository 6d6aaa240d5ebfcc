//! The embedded SQLite store of orbwatch: threat-intel feeds with their full
//! version history, so that `hunt` can compile its index from what the
//! analyst loaded and every finding can be traced to the feed version that
//! produced it.
//!
//! # Layout
//!
//! One SQLite file (WAL mode, foreign keys on), schema versioned through
//! `PRAGMA user_version` (see [`migrations`]). Tables of schema 1:
//!
//! | table | one row per |
//! |---|---|
//! | `feeds` | feed (unique name), with the latest version's format, source, counts and options |
//! | `feed_versions` | import of a feed: when, from where, loaded/added/removed/unchanged/rejected/skipped |
//! | `indicators` | (value, validity window) a feed ever listed; `present = 0` once a later version dropped it |
//! | `feed_changes` | indicator added or removed by a re-import (version ≥ 2) |
//! | `feed_rejects` | rejected entry of a version (the first [`REJECTS_KEPT`]) |
//!
//! Schema 2 adds `hunts` (a run: what was asked, its coverage), `findings`
//! (one row per finding per hunt) and `triage` (the history of decisions);
//! see [`findings`]. Schema 3 adds `subscriptions`; schema 4 adds what
//! `watch` keeps across restarts: `tail_offsets`, `alert_outbox`, `blocks`
//! (see [`migrations`]). Schema 5 adds `router_history` (`orbwatch
//! routers`); schema 6 adds `api_tokens` (see [`tokens`]); schema 7 keeps
//! on each finding row whether it is the latest copy of its id and its
//! triage state, with indexes in the list's order, so that a page of
//! findings is an index range (see [`migrations`]). Schema 8
//! narrows `indicators`: the provenance file and the type are ids of rows
//! of `feed_files` and `indicator_types` (see [`migrations`]).
//!
//! Instants are RFC 3339 UTC text with nine fractional digits
//! (`2021-07-20T00:00:00.000000000Z`): fixed width, so SQL compares and sorts
//! them correctly as text, and lossless. NULL is an open bound.
//!
//! # Importing
//!
//! [`Store::import_feed`] writes in bounded batches and makes the new
//! version visible in one short final transaction; on any error nothing
//! changes (see [`import`]). Re-adding a feed under the same name creates a new version; the
//! diff is by identity (type, value, window): the same address with two
//! windows is two indicators, identical duplicates within one file are stored
//! once.

use std::collections::BTreeMap;
use std::collections::hash_map::HashMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use orbwatch_intel::{Indicator, IndicatorKind, Provenance, ReadOptions};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::Serialize;
use sha2::Digest;

mod error;
pub mod findings;
pub mod history;
pub mod import;
pub mod migrations;
pub mod outbox;
mod repeat_set;
pub mod router_detail;
pub mod router_history;
pub mod rows;
pub mod subscriptions;
pub mod tail_offsets;
pub mod tokens;

pub use error::{Result, StoreError};
pub use findings::{
    FindingCount, FindingFilter, FindingsCursor, HuntRecord, HuntSummary, IdMatch, RecordedHunt,
    StoredFinding, TriageDecision, TriageStatus, suppression_key,
};
pub use history::{HistoryWindow, WindowOrigin};
pub use migrations::SCHEMA_VERSION;
pub use outbox::{BlockAction, BlockRecord, OutboxItem};
pub use router_detail::RouterStepDetail;
pub use router_history::{RouterStanding, RouterStep};
/// The SQLite binding, for callers that write in a transaction of the
/// store ([`Store::write_transaction`]).
pub use rusqlite;
pub use subscriptions::SubscriptionRow;
pub use tail_offsets::{StoredTailOffset, TailOffset, save_tail_offsets};
pub use tokens::{TokenInfo, TokenScope};

use error::SqlContext;
use rows::{parse_opt_ts, parse_ts};

/// Hash maps keyed by indicator identity during an import (millions of
/// keys: a fast hasher matters).
type FastMap<K, V> = HashMap<K, V, ahash::RandomState>;

/// How long a statement waits for another connection's lock by default.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How many rejected entries of each version are kept in `feed_rejects`.
pub const REJECTS_KEPT: usize = 1000;

/// An open store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// How long one batch of a feed import may hold the write lock.
    import_batch: Duration,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// What the caller knows about an import beyond the parsed feed.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// SHA-256 of the source file(s), hex.
    pub source_sha256: Option<String>,
    /// The reader options used, recorded with the version (see
    /// [`read_options_json`]).
    pub options: serde_json::Value,
    /// The import time; `None` means now.
    pub at: Option<Timestamp>,
    /// Refuse to publish a version with no indicators when the feed has
    /// some ([`StoreError::EmptyVersionRefused`]), discarding what was
    /// staged. For a fetched feed (a subscription): an empty or unreadable
    /// download is far likelier a broken source than a feed that really
    /// dropped everything, and a streamed import cannot be looked at
    /// before it is stored. `feed add` and uploads leave it off: a user
    /// who hands over an empty file means it.
    pub refuse_empty_version: bool,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub feed: String,
    /// The version this import created (1 for a new feed).
    pub version: i64,
    /// Distinct indicators the feed has now.
    pub loaded: u64,
    /// Indicators new in this version (all of them for version 1).
    pub added: u64,
    /// Indicators of the previous version that this one no longer lists.
    pub removed: u64,
    /// Indicators already in the previous version.
    pub unchanged: u64,
    /// Values whose validity window changed: the old window was removed
    /// and a new one added for the same value. They are also counted in
    /// `added` and `removed` (the history keeps both rows), so that a
    /// re-import with another `--ttl` can be reported as what it is.
    pub changed_validity: u64,
    /// Indicators counted in `unchanged` whose confidence changed.
    pub changed_confidence: u64,
    /// Identical repeats within this file, stored once.
    pub duplicates: u64,
    pub rejected: u64,
    pub skipped: u64,
    /// Present indicators per coarse kind; all seven kinds, possibly 0.
    pub counts: BTreeMap<String, u64>,
}

/// A feed as `feed list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedInfo {
    pub name: String,
    pub format: String,
    pub source_path: String,
    pub source_sha256: Option<String>,
    pub added_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: i64,
    /// Present indicators per coarse kind; all seven kinds, possibly 0.
    pub counts: BTreeMap<String, u64>,
    pub rejected: u64,
    pub skipped: u64,
    pub options: serde_json::Value,
}

impl FeedInfo {
    /// Present indicators, all kinds.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// One import of a feed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedVersion {
    pub version: i64,
    pub at: Timestamp,
    pub format: String,
    pub source_path: String,
    pub source_sha256: Option<String>,
    pub loaded: u64,
    pub added: u64,
    pub removed: u64,
    pub unchanged: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub skipped: u64,
    /// Skipped entries grouped by reason.
    pub skipped_reasons: BTreeMap<String, u64>,
}

/// Whether a change added or removed an indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
}

/// One indicator added or removed by a re-import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedChange {
    pub version: i64,
    pub at: Timestamp,
    pub change: ChangeKind,
    pub value: String,
    pub kind: String,
    pub type_name: String,
    pub valid_from: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
}

/// A rejected entry kept with its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredReject {
    pub version: i64,
    pub file: String,
    pub line: u64,
    pub reason: String,
    pub raw: String,
}

/// An indicator as `hunt` gets it: with its row id and feed name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredIndicator {
    pub id: i64,
    pub feed: String,
    pub indicator: Indicator,
}

/// The span of the validity windows of a feed's present indicators.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WindowSummary {
    pub indicators: u64,
    /// Earliest start among bounded windows.
    pub earliest_valid_from: Option<Timestamp>,
    /// Latest end among bounded windows.
    pub latest_valid_until: Option<Timestamp>,
    /// Indicators whose window has no start.
    pub open_start: u64,
    /// Indicators whose window has no end (still valid).
    pub open_end: u64,
}

/// How many of a feed's present indicators have a validity window, and
/// how many of those ended before a given instant
/// ([`Store::validity_counts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ValidityCounts {
    pub indicators: u64,
    /// Indicators with a start or an end of validity.
    pub with_window: u64,
    /// Indicators whose validity ended before the instant asked about.
    pub expired: u64,
}

/// Tag values of a feed's present indicators, with how many carry each.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TagSummary {
    pub actors: BTreeMap<String, u64>,
    pub campaigns: BTreeMap<String, u64>,
    pub roles: BTreeMap<String, u64>,
    pub tlp: BTreeMap<String, u64>,
}

/// What `remove_feed` deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RemovedFeed {
    /// Indicator rows deleted, present or not.
    pub indicators: u64,
    pub versions: i64,
}

/// SHA-256 of some bytes, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = sha2::Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The reader options worth recording with a version, as JSON.
pub fn read_options_json(opts: &ReadOptions) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert("grace".into(), format!("{:#}", opts.grace).into());
    if let Some(t) = opts.valid_from {
        m.insert("valid_from".into(), t.to_string().into());
    }
    if let Some(t) = opts.valid_until {
        m.insert("valid_until".into(), t.to_string().into());
    }
    if let Some(d) = opts.ttl {
        m.insert("ttl".into(), format!("{d:#}").into());
    }
    if let Some(c) = opts.confidence {
        m.insert("confidence".into(), c.into());
    }
    let csv = &opts.csv;
    let mut c = serde_json::Map::new();
    for (k, v) in [
        ("value", &csv.value),
        ("type", &csv.kind),
        ("first_seen", &csv.first_seen),
        ("last_seen", &csv.last_seen),
        ("valid_from", &csv.valid_from),
        ("valid_until", &csv.valid_until),
        ("confidence", &csv.confidence),
        ("tags", &csv.tags),
        ("description", &csv.description),
    ] {
        if let Some(v) = v {
            c.insert(k.into(), v.clone().into());
        }
    }
    if let Some(d) = csv.delimiter {
        c.insert("delimiter".into(), char::from(d).to_string().into());
    }
    if csv.no_header {
        c.insert("no_header".into(), true.into());
    }
    if !c.is_empty() {
        m.insert("csv".into(), c.into());
    }
    serde_json::Value::Object(m)
}

fn empty_counts() -> BTreeMap<String, u64> {
    IndicatorKind::ALL
        .iter()
        .map(|k| (k.as_str().to_string(), 0))
        .collect()
}

/// The coarse kind of a fine type name.
fn kind_of_type(type_name: &str) -> &'static str {
    match type_name {
        "ipv4" => "ipv4",
        "ipv6" => "ipv6",
        "cidr" | "range" => "cidr",
        "domain" => "domain",
        "url" => "url",
        t if t.starts_with("cert-") => "cert",
        _ => "hash",
    }
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn validate_name(name: &str) -> Result<()> {
    let reason = if name.trim().is_empty() {
        Some("it is empty; pass --name")
    } else if name.trim() != name {
        Some("it starts or ends with spaces")
    } else if name.chars().any(char::is_control) {
        Some("it contains control characters")
    } else {
        None
    };
    match reason {
        Some(r) => Err(StoreError::InvalidName {
            name: name.to_string(),
            reason: r.to_string(),
        }),
        None => Ok(()),
    }
}

/// A row of the existing indicators of a feed, for the diff.
struct Existing {
    id: i64,
    present: bool,
    meta_hash: i64,
    confidence: Option<i64>,
}

const INSERT_INDICATOR: &str = "INSERT INTO indicators (feed_id, type_id, value, \
     valid_from, valid_until, first_seen, last_seen, published, confidence, tags_json, \
     description, file_id, line, record_id, meta_hash, added_version, present) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)";

/// [`INSERT_INDICATOR`] for a row with none of the optional columns (no
/// window, dates, confidence, tags, description or record id): what every
/// row of a plain block list is. Binding nine NULLs per row was 5 % of
/// `feed add`'s instructions on such a list.
const INSERT_BARE_INDICATOR: &str = "INSERT INTO indicators (feed_id, type_id, value, file_id, \
     line, meta_hash, added_version, present) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

const UPDATE_META: &str = "UPDATE indicators SET first_seen = ?2, last_seen = ?3, \
     published = ?4, confidence = ?5, tags_json = ?6, description = ?7, file_id = ?8, line = ?9, \
     record_id = ?10, meta_hash = ?11 WHERE id = ?1";

const REVIVE: &str = "UPDATE indicators SET present = 1, added_version = ?2, \
     removed_version = NULL, removed_at = NULL WHERE id = ?1";

const MARK_REMOVED: &str =
    "UPDATE indicators SET present = 0, removed_version = ?2, removed_at = ?3 WHERE id = ?1";

const INSERT_CHANGE: &str = "INSERT INTO feed_changes (feed_id, version, at, change, value, \
     kind, type_name, valid_from, valid_until) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

/// The columns [`Store::decode_indicator`] reads, in its order. Type names
/// and file paths are rows of their own tables (schema 8).
const SELECT_INDICATOR: &str = "SELECT i.id, f.name, t.name, i.value, i.valid_from, \
     i.valid_until, i.first_seen, i.last_seen, i.published, i.confidence, i.tags_json, \
     i.description, ff.path, i.line, i.record_id FROM indicators i JOIN feeds f ON f.id = i.feed_id \
     AND f.version > 0 JOIN indicator_types t ON t.id = i.type_id \
     JOIN feed_files ff ON ff.id = i.file_id WHERE i.present = 1";

/// A connection to the store file at `path`, opened with `access` (read
/// and write, or read only) and what every connection of a [`Store`] has:
/// no SQLite mutex (a connection is used by one thread at a time), `file:`
/// URIs allowed, and the busy timeout that makes it wait for a writer
/// instead of failing at once.
fn connect(path: &Path, access: OpenFlags) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        access | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    conn.busy_timeout(DEFAULT_BUSY_TIMEOUT)
        .map_err(|source| migrations::classify_open_error(path, source))?;
    Ok(conn)
}

/// Run `open` again while it fails as busy, with growing pauses, for as
/// long as a statement would wait for a lock.
///
/// SQLite does not always wait for a lock while a store is being set up:
/// switching a new file to WAL while another connection does the same
/// fails with BUSY at once, whatever the busy timeout. Two workers, or a
/// `hunt --db` beside `serve`, started together meet exactly that. Each
/// pause has a share of noise, different in each thread and process, so
/// openers that collided once do not wake together and collide again.
fn retry_busy_open<T>(path: &Path, mut open: impl FnMut() -> Result<T>) -> Result<T> {
    use std::hash::{BuildHasher, RandomState};
    let deadline = Instant::now() + DEFAULT_BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(2);
    loop {
        match open() {
            Err(e) if e.is_busy() && Instant::now() + pause < deadline => {
                tracing::debug!(store = %path.display(), "store busy while opening; retrying");
                let noise = RandomState::new().hash_one(std::thread::current().id());
                std::thread::sleep(pause + pause.mul_f64((noise % 1024) as f64 / 1024.0));
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            opened => return opened,
        }
    }
}

impl Store {
    /// Open the store at `path`, creating it and bringing its schema up to
    /// date as needed.
    ///
    /// An existing file of 0 bytes (a failed copy, a `touch`) is made into
    /// a new store like a missing one, with a warning that says so.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        if std::fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() == 0) {
            tracing::warn!(
                "the store {} is an empty file (0 bytes); it is made into a new, empty store",
                path.display()
            );
        }
        retry_busy_open(&path, || Self::open_once(&path))
    }

    /// One attempt of [`Store::open`]: connect, switch to WAL, set the
    /// connection's pragmas and migrate.
    fn open_once(path: &Path) -> Result<Store> {
        let mut conn = connect(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )?;
        // `journal_mode` answers with the mode in force; reading it is also
        // the first access to the file, where "not a database" shows up.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|source| migrations::classify_open_error(path, source))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::debug!(store = %path.display(), mode, "store is not in WAL mode");
        }
        conn.execute_batch(
            "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536;",
        )
        .map_err(|source| migrations::classify_open_error(path, source))?;
        migrations::migrate(&mut conn, path)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            import_batch: import::DEFAULT_IMPORT_BATCH,
        })
    }

    /// Open an existing store for reading only, at this build's schema
    /// (it is not upgraded: open it with [`Store::open`] first). For
    /// servers that read from several connections at once: in WAL mode
    /// readers do not wait for each other nor for the writer, and a
    /// read-only connection cannot take the write lock by mistake.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref();
        retry_busy_open(path, || Self::open_read_only_once(path))
    }

    /// One attempt of [`Store::open_read_only`].
    fn open_read_only_once(path: &Path) -> Result<Store> {
        let path = path.to_path_buf();
        let conn = connect(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        conn.execute_batch("PRAGMA cache_size = -65536;")
            .map_err(|source| migrations::classify_open_error(&path, source))?;
        let found: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|source| migrations::classify_open_error(&path, source))?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path,
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found < SCHEMA_VERSION {
            return Err(StoreError::NotUpgraded {
                path,
                found,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(Store {
            conn,
            path,
            import_batch: import::DEFAULT_IMPORT_BATCH,
        })
    }

    /// How long one statement waits for a lock that another connection
    /// holds before it fails as busy (see [`StoreError::is_busy`]).
    /// SQLite's busy handler sleeps in growing steps (1 ms up to 100 ms)
    /// while it waits, so a waiting writer backs off instead of spinning.
    pub fn set_busy_timeout(&self, wait: Duration) -> Result<()> {
        self.conn
            .busy_timeout(wait)
            .ctx(&self.path, "setting the busy timeout")
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open store.
    pub fn schema_version(&self) -> Result<i64> {
        self.conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .ctx(&self.path, "reading the schema version")
    }

    fn corrupt(&self, detail: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            detail: detail.into(),
        }
    }

    fn feed_id(&self, name: &str) -> Result<i64> {
        self.conn
            .query_row(
                "SELECT id FROM feeds WHERE name = ?1 AND version > 0",
                [name],
                |r| r.get(0),
            )
            .optional()
            .ctx(&self.path, "looking up the feed")?
            .ok_or_else(|| StoreError::UnknownFeed {
                name: name.to_string(),
            })
    }

    fn feed_info_row(&self, r: &rusqlite::Row<'_>) -> Result<FeedInfo> {
        let p = &self.path;
        let name: String = r.get(0).ctx(p, "reading feeds")?;
        let added_at: String = r.get(4).ctx(p, "reading feeds")?;
        let updated_at: String = r.get(5).ctx(p, "reading feeds")?;
        let counts_json: String = r.get(7).ctx(p, "reading feeds")?;
        let options_json: String = r.get(10).ctx(p, "reading feeds")?;
        let mut counts = empty_counts();
        let stored: BTreeMap<String, u64> = serde_json::from_str(&counts_json)
            .map_err(|e| self.corrupt(format!("feed `{name}` has unreadable counts ({e})")))?;
        counts.extend(stored);
        Ok(FeedInfo {
            format: r.get(1).ctx(p, "reading feeds")?,
            source_path: r.get(2).ctx(p, "reading feeds")?,
            source_sha256: r.get(3).ctx(p, "reading feeds")?,
            added_at: parse_ts(&added_at)
                .map_err(|e| self.corrupt(format!("feed `{name}`: {e}")))?,
            updated_at: parse_ts(&updated_at)
                .map_err(|e| self.corrupt(format!("feed `{name}`: {e}")))?,
            version: r.get(6).ctx(p, "reading feeds")?,
            counts,
            rejected: to_u64(r.get(8).ctx(p, "reading feeds")?),
            skipped: to_u64(r.get(9).ctx(p, "reading feeds")?),
            options: serde_json::from_str(&options_json).unwrap_or(serde_json::Value::Null),
            name,
        })
    }

    const FEED_COLUMNS: &'static str = "SELECT name, format, source_path, source_sha256, added_at, \
         updated_at, version, counts_json, rejected, skipped, options_json FROM feeds";

    /// A value that changes whenever a feed is added, re-imported or
    /// removed (the count of versions and of feeds, and the latest
    /// update): a live run polls it to know when to reload. Only what
    /// readers can see counts: an import under way (a new feed's row at
    /// version 0) does not change it, so it triggers one reload, at the
    /// end, not a useless one at the start.
    pub fn feeds_generation(&self) -> Result<(i64, i64, String)> {
        self.conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM feed_versions), \
                 (SELECT COUNT(*) FROM feeds WHERE version > 0), \
                 (SELECT COALESCE(MAX(updated_at), '') FROM feeds WHERE version > 0)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .ctx(&self.path, "reading the feeds' generation")
    }

    /// All feeds, by name.
    pub fn list_feeds(&self) -> Result<Vec<FeedInfo>> {
        let p = &self.path;
        let mut stmt = self
            .conn
            .prepare(&format!(
                "{} WHERE version > 0 ORDER BY name",
                Self::FEED_COLUMNS
            ))
            .ctx(p, "listing feeds")?;
        let mut q = stmt.query([]).ctx(p, "listing feeds")?;
        let mut out = Vec::new();
        while let Some(r) = q.next().ctx(p, "listing feeds")? {
            out.push(self.feed_info_row(r)?);
        }
        Ok(out)
    }

    /// One feed by name.
    pub fn feed(&self, name: &str) -> Result<Option<FeedInfo>> {
        let p = &self.path;
        let mut stmt = self
            .conn
            .prepare(&format!(
                "{} WHERE name = ?1 AND version > 0",
                Self::FEED_COLUMNS
            ))
            .ctx(p, "reading the feed")?;
        let mut q = stmt.query([name]).ctx(p, "reading the feed")?;
        match q.next().ctx(p, "reading the feed")? {
            Some(r) => Ok(Some(self.feed_info_row(r)?)),
            None => Ok(None),
        }
    }

    /// Delete a feed with its indicators and history.
    ///
    /// One short transaction hides the feed (its `feeds` row goes back to
    /// version 0, which no reader sees: the feed is gone for every reader
    /// at that instant) and drops its subscription; its rows are then
    /// deleted in short batches, as a failed import's are, so that a
    /// 10M-row feed does not hold the write lock for tens of seconds. If
    /// the process dies part way, the feed stays gone and the next import
    /// under its name clears what is left.
    pub fn remove_feed(&mut self, name: &str) -> Result<RemovedFeed> {
        let id = self.feed_id(name)?;
        let path = self.path.clone();
        let p = path.as_path();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .ctx(p, "removing the feed")?;
        let versions: i64 = tx
            .query_row("SELECT version FROM feeds WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .ctx(p, "removing the feed")?;
        // A removed feed is not fetched again.
        tx.execute("DELETE FROM subscriptions WHERE name = ?1", [name])
            .ctx(p, "removing the feed's subscription")?;
        tx.execute("UPDATE feeds SET version = 0 WHERE id = ?1", [id])
            .ctx(p, "removing the feed")?;
        tx.commit().ctx(p, "removing the feed")?;
        let indicators = self.discard_staged(id, 0, true)?;
        Ok(RemovedFeed {
            indicators,
            versions,
        })
    }

    /// Every import of a feed, oldest first.
    pub fn feed_versions(&self, name: &str) -> Result<Vec<FeedVersion>> {
        let id = self.feed_id(name)?;
        let p = &self.path;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT version, at, format, source_path, source_sha256, loaded, added, removed, \
                 unchanged, duplicates, rejected, skipped, skipped_json FROM feed_versions \
                 WHERE feed_id = ?1 ORDER BY version",
            )
            .ctx(p, "reading versions")?;
        let mut q = stmt.query([id]).ctx(p, "reading versions")?;
        let mut out = Vec::new();
        while let Some(r) = q.next().ctx(p, "reading versions")? {
            let at: String = r.get(1).ctx(p, "reading versions")?;
            let skipped_json: String = r.get(12).ctx(p, "reading versions")?;
            out.push(FeedVersion {
                version: r.get(0).ctx(p, "reading versions")?,
                at: parse_ts(&at).map_err(|e| self.corrupt(e))?,
                format: r.get(2).ctx(p, "reading versions")?,
                source_path: r.get(3).ctx(p, "reading versions")?,
                source_sha256: r.get(4).ctx(p, "reading versions")?,
                loaded: to_u64(r.get(5).ctx(p, "reading versions")?),
                added: to_u64(r.get(6).ctx(p, "reading versions")?),
                removed: to_u64(r.get(7).ctx(p, "reading versions")?),
                unchanged: to_u64(r.get(8).ctx(p, "reading versions")?),
                duplicates: to_u64(r.get(9).ctx(p, "reading versions")?),
                rejected: to_u64(r.get(10).ctx(p, "reading versions")?),
                skipped: to_u64(r.get(11).ctx(p, "reading versions")?),
                skipped_reasons: serde_json::from_str(&skipped_json).unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// What the re-imports of a feed added and removed, oldest first.
    pub fn feed_changes(&self, name: &str) -> Result<Vec<FeedChange>> {
        let id = self.feed_id(name)?;
        let p = &self.path;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT version, at, change, value, kind, type_name, valid_from, valid_until \
                 FROM feed_changes WHERE feed_id = ?1 \
                 AND version <= (SELECT version FROM feeds WHERE id = ?1) ORDER BY version, rowid",
            )
            .ctx(p, "reading changes")?;
        let mut q = stmt.query([id]).ctx(p, "reading changes")?;
        let mut out = Vec::new();
        while let Some(r) = q.next().ctx(p, "reading changes")? {
            let at: String = r.get(1).ctx(p, "reading changes")?;
            let change: String = r.get(2).ctx(p, "reading changes")?;
            out.push(FeedChange {
                version: r.get(0).ctx(p, "reading changes")?,
                at: parse_ts(&at).map_err(|e| self.corrupt(e))?,
                change: if change == "removed" {
                    ChangeKind::Removed
                } else {
                    ChangeKind::Added
                },
                value: r.get(3).ctx(p, "reading changes")?,
                kind: r.get(4).ctx(p, "reading changes")?,
                type_name: r.get(5).ctx(p, "reading changes")?,
                valid_from: parse_opt_ts(r.get(6).ctx(p, "reading changes")?)
                    .map_err(|e| self.corrupt(e))?,
                valid_until: parse_opt_ts(r.get(7).ctx(p, "reading changes")?)
                    .map_err(|e| self.corrupt(e))?,
            });
        }
        Ok(out)
    }

    /// The rejected entries kept for a version (default: the latest).
    pub fn feed_rejects(&self, name: &str, version: Option<i64>) -> Result<Vec<StoredReject>> {
        let id = self.feed_id(name)?;
        let p = &self.path;
        let version = match version {
            Some(v) => v,
            None => self
                .conn
                .query_row("SELECT version FROM feeds WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .ctx(p, "reading rejected entries")?,
        };
        let mut stmt = self
            .conn
            .prepare(
                "SELECT version, file, line, reason, raw FROM feed_rejects \
                 WHERE feed_id = ?1 AND version = ?2 ORDER BY rowid",
            )
            .ctx(p, "reading rejected entries")?;
        let rows = stmt
            .query_map(params![id, version], |r| {
                Ok(StoredReject {
                    version: r.get(0)?,
                    file: r.get(1)?,
                    line: to_u64(r.get(2)?),
                    reason: r.get(3)?,
                    raw: r.get(4)?,
                })
            })
            .ctx(p, "reading rejected entries")?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .ctx(p, "reading rejected entries")
    }

    /// The span of the validity windows of a feed's present indicators.
    pub fn window_summary(&self, name: &str) -> Result<WindowSummary> {
        let id = self.feed_id(name)?;
        let p = &self.path;
        type Raw = (i64, Option<String>, Option<String>, i64, i64);
        let (n, from, until, open_start, open_end): Raw = self
            .conn
            .query_row(
                "SELECT count(*), min(valid_from), max(valid_until), \
                 coalesce(sum(valid_from IS NULL), 0), coalesce(sum(valid_until IS NULL), 0) \
                 FROM indicators WHERE feed_id = ?1 AND present = 1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .ctx(p, "summarising validity windows")?;
        Ok(WindowSummary {
            indicators: to_u64(n),
            earliest_valid_from: parse_opt_ts(from).map_err(|e| self.corrupt(e))?,
            latest_valid_until: parse_opt_ts(until).map_err(|e| self.corrupt(e))?,
            open_start: to_u64(open_start),
            open_end: to_u64(open_end),
        })
    }

    /// How many of a feed's present indicators carry a validity window (a
    /// start or an end) and how many have expired at `now` (window ended
    /// before it), counted in SQL: the dashboard shows this for every feed
    /// and must not read the indicators.
    pub fn validity_counts(&self, name: &str, now: Timestamp) -> Result<ValidityCounts> {
        let id = self.feed_id(name)?;
        let (n, windowed, expired): (i64, i64, i64) = self
            .conn
            .query_row(
                "SELECT count(*), \
                 coalesce(sum(valid_from IS NOT NULL OR valid_until IS NOT NULL), 0), \
                 coalesce(sum(valid_until IS NOT NULL AND valid_until < ?2), 0) \
                 FROM indicators WHERE feed_id = ?1 AND present = 1",
                rusqlite::params![id, rows::ts_text(now)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .ctx(&self.path, "counting validity windows")?;
        Ok(ValidityCounts {
            indicators: to_u64(n),
            with_window: to_u64(windowed),
            expired: to_u64(expired),
        })
    }

    /// Actors, campaigns, roles and TLP of a feed's present indicators.
    pub fn tag_summary(&self, name: &str) -> Result<TagSummary> {
        let id = self.feed_id(name)?;
        let p = &self.path;
        let mut out = TagSummary::default();
        for (field, map) in [
            ("actors", &mut out.actors),
            ("campaigns", &mut out.campaigns),
            ("roles", &mut out.roles),
        ] {
            let mut stmt = self
                .conn
                .prepare(&format!(
                    "SELECT t.value, count(*) FROM indicators i, json_each(i.tags_json, '$.{field}') t \
                     WHERE i.feed_id = ?1 AND i.present = 1 AND i.tags_json IS NOT NULL \
                     GROUP BY t.value"
                ))
                .ctx(p, "summarising tags")?;
            let rows = stmt
                .query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .ctx(p, "summarising tags")?;
            for row in rows {
                let (k, n) = row.ctx(p, "summarising tags")?;
                map.insert(k, to_u64(n));
            }
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT json_extract(tags_json, '$.tlp') AS tlp, count(*) FROM indicators \
                 WHERE feed_id = ?1 AND present = 1 AND tlp IS NOT NULL GROUP BY tlp",
            )
            .ctx(p, "summarising tags")?;
        let rows = stmt
            .query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .ctx(p, "summarising tags")?;
        for row in rows {
            let (k, n) = row.ctx(p, "summarising tags")?;
            out.tlp.insert(k, to_u64(n));
        }
        Ok(out)
    }

    /// The present indicators of one feed, or of all feeds (by feed name,
    /// then in the order they were first stored). This is what `hunt`
    /// compiles its index from.
    pub fn indicators(&self, feed: Option<&str>) -> Result<Vec<StoredIndicator>> {
        let mut out = Vec::new();
        self.indicators_stream(feed, |i| {
            out.push(i);
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    /// Like [`Store::indicators`], one at a time, without holding them all.
    /// The callback stops the walk by returning `ControlFlow::Break`.
    pub fn indicators_stream(
        &self,
        feed: Option<&str>,
        mut f: impl FnMut(StoredIndicator) -> ControlFlow<()>,
    ) -> Result<()> {
        let p = &self.path;
        let feed_id = feed.map(|n| self.feed_id(n)).transpose()?;
        let sql = match feed_id {
            Some(_) => format!("{SELECT_INDICATOR} AND i.feed_id = ?1 ORDER BY i.id"),
            None => format!("{SELECT_INDICATOR} ORDER BY f.name, i.id"),
        };
        let mut stmt = self.conn.prepare(&sql).ctx(p, "reading indicators")?;
        let mut q = match feed_id {
            Some(id) => stmt.query([id]),
            None => stmt.query([]),
        }
        .ctx(p, "reading indicators")?;
        while let Some(r) = q.next().ctx(p, "reading indicators")? {
            let ind = self.decode_indicator(r)?;
            if f(ind).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn decode_indicator(&self, r: &rusqlite::Row<'_>) -> Result<StoredIndicator> {
        let p = &self.path;
        let a = "reading indicators";
        let id: i64 = r.get(0).ctx(p, a)?;
        let feed: String = r.get(1).ctx(p, a)?;
        let type_name: String = r.get(2).ctx(p, a)?;
        let value: String = r.get(3).ctx(p, a)?;
        let bad = |e: String| self.corrupt(format!("indicator {id} of feed `{feed}`: {e}"));
        let value = rows::decode_value(&type_name, &value).map_err(bad)?;
        let tags_json: Option<String> = r.get(10).ctx(p, a)?;
        let tags = match tags_json {
            Some(t) => {
                serde_json::from_str(&t).map_err(|e| bad(format!("unreadable tags ({e})")))?
            }
            None => Default::default(),
        };
        let confidence: Option<i64> = r.get(9).ctx(p, a)?;
        let line: i64 = r.get(13).ctx(p, a)?;
        let indicator = Indicator {
            value,
            valid_from: parse_opt_ts(r.get(4).ctx(p, a)?).map_err(bad)?,
            valid_until: parse_opt_ts(r.get(5).ctx(p, a)?).map_err(bad)?,
            first_seen: parse_opt_ts(r.get(6).ctx(p, a)?).map_err(bad)?,
            last_seen: parse_opt_ts(r.get(7).ctx(p, a)?).map_err(bad)?,
            published: parse_opt_ts(r.get(8).ctx(p, a)?).map_err(bad)?,
            confidence: confidence.map(|c| c.clamp(0, 100) as u8),
            tags,
            description: r.get(11).ctx(p, a)?,
            provenance: Provenance {
                feed: feed.clone(),
                file: r.get(12).ctx(p, a)?,
                line: to_u64(line),
                record_id: r.get(14).ctx(p, a)?,
            },
        };
        Ok(StoredIndicator {
            id,
            feed,
            indicator,
        })
    }
}
