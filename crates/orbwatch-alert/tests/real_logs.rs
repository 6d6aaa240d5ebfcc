//! End to end on real logs: the engine hunts real sshd logs, and its
//! findings go through the alert queue (JSON lines) and the bouncer (an
//! nftables set in a throwaway network namespace).
//!
//! - `tests/data/logs-syslog/crowdsec_ssh-bf.log` (MIT, crowdsecurity/hub; see
//!   `tests/data/logs-syslog/ATTRIBUTION.md`): one brute force, 7 invalid users from
//!   35.188.49.176.
//! - `../shared/corpus/auth-ssh/fail2ban_sshd.log` (GPL-2.0, read in place;
//!   "skipped" when absent): fail2ban's labelled sshd variants, whose
//!   sources include documentation and private ranges the guard refuses.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{tool, wait_for};
use orbwatch_alert::{
    AlertConfig, AlertDocument, Alerts, Bouncer, BouncerConfig, DeliveryConfig, JsonlTarget,
    SinkSpec,
};
use orbwatch_blocklist::Guard;
use orbwatch_detect::behaviour::BehaviourConfig;
use orbwatch_detect::{Finding, FindingKind, InternalNets, IocEngine};
use orbwatch_engine::{BehaviourOptions, Engine, EngineOptions};
use orbwatch_source::Filters;
use orbwatch_store::{BlockAction, Store};

fn hunt(path: &Path) -> Vec<Finding> {
    let opts = EngineOptions {
        year: Some(2024),
        threads: 1,
        behaviour: Some(BehaviourOptions {
            config: BehaviourConfig::default(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let engine = Engine::new(IocEngine::new(Vec::new(), InternalNets::default()), opts)
        .expect("engine starts");
    let paths = vec![path.to_string_lossy().into_owned()];
    let (inputs, problems) = orbwatch_source::expand(&paths, &Filters::default());
    assert!(problems.is_empty(), "{problems:?}");
    let mut found: Vec<Finding> = Vec::new();
    engine
        .hunt(&inputs, &problems, &mut found)
        .expect("hunt runs");
    found
}

fn corpus(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus")
        .join(rel);
    if p.is_file() {
        Some(p)
    } else {
        println!("skipped: {} not found", p.display());
        None
    }
}

#[test]
fn crowdsec_ssh_bf_alerts_once_and_survives_a_replay() {
    let log = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/logs-syslog/crowdsec_ssh-bf.log");
    let findings = hunt(&log);
    // Seven invalid users from one address in three seconds: a password
    // spray (many accounts), of medium severity.
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let bf = &findings;
    assert_eq!(bf[0].kind, FindingKind::PasswordSpray);
    assert_eq!(bf[0].severity, Some(orbwatch_detect::Severity::Medium));
    assert_eq!(bf[0].src_ip, Some("35.188.49.176".parse().unwrap()));

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let out = dir.path().join("alerts.jsonl");
    let mut store = Store::open(&db).unwrap();
    let alerts = Alerts::new(AlertConfig {
        sinks: vec![SinkSpec::Jsonl(JsonlTarget::File(out.clone()))],
        delivery: DeliveryConfig {
            poll: Duration::from_millis(10),
            ..DeliveryConfig::default()
        },
        ..AlertConfig::default()
    });
    // The same findings handed over twice (an update, then a replay after
    // a restart) alert once each.
    for _ in 0..2 {
        let tx = store.write_transaction().unwrap();
        alerts.on_findings(&tx, &findings).unwrap();
        tx.commit().unwrap();
    }
    let h = alerts.start_delivery(&db).unwrap();
    let sink = alerts.sink_names()[0].clone();
    wait_for(Duration::from_secs(20), "delivery", || {
        store.pending_alert_count(&sink).unwrap() == 0
    });
    h.stop();
    let docs: Vec<AlertDocument> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), findings.len());
    let d = &docs[0];
    assert_eq!(d.finding_id, bf[0].id);
    assert_eq!(d.src_ip, bf[0].src_ip);
    assert_eq!(
        d.alert_id,
        format!("{}-{}", bf[0].id, bf[0].severity.unwrap())
    );
}

#[test]
fn fail2ban_sshd_sources_are_blocked_or_refused_by_the_guard_in_a_netns() {
    let Some(log) = corpus("auth-ssh/fail2ban_sshd.log") else {
        return;
    };
    if tool("ip").is_none() || tool("nft").is_none() {
        return;
    }
    let findings = hunt(&log);
    let mut guard = Guard::with_special_ranges();
    guard.add_default_allowlist();
    guard.finish();
    let Some(ns) = orbwatch_testns::TestNetns::new("real-logs") else {
        return;
    };
    let nft = |args: &[&str]| {
        let out = ns.output("nft", args, None).unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    nft(&["add", "table", "inet", "filter"]);
    nft(&[
        "add",
        "set",
        "inet",
        "filter",
        "ow",
        "{ type ipv4_addr; flags timeout; }",
    ]);
    nft(&[
        "add",
        "set",
        "inet",
        "filter",
        "ow6",
        "{ type ipv6_addr; flags timeout; }",
    ]);

    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    let mut cfg = BouncerConfig::new(
        vec!["nftables:inet:filter:ow".parse().unwrap()],
        guard.clone(),
    );
    cfg.wrapper = ns.wrapper();
    cfg.min_severity = orbwatch_detect::Severity::Info;
    let mut bouncer = Bouncer::new(cfg).unwrap();
    let tx = store.write_transaction().unwrap();
    bouncer.consider(&tx, &findings).unwrap();
    tx.commit().unwrap();

    let rows = store.recent_blocks(None, 10_000).unwrap();
    assert!(!rows.is_empty(), "the log has brute forces: {findings:#?}");
    let listed = nft(&["list", "set", "inet", "filter", "ow"])
        + &nft(&["list", "set", "inet", "filter", "ow6"]);
    let mut blocked = 0;
    let mut refused = 0;
    for r in &rows {
        let ip: std::net::IpAddr = r.address.parse().unwrap();
        let v = orbwatch_blocklist::span::ip_to_u128(ip);
        let fam = orbwatch_blocklist::Family::of(ip);
        match r.action {
            BlockAction::Blocked => {
                blocked += 1;
                assert!(
                    !guard.overlaps(fam, v, v),
                    "{} was blocked but is guarded",
                    r.address
                );
                assert!(
                    listed.contains(&format!("{} timeout", r.address)),
                    "{} not in the set:\n{listed}",
                    r.address
                );
            }
            BlockAction::Refused => {
                refused += 1;
                assert!(
                    guard.overlaps(fam, v, v),
                    "{} refused: {}",
                    r.address,
                    r.reason
                );
                assert!(
                    !listed.contains(&format!("{} timeout", r.address)),
                    "{}",
                    r.address
                );
            }
            other => panic!("unexpected {other:?} for {}", r.address),
        }
    }
    println!(
        "fail2ban sshd: {} findings, {blocked} blocked, {refused} refused",
        findings.len()
    );
    // A distributed brute force from eight addresses of 205.186.180.0/24,
    // all blocked; a brute force from 192.0.2.111 (documentation range),
    // refused by the guard.
    assert_eq!(findings.len(), 2);
    assert_eq!((blocked, refused), (8, 1));
    let refusal = store.recent_blocks(Some("192.0.2.111"), 10).unwrap();
    assert_eq!(refusal.len(), 1);
    assert_eq!(refusal[0].reason, "documentation TEST-NET-1 192.0.2.0/24");
    let mut v4: Vec<String> = rows
        .iter()
        .filter(|r| r.action == BlockAction::Blocked)
        .map(|r| r.address.clone())
        .collect();
    v4.sort();
    assert_eq!(
        v4,
        ["100", "101", "102", "103", "22", "42", "88", "99"].map(|x| format!("205.186.180.{x}"))
    );
}
