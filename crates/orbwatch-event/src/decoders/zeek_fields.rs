//! Field mapping shared by the Zeek TSV and Zeek JSON decoders.
//!
//! Both formats carry the same log records under the same field names
//! (`id.orig_h`, `query`, `server_name`…); only the framing differs. The
//! decoders split a record into `(name, value)` pairs and hand each one to an
//! [`Acc`], which knows what every field means in every log type and builds
//! the [`Event`]. Fields nobody named explicitly are still searched for
//! addresses (by Zeek type in TSV, by value in JSON), so an address in an
//! unusual log type is never missed.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use jiff::Timestamp;

use crate::ipscan;
use crate::model::{AuthOutcome, Event, EventKind, Proto};

/// The Zeek log type, from `#path` / `_path` or inferred from the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogKind {
    Conn,
    Dns,
    Http,
    Ssl,
    X509,
    Files,
    Ssh,
    Ftp,
    Kerberos,
    Rfb,
    Notice,
    Intel,
    Weird,
    Other,
}

impl LogKind {
    /// Map a `#path` / `_path` value. Rotated or custom paths keep their
    /// prefix (`conn_red`, `dns-internal`), so match on the leading word.
    pub(crate) fn from_path(path: &str) -> LogKind {
        let p = path.trim();
        let word = p.split(['_', '-', '.']).next().unwrap_or(p);
        match word.to_ascii_lowercase().as_str() {
            "conn" => LogKind::Conn,
            "dns" => LogKind::Dns,
            "http" => LogKind::Http,
            "ssl" | "tls" => LogKind::Ssl,
            "x509" => LogKind::X509,
            "files" => LogKind::Files,
            "ssh" => LogKind::Ssh,
            "ftp" => LogKind::Ftp,
            "kerberos" => LogKind::Kerberos,
            "rfb" => LogKind::Rfb,
            "notice" => LogKind::Notice,
            "intel" => LogKind::Intel,
            "weird" => LogKind::Weird,
            _ => LogKind::Other,
        }
    }

    /// The event kind records of this log become.
    pub(crate) fn event_kind(self) -> EventKind {
        match self {
            LogKind::Conn => EventKind::Connection,
            LogKind::Dns => EventKind::Dns,
            LogKind::Http => EventKind::Http,
            LogKind::Ssl | LogKind::X509 => EventKind::Tls,
            LogKind::Files => EventKind::File,
            LogKind::Ssh | LogKind::Ftp | LogKind::Kerberos | LogKind::Rfb => EventKind::Auth,
            LogKind::Notice | LogKind::Intel => EventKind::Alert,
            LogKind::Weird | LogKind::Other => EventKind::Other,
        }
    }

    fn service(self) -> Option<&'static str> {
        match self {
            LogKind::Http => Some("http"),
            LogKind::Ssl => Some("tls"),
            LogKind::Ssh => Some("ssh"),
            LogKind::Ftp => Some("ftp"),
            LogKind::Kerberos => Some("kerberos"),
            LogKind::Rfb => Some("vnc"),
            LogKind::Dns => Some("dns"),
            _ => None,
        }
    }

    /// Infer the log type of a JSON record without `_path` from its keys.
    pub(crate) fn infer<'k>(keys: impl Iterator<Item = &'k str> + Clone) -> LogKind {
        let has = |k: &str| keys.clone().any(|x| x == k);
        if has("conn_state") || (has("duration") && has("orig_bytes")) || has("history") {
            LogKind::Conn
        } else if has("query") && (has("qtype") || has("qtype_name") || has("trans_id")) {
            LogKind::Dns
        } else if has("method") && (has("uri") || has("host")) {
            LogKind::Http
        } else if has("certificate.subject") || has("san.dns") || has("certificate.serial") {
            LogKind::X509
        } else if has("server_name") || has("cipher") && has("version") && has("established") {
            LogKind::Ssl
        } else if has("fuid") && (has("mime_type") || has("tx_hosts") || has("md5")) {
            LogKind::Files
        } else if has("auth_success") || has("auth_attempts") {
            LogKind::Ssh
        } else if has("request_type") && has("client") {
            LogKind::Kerberos
        } else if has("reply_code") && has("command") {
            LogKind::Ftp
        } else if has("authentication_method") || has("client_major_version") {
            LogKind::Rfb
        } else if has("note") && has("msg") {
            LogKind::Notice
        } else if has("seen.indicator") {
            LogKind::Intel
        } else if has("name") && has("addl") || has("notice") && has("peer") {
            LogKind::Weird
        } else {
            LogKind::Other
        }
    }
}

/// What a field means. Resolved once per header (TSV) or per key (JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Ts,
    OrigH,
    OrigP,
    RespH,
    RespP,
    Proto,
    OrigBytes,
    RespBytes,
    OrigPkts,
    RespPkts,
    ConnState,
    Service,
    Query,
    Answers,
    HttpHost,
    Uri,
    Username,
    StatusCode,
    ServerName,
    CertSubject,
    SanDns,
    Hash,
    AuthBool,
    AuthAttempts,
    FtpUser,
    FtpCommand,
    ReplyCode,
    KrbClient,
    KrbSuccess,
    KrbError,
    NoticeSrc,
    NoticeDst,
    NoticeP,
    /// A notice's `note` (`Scan::Port_Scan`): the verdict.
    NoticeNote,
    Indicator,
    IndicatorType,
    /// An address of unknown role (Zeek type `addr`, `set[addr]`…).
    Addr,
    /// Free text that may mention an address: searched with the IP scanner.
    Scan,
    /// A field of unknown type (JSON): an address if it parses as one,
    /// otherwise free text.
    Generic,
    Ignore,
}

impl Role {
    /// Whether a container value (TSV set/vector, JSON array) of this role
    /// is handled element by element.
    pub(crate) fn per_element(self) -> bool {
        matches!(
            self,
            Role::Answers
                | Role::SanDns
                | Role::Addr
                | Role::Scan
                | Role::Generic
                | Role::Hash
                | Role::Service
        )
    }
}

/// The role of field `name` in a log of type `kind`. `ty` is the Zeek type
/// from the TSV `#types` header; JSON has none.
pub(crate) fn role(kind: LogKind, name: &str, ty: Option<&str>) -> Role {
    // Fields with the same meaning in every log.
    match name {
        "ts" => return Role::Ts,
        "id.orig_h" => return Role::OrigH,
        "id.orig_p" => return Role::OrigP,
        "id.resp_h" => return Role::RespH,
        "id.resp_p" => return Role::RespP,
        "md5" | "sha1" | "sha256" | "ja3" | "ja3s" | "cert_hash" | "fingerprint" => {
            return Role::Hash;
        }
        // Identifiers, secrets and agent strings: no addresses worth a scan
        // (user agents carry version numbers that look like addresses).
        "uid"
        | "uids"
        | "fuid"
        | "fuids"
        | "conn_uids"
        | "cert_chain_fuids"
        | "client_cert_chain_fuids"
        | "orig_fuids"
        | "resp_fuids"
        | "parent_fuid"
        | "password"
        | "user_agent"
        | "mac"
        | "_path"
        | "_write_ts"
        | "_system_name"
        | "community_id"
        | "tunnel_parents" => return Role::Ignore,
        _ => {}
    }
    let specific = match (kind, name) {
        (LogKind::Conn | LogKind::Dns | LogKind::Notice, "proto") => Role::Proto,
        (LogKind::Conn, "service") => Role::Service,
        (LogKind::Conn, "orig_bytes") => Role::OrigBytes,
        (LogKind::Conn, "resp_bytes") => Role::RespBytes,
        (LogKind::Conn, "orig_pkts") => Role::OrigPkts,
        (LogKind::Conn, "resp_pkts") => Role::RespPkts,
        (LogKind::Conn, "conn_state") => Role::ConnState,
        (LogKind::Dns, "query") => Role::Query,
        (LogKind::Dns, "answers") => Role::Answers,
        (LogKind::Http, "host") => Role::HttpHost,
        (LogKind::Http, "uri") => Role::Uri,
        (LogKind::Http, "username") => Role::Username,
        (LogKind::Http, "status_code") => Role::StatusCode,
        (LogKind::Ssl, "server_name") => Role::ServerName,
        (LogKind::Ssl, "subject") => Role::CertSubject,
        (LogKind::X509, "certificate.subject") => Role::CertSubject,
        (LogKind::X509, "san.dns") => Role::SanDns,
        (LogKind::Ssh | LogKind::Rfb, "auth_success" | "auth") => Role::AuthBool,
        (LogKind::Ssh, "auth_attempts") => Role::AuthAttempts,
        (LogKind::Ftp, "user") => Role::FtpUser,
        (LogKind::Ftp, "command") => Role::FtpCommand,
        (LogKind::Ftp, "reply_code") => Role::ReplyCode,
        (LogKind::Kerberos, "client") => Role::KrbClient,
        (LogKind::Kerberos, "success") => Role::KrbSuccess,
        (LogKind::Kerberos, "error_msg") => Role::KrbError,
        // The Kerberos `service` is a principal name, not a network service.
        (LogKind::Kerberos, "service") => Role::Ignore,
        (LogKind::Notice | LogKind::Weird, "src") => Role::NoticeSrc,
        (LogKind::Notice | LogKind::Weird, "dst") => Role::NoticeDst,
        (LogKind::Notice | LogKind::Weird, "p") => Role::NoticeP,
        (LogKind::Notice, "note") => Role::NoticeNote,
        (LogKind::Intel, "seen.indicator") => Role::Indicator,
        (LogKind::Intel, "seen.indicator_type") => Role::IndicatorType,
        _ => Role::Generic,
    };
    if specific != Role::Generic {
        return specific;
    }
    match ty {
        None => Role::Generic,
        Some(t) => {
            let inner = t
                .strip_prefix("set[")
                .or_else(|| t.strip_prefix("vector["))
                .or_else(|| t.strip_prefix("table["))
                .and_then(|r| r.strip_suffix(']'))
                .unwrap_or(t);
            match inner {
                "addr" => Role::Addr,
                "string" | "subnet" | "pattern" => Role::Scan,
                // Numbers, times, ports, bools, enums: no addresses.
                _ => Role::Ignore,
            }
        }
    }
}

/// A field value, borrowed from the record.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Val<'a> {
    Str(&'a str),
    UInt(u64),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl<'a> Val<'a> {
    fn as_u64(self) -> Option<u64> {
        match self {
            Val::UInt(n) => Some(n),
            Val::Int(n) => u64::try_from(n).ok(),
            Val::Float(f) if (0.0..1.8e19).contains(&f) && f.fract() == 0.0 => Some(f as u64),
            Val::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    fn as_port(self) -> Option<u16> {
        self.as_u64().and_then(|n| u16::try_from(n).ok())
    }

    fn as_bool(self) -> Option<bool> {
        match self {
            Val::Bool(b) => Some(b),
            Val::Str("T" | "true" | "True") => Some(true),
            Val::Str("F" | "false" | "False") => Some(false),
            _ => None,
        }
    }

    fn as_str(self) -> Option<&'a str> {
        match self {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    fn as_time(self) -> Option<Timestamp> {
        match self {
            Val::Str(s) => parse_epoch(s).or_else(|| {
                super::text::parse_iso8601_prefix(s.as_bytes())
                    .filter(|(_, n)| *n == s.len())
                    .map(|(t, _)| t)
            }),
            Val::Float(f) => epoch_f64(f),
            Val::UInt(n) => i64::try_from(n)
                .ok()
                .and_then(|s| Timestamp::from_second(s).ok()),
            Val::Int(n) => Timestamp::from_second(n).ok(),
            Val::Bool(_) => None,
        }
    }
}

/// Parse a Zeek epoch time `1379288667.706265` exactly (no float rounding).
pub(crate) fn parse_epoch(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    let (neg, body) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    if int.is_empty() || int.len() > 12 || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = int.parse().ok()?;
    let mut nanos: i64 = 0;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nanos += i64::from(b - b'0') * 10i64.pow(8 - i as u32);
    }
    let total = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
    Timestamp::from_nanosecond(if neg { -total } else { total }).ok()
}

/// An epoch time given as a JSON float, kept to the microsecond (Zeek's
/// precision; the float cannot carry more).
pub(crate) fn epoch_f64(f: f64) -> Option<Timestamp> {
    if !f.is_finite() || f.abs() > 2.0e11 {
        return None;
    }
    let micros = (f * 1e6).round() as i64;
    Timestamp::from_microsecond(micros).ok()
}

/// Parse an address as logs write it: plain, `[v6]`, or with a `%zone`.
pub(crate) fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let first = *s.as_bytes().first()?;
    if !(first.is_ascii_hexdigit() || first == b':' || first == b'[') {
        return None;
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(normalize_ip(ip));
    }
    let s = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    let s = s.split_once('%').map_or(s, |(a, _)| a);
    s.parse::<IpAddr>().ok().map(normalize_ip)
}

/// IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is the IPv4 address.
pub(crate) fn normalize_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

/// The address a reverse-DNS name asks about: `4.3.2.1.in-addr.arpa` is
/// 1.2.3.4; nibble-reversed `….ip6.arpa` names give the IPv6 address.
pub(crate) fn ptr_name_ip(name: &str) -> Option<IpAddr> {
    let name = name.trim_end_matches('.');
    let lower_ends = |suffix: &str| {
        name.len() >= suffix.len()
            && name.as_bytes()[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
    };
    if lower_ends(".in-addr.arpa") {
        let body = &name[..name.len() - ".in-addr.arpa".len()];
        let mut octets = [0u8; 4];
        let mut n = 0;
        for part in body.rsplit('.') {
            if n == 4
                || part.is_empty()
                || part.len() > 3
                || (part.len() > 1 && part.starts_with('0'))
            {
                return None;
            }
            octets[n] = part.parse().ok()?;
            n += 1;
        }
        (n == 4).then(|| IpAddr::V4(Ipv4Addr::from(octets)))
    } else if lower_ends(".ip6.arpa") {
        let body = &name[..name.len() - ".ip6.arpa".len()];
        let mut v: u128 = 0;
        let mut n = 0;
        for part in body.rsplit('.') {
            let &[c] = part.as_bytes() else { return None };
            let d = (c as char).to_digit(16)?;
            v = (v << 4) | u128::from(d);
            n += 1;
            if n > 32 {
                return None;
            }
        }
        (n == 32).then(|| normalize_ip(IpAddr::V6(Ipv6Addr::from(v))))
    } else {
        None
    }
}

/// Undo Zeek's `\xNN` escaping (used for separators and non-printables).
pub(crate) fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains("\\x") {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1] == b'x' {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 2]), hex(b[i + 3])) {
                out.push((h * 16 + l) as u8);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

/// A DNS name as stored in events: unescaped, lower-case, no trailing dot.
fn dns_name(s: &str) -> Option<String> {
    let s = unescape(s);
    let t = s.trim().trim_end_matches('.');
    if t.is_empty() {
        return None;
    }
    Some(t.to_ascii_lowercase())
}

/// Whether `s` looks like a host name (no spaces or slashes).
fn hostname_like(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'*'))
        && s.contains('.')
}

/// Push `ip` unless already present.
pub(crate) fn push_ip(v: &mut Vec<IpAddr>, ip: IpAddr) {
    if !v.contains(&ip) {
        v.push(ip);
    }
}

/// Every address token in free text goes to `v`.
pub(crate) fn scan_into(v: &mut Vec<IpAddr>, s: &str) {
    if let Some(ip) = parse_ip(s) {
        push_ip(v, ip);
        return;
    }
    let b = s.as_bytes();
    if memchr::memchr2(b'.', b':', b).is_none() {
        return;
    }
    ipscan::for_each_ip(b, |ip, _, end| {
        // `4.3.2.1.in-addr.arpa` names 1.2.3.4, added below, not 4.3.2.1.
        let rest = &b[end..];
        let ptr = rest.len() >= 13 && rest[..13].eq_ignore_ascii_case(b".in-addr.arpa");
        if !ptr {
            push_ip(v, normalize_ip(ip));
        }
    });
    // A reverse-DNS name mentions its address reversed.
    if b.len() > 9 && (s.contains(".in-addr.arpa") || s.contains(".ip6.arpa")) {
        for tok in s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-')) {
            if let Some(ip) = ptr_name_ip(tok) {
                push_ip(v, ip);
            }
        }
    }
}

/// Collects the fields of one record and builds its [`Event`].
pub(crate) struct Acc<'a> {
    kind: LogKind,
    pub(crate) ev: Event,
    host: Option<&'a str>,
    uri: Option<&'a str>,
    orig_pkts: Option<u64>,
    resp_pkts: Option<u64>,
    status: Option<u64>,
    auth_bool: Option<bool>,
    attempts: Option<u64>,
    ftp_command: Option<&'a str>,
    reply_code: Option<u64>,
    krb_success: Option<bool>,
    krb_error: Option<&'a str>,
    indicator: Option<&'a str>,
    indicator_type: Option<&'a str>,
}

impl<'a> Acc<'a> {
    pub(crate) fn new(kind: LogKind) -> Self {
        let mut ev = Event::new(kind.event_kind());
        ev.service = kind.service().map(str::to_owned);
        Acc {
            kind,
            ev,
            host: None,
            uri: None,
            orig_pkts: None,
            resp_pkts: None,
            status: None,
            auth_bool: None,
            attempts: None,
            ftp_command: None,
            reply_code: None,
            krb_success: None,
            krb_error: None,
            indicator: None,
            indicator_type: None,
        }
    }

    /// Apply one value (one element, for container fields) of a field.
    pub(crate) fn apply(&mut self, role: Role, v: Val<'a>) {
        let ev = &mut self.ev;
        match role {
            Role::Ts => ev.time = v.as_time(),
            Role::OrigH => ev.src_ip = v.as_str().and_then(parse_ip),
            Role::OrigP => ev.src_port = v.as_port(),
            Role::RespH => ev.dst_ip = v.as_str().and_then(parse_ip),
            Role::RespP => ev.dst_port = v.as_port(),
            Role::Proto => ev.proto = v.as_str().and_then(Proto::parse),
            Role::OrigBytes => ev.bytes_out = v.as_u64(),
            Role::RespBytes => ev.bytes_in = v.as_u64(),
            Role::OrigPkts => self.orig_pkts = v.as_u64(),
            Role::RespPkts => self.resp_pkts = v.as_u64(),
            Role::ConnState => ev.conn_state = v.as_str().map(str::to_owned),
            Role::Service => {
                if let Some(s) = v.as_str() {
                    // A set (`ssl,http`): keep the first.
                    if ev.service.is_none() {
                        ev.service = Some(s.to_owned());
                    }
                }
            }
            Role::Query => {
                if let Some(s) = v.as_str() {
                    if let Some(ip) = ptr_name_ip(s) {
                        push_ip(&mut ev.other_ips, ip);
                    } else if let Some(ip) = parse_ip(s) {
                        push_ip(&mut ev.other_ips, ip);
                    }
                    ev.domain = dns_name(s);
                }
            }
            Role::Answers => {
                if let Some(s) = v.as_str() {
                    if let Some(ip) = parse_ip(s) {
                        push_ip(&mut ev.other_ips, ip);
                    } else if hostname_like(s) {
                        if let Some(d) = dns_name(s) {
                            ev.other_domains.push(d);
                        }
                    } else {
                        // TXT and other free-form answers.
                        scan_into(&mut ev.other_ips, s);
                    }
                }
            }
            Role::HttpHost => self.host = v.as_str(),
            Role::Uri => {
                if let Some(s) = v.as_str() {
                    self.uri = Some(s);
                    scan_into(&mut ev.other_ips, s);
                }
            }
            Role::Username | Role::FtpUser | Role::KrbClient => {
                if let Some(s) = v.as_str() {
                    ev.user = Some(unescape(s).into_owned());
                }
            }
            Role::StatusCode => self.status = v.as_u64(),
            Role::ServerName => {
                if let Some(s) = v.as_str() {
                    if let Some(ip) = parse_ip(s) {
                        push_ip(&mut ev.other_ips, ip);
                    } else {
                        ev.domain = dns_name(s);
                    }
                }
            }
            Role::CertSubject => {
                if let Some(s) = v.as_str() {
                    scan_into(&mut ev.other_ips, s);
                    if let Some(cn) = subject_cn(s) {
                        let cn = unescape(cn);
                        if let Some(ip) = parse_ip(&cn) {
                            push_ip(&mut ev.other_ips, ip);
                        } else if hostname_like(&cn)
                            && let Some(d) = dns_name(&cn)
                        {
                            ev.other_domains.push(d);
                        }
                    }
                }
            }
            Role::SanDns => {
                if let Some(s) = v.as_str() {
                    if let Some(ip) = parse_ip(s) {
                        push_ip(&mut ev.other_ips, ip);
                    } else if let Some(d) = dns_name(s) {
                        ev.other_domains.push(d);
                    }
                }
            }
            Role::Hash => {
                if let Some(s) = v.as_str()
                    && let Some(h) = normalize_hash(s)
                    && !ev.hashes.contains(&h)
                {
                    ev.hashes.push(h);
                }
            }
            Role::AuthBool => self.auth_bool = v.as_bool(),
            Role::AuthAttempts => self.attempts = v.as_u64(),
            Role::FtpCommand => self.ftp_command = v.as_str(),
            Role::ReplyCode => self.reply_code = v.as_u64(),
            Role::KrbSuccess => self.krb_success = v.as_bool(),
            Role::KrbError => self.krb_error = v.as_str(),
            Role::NoticeSrc => {
                if let Some(ip) = v.as_str().and_then(parse_ip) {
                    if ev.src_ip.is_none() {
                        ev.src_ip = Some(ip);
                    } else {
                        push_ip(&mut ev.other_ips, ip);
                    }
                }
            }
            Role::NoticeDst => {
                if let Some(ip) = v.as_str().and_then(parse_ip) {
                    if ev.dst_ip.is_none() {
                        ev.dst_ip = Some(ip);
                    } else {
                        push_ip(&mut ev.other_ips, ip);
                    }
                }
            }
            Role::NoticeP => {
                if ev.dst_port.is_none() {
                    ev.dst_port = v.as_port();
                }
            }
            Role::NoticeNote => {
                ev.signature = v.as_str().map(str::to_owned).filter(|s| !s.is_empty());
            }
            Role::Indicator => self.indicator = v.as_str(),
            Role::IndicatorType => self.indicator_type = v.as_str(),
            Role::Addr => {
                if let Some(s) = v.as_str() {
                    if let Some(ip) = parse_ip(s) {
                        push_ip(&mut ev.other_ips, ip);
                    } else {
                        scan_into(&mut ev.other_ips, s);
                    }
                }
            }
            Role::Scan | Role::Generic => {
                if let Some(s) = v.as_str() {
                    scan_into(&mut ev.other_ips, s);
                }
            }
            Role::Ignore => {}
        }
    }

    /// Resolve fields that depend on each other and return the event.
    pub(crate) fn finish(self) -> Event {
        let mut ev = self.ev;
        if self.orig_pkts.is_some() || self.resp_pkts.is_some() {
            ev.packets = Some(
                self.orig_pkts
                    .unwrap_or(0)
                    .saturating_add(self.resp_pkts.unwrap_or(0)),
            );
        }
        if let Some(host) = self.host {
            let h = host_without_port(host);
            if let Some(ip) = parse_ip(h) {
                push_ip(&mut ev.other_ips, ip);
            } else {
                ev.domain = dns_name(h);
            }
        }
        if let Some(uri) = self.uri {
            let uri = unescape(uri);
            ev.url = Some(
                if uri.starts_with("http://") || uri.starts_with("https://") {
                    uri.into_owned()
                } else {
                    let host = match (self.host, ev.dst_ip) {
                        (Some(h), _) => unescape(h).into_owned(),
                        (None, Some(IpAddr::V6(v6))) => format!("[{v6}]"),
                        (None, Some(ip)) => ip.to_string(),
                        (None, None) => String::new(),
                    };
                    if host.is_empty() {
                        uri.into_owned()
                    } else if uri.starts_with('/') {
                        format!("http://{host}{uri}")
                    } else {
                        format!("http://{host}/{uri}")
                    }
                },
            );
        }
        match self.kind {
            LogKind::Http
                // Credentials were sent (`username` is logged only then):
                // 401/403 means they were refused.
                if ev.user.is_some() => {
                    ev.auth = match self.status {
                        Some(401 | 403) => Some(AuthOutcome::Failure),
                        Some(200..=399) => Some(AuthOutcome::Success),
                        _ => None,
                    };
                }
            LogKind::Ssh | LogKind::Rfb => {
                ev.auth = self.auth_bool.map(|ok| {
                    if ok {
                        AuthOutcome::Success
                    } else {
                        AuthOutcome::Failure
                    }
                });
                // One ssh.log record stands for every password tried on
                // the connection.
                if let Some(n) = self.attempts {
                    ev.count = n.max(1);
                }
            }
            LogKind::Ftp => {
                let login_cmd = self.ftp_command.is_none_or(|c| {
                    c.eq_ignore_ascii_case("PASS") || c.eq_ignore_ascii_case("USER")
                });
                ev.auth = match self.reply_code {
                    Some(530) if login_cmd => Some(AuthOutcome::Failure),
                    Some(230) => Some(AuthOutcome::Success),
                    _ => None,
                };
            }
            LogKind::Kerberos => {
                ev.auth = match (self.krb_success, self.krb_error) {
                    (Some(true), _) => Some(AuthOutcome::Success),
                    // The normal first round of an AS exchange, not a failure.
                    (_, Some("KDC_ERR_PREAUTH_REQUIRED")) => None,
                    (_, Some("KDC_ERR_C_PRINCIPAL_UNKNOWN")) => Some(AuthOutcome::InvalidUser),
                    (Some(false), _) => Some(AuthOutcome::Failure),
                    (None, Some(e)) if e.contains("PREAUTH_FAILED") => Some(AuthOutcome::Failure),
                    _ => None,
                };
            }
            LogKind::Intel => {
                if let Some(ind) = self.indicator {
                    let ty = self.indicator_type.unwrap_or("");
                    match ty {
                        "Intel::DOMAIN" => {
                            if ev.domain.is_none() {
                                ev.domain = dns_name(ind);
                            } else if let Some(d) = dns_name(ind) {
                                ev.other_domains.push(d);
                            }
                        }
                        "Intel::URL" => {
                            scan_into(&mut ev.other_ips, ind);
                            if ev.url.is_none() {
                                ev.url = Some(unescape(ind).into_owned());
                            }
                        }
                        "Intel::FILE_HASH" | "Intel::CERT_HASH" | "Intel::JA3" => {
                            if let Some(h) = normalize_hash(ind) {
                                ev.hashes.push(h);
                            }
                        }
                        _ => scan_into(&mut ev.other_ips, ind),
                    }
                }
            }
            _ => {}
        }
        tidy(&mut ev);
        ev
    }
}

/// Remove duplicates and addresses already given a role.
pub(crate) fn tidy(ev: &mut Event) {
    let (src, dst) = (ev.src_ip, ev.dst_ip);
    ev.other_ips
        .retain(|ip| Some(*ip) != src && Some(*ip) != dst);
    let mut seen: Vec<String> = Vec::new();
    let domain = ev.domain.clone();
    ev.other_domains.retain(|d| {
        if Some(d) == domain.as_ref() || seen.contains(d) {
            false
        } else {
            seen.push(d.clone());
            true
        }
    });
}

/// `host:port` → `host`, `[v6]:port` → `v6`; a bare IPv6 stays whole.
pub(crate) fn host_without_port(h: &str) -> &str {
    let h = h.trim();
    if let Some(rest) = h.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match h.rsplit_once(':') {
        Some((a, p)) if !a.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => a,
        _ => h,
    }
}

/// The CN of an X.509 subject `CN=host,O=...` (either RDN order).
pub(crate) fn subject_cn(s: &str) -> Option<&str> {
    for part in s.split([',', '/']) {
        let p = part.trim();
        if let Some(v) = p.strip_prefix("CN=").or_else(|| p.strip_prefix("cn=")) {
            let v = v.trim();
            if !v.is_empty() {
                return Some(v);
            }
        }
    }
    None
}

/// A hash or fingerprint as stored in events: lower-case hex, no colons.
pub(crate) fn normalize_hash(s: &str) -> Option<String> {
    let s = s.trim();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == ':' || c == ' ' {
            continue;
        }
        if !c.is_ascii_hexdigit() {
            return None;
        }
        out.push(c.to_ascii_lowercase());
    }
    (out.len() >= 16).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_is_exact() {
        let t = parse_epoch("1379288667.706265").unwrap();
        assert_eq!(t.to_string(), "2013-09-15T23:44:27.706265Z");
        assert!(parse_epoch("XXXXXXXXXX.XXXXXX").is_none());
        assert!(parse_epoch("99999999999999999999").is_none());
    }

    #[test]
    fn ptr_names() {
        assert_eq!(
            ptr_name_ip("1.1.168.192.in-addr.arpa"),
            Some("192.168.1.1".parse().unwrap())
        );
        assert_eq!(
            ptr_name_ip("b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa"),
            Some("4321:0:1:2:3:4:567:89ab".parse().unwrap())
        );
        assert_eq!(ptr_name_ip("example.com"), None);
        assert_eq!(ptr_name_ip("1.2.in-addr.arpa"), None);
    }

    #[test]
    fn hosts_and_hashes() {
        assert_eq!(host_without_port("example.com:8080"), "example.com");
        assert_eq!(host_without_port("[::1]:80"), "::1");
        assert_eq!(host_without_port("2001:db8::1"), "2001:db8::1");
        assert_eq!(
            normalize_hash("CB:69:d0:4e:c2:ee:06:38:e9:3c:6e:cc:56:b7:dc:c1:f8:43:c2:47")
                .as_deref(),
            Some("cb69d04ec2ee0638e93c6ecc56b7dcc1f843c247")
        );
        assert_eq!(unescape("a\\x2cb"), "a,b");
        assert_eq!(subject_cn("CN=*.google.de,O=x"), Some("*.google.de"));
        assert_eq!(
            subject_cn("C=US, O=Google Inc, CN=Google G2"),
            Some("Google G2")
        );
    }
}
