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

/// See the module docs.
pub struct FindingsProducer {
    producer: BaseProducer<Deliveries>,
    topic: String,
    written: u64,
}

impl FindingsProducer {
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
        })
    }

    /// Write `findings` and wait until the broker has every one (or
    /// `timeout` passed: an error, and the caller keeps them to try
    /// again, so offsets are not committed past them).
    pub fn write(&mut self, findings: &[Finding], timeout: Duration) -> Result<(), Error> {
        if findings.is_empty() {
            return Ok(());
        }
        let before = self.producer.context().failed.load(Ordering::Relaxed);
        let deadline = Instant::now() + timeout;
        for f in findings {
            let json = serde_json::to_vec(f).map_err(|e| {
                Error::Config(format!("finding {} cannot be written as JSON: {e}", f.id))
            })?;
            let mut record = BaseRecord::to(&self.topic)
                .key(f.id.as_str())
                .payload(&json);
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((e, r)) => {
                        if Instant::now() >= deadline {
                            return Err(Error::Kafka {
                                what: format!("writing findings to {}", self.topic),
                                source: e,
                            });
                        }
                        // The local queue is full: let deliveries drain it.
                        record = r;
                        self.producer.poll(Duration::from_millis(50));
                    }
                }
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        self.producer.flush(left).map_err(|e| Error::Kafka {
            what: format!(
                "waiting for the findings topic {} to take the findings",
                self.topic
            ),
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
        self.written += findings.len() as u64;
        Ok(())
    }

    /// Finding states written so far.
    pub fn written(&self) -> u64 {
        self.written
    }
}
