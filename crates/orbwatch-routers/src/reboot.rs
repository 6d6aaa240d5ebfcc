//! Safe, verified reboots of a fleet.
//!
//! Why so careful: a reboot clears an implant that lives only in memory
//! (ANSSI's advice, the KV-botnet takedown), but a router that does not come
//! back cuts a site off. So each reboot is planned (window, fleet limit,
//! share of the fleet down), preceded by a pre-check (an audit that must
//! succeed), proven (uptime went back), checked (SSH answers, expected
//! services listen) and followed by a re-audit that sorts every earlier
//! finding into "cleared by reboot" and "persistent" (severity raised: the
//! device must be re-flashed or replaced). A router that never comes back
//! stops every further reboot. Every step is kept in the store's
//! `router_history`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use orbwatch_detect::{Finding, Severity};
use orbwatch_store::RouterStepDetail;
use orbwatch_store::router_detail::{
    PrecheckPassed, PrecheckUnhealthy, ProofDetail, ReauditDetail, ReturnedDetail, SentDetail,
};
use orbwatch_store::rusqlite::{self, params};
use serde::Serialize;

use crate::audit::{AuditOptions, RouterAudit, audit_router};
use crate::checks;
use crate::inventory::{Inventory, Router};
use crate::ssh::{Ssh, SshError};

/// How a fleet reboot runs.
#[derive(Debug, Clone)]
pub struct RebootOptions {
    /// Routers rebooted (down) at the same time; at least 1.
    pub max_parallel: usize,
    pub dry_run: bool,
    /// Reboot outside the routers' windows (tests, emergencies).
    pub ignore_window: bool,
    /// How long a router has to come back.
    pub timeout: Duration,
    /// Time between two attempts to reach a rebooting router.
    pub poll: Duration,
    /// Pause between two reboots (staggering).
    pub stagger: Duration,
}

/// One step of one router's reboot, as kept in the history.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub router: String,
    pub at: Timestamp,
    pub step: String,
    pub ok: bool,
    /// Written to `router_history.detail_json` as its JSON.
    pub detail: RouterStepDetail,
}

/// What happened to one router.
#[derive(Debug, Clone, Serialize)]
pub struct RebootOutcome {
    pub router: String,
    /// `rebooted`, `unhealthy` (back, proven, but a health check failed),
    /// `dry_run`, `refused`, `skipped`, `never_returned`, `not_started`,
    /// `failed`.
    pub outcome: String,
    pub reason: Option<String>,
    pub uptime_before: Option<f64>,
    pub uptime_after: Option<f64>,
    pub boot_id_before: Option<String>,
    pub boot_id_after: Option<String>,
    /// Findings of the pre-check that the re-audit no longer shows.
    pub cleared: Vec<Finding>,
    /// Findings still there after the reboot (severity raised).
    pub persistent: Vec<Finding>,
    /// Findings the re-audit shows that the pre-check did not.
    pub new: Vec<Finding>,
    pub health: Vec<HealthCheck>,
    /// Seconds from the reboot command to SSH answering again.
    pub down_secs: Option<f64>,
}

/// One health check after the reboot: `ssh`, `listening <port>`,
/// `wan_ping <address>`, `dns <name> @<server>` (the store's type: the
/// `health` step keeps them as they are).
pub use orbwatch_store::router_detail::HealthCheck;

impl RebootOutcome {
    fn new(router: &str, outcome: &str, reason: Option<String>) -> RebootOutcome {
        RebootOutcome {
            router: router.into(),
            outcome: outcome.into(),
            reason,
            uptime_before: None,
            uptime_after: None,
            boot_id_before: None,
            boot_id_after: None,
            cleared: Vec::new(),
            persistent: Vec::new(),
            new: Vec::new(),
            health: Vec::new(),
            down_secs: None,
        }
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct FleetReboot {
    pub outcomes: Vec<RebootOutcome>,
    pub steps: Vec<Step>,
    /// Set when a router did not come back and the remaining reboots were
    /// not started.
    pub halted: Option<String>,
}

impl FleetReboot {
    /// Every finding to keep: pre-check findings that were cleared (as
    /// they were), persistent ones (raised), new ones.
    pub fn findings(&self) -> Vec<Finding> {
        self.outcomes
            .iter()
            .flat_map(|o| o.cleared.iter().chain(&o.persistent).chain(&o.new))
            .cloned()
            .collect()
    }
}

/// Sort the pre-check's findings against the re-audit's: (cleared,
/// persistent with severity raised, new).
pub fn sort_findings(
    before: &[Finding],
    after: &[Finding],
) -> (Vec<Finding>, Vec<Finding>, Vec<Finding>) {
    let after_ids: BTreeSet<&str> = after.iter().map(|f| f.id.as_str()).collect();
    let before_ids: BTreeSet<&str> = before.iter().map(|f| f.id.as_str()).collect();
    let mut cleared = Vec::new();
    let mut persistent = Vec::new();
    for f in before {
        let mut f = f.clone();
        if after_ids.contains(f.id.as_str()) {
            // Keep the re-audit's evidence (it is the current state).
            if let Some(a) = after.iter().find(|a| a.id == f.id) {
                f = a.clone();
                f.first_seen = before
                    .iter()
                    .find(|b| b.id == f.id)
                    .and_then(|b| b.first_seen);
            }
            f.severity = Some(raise(f.severity.unwrap_or(Severity::Medium)));
            f.score = Some(f.score.unwrap_or(50).saturating_add(10).min(100));
            f.reasons.push(
                "persistent: it survived a verified reboot, so the device must be re-flashed or replaced (a reboot alone does not clean it)".into(),
            );
            set_detail(&mut f, "reboot", "persistent");
            persistent.push(f);
        } else {
            f.reasons.push(
                "cleared by reboot: gone after a verified reboot (it lived only in memory); the device can be infected again unless it is patched".into(),
            );
            set_detail(&mut f, "reboot", "cleared");
            cleared.push(f);
        }
    }
    let new = after
        .iter()
        .filter(|f| !before_ids.contains(f.id.as_str()))
        .cloned()
        .map(|mut f| {
            set_detail(&mut f, "reboot", "new");
            f
        })
        .collect();
    (cleared, persistent, new)
}

fn set_detail(f: &mut Finding, k: &str, v: &str) {
    if let Some(d) = f.details.as_mut().and_then(|d| d.as_object_mut()) {
        d.insert(k.into(), serde_json::Value::String(v.into()));
    }
}

fn raise(s: Severity) -> Severity {
    match s {
        Severity::Info => Severity::Low,
        Severity::Low => Severity::Medium,
        Severity::Medium => Severity::High,
        Severity::High | Severity::Critical => Severity::Critical,
    }
}

struct Recorder<'a> {
    steps: Vec<Step>,
    on_step: &'a mut (dyn FnMut(&Step) + Send),
}

impl Recorder<'_> {
    fn step(&mut self, router: &str, step: &str, ok: bool, detail: RouterStepDetail) {
        let s = Step {
            router: router.into(),
            at: Timestamp::now(),
            step: step.into(),
            ok,
            detail,
        };
        (self.on_step)(&s);
        self.steps.push(s);
    }

    /// A `step` of `o`'s router that failed with the SSH error `error`,
    /// which stopped the reboot: `o` is `failed`, with that error as its
    /// reason, the same text as the step's.
    fn failed(&mut self, o: &mut RebootOutcome, step: &str, error: String) {
        self.step(
            &o.router,
            step,
            false,
            RouterStepDetail::failed(error.as_str()),
        );
        o.outcome = "failed".into();
        o.reason = Some(error);
    }
}

/// Reboot `selected` routers of `inv`. A router that does not come back,
/// or comes back failing a health check, stops the reboots not yet begun. `on_step` sees every step as it
/// happens (for progress on stderr).
pub fn reboot_fleet(
    ssh: &Ssh,
    inv: &Inventory,
    selected: &[&Router],
    opts: &RebootOptions,
    audit_opts: &AuditOptions,
    on_step: &mut (dyn FnMut(&Step) + Send),
) -> FleetReboot {
    let mut rec = Recorder {
        steps: Vec::new(),
        on_step,
    };
    let mut outcomes = Vec::new();
    let now = Timestamp::now();
    let fleet = inv.routers.len().max(1);
    let max_parallel = opts.max_parallel.max(1);
    // Fleet limit: never plan more down at once than the policy allows.
    let share = max_parallel.min(selected.len()) as f64 / fleet as f64;
    if share > inv.policy.max_down_share + 1e-9 && selected.len() > 1 {
        let why = format!(
            "--max-parallel {max_parallel} would take {:.0}% of the fleet ({fleet} routers) down at once; the policy allows {:.0}% (policy.max_down_share)",
            share * 100.0,
            inv.policy.max_down_share * 100.0
        );
        for r in selected {
            rec.step(
                &r.name,
                "refused",
                false,
                RouterStepDetail::reason(why.as_str()),
            );
            outcomes.push(RebootOutcome::new(&r.name, "refused", Some(why.clone())));
        }
        return FleetReboot {
            outcomes,
            steps: rec.steps,
            halted: Some(why),
        };
    }
    // Windows.
    let mut eligible = Vec::new();
    for r in selected {
        if !r.profile.reboot_supported() {
            let why = format!(
                "routers reboot does not support profile {} yet (audit only); reboot it by hand",
                r.profile
            );
            rec.step(
                &r.name,
                "refused",
                false,
                RouterStepDetail::reason(why.as_str()),
            );
            outcomes.push(RebootOutcome::new(&r.name, "refused", Some(why)));
            continue;
        }
        match &r.reboot_window {
            Some(w) if !opts.ignore_window && !w.contains(now) => {
                let why = format!("outside its reboot window {:?}", w.text);
                rec.step(
                    &r.name,
                    "refused",
                    false,
                    RouterStepDetail::reason(why.as_str()),
                );
                outcomes.push(RebootOutcome::new(&r.name, "refused", Some(why)));
            }
            _ => eligible.push(*r),
        }
    }
    let mut halted: Option<String> = None;
    for (bi, batch) in eligible.chunks(max_parallel).enumerate() {
        if let Some(h) = &halted {
            for r in batch {
                rec.step(
                    &r.name,
                    "not_started",
                    false,
                    RouterStepDetail::reason(h.as_str()),
                );
                outcomes.push(RebootOutcome::new(
                    &r.name,
                    "not_started",
                    Some(h.to_string()),
                ));
            }
            continue;
        }
        if bi > 0 && !opts.stagger.is_zero() && !opts.dry_run {
            std::thread::sleep(opts.stagger);
        }
        let results: Vec<(RebootOutcome, Vec<Step>)> = std::thread::scope(|s| {
            let handles: Vec<_> = batch
                .iter()
                .map(|r| {
                    s.spawn(move || {
                        let mut local = Vec::new();
                        let mut sink = |st: &Step| local.push(st.clone());
                        let mut rr = Recorder {
                            steps: Vec::new(),
                            on_step: &mut sink,
                        };
                        let o = reboot_one(ssh, r, opts, audit_opts, &mut rr);
                        let steps = rr.steps;
                        (o, steps)
                    })
                })
                .collect();
            handles
                .into_iter()
                .zip(batch.iter())
                .map(|(h, r)| {
                    h.join().unwrap_or_else(|_| {
                        (
                            RebootOutcome::new(&r.name, "failed", Some("internal error".into())),
                            Vec::new(),
                        )
                    })
                })
                .collect()
        });
        for (o, steps) in results {
            for st in steps {
                (rec.on_step)(&st);
                rec.steps.push(st);
            }
            if o.outcome == "never_returned" {
                halted = Some(format!(
                    "router {} did not come back after its reboot; no further reboot was started",
                    o.router
                ));
            } else if o.outcome == "unhealthy" && halted.is_none() {
                // A router that lost its WAN or DNS after a reboot may have
                // cut a site off as surely as one that stayed down.
                halted = Some(format!(
                    "router {} {}; no further reboot was started",
                    o.router,
                    o.reason.as_deref().unwrap_or("came back unhealthy")
                ));
            }
            outcomes.push(o);
        }
    }
    FleetReboot {
        outcomes,
        steps: rec.steps,
        halted,
    }
}

fn reboot_one(
    ssh: &Ssh,
    r: &Router,
    opts: &RebootOptions,
    audit_opts: &AuditOptions,
    rec: &mut Recorder<'_>,
) -> RebootOutcome {
    // Pre-check: a full audit that must succeed.
    let pre = audit_router(ssh, r, audit_opts);
    if let Some(e) = &pre.error {
        rec.step(
            &r.name,
            "precheck",
            false,
            RouterStepDetail::failed(e.as_str()),
        );
        let mut o = RebootOutcome::new(&r.name, "refused", Some(format!("pre-check failed: {e}")));
        o.new = pre.findings;
        return o;
    }
    let Some(up_before) = pre.uptime_secs else {
        rec.step(
            &r.name,
            "precheck",
            false,
            RouterStepDetail::failed("no uptime"),
        );
        return RebootOutcome::new(
            &r.name,
            "refused",
            Some("pre-check failed: the router did not give its uptime, so a reboot could not be proven".into()),
        );
    };
    // The health checks must pass before the reboot too: a router that
    // already cannot reach its WAN or resolve names would be rebooted
    // blind (its health afterwards would prove nothing), so it is left
    // alone and reported.
    let health_before = health_checks(ssh, r);
    if let Some(bad) = failed_names(&health_before) {
        rec.step(
            &r.name,
            "precheck",
            false,
            RouterStepDetail::PrecheckUnhealthy(PrecheckUnhealthy {
                uptime_secs: up_before,
                health: health_before.clone(),
            }),
        );
        let mut o = RebootOutcome::new(
            &r.name,
            "refused",
            Some(format!(
                "pre-check failed: health check(s) {bad} failed before the reboot; fix them first"
            )),
        );
        o.uptime_before = Some(up_before);
        o.health = health_before;
        o.new = pre.findings;
        return o;
    }
    rec.step(
        &r.name,
        "precheck",
        true,
        RouterStepDetail::PrecheckPassed(PrecheckPassed {
            uptime_secs: up_before,
            boot_id: pre.boot_id.clone(),
            findings: pre.findings.len(),
            health: health_before,
        }),
    );
    // A timer that fires more than once inside a window must not reboot
    // the router again: up for less than the window lasts means it was
    // rebooted inside this window already.
    if let Some(w) = &r.reboot_window
        && !opts.ignore_window
        && up_before < w.length_secs() as f64
    {
        let why = format!(
            "already rebooted inside this window (up {up_before:.0} s, the window {:?} lasts {} s)",
            w.text,
            w.length_secs()
        );
        rec.step(
            &r.name,
            "skipped",
            true,
            RouterStepDetail::reason(why.as_str()),
        );
        let mut o = RebootOutcome::new(&r.name, "skipped", Some(why));
        o.uptime_before = Some(up_before);
        o.new = pre.findings;
        return o;
    }
    let mut o = RebootOutcome::new(&r.name, "dry_run", None);
    o.uptime_before = Some(up_before);
    o.boot_id_before = pre.boot_id.clone();
    if opts.dry_run {
        rec.step(
            &r.name,
            "dry_run",
            true,
            RouterStepDetail::DryRun(orbwatch_store::router_detail::DryRunDetail {
                would_run: r.profile.reboot_command().into(),
            }),
        );
        o.new = pre.findings;
        return o;
    }
    let sent_at = Instant::now();
    if let Err(e) = ssh.reboot(r) {
        rec.failed(&mut o, "sent", e.to_string());
        return o;
    }
    rec.step(
        &r.name,
        "sent",
        true,
        RouterStepDetail::Sent(SentDetail {
            command: r.profile.reboot_command().into(),
        }),
    );
    // Wait for it to come back with a lower uptime.
    let deadline = sent_at + opts.timeout;
    let mut back = None;
    while Instant::now() < deadline {
        std::thread::sleep(opts.poll);
        let probe = r.profile.uptime_probe();
        match ssh.run_probe(r, probe.command) {
            Ok(out) => {
                if let Some(up) = checks::uptime_from(probe, &out.stdout)
                    && up < up_before
                {
                    back = Some(up);
                    break;
                }
            }
            Err(e @ SshError::HostKeyChanged { .. }) => {
                rec.failed(&mut o, "returned", e.to_string());
                o.new = vec![crate::audit::host_key_finding(r, &e, Timestamp::now())];
                return o;
            }
            Err(_) => {}
        }
    }
    let Some(up_after) = back else {
        let why = format!(
            "did not answer SSH with a lower uptime within {} s of its reboot",
            opts.timeout.as_secs()
        );
        rec.step(
            &r.name,
            "never_returned",
            false,
            RouterStepDetail::reason(why.as_str()),
        );
        o.outcome = "never_returned".into();
        o.reason = Some(why);
        o.new = pre.findings;
        return o;
    };
    o.down_secs = Some(sent_at.elapsed().as_secs_f64());
    o.uptime_after = Some(up_after);
    rec.step(
        &r.name,
        "returned",
        true,
        RouterStepDetail::Returned(ReturnedDetail {
            after_secs: o.down_secs,
        }),
    );
    // Re-audit (also the health checks' source).
    let post: RouterAudit = audit_router(ssh, r, audit_opts);
    o.boot_id_after = post.boot_id.clone();
    let boot_id_changed = match (&o.boot_id_before, &o.boot_id_after) {
        (Some(a), Some(b)) => Some(a != b),
        _ => None,
    };
    rec.step(
        &r.name,
        "proof",
        true,
        RouterStepDetail::Proof(ProofDetail {
            uptime_before: up_before,
            uptime_after: up_after,
            boot_id_changed,
        }),
    );
    o.health.push(HealthCheck {
        check: "ssh".into(),
        ok: post.error.is_none(),
        detail: post.error.clone().unwrap_or_else(|| "answers".into()),
    });
    for port in &r.expected_listeners {
        let ok = post.listening.contains(port);
        o.health.push(HealthCheck {
            check: format!("listening {port}"),
            ok,
            detail: if ok {
                "listens".into()
            } else {
                "not listening".into()
            },
        });
    }
    if post.error.is_none() {
        o.health.extend(health_checks(ssh, r));
    }
    let healthy = o.health.iter().all(|h| h.ok);
    rec.step(
        &r.name,
        "health",
        healthy,
        RouterStepDetail::Health(o.health.clone()),
    );
    if let Some(e) = &post.error {
        o.outcome = "failed".into();
        o.reason = Some(format!("re-audit failed: {e}"));
        o.new = post.findings;
        return o;
    }
    let (cleared, persistent, new) = sort_findings(&pre.findings, &post.findings);
    rec.step(
        &r.name,
        "reaudit",
        persistent.is_empty(),
        RouterStepDetail::Reaudit(ReauditDetail {
            cleared: check_names(&cleared),
            persistent: check_names(&persistent),
            new: check_names(&new),
        }),
    );
    o.cleared = cleared;
    o.persistent = persistent;
    o.new = new;
    if healthy {
        o.outcome = "rebooted".into();
    } else {
        o.outcome = "unhealthy".into();
        o.reason = Some(format!(
            "came back, but failed its health check(s): {}",
            failed_names(&o.health).unwrap_or_default()
        ));
    }
    o
}

/// WAN reachable, DNS resolves: the router's health commands, asked from
/// the router itself, judged by the command's exit status (ping and
/// nslookup, busybox's and the others, exit 0 only on an answer).
fn health_checks(ssh: &Ssh, r: &Router) -> Vec<HealthCheck> {
    let mut v = Vec::new();
    for h in r.health_commands() {
        let (ok, detail) = match ssh.run_health(r, &h.command) {
            Ok(out) => {
                let text = format!("{}{}", out.stdout, out.stderr);
                let lines: Vec<&str> = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect();
                let tail = lines[lines.len().saturating_sub(3)..].join(" | ");
                (
                    out.status == Some(0),
                    format!(
                        "$ {} -> exit {}: {tail}",
                        h.command,
                        out.status.map(|c| c.to_string()).unwrap_or("?".into())
                    ),
                )
            }
            Err(e) => (false, format!("$ {}: {e}", h.command)),
        };
        v.push(HealthCheck {
            check: h.check,
            ok,
            detail,
        });
    }
    v
}

/// The check each finding came from, as the re-audit step names them.
fn check_names(findings: &[Finding]) -> Vec<String> {
    findings
        .iter()
        .map(|f| checks::check_of(f).to_string())
        .collect()
}

/// The failed checks' names, comma-separated; `None` when all passed.
fn failed_names(checks: &[HealthCheck]) -> Option<String> {
    let bad: Vec<&str> = checks
        .iter()
        .filter(|h| !h.ok)
        .map(|h| h.check.as_str())
        .collect();
    (!bad.is_empty()).then(|| bad.join(", "))
}

/// Keep steps in the store's `router_history` (in the caller's
/// transaction).
pub fn record_history(
    tx: &rusqlite::Transaction<'_>,
    action: &str,
    steps: &[Step],
    hunt_id: Option<i64>,
) -> rusqlite::Result<()> {
    let mut ins = tx.prepare_cached(
        "INSERT INTO router_history (router, at, action, step, ok, hunt_id, detail_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for s in steps {
        ins.execute(params![
            s.router,
            orbwatch_store::rows::ts_text(s.at),
            action,
            s.step,
            s.ok,
            hunt_id,
            s.detail.to_string(),
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use orbwatch_detect::FindingKind;

    fn f(id: &str, sev: Severity) -> Finding {
        Finding {
            id: id.into(),
            kind: FindingKind::RouterAudit,
            first_seen: None,
            last_seen: None,
            count: 1,
            src_ip: None,
            dst_ip: None,
            ioc: None,
            targets: vec![],
            accounts: vec![],
            severity: Some(sev),
            score: Some(80),
            reasons: vec![],
            sources: vec![],
            details: Some(serde_json::json!({"check": id})),
            evidence: vec![],
            evidence_total: 0,
        }
    }

    #[test]
    fn sorting_raises_persistent_ones() {
        let before = [
            f("a", Severity::High),
            f("b", Severity::High),
            f("c", Severity::Critical),
        ];
        let after = [
            f("b", Severity::High),
            f("c", Severity::Critical),
            f("d", Severity::Low),
        ];
        let (cl, pe, nw) = sort_findings(&before, &after);
        assert_eq!(cl.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(), ["a"]);
        assert_eq!(
            pe.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
            ["b", "c"]
        );
        assert_eq!(pe[0].severity, Some(Severity::Critical));
        assert_eq!(pe[1].severity, Some(Severity::Critical));
        assert_eq!(nw.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(), ["d"]);
        assert_eq!(cl[0].details.as_ref().unwrap()["reboot"], "cleared");
    }
}
