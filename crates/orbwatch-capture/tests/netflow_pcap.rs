//! NetFlow/IPFIX inside captures of exporter traffic.

mod common;

use std::path::{Path, PathBuf};

use etherparse::PacketBuilder;
use orbwatch_capture::pcap::{NetflowInPcap, PcapOptions, read_capture};
use orbwatch_event::EventKind;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/netflow")
}

/// A classic pcap (Ethernet) of UDP datagrams from `src` to `dport`.
fn pcap_of(payloads: &[Vec<u8>], src: [u8; 4], dport: u16) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (i, p) in payloads.iter().enumerate() {
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src, [192, 0, 2, 200], 64)
            .udp(40000, dport);
        let mut pkt = Vec::new();
        b.write(&mut pkt, p).unwrap();
        out.extend_from_slice(&(1_469_100_000u32 + i as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
        out.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
        out.extend_from_slice(&pkt);
    }
    out
}

fn read(files: &[&str]) -> Vec<Vec<u8>> {
    files
        .iter()
        .map(|f| std::fs::read(dir().join(f)).unwrap())
        .collect()
}

#[test]
fn exporter_capture_decodes_like_the_dat_files() {
    let payloads = read(&[
        "ipfix_test_openbsd_pflow_tpl.dat",
        "ipfix_test_openbsd_pflow_data.dat",
    ]);
    let pcap = pcap_of(&payloads, [192, 0, 2, 10], 4739);
    // Auto: the collector port is recognised; the exporter's own UDP flow
    // is kept as a packet flow too.
    let (ev, cov) = common::collect(|s| read_capture(&pcap[..], &PcapOptions::default(), s));
    let records: Vec<_> = ev
        .iter()
        .filter(|e| e.raw().contains(" netflow v10 "))
        .collect();
    assert_eq!(records.len(), 26);
    assert_eq!(cov.flows, 27);
    assert!(records[25].raw().contains("exporter 192.0.2.10 "));
    assert_eq!(records[25].event.bytes_out, Some(6425));
    // Only (--input-format netflow): the records alone, on any port.
    let pcap = pcap_of(&payloads, [192, 0, 2, 10], 12345);
    let opts = PcapOptions {
        netflow: NetflowInPcap::Only,
        ..Default::default()
    };
    let (ev, cov) = common::collect(|s| read_capture(&pcap[..], &opts, s));
    assert_eq!(ev.len(), 26);
    assert!(ev.iter().all(|e| e.event.kind == EventKind::Connection));
    assert_eq!(cov.records, 2);
}

/// Templates are kept per exporter: the same template id from two
/// exporters, and data from one only after its own template.
#[test]
fn templates_are_kept_per_exporter() {
    let tpl = read(&["ipfix_test_openbsd_pflow_tpl.dat"]);
    let data = read(&["ipfix_test_openbsd_pflow_data.dat"]);
    let mut pcap = pcap_of(&tpl, [192, 0, 2, 10], 4739);
    // Data from another exporter: no template there.
    let other = pcap_of(&data, [192, 0, 2, 11], 4739);
    pcap.extend_from_slice(&other[24..]);
    let (ev, cov) = common::collect(|s| read_capture(&pcap[..], &PcapOptions::default(), s));
    assert_eq!(
        ev.iter().filter(|e| e.raw().contains(" netflow ")).count(),
        0
    );
    assert!(cov.waiting_for_template > 0);
    assert_eq!(cov.waiting_for_template, cov.never_decoded);
}

/// nDPI's netflowv9.pcap: ten v9 datagrams to port 2057 carrying data sets
/// whose templates are not in the capture. tshark (the oracle) lists their
/// flow set ids; each data set (id >= 256) is counted as waiting for a
/// template and never decoded, and no record is invented.
#[test]
fn ndpi_netflowv9_data_sets_wait_for_templates() {
    let Some(c) = common::corpus() else { return };
    let path = c.join("netflow/ndpi-pcap/ndpi_netflowv9.pcap");
    let out = std::process::Command::new("tshark")
        .args(["-r"])
        .arg(&path)
        .args([
            "-d",
            "udp.port==2057,cflow",
            "-T",
            "fields",
            "-e",
            "cflow.flowset_id",
        ])
        .output();
    let Some(out) = out.ok().filter(|o| o.status.success()) else {
        if std::env::var("ORBWATCH_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("tshark is required");
        }
        println!("skipped: tshark not installed");
        return;
    };
    let sets = String::from_utf8(out.stdout)
        .unwrap()
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter_map(|s| s.parse::<u16>().ok())
        .filter(|id| *id >= 256)
        .count() as u64;
    assert_eq!(sets, 23);
    let opts = PcapOptions {
        netflow: NetflowInPcap::Only,
        ..Default::default()
    };
    let f = std::fs::File::open(&path).unwrap();
    let (ev, cov) = common::collect(|s| read_capture(f, &opts, s));
    assert!(ev.is_empty());
    assert_eq!(cov.records, 10);
    assert_eq!(cov.waiting_for_template, sets);
    assert_eq!(cov.never_decoded, sets);
}
