//! The bouncer: puts the hostile addresses of serious findings into an
//! nftables or ipset set, with a timeout, as fail2ban and CrowdSec's
//! firewall bouncer do.
//!
//! # What is blocked
//!
//! A finding is considered when it passes `min_severity` (default `high`)
//! and `min_score`. Its hostile addresses are: for an `ioc_match`, the
//! matched address (the indicator side, whatever the direction; a domain
//! or hash indicator gives none); for a behaviour, `src_ip` and every
//! address of `sources` (a distributed brute force).
//!
//! Every address goes through the same [`Guard`] as `export blocklist`
//! (special-purpose ranges, `--internal`, allowlists, the default
//! allowlist of public resolvers, and the resolvers of `/etc/resolv.conf`,
//! added at startup: [`BouncerConfig::resolv_conf`]). A refusal is logged (`tracing`,
//! `warn`) and recorded in the store's `blocks` table with the guard's
//! reason; so are blocks and `--dry-run` decisions. The same refusal for
//! the same finding is recorded once per run, not at each update.
//!
//! # Sets
//!
//! An nftables set has one type, so `nftables:FAMILY:TABLE:SET` uses SET
//! for the family of its type and, when it exists, `SET6` (or `SET4`…
//! whichever is the sibling: `SET` + `6`) for IPv6 when SET holds IPv4
//! addresses; `nftables:FAMILY:TABLE:SET4,SET6` names both. The same holds
//! for `ipset:NAME` (`NAME6`, or `ipset:NAME4,NAME6`). An address with no
//! set of its family is refused ("no IPv6 set"). At startup each named set
//! must exist and have the `timeout` flag; otherwise [`Bouncer::new`]
//! fails with the command that creates it.
//!
//! Additions are batched: one `nft -f -` (or `ipset -exist restore`) per
//! [`Bouncer::consider`] call and target. An address already added by this
//! run is not re-added until its timeout has run out (nftables does not
//! extend the timeout of an element that exists).

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::Duration;

use jiff::Timestamp;
use orbwatch_blocklist::Guard;
use orbwatch_blocklist::span::{Family, ip_to_u128};
use orbwatch_detect::{Finding, FindingKind, Severity};
use orbwatch_store::outbox::record_block;
use orbwatch_store::{BlockAction, BlockRecord};
use rusqlite::Transaction;

use crate::AlertError;

/// `--block nftables:FAMILY:TABLE:SET` or `--block ipset:NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockTarget {
    Nftables {
        family: String,
        table: String,
        /// One set, or an IPv4 and an IPv6 set (`SET4,SET6`).
        sets: Vec<String>,
    },
    Ipset {
        names: Vec<String>,
    },
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl FromStr for BlockTarget {
    type Err = AlertError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            AlertError::Config(format!(
                "--block `{s}`: {why}; write nftables:FAMILY:TABLE:SET (FAMILY ip, ip6, inet, bridge, arp or netdev) or ipset:NAME"
            ))
        };
        let split_sets = |v: &str| -> Result<Vec<String>, AlertError> {
            let sets: Vec<String> = v.split(',').map(|x| x.trim().to_string()).collect();
            if sets.len() > 2 || !sets.iter().all(|x| valid_name(x)) {
                return Err(bad(
                    "set names are letters, digits, `_`, `-`, `.`; at most two, comma-separated",
                ));
            }
            Ok(sets)
        };
        let parts: Vec<&str> = s.split(':').collect();
        match parts.as_slice() {
            ["nftables" | "nft", family, table, set] => {
                if !matches!(*family, "ip" | "ip6" | "inet" | "bridge" | "arp" | "netdev") {
                    return Err(bad(&format!("unknown family `{family}`")));
                }
                if !valid_name(table) {
                    return Err(bad(&format!("bad table name `{table}`")));
                }
                Ok(BlockTarget::Nftables {
                    family: family.to_string(),
                    table: table.to_string(),
                    sets: split_sets(set)?,
                })
            }
            ["ipset", name] => Ok(BlockTarget::Ipset {
                names: split_sets(name)?,
            }),
            _ => Err(bad("unknown target")),
        }
    }
}

impl BlockTarget {
    /// How the target is named in `blocks.target`.
    pub fn label(&self) -> String {
        match self {
            BlockTarget::Nftables {
                family,
                table,
                sets,
            } => {
                format!("nftables {family} {table} {}", sets.join(","))
            }
            BlockTarget::Ipset { names } => format!("ipset {}", names.join(",")),
        }
    }
}

/// What the bouncer does.
#[derive(Debug, Clone)]
pub struct BouncerConfig {
    pub targets: Vec<BlockTarget>,
    /// Findings less serious are not blocked (default `high`).
    pub min_severity: Severity,
    /// Findings scored lower (or without a score) are not blocked.
    pub min_score: Option<u8>,
    /// How long an address stays in the set (default one hour).
    pub timeout: Duration,
    /// Log and record what would be blocked; touch no firewall.
    pub dry_run: bool,
    /// The guard, built as for `export blocklist` (special ranges,
    /// `--internal`, allowlists, default allowlist).
    pub guard: Guard,
    /// A command prefix for `nft`/`ipset` (empty in production; tests use
    /// `ip netns exec NS` to act inside a network namespace).
    pub wrapper: Vec<String>,
    /// A resolv.conf whose `nameserver` addresses join the guard at
    /// startup (default `/etc/resolv.conf`; a missing file is skipped):
    /// blocking the host's own resolver breaks its name resolution.
    pub resolv_conf: Option<std::path::PathBuf>,
}

impl BouncerConfig {
    pub fn new(targets: Vec<BlockTarget>, guard: Guard) -> BouncerConfig {
        BouncerConfig {
            targets,
            min_severity: Severity::High,
            min_score: None,
            timeout: Duration::from_secs(3600),
            dry_run: false,
            guard,
            wrapper: Vec::new(),
            resolv_conf: Some("/etc/resolv.conf".into()),
        }
    }
}

/// Add the `nameserver` addresses of a resolv.conf text to `guard` (call
/// before [`Guard::finish`]): blocking the local resolver breaks name
/// resolution for the whole host. Returns how many were added.
pub fn add_system_resolvers(guard: &mut Guard, resolv_conf: &str, label: &str) -> usize {
    let mut n = 0;
    for (i, line) in resolv_conf.lines().enumerate() {
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        // `fe80::1%eth0`: the zone is not part of the address.
        let Some(addr) = words.next().map(|a| a.split('%').next().unwrap_or(a)) else {
            continue;
        };
        let Ok(ip) = addr.parse::<IpAddr>() else {
            continue;
        };
        guard.add_net(
            ipnet::IpNet::from(ip),
            &format!("resolver {ip} ({label}:{})", i + 1),
        );
        n += 1;
    }
    n
}

/// What the bouncer did with one address of a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Added to the set until `until`.
    Blocked {
        address: IpAddr,
        target: String,
        until: Timestamp,
    },
    /// `--dry-run`: would have been added.
    DryRun {
        address: IpAddr,
        target: String,
        until: Timestamp,
    },
    /// Held back; `reason` is the guard's (or "no IPv6 set").
    Refused {
        address: IpAddr,
        target: String,
        reason: String,
    },
    /// Already added by this run and not expired yet.
    AlreadyBlocked { address: IpAddr, target: String },
    /// The firewall command failed (logged; retried at the next finding).
    Failed {
        address: IpAddr,
        target: String,
        error: String,
    },
}

/// A set resolved at startup.
#[derive(Debug, Clone)]
struct ResolvedTarget {
    target: BlockTarget,
    label: String,
    v4: Option<String>,
    v6: Option<String>,
}

impl ResolvedTarget {
    fn set_for(&self, ip: IpAddr) -> Option<&str> {
        match ip {
            IpAddr::V4(_) => self.v4.as_deref(),
            IpAddr::V6(_) => self.v6.as_deref(),
        }
    }
}

/// Bound on the per-run memory of added addresses and recorded refusals.
const MEMORY_CAP: usize = 200_000;

/// The bouncer.
#[derive(Debug)]
pub struct Bouncer {
    cfg: BouncerConfig,
    targets: Vec<ResolvedTarget>,
    /// (target index, address) → until.
    added: HashMap<(usize, IpAddr), Timestamp>,
    /// (target index, address, finding id) already recorded as refused.
    refused: HashSet<(usize, IpAddr, String)>,
}

/// How a set looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetFamily {
    V4,
    V6,
}

impl Bouncer {
    /// Check every target (the set exists, holds addresses, has the
    /// `timeout` flag). In `--dry-run` a failed check is only a warning, so
    /// that a dry run can come before the set is created.
    pub fn new(mut cfg: BouncerConfig) -> Result<Bouncer, AlertError> {
        if let Some(path) = &cfg.resolv_conf {
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    let label = path.display().to_string();
                    let n = add_system_resolvers(&mut cfg.guard, &text, &label);
                    tracing::debug!(resolvers = n, file = %label, "resolvers added to the guard");
                }
                Err(e) => {
                    tracing::debug!(file = %path.display(), error = %e, "no resolv.conf read")
                }
            }
        }
        // Whatever was added, the guard is finished once, here.
        cfg.guard.finish();
        let mut targets = Vec::new();
        for t in &cfg.targets {
            match resolve_target(&cfg, t) {
                Ok(r) => targets.push(r),
                Err(e) if cfg.dry_run => {
                    tracing::warn!(target = %t.label(), error = %e, "dry run: the set is not usable yet");
                    let (v4, v6) = dry_guess(t);
                    targets.push(ResolvedTarget {
                        target: t.clone(),
                        label: t.label(),
                        v4,
                        v6,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        for t in &targets {
            if t.v6.is_none() {
                tracing::warn!(target = %t.label, "no IPv6 set: IPv6 sources will be refused (name a second set, SET4,SET6)");
            }
            if t.v4.is_none() {
                tracing::warn!(target = %t.label, "no IPv4 set: IPv4 sources will be refused");
            }
        }
        Ok(Bouncer {
            cfg,
            targets,
            added: HashMap::new(),
            refused: HashSet::new(),
        })
    }

    /// Does `f` qualify for blocking?
    pub fn qualifies(&self, f: &Finding) -> bool {
        f.severity.is_some_and(|s| s >= self.cfg.min_severity)
            && self
                .cfg
                .min_score
                .is_none_or(|m| f.score.is_some_and(|s| s >= m))
    }

    /// Consider findings just raised or updated: block their hostile
    /// addresses (one firewall batch per target), record every decision in
    /// `blocks` in the caller's transaction, and return the decisions.
    /// Findings below the threshold give no decision.
    pub fn consider(
        &mut self,
        tx: &Transaction<'_>,
        findings: &[Finding],
    ) -> Result<Vec<Decision>, AlertError> {
        self.consider_at(tx, findings, Timestamp::now())
    }

    /// [`Bouncer::consider`] at a given time.
    pub fn consider_at(
        &mut self,
        tx: &Transaction<'_>,
        findings: &[Finding],
        now: Timestamp,
    ) -> Result<Vec<Decision>, AlertError> {
        if self.added.len() > MEMORY_CAP {
            self.added.retain(|_, until| *until > now);
            if self.added.len() > MEMORY_CAP {
                self.added.clear();
            }
        }
        if self.refused.len() > MEMORY_CAP {
            self.refused.clear();
        }
        let until = now
            .checked_add(
                jiff::SignedDuration::try_from(self.cfg.timeout)
                    .unwrap_or(jiff::SignedDuration::MAX),
            )
            .unwrap_or(Timestamp::MAX);
        let mut decisions = Vec::new();
        // Per target: the addresses to add, with the finding behind each.
        let mut batches: Vec<Vec<(IpAddr, &Finding)>> = vec![Vec::new(); self.targets.len()];
        for f in findings {
            if !self.qualifies(f) {
                continue;
            }
            for ip in hostile_addresses(f) {
                for (ti, t) in self.targets.iter().enumerate() {
                    if let Some(reason) = self.refusal(t, ip) {
                        // Logged (warn) and recorded the first time for
                        // this finding; its later updates only at debug.
                        if self.refused.insert((ti, ip, f.id.clone())) {
                            tracing::warn!(address = %ip, target = %t.label, finding = %f.id, kind = %f.kind, %reason, "block refused");
                            record_block(
                                tx,
                                &record(
                                    ip,
                                    &t.label,
                                    f,
                                    BlockAction::Refused,
                                    reason.clone(),
                                    now,
                                    None,
                                ),
                            )?;
                        } else {
                            tracing::debug!(address = %ip, target = %t.label, finding = %f.id, %reason, "block refused again");
                        }
                        decisions.push(Decision::Refused {
                            address: ip,
                            target: t.label.clone(),
                            reason,
                        });
                        continue;
                    }
                    if self.added.get(&(ti, ip)).is_some_and(|u| *u > now)
                        || batches[ti].iter().any(|(a, _)| *a == ip)
                    {
                        decisions.push(Decision::AlreadyBlocked {
                            address: ip,
                            target: t.label.clone(),
                        });
                        continue;
                    }
                    batches[ti].push((ip, f));
                }
            }
        }
        for (ti, batch) in batches.into_iter().enumerate() {
            if batch.is_empty() {
                continue;
            }
            let t = &self.targets[ti];
            let result = if self.cfg.dry_run {
                Ok(())
            } else {
                apply(&self.cfg, t, &batch)
            };
            match result {
                Ok(()) => {
                    for (ip, f) in batch {
                        let action = if self.cfg.dry_run {
                            BlockAction::DryRun
                        } else {
                            BlockAction::Blocked
                        };
                        tracing::info!(address = %ip, target = %t.label, finding = %f.id, kind = %f.kind, %until, dry_run = self.cfg.dry_run, "source blocked");
                        record_block(
                            tx,
                            &record(
                                ip,
                                &t.label,
                                f,
                                action,
                                crate::document::summary(f),
                                now,
                                Some(until),
                            ),
                        )?;
                        self.added.insert((ti, ip), until);
                        decisions.push(if self.cfg.dry_run {
                            Decision::DryRun {
                                address: ip,
                                target: t.label.clone(),
                                until,
                            }
                        } else {
                            Decision::Blocked {
                                address: ip,
                                target: t.label.clone(),
                                until,
                            }
                        });
                    }
                }
                Err(error) => {
                    tracing::error!(target = %t.label, addresses = batch.len(), %error, "blocking failed");
                    for (ip, f) in batch {
                        record_block(
                            tx,
                            &record(
                                ip,
                                &t.label,
                                f,
                                BlockAction::Failed,
                                error.clone(),
                                now,
                                None,
                            ),
                        )?;
                        decisions.push(Decision::Failed {
                            address: ip,
                            target: t.label.clone(),
                            error: error.clone(),
                        });
                    }
                }
            }
        }
        Ok(decisions)
    }

    /// Why `ip` must not go into `t`, if it must not.
    fn refusal(&self, t: &ResolvedTarget, ip: IpAddr) -> Option<String> {
        let fam = Family::of(ip);
        let v = ip_to_u128(ip);
        if let Some(r) = self.cfg.guard.overlapping(fam, v, v).first() {
            return Some(r.reason.to_string());
        }
        if self.cfg.guard.overlaps(fam, v, v) {
            return Some("guarded range".into());
        }
        if t.set_for(ip).is_none() {
            return Some(match ip {
                IpAddr::V4(_) => "no IPv4 set for this target".into(),
                IpAddr::V6(_) => "no IPv6 set for this target".into(),
            });
        }
        None
    }
}

fn record(
    ip: IpAddr,
    target: &str,
    f: &Finding,
    action: BlockAction,
    reason: String,
    at: Timestamp,
    until: Option<Timestamp>,
) -> BlockRecord {
    BlockRecord {
        seq: 0,
        address: ip.to_string(),
        target: target.to_string(),
        finding_id: f.id.clone(),
        action,
        reason,
        at,
        until,
    }
}

/// The addresses a finding accuses (see the module documentation).
pub fn hostile_addresses(f: &Finding) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    let mut push = |ip: IpAddr| {
        let ip = ip.to_canonical();
        if !out.contains(&ip) {
            out.push(ip);
        }
    };
    if f.kind.is_about_own_device() {
        // Its address is the organisation's own router, the one audited.
        return out;
    }
    if f.kind == FindingKind::IocMatch {
        if let Some(i) = &f.ioc
            && matches!(i.matched_field.as_str(), "src_ip" | "dst_ip" | "ip")
            && let Ok(ip) = i.matched_value.parse::<IpAddr>()
        {
            push(ip);
        }
        return out;
    }
    if let Some(ip) = f.src_ip {
        push(ip);
    }
    for ip in &f.sources {
        push(*ip);
    }
    out
}

fn command(cfg: &BouncerConfig, program: &str) -> Command {
    match cfg.wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// Run `program args` (through the wrapper), feeding `stdin`; the error
/// holds its stderr.
fn run(
    cfg: &BouncerConfig,
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String, String> {
    let mut c = command(cfg, program);
    c.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("`{program}` is not installed (or not in PATH)")
        } else {
            format!("cannot run `{program}`: {e}")
        }
    })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| format!("writing to `{program}`: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for `{program}`: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// What the set names mean when nothing can be checked (dry run).
fn dry_guess(t: &BlockTarget) -> (Option<String>, Option<String>) {
    let sets = match t {
        BlockTarget::Nftables { sets, .. } => sets,
        BlockTarget::Ipset { names } => names,
    };
    match sets.as_slice() {
        [a, b] => (Some(a.clone()), Some(b.clone())),
        [a] => (Some(a.clone()), Some(format!("{a}6"))),
        _ => (None, None),
    }
}

fn resolve_target(cfg: &BouncerConfig, t: &BlockTarget) -> Result<ResolvedTarget, AlertError> {
    let sets = match t {
        BlockTarget::Nftables { sets, .. } => sets,
        BlockTarget::Ipset { names } => names,
    };
    let probe = |set: &str| match t {
        BlockTarget::Nftables { family, table, .. } => nft_set_family(cfg, family, table, set),
        BlockTarget::Ipset { .. } => ipset_family(cfg, set),
    };
    let missing = |set: &str| match t {
        BlockTarget::Nftables { family, table, .. } => AlertError::Firewall(format!(
            "nft set {family} {table} {set} not found: create it with: nft add set {family} {table} {set} '{{ type {}; flags timeout; }}'",
            if set.ends_with('6') {
                "ipv6_addr"
            } else {
                "ipv4_addr"
            }
        )),
        BlockTarget::Ipset { .. } => AlertError::Firewall(format!(
            "ipset {set} not found: create it with: ipset create {set} hash:ip family {} timeout 3600",
            if set.ends_with('6') { "inet6" } else { "inet" }
        )),
    };
    let mut v4 = None;
    let mut v6 = None;
    for (i, set) in sets.iter().enumerate() {
        let fam = probe(set)?.ok_or_else(|| missing(set))?;
        let slot = match fam {
            SetFamily::V4 => &mut v4,
            SetFamily::V6 => &mut v6,
        };
        if slot.is_some() {
            return Err(AlertError::Firewall(format!(
                "{}: both sets hold the same address family; name an IPv4 set and an IPv6 set",
                t.label()
            )));
        }
        *slot = Some(set.clone());
        // A lone IPv4 set: use its `6` sibling when it exists.
        if i == 0 && sets.len() == 1 && fam == SetFamily::V4 {
            let sibling = format!("{set}6");
            if let Ok(Some(SetFamily::V6)) = probe(&sibling) {
                v6 = Some(sibling);
            }
        }
    }
    Ok(ResolvedTarget {
        target: t.clone(),
        label: t.label(),
        v4,
        v6,
    })
}

/// The family of nft set `set`: `None` when it does not exist.
fn nft_set_family(
    cfg: &BouncerConfig,
    family: &str,
    table: &str,
    set: &str,
) -> Result<Option<SetFamily>, AlertError> {
    let out = match run(cfg, "nft", &["-j", "list", "set", family, table, set], None) {
        Ok(o) => o,
        Err(e) if e.contains("not installed") => return Err(AlertError::Firewall(e)),
        Err(e) if e.contains("No such file") || e.contains("does not exist") => return Ok(None),
        // nft has no quoting for names: a table or set named like a
        // keyword (`missing`, `timeout`…) cannot be used at all.
        Err(e) if e.contains("syntax error") => {
            return Err(AlertError::Firewall(format!(
                "nft cannot parse `{family} {table} {set}` (a name that is an nft keyword cannot be used): choose other table and set names ({e})"
            )));
        }
        Err(e) => return Err(AlertError::Firewall(e)),
    };
    let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| {
        AlertError::Firewall(format!(
            "`nft -j list set {family} {table} {set}` gave unreadable JSON ({e})"
        ))
    })?;
    let Some(s) = v
        .get("nftables")
        .and_then(|n| n.as_array())
        .and_then(|a| a.iter().find_map(|o| o.get("set")))
    else {
        return Ok(None);
    };
    let ty = s.get("type").and_then(|t| t.as_str()).unwrap_or("");
    let fam = match ty {
        "ipv4_addr" => SetFamily::V4,
        "ipv6_addr" => SetFamily::V6,
        other => {
            return Err(AlertError::Firewall(format!(
                "nft set {family} {table} {set} has type `{other}`; orbwatch adds addresses: use type ipv4_addr or ipv6_addr"
            )));
        }
    };
    let has_timeout = s
        .get("flags")
        .and_then(|f| f.as_array())
        .is_some_and(|f| f.iter().any(|x| x.as_str() == Some("timeout")));
    if !has_timeout {
        return Err(AlertError::Firewall(format!(
            "nft set {family} {table} {set} has no `timeout` flag, so blocks would never expire; recreate it with: nft add set {family} {table} {set} '{{ type {ty}; flags timeout; }}'"
        )));
    }
    Ok(Some(fam))
}

/// The family of ipset `name`: `None` when it does not exist.
fn ipset_family(cfg: &BouncerConfig, name: &str) -> Result<Option<SetFamily>, AlertError> {
    let out = match run(cfg, "ipset", &["list", "-t", name], None) {
        Ok(o) => o,
        Err(e) if e.contains("not installed") => return Err(AlertError::Firewall(e)),
        Err(e) if e.contains("does not exist") => return Ok(None),
        Err(e) => return Err(AlertError::Firewall(e)),
    };
    let field = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(str::trim)
            .unwrap_or("")
            .to_string()
    };
    let ty = field("Type:");
    if !matches!(ty.as_str(), "hash:ip" | "hash:net") {
        return Err(AlertError::Firewall(format!(
            "ipset {name} has type `{ty}`; orbwatch adds addresses: use hash:ip (ipset create {name} hash:ip timeout 3600)"
        )));
    }
    let header = field("Header:");
    let words: Vec<&str> = header.split_whitespace().collect();
    if !words.contains(&"timeout") {
        return Err(AlertError::Firewall(format!(
            "ipset {name} has no timeout, so blocks would never expire; recreate it with: ipset create {name} {ty} timeout 3600"
        )));
    }
    let fam = words
        .windows(2)
        .find(|w| w[0] == "family")
        .map(|w| w[1])
        .unwrap_or("inet");
    Ok(Some(if fam == "inet6" {
        SetFamily::V6
    } else {
        SetFamily::V4
    }))
}

/// Add a batch of addresses to a target in one command.
fn apply(
    cfg: &BouncerConfig,
    t: &ResolvedTarget,
    batch: &[(IpAddr, &Finding)],
) -> Result<(), String> {
    let secs = cfg.timeout.as_secs().max(1);
    let mut script = String::new();
    match &t.target {
        BlockTarget::Nftables { family, table, .. } => {
            for (ip, _) in batch {
                if let Some(set) = t.set_for(*ip) {
                    script.push_str(&format!(
                        "add element {family} {table} {set} {{ {ip} timeout {secs}s }}\n"
                    ));
                }
            }
            run(cfg, "nft", &["-f", "-"], Some(&script)).map(|_| ())
        }
        BlockTarget::Ipset { .. } => {
            for (ip, _) in batch {
                if let Some(set) = t.set_for(*ip) {
                    script.push_str(&format!("add {set} {ip} timeout {secs}\n"));
                }
            }
            run(cfg, "ipset", &["-exist", "restore"], Some(&script)).map(|_| ())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        let t: BlockTarget = "nftables:inet:filter:orbwatch".parse().unwrap();
        assert_eq!(t.label(), "nftables inet filter orbwatch");
        let t: BlockTarget = "nftables:inet:filter:ow4,ow6".parse().unwrap();
        assert!(matches!(t, BlockTarget::Nftables { ref sets, .. } if sets.len() == 2));
        let t: BlockTarget = "ipset:orbwatch".parse().unwrap();
        assert_eq!(t.label(), "ipset orbwatch");
        for bad in [
            "nftables:inet:filter",
            "nftables:foo:filter:s",
            "nftables:inet:fil ter:s",
            "nftables:inet:filter:a;b",
            "ipset:",
            "ipset:a,b,c",
            "iptables:x",
            "",
        ] {
            assert!(bad.parse::<BlockTarget>().is_err(), "{bad}");
        }
    }

    #[test]
    fn an_ioc_match_accuses_the_indicator_not_the_internal_host() {
        let f: Finding = serde_json::from_str(
            r#"{"id":"i","kind":"ioc_match","first_seen":null,"last_seen":null,"count":3,
                "src_ip":"10.1.2.3","dst_ip":"45.155.205.233",
                "indicator":"45.155.205.0/24","indicator_type":"cidr","feed":"relays",
                "direction":"outbound","in_validity_window":true,"confidence":null,
                "valid_from":null,"valid_until":null,
                "matched_value":"45.155.205.233","matched_field":"dst_ip",
                "evidence":[],"evidence_total":0}"#,
        )
        .unwrap();
        assert_eq!(
            hostile_addresses(&f),
            ["45.155.205.233".parse::<IpAddr>().unwrap()]
        );
        // A domain indicator names no address to block.
        let mut d = f.clone();
        if let Some(i) = d.ioc.as_mut() {
            i.matched_value = "evil.example".into();
            i.matched_field = "domain".into();
        }
        assert!(hostile_addresses(&d).is_empty());
        // A behaviour: its source and every grouped source, once each,
        // IPv4-mapped addresses as IPv4.
        let mut b = f.clone();
        b.kind = FindingKind::DistributedBruteforce;
        b.ioc = None;
        b.src_ip = Some("::ffff:45.155.205.1".parse().unwrap());
        b.sources = vec![
            "45.155.205.1".parse().unwrap(),
            "45.155.205.2".parse().unwrap(),
        ];
        assert_eq!(
            hostile_addresses(&b),
            [
                "45.155.205.1".parse::<IpAddr>().unwrap(),
                "45.155.205.2".parse().unwrap()
            ]
        );
        // A router audit: its address is the organisation's own router
        // (a public branch-office address, score 90): never accused.
        let mut r = b.clone();
        r.kind = FindingKind::RouterAudit;
        r.src_ip = Some("198.51.100.10".parse().unwrap());
        r.sources.clear();
        r.score = Some(90);
        assert!(hostile_addresses(&r).is_empty());
    }

    #[test]
    fn resolv_conf_nameservers_join_the_guard() {
        let mut g = Guard::with_special_ranges();
        let n = add_system_resolvers(
            &mut g,
            "# comment\nnameserver 9.9.9.10\nnameserver fe80::1%eth0\nsearch x\nnameserver bogus\n",
            "/etc/resolv.conf",
        );
        g.finish();
        assert_eq!(n, 2);
        let ip: IpAddr = "9.9.9.10".parse().unwrap();
        let r = g.overlapping(Family::of(ip), ip_to_u128(ip), ip_to_u128(ip));
        assert!(
            r.iter().any(|r| r.reason.contains("resolv.conf:2")),
            "{r:?}"
        );
    }
}
