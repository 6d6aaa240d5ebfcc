//! The live pipeline: the engine driven by records as they arrive (a
//! followed file, a syslog socket, a NetFlow exporter, stdin), for
//! `orbwatch watch` and, next, Kafka workers.
//!
//! ```text
//!  LiveRecord ──► stream (decoder detected from its first lines, or syslog,
//!   (orbwatch-live)  or NetFlow templates per exporter)
//!                     │ RecordSink::handle: the hunt's own decode/match/observe
//!                     ├──► IOC sightings ──► live Aggregator ──► findings (at once)
//!                     └──► observations ──► ReorderWindow ──► LiveDetectors ──► findings
//!                                           (watermark,        (the hunt's     (when an
//!                                            lateness)          detectors)      episode ends)
//! ```
//!
//! Records are decoded and matched by the same `RecordSink` a hunt's
//! units use, so a line gives the same events and sightings live as in a
//! file. The quick test of a record's raw addresses against the index
//! can run on the source's thread instead ([`LivePipeline::prefilter`]):
//! this thread is the one that limits a daemon's rate. So can the
//! decoding of a syslog connection's messages: the connection's thread
//! keeps its own syslog decoder, made with this pipeline's settings, and
//! the decoded event rides with the record; the pipeline's own decoder of
//! that stream is then not asked. Indicator matches need no order and are reported at the next
//! [`LivePipeline::take_output`], with ids fixed when their session opens.
//! Behaviour observations wait in a [`ReorderWindow`] until the watermark
//! passes them, then go to the same detectors a hunt replays, one event at
//! a time; the detectors advance with the watermark, so an episode is
//! judged when it has been idle for its detector's idle time, as in a hunt.
//!
//! What a hunt reads back from files (the records behind a behaviour
//! finding) a live source cannot: sockets keep nothing. The pipeline keeps
//! the first records of each active source's episode in an evidence cache
//! bounded in bytes; when the budget is spent, records are counted and not
//! kept.
//!
//! Memory is bounded by state: open indicator sessions (closed an hour
//! of event time after their last sighting), the reorder window
//! (`max_pending`), detector keys (evicted when idle), streams (forgotten
//! when idle) and the evidence cache (its byte budget). The interned
//! address and name tables of the detectors grow with the distinct
//! sources seen (about 50 bytes each); see the README's "Not done yet".

use std::collections::BTreeMap;

use hashbrown::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use orbwatch_capture::netflow::NetflowDecoder;
use orbwatch_detect::behaviour::key_table::{KeyTable, pack};
use orbwatch_detect::behaviour::observe::{HeldIds, NodeId, Obs, ObsBuffer, ObsKind, evidence_ref};
use orbwatch_detect::behaviour::{
    BehaviourConfig, Draft, LimitReached, LiveDetectors, ReplayLimits, orb_likelihood,
};
use orbwatch_detect::enrich::Enricher;
use orbwatch_detect::{
    Aggregator, Coverage, Evidence, Finding, InputCoverage, IocEngine, MatchScratch,
};
use orbwatch_event::decoders::{self, DecoderConfig};
use orbwatch_event::{DecodeError, Decoded, Decoder};
use orbwatch_live::{Checkpoint, LiveRecord, Payload, Prefilter, Prefiltered, Prework, StreamWork};

use crate::event_time::{EventTimeConfig, Release, ReorderStats, ReorderWindow};
use crate::obs_wire::{self, WireEvidence, WireMessage, WireObservation, WireSighting};
use crate::replay_guard::{ReplayGuard, Sent};
use crate::summary_wire::{Summary, SummaryBody};
use crate::sweep::{Prematched, RecordSink, decode_guarded};
use crate::{Engine, EngineError, EngineOptions};

/// Findings waiting in a pipeline ([`LivePipeline::output_waiting`]) past
/// which a daemon (`watch`, `worker`) takes and keeps them at once,
/// before its commit interval ends: memory then holds at most about this
/// many (a few KB each with their evidence), however fast a flood makes
/// them.
pub const OUTPUT_BATCH: usize = 10_000;

/// Settings of a live pipeline (`[live]` and `[event_time]` in the watch
/// configuration).
#[derive(Debug, Clone)]
pub struct LiveOptions {
    pub event_time: EventTimeConfig,
    /// Bytes of raw records kept as evidence of behaviour findings
    /// (default 64 MiB).
    pub evidence_budget: usize,
    /// How long a new text stream's first lines wait so that its format
    /// is detected from several lines, not one (default 500 ms, or 50
    /// lines, whichever comes first).
    pub detect_wait: Duration,
    /// Streams idle this long (wall clock) are forgotten: their decoder
    /// state is dropped and their counts folded into their source's
    /// (default 10 minutes).
    pub stream_idle: Duration,
    /// Most streams kept at once (default 65,536): beyond it, the least
    /// recently used quarter is forgotten as idle ones are (counted in
    /// [`LiveStats::streams_forgotten`]). Each UDP sender is a stream,
    /// and a flood of datagrams from forged addresses made one for each
    /// until it had been idle `stream_idle`.
    pub max_streams: usize,
    /// Close idle indicator sessions by the slowest stream's newest
    /// event time instead of the newest event of any stream. Kafka
    /// partitions are fetched in no particular order, so one partition
    /// may be hours of event time ahead of another; closing by the
    /// newest event would split the lagging partition's sessions (which
    /// a hunt keeps whole). Kafka Streams and Flink take the minimum
    /// over partitions for the same reason. Default off (`watch`).
    pub slowest_stream_clock: bool,
    /// Stage 1 of a split Kafka topology: `Some(producer id)` hands the
    /// behaviour observations and the indicator sightings on
    /// ([`LiveOutput::observations`], resolved into self-contained
    /// [`WireObservation`]s and [`WireSighting`]s) instead of running the
    /// detectors and aggregating findings here (stage 2 does both). They leave in event-time order, as the detectors
    /// would get them (through the same reorder window), so that a
    /// stage-2 worker reading one partition gets each producer's
    /// observations in order; and a record's checkpoint is handed on
    /// only when every observation it made has left, so its offset is
    /// committed only after its observations are written.
    pub export_observations: Option<u64>,
    /// Report the cross-source detector's findings (distributed brute
    /// force) here. Off in stage 2: a worker sees only its partitions'
    /// sources, so its campaigns would be fragments (other ids, smaller
    /// counts) of the one a single process sees; stage 3 judges them
    /// from every stage-2 worker's summaries instead.
    pub cross_source: bool,
    /// Stage 2 of a split topology: `Some(producer id)` hands what the
    /// cross-source detector needs ([`LiveOutput::summaries`], the
    /// detectors' cross events resolved for the wire) to stage 3, which
    /// sees every partition's sources.
    pub export_summaries: Option<u64>,
    /// Names and IPv6 addresses nothing holds any more are given back
    /// once this many of either are kept, and again each time those kept
    /// double (default 65,536; see [`LivePipeline::tick`]). 0 gives them
    /// back at every tick: tests use it to find a holder that did not
    /// mark its ids.
    pub sweep_floor: usize,
    /// Most hourly sums kept in each of the two maps (answered
    /// connections per client, outbound bytes per internal host and
    /// external address; default 1,048,576, about 60 MB each). Beyond it
    /// the smallest quarter leaves before its hour is over (counted in
    /// [`LiveStats::sums_left_early`]; see
    /// [`ObsBuffer::take_smallest_sums`]).
    pub max_hourly_sums: usize,
    /// Memory the open indicator sessions (indicator, peer, hour-apart
    /// stretch, with their evidence) may take (default 128 MiB, about
    /// 150,000 sessions of one syslog record each), in this pipeline and
    /// its siblings together ([`LivePipeline::sibling`]: a worker's
    /// tasks share it, as they share the evidence budget). Beyond it, at
    /// the next output, the least recently active close early until a
    /// quarter of it is free, each pipeline closing its share: their
    /// findings were handed on as they
    /// changed, and a later sighting opens a new finding (counted in
    /// [`LiveStats::ioc_sessions_closed_early`]; see
    /// [`Aggregator::close_least_recent`]).
    pub ioc_session_budget: usize,
}

impl Default for LiveOptions {
    fn default() -> Self {
        Self {
            event_time: EventTimeConfig::default(),
            evidence_budget: 64 << 20,
            detect_wait: Duration::from_millis(500),
            stream_idle: Duration::from_secs(600),
            max_streams: 1 << 16,
            slowest_stream_clock: false,
            export_observations: None,
            cross_source: true,
            export_summaries: None,
            sweep_floor: 1 << 16,
            max_hourly_sums: 1 << 20,
            ioc_session_budget: 128 << 20,
        }
    }
}

/// Lines a stream's format is detected from.
const DETECT_LINES: usize = 50;
/// Kept evidence of sources silent this long (event time) is dropped,
/// unless an episode can last longer (see `episode_gap_ms`).
const EVIDENCE_RETENTION_MS: i64 = 86_400_000;

/// What the pipeline hands on at each [`LivePipeline::take_output`].
#[derive(Debug, Default)]
pub struct LiveOutput {
    /// New findings and findings that changed (same id, the latest state
    /// replaces the earlier one).
    pub findings: Vec<Finding>,
    /// The latest position of each source whose records have all been
    /// decoded and matched (and, in stage 1, whose observations are all
    /// in `observations` by now): commit them with the findings.
    pub checkpoints: Vec<Checkpoint>,
    /// Stage 1 ([`LiveOptions::export_observations`]): observations and
    /// indicator sightings to write, in event-time order (untimed
    /// sightings at once).
    pub observations: Vec<WireMessage>,
    /// Stage 2 ([`LiveOptions::export_summaries`]): summaries to write
    /// to stage 3, in the order made; at [`LivePipeline::finish`] they end
    /// with the flagged sources and `done`.
    pub summaries: Vec<Summary>,
    /// Stage 2: every summary up to this event time (ms) is in
    /// `summaries` or was handed on before (`i64::MIN`: none yet).
    pub summary_watermark: i64,
}

/// Counts for the status line and metrics.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct LiveStats {
    pub records: u64,
    pub bytes: u64,
    pub parsed: u64,
    pub rejected: u64,
    pub matched_records: u64,
    pub findings: u64,
    /// Streams open: files, senders and exporters being decoded, and in
    /// stage 2 the observation streams (partition, producer).
    pub streams: usize,
    /// Stage 2: the raw streams (stage 1's inputs) whose clocks it keeps,
    /// by which indicator sessions close.
    pub raw_stream_clocks: usize,
    /// Sources forgotten by the ORB likelihood's memory over its bound.
    pub orb_sources_forgotten: u64,
    pub open_ioc_sessions: usize,
    /// About the memory the open indicator sessions take.
    pub ioc_session_bytes: usize,
    pub tracked_keys: usize,
    /// Account and host names the observations refer to by id. Those
    /// nothing holds any more are given back (see [`LivePipeline::tick`]).
    pub names_kept: usize,
    /// Names given back so far, once nothing held them.
    pub names_forgotten: u64,
    /// IPv6 addresses the observations refer to by id (IPv4 addresses
    /// are their own ids), given back in the same sweeps as names.
    pub addresses_kept: usize,
    /// IPv6 addresses given back so far.
    pub addresses_forgotten: u64,
    /// The detectors' bounds reached so far (accounts forgotten over
    /// `max_accounts`, episodes and records ended early, baselines
    /// forgotten), counted and logged, each a flood of something new.
    #[serde(flatten)]
    pub limits: ReplayLimits,
    pub evidence_bytes: usize,
    pub evidence_not_kept: u64,
    pub netflow_datagrams: u64,
    /// Streams forgotten before their `stream_idle`, over `max_streams`.
    pub streams_forgotten: u64,
    /// Hourly sums kept now (answered connections, outbound bytes), to
    /// be handed on when their hour is over.
    pub hourly_sums: usize,
    /// Hourly sums handed to the detectors before their hour was over,
    /// over `max_hourly_sums` (connection logs of a flood of clients).
    pub sums_left_early: u64,
    /// Indicator sessions closed before an hour without sightings, over
    /// `max_ioc_sessions`.
    pub ioc_sessions_closed_early: u64,
    /// Observations older than the watermark: matched against
    /// indicators, counted here, not given to the detectors.
    pub late: u64,
    /// Stage 1: observations handed on.
    pub observations_out: u64,
    /// Stage 2: observations taken in.
    pub observations_in: u64,
    /// Stage 1: indicator sightings handed on (to be aggregated in stage 2).
    pub sightings_out: u64,
    /// Stage 2: indicator sightings taken in.
    pub sightings_in: u64,
    /// Stage 2: sightings whose indicator id means another indicator (or
    /// none) here than at the stage-1 worker that made them: skipped,
    /// not aggregated (see [`LivePipeline::handle_sighting`]).
    pub sightings_mismatched: u64,
    /// Stage 2: observations and sightings of a raw record that another
    /// stage-1 worker had already sent (it read the record again after
    /// taking over a partition whose offset was not committed): skipped,
    /// not counted twice (see [`crate::replay_guard`]).
    pub replayed: u64,
    pub reorder: ReorderStats,
    /// Event time up to which the detectors have judged (RFC 3339).
    pub watermark: Option<Timestamp>,
    pub indicator_reloads: u64,
}

impl LiveStats {
    /// Add `o`'s counts to these (a worker's pipelines, one per
    /// partition, reported as one). The watermark is the lowest.
    pub fn absorb(&mut self, o: &LiveStats) {
        self.records += o.records;
        self.bytes += o.bytes;
        self.parsed += o.parsed;
        self.rejected += o.rejected;
        self.matched_records += o.matched_records;
        self.findings += o.findings;
        self.streams += o.streams;
        self.raw_stream_clocks += o.raw_stream_clocks;
        self.orb_sources_forgotten += o.orb_sources_forgotten;
        self.open_ioc_sessions += o.open_ioc_sessions;
        self.tracked_keys += o.tracked_keys;
        self.names_kept += o.names_kept;
        self.names_forgotten += o.names_forgotten;
        self.addresses_kept += o.addresses_kept;
        self.addresses_forgotten += o.addresses_forgotten;
        self.limits.add(&o.limits);
        self.evidence_bytes += o.evidence_bytes;
        self.evidence_not_kept += o.evidence_not_kept;
        self.netflow_datagrams += o.netflow_datagrams;
        self.streams_forgotten += o.streams_forgotten;
        self.sums_left_early += o.sums_left_early;
        self.ioc_sessions_closed_early += o.ioc_sessions_closed_early;
        self.hourly_sums += o.hourly_sums;
        self.late += o.late;
        self.observations_out += o.observations_out;
        self.observations_in += o.observations_in;
        self.sightings_out += o.sightings_out;
        self.sightings_in += o.sightings_in;
        self.sightings_mismatched += o.sightings_mismatched;
        self.replayed += o.replayed;
        let (r, q) = (&mut self.reorder, &o.reorder);
        r.accepted += q.accepted;
        r.late += q.late;
        r.max_late_ms = r.max_late_ms.max(q.max_late_ms);
        r.released_early += q.released_early;
        r.idle_flushes += q.idle_flushes;
        r.pending += q.pending;
        self.watermark = match (self.watermark, o.watermark) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.indicator_reloads = self.indicator_reloads.max(o.indicator_reloads);
    }
}

/// One stream's decoding state.
struct Stream {
    index: u32,
    name: Arc<str>,
    decoder: Option<Box<dyn Decoder>>,
    format: &'static str,
    /// Records waiting for the format to be detected.
    waiting: Vec<LiveRecord>,
    first_wait: Option<Instant>,
    cov: InputCoverage,
    last_used: Instant,
}

/// One kept evidence record.
struct KeptRecord {
    time: i64,
    kind: ObsKind,
    svc: u16,
    /// Orders records of equal time as the hunt does (by input).
    stream: u32,
    /// The stream's name and format, kept with the record: the stream
    /// itself may be forgotten (a closed TCP connection) before an
    /// episode that used its records is judged.
    stream_name: Arc<str>,
    format: &'static str,
    number: u64,
    offset: u64,
    /// The record's bytes, cut to `RAW_CAP`. Made text (invalid UTF-8
    /// replaced) only when a finding shows it: most kept records are
    /// never shown, and checking each as it was kept was 2 % of a
    /// syslog daemon's pipeline thread.
    raw: Box<[u8]>,
}

/// A record's raw text as the evidence cache gets it: its own buffer
/// when the pipeline is done with the record (kept without a copy), or
/// borrowed.
enum Raw<'a> {
    Owned(Vec<u8>),
    Borrowed(&'a [u8]),
}

impl Raw<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Raw::Owned(v) => v,
            Raw::Borrowed(b) => b,
        }
    }

    /// The bytes to keep, cut to `cap` (kept without a copy when the
    /// record is owned and short enough).
    fn into_kept(self, cap: usize) -> Box<[u8]> {
        match self {
            Raw::Owned(v) if v.len() <= cap => v.into_boxed_slice(),
            other => {
                let b = other.bytes();
                b[..b.len().min(cap)].into()
            }
        }
    }
}

/// A kept record as a finding shows it: invalid UTF-8 replaced.
fn shown(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

/// Where a kept record came from.
struct KeptOrigin<'a> {
    index: u32,
    name: &'a Arc<str>,
    format: &'static str,
    number: u64,
    offset: u64,
    /// The source's identity (its checkpoint's), for stage 1's evidence.
    identity: Option<&'a str>,
}

/// An observation waiting in the reorder window.
struct Held {
    /// The observation (`None` for an indicator sighting).
    obs: Option<Obs>,
    /// Stage 1: the observation or sighting resolved for the wire, and
    /// its number among those of its stream still in the window. Stage
    /// 2: a sighting to aggregate when the watermark passes it.
    wire: Option<WireMessage>,
    stream: u32,
    seq: u64,
}

/// Items in the reorder window that a record's checkpoint must wait
/// for: a record's offset may be committed only once what it made has
/// left the window and been written (stage 1: its observations, handed
/// on; stage 2: its indicator sightings, aggregated into findings that
/// the same output carries). Without it, a worker killed with `kill -9`
/// lost what waited in its window behind a committed offset (stage 2
/// lost 459 of 4,964 sightings in the scaling benchmark).
///
/// Kept per stream (the checkpoint's source): the offset tracker then
/// holds the partition's offset at the oldest record any of its streams
/// still waits for.
#[derive(Default)]
struct HeldBack {
    /// The number of the next item held (0 is never used: an item whose
    /// `seq` is 0 is not held back).
    next_seq: u64,
    /// Per stream: numbers of its items still in the window.
    pending: HashMap<u32, std::collections::BTreeSet<u64>>,
    /// Per stream: checkpoints noted after item `seq`, waiting until
    /// every item up to it has left.
    waiting: HashMap<u32, std::collections::VecDeque<(u64, Checkpoint)>>,
}

impl HeldBack {
    /// Hold back the checkpoints of `stream` until the item numbered by
    /// the returned `seq` has left.
    fn hold(&mut self, stream: u32) -> u64 {
        self.next_seq += 1;
        let seq = self.next_seq;
        self.pending.entry(stream).or_default().insert(seq);
        seq
    }

    /// Item `seq` of `stream` has left the window (0: one not held).
    fn left(&mut self, stream: u32, seq: u64) {
        if seq == 0 {
            return;
        }
        if let Some(p) = self.pending.get_mut(&stream) {
            p.remove(&seq);
            if p.is_empty() {
                self.pending.remove(&stream);
            }
        }
    }

    /// A record of `stream` was decoded: its checkpoint back when nothing
    /// of the stream waits, else kept until [`HeldBack::promote`] finds
    /// everything before it gone. A stream with checkpoints queued
    /// queues the next too, so that an older one never replaces it.
    fn note(&mut self, stream: u32, cp: Checkpoint) -> Option<Checkpoint> {
        if !self.holds(stream) {
            return Some(cp);
        }
        let after = self.next_seq;
        let q = self.waiting.entry(stream).or_default();
        // A later checkpoint of the same source after no new item
        // replaces it. Only of the same source: in stage 2 a stream is a
        // (partition, producer) whose records come from many keys, each
        // its own source, and the offset tracker must see every source's
        // checkpoint (one dropped held its partition's offset for good).
        if q.back()
            .is_some_and(|b| b.0 == after && b.1.source == cp.source)
        {
            q.pop_back();
        }
        q.push_back((after, cp));
        None
    }

    /// Whether items or checkpoints of `stream` are still held.
    fn holds(&self, stream: u32) -> bool {
        self.pending.contains_key(&stream) || self.waiting.contains_key(&stream)
    }

    /// Move every checkpoint, whether its items have left or not (the
    /// items stay counted as pending until they leave).
    fn let_go(&mut self, into: &mut BTreeMap<Arc<str>, Checkpoint>) {
        for (_, q) in self.waiting.drain() {
            for (_, cp) in q {
                keep_latest(into, cp);
            }
        }
    }

    /// Move the checkpoints whose items have all left.
    fn promote(&mut self, into: &mut BTreeMap<Arc<str>, Checkpoint>) {
        let pending = &self.pending;
        self.waiting.retain(|stream, q| {
            let first = pending.get(stream).and_then(|p| p.first().copied());
            while let Some((after, _)) = q.front() {
                if first.is_some_and(|f| f <= *after) {
                    break;
                }
                if let Some((_, cp)) = q.pop_front() {
                    keep_latest(into, cp);
                }
            }
            !q.is_empty()
        });
    }
}

/// Note `cp` as the position reached in its source, unless a later
/// position of the same source (and identity) is noted already.
///
/// Why not simply replace: checkpoints of one source can come back out
/// of order. A held-back checkpoint is promoted after a later one of the
/// same source that had nothing to wait for, and replacing it would hand
/// the offset tracker the older position only: the later one would never
/// be seen, and the partition's last offset (a producer's final
/// watermark, after which nothing comes to rescue it) was never
/// committed.
fn keep_latest(into: &mut BTreeMap<Arc<str>, Checkpoint>, cp: Checkpoint) {
    match into.get_mut(&cp.source) {
        // Another identity is another file under the same name (a
        // rotation): its positions start again, the newest one counts.
        Some(have) if have.identity == cp.identity && have.position >= cp.position => {}
        Some(have) => *have = cp,
        None => {
            into.insert(cp.source.clone(), cp);
        }
    }
}

/// Stage 1's observations on their way out, and the checkpoints that
/// wait for them.
#[derive(Default)]
struct Export {
    producer: u64,
    held: HeldBack,
    out: Vec<WireMessage>,
    /// Per hour whose sums (answered connections, outbound bytes) are
    /// not made yet: the streams whose records were counted into them,
    /// each holding its later checkpoints back (an item of `held` that is
    /// in no window) until the hour's sums go out.
    ///
    /// Why: such a record makes no observation of its own, so nothing
    /// held its checkpoint, and its offset was committed while the sum it
    /// went into was still in memory. A worker killed with `kill -9`
    /// before the hour's end lost those records' part of the sum: read
    /// again by no one, counted by no one. (While records flow: when the
    /// input goes quiet for `idle_flush`, and on a rebalance, the offsets
    /// go and the sums stay with this worker, as before.)
    sum_holds: BTreeMap<i64, HashMap<u32, u64>>,
}

impl Export {
    fn left(&mut self, h: Held) {
        self.held.left(h.stream, h.seq);
        if let Some(w) = h.wire {
            self.out.push(w);
        }
    }

    /// A record of `stream` was counted into a sum of the hour of `time`
    /// (ms): the stream's checkpoints wait for that hour's sums.
    fn hold_for_sum(&mut self, stream: u32, time: i64) {
        let hour = time.div_euclid(3_600_000);
        let Self {
            held, sum_holds, ..
        } = self;
        sum_holds
            .entry(hour)
            .or_default()
            .entry(stream)
            .or_insert_with(|| held.hold(stream));
    }

    /// The sums of the hours before `hour` went out: their records'
    /// checkpoints no longer wait for them.
    fn sums_out_before(&mut self, hour: i64) {
        while let Some(e) = self.sum_holds.first_entry() {
            if *e.key() >= hour {
                break;
            }
            for (stream, seq) in e.remove() {
                self.held.left(stream, seq);
            }
        }
    }
}

#[derive(Default)]
struct SourceEvidence {
    last: i64,
    /// Most sources make one record and never come back (a scan, a
    /// spray): the first record is kept inline, so such a source costs
    /// no allocation but its raw text (a `Vec` took one of four records,
    /// about 400 bytes, for each).
    records: smallvec::SmallVec<[KeptRecord; 1]>,
}

/// A source's kept records, queued with the newest event time it had
/// when queued.
struct QueuedEvidence {
    src: NodeId,
    queued: i64,
    evidence: SourceEvidence,
}

/// The first records of each active source's episode, bounded in bytes.
///
/// The records live in a queue in the order their sources were queued
/// (first seen, or queued again when still active at their turn), and a
/// table that can be prefetched says where each source's entry is. Why
/// not a hash map of the records: most failed logins of a spray come from
/// an address never seen before, so each record was written into a cold
/// 112-byte slot of a map of hundreds of thousands, a third of the
/// pipeline thread's time in this cache. Now the new entry goes to the
/// queue's end (memory just written) and the table's slot (16 bytes) is
/// asked for before the record comes (see [`EvidenceCache::prefetch`]).
struct EvidenceCache {
    /// Each source's place in `queue`, as a sequence number (see
    /// `first_seq`), by [`key_table::pack`]ed source.
    at: KeyTable<u64>,
    /// Each source of `at` once, oldest queued first (roughly: late
    /// observations queue behind newer ones). Forgetting pops from the
    /// front instead of sweeping every source at every tick: a daemon
    /// sees millions of sources a day, most of them once (a scan, a
    /// spray), and a sweep of them all five times a second cost 7 % of
    /// the pipeline thread at 275,000 msg/s.
    queue: std::collections::VecDeque<QueuedEvidence>,
    /// The sequence number of the front of `queue`.
    first_seq: u64,
    /// Bytes this cache holds, and with its siblings' (the budget is a
    /// worker's, not each partition's).
    bytes: SharedBytes,
    budget: usize,
    per_source_cap: usize,
    not_kept: u64,
    /// A source's kept records restart after this much event time without
    /// one (a new episode): the longest idle time of the per-source
    /// detectors plus the allowed lateness, so an episode is always judged
    /// (and its evidence taken) before its records are replaced.
    episode_gap_ms: i64,
}

impl EvidenceCache {
    /// Mark the sources it keeps records of (its queue holds each source
    /// of the table once, and some no longer in it).
    fn mark_held(&self, m: &mut HeldIds) {
        self.queue.iter().for_each(|q| m.mark_node(q.src));
    }

    fn new(
        spent: Option<Arc<AtomicUsize>>,
        budget: usize,
        per_source_cap: usize,
        episode_gap_ms: i64,
    ) -> Self {
        Self {
            at: KeyTable::with_capacity(1 << 12),
            queue: std::collections::VecDeque::new(),
            first_seq: 0,
            bytes: SharedBytes::new(spent),
            budget,
            per_source_cap,
            not_kept: 0,
            episode_gap_ms,
        }
    }

    /// Start loading the table slot that [`keep`](Self::keep) of an
    /// observation from `src` will look at.
    #[inline]
    fn prefetch(&self, src: NodeId) {
        self.at.prefetch(pack(src, 0));
    }

    /// The records kept for `src`.
    fn get(&self, src: NodeId) -> Option<&SourceEvidence> {
        let seq = *self.at.get(pack(src, 0))?;
        self.queue
            .get((seq - self.first_seq) as usize)
            .map(|q| &q.evidence)
    }

    /// The place in `queue` of the entry of `src`, queued at `time` if it
    /// has none.
    fn entry(&mut self, src: NodeId, time: i64) -> usize {
        let next = self.first_seq + self.queue.len() as u64;
        let seq = *self.at.get_or_insert_with(pack(src, 0), || next);
        if seq == next {
            self.queue.push_back(QueuedEvidence {
                src,
                queued: time,
                evidence: SourceEvidence::default(),
            });
            self.bytes.add(EVIDENCE_ENTRY_BYTES);
        }
        (seq - self.first_seq) as usize
    }

    fn keep(&mut self, o: &Obs, at: &KeptOrigin<'_>, text: Raw<'_>) {
        let raw = text.bytes();
        let cut = raw.len().min(RAW_CAP);
        // A source with no entry yet gets one only if its first record
        // fits in the budget too: the entries count against it (about
        // 150 bytes each, kept a day of event time). When only the records'
        // bytes counted, a flood of failed logins each from a new
        // address made an entry per address, beyond any budget: 2,000,000
        // of them held 300 MB.
        let i = if self.bytes.total() + cut + EVIDENCE_ENTRY_BYTES > self.budget {
            // (One lookup: the entry if there is one.)
            match self.at.get(pack(o.src, 0)) {
                Some(&seq) => (seq - self.first_seq) as usize,
                None => {
                    self.not_kept += 1;
                    return;
                }
            }
        } else {
            self.entry(o.src, o.time)
        };
        let e = &mut self.queue[i].evidence;
        if o.time > e.last.saturating_add(self.episode_gap_ms) && !e.records.is_empty() {
            let freed = e.records.iter().map(|r| r.raw.len()).sum::<usize>();
            self.bytes.sub(freed);
            e.records.clear();
        }
        e.last = e.last.max(o.time);
        if e.records.len() >= self.per_source_cap {
            return;
        }
        if self.bytes.total() + cut > self.budget {
            self.not_kept += 1;
            return;
        }
        let raw = text.into_kept(RAW_CAP);
        self.bytes.add(raw.len());
        e.records.push(KeptRecord {
            time: o.time,
            kind: o.kind,
            svc: o.svc,
            stream: at.index,
            stream_name: Arc::clone(at.name),
            format: at.format,
            number: at.number,
            offset: at.offset,
            raw,
        });
    }

    /// Forget the sources whose newest record is older than `before`.
    /// A source still active when its turn comes is queued again with
    /// its newest time, so each source costs one visit per retention
    /// period, not one per tick. A source queued behind newer ones (a
    /// late observation) is forgotten a little later than it could be:
    /// that costs memory for a while, never evidence, since forgetting is
    /// never early.
    fn forget_before(&mut self, before: i64) {
        let mut freed = 0;
        while self.queue.front().is_some_and(|q| q.queued < before) {
            // The table slots of sources queued a retention period ago are
            // cold: ask for the one a few entries on while this one is
            // handled (each lookup waited on memory, 1.7 % of the
            // pipeline's thread).
            if let Some(ahead) = self.queue.get(FORGET_LOOKAHEAD) {
                self.at.prefetch(pack(ahead.src, 0));
            }
            let Some(mut q) = self.queue.pop_front() else {
                break;
            };
            self.first_seq += 1;
            let key = pack(q.src, 0);
            if q.evidence.last >= before {
                q.queued = q.evidence.last;
                let next = self.first_seq + self.queue.len() as u64;
                if let Some(seq) = self.at.get_mut(key) {
                    *seq = next;
                }
                self.queue.push_back(q);
                continue;
            }
            self.at.remove_if(key, |_| true);
            freed += EVIDENCE_ENTRY_BYTES
                + q.evidence
                    .records
                    .iter()
                    .map(|r| r.raw.len())
                    .sum::<usize>();
        }
        self.bytes.sub(freed);
    }
}

/// Bytes one pipeline holds against a budget it shares with its
/// siblings (a stage-2 worker's pipelines, one per partition, see
/// [`LivePipeline::sibling`]): the evidence cache's records and the open
/// indicator sessions each have one.
///
/// Why shared: a budget each let a worker of 12 partitions hold 12 times
/// the budget. This pipeline's own count (`mine`) is what it gives back
/// when it goes (`Drop`), so a partition taken away frees its share.
#[derive(Default)]
struct SharedBytes {
    all: Arc<AtomicUsize>,
    mine: usize,
}

impl SharedBytes {
    /// A count of this pipeline's own, against the total `all` (a new
    /// one when it has no sibling).
    fn new(all: Option<Arc<AtomicUsize>>) -> Self {
        Self {
            all: all.unwrap_or_default(),
            mine: 0,
        }
    }

    /// This pipeline's bytes.
    fn mine(&self) -> usize {
        self.mine
    }

    /// The bytes of this pipeline and its siblings.
    fn total(&self) -> usize {
        self.all.load(Ordering::Relaxed)
    }

    fn add(&mut self, n: usize) {
        self.mine += n;
        self.all.fetch_add(n, Ordering::Relaxed);
    }

    fn sub(&mut self, n: usize) {
        self.mine -= n;
        self.all.fetch_sub(n, Ordering::Relaxed);
    }

    /// This pipeline now holds `held` bytes (the open sessions are
    /// counted at each output, not as they grow): the total of all.
    fn publish(&mut self, held: usize) -> usize {
        if held >= self.mine {
            self.add(held - self.mine);
        } else {
            self.sub(self.mine - held);
        }
        self.total()
    }
}

impl Drop for SharedBytes {
    fn drop(&mut self) {
        self.all.fetch_sub(self.mine, Ordering::Relaxed);
    }
}

/// The budgets a pipeline shares with its siblings (see [`SharedBytes`]):
/// the totals of the evidence cache's bytes and of the open indicator
/// sessions' bytes.
struct SiblingBudgets {
    evidence: Arc<AtomicUsize>,
    sessions: Arc<AtomicUsize>,
}

/// Sources whose findings a live pipeline remembers for their ORB
/// likelihood (about 200 bytes each); past it, the least recently named
/// quarter is forgotten ([`LiveStats::orb_sources_forgotten`]).
const ORB_SOURCES: usize = 100_000;

/// The stream name of the hourly sums' observations on the wire: they
/// belong to no raw stream.
const SUMS_STREAM_NAME: &str = "hourly sums";

/// What a source's entry in the evidence cache costs besides its records'
/// bytes, counted against [`LiveOptions::evidence_budget`] and in
/// [`LiveStats::evidence_bytes`]: its place in the queue (with its first
/// record's fields) and its table slot.
pub const EVIDENCE_ENTRY_BYTES: usize =
    std::mem::size_of::<QueuedEvidence>() + 2 * std::mem::size_of::<(u64, u64)>();

/// Event time (ms) between two sweeps of the detectors for idle keys.
/// A sweep looks at every open key, so sweeping at every record would
/// cost the number of keys per record; an episode that went idle is then
/// judged within this much event time after its idle time, with the same
/// content (episodes end by their own key's events, not by the sweep).
const ADVANCE_STEP_MS: i64 = 60_000;

/// How many queued sources ahead of the one being forgotten its table
/// slot is asked for (see `EvidenceCache::forget_before`).
const FORGET_LOOKAHEAD: usize = 8;

/// The stream index of the hourly sums in the reorder window (a stream
/// index is below 2^24, see [`StreamIndexes`]).
const SUMS_STREAM: u32 = u32::MAX;

/// The indexes of the streams alive: each is below 2^24 (the input part
/// of an evidence reference, see `evidence_ref`), handed out in turn and
/// given back when its stream is forgotten.
///
/// Why not a plain counter: each TCP connection is a stream of its own,
/// so a daemon whose clients connect once per message goes round the
/// 2^24 indexes in days. A counter that wrapped gave a new connection
/// the index of one still open (a forwarder connected since the start
/// holds index 0): the two shared a clock in the reorder window and, in
/// stage 1, the hold on each other's checkpoints.
#[derive(Default)]
struct StreamIndexes {
    next: u32,
    used: std::collections::HashSet<u32>,
}

impl StreamIndexes {
    const LIMIT: u32 = 1 << 24;

    /// The next index no stream alive holds. (With all 2^24 held, which
    /// would take as many open streams, it is the next one anyway.)
    fn take(&mut self) -> u32 {
        for _ in 0..Self::LIMIT {
            let i = self.next;
            self.next = (self.next + 1) % Self::LIMIT;
            if self.used.insert(i) {
                return i;
            }
        }
        let i = self.next;
        self.next = (self.next + 1) % Self::LIMIT;
        i
    }

    /// The stream of index `i` was forgotten.
    fn give_back(&mut self, i: u32) {
        self.used.remove(&i);
    }
}

/// Raw evidence is cut to this many bytes (as in a hunt).
const RAW_CAP: usize = 2048;

/// The detectors' settings and enrichment, alive as long as the process:
/// the detectors borrow them, and a daemon has one pipeline.
struct Detection {
    detectors: LiveDetectors<'static>,
    cfg: &'static BehaviourConfig,
    enricher: &'static Enricher,
}

/// The work a [`LivePipeline`] hands the sources' threads (see
/// [`LivePipeline::prefilter`]): the indicators it matches against now,
/// with their generation (bumped at each reload), to test each record's
/// raw addresses before queueing it; and the settings of a syslog
/// connection's decoder, to decode there.
struct SourceWork {
    current: Arc<std::sync::RwLock<(u64, Arc<IocEngine>)>>,
    /// Syslog connections decode on their own threads (`None`: an
    /// indicators-only pipeline decodes only the records whose raw text
    /// may match, which the source's thread cannot know for certain).
    syslog: Option<DecoderSettings>,
}

/// What a stream's decoder is made from besides the record: the engine's
/// options, kept apart so that a source's thread can make one too.
#[derive(Clone)]
struct DecoderSettings {
    year: Option<i16>,
    timezone: Option<jiff::tz::TimeZone>,
    map: Vec<(String, String)>,
}

impl DecoderSettings {
    fn of(o: &EngineOptions) -> Self {
        Self {
            year: o.year,
            timezone: o.timezone.clone(),
            map: o.map.clone(),
        }
    }

    /// The configuration of a stream whose first record came at
    /// `received`: a year-less timestamp takes the year of that moment
    /// (in the zone assumed) unless one is given.
    fn config(&self, received: Timestamp) -> DecoderConfig {
        let tz = self.timezone.clone();
        let year = self.year.or_else(|| {
            Some(
                tz.clone()
                    .unwrap_or(jiff::tz::TimeZone::UTC)
                    .to_datetime(received)
                    .year(),
            )
        });
        DecoderConfig {
            year,
            map: self.map.clone(),
            timezone: tz,
        }
    }
}

/// A syslog connection's decoding on the connection's thread: its own
/// decoder, fed the connection's messages in order, as the pipeline's
/// decoder of the stream would be; and the test of the record against
/// the indicators the pipeline matches against now.
struct SyslogStreamWork {
    decoder: Box<dyn Decoder>,
    /// [`SourceWork::current`], read for each record (not kept: a quiet
    /// connection would keep replaced indicators alive).
    indicators: Arc<std::sync::RwLock<(u64, Arc<IocEngine>)>>,
}

/// A record decoded on its source's thread.
struct SourceDecoded {
    decoded: Result<Decoded, DecodeError>,
    /// The record's [`Prefiltered`] answer also covers the decoded
    /// addresses (what [`RecordSink::handle_decoded`] would test one by
    /// one), not only the addresses in its raw text.
    addresses_tested: bool,
}

impl StreamWork for SyslogStreamWork {
    fn work(&mut self, record: &mut LiveRecord) {
        if record.payload != Payload::Syslog {
            return;
        }
        let decoded = decode_guarded(&mut *self.decoder, &record.bytes);
        // A poisoned lock (a panic elsewhere): the pipeline tests it.
        let mut addresses_tested = false;
        if let Ok(current) = self.indicators.read() {
            let (generation, ioc) = &*current;
            // As the pipeline would: the raw text's addresses, then those
            // the decoder found (forms the raw scan does not read).
            let may_match = ioc.raw_may_match(&record.bytes)
                || matches!(&decoded, Ok(Decoded::Event(e))
                    if e.addresses().any(|(ip, _)| ioc.index().contains_ip(ip)));
            record.prefiltered = Some(Prefiltered {
                generation: *generation,
                may_match,
            });
            addresses_tested = true;
        }
        record.prework = Prework::new(SourceDecoded {
            decoded,
            addresses_tested,
        });
    }
}

impl Prefilter for SourceWork {
    fn check(&self, payload: Payload, bytes: &[u8]) -> Option<Prefiltered> {
        if let Payload::NetflowDatagram { .. } = payload {
            return None;
        }
        // A poisoned lock (a panic elsewhere): the pipeline tests it.
        let current = self.current.read().ok()?;
        Some(Prefiltered {
            generation: current.0,
            may_match: current.1.raw_may_match(bytes),
        })
    }

    /// A syslog connection gets the decoder the pipeline would make for
    /// it (the same settings and first-record time); the pipeline then
    /// takes its answers.
    fn stream_work(&self, first: &LiveRecord) -> Option<Box<dyn StreamWork>> {
        let settings = self.syslog.as_ref()?;
        if first.payload != Payload::Syslog {
            return None;
        }
        let info = decoders::by_name("syslog")?;
        Some(Box::new(SyslogStreamWork {
            decoder: (info.make)(&settings.config(first.received)),
            indicators: Arc::clone(&self.current),
        }))
    }
}

/// The engine fed one record at a time; see the module docs.
pub struct LivePipeline {
    engine: Engine,
    /// The indicators' generation, and the same indicators shared with
    /// the sources' threads ([`LivePipeline::prefilter`]).
    ioc_generation: u64,
    shared_ioc: Arc<SourceWork>,
    opts: LiveOptions,
    detection: Option<Detection>,
    obs: ObsBuffer,
    window: ReorderWindow<Held>,
    /// Stage 1: see [`LiveOptions::export_observations`].
    export: Option<Export>,
    /// Stage 2: the checkpoints that wait for indicator sightings still
    /// in the reorder window (see [`HeldBack`]).
    sightings_held: HeldBack,
    /// Stage 2: which stage-1 producer first sent each recent raw record.
    replays: ReplayGuard,
    /// Stage 2: the index of each observation stream (partition and
    /// producer), see [`LivePipeline::handle_observation`], and when it
    /// last sent. Forgotten once idle `stream_idle` with nothing held
    /// back: each restart of a stage-1 worker is a new producer, and a
    /// daemon that runs for months must not keep every one.
    obs_streams: HashMap<Arc<str>, (u32, Instant)>,
    /// Stage 2: the raw streams (stage 1's inputs, a Kafka partition and
    /// key) that sightings and observations named, each with its newest
    /// event time (ms) and when it was last heard from. Indicator sessions
    /// close by the slowest of them (see `take_output`), as a pipeline
    /// reading the raw streams itself closes them by its slowest stream.
    /// Forgotten once idle `stream_idle`; all at once past `max_streams`.
    raw_clocks: HashMap<Arc<str>, (i64, Instant)>,
    /// Stage 2: observations or sightings came from stage 1 (the
    /// pipeline then closes indicator sessions by the watermark, held
    /// back by the slowest raw stream's clock).
    fed_by_stage1: bool,
    agg: Aggregator,
    /// What each source's findings said so far, for their ORB likelihood
    /// (see [`orb_likelihood::OrbMemory`]).
    orb: orb_likelihood::OrbMemory,
    /// The bytes of `agg`'s sessions, with the siblings' (see
    /// [`LiveOptions::ioc_session_budget`]).
    session_bytes: SharedBytes,
    scratch: MatchScratch,
    streams: HashMap<Arc<str>, Stream>,
    /// Streams whose format is being detected: their records are not in
    /// the reorder window yet, so it is held (see `ReorderWindow::hold`).
    detecting: usize,
    /// Sources announced but not heard from yet (a Kafka partition just
    /// assigned), each until its deadline: they hold the reorder window
    /// too, see [`LivePipeline::hold_for`].
    holds: HashMap<String, Instant>,
    indexes: StreamIndexes,
    netflow: NetflowDecoder,
    netflow_cov: orbwatch_capture::Coverage,
    evidence: EvidenceCache,
    checkpoints: BTreeMap<Arc<str>, Checkpoint>,
    out: Vec<Finding>,
    /// Newest event time read (closes idle indicator sessions).
    newest: Option<Timestamp>,
    /// The detectors sweep for idle keys when the watermark reaches this.
    next_advance: i64,
    /// The detectors have judged up to this event time (ms): stage 2's
    /// summary watermark.
    advanced_to: i64,
    /// Names and addresses are swept (see [`LivePipeline::forget_unheld`])
    /// when this many names, or this many addresses, are kept.
    names_sweep_at: usize,
    addresses_sweep_at: usize,
    /// Counts of streams that were forgotten, by source.
    retired: BTreeMap<String, InputCoverage>,
    started: Timestamp,
    stats: LiveStats,
}

impl LivePipeline {
    /// A pipeline around `engine` (its indicators, options and behaviour
    /// detectors).
    pub fn new(engine: Engine, opts: LiveOptions) -> Result<Self, EngineError> {
        let shared = match &engine.options.behaviour {
            None => None,
            // Stage 1: the detectors run in stage 2.
            Some(_) if opts.export_observations.is_some() => None,
            Some(b) => {
                let dbs: Vec<&std::path::Path> =
                    b.enrichment_dbs.iter().map(|p| p.as_path()).collect();
                let enricher =
                    Enricher::open(&dbs).map_err(|e| EngineError::Enrichment(e.to_string()))?;
                // Leaked once per process (the detectors borrow them for
                // as long as it runs); siblings share them.
                let cfg: &'static BehaviourConfig = Box::leak(Box::new(b.config.clone()));
                let enricher: &'static Enricher = Box::leak(Box::new(enricher));
                Some((cfg, enricher))
            }
        };
        Ok(Self::build(engine, opts, shared, None))
    }

    /// A new, empty pipeline on the same indicators, options, behaviour
    /// configuration and enrichment databases as this one (shared, not
    /// opened or copied again), with its own reorder window, clock,
    /// detectors and aggregator. Its evidence counts against the same
    /// budget ([`LiveOptions::evidence_budget`] is the worker's whole).
    ///
    /// Why: a stage-2 worker runs one pipeline per observations
    /// partition (Kafka Streams' tasks). Observations are keyed by
    /// source, so a source's detector state never spans two partitions,
    /// and a partition taken over from a worker that died starts with
    /// its own clock at its committed offset instead of finding another
    /// partition's watermark far past its records.
    pub fn sibling(&self) -> LivePipeline {
        let shared = self.detection.as_ref().map(|d| (d.cfg, d.enricher));
        let budgets = SiblingBudgets {
            evidence: Arc::clone(&self.evidence.bytes.all),
            sessions: Arc::clone(&self.session_bytes.all),
        };
        Self::build(
            self.engine.share(),
            self.opts.clone(),
            shared,
            Some(budgets),
        )
    }

    fn build(
        engine: Engine,
        opts: LiveOptions,
        shared: Option<(&'static BehaviourConfig, &'static Enricher)>,
        budgets: Option<SiblingBudgets>,
    ) -> Self {
        let (evidence_spent, sessions) = budgets.map(|b| (b.evidence, b.sessions)).unzip();
        let detection = shared.map(|(cfg, enricher)| {
            let mut detectors = LiveDetectors::new(cfg, enricher);
            if opts.export_summaries.is_some() {
                detectors.export_cross();
            }
            Detection {
                detectors,
                cfg,
                enricher,
            }
        });
        let per_source_cap = detection
            .as_ref()
            .map_or(5, |d| d.cfg.evidence_per_finding.max(1));
        let lateness_ms = i64::try_from(opts.event_time.allowed_lateness.as_millis()).unwrap_or(0);
        let sweep_floor = opts.sweep_floor;
        let episode_gap_ms = detection.as_ref().map_or(0, |d| {
            let c = d.cfg;
            [
                c.port_scan.idle_secs,
                c.brute_force.idle_secs,
                c.login_flood.idle_secs,
            ]
            .into_iter()
            .max()
            .unwrap_or(0)
            .saturating_mul(1000)
        }) + lateness_ms;
        Self {
            agg: new_aggregator(&opts, engine.options.evidence_limit),
            orb: orb_likelihood::OrbMemory::new(ORB_SOURCES),
            session_bytes: SharedBytes::new(sessions),
            window: ReorderWindow::new(&opts.event_time),
            export: opts.export_observations.map(|producer| Export {
                producer,
                ..Default::default()
            }),
            sightings_held: HeldBack::default(),
            replays: ReplayGuard::default(),
            obs_streams: HashMap::new(),
            raw_clocks: HashMap::new(),
            fed_by_stage1: false,
            evidence: EvidenceCache::new(
                evidence_spent,
                opts.evidence_budget,
                per_source_cap,
                episode_gap_ms,
            ),
            ioc_generation: 0,
            shared_ioc: Arc::new(SourceWork {
                current: Arc::new(std::sync::RwLock::new((0, Arc::clone(&engine.ioc)))),
                syslog: (!engine.lazy()).then(|| DecoderSettings::of(&engine.options)),
            }),
            engine,
            opts,
            detection,
            obs: ObsBuffer::new(),
            scratch: MatchScratch::default(),
            streams: HashMap::new(),
            detecting: 0,
            holds: HashMap::new(),
            indexes: StreamIndexes::default(),
            netflow: NetflowDecoder::new(),
            netflow_cov: orbwatch_capture::Coverage::new("netflow"),
            checkpoints: BTreeMap::new(),
            out: Vec::new(),
            newest: None,
            next_advance: i64::MIN,
            advanced_to: i64::MIN,
            names_sweep_at: sweep_floor,
            addresses_sweep_at: sweep_floor,
            retired: BTreeMap::new(),
            started: Timestamp::now(),
            stats: LiveStats::default(),
        }
    }

    /// The indicators matched now.
    pub fn ioc(&self) -> &IocEngine {
        &self.engine.ioc
    }

    /// The test of a record's raw addresses against the indicators, for
    /// the sources' threads to run before they queue each record
    /// ([`orbwatch_live::RecordSender::with_prefilter`]). Its answers
    /// follow feed reloads; an answer given against indicators replaced
    /// since is not used, the pipeline tests the record again.
    pub fn prefilter(&self) -> Arc<dyn Prefilter> {
        Arc::clone(&self.shared_ioc) as Arc<dyn Prefilter>
    }

    /// Match against `ioc` from now on (a feed reload). Open indicator
    /// sessions are closed first, against the indicators they were
    /// opened with, and their findings handed on: a sighting after the
    /// swap opens a new finding.
    pub fn replace_indicators(&mut self, ioc: impl Into<Arc<IocEngine>>) {
        let mut closing = std::mem::replace(
            &mut self.agg,
            new_aggregator(&self.opts, self.engine.options.evidence_limit),
        );
        self.out.extend(closing.take_touched(&self.engine.ioc));
        self.out.extend(closing.finish(&self.engine.ioc));
        self.engine.ioc = ioc.into();
        self.ioc_generation += 1;
        // A poisoned lock (a panic on a source's thread) keeps the old
        // indicators there: their answers then never match this
        // generation, and the pipeline tests every record itself.
        if let Ok(mut shared) = self.shared_ioc.current.write() {
            *shared = (self.ioc_generation, Arc::clone(&self.engine.ioc));
        }
        self.stats.indicator_reloads += 1;
    }

    /// Hold every release of the reorder window (and, with
    /// `slowest_stream_clock`, the closing of idle indicator sessions)
    /// until `name` is heard from ([`LivePipeline::end_hold`]) or until
    /// `deadline`, whichever comes first.
    ///
    /// Why: the watermark follows the streams it has seen. A Kafka
    /// partition assigned after the others were read from is not one of
    /// them yet, so without a hold its records, hours of event time
    /// behind, would find the watermark past them and count as late
    /// (Flink and Kafka Streams wait for every assigned partition for the
    /// same reason). The deadline bounds what an empty or dead partition
    /// can delay.
    pub fn hold_for(&mut self, name: impl Into<String>, deadline: Instant) {
        self.holds.insert(name.into(), deadline);
    }

    /// `name` was heard from (its first record is in, or it has nothing
    /// to read): its hold ends.
    pub fn end_hold(&mut self, name: &str) {
        self.holds.remove(name);
    }

    /// Sources still held for (see [`LivePipeline::hold_for`]).
    pub fn holds(&self) -> usize {
        self.holds.len()
    }

    /// Take one record.
    pub fn handle(&mut self, rec: LiveRecord, now: Instant) {
        self.stats.records += 1;
        self.stats.bytes += rec.bytes.len() as u64;
        if let Payload::NetflowDatagram { exporter } = rec.payload {
            self.netflow_datagram(&rec, exporter.ip(), now);
            let index = self.stream(&rec, now);
            self.note_checkpoint(index, rec.checkpoint);
            return;
        }
        // The usual record: a known stream with its decoder (one lookup
        // of the stream's name here, one in `decode`).
        if let Some(stream) = self.streams.get_mut(&rec.stream)
            && stream.decoder.is_some()
        {
            stream.last_used = now;
            let index = stream.index;
            self.decode(index, rec, now);
            return;
        }
        self.stream(&rec, now);
        let Some(stream) = self.streams.get_mut(&rec.stream) else {
            return;
        };
        stream.last_used = now;
        if stream.decoder.is_none() {
            if stream.first_wait.is_none() {
                stream.first_wait = Some(now);
                self.detecting += 1;
            }
            stream.waiting.push(rec);
            if stream.waiting.len() >= DETECT_LINES {
                let name = Arc::clone(&stream.name);
                self.detect(&name, now);
            }
            return;
        }
        let index = stream.index;
        self.decode(index, rec, now);
    }

    /// The stream of `rec`, created on first sight. Syslog messages get
    /// the syslog decoder at once; text lines wait for detection unless
    /// a format is forced.
    fn stream(&mut self, rec: &LiveRecord, now: Instant) -> u32 {
        if let Some(s) = self.streams.get(&rec.stream) {
            return s.index;
        }
        let index = self.indexes.take();
        let cfg = self.decoder_config(rec.received);
        let forced = match rec.payload {
            Payload::Syslog => decoders::by_name("syslog"),
            _ => self.engine.forced,
        };
        let decoder = forced.map(|info| (info.make)(&cfg));
        let mut cov = InputCoverage::new(rec.stream.to_string());
        cov.compression = "none".into();
        self.streams.insert(
            rec.stream.clone(),
            Stream {
                index,
                // A copy, not another handle on the source's `Arc`: the
                // source's thread bumps that one's count for every record
                // it sends, and evidence taking a handle on the same
                // cache line from this thread cost 4 % of the pipeline.
                name: Arc::from(&*rec.stream),
                format: forced.map_or("", |i| i.name),
                decoder,
                waiting: Vec::new(),
                first_wait: None,
                cov,
                last_used: now,
            },
        );
        index
    }

    fn decoder_config(&self, received: Timestamp) -> DecoderConfig {
        DecoderSettings::of(&self.engine.options).config(received)
    }

    /// Detect the format of a stream from its waiting lines, then decode
    /// them.
    fn detect(&mut self, name: &Arc<str>, now: Instant) {
        let Some(stream) = self.streams.get_mut(name) else {
            return;
        };
        let waiting = std::mem::take(&mut stream.waiting);
        if stream.first_wait.take().is_some() {
            self.detecting = self.detecting.saturating_sub(1);
        }
        let lines: Vec<&[u8]> = waiting
            .iter()
            .map(|r| r.bytes.as_slice())
            .filter(|l| !l.is_empty())
            .take(DETECT_LINES)
            .collect();
        let info = decoders::detect(&lines);
        let received = waiting.first().map_or_else(Timestamp::now, |r| r.received);
        let cfg = self.decoder_config(received);
        let decoder = (info.make)(&cfg);
        if let Some(stream) = self.streams.get_mut(name) {
            stream.decoder = Some(decoder);
            stream.format = info.name;
            stream.cov.format = info.name.to_string();
        }
        let index = self.streams.get(name).map_or(0, |s| s.index);
        for rec in waiting {
            self.decode(index, rec, now);
        }
    }

    /// Decode, match and observe one record of a stream whose decoder is
    /// known.
    fn decode(&mut self, index: u32, mut rec: LiveRecord, now: Instant) {
        let Some(stream) = self.streams.get_mut(&rec.stream) else {
            return;
        };
        // Decoded on the source's thread by a syslog decoder like this
        // stream's own (see `SyslogStreamWork`).
        let (decoded, addresses_tested) = match stream.format {
            "syslog" => rec
                .prework
                .take::<SourceDecoded>()
                .map_or((None, false), |d| (Some(d.decoded), d.addresses_tested)),
            _ => (None, false),
        };
        let format = stream.format;
        let name = Arc::clone(&stream.name);
        let Some(decoder) = stream.decoder.as_deref_mut() else {
            return;
        };
        stream.cov.records += 1;
        stream.cov.bytes += rec.bytes.len() as u64 + 1;
        let engine = &self.engine;
        let names_or_hashes = engine.ioc.index().has_names() || engine.ioc.index().has_hashes();
        let before = (
            stream.cov.parsed,
            stream.cov.rejected,
            stream.cov.matched_records,
        );
        let mut sink = RecordSink {
            ctx: engine,
            decoder,
            cov: &mut stream.cov,
            agg: &mut self.agg,
            obs: &mut self.obs,
            runs: None,
            chunk: 0,
            input: index as usize,
            scratch: std::mem::take(&mut self.scratch),
            file: &stream.name,
            format: stream.format,
            names_or_hashes,
        };
        let (hit, addresses_tested) = match rec.prefiltered {
            Some(p) if p.generation == self.ioc_generation => (p.may_match, addresses_tested),
            _ => (engine.ioc.raw_may_match(&rec.bytes), false),
        };
        sink.handle_decoded(
            rec.number,
            rec.offset,
            &rec.bytes,
            Prematched {
                ip_hit: hit,
                addresses_tested,
            },
            decoded,
        );
        self.scratch = std::mem::take(&mut sink.scratch);
        self.stats.parsed += stream.cov.parsed - before.0;
        self.stats.rejected += stream.cov.rejected - before.1;
        let matched = stream.cov.matched_records - before.2;
        self.stats.matched_records += matched;
        self.newest = self.newest.max(stream.cov.last_time);
        self.take_sightings(index, now);
        let origin = KeptOrigin {
            index,
            name: &name,
            format,
            number: rec.number,
            offset: rec.offset,
            identity: rec.checkpoint.as_ref().map(|c| &*c.identity),
        };
        let bytes = std::mem::take(&mut rec.bytes);
        self.take_observations(&origin, Raw::Owned(bytes), now);
        self.note_checkpoint(index, rec.checkpoint);
    }

    fn netflow_datagram(&mut self, rec: &LiveRecord, exporter: IpAddr, now: Instant) {
        self.stats.netflow_datagrams += 1;
        let index = self.stream(rec, now);
        let file = rec.stream.clone();
        let mut emitted = Vec::new();
        self.netflow.datagram(
            &rec.bytes,
            exporter,
            rec.number,
            rec.offset,
            &mut self.netflow_cov,
            &mut |e| emitted.push(e),
        );
        if let Some(stream) = self.streams.get_mut(&rec.stream) {
            stream.last_used = now;
            stream.format = "netflow";
            stream.cov.format = "netflow".into();
            stream.cov.records += 1;
            stream.cov.bytes += rec.bytes.len() as u64;
        }
        for e in emitted {
            let mut matched = false;
            if let Some(b) = &self.engine.behaviour {
                b.observe(&mut self.obs, &e.event, index as usize, e.record);
            }
            if crate::binary::match_emitted(
                &self.engine.ioc,
                &e,
                &file,
                "netflow",
                &mut self.scratch,
                &mut self.agg,
            ) {
                matched = true;
                self.stats.matched_records += 1;
                self.take_sightings(index, now);
            }
            self.newest = self.newest.max(e.event.time);
            self.stats.parsed += 1;
            if let Some(stream) = self.streams.get_mut(&rec.stream) {
                stream.cov.parsed += 1;
                stream.cov.matched_records += u64::from(matched);
                if let Some(t) = e.event.time {
                    stream.cov.see_time(t);
                }
            }
            let origin = KeptOrigin {
                index,
                name: &file,
                format: "netflow",
                number: e.record,
                offset: e.offset,
                identity: rec.checkpoint.as_ref().map(|c| &*c.identity),
            };
            if !self.obs.obs.is_empty() {
                let raw = e.raw().into_owned();
                self.take_observations(&origin, Raw::Borrowed(raw.as_bytes()), now);
            } else {
                // Counted into an hourly sum, perhaps: its time counts.
                self.take_observations(&origin, Raw::Borrowed(b""), now);
            }
        }
    }

    /// Move what the last record made of observations into the reorder
    /// window (and its raw text into the evidence cache).
    fn take_observations(&mut self, origin: &KeptOrigin<'_>, text: Raw<'_>, now: Instant) {
        // The record's own bytes counted into an hour's outbound sum: the
        // record is that sum's evidence. Taken whatever else the record
        // made (left behind, it named the next record as the evidence).
        let mut outbound = None;
        if let Some(time) = self.obs.take_sum_touch() {
            // Counted into an hourly sum: time moves as for an
            // observation (the sums of hours it ended may go).
            self.window.arrive(origin.index, time, now);
            if let Some(x) = &mut self.export {
                x.hold_for_sum(origin.index, time);
            }
            if self.obs.sums_over(self.opts.max_hourly_sums) {
                self.take_smallest_sums();
            }
            outbound = self.obs.take_outbound_touch();
            if self.obs.obs.is_empty() {
                self.release();
                if let Some(o) = outbound
                    && self.export.is_none()
                {
                    self.evidence.keep(&o, origin, text);
                }
                return;
            }
        }
        if self.obs.obs.is_empty() {
            return;
        }
        let raw = text.bytes();
        let obs = std::mem::take(&mut self.obs.obs);
        for o in &obs {
            self.enter_window(o, origin, raw, now);
        }
        // Judge first: an episode that ends with this record's time takes
        // its evidence before this record may start a new one.
        self.release();
        if self.export.is_some() {
            let mut obs = obs;
            obs.clear();
            self.obs.obs = obs;
            return;
        }
        let kept = |o: &&Obs| o.kind != ObsKind::BackdoorPort && o.kind != ObsKind::Answered;
        let mut keeps = obs.iter().filter(kept).chain(outbound.as_ref());
        match (text, keeps.clone().count()) {
            // The usual record makes one observation: its buffer becomes
            // the kept text, with no copy (it was 5 % of this thread).
            (Raw::Owned(bytes), 1) => {
                if let Some(o) = keeps.next() {
                    self.evidence.keep(o, origin, Raw::Owned(bytes));
                }
            }
            (text, _) => {
                for o in keeps {
                    self.evidence.keep(o, origin, Raw::Borrowed(text.bytes()));
                }
            }
        }
        let mut obs = obs;
        obs.clear();
        self.obs.obs = obs;
    }

    /// Put one observation into the reorder window (stage 1: with its
    /// wire form, `raw` its record's text).
    fn enter_window(&mut self, o: &Obs, origin: &KeptOrigin<'_>, raw: &[u8], now: Instant) {
        let index = origin.index;
        let mut held = Held {
            obs: Some(*o),
            wire: None,
            stream: index,
            seq: 0,
        };
        if let Some(x) = &mut self.export {
            let raw = String::from_utf8_lossy(&raw[..raw.len().min(RAW_CAP)]);
            let evidence = WireEvidence {
                origin: origin.identity.unwrap_or_default().to_string(),
                stream: origin.name.to_string(),
                format: origin.format.to_string(),
                number: origin.number,
                offset: origin.offset,
                raw: obs_wire::cut(&raw, RAW_CAP).to_string(),
            };
            held.wire = Some(WireMessage::Observation(Box::new(
                WireObservation::from_obs(o, &self.obs.tables, x.producer, evidence),
            )));
            held.seq = x.held.hold(index);
        }
        // Ask for what this record will touch before the release that
        // follows, which runs the detectors: the detectors' records (in
        // cache when the observation leaves the window, if it leaves
        // soon) and the evidence slot (kept after the release).
        if let Some(d) = &self.detection {
            d.detectors.prefetch(o, &self.obs.tables);
            self.evidence.prefetch(o.src);
        }
        if let Err(late) = self.window.push_from(index, o.time, held, now) {
            self.stats.late += 1;
            // Stage 1: a late observation still goes out (stage 2
            // judges it late or not by its own clock).
            if let Some(x) = &mut self.export {
                x.left(late.item);
            }
        }
    }

    /// The hourly sums (answered connections, outbound bytes) of the hours
    /// that end at or before `mark` (ms) go into the reorder window, just
    /// before a release (or idle flush) moves its watermark to `mark`.
    ///
    /// Why then: a record of such an hour coming later would be late
    /// anyway, so the sum is complete; and the watermark has not passed
    /// the hour's end yet, so the sum, dated at the hour's last
    /// millisecond, is not late. The sums belong to no stream (they move
    /// no stream's clock) and carry no record's text: no one record is
    /// their evidence.
    fn take_due_sums(&mut self, mark: i64) {
        let Some(oldest) = self.obs.oldest_sum_hour() else {
            return;
        };
        let before = mark.saturating_add(1).div_euclid(3_600_000);
        if oldest >= before {
            return;
        }
        let mut sums = Vec::new();
        self.obs.take_sums_before(before, &mut sums);
        // The sums go out with the window's release (or flush) that
        // follows: the checkpoints waiting for them are promoted after it.
        if let Some(x) = &mut self.export {
            x.sums_out_before(before);
        }
        self.push_sums(sums);
    }

    /// More hourly sums than `max_hourly_sums`: the smallest quarter goes
    /// into the reorder window now, each dated at the watermark or its
    /// hour's start, whichever is later (its hour is not over, so that
    /// time is still inside it, and not late). Counted and logged once.
    fn take_smallest_sums(&mut self) {
        let mut sums = Vec::new();
        let n = self
            .obs
            .take_smallest_sums(self.opts.max_hourly_sums, &mut sums);
        if self.stats.sums_left_early == 0 && n > 0 {
            tracing::warn!(
                "more than {} hourly sums of answered connections or outbound bytes kept at once: the {n} smallest go to the detectors before their hour is over, and so on each time the limit is passed (an exfiltration judged on part of an hour may stay under its bar)",
                self.opts.max_hourly_sums
            );
        }
        self.stats.sums_left_early += n;
        let mark = self.window.watermark();
        for o in &mut sums {
            let hour_start = o.time - 3_599_999;
            o.time = hour_start.max(mark);
        }
        self.push_sums(sums);
    }

    /// Put hourly sums into the reorder window (stage 1: with their wire
    /// form). They belong to no stream and carry no record's text.
    fn push_sums(&mut self, sums: Vec<Obs>) {
        for o in sums {
            let mut held = Held {
                obs: Some(o),
                wire: None,
                stream: SUMS_STREAM,
                seq: 0,
            };
            if let Some(x) = &mut self.export {
                let evidence = WireEvidence {
                    origin: String::new(),
                    stream: SUMS_STREAM_NAME.into(),
                    format: String::new(),
                    number: 0,
                    offset: 0,
                    raw: String::new(),
                };
                held.wire = Some(WireMessage::Observation(Box::new(
                    WireObservation::from_obs(&o, &self.obs.tables, x.producer, evidence),
                )));
                held.seq = x.held.hold(SUMS_STREAM);
            }
            if let Err(late) = self.window.push_unclocked(o.time, held) {
                self.stats.late += 1;
                if let Some(x) = &mut self.export {
                    x.left(late.item);
                }
            }
        }
    }

    /// Give the detectors what the watermark has passed, and let them
    /// judge up to it.
    fn release(&mut self) {
        self.window
            .hold(self.detecting > 0 || !self.holds.is_empty());
        let mark = self.window.next_mark();
        if let Some(mark) = mark {
            self.take_due_sums(mark);
        }
        if let Some(x) = &mut self.export {
            self.window.release_to(mark, &mut |_, h| x.left(h));
            x.held.promote(&mut self.checkpoints);
            return;
        }
        let (agg, ioc, stats) = (&mut self.agg, &self.engine.ioc, &mut self.stats);
        let held = &mut self.sightings_held;
        let Some(d) = &mut self.detection else {
            // No detectors: nothing waits (but a sighting to aggregate).
            // (Hourly sums, which no one judges, are dropped as they
            // come.)
            self.window.flush(&mut |_, h: Held| {
                held.left(h.stream, h.seq);
                deliver(h, None, &self.obs.tables, agg, ioc, stats)
            });
            return;
        };
        let tables = &self.obs.tables;
        let mut to = delivery!(self, &mut d.detectors);
        self.window.release_to(mark, &mut to);
        let mark = self.window.watermark();
        if mark > i64::MIN && mark >= self.next_advance {
            d.detectors.advance(mark, tables);
            self.advanced_to = self.advanced_to.max(mark);
            self.next_advance = mark.saturating_add(ADVANCE_STEP_MS);
        }
        self.take_drafts();
    }

    /// Findings the detectors made, with their evidence taken from the
    /// cache now (before it forgets), into the output.
    fn take_drafts(&mut self) {
        let Some(d) = &mut self.detection else { return };
        if !d.detectors.has_drafts() {
            return;
        }
        let drafts = d.detectors.take_drafts();
        if !drafts.is_empty() {
            let found = self.behaviour_findings(drafts);
            self.out.extend(found);
        }
    }

    /// A record of stream `index` was decoded (stage 1: its checkpoint
    /// waits until its observations have left the window).
    fn note_checkpoint(&mut self, index: u32, cp: Option<Checkpoint>) {
        let Some(cp) = cp else { return };
        let held = match &mut self.export {
            Some(x) => &mut x.held,
            None => &mut self.sightings_held,
        };
        if let Some(cp) = held.note(index, cp) {
            keep_latest(&mut self.checkpoints, cp);
        }
    }

    /// Stage 1: hand on every observation in the reorder window now (a
    /// rebalance takes partitions away: the offsets of their records can
    /// be committed only once their observations are written). Later
    /// observations older than the ones flushed are handed on as late.
    pub fn flush_observations(&mut self) {
        if let Some(x) = &mut self.export {
            self.window.flush(&mut |_, h| x.left(h));
            // The sums of the hours not over stay with this worker, which
            // hands them on when their hours end (or it stops): the
            // records counted into them must not be read again by the
            // next owner of their partitions, or they would count twice.
            x.sums_out_before(i64::MAX);
            x.held.promote(&mut self.checkpoints);
        } else {
            // Stage 2: the sightings of the partitions that go stay in
            // this worker's window and are aggregated here after the
            // rebalance; their offsets are committed now, so that the
            // next owner does not count them too.
            self.sightings_held.let_go(&mut self.checkpoints);
        }
    }

    /// The event time up to which observations left the reorder window
    /// (ms; `i64::MIN` before any did). Stage 1 writes it as its
    /// watermark after the observations it handed on.
    pub fn watermark(&self) -> i64 {
        self.window.watermark()
    }

    /// Stage 1: the sightings the last record made leave as stage 1's
    /// observations do (through the reorder window, in event-time
    /// order, their record's checkpoint waiting for them), for stage 2 to
    /// aggregate; untimed ones at once.
    fn take_sightings(&mut self, index: u32, now: Instant) {
        let Some(x) = &mut self.export else { return };
        let captured = self.agg.take_captured();
        if captured.is_empty() {
            return;
        }
        for s in captured {
            let w =
                WireMessage::Sighting(Box::new(WireSighting::new(s, &self.engine.ioc, x.producer)));
            let Some(time) = w.time() else {
                x.out.push(w);
                continue;
            };
            let held = Held {
                obs: None,
                wire: Some(w),
                stream: index,
                seq: x.held.hold(index),
            };
            if let Err(late) = self.window.push_from(index, time, held, now) {
                x.left(late.item);
            }
        }
        self.release();
    }

    /// Stage 2: take one indicator sighting read from stream `stream`
    /// (see [`LivePipeline::handle_observation`]). It waits in the
    /// reorder window with the observations and reaches the aggregator
    /// when the watermark passes it, so the aggregator gets every
    /// producer's sightings in event-time order, as a hunt's sessions are
    /// made: the finding's id (from its first sighting), count and
    /// evidence are the hunt's. A sighting behind the watermark is
    /// aggregated at once (a hunt counts it too).
    pub fn handle_sighting(
        &mut self,
        w: Box<WireSighting>,
        stream: &Arc<str>,
        checkpoint: Option<Checkpoint>,
        now: Instant,
    ) {
        self.stats.records += 1;
        self.stats.sightings_in += 1;
        self.stats.bytes += w.sighting.raw.len() as u64;
        let index = self.obs_stream(stream, now);
        let origin = &w.sighting.origin;
        let sent = Sent::Sighting {
            time: w.sighting.time.map_or(i64::MIN, |t| t.as_millisecond()),
        };
        let mut checkpoint = checkpoint;
        let raw = (&*origin.file, origin.offset, w.producer);
        if self.skip_replay(raw, sent, index, &mut checkpoint) {
            return;
        }
        if let Some(t) = w.sighting.time {
            self.heard_raw(&w.sighting.origin.file, t.as_millisecond(), now);
        }
        let msg = WireMessage::Sighting(w);
        match msg.time() {
            Some(time) => {
                let held = Held {
                    obs: None,
                    wire: Some(msg),
                    stream: index,
                    seq: self.sightings_held.hold(index),
                };
                if let Err(late) = self.window.push_from(index, time, held, now) {
                    self.sightings_held.left(index, late.item.seq);
                    deliver(
                        late.item,
                        None,
                        &self.obs.tables,
                        &mut self.agg,
                        &self.engine.ioc,
                        &mut self.stats,
                    );
                }
                self.release();
            }
            None => {
                let held = Held {
                    obs: None,
                    wire: Some(msg),
                    stream: index,
                    seq: 0,
                };
                deliver(
                    held,
                    None,
                    &self.obs.tables,
                    &mut self.agg,
                    &self.engine.ioc,
                    &mut self.stats,
                );
            }
        }
        self.note_checkpoint(index, checkpoint);
    }

    /// Stage 2: the producer behind `stream` will send nothing older than
    /// `time` (ms) from now on (its watermark message; see
    /// [`crate::obs_wire`]).
    pub fn handle_watermark(
        &mut self,
        stream: &Arc<str>,
        time: i64,
        checkpoint: Option<Checkpoint>,
        now: Instant,
    ) {
        let index = self.obs_stream(stream, now);
        self.window.advance_stream(index, time, now);
        self.release();
        self.note_checkpoint(index, checkpoint);
    }

    /// Stage 2: whether the message made from raw record (stream,
    /// offset, producer) is a replay of one another stage-1 producer sent
    /// first (see [`crate::replay_guard`]); then it is counted and its
    /// checkpoint handed on, nothing else.
    fn skip_replay(
        &mut self,
        (stream, offset, producer): (&str, u64, u64),
        sent: Sent,
        index: u32,
        checkpoint: &mut Option<Checkpoint>,
    ) -> bool {
        if self.replays.admit(stream, offset, producer, sent) {
            return false;
        }
        self.stats.replayed += 1;
        self.note_checkpoint(index, checkpoint.take());
        true
    }

    /// Stage 2: raw stream `name` brought an event at `time` (ms).
    fn heard_raw(&mut self, name: &str, time: i64, now: Instant) {
        if let Some(c) = self.raw_clocks.get_mut(name) {
            c.0 = c.0.max(time);
            c.1 = now;
            return;
        }
        if self.raw_clocks.len() >= self.opts.max_streams.max(1) {
            // Sessions then close by the watermark alone until the
            // streams are heard from again: later than they could, never
            // earlier.
            tracing::debug!(
                "more than {} raw streams heard from at once: their clocks are forgotten",
                self.opts.max_streams
            );
            self.raw_clocks.clear();
        }
        self.raw_clocks.insert(Arc::from(name), (time, now));
    }

    fn obs_stream(&mut self, stream: &Arc<str>, now: Instant) -> u32 {
        self.fed_by_stage1 = true;
        match self.obs_streams.get_mut(stream) {
            Some((i, last)) => {
                *last = now;
                *i
            }
            None => {
                let i = self.indexes.take();
                self.obs_streams.insert(stream.clone(), (i, now));
                i
            }
        }
    }

    /// Stage 2: forget the observation streams idle `stream_idle` whose
    /// items and checkpoints have all left (their index is then free; the
    /// reorder window forgets their clocks by itself). Sent to again, a
    /// stream starts afresh.
    fn forget_idle_obs_streams(&mut self, now: Instant) {
        let idle = self.opts.stream_idle;
        let held = &self.sightings_held;
        let gone: Vec<Arc<str>> = self
            .obs_streams
            .iter()
            .filter(|(_, (i, last))| {
                now.saturating_duration_since(*last) >= idle && !held.holds(*i)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            if let Some((i, _)) = self.obs_streams.remove(&name) {
                self.indexes.give_back(i);
            }
        }
        self.raw_clocks
            .retain(|_, (_, last)| now.saturating_duration_since(*last) < idle);
    }

    /// Stage 2: take one observation read from stream `stream` (one per
    /// observations partition and stage-1 producer: each producer writes
    /// in its own event-time order, so each gets its own clock in the
    /// reorder window). It goes to the detectors as a decoded record's
    /// observations do, and its raw record is kept as evidence.
    pub fn handle_observation(
        &mut self,
        w: &WireObservation,
        stream: &Arc<str>,
        checkpoint: Option<Checkpoint>,
        now: Instant,
    ) {
        self.stats.records += 1;
        self.stats.observations_in += 1;
        self.stats.bytes += w.evidence.raw.len() as u64;
        let index = self.obs_stream(stream, now);
        let sent = Sent::Observation { time: w.time };
        let mut checkpoint = checkpoint;
        let raw = (&*w.evidence.stream, w.evidence.offset, w.producer);
        if self.skip_replay(raw, sent, index, &mut checkpoint) {
            return;
        }
        if w.evidence.stream != SUMS_STREAM_NAME {
            self.heard_raw(&w.evidence.stream, w.time, now);
        }
        let o = w.to_obs(
            &mut self.obs.tables,
            evidence_ref(index as usize, w.evidence.number),
        );
        self.obs.obs.push(o);
        let name: Arc<str> = Arc::from(w.evidence.stream.as_str());
        let format = match w.evidence.format.as_str() {
            "netflow" => "netflow",
            f => decoders::by_name(f).map_or("unknown", |i| i.name),
        };
        let origin = KeptOrigin {
            index,
            name: &name,
            format,
            number: w.evidence.number,
            offset: w.evidence.offset,
            identity: None,
        };
        self.take_observations(&origin, Raw::Borrowed(w.evidence.raw.as_bytes()), now);
        self.replays.forget_behind(self.window.watermark());
        self.note_checkpoint(index, checkpoint);
    }

    /// Housekeeping, called every few hundred milliseconds: detect the
    /// format of streams that waited long enough, flush the reorder
    /// window when input went quiet, close idle indicator sessions,
    /// forget idle streams and old evidence.
    pub fn tick(&mut self, now: Instant) {
        self.holds.retain(|name, deadline| {
            let keep = now < *deadline;
            if !keep {
                tracing::info!(
                    "{name}: nothing read from it before the hold's deadline; the other streams go on without it (its records older than theirs will count as late)"
                );
            }
            keep
        });
        // In the order the streams began to wait (then of first sight),
        // not the hash map's: which stream's records reach the reorder
        // window first decides what is late, and that must not change
        // from one run to the next.
        let mut ready: Vec<(Instant, u32, Arc<str>)> = self
            .streams
            .values()
            .filter_map(|s| {
                s.first_wait
                    .filter(|t| now.saturating_duration_since(*t) >= self.opts.detect_wait)
                    .map(|t| (t, s.index, s.name.clone()))
            })
            .collect();
        ready.sort_by_key(|a| (a.0, a.1));
        for (_, _, name) in ready {
            self.detect(&name, now);
        }
        if let Some(to) = self.window.idle_flush_to(now) {
            self.take_due_sums(to);
        }
        if let Some(x) = &mut self.export {
            self.window.flush_if_idle(now, &mut |_, h| x.left(h));
            if self.window.is_quiet(now) {
                // Input went quiet: the offsets of the records counted
                // into the sums of hours not over go now (the sums stay,
                // and go out when their hours end or the worker stops).
                // Else a partition that stops mid-hour would keep them
                // uncommitted until it sends again.
                x.sums_out_before(i64::MAX);
            }
        }
        if let Some(d) = &mut self.detection {
            let tables = &self.obs.tables;
            let mut to = delivery!(self, &mut d.detectors);
            let flushed = self.window.flush_if_idle(now, &mut to);
            if flushed {
                let mark = self.window.watermark();
                d.detectors.advance(mark, tables);
                self.advanced_to = self.advanced_to.max(mark);
            }
        }
        self.release();
        let idle = self.opts.stream_idle;
        let mut gone: Vec<Arc<str>> = self
            .streams
            .values()
            .filter(|s| s.waiting.is_empty() && now.saturating_duration_since(s.last_used) >= idle)
            .map(|s| s.name.clone())
            .collect();
        let cap = self.opts.max_streams.max(1);
        if self.streams.len() - gone.len() > cap {
            // Over the cap: the least recently used go down to three
            // quarters of it (those detecting their format stay: they
            // are decided within `detect_wait`).
            let mut rest: Vec<(Instant, Arc<str>)> = self
                .streams
                .values()
                .filter(|s| {
                    s.waiting.is_empty() && now.saturating_duration_since(s.last_used) < idle
                })
                .map(|s| (s.last_used, s.name.clone()))
                .collect();
            let excess = (self.streams.len() - gone.len())
                .saturating_sub(cap / 4 * 3)
                .min(rest.len());
            if excess > 0 && excess < rest.len() {
                rest.select_nth_unstable_by_key(excess, |r| r.0);
            }
            if self.stats.streams_forgotten == 0 {
                tracing::warn!(
                    "more than {cap} streams (senders, connections, files) at once: the least recently used are forgotten before they have been idle {} s (their counts are kept; a sender heard from again starts a new stream)",
                    idle.as_secs()
                );
            }
            self.stats.streams_forgotten += excess as u64;
            gone.extend(rest.into_iter().take(excess).map(|r| r.1));
        }
        self.forget_idle_obs_streams(now);
        for name in gone {
            if let Some(s) = self.streams.remove(&name) {
                self.indexes.give_back(s.index);
                let group = source_group(&s.name).to_string();
                match self.retired.get_mut(&group) {
                    Some(c) => c.merge(s.cov),
                    None => {
                        let mut c = s.cov;
                        c.file = group.clone();
                        self.retired.insert(group, c);
                    }
                }
                // Evidence of the stream's records still names it.
            }
        }
        let mark = self.window.watermark();
        if mark > i64::MIN {
            let keep = EVIDENCE_RETENTION_MS.max(self.evidence.episode_gap_ms);
            self.evidence.forget_before(mark.saturating_sub(keep));
        }
        let tables = &self.obs.tables;
        if tables.names.kept() >= self.names_sweep_at
            || tables.ips.kept() >= self.addresses_sweep_at
        {
            self.forget_unheld();
        }
    }

    /// Give back the account names, host names and IPv6 addresses that
    /// nothing holds any more: not the detectors, not the observations
    /// waiting in the reorder window (or not yet in it), not the cross
    /// events waiting for stage 3, not the evidence cache. Runs when the
    /// names or the addresses kept have doubled since the last sweep, so
    /// its cost (one pass over the detectors' state) is spread over at
    /// least as many new ids as it looks at.
    ///
    /// Why: a daemon met a new account name with nearly every failed
    /// login of a spray of random names, and a new address with every
    /// source of a flood from IPv6 addresses (or host names), and kept
    /// them all as long as it ran (131 bytes a name, session 26). Stage 1
    /// holds ids only in its window; its detectors are in stage 2.
    fn forget_unheld(&mut self) {
        let tables = &self.obs.tables;
        let mut keep = tables.held_ids();
        for h in self.window.items() {
            if let Some(o) = &h.obs {
                keep.mark_obs(o);
            }
        }
        self.obs.mark_held(&mut keep);
        self.evidence.mark_held(&mut keep);
        if let Some(d) = &self.detection {
            d.detectors.mark_held(&mut keep);
        }
        let forgotten = self.obs.tables.forget_unheld(&keep);
        self.stats.names_forgotten += forgotten.names as u64;
        self.stats.addresses_forgotten += forgotten.addresses as u64;
        (self.names_sweep_at, self.addresses_sweep_at) =
            self.obs.tables.next_sweep_at(self.opts.sweep_floor);
        tracing::debug!(
            "ids no longer held given back: {} names ({} kept), {} IPv6 addresses ({} kept)",
            forgotten.names,
            self.obs.tables.names.kept(),
            forgotten.addresses,
            self.obs.tables.ips.kept()
        );
    }

    /// About how many findings [`take_output`](Self::take_output) would
    /// hand on now (indicator findings changed, behaviour findings made),
    /// so that a daemon can take them before their commit interval when
    /// a flood makes many (see [`OUTPUT_BATCH`]): each is a copy of its
    /// finding with its evidence (a few KB), and one interval of a flood
    /// of new peers made 400,000 of them, 1 GB waiting for one
    /// transaction.
    pub fn output_waiting(&self) -> usize {
        self.agg.touched_len() + self.out.len()
    }

    /// Findings made or changed since the last call, and the checkpoints
    /// of everything decoded so far.
    pub fn take_output(&mut self) -> LiveOutput {
        let mut findings = std::mem::take(&mut self.out);
        findings.extend(self.agg.take_touched(&self.engine.ioc));
        let clock = if self.fed_by_stage1 {
            // Stage 2: sightings reach the aggregator in event-time order,
            // as the watermark passes them; a session idle for an hour
            // before it can take nothing more. But not past the slowest
            // raw stream heard from: stage 1's idle flush (a minute
            // without input) moves its watermark to its newest event, and
            // a slower stream's sightings after the pause come behind it
            // (late, aggregated at once). Closed by the watermark alone,
            // an attack's session was closed under it and each later
            // batch of its sightings opened a finding of its own (one of
            // 75 sightings became eight), where `--stage all`, which
            // closes by its slowest stream, kept it whole.
            let mark = self.window.watermark();
            let slowest = self.raw_clocks.values().map(|c| c.0).min();
            let clock = slowest.map_or(mark, |s| s.min(mark));
            (mark > i64::MIN)
                .then(|| Timestamp::from_millisecond(clock).ok())
                .flatten()
        } else if self.opts.slowest_stream_clock && !self.holds.is_empty() {
            // A held source may bring sightings older than every stream
            // seen: no session is closed before it is heard from.
            None
        } else if self.opts.slowest_stream_clock {
            // Streams idle longer than `stream_idle` are forgotten in
            // `tick`, so a silent one holds the clock back only so long.
            self.streams.values().filter_map(|s| s.cov.last_time).min()
        } else {
            self.newest
        };
        if let Some(newest) = clock {
            let lateness = self.opts.event_time.allowed_lateness;
            let until = jiff::SignedDuration::try_from(lateness)
                .ok()
                .and_then(|d| newest.checked_sub(d).ok());
            if let Some(until) = until {
                findings.extend(self.agg.close_idle(until, &self.engine.ioc));
            }
        }
        let budget = self.opts.ioc_session_budget;
        let held = self.agg.held_bytes();
        let all = self.session_bytes.publish(held);
        if all > budget {
            // This pipeline's share of three quarters of the budget (all
            // of it when it has no sibling).
            let keep = (held as u128 * (budget - budget / 4) as u128 / all as u128) as usize;
            let closed = self.agg.close_least_recent(keep, &self.engine.ioc);
            self.session_bytes.publish(self.agg.held_bytes());
            if self.stats.ioc_sessions_closed_early == 0 {
                tracing::warn!(
                    "the open indicator sessions took more than {} MB (with those of this process's other pipelines): the {} least recently active here close now instead of after an hour without sightings (their findings are kept; a later sighting opens a new finding), and so on each time the limit is passed",
                    budget >> 20,
                    closed.len()
                );
            }
            self.stats.ioc_sessions_closed_early += closed.len() as u64;
            findings.extend(closed);
        }
        self.take_drafts();
        findings.extend(std::mem::take(&mut self.out));
        self.annotate(&mut findings);
        if !self.opts.cross_source {
            findings.retain(|f| !is_cross_source(f));
        }
        self.stats.findings += findings.len() as u64;
        let observations = self
            .export
            .as_mut()
            .map(|x| std::mem::take(&mut x.out))
            .unwrap_or_default();
        let sightings = observations
            .iter()
            .filter(|m| matches!(m, WireMessage::Sighting(_)))
            .count() as u64;
        self.stats.sightings_out += sightings;
        self.stats.observations_out += observations.len() as u64 - sightings;
        let summaries = self.take_summaries();
        self.sightings_held.promote(&mut self.checkpoints);
        LiveOutput {
            findings: dedup_latest(findings),
            checkpoints: std::mem::take(&mut self.checkpoints)
                .into_values()
                .collect(),
            observations,
            summaries,
            summary_watermark: self.advanced_to,
        }
    }

    /// Stage 2: how many cross events wait for [`LivePipeline::take_summaries`].
    /// Its tasks note it after every message, to know where each was
    /// raised ([`crate::summary_wire::Origin`]) without taking them one
    /// message at a time.
    pub fn summaries_pending(&self) -> usize {
        self.detection
            .as_ref()
            .map_or(0, |d| d.detectors.exported_len())
    }

    /// Stage 2: the cross events made since the last call, resolved.
    pub fn take_summaries(&mut self) -> Vec<Summary> {
        let (Some(producer), Some(d)) = (self.opts.export_summaries, &mut self.detection) else {
            return Vec::new();
        };
        let t = &self.obs.tables;
        d.detectors
            .take_exported()
            .iter()
            .map(|e| Summary::from_cross(e, t, producer))
            .collect()
    }

    /// Shutdown: decode what waits, release the reorder window, judge
    /// every open episode and session, and hand everything on.
    pub fn finish(mut self) -> LiveOutput {
        let now = Instant::now();
        let names: Vec<Arc<str>> = self
            .streams
            .values()
            .filter(|s| !s.waiting.is_empty())
            .map(|s| s.name.clone())
            .collect();
        for n in names {
            self.detect(&n, now);
        }
        // The hourly sums of the hours not over yet (the input is), dated
        // after the newest event: released by `flush_all`, not `flush`.
        self.take_due_sums(i64::MAX - 1);
        if let Some(x) = &mut self.export {
            self.window.flush_all(&mut |_, h| x.left(h));
        }
        self.flush_observations();
        let mut out = self.take_output();
        if let Some(mut d) = self.detection.take() {
            let tables = &self.obs.tables;
            let mut to = delivery!(self, &mut d.detectors);
            self.window.flush_all(&mut to);
            let mut drafts = d.detectors.take_drafts();
            let end = d.detectors.finish_parts(tables);
            drafts.extend(end.drafts);
            if let Some(producer) = self.opts.export_summaries {
                // The end of this worker's input, as `--stage all` judges
                // it when it stops: its open records, its flagged sources,
                // and `done` (stage 3 waits for it no more).
                out.summaries.extend(
                    end.cross
                        .iter()
                        .map(|e| Summary::from_cross(e, tables, producer)),
                );
                out.summaries.extend(
                    end.flagged
                        .iter()
                        .map(|s| Summary::flagged(*s, tables, producer)),
                );
                out.summaries.push(Summary {
                    producer,
                    origin: None,
                    body: SummaryBody::Done,
                });
            }
            let mut found = self.behaviour_findings(drafts);
            self.annotate(&mut found);
            out.findings.extend(found);
        }
        // Stage 2: the sightings that waited in the window are in the
        // findings below, so their records' checkpoints go with them.
        self.sightings_held.promote(&mut self.checkpoints);
        out.checkpoints
            .extend(std::mem::take(&mut self.checkpoints).into_values());
        let agg = std::mem::replace(&mut self.agg, Aggregator::new());
        let mut closing = agg;
        let mut found = closing.take_touched(&self.engine.ioc);
        found.extend(closing.finish(&self.engine.ioc));
        self.annotate(&mut found);
        out.findings.extend(found);
        if !self.opts.cross_source {
            out.findings.retain(|f| !is_cross_source(f));
        }
        out.findings = dedup_latest(out.findings);
        out
    }

    fn annotate(&mut self, findings: &mut [Finding]) {
        if let Some(d) = &self.detection {
            self.orb.annotate(
                findings,
                d.detectors.backdoor(),
                d.enricher,
                &self.engine.options.internal,
                d.cfg.orb.min_score,
            );
        }
    }

    /// Drafts with their evidence from the cache.
    fn behaviour_findings(&self, drafts: Vec<Draft>) -> Vec<Finding> {
        let cap = self.evidence.per_source_cap;
        drafts
            .into_iter()
            .map(|d| {
                let mut kept: Vec<&KeptRecord> = d
                    .srcs
                    .iter()
                    .filter_map(|s| self.evidence.get(*s))
                    .flat_map(|e| e.records.iter())
                    .filter(|r| {
                        r.time >= d.from
                            && r.time <= d.to
                            && d.kinds.contains(&r.kind)
                            && d.svc.is_none_or(|s| s == r.svc)
                    })
                    .collect();
                kept.sort_by_key(|r| (r.time, r.stream, r.number));
                let total = kept.len() as u64;
                kept.truncate(cap);
                let mut f = d.finding;
                f.evidence = kept
                    .into_iter()
                    .map(|r| Evidence {
                        file: r.stream_name.to_string(),
                        line: Some(r.number),
                        offset: Some(r.offset),
                        format: r.format.to_string(),
                        raw: shown(&r.raw),
                        time: Timestamp::from_millisecond(r.time).ok(),
                        context: false,
                    })
                    .collect();
                f.evidence_total = total;
                f
            })
            .collect()
    }

    /// Counts now.
    pub fn stats(&self) -> LiveStats {
        let mut s = self.stats.clone();
        s.streams = self.streams.len() + self.obs_streams.len();
        s.raw_stream_clocks = self.raw_clocks.len();
        s.orb_sources_forgotten = self.orb.forgotten();
        s.open_ioc_sessions = self.agg.open_sessions();
        s.ioc_session_bytes = self.agg.held_bytes();
        s.tracked_keys = self.detection.as_ref().map_or(0, |d| d.detectors.tracked());
        s.names_kept = self.obs.tables.names.kept();
        s.addresses_kept = self.obs.tables.ips.kept();
        s.hourly_sums = self.obs.sums_kept();
        if let Some(d) = &self.detection {
            s.limits = d.detectors.limits();
        }
        s.evidence_bytes = self.evidence.bytes.mine();
        s.evidence_not_kept = self.evidence.not_kept;
        s.reorder = self.window.stats();
        let mark = self.window.watermark();
        s.watermark = (mark > i64::MIN)
            .then(|| Timestamp::from_millisecond(mark).ok())
            .flatten();
        s
    }

    /// The detectors' bounds and how often each was reached so far (all
    /// zero, against the default configuration, when behaviour is off), for
    /// the daemon's metrics and status line.
    pub fn limits_reached(&self) -> Vec<LimitReached> {
        match &self.detection {
            Some(d) => d.detectors.limits().entries(d.cfg).to_vec(),
            None => self
                .stats
                .limits
                .entries(&BehaviourConfig::default())
                .to_vec(),
        }
    }

    /// The run's coverage so far: one entry per stream (forgotten streams
    /// folded into their source), the NetFlow decoder's counts, and the
    /// reorder window's.
    pub fn coverage(&self) -> Coverage {
        let mut c = Coverage {
            started: Some(self.started),
            ..Default::default()
        };
        let mut inputs: BTreeMap<String, InputCoverage> = self.retired.clone();
        for s in self.streams.values() {
            let mut cov = s.cov.clone();
            if !s.waiting.is_empty() {
                cov.notes.push(format!(
                    "{} lines wait for the format to be detected",
                    s.waiting.len()
                ));
            }
            inputs.insert(s.name.to_string(), cov);
        }
        c.inputs = inputs.into_values().collect();
        let st = self.window.stats();
        let mut b = orbwatch_detect::BehaviourCoverage {
            observations: st.accepted + st.late,
            untimed: self.obs.untimed,
            dropped: st.late,
            ..Default::default()
        };
        if st.late > 0 {
            b.notes.push(format!(
                "{} behaviour observations arrived more than the allowed lateness behind the newest event (at most {} ms): they were matched against indicators but not given to the behaviour detectors",
                st.late, st.max_late_ms
            ));
        }
        if st.released_early > 0 {
            b.notes.push(format!(
                "the reorder window was full {} times: observations were given to the detectors before the allowed lateness passed",
                st.released_early
            ));
        }
        if let Some(d) = &self.detection {
            b.notes.extend(d.detectors.limits().notes(d.cfg));
        }
        if self.stats.sums_left_early > 0 {
            b.notes.push(format!(
                "{} hourly sums (answered connections, outbound bytes) went to the detectors before their hour was over: more than {} were kept at once, and the smallest left early (their parts add up; an exfiltration judged on part of an hour may stay under its bar)",
                self.stats.sums_left_early, self.opts.max_hourly_sums
            ));
        }
        if self.stats.ioc_sessions_closed_early > 0 {
            c.notes.push(format!(
                "{} indicator sessions closed before an hour without sightings: those open took more than {} MB at once, and the least recently active closed early (a later sighting of the same indicator and peer made a new finding)",
                self.stats.ioc_sessions_closed_early,
                self.opts.ioc_session_budget >> 20
            ));
        }
        if self.evidence.not_kept > 0 {
            b.notes.push(format!(
                "{} records were not kept as evidence: the evidence budget ({} bytes) was spent",
                self.evidence.not_kept, self.evidence.budget
            ));
        }
        if self.detection.is_some() {
            c.behaviour = Some(b);
        }
        c.sightings = self.agg.sightings();
        c.finished = Some(Timestamp::now());
        c
    }
}

/// The aggregator of a pipeline: stage 1 captures sightings for stage 2
/// (see [`Aggregator::capturing`]); the others aggregate live.
fn new_aggregator(opts: &LiveOptions, evidence_limit: usize) -> Aggregator {
    if opts.export_observations.is_some() {
        Aggregator::capturing()
    } else {
        Aggregator::live(evidence_limit)
    }
}

/// Hands what the reorder window releases to the detectors, asking for
/// each observation's per-source records (prefetching them) when the
/// window says it comes [`LOOKAHEAD`](crate::event_time::LOOKAHEAD)
/// items later: they are then in cache when it is observed. Why: a
/// daemon whose event time follows the wall clock releases records long
/// after they arrived (the allowed lateness, or a full window's early
/// release), when what was prefetched as they entered the window is gone,
/// and most failed logins of a spray come from an address not seen for
/// days.
struct Delivery<'a> {
    detectors: &'a mut LiveDetectors<'static>,
    tables: &'a orbwatch_detect::behaviour::observe::Tables,
    agg: &'a mut Aggregator,
    ioc: &'a IocEngine,
    stats: &'a mut LiveStats,
    held: &'a mut HeldBack,
}

impl Release<Held> for Delivery<'_> {
    fn coming(&mut self, h: &Held) {
        if let Some(o) = &h.obs {
            self.detectors.prefetch(o, self.tables);
        }
    }

    fn release(&mut self, _time: i64, h: Held) {
        self.held.left(h.stream, h.seq);
        deliver(
            h,
            Some(&mut *self.detectors),
            self.tables,
            self.agg,
            self.ioc,
            self.stats,
        );
    }
}

/// A [`Delivery`] from the pipeline `$p`'s fields to `$detectors`: a
/// macro, not a method, so that the pipeline's other fields (its window)
/// stay free to borrow beside it.
macro_rules! delivery {
    ($p:ident, $detectors:expr) => {
        Delivery {
            detectors: $detectors,
            tables: &$p.obs.tables,
            agg: &mut $p.agg,
            ioc: &$p.engine.ioc,
            stats: &mut $p.stats,
            held: &mut $p.sightings_held,
        }
    };
}
use delivery;

/// What the reorder window releases (stage 2 and `all`): an observation
/// to the detectors, a sighting (stage 2) to the aggregator.
fn deliver(
    h: Held,
    detectors: Option<&mut LiveDetectors<'static>>,
    tables: &orbwatch_detect::behaviour::observe::Tables,
    agg: &mut Aggregator,
    ioc: &IocEngine,
    stats: &mut LiveStats,
) {
    match (h.wire, h.obs, detectors) {
        (Some(WireMessage::Sighting(w)), _, _) => aggregate_sighting(&w, agg, ioc, stats),
        (_, Some(o), Some(d)) => d.observe(&o, tables),
        _ => {}
    }
}

/// Stage 2: aggregate a sighting made by a stage-1 worker, if its
/// indicator id means here what it meant there.
///
/// Why the check: an id is a row's place in the index built from the
/// feeds a process loaded. Stage 1 and stage 2 load the same feeds (the
/// same `--feed` files and store), but reload them each on its own
/// (every 2 s from the store, or on SIGHUP), so for a moment one may
/// match with a feed version the other has not loaded yet, and then the
/// same id can name another row. A sighting whose indicator (and each
/// matched row) does not have, here, the feed and value it had at
/// stage 1 would be counted into the wrong finding: it is skipped,
/// counted and logged instead.
fn aggregate_sighting(
    w: &WireSighting,
    agg: &mut Aggregator,
    ioc: &IocEngine,
    stats: &mut LiveStats,
) {
    let s = &w.sighting;
    let same = |id: u32| {
        ioc.describe(id, &s.matched_value)
            .is_some_and(|v| v.meta.feed == w.feed && v.value == w.value)
    };
    if !same(s.indicator) || !s.rows.iter().all(|r| same(r.id)) {
        stats.sightings_mismatched += 1;
        let n = stats.sightings_mismatched;
        if n <= 10 || n.is_power_of_two() {
            let here = ioc.describe(s.indicator, &s.matched_value).map_or_else(
                || "no indicator".to_string(),
                |v| format!("{} {}", v.meta.feed, v.value),
            );
            tracing::error!(
                "{}: the stage-1 worker {:016x} matched indicator {} as {} {}, which is {here} here: sighting skipped ({n} so far). Give stage 1 and stage 2 the same --feed files and store; during a feed reload this passes once both have the new version",
                s.origin.file,
                w.producer,
                s.indicator,
                w.feed,
                w.value
            );
        }
        return;
    }
    agg.add(s.as_sighting());
}

/// The source a stream belongs to: `syslog-tcp 0.0.0.0:6514` for
/// `syslog-tcp 0.0.0.0:6514 from 10.1.2.3:40122`.
fn source_group(stream: &str) -> &str {
    stream.split(" from ").next().unwrap_or(stream)
}

/// Findings made from many sources' observations together (see
/// [`LiveOptions::cross_source`]).
fn is_cross_source(f: &Finding) -> bool {
    f.kind == orbwatch_detect::FindingKind::DistributedBruteforce
}

/// Keep the last state of each finding id, in first-appearance order.
fn dedup_latest(findings: Vec<Finding>) -> Vec<Finding> {
    let mut at: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<Finding> = Vec::with_capacity(findings.len());
    for f in findings {
        match at.get(&f.id) {
            Some(&i) => out[i] = f,
            None => {
                at.insert(f.id.clone(), out.len());
                out.push(f);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{EvidenceCache, KeptOrigin, Raw, StreamIndexes, shown};
    use orbwatch_detect::behaviour::observe::{NodeId, Obs, ObsKind};
    use std::sync::Arc;

    fn failure(src: NodeId, time: i64) -> Obs {
        Obs {
            time,
            aux: 0,
            evidence: 0,
            src,
            dst: u64::MAX,
            dst_port: 22,
            svc: 1,
            kind: ObsKind::AuthFailure,
            flags: 0,
        }
    }

    /// The evidence queue: a source found again after its turn in the
    /// queue came keeps its records (queued again at its newest time),
    /// an idle one is forgotten with its bytes given back, and sources
    /// queued after the front are still found at their places.
    #[test]
    fn evidence_of_active_sources_survives_forgetting_and_idle_sources_go() {
        let spent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut cache = EvidenceCache::new(Some(Arc::clone(&spent)), 1 << 20, 5, 3_600_000);
        let name: Arc<str> = Arc::from("test stream");
        let mut number = 0;
        let mut keep = |cache: &mut EvidenceCache, src: NodeId, time: i64| {
            number += 1;
            let at = KeptOrigin {
                index: 0,
                name: &name,
                format: "syslog",
                number,
                offset: 0,
                identity: None,
            };
            let line = format!("line {number} from {src} at {time}");
            cache.keep(&failure(src, time), &at, Raw::Owned(line.into_bytes()));
        };
        let lines = |cache: &EvidenceCache, src: NodeId| -> Vec<u64> {
            cache
                .get(src)
                .map(|e| e.records.iter().map(|r| r.number).collect())
                .unwrap_or_default()
        };
        keep(&mut cache, 1, 1_000);
        keep(&mut cache, 2, 2_000);
        keep(&mut cache, 3, 3_000);
        keep(&mut cache, 1, 90_000);
        assert_eq!(lines(&cache, 1), [1, 4]);
        // 1 was queued at 1,000 but is active at 90,000: queued again.
        // 2 is idle: forgotten. 3 was queued at 3,000: not yet looked at.
        cache.forget_before(2_500);
        assert_eq!(lines(&cache, 1), [1, 4]);
        assert_eq!(lines(&cache, 2), Vec::<u64>::new());
        assert_eq!(lines(&cache, 3), [3]);
        keep(&mut cache, 4, 95_000);
        keep(&mut cache, 3, 96_000);
        assert_eq!(lines(&cache, 3), [3, 6]);
        assert_eq!(lines(&cache, 4), [5]);
        cache.forget_before(95_500);
        assert_eq!(lines(&cache, 1), Vec::<u64>::new());
        assert_eq!(lines(&cache, 4), Vec::<u64>::new());
        assert_eq!(lines(&cache, 3), [3, 6]);
        cache.forget_before(i64::MAX);
        assert!(cache.at.is_empty() && cache.queue.is_empty());
        assert_eq!(cache.bytes.mine(), 0);
        assert_eq!(spent.load(std::sync::atomic::Ordering::Relaxed), 0);
    }

    /// A kept record is the record as read, cut to the cap, whether
    /// owned or borrowed; it is shown with invalid bytes replaced.
    #[test]
    fn kept_records_are_cut_to_the_cap_and_shown_with_invalid_bytes_replaced() {
        let line = b"Mar  1 10:00:00 srv sshd[1]: Failed password for root".to_vec();
        let kept = Raw::Owned(line.clone()).into_kept(2048);
        assert_eq!(&*kept, line.as_slice());
        assert_eq!(Raw::Borrowed(&line).into_kept(2048), kept);
        assert_eq!(&*Raw::Owned(line.clone()).into_kept(10), b"Mar  1 10:");
        assert_eq!(&*Raw::Borrowed(&line).into_kept(10), b"Mar  1 10:");
        assert_eq!(shown(&kept), String::from_utf8(line).unwrap());
        let bad = b"user \xff\xfe from 10.0.0.1".to_vec();
        let kept = Raw::Owned(bad.clone()).into_kept(2048);
        assert_eq!(shown(&kept), "user \u{fffd}\u{fffd} from 10.0.0.1");
        assert_eq!(Raw::Borrowed(&bad).into_kept(2048), kept);
        // Cut inside a character: the piece left is replaced too.
        let e_acute = "caf\u{e9}".as_bytes().to_vec();
        assert_eq!(shown(&Raw::Owned(e_acute).into_kept(4)), "caf\u{fffd}");
    }

    /// Past 2^24 streams the indexes go round, skipping those of streams
    /// still alive; a forgotten stream's index is handed out again.
    #[test]
    fn stream_indexes_go_round_past_those_still_held() {
        let mut ix = StreamIndexes::default();
        assert_eq!(ix.take(), 0); // a forwarder connected at the start
        assert_eq!(ix.take(), 1);
        ix.give_back(1);
        ix.next = StreamIndexes::LIMIT - 2;
        assert_eq!(ix.take(), StreamIndexes::LIMIT - 2);
        assert_eq!(ix.take(), StreamIndexes::LIMIT - 1);
        // Round again: 0 is still held, 1 was given back.
        assert_eq!(ix.take(), 1);
        assert_eq!(ix.take(), 2);
        ix.give_back(0);
        ix.next = 0;
        assert_eq!(ix.take(), 0);
        assert_eq!(ix.take(), 3);
    }
}
