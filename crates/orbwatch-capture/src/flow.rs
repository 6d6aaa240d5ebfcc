//! Packets assembled into bidirectional flows, with Zeek-like connection
//! states, so that a SYN probe, a refused connection and a real session
//! look different to the behaviour detectors.
//!
//! A flow is keyed by protocol and the unordered pair of endpoints. Its
//! originator is the sender of the first packet seen, except when that
//! packet is a SYN-ACK (the capture started after the SYN): then the
//! receiver is the originator, as Zeek does.
//!
//! A flow ends when no packet has been seen for its idle timeout (capture
//! time, never wall-clock time), when the table is full, or at the end of
//! the input. A later packet of the same 5-tuple then starts a new flow.
//!
//! ## `conn_state`
//!
//! TCP, from the flags seen in each direction (after Zeek's conn.log):
//!
//! | state | meaning |
//! |---|---|
//! | `S0` | SYN from the originator, no reply at all (unanswered probe) |
//! | `REJ` | SYN answered by a RST, no SYN-ACK (closed port) |
//! | `RSTOS0` | SYN then RST from the originator, no SYN-ACK |
//! | `SH` | SYN and FIN from the originator, no SYN-ACK |
//! | `S1` | SYN, SYN-ACK, not closed |
//! | `SF` | SYN, SYN-ACK, FIN from both sides (normal close) |
//! | `S2` / `S3` | established, FIN from the originator / responder only |
//! | `RSTO` / `RSTR` | established, then reset by the originator / responder |
//! | `RSTRH` / `SHR` | SYN-ACK then RST / FIN from the responder, originator's SYN not seen |
//! | `OTH` | no SYN seen: midstream traffic, or a SYN answered by something else (a FIN/NULL/Xmas probe answered by RST also gets `action: reject`) |
//!
//! Other protocols: `S0` when only the originator sent packets, `SF` when
//! both sides did.
//!
//! An ICMP error (destination unreachable, time exceeded, parameter
//! problem, and their ICMPv6 counterparts) that quotes a packet of an open
//! flow is counted in that flow, in the direction of its sender, as
//! Suricata does; a flow answered only by such errors is `REJ` whatever its
//! protocol (a closed UDP port).
//!
//! Idle timeouts: 300 s for TCP and 60 s for other answered flows (Zeek's
//! defaults); 60 s for unanswered TCP and 30 s for other unanswered flows
//! (Suricata's "new flow" timeouts).

use std::net::IpAddr;

use hashbrown::HashMap;
use jiff::Timestamp;
use orbwatch_event::{Action, Event, EventKind, Proto};

/// TCP flag bits as on the wire.
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const ACK: u8 = 0x10;

/// Idle timeouts and table size.
#[derive(Debug, Clone, Copy)]
pub struct FlowConfig {
    /// Idle timeout of TCP flows, in seconds (Zeek's default: 300).
    pub tcp_idle_secs: u64,
    /// Idle timeout of UDP, ICMP and other flows, in seconds (Zeek: 60).
    pub other_idle_secs: u64,
    /// Idle timeout of a TCP flow the responder never answered (Suricata's
    /// "new" TCP timeout: 60). Longer than SYN retransmission back-off.
    pub tcp_unanswered_secs: u64,
    /// Idle timeout of other unanswered flows (Suricata's "new" UDP/ICMP
    /// timeout: 30), so that a periodic one-way sender (DHCPv6
    /// solicitations, beacons) makes one flow per burst, as Suricata does.
    pub other_unanswered_secs: u64,
    /// Flows held at once; beyond it the longest-idle ones are ended early.
    pub max_flows: usize,
}

impl Default for FlowConfig {
    fn default() -> Self {
        Self {
            tcp_idle_secs: 300,
            other_idle_secs: 60,
            tcp_unanswered_secs: 60,
            other_unanswered_secs: 30,
            max_flows: 1_000_000,
        }
    }
}

/// One packet as the flow table sees it.
#[derive(Debug, Clone, Copy)]
pub struct PacketInfo {
    /// Nanoseconds since the epoch.
    pub ts_ns: i64,
    pub proto: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    /// TCP flags, 0 for other protocols.
    pub flags: u8,
    /// An ICMP error (unreachable, time exceeded…) about a packet of this
    /// flow, counted in the direction of the ICMP sender.
    pub icmp_error: bool,
    /// Length on the wire (frame length), as nDPI and Suricata count bytes.
    pub wire_len: u64,
    /// Packet number in the capture, 1-based.
    pub number: u64,
    /// Byte offset of the packet record in the capture.
    pub offset: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    proto: u8,
    a: IpAddr,
    pa: u16,
    b: IpAddr,
    pb: u16,
}

impl Key {
    fn of(p: &PacketInfo) -> Key {
        if (p.src, p.sport) <= (p.dst, p.dport) {
            Key {
                proto: p.proto,
                a: p.src,
                pa: p.sport,
                b: p.dst,
                pb: p.dport,
            }
        } else {
            Key {
                proto: p.proto,
                a: p.dst,
                pa: p.dport,
                b: p.src,
                pb: p.sport,
            }
        }
    }
}

/// A flow being assembled.
#[derive(Debug, Clone)]
pub struct Flow {
    pub proto: u8,
    pub orig: (IpAddr, u16),
    pub resp: (IpAddr, u16),
    pub first_ns: i64,
    pub last_ns: i64,
    pub orig_pkts: u64,
    pub resp_pkts: u64,
    pub orig_bytes: u64,
    pub resp_bytes: u64,
    /// All TCP flags seen from each side, ORed.
    pub orig_flags: u8,
    pub resp_flags: u8,
    /// A SYN without ACK from the originator; a SYN-ACK from the responder.
    orig_syn: bool,
    resp_synack: bool,
    /// Who reset first: 1 = originator, 2 = responder.
    first_rst: u8,
    /// The responder answered only with ICMP errors so far.
    resp_icmp_only: bool,
    /// ICMP errors about this flow (unreachable, time exceeded).
    pub icmp_errors: u64,
    pub first_packet: u64,
    pub first_offset: u64,
}

impl Flow {
    fn start(p: &PacketInfo) -> Flow {
        // A SYN-ACK seen first: its receiver opened the connection.
        let flipped = p.proto == 6 && p.flags & (SYN | ACK) == (SYN | ACK);
        let (orig, resp) = if flipped {
            ((p.dst, p.dport), (p.src, p.sport))
        } else {
            ((p.src, p.sport), (p.dst, p.dport))
        };
        Flow {
            proto: p.proto,
            orig,
            resp,
            first_ns: p.ts_ns,
            last_ns: p.ts_ns,
            orig_pkts: 0,
            resp_pkts: 0,
            orig_bytes: 0,
            resp_bytes: 0,
            orig_flags: 0,
            resp_flags: 0,
            orig_syn: false,
            resp_synack: false,
            first_rst: 0,
            resp_icmp_only: true,
            icmp_errors: 0,
            first_packet: p.number,
            first_offset: p.offset,
        }
    }

    fn add(&mut self, p: &PacketInfo) {
        self.last_ns = self.last_ns.max(p.ts_ns);
        let from_orig = (p.src, p.sport) == self.orig;
        if p.icmp_error {
            self.icmp_errors += 1;
        } else if !from_orig {
            self.resp_icmp_only = false;
        }
        if from_orig {
            self.orig_pkts += 1;
            self.orig_bytes += p.wire_len;
            self.orig_flags |= p.flags;
        } else {
            self.resp_pkts += 1;
            self.resp_bytes += p.wire_len;
            self.resp_flags |= p.flags;
        }
        if self.proto == 6 {
            let syn_ack = p.flags & (SYN | ACK);
            if from_orig && syn_ack == SYN {
                self.orig_syn = true;
            }
            if !from_orig && syn_ack == SYN | ACK {
                self.resp_synack = true;
            }
            if p.flags & RST != 0 && self.first_rst == 0 {
                self.first_rst = if from_orig { 1 } else { 2 };
            }
        }
    }

    /// The Zeek-like connection state (see the module documentation).
    pub fn conn_state(&self) -> &'static str {
        if self.resp_pkts > 0 && self.resp_icmp_only && self.icmp_errors > 0 {
            // Only ICMP errors came back: port or host unreachable.
            return "REJ";
        }
        if self.proto != 6 {
            return if self.resp_pkts == 0 { "S0" } else { "SF" };
        }
        let o_fin = self.orig_flags & FIN != 0;
        let r_fin = self.resp_flags & FIN != 0;
        let o_rst = self.orig_flags & RST != 0;
        let r_rst = self.resp_flags & RST != 0;
        match (self.orig_syn, self.resp_synack) {
            (true, false) => {
                if r_rst {
                    "REJ"
                } else if o_rst {
                    "RSTOS0"
                } else if o_fin {
                    "SH"
                } else if self.resp_pkts == 0 {
                    "S0"
                } else {
                    "OTH"
                }
            }
            (true, true) => match self.first_rst {
                1 => "RSTO",
                2 => "RSTR",
                _ if o_fin && r_fin => "SF",
                _ if o_fin => "S2",
                _ if r_fin => "S3",
                _ => "S1",
            },
            (false, true) => {
                if r_rst {
                    "RSTRH"
                } else if r_fin {
                    "SHR"
                } else {
                    "OTH"
                }
            }
            (false, false) => "OTH",
        }
    }

    fn idle_ns(&self, cfg: &FlowConfig) -> i64 {
        let answered = self.resp_pkts > 0;
        let secs = match (self.proto == 6, answered) {
            (true, true) => cfg.tcp_idle_secs,
            (true, false) => cfg.tcp_unanswered_secs,
            (false, true) => cfg.other_idle_secs,
            (false, false) => cfg.other_unanswered_secs,
        };
        (secs as i64).saturating_mul(1_000_000_000)
    }

    /// The flow as an event.
    pub fn to_event(&self) -> Event {
        let mut ev = Event::new(EventKind::Connection);
        let first = Timestamp::from_nanosecond(self.first_ns as i128).ok();
        let last = Timestamp::from_nanosecond(self.last_ns as i128).ok();
        ev.time = first;
        ev.end_time = last;
        ev.src_ip = Some(self.orig.0);
        ev.dst_ip = Some(self.resp.0);
        if matches!(self.proto, 6 | 17 | 132) {
            ev.src_port = Some(self.orig.1);
            ev.dst_port = Some(self.resp.1);
        }
        ev.proto = Some(proto_of(self.proto));
        ev.bytes_out = Some(self.orig_bytes);
        ev.bytes_in = Some(self.resp_bytes);
        ev.packets = Some(self.orig_pkts + self.resp_pkts);
        ev.packets_in = Some(self.resp_pkts);
        ev.conn_state = Some(self.conn_state().to_string());
        if self.is_refused_stealth_probe() {
            ev.action = Some(Action::Reject);
        }
        ev
    }

    /// A FIN, NULL or Xmas probe (no SYN, no ACK: no real connection ever
    /// starts this way) answered by a reset. Zeek calls such a flow `OTH`;
    /// the event also says `action: reject`, so scan detection counts it
    /// as a refused probe like a `REJ` flow.
    pub fn is_refused_stealth_probe(&self) -> bool {
        self.proto == 6
            && !self.orig_syn
            && !self.resp_synack
            && self.orig_flags & (ACK | RST) == 0
            && self.resp_flags & RST != 0
            && self.orig_pkts <= 3
    }

    /// The flow's evidence line: time, protocol, endpoints, state, packets
    /// and bytes each way, TCP flags each way, duration.
    pub fn render(&self) -> String {
        let t = Timestamp::from_nanosecond(self.first_ns as i128)
            .map_or_else(|_| "?".to_string(), |t| t.to_string());
        let state = self.conn_state();
        let dur = (self.last_ns - self.first_ns) as f64 / 1e9;
        if matches!(self.proto, 6 | 17 | 132) {
            format!(
                "{t} {} {} -> {} {state} orig {}p/{}B resp {}p/{}B flags {}/{} {dur:.3}s",
                proto_name(self.proto),
                endpoint(self.orig),
                endpoint(self.resp),
                self.orig_pkts,
                self.orig_bytes,
                self.resp_pkts,
                self.resp_bytes,
                flag_letters(self.orig_flags),
                flag_letters(self.resp_flags),
            )
        } else {
            format!(
                "{t} {} {} -> {} {state} orig {}p/{}B resp {}p/{}B {dur:.3}s",
                proto_name(self.proto),
                self.orig.0,
                self.resp.0,
                self.orig_pkts,
                self.orig_bytes,
                self.resp_pkts,
                self.resp_bytes,
            )
        }
    }
}

fn endpoint((ip, port): (IpAddr, u16)) -> String {
    match ip {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// TCP flags as letters (`S` SYN, `A` ACK, `F` FIN, `R` RST, `P` PSH, `U` URG).
pub fn flag_letters(f: u8) -> String {
    let mut s = String::new();
    for (bit, c) in [
        (SYN, 'S'),
        (ACK, 'A'),
        (FIN, 'F'),
        (RST, 'R'),
        (0x08, 'P'),
        (0x20, 'U'),
    ] {
        if f & bit != 0 {
            s.push(c);
        }
    }
    if s.is_empty() {
        s.push('-');
    }
    s
}

/// The event protocol for an IP protocol number.
pub fn proto_of(n: u8) -> Proto {
    match n {
        6 => Proto::Tcp,
        17 => Proto::Udp,
        1 => Proto::Icmp,
        58 => Proto::Icmp6,
        n => Proto::Other(n),
    }
}

/// A short protocol name for evidence lines.
pub fn proto_name(n: u8) -> String {
    match n {
        6 => "tcp".into(),
        17 => "udp".into(),
        1 => "icmp".into(),
        58 => "icmp6".into(),
        132 => "sctp".into(),
        47 => "gre".into(),
        50 => "esp".into(),
        n => format!("ip-proto-{n}"),
    }
}

/// The table of open flows.
pub struct FlowTable {
    cfg: FlowConfig,
    flows: HashMap<Key, Flow, ahash::RandomState>,
    /// Latest packet time seen (capture clock).
    now_ns: i64,
    next_sweep_ns: i64,
    /// Flows ended early because the table was full.
    pub evicted: u64,
}

const SWEEP_EVERY_NS: i64 = 10_000_000_000;

impl FlowTable {
    pub fn new(cfg: FlowConfig) -> Self {
        Self {
            cfg,
            flows: HashMap::with_hasher(ahash::RandomState::new()),
            now_ns: i64::MIN,
            next_sweep_ns: i64::MIN,
            evicted: 0,
        }
    }

    /// Add a packet; flows it ends (idle ones, or its own 5-tuple's expired
    /// flow) are passed to `done`.
    pub fn packet(&mut self, p: &PacketInfo, done: &mut dyn FnMut(Flow)) {
        if p.ts_ns > self.now_ns {
            self.now_ns = p.ts_ns;
        }
        let key = Key::of(p);
        let cfg = self.cfg;
        match self.flows.get_mut(&key) {
            Some(f) => {
                if p.ts_ns.saturating_sub(f.last_ns) > f.idle_ns(&cfg) {
                    let old = std::mem::replace(f, Flow::start(p));
                    done(old);
                }
                f.add(p);
            }
            None => {
                let mut f = Flow::start(p);
                f.add(p);
                self.flows.insert(key, f);
            }
        }
        if self.now_ns >= self.next_sweep_ns {
            self.sweep(done);
            self.next_sweep_ns = self.now_ns.saturating_add(SWEEP_EVERY_NS);
        }
        if self.flows.len() > self.cfg.max_flows {
            self.sweep(done);
            if self.flows.len() > self.cfg.max_flows {
                self.evict(done);
            }
        }
    }

    /// End the flows idle for longer than their timeout.
    fn sweep(&mut self, done: &mut dyn FnMut(Flow)) {
        let now = self.now_ns;
        let cfg = self.cfg;
        let mut ended: Vec<Flow> = Vec::new();
        self.flows.retain(|_, f| {
            if now.saturating_sub(f.last_ns) > f.idle_ns(&cfg) {
                ended.push(f.clone());
                false
            } else {
                true
            }
        });
        ended.sort_by_key(|f| f.first_packet);
        for f in ended {
            done(f);
        }
    }

    /// Table full: end the longest-idle tenth of the flows.
    fn evict(&mut self, done: &mut dyn FnMut(Flow)) {
        let mut lasts: Vec<i64> = self.flows.values().map(|f| f.last_ns).collect();
        let k = (lasts.len() / 10).max(1).min(lasts.len() - 1);
        let (_, cut, _) = lasts.select_nth_unstable(k);
        let cut = *cut;
        let mut ended: Vec<Flow> = Vec::new();
        self.flows.retain(|_, f| {
            if f.last_ns <= cut {
                ended.push(f.clone());
                false
            } else {
                true
            }
        });
        self.evicted += ended.len() as u64;
        ended.sort_by_key(|f| f.first_packet);
        for f in ended {
            done(f);
        }
    }

    /// End every open flow, in the order of their first packet.
    pub fn finish(&mut self, done: &mut dyn FnMut(Flow)) {
        let mut all: Vec<Flow> = self.flows.drain().map(|(_, f)| f).collect();
        all.sort_by_key(|f| f.first_packet);
        for f in all {
            done(f);
        }
    }

    /// Is a flow open for this packet's 5-tuple?
    pub fn contains(&self, p: &PacketInfo) -> bool {
        self.flows.contains_key(&Key::of(p))
    }

    /// Flows open now.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }
}
