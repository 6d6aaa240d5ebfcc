//! Parsers for values given on the command line, shared by the commands
//! so that every flag takes the same forms and says the same thing when a
//! value is wrong.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// A time: RFC 3339 or a date (`2021-01-01`, taken as 00:00 UTC). For
/// fixed times, such as a feed's validity (`feed add --valid-from`).
pub fn parse_time(s: &str) -> Result<Timestamp, String> {
    orbwatch_intel::time::parse_timestamp(s).ok_or_else(|| {
        format!("`{s}` is not a time; write e.g. 2021-01-01 or 2021-01-01T00:00:00Z")
    })
}

/// A time for a filter (`--since`, `--until`); see
/// [`orbwatch_intel::time::parse_filter_time`] (shared with `serve`'s API).
pub use orbwatch_intel::time::parse_filter_time as parse_time_in;

/// An optional time flag, for flags kept as text: the error names the flag.
pub fn parse_time_flag(flag: &str, v: Option<&str>) -> anyhow::Result<Option<Timestamp>> {
    parse_time_flag_in(flag, v, &TimeZone::system())
}

/// [`parse_time_flag`] with the zone of `today`/`yesterday`.
pub fn parse_time_flag_in(
    flag: &str,
    v: Option<&str>,
    tz: &TimeZone,
) -> anyhow::Result<Option<Timestamp>> {
    v.map(|s| parse_time_in(s, tz, Timestamp::now()).map_err(|e| anyhow::anyhow!("{flag}: {e}")))
        .transpose()
}

/// `--timezone`: an IANA zone name (`Europe/Paris`), `UTC`, or `local`;
/// without it, the machine's zone (`TZ`, then /etc/localtime). Returns the
/// zone and the name the coverage shows.
pub fn parse_timezone(v: Option<&str>) -> anyhow::Result<(TimeZone, String)> {
    let tz = match v.map(str::trim) {
        None | Some("local") => TimeZone::system(),
        Some(name) if name.eq_ignore_ascii_case("utc") => TimeZone::UTC,
        Some(name) => TimeZone::get(name).map_err(|e| {
            anyhow::anyhow!(
                "--timezone {name:?} is not a time zone ({e}); use an IANA name such as Europe/Paris, or UTC"
            )
        })?,
    };
    let name = match tz.iana_name() {
        Some(n) => n.to_string(),
        None if tz == TimeZone::UTC => "UTC".to_string(),
        None => format!(
            "the machine's zone (UTC{} now)",
            tz.to_offset(Timestamp::now())
        ),
    };
    Ok((tz, name))
}

/// A duration that is not negative (`7d`, `12h`, `P1W`…).
pub fn parse_dur(s: &str) -> Result<SignedDuration, String> {
    let d = orbwatch_intel::time::parse_duration(s)?;
    if d.is_negative() {
        return Err(format!("`{s}` is negative; write e.g. 7d"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("test timestamp")
    }

    #[test]
    fn relative_times_count_back_from_now() {
        let now = ts("2024-03-10T15:30:00Z");
        let utc = TimeZone::UTC;
        assert_eq!(
            parse_time_in("24h", &utc, now),
            Ok(ts("2024-03-09T15:30:00Z"))
        );
        assert_eq!(
            parse_time_in("7d", &utc, now),
            Ok(ts("2024-03-03T15:30:00Z"))
        );
        assert_eq!(
            parse_time_in("yesterday", &utc, now),
            Ok(ts("2024-03-09T00:00:00Z"))
        );
        assert_eq!(
            parse_time_in("today", &utc, now),
            Ok(ts("2024-03-10T00:00:00Z"))
        );
        // Midnight in Paris is 23:00 UTC the day before (winter time).
        let paris = TimeZone::get("Europe/Paris").expect("tz database");
        assert_eq!(
            parse_time_in("Yesterday", &paris, now),
            Ok(ts("2024-03-08T23:00:00Z"))
        );
        // Absolute times are unchanged; a bare number is refused.
        assert_eq!(
            parse_time_in("2021-01-01", &paris, now),
            Ok(ts("2021-01-01T00:00:00Z"))
        );
        assert!(parse_time_in("2021", &utc, now).is_err());
        assert!(parse_time_in("-7d", &utc, now).is_err());
        assert!(parse_time_in("lastweek", &utc, now).is_err());
    }

    #[test]
    fn timezone_names() {
        assert_eq!(parse_timezone(Some("UTC")).expect("utc").1, "UTC");
        assert_eq!(
            parse_timezone(Some("Europe/Paris")).expect("paris").1,
            "Europe/Paris"
        );
        let e = parse_timezone(Some("Mars/Olympus")).expect_err("unknown zone");
        assert!(e.to_string().contains("Mars/Olympus"), "{e}");
    }
}
