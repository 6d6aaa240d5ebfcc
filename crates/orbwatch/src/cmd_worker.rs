//! `orbwatch worker`: one member of a Kafka consumer group. Its
//! partitions are one more live record source for the engine's
//! [`LivePipeline`] (the decode, match and detect of `watch` and `hunt`);
//! findings go to a findings topic (JSON, key = finding id) and, with
//! `--db`, into the store.
//!
//! ```text
//!  raw topic ──► KafkaSource ──► channel ──► LivePipeline ──► findings ──► findings topic
//!  partitions                                    │                    └──► store (--db), with the offsets
//!       ▲                                        └ checkpoints ──► OffsetTracker
//!       └────────── commit offsets (after the findings are written) ◄──┘
//! ```
//!
//! Delivery is at-least-once: every `--commit-interval`, the findings
//! raised since the last commit are written (topic: produced and
//! acknowledged; store: one transaction that also keeps the partitions'
//! offsets), and only then are the offsets of the records behind them
//! committed to the group. With `--db` the store's offsets win when a
//! partition is assigned, so after `kill -9` a record is read again
//! exactly when its findings were not kept. SIGTERM/SIGINT: stop
//! consuming, flush the detectors, write, commit, exit 0.
//!
//! Stages (`--stage`, default `all`): `all` decodes, matches and
//! detects in one process. `1` decodes and matches as `all` does, and
//! instead of aggregating indicator findings and running the behaviour
//! detectors produces each indicator sighting (keyed by its finding's
//! peer) and each observation (keyed by source address) to the
//! observations topic (see [`orbwatch_engine::obs_wire`] for the
//! messages); its raw offsets are committed only after the messages of
//! their records are acknowledged. `2` consumes the observations topic
//! (in its own group), aggregates the sightings into the IOC findings
//! (so one finding's sightings meet in one worker, whichever stage-1
//! workers made them) and runs the per-source detectors on the
//! observations, both in event time through the same [`LivePipeline`]
//! (reorder window, watermark, holds), one per observations partition
//! (see [`crate::worker_tasks`]), and writes what
//! the cross-source detector needs
//! (its cross events, see [`orbwatch_engine::summary_wire`]) to the
//! summaries topic instead of judging campaigns on its fragment of the
//! sources. `3` reads the summaries of every stage-2 worker (one
//! partition, one consumer) and judges distributed brute force across
//! all sources ([`CrossStage`]), with the ids and counts of `all`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use jiff::Timestamp;
use orbwatch_detect::behaviour::BehaviourConfig;
use orbwatch_detect::{Finding, InternalNets};
use orbwatch_engine::cross_stage::CrossStage;
use orbwatch_engine::obs_wire::WireMessage;
use orbwatch_engine::summary_wire::{Summary, SummaryBody};
use orbwatch_engine::{
    BehaviourOptions, Engine, EngineOptions, LiveOptions, LiveOutput, LivePipeline, OUTPUT_BATCH,
};
use orbwatch_kafka::{
    ConsumerSettings, FindingsProducer, KafkaSource, KeyedProducer, OffsetTracker, StartOffsets,
    TopicPartition,
};
use orbwatch_store::{Store, TailOffset};

use crate::Cli;
use crate::feed_reload::FeedReload;
use crate::partition_rebuild::{PartitionRebuild, RebuildWording, RebuiltState};
use crate::worker_tasks::{PartitionTasks, Pipelines};

/// How often the pipeline does its housekeeping.
const TICK: Duration = Duration::from_millis(200);
/// Records taken from the channel between two looks at the clock.
const BURST: usize = 4096;
/// Longest a newly assigned partition holds the detectors' clock while
/// nothing has been read from it (no record and no end of partition):
/// long enough for a first fetch from a busy broker, short enough that a
/// dead partition delays findings by no more.
pub(crate) const ASSIGNED_HOLD: Duration = Duration::from_secs(30);
/// How often the feed store is asked whether its feeds changed (a new
/// version is matched within this and the index build).
const FEED_CHECK: Duration = Duration::from_secs(2);
/// Stage 1 writes its watermark to every observations partition at least
/// this often (see `Output::flush`).
const MARK_EVERY: Duration = Duration::from_secs(1);
/// How long a write of findings to the topic may take before it is
/// retried at the next commit.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// `orbwatch worker`.
#[derive(clap::Args, Debug)]
pub struct WorkerArgs {
    /// Kafka bootstrap brokers, `host:port,…`.
    #[arg(long, required = true)]
    pub brokers: String,
    /// Topic(s) of raw records to consume (repeatable, or comma-separated);
    /// required for `--stage all` and `--stage 1`.
    #[arg(long, value_delimiter = ',')]
    pub topic: Vec<String>,
    /// Consumer group: the workers of one group share the partitions.
    #[arg(long, required = true)]
    pub group: String,
    /// Feed file to match (repeatable); the store's feeds are matched too
    /// when it exists.
    #[arg(long)]
    pub feed: Vec<PathBuf>,
    /// Write findings to this topic (JSON, key = finding id).
    #[arg(long)]
    pub findings_topic: Option<String>,
    /// Which stage this worker plays: `all` (decode, match and detect in
    /// one process), `1` (decode, match, produce observations), `2`
    /// (detect from the observations topic, and summarise for stage 3),
    /// `3` (distributed brute force across every source, from the
    /// summaries topic).
    #[arg(long, default_value = "all", value_parser = ["all", "1", "2", "3"])]
    pub stage: String,
    /// The topic stage 1 writes observations to and stage 2 reads
    /// (key = source address; see the README for its partitions).
    #[arg(long, default_value = "orbwatch.observations")]
    pub observations_topic: String,
    /// The topic stage 2 writes its summaries for the cross-source
    /// detector to, and stage 3 reads (1 partition: stage 3 needs every
    /// stage-2 worker's summaries in one place).
    #[arg(long, default_value = "orbwatch.summaries")]
    pub summaries_topic: String,
    /// Force the decoder of every record (as `hunt --input-format`);
    /// default: detected per stream (topic, partition and record key).
    #[arg(long)]
    pub input_format: Option<String>,
    /// Year for syslog lines that carry none (default: the year of the
    /// Kafka record's timestamp).
    #[arg(long)]
    pub year: Option<i16>,
    /// Zone of syslog lines without one (default: the machine's).
    #[arg(long)]
    pub timezone: Option<String>,
    /// Match indicators only; no behaviour detectors.
    #[arg(long)]
    pub no_behaviour: bool,
    /// Behaviour detector settings (TOML), as in `hunt`.
    #[arg(long)]
    pub behaviour_config: Option<PathBuf>,
    /// How often findings are written and offsets committed (e.g. 1s, 500ms).
    #[arg(long, default_value = "1s")]
    pub commit_interval: String,
    /// How long no partition may send anything before the reorder window
    /// hands on everything it holds (e.g. 60s, 5s): the last records
    /// before a pause reach the detectors, and their offsets are
    /// committed, only then. Shorter: findings and commits sooner after a
    /// burst; a partition silent longer than this no longer holds the
    /// others' clock back, and its next records may arrive late.
    #[arg(long, default_value = "1m")]
    pub idle_flush: String,
    /// A librdkafka property for the consumer and producer, `key=value`
    /// (repeatable), e.g. `-X session.timeout.ms=10000`.
    #[arg(short = 'X', long = "kafka-config")]
    pub kafka_config: Vec<String>,
    /// Records queued between the consumer and the pipeline.
    #[arg(long, default_value_t = 10_000)]
    pub queue: usize,
    /// Read feeds from this compacted topic (written by `orbwatch feed
    /// publish`), all of it from the beginning, outside the group: a
    /// complete new version of a feed is swapped into the index as it
    /// arrives, and replaces the store's feed or `--feed` file of the same
    /// name. Off by default: a worker on one machine reads its store.
    /// Stages `all`, `1` and `2` (stage 2 names stage 1's indicators by
    /// position: give both the same feeds).
    #[arg(long, value_name = "TOPIC")]
    pub feeds_topic: Option<String>,
    /// With `--feeds-topic`, `--stage all` or `1`: when a new feed
    /// version arrives, replay this much of the raw partitions this
    /// worker owns (from the offsets Kafka gives for that time, up to
    /// where the worker stood at the swap) against the version's new
    /// indicators only, and write their findings (`off`: no re-hunt).
    #[arg(long, default_value = "7d", value_name = "DURATION")]
    pub rehunt_window: String,
    /// `--stage 2` and `3`: a partition this worker starts part way
    /// through (taken over from a worker that stopped or died, or read
    /// again from an older commit) first gets the detector state its
    /// previous owner had, by reading this much of the partition again up
    /// to the committed offset (by the records' Kafka timestamps; `all`:
    /// all the topic retains). What that raises was written by the
    /// previous owner and is not written again. `off`: start empty (an
    /// attack or campaign open at the takeover is then split in two, and
    /// what waited in the dead worker's reorder window is lost).
    #[arg(long, default_value = "2h", value_name = "DURATION")]
    pub rebuild_window: String,
}

/// `-X key=value` librdkafka properties.
pub(crate) fn parse_kafka_config(kvs: &[String]) -> Result<Vec<(String, String)>> {
    kvs.iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .with_context(|| {
                    format!("-X {kv:?}: give key=value, e.g. -X session.timeout.ms=10000")
                })
        })
        .collect()
}

/// The store key of a partition's offset (kept in `tail_offsets`, with
/// the findings, like a followed file's).
fn store_key(group: &str, tp: &TopicPartition) -> String {
    format!("kafka:{group}:{}:{}", tp.topic, tp.partition)
}

pub fn run(cli: &Cli, args: &WorkerArgs) -> Result<ExitCode> {
    let stage = args.stage.as_str();
    if stage == "3" && !args.topic.is_empty() {
        anyhow::bail!(
            "--stage 3 reads the summaries topic ({}), not raw records: drop --topic, or set --summaries-topic",
            args.summaries_topic
        );
    }
    if stage != "2" && stage != "3" && args.topic.is_empty() {
        anyhow::bail!("--stage {stage} reads raw records: give --topic TOPIC");
    }
    if stage == "2" && !args.topic.is_empty() {
        anyhow::bail!(
            "--stage 2 reads the observations topic ({}), not raw records: drop --topic, or set --observations-topic",
            args.observations_topic
        );
    }
    if stage != "all" && args.no_behaviour {
        anyhow::bail!(
            "--stage {stage} with --no-behaviour: the split stages exist for the behaviour detectors; run --stage all --no-behaviour to match indicators only"
        );
    }
    let store_out = cli.db.clone();
    if args.findings_topic.is_none() && store_out.is_none() {
        anyhow::bail!(
            "the worker's findings would go nowhere: give --findings-topic TOPIC, --db STORE, or both"
        );
    }
    let commit_interval = crate::cli_values::parse_dur(&args.commit_interval)
        .map_err(|e| anyhow::anyhow!("--commit-interval {}: {e}", args.commit_interval))
        .and_then(|d| Duration::try_from(d).context("--commit-interval must be positive"))?;
    let idle_flush = crate::cli_values::parse_dur(&args.idle_flush)
        .map_err(|e| anyhow::anyhow!("--idle-flush {}: {e}", args.idle_flush))
        .and_then(|d| Duration::try_from(d).context("--idle-flush must be positive"))?;
    let extra = parse_kafka_config(&args.kafka_config)?;
    let rehunt_window = match args.rehunt_window.as_str() {
        "off" | "0" => None,
        w => Some(
            crate::cli_values::parse_dur(w)
                .map_err(|e| anyhow::anyhow!("--rehunt-window {w}: {e} (or `off`)"))?,
        ),
    };
    // Some(None): everything retained; None: no rebuild.
    let rebuild_window = match args.rebuild_window.as_str() {
        "off" | "0" => None,
        "all" => Some(None),
        w => Some(Some(
            crate::cli_values::parse_dur(w)
                .map_err(|e| anyhow::anyhow!("--rebuild-window {w}: {e} (or `all`, or `off`)"))
                .and_then(|d| Duration::try_from(d).context("--rebuild-window must be positive"))?,
        )),
    };
    if stage == "3" {
        if args.feeds_topic.is_some() {
            anyhow::bail!(
                "--stage 3 matches no indicators: drop --feeds-topic (stages all, 1 and 2 read it)"
            );
        }
        return run_stage3(args, store_out, commit_interval, &extra, rebuild_window);
    }
    let (timezone, timezone_name) = crate::cli_values::parse_timezone(args.timezone.as_deref())?;
    let internal = InternalNets::default();
    let behaviour = if args.no_behaviour {
        None
    } else {
        Some(BehaviourOptions {
            config: match &args.behaviour_config {
                Some(p) => BehaviourConfig::from_file(p)?,
                None => BehaviourConfig::default(),
            },
            enrichment_dbs: Vec::new(),
            spill_dir: None,
            ioc_findings_in_memory: None,
        })
    };
    let options = EngineOptions {
        input_format: args.input_format.clone(),
        year: args.year,
        timezone: Some(timezone),
        internal: internal.clone(),
        behaviour,
        threads: 1,
        ..Default::default()
    };
    let indicator_db = match &cli.db {
        Some(p) => p.clone(),
        None => crate::db_path::resolve(cli)?,
    };
    // Stage 2 matches nothing (stage 1 did), but it aggregates stage 1's
    // sightings into findings, which name their indicators by id in
    // these: it loads the same feeds as stage 1.
    // The feeds topic first: a worker starts with the cluster's feeds.
    let mut feed_topic = match &args.feeds_topic {
        Some(t) => Some(
            crate::feed_topic::FeedTopic::start(
                &args.brokers,
                t,
                &extra,
                Duration::from_secs(2),
                Duration::from_secs(120),
            )
            .with_context(|| format!("reading the feeds topic {t} on {}", args.brokers))?,
        ),
        None => None,
    };
    let published = feed_topic
        .as_ref()
        .map(|f| f.published())
        .unwrap_or_default();
    let ioc =
        crate::feed_topic::build_index(cli, &args.feed, &indicator_db, &internal, &published)?;
    if stage == "2" && ioc.is_empty() {
        tracing::warn!(
            "worker: stage 2 has no indicators: the indicator sightings of stage 1 will be skipped (give stage 2 the same --feed files or store as stage 1)"
        );
    }
    if ioc.is_empty() && args.no_behaviour {
        anyhow::bail!(
            "no indicators to match and behaviour detection is off: pass --feed FILE or add feeds with `orbwatch feed add FILE`"
        );
    }
    tracing::info!("worker: {} indicators", ioc.len());
    let rehunt_options = options.clone();
    let engine = Engine::new(ioc, options)?;
    // Partitions are read in no particular order: close indicator
    // sessions by the slowest stream's clock (see LiveOptions).
    let live = LiveOptions {
        slowest_stream_clock: true,
        // … and give the behaviour detectors the slowest stream's clock,
        // held back without bound (max_pending bounds the memory), so a
        // lagging partition's records are not late.
        event_time: orbwatch_engine::event_time::EventTimeConfig {
            max_stream_skew: None,
            idle_flush,
            ..Default::default()
        },
        export_observations: (stage == "1").then(producer_id),
        cross_source: stage == "all",
        export_summaries: (stage == "2").then(producer_id),
        ..Default::default()
    };
    let detect_wait = live.detect_wait;
    let producer_id = live
        .export_observations
        .or(live.export_summaries)
        .unwrap_or(0);
    let pipeline = LivePipeline::new(engine, live)?;
    // Stage 2: one pipeline per observations partition (see worker_tasks).
    let mut pipes = if stage == "2" {
        Pipelines::Tasks(PartitionTasks::new(pipeline))
    } else {
        Pipelines::One(pipeline)
    };

    let signals = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&signals))
            .context("cannot install the SIGTERM/SIGINT handler")?;
    }
    if let (Pipelines::Tasks(t), Some(window)) = (&mut pipes, rebuild_window) {
        let history = crate::partition_rebuild::KafkaHistory {
            brokers: args.brokers.clone(),
            extra: extra.clone(),
            window,
            stop: Arc::clone(&signals),
        };
        t.set_history(Box::new(history));
    }
    let reload_asked = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload_asked))
        .context("cannot install the SIGHUP handler")?;

    let observations = if stage == "1" {
        Some(KeyedProducer::new(
            &args.brokers,
            &args.observations_topic,
            &extra,
        )?)
    } else {
        None
    };
    let summaries = if stage == "2" {
        Some(KeyedProducer::new(
            &args.brokers,
            &args.summaries_topic,
            &extra,
        )?)
    } else {
        None
    };
    let run_args = serde_json::json!({
        "command": "worker",
        "stage": stage,
        "brokers": args.brokers,
        "topics": args.topic,
        "group": args.group,
        "findings_topic": args.findings_topic,
        "feeds": args.feed,
        "feeds_topic": args.feeds_topic,
        "behaviour": !args.no_behaviour,
        "timezone": timezone_name,
    });
    let (mut out, start_offsets) = open_output(
        args,
        &extra,
        store_out.as_deref(),
        &run_args,
        producer_id,
        observations,
        summaries,
    )?;
    // The store the indicators come from, polled for new feed versions.
    // Opened after the findings store: with `--db` they are one file, and
    // a new store exists only from here on (opened before, a worker
    // started on a new store never saw the feeds added to it later).
    // Without a store (no `--db` and no default store yet) the worker
    // reloads on SIGHUP only.
    let feed_store = if indicator_db.is_file() {
        Some(
            Store::open(&indicator_db)
                .with_context(|| format!("opening the feed store {}", indicator_db.display()))?,
        )
    } else {
        None
    };

    reach_brokers(&args.brokers, &extra)?;
    if let Some(p) = &mut out.summaries {
        // Announce this producer to stage 3 before reading anything, as
        // stage 1 does to stage 2 below.
        let hello = Summary::watermark(producer_id, i64::MIN);
        let key = format!("{producer_id:016x}");
        p.write(
            [(key.as_bytes(), hello.as_slice())],
            "the first summary watermark",
            WRITE_TIMEOUT,
        )
        .with_context(|| {
            format!(
                "cannot write to the summaries topic {} (create it first, 1 partition, see the README's topic table)",
                args.summaries_topic
            )
        })?;
    }
    if let Some(p) = &mut out.observations {
        // Announce this producer before reading anything: a stage-2
        // worker that knows it waits for its observations instead of
        // finding the others' watermark past them.
        let hello = WireMessage::watermark(producer_id, i64::MIN);
        p.broadcast(&hello, "the first watermark", WRITE_TIMEOUT)
            .with_context(|| {
                format!(
                    "cannot write to the observations topic {} (create it first, see the README's topic table)",
                    args.observations_topic
                )
            })?;
    }
    let (tx, rx) = orbwatch_live::channel(args.queue);
    let topics = if stage == "2" {
        vec![args.observations_topic.clone()]
    } else {
        args.topic.clone()
    };
    let source = KafkaSource::spawn(
        ConsumerSettings {
            brokers: args.brokers.clone(),
            group: args.group.clone(),
            topics: topics.clone(),
            extra: extra.clone(),
            start_offsets,
            payload_as_is: stage == "2",
        },
        tx,
    )?;
    tracing::info!(
        "worker: stage {stage}: joined group {} on {} for {}",
        args.group,
        args.brokers,
        topics.join(",")
    );
    let mut tracker = OffsetTracker::new();
    let mut last_tick = Instant::now();
    let mut last_commit = Instant::now();
    std::thread::scope(|scope| -> Result<()> {
        let mut reload = FeedReload::new("worker", FEED_CHECK, feed_store.as_ref());
        // Feed versions that came from the feeds topic and are not yet in
        // the index: when each arrived.
        let mut arrivals: HashMap<String, (i64, Instant, crate::feed_topic::NewValues)> =
            HashMap::new();
        // Re-hunts waiting to run, and the one running.
        let mut rehunts: std::collections::VecDeque<crate::rehunt::RehuntJob> = Default::default();
        let mut rehunting: Option<
            std::thread::ScopedJoinHandle<'_, Result<crate::rehunt::RehuntDone>>,
        > = None;
        loop {
            let mut ended = false;
            // Partitions assigned and not yet read from hold the clock (see
            // `LivePipeline::hold_for`). Taken before the records: a
            // partition's assignment is announced before its first record.
            let now = Instant::now();
            pipes.hold_assigned(&source, &tracker, now);
            let caught_up = source.take_caught_up();
            match rx.recv_timeout(TICK) {
                Ok(rec) => {
                    let now = Instant::now();
                    // Again: the assignment may have come while this loop
                    // waited for the record, and the burst below can hold
                    // every record of one partition before the first of
                    // another (whose hold must already be in place).
                    pipes.hold_assigned(&source, &tracker, now);
                    pipes.hand_over(&mut tracker, rec, now);
                    for rec in rx.try_iter().take(BURST) {
                        pipes.hand_over(&mut tracker, rec, now);
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => ended = true,
            }
            if !caught_up.is_empty() {
                // Every record read before those ends is in the channel now.
                let now = Instant::now();
                for rec in rx.try_iter() {
                    pipes.hand_over(&mut tracker, rec, now);
                }
                for tp in caught_up {
                    pipes.end_hold(&tp);
                }
            }
            if let Some(req) = source.take_revoke_request() {
                // A rebalance waits: everything read so far goes through the
                // pipeline, its findings are written, and the offsets of the
                // partitions that go are committed by the rebalance itself.
                let now = Instant::now();
                for rec in rx.try_iter() {
                    pipes.hand_over(&mut tracker, rec, now);
                }
                // Streams still waiting for their format to be detected are
                // detected now (as if their wait were over): otherwise their
                // records stay uncommitted, the next owner reads them again,
                // and this worker counts them too.
                pipes.tick(now + detect_wait);
                // Stage 1: the observations waiting in the reorder window
                // go out now, so the partitions that go can be committed;
                // stage 2: the partitions' tasks are parked (see
                // worker_tasks).
                let o = pipes.before_revoke(&req.partitions, now);
                let mark = pipes.watermark();
                out.take(o, &mut tracker, mark);
                let offsets = out.flush_for_revoke(&source, &req.partitions);
                req.answer(offsets);
            }
            for tp in source.take_revoked() {
                tracker.forget(&tp);
                out.offsets.remove(&tp);
                pipes.revoked(&tp);
            }
            let now = Instant::now();
            pipes.settle(&source.assigned(), now);
            if now.duration_since(last_tick) >= TICK {
                pipes.tick(now);
                last_tick = now;
            }
            // A flood of findings is written in batches of this size
            // rather than all at the end of the interval (as in `watch`).
            if now.duration_since(last_commit) >= commit_interval
                || pipes.output_waiting() >= OUTPUT_BATCH
            {
                let mark = pipes.watermark();
                out.take(pipes.take_output(), &mut tracker, mark);
                out.flush(&source, None);
                last_commit = now;
            }
            let mut asked = reload_asked.swap(false, Ordering::Relaxed);
            if let Some(ft) = &mut feed_topic {
                for a in ft.poll() {
                    let mut new = a.new_values;
                    // A version that replaces one not yet swapped in: the
                    // values that one brought are new too.
                    if let Some((_, _, earlier)) = arrivals.remove(&a.name) {
                        new = match (new, earlier) {
                            (Some(mut n), Some(e)) => {
                                n.extend(e);
                                Some(n)
                            }
                            _ => None,
                        };
                    }
                    arrivals.insert(a.name.clone(), (a.version, Instant::now(), new));
                    asked = true;
                }
            }
            let published = feed_topic
                .as_ref()
                .map(|f| f.published())
                .unwrap_or_default();
            let (feeds, db, internal) = (&args.feed, &indicator_db, &internal);
            if let Some(ioc) = reload.step(scope, now, asked, feed_store.as_ref(), move || {
                crate::feed_topic::build_index(cli, feeds, db, internal, &published)
            }) {
                let mut swapped = Vec::new();
                arrivals.retain(|name, (version, at, new)| {
                    if ioc.feed_version(name) == Some(*version) {
                        tracing::info!(
                            "worker: now matching feed {name} version {version} ({:.2} s after it arrived on the feeds topic)",
                            at.elapsed().as_secs_f64()
                        );
                        swapped.push((name.clone(), *version, std::mem::take(new)));
                        false
                    } else {
                        true
                    }
                });
                // Stage 1 re-hunts too: it owns the raw partitions, and the
                // re-hunt matches indicators only (no detector), so it
                // aggregates and writes its findings itself rather than
                // sending sightings to stage 2.
                if let Some(window) = rehunt_window
                    && (stage == "all" || stage == "1")
                    && !swapped.is_empty()
                {
                    // Records waiting for their stream's format are matched
                    // now, by the index they came under: the re-hunt
                    // replays them, and the new index must not count them
                    // again.
                    pipes.tick(now + detect_wait);
                    let published = feed_topic
                        .as_ref()
                        .map(|f| f.published())
                        .unwrap_or_default();
                    let mut feeds = Vec::new();
                    for (name, version, new) in swapped {
                        let Some(f) = published.get(&name).filter(|f| f.version == version) else {
                            continue;
                        };
                        // Only what the version in use lists.
                        let new: crate::feed_topic::NewValues = new.map(|n| {
                            n.into_iter()
                                .filter(|h| f.value_hashes.contains(h))
                                .collect()
                        });
                        if new.as_ref().is_none_or(|n| !n.is_empty()) {
                            feeds.push((Arc::clone(f), new));
                        }
                    }
                    let until = tracker.reached();
                    if !feeds.is_empty() && until.is_empty() {
                        tracing::info!(
                            "worker: no re-hunt: no record read from the raw partitions yet"
                        );
                    } else if !feeds.is_empty() {
                        rehunts.push_back(crate::rehunt::RehuntJob {
                            feeds,
                            since: Timestamp::now()
                                .checked_sub(window)
                                .unwrap_or(Timestamp::UNIX_EPOCH),
                            until,
                        });
                    }
                }
                pipes.replace_indicators(ioc);
            }
            if rehunting.as_ref().is_some_and(|h| h.is_finished())
                && let Some(h) = rehunting.take()
            {
                match h.join() {
                    Ok(Ok(done)) => {
                        let sightings: u64 = done.findings.iter().map(|f| f.count).sum();
                        tracing::info!(
                            "worker: re-hunt of {} done: {} records replayed from {} partitions over the last {} (up to the offsets reached at the swap) in {:.2} s: {} findings, {sightings} sightings",
                            done.what,
                            done.records,
                            done.partitions,
                            args.rehunt_window,
                            done.seconds,
                            done.findings.len()
                        );
                        if !done.short.is_empty() {
                            tracing::warn!(
                                "worker: the re-hunt of {} did not reach the end of {} (stalled or stopped): their last records were not replayed",
                                done.what,
                                done.short
                                    .iter()
                                    .map(|t| t.to_string())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            );
                        }
                        let mark = pipes.watermark();
                        out.take(
                            orbwatch_engine::LiveOutput {
                                findings: done.findings,
                                ..Default::default()
                            },
                            &mut tracker,
                            mark,
                        );
                    }
                    Ok(Err(e)) => tracing::error!(
                        "worker: the re-hunt failed, its findings are not written (the new indicators are matched from now on): {e:#}"
                    ),
                    Err(_) => {
                        tracing::error!("worker: the re-hunt failed (a bug: please report it)")
                    }
                }
            }
            if rehunting.is_none()
                && let Some(job) = rehunts.pop_front()
            {
                tracing::info!(
                    "worker: re-hunt of {} over the last {} of {} partitions, up to offsets {}",
                    job.describe(),
                    args.rehunt_window,
                    job.until.len(),
                    job.until
                        .iter()
                        .map(|(tp, o)| format!("{tp}@{o}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                let (brokers, extra, options, internal, stop) =
                    (&args.brokers, &extra, &rehunt_options, internal, &*signals);
                rehunting =
                    Some(scope.spawn(move || job.run(brokers, extra, options, internal, stop)));
            }
            if ended || signals.load(Ordering::Relaxed) {
                if rehunting.is_some() || !rehunts.is_empty() {
                    tracing::warn!(
                        "worker: stopping during a re-hunt: its findings are not written; it runs again when the feed version is published again"
                    );
                }
                break;
            }
        }

        Ok(())
    })?;

    tracing::info!("worker: stopping: no more reading, flushing the detectors");
    source.stop_reading();
    // The consumer may be handing over its last record: take it.
    while source.is_reading() {
        let now = Instant::now();
        for rec in rx.try_iter() {
            pipes.hand_over(&mut tracker, rec, now);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    for rec in rx.try_iter() {
        pipes.hand_over(&mut tracker, rec, Instant::now());
    }
    for tp in source.take_revoked() {
        tracker.forget(&tp);
        out.offsets.remove(&tp);
        pipes.revoked(&tp);
    }
    let malformed = pipes.malformed();
    if let Pipelines::Tasks(t) = &pipes {
        let rebuilt = t.rebuilt();
        tracing::info!(
            "worker: stage 2: {} tasks had their state rebuilt, from {} messages read again",
            rebuilt.times,
            rebuilt.records
        );
    }
    let mut coverage = pipes.coverage();
    let stats = pipes.stats();
    // Everything is handed on: this producer writes nothing more.
    out.take(pipes.finish(), &mut tracker, i64::MAX);
    coverage.timezone = Some(timezone_name);
    coverage.finished = Some(Timestamp::now());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !out.flush(&source, Some(&coverage)) {
        if Instant::now() >= deadline {
            source.close();
            anyhow::bail!(
                "{} findings could not be written before stopping; their records were not committed and will be read again by the group",
                out.pending.len()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    source.close();
    tracing::info!(
        "worker: stage {stage} stopped; {} records, {} parsed, {} matched, {} observations out, {} in ({} late, {} malformed), {} indicator sightings out, {} in ({} skipped: indicator not the same as stage 1's), {} observations and sightings skipped as sent again by another stage-1 worker, {} findings written ({} failed writes retried)",
        stats.records,
        stats.parsed,
        stats.matched_records,
        stats.observations_out,
        stats.observations_in,
        stats.late,
        malformed,
        stats.sightings_out,
        stats.sightings_in,
        stats.sightings_mismatched,
        stats.replayed,
        out.kept.new,
        out.failures
    );
    Ok(ExitCode::SUCCESS)
}

/// Stage 3: the cross-source detector (distributed brute force) over the
/// summaries every stage-2 worker writes to the summaries topic (see
/// [`CrossStage`]). One partition, so one member of the group reads it;
/// the others wait as standbys and take over on a rebalance. The
/// offsets of the summaries are committed after the findings judged so
/// far are written (the detector's state is in memory, as stage 2's).
fn run_stage3(
    args: &WorkerArgs,
    store_out: Option<PathBuf>,
    commit_interval: Duration,
    extra: &[(String, String)],
    rebuild_window: Option<Option<Duration>>,
) -> Result<ExitCode> {
    let cfg = match &args.behaviour_config {
        Some(p) => BehaviourConfig::from_file(p)?,
        None => BehaviourConfig::default(),
    };
    let mut cross = CrossStage::new(cfg.clone(), &[], InternalNets::default())?;
    let signals = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&signals))
            .context("cannot install the SIGTERM/SIGINT handler")?;
    }
    let mut reader = SummaryReader {
        rebuild: rebuild_window.map(|window| CampaignRebuild {
            from_history: PartitionRebuild::new(
                Box::new(crate::partition_rebuild::KafkaHistory {
                    brokers: args.brokers.clone(),
                    extra: extra.to_vec(),
                    window,
                    stop: Arc::clone(&signals),
                }),
                CAMPAIGN_REBUILD_WORDING,
            ),
            cfg,
        }),
        ..Default::default()
    };
    let run_args = serde_json::json!({
        "command": "worker",
        "stage": "3",
        "brokers": args.brokers,
        "summaries_topic": args.summaries_topic,
        "group": args.group,
        "findings_topic": args.findings_topic,
    });
    let (mut out, start_offsets) =
        open_output(args, extra, store_out.as_deref(), &run_args, 0, None, None)?;
    reach_brokers(&args.brokers, extra)?;
    let (tx, rx) = orbwatch_live::channel(args.queue);
    let source = KafkaSource::spawn(
        ConsumerSettings {
            brokers: args.brokers.clone(),
            group: args.group.clone(),
            topics: vec![args.summaries_topic.clone()],
            extra: extra.to_vec(),
            start_offsets,
            payload_as_is: true,
        },
        tx,
    )?;
    tracing::info!(
        "worker: stage 3: joined group {} on {} for {}",
        args.group,
        args.brokers,
        args.summaries_topic
    );
    let mut tracker = OffsetTracker::new();
    let mut last_tick = Instant::now();
    let mut last_commit = Instant::now();
    loop {
        let mut ended = false;
        // Assignments and ends of partition hold nothing here: the
        // producers' watermarks order the summaries.
        drop(source.take_assigned());
        drop(source.take_caught_up());
        match rx.recv_timeout(TICK) {
            Ok(rec) => {
                let now = Instant::now();
                reader.handle(&mut cross, &mut tracker, rec, now);
                for rec in rx.try_iter().take(BURST) {
                    reader.handle(&mut cross, &mut tracker, rec, now);
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => ended = true,
        }
        if let Some(req) = source.take_revoke_request() {
            let now = Instant::now();
            for rec in rx.try_iter() {
                reader.handle(&mut cross, &mut tracker, rec, now);
            }
            out.take(reader.output(&mut cross), &mut tracker, i64::MIN);
            let offsets = out.flush_for_revoke(&source, &req.partitions);
            req.answer(offsets);
        }
        for tp in source.take_revoked() {
            tracker.forget(&tp);
            out.offsets.remove(&tp);
        }
        let now = Instant::now();
        if now.duration_since(last_tick) >= TICK {
            cross.tick(now);
            last_tick = now;
        }
        if now.duration_since(last_commit) >= commit_interval {
            out.take(reader.output(&mut cross), &mut tracker, i64::MIN);
            out.flush(&source, None);
            last_commit = now;
        }
        if ended || signals.load(Ordering::Relaxed) {
            break;
        }
    }
    tracing::info!("worker: stopping: no more reading, judging the open campaigns");
    source.stop_reading();
    while source.is_reading() {
        let now = Instant::now();
        for rec in rx.try_iter() {
            reader.handle(&mut cross, &mut tracker, rec, now);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    for rec in rx.try_iter() {
        reader.handle(&mut cross, &mut tracker, rec, Instant::now());
    }
    for tp in source.take_revoked() {
        tracker.forget(&tp);
        out.offsets.remove(&tp);
    }
    let mut last = reader.output(&mut cross);
    let producers = cross.producers();
    let (found, stats) = cross.finish();
    last.findings.extend(found);
    out.take(last, &mut tracker, i64::MIN);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !out.flush(&source, None) {
        if Instant::now() >= deadline {
            source.close();
            anyhow::bail!(
                "{} findings could not be written before stopping; their summaries were not committed and will be read again by the group",
                out.pending.len()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    source.close();
    if let Some(r) = &reader.rebuild {
        let rebuilt = r.from_history.counts();
        tracing::info!(
            "worker: stage 3: its state was rebuilt {} times, from {} summaries read again",
            rebuilt.times,
            rebuilt.records
        );
    }
    tracing::info!(
        "worker: stage 3 stopped; {} summaries ({} events, {} watermarks, {} late, {} dropped as sent again after a stage-2 takeover, {} malformed), {} stage-2 producers done, {} forgotten, {} still running, {} findings written ({} failed writes retried); {} names and {} IPv6 addresses given back once no one held them, {} accounts forgotten over max_accounts",
        reader.read,
        stats.events,
        stats.watermarks,
        stats.late,
        stats.repeated,
        reader.malformed,
        stats.producers_done,
        stats.producers_forgotten,
        producers,
        out.kept.new,
        out.failures,
        stats.names_forgotten,
        stats.addresses_forgotten,
        stats.accounts_forgotten
    );
    Ok(ExitCode::SUCCESS)
}

/// What every stage writes to: the findings topic (when given), and with
/// `--db` the store, where a live run is begun with `run_args` (see
/// `orbwatch hunts`); and the offsets the store keeps, which win over the
/// group's when a partition is assigned. `observations` (stage 1) and
/// `summaries` (stage 2) are the stage's own topics; `producer_id` names
/// this worker in them.
fn open_output(
    args: &WorkerArgs,
    extra: &[(String, String)],
    store_out: Option<&std::path::Path>,
    run_args: &serde_json::Value,
    producer_id: u64,
    observations: Option<KeyedProducer>,
    summaries: Option<KeyedProducer>,
) -> Result<(Output, Option<StartOffsets>)> {
    let mut out = Output {
        producer: match &args.findings_topic {
            Some(t) => Some(FindingsProducer::new(&args.brokers, t, extra)?),
            None => None,
        },
        observations,
        pending_obs: Vec::new(),
        summaries,
        pending_summaries: Vec::new(),
        summary_mark: i64::MIN,
        summaries_done: false,
        owns_partitions: true,
        producer_id,
        watermark: i64::MIN,
        last_mark: Instant::now(),
        store: None,
        group: args.group.clone(),
        pending: Vec::new(),
        pending_at: HashMap::new(),
        offsets: BTreeMap::new(),
        kept: RecentIds::new(),
        failures: 0,
    };
    let mut start_offsets: Option<StartOffsets> = None;
    if let Some(path) = store_out {
        let mut store = Store::open(path)
            .with_context(|| format!("cannot open the store {}", path.display()))?;
        let run_id = store.begin_live(run_args, Timestamp::now())?;
        tracing::info!(
            "worker: run {run_id} in the store {} (see `orbwatch hunts`)",
            path.display()
        );
        out.store = Some((store, run_id));
        start_offsets = Some(store_start_offsets(path.to_path_buf(), args.group.clone()));
    }
    Ok((out, start_offsets))
}

/// A record of a stage's input topic that is not one of its messages
/// (`what`, written by a `writer` worker): skipped and counted in
/// `malformed`, and logged the first ten times and then at each power of
/// two, so that a topic full of another program's records does not fill
/// the log.
pub(crate) fn note_malformed(
    malformed: &mut u64,
    rec: &orbwatch_live::LiveRecord,
    what: &str,
    writer: &str,
    error: &dyn std::fmt::Display,
) {
    *malformed += 1;
    if *malformed <= 10 || malformed.is_power_of_two() {
        tracing::error!(
            "{} offset {}: not {what}, skipped ({malformed} so far; is a {writer} worker of another version, or something else, writing to this topic?): {error}",
            rec.stream,
            rec.offset,
        );
    }
}

/// Stage 3: summaries from the topic into the [`CrossStage`].
#[derive(Default)]
struct SummaryReader {
    read: u64,
    /// Messages that were not summaries (skipped, counted, logged).
    malformed: u64,
    /// Checkpoints of the messages taken since the last output.
    checkpoints: Vec<orbwatch_live::Checkpoint>,
    /// How the detector's state is rebuilt when this worker starts part
    /// way through the topic (`None`: it starts empty).
    rebuild: Option<CampaignRebuild>,
}

/// Stage 3's state after a takeover, as stage 2's tasks get theirs (see
/// [`crate::partition_rebuild`]): the campaigns are a function of the
/// summaries in offset order, so a stage-3 worker that starts part way
/// through the topic (a standby taking over from one killed, or one given
/// the partition back after another read on) first reads the topic again
/// up to where it starts, and drops what that judges: the previous owner
/// wrote those findings before it committed the offset. Without it a
/// campaign open at the takeover was lost or split.
struct CampaignRebuild {
    from_history: PartitionRebuild,
    /// What a stage 3 started again from nothing is made with.
    cfg: BehaviourConfig,
}

/// The words of stage 3's rebuilds in the log (the kill test looks for
/// "stage 3 state rebuilt" and "from 0 summaries").
const CAMPAIGN_REBUILD_WORDING: RebuildWording = RebuildWording {
    owner: "stage 3",
    state: "stage 3 state",
    records: "summaries",
    if_short: "campaigns open at the takeover may be split",
};

/// Stage 3's detector, read the summaries before a takeover again into.
struct CrossStageRebuild<'a> {
    cross: &'a mut CrossStage,
    cfg: &'a BehaviourConfig,
    now: Instant,
}

impl RebuiltState for CrossStageRebuild<'_> {
    fn start_fresh(&mut self) -> anyhow::Result<()> {
        *self.cross = CrossStage::new(self.cfg.clone(), &[], InternalNets::default())?;
        Ok(())
    }

    fn take_again(&mut self, record: orbwatch_live::LiveRecord) {
        if let Ok(s) = Summary::decode(&record.bytes) {
            self.cross.handle(&s, self.now);
        }
    }

    fn drop_output(&mut self) {
        drop(self.cross.take_findings());
    }
}

impl SummaryReader {
    fn handle(
        &mut self,
        cross: &mut CrossStage,
        tracker: &mut OffsetTracker,
        rec: orbwatch_live::LiveRecord,
        now: Instant,
    ) {
        if let Some(r) = &mut self.rebuild
            && let Some(tp) = rec
                .checkpoint
                .as_ref()
                .and_then(|c| orbwatch_kafka::parse_identity(&c.identity))
        {
            let offset = i64::try_from(rec.offset).unwrap_or(i64::MAX);
            r.from_history.catch_up(
                &tp,
                offset,
                &mut CrossStageRebuild {
                    cross,
                    cfg: &r.cfg,
                    now,
                },
            );
        }
        if let Some(cp) = &rec.checkpoint {
            tracker.entered(cp);
        }
        self.read += 1;
        match Summary::decode(&rec.bytes) {
            Ok(s) => cross.handle(&s, now),
            Err(e) => note_malformed(&mut self.malformed, &rec, "a summary", "stage-2", &e),
        }
        // Taken into the detector's state (in memory, as stage 2's): its
        // offset may be committed once the findings judged so far are
        // written.
        if let Some(cp) = rec.checkpoint {
            self.checkpoints.push(cp);
        }
    }

    /// The findings judged and the checkpoints taken since the last call.
    fn output(&mut self, cross: &mut CrossStage) -> LiveOutput {
        LiveOutput {
            findings: cross.take_findings(),
            checkpoints: std::mem::take(&mut self.checkpoints),
            ..Default::default()
        }
    }
}

/// Read at each assignment: another worker of the group may have kept
/// the partition's offset in the store since this one started.
fn store_start_offsets(path: PathBuf, group: String) -> StartOffsets {
    Arc::new(move |tp: &TopicPartition| {
        let key = store_key(&group, tp);
        match Store::open(&path).and_then(|s| s.load_tail_offsets()) {
            Ok(rows) => rows
                .into_iter()
                .find(|r| r.path == key)
                .and_then(|r| i64::try_from(r.position).ok()),
            Err(e) => {
                tracing::error!(
                    "worker: cannot read the kept offset of {tp} from {}: {e}; starting from the group's committed offset",
                    path.display()
                );
                None
            }
        }
    })
}

/// Fail fast on a wrong `--brokers`: librdkafka itself would retry
/// quietly for ever.
pub(crate) fn reach_brokers(brokers: &str, extra: &[(String, String)]) -> Result<()> {
    orbwatch_kafka::check_brokers(brokers, extra, Duration::from_secs(10)).with_context(|| {
        format!(
            "cannot reach the Kafka brokers {brokers} within 10 s: check --brokers HOST:PORT and that the brokers run"
        )
    })?;
    Ok(())
}

/// A random id for this stage-1 process: stage 2 keeps one event-time
/// clock per (partition, producer).
fn producer_id() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32).rotate_left(17)
}

/// What waits to be written, and where it goes.
struct Output {
    producer: Option<FindingsProducer>,
    /// Stage 1: the observations topic.
    observations: Option<KeyedProducer>,
    /// Stage 1: observations to write (key, message), before the findings.
    pending_obs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Stage 2: the summaries topic, the summaries to write (before the
    /// findings; key = this producer, so they stay in order), the event
    /// time they cover (written after them as this producer's
    /// watermark), and whether `done` was written (no watermark after).
    summaries: Option<KeyedProducer>,
    pending_summaries: Vec<Vec<u8>>,
    summary_mark: i64,
    summaries_done: bool,
    /// The worker owned partitions at the last flush (stage 2 sends no
    /// summary watermark without).
    owns_partitions: bool,
    /// Stage 1: this worker's producer id and its watermark (written to
    /// every partition after the observations, see `obs_wire`).
    producer_id: u64,
    watermark: i64,
    /// When the watermark was last written.
    last_mark: Instant,
    store: Option<(Store, i64)>,
    group: String,
    /// Findings raised since the last write (latest state per id).
    pending: Vec<Finding>,
    /// Where each pending finding's id is in `pending`: a burst of
    /// records can raise many findings between writes, and a search
    /// through `pending` for each one made that quadratic.
    pending_at: HashMap<String, usize>,
    /// Offsets to commit once `pending` is written.
    offsets: BTreeMap<TopicPartition, i64>,
    /// Findings written lately, to tell a new one from an update.
    kept: RecentIds,
    failures: u64,
}

/// Ids of the findings a worker wrote lately, as 64-bit hashes, at most
/// 1,048,576 (about 16 MB): tells a new finding (logged at info
/// level, counted in the last log line) from an update of one.
///
/// Why not every id: a worker runs for months, and a flood of findings
/// (a listed address beside a new peer in each record) grew the set of
/// every id ever written without a bound. When full it starts again: a
/// finding updated after that is logged and counted as new once more.
struct RecentIds {
    hashes: std::collections::HashSet<u64>,
    cap: usize,
    state: std::collections::hash_map::RandomState,
    /// Distinct findings written, as far as the set tells.
    new: u64,
}

impl RecentIds {
    fn new() -> Self {
        Self::with_cap(1 << 20)
    }

    fn with_cap(cap: usize) -> Self {
        Self {
            hashes: std::collections::HashSet::new(),
            cap,
            state: Default::default(),
            new: 0,
        }
    }

    /// Note `id` as written; true when it was not written lately.
    fn insert(&mut self, id: &str) -> bool {
        use std::hash::BuildHasher;
        if self.hashes.len() >= self.cap {
            self.hashes = std::collections::HashSet::new();
        }
        let new = self.hashes.insert(self.state.hash_one(id));
        self.new += u64::from(new);
        new
    }
}

impl Output {
    /// What the pipeline handed on: its findings and observations wait
    /// to be written, and the offsets its checkpoints make committable
    /// are committed after them.
    fn take(&mut self, o: LiveOutput, tracker: &mut OffsetTracker, watermark: i64) {
        self.watermark = watermark;
        tracker.decoded(&o.checkpoints);
        let offsets = tracker.take_committable();
        for w in o.observations {
            self.pending_obs.push((w.key().into_bytes(), w.encode()));
        }
        self.summary_mark = self.summary_mark.max(o.summary_watermark);
        for s in o.summaries {
            self.pending_summaries.push(s.encode());
        }
        for f in o.findings {
            match self.pending_at.get(&f.id) {
                Some(&i) => self.pending[i] = f,
                None => {
                    self.pending_at.insert(f.id.clone(), self.pending.len());
                    self.pending.push(f);
                }
            }
        }
        self.offsets.extend(offsets);
    }

    /// Write the pending findings, then commit the offsets behind them;
    /// false when something refused (all stays pending for the next try).
    fn flush(
        &mut self,
        source: &KafkaSource,
        coverage: Option<&orbwatch_detect::Coverage>,
    ) -> bool {
        // Stage 1 writes its watermark at least every MARK_EVERY, even with
        // nothing new: a stage-2 worker forgets a producer's clock after a
        // minute without a message, and a producer silent that long (its
        // reorder window waiting for a slow stream) would then find the
        // other producers' watermark past its next observations.
        let owned = source.assigned();
        // Stage 2 without partitions has nothing to summarise: its
        // watermark would stay at the minimum and hold stage 3 back, so
        // it sends none (stage 3 forgets it after a minute of silence,
        // and waits for it again when it speaks).
        self.owns_partitions = !owned.is_empty();
        let mark_due = (self.observations.is_some()
            || (self.summaries.is_some() && self.owns_partitions))
            && self.last_mark.elapsed() >= MARK_EVERY;
        if self.pending.is_empty()
            && self.pending_obs.is_empty()
            && self.pending_summaries.is_empty()
            && self.offsets.is_empty()
            && coverage.is_none()
            && !mark_due
        {
            return true;
        }
        // Offsets of partitions handed to another worker since are that
        // worker's to keep: saving ours could move its position back.
        self.offsets.retain(|tp, _| owned.contains(tp));
        match self.write(coverage) {
            Ok(()) => {}
            Err(e) => {
                self.failures += 1;
                tracing::warn!(
                    "worker: cannot write {} findings yet (will retry; offsets not committed): {e:#}",
                    self.pending.len()
                );
                return false;
            }
        }
        self.pending_at.clear();
        for f in self.pending.drain(..) {
            if self.kept.insert(&f.id) {
                tracing::info!(
                    "new finding {} {} {} count {}",
                    f.id,
                    f.kind,
                    f.src_ip.map(|i| i.to_string()).unwrap_or_default(),
                    f.count
                );
            }
        }
        let offsets = std::mem::take(&mut self.offsets);
        match source.commit(offsets) {
            Ok(n) => tracing::debug!("worker: committed {n} partitions' offsets"),
            // The findings are written; the records will be read again
            // and give the same ids.
            Err(e) => tracing::warn!("worker: {e}"),
        }
        true
    }

    /// Write the pending findings (and, with a store, the offsets) for a
    /// rebalance that takes `revoked` away; the offsets of `revoked` to
    /// commit, empty when the write failed (they are then read again by
    /// the next owner). Other partitions' offsets wait for the next flush.
    fn flush_for_revoke(
        &mut self,
        source: &KafkaSource,
        revoked: &[TopicPartition],
    ) -> BTreeMap<TopicPartition, i64> {
        let owned = source.assigned();
        self.offsets.retain(|tp, _| owned.contains(tp));
        if let Err(e) = self.write(None) {
            self.failures += 1;
            tracing::warn!("worker: cannot write findings before a rebalance: {e:#}");
            return BTreeMap::new();
        }
        self.pending_at.clear();
        for f in self.pending.drain(..) {
            self.kept.insert(&f.id);
        }
        let mut out = BTreeMap::new();
        for tp in revoked {
            if let Some(o) = self.offsets.remove(tp) {
                out.insert(tp.clone(), o);
            }
        }
        out
    }

    fn write(&mut self, coverage: Option<&orbwatch_detect::Coverage>) -> Result<()> {
        // Observations first: a finding written and its observations not
        // would leave offsets uncommitted anyway, but the other order
        // keeps the topics consistent with the store on a crash.
        if let Some(p) = &mut self.observations
            && !self.pending_obs.is_empty()
        {
            p.write(
                self.pending_obs
                    .iter()
                    .map(|(k, v)| (k.as_slice(), v.as_slice())),
                "observations",
                WRITE_TIMEOUT,
            )?;
            // Written: a retry of the findings below must not write them
            // again (stage 2 would count them twice).
            self.pending_obs.clear();
        }
        if let Some(p) = &mut self.observations {
            // After the observations it covers; a lost one only delays
            // stage 2 until the next. `i64::MIN` (nothing handed on yet)
            // announces this producer: stage 2 waits for it.
            let mark = WireMessage::watermark(self.producer_id, self.watermark);
            match p.broadcast(&mark, "the watermark", WRITE_TIMEOUT) {
                Ok(()) => self.last_mark = Instant::now(),
                Err(e) => tracing::warn!("worker: {e}"),
            }
        }
        if let Some(p) = &mut self.summaries {
            let key = format!("{:016x}", self.producer_id);
            let wrote = !self.pending_summaries.is_empty();
            if wrote {
                let done = self
                    .pending_summaries
                    .last()
                    .is_some_and(|m| Summary::decode(m).is_ok_and(|s| s.body == SummaryBody::Done));
                p.write(
                    self.pending_summaries
                        .iter()
                        .map(|m| (key.as_bytes(), m.as_slice())),
                    "summaries",
                    WRITE_TIMEOUT,
                )?;
                // Written: a retry must not write them again (stage 3
                // would count them twice).
                self.pending_summaries.clear();
                self.summaries_done |= done;
            }
            if !self.summaries_done && (wrote || self.owns_partitions) {
                // After the summaries it covers, as stage 1's watermark.
                let mark = Summary::watermark(self.producer_id, self.summary_mark);
                match p.write(
                    [(key.as_bytes(), mark.as_slice())],
                    "the summary watermark",
                    WRITE_TIMEOUT,
                ) {
                    Ok(_) => self.last_mark = Instant::now(),
                    Err(e) => tracing::warn!("worker: {e}"),
                }
            }
        }
        if let Some(p) = &mut self.producer {
            p.write(&self.pending, WRITE_TIMEOUT)?;
        }
        if let Some((store, run_id)) = &mut self.store {
            // One transaction with the offsets, as `watch` keeps them
            // (the store writes a big batch in parts).
            let path = store.path().to_path_buf();
            let tx = store.write_transaction()?;
            orbwatch_store::findings::keep_live(&tx, &path, *run_id, &self.pending, coverage)?;
            let rows: Vec<TailOffset> = self
                .offsets
                .iter()
                .map(|(tp, o)| TailOffset::kafka(store_key(&self.group, tp), *o))
                .collect();
            orbwatch_store::save_tail_offsets(&tx, &rows, Timestamp::now())?;
            tx.commit()
                .with_context(|| format!("cannot commit to the store {}", path.display()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::RecentIds;

    #[test]
    fn recent_ids_tell_new_findings_from_updates_and_stay_bounded() {
        let mut ids = RecentIds::with_cap(3);
        assert!(ids.insert("a"));
        assert!(!ids.insert("a"), "an update");
        assert!(ids.insert("b"));
        assert!(ids.insert("c"));
        assert_eq!(ids.hashes.len(), 3);
        // Full: it starts again, so "a" is new once more.
        assert!(ids.insert("d"));
        assert_eq!(ids.hashes.len(), 1);
        assert!(ids.insert("a"));
        assert_eq!(ids.new, 5);
    }
}
