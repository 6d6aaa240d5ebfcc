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
    let key = |v: &[Emitted]| -> Vec<String> { v.iter().map(|e| e.raw().into_owned()).collect() };
    assert_eq!(key(&a), key(&b));
    // Detection through read_any too.
    let (ev, cov) = common::collect(|s| read_any(&be[..], &Default::default(), s));
    assert_eq!(cov.format, "pcap");
    assert_eq!(cov.flows, 11);
    assert!(ev.len() >= 11);
}

/// Rewrite each Ethernet frame of a little-endian pcap with `f`, and set
/// the link type.
fn relink(le: &[u8], linktype: u32, f: impl Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let u32le = |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    let mut out = le[..20].to_vec();
    out.extend_from_slice(&linktype.to_le_bytes());
    let mut i = 24;
    while i + 16 <= le.len() {
        let caplen = u32le(le, i + 8) as usize;
        let orig = u32le(le, i + 12) as usize;
        let frame = f(&le[i + 16..i + 16 + caplen]);
        let grow = frame.len() as i64 - caplen as i64;
        out.extend_from_slice(&le[i..i + 8]);
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&((orig as i64 + grow) as u32).to_le_bytes());
        out.extend_from_slice(&frame);
        i += 16 + caplen;
    }
    out
}

/// Flows without their byte counts (which change with the link header).
fn shape(v: &[Emitted]) -> Vec<String> {
    v.iter()
        .map(|e| {
            let ev = &e.event;
            format!(
                "{:?} {:?}:{:?} {:?}:{:?} {:?} {:?} {:?}",
                ev.proto,
                ev.src_ip,
                ev.src_port,
                ev.dst_ip,
                ev.dst_port,
                ev.packets,
                ev.packets_in,
                ev.conn_state
            )
        })
        .collect()
}

#[test]
fn raw_ip_sll_sll2_loopback_and_vlan_give_the_same_flows() {
    let Some(c) = common::corpus() else { return };
    let eth = std::fs::read(c.join("pcap/zeek_wikipedia.pcap")).unwrap();
    let (want, _) = flows(&eth);
    assert_eq!(want.len(), 34);
    let is_ip = |f: &[u8]| matches!(&f[12..14], [0x08, 0x00] | [0x86, 0xdd]);
    // Non-IP frames (ARP) have no place on raw-IP links: they become empty
    // IP-less records and are counted as non-IP.
    let raw = relink(
        &eth,
        101,
        |f| if is_ip(f) { f[14..].to_vec() } else { vec![0] },
    );
    let sll = relink(&eth, 113, |f| {
        let mut h = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
        h.extend_from_slice(&f[12..14]);
        h.extend_from_slice(&f[14..]);
        h
    });
    let sll2 = relink(&eth, 276, |f| {
        let mut h = f[12..14].to_vec();
        h.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
        h.extend_from_slice(&f[14..]);
        h
    });
    let null = relink(&eth, 0, |f| {
        let fam: u32 = if f[12..14] == [0x86, 0xdd] { 30 } else { 2 };
        let mut h = if is_ip(f) {
            fam.to_le_bytes().to_vec()
        } else {
            vec![99, 0, 0, 0]
        };
        h.extend_from_slice(&f[14..]);
        h
    });
    let vlan = relink(&eth, 1, |f| {
        let mut h = f[..12].to_vec();
        h.extend_from_slice(&[0x88, 0xa8, 0, 7, 0x81, 0x00, 0, 42]);
        h.extend_from_slice(&f[12..]);
        h
    });
    for (name, bytes) in [
        ("raw", raw),
        ("sll", sll),
        ("sll2", sll2),
        ("null", null),
        ("qinq", vlan),
    ] {
        let (got, cov) = flows(&bytes);
        assert_eq!(cov.errors, 0, "{name}: {:?}", cov.reasons);
        assert_eq!(shape(&got), shape(&want), "{name}");
        assert_eq!(cov.non_ip, 10, "{name}");
    }
}

#[test]
fn unknown_link_type_is_named() {
    let Some(c) = common::corpus() else { return };
    let eth = std::fs::read(c.join("pcap/zeek_ssh_sshguess.pcap")).unwrap();
    let odd = relink(&eth, 147, |f| f.to_vec());
    let (got, cov) = flows(&odd);
    assert!(got.is_empty());
    assert_eq!(cov.unknown_link_types.len(), 1);
    let (name, n) = cov.unknown_link_types.iter().next().unwrap();
    assert_eq!(*n, cov.records);
    assert!(name.contains("147"), "{name}");
}

#[test]
fn ip_fragments_are_counted() {
    use etherparse::{IpFragOffset, Ipv4Header, PacketBuilder};
    // Two fragments of one UDP datagram, then an ordinary packet.
    let mut frames = Vec::new();
    for (off, more) in [(0u16, true), (2u16, false)] {
        let mut ip = Ipv4Header::new(
            16,
            64,
            etherparse::IpNumber::UDP,
            [10, 0, 0, 1],
            [10, 0, 0, 2],
        )
        .unwrap();
        ip.identification = 7;
        ip.more_fragments = more;
        ip.fragment_offset = IpFragOffset::try_new(off).unwrap();
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        ip.write(&mut f).unwrap();
        f.extend_from_slice(&[0u8; 16]);
        frames.push(f);
    }
    let mut f = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(1000, 2000)
        .write(&mut f, b"hello")
        .unwrap();
    frames.push(f);
    let mut pcap = Vec::new();
    pcap.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    pcap.extend_from_slice(&[
        2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0,
    ]);
    for (i, fr) in frames.iter().enumerate() {
        pcap.extend_from_slice(&(1_000_000_000u32 + i as u32).to_le_bytes());
        pcap.extend_from_slice(&0u32.to_le_bytes());
        pcap.extend_from_slice(&(fr.len() as u32).to_le_bytes());
        pcap.extend_from_slice(&(fr.len() as u32).to_le_bytes());
        pcap.extend_from_slice(fr);
    }
    let (got, cov) = flows(&pcap);
    assert_eq!(cov.fragments, 2);
    assert_eq!(cov.errors, 0, "{:?}", cov.reasons);
    // The fragments form a port-less UDP flow; the ordinary packet its own.
    assert_eq!(got.len(), 2);
}
