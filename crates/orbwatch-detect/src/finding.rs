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
}

impl FindingKind {
    pub const ALL: [FindingKind; 7] = [
        Self::IocMatch,
        Self::PortScan,
        Self::BruteForce,
        Self::PasswordSpray,
        Self::DistributedBruteforce,
        Self::SuccessAfterFailures,
        Self::Exfiltration,
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
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// validity window? Sightings inside and outside are never mixed in one
    /// finding.
    pub in_validity_window: bool,
    pub confidence: Option<u8>,
    pub valid_from: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
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
    /// How urgent the finding is. Behaviour findings always set it; an
    /// `ioc_match` leaves it to the reader (its confidence and window say
    /// more).
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
