//! Sorted runs of observations and their k-way merge: event-time order for
//! the detectors without holding every observation of a hunt in memory.
//!
//! Detectors must see observations in event-time order (that is what makes
//! their answers exact and independent of thread timing), but a hunt over
//! months of logs gives far more observations than memory should hold.
//! So, as in an external sort:
//! - each unit of work (a file or a chunk of one) hands its observations
//!   over as **runs**, each sorted by [`order_key`], whenever its buffer
//!   fills up and when it ends;
//! - runs stay in memory while the observations held stay under the
//!   budget (`max_observations`); beyond it a run is written to a
//!   temporary file (48 bytes per observation) and read back later;
//! - [`ObsRuns::stream`] merges all runs (a binary heap over their heads)
//!   into one stream in the same order a global sort would give.
//!   It can be called again: the detectors read the stream once, and the
//!   evidence of their findings is picked in a second pass.
//!
//! Memory is then bounded by the budget, the per-unit buffers and the
//! merge's read buffers (64 KiB per spilled run), not by the input.
//!
//! Ids of IPv6 addresses and names are those of the unit's own tables
//! until the end; then the units' tables are merged in (input, chunk)
//! order, as if one thread had read everything, and each run's ids are
//! mapped as it is merged. So ids, and whatever detectors derive from
//! them, do not depend on which thread finished first.
//!
//! Line numbers inside a chunk are counted from the chunk's start; the
//! number of lines before each chunk is known only when every chunk is
//! read, so each run keeps a `line_base` added to its evidence references
//! as it is merged (a constant per run: the run's order is unchanged).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use std::collections::BTreeMap;

use super::Part;
use super::observe::{Obs, ObsBuffer, ObsKind, Remap, Tables, order_key};

/// Bytes of one observation in a spill file.
const RECORD: usize = 48;

/// One sorted run.
#[derive(Debug)]
struct Run {
    input: usize,
    chunk: usize,
    len: usize,
    /// Lines before this run's chunk in its input (set at the end).
    line_base: u64,
    /// Index of its unit's id map in `ObsRuns::remaps` (set at the end).
    remap: usize,
    data: RunData,
}

#[derive(Debug)]
enum RunData {
    Memory(Vec<Obs>),
    Disk(PathBuf),
}

#[derive(Debug, Default)]
struct Inner {
    /// Each unit's own tables, once the unit is over.
    units: BTreeMap<(usize, usize), Tables>,
    runs: Vec<Run>,
    in_memory: u64,
    spill: Option<tempfile::TempDir>,
    spilled_runs: u64,
    spilled_obs: u64,
    untimed: u64,
    problems: Vec<String>,
}

/// Gathers the runs of every unit of a hunt; shared by the sweep's
/// threads.
#[derive(Debug)]
pub struct RunCollector {
    inner: Mutex<Inner>,
    budget: u64,
    unit_cap: usize,
    spill_parent: Option<PathBuf>,
}

impl RunCollector {
    /// Keep at most `budget` observations in memory across runs (0: no
    /// limit); spill the rest under `spill_parent` (default: the system's
    /// temporary directory).
    pub fn new(budget: u64, spill_parent: Option<PathBuf>) -> Self {
        let unit_cap = if budget == 0 {
            usize::MAX
        } else {
            (budget / 8).clamp(1024, 1 << 20) as usize
        };
        Self {
            inner: Mutex::new(Inner::default()),
            budget,
            unit_cap,
            spill_parent,
        }
    }

    /// Hand `buf` over as a run once it holds as many observations as a
    /// unit may buffer (an eighth of the budget, 1,024 to about a
    /// million); called after each event of a unit.
    pub fn add_if_full(&self, input: usize, chunk: usize, buf: &mut ObsBuffer) {
        if buf.len() >= self.unit_cap {
            self.add(input, chunk, buf, false);
        }
    }

    /// Hand over what `buf` holds as one sorted run of unit (`input`,
    /// `chunk`). With `last`, the unit is over (per-hour sums are flushed
    /// and its counters taken).
    pub fn add(&self, input: usize, chunk: usize, buf: &mut ObsBuffer, last: bool) {
        let mut inner = match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let run = buf.take_run(last);
        if last {
            inner.untimed += std::mem::take(&mut buf.untimed);
            inner
                .units
                .insert((input, chunk), std::mem::take(&mut buf.tables));
        }
        if run.is_empty() {
            return;
        }
        let len = run.len();
        let over = self.budget > 0 && inner.in_memory + len as u64 > self.budget;
        let data = if over {
            match self.spill(&mut inner, &run) {
                Ok(path) => {
                    inner.spilled_runs += 1;
                    inner.spilled_obs += len as u64;
                    RunData::Disk(path)
                }
                Err(e) => {
                    // Keep it in memory rather than lose it; say so.
                    if inner.problems.is_empty() {
                        inner.problems.push(format!(
                            "observations could not be written to a temporary file ({e}); they were kept in memory instead, over the max_observations budget"
                        ));
                    }
                    inner.in_memory += len as u64;
                    RunData::Memory(run)
                }
            }
        } else {
            inner.in_memory += len as u64;
            RunData::Memory(run)
        };
        inner.runs.push(Run {
            input,
            chunk,
            len,
            line_base: 0,
            remap: 0,
            data,
        });
    }

    fn spill(&self, inner: &mut Inner, run: &[Obs]) -> io::Result<PathBuf> {
        if inner.spill.is_none() {
            let mut b = tempfile::Builder::new();
            b.prefix("orbwatch-runs-");
            inner.spill = Some(match &self.spill_parent {
                Some(p) => b.tempdir_in(p)?,
                None => b.tempdir()?,
            });
        }
        let dir = inner
            .spill
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .unwrap_or_default();
        let path = dir.join(format!("run-{}.obs", inner.runs.len()));
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&path)?);
        for o in run {
            w.write_all(&encode(o))?;
        }
        w.flush()?;
        Ok(path)
    }

    /// All runs, with `line_base(input, chunk)` lines added to each run's
    /// evidence references.
    pub fn finish(self, line_base: impl Fn(usize, usize) -> u64) -> ObsRuns {
        let mut inner = match self.inner.into_inner() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        // Merge the units' tables in (input, chunk) order.
        let mut tables = Tables::new();
        let mut remaps = vec![Remap::default()];
        let mut index = BTreeMap::new();
        for (unit, t) in std::mem::take(&mut inner.units) {
            index.insert(unit, remaps.len());
            remaps.push(Remap::new(&t, &mut tables));
        }
        for r in &mut inner.runs {
            r.line_base = line_base(r.input, r.chunk);
            r.remap = index.get(&(r.input, r.chunk)).copied().unwrap_or(0);
        }
        ObsRuns {
            tables,
            remaps,
            len: inner.runs.iter().map(|r| r.len as u64).sum(),
            runs: std::mem::take(&mut inner.runs),
            untimed: inner.untimed,
            spilled_runs: inner.spilled_runs,
            spilled_obs: inner.spilled_obs,
            problems: std::mem::take(&mut inner.problems),
            read_errors: Mutex::new(Vec::new()),
            _spill: inner.spill.take(),
        }
    }
}

/// Every run of a hunt, ready to be merged.
#[derive(Debug)]
pub struct ObsRuns {
    pub tables: Tables,
    remaps: Vec<Remap>,
    runs: Vec<Run>,
    len: u64,
    pub untimed: u64,
    /// Runs written to disk, and their observations.
    pub spilled_runs: u64,
    pub spilled_obs: u64,
    /// What went wrong while keeping observations (said in the coverage).
    pub problems: Vec<String>,
    /// Spilled runs that could not be read back in full, by any stream.
    read_errors: Mutex<Vec<String>>,
    /// Removed (with its files) when the runs are dropped.
    _spill: Option<tempfile::TempDir>,
}

impl ObsRuns {
    /// One in-memory run from a buffer (tests, small inputs).
    pub fn from_buffer(mut buf: ObsBuffer) -> Self {
        let c = RunCollector::new(0, None);
        c.add(0, 0, &mut buf, true);
        c.finish(|_, _| 0)
    }

    /// Spilled runs that streams could not read back in full (each said
    /// once).
    pub fn read_errors(&self) -> Vec<String> {
        match self.read_errors.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Observations in all runs.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every observation of every run, in replay order. Each call starts
    /// a new merge. A spilled run that cannot be read back ends early; the
    /// stream's [`MergedObs::error`] says so.
    pub fn stream(&self) -> MergedObs<'_> {
        self.stream_part(Part::ALL)
    }

    /// The observations of the sources `part` owns, in replay order (see
    /// [`stream`](Self::stream)).
    pub fn stream_part(&self, part: Part) -> MergedObs<'_> {
        self.open(part, true)
    }

    /// The observations of the sources `part` owns, run after run, in no
    /// particular order: for passes that do not need time order (picking
    /// evidence), without the merge's heap.
    pub fn unordered_part(&self, part: Part) -> MergedObs<'_> {
        self.open(part, false)
    }

    fn open(&self, part: Part, ordered: bool) -> MergedObs<'_> {
        let mut cursors = Vec::with_capacity(self.runs.len());
        let mut error = None;
        for r in &self.runs {
            let c = match &r.data {
                RunData::Memory(v) => Cursor::Memory(v.iter()),
                RunData::Disk(p) => match File::open(p) {
                    Ok(f) => Cursor::Disk(BufReader::with_capacity(64 << 10, f), r.len),
                    Err(e) => {
                        error.get_or_insert_with(|| {
                            format!("a spilled run {} cannot be read back: {e}", p.display())
                        });
                        Cursor::Memory([].iter())
                    }
                },
            };
            cursors.push((c, r.line_base, &self.remaps[r.remap]));
        }
        let mut m = MergedObs {
            ordered,
            current: 0,
            part,
            tables: &self.tables,
            cursors,
            heap: BinaryHeap::with_capacity(self.runs.len()),
            error,
            report: &self.read_errors,
        };
        if ordered {
            for i in 0..m.cursors.len() {
                m.refill(i);
            }
        }
        m
    }
}

enum Cursor<'a> {
    Memory(std::slice::Iter<'a, Obs>),
    Disk(BufReader<File>, usize),
}

/// The k-way merge of all runs (see [`ObsRuns::stream`]).
pub struct MergedObs<'a> {
    /// Merge in replay order (a heap over the runs' heads), or read the
    /// runs one after the other (`current`).
    ordered: bool,
    current: usize,
    part: Part,
    tables: &'a Tables,
    cursors: Vec<(Cursor<'a>, u64, &'a Remap)>,
    heap: BinaryHeap<Reverse<Head>>,
    error: Option<String>,
    report: &'a Mutex<Vec<String>>,
}

/// The head of run `run` in the merge's heap, ordered by
/// ([`order_key`], run): a strict order, as a run has one head at a time,
/// so the merged stream is the same however the heap is worked. The key
/// is computed when compared rather than stored beside the observation:
/// a smaller entry moves faster through the heap.
#[derive(Debug, Clone, Copy)]
struct Head {
    obs: Obs,
    run: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (order_key(&self.obs), self.run).cmp(&(order_key(&other.obs), other.run))
    }
}

impl MergedObs<'_> {
    /// Why a run ended early, if one did.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    fn refill(&mut self, i: usize) {
        if let Some(o) = self.read_one(i) {
            self.heap.push(Reverse(Head { obs: o, run: i }));
        }
    }

    /// The next observation of run `i` that the partition owns.
    fn read_one(&mut self, i: usize) -> Option<Obs> {
        let (cursor, base, remap) = &mut self.cursors[i];
        loop {
            let next = match cursor {
                Cursor::Memory(it) => it.next().copied(),
                Cursor::Disk(r, left) => {
                    if *left == 0 {
                        None
                    } else {
                        let mut b = [0u8; RECORD];
                        match r
                            .read_exact(&mut b)
                            .map_err(|e| e.to_string())
                            .and_then(|_| {
                                decode(&b).ok_or_else(|| "a spilled run is damaged".to_string())
                            }) {
                            Ok(o) => {
                                *left -= 1;
                                Some(o)
                            }
                            Err(e) => {
                                *left = 0;
                                self.error.get_or_insert_with(|| {
                                    format!("a spilled run ended early: {e}")
                                });
                                None
                            }
                        }
                    }
                }
            };
            let mut o = remap.apply(next?);
            if !self.part.owns(o.src, self.tables) {
                continue;
            }
            o.evidence += *base;
            return Some(o);
        }
    }

    /// At the end, leave any read error where the caller finds it.
    fn report_error(&mut self) {
        if let Some(e) = self.error.take()
            && let Ok(mut v) = self.report.lock()
            && !v.contains(&e)
        {
            v.push(e);
        }
    }
}

impl Iterator for MergedObs<'_> {
    type Item = Obs;

    fn next(&mut self) -> Option<Obs> {
        if !self.ordered {
            while self.current < self.cursors.len() {
                if let Some(o) = self.read_one(self.current) {
                    return Some(o);
                }
                self.current += 1;
            }
            self.report_error();
            return None;
        }
        let Some(&Reverse(Head { obs, run })) = self.heap.peek() else {
            self.report_error();
            return None;
        };
        // The run's next observation takes the place of the one taken
        // (one sift down; runs of a time-ordered file follow each other,
        // so it mostly stays on top), or the run leaves the heap.
        match self.read_one(run) {
            Some(next) => {
                if let Some(mut top) = self.heap.peek_mut() {
                    *top = Reverse(Head { obs: next, run });
                }
            }
            None => {
                self.heap.pop();
            }
        }
        Some(obs)
    }
}

fn encode(o: &Obs) -> [u8; RECORD] {
    let mut b = [0u8; RECORD];
    b[0..8].copy_from_slice(&o.time.to_le_bytes());
    b[8..16].copy_from_slice(&o.aux.to_le_bytes());
    b[16..24].copy_from_slice(&o.evidence.to_le_bytes());
    b[24..32].copy_from_slice(&o.src.to_le_bytes());
    b[32..40].copy_from_slice(&o.dst.to_le_bytes());
    b[40..42].copy_from_slice(&o.dst_port.to_le_bytes());
    b[42..44].copy_from_slice(&o.svc.to_le_bytes());
    b[44] = o.kind as u8;
    b[45] = o.flags;
    b
}

fn decode(b: &[u8; RECORD]) -> Option<Obs> {
    let u64_at = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(a)
    };
    Some(Obs {
        time: u64_at(0) as i64,
        aux: u64_at(8),
        evidence: u64_at(16),
        src: u64_at(24),
        dst: u64_at(32),
        dst_port: u16::from_le_bytes([b[40], b[41]]),
        svc: u16::from_le_bytes([b[42], b[43]]),
        kind: ObsKind::from_u8(b[44])?,
        flags: b[45],
    })
}

#[cfg(test)]
mod tests {

    /// The figures `BehaviourConfig::max_observations` documents: 48
    /// bytes per observation, 4 million by default (about 192 MB), and a
    /// per-thread buffer of an eighth of it (500,000, about 24 MB).
    #[test]
    fn documented_memory_figures_hold() {
        let budget = super::super::BehaviourConfig::default().max_observations;
        assert_eq!(budget, 4_000_000);
        assert_eq!(std::mem::size_of::<Obs>(), RECORD);
        assert_eq!(budget * RECORD as u64, 192_000_000);
        let c = RunCollector::new(budget, None);
        assert_eq!(c.unit_cap, 500_000);
        assert_eq!(c.unit_cap * RECORD, 24_000_000);
        assert_eq!(RunCollector::new(1, None).unit_cap, 1024);
        assert_eq!(RunCollector::new(u64::MAX, None).unit_cap, 1 << 20);
    }

    use super::*;
    use crate::behaviour::observe::{NONE, NodeId, sort_obs};

    fn obs(time: i64, line: u64, src: NodeId) -> Obs {
        Obs {
            time,
            aux: 7,
            evidence: line,
            src,
            dst: NONE,
            dst_port: 22,
            // Name id 0 (no service): the buffers' name tables are empty.
            svc: 0,
            kind: ObsKind::Probe,
            flags: 0,
        }
    }

    #[test]
    fn records_round_trip() {
        let o = obs(-5, 1 << 40 | 9, 0x0102_0304);
        assert_eq!(decode(&encode(&o)), Some(o));
        let mut b = encode(&o);
        b[44] = 200;
        assert_eq!(decode(&b), None);
    }

    /// Spilled or not, in however many runs, the merge gives the order of
    /// one global sort.
    #[test]
    fn merge_equals_global_sort_with_and_without_spilling() {
        let mut all = Vec::new();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for budget in [0u64, 10, 100_000] {
            let c = RunCollector::new(budget, None);
            all.clear();
            for unit in 0..5usize {
                let mut buf = ObsBuffer::new();
                for line in 0..500u64 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let o = obs((x % 1000) as i64, (unit as u64) << 40 | line, x % 50);
                    buf.obs.push(o);
                    all.push(o);
                    if buf.obs.len() == 128 {
                        c.add(unit, 0, &mut buf, false);
                    }
                }
                c.add(unit, 0, &mut buf, true);
            }
            let runs = c.finish(|_, _| 0);
            if budget == 10 {
                assert!(runs.spilled_runs > 0);
            }
            if budget == 0 {
                assert_eq!(runs.spilled_runs, 0);
            }
            sort_obs(&mut all);
            let merged: Vec<Obs> = runs.stream().collect();
            assert_eq!(merged, all, "budget {budget}");
            // A second pass gives the same stream.
            assert_eq!(runs.stream().count(), all.len());
        }
    }

    #[test]
    fn line_base_is_added_per_run() {
        let c = RunCollector::new(1, None);
        let mut a = ObsBuffer::new();
        a.obs.push(obs(1, 5, 1));
        c.add(0, 1, &mut a, true);
        let runs = c.finish(|input, chunk| if (input, chunk) == (0, 1) { 100 } else { 0 });
        let v: Vec<Obs> = runs.stream().collect();
        assert_eq!(v[0].evidence, 105);
        assert!(runs.stream().error().is_none());
    }
}
