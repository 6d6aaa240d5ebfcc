//! vsftpd, in its own log format (`Mon Jan 13 10:19:21 2020 [pid 123]
//! [user] FAIL LOGIN: Client "1.2.3.4"`, also through syslog as `vsftpd[1]:
//! [user] FAIL LOGIN: Client "1.2.3.4"`) and its PAM lines.

use super::Ctx;
use super::fields::{nonempty, parse_ip};
use super::pam_unix;
use crate::model::{AuthOutcome, Event, EventKind};

/// Does the message look like vsftpd's own log?
pub(crate) fn looks_like(msg: &str) -> bool {
    msg.starts_with("[pid ")
        || msg.contains("LOGIN: Client \"")
        || msg.contains("CONNECT: Client \"")
}

/// Parse a vsftpd message.
pub(crate) fn parse(c: &Ctx) -> Option<Event> {
    let mut m = c.msg.trim();
    if m.starts_with("pam_") || m.starts_with("(pam_") || m.starts_with("authentication failure;") {
        return pam_unix::parse(m, "vsftpd");
    }
    if let Some(r) = m.strip_prefix("[pid ") {
        m = r.split_once("] ").map(|x| x.1).unwrap_or(r).trim_start();
    }
    let mut user = None;
    if let Some(r) = m.strip_prefix('[')
        && let Some((u, rest)) = r.split_once("] ")
    {
        user = nonempty(u);
        m = rest;
    }
    let (verb, rest) = m.split_once(": Client \"")?;
    let ip = parse_ip(&rest[..rest.find('"').unwrap_or(rest.len())]);
    let mut ev = Event::new(EventKind::Other);
    ev.service = Some("vsftpd".to_string());
    ev.src_ip = ip;
    match verb {
        "FAIL LOGIN" => {
            ev.kind = EventKind::Auth;
            ev.auth = Some(AuthOutcome::Failure);
        }
        "OK LOGIN" => {
            ev.kind = EventKind::Auth;
            ev.auth = Some(AuthOutcome::Success);
        }
        "CONNECT" => ev.kind = EventKind::Connection,
        _ => {}
    }
    if user.as_deref() != Some("anonymous") || ev.kind == EventKind::Auth {
        ev.user = user;
    }
    Some(ev)
}
