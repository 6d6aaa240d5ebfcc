//! Aggregating sightings into findings.
//!
//! Repeated sightings of the same indicator with the same peer, within an
//! hour of each other, become one finding with a `count` and the first few
//! records as evidence. Sightings inside and outside the validity window
//! are kept apart. Aggregators from parallel chunks merge, so a file split
//! across threads gives the same findings as one read in order.

use std::borrow::Cow;
use std::io::{self, BufRead, Write};
use std::net::IpAddr;

use hashbrown::HashMap;
use jiff::{SignedDuration, Timestamp};
use orbwatch_event::Origin;

use crate::finding::{
    Direction, Evidence, Finding, FindingKind, IocDetails, Outcome, Outcomes, ValidityWindow, fnv1a,
};
use crate::ioc::IocEngine;
use crate::ioc::severity::{Facts, assess};

/// How far apart two sightings may be and still be one finding.
pub const SESSION_GAP: SignedDuration = SignedDuration::from_hours(1);

/// Evidence records kept per finding.
pub const EVIDENCE_CAP: usize = 5;

/// Longest raw record kept as evidence (longer ones are cut and end
/// with `…`).
pub const RAW_CAP: usize = 2048;

/// One row of a feed that lists the matched value, with its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Row {
    /// The indicator id the engine gave the row.
    pub id: u32,
    pub window: ValidityWindow,
}

/// One indicator seen in one record.
pub struct Sighting<'a> {
    /// The value's first row in the feed (lowest id): the key of the
    /// finding, the same in every record and chunk.
    pub indicator: u32,
    /// Every row of the same feed listing the same value that matched
    /// (one for most feeds; CERT-FR style lists repeat a value with other
    /// dates or tags).
    pub rows: Vec<Row>,
    /// Inside the window of any of `rows`.
    pub in_window: bool,
    pub peer: Option<IpAddr>,
    pub src_ip: Option<IpAddr>,
    pub dst_ip: Option<IpAddr>,
    pub direction: Direction,
    pub matched_field: &'static str,
    pub matched_value: String,
    pub time: Option<Timestamp>,
    pub origin: &'a Origin,
    pub raw: &'a [u8],
    /// The record does not name the indicator; the decoder attributed it
    /// (e.g. from the sshd session). Kept as evidence, not counted.
    pub context: bool,
    /// What the record says happened.
    pub outcome: Outcome,
    /// Bytes an internal host sent to the indicator in this record.
    pub bytes_to_indicator: Option<u64>,
    /// The account of an auth record.
    pub user: Option<&'a str>,
}

/// A [`Sighting`] that owns what it names, for a sighting made in one
/// process and aggregated in another (stage 1 and stage 2 of `orbwatch
/// worker`: all sightings of one finding must meet in one aggregator,
/// and stage 1 workers each see only some raw partitions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedSighting {
    pub indicator: u32,
    pub rows: Vec<Row>,
    pub in_window: bool,
    pub peer: Option<IpAddr>,
    pub src_ip: Option<IpAddr>,
    pub dst_ip: Option<IpAddr>,
    pub direction: Direction,
    pub matched_field: &'static str,
    pub matched_value: String,
    pub time: Option<Timestamp>,
    pub origin: Origin,
    /// The raw record cut to [`RAW_CAP`] + 1 bytes: as much as the
    /// aggregator keeps, and one byte more to tell that it was longer
    /// (the evidence then ends with `…`, as when aggregated here).
    pub raw: Vec<u8>,
    pub context: bool,
    pub outcome: Outcome,
    pub bytes_to_indicator: Option<u64>,
    pub user: Option<String>,
}

impl OwnedSighting {
    /// Own what `s` borrows (the raw record cut, see [`OwnedSighting::raw`]).
    pub fn of(s: &Sighting<'_>) -> Self {
        Self {
            indicator: s.indicator,
            rows: s.rows.clone(),
            in_window: s.in_window,
            peer: s.peer,
            src_ip: s.src_ip,
            dst_ip: s.dst_ip,
            direction: s.direction,
            matched_field: s.matched_field,
            matched_value: s.matched_value.clone(),
            time: s.time,
            origin: s.origin.clone(),
            raw: s.raw[..s.raw.len().min(RAW_CAP + 1)].to_vec(),
            context: s.context,
            outcome: s.outcome,
            bytes_to_indicator: s.bytes_to_indicator,
            user: s.user.map(str::to_string),
        }
    }

    /// The sighting, to [`Aggregator::add`].
    pub fn as_sighting(&self) -> Sighting<'_> {
        Sighting {
            indicator: self.indicator,
            rows: self.rows.clone(),
            in_window: self.in_window,
            peer: self.peer,
            src_ip: self.src_ip,
            dst_ip: self.dst_ip,
            direction: self.direction,
            matched_field: self.matched_field,
            matched_value: self.matched_value.clone(),
            time: self.time,
            origin: &self.origin,
            raw: &self.raw,
            context: self.context,
            outcome: self.outcome,
            bytes_to_indicator: self.bytes_to_indicator,
            user: self.user.as_deref(),
        }
    }
}

#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
struct Key {
    indicator: u32,
    peer: Option<IpAddr>,
    in_window: bool,
}

/// Accounts kept per finding (the first ones seen).
const ACCOUNTS_CAP: usize = 10;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Session {
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    count: u64,
    src_ip: Option<IpAddr>,
    dst_ip: Option<IpAddr>,
    direction: Direction,
    /// A field name of the matcher's; owned only when read back from a
    /// hunt's temporary file (see [`Aggregator::write_sessions`]).
    matched_field: Cow<'static, str>,
    matched_value: String,
    evidence: Vec<Evidence>,
    outcomes: Outcomes,
    bytes_to: u64,
    /// Counted records without a time.
    untimed: u64,
    accounts: Vec<String>,
    /// Accounts of successful logins (a subset of `accounts`).
    success_accounts: Vec<String>,
    rows: Vec<Row>,
    /// Live aggregation: the time the finding's id is made from, fixed
    /// when the session opened, so a record that arrives late and is
    /// older than the first one does not change an id already alerted.
    anchor: Option<Timestamp>,
}

/// About the memory one evidence record takes in a session: its struct
/// and its strings (allocator rounding aside).
fn evidence_bytes(e: &Evidence) -> usize {
    std::mem::size_of::<Evidence>() + e.file.len() + e.format.len() + e.raw.len()
}

impl Session {
    /// About the memory a held session takes: its struct, its key and
    /// table slot, its strings and its evidence. What the live bound on
    /// sessions counts ([`Aggregator::held_bytes`]).
    fn footprint(&self) -> usize {
        std::mem::size_of::<Session>()
            + std::mem::size_of::<Key>()
            + 64
            + self.matched_value.len()
            + self.accounts.iter().map(String::len).sum::<usize>()
            + self.rows.len() * std::mem::size_of::<Row>()
            + self.evidence.iter().map(evidence_bytes).sum::<usize>()
    }
}

/// Add `a` to `list` unless present or the list is full.
fn push_account(list: &mut Vec<String>, a: &str) {
    if list.len() < ACCOUNTS_CAP && !list.iter().any(|x| x == a) {
        list.push(a.to_string());
    }
}

impl Session {
    /// Count one more record (not a context record).
    fn count_record(&mut self, s: &Sighting<'_>) {
        self.count += 1;
        self.outcomes.add(s.outcome, 1);
        self.bytes_to = self
            .bytes_to
            .saturating_add(s.bytes_to_indicator.unwrap_or(0));
        if s.time.is_none() {
            self.untimed += 1;
        }
        if let Some(t) = s.time {
            self.first = Some(self.first.map_or(t, |f| f.min(t)));
            self.last = Some(self.last.map_or(t, |l| l.max(t)));
        }
        if let Some(u) = s
            .user
            .map(|u| u.trim().trim_matches('"'))
            .filter(|u| !u.is_empty())
        {
            push_account(&mut self.accounts, u);
            if s.outcome == Outcome::AuthSuccess {
                push_account(&mut self.success_accounts, u);
            }
        }
        self.add_rows(&s.rows);
    }

    fn add_rows(&mut self, rows: &[Row]) {
        for r in rows {
            if !self.rows.iter().any(|x| x.id == r.id) {
                self.rows.push(*r);
            }
        }
    }

    /// Fold a session of the same key that touches this one.
    fn absorb(&mut self, s: Session) {
        self.count += s.count;
        self.last = self.last.max(s.last);
        self.evidence.extend(s.evidence);
        self.outcomes.merge(&s.outcomes);
        self.bytes_to = self.bytes_to.saturating_add(s.bytes_to);
        self.untimed += s.untimed;
        for a in &s.accounts {
            push_account(&mut self.accounts, a);
        }
        for a in &s.success_accounts {
            push_account(&mut self.success_accounts, a);
        }
        self.add_rows(&s.rows);
    }
}

/// Collects sightings; see the module docs.
#[derive(Debug)]
pub struct Aggregator {
    sessions: HashMap<Key, Vec<Session>>,
    /// Sessions in `sessions` (a hunt bounds them, see
    /// [`Aggregator::sessions_held`]).
    held: usize,
    /// About the memory of the sessions held ([`Session::footprint`]).
    held_bytes: usize,
    /// Live aggregation: keys changed since [`Aggregator::take_touched`]
    /// (`None` for a hunt, which reports once at the end).
    touched: Option<hashbrown::HashSet<Key>>,
    /// Evidence records kept per finding (`usize::MAX`: all of them).
    evidence_cap: usize,
    /// Stage 1 of a split topology: sightings are kept as they come, to
    /// be aggregated elsewhere ([`Aggregator::capturing`]).
    captured: Option<Vec<OwnedSighting>>,
    /// Sightings added, in and out of window.
    pub in_window: u64,
    pub out_of_window: u64,
}

fn near(s: &Session, t: Timestamp) -> bool {
    match (s.first, s.last) {
        (Some(f), Some(l)) => {
            f.checked_sub(SESSION_GAP).is_ok_and(|lo| t >= lo)
                && l.checked_add(SESSION_GAP).is_ok_and(|hi| t <= hi)
        }
        _ => false,
    }
}

impl Default for Aggregator {
    fn default() -> Self {
        Self::new()
    }
}

impl Aggregator {
    /// An aggregator keeping [`EVIDENCE_CAP`] records per finding.
    pub fn new() -> Self {
        Self::with_evidence_cap(EVIDENCE_CAP)
    }

    /// An aggregator keeping `cap` evidence records per finding; 0 keeps all.
    pub fn with_evidence_cap(cap: usize) -> Self {
        Self {
            sessions: HashMap::new(),
            held: 0,
            held_bytes: 0,
            touched: None,
            evidence_cap: if cap == 0 { usize::MAX } else { cap },
            captured: None,
            in_window: 0,
            out_of_window: 0,
        }
    }

    /// An aggregator for a live pipeline: it remembers which findings
    /// changed ([`take_touched`](Self::take_touched)) and closes sessions
    /// that went idle ([`close_idle`](Self::close_idle)), so memory holds
    /// only sessions still open. Ids are made from the time the session
    /// opened.
    pub fn live(cap: usize) -> Self {
        Self {
            touched: Some(hashbrown::HashSet::new()),
            ..Self::with_evidence_cap(cap)
        }
    }

    /// An aggregator that aggregates nothing: it keeps each sighting as
    /// it comes ([`Aggregator::take_captured`]) for another process to
    /// aggregate, and makes no finding. Why: a stage-1 worker sees only
    /// its raw partitions, so its findings would be fragments (same id,
    /// part of the count) of the one finding the records make together.
    pub fn capturing() -> Self {
        Self {
            captured: Some(Vec::new()),
            ..Self::new()
        }
    }

    /// Whether this aggregator captures instead of aggregating.
    pub fn is_capturing(&self) -> bool {
        self.captured.is_some()
    }

    /// The sightings captured since the last call (none unless
    /// [`Aggregator::capturing`]).
    pub fn take_captured(&mut self) -> Vec<OwnedSighting> {
        self.captured
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Add one sighting.
    pub fn add(&mut self, s: Sighting<'_>) {
        if s.context {
            // counted nowhere
        } else if s.in_window {
            self.in_window += 1;
        } else {
            self.out_of_window += 1;
        }
        if let Some(c) = &mut self.captured {
            c.push(OwnedSighting::of(&s));
            return;
        }
        let key = Key {
            indicator: s.indicator,
            peer: s.peer,
            in_window: s.in_window,
        };
        if let Some(t) = &mut self.touched {
            t.insert(key.clone());
        }
        let live = self.touched.is_some();
        let list = self.sessions.entry(key).or_default();
        let slot = match s.time {
            Some(t) => list.iter().position(|x| near(x, t)),
            None => list.iter().position(|x| x.first.is_none()),
        };
        let evidence = || Evidence {
            file: s.origin.file.to_string(),
            line: (s.origin.line > 0).then_some(s.origin.line),
            offset: Some(s.origin.offset),
            format: s.origin.format.to_string(),
            raw: raw_excerpt(s.raw),
            time: s.time,
            context: s.context,
        };
        match slot {
            Some(i) => {
                let sess = &mut list[i];
                if s.context {
                    if sess.evidence.len() < self.evidence_cap {
                        let e = evidence();
                        self.held_bytes += evidence_bytes(&e);
                        sess.evidence.push(e);
                    }
                    sess.add_rows(&s.rows);
                    return;
                }
                sess.count_record(&s);
                if sess.evidence.len() < self.evidence_cap {
                    let e = evidence();
                    self.held_bytes += evidence_bytes(&e);
                    sess.evidence.push(e);
                }
            }
            None => {
                let mut sess = Session {
                    first: None,
                    last: None,
                    count: 0,
                    src_ip: s.src_ip,
                    dst_ip: s.dst_ip,
                    direction: s.direction,
                    matched_field: Cow::Borrowed(s.matched_field),
                    matched_value: s.matched_value.clone(),
                    evidence: vec![evidence()],
                    outcomes: Outcomes::default(),
                    bytes_to: 0,
                    untimed: 0,
                    accounts: Vec::new(),
                    success_accounts: Vec::new(),
                    rows: Vec::new(),
                    anchor: if live { s.time } else { None },
                };
                if s.context {
                    sess.first = s.time;
                    sess.last = s.time;
                    sess.add_rows(&s.rows);
                } else {
                    sess.count_record(&s);
                }
                self.held_bytes += sess.footprint();
                list.push(sess);
                self.held += 1;
            }
        }
    }

    /// Shift evidence positions of a chunk read from the middle of a file:
    /// `lines` newlines and `bytes` bytes came before it.
    pub fn rebase(&mut self, lines: u64, bytes: u64) {
        if lines == 0 && bytes == 0 {
            return;
        }
        for list in self.sessions.values_mut() {
            for s in list {
                rebase_evidence(&mut s.evidence, lines, bytes);
            }
        }
    }

    /// Fold another aggregator (another chunk or file) into this one.
    pub fn merge(&mut self, other: Aggregator) {
        self.in_window += other.in_window;
        self.out_of_window += other.out_of_window;
        self.held += other.held;
        self.held_bytes += other.held_bytes;
        for (k, v) in other.sessions {
            self.sessions.entry(k).or_default().extend(v);
        }
    }

    /// Total sightings (records × indicators).
    pub fn sightings(&self) -> u64 {
        self.in_window + self.out_of_window
    }

    /// Turn sessions into findings, merging sessions that touch (chunks
    /// split a session in two). Sorted by first sighting, then indicator.
    pub fn finish(self, engine: &IocEngine) -> Vec<Finding> {
        let mut out = Vec::new();
        self.finish_each(engine, |f| out.push(f));
        sort_findings(&mut out);
        out
    }

    /// As [`finish`](Self::finish), handing each finding to `each` as it
    /// is made, in no particular order (put them in output order with
    /// [`OutputOrder`]). A hunt holds its IOC findings on disk through
    /// the behaviour replay: made one at a time, they never all stand in
    /// memory at once (115,995 findings of the 3 GB bench hunt took about
    /// 200 MB as one vector).
    pub fn finish_each(self, engine: &IocEngine, mut each: impl FnMut(Finding)) {
        let cap = self.evidence_cap;
        for (key, list) in self.sessions {
            key_findings(&key, list, engine, cap, &mut each);
        }
    }

    /// Sessions held now (one per indicator, peer, in or out of window,
    /// and hour-apart stretch): what a hunt's sweep counts to decide when
    /// to write them out.
    pub fn sessions_held(&self) -> usize {
        self.held
    }

    /// Write every session held to `w`, in key order, one key a line, and
    /// hold none any more (the sighting counts stay). Evidence positions
    /// are written as they are: [`finish_merged`] rebases them as it reads
    /// them back. Returns how many sessions were written.
    ///
    /// Why: a hunt holds a session per indicator, peer and hour-apart
    /// stretch until its sweep ends, with up to [`EVIDENCE_CAP`] records
    /// of evidence each (about 1.3 KB). That grew with the input, 35,668
    /// findings for 1 GB of the bench corpus; months of logs with a
    /// noisy feed would not fit. Written out in sorted runs, they are
    /// merged back key by key at the end.
    pub fn write_sessions(&mut self, w: &mut impl Write) -> io::Result<usize> {
        let mut all: Vec<(&Key, &Vec<Session>)> = self.sessions.iter().collect();
        all.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for entry in &all {
            serde_json::to_writer(&mut *w, entry)?;
            w.write_all(b"\n")?;
        }
        w.flush()?;
        let n = self.held;
        // Only once all is written: a failed write loses nothing.
        self.sessions = HashMap::new();
        self.held = 0;
        self.held_bytes = 0;
        Ok(n)
    }

    /// Take back sessions [`write_sessions`](Self::write_sessions) wrote
    /// to `bytes` (when they could not go further, to a full disk).
    pub fn read_sessions(&mut self, bytes: &[u8]) {
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            if let Ok((key, list)) = serde_json::from_slice::<(Key, Vec<Session>)>(line) {
                self.held += list.len();
                self.held_bytes += list.iter().map(Session::footprint).sum::<usize>();
                self.sessions.entry(key).or_default().extend(list);
            }
        }
    }

    /// Live: the findings whose sessions changed since the last call, as
    /// they stand now (same ids as before, larger counts).
    pub fn take_touched(&mut self, engine: &IocEngine) -> Vec<Finding> {
        let Some(touched) = self.touched.as_mut() else {
            return Vec::new();
        };
        let keys: Vec<Key> = touched.drain().collect();
        let mut out = Vec::new();
        for key in keys {
            let Some(list) = self.sessions.get(&key) else {
                continue;
            };
            out.extend(
                list.iter()
                    .filter_map(|s| session_finding(&key, s.clone(), engine, self.evidence_cap)),
            );
        }
        sort_findings(&mut out);
        out
    }

    /// Live: close the sessions whose last sighting is more than
    /// [`SESSION_GAP`] before `now` (event time) and return their final
    /// findings; a later sighting of the same key opens a new finding, as
    /// in a hunt. Untimed sessions stay open.
    pub fn close_idle(&mut self, now: Timestamp, engine: &IocEngine) -> Vec<Finding> {
        let Ok(before) = now.checked_sub(SESSION_GAP) else {
            return Vec::new();
        };
        self.close_where(engine, |_, s| s.last.is_some_and(|l| l < before))
    }

    /// Close the sessions `closes` picks and return their final findings,
    /// in output order.
    fn close_where(
        &mut self,
        engine: &IocEngine,
        closes: impl Fn(&Key, &Session) -> bool,
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        let cap = self.evidence_cap;
        self.sessions.retain(|key, list| {
            let (gone, open): (Vec<Session>, Vec<Session>) = std::mem::take(list)
                .into_iter()
                .partition(|s| closes(key, s));
            out.extend(
                gone.into_iter()
                    .filter_map(|s| session_finding(key, s, engine, cap)),
            );
            *list = open;
            !list.is_empty()
        });
        self.recount();
        sort_findings(&mut out);
        out
    }

    /// Count the sessions held and their memory again, after removals.
    fn recount(&mut self) {
        self.held = self.sessions.values().map(Vec::len).sum();
        self.held_bytes = self
            .sessions
            .values()
            .flatten()
            .map(Session::footprint)
            .sum();
    }

    /// Live: close sessions, the least recently active first (an untimed
    /// one before any timed one, then by key, so the same ones go on
    /// every run), until those open take at most `keep_bytes`
    /// ([`held_bytes`](Self::held_bytes)), and return their final
    /// findings, as [`close_idle`](Self::close_idle) does. A later
    /// sighting of the same key opens a new finding.
    ///
    /// Why: sessions close an hour of event time after their last
    /// sighting, so their number follows what an hour brings, and a
    /// flood of records naming a listed address beside forged peers
    /// (each a key of its own) grew a daemon without bound: 400,000 of
    /// them took 1 GB. Their findings were handed on as they changed;
    /// closing one early only splits what would have followed. Bytes,
    /// not sessions, because a session's evidence is up to five records
    /// of up to 2 KB each.
    pub fn close_least_recent(&mut self, keep_bytes: usize, engine: &IocEngine) -> Vec<Finding> {
        let mut excess = self.held_bytes.saturating_sub(keep_bytes);
        if excess == 0 {
            return Vec::new();
        }
        let mut ranked: Vec<(Option<Timestamp>, &Key, usize)> = self
            .sessions
            .iter()
            .flat_map(|(k, list)| list.iter().map(move |s| (s.last, k, s.footprint())))
            .collect();
        ranked.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let mut bar = None;
        for &(last, key, bytes) in &ranked {
            bar = Some((last, key.clone()));
            excess = excess.saturating_sub(bytes);
            if excess == 0 {
                break;
            }
        }
        let Some((last, key)) = bar else {
            return Vec::new();
        };
        self.close_where(engine, |k, s| (s.last, k) <= (last, &key))
    }

    /// About the memory the sessions held take (their strings and
    /// evidence; see `Session::footprint`), kept as they change.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Live: findings changed since the last
    /// [`take_touched`](Self::take_touched) (what it would make now).
    pub fn touched_len(&self) -> usize {
        self.touched.as_ref().map_or(0, |t| t.len())
    }

    /// Sessions open now (live memory).
    pub fn open_sessions(&self) -> usize {
        self.sessions.values().map(Vec::len).sum()
    }
}

/// The findings of one key's sessions: sessions that touch (a chunk
/// boundary, a run written out of memory split one) are merged first.
fn key_findings(
    key: &Key,
    mut list: Vec<Session>,
    engine: &IocEngine,
    cap: usize,
    each: &mut impl FnMut(Finding),
) {
    // Ties of the first time (two chunks' halves of a session within one
    // second) by where their first record is, not by the order the
    // sessions came in, which differs when some were written out of
    // memory: absorbing decides which accounts a finding lists.
    if list.len() > 1 {
        list.sort_by_cached_key(|s| {
            let place = s
                .evidence
                .iter()
                .min_by(|a, b| Evidence::in_order(a, b))
                .map(|e| (e.time, e.file.clone(), e.line, e.offset));
            (s.first, place)
        });
    }
    let mut merged: Vec<Session> = Vec::new();
    for s in list {
        if let Some(prev) = merged.last_mut() {
            let touches = match (prev.last, s.first) {
                (Some(l), Some(f)) => l.checked_add(SESSION_GAP).is_ok_and(|hi| f <= hi),
                (None, None) => true,
                _ => false,
            };
            if touches {
                prev.absorb(s);
                continue;
            }
        }
        merged.push(s);
    }
    merged
        .into_iter()
        .filter_map(|s| session_finding(key, s, engine, cap))
        .for_each(each);
}

/// Sessions a hunt wrote out of memory ([`Aggregator::write_sessions`]),
/// to be read back with their evidence positions moved by `lines` and
/// `bytes` (where the run's chunk starts in its file).
pub struct SessionRun {
    pub reader: Box<dyn BufRead + Send>,
    pub lines: u64,
    pub bytes: u64,
}

impl SessionRun {
    /// The next key and its sessions, rebased (`None` at the end).
    fn next(&mut self, line: &mut Vec<u8>) -> Result<Option<(Key, Vec<Session>)>, String> {
        line.clear();
        match self.reader.read_until(b'\n', line) {
            Ok(0) => Ok(None),
            Ok(_) => {
                let (key, mut list): (Key, Vec<Session>) =
                    serde_json::from_slice(line).map_err(|e| e.to_string())?;
                for s in &mut list {
                    rebase_evidence(&mut s.evidence, self.lines, self.bytes);
                }
                Ok(Some((key, list)))
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

fn rebase_evidence(evidence: &mut [Evidence], lines: u64, bytes: u64) {
    for e in evidence {
        if let Some(l) = &mut e.line {
            *l += lines;
        }
        if let Some(o) = &mut e.offset {
            *o += bytes;
        }
    }
}

/// The findings of the sessions held in `memory` and of those written out
/// to `runs`, handed to `each` key by key (in no output order, as
/// [`Aggregator::finish_each`]). A key's sessions from every run and from
/// memory are merged before its findings are made, so the findings are
/// those of one aggregator that held everything. A run that cannot be
/// read back is an error naming it (by its place in `runs`).
pub fn finish_merged(
    memory: Aggregator,
    runs: Vec<SessionRun>,
    engine: &IocEngine,
    mut each: impl FnMut(Finding),
) -> Result<(), String> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    if runs.is_empty() {
        memory.finish_each(engine, each);
        return Ok(());
    }
    let cap = memory.evidence_cap;
    // Memory's sessions, sorted from largest key to smallest: they pop in
    // key order.
    let mut held: Vec<(Key, Vec<Session>)> = memory.sessions.into_iter().collect();
    held.sort_unstable_by(|a, b| b.0.cmp(&a.0));
    let mut runs = runs;
    let mut line = Vec::new();
    // Each run's next key, smallest first; its sessions wait in `heads`
    // (thousands of runs over months of logs: a heap, not a scan).
    let mut heads: Vec<Vec<Session>> = Vec::with_capacity(runs.len());
    let mut next: BinaryHeap<Reverse<(Key, usize)>> = BinaryHeap::with_capacity(runs.len());
    for (i, r) in runs.iter_mut().enumerate() {
        match r.next(&mut line).map_err(|e| run_error(i, &e))? {
            Some((k, l)) => {
                heads.push(l);
                next.push(Reverse((k, i)));
            }
            None => heads.push(Vec::new()),
        }
    }
    loop {
        let smallest = match (next.peek(), held.last()) {
            (Some(Reverse((a, _))), Some((b, _))) => a.min(b).clone(),
            (Some(Reverse((a, _))), None) => a.clone(),
            (None, Some((b, _))) => b.clone(),
            (None, None) => return Ok(()),
        };
        let mut list = Vec::new();
        if held.last().is_some_and(|(k, _)| *k == smallest)
            && let Some((_, l)) = held.pop()
        {
            list.extend(l);
        }
        while let Some(Reverse((k, i))) = next.peek()
            && *k == smallest
        {
            let i = *i;
            next.pop();
            list.append(&mut heads[i]);
            if let Some((k, l)) = runs[i].next(&mut line).map_err(|e| run_error(i, &e))? {
                heads[i] = l;
                next.push(Reverse((k, i)));
            }
        }
        key_findings(&smallest, list, engine, cap, &mut each);
    }
}

fn run_error(i: usize, e: &str) -> String {
    format!(
        "reading back run {} of the IOC sessions written out of memory failed: {e}",
        i + 1
    )
}

/// Put IOC findings in output order: first seen, then feed and
/// indicator, then id (see [`OutputOrder`]).
pub fn sort_findings(out: &mut [Finding]) {
    out.sort_by(|a, b| {
        let ka = a.ioc.as_ref().map(|i| (&i.feed, &i.indicator));
        let kb = b.ioc.as_ref().map(|i| (&i.feed, &i.indicator));
        (a.first_seen, ka, &a.id).cmp(&(b.first_seen, kb, &b.id))
    });
}

/// Where an IOC finding goes in the output, kept apart from the finding:
/// it orders as [`sort_findings`] does (first seen, then feed and
/// indicator, then id), so findings held elsewhere (a hunt's temporary
/// file) can be put in order by these keys alone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OutputOrder {
    first_seen: Option<Timestamp>,
    ioc: Option<(String, String)>,
    id: String,
}

impl OutputOrder {
    pub fn of(f: &Finding) -> Self {
        Self {
            first_seen: f.first_seen,
            ioc: f
                .ioc
                .as_ref()
                .map(|i| (i.feed.clone(), i.indicator.clone())),
            id: f.id.clone(),
        }
    }
}

/// The finding of one session (`None` when the indicator is unknown to
/// `engine`).
fn session_finding(
    key: &Key,
    mut s: Session,
    engine: &IocEngine,
    evidence_cap: usize,
) -> Option<Finding> {
    let rec = engine.describe(key.indicator, &s.matched_value)?;
    s.rows.sort_by_key(|r| r.id);
    // Every row of the value: tags of all, the highest
    // confidence, the span of the windows.
    let mut tags = rec.meta.tags.clone();
    let mut confidence = rec.meta.confidence;
    for r in s.rows.iter().filter(|r| r.id != key.indicator) {
        if let Some(other) = engine.describe(r.id, &s.matched_value) {
            merge_tags(&mut tags, &other.meta.tags);
            confidence = confidence.max(other.meta.confidence);
        }
    }
    let valid_from = if s.rows.iter().any(|r| r.window.from.is_none()) {
        None
    } else {
        s.rows.iter().filter_map(|r| r.window.from).min()
    };
    let valid_until = if s.rows.iter().any(|r| r.window.until.is_none()) {
        None
    } else {
        s.rows.iter().filter_map(|r| r.window.until).max()
    };
    let mut windows: Vec<ValidityWindow> = s.rows.iter().map(|r| r.window).collect();
    windows.sort();
    windows.dedup();
    if s.rows.len() < 2 {
        windows.clear();
    }
    s.evidence.sort_by(Evidence::in_order);
    s.evidence.truncate(evidence_cap);
    let first = s
        .anchor
        .or(s.first)
        .map(|t| t.to_string())
        .unwrap_or_default();
    let peer = key.peer.map(|p| p.to_string()).unwrap_or_default();
    let id = fnv1a(&[
        "ioc_match",
        &rec.meta.feed,
        &rec.value,
        &peer,
        &first,
        if key.in_window { "in" } else { "out" },
        &s.matched_value,
    ]);
    let verdict = assess(&Facts {
        outcomes: &s.outcomes,
        bytes_to_indicator: s.bytes_to,
        in_window: key.in_window,
        untimed: s.untimed,
        count: s.count,
        window_from: valid_from,
        window_until: valid_until,
        windows: &windows,
        confidence,
        accounts: &s.success_accounts,
        indicator: &rec.value,
        feed: &rec.meta.feed,
        rows: s.rows.len().max(1),
    });
    // Sorted: sessions merged from chunks meet accounts in any order.
    s.accounts.sort();
    let accounts = s.accounts;
    Some(Finding {
        id,
        kind: FindingKind::IocMatch,
        first_seen: s.first,
        last_seen: s.last,
        count: s.count,
        src_ip: s.src_ip,
        dst_ip: s.dst_ip,
        ioc: Some(IocDetails {
            indicator: rec.value.clone(),
            indicator_type: rec.meta.type_name.to_string(),
            feed: rec.meta.feed.clone(),
            direction: s.direction,
            in_validity_window: key.in_window,
            confidence,
            valid_from,
            valid_until,
            validity_windows: windows,
            outcomes: Some(s.outcomes),
            bytes_to_indicator: (s.bytes_to > 0).then_some(s.bytes_to),
            matched_value: s.matched_value,
            matched_field: s.matched_field.to_string(),
            peer: key.peer,
            tags,
            indicator_ref: rec.record_id.map(str::to_string),
            feed_version: engine.feed_version(&rec.meta.feed),
        }),
        targets: Vec::new(),
        accounts,
        severity: Some(verdict.severity),
        score: Some(verdict.score),
        reasons: verdict.reasons,
        sources: Vec::new(),
        details: None,
        evidence_total: s.count + s.evidence.iter().filter(|e| e.context).count() as u64,
        evidence: s.evidence,
    })
}

/// Add `other`'s tags to `tags` (each list without duplicates; the first
/// TLP wins, since rows of one feed rarely disagree on it).
fn merge_tags(tags: &mut orbwatch_intel::Tags, other: &orbwatch_intel::Tags) {
    for (mine, theirs) in [
        (&mut tags.actors, &other.actors),
        (&mut tags.campaigns, &other.campaigns),
        (&mut tags.roles, &other.roles),
        (&mut tags.other, &other.other),
    ] {
        for t in theirs {
            orbwatch_intel::Tags::push_unique(mine, t.clone());
        }
    }
    if tags.tlp.is_none() {
        tags.tlp.clone_from(&other.tlp);
    }
}

fn raw_excerpt(raw: &[u8]) -> String {
    let cut = &raw[..raw.len().min(RAW_CAP)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if raw.len() > RAW_CAP {
        s.push('…');
    }
    s
}
