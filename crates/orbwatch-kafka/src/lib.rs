//! Kafka for `orbwatch worker`: a consumer-group member is one more live
//! record source for the engine's live pipeline (the same decode, match
//! and detect as `watch` and `hunt`), and findings go to a topic.
//!
//! ```text
//!  raw topic ──► KafkaSource ──► orbwatch-live channel ──► LivePipeline ──► findings
//!  (partitions    (one consumer      (LiveRecord with a      (engine)          │
//!   of a group)    thread)            Kafka checkpoint)                         ▼
//!        ▲                                                FindingsProducer / store
//!        └──────── commit: offsets whose findings are written (OffsetTracker) ◄─┘
//! ```
//!
//! Delivery is at-least-once: offsets are committed only after the
//! findings their records produced are written (to the findings topic,
//! and with `--db` to the store in the same transaction as the offsets).
//!
//! Why rdkafka: librdkafka (bundled, built from source by `rdkafka-sys`)
//! is the client the Kafka ecosystem tests against: consumer groups with
//! cooperative and eager rebalancing, transactions, and a decade of
//! production use. The pure-Rust clients are younger (see the README).

pub mod envelope;
pub mod findings_out;
pub mod progress;
pub mod replay;
pub mod source;
pub mod test_broker;
pub mod topic_reader;

pub use envelope::{Envelope, unwrap_record};
pub use findings_out::{FindingsProducer, KeyedProducer};
pub use progress::{OffsetTracker, TopicPartition, checkpoint_identity, parse_identity};
pub use source::{ConsumerSettings, KafkaSource, RevokeRequest, StartOffsets, check_brokers};
pub use topic_reader::{RawRecord, TopicReader};

/// What went wrong talking to Kafka.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kafka: {what}: {source}")]
    Kafka {
        what: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error(
        "kafka: {failed} messages were not taken by the topic {topic} ({last}); they stay pending and are written again"
    )]
    Delivery {
        topic: String,
        failed: u64,
        last: String,
    },
    #[error(
        "kafka: committing offsets failed ({0}); the records after the last commit will be read again"
    )]
    Commit(String),
    #[error("kafka: {0}")]
    Config(String),
}
