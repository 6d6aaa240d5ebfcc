//! The feeds a worker reads from the Kafka feeds topic (`--feeds-topic`,
//! written by `orbwatch feed publish`): every record of the topic, read
//! from its beginning without a group (every worker needs every feed),
//! assembled into complete versions ([`FeedAssembler`]), and compiled
//! into the worker's index beside the `--feed` files and the store's
//! feeds, through the same rebuild-beside-and-swap as a store reload
//! ([`crate::feed_reload::FeedReload`]).
//!
//! A feed published on the topic replaces the store's feed (or the
//! `--feed` file) of the same name: the topic is where the cluster's
//! feeds come from, and the same name twice would match twice.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use orbwatch_detect::{InternalNets, IocEngine, IocEngineBuilder};
use orbwatch_engine::feed_wire::{AssembledFeed, FeedAssembler, Offered};
use orbwatch_intel::{Indicator, IndicatorValue};
use orbwatch_kafka::TopicReader;

use crate::Cli;
use crate::indicator_sources::{EngineSink, IndicatorSink, IndicatorSources};

/// The published feeds in use, by name.
pub(crate) type Published = BTreeMap<String, Arc<AssembledFeed>>;

/// A complete new version that came from the topic.
pub(crate) struct Arrived {
    pub name: String,
    pub version: i64,
    /// The version it replaces, if the worker had one.
    pub previous: Option<i64>,
    /// Its indicators whose value the previous version did not list
    /// (all of them for a feed new to the worker).
    pub new_indicators: Vec<Indicator>,
}

/// See the module docs.
pub(crate) struct FeedTopic {
    topic: String,
    reader: TopicReader,
    assembler: FeedAssembler,
    feeds: Published,
}

impl FeedTopic {
    /// Start reading `topic`, and take what it holds now: until nothing
    /// came for `idle` (at most `limit`), so that a worker starts with
    /// the cluster's feeds rather than matching its first records
    /// without them.
    pub(crate) fn start(
        brokers: &str,
        topic: &str,
        extra: &[(String, String)],
        idle: Duration,
        limit: Duration,
    ) -> Result<Self> {
        let reader = TopicReader::spawn(brokers, topic, extra)?;
        let mut me = Self {
            topic: topic.to_string(),
            reader,
            assembler: FeedAssembler::new(),
            feeds: Published::new(),
        };
        let started = Instant::now();
        while let Ok(r) = me.reader.records.recv_timeout(idle) {
            me.take(r);
            if started.elapsed() >= limit {
                tracing::warn!(
                    "worker: the feeds topic {topic} was still bringing records after {} s: starting with what came; the rest is used as it arrives",
                    limit.as_secs()
                );
                break;
            }
        }
        for f in me.feeds.values() {
            tracing::info!(
                "worker: feed {} version {} from the feeds topic {topic}: {} indicators",
                f.name,
                f.version,
                f.indicators.len()
            );
        }
        Ok(me)
    }

    /// The published feeds now (cheap: shared).
    pub(crate) fn published(&self) -> Published {
        self.feeds.clone()
    }

    /// Take what came since the last call (without waiting).
    pub(crate) fn poll(&mut self) -> Vec<Arrived> {
        let mut out = Vec::new();
        while let Ok(r) = self.reader.records.try_recv() {
            out.extend(self.take(r));
        }
        out
    }

    fn take(&mut self, r: orbwatch_kafka::RawRecord) -> Option<Arrived> {
        let topic = &self.topic;
        match self.assembler.offer(r.key.as_deref(), r.value.as_deref()) {
            Offered::Nothing => None,
            Offered::Malformed(why) => {
                let n = self.assembler.refused;
                if n <= 10 || n.is_power_of_two() {
                    tracing::error!(
                        "worker: {topic}/{} offset {}: refused, not a feed record ({n} refused so far; something other than `orbwatch feed publish` writes to this topic?): {why}",
                        r.partition,
                        r.offset
                    );
                }
                None
            }
            Offered::Incomplete { name, version, why } => {
                tracing::error!(
                    "worker: feed {name} version {version} on {topic} (offset {}) cannot be used: {why}; still matching {}",
                    r.offset,
                    self.feeds
                        .get(&name)
                        .map_or("without it".to_string(), |f| format!(
                            "version {}",
                            f.version
                        ))
                );
                None
            }
            Offered::Complete(f) => {
                let previous = self.feeds.get(&f.name);
                let old: HashSet<&IndicatorValue> = previous
                    .map(|p| p.indicators.iter().map(|i| &i.value).collect())
                    .unwrap_or_default();
                let new_indicators: Vec<Indicator> = f
                    .indicators
                    .iter()
                    .filter(|i| !old.contains(&i.value))
                    .cloned()
                    .collect();
                let arrived = Arrived {
                    name: f.name.clone(),
                    version: f.version,
                    previous: previous.map(|p| p.version),
                    new_indicators,
                };
                tracing::info!(
                    "worker: feed {} version {} arrived on {topic} (offset {}): {} indicators, {} new since {}",
                    f.name,
                    f.version,
                    r.offset,
                    f.indicators.len(),
                    arrived.new_indicators.len(),
                    arrived
                        .previous
                        .map_or("none".to_string(), |v| format!("version {v}"))
                );
                self.feeds.insert(f.name.clone(), Arc::new(f));
                Some(arrived)
            }
        }
    }
}

/// Skips the feeds that are published on the topic (they replace the
/// store's or a file's of the same name).
struct SkipPublished<'a> {
    inner: EngineSink,
    skip: &'a BTreeSet<String>,
}

impl IndicatorSink for SkipPublished<'_> {
    fn reserve(&mut self, n: usize) {
        self.inner.reserve(n);
    }
    fn wants(&self, feed: &str) -> bool {
        !self.skip.contains(feed)
    }
    fn add(&mut self, ind: &Indicator, feed: &str) {
        self.inner.add(ind, feed);
    }
}

/// The worker's index: the `--feed` files and the store's feeds (as
/// `watch` loads them), except those `published` replaces, and the
/// published feeds; each feed's version recorded for its findings
/// (the store's version of a store feed, the published version).
pub(crate) fn build_index(
    cli: &Cli,
    feeds: &[PathBuf],
    db: &Path,
    internal: &InternalNets,
    published: &Published,
) -> Result<IocEngine> {
    let skip: BTreeSet<String> = published.keys().cloned().collect();
    let mut sink = SkipPublished {
        inner: EngineSink(IocEngineBuilder::new()),
        skip: &skip,
    };
    let sources = IndicatorSources {
        feeds,
        format: None,
        grace: None,
        store_optional: true,
        history: true,
        store_path: Some(db),
    };
    for n in crate::indicator_sources::load(cli, &sources, &mut sink)? {
        tracing::warn!("{n}");
    }
    for f in published.values() {
        sink.inner.reserve(f.indicators.len());
        for ind in &f.indicators {
            sink.inner.add(ind, &f.name);
        }
    }
    let mut ioc = sink.inner.0.build(internal.clone());
    if crate::db_path::exists(db)
        && let Ok(store) = orbwatch_store::Store::open(db)
        && let Ok(list) = store.list_feeds()
    {
        for f in list.iter().filter(|f| !skip.contains(&f.name)) {
            ioc.set_feed_version(&f.name, f.version);
        }
    }
    for f in published.values() {
        ioc.set_feed_version(&f.name, f.version);
    }
    Ok(ioc)
}
