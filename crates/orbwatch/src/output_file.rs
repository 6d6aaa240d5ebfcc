//! Writing an output file so that it is either whole or not there.
//!
//! Why: a hunt that meets a full disk used to destroy the previous
//! `--output` file and leave a cut-off last line, and `--coverage` errors
//! were not even noticed (the buffer was never flushed). Here a regular
//! file is written to a temporary file beside it, flushed, synced, checked
//! and only then renamed over the target; on any error the temporary file
//! is removed, the old file is left as it was, and the error names the
//! path. Targets that are not regular files (`/dev/stdout`, a FIFO, a
//! terminal, `/dev/full`) cannot be renamed over; they are written
//! directly, and their flush is checked too.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Write `path` through `write`, atomically where `path` is (or will be) a
/// regular file. `what` says what is written, for the error message
/// ("findings", "coverage").
pub fn write_file<T>(
    path: &Path,
    what: &str,
    write: impl FnOnce(&mut dyn Write) -> io::Result<T>,
) -> Result<T> {
    let special = fs::metadata(path).is_ok_and(|m| !m.is_file());
    if special {
        let f = fs::OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("cannot open {} to write {what}", path.display()))?;
        let mut w = BufWriter::new(f);
        return write(&mut w)
            .and_then(|v| w.flush().map(|()| v))
            .with_context(|| format!("cannot write {what} to {}", path.display()));
    }
    let tmp = temp_beside(path)?;
    let result = (|| -> io::Result<T> {
        let file = fs::File::create(&tmp)?;
        let mut w = BufWriter::new(file);
        let value = write(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        Ok(value)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| {
        format!(
            "cannot write {what} to {} (nothing was changed there; check the free space and permissions of its folder)",
            path.display()
        )
    })
}

/// `.NAME.orbwatch-PID.tmp` in the folder of `path`: the same file system,
/// so the rename is atomic.
fn temp_beside(path: &Path) -> Result<PathBuf> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?;
    Ok(dir.join(format!(
        ".{}.orbwatch-{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_old_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.jsonl");
        fs::write(&p, "old line\n").unwrap();
        let err = write_file(&p, "findings", |w| {
            w.write_all(b"half a li")?;
            Err::<(), _>(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains(&p.display().to_string()));
        assert_eq!(fs::read_to_string(&p).unwrap(), "old line\n");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
        write_file(&p, "findings", |w| w.write_all(b"new\n")).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new\n");
    }
}
