//! Juniper: JunOS SRX `RT_FLOW_SESSION_CREATE/CLOSE/DENY`, `RT_IDS`,
//! `RT_SCREEN`, `SSHD_LOGIN_FAILED` in structured form (`[junos@2636...
//! source-address="..." ...]`) and plain form (`RT_FLOW_SESSION_DENY:
//! session denied 1.2.3.4/5678->5.6.7.8/22 junos-ssh 6(0) ...`), and
//! ScreenOS/NetScreen (`NetScreen device_id=... [Root]system-...: ...`,
//! traffic logs with `src= dst= src_port= dst_port= action=`).

use super::fields::{
    add_remaining_ips, for_each_kv, kv_get, nonempty, parse_action, parse_ip, parse_port,
    parse_proto, push_other, split_ip_port,
};
use super::timestamp::parse_iso;
use super::{Ctx, quality_of};
use crate::model::{Action, AuthOutcome, Event, EventKind};

/// Does the text hold a JunOS event?
pub(crate) fn looks_like(s: &str) -> bool {
    s.contains("RT_FLOW")
        || s.contains("RT_IDS")
        || s.contains("RT_SCREEN")
        || s.contains("SSHD_LOGIN_FAILED")
        || s.contains("[junos@")
}

/// Parse a JunOS event.
pub(crate) fn parse(c: &Ctx) -> Option<Event> {
    let body = c.body;
    let mut ev = Event::new(EventKind::Other);
    // `junos-flow: 2017-09-23T13:54:54.803Z host RT_FLOW - ...`: the inner time.
    let inner = c.msg.trim_start();
    let body_time = parse_iso(inner.as_bytes())
        .and_then(|(ct, _)| c.civil(&ct).map(|(t, _)| (t, quality_of(&ct))));
    c.pick_time(&mut ev, body_time);
    let tag = if body.contains("RT_FLOW_SESSION_CREATE") {
        "create"
    } else if body.contains("RT_FLOW_SESSION_CLOSE") {
        "close"
    } else if body.contains("RT_FLOW_SESSION_DENY") {
        "deny"
    } else if body.contains("SSHD_LOGIN_FAILED") {
        "sshd"
    } else if body.contains("RT_IDS") || body.contains("RT_SCREEN") {
        "ids"
    } else {
        "other"
    };
    match tag {
        "create" | "close" => {
            ev.kind = EventKind::Connection;
            ev.action = Some(Action::Allow);
            ev.conn_state = Some(tag.to_string());
        }
        "deny" => {
            ev.kind = EventKind::Connection;
            ev.action = Some(Action::Deny);
        }
        "sshd" => {
            ev.kind = EventKind::Auth;
            ev.auth = Some(AuthOutcome::Failure);
            ev.service = Some("sshd".to_string());
        }
        "ids" => ev.kind = EventKind::Alert,
        _ => {}
    }
    if let Some(i) = body.find("[junos@") {
        let sd = &body[i + 1..];
        let end = sd.rfind(']').unwrap_or(sd.len());
        let sd = &sd[..end];
        let mut packets = None::<u64>;
        for_each_kv(sd, |k, v| match k {
            "source-address" => ev.src_ip = parse_ip(v),
            "destination-address" => ev.dst_ip = parse_ip(v),
            "source-port" => ev.src_port = parse_port(v),
            "destination-port" => ev.dst_port = parse_port(v),
            "protocol-id" | "protocol-name" => ev.proto = parse_proto(v),
            "bytes-from-client" => ev.bytes_out = v.parse().ok(),
            "bytes-from-server" => ev.bytes_in = v.parse().ok(),
            "packets-from-client" | "packets-from-server" => {
                if let Ok(n) = v.parse::<u64>() {
                    packets = Some(packets.unwrap_or(0) + n);
                }
            }
            "username" if tag == "sshd" => ev.user = nonempty(v),
            "action" if tag == "ids" => ev.action = parse_action(v),
            "nat-source-address" | "nat-destination-address" => {
                if let Some(ip) = parse_ip(v) {
                    push_other(&mut ev, ip);
                }
            }
            _ => {}
        });
        ev.packets = packets;
    } else if tag == "sshd" {
        // SSHD_LOGIN_FAILED: Login failed for user 'root' from host '1.2.3.4'
        let q = |key: &str| {
            let i = body.find(key)? + key.len();
            let j = body[i..].find('\'')? + i;
            Some(&body[i..j])
        };
        ev.user = q("for user '").and_then(nonempty);
        ev.src_ip = q("from host '").and_then(parse_ip);
    } else {
        // Plain RT_FLOW: the first `a/p->b/q` is the session, a second is NAT.
        let mut first = true;
        for tok in body.split(' ') {
            if let Some((a, b)) = tok.split_once("->") {
                let a = split_ip_port(a, '/');
                let b = split_ip_port(b.trim_end_matches(','), '/');
                if first {
                    if let Some((ip, p)) = a {
                        ev.src_ip = Some(ip);
                        ev.src_port = p;
                    }
                    if let Some((ip, p)) = b {
                        ev.dst_ip = Some(ip);
                        ev.dst_port = p;
                    }
                    first = false;
                } else {
                    for (ip, _) in [a, b].into_iter().flatten() {
                        push_other(&mut ev, ip);
                    }
                }
            } else if tag == "deny" && ev.proto.is_none() && !first {
                // `6(0)`: protocol(icmp type)
                if let Some((p, _)) = tok.split_once('(')
                    && !p.is_empty()
                    && p.bytes().all(|b| b.is_ascii_digit())
                {
                    ev.proto = parse_proto(p);
                }
            }
        }
    }
    add_remaining_ips(&mut ev, body);
    Some(ev)
}

/// Parse a ScreenOS / NetScreen record.
pub(crate) fn parse_netscreen(c: &Ctx) -> Option<Event> {
    let body = c.body;
    let i = body.find("NetScreen device_id=")?;
    let m = &body[i..];
    let mut ev = Event::new(EventKind::Other);
    ev.time = c.time;
    if m.contains("(traffic):") || m.contains(" src_port=") {
        ev.kind = EventKind::Connection;
        for_each_kv(m, |k, v| match k {
            "src" => ev.src_ip = parse_ip(v),
            "dst" => ev.dst_ip = parse_ip(v),
            "src_port" => ev.src_port = parse_port(v),
            "dst_port" => ev.dst_port = parse_port(v),
            "proto" => ev.proto = parse_proto(v),
            "action" => ev.action = parse_action(v),
            "sent" => ev.bytes_out = v.parse().ok(),
            "rcvd" => ev.bytes_in = v.parse().ok(),
            "xlate_src_ip" | "xlate_dst_ip" => {
                if let Some(ip) = parse_ip(v) {
                    push_other(&mut ev, ip);
                }
            }
            _ => {}
        });
    } else if let Some(j) = m.find("! From ") {
        // `SYN flood! From A:p to B:q, proto TCP (zone ...). Occurred 1 times.`
        ev.kind = EventKind::Alert;
        let r = &m[j + 7..];
        let a = r.split(' ').next().unwrap_or("");
        if let Some((ip, p)) = split_ip_port(a, ':') {
            ev.src_ip = Some(ip);
            ev.src_port = p;
        }
        if let Some(k) = r.find(" to ") {
            let b = r[k + 4..].split([' ', ',']).next().unwrap_or("");
            if let Some((ip, p)) = split_ip_port(b, ':') {
                ev.dst_ip = Some(ip);
                ev.dst_port = p;
            }
        }
        if let Some(k) = r.find("proto ") {
            ev.proto = r[k + 6..].split([' ', ',']).next().and_then(parse_proto);
        }
        if let Some(k) = r.find("Occurred ")
            && let Some(n) = r[k + 9..].split(' ').next().and_then(|n| n.parse().ok())
        {
            ev.count = n;
        }
    } else if m.contains("login attempt") && m.contains("failed") {
        ev.kind = EventKind::Auth;
        ev.auth = Some(AuthOutcome::Failure);
        if let Some(k) = m.find(" from ") {
            let a = m[k + 6..].split([' ', ',']).next().unwrap_or("");
            if let Some((ip, p)) = split_ip_port(a.trim_end_matches('.'), ':') {
                ev.src_ip = Some(ip);
                ev.src_port = p;
            }
        }
        if let Some(u) = kv_get(m, "user").or_else(|| {
            let k = m.find("user \"")? + 6;
            let e = m[k..].find('"')? + k;
            Some(&m[k..e])
        }) {
            ev.user = nonempty(u);
        }
    }
    add_remaining_ips(&mut ev, m);
    Some(ev)
}
