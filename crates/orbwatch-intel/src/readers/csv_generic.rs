//! Generic CSV and TSV feeds with a header row.
//!
//! Vendors, abuse.ch, OTX exports and home-made spreadsheets all write IOC
//! tables; they differ only in column names. Columns are mapped from
//! [`CsvMapping`] (header names or 1-based indexes) and, where unset, guessed
//! from the names feeds commonly use. A header that is itself commented out
//! (`# id,dateadded,url,...` as URLhaus and Feodo Tracker write it) is found
//! too.
//!
//! This module also holds what the CSV-shaped readers share: the mapping of
//! type names (MISP, STIX, OTX and plain words) to [`TypeHint`]s, the
//! classification of tags, and the reading of confidence values.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{BufRead, Read};
use std::rc::Rc;

use csv::{ByteRecord, ReaderBuilder};

use super::plain::{provenance, strip_bom};
use super::{CsvMapping, FeedError, FeedFormat, ParsedFeed, ReadOptions};
use crate::model::{HashAlgo, Indicator, IndicatorValue, Tags};
use crate::time::parse_timestamp;
use crate::value::{TypeHint, parse_value};

// ---------------------------------------------------------------------------
// Type names
// ---------------------------------------------------------------------------

/// One half of a MISP composite type such as `ip-dst|port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// The part is an indicator of this type.
    Value(TypeHint),
    /// The part is kept as an `other` tag `name=part` (e.g. the port).
    Tag(&'static str),
    /// The part is a file name: it becomes the description.
    Desc,
}

/// What a type name says about a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MappedType {
    Hint(TypeHint),
    /// `a|b` composite: the value is split at the first `|`.
    Composite(Part, Part),
    /// A valid type that orbwatch cannot match on (e-mail, mutex, YARA…).
    Unmatchable,
}

fn norm_name(s: &str) -> String {
    s.trim()
        .trim_matches(|c| c == '"' || c == '\'')
        .trim()
        .chars()
        .map(|c| match c {
            '_' | ' ' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

fn hash_hint(name: &str) -> Option<TypeHint> {
    let algo = match name {
        "md5" | "filehash-md5" | "md5-hash" | "hash-md5" | "file-md5" => HashAlgo::Md5,
        "sha1" | "sha-1" | "filehash-sha1" | "sha1-hash" | "hash-sha1" | "file-sha1" => {
            HashAlgo::Sha1
        }
        "sha256" | "sha-256" | "filehash-sha256" | "sha256-hash" | "hash-sha256"
        | "file-sha256" => HashAlgo::Sha256,
        "sha512" | "sha-512" | "filehash-sha512" | "sha512-hash" | "hash-sha512"
        | "file-sha512" => HashAlgo::Sha512,
        "hash" | "filehash" | "file-hash" | "hashes" | "file" => return Some(TypeHint::Hash(None)),
        _ => return None,
    };
    Some(TypeHint::Hash(Some(algo)))
}

/// Map a type name as feeds write it (MISP `ip-dst`, STIX `ipv4-addr`, OTX
/// `FileHash-SHA256`, plain `IPv4`, `domain`…) to what orbwatch does with
/// the value. `None` means the name is unknown: infer from the value.
pub(crate) fn map_type(name: &str) -> Option<MappedType> {
    let n = norm_name(name);
    let n = n.as_str();
    use MappedType::*;
    let hint = match n {
        "ip-dst" | "ip-src" | "ip" | "ipv4" | "ipv6" | "ip-address" | "ipaddress" | "ipv4-addr"
        | "ipv6-addr" | "ipv4-address" | "ipv6-address" | "ip-addr" | "address" | "addr"
        | "src-ip" | "dst-ip" | "ip4" | "ip6" => TypeHint::Ip,
        "cidr" | "subnet" | "network" | "netblock" | "ip-range" | "iprange" | "range"
        | "ipv4-net" | "ipv6-net" | "ipv4-cidr" | "ipv6-cidr" | "prefix" => TypeHint::Cidr,
        "domain" | "hostname" | "domain-name" | "domainname" | "fqdn" | "host" | "dns"
        | "domain-name-system" => TypeHint::Domain,
        "url" | "uri-full" => TypeHint::Url,
        "x509-fingerprint-md5" | "ssl-cert-md5" => TypeHint::Cert(Some(HashAlgo::Md5)),
        "x509-fingerprint-sha1" | "ssl-cert-sha1" | "cert-sha1" => {
            TypeHint::Cert(Some(HashAlgo::Sha1))
        }
        "x509-fingerprint-sha256" | "ssl-cert-sha256" | "cert-sha256" => {
            TypeHint::Cert(Some(HashAlgo::Sha256))
        }
        "cert-hash" | "certificate" | "x509-fingerprint" | "cert-fingerprint" | "sslcert" => {
            TypeHint::Cert(None)
        }
        "ip-dst|port" | "ip-src|port" => {
            return Some(Composite(Part::Value(TypeHint::Ip), Part::Tag("port")));
        }
        "hostname|port" | "domain|port" => {
            return Some(Composite(Part::Value(TypeHint::Domain), Part::Tag("port")));
        }
        "domain|ip" => {
            return Some(Composite(
                Part::Value(TypeHint::Domain),
                Part::Value(TypeHint::Ip),
            ));
        }
        "filename|md5" | "filename|sha1" | "filename|sha256" | "filename|sha512" => {
            let algo = n.rsplit('|').next().unwrap_or("");
            return hash_hint(algo).map(|h| Composite(Part::Desc, Part::Value(h)));
        }
        "email"
        | "email-src"
        | "email-dst"
        | "email-subject"
        | "email-attachment"
        | "email-body"
        | "email-address"
        | "email-addr"
        | "email-reply-to"
        | "email-header"
        | "filename"
        | "file-name"
        | "filepath"
        | "file-path"
        | "regkey"
        | "regkey|value"
        | "registry-key"
        | "windows-registry-key"
        | "mutex"
        | "yara"
        | "snort"
        | "sigma"
        | "text"
        | "comment"
        | "other"
        | "link"
        | "uri"
        | "user-agent"
        | "useragent"
        | "ja3"
        | "ja3-fingerprint-md5"
        | "jarm-fingerprint"
        | "hassh-md5"
        | "ssdeep"
        | "imphash"
        | "tlsh"
        | "authentihash"
        | "pehash"
        | "as"
        | "asn"
        | "autonomous-system"
        | "cve"
        | "vulnerability"
        | "attachment"
        | "malware-sample"
        | "pattern-in-file"
        | "pattern-in-memory"
        | "pattern-in-traffic"
        | "btc"
        | "whois-registrant-email"
        | "port"
        | "size-in-bytes"
        | "http-method"
        | "named-pipe"
        | "mac-address"
        | "user-name"
        | "username"
        | "software"
        | "pubkey-hash"
        | "process"
        | "target-user"
        | "target-email"
        | "target-machine"
        | "campaign-name"
        | "threat-actor" => return Some(Unmatchable),
        other => return hash_hint(other).map(Hint),
    };
    Some(Hint(hint))
}

/// Indicators and tags read from one typed value.
#[derive(Debug, Default)]
pub(crate) struct TypedValues {
    pub values: Vec<IndicatorValue>,
    pub other: Vec<String>,
    pub description: Option<String>,
}

/// What came of one typed value.
pub(crate) enum Typed {
    Ok(TypedValues),
    /// Valid but unmatchable; the reason.
    Skip(String),
    /// Not a valid value; the reason.
    Reject(String),
}

/// Parse `raw` according to the type name a feed gives (if any). `fallback`
/// is used when the name is missing or unknown (e.g. a column named `ip`).
pub(crate) fn parse_typed(raw: &str, type_name: Option<&str>, fallback: Option<TypeHint>) -> Typed {
    let type_name = type_name.map(str::trim).filter(|t| !t.is_empty());
    let mapped = type_name.and_then(map_type);
    let mut tv = TypedValues::default();
    match mapped {
        Some(MappedType::Unmatchable) => Typed::Skip(format!(
            "type `{}` is not something orbwatch can match on",
            type_name.unwrap_or_default()
        )),
        Some(MappedType::Hint(h)) => match parse_value(raw, Some(h)) {
            Ok(v) => {
                tv.values.push(v);
                Typed::Ok(tv)
            }
            Err(e) => Typed::Reject(e),
        },
        Some(MappedType::Composite(a, b)) => {
            let (x, y) = match raw.split_once('|') {
                Some((x, y)) => (x, Some(y)),
                None => (raw, None),
            };
            for (part, text) in [(a, Some(x)), (b, y)] {
                let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
                    continue;
                };
                match part {
                    Part::Value(h) => match parse_value(text, Some(h)) {
                        Ok(v) => tv.values.push(v),
                        Err(e) => return Typed::Reject(e),
                    },
                    Part::Tag(name) => tv.other.push(format!("{name}={text}")),
                    Part::Desc => tv.description = Some(text.to_string()),
                }
            }
            if tv.values.is_empty() {
                return Typed::Reject(format!(
                    "`{}` has no value for type `{}`",
                    crate::model::excerpt(raw),
                    type_name.unwrap_or_default()
                ));
            }
            Typed::Ok(tv)
        }
        None => match parse_value(raw, fallback) {
            Ok(v) => {
                tv.values.push(v);
                Typed::Ok(tv)
            }
            Err(e) => Typed::Reject(match type_name {
                Some(t) => format!("{e} (unknown type `{t}`)"),
                None => e,
            }),
        },
    }
}

// ---------------------------------------------------------------------------
// Tags and confidence
// ---------------------------------------------------------------------------

fn unquote(s: &str) -> &str {
    s.trim().trim_matches(|c| c == '"' || c == '\'').trim()
}

/// Normalise a TLP value: `TLP:WHITE`, `"white"` → `white`.
pub(crate) fn norm_tlp(s: &str) -> Option<String> {
    let v = unquote(s).to_ascii_lowercase();
    let v = v.strip_prefix("tlp:").unwrap_or(&v).trim().to_string();
    (!v.is_empty()).then_some(v)
}

/// File one tag: `tlp:white` and `…:TLP="white"` set the TLP,
/// `misp-galaxy:threat-actor="X"` adds an actor, everything else is kept
/// in `other` as `key=value` (quotes removed) or as written.
pub(crate) fn add_tag(tags: &mut Tags, raw: &str) {
    let t = raw.trim();
    if t.is_empty() {
        return;
    }
    if let Some((k, v)) = t.split_once('=') {
        let key = k.trim();
        let val = unquote(v);
        let kl = key.to_ascii_lowercase();
        if kl == "tlp" || kl.ends_with(":tlp") {
            if let Some(tlp) = norm_tlp(val) {
                tags.tlp = Some(tlp);
            }
            return;
        }
        if matches!(
            kl.as_str(),
            "misp-galaxy:threat-actor" | "misp-galaxy:intrusion-set" | "threat-actor" | "actor"
        ) {
            Tags::push_unique(&mut tags.actors, val);
            return;
        }
        if val.is_empty() {
            Tags::push_unique(&mut tags.other, key);
        } else {
            Tags::push_unique(&mut tags.other, format!("{key}={val}"));
        }
        return;
    }
    let t = unquote(t);
    if t.to_ascii_lowercase().starts_with("tlp:") {
        tags.tlp = norm_tlp(t);
        return;
    }
    Tags::push_unique(&mut tags.other, t);
}

/// At most this many tags are taken from one field: tags are deduplicated
/// per indicator, and a hostile field must not make that quadratic.
pub(crate) const MAX_TAGS: usize = 256;

/// Split a tag list on `,`, `;` or `|`, respecting double quotes
/// (`a="x, y", b`). Empty items are dropped; at most [`MAX_TAGS`] are kept.
pub(crate) fn split_tags(s: &str) -> Vec<&str> {
    fn push<'a>(item: &'a str, out: &mut Vec<&'a str>) {
        let item = item.trim();
        if !item.is_empty() && out.len() < MAX_TAGS {
            out.push(item);
        }
    }
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' | ';' | '|' if !quoted => {
                push(&s[start..i], &mut out);
                start = i + c.len_utf8();
                if out.len() >= MAX_TAGS {
                    return out;
                }
            }
            _ => {}
        }
    }
    push(&s[start..], &mut out);
    out
}

/// Lower-case and drop French accents, collapse whitespace and quotes.
pub(crate) fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for w in unquote(s).split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        for c in w.chars() {
            let c = match c {
                'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' | 'Ë' => 'e',
                'à' | 'â' | 'ä' | 'À' | 'Â' => 'a',
                'î' | 'ï' | 'Î' | 'Ï' => 'i',
                'ô' | 'ö' | 'Ô' => 'o',
                'û' | 'ù' | 'ü' | 'Û' | 'Ù' => 'u',
                'ç' | 'Ç' => 'c',
                c => c.to_ascii_lowercase(),
            };
            out.push(c);
        }
    }
    out
}

/// Read a confidence as feeds write it: `0`–`100`, a fraction `0.0`–`1.0`,
/// `high`/`medium`/`low`, or a reliability word (see
/// [`super::certfr::reliability_confidence`]). `None` when the text says
/// nothing usable.
pub(crate) fn parse_confidence(s: &str) -> Option<u8> {
    let t = fold(s);
    if t.is_empty() || t == "-" {
        return None;
    }
    if let Ok(n) = t.parse::<f64>() {
        if !n.is_finite() || n < 0.0 {
            return None;
        }
        if t.contains('.') && n <= 1.0 {
            return Some((n * 100.0).round() as u8);
        }
        if n <= 100.0 {
            return Some(n.round() as u8);
        }
        return None;
    }
    match t.as_str() {
        "very high" | "critical" => Some(95),
        "high" => Some(85),
        "medium" | "med" | "moderate" => Some(60),
        "low" => Some(30),
        "very low" | "none" => Some(10),
        _ => super::certfr::reliability_confidence(&t),
    }
}

/// `None`, `null`, `-`, `N/A` and blanks mean "no value".
pub(crate) fn is_null(s: &str) -> bool {
    let t = s.trim();
    t.is_empty()
        || t == "-"
        || t.eq_ignore_ascii_case("none")
        || t.eq_ignore_ascii_case("null")
        || t.eq_ignore_ascii_case("n/a")
        || t.eq_ignore_ascii_case("nan")
        || t == "(empty)"
}

// ---------------------------------------------------------------------------
// Header guessing
// ---------------------------------------------------------------------------

/// Header names (normalised: lower case, `_` for separators) that hold the
/// value, without saying its type.
const GENERIC_VALUE: &[&str] = &[
    "value",
    "indicator",
    "ioc",
    "observable",
    "indicator_value",
    "ioc_value",
    "observable_value",
    "artifact",
    "attribute_value",
    "signature_component_value",
];

/// Header names that hold the value and say its type, in priority order.
const TYPED_VALUE: &[(&str, TypeHint)] = &[
    ("ip", TypeHint::Ip),
    ("ip_address", TypeHint::Ip),
    ("ipaddress", TypeHint::Ip),
    ("ip_addr", TypeHint::Ip),
    ("ipv4", TypeHint::Ip),
    ("ipv6", TypeHint::Ip),
    ("ipv4_address", TypeHint::Ip),
    ("ipv6_address", TypeHint::Ip),
    ("dst_ip", TypeHint::Ip),
    ("destination_ip", TypeHint::Ip),
    ("address", TypeHint::Ip),
    ("addr", TypeHint::Ip),
    ("cidr", TypeHint::Cidr),
    ("network", TypeHint::Cidr),
    ("subnet", TypeHint::Cidr),
    ("netblock", TypeHint::Cidr),
    ("prefix", TypeHint::Cidr),
    ("domain", TypeHint::Domain),
    ("domain_name", TypeHint::Domain),
    ("hostname", TypeHint::Domain),
    ("host", TypeHint::Domain),
    ("fqdn", TypeHint::Domain),
    ("url", TypeHint::Url),
    ("sha256", TypeHint::Hash(Some(HashAlgo::Sha256))),
    ("sha256_hash", TypeHint::Hash(Some(HashAlgo::Sha256))),
    ("sha1", TypeHint::Hash(Some(HashAlgo::Sha1))),
    ("sha1_hash", TypeHint::Hash(Some(HashAlgo::Sha1))),
    ("md5", TypeHint::Hash(Some(HashAlgo::Md5))),
    ("md5_hash", TypeHint::Hash(Some(HashAlgo::Md5))),
    ("sha512", TypeHint::Hash(Some(HashAlgo::Sha512))),
    ("hash", TypeHint::Hash(None)),
    ("file_hash", TypeHint::Hash(None)),
    ("filehash", TypeHint::Hash(None)),
];

const TYPE_NAMES: &[&str] = &[
    "type",
    "indicator_type",
    "ioc_type",
    "value_type",
    "attribute_type",
    "observable_type",
    "kind",
    "signature_component_type",
];
pub(crate) const FIRST_SEEN: &[&str] = &[
    "first_seen",
    "firstseen",
    "first_seen_utc",
    "first_seen_date",
    "dateadded",
    "date_added",
    "first_observed",
];
pub(crate) const LAST_SEEN: &[&str] = &[
    "last_seen",
    "lastseen",
    "last_seen_utc",
    "last_seen_date",
    "last_online",
    "last_observed",
];
const VALID_FROM: &[&str] = &["valid_from", "validfrom", "not_before", "valid_since"];
const VALID_UNTIL: &[&str] = &[
    "valid_until",
    "validuntil",
    "valid_to",
    "expiration",
    "expiration_date",
    "expires",
    "expiry",
    "expire",
    "not_after",
];
const CONFIDENCE: &[&str] = &[
    "confidence",
    "score",
    "confidence_score",
    "confidence_level",
    "threat_score",
];
const TAGS: &[&str] = &["tags", "labels", "tag", "label"];
const DESCRIPTION: &[&str] = &[
    "description",
    "comment",
    "comments",
    "desc",
    "note",
    "notes",
    "info",
];
const ACTORS: &[&str] = &["actor", "actors", "threat_actor", "apt"];
const CAMPAIGNS: &[&str] = &["campaign", "campaigns"];
const TLP: &[&str] = &["tlp"];
const ROLES: &[&str] = &["role", "roles"];

/// Normalise a header name for matching: lower case, separators `_`.
pub(crate) fn norm_header(s: &str) -> String {
    s.trim()
        .trim_matches(|c| c == '"' || c == '\'' || c == '\u{feff}')
        .trim()
        .chars()
        .map(|c| match c {
            ' ' | '-' | '.' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// The value column guessed from a header, with the type its name implies.
fn guess_value(headers: &[String]) -> Option<(usize, Option<TypeHint>)> {
    for g in GENERIC_VALUE {
        if let Some(i) = headers.iter().position(|h| h == g) {
            return Some((i, None));
        }
    }
    for (name, hint) in TYPED_VALUE {
        if let Some(i) = headers.iter().position(|h| h == name) {
            return Some((i, Some(*hint)));
        }
    }
    None
}

fn find(headers: &[String], names: &[&str]) -> Option<usize> {
    names
        .iter()
        .find_map(|n| headers.iter().position(|h| h == n))
}

/// Resolve a user-given column: a 1-based index or a header name.
fn resolve(spec: &str, headers: Option<&[String]>, what: &str) -> Result<usize, String> {
    let s = spec.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return match s.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n - 1),
            _ => Err(format!("{what} column `{s}`: indexes start at 1")),
        };
    }
    let Some(h) = headers else {
        return Err(format!(
            "{what} column `{s}` is a name but the file has no header; give a 1-based index"
        ));
    };
    let want = norm_header(s);
    h.iter().position(|x| *x == want).ok_or_else(|| {
        format!(
            "{what} column `{s}` is not in the header ({})",
            h.join(", ")
        )
    })
}

/// Resolved column positions.
#[derive(Debug, Default, Clone)]
struct Columns {
    value: usize,
    value_hint: Option<TypeHint>,
    kind: Option<usize>,
    first_seen: Option<usize>,
    last_seen: Option<usize>,
    valid_from: Option<usize>,
    valid_until: Option<usize>,
    confidence: Option<usize>,
    tags: Option<usize>,
    description: Option<usize>,
    actors: Option<usize>,
    campaigns: Option<usize>,
    tlp: Option<usize>,
    roles: Option<usize>,
}

impl Columns {
    fn max(&self) -> usize {
        [
            Some(self.value),
            self.kind,
            self.first_seen,
            self.last_seen,
            self.valid_from,
            self.valid_until,
            self.confidence,
            self.tags,
            self.description,
            self.actors,
            self.campaigns,
            self.tlp,
            self.roles,
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(0)
    }
}

/// Work out the columns from the mapping and (normalised) header names.
fn columns(m: &CsvMapping, headers: Option<&[String]>) -> Result<Columns, String> {
    let get =
        |spec: &Option<String>, names: &[&str], what: &str| -> Result<Option<usize>, String> {
            match spec {
                Some(s) => resolve(s, headers, what).map(Some),
                None => Ok(headers.and_then(|h| find(h, names))),
            }
        };
    let (value, value_hint) = match &m.value {
        Some(s) => {
            let i = resolve(s, headers, "value")?;
            let hint = headers
                .and_then(|h| h.get(i))
                .and_then(|n| TYPED_VALUE.iter().find(|(x, _)| x == n))
                .map(|(_, h)| *h);
            (i, hint)
        }
        None => match headers {
            Some(h) => guess_value(h).ok_or_else(|| {
                let stix = if h.iter().any(|n| n == "pattern") {
                    "; its `pattern` column suggests STIX indicators: try --format stix-csv"
                } else {
                    ""
                };
                format!(
                    "no value column found in the header ({}); name the column that holds \
                     the indicators with --value-column (and its type with --type-column){stix}",
                    h.join(", ")
                )
            })?,
            None => {
                return Err(
                    "the file has no header, so the value column must be given by 1-based index"
                        .into(),
                );
            }
        },
    };
    Ok(Columns {
        value,
        value_hint,
        kind: get(&m.kind, TYPE_NAMES, "type")?,
        first_seen: get(&m.first_seen, FIRST_SEEN, "first-seen")?,
        last_seen: get(&m.last_seen, LAST_SEEN, "last-seen")?,
        valid_from: get(&m.valid_from, VALID_FROM, "valid-from")?,
        valid_until: get(&m.valid_until, VALID_UNTIL, "valid-until")?,
        confidence: get(&m.confidence, CONFIDENCE, "confidence")?,
        tags: get(&m.tags, TAGS, "tags")?,
        description: get(&m.description, DESCRIPTION, "description")?,
        actors: get(&None, ACTORS, "actor")?,
        campaigns: get(&None, CAMPAIGNS, "campaign")?,
        tlp: get(&None, TLP, "tlp")?,
        roles: get(&None, ROLES, "role")?,
    })
}

// ---------------------------------------------------------------------------
// Splitting lines (detection only; reading uses the csv crate)
// ---------------------------------------------------------------------------

/// Split one line on `delim`, honouring double quotes. Cheap; for detection.
pub(crate) fn split_line(line: &str, delim: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' {
            if quoted && chars.peek() == Some(&'"') {
                cur.push('"');
                chars.next();
            } else {
                quoted = !quoted;
            }
        } else if c == delim && !quoted {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

/// The non-empty lines of a head, the last (possibly cut) one dropped when
/// the head does not end with a newline.
pub(crate) fn head_lines(head: &str, max: usize) -> Vec<&str> {
    let mut v: Vec<&str> = head.split('\n').map(|l| l.trim_end_matches('\r')).collect();
    if !head.ends_with('\n') && v.len() > 1 {
        v.pop();
    }
    v.into_iter()
        .filter(|l| !l.trim().is_empty())
        .take(max)
        .collect()
}

/// Does the head look like a CSV or TSV feed with a header naming a value
/// column, and do the next rows have as many fields as the header?
pub fn looks_like(head: &str) -> Option<FeedFormat> {
    let lines = head_lines(head.trim_start_matches('\u{feff}'), 40);
    // The header is the first non-comment line, or the last comment line
    // before it (`# id,dateadded,url,...`).
    let first_data = lines
        .iter()
        .position(|l| !l.trim_start().starts_with('#'))?;
    let data_line = lines[first_data];
    for (delim, fmt) in [('\t', FeedFormat::Tsv), (',', FeedFormat::Csv)] {
        if !data_line.contains(delim) && !head_has_single_column_header(data_line) {
            continue;
        }
        let mut candidates: Vec<(&str, usize)> = vec![(data_line, first_data + 1)];
        if first_data > 0 {
            let c = lines[first_data - 1].trim_start().trim_start_matches('#');
            candidates.push((c, first_data));
        }
        for (header, rows_from) in candidates {
            let names: Vec<String> = split_line(header, delim)
                .iter()
                .map(|h| norm_header(h))
                .collect();
            if names.len() < 2 && delim == ',' && !single_value_header(&names) {
                continue;
            }
            if names.len() < 2 && delim == '\t' {
                continue;
            }
            if guess_value(&names).is_none() {
                continue;
            }
            let rows = records(&lines[rows_from.min(lines.len())..], 10);
            let consistent = rows
                .iter()
                .filter(|r| {
                    let n = split_line(r, delim).len();
                    n == names.len() || (n > names.len() && r.ends_with(delim))
                })
                .count();
            // Mostly consistent: a ragged row is rejected later, with its line.
            if rows.is_empty() || consistent * 4 >= rows.len() * 3 {
                return Some(fmt);
            }
        }
    }
    None
}

/// Join physical lines into records while a double quote is open; skip
/// comment lines. At most `max` records.
pub(crate) fn records(lines: &[&str], max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for l in lines {
        if cur.is_empty() && l.trim_start().starts_with('#') {
            continue;
        }
        if !cur.is_empty() {
            cur.push('\n');
        }
        cur.push_str(l);
        if cur.matches('"').count().is_multiple_of(2) {
            out.push(std::mem::take(&mut cur));
            if out.len() >= max {
                break;
            }
        }
    }
    out
}

/// A table found at the start of a file that no reader took: what the
/// error message says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableShape {
    pub delimiter: char,
    /// The header's column names.
    pub header: Vec<String>,
}

impl TableShape {
    /// `a CSV (`,`) with the header "a, b, c"` and the like.
    pub(crate) fn describe(&self) -> String {
        let kind = match self.delimiter {
            '\t' => "a TSV table".to_string(),
            ',' => "a CSV table".to_string(),
            d => format!("a table separated by `{d}`"),
        };
        let mut names: Vec<String> = self.header.iter().take(12).cloned().collect();
        if self.header.len() > 12 {
            names.push("…".into());
        }
        format!("{kind} with the header ({})", names.join(", "))
    }
}

/// Is the start of the file a table: a header of column names followed by
/// rows with as many fields (nine in ten of the first twenty)? Tried with
/// tab, `,`, `;` and `|`.
/// Used to refuse reading such a file as free text, where every cell that
/// looks like a domain would become an indicator. Prose with the odd comma
/// is not a table: its lines do not agree on a field count, and its first
/// line is not a list of short names.
pub(crate) fn table_shape(head: &str) -> Option<TableShape> {
    let lines = head_lines(head.trim_start_matches('\u{feff}'), 40);
    let first = lines
        .iter()
        .position(|l| !l.trim_start().starts_with('#'))?;
    let body = &lines[first..];
    for delim in ['\t', ',', ';', '|'] {
        let header = split_line(body[0], delim);
        if header.len() < 2 {
            continue;
        }
        let rows = records(&body[1..], 20);
        let same = rows
            .iter()
            .filter(|r| split_line(r, delim).len() == header.len())
            .count();
        let consistent = !rows.is_empty() && same * 10 >= rows.len() * 9;
        if !consistent {
            continue;
        }
        if header.iter().all(|h| is_column_name(h)) {
            return Some(TableShape {
                delimiter: delim,
                header: header.iter().map(|h| h.trim().to_string()).collect(),
            });
        }
    }
    None
}

/// A header cell: a short name with a letter, made of letters, digits,
/// spaces and the punctuation column names use (`_ - . ( ) # "`).
fn is_column_name(h: &str) -> bool {
    let t = h
        .trim()
        .trim_matches(|c| c == '"' || c == '\'' || c == '\u{feff}');
    !t.is_empty()
        && t.chars().count() <= 48
        && t.chars().any(char::is_alphabetic)
        && t.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '_' | '-' | '.' | '(' | ')' | '#'))
}

fn head_has_single_column_header(line: &str) -> bool {
    single_value_header(&[norm_header(line)])
}

/// A one-column CSV is recognised only by a header that is a value-column
/// name (`ip`, `domain`, `indicator`…).
fn single_value_header(names: &[String]) -> bool {
    names.len() == 1 && guess_value(names).is_some()
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

/// The records of a CSV file with the line each starts on. A record the
/// `csv` crate cannot read is rejected with its line and skipped (the
/// reading stops if it cannot move past it); the others still load.
///
/// The file is read as a stream: what is kept is the current record and the
/// reader's buffer (see [`Tap`]), never the whole file. An I/O error ends
/// the rows; [`Rows::finish`] returns it.
pub(crate) struct Rows<R: Read> {
    rdr: csv::Reader<Tap<R>>,
    rec: ByteRecord,
    counter: LineCounter,
    first_line: u64,
    last_err_pos: Option<Option<u64>>,
    delim: u8,
    /// Fields of the first record (the header, where there is one).
    width: Option<usize>,
    /// Rows re-read one by one from a record an unbalanced quote broke
    /// (see [`Rows::recover`]), with their lines.
    pending: VecDeque<(ByteRecord, u64)>,
    io_error: Option<std::io::Error>,
}

impl<R: Read> Rows<R> {
    /// `first_line`: the line `data` starts on in its file; `comments`:
    /// `#` lines are comments.
    pub(crate) fn new(data: R, delim: u8, comments: bool, first_line: u64) -> Self {
        let log = Rc::new(RefCell::new(TapLog::default()));
        let rdr = ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delim)
            .comment(comments.then_some(b'#'))
            .from_reader(Tap {
                inner: data,
                log: Rc::clone(&log),
            });
        Self {
            rdr,
            rec: ByteRecord::new(),
            counter: LineCounter::new(log, comments),
            first_line,
            last_err_pos: None,
            delim,
            width: None,
            pending: VecDeque::new(),
            io_error: None,
        }
    }

    /// The I/O error that ended the rows early, if any.
    pub(crate) fn finish(self) -> std::io::Result<()> {
        self.io_error.map_or(Ok(()), Err)
    }

    /// Physical rows swallowed by a quoted field: an unbalanced `"` makes
    /// the `csv` crate read the following lines, up to the next `"`, as one
    /// field. A line inside a quoted field with as many delimiters as the
    /// first record (the header) has fields, less one, looks like a row, not
    /// like the text of a multi-line description; each such line is
    /// rejected with its own line number, so it is counted and can be found
    /// and fixed instead of silently vanishing.
    fn report_swallowed(&self, file: &str, line: u64, out: &mut ParsedFeed) {
        let Some(width) = self.width.filter(|w| *w >= 2) else {
            return;
        };
        let mut at = line;
        for field in self.rec.iter() {
            let mut parts = field.split(|b| *b == b'\n');
            parts.next();
            for part in parts {
                at += 1;
                if self.row_like(part, width) {
                    reject_swallowed(file, at, line, part, out);
                }
            }
        }
    }

    fn row_like(&self, line: &[u8], width: usize) -> bool {
        memchr::memchr_iter(self.delim, line).count() + 1 >= width
    }

    /// A record over several lines whose width is not the header's: a
    /// quote opened in it was not closed where it should have been, and
    /// the record ran on into the rows below. Where the rows themselves
    /// hold quoted fields (the CERT-FR CSV quotes its metadata column),
    /// those quotes end the runaway field in the middle of a row, so the
    /// rows are not whole inside one field and [`Rows::report_swallowed`]
    /// cannot see them. The record's own lines are therefore re-read one
    /// by one: its first line, the one with the unbalanced quote, is
    /// rejected; each following line that reads as a row of the header's
    /// width is loaded with its own line number, and one that looks like a
    /// row but does not read as one is rejected as swallowed.
    fn recover(&mut self, raw: &[u8], line: u64, width: usize, file: &str, out: &mut ParsedFeed) {
        let mut parts: Vec<&[u8]> = raw.split(|b| *b == b'\n').collect();
        while parts
            .last()
            .is_some_and(|l| l.iter().all(u8::is_ascii_whitespace))
        {
            parts.pop();
        }
        let last = line + parts.len().saturating_sub(1) as u64;
        let first = parts.first().copied().unwrap_or_default();
        out.reject(
            file,
            line,
            format!(
                "unbalanced `\"` on this line: the quoted field it opens runs on to line {last}, \
                 so the row is rejected and the lines after it are read one by one; fix the \
                 quote and re-add the feed"
            ),
            String::from_utf8_lossy(first).trim_end_matches('\r'),
        );
        for (i, part) in parts.iter().enumerate().skip(1) {
            let at = line + i as u64;
            let part = part.strip_suffix(b"\r").unwrap_or(part);
            if part.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let mut one = ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .delimiter(self.delim)
                .from_reader(part);
            let mut rec = ByteRecord::new();
            match one.read_byte_record(&mut rec) {
                Ok(true) if !width_differs(&rec, width) => self.pending.push_back((rec, at)),
                _ if self.row_like(part, width) => reject_swallowed(file, at, line, part, out),
                _ => {}
            }
        }
    }

    /// The next readable record and its line; `None` at the end.
    pub(crate) fn next(&mut self, file: &str, out: &mut ParsedFeed) -> Option<(&ByteRecord, u64)> {
        loop {
            if let Some((rec, line)) = self.pending.pop_front() {
                self.rec = rec;
                return Some((&self.rec, line));
            }
            match self.rdr.read_byte_record(&mut self.rec) {
                Ok(false) => return None,
                Ok(true) => {
                    let at = self.rec.position().map_or(0, |p| p.byte());
                    let line = self.first_line - 1 + self.counter.line_of(at);
                    match self.width {
                        None => self.width = Some(self.rec.len()),
                        Some(w) if self.rec.as_slice().contains(&b'\n') => {
                            if w >= 2 && width_differs(&self.rec, w) {
                                let end = self.rdr.position().byte();
                                let raw = self.counter.bytes_to(end);
                                self.recover(&raw, line, w, file, out);
                                continue;
                            }
                            self.report_swallowed(file, line, out);
                        }
                        Some(_) => {}
                    }
                    return Some((&self.rec, line));
                }
                Err(e) => {
                    if let csv::ErrorKind::Io(_) = e.kind() {
                        if let csv::ErrorKind::Io(io) = e.into_kind() {
                            self.io_error = Some(io);
                        }
                        return None;
                    }
                    let pos = e.position().map(|p| p.byte());
                    let line = self.first_line - 1 + self.counter.line_of(pos.unwrap_or(0));
                    out.reject(file, line, format!("unreadable CSV record: {e}"), "");
                    if self.last_err_pos == Some(pos) {
                        return None;
                    }
                    self.last_err_pos = Some(pos);
                }
            }
        }
    }
}

fn reject_swallowed(file: &str, at: u64, opened: u64, part: &[u8], out: &mut ParsedFeed) {
    let raw = String::from_utf8_lossy(part);
    out.reject(
        file,
        at,
        format!(
            "row swallowed by a quoted field opened on line {opened} (an unbalanced `\"`?); fix the quote and re-add the feed"
        ),
        raw.trim_end_matches('\r'),
    );
}

/// The bytes the `csv` reader has taken from the file and not yet been
/// counted: `buf` holds the file's bytes from offset `base` on.
#[derive(Default)]
pub(crate) struct TapLog {
    base: u64,
    buf: Vec<u8>,
}

impl TapLog {
    fn get(&self, at: u64) -> Option<u8> {
        let i = usize::try_from(at.checked_sub(self.base)?).ok()?;
        self.buf.get(i).copied()
    }

    fn end(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    fn slice(&self, from: u64, to: u64) -> &[u8] {
        let off = |at: u64| {
            usize::try_from(at.saturating_sub(self.base))
                .unwrap_or(usize::MAX)
                .min(self.buf.len())
        };
        self.buf.get(off(from)..off(to)).unwrap_or_default()
    }

    /// Forget the bytes before `at`; done in large steps so that the
    /// shifting costs O(1) per byte overall.
    fn forget_before(&mut self, at: u64) {
        let n = usize::try_from(at.saturating_sub(self.base))
            .unwrap_or(usize::MAX)
            .min(self.buf.len());
        if n >= 64 * 1024 && n * 2 >= self.buf.len() {
            self.buf.drain(..n);
            self.base += n as u64;
        }
    }
}

/// A reader that keeps a copy of what passes through it in a [`TapLog`],
/// for line numbers and for re-reading a broken record's lines: the `csv`
/// crate only gives byte offsets.
pub(crate) struct Tap<R> {
    inner: R,
    log: Rc<RefCell<TapLog>>,
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.log
            .borrow_mut()
            .buf
            .extend_from_slice(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
}

/// Every field of the record is empty or blank.
pub(crate) fn is_blank(rec: &ByteRecord) -> bool {
    rec.iter().all(|f| f.iter().all(u8::is_ascii_whitespace))
}

/// The record does not have the header's `width` fields (trailing empty
/// fields beyond it are allowed: spreadsheets write them).
pub(crate) fn width_differs(rec: &ByteRecord, width: usize) -> bool {
    let extra_empty = rec.len() > width
        && rec
            .iter()
            .skip(width)
            .all(|f| f.iter().all(u8::is_ascii_whitespace));
    rec.len() != width && !extra_empty
}

/// Reject a row whose width is not the header's (see [`width_differs`]),
/// with its line number and text; `true` when it was rejected. One message
/// for every CSV feed reader.
pub(crate) fn rejected_for_width(
    rec: &ByteRecord,
    width: usize,
    out: &mut ParsedFeed,
    file: &str,
    line: u64,
    raw: impl FnOnce() -> String,
) -> bool {
    if !width_differs(rec, width) {
        return false;
    }
    out.reject(
        file,
        line,
        format!("row has {} fields but the header has {width}", rec.len()),
        &raw(),
    );
    true
}

/// The record's text for messages, fields joined by `sep`.
pub(crate) fn raw_record(rec: &ByteRecord, sep: u8) -> String {
    rec.iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect::<Vec<_>>()
        .join(&(sep as char).to_string())
}

/// Line numbers for records read by the `csv` crate. Its positions point at
/// the end of the previous record (before a CRLF's `\n`, blank lines and
/// comment lines), so the real first line of a record is found here by
/// skipping those. Counting is incremental: O(n) over the whole file, on
/// the bytes the [`Tap`] saw; counted bytes are then forgotten.
pub(crate) struct LineCounter {
    log: Rc<RefCell<TapLog>>,
    pos: u64,
    line: u64,
    comments: bool,
}

impl LineCounter {
    pub(crate) fn new(log: Rc<RefCell<TapLog>>, comments: bool) -> Self {
        Self {
            log,
            pos: 0,
            line: 1,
            comments,
        }
    }

    /// The bytes from the start of the last record counted up to `end`.
    fn bytes_to(&self, end: u64) -> Vec<u8> {
        self.log.borrow().slice(self.pos, end).to_vec()
    }

    /// The 1-based line of the record the reader reports at byte `at`.
    pub(crate) fn line_of(&mut self, at: u64) -> u64 {
        let mut log = self.log.borrow_mut();
        let at = at.min(log.end());
        if at > self.pos {
            self.line += memchr::memchr_iter(b'\n', log.slice(self.pos, at)).count() as u64;
            self.pos = at;
        }
        let mut p = self.pos;
        while let Some(c) = log.get(p) {
            let line_start = p == 0 || log.get(p - 1) == Some(b'\n');
            if c == b'\r' {
                p += 1;
            } else if c == b'\n' {
                self.line += 1;
                p += 1;
            } else if self.comments && line_start && c == b'#' {
                match memchr::memchr(b'\n', log.slice(p, log.end())) {
                    Some(i) => {
                        p += i as u64 + 1;
                        self.line += 1;
                    }
                    None => p = log.end(),
                }
            } else {
                break;
            }
        }
        self.pos = p;
        // Keep the byte before `pos` (line starts look at it).
        log.forget_before(p.saturating_sub(1));
        self.line
    }
}

/// What comes before the data of a CSV file: blank and `#` lines.
struct Prelude {
    /// The first non-blank, non-comment line, with its line end; empty
    /// when the file has none.
    first: Vec<u8>,
    /// Its line number.
    data_line: u64,
    /// The last comment line before it (text after `#`).
    comment_header: Option<String>,
}

/// Read the prelude from the stream, up to and including the first data
/// line; the rest of the stream is left unread.
fn scan_prelude(r: &mut impl BufRead) -> std::io::Result<Prelude> {
    let mut no = 1u64;
    let mut comment_header = None;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if r.read_until(b'\n', &mut buf)? == 0 {
            return Ok(Prelude {
                first: Vec::new(),
                data_line: no,
                comment_header,
            });
        }
        let line = String::from_utf8_lossy(if no == 1 { strip_bom(&buf) } else { &buf });
        let t = line.trim();
        if t.is_empty() {
        } else if let Some(c) = t.strip_prefix('#') {
            comment_header = Some(c.trim().to_string());
        } else {
            let first = if no == 1 {
                strip_bom(&buf).to_vec()
            } else {
                buf
            };
            return Ok(Prelude {
                first,
                data_line: no,
                comment_header,
            });
        }
        no += 1;
    }
}

fn field(rec: &ByteRecord, i: Option<usize>) -> Option<String> {
    let b = rec.get(i?)?;
    let s = String::from_utf8_lossy(b);
    let s = s.trim();
    (!is_null(s)).then(|| s.to_string())
}

fn parse_header(bytes: &[u8], delim: u8) -> Vec<String> {
    let mut rdr = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delim)
        .from_reader(bytes);
    let mut rec = ByteRecord::new();
    match rdr.read_byte_record(&mut rec) {
        Ok(true) => rec
            .iter()
            .map(|f| norm_header(&String::from_utf8_lossy(f)))
            .collect(),
        _ => Vec::new(),
    }
}

/// Read a generic CSV (`delim` = `,`) or TSV (`\t`) feed; the mapping's
/// delimiter overrides `delim`.
pub fn read(
    b: &[u8],
    file: &str,
    opts: &ReadOptions,
    delim: u8,
    out: &mut ParsedFeed,
) -> Result<(), FeedError> {
    read_from(b, file, opts, delim, out)
}

/// [`read`] from a stream, record by record: memory is that of the
/// indicators kept and of one record, not of the file. The header is
/// taken from the first data line.
pub fn read_from(
    reader: impl BufRead,
    file: &str,
    opts: &ReadOptions,
    delim: u8,
    out: &mut ParsedFeed,
) -> Result<(), FeedError> {
    read_rows(reader, file, opts, delim, out, None)
}

/// [`read_from`] handing on what it reads as it goes, so that a CSV of
/// any size is read in the memory of one record and of a chunk of
/// indicators (see [`super::StreamSink`]): `sink` gets the indicators
/// (with the window policy applied), rejections and skips of every
/// [`super::STREAM_CHUNK`] indicators, in the order of the file, and
/// takes them. An error (a header that maps no value column, an I/O
/// error) can come after indicators were handed on.
pub fn read_stream(
    reader: impl BufRead,
    file: &str,
    opts: &ReadOptions,
    delim: u8,
    sink: super::StreamSink<'_>,
) -> Result<(), FeedError> {
    let mut out = ParsedFeed::default();
    let res = read_rows(reader, file, opts, delim, &mut out, Some(&mut *sink));
    super::hand_on(&mut out, opts, sink);
    res
}

/// [`read_from`] and [`read_stream`]: with a sink, what `out` gathered is
/// handed on every [`super::STREAM_CHUNK`] indicators.
fn read_rows(
    mut reader: impl BufRead,
    file: &str,
    opts: &ReadOptions,
    delim: u8,
    out: &mut ParsedFeed,
    mut sink: Option<super::StreamSink<'_>>,
) -> Result<(), FeedError> {
    let m = &opts.csv;
    let delim = m.delimiter.unwrap_or(delim);
    let fmt = if delim == b'\t' {
        FeedFormat::Tsv
    } else {
        FeedFormat::Csv
    };
    let io = |e: std::io::Error| FeedError::Io {
        file: file.to_string(),
        source: e,
    };
    let pre = scan_prelude(&mut reader).map_err(io)?;
    if pre.first.is_empty() {
        // Nothing but blanks and comments: an empty feed.
        return Ok(());
    }
    let data = &pre.first[..];
    let malformed = |reason: String| FeedError::Malformed {
        file: file.to_string(),
        format: fmt,
        reason,
    };

    // Header: the first data line, or a commented-out header just before it.
    let (cols, header_len, skip_first) = if m.no_header {
        let c = columns(m, None).map_err(malformed)?;
        (c, None, false)
    } else {
        let first = parse_header(data, delim);
        match columns(m, Some(&first)) {
            Ok(c) => (c, Some(first.len()), true),
            Err(e) => {
                let commented = pre
                    .comment_header
                    .as_deref()
                    .map(|h| parse_header(h.as_bytes(), delim))
                    .filter(|h| h.len() == parse_header(data, delim).len() && h.len() > 1);
                match commented.and_then(|h| columns(m, Some(&h)).ok().map(|c| (c, h.len()))) {
                    Some((c, n)) => (c, Some(n), false),
                    None => return Err(malformed(e)),
                }
            }
        }
    };
    let needed = cols.max() + 1;

    let mut rows = Rows::new(
        std::io::Cursor::new(&pre.first[..]).chain(reader),
        delim,
        true,
        pre.data_line,
    );
    let mut first = true;
    while let Some((rec, line)) = rows.next(file, out) {
        if first {
            first = false;
            if skip_first {
                continue;
            }
        }
        let raw = || raw_record(rec, if delim == b'\t' { b'\t' } else { b',' });
        if is_blank(rec) {
            continue;
        }
        if let Some(n) = header_len {
            if rejected_for_width(rec, n, out, file, line, raw) {
                continue;
            }
        } else if rec.len() < needed {
            out.reject(
                file,
                line,
                format!("row has {} fields but column {needed} is mapped", rec.len()),
                &raw(),
            );
            continue;
        }
        read_row(rec, &cols, file, line, opts, out, &raw);
        if let Some(sink) = sink.as_deref_mut()
            && out.indicators.len() >= super::STREAM_CHUNK
        {
            super::hand_on(out, opts, sink);
        }
    }
    rows.finish().map_err(io)
}

fn date(rec: &ByteRecord, i: Option<usize>, what: &str) -> Result<Option<jiff::Timestamp>, String> {
    match field(rec, i) {
        None => Ok(None),
        Some(s) => parse_timestamp(&s)
            .map(Some)
            .ok_or_else(|| format!("{what} `{}` is not a date", crate::model::excerpt(&s))),
    }
}

fn read_row(
    rec: &ByteRecord,
    cols: &Columns,
    file: &str,
    line: u64,
    opts: &ReadOptions,
    out: &mut ParsedFeed,
    raw: &dyn Fn() -> String,
) {
    let Some(value) = field(rec, Some(cols.value)) else {
        out.reject(file, line, "the value column is empty", &raw());
        return;
    };
    let kind = field(rec, cols.kind);
    let tv = match parse_typed(&value, kind.as_deref(), cols.value_hint) {
        Typed::Ok(tv) => tv,
        Typed::Skip(reason) => {
            out.skip(file, line, reason);
            return;
        }
        Typed::Reject(reason) => {
            out.reject(file, line, reason, &raw());
            return;
        }
    };
    let dates = (|| -> Result<_, String> {
        Ok((
            date(rec, cols.first_seen, "first seen")?,
            date(rec, cols.last_seen, "last seen")?,
            date(rec, cols.valid_from, "valid from")?,
            date(rec, cols.valid_until, "valid until")?,
        ))
    })();
    let (first_seen, last_seen, valid_from, valid_until) = match dates {
        Ok(d) => d,
        Err(e) => {
            out.reject(file, line, e, &raw());
            return;
        }
    };
    let mut tags = Tags::default();
    if let Some(t) = field(rec, cols.tags) {
        for tag in split_tags(&t) {
            add_tag(&mut tags, tag);
        }
    }
    for (col, list) in [
        (cols.actors, &mut tags.actors),
        (cols.campaigns, &mut tags.campaigns),
        (cols.roles, &mut tags.roles),
    ] {
        if let Some(t) = field(rec, col) {
            for v in split_tags(&t) {
                Tags::push_unique(list, unquote(v));
            }
        }
    }
    if let Some(t) = field(rec, cols.tlp).and_then(|t| norm_tlp(&t)) {
        tags.tlp = Some(t);
    }
    for o in &tv.other {
        Tags::push_unique(&mut tags.other, o.as_str());
    }
    let confidence = field(rec, cols.confidence).and_then(|c| parse_confidence(&c));
    let description = field(rec, cols.description).or(tv.description);
    for v in tv.values {
        let mut ind = Indicator::new(v, provenance(opts, file, line));
        ind.first_seen = first_seen;
        ind.last_seen = last_seen;
        ind.valid_from = valid_from;
        ind.valid_until = valid_until;
        ind.confidence = confidence;
        ind.tags = tags.clone();
        ind.description = description.clone();
        out.indicators.push(ind);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names() {
        assert_eq!(map_type("ip-dst"), Some(MappedType::Hint(TypeHint::Ip)));
        assert_eq!(map_type("IPv4-Addr"), Some(MappedType::Hint(TypeHint::Ip)));
        assert_eq!(
            map_type("FileHash-SHA256"),
            Some(MappedType::Hint(TypeHint::Hash(Some(HashAlgo::Sha256))))
        );
        assert_eq!(map_type("mutex"), Some(MappedType::Unmatchable));
        assert_eq!(map_type("whatever"), None);
        assert!(matches!(
            map_type("ip-dst|port"),
            Some(MappedType::Composite(..))
        ));
    }

    #[test]
    fn tags_are_classified() {
        let mut t = Tags::default();
        for tag in split_tags(
            r#"cossi:TLP="white", misp-galaxy:threat-actor="APT31", cossi:threat_category="APT", tlp:amber, foo"#,
        ) {
            add_tag(&mut t, tag);
        }
        assert_eq!(t.tlp.as_deref(), Some("amber"));
        assert_eq!(t.actors, vec!["APT31"]);
        assert_eq!(t.other, vec!["cossi:threat_category=APT", "foo"]);
    }

    #[test]
    fn confidences() {
        assert_eq!(parse_confidence("75"), Some(75));
        assert_eq!(parse_confidence("0.8"), Some(80));
        assert_eq!(parse_confidence("High"), Some(85));
        assert_eq!(parse_confidence("Bonne"), Some(80));
        assert_eq!(parse_confidence("250"), None);
        assert_eq!(parse_confidence("-3"), None);
        assert_eq!(parse_confidence("NaN"), None);
    }

    #[test]
    fn detection() {
        assert_eq!(
            looks_like("ip,first_seen,comment\n1.2.3.4,2024-01-01,x\n"),
            Some(FeedFormat::Csv)
        );
        assert_eq!(
            looks_like("indicator\ttype\n1.2.3.4\tipv4\n"),
            Some(FeedFormat::Tsv)
        );
        assert_eq!(
            looks_like("# id,dateadded,url,url_status\n1,2024-01-01,http://a.example/,online\n"),
            Some(FeedFormat::Csv)
        );
        assert_eq!(looks_like("ip,comment\n1.2.3.4,a,b\n"), None);
        assert_eq!(looks_like("hello, world\nfoo, bar\n"), None);
        assert_eq!(looks_like("1.2.3.4\n5.6.7.8\n"), None);
    }
}
