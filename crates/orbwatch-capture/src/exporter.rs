//! Is a capture NetFlow/IPFIX exporter traffic? Decided from the UDP
//! payloads of its first packets, not from the port.
//!
//! Collectors listen on 2055, 4739, 9995 by habit only; exporters are
//! configured to send anywhere, so a capture taken at a collector on port
//! 2057 or 6000 must still be read as flow records (otherwise a masscan
//! sweep exported as NetFlow v9 reads as a handful of UDP flows from the
//! exporter). A datagram counts as an export when its header and sets are
//! consistent with each other and with the datagram length (v5: 24 + 48 ×
//! count bytes; v9: a walk of its FlowSets, ids 0, 1 or ≥ 256, ends inside
//! the datagram; IPFIX: the header's length equals the datagram's and its
//! sets, ids 2, 3 or ≥ 256, fill it), and each exporter's sequence numbers
//! do not run backwards more often than forwards. A capture is exporter
//! traffic when such datagrams are at least nine in ten of its UDP packets
//! and at least half of all its IP packets: a mixed capture where a few
//! exports pass by is still read as packets (and the exports on the usual
//! ports are decoded too, see `pcap::NetflowInPcap::Auto`).

use std::collections::HashMap;
use std::net::IpAddr;

use etherparse::{LaxNetSlice, TransportSlice};
use pcap_parser::pcapng::Block;
use pcap_parser::{Linktype, PcapBlockOwned, PcapError, create_reader};

use crate::pcap::{Sliced, slice};

/// Most packets looked at.
const MAX_PACKETS: usize = 200;

/// The header facts of an export datagram: version, exporter domain
/// (v9 source id, IPFIX observation domain, 0 for v5) and sequence number.
pub fn export_header(p: &[u8]) -> Option<(u16, u32, u32)> {
    let be16 = |i: usize| -> Option<u16> { Some(u16::from_be_bytes([*p.get(i)?, *p.get(i + 1)?])) };
    let be32 = |i: usize| -> Option<u32> {
        Some(u32::from_be_bytes([
            *p.get(i)?,
            *p.get(i + 1)?,
            *p.get(i + 2)?,
            *p.get(i + 3)?,
        ]))
    };
    let version = be16(0)?;
    match version {
        5 => {
            let n = usize::from(be16(2)?);
            ((1..=30).contains(&n) && p.len() == 24 + 48 * n).then_some((5, 0, be32(16)?))
        }
        9 => {
            let count = be16(2)?;
            if p.len() < 24 || count > 4096 {
                return None;
            }
            walk_sets(p, 20, p.len(), |id| id <= 1 || id >= 256)?;
            Some((9, be32(16)?, be32(12)?))
        }
        10 => {
            let len = usize::from(be16(2)?);
            if len != p.len() || len < 20 {
                return None;
            }
            walk_sets(p, 16, len, |id| id == 2 || id == 3 || id >= 256)?;
            Some((10, be32(12)?, be32(8)?))
        }
        _ => None,
    }
}

/// Walk sets from `at` to `end`: each a valid id and a length of at least
/// 4 that stays inside; at least one set; at most 3 bytes of padding left.
fn walk_sets(p: &[u8], mut at: usize, end: usize, ok: impl Fn(u16) -> bool) -> Option<()> {
    let mut sets = 0;
    while at + 4 <= end {
        let id = u16::from_be_bytes([p[at], p[at + 1]]);
        let len = usize::from(u16::from_be_bytes([p[at + 2], p[at + 3]]));
        if id == 0 && len == 0 && sets > 0 {
            // Zero padding after the last set (some exporters fill up).
            return p[at..end].iter().all(|b| *b == 0).then_some(());
        }
        if !ok(id) || len < 4 || at + len > end {
            return None;
        }
        at += len;
        sets += 1;
    }
    (sets > 0 && end - at < 4).then_some(())
}

/// What the first packets of a capture hold.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExporterSample {
    pub ip_packets: usize,
    pub udp_packets: usize,
    /// UDP payloads that are consistent export datagrams.
    pub exports: usize,
    /// Steps between consecutive datagrams of one exporter whose sequence
    /// number went forward (or stayed), and backward.
    pub seq_forward: usize,
    pub seq_backward: usize,
}

impl ExporterSample {
    /// The decision described in the module documentation.
    pub fn is_exporter_traffic(&self) -> bool {
        self.exports > 0
            && self.exports * 10 >= self.udp_packets * 9
            && self.exports * 2 >= self.ip_packets
            && self.seq_backward <= self.seq_forward
    }
}

/// Look at the first packets of the capture whose first bytes are `head`
/// (a pcap or pcapng file, possibly cut short).
pub fn sample(head: &[u8]) -> ExporterSample {
    let mut out = ExporterSample::default();
    let Ok(mut rdr) = create_reader(head.len().max(65536), head) else {
        return out;
    };
    let mut legacy = Linktype::ETHERNET;
    let mut ifaces: Vec<Linktype> = Vec::new();
    let mut last_seq: HashMap<(IpAddr, u16, u32), u32> = HashMap::new();
    let mut packets = 0;
    while packets < MAX_PACKETS {
        let (size, lt, data) = match rdr.next() {
            Ok((size, block)) => match block {
                PcapBlockOwned::LegacyHeader(h) => {
                    legacy = h.network;
                    (size, None, &[][..])
                }
                PcapBlockOwned::Legacy(b) => {
                    let cap = (b.caplen as usize).min(b.data.len());
                    (size, Some(legacy), &b.data[..cap])
                }
                PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                    ifaces.clear();
                    (size, None, &[][..])
                }
                PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                    ifaces.push(idb.linktype);
                    (size, None, &[][..])
                }
                PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                    let cap = (epb.caplen as usize).min(epb.data.len());
                    let lt = ifaces.get(epb.if_id as usize).copied();
                    (size, lt, &epb.data[..cap])
                }
                PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                    let cap = (spb.origlen as usize).min(spb.data.len());
                    (size, ifaces.first().copied(), &spb.data[..cap])
                }
                PcapBlockOwned::NG(_) => (size, None, &[][..]),
            },
            Err(PcapError::Incomplete(_)) => {
                // The head ends inside a block: judge what came before.
                if rdr.refill().is_err() || rdr.reader_exhausted() {
                    break;
                }
                continue;
            }
            Err(_) => break,
        };
        if let Some(lt) = lt {
            packets += 1;
            look(lt, data, &mut out, &mut last_seq);
        }
        rdr.consume(size);
    }
    out
}

fn look(
    lt: Linktype,
    data: &[u8],
    out: &mut ExporterSample,
    last_seq: &mut HashMap<(IpAddr, u16, u32), u32>,
) {
    let Sliced::Packet(p) = slice(lt, data) else {
        return;
    };
    let src = match &p.net {
        Some(LaxNetSlice::Ipv4(s)) => IpAddr::V4(s.header().source_addr()),
        Some(LaxNetSlice::Ipv6(s)) => IpAddr::V6(s.header().source_addr()),
        _ => return,
    };
    out.ip_packets += 1;
    let Some(TransportSlice::Udp(u)) = &p.transport else {
        return;
    };
    out.udp_packets += 1;
    let Some((version, domain, seq)) = export_header(u.payload()) else {
        return;
    };
    out.exports += 1;
    if let Some(prev) = last_seq.insert((src, version, domain), seq) {
        // Wrapping difference: a counter that wrapped still went forward.
        if seq.wrapping_sub(prev) < 1 << 31 {
            out.seq_forward += 1;
        } else {
            out.seq_backward += 1;
        }
    }
}

/// Is the capture starting with `head` NetFlow/IPFIX exporter traffic?
pub fn is_exporter_capture(head: &[u8]) -> bool {
    sample(head).is_exporter_traffic()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        // v5 with one record.
        let mut v5 = vec![0u8; 24 + 48];
        v5[1] = 5;
        v5[3] = 1;
        assert_eq!(export_header(&v5).map(|h| h.0), Some(5));
        v5.push(0);
        assert_eq!(export_header(&v5), None);
        // v9: header + one template set of 8 bytes.
        let mut v9 = vec![0u8; 20];
        v9[1] = 9;
        v9[3] = 1;
        v9.extend_from_slice(&[0, 0, 0, 8, 1, 0, 0, 0]);
        assert_eq!(export_header(&v9).map(|h| h.0), Some(9));
        // A set longer than the datagram.
        let mut bad = v9.clone();
        bad[23] = 200;
        assert_eq!(export_header(&bad), None);
        // A set id of 7 is neither template nor data.
        let mut bad = v9.clone();
        bad[21] = 7;
        assert_eq!(export_header(&bad), None);
        // IPFIX whose header length disagrees with the datagram.
        let mut ipfix = vec![0u8; 16];
        ipfix[1] = 10;
        ipfix[3] = 24;
        ipfix.extend_from_slice(&[0, 2, 0, 8, 1, 0, 0, 0]);
        assert_eq!(export_header(&ipfix).map(|h| h.0), Some(10));
        ipfix.push(0);
        assert_eq!(export_header(&ipfix), None);
        assert_eq!(export_header(&[]), None);
        assert_eq!(export_header(&[0, 9]), None);
    }

    #[test]
    fn garbage_is_not_a_capture() {
        assert!(!is_exporter_capture(b""));
        assert!(!is_exporter_capture(b"not a capture at all, just text"));
        assert!(!is_exporter_capture(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0]));
    }
}
