//! The engine side of the behaviour detectors: options, per-unit
//! observation, and the pass after the parallel sweep.
//!
//! Each unit of work (a file or a chunk) turns the events that matter into
//! 40-byte observations in its own buffer. After the sweep the buffers are
//! merged (ids remapped), sorted by event time and replayed through the
//! detectors, so results do not depend on which thread finished first.
//! Memory: 40 bytes per observation plus the interned addresses and names;
//! at most `max_observations` (default 25 million, about 1 GB) are kept
//! across the hunt, and the coverage says how many were dropped beyond
//! that. Evidence text is not kept in memory: the records behind findings
//! are read back from their files by line number at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};

use orbwatch_detect::behaviour::observe::ObsBuffer;
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
}

/// Behaviour options resolved once for the hunt.
pub struct Behaviour {
    pub cfg: BehaviourConfig,
    pub internal: InternalNets,
    pub enricher: Enricher,
    kept: AtomicU64,
    /// `--input-format` when it names a binary format, to read evidence
    /// back the way the sweep read it.
    binary: Option<ForcedBinary>,
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
            kept: AtomicU64::new(0),
            binary,
        })
    }

    /// Record what `ev` (line `line` of input `input`) means for the
    /// detectors.
    pub fn observe(&self, buf: &mut ObsBuffer, ev: &Event, input: usize, line: u64) {
        let room = self.kept.load(Ordering::Relaxed) < self.cfg.max_observations;
        let r = orbwatch_detect::behaviour::observe::evidence_ref(input, line);
        let n = buf.observe(ev, r, &self.internal, &self.cfg.orb.backdoor_ports, room);
        if n > 0 {
            self.kept.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// Run the detectors over everything observed, read back evidence,
    /// add ORB likelihood to all findings, and note what happened in the
    /// coverage.
    pub fn finish(
        &self,
        mut buf: ObsBuffer,
        inputs: &[Input],
        formats: &BTreeMap<usize, String>,
        findings: &mut Vec<Finding>,
        coverage: &mut Coverage,
    ) {
        let engine = Engine {
            cfg: &self.cfg,
            enricher: &self.enricher,
        };
        let mut cov = BehaviourCoverage {
            observations: buf.len() as u64,
            untimed: buf.untimed,
            dropped: buf.dropped,
            ..Default::default()
        };
        let found = engine.run(&mut buf);
        let backdoor = orb_likelihood::backdoor_sources(&buf);
        drop(buf);
        let texts = read_back(
            found
                .iter()
                .flat_map(|f| f.evidence.iter().map(|e| (e.0, e.1))),
            inputs,
            self.binary,
        );
        for bf in found {
            let mut f = bf.finding;
            f.evidence = bf
                .evidence
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
            f.evidence_total = bf.evidence_total;
            *cov.findings.entry(f.kind.to_string()).or_default() += 1;
            findings.push(f);
        }
        orb_likelihood::annotate(
            findings,
            &backdoor,
            &self.enricher,
            &self.internal,
            self.cfg.orb.min_score,
        );
        cov.notes.push(self.enricher.note());
        if cov.dropped > 0 {
            cov.notes.push(format!(
                "{} auth, probe or flow events were not observed: the limit of {} observations (max_observations) was reached, so behaviour findings may be incomplete; hunt fewer files at once or raise the limit",
                cov.dropped, self.cfg.max_observations
            ));
        }
        if cov.untimed > 0 {
            cov.notes.push(format!(
                "{} auth, probe or flow events had no time and were left out of behaviour detection",
                cov.untimed
            ));
        }
        coverage.behaviour = Some(cov);
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
        let Some(&last) = lines.last() else { continue };
        let mut lr = LineReader::new(reader);
        while let Ok(Some(line)) = lr.next_line() {
            if lines.contains(&line.number) {
                let cut = &line.bytes[..line.bytes.len().min(RAW_CAP)];
                out.insert(
                    (i, line.number),
                    (Some(line.offset), String::from_utf8_lossy(cut).into_owned()),
                );
            }
            if line.number >= last {
                break;
            }
        }
    }
    out
}
