//! MySQL / MariaDB error log `Access denied for user 'root'@'1.2.3.4'
//! (using password: YES)`, as a file (`130324  0:04:00 [Warning] ...`,
//! `2019-01-03T08:50:04.634875Z 113 [Note] [MY-010926] [Server] ...`) or
//! through syslog. An auth failure, service `mysql`.

use super::Ctx;
use super::TimeQuality;
use super::fields::{nonempty, parse_peer, set_src_peer};
use super::timestamp::civil_to_timestamp;
use crate::model::{AuthOutcome, Event, EventKind};

/// Parse an `Access denied` line.
pub(crate) fn parse(c: &Ctx) -> Option<Event> {
    let body = c.body;
    let key = "Access denied for user '";
    let i = body.find(key)? + key.len();
    let r = &body[i..];
    let (user, r) = r.split_once("'@'")?;
    let host = &r[..r.find('\'')?];
    let mut ev = Event::new(EventKind::Auth);
    ev.auth = Some(AuthOutcome::Failure);
    ev.service = Some("mysql".to_string());
    ev.user = nonempty(user);
    if let Some(p) = parse_peer(host) {
        set_src_peer(&mut ev, p);
    }
    // `130324  0:04:00 [Warning]` (YYMMDD) at the start of the message.
    let t = yymmdd(c.msg.trim_start());
    c.pick_time(&mut ev, t.map(|t| (t, TimeQuality::Local)));
    // A raw error log has a thread id where syslog has a host.
    if c.host
        .is_some_and(|h| h.bytes().all(|b| b.is_ascii_digit()))
    {
        ev.host = Some(String::new());
    }
    Some(ev)
}

/// `130324  0:04:00` / `130916 21:30:26`.
fn yymmdd(s: &str) -> Option<jiff::Timestamp> {
    let b = s.as_bytes();
    if b.len() < 14 || !b[..6].iter().all(u8::is_ascii_digit) || b[6] != b' ' {
        return None;
    }
    let n = |x: &[u8]| x.iter().fold(0u32, |a, d| a * 10 + (d - b'0') as u32);
    let y = 2000 + n(&b[0..2]) as i16;
    let mo = n(&b[2..4]) as u8;
    let d = n(&b[4..6]) as u8;
    let rest = s[7..].trim_start();
    let mut it = rest.split([':', ' ']);
    let h: u8 = it.next()?.parse().ok()?;
    let mi: u8 = it.next()?.parse().ok()?;
    let se: u8 = it.next()?.parse().ok()?;
    civil_to_timestamp(y, mo, d, h, mi, se, 0, 0)
}
