//! Palo Alto Networks PAN-OS syslog CSV, fields by position as documented
//! in "Syslog Field Descriptions" (PAN-OS 8.1-11):
//!
//! * common: `FUTURE_USE, Receive Time, Serial, Type, Subtype, FUTURE_USE,
//!   Generated Time, ...`;
//! * TRAFFIC / THREAT: `7 src, 8 dst, 9 NAT src, 10 NAT dst, 11 rule, 12 src
//!   user, 13 dst user, 14 application, ..., 23 repeat count, 24 sport, 25
//!   dport, 26/27 NAT ports, 28 flags, 29 protocol, 30 action`, then TRAFFIC
//!   `31 bytes, 32 sent, 33 received, 34 packets` and THREAT `31 URL/file,
//!   32 threat name (id)`;
//! * SYSTEM: `7 vsys, 8 event id, 9 object, 12 module, 13 severity, 14
//!   description`; GlobalProtect portal/gateway and admin `auth-fail` events
//!   become auth failures (address from "Login from:" / "From:");
//! * GLOBALPROTECT (PAN-OS 9.1+): `8 event id, 9 stage, 10 auth method, 12
//!   user, 15 public IP, 16 public IPv6, 17 private IP, 28 status`.
//!
//! The record may follow any syslog header (or garbage): it is found by its
//! type column. TRAFFIC is a connection (conn_state = subtype: start, end,
//! drop, deny); THREAT is an alert, with the URL for `url` records.

use super::Ctx;
use super::fields::{
    add_remaining_ips, contains_ci, nonempty, parse_action, parse_ip, parse_port, parse_proto,
    push_other,
};
use super::quality_of;
use super::timestamp::parse_iso;
use crate::model::{AuthOutcome, Event, EventKind};

const TYPES: [&str; 10] = [
    "TRAFFIC",
    "THREAT",
    "SYSTEM",
    "GLOBALPROTECT",
    "CONFIG",
    "USERID",
    "AUTH",
    "DECRYPTION",
    "HIPMATCH",
    "TUNNEL",
];

/// Does the text hold a PAN-OS CSV record?
pub(crate) fn looks_like(s: &str) -> bool {
    TYPES.iter().any(|t| {
        s.find(t).is_some_and(|i| {
            i > 0 && s.as_bytes()[i - 1] == b',' && s.as_bytes().get(i + t.len()) == Some(&b',')
        })
    })
}

/// Split CSV with double-quoted fields; quotes removed.
fn csv_fields(s: &str) -> Vec<&str> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(64);
    let mut i = 0;
    let n = b.len();
    loop {
        if i < n && b[i] == b'"' {
            let start = i + 1;
            let mut j = start;
            while j < n {
                if b[j] == b'"' {
                    if j + 1 < n && b[j + 1] == b'"' {
                        j += 2;
                        continue;
                    }
                    break;
                }
                j += 1;
            }
            out.push(&s[start..j.min(n)]);
            i = j + 1;
            // skip to the comma
            while i < n && b[i] != b',' {
                i += 1;
            }
        } else {
            let start = i;
            while i < n && b[i] != b',' {
                i += 1;
            }
            out.push(&s[start..i]);
        }
        if i >= n {
            break;
        }
        i += 1; // comma
        if i == n {
            out.push("");
            break;
        }
    }
    out
}

/// Parse a PAN-OS record.
pub(crate) fn parse(c: &Ctx) -> Option<Event> {
    let all = csv_fields(c.body);
    let k = (3..all.len()).find(|&k| TYPES.contains(&all[k]))?;
    let mut f: Vec<&str> = all[k - 3..].to_vec();
    // The first field is the last word of whatever precedes it.
    f[0] = f[0].rsplit(' ').next().unwrap_or(f[0]);
    let get = |i: usize| f.get(i).copied().unwrap_or("");
    let typ = get(3);
    let subtype = get(4);
    let mut ev = Event::new(EventKind::Other);
    let body_time = parse_iso(get(6).as_bytes())
        .filter(|(_, n)| *n == get(6).len())
        .and_then(|(ct, _)| c.civil(&ct).map(|(t, _)| (t, quality_of(&ct))));
    c.pick_time(&mut ev, body_time);
    match typ {
        "TRAFFIC" | "THREAT" => {
            ev.kind = if typ == "TRAFFIC" {
                EventKind::Connection
            } else {
                EventKind::Alert
            };
            ev.src_ip = parse_ip(get(7));
            ev.dst_ip = parse_ip(get(8));
            for i in [9, 10] {
                if let Some(ip) = parse_ip(get(i))
                    && !ip.is_unspecified()
                {
                    push_other(&mut ev, ip);
                }
            }
            ev.user = nonempty(get(12));
            ev.service = nonempty(get(14));
            if let Ok(n) = get(23).parse::<u64>() {
                ev.count = n.max(1);
            }
            ev.src_port = parse_port(get(24));
            ev.dst_port = parse_port(get(25));
            ev.proto = parse_proto(get(29));
            ev.action = parse_action(get(30));
            if typ == "TRAFFIC" {
                ev.conn_state = nonempty(subtype);
                ev.bytes_out = get(32).parse().ok();
                ev.bytes_in = get(33).parse().ok();
                ev.packets = get(34).parse().ok();
            } else if subtype == "url" {
                ev.url = nonempty(get(31));
            }
        }
        "SYSTEM" => {
            let eventid = get(8);
            let desc = get(14);
            let fail = eventid.contains("auth-fail")
                || contains_ci(desc, "authentication failed")
                || contains_ci(desc, "failed authentication");
            let ok = eventid.contains("auth-succ") || eventid.contains("auth-success");
            if fail || ok {
                ev.kind = EventKind::Auth;
                ev.auth = Some(if fail {
                    AuthOutcome::Failure
                } else {
                    AuthOutcome::Success
                });
                ev.service = Some(
                    if subtype == "globalprotect" || eventid.starts_with("globalprotect") {
                        "vpn"
                    } else {
                        "panos"
                    }
                    .to_string(),
                );
                ev.src_ip = ip_after(desc, "Login from: ")
                    .or_else(|| ip_after(desc, "From: "))
                    .or_else(|| ip_after(desc, "from: "))
                    .or_else(|| ip_after(desc, " from "));
                ev.user = text_after(desc, "User name: ")
                    .or_else(|| quoted_after(desc, "user '"))
                    .and_then(nonempty);
            }
        }
        "GLOBALPROTECT" => {
            let status = get(28);
            ev.kind = EventKind::Auth;
            ev.service = Some("vpn".to_string());
            ev.auth = match status {
                "failure" => Some(AuthOutcome::Failure),
                "success" => Some(AuthOutcome::Success),
                _ => None,
            };
            ev.user = nonempty(get(12));
            ev.src_ip = parse_ip(get(15)).or_else(|| parse_ip(get(16)));
            if let Some(ip) = parse_ip(get(17)) {
                push_other(&mut ev, ip);
            }
            if let Ok(n) = get(24).parse::<u64>() {
                ev.count = n.clamp(1, 1 << 20);
            }
        }
        _ => {}
    }
    add_remaining_ips(&mut ev, c.body);
    Some(ev)
}

fn ip_after(s: &str, key: &str) -> Option<std::net::IpAddr> {
    let i = s.find(key)? + key.len();
    let tok = s[i..].split([' ', ',', ';']).next()?;
    parse_ip(tok.trim_end_matches('.'))
}

fn text_after<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let i = s.find(key)? + key.len();
    s[i..].split([',', ';']).next()
}

fn quoted_after<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let i = s.find(key)? + key.len();
    let j = s[i..].find('\'')? + i;
    Some(&s[i..j])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv() {
        assert_eq!(csv_fields("a,\"b,c\",,d"), vec!["a", "b,c", "", "d"]);
        assert_eq!(csv_fields("a,"), vec!["a", ""]);
        assert_eq!(csv_fields("\"x"), vec!["x"]);
    }
}
