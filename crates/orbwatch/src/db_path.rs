//! Where the store lives: `--db`, then `ORBWATCH_DB` (both via clap), then
//! `$XDG_DATA_HOME/orbwatch/orbwatch.db`, then `~/.local/share/...`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::Cli;

/// Resolve the store path and create its parent directory.
pub fn resolve(cli: &Cli) -> Result<PathBuf> {
    let path = match &cli.db {
        Some(p) => p.clone(),
        None => {
            let base = std::env::var_os("XDG_DATA_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
                .context(
                    "cannot find a place for the store: set --db, ORBWATCH_DB or XDG_DATA_HOME",
                )?;
            base.join("orbwatch").join("orbwatch.db")
        }
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the store's folder {}", parent.display()))?;
    }
    Ok(path)
}

/// Is there a store at `path`? A file of 0 bytes is not one: SQLite would
/// silently make it into a new, empty store, and the commands that need an
/// existing store would then report nothing instead of saying it is
/// missing. Such a file is named on stderr and treated as missing.
pub fn exists(path: &Path) -> bool {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.len() == 0 => {
            crate::closed_pipe::note(format_args!(
                "orbwatch: warning: the store {} is an empty file (0 bytes), not a store; it is treated as missing",
                path.display()
            ));
            false
        }
        Ok(_) => true,
        Err(_) => false,
    }
}
