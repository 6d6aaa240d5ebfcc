//! Apache and Nginx access logs: common, combined, vhost_combined
//! (`host:port client - user [...]`), extra trailing fields such as
//! `"$http_x_forwarded_for"`, and lines behind a syslog/journal prefix
//! (`Sep 15 16:13:46 web nginx[2869]: 1.2.3.4 - - [...] ...`).
//!
//! The line is split by hand around its `[dd/Mon/yyyy:HH:MM:SS ±zzzz]`
//! time: the three tokens before it are client, ident and user, a token
//! before those is the virtual host; after it come the quoted request, the
//! status, the size, and optional quoted referrer, user agent and extras.
//!
//! Authentication outcome (service `http`):
//! - 401 with a user name (`%u`), or 401/403 on a login-like path → Failure;
//! - 2xx/3xx with a user name → Success;
//! - WordPress: `POST /wp-login.php` answered 200 is a failed login (the
//!   form is shown again; success redirects with 302), and `POST
//!   /xmlrpc.php` is counted as a failed attempt too, as crowdsec's
//!   `http-bf-wordpress_bf` scenarios do: XML-RPC answers 200 even to wrong
//!   passwords, so the log cannot tell, and bursts of it are brute force.
//!
//! Addresses in the request path, the referrer and trailing fields
//! (X-Forwarded-For) go to `other_ips`; the user agent is not searched
//! (its version numbers look like addresses).
//!
//! A line that is not an access line but an Apache/Nginx error line (both
//! are often mixed in one journal or syslog file) is decoded as the
//! `web-error` decoder would.

use std::net::IpAddr;

use super::text::{civil_to_timestamp, digits, month_from_abbr};
use super::zeek_fields::{host_without_port, parse_ip, scan_into, tidy};
use super::{DecodeError, Decoded, Decoder, DecoderConfig, DecoderInfo};
use crate::model::{AuthOutcome, Event, EventKind};

/// Registry entry.
pub const INFO: DecoderInfo = DecoderInfo {
    name: "web-access",
    description: "Apache/Nginx access logs, common and combined",
    sniff,
    make: |cfg: &DecoderConfig| Box::new(WebAccess { year: cfg.year }),
};

fn sniff(lines: &[&[u8]]) -> u8 {
    let mut total = 0;
    let mut plain = 0;
    let mut prefixed = 0;
    for l in lines.iter().take(50) {
        if l.trim_ascii().is_empty() || l.starts_with(b"#") {
            continue;
        }
        total += 1;
        if let Some(p) = locate(l) {
            if p.prefix_tokens <= 4 {
                plain += 1;
            } else {
                prefixed += 1;
            }
        }
    }
    if total == 0 {
        return 0;
    }
    if plain * 2 >= total {
        85
    } else if (plain + prefixed) * 2 >= total {
        60
    } else if plain + prefixed > 0 {
        30
    } else {
        0
    }
}

/// The access-log decoder: stateless apart from the year used for
/// syslog-borne Apache error lines met in the same file.
#[derive(Clone)]
struct WebAccess {
    year: Option<i16>,
}

impl Decoder for WebAccess {
    fn name(&self) -> &'static str {
        "web-access"
    }

    fn decode(&mut self, record: &[u8]) -> Result<Decoded, DecodeError> {
        let record = record.strip_suffix(b"\r").unwrap_or(record);
        if record.trim_ascii().is_empty() {
            return Ok(Decoded::Skip);
        }
        if let Some(ev) = parse_access(record) {
            return Ok(Decoded::Event(Box::new(ev)));
        }
        if let Some(ev) = super::web_error::parse_error_line(record, self.year) {
            return Ok(Decoded::Event(Box::new(ev)));
        }
        Err(DecodeError::new(
            "not an access log line: expected `client ident user [dd/Mon/yyyy:HH:MM:SS +zzzz] \"request\" status size`",
        ))
    }

    fn fork(&self) -> Box<dyn Decoder> {
        Box::new(self.clone())
    }
}

/// Where the time bracket is, and how many tokens precede it.
struct Located {
    /// Index of `[`.
    open: usize,
    /// Index just after `]`.
    close: usize,
    prefix_tokens: usize,
}

/// Find `[dd/Mon/yyyy:HH:MM:SS ±zzzz]` followed by ` "`.
fn locate(b: &[u8]) -> Option<Located> {
    for open in memchr::memchr_iter(b'[', b) {
        let rest = &b[open + 1..];
        if rest.len() < 26 || rest.get(2) != Some(&b'/') || rest.get(6) != Some(&b'/') {
            continue;
        }
        let close_rel = memchr::memchr(b']', rest)?;
        let close = open + 1 + close_rel + 1;
        let after = b.get(close..).unwrap_or(&[]);
        if !after.starts_with(b" \"") {
            continue;
        }
        let mut toks = b[..open].split(|c| *c == b' ').filter(|t| !t.is_empty());
        let first = toks.next()?;
        let prefix_tokens = 1 + toks.count();
        // Short forms (`client - [...]`) only when the client is an address.
        if prefix_tokens < 3 && parse_ip(&String::from_utf8_lossy(first)).is_none() {
            return None;
        }
        return Some(Located {
            open,
            close,
            prefix_tokens,
        });
    }
    None
}

/// `10/Oct/2000:13:55:36 -0700` → instant.
pub(crate) fn parse_clf_time(t: &[u8]) -> Option<jiff::Timestamp> {
    let d = digits(t, 0, 2)?;
    let mo = month_from_abbr(t.get(3..6)?)?;
    let y = digits(t, 7, 4)?;
    if t.get(11) != Some(&b':') {
        return None;
    }
    let h = digits(t, 12, 2)?;
    let mi = digits(t, 15, 2)?;
    let s = digits(t, 18, 2)?;
    let mut i = 20;
    let mut nanos = 0;
    if t.get(i) == Some(&b'.') {
        let (n, used) = super::text::fraction(&t[i + 1..]);
        nanos = n;
        i += 1 + used;
    }
    let off = match t.get(i) {
        Some(b' ') => {
            let (o, _) = super::text::utc_offset(&t[i + 1..])?;
            o
        }
        None => 0,
        _ => return None,
    };
    civil_to_timestamp(i64::from(y), mo, d, h, mi, s, nanos, off)
}

/// Read a double-quoted field starting at `b[i] == '"'`, honouring `\"`
/// escapes. Returns (content, index after the closing quote).
fn quoted(b: &[u8], i: usize) -> Option<(&[u8], usize)> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return Some((&b[i + 1..j], j + 1)),
            _ => j += 1,
        }
    }
    None
}

/// Paths where a 401/403 answer means a refused login (not `/admin`: a
/// 403 there is usually an address restriction, and not `author`, which
/// WordPress user enumeration probes).
fn login_like(path: &str) -> bool {
    let p = path.split('?').next().unwrap_or("").to_ascii_lowercase();
    [
        "login",
        "logon",
        "signin",
        "sign-in",
        "sign_in",
        "/auth",
        "oauth",
        "authenticat",
        "session",
        "xmlrpc",
        "password",
        "passwd",
    ]
    .iter()
    .any(|k| p.contains(k))
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Decode one access-log line, or `None` if it does not have the shape.
pub(crate) fn parse_access(b: &[u8]) -> Option<Event> {
    let loc = locate(b)?;
    let time = parse_clf_time(&b[loc.open + 1..loc.close - 1]);
    let prefix: Vec<&[u8]> = b[..loc.open]
        .split(|c| *c == b' ')
        .filter(|t| !t.is_empty())
        .collect();
    let n = prefix.len();
    let (client, user): (&[u8], &[u8]) = match n {
        0 => return None,
        1 => (prefix[0], b"-"),
        2 => (prefix[0], prefix[1]),
        _ => (prefix[n - 3], prefix[n - 1]),
    };
    let mut ev = Event::new(EventKind::Http);
    ev.time = time;
    ev.service = Some("http".into());
    let client_s = String::from_utf8_lossy(client);
    match parse_ip(&client_s) {
        Some(ip) => ev.src_ip = Some(ip),
        None => scan_into(&mut ev.other_ips, &client_s),
    }
    if user != b"-" && !user.is_empty() {
        ev.user = Some(lossy(user));
    }
    // A virtual host before the client (vhost_combined), unless the
    // preceding token ends a syslog/journal prefix (`nginx[123]:`).
    let mut vhost: Option<String> = None;
    if n >= 4 {
        let t = prefix[n - 4];
        if n == 4 || !t.ends_with(b":") {
            vhost = Some(lossy(t));
        }
        if n >= 5 {
            // `Mon DD HH:MM:SS host prog:` or `ISO-time host prog:`
            if month_from_abbr(prefix[0]).is_some() && n >= 6 {
                ev.host = Some(lossy(prefix[3]));
            } else if prefix[0].len() >= 19 && prefix[0][4] == b'-' {
                ev.host = Some(lossy(prefix[1]));
            }
        }
    }
    // Request, status, size.
    let (req, mut i) = quoted(b, loc.close + 1)?;
    let rest = b.get(i..).unwrap_or(&[]);
    let mut fields = rest.split(|c| *c == b' ').filter(|t| !t.is_empty());
    let status: Option<u16> = fields
        .next()
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse().ok());
    let size_tok = fields.next();
    ev.bytes_in = size_tok
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse().ok());
    // Skip past status and size to the quoted extras.
    let mut skipped = 0;
    while i < b.len() && skipped < 2 {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if b.get(i) == Some(&b'"') {
            break;
        }
        while i < b.len() && b[i] != b' ' {
            i += 1;
        }
        skipped += 1;
    }
    let req_s = String::from_utf8_lossy(req);
    let mut parts = req_s.split(' ').filter(|p| !p.is_empty());
    let method = parts.next().unwrap_or("");
    let path = parts.next();
    if let Some(path) = path {
        scan_into(&mut ev.other_ips, path);
        let (url, host_in_url) = build_url(path, vhost.as_deref(), method);
        ev.url = Some(url);
        if let Some(h) = host_in_url.or_else(|| vhost.as_deref().map(host_without_port)) {
            set_host(&mut ev, h);
        }
    } else if let Some(v) = vhost.as_deref() {
        set_host(&mut ev, host_without_port(v));
    }
    // Referrer, user agent, extras (X-Forwarded-For, upstream…).
    let mut k = 0;
    while i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let (field, next) = match quoted(b, i) {
            Some(q) => q,
            None => {
                let end = memchr::memchr(b' ', &b[i..]).map_or(b.len(), |e| i + e);
                (&b[i..end], end)
            }
        };
        // k == 1 is the user agent.
        if k != 1 {
            scan_into(&mut ev.other_ips, &String::from_utf8_lossy(field));
        }
        k += 1;
        i = next;
    }
    // Authentication outcome.
    let path_l = path.unwrap_or("");
    let has_user = ev.user.is_some();
    let wp = {
        let p = path_l.split('?').next().unwrap_or("").to_ascii_lowercase();
        method.eq_ignore_ascii_case("POST")
            && (p.ends_with("/wp-login.php") || p.ends_with("/xmlrpc.php"))
    };
    ev.auth = match status {
        Some(401) if has_user || login_like(path_l) => Some(AuthOutcome::Failure),
        Some(403) if login_like(path_l) => Some(AuthOutcome::Failure),
        Some(200) if wp => Some(AuthOutcome::Failure),
        Some(302) if wp && path_l.to_ascii_lowercase().contains("wp-login.php") => {
            Some(AuthOutcome::Success)
        }
        Some(200..=399) if has_user => Some(AuthOutcome::Success),
        _ => None,
    };
    tidy(&mut ev);
    Some(ev)
}

/// The host part of a request target or vhost goes to `domain` (or to
/// `dst_ip` when it is an address).
fn set_host(ev: &mut Event, h: &str) {
    if h.is_empty() || h == "-" || h == "_" {
        return;
    }
    match parse_ip(h) {
        Some(ip) => ev.dst_ip = Some(ip),
        None => {
            if h.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
            {
                ev.domain = Some(h.trim_end_matches('.').to_ascii_lowercase());
            }
        }
    }
}

/// URL of a request: absolute targets kept, paths prefixed by the vhost.
/// Returns the URL and the host named in the target itself, if any.
fn build_url<'p>(path: &'p str, vhost: Option<&str>, method: &str) -> (String, Option<&'p str>) {
    // `get`, not indexing: the cut may fall inside a multi-byte character.
    let lower_starts = |p: &str| {
        path.get(..p.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(p))
    };
    if lower_starts("http://") || lower_starts("https://") {
        let after = &path[path.find("//").map_or(0, |i| i + 2)..];
        let host = after.split(['/', '?']).next().unwrap_or("");
        let host = host.rsplit('@').next().unwrap_or(host);
        return (path.to_owned(), Some(host_without_port(host)));
    }
    if method.eq_ignore_ascii_case("CONNECT") {
        return (path.to_owned(), Some(host_without_port(path)));
    }
    match vhost {
        Some(v) if !v.is_empty() && v != "-" => {
            let (host, port) = match v.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') && p.bytes().all(|c| c.is_ascii_digit()) => {
                    (h, Some(p))
                }
                _ => (v, None),
            };
            let host = match parse_ip(host) {
                Some(IpAddr::V6(v6)) => format!("[{v6}]"),
                _ => host.to_owned(),
            };
            let base = match port {
                None | Some("80") => format!("http://{host}"),
                Some("443") => format!("https://{host}"),
                Some(p) => format!("http://{host}:{p}"),
            };
            let sep = if path.starts_with('/') { "" } else { "/" };
            (format!("{base}{sep}{path}"), None)
        }
        _ => (path.to_owned(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clf_time() {
        let t = parse_clf_time(b"10/Oct/2000:13:55:36 -0700").unwrap();
        assert_eq!(t.to_string(), "2000-10-10T20:55:36Z");
        assert!(parse_clf_time(b"10/Foo/2000:13:55:36 -0700").is_none());
        assert!(parse_clf_time(b"32/Oct/2000:13:55:36 -0700").is_none());
    }

    #[test]
    fn combined_line() {
        let ev = parse_access(b"83.149.9.216 - - [17/May/2015:10:05:03 +0000] \"GET /a.png HTTP/1.1\" 200 203023 \"http://semicomplete.com/x/\" \"Mozilla/5.0 (rv:1.9.2.15)\"").unwrap();
        assert_eq!(ev.src_ip, Some("83.149.9.216".parse().unwrap()));
        assert_eq!(ev.bytes_in, Some(203023));
        assert_eq!(ev.url.as_deref(), Some("/a.png"));
        assert!(ev.other_ips.is_empty());
        assert_eq!(ev.time.unwrap().to_string(), "2015-05-17T10:05:03Z");
    }

    #[test]
    fn vhost_and_xff() {
        let ev = parse_access(b"www.example.com:443 10.0.0.1 - bob [17/May/2015:10:05:03 +0200] \"POST /login HTTP/1.1\" 401 12 \"-\" \"curl\" \"203.0.113.9, 198.51.100.2\"").unwrap();
        assert_eq!(ev.url.as_deref(), Some("https://www.example.com/login"));
        assert_eq!(ev.domain.as_deref(), Some("www.example.com"));
        assert_eq!(ev.user.as_deref(), Some("bob"));
        assert_eq!(ev.auth, Some(AuthOutcome::Failure));
        assert_eq!(ev.other_ips.len(), 2);
    }
}
