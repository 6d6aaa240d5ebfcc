//! Suricata EVE JSON, every event type: alert, drop, flow, netflow, dns
//! (v1 one-answer-per-record, v2 `answers`/`grouped`, v3 `queries`), http,
//! tls, fileinfo, ssh, smtp, ftp, anomaly and the rest; `stats` records carry
//! no traffic and are skipped.
//!
//! Records are read into a typed struct with borrowed strings (no
//! `serde_json::Value` tree), and every scalar is read leniently: a port of
//! `99999999999` or a number where a string was expected makes that field
//! unknown instead of rejecting the whole record. Protocol sections that
//! are not mapped field by field (smb, dhcp, sip, tunnel…) are still searched
//! for addresses, so an address anywhere in the record is found. Not
//! searched: user agents and certificate serials (their version numbers and
//! colon-hex look like addresses), rule text, base64 packets.
//!
//! Mapping notes: `service` is `app_proto` (or the protocol of the event:
//! `ftp`, `ssh`, `kerberos`, `vnc`); the alert signature goes to
//! `signature` (behaviour detectors read scan and brute-force verdicts).
//! `alert.action == "blocked"` and `drop` events are `Action::Drop`, other
//! alerts `Action::Alert`. `conn_state` is `flow.state` (`new`,
//! `established`, `closed`…), else `tcp.state`, else `tcp.tcp_flags` (hex);
//! except that a TCP flow the server never answered with SYN-ACK gets the
//! Zeek state behaviour detectors read: `REJ` when it answered with a
//! reset, `S0` when nothing came back (from `tcp_flags_tc`).
//! A failed FTP `PASS` (530) names the user of the flow's earlier `USER`.
//! A DNS PTR query for `4.3.2.1.in-addr.arpa` adds 1.2.3.4 to `other_ips`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::text::parse_iso8601_prefix;
use super::zeek_fields::{
    host_without_port, normalize_hash, parse_ip, ptr_name_ip, push_ip, scan_into, subject_cn, tidy,
};
use super::{DecodeError, Decoded, Decoder, DecoderConfig, DecoderInfo, json_object_line};
use crate::model::{Action, AuthOutcome, Event, EventKind, Proto};

/// Registry entry.
pub const INFO: DecoderInfo = DecoderInfo {
    name: "eve",
    description: "Suricata EVE JSON, all event types",
    sniff,
    make: |_cfg: &DecoderConfig| Box::new(Eve::default()),
};

fn sniff(lines: &[&[u8]]) -> u8 {
    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(borrow)]
        event_type: Option<LStr<'a>>,
        timestamp: Option<IgnoredAny>,
    }
    let mut best = 0;
    for l in lines.iter().take(20) {
        let l = l.trim_ascii();
        if l.is_empty() {
            continue;
        }
        if l.first() != Some(&b'{') {
            return 0;
        }
        if let Ok(p) = serde_json::from_slice::<Probe<'_>>(l) {
            let score = match (p.event_type.and_then(|e| e.0), p.timestamp) {
                (Some(_), Some(_)) => 100,
                (Some(_), None) => 60,
                _ => 0,
            };
            best = best.max(score);
        }
    }
    best
}

/// Remembered FTP user names per flow, so a failed `PASS` names its user.
const FTP_USERS_MAX: usize = 10_000;

/// The EVE decoder. Its only state is the FTP user of each open flow.
#[derive(Clone, Default)]
struct Eve {
    ftp_users: HashMap<u64, String>,
}

impl Decoder for Eve {
    fn name(&self) -> &'static str {
        "eve"
    }

    fn decode(&mut self, record: &[u8]) -> Result<Decoded, DecodeError> {
        let Some(r) = json_object_line::<Record<'_>>(
            record,
            "not a JSON object: EVE has one {...} object per line",
            "invalid EVE JSON",
        )?
        else {
            return Ok(Decoded::Skip);
        };
        let et = r
            .event_type
            .as_ref()
            .and_then(|e| e.0.as_deref())
            .unwrap_or("");
        if et == "stats" {
            return Ok(Decoded::Skip);
        }
        Ok(Decoded::Event(Box::new(self.build(&r, et))))
    }

    fn fork(&self) -> Box<dyn Decoder> {
        Box::new(self.clone())
    }
}

impl Eve {
    fn build(&mut self, r: &Record<'_>, et: &str) -> Event {
        let kind = match et {
            "alert" => EventKind::Alert,
            "flow" | "netflow" | "drop" => EventKind::Connection,
            "dns" => EventKind::Dns,
            "http" | "http2" => EventKind::Http,
            "tls" | "quic" => EventKind::Tls,
            "fileinfo" => EventKind::File,
            "ssh" | "ftp" | "krb5" | "rfb" => EventKind::Auth,
            _ => EventKind::Other,
        };
        let mut ev = Event::new(kind);
        ev.time = s(&r.timestamp).and_then(|t| parse_iso8601_prefix(t.as_bytes()).map(|(t, _)| t));
        ev.src_ip = s(&r.src_ip).and_then(parse_ip);
        ev.dst_ip = s(&r.dest_ip).and_then(parse_ip);
        ev.src_port = n(&r.src_port).and_then(|p| u16::try_from(p).ok());
        ev.dst_port = n(&r.dest_port).and_then(|p| u16::try_from(p).ok());
        ev.proto = r.proto.as_ref().and_then(|p| match (&p.0, p.1) {
            (Some(s), _) => Proto::parse(s),
            (None, Some(n)) => u8::try_from(n)
                .ok()
                .and_then(|n| Proto::parse(&n.to_string())),
            _ => None,
        });
        ev.host = s(&r.host).map(str::to_owned);
        ev.service = s(&r.app_proto)
            .filter(|a| !matches!(*a, "failed" | "unknown"))
            .map(str::to_owned);
        let ips = &mut ev.other_ips;

        if let Some(f) = r.flow.as_ref().or(r.netflow.as_ref()) {
            ev.bytes_out = n(&f.bytes_toserver).or(n(&f.bytes));
            ev.bytes_in = n(&f.bytes_toclient);
            let pk = [n(&f.pkts_toserver), n(&f.pkts_toclient), n(&f.pkts)];
            if pk.iter().any(Option::is_some) {
                ev.packets = Some(pk.iter().flatten().fold(0u64, |a, b| a.saturating_add(*b)));
            }
            ev.conn_state = s(&f.state).map(str::to_owned);
            // Alerts carry the flow's own direction; keep every address.
            for a in [&f.src_ip, &f.dest_ip] {
                if let Some(ip) = s(a).and_then(parse_ip) {
                    push_ip(ips, ip);
                }
            }
        }
        // Unanswered or refused TCP flows, in Zeek's words.
        let tc = r
            .tcp
            .as_ref()
            .and_then(|t| s(&t.tcp_flags_tc))
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        if r.flow.is_some()
            && ev.proto == Some(crate::model::Proto::Tcp)
            && let Some(tc) = tc
            && tc & 0x12 != 0x12
        {
            if tc & 0x04 != 0 {
                ev.conn_state = Some("REJ".to_string());
            } else if tc == 0 && ev.bytes_in.unwrap_or(0) == 0 {
                ev.conn_state = Some("S0".to_string());
            }
        }
        if ev.conn_state.is_none() {
            ev.conn_state = r
                .tcp
                .as_ref()
                .and_then(|t| s(&t.state).or(s(&t.tcp_flags)))
                .map(str::to_owned);
        }
        if let Some(a) = &r.alert {
            ev.action = Some(if s(&a.action) == Some("blocked") {
                Action::Drop
            } else {
                Action::Alert
            });
            ev.signature = s(&a.signature).map(str::to_owned);
            if let Some(x) = &a.source {
                x.scan(ips);
            }
            if let Some(x) = &a.target {
                x.scan(ips);
            }
        }
        if et == "drop" {
            ev.action = Some(Action::Drop);
        }
        if let Some(d) = &r.dns {
            // v1: rrname/rdata per record; v2: answers/grouped; v3: queries.
            let qname = s(&d.rrname).or_else(|| {
                d.queries
                    .as_ref()
                    .and_then(|q| q.first())
                    .and_then(|q| s(&q.rrname))
            });
            if let Some(q) = qname {
                if let Some(ip) = ptr_name_ip(q).or_else(|| parse_ip(q)) {
                    push_ip(ips, ip);
                }
                ev.domain = dns_name(q);
            }
            if let Some(rd) = s(&d.rdata) {
                dns_data(rd, ips, &mut ev.other_domains);
            }
            for part in [&d.answers, &d.grouped, &d.authorities, &d.additionals]
                .into_iter()
                .flatten()
            {
                for st in &part.0 {
                    dns_data(st, ips, &mut ev.other_domains);
                }
            }
            if let Some(q) = &d.queries {
                for e in q.iter().skip(1) {
                    if let Some(name) = s(&e.rrname) {
                        if let Some(ip) = ptr_name_ip(name) {
                            push_ip(ips, ip);
                        }
                        if let Some(dn) = dns_name(name) {
                            ev.other_domains.push(dn);
                        }
                    }
                }
            }
        }
        if let Some(h) = r.http.as_ref().or(r.http2.as_ref()) {
            let host = s(&h.hostname).map(host_without_port);
            if let Some(host) = host {
                if let Some(ip) = parse_ip(host) {
                    push_ip(ips, ip);
                } else if ev.domain.is_none() {
                    ev.domain = dns_name(host);
                }
            }
            if let Some(u) = s(&h.url) {
                scan_into(ips, u);
                ev.url = Some(if u.starts_with("http://") || u.starts_with("https://") {
                    u.to_owned()
                } else {
                    let hostpart = match (s(&h.hostname), ev.dst_ip) {
                        (Some(hn), _) => hn.to_owned(),
                        (None, Some(IpAddr::V6(v6))) => format!("[{v6}]"),
                        (None, Some(ip)) => ip.to_string(),
                        (None, None) => String::new(),
                    };
                    if hostpart.is_empty() {
                        u.to_owned()
                    } else if u.starts_with('/') {
                        format!("http://{hostpart}{u}")
                    } else {
                        format!("http://{hostpart}/{u}")
                    }
                });
            }
            for t in [
                &h.http_refer,
                &h.xff,
                &h.redirect,
                &h.http_request_body_printable,
            ] {
                if let Some(t) = s(t) {
                    scan_into(ips, t);
                }
            }
            for x in [&h.request_headers, &h.response_headers]
                .into_iter()
                .flatten()
            {
                x.scan(ips);
            }
            if ev.bytes_in.is_none() {
                ev.bytes_in = n(&h.length);
            }
        }
        if let Some(t) = r.tls.as_ref() {
            if let Some(sni) = s(&t.sni) {
                if let Some(ip) = parse_ip(sni) {
                    push_ip(ips, ip);
                } else {
                    ev.domain = dns_name(sni);
                }
            }
            if let Some(sub) = s(&t.subject) {
                scan_into(ips, sub);
                if let Some(cn) = subject_cn(sub) {
                    if let Some(ip) = parse_ip(cn) {
                        push_ip(ips, ip);
                    } else if let Some(d) = dns_name(cn).filter(|d| d.contains('.')) {
                        ev.other_domains.push(d);
                    }
                }
            }
            if let Some(iss) = s(&t.issuerdn) {
                scan_into(ips, iss);
            }
            if let Some(fp) = s(&t.fingerprint).and_then(normalize_hash) {
                ev.hashes.push(fp);
            }
            for j in [&t.ja3, &t.ja3s, &t.ja4].into_iter().flatten() {
                if let Some(h) = s(&j.hash).and_then(normalize_hash) {
                    ev.hashes.push(h);
                }
            }
        }
        if let Some(q) = &r.quic
            && let Some(sni) = s(&q.sni)
        {
            if let Some(ip) = parse_ip(sni) {
                push_ip(ips, ip);
            } else if ev.domain.is_none() {
                ev.domain = dns_name(sni);
            }
        }
        let file_sections = r.fileinfo.iter().chain(r.files.iter().flatten());
        for f in file_sections {
            for h in [&f.md5, &f.sha1, &f.sha256] {
                if let Some(h) = s(h).and_then(normalize_hash)
                    && !ev.hashes.contains(&h)
                {
                    ev.hashes.push(h);
                }
            }
            if let Some(name) = s(&f.filename) {
                scan_into(ips, name);
            }
        }
        if let Some(f) = &r.ftp {
            let cmd = s(&f.command).unwrap_or("");
            let user = s(&f.command_data);
            if let Some(flow) = n(&r.flow_id) {
                if cmd.eq_ignore_ascii_case("USER") {
                    if let Some(u) = user {
                        if self.ftp_users.len() >= FTP_USERS_MAX {
                            self.ftp_users.clear();
                        }
                        self.ftp_users.insert(flow, u.to_owned());
                    }
                } else if cmd.eq_ignore_ascii_case("QUIT") {
                    self.ftp_users.remove(&flow);
                }
                if cmd.eq_ignore_ascii_case("PASS") {
                    ev.user = self.ftp_users.get(&flow).cloned();
                }
            }
            if cmd.eq_ignore_ascii_case("USER") {
                ev.user = user.map(str::to_owned);
            }
            let codes = f.completion_code.as_ref().map(|c| &c.0[..]).unwrap_or(&[]);
            let has = |c: &str| codes.iter().any(|x| x.as_ref() == c);
            if cmd.eq_ignore_ascii_case("PASS") || cmd.eq_ignore_ascii_case("USER") {
                if has("530") {
                    ev.auth = Some(AuthOutcome::Failure);
                } else if has("230") {
                    ev.auth = Some(AuthOutcome::Success);
                }
            }
            if let Some(rep) = &f.reply {
                for t in &rep.0 {
                    scan_into(ips, t);
                }
            }
            if !cmd.eq_ignore_ascii_case("PASS")
                && let Some(d) = user
            {
                scan_into(ips, d);
            }
            ev.service = Some("ftp".into());
        }
        if let Some(k) = &r.krb5 {
            let err = s(&k.error_code).unwrap_or("");
            ev.user = s(&k.cname).filter(|c| *c != "<empty>").map(str::to_owned);
            ev.auth = match err {
                "" => None,
                "KDC_ERR_PREAUTH_REQUIRED" => None,
                "KDC_ERR_C_PRINCIPAL_UNKNOWN" => Some(AuthOutcome::InvalidUser),
                e if e.contains("PREAUTH_FAILED") || e.contains("KEY_EXPIRED") => {
                    Some(AuthOutcome::Failure)
                }
                _ => None,
            };
            ev.service = Some("kerberos".into());
        }
        if et == "ssh" {
            ev.service = Some("ssh".into());
        }
        if let Some(x) = &r.ssh {
            x.scan(ips);
        }
        if let Some(m) = &r.smtp {
            for t in [&m.helo, &m.mail_from] {
                if let Some(t) = s(t) {
                    scan_into(ips, t);
                }
            }
            if let Some(rc) = &m.rcpt_to {
                for t in &rc.0 {
                    scan_into(ips, t);
                }
            }
        }
        for x in [
            &r.dhcp,
            &r.smb,
            &r.rdp,
            &r.sip,
            &r.snmp,
            &r.tunnel,
            &r.email,
            &r.ike,
            &r.tftp,
            &r.bittorrent_dht,
            &r.mqtt,
            &r.rfb,
            &r.dcerpc,
            &r.nfs,
            &r.ldap,
            &r.pgsql,
            &r.websocket,
            &r.anomaly,
        ]
        .into_iter()
        .flatten()
        {
            x.scan(ips);
        }
        if let Some(rfb) = &r.rfb {
            if rfb.0.iter().any(|t| t == "FAIL") {
                ev.auth = Some(AuthOutcome::Failure);
            } else if rfb.0.iter().any(|t| t == "OK") {
                ev.auth = Some(AuthOutcome::Success);
            }
            ev.service = Some("vnc".into());
        }
        if let Some(p) = s(&r.payload_printable) {
            scan_into(ips, p);
        }
        tidy(&mut ev);
        ev
    }
}

fn s<'x>(v: &'x Option<LStr<'_>>) -> Option<&'x str> {
    v.as_ref().and_then(|x| x.0.as_deref())
}

fn n(v: &Option<LNum>) -> Option<u64> {
    v.as_ref().and_then(|x| x.0)
}

fn dns_name(s: &str) -> Option<String> {
    let t = s.trim().trim_end_matches('.');
    if t.is_empty() || t == "<root>" {
        return None;
    }
    Some(t.to_ascii_lowercase())
}

/// A DNS answer datum: an address, a name, or text searched for addresses.
fn dns_data(d: &str, ips: &mut Vec<IpAddr>, domains: &mut Vec<String>) {
    if let Some(ip) = parse_ip(d) {
        push_ip(ips, ip);
    } else if let Some(ip) = ptr_name_ip(d) {
        push_ip(ips, ip);
        if let Some(n) = dns_name(d) {
            domains.push(n);
        }
    } else if d.contains('.')
        && d.len() <= 253
        && d.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'*'))
    {
        if let Some(n) = dns_name(d) {
            domains.push(n);
        }
    } else {
        scan_into(ips, d);
    }
}

// ---- the record ------------------------------------------------------------

#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    timestamp: Option<LStr<'a>>,
    #[serde(borrow)]
    event_type: Option<LStr<'a>>,
    flow_id: Option<LNum>,
    #[serde(borrow)]
    src_ip: Option<LStr<'a>>,
    src_port: Option<LNum>,
    #[serde(borrow)]
    dest_ip: Option<LStr<'a>>,
    dest_port: Option<LNum>,
    proto: Option<LStrNum<'a>>,
    #[serde(borrow)]
    app_proto: Option<LStr<'a>>,
    #[serde(borrow)]
    host: Option<LStr<'a>>,
    #[serde(borrow)]
    payload_printable: Option<LStr<'a>>,
    #[serde(borrow)]
    flow: Option<Flow<'a>>,
    #[serde(borrow)]
    netflow: Option<Flow<'a>>,
    #[serde(borrow)]
    tcp: Option<Tcp<'a>>,
    #[serde(borrow)]
    alert: Option<Alert<'a>>,
    #[serde(borrow)]
    dns: Option<Dns<'a>>,
    #[serde(borrow)]
    http: Option<Http<'a>>,
    #[serde(borrow)]
    http2: Option<Http<'a>>,
    #[serde(borrow)]
    tls: Option<Tls<'a>>,
    #[serde(borrow)]
    quic: Option<Quic<'a>>,
    #[serde(borrow)]
    fileinfo: Option<FileInfo<'a>>,
    #[serde(borrow)]
    files: Option<Vec<FileInfo<'a>>>,
    #[serde(borrow)]
    ftp: Option<Ftp<'a>>,
    #[serde(borrow)]
    krb5: Option<Krb5<'a>>,
    #[serde(borrow)]
    smtp: Option<Smtp<'a>>,
    #[serde(borrow)]
    ssh: Option<Strings<'a>>,
    #[serde(borrow)]
    dhcp: Option<Strings<'a>>,
    #[serde(borrow)]
    smb: Option<Strings<'a>>,
    #[serde(borrow)]
    rdp: Option<Strings<'a>>,
    #[serde(borrow)]
    sip: Option<Strings<'a>>,
    #[serde(borrow)]
    snmp: Option<Strings<'a>>,
    #[serde(borrow)]
    tunnel: Option<Strings<'a>>,
    #[serde(borrow)]
    email: Option<Strings<'a>>,
    #[serde(borrow)]
    ike: Option<Strings<'a>>,
    #[serde(borrow)]
    tftp: Option<Strings<'a>>,
    #[serde(borrow)]
    bittorrent_dht: Option<Strings<'a>>,
    #[serde(borrow)]
    mqtt: Option<Strings<'a>>,
    #[serde(borrow)]
    rfb: Option<Strings<'a>>,
    #[serde(borrow)]
    dcerpc: Option<Strings<'a>>,
    #[serde(borrow)]
    nfs: Option<Strings<'a>>,
    #[serde(borrow)]
    ldap: Option<Strings<'a>>,
    #[serde(borrow)]
    pgsql: Option<Strings<'a>>,
    #[serde(borrow)]
    websocket: Option<Strings<'a>>,
    #[serde(borrow)]
    anomaly: Option<Strings<'a>>,
}

#[derive(Deserialize)]
struct Flow<'a> {
    bytes_toserver: Option<LNum>,
    bytes_toclient: Option<LNum>,
    pkts_toserver: Option<LNum>,
    pkts_toclient: Option<LNum>,
    /// netflow records are one-way.
    bytes: Option<LNum>,
    pkts: Option<LNum>,
    #[serde(borrow)]
    state: Option<LStr<'a>>,
    #[serde(borrow)]
    src_ip: Option<LStr<'a>>,
    #[serde(borrow)]
    dest_ip: Option<LStr<'a>>,
}

#[derive(Deserialize)]
struct Tcp<'a> {
    #[serde(borrow)]
    tcp_flags: Option<LStr<'a>>,
    /// TCP flags the server sent (hex), in flow events.
    #[serde(borrow)]
    tcp_flags_tc: Option<LStr<'a>>,
    #[serde(borrow)]
    state: Option<LStr<'a>>,
}

#[derive(Deserialize)]
struct Alert<'a> {
    #[serde(borrow)]
    action: Option<LStr<'a>>,
    #[serde(borrow)]
    signature: Option<LStr<'a>>,
    #[serde(borrow)]
    source: Option<Strings<'a>>,
    #[serde(borrow)]
    target: Option<Strings<'a>>,
}

#[derive(Deserialize)]
struct Dns<'a> {
    #[serde(borrow)]
    rrname: Option<LStr<'a>>,
    #[serde(borrow)]
    rdata: Option<LStr<'a>>,
    #[serde(borrow)]
    queries: Option<Vec<DnsQuery<'a>>>,
    #[serde(borrow)]
    answers: Option<Strings<'a>>,
    #[serde(borrow)]
    grouped: Option<Strings<'a>>,
    #[serde(borrow)]
    authorities: Option<Strings<'a>>,
    #[serde(borrow)]
    additionals: Option<Strings<'a>>,
}

#[derive(Deserialize)]
struct DnsQuery<'a> {
    #[serde(borrow)]
    rrname: Option<LStr<'a>>,
}

#[derive(Deserialize)]
struct Http<'a> {
    #[serde(borrow)]
    hostname: Option<LStr<'a>>,
    #[serde(borrow)]
    url: Option<LStr<'a>>,
    #[serde(borrow)]
    http_refer: Option<LStr<'a>>,
    #[serde(borrow)]
    xff: Option<LStr<'a>>,
    #[serde(borrow)]
    redirect: Option<LStr<'a>>,
    #[serde(borrow)]
    http_request_body_printable: Option<LStr<'a>>,
    #[serde(borrow)]
    request_headers: Option<Strings<'a>>,
    #[serde(borrow)]
    response_headers: Option<Strings<'a>>,
    length: Option<LNum>,
}

#[derive(Deserialize)]
struct Tls<'a> {
    #[serde(borrow)]
    sni: Option<LStr<'a>>,
    #[serde(borrow)]
    subject: Option<LStr<'a>>,
    #[serde(borrow)]
    issuerdn: Option<LStr<'a>>,
    #[serde(borrow)]
    fingerprint: Option<LStr<'a>>,
    #[serde(borrow)]
    ja3: Option<Ja3<'a>>,
    #[serde(borrow)]
    ja3s: Option<Ja3<'a>>,
    #[serde(borrow)]
    ja4: Option<Ja3<'a>>,
}

#[derive(Deserialize)]
struct Ja3<'a> {
    #[serde(borrow)]
    hash: Option<LStr<'a>>,
}

#[derive(Deserialize)]
struct Quic<'a> {
    #[serde(borrow)]
    sni: Option<LStr<'a>>,
}

#[derive(Deserialize)]
struct FileInfo<'a> {
    #[serde(borrow)]
    filename: Option<LStr<'a>>,
    #[serde(borrow)]
    md5: Option<LStr<'a>>,
    #[serde(borrow)]
    sha1: Option<LStr<'a>>,
    #[serde(borrow)]
    sha256: Option<LStr<'a>>,
}

#[derive(Deserialize)]
struct Ftp<'a> {
    #[serde(borrow)]
    command: Option<LStr<'a>>,
    #[serde(borrow)]
    command_data: Option<LStr<'a>>,
    #[serde(borrow)]
    completion_code: Option<Strings<'a>>,
    #[serde(borrow)]
    reply: Option<Strings<'a>>,
}

#[derive(Deserialize)]
struct Krb5<'a> {
    #[serde(borrow)]
    cname: Option<LStr<'a>>,
    #[serde(borrow)]
    error_code: Option<LStr<'a>>,
}

#[derive(Deserialize)]
struct Smtp<'a> {
    #[serde(borrow)]
    helo: Option<LStr<'a>>,
    #[serde(borrow)]
    mail_from: Option<LStr<'a>>,
    #[serde(borrow)]
    rcpt_to: Option<Strings<'a>>,
}

// ---- lenient scalars -------------------------------------------------------

/// A string, borrowed when unescaped; any other JSON value reads as `None`.
struct LStr<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for LStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LStrV).map(|v| LStr(v.0))
    }
}

/// A number (or numeric string); any other value reads as `None`.
struct LNum(Option<u64>);

impl<'de> Deserialize<'de> for LNum {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LStrV).map(|v| LNum(v.1))
    }
}

/// A string or a number (EVE `proto` is either).
struct LStrNum<'a>(Option<Cow<'a, str>>, Option<u64>);

impl<'de: 'a, 'a> Deserialize<'de> for LStrNum<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LStrV).map(|v| LStrNum(v.0, v.1))
    }
}

/// One visitor for the lenient scalars: (string, number).
struct LStrV;

impl<'de> Visitor<'de> for LStrV {
    type Value = LStrNum<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(LStrNum(Some(Cow::Borrowed(v)), v.trim().parse().ok()))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(LStrNum(
            Some(Cow::Owned(v.to_owned())),
            v.trim().parse().ok(),
        ))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        let num = v.trim().parse().ok();
        Ok(LStrNum(Some(Cow::Owned(v)), num))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(LStrNum(None, Some(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(LStrNum(None, u64::try_from(v).ok()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        let ok = v.is_finite() && (0.0..1.8e19).contains(&v);
        Ok(LStrNum(None, ok.then_some(v as u64)))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(LStrNum(None, None))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(LStrNum(None, None))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(LStrNum(None, None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(LStrNum(None, None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(LStrNum(None, None))
    }
}

/// Every string leaf of a JSON value (keys excluded), for sections searched
/// for addresses rather than mapped field by field.
struct Strings<'a>(Vec<Cow<'a, str>>);

impl Strings<'_> {
    fn scan(&self, ips: &mut Vec<IpAddr>) {
        for t in &self.0 {
            scan_into(ips, t);
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Strings<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut out: Vec<Cow<'de, str>> = Vec::new();
        d.deserialize_any(StringsV(&mut out))?;
        Ok(Strings(out))
    }
}

struct StringsV<'p, 'de>(&'p mut Vec<Cow<'de, str>>);

impl<'de> de::DeserializeSeed<'de> for StringsV<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StringsV<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<(), E> {
        self.0.push(Cow::Borrowed(v));
        Ok(())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.0.push(Cow::Owned(v.to_owned()));
        Ok(())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<(), E> {
        self.0.push(Cow::Owned(v));
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(StringsV(&mut *self.0))?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(StringsV(&mut *self.0))?;
        }
        Ok(())
    }
}
