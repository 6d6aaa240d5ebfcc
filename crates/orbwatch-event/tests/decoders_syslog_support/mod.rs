//! Helpers shared by the `decoders_syslog*` tests: corpus paths, decoding a
//! whole file, the fail2ban `# failJSON:` ground truth and the Wazuh
//! rules-testing `.ini` files.
#![allow(dead_code)]

use std::net::IpAddr;
use std::path::PathBuf;

use orbwatch_event::decoders::{Decoded, Decoder, DecoderConfig, by_name};
use orbwatch_event::{AuthOutcome, Event};

/// `../shared/corpus/<rel>` (GPL fixtures are read in place, never copied).
pub fn corpus(rel: &str) -> Option<PathBuf> {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus"
    ))
    .join(rel);
    if p.exists() {
        Some(p)
    } else {
        println!("skipped: ../shared/corpus not found ({rel})");
        None
    }
}

/// `tests/data/logs-syslog/<name>` (MIT copies with ATTRIBUTION.md).
pub fn data(name: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/logs-syslog"
    ))
    .join(name)
}

pub fn decoder(format: &str, year: i16) -> Box<dyn Decoder> {
    let info = by_name(format).expect("decoder registered");
    (info.make)(&DecoderConfig {
        year: Some(year),
        map: vec![],
        ..Default::default()
    })
}

/// One line's outcome.
#[derive(Debug)]
pub enum Out {
    Event(Box<Event>),
    Skip,
    Err(String),
}

impl Out {
    pub fn event(&self) -> Option<&Event> {
        match self {
            Out::Event(e) => Some(e),
            _ => None,
        }
    }
}

/// Decode every line of `bytes`; returns (line text, outcome).
pub fn decode_all(format: &str, year: i16, bytes: &[u8]) -> Vec<(String, Out)> {
    let mut d = decoder(format, year);
    let mut out = Vec::new();
    let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    for line in lines {
        let o = match d.decode(line) {
            Ok(Decoded::Event(e)) => Out::Event(e),
            Ok(Decoded::Skip) => Out::Skip,
            Err(e) => Out::Err(e.to_string()),
        };
        out.push((String::from_utf8_lossy(line).into_owned(), o));
    }
    out
}

pub fn events(outs: &[(String, Out)]) -> Vec<&Event> {
    outs.iter().filter_map(|(_, o)| o.event()).collect()
}

/// Lenient address parse for labels (`192.030.0.6` is 192.30.0.6).
pub fn lenient_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() == 4 {
        let mut o = [0u8; 4];
        for (i, p) in parts.iter().enumerate() {
            o[i] = p.parse().ok()?;
        }
        return Some(IpAddr::from(o));
    }
    None
}

/// Does the event hold `host` (an address anywhere, or a name as domain)?
pub fn has_host(ev: &Event, host: &str) -> bool {
    match lenient_ip(host) {
        Some(ip) => ev.addresses().any(|(a, _)| a == ip),
        None => ev.domain.as_deref() == Some(host),
    }
}

pub fn is_failure(ev: &Event) -> bool {
    matches!(
        ev.auth,
        Some(AuthOutcome::Failure) | Some(AuthOutcome::InvalidUser)
    )
}

/// Results of checking one fail2ban test log against its labels.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: usize,
    pub events: usize,
    pub errors: usize,
    pub labelled: usize,
    pub host_total: usize,
    pub host_ok: usize,
    pub outcome_total: usize,
    pub outcome_ok: usize,
    pub time_total: usize,
    pub time_ok: usize,
    pub misses: Vec<String>,
}

/// Decode a fail2ban test log and check every `# failJSON:` label: the
/// labelled `host` must be in the event; for `match: true` and `auth`, the
/// outcome must be a failure; a zone-less `time` must match month, day and
/// clock (the year is fail2ban's own test convention).
pub fn fail2ban_check(path: &std::path::Path, year: i16, auth: bool) -> Report {
    let bytes = std::fs::read(path).expect("read corpus file");
    let outs = decode_all("syslog", year, &bytes);
    let mut r = Report::default();
    let mut label: Option<serde_json::Value> = None;
    for (line, out) in &outs {
        r.lines += 1;
        match out {
            Out::Event(_) => r.events += 1,
            Out::Err(_) => r.errors += 1,
            Out::Skip => {}
        }
        let t = line.trim();
        if let Some(j) = t.strip_prefix("# failJSON:") {
            label = serde_json::from_str(j.trim()).ok();
            continue;
        }
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let Some(l) = label.take() else { continue };
        r.labelled += 1;
        let ev = out.event();
        if let Some(host) = l.get("host").and_then(|h| h.as_str()) {
            r.host_total += 1;
            if ev.is_some_and(|e| has_host(e, host)) {
                r.host_ok += 1;
            } else {
                r.misses.push(format!("host {host}: {line} -> {out:?}"));
            }
        }
        let matched = l.get("match").and_then(|m| m.as_bool()) == Some(true);
        if auth && matched && l.get("host").is_some() {
            r.outcome_total += 1;
            if ev.is_some_and(is_failure) {
                r.outcome_ok += 1;
            } else {
                r.misses
                    .push(format!("outcome: {line} -> {:?}", ev.map(|e| e.auth)));
            }
        }
        if let Some(want) = l.get("time").and_then(|x| x.as_str()) {
            // fail2ban states times in its test time zone: compare only
            // times written without zone, not epochs or offsets.
            let epoch = line.starts_with("type=")
                || line
                    .split(' ')
                    .next()
                    .is_some_and(|t| t.len() == 10 && t.bytes().all(|b| b.is_ascii_digit()));
            let zoned = epoch
                || line.contains("+00:00")
                || line.contains("-04:00")
                || line.contains("+01:00")
                || line.contains('Z');
            if !zoned {
                r.time_total += 1;
                let got = ev
                    .and_then(|e| e.time)
                    .map(|t| t.to_string())
                    .unwrap_or_default();
                // compare MM-DDTHH:MM:SS
                if got.len() >= 19 && want.len() >= 19 && got[5..19] == want[5..19] {
                    r.time_ok += 1;
                } else {
                    r.misses.push(format!("time {want} vs {got}: {line}"));
                }
            }
        }
    }
    r
}

/// The raw lines of a Wazuh rules-testing `.ini` (`log N pass = <line>`),
/// with the section name.
pub fn wazuh_lines(path: &std::path::Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).expect("read ini");
    let mut section = String::new();
    let mut out = Vec::new();
    for l in text.lines() {
        if let Some(s) = l.strip_prefix('[') {
            section = s.trim_end_matches(']').to_string();
        } else if l.starts_with("log ")
            && let Some((_, raw)) = l.split_once(" = ")
        {
            out.push((section.clone(), raw.to_string()));
        }
    }
    out
}
