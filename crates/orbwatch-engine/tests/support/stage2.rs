//! What the stage-2 tests share: an engine that knows one relay address
//! and runs every detector, and the live options a Kafka worker uses.
#![allow(dead_code)] // each test file uses its own part

use orbwatch_detect::behaviour::BehaviourConfig;
use orbwatch_detect::{InternalNets, IocEngine};
use orbwatch_engine::{
    BehaviourOptions, Engine, EngineOptions, EventTimeConfig, LiveOptions, LivePipeline,
};
use orbwatch_intel::value::parse_value;
use orbwatch_intel::{Indicator, Provenance};
use orbwatch_live::{LiveRecord, Payload};

/// A CERT-FR relay address (CERTFR-2021-IOC-003).
pub const RELAY: &str = "45.9.148.84";

/// Options of a hunt of 2021 logs on one thread with every detector.
pub fn engine_options() -> EngineOptions {
    EngineOptions {
        year: Some(2021),
        threads: 1,
        behaviour: Some(BehaviourOptions {
            config: BehaviourConfig::default(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Indicators of one address, `value` (feed `relays`).
pub fn ioc_of(value: &str) -> IocEngine {
    let ind = Indicator::new(
        parse_value(value, None).expect("value"),
        Provenance {
            feed: "relays".into(),
            file: "relays.txt".into(),
            line: 1,
            record_id: None,
        },
    );
    IocEngine::new([ind], InternalNets::default())
}

/// An engine whose one indicator is [`RELAY`] (feed `relays`).
pub fn engine() -> Engine {
    Engine::new(ioc_of(RELAY), engine_options()).expect("engine")
}

/// The live options of `orbwatch worker`: the slowest partition's clock,
/// with no bound on the skew.
pub fn kafka_options() -> LiveOptions {
    LiveOptions {
        slowest_stream_clock: true,
        event_time: EventTimeConfig {
            max_stream_skew: None,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// A stage-1 pipeline: observations and sightings handed on as `producer`.
pub fn stage1(producer: u64) -> LivePipeline {
    LivePipeline::new(
        engine(),
        LiveOptions {
            export_observations: Some(producer),
            ..kafka_options()
        },
    )
    .expect("stage 1")
}

/// A stage-2 pipeline: per-source detectors, summaries for stage 3.
pub fn stage2() -> LivePipeline {
    LivePipeline::new(
        engine(),
        LiveOptions {
            export_summaries: Some(2),
            cross_source: false,
            ..kafka_options()
        },
    )
    .expect("stage 2")
}

/// Raw record `offset` of partition 0 of `raw.logs`: `line`, as a Kafka
/// worker hands it to stage 1.
pub fn raw_record(offset: u64, line: String) -> LiveRecord {
    raw_record_of("kafka raw.logs/0", offset, line)
}

/// Raw record `offset` of raw stream `stream` (a partition and key):
/// `line`, as a Kafka worker hands it to stage 1.
pub fn raw_record_of(stream: &str, offset: u64, line: String) -> LiveRecord {
    LiveRecord {
        prefiltered: None,
        prework: Default::default(),
        stream: std::sync::Arc::from(stream),
        number: offset + 1,
        offset,
        payload: Payload::Line,
        bytes: line.into_bytes(),
        received: jiff::Timestamp::now(),
        checkpoint: None,
    }
}
