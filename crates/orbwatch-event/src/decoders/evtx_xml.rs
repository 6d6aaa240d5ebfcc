//! Windows events rendered as XML, one per line (as exported by
//! `wevtutil qe /f:xml`, Get-WinEvent's `ToXml()`, Winlogbeat or
//! CrowdSec's test inputs), mapped to authentication events.
//!
//! The same mapping serves the binary EVTX reader of `orbwatch-capture`,
//! which renders each record to XML and calls [`map_event_xml`].
//!
//! Mapped (others are read and skipped, not rejected):
//!
//! | event | outcome | fields |
//! |---|---|---|
//! | Security 4624 | success | TargetUserName, IpAddress/IpPort, WorkstationName, LogonType |
//! | Security 4625 | failure; `invalid_user` for status 0xC0000064 | same |
//! | Security 4648 | none (an attempt with explicit credentials) | TargetUserName, IpAddress, TargetServerName |
//! | Security 4768 | Kerberos TGT: success for status 0x0, `invalid_user` for 0x6, else failure | TargetUserName, IpAddress |
//! | Security 4771 | Kerberos pre-authentication failed: failure (`invalid_user` for 0x6) | TargetUserName, IpAddress |
//! | Security 4776 | NTLM validation: success for 0x0, `invalid_user` for 0xC0000064, else failure | TargetUserName, Workstation |
//! | MSSQL 18456 | failure | user (first datum), `[CLIENT: ip]` |
//! | RdpCoreTS 131 | a connection (no outcome) | ClientIP |
//! | RdpCoreTS 140 | failure (bad user name or password) | IPString |
//! | TerminalServices-RemoteConnectionManager 1149 | success | Param1 user, Param3 address |
//! | TerminalServices-LocalSessionManager 21, 25 | success (logon, reconnection) | User, Address |
//!
//! The workstation name goes to `host`, the logon type to `service`
//! (`rdp` for type 10, `logon-type-N` otherwise). The record id and
//! channel stay in the raw XML kept as evidence.

use std::net::IpAddr;

use jiff::Timestamp;

use super::{DecodeError, Decoded, Decoder, DecoderConfig, DecoderInfo};
use crate::model::{AuthOutcome, Event, EventKind, Proto};

pub const INFO: DecoderInfo = DecoderInfo {
    name: "evtx-xml",
    description: "Windows events rendered as XML, one per line (Security logons, Kerberos, NTLM, MSSQL, RDP)",
    sniff,
    make,
};

fn sniff(lines: &[&[u8]]) -> u8 {
    let hits = lines
        .iter()
        .filter(|l| {
            let l = l.trim_ascii_start();
            l.starts_with(b"<Event ") || l.starts_with(b"<Event>")
        })
        .count();
    if hits > 0 && hits * 2 >= lines.len() {
        95
    } else {
        0
    }
}

fn make(_cfg: &DecoderConfig) -> Box<dyn Decoder> {
    Box::new(EvtxXml)
}

struct EvtxXml;

impl Decoder for EvtxXml {
    fn name(&self) -> &'static str {
        "evtx-xml"
    }

    fn decode(&mut self, record: &[u8]) -> Result<Decoded, DecodeError> {
        let text = std::str::from_utf8(record)
            .map_err(|_| DecodeError::new("event XML is not valid UTF-8"))?;
        if text.trim().is_empty() || text.trim_start().starts_with("<?xml") {
            return Ok(Decoded::Skip);
        }
        map_event_xml(text)
    }

    fn fork(&self) -> Box<dyn Decoder> {
        Box::new(EvtxXml)
    }
}

/// The parts of a Windows event that the mapping reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WinEvent {
    pub event_id: u32,
    pub provider: String,
    pub channel: String,
    pub computer: String,
    pub record_id: Option<u64>,
    pub time: Option<Timestamp>,
    /// `EventData/Data` items (named or not) and the leaf elements of
    /// `UserData`, in document order.
    pub data: Vec<(Option<String>, String)>,
}

impl WinEvent {
    /// A named datum, `None` when absent, empty or `-`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.data
            .iter()
            .find(|(n, _)| n.as_deref() == Some(name))
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty() && *v != "-")
    }
}

/// Parse one event's XML and map it: an auth (or RDP connection) event,
/// `Skip` for event ids that are not mapped, an error when the XML is not
/// a Windows event.
pub fn map_event_xml(xml: &str) -> Result<Decoded, DecodeError> {
    let w = parse_event_xml(xml)?;
    Ok(match to_event(&w) {
        Some(e) => Decoded::Event(Box::new(e)),
        None => Decoded::Skip,
    })
}

/// Parse the XML of one event (any whitespace between elements).
pub fn parse_event_xml(xml: &str) -> Result<WinEvent, DecodeError> {
    let mut w = WinEvent::default();
    let mut stack: Vec<&str> = Vec::new();
    let mut saw_event = false;
    let mut saw_id = false;
    let mut pending_data_name: Option<String> = None;
    let b = xml.as_bytes();
    let mut i = 0;
    while let Some(lt) = memchr::memchr(b'<', &b[i..]) {
        let start = i + lt;
        // Text before this tag belongs to the innermost open element.
        let text = &xml[i..start];
        if !text.trim().is_empty() {
            handle_text(&mut w, &stack, &mut pending_data_name, text, &mut saw_id)?;
        }
        if xml[start..].starts_with("<!--") {
            i = match xml[start..].find("-->") {
                Some(e) => start + e + 3,
                None => return Err(DecodeError::new("unterminated XML comment")),
            };
            continue;
        }
        if xml[start..].starts_with("<![CDATA[") {
            let Some(e) = xml[start..].find("]]>") else {
                return Err(DecodeError::new("unterminated CDATA section"));
            };
            let cdata = &xml[start + 9..start + e];
            handle_text(&mut w, &stack, &mut pending_data_name, cdata, &mut saw_id)?;
            i = start + e + 3;
            continue;
        }
        let Some(gt) = memchr::memchr(b'>', &b[start..]) else {
            return Err(DecodeError::new("XML tag not closed (record cut short?)"));
        };
        let end = start + gt;
        let tag = &xml[start + 1..end];
        i = end + 1;
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let name = name.trim();
            if let Some(pos) = stack.iter().rposition(|n| *n == name) {
                stack.truncate(pos);
            }
            if name == "Data" {
                // `<Data Name="X"></Data>`: an empty value.
                if let Some(n) = pending_data_name.take() {
                    w.data.push((Some(n), String::new()));
                }
            }
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let (name, attrs) = match tag.find(|c: char| c.is_ascii_whitespace()) {
            Some(p) => (&tag[..p], &tag[p..]),
            None => (tag, ""),
        };
        match name {
            "Event" => saw_event = true,
            "Provider" if stack.last() == Some(&"System") => {
                if let Some(v) = attr(attrs, "Name") {
                    w.provider = v;
                }
            }
            "TimeCreated" => {
                if let Some(v) = attr(attrs, "SystemTime") {
                    w.time = v.trim().parse::<Timestamp>().ok();
                    if w.time.is_none() {
                        return Err(DecodeError::new(format!(
                            "TimeCreated SystemTime {v:?} is not a time"
                        )));
                    }
                }
            }
            "Data" if stack.last() == Some(&"EventData") => {
                let n = attr(attrs, "Name");
                if self_closing {
                    w.data.push((n, String::new()));
                } else {
                    pending_data_name = Some(n.unwrap_or_default());
                }
            }
            _ => {}
        }
        if !self_closing {
            stack.push(name);
        }
    }
    if !saw_event {
        return Err(DecodeError::new("not a Windows event: no <Event> element"));
    }
    if !saw_id {
        return Err(DecodeError::new("Windows event without an EventID"));
    }
    Ok(w)
}

fn handle_text(
    w: &mut WinEvent,
    stack: &[&str],
    pending: &mut Option<String>,
    raw: &str,
    saw_id: &mut bool,
) -> Result<(), DecodeError> {
    let Some(&cur) = stack.last() else {
        return Ok(());
    };
    let text = unescape(raw);
    let parent = stack.len().checked_sub(2).map(|i| stack[i]);
    match (parent, cur) {
        (Some("System"), "EventID") => {
            w.event_id = text.trim().parse().map_err(|_| {
                DecodeError::new(format!("EventID {:?} is not a number", text.trim()))
            })?;
            *saw_id = true;
        }
        (Some("System"), "EventRecordID") => w.record_id = text.trim().parse().ok(),
        (Some("System"), "Channel") => w.channel = text.trim().to_string(),
        (Some("System"), "Computer") => w.computer = text.trim().to_string(),
        (Some("EventData"), "Data") => {
            let name = pending.take();
            let name = name.filter(|n| !n.is_empty());
            w.data.push((name, text));
        }
        _ if stack.contains(&"UserData") => w.data.push((Some(cur.to_string()), text)),
        _ => {}
    }
    Ok(())
}

/// The value of attribute `name` in a tag's attribute text.
fn attr(attrs: &str, name: &str) -> Option<String> {
    let mut rest = attrs;
    while let Some(p) = rest.find(name) {
        let before_ok = p == 0 || rest.as_bytes()[p - 1].is_ascii_whitespace();
        let after = rest[p + name.len()..].trim_start();
        if before_ok && let Some(v) = after.strip_prefix('=') {
            let v = v.trim_start();
            let q = v.chars().next()?;
            if q == '"' || q == '\'' {
                let body = &v[1..];
                let e = body.find(q)?;
                return Some(unescape(&body[..e]));
            }
        }
        rest = &rest[p + name.len()..];
    }
    None
}

fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        let tail = &rest[p..];
        let Some(semi) = tail.find(';').filter(|&e| e <= 10) else {
            out.push('&');
            rest = &tail[1..];
            continue;
        };
        let ent = &tail[1..semi];
        let ch = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => ent
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &tail[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// An address as Windows writes it: `::ffff:10.0.0.1` is IPv4, `-` and
/// empty are none, `ip:port` carries a port.
fn win_addr(s: Option<&str>) -> (Option<IpAddr>, Option<u16>) {
    let Some(s) = s.map(str::trim).filter(|s| !s.is_empty() && *s != "-") else {
        return (None, None);
    };
    let s = s.trim_start_matches('[');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return (Some(canonical(ip)), None);
    }
    if let Some((a, p)) = s.rsplit_once(':')
        && let Ok(ip) = a.trim_end_matches(']').parse::<IpAddr>()
    {
        return (Some(canonical(ip)), p.parse().ok());
    }
    (None, None)
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn status(w: &WinEvent, names: &[&str]) -> Option<u32> {
    names.iter().find_map(|n| {
        let v = w.get(n)?;
        let v = v.trim_start_matches("0x").trim_start_matches("0X");
        u32::from_str_radix(v, 16).ok()
    })
}

/// Map a parsed Windows event to an auth or RDP connection event; `None`
/// for events this mapping does not cover.
pub fn to_event(w: &WinEvent) -> Option<Event> {
    let provider = w.provider.to_ascii_lowercase();
    let channel = w.channel.to_ascii_lowercase();
    let security = channel == "security" || provider.contains("security-auditing");
    let mut ev = Event::new(EventKind::Auth);
    ev.time = w.time;
    let set_addr = |ev: &mut Event, a: Option<&str>, port: Option<&str>| {
        let (ip, p) = win_addr(a);
        ev.src_ip = ip;
        ev.src_port = p.or_else(|| port.and_then(|s| s.trim().parse().ok()).filter(|p| *p != 0));
        if ev.src_ip.is_some() && ev.src_port.is_some() {
            ev.proto = Some(Proto::Tcp);
        }
    };
    let logon_service = |t: Option<&str>| -> Option<String> {
        let t = t?;
        Some(if t == "10" {
            "rdp".to_string()
        } else {
            format!("logon-type-{t}")
        })
    };
    match w.event_id {
        4624 | 4625 if security => {
            ev.user = w.get("TargetUserName").map(str::to_string);
            set_addr(&mut ev, w.get("IpAddress"), w.get("IpPort"));
            ev.host = w.get("WorkstationName").map(str::to_string);
            ev.service = logon_service(w.get("LogonType"));
            ev.auth = Some(if w.event_id == 4624 {
                AuthOutcome::Success
            } else if status(w, &["SubStatus"]) == Some(0xC000_0064)
                || status(w, &["Status"]) == Some(0xC000_0064)
            {
                AuthOutcome::InvalidUser
            } else {
                AuthOutcome::Failure
            });
        }
        4648 if security => {
            ev.user = w.get("TargetUserName").map(str::to_string);
            set_addr(&mut ev, w.get("IpAddress"), w.get("IpPort"));
            ev.host = w.get("TargetServerName").map(str::to_string);
            ev.service = Some("explicit-credentials".into());
        }
        4768 | 4771 if security => {
            ev.user = w.get("TargetUserName").map(str::to_string);
            set_addr(&mut ev, w.get("IpAddress"), w.get("IpPort"));
            ev.service = Some("kerberos".into());
            let st = status(w, &["Status"]);
            ev.auth = Some(match st {
                Some(0) if w.event_id == 4768 => AuthOutcome::Success,
                Some(6) => AuthOutcome::InvalidUser,
                _ => AuthOutcome::Failure,
            });
        }
        4776 if security => {
            ev.user = w.get("TargetUserName").map(str::to_string);
            ev.host = w.get("Workstation").map(str::to_string);
            ev.service = Some("ntlm".into());
            ev.auth = Some(match status(w, &["Status"]) {
                Some(0) => AuthOutcome::Success,
                Some(0xC000_0064) => AuthOutcome::InvalidUser,
                _ => AuthOutcome::Failure,
            });
        }
        18456 if provider.starts_with("mssql") || channel == "application" => {
            let unnamed: Vec<&str> = w
                .data
                .iter()
                .filter(|(n, _)| n.is_none())
                .map(|(_, v)| v.as_str())
                .collect();
            ev.user = unnamed
                .first()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty());
            let client = unnamed.iter().find_map(|v| {
                let p = v.find("[CLIENT:")?;
                let rest = &v[p + 8..];
                Some(rest[..rest.find(']')?].trim())
            });
            set_addr(&mut ev, client, None);
            ev.service = Some("mssql".into());
            ev.auth = Some(AuthOutcome::Failure);
        }
        131 if provider.contains("rdpcorets") || channel.contains("rdpcorets") => {
            ev.kind = EventKind::Connection;
            set_addr(&mut ev, w.get("ClientIP"), None);
            ev.service = Some("rdp".into());
        }
        140 if provider.contains("rdpcorets") || channel.contains("rdpcorets") => {
            set_addr(&mut ev, w.get("IPString"), None);
            ev.service = Some("rdp".into());
            ev.auth = Some(AuthOutcome::Failure);
        }
        1149 if provider.contains("remoteconnectionmanager")
            || channel.contains("remoteconnectionmanager") =>
        {
            ev.user = w.get("Param1").map(str::to_string);
            set_addr(&mut ev, w.get("Param3"), None);
            ev.service = Some("rdp".into());
            ev.auth = Some(AuthOutcome::Success);
        }
        21 | 25
            if provider.contains("localsessionmanager")
                || channel.contains("localsessionmanager") =>
        {
            ev.user = w
                .get("User")
                .map(|u| u.rsplit('\\').next().unwrap_or(u).to_string());
            set_addr(&mut ev, w.get("Address"), None);
            ev.service = Some("rdp".into());
            ev.auth = Some(AuthOutcome::Success);
        }
        _ => return None,
    }
    Some(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kerberos_mapped_address_is_ipv4() {
        let x = r#"<Event xmlns="x"><System><Provider Name="Microsoft-Windows-Security-Auditing"/><EventID>4771</EventID><TimeCreated SystemTime="2021-12-03T12:06:04.193181Z"/><EventRecordID>7</EventRecordID><Channel>Security</Channel><Computer>dc</Computer></System><EventData><Data Name="TargetUserName">svc</Data><Data Name="Status">0x18</Data><Data Name="IpAddress">::ffff:10.23.123.11</Data><Data Name="IpPort">48946</Data></EventData></Event>"#;
        let Decoded::Event(e) = map_event_xml(x).unwrap() else {
            panic!("not mapped")
        };
        assert_eq!(e.src_ip, Some("10.23.123.11".parse().unwrap()));
        assert_eq!(e.src_port, Some(48946));
        assert_eq!(e.user.as_deref(), Some("svc"));
        assert_eq!(e.auth, Some(AuthOutcome::Failure));
    }

    #[test]
    fn cut_xml_is_rejected() {
        assert!(map_event_xml("<Event><System><EventID>46").is_err());
        assert!(map_event_xml("hello").is_err());
    }
}
