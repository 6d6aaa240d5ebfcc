//! Last resort for lines no other decoder understands: every IPv4/IPv6
//! token in the line, with no direction, and the time if the line starts
//! with an ISO 8601 / RFC 3339 timestamp.
//!
//! This module also holds the small calendar helpers the other decoders
//! share (civil time to [`Timestamp`] without a time zone database, ISO 8601
//! prefixes, month abbreviations): they are hand-written because they run
//! once per record on gigabytes of logs.

use std::net::IpAddr;

use jiff::Timestamp;

use super::zeek_fields::normalize_ip;
use super::{DecodeError, Decoded, Decoder, DecoderConfig, DecoderInfo};
use crate::ipscan;
use crate::model::{Event, EventKind};

/// Registry entry.
pub const INFO: DecoderInfo = DecoderInfo {
    name: "text",
    description: "Last resort: every IPv4/IPv6 token, no direction",
    sniff: |_lines| 1,
    make: |_cfg: &DecoderConfig| Box::new(TextDecoder),
};

/// The text decoder: stateless.
#[derive(Clone)]
struct TextDecoder;

impl Decoder for TextDecoder {
    fn name(&self) -> &'static str {
        "text"
    }

    fn decode(&mut self, record: &[u8]) -> Result<Decoded, DecodeError> {
        if record.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(Decoded::Skip);
        }
        let mut ev = Event::new(EventKind::Other);
        let start = record
            .iter()
            .position(|b| !b.is_ascii_whitespace() && *b != b'[')
            .unwrap_or(0);
        ev.time = parse_iso8601_prefix(&record[start..]).map(|(t, _)| t);
        ipscan::for_each_ip(record, |ip: IpAddr, _, _| {
            let ip = normalize_ip(ip);
            if !ev.other_ips.contains(&ip) {
                ev.other_ips.push(ip);
            }
        });
        Ok(Decoded::Event(Box::new(ev)))
    }

    fn fork(&self) -> Box<dyn Decoder> {
        Box::new(self.clone())
    }
}

/// Days since 1970-01-01 of a civil date (shared with the syslog decoder).
pub(crate) use super::syslog::timestamp::days_from_civil;

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// A civil date and time at UTC offset `offset_secs` (local = UTC + offset)
/// as an instant. Returns `None` for impossible dates. A leap second (`:60`)
/// is read as `:59`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn civil_to_timestamp(
    y: i64,
    mo: u32,
    d: u32,
    h: u32,
    mi: u32,
    s: u32,
    nanos: u32,
    offset_secs: i64,
) -> Option<Timestamp> {
    if !(1..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || d == 0
        || d > days_in_month(y, mo)
        || h > 23
        || mi > 59
        || s > 60
        || nanos >= 1_000_000_000
    {
        return None;
    }
    let s = s.min(59);
    let secs = days_from_civil(y, mo, d) * 86_400
        + i64::from(h) * 3600
        + i64::from(mi) * 60
        + i64::from(s)
        - offset_secs;
    Timestamp::new(secs, nanos as i32).ok()
}

/// Month number of an English abbreviation (`Jan`…`Dec`, any case).
pub(crate) fn month_from_abbr(b: &[u8]) -> Option<u32> {
    super::syslog::timestamp::month_from_abbr(b).map(u32::from)
}

/// Read exactly `n` ASCII digits at `b[i..]`.
pub(crate) fn digits(b: &[u8], i: usize, n: usize) -> Option<u32> {
    let s = b.get(i..i + n)?;
    let mut v = 0u32;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// A fraction of a second after the dot: up to 9 digits are kept, more are
/// read and dropped. Returns (nanoseconds, bytes consumed).
pub(crate) fn fraction(b: &[u8]) -> (u32, usize) {
    let mut nanos = 0u32;
    let mut n = 0;
    while n < b.len() && b[n].is_ascii_digit() {
        if n < 9 {
            nanos += u32::from(b[n] - b'0') * 10u32.pow(8 - n as u32);
        }
        n += 1;
    }
    (nanos, n)
}

/// A UTC offset at `b`: `Z`, `+HH:MM`, `+HHMM`, `+HH`. Returns (seconds
/// east of UTC, bytes consumed); (0, 0) when there is none.
pub(crate) fn utc_offset(b: &[u8]) -> Option<(i64, usize)> {
    match b.first() {
        Some(b'Z' | b'z') => Some((0, 1)),
        Some(&c @ (b'+' | b'-')) => {
            let sign = if c == b'-' { -1 } else { 1 };
            let h = digits(b, 1, 2)?;
            let (m, used) = if b.get(3) == Some(&b':') {
                (digits(b, 4, 2)?, 6)
            } else if let Some(m) = digits(b, 3, 2) {
                (m, 5)
            } else {
                (0, 3)
            };
            if h > 23 || m > 59 {
                return None;
            }
            Some((sign * i64::from(h * 3600 + m * 60), used))
        }
        _ => Some((0, 0)),
    }
}

/// Parse `YYYY-MM-DD[T ]HH:MM:SS[.frac][Z|±HH:MM|±HHMM]` at the start of
/// `b`; a time without offset is UTC. Returns the instant and the length
/// read.
pub(crate) fn parse_iso8601_prefix(b: &[u8]) -> Option<(Timestamp, usize)> {
    let y = digits(b, 0, 4)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let mo = digits(b, 5, 2)?;
    let d = digits(b, 8, 2)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let h = digits(b, 11, 2)?;
    if b.get(13) != Some(&b':') {
        return None;
    }
    let mi = digits(b, 14, 2)?;
    if b.get(16) != Some(&b':') {
        return None;
    }
    let s = digits(b, 17, 2)?;
    let mut i = 19;
    let mut nanos = 0;
    if matches!(b.get(i), Some(b'.' | b',')) {
        let (n, used) = fraction(&b[i + 1..]);
        if used == 0 {
            return None;
        }
        nanos = n;
        i += 1 + used;
    }
    let (off, used) = utc_offset(&b[i..])?;
    i += used;
    // The timestamp must end at a token boundary.
    if b.get(i).is_some_and(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let t = civil_to_timestamp(i64::from(y), mo, d, h, mi, s, nanos, off)?;
    Some((t, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_prefixes() {
        let (t, n) = parse_iso8601_prefix(b"2021-07-20T10:00:00.123456+0200 x").unwrap();
        assert_eq!(t.to_string(), "2021-07-20T08:00:00.123456Z");
        assert_eq!(n, 31);
        let (t, _) = parse_iso8601_prefix(b"2021-07-20 10:00:00 host").unwrap();
        assert_eq!(t.to_string(), "2021-07-20T10:00:00Z");
        let (t, _) = parse_iso8601_prefix(b"2021-07-20T10:00:00Z").unwrap();
        assert_eq!(t.to_string(), "2021-07-20T10:00:00Z");
        let (t, _) = parse_iso8601_prefix(b"2021-07-20T10:00:00-05:30").unwrap();
        assert_eq!(t.to_string(), "2021-07-20T15:30:00Z");
        assert!(parse_iso8601_prefix(b"2021-02-30T10:00:00Z").is_none());
        assert!(parse_iso8601_prefix(b"2021-07-20T25:00:00Z").is_none());
        assert!(parse_iso8601_prefix(b"2021-07-20").is_none());
    }

    #[test]
    fn civil() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11017);
        let t = civil_to_timestamp(2000, 10, 10, 13, 55, 36, 0, -7 * 3600).unwrap();
        assert_eq!(t.to_string(), "2000-10-10T20:55:36Z");
        assert!(civil_to_timestamp(2001, 2, 29, 0, 0, 0, 0, 0).is_none());
        assert!(civil_to_timestamp(2000, 2, 29, 0, 0, 0, 0, 0).is_some());
    }
}
