//! The re-hunt: when a new feed version arrives on the feeds topic, a
//! `--stage all` or `--stage 1` worker replays the retained window of its raw
//! partitions (`--rehunt-window`, from the offsets Kafka gives for that
//! time) against the indicators new in that version only, and writes
//! their IOC findings. This is the retro-hunt at cluster scale: the
//! records were matched when they came, against the feeds of then; the
//! addresses a feed names only now are looked for in them too.
//!
//! Bounded: each partition is replayed up to the offset the worker had
//! reached when it swapped the new version in; what came after is
//! matched live with the new version. Each worker replays the
//! partitions it owns then, so the group replays every partition once.
//! The findings go through the same decoder and aggregation as live
//! records ([`LivePipeline`]), with deterministic ids: a re-hunt run
//! again (a worker restarted on the same version) merges into the same
//! findings. A stage-1 worker writes them itself, as `all` does: the
//! re-hunt runs no detector, so nothing needs stage 2, and its sightings
//! sent there would meet stage 2's replay guard (the raw records were
//! sent once already, before the new version).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Result;
use jiff::Timestamp;
use orbwatch_detect::{Finding, InternalNets, IocEngineBuilder};
use orbwatch_engine::feed_wire::{AssembledFeed, value_hash};
use orbwatch_engine::{Engine, EngineOptions, LiveOptions, LivePipeline};
use orbwatch_kafka::TopicPartition;

use crate::feed_topic::NewValues;

/// One re-hunt to run: the new indicators of the versions one swap
/// brought in, and where the worker stood then.
pub(crate) struct RehuntJob {
    /// The versions swapped in, each with the values it adds.
    pub feeds: Vec<(Arc<AssembledFeed>, NewValues)>,
    pub since: Timestamp,
    pub until: BTreeMap<TopicPartition, i64>,
}

/// What a re-hunt found and read.
pub(crate) struct RehuntDone {
    pub findings: Vec<Finding>,
    pub records: u64,
    pub partitions: usize,
    pub short: Vec<TopicPartition>,
    pub seconds: f64,
    pub what: String,
}

impl RehuntJob {
    /// "feed orb version 2 (2 new indicators)" for log lines.
    pub(crate) fn describe(&self) -> String {
        self.feeds
            .iter()
            .map(|(f, new)| {
                format!(
                    "feed {} version {} ({} new indicators)",
                    f.name,
                    f.version,
                    new.as_ref().map_or(f.value_hashes.len(), HashSet::len)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Replay and match; `options` as the live engine's (the behaviour
    /// detectors are left out: only the new indicators are looked for).
    pub(crate) fn run(
        self,
        brokers: &str,
        extra: &[(String, String)],
        options: &EngineOptions,
        internal: &InternalNets,
        stop: &AtomicBool,
    ) -> Result<RehuntDone> {
        let started = Instant::now();
        let what = self.describe();
        // Every row of a new value (a feed may list a value twice, with
        // two windows), decoded a chunk at a time.
        let mut b = IocEngineBuilder::new();
        for (f, new) in &self.feeds {
            f.for_each(|mut ind| {
                if new
                    .as_ref()
                    .is_none_or(|n| n.contains(&value_hash(&ind.value)))
                {
                    ind.provenance.feed.clone_from(&f.name);
                    b.add(&ind);
                }
            })
            .map_err(|e| anyhow::anyhow!("feed {} version {}: {e}", f.name, f.version))?;
        }
        let mut ioc = b.build(internal.clone());
        for (f, _) in &self.feeds {
            ioc.set_feed_version(&f.name, f.version);
        }
        let mut opts = options.clone();
        opts.behaviour = None;
        let engine = Engine::new(ioc, opts)?;
        let live = LiveOptions {
            slowest_stream_clock: true,
            event_time: orbwatch_engine::event_time::EventTimeConfig {
                max_stream_skew: None,
                ..Default::default()
            },
            ..Default::default()
        };
        let detect_wait = live.detect_wait;
        let mut pipeline = LivePipeline::new(engine, live)?;
        let mut last_tick = Instant::now();
        let mut findings: BTreeMap<String, Finding> = BTreeMap::new();
        let replayed = orbwatch_kafka::replay::replay(
            &orbwatch_kafka::replay::ReplayOptions {
                brokers,
                extra,
                since: self.since,
                until: &self.until,
                stop,
                payload_as_is: false,
            },
            |rec| {
                let now = Instant::now();
                pipeline.handle(rec, now);
                if now.duration_since(last_tick) >= Duration::from_millis(200) {
                    pipeline.tick(now);
                    last_tick = now;
                    for f in pipeline.take_output().findings {
                        findings.insert(f.id.clone(), f);
                    }
                }
            },
        )?;
        // Streams still waiting for their format are detected now.
        pipeline.tick(Instant::now() + detect_wait);
        for f in pipeline.finish().findings {
            findings.insert(f.id.clone(), f);
        }
        Ok(RehuntDone {
            findings: findings.into_values().collect(),
            records: replayed.records,
            partitions: self.until.len(),
            short: replayed.short,
            seconds: started.elapsed().as_secs_f64(),
            what,
        })
    }
}
