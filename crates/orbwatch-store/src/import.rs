//! Feed import in bounded batches.
//!
//! A large feed (ten million addresses) takes tens of seconds to store.
//! Holding the store's write lock that long made every other writer (a
//! hunt recording its findings, a subscription update) fail with
//! "database is locked". So an import writes its rows in batches, each its
//! own short transaction (about [`DEFAULT_IMPORT_BATCH`] of work, then a
//! short pause so a waiting writer gets the lock), and makes the new
//! version visible in one short final transaction. Until then the rows it
//! wrote are invisible to every reader, and a failed import removes them,
//! so both promises of the single transaction still hold: a reader sees a
//! version whole or not at all, and a failed import leaves the store as it
//! was.
//!
//! How rows are kept invisible until the end:
//!
//! - **A new feed** (version 1) gets its `feeds` row up front with
//!   `version = 0`. Readers only know feeds with `version > 0` (listing,
//!   lookup by name, the index query joins on it), so its rows, written
//!   with `present = 1`, stay unseen. The final transaction sets
//!   `version = 1`: one row, however large the feed.
//! - **A new version** of a feed writes its new rows with `present = 2`
//!   ("staged"); readers ask for `present = 1` (current) or `present = 0`
//!   (removed) and never see them. Its `added` changes are written with the
//!   new version number, and readers of `feed_changes` only take versions
//!   up to the feed's committed one. The final transaction turns staged
//!   rows into present ones and applies everything that changes rows
//!   readers can see: metadata updates, revived rows, rows the new version
//!   drops, the rejected entries, the `feeds` and `feed_versions` rows. Its
//!   length is proportional to the *change* between the versions, not to
//!   the size of the feed.
//! - **On failure** (a reader error from the indicator source, a full
//!   disk, a busy store) the staged rows, changes and rejects are deleted in
//!   batches, and a new feed's `feeds` row with them. If even that fails
//!   (the process is killed), what is left is invisible and is deleted at
//!   the start of the next import of that feed.
//!
//! Two imports of the *same* feed at the same time are not supported: the
//! second clears the first's staged rows as leftovers, and the first then
//! fails its final check (its rows are missing) and says so, leaving the
//! store unchanged. Imports of different feeds run side by side.

use std::borrow::{Borrow, Cow};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use orbwatch_intel::{FeedFormat, Indicator, ParsedFeed, Rejected, Skipped};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::error::SqlContext;
use crate::repeat_set::RepeatSet;
use crate::rows::{Row, RowParts, RowProvenance, identity_key, ts_text};
use crate::{
    Existing, FastMap, INSERT_BARE_INDICATOR, INSERT_CHANGE, INSERT_INDICATOR, ImportOptions,
    ImportReport, MARK_REMOVED, REJECTS_KEPT, REVIVE, Result, Store, StoreError, UPDATE_META,
    empty_counts, kind_of_type, validate_name,
};

/// How long one batch of an import may hold the write lock by default:
/// under the second the store promises a waiting writer (who gets the
/// lock in the pause after the batch, within about 0.9 s), and long enough
/// that the pauses between batches (`BATCH_PAUSE`) cost about a tenth
/// of the import's time. With 500 ms they cost 18 %: 1.8 s of a
/// ten-million-row import.
pub const DEFAULT_IMPORT_BATCH: Duration = Duration::from_millis(800);

/// The pause after each batch (and each batch of a removal). SQLite's
/// busy handler polls a waiting writer's lock in growing steps, up to
/// 100 ms each once it has waited a third of a second, so a pause must be
/// longer than 100 ms for every waiting writer to wake inside it. With
/// 30 ms, a writer could sleep through pause after pause: on a loaded CI
/// machine one waited 3 s (its whole busy timeout) during a 1M-row
/// import, while it usually waited 100 ms.
const BATCH_PAUSE: Duration = Duration::from_millis(110);

/// SQLite's default `wal_autocheckpoint` (pages), set back after the
/// batches of an import.
const WAL_AUTOCHECKPOINT: i64 = 1000;

/// Rows deleted per transaction when clearing a failed import.
const DELETE_BATCH: i64 = 50_000;

/// Bare rows of a first version written by one statement (see
/// [`BareRows`]).
const BARE_ROWS_PER_INSERT: usize = 64;

/// `present` of a row written by an import that has not finished.
const STAGED: i64 = 2;

/// What a streamed import learns only at the end of its source, asked
/// for by [`Store::import_indicators`] once the source is exhausted.
pub struct ImportEnd<'r> {
    /// The rejected entries (the first [`REJECTS_KEPT`] are stored; all
    /// are counted).
    pub rejected: Cow<'r, [Rejected]>,
    pub skipped: Cow<'r, [Skipped]>,
    /// SHA-256 of the source, when it was hashed while read; replaces
    /// [`ImportOptions::source_sha256`].
    pub source_sha256: Option<String>,
}

/// A metadata update of a row readers can see, applied at the end.
struct MetaUpdate {
    id: i64,
    first_seen: Option<String>,
    last_seen: Option<String>,
    published: Option<String>,
    confidence: Option<i64>,
    tags_json: Option<String>,
    description: Option<String>,
    file_id: i64,
    line: i64,
    record_id: Option<String>,
    meta_hash: i64,
}

/// What the batches did, for the final transaction.
#[derive(Default)]
struct Staged {
    /// Rows written (invisible until the end).
    inserted: u64,
    revive: Vec<i64>,
    meta: Vec<MetaUpdate>,
    added: u64,
    unchanged: u64,
    duplicates: u64,
    changed_confidence: u64,
    counts: BTreeMap<String, u64>,
    /// `type\u{1f}value` of the indicators this version added, counted.
    added_values: FastMap<String, u64>,
    /// Identity keys of the previous version's rows this one does not list.
    old: FastMap<String, Existing>,
    loaded: u64,
}

/// How many times an import's `BEGIN IMMEDIATE` waits the whole busy
/// timeout before it gives up: 6 × 10 s. An import is a long series of
/// short transactions, and other writers (eight hunts keeping their
/// findings at once, in the test `eight_concurrent_writers_all_land`) can
/// take the lock before it again and again, since SQLite's busy handler
/// is not a queue. Nothing is written before `BEGIN` succeeds, so waiting
/// again loses nothing; failing would throw away the batches already
/// staged.
const BEGIN_ATTEMPTS: u32 = 6;

/// The feed's committed version as the store has it now (`None`: the
/// feed is gone). An import compares it with the version it started from
/// before each batch and before it publishes: another import of the feed
/// may have gone through meanwhile.
fn committed_version(conn: &Connection, feed_id: i64) -> rusqlite::Result<Option<i64>> {
    conn.query_row("SELECT version FROM feeds WHERE id = ?1", [feed_id], |r| {
        r.get(0)
    })
    .optional()
}

/// Start a write transaction, waiting for the lock up to
/// [`BEGIN_ATTEMPTS`] busy timeouts.
fn begin<'c>(conn: &'c mut Connection, p: &std::path::Path, what: &str) -> Result<Transaction<'c>> {
    // `&mut` proves no other transaction is open on this connection,
    // which is what `new_unchecked` leaves to the caller; a shared
    // reborrow lets the loop try again after a failed attempt.
    let conn: &'c Connection = conn;
    let mut attempt = 1;
    loop {
        match Transaction::new_unchecked(conn, TransactionBehavior::Immediate).ctx(p, what) {
            Err(e) if e.is_busy() && attempt < BEGIN_ATTEMPTS => {
                if attempt == 1 {
                    tracing::warn!(
                        "store {}: {what}: other programs are writing to the store; still waiting for its lock",
                        p.display()
                    );
                }
                attempt += 1;
            }
            other => return other,
        }
    }
}

impl Store {
    /// How long one batch of a feed import may hold the write lock (see
    /// the [`import`](crate::import) module); [`DEFAULT_IMPORT_BATCH`] unless
    /// set.
    pub fn set_import_batch(&mut self, batch: Duration) {
        self.import_batch = batch;
    }

    /// Store `feed` under `name`: a new feed (version 1) or a new version of
    /// an existing one. Written in batches, made visible at once; on error
    /// the store is left as it was (see the [`import`](crate::import)
    /// module).
    pub fn import_feed(
        &mut self,
        name: &str,
        format: FeedFormat,
        source_path: &str,
        feed: &ParsedFeed,
        opts: &ImportOptions,
    ) -> Result<ImportReport> {
        self.import_indicators(
            name,
            format,
            source_path,
            feed.indicators
                .iter()
                .map(Ok::<&Indicator, std::convert::Infallible>),
            || ImportEnd {
                rejected: Cow::Borrowed(&feed.rejected[..]),
                skipped: Cow::Borrowed(&feed.skipped[..]),
                source_sha256: None,
            },
            opts,
        )
    }

    /// [`Store::import_feed`] from a source of indicators that may fail
    /// part way: a feed read as it is stored, so that its indicators never
    /// sit in memory all at once. An `Err` from the source stops the
    /// import, which then leaves no trace, and is returned as
    /// [`StoreError::ImportSource`]. `end` gives what is only known once
    /// the source is exhausted (see [`ImportEnd`]).
    pub fn import_indicators<'r, I, B, E, F>(
        &mut self,
        name: &str,
        format: FeedFormat,
        source_path: &str,
        indicators: I,
        end: F,
        opts: &ImportOptions,
    ) -> Result<ImportReport>
    where
        I: IntoIterator<Item = std::result::Result<B, E>> + Send,
        B: Borrow<Indicator> + Send,
        E: std::fmt::Display,
        F: FnOnce() -> ImportEnd<'r>,
    {
        validate_name(name)?;
        let at = opts.at.unwrap_or_else(Timestamp::now);
        let at_s = ts_text(at);
        let (feed_id, committed, created) = self.begin_import(name, format, source_path, &at_s)?;
        let version = committed + 1;
        let result = self
            .stage(name, feed_id, version, &at_s, indicators)
            .and_then(|staged| {
                let end = end();
                if opts.refuse_empty_version && staged.loaded == 0 {
                    // Nothing was read, so nothing of the previous version
                    // was matched: `old` holds all its rows.
                    let had = staged.old.values().filter(|e| e.present).count() as u64;
                    if had > 0 {
                        return Err(StoreError::EmptyVersionRefused {
                            name: name.to_string(),
                            had,
                            rejected: end.rejected.len() as u64,
                        });
                    }
                }
                let mut opts = opts.clone();
                if end.source_sha256.is_some() {
                    opts.source_sha256 = end.source_sha256;
                }
                self.publish(
                    name,
                    feed_id,
                    committed,
                    format,
                    source_path,
                    &at_s,
                    staged,
                    &end.rejected,
                    &end.skipped,
                    &opts,
                )
            });
        if result.is_err()
            && let Err(e) = self.discard_staged(feed_id, committed, created).map(drop)
        {
            tracing::warn!(
                "the failed import of feed `{name}` could not be cleared ({e}); what it wrote is \
                 invisible and is cleared by the next import of the feed"
            );
        }
        result
    }

    /// Find or create the feed, clearing what an interrupted import left.
    /// Returns the feed's id, its committed version (0 for a new feed) and
    /// whether its `feeds` row is new (to be removed again on failure).
    fn begin_import(
        &mut self,
        name: &str,
        format: FeedFormat,
        source_path: &str,
        at_s: &str,
    ) -> Result<(i64, i64, bool)> {
        let path = self.path.clone();
        let p = path.as_path();
        let existing: Option<(i64, i64)> = self
            .conn
            .query_row(
                "SELECT id, version FROM feeds WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .ctx(p, "looking up the feed")?;
        if let Some((id, version)) = existing {
            // A `feeds` row still at version 0 is a new feed whose import
            // never finished: it is this import's to remove on failure.
            self.discard_staged(id, version, version == 0)?;
            if version == 0 {
                // The row was removed with the leftovers: create it anew.
                return self.begin_import(name, format, source_path, at_s);
            }
            return Ok((id, version, false));
        }
        let tx = begin(&mut self.conn, p, "starting the import")?;
        tx.execute(
            "INSERT INTO feeds (name, format, source_path, added_at, updated_at, version, \
             counts_json, rejected, skipped, options_json) \
             VALUES (?1, ?2, ?3, ?4, ?4, 0, '{}', 0, 0, '{}')",
            params![name, format.as_str(), source_path, at_s],
        )
        .ctx(p, "creating the feed")?;
        let id = tx.last_insert_rowid();
        tx.commit().ctx(p, "creating the feed")?;
        Ok((id, 0, true))
    }

    /// Delete what an unfinished import of the feed wrote: its rows (all of
    /// them for a feed never committed), changes and rejects of versions
    /// after `committed`; and the `feeds` row when `drop_feed`. In batches
    /// of [`DELETE_BATCH`] rows, each its own transaction followed by the
    /// import's pause, as the rows may be many and other writers wait.
    /// Also how `feed remove` deletes a feed it has hidden (version 0).
    /// Returns the indicator rows deleted.
    pub(crate) fn discard_staged(
        &mut self,
        feed_id: i64,
        committed: i64,
        drop_feed: bool,
    ) -> Result<u64> {
        let path = self.path.clone();
        let p = path.as_path();
        let a = "deleting the rows of an unfinished import or a removed feed";
        // Each statement asks the feed's version as it runs: a version
        // another import of the feed committed since the caller looked
        // (or between two of these transactions) is that import's, with
        // its rows, changes and rejects; only what lies beyond it is
        // unfinished. A feed at version 0 (never committed, or hidden by
        // `feed remove`) has no rows of its own: all of them go.
        const NOW: &str = "coalesce((SELECT version FROM feeds WHERE id = ?1), 0)";
        let rows = format!(
            "SELECT id FROM indicators WHERE feed_id = ?1 AND (present = 2 OR {NOW} = 0) LIMIT ?2"
        );
        let mut deleted = 0u64;
        let batches = [
            format!("DELETE FROM indicators WHERE id IN ({rows})"),
            format!(
                "DELETE FROM feed_changes WHERE rowid IN (SELECT rowid FROM feed_changes \
                 WHERE feed_id = ?1 AND version > max(?3, {NOW}) LIMIT ?2)"
            ),
            format!(
                "DELETE FROM feed_rejects WHERE rowid IN (SELECT rowid FROM feed_rejects \
                 WHERE feed_id = ?1 AND version > max(?3, {NOW}) LIMIT ?2)"
            ),
        ];
        for (i, sql) in batches.iter().enumerate() {
            loop {
                let tx = begin(&mut self.conn, p, a)?;
                let n = if i == 0 {
                    tx.execute(sql, params![feed_id, DELETE_BATCH])
                } else {
                    tx.execute(sql, params![feed_id, DELETE_BATCH, committed])
                }
                .ctx(p, a)?;
                tx.commit().ctx(p, a)?;
                if i == 0 {
                    deleted += n as u64;
                }
                if n == 0 {
                    break;
                }
                std::thread::sleep(BATCH_PAUSE);
            }
        }
        let tx = begin(&mut self.conn, p, a)?;
        tx.execute(
            &format!("DELETE FROM feed_versions WHERE feed_id = ?1 AND version > max(?2, {NOW})"),
            params![feed_id, committed],
        )
        .ctx(p, a)?;
        if drop_feed {
            tx.execute("DELETE FROM feeds WHERE id = ?1 AND version = 0", [feed_id])
                .ctx(p, a)?;
        }
        tx.commit().ctx(p, a)?;
        Ok(deleted)
    }

    /// Write the new rows in batches, invisible to readers; remember what
    /// must change in visible rows for [`Store::publish`].
    fn stage<I, B, E>(
        &mut self,
        name: &str,
        feed_id: i64,
        version: i64,
        at_s: &str,
        indicators: I,
    ) -> Result<Staged>
    where
        I: IntoIterator<Item = std::result::Result<B, E>> + Send,
        B: Borrow<Indicator> + Send,
        E: std::fmt::Display,
    {
        let path = self.path.clone();
        let p = path.as_path();
        let mut st = Staged {
            counts: empty_counts(),
            ..Default::default()
        };
        // The rows this feed already has, present or removed: read without
        // the write lock.
        if version > 1 {
            let a = "reading the previous version";
            let tx = self.conn.transaction().ctx(p, a)?;
            {
                let mut stmt = tx
                    .prepare(
                        "SELECT i.id, t.name, i.value, i.valid_from, i.valid_until, i.present, \
                         i.meta_hash, i.confidence FROM indicators i \
                         JOIN indicator_types t ON t.id = i.type_id \
                         WHERE i.feed_id = ?1 AND i.present < 2",
                    )
                    .ctx(p, a)?;
                let mut q = stmt.query([feed_id]).ctx(p, a)?;
                while let Some(r) = q.next().ctx(p, a)? {
                    let type_name: String = r.get(1).ctx(p, a)?;
                    let value: String = r.get(2).ctx(p, a)?;
                    let from: Option<String> = r.get(3).ctx(p, a)?;
                    let until: Option<String> = r.get(4).ctx(p, a)?;
                    let key = identity_key(&type_name, &value, from.as_deref(), until.as_deref());
                    st.old.insert(
                        key,
                        Existing {
                            id: r.get(0).ctx(p, a)?,
                            present: r.get::<_, i64>(5).ctx(p, a)? != 0,
                            meta_hash: r.get(6).ctx(p, a)?,
                            confidence: r.get(7).ctx(p, a)?,
                        },
                    );
                }
            }
            tx.commit().ctx(p, a)?;
        }
        // A new feed's rows are hidden by its feeds row; a new version's
        // are staged.
        let present = if version == 1 { 1 } else { STAGED };
        // Identity keys of this version, to store repeats once (first wins),
        // kept as 128-bit hashes under two random keys: 16 bytes a row
        // instead of the key text, which for ten million rows is the
        // difference between a few hundred MB and over a GB. A collision
        // (which would drop a row as a repeat) is beyond reach at 2^-128
        // per pair, and the keys are random per run, so a feed cannot be
        // crafted to cause one.
        //
        // Building the rows' columns and this set is done on a thread of
        // its own ([`prepare_rows`]), beside the one that writes to SQLite:
        // on a 10M-address list the two were a quarter of the writing
        // thread's time, and that thread is what an import waits for.
        std::thread::scope(|scope| {
            let (rows_tx, rows_rx) = std::sync::mpsc::sync_channel(PREPARED_QUEUE);
            let prepared = scope.spawn(move || prepare_rows(indicators, rows_tx));
            let written =
                self.write_batches(name, feed_id, version, at_s, present, &mut st, rows_rx);
            // The preparing thread ends once its queue is closed, whether
            // the writing finished or failed.
            // A panic there (in the source, say) goes on to the caller as
            // it did when the source was read on the caller's thread: the
            // import is cut short like a killed process, never published
            // shorter.
            let (loaded, duplicates) = match prepared.join() {
                Ok(counts) => counts,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            written?;
            st.loaded = loaded;
            st.duplicates = duplicates;
            Ok(st)
        })
    }

    /// A passive checkpoint (see [`Store::write_batches`]); a failure is
    /// only logged, as SQLite's automatic checkpoint would not report it
    /// either: the pages stay in the WAL and the next checkpoint copies
    /// them.
    fn checkpoint_passive(&mut self) {
        if let Err(e) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        {
            tracing::debug!(store = %self.path.display(), "checkpoint during an import: {e}");
        }
    }

    /// The writing half of [`Store::stage`]: the prepared rows in batches
    /// of about [`Store::set_import_batch`], each its own transaction,
    /// with a pause of [`BATCH_PAUSE`] after each, in which the batch is
    /// checkpointed. SQLite's automatic checkpoint is off meanwhile and set
    /// back to its default after ([`AutocheckpointOff`]).
    #[allow(clippy::too_many_arguments)]
    fn write_batches(
        &mut self,
        name: &str,
        feed_id: i64,
        version: i64,
        at_s: &str,
        present: i64,
        st: &mut Staged,
        rows: std::sync::mpsc::Receiver<Vec<PreparedRow>>,
    ) -> Result<()> {
        let mut store = AutocheckpointOff::new(self)?;
        let path = store.path.clone();
        let p = path.as_path();
        let mut lookups = Lookups::default();
        let mut items = PreparedRows::new(rows);
        let budget = store.import_batch;
        let mut done = false;
        let (stage_started, mut batches, mut paused) = (Instant::now(), 0u64, Duration::ZERO);
        while !done {
            // Rows first, then the lock: a source that is slow (a feed read
            // from a slow disk, a reader stopped) waits here, without
            // keeping other writers out.
            if !items.wait_for_rows() {
                break;
            }
            let tx = begin(&mut store.conn, p, "storing indicators")?;
            // Another import of the feed published a version since this one
            // began: stop before writing anything more. Its changes carry
            // the same version number as this import's would, and readers
            // see the changes of every committed version, so a batch
            // written now would add to its history.
            let now_version = committed_version(&tx, feed_id).ctx(p, "storing indicators")?;
            if now_version != Some(version - 1) {
                return Err(StoreError::ConcurrentImport {
                    name: name.to_string(),
                });
            }
            let started = Instant::now();
            {
                let mut insert = tx
                    .prepare_cached(INSERT_INDICATOR)
                    .ctx(p, "storing indicators")?;
                let mut insert_bare = tx
                    .prepare_cached(INSERT_BARE_INDICATOR)
                    .ctx(p, "storing indicators")?;
                let mut insert_many = tx
                    .prepare_cached(&BareRows::sql())
                    .ctx(p, "storing indicators")?;
                let mut bare = BareRows::default();
                let mut change = tx
                    .prepare_cached(INSERT_CHANGE)
                    .ctx(p, "recording changes")?;
                let mut n = 0u32;
                loop {
                    n = n.wrapping_add(1);
                    if n.is_multiple_of(256) && started.elapsed() >= budget {
                        bare.flush(&mut insert_bare, feed_id, p)?;
                        break;
                    }
                    let item = match items.next_before(started + budget) {
                        NextRow::Row(item) => item,
                        // None came within the batch's time: the batch
                        // ends, and the next waits for rows outside it.
                        NextRow::NotYet => {
                            bare.flush(&mut insert_bare, feed_id, p)?;
                            break;
                        }
                        NextRow::End => {
                            bare.flush(&mut insert_bare, feed_id, p)?;
                            done = true;
                            break;
                        }
                    };
                    let (parts, prov) = item.map_err(|reason| StoreError::ImportSource {
                        name: name.to_string(),
                        reason,
                    })?;
                    let row = Row::from_parts(parts, &prov);
                    let file_id = lookups.file_id(&tx, p, row.file)?;
                    // The key text only for the diff against a previous
                    // version: a first version needs just its hash.
                    let prior = if st.old.is_empty() {
                        None
                    } else {
                        st.old.remove(&row.key())
                    };
                    match st.counts.get_mut(row.kind) {
                        Some(n) => *n += 1,
                        None => {
                            st.counts.insert(row.kind.to_string(), 1);
                        }
                    }
                    match prior {
                        None if version == 1 && row.is_bare() => {
                            let type_id = lookups.type_id(&tx, p, &row.type_name, row.kind)?;
                            bare.rows
                                .push((type_id, row.value, file_id, row.line, row.meta_hash));
                            if bare.rows.len() == BARE_ROWS_PER_INSERT {
                                bare.write_full(&mut insert_many, feed_id, p)?;
                            }
                            st.inserted += 1;
                            st.added += 1;
                            // A first version records no changes.
                            continue;
                        }
                        None if row.is_bare() => {
                            let type_id = lookups.type_id(&tx, p, &row.type_name, row.kind)?;
                            insert_bare
                                .execute(params![
                                    feed_id,
                                    type_id,
                                    row.value,
                                    file_id,
                                    row.line,
                                    row.meta_hash,
                                    version,
                                    present,
                                ])
                                .ctx(p, "storing indicators")?;
                            st.inserted += 1;
                            st.added += 1;
                        }
                        None => {
                            // Rows keep the order of the feed.
                            bare.flush(&mut insert_bare, feed_id, p)?;
                            let type_id = lookups.type_id(&tx, p, &row.type_name, row.kind)?;
                            insert
                                .execute(params![
                                    feed_id,
                                    type_id,
                                    row.value,
                                    row.valid_from,
                                    row.valid_until,
                                    row.first_seen,
                                    row.last_seen,
                                    row.published,
                                    row.confidence,
                                    row.tags_json,
                                    row.description,
                                    file_id,
                                    row.line,
                                    row.record_id,
                                    row.meta_hash,
                                    version,
                                    present,
                                ])
                                .ctx(p, "storing indicators")?;
                            st.inserted += 1;
                            st.added += 1;
                        }
                        Some(e) => {
                            if e.present && e.confidence != row.confidence {
                                st.changed_confidence += 1;
                            }
                            if e.meta_hash != row.meta_hash {
                                st.meta.push(MetaUpdate {
                                    id: e.id,
                                    first_seen: row.first_seen.clone(),
                                    last_seen: row.last_seen.clone(),
                                    published: row.published.clone(),
                                    confidence: row.confidence,
                                    tags_json: row.tags_json.clone(),
                                    description: row.description.map(str::to_string),
                                    file_id,
                                    line: row.line,
                                    record_id: row.record_id.map(str::to_string),
                                    meta_hash: row.meta_hash,
                                });
                            }
                            if e.present {
                                st.unchanged += 1;
                                continue;
                            }
                            st.revive.push(e.id);
                            st.added += 1;
                        }
                    }
                    if version > 1 {
                        *st.added_values
                            .entry(format!("{}\u{1f}{}", row.type_name, row.value))
                            .or_default() += 1;
                        change
                            .execute(params![
                                feed_id,
                                version,
                                at_s,
                                "added",
                                row.value,
                                row.kind,
                                row.type_name,
                                row.valid_from,
                                row.valid_until,
                            ])
                            .ctx(p, "recording changes")?;
                    }
                }
            }
            tx.commit().ctx(p, "storing indicators")?;
            batches += 1;
            if !done {
                // The batch's pages are copied from the WAL into the
                // database during the pause, which a checkpoint does
                // without the write lock (a waiting writer gets it as
                // before): SQLite's automatic checkpoint, off during the
                // batches, did the same copy right after each commit,
                // before the pause. The pause lasts at least BATCH_PAUSE.
                let pause = Instant::now();
                store.checkpoint_passive();
                std::thread::sleep(BATCH_PAUSE.saturating_sub(pause.elapsed()));
                paused += pause.elapsed();
            }
        }
        tracing::debug!(
            feed = name,
            rows = st.inserted,
            batches,
            paused_ms = paused.as_millis() as u64,
            waited_for_rows_ms = items.waited.as_millis() as u64,
            took_ms = stage_started.elapsed().as_millis() as u64,
            "indicators stored"
        );
        store.restore()
    }

    /// The final transaction: check that the staged rows are all there,
    /// apply the changes to visible rows and make the version current.
    #[allow(clippy::too_many_arguments)]
    fn publish(
        &mut self,
        name: &str,
        feed_id: i64,
        committed: i64,
        format: FeedFormat,
        source_path: &str,
        at_s: &str,
        st: Staged,
        rejected: &[Rejected],
        skipped: &[Skipped],
        opts: &ImportOptions,
    ) -> Result<ImportReport> {
        let path = self.path.clone();
        let p = path.as_path();
        let version = committed + 1;
        let mut skipped_reasons: BTreeMap<String, u64> = BTreeMap::new();
        for sk in skipped {
            *skipped_reasons.entry(sk.reason.clone()).or_default() += 1;
        }
        let options_json = opts.options.to_string();
        let tx = begin(&mut self.conn, p, "committing the import")?;
        let (now_version, rows): (Option<i64>, i64) = (
            committed_version(&tx, feed_id).ctx(p, "committing the import")?,
            // Counted in `indicators_by_feed` alone: every row it counts
            // has `added_version = version` (a new feed's rows are all
            // this version's, and the leftovers of an earlier staged
            // version were cleared when the import began), and asking for
            // that too read every row of the table (1.4 s under the lock
            // for ten million rows, against 0.3 s).
            tx.query_row(
                "SELECT count(*) FROM indicators WHERE feed_id = ?1 AND present = ?2",
                params![feed_id, if version == 1 { 1 } else { STAGED }],
                |r| r.get(0),
            )
            .ctx(p, "committing the import")?,
        );
        if now_version != Some(committed) || rows != st.inserted as i64 {
            return Err(StoreError::ConcurrentImport {
                name: name.to_string(),
            });
        }
        if version > 1 {
            tx.execute(
                "UPDATE indicators SET present = 1 WHERE feed_id = ?1 AND present = 2",
                [feed_id],
            )
            .ctx(p, "publishing indicators")?;
        }
        let mut removed = 0u64;
        let mut changed_validity = 0u64;
        {
            let mut update_meta = tx
                .prepare_cached(UPDATE_META)
                .ctx(p, "updating indicators")?;
            for m in &st.meta {
                update_meta
                    .execute(params![
                        m.id,
                        m.first_seen,
                        m.last_seen,
                        m.published,
                        m.confidence,
                        m.tags_json,
                        m.description,
                        m.file_id,
                        m.line,
                        m.record_id,
                        m.meta_hash,
                    ])
                    .ctx(p, "updating indicators")?;
            }
            let mut revive = tx.prepare_cached(REVIVE).ctx(p, "updating indicators")?;
            for id in &st.revive {
                revive
                    .execute(params![id, version])
                    .ctx(p, "updating indicators")?;
            }
            // What the previous version had and this one does not.
            let mut gone: Vec<(String, i64)> = st
                .old
                .into_iter()
                .filter(|(_, e)| e.present)
                .map(|(k, e)| (k, e.id))
                .collect();
            gone.sort_unstable();
            let mut added_values = st.added_values;
            let mut mark = tx
                .prepare_cached(MARK_REMOVED)
                .ctx(p, "marking removed indicators")?;
            let mut change = tx
                .prepare_cached(INSERT_CHANGE)
                .ctx(p, "recording changes")?;
            for (key, id) in gone {
                mark.execute(params![id, version, at_s])
                    .ctx(p, "marking removed indicators")?;
                let mut parts = key.split('\u{1f}');
                let type_name = parts.next().unwrap_or_default();
                let value = parts.next().unwrap_or_default();
                let from = parts.next().filter(|s| !s.is_empty());
                let until = parts.next().filter(|s| !s.is_empty());
                if let Some(n) = added_values.get_mut(&format!("{type_name}\u{1f}{value}"))
                    && *n > 0
                {
                    *n -= 1;
                    changed_validity += 1;
                }
                change
                    .execute(params![
                        feed_id,
                        version,
                        at_s,
                        "removed",
                        value,
                        kind_of_type(type_name),
                        type_name,
                        from,
                        until,
                    ])
                    .ctx(p, "recording changes")?;
                removed += 1;
            }
            let mut rej = tx
                .prepare_cached(
                    "INSERT INTO feed_rejects (feed_id, version, file, line, reason, raw) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .ctx(p, "recording rejected entries")?;
            for r in rejected.iter().take(REJECTS_KEPT) {
                rej.execute(params![
                    feed_id,
                    version,
                    r.file,
                    i64::try_from(r.line).unwrap_or(i64::MAX),
                    r.reason,
                    r.raw
                ])
                .ctx(p, "recording rejected entries")?;
            }
        }

        let counts_json = serde_json::to_string(&st.counts).unwrap_or_else(|_| "{}".into());
        let skipped_json = serde_json::to_string(&skipped_reasons).unwrap_or_else(|_| "{}".into());
        let n_rejected = rejected.len() as u64;
        let n_skipped = skipped.len() as u64;
        tx.execute(
            "UPDATE feeds SET format = ?2, source_path = ?3, source_sha256 = ?4, updated_at = ?5, \
             version = ?6, counts_json = ?7, rejected = ?8, skipped = ?9, options_json = ?10 \
             WHERE id = ?1",
            params![
                feed_id,
                format.as_str(),
                source_path,
                opts.source_sha256,
                at_s,
                version,
                counts_json,
                n_rejected as i64,
                n_skipped as i64,
                options_json,
            ],
        )
        .ctx(p, "updating the feed")?;
        tx.execute(
            "INSERT INTO feed_versions (feed_id, version, at, format, source_path, source_sha256, \
             loaded, added, removed, unchanged, duplicates, rejected, skipped, skipped_json, \
             options_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            params![
                feed_id,
                version,
                at_s,
                format.as_str(),
                source_path,
                opts.source_sha256,
                st.loaded as i64,
                st.added as i64,
                removed as i64,
                st.unchanged as i64,
                st.duplicates as i64,
                n_rejected as i64,
                n_skipped as i64,
                skipped_json,
                options_json,
            ],
        )
        .ctx(p, "recording the version")?;
        tx.commit().ctx(p, "committing the import")?;

        Ok(ImportReport {
            feed: name.to_string(),
            version,
            loaded: st.loaded,
            added: st.added,
            removed,
            unchanged: st.unchanged,
            changed_validity,
            changed_confidence: st.changed_confidence,
            duplicates: st.duplicates,
            rejected: n_rejected,
            skipped: n_skipped,
            counts: st.counts,
        })
    }
}

/// Rows an import's preparing thread may have ready ahead of the writing
/// one, in chunks of [`PREPARED_CHUNK`]: about 130,000 rows, some 15 MB.
/// The reading and preparing threads share two cores with the writer, and
/// the writer's pauses between batches are when they can run ahead: with
/// 8,192 rows of room they soon stopped, and the writer then waited for
/// rows for 1.8 s of a ten-million-row import (`waited_for_rows_ms`).
const PREPARED_QUEUE: usize = 128;
const PREPARED_CHUNK: usize = 1024;

/// A row's owned columns, or why the source stopped.
type PreparedRow = std::result::Result<(RowParts, RowProvenance), String>;

/// The rows the preparing thread sends, one at a time, with the time the
/// writer spent waiting for them: what tells a writer held up by SQLite
/// from one held up by the reading and preparing threads (`-vv`).
struct PreparedRows {
    chunks: std::sync::mpsc::Receiver<Vec<PreparedRow>>,
    chunk: std::iter::Peekable<std::vec::IntoIter<PreparedRow>>,
    waited: Duration,
}

/// What [`PreparedRows::next_before`] found.
enum NextRow {
    Row(PreparedRow),
    /// None came in time; more may come.
    NotYet,
    /// The preparing thread is done.
    End,
}

impl PreparedRows {
    fn new(chunks: std::sync::mpsc::Receiver<Vec<PreparedRow>>) -> Self {
        PreparedRows {
            chunks,
            chunk: Vec::new().into_iter().peekable(),
            waited: Duration::ZERO,
        }
    }

    /// Wait as long as it takes for a row; false when none will come.
    fn wait_for_rows(&mut self) -> bool {
        while self.chunk.peek().is_none() {
            let asked = Instant::now();
            let chunk = self.chunks.recv();
            self.waited += asked.elapsed();
            match chunk {
                Ok(chunk) => self.chunk = chunk.into_iter().peekable(),
                Err(_) => return false,
            }
        }
        true
    }

    /// The next row, waiting for it until `deadline` at most.
    fn next_before(&mut self, deadline: Instant) -> NextRow {
        loop {
            if let Some(row) = self.chunk.next() {
                return NextRow::Row(row);
            }
            let asked = Instant::now();
            let chunk = self
                .chunks
                .recv_timeout(deadline.saturating_duration_since(asked));
            self.waited += asked.elapsed();
            match chunk {
                Ok(chunk) => self.chunk = chunk.into_iter().peekable(),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => return NextRow::NotYet,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return NextRow::End,
            }
        }
    }
}

/// How many rows ahead of its insert into the repeat set a row's slot is
/// prefetched ([`RepeatSet::prefetch`]): enough for the memory to answer
/// while the rows between are inserted.
const REPEATS_PREFETCH_AHEAD: usize = 16;

/// The preparing half of [`Store::stage`]: the columns of each indicator's
/// row, repeats (same identity key) dropped, sent on in order. Stops at
/// the source's first error (sent on as the last item) or when the writer
/// hangs up. Returns the distinct rows seen and the repeats dropped.
///
/// Rows are gathered a chunk at a time with their identity hashes, and a
/// chunk's repeats are found in one pass that prefetches the set's slots
/// ahead of the inserts; the first of two equal rows (in feed order) is
/// the one kept, as the pass goes in order.
fn prepare_rows<I, B, E>(
    indicators: I,
    out: std::sync::mpsc::SyncSender<Vec<PreparedRow>>,
) -> (u64, u64)
where
    I: IntoIterator<Item = std::result::Result<B, E>>,
    B: Borrow<Indicator>,
    E: std::fmt::Display,
{
    let (h1, h2) = (ahash::RandomState::new(), ahash::RandomState::new());
    let mut seen = RepeatSet::default();
    let mut duplicates = 0u64;
    let mut last_file = None;
    let mut chunk: Vec<PreparedRow> = Vec::with_capacity(PREPARED_CHUNK);
    // The identity hashes of the chunk's rows, in order (an error, if
    // any, is the chunk's last item and has none).
    let mut hashes: Vec<u128> = Vec::with_capacity(PREPARED_CHUNK);
    let mut items = indicators.into_iter();
    loop {
        let mut stopped = false;
        while chunk.len() < PREPARED_CHUNK {
            match items.next() {
                Some(Ok(b)) => {
                    let ind = b.borrow();
                    let row = Row::from_indicator(ind);
                    hashes.push(
                        (u128::from(row.key_hash(&h1)) << 64) | u128::from(row.key_hash(&h2)),
                    );
                    let prov = RowProvenance::of(ind, &mut last_file);
                    chunk.push(Ok((row.into_parts(), prov)));
                }
                Some(Err(e)) => {
                    chunk.push(Err(e.to_string()));
                    stopped = true;
                    break;
                }
                None => {
                    stopped = true;
                    break;
                }
            }
        }
        duplicates += drop_repeats(&mut seen, &mut chunk, &hashes);
        hashes.clear();
        let full = std::mem::replace(&mut chunk, Vec::with_capacity(PREPARED_CHUNK));
        if out.send(full).is_err() || stopped {
            // A closed queue: the writer stopped, and it reports why.
            return (seen.len() as u64, duplicates);
        }
    }
}

/// Remove from `chunk` the rows whose hash (`hashes`, one per row but a
/// trailing error) is in `seen` or earlier in the chunk, and add the
/// others' to `seen`. Returns how many were removed.
fn drop_repeats(seen: &mut RepeatSet, chunk: &mut Vec<PreparedRow>, hashes: &[u128]) -> u64 {
    for h in hashes.iter().take(REPEATS_PREFETCH_AHEAD) {
        seen.prefetch(*h);
    }
    let mut keep = Vec::new();
    for (i, h) in hashes.iter().enumerate() {
        if let Some(ahead) = hashes.get(i + REPEATS_PREFETCH_AHEAD) {
            seen.prefetch(*ahead);
        }
        if !seen.insert(*h) {
            if keep.is_empty() {
                keep = vec![true; chunk.len()];
            }
            keep[i] = false;
        }
    }
    if keep.is_empty() {
        return 0;
    }
    let before = chunk.len();
    let mut flags = keep.into_iter();
    chunk.retain(|_| flags.next().unwrap_or(true));
    (before - chunk.len()) as u64
}

/// Bare rows of a first version (no optional column, `present = 1`,
/// `added_version = 1`) waiting to be written [`BARE_ROWS_PER_INSERT`] at
/// a time by one multi-row `INSERT`: SQLite's work per statement
/// (opening the table's and the index's cursors, resetting, unbinding)
/// is then paid once for 64 rows of a block list instead of for each.
/// Each is `(type_id, value, file_id, line, meta_hash)`.
#[derive(Default)]
struct BareRows {
    rows: Vec<(i64, String, i64, i64, i64)>,
}

impl BareRows {
    /// `INSERT … VALUES (…), (…)…` for [`BARE_ROWS_PER_INSERT`] rows; `?1`
    /// is the feed id, then five parameters a row.
    fn sql() -> String {
        let mut sql = String::from(
            "INSERT INTO indicators (feed_id, type_id, value, file_id, line, meta_hash, \
             added_version, present) VALUES ",
        );
        for k in 0..BARE_ROWS_PER_INSERT {
            let b = 2 + 5 * k;
            if k > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(?1, ?{}, ?{}, ?{}, ?{}, ?{}, 1, 1)",
                b,
                b + 1,
                b + 2,
                b + 3,
                b + 4
            ));
        }
        sql
    }

    /// Write a full set of rows with the multi-row statement.
    fn write_full(
        &mut self,
        insert_many: &mut rusqlite::CachedStatement<'_>,
        feed_id: i64,
        p: &std::path::Path,
    ) -> Result<()> {
        let a = "storing indicators";
        insert_many.raw_bind_parameter(1, feed_id).ctx(p, a)?;
        for (k, (type_id, value, file_id, line, meta_hash)) in self.rows.iter().enumerate() {
            let b = 2 + 5 * k;
            insert_many.raw_bind_parameter(b, type_id).ctx(p, a)?;
            insert_many
                .raw_bind_parameter(b + 1, value.as_str())
                .ctx(p, a)?;
            insert_many.raw_bind_parameter(b + 2, file_id).ctx(p, a)?;
            insert_many.raw_bind_parameter(b + 3, line).ctx(p, a)?;
            insert_many.raw_bind_parameter(b + 4, meta_hash).ctx(p, a)?;
        }
        insert_many.raw_execute().ctx(p, a)?;
        self.rows.clear();
        Ok(())
    }

    /// Write what is left (fewer than a full set) one row at a time.
    fn flush(
        &mut self,
        insert_bare: &mut rusqlite::CachedStatement<'_>,
        feed_id: i64,
        p: &std::path::Path,
    ) -> Result<()> {
        for (type_id, value, file_id, line, meta_hash) in self.rows.drain(..) {
            insert_bare
                .execute(params![
                    feed_id, type_id, value, file_id, line, meta_hash, 1, 1
                ])
                .ctx(p, "storing indicators")?;
        }
        Ok(())
    }
}

/// What the import says when turning SQLite's automatic checkpoint off or
/// back on fails.
const SETTING_CHECKPOINTS: &str = "setting up the import's checkpoints";

/// The store with SQLite's automatic checkpoint off, for the batches of an
/// import, which checkpoint each batch themselves in the pause after it
/// ([`Store::write_batches`]). Dropping it sets the default back, so the
/// store is never left without automatic checkpoints, whether the import
/// finished, failed half-way (an early `?`) or panicked; an import that
/// went well calls [`AutocheckpointOff::restore`] instead, to learn
/// whether setting it back worked. A failed import reports its own error,
/// not that of setting the default back.
struct AutocheckpointOff<'s> {
    store: &'s mut Store,
    restored: bool,
}

impl<'s> AutocheckpointOff<'s> {
    fn new(store: &'s mut Store) -> Result<Self> {
        store
            .conn
            .execute_batch("PRAGMA wal_autocheckpoint = 0")
            .ctx(&store.path, SETTING_CHECKPOINTS)?;
        Ok(Self {
            store,
            restored: false,
        })
    }

    /// Set SQLite's default back now, and say whether that worked.
    fn restore(mut self) -> Result<()> {
        self.restored = true;
        self.set_default()
    }

    fn set_default(&mut self) -> Result<()> {
        self.store
            .conn
            .execute_batch(&format!("PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT}"))
            .ctx(&self.store.path, SETTING_CHECKPOINTS)
    }
}

impl Drop for AutocheckpointOff<'_> {
    fn drop(&mut self) {
        if !self.restored
            && let Err(e) = self.set_default()
        {
            tracing::debug!(store = %self.store.path.display(), "after a failed import: {e}");
        }
    }
}

impl std::ops::Deref for AutocheckpointOff<'_> {
    type Target = Store;
    fn deref(&self) -> &Store {
        self.store
    }
}

impl std::ops::DerefMut for AutocheckpointOff<'_> {
    fn deref_mut(&mut self) -> &mut Store {
        self.store
    }
}

/// The ids of the `feed_files` and `indicator_types` rows an import
/// refers to (schema 8), found or created once per import rather than
/// once per row: a feed has one file and a handful of types.
///
/// The last file and type asked for are kept beside the maps: nearly every
/// row of a feed has the same file and type as the one before, and
/// comparing a short string is cheaper than hashing it (hashing both for
/// every row was 3 % of a 10M-address `feed add`).
#[derive(Default)]
struct Lookups {
    files: IdCache,
    types: IdCache,
}

/// The row ids found so far for one lookup table, by name, with the last
/// one asked for beside them (see [`Lookups`]).
#[derive(Default)]
struct IdCache {
    known: FastMap<String, i64>,
    last: Option<(String, i64)>,
}

impl IdCache {
    /// The id of `key`: the last one asked for, else one found before,
    /// else what `find_or_create` answers (which is then kept).
    fn id(&mut self, key: &str, find_or_create: impl FnOnce() -> Result<i64>) -> Result<i64> {
        if let Some((last, id)) = &self.last
            && last == key
        {
            return Ok(*id);
        }
        if let Some(id) = self.known.get(key) {
            self.last = Some((key.to_string(), *id));
            return Ok(*id);
        }
        let id = find_or_create()?;
        self.known.insert(key.to_string(), id);
        Ok(id)
    }
}

impl Lookups {
    /// The id of the `feed_files` row of `path`, created if new. Called
    /// inside a batch's transaction, so a row it creates is committed
    /// with the first indicator that refers to it.
    fn file_id(&mut self, tx: &Transaction<'_>, p: &std::path::Path, path: &str) -> Result<i64> {
        self.files.id(path, || {
            let a = "recording the feed file";
            tx.execute(
                "INSERT INTO feed_files (path) VALUES (?1) ON CONFLICT (path) DO NOTHING",
                [path],
            )
            .ctx(p, a)?;
            tx.query_row("SELECT id FROM feed_files WHERE path = ?1", [path], |r| {
                r.get(0)
            })
            .ctx(p, a)
        })
    }

    /// The id of the `indicator_types` row of `name`, created if new.
    fn type_id(
        &mut self,
        tx: &Transaction<'_>,
        p: &std::path::Path,
        name: &str,
        kind: &str,
    ) -> Result<i64> {
        self.types.id(name, || {
            let a = "recording the indicator type";
            tx.execute(
                "INSERT INTO indicator_types (name, kind) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                params![name, kind],
            )
            .ctx(p, a)?;
            tx.query_row(
                "SELECT id FROM indicator_types WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .ctx(p, a)
        })
    }
}
