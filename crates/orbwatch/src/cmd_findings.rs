//! `orbwatch findings`: list and filter the findings kept in the store,
//! with their triage status.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use orbwatch_detect::{FindingKind, Severity};
use orbwatch_report::{ReportFinding, write_report_csv};
use orbwatch_store::{FindingFilter, StoredFinding, TriageStatus};

use crate::Cli;

/// Filters shared by `findings` and `report`.
#[derive(Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Only findings of this kind (ioc_match, port_scan, brute_force…).
    #[arg(long)]
    pub kind: Option<String>,
    /// Only IOC matches of this feed.
    #[arg(long)]
    pub feed: Option<String>,
    /// Only findings with this triage status.
    #[arg(long)]
    pub status: Option<String>,
    /// Only findings seen at or after this time (RFC 3339 or YYYY-MM-DD).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only findings seen at or before this time.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only findings scored at least this (0–100).
    #[arg(long, value_name = "N")]
    pub min_score: Option<u8>,
    /// Only findings at least this serious: info, low, medium, high or
    /// critical.
    #[arg(long, value_name = "SEVERITY")]
    pub min_severity: Option<String>,
    /// Include findings dismissed by triage (false-positive, benign).
    #[arg(long)]
    pub show_suppressed: bool,
}

/// `orbwatch findings show ID`.
#[derive(clap::Subcommand, Debug)]
pub enum FindingsCommand {
    /// Print one finding whole (JSON: every field, all its evidence as
    /// stored, its triage state and the history of decisions).
    Show {
        /// The finding's id, or at least 6 characters of it.
        id: String,
    },
}

/// Arguments of `orbwatch findings`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct FindingsArgs {
    #[command(subcommand)]
    pub command: Option<FindingsCommand>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Only the findings of this hunt (default: the latest copy of every
    /// finding of every hunt).
    #[arg(long, value_name = "N")]
    pub hunt: Option<i64>,
    /// table (default on a terminal), jsonl (default otherwise) or csv.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

/// Turn the command-line filters into the store's.
pub fn store_filter(f: &FilterArgs, hunt: Option<i64>) -> Result<FindingFilter> {
    let kind = f
        .kind
        .as_deref()
        .map(|k| {
            FindingKind::parse(k).with_context(|| {
                format!(
                    "--kind {k:?} is not a finding kind; use one of {}",
                    FindingKind::ALL.map(|k| k.as_str()).join(", ")
                )
            })
        })
        .transpose()?;
    let status = f
        .status
        .as_deref()
        .map(|s| {
            TriageStatus::parse(s).with_context(|| {
                format!(
                    "--status {s:?} is not a triage status; use one of {}",
                    TriageStatus::ALL.map(|s| s.as_str()).join(", ")
                )
            })
        })
        .transpose()?;
    let min_severity = f
        .min_severity
        .as_deref()
        .map(|s| {
            Severity::parse(s).with_context(|| {
                format!(
                    "--min-severity {s:?} is not a severity; use one of {}",
                    Severity::ALL.map(|s| s.as_str()).join(", ")
                )
            })
        })
        .transpose()?;
    Ok(FindingFilter {
        hunt,
        kind,
        feed: f.feed.clone(),
        // Asking for dismissed findings by status implies showing them.
        show_suppressed: f.show_suppressed || status.is_some_and(TriageStatus::suppresses),
        status,
        since: crate::cli_values::parse_time_flag("--since", f.since.as_deref())?,
        until: crate::cli_values::parse_time_flag("--until", f.until.as_deref())?,
        min_score: f.min_score,
        min_severity,
        id: None,
    })
}

/// A stored finding as the report sinks take it
/// ([`ReportFinding::from_stored`], shared with `orbwatch serve`).
pub fn to_report(sf: StoredFinding) -> ReportFinding {
    ReportFinding::from_stored(sf)
}

/// The Finding JSON with a `triage` object added (when triaged) and the
/// hunt it comes from.
pub fn finding_json(rf: &ReportFinding, hunt: Option<i64>) -> Result<serde_json::Value> {
    let mut v = serde_json::to_value(&rf.finding)?;
    if let serde_json::Value::Object(m) = &mut v {
        if let Some(t) = &rf.triage {
            m.insert("triage".into(), serde_json::to_value(t)?);
        }
        if let Some(h) = hunt {
            m.insert("hunt_id".into(), h.into());
        }
    }
    Ok(v)
}

/// List the stored findings that pass the filters.
pub fn run(cli: &Cli, args: &FindingsArgs) -> Result<ExitCode> {
    if let Some(FindingsCommand::Show { id }) = &args.command {
        return show(cli, id);
    }
    let store = crate::cmd_triage::open_existing(cli)?;
    let filter = store_filter(&args.filter, args.hunt)?;
    let stored = store.findings(&filter)?;
    let format = match args.format.as_deref() {
        Some("table") => "table",
        Some("jsonl" | "json") => "jsonl",
        Some("csv") => "csv",
        Some(other) => anyhow::bail!("unknown --format `{other}`; use table, jsonl or csv"),
        None if io::stdout().is_terminal() => "table",
        None => "jsonl",
    };
    let hunts: Vec<i64> = stored.iter().map(|s| s.hunt_id).collect();
    let findings: Vec<ReportFinding> = stored.into_iter().map(to_report).collect();
    let stdout = io::stdout();
    let mut w = io::BufWriter::new(stdout.lock());
    let r: Result<()> = (|| {
        match format {
            "jsonl" => {
                for (f, h) in findings.iter().zip(&hunts) {
                    serde_json::to_writer(&mut w, &finding_json(f, Some(*h))?)?;
                    w.write_all(b"\n")?;
                }
            }
            "csv" => write_report_csv(&findings, &mut w)?,
            _ => write_table(&findings, &hunts, &mut w)?,
        }
        w.flush()?;
        Ok(())
    })();
    match r {
        Err(e)
            if e.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) => {}
        r => r?,
    }
    if findings.is_empty() && !cli.quiet {
        eprintln!(
            "orbwatch: no findings match{}",
            if filter.show_suppressed {
                ""
            } else {
                " (findings dismissed by triage are hidden; add --show-suppressed)"
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn write_table(findings: &[ReportFinding], hunts: &[i64], w: &mut dyn Write) -> io::Result<()> {
    if findings.is_empty() {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = findings
        .iter()
        .zip(hunts)
        .map(|(rf, h)| {
            let status = match rf.triage.as_ref().and_then(|t| t.inherited_from.as_ref()) {
                Some(from) => format!("{} (as {from})", rf.status()),
                None => rf.status().to_string(),
            };
            crate::table::finding_row(&rf.finding, &[h.to_string()], &[status])
        })
        .collect();
    let headers: Vec<&str> = crate::table::FINDING_HEAD
        .iter()
        .chain(["hunt"].iter())
        .chain(crate::table::FINDING_BODY.iter())
        .chain(["status"].iter())
        .copied()
        .collect();
    crate::table::write(w, crate::table::Dest::Stdout, &headers, &rows, Some(0))
}

/// `findings show ID`: the latest copy of one finding, whole, with its
/// hunt, triage state and decisions.
fn show(cli: &Cli, wanted: &str) -> Result<ExitCode> {
    let store = crate::cmd_triage::open_existing(cli)?;
    let id = crate::cmd_triage::resolve_id(&store, wanted)?;
    let stored = store.findings(&FindingFilter {
        show_suppressed: true,
        id: Some(id.clone()),
        ..Default::default()
    })?;
    let Some(sf) = stored.into_iter().find(|s| s.finding.id == id) else {
        anyhow::bail!("finding {id} is in the store but could not be read back");
    };
    let hunt = sf.hunt_id;
    let mut v = finding_json(&to_report(sf), Some(hunt))?;
    if let serde_json::Value::Object(m) = &mut v {
        m.insert(
            "decisions".into(),
            serde_json::to_value(store.decisions(Some(&id))?)?,
        );
    }
    let mut out = io::stdout().lock();
    match serde_json::to_writer_pretty(&mut out, &v)
        .map_err(io::Error::from)
        .and_then(|_| out.write_all(b"\n"))
    {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        r => r?,
    }
    Ok(ExitCode::SUCCESS)
}
