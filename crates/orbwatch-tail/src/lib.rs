//! `watch --tail PATH_OR_GLOB`: follows log files as they grow and hands
//! their lines to the live pipeline ([`orbwatch_live`]), surviving
//! rotation, and resuming after a restart exactly where the committed
//! findings end.
//!
//! # Model
//!
//! One thread follows every matched file. It polls: every
//! [`TailConfig::poll_interval`] it looks at each file (has the path been
//! renamed away, deleted, truncated?) and reads what was appended; every
//! [`TailConfig::rescan_interval`] it expands the globs again. Polling
//! rather than inotify (`notify`), because polling sees every case the
//! same way on every file system — NFS, overlay and bind mounts, files
//! replaced while the daemon was stopped — and cannot lose an event to a
//! full inotify queue; a 250 ms poll costs one `stat` and one `pread` of
//! at most 1 KiB per file, and a busy file is read continuously anyway.
//!
//! Each line goes out as a [`LiveRecord`] (`Payload::Line`, `number` = its
//! line number in the file, `offset` = its byte offset) with a
//! [`Checkpoint`]: `source` = the followed path, `position` = the offset
//! after the line, `identity` = `device:inode:head_sha256:head_len:lines`.
//! [`RecordSender::send`] blocks while the pipeline is full, so nothing is
//! dropped. Once the engine has committed the findings of records up to a
//! checkpoint, [`offsets_from_checkpoints`] turns the committed
//! checkpoints into [`TailOffset`] rows, which the engine saves with
//! [`orbwatch_store::save_tail_offsets`] in the same transaction; at the
//! next start they are passed to [`spawn`].
//!
//! # Rotation
//!
//! - **Rename** (logrotate's default, `create`): the path now names
//!   another file or none. The old file's descriptor is read on to its
//!   end until it has been quiet for [`TailConfig::rotate_wait`] (the
//!   writer may write a few lines before it reopens), its last line is
//!   handed out even without a newline, then the new file at the path is
//!   read from its start. Lines of one path therefore stay in order.
//! - **copytruncate**: the file is shorter than the position read, or its
//!   first bytes changed: it is read again from 0 (counted in
//!   [`TailCounters::copytruncates`]). Lines written between logrotate's
//!   copy and its truncation are lost; logrotate documents that.
//!   The copy (`app.log.1`), if a glob matches it, is recognised by its
//!   first bytes and not read again.
//! - **Compressed rotated files** (`auth.log.1.gz`, or `.zst`, `.bz2`,
//!   `.xz`, `.lz4`, told by their magic bytes): when the stored offset of
//!   a path belongs to a file that is no longer there, the files rotated
//!   beside it (same name plus a number or date, compressed or not) are
//!   searched for it — by inode, or for a compressed one by the hash of
//!   its decompressed first bytes — and the rest of it is read from the
//!   stored position before the new file. A compressed file a glob matches
//!   is read once, from the position known for its content, or, if
//!   unknown, by the start rule below; it is waited for until its size
//!   stops changing (it may still be being written).
//! - **Rotated while orbwatch was stopped**: the rest of the stored file
//!   (found as above) is read first, then the files rotated after it
//!   (lower numbers, later dates), whole and oldest first, then the new
//!   file at the path — all under the followed path's name. Rotated files
//!   of that set that a glob matches and that have no offset of their own
//!   were read in an earlier run, or before the stored file: they are not
//!   read again.
//! - **Deleted** files are read to their end (the descriptor stays valid)
//!   and dropped.
//!
//! A plain path sees one rotation per poll plus `rotate_wait`: a file
//! that lived at the path for less than that (several rotations within a
//! second) is never opened under it. Where that can happen, follow a glob
//! that also matches the rotated names (`/var/log/app.log*`): such files
//! are then found under their new names and read whole.
//!
//! # Where a file starts
//!
//! - A stored offset whose identity matches the file: exactly there.
//!   The file is shorter than the position: it was truncated while
//!   orbwatch was stopped: from 0.
//! - An inode reused by another file (the head hash differs): from 0.
//! - No stored offset, file present at the first scan: [`StartAt`] —
//!   [`StartAt::End`] by default (see there why).
//! - Any file that appears after the first scan, and the new file at a
//!   rotated path: from its start, so that no line written before
//!   orbwatch saw the file is missed.
//!
//! Problems (a directory or an unreadable file matched, a corrupt
//! compressed file) are logged once, counted in
//! [`TailCounters::errors`] and listed by [`TailHandle::problems`]; the
//! other files go on.

mod follow;
mod identity;
mod pattern;
mod split;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub use identity::offsets_from_checkpoints;
pub use orbwatch_live::{Checkpoint, LiveRecord, RecordSender, SourceStats};
pub use orbwatch_store::TailOffset;

/// Where a file without a stored offset starts, when it is already there
/// at the first scan. Files that appear later always start at their
/// beginning.
///
/// Like Vector's `read_from` (and Fluent Bit's `read_from_head`), it only
/// applies to files the tail has no position for. The default differs
/// from Vector's (`beginning`): orbwatch blocks addresses and raises
/// alerts from what it reads, and the first start of the daemon on a host
/// with months of logs would otherwise alert and block on old events.
/// Reading what is already there is `orbwatch hunt`'s job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    /// From the first byte.
    Beginning,
    /// From the end: only lines written from now on (a line being written
    /// at the end is read whole once it is complete).
    #[default]
    End,
}

impl std::str::FromStr for StartAt {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "beginning" => Ok(StartAt::Beginning),
            "end" => Ok(StartAt::End),
            other => Err(format!(
                "`{other}` is not a start position; use `beginning` or `end`"
            )),
        }
    }
}

/// What to follow and how.
#[derive(Debug, Clone)]
pub struct TailConfig {
    /// Paths and globs (`/var/log/auth.log`, `/var/log/nginx/*.log`,
    /// `/srv/**/access.log`). A path that does not exist yet is followed
    /// once it appears.
    pub paths: Vec<String>,
    /// See [`StartAt`].
    pub start_at: StartAt,
    /// How often each file is looked at when there is nothing to read.
    pub poll_interval: Duration,
    /// How often globs are expanded again to find new files.
    pub rescan_interval: Duration,
    /// How long a file renamed away or deleted must stay quiet at its end
    /// before it is closed (its writer may still be writing to it).
    pub rotate_wait: Duration,
    /// Longest line kept; longer ones are cut and counted in
    /// [`SourceStats::truncated`].
    pub max_line: usize,
}

impl Default for TailConfig {
    fn default() -> Self {
        Self {
            paths: Vec::new(),
            start_at: StartAt::End,
            poll_interval: Duration::from_millis(250),
            rescan_interval: Duration::from_secs(1),
            rotate_wait: Duration::from_secs(1),
            max_line: DEFAULT_MAX_LINE,
        }
    }
}

/// Default bound of a line (64 KiB).
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;

/// Why the tail could not start.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error("--tail needs at least one path or glob")]
    NoPaths,
    #[error("--tail `{pattern}`: {reason}; quote the glob and check its brackets and braces")]
    BadPattern { pattern: String, reason: String },
    #[error("cannot start the tail thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("the tail thread panicked: {0}; this is a bug, please report it with the log")]
    Panicked(String),
}

/// Counters of the tail beyond [`SourceStats`] (read by the status line).
#[derive(Debug, Default)]
pub struct TailCounters {
    /// Files followed now.
    pub files: AtomicU64,
    /// Files renamed away or deleted while followed.
    pub rotations: AtomicU64,
    /// Files found truncated (copytruncate) and read again from 0.
    pub copytruncates: AtomicU64,
    /// Compressed files read.
    pub compressed_read: AtomicU64,
    /// NUL bytes skipped (copytruncate or crash padding).
    pub nul_bytes: AtomicU64,
    /// Problems reported (a directory or an unreadable file matched, …).
    pub errors: AtomicU64,
}

/// A [`TailCounters`] snapshot.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TailCountersSnapshot {
    pub files: u64,
    pub rotations: u64,
    pub copytruncates: u64,
    pub compressed_read: u64,
    pub nul_bytes: u64,
    pub errors: u64,
}

impl TailCounters {
    pub fn snapshot(&self) -> TailCountersSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TailCountersSnapshot {
            files: g(&self.files),
            rotations: g(&self.rotations),
            copytruncates: g(&self.copytruncates),
            compressed_read: g(&self.compressed_read),
            nul_bytes: g(&self.nul_bytes),
            errors: g(&self.errors),
        }
    }
}

/// A path that cannot be followed now, and why (as logged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailProblem {
    pub path: PathBuf,
    pub message: String,
}

/// State shared between the tail thread and its handle.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub stop: AtomicBool,
    pub counters: TailCounters,
    pub problems: Mutex<Vec<TailProblem>>,
}

/// The running tail.
#[derive(Debug)]
pub struct TailHandle {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Start following `cfg.paths` on a thread of its own.
///
/// `initial` are the offsets stored by earlier runs
/// ([`orbwatch_store::Store::load_tail_offsets`]); rows for paths no
/// longer configured are ignored. Lines go to `sender`; counts to `stats`.
pub fn spawn(
    cfg: TailConfig,
    initial: Vec<TailOffset>,
    sender: RecordSender,
    stats: Arc<SourceStats>,
) -> Result<TailHandle, TailError> {
    if cfg.paths.is_empty() {
        return Err(TailError::NoPaths);
    }
    let patterns = cfg
        .paths
        .iter()
        .map(|p| {
            pattern::Pattern::parse(p).map_err(|reason| TailError::BadPattern {
                pattern: p.clone(),
                reason,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let shared = Arc::new(Shared::default());
    let mut tail = follow::Tail::new(cfg, patterns, initial, sender, stats, shared.clone());
    let thread = std::thread::Builder::new()
        .name("orbwatch-tail".into())
        .spawn(move || tail.run())
        .map_err(TailError::Thread)?;
    Ok(TailHandle {
        shared,
        thread: Some(thread),
    })
}

impl TailHandle {
    /// Stop: the lines already read are handed over (waiting for the
    /// pipeline if it is full), a line not yet complete is left for the
    /// next start, and the thread ends. The offsets to save are those of
    /// the checkpoints the engine commits afterwards.
    ///
    /// The pipeline must go on taking records (or drop its receiver)
    /// until this returns: a full channel that nobody reads would keep
    /// the last send waiting.
    pub fn stop(mut self) -> Result<(), TailError> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Result<(), TailError> {
        self.shared.stop.store(true, Ordering::SeqCst);
        match self.thread.take() {
            Some(t) => t.join().map_err(|e| {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".into());
                TailError::Panicked(msg)
            }),
            None => Ok(()),
        }
    }

    /// Has the thread ended (stopped, or the pipeline closed)?
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// The tail's own counters.
    pub fn counters(&self) -> TailCountersSnapshot {
        self.shared.counters.snapshot()
    }

    /// Paths that cannot be followed now, with the reason.
    pub fn problems(&self) -> Vec<TailProblem> {
        self.shared
            .problems
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default()
    }

    /// The offsets to save for committed checkpoints (the same as
    /// [`offsets_from_checkpoints`]).
    pub fn offsets_for(&self, checkpoints: &[Checkpoint]) -> Vec<TailOffset> {
        offsets_from_checkpoints(checkpoints)
    }
}

impl Drop for TailHandle {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}
