//! A consumer-group member as a live record source: each record of the
//! partitions this worker owns goes into the engine's channel as a
//! [`LiveRecord`], and offsets are committed only when the worker asks,
//! after the findings of the records before them are written.
//!
//! One thread owns the consumer: it polls, hands records over (waiting
//! while the pipeline is full: Kafka keeps what we do not read, so
//! nothing is dropped), serves commit requests between polls, and runs
//! the rebalance callback. Why commits go through that thread: the
//! callback and the commit then see the same assignment, so a partition
//! handed to another worker is never committed by this one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use orbwatch_live::{Checkpoint, LiveRecord, Payload, RecordSender, SendWithin, SourceStats};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::Error;
use crate::envelope::unwrap_record;
use crate::progress::{TopicPartition, checkpoint_identity};

/// Where a partition starts when it is assigned, when not from the
/// group's committed offset: the worker's store keeps offsets with the
/// findings (`--db`), and those win.
pub type StartOffsets = Arc<dyn Fn(&TopicPartition) -> Option<i64> + Send + Sync>;

/// Settings of one consumer.
#[derive(Clone)]
pub struct ConsumerSettings {
    /// `host:port,…`
    pub brokers: String,
    pub group: String,
    pub topics: Vec<String>,
    /// librdkafka properties (`-X key=value`), applied last.
    pub extra: Vec<(String, String)>,
    /// Offsets kept elsewhere (the store), consulted at each assignment.
    pub start_offsets: Option<StartOffsets>,
    /// Hand each payload on as it is, one stream per partition: for
    /// orbwatch's own binary messages (`--stage 2` reads observations),
    /// which are neither shippers' wrappers nor lines (a trailing `\n`
    /// byte is data), and whose key (a source address) names no stream.
    pub payload_as_is: bool,
}

/// Longest record key kept in a stream name.
const KEY_CAP: usize = 128;

/// Partitions about to be taken away: the worker writes the findings of
/// their records and answers with the offsets to commit before they go
/// (Kafka's "commit in onPartitionsRevoked"), so the next owner does not
/// read again what this worker has already counted.
pub struct RevokeRequest {
    pub partitions: Vec<TopicPartition>,
    reply: crossbeam_channel::Sender<BTreeMap<TopicPartition, i64>>,
}

impl RevokeRequest {
    /// Commit `offsets` (those of the revoked partitions are used) and
    /// let the rebalance go on.
    pub fn answer(self, offsets: BTreeMap<TopicPartition, i64>) {
        let _ = self.reply.send(offsets);
    }
}

/// How long a rebalance waits for the worker's answer to a
/// [`RevokeRequest`] before it gives the partitions away uncommitted.
const REVOKE_WAIT: Duration = Duration::from_secs(20);

struct Ctx {
    start_offsets: Option<StartOffsets>,
    assigned: Arc<Mutex<BTreeSet<TopicPartition>>>,
    revoked: crossbeam_channel::Sender<TopicPartition>,
    /// Partitions as they are assigned (the worker holds its clock for
    /// each until it is heard from).
    newly_assigned: crossbeam_channel::Sender<TopicPartition>,
    revoking: crossbeam_channel::Sender<RevokeRequest>,
    /// Set when the worker stops: it has flushed and committed itself,
    /// and no longer answers revoke requests.
    stop: Arc<AtomicBool>,
}

impl Ctx {
    /// Ask the worker to write the findings of `parts` and commit their
    /// offsets, before the partitions go.
    fn commit_before_revoke(&self, consumer: &BaseConsumer<Self>, parts: &[TopicPartition]) {
        if self.stop.load(Ordering::Relaxed) || parts.is_empty() {
            return;
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let req = RevokeRequest {
            partitions: parts.to_vec(),
            reply: tx,
        };
        if self.revoking.send(req).is_err() {
            return;
        }
        let offsets = match rx.recv_timeout(REVOKE_WAIT) {
            Ok(o) => o,
            Err(_) => {
                tracing::warn!(
                    "kafka: the pipeline did not answer within {} s: partitions go without a last commit (their records since the last commit will be read again)",
                    REVOKE_WAIT.as_secs()
                );
                return;
            }
        };
        let mut tpl = TopicPartitionList::new();
        for (tp, o) in offsets.iter().filter(|(tp, _)| parts.contains(tp)) {
            if tpl
                .add_partition_offset(&tp.topic, tp.partition, Offset::Offset(*o))
                .is_err()
            {
                tracing::warn!("kafka: cannot commit {tp} at {o} before the rebalance");
            }
        }
        if tpl.count() > 0 {
            match consumer.commit(&tpl, CommitMode::Sync) {
                Ok(()) => tracing::info!(
                    "kafka: committed {} partitions before giving them away",
                    tpl.count()
                ),
                Err(e) => tracing::warn!("kafka: commit before the rebalance failed: {e}"),
            }
        }
    }
}

/// Why not rdkafka's default: it logs every error librdkafka reports at
/// ERROR, and with `enable.partition.eof` (which tells the worker a
/// partition is caught up) that includes "reached end of partition" each
/// time a partition runs dry: in normal operation, a worker's log filled
/// with ERROR lines an operator would learn to ignore. The end of a
/// partition is a debug event; everything else stays an error.
impl ClientContext for Ctx {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        if is_partition_eof(&error) {
            tracing::debug!("kafka: {reason}");
        } else {
            tracing::error!("kafka: {error}: {reason}");
        }
    }
}

/// Is this librdkafka's "no more messages" (the end of a partition, not
/// a failure)?
pub(crate) fn is_partition_eof(error: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    matches!(
        error,
        KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
    )
}

impl ConsumerContext for Ctx {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let parts: Vec<TopicPartition> = tpl
            .elements()
            .iter()
            .map(|e| TopicPartition {
                topic: e.topic().to_string(),
                partition: e.partition(),
            })
            .collect();
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                if let Some(f) = &self.start_offsets {
                    for tp in &parts {
                        if let Some(o) = f(tp) {
                            tracing::info!("kafka: {tp} starts at offset {o} (kept in the store)");
                            if let Err(e) =
                                tpl.set_partition_offset(&tp.topic, tp.partition, Offset::Offset(o))
                            {
                                tracing::warn!("kafka: cannot start {tp} at {o}: {e}");
                            }
                        }
                    }
                }
                if let Err(e) = consumer.assign(tpl) {
                    tracing::error!("kafka: cannot take the assigned partitions: {e}");
                    return;
                }
                let names: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
                tracing::info!("kafka: assigned {}", names.join(", "));
                for p in &parts {
                    let _ = self.newly_assigned.send(p.clone());
                }
                if let Ok(mut a) = self.assigned.lock() {
                    a.extend(parts);
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let names: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
                tracing::info!("kafka: revoking {}", names.join(", "));
                self.commit_before_revoke(consumer, &parts);
                if let Ok(mut a) = self.assigned.lock() {
                    for p in &parts {
                        a.remove(p);
                    }
                }
                for p in parts {
                    let _ = self.revoked.send(p);
                }
                if let Err(e) = consumer.unassign() {
                    tracing::warn!("kafka: unassign: {e}");
                }
            }
            other => {
                tracing::error!("kafka: rebalance failed: {other:?}");
                let _ = consumer.unassign();
                if let Ok(mut a) = self.assigned.lock() {
                    for p in std::mem::take(&mut *a) {
                        let _ = self.revoked.send(p);
                    }
                }
            }
        }
    }
}

type CommitReply = crossbeam_channel::Sender<Result<usize, String>>;

/// A running consumer; see the module docs.
pub struct KafkaSource {
    stop: Arc<AtomicBool>,
    /// True until the consumer thread has left its reading loop (after
    /// that it hands over no more records).
    reading: Arc<AtomicBool>,
    commits: Option<crossbeam_channel::Sender<(BTreeMap<TopicPartition, i64>, CommitReply)>>,
    revoked: crossbeam_channel::Receiver<TopicPartition>,
    newly_assigned: crossbeam_channel::Receiver<TopicPartition>,
    caught_up: crossbeam_channel::Receiver<TopicPartition>,
    revoking: crossbeam_channel::Receiver<RevokeRequest>,
    assigned: Arc<Mutex<BTreeSet<TopicPartition>>>,
    thread: Option<std::thread::JoinHandle<()>>,
    stats: Arc<SourceStats>,
}

fn client_config(brokers: &str, extra: &[(String, String)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    for (k, v) in extra {
        c.set(k, v);
    }
    c
}

impl KafkaSource {
    /// Join the group and start handing records to `tx`.
    pub fn spawn(settings: ConsumerSettings, tx: RecordSender) -> Result<Self, Error> {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &settings.brokers)
            .set("group.id", &settings.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // The end of a partition tells the worker that an empty
            // partition has nothing older to bring (see `take_caught_up`).
            .set("enable.partition.eof", "true");
        for (k, v) in &settings.extra {
            cfg.set(k, v);
        }
        let assigned = Arc::new(Mutex::new(BTreeSet::new()));
        let (rev_tx, rev_rx) = crossbeam_channel::unbounded();
        let (revoking_tx, revoking_rx) = crossbeam_channel::unbounded();
        let (assigned_tx, assigned_rx) = crossbeam_channel::unbounded();
        let (caught_up_tx, caught_up_rx) = crossbeam_channel::unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let ctx = Ctx {
            start_offsets: settings.start_offsets.clone(),
            assigned: Arc::clone(&assigned),
            revoked: rev_tx,
            newly_assigned: assigned_tx,
            revoking: revoking_tx,
            stop: Arc::clone(&stop),
        };
        let consumer: BaseConsumer<Ctx> =
            cfg.create_with_context(ctx).map_err(|e| Error::Kafka {
                what: format!("creating a consumer for {}", settings.brokers),
                source: e,
            })?;
        let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(|e| Error::Kafka {
            what: format!("subscribing to {}", settings.topics.join(",")),
            source: e,
        })?;
        let reading = Arc::new(AtomicBool::new(true));
        let payload_as_is = settings.payload_as_is;
        let stats = Arc::new(SourceStats::default());
        let (ctx_tx, ctx_rx) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("kafka-consumer".into())
            .spawn({
                let stop = Arc::clone(&stop);
                let reading = Arc::clone(&reading);
                let stats = Arc::clone(&stats);
                let assigned = Arc::clone(&assigned);
                move || {
                    run(
                        consumer,
                        tx,
                        Flags {
                            stop,
                            reading,
                            payload_as_is,
                        },
                        stats,
                        ctx_rx,
                        assigned,
                        caught_up_tx,
                    )
                }
            })
            .map_err(|e| Error::Config(format!("cannot start the consumer thread: {e}")))?;
        Ok(Self {
            stop,
            reading,
            commits: Some(ctx_tx),
            revoked: rev_rx,
            newly_assigned: assigned_rx,
            caught_up: caught_up_rx,
            revoking: revoking_rx,
            assigned,
            thread: Some(thread),
            stats,
        })
    }

    /// Commit `offsets` (next offset to read per partition) for the
    /// partitions this worker still owns; how many were committed.
    pub fn commit(&self, offsets: BTreeMap<TopicPartition, i64>) -> Result<usize, Error> {
        if offsets.is_empty() {
            return Ok(0);
        }
        let Some(c) = &self.commits else {
            return Err(Error::Config("the consumer has stopped".into()));
        };
        let (reply_tx, reply_rx) = crossbeam_channel::bounded(1);
        c.send((offsets, reply_tx))
            .map_err(|_| Error::Config("the consumer thread has stopped".into()))?;
        loop {
            match reply_rx.recv_timeout(Duration::from_millis(50)) {
                Ok(Ok(n)) => return Ok(n),
                Ok(Err(e)) => return Err(Error::Commit(e)),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    // The consumer thread is in a rebalance that waits for
                    // this worker's answer: do not wait for it here (the
                    // request is served after the rebalance, for the
                    // partitions still ours).
                    if !self.revoking.is_empty() {
                        return Err(Error::Commit(
                            "a rebalance is in progress; the commit follows it".into(),
                        ));
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    return Err(Error::Config("the consumer thread has stopped".into()));
                }
            }
        }
    }

    /// A rebalance waiting for the worker to write and commit the
    /// partitions it takes away (answer it soon: the group waits).
    pub fn take_revoke_request(&self) -> Option<RevokeRequest> {
        self.revoking.try_recv().ok()
    }

    /// Partitions taken away since the last call.
    pub fn take_revoked(&self) -> Vec<TopicPartition> {
        self.revoked.try_iter().collect()
    }

    /// Partitions assigned since the last call (in the order they came).
    /// Take them before the records: a partition's first record is
    /// handed over after its assignment is announced.
    pub fn take_assigned(&self) -> Vec<TopicPartition> {
        self.newly_assigned.try_iter().collect()
    }

    /// Partitions found at their end (nothing more to read for now)
    /// since the last call. Every record of such a partition read before
    /// its end was handed over before it is announced here, so drain the
    /// records after taking these and before acting on them.
    ///
    /// librdkafka names only the partition number of an end, so with
    /// several topics, every assigned partition of that number is
    /// announced: at worst a hold ends early for a partition that has
    /// records, and its first record, older than the clock, counts as
    /// late, as it would without holds.
    pub fn take_caught_up(&self) -> Vec<TopicPartition> {
        self.caught_up.try_iter().collect()
    }

    /// Partitions owned now.
    pub fn assigned(&self) -> BTreeSet<TopicPartition> {
        self.assigned.lock().map(|a| a.clone()).unwrap_or_default()
    }

    pub fn stats(&self) -> Arc<SourceStats> {
        Arc::clone(&self.stats)
    }

    /// Stop reading; commits are still served until [`KafkaSource::close`].
    pub fn stop_reading(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Whether the consumer thread may still hand over a record (false
    /// once it has left its reading loop after [`KafkaSource::stop_reading`]).
    pub fn is_reading(&self) -> bool {
        self.reading.load(Ordering::Acquire)
            && self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Leave the group and end the thread.
    pub fn close(mut self) {
        self.stop_reading();
        self.commits = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for KafkaSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.commits = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn do_commit(
    consumer: &BaseConsumer<Ctx>,
    assigned: &Mutex<BTreeSet<TopicPartition>>,
    offsets: &BTreeMap<TopicPartition, i64>,
) -> Result<usize, String> {
    let owned = assigned.lock().map(|a| a.clone()).unwrap_or_default();
    let mut tpl = TopicPartitionList::new();
    let mut n = 0;
    for (tp, o) in offsets {
        if !owned.contains(tp) {
            tracing::debug!("kafka: not committing {tp} at {o}: no longer ours");
            continue;
        }
        tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(*o))
            .map_err(|e| format!("{tp} offset {o}: {e}"))?;
        n += 1;
    }
    if n == 0 {
        return Ok(0);
    }
    consumer
        .commit(&tpl, CommitMode::Sync)
        .map_err(|e| format!("committing offsets: {e}"))?;
    Ok(n)
}

/// Topic, partition, record key: one stream of the pipeline.
type StreamKey = (String, i32, Vec<u8>);

type CommitRx = crossbeam_channel::Receiver<(BTreeMap<TopicPartition, i64>, CommitReply)>;

/// The consumer thread's flags: asked to stop, and still reading.
struct Flags {
    stop: Arc<AtomicBool>,
    reading: Arc<AtomicBool>,
    /// See [`ConsumerSettings::payload_as_is`].
    payload_as_is: bool,
}

fn run(
    consumer: BaseConsumer<Ctx>,
    tx: RecordSender,
    flags: Flags,
    stats: Arc<SourceStats>,
    commits: CommitRx,
    assigned: Arc<Mutex<BTreeSet<TopicPartition>>>,
    caught_up: crossbeam_channel::Sender<TopicPartition>,
) {
    let Flags {
        stop,
        reading,
        payload_as_is,
    } = flags;
    let mut names: HashMap<StreamKey, (Arc<str>, Arc<str>)> = HashMap::new();
    'read: while !stop.load(Ordering::Relaxed) {
        for (offsets, reply) in commits.try_iter() {
            let _ = reply.send(do_commit(&consumer, &assigned, &offsets));
        }
        let Some(res) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = match res {
            Ok(m) => m,
            Err(rdkafka::error::KafkaError::PartitionEOF(p)) => {
                let owned = assigned.lock().map(|a| a.clone()).unwrap_or_default();
                for tp in owned.into_iter().filter(|tp| tp.partition == p) {
                    let _ = caught_up.send(tp);
                }
                continue;
            }
            Err(e) => {
                tracing::warn!("kafka: {e}");
                continue;
            }
        };
        let received_bytes = m.payload().map_or(0, <[u8]>::len) as u64;
        let Some(rec) = live_record(&m, payload_as_is, &mut names) else {
            // A tombstone: nothing to decode.
            continue;
        };
        SourceStats::add(&stats.records, 1);
        SourceStats::add(&stats.bytes, received_bytes);
        // Never wait for the pipeline without a limit: its thread may be
        // waiting in `commit` for this thread to serve the commit queue,
        // and with the records channel full neither would move again
        // (a worker hung this way on a backlog of a million records).
        let mut rec = rec;
        loop {
            match tx.send_within(rec, Duration::from_millis(50)) {
                Ok(()) => break,
                Err(SendWithin::Closed) => break 'read,
                Err(SendWithin::Full(back)) => {
                    rec = *back;
                    for (offsets, reply) in commits.try_iter() {
                        let _ = reply.send(do_commit(&consumer, &assigned, &offsets));
                    }
                    if stop.load(Ordering::Relaxed) {
                        // Not handed over, so not committed: the group
                        // reads it again.
                        break 'read;
                    }
                }
            }
        }
    }
    reading.store(false, Ordering::Release);
    // Stopped reading: serve the last commits, then leave the group.
    while let Ok((offsets, reply)) = commits.recv() {
        let _ = reply.send(do_commit(&consumer, &assigned, &offsets));
    }
    drop(consumer);
}

/// A Kafka message as the pipeline's record (`None`: a tombstone): one
/// stream per (topic, partition, record key), as shippers key by host;
/// its checkpoint is the partition's next offset.
pub(crate) fn live_record(
    m: &rdkafka::message::BorrowedMessage<'_>,
    payload_as_is: bool,
    names: &mut HashMap<StreamKey, (Arc<str>, Arc<str>)>,
) -> Option<LiveRecord> {
    let payload = m.payload()?;
    let key = if payload_as_is {
        &[][..]
    } else {
        m.key().unwrap_or_default()
    };
    let key = &key[..key.len().min(KEY_CAP)];
    if names.len() > 100_000 {
        names.clear();
    }
    let (stream, identity) = names
        .entry((m.topic().to_string(), m.partition(), key.to_vec()))
        .or_insert_with(|| {
            let shown: String = String::from_utf8_lossy(key)
                .chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .collect();
            let stream = if shown.is_empty() {
                format!("kafka {}/{}", m.topic(), m.partition())
            } else {
                format!("kafka {}/{} key {shown}", m.topic(), m.partition())
            };
            (
                Arc::from(stream.as_str()),
                Arc::from(checkpoint_identity(m.topic(), m.partition()).as_str()),
            )
        })
        .clone();
    let offset = u64::try_from(m.offset()).unwrap_or(0);
    let received = m
        .timestamp()
        .to_millis()
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .unwrap_or_else(Timestamp::now);
    let line = if payload_as_is {
        std::borrow::Cow::Borrowed(payload)
    } else {
        unwrap_record(payload).0
    };
    Some(LiveRecord {
        prefiltered: None,
        prework: Default::default(),
        stream: stream.clone(),
        number: offset + 1,
        offset,
        payload: Payload::Line,
        bytes: line.into_owned(),
        received,
        checkpoint: Some(Checkpoint {
            source: stream,
            position: offset + 1,
            identity,
        }),
    })
}

/// A producer with the worker's broker settings (for tests and the
/// findings writer).
pub(crate) fn producer_config(brokers: &str, extra: &[(String, String)]) -> ClientConfig {
    client_config(brokers, extra)
}

/// Check the brokers answer (metadata within `timeout`).
pub fn check_brokers(
    brokers: &str,
    extra: &[(String, String)],
    timeout: Duration,
) -> KafkaResult<usize> {
    let c: BaseConsumer = client_config(brokers, extra).create()?;
    let md = c.fetch_metadata(None, timeout)?;
    Ok(md.brokers().len())
}

#[cfg(test)]
mod tests {
    use super::is_partition_eof;
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};

    #[test]
    fn the_end_of_a_partition_is_not_an_error_but_a_broker_failure_is() {
        assert!(is_partition_eof(&KafkaError::PartitionEOF(3)));
        assert!(is_partition_eof(&KafkaError::Global(
            RDKafkaErrorCode::PartitionEOF
        )));
        assert!(!is_partition_eof(&KafkaError::Global(
            RDKafkaErrorCode::BrokerTransportFailure
        )));
        assert!(!is_partition_eof(&KafkaError::Global(
            RDKafkaErrorCode::AllBrokersDown
        )));
    }
}
