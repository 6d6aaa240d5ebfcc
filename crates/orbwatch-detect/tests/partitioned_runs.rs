//! Runs split by partition as they are handed over (in memory or spilled
//! to disk) replay to the same findings, evidence included, as one sorted
//! buffer; so do runs split for another partition count, and the
//! unsplit stream of every run.

use std::net::IpAddr;

use jiff::Timestamp;
use orbwatch_detect::InternalNets;
use orbwatch_detect::behaviour::observe::{ObsBuffer, evidence_ref};
use orbwatch_detect::behaviour::runs::{ObsRuns, RunCollector};
use orbwatch_detect::behaviour::{BehaviourConfig, Engine};
use orbwatch_detect::enrich::Enricher;
use orbwatch_event::{Action, AuthOutcome, Event, EventKind};

/// Every finding whole (as JSON) with its evidence.
type Key = Vec<(String, u64, Vec<(usize, u64, i64)>)>;

/// A day of auth failures and successes, probes and flows from IPv4
/// sources in eight /24s, IPv6 sources and named hosts (local logons),
/// in a fixed pseudo-random order.
fn events() -> Vec<Event> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..3000u64)
        .map(|i| {
            let r = next();
            let kind = r % 6;
            let mut e = Event::new(if kind % 3 == 0 {
                EventKind::Auth
            } else {
                EventKind::Connection
            });
            // Mostly in time order, with some stragglers.
            let t = 1_700_000_000 + (i as i64) * 20 - (r >> 60) as i64 * 300;
            e.time = Timestamp::from_second(t).ok();
            let s = (r >> 8) % 40;
            match (r >> 16) % 10 {
                0 => e.host = Some(format!("ws-{}", s % 3)),
                1 => e.src_ip = Some(IpAddr::from([0x2001, 0xdb8, 0, s as u16 % 4, 0, 0, 0, 1])),
                _ => {
                    e.src_ip = Some(IpAddr::from(
                        ((0xC633_0000 | ((s % 8) << 8) | s) as u32).to_be_bytes(),
                    ))
                }
            }
            e.dst_ip = Some(IpAddr::from(
                ((0x0A00_0000 | ((r >> 24) % 30)) as u32).to_be_bytes(),
            ));
            e.dst_port =
                Some([22, 443, 3389, 8080, 7777][((r >> 32) % 5) as usize] + (r >> 40) as u16 % 50);
            match kind {
                0 => e.auth = Some(AuthOutcome::Failure),
                3 => e.auth = Some(AuthOutcome::Success),
                1 => e.conn_state = Some("S0".into()),
                4 => e.action = Some(Action::Deny),
                2 => {
                    e.conn_state = Some("SF".into());
                    e.bytes_out = Some((r >> 20) % 5_000_000);
                }
                _ => e.auth = Some(AuthOutcome::InvalidUser),
            }
            let user = (r >> 48) % 12;
            e.user = Some(format!("u{user}"));
            e.service = Some(["sshd", "vpn", ""][(user % 3) as usize].to_string());
            e
        })
        .collect()
}

fn config() -> BehaviourConfig {
    let mut cfg = BehaviourConfig::default();
    cfg.port_scan.min_ports = 3;
    cfg.port_scan.min_hosts = 0;
    cfg.brute_force.max_failures = 5;
    cfg.brute_force.slow_failures = 2;
    cfg.distributed.min_sources = 0;
    cfg.distributed.min_points = 0;
    cfg.exfiltration.min_history_hours = 0;
    cfg.exfiltration.min_bytes = 0;
    cfg
}

fn key(found: Vec<orbwatch_detect::behaviour::BehaviourFinding>) -> Key {
    found
        .into_iter()
        .map(|f| {
            let json = serde_json::to_string(&f.finding).unwrap_or_default();
            (json, f.evidence_total, f.evidence)
        })
        .collect()
}

const CHUNK: usize = 700;

/// The events observed as chunks of one input (lines counted from each
/// chunk's start), handed over last chunk first, in runs of 100.
fn collect(events: &[Event], c: RunCollector) -> ObsRuns {
    let internal = InternalNets::default();
    let chunks: Vec<(usize, &[Event])> = events.chunks(CHUNK).enumerate().collect();
    for &(chunk, evs) in chunks.iter().rev() {
        let mut buf = ObsBuffer::new();
        for (i, e) in evs.iter().enumerate() {
            buf.observe(e, evidence_ref(0, i as u64 + 1), &internal, &[7777]);
            if (i + 1) % 100 == 0 {
                c.add(0, chunk, &mut buf, false);
            }
        }
        c.add(0, chunk, &mut buf, true);
    }
    c.finish(|_, chunk| (chunk * CHUNK) as u64)
}

#[test]
fn runs_split_by_partition_in_memory_or_spilled_give_the_same_findings() {
    let events = events();
    let cfg = config();
    let enricher = Enricher::none();
    let engine = |partitions| Engine {
        cfg: &cfg,
        enricher: &enricher,
        partitions,
    };
    let internal = InternalNets::default();
    let mut all = ObsBuffer::new();
    for (i, e) in events.iter().enumerate() {
        all.observe(e, evidence_ref(0, i as u64 + 1), &internal, &[7777]);
    }
    let expected = key(engine(1).run(&mut all));
    let kinds: std::collections::BTreeSet<String> = expected
        .iter()
        .map(|(json, _, _)| {
            let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
            v["kind"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    assert!(
        expected.len() >= 10 && kinds.len() >= 3,
        "the events should make findings of several kinds: {kinds:?}, {} findings",
        expected.len()
    );

    // (budget, partitions the runs are split into, partitions replayed)
    for (budget, split, replay) in [
        (0, 2, 2),
        (1, 2, 2),
        (250, 2, 2),
        (1, 3, 3),
        (1, 3, 2),
        (1, 2, 1),
        (0, 1, 2),
    ] {
        let runs = collect(
            &events,
            RunCollector::new(budget, None).with_partitions(split),
        );
        if budget == 1 {
            assert_eq!(runs.spilled_obs, runs.len(), "everything spilled");
        }
        if budget == 250 {
            assert!(runs.spilled_runs > 0 && runs.spilled_obs < runs.len());
        }
        let (found, _, _) = engine(replay).run_runs(&runs);
        assert!(runs.read_errors().is_empty());
        assert_eq!(
            key(found),
            expected,
            "budget {budget}, split in {split}, replayed in {replay}"
        );
    }
}
