//! Feed export writers: Zeek Intel, Suricata IP reputation, plain lists and
//! STIX 2.1 bundles.
//!
//! The store keeps feeds as [`Indicator`]s; sensors want them in their own
//! formats. Every writer sorts its output (addresses numerically, then
//! text) and removes repeats, so the same feed always exports to the same
//! bytes (STIX: given the same export time for indicators that carry no
//! date at all). Address ranges, which none of these formats has, are
//! expanded to the smallest list of CIDR blocks that covers them exactly.
//!
//! Like the readers, the writers do no I/O of their own beyond the
//! [`Write`] they are handed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::model::{HashAlgo, Indicator, IndicatorValue};

/// The export formats (`feed export --to`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportFormat {
    /// Zeek Intel framework input file.
    Zeek,
    /// Suricata IP reputation file (`ip,category,score`).
    Suricata,
    /// One value per line.
    Plain,
    /// STIX 2.1 bundle of indicator objects.
    Stix,
}

impl ExportFormat {
    pub const ALL: [ExportFormat; 4] = [Self::Zeek, Self::Suricata, Self::Plain, Self::Stix];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Zeek => "zeek",
            Self::Suricata => "suricata",
            Self::Plain => "plain",
            Self::Stix => "stix",
        }
    }

    /// Write `indicators` in this format.
    pub fn write<W: Write>(
        self,
        indicators: &[Indicator],
        opts: &ExportOptions,
        out: W,
    ) -> io::Result<ExportStats> {
        match self {
            Self::Zeek => write_zeek(indicators, opts, out),
            Self::Suricata => write_suricata_iprep(indicators, opts, out),
            Self::Plain => write_plain(indicators, opts, out),
            Self::Stix => write_stix(indicators, opts, out),
        }
    }
}

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "zeek" | "zeek-intel" => Ok(Self::Zeek),
            "suricata" | "iprep" | "suricata-iprep" => Ok(Self::Suricata),
            "plain" | "list" | "txt" => Ok(Self::Plain),
            "stix" | "stix2" | "stix21" => Ok(Self::Stix),
            other => Err(format!(
                "unknown export format `{other}`; choose one of zeek, suricata, plain, stix"
            )),
        }
    }
}

/// Settings shared by the writers.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The feed name: Zeek `meta.source`, the Suricata category note, the
    /// STIX `x_orbwatch_feed` property.
    pub source: String,
    /// The export time: STIX `valid_from`/`created` of indicators that carry
    /// no date of their own.
    pub now: Timestamp,
    /// Suricata reputation category number (1–60).
    pub iprep_category: u8,
}

impl ExportOptions {
    pub fn new(source: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            now: Timestamp::now(),
            iprep_category: 1,
        }
    }
}

/// What a writer wrote and what it had to leave out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// Records written (lines or STIX indicator objects).
    pub written: u64,
    /// Indicators the format cannot express, by type name (`domain` for
    /// Suricata IP reputation…).
    pub unsupported: BTreeMap<String, u64>,
}

impl ExportStats {
    fn unsupported(&mut self, ind: &Indicator) {
        *self.unsupported.entry(ind.value.type_name()).or_default() += 1;
    }

    /// Total indicators left out.
    pub fn unsupported_total(&self) -> u64 {
        self.unsupported.values().sum()
    }
}

// ---------------------------------------------------------------------------
// Ordering and ranges

/// Sort key: addresses by family and number, everything else by text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum SortKey {
    Net { v6: bool, start: u128, end: u128 },
    Text { rank: u8, text: String },
}

fn ip_num(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (false, u128::from(u32::from(a))),
        IpAddr::V6(a) => (true, u128::from(a)),
    }
}

fn net_key(net: &IpNet) -> SortKey {
    let (v6, start) = ip_num(net.network());
    let (_, end) = ip_num(net.broadcast());
    SortKey::Net { v6, start, end }
}

fn sort_key(v: &IndicatorValue) -> SortKey {
    match v {
        IndicatorValue::Ip(ip) => {
            let (v6, n) = ip_num(*ip);
            SortKey::Net {
                v6,
                start: n,
                end: n,
            }
        }
        IndicatorValue::Cidr(net) => net_key(net),
        IndicatorValue::Range { first, last } => {
            let (v6, start) = ip_num(*first);
            let (_, end) = ip_num(*last);
            SortKey::Net { v6, start, end }
        }
        other => SortKey::Text {
            rank: match other {
                IndicatorValue::Domain(_) => 0,
                IndicatorValue::Url(_) => 1,
                IndicatorValue::Hash { .. } => 2,
                _ => 3,
            },
            text: other.to_string(),
        },
    }
}

/// Indicators in export order: by value, then window.
fn sorted(indicators: &[Indicator]) -> Vec<&Indicator> {
    let mut v: Vec<(SortKey, &Indicator)> =
        indicators.iter().map(|i| (sort_key(&i.value), i)).collect();
    v.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| a.1.valid_from.cmp(&b.1.valid_from))
            .then_with(|| a.1.valid_until.cmp(&b.1.valid_until))
            .then_with(|| a.1.provenance.line.cmp(&b.1.provenance.line))
    });
    v.into_iter().map(|(_, i)| i).collect()
}

/// The smallest list of CIDR blocks that covers `first..=last` exactly.
/// Empty when the two are of different families or out of order.
pub fn range_to_cidrs(first: IpAddr, last: IpAddr) -> Vec<IpNet> {
    let (v6, mut lo) = ip_num(first);
    let (v6b, hi) = ip_num(last);
    if v6 != v6b || lo > hi {
        return Vec::new();
    }
    let bits: u32 = if v6 { 128 } else { 32 };
    let mut out = Vec::new();
    loop {
        // Largest block aligned at `lo` …
        let mut size = if lo == 0 {
            bits
        } else {
            lo.trailing_zeros().min(bits)
        };
        // … that does not pass `hi`.
        while size > 0 {
            let span = if size >= 128 {
                u128::MAX
            } else {
                (1u128 << size) - 1
            };
            if lo.checked_add(span).is_some_and(|end| end <= hi) {
                break;
            }
            size -= 1;
        }
        let prefix = (bits - size) as u8;
        let addr = if v6 {
            IpAddr::V6(Ipv6Addr::from(lo))
        } else {
            IpAddr::V4(Ipv4Addr::from(lo as u32))
        };
        if let Ok(net) = IpNet::new(addr, prefix) {
            out.push(net);
        }
        let span = if size >= 128 {
            u128::MAX
        } else {
            (1u128 << size) - 1
        };
        match lo.checked_add(span) {
            Some(end) if end < hi => lo = end + 1,
            _ => break,
        }
    }
    out
}

/// The networks an address-like value stands for (`None` for other kinds).
fn networks(v: &IndicatorValue) -> Option<Vec<IpNet>> {
    match v {
        IndicatorValue::Ip(ip) => Some(vec![IpNet::from(*ip)]),
        IndicatorValue::Cidr(net) => Some(vec![*net]),
        IndicatorValue::Range { first, last } => Some(range_to_cidrs(*first, *last)),
        _ => None,
    }
}

/// A network as text: a host network is written as the bare address.
fn net_text(net: &IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

// ---------------------------------------------------------------------------
// Zeek Intel

/// One-line text for a tab-separated field: no tabs or newlines, `-` when
/// empty (Zeek's unset marker).
fn zeek_field(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let t = cleaned.trim();
    if t.is_empty() {
        "-".into()
    } else {
        t.to_string()
    }
}

fn fmt_window(i: &Indicator) -> Option<String> {
    if i.valid_from.is_none() && i.valid_until.is_none() {
        return None;
    }
    let f = |t: Option<Timestamp>| t.map_or_else(|| "open".to_string(), |t| t.to_string());
    Some(format!("valid {}..{}", f(i.valid_from), f(i.valid_until)))
}

/// The description written with an indicator: its own, or its tags.
fn describe(i: &Indicator) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(d) = i.description.as_deref().filter(|d| !d.trim().is_empty()) {
        parts.push(d.trim().to_string());
    } else {
        let t = &i.tags;
        let tags: Vec<&str> = t
            .actors
            .iter()
            .chain(&t.campaigns)
            .chain(&t.roles)
            .map(String::as_str)
            .collect();
        if !tags.is_empty() {
            parts.push(tags.join(", "));
        }
    }
    if let Some(w) = fmt_window(i) {
        parts.push(w);
    }
    parts.join("; ")
}

/// The Zeek `Intel::Type` and indicator text(s) for a value.
fn zeek_items(v: &IndicatorValue) -> Vec<(String, &'static str)> {
    match v {
        IndicatorValue::Ip(ip) => vec![(ip.to_string(), "Intel::ADDR")],
        IndicatorValue::Cidr(net) => vec![(net.to_string(), "Intel::SUBNET")],
        IndicatorValue::Range { first, last } => range_to_cidrs(*first, *last)
            .iter()
            .map(|n| {
                if n.prefix_len() == n.max_prefix_len() {
                    (n.addr().to_string(), "Intel::ADDR")
                } else {
                    (n.to_string(), "Intel::SUBNET")
                }
            })
            .collect(),
        IndicatorValue::Domain(d) => vec![(d.clone(), "Intel::DOMAIN")],
        // Zeek matches URLs as host + path, without the scheme.
        IndicatorValue::Url(u) => {
            let rest = u.split_once("://").map_or(u.as_str(), |(_, r)| r);
            vec![(rest.to_string(), "Intel::URL")]
        }
        IndicatorValue::Hash { hex, .. } => vec![(hex.clone(), "Intel::FILE_HASH")],
        IndicatorValue::CertFingerprint { hex, .. } => vec![(hex.clone(), "Intel::CERT_HASH")],
    }
}

/// Write a Zeek Intel framework file
/// (`#fields indicator indicator_type meta.source meta.desc`).
pub fn write_zeek<W: Write>(
    indicators: &[Indicator],
    opts: &ExportOptions,
    mut out: W,
) -> io::Result<ExportStats> {
    let mut stats = ExportStats::default();
    let source = zeek_field(&opts.source);
    writeln!(
        out,
        "#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc"
    )?;
    let mut seen: BTreeSet<(String, &'static str)> = BTreeSet::new();
    for ind in sorted(indicators) {
        let desc = zeek_field(&describe(ind));
        for (text, ty) in zeek_items(&ind.value) {
            if !seen.insert((text.clone(), ty)) {
                continue;
            }
            writeln!(out, "{}\t{ty}\t{source}\t{desc}", zeek_field(&text))?;
            stats.written += 1;
        }
    }
    out.flush()?;
    Ok(stats)
}

// ---------------------------------------------------------------------------
// Suricata IP reputation

/// Confidence 0–100 as a Suricata reputation score 1–127 (no confidence:
/// 127, the feed lists it as bad).
fn iprep_score(confidence: Option<u8>) -> u32 {
    match confidence {
        Some(c) => ((u32::from(c.min(100)) * 127 + 50) / 100).max(1),
        None => 127,
    }
}

/// A category short name Suricata accepts: letters, digits, `-`, `_`.
fn category_name(source: &str) -> String {
    let s: String = source
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(32)
        .collect();
    if s.is_empty() { "orbwatch".into() } else { s }
}

/// Write a Suricata IP reputation file (`ip,category,score`). Only
/// addresses, networks and ranges can be expressed; other kinds are counted
/// in `ExportStats::unsupported`. The header comments give the line the
/// categories file needs.
pub fn write_suricata_iprep<W: Write>(
    indicators: &[Indicator],
    opts: &ExportOptions,
    mut out: W,
) -> io::Result<ExportStats> {
    let mut stats = ExportStats::default();
    let cat = opts.iprep_category.clamp(1, 60);
    let name = category_name(&opts.source);
    writeln!(
        out,
        "# Suricata IP reputation exported by orbwatch from feed `{}`",
        opts.source.replace(['\r', '\n'], " ")
    )?;
    writeln!(
        out,
        "# Category {cat} must be defined in reputation-categories-file, for example:"
    )?;
    writeln!(out, "#   {cat},{name},orbwatch feed {name}")?;
    writeln!(
        out,
        "# Score = feed confidence scaled to 1-127 (127 when the feed gives none)."
    )?;
    let mut best: BTreeMap<SortKey, (IpNet, u32)> = BTreeMap::new();
    for ind in indicators {
        let Some(nets) = networks(&ind.value) else {
            stats.unsupported(ind);
            continue;
        };
        let score = iprep_score(ind.confidence);
        for net in nets {
            let e = best.entry(net_key(&net)).or_insert((net, score));
            e.1 = e.1.max(score);
        }
    }
    for (net, score) in best.values() {
        writeln!(out, "{},{cat},{score}", net_text(net))?;
        stats.written += 1;
    }
    out.flush()?;
    Ok(stats)
}

// ---------------------------------------------------------------------------
// Plain

/// Write one value per line: addresses, CIDRs (ranges expanded), domains,
/// URLs and hashes, sorted, without repeats.
pub fn write_plain<W: Write>(
    indicators: &[Indicator],
    _opts: &ExportOptions,
    mut out: W,
) -> io::Result<ExportStats> {
    let mut stats = ExportStats::default();
    let mut lines: BTreeMap<SortKey, String> = BTreeMap::new();
    for ind in indicators {
        match networks(&ind.value) {
            Some(nets) => {
                for net in nets {
                    lines.entry(net_key(&net)).or_insert_with(|| net_text(&net));
                }
            }
            None => {
                let text = ind.value.to_string();
                if text.contains(['\n', '\r']) {
                    stats.unsupported(ind);
                    continue;
                }
                lines.entry(sort_key(&ind.value)).or_insert(text);
            }
        }
    }
    for line in lines.values() {
        writeln!(out, "{line}")?;
        stats.written += 1;
    }
    out.flush()?;
    Ok(stats)
}

// ---------------------------------------------------------------------------
// STIX 2.1

/// Namespace of orbwatch's deterministic (UUIDv5) STIX identifiers.
const STIX_NAMESPACE: [u8; 16] = [
    0x6f, 0x72, 0x62, 0x77, 0x61, 0x74, 0x63, 0x68, 0x8a, 0x5e, 0x4c, 0x0b, 0x9d, 0x21, 0x3e, 0x57,
];

/// The TLP marking definitions predefined by STIX 2.1 (section 7.2.1.4):
/// the colour and the definition's id of a TLP name (1.0 or 2.0, with or
/// without `TLP:`); `None` for a name that is not TLP.
pub fn tlp_marking(tlp: &str) -> Option<(&'static str, &'static str)> {
    let t = tlp.trim().to_ascii_lowercase();
    let t = t.strip_prefix("tlp:").unwrap_or(&t);
    Some(match t {
        "white" | "clear" => (
            "white",
            "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
        ),
        "green" => (
            "green",
            "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
        ),
        "amber" => (
            "amber",
            "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
        ),
        // AMBER+STRICT has no STIX 2.1 constant; RED is the safe side.
        "amber+strict" | "red" => (
            "red",
            "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
        ),
        _ => return None,
    })
}

/// The STIX 2.1 marking-definition object of a TLP colour and its id (as
/// [`tlp_marking`] gives them), with the contents the specification fixes.
pub fn tlp_marking_definition(color: &str, id: &str) -> Value {
    json!({
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": id,
        "created": "2017-01-20T00:00:00.000Z",
        "definition_type": "tlp",
        "name": format!("TLP:{}", color.to_ascii_uppercase()),
        "definition": { "tlp": color },
    })
}

/// Quote a string for a STIX pattern literal.
fn stix_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

fn stix_hash_name(algo: HashAlgo) -> &'static str {
    match algo {
        HashAlgo::Md5 => "MD5",
        HashAlgo::Sha1 => "SHA-1",
        HashAlgo::Sha256 => "SHA-256",
        HashAlgo::Sha512 => "SHA-512",
    }
}

/// The STIX pattern of a value.
pub fn stix_pattern(v: &IndicatorValue) -> String {
    let addr_type = |ip: &IpAddr| {
        if ip.is_ipv4() {
            "ipv4-addr"
        } else {
            "ipv6-addr"
        }
    };
    match v {
        IndicatorValue::Ip(ip) => {
            format!(
                "[{}:value = {}]",
                addr_type(ip),
                stix_quote(&ip.to_string())
            )
        }
        IndicatorValue::Cidr(net) => format!(
            "[{}:value = {}]",
            addr_type(&net.addr()),
            stix_quote(&net.to_string())
        ),
        IndicatorValue::Range { first, last } => {
            let terms: Vec<String> = range_to_cidrs(*first, *last)
                .iter()
                .map(|n| {
                    format!(
                        "{}:value = {}",
                        addr_type(first),
                        stix_quote(&n.to_string())
                    )
                })
                .collect();
            format!("[{}]", terms.join(" OR "))
        }
        IndicatorValue::Domain(d) => format!("[domain-name:value = {}]", stix_quote(d)),
        IndicatorValue::Url(u) => format!("[url:value = {}]", stix_quote(u)),
        IndicatorValue::Hash { algo, hex } => format!(
            "[file:hashes.{} = {}]",
            stix_quote(stix_hash_name(*algo)),
            stix_quote(hex)
        ),
        IndicatorValue::CertFingerprint { algo, hex } => format!(
            "[x509-certificate:hashes.{} = {}]",
            stix_quote(stix_hash_name(*algo)),
            stix_quote(hex)
        ),
    }
}

/// `indicator--…` ids taken from the source, when they are STIX ids and
/// each names one exported indicator only.
fn reusable_ids<'a>(inds: &[&'a Indicator]) -> HashMap<&'a str, usize> {
    let mut uses: HashMap<&'a str, usize> = HashMap::new();
    for i in inds {
        if let Some(id) = i.provenance.record_id.as_deref()
            && is_stix_indicator_id(id)
        {
            *uses.entry(id).or_default() += 1;
        }
    }
    uses
}

fn is_stix_indicator_id(id: &str) -> bool {
    let Some(u) = id.strip_prefix("indicator--") else {
        return false;
    };
    u.len() == 36
        && u.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn stix_time(t: Timestamp) -> String {
    // Millisecond precision, as most STIX consumers expect.
    format!("{t:.3}")
}

/// Write a STIX 2.1 bundle with one `indicator` object per (value, window).
pub fn write_stix<W: Write>(
    indicators: &[Indicator],
    opts: &ExportOptions,
    mut out: W,
) -> io::Result<ExportStats> {
    let mut stats = ExportStats::default();
    let inds = sorted(indicators);
    let id_uses = reusable_ids(&inds);
    let mut objects: Vec<Value> = Vec::with_capacity(inds.len());
    let mut ids_seen: BTreeSet<String> = BTreeSet::new();
    let mut keys_seen: BTreeSet<String> = BTreeSet::new();
    let mut markings: BTreeMap<&'static str, &'static str> = BTreeMap::new();
    for ind in inds {
        let pattern = stix_pattern(&ind.value);
        let f = |t: Option<Timestamp>| t.map(|t| t.to_string()).unwrap_or_default();
        let derived = format!(
            "indicator--{}",
            uuid_v5(
                &STIX_NAMESPACE,
                format!("{pattern}|{}|{}", f(ind.valid_from), f(ind.valid_until)).as_bytes()
            )
        );
        if !keys_seen.insert(derived.clone()) {
            // The same value and window twice (two feeds): one object.
            continue;
        }
        let id = match ind.provenance.record_id.as_deref() {
            Some(r) if id_uses.get(r) == Some(&1) => r.to_string(),
            _ => derived,
        };
        ids_seen.insert(id.clone());
        let valid_from = ind
            .valid_from
            .or(ind.first_seen)
            .or(ind.published)
            .unwrap_or(opts.now);
        let created = ind.published.unwrap_or(valid_from);
        let mut o = serde_json::Map::new();
        o.insert("type".into(), json!("indicator"));
        o.insert("spec_version".into(), json!("2.1"));
        o.insert("id".into(), json!(id));
        o.insert("created".into(), json!(stix_time(created)));
        o.insert("modified".into(), json!(stix_time(created)));
        o.insert("name".into(), json!(ind.value.to_string()));
        if let Some(d) = ind.description.as_deref().filter(|d| !d.trim().is_empty()) {
            o.insert("description".into(), json!(d));
        }
        o.insert("indicator_types".into(), json!(["malicious-activity"]));
        o.insert("pattern".into(), json!(pattern));
        o.insert("pattern_type".into(), json!("stix"));
        o.insert("pattern_version".into(), json!("2.1"));
        o.insert("valid_from".into(), json!(stix_time(valid_from)));
        // STIX requires valid_until to be later than valid_from.
        if let Some(u) = ind.valid_until.filter(|u| *u > valid_from) {
            o.insert("valid_until".into(), json!(stix_time(u)));
        }
        if let Some(c) = ind.confidence {
            o.insert("confidence".into(), json!(c.min(100)));
        }
        let t = &ind.tags;
        let labels: BTreeSet<&str> = t
            .actors
            .iter()
            .chain(&t.campaigns)
            .chain(&t.roles)
            .chain(&t.other)
            .map(String::as_str)
            .collect();
        if !labels.is_empty() {
            o.insert("labels".into(), json!(labels));
        }
        if let Some((name, mid)) = t.tlp.as_deref().and_then(tlp_marking) {
            markings.insert(name, mid);
            o.insert("object_marking_refs".into(), json!([mid]));
        }
        o.insert("x_orbwatch_feed".into(), json!(opts.source));
        objects.push(Value::Object(o));
        stats.written += 1;
    }
    let mut all: Vec<Value> = markings
        .iter()
        .map(|(name, id)| tlp_marking_definition(name, id))
        .collect();
    all.extend(objects);
    let bundle_name: String = ids_seen
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(",");
    let bundle = json!({
        "type": "bundle",
        "id": format!("bundle--{}", uuid_v5(&STIX_NAMESPACE, format!("bundle|{}|{bundle_name}", opts.source).as_bytes())),
        "objects": all,
    });
    // Serialise first, so that write errors keep their kind (a closed pipe
    // stays `BrokenPipe`).
    let mut text = serde_json::to_vec_pretty(&bundle).map_err(io::Error::other)?;
    text.push(b'\n');
    out.write_all(&text)?;
    out.flush()?;
    Ok(stats)
}

// ---------------------------------------------------------------------------
// UUIDv5 (RFC 9562) with a small SHA-1, to keep this crate free of a
// hashing dependency. SHA-1 is used for naming only, not for security.

/// A name-based (version 5) UUID, hyphenated lower-case hex.
pub fn uuid_v5(namespace: &[u8; 16], name: &[u8]) -> String {
    let mut data = Vec::with_capacity(16 + name.len());
    data.extend_from_slice(namespace);
    data.extend_from_slice(name);
    let h = sha1(&data);
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xefcd_ab89,
        0x98ba_dcfe,
        0x1032_5476,
        0xc3d2_e1f0,
    ];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for chunk in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in chunk.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5a82_7999),
                20..=39 => (b ^ c ^ d, 0x6ed9_eba1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8f1b_bcdc),
                _ => (b ^ c ^ d, 0xca62_c1d6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        h[0] = h[0].wrapping_add(a);
        h[1] = h[1].wrapping_add(b);
        h[2] = h[2].wrapping_add(c);
        h[3] = h[3].wrapping_add(d);
        h[4] = h[4].wrapping_add(e);
    }
    let mut out = [0u8; 20];
    for (i, v) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Provenance, Tags};

    fn ind(v: IndicatorValue) -> Indicator {
        Indicator::new(
            v,
            Provenance {
                feed: "f".into(),
                file: "f.txt".into(),
                line: 1,
                record_id: None,
            },
        )
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn opts() -> ExportOptions {
        ExportOptions {
            source: "apt31".into(),
            now: "2024-05-01T00:00:00Z".parse().unwrap(),
            iprep_category: 1,
        }
    }

    fn render(f: ExportFormat, inds: &[Indicator]) -> String {
        let mut buf = Vec::new();
        f.write(inds, &opts(), &mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn sha1_and_uuid_v5_known_answers() {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(
            hex(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        let long = vec![b'a'; 1000];
        assert_eq!(
            hex(&sha1(&long)),
            "291e9a6c66994949b57ba5e650361e98fc36b1ba"
        );
        // Python: uuid.uuid5(uuid.NAMESPACE_DNS, "python.org")
        let dns = [
            0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4,
            0x30, 0xc8,
        ];
        assert_eq!(
            uuid_v5(&dns, b"python.org"),
            "886313e1-3b8a-5372-9b90-0c9aee199e5d"
        );
    }

    #[test]
    fn ranges_become_exact_cidrs() {
        let c = |a: &str, b: &str| -> Vec<String> {
            range_to_cidrs(ip(a), ip(b))
                .iter()
                .map(|n| n.to_string())
                .collect()
        };
        assert_eq!(c("10.0.0.0", "10.0.0.255"), ["10.0.0.0/24"]);
        assert_eq!(c("1.2.3.4", "1.2.3.9"), ["1.2.3.4/30", "1.2.3.8/31"]);
        assert_eq!(c("1.2.3.4", "1.2.3.4"), ["1.2.3.4/32"]);
        assert_eq!(c("0.0.0.0", "255.255.255.255"), ["0.0.0.0/0"]);
        assert_eq!(c("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), ["::/0"]);
        assert_eq!(
            c("2001:db8::1", "2001:db8::2"),
            ["2001:db8::1/128", "2001:db8::2/128"]
        );
        assert_eq!(
            c("255.255.255.254", "255.255.255.255"),
            ["255.255.255.254/31"]
        );
        assert!(c("1.2.3.9", "1.2.3.4").is_empty());
        assert!(c("1.2.3.4", "::1").is_empty());
        // Exact cover: the blocks add up to the range size.
        let nets = range_to_cidrs(ip("10.0.0.7"), ip("10.0.3.200"));
        let total: u64 = nets.iter().map(|n| 1u64 << (32 - n.prefix_len())).sum();
        assert_eq!(
            total,
            (10 * 256 * 256 * 256 + 3 * 256 + 200) - (10 * 256 * 256 * 256 + 7) + 1
        );
    }

    fn sample() -> Vec<Indicator> {
        let mut a = ind(IndicatorValue::Ip(ip("10.0.0.2")));
        a.tags = Tags {
            actors: vec!["APT31".into()],
            tlp: Some("white".into()),
            ..Default::default()
        };
        a.confidence = Some(50);
        vec![
            ind(IndicatorValue::Url("https://evil.example/a?b=1".into())),
            a,
            ind(IndicatorValue::Ip(ip("9.0.0.1"))),
            ind(IndicatorValue::Range {
                first: ip("192.0.2.4"),
                last: ip("192.0.2.9"),
            }),
            ind(IndicatorValue::Cidr("198.51.100.0/24".parse().unwrap())),
            ind(IndicatorValue::Domain("evil.example".into())),
            ind(IndicatorValue::Hash {
                algo: HashAlgo::Sha256,
                hex: "ab".repeat(32),
            }),
            ind(IndicatorValue::CertFingerprint {
                algo: HashAlgo::Sha1,
                hex: "cd".repeat(20),
            }),
            ind(IndicatorValue::Ip(ip("9.0.0.1"))),
        ]
    }

    #[test]
    fn zeek_file() {
        let text = render(ExportFormat::Zeek, &sample());
        let expected = format!(
            "#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\n\
             9.0.0.1\tIntel::ADDR\tapt31\t-\n\
             10.0.0.2\tIntel::ADDR\tapt31\tAPT31\n\
             192.0.2.4/30\tIntel::SUBNET\tapt31\t-\n\
             192.0.2.8/31\tIntel::SUBNET\tapt31\t-\n\
             198.51.100.0/24\tIntel::SUBNET\tapt31\t-\n\
             evil.example\tIntel::DOMAIN\tapt31\t-\n\
             evil.example/a?b=1\tIntel::URL\tapt31\t-\n\
             {}\tIntel::FILE_HASH\tapt31\t-\n\
             {}\tIntel::CERT_HASH\tapt31\t-\n",
            "ab".repeat(32),
            "cd".repeat(20)
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn suricata_iprep_file() {
        let mut buf = Vec::new();
        let stats = write_suricata_iprep(&sample(), &opts(), &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let data: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            data,
            [
                "9.0.0.1,1,127",
                "10.0.0.2,1,64",
                "192.0.2.4/30,1,127",
                "192.0.2.8/31,1,127",
                "198.51.100.0/24,1,127"
            ]
        );
        assert!(text.contains("#   1,apt31,"));
        assert_eq!(stats.written, 5);
        assert_eq!(stats.unsupported_total(), 4);
    }

    #[test]
    fn plain_list() {
        let text = render(ExportFormat::Plain, &sample());
        assert_eq!(
            text,
            format!(
                "9.0.0.1\n10.0.0.2\n192.0.2.4/30\n192.0.2.8/31\n198.51.100.0/24\nevil.example\n\
                 https://evil.example/a?b=1\n{}\n{}\n",
                "ab".repeat(32),
                "cd".repeat(20)
            )
        );
    }

    #[test]
    fn stix_bundle() {
        let mut inds = sample();
        inds[1].valid_from = Some("2021-01-01T00:00:00Z".parse().unwrap());
        inds[1].valid_until = Some("2021-12-31T00:00:00Z".parse().unwrap());
        inds[2].provenance.record_id =
            Some("indicator--0b6a3e3c-aaaa-4bbb-8ccc-000000000001".into());
        let text = render(ExportFormat::Stix, &inds);
        assert_eq!(text, render(ExportFormat::Stix, &inds), "deterministic");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["type"], "bundle");
        let objs = v["objects"].as_array().unwrap();
        assert_eq!(objs[0]["type"], "marking-definition");
        assert_eq!(objs[0]["name"], "TLP:WHITE");
        let inds_out: Vec<&Value> = objs.iter().filter(|o| o["type"] == "indicator").collect();
        // 9.0.0.1 twice with the same (open) window: one object.
        assert_eq!(inds_out.len(), 8);
        let first = inds_out[0];
        assert_eq!(first["pattern"], "[ipv4-addr:value = '9.0.0.1']");
        assert_eq!(first["valid_from"], "2024-05-01T00:00:00.000Z");
        // The same value without a record id elsewhere gets a derived id, so
        // the record id is used only where it is unique.
        let apt = inds_out[1];
        assert_eq!(apt["valid_from"], "2021-01-01T00:00:00.000Z");
        assert_eq!(apt["valid_until"], "2021-12-31T00:00:00.000Z");
        assert_eq!(apt["confidence"], 50);
        assert_eq!(apt["labels"], json!(["APT31"]));
        assert_eq!(
            apt["object_marking_refs"],
            json!(["marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"])
        );
        let range = inds_out[2];
        assert_eq!(
            range["pattern"],
            "[ipv4-addr:value = '192.0.2.4/30' OR ipv4-addr:value = '192.0.2.8/31']"
        );
        let patterns: Vec<&str> = inds_out
            .iter()
            .map(|o| o["pattern"].as_str().unwrap())
            .collect();
        assert!(patterns.contains(&"[domain-name:value = 'evil.example']"));
        assert!(patterns.contains(&"[url:value = 'https://evil.example/a?b=1']"));
        assert!(
            patterns.contains(&format!("[file:hashes.'SHA-256' = '{}']", "ab".repeat(32)).as_str())
        );
        assert!(patterns.contains(
            &format!("[x509-certificate:hashes.'SHA-1' = '{}']", "cd".repeat(20)).as_str()
        ));
        for o in &inds_out {
            let id = o["id"].as_str().unwrap();
            assert!(is_stix_indicator_id(id), "{id}");
            assert_eq!(o["spec_version"], "2.1");
        }
    }

    #[test]
    fn stix_reuses_unique_source_ids() {
        let mut a = ind(IndicatorValue::Domain("a.example".into()));
        a.provenance.record_id = Some("indicator--0b6a3e3c-aaaa-4bbb-8ccc-000000000001".into());
        let text = render(ExportFormat::Stix, &[a]);
        assert!(text.contains("\"indicator--0b6a3e3c-aaaa-4bbb-8ccc-000000000001\""));
    }

    #[test]
    fn stix_quotes_pattern_literals() {
        assert_eq!(stix_quote("a'b\\c"), "'a\\'b\\\\c'");
    }

    #[test]
    fn export_format_names() {
        for f in ExportFormat::ALL {
            assert_eq!(f.as_str().parse::<ExportFormat>().unwrap(), f);
        }
        assert!("yaml".parse::<ExportFormat>().unwrap_err().contains("zeek"));
    }
}
