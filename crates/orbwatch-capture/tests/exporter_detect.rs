//! Exporter traffic recognised by payload, whatever the port: the real
//! export datagrams of `tests/data/netflow` (logstash-codec-netflow's
//! captures from 30-odd exporters, Apache-2.0, see its ATTRIBUTION.md)
//! wrapped in a capture on an odd port, and the corpus captures (nDPI,
//! LGPL, read in place): NetFlow v9 on port 2057 and IPFIX from a
//! FRITZ!Box are exports; sFlow, a SYN scan, SSH and web traffic are not.

mod common;

use std::path::{Path, PathBuf};

use etherparse::PacketBuilder;
use orbwatch_capture::exporter::{export_header, is_exporter_capture, sample};
use orbwatch_capture::netflow::frame_len;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/netflow")
}

fn dat_files() -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir())
        .expect("tests/data/netflow")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".dat"))
        .map(|n| {
            let mut b = std::fs::read(dir().join(&n)).expect("read");
            // Files holding several datagrams back to back: the first.
            if let Some(len) = frame_len(&b) {
                b.truncate(len);
            }
            (n, b)
        })
        .collect();
    v.sort();
    v
}

/// A classic pcap (Ethernet) of UDP datagrams to `dport`.
fn pcap_of(payloads: &[&[u8]], dport: u16) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (i, p) in payloads.iter().enumerate() {
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([192, 0, 2, 10], [192, 0, 2, 200], 64)
            .udp(40000, dport);
        let mut pkt = Vec::new();
        b.write(&mut pkt, p).expect("build packet");
        out.extend_from_slice(&(1_469_100_000u32 + i as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
        out.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
        out.extend_from_slice(&pkt);
    }
    out
}

#[test]
fn real_export_datagrams_pass_the_header_check() {
    let files = dat_files();
    let mut rejected = Vec::new();
    for (name, bytes) in &files {
        if export_header(bytes).is_none() {
            rejected.push(name.clone());
        }
    }
    println!("{} files, rejected {rejected:?}", files.len());
    assert_eq!(files.len(), REAL_FILES);
    assert_eq!(rejected, EXPECTED_REJECTED);
}

/// `.dat` files in tests/data/netflow.
const REAL_FILES: usize = 92;
/// Files whose first datagram is not consistent: the two upstream marks
/// invalid (a v5 header claiming 55582 records).
const EXPECTED_REJECTED: &[&str] = &["netflow5_test_invalid01.dat", "netflow5_test_invalid02.dat"];

#[test]
fn an_exporter_capture_on_an_odd_port_is_recognised() {
    let files = dat_files();
    let good: Vec<&[u8]> = files
        .iter()
        .filter(|(_, b)| export_header(b).is_some())
        .map(|(_, b)| b.as_slice())
        .take(20)
        .collect();
    for port in [6000, 2057, 53, 2055] {
        let cap = pcap_of(&good, port);
        let s = sample(&cap);
        assert_eq!(s.ip_packets, 20, "{s:?}");
        assert_eq!(s.exports, 20, "{s:?}");
        assert!(is_exporter_capture(&cap), "port {port}: {s:?}");
    }
    // Mixed with as many DNS-looking datagrams: not an exporter capture.
    let junk = [0x12u8, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    let mut mixed = good.clone();
    mixed.extend(std::iter::repeat_n(&junk[..], 20));
    assert!(!is_exporter_capture(&pcap_of(&mixed, 6000)));
    // Cut short anywhere: never a panic, and a cut head still decides
    // from the packets it holds.
    let cap = pcap_of(&good, 6000);
    for cut in (0..cap.len()).step_by(97) {
        let _ = is_exporter_capture(&cap[..cut]);
    }
    assert!(is_exporter_capture(&cap[..cap.len() - 5]));
}

#[test]
fn corpus_captures() {
    let Some(c) = common::corpus() else {
        return;
    };
    for (f, want, exports) in [
        ("netflow/ndpi-pcap/ndpi_netflowv9.pcap", true, 10),
        ("netflow/ndpi-pcap/ndpi_netflow-fritz.pcap", true, 1),
        ("netflow/ndpi-pcap/ndpi_sflow.pcap", false, 0),
        ("pcap/ndpi_synscan.pcap", false, 0),
        ("pcap/ndpi_ssh.pcap", false, 0),
        ("pcap/zeek_wikipedia.pcap", false, 0),
        ("pcap/ndpi_tcp_scan.pcapng", false, 0),
    ] {
        let bytes = std::fs::read(c.join(f)).expect("read corpus file");
        let head = &bytes[..bytes.len().min(64 * 1024)];
        let s = sample(head);
        println!("{f}: {s:?}");
        assert_eq!(s.exports, exports, "{f}");
        assert_eq!(is_exporter_capture(head), want, "{f}");
    }
}
