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
//! Only `--stage all` is implemented; the split stages are designed in
//! the README (see "orbwatch worker on Kafka").

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
use orbwatch_engine::{BehaviourOptions, Engine, EngineOptions, LiveOptions, LivePipeline};
use orbwatch_kafka::{
    ConsumerSettings, FindingsProducer, KafkaSource, OffsetTracker, StartOffsets, TopicPartition,
};
use orbwatch_store::{Store, TailOffset};

use crate::Cli;
use crate::feed_reload::FeedReload;

/// How often the pipeline does its housekeeping.
const TICK: Duration = Duration::from_millis(200);
/// Records taken from the channel between two looks at the clock.
const BURST: usize = 4096;
/// Longest a newly assigned partition holds the detectors' clock while
/// nothing has been read from it (no record and no end of partition):
/// long enough for a first fetch from a busy broker, short enough that a
/// dead partition delays findings by no more.
const ASSIGNED_HOLD: Duration = Duration::from_secs(30);
/// How often the feed store is asked whether its feeds changed (a new
/// version is matched within this and the index build).
const FEED_CHECK: Duration = Duration::from_secs(2);
/// How long a write of findings to the topic may take before it is
/// retried at the next commit.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// `orbwatch worker`.
#[derive(clap::Args, Debug)]
pub struct WorkerArgs {
    /// Kafka bootstrap brokers, `host:port,…`.
    #[arg(long, required = true)]
    pub brokers: String,
    /// Topic(s) of raw records to consume (repeatable, or comma-separated).
    #[arg(long, required = true, value_delimiter = ',')]
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
    /// Which stage this worker plays. Only `all` is implemented: decode,
    /// match and detect in one process.
    #[arg(long, default_value = "all", value_parser = ["all", "1", "2", "3"])]
    pub stage: String,
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
    /// A librdkafka property for the consumer and producer, `key=value`
    /// (repeatable), e.g. `-X session.timeout.ms=10000`.
    #[arg(short = 'X', long = "kafka-config")]
    pub kafka_config: Vec<String>,
    /// Records queued between the consumer and the pipeline.
    #[arg(long, default_value_t = 10_000)]
    pub queue: usize,
}

/// The store key of a partition's offset (kept in `tail_offsets`, with
/// the findings, like a followed file's).
fn store_key(group: &str, tp: &TopicPartition) -> String {
    format!("kafka:{group}:{}:{}", tp.topic, tp.partition)
}

pub fn run(cli: &Cli, args: &WorkerArgs) -> Result<ExitCode> {
    if args.stage != "all" {
        anyhow::bail!(
            "--stage {}: the split stages are not implemented yet; run --stage all (every worker decodes, matches and detects)",
            args.stage
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
    let extra = args
        .kafka_config
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .with_context(|| {
                    format!("-X {kv:?}: give key=value, e.g. -X session.timeout.ms=10000")
                })
        })
        .collect::<Result<Vec<_>>>()?;
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
    let ioc = crate::cmd_watch::load_indicators(cli, &args.feed, &indicator_db, &internal)?;
    if ioc.is_empty() && args.no_behaviour {
        anyhow::bail!(
            "no indicators to match and behaviour detection is off: pass --feed FILE or add feeds with `orbwatch feed add FILE`"
        );
    }
    tracing::info!("worker: {} indicators", ioc.len());
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
            ..Default::default()
        },
        ..Default::default()
    };
    let detect_wait = live.detect_wait;
    let mut pipeline = LivePipeline::new(engine, live)?;

    let signals = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&signals))
            .context("cannot install the SIGTERM/SIGINT handler")?;
    }
    let reload_asked = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload_asked))
        .context("cannot install the SIGHUP handler")?;
    // The store the indicators come from, polled for new feed versions
    // (none yet: the worker reloads on SIGHUP only).
    let feed_store = if indicator_db.is_file() {
        Some(
            Store::open(&indicator_db)
                .with_context(|| format!("opening the feed store {}", indicator_db.display()))?,
        )
    } else {
        None
    };

    let mut out = Output {
        producer: match &args.findings_topic {
            Some(t) => Some(FindingsProducer::new(&args.brokers, t, &extra)?),
            None => None,
        },
        store: None,
        group: args.group.clone(),
        pending: Vec::new(),
        pending_at: HashMap::new(),
        offsets: BTreeMap::new(),
        kept: std::collections::HashSet::new(),
        failures: 0,
    };
    let mut start_offsets: Option<StartOffsets> = None;
    if let Some(path) = &store_out {
        let mut store = Store::open(path)
            .with_context(|| format!("cannot open the store {}", path.display()))?;
        let run_args = serde_json::json!({
            "command": "worker",
            "brokers": args.brokers,
            "topics": args.topic,
            "group": args.group,
            "findings_topic": args.findings_topic,
            "feeds": args.feed,
            "behaviour": !args.no_behaviour,
            "timezone": timezone_name,
        });
        let run_id = store.begin_live(&run_args, Timestamp::now())?;
        tracing::info!(
            "worker: run {run_id} in the store {} (see `orbwatch hunts`)",
            path.display()
        );
        out.store = Some((store, run_id));
        let (path, group) = (path.clone(), args.group.clone());
        // Read at each assignment: another worker of the group may have
        // kept the partition's offset since this one started.
        start_offsets = Some(Arc::new(move |tp: &TopicPartition| {
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
        }));
    }

    // Fail fast on a wrong --brokers: librdkafka itself would retry
    // quietly for ever.
    orbwatch_kafka::check_brokers(&args.brokers, &extra, Duration::from_secs(10)).with_context(
        || {
            format!(
                "cannot reach the Kafka brokers {} within 10 s: check --brokers HOST:PORT and that the brokers run",
                args.brokers
            )
        },
    )?;
    let (tx, rx) = orbwatch_live::channel(args.queue);
    let source = KafkaSource::spawn(
        ConsumerSettings {
            brokers: args.brokers.clone(),
            group: args.group.clone(),
            topics: args.topic.clone(),
            extra: extra.clone(),
            start_offsets,
        },
        tx,
    )?;
    tracing::info!(
        "worker: joined group {} on {} for {}",
        args.group,
        args.brokers,
        args.topic.join(",")
    );
    let mut tracker = OffsetTracker::new();
    let mut last_tick = Instant::now();
    let mut last_commit = Instant::now();
    std::thread::scope(|scope| -> Result<()> {
        let mut reload = FeedReload::new("worker", FEED_CHECK, feed_store.as_ref());
        loop {
            let mut ended = false;
            // Partitions assigned and not yet read from hold the clock (see
            // `LivePipeline::hold_for`). Taken before the records: a
            // partition's assignment is announced before its first record.
            let now = Instant::now();
            for tp in source.take_assigned() {
                if !tracker.knows(&tp) {
                    pipeline.hold_for(tp.to_string(), now + ASSIGNED_HOLD);
                }
            }
            let caught_up = source.take_caught_up();
            match rx.recv_timeout(TICK) {
                Ok(rec) => {
                    let now = Instant::now();
                    hand_over(&mut pipeline, &mut tracker, rec, now);
                    for rec in rx.try_iter().take(BURST) {
                        hand_over(&mut pipeline, &mut tracker, rec, now);
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => ended = true,
            }
            if !caught_up.is_empty() {
                // Every record read before those ends is in the channel now.
                let now = Instant::now();
                for rec in rx.try_iter() {
                    hand_over(&mut pipeline, &mut tracker, rec, now);
                }
                for tp in caught_up {
                    pipeline.end_hold(&tp.to_string());
                }
            }
            if let Some(req) = source.take_revoke_request() {
                // A rebalance waits: everything read so far goes through the
                // pipeline, its findings are written, and the offsets of the
                // partitions that go are committed by the rebalance itself.
                let now = Instant::now();
                for rec in rx.try_iter() {
                    hand_over(&mut pipeline, &mut tracker, rec, now);
                }
                // Streams still waiting for their format to be detected are
                // detected now (as if their wait were over): otherwise their
                // records stay uncommitted, the next owner reads them again,
                // and this worker counts them too.
                pipeline.tick(now + detect_wait);
                let o = pipeline.take_output();
                tracker.decoded(&o.checkpoints);
                out.take(o.findings, tracker.take_committable());
                let offsets = out.flush_for_revoke(&source, &req.partitions);
                req.answer(offsets);
            }
            for tp in source.take_revoked() {
                tracker.forget(&tp);
                out.offsets.remove(&tp);
                pipeline.end_hold(&tp.to_string());
            }
            let now = Instant::now();
            if now.duration_since(last_tick) >= TICK {
                pipeline.tick(now);
                last_tick = now;
            }
            if now.duration_since(last_commit) >= commit_interval {
                let o = pipeline.take_output();
                tracker.decoded(&o.checkpoints);
                out.take(o.findings, tracker.take_committable());
                out.flush(&source, None);
                last_commit = now;
            }
            let asked = reload_asked.swap(false, Ordering::Relaxed);
            let (feeds, db, internal) = (&args.feed, &indicator_db, &internal);
            if let Some(ioc) = reload.step(scope, now, asked, feed_store.as_ref(), move || {
                crate::cmd_watch::load_indicators(cli, feeds, db, internal)
            }) {
                pipeline.replace_indicators(ioc);
            }
            if ended || signals.load(Ordering::Relaxed) {
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
            hand_over(&mut pipeline, &mut tracker, rec, now);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    for rec in rx.try_iter() {
        hand_over(&mut pipeline, &mut tracker, rec, Instant::now());
    }
    for tp in source.take_revoked() {
        tracker.forget(&tp);
        out.offsets.remove(&tp);
    }
    let mut coverage = pipeline.coverage();
    let stats = pipeline.stats();
    let o = pipeline.finish();
    tracker.decoded(&o.checkpoints);
    out.take(o.findings, tracker.take_committable());
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
        "worker: stopped; {} records, {} parsed, {} matched, {} findings written ({} failed writes retried)",
        stats.records,
        stats.parsed,
        stats.matched_records,
        out.kept.len(),
        out.failures
    );
    Ok(ExitCode::SUCCESS)
}

/// Hand a record to the pipeline, noted in the offset tracker. The first
/// record of a partition ends the partition's hold: its stream's clock is
/// in the reorder window from this record on.
fn hand_over(
    pipeline: &mut LivePipeline,
    tracker: &mut OffsetTracker,
    rec: orbwatch_live::LiveRecord,
    now: Instant,
) {
    if let Some(cp) = &rec.checkpoint
        && let Some(tp) = tracker.entered(cp)
        && pipeline.holds() > 0
    {
        pipeline.end_hold(&tp.to_string());
    }
    pipeline.handle(rec, now);
}

/// What waits to be written, and where it goes.
struct Output {
    producer: Option<FindingsProducer>,
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
    kept: std::collections::HashSet<String>,
    failures: u64,
}

impl Output {
    fn take(&mut self, findings: Vec<Finding>, offsets: BTreeMap<TopicPartition, i64>) {
        for f in findings {
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
        if self.pending.is_empty() && self.offsets.is_empty() && coverage.is_none() {
            return true;
        }
        // Offsets of partitions handed to another worker since are that
        // worker's to keep: saving ours could move its position back.
        let owned = source.assigned();
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
            if self.kept.insert(f.id.clone()) {
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
            self.kept.insert(f.id.clone());
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
        if let Some(p) = &mut self.producer {
            p.write(&self.pending, WRITE_TIMEOUT)?;
        }
        if let Some((store, run_id)) = &mut self.store {
            let path = store.path().to_path_buf();
            let tx = store.write_transaction()?;
            orbwatch_store::findings::keep_live(&tx, &path, *run_id, &self.pending, coverage)?;
            let rows: Vec<TailOffset> = self
                .offsets
                .iter()
                .map(|(tp, o)| TailOffset {
                    path: store_key(&self.group, tp),
                    device: 0,
                    inode: 0,
                    position: u64::try_from(*o).unwrap_or(0),
                    head_hash: String::new(),
                    head_len: 0,
                    lines: 0,
                })
                .collect();
            orbwatch_store::save_tail_offsets(&tx, &rows, Timestamp::now())?;
            tx.commit()
                .with_context(|| format!("cannot commit to the store {}", path.display()))?;
        }
        Ok(())
    }
}
