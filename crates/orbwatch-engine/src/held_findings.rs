//! IOC findings held while the behaviour detectors replay.
//!
//! A hunt makes its IOC findings when the sweep ends and hands them to the
//! sink only after the detectors have replayed every observation, because
//! ORB likelihood joins both views. Held in memory through the replay,
//! they made peak memory grow with the input (one finding per indicator,
//! peer and hour-apart session: 38,663 for 1 GB of the sshd bench corpus,
//! 115,995 for 3 GB). Beyond a count they wait in an anonymous temporary
//! file as JSON lines, and are read back one at a time, in output order,
//! for ORB likelihood and then for the sink. The file disappears with the
//! process, even on `kill -9`.
//!
//! They go to the file as they are made ([`Holding::push`]), so they never
//! all stand in memory at once: made into one vector first, then written,
//! the 3 GB hunt's findings took about 200 MB at the start of its replay,
//! the hunt's peak. Only each finding's place in the output
//! ([`OutputOrder`]) and its place in the file stay in memory.

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use orbwatch_detect::{Finding, OutputOrder};

use crate::EngineError;

/// Bytes of findings gathered before they are written to the file.
const WRITE_BUFFER: usize = 256 * 1024;

/// IOC findings being made, in any order (see the module doc).
pub(crate) struct Holding {
    in_memory: usize,
    dir: Option<PathBuf>,
    /// `dir` for the messages (made once: a hunt holds 100,000s).
    dir_name: String,
    memory: Vec<Finding>,
    disk: Option<OnDisk>,
    /// Why they stay in memory although there are many (no temporary
    /// file could be made or written).
    note: Option<String>,
}

/// Findings in a temporary file, then (if a write failed) in memory as
/// JSON lines after it.
struct OnDisk {
    file: std::fs::File,
    /// Bytes written to the file. Places below this are in the file;
    /// places from it on are in `buf`.
    written: u64,
    /// Lines not written yet, or after a failed write every line from
    /// there on (kept in memory: holding them costs memory, losing them
    /// would cost findings).
    buf: Vec<u8>,
    write_failed: bool,
    /// Each finding's output place and (offset, length) of its line.
    index: Vec<(OutputOrder, u64, u32)>,
}

impl OnDisk {
    fn push(&mut self, f: &Finding, dir: &str, note: &mut Option<String>) {
        let at = self.written + self.buf.len() as u64;
        let mark = self.buf.len();
        if let Err(e) = serde_json::to_writer(&mut self.buf, f) {
            // Not seen: a finding's maps all have string keys. Said
            // loudly, in the log and in the coverage, if it ever is.
            self.buf.truncate(mark);
            let n = format!(
                "IOC finding {} could not be held for the output ({e}) and is missing from it",
                f.id
            );
            tracing::error!("{n}");
            note.get_or_insert_default().push_str(&n);
            return;
        }
        self.buf.push(b'\n');
        let len = (self.written + self.buf.len() as u64 - at) as u32;
        self.index.push((OutputOrder::of(f), at, len));
        if !self.write_failed && self.buf.len() >= WRITE_BUFFER {
            self.write_out(dir, note);
        }
    }

    fn write_out(&mut self, dir: &str, note: &mut Option<String>) {
        match self.file.write_all(&self.buf) {
            Ok(()) => {
                self.written += self.buf.len() as u64;
                self.buf.clear();
            }
            Err(e) => {
                // Part of the buffer may be in the file: the buffer's
                // places say where each line is read from.
                self.write_failed = true;
                let n = note.get_or_insert_default();
                *n = format!(
                    "IOC findings were kept in memory during the behaviour replay: writing them to a temporary file in {dir} failed ({e})"
                );
                tracing::warn!("{n}");
            }
        }
    }
}

impl Holding {
    /// Keep up to `in_memory` findings in memory; beyond, every one goes
    /// to a temporary file in `dir` (`None`: the system's).
    pub(crate) fn new(in_memory: usize, dir: Option<&Path>) -> Self {
        Self {
            in_memory,
            dir: dir.map(Path::to_path_buf),
            dir_name: temp_dir_name(dir),
            memory: Vec::new(),
            disk: None,
            note: None,
        }
    }

    /// Hold one more finding.
    pub(crate) fn push(&mut self, f: Finding) {
        let dir = &self.dir_name;
        if let Some(d) = &mut self.disk {
            d.push(&f, dir, &mut self.note);
            return;
        }
        self.memory.push(f);
        if self.memory.len() <= self.in_memory || self.note.is_some() {
            return;
        }
        let file = match &self.dir {
            Some(d) => tempfile::tempfile_in(d),
            None => tempfile::tempfile(),
        };
        match file {
            Ok(file) => {
                let mut d = OnDisk {
                    file,
                    written: 0,
                    buf: Vec::with_capacity(WRITE_BUFFER + 4096),
                    write_failed: false,
                    index: Vec::new(),
                };
                for f in std::mem::take(&mut self.memory) {
                    d.push(&f, dir, &mut self.note);
                }
                self.disk = Some(d);
            }
            Err(e) => {
                let note = format!(
                    "IOC findings were kept in memory during the behaviour replay: making a temporary file in {dir} failed ({e})"
                );
                tracing::warn!("{note}");
                self.note = Some(note);
            }
        }
    }

    /// Every finding held, in output order, and a note if they could not
    /// wait on disk.
    pub(crate) fn finish(self) -> (HeldFindings, Option<String>) {
        let Holding {
            mut memory,
            disk,
            mut note,
            dir_name: dir,
            ..
        } = self;
        let held = match disk {
            None => {
                orbwatch_detect::aggregate::sort_findings(&mut memory);
                HeldFindings::Memory(memory)
            }
            Some(mut d) => {
                if !d.write_failed && !d.buf.is_empty() {
                    d.write_out(&dir, &mut note);
                }
                let count = d.index.len();
                tracing::info!("{count} IOC findings wait on disk during the behaviour replay");
                d.index.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                HeldFindings::Disk(OnFile {
                    file: d.file,
                    written: d.written,
                    rest: d.buf,
                    places: d.index.into_iter().map(|(_, at, len)| (at, len)).collect(),
                })
            }
        };
        (held, note)
    }
}

/// A directory for temporary files, as messages name it (`None`: the
/// system's).
pub(crate) fn temp_dir_name(dir: Option<&Path>) -> String {
    dir.map_or_else(std::env::temp_dir, Path::to_path_buf)
        .display()
        .to_string()
}

/// IOC findings, in output order, in memory or in a temporary file.
pub(crate) enum HeldFindings {
    Memory(Vec<Finding>),
    Disk(OnFile),
}

/// Findings held in a temporary file (and after a failed write, in
/// memory as JSON lines after it), read back by place.
pub(crate) struct OnFile {
    file: std::fs::File,
    /// Bytes in the file; lines from here on are in `rest`.
    written: u64,
    rest: Vec<u8>,
    /// (offset, length) of each finding's line, in output order.
    places: Vec<(u64, u32)>,
}

impl OnFile {
    /// The `i`th finding in output order (`line` is a reused buffer).
    fn read(&self, i: usize, line: &mut Vec<u8>) -> Result<Finding, EngineError> {
        let (at, len) = self.places[i];
        let len = len as usize;
        let bytes: Result<&[u8], String> = if at >= self.written {
            let from = (at - self.written) as usize;
            self.rest
                .get(from..from + len)
                .ok_or_else(|| "the findings kept in memory end early".to_string())
        } else {
            line.resize(len, 0);
            // One positioned read (not a seek and a read): a hunt reads
            // each of its 10,000s of findings back twice.
            self.file
                .read_exact_at(line, at)
                .map(|()| &line[..])
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::UnexpectedEof => "the file ends early".to_string(),
                    _ => e.to_string(),
                })
        };
        bytes
            .and_then(|b| serde_json::from_slice::<Finding>(b).map_err(|e| e.to_string()))
            .map_err(|e| {
                EngineError::Spill(format!(
                    "reading back IOC finding {} of {} from the hunt's temporary file failed: {e}",
                    i + 1,
                    self.places.len()
                ))
            })
    }
}

impl HeldFindings {
    /// How many findings are held.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Memory(v) => v.len(),
            Self::Disk(d) => d.places.len(),
        }
    }

    /// Show every finding to `each`, in output order (read back from the
    /// file when there, one at a time: nothing more is kept).
    pub(crate) fn for_each(&self, mut each: impl FnMut(&Finding)) -> Result<(), EngineError> {
        match self {
            Self::Memory(v) => v.iter().for_each(each),
            Self::Disk(d) => {
                let mut line = Vec::new();
                for i in 0..d.places.len() {
                    each(&d.read(i, &mut line)?);
                }
            }
        }
        Ok(())
    }

    /// The findings, in output order. A finding that cannot be read back
    /// is an error naming it, and the last item.
    pub(crate) fn into_iter(self) -> Box<dyn Iterator<Item = Result<Finding, EngineError>>> {
        match self {
            Self::Memory(v) => Box::new(v.into_iter().map(Ok)),
            Self::Disk(d) => {
                let mut line = Vec::new();
                let mut next = 0usize;
                let mut failed = false;
                Box::new(std::iter::from_fn(move || {
                    if failed || next == d.places.len() {
                        return None;
                    }
                    next += 1;
                    let read = d.read(next - 1, &mut line);
                    failed = read.is_err();
                    Some(read)
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Finding `i`: ids padded, so that their output order is `i`'s.
    fn finding(i: u64) -> Finding {
        let mut f: Finding = serde_json::from_value(serde_json::json!({
            "id": format!("f{i:05}"),
            "kind": "ioc_match",
            "first_seen": "2021-03-02T00:00:00.123456789Z",
            "last_seen": null,
            "count": i,
            "src_ip": "192.0.2.1",
            "dst_ip": null,
            "evidence": [],
            "evidence_total": 0,
        }))
        .unwrap();
        f.details = Some(serde_json::json!({"n": i, "x": 0.1}));
        f
    }

    fn hold(v: &[Finding], in_memory: usize, dir: Option<&Path>) -> (HeldFindings, Option<String>) {
        let mut h = Holding::new(in_memory, dir);
        v.iter().cloned().for_each(|f| h.push(f));
        h.finish()
    }

    /// Made in any order, they come back in output order, unchanged,
    /// both when shown in place and when taken.
    #[test]
    fn findings_come_back_from_disk_in_order_and_unchanged() {
        let v: Vec<Finding> = (0..50).map(finding).collect();
        let mut made = v.clone();
        made.reverse();
        made.swap(3, 40);
        let (held, note) = hold(&made, 10, None);
        assert!(note.is_none());
        assert!(matches!(held, HeldFindings::Disk(_)));
        assert_eq!(held.len(), 50);
        let mut shown = Vec::new();
        held.for_each(|f| shown.push(f.clone())).unwrap();
        assert_eq!(shown, v);
        let back: Vec<Finding> = held.into_iter().map(Result::unwrap).collect();
        assert_eq!(back, v);
    }

    /// Past the write buffer, most lines are in the file and the last in
    /// memory: both are read back, in order.
    #[test]
    fn many_findings_span_the_file_and_the_buffer() {
        let v: Vec<Finding> = (0..2_000).map(finding).collect();
        let (held, _) = hold(&v, 0, None);
        let HeldFindings::Disk(d) = &held else {
            panic!("not on disk")
        };
        assert!(
            d.written >= WRITE_BUFFER as u64,
            "{} bytes written",
            d.written
        );
        let back: Vec<Finding> = held.into_iter().map(Result::unwrap).collect();
        assert_eq!(back, v);
    }

    /// A temporary file cut short (a full disk that lied, another
    /// process) is an error that says which finding, never a quiet end.
    #[test]
    fn a_file_cut_short_is_an_error_after_the_findings_it_holds() {
        let v: Vec<Finding> = (0..50).map(finding).collect();
        let whole: Vec<u8> = v
            .iter()
            .flat_map(|f| {
                let mut l = serde_json::to_vec(f).unwrap();
                l.push(b'\n');
                l
            })
            .collect();
        let after_20_lines = whole
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(19)
            .unwrap()
            .0 as u64
            + 1;
        // Mid-line, and exactly at a line's end (where a reader that
        // stops at the end of the file would see nothing wrong).
        for cut in [whole.len() as u64 / 2 + 3, after_20_lines] {
            let (held, _) = hold(&v, 10, None);
            let HeldFindings::Disk(d) = &held else {
                panic!("not on disk")
            };
            assert_eq!(d.file.metadata().unwrap().len(), whole.len() as u64);
            d.file.set_len(cut).unwrap();
            assert!(held.for_each(|_| {}).is_err());
            let back: Vec<Result<Finding, EngineError>> = held.into_iter().collect();
            let ok: Vec<&Finding> = back.iter().filter_map(|r| r.as_ref().ok()).collect();
            assert!(!ok.is_empty() && ok.len() < 50, "{} read", ok.len());
            assert_eq!(ok, v.iter().take(ok.len()).collect::<Vec<_>>());
            assert_eq!(back.len(), ok.len() + 1, "one error, then the end");
            let err = back.last().unwrap().as_ref().unwrap_err().to_string();
            assert!(
                err.contains(&format!("IOC finding {} of 50", ok.len() + 1)),
                "{err}"
            );
        }
    }

    #[test]
    fn few_findings_stay_in_memory() {
        let mut v: Vec<Finding> = (0..3).map(finding).collect();
        v.reverse();
        let (held, note) = hold(&v, 3, None);
        assert!(note.is_none());
        let HeldFindings::Memory(kept) = &held else {
            panic!("not in memory")
        };
        v.reverse();
        assert_eq!(kept, &v, "in output order");
    }

    #[test]
    fn an_unwritable_directory_keeps_them_in_memory_and_says_so() {
        let v: Vec<Finding> = (0..5).map(finding).collect();
        let (held, note) = hold(&v, 0, Some(Path::new("/nonexistent/orbwatch")));
        assert!(note.unwrap().contains("/nonexistent/orbwatch"));
        let back: Vec<Finding> = held.into_iter().map(Result::unwrap).collect();
        assert_eq!(back, v);
    }

    /// A file that takes no writes (a full disk): the lines not written
    /// stay in memory, none is lost, and the note says so.
    #[test]
    fn a_failed_write_keeps_the_rest_in_memory_and_says_so() {
        let v: Vec<Finding> = (0..2_000).map(finding).collect();
        let mut h = Holding::new(0, None);
        h.disk = Some(OnDisk {
            // Open for reading only: every write fails.
            file: std::fs::File::open("/dev/null").unwrap(),
            written: 0,
            buf: Vec::new(),
            write_failed: false,
            index: Vec::new(),
        });
        v.iter().cloned().for_each(|f| h.push(f));
        let (held, note) = h.finish();
        let note = note.expect("a note");
        assert!(note.contains("failed"), "{note}");
        let back: Vec<Finding> = held.into_iter().map(Result::unwrap).collect();
        assert_eq!(back, v);
    }
}
