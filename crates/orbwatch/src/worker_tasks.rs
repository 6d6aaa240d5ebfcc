//! The live pipelines of a worker: one for every partition in stages `all`
//! and 1, one **per observations partition** in stage 2 (Kafka Streams'
//! tasks).
//!
//! Why stage 2 splits: observations are keyed by their source's /24 and
//! sightings by their finding's peer, so the state of every per-source
//! detector and indicator session lives in exactly one partition. A task
//! per partition gives each partition its own reorder window and clock.
//! When a worker dies and another takes its partitions over, it re-reads
//! them from their committed offsets, which are behind what it has
//! already read of its own partitions. With one pipeline for all of them,
//! those records found the survivor's watermark far past them and were
//! late: given to no detector (281,535 observations in the scaling
//! benchmark's stage-2 `kill -9`). A new task starts with its own clock at
//! the committed offset. A task is also the unit a snapshot of detector
//! state would move (not built yet).
//!
//! ```text
//!  observations topic ──► KafkaSource ──► channel ──► PartitionTasks
//!   p0 p1 p2 …                                          ├ p0: LivePipeline (window, clock, detectors)
//!                                                       ├ p1: LivePipeline
//!                                                       └ …   ──► findings, summaries (one producer id)
//! ```
//!
//! Stage 3 sees one producer per worker: the worker's summary watermark is
//! the lowest of its tasks' (a task not heard from within
//! [`ASSIGNED_HOLD`] of its assignment does not hold it back).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use orbwatch_detect::{Coverage, IocEngine};
use orbwatch_engine::obs_wire::{WireError, WireMessage};
use orbwatch_engine::summary_wire::{Origin, Summary, SummaryBody};
use orbwatch_engine::{LiveOutput, LivePipeline, LiveStats};
use orbwatch_kafka::{KafkaSource, OffsetTracker, TopicPartition};
use orbwatch_live::LiveRecord;

use crate::cmd_worker::{ASSIGNED_HOLD, note_malformed};
use crate::partition_rebuild::{
    PartitionHistory, PartitionRebuild, RebuildCounts, RebuildWording, RebuiltState,
};

/// A worker's pipelines (see the module docs). One value per worker,
/// made once: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Pipelines {
    /// Stages `all` and 1: one pipeline; its watermark is over every
    /// partition.
    One(LivePipeline),
    /// Stage 2: one pipeline per observations partition.
    Tasks(PartitionTasks),
}

impl Pipelines {
    /// Partitions assigned and not yet read from hold the clock (see
    /// `LivePipeline::hold_for`); in stage 2, every producer known is
    /// waited for in them.
    pub fn hold_assigned(&mut self, source: &KafkaSource, tracker: &OffsetTracker, now: Instant) {
        for tp in source.take_assigned() {
            match self {
                Pipelines::One(p) => {
                    if !tracker.knows(&tp) {
                        p.hold_for(tp.to_string(), now + ASSIGNED_HOLD);
                    }
                }
                Pipelines::Tasks(t) => t.assigned(&tp, tracker, now),
            }
        }
    }

    /// One record from the consumer.
    pub fn hand_over(
        &mut self,
        tracker: &mut OffsetTracker,
        rec: orbwatch_live::LiveRecord,
        now: Instant,
    ) {
        match self {
            Pipelines::One(p) => {
                if let Some(cp) = &rec.checkpoint {
                    enter(p, tracker, cp);
                }
                p.handle(rec, now)
            }
            Pipelines::Tasks(t) => t.handle(tracker, rec, now),
        }
    }

    /// `tp` has nothing (more) to read now: its hold ends.
    pub fn end_hold(&mut self, tp: &TopicPartition) {
        let name = tp.to_string();
        match self {
            Pipelines::One(p) => p.end_hold(&name),
            Pipelines::Tasks(t) => {
                if let Some(task) = t.tasks.get_mut(tp) {
                    task.pipeline.end_hold(&name);
                }
            }
        }
    }

    pub fn tick(&mut self, now: Instant) {
        match self {
            Pipelines::One(p) => p.tick(now),
            Pipelines::Tasks(t) => {
                for task in t.tasks.values_mut() {
                    task.pipeline.tick(now);
                }
            }
        }
    }

    /// A rebalance takes `partitions` away: what must be written before
    /// their offsets are committed. Stage 1 hands on its window. Stage 2
    /// parks the partitions' tasks (see [`PartitionTasks::settle`]) and
    /// hands on the checkpoints of everything they read, as the one
    /// pipeline did: what waits in their windows is judged by this worker,
    /// and the next owner starts after it.
    pub fn before_revoke(&mut self, partitions: &[TopicPartition], now: Instant) -> LiveOutput {
        match self {
            Pipelines::One(p) => {
                p.flush_observations();
                p.take_output()
            }
            Pipelines::Tasks(t) => {
                for tp in partitions {
                    t.park(tp, now);
                }
                t.take_output()
            }
        }
    }

    /// `tp` is no longer this worker's (stage 2: see
    /// [`PartitionTasks::settle`], which follows the assignment itself).
    pub fn revoked(&mut self, tp: &TopicPartition) {
        if let Pipelines::One(p) = self {
            p.end_hold(&tp.to_string());
        }
    }

    /// Stage 2: follow the assignment (see [`PartitionTasks::settle`]).
    pub fn settle(&mut self, assigned: &BTreeSet<TopicPartition>, now: Instant) {
        if let Pipelines::Tasks(t) = self {
            t.settle(assigned, now);
        }
    }

    /// Stage 1's watermark (the event time up to which observations left
    /// its window); not used in stage 2, whose summary watermark is in
    /// its output.
    pub fn watermark(&self) -> i64 {
        match self {
            Pipelines::One(p) => p.watermark(),
            Pipelines::Tasks(_) => i64::MIN,
        }
    }

    pub fn take_output(&mut self) -> LiveOutput {
        match self {
            Pipelines::One(p) => p.take_output(),
            Pipelines::Tasks(t) => t.take_output(),
        }
    }

    /// Findings waiting for [`Pipelines::take_output`], in every
    /// pipeline (see [`LivePipeline::output_waiting`]); those that
    /// tasks finished at a rebalance handed on count too.
    pub fn output_waiting(&self) -> usize {
        match self {
            Pipelines::One(p) => p.output_waiting(),
            Pipelines::Tasks(t) => {
                t.finished.findings.len()
                    + t.tasks
                        .values()
                        .map(|task| task.pipeline.output_waiting())
                        .sum::<usize>()
            }
        }
    }

    pub fn replace_indicators(&mut self, ioc: IocEngine) {
        match self {
            Pipelines::One(p) => p.replace_indicators(ioc),
            Pipelines::Tasks(t) => {
                let ioc = Arc::new(ioc);
                t.template.replace_indicators(Arc::clone(&ioc));
                for task in t.tasks.values_mut() {
                    task.pipeline.replace_indicators(Arc::clone(&ioc));
                }
            }
        }
    }

    pub fn coverage(&self) -> Coverage {
        match self {
            Pipelines::One(p) => p.coverage(),
            Pipelines::Tasks(t) => t.coverage(),
        }
    }

    pub fn stats(&self) -> LiveStats {
        match self {
            Pipelines::One(p) => p.stats(),
            Pipelines::Tasks(t) => {
                let mut s = t.gone.stats.clone();
                for task in t.tasks.values().chain(t.parked.values().map(|p| &p.task)) {
                    s.absorb(&task.pipeline.stats());
                }
                s
            }
        }
    }

    /// Stage 2: messages that were not observations (skipped, counted).
    pub fn malformed(&self) -> u64 {
        match self {
            Pipelines::One(_) => 0,
            Pipelines::Tasks(t) => t.malformed,
        }
    }

    /// Shutdown: every pipeline finished, in one output. Stage 2 writes
    /// one `done` to stage 3, after every task's summaries.
    pub fn finish(self) -> LiveOutput {
        match self {
            Pipelines::One(p) => p.finish(),
            Pipelines::Tasks(mut t) => {
                let names: Vec<TopicPartition> =
                    t.tasks.keys().chain(t.parked.keys()).cloned().collect();
                for tp in names {
                    t.finish_task(&tp);
                }
                let mut out = std::mem::take(&mut t.finished);
                // The template has read nothing: its end is this worker's
                // `done`, under its producer id.
                let end = t.template.finish();
                out.summaries.extend(end.summaries);
                out.summary_watermark = out.summary_watermark.max(end.summary_watermark);
                out
            }
        }
    }
}

/// Note a record entering the pipeline. The first record of a partition
/// ends the partition's hold: its stream's clock is in the reorder
/// window from this record on.
fn enter(pipeline: &mut LivePipeline, tracker: &mut OffsetTracker, cp: &orbwatch_live::Checkpoint) {
    if let Some(tp) = tracker.entered(cp)
        && pipeline.holds() > 0
    {
        pipeline.end_hold(&tp.to_string());
    }
}

/// Hand one message of the observations topic to a task's pipeline.
fn dispatch(
    pipeline: &mut LivePipeline,
    message: WireMessage,
    stream: &Arc<str>,
    checkpoint: Option<orbwatch_live::Checkpoint>,
    now: Instant,
) {
    match message {
        WireMessage::Observation(w) => pipeline.handle_observation(&w, stream, checkpoint, now),
        WireMessage::Sighting(w) => pipeline.handle_sighting(w, stream, checkpoint, now),
        WireMessage::Watermark { time, .. } => {
            pipeline.handle_watermark(stream, time, checkpoint, now)
        }
    }
}

/// The stage-1 producer that wrote `message`.
fn producer_of(message: &WireMessage) -> u64 {
    match message {
        WireMessage::Observation(w) => w.producer,
        WireMessage::Sighting(w) => w.producer,
        WireMessage::Watermark { producer, .. } => *producer,
    }
}

/// One observations partition's pipeline.
struct Task {
    pipeline: LivePipeline,
    /// When the partition was assigned.
    since: Instant,
    /// A message was read from the partition.
    heard: bool,
    /// Where its summaries were raised.
    origins: Origins,
    /// Summaries given their origin, to hand on.
    summaries: Vec<Summary>,
}

/// Where a task's summaries were raised (see [`Origin`]).
struct Origins {
    /// The origin of the next summary: the offset of the message it was
    /// raised after, and how many that message raised before it.
    next: (i64, u32),
    /// The offset of the message handled last (read from the consumer or
    /// again).
    last_handled: i64,
    /// Where the messages handled since the summaries were last taken end
    /// in the pipeline's waiting summaries: (offset, number waiting after
    /// it). Noted per message, the summaries taken in bulk
    /// ([`Task::collect`]): taking them after every message cost stage 2
    /// about a quarter more CPU in the benchmark (an allocation or two a
    /// message).
    marks: Vec<(i64, usize)>,
}

impl Origins {
    fn new() -> Self {
        Self {
            next: (-1, 0),
            last_handled: -1,
            marks: Vec::new(),
        }
    }

    /// Give `s` its origin: raised after the message at `by`.
    fn tag(&mut self, partition: i32, s: &mut Summary, by: i64) {
        if matches!(s.body, SummaryBody::Watermark { .. } | SummaryBody::Done) {
            return;
        }
        if self.next.0 != by {
            self.next = (by, 0);
        }
        s.origin = Some(Origin {
            partition,
            offset: self.next.0,
            index: self.next.1,
        });
        self.next.1 = self.next.1.saturating_add(1);
    }

    /// Give each of `raised` (the pipeline's waiting summaries, in order)
    /// its origin, into `out`: those up to a message's mark were raised by
    /// it, those after the last mark (a tick's) after the message handled
    /// last.
    fn collect(&mut self, partition: i32, raised: Vec<Summary>, out: &mut Vec<Summary>) {
        let mut marks = std::mem::take(&mut self.marks).into_iter().peekable();
        for (i, mut s) in raised.into_iter().enumerate() {
            while marks.peek().is_some_and(|m| i >= m.1) {
                marks.next();
            }
            let by = marks.peek().map_or(self.last_handled, |m| m.0);
            self.tag(partition, &mut s, by);
            out.push(s);
        }
    }

    /// Summaries the pipeline handed on itself (the end of input's),
    /// raised after the message handled last.
    fn tag_all(&mut self, partition: i32, raised: Vec<Summary>, out: &mut Vec<Summary>) {
        for mut s in raised {
            let by = self.last_handled;
            self.tag(partition, &mut s, by);
            out.push(s);
        }
    }
}

impl Task {
    fn new(pipeline: LivePipeline, now: Instant) -> Self {
        Self {
            pipeline,
            since: now,
            heard: false,
            origins: Origins::new(),
            summaries: Vec::new(),
        }
    }

    /// A message of the pipeline stream `stream` was read: the
    /// partition is heard from, and its hold on that stream ends.
    fn heard_from(&mut self, stream: &str) {
        self.heard = true;
        if self.pipeline.holds() > 0 {
            self.pipeline.end_hold(stream);
        }
    }

    /// After the message at `offset`: where its summaries end.
    fn handled(&mut self, offset: i64) {
        self.origins.last_handled = offset;
        let waiting = self.pipeline.summaries_pending();
        let marked = self.origins.marks.last().map_or(0, |m| m.1);
        if waiting > marked {
            self.origins.marks.push((offset, waiting));
        }
    }

    /// Take the pipeline's waiting summaries, with their origins.
    fn collect(&mut self, partition: i32) {
        let raised = self.pipeline.take_summaries();
        self.origins.collect(partition, raised, &mut self.summaries);
    }

    /// The pipeline's output, its summaries with their origins.
    fn take_output(&mut self, partition: i32) -> LiveOutput {
        self.collect(partition);
        let mut o = self.pipeline.take_output();
        let end = std::mem::take(&mut o.summaries);
        self.origins.tag_all(partition, end, &mut self.summaries);
        o.summaries = std::mem::take(&mut self.summaries);
        o
    }

    /// The end of input: everything judged and handed on.
    fn finish(mut self, partition: i32) -> LiveOutput {
        self.collect(partition);
        let Task {
            pipeline,
            mut origins,
            mut summaries,
            ..
        } = self;
        let mut o = pipeline.finish();
        origins.tag_all(partition, std::mem::take(&mut o.summaries), &mut summaries);
        o.summaries = summaries;
        o
    }
}

/// A task whose partition a rebalance took away (see
/// [`PartitionTasks::settle`]).
struct Parked {
    task: Task,
    at: Instant,
    summary_watermark: i64,
}

/// How long a task whose partition was taken away waits for it to come
/// back before it is finished. librdkafka's eager rebalance takes every
/// partition away and gives most of them back moments later (a member
/// joining or leaving): a task that gets its partition back goes on with
/// its state, instead of judging its open episodes early and splitting
/// them. Longer than a rebalance takes with the default session timeout.
const PARK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Stage 2: one pipeline per observations partition.
///
/// Each (partition, stage-1 producer) is one stream of its task's reorder
/// window: a producer writes in its own event-time order. A producer
/// heard from in one partition is waited for in every other assigned
/// partition (a hold, until its first message there or
/// [`ASSIGNED_HOLD`]): its watermark goes to every partition at each of
/// its commits, so it is heard from soon, and until then that partition
/// may still bring its older observations.
pub(crate) struct PartitionTasks {
    /// Never fed: each new task is a sibling of it (same indicators,
    /// configuration and enrichment, shared).
    template: LivePipeline,
    tasks: BTreeMap<TopicPartition, Task>,
    /// Tasks whose partition was taken away: since when (see
    /// [`PARK_WAIT`]), and the event time their summaries had reached.
    /// They hold the worker's summary watermark until they are finished,
    /// so the summaries they send then are not late at stage 3.
    parked: BTreeMap<TopicPartition, Parked>,
    producers: Producers,
    /// Messages that were not observations (skipped, counted, logged).
    malformed: u64,
    /// What tasks finished at a rebalance handed on, until the next
    /// [`PartitionTasks::take_output`].
    finished: LiveOutput,
    gone: GoneTasks,
    /// How a task starting part way through its partition gets its
    /// state (`None`: it starts empty).
    rebuild: Option<PartitionRebuild>,
}

/// The words of stage 2's rebuilds in the log (the kill test and the
/// benchmark's notes look for "state rebuilt" and "from 0 messages").
const TASK_REBUILD_WORDING: RebuildWording = RebuildWording {
    owner: "its task",
    state: "state",
    records: "messages",
    if_short: "attacks open at the takeover may be split in two",
};

/// The stage-1 producers heard from, and the name of each pipeline
/// stream: one per (partition, producer), as a producer writes in its
/// own event-time order.
#[derive(Default)]
struct Producers {
    streams: HashMap<(TopicPartition, u64), Arc<str>>,
    /// Heard from (in any partition).
    heard: HashSet<u64>,
    /// Heard from for the first time by the message being handled, not
    /// yet waited for in the other partitions (see
    /// [`PartitionTasks::wait_for_new_producers`]).
    new: Vec<u64>,
}

impl Producers {
    fn stream(&mut self, tp: &TopicPartition, producer: u64) -> Arc<str> {
        self.streams
            .entry((tp.clone(), producer))
            .or_insert_with(|| Arc::from(format!("{tp} from {producer:016x}").as_str()))
            .clone()
    }

    /// A message of `producer` in `tp`: its stream there, and a producer
    /// new to this worker is noted to be waited for in the other
    /// partitions.
    fn heard(&mut self, tp: &TopicPartition, producer: u64) -> Arc<str> {
        if self.heard.insert(producer) {
            self.new.push(producer);
        }
        self.stream(tp, producer)
    }
}

/// Counts and coverage of the tasks that are gone, so the worker's stay
/// whole.
#[derive(Default)]
struct GoneTasks {
    stats: LiveStats,
    coverage: Option<Coverage>,
}

impl GoneTasks {
    /// Keep the counts and coverage of a task that goes.
    fn retire(&mut self, p: &LivePipeline) {
        let mut s = p.stats();
        // What it holds now is gone with it.
        s.streams = 0;
        s.raw_stream_clocks = 0;
        s.open_ioc_sessions = 0;
        s.tracked_keys = 0;
        s.names_kept = 0;
        s.addresses_kept = 0;
        s.evidence_bytes = 0;
        s.reorder.pending = 0;
        self.stats.absorb(&s);
        let c = p.coverage();
        match &mut self.coverage {
            Some(g) => merge_coverage(g, c),
            None => self.coverage = Some(c),
        }
    }
}

/// The task of `tp`: its parked one back, or made now (a sibling of
/// `template`) if it has none. Takes the fields it needs rather than the
/// whole [`PartitionTasks`], so the task can be handed on beside the
/// others (one look-up a message, see [`PartitionTasks::handle`]).
fn task_of<'a>(
    tasks: &'a mut BTreeMap<TopicPartition, Task>,
    parked: &mut BTreeMap<TopicPartition, Parked>,
    template: &LivePipeline,
    tp: &TopicPartition,
    now: Instant,
) -> &'a mut Task {
    if let Some(p) = parked.remove(tp) {
        tracing::debug!("{tp}: back after a rebalance; its task goes on with its state");
        tasks.insert(tp.clone(), p.task);
    }
    tasks.entry(tp.clone()).or_insert_with(|| {
        tracing::info!(
            "{tp}: a new task (its own reorder window, clock and detectors, from the committed offset)"
        );
        Task::new(template.sibling(), now)
    })
}

/// A task being rebuilt (see [`PartitionRebuild::catch_up`]), with what
/// the records read again need besides it.
struct TaskRebuild<'a> {
    tp: &'a TopicPartition,
    task: &'a mut Task,
    template: &'a LivePipeline,
    gone: &'a mut GoneTasks,
    producers: &'a mut Producers,
    now: Instant,
}

impl RebuiltState for TaskRebuild<'_> {
    fn start_fresh(&mut self) -> anyhow::Result<()> {
        let mut fresh = Task::new(self.template.sibling(), self.task.since);
        // Whether the partition was heard from is not state of its
        // records: a fresh task heard from holds the summary watermark
        // as before.
        fresh.heard = self.task.heard;
        let old = std::mem::replace(self.task, fresh);
        self.gone.retire(&old.pipeline);
        Ok(())
    }

    fn before_replay(&mut self) {
        // Its own records are read now: the clock need not wait for
        // them (a hold would keep the rebuild's releases back until the
        // live records, which would write them again).
        self.task.pipeline.end_hold(&self.tp.to_string());
    }

    fn take_again(&mut self, record: LiveRecord) {
        let Ok(decoded) = WireMessage::decode(&record.bytes) else {
            return;
        };
        let stream = self.producers.heard(self.tp, producer_of(&decoded));
        self.task.heard_from(&stream);
        dispatch(&mut self.task.pipeline, decoded, &stream, None, self.now);
        self.task
            .handled(i64::try_from(record.offset).unwrap_or(i64::MAX));
    }

    fn drop_output(&mut self) {
        drop(self.task.take_output(self.tp.partition));
    }
}

impl PartitionTasks {
    /// Tasks made as siblings of `template` (a stage-2 pipeline).
    pub fn new(template: LivePipeline) -> Self {
        Self {
            template,
            tasks: BTreeMap::new(),
            parked: BTreeMap::new(),
            producers: Producers::default(),
            malformed: 0,
            finished: LiveOutput {
                summary_watermark: i64::MIN,
                ..Default::default()
            },
            gone: GoneTasks::default(),
            rebuild: None,
        }
    }

    /// Rebuild the state of each task that starts part way through its
    /// partition from `history` (see [`PartitionRebuild::catch_up`]).
    pub fn set_history(&mut self, history: Box<dyn PartitionHistory>) {
        self.rebuild = Some(PartitionRebuild::new(history, TASK_REBUILD_WORDING));
    }

    /// Tasks whose state was rebuilt so far, and the messages read again.
    pub fn rebuilt(&self) -> RebuildCounts {
        self.rebuild
            .as_ref()
            .map(PartitionRebuild::counts)
            .unwrap_or_default()
    }

    /// The task of `tp` (see [`task_of`]).
    fn task(&mut self, tp: &TopicPartition, now: Instant) -> &mut Task {
        task_of(&mut self.tasks, &mut self.parked, &self.template, tp, now)
    }

    /// A rebalance takes `tp` away: its task hands on the checkpoints of
    /// all it read (sightings still in its window included: they are
    /// aggregated here), and waits for the partition to come back.
    fn park(&mut self, tp: &TopicPartition, now: Instant) {
        let Some(mut task) = self.tasks.remove(tp) else {
            return;
        };
        task.pipeline.flush_observations();
        let o = task.take_output(tp.partition);
        self.finished.findings.extend(o.findings);
        self.finished.checkpoints.extend(o.checkpoints);
        self.finished.summaries.extend(o.summaries);
        self.parked.insert(
            tp.clone(),
            Parked {
                task,
                at: now,
                summary_watermark: o.summary_watermark,
            },
        );
    }

    /// Follow the consumer's assignment, `assigned`: a task whose
    /// partition is gone (lost without a rebalance asking first) is
    /// parked; a parked one whose partition is back goes on; one parked
    /// for [`PARK_WAIT`] is finished (its open episodes and sessions
    /// judged as at the end of input; the next owner starts new ones from
    /// the committed offset).
    fn settle(&mut self, assigned: &BTreeSet<TopicPartition>, now: Instant) {
        let gone: Vec<TopicPartition> = self
            .tasks
            .keys()
            .filter(|tp| !assigned.contains(*tp))
            .cloned()
            .collect();
        for tp in gone {
            if let Some(mut task) = self.tasks.remove(&tp) {
                let o = task.take_output(tp.partition);
                self.finished.findings.extend(o.findings);
                self.finished.summaries.extend(o.summaries);
                // Its checkpoints are not this worker's to commit any more.
                self.parked.insert(
                    tp,
                    Parked {
                        task,
                        at: now,
                        summary_watermark: o.summary_watermark,
                    },
                );
            }
        }
        let back: Vec<TopicPartition> = self
            .parked
            .keys()
            .filter(|tp| assigned.contains(*tp))
            .cloned()
            .collect();
        for tp in back {
            self.task(&tp, now);
        }
        let done: Vec<TopicPartition> = self
            .parked
            .iter()
            .filter(|(_, p)| now.saturating_duration_since(p.at) >= PARK_WAIT)
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in done {
            if let Some(rebuild) = &mut self.rebuild {
                // The next owner rebuilds this state from the partition
                // and goes on with it: judging it here as well would
                // write the open attacks a second time, cut short, under
                // the ids the next owner writes them with in full.
                tracing::info!(
                    "{tp}: another worker has it since {} s and rebuilds its state: this worker's task is dropped",
                    PARK_WAIT.as_secs()
                );
                rebuild.forget(&tp);
                if let Some(p) = self.parked.remove(&tp) {
                    self.gone.retire(&p.task.pipeline);
                }
            } else {
                tracing::info!(
                    "{tp}: another worker has it since {} s: what this worker held of it is judged and written",
                    PARK_WAIT.as_secs()
                );
                self.finish_task(&tp);
            }
        }
    }

    /// A partition is assigned: its task is made, and holds its clock
    /// until its first record, and for every producer known until that
    /// producer is heard from in it.
    fn assigned(&mut self, tp: &TopicPartition, tracker: &OffsetTracker, now: Instant) {
        let producers: Vec<u64> = self.producers.heard.iter().copied().collect();
        let names: Vec<Arc<str>> = producers
            .iter()
            .map(|p| self.producers.stream(tp, *p))
            .collect();
        let known = tracker.knows(tp);
        let task = self.task(tp, now);
        if !known {
            task.pipeline.hold_for(tp.to_string(), now + ASSIGNED_HOLD);
        }
        for name in names {
            task.pipeline
                .hold_for(name.to_string(), now + ASSIGNED_HOLD);
        }
    }

    /// Producers heard from for the first time in `tp` (in the record
    /// just handled, or in those its task read again) are waited for in
    /// every other partition's task. Done once the record is handled,
    /// when its task is no longer borrowed: nothing ran in the other
    /// tasks meanwhile, so they hold the producers as if held at once.
    fn wait_for_new_producers(&mut self, tp: &TopicPartition, now: Instant) {
        for producer in std::mem::take(&mut self.producers.new) {
            for (other, task) in self.tasks.iter_mut().filter(|(t, _)| *t != tp) {
                let name = self.producers.stream(other, producer);
                task.pipeline
                    .hold_for(name.to_string(), now + ASSIGNED_HOLD);
            }
        }
    }

    /// One record from the consumer. Its partition's task is looked up
    /// once and handed on: it first catches up with the record's offset
    /// (see [`PartitionRebuild::catch_up`]), then takes the message.
    fn handle(
        &mut self,
        tracker: &mut OffsetTracker,
        rec: orbwatch_live::LiveRecord,
        now: Instant,
    ) {
        let Some(tp) = rec
            .checkpoint
            .as_ref()
            .and_then(|c| orbwatch_kafka::parse_identity(&c.identity))
        else {
            let error = WireMessage::decode(&rec.bytes).err();
            self.skip(tracker, rec, error);
            return;
        };
        let offset = i64::try_from(rec.offset).unwrap_or(i64::MAX);
        // The record's offset is tracked under its producer's stream, the
        // one the pipeline holds checkpoints back by (a sighting waiting
        // in the reorder window holds its stream's). Under the Kafka key
        // alone, another producer's later record of the same key (or any
        // producer's watermark: they have no key) would let the offset
        // tracker commit past the waiting sighting.
        let decoded = WireMessage::decode(&rec.bytes).map(|message| {
            let stream = self.producers.heard(&tp, producer_of(&message));
            (message, stream)
        });
        // A message makes its partition's task (or brings it back from
        // parked); a record that is none only goes to the task there is.
        let task = match &decoded {
            Ok(_) => task_of(&mut self.tasks, &mut self.parked, &self.template, &tp, now),
            Err(_) => match self.tasks.get_mut(&tp) {
                Some(task) => task,
                None => {
                    let error = decoded.err();
                    self.skip(tracker, rec, error);
                    return;
                }
            },
        };
        if let Ok((_, stream)) = &decoded {
            task.heard_from(stream);
        }
        // Every record of the partition moves its task on, a message or
        // not: a record that is none is no gap to rebuild over.
        if let Some(rebuild) = &mut self.rebuild {
            rebuild.catch_up(
                &tp,
                offset,
                &mut TaskRebuild {
                    tp: &tp,
                    task: &mut *task,
                    template: &self.template,
                    gone: &mut self.gone,
                    producers: &mut self.producers,
                    now,
                },
            );
        }
        match decoded {
            Ok((message, stream)) => {
                let checkpoint = rec.checkpoint.map(|c| orbwatch_live::Checkpoint {
                    source: stream.clone(),
                    ..c
                });
                if let Some(cp) = &checkpoint {
                    enter(&mut task.pipeline, tracker, cp);
                }
                dispatch(&mut task.pipeline, message, &stream, checkpoint, now);
                task.handled(offset);
            }
            Err(e) => self.skip(tracker, rec, Some(e)),
        }
        self.wait_for_new_producers(&tp, now);
    }

    /// A record no task takes: one that is not a message of the
    /// observations topic (counted and logged), or a message of no
    /// partition. Nothing waits for it: its offset may be committed.
    fn skip(
        &mut self,
        tracker: &mut OffsetTracker,
        rec: orbwatch_live::LiveRecord,
        error: Option<WireError>,
    ) {
        if let Some(e) = error {
            note_malformed(&mut self.malformed, &rec, "an observation", "stage-1", &e);
        }
        if let Some(cp) = rec.checkpoint {
            tracker.decoded(std::slice::from_ref(&cp));
        }
    }

    /// Finish `tp`'s task (if any): its findings, checkpoints and
    /// summaries wait in `finished`. Its `done` is not handed on: stage 3
    /// waits for this worker as long as it has other partitions.
    fn finish_task(&mut self, tp: &TopicPartition) {
        let Some(task) = self
            .tasks
            .remove(tp)
            .or_else(|| self.parked.remove(tp).map(|p| p.task))
        else {
            return;
        };
        self.gone.retire(&task.pipeline);
        if let Some(rebuild) = &mut self.rebuild {
            rebuild.forget(tp);
        }
        let mut o = task.finish(tp.partition);
        o.summaries.retain(|s| s.body != SummaryBody::Done);
        self.finished.findings.extend(o.findings);
        self.finished.checkpoints.extend(o.checkpoints);
        self.finished.summaries.extend(o.summaries);
    }

    fn take_output(&mut self) -> LiveOutput {
        let now = Instant::now();
        let mut out = std::mem::take(&mut self.finished);
        let mut mark: Option<i64> = None;
        for (tp, task) in self.tasks.iter_mut() {
            let o = task.take_output(tp.partition);
            out.findings.extend(o.findings);
            out.checkpoints.extend(o.checkpoints);
            out.summaries.extend(o.summaries);
            // A partition assigned and silent past its hold (empty, or
            // its producers gone) does not hold stage 3 back.
            if task.heard || now.saturating_duration_since(task.since) < ASSIGNED_HOLD {
                mark = Some(mark.map_or(o.summary_watermark, |m| m.min(o.summary_watermark)));
            }
        }
        for p in self.parked.values() {
            mark = Some(mark.map_or(p.summary_watermark, |m| m.min(p.summary_watermark)));
        }
        out.summary_watermark = mark.unwrap_or(i64::MIN);
        out
    }

    fn coverage(&self) -> Coverage {
        let mut c = match &self.gone.coverage {
            Some(g) => g.clone(),
            None => self.template.coverage(),
        };
        for task in self
            .tasks
            .values()
            .chain(self.parked.values().map(|p| &p.task))
        {
            merge_coverage(&mut c, task.pipeline.coverage());
        }
        c
    }
}

/// Add one task's coverage to the worker's: inputs of the same name
/// merged, counts summed, notes kept once.
fn merge_coverage(into: &mut Coverage, c: Coverage) {
    for i in c.inputs {
        match into.inputs.iter_mut().find(|x| x.file == i.file) {
            Some(x) => x.merge(i),
            None => into.inputs.push(i),
        }
    }
    into.sightings += c.sightings;
    into.findings += c.findings;
    into.findings_in_window += c.findings_in_window;
    into.findings_out_of_window += c.findings_out_of_window;
    into.started = match (into.started, c.started) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    into.finished = into.finished.max(c.finished);
    if into.feeds.is_empty() {
        into.feeds = c.feeds;
    }
    if let Some(b) = c.behaviour {
        let a = into.behaviour.get_or_insert_with(Default::default);
        a.observations += b.observations;
        a.untimed += b.untimed;
        a.dropped += b.dropped;
        for (k, n) in b.findings {
            *a.findings.entry(k).or_default() += n;
        }
        for n in b.notes {
            if !a.notes.contains(&n) {
                a.notes.push(n);
            }
        }
    }
}

/// The engine, options and raw records of the engine's stage-2 tests.
#[cfg(test)]
#[path = "../../orbwatch-engine/tests/support/stage2.rs"]
mod stage2_test_support;

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;
    use orbwatch_live::{Checkpoint, LiveRecord, Payload};

    use super::stage2_test_support as support;
    use crate::partition_rebuild::RecordsKept;
    use support::RELAY;

    /// Another attacker, in the partition read first.
    const OTHER: &str = "203.0.113.77";
    const PRODUCER: u64 = 7;

    /// What stage 1 sends for 40 failed logins of `src`, one a second
    /// from `hour`:00.
    fn stage1(src: &str, hour: u8) -> Vec<WireMessage> {
        let mut out = stage1_seconds(src, hour, 0..40);
        // Its watermark after them, as a stage-1 worker writes it.
        out.push(WireMessage::Watermark {
            producer: PRODUCER,
            time: i64::MAX,
        });
        out
    }

    /// What stage 1 sends for failed logins of `src` at `hour`:00:SS for
    /// each second SS in `seconds`.
    fn stage1_seconds(src: &str, hour: u8, seconds: std::ops::Range<u64>) -> Vec<WireMessage> {
        let mut s1 = support::stage1(PRODUCER);
        let now = Instant::now();
        for i in seconds {
            let line = format!(
                "2021-03-01T{hour:02}:00:{i:02}+00:00 gw sshd[42]: Failed password for root from {src} port {} ssh2",
                40_000 + i
            );
            s1.handle(support::raw_record(i, line), now);
        }
        s1.finish().observations
    }

    /// Records of observations partition `partition` carrying `messages`.
    fn records(partition: i32, messages: &[WireMessage]) -> Vec<LiveRecord> {
        records_from(partition, 0, messages)
    }

    /// The same, the first at offset `first`.
    fn records_from(partition: i32, first: u64, messages: &[WireMessage]) -> Vec<LiveRecord> {
        let stream: Arc<str> = Arc::from(format!("kafka orbwatch.observations/{partition}"));
        let identity: Arc<str> = Arc::from(
            orbwatch_kafka::checkpoint_identity("orbwatch.observations", partition).as_str(),
        );
        messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let offset = first + i as u64;
                LiveRecord {
                    prefiltered: None,
                    prework: Default::default(),
                    stream: stream.clone(),
                    number: offset + 1,
                    offset,
                    payload: Payload::Line,
                    bytes: m.encode(),
                    received: Timestamp::now(),
                    checkpoint: Some(Checkpoint {
                        source: stream.clone(),
                        position: offset + 1,
                        identity: identity.clone(),
                    }),
                }
            })
            .collect()
    }

    /// Partition 0 (an attacker at 12:00) is read to its end and judged;
    /// then partition 1 is taken over from a dead worker and read from
    /// its committed offset: the relay's 40 failures at 10:00. Returns the
    /// brute-force sources found and the observations counted late.
    fn takeover(mut tasks: PartitionTasks) -> (Vec<String>, u64) {
        let tp = |partition| TopicPartition {
            topic: "orbwatch.observations".into(),
            partition,
        };
        let mut tracker = OffsetTracker::new();
        let now = Instant::now();
        tasks.assigned(&tp(0), &tracker, now);
        let mut pipes = Pipelines::Tasks(tasks);
        let mut findings = Vec::new();
        for r in records(0, &stage1(OTHER, 12)) {
            pipes.hand_over(&mut tracker, r, now);
        }
        pipes.end_hold(&tp(0));
        pipes.tick(now);
        findings.extend(pipes.take_output().findings);
        if let Pipelines::Tasks(t) = &mut pipes {
            t.assigned(&tp(1), &tracker, now);
        }
        for r in records(1, &stage1(RELAY, 10)) {
            pipes.hand_over(&mut tracker, r, now);
        }
        let late = pipes.stats().late;
        findings.extend(pipes.finish().findings);
        (brute_force_sources(&findings), late)
    }

    /// The same with one stage-2 pipeline for both partitions (as before
    /// the tasks): one stream per (partition, producer), one clock.
    fn takeover_one_clock(mut p: LivePipeline) -> (Vec<String>, u64) {
        let now = Instant::now();
        let mut findings = Vec::new();
        for (partition, messages) in [(0, stage1(OTHER, 12)), (1, stage1(RELAY, 10))] {
            let stream: Arc<str> = Arc::from(format!(
                "orbwatch.observations/{partition} from {PRODUCER:016x}"
            ));
            for m in messages {
                match m {
                    WireMessage::Observation(w) => p.handle_observation(&w, &stream, None, now),
                    WireMessage::Sighting(w) => p.handle_sighting(w, &stream, None, now),
                    WireMessage::Watermark { time, .. } => {
                        p.handle_watermark(&stream, time, None, now)
                    }
                }
            }
            p.tick(now);
            findings.extend(p.take_output().findings);
        }
        let late = p.stats().late;
        findings.extend(p.finish().findings);
        (brute_force_sources(&findings), late)
    }

    fn brute_force_sources(findings: &[orbwatch_detect::Finding]) -> Vec<String> {
        let mut brute: Vec<String> = findings
            .iter()
            .filter(|f| f.kind.as_str() == "brute_force")
            .filter_map(|f| f.src_ip.map(|a| a.to_string()))
            .collect();
        brute.sort();
        brute.dedup();
        brute
    }

    #[test]
    fn a_partition_taken_over_behind_the_others_is_judged_with_its_own_clock() {
        let stage2 = || support::stage2();
        // One clock for every partition: the relay's failures are behind
        // partition 0's watermark, late, and reach no detector.
        let (one, late_one) = takeover_one_clock(stage2());
        assert_eq!(one, [OTHER], "one clock: only the attacker read first");
        assert!(late_one >= 40, "{late_one} late");
        // A task per partition: partition 1 starts its own clock.
        let (tasks, late_tasks) = takeover(PartitionTasks::new(stage2()));
        assert_eq!(tasks, [OTHER, RELAY]);
        assert_eq!(late_tasks, 0);
    }

    /// A rebalance takes partition 0 away in the middle of the relay's
    /// 40 failures. `back_after`: when the assignment gives it back (or
    /// never). Returns the brute-force findings' counts.
    fn rebalance(back_after: Option<std::time::Duration>) -> Vec<u64> {
        let p0 = TopicPartition {
            topic: "orbwatch.observations".into(),
            partition: 0,
        };
        let stage2 = support::stage2();
        let mut pipes = Pipelines::Tasks(PartitionTasks::new(stage2));
        let mut tracker = OffsetTracker::new();
        let now = Instant::now();
        if let Pipelines::Tasks(t) = &mut pipes {
            t.assigned(&p0, &tracker, now);
        }
        let first = stage1_seconds(RELAY, 10, 0..20);
        let n = first.len() as u64;
        for r in records(0, &first) {
            pipes.hand_over(&mut tracker, r, now);
        }
        let mut out = pipes.before_revoke(std::slice::from_ref(&p0), now);
        assert!(
            out.checkpoints.iter().any(|c| c.position == n),
            "everything read is committable before the partition goes: {:?}",
            out.checkpoints
        );
        pipes.settle(&BTreeSet::new(), now);
        let mut findings = std::mem::take(&mut out.findings);
        let Some(after) = back_after else {
            // Given to another worker: finished once PARK_WAIT is over.
            pipes.settle(&BTreeSet::new(), now + PARK_WAIT);
            findings.extend(pipes.take_output().findings);
            return brute_force_counts(&findings);
        };
        let later = now + after;
        pipes.settle(&BTreeSet::from([p0.clone()]), later);
        if let Pipelines::Tasks(t) = &mut pipes {
            t.assigned(&p0, &tracker, later);
        }
        let mut rest = stage1_seconds(RELAY, 10, 20..40);
        rest.push(WireMessage::Watermark {
            producer: PRODUCER,
            time: i64::MAX,
        });
        for r in records_from(0, n, &rest) {
            pipes.hand_over(&mut tracker, r, later);
        }
        findings.extend(pipes.finish().findings);
        brute_force_counts(&findings)
    }

    fn brute_force_counts(findings: &[orbwatch_detect::Finding]) -> Vec<u64> {
        let mut latest: BTreeMap<&str, u64> = BTreeMap::new();
        for f in findings.iter().filter(|f| f.kind.as_str() == "brute_force") {
            latest.insert(&f.id, f.count);
        }
        latest.into_values().collect()
    }

    #[test]
    fn findings_waiting_are_counted_over_every_task_and_those_finished() {
        // What the worker reads to write a flood of findings before its
        // commit interval ends (`OUTPUT_BATCH`).
        let tp = |partition| TopicPartition {
            topic: "orbwatch.observations".into(),
            partition,
        };
        let mut tracker = OffsetTracker::new();
        let now = Instant::now();
        let mut tasks = PartitionTasks::new(support::stage2());
        tasks.assigned(&tp(0), &tracker, now);
        tasks.assigned(&tp(1), &tracker, now);
        let mut pipes = Pipelines::Tasks(tasks);
        assert_eq!(pipes.output_waiting(), 0);
        for r in records(0, &stage1(OTHER, 12)) {
            pipes.hand_over(&mut tracker, r, now);
        }
        let one = pipes.output_waiting();
        for r in records(1, &stage1(RELAY, 10)) {
            pipes.hand_over(&mut tracker, r, now);
        }
        let both = pipes.output_waiting();
        assert!(one > 0 && both > one, "one task: {one}, both: {both}");
        let out = pipes.take_output();
        assert_eq!(brute_force_sources(&out.findings), [OTHER, RELAY]);
        assert!(
            out.findings.len() <= both,
            "{} > {both}",
            out.findings.len()
        );
        assert_eq!(pipes.output_waiting(), 0);

        // A partition taken away: what its task hands on when it is
        // finished waits too (the relay is a listed address: its
        // indicator finding, with the 40 sightings read since).
        let more = stage1_seconds(RELAY, 11, 0..40);
        for r in records_from(1, 41, &more) {
            pipes.hand_over(&mut tracker, r, now);
        }
        drop(pipes.before_revoke(&[tp(1)], now));
        pipes.settle(&BTreeSet::from([tp(0)]), now + PARK_WAIT);
        let finished = pipes.output_waiting();
        let out = pipes.take_output();
        let relay: std::net::IpAddr = RELAY.parse().unwrap();
        let sightings: Vec<u64> = out
            .findings
            .iter()
            .filter(|f| f.kind.as_str() == "ioc_match" && f.src_ip == Some(relay))
            .map(|f| f.count)
            .collect();
        assert_eq!(sightings, [80]);
        assert_eq!(finished, out.findings.len());
        assert_eq!(pipes.output_waiting(), 0);
    }

    #[test]
    fn a_partition_given_back_after_a_rebalance_keeps_its_task() {
        // Eager rebalancing takes every partition away and gives it back:
        // the task goes on, and the 40 failures are one brute force.
        assert_eq!(rebalance(Some(std::time::Duration::from_secs(3))), [40]);
        // Given to another worker: this one judges its 20 when the wait
        // is over (the next owner reads on from the committed offset).
        assert_eq!(rebalance(None), [20]);
    }

    fn p0() -> TopicPartition {
        TopicPartition {
            topic: "orbwatch.observations".into(),
            partition: 0,
        }
    }

    /// Partition 0: another attacker's 40 failures at 08:00, judged by a
    /// watermark at 09:30 (the detectors' idle time is an hour), then the relay's 40 failures at 10:00; the
    /// offset of the relay's 21st.
    fn crash_partition() -> (Vec<LiveRecord>, u64) {
        let mut m = stage1_seconds(OTHER, 8, 0..40);
        m.push(WireMessage::Watermark {
            producer: PRODUCER,
            time: "2021-03-01T09:30:00Z"
                .parse::<Timestamp>()
                .unwrap()
                .as_millisecond(),
        });
        m.extend(stage1_seconds(RELAY, 10, 0..20));
        let crash_at = m.len() as u64;
        m.extend(stage1_seconds(RELAY, 10, 20..40));
        m.push(WireMessage::Watermark {
            producer: PRODUCER,
            time: i64::MAX,
        });
        (records(0, &m), crash_at)
    }

    /// Worker A reads partition 0 to its end and writes what it raised,
    /// then dies without a word (`kill -9`) before it commits more than
    /// `crash_at`; worker B is given the partition from that offset, with
    /// or without the partition's history. Returns what A wrote and what
    /// B wrote.
    fn crash_and_takeover(history: bool) -> (LiveOutput, LiveOutput) {
        let (all, crash_at) = crash_partition();
        let now = Instant::now();
        let mut tracker = OffsetTracker::new();
        let mut a = Pipelines::Tasks(PartitionTasks::new(support::stage2()));
        if let Pipelines::Tasks(t) = &mut a {
            t.assigned(&p0(), &tracker, now);
        }
        for r in &all {
            a.hand_over(&mut tracker, r.clone(), now);
        }
        let written_by_a = a.take_output();
        drop(a);
        let mut tasks = PartitionTasks::new(support::stage2());
        if history {
            tasks.set_history(Box::new(RecordsKept(all.clone())));
        }
        let mut tracker = OffsetTracker::new();
        tasks.assigned(&p0(), &tracker, now);
        let mut b = Pipelines::Tasks(tasks);
        for r in all.iter().skip(crash_at as usize) {
            b.hand_over(&mut tracker, r.clone(), now);
        }
        let mut written_by_b = b.take_output();
        let end = b.finish();
        written_by_b.findings.extend(end.findings);
        written_by_b.summaries.extend(end.summaries);
        (written_by_a, written_by_b)
    }

    /// Stage 3's counts after taking `summaries` in order.
    fn stage3_counts(summaries: &[Summary]) -> orbwatch_engine::cross_stage::CrossStats {
        let mut stage3 = orbwatch_engine::cross_stage::CrossStage::new(
            orbwatch_detect::behaviour::BehaviourConfig::default(),
            &[],
            orbwatch_detect::InternalNets::default(),
        )
        .unwrap();
        let now = Instant::now();
        for s in summaries {
            // Through the wire, as stage 3 reads them.
            stage3.handle(&Summary::decode(&s.encode()).unwrap(), now);
        }
        stage3.finish().1
    }

    /// Every finding's latest state, by id: what the findings topic and
    /// the store keep.
    fn latest(findings: &[orbwatch_detect::Finding]) -> BTreeMap<String, (String, u64)> {
        findings
            .iter()
            .map(|f| (f.id.clone(), (f.kind.as_str().to_string(), f.count)))
            .collect()
    }

    #[test]
    fn a_partition_taken_over_after_a_crash_gets_its_state_back_from_the_partition() {
        // One worker reads the whole partition: the answer.
        let (all, _) = crash_partition();
        let now = Instant::now();
        let mut tracker = OffsetTracker::new();
        let mut tasks = PartitionTasks::new(support::stage2());
        tasks.assigned(&p0(), &tracker, now);
        let mut one = Pipelines::Tasks(tasks);
        for r in all {
            one.hand_over(&mut tracker, r, now);
        }
        let whole_output = one.finish();
        let whole = latest(&whole_output.findings);
        assert_eq!(brute_force_counts_of(&whole), [40, 40], "{whole:?}");
        let whole_events = stage3_counts(&whole_output.summaries).events;
        assert!(whole_events >= 80, "a login event each: {whole_events}");

        // Rebuilt: the relay's attack open at the crash is whole, with
        // the same id, and the next owner writes nothing A had written
        // before the offset it committed.
        let (a, b) = crash_and_takeover(true);
        let of = |o: &LiveOutput, ip: &str| {
            o.findings
                .iter()
                .any(|f| f.src_ip.is_some_and(|s| s.to_string() == ip))
        };
        assert!(
            of(&a, OTHER),
            "A reported the attack judged before the crash"
        );
        assert!(!of(&b, OTHER), "B wrote again what A had written: {b:?}");
        let mut merged = a.findings.clone();
        merged.extend(b.findings.clone());
        assert_eq!(latest(&merged), whole);
        // Stage 3 takes every login once: B raised again, at the same
        // origins, every event A raised from the messages past its
        // commit (the relay's 40, released by the last watermark), and
        // they are dropped.
        let b_events = stage3_counts(&b.summaries).events;
        assert!(b_events >= 40, "{b_events}");
        let mut summaries = a.summaries.clone();
        summaries.extend(b.summaries.clone());
        let taken = stage3_counts(&summaries);
        assert_eq!(taken.events, whole_events);
        assert_eq!(taken.repeated, b_events);

        // Started empty (as before): B sees the relay's attack from the
        // crash on, 20 failures, and reports them as another attack
        // (another first time, another id) beside A's 40.
        let (a, b) = crash_and_takeover(false);
        let mut merged = a.findings;
        merged.extend(b.findings);
        let cut = latest(&merged);
        assert_ne!(cut, whole);
        assert_eq!(brute_force_counts_of(&cut), [20, 40, 40], "{cut:?}");
    }

    fn brute_force_counts_of(findings: &BTreeMap<String, (String, u64)>) -> Vec<u64> {
        let mut counts: Vec<u64> = findings
            .values()
            .filter(|(kind, _)| kind == "brute_force")
            .map(|(_, n)| *n)
            .collect();
        counts.sort();
        counts
    }

    #[test]
    fn a_partition_given_back_behind_where_its_task_stopped_is_rebuilt_not_counted_twice() {
        let stage2 = support::stage2();
        let mut tasks = PartitionTasks::new(stage2);
        let mut m = stage1_seconds(RELAY, 10, 0..40);
        m.push(WireMessage::Watermark {
            producer: PRODUCER,
            time: i64::MAX,
        });
        let all = records(0, &m);
        tasks.set_history(Box::new(RecordsKept(all.clone())));
        let mut tracker = OffsetTracker::new();
        let now = Instant::now();
        tasks.assigned(&p0(), &tracker, now);
        let mut pipes = Pipelines::Tasks(tasks);
        for r in all.iter().take(20) {
            pipes.hand_over(&mut tracker, r.clone(), now);
        }
        let mut findings = pipes.before_revoke(&[p0()], now).findings;
        pipes.settle(&BTreeSet::new(), now);
        // Back moments later, but read from offset 10: the commit of the
        // revoke did not reach the broker.
        let later = now + std::time::Duration::from_secs(3);
        pipes.settle(&BTreeSet::from([p0()]), later);
        for r in all.iter().skip(10) {
            pipes.hand_over(&mut tracker, r.clone(), later);
        }
        if let Pipelines::Tasks(t) = &pipes {
            assert_eq!(
                t.rebuilt(),
                RebuildCounts {
                    times: 1,
                    records: 10
                },
                "rebuilt from offsets 0 to 9"
            );
        }
        findings.extend(pipes.finish().findings);
        assert_eq!(brute_force_counts(&findings), [40]);
    }

    #[test]
    fn a_message_that_is_no_observation_does_not_make_its_task_rebuild() {
        let mut m = stage1_seconds(RELAY, 10, 0..40);
        m.push(WireMessage::Watermark {
            producer: PRODUCER,
            time: i64::MAX,
        });
        let mut all = records(0, &m);
        // A stray line at offset 20, as in the stages test's garbage.
        all[20].bytes = b"Jun  3 10:00:00 gw2 sshd[1]: stray line".to_vec();
        let run = |history: bool| {
            let mut tasks = PartitionTasks::new(support::stage2());
            if history {
                tasks.set_history(Box::new(RecordsKept(all.clone())));
            }
            let mut tracker = OffsetTracker::new();
            let now = Instant::now();
            tasks.assigned(&p0(), &tracker, now);
            let mut pipes = Pipelines::Tasks(tasks);
            for r in &all {
                pipes.hand_over(&mut tracker, r.clone(), now);
            }
            assert_eq!(pipes.malformed(), 1);
            if let Pipelines::Tasks(t) = &pipes {
                assert_eq!(
                    t.rebuilt(),
                    RebuildCounts::default(),
                    "read from offset 0, no gap"
                );
            }
            brute_force_counts(&pipes.finish().findings)
        };
        assert_eq!(run(true), run(false));
    }

    /// Summaries taken in bulk get the origins they would have had taken
    /// one message at a time: by the message whose mark they fall under,
    /// numbered within it, and a tick's after the last message continue
    /// its numbers.
    #[test]
    fn summaries_taken_in_bulk_get_the_origin_of_the_message_that_raised_them() {
        let flagged = || Summary {
            producer: 1,
            origin: None,
            body: SummaryBody::Flagged {
                src: orbwatch_engine::obs_wire::WireNode::Host("gw".into()),
            },
        };
        let mut o = Origins::new();
        // Message 5 raised two, 6 none, 7 one, then a tick one more.
        o.last_handled = 7;
        o.marks = vec![(5, 2), (7, 3)];
        let mut out = Vec::new();
        o.collect(3, (0..4).map(|_| flagged()).collect(), &mut out);
        let got: Vec<(i32, i64, u32)> = out
            .iter()
            .map(|s| {
                let g = s.origin.expect("an origin");
                (g.partition, g.offset, g.index)
            })
            .collect();
        assert_eq!(got, [(3, 5, 0), (3, 5, 1), (3, 7, 0), (3, 7, 1)]);
        assert!(o.marks.is_empty());
        // The next take: a message 9 raised one; a watermark has none.
        o.last_handled = 9;
        o.marks = vec![(9, 1)];
        let mut out = Vec::new();
        let mark = Summary {
            producer: 1,
            origin: None,
            body: SummaryBody::Watermark { time: 0 },
        };
        o.collect(3, vec![flagged(), mark], &mut out);
        assert_eq!(out[0].origin.map(|g| (g.offset, g.index)), Some((9, 0)));
        assert_eq!(out[1].origin, None);
    }
}
