//! Severity, score and reasons of an `ioc_match`, from what happened.
//!
//! A listing alone says little: the same relay address is harmless when
//! the firewall dropped it and an incident when it logged in. The model
//! (documented in the README; the thresholds are the constants below):
//!
//! | what the records show (inside the validity window) | severity | base score |
//! |---|---|---|
//! | a login that succeeded | critical | 95 |
//! | ≥ [`CRITICAL_BYTES`] sent to the indicator by internal hosts | critical | 90 |
//! | ≥ [`HIGH_BYTES`] sent to it by internal hosts | high | 85 |
//! | an internal host opened a connection to it | high | 80 |
//! | failed logins | medium | 60 |
//! | HTTP requests to or from it | medium | 55 |
//! | DNS queries or answers naming it | medium | 50 |
//! | connections it made that were answered | medium | 45 |
//! | records that do not say what happened | low | 30 |
//! | traffic only ever blocked or unanswered | low | 20 |
//!
//! The most serious row that applies decides. Outside the validity window
//! the severity drops one step and the score by 20; records without a time
//! (the window cannot be checked against a bounded window) drop one step
//! and 10. The feed's confidence lowers the score by (100 − confidence) / 5,
//! at most 20; it never changes the severity, since feeds do not agree on
//! what their confidence means.

use jiff::Timestamp;

use crate::finding::{Outcome, Outcomes, Severity, ValidityWindow};

/// Bytes sent to a listed address that make a finding critical: the
/// exfiltration detector's hourly threshold (100 MB).
pub const CRITICAL_BYTES: u64 = 100_000_000;

/// Bytes sent to a listed address that make a finding high: more than a
/// banner exchange or a page served to a scanner (1 MB).
pub const HIGH_BYTES: u64 = 1_000_000;

/// What the aggregator knows about one finding when it is closed.
pub struct Facts<'a> {
    pub outcomes: &'a Outcomes,
    pub bytes_to_indicator: u64,
    pub in_window: bool,
    /// Counted records without a time (their window could not be checked).
    pub untimed: u64,
    pub count: u64,
    pub window_from: Option<Timestamp>,
    pub window_until: Option<Timestamp>,
    /// Every row's window when the feed lists the value more than once
    /// (empty otherwise): named in the reasons, since their span may hold
    /// gaps.
    pub windows: &'a [ValidityWindow],
    pub confidence: Option<u8>,
    /// Accounts of the successful logins.
    pub accounts: &'a [String],
    pub indicator: &'a str,
    pub feed: &'a str,
    /// Rows of the feed that list this value (1 for most).
    pub rows: usize,
}

/// The verdict on one finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub severity: Severity,
    pub score: u8,
    pub reasons: Vec<String>,
}

fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Bytes for people: `1.2 MB`, `830 kB`, `512 bytes` (decimal units), in
/// the reasons of indicator findings and of exfiltration findings alike.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TB", 1_000_000_000_000),
        ("GB", 1_000_000_000),
        ("MB", 1_000_000),
        ("kB", 1_000),
    ];
    for (name, size) in UNITS {
        if b >= size {
            return format!("{:.1} {name}", b as f64 / size as f64);
        }
    }
    plural(b, "byte", "bytes")
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn window_words(from: Option<Timestamp>, until: Option<Timestamp>) -> String {
    // A day is enough for most feeds; a window that starts or ends within a
    // day is shown to the minute.
    let day = |t: Timestamp| {
        if t.as_second().rem_euclid(86_400) == 0 {
            t.strftime("%Y-%m-%d").to_string()
        } else {
            t.strftime("%Y-%m-%d %H:%M UTC").to_string()
        }
    };
    match (from, until) {
        (Some(f), Some(u)) => format!("valid {} to {}", day(f), day(u)),
        (Some(f), None) => format!("valid from {}", day(f)),
        (None, Some(u)) => format!("valid until {}", day(u)),
        (None, None) => "always valid".to_string(),
    }
}

/// Severity, score and reasons for the facts of one finding.
pub fn assess(f: &Facts<'_>) -> Assessment {
    let o = f.outcomes;
    let (mut severity, mut score, why) = if o.auth_success > 0 {
        (
            Severity::Critical,
            95,
            "a login from the listed address succeeded",
        )
    } else if f.bytes_to_indicator >= CRITICAL_BYTES {
        (
            Severity::Critical,
            90,
            "internal hosts sent it at least 100 MB",
        )
    } else if f.bytes_to_indicator >= HIGH_BYTES {
        (Severity::High, 85, "internal hosts sent it at least 1 MB")
    } else if o.outbound > 0 {
        (
            Severity::High,
            80,
            "an internal host opened a connection to it",
        )
    } else if o.auth_failure > 0 {
        (Severity::Medium, 60, "logins from it were tried and failed")
    } else if o.http > 0 {
        (
            Severity::Medium,
            55,
            "HTTP requests went to or came from it",
        )
    } else if o.dns > 0 {
        (Severity::Medium, 50, "DNS records name it")
    } else if o.allowed > 0 {
        (Severity::Medium, 45, "its connections were answered")
    } else if o.unknown > 0 {
        (Severity::Low, 30, "the records do not say what happened")
    } else {
        (Severity::Low, 20, "its traffic was only ever blocked")
    };
    let mut reasons = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for (outcome, n) in o.present() {
        seen.push(match outcome {
            Outcome::AuthSuccess => {
                let who = if f.accounts.is_empty() {
                    String::new()
                } else {
                    let mut a = f.accounts.to_vec();
                    a.sort();
                    format!(" (account {})", a.join(", "))
                };
                format!(
                    "{}{who}",
                    plural(n, "successful login", "successful logins")
                )
            }
            Outcome::AuthFailure => plural(n, "failed login", "failed logins"),
            Outcome::Blocked => plural(
                n,
                "blocked or unanswered connection",
                "blocked or unanswered connections",
            ),
            Outcome::Dns => plural(n, "DNS record", "DNS records"),
            Outcome::Http => plural(n, "HTTP request", "HTTP requests"),
            Outcome::Outbound => plural(
                n,
                "connection opened by an internal host",
                "connections opened by internal hosts",
            ),
            Outcome::Allowed => plural(n, "answered connection", "answered connections"),
            Outcome::Unknown => plural(
                n,
                "record that does not say what happened",
                "records that do not say what happened",
            ),
        });
    }
    if f.bytes_to_indicator > 0 {
        seen.push(format!(
            "{} sent to it by internal hosts",
            human_bytes(f.bytes_to_indicator)
        ));
    }
    reasons.push(format!(
        "{} listed by {}: {}.",
        f.indicator,
        f.feed,
        seen.join(", ")
    ));
    reasons.push(format!("{} because {why}.", capitalised(severity.as_str())));
    let window = if f.windows.len() > 1 {
        let mut w: Vec<String> = f
            .windows
            .iter()
            .take(5)
            .map(|w| window_words(w.from, w.until))
            .collect();
        if f.windows.len() > 5 {
            w.push(format!("{} more", f.windows.len() - 5));
        }
        format!("its {} rows: {}", f.windows.len(), w.join("; "))
    } else {
        window_words(f.window_from, f.window_until)
    };
    if !f.in_window {
        let lowered = severity.lower();
        reasons.push(format!(
            "Seen outside the indicator's validity window ({window}): severity lowered from {} to {}.",
            severity.as_str(),
            lowered.as_str()
        ));
        severity = lowered;
        score -= 20;
    } else if f.untimed > 0 && (f.window_from.is_some() || f.window_until.is_some()) {
        let lowered = severity.lower();
        reasons.push(format!(
            "{} no time, so the validity window ({window}) could not be checked: severity lowered from {} to {}.",
            if f.untimed == f.count {
                "The records carry".to_string()
            } else {
                format!("{} of the records carry", f.untimed)
            },
            severity.as_str(),
            lowered.as_str()
        ));
        severity = lowered;
        score -= 10;
    }
    if let Some(c) = f.confidence {
        let cut = (100 - i32::from(c.min(100))) / 5;
        if cut > 0 {
            reasons.push(format!(
                "The feed's confidence is {c}/100: score lowered by {cut}."
            ));
            score -= cut;
        }
    }
    if f.rows > 1 {
        reasons.push(format!(
            "The feed lists this value {} times; each record counts once, and the finding keeps every row's tags and windows.",
            f.rows
        ));
    }
    Assessment {
        severity,
        score: score.clamp(0, 100) as u8,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(o: &Outcomes) -> Facts<'_> {
        Facts {
            outcomes: o,
            bytes_to_indicator: 0,
            in_window: true,
            untimed: 0,
            count: o.total(),
            window_from: None,
            window_until: None,
            windows: &[],
            confidence: None,
            accounts: &[],
            indicator: "192.0.2.1",
            feed: "test",
            rows: 1,
        }
    }

    #[test]
    fn defaults_follow_the_table() {
        let mut o = Outcomes::default();
        o.add(Outcome::Blocked, 3);
        assert_eq!(assess(&facts(&o)).severity, Severity::Low);
        o.add(Outcome::AuthFailure, 1);
        assert_eq!(assess(&facts(&o)).severity, Severity::Medium);
        o.add(Outcome::AuthSuccess, 1);
        let a = assess(&facts(&o));
        assert_eq!((a.severity, a.score), (Severity::Critical, 95));
        let mut f = facts(&o);
        f.in_window = false;
        f.confidence = Some(50);
        let a = assess(&f);
        assert_eq!((a.severity, a.score), (Severity::High, 65));
        assert!(a.reasons.iter().any(|r| r.contains("outside")));
    }

    #[test]
    fn volume_decides_between_high_and_critical() {
        let mut o = Outcomes::default();
        o.add(Outcome::Outbound, 1);
        let mut f = facts(&o);
        f.bytes_to_indicator = 500;
        assert_eq!(assess(&f).severity, Severity::High);
        f.bytes_to_indicator = CRITICAL_BYTES;
        assert_eq!(assess(&f).severity, Severity::Critical);
        assert_eq!(human_bytes(CRITICAL_BYTES), "100.0 MB");
    }

    #[test]
    fn untimed_records_lower_a_bounded_window_only() {
        let mut o = Outcomes::default();
        o.add(Outcome::AuthSuccess, 1);
        let mut f = facts(&o);
        f.untimed = 1;
        assert_eq!(assess(&f).severity, Severity::Critical);
        f.window_until = Some("2021-01-01T00:00:00Z".parse().unwrap());
        assert_eq!(assess(&f).severity, Severity::High);
    }
}
