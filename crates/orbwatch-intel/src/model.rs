//! The indicator model shared by every reader, the store and the matcher.
//!
//! An indicator is only meaningful together with *when* it was valid, *how
//! sure* its source was and *where it came from*: relay routers change hands
//! within weeks, so a bare address list is a liability. Every [`Indicator`]
//! therefore carries a validity window, sighting dates, a confidence and its
//! provenance down to the line of the source file.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Hash algorithms recognised for file hashes and certificate fingerprints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlgo {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl HashAlgo {
    /// Guess the algorithm from the length of a hex digest.
    pub fn from_hex_len(len: usize) -> Option<Self> {
        match len {
            32 => Some(Self::Md5),
            40 => Some(Self::Sha1),
            64 => Some(Self::Sha256),
            128 => Some(Self::Sha512),
            _ => None,
        }
    }

    /// Parse names as feeds spell them: `MD5`, `SHA-1`, `sha256`, `'SHA-256'`.
    pub fn from_name(name: &str) -> Option<Self> {
        let n: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        match n.as_str() {
            "md5" => Some(Self::Md5),
            "sha1" => Some(Self::Sha1),
            "sha256" => Some(Self::Sha256),
            "sha512" => Some(Self::Sha512),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Md5 => "md5",
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }
}

/// What an indicator points at. Values are normalised on construction
/// (refanged, lower-cased where case carries no meaning).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum IndicatorValue {
    /// A single IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A network in CIDR notation. Host bits are cleared.
    Cidr(IpNet),
    /// An inclusive address range `first-last` of the same family.
    Range { first: IpAddr, last: IpAddr },
    /// A domain; it also matches all of its subdomains.
    Domain(String),
    /// A URL, scheme included.
    Url(String),
    /// A file hash, lower-case hex.
    Hash { algo: HashAlgo, hex: String },
    /// A TLS certificate fingerprint, lower-case hex without separators.
    CertFingerprint { algo: HashAlgo, hex: String },
}

/// The coarse type used for counts (`feed list --json`) and for output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndicatorKind {
    Ipv4,
    Ipv6,
    /// CIDRs and ranges.
    Cidr,
    Domain,
    Url,
    Hash,
    Cert,
}

impl IndicatorKind {
    pub const ALL: [IndicatorKind; 7] = [
        Self::Ipv4,
        Self::Ipv6,
        Self::Cidr,
        Self::Domain,
        Self::Url,
        Self::Hash,
        Self::Cert,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ipv4 => "ipv4",
            Self::Ipv6 => "ipv6",
            Self::Cidr => "cidr",
            Self::Domain => "domain",
            Self::Url => "url",
            Self::Hash => "hash",
            Self::Cert => "cert",
        }
    }
}

impl IndicatorValue {
    pub fn kind(&self) -> IndicatorKind {
        match self {
            Self::Ip(IpAddr::V4(_)) => IndicatorKind::Ipv4,
            Self::Ip(IpAddr::V6(_)) => IndicatorKind::Ipv6,
            Self::Cidr(_) | Self::Range { .. } => IndicatorKind::Cidr,
            Self::Domain(_) => IndicatorKind::Domain,
            Self::Url(_) => IndicatorKind::Url,
            Self::Hash { .. } => IndicatorKind::Hash,
            Self::CertFingerprint { .. } => IndicatorKind::Cert,
        }
    }

    /// A fine-grained type name for output (`ipv4`, `ipv6`, `cidr`, `range`,
    /// `domain`, `url`, `md5`…, `cert-sha1`…).
    pub fn type_name(&self) -> String {
        match self {
            Self::Range { .. } => "range".into(),
            Self::Hash { algo, .. } => algo.as_str().into(),
            Self::CertFingerprint { algo, .. } => format!("cert-{}", algo.as_str()),
            other => other.kind().as_str().into(),
        }
    }
}

impl fmt::Display for IndicatorValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Cidr(net) => write!(f, "{net}"),
            Self::Range { first, last } => write!(f, "{first}-{last}"),
            Self::Domain(d) => f.write_str(d),
            Self::Url(u) => f.write_str(u),
            Self::Hash { hex, .. } | Self::CertFingerprint { hex, .. } => f.write_str(hex),
        }
    }
}

/// Descriptive tags. Readers fill what their format gives; everything they
/// cannot classify goes to `other`, so nothing a feed says is lost.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tags {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actors: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub campaigns: Vec<String>,
    /// Traffic Light Protocol, lower case: `white`/`clear`, `green`, `amber`, `red`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tlp: Option<String>,
    /// Role of the indicator: `c2`, `relay`, `scanner`, `payload`…
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<String>,
}

impl Tags {
    /// Add to `list` unless already present (case-insensitive).
    pub fn push_unique(list: &mut Vec<String>, value: impl Into<String>) {
        let v = value.into();
        let v = v.trim();
        if v.is_empty() {
            return;
        }
        if !list.iter().any(|x| x.eq_ignore_ascii_case(v)) {
            list.push(v.to_string());
        }
    }
}

/// Where an indicator was read from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The feed's name in the store (or the file name for ad-hoc feeds).
    pub feed: String,
    /// The file the record came from (for MISP feed directories, the event file).
    pub file: String,
    /// 1-based line of the record, or 0 where the format has no lines.
    pub line: u64,
    /// The identifier the source gave the record (STIX id, MISP attribute uuid…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_id: Option<String>,
}

/// One indicator with its validity, confidence, tags and provenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Indicator {
    pub value: IndicatorValue,
    /// Start of validity; `None` means open (valid since forever).
    pub valid_from: Option<Timestamp>,
    /// End of validity; `None` means open (still valid).
    pub valid_until: Option<Timestamp>,
    pub first_seen: Option<Timestamp>,
    pub last_seen: Option<Timestamp>,
    /// When the source published it (CERT-FR event date, STIX `created`…).
    /// Kept for context; it does not bound the validity window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<Timestamp>,
    /// 0–100; `None` when the feed says nothing.
    pub confidence: Option<u8>,
    pub tags: Tags,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub provenance: Provenance,
}

impl Indicator {
    /// A bare indicator with an open window and no metadata.
    pub fn new(value: IndicatorValue, provenance: Provenance) -> Self {
        Self {
            value,
            valid_from: None,
            valid_until: None,
            first_seen: None,
            last_seen: None,
            published: None,
            confidence: None,
            tags: Tags::default(),
            description: None,
            provenance,
        }
    }

    /// Whether `at` falls inside the validity window (bounds inclusive).
    pub fn is_valid_at(&self, at: Timestamp) -> bool {
        self.valid_from.is_none_or(|f| at >= f) && self.valid_until.is_none_or(|u| at <= u)
    }
}

/// A record a reader could not turn into an indicator. It is reported to the
/// user with its position; the rest of the feed still loads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    pub file: String,
    /// 1-based line, or 0 for formats without lines.
    pub line: u64,
    pub reason: String,
    /// The offending text, truncated to a readable length.
    pub raw: String,
}

/// A record that is valid in its format but not something orbwatch can match
/// on (a YARA pattern, a MISP `comment` attribute…). Counted, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

/// Truncate a raw record for display in a rejection message.
pub fn excerpt(raw: &str) -> String {
    const MAX: usize = 200;
    let raw = raw.trim_end_matches(['\r', '\n']);
    if raw.len() <= MAX {
        raw.to_string()
    } else {
        let mut end = MAX;
        while !raw.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &raw[..end])
    }
}
