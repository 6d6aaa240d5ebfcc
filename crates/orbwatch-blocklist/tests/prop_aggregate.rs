//! Property: the exported entries cover exactly the input addresses minus
//! the guarded ones (checked against a bitmap), without overlaps, and no
//! two entries could be merged into one prefix.

mod common;

use common::*;
use ipnet::IpNet;
use orbwatch_blocklist::{Guard, Selection, build};
use orbwatch_intel::{Indicator, IndicatorValue, Provenance};
use proptest::prelude::*;

/// A 4096-address universe per family (45.0.0.0/20 and 2a00::/116).
const UNIVERSE: u32 = 4096;

fn addr(v6: bool, off: u32) -> std::net::IpAddr {
    if v6 {
        std::net::IpAddr::V6(std::net::Ipv6Addr::from(
            0x2a00_0000_0000_0000_0000_0000_0000_0000u128 + u128::from(off),
        ))
    } else {
        std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x2d00_0000u32 + off))
    }
}

fn offset(v6: bool, ip: std::net::IpAddr) -> u32 {
    match ip {
        std::net::IpAddr::V4(a) if !v6 => u32::from(a) - 0x2d00_0000,
        std::net::IpAddr::V6(a) if v6 => {
            (u128::from(a) - 0x2a00_0000_0000_0000_0000_0000_0000_0000u128) as u32
        }
        _ => panic!("family mix-up"),
    }
}

/// A range [off, off+len) or an aligned prefix, inside the universe.
fn item() -> impl Strategy<Value = (bool, u32, u32)> {
    (any::<bool>(), 0..UNIVERSE, 0u32..300).prop_map(|(prefix, off, len)| {
        if prefix {
            let bits = len % 9; // up to a /23-sized (512) block
            let size = 1u32 << bits;
            let start = off & !(size - 1);
            (true, start, size.min(UNIVERSE - start))
        } else {
            (false, off, (len + 1).min(UNIVERSE - off))
        }
    })
}

fn value(v6: bool, (prefix, start, len): (bool, u32, u32)) -> IndicatorValue {
    let first = addr(v6, start);
    if prefix {
        let host = len.trailing_zeros() as u8;
        let max = if v6 { 128 } else { 32 };
        IndicatorValue::Cidr(IpNet::new(first, max - host).unwrap())
    } else {
        IndicatorValue::Range {
            first,
            last: addr(v6, start + len - 1),
        }
    }
}

fn check(v6: bool, inputs: Vec<(bool, u32, u32)>, guards: Vec<(bool, u32, u32)>) {
    let mut want = vec![false; UNIVERSE as usize];
    let mut sel = Selection::new(select_opts(fixture_at()), None);
    for (i, it) in inputs.iter().enumerate() {
        for a in it.1..it.1 + it.2 {
            want[a as usize] = true;
        }
        let ind = Indicator::new(
            value(v6, *it),
            Provenance {
                feed: "p".into(),
                file: "p".into(),
                line: i as u64 + 1,
                record_id: None,
            },
        );
        sel.add_indicator(&ind, "p");
    }
    let mut guard = Guard::with_special_ranges();
    let mut allow = String::new();
    for g in &guards {
        for a in g.1..g.1 + g.2 {
            want[a as usize] = false;
        }
        match value(v6, *g) {
            IndicatorValue::Cidr(n) => allow.push_str(&format!("{n}\n")),
            IndicatorValue::Range { first, last } => allow.push_str(&format!("{first}-{last}\n")),
            _ => unreachable!(),
        }
    }
    assert!(guard.add_allowlist(&allow, "prop").is_empty());
    guard.finish();
    let list = build(&sel, &guard, &build_opts(fixture_at())).unwrap();
    let mut got = vec![false; UNIVERSE as usize];
    for e in &list.entries {
        let first = offset(v6, e.net.network());
        let size = 1u64 << (e.net.max_prefix_len() - e.net.prefix_len());
        for a in first as u64..first as u64 + size {
            assert!(!got[a as usize], "overlap at {a} ({})", e.net);
            got[a as usize] = true;
        }
    }
    assert_eq!(got, want);
    // Minimal: no entry has its sibling (the other half of its parent)
    // listed too.
    let nets: std::collections::HashSet<IpNet> = list.entries.iter().map(|e| e.net).collect();
    for n in &nets {
        if let Some(parent) = n.supernet() {
            let sibling = parent
                .subnets(n.prefix_len())
                .unwrap()
                .find(|s| s != n)
                .unwrap();
            assert!(
                !nets.contains(&sibling),
                "{n} and {sibling} should be {parent}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn aggregation_covers_exactly_input_minus_guard_v4(
        inputs in prop::collection::vec(item(), 0..40),
        guards in prop::collection::vec(item(), 0..6),
    ) {
        check(false, inputs, guards);
    }

    #[test]
    fn aggregation_covers_exactly_input_minus_guard_v6(
        inputs in prop::collection::vec(item(), 0..40),
        guards in prop::collection::vec(item(), 0..6),
    ) {
        check(true, inputs, guards);
    }
}
