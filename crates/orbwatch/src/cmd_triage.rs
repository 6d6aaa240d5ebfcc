//! `orbwatch triage`: record an analyst's decision on a finding.
//!
//! Decisions are added, never overwritten: `orbwatch triage ID` without
//! `--status` prints the history. A `false-positive` or `benign` decision
//! also dismisses the same indicator and peer (or behaviour kind and
//! source) in later hunts.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use orbwatch_store::{IdMatch, Store, TriageStatus};

use crate::Cli;

/// Arguments of `orbwatch triage`.
#[derive(Args, Debug)]
pub struct TriageArgs {
    /// The finding's id, or the start of it (as `orbwatch findings` shows).
    pub finding_id: String,
    /// new, confirmed, false-positive or benign. Without it, the history
    /// of decisions on the finding is printed.
    #[arg(long)]
    pub status: Option<String>,
    /// Why: kept with the decision and shown in reports.
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
    /// Who decides (default: $USER, then $LOGNAME).
    #[arg(long, value_name = "NAME")]
    pub author: Option<String>,
}

/// Open the store for a command that only makes sense on an existing one.
pub fn open_existing(cli: &Cli) -> Result<Store> {
    let path = crate::db_path::resolve(cli)?;
    if !crate::db_path::exists(&path) {
        bail!(
            "the store {} does not exist yet: run `orbwatch hunt --db {} ...` first, so that there are findings to work on",
            path.display(),
            path.display()
        );
    }
    Store::open(&path).with_context(|| format!("cannot open the store {}", path.display()))
}

/// Turn what the user typed into one stored finding id.
pub fn resolve_id(store: &Store, wanted: &str) -> Result<String> {
    match store.resolve_finding_id(wanted)? {
        IdMatch::Unique(id) => Ok(id),
        IdMatch::Ambiguous(ids) => bail!(
            "`{wanted}` is the start of several findings ({}{}); give more characters of the id",
            ids.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
            if ids.len() > 5 { ", …" } else { "" }
        ),
        IdMatch::None => bail!(
            "no finding `{wanted}` in the store {}; `orbwatch findings --show-suppressed` lists the findings it has",
            store.path().display()
        ),
    }
}

/// Record a decision, or print the history when no `--status` is given.
pub fn run(cli: &Cli, args: &TriageArgs) -> Result<ExitCode> {
    let mut store = open_existing(cli)?;
    let id = resolve_id(&store, &args.finding_id)?;
    let Some(status) = &args.status else {
        let hist = store.decisions(Some(&id))?;
        if hist.is_empty() {
            println!("{id}: new (no decision yet)");
        }
        for d in hist {
            println!(
                "{}  {}  {:<14}  {}{}",
                d.at.strftime("%Y-%m-%d %H:%M:%S"),
                d.finding_id,
                d.status.as_str(),
                d.author,
                d.note.map(|n| format!(": {n}")).unwrap_or_default()
            );
        }
        return Ok(ExitCode::SUCCESS);
    };
    let status = TriageStatus::parse(status).with_context(|| {
        format!(
            "--status {status:?} is not a triage status; use one of {}",
            TriageStatus::ALL.map(|s| s.as_str()).join(", ")
        )
    })?;
    let author = args
        .author
        .clone()
        .filter(|a| !a.trim().is_empty())
        .or_else(|| {
            ["USER", "LOGNAME"]
                .iter()
                .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        })
        .unwrap_or_else(|| "unknown".into());
    let d = store.triage(&id, status, args.note.as_deref(), &author, None)?;
    if !cli.quiet {
        let effect = if status.suppresses() {
            format!(
                "; findings with the same key ({}) are dismissed in this and later hunts",
                d.key
            )
        } else {
            String::new()
        };
        eprintln!("orbwatch: {id} marked {status} by {author}{effect}");
    }
    Ok(ExitCode::SUCCESS)
}
