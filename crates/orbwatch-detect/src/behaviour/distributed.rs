//! `distributed_bruteforce`: the ORB pattern. Many sources, each failing
//! only a few times — often once a day per account from each router —
//! against the same service and the same accounts.
//!
//! No single source crosses a per-source threshold, so the detector keeps
//! a small record per (source, service) and per (service, account), and
//! decides membership from what ties sources together. A low-rate source
//! (never over `max_daily_failures` in a UTC day, never a `brute_force`,
//! never a success) earns one point for each of:
//! - **persistence**: failures on `persistent_days` distinct days or more;
//! - **shared accounts**: at least half of the accounts it tried were also
//!   tried by `shared_account_sources` low-rate sources, and get less than
//!   half of their failures from brute-forcing sources (accounts everyone
//!   hammers, like `root`, tie nobody together);
//! - **valid accounts**: an account it tried logged in successfully from
//!   elsewhere, and is shared (the campaign knows real account names;
//!   background scanners guess `root` and `admin`);
//! - **cluster**: its /24 holds `cluster_sources` low-rate sources.
//!
//! A source with `min_points` points joins the campaign on its service; a
//! campaign of `min_sources` members is a finding, which lists the members
//! and summarises them by /24, /16 and ASN. So a single source below every
//! per-source threshold is caught through its cluster or its accounts.
//!
//! Failures on a service with no gap longer than `idle_secs` form one run;
//! sources idle that long wait compacted until the run goes quiet, then
//! the run is judged and its state dropped.
//!
//! The detector is split the way the engine partitions work: the
//! per-source records ([`AuthRecords`]) live in the partition that owns
//! the source, and the accounts, runs and judging ([`Campaigns`]) read
//! the compact [`CrossEvent`]s of all partitions merged into one order.

use std::collections::BTreeMap;
use std::net::IpAddr;

use hashbrown::{HashMap, HashSet};

use super::key_table::{KeyTable, pack, prefetch_value, unpack};
use super::observe::HeldIds;
use super::success_after_failures::{cluster_key, cluster_name};
use super::{
    DistributedConfig, Draft, NodeId, Obs, ObsKind, Tables, capped, human_span, mix, ms_of,
    new_finding, secs, severity_of,
};
use crate::enrich::Enricher;
use crate::finding::FindingKind;

/// What one (source, service) did in one episode: 60 bytes with its key.
#[derive(Debug, Clone, Copy, Default)]
pub struct Source {
    /// Seconds since 2000 (see `secs`).
    first: u32,
    last: u32,
    failures: u32,
    last_day: u16,
    days: u16,
    day_failures: u16,
    max_day_failures: u16,
    successes: u16,
    accounts: [u32; 3],
    n_accounts: u8,
    brute: bool,
    /// The last failure named no existing account.
    last_invalid: bool,
    /// Account of the last failure (for `brute_force`'s first tier).
    last_account: u32,
    /// Failures within the success-after-failures lookback, and the first
    /// of them (seconds since 2000).
    recent_first: u32,
    recent_count: u16,
    /// Bloom bits of every account tried, to count each (source, account)
    /// once in the account table.
    seen: u32,
}

/// What the cross-source stage ([`Campaigns`]) reads of an idle
/// record: all it needs to judge membership, so that a split topology
/// can send it between processes (see `orbwatch_engine::summary_wire`).
/// Accounts are ids into the sender's [`Tables`]; a receiver resolves
/// them by name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdleSummary {
    /// Seconds since 2000 of the first and last failure.
    pub first: u32,
    pub last: u32,
    pub failures: u32,
    pub days: u16,
    pub max_day_failures: u16,
    pub successes: u16,
    /// The first (up to 3) accounts tried; `n_accounts` of them are set.
    pub accounts: [u32; 3],
    pub n_accounts: u8,
    pub brute: bool,
}

impl IdleSummary {
    /// Mark the account names it holds.
    pub fn mark_held(&self, m: &mut HeldIds) {
        let n = usize::from(self.n_accounts).min(self.accounts.len());
        self.accounts[..n].iter().for_each(|&a| m.mark_name(a));
    }
}

impl Source {
    /// What [`Campaigns`] reads of this record.
    pub fn summary(&self) -> IdleSummary {
        IdleSummary {
            first: self.first,
            last: self.last,
            failures: self.failures,
            days: self.days,
            max_day_failures: self.max_day_failures,
            successes: self.successes,
            accounts: self.accounts,
            n_accounts: self.n_accounts.min(3),
            brute: self.brute,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Account {
    sources: u32,
    failures: u32,
    successes: u32,
    /// Failures on it from sources over the brute-force thresholds.
    brute_failures: u32,
    /// Second (since 2000) of its latest failure or success: the oldest
    /// go first when there are more than `max_accounts`.
    last: u32,
}

impl Account {
    /// Tried by this many low-rate sources, and not everyone's target: an
    /// account that brute-forcers hammer (`root`, `admin`) gets half or
    /// more of its failures from them, and ties nobody together.
    fn shared(&self, min_sources: u32) -> bool {
        self.sources >= min_sources && self.brute_failures * 2 < self.failures
    }
}

/// Bytes per tracked (source, service): key and state.
pub const STATE_BYTES: usize = std::mem::size_of::<u64>() + std::mem::size_of::<Source>();

#[derive(Debug, Clone, Copy, Default)]
struct Member {
    src: NodeId,
    first: i64,
    last: i64,
    failures: u32,
    days: u16,
    points: [bool; 4],
}

/// Failures on one service with no gap longer than `idle_secs`: one
/// candidate campaign. Sources idle that long wait here, compacted, until
/// the whole run goes quiet and is judged.
#[derive(Debug, Default)]
struct Run {
    /// Second (since 2000) of the run's latest failure.
    last: u32,
    idle: Vec<(NodeId, IdleSummary)>,
}

/// How many sources ahead of the one being judged its record is asked
/// for (see [`Campaigns::judge`]).
const JUDGE_LOOKAHEAD: usize = 8;

/// The moment (ms) a record whose latest failure was in second `last`
/// (since 2000) has been idle for `idle` ms.
fn idle_at(last: u32, idle: i64) -> i64 {
    ms_of(last.saturating_add(1)).saturating_add(idle)
}

/// What the cross-source stage ([`Campaigns`]) needs from the per-source
/// stage ([`AuthRecords`]). Every partition emits its events in
/// [`CrossEvent::key`] order, so the merge of all partitions is one
/// order that does not depend on how sources were partitioned.
#[derive(Debug, Clone, Copy)]
pub enum CrossEvent {
    /// An auth observation and what its (source, service) record says.
    Auth {
        time: i64,
        evidence: u64,
        kind: ObsKind,
        src: NodeId,
        svc: u16,
        /// Account id (0: none).
        user: u32,
        /// The source is over the brute-force thresholds on this service.
        brute: bool,
        /// First failure on this account in the record's episode.
        first_try: bool,
    },
    /// A low-rate (source, service) record whose episode ended at `at`
    /// (ms): `idle_secs` without a failure, or the end of input. Only
    /// what the judge reads of the record travels: a hunt sends millions,
    /// and its cross-source stage keeps up to `max_idle_sources` of them
    /// per run (32 bytes each, not the record's 60).
    Idle {
        at: i64,
        src: NodeId,
        svc: u16,
        source: IdleSummary,
    },
}

impl CrossEvent {
    /// Mark the source and account names it holds.
    pub fn mark_held(&self, m: &mut HeldIds) {
        match self {
            CrossEvent::Auth { user, src, .. } => {
                m.mark_name(*user);
                m.mark_node(*src);
            }
            CrossEvent::Idle { source, src, .. } => {
                source.mark_held(m);
                m.mark_node(*src);
            }
        }
    }

    /// The merge order: time, then idle records before observations of
    /// the same millisecond, then the observation's replay order (or the
    /// record's key).
    pub fn key(&self) -> (i64, u8, u64, u64, u64) {
        match *self {
            CrossEvent::Idle { at, src, svc, .. } => (at, 0, src, u64::from(svc), 0),
            CrossEvent::Auth {
                time,
                evidence,
                kind,
                src,
                ..
            } => (time, 1, evidence, kind as u64, src),
        }
    }
}

/// The per-(source, service) side of `distributed_bruteforce`, which also
/// serves `brute_force` (the previous failure) and
/// `success_after_failures` (recent failures). Its state is keyed by
/// source, so it runs in the partition that owns the source; what ties
/// sources together goes to [`Campaigns`] as [`CrossEvent`]s.
///
/// An episode ends when the key has been `idle_secs` without a failure.
/// That is decided from the key's own failures only (never from when
/// other keys happen to be swept), so the answers are the same however
/// sources are partitioned.
pub struct AuthRecords<'a> {
    cfg: &'a DistributedConfig,
    /// Keyed by (source, service) packed (see [`key_table::pack`]).
    sources: KeyTable<Source>,
    /// (second of its first failure, packed key) of each new record, in
    /// time order: finds idle keys without scanning `sources`. One entry
    /// per record, not one per failure: a source failing every second for
    /// the 14 days of `idle_secs` once queued 1.2 million entries, which a
    /// daemon's memory showed as a steady creep (about 10 bytes a message
    /// in the soak).
    expiry: std::collections::VecDeque<(u32, u64)>,
    /// Records still failing when their entry came due, queued again at
    /// their latest failure (few: the long-lived sources). `expire` takes
    /// seconds in order from both queues.
    requeued: std::collections::BinaryHeap<std::cmp::Reverse<(u32, u64)>>,
    /// Records ending in the same second (kept to reuse its memory).
    due: Vec<((NodeId, u16), IdleSummary)>,
    /// Keys queued for the same second (kept to reuse its memory).
    keys: Vec<u64>,
    /// The success-after-failures lookback (ms): this table also keeps
    /// each key's recent failures for that detector.
    lookback: i64,
    /// Entries taken off the front of `expiry` so far, and entries whose
    /// record has been prefetched (both counted from the start): the
    /// records `expire` will look at next are asked for ahead of time.
    popped: u64,
    prefetched: u64,
    /// Records ended early, over `max_records`.
    ended_early: u64,
}

/// How many entries ahead of the front of the expiry queue records are
/// prefetched.
const EXPIRY_AHEAD: u64 = 12;

impl<'a> AuthRecords<'a> {
    /// A table with no records yet; `lookback_secs` is the
    /// success-after-failures lookback its records keep.
    pub fn new(cfg: &'a DistributedConfig, lookback_secs: i64) -> Self {
        Self {
            cfg,
            sources: KeyTable::with_capacity(1 << 16),
            expiry: std::collections::VecDeque::new(),
            requeued: std::collections::BinaryHeap::new(),
            due: Vec::new(),
            keys: Vec::new(),
            lookback: lookback_secs * 1000,
            popped: 0,
            prefetched: 0,
            ended_early: 0,
        }
    }

    /// (source, service) keys tracked right now.
    pub fn tracked(&self) -> usize {
        self.sources.len()
    }

    /// Call `f` with the source of every record (once per service).
    pub fn each_source(&self, mut f: impl FnMut(NodeId)) {
        self.sources.iter().for_each(|(k, _)| f(unpack(k).0));
    }

    /// Mark the sources and account names its records hold. (The
    /// expiry queues' keys of records ended early are not marked: an
    /// entry is only a reminder to look, and a record of the same key
    /// made since is ended by it only if idle, as for any entry.)
    pub fn mark_held(&self, m: &mut HeldIds) {
        for (k, s) in self.sources.iter() {
            m.mark_node(unpack(k).0);
            let n = usize::from(s.n_accounts).min(s.accounts.len());
            s.accounts[..n].iter().for_each(|&a| m.mark_name(a));
            m.mark_name(s.last_account);
        }
        for ((src, _), s) in &self.due {
            m.mark_node(*src);
            s.mark_held(m);
        }
    }

    /// Feed one auth observation; `brute` says the brute-force detector
    /// has this (source, service) over its thresholds. Records that went
    /// idle before it, and then the observation itself, are appended to
    /// `out`.
    pub fn observe(&mut self, o: &Obs, brute: bool, t: &Tables, out: &mut Vec<CrossEvent>) {
        self.expire(o.time, out);
        let key = pack(o.src, o.svc);
        let user = o.aux as u32;
        let mut ev = CrossEvent::Auth {
            time: o.time,
            evidence: o.evidence,
            kind: o.kind,
            src: o.src,
            svc: o.svc,
            user,
            brute,
            first_try: false,
        };
        if o.kind == ObsKind::AuthSuccess {
            if let Some(s) = self.sources.get_mut(key) {
                s.successes = s.successes.saturating_add(1);
            }
            out.push(ev);
            return;
        }
        let day = (secs(o.time) / 86_400) as u16;
        if self.sources.len() as u64 >= self.cfg.max_records.max(16)
            && self.sources.get(key).is_none()
        {
            self.end_least_recent(o.time, out);
        }
        let s = self.sources.get_or_insert_with(key, || Source {
            first: secs(o.time),
            last: secs(o.time),
            last_day: day,
            ..Default::default()
        });
        if s.recent_count == 0 || o.time - ms_of(s.last) > self.lookback {
            s.recent_first = secs(o.time);
            s.recent_count = 0;
        }
        s.recent_count = s.recent_count.saturating_add(1);
        s.last_account = user;
        s.last_invalid = o.flags & super::observe::FLAG_INVALID_USER != 0;
        if s.failures == 0 {
            self.expiry.push_back((secs(o.time), key));
        }
        s.last = s.last.max(secs(o.time));
        s.failures = s.failures.saturating_add(1);
        s.brute |= brute;
        if s.days == 0 || day != s.last_day {
            s.days = s.days.saturating_add(1);
            s.last_day = day;
            s.day_failures = 0;
        }
        s.day_failures = s.day_failures.saturating_add(1);
        s.max_day_failures = s.max_day_failures.max(s.day_failures);
        if user != 0 {
            // The name's hash, not its id: ids depend on merge order.
            let bit = 1u32 << (mix(t.name_key(user)) & 31);
            let first_time = s.seen & bit == 0;
            s.seen |= bit;
            let n = s.n_accounts as usize;
            if n < s.accounts.len() && !s.accounts[..n].contains(&user) {
                s.accounts[n] = user;
                s.n_accounts += 1;
            }
            if let CrossEvent::Auth { first_try, .. } = &mut ev {
                *first_try = first_time;
            }
        }
        out.push(ev);
        self.prefetch_expiry();
    }

    /// End the records idle at `now` (ms) as event time passes, also
    /// without auth events (a live pipeline's watermark).
    pub fn advance(&mut self, now: i64, out: &mut Vec<CrossEvent>) {
        self.expire(now, out);
    }

    /// Start loading the record of (`src`, `svc`) into cache: the
    /// replay asks for it some observations before it comes.
    #[inline]
    pub fn prefetch(&self, src: NodeId, svc: u16) {
        self.sources.prefetch(pack(src, svc));
    }

    /// Start loading the records of the next entries of the expiry queue
    /// (each once): `expire` then finds them in cache.
    fn prefetch_expiry(&mut self) {
        self.prefetched = self.prefetched.max(self.popped);
        let end = self.popped + EXPIRY_AHEAD.min(self.expiry.len() as u64);
        while self.prefetched < end {
            if let Some(&(_, k)) = self.expiry.get((self.prefetched - self.popped) as usize) {
                self.sources.prefetch(k);
            }
            self.prefetched += 1;
        }
    }

    /// End records idle at `now` (ms): those whose last failure is
    /// `idle_secs` old. Low-rate ones go to `out`, in (time, key) order.
    fn expire(&mut self, now: i64, out: &mut Vec<CrossEvent>) {
        let idle = self.cfg.idle_secs * 1000;
        while let Some(last) = self.oldest_entry() {
            let at = idle_at(last, idle);
            if at > now {
                break;
            }
            self.end_second(last);
            self.hand_on_due(at, out);
        }
    }

    /// The second of the oldest entry of the expiry queues.
    fn oldest_entry(&self) -> Option<u32> {
        let first = self.expiry.front().map(|e| e.0);
        let again = self.requeued.peek().map(|e| e.0.0);
        first.into_iter().chain(again).min()
    }

    /// End the records whose latest failure was in second `last` (the
    /// oldest entry of the queues) into `due`; those that failed again
    /// since are queued again at their latest failure. Returns how many
    /// ended.
    fn end_second(&mut self, last: u32) -> usize {
        // Every key queued for this second (one hash lookup each): it
        // ends if its latest failure was in this second, else it is
        // queued again at its latest failure.
        let mut keys = std::mem::take(&mut self.keys);
        while let Some(&(l, k)) = self.expiry.front() {
            if l != last {
                break;
            }
            self.expiry.pop_front();
            self.popped += 1;
            keys.push(k);
        }
        while let Some(&std::cmp::Reverse((l, k))) = self.requeued.peek() {
            if l != last {
                break;
            }
            self.requeued.pop();
            keys.push(k);
        }
        let before = self.due.len();
        // The records of keys due now were last touched an idle time
        // ago and are cold, and a second holds many of them (more
        // than `prefetch_expiry` asked for): each lookup waited on
        // memory, 6 % of a 30M-message watch's samples. Asking for a
        // few keys ahead lets those loads overlap; the removal's
        // backward shift still reads the slots after them cold.
        for &k in keys.iter().take(EXPIRY_AHEAD as usize) {
            self.sources.prefetch(k);
        }
        for i in 0..keys.len() {
            if let Some(&ahead) = keys.get(i + EXPIRY_AHEAD as usize) {
                self.sources.prefetch(ahead);
            }
            let k = keys[i];
            match self.sources.remove_if(k, |s| s.last == last) {
                Some(s) => self.due.push((unpack(k), s.summary())),
                // Failed again since: due at its latest failure.
                None => {
                    if let Some(s) = self.sources.get(k) {
                        self.requeued.push(std::cmp::Reverse((s.last, k)));
                    }
                }
            }
        }
        keys.clear();
        self.keys = keys;
        self.due.len() - before
    }

    /// Hand the records in `due` on as ended at `at` (ms), the low-rate
    /// ones, in key order.
    fn hand_on_due(&mut self, at: i64, out: &mut Vec<CrossEvent>) {
        let mut due = std::mem::take(&mut self.due);
        due.sort_unstable_by_key(|(k, _)| *k);
        for (k, s) in due.drain(..) {
            if low_rate(self.cfg, &s) {
                out.push(CrossEvent::Idle {
                    at,
                    src: k.0,
                    svc: k.1,
                    source: s,
                });
            }
        }
        self.due = due;
    }

    /// More records than `max_records`: end the least recently active
    /// sixteenth of them now, at `now` (ms), as if they had gone idle
    /// (each failing again starts a new record). Counted
    /// ([`AuthRecords::ended_early`]) and logged.
    ///
    /// Why: a record lives `idle_secs` (14 days) after its source's last
    /// failure, and a flood of failed logins each from a new address
    /// (2,000,000 of them: 950 MB) grew a daemon for as long as it went
    /// on. Least recently active first: an entry at the front of the
    /// queues whose record failed since is queued again at its latest
    /// failure, as when it expires, so the long-lived sources (the
    /// persistent ones a campaign is recognised by) stay.
    fn end_least_recent(&mut self, now: i64, out: &mut Vec<CrossEvent>) {
        let cap = self.cfg.max_records.max(16) as usize;
        let target = cap / 16;
        let mut ended = 0;
        while ended < target {
            let Some(last) = self.oldest_entry() else {
                break;
            };
            ended += self.end_second(last);
        }
        self.hand_on_due(now, out);
        if self.ended_early == 0 {
            tracing::warn!(
                "more than {cap} (source, service) records for distributed spraying (distributed.max_records): the {ended} least recently active end now instead of after distributed.idle_secs, and so on each time the limit is passed"
            );
        }
        self.ended_early += ended as u64;
    }

    /// Records ended early, over `max_records` (see `end_least_recent`).
    pub fn ended_early(&self) -> u64 {
        self.ended_early
    }

    /// End of input: every record still open, in (time, key) order.
    ///
    /// Written straight into `out` and sorted there, and the tables given
    /// back at once: the records still open are `idle_secs` (14 days by
    /// default) worth of sources. A first list of them, copied into `out` afterwards, took
    /// 28 MB beside `out`'s 20 MB at the end of a 3 GB hunt (heaptrack),
    /// the moment of that hunt's peak heap.
    pub fn finish(&mut self, out: &mut Vec<CrossEvent>) {
        let idle = self.cfg.idle_secs * 1000;
        let cfg = self.cfg;
        let start = out.len();
        // At most one event per record: no copy as `out` grows.
        out.reserve(self.sources.len());
        out.extend(self.sources.drain().filter_map(|(k, s)| {
            let source = s.summary();
            let (src, svc) = unpack(k);
            low_rate(cfg, &source).then(|| CrossEvent::Idle {
                at: idle_at(source.last, idle),
                src,
                svc,
                source,
            })
        }));
        self.sources = KeyTable::with_capacity(0);
        self.popped += self.expiry.len() as u64;
        self.expiry = std::collections::VecDeque::new();
        self.requeued = std::collections::BinaryHeap::new();
        // The order of (time, source, service): each record's key is
        // unique, so the unstable sort gives one order.
        out[start..].sort_unstable_by_key(CrossEvent::key);
    }

    /// The previous failure of a key: (time in ms, account, invalid user).
    /// The brute-force detector's first tier reads it instead of keeping
    /// its own copy.
    pub fn previous_failure(&self, src: NodeId, svc: u16) -> Option<(i64, u32, bool)> {
        self.sources
            .get(pack(src, svc))
            .filter(|s| s.failures > 0)
            .map(|s| (ms_of(s.last), s.last_account, s.last_invalid))
    }

    /// Failures of a key within the lookback before `now` (ms): (count,
    /// first failure in ms).
    pub fn recent_failures(&self, src: NodeId, svc: u16, now: i64) -> (u32, i64) {
        match self.sources.get(pack(src, svc)) {
            Some(s) if s.recent_count > 0 && now - ms_of(s.last) <= self.lookback => {
                (u32::from(s.recent_count), ms_of(s.recent_first))
            }
            _ => (0, now),
        }
    }

    /// Forget a key's recent failures (a success after them was reported).
    pub fn reset_recent(&mut self, src: NodeId, svc: u16) {
        if let Some(s) = self.sources.get_mut(pack(src, svc)) {
            s.recent_count = 0;
        }
    }
}

/// A source that can be a campaign member: never a brute force, never a
/// success, never more than `max_daily_failures` in a day.
fn low_rate(cfg: &DistributedConfig, s: &IdleSummary) -> bool {
    !s.brute
        && s.successes == 0
        && s.failures > 0
        && u32::from(s.max_day_failures) <= cfg.max_daily_failures
}

/// The cross-source side of `distributed_bruteforce`: accounts per
/// service, runs of failures per service, and the judging of campaigns.
/// It reads the [`CrossEvent`]s of every partition merged into one
/// order; its state is per service and per account, not per source,
/// except for the idle members a run keeps until it goes quiet.
pub struct Campaigns<'a> {
    cfg: &'a DistributedConfig,
    /// Per (service, account): at most `max_accounts` (see
    /// [`Campaigns::forget_accounts`]).
    accounts: HashMap<(u16, u32), Account>,
    /// Accounts forgotten over `max_accounts` so far.
    forgotten: u64,
    runs: BTreeMap<u16, Run>,
    /// No run is quiet before this time (ms): a lower bound, so the runs
    /// are looked at only when it passes.
    next_quiet: i64,
    out: Vec<Draft>,
    /// The judge's (source, place) pairs, kept between parts: a part
    /// has up to a million, and a fresh vector faulted its pages in again
    /// each time.
    order: Vec<(NodeId, u32)>,
    /// The judge's members, kept between parts for the same reason (40
    /// bytes each: their pages faulted in afresh at every part were a
    /// fifth of a 1 GB hunt's page faults).
    members: Vec<Member>,
}

impl<'a> Campaigns<'a> {
    pub fn new(cfg: &'a DistributedConfig) -> Self {
        Self {
            cfg,
            accounts: HashMap::new(),
            forgotten: 0,
            runs: BTreeMap::new(),
            next_quiet: i64::MAX,
            out: Vec::new(),
            order: Vec::new(),
            members: Vec::new(),
        }
    }

    /// Take one event; events must come in [`CrossEvent::key`] order.
    pub fn event(&mut self, e: &CrossEvent, t: &Tables, enricher: &Enricher) {
        match *e {
            CrossEvent::Idle {
                src, svc, source, ..
            } => {
                // At most u32::MAX: the judge numbers a part's sources
                // with u32.
                let cap = self.cfg.max_idle_sources.clamp(1, u64::from(u32::MAX)) as usize;
                let run = self.runs.entry(svc).or_default();
                run.idle.push((src, source));
                if run.idle.len() >= cap {
                    // A campaign that never pauses: judge its members so
                    // far as one part, keeping what it knows of accounts.
                    //
                    // The part's buffer, emptied, takes the next part: a
                    // part holds a million sources, and growing a fresh
                    // vector to that size for each part cost page faults
                    // and copies (7 to 17 % of a 1 GB hunt's time).
                    let idle = std::mem::take(&mut run.idle);
                    let emptied = self.judge(svc, idle, t, &HashSet::new(), enricher, false);
                    if let Some(run) = self.runs.get_mut(&svc) {
                        run.idle = emptied;
                    }
                }
            }
            CrossEvent::Auth {
                time,
                kind,
                svc,
                user,
                brute,
                first_try,
                ..
            } => {
                if time >= self.next_quiet {
                    self.judge_quiet(time, t, enricher);
                }
                if kind == ObsKind::AuthSuccess {
                    if user != 0 {
                        let a = self.accounts.entry((svc, user)).or_default();
                        a.successes += 1;
                        a.last = a.last.max(secs(time));
                        self.bound_accounts(t);
                    }
                    return;
                }
                let idle = self.cfg.idle_secs * 1000;
                let run = self.runs.entry(svc).or_default();
                run.last = run.last.max(secs(time));
                self.next_quiet = self.next_quiet.min(idle_at(run.last, idle));
                if user != 0 {
                    let a = self.accounts.entry((svc, user)).or_default();
                    a.failures = a.failures.saturating_add(1);
                    if brute {
                        a.brute_failures = a.brute_failures.saturating_add(1);
                    }
                    if first_try {
                        a.sources = a.sources.saturating_add(1);
                    }
                    a.last = a.last.max(secs(time));
                    self.bound_accounts(t);
                }
            }
        }
    }

    /// Forget accounts when there are more than `max_accounts`.
    #[inline]
    fn bound_accounts(&mut self, t: &Tables) {
        if self.accounts.len() as u64 > self.cfg.max_accounts.max(16) {
            self.forget_accounts(t);
        }
    }

    /// Forget a quarter of `max_accounts`: the accounts least likely to
    /// make a source a member, first those no one logged in to, then
    /// those tried by the fewest sources, then the longest untouched.
    /// A source that tried one of them later counts it from nothing.
    ///
    /// Why: a campaign that never pauses keeps its accounts as long as
    /// it goes on, and a spray of random names (one new account per
    /// failed login) grew a daemon's memory without end. Which accounts
    /// go depends on names and times only (never on ids or hash order),
    /// so a hunt and a live pipeline forget the same ones. Counted
    /// ([`Campaigns::accounts_forgotten`]) and logged, never silent.
    fn forget_accounts(&mut self, t: &Tables) {
        let cap = self.cfg.max_accounts.max(16) as usize;
        let excess = self.accounts.len().saturating_sub(cap - cap / 4);
        if excess == 0 {
            return;
        }
        // Ranked by (logged in to, sources, last touched) packed in 64
        // bits, the smallest first; ties at the cut by the name's and the
        // service's keys. Keys, not ids: ids (service ids too) depend on
        // the order a hunt's units were merged in. The keys are looked up
        // only for the tie (reading every name's key was most of this).
        let primary = |a: &Account| {
            u64::from(a.successes > 0) << 63
                | u64::from(a.sources.min(u32::MAX >> 1)) << 32
                | u64::from(a.last)
        };
        let mut ranked: Vec<(u64, (u16, u32))> = self
            .accounts
            .iter()
            .map(|(&key, a)| (primary(a), key))
            .collect();
        ranked.select_nth_unstable_by_key(excess - 1, |r| r.0);
        let cut = ranked[excess - 1].0;
        // Below the cut: all go. At the cut: those with the smallest keys.
        let below = ranked[..excess].iter().filter(|r| r.0 < cut).count();
        let mut tied: Vec<(u64, u64, (u16, u32))> = ranked
            .iter()
            .filter(|r| r.0 == cut)
            .map(|&(_, (svc, user))| {
                let svc_key = crate::finding::fnv1a_64(t.service(svc).bytes());
                (t.name_key(user), svc_key, (svc, user))
            })
            .collect();
        tied.sort_unstable();
        for (_, key) in ranked[..excess].iter().filter(|r| r.0 < cut) {
            self.accounts.remove(key);
        }
        for (_, _, key) in &tied[..excess - below] {
            self.accounts.remove(key);
        }
        if self.forgotten == 0 {
            tracing::warn!(
                "more than {cap} accounts tried at once (distributed.max_accounts): the {excess} least shared and oldest are forgotten, and so on each time the limit is passed; a source that tries one again counts it from nothing"
            );
        }
        self.forgotten += excess as u64;
    }

    /// Accounts forgotten over `max_accounts` so far.
    pub fn accounts_forgotten(&self) -> u64 {
        self.forgotten
    }

    /// Call `f` with every idle source its runs keep.
    pub fn each_waiting_source(&self, mut f: impl FnMut(NodeId)) {
        for run in self.runs.values() {
            run.idle.iter().for_each(|(src, _)| f(*src));
        }
    }

    /// Mark the account names it holds: its accounts, and the idle
    /// sources its runs keep with theirs, and the sources of campaigns
    /// not taken yet.
    pub fn mark_held(&self, m: &mut HeldIds) {
        self.accounts
            .keys()
            .for_each(|&(_, user)| m.mark_name(user));
        for run in self.runs.values() {
            for (src, s) in &run.idle {
                m.mark_node(*src);
                s.mark_held(m);
            }
        }
        self.out.iter().for_each(|d| d.mark_held(m));
    }

    /// No campaign waits to be taken.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// Campaigns reported so far (by [`advance`](Self::advance)), taken
    /// out: a live pipeline hands them on as they are judged.
    pub fn take_drafts(&mut self) -> Vec<Draft> {
        std::mem::take(&mut self.out)
    }

    /// Judge the runs quiet at `now` (ms): called when every partition's
    /// events up to `now` have been taken (a live pipeline's watermark).
    pub fn advance(&mut self, now: i64, t: &Tables, enricher: &Enricher) {
        self.judge_quiet(now, t, enricher);
    }

    /// Judge the runs that have been quiet for `idle_secs` at `now`:
    /// every member has gone idle by then, and arrived before `now` in
    /// the merged order.
    fn judge_quiet(&mut self, now: i64, t: &Tables, enricher: &Enricher) {
        let idle = self.cfg.idle_secs * 1000;
        let quiet: Vec<u16> = self
            .runs
            .iter()
            .filter(|(_, r)| idle_at(r.last, idle) <= now)
            .map(|(k, _)| *k)
            .collect();
        for svc in quiet {
            if let Some(run) = self.runs.remove(&svc) {
                self.judge(svc, run.idle, t, &HashSet::new(), enricher, true);
            }
        }
        self.next_quiet = self
            .runs
            .values()
            .map(|r| idle_at(r.last, idle))
            .min()
            .unwrap_or(i64::MAX);
    }

    /// End of input: judge every run and report campaigns. `flagged` are
    /// sources with a brute-force or spray finding: they are explained
    /// already.
    pub fn finish(
        &mut self,
        t: &Tables,
        flagged: &HashSet<NodeId>,
        enricher: &Enricher,
    ) -> Vec<Draft> {
        let runs = std::mem::take(&mut self.runs);
        for (svc, run) in runs {
            self.judge(svc, run.idle, t, flagged, enricher, true);
        }
        std::mem::take(&mut self.out)
    }

    /// Decide the members among one run's idle sources and report the
    /// campaign if large enough. Members are decided in source order:
    /// then clusters are met in order and the report's addresses come
    /// sorted. Returns `all`, emptied, for reuse.
    fn judge(
        &mut self,
        svc: u16,
        mut all: Vec<(NodeId, IdleSummary)>,
        t: &Tables,
        flagged: &HashSet<NodeId>,
        enricher: &Enricher,
        end_of_run: bool,
    ) -> Vec<(NodeId, IdleSummary)> {
        // The candidates as (source, place in `all`), filtered, then
        // sorted: a part of a campaign that never pauses holds a million
        // sources (`max_idle_sources`), and sorting these 16-byte pairs
        // instead of the 72-byte records themselves (which was 13 % of
        // the merging thread of a 1 GB hunt) leaves the records where
        // they are, read through the pairs. Which copy of a source that
        // went idle twice comes first does not matter: the report counts,
        // sums and sorts its members.
        let mut order = std::mem::take(&mut self.order);
        order.clear();
        order.extend(
            all.iter()
                .enumerate()
                .filter(|(_, (src, s))| low_rate(self.cfg, s) && !flagged.contains(src))
                .map(|(i, (src, _))| (*src, i as u32)),
        );
        order.sort_unstable_by_key(|&(src, _)| src);
        // Low-rate sources per cluster (/24 as a u32, IPv6 /64 hashed).
        // IPv4 ids are addresses, so in source order each /24's sources
        // lie side by side: a cluster's size is the length of its run,
        // counted when the judge enters it, with no vector and no sort.
        // Otherwise (IPv6 or named sources among them) the keys are
        // sorted and counted in runs, and each source's cluster is found
        // by stepping forward through them.
        let cluster_of = |src: NodeId| t.ip(src).map(cluster_key);
        let side_by_side = order
            .windows(2)
            .all(|w| cluster_of(w[0].0) <= cluster_of(w[1].0));
        let sizes: Vec<(u64, u32)> = if side_by_side {
            Vec::new()
        } else {
            let mut clusters: Vec<u64> = order
                .iter()
                .filter_map(|&(src, _)| cluster_of(src))
                .collect();
            clusters.sort_unstable();
            clusters
                .chunk_by(|a, b| a == b)
                .map(|run| (run[0], run.len() as u32))
                .collect()
        };
        let mut cursor = 0usize;
        let mut sorted_cluster_size = |k: u64| {
            if sizes.get(cursor).is_none_or(|c| c.0 != k) {
                cursor = if sizes.get(cursor + 1).is_some_and(|c| c.0 == k) {
                    cursor + 1
                } else {
                    sizes.partition_point(|c| c.0 < k)
                };
            }
            sizes.get(cursor).filter(|c| c.0 == k).map_or(0, |c| c.1)
        };
        // The run of the cluster the judge is in: where it ends, its size.
        let (mut run_end, mut run_size) = (0usize, 0u32);
        // Sized for every source at once: a part has up to a million,
        // and growing by doubling copied the members and faulted their
        // pages in again at each step (untouched capacity costs no
        // memory).
        let mut members = std::mem::take(&mut self.members);
        members.clear();
        members.reserve(order.len());
        for (n, &(src, at)) in order.iter().enumerate() {
            // The records are read out of place: the one a few sources
            // on is asked for now, so that it is in cache when its turn
            // comes.
            if let Some(&(_, ahead)) = order.get(n + JUDGE_LOOKAHEAD) {
                prefetch_value(all.as_ptr().wrapping_add(ahead as usize));
            }
            let s = &all[at as usize].1;
            let Some(ip) = t.ip(src) else { continue };
            let accts = &s.accounts[..s.n_accounts as usize];
            // One lookup per account: how many are shared, and whether a
            // shared one logs in successfully elsewhere.
            let (mut shared_n, mut valid) = (0usize, false);
            for a in accts {
                if let Some(x) = self.accounts.get(&(svc, *a))
                    && x.shared(self.cfg.shared_account_sources)
                {
                    shared_n += 1;
                    valid |= x.successes > 0;
                }
            }
            let persistent = u32::from(s.days) >= self.cfg.persistent_days;
            let shared = !accts.is_empty() && shared_n * 2 >= accts.len();
            let k = cluster_key(ip);
            let size = if side_by_side {
                if n >= run_end {
                    let run = order[n..]
                        .iter()
                        .take_while(|(s, _)| cluster_of(*s) == Some(k))
                        .count();
                    (run_end, run_size) = (n + run, run as u32);
                }
                run_size
            } else {
                sorted_cluster_size(k)
            };
            let cluster = size >= self.cfg.cluster_sources;
            let points = [persistent, shared, valid, cluster];
            if points.iter().filter(|p| **p).count() as u32 >= self.cfg.min_points {
                members.push(Member {
                    src,
                    first: ms_of(s.first),
                    last: ms_of(s.last) + 999,
                    failures: s.failures,
                    days: s.days,
                    points,
                });
            }
        }
        self.order = order;
        if members.len() as u32 >= self.cfg.min_sources {
            let d = self.report(svc, &members, t, enricher);
            self.out.push(d);
        }
        self.members = members;
        if end_of_run {
            self.accounts.retain(|(s, _), _| *s != svc);
        }
        all.clear();
        all
    }

    fn report(&self, svc: u16, m: &[Member], t: &Tables, enricher: &Enricher) -> Draft {
        let service = t.service(svc);
        let first = m.iter().map(|x| x.first).min().unwrap_or(0);
        let last = m.iter().map(|x| x.last).max().unwrap_or(0);
        let failures: u64 = m.iter().map(|x| u64::from(x.failures)).sum();
        let max_per_source = m.iter().map(|x| x.failures).max().unwrap_or(0);
        // The most active member; ties go to the one that started first,
        // then to the lowest address: never to the order in which files
        // were given or read.
        let top = m
            .iter()
            .max_by_key(|x| {
                (
                    x.failures,
                    std::cmp::Reverse(x.first),
                    std::cmp::Reverse(t.ip(x.src)),
                )
            })
            .and_then(|x| t.ip(x.src));
        let mut ips: Vec<IpAddr> = Vec::with_capacity(m.len());
        ips.extend(m.iter().filter_map(|x| t.ip(x.src)));
        ips.sort_unstable();
        let mut f = new_finding(
            FindingKind::DistributedBruteforce,
            &[service, &first.to_string()],
            first,
            last,
            failures,
            top,
        );
        // Accounts the members share, most-tried first.
        let mut accts: Vec<(&str, u32)> = self
            .accounts
            .iter()
            .filter(|((s, _), a)| *s == svc && a.shared(self.cfg.shared_account_sources))
            .map(|((_, u), a)| (t.name(*u), a.sources))
            .collect();
        accts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let n_shared = accts.len();
        let svc_words = if service.is_empty() {
            "one service".to_string()
        } else {
            service.to_string()
        };
        f.reasons.push(format!(
            "{} sources failed to log in to {svc_words} {failures} times in {}, none more than {}",
            m.len(),
            human_span(last - first),
            plural(u64::from(max_per_source), "time")
        ));
        let count = |i: usize| m.iter().filter(|x| x.points[i]).count();
        let persistent = count(0);
        if persistent > 0 {
            let max_days = m.iter().map(|x| x.days).max().unwrap_or(0);
            f.reasons.push(format!(
                "{persistent} of them came back on {} or more days (up to {max_days}), at most {} failures a day each",
                self.cfg.persistent_days, self.cfg.max_daily_failures
            ));
        }
        if n_shared > 0 {
            f.reasons.push(format!(
                "{} tried by {} or more of these sources",
                if n_shared == 1 {
                    "1 account was".to_string()
                } else {
                    format!("{n_shared} accounts were each")
                },
                self.cfg.shared_account_sources
            ));
        }
        let valid = count(2);
        if valid > 0 {
            f.reasons.push(format!(
                "{valid} sources tried accounts that log in successfully elsewhere: the attacker knows real account names"
            ));
        }
        // Cluster summaries. Counted by numeric prefix and named only for
        // the few shown (ties in prefix order): a campaign can have a
        // million members.
        // The 20 largest /24s (of which the reasons name the first 3)
        // and /16s.
        let (distinct24, top24) = prefix_summary(&ips, cluster_key, 20);
        let (distinct16, top16) = prefix_summary(&ips, prefix16_key, 20);
        let mut by_asn: HashMap<String, u32> = HashMap::new();
        if !enricher.is_empty() {
            for ip in &ips {
                if let Some(info) = enricher.lookup(*ip) {
                    *by_asn.entry(info.label()).or_default() += 1;
                }
            }
        }
        let named = |top: Vec<PrefixCount>, name: fn(IpAddr) -> String| {
            top.into_iter()
                .map(|((_, ip), c)| (name(ip), c))
                .collect::<Vec<_>>()
        };
        let top24 = named(top24, cluster_name);
        let top_n = |v: Vec<(String, u32)>| -> Vec<serde_json::Value> {
            v.into_iter()
                .map(|(k, n)| serde_json::json!({"prefix": k, "sources": n}))
                .collect()
        };
        let clustered = count(3);
        if clustered > 0 {
            let shown: Vec<String> = top24
                .iter()
                .take(3)
                .map(|(k, n)| format!("{k} ({n})"))
                .collect();
            f.reasons.push(format!(
                "{clustered} sources share a /24 with other sources of the campaign: {}",
                shown.join(", ")
            ));
        }
        f.reasons.push(format!(
            "spread over {} and {}{}",
            plural(distinct24 as u64, "/24 network"),
            plural(distinct16 as u64, "/16 network"),
            if by_asn.is_empty() {
                String::new()
            } else {
                format!(" in {}", plural(by_asn.len() as u64, "ASN"))
            }
        ));
        let score = (60.0 + (m.len() as f64).ln() * 4.0)
            .round()
            .clamp(0.0, 95.0) as u8;
        f.score = Some(score);
        f.severity = Some(severity_of(score));
        f.targets = if service.is_empty() {
            Vec::new()
        } else {
            vec![service.to_string()]
        };
        f.accounts = capped(accts.iter().take(20).map(|(a, _)| a.to_string()), 20);
        // A campaign can have millions of members (a year of internet
        // background noise on one sshd): list the most active ones, count
        // them all.
        let cap = self.cfg.max_listed_sources as usize;
        let listed: Vec<&Member> = if cap > 0 && m.len() > cap {
            let mut v: Vec<&Member> = m.iter().collect();
            v.select_nth_unstable_by_key(cap - 1, |x| {
                (std::cmp::Reverse(x.failures), x.first, x.src)
            });
            v.truncate(cap);
            f.reasons.push(format!(
                "the {cap} most active members are listed in sources; {} more are counted in details.members",
                m.len() - cap
            ));
            v
        } else {
            m.iter().collect()
        };
        if listed.len() < m.len() {
            ips = listed.iter().filter_map(|x| t.ip(x.src)).collect();
            ips.sort_unstable();
        }
        f.sources = ips;
        f.details = Some(serde_json::json!({
            "service": service,
            "members": m.len(),
            "failures": failures,
            "max_failures_per_source": max_per_source,
            "points": {
                "persistent": persistent,
                "shared_accounts": count(1),
                "valid_accounts": valid,
                "cluster": clustered,
            },
            "shared_accounts": n_shared,
            "clusters": {
                "by_24": top_n(top24),
                "by_16": top_n(named(top16, prefix16)),
                "by_asn": top_n(largest(by_asn.iter().map(|(k, n)| (k.clone(), *n)), 20)),
                "distinct_24": distinct24,
                "distinct_16": distinct16,
                "distinct_asn": by_asn.len(),
            },
        }));
        if by_asn.is_empty()
            && let Some(obj) = f.details.as_mut().and_then(|d| d.as_object_mut())
        {
            obj.insert(
                "asn_note".into(),
                serde_json::Value::String(
                    "no ASN database given (--asn-db): clusters by ASN skipped".into(),
                ),
            );
        }
        Draft {
            finding: f,
            srcs: listed.iter().map(|x| x.src).collect(),
            kinds: vec![ObsKind::AuthFailure],
            svc: Some(svc),
            from: first,
            to: last,
        }
    }
}

/// The `n` entries with the most sources, most first, ties by key (keys
/// are distinct): one pass keeping the best `n` in a heap, without
/// copying or reordering the entries (a campaign can have a million
/// members, and its report asks for the largest prefixes three times).
fn largest<K: Ord>(entries: impl Iterator<Item = (K, u32)>, n: usize) -> Vec<(K, u32)> {
    /// Orders entries worst last: fewer sources, then the greater key.
    struct Ranked<K>((K, u32));
    impl<K: Ord> Ord for Ranked<K> {
        fn cmp(&self, other: &Self) -> std::cmp::Ordering {
            let (a, b) = (&self.0, &other.0);
            b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0))
        }
    }
    impl<K: Ord> PartialOrd for Ranked<K> {
        fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }
    impl<K: Ord> PartialEq for Ranked<K> {
        fn eq(&self, other: &Self) -> bool {
            self.cmp(other).is_eq()
        }
    }
    impl<K: Ord> Eq for Ranked<K> {}
    if n == 0 {
        return Vec::new();
    }
    // A max-heap: its top is the worst entry kept.
    let mut best: std::collections::BinaryHeap<Ranked<K>> =
        std::collections::BinaryHeap::with_capacity(n + 1);
    for e in entries {
        let e = Ranked(e);
        if best.len() < n {
            best.push(e);
        } else if best.peek().is_some_and(|worst| e < *worst) {
            best.pop();
            best.push(e);
        }
    }
    best.into_sorted_vec().into_iter().map(|r| r.0).collect()
}

/// A prefix (its key and its lowest address) and how many addresses it
/// holds.
type PrefixCount = ((u64, IpAddr), u32);

/// How many prefixes (`key`) `ips` fall in, and the `n` with the most
/// addresses (see [`largest`]), each named by its lowest address. `ips`
/// must be sorted. Their keys then come in order too for IPv4 (and IPv6
/// as long as no key goes back), and the runs are counted in one pass
/// with no copy and no table; otherwise the (key, address) pairs are
/// sorted first. Only the counts are kept: a campaign can have a million
/// members in as many /24s, and the list of every run was 32 MB written
/// for each part of such a campaign.
fn prefix_summary(ips: &[IpAddr], key: fn(IpAddr) -> u64, n: usize) -> (usize, Vec<PrefixCount>) {
    debug_assert!(ips.is_sorted(), "prefix_summary needs sorted addresses");
    let mut distinct = 0usize;
    let top = if ips.windows(2).all(|w| key(w[0]) <= key(w[1])) {
        let runs = ips.chunk_by(|a, b| key(*a) == key(*b)).map(|run| {
            distinct += 1;
            ((key(run[0]), run[0]), run.len() as u32)
        });
        largest(runs, n)
    } else {
        let runs = prefix_counts_by_sorting(ips, key);
        distinct = runs.len();
        largest(runs.into_iter(), n)
    };
    (distinct, top)
}

/// Addresses per prefix (`key`), each prefix named by its lowest
/// address, in key order, from any order of `ips`: [`prefix_summary`]
/// for keys that do not come in order.
fn prefix_counts_by_sorting(ips: &[IpAddr], key: fn(IpAddr) -> u64) -> Vec<PrefixCount> {
    let mut v: Vec<(u64, IpAddr)> = ips.iter().map(|ip| (key(*ip), *ip)).collect();
    v.sort_unstable();
    v.chunk_by(|a, b| a.0 == b.0)
        .map(|run| (run[0], run.len() as u32))
        .collect()
}

/// The /16 of an IPv4 address, the /48 of an IPv6 one, as a number.
fn prefix16_key(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => u64::from(u32::from(v4) & 0xffff_0000),
        IpAddr::V6(v6) => ((u128::from(v6) >> 80) as u64) | 1 << 63,
    }
}

/// "1 time", "3 times".
fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The /16 of an IPv4 address, the /48 of an IPv6 one.
pub fn prefix16(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.0.0/16", o[0], o[1])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::observe::{NONE, Obs, ObsKind, Tables};

    /// 2021-01-01 in Unix seconds: records keep seconds since 2000.
    const BASE: i64 = 1_609_459_200;

    /// Over `max_accounts`, the accounts least shared go first, and among
    /// equals the same ones whatever their ids (which a hunt's merge
    /// order decides): a hunt and a live pipeline keep the same.
    #[test]
    fn accounts_forgotten_over_the_limit_do_not_depend_on_ids() {
        let cfg = DistributedConfig {
            max_accounts: 16,
            ..DistributedConfig::default()
        };
        let names: Vec<String> = (0..40).map(|i| format!("acct{i}")).collect();
        let kept = |order: &[usize]| {
            let mut t = Tables::new();
            // Services and names interned in this order.
            for &i in order {
                t.names.intern_str(&names[i]);
                t.service_id(Some(["ssh", "vpn"][i % 2]));
            }
            let mut c = Campaigns::new(&cfg);
            let e = Enricher::none();
            let ssh = t.service_id(Some("ssh"));
            let vpn = t.service_id(Some("vpn"));
            // Three accounts tried by three sources, one logged in to,
            // the rest once each, all in the same second.
            for (n, name) in names.iter().enumerate() {
                let svc = [ssh, vpn][n % 2];
                let user = t.names.intern_str(name);
                let tries = if n < 3 { 3 } else { 1 };
                for k in 0..tries {
                    let ev = CrossEvent::Auth {
                        time: BASE * 1000,
                        evidence: (n * 10 + k) as u64,
                        kind: ObsKind::AuthFailure,
                        src: 0x0a00_0000 + k as u64,
                        svc,
                        user,
                        brute: false,
                        first_try: true,
                    };
                    c.event(&ev, &t, &e);
                }
                if n == 3 {
                    let ev = CrossEvent::Auth {
                        time: BASE * 1000,
                        evidence: 1 << 40,
                        kind: ObsKind::AuthSuccess,
                        src: 0x0a00_00ff,
                        svc,
                        user,
                        brute: false,
                        first_try: false,
                    };
                    c.event(&ev, &t, &e);
                }
            }
            let mut kept: Vec<String> = c
                .accounts
                .keys()
                .map(|&(svc, user)| format!("{}/{}", t.service(svc), t.name(user)))
                .collect();
            kept.sort();
            (kept, c.accounts_forgotten())
        };
        let forward: Vec<usize> = (0..40).collect();
        let backward: Vec<usize> = (0..40).rev().collect();
        let (a, forgotten) = kept(&forward);
        assert_eq!((a.clone(), forgotten), kept(&backward));
        assert!(a.len() <= 16, "{a:?}");
        assert_eq!(forgotten as usize + a.len(), 40);
        // The shared ones and the one logged in to are kept.
        for must in ["ssh/acct0", "vpn/acct1", "ssh/acct2", "vpn/acct3"] {
            assert!(a.iter().any(|x| x == must), "{must} kept: {a:?}");
        }
    }

    /// A cluster point counts the low-rate sources of a /24 (IPv6: /64)
    /// whether the judge finds them side by side in source order (IPv4
    /// alone: ids are addresses) or has to sort cluster keys (IPv6 ids
    /// are interned in arrival order, here not address order).
    #[test]
    fn cluster_points_count_the_same_with_sources_side_by_side_or_not() {
        // One point makes a member: only the cluster point is possible.
        let cfg = DistributedConfig {
            min_points: 1,
            min_sources: 1,
            ..DistributedConfig::default()
        };
        let ips = |v: &[&str]| -> Vec<IpAddr> { v.iter().map(|a| a.parse().unwrap()).collect() };
        // Arrival order is not address order.
        let v4 = ips(&[
            "10.0.1.2", "10.0.0.3", "10.0.2.9", "10.0.0.1", "10.0.1.1", "10.0.0.2", "9.9.9.9",
        ]);
        let v6 = ips(&["2001:db8::3", "2001:db8:1::1", "2001:db8::1", "2001:db8::2"]);
        let want_v4 = ips(&["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
        let want_v6 = ips(&["2001:db8::1", "2001:db8::2", "2001:db8::3"]);
        let record = IdleSummary {
            failures: 1,
            max_day_failures: 1,
            days: 1,
            ..IdleSummary::default()
        };
        for (sources, want) in [
            (v4.clone(), want_v4.clone()),
            ([v6, v4].concat(), [want_v4, want_v6].concat()),
        ] {
            let mut t = Tables::new();
            let mut c = Campaigns::new(&cfg);
            for ip in sources {
                let src = t.ip_id(ip);
                let e = CrossEvent::Idle {
                    at: 0,
                    src,
                    svc: 1,
                    source: record,
                };
                c.event(&e, &t, &Enricher::none());
            }
            let drafts = c.finish(&t, &HashSet::new(), &Enricher::none());
            assert_eq!(drafts.len(), 1);
            assert_eq!(drafts[0].finding.sources, want);
        }
    }

    /// Shared and valid account points: an account tried first by three
    /// low-rate sources is shared, and valid once it logs in from
    /// elsewhere; a source trying only an unshared one earns neither.
    #[test]
    fn shared_and_valid_account_points_come_from_the_account_table() {
        // Two points make a member; persistence and clusters are out of
        // reach.
        let cfg = DistributedConfig {
            min_points: 2,
            min_sources: 1,
            persistent_days: 100,
            cluster_sources: 100,
            ..DistributedConfig::default()
        };
        let (shared, lone) = (5u32, 6u32);
        let auth = |time: i64, kind: ObsKind, src: NodeId, user: u32| CrossEvent::Auth {
            time,
            evidence: time as u64,
            kind,
            src,
            svc: 1,
            user,
            brute: false,
            first_try: true,
        };
        let idle = |src: NodeId, user: u32| CrossEvent::Idle {
            at: 10,
            src,
            svc: 1,
            source: IdleSummary {
                failures: 1,
                max_day_failures: 1,
                days: 1,
                accounts: [user, 0, 0],
                n_accounts: 1,
                ..IdleSummary::default()
            },
        };
        let mut t = Tables::new();
        let ip = |t: &mut Tables, a: &str| t.ip_id(a.parse().unwrap());
        let members = [
            ip(&mut t, "10.0.0.1"),
            ip(&mut t, "10.1.0.1"),
            ip(&mut t, "10.2.0.1"),
        ];
        let other = ip(&mut t, "10.3.0.1");
        let elsewhere = ip(&mut t, "10.9.9.9");
        for success in [true, false] {
            let mut c = Campaigns::new(&cfg);
            let e = Enricher::none();
            for (i, &src) in members.iter().enumerate() {
                c.event(&auth(i as i64, ObsKind::AuthFailure, src, shared), &t, &e);
            }
            c.event(&auth(4, ObsKind::AuthFailure, other, lone), &t, &e);
            if success {
                c.event(&auth(5, ObsKind::AuthSuccess, elsewhere, shared), &t, &e);
            }
            for &src in &members {
                c.event(&idle(src, shared), &t, &e);
            }
            c.event(&idle(other, lone), &t, &e);
            let drafts = c.finish(&t, &HashSet::new(), &e);
            if !success {
                // A shared account alone is one point.
                assert!(drafts.is_empty());
                continue;
            }
            assert_eq!(drafts.len(), 1);
            let f = &drafts[0].finding;
            let want: Vec<IpAddr> = members.iter().filter_map(|m| t.ip(*m)).collect();
            assert_eq!(f.sources, want);
            let points = &f.details.as_ref().unwrap()["points"];
            assert_eq!(points["shared_accounts"], 3);
            assert_eq!(points["valid_accounts"], 3);
        }
    }

    /// The selection and counting a report does over a million members,
    /// against the plain versions (sort the pairs and count; copy, sort
    /// and cut): the same entries in the same order, for IPv4 and IPv6
    /// addresses and for a key that does not follow address order.
    #[test]
    fn prefix_summaries_equal_a_plain_count() {
        fn plain_largest<K: Ord + Clone>(v: &[(K, u32)], n: usize) -> Vec<(K, u32)> {
            let mut v = v.to_vec();
            v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            v.truncate(n);
            v
        }
        fn reversed_bits(ip: IpAddr) -> u64 {
            match ip {
                IpAddr::V4(a) => u64::from(u32::from(a).reverse_bits()),
                IpAddr::V6(a) => (u128::from(a) as u64).reverse_bits(),
            }
        }
        // A small generator, fixed seed: clustered addresses so that
        // prefixes repeat and counts tie.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut ips: Vec<IpAddr> = (0..20_000)
            .map(|_| {
                let r = next();
                if r % 5 == 0 {
                    let hi = 0x2001_0db8_0000_0000u128 | u128::from(r >> 60);
                    IpAddr::V6(std::net::Ipv6Addr::from((hi << 64) | u128::from(r & 0xff)))
                } else {
                    let a = 0xc000_0000u32 | ((r as u32 >> 8) & 0x003f_ff00) | (r as u32 & 7);
                    IpAddr::V4(std::net::Ipv4Addr::from(a))
                }
            })
            .collect();
        ips.sort_unstable();
        // IPv4 alone: every key comes in order (the one-pass count);
        // with IPv6, /64s are hashed and go back (the sort).
        let v4: Vec<IpAddr> = ips.iter().copied().filter(IpAddr::is_ipv4).collect();
        for (ips, key) in [
            (&v4, cluster_key as fn(IpAddr) -> u64),
            (&ips, cluster_key),
            (&ips, prefix16_key),
            (&ips, reversed_bits),
        ] {
            let want = prefix_counts_by_sorting(ips, key);
            assert!(want.len() > 20, "{} prefixes", want.len());
            for n in [1, 3, 20, want.len() + 5] {
                let (distinct, top) = prefix_summary(ips, key, n);
                assert_eq!(distinct, want.len());
                assert_eq!(top, plain_largest(&want, n));
            }
        }
        assert_eq!(prefix_summary(&[], cluster_key, 20), (0, Vec::new()));
        assert!(largest(std::iter::empty::<(u64, u32)>(), 20).is_empty());
    }

    fn failure(secs: i64, src: NodeId) -> Obs {
        Obs {
            time: (BASE + secs) * 1000,
            aux: 0,
            evidence: secs as u64,
            src,
            dst: NONE,
            dst_port: 22,
            svc: 1,
            kind: ObsKind::AuthFailure,
            flags: 0,
        }
    }

    fn idle_events(out: &[CrossEvent]) -> Vec<(i64, u32)> {
        out.iter()
            .filter_map(|e| match e {
                CrossEvent::Idle { at, source, .. } => Some((*at, source.failures)),
                _ => None,
            })
            .collect()
    }

    /// A record still failing when its entry comes due is queued again
    /// at its latest failure, and ends exactly `idle_secs` after it, as
    /// when every failure queued an entry.
    #[test]
    fn a_record_that_keeps_failing_ends_idle_secs_after_its_last_failure() {
        let cfg = DistributedConfig {
            idle_secs: 600,
            ..DistributedConfig::default()
        };
        let t = Tables::new();
        let mut a = AuthRecords::new(&cfg, 3600);
        let mut out = Vec::new();
        let src: NodeId = 0x0a00_0001;
        for s in [0, 300, 600, 900] {
            a.observe(&failure(s, src), false, &t, &mut out);
        }
        let last = secs((BASE + 900) * 1000);
        let end = idle_at(last, 600_000);
        assert_eq!(end, (BASE + 1501) * 1000);
        a.advance((BASE + 1500) * 1000, &mut out);
        assert_eq!(idle_events(&out), vec![], "ended while still failing");
        a.advance(end - 1, &mut out);
        assert_eq!(idle_events(&out), vec![]);
        a.advance(end, &mut out);
        assert_eq!(idle_events(&out), vec![(end, 4)]);
        assert_eq!(a.tracked(), 0);
        assert_eq!(a.expiry.len() + a.requeued.len(), 0);
    }

    /// Over `max_records`, the least recently active records end at
    /// once, as if idle, and are handed on: a flood of sources never
    /// seen before keeps the table at its bound, and a source failing
    /// all along (the oldest record, but active) stays.
    #[test]
    fn over_max_records_the_least_recently_active_end_early() {
        let cfg = DistributedConfig {
            max_records: 16,
            ..DistributedConfig::default()
        };
        let t = Tables::new();
        let mut a = AuthRecords::new(&cfg, 3600);
        let mut out = Vec::new();
        let steady: NodeId = 0x0a00_0001;
        for s in 0..200i64 {
            // A failure from a new address every second, and one from
            // the steady source every ten.
            a.observe(&failure(s, 0x0b00_0000 + s as NodeId), false, &t, &mut out);
            if s % 10 == 0 {
                a.observe(&failure(s, steady), false, &t, &mut out);
            }
            assert!(a.tracked() <= 16, "{} records at {s} s", a.tracked());
        }
        assert_eq!(a.tracked(), 16);
        // 201 records made, 16 kept.
        assert_eq!(a.ended_early(), 201 - 16);
        assert!(
            a.previous_failure(steady, 1).is_some(),
            "the steady source stays"
        );
        // The newest fifteen flood sources stay, the older ones ended, each
        // handed on once, at the time of the failure that made room.
        for s in 185..200 {
            assert!(a.previous_failure(0x0b00_0000 + s, 1).is_some(), "{s}");
        }
        let ended: Vec<(i64, NodeId)> = out
            .iter()
            .filter_map(|e| match e {
                CrossEvent::Idle { at, src, .. } => Some((*at, *src)),
                _ => None,
            })
            .collect();
        assert_eq!(ended.len(), 185);
        for &(at, src) in &ended {
            assert!(src >= 0x0b00_0000, "the steady source never ended");
            let made = (src - 0x0b00_0000) as i64;
            assert!(at > (BASE + made) * 1000, "ended after it was made");
            assert!(at < (BASE + 200) * 1000);
        }
        // The events stay in time order.
        assert!(out.windows(2).all(|w| w[0].key().0 <= w[1].key().0));
    }

    /// One queue entry per record however often it fails: a source
    /// failing every second for 3 hours (idle after 1 h) once left an
    /// entry per second, 10,800, growing for as long as it failed.
    #[test]
    fn the_expiry_queues_hold_one_entry_per_record() {
        let cfg = DistributedConfig::default();
        let t = Tables::new();
        let mut a = AuthRecords::new(&cfg, 3600);
        let mut out = Vec::new();
        let (one, two): (NodeId, NodeId) = (0x0a00_0001, 0x0a00_0002);
        for s in 0..3 * 3600 {
            a.observe(&failure(s, one), false, &t, &mut out);
            if s % 2 == 0 {
                a.observe(&failure(s, two), false, &t, &mut out);
            }
            assert!(a.expiry.len() + a.requeued.len() <= 2, "at {s} s");
        }
        assert_eq!(a.tracked(), 2);
        // Neither is low-rate, so no idle event; both end an hour after
        // their last failures.
        let last = secs((BASE + 3 * 3600 - 1) * 1000);
        a.advance(idle_at(last, cfg.idle_secs * 1000) - 1, &mut out);
        assert_eq!(a.tracked(), 1, "the second source ended first");
        a.advance(idle_at(last, cfg.idle_secs * 1000), &mut out);
        assert_eq!(a.tracked(), 0);
    }
}
