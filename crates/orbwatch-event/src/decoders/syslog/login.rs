//! `login` (util-linux and shadow) failure messages, written for console
//! and Telnet logins besides the PAM line:
//!
//! - `FAILED LOGIN (1) on '/dev/pts/3' FROM '192.0.2.70' FOR 'root',
//!   Authentication failure` (util-linux);
//! - `FAILED LOGIN 1 FROM 192.0.2.71 FOR root, Authentication failure`
//!   (shadow);
//! - `2 LOGIN FAILURES FROM 192.0.2.72, root` (shadow's summary after the
//!   session: a failure counted twice).
//!
//! `FROM` names the remote host for Telnet/rlogin; on a console it is
//! absent or a tty, and the event keeps no source address.

use super::fields::{nonempty, parse_peer, set_src_peer};
use crate::model::{AuthOutcome, Event, EventKind};

/// Parse a login failure message; `None` for other messages.
pub(crate) fn parse(msg: &str) -> Option<Event> {
    let m = msg.trim();
    let unquote = |s: &str| s.trim().trim_matches('\'').to_string();
    let mut ev = Event::new(EventKind::Auth);
    ev.service = Some("login".into());
    ev.auth = Some(AuthOutcome::Failure);
    if let Some(r) = m.strip_prefix("FAILED LOGIN ") {
        if let Some(p) = r.find(" FROM ") {
            let after = &r[p + 6..];
            let (host, rest) = after.split_once(" FOR ").unwrap_or((after, ""));
            if let Some(peer) = parse_peer(&unquote(host)) {
                set_src_peer(&mut ev, peer);
            }
            let user = rest.split(", ").next().unwrap_or(rest);
            ev.user = nonempty(&unquote(user));
        } else if let Some(p) = r.find(" FOR ") {
            let rest = &r[p + 5..];
            ev.user = nonempty(&unquote(rest.split(", ").next().unwrap_or(rest)));
        }
        return Some(ev);
    }
    let (n, r) = m.split_once(" LOGIN FAILURES FROM ")?;
    let n = n.trim().parse::<u64>().ok()?;
    let (host, user) = r.split_once(", ").unwrap_or((r, ""));
    if let Some(peer) = parse_peer(host.trim()) {
        set_src_peer(&mut ev, peer);
    }
    ev.user = nonempty(user.trim());
    ev.count = n.clamp(1, 100);
    Some(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let ev = parse(
            "FAILED LOGIN (1) on '/dev/pts/3' FROM '192.0.2.70' FOR 'root', Authentication failure",
        )
        .unwrap();
        assert_eq!(ev.src_ip, Some("192.0.2.70".parse().unwrap()));
        assert_eq!(ev.user.as_deref(), Some("root"));
        let ev = parse("FAILED LOGIN 1 FROM 192.0.2.71 FOR root, Authentication failure").unwrap();
        assert_eq!(ev.src_ip, Some("192.0.2.71".parse().unwrap()));
        assert_eq!(ev.user.as_deref(), Some("root"));
        let ev = parse("2 LOGIN FAILURES FROM 192.0.2.72, root").unwrap();
        assert_eq!(ev.count, 2);
        assert_eq!(ev.user.as_deref(), Some("root"));
        let ev =
            parse("FAILED LOGIN (3) on '/dev/tty1' FOR 'admin', Authentication failure").unwrap();
        assert_eq!(ev.src_ip, None);
        assert_eq!(ev.user.as_deref(), Some("admin"));
        assert!(parse("ROOT LOGIN  on '/dev/tty1'").is_none());
        assert!(parse("x LOGIN FAILURES FROM 192.0.2.1, a").is_none());
        assert!(parse("FAILED LOGIN ").is_none());
        assert!(parse("").is_none());
    }
}
