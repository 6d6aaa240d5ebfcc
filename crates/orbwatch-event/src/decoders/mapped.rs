//! Generic CSV and JSON-lines logs, mapped to events by `--map field=column`
//! (CSV header names) or `--map field=dotted.path` (JSON).
//!
//! For exports from tools orbwatch has no decoder for. Mappable fields:
//! `time, src_ip, dst_ip, src_port, dst_port, proto, action, user, domain,
//! url, host, auth`. Columns/keys not mapped explicitly are mapped by name
//! when the name says what they hold (`src`, `source_ip`, `client`,
//! `destination.ip`, `dport`, `@timestamp`…). Every other value that is an
//! address, or that mentions one, goes to `other_ips`, so nothing is
//! missed. CSV records must fit on one line (quoted fields with embedded
//! newlines are not supported). JSON lines score low on sniffing, so any
//! specific decoder wins; CSV is recognised by a clean header (see
//! `sniff_csv`).

use std::borrow::Cow;

use jiff::Timestamp;

use super::text::parse_iso8601_prefix;
use super::web_access::parse_clf_time;
use super::zeek_fields::{parse_epoch, parse_ip, push_ip, scan_into, tidy};
use super::zeek_json::{Fields as JsonFields, JVal as JsonVal};
use super::{DecodeError, Decoded, Decoder, DecoderConfig, DecoderInfo};
use crate::model::{Action, AuthOutcome, Event, EventKind, Proto};

/// Registry entry for CSV.
pub const CSV_INFO: DecoderInfo = DecoderInfo {
    name: "csv",
    description: "Generic CSV with --map field=column",
    sniff: sniff_csv,
    make: |cfg: &DecoderConfig| Box::new(Csv::new(cfg)),
};

/// Registry entry for JSON lines.
pub const JSON_INFO: DecoderInfo = DecoderInfo {
    name: "json",
    description: "Generic JSON lines with --map field=path",
    sniff: sniff_json,
    make: |cfg: &DecoderConfig| Box::new(Json::new(cfg)),
};

/// The event field a column or key feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Time,
    SrcIp,
    DstIp,
    SrcPort,
    DstPort,
    Proto,
    Action,
    User,
    Domain,
    Url,
    Host,
    Auth,
    /// Not mapped: an address (or text mentioning one) goes to other_ips.
    Other,
}

fn target_by_field(field: &str) -> Option<Target> {
    Some(match field.trim().to_ascii_lowercase().as_str() {
        "time" | "timestamp" => Target::Time,
        "src_ip" | "src" => Target::SrcIp,
        "dst_ip" | "dst" => Target::DstIp,
        "src_port" => Target::SrcPort,
        "dst_port" => Target::DstPort,
        "proto" => Target::Proto,
        "action" => Target::Action,
        "user" => Target::User,
        "domain" => Target::Domain,
        "url" => Target::Url,
        "host" => Target::Host,
        "auth" => Target::Auth,
        _ => return None,
    })
}

/// Names that say what a column holds, compared without case and without
/// `_ - . space`.
fn target_by_name(name: &str) -> Target {
    let n: String = name
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | '.' | ' ' | '@'))
        .flat_map(char::to_lowercase)
        .collect();
    match n.as_str() {
        "src" | "srcip" | "srcaddr" | "srcaddress" | "source" | "sourceip" | "sourceaddr"
        | "sourceaddress" | "sip" | "client" | "clientip" | "clientaddr" | "clientaddress"
        | "cip" | "remoteaddr" | "remoteip" | "remoteaddress" | "idorigh" | "origh" | "saddr" => {
            Target::SrcIp
        }
        "dst" | "dstip" | "dstaddr" | "dstaddress" | "dest" | "destip" | "destaddr"
        | "destination" | "destinationip" | "destinationaddr" | "destinationaddress" | "dip"
        | "serverip" | "serveraddr" | "serveraddress" | "localaddr" | "idresph" | "resph"
        | "daddr" => Target::DstIp,
        "srcport" | "sport" | "sourceport" | "clientport" | "cport" | "idorigp" | "spt" => {
            Target::SrcPort
        }
        "dstport" | "dport" | "destport" | "destinationport" | "serverport" | "idrespp" | "dpt" => {
            Target::DstPort
        }
        "time" | "timestamp" | "ts" | "datetime" | "date" | "eventtime" | "logtime" => Target::Time,
        "proto" | "protocol" | "transport" | "networktransport" | "ipproto" => Target::Proto,
        "user" | "username" | "usr" | "account" | "login" => Target::User,
        _ => Target::Other,
    }
}

fn parse_time_value(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Some((t, n)) = parse_iso8601_prefix(s.as_bytes())
        && n == s.len()
    {
        return Some(t);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) && s.len() >= 12 && s.len() <= 13 {
        // Milliseconds since the epoch.
        return s
            .parse::<i64>()
            .ok()
            .and_then(|ms| Timestamp::from_millisecond(ms).ok());
    }
    if let Some(t) = parse_epoch(s) {
        return Some(t);
    }
    let b = s.as_bytes();
    let b = b.strip_prefix(b"[").unwrap_or(b);
    let b = b.strip_suffix(b"]").unwrap_or(b);
    parse_clf_time(b)
}

fn parse_action(s: &str) -> Option<Action> {
    Some(match s.trim().to_ascii_lowercase().as_str() {
        "allow" | "allowed" | "accept" | "accepted" | "permit" | "permitted" | "pass"
        | "passed" => Action::Allow,
        "deny" | "denied" | "block" | "blocked" => Action::Deny,
        "drop" | "dropped" => Action::Drop,
        "reject" | "rejected" => Action::Reject,
        "alert" | "alerted" => Action::Alert,
        _ => return None,
    })
}

fn parse_auth(s: &str) -> Option<AuthOutcome> {
    Some(match s.trim().to_ascii_lowercase().as_str() {
        "success" | "succeeded" | "successful" | "ok" | "true" | "accepted" | "pass" => {
            AuthOutcome::Success
        }
        "failure" | "failed" | "fail" | "false" | "denied" | "rejected" => AuthOutcome::Failure,
        "invalid" | "invalid_user" | "invaliduser" | "unknown_user" | "no_such_user" => {
            AuthOutcome::InvalidUser
        }
        _ => return None,
    })
}

/// Put one string value where `t` says.
fn apply(ev: &mut Event, t: Target, v: &str) {
    let v = v.trim();
    if v.is_empty() || v == "-" {
        return;
    }
    match t {
        Target::Time => ev.time = parse_time_value(v),
        Target::SrcIp => match parse_ip(v) {
            Some(ip) => ev.src_ip = Some(ip),
            None => scan_into(&mut ev.other_ips, v),
        },
        Target::DstIp => match parse_ip(v) {
            Some(ip) => ev.dst_ip = Some(ip),
            None => scan_into(&mut ev.other_ips, v),
        },
        Target::SrcPort => ev.src_port = v.parse().ok(),
        Target::DstPort => ev.dst_port = v.parse().ok(),
        Target::Proto => ev.proto = Proto::parse(v),
        Target::Action => ev.action = parse_action(v),
        Target::User => ev.user = Some(v.to_owned()),
        Target::Domain => ev.domain = Some(v.trim_end_matches('.').to_ascii_lowercase()),
        Target::Url => {
            scan_into(&mut ev.other_ips, v);
            ev.url = Some(v.to_owned());
        }
        Target::Host => ev.host = Some(v.to_owned()),
        Target::Auth => ev.auth = parse_auth(v),
        Target::Other => match parse_ip(v) {
            Some(ip) => push_ip(&mut ev.other_ips, ip),
            None => scan_into(&mut ev.other_ips, v),
        },
    }
}

fn finish(mut ev: Event) -> Event {
    ev.kind = if ev.auth.is_some() {
        EventKind::Auth
    } else if ev.url.is_some() {
        EventKind::Http
    } else if ev.src_ip.is_some() || ev.dst_ip.is_some() {
        EventKind::Connection
    } else {
        EventKind::Other
    };
    tidy(&mut ev);
    ev
}

// ---- CSV -------------------------------------------------------------------

/// CSV is recognised by its header: column names that look like
/// identifiers (no `:`/`[`/`|`, so syslog and CEF lines never pass), at least
/// one data row, and every row with the header's column count. A header
/// that names known columns (`src_ip`, `time`…) scores above the syslog
/// decoder's guess for timestamp-led rows; an unknown header scores low.
fn sniff_csv(lines: &[&[u8]]) -> u8 {
    let rows: Vec<&[u8]> = lines
        .iter()
        .copied()
        .filter(|l| !l.trim_ascii().is_empty())
        .take(20)
        .collect();
    let Some(first) = rows.first() else { return 0 };
    if rows.len() < 2 {
        return 0;
    }
    let Ok(head) = std::str::from_utf8(first) else {
        return 0;
    };
    let head = head
        .strip_prefix('\u{feff}')
        .unwrap_or(head)
        .trim_end_matches('\r');
    let delim = pick_delimiter(head.as_bytes());
    let cols = split_csv(head, delim);
    if cols.len() < 3 {
        return 0;
    }
    let identifier = |c: &str| {
        let c = c.trim();
        !c.is_empty()
            && c.len() <= 48
            && c.chars().any(|ch| ch.is_ascii_alphabetic())
            && c.chars().all(|ch| {
                ch.is_alphanumeric()
                    || matches!(ch, '_' | '-' | '.' | ' ' | '@' | '/' | '(' | ')' | '#')
            })
            && parse_ip(c).is_none()
    };
    if !cols.iter().all(|c| identifier(c)) {
        return 0;
    }
    let consistent = rows[1..].iter().all(|r| {
        split_csv(String::from_utf8_lossy(r).trim_end_matches('\r'), delim).len() == cols.len()
    });
    if !consistent {
        return 0;
    }
    if cols.iter().any(|c| target_by_name(c) != Target::Other) {
        75
    } else {
        40
    }
}

/// The delimiter of a header line: the most frequent of `, ; \t |`.
fn pick_delimiter(head: &[u8]) -> u8 {
    let mut best = (b',', 0);
    for d in [b',', b';', b'\t', b'|'] {
        let n = head.iter().filter(|c| **c == d).count();
        if n > best.1 {
            best = (d, n);
        }
    }
    best.0
}

/// Split one CSV line (RFC 4180 quoting, `""` escapes a quote).
fn split_csv(line: &str, delim: u8) -> Vec<Cow<'_, str>> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        if b.get(i) == Some(&b'"') {
            let mut j = i + 1;
            let mut owned: Option<String> = None;
            let mut seg_start = j;
            loop {
                match memchr::memchr(b'"', &b[j..]) {
                    None => {
                        // Unterminated: take the rest as is.
                        let s = &line[seg_start..];
                        out.push(match owned {
                            Some(mut o) => {
                                o.push_str(s);
                                Cow::Owned(o)
                            }
                            None => Cow::Borrowed(s),
                        });
                        return out;
                    }
                    Some(q) => {
                        let q = j + q;
                        if b.get(q + 1) == Some(&b'"') {
                            let o = owned.get_or_insert_with(String::new);
                            o.push_str(&line[seg_start..=q]);
                            j = q + 2;
                            seg_start = j;
                        } else {
                            let s = &line[seg_start..q];
                            out.push(match owned.take() {
                                Some(mut o) => {
                                    o.push_str(s);
                                    Cow::Owned(o)
                                }
                                None => Cow::Borrowed(s),
                            });
                            // Skip to the delimiter.
                            match memchr::memchr(delim, &b[q + 1..]) {
                                Some(d) => {
                                    i = q + 1 + d + 1;
                                    break;
                                }
                                None => return out,
                            }
                        }
                    }
                }
            }
        } else {
            match memchr::memchr(delim, &b[i..]) {
                Some(d) => {
                    out.push(Cow::Borrowed(&line[i..i + d]));
                    i += d + 1;
                }
                None => {
                    out.push(Cow::Borrowed(&line[i..]));
                    return out;
                }
            }
        }
    }
}

/// The CSV decoder: its state is the header.
#[derive(Clone)]
struct Csv {
    map: Vec<(String, String)>,
    delim: u8,
    targets: Option<Vec<Target>>,
    /// A `--map` naming a column the header lacks.
    map_error: Option<String>,
}

impl Csv {
    fn new(cfg: &DecoderConfig) -> Self {
        Csv {
            map: cfg.map.clone(),
            delim: b',',
            targets: None,
            map_error: None,
        }
    }

    fn header(&mut self, line: &str) {
        self.delim = pick_delimiter(line.as_bytes());
        let cols: Vec<String> = split_csv(line, self.delim)
            .into_iter()
            .map(|c| c.trim().to_owned())
            .collect();
        let mut targets: Vec<Target> = cols.iter().map(|c| target_by_name(c)).collect();
        let mut explicit = vec![false; cols.len()];
        for (field, column) in &self.map {
            let Some(t) = target_by_field(field) else {
                self.map_error = Some(format!(
                    "--map {field}={column}: unknown field `{field}` (use time, src_ip, dst_ip, src_port, dst_port, proto, action, user, domain, url, host, auth)"
                ));
                continue;
            };
            match cols
                .iter()
                .position(|c| c.eq_ignore_ascii_case(column.trim()))
            {
                Some(i) => {
                    targets[i] = t;
                    explicit[i] = true;
                }
                None => {
                    self.map_error = Some(format!(
                        "--map {field}={column}: no column `{column}` in the CSV header (columns: {})",
                        cols.join(", ")
                    ));
                }
            }
        }
        // An explicit mapping wins over a name-based guess for the same field.
        for i in 0..targets.len() {
            if !explicit[i] && targets[i] != Target::Other {
                let t = targets[i];
                if explicit.iter().zip(&targets).any(|(e, x)| *e && *x == t) {
                    targets[i] = Target::Other;
                }
            }
        }
        self.targets = Some(targets);
    }
}

impl Decoder for Csv {
    fn name(&self) -> &'static str {
        "csv"
    }

    fn decode(&mut self, record: &[u8]) -> Result<Decoded, DecodeError> {
        let record = record.strip_suffix(b"\r").unwrap_or(record);
        if record.trim_ascii().is_empty() || record.starts_with(b"#") {
            return Ok(Decoded::Skip);
        }
        let line = String::from_utf8_lossy(record);
        let line = line.strip_prefix('\u{feff}').unwrap_or(&line);
        let Some(targets) = &self.targets else {
            self.header(line);
            return Ok(Decoded::Skip);
        };
        if let Some(e) = &self.map_error {
            return Err(DecodeError::new(e.clone()));
        }
        let cells = split_csv(line, self.delim);
        if cells.len() != targets.len() {
            return Err(DecodeError::new(format!(
                "expected {} {}-separated fields per CSV header, got {}",
                targets.len(),
                match self.delim {
                    b'\t' => "tab".to_owned(),
                    d => format!("`{}`", d as char),
                },
                cells.len()
            )));
        }
        let mut ev = Event::new(EventKind::Other);
        for (t, c) in targets.iter().zip(&cells) {
            apply(&mut ev, *t, c);
        }
        Ok(Decoded::Event(Box::new(finish(ev))))
    }

    fn fork(&self) -> Box<dyn Decoder> {
        Box::new(self.clone())
    }
}

// ---- JSON lines ------------------------------------------------------------

fn sniff_json(lines: &[&[u8]]) -> u8 {
    let mut total = 0;
    let mut ok = 0;
    for l in lines.iter().take(20) {
        let l = l.trim_ascii();
        if l.is_empty() {
            continue;
        }
        total += 1;
        if l.first() == Some(&b'{') && serde_json::from_slice::<JsonFields<'_>>(l).is_ok() {
            ok += 1;
        }
    }
    if total > 0 && ok * 2 >= total { 15 } else { 0 }
}

/// The JSON-lines decoder: stateless apart from the mapping.
#[derive(Clone)]
struct Json {
    map: Vec<(Target, String)>,
    map_error: Option<String>,
}

impl Json {
    fn new(cfg: &DecoderConfig) -> Self {
        let mut map = Vec::new();
        let mut map_error = None;
        for (field, path) in &cfg.map {
            match target_by_field(field) {
                Some(t) => map.push((t, path.trim().to_owned())),
                None => {
                    map_error = Some(format!(
                        "--map {field}={path}: unknown field `{field}` (use time, src_ip, dst_ip, src_port, dst_port, proto, action, user, domain, url, host, auth)"
                    ))
                }
            }
        }
        Json { map, map_error }
    }

    fn target(&self, key: &str) -> Target {
        if let Some((t, _)) = self.map.iter().find(|(_, p)| p == key) {
            return *t;
        }
        let t = target_by_name(key);
        // A name-based guess never competes with an explicit mapping.
        if t != Target::Other && self.map.iter().any(|(m, _)| *m == t) {
            return Target::Other;
        }
        t
    }
}

impl Decoder for Json {
    fn name(&self) -> &'static str {
        "json"
    }

    fn decode(&mut self, record: &[u8]) -> Result<Decoded, DecodeError> {
        let record = record.trim_ascii();
        if record.is_empty() {
            return Ok(Decoded::Skip);
        }
        if let Some(e) = &self.map_error {
            return Err(DecodeError::new(e.clone()));
        }
        if record.first() != Some(&b'{') {
            return Err(DecodeError::new(
                "not a JSON object: expected one {...} per line",
            ));
        }
        let fields: JsonFields<'_> = serde_json::from_slice(record)
            .map_err(|e| DecodeError::new(format!("invalid JSON: {e}")))?;
        let mut ev = Event::new(EventKind::Other);
        for (k, v) in &fields.0 {
            let t = self.target(k);
            let mut one = |v: &JsonVal<'_>| match v {
                JsonVal::Str(s) => apply(&mut ev, t, s),
                JsonVal::UInt(n) => apply_num(&mut ev, t, *n as f64, &n.to_string()),
                JsonVal::Int(n) => apply_num(&mut ev, t, *n as f64, &n.to_string()),
                JsonVal::Float(f) => apply_num(&mut ev, t, *f, &f.to_string()),
                JsonVal::Bool(b) if t == Target::Auth => {
                    ev.auth = Some(if *b {
                        AuthOutcome::Success
                    } else {
                        AuthOutcome::Failure
                    })
                }
                _ => {}
            };
            match v {
                JsonVal::Arr(items) => items.iter().for_each(&mut one),
                other => one(other),
            }
        }
        Ok(Decoded::Event(Box::new(finish(ev))))
    }

    fn fork(&self) -> Box<dyn Decoder> {
        Box::new(self.clone())
    }
}

/// A JSON number: ports and epoch times; ignored elsewhere.
fn apply_num(ev: &mut Event, t: Target, f: f64, text: &str) {
    match t {
        Target::SrcPort | Target::DstPort | Target::Proto => apply(ev, t, text),
        Target::Time => {
            ev.time = if f > 1e11 {
                Timestamp::from_millisecond(f as i64).ok()
            } else {
                super::zeek_fields::epoch_f64(f)
            }
        }
        _ => {}
    }
}
