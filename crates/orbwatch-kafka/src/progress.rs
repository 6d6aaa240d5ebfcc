//! Which offsets may be committed: those of records whose findings the
//! pipeline has handed on.
//!
//! Why not simply the highest offset the pipeline reports: records of one
//! partition go to several streams (one per record key, so that a host's
//! lines keep their own detected format), and a stream that waits for its
//! format to be detected holds records back while a later stream of the
//! same partition is already decoded. The committable offset of a
//! partition is therefore the first offset not yet decoded, across all
//! its streams. The worker notes every record as it enters the pipeline
//! ([`OffsetTracker::entered`]) and every checkpoint the pipeline hands
//! back ([`OffsetTracker::decoded`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use orbwatch_live::Checkpoint;

/// A topic-partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

/// The identity a Kafka record's checkpoint carries: `kafka:TOPIC:PARTITION`
/// (topic names cannot hold `:`).
pub fn checkpoint_identity(topic: &str, partition: i32) -> String {
    format!("kafka:{topic}:{partition}")
}

/// The topic-partition of a checkpoint made by this crate, or `None`.
pub fn parse_identity(identity: &str) -> Option<TopicPartition> {
    let rest = identity.strip_prefix("kafka:")?;
    let (topic, partition) = rest.rsplit_once(':')?;
    Some(TopicPartition {
        topic: topic.to_string(),
        partition: partition.parse().ok()?,
    })
}

#[derive(Default)]
struct PartitionState {
    /// Records in the pipeline, in offset order: (offset, stream).
    pending: VecDeque<(i64, Arc<str>)>,
    /// The next offset to commit (after the last record handed on).
    committable: Option<i64>,
}

/// See the module docs.
#[derive(Default)]
pub struct OffsetTracker {
    partitions: HashMap<TopicPartition, PartitionState>,
    /// Per stream: position (offset + 1) up to which it was decoded.
    done: HashMap<Arc<str>, u64>,
    /// Per partition: the offset after the last record that entered the
    /// pipeline (what a re-hunt replays up to).
    reached: HashMap<TopicPartition, i64>,
}

impl OffsetTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// A record with checkpoint `cp` goes into the pipeline. Returns its
    /// partition when this is the first record of it the tracker sees
    /// (since the partition was assigned, or ever).
    pub fn entered(&mut self, cp: &Checkpoint) -> Option<TopicPartition> {
        let tp = parse_identity(&cp.identity)?;
        let offset = i64::try_from(cp.position).unwrap_or(i64::MAX) - 1;
        let first = !self.partitions.contains_key(&tp);
        let announce = first.then(|| tp.clone());
        let r = self.reached.entry(tp.clone()).or_insert(0);
        *r = (*r).max(offset + 1);
        self.partitions
            .entry(tp)
            .or_default()
            .pending
            .push_back((offset, cp.source.clone()));
        announce
    }

    /// Whether a record of `tp` was seen since it was last forgotten.
    pub fn knows(&self, tp: &TopicPartition) -> bool {
        self.partitions.contains_key(tp)
    }

    /// The pipeline handed on every record up to these checkpoints.
    pub fn decoded(&mut self, cps: &[Checkpoint]) {
        for cp in cps {
            if parse_identity(&cp.identity).is_none() {
                continue;
            }
            let e = self.done.entry(cp.source.clone()).or_insert(0);
            *e = (*e).max(cp.position);
        }
        for st in self.partitions.values_mut() {
            while let Some((offset, stream)) = st.pending.front() {
                let pos = u64::try_from(*offset).unwrap_or(0) + 1;
                if self.done.get(stream).is_some_and(|&d| d >= pos) {
                    st.committable = Some(offset + 1);
                    st.pending.pop_front();
                } else {
                    break;
                }
            }
        }
        // Streams with nothing pending need no memory.
        let live: std::collections::HashSet<&Arc<str>> = self
            .partitions
            .values()
            .flat_map(|s| s.pending.iter().map(|(_, n)| n))
            .collect();
        if live.len() < self.done.len() {
            let keep: std::collections::HashSet<Arc<str>> = live.into_iter().cloned().collect();
            self.done.retain(|k, _| keep.contains(k));
        }
    }

    /// Offsets that may be committed now (next offset to read, per
    /// partition), taken: each is returned once.
    pub fn take_committable(&mut self) -> BTreeMap<TopicPartition, i64> {
        self.partitions
            .iter_mut()
            .filter_map(|(tp, s)| s.committable.take().map(|o| (tp.clone(), o)))
            .collect()
    }

    /// Forget a partition (revoked): its records in the pipeline are
    /// still decoded, but their offsets are the new owner's to commit.
    pub fn forget(&mut self, tp: &TopicPartition) {
        self.partitions.remove(tp);
        self.reached.remove(tp);
    }

    /// Per partition owned: the offset after the last record that
    /// entered the pipeline.
    pub fn reached(&self) -> BTreeMap<TopicPartition, i64> {
        self.reached
            .iter()
            .map(|(tp, o)| (tp.clone(), *o))
            .collect()
    }

    /// Records entered and not yet handed on.
    pub fn in_flight(&self) -> usize {
        self.partitions.values().map(|s| s.pending.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cp(stream: &str, partition: i32, offset: u64) -> Checkpoint {
        Checkpoint {
            source: Arc::from(stream),
            position: offset + 1,
            identity: Arc::from(checkpoint_identity("raw.logs", partition).as_str()),
        }
    }

    fn tp(p: i32) -> TopicPartition {
        TopicPartition {
            topic: "raw.logs".into(),
            partition: p,
        }
    }

    #[test]
    fn identities_round_trip_and_others_are_ignored() {
        assert_eq!(
            parse_identity("kafka:a.b-c_d:17"),
            Some(tp_named("a.b-c_d", 17))
        );
        assert_eq!(parse_identity("kafka:t:x"), None);
        assert_eq!(parse_identity("1:2:abc:4:5"), None);
        assert_eq!(parse_identity(""), None);
        let mut t = OffsetTracker::new();
        t.entered(&Checkpoint {
            source: Arc::from("/var/log/x"),
            position: 10,
            identity: Arc::from("1:2:aa:1:1"),
        });
        assert_eq!(t.in_flight(), 0);
    }

    fn tp_named(t: &str, p: i32) -> TopicPartition {
        TopicPartition {
            topic: t.into(),
            partition: p,
        }
    }

    /// A stream waiting for its format holds the partition's commit back,
    /// even though a later stream of the same partition is decoded.
    #[test]
    fn a_waiting_stream_holds_its_partition_back() {
        let mut t = OffsetTracker::new();
        t.entered(&cp("p0 key a", 0, 0));
        t.entered(&cp("p0 key b", 0, 1));
        t.entered(&cp("p0 key a", 0, 2));
        t.entered(&cp("p1", 1, 5));
        t.decoded(&[cp("p0 key b", 0, 1), cp("p1", 1, 5)]);
        assert_eq!(t.take_committable(), BTreeMap::from([(tp(1), 6)]));
        assert_eq!(t.in_flight(), 3);
        t.decoded(&[cp("p0 key a", 0, 0)]);
        assert_eq!(t.take_committable(), BTreeMap::from([(tp(0), 2)]));
        assert!(t.take_committable().is_empty(), "taken once");
        t.decoded(&[cp("p0 key a", 0, 2)]);
        assert_eq!(t.take_committable(), BTreeMap::from([(tp(0), 3)]));
        assert_eq!(t.in_flight(), 0);
        t.entered(&cp("p1", 1, 6));
        t.forget(&tp(1));
        t.decoded(&[cp("p1", 1, 6)]);
        assert!(t.take_committable().is_empty());
    }
}
