//! `orbwatch hunts`: the hunts kept in the store, so that an analyst can
//! see what was run (inputs, feeds, options) before triaging or reporting,
//! and pick one for `findings --hunt N` or `report --hunt N`.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use orbwatch_store::HuntSummary;

use crate::Cli;

/// Arguments of `orbwatch hunts`.
#[derive(Args, Debug)]
pub struct HuntsArgs {
    /// Print JSON lines (one hunt per line) instead of a table. The default
    /// off a terminal.
    #[arg(long)]
    pub json: bool,
}

/// List the stored hunts, oldest first.
pub fn run(cli: &Cli, args: &HuntsArgs) -> Result<ExitCode> {
    let store = crate::cmd_triage::open_existing(cli)?;
    let hunts = store.hunts()?;
    let json = args.json || !io::stdout().is_terminal();
    let stdout = io::stdout();
    let mut w = io::BufWriter::new(stdout.lock());
    let r = if json {
        write_json(&hunts, &mut w)
    } else {
        write_table(&hunts, &mut w)
    }
    .and_then(|_| w.flush());
    match r {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        r => r?,
    }
    if hunts.is_empty() && !cli.quiet {
        eprintln!(
            "orbwatch: the store {} holds no hunt yet; `orbwatch --db {} hunt LOGS` keeps one",
            store.path().display(),
            store.path().display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn write_json(hunts: &[HuntSummary], w: &mut dyn Write) -> io::Result<()> {
    for h in hunts {
        serde_json::to_writer(&mut *w, h)?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

/// The inputs a hunt was given, as one short text.
fn inputs_of(h: &HuntSummary) -> String {
    let list = |k: &str| -> Vec<String> {
        h.args[k]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    list("paths").join(" ")
}

/// The indicators a hunt used, as one short text.
fn feeds_of(h: &HuntSummary) -> String {
    let files: Vec<String> = h.args["feeds"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut parts = files;
    if h.args["feeds_from_store"].as_bool().unwrap_or(false) {
        parts.push("(store)".into());
    }
    parts.join(" ")
}

fn write_table(hunts: &[HuntSummary], w: &mut dyn Write) -> io::Result<()> {
    if hunts.is_empty() {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = hunts
        .iter()
        .map(|h| {
            vec![
                h.id.to_string(),
                h.started
                    .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_else(|| "-".into()),
                h.findings.to_string(),
                feeds_of(h),
                inputs_of(h),
            ]
        })
        .collect();
    crate::table::write(
        w,
        crate::table::Dest::Stdout,
        &["hunt", "started (UTC)", "findings", "feeds", "inputs"],
        &rows,
        None,
    )
}
