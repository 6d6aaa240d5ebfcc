//! Shared helpers: run a decoder over a file, and an independent IP scan of
//! raw lines to check that every address of a record reaches its event.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use orbwatch_event::decoders::{Decoded, DecoderConfig, by_name};
use orbwatch_event::model::Event;

/// A bundled test file (tests/data/logs-a).
pub fn data(name: &str) -> Vec<u8> {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/logs-a"
    ))
    .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A corpus file read in place (GPL/LGPL material is not copied). `None`
/// (after saying so) when ../shared/corpus is absent.
pub fn corpus(rel: &str) -> Option<Vec<u8>> {
    let root = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus"
    ));
    if !root.is_dir() {
        println!("skipped: ../shared/corpus not found");
        return None;
    }
    let p = root.join(rel);
    Some(std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

/// The lines of a file, without terminators (a final newline ends the last
/// line, it does not start an empty one).
pub fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    let mut v: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    if v.last().is_some_and(|l| l.is_empty()) {
        v.pop();
    }
    v
}

/// What a decoder made of a file.
pub struct Run<'a> {
    /// (1-based line, raw line, event)
    pub events: Vec<(usize, &'a [u8], Event)>,
    pub skips: usize,
    /// (1-based line, reason)
    pub rejects: Vec<(usize, String)>,
}

impl Run<'_> {
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.events.len(), self.skips, self.rejects.len())
    }

    /// The event decoded from 1-based line `n`.
    pub fn at(&self, n: usize) -> &Event {
        &self
            .events
            .iter()
            .find(|(l, _, _)| *l == n)
            .unwrap_or_else(|| panic!("no event at line {n}"))
            .2
    }
}

pub fn run<'a>(decoder: &str, bytes: &'a [u8]) -> Run<'a> {
    run_cfg(decoder, bytes, &DecoderConfig::default())
}

pub fn run_cfg<'a>(decoder: &str, bytes: &'a [u8], cfg: &DecoderConfig) -> Run<'a> {
    let info = by_name(decoder).unwrap_or_else(|| panic!("no decoder {decoder}"));
    let mut d = (info.make)(cfg);
    let mut r = Run {
        events: Vec::new(),
        skips: 0,
        rejects: Vec::new(),
    };
    for (i, l) in lines(bytes).into_iter().enumerate() {
        match d.decode(l) {
            Ok(Decoded::Event(e)) => r.events.push((i + 1, l, *e)),
            Ok(Decoded::Skip) => r.skips += 1,
            Err(e) => r.rejects.push((i + 1, e.0)),
        }
    }
    r
}

/// Every address of an event, whatever its role.
pub fn event_ips(e: &Event) -> BTreeSet<IpAddr> {
    e.addresses().map(|(a, _)| a).collect()
}

fn word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn norm(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// An independent, deliberately simple scan for address tokens: `grep -w`
/// boundaries, no part of a longer dotted number, no leading zeros; a
/// reverse-DNS name (`4.3.2.1.in-addr.arpa`) stands for the address it
/// names (1.2.3.4), not for its reversed digits.
pub fn scan_ips(line: &[u8]) -> BTreeSet<IpAddr> {
    let mut out = BTreeSet::new();
    let n = line.len();
    // IPv4
    let mut i = 0;
    while i < n {
        let c = line[i];
        let after_digit_dot = i >= 2 && line[i - 1] == b'.' && line[i - 2].is_ascii_digit();
        let left_ok = i == 0 || !(word(line[i - 1]) || after_digit_dot);
        if !(c.is_ascii_digit() && left_ok) {
            i += 1;
            continue;
        }
        let mut j = i;
        let mut groups: Vec<&[u8]> = Vec::new();
        loop {
            let s = j;
            while j < n && line[j].is_ascii_digit() {
                j += 1;
            }
            groups.push(&line[s..j]);
            if j + 1 < n && line[j] == b'.' && line[j + 1].is_ascii_digit() {
                j += 1;
                continue;
            }
            break;
        }
        let right_ok = j == n || !word(line[j]);
        if groups.len() == 4 && right_ok {
            let oct: Option<Vec<u8>> = groups
                .iter()
                .map(|g| {
                    if g.is_empty() || g.len() > 3 || (g.len() > 1 && g[0] == b'0') {
                        None
                    } else {
                        std::str::from_utf8(g).ok()?.parse::<u8>().ok()
                    }
                })
                .collect();
            if let Some(o) = oct {
                let rest = &line[j..];
                if rest.len() >= 13 && rest[..13].eq_ignore_ascii_case(b".in-addr.arpa") {
                    out.insert(IpAddr::V4(Ipv4Addr::new(o[3], o[2], o[1], o[0])));
                } else {
                    out.insert(IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], o[3])));
                }
            }
        }
        i = j.max(i + 1);
    }
    // IPv6
    let v6c = |b: u8| b.is_ascii_hexdigit() || b == b':' || b == b'.';
    let mut i = 0;
    while i < n {
        if !v6c(line[i]) {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < n && v6c(line[j]) {
            j += 1;
        }
        let left_ok = i == 0 || !word(line[i - 1]);
        let right_ok = j == n || !word(line[j]);
        let mut tok = &line[i..j];
        while tok.last() == Some(&b'.') {
            tok = &tok[..tok.len() - 1];
        }
        while tok.first() == Some(&b':') && tok.get(1) != Some(&b':') {
            tok = &tok[1..];
        }
        if left_ok
            && right_ok
            && tok.iter().filter(|b| **b == b':').count() >= 2
            && let Some(a) = std::str::from_utf8(tok)
                .ok()
                .and_then(|s| s.parse::<Ipv6Addr>().ok())
        {
            out.insert(norm(IpAddr::V6(a)));
        }
        i = j;
    }
    // ip6.arpa names.
    let s = String::from_utf8_lossy(line);
    for (p, _) in s.match_indices(".ip6.arpa") {
        let head = &s[..p];
        let nibbles: Vec<&str> = head.rsplit('.').take(32).collect();
        if nibbles.len() == 32 && nibbles.iter().all(|x| x.len() == 1) {
            let hex: String = nibbles.concat();
            if let Ok(v) = u128::from_str_radix(&hex, 16) {
                out.insert(norm(IpAddr::V6(Ipv6Addr::from(v))));
            }
        }
    }
    out
}

/// Check, record by record, that an event holds exactly the addresses an
/// independent scan finds in the raw line (after `strip` removes fields
/// the decoder deliberately does not search, such as user agents).
/// Returns the number of records checked.
pub fn assert_ips_match(r: &Run<'_>, strip: impl Fn(&[u8]) -> Vec<u8>, what: &str) -> usize {
    let mut bad = Vec::new();
    for (n, raw, ev) in &r.events {
        let want = scan_ips(&strip(raw));
        let got = event_ips(ev);
        if want != got {
            bad.push(format!(
                "{what}:{n}: scan {:?} event {:?}\n  {}",
                want,
                got,
                String::from_utf8_lossy(raw)
                    .chars()
                    .take(300)
                    .collect::<String>()
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} records differ:\n{}",
        bad.len(),
        bad.join("\n")
    );
    r.events.len()
}

/// No stripping.
pub fn whole(l: &[u8]) -> Vec<u8> {
    l.to_vec()
}

/// Remove the value of JSON key `key` (a string) from a raw line.
pub fn strip_json_key(l: &[u8], key: &str) -> Vec<u8> {
    let s = String::from_utf8_lossy(l).into_owned();
    let pat = format!("\"{key}\":\"");
    let Some(p) = s.find(&pat) else {
        return l.to_vec();
    };
    let start = p + pat.len();
    let b = s.as_bytes();
    let mut j = start;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => break,
            _ => j += 1,
        }
    }
    let j = j.min(b.len());
    let mut out = b[..start].to_vec();
    out.extend_from_slice(&b[j..]);
    out
}

/// Run a decoder over a bundled file (kept for the whole test run).
pub fn run_data(decoder: &str, name: &str) -> Run<'static> {
    let bytes: &'static [u8] = Box::leak(data(name).into_boxed_slice());
    run(decoder, bytes)
}
