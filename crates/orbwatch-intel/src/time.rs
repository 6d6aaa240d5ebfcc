//! Lenient parsing of the timestamps and durations feeds and users write.
//!
//! Feeds spell time in many ways (RFC 3339, bare dates, `YYYY-MM-DD
//! HH:MM:SS`, epoch seconds). Everything becomes a UTC [`Timestamp`]; a
//! value without a zone is taken as UTC.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};

/// A time for a filter (`--since`, `--until`, the API's `since`/`until`):
/// as [`parse_timestamp`], or
/// relative to `now` (`24h`, `7d`: that long ago) or `today`/`yesterday`
/// (00:00 of that day in `tz`).
pub fn parse_filter_time(s: &str, tz: &TimeZone, now: Timestamp) -> Result<Timestamp, String> {
    // A short bare number would be read as Unix seconds in 1970: `--since
    // 2021` means a year, and silently hunting from 1970 is a mistake.
    let t = s.trim();
    if !t.is_empty() && t.len() < 9 && t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{s}` is ambiguous; write a date (e.g. {t}-01-01 if it is a year) or a duration with its unit (e.g. 7d)"
        ));
    }
    if let Some(t) = parse_timestamp(s) {
        return Ok(t);
    }
    let word = s.trim().to_ascii_lowercase();
    let days_back = match word.as_str() {
        "today" => Some(0),
        "yesterday" => Some(1),
        _ => None,
    };
    if let Some(back) = days_back {
        let midnight = now
            .to_zoned_datetime(tz.clone())
            .start_of_day()
            .and_then(|d| d.checked_sub(back.days()))
            .map_err(|e| format!("`{s}`: {e}"))?;
        return Ok(midnight.timestamp());
    }
    // A bare duration (`24h`, `7d`, `P1W`) means that long ago. A number
    // alone is refused: `--since 2021` is more likely a year than seconds.
    if word.chars().any(|c| c.is_ascii_alphabetic())
        && let Ok(d) = parse_duration(&word)
        && !d.is_negative()
    {
        return now
            .checked_sub(d)
            .map_err(|e| format!("`{s}` reaches too far back: {e}"));
    }
    Err(format!(
        "`{s}` is not a time; write e.g. 2021-01-01, 2021-01-01T00:00:00Z, 24h or 7d (that long ago), today or yesterday"
    ))
}

/// Parse a timestamp in any of the common forms. Returns `None` when the
/// text is not a time.
pub fn parse_timestamp(s: &str) -> Option<Timestamp> {
    let s = s.trim().trim_matches('"');
    if s.is_empty() {
        return None;
    }
    if let Ok(t) = s.parse::<Timestamp>() {
        return Some(t);
    }
    if let Ok(dt) = s.replace(' ', "T").parse::<DateTime>() {
        return jiff::tz::TimeZone::UTC.to_timestamp(dt).ok();
    }
    // `2021-07-20 10:00:00+00` / `+0000` style offsets.
    if let Ok(z) =
        jiff::fmt::strtime::parse("%Y-%m-%d %H:%M:%S%z", s).and_then(|b| b.to_timestamp())
    {
        return Some(z);
    }
    if let Ok(d) = s.parse::<Date>() {
        return jiff::tz::TimeZone::UTC.to_timestamp(d.at(0, 0, 0, 0)).ok();
    }
    // Epoch seconds (optionally fractional), as MISP and Zeek write them.
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') && s.bytes().any(|b| b.is_ascii_digit()) {
        let secs: f64 = s.parse().ok()?;
        if !(0.0..=32_503_680_000.0).contains(&secs) {
            return None;
        }
        let whole = secs.trunc() as i64;
        let nanos = ((secs - secs.trunc()) * 1e9) as i32;
        return Timestamp::new(whole, nanos).ok();
    }
    None
}

/// Parse a duration: `7d`, `12h`, `30m`, `90s`, `2w`, or ISO 8601 / jiff
/// friendly forms (`P7D`, `7 days`).
pub fn parse_duration(s: &str) -> Result<SignedDuration, String> {
    let t = s.trim();
    let err = || format!("`{s}` is not a duration; write e.g. 7d, 12h, 30m or 2w");
    if t.is_empty() {
        return Err(err());
    }
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    if !num.is_empty() {
        let n: i64 = num.parse().map_err(|_| err())?;
        let secs = match unit.trim() {
            "" | "s" => Some(1),
            "m" | "min" => Some(60),
            "h" => Some(3600),
            "d" => Some(86_400),
            "w" => Some(7 * 86_400),
            _ => None,
        };
        if let Some(mult) = secs {
            return n
                .checked_mul(mult)
                .map(SignedDuration::from_secs)
                .ok_or_else(err);
        }
    }
    t.parse::<SignedDuration>()
        .or_else(|_| {
            t.parse::<jiff::Span>()
                .and_then(|sp| sp.to_duration(jiff::SpanRelativeTo::days_are_24_hours()))
        })
        .map_err(|_| err())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(
            parse_timestamp("2021-07-20").unwrap().to_string(),
            "2021-07-20T00:00:00Z"
        );
        assert_eq!(
            parse_timestamp("2021-07-20 10:11:12").unwrap().to_string(),
            "2021-07-20T10:11:12Z"
        );
        assert_eq!(
            parse_timestamp("2024-04-24T22:28:23.000Z")
                .unwrap()
                .to_string(),
            "2024-04-24T22:28:23Z"
        );
        assert_eq!(
            parse_timestamp("1626739200").unwrap().to_string(),
            "2021-07-20T00:00:00Z"
        );
        assert!(parse_timestamp("yesterday").is_none());
        assert!(parse_timestamp("").is_none());
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("7d").unwrap(),
            SignedDuration::from_hours(168)
        );
        assert_eq!(
            parse_duration("2w").unwrap(),
            SignedDuration::from_hours(336)
        );
        assert_eq!(parse_duration("90").unwrap(), SignedDuration::from_secs(90));
        assert!(parse_duration("soon").is_err());
    }
}
