//! pfSense / OPNsense `filterlog` CSV (pfSense 2.2+ layout, shared by
//! OPNsense):
//!
//! `rule,subrule,anchor,tracker,interface,reason,action,direction,ipver,` then
//! for IPv4 `tos,ecn,ttl,id,offset,flags,proto_id,proto,length,src,dst,` and
//! for IPv6 `class,flowlabel,hoplimit,proto,proto_id,length,src,dst,`, then
//! for TCP/UDP `sport,dport,datalen` and for TCP `tcpflags,seq,ack,window,urg,options`.
//!
//! `pass` → allow, `block` → deny, `reject` → reject. TCP flags (`S`, `SA`,
//! `FA`...) become `conn_state` by name (`SYN`, `SYN ACK`, ...).

use super::Ctx;
use super::fields::{parse_ip, parse_port, parse_proto, tcp_flags_from_letters};
use crate::model::{Action, Event, EventKind};

/// Does the text look like a filterlog record?
pub(crate) fn looks_like(s: &str) -> bool {
    (s.contains(",match,") || s.contains(",state,") || s.contains(",rdr,") || s.contains(",nat,"))
        && (s.contains(",block,") || s.contains(",pass,") || s.contains(",reject,"))
}

/// Parse a filterlog CSV record (the message, or a raw line).
pub(crate) fn parse(c: &Ctx) -> Option<Event> {
    let mut text = if c.raw { c.body } else { c.msg };
    // A raw line may still have `filterlog[123]: ` or `filterlog: ` in front.
    if let Some(i) = text.find("filterlog")
        && let Some(j) = text[i..].find(": ")
    {
        text = &text[i + j + 2..];
    }
    let f: Vec<&str> = text.trim().split(',').collect();
    if f.len() < 9 {
        return None;
    }
    let mut ev = Event::new(EventKind::Connection);
    ev.action = match f[6] {
        "pass" => Some(Action::Allow),
        "block" => Some(Action::Deny),
        "reject" => Some(Action::Reject),
        _ => None,
    };
    let (src, dst, proto, rest) = match f[8] {
        "4" if f.len() >= 20 => (f[18], f[19], f[16], 20),
        "6" if f.len() >= 17 => (f[15], f[16], f[12], 17),
        _ => return None,
    };
    ev.src_ip = parse_ip(src);
    ev.dst_ip = parse_ip(dst);
    if ev.src_ip.is_none() && ev.dst_ip.is_none() {
        return None;
    }
    ev.proto = parse_proto(proto);
    let pl = proto.to_ascii_lowercase();
    if (pl == "tcp" || pl == "udp") && f.len() > rest + 1 {
        ev.src_port = parse_port(f[rest]);
        ev.dst_port = parse_port(f[rest + 1]);
    }
    if pl == "tcp" && f.len() > rest + 3 {
        ev.conn_state = tcp_flags_from_letters(f[rest + 3]);
    }
    ev.time = c.time;
    Some(ev)
}
