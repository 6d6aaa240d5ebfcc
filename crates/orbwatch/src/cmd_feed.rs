//! `orbwatch feed …`: load threat-intel feeds into the store, list and
//! inspect them with their history, remove them, and export them for
//! sensors (Zeek, Suricata, plain lists, STIX).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use jiff::{SignedDuration, Timestamp};
use orbwatch_intel::readers::CsvMapping;
use orbwatch_intel::writers::{ExportFormat, ExportOptions};
use orbwatch_intel::{FeedFormat, ReadOptions};
use orbwatch_store::{FeedInfo, ImportReport, Store};
use serde_json::{Value, json};

use crate::cli_values::{parse_dur, parse_time};
use crate::{Cli, db_path};

/// How many rejected entries `feed add` and `feed show` print.
const REJECTS_SHOWN: usize = 10;

#[derive(Subcommand, Debug)]
pub enum FeedCommand {
    /// Load a feed file (or a MISP feed directory) into the store. Adding a
    /// name that exists makes a new version and reports what changed.
    Add(Box<AddArgs>),
    /// List the feeds in the store.
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one feed: counts, validity windows, tags, versions, rejects.
    Show {
        /// The feed's name (see `orbwatch feed list`).
        name: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove a feed with its indicators and history.
    Remove {
        /// The feed's name (see `orbwatch feed list`).
        name: String,
    },
    /// Write a feed's indicators in a sensor's format.
    Export(ExportArgs),
    /// Subscribe to a feed published over HTTPS, TAXII 2.1 or MISP, and
    /// fetch it now. `feed update` fetches it again.
    Subscribe(Box<crate::cmd_feed_subscribe::SubscribeArgs>),
    /// Stop fetching a feed (its versions stay; `feed remove` deletes them).
    Unsubscribe {
        /// The feed's name.
        name: String,
    },
    /// Fetch subscribed feeds; each change is a new version with its diff.
    Update(crate::cmd_feed_subscribe::UpdateArgs),
    /// Print a systemd timer or a cron line that runs `feed update --due`.
    Schedule(crate::cmd_feed_subscribe::ScheduleArgs),
    /// Write the feed's current version to the compacted Kafka feeds
    /// topic, from which every `orbwatch worker --feeds-topic` swaps its
    /// indicators.
    Publish(crate::cmd_feed_publish::PublishArgs),
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// The feed file, a MISP feed directory (one with manifest.json), or
    /// `-` for standard input (with --name).
    pub file: PathBuf,
    /// Name in the store (default: the file name without extension).
    #[arg(long)]
    pub name: Option<String>,
    /// The feed's format instead of detecting it: certfr, csv, tsv, plain,
    /// freetext, stix, stix-csv, misp, misp-feed, zeek-intel,
    /// suricata-iprep, suricata-dataset. Without it, a structured file that
    /// no reader recognises is refused rather than read as free text.
    #[arg(long, value_parser = parse_format)]
    pub format: Option<FeedFormat>,
    /// Window start for entries without dates (e.g. 2021-01-01).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub valid_from: Option<Timestamp>,
    /// Window end for entries without dates (e.g. 2021-12-31T23:59:59Z).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub valid_until: Option<Timestamp>,
    /// Lifetime of entries without dates, from --valid-from or now (e.g. 90d).
    #[arg(long, value_name = "DURATION", value_parser = parse_dur)]
    pub ttl: Option<SignedDuration>,
    /// Widening of first/last-seen dates into a validity window (e.g. 7d).
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = parse_dur)]
    pub grace: SignedDuration,
    /// Confidence 0-100 to use instead of the feed's.
    #[arg(long, value_name = "N", value_parser = parse_confidence)]
    pub confidence: Option<u8>,
    /// CSV/TSV: column with the value (header name or 1-based index).
    #[arg(long, value_name = "COLUMN")]
    pub value_column: Option<String>,
    /// CSV/TSV: column with the value's type.
    #[arg(long, value_name = "COLUMN")]
    pub type_column: Option<String>,
    /// CSV/TSV: column with the first-seen date.
    #[arg(long, value_name = "COLUMN")]
    pub first_seen_column: Option<String>,
    /// CSV/TSV: column with the last-seen date.
    #[arg(long, value_name = "COLUMN")]
    pub last_seen_column: Option<String>,
    /// CSV/TSV: column with the start of validity.
    #[arg(long, value_name = "COLUMN")]
    pub valid_from_column: Option<String>,
    /// CSV/TSV: column with the end of validity.
    #[arg(long, value_name = "COLUMN")]
    pub valid_until_column: Option<String>,
    /// CSV/TSV: column with the confidence.
    #[arg(long, value_name = "COLUMN")]
    pub confidence_column: Option<String>,
    /// CSV/TSV: column with tags.
    #[arg(long, value_name = "COLUMN")]
    pub tags_column: Option<String>,
    /// CSV/TSV: column with a description.
    #[arg(long, value_name = "COLUMN")]
    pub description_column: Option<String>,
    /// CSV/TSV: field delimiter, one character or `tab` (e.g. ';').
    #[arg(long, value_name = "CHAR", value_parser = parse_delimiter)]
    pub delimiter: Option<u8>,
    /// CSV/TSV: the file has no header row (give columns by index).
    #[arg(long)]
    pub no_header: bool,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The feed's name (see `orbwatch feed list`).
    pub name: String,
    /// Output format: zeek, suricata (IP reputation), plain, stix.
    #[arg(long, value_name = "FORMAT", value_parser = parse_export_format)]
    pub to: ExportFormat,
    /// Write to this file (atomically) instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub(crate) fn parse_format(s: &str) -> Result<FeedFormat, String> {
    s.parse::<FeedFormat>()
}

fn parse_export_format(s: &str) -> Result<ExportFormat, String> {
    s.parse::<ExportFormat>()
}

pub(crate) fn parse_confidence(s: &str) -> Result<u8, String> {
    match s.trim().parse::<u8>() {
        Ok(n) if n <= 100 => Ok(n),
        _ => Err(format!(
            "`{s}` is not a confidence; write a number from 0 to 100, e.g. 75"
        )),
    }
}

fn parse_delimiter(s: &str) -> Result<u8, String> {
    match s {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        _ if s.len() == 1 && s.is_ascii() => Ok(s.as_bytes()[0]),
        _ => Err(format!(
            "`{s}` is not a delimiter; give one character, e.g. ';', or `tab`"
        )),
    }
}

/// Run a `feed` subcommand.
pub fn run(cli: &Cli, cmd: &FeedCommand) -> Result<ExitCode> {
    match cmd {
        FeedCommand::Add(args) => add(cli, args),
        FeedCommand::List { json } => list(cli, *json),
        FeedCommand::Show { name, json } => show(cli, name, *json),
        FeedCommand::Remove { name } => remove(cli, name),
        FeedCommand::Export(args) => export(cli, args),
        FeedCommand::Subscribe(args) => crate::cmd_feed_subscribe::subscribe(cli, args),
        FeedCommand::Unsubscribe { name } => crate::cmd_feed_subscribe::unsubscribe(cli, name),
        FeedCommand::Update(args) => crate::cmd_feed_subscribe::update(cli, args),
        FeedCommand::Schedule(args) => crate::cmd_feed_subscribe::schedule(cli, args),
        FeedCommand::Publish(args) => crate::cmd_feed_publish::publish(cli, args),
    }
}

pub(crate) fn open_store(cli: &Cli) -> Result<Store> {
    let path = db_path::resolve(cli)?;
    Ok(Store::open(&path)?)
}

// ---------------------------------------------------------------------------
// add

fn read_options(name: &str, args: &AddArgs) -> ReadOptions {
    let mut opts = ReadOptions::new(name);
    opts.grace = args.grace;
    opts.valid_from = args.valid_from;
    opts.valid_until = args.valid_until;
    opts.ttl = args.ttl;
    opts.confidence = args.confidence;
    opts.csv = CsvMapping {
        value: args.value_column.clone(),
        kind: args.type_column.clone(),
        first_seen: args.first_seen_column.clone(),
        last_seen: args.last_seen_column.clone(),
        valid_from: args.valid_from_column.clone(),
        valid_until: args.valid_until_column.clone(),
        confidence: args.confidence_column.clone(),
        tags: args.tags_column.clone(),
        description: args.description_column.clone(),
        delimiter: args.delimiter,
        no_header: args.no_header,
    };
    opts
}

/// The default feed name: the file name without its extension.
fn default_name(path: &Path) -> Option<String> {
    let stem = if path.is_dir() {
        path.file_name()
    } else {
        path.file_stem()
    }?;
    let s = stem.to_string_lossy().trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn add(cli: &Cli, args: &AddArgs) -> Result<ExitCode> {
    // `-` reads the feed from standard input (`curl … | orbwatch feed add
    // - --name x`). It is spooled to a temporary file first, written as
    // it arrives: format detection reads a head and then the whole feed,
    // and STIX and MISP documents are read in two passes, none of which a
    // pipe can give twice. Memory stays bounded; the disk holds the feed
    // until it is stored.
    let stdin = args.file.as_os_str() == "-";
    let spooled = if stdin { Some(spool_stdin()?) } else { None };
    let path = match &spooled {
        Some(t) => t.path(),
        None => args.file.as_path(),
    };
    let name = match &args.name {
        Some(n) => n.trim().to_string(),
        None if stdin => bail!("a feed read from standard input (-) needs --name NAME"),
        None => default_name(path).with_context(|| {
            format!(
                "cannot derive a feed name from {}; pass --name",
                path.display()
            )
        })?,
    };
    if name.is_empty() {
        bail!("the feed name is empty; pass --name NAME");
    }
    let mut opts = read_options(&name, args);
    crate::feed_input::apply_max_document_from_env(&mut opts)?;
    // Before the store is opened (and perhaps created): a wrong path
    // leaves nothing behind.
    fs::metadata(path).with_context(|| format!("cannot read feed file {}", path.display()))?;
    let (label, source_path) = if stdin {
        ("stdin".to_string(), "stdin".to_string())
    } else {
        (
            path.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string()),
            fs::canonicalize(path)
                .unwrap_or_else(|_| path.to_path_buf())
                .display()
                .to_string(),
        )
    };
    let mut store = open_store(cli)?;
    // Read and stored by the same code as the API's feed upload.
    let loaded = orbwatch_feedload::load_feed_file(
        &mut store,
        &orbwatch_feedload::FeedFile {
            path,
            name: &name,
            format: args.format,
            opts: &opts,
            label: &label,
            source: &source_path,
        },
    )?;
    if let Some(notice) = &loaded.freetext_notice {
        eprintln!("orbwatch: warning: {notice}");
    }
    if loaded.report.loaded == 0 {
        eprintln!(
            "orbwatch: warning: {label} gave no indicators (format {}); check --format and the column flags",
            loaded.format
        );
    }
    print_add_summary(
        &label,
        loaded.format,
        &loaded.rejected,
        &loaded.skipped,
        &loaded.report,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Standard input copied to a temporary file (removed when dropped), in
/// the system's temporary folder (`TMPDIR`).
fn spool_stdin() -> Result<tempfile::NamedTempFile> {
    let mut spool = tempfile::Builder::new()
        .prefix("orbwatch-feed-stdin-")
        .tempfile()
        .context("cannot create a temporary file to receive the feed from standard input (set TMPDIR to a folder with room)")?;
    io::copy(&mut io::stdin().lock(), spool.as_file_mut()).with_context(|| {
        format!(
            "cannot copy the feed from standard input to {}",
            spool.path().display()
        )
    })?;
    Ok(spool)
}

fn print_add_summary(
    label: &str,
    format: FeedFormat,
    rejected: &[orbwatch_intel::Rejected],
    skipped: &[orbwatch_intel::Skipped],
    report: &ImportReport,
) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "feed `{}` version {} ({format}, {label}): {} indicator{}",
        report.feed,
        report.version,
        report.loaded,
        plural(report.loaded)
    )?;
    for (kind, n) in report.counts.iter().filter(|(_, n)| **n > 0) {
        writeln!(out, "  {kind:<8} {n:>9}")?;
    }
    if report.duplicates > 0 {
        writeln!(
            out,
            "  {} repeated entr{} stored once",
            report.duplicates,
            if report.duplicates == 1 { "y" } else { "ies" }
        )?;
    }
    if report.version > 1 {
        // A value whose window changed is one change, not an addition and
        // a removal (the history keeps both rows).
        let changed = report.changed_validity;
        let mut parts = vec![
            format!("{} added", report.added.saturating_sub(changed)),
            format!("{} removed", report.removed.saturating_sub(changed)),
        ];
        if changed > 0 {
            parts.push(format!("{changed} changed (validity)"));
        }
        if report.changed_confidence > 0 {
            parts.push(format!(
                "{} changed (confidence)",
                report.changed_confidence
            ));
        }
        parts.push(format!(
            "{} unchanged",
            report.unchanged.saturating_sub(report.changed_confidence)
        ));
        writeln!(
            out,
            "changes since version {}: {}",
            report.version - 1,
            parts.join(", ")
        )?;
    }
    writeln!(out, "rejected: {}", rejected.len())?;
    for r in rejected.iter().take(REJECTS_SHOWN) {
        writeln!(out, "  {}:{}: {}", r.file, r.line, one_line(&r.reason))?;
    }
    if rejected.len() > REJECTS_SHOWN {
        writeln!(out, "  … {} more", rejected.len() - REJECTS_SHOWN)?;
    }
    writeln!(out, "skipped: {}", skipped.len())?;
    let mut reasons: BTreeMap<&str, u64> = BTreeMap::new();
    for s in skipped {
        *reasons.entry(s.reason.as_str()).or_default() += 1;
    }
    let mut reasons: Vec<(&str, u64)> = reasons.into_iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    for (reason, n) in reasons {
        writeln!(out, "  {n:>6} × {}", one_line(reason))?;
    }
    out.flush()
}

pub(crate) fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A reason on one line, its control characters (feed text) escaped.
fn one_line(s: &str) -> String {
    orbwatch_report::terminal::escape_controls(&s.replace(['\r', '\n', '\t'], " ")).into_owned()
}

// ---------------------------------------------------------------------------
// list

pub(crate) fn time_text(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn feed_json(f: &FeedInfo) -> Value {
    let counts: serde_json::Map<String, Value> = f
        .counts
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    json!({
        "name": f.name,
        "format": f.format,
        "version": f.version,
        "counts": counts,
        "total": f.total(),
        "rejected": f.rejected,
        "skipped": f.skipped,
        "source": f.source_path,
        "source_sha256": f.source_sha256,
        "added_at": f.added_at.to_string(),
        "updated_at": f.updated_at.to_string(),
    })
}

fn list(cli: &Cli, as_json: bool) -> Result<ExitCode> {
    let store = open_store(cli)?;
    let feeds = store.list_feeds()?;
    let mut out = io::stdout().lock();
    if as_json {
        let arr: Vec<Value> = feeds.iter().map(feed_json).collect();
        serde_json::to_writer_pretty(&mut out, &arr)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    if feeds.is_empty() {
        writeln!(
            out,
            "no feeds in the store at {}; add one with `orbwatch feed add FILE`",
            store.path().display()
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    // A table that fits the terminal (see crate::table).
    let rows: Vec<Vec<String>> = feeds
        .iter()
        .map(|f| {
            vec![
                f.name.clone(),
                f.format.clone(),
                f.version.to_string(),
                f.total().to_string(),
                f.rejected.to_string(),
                f.skipped.to_string(),
                time_text(f.updated_at),
            ]
        })
        .collect();
    crate::table::write(
        &mut out,
        crate::table::Dest::Stdout,
        &[
            "NAME",
            "FORMAT",
            "VERSION",
            "INDICATORS",
            "REJECTED",
            "SKIPPED",
            "UPDATED",
        ],
        &rows,
        None,
    )?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------
// show

fn show(cli: &Cli, name: &str, as_json: bool) -> Result<ExitCode> {
    let store = open_store(cli)?;
    let Some(info) = store.feed(name)? else {
        return Err(orbwatch_store::StoreError::UnknownFeed {
            name: name.to_string(),
        }
        .into());
    };
    let window = store.window_summary(name)?;
    let tags = store.tag_summary(name)?;
    let versions = store.feed_versions(name)?;
    let rejects = store.feed_rejects(name, None)?;
    let mut out = io::stdout().lock();
    if as_json {
        let mut v = feed_json(&info);
        if let Some(o) = v.as_object_mut() {
            o.insert("options".into(), info.options.clone());
            o.insert("validity".into(), serde_json::to_value(&window)?);
            o.insert("tags".into(), serde_json::to_value(&tags)?);
            o.insert("versions".into(), serde_json::to_value(&versions)?);
            o.insert("rejects".into(), serde_json::to_value(&rejects)?);
            crate::cmd_feed_subscribe::show_json(&store, name, o)?;
        }
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }

    writeln!(out, "feed {}", info.name)?;
    writeln!(out, "  format      {}", info.format)?;
    writeln!(out, "  source      {}", info.source_path)?;
    if let Some(sha) = &info.source_sha256 {
        writeln!(out, "  sha256      {sha}")?;
    }
    writeln!(
        out,
        "  version     {} (added {}, updated {})",
        info.version,
        time_text(info.added_at),
        time_text(info.updated_at)
    )?;
    let kinds: Vec<String> = info
        .counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    writeln!(
        out,
        "  indicators  {}{}",
        info.total(),
        if kinds.is_empty() {
            String::new()
        } else {
            format!(" ({})", kinds.join(", "))
        }
    )?;
    writeln!(
        out,
        "  rejected    {}    skipped {}",
        info.rejected, info.skipped
    )?;
    if window.earliest_valid_from.is_none() && window.latest_valid_until.is_none() {
        writeln!(
            out,
            "  validity    open: no indicator has a validity window (see --valid-from, --ttl)"
        )?;
    } else {
        let bound = |t: Option<Timestamp>| t.map_or_else(|| "open".to_string(), time_text);
        writeln!(
            out,
            "  validity    {} … {}",
            bound(window.earliest_valid_from),
            bound(window.latest_valid_until)
        )?;
        writeln!(
            out,
            "              {} without a start, {} without an end (still valid)",
            window.open_start, window.open_end
        )?;
    }
    let tag_line = |m: &BTreeMap<String, u64>| {
        let mut v: Vec<(&String, &u64)> = m.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        v.iter()
            .take(10)
            .map(|(k, n)| format!("{k} ({n})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (label, m) in [
        ("actors", &tags.actors),
        ("campaigns", &tags.campaigns),
        ("roles", &tags.roles),
        ("TLP", &tags.tlp),
    ] {
        if !m.is_empty() {
            writeln!(out, "  {label:<11} {}", tag_line(m))?;
        }
    }
    if info.options.as_object().is_some_and(|o| !o.is_empty()) {
        writeln!(out, "  options     {}", info.options)?;
    }
    crate::cmd_feed_subscribe::show_text(&store, name, &mut out)?;
    writeln!(out, "history")?;
    for v in &versions {
        writeln!(
            out,
            "  v{:<4} {}  {:<10} {} loaded, {} added, {} removed, {} rejected, {} skipped",
            v.version,
            time_text(v.at),
            v.format,
            v.loaded,
            v.added,
            v.removed,
            v.rejected,
            v.skipped
        )?;
    }
    if info.rejected > 0 {
        writeln!(
            out,
            "rejected in version {} (first {} of {})",
            info.version,
            rejects.len().min(REJECTS_SHOWN),
            info.rejected
        )?;
        for r in rejects.iter().take(REJECTS_SHOWN) {
            writeln!(out, "  {}:{}: {}", r.file, r.line, one_line(&r.reason))?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------
// remove

fn remove(cli: &Cli, name: &str) -> Result<ExitCode> {
    let mut store = open_store(cli)?;
    let removed = store.remove_feed(name)?;
    println!(
        "removed feed `{name}`: {} indicator row{} and {} version{}",
        removed.indicators,
        plural(removed.indicators),
        removed.versions,
        plural(u64::try_from(removed.versions).unwrap_or(0))
    );
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------
// export

fn export(cli: &Cli, args: &ExportArgs) -> Result<ExitCode> {
    let store = open_store(cli)?;
    let indicators: Vec<orbwatch_intel::Indicator> = store
        .indicators(Some(&args.name))?
        .into_iter()
        .map(|s| s.indicator)
        .collect();
    let opts = ExportOptions::new(args.name.clone());
    let stats = match &args.output {
        Some(path) => {
            let stats = crate::output_file::write_file(path, "the feed", |w| {
                args.to.write(&indicators, &opts, w)
            })?;
            eprintln!(
                "wrote {} {} record{} of feed `{}` to {}",
                stats.written,
                args.to,
                plural(stats.written),
                args.name,
                path.display()
            );
            stats
        }
        None => {
            let stdout = io::stdout().lock();
            match args.to.write(&indicators, &opts, BufWriter::new(stdout)) {
                Ok(stats) => stats,
                // `| head` closing the pipe is not an error of ours.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
                Err(e) => return Err(e).context("cannot write to standard output"),
            }
        }
    };
    if stats.unsupported_total() > 0 {
        let what: Vec<String> = stats
            .unsupported
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        eprintln!(
            "orbwatch: note: {} indicator{} cannot be written as {} and were left out: {}",
            stats.unsupported_total(),
            plural(stats.unsupported_total()),
            args.to,
            what.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
