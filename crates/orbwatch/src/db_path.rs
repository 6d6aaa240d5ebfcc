//! Where the store lives: `--db`, then `ORBWATCH_DB` (both via clap), then
//! `$XDG_DATA_HOME/orbwatch/orbwatch.db`, then `~/.local/share/...`.

use std::path::PathBuf;

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
