//! Fortinet FortiGate `key=value` logs (behind syslog or raw):
//! `date= time= tz= eventtime= logid= type= subtype= ... srcip= dstip=
//! srcport= dstport= proto= action= sentbyte= rcvdbyte=`.
//!
//! * `type=traffic` → connection; `action=deny|blocked` deny, `dropped`
//!   drop, anything else (accept, close, timeout, client-rst, server-rst)
//!   allow;
//! * `type=event subtype=vpn` with `action=ssl-login-fail` or a `logdesc`
//!   containing "login fail" → auth failure, service `vpn`, source `remip`;
//!   `tunnel-up` / `ssl-login-success` → success;
//! * `subtype=system` admin logins (`logdesc="Admin login failed"`,
//!   `action=login status=failed|success`) → auth, service from `ui=`;
//! * `type=utm` / `attack=` → alert.
//!
//! Time: `eventtime` (epoch s/µs/ns) when present, else `date`+`time`+`tz`.

use super::Ctx;
use super::fields::{
    add_remaining_ips, contains_ci, for_each_kv, nonempty, parse_action, parse_ip, parse_port,
    parse_proto,
};
use super::timestamp::{civil_to_timestamp, parse_epoch};
use super::{TimeQuality, quality_of};
use crate::model::{Action, AuthOutcome, Event, EventKind};

/// Does the text look like a FortiGate record?
pub(crate) fn looks_like(s: &str) -> bool {
    (s.contains("logid=") && s.contains("type=")) || s.contains("devname=")
}

#[derive(Default)]
struct F<'a> {
    typ: &'a str,
    subtype: &'a str,
    action: &'a str,
    status: &'a str,
    logdesc: &'a str,
    date: &'a str,
    time: &'a str,
    tz: &'a str,
    eventtime: &'a str,
    user: &'a str,
    remip: &'a str,
    ui: &'a str,
    attack: &'a str,
}

/// Parse a FortiGate record.
pub(crate) fn parse(c: &Ctx) -> Option<Event> {
    let text = c.body;
    let mut ev = Event::new(EventKind::Other);
    let mut f = F::default();
    for_each_kv(text, |k, v| match k {
        "type" => f.typ = v,
        "subtype" => f.subtype = v,
        "action" => f.action = v,
        "status" => f.status = v,
        "logdesc" => f.logdesc = v,
        "date" => f.date = v,
        "time" => f.time = v,
        "tz" => f.tz = v,
        "eventtime" => f.eventtime = v,
        "user" | "srcuser" if f.user.is_empty() => f.user = v,
        "remip" => f.remip = v,
        "ui" => f.ui = v,
        "attack" => f.attack = v,
        "srcip" => ev.src_ip = parse_ip(v),
        "dstip" => ev.dst_ip = parse_ip(v),
        "srcport" => ev.src_port = parse_port(v),
        "dstport" => ev.dst_port = parse_port(v),
        "proto" => ev.proto = parse_proto(v),
        "sentbyte" => ev.bytes_out = v.parse().ok(),
        "rcvdbyte" => ev.bytes_in = v.parse().ok(),
        "sentpkt" | "rcvdpkt" => {
            if let Ok(n) = v.parse::<u64>() {
                ev.packets = Some(ev.packets.unwrap_or(0) + n);
            }
        }
        "devname" => ev.host = nonempty(v),
        "hostname" => ev.domain = nonempty(v),
        "url" => ev.url = nonempty(v),
        "service" => ev.service = nonempty(v),
        _ => {}
    });
    if f.typ.is_empty() && f.action.is_empty() && ev.src_ip.is_none() && f.remip.is_empty() {
        return None;
    }
    let desc_fail = contains_ci(f.logdesc, "login fail") || contains_ci(f.logdesc, "login failed");
    if f.typ == "traffic" {
        ev.kind = EventKind::Connection;
        ev.action = match f.action {
            "deny" | "blocked" | "block" => Some(Action::Deny),
            "dropped" | "drop" => Some(Action::Drop),
            "" => None,
            _ => Some(Action::Allow),
        };
    } else if f.subtype == "vpn" || f.action.starts_with("ssl-") || f.action == "tunnel-up" {
        let fail = f.action.contains("login-fail") || desc_fail;
        let ok = f.action == "tunnel-up" || f.action.contains("login-success");
        if fail || ok {
            ev.kind = EventKind::Auth;
            ev.auth = Some(if fail {
                AuthOutcome::Failure
            } else {
                AuthOutcome::Success
            });
            ev.service = Some("vpn".to_string());
            ev.user = nonempty(f.user);
        }
        if let Some(ip) = parse_ip(f.remip)
            && let Some(old) = ev.src_ip.replace(ip)
            && old != ip
        {
            super::fields::push_other(&mut ev, old);
        }
    } else if (f.action == "login" && (f.status == "failed" || f.status == "success"))
        || (contains_ci(f.logdesc, "admin login")
            && (desc_fail || contains_ci(f.logdesc, "success")))
    {
        ev.kind = EventKind::Auth;
        ev.auth = Some(if f.status == "failed" || desc_fail {
            AuthOutcome::Failure
        } else {
            AuthOutcome::Success
        });
        ev.user = nonempty(f.user);
        ev.service = Some(match f.ui.split('(').next() {
            Some(s) if !s.is_empty() => s.to_string(),
            _ => "admin".to_string(),
        });
        if ev.src_ip.is_none()
            && let Some((_, r)) = f.ui.split_once('(')
        {
            ev.src_ip = parse_ip(r.trim_end_matches(')'));
        }
    } else if f.typ == "utm" || f.typ == "attack" || !f.attack.is_empty() {
        ev.kind = EventKind::Alert;
        ev.action = parse_action(f.action);
        ev.user = nonempty(f.user);
    } else {
        ev.action = parse_action(f.action);
    }
    // Time.
    let body_time = parse_epoch(f.eventtime)
        .map(|t| (t, TimeQuality::Zoned))
        .or_else(|| date_time(f.date, f.time, f.tz, c));
    c.pick_time(&mut ev, body_time);
    add_remaining_ips(&mut ev, text);
    Some(ev)
}

/// `date=2024-10-14 time=13:46:40 tz="-0700"`.
fn date_time(date: &str, time: &str, tz: &str, c: &Ctx) -> Option<(jiff::Timestamp, TimeQuality)> {
    if date.is_empty() || time.is_empty() {
        return None;
    }
    let s = format!("{date}T{time}{tz}");
    let (ct, n) = super::timestamp::parse_iso(s.as_bytes())?;
    if n != s.len() {
        // Unreadable zone: keep the civil time.
        let mut ct = ct;
        ct.offset = None;
        return c.civil(&ct);
    }
    let _ = civil_to_timestamp;
    c.civil(&ct).map(|(t, _)| (t, quality_of(&ct)))
}
