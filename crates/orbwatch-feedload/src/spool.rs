//! Spool files: a feed that arrives over the network (the server's upload,
//! a subscription's download) is written to a temporary file first and
//! stored from there. Every way out of a request removes its file; a
//! process killed mid-way cannot, so the next one sweeps what is old.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// What [`remove_stale`] did with the spool files of one folder.
#[derive(Debug, Default)]
pub struct Swept {
    /// The files removed: each held a feed that was never stored.
    pub removed: Vec<PathBuf>,
    /// The files that were stale but could not be removed, and why.
    pub failed: Vec<(PathBuf, std::io::Error)>,
}

/// Remove the files `PREFIX*.part` in `dir` not written for longer than
/// `older_than`, as of `now`. A live request's file is younger than that
/// (callers pick `older_than` longer than a request may last), so only
/// what a killed process left goes. An unreadable folder sweeps nothing:
/// the caller decides whether that matters. Callers log each removal in
/// their own words (whose feed was lost, and what to do).
pub fn remove_stale(
    dir: &Path,
    prefix: &str,
    older_than: Duration,
    now: SystemTime,
) -> std::io::Result<Swept> {
    let mut swept = Swept::default();
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(prefix) && name.ends_with(".part")) {
            continue;
        }
        let stale = entry
            .metadata()
            .ok()
            .filter(std::fs::Metadata::is_file)
            .and_then(|m| m.modified().ok())
            .and_then(|written| now.duration_since(written).ok())
            .is_some_and(|age| age > older_than);
        if !stale {
            continue;
        }
        let path = entry.path();
        match std::fs::remove_file(&path) {
            Ok(()) => swept.removed.push(path),
            Err(e) => swept.failed.push((path, e)),
        }
    }
    Ok(swept)
}
