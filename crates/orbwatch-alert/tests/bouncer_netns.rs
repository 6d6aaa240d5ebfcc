//! The bouncer against real nftables sets and ipsets, inside a network
//! namespace each test creates and always removes (a Drop guard deletes
//! it, also on panic). Skipped (printing "skipped") when `ip`, `nft` or
//! `ipset` is missing, unless ORBWATCH_REQUIRE_TOOLS=1.

mod common;

use std::net::IpAddr;

use common::{finding, tool, ts};
use orbwatch_alert::{BlockTarget, Bouncer, BouncerConfig, Decision};
use orbwatch_blocklist::Guard;
use orbwatch_detect::{Finding, FindingKind, Severity};
use orbwatch_store::{BlockAction, Store};
use orbwatch_testns::TestNetns;

/// Run a command inside `ns`; its stdout (the test fails if it fails).
fn run(ns: &TestNetns, program: &str, args: &[&str], stdin: Option<&str>) -> String {
    let out = ns
        .output(program, args, stdin.map(str::as_bytes))
        .unwrap_or_else(|e| panic!("running {program} in {}: {e}", ns.name()));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn tools(names: &[&str]) -> bool {
    names.iter().all(|n| tool(n).is_some())
}

fn guard() -> Guard {
    let mut g = Guard::with_special_ranges();
    g.add_internal("10.0.0.0/8".parse().unwrap());
    g.add_default_allowlist();
    g.finish();
    g
}

/// The findings of a small attack: a public brute force (IPv4 and IPv6),
/// internal sources, a resolver, a distributed brute force mixing both,
/// and a low-severity scan that must not be blocked.
fn findings() -> Vec<Finding> {
    let mut dist = finding(
        "dist",
        FindingKind::DistributedBruteforce,
        "185.220.101.48",
        Severity::High,
        85,
    );
    dist.sources = vec![
        "185.220.101.48".parse().unwrap(),
        "192.168.5.5".parse().unwrap(),
    ];
    vec![
        finding(
            "bf-public",
            FindingKind::BruteForce,
            "185.220.101.47",
            Severity::High,
            80,
        ),
        finding(
            "bf-v6",
            FindingKind::BruteForce,
            "2a01:4f8:c17:1::1",
            Severity::Critical,
            90,
        ),
        finding(
            "bf-internal10",
            FindingKind::BruteForce,
            "10.20.30.40",
            Severity::High,
            80,
        ),
        finding(
            "bf-internal192",
            FindingKind::BruteForce,
            "192.168.1.77",
            Severity::High,
            80,
        ),
        finding(
            "bf-resolver",
            FindingKind::BruteForce,
            "8.8.8.8",
            Severity::High,
            80,
        ),
        dist,
        finding(
            "scan-low",
            FindingKind::PortScan,
            "185.220.101.99",
            Severity::Low,
            30,
        ),
    ]
}

/// The elements of an nft set, with their timeouts, from `nft -j`.
fn nft_elements(ns: &TestNetns, set: &str) -> Vec<(String, Option<u64>)> {
    let out = run(
        ns,
        "nft",
        &["-j", "list", "set", "inet", "filter", set],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let set = v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|o| o.get("set"))
        .unwrap();
    let mut out = Vec::new();
    for e in set
        .get("elem")
        .and_then(|e| e.as_array())
        .cloned()
        .unwrap_or_default()
    {
        match e.get("elem") {
            Some(x) => out.push((
                x["val"].as_str().unwrap().to_string(),
                x.get("timeout").and_then(|t| t.as_u64()),
            )),
            None => out.push((e.as_str().unwrap().to_string(), None)),
        }
    }
    out.sort();
    out
}

fn setup_nft(ns: &TestNetns) {
    run(
        ns,
        "nft",
        &["-f", "-"],
        Some(
            "add table inet filter\n\
             add set inet filter orbwatch { type ipv4_addr; flags timeout; }\n\
             add set inet filter orbwatch6 { type ipv6_addr; flags timeout; }\n\
             add set inet filter notimeout { type ipv4_addr; }\n",
        ),
    );
}

#[test]
fn nftables_blocks_public_sources_with_a_timeout_and_never_internal_ones() {
    if !tools(&["ip", "nft"]) {
        return;
    }
    let Some(ns) = TestNetns::new("bouncer-nft") else {
        return;
    };
    setup_nft(&ns);
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("s.db")).unwrap();

    let mut cfg = BouncerConfig::new(
        vec!["nftables:inet:filter:orbwatch".parse().unwrap()],
        guard(),
    );
    cfg.wrapper = ns.wrapper();
    let mut bouncer = Bouncer::new(cfg).unwrap();
    let now = ts("2026-03-01T10:05:00Z");
    let tx = store.write_transaction().unwrap();
    let decisions = bouncer.consider_at(&tx, &findings(), now).unwrap();
    tx.commit().unwrap();

    let blocked: Vec<IpAddr> = decisions
        .iter()
        .filter_map(|d| match d {
            Decision::Blocked { address, .. } => Some(*address),
            _ => None,
        })
        .collect();
    let s = |a: &str| a.parse::<IpAddr>().unwrap();
    // In the order of the findings.
    assert_eq!(
        blocked,
        [
            s("185.220.101.47"),
            s("2a01:4f8:c17:1::1"),
            s("185.220.101.48")
        ]
    );
    let refused: Vec<(IpAddr, String)> = decisions
        .iter()
        .filter_map(|d| match d {
            Decision::Refused {
                address, reason, ..
            } => Some((*address, reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(refused.len(), 4, "{refused:?}");
    assert_eq!(refused[0].0, s("10.20.30.40"));
    assert!(refused[0].1.contains("10.0.0.0/8"), "{}", refused[0].1);
    assert_eq!(refused[1].0, s("192.168.1.77"));
    assert!(refused[1].1.contains("192.168.0.0/16"), "{}", refused[1].1);
    assert_eq!(refused[2].0, s("8.8.8.8"));
    assert!(
        refused[2].1.contains("default allowlist"),
        "{}",
        refused[2].1
    );
    assert_eq!(refused[3].0, s("192.168.5.5"));

    // What the kernel holds.
    let v4 = nft_elements(&ns, "orbwatch");
    assert_eq!(
        v4,
        [
            ("185.220.101.47".to_string(), Some(3600)),
            ("185.220.101.48".to_string(), Some(3600))
        ]
    );
    let v6 = nft_elements(&ns, "orbwatch6");
    assert_eq!(v6, [("2a01:4f8:c17:1::1".to_string(), Some(3600))]);
    // And the text form an operator reads.
    let text = run(
        &ns,
        "nft",
        &["list", "set", "inet", "filter", "orbwatch"],
        None,
    );
    assert!(text.contains("185.220.101.47 timeout 1h"), "{text}");
    assert!(
        !text.contains("10.20.30.40") && !text.contains("192.168.1.77"),
        "{text}"
    );

    // The store records every decision.
    let rows = store.recent_blocks(None, 100).unwrap();
    assert_eq!(rows.len(), 7, "{rows:#?}");
    let refusal = store.recent_blocks(Some("10.20.30.40"), 10).unwrap();
    assert_eq!(refusal.len(), 1);
    assert_eq!(refusal[0].action, BlockAction::Refused);
    assert_eq!(refusal[0].finding_id, "bf-internal10");
    assert_eq!(refusal[0].target, "nftables inet filter orbwatch");
    let block = store.recent_blocks(Some("185.220.101.47"), 10).unwrap();
    assert_eq!(block[0].action, BlockAction::Blocked);
    assert_eq!(block[0].until, Some(ts("2026-03-01T11:05:00Z")));

    // The same findings again (an update): nothing re-added, no new rows.
    let tx = store.write_transaction().unwrap();
    let again = bouncer
        .consider_at(&tx, &findings(), ts("2026-03-01T10:06:00Z"))
        .unwrap();
    tx.commit().unwrap();
    assert_eq!(
        again
            .iter()
            .filter(|d| matches!(d, Decision::AlreadyBlocked { .. }))
            .count(),
        3
    );
    assert_eq!(store.recent_blocks(None, 100).unwrap().len(), 7);
}

#[test]
fn nftables_startup_checks_name_the_fix() {
    if !tools(&["ip", "nft"]) {
        return;
    }
    let Some(ns) = TestNetns::new("bouncer-nftcheck") else {
        return;
    };
    setup_nft(&ns);
    let make = |t: &str, dry: bool| {
        let mut cfg = BouncerConfig::new(vec![t.parse::<BlockTarget>().unwrap()], guard());
        cfg.wrapper = ns.wrapper();
        cfg.dry_run = dry;
        Bouncer::new(cfg)
    };
    let err = make("nftables:inet:filter:nosuchset", false)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "nft set inet filter nosuchset not found: create it with: nft add set inet filter nosuchset '{ type ipv4_addr; flags timeout; }'"
    );
    // `missing` is an nft keyword: nft cannot parse it as a name.
    let err = make("nftables:inet:filter:missing", false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("nft keyword"), "{err}");
    let err = make("nftables:inet:filter:notimeout", false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("has no `timeout` flag"), "{err}");
    let err = make("nftables:inet:nosuchtable:orbwatch", false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not found: create it"), "{err}");
    // Two IPv4 sets named as a pair.
    let err = make("nftables:inet:filter:orbwatch,notimeout", false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no `timeout` flag"), "{err}");
    // A dry run starts anyway (the set may not exist yet).
    assert!(make("nftables:inet:filter:nosuchset", true).is_ok());
}

#[test]
fn dry_run_records_but_touches_no_set() {
    if !tools(&["ip", "nft"]) {
        return;
    }
    let Some(ns) = TestNetns::new("bouncer-dry") else {
        return;
    };
    setup_nft(&ns);
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    let mut cfg = BouncerConfig::new(
        vec!["nftables:inet:filter:orbwatch".parse().unwrap()],
        guard(),
    );
    cfg.wrapper = ns.wrapper();
    cfg.dry_run = true;
    cfg.timeout = std::time::Duration::from_secs(600);
    // The host's resolver is one of the attackers' addresses here: it
    // must be refused.
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&resolv, "search example\nnameserver 185.220.101.48\n").unwrap();
    cfg.resolv_conf = Some(resolv.clone());
    let mut bouncer = Bouncer::new(cfg).unwrap();
    let tx = store.write_transaction().unwrap();
    let d = bouncer
        .consider_at(&tx, &findings(), ts("2026-03-01T10:05:00Z"))
        .unwrap();
    tx.commit().unwrap();
    assert_eq!(
        d.iter()
            .filter(|d| matches!(d, Decision::DryRun { .. }))
            .count(),
        2
    );
    let r = store.recent_blocks(Some("185.220.101.48"), 10).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].action, BlockAction::Refused);
    assert_eq!(
        r[0].reason,
        format!("resolver 185.220.101.48 ({}:2)", resolv.display())
    );
    assert!(nft_elements(&ns, "orbwatch").is_empty());
    let rows = store.recent_blocks(Some("185.220.101.47"), 10).unwrap();
    assert_eq!(rows[0].action, BlockAction::DryRun);
    assert_eq!(rows[0].until, Some(ts("2026-03-01T10:15:00Z")));
}

#[test]
fn ipset_blocks_with_a_timeout_and_refuses_internal_sources() {
    if !tools(&["ip", "ipset"]) {
        return;
    }
    let Some(ns) = TestNetns::new("bouncer-ipset") else {
        return;
    };
    run(
        &ns,
        "ipset",
        &["create", "ow", "hash:ip", "timeout", "3600"],
        None,
    );
    run(
        &ns,
        "ipset",
        &[
            "create", "ow6", "hash:ip", "family", "inet6", "timeout", "3600",
        ],
        None,
    );
    run(&ns, "ipset", &["create", "plain", "hash:ip"], None);
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("s.db")).unwrap();

    let mut cfg = BouncerConfig::new(vec!["ipset:plain".parse().unwrap()], guard());
    cfg.wrapper = ns.wrapper();
    let err = Bouncer::new(cfg.clone()).unwrap_err().to_string();
    assert!(err.contains("ipset plain has no timeout"), "{err}");
    cfg.targets = vec!["ipset:nope".parse().unwrap()];
    let err = Bouncer::new(cfg.clone()).unwrap_err().to_string();
    assert_eq!(
        err,
        "ipset nope not found: create it with: ipset create nope hash:ip family inet timeout 3600"
    );

    cfg.targets = vec!["ipset:ow".parse().unwrap()];
    cfg.timeout = std::time::Duration::from_secs(1800);
    let mut bouncer = Bouncer::new(cfg).unwrap();
    let tx = store.write_transaction().unwrap();
    let d = bouncer
        .consider_at(&tx, &findings(), ts("2026-03-01T10:05:00Z"))
        .unwrap();
    tx.commit().unwrap();
    assert_eq!(
        d.iter()
            .filter(|d| matches!(d, Decision::Blocked { .. }))
            .count(),
        3
    );
    assert_eq!(
        d.iter()
            .filter(|d| matches!(d, Decision::Refused { .. }))
            .count(),
        4
    );

    let list = run(&ns, "ipset", &["list", "ow"], None);
    let members: Vec<&str> = list
        .lines()
        .skip_while(|l| !l.starts_with("Members:"))
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(members.len(), 2, "{list}");
    for m in &members {
        let mut w = m.split_whitespace();
        let addr = w.next().unwrap();
        assert!(["185.220.101.47", "185.220.101.48"].contains(&addr), "{m}");
        assert_eq!(w.next(), Some("timeout"));
        let left: u64 = w.next().unwrap().parse().unwrap();
        assert!(left > 1700 && left <= 1800, "{m}");
    }
    let list6 = run(&ns, "ipset", &["list", "ow6"], None);
    assert!(list6.contains("2a01:4f8:c17:1::1 timeout"), "{list6}");
    assert_eq!(
        store.recent_blocks(Some("192.168.1.77"), 10).unwrap()[0].action,
        BlockAction::Refused
    );
}
