//! Address intervals: the arithmetic under aggregation, the guard and diffs.
//!
//! A blocklist is a set of addresses, each with an expiry. Working on
//! inclusive intervals over `u128` (IPv4 addresses are stored in the low 32
//! bits) makes union, subtraction and the minimal CIDR cover simple and
//! exact; prefixes are only formed at the very end.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use jiff::Timestamp;

/// IPv4 or IPv6. Every interval belongs to one family; the two never mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// Address width in bits.
    pub fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// The last address of the family as an integer.
    pub fn max(self) -> u128 {
        match self {
            Family::V4 => u128::from(u32::MAX),
            Family::V6 => u128::MAX,
        }
    }

    pub fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }
}

/// An address as an integer (IPv4 in the low 32 bits).
pub fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The address `v` of `family`. Values above the family's range are cut.
pub fn u128_to_ip(family: Family, v: u128) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(v as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(v)),
    }
}

/// The interval a prefix covers.
pub fn net_bounds(net: IpNet) -> (Family, u128, u128) {
    (
        Family::of(net.addr()),
        ip_to_u128(net.network()),
        ip_to_u128(net.broadcast()),
    )
}

/// When an entry stops being valid. `Never` sorts after every instant, so
/// the maximum of a set of expiries is the longest-lived one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Expiry {
    At(Timestamp),
    Never,
}

impl Expiry {
    pub fn from_option(t: Option<Timestamp>) -> Expiry {
        t.map_or(Expiry::Never, Expiry::At)
    }

    pub fn as_option(self) -> Option<Timestamp> {
        match self {
            Expiry::At(t) => Some(t),
            Expiry::Never => None,
        }
    }
}

/// An inclusive interval of addresses with the expiry that applies to all
/// of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: u128,
    pub end: u128,
    pub expiry: Expiry,
}

/// Union of possibly overlapping spans into sorted, disjoint spans. Each
/// address keeps the latest expiry of the spans that contain it; adjacent
/// results with equal expiry are joined. O(n log n).
pub fn union_max_expiry(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_unstable_by_key(|s| (s.start, s.end));
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    let push = |out: &mut Vec<Span>, s: Span| {
        if let Some(last) = out.last_mut()
            && last.expiry == s.expiry
            && last.end.checked_add(1) == Some(s.start)
        {
            last.end = s.end;
            return;
        }
        out.push(s);
    };
    // Fast path for the common case: the next span does not overlap
    // anything still open, so no sweep state is needed.
    let mut ends: BinaryHeap<Reverse<(u128, usize)>> = BinaryHeap::new();
    let mut active: BTreeMap<Expiry, usize> = BTreeMap::new();
    let n = spans.len();
    let mut i = 0;
    let mut pos: u128 = 0;
    loop {
        if ends.is_empty() {
            if i == n {
                break;
            }
            // Disjoint run: if the next span does not touch the one after,
            // emit it directly.
            let s = spans[i];
            if i + 1 == n || spans[i + 1].start > s.end {
                push(&mut out, s);
                i += 1;
                continue;
            }
            pos = s.start;
        }
        while i < n && spans[i].start == pos {
            ends.push(Reverse((spans[i].end, i)));
            *active.entry(spans[i].expiry).or_insert(0) += 1;
            i += 1;
        }
        let Some(Reverse((min_end, _))) = ends.peek().copied() else {
            continue;
        };
        let seg_end = if i < n && spans[i].start <= min_end {
            spans[i].start - 1
        } else {
            min_end
        };
        let expiry = active
            .last_key_value()
            .map(|(e, _)| *e)
            .unwrap_or(Expiry::Never);
        push(
            &mut out,
            Span {
                start: pos,
                end: seg_end,
                expiry,
            },
        );
        while let Some(Reverse((e, idx))) = ends.peek().copied() {
            if e != seg_end {
                break;
            }
            ends.pop();
            let exp = spans[idx].expiry;
            if let Some(c) = active.get_mut(&exp) {
                *c -= 1;
                if *c == 0 {
                    active.remove(&exp);
                }
            }
        }
        match seg_end.checked_add(1) {
            Some(p) => pos = p,
            None => break,
        }
        if ends.is_empty() && i < n {
            // Continue with the next run at its own start.
            continue;
        }
    }
    out
}

/// Plain interval set: sorted, disjoint, non-adjacent inclusive intervals.
pub fn merge_intervals(mut iv: Vec<(u128, u128)>) -> Vec<(u128, u128)> {
    iv.sort_unstable();
    let mut out: Vec<(u128, u128)> = Vec::with_capacity(iv.len());
    for (s, e) in iv {
        if let Some(last) = out.last_mut()
            && (s <= last.1 || last.1.checked_add(1) == Some(s))
        {
            last.1 = last.1.max(e);
            continue;
        }
        out.push((s, e));
    }
    out
}

/// `spans` (sorted, disjoint) minus `holes` (sorted, disjoint): what is
/// left, keeping each piece's expiry.
pub fn subtract(spans: &[Span], holes: &[(u128, u128)]) -> Vec<Span> {
    let mut out = Vec::with_capacity(spans.len());
    let mut h = 0;
    for s in spans {
        while h < holes.len() && holes[h].1 < s.start {
            h += 1;
        }
        let mut start = s.start;
        let mut j = h;
        let mut done = false;
        while j < holes.len() && holes[j].0 <= s.end {
            let (hs, he) = holes[j];
            if hs > start {
                out.push(Span {
                    start,
                    end: hs - 1,
                    expiry: s.expiry,
                });
            }
            match he.checked_add(1) {
                Some(n) if n <= s.end => start = start.max(n),
                _ => {
                    done = true;
                    break;
                }
            }
            j += 1;
        }
        if !done {
            out.push(Span { start, ..*s });
        }
    }
    out
}

/// Plain interval difference `a − b` (both sorted and disjoint).
pub fn difference(a: &[(u128, u128)], b: &[(u128, u128)]) -> Vec<(u128, u128)> {
    let spans: Vec<Span> = a
        .iter()
        .map(|&(start, end)| Span {
            start,
            end,
            expiry: Expiry::Never,
        })
        .collect();
    subtract(&spans, b)
        .into_iter()
        .map(|s| (s.start, s.end))
        .collect()
}

/// Plain interval intersection of two sorted, disjoint lists.
pub fn intersection(a: &[(u128, u128)], b: &[(u128, u128)]) -> Vec<(u128, u128)> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        let s = a[i].0.max(b[j].0);
        let e = a[i].1.min(b[j].1);
        if s <= e {
            out.push((s, e));
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// The minimal list of prefixes covering exactly `[start, end]`, none
/// shorter than `/min_len` (a cap on width: wider blocks are cut into
/// `/min_len` pieces).
pub fn cidr_cover(family: Family, start: u128, end: u128, min_len: u8) -> Vec<IpNet> {
    let bits = u32::from(family.bits());
    let max_block = bits - u32::from(min_len.min(family.bits()));
    let mut out = Vec::new();
    let mut s = start;
    loop {
        // Largest aligned block at `s` that fits in [s, end].
        let align = if s == 0 {
            bits
        } else {
            s.trailing_zeros().min(bits)
        };
        let mut k = align.min(max_block);
        loop {
            // Last address of a 2^k block at s.
            let last = if k >= 128 {
                u128::MAX
            } else {
                s | ((1u128 << k) - 1)
            };
            if last <= end {
                break;
            }
            k -= 1;
        }
        let len = (bits - k) as u8;
        out.push(make_net(family, s, len));
        let last = if k >= 128 {
            u128::MAX
        } else {
            s | ((1u128 << k) - 1)
        };
        if last >= end {
            break;
        }
        s = last + 1;
    }
    out
}

/// A prefix from its first address and length (the length is in range by
/// construction).
pub fn make_net(family: Family, first: u128, len: u8) -> IpNet {
    match family {
        Family::V4 => IpNet::V4(
            Ipv4Net::new(Ipv4Addr::from(first as u32), len.min(32))
                .unwrap_or_else(|_| Ipv4Net::default()),
        ),
        Family::V6 => IpNet::V6(
            Ipv6Net::new(Ipv6Addr::from(first), len.min(128))
                .unwrap_or_else(|_| Ipv6Net::default()),
        ),
    }
}

/// Number of addresses in `[start, end]`, saturating at `u128::MAX`.
pub fn size(start: u128, end: u128) -> u128 {
    (end - start).saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(start: u128, end: u128, e: i64) -> Span {
        Span {
            start,
            end,
            expiry: if e < 0 {
                Expiry::Never
            } else {
                Expiry::At(Timestamp::from_second(e).unwrap())
            },
        }
    }

    #[test]
    fn union_keeps_latest_expiry_per_address() {
        let out = union_max_expiry(vec![s(0, 9, 10), s(5, 14, 20), s(20, 20, 10)]);
        assert_eq!(out, vec![s(0, 4, 10), s(5, 14, 20), s(20, 20, 10)]);
        let out = union_max_expiry(vec![s(0, 9, 10), s(10, 19, 10), s(2, 3, -1)]);
        assert_eq!(out, vec![s(0, 1, 10), s(2, 3, -1), s(4, 19, 10)]);
        let out = union_max_expiry(vec![s(0, u128::MAX, 1), s(u128::MAX, u128::MAX, 2)]);
        assert_eq!(
            out,
            vec![s(0, u128::MAX - 1, 1), s(u128::MAX, u128::MAX, 2)]
        );
    }

    #[test]
    fn subtract_splits_around_holes() {
        let out = subtract(&[s(0, 255, 1)], &[(0, 0), (8, 8), (255, 300)]);
        assert_eq!(out, vec![s(1, 7, 1), s(9, 254, 1)]);
    }

    #[test]
    fn cover_is_minimal() {
        let v: Vec<String> = cidr_cover(Family::V4, 1, 254, 0)
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(v.len(), 14);
        assert_eq!(v[0], "0.0.0.1/32");
        let v = cidr_cover(Family::V6, 0, u128::MAX, 0);
        assert_eq!(v[0].to_string(), "::/0");
        let v = cidr_cover(Family::V4, 0, u128::from(u32::MAX), 16);
        assert_eq!(v.len(), 65536);
    }
}
