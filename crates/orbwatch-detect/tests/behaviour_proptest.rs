//! Property test: any stream of auth, probe and flow events (odd times,
//! ports, addresses, names, thresholds) runs through every detector
//! without panicking, splitting it into units merged in either order
//! gives the same findings, and so does any number of partitions of the
//! sources.

use std::net::IpAddr;

use jiff::Timestamp;
use orbwatch_detect::InternalNets;
use orbwatch_detect::behaviour::observe::{ObsBuffer, evidence_ref};
use orbwatch_detect::behaviour::{BehaviourConfig, Engine};
use orbwatch_detect::enrich::Enricher;
use orbwatch_event::{Action, AuthOutcome, Event, EventKind};
use proptest::prelude::*;

/// (kind, time, source, destination, port, user, bytes, named source).
type Raw = (u8, i64, u32, u32, u16, u8, u64, bool);

/// What must not change with the merge order or the partitions: every
/// finding whole (as JSON) with its evidence.
type Key = Vec<(String, u64, Vec<(usize, u64, i64)>)>;

fn event(raw: Raw) -> Event {
    let (kind, t, src, dst, port, user, bytes, host) = raw;
    let mut e = Event::new(match kind % 3 {
        0 => EventKind::Auth,
        _ => EventKind::Connection,
    });
    e.time = Timestamp::from_second(t).ok();
    // Every third source an IPv6 address (interned: ids depend on the
    // order units are merged in, which must change no finding).
    e.src_ip = (!host).then(|| {
        if src % 3 == 0 {
            let [a, b, c, d] = src.to_be_bytes();
            IpAddr::from([
                0x2001,
                0xdb8,
                u16::from(a) << 8 | u16::from(b),
                u16::from(c),
                0,
                0,
                0,
                u16::from(d) + 1,
            ])
        } else {
            IpAddr::from(src.to_be_bytes())
        }
    });
    e.host = host.then(|| "h".to_string());
    e.dst_ip = Some(IpAddr::from(dst.to_be_bytes()));
    e.dst_port = Some(port);
    match kind % 6 {
        0 => e.auth = Some(AuthOutcome::Failure),
        3 => e.auth = Some(AuthOutcome::Success),
        1 => e.conn_state = Some("S0".into()),
        4 => e.action = Some(Action::Deny),
        2 => {
            e.conn_state = Some("SF".into());
            e.bytes_out = Some(bytes);
        }
        _ => e.auth = Some(AuthOutcome::InvalidUser),
    }
    e.user = Some(format!("u{user}"));
    e.service = Some(["sshd", "vpn", ""][usize::from(user % 3)].to_string());
    e.count = u64::from(user % 4);
    e
}

fn run(buf: &mut ObsBuffer, cfg: &BehaviourConfig, partitions: usize) -> Key {
    let e = Enricher::none();
    Engine {
        cfg,
        enricher: &e,
        partitions,
    }
    .run(buf)
    .into_iter()
    .map(|f| {
        let json = serde_json::to_string(&f.finding).unwrap_or_default();
        (json, f.evidence_total, f.evidence)
    })
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn detectors_never_panic_and_merge_order_is_irrelevant(
        evs in prop::collection::vec(
            (any::<u8>(), -62_000_000_000i64..250_000_000_000i64, 0u32..64, 0u32..64,
             any::<u16>(), any::<u8>(), any::<u64>(), any::<bool>()),
            0..300),
        near in any::<bool>(),
        small in any::<bool>(),
        spread in any::<bool>(),
        partitions in 2usize..5,
    ) {
        let mut cfg = BehaviourConfig::default();
        if small {
            cfg.port_scan.min_ports = 1;
            cfg.port_scan.min_hosts = 0;
            cfg.brute_force.max_failures = 0;
            cfg.brute_force.slow_failures = 1;
            cfg.distributed.min_sources = 0;
            cfg.distributed.min_points = 0;
            cfg.exfiltration.min_history_hours = 0;
            cfg.exfiltration.min_bytes = 0;
            // Accounts forgotten over the limit (the least: 16) must be
            // the same ones whatever the ids, which merge order decides.
            cfg.distributed.max_accounts = 16;
        }
        let events: Vec<Event> = evs
            .iter()
            .map(|&(k, t, s, d, p, u, b, h)| {
                // Near times make episodes; far ones test the extremes.
                let t = if near { 1_700_000_000 + t.rem_euclid(86_400 * 40) } else { t };
                // One /24, or eight: partitions split sources by /24.
                let src = if spread { 0xC633_0000 | (s % 8) << 8 | s } else { 0xC633_6400 | s };
                event((k, t, src, 0x0A00_0000 | d, p, u, b, h))
            })
            .collect();
        let internal = InternalNets::default();
        let unit = |r: std::ops::Range<usize>| {
            let mut b = ObsBuffer::new();
            for i in r.rev() {
                b.observe(&events[i], evidence_ref(0, i as u64 + 1), &internal, &[7777]);
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
        let one = run(&mut ab, &cfg, 1);
        prop_assert_eq!(&one, &run(&mut ba, &cfg, 1));
        prop_assert_eq!(&one, &run(&mut ab, &cfg, partitions));
    }
}
