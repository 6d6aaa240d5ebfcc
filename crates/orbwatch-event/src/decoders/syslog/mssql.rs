//! Microsoft SQL Server error log: `2020-02-24 16:05:21.00 Logon   Login
//! failed for user 'sa'. Reason: ... [CLIENT: 1.2.3.4]` → auth failure,
//! service `mssql` (`InvalidUser` when the login does not exist); `Login
//! succeeded for user 'x'. ... [CLIENT: ...]` → success.

use super::Ctx;
use super::fields::{nonempty, parse_ip};
use crate::model::{AuthOutcome, Event, EventKind};

/// Parse a `Login failed` / `Login succeeded` line.
pub(crate) fn parse(c: &Ctx) -> Option<Event> {
    let body = c.body;
    let (i, ok) = match body.find("Login failed for user '") {
        Some(i) => (i + 23, false),
        None => (body.find("Login succeeded for user '")? + 26, true),
    };
    let r = &body[i..];
    let end = r.find("'. ").or_else(|| r.rfind('\''))?;
    let mut ev = Event::new(EventKind::Auth);
    ev.service = Some("mssql".to_string());
    ev.user = nonempty(&r[..end]);
    ev.auth = Some(if ok {
        AuthOutcome::Success
    } else if r.contains("Could not find a login matching") {
        AuthOutcome::InvalidUser
    } else {
        AuthOutcome::Failure
    });
    if let Some(k) = r.find("[CLIENT: ") {
        let t = &r[k + 9..];
        ev.src_ip = parse_ip(t[..t.find(']').unwrap_or(t.len())].trim());
    }
    // The raw error log has the source ("Logon") where syslog has a host.
    if c.host.is_some_and(|h| h == "Logon" || h == "Server") {
        ev.host = Some(String::new());
    }
    Some(ev)
}
