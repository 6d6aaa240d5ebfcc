//! `watch --routers FILE`: the audits and reboots of the organisation's own
//! routers run inside the daemon, on a thread of their own, instead of
//! from the systemd timer or cron line that `orbwatch routers schedule`
//! prints.
//!
//! - **Audit** every router when the daemon starts and then every
//!   `audit_every` (default 24 h), with the indicators the store holds at
//!   that moment (a feed added since is used at the next audit).
//! - **Reboot** (only with `reboot = true`): once a minute, the routers
//!   whose reboot window is open now and that had no reboot attempt in
//!   this opening of the window are rebooted through the same
//!   `reboot_fleet` as `routers reboot` (pre-checks, fleet share, one at
//!   a time by default, proof, health checks, re-audit). A router without
//!   a window, or whose profile cannot be rebooted, is never rebooted by
//!   the daemon. Attempts are read back from the router history at start,
//!   so a daemon restarted inside a window does not reboot again.
//!
//! Every step goes to the router history (linked to the daemon's run), and
//! the findings go through the daemon like its own: kept in the store,
//! alerted, never blocked (their address is the router itself).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use jiff::Timestamp;
use orbwatch_detect::Finding;
use orbwatch_routers::reboot::{self, RebootOptions, Step};
use orbwatch_routers::{Router, hash_indicators, ip_indicators};

use crate::cmd_routers::{Ctx, audit_fleet, prepare_at};

/// `[routers]` of the watch settings, resolved.
#[derive(Debug, Clone)]
pub struct RoutersSettings {
    pub inventory: PathBuf,
    pub audit_every: Duration,
    pub reboot: bool,
    pub max_parallel: usize,
}

/// How often the reboot windows are looked at.
const REBOOT_CHECK: Duration = Duration::from_secs(60);

/// The routers' thread, and the findings it hands to the daemon.
pub struct RouterJobs {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    findings: crossbeam_channel::Receiver<Vec<Finding>>,
}

impl RouterJobs {
    /// Read the inventory and open the store now (a broken inventory stops
    /// the daemon's start), then run the schedule on a thread. Steps are
    /// kept under the daemon's run `run_id`.
    pub fn start(settings: &RoutersSettings, db: &Path, run_id: i64) -> Result<RouterJobs> {
        let ctx = prepare_at(db, &settings.inventory).with_context(|| {
            format!(
                "watch: the router inventory {}",
                settings.inventory.display()
            )
        })?;
        tracing::info!(
            "watch: {} routers from {}: audit every {} s, {}",
            ctx.inv.routers.len(),
            settings.inventory.display(),
            settings.audit_every.as_secs(),
            if settings.reboot {
                "reboot within their windows"
            } else {
                "no reboot (routers.reboot = false)"
            }
        );
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = crossbeam_channel::unbounded();
        let settings = settings.clone();
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("routers".into())
            .spawn(move || run(ctx, &settings, run_id, &flag, &tx))
            .context("cannot start the routers' thread")?;
        Ok(RouterJobs {
            stop,
            handle: Some(handle),
            findings: rx,
        })
    }

    /// Findings of the audits and reboots finished since the last call.
    pub fn take_findings(&self) -> Vec<Finding> {
        self.findings.try_iter().flatten().collect()
    }

    /// Stop the schedule: nothing new starts. A reboot under way is given
    /// up to `wait` to finish (its router is down meanwhile: leaving it
    /// unverified is worse than a slower stop); then the daemon goes on
    /// stopping and says so. Findings it handed on come back.
    pub fn stop(mut self, wait: Duration) -> Vec<Finding> {
        self.stop.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + wait;
        if let Some(h) = self.handle.take() {
            while !h.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if h.is_finished() {
                let _ = h.join();
            } else {
                tracing::warn!(
                    "watch: a router audit or reboot was still under way after {} s; stopping without its result (see `orbwatch routers history`)",
                    wait.as_secs()
                );
            }
        }
        self.take_findings()
    }
}

fn run(
    mut ctx: Ctx,
    settings: &RoutersSettings,
    run_id: i64,
    stop: &AtomicBool,
    tx: &crossbeam_channel::Sender<Vec<Finding>>,
) {
    let mut attempted = last_reboot_attempts(&ctx);
    let mut next_audit = Instant::now();
    let mut next_reboot = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= next_audit {
            next_audit = now + settings.audit_every;
            match audit_all(&mut ctx, run_id) {
                Ok(found) => {
                    let _ = tx.send(found);
                }
                Err(e) => tracing::error!("watch: routers: the audit failed: {e:#}"),
            }
        }
        if settings.reboot && now >= next_reboot && !stop.load(Ordering::Relaxed) {
            next_reboot = now + REBOOT_CHECK;
            let at = Timestamp::now();
            let due: Vec<String> = due_for_reboot(&ctx.inv.routers, at, &attempted)
                .into_iter()
                .map(|r| r.name.clone())
                .collect();
            if !due.is_empty() {
                for name in &due {
                    attempted.insert(name.clone(), at);
                }
                match reboot_due(&mut ctx, &due, settings.max_parallel, run_id) {
                    Ok(found) => {
                        let _ = tx.send(found);
                    }
                    Err(e) => tracing::error!("watch: routers: the reboot failed: {e:#}"),
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Audit every router with the store's indicators as they are now; keep
/// the steps; the findings.
fn audit_all(ctx: &mut Ctx, run_id: i64) -> Result<Vec<Finding>> {
    ctx.opts.hash_indicators = hash_indicators(&ctx.store)?;
    ctx.opts.ip_indicators = ip_indicators(&ctx.store)?;
    let routers: Vec<&Router> = ctx.inv.routers.iter().collect();
    let (findings, steps, errors) = audit_fleet(ctx, &routers, &mut |r, e, host_key| {
        if host_key {
            tracing::error!("watch: router {r}: {e}");
        } else {
            tracing::warn!("watch: router {r}: audit not done: {e}");
        }
    });
    keep_steps(&mut ctx.store, "audit", &steps, run_id)?;
    tracing::info!(
        "watch: routers audited: {} of {}, {} findings",
        routers.len() - errors,
        routers.len(),
        findings.len()
    );
    Ok(findings)
}

fn reboot_due(
    ctx: &mut Ctx,
    names: &[String],
    max_parallel: usize,
    run_id: i64,
) -> Result<Vec<Finding>> {
    tracing::info!(
        "watch: rebooting {} inside their window: {}",
        names.len(),
        names.join(", ")
    );
    let due: Vec<&Router> = ctx
        .inv
        .routers
        .iter()
        .filter(|r| names.contains(&r.name))
        .collect();
    let opts = RebootOptions {
        max_parallel: max_parallel.max(1),
        dry_run: false,
        ignore_window: false,
        timeout: Duration::from_secs(ctx.inv.policy.reboot_timeout_secs),
        poll: Duration::from_secs(1),
        stagger: Duration::from_secs(ctx.inv.policy.stagger_secs),
    };
    let mut progress = |s: &Step| {
        tracing::info!(
            "watch: router {} {} {}: {}",
            s.router,
            s.step,
            if s.ok { "ok" } else { "FAILED" },
            s.detail
        )
    };
    let result = reboot::reboot_fleet(&ctx.ssh, &ctx.inv, &due, &opts, &ctx.opts, &mut progress);
    keep_steps(&mut ctx.store, "reboot", &result.steps, run_id)?;
    if let Some(h) = &result.halted {
        tracing::error!("watch: routers: {h}");
    }
    Ok(result.findings())
}

fn keep_steps(
    store: &mut orbwatch_store::Store,
    action: &str,
    steps: &[Step],
    run_id: i64,
) -> Result<()> {
    let tx = store.write_transaction()?;
    reboot::record_history(&tx, action, steps, Some(run_id))
        .context("keeping the router history")?;
    tx.commit().context("keeping the router history")?;
    Ok(())
}

/// When each router's latest reboot step was written (any outcome): an
/// attempt in the current opening of its window is not repeated.
fn last_reboot_attempts(ctx: &Ctx) -> HashMap<String, Timestamp> {
    let mut out = HashMap::new();
    for r in &ctx.inv.routers {
        match ctx.store.router_recent_steps(&r.name, 64) {
            Ok(steps) => {
                if let Some(s) = steps.iter().rev().find(|s| s.action == "reboot") {
                    out.insert(r.name.clone(), s.at);
                }
            }
            Err(e) => tracing::warn!(
                "watch: router {}: cannot read its history ({e}); it may be rebooted again in its current window",
                r.name
            ),
        }
    }
    out
}

/// The routers to reboot at `now`: a profile that can be rebooted, a
/// reboot window open at `now`, and no attempt (`attempted`) within the
/// window's length before `now`, i.e. none in this opening of it.
pub fn due_for_reboot<'a>(
    routers: &'a [Router],
    now: Timestamp,
    attempted: &HashMap<String, Timestamp>,
) -> Vec<&'a Router> {
    routers
        .iter()
        .filter(|r| r.profile.reboot_supported())
        .filter(|r| {
            let Some(w) = &r.reboot_window else {
                return false;
            };
            w.contains(now)
                && attempted
                    .get(&r.name)
                    .is_none_or(|t| now.as_second() - t.as_second() >= w.length_secs())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inventory() -> orbwatch_routers::Inventory {
        orbwatch_routers::Inventory::parse(
            r#"
[[router]]
name = "night"
host = "192.0.2.10"
user = "admin"
identity = "/keys/id"
profile = "openwrt"
reboot_window = "daily 02:00-04:00 UTC"

[[router]]
name = "no-window"
host = "192.0.2.11"
user = "admin"
identity = "/keys/id"
profile = "openwrt"

[[router]]
name = "mikrotik"
host = "192.0.2.12"
user = "admin"
identity = "/keys/id"
profile = "mikrotik"
reboot_window = "daily 02:00-04:00 UTC"
"#,
            Path::new("/x/routers.toml"),
        )
        .unwrap()
    }

    fn names(v: Vec<&Router>) -> Vec<&str> {
        v.into_iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn a_router_is_due_once_per_opening_of_its_window() {
        let inv = inventory();
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        let none = HashMap::new();
        // Outside the window: nothing.
        assert!(due_for_reboot(&inv.routers, at("2026-12-05T12:00:00Z"), &none).is_empty());
        // Inside: only the router with a window and a profile that can
        // be rebooted (mikrotik is audit only).
        let inside = at("2026-12-05T02:30:00Z");
        assert_eq!(
            names(due_for_reboot(&inv.routers, inside, &none)),
            ["night"]
        );
        // Attempted at 02:01 the same night: not again that night.
        let tried = HashMap::from([("night".to_string(), at("2026-12-05T02:01:00Z"))]);
        assert!(due_for_reboot(&inv.routers, inside, &tried).is_empty());
        // The next night it is due again.
        assert_eq!(
            names(due_for_reboot(
                &inv.routers,
                at("2026-12-06T02:30:00Z"),
                &tried
            )),
            ["night"]
        );
    }
}
