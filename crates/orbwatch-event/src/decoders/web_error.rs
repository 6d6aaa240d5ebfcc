//! Apache and Nginx error logs, where failed HTTP authentication shows up.
//!
//! Apache: `[Sat Jun 01 02:17:42.123 2013] [authz_core:error] [pid 123]
//! [client 1.2.3.4:5678] AH01630: message`, and the 2.2 style `[time]
//! [error] [client 1.2.3.4] message`. Only the leading bracket groups are
//! header: a `[client x]` inside the message (an injection attempt) is not
//! taken as the client.
//!
//! Nginx: `2013/06/01 02:17:42 [error] 123#0: *1 message, client: 1.2.3.4,
//! server: example.com, request: "GET / HTTP/1.1", host: "example.com"`,
//! possibly behind a syslog/journal prefix. The client is the `, client:`
//! after which the rest of the line is a well-formed nginx context suffix,
//! so a user name containing `, client: ` does not spoof it.
//!
//! Neither format writes a UTC offset: times are taken as UTC.
//!
//! Authentication outcomes (service `http`, kind `Auth`): unknown user
//! (AH01618, AH01790, nginx `was not found in`) → InvalidUser; password
//! mismatch, authentication/authorization failure, wrong scheme, missing
//! credentials, PAM failures → Failure. `client denied by server
//! configuration` and `access forbidden by rule` are access control, not
//! authentication: Action::Deny. The message is matched at its start only.
//! Every address in the message goes to `other_ips`.
//!
//! An access-log line met in an error log is decoded as an access line.

use super::text::{civil_to_timestamp, digits, fraction, month_from_abbr};
use super::zeek_fields::{host_without_port, parse_ip, push_ip, scan_into, tidy};
use super::{DecodeError, Decoded, Decoder, DecoderConfig, DecoderInfo};
use crate::model::{Action, AuthOutcome, Event, EventKind};

/// Registry entry.
pub const INFO: DecoderInfo = DecoderInfo {
    name: "web-error",
    description: "Apache/Nginx error logs",
    sniff,
    make: |cfg: &DecoderConfig| Box::new(WebError { year: cfg.year }),
};

fn sniff(lines: &[&[u8]]) -> u8 {
    let mut total = 0;
    let mut hits = 0;
    for l in lines.iter().take(50) {
        if l.trim_ascii().is_empty() || l.starts_with(b"#") {
            continue;
        }
        total += 1;
        if apache_start(l).is_some()
            || nginx_time_at(l, 0).is_some()
            || apache_via_syslog(l, None).is_some()
        {
            hits += 1;
        }
    }
    if total == 0 || hits == 0 {
        0
    } else if hits * 2 >= total {
        85
    } else {
        30
    }
}

/// The error-log decoder: stateless apart from the year for syslog-borne
/// Apache lines.
#[derive(Clone)]
struct WebError {
    year: Option<i16>,
}

impl Decoder for WebError {
    fn name(&self) -> &'static str {
        "web-error"
    }

    fn decode(&mut self, record: &[u8]) -> Result<Decoded, DecodeError> {
        let record = record.strip_suffix(b"\r").unwrap_or(record);
        if record.trim_ascii().is_empty() {
            return Ok(Decoded::Skip);
        }
        if let Some(ev) = parse_error_line(record, self.year) {
            return Ok(Decoded::Event(Box::new(ev)));
        }
        if let Some(ev) = super::web_access::parse_access(record) {
            return Ok(Decoded::Event(Box::new(ev)));
        }
        Err(DecodeError::new(
            "not an Apache or Nginx error log line: expected `[Www Mmm dd HH:MM:SS yyyy] [level] ...` or `yyyy/mm/dd HH:MM:SS [level] ...`",
        ))
    }

    fn fork(&self) -> Box<dyn Decoder> {
        Box::new(self.clone())
    }
}

/// Decode an Apache or Nginx error line, or `None` if it is neither.
/// `year` dates Apache lines sent through syslog (`ErrorLog syslog`), whose
/// only time is the year-less syslog header.
pub(crate) fn parse_error_line(b: &[u8], year: Option<i16>) -> Option<Event> {
    if let Some(start) = apache_start(b) {
        let (time, tlen) = apache_time(&b[start + 1..])?;
        return Some(parse_apache(b, start + 1 + tlen + 1, Some(time)));
    }
    if let Some(at) = find_nginx_time(b) {
        return parse_nginx(b, at);
    }
    let (at, time) = apache_via_syslog(b, year)?;
    Some(parse_apache(b, at, time))
}

/// `Feb 15 16:23:00 srv httpd[22034]: [authz_core:error] [pid 1] [client …]`:
/// Apache's `ErrorLog syslog`. Returns the offset of the first header
/// bracket and the time (when a year is known).
fn apache_via_syslog(b: &[u8], year: Option<i16>) -> Option<(usize, Option<jiff::Timestamp>)> {
    let mo = month_from_abbr(b.get(..3)?)?;
    if b.get(3) != Some(&b' ') {
        return None;
    }
    let mut i = 4;
    if b.get(i) == Some(&b' ') {
        i += 1;
    }
    let dlen = if b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        2
    } else {
        1
    };
    let d = digits(b, i, dlen)?;
    i += dlen + 1;
    let (h, mi, s) = (digits(b, i, 2)?, digits(b, i + 3, 2)?, digits(b, i + 6, 2)?);
    if b.get(i + 2) != Some(&b':') || b.get(i + 5) != Some(&b':') {
        return None;
    }
    let at = memchr::memmem::find(b, b": [")? + 2;
    let rest = &b[at..];
    let has_header = memchr::memmem::find(rest, b"[client ").is_some()
        || memchr::memmem::find(rest, b"[remote ").is_some()
        || rest.starts_with(b"[pid ");
    if !has_header {
        return None;
    }
    let time = year.and_then(|y| civil_to_timestamp(i64::from(y), mo, d, h, mi, s, 0, 0));
    Some((at, time))
}

// ---- Apache ----------------------------------------------------------------

/// Offset of `[Www Mmm dd HH:MM:SS(.f) yyyy]` (at the line start or after a
/// syslog-style prefix ending in `: `).
fn apache_start(b: &[u8]) -> Option<usize> {
    if b.first() == Some(&b'[') && apache_time(&b[1..]).is_some() {
        return Some(0);
    }
    let i = memchr::memmem::find(b, b": [")?;
    (apache_time(&b[i + 3..]).is_some()).then_some(i + 2)
}

/// `Sat Jun 01 02:17:42.123 2013]` → (instant, length up to `]`).
fn apache_time(t: &[u8]) -> Option<(jiff::Timestamp, usize)> {
    if t.get(3) != Some(&b' ') {
        return None;
    }
    let mo = month_from_abbr(t.get(4..7)?)?;
    if t.get(7) != Some(&b' ') {
        return None;
    }
    let mut i = 8;
    if t.get(i) == Some(&b' ') {
        i += 1;
    }
    let dlen = if t.get(i + 1).is_some_and(u8::is_ascii_digit) {
        2
    } else {
        1
    };
    let d = digits(t, i, dlen)?;
    i += dlen;
    if t.get(i) != Some(&b' ') {
        return None;
    }
    i += 1;
    let h = digits(t, i, 2)?;
    let mi = digits(t, i + 3, 2)?;
    let s = digits(t, i + 6, 2)?;
    if t.get(i + 2) != Some(&b':') || t.get(i + 5) != Some(&b':') {
        return None;
    }
    i += 8;
    let mut nanos = 0;
    if t.get(i) == Some(&b'.') {
        let (n, used) = fraction(&t[i + 1..]);
        nanos = n;
        i += 1 + used;
    }
    if t.get(i) != Some(&b' ') {
        return None;
    }
    let y = digits(t, i + 1, 4)?;
    i += 5;
    if t.get(i) != Some(&b']') {
        return None;
    }
    let ts = civil_to_timestamp(i64::from(y), mo, d, h, mi, s, nanos, 0)?;
    Some((ts, i))
}

/// Decode the header brackets from `b[i..]` on, then the message.
fn parse_apache(b: &[u8], mut i: usize, time: Option<jiff::Timestamp>) -> Event {
    let mut ev = Event::new(EventKind::Http);
    ev.time = time;
    ev.service = Some("http".into());
    // Header brackets: [level] [pid ..] [client ..] [remote ..].
    for _ in 0..8 {
        while b.get(i) == Some(&b' ') {
            i += 1;
        }
        if b.get(i) != Some(&b'[') {
            break;
        }
        let body = &b[i + 1..];
        if let Some(rest) = body
            .strip_prefix(b"client ")
            .or_else(|| body.strip_prefix(b"remote "))
        {
            let is_client = body.starts_with(b"client ");
            if is_client && ev.src_ip.is_some() {
                // A [client] after a [remote]: the client is the source.
                if let Some(prev) = ev.src_ip.take() {
                    push_ip(&mut ev.other_ips, prev);
                }
                ev.src_port = None;
            }
            let Some((addr, port, used)) = bracket_addr(rest) else {
                break;
            };
            if let Some(ip) = parse_ip(&String::from_utf8_lossy(addr)) {
                // `[remote x]` (mod_remoteip, 2.4) stands in for a missing
                // `[client x]`.
                if ev.src_ip.is_none() {
                    ev.src_ip = Some(ip);
                    ev.src_port = port;
                } else {
                    push_ip(&mut ev.other_ips, ip);
                }
            }
            i += 1 + 7 + used;
            if b.get(i) == Some(&b']') {
                i += 1;
            }
        } else {
            let Some(close) = memchr::memchr(b']', body) else {
                break;
            };
            i += 1 + close + 1;
        }
    }
    let msg = String::from_utf8_lossy(b.get(i..).unwrap_or(&[]));
    let msg = msg.trim();
    scan_into(&mut ev.other_ips, msg);
    let (code, text) = split_ah_code(msg);
    classify_apache(&mut ev, code, text);
    finish(&mut ev);
    ev
}

/// `1.2.3.4:5678]`, `1.2.3.4]`, `[2001:db8::1]:5678]`, `2001:db8::1]` →
/// (address, port, bytes used up to the closing `]`, exclusive).
fn bracket_addr(r: &[u8]) -> Option<(&[u8], Option<u16>, usize)> {
    if r.first() == Some(&b'[') {
        let e = memchr::memchr(b']', r)?;
        let addr = &r[1..e];
        let mut j = e + 1;
        let mut port = None;
        if r.get(j) == Some(&b':') {
            let pe = r[j + 1..].iter().position(|c| !c.is_ascii_digit())? + j + 1;
            port = std::str::from_utf8(&r[j + 1..pe]).ok()?.parse().ok();
            j = pe;
        }
        return Some((addr, port, j));
    }
    let e = memchr::memchr(b']', r)?;
    let tok = &r[..e];
    let colons = tok.iter().filter(|c| **c == b':').count();
    if colons == 1 {
        let c = memchr::memchr(b':', tok)?;
        let port = std::str::from_utf8(&tok[c + 1..])
            .ok()
            .and_then(|p| p.parse().ok());
        return Some((&tok[..c], port, e));
    }
    if colons > 1 {
        // `2001:db8::1:5678` is ambiguous; Apache prints IPv6 with a port
        // only when the address parses without the last group.
        let s = String::from_utf8_lossy(tok);
        if parse_ip(&s).is_none()
            && let Some(c) = tok.iter().rposition(|c| *c == b':')
        {
            let port = std::str::from_utf8(&tok[c + 1..])
                .ok()
                .and_then(|p| p.parse().ok());
            return Some((&tok[..c], port, e));
        }
    }
    Some((tok, None, e))
}

/// `AH01630: client denied…` → (Some("AH01630"), "client denied…").
fn split_ah_code(msg: &str) -> (Option<&str>, &str) {
    let b = msg.as_bytes();
    if b.len() > 8 && b.starts_with(b"AH") && b[2..7].iter().all(u8::is_ascii_digit) && b[7] == b':'
    {
        (Some(&msg[..7]), msg[8..].trim_start())
    } else {
        (None, msg)
    }
}

fn classify_apache(ev: &mut Event, code: Option<&str>, text: &str) {
    let t = text.strip_prefix("Digest: ").unwrap_or(text);
    let lower = t.to_ascii_lowercase();
    if lower.starts_with("client denied by server configuration")
        || matches!(code, Some("AH01630" | "AH01797" | "AH01629"))
    {
        ev.action = Some(Action::Deny);
        return;
    }
    if let Some(rest) = t.strip_prefix("user ") {
        // `user x not found: /`, `user `x' in realm `r' not found: /`,
        // `user x: authentication failure for "/": Password Mismatch`,
        // `user x: password mismatch: /`, `user x: authorization failure`.
        if let Some(user_end) = rest.find(": ") {
            let user = &rest[..user_end];
            let what = rest[user_end + 2..].to_ascii_lowercase();
            if !user.contains(" not found")
                && (what.starts_with("authentication failure")
                    || what.starts_with("password mismatch")
                    || what.starts_with("authorization failure"))
            {
                set_auth(ev, AuthOutcome::Failure, Some(user));
                return;
            }
        }
        if let Some(p) = rest.find(" not found") {
            let head = &rest[..p];
            let user = match head.find(" in realm ") {
                Some(r) => &head[..r],
                None => head,
            };
            let user = user.trim_matches(|c| c == '`' || c == '\'' || c == '"' || c == ' ');
            let outcome = if user.is_empty() {
                AuthOutcome::Failure
            } else {
                AuthOutcome::InvalidUser
            };
            set_auth(ev, outcome, Some(user));
            return;
        }
    }
    if lower.starts_with("client used wrong authentication scheme")
        || matches!(code, Some("AH01614"))
    {
        set_auth(ev, AuthOutcome::Failure, None);
        return;
    }
    if let Some(rest) = t.strip_prefix("Authorization of user ") {
        let user = rest.split(' ').next();
        if rest.contains(" failed") {
            set_auth(ev, AuthOutcome::Failure, user);
        }
        return;
    }
    // Digest protocol failures: a wrong realm, algorithm or qop, or a
    // replayed nonce. An `invalid nonce … hash is not …` can be a stale
    // nonce of a legitimate client and is not counted.
    if lower.starts_with("realm mismatch")
        || lower.starts_with("unknown algorithm")
        || lower.starts_with("invalid qop")
        || (lower.starts_with("invalid nonce")
            && (lower.contains("user attempted time travel") || lower.contains("length is not")))
    {
        set_auth(ev, AuthOutcome::Failure, None);
        return;
    }
    if lower.starts_with("authentication failure") || lower.contains("password mismatch") {
        set_auth(ev, AuthOutcome::Failure, None);
    }
}

// ---- Nginx -----------------------------------------------------------------

/// Whether `yyyy/mm/dd HH:MM:SS [` starts at `b[i]`.
fn nginx_time_at(b: &[u8], i: usize) -> Option<jiff::Timestamp> {
    let t = b.get(i..)?;
    if t.get(4) != Some(&b'/')
        || t.get(7) != Some(&b'/')
        || t.get(10) != Some(&b' ')
        || t.get(13) != Some(&b':')
        || t.get(16) != Some(&b':')
        || t.get(19) != Some(&b' ')
        || t.get(20) != Some(&b'[')
    {
        return None;
    }
    civil_to_timestamp(
        i64::from(digits(t, 0, 4)?),
        digits(t, 5, 2)?,
        digits(t, 8, 2)?,
        digits(t, 11, 2)?,
        digits(t, 14, 2)?,
        digits(t, 17, 2)?,
        0,
        0,
    )
}

/// Find the nginx time at the start or behind a prefix.
fn find_nginx_time(b: &[u8]) -> Option<usize> {
    if nginx_time_at(b, 0).is_some() {
        return Some(0);
    }
    for slash in memchr::memchr_iter(b'/', b).take(16) {
        if slash >= 4 && nginx_time_at(b, slash - 4).is_some() {
            let s = slash - 4;
            if s == 0 || b[s - 1] == b' ' {
                return Some(s);
            }
        }
    }
    None
}

fn parse_nginx(b: &[u8], at: usize) -> Option<Event> {
    let time = nginx_time_at(b, at)?;
    let mut ev = Event::new(EventKind::Http);
    ev.time = Some(time);
    ev.service = Some("http".into());
    // `[level] pid#tid: *cid message`
    let after = &b[at + 20..];
    let close = memchr::memchr(b']', after)?;
    let mut rest = &after[close + 1..];
    rest = rest.trim_ascii_start();
    if let Some(c) = memchr::memmem::find(rest, b": ")
        && rest[..c].iter().all(|x| x.is_ascii_digit() || *x == b'#')
        && c > 0
    {
        rest = &rest[c + 2..];
    }
    if rest.first() == Some(&b'*') {
        let sp = memchr::memchr(b' ', rest).unwrap_or(rest.len());
        rest = &rest[sp..];
    }
    let line = String::from_utf8_lossy(rest);
    let line = line.trim();
    // The genuine context suffix.
    let mut msg_end = line.len();
    let mut chosen: Option<usize> = None;
    let mut last_ok: Option<usize> = None;
    let pat = ", client: ";
    let mut from = 0;
    while let Some(p) = line[from..].find(pat) {
        let at = from + p;
        let tail = &line[at + pat.len()..];
        let addr = tail.split(", ").next().unwrap_or(tail);
        if parse_ip(addr).is_some() {
            last_ok = Some(at);
            if context_suffix_ok(tail) {
                chosen = Some(at);
                break;
            }
        }
        from = at + pat.len();
    }
    if let Some(at) = chosen.or(last_ok) {
        msg_end = at;
        let tail = &line[at + pat.len()..];
        let addr = tail.split(", ").next().unwrap_or(tail);
        ev.src_ip = parse_ip(addr);
        let (request, host) = context_values(tail);
        if let Some(h) = host {
            let h = host_without_port(h);
            match parse_ip(h) {
                Some(ip) => ev.dst_ip = Some(ip),
                None if !h.is_empty() => ev.domain = Some(h.to_ascii_lowercase()),
                None => {}
            }
        }
        if let Some(req) = request {
            let mut parts = req.split(' ');
            let _method = parts.next();
            if let Some(path) = parts.next() {
                ev.url = Some(match (&ev.domain, host) {
                    (_, _) if path.starts_with("http://") || path.starts_with("https://") => {
                        path.to_owned()
                    }
                    (_, Some(h)) if path.starts_with('/') => format!("http://{h}{path}"),
                    _ => path.to_owned(),
                });
            }
        }
    }
    scan_into(&mut ev.other_ips, line);
    classify_nginx(&mut ev, &line[..msg_end]);
    finish(&mut ev);
    Some(ev)
}

/// The keys of nginx's error context, in the order nginx writes them.
const CONTEXT_KEYS: &[&str] = &[
    "client",
    "server",
    "request",
    "subrequest",
    "upstream",
    "host",
    "referrer",
];

/// The known context key that `s` starts with (`host: …`), if any.
fn known_key(s: &str) -> Option<usize> {
    CONTEXT_KEYS
        .iter()
        .position(|k| s.len() > k.len() + 1 && s.starts_with(k) && s[k.len()..].starts_with(": "))
}

/// Whether `tail` (after `, client: `) is nginx's context suffix to the end
/// of the line: `addr, server: x(, key: value)*`, known keys in nginx's
/// order and never `client` again. A quoted value ends at the first quote
/// followed by `, <known key>: ` or by the end of the line; nothing is
/// tried twice. So a suffix forged inside a user name does not fit (the
/// genuine one after it does); one forged inside a referrer can, and then
/// the genuine client still lands in `other_ips`.
fn context_suffix_ok(tail: &str) -> bool {
    let addr_end = tail.find(", ").unwrap_or(tail.len());
    if tail[..addr_end].contains('"') {
        return false;
    }
    let mut rest = &tail[addr_end..];
    let mut last = 0; // index of `client`
    while !rest.is_empty() {
        let Some(r) = rest.strip_prefix(", ") else {
            return false;
        };
        let Some((key, val)) = r.split_once(": ") else {
            return false;
        };
        match CONTEXT_KEYS.iter().position(|k| *k == key) {
            Some(i) if i > last => last = i,
            Some(_) => return false,
            None if key.bytes().all(|c| c.is_ascii_lowercase() || c == b'_') && last > 0 => {}
            None => return false,
        }
        if let Some(q) = val.strip_prefix('"') {
            let mut end = None;
            for (j, _) in q.match_indices('"') {
                let after = &q[j + 1..];
                if after.is_empty()
                    || after
                        .strip_prefix(", ")
                        .is_some_and(|a| known_key(a).is_some())
                {
                    end = Some(j);
                    break;
                }
            }
            let Some(j) = end else { return false };
            rest = &q[j + 1..];
        } else {
            let e = val.find(", ").unwrap_or(val.len());
            if val[..e].contains('"') {
                return false;
            }
            rest = &val[e..];
        }
    }
    last > 0
}

/// `request: "…"` and `host: "…"` from a context suffix.
fn context_values(tail: &str) -> (Option<&str>, Option<&str>) {
    let get = |key: &str| {
        let pat = format!(", {key}: \"");
        let p = tail.find(&pat)?;
        let v = &tail[p + pat.len()..];
        let e = v.find('"')?;
        Some(&v[..e])
    };
    (get("request"), get("host"))
}

fn classify_nginx(ev: &mut Event, msg: &str) {
    if let Some(rest) = msg.strip_prefix("user \"") {
        if let Some(q) = rest.find('"') {
            let user = &rest[..q];
            let what = &rest[q + 1..];
            if what.starts_with(" was not found in ") {
                set_auth(ev, AuthOutcome::InvalidUser, Some(user));
            } else if what.starts_with(": password mismatch") {
                set_auth(ev, AuthOutcome::Failure, Some(user));
            }
        }
        return;
    }
    if msg.starts_with("no user/password was provided for basic authentication") {
        set_auth(ev, AuthOutcome::Failure, None);
        return;
    }
    if let Some(rest) = msg.strip_prefix("PAM: user '") {
        if let Some(q) = rest.find('\'')
            && rest[q..].contains("not authenticated")
        {
            let user = &rest[..q];
            set_auth(ev, AuthOutcome::Failure, Some(user));
        }
        return;
    }
    if msg.starts_with("access forbidden by rule") {
        ev.action = Some(Action::Deny);
    }
}

fn set_auth(ev: &mut Event, outcome: AuthOutcome, user: Option<&str>) {
    ev.kind = EventKind::Auth;
    ev.auth = Some(outcome);
    ev.user = user.filter(|u| !u.is_empty()).map(str::to_owned);
}

fn finish(ev: &mut Event) {
    if ev.src_ip.is_none() && ev.auth.is_none() && ev.other_ips.is_empty() {
        ev.kind = EventKind::Other;
    }
    tidy(ev);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apache_ipv6_client() {
        let ev = parse_error_line(b"[Sat Jul 20 22:11:44.147674 2013] [authz_owner:error] [pid 17540:tid 1] [client [2001:db8::80da:af6b:8b2c]:51548] AH01637: Authorization of user test-ipv6 to access /x failed, reason: y", None).unwrap();
        assert_eq!(ev.src_ip, Some("2001:db8::80da:af6b:8b2c".parse().unwrap()));
        assert_eq!(ev.src_port, Some(51548));
        assert_eq!(ev.auth, Some(AuthOutcome::Failure));
        assert_eq!(ev.user.as_deref(), Some("test-ipv6"));
        assert_eq!(ev.time.unwrap().to_string(), "2013-07-20T22:11:44.147674Z");
    }

    #[test]
    fn apache_injection_is_not_auth() {
        let ev = parse_error_line(b"[Sat Jun 01 02:17:42 2013] [error] [client 192.168.33.1] File does not exist: /srv/http/site/[client 192.168.0.1] user root not found", None).unwrap();
        assert_eq!(ev.src_ip, Some("192.168.33.1".parse().unwrap()));
        assert_eq!(ev.auth, None);
    }

    #[test]
    fn nginx_injection_picks_real_client() {
        let ev = parse_error_line(br#"2014/04/03 22:20:40 [error] 30708#0: *3 user "test": password mismatch, client: 127.0.0.1, server: test, request: "GET / HTTP/1.1", host: "localhost:8443"": was not found in "/etc/nginx/.htpasswd", client: 192.0.2.2, server: , request: "GET / HTTP/1.1", host: "localhost:8443""#, None).unwrap();
        assert_eq!(ev.src_ip, Some("192.0.2.2".parse().unwrap()));
        assert_eq!(ev.auth, Some(AuthOutcome::Failure));
        assert_eq!(ev.user.as_deref(), Some("test"));
        assert!(ev.other_ips.contains(&"127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn nginx_referrer_cannot_spoof_client() {
        let ev = parse_error_line(br#"2014/04/02 12:37:58 [error] 6563#0: *1861 user "x": password mismatch, client: 10.0.2.2, server: s.io, request: "GET /admin HTTP/1.1", host: "s.io", referrer: "https://a/, client: 6.6.6.6, server: y""#, None).unwrap();
        assert_eq!(ev.src_ip, Some("10.0.2.2".parse().unwrap()));
        assert_eq!(
            ev.other_ips,
            vec!["6.6.6.6".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(ev.domain.as_deref(), Some("s.io"));
        assert_eq!(ev.url.as_deref(), Some("http://s.io/admin"));
    }

    #[test]
    fn nginx_behind_journal_prefix() {
        let ev = parse_error_line(br#"host nginx[23141]: host nginx: 2025/09/07 21:20:40 [error] 23141#23141: *24470 PAM: user 'username' - not authenticated: Authentication failure, client: 192.0.2.120, server: webdav.sub.domain, request: "GET / HTTP/2.0", host: "webdav.sub.domain""#, None).unwrap();
        assert_eq!(ev.src_ip, Some("192.0.2.120".parse().unwrap()));
        assert_eq!(ev.auth, Some(AuthOutcome::Failure));
        assert_eq!(ev.user.as_deref(), Some("username"));
        assert_eq!(ev.time.unwrap().to_string(), "2025-09-07T21:20:40Z");
    }
}
