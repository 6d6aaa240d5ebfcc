//! Timestamps as log lines write them, turned into UTC [`Timestamp`]s without
//! allocating: BSD (`Jan  5 01:31:41`, with or without year or weekday),
//! ISO 8601 / RFC 3339 (with `T` or spaces, `,` or `.` fractions, `Z`,
//! `+02:00`, `+0200` or no zone), Apache/CLF (`20/Jun/2022:13:09:14 +0200`)
//! and Unix epochs in s, ms, µs or ns.
//!
//! Shared by the syslog, CEF and LEEF decoders. A timestamp without a zone is
//! taken as UTC; one without a year gets it from the caller.

use jiff::Timestamp;

/// A wall-clock time as written in a log line: the year may be missing
/// (RFC 3164) and so may the zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CivilTime {
    pub year: Option<i16>,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub nanos: u32,
    /// Seconds east of UTC, when the line says.
    pub offset: Option<i32>,
}

impl CivilTime {
    /// The instant, using `year` when the line carries none and UTC when it
    /// carries no zone. `None` for impossible dates (`May 00`, `Feb 30`).
    pub fn to_timestamp(self, year: i16) -> Option<Timestamp> {
        self.to_timestamp_at(year, 0)
    }

    /// The instant, using `year` when the line carries none and `offset`
    /// (seconds east of UTC) when it carries no zone.
    pub fn to_timestamp_at(self, year: i16, offset: i32) -> Option<Timestamp> {
        civil_to_timestamp(
            self.year.unwrap_or(year),
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.nanos,
            self.offset.unwrap_or(offset),
        )
    }

    /// The instant in zone `tz` when the line carries no zone (with the
    /// zone's rules at that date: summer time, and the earlier of two
    /// readings in the repeated hour, as `jiff`'s "compatible" rule does).
    pub fn to_timestamp_in(self, year: i16, tz: &jiff::tz::TimeZone) -> Option<Timestamp> {
        if self.offset.is_some() {
            return self.to_timestamp(year);
        }
        // Validate the fields as the UTC path does (it refuses `Feb 30`).
        self.to_timestamp(year)?;
        let dt = jiff::civil::DateTime::new(
            self.year.unwrap_or(year),
            self.month as i8,
            self.day as i8,
            self.hour as i8,
            self.minute as i8,
            self.second.min(59) as i8,
            self.nanos as i32,
        )
        .ok()?;
        tz.to_ambiguous_timestamp(dt).compatible().ok()
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil year and month (1-12) of a timestamp, UTC.
pub(crate) fn year_month_of(ts: Timestamp) -> (i16, u8) {
    let days = ts.as_second().div_euclid(86_400);
    // Inverse of days_from_civil.
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y.clamp(i16::MIN as i64, i16::MAX as i64) as i16, m as u8)
}

fn days_in_month(y: i64, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// Build a UTC timestamp from civil fields and an offset (seconds east).
#[allow(clippy::too_many_arguments)]
pub(crate) fn civil_to_timestamp(
    year: i16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    nanos: u32,
    offset: i32,
) -> Option<Timestamp> {
    let y = year as i64;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(y, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 || nanos > 999_999_999 {
        return None;
    }
    let second = second.min(59); // leap second: keep it in the minute
    let days = days_from_civil(y, month as u32, day as u32);
    let secs =
        days * 86_400 + hour as i64 * 3600 + minute as i64 * 60 + second as i64 - offset as i64;
    Timestamp::new(secs, nanos as i32).ok()
}

/// Month number of a three-letter English abbreviation, any case.
pub(crate) fn month_from_abbr(b: &[u8]) -> Option<u8> {
    if b.len() < 3 {
        return None;
    }
    let k = [
        b[0].to_ascii_lowercase(),
        b[1].to_ascii_lowercase(),
        b[2].to_ascii_lowercase(),
    ];
    Some(match &k {
        b"jan" => 1,
        b"feb" => 2,
        b"mar" => 3,
        b"apr" => 4,
        b"may" => 5,
        b"jun" => 6,
        b"jul" => 7,
        b"aug" => 8,
        b"sep" => 9,
        b"oct" => 10,
        b"nov" => 11,
        b"dec" => 12,
        _ => return None,
    })
}

fn is_weekday(b: &[u8]) -> bool {
    if b.len() < 3 {
        return false;
    }
    let k = [
        b[0].to_ascii_lowercase(),
        b[1].to_ascii_lowercase(),
        b[2].to_ascii_lowercase(),
    ];
    matches!(
        &k,
        b"mon" | b"tue" | b"wed" | b"thu" | b"fri" | b"sat" | b"sun"
    )
}

/// Read 1 to `max` ASCII digits at `*i`.
#[inline]
fn digits(b: &[u8], i: &mut usize, min: usize, max: usize) -> Option<u32> {
    let start = *i;
    let mut v: u32 = 0;
    while *i < b.len() && *i - start < max && b[*i].is_ascii_digit() {
        v = v * 10 + (b[*i] - b'0') as u32;
        *i += 1;
    }
    if *i - start < min { None } else { Some(v) }
}

#[inline]
fn eat(b: &[u8], i: &mut usize, c: u8) -> bool {
    if *i < b.len() && b[*i] == c {
        *i += 1;
        true
    } else {
        false
    }
}

/// `hh:mm:ss[.frac]` (hour may be one digit).
fn clock(b: &[u8], i: &mut usize) -> Option<(u8, u8, u8, u32)> {
    let h = digits(b, i, 1, 2)?;
    if !eat(b, i, b':') {
        return None;
    }
    let m = digits(b, i, 2, 2)?;
    if !eat(b, i, b':') {
        return None;
    }
    let s = digits(b, i, 2, 2)?;
    let mut nanos = 0;
    if *i + 1 < b.len() && (b[*i] == b'.' || b[*i] == b',') && b[*i + 1].is_ascii_digit() {
        *i += 1;
        nanos = fraction(b, i);
    }
    Some((h as u8, m as u8, s as u8, nanos))
}

/// Digits after a decimal separator as nanoseconds (extra digits dropped).
fn fraction(b: &[u8], i: &mut usize) -> u32 {
    let mut v: u32 = 0;
    let mut n = 0;
    while *i < b.len() && b[*i].is_ascii_digit() {
        if n < 9 {
            v = v * 10 + (b[*i] - b'0') as u32;
            n += 1;
        }
        *i += 1;
    }
    while n < 9 {
        v *= 10;
        n += 1;
    }
    v
}

/// A zone designator: `Z`, `+hh:mm`, `+hhmm`, `+hh`. Returns seconds east.
fn zone(b: &[u8], i: &mut usize) -> Option<i32> {
    if *i >= b.len() {
        return None;
    }
    match b[*i] {
        b'Z' | b'z' => {
            *i += 1;
            Some(0)
        }
        c @ (b'+' | b'-') => {
            let save = *i;
            *i += 1;
            let Some(h) = digits(b, i, 2, 2) else {
                *i = save;
                return None;
            };
            let colon = eat(b, i, b':');
            let m = match digits(b, i, 2, 2) {
                Some(m) => m,
                None if colon => {
                    *i = save;
                    return None;
                }
                None => 0,
            };
            if h > 23 || m > 59 {
                *i = save;
                return None;
            }
            let secs = (h * 3600 + m * 60) as i32;
            Some(if c == b'-' { -secs } else { secs })
        }
        _ => None,
    }
}

/// ISO 8601 / RFC 3339 and the common near-misses: `2021-07-20T10:00:00.123+02:00`,
/// `2015-10-07  8:25:38`, `2006-02-13 15:52:30,388`, `2023/07/06 08:11:40`,
/// `2021-07-20T10:00:00+0200`. Returns the time and the bytes consumed.
pub(crate) fn parse_iso(b: &[u8]) -> Option<(CivilTime, usize)> {
    let mut i = 0;
    let y = digits(b, &mut i, 4, 4)?;
    let sep = *b.get(i)?;
    if sep != b'-' && sep != b'/' {
        return None;
    }
    i += 1;
    let mo = digits(b, &mut i, 2, 2)?;
    if !eat(b, &mut i, sep) {
        return None;
    }
    let d = digits(b, &mut i, 2, 2)?;
    if i < b.len() && (b[i] == b'T' || b[i] == b't') {
        i += 1;
    } else {
        let start = i;
        while i < b.len() && b[i] == b' ' && i - start < 3 {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let (h, mi, s, nanos) = clock(b, &mut i)?;
    let offset = zone(b, &mut i);
    if i < b.len() && b[i].is_ascii_alphanumeric() {
        return None;
    }
    Some((
        CivilTime {
            year: Some(y as i16),
            month: mo as u8,
            day: d as u8,
            hour: h,
            minute: mi,
            second: s,
            nanos,
            offset,
        },
        i,
    ))
}

/// BSD syslog time, `Mmm dd hh:mm:ss[.frac]`, also `Mmm dd yyyy hh:mm:ss`
/// (Cisco, CEF `rt`) and ctime `Www Mmm dd hh:mm:ss yyyy` (vsftpd). The day
/// may be space padded or single digit. Returns the time and bytes consumed.
pub(crate) fn parse_bsd(b: &[u8]) -> Option<(CivilTime, usize)> {
    let mut i = 0;
    let mut weekday = false;
    if b.len() > 4 && is_weekday(b) && b[3] == b' ' {
        weekday = true;
        i = 4;
    } else if b.len() > 5 && is_weekday(b) && b[3] == b',' && b[4] == b' ' {
        weekday = true;
        i = 5;
    }
    let month = month_from_abbr(b.get(i..)?)?;
    i += 3;
    if !eat(b, &mut i, b' ') {
        return None;
    }
    if i < b.len() && b[i] == b' ' {
        i += 1;
    }
    let day = digits(b, &mut i, 1, 2)?;
    if !eat(b, &mut i, b' ') {
        return None;
    }
    let mut year = None;
    // `Mmm dd yyyy hh:mm:ss`
    if b.len() >= i + 5 && b[i..i + 4].iter().all(u8::is_ascii_digit) && b[i + 4] == b' ' {
        let mut j = i;
        year = digits(b, &mut j, 4, 4).map(|y| y as i16);
        i = j + 1;
    }
    let (h, mi, s, nanos) = clock(b, &mut i)?;
    if weekday && year.is_none() && b.len() >= i + 5 && b[i] == b' ' {
        let mut j = i + 1;
        if let Some(y) = digits(b, &mut j, 4, 4)
            && (j == b.len() || !b[j].is_ascii_alphanumeric())
        {
            year = Some(y as i16);
            i = j;
        }
    }
    if i < b.len() && b[i].is_ascii_alphanumeric() {
        return None;
    }
    Some((
        CivilTime {
            year,
            month,
            day: day as u8,
            hour: h,
            minute: mi,
            second: s,
            nanos,
            offset: None,
        },
        i,
    ))
}

/// Apache/CLF time `20/Jun/2022:13:09:14 +0200` (zone optional).
pub(crate) fn parse_clf(b: &[u8]) -> Option<(CivilTime, usize)> {
    let mut i = 0;
    let d = digits(b, &mut i, 1, 2)?;
    if !eat(b, &mut i, b'/') {
        return None;
    }
    let month = month_from_abbr(b.get(i..)?)?;
    i += 3;
    if !eat(b, &mut i, b'/') {
        return None;
    }
    let y = digits(b, &mut i, 4, 4)?;
    if !eat(b, &mut i, b':') {
        return None;
    }
    let (h, mi, s, nanos) = clock(b, &mut i)?;
    let mut offset = None;
    if i + 1 < b.len() && b[i] == b' ' && (b[i + 1] == b'+' || b[i + 1] == b'-') {
        let mut j = i + 1;
        if let Some(o) = zone(b, &mut j) {
            offset = Some(o);
            i = j;
        }
    }
    Some((
        CivilTime {
            year: Some(y as i16),
            month,
            day: d as u8,
            hour: h,
            minute: mi,
            second: s,
            nanos,
            offset,
        },
        i,
    ))
}

/// A Unix epoch: 10 digits = seconds (optionally `.frac`), 13 = ms,
/// 16 = µs, 19 = ns.
pub(crate) fn parse_epoch(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int: i64 = s.get(..i)?.parse().ok()?;
    let rest = &b[i..];
    match i {
        9 | 10 => {
            let mut nanos = 0;
            if rest.len() > 1 && rest[0] == b'.' {
                let mut j = i + 1;
                nanos = fraction(b, &mut j);
                if j != b.len() {
                    return None;
                }
            } else if !rest.is_empty() {
                return None;
            }
            Timestamp::new(int, nanos as i32).ok()
        }
        13 if rest.is_empty() => Timestamp::from_millisecond(int).ok(),
        16 if rest.is_empty() => Timestamp::from_microsecond(int).ok(),
        19 if rest.is_empty() => Timestamp::from_nanosecond(int as i128).ok(),
        _ => None,
    }
}

/// Any of the forms above, the whole string (trailing spaces allowed).
pub(crate) fn parse_any(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.is_empty() {
        return None;
    }
    if b.iter().all(|c| c.is_ascii_digit() || *c == b'.') {
        return parse_epoch(s);
    }
    let (ct, n) = parse_iso(b)
        .or_else(|| parse_bsd(b))
        .or_else(|| parse_clf(b))?;
    let mut ct = ct;
    // A trailing zone name after a space: `UTC`, `GMT`, `Z`, or an offset.
    let rest = s[n..].trim();
    if !rest.is_empty() && ct.offset.is_none() {
        if rest.eq_ignore_ascii_case("utc") || rest.eq_ignore_ascii_case("gmt") {
            ct.offset = Some(0);
        } else {
            let rb = rest.as_bytes();
            let mut j = 0;
            match zone(rb, &mut j) {
                Some(o) if j == rb.len() => ct.offset = Some(o),
                _ => {}
            }
        }
    }
    ct.to_timestamp(ct.year.unwrap_or(1970))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn iso_forms() {
        let (c, n) = parse_iso(b"2021-07-20T10:00:00.123+02:00 host").unwrap();
        assert_eq!(n, 29);
        assert_eq!(c.to_timestamp(0), Some(ts("2021-07-20T08:00:00.123Z")));
        let (c, _) = parse_iso(b"2015-10-07  8:25:38 1398").unwrap();
        assert_eq!(c.to_timestamp(0), Some(ts("2015-10-07T08:25:38Z")));
        let (c, _) = parse_iso(b"2006-02-13 15:52:30,388 fail2ban").unwrap();
        assert_eq!(c.nanos, 388_000_000);
        let (c, _) = parse_iso(b"2021-07-20T10:00:00+0200 x").unwrap();
        assert_eq!(c.offset, Some(7200));
        assert!(parse_iso(b"2021-07-20X10:00:00").is_none());
        assert!(parse_iso(b"2021-07-2010:00:00").is_none());
    }

    #[test]
    fn bsd_forms() {
        let (c, n) = parse_bsd(b"Jan  5 01:31:41 www").unwrap();
        assert_eq!((c.month, c.day, c.hour, n), (1, 5, 1, 15));
        let (c, _) = parse_bsd(b"Feb 7 16:01:07 linux").unwrap();
        assert_eq!((c.month, c.day), (2, 7));
        let (c, _) = parse_bsd(b"Fri Jan 19 12:20:33 2007 [pid 1]").unwrap();
        assert_eq!(c.year, Some(2007));
        let (c, _) = parse_bsd(b"Mar 01 2019 10:00:00: %ASA").unwrap();
        assert_eq!(c.year, Some(2019));
        assert!(
            parse_bsd(b"May 00 00:00:00 X")
                .unwrap()
                .0
                .to_timestamp(2020)
                .is_none()
        );
        assert!(parse_bsd(b"Foo 01 00:00:00").is_none());
    }

    #[test]
    fn epochs_and_any() {
        assert_eq!(parse_epoch("1403884279"), Some(ts("2014-06-27T15:51:19Z")));
        assert_eq!(
            parse_epoch("1728938800841267391"),
            Some(ts("2024-10-14T20:46:40.841267391Z"))
        );
        assert_eq!(
            parse_any("Oct 26 2025 19:59:41 UTC"),
            Some(ts("2025-10-26T19:59:41Z"))
        );
        assert_eq!(
            parse_any("20/Jun/2022:13:09:14 +0200"),
            Some(ts("2022-06-20T11:09:14Z"))
        );
    }

    #[test]
    fn civil_roundtrip() {
        for &(y, m) in &[(1970i16, 1u8), (2000, 2), (2024, 12), (1969, 7)] {
            let t = civil_to_timestamp(y, m, 15, 12, 0, 0, 0, 0).unwrap();
            assert_eq!(year_month_of(t), (y, m));
        }
    }
}
