//! `orbwatch routers`: audit the organisation's own routers for implants,
//! reboot them safely with proof, print a schedule, show their history.
//! Thin: the work is in `orbwatch-routers`; this wires flags, the store and
//! the output.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use jiff::Timestamp;
use orbwatch_detect::{Coverage, Finding, Severity};
use orbwatch_routers::reboot::{self, RebootOptions, Step};
use orbwatch_routers::{
    AuditOptions, Inventory, Ssh, audit_router, checks, hash_indicators, ip_indicators,
};
use orbwatch_store::router_detail::AuditDetail;
use orbwatch_store::{RouterStepDetail, Store};

use crate::Cli;

#[derive(Subcommand, Debug)]
pub enum RoutersCommand {
    /// Audit routers over SSH with read-only commands; findings go to the
    /// store as `router_audit`.
    Audit(AuditArgs),
    /// Reboot routers safely: windows, fleet limit, pre-check, proof,
    /// health checks, re-audit (cleared by reboot vs persistent).
    Reboot(RebootArgs),
    /// Print a systemd timer (or a cron line) for a recurring audit and
    /// reboot.
    Schedule(ScheduleArgs),
    /// Show each router's history of audits and reboots from the store.
    History(HistoryArgs),
}

#[derive(Args, Debug)]
pub struct InventoryArg {
    /// The router inventory (TOML; see examples/routers.toml).
    #[arg(long, env = "ORBWATCH_ROUTERS", default_value = "routers.toml")]
    pub inventory: PathBuf,
    /// Only these routers (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Table,
    Jsonl,
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(flatten)]
    pub inv: InventoryArg,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Exit 1 when a finding is at least this severe.
    #[arg(long)]
    pub fail_on: Option<String>,
}

#[derive(Args, Debug)]
pub struct RebootArgs {
    #[command(flatten)]
    pub inv: InventoryArg,
    /// Routers down at the same time.
    #[arg(long, default_value_t = 1)]
    pub max_parallel: usize,
    /// Pre-check and plan only; send no reboot.
    #[arg(long)]
    pub dry_run: bool,
    /// Reboot outside the routers' windows (an emergency).
    #[arg(long)]
    pub ignore_window: bool,
    /// Seconds a router has to come back (default: policy.reboot_timeout_secs).
    #[arg(long)]
    pub timeout: Option<u64>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ScheduleFormat {
    Systemd,
    Cron,
}

#[derive(Args, Debug)]
pub struct ScheduleArgs {
    /// The router inventory the scheduled runs use.
    #[arg(long, env = "ORBWATCH_ROUTERS", default_value = "routers.toml")]
    pub inventory: PathBuf,
    #[arg(long, value_enum, default_value = "systemd")]
    pub format: ScheduleFormat,
    /// When to run (systemd OnCalendar); pick a time inside the routers'
    /// reboot windows. The cron line is derived for the default only.
    #[arg(long, default_value = "Sun *-*-* 02:15:00")]
    pub on_calendar: String,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Only this router.
    #[arg(long)]
    pub router: Option<String>,
    /// `table`: one line per step (time, router, action, step, ok or
    /// FAILED, detail JSON); `jsonl`: one JSON object per step.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

pub fn run(cli: &Cli, cmd: &RoutersCommand) -> Result<ExitCode> {
    match cmd {
        RoutersCommand::Audit(a) => audit(cli, a),
        RoutersCommand::Reboot(a) => reboot_cmd(cli, a),
        RoutersCommand::Schedule(a) => schedule(cli, a),
        RoutersCommand::History(a) => history(cli, a),
    }
}

/// What a run on the routers needs: the inventory, the store, the SSH
/// client with its pinned host keys, and the audit's indicators.
pub(crate) struct Ctx {
    pub inv: Inventory,
    pub store: Store,
    pub ssh: Ssh,
    pub opts: AuditOptions,
}

fn prepare(cli: &Cli, inv_path: &Path) -> Result<Ctx> {
    let db = crate::db_path::resolve(cli)?;
    prepare_at(&db, inv_path)
}

/// [`prepare`] on the store at `db` (`watch` knows its store).
pub(crate) fn prepare_at(db: &Path, inv_path: &Path) -> Result<Ctx> {
    let inv = Inventory::load(inv_path)?;
    let db = db.to_path_buf();
    let store =
        Store::open(&db).with_context(|| format!("cannot open the store {}", db.display()))?;
    let known_hosts = inv.known_hosts.clone().unwrap_or_else(|| {
        db.parent()
            .unwrap_or(Path::new("."))
            .join("routers_known_hosts")
    });
    let ssh = Ssh::new(&known_hosts)?;
    let hashes = hash_indicators(&store)?;
    let ips = ip_indicators(&store)?;
    let vulnerable = orbwatch_routers::vulnerable::load(&inv.vulnerable)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("inventory {}", inv.path.display()))?;
    tracing::info!(
        hash_indicators = hashes.len(),
        ip_indicators = ips.len(),
        vulnerable = vulnerable.len(),
        known_hosts = %known_hosts.display(),
        "routers: ready"
    );
    Ok(Ctx {
        inv,
        store,
        ssh,
        opts: AuditOptions {
            hash_indicators: hashes,
            ip_indicators: ips,
            vulnerable,
            banner_timeout: Duration::from_secs(2),
        },
    })
}

/// Keep the findings as a hunt and the steps in `router_history`.
fn keep(
    store: &mut Store,
    action: &str,
    args: serde_json::Value,
    started: Timestamp,
    findings: &[Finding],
    steps: &[Step],
) -> Result<i64> {
    let coverage = Coverage {
        started: Some(started),
        finished: Some(Timestamp::now()),
        findings: findings.len() as u64,
        ..Default::default()
    };
    let rec = store.record_hunt(&args, &coverage, findings)?;
    let tx = store.write_transaction()?;
    reboot::record_history(&tx, action, steps, Some(rec.hunt_id))
        .context("keeping the router history")?;
    tx.commit().context("keeping the router history")?;
    Ok(rec.hunt_id)
}

fn audit(cli: &Cli, a: &AuditArgs) -> Result<ExitCode> {
    let fail_on = match &a.fail_on {
        Some(s) => Some(Severity::parse(s).with_context(|| {
            format!("--fail-on {s:?}: use info, low, medium, high or critical")
        })?),
        None => None,
    };
    let started = Timestamp::now();
    let mut c = prepare(cli, &a.inv.inventory)?;
    let routers = c.inv.select(&a.inv.only)?;
    let (findings, steps, errors) = audit_fleet(&c, &routers, &mut |r, e, host_key| {
        if host_key {
            eprintln!("orbwatch: ERROR: {e}");
        } else {
            eprintln!("orbwatch: router {r}: audit not done: {e}");
        }
    });
    let args = serde_json::json!({"command": "routers audit", "inventory": c.inv.path});
    let hunt = keep(&mut c.store, "audit", args, started, &findings, &steps)?;
    write_findings(&findings, a.format)?;
    if !cli.quiet {
        eprintln!(
            "orbwatch: {} router(s) audited, {} finding(s), {} not reachable or stopped; kept as hunt {hunt} in {}",
            steps.len() - errors,
            findings.len(),
            errors,
            c.store.path().display()
        );
    }
    if errors > 0 {
        return Ok(ExitCode::from(2));
    }
    if let Some(min) = fail_on
        && findings
            .iter()
            .any(|f| f.severity.is_some_and(|s| s >= min))
    {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Audit `routers` one after the other: their findings (most serious
/// first), the history steps, and how many could not be audited (each
/// told to `on_error` with the router's name and whether its host key
/// changed).
pub(crate) fn audit_fleet(
    c: &Ctx,
    routers: &[&orbwatch_routers::Router],
    on_error: &mut dyn FnMut(&str, &str, bool),
) -> (Vec<Finding>, Vec<Step>, usize) {
    let mut findings = Vec::new();
    let mut steps = Vec::new();
    let mut errors = 0;
    for r in routers {
        let res = audit_router(&c.ssh, r, &c.opts);
        if let Some(e) = &res.error {
            errors += 1;
            on_error(&r.name, e, res.host_key_changed);
        }
        steps.push(Step {
            router: r.name.clone(),
            at: res.at,
            step: if res.error.is_some() {
                "error"
            } else {
                "audited"
            }
            .into(),
            ok: res.error.is_none(),
            detail: RouterStepDetail::Audit(AuditDetail {
                findings: res.findings.len(),
                uptime_secs: res.uptime_secs,
                error: res.error.clone(),
                host_key_changed: res.host_key_changed,
            }),
        });
        findings.extend(res.findings);
    }
    findings.sort_by(orbwatch_detect::most_serious_first);
    (findings, steps, errors)
}

fn write_findings(findings: &[Finding], format: Format) -> Result<()> {
    let stdout = io::stdout();
    let mut w = io::BufWriter::new(stdout.lock());
    let r = (|| -> io::Result<()> {
        match format {
            Format::Jsonl => {
                for f in findings {
                    serde_json::to_writer(&mut w, f)?;
                    w.write_all(b"\n")?;
                }
            }
            Format::Table => {
                writeln!(
                    w,
                    "{:<16} {:<9} {:<28} REASON",
                    "ROUTER", "SEVERITY", "CHECK"
                )?;
                for f in findings {
                    writeln!(
                        w,
                        "{:<16} {:<9} {:<28} {}",
                        f.targets.first().map(String::as_str).unwrap_or("-"),
                        f.severity.map(|s| s.as_str()).unwrap_or("-"),
                        checks::check_of(f),
                        f.reasons.join(" / ")
                    )?;
                }
            }
        }
        w.flush()
    })();
    match r {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

fn reboot_cmd(cli: &Cli, a: &RebootArgs) -> Result<ExitCode> {
    if a.max_parallel == 0 {
        bail!("--max-parallel must be at least 1");
    }
    let started = Timestamp::now();
    let mut c = prepare(cli, &a.inv.inventory)?;
    let routers = c.inv.select(&a.inv.only)?;
    let opts = RebootOptions {
        max_parallel: a.max_parallel,
        dry_run: a.dry_run,
        ignore_window: a.ignore_window,
        timeout: Duration::from_secs(a.timeout.unwrap_or(c.inv.policy.reboot_timeout_secs)),
        poll: Duration::from_secs(1),
        stagger: Duration::from_secs(c.inv.policy.stagger_secs),
    };
    let quiet = cli.quiet;
    let mut progress = |s: &Step| {
        if !quiet {
            eprintln!(
                "orbwatch: {} {} {}: {}",
                s.router,
                s.step,
                if s.ok { "ok" } else { "FAILED" },
                s.detail
            );
        }
    };
    let result = reboot::reboot_fleet(&c.ssh, &c.inv, &routers, &opts, &c.opts, &mut progress);
    let findings = result.findings();
    let args = serde_json::json!({
        "command": "routers reboot", "inventory": c.inv.path,
        "max_parallel": a.max_parallel, "dry_run": a.dry_run,
    });
    let hunt = keep(
        &mut c.store,
        "reboot",
        args,
        started,
        &findings,
        &result.steps,
    )?;
    let stdout = io::stdout();
    let mut w = io::BufWriter::new(stdout.lock());
    let r = (|| -> io::Result<()> {
        for o in &result.outcomes {
            match a.format {
                Format::Jsonl => {
                    serde_json::to_writer(&mut w, o)?;
                    w.write_all(b"\n")?;
                }
                Format::Table => writeln!(
                    w,
                    "{:<16} {:<15} uptime {} -> {}  cleared {}  persistent {}  new {}{}",
                    o.router,
                    o.outcome,
                    o.uptime_before
                        .map(|u| format!("{u:.0}s"))
                        .unwrap_or("-".into()),
                    o.uptime_after
                        .map(|u| format!("{u:.0}s"))
                        .unwrap_or("-".into()),
                    o.cleared.len(),
                    o.persistent.len(),
                    o.new.len(),
                    o.reason
                        .as_deref()
                        .map(|r| format!("  ({r})"))
                        .unwrap_or_default()
                )?,
            }
        }
        w.flush()
    })();
    match r {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        r => r?,
    }
    if let Some(h) = &result.halted {
        eprintln!("orbwatch: ERROR: {h}");
    }
    if !quiet {
        eprintln!(
            "orbwatch: kept as hunt {hunt} in {}",
            c.store.path().display()
        );
    }
    let bad = result.outcomes.iter().any(|o| {
        matches!(
            o.outcome.as_str(),
            "never_returned" | "failed" | "not_started" | "unhealthy"
        ) || (o.outcome == "refused"
            && o.reason
                .as_deref()
                .is_some_and(|r| !r.starts_with("outside")))
    });
    Ok(if bad {
        ExitCode::from(2)
    } else if result.outcomes.iter().any(|o| !o.persistent.is_empty()) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Quote for a systemd ExecStart / shell line.
fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=:,@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn schedule(cli: &Cli, a: &ScheduleArgs) -> Result<ExitCode> {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "orbwatch".into());
    let inv = std::fs::canonicalize(&a.inventory).unwrap_or_else(|_| a.inventory.clone());
    let db = crate::db_path::resolve(cli)?;
    let base = format!(
        "{} --db {}",
        sh_quote(&exe),
        sh_quote(&db.display().to_string())
    );
    let inv_s = sh_quote(&inv.display().to_string());
    let audit = format!("{base} routers audit --inventory {inv_s}");
    let reboot = format!("{base} routers reboot --inventory {inv_s} --max-parallel 1");
    match a.format {
        ScheduleFormat::Systemd => {
            println!("# /etc/systemd/system/orbwatch-routers.service");
            println!(
                "[Unit]\nDescription=orbwatch: audit the routers, then reboot them safely within their windows\nAfter=network-online.target\nWants=network-online.target\n"
            );
            println!(
                "[Service]\nType=oneshot\n# The audit's exit code 1 (findings) must not stop the reboot.\nExecStart=-{audit}\nExecStart={reboot}\n"
            );
            println!("# /etc/systemd/system/orbwatch-routers.timer");
            println!(
                "[Unit]\nDescription=orbwatch routers audit and reboot\n\n[Timer]\nOnCalendar={}\nPersistent=true\nRandomizedDelaySec=5min\n\n[Install]\nWantedBy=timers.target",
                a.on_calendar
            );
            println!(
                "\n# then: systemctl daemon-reload && systemctl enable --now orbwatch-routers.timer"
            );
        }
        ScheduleFormat::Cron => {
            let when = if a.on_calendar == "Sun *-*-* 02:15:00" {
                "15 2 * * 0"
            } else {
                bail!(
                    "--format cron knows only the default time; write the cron fields yourself or use --format systemd"
                );
            };
            println!("# crontab line: audit, then reboot within the routers' windows");
            println!("{when} {audit}; {reboot}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn history(cli: &Cli, a: &HistoryArgs) -> Result<ExitCode> {
    let store = crate::cmd_triage::open_existing(cli)?;
    let stdout = io::stdout();
    let mut w = io::BufWriter::new(stdout.lock());
    // Pages of steps, so that years of history are never held at once.
    let mut after = None;
    loop {
        let page = store
            .router_history(a.router.as_deref(), after, HISTORY_PAGE)
            .context("reading the router history")?;
        let Some(last) = page.last() else { break };
        after = Some(last.seq);
        let r = (|| -> io::Result<()> {
            for s in &page {
                match a.format {
                    Format::Jsonl => {
                        serde_json::to_writer(&mut w, s)?;
                        writeln!(w)?;
                    }
                    Format::Table => writeln!(
                        w,
                        "{} {} {} {} {} {}",
                        orbwatch_store::rows::ts_text(s.at),
                        s.router,
                        s.action,
                        s.step,
                        if s.ok { "ok" } else { "FAILED" },
                        s.detail
                    )?,
                }
            }
            Ok(())
        })();
        match r {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
            r => r?,
        }
    }
    match w.flush() {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        r => r?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Steps read from the store at a time by `routers history`.
const HISTORY_PAGE: usize = 1000;
