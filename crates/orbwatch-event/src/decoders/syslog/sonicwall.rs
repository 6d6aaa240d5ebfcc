//! SonicWall `key=value` syslog: `id=firewall sn=... time="2019-02-27
//! 12:55:40 UTC" fw=1.2.3.4 pri=5 c=0 m=1197 msg="..." src=IP:port:iface[:host]
//! dst=IP:port:iface proto=tcp/443 ...`, IPv6 in `srcV6=`/`dstV6=`.
//!
//! Connection events carry src/dst; messages about logins (`msg="...
//! login ..."`: "Administrator login denied due to bad credentials", "User
//! login denied", "... login allowed") become auth events. `fw=` (the
//! firewall's own address) and addresses in `note=` go to `other_ips`.

use super::Ctx;
use super::fields::{
    add_remaining_ips, contains_ci, for_each_kv, nonempty, parse_action, parse_ip, parse_port,
    parse_proto,
};
use crate::model::{Action, AuthOutcome, Event, EventKind};

/// Does the text look like a SonicWall record?
pub(crate) fn looks_like(s: &str) -> bool {
    let t = s.trim_start();
    (t.starts_with("id=") && t.contains(" sn="))
        || s.contains("id=firewall sn=")
        || (s.contains(" sn=") && s.contains(" fw=") && s.contains(" m="))
}

/// `IP:port:iface[:host]`, `:port:iface` (address elsewhere), `IP`.
fn endpoint(v: &str) -> (Option<std::net::IpAddr>, Option<u16>) {
    let mut parts = v.split(':');
    let ip = parts.next().and_then(parse_ip);
    let port = parts.next().and_then(parse_port);
    (ip, port)
}

/// Parse a SonicWall record.
pub(crate) fn parse(c: &Ctx) -> Option<Event> {
    let text = c.body;
    let mut ev = Event::new(EventKind::Connection);
    let mut msg = "";
    let mut time = "";
    let mut src6 = None;
    let mut dst6 = None;
    let mut user = "";
    for_each_kv(text, |k, v| match k {
        "src" => (ev.src_ip, ev.src_port) = endpoint(v),
        "dst" => (ev.dst_ip, ev.dst_port) = endpoint(v),
        "srcV6" => src6 = parse_ip(v),
        "dstV6" => dst6 = parse_ip(v),
        "proto" => {
            ev.proto = parse_proto(v);
        }
        "msg" => msg = v,
        "time" => time = v,
        "usr" | "user" => user = v,
        "sent" => ev.bytes_out = v.parse().ok(),
        "rcvd" => ev.bytes_in = v.parse().ok(),
        "dstname" => ev.domain = nonempty(v),
        "arg" => ev.url = nonempty(v).filter(|u| u != "/"),
        _ => {}
    });
    if ev.src_ip.is_none() {
        ev.src_ip = src6;
    }
    if ev.dst_ip.is_none() {
        ev.dst_ip = dst6;
    }
    if contains_ci(msg, "login") || contains_ci(msg, "authentication") {
        let fail = contains_ci(msg, "denied")
            || contains_ci(msg, "fail")
            || contains_ci(msg, "invalid")
            || contains_ci(msg, "bad");
        let ok = contains_ci(msg, "allowed") || contains_ci(msg, "success");
        if fail || ok {
            ev.kind = EventKind::Auth;
            ev.auth = Some(if fail {
                AuthOutcome::Failure
            } else {
                AuthOutcome::Success
            });
            ev.user = nonempty(user);
            ev.service = Some(if contains_ci(msg, "vpn") || contains_ci(msg, "ipsec") {
                "vpn".to_string()
            } else {
                "sonicwall".to_string()
            });
        }
    } else if contains_ci(msg, "dropped") || contains_ci(msg, "discard") {
        ev.action = Some(Action::Drop);
    } else if contains_ci(msg, "denied") || contains_ci(msg, "blocked") {
        ev.action = Some(Action::Deny);
    } else if contains_ci(msg, "opened")
        || contains_ci(msg, "closed")
        || contains_ci(msg, "allowed")
    {
        ev.action = Some(Action::Allow);
    } else {
        ev.action = parse_action(msg);
    }
    if ev.src_ip.is_none() && ev.dst_ip.is_none() && ev.kind == EventKind::Connection {
        ev.kind = EventKind::Other;
    }
    let body_time = super::timestamp::parse_any(time).map(|t| {
        let q = if contains_ci(time, "utc") {
            super::TimeQuality::Zoned
        } else {
            super::TimeQuality::Local
        };
        (t, q)
    });
    c.pick_time(&mut ev, body_time);
    add_remaining_ips(&mut ev, text);
    Some(ev)
}
