//! Syslog (RFC 5424) messages carrying CEF (ArcSight Common Event Format,
//! version 0), which every SIEM parses.
//!
//! Escaping follows the CEF specification: in the header `\` and `|` are
//! escaped with a backslash (newlines are not allowed there and become
//! spaces); in extension values `\` and `=` are escaped, and newlines
//! become `\n` / `\r`. A value can then never end the header early nor
//! invent an extension key, whatever an attacker put in a log line that
//! ended up in a finding's reasons or accounts.

use std::fmt::Write as _;
use std::net::IpAddr;

use orbwatch_detect::Severity;

use crate::document::AlertDocument;

/// Longest `msg` extension value kept, in characters: a UDP datagram
/// should stay well under the 8 KiB most receivers accept.
pub const MSG_CHARS: usize = 1024;

/// Escape a CEF header field.
pub fn escape_header(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Escape a CEF extension value.
pub fn escape_extension(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// CEF severity (0–10) of an orbwatch severity.
pub fn cef_severity(s: Option<Severity>) -> u8 {
    match s {
        None => 0,
        Some(Severity::Info) => 1,
        Some(Severity::Low) => 3,
        Some(Severity::Medium) => 5,
        Some(Severity::High) => 8,
        Some(Severity::Critical) => 10,
    }
}

/// Syslog severity (RFC 5424 table 2) of an orbwatch severity.
pub fn syslog_severity(s: Option<Severity>) -> u8 {
    match s {
        None | Some(Severity::Info) => 6,
        Some(Severity::Low) => 5,
        Some(Severity::Medium) => 4,
        Some(Severity::High) => 3,
        Some(Severity::Critical) => 2,
    }
}

fn push_ext(out: &mut String, key: &str, value: &str) {
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(key);
    out.push('=');
    out.push_str(&escape_extension(value));
}

fn ms(t: jiff::Timestamp) -> String {
    t.as_millisecond().to_string()
}

/// The CEF:0 line of an alert.
pub fn cef_line(doc: &AlertDocument) -> String {
    let name = match (&doc.indicator, doc.src_ip) {
        (Some(ind), _) => format!("{} {ind}", doc.kind.as_str().replace('_', " ")),
        (None, Some(ip)) => format!("{} from {ip}", doc.kind.as_str().replace('_', " ")),
        (None, None) => doc.kind.as_str().replace('_', " "),
    };
    let mut ext = String::new();
    push_ext(&mut ext, "rt", &ms(doc.created));
    push_ext(&mut ext, "externalId", &doc.alert_id);
    push_ext(&mut ext, "cat", doc.kind.as_str());
    push_ext(&mut ext, "cnt", &doc.count.to_string());
    let add_ip = |ext: &mut String, ip: Option<IpAddr>, v4: &str, v6: &str, label: &str| match ip {
        Some(IpAddr::V4(a)) => push_ext(ext, v4, &a.to_string()),
        Some(IpAddr::V6(a)) => {
            push_ext(ext, v6, &a.to_string());
            push_ext(ext, &format!("{v6}Label"), label);
        }
        None => {}
    };
    add_ip(&mut ext, doc.src_ip, "src", "c6a2", "Source IPv6 Address");
    add_ip(
        &mut ext,
        doc.dst_ip,
        "dst",
        "c6a3",
        "Destination IPv6 Address",
    );
    if let Some(t) = doc.first_seen {
        push_ext(&mut ext, "start", &ms(t));
    }
    if let Some(t) = doc.last_seen {
        push_ext(&mut ext, "end", &ms(t));
    }
    push_ext(&mut ext, "cs1Label", "findingId");
    push_ext(&mut ext, "cs1", &doc.finding_id);
    push_ext(&mut ext, "cs2Label", "event");
    push_ext(
        &mut ext,
        "cs2",
        match doc.event {
            crate::AlertEvent::Raised => "raised",
            crate::AlertEvent::Escalated => "escalated",
        },
    );
    if let Some(ind) = &doc.indicator {
        push_ext(&mut ext, "cs3Label", "indicator");
        push_ext(&mut ext, "cs3", ind);
    }
    if let Some(feed) = &doc.feed {
        push_ext(&mut ext, "cs4Label", "feed");
        push_ext(&mut ext, "cs4", feed);
    }
    if !doc.finding.accounts.is_empty() {
        push_ext(&mut ext, "cs5Label", "accounts");
        push_ext(&mut ext, "cs5", &doc.finding.accounts.join(","));
    }
    if let Some(score) = doc.score {
        push_ext(&mut ext, "cn1Label", "score");
        push_ext(&mut ext, "cn1", &score.to_string());
    }
    let msg: String = doc.summary.chars().take(MSG_CHARS).collect();
    push_ext(&mut ext, "msg", &msg);
    format!(
        "CEF:0|orbwatch|orbwatch|{}|{}|{}|{}|{}",
        escape_header(env!("CARGO_PKG_VERSION")),
        escape_header(doc.kind.as_str()),
        escape_header(&name),
        cef_severity(doc.severity),
        ext
    )
}

/// How messages are framed on a TCP stream (RFC 6587).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    /// `LEN SP MSG`: safe whatever the message holds (the default).
    #[default]
    OctetCounting,
    /// `MSG LF`: for receivers that only split on newlines (CEF escaping
    /// keeps newlines out of the message).
    Newline,
}

/// The RFC 5424 header fields that do not depend on the alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogHeader {
    /// Facility number (0–23); 16 (`local0`) by default.
    pub facility: u8,
    pub hostname: String,
    pub app_name: String,
    pub procid: String,
}

impl Default for SyslogHeader {
    fn default() -> Self {
        SyslogHeader {
            facility: 16,
            hostname: local_hostname(),
            app_name: "orbwatch".into(),
            procid: std::process::id().to_string(),
        }
    }
}

/// The machine's name, or `-` (RFC 5424's NILVALUE) when unknown.
pub fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| header_token(s.trim(), 255))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "-".into())
}

/// RFC 5424 header fields are printable US-ASCII without spaces, with a
/// length limit; anything else becomes `_`.
fn header_token(s: &str, max: usize) -> String {
    let t: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    if t.is_empty() { "-".into() } else { t }
}

/// The RFC 5424 message (without framing) carrying the CEF line of `doc`.
pub fn syslog_message(h: &SyslogHeader, doc: &AlertDocument) -> String {
    let pri = u16::from(h.facility.min(23)) * 8 + u16::from(syslog_severity(doc.severity));
    let mut out = String::new();
    let _ = write!(
        out,
        "<{pri}>1 {} {} {} {} alert - {}",
        doc.created.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"),
        header_token(&h.hostname, 255),
        header_token(&h.app_name, 48),
        header_token(&h.procid, 128),
        cef_line(doc)
    );
    out
}

/// Frame `msg` for a TCP stream.
pub fn frame(msg: &str, framing: Framing) -> Vec<u8> {
    match framing {
        Framing::OctetCounting => format!("{} {msg}", msg.len()).into_bytes(),
        Framing::Newline => format!("{msg}\n").into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_follow_the_cef_spec() {
        assert_eq!(escape_header(r"a|b\c"), r"a\|b\\c");
        assert_eq!(escape_header("a\nb"), "a b");
        assert_eq!(escape_extension(r"k=v\x"), r"k\=v\\x");
        assert_eq!(escape_extension("l1\nl2\r"), r"l1\nl2\r");
        // A pipe is legal in extensions and left alone.
        assert_eq!(escape_extension("a|b"), "a|b");
    }

    #[test]
    fn huge_reasons_are_cut_and_control_characters_cannot_break_the_envelope() {
        let mut f: orbwatch_detect::Finding = serde_json::from_str(
            r#"{"id":"x","kind":"brute_force","first_seen":null,"last_seen":null,"count":1,
                "src_ip":"45.1.2.3","dst_ip":null,"evidence":[],"evidence_total":0}"#,
        )
        .unwrap();
        f.reasons = vec!["é=\\n".repeat(100_000)];
        let doc = AlertDocument::new(&f, crate::AlertEvent::Raised, jiff::Timestamp::UNIX_EPOCH);
        let line = cef_line(&doc);
        // 1024 characters of at most 2 bytes, each escaped to at most 2.
        assert!(line.len() < 1024 * 4 + 1000, "{}", line.len());
        let h = SyslogHeader {
            facility: 200,
            hostname: "bad host\nname".into(),
            app_name: String::new(),
            procid: "1".into(),
        };
        let msg = syslog_message(&h, &doc);
        assert!(
            msg.starts_with("<190>1 1970-01-01T00:00:00.000000Z bad_host_name - 1 alert - CEF:0|"),
            "{}",
            &msg[..80]
        );
        assert!(!msg.contains('\n'));
        let framed = frame(&msg, Framing::OctetCounting);
        let (len, rest) = std::str::from_utf8(&framed)
            .unwrap()
            .split_once(' ')
            .unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), rest.len());
    }
}
