//! Cisco ASA / FTD / PIX / FWSM `%ASA-sev-id: message` records, behind a
//! syslog envelope or raw.
//!
//! Messages read field by field (message ids per Cisco's "ASA Series Syslog
//! Messages"): denies 106001, 106006, 106007, 106010, 106014, 106015,
//! 106017, 106020-106023, 106100, 710003, 710005; connections 302013-302016,
//! 302020/302021; translations 305011/305012; threat detection 733100/733101;
//! AAA 113004-113006, 113015; management logins 605004/605005, 611101/611102,
//! 308001; VPN 716039, 722051, 113019. Every other id becomes an event of
//! kind `Other` with all its addresses in `other_ips`: never rejected for
//! being unknown. Addresses a message holds beyond src/dst (mapped NAT
//! addresses, AAA servers) also go to `other_ips`.
//!
//! `Built inbound` puts the `for` side as source, `Built outbound` the `to`
//! side. Teardowns do not say the direction: the `for` side is reported as
//! source. ASA byte counts (both directions together) are not reported.

use std::net::IpAddr;

use super::Ctx;
use super::fields::{
    add_remaining_ips, contains_ci, nonempty, parse_ip, parse_port, parse_proto, push_other,
    service_port,
};
use crate::model::{Action, AuthOutcome, Event, EventKind, Proto};

const MARKERS: [&str; 4] = ["%ASA-", "%FTD-", "%PIX-", "%FWSM-"];

/// Does the text hold a Cisco ASA-family message?
pub(crate) fn looks_like(s: &str) -> bool {
    MARKERS.iter().any(|m| s.contains(m))
}

/// Parse the `%ASA-` message in the line.
pub(crate) fn parse(c: &Ctx) -> Option<Event> {
    let body = c.body;
    let i = MARKERS.iter().filter_map(|m| body.find(m)).min()?;
    let t = &body[i + 1..];
    let dash1 = t.find('-')?;
    let r = &t[dash1 + 1..];
    let dash2 = r.find('-')?;
    let r = &r[dash2 + 1..];
    let idend = r
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(r.len());
    let id: u32 = r[..idend].parse().ok()?;
    let msg = r[idend..].trim_start_matches(':').trim();
    // Unknown ids: every address, direction unknown.
    let mut ev = by_id(id, msg).unwrap_or_else(|| Event::new(EventKind::Other));
    add_remaining_ips(&mut ev, msg);
    ev.time = c.time;
    Some(ev)
}

fn conn(action: Option<Action>) -> Event {
    let mut ev = Event::new(EventKind::Connection);
    ev.action = action;
    ev
}

fn by_id(id: u32, m: &str) -> Option<Event> {
    let mut ev;
    match id {
        // Inbound TCP connection denied from A/p to B/q flags SYN on interface outside
        // Deny TCP (no connection) from A/p to B/q flags F on interface X
        // Deny inbound UDP from A/p to B/q on interface X / due to DNS Query
        106001 | 106006 | 106007 | 106015 => {
            ev = conn(Some(Action::Deny));
            from_to(&mut ev, m);
            ev.proto = proto_word(m);
            if let Some(f) = between(m, " flags ", " on interface") {
                ev.conn_state = nonempty(f);
            }
        }
        // Deny inbound protocol 47 src outside:A dst outside:B
        // Deny inbound icmp src outside:A dst outside:B (type 3, code 2)
        // Deny tcp src inside:A/p dst X:B/q by access-group "x"
        106010 | 106014 | 106023 => {
            ev = conn(Some(Action::Deny));
            src_dst(&mut ev, m);
            ev.proto = if let Some(p) = word_after(m, "protocol ") {
                parse_proto(p)
            } else {
                m.split(' ')
                    .nth(if m.starts_with("Deny inbound") { 2 } else { 1 })
                    .and_then(parse_proto)
            };
        }
        // Deny IP due to Land Attack from A to B / Deny IP teardrop ... from A to B
        // Deny protocol reverse path check from A to B on interface X
        106016 | 106017 | 106020 | 106021 | 106022 => {
            ev = conn(Some(Action::Deny));
            from_to(&mut ev, m);
        }
        // access-list NAME permitted tcp inside/10.1.1.1(1234) -> outside/2.2.2.2(80) hit-cnt 1
        106100 => {
            let verdict = m.split(' ').nth(2)?;
            ev = conn(match verdict {
                "permitted" | "est-allowed" => Some(Action::Allow),
                "denied" => Some(Action::Deny),
                _ => None,
            });
            ev.proto = m.split(' ').nth(3).and_then(parse_proto);
            let (a, b) = m.split_once(" -> ")?;
            let a = a.rsplit(' ').next()?;
            let b = b.split(' ').next()?;
            if let Some((ip, port)) = acl_addr(a) {
                ev.src_ip = Some(ip);
                ev.src_port = port;
            }
            if let Some((ip, port)) = acl_addr(b) {
                ev.dst_ip = Some(ip);
                ev.dst_port = port;
            }
        }
        // Built inbound TCP connection 9 for outside:A/p (A/p) to inside:B/q (B/q)
        302013 | 302015 => {
            ev = conn(Some(Action::Allow));
            ev.conn_state = Some("built".to_string());
            ev.proto = proto_word(m);
            let outbound = m.starts_with("Built outbound");
            let a = word_after(m, " for ").and_then(addr);
            let b = word_after(m, " to ").and_then(addr);
            let (s, d) = if outbound { (b, a) } else { (a, b) };
            set_pair(&mut ev, s, d);
        }
        // Teardown TCP connection 4211 for external:A/p to mgmt:B/q duration 0:00:00 bytes 526
        302014 | 302016 | 302018 | 302023 => {
            ev = conn(Some(Action::Allow));
            ev.conn_state = Some("teardown".to_string());
            ev.proto = proto_word(m);
            let a = word_after(m, " for ")
                .or_else(|| word_after(m, " from "))
                .and_then(addr);
            let b = word_after(m, " to ").and_then(addr);
            set_pair(&mut ev, a, b);
        }
        // Built inbound ICMP connection for faddr A/0 gaddr G/0 laddr L/0
        302020 | 302021 => {
            ev = conn(Some(Action::Allow));
            ev.proto = Some(Proto::Icmp);
            ev.conn_state = Some(if id == 302020 { "built" } else { "teardown" }.to_string());
            if m.contains("faddr ") {
                let f = word_after(m, "faddr ").and_then(addr);
                let l = word_after(m, "laddr ").and_then(addr);
                let (s, d) = if m.contains("outbound") {
                    (l, f)
                } else {
                    (f, l)
                };
                set_pair(&mut ev, s, d);
            } else {
                from_to(&mut ev, m);
            }
        }
        // Built dynamic TCP translation from inside:A/p to outside:M/mp
        305011 | 305012 => {
            ev = Event::new(EventKind::Other);
            ev.proto = proto_word(m);
            if let Some((ip, port)) = word_after(m, " from ").and_then(addr) {
                ev.src_ip = Some(ip);
                ev.src_port = port;
            }
            if let Some((ip, _)) = word_after(m, " to ").and_then(addr) {
                push_other(&mut ev, ip);
            }
        }
        // TCP access denied by ACL from A/p to outside:B/q
        710003 | 710005 => {
            ev = conn(Some(Action::Deny));
            ev.proto = proto_word(m);
            from_to(&mut ev, m);
        }
        // [Scanning] drop rate-1 exceeded ... / Host A is attacking
        733100..=733105 => {
            ev = Event::new(EventKind::Alert);
            if let Some(h) = word_after(m, "Host ").and_then(parse_ip) {
                if m.contains("attacking") {
                    ev.src_ip = Some(h);
                } else {
                    ev.dst_ip = Some(h);
                }
            }
        }
        // AAA user authentication Successful : server = S : user = U
        // AAA user authentication Rejected : reason = R : server = S : user = U : user IP = A
        113004 | 113005 | 113015 | 113012 | 113014 => {
            ev = Event::new(EventKind::Auth);
            ev.auth = Some(
                if contains_ci(m, "successful") || id == 113004 || id == 113012 {
                    AuthOutcome::Success
                } else {
                    AuthOutcome::Failure
                },
            );
            ev.user = eq_value(m, "user =");
            if let Some(ip) = eq_value(m, "user ip =").as_deref().and_then(parse_ip) {
                ev.src_ip = Some(ip);
            }
            if let Some(ip) = eq_value(m, "server =").as_deref().and_then(parse_ip) {
                push_other(&mut ev, ip);
            }
        }
        // User U locked out on exceeding number successive failed authentication attempts
        113006 => {
            ev = Event::new(EventKind::Auth);
            ev.auth = Some(AuthOutcome::Failure);
            ev.user = m
                .strip_prefix("User ")
                .and_then(|r| r.split(' ').next())
                .and_then(nonempty);
        }
        // Login denied from A/p to outside:B/ssh for user "root"
        605004 | 605005 => {
            ev = Event::new(EventKind::Auth);
            ev.auth = Some(if id == 605005 {
                AuthOutcome::Success
            } else {
                AuthOutcome::Failure
            });
            from_to(&mut ev, m);
            if let Some(to) = word_after(m, " to ")
                && let Some((_, svc)) = to.rsplit_once('/')
                && parse_port(svc).is_none()
            {
                ev.service = nonempty(svc);
                ev.dst_port = service_port(svc);
            }
            ev.user = between(m, "for user \"", "\"").and_then(nonempty);
        }
        // User authentication succeeded: IP address: A, Uname: U
        611101 | 611102 => {
            ev = Event::new(EventKind::Auth);
            ev.auth = Some(if id == 611101 {
                AuthOutcome::Success
            } else {
                AuthOutcome::Failure
            });
            if let Some(i) = m.rfind("address: ") {
                let tok = m[i + 9..].split([',', ' ']).next().unwrap_or("");
                ev.src_ip = parse_ip(tok);
            }
            ev.user = m
                .find("Uname: ")
                .map(|i| m[i + 7..].split([',', ' ']).next().unwrap_or(""))
                .and_then(nonempty);
            ev.service = Some("asa".to_string());
        }
        // console enable password incorrect for 3 tries (from A)
        308001 => {
            ev = Event::new(EventKind::Auth);
            ev.auth = Some(AuthOutcome::Failure);
            ev.src_ip = between(m, "(from ", ")").and_then(parse_ip);
            ev.service = Some("asa".to_string());
        }
        // Group <G> User <U> IP <A> Authentication: rejected, Session Type: WebVPN.
        // Group <G> User <U> IP <A> IPv4 Address <B> assigned to session
        716039 | 722051 | 113019 | 716001 | 716002 => {
            ev = Event::new(EventKind::Auth);
            ev.service = Some("vpn".to_string());
            ev.auth = match id {
                716039 => Some(AuthOutcome::Failure),
                722051 | 716001 => Some(AuthOutcome::Success),
                _ => None,
            };
            if ev.auth.is_none() {
                ev.kind = EventKind::Other;
            }
            ev.user = angle_after(m, "User <")
                .or_else(|| eq_value(m, "username ="))
                .or_else(|| eq_value(m, "user ="))
                .and_then(|u| nonempty(&u));
            ev.src_ip = angle_after(m, "IP <")
                .or_else(|| eq_value(m, "ip ="))
                .as_deref()
                .and_then(parse_ip);
        }
        _ => return None,
    }
    Some(ev)
}

fn set_pair(ev: &mut Event, s: Option<(IpAddr, Option<u16>)>, d: Option<(IpAddr, Option<u16>)>) {
    if let Some((ip, port)) = s {
        ev.src_ip = Some(ip);
        ev.src_port = port;
    }
    if let Some((ip, port)) = d {
        ev.dst_ip = Some(ip);
        ev.dst_port = port;
    }
}

/// `... from A[/p] to B[/q] ...`
fn from_to(ev: &mut Event, m: &str) {
    let a = word_after(m, "from ").and_then(addr);
    let b = m
        .find("from ")
        .and_then(|i| word_after(&m[i..], " to "))
        .and_then(addr);
    set_pair(ev, a, b);
}

/// `... src IF:A[/p] dst IF:B[/q] ...`
fn src_dst(ev: &mut Event, m: &str) {
    let a = word_after(m, "src ").and_then(addr);
    let b = word_after(m, " dst ").and_then(addr);
    set_pair(ev, a, b);
}

/// The protocol word of `Built inbound TCP connection`, `Deny inbound UDP
/// from`, `TCP access denied`.
fn proto_word(m: &str) -> Option<Proto> {
    m.split(' ').take(4).find_map(|w| match w {
        "TCP" | "tcp" => Some(Proto::Tcp),
        "UDP" | "udp" => Some(Proto::Udp),
        "ICMP" | "icmp" => Some(Proto::Icmp),
        "ICMPv6" | "icmp6" => Some(Proto::Icmp6),
        "GRE" | "gre" => Some(Proto::Other(47)),
        _ => None,
    })
}

/// The token following the first `key`.
fn word_after<'a>(m: &'a str, key: &str) -> Option<&'a str> {
    let i = m.find(key)?;
    let r = &m[i + key.len()..];
    let r = r.trim_start();
    let end = r.find(' ').unwrap_or(r.len());
    Some(&r[..end])
}

fn between<'a>(m: &'a str, a: &str, b: &str) -> Option<&'a str> {
    let i = m.find(a)? + a.len();
    let j = m[i..].find(b)? + i;
    Some(&m[i..j])
}

fn angle_after(m: &str, key: &str) -> Option<String> {
    between(m, key, ">").map(str::to_string)
}

/// Value after `key` (case-insensitive) up to `:`, `,` or end, trimmed:
/// `user = bob : user IP = 1.2.3.4`.
fn eq_value(m: &str, key: &str) -> Option<String> {
    let lower = m.to_ascii_lowercase();
    let mut from = 0;
    while let Some(p) = lower[from..].find(key) {
        let at = from + p;
        // `user =` must not match inside `user ip =`'s neighbour words.
        let ok = at == 0 || !lower.as_bytes()[at - 1].is_ascii_alphanumeric();
        if ok {
            let r = &m[at + key.len()..];
            let end = r.find([':', ',']).unwrap_or(r.len());
            return nonempty(r[..end].trim().trim_end_matches('.'));
        }
        from = at + 1;
    }
    None
}

/// `IF:A/p`, `A/p`, `IF:A`, `A`, with `/ssh`-style service names and a
/// `(user)` suffix tolerated.
fn addr(tok: &str) -> Option<(IpAddr, Option<u16>)> {
    let t = tok.trim_end_matches([',', ';', ')', '.']);
    let t = t.split('(').next().unwrap_or(t);
    let try_one = |c: &str| -> Option<(IpAddr, Option<u16>)> {
        if let Some((h, p)) = c.rsplit_once('/') {
            let ip = parse_ip(h)?;
            return Some((ip, parse_port(p).or_else(|| service_port(p))));
        }
        parse_ip(c).map(|ip| (ip, None))
    };
    try_one(t).or_else(|| {
        let i = t.find(':')?;
        try_one(&t[i + 1..])
    })
}

/// 106100's `inside/10.1.1.1(1234)`.
fn acl_addr(tok: &str) -> Option<(IpAddr, Option<u16>)> {
    let (_, r) = tok.split_once('/')?;
    let (ip, port) = match r.split_once('(') {
        Some((ip, p)) => (ip, parse_port(p.trim_end_matches(')'))),
        None => (r, None),
    };
    Some((parse_ip(ip)?, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(m: &str) -> Event {
        let c = Ctx {
            host: None,
            app: "",
            pid: None,
            msg: m,
            body: m,
            sd: "",
            time: None,
            time_q: super::super::TimeQuality::None,
            year: 2020,
            local_offset: 0,
            raw: true,
            count: 1,
        };
        parse(&c).unwrap()
    }

    #[test]
    fn built_directions() {
        let e = ev(
            "%ASA-6-302013: Built outbound TCP connection 9 for outside:10.1.2.1/22 (10.1.2.1/22) to inside:10.1.1.2/53496 (10.1.1.2/53496)",
        );
        assert_eq!(e.src_ip, Some("10.1.1.2".parse().unwrap()));
        assert_eq!(e.dst_port, Some(22));
        let e = ev(
            "%ASA-6-106100: access-list outside_in denied tcp outside/1.2.3.4(1234) -> inside/10.0.0.1(22) hit-cnt 1 first hit [0x0, 0x0]",
        );
        assert_eq!(e.action, Some(Action::Deny));
        assert_eq!(e.dst_port, Some(22));
        let e = ev(
            "%ASA-4-722051: Group <GP> User <bob> IP <203.0.113.5> IPv4 Address <10.8.0.2> assigned to session",
        );
        assert_eq!(e.auth, Some(AuthOutcome::Success));
        assert_eq!(e.src_ip, Some("203.0.113.5".parse().unwrap()));
        assert!(e.other_ips.is_empty() || e.other_ips.contains(&"10.8.0.2".parse().unwrap()));
    }
}
