//! ProFTPD: `proftpd[123] server (client[1.2.3.4]): USER x (Login failed):
//! Incorrect password.`, `USER x: no such user found from ...`, `SECURITY
//! VIOLATION: root login attempted`, `Maximum login attempts (3) exceeded`,
//! `USER x: Login successful.`. The client is the first `(name[addr])`
//! group; everything after it may be attacker-controlled.

use super::Ctx;
use super::fields::{contains_ci, nonempty, parse_ip};
use crate::model::{AuthOutcome, Event, EventKind};

/// Parse a proftpd message.
pub(crate) fn parse(c: &Ctx) -> Option<Event> {
    let m = c.msg.trim();
    let open = m
        .find(" (")
        .map(|i| i + 2)
        .or_else(|| m.starts_with('(').then_some(1))?;
    let close = m[open..].find("])")? + open;
    let group = &m[open..close];
    let lb = group.rfind('[')?;
    let ip = parse_ip(&group[lb + 1..]);
    let rest = m[close + 2..]
        .trim_start_matches([':', ' ', '-'])
        .trim_start();
    let mut ev = Event::new(EventKind::Auth);
    ev.service = Some("proftpd".to_string());
    ev.src_ip = ip;
    if ip.is_none() {
        ev.domain = nonempty(&group[..lb]);
    }
    if let Some(u) = rest.strip_prefix("USER ") {
        let end = u.find([':', ' ', '(']).unwrap_or(u.len());
        ev.user = nonempty(&u[..end]);
        let tail = &u[end..];
        if tail.contains("no such user") {
            ev.auth = Some(AuthOutcome::InvalidUser);
        } else if tail.contains("Login failed") || tail.contains("Incorrect password") {
            ev.auth = Some(AuthOutcome::Failure);
        } else if tail.contains("Login successful") {
            ev.auth = Some(AuthOutcome::Success);
        } else {
            ev.auth = Some(AuthOutcome::Failure);
        }
    } else if let Some(v) = rest.strip_prefix("SECURITY VIOLATION: ") {
        ev.auth = Some(AuthOutcome::Failure);
        ev.user = v.split(' ').next().and_then(nonempty);
    } else if contains_ci(rest, "maximum login attempts") {
        ev.auth = Some(AuthOutcome::Failure);
    } else {
        ev.kind = EventKind::Other;
    }
    Some(ev)
}
