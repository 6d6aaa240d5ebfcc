//! `orbwatch export blocklist`: write a blocklist for a firewall or IDS from
//! the store's feeds, `--feed` files and hunt findings, through the
//! orbwatch-blocklist pipeline (select, aggregate, guard, render).
//!
//! Output goes through temporary files renamed into place, so a failed run
//! never leaves a half-written blocklist; re-runs with unchanged inputs
//! (and the same `--at`, or within the same hour) write identical bytes.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::builder::TypedValueParser;
use clap::{Args, Subcommand};
use ipnet::IpNet;
use jiff::{SignedDuration, Timestamp};
use orbwatch_blocklist::{
    BuildOptions, Guard, RenderOptions, SelectOptions, Selection, Sighted, Target, Widen,
};
use orbwatch_detect::Finding;
use orbwatch_intel::Indicator;

use crate::Cli;
use crate::cli_values::{parse_dur, parse_time};
use crate::indicator_sources::{IndicatorSink, IndicatorSources};

#[derive(Subcommand, Debug)]
pub enum ExportCommand {
    /// Write a blocklist (nftables, ipset, iptables, pf, Suricata, Zeek,
    /// plain EDL, MikroTik, CSV) that never contains internal,
    /// special-purpose or allowlisted addresses.
    Blocklist(Box<BlocklistArgs>),
}

/// `--target`: one of orbwatch-blocklist's targets, by name. Clap checks
/// the name against them, so an unknown target lists the valid ones.
fn target_parser() -> impl TypedValueParser<Value = Target> {
    clap::builder::PossibleValuesParser::new(Target::ALL.map(Target::as_str))
        .try_map(|s| s.parse::<Target>())
}

#[derive(Args, Debug)]
pub struct BlocklistArgs {
    /// Output format.
    #[arg(long, value_parser = target_parser())]
    pub target: Target,
    /// Write here (atomically) instead of standard output. iptables also
    /// writes FILE.v6 (ip6tables); suricata-rules also writes FILE.lst (the
    /// dataset the rules load); suricata-iprep writes PREFIX.categories and
    /// PREFIX.list, where PREFIX is --output, or DIR/NAME when --output is a
    /// folder.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Feed file read ad hoc (repeatable). Without --feed the store's feeds
    /// are used; with both --feed and --db, both.
    #[arg(long = "feed", value_name = "FILE")]
    pub feeds: Vec<PathBuf>,
    /// Format of the --feed files (default: detected by content).
    #[arg(long, value_name = "FORMAT")]
    pub feed_format: Option<String>,
    /// Only these feeds (store names, or --feed file names without
    /// extension); repeatable.
    #[arg(long = "only-feed", value_name = "NAME")]
    pub only_feeds: Vec<String>,
    /// Minimum confidence 0-100 (indicators without one are left out when
    /// this is above 0).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub min_confidence: u8,
    /// Select indicators valid at this time instead of now; timeouts are
    /// counted from it and it is written in the file header.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<Timestamp>,
    /// Only indicators sighted (inside their validity window) in the
    /// findings: --findings FILE, else the hunts kept in the store.
    #[arg(long)]
    pub sighted: bool,
    /// Add the sources of behaviour findings (scans, brute force…) with a
    /// score of at least --min-score: from --findings FILE, else from the
    /// hunts kept in the store. Findings that triage dismissed (false
    /// positive, benign) are never used.
    #[arg(long)]
    pub from_findings: bool,
    /// Findings as written by `orbwatch hunt --format jsonl` (default: the
    /// findings kept in the store by `hunt --db`).
    #[arg(long, value_name = "FILE.jsonl")]
    pub findings: Option<PathBuf>,
    /// Minimum score 0-100 of behaviour findings for --from-findings.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub min_score: u8,
    /// How long finding sources stay listed after the finding's last_seen.
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = parse_dur)]
    pub ttl: SignedDuration,
    /// List a whole IPv4 /N when at least K of its addresses are listed.
    #[arg(long, value_name = "/N:K")]
    pub widen: Option<Widen>,
    /// Internal network that must never be listed (repeatable).
    #[arg(long, value_name = "CIDR")]
    pub internal: Vec<IpNet>,
    /// File of addresses, CIDRs or ranges never to list (repeatable; text
    /// after # is shown as the reason).
    #[arg(long, value_name = "FILE")]
    pub allowlist: Vec<PathBuf>,
    /// Do not use the shipped allowlist of public resolvers and root servers.
    #[arg(long)]
    pub no_default_allowlist: bool,
    /// Widest IPv4 prefix allowed, as an input entry or after aggregation.
    #[arg(long, value_name = "/N", default_value = "/16", value_parser = parse_prefix4)]
    pub max_prefix: u8,
    /// Widest IPv6 prefix allowed.
    #[arg(long, value_name = "/N", default_value = "/32", value_parser = parse_prefix6)]
    pub max_prefix6: u8,
    /// Allow entries wider than --max-prefix / --max-prefix6.
    #[arg(long)]
    pub force_wide: bool,
    /// Print what changed against a previous export of the same target
    /// (the --output of that run; for suricata-iprep its prefix or .list).
    #[arg(long, value_name = "PREVIOUS")]
    pub diff: Option<PathBuf>,
    /// Write nothing; print the summary (and the diff).
    #[arg(long)]
    pub dry_run: bool,
    /// Table, set, chain or list name used in the output.
    #[arg(long, default_value = "orbwatch", value_parser = parse_name)]
    pub name: String,
    /// Action of suricata-rules: alert or drop.
    #[arg(long, default_value = "alert", value_parser = ["alert", "drop"])]
    pub rule_action: String,
}

/// Names go into nft tables, ipset sets (31 characters with the `-v4-new`
/// suffix), iptables chains and RouterOS lists: keep them plain.
fn parse_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 24
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && s.starts_with(|c: char| c.is_ascii_alphabetic());
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}` cannot name a set or chain; use 1 to 24 letters, digits, - or _, starting with a letter"
        ))
    }
}

fn parse_prefix(s: &str, max: u8) -> Result<u8, String> {
    match s.trim().trim_start_matches('/').parse::<u8>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(format!(
            "`{s}` is not a prefix length; write /0 to /{max}, e.g. /16"
        )),
    }
}

fn parse_prefix4(s: &str) -> Result<u8, String> {
    parse_prefix(s, 32)
}

fn parse_prefix6(s: &str) -> Result<u8, String> {
    parse_prefix(s, 128)
}

/// Run an `export` subcommand.
pub fn run(cli: &Cli, cmd: &ExportCommand) -> Result<ExitCode> {
    match cmd {
        ExportCommand::Blocklist(args) => blocklist(cli, args),
    }
}

fn blocklist(cli: &Cli, args: &BlocklistArgs) -> Result<ExitCode> {
    if args.min_confidence > 100 || args.min_score > 100 {
        bail!("--min-confidence and --min-score go from 0 to 100");
    }
    let target = args.target;
    let now = Timestamp::now();
    let at = args.at.unwrap_or(now);
    // Without --at, timeouts count from the start of the hour, so that
    // re-runs within the hour write the same bytes.
    let timeout_base = match args.at {
        Some(t) => t,
        None => Timestamp::from_second(now.as_second() - now.as_second().rem_euclid(3600))
            .unwrap_or(now),
    };
    let findings = match &args.findings {
        Some(p) => read_findings(p, cli.quiet)?,
        None if args.sighted || args.from_findings => store_findings(cli)?,
        None => Vec::new(),
    };
    let sighted = args.sighted.then(|| Sighted::from_findings(&findings));
    let mut sel = Selection::new(
        SelectOptions {
            at,
            min_confidence: args.min_confidence,
            finding_ttl: args.ttl,
            min_score: args.min_score,
        },
        sighted,
    );
    load_indicators(cli, args, &mut sel)?;
    if args.from_findings {
        sel.add_findings(&findings);
    }

    let guard = build_guard(args)?;
    let list = orbwatch_blocklist::build(
        &sel,
        &guard,
        &BuildOptions {
            max_prefix4: args.max_prefix,
            max_prefix6: args.max_prefix6,
            force_wide: args.force_wide,
            widen: args.widen,
            timeout_base,
            at_given: args.at,
        },
    )?;

    let mut ropts = RenderOptions {
        name: args.name.clone(),
        rule_action: args.rule_action.clone(),
        ..RenderOptions::default()
    };
    if let Some(out) = &args.output
        && let Some(f) = out.file_name()
    {
        ropts.dataset_file = format!("{}.lst", f.to_string_lossy());
    }
    let rendered = orbwatch_blocklist::render(target, &list, &ropts);

    // What the run says, on stderr.
    if !cli.quiet {
        for r in &list.refused {
            eprintln!("orbwatch: {r}");
        }
        for w in &list.widened {
            eprintln!(
                "orbwatch: widened {} to one entry: {} of its addresses were listed (--widen)",
                w.net, w.listed
            );
        }
        for n in &rendered.notes {
            eprintln!("orbwatch: note: {n}");
        }
        summary(&sel, &list, target);
    }
    if list.entries.is_empty() {
        eprintln!(
            "orbwatch: warning: the selection is empty; the {target} output is a valid, empty list"
        );
    }

    let to_stdout = args.output.is_none() && !args.dry_run;
    if let Some(prev) = &args.diff {
        print_diff(prev, target, &list, &rendered, to_stdout)?;
    }
    if args.dry_run {
        if !cli.quiet {
            eprintln!("orbwatch: --dry-run: nothing written");
        }
        return Ok(ExitCode::SUCCESS);
    }
    match &args.output {
        Some(out) => {
            let base = output_base(out, target, &args.name);
            let files: Vec<(PathBuf, &[u8])> = rendered
                .files
                .iter()
                .map(|f| (with_suffix(&base, f.suffix), f.bytes.as_slice()))
                .collect();
            write_all_atomically(&files)?;
            if !cli.quiet {
                let names: Vec<String> =
                    files.iter().map(|(p, _)| p.display().to_string()).collect();
                eprintln!("orbwatch: wrote {}", names.join(", "));
            }
        }
        None => {
            if target == Target::SuricataIprep {
                bail!(
                    "suricata-iprep writes two files (categories and reputation): pass --output PREFIX or --output DIR"
                );
            }
            let mut stdout = io::stdout().lock();
            if let Some(f) = rendered.files.first() {
                match stdout.write_all(&f.bytes).and_then(|_| stdout.flush()) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
                    Err(e) => return Err(e).context("cannot write to standard output"),
                }
            }
            for f in rendered.files.iter().skip(1) {
                eprintln!(
                    "orbwatch: note: the {} part (FILE{}) is only written with --output FILE",
                    target, f.suffix
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Read `hunt --format jsonl` output. Bad lines are counted and the first
/// few named; they never stop the export.
/// The findings of the hunts kept in the store (the latest copy of each),
/// without those that triage dismissed.
fn store_findings(cli: &Cli) -> Result<Vec<Finding>> {
    let path = crate::db_path::resolve(cli)?;
    if !crate::db_path::exists(&path) {
        bail!(
            "--sighted and --from-findings need findings: the store {} does not exist; run `orbwatch hunt --db {}` first, or pass --findings FILE.jsonl",
            path.display(),
            path.display()
        );
    }
    let store = orbwatch_store::Store::open(&path)
        .with_context(|| format!("cannot open the store {}", path.display()))?;
    let found = store
        .findings(&orbwatch_store::FindingFilter::default())
        .with_context(|| format!("cannot read the findings in {}", path.display()))?;
    Ok(found
        .into_iter()
        .filter(|f| !f.suppressed)
        .map(|f| f.finding)
        .collect())
}

fn read_findings(path: &Path, quiet: bool) -> Result<Vec<Finding>> {
    let file =
        fs::File::open(path).with_context(|| format!("cannot read findings {}", path.display()))?;
    let mut out = Vec::new();
    let mut bad = 0u64;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read findings {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Finding>(&line) {
            Ok(f) => out.push(f),
            Err(e) => {
                bad += 1;
                if bad <= 5 && !quiet {
                    eprintln!(
                        "orbwatch: {}:{}: not a finding ({e}); line skipped",
                        path.display(),
                        i + 1
                    );
                }
            }
        }
    }
    if bad > 5 && !quiet {
        eprintln!(
            "orbwatch: {}: {bad} lines were not findings and were skipped",
            path.display()
        );
    }
    Ok(out)
}

/// Offer the indicators of `--feed` files and/or the store to `sel`.
fn load_indicators(cli: &Cli, args: &BlocklistArgs, sel: &mut Selection) -> Result<()> {
    /// The selection as the receiver of the indicators, limited to
    /// `--only-feed` names.
    struct SelectionSink<'a> {
        sel: &'a mut Selection,
        only: BTreeSet<&'a str>,
    }
    impl IndicatorSink for SelectionSink<'_> {
        fn wants(&self, feed: &str) -> bool {
            self.only.is_empty() || self.only.contains(feed)
        }
        fn add(&mut self, ind: &Indicator, feed: &str) {
            self.sel.add_indicator(ind, feed);
        }
    }
    let mut sink = SelectionSink {
        sel,
        only: args.only_feeds.iter().map(String::as_str).collect(),
    };
    let sources = IndicatorSources {
        feeds: &args.feeds,
        format: args.feed_format.as_deref(),
        grace: None,
        // Sources of behaviour findings alone make a blocklist.
        store_optional: args.from_findings,
        history: false,
        store_path: None,
    };
    let notices = crate::indicator_sources::load(cli, &sources, &mut sink)?;
    if !cli.quiet {
        for n in notices {
            eprintln!("orbwatch: {n}");
        }
    }
    Ok(())
}

fn build_guard(args: &BlocklistArgs) -> Result<Guard> {
    let mut guard = guard(&args.internal, &args.allowlist, !args.no_default_allowlist)?;
    guard.finish();
    Ok(guard)
}

/// The guard of every blocklist: [`Guard::standard`], with the CLI's
/// error context.
pub(crate) fn guard(
    internal: &[ipnet::IpNet],
    allowlists: &[PathBuf],
    default_allowlist: bool,
) -> Result<Guard> {
    Ok(Guard::standard(internal, allowlists, default_allowlist)?)
}

fn summary(sel: &Selection, list: &orbwatch_blocklist::Blocklist, target: Target) {
    let v4 = list.v4().count();
    let v6 = list.v6().count();
    let split = list.refused.iter().filter(|r| !r.whole).count();
    let whole = list.refused.len() - split;
    eprintln!(
        "orbwatch: {target} blocklist: {} entries ({v4} IPv4, {v6} IPv6) from {} selected of {} looked at; {whole} refused, {split} split by the guard; {} widened",
        list.entries.len(),
        sel.candidates.len(),
        sel.seen,
        list.widened.len()
    );
    let skipped: Vec<String> = sel
        .skipped
        .iter()
        .map(|(k, n)| format!("{n} {}", k.as_str()))
        .collect();
    if !skipped.is_empty() {
        eprintln!("orbwatch: left out: {}", skipped.join(", "));
    }
}

fn print_diff(
    prev: &Path,
    target: Target,
    list: &orbwatch_blocklist::Blocklist,
    rendered: &orbwatch_blocklist::Rendered,
    list_on_stdout: bool,
) -> Result<()> {
    // The addresses of an export live in its main file, but for iptables
    // also in FILE.v6, and for suricata-rules only in FILE.lst.
    let parts: &[&str] = match target {
        Target::Iptables => &["", ".v6"],
        Target::SuricataRules => &[".lst"],
        Target::SuricataIprep => &[".list"],
        _ => &[""],
    };
    let mut old = String::new();
    let mut new = String::new();
    for part in parts {
        let mut path = with_suffix(prev, part);
        // suricata-iprep: --diff may name the .list file itself.
        if target == Target::SuricataIprep && !path.exists() {
            path = prev.to_path_buf();
        }
        if *part == ".v6" && !path.exists() {
            continue;
        }
        old.push_str(
            &fs::read_to_string(&path)
                .with_context(|| format!("cannot read the previous export {}", path.display()))?,
        );
        old.push('\n');
        if let Some(f) = rendered.files.iter().find(|f| f.suffix == *part) {
            new.push_str(&String::from_utf8_lossy(&f.bytes));
            new.push('\n');
        }
    }
    let d = orbwatch_blocklist::diff(
        &orbwatch_blocklist::parse_previous(&old),
        &orbwatch_blocklist::parse_previous(&new),
        list,
    );
    let mut out = String::new();
    out.push_str(&format!(
        "diff against {}: {} added, {} removed, {} expired\n",
        prev.display(),
        d.added.len(),
        d.removed.len(),
        d.expired.len()
    ));
    for (what, nets) in [
        ("added", &d.added),
        ("removed", &d.removed),
        ("expired", &d.expired),
    ] {
        for n in nets {
            out.push_str(&format!("{what} {n}\n"));
        }
    }
    if list_on_stdout {
        eprint!("{out}");
    } else {
        print!("{out}");
    }
    Ok(())
}

/// Where the files of a target go: `--output` itself, or DIR/NAME for
/// suricata-iprep given a folder.
fn output_base(out: &Path, target: Target, name: &str) -> PathBuf {
    if target == Target::SuricataIprep
        && (out.is_dir() || out.as_os_str().to_string_lossy().ends_with('/'))
    {
        return out.join(name);
    }
    out.to_path_buf()
}

fn with_suffix(base: &Path, suffix: &str) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Write every file to a temporary file in its folder first, then rename
/// them all into place; on any error, remove the temporary files.
fn write_all_atomically(files: &[(PathBuf, &[u8])]) -> Result<()> {
    let mut tmps: Vec<PathBuf> = Vec::new();
    let result = (|| -> Result<()> {
        for (path, bytes) in files {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let file_name = path.file_name().with_context(|| {
                format!("{} is not a file name; pass --output FILE", path.display())
            })?;
            let tmp = dir.join(format!(
                ".{}.orbwatch-{}.tmp",
                file_name.to_string_lossy(),
                std::process::id()
            ));
            tmps.push(tmp.clone());
            let mut f = fs::File::create(&tmp)
                .with_context(|| format!("cannot create {}", tmp.display()))?;
            f.write_all(bytes)
                .and_then(|_| f.sync_all())
                .with_context(|| format!("cannot write {}", tmp.display()))?;
        }
        for ((path, _), tmp) in files.iter().zip(&tmps) {
            fs::rename(tmp, path)
                .with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))?;
        }
        Ok(())
    })();
    if result.is_err() {
        for t in &tmps {
            let _ = fs::remove_file(t);
        }
    }
    result
}
