//! Findings written to a Kafka topic: one JSON message per finding (the
//! same JSON as `hunt --format jsonl`), keyed by the finding's id.
//!
//! Why keyed by id: a finding raised again (a larger count) lands in the
//! same partition as its earlier state, after it, so a reader (`serve`,
//! `watch`, or a compacted topic) keeps the latest state per id; a replay
//! after a crash gives the same ids and merges the same way.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use orbwatch_detect::Finding;
use rdkafka::ClientContext;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};

use crate::Error;

#[derive(Default)]
struct Deliveries {
    failed: AtomicU64,
    last_error: std::sync::Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = r {
            self.failed.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut l) = self.last_error.lock() {
                *l = Some(e.to_string());
            }
        }
    }
}

/// A producer that writes keyed messages to one topic and waits until the
/// broker has every one: what both the findings and (stage 1) the
/// observations need before offsets may be committed.
pub struct KeyedProducer {
    producer: BaseProducer<Deliveries>,
    topic: String,
    written: u64,
    /// The topic's partition count, and when it was asked.
    partitions: Option<(i32, Instant)>,
}

/// How long a topic's partition count is trusted (partitions can be
/// added to a topic while workers run).
const PARTITIONS_TTL: Duration = Duration::from_secs(60);

impl KeyedProducer {
    pub fn new(brokers: &str, topic: &str, extra: &[(String, String)]) -> Result<Self, Error> {
        let mut cfg = crate::source::producer_config(brokers, extra);
        cfg.set("acks", "all");
        let producer = cfg
            .create_with_context(Deliveries::default())
            .map_err(|e| Error::Kafka {
                what: format!("creating a producer for {brokers}"),
                source: e,
            })?;
        Ok(Self {
            producer,
            topic: topic.to_string(),
            written: 0,
            partitions: None,
        })
    }

    /// Write `payload` (no key) to every partition of the topic and wait
    /// until the broker has it. Why: a stage-1 watermark must reach every
    /// partition, since a stage-2 worker reads only some of them.
    pub fn broadcast(
        &mut self,
        payload: &[u8],
        what: &str,
        timeout: Duration,
    ) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        let n = match self.partitions {
            Some((n, at)) if at.elapsed() < PARTITIONS_TTL => n,
            _ => {
                let md = self
                    .producer
                    .client()
                    .fetch_metadata(Some(&self.topic), timeout)
                    .map_err(|e| Error::Kafka {
                        what: format!("asking the brokers for the partitions of {}", self.topic),
                        source: e,
                    })?;
                let n = md
                    .topics()
                    .iter()
                    .find(|t| t.name() == self.topic)
                    .map_or(0, |t| t.partitions().len() as i32);
                if n == 0 {
                    return Err(Error::Config(format!(
                        "the topic {} has no partitions (does it exist? create it, see the README's topic table)",
                        self.topic
                    )));
                }
                self.partitions = Some((n, Instant::now()));
                n
            }
        };
        let before = self.producer.context().failed.load(Ordering::Relaxed);
        for p in 0..n {
            let record = BaseRecord::<(), [u8]>::to(&self.topic)
                .partition(p)
                .payload(payload);
            self.send_until(record, deadline, what)?;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        self.producer.flush(left).map_err(|e| Error::Kafka {
            what: format!("waiting for the topic {} to take the {what}", self.topic),
            source: e,
        })?;
        let failed = self.producer.context().failed.load(Ordering::Relaxed) - before;
        if failed > 0 {
            return Err(Error::Delivery {
                topic: self.topic.clone(),
                failed,
                last: format!("{what} to every partition"),
            });
        }
        Ok(())
    }

    /// Hand `record` to the producer. While its local queue is full, let
    /// deliveries drain it and try again, until `deadline`; `what` names
    /// the message in the error.
    fn send_until<K, P>(
        &self,
        mut record: BaseRecord<'_, K, P>,
        deadline: Instant,
        what: &str,
    ) -> Result<(), Error>
    where
        K: rdkafka::message::ToBytes + ?Sized,
        P: rdkafka::message::ToBytes + ?Sized,
    {
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((e, r)) => {
                    if Instant::now() >= deadline {
                        return Err(Error::Kafka {
                            what: format!("writing {what} to {}", self.topic),
                            source: e,
                        });
                    }
                    record = r;
                    self.producer.poll(Duration::from_millis(50));
                }
            }
        }
    }

    /// Write (key, payload) messages and wait until the broker has every
    /// one (or `timeout` passed: an error, and the caller keeps them to
    /// try again, so offsets are not committed past them). `what` names
    /// the messages in errors.
    pub fn write<'a>(
        &mut self,
        messages: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        what: &str,
        timeout: Duration,
    ) -> Result<u64, Error> {
        self.write_or_delete(
            messages.into_iter().map(|(k, v)| (k, Some(v))),
            what,
            timeout,
        )
    }

    /// As [`KeyedProducer::write`], where a `None` payload is a tombstone:
    /// on a compacted topic it deletes its key (the feeds topic drops an
    /// old version's chunks so).
    pub fn write_or_delete<'a>(
        &mut self,
        messages: impl IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
        what: &str,
        timeout: Duration,
    ) -> Result<u64, Error> {
        let before = self.producer.context().failed.load(Ordering::Relaxed);
        let deadline = Instant::now() + timeout;
        let mut n = 0u64;
        for (key, payload) in messages {
            let record = BaseRecord::<[u8], [u8]>::to(&self.topic).key(key);
            let record = match payload {
                Some(p) => record.payload(p),
                None => record,
            };
            self.send_until(record, deadline, what)?;
            n += 1;
        }
        if n == 0 {
            return Ok(0);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        self.producer.flush(left).map_err(|e| Error::Kafka {
            what: format!("waiting for the topic {} to take the {what}", self.topic),
            source: e,
        })?;
        let failed = self.producer.context().failed.load(Ordering::Relaxed) - before;
        if failed > 0 {
            let last = self
                .producer
                .context()
                .last_error
                .lock()
                .ok()
                .and_then(|l| l.clone())
                .unwrap_or_default();
            return Err(Error::Delivery {
                topic: self.topic.clone(),
                failed,
                last,
            });
        }
        self.written += n;
        Ok(n)
    }

    /// Messages written so far.
    pub fn written(&self) -> u64 {
        self.written
    }
}

/// See the module docs.
pub struct FindingsProducer {
    out: KeyedProducer,
}

impl FindingsProducer {
    pub fn new(brokers: &str, topic: &str, extra: &[(String, String)]) -> Result<Self, Error> {
        Ok(Self {
            out: KeyedProducer::new(brokers, topic, extra)?,
        })
    }

    /// Write `findings` and wait until the broker has every one (or
    /// `timeout` passed: an error, and the caller keeps them to try
    /// again, so offsets are not committed past them).
    pub fn write(&mut self, findings: &[Finding], timeout: Duration) -> Result<(), Error> {
        let mut jsons = Vec::with_capacity(findings.len());
        for f in findings {
            jsons.push(serde_json::to_vec(f).map_err(|e| {
                Error::Config(format!("finding {} cannot be written as JSON: {e}", f.id))
            })?);
        }
        self.out.write(
            findings
                .iter()
                .zip(&jsons)
                .map(|(f, j)| (f.id.as_bytes(), j.as_slice())),
            "findings",
            timeout,
        )?;
        Ok(())
    }

    /// Finding states written so far.
    pub fn written(&self) -> u64 {
        self.out.written()
    }
}
