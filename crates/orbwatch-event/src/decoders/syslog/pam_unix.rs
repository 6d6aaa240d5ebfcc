//! PAM module messages, from any program: `pam_unix(sshd:auth):
//! authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=IP
//! user=X`, the old `(pam_unix) authentication failure; ...`, the bare
//! `authentication failure; ...` some vsftpd builds write, `pam_sss`,
//! `pam_ldap`, `PAM 2 more authentication failures; ...` and `check pass;
//! user unknown`.
//!
//! The service is the one named in `pam_x(service:auth)`, else the program.

use super::fields::{Peer, for_each_kv, nonempty, parse_peer, set_src_peer};
use crate::model::{AuthOutcome, Event, EventKind};

/// Parse a PAM message; `default_service` names the program. `None` if the
/// text is not a PAM message this module knows.
pub(crate) fn parse(msg: &str, default_service: &str) -> Option<Event> {
    let mut service = default_service;
    let mut rest = msg.trim();
    let mut count = 1u64;
    if let Some(r) = rest.strip_prefix("PAM ") {
        // `PAM 2 more authentication failures; logname= ...`
        let (n, r) = r.split_once(' ')?;
        count = n.parse::<u64>().ok()?;
        rest = r;
    } else if let Some(r) = bare_module_tag(rest) {
        // `pam_unix: authentication failure; ...` (no service in the tag).
        rest = r;
    } else if rest.starts_with("pam_") || rest.starts_with("(pam_") {
        let close = rest.find(')')?;
        let inner = &rest[..close];
        if let Some(open) = inner.rfind('(').filter(|&o| o > 0) {
            let svc = &inner[open + 1..];
            let svc = svc.split(':').next().unwrap_or(svc);
            if !svc.is_empty() {
                service = svc;
            }
        }
        rest = rest[close + 1..].trim_start_matches(':').trim_start();
    }
    let mut ev = Event::new(EventKind::Auth);
    ev.service = nonempty(service);
    if let Some(r) = rest
        .strip_prefix("authentication failure;")
        .or_else(|| rest.strip_prefix("more authentication failures;"))
        .or_else(|| rest.strip_prefix("more authentication failure;"))
    {
        ev.auth = Some(AuthOutcome::Failure);
        let mut user = None;
        let mut ruser = None;
        for_each_kv(r, |k, v| match k {
            "rhost" => {
                if let Some(p) = parse_peer(v) {
                    set_src_peer(&mut ev, p);
                }
            }
            "user" => user = nonempty(v),
            "ruser" => ruser = nonempty(v),
            _ => {}
        });
        ev.user = user.or(ruser);
        if count > 1 {
            ev.count = count;
        }
        return Some(ev);
    }
    if let Some(r) = rest.strip_prefix("check pass; user unknown") {
        let _ = r;
        ev.auth = Some(AuthOutcome::InvalidUser);
        return Some(ev);
    }
    if rest.starts_with("session opened for user ") || rest.starts_with("session closed for user ")
    {
        ev.kind = EventKind::Other;
        let u = &rest[24..];
        let u = u.split([' ', '(']).next().unwrap_or(u);
        ev.user = nonempty(u);
        return Some(ev);
    }
    if rest.contains("rhost=") {
        // Other pam messages with a remote host: keep the address.
        ev.kind = EventKind::Other;
        for_each_kv(rest, |k, v| {
            if k == "rhost"
                && let Some(p @ Peer::Ip(_)) = parse_peer(v)
            {
                set_src_peer(&mut ev, p);
            }
        });
        return Some(ev);
    }
    None
}

/// The message after a module tag without a service, `pam_unix:` or
/// `pam_sss[12]:`, as some vsftpd and older builds write it.
fn bare_module_tag(s: &str) -> Option<&str> {
    let tag_end = s.find(':')?;
    let tag = &s[..tag_end];
    let name = tag.split('[').next().unwrap_or(tag);
    let ok = name.starts_with("pam_")
        && name.len() > 4
        && name[4..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    ok.then(|| s[tag_end + 1..].trim_start())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let ev = parse(
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.112  user=root",
            "x",
        )
        .unwrap();
        assert_eq!(ev.service.as_deref(), Some("sshd"));
        assert_eq!(ev.user.as_deref(), Some("root"));
        assert_eq!(ev.src_ip, Some("192.0.2.112".parse().unwrap()));
        let ev = parse(
            "(pam_unix) authentication failure; logname= uid=0 euid=0 tty= ruser= rhost=209.67.1.67",
            "vsftpd",
        )
        .unwrap();
        assert_eq!(ev.service.as_deref(), Some("vsftpd"));
        let ev = parse(
            "PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=1.2.3.4  user=root",
            "sshd",
        )
        .unwrap();
        assert_eq!(ev.count, 2);
        let ev = parse(
            "pam_unix: authentication failure; logname= uid=0 euid=0 tty=ftp ruser=an8767 rhost=203.0.113.9",
            "vsftpd",
        )
        .unwrap();
        assert_eq!(ev.service.as_deref(), Some("vsftpd"));
        assert_eq!(ev.src_ip, Some("203.0.113.9".parse().unwrap()));
        assert_eq!(ev.user.as_deref(), Some("an8767"));
        // A tag that is not a module name is not taken for one.
        assert!(parse("pam_: authentication failure; rhost=1.2.3.4", "x").is_none());
        assert!(parse("pam_unix", "x").is_none());
    }
}
