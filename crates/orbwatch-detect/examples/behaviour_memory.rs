//! Memory of the behaviour detectors with N distinct sources (default one
//! million), the shape of internet background: each source, at a scattered
//! address, fails one login (no account name) and sends one unanswered
//! probe.
//! Prints the observation buffer size, the peak RSS (VmHWM) before and
//! after the replay, and bytes per tracked source.
//!
//! `cargo run --release -p orbwatch-detect --example behaviour_memory [N] [both|auth|probe]`
//!
//! `auth` feeds only the failed logins, `probe` only the probes, `both`
//! (default) both.

use std::net::{IpAddr, Ipv4Addr};

use orbwatch_detect::InternalNets;
use orbwatch_detect::behaviour::observe::{ObsBuffer, evidence_ref};
use orbwatch_detect::behaviour::{
    BehaviourConfig, Engine, brute_force, distributed, exfiltration, port_scan,
    success_after_failures,
};
use orbwatch_detect::enrich::Enricher;
use orbwatch_event::{AuthOutcome, Event, EventKind};

fn hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mode = std::env::args().nth(2).unwrap_or_else(|| "both".into());
    let (auth, probe) = match mode.as_str() {
        "auth" => (true, false),
        "probe" => (false, true),
        _ => (true, true),
    };
    let base = hwm_kb();
    let internal = InternalNets::default();
    let mut buf = ObsBuffer::new();
    let t0 = jiff::Timestamp::from_second(1_709_251_200).unwrap();
    for i in 0..n {
        // Scattered over the address space (a bijection of 0..2^32).
        let ip = IpAddr::V4(Ipv4Addr::from(i.wrapping_mul(0x9E37_79B1) ^ 0x5bd1_e995));
        let mut ev = Event::new(EventKind::Auth);
        ev.time = Some(t0 + jiff::SignedDuration::from_millis(i64::from(i)));
        ev.src_ip = Some(ip);
        ev.service = Some("sshd".into());
        ev.auth = Some(AuthOutcome::Failure);
        if auth {
            let r = evidence_ref(0, u64::from(i) * 2 + 1);
            buf.observe(&ev, r, &internal, &[]);
        }
        let mut p = Event::new(EventKind::Connection);
        p.time = ev.time;
        p.src_ip = Some(ip);
        p.dst_ip = Some("10.0.0.1".parse().unwrap());
        p.dst_port = Some(22);
        p.conn_state = Some("S0".into());
        if probe {
            let r = evidence_ref(0, u64::from(i) * 2 + 2);
            buf.observe(&p, r, &internal, &[]);
        }
    }
    let after_obs = hwm_kb();
    let buf_bytes = buf.heap_bytes();
    let cfg = BehaviourConfig::default();
    let enricher = Enricher::none();
    let engine = Engine {
        cfg: &cfg,
        enricher: &enricher,
        partitions: 2,
    };
    let findings = engine.run(&mut buf);
    let peak = hwm_kb();
    println!("sources: {n} ({mode})");
    println!("observations: {} (40 bytes each)", buf.len());
    println!(
        "observation buffer + tables: {:.1} MB",
        buf_bytes as f64 / 1e6
    );
    println!(
        "peak RSS: baseline {:.1} MB, after observing {:.1} MB, after detectors {:.1} MB",
        base as f64 / 1e3,
        after_obs as f64 / 1e3,
        peak as f64 / 1e3
    );
    println!(
        "bytes per source: detectors {:.0} (peak after detectors − after observing), whole hunt path {:.0} (peak − baseline)",
        (peak.saturating_sub(after_obs) * 1024) as f64 / f64::from(n),
        (peak.saturating_sub(base) * 1024) as f64 / f64::from(n)
    );
    println!("findings: {}", findings.len());
    println!(
        "state bytes per key: port_scan {}, brute_force {}, distributed {}, success_after_failures {}, exfiltration {}",
        port_scan::STATE_BYTES,
        brute_force::STATE_BYTES,
        distributed::STATE_BYTES,
        success_after_failures::STATE_BYTES,
        exfiltration::STATE_BYTES
    );
}
