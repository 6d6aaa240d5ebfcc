//! Keeping a hunt in the store: its findings and coverage, so that they can
//! be triaged (`orbwatch triage`), listed (`orbwatch findings`) and
//! reported (`orbwatch report`) later; and hiding findings that earlier
//! triage dismissed.
//!
//! When is a hunt kept? When the user named a store (`--db` or
//! `ORBWATCH_DB`), or when the hunt took its indicators from the store
//! (no `--feed`): that store is then the analyst's workspace, it already
//! exists (hunt refuses to run on a missing one), and the findings can be
//! traced to the feed versions in it. A hunt with only `--feed` files and
//! no `--db` never creates or touches the default store, as before.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use orbwatch_detect::{Coverage, Finding};
use orbwatch_store::{Store, StoreError};

use crate::Cli;
use crate::cmd_hunt::HuntArgs;

/// Does this hunt use a store (see the module documentation)?
fn uses_store(cli: &Cli, args: &HuntArgs) -> bool {
    cli.db.is_some() || args.feeds.is_empty()
}

/// What was asked, for the `hunts` table.
fn args_summary(args: &HuntArgs) -> serde_json::Value {
    serde_json::json!({
        "paths": args.paths,
        "feeds": args.feeds.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "feeds_from_store": args.feeds.is_empty(),
        "since": args.since,
        "until": args.until,
        "internal": args.internal.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        "input_format": args.input_format,
        "no_behaviour": args.no_behaviour,
        "year": args.year,
        "timezone": args.timezone,
    })
}

/// The store a hunt keeps its run in, opened (or not) before anything is
/// written, so that triage decisions can hide dismissed findings from the
/// output while the store is still busy with another writer (reads do not
/// wait in WAL mode).
pub struct HuntStore {
    path: PathBuf,
    store: Option<Store>,
    /// Why the store could not be opened, when it could not.
    open_error: Option<anyhow::Error>,
}

/// How long a hunt keeps trying to store its run while another process
/// holds the store's write lock: `ORBWATCH_STORE_WAIT` seconds, default 300.
fn store_wait() -> Duration {
    std::env::var("ORBWATCH_STORE_WAIT")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(300))
}

fn open_store(path: &Path, wait: Duration) -> Result<Store, StoreError> {
    let store = Store::open(path)?;
    // Several shorter waits rather than one long one, so that the hunt can
    // say it is waiting and back off between attempts.
    let per_attempt = (wait / 4).clamp(
        Duration::from_millis(100),
        orbwatch_store::DEFAULT_BUSY_TIMEOUT,
    );
    store.set_busy_timeout(per_attempt)?;
    Ok(store)
}

impl HuntStore {
    /// The store this hunt keeps its run in, or `None` when it uses none
    /// (see the module documentation). Failing to open it is not an error
    /// yet: the hunt still writes its output, then [`HuntStore::keep`]
    /// retries and, as a last resort, saves the findings to a file.
    pub fn open(cli: &Cli, args: &HuntArgs) -> Result<Option<HuntStore>> {
        if !uses_store(cli, args) {
            return Ok(None);
        }
        let path = match &cli.db {
            Some(p) => p.clone(),
            // Feeds came from the default store: it exists.
            None => crate::db_path::resolve(cli)?,
        };
        let (store, open_error) = match open_store(&path, store_wait()) {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(anyhow::Error::new(e))),
        };
        Ok(Some(HuntStore {
            path,
            store,
            open_error,
        }))
    }

    /// The findings to print: all of them with `--show-suppressed`, else
    /// those that earlier triage did not dismiss.
    pub fn visible<'a>(
        &self,
        cli: &Cli,
        args: &HuntArgs,
        findings: &'a [Finding],
    ) -> Vec<&'a Finding> {
        let Some(store) = &self.store else {
            return findings.iter().collect();
        };
        if args.show_suppressed {
            return findings.iter().collect();
        }
        let dismissed = match store.dismissed(findings) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("cannot read triage decisions, showing every finding: {e}");
                return findings.iter().collect();
            }
        };
        if dismissed.is_empty() {
            return findings.iter().collect();
        }
        if !cli.quiet {
            crate::closed_pipe::note(format_args!(
                "orbwatch: {} finding(s) dismissed by earlier triage (false-positive or benign) are not shown; add --show-suppressed to see them",
                dismissed.len()
            ));
        }
        let hidden: std::collections::HashSet<&str> =
            dismissed.iter().map(String::as_str).collect();
        findings
            .iter()
            .filter(|f| !hidden.contains(f.id.as_str()))
            .collect()
    }

    /// Keep the run in the store. While the store is busy (another process
    /// writes to it), retry with a growing pause for up to
    /// `ORBWATCH_STORE_WAIT` seconds. When it cannot be kept, save the
    /// findings (JSON lines) and the coverage to files named in the error,
    /// so that nothing the hunt found is lost.
    pub fn keep(
        mut self,
        cli: &Cli,
        args: &HuntArgs,
        coverage: &Coverage,
        findings: &[Finding],
    ) -> Result<()> {
        let wait = store_wait();
        let start = Instant::now();
        let mut pause = Duration::from_millis(200);
        let mut told = false;
        let summary = args_summary(args);
        let failure: anyhow::Error = loop {
            let attempt = match self.store.as_mut() {
                Some(store) => store.record_hunt(&summary, coverage, findings),
                None => match open_store(&self.path, wait) {
                    Ok(s) => {
                        self.open_error = None;
                        self.store
                            .insert(s)
                            .record_hunt(&summary, coverage, findings)
                    }
                    Err(e) => Err(e),
                },
            };
            match attempt {
                Ok(rec) => {
                    if !cli.quiet {
                        crate::closed_pipe::note(format_args!(
                            "orbwatch: hunt #{} kept in {} with {} findings; `orbwatch findings` lists them, `orbwatch report` writes reports",
                            rec.hunt_id,
                            self.path.display(),
                            rec.findings
                        ));
                    }
                    return Ok(());
                }
                Err(e) if e.is_busy() && start.elapsed() + pause <= wait => {
                    if !told && !cli.quiet {
                        crate::closed_pipe::note(format_args!(
                            "orbwatch: the store {} is busy (another program is writing to it); retrying for up to {} s to keep the hunt",
                            self.path.display(),
                            wait.as_secs()
                        ));
                        told = true;
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    break match self.open_error.take() {
                        Some(open) if self.store.is_none() => open,
                        _ => anyhow::Error::new(e),
                    };
                }
            }
        };
        let saved = save_unkept(&self.path, coverage, findings);
        match saved {
            Ok((f, c)) => Err(failure.context(format!(
                "cannot keep the hunt in the store {}; its {} finding(s) were saved to {} and its coverage to {} instead: `orbwatch report --findings {} --coverage {} --html FILE` reports them",
                self.path.display(),
                findings.len(),
                f.display(),
                c.display(),
                f.display(),
                c.display()
            ))),
            Err(save) => Err(failure.context(format!(
                "cannot keep the hunt in the store {}, and saving its {} finding(s) to a file failed too ({save:#}); rerun the hunt with --output FILE",
                self.path.display(),
                findings.len()
            ))),
        }
    }
}

/// Save findings and coverage of a hunt the store did not take, beside the
/// store, else in the current folder, else in the temporary folder.
fn save_unkept(
    store: &Path,
    coverage: &Coverage,
    findings: &[Finding],
) -> Result<(PathBuf, PathBuf)> {
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let base = format!("orbwatch-unsaved-hunt-{stamp}-{}", std::process::id());
    let dirs = [
        store
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
        PathBuf::from("."),
        std::env::temp_dir(),
    ];
    let mut last = None;
    for dir in dirs {
        let f = dir.join(format!("{base}.jsonl"));
        let c = dir.join(format!("{base}.coverage.json"));
        let r = crate::output_file::write_file(&f, "findings", |w| {
            let all: Vec<&Finding> = findings.iter().collect();
            orbwatch_report::write_findings(&all, orbwatch_report::OutputFormat::Jsonl, w)
        })
        .and_then(|()| {
            crate::output_file::write_file(&c, "coverage", |w| {
                serde_json::to_writer_pretty(&mut *w, coverage)?;
                w.write_all(b"\n")
            })
        });
        match r {
            Ok(()) => return Ok((f, c)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no folder to save to")))
}
