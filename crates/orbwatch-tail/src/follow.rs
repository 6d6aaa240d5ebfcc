//! The tail thread: discovery, one follower per open file, rotation and
//! truncation checks, and handing lines to the pipeline. See the crate
//! documentation for the rules.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::{BufRead, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use jiff::Timestamp;
use orbwatch_live::{Checkpoint, LiveRecord, Payload, PipelineClosed, RecordSender, SourceStats};
use orbwatch_source::Compression;
use orbwatch_store::TailOffset;

use crate::identity::{
    FileId, HEAD_BYTES, content_matches, decompressed_head, head_matches, sha256_hex,
};
use crate::pattern::{Found, Pattern};
use crate::split::{LineSplitter, SplitLine};
use crate::{Shared, StartAt, TailConfig, TailProblem};

/// Bytes read from one file before the others get their turn.
const TURN_BYTES: usize = 1024 * 1024;
/// Read buffer.
const READ_BUF: usize = 64 * 1024;
/// Finished files remembered (by identity and position) so that a renamed
/// or compressed copy of one is not read again.
const KNOWN_KEPT: usize = 4096;
/// Attempts at a compressed file that fails to decompress before it is
/// given up (it may still be being written).
const COMPRESSED_ATTEMPTS: u32 = 5;

/// A file read to its end, remembered.
#[derive(Debug, Clone)]
struct Known {
    id: FileId,
    position: u64,
    lines: u64,
}

/// What a path's metadata was when it was last looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Meta {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: Option<SystemTime>,
}

impl Meta {
    fn of(md: &std::fs::Metadata) -> Self {
        Self {
            dev: md.dev(),
            ino: md.ino(),
            len: md.len(),
            mtime: md.modified().ok(),
        }
    }
}

enum Reader {
    Plain(File),
    /// A decompressed stream; `skip` decompressed bytes are still to be
    /// discarded before the splitter's position.
    Compressed {
        reader: Box<dyn BufRead + Send>,
        skip: u64,
        attempts: u32,
        retry_at: Option<Instant>,
        meta: Meta,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Following,
    /// Renamed away or deleted: read to the end, then closed once quiet.
    Draining {
        quiet_since: Option<Instant>,
    },
}

struct Follower {
    /// Where the file is now (for rename and truncation checks).
    path: PathBuf,
    /// The followed path: the stream and checkpoint source.
    key: Arc<str>,
    reader: Reader,
    dev: u64,
    ino: u64,
    /// The file's first bytes (up to 1024), decompressed.
    head: Vec<u8>,
    id: FileId,
    /// `device:inode:hash:head_len`, shared by the checkpoints.
    split: LineSplitter,
    state: State,
    next_check: Instant,
    nul_seen: u64,
}

impl Follower {
    fn set_head(&mut self, head: Vec<u8>) {
        self.id.head_hash = sha256_hex(&head);
        self.id.head_len = head.len() as u64;
        self.head = head;
    }
}

/// How a file is to be started.
struct Start {
    position: u64,
    lines: u64,
    mid_line: bool,
}

pub(crate) struct Tail {
    cfg: TailConfig,
    patterns: Vec<Pattern>,
    sender: RecordSender,
    stats: Arc<SourceStats>,
    shared: Arc<Shared>,
    followers: Vec<Follower>,
    known: VecDeque<Known>,
    /// Stored offsets not yet used, by path.
    stored: HashMap<String, TailOffset>,
    /// Paths whose next file starts at 0 (their stored file was replaced).
    successors: HashSet<PathBuf>,
    /// Rotated files to read from 0 under a key once its current
    /// follower is finished: those rotated after the stored file while
    /// orbwatch was stopped (newest last).
    queued: HashMap<Arc<str>, VecDeque<PathBuf>>,
    /// Names (`dir/auth.log`) of rotated sets that have a stored offset:
    /// orbwatch ran on them before, so a rotated file of the set without an
    /// offset of its own was handled then (or rotated away before the
    /// stored file, see [`Tail::catch_up`]).
    handled_sets: HashSet<PathBuf>,
    /// Paths that need no follower while their metadata is unchanged (a
    /// compressed file read, a start-at-end compressed file).
    settled: HashMap<PathBuf, Meta>,
    /// Compressed files seen once, waiting for their size to settle, and
    /// whether they were there at the first scan.
    pending: HashMap<PathBuf, (Meta, bool)>,
    first_scan_done: bool,
    next_scan: Instant,
    buf: Vec<u8>,
    lines: Vec<SplitLine>,
}

/// The pipeline is gone: the thread ends.
struct Closed;

impl From<PipelineClosed> for Closed {
    fn from(_: PipelineClosed) -> Self {
        Closed
    }
}

impl Tail {
    pub fn new(
        cfg: TailConfig,
        patterns: Vec<Pattern>,
        initial: Vec<TailOffset>,
        sender: RecordSender,
        stats: Arc<SourceStats>,
        shared: Arc<Shared>,
    ) -> Self {
        let mut known = VecDeque::new();
        for o in &initial {
            known.push_back(Known {
                id: FileId::of_offset(o),
                position: o.position,
                lines: o.lines,
            });
        }
        Self {
            cfg,
            patterns,
            sender,
            stats,
            shared,
            followers: Vec::new(),
            known,
            stored: initial.into_iter().map(|o| (o.path.clone(), o)).collect(),
            successors: HashSet::new(),
            queued: HashMap::new(),
            handled_sets: HashSet::new(),
            settled: HashMap::new(),
            pending: HashMap::new(),
            first_scan_done: false,
            next_scan: Instant::now(),
            buf: vec![0; READ_BUF],
            lines: Vec::new(),
        }
    }

    fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::SeqCst)
    }

    pub fn run(&mut self) {
        self.catch_up();
        if self.turns().is_err() {
            tracing::info!("the pipeline has stopped; the tail stops with it");
        }
        self.shared.counters.files.store(0, Ordering::Relaxed);
    }

    fn turns(&mut self) -> Result<(), Closed> {
        while !self.stopping() {
            let now = Instant::now();
            if now >= self.next_scan {
                self.scan();
                self.next_scan = Instant::now() + self.cfg.rescan_interval;
            }
            let mut progressed = false;
            let mut i = 0;
            while i < self.followers.len() {
                if self.stopping() {
                    return Ok(());
                }
                let (read, done) = self.turn(i)?;
                progressed |= read;
                if done {
                    let f = self.followers.remove(i);
                    self.retire(f);
                } else {
                    i += 1;
                }
            }
            self.shared
                .counters
                .files
                .store(self.followers.len() as u64, Ordering::Relaxed);
            if !progressed {
                let wait = self
                    .cfg
                    .poll_interval
                    .min(self.next_scan.saturating_duration_since(Instant::now()));
                std::thread::sleep(wait.max(Duration::from_millis(1)));
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------- start

    /// Stored offsets whose file is no longer at its path: find it among
    /// the files rotated beside the path and read the rest of it first.
    fn catch_up(&mut self) {
        let mut rows: Vec<TailOffset> = self.stored.values().cloned().collect();
        rows.sort_by(|a, b| a.path.cmp(&b.path));
        for row in &rows {
            self.handled_sets.insert(set_name(Path::new(&row.path)));
        }
        for row in rows {
            let path = PathBuf::from(&row.path);
            let id = FileId::of_offset(&row);
            if let Ok(md) = std::fs::metadata(&path)
                && md.is_file()
                && md.dev() == row.device
                && md.ino() == row.inode
                && plain_head(&path).is_ok_and(|h| row.head_len == 0 || head_matches(&id, &h))
            {
                // Still there: the first scan resumes it.
                continue;
            }
            self.stored.remove(&row.path);
            self.successors.insert(path.clone());
            match self.find_rotated(&path, &row) {
                Some((f, newer)) => {
                    tracing::info!(
                        file = %row.path,
                        rotated = %f.path.display(),
                        position = row.position,
                        newer = newer.len(),
                        "the file was rotated while orbwatch was stopped; reading the rest of it, \
                         then the files rotated after it, first"
                    );
                    self.clear_problem(&f.path);
                    if !newer.is_empty() {
                        self.queued.insert(f.key.clone(), newer.into());
                    }
                    self.followers.push(f);
                }
                None if row.head_len > 0 => tracing::warn!(
                    file = %row.path,
                    position = row.position,
                    "the file followed before was replaced while orbwatch was stopped and is not \
                     found beside it (by inode, or by content for a compressed one); lines written \
                     to it after the stored position may be missed; the new file is read from its start"
                ),
                None => {}
            }
        }
    }

    /// The file of `row`, rotated beside `path` (`auth.log.1`,
    /// `auth.log.2.gz`, `auth.log-20240101`), opened at its position, and
    /// the files rotated after it (to be read whole, oldest first).
    fn find_rotated(&mut self, path: &Path, row: &TailOffset) -> Option<(Follower, Vec<PathBuf>)> {
        let name = path.file_name()?.to_string_lossy().into_owned();
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut siblings: Vec<(u32, PathBuf)> = std::fs::read_dir(&dir)
            .ok()?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                let (base, number) = orbwatch_source::inputs::rotation_key(&n);
                (base == name && n != name).then(|| (number, e.path()))
            })
            .collect();
        // The most recent rotation first: the likeliest.
        siblings.sort();
        let id = FileId::of_offset(row);
        for (k, (_, s)) in siblings.iter().enumerate() {
            let Ok(md) = std::fs::metadata(s) else {
                continue;
            };
            if !md.is_file() {
                continue;
            }
            let start = Start {
                position: row.position,
                lines: row.lines,
                mid_line: false,
            };
            let key: Arc<str> = Arc::from(row.path.as_str());
            let found = match sniff(s) {
                Ok(Compression::None) => {
                    if md.dev() == row.device
                        && md.ino() == row.inode
                        && plain_head(s).is_ok_and(|h| row.head_len == 0 || head_matches(&id, &h))
                    {
                        let mut f = self.open_plain(s, key, start).ok()?;
                        f.state = State::Draining { quiet_since: None };
                        Some(f)
                    } else {
                        None
                    }
                }
                Ok(_) => {
                    if decompressed_head(s).is_ok_and(|h| content_matches(&id, &h)) {
                        self.open_compressed(s, key, start, Meta::of(&md)).ok()
                    } else {
                        None
                    }
                }
                Err(_) => None,
            };
            if let Some(f) = found {
                let newer = siblings[..k].iter().rev().map(|(_, p)| p.clone()).collect();
                return Some((f, newer));
            }
        }
        None
    }

    // ------------------------------------------------------------ discovery

    fn scan(&mut self) {
        let mut found = Vec::new();
        for p in &self.patterns {
            p.expand(&mut found);
        }
        let mut seen = HashSet::new();
        let mut files = Vec::new();
        for f in found {
            match f {
                Found::File(p) => {
                    if seen.insert(p.clone()) {
                        files.push(p);
                    }
                }
                Found::Directory(p) => {
                    seen.insert(p.clone());
                    let msg = format!(
                        "{} is a directory; --tail follows files: name them, or use a glob such as {}/*.log",
                        p.display(),
                        p.display()
                    );
                    self.problem(&p, msg);
                }
                Found::Error(p, e) => {
                    seen.insert(p.clone());
                    let msg = format!(
                        "cannot look into {}: {e}; give orbwatch read access to it or leave it out of --tail",
                        p.display()
                    );
                    self.problem(&p, msg);
                }
            }
        }
        // Oldest of a rotated set first, so that lines flow forward.
        files.sort_by_cached_key(|p| {
            let dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let (base, n) = orbwatch_source::inputs::rotation_key(&name);
            (dir, base, std::cmp::Reverse(n), name)
        });
        for p in files {
            self.consider(&p);
        }
        self.first_scan_done = true;
        // Forget paths that are gone, so that memory stays bounded on a
        // host where rotated files come and go for years.
        self.settled.retain(|p, _| seen.contains(p));
        self.pending.retain(|p, _| seen.contains(p));
        if let Ok(mut problems) = self.shared.problems.lock() {
            problems.retain(|p| seen.contains(&p.path) || p.path.symlink_metadata().is_ok());
        }
    }

    /// A path a pattern matched: start following it if it is new.
    fn consider(&mut self, path: &Path) {
        if self
            .followers
            .iter()
            .any(|f| f.path == path || *f.key == *path.to_string_lossy())
            || self.queued.values().any(|q| q.iter().any(|p| p == path))
        {
            return;
        }
        let md = match std::fs::metadata(path) {
            Ok(md) => md,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                let msg = format!("cannot read {}: {e}", path.display());
                self.problem(path, msg);
                return;
            }
        };
        if !md.is_file() {
            let msg = format!(
                "{} is not a regular file (a FIFO, socket or device); --tail follows files",
                path.display()
            );
            self.problem(path, msg);
            return;
        }
        let meta = Meta::of(&md);
        if self.settled.get(path) == Some(&meta) {
            return;
        }
        if self
            .followers
            .iter()
            .any(|f| f.dev == meta.dev && f.ino == meta.ino)
        {
            // A file being read under another name (renamed by rotation).
            return;
        }
        let key: Arc<str> = Arc::from(path.to_string_lossy().as_ref());
        let compression = match sniff(path) {
            Ok(c) => c,
            Err(e) => {
                let msg = format!(
                    "cannot open {}: {e}; give orbwatch read access to it (on Debian, add its user to the group `adm`) or leave it out of --tail",
                    path.display()
                );
                self.problem(path, msg);
                return;
            }
        };
        let result = if compression == Compression::None {
            self.consider_plain(path, key, &meta)
        } else {
            self.consider_compressed(path, key, meta)
        };
        match result {
            Ok(Some(f)) => {
                self.clear_problem(path);
                tracing::debug!(file = %path.display(), position = f.split.pos(), "following");
                self.followers.push(f);
            }
            Ok(None) => {}
            Err(e) => {
                let msg = format!("cannot read {}: {e}", path.display());
                self.problem(path, msg);
            }
        }
    }

    fn consider_plain(
        &mut self,
        path: &Path,
        key: Arc<str>,
        meta: &Meta,
    ) -> std::io::Result<Option<Follower>> {
        let head = plain_head(path)?;
        let key_text = key.to_string();
        let start = if let Some(row) = self.stored.remove(&key_text)
            && row.device == meta.dev
            && row.inode == meta.ino
            && (row.head_len == 0 || head_matches(&FileId::of_offset(&row), &head))
        {
            if meta.len < row.position {
                self.shared
                    .counters
                    .copytruncates
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    file = %path.display(),
                    stored = row.position,
                    size = meta.len,
                    "the file is shorter than the stored position: it was truncated while orbwatch \
                     was stopped; reading it from its start"
                );
                Start {
                    position: 0,
                    lines: 0,
                    mid_line: false,
                }
            } else {
                Start {
                    position: row.position,
                    lines: row.lines,
                    mid_line: false,
                }
            }
        } else if let Some(k) = self.known.iter().rev().find(|k| {
            k.id.device == meta.dev
                && k.id.inode == meta.ino
                && (k.id.head_len == 0 || head_matches(&k.id, &head))
        }) {
            Start {
                position: k.position.min(meta.len),
                lines: k.lines,
                mid_line: false,
            }
        } else if self.content_known(&head) {
            // A copy of a file already read (copytruncate's `app.log.1`):
            // its lines were read under the original's name.
            self.end_start(path, meta.len)?
        } else if self.successors.remove(path) || self.first_scan_done {
            Start {
                position: 0,
                lines: 0,
                mid_line: false,
            }
        } else if set_name(path) != path && self.handled_sets.contains(&set_name(path)) {
            // A rotated file of a set read in an earlier run: handled then
            // (the files rotated after the stored one are queued by
            // `catch_up`).
            self.end_start(path, meta.len)?
        } else {
            match self.cfg.start_at {
                StartAt::Beginning => Start {
                    position: 0,
                    lines: 0,
                    mid_line: false,
                },
                StartAt::End => self.end_start(path, meta.len)?,
            }
        };
        self.open_plain(path, key, start).map(Some)
    }

    /// Is this head (a whole file's first bytes) that of a file followed
    /// now or read before, with another inode (see [`content_matches`])?
    fn content_known(&self, head: &[u8]) -> bool {
        !head.is_empty()
            && (self.followers.iter().any(|f| content_matches(&f.id, head))
                || self.known.iter().any(|k| content_matches(&k.id, head)))
    }

    /// Start at the end of a file: after its last newline, so that a line
    /// being written is read whole once complete.
    fn end_start(&self, path: &Path, len: u64) -> std::io::Result<Start> {
        if len == 0 {
            return Ok(Start {
                position: 0,
                lines: 0,
                mid_line: false,
            });
        }
        let window = (self.cfg.max_line as u64 + 1).min(len);
        let file = File::open(path)?;
        let mut tail = vec![0u8; window as usize];
        file.read_exact_at(&mut tail, len - window)?;
        match memchr::memrchr(b'\n', &tail) {
            Some(i) => {
                let position = len - window + i as u64 + 1;
                let lines = orbwatch_source::count_newlines(path, 0, position)?;
                Ok(Start {
                    position,
                    lines,
                    mid_line: false,
                })
            }
            None if window == len => Ok(Start {
                position: 0,
                lines: 0,
                mid_line: false,
            }),
            None => {
                let lines = orbwatch_source::count_newlines(path, 0, len)?;
                Ok(Start {
                    position: len,
                    lines,
                    mid_line: true,
                })
            }
        }
    }

    fn consider_compressed(
        &mut self,
        path: &Path,
        key: Arc<str>,
        meta: Meta,
    ) -> std::io::Result<Option<Follower>> {
        // It may still be being written (logrotate's `compress`): wait
        // until it is the same at two scans.
        let at_first_scan = match self.pending.get(path) {
            Some((m, first)) if *m == meta => *first,
            Some((_, first)) => {
                let first = *first;
                self.pending.insert(path.to_path_buf(), (meta, first));
                return Ok(None);
            }
            None => {
                self.pending
                    .insert(path.to_path_buf(), (meta, !self.first_scan_done));
                return Ok(None);
            }
        };
        let head = decompressed_head(path)?;
        let matches_head = |id: &FileId| content_matches(id, &head);
        if self.followers.iter().any(|f| matches_head(&f.id)) {
            // Its content is being read from the plain file now: decide
            // once that one is finished.
            return Ok(None);
        }
        self.pending.remove(path);
        let key_text = key.to_string();
        let start = if let Some(row) = self.stored.remove(&key_text)
            && matches_head(&FileId::of_offset(&row))
        {
            Start {
                position: row.position,
                lines: row.lines,
                mid_line: false,
            }
        } else if let Some(k) = self
            .known
            .iter()
            .filter(|k| matches_head(&k.id))
            .max_by_key(|k| (k.id.head_len, k.position))
        {
            Start {
                position: k.position,
                lines: k.lines,
                mid_line: false,
            }
        } else if !at_first_scan
            || (self.cfg.start_at == StartAt::Beginning
                && (set_name(path) == path || !self.handled_sets.contains(&set_name(path))))
        {
            Start {
                position: 0,
                lines: 0,
                mid_line: false,
            }
        } else {
            // Already there, unknown, and reading starts at the end: a
            // compressed file has no end to follow.
            self.settled.insert(path.to_path_buf(), meta);
            return Ok(None);
        };
        self.open_compressed(path, key, start, meta).map(Some)
    }

    fn open_plain(&self, path: &Path, key: Arc<str>, start: Start) -> std::io::Result<Follower> {
        let mut file = File::open(path)?;
        let md = file.metadata()?;
        let head = read_head_at(&file, md.len())?;
        file.seek(SeekFrom::Start(start.position))?;
        let split = if start.mid_line {
            LineSplitter::new_mid_line(self.cfg.max_line, start.position, start.lines)
        } else {
            LineSplitter::new(self.cfg.max_line, start.position, start.lines)
        };
        let mut f = Follower {
            path: path.to_path_buf(),
            key,
            reader: Reader::Plain(file),
            dev: md.dev(),
            ino: md.ino(),
            head: Vec::new(),
            id: FileId {
                device: md.dev(),
                inode: md.ino(),
                head_hash: String::new(),
                head_len: 0,
            },
            split,
            state: State::Following,
            next_check: Instant::now() + self.cfg.poll_interval,
            nul_seen: 0,
        };
        f.set_head(head);
        Ok(f)
    }

    fn open_compressed(
        &self,
        path: &Path,
        key: Arc<str>,
        start: Start,
        meta: Meta,
    ) -> std::io::Result<Follower> {
        let head = decompressed_head(path)?;
        let (_, reader) = orbwatch_source::decompressed(File::open(path)?)?;
        let mut f = Follower {
            path: path.to_path_buf(),
            key,
            reader: Reader::Compressed {
                reader,
                skip: start.position,
                attempts: 0,
                retry_at: None,
                meta,
            },
            dev: meta.dev,
            ino: meta.ino,
            head: Vec::new(),
            id: FileId {
                device: meta.dev,
                inode: meta.ino,
                head_hash: String::new(),
                head_len: 0,
            },
            split: LineSplitter::new(self.cfg.max_line, start.position, start.lines),
            state: State::Following,
            next_check: Instant::now(),
            nul_seen: 0,
        };
        f.set_head(head);
        self.shared
            .counters
            .compressed_read
            .fetch_add(1, Ordering::Relaxed);
        Ok(f)
    }

    // -------------------------------------------------------------- reading

    /// One turn of follower `i`: checks when due, then up to
    /// [`TURN_BYTES`]. Returns (bytes were read, the file is finished).
    fn turn(&mut self, i: usize) -> Result<(bool, bool), Closed> {
        let now = Instant::now();
        if matches!(self.followers[i].reader, Reader::Plain(_))
            && self.followers[i].state == State::Following
            && now >= self.followers[i].next_check
        {
            self.check_plain(i);
            self.followers[i].next_check = now + self.cfg.poll_interval;
        }
        let mut total = 0usize;
        let mut finished = false;
        // A last line without newline is handed out at a file's end, but
        // not where a damaged archive stops: that one is cut.
        let mut flush = true;
        while total < TURN_BYTES {
            let f = &mut self.followers[i];
            let n = match &mut f.reader {
                Reader::Plain(file) => match file.read(&mut self.buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let msg = format!(
                            "reading {} failed at byte {}: {e}; it is read again from there at the next poll",
                            f.path.display(),
                            f.split.pos()
                        );
                        let p = f.path.clone();
                        self.problem(&p, msg);
                        break;
                    }
                },
                Reader::Compressed {
                    reader,
                    skip,
                    attempts,
                    retry_at,
                    meta,
                } => {
                    if retry_at.is_some_and(|t| now < t) {
                        break;
                    }
                    match read_skipping(reader.as_mut(), skip, &mut self.buf) {
                        Ok(n) => n,
                        Err(e) => {
                            *attempts += 1;
                            let path = f.path.clone();
                            let pos = f.split.pos();
                            if *attempts >= COMPRESSED_ATTEMPTS {
                                let msg = format!(
                                    "cannot decompress {} after byte {pos} of its content: {e}; the rest of it is not read (a damaged or cut archive: check it with its tool, e.g. `gzip -t`)",
                                    path.display()
                                );
                                let meta = *meta;
                                self.problem(&path, msg);
                                self.settled.insert(path, meta);
                                finished = true;
                                flush = false;
                                break;
                            }
                            // Start again at the same place, later: it may
                            // have been read while still being written.
                            match File::open(&path).and_then(orbwatch_source::decompressed) {
                                Ok((_, r)) => {
                                    *reader = r;
                                    *skip = pos;
                                }
                                Err(e2) => {
                                    tracing::debug!(file = %path.display(), "reopening failed: {e2}")
                                }
                            }
                            *retry_at = Some(now + self.cfg.rotate_wait);
                            if let Ok(md) = std::fs::metadata(&path) {
                                *meta = Meta::of(&md);
                            }
                            break;
                        }
                    }
                }
            };
            if n == 0 {
                let f = &mut self.followers[i];
                match (&f.reader, f.state) {
                    (Reader::Compressed { meta, .. }, _) => {
                        self.settled.insert(f.path.clone(), *meta);
                        finished = true;
                    }
                    (Reader::Plain(_), State::Draining { quiet_since }) => match quiet_since {
                        None => {
                            f.state = State::Draining {
                                quiet_since: Some(now),
                            }
                        }
                        Some(t) if now.duration_since(t) >= self.cfg.rotate_wait => finished = true,
                        Some(_) => {}
                    },
                    (Reader::Plain(_), State::Following) => {}
                }
                break;
            }
            total += n;
            let f = &mut self.followers[i];
            if let State::Draining { .. } = f.state {
                f.state = State::Draining { quiet_since: None };
            }
            // Keep the head (the identity) up to date with what is read,
            // so that the checkpoints and the file remembered at its end
            // name all of it.
            let at = f.split.pos();
            if matches!(f.reader, Reader::Plain(_))
                && at < HEAD_BYTES as u64
                && at == f.head.len() as u64
            {
                let more = (HEAD_BYTES - f.head.len()).min(n);
                let mut head = std::mem::take(&mut f.head);
                head.extend_from_slice(&self.buf[..more]);
                f.set_head(head);
            }
            self.lines.clear();
            f.split.feed(&self.buf[..n], &mut self.lines);
            self.send_lines(i)?;
            if self.stopping() {
                break;
            }
        }
        if finished && flush {
            let f = &mut self.followers[i];
            self.lines.clear();
            f.split.finish(&mut self.lines);
            self.send_lines(i)?;
        }
        Ok((total > 0, finished))
    }

    /// Renamed away, deleted, truncated, or its head grown?
    fn check_plain(&mut self, i: usize) {
        let f = &mut self.followers[i];
        match std::fs::metadata(&f.path) {
            Ok(md) if md.dev() == f.dev && md.ino() == f.ino => {}
            Ok(_) => {
                tracing::info!(file = %f.path.display(), "rotated (the path names another file now); reading the old file to its end");
                self.shared
                    .counters
                    .rotations
                    .fetch_add(1, Ordering::Relaxed);
                f.state = State::Draining { quiet_since: None };
                return;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::info!(file = %f.path.display(), "deleted or renamed away; reading it to its end");
                self.shared
                    .counters
                    .rotations
                    .fetch_add(1, Ordering::Relaxed);
                f.state = State::Draining { quiet_since: None };
                return;
            }
            Err(e) => {
                tracing::debug!(file = %f.path.display(), "cannot stat: {e}");
            }
        }
        let Reader::Plain(file) = &mut f.reader else {
            return;
        };
        let Ok(md) = file.metadata() else { return };
        let len = md.len();
        let head = match read_head_at(file, len) {
            Ok(h) => h,
            Err(_) => return,
        };
        let shrunk = len < f.split.pos();
        let replaced = head.len() < f.head.len() || head[..f.head.len()] != f.head[..];
        if shrunk || replaced {
            self.shared
                .counters
                .copytruncates
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                file = %f.path.display(),
                position = f.split.pos(),
                size = len,
                "the file was truncated (copytruncate rotation): reading it again from its start; \
                 lines written between the copy and the truncation are lost"
            );
            if file.seek(SeekFrom::Start(0)).is_err() {
                return;
            }
            // The content read so far is remembered, so that the copy
            // logrotate made of it is not read again when a glob finds it.
            let known = Known {
                id: f.id.clone(),
                position: f.split.pos(),
                lines: f.split.lines(),
            };
            if self.known.len() >= KNOWN_KEPT {
                self.known.pop_front();
            }
            self.known.push_back(known);
            f.split = LineSplitter::new(self.cfg.max_line, 0, 0);
            f.nul_seen = 0;
        }
        if head != f.head {
            f.set_head(head);
        }
    }

    fn send_lines(&mut self, i: usize) -> Result<(), Closed> {
        let f = &mut self.followers[i];
        let nuls = f.split.nul_bytes - f.nul_seen;
        if nuls > 0 {
            f.nul_seen = f.split.nul_bytes;
            self.shared
                .counters
                .nul_bytes
                .fetch_add(nuls, Ordering::Relaxed);
        }
        if self.lines.is_empty() {
            return Ok(());
        }
        let received = Timestamp::now();
        for line in self.lines.drain(..) {
            SourceStats::add(&self.stats.records, 1);
            SourceStats::add(&self.stats.bytes, line.consumed);
            if line.truncated {
                SourceStats::add(&self.stats.truncated, 1);
            }
            let record = LiveRecord {
                prefiltered: None,
                prework: Default::default(),
                stream: f.key.clone(),
                number: line.number,
                offset: line.offset,
                payload: Payload::Line,
                bytes: line.bytes,
                received,
                checkpoint: Some(Checkpoint {
                    source: f.key.clone(),
                    position: line.end,
                    identity: Arc::from(f.id.checkpoint_identity(line.number)),
                }),
            };
            self.sender.send(record)?;
        }
        Ok(())
    }

    /// A follower whose file is finished: remember it, and look for the
    /// file now at its path soon.
    fn retire(&mut self, f: Follower) {
        tracing::debug!(file = %f.path.display(), key = %f.key, lines = f.split.lines(), "finished");
        if self.known.len() >= KNOWN_KEPT {
            self.known.pop_front();
        }
        self.known.push_back(Known {
            id: f.id.clone(),
            position: f.split.pos(),
            lines: f.split.lines(),
        });
        let key = PathBuf::from(&*f.key);
        if key != f.path {
            self.successors.insert(key);
        }
        self.next_scan = Instant::now();
        while let Some(next) = self.queued.get_mut(&f.key).and_then(VecDeque::pop_front) {
            let start = Start {
                position: 0,
                lines: 0,
                mid_line: false,
            };
            let opened = match sniff(&next) {
                Ok(Compression::None) => {
                    self.open_plain(&next, f.key.clone(), start).map(|mut n| {
                        n.state = State::Draining { quiet_since: None };
                        n
                    })
                }
                Ok(_) => std::fs::metadata(&next).and_then(|md| {
                    self.open_compressed(&next, f.key.clone(), start, Meta::of(&md))
                }),
                Err(e) => Err(e),
            };
            match opened {
                Ok(n) => {
                    tracing::info!(file = %f.key, rotated = %next.display(), "reading a file rotated while orbwatch was stopped");
                    self.followers.push(n);
                    return;
                }
                Err(e) => {
                    let msg = format!("cannot read {}: {e}", next.display());
                    self.problem(&next, msg);
                }
            }
        }
        self.queued.remove(&f.key);
    }

    // ------------------------------------------------------------- problems

    fn problem(&self, path: &Path, message: String) {
        let Ok(mut problems) = self.shared.problems.lock() else {
            return;
        };
        match problems.iter_mut().find(|p| p.path == path) {
            Some(p) if p.message == message => return,
            Some(p) => p.message = message.clone(),
            None => problems.push(TailProblem {
                path: path.to_path_buf(),
                message: message.clone(),
            }),
        }
        self.shared.counters.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("{message}");
    }

    fn clear_problem(&self, path: &Path) {
        if let Ok(mut problems) = self.shared.problems.lock() {
            problems.retain(|p| p.path != path);
        }
    }
}

/// The rotated set a path belongs to: `dir/auth.log` for `dir/auth.log`,
/// `dir/auth.log.1`, `dir/auth.log.2.gz`, `dir/auth.log-20240101`.
fn set_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (base, _) = orbwatch_source::inputs::rotation_key(&name);
    path.with_file_name(base)
}

/// Compression of a file, from its first bytes.
fn sniff(path: &Path) -> std::io::Result<Compression> {
    let file = File::open(path)?;
    let mut head = [0u8; 8];
    let mut n = 0;
    while n < head.len() {
        match file.read_at(&mut head[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Compression::sniff(&head[..n]))
}

/// The first bytes (at most 1024) of an uncompressed file.
fn plain_head(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    read_head_at(&file, len)
}

fn read_head_at(file: &File, len: u64) -> std::io::Result<Vec<u8>> {
    let want = len.min(HEAD_BYTES as u64) as usize;
    let mut head = vec![0u8; want];
    let mut n = 0;
    while n < want {
        match file.read_at(&mut head[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    head.truncate(n);
    Ok(head)
}

/// Read decompressed bytes, first discarding `skip` of them.
fn read_skipping(r: &mut dyn BufRead, skip: &mut u64, buf: &mut [u8]) -> std::io::Result<usize> {
    while *skip > 0 {
        let avail = r.fill_buf()?;
        if avail.is_empty() {
            return Ok(0);
        }
        let n = avail.len().min(*skip as usize);
        r.consume(n);
        *skip -= n as u64;
    }
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}
