//! IPv4-mapped IPv6 addresses count as their IPv4 in both modes of a hunt
//! (issue 19): the full decode (behaviour on) and the fast sweep
//! (`--no-behaviour`, records decoded only when their raw text names an
//! indicator) give the same IOC findings, and the counts equal the number
//! of lines that name each listed address in any of its spellings: dotted
//! (`1.2.3.4`, `::ffff:1.2.3.4`) or hex (`::ffff:102:304`,
//! `0:0:0:0:0:ffff:0102:0304`, upper case, in brackets with a port).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use orbwatch_detect::{InternalNets, IocEngine};
use orbwatch_engine::{Engine, EngineOptions};
use orbwatch_intel::value::parse_value;
use orbwatch_intel::{Indicator, Provenance};
use orbwatch_source::Filters;
use proptest::prelude::*;

const LISTED: [Ipv4Addr; 3] = [
    Ipv4Addr::new(1, 2, 3, 4),
    Ipv4Addr::new(198, 51, 100, 7),
    Ipv4Addr::new(45, 67, 0, 10),
];
const UNLISTED: [Ipv4Addr; 2] = [Ipv4Addr::new(203, 0, 113, 9), Ipv4Addr::new(1, 2, 3, 5)];

fn ioc() -> IocEngine {
    let inds = LISTED.iter().enumerate().map(|(i, a)| {
        Indicator::new(
            parse_value(&a.to_string(), None).expect("test value parses"),
            Provenance {
                feed: "relays".into(),
                file: "relays.txt".into(),
                line: i as u64 + 1,
                record_id: None,
            },
        )
    });
    IocEngine::new(inds, InternalNets::default())
}

/// One spelling of `a`.
fn spell(a: Ipv4Addr, form: u8) -> String {
    let o = a.octets();
    let (hi, lo) = (
        u16::from_be_bytes([o[0], o[1]]),
        u16::from_be_bytes([o[2], o[3]]),
    );
    match form % 7 {
        0 => a.to_string(),
        1 => format!("::ffff:{a}"),
        2 => format!("::ffff:{hi:x}:{lo:x}"),
        3 => format!("0:0:0:0:0:ffff:{hi:04x}:{lo:04x}"),
        4 => format!("::FFFF:{hi:X}:{lo:X}"),
        5 => format!("[::ffff:{hi:x}:{lo:x}]:22"),
        _ => format!("0000:0000:0000:0000:0000:ffff:{hi:04x}:{lo:04x}"),
    }
}

/// A line naming `addr` (already spelled), in one of a few formats.
fn line(i: usize, kind: u8, addr: &str) -> String {
    let ts = format!("Mar  1 10:{:02}:{:02}", i / 60 % 60, i % 60);
    match kind % 4 {
        0 => format!("{ts} srv sshd[{i}]: Failed password for root from {addr} port 4{i:04} ssh2"),
        1 => format!(
            "{ts} srv sshd[{i}]: Accepted publickey for deploy from {addr} port 5{i:04} ssh2"
        ),
        2 => format!(
            "{ts} srv kernel: [UFW BLOCK] IN=eth0 OUT= SRC={addr} DST=10.0.0.1 PROTO=TCP SPT=5555 DPT=22"
        ),
        _ => format!("{ts} srv app[{i}]: peer {addr} closed the connection"),
    }
}

/// Per indicator: (count, evidence line numbers).
fn ioc_findings(lines: &[String], behaviour: bool) -> BTreeMap<String, (u64, Vec<u64>)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("mixed.log");
    std::fs::write(&p, lines.join("\n") + "\n").expect("write log");
    let mut opts = EngineOptions {
        year: Some(2024),
        threads: 1,
        evidence_limit: 0,
        ..Default::default()
    };
    if !behaviour {
        opts.behaviour = None;
    }
    let engine = Engine::new(ioc(), opts).expect("engine starts");
    let (inputs, problems) =
        orbwatch_source::expand(&[p.to_string_lossy().into_owned()], &Filters::default());
    let mut found = Vec::new();
    engine
        .hunt(&inputs, &problems, &mut found)
        .expect("hunt runs");
    let mut out: BTreeMap<String, (u64, Vec<u64>)> = BTreeMap::new();
    for f in found.iter().filter(|f| f.ioc.is_some()) {
        let ind = f
            .ioc
            .as_ref()
            .map(|i| i.indicator.clone())
            .unwrap_or_default();
        let e = out.entry(ind).or_default();
        e.0 += f.count;
        e.1.extend(
            f.evidence
                .iter()
                .filter(|v| !v.context)
                .filter_map(|v| v.line),
        );
    }
    for v in out.values_mut() {
        v.1.sort_unstable();
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn both_modes_count_mapped_addresses_as_their_ipv4(
        picks in proptest::collection::vec((0usize..5, any::<u8>(), any::<u8>()), 1..60),
    ) {
        let mut lines = Vec::new();
        let mut want: BTreeMap<String, (u64, Vec<u64>)> = BTreeMap::new();
        for (i, (who, form, kind)) in picks.iter().enumerate() {
            let a = if *who < 3 { LISTED[*who] } else { UNLISTED[who - 3] };
            lines.push(line(i, *kind, &spell(a, *form)));
            if *who < 3 {
                let e = want.entry(a.to_string()).or_default();
                e.0 += 1;
                e.1.push(i as u64 + 1);
            }
        }
        let full = ioc_findings(&lines, true);
        let fast = ioc_findings(&lines, false);
        prop_assert_eq!(&full, &want, "full decode:\n{}", lines.join("\n"));
        prop_assert_eq!(&fast, &want, "fast sweep:\n{}", lines.join("\n"));
    }
}
