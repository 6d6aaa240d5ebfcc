//! Aggregation and the guard on real and crafted feeds, with independent
//! oracles (sibling-pair counts, hand-written expectations).

mod common;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use common::*;
use orbwatch_blocklist::{Expiry, Selection, Widen, build};
use orbwatch_intel::{Indicator, IndicatorValue, Provenance};

/// The CERT-FR APT31 list has 161 ip-dst rows, all distinct /32s. /32s
/// only merge when both halves of an aligned /31 are listed (and then up
/// the tree), so the exported count is 161 minus the number of such
/// sibling pairs. The oracle counts those pairs straight from the CSV text
/// (column `signature_component.value`), not through orbwatch's reader.
/// Python's `ipaddress.collapse_addresses` agrees: 161.
#[test]
fn certfr_list_exports_161_entries() {
    let path = repo_file("examples/feeds/CERTFR-2021-IOC-003-IOC.csv");
    let text = std::fs::read_to_string(&path).expect("CERT-FR example");
    let mut rows = text.lines();
    let header: Vec<&str> = rows.next().unwrap().split(',').collect();
    let col = header
        .iter()
        .position(|h| *h == "signature_component.value")
        .unwrap();
    let mut addrs = BTreeSet::new();
    for line in rows {
        // The value column comes after a quoted metadata field with
        // commas: count from the end instead (value, description).
        let fields: Vec<&str> = line.rsplitn(3, ',').collect();
        let v: Ipv4Addr = fields[1].parse().expect("an IPv4 address");
        addrs.insert(u32::from(v));
        let _ = col;
    }
    assert_eq!(addrs.len(), 161);
    let siblings = addrs
        .iter()
        .filter(|a| *a & 1 == 0 && addrs.contains(&(*a | 1)))
        .count();
    assert_eq!(siblings, 0, "no aligned pairs: nothing can merge");

    // CERT-FR rows have no end of validity: any time after publication.
    let list = build_file(&path, ts("2026-01-01"), None);
    assert_eq!(list.entries.len(), 161 - siblings);
    assert!(list.refused.is_empty());
    assert!(list.entries.iter().all(|e| e.expiry == Expiry::Never));
    let exported: BTreeSet<u32> = list
        .entries
        .iter()
        .map(|e| match e.net.addr() {
            std::net::IpAddr::V4(a) => u32::from(a),
            _ => panic!("IPv6 in an IPv4 list"),
        })
        .collect();
    assert_eq!(exported, addrs);
}

fn ind(value: &str, line: u64) -> Indicator {
    let v = if value.contains('/') {
        IndicatorValue::Cidr(value.parse().unwrap())
    } else {
        IndicatorValue::Ip(value.parse().unwrap())
    };
    Indicator::new(
        v,
        Provenance {
            feed: "guard".into(),
            file: "guard.txt".into(),
            line,
            record_id: None,
        },
    )
}

fn selection(values: &[&str]) -> Selection {
    let mut sel = Selection::new(select_opts(fixture_at()), None);
    for (i, v) in values.iter().enumerate() {
        sel.add_indicator(&ind(v, i as u64 + 1), "guard");
    }
    sel
}

#[test]
fn guard_refuses_private_resolver_and_wide_entries_and_names_each() {
    let sel = selection(&["10.0.0.0/8", "192.168.1.1", "8.8.8.8", "44.0.0.0/8"]);
    let list = build(&sel, &default_guard(), &build_opts(fixture_at())).unwrap();
    assert!(list.entries.is_empty(), "{:?}", list.entries);
    let named: Vec<String> = list.refused.iter().map(|r| r.to_string()).collect();
    assert_eq!(named.len(), 4, "{named:#?}");
    assert!(list.refused.iter().all(|r| r.whole));
    assert_eq!(
        named[0],
        "refused 10.0.0.0/8 (from guard:1): wider than /16 (--max-prefix; --force-wide allows it); inside private network 10.0.0.0/8 (RFC 1918)"
    );
    assert_eq!(
        named[1],
        "refused 192.168.1.1 (from guard:2): inside private network 192.168.0.0/16 (RFC 1918)"
    );
    assert_eq!(
        named[2],
        "refused 8.8.8.8 (from guard:3): inside default allowlist:9 (Google Public DNS)"
    );
    assert_eq!(
        named[3],
        "refused 44.0.0.0/8 (from guard:4): wider than /16 (--max-prefix; --force-wide allows it)"
    );
}

#[test]
fn force_wide_still_never_lists_guarded_addresses() {
    let sel = selection(&["10.0.0.0/8", "192.168.1.1", "8.8.8.8", "44.0.0.0/8"]);
    let mut o = build_opts(fixture_at());
    o.force_wide = true;
    let list = build(&sel, &default_guard(), &o).unwrap();
    let nets: Vec<String> = list.entries.iter().map(|e| e.net.to_string()).collect();
    assert_eq!(nets, vec!["44.0.0.0/8"]);
}

/// A /16 holding two allowlisted resolvers: the remainder is exported,
/// the resolvers are named as held back.
#[test]
fn partial_overlap_is_split_not_exported_whole() {
    let sel = selection(&["8.8.0.0/16"]);
    let list = build(&sel, &default_guard(), &build_opts(fixture_at())).unwrap();
    assert_eq!(list.refused.len(), 1);
    assert!(!list.refused[0].whole);
    assert_eq!(
        list.refused[0].to_string(),
        "split 8.8.0.0/16 (from guard:1): 8.8.4.4 held back: default allowlist:10 (Google Public DNS); 8.8.8.8 held back: default allowlist:9 (Google Public DNS)"
    );
    // 65536 − 2 addresses. Oracle: Python's ipaddress, excluding both
    // /32s from the /16 with address_exclude then collapse_addresses,
    // gives 26 networks (the holes share 8.8.0.0/20 down to the /21).
    let total: u64 = list
        .entries
        .iter()
        .map(|e| 1u64 << (32 - e.net.prefix_len()))
        .sum();
    assert_eq!(total, 65534);
    assert_eq!(list.entries.len(), 26);
    for e in &list.entries {
        for ip in ["8.8.8.8", "8.8.4.4"] {
            assert!(!e.net.contains(&ip.parse::<std::net::IpAddr>().unwrap()));
        }
    }
}

#[test]
fn adjacent_and_contained_prefixes_merge() {
    let sel = selection(&[
        "45.0.0.0/25",
        "45.0.0.128/25",
        "45.0.0.7",
        "45.0.1.0/24",
        "45.0.2.0",
        "2a00:1::/33",
        "2a00:1:8000::/33",
    ]);
    let list = build(&sel, &default_guard(), &build_opts(fixture_at())).unwrap();
    let nets: Vec<String> = list.entries.iter().map(|e| e.net.to_string()).collect();
    assert_eq!(nets, vec!["45.0.0.0/23", "45.0.2.0/32", "2a00:1::/32"]);
}

#[test]
fn widen_lists_a_block_once_k_addresses_are_listed_and_keeps_the_guard() {
    let mut values: Vec<String> = (1..=5).map(|i| format!("45.1.2.{i}")).collect();
    values.extend((1..=4).map(|i| format!("45.1.3.{i}")));
    // 1.1.1.0/24 holds Cloudflare's resolvers: widening must not bring
    // them back.
    values.extend((10..=14).map(|i| format!("1.1.1.{i}")));
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    let sel = selection(&refs);
    let mut o = build_opts(fixture_at());
    o.widen = Some("/24:5".parse::<Widen>().unwrap());
    let list = build(&sel, &default_guard(), &o).unwrap();
    let widened: Vec<(String, u64)> = list
        .widened
        .iter()
        .map(|w| (w.net.to_string(), w.listed))
        .collect();
    assert_eq!(
        widened,
        vec![
            ("1.1.1.0/24".to_string(), 5),
            ("45.1.2.0/24".to_string(), 5)
        ]
    );
    let nets: Vec<String> = list.entries.iter().map(|e| e.net.to_string()).collect();
    assert!(nets.contains(&"45.1.2.0/24".to_string()));
    assert!(nets.contains(&"45.1.3.1/32".to_string()));
    // 1.1.1.0/24 minus 1.1.1.1-1.1.1.3 (Cloudflare): 1.1.1.0/32,
    // 1.1.1.4/30, /29, /28, /27, /26, /25.
    let one: Vec<&String> = nets.iter().filter(|n| n.starts_with("1.1.1.")).collect();
    assert_eq!(
        one,
        vec![
            "1.1.1.0/32",
            "1.1.1.4/30",
            "1.1.1.8/29",
            "1.1.1.16/28",
            "1.1.1.32/27",
            "1.1.1.64/26",
            "1.1.1.128/25"
        ]
    );
    assert!(list.entries.iter().filter(|e| e.widened).count() >= 8);
    // The widening is below /16: a wider rule is refused.
    let mut o = build_opts(fixture_at());
    o.widen = Some("/12:5".parse::<Widen>().unwrap());
    assert!(build(&sel, &default_guard(), &o).is_err());
}

#[test]
fn expiry_is_per_address_latest_and_expired_indicators_are_kept_for_diffs() {
    let list = fixture();
    let find = |n: &str| {
        list.entries
            .iter()
            .find(|e| e.net.to_string() == n)
            .unwrap_or_else(|| panic!("{n} not in {:?}", list.entries))
    };
    // .2 (until 03-01) and .3 (until 02-15 12:00) merge; the pair lives
    // as long as its longest-lived member.
    assert_eq!(list.timeout_secs(find("203.0.114.2/31")), Some(28 * 86_400));
    assert_eq!(list.timeout_secs(find("45.33.10.10/32")), Some(86_400));
    assert_eq!(list.timeout_secs(find("198.100.6.0/23")), None);
    // 45.33.10.11 ended in 2025: not listed, remembered as expired.
    assert!(list.expired4.contains(&(
        u128::from(u32::from("45.33.10.11".parse::<Ipv4Addr>().unwrap())),
        u128::from(u32::from("45.33.10.11".parse::<Ipv4Addr>().unwrap()))
    )));
}

#[test]
fn min_confidence_and_validity_filter_the_selection() {
    let path = data("small-feed.csv");
    let bytes = std::fs::read(&path).unwrap();
    let opts = orbwatch_intel::ReadOptions::new("small-feed");
    let parsed = orbwatch_intel::read_feed(&bytes, "small-feed", None, &opts).unwrap();
    let mut so = select_opts(fixture_at());
    so.min_confidence = 80;
    let mut sel = Selection::new(so, None);
    for i in &parsed.indicators {
        sel.add_indicator(i, "small-feed");
    }
    // 13 rows: 1 domain, 1 expired, 1 below 80 (45.33.10.10 at 40), the
    // two IPv6 rows at 75.
    use orbwatch_blocklist::Skip;
    assert_eq!(sel.skipped.get(&Skip::NotAnAddress), Some(&1));
    assert_eq!(sel.skipped.get(&Skip::Expired), Some(&1));
    assert_eq!(sel.skipped.get(&Skip::BelowConfidence), Some(&3));
    assert_eq!(sel.candidates.len(), 8);
}
