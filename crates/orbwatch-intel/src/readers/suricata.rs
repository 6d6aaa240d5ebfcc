//! Suricata IP reputation (`iprep`) and dataset files.
//!
//! Sites that run Suricata often keep their block lists in these two forms,
//! so orbwatch reads them to hunt past logs with the same lists.
//!
//! - **iprep**: `ip,category,score` per line; the address may be a CIDR. The
//!   score (0–127) becomes a confidence scaled to 0–100; the category id is
//!   kept as the tag `category=N`. `#` starts a comment.
//! - **dataset**: one value per line: IPv4/IPv6 addresses, MD5/SHA-256 hex,
//!   or base64-encoded strings (type `string`), which are decoded and read as
//!   a domain or URL where they are one. A `,rep` suffix (datarep) is
//!   ignored.

use super::plain::{LineReader, fast_ipv4, provenance, text};
use super::{ParsedFeed, ReadOptions};
use crate::model::{HashAlgo, Indicator, IndicatorValue};
use crate::value::{TypeHint, parse_value};

/// One parsed iprep line.
struct Iprep {
    value: IndicatorValue,
    category: u8,
    score: u8,
}

fn parse_iprep(line: &str) -> Result<Iprep, String> {
    let mut parts = line.split(',').map(str::trim);
    let (Some(ip), Some(cat), Some(score), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("an iprep line is `ip,category,score` (three fields)".into());
    };
    let value = match fast_ipv4(ip) {
        Some(v) => v,
        None => parse_value(ip, Some(TypeHint::Ip))?,
    };
    if matches!(value, IndicatorValue::Range { .. }) {
        return Err(format!(
            "`{ip}`: iprep takes an address or a CIDR, not a range"
        ));
    }
    let category: u8 = cat
        .parse()
        .map_err(|_| format!("category `{cat}` is not a number from 0 to 255"))?;
    let score: u8 = score
        .parse()
        .ok()
        .filter(|s| *s <= 127)
        .ok_or_else(|| format!("score `{score}` is not a number from 0 to 127"))?;
    Ok(Iprep {
        value,
        category,
        score,
    })
}

/// Scale an iprep score (0–127) to a confidence (0–100).
fn score_confidence(score: u8) -> u8 {
    ((u32::from(score) * 100 + 63) / 127).min(100) as u8
}

/// The head is iprep when every one of the first (up to 10) non-comment
/// lines is `ip,category,score`.
pub fn looks_like_iprep(head: &str) -> bool {
    let mut seen = 0;
    let mut pieces = head.split('\n').peekable();
    while let Some(l) = pieces.next() {
        if pieces.peek().is_none() && !head.ends_with('\n') && seen > 0 {
            break; // a cut-off last line
        }
        let t = l.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if parse_iprep(t).is_err() {
            return false;
        }
        seen += 1;
        if seen >= 10 {
            break;
        }
    }
    seen > 0
}

/// Read a Suricata iprep file.
pub fn read_iprep(b: &[u8], file: &str, opts: &ReadOptions, out: &mut ParsedFeed) {
    // A slice cannot fail to read.
    let _ = read_iprep_from(b, file, opts, out);
}

/// [read_iprep] from a stream, line by line.
pub fn read_iprep_from(
    reader: impl std::io::BufRead,
    file: &str,
    opts: &ReadOptions,
    out: &mut ParsedFeed,
) -> std::io::Result<()> {
    read_iprep_into(reader, file, opts, out, None)
}

/// [`read_iprep_from`], handing on full chunks to `sink` as it goes (see
/// [`super::read_lines_stream`]).
pub(crate) fn read_iprep_into(
    reader: impl std::io::BufRead,
    file: &str,
    opts: &ReadOptions,
    out: &mut ParsedFeed,
    mut sink: Option<super::StreamSink<'_>>,
) -> std::io::Result<()> {
    let mut lines = LineReader::new(reader);
    while let Some((no, raw)) = lines.next_line()? {
        super::hand_on_full(out, opts, &mut sink);
        let line = text(raw);
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        match parse_iprep(t) {
            Ok(r) => {
                let mut ind = Indicator::new(r.value, provenance(opts, file, no));
                ind.confidence = Some(score_confidence(r.score));
                ind.tags.other.push(format!("category={}", r.category));
                out.indicators.push(ind);
            }
            Err(e) => out.reject(file, no, e, t),
        }
    }
    Ok(())
}

/// Decode standard or URL-safe base64, padded or not. `None` when the text
/// is not base64.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    }
    let b = s.trim().as_bytes();
    let body = match b.iter().position(|&c| c == b'=') {
        Some(i) => {
            // Only padding may follow the first `=`, at most two, up to a
            // multiple of four.
            let pad = &b[i..];
            if pad.len() > 2 || pad.iter().any(|&c| c != b'=') || !b.len().is_multiple_of(4) {
                return None;
            }
            &b[..i]
        }
        None => b,
    };
    if body.is_empty() || body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for chunk in body.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    Some(out)
}

enum DatasetEntry {
    Value(IndicatorValue),
    Skip(String),
    Reject(String),
}

fn parse_dataset(v: &str) -> DatasetEntry {
    if let Ok(ip) = v.parse::<std::net::IpAddr>() {
        return DatasetEntry::Value(IndicatorValue::Ip(ip));
    }
    if v.bytes().all(|b| b.is_ascii_hexdigit())
        && let Some(algo) = HashAlgo::from_hex_len(v.len())
    {
        return DatasetEntry::Value(IndicatorValue::Hash {
            algo,
            hex: v.to_ascii_lowercase(),
        });
    }
    let Some(bytes) = base64_decode(v) else {
        return DatasetEntry::Reject(format!(
            "`{}` is not an address, an MD5/SHA-256 hash or base64",
            crate::model::excerpt(v)
        ));
    };
    let Ok(s) = String::from_utf8(bytes) else {
        return DatasetEntry::Skip("base64 string does not decode to text".into());
    };
    let s = s.trim();
    let parsed = if s.contains("://") {
        parse_value(s, Some(TypeHint::Url))
    } else {
        parse_value(s, Some(TypeHint::Domain))
    };
    match parsed {
        Ok(v) => DatasetEntry::Value(v),
        Err(_) => DatasetEntry::Skip(format!(
            "string `{}` is not a domain or URL",
            crate::model::excerpt(s)
        )),
    }
}

/// Read a Suricata dataset (or datarep) file.
pub fn read_dataset(b: &[u8], file: &str, opts: &ReadOptions, out: &mut ParsedFeed) {
    // A slice cannot fail to read.
    let _ = read_dataset_from(b, file, opts, out);
}

/// [read_dataset] from a stream, line by line.
pub fn read_dataset_from(
    reader: impl std::io::BufRead,
    file: &str,
    opts: &ReadOptions,
    out: &mut ParsedFeed,
) -> std::io::Result<()> {
    read_dataset_into(reader, file, opts, out, None)
}

/// [`read_dataset_from`], handing on full chunks to `sink` as it goes (see
/// [`super::read_lines_stream`]).
pub(crate) fn read_dataset_into(
    reader: impl std::io::BufRead,
    file: &str,
    opts: &ReadOptions,
    out: &mut ParsedFeed,
    mut sink: Option<super::StreamSink<'_>>,
) -> std::io::Result<()> {
    let mut lines = LineReader::new(reader);
    while let Some((no, raw)) = lines.next_line()? {
        super::hand_on_full(out, opts, &mut sink);
        let line = text(raw);
        let t = line.trim();
        // Base64 may start with `/`: only `#` starts a comment here.
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        // datarep: `value,reputation`.
        let v = t.split(',').next().unwrap_or(t).trim();
        match parse_dataset(v) {
            DatasetEntry::Value(val) => {
                out.indicators
                    .push(Indicator::new(val, provenance(opts, file, no)));
            }
            DatasetEntry::Skip(reason) => out.skip(file, no, reason),
            DatasetEntry::Reject(reason) => out.reject(file, no, reason, t),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64() {
        assert_eq!(base64_decode("ZXhhbXBsZS5jb20=").unwrap(), b"example.com");
        assert_eq!(base64_decode("ZXhhbXBsZS5jb20").unwrap(), b"example.com");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert_eq!(base64_decode("YWI=").unwrap(), b"ab");
        assert_eq!(base64_decode("YWJj").unwrap(), b"abc");
        assert!(base64_decode("Y").is_none());
        assert!(base64_decode("YQ=a").is_none());
        assert!(base64_decode("Y===").is_none());
        assert!(base64_decode("a b=").is_none());
        assert!(base64_decode("").is_none());
    }

    #[test]
    fn scores() {
        assert_eq!(score_confidence(0), 0);
        assert_eq!(score_confidence(127), 100);
        assert_eq!(score_confidence(64), 50);
    }

    #[test]
    fn iprep_detection() {
        assert!(looks_like_iprep("# c\n1.2.3.4,1,100\n10.0.0.0/8,2,50\n"));
        assert!(!looks_like_iprep("1.2.3.4,1,200\n"));
        assert!(!looks_like_iprep("ip,category,score\n1.2.3.4,1,2\n"));
        assert!(!looks_like_iprep(""));
    }
}
