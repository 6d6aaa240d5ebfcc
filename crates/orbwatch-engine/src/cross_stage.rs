//! Stage 3 of a split Kafka topology: the cross-source detector
//! (distributed brute force) over the summaries of every stage-2 worker.
//!
//! ```text
//!  summaries topic (1 partition) ──► per producer: events + watermark
//!                                         │ merged up to the slowest
//!                                         ▼ producer's watermark, in CrossEvent::key order
//!                                   CrossDetectors (Campaigns) ──► distributed_bruteforce
//! ```
//!
//! Each stage-2 worker sends its cross events in key order, and its
//! watermark after them. Events wait here until every producer still
//! running has passed their time; then they go to the detector sorted by
//! [`CrossEvent::key`], the order one process gives them (what the merge
//! of a hunt's partitions does, `merge_cross`), so the campaigns and
//! their ids and counts do not depend on how sources were split.
//!
//! A producer that stops says so (`done`, after its end-of-input events
//! and its flagged sources) and is waited for no more; one silent for
//! [`PRODUCER_IDLE`] (killed) is forgotten, as stage 2 forgets a stage-1
//! producer.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hashbrown::{HashMap, HashSet};
use orbwatch_detect::behaviour::observe::{NodeId, Tables};
use orbwatch_detect::behaviour::{BehaviourConfig, CrossDetectors, CrossEvent, orb_likelihood};
use orbwatch_detect::enrich::Enricher;
use orbwatch_detect::{Finding, InternalNets};

use crate::EngineError;
use crate::summary_wire::{Summary, SummaryBody};

/// A producer not heard from for this long (wall clock) is no longer
/// waited for: stage 2 writes its watermark at least every second.
pub const PRODUCER_IDLE: Duration = Duration::from_secs(60);

/// Counts for the worker's last line.
#[derive(Debug, Default, Clone)]
pub struct CrossStats {
    /// Login and idle-record events taken in.
    pub events: u64,
    pub watermarks: u64,
    /// Producers that said they stopped, and producers forgotten after
    /// [`PRODUCER_IDLE`] without a word.
    pub producers_done: u64,
    pub producers_forgotten: u64,
    /// Events older than what was already judged (a stage-2 late
    /// observation): still counted, out of order.
    pub late: u64,
    pub findings: u64,
}

struct Producer {
    clock: i64,
    heard: Instant,
}

/// See the module docs.
pub struct CrossStage {
    tables: Tables,
    detectors: CrossDetectors<'static>,
    cfg: &'static BehaviourConfig,
    enricher: &'static Enricher,
    internal: InternalNets,
    producers: HashMap<u64, Producer>,
    done: HashSet<u64>,
    /// Events waiting for every producer's watermark.
    pending: Vec<CrossEvent>,
    flagged: HashSet<NodeId>,
    /// Events up to this time (ms) have gone to the detector.
    released: i64,
    next_evidence: u64,
    out: Vec<Finding>,
    stats: CrossStats,
}

impl CrossStage {
    /// A stage with the behaviour settings of the other stages (the
    /// `[distributed]` thresholds must be the same as theirs) and the
    /// enrichment databases (ASN) of `--stage all`.
    pub fn new(
        cfg: BehaviourConfig,
        enrichment_dbs: &[&std::path::Path],
        internal: InternalNets,
    ) -> Result<Self, EngineError> {
        let enricher =
            Enricher::open(enrichment_dbs).map_err(|e| EngineError::Enrichment(e.to_string()))?;
        // Leaked as LivePipeline's are: one per process, for its life.
        let cfg: &'static BehaviourConfig = Box::leak(Box::new(cfg));
        let enricher: &'static Enricher = Box::leak(Box::new(enricher));
        Ok(Self {
            tables: Tables::new(),
            detectors: CrossDetectors::new(cfg, enricher),
            cfg,
            enricher,
            internal,
            producers: HashMap::new(),
            done: HashSet::new(),
            pending: Vec::new(),
            flagged: HashSet::new(),
            released: i64::MIN,
            next_evidence: 0,
            out: Vec::new(),
            stats: CrossStats::default(),
        })
    }

    /// Take one summary.
    pub fn handle(&mut self, s: &Summary, now: Instant) {
        if self.done.contains(&s.producer) {
            // A stopped producer's last watermark after its `done`.
            return;
        }
        let p = self.producers.entry(s.producer).or_insert(Producer {
            clock: i64::MIN,
            heard: now,
        });
        p.heard = now;
        match &s.body {
            SummaryBody::Watermark { time } => {
                self.stats.watermarks += 1;
                p.clock = p.clock.max(*time);
                self.release();
            }
            SummaryBody::Done => {
                self.stats.producers_done += 1;
                self.producers.remove(&s.producer);
                self.done.insert(s.producer);
                self.release();
            }
            SummaryBody::Flagged { src } => {
                let id = src.id(&mut self.tables);
                self.flagged.insert(id);
            }
            SummaryBody::Auth { .. } | SummaryBody::Idle { .. } => {
                let evidence = self.next_evidence;
                self.next_evidence += 1;
                if let Some(e) = s.to_cross(&mut self.tables, evidence) {
                    self.stats.events += 1;
                    if e.key().0 <= self.released {
                        self.stats.late += 1;
                    }
                    self.pending.push(e);
                }
            }
        }
    }

    /// Forget producers silent for [`PRODUCER_IDLE`] (a stage-2 worker
    /// killed without a word): the others go on without it.
    pub fn tick(&mut self, now: Instant) {
        let before = self.producers.len();
        self.producers.retain(|id, p| {
            let keep = now.saturating_duration_since(p.heard) < PRODUCER_IDLE;
            if !keep {
                tracing::warn!(
                    "stage 3: stage-2 producer {id:016x} silent for {} s, no longer waited for (its later summaries, if any, count as late)",
                    PRODUCER_IDLE.as_secs()
                );
            }
            keep
        });
        if self.producers.len() != before {
            self.stats.producers_forgotten += (before - self.producers.len()) as u64;
            self.release();
        }
    }

    /// The slowest running producer's watermark (`i64::MIN` before any;
    /// none running: nothing is released until one is, or the end).
    pub fn watermark(&self) -> i64 {
        self.producers
            .values()
            .map(|p| p.clock)
            .min()
            .unwrap_or(i64::MIN)
    }

    /// Give the detector every waiting event up to the watermark, in key
    /// order, and let it judge up to there.
    fn release(&mut self) {
        let mark = self.watermark();
        if mark == i64::MIN {
            return;
        }
        if !self.pending.is_empty() {
            self.pending.sort_unstable_by_key(CrossEvent::key);
            let n = self.pending.partition_point(|e| e.key().0 <= mark);
            for e in self.pending.drain(..n) {
                self.detectors.event(&e, &self.tables);
            }
        }
        if mark > self.released {
            self.detectors.advance(mark, &self.tables);
            self.released = mark;
        }
        let drafts = self.detectors.take_drafts();
        self.out.extend(drafts.into_iter().map(|d| d.finding));
    }

    /// Findings judged since the last call, annotated as `--stage all`
    /// annotates them (no backdoor sightings here: those stay in stage 2).
    pub fn take_findings(&mut self) -> Vec<Finding> {
        let mut found = std::mem::take(&mut self.out);
        self.annotate(&mut found);
        self.stats.findings += found.len() as u64;
        found
    }

    fn annotate(&self, findings: &mut [Finding]) {
        orb_likelihood::annotate(
            findings,
            &BTreeMap::new(),
            self.enricher,
            &self.internal,
            self.cfg.orb.min_score,
        );
    }

    /// Shutdown (the end of input, as `--stage all` judges it when it
    /// stops): every waiting event in key order, then every open run
    /// judged, leaving out the sources stage 2 flagged.
    pub fn finish(mut self) -> (Vec<Finding>, CrossStats) {
        self.pending.sort_unstable_by_key(CrossEvent::key);
        for e in std::mem::take(&mut self.pending) {
            self.detectors.event(&e, &self.tables);
        }
        let mut found = self.take_findings();
        let drafts = std::mem::replace(
            &mut self.detectors,
            CrossDetectors::new(self.cfg, self.enricher),
        )
        .finish(&self.tables, &self.flagged);
        let mut last: Vec<Finding> = drafts.into_iter().map(|d| d.finding).collect();
        self.annotate(&mut last);
        self.stats.findings += last.len() as u64;
        found.extend(last);
        (found, self.stats)
    }

    /// Counts now.
    pub fn stats(&self) -> CrossStats {
        self.stats.clone()
    }

    /// Producers waited for now.
    pub fn producers(&self) -> usize {
        self.producers.len()
    }
}
