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
    /// Events dropped as sent again: a stage-2 task that took a partition
    /// over raised them at an origin its previous owner had sent already.
    pub repeated: u64,
    pub findings: u64,
    /// Account and host names held now and given back once nothing held
    /// them, the same of IPv6 addresses, and accounts forgotten over
    /// `max_accounts` (see `LiveStats`' fields of the same names).
    pub names_kept: usize,
    pub names_forgotten: u64,
    pub addresses_kept: usize,
    pub addresses_forgotten: u64,
    pub accounts_forgotten: u64,
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
    /// Per observations partition, the origin of the last event taken
    /// (see [`crate::summary_wire::Origin`]).
    taken_from: HashMap<i32, (i64, u32)>,
    flagged: HashSet<NodeId>,
    /// Events up to this time (ms) have gone to the detector.
    released: i64,
    next_evidence: u64,
    out: Vec<Finding>,
    stats: CrossStats,
    /// Names and IPv6 addresses are given back when this many names, or
    /// this many addresses, are kept (as in `LivePipeline`, which see).
    names_sweep_at: usize,
    addresses_sweep_at: usize,
}

/// The names (or addresses) kept before stage 3 first gives back those
/// no one holds.
const SWEEP_FLOOR: usize = 1 << 16;

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
            taken_from: HashMap::new(),
            flagged: HashSet::new(),
            released: i64::MIN,
            next_evidence: 0,
            out: Vec::new(),
            stats: CrossStats::default(),
            names_sweep_at: SWEEP_FLOOR,
            addresses_sweep_at: SWEEP_FLOOR,
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
        if let Some(o) = s.origin {
            // A task rebuilt after a takeover raises the events of its
            // partition again from the committed offset on; what the
            // previous owner sent of them is dropped here. Each
            // partition's events come in origin order: one task at a time
            // owns it, and the topic has one partition.
            let at = (o.offset, o.index);
            match self.taken_from.get_mut(&o.partition) {
                Some(last) if at <= *last => {
                    self.stats.repeated += 1;
                    return;
                }
                Some(last) => *last = at,
                None => {
                    self.taken_from.insert(o.partition, at);
                }
            }
        }
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
        if self.tables.names.kept() >= self.names_sweep_at
            || self.tables.ips.kept() >= self.addresses_sweep_at
        {
            self.forget_unheld(SWEEP_FLOOR);
        }
    }

    /// Give back the names and IPv6 addresses that neither the detector
    /// nor the events waiting for it hold, nor the flagged sources (see
    /// `LivePipeline`'s sweep, the same for the same reason); sweeps
    /// again when those kept double, and not below `floor`.
    fn forget_unheld(&mut self, floor: usize) {
        let mut keep = self.tables.held_ids();
        self.detectors.mark_held(&mut keep);
        self.pending.iter().for_each(|e| e.mark_held(&mut keep));
        self.flagged.iter().for_each(|&s| keep.mark_node(s));
        let forgotten = self.tables.forget_unheld(&keep);
        self.stats.names_forgotten += forgotten.names as u64;
        self.stats.addresses_forgotten += forgotten.addresses as u64;
        (self.names_sweep_at, self.addresses_sweep_at) = self.tables.next_sweep_at(floor);
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
        let counts = self.stats();
        self.stats.names_kept = counts.names_kept;
        self.stats.addresses_kept = counts.addresses_kept;
        self.stats.accounts_forgotten = counts.accounts_forgotten;
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
        let mut s = self.stats.clone();
        s.names_kept = self.tables.names.kept();
        s.addresses_kept = self.tables.ips.kept();
        s.accounts_forgotten = self.detectors.accounts_forgotten();
        s
    }

    /// Producers waited for now.
    pub fn producers(&self) -> usize {
        self.producers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orbwatch_detect::FindingKind;
    use orbwatch_detect::behaviour::simulator::{SprayScenario, simulate};
    use orbwatch_detect::behaviour::{LiveDetectors, Part};

    /// (id, count, top source, members) of the campaign findings.
    type Campaign = (String, u64, Option<std::net::IpAddr>, Vec<std::net::IpAddr>);

    fn campaigns<'a>(fs: impl Iterator<Item = &'a Finding>) -> Vec<Campaign> {
        let mut v: Vec<Campaign> = fs
            .filter(|f| f.kind == FindingKind::DistributedBruteforce)
            .map(|f| (f.id.clone(), f.count, f.src_ip, f.sources.clone()))
            .collect();
        v.sort();
        v
    }

    /// A producer that announced itself and went silent (a stage-2
    /// worker killed, or without partitions) holds the others' events
    /// until it has been silent for PRODUCER_IDLE, then no more; one
    /// that said `done` is not waited for at all.
    #[test]
    fn a_silent_producer_is_forgotten_and_a_done_one_not_waited_for() {
        let mut stage3 =
            CrossStage::new(BehaviourConfig::default(), &[], InternalNets::default()).unwrap();
        let t0 = Instant::now();
        let summary = |producer, body| Summary {
            producer,
            origin: None,
            body,
        };
        let login = |time| SummaryBody::Auth {
            time,
            kind: orbwatch_detect::behaviour::ObsKind::AuthFailure,
            src: crate::obs_wire::WireNode::Addr("203.0.113.9".parse().unwrap()),
            service: "ssh".into(),
            account: "deploy".into(),
            brute: false,
            first_try: true,
        };
        stage3.handle(&summary(1, SummaryBody::Watermark { time: i64::MIN }), t0);
        stage3.handle(&summary(2, SummaryBody::Watermark { time: i64::MIN }), t0);
        stage3.handle(&summary(3, SummaryBody::Watermark { time: i64::MIN }), t0);
        stage3.handle(&summary(1, login(1_000)), t0);
        stage3.handle(&summary(1, SummaryBody::Watermark { time: 5_000 }), t0);
        assert_eq!(stage3.watermark(), i64::MIN, "2 and 3 are waited for");
        stage3.handle(&summary(3, SummaryBody::Done), t0);
        assert_eq!(stage3.producers(), 2);
        // A watermark of 3 after its `done` does not bring it back.
        stage3.handle(&summary(3, SummaryBody::Watermark { time: 0 }), t0);
        assert_eq!(stage3.producers(), 2);
        stage3.tick(t0 + PRODUCER_IDLE / 2);
        assert_eq!(stage3.watermark(), i64::MIN, "2 is still waited for");
        stage3.handle(
            &summary(1, SummaryBody::Watermark { time: 6_000 }),
            t0 + PRODUCER_IDLE,
        );
        stage3.tick(t0 + PRODUCER_IDLE);
        assert_eq!(stage3.watermark(), 6_000, "2 is forgotten, 1 goes on");
        let s = stage3.stats();
        assert_eq!(
            (s.producers_done, s.producers_forgotten, s.events),
            (1, 1, 1)
        );
        // A forgotten producer that speaks again is waited for again.
        stage3.handle(
            &summary(2, SummaryBody::Watermark { time: 2_000 }),
            t0 + PRODUCER_IDLE,
        );
        assert_eq!(stage3.watermark(), 2_000);
        stage3.handle(&summary(2, login(1_500)), t0 + PRODUCER_IDLE);
        assert_eq!(stage3.stats().late, 1, "older than what was judged (6,000)");
    }

    /// A simulated spray campaign split by source over two "stage-2"
    /// detectors, their cross events sent through the wire (one
    /// producer's whole stream before the other's: stage 3 must wait for
    /// the slow one's watermark) and judged by one `CrossStage`: the same
    /// campaigns, ids, counts and members as one process's detectors.
    /// Records idle after 2 days, so idle-record events flow all along,
    /// and a gap of 3 days ends the first campaign mid-stream.
    #[test]
    fn split_detectors_and_stage_3_give_the_one_process_campaigns() {
        let mut month = simulate(&SprayScenario {
            days: 12,
            campaign_sources: 300,
            accounts: 120,
            users: 60,
            scanners_per_day: 10,
            persistent_scanners: 15,
            ..Default::default()
        });
        month.buffer.sort();
        // Nothing on days 4 to 6: the run of failures goes quiet and is
        // judged while the stream goes on (when every producer's
        // watermark has passed it), then a second run begins.
        let t0 = month.buffer.obs[0].time;
        let day = 86_400_000;
        month
            .buffer
            .obs
            .retain(|o| o.time < t0 + 4 * day || o.time >= t0 + 7 * day);
        let mut cfg = BehaviourConfig::default();
        cfg.distributed.idle_secs = 2 * 86_400;
        let enricher = Enricher::none();
        let t = &month.buffer.tables;
        let obs = &month.buffer.obs;
        const STEP: usize = 500;

        // One process.
        let mut one = LiveDetectors::new(&cfg, &enricher);
        let mut expected = Vec::new();
        for (i, o) in obs.iter().enumerate() {
            one.observe(o, t);
            if i % STEP == STEP - 1 {
                one.advance(o.time, t);
                expected.extend(one.take_drafts().into_iter().map(|d| d.finding));
            }
        }
        expected.extend(one.take_drafts().into_iter().map(|d| d.finding));
        expected.extend(one.finish(t).into_iter().map(|d| d.finding));
        let expected = campaigns(expected.iter());
        assert_eq!(expected.len(), 2, "the spray before and after the gap");

        // Two stage-2 detectors, each on its sources, and their summaries;
        // each announces itself first, as a stage-2 worker does when it
        // starts.
        let mut wire: Vec<Vec<u8>> = vec![
            Summary::watermark(100, i64::MIN),
            Summary::watermark(101, i64::MIN),
        ];
        for index in 0..2 {
            let producer = 100 + index as u64;
            let part = Part { index, count: 2 };
            let mut d = LiveDetectors::new(&cfg, &enricher);
            d.export_cross();
            let send = |d: &mut LiveDetectors, wire: &mut Vec<Vec<u8>>| {
                for e in d.take_exported() {
                    wire.push(Summary::from_cross(&e, t, producer).encode());
                }
            };
            for (i, o) in obs.iter().enumerate() {
                if part.owns(o.src, t) {
                    d.observe(o, t);
                }
                if i % STEP == STEP - 1 {
                    d.advance(o.time, t);
                    send(&mut d, &mut wire);
                    wire.push(Summary::watermark(producer, o.time));
                }
            }
            send(&mut d, &mut wire);
            let end = d.finish_parts(t);
            for e in &end.cross {
                wire.push(Summary::from_cross(e, t, producer).encode());
            }
            for s in &end.flagged {
                wire.push(Summary::flagged(*s, t, producer).encode());
            }
            wire.push(
                Summary {
                    producer,
                    origin: None,
                    body: SummaryBody::Done,
                }
                .encode(),
            );
        }
        let mut stage3 = CrossStage::new(cfg.clone(), &[], InternalNets::default()).unwrap();
        let now = Instant::now();
        let mut found = Vec::new();
        for m in &wire {
            stage3.handle(&Summary::decode(m).unwrap(), now);
            found.extend(stage3.take_findings());
        }
        let (last, stats) = stage3.finish();
        found.extend(last);
        assert_eq!(stats.late, 0);
        assert_eq!(stats.producers_done, 2);
        let got = campaigns(found.iter());
        println!(
            "{} summaries ({} events) for {} observations; campaigns: {:?}",
            wire.len(),
            stats.events,
            obs.len(),
            got.iter()
                .map(|c| (&c.0, c.1, c.3.len()))
                .collect::<Vec<_>>()
        );
        assert_eq!(got, expected);

        // A stage-3 worker killed a quarter of the way through the topic
        // (the first campaign open, its events waiting for the second
        // producer's watermark) and a standby that takes the partition
        // over at that offset. Rebuilt from the summaries before it, what
        // that judges dropped (the killed worker wrote it), the standby
        // gives the one process's campaigns; started empty, it does not.
        let k = wire.len() / 4;
        let takeover = |rebuild: bool| {
            let stage = || CrossStage::new(cfg.clone(), &[], InternalNets::default()).unwrap();
            let mut written = Vec::new();
            let mut killed = stage();
            for m in &wire[..k] {
                killed.handle(&Summary::decode(m).unwrap(), now);
                written.extend(killed.take_findings());
            }
            let mut standby = stage();
            if rebuild {
                for m in &wire[..k] {
                    standby.handle(&Summary::decode(m).unwrap(), now);
                }
                drop(standby.take_findings());
            }
            for m in &wire[k..] {
                standby.handle(&Summary::decode(m).unwrap(), now);
                written.extend(standby.take_findings());
            }
            written.extend(standby.finish().0);
            let latest: BTreeMap<String, Finding> =
                written.into_iter().map(|f| (f.id.clone(), f)).collect();
            campaigns(latest.values())
        };
        assert_eq!(takeover(true), expected);
        assert_ne!(takeover(false), expected);
    }
}
