//! PortSentry: its history file (`1403884279 - 06/27/2014 17:51:19 Host:
//! 1.2.3.4/1.2.3.4 Port: 1 TCP Blocked`) and its syslog alerts
//! (`attackalert: Connect from host: 1.2.3.4/1.2.3.4 to TCP port: 22`,
//! `attackalert: Host 1.2.3.4 has been blocked ...`).

use super::Ctx;
use super::TimeQuality;
use super::fields::{parse_ip, parse_port, parse_proto};
use super::timestamp::parse_epoch;
use crate::model::{Action, Event, EventKind};

/// Does the text look like a PortSentry record?
pub(crate) fn looks_like(s: &str) -> bool {
    s.contains("attackalert:")
        || (s.contains("Host: ") && s.contains(" Port: ") && s.contains("locked"))
}

/// `name/1.2.3.4` or `1.2.3.4`.
fn host(tok: &str) -> Option<std::net::IpAddr> {
    match tok.rsplit_once('/') {
        Some((a, b)) => parse_ip(b).or_else(|| parse_ip(a)),
        None => parse_ip(tok),
    }
}

/// Parse a PortSentry line.
pub(crate) fn parse(c: &Ctx) -> Option<Event> {
    let m = c.msg;
    let mut ev = Event::new(EventKind::Connection);
    let first = m.split(' ').next().unwrap_or("");
    if first.len() >= 9 && first.bytes().all(|b| b.is_ascii_digit()) {
        c.pick_time(&mut ev, parse_epoch(first).map(|t| (t, TimeQuality::Zoned)));
    }
    let lower_key = |k: &str| {
        let i = m.find(k).or_else(|| m.find(&k.to_ascii_lowercase()))? + k.len();
        Some(m[i..].trim_start().split(' ').next().unwrap_or(""))
    };
    ev.src_ip = lower_key("Host: ")
        .and_then(host)
        .or_else(|| lower_key("Host ").and_then(host))
        .or_else(|| lower_key("host: ").and_then(host));
    ev.src_ip?;
    ev.dst_port = lower_key("Port: ")
        .or_else(|| lower_key("port: "))
        .and_then(parse_port);
    for p in ["TCP", "UDP"] {
        if m.contains(&format!(" {p} ")) || m.contains(&format!("to {p} port")) {
            ev.proto = parse_proto(p);
        }
    }
    if m.contains("locked") {
        ev.action = Some(Action::Deny);
    } else {
        ev.kind = EventKind::Alert;
    }
    Some(ev)
}
