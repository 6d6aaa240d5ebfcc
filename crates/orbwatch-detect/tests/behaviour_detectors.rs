//! Behaviour detectors on constructed event streams whose answer is known
//! by construction: order independence of the merge, horizontal scans,
//! success after failures, exfiltration against a baseline.

use std::net::IpAddr;

use jiff::Timestamp;
use orbwatch_detect::behaviour::observe::{ObsBuffer, evidence_ref};
use orbwatch_detect::behaviour::{BehaviourConfig, BehaviourFinding, Engine};
use orbwatch_detect::enrich::Enricher;
use orbwatch_detect::{FindingKind, InternalNets, Severity};
use orbwatch_event::{AuthOutcome, Event, EventKind};

const T0: i64 = 1_709_251_200;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn auth(t: i64, src: &str, user: &str, ok: bool) -> Event {
    let mut ev = Event::new(EventKind::Auth);
    ev.time = Timestamp::from_second(T0 + t).ok();
    ev.src_ip = Some(ip(src));
    ev.user = Some(user.into());
    ev.service = Some("sshd".into());
    ev.auth = Some(if ok {
        AuthOutcome::Success
    } else {
        AuthOutcome::Failure
    });
    ev
}

fn probe(t: i64, src: &str, dst: &str, port: u16) -> Event {
    let mut ev = Event::new(EventKind::Connection);
    ev.time = Timestamp::from_second(T0 + t).ok();
    ev.src_ip = Some(ip(src));
    ev.dst_ip = Some(ip(dst));
    ev.dst_port = Some(port);
    ev.conn_state = Some("S0".into());
    ev
}

fn flow(t: i64, src: &str, dst: &str, bytes: u64) -> Event {
    let mut ev = Event::new(EventKind::Connection);
    ev.time = Timestamp::from_second(T0 + t).ok();
    ev.src_ip = Some(ip(src));
    ev.dst_ip = Some(ip(dst));
    ev.dst_port = Some(443);
    ev.conn_state = Some("SF".into());
    ev.bytes_out = Some(bytes);
    ev
}

fn run(events: &[Event]) -> Vec<BehaviourFinding> {
    let mut buf = ObsBuffer::new();
    let internal = InternalNets::default();
    for (i, e) in events.iter().enumerate() {
        buf.observe(e, evidence_ref(0, i as u64 + 1), &internal, &[7777]);
    }
    run_buf(buf)
}

fn run_buf(mut buf: ObsBuffer) -> Vec<BehaviourFinding> {
    let cfg = BehaviourConfig::default();
    let e = Enricher::none();
    Engine {
        cfg: &cfg,
        enricher: &e,
        partitions: 2,
    }
    .run(&mut buf)
}

/// What must not change with the merge order.
type Key = (
    String,
    FindingKind,
    u64,
    Vec<IpAddr>,
    Vec<(usize, u64, i64)>,
);

fn mixed() -> Vec<Event> {
    let mut ev = Vec::new();
    for i in 0..30 {
        ev.push(auth(i * 7, "198.51.100.9", &format!("u{}", i % 3), false));
        ev.push(probe(i, "203.0.113.5", "10.0.0.1", 1000 + i as u16));
    }
    for (k, s) in [
        "192.0.2.10",
        "192.0.2.11",
        "192.0.2.12",
        "192.0.2.13",
        "192.0.2.14",
        "192.0.2.15",
    ]
    .iter()
    .enumerate()
    {
        for d in 0..4 {
            ev.push(auth(d * 86_400 + k as i64 * 600, s, "alice", false));
        }
    }
    ev
}

#[test]
fn merge_order_does_not_change_findings() {
    let events = mixed();
    let whole = run(&events);
    // Two units, merged in both orders, events of each unit reversed.
    let internal = InternalNets::default();
    let unit = |range: std::ops::Range<usize>| {
        let mut b = ObsBuffer::new();
        for i in range.rev() {
            b.observe(
                &events[i],
                evidence_ref(0, i as u64 + 1),
                &internal,
                &[7777],
            );
        }
        b
    };
    let half = events.len() / 2;
    let mut ab = ObsBuffer::new();
    ab.merge(unit(0..half));
    ab.merge(unit(half..events.len()));
    let mut ba = ObsBuffer::new();
    ba.merge(unit(half..events.len()));
    ba.merge(unit(0..half));
    let key = |f: &[BehaviourFinding]| -> Vec<Key> {
        f.iter()
            .map(|x| {
                (
                    x.finding.id.clone(),
                    x.finding.kind,
                    x.finding.count,
                    x.finding.sources.clone(),
                    x.evidence.clone(),
                )
            })
            .collect()
    };
    let (a, b) = (run_buf(ab), run_buf(ba));
    assert_eq!(key(&whole), key(&a));
    assert_eq!(key(&a), key(&b));
    let kinds: Vec<FindingKind> = whole.iter().map(|f| f.finding.kind).collect();
    assert!(kinds.contains(&FindingKind::PortScan), "{kinds:?}");
    assert!(kinds.contains(&FindingKind::BruteForce), "{kinds:?}");
    assert!(
        kinds.contains(&FindingKind::DistributedBruteforce),
        "{kinds:?}"
    );
}

#[test]
fn horizontal_scan_is_one_port_on_many_hosts() {
    let ev: Vec<Event> = (0..25)
        .map(|i| probe(i * 10, "203.0.113.7", &format!("10.0.1.{}", i + 1), 23))
        .collect();
    let f = run(&ev);
    assert_eq!(f.len(), 1);
    let d = f[0].finding.details.as_ref().unwrap();
    assert_eq!(d["scan"], "horizontal");
    assert_eq!(d["distinct_hosts"], 25);
    assert_eq!(f[0].evidence_total, 25);
    // 14 ports on one host over 14 minutes is below the vertical default
    // (15) and too slow for a burst (5 ports within 60 s).
    let ev: Vec<Event> = (0..14)
        .map(|i| probe(i * 60, "203.0.113.8", "10.0.0.1", 100 + i as u16))
        .collect();
    assert!(run(&ev).is_empty());
    // The same 14 ports within 14 seconds are a burst.
    let ev: Vec<Event> = (0..14)
        .map(|i| probe(i, "203.0.113.8", "10.0.0.1", 100 + i as u16))
        .collect();
    let f = run(&ev);
    assert_eq!(f.len(), 1);
    assert!(
        f[0].finding.reasons[0].contains("a burst"),
        "{:?}",
        f[0].finding.reasons
    );
    // Four ports within seconds are not.
    let ev: Vec<Event> = (0..4)
        .map(|i| probe(i, "203.0.113.9", "10.0.0.1", 100 + i as u16))
        .collect();
    assert!(run(&ev).is_empty());
}

#[test]
fn success_after_failures_needs_three_failures() {
    let mut ev: Vec<Event> = (0..3)
        .map(|i| auth(i * 60, "198.51.100.20", "bob", false))
        .collect();
    ev.push(auth(300, "198.51.100.20", "bob", true));
    let f = run(&ev);
    assert_eq!(
        f.len(),
        1,
        "{:?}",
        f.iter().map(|x| x.finding.kind).collect::<Vec<_>>()
    );
    assert_eq!(f[0].finding.kind, FindingKind::SuccessAfterFailures);
    assert_eq!(f[0].finding.severity, Some(Severity::High));
    assert_eq!(f[0].finding.accounts, vec!["bob".to_string()]);
    assert_eq!(f[0].evidence_total, 4);
    // A typo: two failures then a success.
    let ev = vec![
        auth(0, "198.51.100.21", "bob", false),
        auth(10, "198.51.100.21", "bob", false),
        auth(20, "198.51.100.21", "bob", true),
    ];
    assert!(run(&ev).is_empty());
}

#[test]
fn exfiltration_is_measured_against_the_hosts_baseline() {
    let mut ev = Vec::new();
    for h in 0..10 {
        ev.push(flow(h * 3600, "10.0.0.5", "198.51.100.80", 20_000_000));
    }
    ev.push(flow(
        10 * 3600 + 60,
        "10.0.0.5",
        "203.0.113.99",
        400_000_000,
    ));
    ev.push(flow(
        10 * 3600 + 120,
        "10.0.0.5",
        "203.0.113.99",
        300_000_000,
    ));
    let f = run(&ev);
    assert_eq!(f.len(), 1);
    let x = &f[0].finding;
    assert_eq!(x.kind, FindingKind::Exfiltration);
    assert_eq!(x.dst_ip, Some(ip("203.0.113.99")));
    assert_eq!(x.details.as_ref().unwrap()["bytes"], 700_000_000u64);
    // The same volume every hour is the baseline, not a finding.
    let ev: Vec<Event> = (0..12)
        .map(|h| flow(h * 3600, "10.0.0.6", "198.51.100.81", 200_000_000))
        .collect();
    assert!(run(&ev).is_empty());
}

#[test]
fn local_brute_force_without_source_address_is_keyed_by_host() {
    // Windows 4625 for a local logon: no IpAddress, only the Computer.
    let ev: Vec<Event> = (0..16)
        .map(|i| {
            let mut e = auth(i * 2, "192.0.2.1", "Administrator", false);
            e.src_ip = None;
            e.host = Some("WIN10-LAB".into());
            e.service = Some("windows".into());
            e
        })
        .collect();
    let f = run(&ev);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].finding.kind, FindingKind::BruteForce);
    assert_eq!(f[0].finding.src_ip, None);
    assert_eq!(
        f[0].finding.details.as_ref().unwrap()["source"],
        "host WIN10-LAB"
    );
    assert!(
        f[0].finding
            .reasons
            .iter()
            .any(|r| r.contains("no source address"))
    );
    assert_eq!(f[0].evidence_total, 16);
}

#[test]
fn busy_client_with_mostly_answered_connections_is_not_a_scanner() {
    let mut ev: Vec<Event> = (0..25)
        .map(|i| probe(i * 60, "10.0.0.40", &format!("198.51.100.{}", i + 1), 443))
        .collect();
    // The same proxy's answered connections in those hours: 101 > 4 × 25.
    for i in 0..101 {
        let mut e = flow(
            i * 10,
            "10.0.0.40",
            &format!("203.0.113.{}", i % 200 + 1),
            1000,
        );
        e.conn_state = Some("SF".into());
        ev.push(e);
    }
    assert!(run(&ev).is_empty());
    // With 100 (= 4 × 25) answered it is still reported, and says so.
    ev.pop();
    let f = run(&ev);
    assert_eq!(f.len(), 1);
    assert!(
        f[0].finding
            .reasons
            .iter()
            .any(|r| r.contains("100 other connections"))
    );
}

/// The live path: detectors fed one event at a time report a scan and a
/// brute force as soon as event time passes their idle time, without
/// the end of input, and exactly what the replay of the same events
/// reports.
#[test]
fn advancing_event_time_reports_idle_episodes_without_end_of_input() {
    use orbwatch_detect::behaviour::{CrossEvent, PartitionDetectors};
    let mut events: Vec<Event> = (0..20)
        .map(|i| probe(i, "198.51.100.7", "10.0.0.5", 1000 + i as u16))
        .collect();
    events.extend((0..8).map(|i| auth(100 + i * 5, "203.0.113.9", "root", false)));
    let mut buf = ObsBuffer::new();
    let internal = InternalNets::default();
    for (i, e) in events.iter().enumerate() {
        buf.observe(e, evidence_ref(0, i as u64 + 1), &internal, &[7777]);
    }
    buf.sort();
    let cfg = BehaviourConfig::default();
    let mut live = PartitionDetectors::new(&cfg);
    let mut cross: Vec<CrossEvent> = Vec::new();
    for o in &buf.obs {
        live.observe(o, &buf.tables, &mut cross);
    }
    assert!(
        live.take_drafts().is_empty(),
        "both episodes are still open right after their last event"
    );
    assert!(live.tracked() > 0);
    // Event time moves on (a watermark) to one second short of an hour
    // after the last failure: the scan (last probe 116 s earlier) is over,
    // the brute force is not.
    let last = buf.obs.iter().map(|o| o.time).max().unwrap();
    live.advance(last + 3_599_000, &buf.tables, &mut cross);
    let kinds = |d: Vec<orbwatch_detect::behaviour::Draft>| -> Vec<FindingKind> {
        d.iter().map(|d| d.finding.kind).collect()
    };
    assert_eq!(kinds(live.take_drafts()), vec![FindingKind::PortScan]);
    live.advance(last + 3_601_000, &buf.tables, &mut cross);
    assert_eq!(kinds(live.take_drafts()), vec![FindingKind::BruteForce]);
    assert_eq!(
        live.tracked(),
        1,
        "only the auth record waits, for distributed spray"
    );
    let replayed: Vec<FindingKind> = run(&events).iter().map(|f| f.finding.kind).collect();
    assert!(
        replayed.contains(&FindingKind::PortScan) && replayed.contains(&FindingKind::BruteForce)
    );
    // The auth records went to the cross-source stage: 8 failures.
    let auths = cross
        .iter()
        .filter(|e| matches!(e, CrossEvent::Auth { .. }))
        .count();
    assert_eq!(auths, 8);
}

fn ids_alert(t: i64, src: &str, sig: &str) -> Event {
    let mut ev = Event::new(EventKind::Alert);
    ev.time = Timestamp::from_second(T0 + t).ok();
    ev.src_ip = Some(ip(src));
    ev.dst_ip = Some(ip("10.0.0.5"));
    ev.signature = Some(sig.into());
    ev
}

/// A live pipeline judges IDS verdicts when they go idle, not at the end
/// of input (which a daemon never reaches): a verdict about a source whose
/// scan orbwatch already reported strengthens that finding and hands it on
/// again with the same id; a verdict about a source orbwatch saw nothing
/// else of becomes a finding of its own. Both arrive from `advance` alone,
/// and the state they used is gone afterwards.
#[test]
fn live_ids_verdicts_are_judged_when_idle() {
    use orbwatch_detect::behaviour::LiveDetectors;
    let mut events: Vec<Event> = (0..20)
        .map(|i| probe(i, "198.51.100.7", "10.0.0.5", 1000 + i as u16))
        .collect();
    events.push(ids_alert(
        40,
        "198.51.100.7",
        "ET SCAN Potential VNC Scan 5900-5920",
    ));
    events.push(ids_alert(40, "192.0.2.44", "SSH::Password_Guessing"));
    let mut buf = ObsBuffer::new();
    let internal = InternalNets::default();
    for (i, e) in events.iter().enumerate() {
        buf.observe(e, evidence_ref(0, i as u64 + 1), &internal, &[7777]);
    }
    buf.sort();
    let cfg = BehaviourConfig::default();
    let enricher = Enricher::none();
    let mut live = LiveDetectors::new(&cfg, &enricher);
    for o in &buf.obs {
        live.observe(o, &buf.tables);
    }
    let idle_ms = 1000
        * cfg
            .port_scan
            .idle_secs
            .max(cfg.brute_force.idle_secs)
            .max(cfg.login_flood.idle_secs);
    let t0 = T0 * 1000;
    // The scan ends first (its own idle time): reported without the verdict.
    live.advance(
        t0 + 19_000 + cfg.port_scan.idle_secs * 1000 + 1000,
        &buf.tables,
    );
    let first = live.take_drafts();
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].finding.kind, FindingKind::PortScan);
    assert!(
        !first[0].finding.reasons.iter().any(|r| r.contains("IDS")),
        "{:?}",
        first[0].finding.reasons
    );
    let scan_id = first[0].finding.id.clone();
    let scan_score = first[0].finding.score.unwrap();
    assert!(live.tracked() >= 2, "both verdict keys still wait");
    // One second before the verdicts' idle time: nothing.
    live.advance(t0 + 40_000 + idle_ms - 1000, &buf.tables);
    assert!(live.take_drafts().is_empty());
    // After it: the scan again, strengthened, and the lone brute-force verdict.
    live.advance(t0 + 40_000 + idle_ms + 1000, &buf.tables);
    let mut second = live.take_drafts();
    second.sort_by_key(|d| d.finding.kind);
    let kinds: Vec<FindingKind> = second.iter().map(|d| d.finding.kind).collect();
    assert_eq!(kinds, [FindingKind::PortScan, FindingKind::BruteForce]);
    let scan = &second[0];
    assert_eq!(
        scan.finding.id, scan_id,
        "the same finding, handed on again"
    );
    assert_eq!(scan.finding.score, Some(scan_score + 10));
    assert!(
        scan.finding
            .reasons
            .iter()
            .any(|r| r.contains("an IDS reached the same verdict") && r.contains("VNC Scan")),
        "{:?}",
        scan.finding.reasons
    );
    let lone = &second[1];
    assert_eq!(lone.finding.src_ip, Some(ip("192.0.2.44")));
    assert!(
        lone.finding
            .reasons
            .iter()
            .any(|r| r.contains("Password_Guessing")),
        "{:?}",
        lone.finding.reasons
    );
    assert_eq!(live.tracked(), 0, "nothing waits any more");
    // The end of input adds nothing more.
    assert!(live.finish(&buf.tables).is_empty());
}
