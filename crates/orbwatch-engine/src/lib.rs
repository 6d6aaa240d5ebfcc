//! The orbwatch pipeline, one engine for `hunt`, `watch` and Kafka workers.
//!
//! ```text
//!  RecordSource ──► decoder ──► Event ──► IOC match ──► Aggregator ──────────────┐
//!  (file, chunk,    (detected    │        (time window,  (sightings → findings)  │
//!   stdin, tail,     by content, │         direction)                            ▼
//!   socket, Kafka)   or forced)  └──► observations ──► sorted runs ──► detectors ──► FindingsSink
//!                                     (40-byte Obs)    (k-way merge,   (scan, brute    (jsonl, store,
//!                                                       spilled past    force, spray,   alerts…)
//!                                                       a memory cap)   distributed…)
//! ```
//!
//! Why a crate of its own: the loop that turns bytes into findings is the
//! product. `hunt` only resolves flags into [`EngineOptions`] and prints
//! what the engine hands its [`FindingsSink`]; a live daemon and a Kafka
//! worker plug their own [`RecordSource`] and sink into the same code, so
//! that last year's logs replayed and a live stream give the same
//! findings. ripgrep's split is the model: `grep-searcher` searches and the
//! binary wires flags.
//!
//! The seams:
//! - [`RecordSource`] (pull): the engine asks for one record at a time.
//! - [`FindingsSink`] (push): the engine hands over every finding, then
//!   the coverage.
//! - [`Engine::hunt`] drives both for a set of inputs (files, directories
//!   expanded by `orbwatch-source`), in parallel over files and chunks.
//!
//! Behaviour detectors consume observations in event-time order. Each unit
//! of work keeps its observations as sorted runs; the runs are merged
//! (k-way) and replayed through the detectors, so results never depend on
//! thread timing or on how the inputs were cut into chunks. The replay is
//! split by source:
//!
//! ```text
//!  sorted runs ──► partition 0 … N-1 (by the source's /24)  ──► findings
//!                  per-source detectors, one thread each
//!                        │ cross events (one per login attempt,
//!                        ▼  one per idle low-rate source)
//!                  merged in one order ──► Campaigns (distributed spray) ──► findings
//! ```
//!
//! This is the keyed split Kafka workers will use (see
//! `orbwatch_detect::behaviour::Engine`). A live source has no sorted runs:
//! [`event_time::ReorderWindow`] restores event-time order within an
//! allowed lateness, counts late events, and flushes when input goes
//! quiet; the partitions' detectors then `advance` with the watermark.
//!
//! The IOC side is bounded too: past [`IOC_SESSIONS_IN_MEMORY`] sessions
//! (indicator, peer, hour-apart stretch) the sweep's units write theirs
//! out in sorted runs (`held_sessions`), merged back key by key at the
//! end ([`orbwatch_detect::aggregate::finish_merged`]).
//!
//! A hunt's two serial ends each share the cores: the IOC findings are
//! made and written out one at a time (`held_findings`, on disk past a
//! count) on a thread of their own beside the start of the replay; after it, the
//! records behind behaviour findings are read back from the logs
//! ([`behaviour::EvidenceRefs`]) on a thread while the IOC findings, which
//! come first, go to the sink.

pub mod behaviour;
pub mod binary;
pub mod cross_stage;
pub mod event_time;
pub mod feed_wire;
mod held_findings;
mod held_sessions;
pub mod index_cache;
pub mod live;
mod memory;
pub mod obs_wire;
pub mod record_source;
pub mod replay_guard;
pub mod sink;
pub mod summary_wire;
mod sweep;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::Timestamp;
use orbwatch_detect::{Coverage, InternalNets, IocEngine};
use orbwatch_event::decoders::{self, DecoderInfo};
use orbwatch_source::Input;

pub use behaviour::{Behaviour, BehaviourOptions};
pub use binary::ForcedBinary;
pub use event_time::{EventTimeConfig, ReorderStats, ReorderWindow};
pub use live::{
    EVIDENCE_ENTRY_BYTES, LiveOptions, LiveOutput, LivePipeline, LiveStats, OUTPUT_BATCH,
};
pub use record_source::RecordSource;
pub use sink::{FindingsSink, JsonLinesSink};

/// Why the engine could not start or finish a run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("unknown input format {name:?}; known decoders: {known}")]
    UnknownFormat { name: String, known: String },
    #[error(transparent)]
    BehaviourConfig(#[from] orbwatch_detect::behaviour::ConfigError),
    #[error("cannot open the enrichment database: {0}")]
    Enrichment(String),
    #[error("cannot start worker threads: {0}")]
    Threads(String),
    #[error("cannot write findings: {0}")]
    Sink(std::io::Error),
    #[error("{0}")]
    Spill(String),
}

/// How a run reads its inputs. Everything a `hunt` flag decides about the
/// pipeline is here, so `watch` and workers configure it the same way.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Ignore events before / after these instants.
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// A decoder or binary format to use instead of detecting one.
    pub input_format: Option<String>,
    /// Field mapping for the csv/json decoders (`field`, `column`).
    pub map: Vec<(String, String)>,
    /// Year for syslog lines that carry none (default: file's mtime).
    pub year: Option<i16>,
    /// Zone of syslog timestamps without offset (`None`: UTC). Outputs
    /// stay in UTC; the coverage names the zone assumed.
    pub timezone: Option<jiff::tz::TimeZone>,
    /// Evidence records kept per finding (0 = all).
    pub evidence_limit: usize,
    /// Worker threads (0 = all cores).
    pub threads: usize,
    /// Plain files larger than this are cut into line-aligned chunks read
    /// in parallel (default 32 MiB; tests set it small to prove that
    /// chunking changes nothing).
    pub chunk_bytes: u64,
    /// Internal networks (direction of sightings, behaviour).
    pub internal: InternalNets,
    /// Behaviour detectors; `None` makes the run a pure IOC sweep.
    pub behaviour: Option<BehaviourOptions>,
    /// IOC sessions (indicator, peer, in or out of window, hour-apart
    /// stretch) a hunt's sweep holds in memory (default
    /// [`IOC_SESSIONS_IN_MEMORY`]); beyond, they are written out in sorted
    /// runs to `spill_dir` and merged back at the end. Tests set it small
    /// to prove that changes nothing.
    pub ioc_sessions_in_memory: usize,
    /// Where a hunt's temporary files of IOC sessions and findings go
    /// (`None`: the behaviour's `spill_dir`, else the system's temporary
    /// directory).
    pub spill_dir: Option<std::path::PathBuf>,
}

/// IOC sessions a hunt holds in memory by default: about 65 MB at the
/// 1.3 KB a session with its evidence takes (the 1 GB bench hunt holds
/// 35,668, and stays under it).
pub const IOC_SESSIONS_IN_MEMORY: usize = 50_000;

/// Threads per core beyond which more threads only cost: the sweep is
/// CPU-bound, and a thread more than the cores helps only while another
/// waits on the disk.
pub const THREADS_PER_CORE: usize = 4;

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The most worker threads a run starts ([`THREADS_PER_CORE`] per core):
/// a larger `threads` is cut to this. 10,000 threads on a 1.6 KB file took
/// 37 s to start and stop.
pub fn max_threads() -> usize {
    cores() * THREADS_PER_CORE
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            since: None,
            until: None,
            input_format: None,
            map: Vec::new(),
            year: None,
            timezone: None,
            evidence_limit: orbwatch_detect::aggregate::EVIDENCE_CAP,
            threads: 0,
            chunk_bytes: 32 * 1024 * 1024,
            internal: InternalNets::default(),
            behaviour: Some(BehaviourOptions::default()),
            ioc_sessions_in_memory: IOC_SESSIONS_IN_MEMORY,
            spill_dir: None,
        }
    }
}

/// What a hunt leaves besides its findings.
#[derive(Debug)]
pub struct HuntSummary {
    pub coverage: Coverage,
    /// Inputs that could not be read completely (listed in the coverage).
    pub input_errors: usize,
}

/// The compiled indicators, the resolved options and the behaviour
/// detectors' set-up: everything a run shares across its threads.
pub struct Engine {
    /// Shared, not owned: a Kafka worker runs one live pipeline per
    /// partition (see [`Engine::share`]), and an index of ten million
    /// indicators is not copied for each.
    ioc: Arc<IocEngine>,
    options: EngineOptions,
    forced: Option<&'static DecoderInfo>,
    binary: Option<ForcedBinary>,
    behaviour: Option<Arc<Behaviour>>,
    progress: Option<indicatif::ProgressBar>,
    units_done: AtomicU64,
    units_total: AtomicU64,
    sightings: AtomicU64,
}

impl Engine {
    /// Resolve `options` around the compiled indicators `ioc`.
    pub fn new(
        ioc: impl Into<Arc<IocEngine>>,
        options: EngineOptions,
    ) -> Result<Self, EngineError> {
        let ioc = ioc.into();
        let binary = options.input_format.as_deref().and_then(binary::forced);
        let forced = match &options.input_format {
            None => None,
            Some(_) if binary.is_some() => None,
            Some(n) => Some(
                decoders::by_name(n).ok_or_else(|| EngineError::UnknownFormat {
                    name: n.clone(),
                    known: format!(
                        "{}, {}",
                        decoders::names().join(", "),
                        binary::NAMES.join(", ")
                    ),
                })?,
            ),
        };
        let behaviour = match &options.behaviour {
            None => None,
            Some(b) => Some(Arc::new(Behaviour::new(
                b,
                options.internal.clone(),
                binary,
            )?)),
        };
        Ok(Self {
            ioc,
            options,
            forced,
            binary,
            behaviour,
            progress: None,
            units_done: AtomicU64::new(0),
            units_total: AtomicU64::new(0),
            sightings: AtomicU64::new(0),
        })
    }

    /// Another engine on the same indicators, options and enrichment
    /// databases (nothing is copied or opened again), with its own
    /// progress counters: one per Kafka partition a worker owns.
    pub fn share(&self) -> Engine {
        Engine {
            ioc: Arc::clone(&self.ioc),
            options: self.options.clone(),
            forced: self.forced,
            binary: self.binary,
            behaviour: self.behaviour.clone(),
            progress: None,
            units_done: AtomicU64::new(0),
            units_total: AtomicU64::new(0),
            sightings: AtomicU64::new(0),
        }
    }

    /// The compiled indicators.
    pub fn ioc(&self) -> &IocEngine {
        &self.ioc
    }

    /// The options the engine was built with.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Does the run skip decoding records that name no indicator (no
    /// behaviour detectors)?
    fn lazy(&self) -> bool {
        self.behaviour.is_none()
    }

    fn threads(&self) -> usize {
        if self.options.threads > 0 {
            self.options.threads.min(max_threads())
        } else {
            cores()
        }
    }

    fn progress_start(&self, inputs: &[Input], units: usize) {
        self.units_total.store(units as u64, Ordering::Relaxed);
        self.units_done.store(0, Ordering::Relaxed);
        self.sightings.store(0, Ordering::Relaxed);
        if let Some(pb) = &self.progress {
            pb.set_length(inputs.iter().map(|i| i.size).sum());
        }
    }

    fn progress_finish(&self) {
        if let Some(pb) = &self.progress {
            // Cleared by default; a bar built `with_finish(AndLeave)` stays
            // as the line of its phase.
            pb.finish_using_style();
        }
    }

    /// Show a progress bar on stderr for the next run (the caller decides:
    /// only on a terminal, never with `-q`).
    pub fn with_progress_bar(mut self) -> Self {
        let pb = indicatif::ProgressBar::new(0);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} ({bytes_per_sec}) {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        self.progress = Some(pb);
        self
    }

    /// Report the sweep's progress (bytes read and matched) on `pb`, a
    /// bar the caller styles; its length is set to the inputs' size.
    pub fn with_progress(mut self, pb: indicatif::ProgressBar) -> Self {
        self.progress = Some(pb);
        self
    }
}
