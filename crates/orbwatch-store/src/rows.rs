//! Turning indicators into table rows and back.
//!
//! The value is stored as its normalised text together with its fine type
//! name (`ipv4`, `range`, `sha256`, `cert-sha1`…), which is enough to rebuild
//! the exact [`IndicatorValue`]. Instants are fixed-width RFC 3339 text (see
//! [`ts_text`]).

use std::net::IpAddr;

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
    pub type_name: String,
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
            type_name: ind.value.type_name(),
            value: ind.value.to_string(),
            valid_from: opt_ts(ind.valid_from),
            valid_until: opt_ts(ind.valid_until),
            first_seen: opt_ts(ind.first_seen),
            last_seen: opt_ts(ind.last_seen),
            published: opt_ts(ind.published),
            confidence: ind.confidence.map(i64::from),
            tags_json,
            description: ind.description.as_deref(),
            file: &ind.provenance.file,
            line: i64::try_from(ind.provenance.line).unwrap_or(i64::MAX),
            record_id: ind.provenance.record_id.as_deref(),
            meta_hash: 0,
        };
        row.meta_hash = row.compute_meta_hash();
        row
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
    fn instants_sort_as_text() {
        let a: Timestamp = "2021-07-20T00:00:00Z".parse().unwrap();
        let b: Timestamp = "2021-07-20T00:00:00.5Z".parse().unwrap();
        assert!(ts_text(a) < ts_text(b));
        assert_eq!(parse_ts(&ts_text(b)).unwrap(), b);
    }
}
