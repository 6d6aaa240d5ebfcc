//! Every partition of one topic, read from the beginning without a
//! consumer group: what each worker needs of the feeds topic (every
//! worker must see every feed, so they cannot share its partitions), and
//! what `feed publish` reads to find the old versions to delete.
//!
//! Why no group: a group would split the partitions among the workers
//! and keep offsets; here each reader wants the whole compacted topic,
//! every time it starts. `group.id` is still set (librdkafka wants one
//! for a consumer) but the consumer never joins nor commits: partitions
//! are assigned, not subscribed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::Error;

/// One record as it is on the topic (`value` `None`: a tombstone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// A consumer context that does not report the end of a partition as an
/// error: librdkafka hands some ends (of an empty partition, seen with
/// tansu) to the global error callback, whose default logs them at
/// error level, and an analyst reading the log would take them for
/// failures.
pub(crate) struct QuietEnds;

impl rdkafka::ClientContext for QuietEnds {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        if crate::source::is_partition_eof(&error) {
            tracing::debug!("kafka: {error}: {reason}");
        } else {
            tracing::error!("kafka: {error}: {reason}");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for QuietEnds {}

/// Where a reader starts in a partition: `Some(offset)` (the next to
/// read), or `None` for the beginning.
pub type StartAt<'a> = &'a dyn Fn(i32) -> Option<i64>;

fn consumer(
    brokers: &str,
    topic: &str,
    extra: &[(String, String)],
    timeout: Duration,
    start: StartAt<'_>,
) -> Result<BaseConsumer<QuietEnds>, Error> {
    let mut cfg = crate::source::producer_config(brokers, extra);
    cfg.set("group.id", "orbwatch-topic-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        // Chunks are up to about 1 MB each.
        .set("fetch.message.max.bytes", "4194304");
    let c: BaseConsumer<QuietEnds> =
        cfg.create_with_context(QuietEnds)
            .map_err(|e| Error::Kafka {
                what: format!("creating a reader of {topic} on {brokers}"),
                source: e,
            })?;
    let md = c
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| Error::Kafka {
            what: format!("asking {brokers} for the partitions of {topic}"),
            source: e,
        })?;
    let parts = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().len())
        .unwrap_or(0);
    if parts == 0 {
        return Err(Error::Config(format!(
            "the topic {topic} has no partitions on {brokers}: create it first (see the README's topic table for its partitions and cleanup policy)"
        )));
    }
    let mut tpl = TopicPartitionList::new();
    for p in 0..parts as i32 {
        let at = start(p).map_or(Offset::Beginning, Offset::Offset);
        tpl.add_partition_offset(topic, p, at)
            .map_err(|e| Error::Kafka {
                what: format!("assigning {topic}/{p}"),
                source: e,
            })?;
    }
    c.assign(&tpl).map_err(|e| Error::Kafka {
        what: format!("assigning the partitions of {topic}"),
        source: e,
    })?;
    Ok(c)
}

fn raw(m: &impl Message) -> RawRecord {
    RawRecord {
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().map(<[u8]>::to_vec),
    }
}

/// Read the whole topic once: until every partition has reported its end
/// and nothing came for a moment (or nothing came for `idle`, for
/// brokers that report no end), at most `limit` in all.
pub fn read_to_end(
    brokers: &str,
    topic: &str,
    extra: &[(String, String)],
    idle: Duration,
    limit: Duration,
) -> Result<Vec<RawRecord>, Error> {
    let c = consumer(brokers, topic, extra, limit, &|_| None)?;
    let parts = c.assignment().map(|a| a.count()).unwrap_or(1);
    let mut ended = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    let started = Instant::now();
    let mut last = Instant::now();
    // An end reported by a broker whose high watermarks are wrong (tansu
    // 0.6, see `test_broker`) may come early: the ends count only once
    // nothing has come for a moment too.
    let settled = idle.min(Duration::from_millis(300));
    while last.elapsed() < idle
        && started.elapsed() < limit
        && !(ended.len() >= parts && last.elapsed() >= settled)
    {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                ended.remove(&m.partition());
                out.push(raw(&m));
                last = Instant::now();
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                ended.insert(p);
            }
            Some(Err(e)) => {
                return Err(Error::Kafka {
                    what: format!("reading {topic}"),
                    source: e,
                });
            }
            None => {}
        }
    }
    Ok(out)
}

/// A thread that reads the topic (from the beginning, or from where the
/// caller left off: [`TopicReader::spawn_from`]) and goes on reading what
/// comes, handing each record over; stopped on drop. Partitions added to
/// the topic after it started are not read until it is started again.
pub struct TopicReader {
    pub records: crossbeam_channel::Receiver<RawRecord>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TopicReader {
    pub fn spawn(brokers: &str, topic: &str, extra: &[(String, String)]) -> Result<Self, Error> {
        Self::spawn_from(brokers, topic, extra, &|_| None)
    }

    /// Read each partition from `start`'s offset (the beginning where it
    /// has none): a reader that keeps its own offsets (the store's
    /// findings intake) goes on where it stopped.
    pub fn spawn_from(
        brokers: &str,
        topic: &str,
        extra: &[(String, String)],
        start: StartAt<'_>,
    ) -> Result<Self, Error> {
        let c = consumer(brokers, topic, extra, Duration::from_secs(10), start)?;
        let (tx, rx) = crossbeam_channel::bounded(64);
        let stop = Arc::new(AtomicBool::new(false));
        let topic = topic.to_string();
        let thread = std::thread::Builder::new()
            .name("kafka-topic-reader".into())
            .spawn({
                let stop = Arc::clone(&stop);
                move || {
                    let mut errors = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        match c.poll(Duration::from_millis(100)) {
                            Some(Ok(m)) => {
                                let mut r = raw(&m);
                                loop {
                                    match tx.send_timeout(r, Duration::from_millis(200)) {
                                        Ok(()) => break,
                                        Err(crossbeam_channel::SendTimeoutError::Timeout(back)) => {
                                            if stop.load(Ordering::Relaxed) {
                                                return;
                                            }
                                            r = back;
                                        }
                                        Err(_) => return,
                                    }
                                }
                            }
                            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) | None => {}
                            Some(Err(e)) => {
                                errors += 1;
                                if errors <= 10 || errors.is_power_of_two() {
                                    tracing::warn!(
                                        "kafka: reading {topic}: {e} ({errors} errors so far; still reading)"
                                    );
                                }
                            }
                        }
                    }
                }
            })
            .map_err(|e| Error::Config(format!("cannot start a thread to read the topic: {e}")))?;
        Ok(Self {
            records: rx,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for TopicReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
