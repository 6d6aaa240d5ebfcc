//! Event time for live sources: watermarks, allowed lateness and idle
//! flush.
//!
//! A hunt over files gets exact event-time order from its sorted runs
//! (see `orbwatch_detect::behaviour::runs`). A live source cannot: syslog
//! relays batch and retry, NetFlow exporters send a flow when it ends, and
//! two sources are never in step. The detectors still need time order, so
//! a live pipeline puts a [`ReorderWindow`] in front of them:
//!
//! - Items wait until the **watermark** passes them. The watermark is the
//!   latest event time seen minus the **allowed lateness**: an item that
//!   arrives up to that much behind the newest one still takes its place
//!   in order.
//! - Items come from **streams** (a followed file, a syslog sender, a
//!   Kafka partition), each with its own clock. With a **stream skew**
//!   allowed, the watermark follows the slowest stream that is still
//!   sending (the minimum over streams, as Kafka Streams and Flink take
//!   it over partitions), held at most that far behind the newest event
//!   of any stream. Kafka partitions are fetched in no order, so a worker
//!   allows any skew; `watch` allows none by default, so that one sender
//!   with a wrong clock cannot hold every finding back.
//! - While a new stream's format is still being detected its items are
//!   not in the window yet, so the window can be **held**: nothing is
//!   released until the stream is known (at most `max_pending` waits).
//! - An item older than the watermark is **late**. It is handed back to
//!   the caller (which still matches it against indicators, where order
//!   does not matter) and counted, never dropped silently.
//! - The window holds at most `max_pending` items. Beyond that the oldest
//!   are released early and the watermark moves up to them; the count of
//!   early releases says how often lateness was cut short.
//! - When nothing has arrived for `idle_flush` of wall-clock time, a
//!   source has gone quiet: [`ReorderWindow::flush_if_idle`] releases
//!   everything and moves the watermark to the newest event, so findings
//!   that wait for a key to go idle are not held back forever.
//!
//! Items of the same event time leave in arrival order.
//!
//! Items leave through a [`Release`]: a closure `|time, item|`, or a
//! receiver that also wants to know a few items ahead what comes next
//! (to start loading what it will touch, see [`Release::coming`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Event-time settings of a live pipeline (`[event_time]` in the watch
/// configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct EventTimeConfig {
    /// How far behind the newest event an event may arrive and still be
    /// put in order (default 5 minutes: a syslog relay's retry, a flow
    /// exporter's active timeout).
    pub allowed_lateness: Duration,
    /// Most events held for reordering (default 1,000,000).
    pub max_pending: usize,
    /// Wall-clock time without any event after which everything held is
    /// released (default 60 s). A stream that has sent nothing for this
    /// long no longer holds the watermark back.
    pub idle_flush: Duration,
    /// How far the slowest active stream may hold the watermark behind the
    /// newest event of any stream. Zero (the default): one clock for all
    /// streams. `None`: no bound (Kafka partitions).
    pub max_stream_skew: Option<Duration>,
}

impl Default for EventTimeConfig {
    fn default() -> Self {
        Self {
            allowed_lateness: Duration::from_secs(300),
            max_pending: 1_000_000,
            idle_flush: Duration::from_secs(60),
            max_stream_skew: Some(Duration::ZERO),
        }
    }
}

/// What happened to the items that passed through a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReorderStats {
    /// Items accepted into the window.
    pub accepted: u64,
    /// Items older than the watermark when they arrived.
    pub late: u64,
    /// The largest lateness seen, in ms (how far behind the watermark).
    pub max_late_ms: i64,
    /// Items released before the watermark reached them because the
    /// window was full.
    pub released_early: u64,
    /// Times the window was flushed because input went quiet.
    pub idle_flushes: u64,
    /// Items waiting now.
    pub pending: usize,
}

/// An item the window refused: it is older than the watermark.
#[derive(Debug)]
pub struct Late<T> {
    pub item: T,
    /// How far behind the watermark it was, in ms.
    pub behind_ms: i64,
}

/// Where a window's items go when they leave.
pub trait Release<T> {
    /// An item that will leave [`LOOKAHEAD`] items from now, unless the
    /// watermark stops short of it (a hint: nothing leaves yet). Each
    /// item is shown at most once; not every item is shown.
    fn coming(&mut self, _item: &T) {}

    /// An item leaves, in event-time order.
    fn release(&mut self, time: i64, item: T);
}

impl<T, F: FnMut(i64, T)> Release<T> for F {
    fn release(&mut self, time: i64, item: T) {
        self(time, item)
    }
}

/// How many items ahead of the one leaving [`Release::coming`] looks:
/// enough for what it asks for to arrive from memory meanwhile.
pub const LOOKAHEAD: usize = 8;

/// A bounded reorder buffer keyed by event time (milliseconds).
///
/// Items wait in one queue per event time, in arrival order. Why not a
/// binary heap (as this was): a daemon whose event time follows the wall
/// clock holds `max_pending` items (a million) from a few seconds, each
/// released as a new one comes, and each removal from the heap walked
/// its twenty levels through cold memory. Here a removal is the front of
/// a queue, the queues are few (distinct times pending), and the items
/// leaving next lie side by side, so [`Release::coming`] can show them.
#[derive(Debug)]
pub struct ReorderWindow<T> {
    lateness_ms: i64,
    max_pending: usize,
    idle_flush: Duration,
    queues: BTreeMap<i64, VecDeque<T>>,
    /// Items in `queues`.
    len: usize,
    /// Emptied queues kept for their memory: with event time in
    /// milliseconds most queues hold one item, and a new queue for each
    /// would allocate for each.
    spare: Vec<VecDeque<T>>,
    newest: Option<i64>,
    watermark: i64,
    last_arrival: Option<Instant>,
    /// Each stream's newest event time and last arrival (wall clock);
    /// streams quiet for `idle_flush` are forgotten.
    streams: HashMap<u32, StreamClock>,
    /// With a skew allowed: how many streams have each newest time, so
    /// the slowest is the first key. (The clock went through every
    /// stream for every release: with 10,000 senders, 53 µs an item.)
    newest_counts: BTreeMap<i64, u32>,
    /// No stream's last arrival is before this (a lower bound, exact
    /// after each pass over the streams): no stream can have been quiet
    /// for `idle_flush` until the last arrival is that far past it.
    earliest_arrival: Option<Instant>,
    /// `None`: no bound on the skew.
    skew_ms: Option<i64>,
    /// Release nothing (a stream's format is being detected).
    held: bool,
    stats: ReorderStats,
}

#[derive(Debug, Clone, Copy)]
struct StreamClock {
    newest: i64,
    last_arrival: Instant,
}

impl<T> ReorderWindow<T> {
    pub fn new(cfg: &EventTimeConfig) -> Self {
        Self {
            lateness_ms: i64::try_from(cfg.allowed_lateness.as_millis()).unwrap_or(i64::MAX),
            max_pending: cfg.max_pending.max(1),
            idle_flush: cfg.idle_flush,
            queues: BTreeMap::new(),
            len: 0,
            spare: Vec::new(),
            newest: None,
            watermark: i64::MIN,
            last_arrival: None,
            streams: HashMap::new(),
            newest_counts: BTreeMap::new(),
            earliest_arrival: None,
            skew_ms: cfg
                .max_stream_skew
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            held: false,
            stats: ReorderStats::default(),
        }
    }

    /// Hold (or stop holding) every release but those `max_pending`
    /// forces: a stream whose items are not in the window yet would find
    /// the watermark past them.
    pub fn hold(&mut self, held: bool) {
        self.held = held;
    }

    /// Every item waiting, in no particular order.
    pub fn items(&self) -> impl Iterator<Item = &T> + '_ {
        self.queues.values().flatten()
    }

    /// Everything at or before this time (ms) has been released; later
    /// arrivals before it are late. `i64::MIN` until something is
    /// released.
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    pub fn stats(&self) -> ReorderStats {
        ReorderStats {
            pending: self.len,
            ..self.stats
        }
    }

    /// Offer an item with its event time (ms), arriving at `now`, from a
    /// single stream. A late item comes back as `Err`, counted.
    pub fn push(&mut self, time: i64, item: T, now: Instant) -> Result<(), Late<T>> {
        self.push_from(0, time, item, now)
    }

    /// Offer an item of `stream` with its event time (ms), arriving at
    /// `now`. A late item comes back as `Err`, counted.
    pub fn push_from(
        &mut self,
        stream: u32,
        time: i64,
        item: T,
        now: Instant,
    ) -> Result<(), Late<T>> {
        // An item moves its stream's clock as a producer's mark would.
        self.advance_stream(stream, time, now);
        self.push_unclocked(time, item)?;
        self.newest = Some(self.newest.map_or(time, |n| n.max(time)));
        Ok(())
    }

    /// Offer an item that no stream sent (a sum a pipeline made over many
    /// records): like [`push_from`](Self::push_from), but it moves no
    /// stream's clock nor the newest time, so an item dated ahead of the
    /// records being read (an hour's sum, dated at the hour's end) does
    /// not make them late.
    pub fn push_unclocked(&mut self, time: i64, item: T) -> Result<(), Late<T>> {
        if time < self.watermark {
            let behind_ms = self.watermark.saturating_sub(time);
            self.stats.late += 1;
            self.stats.max_late_ms = self.stats.max_late_ms.max(behind_ms);
            return Err(Late { item, behind_ms });
        }
        self.stats.accepted += 1;
        let spare = &mut self.spare;
        self.queues
            .entry(time)
            .or_insert_with(|| spare.pop().unwrap_or_default())
            .push_back(item);
        self.len += 1;
        Ok(())
    }

    /// `stream` read a record at `time` (ms) that made no item (it was
    /// counted into a sum, see `push_unclocked`): its clock, and the
    /// newest time, move as an item's would.
    pub fn arrive(&mut self, stream: u32, time: i64, now: Instant) {
        self.advance_stream(stream, time, now);
        self.newest = Some(self.newest.map_or(time, |n| n.max(time)));
    }

    /// The watermark the next [`release`](Self::release) will move to
    /// (`None` while held or before any item came): what is dated at or
    /// before it then leaves.
    pub fn next_mark(&mut self) -> Option<i64> {
        let newest = self.newest?;
        if self.held {
            return None;
        }
        Some(self.clock(newest).saturating_sub(self.lateness_ms))
    }

    /// Nothing has arrived for `idle_flush` (wall clock) before `now`.
    pub fn is_quiet(&self, now: Instant) -> bool {
        self.last_arrival
            .is_some_and(|t| now.saturating_duration_since(t) >= self.idle_flush)
    }

    /// Whether [`flush_if_idle`](Self::flush_if_idle) at `now` would
    /// flush, and the time (ms) everything up to which it would release.
    pub fn idle_flush_to(&self, now: Instant) -> Option<i64> {
        if !self.is_quiet(now) || self.len == 0 {
            return None;
        }
        self.newest
    }

    /// `stream` will send nothing older than `time` (ms) from now on (a
    /// producer's watermark, forwarded through a topic): its clock moves
    /// there as an item at `time` would move it, with no item.
    ///
    /// A mark counts as an arrival: the producer is alive and says how
    /// far it is, so the window must not flush for idleness while marks
    /// come (it would move the watermark past the observations that
    /// producer has not written yet: seen when one stage-1 worker waited
    /// for its own idle flush). Only when no producer sends anything for
    /// `idle_flush` does the window flush.
    pub fn advance_stream(&mut self, stream: u32, time: i64, now: Instant) {
        self.last_arrival = Some(now);
        // Only a skew other than none reads the slowest stream.
        let counted = self.skew_ms != Some(0);
        match self.streams.entry(stream) {
            std::collections::hash_map::Entry::Occupied(mut e) => {
                let clock = e.get_mut();
                if time > clock.newest && counted {
                    uncount(&mut self.newest_counts, clock.newest);
                    *self.newest_counts.entry(time).or_default() += 1;
                }
                clock.newest = clock.newest.max(time);
                clock.last_arrival = now;
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(StreamClock {
                    newest: time,
                    last_arrival: now,
                });
                if counted {
                    *self.newest_counts.entry(time).or_default() += 1;
                }
                self.earliest_arrival.get_or_insert(now);
            }
        }
    }

    /// Release, in event-time order, every item the watermark has passed,
    /// and the oldest ones beyond `max_pending`.
    pub fn release(&mut self, out: &mut impl Release<T>) {
        let mark = self.next_mark();
        self.release_to(mark, out);
    }

    /// [`release`](Self::release) to `mark`, what [`next_mark`](Self::next_mark)
    /// said, for a caller that asked it first (and has only added
    /// [unclocked](Self::push_unclocked) items since): the stream clocks
    /// are not gone through twice.
    pub fn release_to(&mut self, mark: Option<i64>, out: &mut impl Release<T>) {
        if let Some(mark) = mark {
            self.release_until(mark, out);
        }
        while self.len > self.max_pending {
            let Some((time, item)) = self.pop_oldest(i64::MAX, out) else {
                break;
            };
            self.stats.released_early += 1;
            self.watermark = self.watermark.max(time);
            out.release(time, item);
        }
    }

    /// Release everything now when nothing has arrived for `idle_flush`
    /// (wall clock): the source went quiet and no later event will come
    /// to move the watermark. Returns whether it flushed.
    pub fn flush_if_idle(&mut self, now: Instant, out: &mut impl Release<T>) -> bool {
        if !self.is_quiet(now) || self.len == 0 {
            return false;
        }
        self.stats.idle_flushes += 1;
        self.flush(out);
        true
    }

    /// Release every item, also those dated after the newest (an hour's
    /// sum dated at the end of an hour not over yet): the end of input.
    pub fn flush_all(&mut self, out: &mut impl Release<T>) {
        let last = self.queues.last_key_value().map(|(t, _)| *t);
        if let Some(mark) = last.max(self.newest) {
            self.release_until(mark, out);
        }
    }

    /// Release everything (end of input, or shutdown).
    pub fn flush(&mut self, out: &mut impl Release<T>) {
        if let Some(newest) = self.newest {
            self.release_until(newest, out);
        }
    }

    /// The event time the watermark follows: the newest event of any
    /// stream, or with a skew allowed, the slowest stream still sending,
    /// no further behind the newest than the skew.
    fn clock(&mut self, newest: i64) -> i64 {
        let floor = match self.skew_ms {
            Some(0) => return newest,
            Some(skew) => newest.saturating_sub(skew),
            None => i64::MIN,
        };
        if let (Some(last), Some(earliest)) = (self.last_arrival, self.earliest_arrival) {
            let idle = self.idle_flush;
            if last.saturating_duration_since(earliest) >= idle {
                // Some stream may have gone quiet: one pass forgets those
                // that did and finds the earliest arrival of the rest.
                let counts = &mut self.newest_counts;
                let mut rest: Option<Instant> = None;
                self.streams.retain(|_, c| {
                    let keep = last.saturating_duration_since(c.last_arrival) < idle;
                    if keep {
                        rest = Some(rest.map_or(c.last_arrival, |r| r.min(c.last_arrival)));
                    } else {
                        uncount(counts, c.newest);
                    }
                    keep
                });
                self.earliest_arrival = rest;
            }
        }
        let slowest = self
            .newest_counts
            .first_key_value()
            .map_or(newest, |(&t, _)| t);
        slowest.max(floor)
    }

    fn release_until(&mut self, mark: i64, out: &mut impl Release<T>) {
        while let Some((time, item)) = self.pop_oldest(mark, out) {
            out.release(time, item);
        }
        self.watermark = self.watermark.max(mark);
    }

    /// The oldest item if its time is at most `mark`, first showing `out`
    /// the item [`LOOKAHEAD`] places behind it in the same queue.
    fn pop_oldest(&mut self, mark: i64, out: &mut impl Release<T>) -> Option<(i64, T)> {
        loop {
            let mut first = self.queues.first_entry()?;
            let time = *first.key();
            if time > mark {
                return None;
            }
            let queue = first.get_mut();
            if let Some(next) = queue.get(LOOKAHEAD) {
                out.coming(next);
            }
            let item = queue.pop_front();
            if queue.is_empty() {
                let mut queue = first.remove();
                // Most queues are small: a large one (a busy second) is
                // not kept, so that memory a burst took is given back.
                if queue.capacity() <= 64 && self.spare.len() < 1024 {
                    queue.clear();
                    self.spare.push(queue);
                }
            }
            // (An empty queue is never left in the map; were one there,
            // it is dropped above and the next time looked at.)
            if let Some(item) = item {
                self.len -= 1;
                return Some((time, item));
            }
        }
    }
}

/// One stream fewer has newest time `t`.
fn uncount(counts: &mut BTreeMap<i64, u32>, t: i64) {
    if let std::collections::btree_map::Entry::Occupied(mut e) = counts.entry(t) {
        *e.get_mut() -= 1;
        if *e.get() == 0 {
            e.remove();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(lateness_s: u64, max_pending: usize) -> ReorderWindow<u32> {
        ReorderWindow::new(&EventTimeConfig {
            allowed_lateness: Duration::from_secs(lateness_s),
            max_pending,
            idle_flush: Duration::from_secs(60),
            max_stream_skew: Some(Duration::ZERO),
        })
    }

    fn drain(w: &mut ReorderWindow<u32>) -> Vec<(i64, u32)> {
        let mut v = Vec::new();
        w.release(&mut |t, x| v.push((t, x)));
        v
    }

    #[test]
    fn events_within_the_lateness_come_out_in_order() {
        let now = Instant::now();
        let mut w = window(10, 100);
        for (t, x) in [(5_000, 1), (1_000, 2), (3_000, 3), (12_000, 4), (2_500, 5)] {
            assert!(
                w.push(t, x, now).is_ok(),
                "{t} is within 10 s of the newest"
            );
        }
        // Newest is 12 s: watermark 2 s; only the event at 1 s is released.
        assert_eq!(drain(&mut w), vec![(1_000, 2)]);
        assert!(w.push(16_000, 6, now).is_ok());
        assert_eq!(drain(&mut w), vec![(2_500, 5), (3_000, 3), (5_000, 1)]);
        assert_eq!(w.watermark(), 6_000);
        let mut rest = Vec::new();
        w.flush(&mut |t, x| rest.push((t, x)));
        assert_eq!(rest, vec![(12_000, 4), (16_000, 6)]);
        assert_eq!(w.stats().late, 0);
        assert_eq!(w.stats().accepted, 6);
    }

    #[test]
    fn late_events_are_handed_back_and_counted() {
        let now = Instant::now();
        let mut w = window(10, 100);
        w.push(100_000, 1, now).unwrap();
        drain(&mut w); // watermark 90 s
        let late = w.push(60_000, 2, now).unwrap_err();
        assert_eq!((late.item, late.behind_ms), (2, 30_000));
        assert!(
            w.push(95_000, 3, now).is_ok(),
            "behind the newest but not the watermark"
        );
        let s = w.stats();
        assert_eq!(
            (s.late, s.max_late_ms, s.accepted, s.pending),
            (1, 30_000, 2, 2)
        );
    }

    #[test]
    fn a_full_window_releases_its_oldest_early_and_says_so() {
        let now = Instant::now();
        let mut w = window(3600, 3);
        for t in [5, 1, 4, 2, 3] {
            w.push(t * 1000, t as u32, now).unwrap();
        }
        assert_eq!(drain(&mut w), vec![(1_000, 1), (2_000, 2)]);
        assert_eq!(w.stats().released_early, 2);
        assert_eq!(w.watermark(), 2_000);
        assert!(
            w.push(1_500, 9, now).is_err(),
            "older than what was released"
        );
    }

    #[test]
    fn quiet_input_is_flushed_after_the_idle_time() {
        let start = Instant::now();
        let mut w = window(300, 100);
        w.push(10_000, 1, start).unwrap();
        w.push(20_000, 2, start).unwrap();
        assert!(drain(&mut w).is_empty(), "both within the lateness");
        let mut out = Vec::new();
        assert!(
            !w.flush_if_idle(start + Duration::from_secs(59), &mut |t, x| out
                .push((t, x)))
        );
        assert!(
            w.flush_if_idle(start + Duration::from_secs(60), &mut |t, x| out
                .push((t, x)))
        );
        assert_eq!(out, vec![(10_000, 1), (20_000, 2)]);
        assert_eq!(w.watermark(), 20_000);
        assert_eq!(w.stats().idle_flushes, 1);
        assert!(!w.flush_if_idle(start + Duration::from_secs(600), &mut |_, _| {}));
    }

    #[test]
    fn equal_times_keep_arrival_order_and_extremes_do_not_overflow() {
        let now = Instant::now();
        let mut w = ReorderWindow::new(&EventTimeConfig {
            allowed_lateness: Duration::MAX,
            max_pending: 10,
            idle_flush: Duration::ZERO,
            max_stream_skew: Some(Duration::ZERO),
        });
        for (t, x) in [(i64::MAX, 1), (i64::MIN, 2), (0, 3), (0, 4)] {
            w.push(t, x, now).unwrap();
        }
        // The newest minus an unbounded lateness: a watermark of 0.
        assert_eq!(drain(&mut w), vec![(i64::MIN, 2), (0, 3), (0, 4)]);
        let mut rest = Vec::new();
        w.flush(&mut |t, x| rest.push((t, x)));
        assert_eq!(rest, vec![(i64::MAX, 1)]);
    }

    /// Records what a window shows ahead and what it releases.
    #[derive(Default)]
    struct Recorder {
        shown: Vec<(usize, u32)>,
        released: Vec<(i64, u32)>,
    }

    impl Release<u32> for Recorder {
        fn coming(&mut self, item: &u32) {
            self.shown.push((self.released.len(), *item));
        }
        fn release(&mut self, time: i64, item: u32) {
            self.released.push((time, item));
        }
    }

    /// A busy second (many items of one time, as a daemon's window holds
    /// them) leaves in arrival order, and each item but the first few is
    /// shown exactly once, [`LOOKAHEAD`] items before it leaves; the
    /// order is the same with a full window's early releases.
    #[test]
    fn items_are_shown_once_lookahead_places_before_they_leave() {
        let now = Instant::now();
        let mut w = window(60, 1_000);
        let mut arrivals = Vec::new();
        for x in 0..300u32 {
            // Three seconds, arriving interleaved with an older one.
            let t = 1_000 * i64::from(x % 3) + if x % 7 == 0 { 0 } else { 500 };
            w.push(t, x, now).unwrap();
            arrivals.push((t, x));
        }
        let mut r = Recorder::default();
        w.flush(&mut r);
        let mut expected = arrivals.clone();
        expected.sort_by_key(|(t, _)| *t);
        assert_eq!(
            r.released, expected,
            "time order, arrival order within a time"
        );
        let mut seen = std::collections::HashSet::new();
        for &(before, x) in &r.shown {
            assert!(seen.insert(x), "{x} shown twice");
            let at = r.released.iter().position(|&(_, y)| y == x).unwrap();
            assert_eq!(at, before + LOOKAHEAD, "{x} shown {before}, left {at}");
        }
        // Every item of a time is shown, but the first LOOKAHEAD of each.
        let times: std::collections::BTreeSet<i64> = arrivals.iter().map(|a| a.0).collect();
        assert_eq!(r.shown.len(), arrivals.len() - LOOKAHEAD * times.len());

        // A daemon's full window: seconds in order, each item released
        // early as the next comes.
        let mut full = window(3_600, 50);
        let mut r = Recorder::default();
        for x in 0..300u32 {
            full.push(1_000 * i64::from(x / 100), x, now).unwrap();
            full.release(&mut r);
        }
        full.flush(&mut r);
        assert_eq!(full.stats().released_early, 250);
        let order: Vec<u32> = r.released.iter().map(|r| r.1).collect();
        assert_eq!(order, (0..300).collect::<Vec<_>>());
        assert!(!r.shown.is_empty());
        for &(before, x) in &r.shown {
            assert_eq!(order[before + LOOKAHEAD], x, "{x} shown {before}");
        }
    }

    fn skewed(skew: Option<u64>) -> ReorderWindow<u32> {
        ReorderWindow::new(&EventTimeConfig {
            allowed_lateness: Duration::from_secs(10),
            max_pending: 100,
            idle_flush: Duration::from_secs(60),
            max_stream_skew: skew.map(Duration::from_secs),
        })
    }

    #[test]
    fn with_skew_allowed_a_lagging_stream_is_not_late() {
        let now = Instant::now();
        // Stream 1 is a year ahead of stream 2 (Kafka partitions).
        let year = 365 * 86_400_000;
        let mut w = skewed(None);
        w.push_from(1, year + 1_000, 1, now).unwrap();
        w.push_from(2, 5_000, 2, now).unwrap();
        w.push_from(2, 30_000, 3, now).unwrap();
        // The slowest stream's clock: 30 s - 10 s.
        assert_eq!(drain(&mut w), vec![(5_000, 2)]);
        w.push_from(2, 20_000, 4, now).unwrap();
        assert_eq!(w.stats().late, 0, "behind stream 1 but not its own");
        // Stream 2 goes quiet: after the idle time it no longer holds
        // the clock, and stream 1's items come out.
        let later = now + Duration::from_secs(61);
        w.push_from(1, year + 2_000, 5, later).unwrap();
        assert_eq!(
            drain(&mut w),
            vec![(20_000, 4), (30_000, 3)],
            "stream 1 is within its lateness still"
        );
        // With one clock (the default), stream 2 would have been late.
        let mut one = skewed(Some(0));
        one.push_from(1, year + 1_000, 1, now).unwrap();
        drain(&mut one);
        assert!(one.push_from(2, 5_000, 2, now).is_err());
    }

    #[test]
    fn a_bounded_skew_holds_the_clock_only_so_far() {
        let now = Instant::now();
        let mut w = skewed(Some(60));
        w.push_from(1, 0, 1, now).unwrap();
        w.push_from(2, 100_000, 2, now).unwrap();
        // The slowest stream is at 0, but the clock may lag 60 s at most:
        // 100 s - 60 s - 10 s = 30 s.
        assert_eq!(drain(&mut w), vec![(0, 1)]);
        assert_eq!(w.watermark(), 30_000);
    }

    /// The slowest stream still sending, kept as streams advance and go
    /// quiet, is the one a pass over every stream finds: many streams,
    /// random times (some going back), random gaps of wall clock (some
    /// past the idle time), skews bounded and not.
    #[test]
    fn the_slowest_stream_kept_is_the_one_a_full_pass_finds() {
        for skew in [None, Some(30)] {
            let mut w = skewed(skew);
            // A model: every stream's newest time and last arrival.
            let mut model: HashMap<u32, (i64, Instant)> = HashMap::new();
            let mut now = Instant::now();
            let mut seed = 0x2545_f491_4f6c_dd1du64;
            let mut next = |n: u64| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed % n
            };
            let mut newest = i64::MIN;
            for i in 0..20_000u32 {
                let stream = next(200) as u32;
                let time = 1_000_000 + i64::from(i) * 10 - next(5_000) as i64;
                now += Duration::from_millis(match next(100) {
                    0 => 61_000,
                    1..=5 => 7_000,
                    _ => next(20),
                });
                w.advance_stream(stream, time, now);
                newest = newest.max(time);
                let e = model.entry(stream).or_insert((time, now));
                e.0 = e.0.max(time);
                e.1 = now;
                if next(4) == 0 {
                    model.retain(|_, (_, at)| now.saturating_duration_since(*at) < w.idle_flush);
                    let slowest = model.values().map(|(t, _)| *t).min().unwrap_or(newest);
                    let floor = skew.map_or(i64::MIN, |s| newest - s as i64 * 1000);
                    w.newest = Some(newest);
                    assert_eq!(
                        w.next_mark(),
                        Some(slowest.max(floor) - 10_000),
                        "item {i}, skew {skew:?}"
                    );
                    assert_eq!(w.streams.len(), model.len());
                    let counted: u32 = w.newest_counts.values().sum();
                    assert_eq!(counted as usize, model.len());
                }
            }
        }
    }

    #[test]
    fn a_held_window_releases_only_what_overflows() {
        let now = Instant::now();
        let mut w = window(1, 2);
        w.hold(true);
        for t in [10, 20, 30] {
            w.push(t * 1000, t as u32, now).unwrap();
        }
        assert_eq!(drain(&mut w), vec![(10_000, 10)], "over max_pending");
        w.hold(false);
        assert_eq!(drain(&mut w), vec![(20_000, 20)]);
    }
}
