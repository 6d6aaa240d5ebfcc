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

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use orbwatch_detect::{InternalNets, IocEngine, IocEngineBuilder};
use orbwatch_engine::feed_wire::{AssembledFeed, FeedAssembler, Offered};
use orbwatch_intel::Indicator;
use orbwatch_kafka::TopicReader;

use crate::Cli;
use crate::indicator_sources::{EngineSink, IndicatorSink, IndicatorSources};

/// The published feeds in use, by name.
pub(crate) type Published = BTreeMap<String, Arc<AssembledFeed>>;

/// The values a version adds to the one before (their
/// [`orbwatch_engine::feed_wire::value_hash`]), or
/// `None`: all of them (a feed new to the worker). Hashes, not the
/// indicators: a first version of 10M would otherwise be decoded whole.
pub(crate) type NewValues = Option<HashSet<u64>>;

/// A complete new version that came from the topic.
pub(crate) struct Arrived {
    pub name: String,
    pub version: i64,
    /// The version it replaces, if the worker had one.
    pub previous: Option<i64>,
    pub new_values: NewValues,
}

/// What the assembling thread hands the worker.
enum Assembled {
    Arrived(Arrived, Arc<AssembledFeed>),
    /// The topic brought nothing for the start's idle time: what it held
    /// when the worker started has been read.
    CaughtUp,
}

/// See the module docs. The records are read, assembled, decompressed,
/// parsed and compared with the previous version on a thread of their
/// own: a 10M-indicator version takes seconds, and the loop that reads
/// records must not stop for it.
pub(crate) struct FeedTopic {
    assembled: crossbeam_channel::Receiver<Assembled>,
    feeds: Published,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
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
        let (tx, rx) = crossbeam_channel::unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let mut assembly = Assembly {
            topic: topic.to_string(),
            assembler: FeedAssembler::new(),
            feeds: Published::new(),
        };
        let thread = std::thread::Builder::new()
            .name("feeds-topic".into())
            .spawn({
                let stop = Arc::clone(&stop);
                move || {
                    let mut last = Instant::now();
                    let mut caught_up = false;
                    while !stop.load(Ordering::Relaxed) {
                        match reader.records.recv_timeout(Duration::from_millis(100)) {
                            Ok(r) => {
                                last = Instant::now();
                                if let Some(a) = assembly.take(r) {
                                    let feed = Arc::clone(&assembly.feeds[&a.name]);
                                    if tx.send(Assembled::Arrived(a, feed)).is_err() {
                                        return;
                                    }
                                }
                            }
                            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
                        }
                        if !caught_up && last.elapsed() >= idle {
                            caught_up = true;
                            if tx.send(Assembled::CaughtUp).is_err() {
                                return;
                            }
                        }
                    }
                }
            })
            .context("cannot start the thread that reads the feeds topic")?;
        let mut me = Self {
            assembled: rx,
            feeds: Published::new(),
            stop,
            thread: Some(thread),
        };
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match me.assembled.recv_timeout(left) {
                Ok(Assembled::Arrived(a, feed)) => {
                    me.feeds.insert(a.name, feed);
                }
                Ok(Assembled::CaughtUp) => break,
                Err(_) => {
                    tracing::warn!(
                        "worker: the feeds topic {topic} was still bringing records after {} s: starting with what came; the rest is used as it arrives",
                        limit.as_secs()
                    );
                    break;
                }
            }
        }
        for f in me.feeds.values() {
            tracing::info!(
                "worker: feed {} version {} from the feeds topic {topic}: {} indicators",
                f.name,
                f.version,
                f.indicators
            );
        }
        Ok(me)
    }

    /// The published feeds now (cheap: shared).
    pub(crate) fn published(&self) -> Published {
        self.feeds.clone()
    }

    /// The versions assembled since the last call (without waiting).
    pub(crate) fn poll(&mut self) -> Vec<Arrived> {
        let mut out = Vec::new();
        while let Ok(m) = self.assembled.try_recv() {
            if let Assembled::Arrived(a, feed) = m {
                self.feeds.insert(a.name.clone(), feed);
                out.push(a);
            }
        }
        out
    }
}

impl Drop for FeedTopic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The assembling thread's state: the versions it knows, to tell what
/// each new one adds.
struct Assembly {
    topic: String,
    assembler: FeedAssembler,
    feeds: Published,
}

impl Assembly {
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
                let new_values: NewValues = previous.map(|p| {
                    f.value_hashes
                        .difference(&p.value_hashes)
                        .copied()
                        .collect()
                });
                let new_count = new_values
                    .as_ref()
                    .map_or(f.value_hashes.len(), HashSet::len);
                let arrived = Arrived {
                    name: f.name.clone(),
                    version: f.version,
                    previous: previous.map(|p| p.version),
                    new_values,
                };
                tracing::info!(
                    "worker: feed {} version {} arrived on {topic} (offset {}): {} indicators, {} new since {}",
                    f.name,
                    f.version,
                    r.offset,
                    f.indicators,
                    new_count,
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
        sink.inner
            .reserve(usize::try_from(f.indicators).unwrap_or(0).min(1 << 26));
        f.for_each(|ind| sink.inner.add(&ind, &f.name))
            .map_err(|e| anyhow::anyhow!("feed {} from the feeds topic: {e}", f.name))?;
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
