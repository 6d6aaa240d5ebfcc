//! One audit of one router: run the profile's read-only commands, read
//! the banners of implant ports, and turn it all into findings.
//!
//! Why a changed host key ends the audit: the key proves which device
//! answers. On a router audited for compromise, a different key means the
//! device was replaced, re-flashed, or someone sits in between; anything it
//! says after that cannot be trusted, so orbwatch says so loudly and stops.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::ops::ControlFlow;
use std::time::Duration;

use jiff::Timestamp;
use orbwatch_detect::{Evidence, Finding, FindingKind, Severity};
use orbwatch_intel::{HashAlgo, IndicatorValue};
use orbwatch_store::{Store, StoreError};
use serde::Serialize;

use crate::checks::{self, CheckContext, IMPLANT_PORTS, Outputs};
use crate::inventory::Router;
use crate::profiles;
use crate::ssh::{Ssh, SshError};
use crate::vulnerable::Entry;

/// What every audit of a run shares.
#[derive(Debug, Default)]
pub struct AuditOptions {
    /// SHA-256 → feed, from the store ([`hash_indicators`]).
    pub hash_indicators: HashMap<String, String>,
    /// Address indicators with their feed ([`ip_indicators`]).
    pub ip_indicators: Vec<(IndicatorValue, String)>,
    pub vulnerable: Vec<Entry>,
    /// How long to wait for an implant port's banner.
    pub banner_timeout: Duration,
}

/// The outcome of auditing one router.
#[derive(Debug, Clone, Serialize)]
pub struct RouterAudit {
    pub router: String,
    pub at: Timestamp,
    pub findings: Vec<Finding>,
    pub uptime_secs: Option<f64>,
    pub boot_id: Option<String>,
    /// TCP ports listening (any address).
    pub listening: Vec<u16>,
    /// Why the audit could not finish (unreachable, changed host key…).
    pub error: Option<String>,
    pub host_key_changed: bool,
}

/// SHA-256 hash indicators of every feed in the store, lower-case hex →
/// feed name.
pub fn hash_indicators(store: &Store) -> Result<HashMap<String, String>, StoreError> {
    let mut out = HashMap::new();
    store.indicators_stream(None, |i| {
        if let IndicatorValue::Hash {
            algo: HashAlgo::Sha256,
            hex,
        } = &i.indicator.value
        {
            out.entry(hex.to_ascii_lowercase()).or_insert(i.feed);
        }
        ControlFlow::Continue(())
    })?;
    Ok(out)
}

/// Address indicators (single, CIDR, range) of every feed in the store,
/// with their feed, for the connection check.
pub fn ip_indicators(store: &Store) -> Result<Vec<(IndicatorValue, String)>, StoreError> {
    let mut out = Vec::new();
    store.indicators_stream(None, |i| {
        if matches!(
            i.indicator.value,
            IndicatorValue::Ip(_) | IndicatorValue::Cidr(_) | IndicatorValue::Range { .. }
        ) {
            out.push((i.indicator.value, i.feed));
        }
        ControlFlow::Continue(())
    })?;
    Ok(out)
}

/// The public halves of the router's identity (`<identity>.pub`), which
/// are expected in its `authorized_keys`.
fn own_keys(r: &Router) -> Vec<String> {
    let Some(id) = &r.identity else {
        return Vec::new();
    };
    let mut p = id.clone().into_os_string();
    p.push(".pub");
    std::fs::read_to_string(p)
        .map(|t| t.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The finding raised when a router's host key is not the pinned one.
pub fn host_key_finding(r: &Router, err: &SshError, now: Timestamp) -> Finding {
    Finding {
        id: checks::finding_id(&r.name, "host_key_changed", ""),
        kind: FindingKind::RouterAudit,
        first_seen: Some(now),
        last_seen: Some(now),
        count: 1,
        src_ip: r.host.parse().ok(),
        dst_ip: None,
        ioc: None,
        targets: vec![r.name.clone()],
        accounts: Vec::new(),
        severity: Some(Severity::Critical),
        score: Some(90),
        reasons: vec![format!(
            "the router's SSH host key changed since it was pinned: the device was replaced or re-flashed, or someone is in the middle; work on it stopped"
        )],
        sources: Vec::new(),
        details: Some(serde_json::json!({
            "router": r.name, "host": r.host, "profile": r.profile.as_str(),
            "check": "host_key_changed", "key": "",
        })),
        evidence: vec![Evidence {
            file: format!("{}:host_key", r.name),
            line: None,
            offset: None,
            format: "router_audit".into(),
            raw: err.to_string(),
            time: Some(now),
            context: false,
        }],
        evidence_total: 1,
    }
}

/// Read what a TCP port says first (an implant's login banner).
fn banner(host: &str, port: u16, timeout: Duration) -> Option<String> {
    let addr = (host, port).to_socket_addrs().ok()?.next()?;
    let mut s = TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Audit one router. Never panics on what the router says; a transport
/// failure ends the audit with `error` set.
pub fn audit_router(ssh: &Ssh, r: &Router, opts: &AuditOptions) -> RouterAudit {
    let now = Timestamp::now();
    let mut a = RouterAudit {
        router: r.name.clone(),
        at: now,
        findings: Vec::new(),
        uptime_secs: None,
        boot_id: None,
        listening: Vec::new(),
        error: None,
        host_key_changed: false,
    };
    let mut outputs = Outputs::new();
    for probe in r.profile.probes() {
        match ssh.run_probe(r, probe.command) {
            Ok(o) => {
                outputs.insert(probe.id, o);
            }
            Err(e @ SshError::HostKeyChanged { .. }) => {
                tracing::error!("{e}");
                a.findings.push(host_key_finding(r, &e, now));
                a.error = Some(e.to_string());
                a.host_key_changed = true;
                return a;
            }
            Err(e) => {
                a.error = Some(e.to_string());
                return a;
            }
        }
    }
    let up = r.profile.uptime_probe();
    a.uptime_secs = outputs
        .get(up.id)
        .and_then(|o| checks::uptime_from(up, &o.stdout));
    a.boot_id = outputs
        .get(profiles::BOOT_ID.id)
        .map(|o| o.stdout.trim().to_string())
        .filter(|s| !s.is_empty());
    let listeners = outputs
        .get(profiles::LISTENING.id)
        .map(|o| checks::listeners(&o.stdout))
        .unwrap_or_default();
    let mut ports: Vec<u16> = listeners.iter().map(|l| l.port).collect();
    ports.sort_unstable();
    ports.dedup();
    a.listening = ports;
    let mut banners = BTreeMap::new();
    for l in &listeners {
        if IMPLANT_PORTS.iter().any(|(p, _)| *p == l.port) && !banners.contains_key(&l.port) {
            let t = if opts.banner_timeout.is_zero() {
                Duration::from_secs(2)
            } else {
                opts.banner_timeout
            };
            if let Some(b) = banner(&r.host, l.port, t) {
                banners.insert(l.port, b);
            }
        }
    }
    let own = own_keys(r);
    let ctx = CheckContext {
        router: r,
        hash_indicators: &opts.hash_indicators,
        ip_indicators: &opts.ip_indicators,
        vulnerable: &opts.vulnerable,
        own_keys: &own,
        now,
    };
    a.findings = checks::run_all(&ctx, &outputs, &banners);
    a
}
