//! NetFlow v5, v9 and IPFIX export datagrams to flow events.
//!
//! Decoding is done by `netflow_parser`'s `AutoScopedParser`, which keeps
//! templates and option templates per exporter address and per v9 source
//! id / IPFIX observation domain (RFC 3954, RFC 7011), skips enterprise
//! and unknown fields, handles variable-length fields, and holds data sets
//! that arrive before their template in a bounded cache (256 template ids
//! × 1024 sets per exporter) until the template comes. Those are counted as
//! "waiting for template"; the ones still waiting at the end are counted as
//! never decoded.
//!
//! Three inputs feed [`NetflowDecoder`]: raw UDP payload files (`.dat`,
//! one datagram or several back to back), captures of exporter traffic
//! (see `pcap`), and later the live collector.
//!
//! Each flow record is one [`Event`] of kind `Connection` with `count` 1.
//! Where the exporter states a sampling rate (the v5 header, a
//! `samplingInterval`/`samplingPacketInterval` field in the record, or in
//! an options record of the same exporter), packets and bytes are scaled by
//! it and the evidence line says so. `conn_state` carries the record's
//! cumulative TCP flags as `flags:SAF…` (a unidirectional record cannot say
//! whether a connection was answered). Options records (exporter
//! statistics, sampler settings) are counted but make no event.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};

use hashbrown::HashMap;
use jiff::Timestamp;
use netflow_parser::variable_versions::ipfix::lookup::IANAIPFixField;
use netflow_parser::variable_versions::ipfix::lookup::IPFixField;
use netflow_parser::variable_versions::ipfix::{FlowSetBody as IpfixBody, IPFix};
use netflow_parser::variable_versions::v9::{FlowSetBody as V9Body, V9};
use netflow_parser::{
    AutoScopedParser, FieldValue, NetflowPacket, NetflowParser, PendingFlowsConfig,
};
use orbwatch_event::{Event, EventKind};

use crate::flow::{flag_letters, proto_name, proto_of};
use crate::{Coverage, Emitted, Raw};

/// Does `p` start with a NetFlow v5/v9 or IPFIX header followed by a
/// plausible first set?
pub fn looks_like_netflow(p: &[u8]) -> bool {
    if p.len() < 24 {
        return false;
    }
    let be16 = |i: usize| u16::from_be_bytes([p[i], p[i + 1]]);
    let version = be16(0);
    let n = be16(2) as usize;
    match version {
        5 => (1..=30).contains(&n),
        9 => {
            let id = be16(20);
            let len = be16(22);
            n <= 4096 && (id <= 1 || id >= 256) && len >= 4
        }
        10 => {
            let id = be16(16);
            let len = be16(18);
            n >= 20 && (id == 2 || id == 3 || id >= 256) && len >= 4 && len as usize <= n - 16
        }
        _ => false,
    }
}

/// Length of the export datagram at the start of `p` when datagrams are
/// stored back to back: v5 and IPFIX say it; v9 does not, so its sets are
/// walked until the next header or the end.
pub fn frame_len(p: &[u8]) -> Option<usize> {
    if p.len() < 4 {
        return None;
    }
    let be16 = |i: usize| u16::from_be_bytes([p[i], p[i + 1]]);
    match be16(0) {
        5 => {
            let n = be16(2) as usize;
            (1..=30).contains(&n).then(|| (24 + 48 * n).min(p.len()))
        }
        10 => {
            let l = be16(2) as usize;
            (l >= 16).then_some(l.min(p.len()))
        }
        9 => {
            let mut pos = 20;
            while pos + 4 <= p.len() {
                if looks_like_netflow(&p[pos..]) {
                    return Some(pos);
                }
                let len = be16(pos + 2) as usize;
                if len < 4 {
                    // Zero padding to the end of the datagram.
                    return Some(p.len());
                }
                pos += len;
            }
            Some(p.len().max(20).min(p.len()))
        }
        _ => None,
    }
}

/// A v9 datagram without the zero padding some exporters (Palo Alto, Cisco
/// ACI) add after the last flow set: a set header of length < 4 ends it.
fn trim_v9_padding(p: &[u8]) -> &[u8] {
    if p.len() < 24 || p[..2] != [0, 9] {
        return p;
    }
    let mut pos = 20;
    while pos + 4 <= p.len() {
        let len = u16::from_be_bytes([p[pos + 2], p[pos + 3]]) as usize;
        if len < 4 {
            return &p[..pos];
        }
        pos += len;
    }
    p
}

/// A NetFlow record as exported (counts before sampling is applied), for
/// its evidence line.
#[derive(Debug, Clone)]
pub struct RecordView {
    time: Option<Timestamp>,
    version: u16,
    exporter: IpAddr,
    domain: u32,
    proto: Option<u8>,
    src: Option<IpAddr>,
    sport: Option<u16>,
    dst: Option<IpAddr>,
    dport: Option<u16>,
    pkts: Option<u64>,
    bytes: Option<u64>,
    pkts_rev: Option<u64>,
    bytes_rev: Option<u64>,
    flags: u8,
    rate: Option<u64>,
}

impl RecordView {
    /// `TIME netflow vN exporter IP domain D PROTO SRC -> DST pkts P bytes B
    /// [back pkts bytes] [flags F] [sampled 1:N (counts scaled)]`.
    pub fn render(&self) -> String {
        let ported = matches!(self.proto, Some(6 | 17 | 132));
        let ep = |ip: Option<IpAddr>, port: Option<u16>| -> String {
            let ip = ip.map_or_else(|| "?".to_string(), |ip| ip.to_string());
            match (ported, port) {
                (true, Some(p)) if ip.contains(':') => format!("[{ip}]:{p}"),
                (true, Some(p)) => format!("{ip}:{p}"),
                _ => ip,
            }
        };
        let n = |v: Option<u64>| v.map_or_else(|| "?".to_string(), |v| v.to_string());
        let t = self.time.map_or_else(|| "?".to_string(), |t| t.to_string());
        let mut raw = format!(
            "{t} netflow v{} exporter {} domain {} {} {} -> {} pkts {} bytes {}",
            self.version,
            self.exporter,
            self.domain,
            self.proto.map_or_else(|| "?".to_string(), proto_name),
            ep(self.src, self.sport),
            ep(self.dst, self.dport),
            n(self.pkts),
            n(self.bytes),
        );
        if self.bytes_rev.is_some() || self.pkts_rev.is_some() {
            raw.push_str(&format!(
                " back pkts {} bytes {}",
                n(self.pkts_rev),
                n(self.bytes_rev)
            ));
        }
        if self.proto == Some(6) {
            raw.push_str(&format!(" flags {}", flag_letters(self.flags)));
        }
        if let Some(r) = self.rate {
            raw.push_str(&format!(" sampled 1:{r} (counts scaled)"));
        }
        raw
    }
}

/// Decodes export datagrams, keeping templates per exporter and domain.
pub struct NetflowDecoder {
    parser: AutoScopedParser,
    /// Flow records emitted so far (record numbers in evidence).
    flows: u64,
    /// Sampling rate per exporter, from options records.
    sampling: HashMap<IpAddr, u64>,
    /// IPFIX systemInitTimeMilliseconds per exporter, to date records that
    /// give sysUpTime-relative times.
    sys_init_ms: HashMap<IpAddr, u64>,
    /// Data sets dropped because they came without a template and could
    /// not be held.
    no_template: u64,
    /// Numeric ids of the IANA elements [`Rec::field`] reads (the parser's
    /// enum carries no conversion back to the number).
    iana_ids: HashMap<IANAIPFixField, u16>,
}

/// IANA element ids read from flow records (see [`Rec::field`]).
const READ_IDS: &[u16] = &[
    1, 2, 4, 6, 7, 8, 11, 12, 21, 22, 27, 28, 34, 50, 85, 86, 150, 151, 152, 153, 154, 155, 156,
    157, 160, 231, 232, 298, 299, 305, 306,
];

impl Default for NetflowDecoder {
    fn default() -> Self {
        Self::new()
    }
}

/// Milliseconds from the NTP epoch (1900) to the Unix epoch.
const NTP_UNIX_OFFSET_MS: u64 = 2_208_988_800_000;

/// What a flow record says, by IANA element id.
#[derive(Default)]
struct Rec {
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    sport: Option<u16>,
    dport: Option<u16>,
    proto: Option<u8>,
    bytes: Option<u64>,
    pkts: Option<u64>,
    bytes_rev: Option<u64>,
    pkts_rev: Option<u64>,
    flags: u8,
    first_ms: Option<u64>,
    last_ms: Option<u64>,
    first_up: Option<u64>,
    last_up: Option<u64>,
    sampling: Option<u64>,
    sampling_space: Option<u64>,
}

impl Rec {
    fn field(&mut self, id: u16, v: &FieldValue) {
        // Elements the parser does not type (vendor ranges of v9) come as
        // raw bytes: read them as unsigned big-endian numbers.
        let n = || {
            v.as_u64().or(match v {
                FieldValue::Vec(b) if !b.is_empty() && b.len() <= 8 => {
                    Some(b.iter().fold(0u64, |a, x| (a << 8) | *x as u64))
                }
                _ => None,
            })
        };
        // dateTimeMicroseconds/Nanoseconds are NTP times (since 1900).
        let ntp = || n().map(|ms| ms.saturating_sub(NTP_UNIX_OFFSET_MS));
        let ip = || IpAddr::try_from(v).ok();
        match id {
            1 | 85 => self.bytes = self.bytes.or(n()),
            2 | 86 => self.pkts = self.pkts.or(n()),
            231 => self.bytes = n(),
            298 => self.pkts = n(),
            232 => self.bytes_rev = n(),
            299 => self.pkts_rev = n(),
            4 => self.proto = v.as_u8(),
            6 => {
                self.flags |= match v {
                    FieldValue::TcpControlBits(bits, _) => u16::from(*bits) as u8,
                    other => other.as_u64().unwrap_or(0) as u8,
                }
            }
            7 => self.sport = v.as_u16(),
            11 => self.dport = v.as_u16(),
            8 | 27 => self.src = self.src.or(ip()),
            12 | 28 => self.dst = self.dst.or(ip()),
            22 => self.first_up = n(),
            21 => self.last_up = n(),
            150 | 152 => self.first_ms = n(),
            151 | 153 => self.last_ms = n(),
            154 | 156 => self.first_ms = ntp(),
            155 | 157 => self.last_ms = ntp(),
            34 | 50 | 305 => self.sampling = n(),
            306 => self.sampling_space = n(),
            _ => {}
        }
    }

    fn rate(&self) -> Option<u64> {
        let i = self
            .sampling
            .filter(|s| *s > 1 || self.sampling_space.is_some())?;
        if i == 0 {
            return None;
        }
        // IPFIX: `interval` packets sampled out of `interval + space`.
        let r = match self.sampling_space {
            Some(space) => (i + space) / i,
            None => i,
        };
        (r > 1).then_some(r)
    }
}

/// Export-time context of a datagram.
struct Ctx {
    exporter: IpAddr,
    version: u16,
    domain: u32,
    export_ms: u64,
    /// Router uptime at export (v5/v9), ms.
    uptime_ms: Option<u64>,
    /// IPFIX: the exporter's boot time, ms since the epoch.
    sys_init_ms: Option<u64>,
    offset: u64,
}

impl NetflowDecoder {
    pub fn new() -> Self {
        let builder = NetflowParser::builder().with_pending_flows(PendingFlowsConfig::default());
        let parser = AutoScopedParser::try_with_builder(builder).unwrap_or_default();
        Self {
            parser,
            flows: 0,
            sampling: HashMap::new(),
            sys_init_ms: HashMap::new(),
            no_template: 0,
            iana_ids: READ_IDS
                .iter()
                .map(|id| (IANAIPFixField::from(*id), *id))
                .collect(),
        }
    }

    /// Decode one export datagram from `exporter`. `number` and `offset`
    /// locate it in the input (packet number in a capture, datagram number
    /// in a `.dat` file).
    pub fn datagram(
        &mut self,
        p: &[u8],
        exporter: IpAddr,
        number: u64,
        offset: u64,
        cov: &mut Coverage,
        sink: &mut dyn FnMut(Emitted),
    ) {
        let p = trim_v9_padding(p);
        let result = self
            .parser
            .parse_from_source(SocketAddr::new(exporter, 0), p);
        for pkt in &result.packets {
            match pkt {
                NetflowPacket::V5(v5) => {
                    let h = &v5.header;
                    let rate = (h.sampling_interval & 0x3fff) as u64;
                    let ctx = Ctx {
                        exporter,
                        version: 5,
                        domain: h.engine_id as u32,
                        export_ms: h.unix_secs as u64 * 1000 + h.unix_nsecs as u64 / 1_000_000,
                        uptime_ms: Some(h.sys_up_time as u64),
                        sys_init_ms: None,
                        offset,
                    };
                    for f in &v5.flowsets {
                        let rec = Rec {
                            src: Some(IpAddr::V4(f.src_addr)),
                            dst: Some(IpAddr::V4(f.dst_addr)),
                            sport: Some(f.src_port),
                            dport: Some(f.dst_port),
                            proto: Some(f.protocol_number),
                            bytes: Some(f.d_octets as u64),
                            pkts: Some(f.d_pkts as u64),
                            flags: f.tcp_flags,
                            first_up: Some(f.first as u64),
                            last_up: Some(f.last as u64),
                            sampling: (rate > 1).then_some(rate),
                            ..Default::default()
                        };
                        self.emit(&ctx, rec, cov, sink);
                    }
                }
                NetflowPacket::V9(v9) => self.v9(v9, exporter, number, offset, cov, sink),
                NetflowPacket::IPFix(ipfix) => {
                    self.ipfix(ipfix, exporter, number, offset, cov, sink)
                }
                _ => {
                    cov.problem("NetFlow v7 is not decoded", || {
                        format!("datagram {number} at offset {offset}")
                    });
                }
            }
        }
        if let Some(e) = &result.error {
            // The parser's message can carry the input bytes: keep the words.
            let text = e.to_string();
            let text = text.split(" { input").next().unwrap_or("");
            let first = text
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(120)
                .collect::<String>();
            cov.problem(format!("NetFlow datagram not decoded: {first}"), || {
                format!("datagram {number} at offset {offset}")
            });
        }
    }

    fn v9(
        &mut self,
        v9: &V9,
        exporter: IpAddr,
        number: u64,
        offset: u64,
        cov: &mut Coverage,
        sink: &mut dyn FnMut(Emitted),
    ) {
        let h = &v9.header;
        let ctx = Ctx {
            exporter,
            version: 9,
            domain: h.source_id,
            export_ms: h.unix_secs as u64 * 1000,
            uptime_ms: Some(h.sys_up_time as u64),
            sys_init_ms: None,
            offset,
        };
        for fs in &v9.flowsets {
            match &fs.body {
                V9Body::Data(d) => {
                    for r in &d.fields {
                        let mut rec = Rec::default();
                        for (f, v) in r {
                            rec.field(u16::from(*f), v);
                        }
                        self.emit(&ctx, rec, cov, sink);
                    }
                }
                V9Body::OptionsData(od) => {
                    for r in &od.fields {
                        *cov.record_types.entry("options".into()).or_default() += 1;
                        let mut rec = Rec::default();
                        for (f, v) in &r.options_fields {
                            rec.field(u16::from(*f), v);
                        }
                        if let Some(s) = rec.rate() {
                            self.sampling.insert(exporter, s);
                        }
                    }
                }
                V9Body::NoTemplate(info) => {
                    self.no_template += 1;
                    let id = info.template_id;
                    cov.problem(
                        "NetFlow v9 data set without its template (not held: too large or cache full)",
                        || format!("datagram {number} at offset {offset}, template {id}"),
                    );
                }
                _ => {}
            }
        }
    }

    fn ipfix(
        &mut self,
        m: &IPFix,
        exporter: IpAddr,
        number: u64,
        offset: u64,
        cov: &mut Coverage,
        sink: &mut dyn FnMut(Emitted),
    ) {
        let h = &m.header;
        let mut ctx = Ctx {
            exporter,
            version: 10,
            domain: h.observation_domain_id,
            export_ms: h.export_time as u64 * 1000,
            uptime_ms: None,
            sys_init_ms: self.sys_init_ms.get(&exporter).copied(),
            offset,
        };
        let ids = std::mem::take(&mut self.iana_ids);
        let ipfix_id = |f: &IPFixField| -> Option<u16> {
            match f {
                IPFixField::IANA(IANAIPFixField::Unknown(n)) => Some(*n),
                IPFixField::IANA(x) => ids.get(x).copied(),
                _ => None,
            }
        };
        for fs in &m.flowsets {
            match &fs.body {
                IpfixBody::Data(d) => {
                    for r in &d.fields {
                        let mut rec = Rec::default();
                        for (f, v) in r {
                            if let Some(id) = ipfix_id(f) {
                                rec.field(id, v);
                            }
                        }
                        self.emit(&ctx, rec, cov, sink);
                    }
                }
                IpfixBody::OptionsData(od) => {
                    for r in &od.fields {
                        *cov.record_types.entry("options".into()).or_default() += 1;
                        let mut rec = Rec::default();
                        for (f, v) in r {
                            if let Some(id) = ipfix_id(f) {
                                if id == 160
                                    && let Some(t) = v.as_u64()
                                {
                                    self.sys_init_ms.insert(exporter, t);
                                    ctx.sys_init_ms = Some(t);
                                }
                                rec.field(id, v);
                            }
                        }
                        if let Some(s) = rec.rate() {
                            self.sampling.insert(exporter, s);
                        }
                    }
                }
                IpfixBody::V9Data(d) => {
                    for r in &d.fields {
                        let mut rec = Rec::default();
                        for (f, v) in r {
                            rec.field(u16::from(*f), v);
                        }
                        self.emit(&ctx, rec, cov, sink);
                    }
                }
                IpfixBody::V9OptionsData(od) => {
                    let n = od.fields.len() as u64;
                    *cov.record_types.entry("options".into()).or_default() += n;
                }
                IpfixBody::NoTemplate(info) => {
                    self.no_template += 1;
                    let id = info.template_id;
                    cov.problem(
                        "IPFIX data set without its template (not held: too large or cache full)",
                        || format!("datagram {number} at offset {offset}, template {id}"),
                    );
                }
                _ => {}
            }
        }
        self.iana_ids = ids;
    }

    fn emit(&mut self, ctx: &Ctx, rec: Rec, cov: &mut Coverage, sink: &mut dyn FnMut(Emitted)) {
        *cov.record_types.entry("flow".into()).or_default() += 1;
        self.flows += 1;
        let rate = rec
            .rate()
            .or_else(|| self.sampling.get(&ctx.exporter).copied());
        let scale = |x: Option<u64>| x.map(|v| v.saturating_mul(rate.unwrap_or(1)));
        // Absolute times, else uptime-relative, else the export time.
        let from_uptime = |up: Option<u64>| -> Option<u64> {
            let up = up?;
            match (ctx.uptime_ms, ctx.sys_init_ms) {
                // Uptime counters wrap at 2^32 ms: the record is `now - up`
                // milliseconds old, modulo 2^32.
                (Some(now_up), _) => Some(
                    ctx.export_ms
                        .saturating_sub((now_up as u32).wrapping_sub(up as u32) as u64),
                ),
                (None, Some(init)) => Some(init.saturating_add(up)),
                (None, None) => None,
            }
        };
        let first = rec
            .first_ms
            .or_else(|| from_uptime(rec.first_up))
            .unwrap_or(ctx.export_ms);
        let last = rec
            .last_ms
            .or_else(|| from_uptime(rec.last_up))
            .unwrap_or(first);
        let to_ts = |ms: u64| Timestamp::from_millisecond(ms as i64).ok();
        let mut ev = Event::new(EventKind::Connection);
        ev.time = to_ts(first);
        ev.end_time = to_ts(last.max(first));
        ev.src_ip = rec.src;
        ev.dst_ip = rec.dst;
        let ported = matches!(rec.proto, Some(6 | 17 | 132));
        if ported {
            ev.src_port = rec.sport;
            ev.dst_port = rec.dport;
        }
        ev.proto = rec.proto.map(proto_of);
        ev.bytes_out = scale(rec.bytes);
        ev.packets = scale(match (rec.pkts, rec.pkts_rev) {
            (Some(a), Some(b)) => Some(a + b),
            (a, _) => a,
        });
        ev.bytes_in = scale(rec.bytes_rev);
        ev.packets_in = scale(rec.pkts_rev);
        if rec.proto == Some(6) {
            ev.conn_state = Some(format!("flags:{}", flag_letters(rec.flags)));
        }
        ev.service = Some("netflow".into());
        if let Some(t) = ev.time {
            cov.see_time(t);
        }
        if let Some(t) = ev.end_time {
            cov.see_time(t);
        }
        cov.events += 1;
        cov.flows += 1;
        let view = RecordView {
            time: ev.time,
            version: ctx.version,
            exporter: ctx.exporter,
            domain: ctx.domain,
            proto: rec.proto,
            src: rec.src,
            sport: rec.sport,
            dst: rec.dst,
            dport: rec.dport,
            pkts: rec.pkts,
            bytes: rec.bytes,
            pkts_rev: rec.pkts_rev,
            bytes_rev: rec.bytes_rev,
            flags: rec.flags,
            rate,
        };
        sink(Emitted {
            event: ev,
            raw: Raw::NetFlow(Box::new(view)),
            record: self.flows,
            offset: ctx.offset,
        });
    }

    /// Count what is still waiting for a template at the end of the input.
    pub fn finish(&mut self, cov: &mut Coverage) {
        let mut cached = 0u64;
        let mut replayed = 0u64;
        let mut dropped = 0u64;
        let infos = self
            .parser
            .v9_info()
            .into_iter()
            .map(|(_, i)| i)
            .chain(self.parser.ipfix_info().into_iter().map(|(_, i)| i))
            .chain(self.parser.legacy_info().into_iter().map(|(_, i)| i));
        for i in infos {
            for c in [&i.v9, &i.ipfix] {
                cached += c.metrics.pending_cached;
                replayed += c.metrics.pending_replayed;
                dropped += c.metrics.pending_dropped + c.metrics.pending_replay_failed;
            }
        }
        cov.waiting_for_template += cached;
        cov.never_decoded += cached.saturating_sub(replayed) + self.no_template;
        if dropped > 0 {
            cov.problem(
                format!("{dropped} held data sets dropped (cache limits or replay failure)"),
                || "end of input".into(),
            );
        }
    }
}

/// Largest export file read (export datagrams are held in memory).
const MAX_FILE: u64 = 1 << 30;

/// Read a file of NetFlow/IPFIX export datagrams (raw UDP payloads, one or
/// several back to back). There is no exporter address in such a file: all
/// datagrams are taken to come from one exporter (0.0.0.0); v9 source ids
/// and IPFIX observation domains still keep their templates apart.
pub fn read_datagrams<R: Read>(input: R, sink: &mut dyn FnMut(Emitted)) -> Coverage {
    let mut cov = Coverage::new("netflow");
    let mut buf = Vec::new();
    if let Err(e) = input.take(MAX_FILE).read_to_end(&mut buf) {
        cov.fatal = Some(format!("cannot read it: {e}"));
        return cov;
    }
    let mut dec = NetflowDecoder::new();
    let exporter = IpAddr::from([0, 0, 0, 0]);
    let mut pos = 0usize;
    while pos < buf.len() {
        let rest = &buf[pos..];
        let Some(n) = frame_len(rest).filter(|n| *n > 0) else {
            let why = format!(
                "not a NetFlow/IPFIX header at offset {pos}: the rest of the file ({} bytes) was not read",
                rest.len()
            );
            cov.problem("not a NetFlow/IPFIX header (rest of file not read)", || {
                format!("offset {pos}")
            });
            cov.fatal = Some(why);
            break;
        };
        cov.records += 1;
        let number = cov.records;
        dec.datagram(&rest[..n], exporter, number, pos as u64, &mut cov, sink);
        pos += n;
    }
    cov.bytes = pos as u64;
    dec.finish(&mut cov);
    cov
}
