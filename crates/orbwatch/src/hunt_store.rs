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

use anyhow::{Context, Result};
use orbwatch_detect::{Coverage, Finding};

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

/// Store the run when the hunt uses a store, and return the findings to
/// print: all of them with `--show-suppressed`, else those that earlier
/// triage did not dismiss. Without a store, the findings pass unchanged.
pub fn persist(
    cli: &Cli,
    args: &HuntArgs,
    coverage: &Coverage,
    findings: Vec<Finding>,
) -> Result<Vec<Finding>> {
    if !uses_store(cli, args) {
        return Ok(findings);
    }
    let path = match &cli.db {
        Some(p) => p.clone(),
        // Feeds came from the default store: it exists.
        None => crate::db_path::resolve(cli)?,
    };
    let mut store = orbwatch_store::Store::open(&path)
        .with_context(|| format!("cannot open the store {} to keep the hunt", path.display()))?;
    let rec = store
        .record_hunt(&args_summary(args), coverage, &findings)
        .with_context(|| format!("cannot keep the hunt in the store {}", path.display()))?;
    if !cli.quiet {
        eprintln!(
            "orbwatch: hunt #{} kept in {} with {} findings; `orbwatch findings` lists them, `orbwatch report` writes reports",
            rec.hunt_id,
            path.display(),
            rec.findings
        );
    }
    if rec.suppressed.is_empty() || args.show_suppressed {
        return Ok(findings);
    }
    if !cli.quiet {
        eprintln!(
            "orbwatch: {} finding(s) dismissed by earlier triage (false-positive or benign) are not shown; add --show-suppressed to see them",
            rec.suppressed.len()
        );
    }
    let hidden: std::collections::HashSet<&str> =
        rec.suppressed.iter().map(String::as_str).collect();
    Ok(findings
        .into_iter()
        .filter(|f| !hidden.contains(f.id.as_str()))
        .collect())
}
