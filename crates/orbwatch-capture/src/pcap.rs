//! pcap and pcapng captures: packets to flow events, plus DNS, TLS SNI and
//! HTTP Host events, and NetFlow/IPFIX carried in captured export traffic.
//!
//! Blocks are read with `pcap-parser` (both pcap byte orders, micro- and
//! nanosecond stamps, pcapng with per-interface link types and time
//! resolutions); link, IP (with IPv6 extension headers) and transport
//! headers with `etherparse`. The input is streamed: memory holds the open
//! flows, not the capture.
//!
//! A record cut at the end of the file, or a corrupt block, stops the read
//! with a counted error; every packet before it is kept and its flows are
//! emitted.

use std::io::Read;
use std::net::IpAddr;

use etherparse::{LaxNetSlice, LaxSlicedPacket, TransportSlice};
use orbwatch_event::{AuthOutcome, Event, EventKind};
use pcap_parser::data::{PacketData, get_packetdata};
use pcap_parser::pcapng::Block;
use pcap_parser::{Linktype, PcapBlockOwned, PcapError, create_reader};

use crate::app;
use crate::flow::{Flow, FlowConfig, FlowTable, PacketInfo, proto_name};
use crate::netflow::{self, NetflowDecoder};
use crate::{Coverage, Emitted, Raw};

/// What to make of UDP datagrams that carry NetFlow/IPFIX exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetflowInPcap {
    /// Datagrams to the usual collector ports (2055, 2056, 4739, 9995,
    /// 9996) that parse as NetFlow are also decoded as flow records; every
    /// packet still makes packet flows.
    #[default]
    Auto,
    /// The capture is exporter traffic (`--input-format netflow`): every UDP
    /// payload is decoded as NetFlow/IPFIX and only the flow records are
    /// emitted, not the packets' own flows.
    Only,
    /// Never decode NetFlow from packets.
    Off,
}

/// Settings of the capture reader.
#[derive(Debug, Clone, Default)]
pub struct PcapOptions {
    pub flows: FlowConfig,
    /// Do not emit DNS/TLS/HTTP events (flows only).
    pub no_app_events: bool,
    pub netflow: NetflowInPcap,
}

/// Collector ports recognised in [`NetflowInPcap::Auto`].
const NETFLOW_PORTS: &[u16] = &[2055, 2056, 4739, 9995, 9996];
/// Read buffer of the capture reader.
const READ_BUF: usize = 1 << 20;
/// Largest packet record accepted; a larger length means a corrupt file.
const MAX_RECORD: usize = 64 << 20;

struct Iface {
    linktype: Linktype,
    /// Units per second of the stamps, and the offset in seconds.
    resolution: u64,
    offset: i64,
}

/// Read a pcap or pcapng capture, calling `sink` with every event made.
pub fn read_capture<R: Read + Send>(
    input: R,
    opts: &PcapOptions,
    sink: &mut dyn FnMut(Emitted),
) -> Coverage {
    let mut st = State::new(opts);
    let mut rdr = match create_reader(READ_BUF, input) {
        Ok(r) => r,
        Err(e) => {
            st.cov.format = "pcap".into();
            let why = match e {
                PcapError::Eof | PcapError::Incomplete(_) | PcapError::UnexpectedEof => {
                    "file ends inside the capture header".to_string()
                }
                PcapError::HeaderNotRecognized => "not a pcap or pcapng capture".to_string(),
                other => format!("cannot read the capture header: {other:?}"),
            };
            st.cov.fatal = Some(why.clone());
            st.cov.problem(why, || "offset 0".into());
            return st.cov;
        }
    };
    let mut legacy: Option<(Linktype, bool)> = None;
    let mut ifaces: Vec<Iface> = Vec::new();
    let mut capacity = READ_BUF;
    loop {
        let offset = rdr.consumed() as u64;
        match rdr.next() {
            Ok((size, block)) => {
                match block {
                    PcapBlockOwned::LegacyHeader(h) => {
                        st.cov.format = "pcap".into();
                        legacy = Some((h.network, h.is_nanosecond_precision()));
                    }
                    PcapBlockOwned::Legacy(b) => {
                        let (lt, nanos) = legacy.unwrap_or((Linktype::ETHERNET, false));
                        let frac = if nanos {
                            b.ts_usec as i64
                        } else {
                            b.ts_usec as i64 * 1000
                        };
                        let ts_ns = (b.ts_sec as i64) * 1_000_000_000 + frac;
                        let cap = (b.caplen as usize).min(b.data.len());
                        st.packet(lt, &b.data[..cap], b.origlen, ts_ns, offset, sink);
                    }
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                        st.cov.format = "pcapng".into();
                        ifaces.clear();
                    }
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        ifaces.push(Iface {
                            linktype: idb.linktype,
                            resolution: idb.ts_resolution().unwrap_or(1_000_000),
                            offset: idb.ts_offset(),
                        });
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        match ifaces.get(epb.if_id as usize) {
                            Some(i) => {
                                let (secs, frac) = epb.decode_ts(0, i.resolution);
                                let frac_ns = (frac as u128 * 1_000_000_000
                                    / i.resolution.max(1) as u128)
                                    as i64;
                                let ts_ns = (secs as i64)
                                    .saturating_add(i.offset)
                                    .saturating_mul(1_000_000_000)
                                    .saturating_add(frac_ns);
                                let cap = (epb.caplen as usize).min(epb.data.len());
                                let lt = i.linktype;
                                st.packet(lt, &epb.data[..cap], epb.origlen, ts_ns, offset, sink);
                            }
                            None => {
                                st.cov.records += 1;
                                let n = st.cov.records;
                                st.cov.problem(
                                    "packet on an interface with no description block",
                                    || format!("packet {n} at offset {offset}"),
                                );
                            }
                        }
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                        let lt = ifaces.first().map_or(Linktype::ETHERNET, |i| i.linktype);
                        // No time stamp: the flow clock stays where it is.
                        let ts = st.table.as_ref().map_or(0, |_| st.last_ts);
                        let cap = (spb.origlen as usize).min(spb.data.len());
                        st.packet(lt, &spb.data[..cap], spb.origlen, ts, offset, sink);
                    }
                    PcapBlockOwned::NG(_) => {}
                }
                rdr.consume_noshift(size);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                let before = rdr.data().len();
                if let Err(e) = rdr.refill() {
                    st.stop(format!("read failed at offset {offset}: {e:?}"), offset);
                    break;
                }
                if rdr.data().len() == before && rdr.reader_exhausted() {
                    st.truncated(offset, before);
                    break;
                }
            }
            Err(PcapError::UnexpectedEof) => {
                let left = rdr.data().len();
                st.truncated(offset, left);
                break;
            }
            Err(PcapError::BufferTooSmall) => {
                if capacity >= MAX_RECORD || !rdr.grow(capacity * 2) {
                    st.stop(
                        format!(
                            "record at offset {offset} claims more than {} MiB: corrupt capture; reading stopped there",
                            MAX_RECORD >> 20
                        ),
                        offset,
                    );
                    break;
                }
                capacity *= 2;
                if let Err(e) = rdr.refill() {
                    st.stop(format!("read failed at offset {offset}: {e:?}"), offset);
                    break;
                }
            }
            Err(e) => {
                let what = match e {
                    PcapError::NomError(_, k) => format!("{k:?}"),
                    PcapError::OwnedNomError(_, k) => format!("{k:?}"),
                    PcapError::ReadError => "read error".into(),
                    other => format!("{other:?}"),
                };
                st.stop(
                    format!(
                        "corrupt block at offset {offset} ({what}); reading stopped there, the packets before it were kept"
                    ),
                    offset,
                );
                break;
            }
        }
        st.cov.bytes = rdr.consumed() as u64;
    }
    st.cov.bytes = rdr.consumed() as u64;
    st.finish(sink);
    st.cov
}

/// Reader state shared by both container formats.
struct State<'o> {
    opts: &'o PcapOptions,
    cov: Coverage,
    table: Option<FlowTable>,
    netflow: NetflowDecoder,
    last_ts: i64,
}

impl<'o> State<'o> {
    fn new(opts: &'o PcapOptions) -> Self {
        let packets = opts.netflow != NetflowInPcap::Only;
        State {
            opts,
            cov: Coverage::new("pcap"),
            table: packets.then(|| FlowTable::new(opts.flows)),
            netflow: NetflowDecoder::new(),
            last_ts: 0,
        }
    }

    fn stop(&mut self, why: String, offset: u64) {
        self.cov.problem(why.clone(), || format!("offset {offset}"));
        self.cov.fatal = Some(why);
    }

    fn truncated(&mut self, offset: u64, left: usize) {
        if left == 0 {
            return;
        }
        let why = format!(
            "truncated packet record at offset {offset}: the file ends {left} bytes into it; the packets before it were kept"
        );
        self.cov
            .problem("truncated packet record at end of file", || {
                format!("offset {offset}")
            });
        self.cov.fatal = Some(why);
    }

    fn emit(&mut self, e: Emitted, sink: &mut dyn FnMut(Emitted)) {
        if let Some(t) = e.event.time {
            self.cov.see_time(t);
        }
        self.cov.events += 1;
        sink(e);
    }

    fn flow_done(cov: &mut Coverage, f: Flow, sink: &mut dyn FnMut(Emitted)) {
        let event = f.to_event();
        if let Some(t) = event.time {
            cov.see_time(t);
        }
        if let Some(t) = event.end_time {
            cov.see_time(t);
        }
        cov.events += 1;
        cov.flows += 1;
        let (record, offset) = (f.first_packet, f.first_offset);
        sink(Emitted {
            event,
            raw: Raw::Flow(Box::new(f)),
            record,
            offset,
        });
    }

    fn packet(
        &mut self,
        lt: Linktype,
        data: &[u8],
        origlen: u32,
        ts_ns: i64,
        offset: u64,
        sink: &mut dyn FnMut(Emitted),
    ) {
        self.cov.records += 1;
        self.last_ts = ts_ns;
        let number = self.cov.records;
        let sliced = match slice(lt, data) {
            Sliced::Packet(p) => p,
            Sliced::NotIp => {
                self.cov.non_ip += 1;
                return;
            }
            Sliced::UnknownLink => {
                *self
                    .cov
                    .unknown_link_types
                    .entry(lt.to_string())
                    .or_default() += 1;
                return;
            }
            Sliced::Bad(why) => {
                self.cov
                    .problem(why, || format!("packet {number} at offset {offset}"));
                return;
            }
        };
        let (src, dst, proto, fragmented) = match &sliced.net {
            Some(LaxNetSlice::Ipv4(s)) => {
                let h = s.header();
                let p = s.payload();
                (
                    IpAddr::V4(h.source_addr()),
                    IpAddr::V4(h.destination_addr()),
                    p.ip_number.0,
                    p.fragmented,
                )
            }
            Some(LaxNetSlice::Ipv6(s)) => {
                let h = s.header();
                let p = s.payload();
                (
                    IpAddr::V6(h.source_addr()),
                    IpAddr::V6(h.destination_addr()),
                    p.ip_number.0,
                    p.fragmented,
                )
            }
            _ => {
                self.cov.non_ip += 1;
                return;
            }
        };
        if fragmented {
            self.cov.fragments += 1;
        }
        let mut info = PacketInfo {
            ts_ns,
            proto,
            src,
            dst,
            sport: 0,
            dport: 0,
            flags: 0,
            icmp_error: false,
            wire_len: origlen as u64,
            number,
            offset,
        };
        let mut payload: &[u8] = &[];
        match &sliced.transport {
            Some(TransportSlice::Tcp(t)) => {
                info.sport = t.source_port();
                info.dport = t.destination_port();
                info.flags = t.slice().get(13).copied().unwrap_or(0);
                payload = t.payload();
            }
            Some(TransportSlice::Udp(u)) => {
                info.sport = u.source_port();
                info.dport = u.destination_port();
                payload = u.payload();
            }
            _ => {
                if !fragmented && matches!(proto, 6 | 17) {
                    let what = if proto == 6 { "TCP" } else { "UDP" };
                    self.cov.problem(
                        format!("{what} header cut short (snap length or malformed packet)"),
                        || format!("packet {number} at offset {offset}"),
                    );
                }
            }
        }
        // NetFlow export datagrams.
        if proto == 17 && !fragmented {
            let decode = match self.opts.netflow {
                NetflowInPcap::Off => false,
                NetflowInPcap::Only => true,
                NetflowInPcap::Auto => {
                    NETFLOW_PORTS.contains(&info.dport) && netflow::looks_like_netflow(payload)
                }
            };
            if decode {
                let cov = &mut self.cov;
                self.netflow
                    .datagram(payload, src, number, offset, cov, &mut |e| sink(e));
            }
        }
        let Some(table) = self.table.as_mut() else {
            return;
        };
        // An ICMP error about a packet of an open flow belongs to that flow.
        let icmp = match &sliced.transport {
            Some(TransportSlice::Icmpv4(i)) => Some((false, i.slice())),
            Some(TransportSlice::Icmpv6(i)) => Some((true, i.slice())),
            _ => None,
        };
        if let Some((v6, icmp)) = icmp
            && let Some(q) = quoted_flow(v6, icmp, &info)
            && table.contains(&q)
        {
            info = q;
        }
        let cov = &mut self.cov;
        table.packet(&info, &mut |f| Self::flow_done(cov, f, sink));
        if !self.opts.no_app_events
            && !fragmented
            && !payload.is_empty()
            && let Some(e) = app_event(&info, payload)
        {
            self.emit(e, sink);
        }
    }

    fn finish(&mut self, sink: &mut dyn FnMut(Emitted)) {
        if let Some(table) = self.table.as_mut() {
            let cov = &mut self.cov;
            table.finish(&mut |f| Self::flow_done(cov, f, sink));
            if table.evicted > 0 {
                let n = table.evicted;
                self.cov.problem(
                    format!("flow table full: {n} flows ended before their idle timeout"),
                    || "end of capture".into(),
                );
            }
        }
        self.netflow.finish(&mut self.cov);
    }
}

#[allow(clippy::large_enum_variant)] // built once per packet, on the stack
pub(crate) enum Sliced<'a> {
    Packet(LaxSlicedPacket<'a>),
    NotIp,
    UnknownLink,
    Bad(String),
}

fn from_ether(et: u16, d: &[u8]) -> Sliced<'_> {
    if matches!(et, 0x0800 | 0x86dd | 0x8100 | 0x88a8 | 0x9100) {
        Sliced::Packet(LaxSlicedPacket::from_ether_type(
            etherparse::EtherType(et),
            d,
        ))
    } else {
        Sliced::NotIp
    }
}

fn from_ip(d: &[u8]) -> Sliced<'_> {
    match d.first().map(|b| b >> 4) {
        Some(4) => from_ether(0x0800, d),
        Some(6) => from_ether(0x86dd, d),
        _ => Sliced::NotIp,
    }
}

/// Link layer to IP, by link type.
pub(crate) fn slice(lt: Linktype, data: &[u8]) -> Sliced<'_> {
    match lt {
        Linktype::ETHERNET => match LaxSlicedPacket::from_ethernet(data) {
            Ok(p) => Sliced::Packet(p),
            Err(e) => Sliced::Bad(format!("Ethernet header cut short: {e}")),
        },
        Linktype::NULL | Linktype::LOOP => {
            let Some(h) = data.get(..4) else {
                return Sliced::Bad("loopback header cut short".into());
            };
            let fam = if lt == Linktype::LOOP {
                u32::from_be_bytes([h[0], h[1], h[2], h[3]])
            } else {
                // Host byte order of the capturing machine: try both.
                let le = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
                if le < 256 {
                    le
                } else {
                    u32::from_be_bytes([h[0], h[1], h[2], h[3]])
                }
            };
            match fam {
                2 => from_ether(0x0800, &data[4..]),
                24 | 28 | 30 => from_ether(0x86dd, &data[4..]),
                _ => Sliced::NotIp,
            }
        }
        // 12 and 14 are DLT_RAW on some BSDs.
        Linktype::RAW | Linktype::IPV4 | Linktype::IPV6 | Linktype(12) | Linktype(14) => {
            from_ip(data)
        }
        Linktype::LINUX_SLL | Linktype::LINUX_SLL2 => match get_packetdata(data, lt, data.len()) {
            Some(PacketData::L3(et, d)) => from_ether(et, d),
            Some(_) => Sliced::NotIp,
            None => Sliced::Bad("Linux cooked (SLL) header cut short".into()),
        },
        _ => Sliced::UnknownLink,
    }
}

/// For an ICMP error, the packet it quotes as seen from the ICMP sender:
/// the quoted packet's 5-tuple reversed, marked as an ICMP error.
fn quoted_flow(v6: bool, icmp: &[u8], outer: &PacketInfo) -> Option<PacketInfo> {
    let t = *icmp.first()?;
    let is_error = if v6 {
        matches!(t, 1..=4)
    } else {
        matches!(t, 3 | 4 | 5 | 11 | 12)
    };
    if !is_error {
        return None;
    }
    let inner = LaxSlicedPacket::from_ip(icmp.get(8..)?).ok()?;
    let (isrc, idst, ip) = match &inner.net {
        Some(LaxNetSlice::Ipv4(s)) => (
            IpAddr::V4(s.header().source_addr()),
            IpAddr::V4(s.header().destination_addr()),
            s.payload(),
        ),
        Some(LaxNetSlice::Ipv6(s)) => (
            IpAddr::V6(s.header().source_addr()),
            IpAddr::V6(s.header().destination_addr()),
            s.payload(),
        ),
        _ => return None,
    };
    let proto = ip.ip_number.0;
    let (sport, dport) = if matches!(proto, 6 | 17 | 132) {
        let b = ip.payload.get(..4)?;
        (
            u16::from_be_bytes([b[0], b[1]]),
            u16::from_be_bytes([b[2], b[3]]),
        )
    } else {
        (0, 0)
    };
    Some(PacketInfo {
        proto,
        src: idst,
        sport: dport,
        dst: isrc,
        dport: sport,
        flags: 0,
        icmp_error: true,
        ..*outer
    })
}

fn endpoint(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// A DNS, TLS or HTTP event from one packet's payload.
fn app_event(p: &PacketInfo, payload: &[u8]) -> Option<Emitted> {
    let time = jiff::Timestamp::from_nanosecond(p.ts_ns as i128).ok();
    let t = time.map_or_else(|| "?".to_string(), |t| t.to_string());
    let base = |kind| {
        let mut ev = Event::new(kind);
        ev.time = time;
        ev.src_ip = Some(p.src);
        ev.dst_ip = Some(p.dst);
        ev.src_port = Some(p.sport);
        ev.dst_port = Some(p.dport);
        ev.proto = Some(crate::flow::proto_of(p.proto));
        ev
    };
    let route = || {
        format!(
            "{} {} -> {}",
            proto_name(p.proto),
            endpoint(p.src, p.sport),
            endpoint(p.dst, p.dport)
        )
    };
    let dns_port = |x: u16| matches!(x, 53 | 5353 | 5355);
    if dns_port(p.sport) || dns_port(p.dport) {
        let msg = if p.proto == 6 {
            payload.get(2..).and_then(app::parse_dns)
        } else {
            app::parse_dns(payload)
        }?;
        let mut ev = base(EventKind::Dns);
        ev.service = Some("dns".into());
        let mut qs = msg.questions.iter();
        let (qname, qtype) = qs.next()?;
        ev.domain = Some(qname.clone());
        ev.other_domains = qs.map(|(n, _)| n.clone()).collect();
        ev.other_domains.extend(msg.names.iter().cloned());
        ev.other_ips = msg.addresses.clone();
        let mut raw = format!(
            "{t} dns {} {} id {} {} {qname}",
            route(),
            if msg.response { "response" } else { "query" },
            msg.id,
            app::qtype_name(*qtype)
        );
        if msg.response {
            raw.push_str(&format!(" rcode {}", msg.rcode));
            let answers: Vec<String> = msg
                .addresses
                .iter()
                .map(|a| a.to_string())
                .chain(msg.names.iter().cloned())
                .collect();
            if !answers.is_empty() {
                raw.push_str(" -> ");
                raw.push_str(&answers.join(", "));
            }
        }
        return Some(Emitted {
            event: ev,
            raw: Raw::Text(raw),
            record: p.number,
            offset: p.offset,
        });
    }
    if p.proto != 6 {
        return None;
    }
    // FTP login replies from the server (RFC 959): 530 refuses the login,
    // 230 accepts it. The login is the client's, so the event's source is
    // the packet's destination. The account is in an earlier USER command
    // of the flow, which single-packet reading does not follow.
    if p.sport == 21
        && let Some(outcome) = app::ftp_login_reply(payload)
    {
        let mut ev = base(EventKind::Auth);
        ev.src_ip = Some(p.dst);
        ev.src_port = Some(p.dport);
        ev.dst_ip = Some(p.src);
        ev.dst_port = Some(p.sport);
        ev.service = Some("ftp".into());
        ev.auth = Some(outcome);
        let line = String::from_utf8_lossy(payload);
        let raw = format!(
            "{t} ftp {} login {} by {}: {}",
            route(),
            if outcome == AuthOutcome::Success {
                "accepted"
            } else {
                "refused"
            },
            endpoint(p.dst, p.dport),
            line.lines().next().unwrap_or("").trim()
        );
        return Some(Emitted {
            event: ev,
            raw: Raw::Text(raw),
            record: p.number,
            offset: p.offset,
        });
    }
    if let Some(sni) = app::tls_sni(payload) {
        let mut ev = base(EventKind::Tls);
        ev.service = Some("tls".into());
        let raw = format!("{t} tls {} ClientHello sni {sni}", route());
        ev.domain = Some(sni);
        return Some(Emitted {
            event: ev,
            raw: Raw::Text(raw),
            record: p.number,
            offset: p.offset,
        });
    }
    if let Some(req) = app::http_request(payload) {
        let mut ev = base(EventKind::Http);
        ev.service = Some("http".into());
        let raw = format!(
            "{t} http {} {} {} host {}",
            route(),
            req.method,
            req.target,
            req.host.as_deref().unwrap_or("-")
        );
        if let Some(h) = &req.host {
            ev.url = Some(if req.target.starts_with('/') {
                format!("http://{h}{}", req.target)
            } else {
                req.target.clone()
            });
        } else {
            ev.url = Some(req.target.clone());
        }
        ev.domain = req.host;
        return Some(Emitted {
            event: ev,
            raw: Raw::Text(raw),
            record: p.number,
            offset: p.offset,
        });
    }
    None
}
