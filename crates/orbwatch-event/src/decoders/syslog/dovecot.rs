//! Dovecot's own authentication messages (the shapes fail2ban's `dovecot`
//! filter reads), beside the `pam_unix(dovecot:auth)` lines `pam_unix`
//! already reads:
//!
//! - `imap-login: Disconnected (auth failed, 2 attempts in 4 secs):
//!   user=<bob>, method=PLAIN, rip=IP, lip=IP, TLS` (also `Aborted login`,
//!   `Info:` prefixes, `pop3-login`, `managesieve-login`,
//!   `submission-login`): a failure counted `N` times;
//! - `auth-worker(123): pam(user,IP): pam_authenticate() failed:
//!   Authentication failure (password mismatch?)`, or `User not known to
//!   the underlying authentication module` (an unknown account), with an
//!   optional `: 2 Time(s)` suffix from log summarisers.
//!
//! Disconnections with no authentication attempt are not failures: they
//! keep their address as a connection.

use super::fields::{nonempty, parse_ip};
use crate::model::{AuthOutcome, Event, EventKind};

/// Parse a dovecot message; `None` when it is none of the above.
pub(crate) fn parse(msg: &str) -> Option<Event> {
    let m = msg.trim();
    if let Some(ev) = parse_pam(m) {
        return Some(ev);
    }
    let (proto, rest) = m.split_once("-login: ")?;
    let proto = proto.rsplit([' ', ':']).next().unwrap_or(proto);
    let rest = rest.strip_prefix("Info: ").unwrap_or(rest);
    let mut ev = Event::new(EventKind::Connection);
    ev.service = nonempty(proto);
    let fields = rest.split_once("): ").map_or(rest, |x| x.1);
    for part in fields.split(", ") {
        if let Some(v) = part.strip_prefix("rip=") {
            ev.src_ip = parse_ip(v.trim());
        } else if let Some(v) = part.strip_prefix("lip=") {
            ev.dst_ip = parse_ip(v.trim());
        } else if let Some(v) = part.strip_prefix("user=<") {
            ev.user = nonempty(v.trim_end_matches('>'));
        }
    }
    if let Some(p) = rest.find("(auth failed, ") {
        let n = rest[p + 14..]
            .split(' ')
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(1);
        ev.kind = EventKind::Auth;
        ev.auth = Some(AuthOutcome::Failure);
        ev.count = n.clamp(1, 100);
    }
    ev.src_ip?;
    Some(ev)
}

/// `pam(user,IP[,session]): pam_authenticate() failed: …`.
fn parse_pam(m: &str) -> Option<Event> {
    let p = m.find("pam(")?;
    let inner = &m[p + 4..];
    let (args, rest) = inner.split_once("): ")?;
    if !rest.starts_with("pam_authenticate() failed:") {
        return None;
    }
    let mut parts = args.split(',');
    let user = parts.next().and_then(nonempty);
    let ip = parts.next().and_then(|s| parse_ip(s.trim()))?;
    let mut ev = Event::new(EventKind::Auth);
    ev.service = Some("dovecot".into());
    ev.src_ip = Some(ip);
    ev.user = user;
    ev.auth = Some(if rest.contains("User not known") {
        AuthOutcome::InvalidUser
    } else {
        AuthOutcome::Failure
    });
    if let Some(t) = rest.strip_suffix(" Time(s)")
        && let Some(n) = t.rsplit(": ").next().and_then(|n| n.parse::<u64>().ok())
    {
        ev.count = n.clamp(1, 100);
    }
    Some(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let ev = parse("imap-login: Disconnected (auth failed, 2 attempts in 4 secs): user=<bob>, method=PLAIN, rip=192.0.2.9, lip=192.0.2.1, TLS").unwrap();
        assert_eq!(ev.auth, Some(AuthOutcome::Failure));
        assert_eq!(ev.count, 2);
        assert_eq!(ev.user.as_deref(), Some("bob"));
        assert_eq!(ev.service.as_deref(), Some("imap"));
        assert_eq!(ev.src_ip, Some("192.0.2.9".parse().unwrap()));
        let ev = parse("pop3-login: Info: Aborted login (auth failed, 1 attempts): user=<a@example.org>, method=CRAM-MD5, rip=192.0.2.10, lip=192.0.2.1").unwrap();
        assert_eq!(ev.count, 1);
        assert_eq!(ev.service.as_deref(), Some("pop3"));
        let ev = parse(
            "pop3-login: Disconnected (no auth attempts): rip=192.0.2.11, lip=192.0.2.1, TLS",
        )
        .unwrap();
        assert_eq!(ev.auth, None);
        assert_eq!(ev.kind, EventKind::Connection);
        let ev = parse("auth-worker(5345): pam(carol,192.0.2.12): pam_authenticate() failed: Authentication failure (password mismatch?)").unwrap();
        assert_eq!(ev.auth, Some(AuthOutcome::Failure));
        assert_eq!(ev.user.as_deref(), Some("carol"));
        let ev = parse("auth(default): pam(x@example.org,192.0.2.13): pam_authenticate() failed: User not known to the underlying authentication module: 2 Time(s)").unwrap();
        assert_eq!(ev.auth, Some(AuthOutcome::InvalidUser));
        assert_eq!(ev.count, 2);
        assert!(parse("master: Dovecot v2.3 starting up").is_none());
        assert!(parse("imap-login: Disconnected (auth failed, x attempts): user=<>").is_none());
        assert!(parse("pam(").is_none());
        assert!(parse("").is_none());
    }
}
