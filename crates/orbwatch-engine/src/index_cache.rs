//! A cache of compiled indicator engines for large `--feed` files.
//!
//! Parsing and indexing a list of ten million addresses takes seconds,
//! several times longer than sweeping a day of logs with it. Teams that
//! hunt every night with the same big list should not pay that each time,
//! so the compiled engine is written to a snapshot in the user's cache
//! directory and read back, in a fraction of the time, while the feed
//! files are unchanged (same paths, sizes and modification times, same
//! reading options, same orbwatch version).
//!
//! Only hunts whose indicators all come from `--feed` files of at least
//! [`MIN_FEED_BYTES`] use it: small feeds load faster than a snapshot is
//! checked, and the store has its own life cycle. `--no-index-cache`
//! turns it off; `ORBWATCH_CACHE_DIR` moves it.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use orbwatch_detect::{InternalNets, IocEngine};
use sha2::{Digest, Sha256};

/// Feeds smaller than this in total are not cached.
pub const MIN_FEED_BYTES: u64 = 8 << 20;
/// Snapshots kept; older ones are removed when a new one is written.
const KEEP: usize = 3;
const EXT: &str = "owix";

/// Where snapshots live: `$ORBWATCH_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/orbwatch/index`, else `~/.cache/orbwatch/index`.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("ORBWATCH_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("orbwatch").join("index"))
}

/// What a snapshot must have been built from to be reused: one line per
/// feed file (canonical path, size, modification time) plus the reading
/// options. `None` when a feed cannot be described (unreadable), or the
/// feeds are too small to be worth caching.
pub fn key(feeds: &[PathBuf], options: &str) -> Option<String> {
    let mut total = 0u64;
    let mut key = format!("orbwatch {}\n{options}\n", env!("CARGO_PKG_VERSION"));
    for f in feeds {
        let meta = std::fs::metadata(f).ok()?;
        if !meta.is_file() {
            return None;
        }
        let mtime = meta
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_nanos();
        let path = std::fs::canonicalize(f).ok()?;
        total += meta.len();
        key.push_str(&format!("{}\t{}\t{mtime}\n", path.display(), meta.len()));
    }
    (total >= MIN_FEED_BYTES).then_some(key)
}

fn file_for(dir: &Path, key: &str) -> PathBuf {
    let digest = Sha256::digest(key.as_bytes());
    let name: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    dir.join(format!("{name}.{EXT}"))
}

/// A cached engine for `key`, with the notices printed when it was built
/// (rejected entries), or `None` when there is none or it cannot be used.
/// A damaged snapshot is reported and ignored.
pub fn load(dir: &Path, key: &str, internal: &InternalNets) -> Option<(IocEngine, Vec<String>)> {
    let path = file_for(dir, key);
    let file = File::open(&path).ok()?;
    let len = file.metadata().ok()?.len();
    match IocEngine::read_snapshot(
        BufReader::with_capacity(1 << 20, file),
        len,
        internal.clone(),
    ) {
        Ok((engine, tag)) => {
            let (k, notices) = tag.split_once('\u{0}').unwrap_or((tag.as_str(), ""));
            if k != key {
                return None;
            }
            let notices = notices
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect();
            Some((engine, notices))
        }
        Err(err) => {
            tracing::warn!(
                "ignoring the index cache {}: {err}; the feeds are read again",
                path.display()
            );
            let _ = std::fs::remove_file(&path);
            None
        }
    }
}

/// Write `engine` as the snapshot for `key`, through a temporary file
/// and a rename so that a crash never leaves half a snapshot. Failure only
/// costs the next hunt its speed-up, so it is a warning.
pub fn store(dir: &Path, key: &str, notices: &[String], engine: &IocEngine) {
    let result = (|| -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let path = file_for(dir, key);
        let tmp = tempfile::NamedTempFile::new_in(dir)?;
        let tag = format!("{key}\u{0}{}", notices.join("\n"));
        engine.write_snapshot(BufWriter::with_capacity(1 << 20, tmp.as_file()), &tag)?;
        tmp.persist(&path).map_err(|e| e.error)?;
        Ok(path)
    })();
    match result {
        Ok(path) => {
            tracing::info!("compiled indicators cached in {}", path.display());
            evict(dir, &path);
        }
        Err(err) => tracing::warn!(
            "could not cache the compiled indicators in {}: {err}",
            dir.display()
        ),
    }
}

/// Keep the newest [`KEEP`] snapshots.
fn evict(dir: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut snaps: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == EXT) && p != keep)
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    snaps.sort();
    let excess = (snaps.len() + 1).saturating_sub(KEEP);
    for (_, p) in snaps.into_iter().take(excess) {
        let _ = std::fs::remove_file(p);
    }
}
