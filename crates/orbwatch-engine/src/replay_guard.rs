//! Stage 2: what a stage-1 worker sends again after taking over a raw
//! partition from one that stopped before committing it.
//!
//! Why: stage 1 is at-least-once. It commits a raw partition's offset
//! only after the observations and sightings of its records are written
//! to the observations topic. A stage-1 worker killed between the two
//! (or one whose commit on revoke timed out) leaves records whose
//! observations are already in the topic but whose offsets are not
//! committed; the next owner reads them again and sends them again,
//! under its own producer id. Counted twice, a brute force would look
//! longer and a sighting would be counted twice in its finding.
//!
//! Each message names the raw record it came from (the stream, which
//! holds the topic and partition, and the record's Kafka offset). Stage
//! 1 hands a record's messages on in event-time order, not offset order
//! (they wait in its reorder window), so a high-water mark per partition
//! would also drop records the dead worker never sent. Instead stage 2
//! remembers which producer first sent each raw record, and the record's
//! event time: the same record (same stream, offset and time) from
//! another producer is a replay, skipped and counted, while a record's
//! several messages from one producer (an sshd line can make a sighting
//! and an observation) all pass. The time tells a replay from another
//! record at the same offset (a raw topic deleted and created again).
//!
//! How long a record is remembered:
//! - an **observation** while its event time is not behind the reorder
//!   window's watermark: a replayed observation behind it is late anyway
//!   and reaches no detector, so remembering it longer changes nothing.
//!   This bounds the table by the window itself.
//! - an **indicator sighting** is aggregated even when late (a hunt
//!   counts it too), so it is remembered by count, the last
//!   [`SIGHTINGS_KEPT`] of them, and also while its event time is within
//!   [`SIGHTINGS_HORIZON_MS`] of the newest sighting's, up to
//!   [`SIGHTINGS_MAX`]. Sightings are rare next to observations (about
//!   one in 200 records on the bench's sshd corpus). A replay comes
//!   within seconds of the takeover (the group's session timeout), but
//!   of records up to an hour old: stage 1 holds a record's offset back
//!   until the hourly sums it was counted into go out.
//!
//! Only records read from Kafka (streams named `kafka …`) are checked: a
//! file or socket stream of two stage-1 workers can have the same name
//! and offsets without being the same record.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Sightings remembered at least (about 40 bytes each).
pub const SIGHTINGS_KEPT: usize = 1 << 18;
/// Sightings within this much event time of the newest are remembered
/// beyond [`SIGHTINGS_KEPT`]: the hour a stage-1 offset can wait for its
/// hourly sums, the allowed lateness, and room for a takeover.
pub const SIGHTINGS_HORIZON_MS: i64 = 2 * 3_600_000;
/// Sightings remembered at most, whatever their times (about 160 MB).
pub const SIGHTINGS_MAX: usize = 1 << 22;
/// Stream names remembered. Shippers key by host, so a partition can
/// bring many streams; past this many, everything is forgotten at once
/// (a replay in the next moments would then pass, as before the guard
/// existed) rather than growing without bound.
const STREAMS_CAP: usize = 100_000;

/// A raw record: its stream's number (see [`ReplayGuard::streams`]) and
/// its Kafka offset.
type RecordKey = (u32, u64);

/// Who first sent a raw record, and its event time (ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct First {
    producer: u64,
    time: i64,
}

/// Which producer first sent each recent raw record (see the module doc).
#[derive(Debug, Default)]
pub struct ReplayGuard {
    /// Stream names interned: a key is then 12 bytes, not a string.
    streams: hashbrown::HashMap<Box<str>, u32>,
    observations: hashbrown::HashMap<RecordKey, First>,
    /// Observations' keys by event time, to forget them behind the
    /// watermark.
    observations_by_time: BinaryHeap<Reverse<(i64, RecordKey)>>,
    sightings: hashbrown::HashMap<RecordKey, First>,
    /// Sightings' keys in the order they came, to forget the oldest.
    sightings_in_order: VecDeque<RecordKey>,
    /// The newest sighting's event time (ms).
    newest_sighting: i64,
    /// Messages skipped as replays.
    replayed: u64,
}

/// What a message is, for [`ReplayGuard`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// A behaviour observation with its event time (ms).
    Observation { time: i64 },
    /// An indicator sighting with its event time (ms; `i64::MIN` when it
    /// has none).
    Sighting { time: i64 },
}

impl ReplayGuard {
    /// Whether the message of `producer` made from the record at `offset`
    /// of `stream` is new (true) or a replay of a record another
    /// producer sent first (false, counted).
    pub fn admit(&mut self, stream: &str, offset: u64, producer: u64, sent: Sent) -> bool {
        if !stream.starts_with("kafka ") {
            return true;
        }
        let key = (self.stream_number(stream), offset);
        let (table, time) = match sent {
            Sent::Observation { time } => (&mut self.observations, time),
            Sent::Sighting { time } => (&mut self.sightings, time),
        };
        let now = First { producer, time };
        match table.get(&key) {
            Some(first) if first.producer == producer => return true,
            Some(first) if first.time == time => {
                self.replayed += 1;
                return false;
            }
            // Another record at the same place (the topic was created
            // again): it is the first now.
            Some(_) => {
                table.insert(key, now);
                if let Sent::Observation { time } = sent {
                    self.observations_by_time.push(Reverse((time, key)));
                }
                return true;
            }
            None => {}
        }
        table.insert(key, now);
        match sent {
            Sent::Observation { time } => {
                self.observations_by_time.push(Reverse((time, key)));
            }
            Sent::Sighting { time } => {
                self.sightings_in_order.push_back(key);
                self.newest_sighting = self.newest_sighting.max(time);
                self.forget_old_sightings();
            }
        }
        true
    }

    /// Past [`SIGHTINGS_KEPT`], forget the oldest sightings come that are
    /// older than the horizon (or any, past [`SIGHTINGS_MAX`]).
    fn forget_old_sightings(&mut self) {
        let horizon = self.newest_sighting.saturating_sub(SIGHTINGS_HORIZON_MS);
        while self.sightings_in_order.len() > SIGHTINGS_KEPT {
            let Some(&old) = self.sightings_in_order.front() else {
                break;
            };
            let recent = self.sightings.get(&old).is_some_and(|f| f.time >= horizon);
            if recent && self.sightings_in_order.len() <= SIGHTINGS_MAX {
                break;
            }
            self.sightings_in_order.pop_front();
            self.sightings.remove(&old);
        }
    }

    /// Forget the observations older than `watermark` (ms): a replay of
    /// one of them would be late (see the module doc).
    pub fn forget_behind(&mut self, watermark: i64) {
        while let Some(Reverse((time, key))) = self.observations_by_time.peek().copied() {
            if time >= watermark {
                break;
            }
            self.observations_by_time.pop();
            // Only if it is still this time's entry (a record that took
            // the place later has its own).
            if self.observations.get(&key).is_some_and(|f| f.time == time) {
                self.observations.remove(&key);
            }
        }
        if self.observations.is_empty() && self.sightings.is_empty() {
            // Nothing refers to a stream number: start the names afresh,
            // so a daemon's table does not grow with every key it saw.
            self.streams.clear();
        }
    }

    /// Messages skipped as replays so far.
    pub fn replayed(&self) -> u64 {
        self.replayed
    }

    /// Raw records remembered (observations, sightings).
    pub fn remembered(&self) -> (usize, usize) {
        (self.observations.len(), self.sightings.len())
    }

    fn stream_number(&mut self, stream: &str) -> u32 {
        if let Some(&n) = self.streams.get(stream) {
            return n;
        }
        if self.streams.len() >= STREAMS_CAP {
            self.streams.clear();
            self.observations.clear();
            self.observations_by_time.clear();
            self.sightings.clear();
            self.sightings_in_order.clear();
        }
        let n = self.streams.len() as u32;
        self.streams.insert(stream.into(), n);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &str = "kafka raw.logs/3 key gw2";
    const P1: u64 = 1;
    const P2: u64 = 2;

    fn obs(time: i64) -> Sent {
        Sent::Observation { time }
    }

    #[test]
    fn a_record_sent_again_by_another_producer_is_a_replay() {
        let mut g = ReplayGuard::default();
        assert!(g.admit(RAW, 10, P1, obs(1_000)));
        assert!(g.admit(RAW, 11, P1, obs(1_001)));
        // The next owner reads from offset 10 again.
        assert!(!g.admit(RAW, 10, P2, obs(1_000)));
        assert!(!g.admit(RAW, 11, P2, obs(1_001)));
        assert!(g.admit(RAW, 12, P2, obs(1_002)), "not sent before");
        assert_eq!(g.replayed(), 2);
    }

    #[test]
    fn a_records_several_messages_from_its_producer_all_pass() {
        let mut g = ReplayGuard::default();
        assert!(g.admit(RAW, 10, P1, obs(1_000)));
        assert!(g.admit(RAW, 10, P1, obs(1_000)), "second observation");
        assert!(g.admit(RAW, 10, P1, Sent::Sighting { time: 7 }));
        assert!(
            g.admit(RAW, 10, P1, Sent::Sighting { time: 7 }),
            "second indicator"
        );
        assert!(!g.admit(RAW, 10, P2, Sent::Sighting { time: 7 }));
        assert!(!g.admit(RAW, 10, P2, obs(1_000)));
        assert_eq!(g.replayed(), 2);
    }

    /// Stage 1 sends in event-time order: a record later in the
    /// partition but earlier in time can go out before one the dead
    /// worker never sent. That one must pass when the next owner sends it.
    #[test]
    fn a_record_the_first_producer_never_sent_passes_though_later_ones_were_sent() {
        let mut g = ReplayGuard::default();
        assert!(g.admit(RAW, 1050, P1, obs(900)));
        assert!(g.admit(RAW, 1040, P2, obs(1_000)), "never sent by P1");
        assert!(!g.admit(RAW, 1050, P2, obs(900)));
    }

    /// A raw topic deleted and created again starts its offsets at 0:
    /// another record at a remembered place is not a replay.
    #[test]
    fn another_record_at_the_same_offset_is_not_a_replay() {
        let mut g = ReplayGuard::default();
        assert!(g.admit(RAW, 10, P1, Sent::Sighting { time: 5 }));
        assert!(g.admit(RAW, 10, P2, Sent::Sighting { time: 9 }));
        assert!(
            !g.admit(RAW, 10, P1, Sent::Sighting { time: 9 }),
            "P2's now"
        );
        assert!(g.admit(RAW, 3, P1, obs(100)));
        assert!(g.admit(RAW, 3, P2, obs(200)));
        assert!(!g.admit(RAW, 3, P1, obs(200)));
        // The first entry's time passes: the later one stays.
        g.forget_behind(150);
        assert!(!g.admit(RAW, 3, P1, obs(200)));
        assert_eq!(g.replayed(), 3);
    }

    #[test]
    fn streams_and_offsets_are_told_apart() {
        let mut g = ReplayGuard::default();
        assert!(g.admit(RAW, 10, P1, obs(1)));
        assert!(g.admit("kafka raw.logs/4 key gw2", 10, P2, obs(1)));
        assert!(g.admit("kafka raw.logs/3 key gw3", 10, P2, obs(1)));
        assert!(g.admit(RAW, 9, P2, obs(1)));
        assert_eq!(g.replayed(), 0);
    }

    #[test]
    fn records_not_from_kafka_are_not_checked() {
        let mut g = ReplayGuard::default();
        let file = "/var/log/auth.log";
        assert!(g.admit(file, 10, P1, obs(1)));
        assert!(g.admit(file, 10, P2, obs(1)), "two hosts, one file name");
        assert_eq!(g.remembered(), (0, 0));
    }

    #[test]
    fn observations_behind_the_watermark_are_forgotten_sightings_by_count() {
        let mut g = ReplayGuard::default();
        for i in 0..100u64 {
            assert!(g.admit(RAW, i, P1, obs(i as i64)));
        }
        g.forget_behind(60);
        assert_eq!(g.remembered(), (40, 0));
        assert!(g.admit(RAW, 10, P2, obs(10)), "forgotten (and late anyway)");
        assert!(!g.admit(RAW, 70, P2, obs(70)));
        // A sighting a second: the first ones are far past the horizon.
        let at = |i: u64| Sent::Sighting {
            time: i as i64 * 1000,
        };
        for i in 0..(SIGHTINGS_KEPT as u64 + 5) {
            assert!(g.admit(RAW, 1_000_000 + i, P1, at(i)));
        }
        assert_eq!(g.remembered().1, SIGHTINGS_KEPT);
        assert!(
            g.admit(RAW, 1_000_000, P2, at(0)),
            "the oldest sighting is forgotten"
        );
        let last = SIGHTINGS_KEPT as u64;
        assert!(!g.admit(RAW, 1_000_000 + last, P2, at(last)));
    }

    /// Past the count, sightings within the horizon of the newest stay:
    /// a takeover re-reads records up to an hour old (stage 1 holds an
    /// offset back until its hour's sums go out).
    #[test]
    fn sightings_of_the_last_hours_are_remembered_beyond_the_count() {
        let mut g = ReplayGuard::default();
        // Ten a second for eight hours and more.
        let n = SIGHTINGS_KEPT as u64 + 50_000;
        let at = |i: u64| Sent::Sighting {
            time: i as i64 * 100,
        };
        for i in 0..n {
            assert!(g.admit(RAW, i, P1, at(i)));
        }
        // Two hours at ten a second: 72,000 within the horizon, fewer than
        // the count, so the count rules.
        assert_eq!(g.remembered().1, SIGHTINGS_KEPT);
        // A thousand a second: every one lies within the horizon of the
        // newest (about five minutes), and all are remembered.
        let mut g = ReplayGuard::default();
        let at = |i: u64| Sent::Sighting { time: i as i64 };
        for i in 0..n {
            assert!(g.admit(RAW, i, P1, at(i)));
        }
        assert_eq!(g.remembered().1, n as usize, "all within the horizon");
        assert!(!g.admit(RAW, 0, P2, at(0)), "the first is still known");
    }

    #[test]
    fn stream_names_are_dropped_once_nothing_refers_to_them() {
        let mut g = ReplayGuard::default();
        for k in 0..1000 {
            assert!(g.admit(&format!("kafka raw/0 key h{k}"), 1, P1, obs(5)));
        }
        assert_eq!(g.streams.len(), 1000);
        g.forget_behind(6);
        assert_eq!(g.streams.len(), 0);
        assert_eq!(g.remembered(), (0, 0));
    }
}
