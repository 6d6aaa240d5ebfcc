//! The engine side of the behaviour detectors: options, per-unit
//! observation, and the pass after the parallel sweep.
//!
//! Each unit of work (a file or a chunk) turns the events that matter into
//! 48-byte observations in its own buffer, and hands them to the hunt's
//! [`RunCollector`] as sorted runs whenever the buffer fills and when the
//! unit ends. Runs beyond `max_observations` go to disk. After the sweep
//! the runs are merged (k-way) into event-time order and replayed through
//! the detectors, so results depend neither on which thread finished first
//! nor on how inputs were cut into chunks, and memory is bounded by the
//! budget and the detectors' state, not by the input. Evidence text is not
//! kept in memory: the records behind findings are read back from their
//! files by line number at the end.

use std::collections::{BTreeMap, BTreeSet};

use orbwatch_detect::behaviour::observe::ObsBuffer;
use orbwatch_detect::behaviour::runs::{ObsRuns, RunCollector};
use orbwatch_detect::behaviour::{BehaviourConfig, Engine, orb_likelihood};
use orbwatch_detect::enrich::Enricher;
use orbwatch_detect::{BehaviourCoverage, Coverage, Evidence, Finding, InternalNets};
use orbwatch_event::Event;
use orbwatch_source::{Input, LineReader};

use crate::EngineError;
use crate::binary::ForcedBinary;

/// Raw evidence is cut to this many bytes.
const RAW_CAP: usize = 2048;

/// What the behaviour detectors need to be set up: thresholds and the
/// enrichment databases (ASN, country; MaxMind .mmdb or ip2asn TSV).
#[derive(Debug, Clone, Default)]
pub struct BehaviourOptions {
    pub config: BehaviourConfig,
    pub enrichment_dbs: Vec<std::path::PathBuf>,
    /// Where sorted runs of observations go when they exceed the memory
    /// budget (`max_observations`); default: the system's temporary
    /// directory.
    pub spill_dir: Option<std::path::PathBuf>,
    /// IOC findings a hunt keeps in memory while the detectors replay;
    /// beyond, they wait in a temporary file in `spill_dir` (default
    /// [`IOC_FINDINGS_IN_MEMORY`]; tests set 0 to spill always).
    pub ioc_findings_in_memory: Option<usize>,
}

/// IOC findings kept in memory during the replay by default. A hunt over
/// months of logs makes one finding per indicator, peer and hour-apart
/// session (115,995 on 3 GB of the sshd bench corpus, about 2.5 kB each
/// with evidence): held through the replay, they made peak memory grow
/// with the input. Below this many, writing them out is not worth it.
pub const IOC_FINDINGS_IN_MEMORY: usize = 10_000;

/// What the detectors found, before ORB likelihood is added and before
/// the evidence is read back.
pub struct BehaviourFound {
    /// Behaviour findings, in the detectors' order. Their evidence is
    /// empty until [`EvidenceRefs::read_back`] fills it.
    pub findings: Vec<Finding>,
    /// Where each finding's evidence lies, in the order of `findings`.
    pub evidence: EvidenceRefs,
    /// Sources seen on router backdoor ports (for ORB likelihood).
    pub backdoor: BTreeMap<std::net::IpAddr, BTreeSet<u16>>,
}

/// The (input, line, time) of each behaviour finding's evidence records.
///
/// Why apart from the findings: reading the records back goes through
/// every log up to the last wanted line (0.5 s for 1 GB on one core),
/// and nothing else needs the text. A hunt reads them on a thread of its
/// own while it hands the IOC findings to the sink, so the two serial
/// ends of the run share the two cores.
pub struct EvidenceRefs(Vec<Vec<(usize, u64, i64)>>);

impl EvidenceRefs {
    /// Fill the evidence of `findings` (those this was made with, in the
    /// same order) from their files. `binary` is `--input-format` when it
    /// names a binary format, to read records the way the sweep did.
    pub fn read_back(
        self,
        findings: &mut [Finding],
        inputs: &[Input],
        formats: &BTreeMap<usize, String>,
        binary: Option<ForcedBinary>,
    ) {
        let texts = read_back(
            self.0.iter().flat_map(|e| e.iter().map(|e| (e.0, e.1))),
            inputs,
            binary,
        );
        for (f, refs) in findings.iter_mut().zip(self.0) {
            f.evidence = refs
                .iter()
                .map(|(input, line, time)| {
                    let file = inputs
                        .get(*input)
                        .map_or_else(String::new, |i| i.display.clone());
                    let (offset, raw) = texts.get(&(*input, *line)).cloned().unwrap_or((
                        None,
                        "(record not read back: standard input or the file changed)".into(),
                    ));
                    Evidence {
                        file,
                        line: Some(*line),
                        offset,
                        format: formats.get(input).cloned().unwrap_or_default(),
                        raw,
                        time: jiff::Timestamp::from_millisecond(*time).ok(),
                        context: false,
                    }
                })
                .collect();
        }
    }
}

/// Behaviour options resolved once for the hunt.
pub struct Behaviour {
    pub cfg: BehaviourConfig,
    pub internal: InternalNets,
    pub enricher: Enricher,
    /// Where runs beyond the memory budget are written.
    spill_dir: Option<std::path::PathBuf>,
    ioc_findings_in_memory: usize,
    /// `--input-format` when it names a binary format, to read evidence
    /// back the way the sweep read it.
    pub(crate) binary: Option<ForcedBinary>,
}

impl Behaviour {
    /// The detectors set up from `opts`; enrichment databases are opened
    /// now, so a missing or broken one stops the run before any work.
    pub fn new(
        opts: &BehaviourOptions,
        internal: InternalNets,
        binary: Option<ForcedBinary>,
    ) -> Result<Self, EngineError> {
        let dbs: Vec<&std::path::Path> = opts.enrichment_dbs.iter().map(|p| p.as_path()).collect();
        let enricher = Enricher::open(&dbs).map_err(|e| EngineError::Enrichment(e.to_string()))?;
        Ok(Self {
            cfg: opts.config.clone(),
            internal,
            enricher,
            binary,
            spill_dir: opts.spill_dir.clone(),
            ioc_findings_in_memory: opts
                .ioc_findings_in_memory
                .unwrap_or(IOC_FINDINGS_IN_MEMORY),
        })
    }

    /// IOC findings to keep in memory during the replay (see
    /// [`IOC_FINDINGS_IN_MEMORY`]).
    pub fn ioc_findings_in_memory(&self) -> usize {
        self.ioc_findings_in_memory
    }

    /// Where temporary files of the hunt go (`None`: the system's
    /// temporary directory).
    pub fn spill_dir(&self) -> Option<&std::path::Path> {
        self.spill_dir.as_deref()
    }

    /// The ORB likelihood of every source observed in `orb` (every
    /// finding of the run, in output order), with the backdoor ports and
    /// address space added.
    pub fn orb_scores(
        &self,
        orb: orb_likelihood::OrbLikelihood,
        backdoor: &BTreeMap<std::net::IpAddr, BTreeSet<u16>>,
    ) -> orb_likelihood::OrbScores {
        orb.score(
            backdoor,
            &self.enricher,
            &self.internal,
            self.cfg.orb.min_score,
        )
    }

    /// Record what `ev` (line `line` of input `input`) means for the
    /// detectors.
    pub fn observe(&self, buf: &mut ObsBuffer, ev: &Event, input: usize, line: u64) {
        let r = orbwatch_detect::behaviour::observe::evidence_ref(input, line);
        buf.observe(ev, r, &self.internal, &self.cfg.orb.backdoor_ports);
    }

    /// A collector for the runs of one hunt: at most `max_observations`
    /// observations stay in memory, the rest go to sorted runs on disk
    /// under `spill_dir` (default: the system's temporary directory).
    /// Runs are split as they are handed over into one sub-run per
    /// partition of the replay (`partitions`, as later given to
    /// [`finish`](Self::finish)), so that each partition reads only its
    /// own observations.
    pub fn collector(&self, partitions: usize) -> RunCollector {
        RunCollector::new(self.cfg.max_observations, self.spill_dir.clone())
            .with_partitions(partitions)
    }

    /// Run the detectors over everything observed (per-source detectors
    /// split into `partitions` threads) and note what happened in the
    /// coverage. The caller reads the evidence back
    /// ([`EvidenceRefs::read_back`]) and adds ORB likelihood
    /// ([`Behaviour::orb_scores`]), which sees every finding of the run.
    pub fn finish(
        &self,
        runs: ObsRuns,
        partitions: usize,
        coverage: &mut Coverage,
    ) -> BehaviourFound {
        let mut findings = Vec::new();
        let engine = Engine {
            cfg: &self.cfg,
            enricher: &self.enricher,
            partitions,
        };
        let mut cov = BehaviourCoverage {
            observations: runs.len(),
            untimed: runs.untimed,
            ..Default::default()
        };
        let replay_clock = std::time::Instant::now();
        let (found, backdoor, limits) = engine.run_runs(&runs);
        cov.notes.extend(limits.notes(&self.cfg));
        tracing::info!(
            "behaviour: {} observations replayed in {:.2} s in {partitions} partitions ({} runs spilled to disk, {} observations)",
            runs.len(),
            replay_clock.elapsed().as_secs_f64(),
            runs.spilled_runs,
            runs.spilled_obs
        );
        if runs.spilled_runs > 0 {
            cov.notes.push(format!(
                "{} observations were more than max_observations ({}) could hold in memory: {} sorted runs went to a temporary directory and were merged back (same findings, more disk)",
                runs.len(),
                self.cfg.max_observations,
                runs.spilled_runs
            ));
        }
        cov.notes.extend(runs.problems.iter().cloned());
        for e in runs.read_errors() {
            cov.dropped += 1;
            cov.notes.push(format!(
                "{e}: behaviour findings may be incomplete (the disk or temporary directory failed during the hunt)"
            ));
        }
        drop(runs);
        let mut refs = Vec::with_capacity(found.len());
        for bf in found {
            let mut f = bf.finding;
            f.evidence = Vec::new();
            f.evidence_total = bf.evidence_total;
            refs.push(bf.evidence);
            *cov.findings.entry(f.kind.to_string()).or_default() += 1;
            findings.push(f);
        }
        cov.notes.push(self.enricher.note());
        if cov.untimed > 0 {
            cov.notes.push(format!(
                "{} auth, probe or flow events had no time and were left out of behaviour detection",
                cov.untimed
            ));
        }
        coverage.behaviour = Some(cov);
        BehaviourFound {
            findings,
            evidence: EvidenceRefs(refs),
            backdoor,
        }
    }
}

/// Read the wanted (input, line) records back from their files.
fn read_back(
    wanted: impl Iterator<Item = (usize, u64)>,
    inputs: &[Input],
    binary: Option<ForcedBinary>,
) -> BTreeMap<(usize, u64), (Option<u64>, String)> {
    let mut per: BTreeMap<usize, BTreeSet<u64>> = BTreeMap::new();
    for (i, l) in wanted {
        per.entry(i).or_default().insert(l);
    }
    let mut out = BTreeMap::new();
    for (i, lines) in per {
        let Some(input) = inputs.get(i) else { continue };
        if input.path.is_none() {
            continue;
        }
        // Captures, flows and EVTX: decode again and render the records.
        if let Some(records) = crate::binary::read_back(input, binary, &lines) {
            for (n, (offset, mut text)) in records {
                if text.len() > RAW_CAP {
                    let mut cut = RAW_CAP;
                    while !text.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    text.truncate(cut);
                }
                out.insert((i, n), (offset, text));
            }
            continue;
        }
        let Ok((_, reader)) = orbwatch_source::open(input) else {
            continue;
        };
        // The lines between wanted ones are passed over in bulk.
        let mut lr = LineReader::new(reader);
        let mut read = 0u64;
        for &n in &lines {
            if n <= read {
                continue;
            }
            if lr.skip_lines(n - read - 1).is_err() {
                break;
            }
            let Ok(Some(line)) = lr.next_line() else {
                break;
            };
            read = line.number;
            if line.number == n {
                let cut = &line.bytes[..line.bytes.len().min(RAW_CAP)];
                out.insert(
                    (i, n),
                    (Some(line.offset), String::from_utf8_lossy(cut).into_owned()),
                );
            }
        }
    }
    out
}
