//! `orbwatch report`: turn findings into what people and platforms read —
//! an HTML report, a STIX 2.1 bundle, MISP sightings or a MISP event, and
//! CSV — from a hunt kept in the store or from a `hunt --format jsonl`
//! file.
//!
//! Files are written next to their target and renamed into place, so a
//! crash never leaves half a report; an existing file is replaced only with
//! `--force`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use jiff::Timestamp;
use orbwatch_detect::{Coverage, Finding};
use orbwatch_report::{ReportFinding, ReportInput, Triage};

use crate::Cli;
use crate::cmd_findings::{FilterArgs, store_filter, to_report};

/// Arguments of `orbwatch report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Write the HTML report (one self-contained file) to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write a STIX 2.1 bundle (identity, indicators, sightings,
    /// observed-data) to FILE.
    #[arg(long, value_name = "FILE")]
    pub stix: Option<PathBuf>,
    /// Write the JSON body for MISP's POST /sightings/add to FILE.
    #[arg(long, value_name = "FILE")]
    pub misp_sightings: Option<PathBuf>,
    /// Write a MISP event (findings as attributes with sightings) to FILE.
    #[arg(long, value_name = "FILE")]
    pub misp_event: Option<PathBuf>,
    /// Write one CSV row per finding to FILE.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Read findings from this file (`hunt --format jsonl` output) instead
    /// of the store.
    #[arg(long, value_name = "FILE.jsonl")]
    pub findings: Option<PathBuf>,
    /// With --findings: the coverage JSON of that hunt (`hunt --coverage`).
    #[arg(long, value_name = "FILE.json")]
    pub coverage: Option<PathBuf>,
    /// Report only this hunt of the store. Default: the whole case, every
    /// hunt kept in the store (the latest copy of each finding), so that a
    /// small extra hunt run later does not replace the verdict.
    #[arg(long, value_name = "N")]
    pub hunt: Option<i64>,
    /// The reporting organisation (STIX identity, MISP organisation).
    #[arg(long, value_name = "NAME", default_value = "orbwatch user")]
    pub org: String,
    /// Share findings about internal and special-purpose addresses
    /// (private, loopback, link-local, CGNAT…) in the STIX bundle and the
    /// MISP outputs too. Off by default: they mean nothing to the recipient
    /// and describe your network.
    #[arg(long)]
    pub include_internal: bool,
    /// Replace report files that already exist.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Date the report (and its STIX objects) at this time instead of now,
    /// for reproducible output.
    #[arg(long, value_name = "TIME", hide = true)]
    pub generated_at: Option<String>,
}

/// Write every report asked for, from the store or a findings file.
pub fn run(cli: &Cli, args: &ReportArgs) -> Result<ExitCode> {
    let targets: Vec<(&str, &PathBuf)> = [
        ("--html", &args.html),
        ("--stix", &args.stix),
        ("--misp-sightings", &args.misp_sightings),
        ("--misp-event", &args.misp_event),
        ("--csv", &args.csv),
    ]
    .into_iter()
    .filter_map(|(flag, p)| p.as_ref().map(|p| (flag, p)))
    .collect();
    if targets.is_empty() {
        bail!(
            "say what to write: --html FILE, --stix FILE, --misp-sightings FILE, --misp-event FILE and/or --csv FILE"
        );
    }
    for (flag, p) in &targets {
        if p.exists() && !args.force {
            bail!(
                "{flag} {} already exists; add --force to replace it",
                p.display()
            );
        }
    }
    let generated =
        crate::cli_values::parse_time_flag("--generated-at", args.generated_at.as_deref())?
            .unwrap_or_else(Timestamp::now);
    let input = match &args.findings {
        Some(path) => from_file(args, path, generated)?,
        None => from_store(cli, args, generated)?,
    };
    if input.findings.is_empty() && !cli.quiet {
        eprintln!(
            "orbwatch: nothing to report ({}); the files say so",
            input.source
        );
    }
    let sharing = args.stix.is_some() || args.misp_event.is_some() || args.misp_sightings.is_some();
    if sharing && !cli.quiet {
        let routers = input.own_routers_left_out();
        if !routers.is_empty() {
            eprintln!(
                "orbwatch: {} router audit finding(s) are not shared in the STIX/MISP files: their address is your own router, not an attacker's",
                routers.len()
            );
        }
        if args.include_internal {
            let n = input
                .exported()
                .filter(|f| {
                    !orbwatch_report::model::about_own_router(&f.finding)
                        && orbwatch_report::model::about_internal(&f.finding)
                })
                .count();
            if n > 0 {
                eprintln!(
                    "orbwatch: warning: --include-internal: {n} finding(s) about internal or special-purpose addresses are shared in the STIX/MISP files; check the TLP ({}) before sending them",
                    input.tlp()
                );
            }
        } else {
            let left = input.internal_left_out();
            if !left.is_empty() {
                eprintln!(
                    "orbwatch: {} finding(s) about internal or special-purpose addresses are not shared in the STIX/MISP files ({}); --include-internal shares them",
                    left.len(),
                    left.iter()
                        .take(5)
                        .map(|f| f.finding.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
    if args.stix.is_some() && !cli.quiet {
        let left_out = orbwatch_report::stix::not_expressible(&input);
        if !left_out.is_empty() {
            eprintln!(
                "orbwatch: warning: {} finding(s) have no STIX form and are not in the bundle: {}",
                left_out.len(),
                left_out.join(", ")
            );
        }
    }
    for (flag, path) in &targets {
        let bytes = match *flag {
            "--html" => orbwatch_report::html::render(&input).into_bytes(),
            "--stix" => pretty(&orbwatch_report::stix::bundle(&input))?,
            "--misp-sightings" => pretty(&orbwatch_report::misp::sightings(&input))?,
            "--misp-event" => pretty(&orbwatch_report::misp::event(&input))?,
            _ => {
                let mut v = Vec::new();
                orbwatch_report::write_report_csv(input.exported(), &mut v)?;
                v
            }
        };
        crate::output_file::write_file(path, "the report", |w| w.write_all(&bytes))?;
        if !cli.quiet {
            eprintln!("orbwatch: wrote {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn pretty(v: &serde_json::Value) -> Result<Vec<u8>> {
    let mut out = serde_json::to_vec_pretty(v)?;
    out.push(b'\n');
    Ok(out)
}

fn from_store(cli: &Cli, args: &ReportArgs, generated: Timestamp) -> Result<ReportInput> {
    let empty = |source: String| ReportInput {
        findings: Vec::new(),
        include_dismissed: args.filter.show_suppressed,
        include_internal: args.include_internal,
        coverage: None,
        org: args.org.clone(),
        generated,
        source,
        routers: Vec::new(),
    };
    let path = crate::db_path::resolve(cli)?;
    if !crate::db_path::exists(&path) {
        return Ok(empty(format!(
            "the store {} does not exist: no hunt was kept",
            path.display()
        )));
    }
    let store = orbwatch_store::Store::open(&path)
        .with_context(|| format!("cannot open the store {}", path.display()))?;
    if args.hunt.is_none() {
        return whole_case(&store, &path, args, generated);
    }
    let Some(hunt) = store.hunt(args.hunt)? else {
        return match args.hunt {
            Some(h) => bail!(
                "the store {} has no hunt #{h}; `orbwatch findings` shows the hunt of each finding",
                path.display()
            ),
            None => Ok(empty(format!(
                "the store {} holds no hunt yet; run `orbwatch hunt --db {} ...`",
                path.display(),
                path.display()
            ))),
        };
    };
    let mut filter = store_filter(&args.filter, Some(hunt.summary.id))?;
    // Dismissed findings are always fetched: the HTML lists them apart and
    // MISP sightings report them as false positives.
    filter.show_suppressed = true;
    let findings = store
        .findings(&filter)?
        .into_iter()
        .map(to_report)
        .collect();
    Ok(ReportInput {
        findings,
        include_dismissed: args.filter.show_suppressed,
        include_internal: args.include_internal,
        coverage: Some(hunt.coverage),
        org: args.org.clone(),
        generated,
        source: format!("hunt #{} in the store {}", hunt.summary.id, path.display()),
        routers: orbwatch_report::router_stories(&store)?,
    })
}

/// Every hunt of the store: the latest copy of each finding, and one
/// coverage made of all the hunts' coverages.
fn whole_case(
    store: &orbwatch_store::Store,
    path: &Path,
    args: &ReportArgs,
    generated: Timestamp,
) -> Result<ReportInput> {
    let hunts = store.hunts()?;
    let mut coverages: Vec<Coverage> = Vec::new();
    for h in &hunts {
        if let Some(rec) = store.hunt(Some(h.id))? {
            coverages.push(rec.coverage);
        }
    }
    let mut filter = store_filter(&args.filter, None)?;
    filter.show_suppressed = true;
    let findings: Vec<ReportFinding> = store
        .findings(&filter)?
        .into_iter()
        .map(to_report)
        .collect();
    let ids: Vec<i64> = hunts.iter().map(|h| h.id).collect();
    let source = match ids.as_slice() {
        [] => format!(
            "the store {} holds no hunt yet; run `orbwatch hunt --db {} ...`",
            path.display(),
            path.display()
        ),
        [one] => format!("hunt #{one} in the store {}", path.display()),
        many => format!(
            "all {} hunts ({}) in the store {}; --hunt N reports one",
            many.len(),
            many.iter()
                .map(|i| format!("#{i}"))
                .collect::<Vec<_>>()
                .join(", "),
            path.display()
        ),
    };
    let coverage = match coverages.len() {
        0 => None,
        // One hunt: its coverage as it was kept.
        1 => coverages.pop(),
        _ => Some(merge_coverage(coverages, &findings)),
    };
    Ok(ReportInput {
        findings,
        include_dismissed: args.filter.show_suppressed,
        include_internal: args.include_internal,
        coverage,
        org: args.org.clone(),
        generated,
        source,
        routers: orbwatch_report::router_stories(store)?,
    })
}

/// One coverage for several hunts, oldest first: an input or a feed read
/// by several hunts counts once, as the latest hunt read it; the finding
/// counts are those of the findings reported.
fn merge_coverage(coverages: Vec<Coverage>, findings: &[ReportFinding]) -> Coverage {
    let mut out = Coverage::default();
    let mut zones: Vec<String> = Vec::new();
    for c in coverages {
        out.started = match (out.started, c.started) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        out.finished = match (out.finished, c.finished) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        for i in c.inputs {
            out.inputs.retain(|o| o.file != i.file);
            out.inputs.push(i);
        }
        for f in c.feeds {
            out.feeds.retain(|o| o.feed != f.feed);
            out.feeds.push(f);
        }
        if let Some(b) = c.behaviour {
            let m = out.behaviour.get_or_insert_with(Default::default);
            m.observations += b.observations;
            m.untimed += b.untimed;
            m.dropped += b.dropped;
            for n in b.notes {
                if !m.notes.contains(&n) {
                    m.notes.push(n);
                }
            }
        }
        if let Some(z) = c.timezone
            && !zones.contains(&z)
        {
            zones.push(z);
        }
    }
    out.timezone = (!zones.is_empty()).then(|| zones.join(", "));
    let live = findings.iter().map(|f| &f.finding);
    out.findings = findings.len() as u64;
    for f in live {
        match &f.ioc {
            Some(i) => {
                out.sightings += f.count;
                if i.in_validity_window {
                    out.findings_in_window += 1;
                } else {
                    out.findings_out_of_window += 1;
                }
            }
            None => {
                if let Some(b) = out.behaviour.as_mut() {
                    *b.findings.entry(f.kind.as_str().to_string()).or_default() += 1;
                }
            }
        }
    }
    out
}

fn from_file(args: &ReportArgs, path: &Path, generated: Timestamp) -> Result<ReportInput> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read the findings file {}", path.display()))?;
    let filter = store_filter(&args.filter, None)?;
    let mut findings = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("{}:{}: cannot read", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(&line).with_context(|| {
            format!(
                "{}:{}: not a JSON finding (expected the output of `hunt --format jsonl`)",
                path.display(),
                i + 1
            )
        })?;
        let triage: Option<Triage> = value
            .get("triage")
            .map(|t| serde_json::from_value(t.clone()))
            .transpose()
            .with_context(|| format!("{}:{}: unreadable `triage`", path.display(), i + 1))?;
        let finding: Finding = serde_json::from_value(value).with_context(|| {
            format!(
                "{}:{}: not a finding (expected the output of `hunt --format jsonl`)",
                path.display(),
                i + 1
            )
        })?;
        let rf = ReportFinding { finding, triage };
        if keep(&filter, &rf) {
            findings.push(rf);
        }
    }
    let coverage: Option<Coverage> = args
        .coverage
        .as_ref()
        .map(|p| -> Result<Coverage> {
            let bytes = std::fs::read(p)
                .with_context(|| format!("cannot read the coverage file {}", p.display()))?;
            serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is not a coverage file (expected the output of `hunt --coverage FILE`)",
                    p.display()
                )
            })
        })
        .transpose()?;
    Ok(ReportInput {
        findings,
        include_dismissed: args.filter.show_suppressed,
        include_internal: args.include_internal,
        coverage,
        org: args.org.clone(),
        generated,
        source: format!("the findings file {}", path.display()),
        routers: Vec::new(),
    })
}

/// The store's filters, applied to a finding read from a file.
fn keep(f: &orbwatch_store::FindingFilter, rf: &ReportFinding) -> bool {
    let x = &rf.finding;
    f.kind.is_none_or(|k| k == x.kind)
        && f.feed
            .as_ref()
            .is_none_or(|feed| x.ioc.as_ref().is_some_and(|i| &i.feed == feed))
        && f.status.is_none_or(|s| s.as_str() == rf.status())
        && f.since.is_none_or(|t| x.last_seen.is_some_and(|l| l >= t))
        && f.until.is_none_or(|t| x.first_seen.is_some_and(|l| l <= t))
        && f.min_score.is_none_or(|m| x.score.is_some_and(|s| s >= m))
        && f.min_severity
            .is_none_or(|m| x.severity.is_some_and(|s| s >= m))
}
