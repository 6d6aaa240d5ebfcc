//! Linux netfilter `LOG` target lines as the kernel writes them (iptables,
//! nftables, UFW, firewalld, Proxmox VE): `[prefix] IN=eth0 OUT=
//! MAC=... SRC=1.2.3.4 DST=5.6.7.8 ... PROTO=TCP SPT=1234 DPT=22 ... SYN`.
//!
//! The action comes from the log prefix: `[UFW BLOCK]` → deny, `[UFW
//! ALLOW]` → allow, `[UFW AUDIT]` → none; otherwise a prefix containing
//! DROP, REJECT, BLOCK/DENY or ACCEPT/ALLOW (any case). TCP flags become
//! `conn_state` (`SYN` alone for a connection attempt). Proxmox's own log
//! (`0 3 PVEFW-HOST-IN 20/Jun/2022:13:09:14 +0200 policy DROP: IN=...`) is
//! read without a syslog envelope.

use super::Ctx;
use super::fields::{parse_ip, parse_port, parse_proto};
use super::timestamp::parse_clf;
use super::{TimeQuality, quality_of};
use crate::model::{Action, Event, EventKind};

/// Does the text carry a netfilter packet description?
pub(crate) fn looks_like(s: &str) -> bool {
    s.contains("SRC=") && s.contains("DST=") && (s.contains("PROTO=") || s.contains("IN="))
}

/// Parse a netfilter line (the kernel message, or a raw Proxmox line).
pub(crate) fn parse(c: &Ctx) -> Option<Event> {
    let mut text = if c.raw { c.body } else { c.msg };
    if !looks_like(text) {
        return None;
    }
    let mut body_time = None;
    if c.raw {
        // Proxmox: `VMID LEVEL CHAIN DD/Mon/YYYY:hh:mm:ss +zzzz rest`.
        let mut off = 0;
        for (n, tok) in text.split(' ').enumerate().take(4) {
            if let Some((ct, len)) = parse_clf(&text.as_bytes()[off..]) {
                body_time = c.civil(&ct).map(|(t, _)| (t, quality_of(&ct)));
                text = text[off + len..].trim_start();
                break;
            }
            let _ = n;
            off += tok.len() + 1;
            if off >= text.len() {
                break;
            }
        }
    }
    // Kernel uptime `[50028442.088484] `.
    let t = text.trim_start();
    let t = if t.starts_with('[')
        && t.as_bytes()
            .get(1)
            .is_some_and(|b| *b == b' ' || b.is_ascii_digit())
    {
        t.find(']').map(|p| t[p + 1..].trim_start()).unwrap_or(t)
    } else {
        t
    };
    let mut ev = Event::new(EventKind::Connection);
    let mut prefix_end = None;
    let mut flags: Vec<&str> = Vec::new();
    let mut off = 0;
    for tok in t.split(' ') {
        let start = off;
        off += tok.len() + 1;
        if tok.is_empty() {
            continue;
        }
        if let Some((k, v)) = tok.split_once('=') {
            let is_key = !k.is_empty() && k.bytes().all(|b| b.is_ascii_uppercase() || b == b'_');
            if !is_key {
                continue;
            }
            if prefix_end.is_none() {
                prefix_end = Some(start);
            }
            match k {
                "SRC" => ev.src_ip = parse_ip(v),
                "DST" => ev.dst_ip = parse_ip(v),
                "SPT" => ev.src_port = parse_port(v),
                "DPT" => ev.dst_port = parse_port(v),
                "PROTO" => ev.proto = parse_proto(v),
                _ => {}
            }
        } else if prefix_end.is_some()
            && matches!(
                tok,
                "SYN" | "ACK" | "FIN" | "RST" | "PSH" | "URG" | "ECE" | "CWR"
            )
        {
            flags.push(tok);
        }
    }
    if ev.src_ip.is_none() && ev.dst_ip.is_none() {
        return None;
    }
    let prefix = &t[..prefix_end.unwrap_or(0).min(t.len())];
    ev.action = action_of_prefix(prefix);
    if !flags.is_empty() {
        ev.conn_state = Some(flags.join(" "));
    }
    match body_time {
        Some((tm, q)) if q >= c.time_q && q > TimeQuality::None => ev.time = Some(tm),
        _ => ev.time = c.time,
    }
    Some(ev)
}

/// The verdict a log prefix names.
fn action_of_prefix(p: &str) -> Option<Action> {
    if p.is_empty() {
        return None;
    }
    let u = p.to_ascii_uppercase();
    if u.contains("UFW AUDIT") {
        return None;
    }
    if u.contains("DROP") {
        Some(Action::Drop)
    } else if u.contains("REJECT") {
        Some(Action::Reject)
    } else if u.contains("BLOCK") || u.contains("DENY") || u.contains("DENIED") {
        Some(Action::Deny)
    } else if u.contains("ACCEPT") || u.contains("ALLOW") || u.contains("PASS") {
        Some(Action::Allow)
    } else {
        None
    }
}
