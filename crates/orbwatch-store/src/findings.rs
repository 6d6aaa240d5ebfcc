//! Hunts, their findings and the analyst's triage decisions.
//!
//! A hunt run with a store keeps what it found and what it looked at
//! (coverage), so that findings can be triaged, listed and reported later
//! without re-running the hunt. Triage decisions are never overwritten:
//! each one is a new row, so the history of who decided what, and when,
//! stays readable.
//!
//! Suppression: marking a finding `false-positive` or `benign` dismisses
//! every finding with the same *suppression key* — the indicator and the
//! peer for an IOC match, the kind and source address for a behaviour — in
//! this hunt and in later ones, until a later decision on that key says
//! otherwise. A finding's own decision always wins over one inherited
//! through its key.

use std::collections::HashMap;
use std::fmt;

use jiff::Timestamp;
use orbwatch_detect::{Coverage, Finding, FindingKind, Severity};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::Store;
use crate::error::{Result, SqlContext, StoreError};
use crate::rows::{opt_ts, parse_opt_ts, parse_ts, ts_text};

/// An analyst's verdict on a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TriageStatus {
    /// Not looked at yet (also a way to undo an earlier decision).
    New,
    /// Looked at and judged real.
    Confirmed,
    /// The match is wrong: the indicator or the record was misread.
    FalsePositive,
    /// The match is right but the traffic is harmless.
    Benign,
}

impl TriageStatus {
    /// All statuses, in the order the CLI lists them.
    pub const ALL: [TriageStatus; 4] = [
        Self::New,
        Self::Confirmed,
        Self::FalsePositive,
        Self::Benign,
    ];

    /// The name used on the command line and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Confirmed => "confirmed",
            Self::FalsePositive => "false-positive",
            Self::Benign => "benign",
        }
    }

    /// Parse a status name (`fp` and `false_positive` are accepted too).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "new" => Some(Self::New),
            "confirmed" => Some(Self::Confirmed),
            "false-positive" | "false_positive" | "fp" => Some(Self::FalsePositive),
            "benign" => Some(Self::Benign),
            _ => None,
        }
    }

    /// Does this verdict dismiss the finding (and its key in later hunts)?
    pub fn suppresses(self) -> bool {
        matches!(self, Self::FalsePositive | Self::Benign)
    }
}

impl fmt::Display for TriageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One triage decision, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TriageDecision {
    /// Order of recording (later decisions have larger numbers).
    pub seq: i64,
    pub finding_id: String,
    /// The suppression key of the finding decided on.
    pub key: String,
    pub status: TriageStatus,
    pub note: Option<String>,
    pub author: String,
    pub at: Timestamp,
}

/// A stored hunt without its coverage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HuntSummary {
    pub id: i64,
    pub started: Option<Timestamp>,
    pub finished: Option<Timestamp>,
    /// What was asked (inputs, feeds, options), as the binary summarised it.
    pub args: serde_json::Value,
    pub findings: u64,
}

/// A stored hunt with its coverage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HuntRecord {
    pub summary: HuntSummary,
    pub coverage: Coverage,
}

/// A finding as read back from the store, with its triage state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredFinding {
    /// The hunt this copy of the finding comes from.
    pub hunt_id: i64,
    pub finding: Finding,
    /// The suppression key (see the module documentation).
    pub key: String,
    /// Own decision if any, else the latest decision on the key, else new.
    pub status: TriageStatus,
    /// The decision behind `status` (it may be on another finding with the
    /// same key: then `decision.finding_id != finding.id`).
    pub decision: Option<TriageDecision>,
    /// Dismissed by triage (false-positive or benign).
    pub suppressed: bool,
}

/// Which findings [`Store::findings`] returns.
#[derive(Debug, Clone, Default)]
pub struct FindingFilter {
    /// Only this hunt; `None`: the latest copy of every finding id.
    pub hunt: Option<i64>,
    pub kind: Option<FindingKind>,
    pub feed: Option<String>,
    pub status: Option<TriageStatus>,
    /// Findings seen at or after this instant (`last_seen >= since`).
    pub since: Option<Timestamp>,
    /// Findings seen at or before this instant (`first_seen <= until`).
    pub until: Option<Timestamp>,
    /// Findings with a score at least this (findings without score drop out).
    pub min_score: Option<u8>,
    /// Findings at least this serious (findings without severity, written
    /// by versions before IOC matches had one, drop out).
    pub min_severity: Option<Severity>,
    /// Include findings dismissed by triage.
    pub show_suppressed: bool,
    /// Only the finding with this full id (looked up through the
    /// `findings_by_id` index, so one finding's page does not read them
    /// all).
    pub id: Option<String>,
}

/// The `sev_order` column (schema 7) of a severity: 0 for critical up to
/// 4 for info (5: no severity), so that the list sorts ascending.
fn severity_order(s: Severity) -> i64 {
    match s {
        Severity::Critical => 0,
        Severity::High => 1,
        Severity::Medium => 2,
        Severity::Low => 3,
        Severity::Info => 4,
    }
}

/// Where a page of the findings list starts: just after this finding, in
/// the list's order (severity, score, first sighting, id). A position in
/// the order rather than an offset, so that the next page is an index
/// range from here, and a finding dismissed or added before this point
/// neither repeats nor skips one of the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingsCursor {
    sev_order: i64,
    score_order: i64,
    seen_order: String,
    id: String,
}

impl FindingsCursor {
    /// The cursor as text for a client to hand back: the severity and
    /// score orders in decimal, the first sighting and the id in hex,
    /// joined by dots (`1.-80.323032….6131…`). Opaque to clients, but
    /// with a layout a pattern can state (the OpenAPI document gives it),
    /// so that every text matching it is a position in the order.
    pub fn encode(&self) -> String {
        let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
        format!(
            "{}.{}.{}.{}",
            self.sev_order,
            self.score_order,
            hex(&self.seen_order),
            hex(&self.id)
        )
    }

    /// Read back what [`FindingsCursor::encode`] gave; `None` for text
    /// of another layout. The orders are at most 2 and 3 digits (the
    /// columns hold 0–5 and -100–1), the hex parts at most 64 bytes.
    /// Any text of this layout is a position, even one no finding has:
    /// the next page starts after it. Hex that is not UTF-8 (no server
    /// gave it) is read with replacement characters, still a position.
    pub fn decode(text: &str) -> Option<FindingsCursor> {
        fn number(s: &str, digits: usize) -> Option<i64> {
            let d = s.strip_prefix('-').unwrap_or(s);
            (!d.is_empty() && d.len() <= digits && d.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        }
        fn hex(s: &str) -> Option<String> {
            if !s.len().is_multiple_of(2) || s.len() > 128 {
                return None;
            }
            let bytes = (0..s.len())
                .step_by(2)
                .map(|i| {
                    let pair = s.get(i..i + 2)?;
                    pair.bytes()
                        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                        .then(|| u8::from_str_radix(pair, 16).ok())
                        .flatten()
                })
                .collect::<Option<Vec<u8>>>()?;
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        let mut parts = text.split('.');
        let sev_order = parts.next().and_then(|s| {
            s.strip_prefix('-')
                .is_none()
                .then(|| number(s, 2))
                .flatten()
        })?;
        let score_order = number(parts.next()?, 3)?;
        let seen_order = hex(parts.next()?)?;
        let id = hex(parts.next()?)?;
        if parts.next().is_some() {
            return None;
        }
        Some(FindingsCursor {
            sev_order,
            score_order,
            seen_order,
            id,
        })
    }
}

/// Findings counted by what `/metrics` and the overview show
/// ([`Store::finding_counts`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FindingCount {
    /// The kind's name (`ioc_match`…).
    pub kind: String,
    /// The severity's name; `None` for findings stored without one.
    pub severity: Option<String>,
    pub status: TriageStatus,
    /// The UTC day (`YYYY-MM-DD`) of the first sighting, else of the last;
    /// `None` when undated.
    pub day: Option<String>,
    pub count: u64,
}

/// What a finding id (or prefix) given by the user points to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdMatch {
    /// Exactly one finding.
    Unique(String),
    /// Several findings start with the prefix (the first few, sorted).
    Ambiguous(Vec<String>),
    /// No finding.
    None,
}

/// What [`Store::record_hunt`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedHunt {
    pub hunt_id: i64,
    pub findings: u64,
    /// Ids of the findings that earlier triage dismisses.
    pub suppressed: Vec<String>,
}

/// The key under which a triage decision suppresses later findings:
/// `ioc|<indicator>|<peer>` for an IOC match (the peer is the other end of
/// the traffic, `-` when unknown), `<kind>|<src_ip>` for a behaviour.
pub fn suppression_key(f: &Finding) -> String {
    match &f.ioc {
        Some(ioc) => {
            let peer = ioc
                .peer
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into());
            format!("ioc|{}|{peer}", ioc.indicator)
        }
        None => {
            let src = f
                .src_ip
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into());
            format!("{}|{src}", f.kind.as_str())
        }
    }
}

/// The columns of a triage decision, in the order [`Store::decision_row`] reads.
const DECISION_COLUMNS: &str =
    "SELECT seq, finding_id, suppress_key, status, note, author, at FROM triage";

const INSERT_FINDING: &str = "INSERT OR REPLACE INTO findings (hunt_id, id, kind, first_seen, \
     last_seen, count, src_ip, dst_ip, indicator, feed, in_window, severity, score, \
     suppress_key, finding_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, \
     ?13, ?14, ?15)";

/// Findings as rows: suppression key and JSON, prepared before a
/// transaction takes the write lock.
fn finding_rows(p: &std::path::Path, findings: &[Finding]) -> Result<Vec<(String, String)>> {
    findings
        .iter()
        .map(|f| {
            let json = serde_json::to_string(f).map_err(|e| StoreError::Corrupt {
                path: p.to_path_buf(),
                detail: format!("finding {} cannot be written as JSON: {e}", f.id),
            })?;
            Ok((suppression_key(f), json))
        })
        .collect()
}

/// Insert (or replace, by hunt and id) findings with their prepared rows.
fn insert_findings(
    tx: &rusqlite::Transaction<'_>,
    hunt_id: i64,
    findings: &[Finding],
    rows: &[(String, String)],
) -> rusqlite::Result<()> {
    let mut ins = tx.prepare_cached(INSERT_FINDING)?;
    for (f, (key, json)) in findings.iter().zip(rows) {
        let ioc = f.ioc.as_ref();
        ins.execute(params![
            hunt_id,
            f.id,
            f.kind.as_str(),
            opt_ts(f.first_seen),
            opt_ts(f.last_seen),
            i64::try_from(f.count).unwrap_or(i64::MAX),
            f.src_ip.map(|i| i.to_string()),
            f.dst_ip.map(|i| i.to_string()),
            ioc.map(|i| i.indicator.clone()),
            ioc.map(|i| i.feed.clone()),
            ioc.map(|i| i.in_validity_window),
            f.severity.map(|s| s.as_str()),
            f.score,
            key,
            json,
        ])?;
    }
    Ok(())
}

/// `findings` with each one merged with the copy of it the store shows,
/// where that copy holds something the new one lacks
/// ([`orbwatch_detect::finding::merge_copies`]): a daemon restarted after
/// `kill -9`, or a worker that took over a partition, raises a finding
/// again from fresh state when records it had kept arrive again, and its
/// first copy would otherwise replace the fuller one in every list (the
/// newest copy of an id is the one shown). A running daemon's own update
/// covers what it kept before and is written as it is, after one indexed
/// lookup of the kept figures.
fn with_kept_copies<'a>(
    tx: &rusqlite::Transaction<'_>,
    path: &std::path::Path,
    findings: &'a [Finding],
) -> Result<std::borrow::Cow<'a, [Finding]>> {
    let a = "reading the kept copies of findings raised again";
    let mut kept = tx
        .prepare_cached(
            "SELECT row, count, first_seen, last_seen FROM findings \
             WHERE id = ?1 AND is_latest = 1",
        )
        .ctx(path, a)?;
    let corrupt = |id: &str, detail: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: format!("the kept copy of finding {id}: {detail}"),
    };
    let mut out = std::borrow::Cow::Borrowed(findings);
    for (i, f) in findings.iter().enumerate() {
        let row: Option<(i64, i64, Option<String>, Option<String>)> = kept
            .query_row(params![f.id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()
            .ctx(path, a)?;
        let Some((row, count, first, last)) = row else {
            continue;
        };
        let first = parse_opt_ts(first).map_err(|e| corrupt(&f.id, e))?;
        let last = parse_opt_ts(last).map_err(|e| corrupt(&f.id, e))?;
        let count = u64::try_from(count).unwrap_or(0);
        if orbwatch_detect::finding::covers(f, count, first, last) {
            continue;
        }
        let kept_copy = finding_at_row(tx, path, row, || {
            format!("the kept copy of finding {}", f.id)
        })?;
        let merged = orbwatch_detect::finding::merge_copies(f.clone(), kept_copy);
        out.to_mut()[i] = merged;
    }
    Ok(out)
}

/// The finding kept in `row` (its JSON), which errors call `what`.
fn finding_at_row(
    conn: &rusqlite::Connection,
    path: &std::path::Path,
    row: i64,
    what: impl Fn() -> String,
) -> Result<Finding> {
    let json: String = conn
        .prepare_cached("SELECT finding_json FROM findings WHERE row = ?1")
        .and_then(|mut q| q.query_row([row], |x| x.get(0)))
        .map_err(|source| StoreError::Sql {
            path: path.to_path_buf(),
            action: format!("reading {}", what()),
            source,
        })?;
    serde_json::from_str(&json).map_err(|e| StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: format!("{} is unreadable ({e})", what()),
    })
}

/// Keep what a live run raised since its last commit, in the caller's
/// transaction (`Store::write_transaction`), so the followed files'
/// offsets, the alerts for the outbox and the block decisions written in
/// the same transaction are kept with the findings or not at all: the
/// findings (a finding raised again replaces its earlier state, merged
/// with the copy kept before when that one holds more: see
/// `with_kept_copies`), the run's count, and its coverage when given.
/// `path` names the store in errors. Returns, for each finding, whether
/// it is new to the run (its first copy there).
///
/// Why the count is added to rather than counted: a daemon's run holds
/// millions of findings, and counting its rows at every commit (several a
/// second in a flood) cost a pass over all of them each time; and the
/// caller learns which findings are new without keeping every id it
/// ever kept.
pub fn keep_live(
    tx: &rusqlite::Transaction<'_>,
    path: &std::path::Path,
    hunt_id: i64,
    findings: &[Finding],
    coverage: Option<&Coverage>,
) -> Result<Vec<bool>> {
    let a = "keeping the findings of a watch run";
    // In parts: the transaction holds the write lock from its start, so
    // this costs it nothing, and the JSON of only one part is in memory
    // at once (a daemon stopping after a flood of new peers closes every
    // open session in one output: 150,000 findings were 298 MB of JSON).
    let mut new = Vec::with_capacity(findings.len());
    for part in findings.chunks(ROWS_AT_ONCE) {
        let part = with_kept_copies(tx, path, part)?;
        let part = &part[..];
        let rows = finding_rows(path, part)?;
        new.extend(new_in_run(tx, hunt_id, part).ctx(path, a)?);
        insert_findings(tx, hunt_id, part, &rows).ctx(path, a)?;
    }
    let added = new.iter().filter(|&&n| n).count() as i64;
    let cov_json = match coverage {
        Some(c) => Some(serde_json::to_string(c).map_err(|e| StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("coverage cannot be written as JSON: {e}"),
        })?),
        None => None,
    };
    tx.execute(
        "UPDATE hunts SET findings = findings + ?4, \
         coverage_json = COALESCE(?2, coverage_json), \
         finished = COALESCE(?3, finished) WHERE id = ?1",
        params![
            hunt_id,
            cov_json,
            coverage.and_then(|c| c.finished).map(ts_text),
            added
        ],
    )
    .ctx(path, a)?;
    Ok(new)
}

/// Findings [`keep_live`] writes as JSON at once.
const ROWS_AT_ONCE: usize = 4096;

/// For each finding, whether the run has no copy of it yet (one lookup in
/// the unique (run, id) index each); an id twice in `findings` is new
/// once at most (and in a later part, it is kept by then).
fn new_in_run(
    tx: &rusqlite::Transaction<'_>,
    hunt_id: i64,
    findings: &[Finding],
) -> rusqlite::Result<Vec<bool>> {
    let mut kept = tx.prepare_cached("SELECT 1 FROM findings WHERE hunt_id = ?1 AND id = ?2")?;
    let mut seen = std::collections::HashSet::with_capacity(findings.len());
    findings
        .iter()
        .map(|f| Ok(seen.insert(f.id.as_str()) && !kept.exists(params![hunt_id, f.id])?))
        .collect()
}

impl Store {
    /// Open a live run (`watch`): a `hunts` row with no end yet, which
    /// [`Store::commit_live`] fills as findings are raised. The hunts and
    /// findings commands, the report and triage read it like any hunt.
    pub fn begin_live(&mut self, args: &serde_json::Value, started: Timestamp) -> Result<i64> {
        let p = self.path.clone();
        self.conn
            .execute(
                "INSERT INTO hunts (started, finished, args_json, coverage_json, findings) \
                 VALUES (?1, NULL, ?2, '{}', 0)",
                params![ts_text(started), args.to_string()],
            )
            .ctx(&p, "opening a watch run")?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The newest live run begun with exactly `args` and never finished,
    /// if any: a daemon that keeps one run across restarts (the findings
    /// topic's intake) goes on with it, so a finding updated after a
    /// restart replaces its earlier state instead of showing twice.
    pub fn open_live_run(&self, args: &serde_json::Value) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT id FROM hunts WHERE finished IS NULL AND args_json = ?1 \
                 ORDER BY id DESC LIMIT 1",
                params![args.to_string()],
                |r| r.get(0),
            )
            .optional()
            .ctx(&self.path, "looking for an open live run")
    }

    /// [`keep_live`] in a transaction of its own.
    pub fn commit_live(
        &mut self,
        hunt_id: i64,
        findings: &[Finding],
        coverage: Option<&Coverage>,
    ) -> Result<()> {
        let p = self.path.clone();
        let tx = self.write_transaction()?;
        keep_live(&tx, &p, hunt_id, findings, coverage)?;
        tx.commit().ctx(&p, "keeping the findings of a watch run")?;
        Ok(())
    }

    /// Keep one hunt: what was asked, its coverage and its findings, in one
    /// transaction. Returns the hunt id and the findings earlier triage
    /// dismisses.
    ///
    /// Why the rows are prepared first: serialising findings to JSON is most
    /// of the work, and doing it before taking the write lock keeps the
    /// transaction short (inserts only), so concurrent hunts and feed
    /// imports wait less for each other. The transaction is `IMMEDIATE`: it
    /// takes the write lock up front, where SQLite's busy timeout applies,
    /// instead of failing at the first write of a read transaction.
    /// A busy store shows as an error for which [`StoreError::is_busy`] is
    /// true; the caller may retry the same call.
    pub fn record_hunt(
        &mut self,
        args: &serde_json::Value,
        coverage: &Coverage,
        findings: &[Finding],
    ) -> Result<RecordedHunt> {
        let p = self.path.clone();
        let a = "recording a hunt";
        let cov_json = serde_json::to_string(coverage)
            .map_err(|e| self.corrupt(format!("coverage cannot be written as JSON: {e}")))?;
        let rows = finding_rows(&p, findings)?;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .ctx(&p, a)?;
        tx.execute(
            "INSERT INTO hunts (started, finished, args_json, coverage_json, findings) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                opt_ts(coverage.started),
                opt_ts(coverage.finished),
                args.to_string(),
                cov_json,
                findings.len() as i64
            ],
        )
        .ctx(&p, a)?;
        let hunt_id = tx.last_insert_rowid();
        insert_findings(&tx, hunt_id, findings, &rows).ctx(&p, a)?;
        tx.commit().ctx(&p, a)?;
        let suppressed = self.dismissed(findings)?;
        Ok(RecordedHunt {
            hunt_id,
            findings: findings.len() as u64,
            suppressed,
        })
    }

    /// Ids of the findings that earlier triage dismisses (false-positive or
    /// benign, on the finding or on its suppression key). Read-only: it
    /// works while another process holds the write lock, so a hunt can
    /// decide what to print before it has kept its findings.
    pub fn dismissed(&self, findings: &[Finding]) -> Result<Vec<String>> {
        let (by_id, by_key) = self.latest_decisions()?;
        Ok(findings
            .iter()
            .filter(|f| {
                effective(&f.id, &suppression_key(f), &by_id, &by_key)
                    .0
                    .suppresses()
            })
            .map(|f| f.id.clone())
            .collect())
    }

    /// Every stored hunt, oldest first.
    pub fn hunts(&self) -> Result<Vec<HuntSummary>> {
        let p = &self.path;
        let a = "listing hunts";
        let mut stmt = self
            .conn
            .prepare("SELECT id, started, finished, args_json, findings FROM hunts ORDER BY id")
            .ctx(p, a)?;
        let mut q = stmt.query([]).ctx(p, a)?;
        let mut out = Vec::new();
        while let Some(r) = q.next().ctx(p, a)? {
            out.push(self.hunt_summary(r)?);
        }
        Ok(out)
    }

    fn hunt_summary(&self, r: &rusqlite::Row<'_>) -> Result<HuntSummary> {
        let p = &self.path;
        let a = "reading a hunt";
        let id: i64 = r.get(0).ctx(p, a)?;
        let bad = |e: String| self.corrupt(format!("hunt {id}: {e}"));
        let args: String = r.get(3).ctx(p, a)?;
        let findings: i64 = r.get(4).ctx(p, a)?;
        Ok(HuntSummary {
            id,
            started: parse_opt_ts(r.get(1).ctx(p, a)?).map_err(bad)?,
            finished: parse_opt_ts(r.get(2).ctx(p, a)?).map_err(bad)?,
            args: serde_json::from_str(&args).map_err(|e| bad(format!("unreadable args ({e})")))?,
            findings: u64::try_from(findings).unwrap_or(0),
        })
    }

    /// One hunt with its coverage; `None` picks the latest. `Ok(None)` when
    /// the store holds no such hunt.
    pub fn hunt(&self, id: Option<i64>) -> Result<Option<HuntRecord>> {
        let p = &self.path;
        let a = "reading a hunt";
        let sql = "SELECT id, started, finished, args_json, findings, coverage_json FROM hunts";
        let row = |r: &rusqlite::Row<'_>| -> rusqlite::Result<(i64, String)> {
            Ok((r.get(0)?, r.get(5)?))
        };
        let found = match id {
            Some(id) => self
                .conn
                .query_row(&format!("{sql} WHERE id = ?1"), [id], row)
                .optional(),
            None => self
                .conn
                .query_row(&format!("{sql} ORDER BY id DESC LIMIT 1"), [], row)
                .optional(),
        }
        .ctx(p, a)?;
        let Some((id, cov)) = found else {
            return Ok(None);
        };
        let summary = self
            .conn
            .query_row(&format!("{sql} WHERE id = ?1"), [id], |r| {
                Ok(self.hunt_summary(r))
            })
            .ctx(p, a)??;
        let coverage = serde_json::from_str(&cov)
            .map_err(|e| self.corrupt(format!("hunt {id}: unreadable coverage ({e})")))?;
        Ok(Some(HuntRecord { summary, coverage }))
    }

    /// Latest decision per finding id and per suppression key.
    fn latest_decisions(
        &self,
    ) -> Result<(
        HashMap<String, TriageDecision>,
        HashMap<String, TriageDecision>,
    )> {
        let mut by_id = HashMap::new();
        let mut by_key = HashMap::new();
        for d in self.decisions(None)? {
            by_key.insert(d.key.clone(), d.clone());
            by_id.insert(d.finding_id.clone(), d);
        }
        Ok((by_id, by_key))
    }

    /// Triage decisions, oldest first: all of them, or those on one finding.
    pub fn decisions(&self, finding_id: Option<&str>) -> Result<Vec<TriageDecision>> {
        let p = &self.path;
        let a = "reading triage decisions";
        let mut stmt = match finding_id {
            Some(_) => self.conn.prepare(&format!(
                "{DECISION_COLUMNS} WHERE finding_id = ?1 ORDER BY seq"
            )),
            None => self
                .conn
                .prepare(&format!("{DECISION_COLUMNS} ORDER BY seq")),
        }
        .ctx(p, a)?;
        let mut q = match finding_id {
            Some(id) => stmt.query([id]),
            None => stmt.query([]),
        }
        .ctx(p, a)?;
        let mut out = Vec::new();
        while let Some(r) = q.next().ctx(p, a)? {
            out.push(self.decision_row(r)?);
        }
        Ok(out)
    }

    /// The decision recorded as `seq`, if any.
    fn decision(&self, seq: i64) -> Result<Option<TriageDecision>> {
        let p = &self.path;
        let a = "reading a triage decision";
        let mut stmt = self
            .conn
            .prepare_cached(&format!("{DECISION_COLUMNS} WHERE seq = ?1"))
            .ctx(p, a)?;
        let mut q = stmt.query([seq]).ctx(p, a)?;
        match q.next().ctx(p, a)? {
            Some(r) => Ok(Some(self.decision_row(r)?)),
            None => Ok(None),
        }
    }

    /// A row of [`DECISION_COLUMNS`] as a decision.
    fn decision_row(&self, r: &rusqlite::Row<'_>) -> Result<TriageDecision> {
        let p = &self.path;
        let a = "reading triage decisions";
        let seq: i64 = r.get(0).ctx(p, a)?;
        let status: String = r.get(3).ctx(p, a)?;
        let at: String = r.get(6).ctx(p, a)?;
        let bad = |e: String| self.corrupt(format!("triage decision {seq}: {e}"));
        Ok(TriageDecision {
            seq,
            finding_id: r.get(1).ctx(p, a)?,
            key: r.get(2).ctx(p, a)?,
            status: TriageStatus::parse(&status)
                .ok_or_else(|| bad(format!("unknown status `{status}`")))?,
            note: r.get(4).ctx(p, a)?,
            author: r.get(5).ctx(p, a)?,
            at: parse_ts(&at).map_err(bad)?,
        })
    }

    /// Find the finding a user means by `id_or_prefix` (a full id or the
    /// start of one).
    pub fn resolve_finding_id(&self, id_or_prefix: &str) -> Result<IdMatch> {
        let p = &self.path;
        let a = "looking up a finding";
        let wanted = id_or_prefix.trim().to_ascii_lowercase();
        if wanted.is_empty() {
            return Ok(IdMatch::None);
        }
        let exact: Option<String> = self
            .conn
            .query_row(
                "SELECT id FROM findings WHERE id = ?1 LIMIT 1",
                [&wanted],
                |r| r.get(0),
            )
            .optional()
            .ctx(p, a)?;
        if let Some(id) = exact {
            return Ok(IdMatch::Unique(id));
        }
        // Prefix match with a range, not LIKE: ids are hex, but a user's
        // `%` or `_` must not act as a wildcard.
        let upper = format!("{wanted}\u{10ffff}");
        let mut stmt = self
            .conn
            .prepare(
                "SELECT DISTINCT id FROM findings WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT 6",
            )
            .ctx(p, a)?;
        let ids = stmt
            .query_map([&wanted, &upper], |r| r.get::<_, String>(0))
            .ctx(p, a)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .ctx(p, a)?;
        Ok(match ids.len() {
            0 => IdMatch::None,
            1 => IdMatch::Unique(ids.into_iter().next().unwrap_or_default()),
            _ => IdMatch::Ambiguous(ids),
        })
    }

    /// Record a decision on the finding with exactly this id. The caller
    /// resolves prefixes first ([`Store::resolve_finding_id`]).
    pub fn triage(
        &mut self,
        finding_id: &str,
        status: TriageStatus,
        note: Option<&str>,
        author: &str,
        at: Option<Timestamp>,
    ) -> Result<TriageDecision> {
        let p = &self.path;
        let a = "recording a triage decision";
        let key: Option<String> = self
            .conn
            .query_row(
                "SELECT suppress_key FROM findings WHERE id = ?1 ORDER BY row DESC LIMIT 1",
                [finding_id],
                |r| r.get(0),
            )
            .optional()
            .ctx(p, a)?;
        let key = key.ok_or_else(|| StoreError::UnknownFinding {
            id: finding_id.to_string(),
        })?;
        let at = at.unwrap_or_else(Timestamp::now);
        self.conn
            .execute(
                "INSERT INTO triage (finding_id, suppress_key, status, note, author, at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![finding_id, key, status.as_str(), note, author, ts_text(at)],
            )
            .ctx(p, a)?;
        Ok(TriageDecision {
            seq: self.conn.last_insert_rowid(),
            finding_id: finding_id.to_string(),
            key,
            status,
            note: note.map(str::to_string),
            author: author.to_string(),
            at,
        })
    }

    /// Changes when a finding is kept or a triage decision is recorded
    /// (the newest row of each table): for caches of what is built from
    /// findings, such as the EDLs of `serve`.
    pub fn findings_generation(&self) -> Result<(i64, i64)> {
        self.conn
            .query_row(
                "SELECT (SELECT COALESCE(MAX(row), 0) FROM findings), \
                 (SELECT COALESCE(MAX(seq), 0) FROM triage)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ctx(&self.path, "reading the findings' generation")
    }

    /// The query of [`Store::findings`] for `columns`, with its arguments:
    /// the filter, triage state included, in SQL over the columns schema 7
    /// keeps (see `migrations::V7_FINDINGS_LIST`), starting after `after`,
    /// in the list's order when `ordered`.
    fn findings_query(
        filter: &FindingFilter,
        columns: &str,
        after: Option<&FindingsCursor>,
        ordered: bool,
    ) -> (String, Vec<Box<dyn rusqlite::ToSql>>) {
        let mut sql = format!("SELECT {columns} FROM findings f WHERE ");
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        match filter.hunt {
            Some(h) => {
                args.push(Box::new(h));
                sql.push_str(&format!("f.hunt_id = ?{}", args.len()));
            }
            // A literal 1: the partial indexes `WHERE is_latest = 1` apply.
            None => sql.push_str("f.is_latest = 1"),
        }
        if let Some(id) = &filter.id {
            args.push(Box::new(id.clone()));
            sql.push_str(&format!(" AND f.id = ?{}", args.len()));
        }
        if let Some(k) = filter.kind {
            args.push(Box::new(k.as_str()));
            sql.push_str(&format!(" AND f.kind = ?{}", args.len()));
        }
        if let Some(feed) = &filter.feed {
            args.push(Box::new(feed.clone()));
            sql.push_str(&format!(" AND f.feed = ?{}", args.len()));
        }
        if let Some(t) = filter.since {
            args.push(Box::new(ts_text(t)));
            sql.push_str(&format!(" AND f.last_seen >= ?{}", args.len()));
        }
        if let Some(t) = filter.until {
            args.push(Box::new(ts_text(t)));
            sql.push_str(&format!(" AND f.first_seen <= ?{}", args.len()));
        }
        if let Some(s) = filter.min_score {
            args.push(Box::new(s));
            sql.push_str(&format!(" AND f.score >= ?{}", args.len()));
        }
        if let Some(s) = filter.min_severity {
            args.push(Box::new(severity_order(s)));
            sql.push_str(&format!(" AND f.sev_order <= ?{}", args.len()));
        }
        if !filter.show_suppressed {
            let dismissing: Vec<String> = TriageStatus::ALL
                .iter()
                .filter(|s| s.suppresses())
                .map(|s| format!("'{}'", s.as_str()))
                .collect();
            sql.push_str(&format!(
                " AND f.triage_status NOT IN ({})",
                dismissing.join(", ")
            ));
        }
        if let Some(st) = filter.status {
            args.push(Box::new(st.as_str()));
            sql.push_str(&format!(" AND f.triage_status = ?{}", args.len()));
        }
        if let Some(c) = after {
            let n = args.len();
            args.push(Box::new(c.sev_order));
            args.push(Box::new(c.score_order));
            args.push(Box::new(c.seen_order.clone()));
            args.push(Box::new(c.id.clone()));
            sql.push_str(&format!(
                " AND (f.sev_order, f.score_order, f.seen_order, f.id) > (?{}, ?{}, ?{}, ?{})",
                n + 1,
                n + 2,
                n + 3,
                n + 4
            ));
        }
        if ordered {
            // Most serious first, as every sink lists them: the order of
            // the `findings_list` index.
            sql.push_str(" ORDER BY f.sev_order, f.score_order, f.seen_order, f.id");
        }
        (sql, args)
    }

    /// Findings with their triage state, most serious first (severity,
    /// then score), then by first sighting and id.
    pub fn findings(&self, filter: &FindingFilter) -> Result<Vec<StoredFinding>> {
        self.findings_from(filter, None, 0, None)
            .map(|(page, _)| page)
    }

    /// How many findings pass `filter` (triage state included): a count
    /// over the `findings_list` index for the usual filters.
    pub fn findings_count(&self, filter: &FindingFilter) -> Result<usize> {
        let (sql, args) = Self::findings_query(filter, "COUNT(*)", None, false);
        let n: i64 = self
            .conn
            .prepare_cached(&sql)
            .and_then(|mut st| st.query_row(rusqlite::params_from_iter(args.iter()), |r| r.get(0)))
            .ctx(&self.path, "counting findings")?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// [`Store::findings_count`] with the [`Store::findings_generation`] it
    /// was counted at, both read in one snapshot, for a cache of totals
    /// that must never keep a count under a generation it does not belong
    /// to.
    pub fn findings_count_at_generation(
        &self,
        filter: &FindingFilter,
    ) -> Result<((i64, i64), usize)> {
        let p = &self.path;
        let a = "counting findings";
        let snapshot = self.conn.unchecked_transaction().ctx(p, a)?;
        let generation = self.findings_generation()?;
        let n = self.findings_count(filter)?;
        snapshot.commit().ctx(p, a)?;
        Ok((generation, n))
    }

    /// One page of [`Store::findings`] by offset: how many findings pass
    /// `filter` in all, and those from `offset`, at most `limit`.
    /// [`Store::findings_after`] pages without the offset's cost.
    pub fn findings_page(
        &self,
        filter: &FindingFilter,
        offset: usize,
        limit: usize,
    ) -> Result<(usize, Vec<StoredFinding>)> {
        let total = self.findings_count(filter)?;
        let (page, _) = self.findings_from(filter, None, offset, Some(limit))?;
        Ok((total, page))
    }

    /// At most `limit` findings of [`Store::findings`] that come after
    /// `after` (from the start without), and the cursor of the next page
    /// when there are more. The page is an index range of `findings_list`
    /// (when no hunt is asked for): its cost does not grow with the
    /// number of findings before it. Only the page's findings are decoded.
    pub fn findings_after(
        &self,
        filter: &FindingFilter,
        after: Option<&FindingsCursor>,
        limit: usize,
    ) -> Result<(Vec<StoredFinding>, Option<FindingsCursor>)> {
        self.findings_from(filter, after, 0, Some(limit))
    }

    /// The findings after `after`, skipping `offset`, at most `limit`, with
    /// the cursor of the next page when there is one.
    fn findings_from(
        &self,
        filter: &FindingFilter,
        after: Option<&FindingsCursor>,
        offset: usize,
        limit: Option<usize>,
    ) -> Result<(Vec<StoredFinding>, Option<FindingsCursor>)> {
        let p = &self.path;
        let a = "reading findings";
        // The sort (when no index gives the order, as for one hunt)
        // carries every column selected, so `finding_json` is fetched
        // afterwards, by row, for the page only (carrying it through the
        // sorter made a page out of 100,000 findings take 1.2 s).
        let (mut sql, mut args) = Self::findings_query(
            filter,
            "f.row, f.hunt_id, f.id, f.suppress_key, f.triage_status, f.decision_seq, \
             f.sev_order, f.score_order, f.seen_order",
            after,
            true,
        );
        // One more than asked tells whether a next page exists.
        let wanted = limit.map(|l| l.saturating_add(1));
        args.push(Box::new(
            wanted.map_or(-1, |w| i64::try_from(w).unwrap_or(i64::MAX)),
        ));
        args.push(Box::new(i64::try_from(offset).unwrap_or(i64::MAX)));
        sql.push_str(&format!(
            " LIMIT ?{} OFFSET ?{}",
            args.len() - 1,
            args.len()
        ));
        let mut stmt = self.conn.prepare_cached(&sql).ctx(p, a)?;
        let mut q = stmt
            .query(rusqlite::params_from_iter(args.iter()))
            .ctx(p, a)?;
        struct Row {
            row: i64,
            hunt_id: i64,
            key: String,
            status: String,
            decision_seq: Option<i64>,
            cursor: FindingsCursor,
        }
        let mut rows = Vec::new();
        while let Some(r) = q.next().ctx(p, a)? {
            rows.push(Row {
                row: r.get(0).ctx(p, a)?,
                hunt_id: r.get(1).ctx(p, a)?,
                key: r.get(3).ctx(p, a)?,
                status: r.get(4).ctx(p, a)?,
                decision_seq: r.get(5).ctx(p, a)?,
                cursor: FindingsCursor {
                    id: r.get(2).ctx(p, a)?,
                    sev_order: r.get(6).ctx(p, a)?,
                    score_order: r.get(7).ctx(p, a)?,
                    seen_order: r.get(8).ctx(p, a)?,
                },
            });
        }
        drop(q);
        drop(stmt);
        let more = limit.is_some_and(|l| rows.len() > l);
        if let Some(l) = limit {
            rows.truncate(l);
        }
        let next = if more {
            rows.last().map(|r| r.cursor.clone())
        } else {
            None
        };
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let finding = finding_at_row(&self.conn, p, r.row, || {
                format!("finding {} of hunt {}", r.cursor.id, r.hunt_id)
            })?;
            let status = TriageStatus::parse(&r.status).ok_or_else(|| {
                self.corrupt(format!(
                    "finding {} of hunt {}: unknown triage status `{}`",
                    r.cursor.id, r.hunt_id, r.status
                ))
            })?;
            let decision = match r.decision_seq {
                Some(seq) => Some(self.decision(seq)?.ok_or_else(|| {
                    self.corrupt(format!(
                        "finding {} of hunt {} names triage decision {seq}, which is missing",
                        r.cursor.id, r.hunt_id
                    ))
                })?),
                None => None,
            };
            out.push(StoredFinding {
                hunt_id: r.hunt_id,
                finding,
                key: r.key,
                status,
                decision,
                suppressed: status.suppresses(),
            });
        }
        Ok((out, next))
    }

    /// The latest copy of every finding counted by kind, severity, triage
    /// status and day, with one `GROUP BY` over an index of the list
    /// (`findings_feed_list` holds every column it needs): `/metrics` and
    /// the dashboard's overview without decoding a finding.
    ///
    /// It groups by `sev_order` and names the severity from it, because
    /// the list's indexes hold the rank, not the text (schema 10 dropped
    /// the index of the text). The two say the same: the severity column
    /// is only ever written from [`Severity::as_str`], and `sev_order` is
    /// 5 for a finding without one.
    pub fn finding_counts(&self) -> Result<Vec<FindingCount>> {
        let p = &self.path;
        let a = "counting findings by kind, severity and status";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT kind, CASE sev_order WHEN 0 THEN 'critical' WHEN 1 THEN 'high' \
                 WHEN 2 THEN 'medium' WHEN 3 THEN 'low' WHEN 4 THEN 'info' END, triage_status, \
                 substr(COALESCE(first_seen, last_seen), 1, 10) AS day, COUNT(*) \
                 FROM findings WHERE is_latest = 1 \
                 GROUP BY kind, sev_order, triage_status, day",
            )
            .ctx(p, a)?;
        let mut q = stmt.query([]).ctx(p, a)?;
        let mut out = Vec::new();
        while let Some(r) = q.next().ctx(p, a)? {
            let status: String = r.get(2).ctx(p, a)?;
            let count: i64 = r.get(4).ctx(p, a)?;
            out.push(FindingCount {
                kind: r.get(0).ctx(p, a)?,
                severity: r.get(1).ctx(p, a)?,
                status: TriageStatus::parse(&status)
                    .ok_or_else(|| self.corrupt(format!("unknown triage status `{status}`")))?,
                day: r.get(3).ctx(p, a)?,
                count: u64::try_from(count).unwrap_or(0),
            });
        }
        Ok(out)
    }
}

/// A finding's status: its own latest decision, else the latest decision
/// on its key, else new.
fn effective(
    id: &str,
    key: &str,
    by_id: &HashMap<String, TriageDecision>,
    by_key: &HashMap<String, TriageDecision>,
) -> (TriageStatus, Option<TriageDecision>) {
    let own = by_id.get(id);
    let inherited = by_key.get(key);
    match (own, inherited) {
        (Some(o), _) => (o.status, Some(o.clone())),
        (None, Some(k)) => (k.status, Some(k.clone())),
        (None, None) => (TriageStatus::New, None),
    }
}
