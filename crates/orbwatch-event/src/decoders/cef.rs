//! ArcSight Common Event Format:
//! `CEF:Version|Vendor|Product|Version|SignatureID|Name|Severity|key=value ...`,
//! raw or behind a syslog header (whose time and host are used when the
//! record has none).
//!
//! Header fields may escape `\|` and `\\`; extension values `\=`, `\\`,
//! `\n`. Extension keys read: `src`, `dst`, `spt`, `dpt`, `proto`, `act`,
//! `suser`/`duser` (the account: `duser` first), `shost`/`dhost`, `dvchost`,
//! `request`, `app`, `in`/`out` (bytes), `cnt`, `rt`/`start`/`end` (epoch
//! milliseconds, `MMM dd yyyy HH:mm:ss[.SSS][ zone]` or ISO),
//! `c6a2`/`c6a3` (source/destination IPv6, or per their `c6aNLabel`),
//! translated addresses. `deviceDirection` is not used: `src`/`dst` already
//! say who talked to whom. Every other address in the extension (device
//! addresses, addresses in `msg`) goes to `other_ips`.
//!
//! Kind: an auth event when the name speaks of a login/logon/authentication
//! that failed or succeeded, an alert when it speaks of a threat, attack,
//! intrusion, malware or scan, a connection when it has addresses.
//!
//! Malformed headers: `CEF: 0|...` (space) and a header whose `CEF:` prefix
//! was cut off (`0|Vendor|Product|...`, as UniFi sends it) are read as CEF,
//! as CrowdSec does. A header with fewer than seven fields cannot be read;
//! the line is still not lost: if it holds addresses, it becomes an event
//! of kind `Other` with them in `other_ips`, otherwise it is rejected with
//! the reason.

use std::borrow::Cow;
use std::net::IpAddr;

use super::syslog::fields::{
    add_remaining_ips, contains_ci, nonempty, parse_action, parse_ip, parse_port, parse_proto,
    push_other,
};
use super::syslog::timestamp::parse_any;
use super::syslog::{BodyDecoder, Ctx, TimeQuality, sniff_share};
use super::{DecoderConfig, DecoderInfo};
use crate::model::{AuthOutcome, Event, EventKind};

/// Registration of the CEF decoder.
pub const INFO: DecoderInfo = DecoderInfo {
    name: "cef",
    description: "ArcSight Common Event Format, raw or behind a syslog header",
    sniff,
    make: |cfg: &DecoderConfig| Box::new(BodyDecoder::new("cef", cfg, parse)),
};

/// How sure detection is that these lines are CEF.
fn sniff(lines: &[&[u8]]) -> u8 {
    sniff_share(lines, |l| {
        let s = String::from_utf8_lossy(l);
        s.contains("CEF:") || looks_headerless(&s)
    })
}

/// `0|Vendor|Product|Version|Sig|Name|Sev|ext`: a CEF header without `CEF:`.
pub(crate) fn looks_headerless(s: &str) -> bool {
    let t = s.trim_start();
    let b = t.as_bytes();
    b.len() > 2
        && b[0].is_ascii_digit()
        && b[1] == b'|'
        && memchr::memchr_iter(b'|', b).count() >= 7
}

/// The syslog decoder's entry point for CEF carried in syslog.
pub(crate) fn parse_record(text: &str, c: &Ctx) -> Option<Event> {
    parse(text, c).ok()
}

/// Split the 7 header fields (unescaped `|`). Returns fields and extension.
fn split_header(s: &str) -> Result<([&str; 7], &str), String> {
    let b = s.as_bytes();
    let mut out = [""; 7];
    let mut k = 0;
    let mut start = 0;
    let mut i = 0;
    while i < b.len() && k < 7 {
        match b[i] {
            b'\\' => i += 2,
            b'|' => {
                out[k] = &s[start..i];
                k += 1;
                start = i + 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    if k < 7 {
        return Err(format!("CEF header cut short: {k} of 7 `|` separators"));
    }
    Ok((out, s.get(start..).unwrap_or("")))
}

fn unescape_header(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            if let Some(n) = it.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn unescape_value(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some(n) => out.push(n),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'[' | b']')
}

/// Extension `key=value` pairs; a value runs to the space before the next
/// key. Values are returned raw (escaped).
pub(crate) fn extension_pairs(ext: &str) -> Vec<(&str, &str)> {
    let b = ext.as_bytes();
    let n = b.len();
    let mut keys: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < n {
        match b[i] {
            b'\\' => {
                i += 2;
                continue;
            }
            b'=' => {
                let mut k = i;
                while k > 0 && is_key_byte(b[k - 1]) {
                    k -= 1;
                }
                if k < i && (k == 0 || b[k - 1] == b' ' || b[k - 1] == b'\t') {
                    keys.push((k, i));
                }
            }
            _ => {}
        }
        i += 1;
    }
    let mut out = Vec::with_capacity(keys.len());
    for (j, &(ks, eq)) in keys.iter().enumerate() {
        let vend = keys.get(j + 1).map(|&(next, _)| next).unwrap_or(n);
        let v = ext.get(eq + 1..vend.max(eq + 1)).unwrap_or("");
        out.push((&ext[ks..eq], v.trim_end()));
    }
    out
}

/// Parse the CEF record in `text` (which may start with a syslog header).
pub(crate) fn parse(text: &str, c: &Ctx) -> Result<Event, String> {
    let rec = match text.find("CEF:") {
        Some(i) => text[i + 4..].trim_start(),
        None if looks_headerless(text) => text.trim_start(),
        None => return Err("no CEF header".to_string()),
    };
    let (h, ext) = match split_header(rec) {
        Ok(x) => x,
        Err(reason) => {
            // Not readable as CEF; keep the addresses if there are any.
            let mut ev = Event::new(EventKind::Other);
            add_remaining_ips(&mut ev, text);
            if ev.other_ips.is_empty() {
                return Err(reason);
            }
            ev.time = c.time;
            return Ok(ev);
        }
    };
    let version = h[0].trim();
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!("CEF version {version:?} is not a number"));
    }
    let name = unescape_header(h[5]);
    let mut ev = Event::new(EventKind::Other);
    let mut suser = None;
    let mut duser = None;
    let mut time: Option<(jiff::Timestamp, TimeQuality)> = None;
    let mut vendor_time = None;
    let mut v6: [(Option<IpAddr>, &str); 5] = [(None, ""); 5];
    let pairs = extension_pairs(ext);
    for &(k, raw) in &pairs {
        let v = unescape_value(raw);
        let v = v.as_ref();
        match k {
            "src" => ev.src_ip = parse_ip(v),
            "dst" => ev.dst_ip = parse_ip(v),
            "spt" => ev.src_port = parse_port(v),
            "dpt" => ev.dst_port = parse_port(v),
            "proto" => ev.proto = parse_proto(v),
            "act" => ev.action = parse_action(v),
            "suser" => suser = nonempty(v),
            "duser" => duser = nonempty(v),
            "dhost" => {
                if let Some(ip) = parse_ip(v) {
                    push_other(&mut ev, ip);
                } else {
                    ev.domain = nonempty(v);
                }
            }
            "shost" => {
                if let Some(ip) = parse_ip(v) {
                    push_other(&mut ev, ip);
                } else if let Some(s) = nonempty(v) {
                    ev.other_domains.push(s);
                }
            }
            "dvchost" => ev.host = nonempty(v),
            "request" => ev.url = nonempty(v),
            "app" => ev.service = nonempty(v),
            "in" => ev.bytes_in = v.trim().parse().ok(),
            "out" => ev.bytes_out = v.trim().parse().ok(),
            "cnt" => {
                if let Ok(n) = v.trim().parse::<u64>() {
                    ev.count = n.max(1);
                }
            }
            "rt" | "start" | "end" | "deviceReceiptTime" | "startTime" | "endTime"
                if time.is_none() =>
            {
                time = parse_any(v).map(|t| (t, TimeQuality::Zoned));
            }
            "c6a1" | "c6a2" | "c6a3" | "c6a4" => {
                let n = (k.as_bytes()[3] - b'0') as usize;
                v6[n].0 = parse_ip(v);
            }
            "c6a1Label" | "c6a2Label" | "c6a3Label" | "c6a4Label" => {
                let n = (k.as_bytes()[3] - b'0') as usize;
                v6[n].1 = raw;
            }
            _ if k.ends_with("utcTime") || k.ends_with("UtcTime") => {
                vendor_time = parse_any(v).map(|t| (t, TimeQuality::Zoned));
            }
            _ => {}
        }
    }
    // IPv6 custom addresses: by label, else c6a2 = source, c6a3 = destination.
    for (n, (ip, label)) in v6.iter().enumerate() {
        let Some(ip) = *ip else { continue };
        let role = if contains_ci(label, "source") {
            2
        } else if contains_ci(label, "dest") {
            3
        } else if label.is_empty() {
            n
        } else {
            0
        };
        match role {
            2 if ev.src_ip.is_none() => ev.src_ip = Some(ip),
            3 if ev.dst_ip.is_none() => ev.dst_ip = Some(ip),
            _ => push_other(&mut ev, ip),
        }
    }
    ev.user = duser.or(suser);
    let sig = unescape_header(h[4]);
    classify(&mut ev, &name, &sig);
    if ev.action.is_none() && ev.kind != EventKind::Auth {
        // `Threat Detected and Blocked`: the verdict is in the name.
        ev.action = parse_action(&name).filter(|a| *a != crate::model::Action::Allow);
    }
    c.pick_time(&mut ev, time.or(vendor_time));
    add_remaining_ips(&mut ev, ext);
    Ok(ev)
}

/// Kind (and auth outcome) from the event name and signature id.
pub(crate) fn classify(ev: &mut Event, name: &str, sig: &str) {
    let text = format!("{name} {sig}");
    let t = text.to_ascii_lowercase();
    let authish = [
        "login",
        "logon",
        "log on",
        "log in",
        "authentication",
        "sign in",
        "signin",
    ]
    .iter()
    .any(|w| t.contains(w));
    if authish {
        let fail = [
            "fail",
            "denied",
            "reject",
            "invalid",
            "bad ",
            "incorrect",
            "wrong",
        ]
        .iter()
        .any(|w| t.contains(w));
        let ok = [
            "success",
            "succeeded",
            "accepted",
            "permitted",
            "logged in",
            "allowed",
        ]
        .iter()
        .any(|w| t.contains(w));
        if fail || ok {
            ev.kind = EventKind::Auth;
            ev.auth = Some(if fail {
                AuthOutcome::Failure
            } else {
                AuthOutcome::Success
            });
            return;
        }
    }
    let alertish = [
        "threat",
        "attack",
        "intrusion",
        "malware",
        "virus",
        "exploit",
        "scan",
        "trojan",
        "botnet",
    ]
    .iter()
    .any(|w| t.contains(w));
    ev.kind = if alertish {
        EventKind::Alert
    } else if ev.src_ip.is_some() || ev.dst_ip.is_some() {
        EventKind::Connection
    } else {
        EventKind::Other
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_pairs() {
        let p = extension_pairs(r"src=1.2.3.4 msg=a b\=c d=e request=http://x/?a\=1");
        assert_eq!(
            p,
            vec![
                ("src", "1.2.3.4"),
                ("msg", r"a b\=c"),
                ("d", "e"),
                ("request", r"http://x/?a\=1")
            ]
        );
        assert_eq!(unescape_value(r"a b\=c\\d"), "a b=c\\d");
    }

    #[test]
    fn header_escapes() {
        let (h, ext) = split_header(r"0|Ven\|dor|P|1|sig|Name|5|src=1.2.3.4").unwrap();
        assert_eq!(unescape_header(h[1]), "Ven|dor");
        assert_eq!(ext, "src=1.2.3.4");
        assert!(split_header("0|a|b").is_err());
    }
}
