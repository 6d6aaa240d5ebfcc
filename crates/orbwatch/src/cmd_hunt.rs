//! `orbwatch hunt`: sweep logs for indicators, aware of time and direction.
//!
//! This file only turns flags into [`EngineOptions`], loads the indicators
//! (ad-hoc `--feed` files and/or the store, through the index cache), and
//! writes what the engine (`orbwatch-engine`) found: findings, coverage,
//! the store, and the exit code.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use ipnet::IpNet;
use orbwatch_detect::behaviour::BehaviourConfig;
use orbwatch_detect::{Finding, FindingKind, InternalNets, IocEngine, IocEngineBuilder};
use orbwatch_engine::{BehaviourOptions, Engine, EngineOptions, HuntSummary};
use orbwatch_report::{OutputFormat, write_coverage_text, write_findings};
use orbwatch_source::Filters;

use crate::Cli;
use crate::indicator_sources::IndicatorSources;

#[derive(Args, Debug)]
pub struct HuntArgs {
    /// Files, directories (walked recursively) or `-` for stdin. Compressed
    /// inputs (.gz, .zst, .bz2, .xz, .lz4) are recognised by content.
    #[arg(required = true)]
    pub paths: Vec<String>,
    /// Feed file to hunt for, read ad hoc (repeatable). Without --feed, the
    /// feeds in the store are used; with both --feed and --db, both.
    #[arg(long = "feed", value_name = "FILE")]
    pub feeds: Vec<PathBuf>,
    /// Format of the --feed files (default: detected by content).
    #[arg(long, value_name = "FORMAT")]
    pub feed_format: Option<String>,
    /// Output format: table (default on a terminal), jsonl (default
    /// otherwise) or csv.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Write findings to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write the coverage report as JSON to FILE (`-`: stdout). On stderr
    /// the hunt prints a summary, or every input's details with -v.
    #[arg(long, value_name = "FILE")]
    pub coverage: Option<PathBuf>,
    /// Internal network (repeatable). Default: RFC 1918, RFC 4193,
    /// loopback and link-local.
    #[arg(long, value_name = "CIDR")]
    pub internal: Vec<IpNet>,
    /// Ignore events before this time (RFC 3339 or YYYY-MM-DD).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Ignore events after this time.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Exit with 1 when a finding of these kinds exists: a finding kind
    /// (ioc_match, port_scan…), a severity (info, low, medium, high,
    /// critical: a finding at least that serious), `in-window` (IOC
    /// matches inside their validity window) or `any`. Comma-separated or
    /// repeated; any one that matches fails. All findings are still
    /// written and kept.
    #[arg(long, value_name = "KIND|SEVERITY", value_delimiter = ',')]
    pub fail_on: Vec<String>,
    /// Turn off the behaviour detectors (scans, brute force, spraying…).
    /// This makes the hunt a pure IOC sweep: records that name no
    /// indicator address are not decoded, only their time is read for
    /// coverage, so the coverage counts them as "not decoded" instead of
    /// parsed or rejected.
    #[arg(long)]
    pub no_behaviour: bool,
    /// ASN database for enrichment: MaxMind .mmdb (GeoLite2-ASN…) or an
    /// ip2asn TSV. Without one, enrichment is skipped with a note.
    #[arg(long, value_name = "FILE")]
    pub asn_db: Option<PathBuf>,
    /// Country/connection-type database (.mmdb), for enrichment.
    #[arg(long, value_name = "FILE")]
    pub geo_db: Option<PathBuf>,
    /// Directory for sorted runs of behaviour observations beyond
    /// `max_observations`, of IOC sessions beyond 50,000 and of IOC
    /// findings waiting for the behaviour replay (default: the system's
    /// temporary directory). They are removed when the hunt ends.
    #[arg(long, value_name = "DIR")]
    pub spill_dir: Option<PathBuf>,
    /// TOML file overriding behaviour thresholds (README, "Behaviour
    /// detectors").
    #[arg(long, value_name = "FILE")]
    pub behaviour_config: Option<PathBuf>,
    /// Only read files inside directories that match this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Skip files inside directories that match this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Decoder to use for every input instead of detecting it: a text
    /// format, or pcap, netflow (also for a capture of exporter traffic) or
    /// evtx.
    #[arg(long, value_name = "NAME")]
    pub input_format: Option<String>,
    /// Field mapping for the csv/json decoders, e.g. --map src_ip=client.
    #[arg(long, value_name = "FIELD=COLUMN")]
    pub map: Vec<String>,
    /// Year for syslog lines that carry none (default: the file's
    /// modification time).
    #[arg(long)]
    pub year: Option<i16>,
    /// Zone of log times written without one (year-less syslog): an IANA
    /// name such as Europe/Paris, UTC, or local. Default: the machine's
    /// zone. Every time orbwatch writes stays UTC; the coverage names the
    /// zone assumed.
    #[arg(long, value_name = "TZ")]
    pub timezone: Option<String>,
    /// Evidence records kept per finding (0 = all of them).
    #[arg(long, value_name = "N", default_value_t = orbwatch_detect::aggregate::EVIDENCE_CAP)]
    pub evidence_limit: usize,
    /// Worker threads (default: all cores).
    #[arg(short = 'j', long)]
    pub threads: Option<usize>,
    /// Widen first/last-seen dates of --feed files by this much when they
    /// give no validity window (default 7d).
    #[arg(long, value_name = "DUR")]
    pub grace: Option<String>,
    /// Do not read or write the cache of compiled indicators. Large --feed
    /// files (8 MiB or more) are otherwise compiled once and reused while
    /// they are unchanged (see ORBWATCH_CACHE_DIR).
    #[arg(long)]
    pub no_index_cache: bool,
    /// With a store: also print findings that earlier triage dismissed
    /// (false-positive or benign).
    #[arg(long)]
    pub show_suppressed: bool,
}

pub fn run(cli: &Cli, args: &HuntArgs) -> Result<ExitCode> {
    let out_format = match &args.format {
        Some(f) => f.parse::<OutputFormat>().map_err(anyhow::Error::msg)?,
        None if args.output.is_none() && io::stdout().is_terminal() => OutputFormat::Table,
        None => OutputFormat::Jsonl,
    };
    let (timezone, timezone_name) = crate::cli_values::parse_timezone(args.timezone.as_deref())?;
    let since = crate::cli_values::parse_time_flag_in("--since", args.since.as_deref(), &timezone)?;
    let until = crate::cli_values::parse_time_flag_in("--until", args.until.as_deref(), &timezone)?;
    let fail_on = parse_fail_on(&args.fail_on)?;
    let map = args
        .map
        .iter()
        .map(|m| {
            m.split_once('=')
                .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
                .with_context(|| {
                    format!("--map {m:?} must look like field=column, e.g. src_ip=client")
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let internal = if args.internal.is_empty() {
        InternalNets::default()
    } else {
        InternalNets::new(args.internal.clone())
    };
    let behaviour = if args.no_behaviour {
        None
    } else {
        let config = match &args.behaviour_config {
            Some(p) => BehaviourConfig::from_file(p)?,
            None => BehaviourConfig::default(),
        };
        Some(BehaviourOptions {
            config,
            enrichment_dbs: args
                .asn_db
                .iter()
                .chain(args.geo_db.iter())
                .cloned()
                .collect(),
            spill_dir: args.spill_dir.clone(),
            ioc_findings_in_memory: None,
        })
    };
    let options = EngineOptions {
        since,
        until,
        input_format: args.input_format.clone(),
        map,
        year: args.year,
        timezone: Some(timezone),
        evidence_limit: args.evidence_limit,
        threads: capped_threads(cli, args.threads),
        chunk_bytes: EngineOptions::default().chunk_bytes,
        internal: internal.clone(),
        behaviour,
        ioc_sessions_in_memory: orbwatch_engine::IOC_SESSIONS_IN_MEMORY,
        spill_dir: args.spill_dir.clone(),
    };
    // Inputs first: a mistyped path must stop the hunt before anything is
    // loaded, run or stored.
    let filters = Filters::new(&args.include, &args.exclude).map_err(anyhow::Error::msg)?;
    let (inputs, problems) = orbwatch_source::expand(&args.paths, &filters);
    check_inputs(&args.paths, &inputs)?;

    let load_clock = std::time::Instant::now();
    let ioc = load_engine(cli, args, internal)?;
    tracing::info!(
        "indicators loaded and indexed in {:.2} s ({} bytes of index)",
        load_clock.elapsed().as_secs_f64(),
        ioc.index().heap_bytes()
    );
    if ioc.is_empty() && args.no_behaviour {
        bail!(
            "no indicators to hunt for: give --feed FILE, or add feeds to the store with `orbwatch feed add FILE`"
        );
    }
    if ioc.is_empty() && !cli.quiet {
        eprintln!("orbwatch: no indicators loaded: behaviour detection only");
    }
    let behaviour_on = !args.no_behaviour;
    let mut engine = Engine::new(ioc, options)?;
    let phases = (!cli.quiet && io::stderr().is_terminal())
        .then(|| crate::progress::Phases::start(behaviour_on));
    if let Some(p) = &phases {
        engine = engine.with_progress(p.bar());
    }

    let mut findings: Vec<Finding> = Vec::new();
    let HuntSummary {
        mut coverage,
        input_errors,
    } = engine.hunt(&inputs, &problems, &mut findings)?;
    coverage.timezone = Some(timezone_name);
    // The last phase, writing and keeping, gets its line when it ends (a
    // line drawn while the table goes to the same terminal would tear it).
    let writing = phases.map(|p| {
        p.finish();
        std::time::Instant::now()
    });
    // Output first, then the store: a busy or broken store must never cost
    // the findings (see hunt_store).
    let store = crate::hunt_store::HuntStore::open(cli, args)?;
    // References: a copy of every finding here was the hunt's peak
    // memory on large runs.
    let shown: Vec<&Finding> = match &store {
        Some(s) => s.visible(cli, args, &findings),
        None => findings.iter().collect(),
    };

    // Findings.
    match &args.output {
        Some(path) => crate::output_file::write_file(path, "findings", |w| {
            if out_format == OutputFormat::Table {
                let mut w = orbwatch_report::terminal::TerminalSafe(w);
                crate::table::write_findings(&mut w, crate::table::Dest::File, &shown)
            } else {
                write_findings(&shown, out_format, w)
            }
        })?,
        None => {
            let stdout = io::stdout();
            let mut w = io::BufWriter::new(stdout.lock());
            let written = if out_format == OutputFormat::Table {
                // Evidence is log text: escape what could drive the terminal.
                let mut safe = orbwatch_report::terminal::TerminalSafe(&mut w);
                crate::table::write_findings(&mut safe, crate::table::Dest::Stdout, &shown)
            } else {
                write_findings(&shown, out_format, &mut w)
            };
            match written.and_then(|_| w.flush()) {
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
                r => r.context("cannot write findings to standard output")?,
            }
        }
    }
    match &args.coverage {
        // `--coverage -`: the JSON on stdout (after the findings, if they
        // go there too).
        Some(path) if path.as_os_str() == "-" => {
            let mut out = io::stdout().lock();
            match serde_json::to_writer_pretty(&mut out, &coverage)
                .map_err(io::Error::from)
                .and_then(|_| out.write_all(b"\n"))
                .and_then(|_| out.flush())
            {
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
                r => r?,
            }
        }
        Some(path) => crate::output_file::write_file(path, "coverage", |w| {
            serde_json::to_writer_pretty(&mut *w, &coverage)?;
            w.write_all(b"\n")
        })?,
        None => {}
    }
    if let Some(store) = store {
        store.keep(cli, args, &coverage, &findings)?;
    }
    if let Some(clock) = writing {
        eprintln!(
            "writing findings and keeping the hunt: done in {:.1} s",
            clock.elapsed().as_secs_f64()
        );
    }
    let findings = shown;
    if !cli.quiet {
        // Log text (rejected lines, file names) is escaped on the way.
        let mut err = orbwatch_report::terminal::TerminalSafe(io::stderr().lock());
        // On screen a summary; every input's block with -v.
        let _ = if cli.verbose > 0 {
            write_coverage_text(&coverage, &mut err)
        } else {
            crate::coverage_summary::write(&coverage, &mut err)
        };
    }

    if input_errors > 0 && !cli.quiet {
        eprintln!(
            "orbwatch: {input_errors} input(s) could not be read completely (see ERROR above); the others were hunted"
        );
    }
    Ok(ExitCode::from(exit_code(
        findings.iter().any(|f| fail_on.matches(f)),
        input_errors > 0,
    )))
}

/// The exit code of a completed hunt (README, "Exit codes"): a bit per
/// cause, so that a cron job still learns that `--fail-on` was met when an
/// input was also corrupt. 0 nothing to report, 1 findings met `--fail-on`,
/// 2 an input could not be read completely, 3 both.
pub fn exit_code(fail_on_met: bool, input_errors: bool) -> u8 {
    u8::from(fail_on_met) | (u8::from(input_errors) << 1)
}

/// Refuse a hunt whose inputs name nothing to read: paths that do not
/// exist, and directories in which no file is left (after `--include` and
/// `--exclude`). Each is named; the hunt does not run and nothing is stored,
/// so a typo never leaves an empty hunt that looks like a clean one.
fn check_inputs(paths: &[String], inputs: &[orbwatch_source::Input]) -> Result<()> {
    let mut missing = Vec::new();
    let mut empty_dirs = Vec::new();
    for p in paths {
        if p == "-" {
            continue;
        }
        let path = std::path::Path::new(p);
        match std::fs::metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => missing.push(p.as_str()),
            Ok(md) if md.is_dir() => {
                let has_file = inputs
                    .iter()
                    .any(|i| i.path.as_deref().is_some_and(|q| q.starts_with(path)));
                if !has_file {
                    empty_dirs.push(p.as_str());
                }
            }
            // Unreadable files are reported per input by the hunt.
            _ => {}
        }
    }
    let mut what = Vec::new();
    if !missing.is_empty() {
        what.push(format!("does not exist: {}", missing.join(", ")));
    }
    if !empty_dirs.is_empty() {
        what.push(format!(
            "directory with no log files (after --include/--exclude): {}",
            empty_dirs.join(", ")
        ));
    }
    if !what.is_empty() {
        bail!(
            "nothing hunted, nothing stored; {}. Check the paths (a directory is read recursively)",
            what.join("; ")
        );
    }
    Ok(())
}

/// `--threads`, cut to what the engine starts (a few per core), saying so.
fn capped_threads(cli: &Cli, threads: Option<usize>) -> usize {
    let max = orbwatch_engine::max_threads();
    match threads {
        Some(n) if n > max => {
            if !cli.quiet {
                crate::closed_pipe::note(format_args!(
                    "orbwatch: --threads {n} is more than this machine can use; using {max} ({} per core)",
                    orbwatch_engine::THREADS_PER_CORE
                ));
            }
            max
        }
        n => n.unwrap_or(0),
    }
}

/// What `--fail-on` asks for.
#[derive(Default)]
struct FailOn {
    any: bool,
    in_window: bool,
    kinds: Vec<FindingKind>,
    /// A finding at least this serious fails (the lowest severity given).
    min_severity: Option<orbwatch_detect::Severity>,
}

impl FailOn {
    fn matches(&self, f: &Finding) -> bool {
        self.any
            || self.kinds.contains(&f.kind)
            || (self.in_window && f.ioc.as_ref().is_some_and(|i| i.in_validity_window))
            || self
                .min_severity
                .is_some_and(|m| f.severity.is_some_and(|s| s >= m))
    }
}

fn parse_fail_on(values: &[String]) -> Result<FailOn> {
    let mut f = FailOn::default();
    for v in values {
        match v.trim() {
            "any" => f.any = true,
            "in-window" | "in_window" => f.in_window = true,
            other => match (
                FindingKind::parse(other),
                orbwatch_detect::Severity::parse(other),
            ) {
                (Some(k), _) => f.kinds.push(k),
                (None, Some(s)) => {
                    f.min_severity = Some(f.min_severity.map_or(s, |m| m.min(s)));
                }
                (None, None) => {
                    let kinds: Vec<&str> = FindingKind::ALL.iter().map(|k| k.as_str()).collect();
                    let sevs: Vec<&str> = orbwatch_detect::Severity::ALL
                        .iter()
                        .map(|s| s.as_str())
                        .collect();
                    bail!(
                        "--fail-on {other:?} is neither a finding kind nor a severity; use any, in-window, a severity ({}) or a kind ({})",
                        sevs.join(", "),
                        kinds.join(", ")
                    )
                }
            },
        }
    }
    Ok(f)
}

/// The compiled indicators: from the index cache when the hunt uses only
/// large `--feed` files that have not changed since they were compiled,
/// otherwise read and compiled now (and cached when eligible).
fn load_engine(cli: &Cli, args: &HuntArgs, internal: InternalNets) -> Result<IocEngine> {
    let uses_store = args.feeds.is_empty() || cli.db.is_some();
    let cache = (!args.no_index_cache && !uses_store)
        .then(|| {
            let options = format!("format={:?} grace={:?}", args.feed_format, args.grace);
            Some((
                orbwatch_engine::index_cache::cache_dir()?,
                orbwatch_engine::index_cache::key(&args.feeds, &options)?,
            ))
        })
        .flatten();
    if let Some((dir, key)) = &cache
        && let Some((engine, notices)) = orbwatch_engine::index_cache::load(dir, key, &internal)
    {
        tracing::info!(
            "compiled indicators read from the index cache in {}",
            dir.display()
        );
        print_notices(cli, &notices);
        return Ok(engine);
    }
    let mut notices = Vec::new();
    let engine = load_indicators(cli, args, &mut notices)?.build(internal);
    print_notices(cli, &notices);
    if let Some((dir, key)) = &cache {
        orbwatch_engine::index_cache::store(dir, key, &notices, &engine);
    }
    Ok(engine)
}

fn print_notices(cli: &Cli, notices: &[String]) {
    if !cli.quiet {
        for n in notices {
            eprintln!("orbwatch: {n}");
        }
    }
}

/// Compile indicators from `--feed` files and/or the store.
fn load_indicators(
    cli: &Cli,
    args: &HuntArgs,
    notices: &mut Vec<String>,
) -> Result<IocEngineBuilder> {
    let mut sink = crate::indicator_sources::EngineSink(IocEngineBuilder::new());
    let sources = IndicatorSources {
        feeds: &args.feeds,
        format: args.feed_format.as_deref(),
        grace: args.grace.as_deref(),
        // A behaviour-only hunt needs no indicators.
        store_optional: !args.no_behaviour,
        history: true,
        store_path: None,
    };
    notices.extend(crate::indicator_sources::load(cli, &sources, &mut sink)?);
    Ok(sink.0)
}
