//! The seam between live record sources and the engine of `orbwatch watch`.
//!
//! ```text
//!  tail (orbwatch-tail) ─┐
//!  syslog UDP/TCP/TLS ───┤  LiveRecord      ┌──────────────────────────┐
//!  NetFlow/IPFIX UDP ────┼──(bounded)──────►│ live pipeline (engine):  │──► findings ──► store,
//!  stdin ────────────────┤  channel         │ decode, match, reorder,  │                 alerts,
//!  Kafka (later) ────────┘                  │ detectors                │                 blocking
//!                                           └──────────────────────────┘
//!                 ◄──── commits: checkpoints of records whose findings are stored
//! ```
//!
//! Why a crate of its own: sources (sockets, file followers, Kafka
//! consumers) and the engine are built and tested apart, and neither
//! should pull in the other's dependencies. A source only needs this
//! crate: it sends [`LiveRecord`]s into a [`RecordSender`] and counts what
//! it did in its [`SourceStats`]; the engine decodes, matches and detects.
//!
//! Back-pressure: the channel is bounded. A source that can wait (a
//! followed file, a TCP connection, Kafka) blocks in [`RecordSender::send`]
//! so nothing is lost; a source that cannot (UDP) uses
//! [`RecordSender::try_send`] and counts what it had to drop, so a drop is
//! always visible in the stats and never silent.
//!
//! Prefiltering: a sender may carry a [`Prefilter`] from the engine
//! ([`RecordSender::with_prefilter`]); each record is then tested on the
//! source's own thread before it is queued, and the answer travels with
//! it ([`LiveRecord::prefiltered`]). Sources do nothing for it.
//!
//! Work per stream: a source whose thread reads one stream (a TCP or TLS
//! connection) sends through a [`StreamSlot`], with
//! [`RecordSender::send_in`] or in batches (below). The prefilter may
//! then also give the stream a [`StreamWork`] (`watch` gives a syslog
//! connection its decoder and its test against the indicators), run on
//! each record there, in order; the result rides with the record
//! ([`LiveRecord::prework`], [`LiveRecord::prefiltered`]). The pipeline
//! thread, which limits
//! `watch`'s rate, is spared that work, and connections decode in
//! parallel.
//!
//! Batches: such a source also hands over all the records of one read
//! at once ([`RecordSender::prepare_in`], then
//! [`RecordSender::send_batch`]). One record per channel message cost
//! both threads a cache-line transfer for each record: the channel's slot,
//! and the stream name's reference count, bumped by the connection's
//! thread and dropped by the pipeline's (96 % of the connection's
//! hand-over in a profile at 580,000 msg/s). The receiver still yields
//! one record at a time.

use std::any::Any;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use jiff::Timestamp;

/// What a record's bytes are, so the pipeline knows how to decode them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// One line of a text log (no line ending): decoded as in `hunt`,
    /// with the stream's decoder detected from its first lines or forced.
    Line,
    /// One syslog message as received (RFC 3164 or RFC 5424, `<PRI>`
    /// included, framing removed): decoded by the syslog decoders.
    Syslog,
    /// One NetFlow v5/v9 or IPFIX export datagram from `exporter`: the
    /// pipeline keeps templates per exporter and observation domain.
    NetflowDatagram { exporter: SocketAddr },
}

/// A position in a source that the pipeline hands back once every
/// finding from records up to it is committed, so the source can persist
/// it (a followed file's offset, a Kafka offset). Opaque to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Which source the position belongs to (a followed file's key, a
    /// topic-partition).
    pub source: Arc<str>,
    /// Position after this record (byte offset, Kafka offset).
    pub position: u64,
    /// Source-specific identity (a file's device, inode and head hash),
    /// stored with the position.
    pub identity: Arc<str>,
}

/// One record from a live source.
#[derive(Debug, Clone)]
pub struct LiveRecord {
    /// The stream the record belongs to: each stream keeps its own
    /// decoder state. It is also the evidence's "file": a followed file's
    /// path, `syslog-tcp 0.0.0.0:6514 from 10.1.2.3:40122`,
    /// `netflow 10.1.2.3:2055`.
    pub stream: Arc<str>,
    /// The record's number in its stream, from 1 (a followed file: its
    /// line number; a socket: messages received on it).
    pub number: u64,
    /// Byte offset of the record in its stream (0 where none applies).
    pub offset: u64,
    pub payload: Payload,
    pub bytes: Vec<u8>,
    /// When the record was received (the clock for sources whose records
    /// carry no time, and for lag).
    pub received: Timestamp,
    /// To be committed once this record's findings are stored.
    pub checkpoint: Option<Checkpoint>,
    /// Set by [`RecordSender`] when it has a [`Prefilter`]: sources leave
    /// it `None`.
    pub prefiltered: Option<Prefiltered>,
    /// Set by [`RecordSender::send_in`] when the stream has a
    /// [`StreamWork`]: sources leave it empty.
    pub prework: Prework,
}

/// What a stream's [`StreamWork`] made of one record, for the engine;
/// opaque to sources. A copy of a record leaves it behind (the pipeline
/// then does the work itself), so records stay cloneable.
#[derive(Default)]
pub struct Prework(Option<Box<dyn Any + Send>>);

impl Prework {
    /// Work done on a record: `value` goes to the pipeline with it.
    pub fn new(value: impl Any + Send) -> Self {
        Self(Some(Box::new(value)))
    }

    /// The work, if there is some and it is a `T` (anything else stays).
    pub fn take<T: Any>(&mut self) -> Option<T> {
        match self.0.take()?.downcast::<T>() {
            Ok(v) => Some(*v),
            Err(other) => {
                self.0 = Some(other);
                None
            }
        }
    }

    /// No work rides with the record.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }
}

impl Clone for Prework {
    fn clone(&self) -> Self {
        Self(None)
    }
}

impl std::fmt::Debug for Prework {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Prework(done)"
        } else {
            "Prework(none)"
        })
    }
}

/// Work on every record of one stream, in the stream's order, on the
/// thread of the source that reads it (see [`Prefilter::stream_work`]).
pub trait StreamWork: Send {
    /// Do the work on `record`: set its [`LiveRecord::prework`], and its
    /// [`LiveRecord::prefiltered`] when the work also answers what
    /// [`Prefilter::check`] would (which is then not asked).
    fn work(&mut self, record: &mut LiveRecord);
}

/// What a source that reads one stream on its thread keeps for
/// [`RecordSender::send_in`]: the stream's [`StreamWork`], asked for at
/// its first record.
#[derive(Default)]
pub struct StreamSlot {
    work: Option<Box<dyn StreamWork>>,
    asked: bool,
}

/// Work the engine hands to the sources' threads: each record is looked
/// at there, before it is queued, instead of on the one thread that
/// decodes, matches and detects. `watch` uses it for the indicator
/// index's quick test of a record's raw addresses (9 % of the pipeline
/// thread at 300,000 msg/s, while the TCP connection thread was mostly
/// idle).
pub trait Prefilter: Send + Sync {
    /// What the pipeline would find out about `bytes` first; `None` where
    /// it does not apply (a NetFlow datagram).
    fn check(&self, payload: Payload, bytes: &[u8]) -> Option<Prefiltered>;

    /// Work for the records of one stream, made for its first record and
    /// run on each record, in order, on the thread of the source that
    /// reads the stream (records sent with [`RecordSender::send_in`]).
    /// `None`, the default: the pipeline does it.
    fn stream_work(&self, _first: &LiveRecord) -> Option<Box<dyn StreamWork>> {
        None
    }
}

/// A record's [`Prefilter`] result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefiltered {
    /// Which indicators it was computed against: the pipeline uses it
    /// only if it still matches against the same ones (a feed reload
    /// between the source's thread and the pipeline makes it stale).
    pub generation: u64,
    /// The record's raw text names an address that may be an indicator.
    pub may_match: bool,
}

/// Counters one source keeps; the daemon's status line and metrics read
/// them. All counts since the source started.
#[derive(Debug, Default)]
pub struct SourceStats {
    /// Records handed to the pipeline.
    pub records: AtomicU64,
    /// Bytes received (payload, before framing is removed).
    pub bytes: AtomicU64,
    /// Records dropped because the pipeline was full (UDP only).
    pub dropped_full: AtomicU64,
    /// Messages longer than the bound, cut to it (counted, kept).
    pub truncated: AtomicU64,
    /// Input that could not be framed (bad octet count, TLS errors…).
    pub malformed: AtomicU64,
    /// Connections accepted / refused (limit reached) / closed idle.
    pub connections: AtomicU64,
    pub refused: AtomicU64,
    pub idle_closed: AtomicU64,
    /// Datagrams the kernel dropped before we read them (UDP receive
    /// buffer overflow, from `SO_RXQ_OVFL` or `/proc/net/snmp`).
    pub kernel_drops: AtomicU64,
}

impl SourceStats {
    /// Add `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A copy of the counters, for display.
    pub fn snapshot(&self) -> SourceStatsSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SourceStatsSnapshot {
            records: g(&self.records),
            bytes: g(&self.bytes),
            dropped_full: g(&self.dropped_full),
            truncated: g(&self.truncated),
            malformed: g(&self.malformed),
            connections: g(&self.connections),
            refused: g(&self.refused),
            idle_closed: g(&self.idle_closed),
            kernel_drops: g(&self.kernel_drops),
        }
    }
}

/// [`SourceStats`] at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SourceStatsSnapshot {
    pub records: u64,
    pub bytes: u64,
    pub dropped_full: u64,
    pub truncated: u64,
    pub malformed: u64,
    pub connections: u64,
    pub refused: u64,
    pub idle_closed: u64,
    pub kernel_drops: u64,
}

/// The pipeline's input. Cloned by every source.
#[derive(Clone)]
pub struct RecordSender {
    tx: crossbeam_channel::Sender<Batch>,
    prefilter: Option<Arc<dyn Prefilter>>,
    counts: Arc<QueueCounts>,
}

/// What travels through the channel: one record, or the records of one
/// read of a source that reads one stream (see the crate's doc on
/// batches). A batch is never empty.
enum Batch {
    One(LiveRecord),
    Many(Vec<LiveRecord>),
}

/// Shared by the senders and the receiver of one channel.
#[derive(Debug)]
struct QueueCounts {
    /// Records the channel may hold (the channel's slots are this many
    /// too, and a batch fills one slot, so records are counted here).
    capacity: usize,
    /// Records queued in batches beyond the one slot each fills: the
    /// records queued are the channel's length plus this. Counted once
    /// per batch, so single records cost no extra atomic.
    beyond_slots: AtomicUsize,
    /// The receiver is gone: a waiting sender stops waiting.
    closed: std::sync::atomic::AtomicBool,
}

impl QueueCounts {
    /// Records in the channel (not those a receiver has taken a batch
    /// of), given how many of its slots are used.
    fn queued(&self, slots_used: usize) -> usize {
        slots_used + self.beyond_slots.load(Ordering::Relaxed)
    }
}

/// The pipeline's end of the channel: yields records one at a time, in
/// the order each source sent them, whether they came alone or in a
/// batch. Records the pipeline has not taken yet are dropped with it.
pub struct RecordReceiver {
    rx: crossbeam_channel::Receiver<Batch>,
    /// The rest of the batch being taken.
    rest: RefCell<std::vec::IntoIter<LiveRecord>>,
    counts: Arc<QueueCounts>,
}

impl RecordReceiver {
    fn unpack(&self, b: Batch) -> Option<LiveRecord> {
        match b {
            Batch::One(r) => Some(r),
            Batch::Many(v) => {
                self.counts
                    .beyond_slots
                    .fetch_sub(v.len().saturating_sub(1), Ordering::Relaxed);
                let mut it = v.into_iter();
                let first = it.next();
                *self.rest.borrow_mut() = it;
                first
            }
        }
    }

    fn next_of_batch(&self) -> Option<LiveRecord> {
        self.rest.borrow_mut().next()
    }

    /// The next record, waiting for one while every sender lives.
    pub fn recv(&self) -> Result<LiveRecord, crossbeam_channel::RecvError> {
        if let Some(r) = self.next_of_batch() {
            return Ok(r);
        }
        loop {
            if let Some(r) = self.unpack(self.rx.recv()?) {
                return Ok(r);
            }
        }
    }

    /// The next record, waiting at most `timeout` for one.
    pub fn recv_timeout(
        &self,
        timeout: std::time::Duration,
    ) -> Result<LiveRecord, crossbeam_channel::RecvTimeoutError> {
        if let Some(r) = self.next_of_batch() {
            return Ok(r);
        }
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(r) = self.unpack(self.rx.recv_deadline(deadline)?) {
                return Ok(r);
            }
        }
    }

    /// The next record if one is queued.
    pub fn try_recv(&self) -> Result<LiveRecord, crossbeam_channel::TryRecvError> {
        if let Some(r) = self.next_of_batch() {
            return Ok(r);
        }
        loop {
            if let Some(r) = self.unpack(self.rx.try_recv()?) {
                return Ok(r);
            }
        }
    }

    /// The records queued now, without waiting.
    pub fn try_iter(&self) -> impl Iterator<Item = LiveRecord> + '_ {
        std::iter::from_fn(|| self.try_recv().ok())
    }

    /// Records queued (lag, for the status line).
    pub fn len(&self) -> usize {
        self.rest.borrow().len() + self.counts.queued(self.rx.len())
    }

    /// No record is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for RecordReceiver {
    fn drop(&mut self) {
        self.counts.closed.store(true, Ordering::Relaxed);
    }
}

/// The pipeline has stopped: no record will be taken any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineClosed;

impl std::fmt::Display for PipelineClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the pipeline has stopped")
    }
}

impl std::error::Error for PipelineClosed {}

/// Why [`RecordSender::send_within`] did not hand its record over.
#[derive(Debug)]
pub enum SendWithin {
    /// The pipeline stayed full for the whole limit: here is the record
    /// back, to send again after serving what else the source must do.
    Full(Box<LiveRecord>),
    /// The pipeline has stopped.
    Closed,
}

/// A bounded channel of `capacity` records between sources and the
/// pipeline. A batch waits until all its records fit, a single record
/// until a channel slot is free, so where both kinds of sender share a
/// channel it may hold up to twice `capacity` records for a moment.
pub fn channel(capacity: usize) -> (RecordSender, RecordReceiver) {
    let capacity = capacity.max(1);
    let (tx, rx) = crossbeam_channel::bounded(capacity);
    let counts = Arc::new(QueueCounts {
        capacity,
        beyond_slots: AtomicUsize::new(0),
        closed: std::sync::atomic::AtomicBool::new(false),
    });
    (
        RecordSender {
            tx,
            prefilter: None,
            counts: Arc::clone(&counts),
        },
        RecordReceiver {
            rx,
            rest: RefCell::new(Vec::new().into_iter()),
            counts,
        },
    )
}

impl RecordSender {
    /// This sender, running `prefilter` on each record on the sending
    /// thread before queueing it (see [`Prefilter`]).
    pub fn with_prefilter(mut self, prefilter: Arc<dyn Prefilter>) -> Self {
        self.prefilter = Some(prefilter);
        self
    }

    fn prefiltered(&self, mut record: LiveRecord) -> LiveRecord {
        if let Some(p) = &self.prefilter
            && record.prefiltered.is_none()
        {
            record.prefiltered = p.check(record.payload, &record.bytes);
        }
        record
    }

    /// A record of the stream whose `slot` this source's thread keeps,
    /// with the prefilter's answer and the stream's [`StreamWork`] done
    /// (if the prefilter gives the stream one), ready for
    /// [`send_batch`](Self::send_batch).
    pub fn prepare_in(&self, slot: &mut StreamSlot, mut record: LiveRecord) -> LiveRecord {
        if let Some(p) = &self.prefilter {
            if !slot.asked {
                slot.asked = true;
                slot.work = p.stream_work(&record);
            }
            if let Some(w) = &mut slot.work {
                w.work(&mut record);
            }
        }
        // The prefilter's own test, unless the stream work answered.
        self.prefiltered(record)
    }

    /// As [`send`](Self::send), for a source whose thread reads one
    /// stream and keeps its `slot`: the record also gets the stream's
    /// [`StreamWork`] done, if the prefilter gives the stream one.
    pub fn send_in(&self, slot: &mut StreamSlot, record: LiveRecord) -> Result<(), PipelineClosed> {
        let record = self.prepare_in(slot, record);
        self.send(record)
    }

    /// Hand over `records` (made by [`prepare_in`](Self::prepare_in), or
    /// sent as they are) in one channel message, waiting while the
    /// pipeline is full, as [`send`](Self::send) does. `records` is left
    /// empty, with room for as many.
    pub fn send_batch(&self, records: &mut Vec<LiveRecord>) -> Result<(), PipelineClosed> {
        let n = records.len();
        let batch = match n {
            0 => return Ok(()),
            1 => match records.pop() {
                Some(r) => Batch::One(r),
                None => return Ok(()),
            },
            // The next batch is likely the size of this one (a
            // connection's reads are alike): room for as many.
            _ => Batch::Many(std::mem::replace(records, Vec::with_capacity(n))),
        };
        self.wait_for_room(n)?;
        self.counts.beyond_slots.fetch_add(n - 1, Ordering::Relaxed);
        let sent = self.tx.send(batch);
        if sent.is_err() {
            self.counts.beyond_slots.fetch_sub(n - 1, Ordering::Relaxed);
        }
        sent.map_err(|_| PipelineClosed)
    }

    /// Wait until `n` more records fit (or the channel is empty: a batch
    /// larger than the whole channel goes alone).
    ///
    /// Why not the channel's own blocking send: with a full channel the
    /// pipeline frees one slot at a time, and a sender woken for every
    /// slot spends as much CPU switching as the pipeline spends working
    /// (a quarter of all cycles in a profile on 2 cores). A sender that
    /// finds the channel full sleeps until it is half empty, then goes on.
    fn wait_for_room(&self, n: usize) -> Result<(), PipelineClosed> {
        let capacity = self.counts.capacity;
        let half = capacity / 2;
        let mut first = true;
        loop {
            if self.counts.closed.load(Ordering::Relaxed) {
                return Err(PipelineClosed);
            }
            let queued = self.queued();
            if queued == 0 || (queued + n <= capacity && (first || queued <= half)) {
                return Ok(());
            }
            first = false;
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }

    /// Hand a record over, waiting while the pipeline is full (sources
    /// that can wait: files, TCP, Kafka). A sender that finds it full
    /// sleeps until it is half empty rather than waking for every slot
    /// freed (see `wait_for_room`).
    pub fn send(&self, record: LiveRecord) -> Result<(), PipelineClosed> {
        let record = self.prefiltered(record);
        match self.tx.try_send(Batch::One(record)) {
            Ok(()) => Ok(()),
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => Err(PipelineClosed),
            Err(crossbeam_channel::TrySendError::Full(record)) => {
                self.wait_for_room(1)?;
                self.tx.send(record).map_err(|_| PipelineClosed)
            }
        }
    }

    /// Hand a record over, waiting at most about `limit` while the
    /// pipeline is full; the record comes back in [`SendWithin::Full`]
    /// when it stayed full.
    ///
    /// Why a source needs it: a source thread that also serves requests
    /// from the pipeline's thread (a Kafka consumer commits offsets for
    /// it) must never wait for the pipeline without a limit. The pipeline
    /// may be waiting for that very request while the channel is full,
    /// and neither would move again (a worker hung this way on a backlog
    /// of a million records).
    pub fn send_within(
        &self,
        record: LiveRecord,
        limit: std::time::Duration,
    ) -> Result<(), SendWithin> {
        let record = self.prefiltered(record);
        let mut record = match self.tx.try_send(Batch::One(record)) {
            Ok(()) => return Ok(()),
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => {
                return Err(SendWithin::Closed);
            }
            Err(crossbeam_channel::TrySendError::Full(r)) => r,
        };
        let half = self.counts.capacity / 2;
        let start = std::time::Instant::now();
        loop {
            // As in `send`: sleep until the channel is half empty rather
            // than waking for every free slot.
            std::thread::sleep(std::time::Duration::from_micros(200));
            if self.queued() <= half || start.elapsed() >= limit {
                match self.tx.try_send(record) {
                    Ok(()) => return Ok(()),
                    Err(crossbeam_channel::TrySendError::Disconnected(_)) => {
                        return Err(SendWithin::Closed);
                    }
                    Err(crossbeam_channel::TrySendError::Full(r)) => record = r,
                }
                if start.elapsed() >= limit {
                    let Batch::One(record) = record else {
                        unreachable!("send_within sends one record")
                    };
                    return Err(SendWithin::Full(Box::new(record)));
                }
            }
        }
    }

    /// Hand a record over without waiting; `Ok(false)` when the pipeline
    /// is full (the caller counts the drop in `dropped_full`).
    pub fn try_send(&self, record: LiveRecord) -> Result<bool, PipelineClosed> {
        let record = self.prefiltered(record);
        match self.tx.try_send(Batch::One(record)) {
            Ok(()) => Ok(true),
            Err(crossbeam_channel::TrySendError::Full(_)) => Ok(false),
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => Err(PipelineClosed),
        }
    }

    /// Records waiting in the channel (lag, for the status line).
    pub fn queued(&self) -> usize {
        self.counts.queued(self.tx.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u64) -> LiveRecord {
        LiveRecord {
            prefiltered: None,
            prework: Prework::default(),
            stream: Arc::from("test"),
            number: n,
            offset: 0,
            payload: Payload::Line,
            bytes: b"x".to_vec(),
            received: Timestamp::UNIX_EPOCH,
            checkpoint: None,
        }
    }

    /// Numbers each record of its stream from the stream's first record,
    /// and counts the streams it was made for.
    struct Numbering {
        streams: std::sync::atomic::AtomicU64,
    }

    struct Counter {
        first: u64,
        seen: u64,
    }

    impl StreamWork for Counter {
        fn work(&mut self, record: &mut LiveRecord) {
            self.seen += 1;
            record.prework = Prework::new((self.first, self.seen, record.number));
        }
    }

    impl Prefilter for Numbering {
        fn check(&self, _: Payload, _: &[u8]) -> Option<Prefiltered> {
            None
        }
        fn stream_work(&self, first: &LiveRecord) -> Option<Box<dyn StreamWork>> {
            self.streams.fetch_add(1, Ordering::Relaxed);
            Some(Box::new(Counter {
                first: first.number,
                seen: 0,
            }))
        }
    }

    /// A stream's work is made once, for its first record, and runs on
    /// every record of the stream in order; its result rides with the
    /// record, stays put when asked for as another type, and is left
    /// behind by a copy. Records sent without a slot get none.
    #[test]
    fn a_streams_work_is_made_at_its_first_record_and_done_on_each_in_order() {
        let numbering = Arc::new(Numbering {
            streams: AtomicU64::new(0),
        });
        let (tx, rx) = channel(16);
        let tx = tx.with_prefilter(numbering.clone());
        let mut a = StreamSlot::default();
        let mut b = StreamSlot::default();
        tx.send_in(&mut a, record(7)).expect("room");
        tx.send_in(&mut a, record(8)).expect("room");
        tx.send_in(&mut b, record(1)).expect("room");
        tx.send_in(&mut a, record(9)).expect("room");
        tx.send(record(10)).expect("room");
        assert_eq!(numbering.streams.load(Ordering::Relaxed), 2);
        let mut got = Vec::new();
        while let Ok(mut r) = rx.try_recv() {
            assert!(
                r.prework.clone().is_empty(),
                "a copy leaves the work behind"
            );
            assert_eq!(r.prework.take::<String>(), None);
            got.push(r.prework.take::<(u64, u64, u64)>());
        }
        assert_eq!(
            got,
            [
                Some((7, 1, 7)),
                Some((7, 2, 8)),
                Some((1, 1, 1)),
                Some((7, 3, 9)),
                None
            ]
        );
        // Without a prefilter a slot gets no work.
        let (plain, rx) = channel(1);
        plain
            .send_in(&mut StreamSlot::default(), record(1))
            .expect("room");
        assert!(rx.recv().expect("record").prework.is_empty());
    }

    #[test]
    fn a_full_channel_refuses_without_waiting_and_a_closed_one_says_so() {
        let (tx, rx) = channel(1);
        assert_eq!(tx.try_send(record(1)), Ok(true));
        assert_eq!(tx.try_send(record(2)), Ok(false));
        assert_eq!(tx.queued(), 1);
        assert_eq!(rx.recv().map(|r| r.number).ok(), Some(1));
        drop(rx);
        assert_eq!(tx.send(record(3)), Err(PipelineClosed));
        assert_eq!(tx.try_send(record(4)), Err(PipelineClosed));
    }

    /// A sender waiting on a full channel goes on once the pipeline has
    /// drained half of it, and gives up when the pipeline goes away.
    #[test]
    fn a_waiting_sender_resumes_at_half_empty_and_stops_when_closed() {
        let (tx, rx) = channel(8);
        for n in 0..8 {
            tx.send(record(n)).expect("room");
        }
        let t = std::thread::spawn({
            let tx = tx.clone();
            move || tx.send(record(8))
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!t.is_finished(), "waits while full");
        for _ in 0..4 {
            rx.recv().expect("record");
        }
        assert_eq!(t.join().expect("sender"), Ok(()));
        assert_eq!(rx.len(), 5);
        let t = std::thread::spawn({
            let tx = tx.clone();
            move || {
                tx.send(record(9)).expect("room");
                tx.send(record(10)).expect("room");
                tx.send(record(11)).expect("room");
                tx.send(record(12))
            }
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(rx);
        assert_eq!(t.join().expect("sender"), Err(PipelineClosed));
        assert_eq!(tx.try_send(record(4)), Err(PipelineClosed));
    }

    /// Batches and single records come out one record at a time, each
    /// source's in its order; the queue's length counts records, not
    /// channel messages, wherever they wait.
    #[test]
    fn batches_come_out_record_by_record_and_count_as_records() {
        let (tx, rx) = channel(16);
        let mut slot = StreamSlot::default();
        let mut batch: Vec<LiveRecord> = (1..=5)
            .map(|n| tx.prepare_in(&mut slot, record(n)))
            .collect();
        tx.send_batch(&mut batch).expect("room");
        assert!(batch.is_empty(), "the batch is handed over whole");
        tx.send(record(6)).expect("room");
        batch.push(record(7));
        tx.send_batch(&mut batch).expect("room");
        tx.send_batch(&mut Vec::new())
            .expect("an empty batch is nothing");
        assert_eq!(tx.queued(), 7);
        assert_eq!(rx.len(), 7);
        assert_eq!(rx.recv().map(|r| r.number).ok(), Some(1));
        assert_eq!(rx.len(), 6, "the rest of a batch being taken still counts");
        assert_eq!(
            tx.queued(),
            2,
            "the sender sees what is left in the channel (6, 7)"
        );
        let rest: Vec<u64> = rx.try_iter().map(|r| r.number).collect();
        assert_eq!(rest, [2, 3, 4, 5, 6, 7]);
        assert!(rx.is_empty());
        assert_eq!(tx.queued(), 0);
        assert!(matches!(
            rx.recv_timeout(std::time::Duration::from_millis(1)),
            Err(crossbeam_channel::RecvTimeoutError::Timeout)
        ));
    }

    /// A batch waits until it fits (records, not channel messages, are
    /// what the capacity bounds), a batch larger than the whole channel
    /// goes alone into an empty one, and a waiting batch gives up when
    /// the pipeline goes away.
    #[test]
    fn a_batch_waits_for_room_for_all_its_records() {
        let (tx, rx) = channel(8);
        for n in 0..6 {
            tx.send(record(n)).expect("room");
        }
        let t = std::thread::spawn({
            let tx = tx.clone();
            move || tx.send_batch(&mut (10..14).map(record).collect())
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!t.is_finished(), "6 queued + 4 > 8: waits");
        assert_eq!(rx.len(), 6);
        for _ in 0..3 {
            rx.recv().expect("record");
        }
        assert_eq!(t.join().expect("sender"), Ok(()));
        assert_eq!(rx.len(), 7);
        while rx.try_recv().is_ok() {}
        let mut big: Vec<LiveRecord> = (0..20).map(record).collect();
        assert_eq!(tx.send_batch(&mut big), Ok(()), "alone in an empty channel");
        assert_eq!(rx.len(), 20);
        let t = std::thread::spawn({
            let tx = tx.clone();
            move || tx.send_batch(&mut (30..32).map(record).collect())
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!t.is_finished());
        drop(rx);
        assert_eq!(t.join().expect("sender"), Err(PipelineClosed));
    }

    /// A sender with a limit gets its record back from a channel that
    /// stays full, hands it over once the pipeline drains, and says when
    /// the pipeline is gone.
    #[test]
    fn a_sender_with_a_limit_gets_its_record_back_when_the_pipeline_stays_full() {
        let (tx, rx) = channel(2);
        tx.send(record(1)).expect("room");
        tx.send(record(2)).expect("room");
        let start = std::time::Instant::now();
        let back = match tx.send_within(record(3), std::time::Duration::from_millis(30)) {
            Err(SendWithin::Full(r)) => r,
            other => panic!("expected the record back, got {other:?}"),
        };
        assert_eq!(back.number, 3);
        assert!(start.elapsed() >= std::time::Duration::from_millis(30));
        assert_eq!(rx.len(), 2, "nothing was lost or added");
        rx.recv().expect("record");
        assert!(
            tx.send_within(*back, std::time::Duration::from_millis(30))
                .is_ok(),
            "room again"
        );
        assert_eq!(rx.len(), 2);
        drop(rx);
        assert!(matches!(
            tx.send_within(record(4), std::time::Duration::from_millis(30)),
            Err(SendWithin::Closed)
        ));
    }
}
