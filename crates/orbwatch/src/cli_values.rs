//! Parsers for values given on the command line, shared by the commands
//! so that every flag takes the same forms and says the same thing when a
//! value is wrong.

use jiff::{SignedDuration, Timestamp};

/// A time: RFC 3339 or a date (`2021-01-01`, taken as 00:00 UTC).
pub fn parse_time(s: &str) -> Result<Timestamp, String> {
    orbwatch_intel::time::parse_timestamp(s).ok_or_else(|| {
        format!("`{s}` is not a time; write e.g. 2021-01-01 or 2021-01-01T00:00:00Z")
    })
}

/// An optional time flag, for flags kept as text: the error names the flag.
pub fn parse_time_flag(flag: &str, v: Option<&str>) -> anyhow::Result<Option<Timestamp>> {
    v.map(|s| parse_time(s).map_err(|e| anyhow::anyhow!("{flag}: {e}")))
        .transpose()
}

/// A duration that is not negative (`7d`, `12h`, `P1W`…).
pub fn parse_dur(s: &str) -> Result<SignedDuration, String> {
    let d = orbwatch_intel::time::parse_duration(s)?;
    if d.is_negative() {
        return Err(format!("`{s}` is negative; write e.g. 7d"));
    }
    Ok(d)
}
