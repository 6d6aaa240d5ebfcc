//! Dropbear SSH server messages: `Bad password attempt for 'root' from
//! 1.2.3.4:5678`, `Login attempt for nonexistent user from IP:port`, `Exit
//! before auth (user 'root', 10 fails): Max auth tries reached - user 'root'
//! from IP:port`, `Exit before auth from <IP:port>: ...`, `Password auth
//! succeeded for 'x' from IP:port`, `Child connection from IP:port`. Newer
//! builds repeat pid and time in the message (`[825] Jul 10 23:53:52 ...`).

use super::Ctx;
use super::fields::{contains_ci, split_ip_port, starts_with_ci};
use super::timestamp::parse_bsd;
use crate::model::{AuthOutcome, Event, EventKind};

/// Parse a dropbear message.
pub(crate) fn parse(c: &Ctx) -> Option<Event> {
    let mut m = c.msg.trim();
    // `[825] Jul 10 23:53:52 Bad password attempt ...`
    if let Some(r) = m.strip_prefix('[')
        && let Some(close) = r.find("] ")
    {
        m = &r[close + 2..];
        if let Some((_, n)) = parse_bsd(m.as_bytes()) {
            m = m[n..].trim_start();
        }
    }
    let mut ev = Event::new(EventKind::Auth);
    ev.service = Some("dropbear".to_string());
    // The address: after the last ` from `, possibly in `<...>`.
    let addr = |s: &str| {
        let i = s.rfind("from ")?;
        let t = &s[i + 5..];
        let t = t.trim_start_matches('<');
        let end = t.find(['>', ' ']).unwrap_or(t.len());
        split_ip_port(t[..end].trim_end_matches(':'), ':')
    };
    let quoted_user = |s: &str| {
        let i = s
            .find("user '")
            .map(|i| i + 6)
            .or_else(|| s.find(" for '").map(|i| i + 6))?;
        let e = s[i..].find('\'')? + i;
        Some(s[i..e].to_string())
    };
    if starts_with_ci(m, "bad password attempt for ")
        || starts_with_ci(m, "bad pubkey attempt")
        || starts_with_ci(m, "exit before auth")
    {
        if starts_with_ci(m, "exit before auth") && !contains_ci(m, "max auth tries") {
            ev.kind = EventKind::Other;
        } else {
            ev.auth = Some(AuthOutcome::Failure);
        }
        ev.user = quoted_user(m);
    } else if starts_with_ci(m, "login attempt for nonexistent user") {
        ev.auth = Some(AuthOutcome::InvalidUser);
        ev.user = quoted_user(m);
    } else if contains_ci(m, "auth succeeded for ") {
        ev.auth = Some(AuthOutcome::Success);
        ev.user = quoted_user(m);
    } else if starts_with_ci(m, "child connection from ") {
        ev.kind = EventKind::Connection;
    } else {
        ev.kind = EventKind::Other;
        super::generic::add_ips(&mut ev, m);
        return Some(ev);
    }
    // Exit before auth from <IP:port>: (user 'root', 10 fails): ... - user 'root'
    let a = if let Some(i) = m.find("from <") {
        let t = &m[i + 6..];
        let end = t.find('>').unwrap_or(t.len());
        split_ip_port(&t[..end], ':')
    } else {
        addr(m)
    };
    if let Some((ip, port)) = a {
        ev.src_ip = Some(ip);
        ev.src_port = port;
    }
    Some(ev)
}
