//! Samba authentication audit lines (`log level = 1 auth_audit:3`):
//! `Auth: [SMB2,(null)] user []\[toto] at [Fri, 24 Sep 2021 10:04:52.030937
//! UTC] with [NTLMv2] status [NT_STATUS_NO_SUCH_USER] workstation []
//! remote host [ipv4:1.2.3.4:62419] mapped to []\[toto]. local host
//! [ipv4:10.1.1.1:445]`. `NT_STATUS_OK` is a success, `NO_SUCH_USER` an
//! invalid user, any other status a failure. Service `smb`.

use super::Ctx;
use super::TimeQuality;
use super::fields::{nonempty, split_ip_port};
use super::timestamp::{civil_to_timestamp, month_from_abbr};
use crate::model::{AuthOutcome, Event, EventKind};

fn bracket<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let i = s.find(key)? + key.len();
    let j = s[i..].find(']')? + i;
    Some(&s[i..j])
}

fn endpoint(v: &str) -> Option<(std::net::IpAddr, Option<u16>)> {
    let v = v
        .strip_prefix("ipv4:")
        .or_else(|| v.strip_prefix("ipv6:"))
        .unwrap_or(v);
    split_ip_port(v, ':')
}

/// Parse a Samba `Auth:` audit line.
pub(crate) fn parse(c: &Ctx) -> Option<Event> {
    let m = c.body;
    let a = m.find("Auth: [")?;
    let m = &m[a..];
    let mut ev = Event::new(EventKind::Auth);
    ev.service = Some("smb".to_string());
    if let Some((ip, port)) = bracket(m, "remote host [").and_then(endpoint) {
        ev.src_ip = Some(ip);
        ev.src_port = port;
    }
    if let Some((ip, port)) = bracket(m, "local host [").and_then(endpoint) {
        ev.dst_ip = Some(ip);
        ev.dst_port = port;
    }
    // user [DOMAIN]\[name]
    if let Some(i) = m.find(" user [") {
        let r = &m[i + 7..];
        if let Some(j) = r.find("]\\[") {
            let u = &r[j + 3..];
            ev.user = u.find(']').and_then(|k| nonempty(&u[..k]));
        }
    }
    ev.auth = match bracket(m, "status [") {
        Some("NT_STATUS_OK") => Some(AuthOutcome::Success),
        Some("NT_STATUS_NO_SUCH_USER") => Some(AuthOutcome::InvalidUser),
        Some(_) => Some(AuthOutcome::Failure),
        None => None,
    };
    // at [Fri, 24 Sep 2021 10:04:52.030937 UTC]
    let t = bracket(m, " at [").and_then(rfc2822ish);
    c.pick_time(&mut ev, t.map(|t| (t, TimeQuality::Zoned)));
    Some(ev)
}

/// `Fri, 24 Sep 2021 10:04:52.030937 UTC`.
fn rfc2822ish(s: &str) -> Option<jiff::Timestamp> {
    let s = s.split_once(", ").map(|x| x.1).unwrap_or(s);
    let mut it = s.split(' ');
    let d: u8 = it.next()?.parse().ok()?;
    let mo = month_from_abbr(it.next()?.as_bytes())?;
    let y: i16 = it.next()?.parse().ok()?;
    let clock = it.next()?;
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, "0"));
    let mut c = hms.split(':');
    let h: u8 = c.next()?.parse().ok()?;
    let mi: u8 = c.next()?.parse().ok()?;
    let se: u8 = c.next()?.parse().ok()?;
    let mut nanos: u32 = 0;
    let mut n = 0;
    for b in frac.bytes().take(9) {
        nanos = nanos * 10 + (b.wrapping_sub(b'0') as u32 % 10);
        n += 1;
    }
    while n < 9 {
        nanos *= 10;
        n += 1;
    }
    civil_to_timestamp(y, mo, d, h, mi, se, nanos, 0)
}
