//! IOC sessions a hunt's sweep writes out of memory.
//!
//! Every unit of a hunt (a file, or a 32 MiB chunk of one) aggregates its
//! sightings into sessions, one per indicator, peer and hour-apart stretch,
//! each with up to five records of evidence (about 1.3 KB). They all wait
//! for the end of the sweep, when the chunks of a file are put back in
//! order and sessions split by a chunk boundary are merged, so they grew
//! with the input: 35,668 for 1 GB of the bench corpus, 106,892 for 3 GB.
//!
//! [`HeldSessions`] bounds them. A unit holding more than its share of
//! [`EngineOptions::ioc_sessions_in_memory`](crate::EngineOptions) writes its
//! sessions to an anonymous temporary file, sorted by key, and goes on; a
//! finished unit whose sessions would take the hunt over the bound does
//! the same. At the end, [`orbwatch_detect::aggregate::finish_merged`]
//! merges the runs and the sessions still in memory key by key, so the
//! findings are those of one aggregator that held everything. A file that
//! cannot be written leaves the sessions in memory (memory is spent,
//! nothing is lost) and the coverage says so.

use std::io::{BufReader, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use orbwatch_detect::Aggregator;
use orbwatch_detect::aggregate::SessionRun;

/// Bytes of read buffer shared by all runs while they are merged back
/// (each gets its part, at least 4 KiB): months of logs make thousands
/// of runs, and a buffer of 64 KiB each would grow with them.
///
/// Why 4 MiB: the merge runs beside the behaviour replay, at the hunt's
/// peak. With 32 MiB, a 3 GB hunt (7 runs) peaked 33.6 MB of heap above
/// a 1 GB one (which writes no run) for these buffers alone (heaptrack),
/// while the runs are read in order, where a few hundred KiB per read
/// already costs nothing.
const MERGE_BUFFERS: usize = 4 << 20;

/// The bound on a hunt's IOC sessions in memory, shared by its units.
pub(crate) struct HeldSessions {
    dir: Option<PathBuf>,
    /// Sessions a unit may hold while it reads before it writes them out.
    per_unit: usize,
    /// Sessions the finished units may hold together.
    bound: usize,
    held: AtomicUsize,
    written: AtomicUsize,
    /// The one temporary file every run is appended to (one file, not
    /// one per run: a run per 32 MiB chunk would take thousands of file
    /// descriptors over months of logs), and its length.
    file: Mutex<Option<(std::fs::File, u64)>>,
    runs: AtomicUsize,
    /// Why sessions stayed in memory over the bound (the first failure;
    /// nothing is written after it).
    failed: Mutex<Option<String>>,
}

/// Where a unit's sessions written out of memory are in the file.
pub(crate) struct WrittenRun {
    at: u64,
    len: u64,
}

/// The runs' file once the sweep is over, shared by their readers.
pub(crate) struct RunsFile {
    file: Arc<std::fs::File>,
    buffer: usize,
}

impl RunsFile {
    /// Read run `w` back, its evidence moved by `lines` and `bytes`
    /// (where its chunk starts in its input).
    pub(crate) fn read_back(&self, w: &WrittenRun, lines: u64, bytes: u64) -> SessionRun {
        let part = Part {
            file: self.file.clone(),
            at: w.at,
            end: w.at + w.len,
        };
        SessionRun {
            reader: Box::new(BufReader::with_capacity(self.buffer, part)),
            lines,
            bytes,
        }
    }
}

/// One run's bytes of the shared file, read at its own position.
struct Part {
    file: Arc<std::fs::File>,
    at: u64,
    end: u64,
}

impl Read for Part {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = buf.len().min((self.end - self.at) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = read_at(&self.file, &mut buf[..want], self.at)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the temporary file of IOC sessions ends early",
            ));
        }
        self.at += n as u64;
        Ok(n)
    }
}

#[cfg(unix)]
fn read_at(f: &std::fs::File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(f, buf, at)
}

#[cfg(windows)]
fn read_at(f: &std::fs::File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(f, buf, at)
}

impl HeldSessions {
    pub(crate) fn new(bound: usize, threads: usize, dir: Option<PathBuf>) -> Self {
        let bound = bound.max(1);
        Self {
            dir,
            per_unit: (bound / threads.max(1)).max(1),
            bound,
            held: AtomicUsize::new(0),
            written: AtomicUsize::new(0),
            file: Mutex::new(None),
            runs: AtomicUsize::new(0),
            failed: Mutex::new(None),
        }
    }

    /// While a unit reads: write its sessions out when it holds more than
    /// its share. Cheap below it (one comparison).
    pub(crate) fn while_reading(&self, agg: &mut Aggregator, runs: &mut Vec<WrittenRun>) {
        if agg.sessions_held() > self.per_unit {
            self.write(agg, runs);
        }
    }

    /// A unit is done: keep its sessions in memory if the hunt stays
    /// within the bound, else write them out.
    pub(crate) fn unit_done(&self, agg: &mut Aggregator, runs: &mut Vec<WrittenRun>) {
        let n = agg.sessions_held();
        let total = self.held.fetch_add(n, Ordering::Relaxed) + n;
        if total > self.bound && self.write(agg, runs) {
            self.held.fetch_sub(n, Ordering::Relaxed);
        }
    }

    /// Write `agg`'s sessions as a new run; false (and they stay) if
    /// that failed now or before.
    fn write(&self, agg: &mut Aggregator, runs: &mut Vec<WrittenRun>) -> bool {
        if self.failed.lock().map_or(true, |f| f.is_some()) {
            return false;
        }
        // Made outside the lock: the other units go on meanwhile.
        let mut bytes = Vec::new();
        let n = match agg.write_sessions(&mut bytes) {
            Ok(n) => n,
            Err(e) => return self.fail(&e),
        };
        let appended = self
            .file
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))
            .and_then(|mut slot| {
                if slot.is_none() {
                    let f = match &self.dir {
                        Some(d) => tempfile::tempfile_in(d)?,
                        None => tempfile::tempfile()?,
                    };
                    *slot = Some((f, 0));
                }
                let (f, len) = slot.as_mut().expect("made above");
                let at = *len;
                f.write_all(&bytes)?;
                *len += bytes.len() as u64;
                Ok(at)
            });
        match appended {
            Ok(at) => {
                self.written.fetch_add(n, Ordering::Relaxed);
                self.runs.fetch_add(1, Ordering::Relaxed);
                runs.push(WrittenRun {
                    at,
                    len: bytes.len() as u64,
                });
                true
            }
            Err(e) => {
                // The sessions are in `bytes` only now: read them back in.
                agg.read_sessions(&bytes);
                self.fail(&e)
            }
        }
    }

    fn fail(&self, e: &std::io::Error) -> bool {
        let dir = crate::held_findings::temp_dir_name(self.dir.as_deref());
        let note = format!(
            "IOC sessions were kept in memory past the bound of {}: writing them to a temporary file in {dir} failed ({e})",
            self.bound
        );
        tracing::warn!("{note}");
        if let Ok(mut f) = self.failed.lock() {
            *f = Some(note);
        }
        false
    }

    /// Sessions written out and runs made, and why sessions stayed in memory
    /// if they did.
    pub(crate) fn summary(&self) -> (usize, usize, Option<String>) {
        (
            self.written.load(Ordering::Relaxed),
            self.runs.load(Ordering::Relaxed),
            self.failed.lock().ok().and_then(|f| f.clone()),
        )
    }

    /// The runs' file, for reading them back (`None`: nothing written).
    pub(crate) fn into_file(self) -> Option<RunsFile> {
        let runs = self.runs.load(Ordering::Relaxed).max(1);
        let (file, _) = self.file.into_inner().ok()??;
        Some(RunsFile {
            file: Arc::new(file),
            buffer: (MERGE_BUFFERS / runs).max(4096),
        })
    }
}
