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

/// The fewest characters of an id that `triage` and `findings show`
/// accept as a prefix. As with git's abbreviated hashes, a shorter prefix
/// too easily names a finding the analyst did not mean: `triage 1` once
/// dismissed a port scan, and with it every later scan from that source.
pub const MIN_ID_PREFIX: usize = 6;

/// Turn what the user typed into one stored finding id. A prefix must have
/// at least [`MIN_ID_PREFIX`] characters, even when it is unambiguous
/// today: a later hunt could make it name another finding.
pub fn resolve_id(store: &Store, wanted: &str) -> Result<String> {
    let typed = wanted.trim();
    if typed.chars().count() < MIN_ID_PREFIX {
        bail!(
            "`{typed}` is too short to name a finding: give at least {MIN_ID_PREFIX} characters of its id (`orbwatch findings` shows the ids)"
        );
    }
    match store.resolve_finding_id(typed)? {
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
        eprintln!("orbwatch: {id} marked {status} by {author}");
        if status.suppresses() {
            // Say what the decision reaches beyond the one finding: the
            // others it dismisses now, and what it will keep dismissing.
            let all = store.findings(&orbwatch_store::FindingFilter {
                show_suppressed: true,
                ..Default::default()
            })?;
            let others: Vec<&str> = all
                .iter()
                .filter(|f| f.key == d.key && f.finding.id != id && f.suppressed)
                .map(|f| f.finding.id.as_str())
                .collect();
            let listed = if others.is_empty() {
                String::new()
            } else {
                format!(
                    ": {}{}",
                    others
                        .iter()
                        .take(5)
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", "),
                    if others.len() > 5 { ", …" } else { "" }
                )
            };
            eprintln!(
                "orbwatch: this decision dismisses {} finding{} now (this one and {} other{}{listed})",
                others.len() + 1,
                if others.is_empty() { "" } else { "s" },
                others.len(),
                if others.len() == 1 { "" } else { "s" },
            );
            eprintln!(
                "orbwatch: and it will keep dismissing every {} in later hunts; `orbwatch triage {id} --status new` undoes it",
                describe_key(&d.key)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A suppression key in words (see `orbwatch_store::suppression_key`):
/// `ioc|<indicator>|<peer>` or `<kind>|<source>`.
fn describe_key(key: &str) -> String {
    let parts: Vec<&str> = key.split('|').collect();
    match parts.as_slice() {
        ["ioc", ind, "-"] => format!("sighting of {ind} (peer unknown)"),
        ["ioc", ind, peer] => format!("sighting of {ind} with {peer}"),
        [kind, "-"] => format!("{kind} finding without a source address"),
        [kind, src] => format!("{kind} finding from {src}"),
        _ => format!("finding with the key {key}"),
    }
}
