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
use orbwatch_intel::{FeedFormat, ParsedFeed, ReadOptions};
use orbwatch_store::{FeedInfo, ImportOptions, ImportReport, Store};
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
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// The feed file, or a MISP feed directory (one with manifest.json).
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
    let path = &args.file;
    let name = match &args.name {
        Some(n) => n.trim().to_string(),
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
    let opts = read_options(&name, args);
    let meta =
        fs::metadata(path).with_context(|| format!("cannot read feed file {}", path.display()))?;
    let label = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());

    if meta.is_dir()
        && let Some(f) = args.format.filter(|f| *f != FeedFormat::MispFeed)
    {
        bail!(
            "{} is a MISP feed folder, but --format says {f}; drop --format or use --format misp-feed",
            path.display()
        );
    }
    let adding = |format| FeedToAdd {
        name: &name,
        opts: &opts,
        path,
        label: &label,
        format,
    };
    if !meta.is_dir()
        && let Some((format, list)) = crate::feed_input::line_stream(path, args.format)?
    {
        if format == FeedFormat::Plain {
            return add_plain_streamed(cli, &adding(format), list);
        }
        return add_lines_streamed(cli, &adding(format), list);
    }
    if meta.is_file()
        && let Some(format @ (FeedFormat::Misp | FeedFormat::Stix)) =
            crate::feed_input::streamed_document(path, args.format)?
    {
        return add_document_streamed(cli, &adding(format));
    }
    let crate::feed_input::LoadedFeed { parsed, sha256 } =
        crate::feed_input::read_feed_path(path, args.format, &opts)?;
    let format = parsed
        .format
        .or(args.format)
        .unwrap_or(FeedFormat::Freetext);
    if parsed.indicators.is_empty() {
        eprintln!(
            "orbwatch: warning: {} gave no indicators (format {format}); check --format and the column flags",
            path.display()
        );
    }

    let source_path = fs::canonicalize(path)
        .unwrap_or_else(|_| path.clone())
        .display()
        .to_string();
    let mut store = open_store(cli)?;
    let report = store.import_feed(
        &name,
        format,
        &source_path,
        &parsed,
        &ImportOptions {
            source_sha256: Some(sha256),
            options: orbwatch_store::read_options_json(&opts),
            at: Some(opts.now),
        },
    )?;
    print_add_summary(&label, format, &parsed, &report)?;
    Ok(ExitCode::SUCCESS)
}

/// What `feed add` is adding when it streams a file into the store: the
/// same for every streamed reader and for the import that stores what they
/// read, so they take it as one.
struct FeedToAdd<'a> {
    /// The feed's name in the store (`--name`, or the file stem).
    name: &'a str,
    /// How to read the file (`--grace`, the column flags, …).
    opts: &'a ReadOptions,
    /// The file as given on the command line.
    path: &'a Path,
    /// The file name, for messages and for the indicators' provenance.
    label: &'a str,
    /// The format the file is read as, and stored under.
    format: FeedFormat,
}

/// What a streamed reader reports when it reaches the end of its feed.
struct StreamEnd {
    rejected: Vec<orbwatch_intel::Rejected>,
    skipped: Vec<orbwatch_intel::Skipped>,
    sha256: String,
}

/// What the reading thread of [`add_streamed`] sends.
enum ListMsg {
    Batch(Vec<orbwatch_intel::Indicator>),
    Failed(String),
    Done(StreamEnd),
}

/// `feed add` of a plain list, stored as it is read.
fn add_plain_streamed(
    cli: &Cli,
    feed: &FeedToAdd,
    list: crate::feed_input::PlainList,
) -> Result<ExitCode> {
    let shown = feed.path.display().to_string();
    add_streamed(cli, feed, move |emit| {
        let mut reader =
            std::io::BufReader::with_capacity(256 * 1024, crate::feed_input::Digesting::new(list));
        let mut rejected = Vec::new();
        orbwatch_intel::readers::plain::read_stream(
            &mut reader,
            feed.label,
            feed.opts,
            emit,
            |r| rejected.push(r),
        )
        .map_err(|e| format!("cannot read feed file {shown}: {e}"))?;
        Ok(StreamEnd {
            rejected,
            skipped: Vec::new(),
            sha256: reader.into_inner().hex(),
        })
    })
}

/// `feed add` of a CSV, TSV or CERT-FR CSV, stored as it is read
/// ([`read_lines_stream`]): memory is that of a chunk of indicators and of
/// one record, not of the file. Rejected rows keep their line numbers, and
/// the rows an unbalanced quote swallowed are reported, as when the file
/// was read whole. A header that maps no value column stops the import,
/// which leaves the store as it was.
///
/// [`read_lines_stream`]: orbwatch_intel::readers::read_lines_stream
fn add_lines_streamed(
    cli: &Cli,
    feed: &FeedToAdd,
    list: crate::feed_input::PlainList,
) -> Result<ExitCode> {
    let shown = feed.path.display().to_string();
    let FeedToAdd {
        opts,
        label,
        format,
        ..
    } = *feed;
    add_streamed(cli, feed, move |emit| {
        let cannot = |e: std::io::Error| format!("cannot read feed file {shown}: {e}");
        let mut reader =
            std::io::BufReader::with_capacity(256 * 1024, crate::feed_input::Digesting::new(list));
        let (mut rejected, mut skipped) = (Vec::new(), Vec::new());
        orbwatch_intel::readers::read_lines_stream(format, &mut reader, label, opts, &mut |p| {
            for ind in p.indicators.drain(..) {
                emit(ind);
            }
            rejected.append(&mut p.rejected);
            skipped.append(&mut p.skipped);
        })
        .map_err(|e| e.to_string())?;
        // A reader may stop before the end (a CSV it cannot move past):
        // the digest is still of the whole file.
        std::io::copy(&mut reader, &mut std::io::sink()).map_err(cannot)?;
        Ok(StreamEnd {
            rejected,
            skipped,
            sha256: reader.into_inner().hex(),
        })
    })
}

/// `feed add` of a MISP event file or a STIX bundle, stored as it is
/// read: the file is read twice as a stream of JSON tokens
/// ([`misp::read_event_stream`], [`stix::read_bundle_stream`]), never as
/// one JSON tree, so a million attributes or indicators take the memory of
/// the store's bookkeeping and of what the document says about them, not
/// gigabytes. A file the stream leaves to the whole reader (no event found,
/// a key given twice, STIX JSON lines) is read whole.
///
/// [`misp::read_event_stream`]: orbwatch_intel::readers::misp::read_event_stream
/// [`stix::read_bundle_stream`]: orbwatch_intel::readers::stix::read_bundle_stream
fn add_document_streamed(cli: &Cli, feed: &FeedToAdd) -> Result<ExitCode> {
    let shown = feed.path.display().to_string();
    let FeedToAdd {
        opts,
        path,
        label,
        format,
        ..
    } = *feed;
    add_streamed(cli, feed, move |emit| {
        let cannot = |e: std::io::Error| format!("cannot read feed file {shown}: {e}");
        let mut digest = crate::feed_input::Digesting::new(fs::File::open(path).map_err(cannot)?);
        std::io::copy(&mut digest, &mut std::io::sink()).map_err(cannot)?;
        let sha256 = digest.hex();
        let (mut rejected, mut skipped) = (Vec::new(), Vec::new());
        let found = crate::feed_input::read_document_stream(path, label, format, opts, &mut |p| {
            for ind in p.indicators.drain(..) {
                emit(ind);
            }
            rejected.append(&mut p.rejected);
            skipped.append(&mut p.skipped);
        })
        .map_err(|e| e.to_string())?;
        if !found {
            // Left to the whole reader, which answers (or explains what
            // the file is).
            let mut parsed = crate::feed_input::read_feed_path(path, Some(format), opts)
                .map_err(|e| format!("{e:#}"))?
                .parsed;
            for ind in parsed.indicators.drain(..) {
                emit(ind);
            }
            rejected.append(&mut parsed.rejected);
            skipped.append(&mut parsed.skipped);
        }
        Ok(StreamEnd {
            rejected,
            skipped,
            sha256,
        })
    })
}

/// `feed add` of a feed read as a stream: a thread runs `read`, which
/// hands each indicator to the function it is given, and the indicators
/// go over in batches of 4096 through a short queue to the store, which
/// writes them as they come ([`Store::import_indicators`]). Memory is
/// that of the queue and of the store's per-row bookkeeping, not of all
/// the indicators: a 10M-line list no longer becomes a 4.5 GB
/// `ParsedFeed` first. A read error fails the import, which then leaves
/// the store as it was.
fn add_streamed(
    cli: &Cli,
    feed: &FeedToAdd,
    read: impl FnOnce(&mut dyn FnMut(orbwatch_intel::Indicator)) -> Result<StreamEnd, String> + Send,
) -> Result<ExitCode> {
    const BATCH: usize = 4096;
    let FeedToAdd {
        name,
        opts,
        path,
        label,
        format,
    } = *feed;
    let source_path = fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string();
    let mut store = open_store(cli)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<ListMsg>(4);
    let end: std::sync::OnceLock<StreamEnd> = std::sync::OnceLock::new();
    let report = std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut batch = Vec::with_capacity(BATCH);
            let res = read(&mut |ind| {
                batch.push(ind);
                if batch.len() == BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    // A closed queue means the import stopped; it says why.
                    let _ = tx.send(ListMsg::Batch(full));
                }
            });
            let _ = tx.send(ListMsg::Batch(batch));
            let _ = tx.send(match res {
                Ok(end) => ListMsg::Done(end),
                Err(e) => ListMsg::Failed(e),
            });
        });
        // The indicators as they come; a queue that closes without `Done`
        // (the reading thread died) is an error, never a shorter feed.
        let mut finished = false;
        let source = rx
            .into_iter()
            .map(Some)
            .chain(std::iter::once(None))
            .flat_map(|m| -> Box<dyn Iterator<Item = Result<_, String>> + Send> {
                match m {
                    Some(ListMsg::Batch(v)) => Box::new(v.into_iter().map(Ok)),
                    Some(ListMsg::Failed(e)) => Box::new(std::iter::once(Err(e))),
                    Some(ListMsg::Done(e)) => {
                        finished = true;
                        let _ = end.set(e);
                        Box::new(std::iter::empty())
                    }
                    None if finished => Box::new(std::iter::empty()),
                    None => Box::new(std::iter::once(Err(
                        "reading the feed stopped without finishing (a bug: please report it)"
                            .to_string(),
                    ))),
                }
            });
        store.import_indicators(
            name,
            format,
            &source_path,
            source,
            || match end.get() {
                Some(e) => orbwatch_store::import::ImportEnd {
                    rejected: e.rejected.as_slice().into(),
                    skipped: e.skipped.as_slice().into(),
                    source_sha256: Some(e.sha256.clone()),
                },
                None => orbwatch_store::import::ImportEnd {
                    rejected: Vec::new().into(),
                    skipped: Vec::new().into(),
                    source_sha256: None,
                },
            },
            &ImportOptions {
                source_sha256: None,
                options: orbwatch_store::read_options_json(opts),
                at: Some(opts.now),
            },
        )
    })?;
    if report.loaded == 0 {
        eprintln!(
            "orbwatch: warning: {} gave no indicators (format {format}); check --format and the column flags",
            path.display()
        );
    }
    let (rejected, skipped) = end
        .into_inner()
        .map(|e| (e.rejected, e.skipped))
        .unwrap_or_default();
    let parsed = ParsedFeed {
        format: Some(format),
        rejected,
        skipped,
        ..Default::default()
    };
    print_add_summary(label, format, &parsed, &report)?;
    Ok(ExitCode::SUCCESS)
}

fn print_add_summary(
    label: &str,
    format: FeedFormat,
    parsed: &ParsedFeed,
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
    writeln!(out, "rejected: {}", parsed.rejected.len())?;
    for r in parsed.rejected.iter().take(REJECTS_SHOWN) {
        writeln!(out, "  {}:{}: {}", r.file, r.line, one_line(&r.reason))?;
    }
    if parsed.rejected.len() > REJECTS_SHOWN {
        writeln!(out, "  … {} more", parsed.rejected.len() - REJECTS_SHOWN)?;
    }
    writeln!(out, "skipped: {}", parsed.skipped.len())?;
    let mut reasons: BTreeMap<&str, u64> = BTreeMap::new();
    for s in &parsed.skipped {
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
