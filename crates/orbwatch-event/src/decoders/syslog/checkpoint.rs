//! Check Point gateway logs exported over syslog, in the three shapes seen
//! in the wild:
//!
//! * RFC 5424 with the fields as structured data: Log Exporter's
//!   `[Fields@1.3.6.1.4.1.2620 action="Accept" src="..." ...]` or the older
//!   `[action:"Drop"; src:"..."; ...]`;
//! * `key=value` pairs separated by spaces or `|` (OPSEC LEA exports);
//! * `key: value;` pairs (`src: 1.2.3.4; dst: 5.6.7.8; action: drop;`).
//!
//! Fields: `src`, `dst`, `s_port`, `service` (destination port when
//! numeric), `proto`, `action`, `xlatesrc`/`xlatedst` and `origin` (to
//! `other_ips`), `user`/`src_user_name`, `time` (epoch). Actions `Accept`,
//! `Drop`, `Reject`, `Block` make connection events; `Failed Log In` and
//! `Log In` auth events; `Detect`/`Prevent` alerts.

use super::Ctx;
use super::fields::{
    add_remaining_ips, contains_ci, nonempty, parse_action, parse_ip, parse_port, parse_proto,
    push_other, starts_with_ci,
};
use super::timestamp::parse_epoch;
use super::{TimeQuality, quality_of};
use crate::model::{Action, AuthOutcome, Event, EventKind};

/// Is this line from a Check Point gateway or management server?
pub(crate) fn looks_like(c: &Ctx) -> bool {
    let app = c.app;
    starts_with_ci(app, "checkpoint")
        || app.eq_ignore_ascii_case("CP-GW")
        || app.eq_ignore_ascii_case("cplog")
        || c.body.contains("[Fields@1.3.6.1.4.1.2620")
        || c.body.contains("product:\"")
        || c.body.contains("|product=")
        || (c.body.contains("src: ") && c.body.contains("; dst: "))
}

/// Iterate Check Point's `key="v"`, `key:"v";`, `key: v;`, `key=v|` pairs.
fn for_each_pair<'a>(s: &'a str, mut f: impl FnMut(&'a str, &'a str)) {
    let b = s.as_bytes();
    let n = b.len();
    let mut i = 0;
    while i < n {
        while i < n && matches!(b[i], b' ' | b';' | b'|' | b'[' | b']' | b'\t') {
            i += 1;
        }
        let ks = i;
        while i < n && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'.' | b'-' | b'@')) {
            i += 1;
        }
        let ke = i;
        // `ike::"..."`: extra colons belong to the separator.
        while i < n && b[i] == b':' && i + 1 < n && b[i + 1] == b':' {
            i += 1;
        }
        if i >= n || ke == ks || (b[i] != b'=' && b[i] != b':') {
            // Not a pair: skip to the next separator.
            while i < n && !matches!(b[i], b' ' | b';' | b'|') {
                i += 1;
            }
            i += 1;
            continue;
        }
        let colon = b[i] == b':';
        i += 1;
        if colon {
            while i < n && b[i] == b' ' {
                i += 1;
            }
        }
        let key = &s[ks..ke];
        if i < n && b[i] == b'"' {
            let (v, next) = super::fields::quoted_value(s, i);
            f(key, v);
            i = next;
        } else {
            let vs = i;
            while i < n
                && !(b[i] == b';' || b[i] == b'|' || (!colon && b[i] == b' ') || b[i] == b']')
            {
                i += 1;
            }
            f(key, s[vs..i].trim());
        }
    }
}

/// Parse a Check Point record.
pub(crate) fn parse(c: &Ctx) -> Option<Event> {
    let text = if c.sd.is_empty() { c.body } else { c.sd };
    let mut ev = Event::new(EventKind::Other);
    let mut action = "";
    let mut epoch = "";
    let mut service = "";
    let mut user = "";
    for_each_pair(text, |k, v| match k {
        "src" => ev.src_ip = parse_ip(v),
        "dst" => ev.dst_ip = parse_ip(v),
        "s_port" => ev.src_port = parse_port(v),
        "service" => service = v,
        "proto" => ev.proto = parse_proto(v),
        "action" => action = v,
        "time" => epoch = v,
        "user" | "src_user_name" | "User" if user.is_empty() => user = v,
        "xlatesrc" | "xlatedst" | "origin" | "peer_gateway" => {
            if let Some(ip) = parse_ip(v)
                && !ip.is_unspecified()
            {
                push_other(&mut ev, ip);
            }
        }
        "client_inbound_bytes" | "received_bytes" => ev.bytes_in = v.parse().ok(),
        "client_outbound_bytes" | "sent_bytes" => ev.bytes_out = v.parse().ok(),
        _ => {}
    });
    if action.is_empty() && ev.src_ip.is_none() && ev.dst_ip.is_none() {
        return None;
    }
    ev.dst_port = parse_port(service);
    if contains_ci(action, "log in") || contains_ci(action, "login") {
        ev.kind = EventKind::Auth;
        ev.auth = Some(if contains_ci(action, "fail") {
            AuthOutcome::Failure
        } else {
            AuthOutcome::Success
        });
        ev.user = nonempty(user);
    } else {
        ev.action = parse_action(action);
        ev.user = nonempty(user);
        ev.kind = match ev.action {
            Some(Action::Alert) => EventKind::Alert,
            _ if contains_ci(action, "prevent") => EventKind::Alert,
            Some(_) if ev.src_ip.is_some() || ev.dst_ip.is_some() => EventKind::Connection,
            _ => EventKind::Other,
        };
    }
    let body_time = parse_epoch(epoch).map(|t| (t, TimeQuality::Zoned));
    let _ = quality_of;
    c.pick_time(&mut ev, body_time);
    add_remaining_ips(&mut ev, c.body);
    Some(ev)
}
