//! IBM QRadar Log Event Extended Format, raw or behind a syslog header:
//!
//! * LEEF 1.0: `LEEF:1.0|Vendor|Product|Version|EventID|k=v<TAB>k=v...`;
//! * LEEF 2.0: `LEEF:2.0|Vendor|Product|Version|EventID|Delimiter|k=v...`,
//!   the delimiter given as a character (`^`, a space) or in hex (`x5E`,
//!   `0x5E`, `\t`); empty means tab.
//!
//! A piece without `=` is glued to the previous value (values with the
//! delimiter in them, as PAN-OS sends with a space delimiter).
//!
//! Keys read: `src`, `dst`, `srcPort`, `dstPort`, `proto`, `usrName`,
//! `action` (vendor extension), `srcPreNAT`/`srcPostNAT`/`dstPreNAT`/
//! `dstPostNAT` (to `other_ips`), `srcBytes`/`dstBytes`, `srcPackets`/
//! `dstPackets`, `identHostName`, `url`, `devTime` with `devTimeFormat`
//! (Java `SimpleDateFormat` patterns) or, without a format, epoch
//! milliseconds, `MMM dd yyyy HH:mm:ss` or ISO. The event kind follows the
//! event id and category, as for CEF.

use super::syslog::fields::{
    add_remaining_ips, nonempty, parse_action, parse_ip, parse_port, parse_proto, push_other,
};
use super::syslog::timestamp::parse_any;
use super::syslog::{BodyDecoder, Ctx, TimeQuality, sniff_share};
use super::{DecoderConfig, DecoderInfo};
use crate::model::{Event, EventKind};

/// Registration of the LEEF decoder.
pub const INFO: DecoderInfo = DecoderInfo {
    name: "leef",
    description: "IBM QRadar Log Event Extended Format 1.0/2.0, raw or behind a syslog header",
    sniff,
    make: |cfg: &DecoderConfig| Box::new(BodyDecoder::new("leef", cfg, parse)),
};

/// How sure detection is that these lines are LEEF.
fn sniff(lines: &[&[u8]]) -> u8 {
    sniff_share(lines, |l| memchr::memmem::find(l, b"LEEF:").is_some())
}

/// The syslog decoder's entry point for LEEF carried in syslog.
pub(crate) fn parse_record(text: &str, c: &Ctx) -> Option<Event> {
    parse(text, c).ok()
}

/// The delimiter of a LEEF 2.0 header field.
fn delimiter(f: &str) -> Option<char> {
    if f.is_empty() {
        return Some('\t');
    }
    if f == "\\t" {
        return Some('\t');
    }
    let hex = f
        .strip_prefix("0x")
        .or_else(|| f.strip_prefix("0X"))
        .or_else(|| f.strip_prefix('x'))
        .or_else(|| f.strip_prefix('X'));
    if let Some(h) = hex
        && !h.is_empty()
        && h.len() <= 4
        && let Ok(n) = u32::from_str_radix(h, 16)
    {
        return char::from_u32(n);
    }
    let mut cs = f.chars();
    match (cs.next(), cs.next()) {
        (Some(c), None) => Some(c),
        _ => None,
    }
}

/// Parse the LEEF record in `text`.
pub(crate) fn parse(text: &str, c: &Ctx) -> Result<Event, String> {
    let i = text.find("LEEF:").ok_or("no LEEF header")?;
    let rec = &text[i + 5..];
    let mut parts = rec.splitn(6, '|');
    let version = parts.next().unwrap_or("").trim();
    let _vendor = parts.next().ok_or("LEEF header has 1 of 5 fields")?;
    let _product = parts.next().ok_or("LEEF header has 2 of 5 fields")?;
    let _pversion = parts.next().ok_or("LEEF header has 3 of 5 fields")?;
    let event_id = parts.next().ok_or("LEEF header has 4 of 5 fields")?;
    let mut rest = parts.next().unwrap_or("");
    let mut delim = '\t';
    if version.starts_with('2') {
        // `Delimiter|attrs`; without a second `|` there is no delimiter field.
        if let Some((d, attrs)) = rest.split_once('|')
            && let Some(dc) = delimiter(d)
        {
            delim = dc;
            rest = attrs;
        }
    } else if !version.starts_with('1') {
        return Err(format!("LEEF version {version:?} unknown"));
    }
    // LEEF 1.0 in the wild is often space-separated when tabs were lost.
    if delim == '\t' && !rest.contains('\t') {
        delim = ' ';
    }
    let pairs = attributes(rest, delim);
    let mut ev = Event::new(EventKind::Other);
    let mut dev_time = "";
    let mut dev_fmt = "";
    let mut action = "";
    let mut cat = "";
    let mut packets = None::<u64>;
    for (k, v) in &pairs {
        let v = v.trim();
        match *k {
            "src" => ev.src_ip = parse_ip(v),
            "dst" => ev.dst_ip = parse_ip(v),
            "srcPort" => ev.src_port = parse_port(v),
            "dstPort" => ev.dst_port = parse_port(v),
            "proto" => ev.proto = parse_proto(v),
            "usrName" | "accountName" if ev.user.is_none() => {
                ev.user = nonempty(v);
            }
            "action" | "act" => action = v,
            "cat" => cat = v,
            "srcPreNAT" | "srcPostNAT" | "dstPreNAT" | "dstPostNAT" => {
                if let Some(ip) = parse_ip(v) {
                    push_other(&mut ev, ip);
                }
            }
            "srcBytes" => ev.bytes_out = v.parse().ok(),
            "dstBytes" => ev.bytes_in = v.parse().ok(),
            "srcPackets" | "dstPackets" => {
                if let Ok(n) = v.parse::<u64>() {
                    packets = Some(packets.unwrap_or(0) + n);
                }
            }
            "identHostName" => ev.domain = nonempty(v),
            "url" => ev.url = nonempty(v),
            "devTime" => dev_time = v,
            "devTimeFormat" => dev_fmt = v,
            _ => {}
        }
    }
    ev.packets = packets;
    ev.action = parse_action(action);
    super::cef::classify(&mut ev, &format!("{event_id} {cat}"), action);
    let t = dev_time_parse(dev_time, dev_fmt).map(|t| (t, TimeQuality::Zoned));
    c.pick_time(&mut ev, t);
    add_remaining_ips(&mut ev, rest);
    Ok(ev)
}

/// `k=v` pieces split on `delim`; a piece without `=` continues the
/// previous value.
fn attributes(s: &str, delim: char) -> Vec<(&str, &str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    let mut start_of_value: Option<(usize, usize)> = None; // (key start, value start)
    let mut key_end = 0;
    let mut pos = 0;
    let mut pieces: Vec<(usize, usize)> = Vec::new();
    for p in s.split(delim) {
        pieces.push((pos, pos + p.len()));
        pos += p.len() + delim.len_utf8();
    }
    for &(a, b) in &pieces {
        let piece = &s[a..b];
        let eq = piece.find('=');
        let is_key = eq.is_some_and(|e| {
            e > 0
                && piece[..e]
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
        });
        if is_key {
            if let Some((ks, vs)) = start_of_value.take() {
                out.push((
                    &s[ks..key_end],
                    &s[vs..a.saturating_sub(delim.len_utf8()).max(vs)],
                ));
            }
            let e = eq.unwrap_or(0);
            key_end = a + e;
            start_of_value = Some((a, a + e + 1));
        }
    }
    if let Some((ks, vs)) = start_of_value {
        out.push((&s[ks..key_end], &s[vs.min(s.len())..]));
    }
    out
}

/// `devTime` with a Java `SimpleDateFormat` pattern, or in a common form.
fn dev_time_parse(v: &str, fmt: &str) -> Option<jiff::Timestamp> {
    if v.is_empty() {
        return None;
    }
    if !fmt.is_empty() {
        let f = java_to_strtime(fmt);
        if let Ok(tm) = jiff::fmt::strtime::parse(&f, v) {
            if let Ok(t) = tm.to_timestamp() {
                return Some(t);
            }
            if let Ok(dt) = tm.to_datetime()
                && let Ok(t) = jiff::tz::TimeZone::UTC.to_timestamp(dt)
            {
                return Some(t);
            }
        }
    }
    parse_any(v)
}

/// Translate a Java date pattern to strtime.
fn java_to_strtime(j: &str) -> String {
    let b: Vec<char> = j.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == '\'' {
            // quoted literal
            i += 1;
            while i < b.len() && b[i] != '\'' {
                if b[i] == '%' {
                    out.push('%');
                }
                out.push(b[i]);
                i += 1;
            }
            i += 1;
            continue;
        }
        let mut n = 1;
        while i + n < b.len() && b[i + n] == c {
            n += 1;
        }
        let spec = match (c, n) {
            ('y', 2) => "%y",
            ('y', _) => "%Y",
            ('M', 1 | 2) => "%m",
            ('M', 3) => "%b",
            ('M', _) => "%B",
            ('d', _) => "%d",
            ('H', _) | ('k', _) => "%H",
            ('h', _) | ('K', _) => "%I",
            ('m', _) => "%M",
            ('s', _) => "%S",
            ('S', _) => "%f",
            ('a', _) => "%p",
            ('E', 1..=3) => "%a",
            ('E', _) => "%A",
            ('Z', _) => "%z",
            ('X', 1) => "%z",
            ('X', _) | ('x', _) => "%:z",
            ('z', _) => "%Z",
            _ => {
                for _ in 0..n {
                    if c == '%' {
                        out.push('%');
                    }
                    out.push(c);
                }
                i += n;
                continue;
            }
        };
        out.push_str(spec);
        i += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attrs() {
        let a = attributes("src=1.2.3.4^dst=5.6.7.8^msg=a^b", '^');
        assert_eq!(
            a,
            vec![("src", "1.2.3.4"), ("dst", "5.6.7.8"), ("msg", "a^b")]
        );
        let a = attributes("OS=16.04.5 LTS x=1", ' ');
        assert_eq!(a, vec![("OS", "16.04.5 LTS"), ("x", "1")]);
        assert_eq!(delimiter("x5E"), Some('^'));
        assert_eq!(delimiter("0x09"), Some('\t'));
        assert_eq!(delimiter("^"), Some('^'));
    }

    #[test]
    fn java_formats() {
        assert_eq!(java_to_strtime("MMM dd yyyy HH:mm:ss"), "%b %d %Y %H:%M:%S");
        assert_eq!(
            java_to_strtime("yyyy-MM-dd'T'HH:mm:ss.SSSZ"),
            "%Y-%m-%dT%H:%M:%S.%f%z"
        );
        assert_eq!(
            dev_time_parse("Oct 26 2025 19:59:41", "MMM dd yyyy HH:mm:ss"),
            Some("2025-10-26T19:59:41Z".parse().unwrap())
        );
    }
}
