//! Fast extraction of IPv4/IPv6 tokens from raw bytes, with strict
//! boundaries: `1.2.3.4` is not found inside `11.2.3.45`, `1.2.3.4.5` or
//! `ip1.2.3.4`, which is where `zgrep -f` goes wrong.
//!
//! Used by the last-resort text decoder and by `hunt`'s record pre-filter,
//! so it is written for speed: it jumps between `.` and `:` with `memchr`
//! instead of looking at every byte, and it allocates nothing.
//!
//! Boundaries follow `grep -w`: the byte before and after an address must
//! not be a word character (`[0-9A-Za-z_]`). An IPv4 address must also not
//! be part of a longer dotted number (`1.2.3.4.5` is a version string).
//! Octets with leading zeros (`192.030.0.6`, as some loggers and fail2ban's
//! tests write them) are read as decimal, the way `grepcidr` and most log
//! tools read them, not as octal.
//! IPv4-mapped IPv6 is reported once, as the IPv4, in its dotted form
//! (`::ffff:1.2.3.4`) and in its hex forms (`::ffff:102:304`,
//! `0:0:0:0:0:ffff:0102:0304`), so that the fast sweep and the full decode
//! count the same address the same way.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[inline]
fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

#[inline]
fn is_v6_char(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b':' || b == b'.'
}

/// Call `f(addr, start, end)` for every IP address token in `line`, in
/// order of position; `line[start..end]` is the token.
pub fn for_each_ip(line: &[u8], mut f: impl FnMut(IpAddr, usize, usize)) {
    let n = line.len();
    let mut pos = 0;
    // Colons before this offset belong to an IPv6 candidate already examined.
    let mut v6_seen_until = 0;
    while pos < n {
        let Some(rel) = memchr::memchr2(b'.', b':', &line[pos..]) else {
            break;
        };
        let p = pos + rel;
        if line[p] == b'.' {
            if let Some((v4, s, e)) = ipv4_at_dot(line, p) {
                f(IpAddr::V4(v4), s, e);
                pos = e;
                continue;
            }
        } else if p >= v6_seen_until {
            let (found, s, e, run_end) = ipv6_around(line, p);
            // Every colon of this run has now been looked at.
            v6_seen_until = run_end;
            if let Some(ip) = found {
                f(ip, s, e);
                pos = e.max(p + 1);
                continue;
            }
        }
        pos = p + 1;
    }
}

/// Like [`for_each_ip`], IPv4 only: for callers whose indicators hold no
/// IPv6 address, this skips the colon runs (clock times, tags) entirely.
/// IPv4-mapped IPv6 is still found, as its IPv4: the dotted form by the dot
/// scan, the hex forms (`::ffff:102:304`) by a search for `ffff:` (or
/// `FFFF:`; mixed case is not looked for), reported after the dotted
/// addresses of the line.
pub fn for_each_ipv4(line: &[u8], mut f: impl FnMut(Ipv4Addr, usize, usize)) {
    let n = line.len();
    let mut pos = 0;
    while pos < n {
        let Some(rel) = memchr::memchr(b'.', &line[pos..]) else {
            break;
        };
        let p = pos + rel;
        if let Some((v4, s, e)) = ipv4_at_dot(line, p) {
            f(v4, s, e);
            pos = e;
        } else {
            pos = p + 1;
        }
    }
    for finder in [&*FFFF_LOWER, &*FFFF_UPPER] {
        let mut seen_until = 0;
        for h in finder.find_iter(line) {
            let colon = h + 4;
            if colon < seen_until {
                continue;
            }
            let (found, s, e, run_end) = ipv6_around(line, colon);
            seen_until = run_end;
            if let Some(IpAddr::V4(v4)) = found {
                f(v4, s, e);
            }
        }
    }
}

static FFFF_LOWER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"ffff:"));
static FFFF_UPPER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"FFFF:"));

/// Collect every IP token of `line` (convenience for tests and decoders).
pub fn ips(line: &[u8]) -> Vec<IpAddr> {
    let mut v = Vec::new();
    for_each_ip(line, |a, _, _| v.push(a));
    v
}

/// Try to read an IPv4 address whose first dot is at `p`.
#[inline]
fn ipv4_at_dot(line: &[u8], p: usize) -> Option<(Ipv4Addr, usize, usize)> {
    let n = line.len();
    let mut s = p;
    while s > 0 && line[s - 1].is_ascii_digit() && p - s < 4 {
        s -= 1;
    }
    let lead = p - s;
    if lead == 0 || lead > 3 {
        return None;
    }
    if s > 0 {
        let b = line[s - 1];
        if is_word(b) || b == b'.' {
            return None;
        }
    }
    let mut octets = [0u8; 4];
    let mut i = s;
    for (j, octet) in octets.iter_mut().enumerate() {
        let start = i;
        let mut val: u32 = 0;
        while i < n && line[i].is_ascii_digit() && i - start < 4 {
            val = val * 10 + u32::from(line[i] - b'0');
            i += 1;
        }
        let len = i - start;
        if len == 0 || len > 3 || val > 255 {
            return None;
        }
        *octet = val as u8;
        if j < 3 {
            if i < n && line[i] == b'.' {
                i += 1;
            } else {
                return None;
            }
        }
    }
    if i < n {
        let b = line[i];
        if is_word(b) || (b == b'.' && i + 1 < n && line[i + 1].is_ascii_digit()) {
            return None;
        }
    }
    Some((Ipv4Addr::from(octets), s, i))
}

/// Examine the run of IPv6 characters around the colon at `p`. Returns the
/// address if the run holds one, the token's bounds, and the run's end.
fn ipv6_around(line: &[u8], p: usize) -> (Option<IpAddr>, usize, usize, usize) {
    let n = line.len();
    let mut s = p;
    while s > 0 && is_v6_char(line[s - 1]) && p - s < 48 {
        s -= 1;
    }
    let mut e = p;
    while e < n && is_v6_char(line[e]) && e - s < 64 {
        e += 1;
    }
    let run = &line[s..e];
    if memchr::memchr_iter(b':', run).nth(1).is_none() {
        return (None, s, e, e);
    }
    if e < n && is_word(line[e]) {
        return (None, s, e, e);
    }
    let found = if s > 0 && is_word(line[s - 1]) {
        // `src:2001:db8::1`: the run starts inside a word; retry after its
        // first colon.
        memchr::memchr(b':', run)
            .and_then(|k| parse_v6(&run[k + 1..]).map(|(a, off)| (a, k + 1 + off)))
    } else {
        parse_v6(run)
    };
    match found {
        Some((addr, off)) => {
            let len = v6_token_len(&run[off..]);
            (Some(addr), s + off, s + off + len, e)
        }
        None => (None, s, e, e),
    }
}

/// Length of the address proper in a run (without trailing `.`/`:`).
fn v6_token_len(run: &[u8]) -> usize {
    let mut len = run.len();
    while len > 0 && run[len - 1] == b'.' {
        len -= 1;
    }
    if len >= 2 && run[len - 1] == b':' && run[len - 2] != b':' {
        len -= 1;
    }
    len
}

/// Parse a run as IPv6, tolerating a trailing `.` or a single trailing `:`.
/// Refuses the unspecified address (`::` is common in code and text) and
/// IPv4-mapped addresses in dotted form (reported as IPv4 by the dot
/// scanner); an IPv4-mapped address in hex form is returned as its IPv4.
fn parse_v6(run: &[u8]) -> Option<(IpAddr, usize)> {
    let len = v6_token_len(run);
    let bytes = &run[..len];
    // Cheap shape check before the full parser: an IPv6 address has a `::`
    // or exactly seven colons (six with an embedded IPv4). This turns away
    // clock times (`14:10:21`) and MAC addresses without parsing them.
    let colons = memchr::memchr_iter(b':', bytes).count();
    let double = memchr::memmem::find(bytes, b"::").is_some();
    let dotted = memchr::memchr(b'.', bytes).is_some();
    if colons < 2 || !(double || colons == 7 || (dotted && colons == 6)) {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let addr: Ipv6Addr = text.parse().ok()?;
    if addr.is_unspecified() {
        return None;
    }
    match addr.to_ipv4_mapped() {
        Some(_) if dotted => None,
        Some(v4) => Some((IpAddr::V4(v4), 0)),
        None => Some((IpAddr::V6(addr), 0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(line: &str) -> Vec<String> {
        ips(line.as_bytes()).iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn strict_ipv4_boundaries() {
        assert_eq!(s("from 1.2.3.4 port 22"), ["1.2.3.4"]);
        assert_eq!(s("11.2.3.45"), ["11.2.3.45"]);
        assert!(s("1.2.3.4.5").is_empty());
        assert!(s("v1.2.3.4").is_empty());
        assert!(s("1.2.3.256").is_empty());
        assert_eq!(s("192.030.0.6"), ["192.30.0.6"]);
        assert!(s("1234.2.3.4").is_empty());
        assert_eq!(s("SRC=10.0.0.1 DST=10.0.0.2"), ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(s("1.2.3.4:22->5.6.7.8:80"), ["1.2.3.4", "5.6.7.8"]);
        assert_eq!(s("end of sentence 8.8.8.8."), ["8.8.8.8"]);
        assert_eq!(s("[client 9.9.9.9]"), ["9.9.9.9"]);
        assert_eq!(s("'root'@'1.2.3.4'"), ["1.2.3.4"]);
    }

    #[test]
    fn ipv6_tokens() {
        assert_eq!(s("from 2001:db8::1 port 22"), ["2001:db8::1"]);
        assert_eq!(s("[2001:db8::1]:443"), ["2001:db8::1"]);
        assert_eq!(s("src:2001:db8::2 x"), ["2001:db8::2"]);
        assert_eq!(s("::ffff:1.2.3.4"), ["1.2.3.4"]);
        assert_eq!(s("fe80::1%eth0"), ["fe80::1"]);
        assert!(s("Nov 29 04:32:02 host sshd[1]: x").is_empty());
        assert!(s("00:1a:2b:3c:4d:5e").is_empty());
        assert!(s("std::net::IpAddr").is_empty());
        assert_eq!(s("addr 2001:db8::1: closed"), ["2001:db8::1"]);
    }

    #[test]
    fn positions_are_tokens() {
        let line = b"a 1.2.3.4 b 2001:db8::5 c";
        let mut got = Vec::new();
        for_each_ip(line, |_, st, en| {
            got.push(std::str::from_utf8(&line[st..en]).unwrap().to_string())
        });
        assert_eq!(got, ["1.2.3.4", "2001:db8::5"]);
    }

    #[test]
    fn every_prefix_and_suffix_terminates() {
        // Each cut of a tricky line must finish (no scanner loop) and give
        // tokens that parse back to what was reported.
        let line = b"addr 2001:db8::1: closed [fe80::1%eth0]:22 ::ffff:10.0.0.1 1.2.3.4:80 a::b::c 14:10:21";
        for i in 0..=line.len() {
            for part in [&line[..i], &line[i..]] {
                for_each_ip(part, |a, st, en| {
                    assert!(st < en && en <= part.len());
                    let tok = std::str::from_utf8(&part[st..en]).unwrap();
                    assert!(tok.parse::<IpAddr>().is_ok() || a.is_ipv4(), "{tok}");
                });
            }
        }
    }

    proptest::proptest! {
        /// Lines made of the characters addresses are made of: the scanner
        /// always terminates, reports tokens in order, and each token reads
        /// back as an address.
        #[test]
        fn scanner_terminates_on_address_soup(v in proptest::collection::vec(
            proptest::sample::select(b"0123456789abcdef.:[]% x_".to_vec()), 0..120)) {
            let mut last = 0;
            for_each_ip(&v, |_, st, en| {
                assert!(st >= last && st < en && en <= v.len());
                last = en;
            });
        }
    }

    #[test]
    fn hex_mapped_ipv4_is_its_ipv4_in_both_scans() {
        let line = b"a ::ffff:102:304 b 0:0:0:0:0:ffff:0102:0304 [::FFFF:C633:6407]:22 ::ffff:ffff:ffff x ::ffff:1.2.3.4";
        let want = [
            "1.2.3.4",
            "1.2.3.4",
            "198.51.100.7",
            "255.255.255.255",
            "1.2.3.4",
        ];
        assert_eq!(s(std::str::from_utf8(line).unwrap()), want);
        let mut v4: Vec<String> = Vec::new();
        for_each_ipv4(line, |a, st, e| {
            assert!(std::str::from_utf8(&line[st..e]).is_ok());
            v4.push(a.to_string())
        });
        v4.sort();
        let mut want = want.map(String::from).to_vec();
        want.sort();
        assert_eq!(v4, want);
        // Not mapped: a plain IPv6 address and clock times stay what they are.
        assert_eq!(
            s("2001:db8::ffff:102:304 14:10:21"),
            ["2001:db8::ffff:102:304"]
        );
    }

    #[test]
    fn ipv4_only_scan_agrees_with_full_scan() {
        let line = b"a 1.2.3.4 b 2001:db8::5 ::ffff:9.9.9.9 11.2.3.45 1.2.3.4.5 [8.8.8.8]:53";
        let full: Vec<IpAddr> = ips(line).into_iter().filter(|a| a.is_ipv4()).collect();
        let mut v4 = Vec::new();
        for_each_ipv4(line, |a, _, _| v4.push(IpAddr::V4(a)));
        assert_eq!(full, v4);
    }

    #[test]
    fn garbage_does_not_panic() {
        for l in [
            &b""[..],
            b".",
            b":",
            b"::",
            b"1.",
            b".1",
            b"1.2.3.",
            b"::::::::::::::::::",
            b"\xff\xfe1.2.3.4\x00",
        ] {
            let _ = ips(l);
        }
        assert_eq!(s("\u{0}1.2.3.4\u{0}"), ["1.2.3.4"]);
    }
}
