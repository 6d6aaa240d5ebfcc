//! Small parsers for the pieces every log message is made of: addresses
//! (lenient: `192.030.0.6`, `::ffff:1.2.3.4`, `[2001:db8::1]:22`,
//! `ipv4:1.2.3.4:445`), host names, ports and `key=value` lists with quoted
//! values. Shared by the syslog message parsers and the CEF/LEEF decoders.

use std::net::{IpAddr, Ipv4Addr};

use crate::model::{Action, Event, Proto};

/// Byte offset of the first space (`memchr`: cheaper than `str::find` on
/// the short strings of a log line).
#[inline]
pub(crate) fn space(s: &str) -> Option<usize> {
    memchr::memchr(b' ', s.as_bytes())
}

/// `s.rsplit_once(' ')` with `memrchr`.
#[inline]
pub(crate) fn rsplit_space(s: &str) -> Option<(&str, &str)> {
    let i = memchr::memrchr(b' ', s.as_bytes())?;
    Some((&s[..i], &s[i + 1..]))
}

/// Parse an IPv4 octet-by-octet, accepting leading zeros as decimal
/// (`192.030.0.6` is 192.30.0.6: that is how sshd and fail2ban read it).
#[inline]
pub(crate) fn parse_v4(s: &[u8]) -> Option<Ipv4Addr> {
    if s.len() < 7 || s.len() > 15 {
        return None;
    }
    let mut oct = [0u8; 4];
    let mut k = 0;
    let mut v: u32 = 0;
    let mut nd = 0;
    for &c in s {
        if c.is_ascii_digit() {
            v = v * 10 + (c - b'0') as u32;
            nd += 1;
            if nd > 3 || v > 255 {
                return None;
            }
        } else if c == b'.' {
            if nd == 0 || k >= 3 {
                return None;
            }
            oct[k] = v as u8;
            k += 1;
            v = 0;
            nd = 0;
        } else {
            return None;
        }
    }
    if nd == 0 || k != 3 {
        return None;
    }
    oct[3] = v as u8;
    Some(Ipv4Addr::from(oct))
}

/// Parse an address: IPv4 (lenient), IPv6 (optionally in brackets, with a
/// `%zone`), IPv4-mapped IPv6 folded to IPv4.
#[inline]
pub(crate) fn parse_ip(s: &str) -> Option<IpAddr> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 64 {
        return None;
    }
    if b[0].is_ascii_digit()
        && let Some(v4) = parse_v4(b)
    {
        return Some(IpAddr::V4(v4));
    }
    if !b.contains(&b':') {
        return None;
    }
    let mut t = s;
    if let Some(inner) = t.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
        t = inner;
    }
    if let Some(p) = t.find('%') {
        t = &t[..p];
    }
    // `::ffff:192.030.0.6`: the lenient IPv4 form inside a mapped address.
    if let Some(tail) = t
        .strip_prefix("::ffff:")
        .or_else(|| t.strip_prefix("::FFFF:"))
        && let Some(v4) = parse_v4(tail.as_bytes())
    {
        return Some(IpAddr::V4(v4));
    }
    t.parse::<IpAddr>().ok().map(|a| a.to_canonical())
}

/// A remote peer as logged: an address, or a DNS name (sshd with
/// `UseDNS yes`, pam `rhost=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Peer<'a> {
    Ip(IpAddr),
    Name(&'a str),
}

/// An address or a plausible host name (letters, digits, `.-_`, with at
/// least one letter or dot).
pub(crate) fn parse_peer(s: &str) -> Option<Peer<'_>> {
    if let Some(ip) = parse_ip(s) {
        return Some(Peer::Ip(ip));
    }
    if is_hostname(s) {
        Some(Peer::Name(s))
    } else {
        None
    }
}

/// Letters, digits, `.-_`, 1-253 bytes, not all digits/dots.
pub(crate) fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-' || c == b'_')
        && s.bytes().any(|c| c.is_ascii_alphabetic())
}

/// Store a peer as the event's source: an address into `src_ip`, a name
/// into `domain`.
pub(crate) fn set_src_peer(ev: &mut Event, p: Peer<'_>) {
    match p {
        Peer::Ip(ip) => ev.src_ip = Some(ip),
        Peer::Name(n) => ev.domain = Some(n.to_string()),
    }
}

/// `1.2.3.4:5678`, `[2001:db8::1]:22`, `::ffff:1.2.3.4:60495`, `1.2.3.4`,
/// `2001:db8::1` (no port), `1.2.3.4/5678` with `sep = '/'`.
pub(crate) fn split_ip_port(s: &str, sep: char) -> Option<(IpAddr, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let close = rest.find(']')?;
        let ip = parse_ip(&rest[..close])?;
        let after = &rest[close + 1..];
        if after.is_empty() {
            return Some((ip, None));
        }
        let port = after.strip_prefix(sep)?.parse().ok()?;
        return Some((ip, Some(port)));
    }
    if let Some((h, p)) = s.rsplit_once(sep)
        && !p.is_empty()
        && p.len() <= 5
        && p.bytes().all(|c| c.is_ascii_digit())
        && let Some(ip) = parse_ip(h)
    {
        return Some((ip, p.parse().ok()));
    }
    parse_ip(s).map(|ip| (ip, None))
}

/// Parse a decimal port.
#[inline]
pub(crate) fn parse_port(s: &str) -> Option<u16> {
    let s = s.trim();
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Well-known service names some devices write instead of a port.
pub(crate) fn service_port(name: &str) -> Option<u16> {
    Some(match name.to_ascii_lowercase().as_str() {
        "ssh" => 22,
        "telnet" => 23,
        "ftp" => 21,
        "smtp" => 25,
        "domain" | "dns" => 53,
        "http" | "www" => 80,
        "https" => 443,
        "snmp" => 161,
        "rdp" => 3389,
        _ => return None,
    })
}

/// Protocol by name, number, or `tcp/443`-style (`6/443`).
pub(crate) fn parse_proto(s: &str) -> Option<Proto> {
    let s = s.trim().trim_matches('"');
    let head = s.split(['/', '(', ' ']).next().unwrap_or(s);
    Proto::parse(head).or_else(|| match head.to_ascii_lowercase().as_str() {
        "ipv6-icmp" | "icmp6" | "icmpv6" => Some(Proto::Icmp6),
        "gre" => Some(Proto::Other(47)),
        "esp" => Some(Proto::Other(50)),
        "ah" => Some(Proto::Other(51)),
        "sctp" => Some(Proto::Other(132)),
        "igmp" => Some(Proto::Other(2)),
        _ => None,
    })
}

/// A firewall's verdict word, any vendor (`accept`, `pass`, `permit`,
/// `deny`, `block`, `drop`, `reject`, `reset-both`, `ssl-login-fail`…).
pub(crate) fn parse_action(s: &str) -> Option<Action> {
    let l = s.trim().trim_matches('"').to_ascii_lowercase();
    let l = l.as_str();
    if l.is_empty() {
        return None;
    }
    if l.contains("drop") || l.contains("discard") {
        return Some(Action::Drop);
    }
    if l.contains("reject") || l.starts_with("reset") || l.ends_with("-rst") {
        return Some(Action::Reject);
    }
    if l.contains("deny")
        || l.contains("denied")
        || l.contains("block")
        || l.contains("prevent")
        || l == "sinkhole"
        || l == "quarantine"
    {
        return Some(Action::Deny);
    }
    if l == "alert" || l == "detect" || l == "monitor" || l == "monitored" {
        return Some(Action::Alert);
    }
    if l.contains("accept")
        || l.contains("allow")
        || l.contains("permit")
        || l == "pass"
        || l == "close"
        || l == "start"
        || l == "end"
        || l == "encrypt"
        || l == "decrypt"
        || l == "timeout"
    {
        return Some(Action::Allow);
    }
    None
}

/// TCP flag letters or words to a normalized conn_state: `S` / `SYN` alone
/// is `SYN`; otherwise the flags by name, space separated.
pub(crate) fn tcp_flags_from_letters(f: &str) -> Option<String> {
    if f.is_empty() || f.len() > 12 {
        return None;
    }
    let mut out = String::new();
    for c in f.bytes() {
        let name = match c {
            b'S' => "SYN",
            b'A' => "ACK",
            b'F' => "FIN",
            b'R' => "RST",
            b'P' => "PSH",
            b'U' => "URG",
            b'E' => "ECE",
            b'W' | b'C' => "CWR",
            _ => return None,
        };
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(name);
    }
    Some(out)
}

/// Is `b` at a token start (start of string, or after a separator)?
#[inline]
fn at_boundary(s: &[u8], i: usize) -> bool {
    i == 0 || matches!(s[i - 1], b' ' | b'\t' | b',' | b';' | b'|' | b'[' | b'{')
}

/// Iterate `key=value` pairs separated by whitespace; values may be in
/// double quotes (with `\"` escapes). Tokens without `=` are skipped.
/// Calls `f(key, value)`; value has quotes removed (escapes kept).
pub(crate) fn for_each_kv<'a>(s: &'a str, mut f: impl FnMut(&'a str, &'a str)) {
    let b = s.as_bytes();
    let n = b.len();
    let mut i = 0;
    while i < n {
        while i < n && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        let ks = i;
        while i < n && b[i] != b'=' && b[i] != b' ' && b[i] != b'\t' {
            i += 1;
        }
        if i >= n {
            break;
        }
        if b[i] != b'=' || i == ks {
            // Not a pair: skip the token.
            while i < n && b[i] != b' ' && b[i] != b'\t' {
                i += 1;
            }
            continue;
        }
        let key = &s[ks..i];
        i += 1; // '='
        if i < n && b[i] == b'"' {
            let (v, next) = quoted_value(s, i);
            f(key, v);
            i = next;
        } else {
            let vs = i;
            while i < n && b[i] != b' ' && b[i] != b'\t' {
                i += 1;
            }
            f(key, &s[vs..i]);
        }
    }
}

/// The value of `key=` in a whitespace-separated key=value list (first
/// occurrence at a token boundary); quotes removed.
pub(crate) fn kv_get<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let b = s.as_bytes();
    let kb = key.as_bytes();
    let mut from = 0;
    while let Some(p) = memchr::memmem::find(&b[from..], kb) {
        let at = from + p;
        let eq = at + kb.len();
        if eq < b.len() && b[eq] == b'=' && at_boundary(b, at) {
            let vs = eq + 1;
            if vs < b.len() && b[vs] == b'"' {
                return Some(quoted_value(s, vs).0);
            }
            let mut i = vs;
            while i < b.len() && b[i] != b' ' && b[i] != b'\t' {
                i += 1;
            }
            return s.get(vs..i);
        }
        from = at + 1;
    }
    None
}

/// Add every address found in `text` that the event does not hold yet to
/// `other_ips`, so that no address in a record is lost for IOC matching.
pub(crate) fn add_remaining_ips(ev: &mut Event, text: &str) {
    crate::ipscan::for_each_ip(text.as_bytes(), |ip, _, _| {
        let ip = ip.to_canonical();
        if is_placeholder(ip) {
            return;
        }
        if ev.src_ip != Some(ip) && ev.dst_ip != Some(ip) && !ev.other_ips.contains(&ip) {
            ev.other_ips.push(ip);
        }
    });
}

/// `0.0.0.0`, `::` and `255.255.255.255`: placeholders and netmasks, never
/// a peer worth keeping among `other_ips`.
pub(crate) fn is_placeholder(ip: IpAddr) -> bool {
    ip.is_unspecified() || ip == IpAddr::V4(Ipv4Addr::BROADCAST)
}

/// Push an address into `other_ips` unless the event already holds it.
pub(crate) fn push_other(ev: &mut Event, ip: IpAddr) {
    if ev.src_ip != Some(ip) && ev.dst_ip != Some(ip) && !ev.other_ips.contains(&ip) {
        ev.other_ips.push(ip);
    }
}

/// `Some(s.to_string())` unless `s` is empty or a placeholder (`N/A`, `-`,
/// `?`, `(null)`).
pub(crate) fn nonempty(s: &str) -> Option<String> {
    let t = s.trim();
    if t.is_empty()
        || t == "-"
        || t == "?"
        || t.eq_ignore_ascii_case("n/a")
        || t.eq_ignore_ascii_case("(null)")
        || t.eq_ignore_ascii_case("unknown")
    {
        None
    } else {
        Some(t.to_string())
    }
}

/// Case-insensitive ASCII substring test.
pub(crate) fn contains_ci(hay: &str, needle: &str) -> bool {
    let h = hay.as_bytes();
    let n = needle.as_bytes();
    if n.is_empty() {
        return true;
    }
    if h.len() < n.len() {
        return false;
    }
    h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// Case-insensitive ASCII prefix test.
#[inline]
pub(crate) fn starts_with_ci(s: &str, p: &str) -> bool {
    s.len() >= p.len() && s.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
}

/// The value of a double-quoted field whose opening quote is at `start`
/// (backslash escapes skipped, not undone), and the index just past the
/// closing quote. An unterminated value runs to the end of `s`.
pub(crate) fn quoted_value(s: &str, start: usize) -> (&str, usize) {
    let b = s.as_bytes();
    let n = b.len();
    let mut i = start + 1;
    let vs = i;
    while i < n && b[i] != b'"' {
        if b[i] == b'\\' {
            i += 1;
        }
        i += 1;
    }
    let ve = i.min(n);
    (s.get(vs..ve).unwrap_or(""), (i + 1).min(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ips() {
        assert_eq!(parse_ip("192.030.0.6"), Some("192.30.0.6".parse().unwrap()));
        assert_eq!(parse_ip("::ffff:1.2.3.4"), Some("1.2.3.4".parse().unwrap()));
        assert_eq!(
            parse_ip("[2001:db8::1]"),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(parse_ip("fe80::1%eth0"), Some("fe80::1".parse().unwrap()));
        assert_eq!(parse_ip("1.2.3.256"), None);
        assert_eq!(parse_ip("1.2.3"), None);
        assert_eq!(parse_ip("1.2.3.4.5"), None);
        assert_eq!(parse_ip("example.com"), None);
        assert_eq!(
            split_ip_port("::ffff:198.51.100.215:60495", ':'),
            Some(("198.51.100.215".parse().unwrap(), Some(60495)))
        );
        assert_eq!(
            split_ip_port("[2001:db8::1]:22", ':'),
            Some(("2001:db8::1".parse().unwrap(), Some(22)))
        );
        assert_eq!(
            split_ip_port("2001:db8::1", ':'),
            Some(("2001:db8::1".parse().unwrap(), None))
        );
    }

    #[test]
    fn kv() {
        let s = r#"a=1 b="two words" c= d="x\"y" e=5"#;
        let mut got = vec![];
        for_each_kv(s, |k, v| got.push((k, v)));
        assert_eq!(
            got,
            vec![
                ("a", "1"),
                ("b", "two words"),
                ("c", ""),
                ("d", r#"x\"y"#),
                ("e", "5")
            ]
        );
        assert_eq!(kv_get(s, "b"), Some("two words"));
        assert_eq!(kv_get("xsrc=1 src=2", "src"), Some("2"));
    }
}
