//! fail2ban's own log (`fail2ban.actions: NOTICE [sshd] Ban 1.2.3.4`),
//! as a file or through syslog/journald. A `Ban` is fail2ban's verdict that
//! the address attacked the jail's service: an alert with action deny and
//! the jail as service. `Found` lines (a failure matched by a filter) are
//! auth failures; `Unban` keeps the address without verdict.

use super::Ctx;
use super::fields::{nonempty, parse_ip};
use crate::model::{Action, AuthOutcome, Event, EventKind};

/// Parse a fail2ban log message.
pub(crate) fn parse(c: &Ctx) -> Option<Event> {
    let m = c.msg;
    let (verb, at) = ["] Ban ", "] Restore Ban ", "] Unban ", "] Found "]
        .iter()
        .find_map(|v| m.find(v).map(|i| (*v, i)))?;
    let jail_start = m[..at].rfind('[')? + 1;
    let jail = &m[jail_start..at];
    let rest = &m[at + verb.len()..];
    let ip = parse_ip(rest.split([' ', ',']).next().unwrap_or(""))?;
    let mut ev = Event::new(EventKind::Alert);
    ev.src_ip = Some(ip);
    ev.service = nonempty(jail);
    match verb {
        "] Ban " | "] Restore Ban " => ev.action = Some(Action::Deny),
        "] Found " => {
            ev.kind = EventKind::Auth;
            ev.auth = Some(AuthOutcome::Failure);
        }
        _ => ev.kind = EventKind::Other,
    }
    Some(ev)
}
