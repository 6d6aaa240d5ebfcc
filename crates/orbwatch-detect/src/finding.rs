//! The Finding: the contract between the engine and every sink.
//!
//! DESIGN.md fixes its JSON shape: `kind`, `first_seen`, `last_seen`,
//! `count`, `src_ip`, `dst_ip`, `evidence` (capped, with a total), and for
//! `ioc_match` the indicator, its type, feed, direction, whether the event
//! fell inside the validity window, and the confidence. Scripts depend on
//! these names; add fields, never rename them.

use std::fmt;
use std::net::IpAddr;

use jiff::Timestamp;
use orbwatch_intel::Tags;
use serde::{Deserialize, Serialize};

/// What kind of finding this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    IocMatch,
    PortScan,
    BruteForce,
    PasswordSpray,
    DistributedBruteforce,
    SuccessAfterFailures,
    Exfiltration,
    /// A check of `orbwatch routers audit` on one of the organisation's
    /// own edge devices (an implant's port, a process from `/tmp`, a
    /// changed host key…).
    RouterAudit,
}

impl FindingKind {
    pub const ALL: [FindingKind; 8] = [
        Self::IocMatch,
        Self::PortScan,
        Self::BruteForce,
        Self::PasswordSpray,
        Self::DistributedBruteforce,
        Self::SuccessAfterFailures,
        Self::Exfiltration,
        Self::RouterAudit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::IocMatch => "ioc_match",
            Self::PortScan => "port_scan",
            Self::BruteForce => "brute_force",
            Self::PasswordSpray => "password_spray",
            Self::DistributedBruteforce => "distributed_bruteforce",
            Self::SuccessAfterFailures => "success_after_failures",
            Self::Exfiltration => "exfiltration",
            Self::RouterAudit => "router_audit",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Is a finding of this kind about one of the organisation's own
    /// devices, its `src_ip` the device audited rather than an attacker?
    /// Such a finding accuses no address: blocklists, the bouncer and
    /// shared sightings (STIX, MISP) leave it out, or they would cut off
    /// a branch office and report it to a CERT as a relay.
    pub fn is_about_own_device(self) -> bool {
        matches!(self, Self::RouterAudit)
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent a finding is, in the words analysts use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Every severity, least serious first.
    pub const ALL: [Severity; 5] = [
        Self::Info,
        Self::Low,
        Self::Medium,
        Self::High,
        Self::Critical,
    ];

    /// Parse a severity name (`info`, `low`, `medium`, `high`, `critical`).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
    }

    /// One step less serious (`info` stays `info`): how a sighting outside
    /// the indicator's validity window, or without a time to check it
    /// against, is marked down.
    pub fn lower(self) -> Self {
        match self {
            Self::Info | Self::Low => Self::Info,
            Self::Medium => Self::Low,
            Self::High => Self::Medium,
            Self::Critical => Self::High,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a record says happened between the indicator and the organisation.
///
/// An analyst's first question about a sighting is whether the listed
/// address got in, or whether an internal host talked to it; a blocked SYN
/// and an accepted login must not read alike. Each counted record of an
/// `ioc_match` gets exactly one outcome, the first of this list that
/// applies (so `outcomes` adds up to `count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A login that succeeded (sshd `Accepted`, 4624, …).
    AuthSuccess,
    /// A login that failed, also for an unknown account.
    AuthFailure,
    /// Traffic a firewall dropped or rejected, or a connection never
    /// answered (Zeek `S0`/`REJ`/…, an EVE TCP flow still `new`, a logged
    /// bare SYN): `behaviour::observe::is_probe`.
    Blocked,
    /// A DNS query or answer naming the indicator.
    Dns,
    /// An HTTP request to or from it.
    Http,
    /// An internal host opened the connection to the indicator (and
    /// nothing says it was blocked).
    Outbound,
    /// A connection that was answered: allowed by a firewall, a Zeek state
    /// with a reply, or bytes back.
    Allowed,
    /// The record does not say (free text, a connection of unknown fate).
    Unknown,
}

impl Outcome {
    /// Every outcome, in the order they are tried.
    pub const ALL: [Outcome; 8] = [
        Self::AuthSuccess,
        Self::AuthFailure,
        Self::Blocked,
        Self::Dns,
        Self::Http,
        Self::Outbound,
        Self::Allowed,
        Self::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthSuccess => "auth_success",
            Self::AuthFailure => "auth_failure",
            Self::Blocked => "blocked",
            Self::Dns => "dns",
            Self::Http => "http",
            Self::Outbound => "outbound",
            Self::Allowed => "allowed",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Records per [`Outcome`] behind one `ioc_match` (every key is written,
/// zeros included, so scripts can read `outcomes.auth_success` directly).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcomes {
    #[serde(default)]
    pub auth_success: u64,
    #[serde(default)]
    pub auth_failure: u64,
    #[serde(default)]
    pub blocked: u64,
    #[serde(default)]
    pub allowed: u64,
    #[serde(default)]
    pub dns: u64,
    #[serde(default)]
    pub http: u64,
    #[serde(default)]
    pub outbound: u64,
    #[serde(default)]
    pub unknown: u64,
}

impl Outcomes {
    /// The counter of `o`.
    pub fn get(&self, o: Outcome) -> u64 {
        match o {
            Outcome::AuthSuccess => self.auth_success,
            Outcome::AuthFailure => self.auth_failure,
            Outcome::Blocked => self.blocked,
            Outcome::Allowed => self.allowed,
            Outcome::Dns => self.dns,
            Outcome::Http => self.http,
            Outcome::Outbound => self.outbound,
            Outcome::Unknown => self.unknown,
        }
    }

    fn slot(&mut self, o: Outcome) -> &mut u64 {
        match o {
            Outcome::AuthSuccess => &mut self.auth_success,
            Outcome::AuthFailure => &mut self.auth_failure,
            Outcome::Blocked => &mut self.blocked,
            Outcome::Allowed => &mut self.allowed,
            Outcome::Dns => &mut self.dns,
            Outcome::Http => &mut self.http,
            Outcome::Outbound => &mut self.outbound,
            Outcome::Unknown => &mut self.unknown,
        }
    }

    /// Count `n` more records of outcome `o`.
    pub fn add(&mut self, o: Outcome, n: u64) {
        let s = self.slot(o);
        *s = s.saturating_add(n);
    }

    /// Add another finding's counts (sessions merged across chunks).
    pub fn merge(&mut self, other: &Outcomes) {
        for o in Outcome::ALL {
            self.add(o, other.get(o));
        }
    }

    /// Records counted, all outcomes together.
    pub fn total(&self) -> u64 {
        Outcome::ALL
            .iter()
            .fold(0u64, |n, o| n.saturating_add(self.get(*o)))
    }

    /// The outcomes present, in [`Outcome::ALL`] order, with their counts.
    pub fn present(&self) -> impl Iterator<Item = (Outcome, u64)> + '_ {
        Outcome::ALL
            .into_iter()
            .map(|o| (o, self.get(o)))
            .filter(|(_, n)| *n > 0)
    }
}

/// One validity window of a feed row (a value listed several times has
/// several).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ValidityWindow {
    #[serde(default)]
    pub from: Option<Timestamp>,
    #[serde(default)]
    pub until: Option<Timestamp>,
}

/// Which way the traffic crossed the boundary set by `--internal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From an external source to an internal destination.
    Inbound,
    /// From an internal source to an external destination.
    Outbound,
    /// Both ends internal.
    Internal,
    /// Not known: one end is missing, both are external, or the format
    /// gives no roles (the text decoder).
    Unknown,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
            Self::Internal => "internal",
            Self::Unknown => "unknown",
        }
    }
}

/// One piece of evidence: where the record is and what it said.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Evidence {
    pub file: String,
    /// 1-based line for line-oriented inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// Byte offset in the decompressed stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    pub format: String,
    /// The raw record (truncated to a readable length).
    pub raw: String,
    /// The record's time, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Timestamp>,
    /// The record does not name the indicator: the decoder tied it to the
    /// address from context (an sshd line of the same session). Such
    /// records are evidence but are not counted in `count`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub context: bool,
}

impl Evidence {
    /// The order a finding lists its evidence in: by time, then where the
    /// record is. Its first few in this order are the ones kept.
    pub fn in_order(a: &Evidence, b: &Evidence) -> std::cmp::Ordering {
        (a.time, &a.file, a.line, a.offset).cmp(&(b.time, &b.file, b.line, b.offset))
    }
}

/// The indicator side of an `ioc_match`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IocDetails {
    /// The indicator as the feed gave it (normalised).
    pub indicator: String,
    /// `ipv4`, `ipv6`, `cidr`, `range`, `domain`, `url`, `sha256`, `cert-sha1`…
    pub indicator_type: String,
    pub feed: String,
    pub direction: Direction,
    /// Did every sighting in this finding fall inside the indicator's
    /// validity window (for a value the feed lists several times: inside
    /// any of its rows' windows)? Sightings inside and outside are never
    /// mixed in one finding.
    pub in_validity_window: bool,
    /// The highest confidence of the feed's rows for this value.
    pub confidence: Option<u8>,
    /// Earliest start of the value's windows (`None`: open).
    pub valid_from: Option<Timestamp>,
    /// Latest end of the value's windows (`None`: open).
    pub valid_until: Option<Timestamp>,
    /// Every row's window when the feed lists the value more than once
    /// (their span, `valid_from`..`valid_until`, may hold gaps).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validity_windows: Vec<ValidityWindow>,
    /// What the records say happened, counted per outcome; the counts add
    /// up to `count`. Absent in findings written before outcomes existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcomes: Option<Outcomes>,
    /// Bytes internal hosts sent to the indicator, where the records count
    /// bytes (Zeek `orig_bytes`/`resp_bytes`, EVE, NetFlow, firewalls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_to_indicator: Option<u64>,
    /// The value seen in the record (an address inside a CIDR, a subdomain).
    pub matched_value: String,
    /// Where in the event it was seen: `src_ip`, `dst_ip`, `ip` (role
    /// unknown), `domain`, `url`, `hash`.
    pub matched_field: String,
    /// The other end of the traffic, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<IpAddr>,
    #[serde(default)]
    pub tags: Tags,
    /// The source's identifier for the indicator (STIX id, MISP uuid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indicator_ref: Option<String>,
    /// The version of the feed whose indicator matched (the store's
    /// version number, as `feed publish` wrote it to the feeds topic),
    /// where the matcher knew it: a worker records it so that a finding
    /// says which published feed named it. Absent in older findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed_version: Option<i64>,
}

/// One finding: a sighting of an indicator (aggregated), or a behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable identifier: the same sighting gives the same id on a re-run.
    pub id: String,
    pub kind: FindingKind,
    pub first_seen: Option<Timestamp>,
    pub last_seen: Option<Timestamp>,
    /// Number of log records behind this finding.
    pub count: u64,
    pub src_ip: Option<IpAddr>,
    pub dst_ip: Option<IpAddr>,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub ioc: Option<IocDetails>,
    /// Targets of a behaviour (hosts, ports, services).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// Accounts involved in a behaviour.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
    /// How urgent the finding is. Every detector sets it (an `ioc_match`
    /// from its outcomes, window and bytes; see `crate::severity`); only
    /// findings written by older versions lack it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// 0–100: how sure the detector is that this is hostile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<u8>,
    /// Plain sentences an analyst can act on ("37 failed logins for 12
    /// accounts in 4 minutes").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// Every source behind a finding that groups many (a distributed
    /// brute force); `src_ip` is then unset or the most active one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<IpAddr>,
    /// Detector-specific figures (cluster summaries by /24, /16 and ASN,
    /// enrichment of the source), kept as JSON so sinks can show them
    /// without knowing every detector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    /// The first few records; `evidence_total` says how many there were.
    pub evidence: Vec<Evidence>,
    pub evidence_total: u64,
}

/// Most serious first: severity (absent last), then score, then the
/// earliest sighting, then id, so every sink lists findings in one order.
pub fn most_serious_first(a: &Finding, b: &Finding) -> std::cmp::Ordering {
    b.severity
        .cmp(&a.severity)
        .then(b.score.cmp(&a.score))
        .then_with(|| match (a.first_seen, b.first_seen) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        })
        .then_with(|| a.id.cmp(&b.id))
}

/// Two copies of one finding (the same id), each kept by a run that saw
/// part of its records: the view of both, so that what a store shows never
/// goes back.
///
/// Why this exists: a finding's id is fixed by its first record, so a
/// daemon restarted after `kill -9` (or a worker that takes over a Kafka
/// partition) raises the same finding again from fresh state when records
/// it had already kept arrive again (a syslog sender re-sends after a
/// reconnect, a consumer re-reads from its committed offset). That copy
/// has seen fewer records than the one kept. The union of the two is what
/// an analyst should see: the larger count (re-sent records are the same
/// records, so counts are not added), the earliest first and latest last
/// sighting, every distinct evidence record up to the larger of the two
/// evidence lists, every account, target and source of either, and the
/// higher severity and score. Sentences and detector figures are those of
/// the copy that saw more records (the newer on a tie).
///
/// One judgement goes down on purpose: a report made while an attack went
/// on, marked superseded when the attack ended as another finding
/// (severity info, score 0, `details.superseded_by`). That verdict stands
/// whichever copy carries it (the newer one's if both do), with its
/// sentences and figures, whatever the counts: records sent again after a
/// restart do not undo the judgement of how the attack ended.
pub fn merge_copies(newer: Finding, kept: Finding) -> Finding {
    let verdict = [&newer, &kept]
        .into_iter()
        .find(|f| is_superseded(f))
        .map(|f| (f.severity, f.score, f.reasons.clone(), f.details.clone()));
    let (mut base, other) = if kept.count > newer.count {
        (kept, newer)
    } else {
        (newer, kept)
    };
    base.count = base.count.max(other.count);
    base.evidence_total = base.evidence_total.max(other.evidence_total);
    base.first_seen = earliest(base.first_seen, other.first_seen);
    base.last_seen = base.last_seen.max(other.last_seen);
    base.severity = base.severity.max(other.severity);
    base.score = base.score.max(other.score);
    let cap = base.evidence.len().max(other.evidence.len());
    union_into(&mut base.evidence, other.evidence);
    base.evidence.sort_by(Evidence::in_order);
    base.evidence.truncate(cap);
    union_into(&mut base.accounts, other.accounts);
    union_into(&mut base.targets, other.targets);
    union_into(&mut base.sources, other.sources);
    if let Some((severity, score, reasons, details)) = verdict {
        base.severity = severity;
        base.score = score;
        base.reasons = reasons;
        base.details = details;
    }
    base
}

/// Is this a report marked superseded by the finding its attack ended as
/// (see `LiveDetectors::take_drafts`)?
fn is_superseded(f: &Finding) -> bool {
    f.details
        .as_ref()
        .and_then(|d| d.get("superseded_by"))
        .is_some_and(|v| !v.is_null())
}

/// Does a copy with these figures hold everything `kept` describes in the
/// figures a list shows (count, first and last sighting)? Then writing
/// it over `kept` loses nothing, and [`merge_copies`] is not needed: the
/// common case of a running daemon updating its own finding.
pub fn covers(
    newer: &Finding,
    kept_count: u64,
    kept_first: Option<Timestamp>,
    kept_last: Option<Timestamp>,
) -> bool {
    newer.count >= kept_count
        && earliest(newer.first_seen, kept_first) == newer.first_seen
        && newer.last_seen >= kept_last
}

/// The earlier of two optional instants; a known one before an unknown.
fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// Append the items of `more` not yet in `into`, keeping `into`'s order
/// (a behaviour lists its most active source or target first). Hashed:
/// a spray can name thousands of accounts.
fn union_into<T: Eq + std::hash::Hash + Clone>(into: &mut Vec<T>, more: Vec<T>) {
    let mut seen: std::collections::HashSet<T> = into.iter().cloned().collect();
    for item in more {
        if seen.insert(item.clone()) {
            into.push(item);
        }
    }
}

/// 64-bit FNV-1a, for stable finding ids without a crypto dependency.
pub fn fnv1a(parts: &[&str]) -> String {
    let h = fnv1a_64(
        parts
            .iter()
            .flat_map(|p| p.bytes().chain(std::iter::once(0u8))),
    );
    format!("{h:016x}")
}

/// 64-bit FNV-1a of a byte sequence: the same in every run and process.
pub fn fnv1a_64(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h: u64, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
