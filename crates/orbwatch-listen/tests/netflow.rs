//! The NetFlow/IPFIX collector on loopback, fed the export datagrams of
//! real exporters (logstash-codec-netflow's captures, Apache-2.0, copied in
//! `tests/data/netflow`, see its ATTRIBUTION.md): every datagram arrives as
//! one record, and `NetflowDecoder` decodes from the records exactly the
//! flows it decodes from the files.

mod common;

use std::net::{IpAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use orbwatch_capture::netflow::{NetflowDecoder, frame_len, read_datagrams};
use orbwatch_capture::{Coverage, Emitted};
use orbwatch_listen::{ListenerConfig, NetflowConfig};
use orbwatch_live::Payload;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/netflow")
}

/// Templates before the data that needs them, as exporters send them.
const FILES: &[&str] = &[
    "netflow5.dat",
    "netflow5_test_juniper_mx80.dat",
    "netflow9_test_valid01.dat",
    "netflow9_test_softflowd_tpl_data.dat",
    "netflow9_test_cisco_asa_1_tpl.dat",
    "netflow9_test_cisco_asa_1_data.dat",
    "ipfix.dat",
    "ipfix_test_mikrotik_tpl.dat",
    "ipfix_test_mikrotik_data258.dat",
    "ipfix_test_mikrotik_data259.dat",
    "ipfix_test_netscaler_tpl.dat",
    "ipfix_test_netscaler_data.dat",
    "ipfix_test_yaf_tpl45841.dat",
    "ipfix_test_yaf_data45841.dat",
    // Last: its zero padding runs to the end of what is read after it.
    "netflow9_test_paloalto_81_tpl256-263.dat",
    "netflow9_test_paloalto_81_data257_1flowset_in_large_zerofilled_packet.dat",
];

/// The datagrams of the files, split as `read_datagrams` splits them.
fn datagrams(all: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < all.len() {
        let n = frame_len(&all[pos..]).expect("a NetFlow header");
        out.push(&all[pos..pos + n]);
        pos += n;
    }
    out
}

fn flows(emitted: &[Emitted]) -> usize {
    emitted.len()
}

#[test]
fn corpus_datagrams_sent_over_udp_decode_to_the_same_flows_as_the_files() {
    let mut all = Vec::new();
    for f in FILES {
        all.extend(std::fs::read(data_dir().join(f)).unwrap());
    }
    // The reference: the files read as `hunt` reads them.
    let mut from_file = Vec::new();
    let cov = read_datagrams(all.as_slice(), &mut |e| from_file.push(e));
    assert!(cov.fatal.is_none(), "{:?}", cov.fatal);
    let grams = datagrams(&all);
    // Each file is split on its own boundaries (no datagram spans two).
    let mut starts = std::collections::BTreeSet::new();
    let mut at = 0;
    for g in &grams {
        starts.insert(at);
        at += g.len();
    }
    let mut at = 0;
    for f in FILES {
        assert!(starts.contains(&at), "{f} does not start a datagram");
        at += std::fs::metadata(data_dir().join(f)).unwrap().len() as usize;
    }
    assert_eq!(grams.len() as u64, cov.records);
    assert_eq!(grams.len(), 29);
    assert_eq!(flows(&from_file), 150);

    let run = start(
        ListenerConfig::Netflow(NetflowConfig::new(loopback())),
        1024,
    );
    let exporter = UdpSocket::bind("127.0.0.1:0").unwrap();
    for g in &grams {
        exporter.send_to(g, run.addr()).unwrap();
        // Keep arrival order obvious in the logs; loopback keeps it anyway.
        std::thread::sleep(Duration::from_millis(2));
    }
    let recs = run.take(grams.len(), Duration::from_secs(10));
    assert_eq!(recs.len(), grams.len());
    let from = exporter.local_addr().unwrap();
    let mut dec = NetflowDecoder::new();
    let mut cov2 = Coverage::new("netflow");
    let mut from_live = Vec::new();
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.payload, Payload::NetflowDatagram { exporter: from });
        assert_eq!(&*r.stream, format!("netflow {from}"));
        assert_eq!(r.number, i as u64 + 1);
        assert_eq!(r.bytes, grams[i], "datagram {i} changed on the way");
        let Payload::NetflowDatagram { exporter } = r.payload else {
            unreachable!()
        };
        let ip: IpAddr = exporter.ip();
        dec.datagram(&r.bytes, ip, r.number, 0, &mut cov2, &mut |e| {
            from_live.push(e)
        });
    }
    dec.finish(&mut cov2);
    assert_eq!(flows(&from_live), flows(&from_file));
    let s = run.settled(|s| s.records == grams.len() as u64);
    assert_eq!(s.bytes, all.len() as u64);
    assert_eq!((s.dropped_full, s.kernel_drops, s.truncated), (0, 0, 0));
}
