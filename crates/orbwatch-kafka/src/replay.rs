//! A bounded replay of raw partitions for the re-hunt: from the first
//! record at or after a time (`offsetsForTimes`) up to, not including,
//! a given offset, read without a group and without committing (the
//! group's offsets are the live consumer's), each record handed over as
//! the live source would hand it (`crate::source::live_record`), so its
//! stream, decoder and evidence are the same.
//!
//! Why bounded by offsets: the worker replays what it had already
//! matched when a new feed version arrived; what came after is matched
//! live with the new version, and reading it here too would count it
//! twice.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use orbwatch_live::LiveRecord;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::Error;
use crate::progress::TopicPartition;

/// How long a replay waits for a record before it gives up on the
/// partitions still short of their end (a broker that lost them).
const STALL: Duration = Duration::from_secs(20);

/// What a replay read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// Records handed over (at or after the time, before the end).
    pub records: u64,
    /// Where each partition's replay started (`offsetsForTimes`).
    pub from: BTreeMap<TopicPartition, i64>,
    /// Partitions not read to their end (the replay stalled or was
    /// stopped).
    pub short: Vec<TopicPartition>,
}

/// Which records a [`replay`] reads, and from where. Named fields rather
/// than seven positional arguments: a bare `false` at a call site said
/// nothing of what it chose.
#[derive(Debug, Clone, Copy)]
pub struct ReplayOptions<'a> {
    /// `host:port[,host:port…]` of the brokers.
    pub brokers: &'a str,
    /// More librdkafka settings (`-X key=value`: TLS, SASL…).
    pub extra: &'a [(String, String)],
    /// Each partition is read from its first record at or after this
    /// time (by the records' Kafka timestamps).
    pub since: Timestamp,
    /// The partitions to read, each up to this offset (exclusive).
    pub until: &'a BTreeMap<TopicPartition, i64>,
    /// Set (by SIGTERM): the replay ends early.
    pub stop: &'a AtomicBool,
    /// As [`crate::ConsumerSettings::payload_as_is`] (the observations
    /// topic of stage 2); else shippers' JSON envelopes are unwrapped as
    /// the live consumer of raw topics does.
    pub payload_as_is: bool,
}

/// Replay each partition of `options.until` from its first record at or
/// after `options.since` up to its offset there (exclusive), handing
/// each record to `each`; `options.stop` ends it early.
pub fn replay(
    options: &ReplayOptions<'_>,
    mut each: impl FnMut(LiveRecord),
) -> Result<Replayed, Error> {
    let &ReplayOptions {
        brokers,
        extra,
        since,
        until,
        stop,
        payload_as_is,
    } = options;
    let mut out = Replayed::default();
    if until.is_empty() {
        return Ok(out);
    }
    let mut cfg = crate::source::producer_config(brokers, extra);
    cfg.set("group.id", "orbwatch-rehunt")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    let c: BaseConsumer<crate::topic_reader::QuietEnds> = cfg
        .create_with_context(crate::topic_reader::QuietEnds)
        .map_err(|e| Error::Kafka {
            what: format!("creating a replay reader on {brokers}"),
            source: e,
        })?;
    let ms = since.as_millisecond();
    let mut ask = TopicPartitionList::new();
    for tp in until.keys() {
        ask.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(ms))
            .map_err(|e| Error::Kafka {
                what: format!("asking where {tp} stands at {since}"),
                source: e,
            })?;
    }
    let found = c
        .offsets_for_times(ask, Duration::from_secs(10))
        .map_err(|e| Error::Kafka {
            what: format!("asking the offsets at {since} (offsetsForTimes)"),
            source: e,
        })?;
    let mut assign = TopicPartitionList::new();
    let mut next: HashMap<TopicPartition, i64> = HashMap::new();
    for e in found.elements() {
        let tp = TopicPartition {
            topic: e.topic().to_string(),
            partition: e.partition(),
        };
        let Some(&end) = until.get(&tp) else {
            continue;
        };
        let start = match e.offset() {
            Offset::Offset(o) => o,
            // No record at or after the time: nothing to replay.
            Offset::End => end,
            // The broker could not say: from the beginning, and the
            // records before the time are skipped below.
            _ => 0,
        };
        out.from.insert(tp.clone(), start);
        if start >= end {
            continue;
        }
        assign
            .add_partition_offset(&tp.topic, tp.partition, Offset::Offset(start))
            .map_err(|e| Error::Kafka {
                what: format!("assigning {tp} at {start}"),
                source: e,
            })?;
        next.insert(tp, start);
    }
    if next.is_empty() {
        return Ok(out);
    }
    c.assign(&assign).map_err(|e| Error::Kafka {
        what: "assigning the partitions to replay".into(),
        source: e,
    })?;
    let mut names = HashMap::new();
    let mut last = Instant::now();
    while !next.is_empty() && !stop.load(Ordering::Relaxed) && last.elapsed() < STALL {
        let Some(res) = c.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = match res {
            Ok(m) => m,
            Err(rdkafka::error::KafkaError::PartitionEOF(_)) => continue,
            Err(e) => {
                tracing::warn!("re-hunt: kafka: {e}");
                continue;
            }
        };
        last = Instant::now();
        let tp = TopicPartition {
            topic: m.topic().to_string(),
            partition: m.partition(),
        };
        let Some(&end) = until.get(&tp) else {
            continue;
        };
        if m.offset() >= end || !next.contains_key(&tp) {
            next.remove(&tp);
            continue;
        }
        // The offset a broker gives for a time may be earlier than the
        // first record at that time (or the start, when it could not
        // say): the window is kept exactly here.
        let at = m.timestamp().to_millis().unwrap_or(i64::MAX);
        if at >= ms
            && let Some(rec) = crate::source::live_record(&m, payload_as_is, &mut names)
        {
            out.records += 1;
            each(rec);
        }
        if m.offset() + 1 >= end {
            next.remove(&tp);
        } else {
            next.insert(tp, m.offset() + 1);
        }
    }
    out.short = next.into_keys().collect();
    out.short.sort();
    Ok(out)
}
