//! MikroTik RouterOS. Firewall `log` actions: `[topics ]prefix chain: in:ether1
//! out:(unknown 0), connection-state:new src-mac 00:..., proto TCP (SYN),
//! 1.2.3.4:5678->5.6.7.8:22, len 60` (IPv6 in brackets, ICMP without
//! ports, NAT as `, NAT (a:p->b:q)->c:r`). The action comes from the log
//! prefix (`drop-in`, `reject`, `accept`); RouterOS does not log it
//! otherwise. Also `login failure for user X from IP via winbox` and `user X
//! logged in from IP via ssh`.

use super::Ctx;
use super::fields::{nonempty, parse_action, parse_ip, parse_proto, split_ip_port};
use crate::model::{AuthOutcome, Event, EventKind};

/// Does the text look like a RouterOS firewall or login record?
pub(crate) fn looks_like(s: &str) -> bool {
    (s.contains("->") && s.contains(" proto ") && s.contains("in:"))
        || (s.contains("login failure for user ") && s.contains(" via "))
        || (s.contains(" logged in from ") && s.contains(" via "))
}

/// Parse a RouterOS message (firewall or login).
pub(crate) fn parse(c: &Ctx) -> Option<Event> {
    let m = c.body;
    if let Some(i) = m.find("login failure for user ") {
        return login(&m[i + 23..], AuthOutcome::Failure);
    }
    if let Some(i) = m.find("user ")
        && m[i..].contains(" logged in from ")
    {
        return login(&m[i + 5..], AuthOutcome::Success);
    }
    let pi = m.find(" proto ")?;
    let head = m[..pi].trim_end_matches(',');
    let mut ev = Event::new(EventKind::Connection);
    // The log prefix: the word(s) before `chain:`; topics like `firewall,info` first.
    let pre = head.split(" in:").next().unwrap_or(head);
    let pre = pre.trim_end().trim_end_matches(',');
    let words: Vec<&str> = pre.split(' ').collect();
    // Last word is `chain:`; words before it (after the topics) are the prefix.
    if words.len() >= 2 {
        for w in &words[..words.len() - 1] {
            if w.contains(',') && (w.contains("firewall") || w.contains("info")) {
                continue;
            }
            if let Some(a) = parse_action(w.trim_end_matches(':')) {
                ev.action = Some(a);
                break;
            }
        }
    }
    let rest = &m[pi + 7..];
    // `TCP (SYN), a->b, len 60` / `ICMP (type 3, code 3), a->b, len 56`
    let pend = rest.find([' ', ',']).unwrap_or(rest.len());
    ev.proto = parse_proto(&rest[..pend]);
    let mut r = &rest[pend..];
    if let Some(x) = r.strip_prefix(" (") {
        let close = x.find(')')?;
        let flags = &x[..close];
        if ev.proto == Some(crate::model::Proto::Tcp) && !flags.is_empty() {
            ev.conn_state = Some(flags.replace(',', " "));
        }
        r = &x[close + 1..];
    }
    let r = r.trim_start_matches([',', ' ']);
    let aend = r.find(", ").unwrap_or(r.len());
    let addrs = &r[..aend];
    let (a, b) = addrs.split_once("->")?;
    let has_ports = matches!(
        ev.proto,
        Some(crate::model::Proto::Tcp) | Some(crate::model::Proto::Udp)
    ) || ev.proto.is_none();
    let side = |s: &str| {
        if has_ports {
            split_ip_port(s, ':')
        } else {
            parse_ip(s)
                .map(|ip| (ip, None))
                .or_else(|| split_ip_port(s, ':'))
        }
    };
    if let Some((ip, port)) = side(a) {
        ev.src_ip = Some(ip);
        ev.src_port = port;
    }
    if let Some((ip, port)) = side(b) {
        ev.dst_ip = Some(ip);
        ev.dst_port = port;
    }
    // NAT: `, NAT (10.0.0.2:1234->5.6.7.8:1234)->1.2.3.4:80`
    if let Some(n) = r[aend..].find("NAT (") {
        let t = &r[aend + n + 5..];
        for part in t.split([' ', ',', '(', ')']).flat_map(|x| x.split("->")) {
            if let Some((ip, _)) = split_ip_port(part, ':') {
                super::fields::push_other(&mut ev, ip);
            }
        }
    }
    if ev.src_ip.is_none() && ev.dst_ip.is_none() {
        return None;
    }
    ev.time = c.time;
    Some(ev)
}

/// `X from 1.2.3.4 via winbox`
fn login(r: &str, outcome: AuthOutcome) -> Option<Event> {
    let (user, rest) = r
        .split_once(" from ")
        .or_else(|| r.split_once(" logged in from "))?;
    let user = user.strip_suffix(" logged in").unwrap_or(user);
    let (addr, via) = rest.split_once(" via ").unwrap_or((rest, ""));
    let mut ev = Event::new(EventKind::Auth);
    ev.auth = Some(outcome);
    ev.user = nonempty(user);
    ev.src_ip = parse_ip(addr.trim());
    ev.service = nonempty(via.split(' ').next().unwrap_or(via)).or(Some("routeros".to_string()));
    Some(ev)
}
