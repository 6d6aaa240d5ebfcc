//! `orbwatch hunt`: sweep logs for indicators, aware of time and direction.
//!
//! The run is: load indicators (ad-hoc `--feed` files and/or the store),
//! compile them, expand the inputs, then read every input in parallel
//! (across files, and inside large plain files by line-aligned chunks),
//! decoding each record, matching it, and aggregating sightings into
//! findings. Coverage of every input is kept and printed at the end.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, IsTerminal, Write};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use clap::Args;
use ipnet::IpNet;
use jiff::Timestamp;
use orbwatch_detect::behaviour::observe::ObsBuffer;
use orbwatch_detect::coverage::feed_note;
use orbwatch_detect::{
    Aggregator, Coverage, FeedCoverage, Finding, FindingKind, InputCoverage, InternalNets,
    IocEngine, IocEngineBuilder, MatchScratch,
};
use orbwatch_event::decoders::{self, DecoderConfig, DecoderInfo};
use orbwatch_event::{Decoded, Decoder, Origin};
use orbwatch_intel::Indicator;
use orbwatch_report::{OutputFormat, write_coverage_text, write_findings};
use orbwatch_source::{Filters, Input, LineReader};
use rayon::prelude::*;

use crate::Cli;
use crate::hunt_binary;
use crate::indicator_sources::{IndicatorSink, IndicatorSources};

/// Plain files larger than this are split into chunks read in parallel.
const CHUNK_MIN: u64 = 32 * 1024 * 1024;
/// Bytes peeked at the start of an input for format detection.
const PEEK: usize = 64 * 1024;
/// Lines of the peek used for detection.
const SNIFF_LINES: usize = 50;

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
    /// Write the coverage report as JSON to FILE.
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

/// Options resolved once and shared by all workers.
struct RunCtx {
    engine: IocEngine,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    forced: Option<&'static DecoderInfo>,
    /// `--input-format` named a binary format (pcap, netflow, evtx).
    binary: Option<hunt_binary::ForcedBinary>,
    map: Vec<(String, String)>,
    year: Option<i16>,
    progress: Option<indicatif::ProgressBar>,
    /// Units of work finished and sightings so far, for the progress bar.
    units_done: AtomicU64,
    units_total: u64,
    sightings: AtomicU64,
    evidence_limit: usize,
    /// Decode only records that may match (no behaviour detectors run).
    lazy: bool,
    /// Behaviour detectors, unless --no-behaviour.
    behaviour: Option<crate::hunt_behaviour::Behaviour>,
}

/// One piece of work: a whole input, or a byte range of a plain file.
struct Unit {
    input: usize,
    chunk: usize,
    range: Option<(u64, u64)>,
    /// For chunks after the first: a decoder carrying the file's header state.
    decoder: Option<Box<dyn Decoder>>,
    format: Option<&'static str>,
}

struct UnitResult {
    input: usize,
    chunk: usize,
    start: u64,
    newlines: u64,
    coverage: InputCoverage,
    agg: Aggregator,
    obs: ObsBuffer,
    fatal: bool,
}

pub fn run(cli: &Cli, args: &HuntArgs) -> Result<ExitCode> {
    let started = Timestamp::now();
    let out_format = match &args.format {
        Some(f) => f.parse::<OutputFormat>().map_err(anyhow::Error::msg)?,
        None if args.output.is_none() && io::stdout().is_terminal() => OutputFormat::Table,
        None => OutputFormat::Jsonl,
    };
    let since = crate::cli_values::parse_time_flag("--since", args.since.as_deref())?;
    let until = crate::cli_values::parse_time_flag("--until", args.until.as_deref())?;
    let fail_on = parse_fail_on(&args.fail_on)?;
    let binary = args.input_format.as_deref().and_then(hunt_binary::forced);
    let forced = match &args.input_format {
        None => None,
        Some(_) if binary.is_some() => None,
        Some(n) => Some(decoders::by_name(n).with_context(|| {
            format!(
                "unknown --input-format {n:?}; known decoders: {}, {}",
                decoders::names().join(", "),
                hunt_binary::NAMES.join(", ")
            )
        })?),
    };
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
    let behaviour = crate::hunt_behaviour::Behaviour::from_args(args, internal.clone())?;
    let load_clock = std::time::Instant::now();
    let engine = load_engine(cli, args, internal)?;
    tracing::info!(
        "indicators loaded and indexed in {:.2} s ({} bytes of index)",
        load_clock.elapsed().as_secs_f64(),
        engine.index().heap_bytes()
    );
    if engine.is_empty() && behaviour.is_none() {
        bail!(
            "no indicators to hunt for: give --feed FILE, or add feeds to the store with `orbwatch feed add FILE`"
        );
    }

    let filters = Filters::new(&args.include, &args.exclude).map_err(anyhow::Error::msg)?;
    let (inputs, problems) = orbwatch_source::expand(&args.paths, &filters);

    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let progress = (!cli.quiet && io::stderr().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new(inputs.iter().map(|i| i.size).sum());
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} ({bytes_per_sec}) {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        pb
    });
    let ctx = RunCtx {
        engine,
        since,
        until,
        forced,
        binary,
        map,
        year: args.year,
        progress,
        units_done: AtomicU64::new(0),
        units_total: 0,
        sightings: AtomicU64::new(0),
        evidence_limit: args.evidence_limit,
        lazy: args.no_behaviour,
        behaviour,
    };

    let units = plan_units(&inputs, threads, &ctx);
    let ctx = RunCtx {
        units_total: units.len() as u64,
        ..ctx
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("cannot start worker threads")?;
    let sweep_clock = std::time::Instant::now();
    let sweep_cpu = process_cpu_seconds();
    let results: Vec<UnitResult> = pool.install(|| {
        units
            .into_par_iter()
            .map(|u| process_unit(u, &inputs, &ctx))
            .collect()
    });
    let sweep_secs = sweep_clock.elapsed().as_secs_f64();
    let swept: u64 = results.iter().map(|r| r.coverage.bytes).sum();
    let cpu = match (sweep_cpu, process_cpu_seconds()) {
        (Some(a), Some(b)) => format!(", {:.2} CPU s", b - a),
        _ => String::new(),
    };
    tracing::info!(
        "swept {swept} bytes in {sweep_secs:.3} s ({:.0} MB/s) on {threads} threads{cpu}",
        swept as f64 / 1e6 / sweep_secs.max(1e-9)
    );
    if let Some(pb) = &ctx.progress {
        pb.finish_and_clear();
    }

    // Reassemble per input, in chunk order, fixing chunk-relative positions.
    let mut per_input: BTreeMap<usize, Vec<UnitResult>> = BTreeMap::new();
    for r in results {
        per_input.entry(r.input).or_default().push(r);
    }
    let mut coverage = Coverage {
        started: Some(started),
        ..Default::default()
    };
    let mut agg = Aggregator::with_evidence_cap(args.evidence_limit);
    let mut obs = ObsBuffer::new();
    let mut formats = BTreeMap::new();
    let mut input_errors = 0usize;
    for p in &problems {
        input_errors += 1;
        let mut c = InputCoverage::new(&p.path);
        c.error = Some(p.reason.clone());
        coverage.inputs.push(c);
    }
    for (input, mut parts) in per_input {
        parts.sort_by_key(|p| p.chunk);
        let mut lines_before = 0u64;
        let mut cov: Option<InputCoverage> = None;
        let mut fatal = false;
        for mut p in parts {
            p.agg.rebase(lines_before, p.start);
            p.coverage.rebase(lines_before);
            p.obs.rebase_lines(lines_before);
            lines_before += p.newlines;
            agg.merge(p.agg);
            obs.merge(p.obs);
            fatal |= p.fatal;
            match &mut cov {
                None => cov = Some(p.coverage),
                Some(c) => c.merge(p.coverage),
            }
        }
        if let Some(c) = cov {
            formats.insert(input, c.format.clone());
            if fatal || c.error.is_some() {
                input_errors += 1;
            }
            coverage.inputs.push(c);
        }
    }

    coverage.sightings = agg.sightings();
    let mut findings = agg.finish(&ctx.engine);
    if let Some(b) = &ctx.behaviour {
        b.finish(obs, &inputs, &formats, &mut findings, &mut coverage);
    }
    coverage.findings = findings.len() as u64;
    coverage.findings_in_window = findings
        .iter()
        .filter(|f| f.ioc.as_ref().is_some_and(|i| i.in_validity_window))
        .count() as u64;
    coverage.findings_out_of_window = findings
        .iter()
        .filter(|f| f.ioc.as_ref().is_some_and(|i| !i.in_validity_window))
        .count() as u64;
    let range = coverage.time_range();
    for f in ctx.engine.feeds() {
        coverage.feeds.push(FeedCoverage {
            note: feed_note(f.from, f.until, range),
            feed: f.feed.clone(),
            indicators: f.indicators,
            search_from: f.from,
            search_until: f.until,
        });
    }
    coverage.finished = Some(Timestamp::now());
    let findings = crate::hunt_store::persist(cli, args, &coverage, findings)?;

    // Findings.
    match &args.output {
        Some(path) => {
            let f = File::create(path)
                .with_context(|| format!("cannot write findings to {}", path.display()))?;
            let mut w = io::BufWriter::new(f);
            write_findings(&findings, out_format, &mut w)?;
            w.flush()?;
        }
        None => {
            let stdout = io::stdout();
            let mut w = io::BufWriter::new(stdout.lock());
            match write_findings(&findings, out_format, &mut w).and_then(|_| w.flush()) {
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
                r => r?,
            }
        }
    }
    if let Some(path) = &args.coverage {
        let f = File::create(path)
            .with_context(|| format!("cannot write coverage to {}", path.display()))?;
        serde_json::to_writer_pretty(io::BufWriter::new(f), &coverage)?;
    }
    if !cli.quiet {
        let mut err = io::stderr().lock();
        let _ = write_coverage_text(&coverage, &mut err);
    }

    if input_errors > 0 {
        if !cli.quiet {
            eprintln!(
                "orbwatch: {input_errors} input(s) could not be read completely (see ERROR above); the others were hunted"
            );
        }
        return Ok(ExitCode::from(2));
    }
    if findings.iter().any(|f| fail_on.matches(f)) {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
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
                crate::index_cache::cache_dir()?,
                crate::index_cache::key(&args.feeds, &options)?,
            ))
        })
        .flatten();
    if let Some((dir, key)) = &cache
        && let Some((engine, notices)) = crate::index_cache::load(dir, key, &internal)
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
        crate::index_cache::store(dir, key, &notices, &engine);
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
    /// The engine builder as the receiver of the indicators.
    struct EngineSink(IocEngineBuilder);
    impl IndicatorSink for EngineSink {
        fn reserve(&mut self, n: usize) {
            self.0.reserve(n);
        }
        fn add(&mut self, ind: &Indicator, feed: &str) {
            if ind.provenance.feed == feed {
                self.0.add(ind);
            } else {
                // Store rows carry their feed apart from the indicator.
                let mut ind = ind.clone();
                ind.provenance.feed = feed.to_string();
                self.0.add(&ind);
            }
        }
    }
    let mut sink = EngineSink(IocEngineBuilder::new());
    let sources = IndicatorSources {
        feeds: &args.feeds,
        format: args.feed_format.as_deref(),
        grace: args.grace.as_deref(),
        // A behaviour-only hunt needs no indicators.
        store_optional: !args.no_behaviour,
    };
    notices.extend(crate::indicator_sources::load(cli, &sources, &mut sink)?);
    Ok(sink.0)
}

/// Split inputs into units of work. Large plain files are cut into
/// line-aligned chunks so that both cores work on one big file.
fn plan_units(inputs: &[Input], threads: usize, ctx: &RunCtx) -> Vec<Unit> {
    let mut units = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let whole = Unit {
            input: i,
            chunk: 0,
            range: None,
            decoder: None,
            format: None,
        };
        let splittable = threads > 1 && input.path.is_some() && input.size > CHUNK_MIN;
        if !splittable {
            units.push(whole);
            continue;
        }
        match plan_chunks(i, input, threads, ctx) {
            Some(mut chunks) => units.append(&mut chunks),
            None => units.push(whole),
        }
    }
    units
}

fn plan_chunks(i: usize, input: &Input, threads: usize, ctx: &RunCtx) -> Option<Vec<Unit>> {
    let path = input.path.as_ref()?;
    let (compression, reader) = orbwatch_source::open(input).ok()?;
    if compression != orbwatch_source::Compression::None {
        return None;
    }
    let (head, _) = orbwatch_source::peek_lines(reader, PEEK).ok()?;
    if (orbwatch_source::looks_binary(&head) && ctx.forced.is_none())
        || hunt_binary::route(ctx.binary, &head).is_some()
    {
        return None;
    }
    let lines = head_lines(&head);
    let info = ctx.forced.unwrap_or_else(|| decoders::detect(&lines));
    let cfg = decoder_config(ctx, input);
    // A template decoder that has seen the header lines.
    let mut template = (info.make)(&cfg);
    for l in &lines {
        if matches!(template.decode(l), Ok(Decoded::Event(_))) {
            break;
        }
    }
    let chunks = orbwatch_source::line_aligned_chunks(path, threads * 2, CHUNK_MIN / 2).ok()?;
    Some(
        chunks
            .into_iter()
            .enumerate()
            .map(|(k, r)| Unit {
                input: i,
                chunk: k,
                range: Some(r),
                decoder: (k > 0).then(|| template.fork()),
                format: Some(info.name),
            })
            .collect(),
    )
}

/// Complete lines of a peeked head, at most [`SNIFF_LINES`].
fn head_lines(head: &[u8]) -> Vec<&[u8]> {
    let complete = match memchr::memrchr(b'\n', head) {
        Some(i) if head.len() >= PEEK => &head[..i],
        _ => head,
    };
    complete
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
        .take(SNIFF_LINES)
        .collect()
}

fn decoder_config(ctx: &RunCtx, input: &Input) -> DecoderConfig {
    DecoderConfig {
        year: ctx.year.or_else(|| mtime_year(input)),
        map: ctx.map.clone(),
    }
}

fn mtime_year(input: &Input) -> Option<i16> {
    let t = Timestamp::try_from(input.modified?).ok()?;
    Some(t.to_zoned_datetime(jiff::tz::TimeZone::UTC).year())
}

fn year_note(ctx: &RunCtx, input: &Input, cfg: &DecoderConfig) -> Option<String> {
    let y = cfg.year?;
    Some(if ctx.year.is_some() {
        format!("syslog lines without a year were dated {y} (from --year)")
    } else if mtime_year(input).is_some() {
        format!(
            "syslog lines without a year were dated {y} (from the file's modification time; use --year to change)"
        )
    } else {
        format!("syslog lines without a year were dated {y}")
    })
}

fn process_unit(unit: Unit, inputs: &[Input], ctx: &RunCtx) -> UnitResult {
    let input = &inputs[unit.input];
    let mut cov = InputCoverage::new(&input.display);
    let mut agg = Aggregator::with_evidence_cap(ctx.evidence_limit);
    let mut obs = ObsBuffer::new();
    let start = unit.range.map_or(0, |r| r.0);
    let result = |cov, agg, obs, newlines, fatal| UnitResult {
        input: unit.input,
        chunk: unit.chunk,
        start,
        newlines,
        coverage: cov,
        agg,
        obs,
        fatal,
    };
    let cfg = decoder_config(ctx, input);

    // Open, decompress, detect.
    let (reader, mut decoder): (Box<dyn BufRead + Send>, Box<dyn Decoder>) = match unit.range {
        Some((s, e)) => {
            cov.compression = "none".into();
            let reader = match orbwatch_source::open_range(input, s, e) {
                Ok(r) => r,
                Err(err) => {
                    cov.error = Some(format!("cannot read it: {err}"));
                    return result(cov, agg, obs, 0, true);
                }
            };
            let decoder = match unit.decoder {
                Some(d) => d,
                None => {
                    let info = unit
                        .format
                        .and_then(decoders::by_name)
                        .unwrap_or_else(|| decoders::detect(&[]));
                    (info.make)(&cfg)
                }
            };
            (reader, decoder)
        }
        None => {
            let (compression, reader) = match orbwatch_source::open(input) {
                Ok(x) => x,
                Err(err) => {
                    cov.error = Some(format!("cannot read it: {err}"));
                    return result(cov, agg, obs, 0, true);
                }
            };
            cov.compression = compression.as_str().into();
            let (head, reader) = match orbwatch_source::peek_lines(reader, PEEK) {
                Ok(x) => x,
                Err(err) => {
                    cov.error = Some(describe_read_error(compression.as_str(), &err, 0));
                    return result(cov, agg, obs, 0, true);
                }
            };
            if let Some(route) = hunt_binary::route(ctx.binary, &head) {
                let bctx = hunt_binary::BinaryCtx {
                    engine: &ctx.engine,
                    since: ctx.since,
                    until: ctx.until,
                    behaviour: ctx.behaviour.as_ref(),
                    input: unit.input,
                };
                let fatal = hunt_binary::hunt(
                    reader,
                    route,
                    &input.display,
                    &bctx,
                    &mut cov,
                    &mut agg,
                    &mut obs,
                );
                if let Some(pb) = &ctx.progress {
                    pb.inc(cov.bytes);
                }
                return result(cov, agg, obs, 0, fatal);
            }
            if ctx.forced.is_none() && orbwatch_source::looks_binary(&head) {
                cov.error = Some(
                    "binary data, not a text log nor a pcap, pcapng, NetFlow/IPFIX or EVTX file; skipped"
                        .into(),
                );
                return result(cov, agg, obs, 0, true);
            }
            let info = ctx
                .forced
                .unwrap_or_else(|| decoders::detect(&head_lines(&head)));
            // Files are opened again rather than read through the peek
            // buffer: chaining the peek in front costs a copy of every byte.
            let reader = match (&input.path, head.len() >= PEEK) {
                (Some(_), true) => match orbwatch_source::open(input) {
                    Ok((_, r)) => r,
                    Err(_) => reader,
                },
                _ => reader,
            };
            (reader, (info.make)(&cfg))
        }
    };
    cov.format = decoder.name().to_string();
    if cov.format == "syslog" {
        cov.year_note = year_note(ctx, input, &cfg);
    }

    let file: Arc<str> = Arc::from(input.display.as_str());
    let format = decoder.name();
    let engine = &ctx.engine;
    let names_or_hashes = engine.index().has_names() || engine.index().has_hashes();
    let mut lr = LineReader::new(reader);
    let mut last_progress = 0u64;
    let mut fatal = false;
    let mut sink = RecordSink {
        ctx,
        decoder: &mut *decoder,
        cov: &mut cov,
        agg: &mut agg,
        obs: &mut obs,
        input: unit.input,
        scratch: MatchScratch::default(),
        file,
        format,
        names_or_hashes,
    };
    // With a large IPv4 index and nothing but addresses to look for, the
    // lookups of successive records overlap in a pipeline (below).
    let pipelined = ctx.lazy
        && !names_or_hashes
        && !engine.index().has_ipv6()
        && engine.index().stats().ipv4 > 65_536;
    // A three-stage software pipeline with STAGE records per stage: when a
    // record is read, the /24 filter words of its addresses are
    // prefetched; STAGE records later the filter is tested and the table
    // slots of addresses that pass are prefetched; STAGE records after
    // that the record is checked and handled. Each stage then finds its
    // data in cache instead of waiting on memory.
    const STAGE: usize = 16;
    const RING: usize = 2 * STAGE + 1;
    let mut ring: Vec<Pending> = if pipelined {
        (0..RING).map(|_| Pending::default()).collect()
    } else {
        Vec::new()
    };
    let mut queued = 0usize;
    loop {
        let line = match lr.next_line() {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(err) => {
                sink.cov.error = Some(describe_read_error(
                    &sink.cov.compression,
                    &err,
                    sink.cov.records,
                ));
                fatal = true;
                break;
            }
        };
        sink.cov.records += 1;
        if line.truncated {
            sink.cov.truncated_lines += 1;
        }
        if pipelined {
            let p = &mut ring[queued % RING];
            p.keys.clear();
            orbwatch_event::ipscan::for_each_ipv4(line.bytes, |ip, _, _| {
                p.keys.push(u32::from(ip))
            });
            for k in &p.keys {
                engine.index().prefetch_ipv4_filter(*k);
            }
            p.bytes.clear();
            p.bytes.extend_from_slice(line.bytes);
            p.number = line.number;
            p.offset = line.offset;
            if queued >= STAGE {
                for k in &ring[(queued - STAGE) % RING].keys {
                    engine.index().prefetch_ipv4(*k);
                }
            }
            if queued >= 2 * STAGE {
                let p = &ring[(queued - 2 * STAGE) % RING];
                sink.handle(p.number, p.offset, &p.bytes, p.hit(engine));
            }
            queued += 1;
        } else {
            let hit = engine.raw_may_match(line.bytes);
            sink.handle(line.number, line.offset, line.bytes, hit);
        }
        if let Some(pb) = &ctx.progress {
            let pos = lr.position();
            if pos - last_progress > 4 << 20 {
                pb.inc(pos - last_progress);
                last_progress = pos;
            }
        }
    }
    // Drain the pipeline: the records of the last two stages, in order.
    for n in queued.saturating_sub(2 * STAGE)..queued {
        let p = &ring[n % RING];
        sink.handle(p.number, p.offset, &p.bytes, p.hit(engine));
    }
    cov.bytes = lr.position();
    if let Some(pb) = &ctx.progress {
        pb.inc(cov.bytes.saturating_sub(last_progress));
        let done = ctx.units_done.fetch_add(1, Ordering::Relaxed) + 1;
        let seen = ctx.sightings.fetch_add(agg.sightings(), Ordering::Relaxed) + agg.sightings();
        pb.set_message(format!(
            "{done}/{} files or chunks, {seen} sightings",
            ctx.units_total
        ));
    }
    let newlines = cov.records;
    result(cov, agg, obs, newlines, fatal)
}

/// A record held back in the batched sweep (see `process_unit`): its
/// bytes, position and the IPv4 keys it names.
#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    keys: Vec<u32>,
    number: u64,
    offset: u64,
}

impl Pending {
    /// Does the record name an indicator address?
    fn hit(&self, engine: &IocEngine) -> bool {
        self.keys.iter().any(|k| {
            engine
                .index()
                .contains_ip(std::net::IpAddr::V4((*k).into()))
        })
    }
}

/// Everything needed to decode and match one record of an input.
struct RecordSink<'a> {
    ctx: &'a RunCtx,
    decoder: &'a mut dyn Decoder,
    cov: &'a mut InputCoverage,
    agg: &'a mut Aggregator,
    obs: &'a mut ObsBuffer,
    input: usize,
    scratch: MatchScratch,
    file: Arc<str>,
    format: &'static str,
    names_or_hashes: bool,
}

impl RecordSink<'_> {
    /// Handle one record. `ip_hit` says whether its raw text names an
    /// indicator address.
    fn handle(&mut self, number: u64, offset: u64, raw: &[u8], ip_hit: bool) {
        let engine = &self.ctx.engine;
        let decoder = &mut *self.decoder;
        if self.ctx.lazy && !ip_hit && !(self.names_or_hashes && engine.raw_may_name(raw)) {
            // IOC sweep without behaviour detectors: a record that names no
            // indicator needs only its time, for coverage.
            self.cov.undecoded += 1;
            if let Some(t) = std::panic::catch_unwind(AssertUnwindSafe(|| decoder.time_of(raw)))
                .ok()
                .flatten()
            {
                self.cov.see_time(t);
            }
            return;
        }
        let decoded = std::panic::catch_unwind(AssertUnwindSafe(|| decoder.decode(raw)))
            .unwrap_or_else(|_| {
                Err(orbwatch_event::DecodeError::new(
                    "the decoder failed on this record (a bug: please report it with the line)",
                ))
            });
        let event = match decoded {
            Ok(Decoded::Event(e)) => {
                self.cov.parsed += 1;
                Some(e)
            }
            Ok(Decoded::Skip) => {
                self.cov.skipped += 1;
                return;
            }
            Err(e) => {
                self.cov.reject(number, &e.0, raw);
                None
            }
        };
        if let Some(t) = event.as_ref().and_then(|e| e.time) {
            if self.ctx.since.is_some_and(|s| t < s) || self.ctx.until.is_some_and(|u| t > u) {
                self.cov.outside_time_filter += 1;
                return;
            }
            self.cov.see_time(t);
        }
        if let (Some(b), Some(e)) = (&self.ctx.behaviour, &event) {
            b.observe(self.obs, e, self.input, number);
        }
        let candidate = ip_hit
            || event
                .as_ref()
                .is_some_and(|e| e.addresses().any(|(ip, _)| engine.index().contains_ip(ip)))
            || (self.names_or_hashes
                && event.as_ref().is_some_and(|e| {
                    e.domain.is_some()
                        || !e.other_domains.is_empty()
                        || e.url.is_some()
                        || !e.hashes.is_empty()
                }));
        if candidate {
            let origin = Origin {
                file: self.file.clone(),
                line: number,
                offset,
                format: self.format,
            };
            if engine.match_record(
                raw,
                true,
                event.as_deref(),
                &origin,
                &mut self.scratch,
                self.agg,
            ) > 0
            {
                self.cov.matched_records += 1;
            }
        }
    }
}

/// CPU time (user + system) the process has used so far, from
/// `/proc/self/stat`, for the `-v` sweep figures: on a busy machine CPU
/// time says more about the sweep's cost than wall time. `None` off Linux.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line, in clock ticks (100 Hz on
    // Linux for this interface).
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut f = rest.split(' ').skip(11);
    let utime: f64 = f.next()?.parse().ok()?;
    let stime: f64 = f.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Turn a read error into words that name what went wrong.
fn describe_read_error(compression: &str, err: &io::Error, records: u64) -> String {
    let what = if compression.is_empty() || compression == "none" {
        "read failed".to_string()
    } else {
        format!("{compression} data is corrupt or truncated")
    };
    format!("{what} after {records} records: {err}; the records before it were hunted")
}
