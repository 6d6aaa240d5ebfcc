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
//! The replay runs the per-source detectors in partitions of the sources
//! ([`Part`]), one thread each. So that each partition reads only its own
//! observations, a run handed over is split there and then, on the sweep
//! thread that made it, into one sub-run per partition (in its order: a
//! sub-run is still sorted); a spilled run is written as its sub-runs one
//! after the other in one file. [`ObsRuns::stream_part`] then merges only
//! the partition's sub-runs, instead of merging every run and dropping the
//! observations of other partitions (which read, decoded and tested every
//! observation once per partition). A run kept in memory is split in its
//! own allocation (the largest sub-run stays there, the others are copied
//! out: for a moment, on the sweep thread, that share is held twice); a
//! spilled run is written straight from the unit's buffer, which then
//! serves the unit's next run. Nothing is kept twice.
//!
//! Memory is then bounded by the budget, the per-unit buffers and the
//! merge's read buffers (64 KiB per spilled sub-run), not by the input.
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
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use std::collections::BTreeMap;

use super::Part;
use super::observe::{Obs, ObsBuffer, ObsKind, Remap, Tables, order_key};

/// Bytes of one observation in a spill file.
const RECORD: usize = 48;

/// One sorted run (or, when runs are split by partition, the sub-run of
/// one partition).
#[derive(Debug)]
struct Run {
    input: usize,
    chunk: usize,
    /// The partition whose sources it holds, of [`RunCollector::parts`]
    /// (0 when runs are not split).
    part: usize,
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
    /// `len` records from record `start` of a spill file: the sub-runs of
    /// one spilled run share its file, one after the other.
    Disk(PathBuf, u64),
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

/// Observations a run may hold beyond a unit's cap: the last event
/// before the hand-over may make more than one.
const RUN_SLACK: usize = 64;

/// Gathers the runs of every unit of a hunt; shared by the sweep's
/// threads.
#[derive(Debug)]
pub struct RunCollector {
    inner: Mutex<Inner>,
    budget: u64,
    unit_cap: usize,
    spill_parent: Option<PathBuf>,
    /// Partitions the replay will run (runs are split into one sub-run
    /// each when there are more than one).
    parts: usize,
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
            parts: 1,
        }
    }

    /// Split every run handed over into one sub-run per partition of
    /// `parts` (the replay's [`Part`] count), so that each partition of
    /// the replay reads only its own observations. A stream for another
    /// count still works, by reading every run and testing each source.
    pub fn with_partitions(mut self, parts: usize) -> Self {
        self.parts = parts.max(1);
        self
    }

    /// Give `buf` room for the run a unit of `bytes` bytes (`None`: not
    /// known, as for a compressed input) fills before it is handed over:
    /// at most a unit's cap, and no more than one observation per 16
    /// bytes.
    ///
    /// Why: grown by doubling, each run (up to 24 MB by default) was
    /// copied at every step into new pages, which were faulted in as
    /// well; those copies were a quarter of a 1 GB hunt's page faults.
    /// Capacity not written to is address space only (a large allocation
    /// is backed by pages as they are touched).
    pub fn reserve_run(&self, buf: &mut ObsBuffer, bytes: Option<u64>) {
        if self.unit_cap == usize::MAX || buf.obs.capacity() > 0 {
            return;
        }
        let fits = bytes.map_or(usize::MAX, |b| {
            usize::try_from(b / 16).unwrap_or(usize::MAX)
        });
        buf.obs
            .reserve_exact(self.unit_cap.min(fits).saturating_add(RUN_SLACK));
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
    ///
    /// The run is sorted where it is, in the unit's buffer. A spilled run
    /// is written straight from it and the buffer keeps its memory for the
    /// unit's next run (taking it away made every run grow a new buffer by
    /// doubling, to 24 MB by default, copied at each step and faulted in
    /// as fresh pages, only to write it to disk and free it). A run kept
    /// in memory takes the buffer's memory, as before.
    pub fn add(&self, input: usize, chunk: usize, buf: &mut ObsBuffer, last: bool) {
        // Sorted and assigned to partitions before the lock: that work is
        // the sweep thread's own.
        buf.sort_in_place(last);
        let owners = owners(&buf.obs, &buf.tables, self.parts);
        let mut inner = match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if last {
            inner.untimed += std::mem::take(&mut buf.untimed);
            inner
                .units
                .insert((input, chunk), std::mem::take(&mut buf.tables));
        }
        let run = std::mem::take(&mut buf.obs);
        let spilled = self.hand_over(&mut inner, input, chunk, run, &owners);
        drop(inner);
        if last {
            return;
        }
        match spilled {
            // The unit goes on: its next run reuses this memory.
            Some(mut spilled) => {
                spilled.clear();
                buf.obs = spilled;
            }
            // The run was kept in memory with its buffer: a new one, with
            // room for a whole run.
            None => self.reserve_run(buf, None),
        }
    }

    /// Keep `run` (sorted; `owners` gives each observation's partition)
    /// in memory as sub-runs, or write it to disk when over the budget and
    /// give its memory back for the next run.
    fn hand_over(
        &self,
        inner: &mut Inner,
        input: usize,
        chunk: usize,
        run: Vec<Obs>,
        owners: &Owners,
    ) -> Option<Vec<Obs>> {
        let len = run.len();
        if len == 0 {
            return Some(run);
        }
        let over = self.budget > 0 && inner.in_memory + len as u64 > self.budget;
        let push = |inner: &mut Inner, part: usize, len: usize, data: RunData| {
            // Empty sub-runs are left out: a partition's merge opens only
            // runs that hold something.
            if len > 0 {
                inner.runs.push(Run {
                    input,
                    chunk,
                    part,
                    len,
                    line_base: 0,
                    remap: 0,
                    data,
                });
            }
        };
        if over {
            match self.spill(inner, &run, owners) {
                Ok(path) => {
                    inner.spilled_runs += 1;
                    inner.spilled_obs += len as u64;
                    let mut start = 0u64;
                    for (part, &n) in owners.sizes.iter().enumerate() {
                        push(inner, part, n, RunData::Disk(path.clone(), start));
                        start += n as u64;
                    }
                    return Some(run);
                }
                Err(e) => {
                    // Keep it in memory rather than lose it; say so.
                    if inner.problems.is_empty() {
                        inner.problems.push(format!(
                            "observations could not be written to a temporary file ({e}); they were kept in memory instead, over the max_observations budget"
                        ));
                    }
                }
            }
        }
        inner.in_memory += len as u64;
        for (part, sub) in owners.split(run).into_iter().enumerate() {
            push(inner, part, sub.len(), RunData::Memory(sub));
        }
        None
    }

    /// Write a run to a new spill file as its sub-runs one after the
    /// other, in partition order.
    fn spill(&self, inner: &mut Inner, run: &[Obs], owners: &Owners) -> io::Result<PathBuf> {
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
        let path = dir.join(format!("run-{}.obs", inner.spilled_runs));
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&path)?);
        for part in 0..owners.sizes.len() {
            for o in owners.of_part(run, part) {
                w.write_all(&encode(o))?;
            }
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
            parts: self.parts,
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
    /// Partitions the runs were split into (1: not split).
    parts: usize,
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
        // Runs split for this count of partitions: the partition's own
        // sub-runs hold exactly its sources. Otherwise (everything, or
        // another count) every run is read, and other sources are dropped
        // as they are read.
        let split = self.parts > 1 && part.count == self.parts;
        let filter = (!split && part.count > 1).then_some(part);
        let mine: Vec<&Run> = self
            .runs
            .iter()
            .filter(|r| !split || r.part == part.index)
            .collect();
        let mut cursors = Vec::with_capacity(mine.len());
        let mut error = None;
        for r in mine {
            let c = match &r.data {
                RunData::Memory(v) => Cursor::Memory(v.iter()),
                RunData::Disk(p, start) => match File::open(p).and_then(|mut f| {
                    f.seek(SeekFrom::Start(start * RECORD as u64))?;
                    Ok(f)
                }) {
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
            filter,
            tables: &self.tables,
            heap: BinaryHeap::with_capacity(cursors.len()),
            cursors,
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
    /// The partition to keep, when the runs read are not its own.
    filter: Option<Part>,
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
            if let Some(part) = self.filter
                && !part.owns(o.src, self.tables)
            {
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

/// The partition of each observation of a run, when runs are split by
/// partition (see the module's documentation): a sub-run is the run's
/// observations of one partition, in the run's order (so still sorted).
struct Owners {
    /// Partition of each observation (empty when there is one partition).
    of: Vec<u32>,
    /// Observations per partition.
    sizes: Vec<usize>,
}

fn owners(run: &[Obs], tables: &Tables, parts: usize) -> Owners {
    if parts <= 1 {
        return Owners {
            of: Vec::new(),
            sizes: vec![run.len()],
        };
    }
    let part = Part {
        index: 0,
        count: parts,
    };
    let of: Vec<u32> = run.iter().map(|o| part.of(o.src, tables) as u32).collect();
    let mut sizes = vec![0usize; parts];
    for &p in &of {
        sizes[p as usize] += 1;
    }
    Owners { of, sizes }
}

impl Owners {
    /// The observations of `run` that belong to partition `part`, in order.
    fn of_part<'r>(&'r self, run: &'r [Obs], part: usize) -> impl Iterator<Item = &'r Obs> + 'r {
        let all = self.of.is_empty();
        run.iter()
            .enumerate()
            .filter(move |(i, _)| all || self.of[*i] as usize == part)
            .map(|(_, o)| o)
    }

    /// One sub-run per partition, taking `run`'s memory. Nothing is held
    /// twice for longer than the split: the largest sub-run is gathered at
    /// the front of `run`'s own allocation, which is then shrunk, and only
    /// the other sub-runs are copied out (into vectors of exactly their
    /// size). While it runs, on its own sweep thread, the other
    /// partitions' share of the run is held twice.
    fn split(&self, mut run: Vec<Obs>) -> Vec<Vec<Obs>> {
        if self.of.is_empty() {
            return vec![run];
        }
        let parts = self.sizes.len();
        let largest = (0..parts).max_by_key(|&p| self.sizes[p]).unwrap_or(0);
        let mut subs: Vec<Vec<Obs>> = self
            .sizes
            .iter()
            .enumerate()
            .map(|(p, &n)| Vec::with_capacity(if p == largest { 0 } else { n }))
            .collect();
        let mut kept = 0;
        for (i, &p) in self.of.iter().enumerate() {
            let o = run[i];
            if p as usize == largest {
                run[kept] = o;
                kept += 1;
            } else {
                subs[p as usize].push(o);
            }
        }
        run.truncate(kept);
        run.shrink_to_fit();
        subs[largest] = run;
        subs
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

    /// A unit's buffer gets room for a whole run, no more than its size
    /// can fill, and nothing when the budget is unlimited or the buffer
    /// already has room (a spilled run's memory, kept).
    #[test]
    fn a_run_is_reserved_once_at_most_a_units_cap() {
        let c = RunCollector::new(4_000_000, None);
        let room = |bytes: Option<u64>| {
            let mut b = ObsBuffer::new();
            c.reserve_run(&mut b, bytes);
            b.obs.capacity()
        };
        assert!((500_000 + RUN_SLACK..500_000 + 2 * RUN_SLACK).contains(&room(None)));
        assert!((500_000 + RUN_SLACK..500_000 + 2 * RUN_SLACK).contains(&room(Some(1 << 40))));
        assert!((1_000 + RUN_SLACK..1_000 + 2 * RUN_SLACK).contains(&room(Some(16_000))));
        assert!(room(Some(0)) < 2 * RUN_SLACK);
        let mut kept = ObsBuffer::new();
        kept.obs.reserve_exact(10);
        let before = kept.obs.capacity();
        c.reserve_run(&mut kept, None);
        assert_eq!(kept.obs.capacity(), before);
        let unlimited = RunCollector::new(0, None);
        let mut b = ObsBuffer::new();
        unlimited.reserve_run(&mut b, None);
        assert_eq!(b.obs.capacity(), 0);
    }

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
    use crate::behaviour::observe::{NAMED_SOURCE, NONE, NodeId, sort_obs};

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

    /// Units whose tables intern the same IPv6 addresses and host names
    /// in different orders (so their ids differ until the tables are
    /// merged), with sources in many /24s; handed over in runs of 64.
    fn split_units(c: &RunCollector) {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for unit in 0..4usize {
            let mut buf = ObsBuffer::new();
            let names: Vec<NodeId> = (0..5)
                .map(|i| (i + unit * 2) % 5)
                .map(|i| NAMED_SOURCE | NodeId::from(buf.tables.names.intern_str(&format!("h{i}"))))
                .collect();
            let v6: Vec<NodeId> = (0..5u16)
                .map(|i| (i + unit as u16) % 5)
                .map(|i| {
                    buf.tables
                        .ip_id(std::net::IpAddr::from([0x2001, 0xdb8, i, 0, 0, 0, 0, 1]))
                })
                .collect();
            for line in 0..300u64 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let src = match x % 4 {
                    0 => names[(x >> 8) as usize % 5],
                    1 => v6[(x >> 8) as usize % 5],
                    _ => 0xC633_0000 | (((x >> 8) % 64) << 8) | ((x >> 16) % 4),
                };
                buf.obs
                    .push(obs((x >> 32) as i64 % 500, (unit as u64) << 40 | line, src));
                if buf.obs.len() == 64 {
                    c.add(unit, 0, &mut buf, false);
                }
            }
            c.add(unit, 0, &mut buf, true);
        }
    }

    /// A spilled run leaves its memory in the unit's buffer for the next
    /// run (no regrowing by doubling); a run kept in memory takes it; the
    /// last run of a unit frees it. The stream is the same either way.
    #[test]
    fn spilled_run_leaves_its_memory_to_the_next_run() {
        for (budget, reused) in [(1u64, true), (0, false)] {
            let c = RunCollector::new(budget, None).with_partitions(2);
            let mut buf = ObsBuffer::new();
            for line in 0..100u64 {
                buf.obs
                    .push(obs(100 - line as i64, line, 0xC633_0000 | line));
            }
            c.add(0, 0, &mut buf, false);
            assert!(buf.obs.is_empty(), "budget {budget}");
            assert_eq!(buf.obs.capacity() >= 100, reused, "budget {budget}");
            for line in 100..150u64 {
                buf.obs.push(obs(line as i64, line, 0xC633_0100 | line));
            }
            c.add(0, 0, &mut buf, true);
            assert_eq!(buf.obs.capacity(), 0, "budget {budget}");
            let runs = c.finish(|_, _| 0);
            let got: Vec<u64> = runs.stream().map(|o| o.evidence).collect();
            let want: Vec<u64> = (0..100u64).rev().chain(100..150).collect();
            assert_eq!(got, want, "budget {budget}");
        }
    }

    /// Runs split by partition as they are handed over give each
    /// partition exactly the stream it got by filtering the merge of
    /// every run, in memory and spilled; the unsplit stream is unchanged.
    #[test]
    fn split_runs_give_each_partition_its_own_stream() {
        let whole = RunCollector::new(0, None);
        split_units(&whole);
        let whole = whole.finish(|_, _| 0);
        let everything: Vec<Obs> = whole.stream().collect();
        assert_eq!(everything.len(), 1200);
        for budget in [0u64, 1, 500] {
            for parts in [2usize, 3] {
                let c = RunCollector::new(budget, None).with_partitions(parts);
                split_units(&c);
                let runs = c.finish(|_, _| 0);
                if budget > 0 {
                    assert!(runs.spilled_runs > 0);
                }
                assert!(runs.runs.iter().all(|r| r.part < parts && r.len > 0));
                assert_eq!(runs.stream().collect::<Vec<_>>(), everything);
                let mut sizes = Vec::new();
                for index in 0..parts {
                    let part = Part {
                        index,
                        count: parts,
                    };
                    let expected: Vec<Obs> = everything
                        .iter()
                        .copied()
                        .filter(|o| part.owns(o.src, &runs.tables))
                        .collect();
                    // Each partition reads only its own sub-runs…
                    assert!(runs.runs.iter().filter(|r| r.part == index).all(|r| {
                        match &r.data {
                            RunData::Memory(v) => v
                                .iter()
                                .all(|o| part.owns(r_map(&runs, r, *o), &runs.tables)),
                            RunData::Disk(..) => true,
                        }
                    }));
                    let got: Vec<Obs> = runs.stream_part(part).collect();
                    assert_eq!(got, expected, "budget {budget}, part {index} of {parts}");
                    // …also when picking evidence, in any order.
                    let mut unordered: Vec<Obs> = runs.unordered_part(part).collect();
                    sort_obs(&mut unordered);
                    assert_eq!(unordered, expected);
                    sizes.push(got.len());
                }
                assert_eq!(sizes.iter().sum::<usize>(), everything.len());
                assert!(sizes.iter().all(|n| *n > 0), "{sizes:?}");
                // A stream for another partition count still filters.
                let other = Part {
                    index: 1,
                    count: parts + 1,
                };
                let expected: Vec<Obs> = everything
                    .iter()
                    .copied()
                    .filter(|o| other.owns(o.src, &runs.tables))
                    .collect();
                assert_eq!(runs.stream_part(other).collect::<Vec<_>>(), expected);
                assert!(runs.read_errors().is_empty());
            }
        }
    }

    fn r_map(runs: &ObsRuns, r: &Run, o: Obs) -> NodeId {
        runs.remaps[r.remap].apply(o).src
    }

    /// A damaged record in one partition's part of a spill file ends that
    /// partition's stream early with an error the caller finds; the other
    /// partition, reading the same file, is whole.
    #[test]
    fn damaged_spilled_sub_run_ends_its_partition_early() {
        let c = RunCollector::new(1, None).with_partitions(2);
        split_units(&c);
        let runs = c.finish(|_, _| 0);
        let everything: Vec<Obs> = runs.stream().collect();
        // The second partition's sub-run of some spill file that also
        // holds the first's.
        let (path, start, len) = runs
            .runs
            .iter()
            .find_map(|r| match &r.data {
                RunData::Disk(p, start) if r.part == 1 && *start > 0 && r.len > 1 => {
                    Some((p.clone(), *start, r.len))
                }
                _ => None,
            })
            .expect("a spilled run with both partitions");
        let mut bytes = std::fs::read(&path).unwrap();
        // The kind byte of the sub-run's second record.
        bytes[(start as usize + 1) * RECORD + 44] = 200;
        std::fs::write(&path, bytes).unwrap();

        let second = Part { index: 1, count: 2 };
        let expected: Vec<Obs> = everything
            .iter()
            .copied()
            .filter(|o| second.owns(o.src, &runs.tables))
            .collect();
        let mut s = runs.stream_part(second);
        let got: Vec<Obs> = s.by_ref().collect();
        // The sub-run's first record was read, the rest were not.
        assert_eq!(got.len(), expected.len() - (len - 1));
        let errors = runs.read_errors();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("a spilled run ended early: a spilled run is damaged"),
            "{errors:?}"
        );

        let first = Part { index: 0, count: 2 };
        let expected: Vec<Obs> = everything
            .iter()
            .copied()
            .filter(|o| first.owns(o.src, &runs.tables))
            .collect();
        assert_eq!(runs.stream_part(first).collect::<Vec<_>>(), expected);
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
