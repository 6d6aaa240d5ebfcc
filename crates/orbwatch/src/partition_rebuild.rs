//! How a worker that takes a partition over part way gets the state its
//! previous owner had there: by reading the partition's earlier records
//! again through the same code, and dropping what that raises.
//!
//! Stage 2's tasks (one per observations partition, see `worker_tasks`)
//! and stage 3's campaigns (the one summaries partition, see
//! `cmd_worker`) do this the same way; [`PartitionRebuild`] is that one
//! way, and [`RebuiltState`] is what each stage gives it: how its state
//! starts again from nothing, takes one record read again, and drops
//! what it raised.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use orbwatch_kafka::TopicPartition;
use orbwatch_live::LiveRecord;

/// Where a state's records come from when it starts part way through its
/// partition: the partition's earlier records, read again.
///
/// Why read them again rather than snapshot the detectors: a task's state
/// (reorder window, per-source episodes, indicator sessions, the replay
/// guard, kept evidence) is a function of the partition's records in
/// offset order, and the observations topic keeps them (its retention is
/// the window of any replay). Reading them again through the same
/// pipeline gives the state the previous owner had at the same offset,
/// with no second, serialised form of every detector to keep in step
/// with the code: Kafka Streams rebuilds a task's store from its
/// changelog topic the same way, here the input topic is the changelog.
pub(crate) trait PartitionHistory {
    /// Hand `each` the records of `tp` before offset `until`, oldest
    /// first, as far back as the history goes; how many.
    fn replay(
        &mut self,
        tp: &TopicPartition,
        until: i64,
        each: &mut dyn FnMut(LiveRecord),
    ) -> anyhow::Result<u64>;
}

/// A topic on the brokers, read again outside the group.
pub(crate) struct KafkaHistory {
    pub brokers: String,
    pub extra: Vec<(String, String)>,
    /// How far back (by the records' Kafka timestamps); `None`: all the
    /// topic retains.
    pub window: Option<std::time::Duration>,
    /// SIGTERM: a rebuild stops part way (the worker is stopping).
    pub stop: Arc<AtomicBool>,
}

impl PartitionHistory for KafkaHistory {
    fn replay(
        &mut self,
        tp: &TopicPartition,
        until: i64,
        each: &mut dyn FnMut(LiveRecord),
    ) -> anyhow::Result<u64> {
        let since = match self.window {
            None => jiff::Timestamp::UNIX_EPOCH,
            Some(w) => jiff::Timestamp::now()
                .checked_sub(jiff::SignedDuration::try_from(w)?)
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
        };
        let until_map = BTreeMap::from([(tp.clone(), until)]);
        let r = orbwatch_kafka::replay::replay(
            &orbwatch_kafka::replay::ReplayOptions {
                brokers: &self.brokers,
                extra: &self.extra,
                since,
                until: &until_map,
                stop: &self.stop,
                payload_as_is: true,
            },
            each,
        )?;
        if !r.short.is_empty() && !self.stop.load(Ordering::Relaxed) {
            anyhow::bail!(
                "the brokers stopped sending {tp} before offset {until} (read {} records)",
                r.records
            );
        }
        Ok(r.records)
    }
}

/// What a [`PartitionRebuild`] reads a partition's records again into:
/// one stage's state. The rebuild drives (it reads and hands over, as
/// ripgrep's searcher drives its `Sink`); only what differs between the
/// stages is here.
pub(crate) trait RebuiltState {
    /// The state took other records than those before the one at hand
    /// (the partition was given back after another worker read on, or is
    /// read again from an older commit): start again from nothing. An
    /// error keeps the state as it is, and it is not rebuilt.
    fn start_fresh(&mut self) -> anyhow::Result<()>;

    /// Just before the records are read again.
    fn before_replay(&mut self) {}

    /// One record read again: taken as when it was read first, without
    /// a checkpoint (its offset is not this worker's to commit). A record
    /// that was not a message of the stage is skipped: it was counted and
    /// logged by the worker that read it first.
    fn take_again(&mut self, record: LiveRecord);

    /// Drop what the records read again raised: the partition's previous
    /// owner wrote it, and committed the offset only after writing it.
    fn drop_output(&mut self);
}

/// The words that tell one stage's rebuilds from the other's in the log.
pub(crate) struct RebuildWording {
    /// Whose state stopped where a gap starts ("its task", "stage 3").
    pub owner: &'static str,
    /// The state rebuilt ("state", "stage 3 state").
    pub state: &'static str,
    /// What the partition's records are ("messages", "summaries").
    pub records: &'static str,
    /// What a rebuild cut short costs the analyst.
    pub if_short: &'static str,
}

/// Rebuilds so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RebuildCounts {
    /// States rebuilt (each time a state started part way through its
    /// partition and there was something before).
    pub times: u64,
    /// Records read again for them.
    pub records: u64,
}

/// How often a long rebuild drops what it raised so far, in records:
/// the output of a whole partition's history need not be held at once.
const DROP_EVERY: u64 = 4096;

/// One worker's rebuilds of one stage: where the history is, the offset
/// each partition's state expects next, and the counts.
pub(crate) struct PartitionRebuild {
    history: Box<dyn PartitionHistory>,
    wording: RebuildWording,
    /// The offset after the last record each partition's state took.
    next_offset: BTreeMap<TopicPartition, i64>,
    counts: RebuildCounts,
}

impl PartitionRebuild {
    pub fn new(history: Box<dyn PartitionHistory>, wording: RebuildWording) -> Self {
        Self {
            history,
            wording,
            next_offset: BTreeMap::new(),
            counts: RebuildCounts::default(),
        }
    }

    pub fn counts(&self) -> RebuildCounts {
        self.counts
    }

    /// `tp`'s state is gone (finished or dropped): a state made for it
    /// later starts with nothing read, and is rebuilt before its first
    /// record.
    pub fn forget(&mut self, tp: &TopicPartition) {
        self.next_offset.remove(tp);
    }

    /// `tp`'s record at `offset` is about to be taken by `state`. A state
    /// that has taken nothing of `tp` yet, or whose last record was not
    /// the one before, first gets the state the partition's records
    /// before `offset` make (see [`PartitionHistory`]): from `offset` on
    /// it raises what the previous owner would have, with the same ids
    /// and counts. Without it, an attack open at a takeover was split in
    /// two (a report of the part before, another id for the part after),
    /// and what waited in the dead worker's reorder window was lost.
    pub fn catch_up(&mut self, tp: &TopicPartition, offset: i64, state: &mut impl RebuiltState) {
        let expected = self.next_offset.insert(tp.clone(), offset + 1);
        if expected == Some(offset) {
            return;
        }
        let RebuildWording {
            owner,
            state: what,
            records: kind,
            if_short,
        } = self.wording;
        if let Some(n) = expected {
            tracing::info!(
                "{tp}: read from offset {offset}, not {n} where {owner} stopped: its state is rebuilt"
            );
            if let Err(e) = state.start_fresh() {
                tracing::error!(
                    "{tp}: {owner} cannot start again ({e}); it goes on with its state"
                );
                return;
            }
        }
        if offset <= 0 {
            // Nothing before it.
            return;
        }
        state.before_replay();
        let started = Instant::now();
        let mut records = 0u64;
        let read = self.history.replay(tp, offset, &mut |record| {
            records += 1;
            state.take_again(record);
            if records.is_multiple_of(DROP_EVERY) {
                state.drop_output();
            }
        });
        state.drop_output();
        self.counts.times += 1;
        self.counts.records += records;
        match read {
            Ok(_) => tracing::info!(
                "{tp}: {what} rebuilt from {records} {kind} before offset {offset} in {:.1} s",
                started.elapsed().as_secs_f64()
            ),
            Err(e) => tracing::warn!(
                "{tp}: {what} rebuilt from only {records} {kind} before offset {offset}: {e:#}; {if_short}"
            ),
        }
    }
}

/// A partition's records as the topic keeps them, for tests.
#[cfg(test)]
pub(crate) struct RecordsKept(pub Vec<LiveRecord>);

#[cfg(test)]
impl PartitionHistory for RecordsKept {
    fn replay(
        &mut self,
        _tp: &TopicPartition,
        until: i64,
        each: &mut dyn FnMut(LiveRecord),
    ) -> anyhow::Result<u64> {
        let mut n = 0;
        for r in self.0.iter().filter(|r| (r.offset as i64) < until) {
            each(r.clone());
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A partition of `end` records, each its offset's.
    fn offsets(end: u64) -> RecordsKept {
        RecordsKept(
            (0..end)
                .map(|offset| LiveRecord {
                    prefiltered: None,
                    prework: Default::default(),
                    stream: Arc::from("test"),
                    number: offset + 1,
                    offset,
                    payload: orbwatch_live::Payload::Line,
                    bytes: Vec::new(),
                    received: jiff::Timestamp::now(),
                    checkpoint: None,
                })
                .collect(),
        )
    }

    /// A rebuild of partition 0 of `t` from its `end` records.
    fn rebuild_of(end: u64) -> (TopicPartition, PartitionRebuild) {
        let tp = TopicPartition {
            topic: "t".into(),
            partition: 0,
        };
        let wording = RebuildWording {
            owner: "the test",
            state: "test state",
            records: "records",
            if_short: "nothing",
        };
        (tp, PartitionRebuild::new(Box::new(offsets(end)), wording))
    }

    /// What a rebuild did to the state: the offsets it took again since
    /// it last started fresh, how often it started fresh, and how many of
    /// the records taken were dropped with their output.
    #[derive(Default)]
    struct Taken {
        offsets: Vec<u64>,
        fresh: u32,
        can_start_fresh: bool,
        undropped: usize,
    }

    impl RebuiltState for Taken {
        fn start_fresh(&mut self) -> anyhow::Result<()> {
            if !self.can_start_fresh {
                anyhow::bail!("no memory");
            }
            self.fresh += 1;
            self.offsets.clear();
            Ok(())
        }

        fn take_again(&mut self, record: LiveRecord) {
            self.offsets.push(record.offset);
            self.undropped += 1;
        }

        fn drop_output(&mut self) {
            self.undropped = 0;
        }
    }

    #[test]
    fn a_state_is_rebuilt_before_its_first_record_and_after_a_gap_only() {
        let (tp, mut rebuild) = rebuild_of(100);
        let mut state = Taken {
            can_start_fresh: true,
            ..Default::default()
        };
        // The first record is at 5: the 5 before it are read again.
        rebuild.catch_up(&tp, 5, &mut state);
        assert_eq!(state.offsets, [0, 1, 2, 3, 4]);
        assert_eq!((state.fresh, state.undropped), (0, 0));
        // The next ones follow on: nothing more.
        rebuild.catch_up(&tp, 6, &mut state);
        rebuild.catch_up(&tp, 7, &mut state);
        assert_eq!(state.offsets.len(), 5);
        // Read again from 3: the state starts fresh and takes 0 to 2.
        rebuild.catch_up(&tp, 3, &mut state);
        assert_eq!(state.offsets, [0, 1, 2]);
        assert_eq!(state.fresh, 1);
        assert_eq!(
            rebuild.counts(),
            RebuildCounts {
                times: 2,
                records: 8
            }
        );
        // Forgotten, the partition is new again: 0 has nothing before it.
        rebuild.forget(&tp);
        rebuild.catch_up(&tp, 0, &mut state);
        assert_eq!((state.fresh, rebuild.counts().times), (1, 2));
    }

    #[test]
    fn a_state_that_cannot_start_fresh_goes_on_unrebuilt() {
        let (tp, mut rebuild) = rebuild_of(100);
        let mut state = Taken::default();
        rebuild.catch_up(&tp, 0, &mut state);
        rebuild.catch_up(&tp, 50, &mut state);
        assert!(state.offsets.is_empty());
        assert_eq!(rebuild.counts(), RebuildCounts::default());
        // It goes on from 50 as if it had followed on.
        rebuild.catch_up(&tp, 51, &mut state);
        assert!(state.offsets.is_empty());
    }

    #[test]
    fn a_long_rebuild_drops_its_output_as_it_goes() {
        struct Peak(Taken, usize);
        impl RebuiltState for Peak {
            fn start_fresh(&mut self) -> anyhow::Result<()> {
                self.0.start_fresh()
            }
            fn take_again(&mut self, record: LiveRecord) {
                self.0.take_again(record);
                self.1 = self.1.max(self.0.undropped);
            }
            fn drop_output(&mut self) {
                self.0.drop_output();
            }
        }
        let end = 3 * DROP_EVERY + 10;
        let (tp, mut rebuild) = rebuild_of(end);
        let mut state = Peak(Taken::default(), 0);
        rebuild.catch_up(&tp, end as i64, &mut state);
        assert_eq!(state.0.offsets.len() as u64, end);
        assert_eq!(state.1, DROP_EVERY as usize);
        assert_eq!(state.0.undropped, 0);
    }
}
