//! `serve --findings-topic`: the findings that `orbwatch worker`s write to
//! the findings topic, kept in the store, where the report, the API, the
//! dashboard and triage read them as any hunt's.
//!
//! ```text
//!  findings topic ──► TopicReader (every partition, ──► batch (latest ──► one store transaction:
//!   (JSON, key =        from the store's offsets)        state per id)     findings + offsets
//!    finding id)
//! ```
//!
//! Why no consumer group: every store wants every finding, so two
//! `serve`s (two sites, or a standby) must not split the partitions
//! between them. The offsets are the store's own, kept in the same
//! transaction as the findings they brought (as `worker --db` keeps its
//! raw topic's), so a `kill -9` loses nothing and keeps nothing twice:
//! the next start goes on from the last committed transaction.
//!
//! Why one live run across restarts: a finding is written again each time
//! it grows (same id, larger count). The intake keeps all of them in one
//! `hunts` row (begun with the topic's name, found again at the next
//! start), so the latest state replaces the earlier one instead of
//! showing as a second finding of another run.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use jiff::Timestamp;
use orbwatch_detect::Finding;
use orbwatch_kafka::topic_reader::{RawRecord, TopicReader};
use orbwatch_store::{Store, TailOffset};

/// Where the findings come from.
#[derive(Debug, Clone)]
pub struct IntakeSettings {
    pub brokers: String,
    pub topic: String,
    /// librdkafka settings (`-X key=value`).
    pub extra: Vec<(String, String)>,
    pub db: PathBuf,
}

/// A batch is written at least this often while findings come.
const COMMIT_EVERY: Duration = Duration::from_millis(500);
/// ... and as soon as it holds this many findings.
const BATCH_MAX: usize = 5_000;

/// Counts, shared with the thread (for the log line at the end).
#[derive(Debug, Default)]
pub struct IntakeStats {
    pub messages: AtomicU64,
    pub findings_kept: AtomicU64,
    pub malformed: AtomicU64,
    pub commits: AtomicU64,
    pub failed_commits: AtomicU64,
}

/// The intake thread; stopped (after a last commit) by [`FindingsIntake::stop`].
pub struct FindingsIntake {
    stop: Arc<AtomicBool>,
    ended: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
    pub stats: Arc<IntakeStats>,
}

/// The store's key of a partition's offset.
fn offset_key(topic: &str, partition: i32) -> String {
    format!("kafka-findings:{topic}:{partition}")
}

/// What the run is begun with, and found again by.
fn run_args(topic: &str) -> serde_json::Value {
    serde_json::json!({ "command": "serve", "findings_topic": topic })
}

impl FindingsIntake {
    /// Open the store's run, read the kept offsets, start reading the
    /// topic from them. Errors (no such topic, brokers unreachable, the
    /// store) stop `serve` from starting, with their reason.
    pub fn spawn(settings: IntakeSettings) -> Result<Self> {
        crate::cmd_worker::reach_brokers(&settings.brokers, &settings.extra)?;
        let mut store = Store::open(&settings.db)
            .with_context(|| format!("cannot open the store {}", settings.db.display()))?;
        let args = run_args(&settings.topic);
        let run_id = match store.open_live_run(&args)? {
            Some(id) => id,
            None => store.begin_live(&args, Timestamp::now())?,
        };
        let kept = kept_offsets(&store, &settings.topic)?;
        let reader =
            TopicReader::spawn_from(&settings.brokers, &settings.topic, &settings.extra, &|p| {
                kept.get(&p).copied()
            })
            .with_context(|| format!("cannot read the findings topic {}", settings.topic))?;
        tracing::info!(
            "serve: keeping the findings of {} on {} in run {run_id} of {} ({} partitions go on from kept offsets)",
            settings.topic,
            settings.brokers,
            settings.db.display(),
            kept.len()
        );
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(IntakeStats::default());
        let ended = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("findings-intake".into())
            .spawn({
                let stop = Arc::clone(&stop);
                let stats = Arc::clone(&stats);
                let ended = Arc::clone(&ended);
                move || {
                    let mut intake = Intake {
                        store,
                        run_id,
                        topic: settings.topic,
                        batch: Batch::default(),
                        stats,
                    };
                    let r = intake.run(&reader, &stop);
                    drop(reader);
                    ended.store(true, Ordering::Relaxed);
                    r
                }
            })
            .context("cannot start the findings intake thread")?;
        Ok(Self {
            stop,
            ended,
            thread: Some(thread),
            stats,
        })
    }

    /// Stop reading, keep what was read, and return how it went.
    pub fn stop(mut self) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => {
                anyhow::bail!("the findings intake thread panicked (a bug: please report it)")
            }
            None => Ok(()),
        }
    }

    /// Set when the intake thread has ended (on its own: an error it
    /// could not get past; `serve` then stops too, so that its
    /// supervisor restarts it).
    pub fn ended(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.ended)
    }
}

/// Findings read and not yet kept: the latest state of each id, and the
/// offset after the last message read of each partition.
#[derive(Default)]
struct Batch {
    findings: Vec<Finding>,
    at: HashMap<String, usize>,
    offsets: BTreeMap<i32, i64>,
    since: Option<Instant>,
}

impl Batch {
    fn add(&mut self, f: Finding) {
        match self.at.get(&f.id) {
            Some(&i) => self.findings[i] = f,
            None => {
                self.at.insert(f.id.clone(), self.findings.len());
                self.findings.push(f);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }
}

struct Intake {
    store: Store,
    run_id: i64,
    topic: String,
    batch: Batch,
    stats: Arc<IntakeStats>,
}

impl Intake {
    fn run(&mut self, reader: &TopicReader, stop: &AtomicBool) -> Result<()> {
        let mut retry_after: Option<Instant> = None;
        loop {
            let stopping = stop.load(Ordering::Relaxed);
            if !stopping {
                match reader.records.recv_timeout(Duration::from_millis(100)) {
                    Ok(r) => self.read(r),
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                        anyhow::bail!("the reader of the findings topic {} stopped", self.topic)
                    }
                }
            }
            let due = self.batch.findings.len() >= BATCH_MAX
                || self
                    .batch
                    .since
                    .is_some_and(|t| t.elapsed() >= COMMIT_EVERY);
            let may = retry_after.is_none_or(|t| Instant::now() >= t);
            if !self.batch.is_empty() && (stopping || (due && may)) {
                match self.commit() {
                    Ok(()) => retry_after = None,
                    Err(e) if stopping => return Err(e),
                    Err(e) => {
                        // A busy store (a hunt or a feed import holding the
                        // write lock): the batch stays, and is tried again.
                        self.stats.failed_commits.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            "serve: cannot keep {} findings from {} yet, trying again in 1 s: {e:#}",
                            self.batch.findings.len(),
                            self.topic
                        );
                        retry_after = Some(Instant::now() + Duration::from_secs(1));
                    }
                }
            }
            if stopping {
                return Ok(());
            }
        }
    }

    fn read(&mut self, r: RawRecord) {
        self.stats.messages.fetch_add(1, Ordering::Relaxed);
        self.batch.offsets.insert(r.partition, r.offset + 1);
        self.batch.since.get_or_insert_with(Instant::now);
        // A tombstone (a compacted topic's deletion) brings nothing.
        let Some(value) = r.value else { return };
        match serde_json::from_slice::<Finding>(&value) {
            Ok(f) => self.batch.add(f),
            Err(e) => {
                let n = self.stats.malformed.fetch_add(1, Ordering::Relaxed) + 1;
                if n <= 10 || n.is_power_of_two() {
                    tracing::error!(
                        "serve: {}/{} offset {}: not a finding, skipped ({n} so far; is something other than orbwatch workers writing to this topic?): {e}",
                        self.topic,
                        r.partition,
                        r.offset
                    );
                }
            }
        }
    }

    /// Keep the batch's findings and offsets in one transaction.
    fn commit(&mut self) -> Result<()> {
        let path: PathBuf = self.store.path().to_path_buf();
        let rows: Vec<TailOffset> = self
            .batch
            .offsets
            .iter()
            .map(|(p, o)| TailOffset::kafka(offset_key(&self.topic, *p), *o))
            .collect();
        let tx = self.store.write_transaction()?;
        orbwatch_store::findings::keep_live(&tx, &path, self.run_id, &self.batch.findings, None)?;
        orbwatch_store::save_tail_offsets(&tx, &rows, Timestamp::now())?;
        tx.commit()
            .with_context(|| format!("cannot commit to the store {}", path.display()))?;
        self.stats
            .findings_kept
            .fetch_add(self.batch.findings.len() as u64, Ordering::Relaxed);
        self.stats.commits.fetch_add(1, Ordering::Relaxed);
        self.batch = Batch::default();
        Ok(())
    }
}

/// The offsets the store keeps for `topic` (partition -> next offset).
fn kept_offsets(store: &Store, topic: &str) -> Result<BTreeMap<i32, i64>> {
    let prefix = offset_key(topic, 0);
    let prefix = &prefix[..prefix.len() - 1];
    Ok(store
        .load_tail_offsets()?
        .into_iter()
        .filter_map(|r| {
            let p = r.path.strip_prefix(prefix)?.parse().ok()?;
            Some((p, i64::try_from(r.position).ok()?))
        })
        .collect())
}
