//! Truncated and rewritten captures: a record cut at the end is a counted
//! error and everything before it is kept; the other byte order and
//! nanosecond stamps give the same flows.

mod common;

use orbwatch_capture::pcap::{PcapOptions, read_capture};
use orbwatch_capture::{Emitted, read_any};
use orbwatch_event::EventKind;

fn flows(bytes: &[u8]) -> (Vec<Emitted>, orbwatch_capture::Coverage) {
    let (ev, cov) = common::collect(|s| read_capture(bytes, &PcapOptions::default(), s));
    (
        ev.into_iter()
            .filter(|e| e.event.kind == EventKind::Connection)
            .collect(),
        cov,
    )
}

#[test]
fn truncated_last_record_is_counted_and_earlier_packets_kept() {
    let Some(c) = common::corpus() else { return };
    let full = std::fs::read(c.join("pcap/zeek_ftp_bruteforce.pcap")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut_path = dir.path().join("cut.pcap");
    std::fs::write(&cut_path, &full[..full.len() - 10]).unwrap();
    let cut = std::fs::read(&cut_path).unwrap();
    let (all, cov_all) = flows(&full);
    let (some, cov) = flows(&cut);
    assert_eq!(cov_all.errors, 0);
    assert_eq!(cov.records, cov_all.records - 1);
    assert_eq!(cov.errors, 1, "{:?}", cov.reasons);
    assert!(
        cov.reasons
            .contains_key("truncated packet record at end of file"),
        "{:?}",
        cov.reasons
    );
    let fatal = cov.fatal.clone().unwrap();
    assert!(
        fatal.starts_with("truncated packet record at offset "),
        "{fatal}"
    );
    assert_eq!(some.len(), all.len());
    let pk = |v: &[Emitted]| v.iter().map(|e| e.event.packets.unwrap()).sum::<u64>();
    assert_eq!(pk(&some), pk(&all) - 1);
}

#[test]
fn truncated_header_is_an_error_not_a_panic() {
    let Some(c) = common::corpus() else { return };
    let full = std::fs::read(c.join("pcap/ndpi_ssh.pcap")).unwrap();
    for n in [0, 3, 10, 23, 30, 100, 1000] {
        let (_, cov) = flows(&full[..n.min(full.len())]);
        assert!(
            cov.fatal.is_some() || cov.errors > 0 || n == 0,
            "{n}: {cov:?}"
        );
    }
    // pcapng cut in the middle of a block.
    let (_, cov) = flows(&full[..full.len() / 2]);
    assert_eq!(cov.errors, 1, "{:?}", cov.reasons);
}

/// Rewrite a little-endian microsecond pcap as big-endian nanosecond.
fn to_be_nanos(le: &[u8]) -> Vec<u8> {
    let u32le = |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    let u16le = |b: &[u8], i: usize| u16::from_le_bytes(b[i..i + 2].try_into().unwrap());
    assert_eq!(u32le(le, 0), 0xa1b2c3d4);
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b23c4du32.to_be_bytes());
    out.extend_from_slice(&u16le(le, 4).to_be_bytes());
    out.extend_from_slice(&u16le(le, 6).to_be_bytes());
    for i in [8, 12, 16, 20] {
        out.extend_from_slice(&u32le(le, i).to_be_bytes());
    }
    let mut i = 24;
    while i + 16 <= le.len() {
        let caplen = u32le(le, i + 8) as usize;
        out.extend_from_slice(&u32le(le, i).to_be_bytes());
        out.extend_from_slice(&(u32le(le, i + 4) * 1000).to_be_bytes());
        out.extend_from_slice(&u32le(le, i + 8).to_be_bytes());
        out.extend_from_slice(&u32le(le, i + 12).to_be_bytes());
        out.extend_from_slice(&le[i + 16..i + 16 + caplen]);
        i += 16 + caplen;
    }
    out
}

#[test]
fn big_endian_nanosecond_pcap_gives_the_same_flows() {
    let Some(c) = common::corpus() else { return };
    let le = std::fs::read(c.join("pcap/zeek_ssh_sshguess.pcap")).unwrap();
    let be = to_be_nanos(&le);
    let (a, _) = flows(&le);
    let (b, cov) = flows(&be);
    assert_eq!(cov.errors, 0);
    assert_eq!(a.len(), 11);
    let key = |v: &[Emitted]| -> Vec<String> { v.iter().map(|e| e.raw.clone()).collect() };
    assert_eq!(key(&a), key(&b));
    // Detection through read_any too.
    let (ev, cov) = common::collect(|s| read_any(&be[..], &Default::default(), s));
    assert_eq!(cov.format, "pcap");
    assert_eq!(cov.flows, 11);
    assert!(ev.len() >= 11);
}
