//! Turning indicators into table rows and back.
//!
//! The value is stored as its normalised text together with its fine type
//! name (`ipv4`, `range`, `sha256`, `cert-sha1`…), which is enough to rebuild
//! the exact [`IndicatorValue`]. Instants are fixed-width RFC 3339 text (see
//! [`ts_text`]).

use std::borrow::Cow;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use jiff::Timestamp;
use orbwatch_intel::{HashAlgo, Indicator, IndicatorValue, Tags};

/// Format an instant the way the store keeps it: RFC 3339 UTC with nine
/// fractional digits, so that text order is time order.
pub fn ts_text(t: Timestamp) -> String {
    format!("{t:.9}")
}

/// [`ts_text`] for optional instants.
pub fn opt_ts(t: Option<Timestamp>) -> Option<String> {
    t.map(ts_text)
}

/// Parse an instant written by [`ts_text`] (or any RFC 3339 text).
pub fn parse_ts(s: &str) -> Result<Timestamp, String> {
    s.parse::<Timestamp>()
        .map_err(|e| format!("`{s}` is not an RFC 3339 instant ({e})"))
}

/// Parse an optional instant column.
pub fn parse_opt_ts(s: Option<String>) -> Result<Option<Timestamp>, String> {
    s.as_deref().map(parse_ts).transpose()
}

/// Rebuild a value from its type name and text.
pub fn decode_value(type_name: &str, value: &str) -> Result<IndicatorValue, String> {
    let bad = || format!("`{value}` is not a valid {type_name} value");
    Ok(match type_name {
        "ipv4" | "ipv6" => IndicatorValue::Ip(value.parse::<IpAddr>().map_err(|_| bad())?),
        "cidr" => IndicatorValue::Cidr(value.parse::<IpNet>().map_err(|_| bad())?),
        "range" => {
            let (a, b) = value.split_once('-').ok_or_else(bad)?;
            IndicatorValue::Range {
                first: a.parse().map_err(|_| bad())?,
                last: b.parse().map_err(|_| bad())?,
            }
        }
        "domain" => IndicatorValue::Domain(value.to_string()),
        "url" => IndicatorValue::Url(value.to_string()),
        other => {
            if let Some(algo) = other.strip_prefix("cert-") {
                IndicatorValue::CertFingerprint {
                    algo: HashAlgo::from_name(algo)
                        .ok_or_else(|| format!("unknown type `{type_name}`"))?,
                    hex: value.to_string(),
                }
            } else {
                IndicatorValue::Hash {
                    algo: HashAlgo::from_name(other)
                        .ok_or_else(|| format!("unknown type `{type_name}`"))?,
                    hex: value.to_string(),
                }
            }
        }
    })
}

/// The columns of one indicator row, ready to bind. Text the indicator
/// already holds is borrowed, to keep million-row imports light.
pub(crate) struct Row<'a> {
    pub kind: &'static str,
    pub type_name: Cow<'static, str>,
    pub value: String,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub published: Option<String>,
    pub confidence: Option<i64>,
    pub tags_json: Option<String>,
    pub description: Option<&'a str>,
    pub file: &'a str,
    pub line: i64,
    pub record_id: Option<&'a str>,
    pub meta_hash: i64,
}

/// The owned columns of a [`Row`] (see [`Row::into_parts`]). An import
/// moves one of these from thread to thread for every row, so the columns
/// a bare row of a block list leaves empty sit behind one pointer: 80
/// bytes a row instead of 230.
pub(crate) struct RowParts {
    kind: &'static str,
    type_name: Cow<'static, str>,
    value: String,
    meta_hash: i64,
    /// `None` when all of them are.
    optional: Option<Box<OptionalColumns>>,
}

/// The optional columns of [`RowParts`].
#[derive(Default)]
struct OptionalColumns {
    valid_from: Option<String>,
    valid_until: Option<String>,
    first_seen: Option<String>,
    last_seen: Option<String>,
    published: Option<String>,
    confidence: Option<i64>,
    tags_json: Option<String>,
}

/// The columns of a row that [`Row`] borrows from its indicator, owned:
/// an import hands rows from the thread that prepares them to the one that
/// writes them, and carrying these instead of the whole indicator (about
/// 450 bytes, with two strings of its own) shortens what each row moves and
/// frees the indicator where it was prepared.
pub(crate) struct RowProvenance {
    /// Shared by consecutive rows from the same file (see
    /// [`RowProvenance::of`]): nearly every row of a feed.
    pub file: std::sync::Arc<str>,
    pub line: i64,
    /// The description and record id, `None` when both are.
    pub texts: Option<Box<(Option<String>, Option<String>)>>,
}

/// The `line` column of `ind`'s row. SQLite integers are signed; a line
/// number past `i64::MAX` cannot occur in a real file, and is stored as
/// that bound rather than refused.
fn line_column(ind: &Indicator) -> i64 {
    i64::try_from(ind.provenance.line).unwrap_or(i64::MAX)
}

impl RowProvenance {
    /// `ind`'s provenance, reusing `last`'s file when it is the same.
    pub fn of(ind: &Indicator, last: &mut Option<std::sync::Arc<str>>) -> RowProvenance {
        let file = match last {
            Some(f) if **f == *ind.provenance.file => f.clone(),
            _ => {
                let f: std::sync::Arc<str> = ind.provenance.file.as_str().into();
                *last = Some(f.clone());
                f
            }
        };
        let texts = (ind.description.is_some() || ind.provenance.record_id.is_some())
            .then(|| Box::new((ind.description.clone(), ind.provenance.record_id.clone())));
        RowProvenance {
            file,
            line: line_column(ind),
            texts,
        }
    }
}

impl<'a> Row<'a> {
    pub fn from_indicator(ind: &'a Indicator) -> Row<'a> {
        let tags_json = if ind.tags == Tags::default() {
            None
        } else {
            // Serialising plain strings and vectors cannot fail.
            serde_json::to_string(&ind.tags).ok()
        };
        let mut row = Row {
            kind: ind.value.kind().as_str(),
            type_name: type_name_of(&ind.value),
            value: value_text(&ind.value),
            valid_from: opt_ts(ind.valid_from),
            valid_until: opt_ts(ind.valid_until),
            first_seen: opt_ts(ind.first_seen),
            last_seen: opt_ts(ind.last_seen),
            published: opt_ts(ind.published),
            confidence: ind.confidence.map(i64::from),
            tags_json,
            description: ind.description.as_deref(),
            file: &ind.provenance.file,
            line: line_column(ind),
            record_id: ind.provenance.record_id.as_deref(),
            meta_hash: 0,
        };
        row.meta_hash = row.compute_meta_hash();
        row
    }

    /// The columns computed from the indicator, without the ones borrowed
    /// from it: an import computes them on a thread of their own
    /// ([`Row::from_parts`] puts the row back together on the writing one).
    pub fn into_parts(self) -> RowParts {
        let optional = (self.valid_from.is_some()
            || self.valid_until.is_some()
            || self.first_seen.is_some()
            || self.last_seen.is_some()
            || self.published.is_some()
            || self.confidence.is_some()
            || self.tags_json.is_some())
        .then(|| {
            Box::new(OptionalColumns {
                valid_from: self.valid_from,
                valid_until: self.valid_until,
                first_seen: self.first_seen,
                last_seen: self.last_seen,
                published: self.published,
                confidence: self.confidence,
                tags_json: self.tags_json,
            })
        });
        RowParts {
            kind: self.kind,
            type_name: self.type_name,
            value: self.value,
            meta_hash: self.meta_hash,
            optional,
        }
    }

    /// The row put back together from the parts [`Row::into_parts`] took
    /// from `Row::from_indicator(ind)` and `ind`'s [`RowProvenance`].
    pub fn from_parts(p: RowParts, prov: &'a RowProvenance) -> Row<'a> {
        let o = p.optional.map_or_else(OptionalColumns::default, |b| *b);
        let (description, record_id) = match &prov.texts {
            Some(t) => (t.0.as_deref(), t.1.as_deref()),
            None => (None, None),
        };
        Row {
            kind: p.kind,
            type_name: p.type_name,
            value: p.value,
            valid_from: o.valid_from,
            valid_until: o.valid_until,
            first_seen: o.first_seen,
            last_seen: o.last_seen,
            published: o.published,
            confidence: o.confidence,
            tags_json: o.tags_json,
            description,
            file: &prov.file,
            line: prov.line,
            record_id,
            meta_hash: p.meta_hash,
        }
    }

    /// Whether the row has none of the optional columns (see
    /// `INSERT_BARE_INDICATOR`).
    pub fn is_bare(&self) -> bool {
        self.valid_from.is_none()
            && self.valid_until.is_none()
            && self.first_seen.is_none()
            && self.last_seen.is_none()
            && self.published.is_none()
            && self.confidence.is_none()
            && self.tags_json.is_none()
            && self.description.is_none()
            && self.record_id.is_none()
    }

    /// A hash of [`Row::key`] under `state`, fed the key's bytes without
    /// building the key: an import hashes every row, and a first version
    /// never needs the key text itself.
    pub fn key_hash(&self, state: &ahash::RandomState) -> u64 {
        let mut h = state.build_hasher();
        h.write(self.type_name.as_bytes());
        h.write_u8(0x1f);
        h.write(self.value.as_bytes());
        h.write_u8(0x1f);
        h.write(self.valid_from.as_deref().unwrap_or("").as_bytes());
        h.write_u8(0x1f);
        h.write(self.valid_until.as_deref().unwrap_or("").as_bytes());
        h.finish()
    }

    /// The identity of a row within a feed: type, value and window.
    pub fn key(&self) -> String {
        identity_key(
            &self.type_name,
            &self.value,
            self.valid_from.as_deref(),
            self.valid_until.as_deref(),
        )
    }

    fn compute_meta_hash(&self) -> i64 {
        let mut h = Fnv::new();
        for part in [
            self.first_seen.as_deref(),
            self.last_seen.as_deref(),
            self.published.as_deref(),
            self.tags_json.as_deref(),
            self.description,
            Some(self.file),
            self.record_id,
        ] {
            match part {
                Some(s) => {
                    h.write(&[1]);
                    h.write(s.as_bytes());
                }
                None => h.write(&[0]),
            }
            h.write(&[0x1f]);
        }
        h.write(&self.confidence.unwrap_or(-1).to_le_bytes());
        h.write(&self.line.to_le_bytes());
        h.finish() as i64
    }
}

/// The type name of a value ([`IndicatorValue::type_name`]) without an
/// allocation for every type but certificate fingerprints.
fn type_name_of(v: &IndicatorValue) -> Cow<'static, str> {
    match v {
        IndicatorValue::Range { .. } => Cow::Borrowed("range"),
        IndicatorValue::Hash { algo, .. } => Cow::Borrowed(algo.as_str()),
        IndicatorValue::CertFingerprint { .. } => Cow::Owned(v.type_name()),
        other => Cow::Borrowed(other.kind().as_str()),
    }
}

/// The stored text of a value: its `Display` form. IPv4 addresses and
/// blocks, nearly every row of a large block list, are written here by
/// hand: through `fmt` they cost 7 % of `feed add`'s instructions.
pub(crate) fn value_text(v: &IndicatorValue) -> String {
    match v {
        IndicatorValue::Ip(IpAddr::V4(a)) => {
            let mut s = String::with_capacity(15);
            push_ipv4(&mut s, *a);
            s
        }
        IndicatorValue::Cidr(IpNet::V4(n)) => {
            let mut s = String::with_capacity(18);
            push_ipv4(&mut s, n.addr());
            s.push('/');
            push_decimal(&mut s, n.prefix_len());
            s
        }
        other => other.to_string(),
    }
}

fn push_ipv4(s: &mut String, a: Ipv4Addr) {
    let [a, b, c, d] = a.octets();
    push_decimal(s, a);
    s.push('.');
    push_decimal(s, b);
    s.push('.');
    push_decimal(s, c);
    s.push('.');
    push_decimal(s, d);
}

fn push_decimal(s: &mut String, n: u8) {
    if n >= 100 {
        s.push(char::from(b'0' + n / 100));
    }
    if n >= 10 {
        s.push(char::from(b'0' + n / 10 % 10));
    }
    s.push(char::from(b'0' + n % 10));
}

/// The identity of an indicator within a feed: the same value with two
/// different windows is two indicators.
pub(crate) fn identity_key(
    type_name: &str,
    value: &str,
    valid_from: Option<&str>,
    valid_until: Option<&str>,
) -> String {
    let mut k = String::with_capacity(type_name.len() + value.len() + 64);
    k.push_str(type_name);
    k.push('\u{1f}');
    k.push_str(value);
    k.push('\u{1f}');
    k.push_str(valid_from.unwrap_or(""));
    k.push('\u{1f}');
    k.push_str(valid_until.unwrap_or(""));
    k
}

/// 64-bit FNV-1a: stable across builds and platforms, which a store needs
/// (std's hasher is randomly seeded).
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        let values = [
            IndicatorValue::Ip("1.2.3.4".parse().unwrap()),
            IndicatorValue::Ip("2001:db8::1".parse().unwrap()),
            IndicatorValue::Cidr("10.0.0.0/8".parse().unwrap()),
            IndicatorValue::Cidr("2001:db8::/32".parse().unwrap()),
            IndicatorValue::Range {
                first: "1.2.3.4".parse().unwrap(),
                last: "1.2.3.9".parse().unwrap(),
            },
            IndicatorValue::Range {
                first: "2001:db8::1".parse().unwrap(),
                last: "2001:db8::9".parse().unwrap(),
            },
            IndicatorValue::Domain("evil.example".into()),
            IndicatorValue::Url("http://evil.example/a-b".into()),
            IndicatorValue::Hash {
                algo: HashAlgo::Sha256,
                hex: "ab".repeat(32),
            },
            IndicatorValue::CertFingerprint {
                algo: HashAlgo::Sha1,
                hex: "cd".repeat(20),
            },
        ];
        for v in values {
            let back = decode_value(&v.type_name(), &v.to_string()).unwrap();
            assert_eq!(back, v);
        }
        assert!(decode_value("ipv4", "nope").is_err());
        assert!(decode_value("crc32", "abcd").is_err());
    }

    #[test]
    fn value_text_is_the_display_form() {
        let mut values: Vec<IndicatorValue> = Vec::new();
        for a in [0u8, 1, 9, 10, 99, 100, 199, 200, 255] {
            for b in [0u8, 7, 42, 255] {
                values.push(IndicatorValue::Ip(IpAddr::V4(Ipv4Addr::new(a, b, a, b))));
                for p in [0u8, 8, 16, 24, 32] {
                    let net = ipnet::Ipv4Net::new(Ipv4Addr::new(a, b, 0, 0), p).unwrap();
                    values.push(IndicatorValue::Cidr(IpNet::V4(net)));
                }
            }
        }
        values.push(IndicatorValue::Ip("2001:db8::1".parse().unwrap()));
        values.push(IndicatorValue::Cidr("2001:db8::/32".parse().unwrap()));
        values.push(IndicatorValue::Domain("evil.example".into()));
        for v in &values {
            assert_eq!(value_text(v), v.to_string());
            assert_eq!(type_name_of(v), v.type_name());
        }
        let cert = IndicatorValue::CertFingerprint {
            algo: HashAlgo::Sha1,
            hex: "cd".repeat(20),
        };
        assert_eq!(type_name_of(&cert), "cert-sha1");
        let hash = IndicatorValue::Hash {
            algo: HashAlgo::Md5,
            hex: "ab".repeat(16),
        };
        assert_eq!(type_name_of(&hash), hash.type_name());
    }

    #[test]
    fn instants_sort_as_text() {
        let a: Timestamp = "2021-07-20T00:00:00Z".parse().unwrap();
        let b: Timestamp = "2021-07-20T00:00:00.5Z".parse().unwrap();
        assert!(ts_text(a) < ts_text(b));
        assert_eq!(parse_ts(&ts_text(b)).unwrap(), b);
    }
}
