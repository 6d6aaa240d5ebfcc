//! Domain names from packets: DNS queries and answers, the TLS ClientHello
//! server name and the HTTP `Host` header, so that domain indicators match
//! on captures and not only on logs.
//!
//! Each parser looks at one packet's payload (no stream reassembly): a DNS
//! message in one UDP datagram or one TCP segment, a ClientHello or HTTP
//! request head that starts a segment. Payloads that do not parse are not
//! errors (most packets carry no such message); they give `None`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What a DNS message says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsMessage {
    pub id: u16,
    pub response: bool,
    pub rcode: u8,
    /// Question names, lower-case, without the trailing dot.
    pub questions: Vec<(String, u16)>,
    /// Addresses in A/AAAA answers.
    pub addresses: Vec<IpAddr>,
    /// Names in CNAME/NS/PTR/MX answers.
    pub names: Vec<String>,
}

/// Query type names for evidence lines.
pub fn qtype_name(t: u16) -> String {
    match t {
        1 => "A".into(),
        2 => "NS".into(),
        5 => "CNAME".into(),
        6 => "SOA".into(),
        12 => "PTR".into(),
        15 => "MX".into(),
        16 => "TXT".into(),
        28 => "AAAA".into(),
        33 => "SRV".into(),
        65 => "HTTPS".into(),
        255 => "ANY".into(),
        n => format!("TYPE{n}"),
    }
}

/// Parse a DNS message (RFC 1035). `None` when it is not one.
pub fn parse_dns(m: &[u8]) -> Option<DnsMessage> {
    if m.len() < 12 {
        return None;
    }
    let be16 = |i: usize| -> Option<u16> { Some(u16::from_be_bytes([*m.get(i)?, *m.get(i + 1)?])) };
    let id = be16(0)?;
    let flags = be16(2)?;
    let opcode = (flags >> 11) & 0xf;
    if opcode > 5 {
        return None;
    }
    let qd = be16(4)? as usize;
    let an = be16(6)? as usize;
    if qd == 0 || qd > 16 || an > 512 {
        return None;
    }
    let mut msg = DnsMessage {
        id,
        response: flags & 0x8000 != 0,
        rcode: (flags & 0xf) as u8,
        ..Default::default()
    };
    let mut pos = 12;
    for _ in 0..qd {
        let (name, next) = read_name(m, pos)?;
        let qtype = u16::from_be_bytes([*m.get(next)?, *m.get(next + 1)?]);
        m.get(next + 3)?;
        pos = next + 4;
        msg.questions.push((name, qtype));
    }
    for _ in 0..an {
        let Some((_, next)) = read_name(m, pos) else {
            break;
        };
        let Some(hdr) = m.get(next..next + 10) else {
            break;
        };
        let rtype = u16::from_be_bytes([hdr[0], hdr[1]]);
        let rdlen = u16::from_be_bytes([hdr[8], hdr[9]]) as usize;
        let start = next + 10;
        let Some(rdata) = m.get(start..start + rdlen) else {
            break;
        };
        match (rtype, rdlen) {
            (1, 4) => msg.addresses.push(IpAddr::V4(Ipv4Addr::new(
                rdata[0], rdata[1], rdata[2], rdata[3],
            ))),
            (28, 16) => {
                let mut b = [0u8; 16];
                b.copy_from_slice(rdata);
                msg.addresses.push(IpAddr::V6(Ipv6Addr::from(b)));
            }
            (2 | 5 | 12, _) => {
                if let Some((n, _)) = read_name(m, start) {
                    msg.names.push(n);
                }
            }
            (15, _) if rdlen > 2 => {
                if let Some((n, _)) = read_name(m, start + 2) {
                    msg.names.push(n);
                }
            }
            _ => {}
        }
        pos = start + rdlen;
    }
    Some(msg)
}

/// Read a possibly compressed name at `pos`; returns it and the position
/// after it (after the first pointer, if any).
fn read_name(m: &[u8], mut pos: usize) -> Option<(String, usize)> {
    let mut name = String::new();
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *m.get(pos)? as usize;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    pos += 1;
                    break;
                }
                let label = m.get(pos + 1..pos + 1 + len)?;
                if !name.is_empty() {
                    name.push('.');
                }
                for &b in label {
                    name.push(if b.is_ascii_graphic() {
                        b.to_ascii_lowercase() as char
                    } else {
                        '?'
                    });
                }
                if name.len() > 255 {
                    return None;
                }
                pos += 1 + len;
            }
            0xc0 => {
                let target = ((len & 0x3f) << 8) | *m.get(pos + 1)? as usize;
                if end.is_none() {
                    end = Some(pos + 2);
                }
                jumps += 1;
                if jumps > 32 || target >= m.len() {
                    return None;
                }
                pos = target;
            }
            _ => return None,
        }
    }
    Some((name, end.unwrap_or(pos)))
}

/// The server name of a TLS ClientHello at the start of `p`, if it is one.
pub fn tls_sni(p: &[u8]) -> Option<String> {
    // Record: type 22 (handshake), version 3.x, length.
    if p.len() < 9 || p[0] != 0x16 || p[1] != 0x03 {
        return None;
    }
    // Handshake: type 1 (ClientHello).
    if p[5] != 0x01 {
        return None;
    }
    let h = &p[9..];
    // version(2) random(32)
    let mut i = 34;
    let sid = *h.get(i)? as usize;
    i += 1 + sid;
    let cs = u16::from_be_bytes([*h.get(i)?, *h.get(i + 1)?]) as usize;
    i += 2 + cs;
    let cm = *h.get(i)? as usize;
    i += 1 + cm;
    let ext_len = u16::from_be_bytes([*h.get(i)?, *h.get(i + 1)?]) as usize;
    i += 2;
    let exts = h.get(i..(i + ext_len).min(h.len()))?;
    let mut j = 0;
    while j + 4 <= exts.len() {
        let t = u16::from_be_bytes([exts[j], exts[j + 1]]);
        let l = u16::from_be_bytes([exts[j + 2], exts[j + 3]]) as usize;
        let body = exts.get(j + 4..j + 4 + l)?;
        if t == 0 {
            // server_name_list: len(2), then type(1) len(2) name.
            let mut k = 2;
            while k + 3 <= body.len() {
                let nt = body[k];
                let nl = u16::from_be_bytes([body[k + 1], body[k + 2]]) as usize;
                let name = body.get(k + 3..k + 3 + nl)?;
                if nt == 0 {
                    let s = std::str::from_utf8(name).ok()?;
                    if s.is_empty() {
                        return None;
                    }
                    return Some(s.trim_end_matches('.').to_ascii_lowercase());
                }
                k += 3 + nl;
            }
            return None;
        }
        j += 4 + l;
    }
    None
}

/// An HTTP request head at the start of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    pub target: String,
    pub host: Option<String>,
}

const METHODS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"CONNECT ",
    b"PATCH ",
    b"TRACE ",
];

/// The request line and `Host` header of an HTTP/1.x request, if `p`
/// starts with one.
pub fn http_request(p: &[u8]) -> Option<HttpRequest> {
    let m = METHODS.iter().find(|m| p.starts_with(m))?;
    let head = &p[..p.len().min(8192)];
    let line_end = head.iter().position(|b| *b == b'\n')?;
    let line = head[..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&head[..line_end]);
    let rest = &line[m.len()..];
    let sp = rest.iter().rposition(|b| *b == b' ')?;
    if !rest[sp + 1..].starts_with(b"HTTP/") {
        return None;
    }
    let target = String::from_utf8_lossy(&rest[..sp]).into_owned();
    let mut host = None;
    for hl in head[line_end + 1..].split(|b| *b == b'\n') {
        let hl = hl.strip_suffix(b"\r").unwrap_or(hl);
        if hl.is_empty() {
            break;
        }
        if hl.len() > 5 && hl[..5].eq_ignore_ascii_case(b"host:") {
            let v = String::from_utf8_lossy(&hl[5..])
                .trim()
                .to_ascii_lowercase();
            // Strip a port; keep a bracketed IPv6 literal's address.
            let v = if let Some(r) = v.strip_prefix('[') {
                r.split(']').next().unwrap_or("").to_string()
            } else {
                match v.split_once(':') {
                    Some((h, p)) if !p.contains(':') => h.to_string(),
                    _ => v,
                }
            };
            host = Some(v);
            break;
        }
    }
    Some(HttpRequest {
        method: String::from_utf8_lossy(&m[..m.len() - 1]).into_owned(),
        target,
        host,
    })
}

/// The outcome an FTP server reply states about a login: `530` (not
/// logged in) is a failure, `230` (user logged in) a success. Only the
/// start of a reply line is looked at; other replies give `None`.
pub fn ftp_login_reply(p: &[u8]) -> Option<orbwatch_event::AuthOutcome> {
    let code = p.get(..4)?;
    match code {
        b"530 " | b"530-" => Some(orbwatch_event::AuthOutcome::Failure),
        b"230 " | b"230-" => Some(orbwatch_event::AuthOutcome::Success),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_host_without_port() {
        let r = http_request(b"GET /a HTTP/1.1\r\nHost: Example.org:8080\r\n\r\n").unwrap();
        assert_eq!(r.host.as_deref(), Some("example.org"));
        assert_eq!(r.target, "/a");
    }

    #[test]
    fn ftp_login_replies() {
        use orbwatch_event::AuthOutcome;
        assert_eq!(
            ftp_login_reply(b"530 Login incorrect.\r\n"),
            Some(AuthOutcome::Failure)
        );
        assert_eq!(
            ftp_login_reply(b"230-Welcome\r\n230 Login successful.\r\n"),
            Some(AuthOutcome::Success)
        );
        assert_eq!(ftp_login_reply(b"331 Password required\r\n"), None);
        assert_eq!(ftp_login_reply(b"53"), None);
    }

    #[test]
    fn dns_name_loop_is_rejected() {
        // Header with one question whose name points at itself.
        let m = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1];
        assert!(parse_dns(&m).is_none());
    }
}
