//! Binary evidence for orbwatch: packet captures, flow exports and Windows
//! event logs, turned into the same [`Event`]s as text logs.
//!
//! Much of the evidence of a relay network is not in text logs: an IDS keeps
//! pcaps, routers export NetFlow/IPFIX, Windows writes EVTX. Each decoder
//! here reads a byte stream (`impl Read`), calls a sink with every event it
//! makes ([`Emitted`]: the event, a short human-readable rendering of the
//! record for evidence, and its position), and returns a [`Coverage`] of
//! the input: records read, events, and every problem counted with a reason.
//! Formats are told apart by magic number ([`detect`]), never by extension.

use std::collections::BTreeMap;

use jiff::Timestamp;
use orbwatch_event::Event;
use serde::Serialize;

pub mod app;
pub mod evtx;
pub mod exporter;
pub mod flow;
pub mod netflow;
pub mod pcap;

/// A binary input format, recognised by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BinaryFormat {
    /// Classic libpcap file, either byte order, micro- or nanosecond stamps.
    Pcap,
    /// pcapng (section header block magic).
    Pcapng,
    /// NetFlow v5, v9 or IPFIX: a raw UDP payload file (`.dat`) or a
    /// sequence of export datagrams.
    NetFlow,
    /// Windows XML event log (`ElfFile\0`).
    Evtx,
}

impl BinaryFormat {
    /// The name shown in coverage and evidence.
    pub fn name(self) -> &'static str {
        match self {
            BinaryFormat::Pcap => "pcap",
            BinaryFormat::Pcapng => "pcapng",
            BinaryFormat::NetFlow => "netflow",
            BinaryFormat::Evtx => "evtx",
        }
    }
}

/// Recognise a binary format from the first bytes of an input (at least 24
/// are needed for NetFlow). `None` when the head is none of them.
pub fn detect(head: &[u8]) -> Option<BinaryFormat> {
    if head.len() < 4 {
        return None;
    }
    match &head[..4] {
        // µs and ns magics, both byte orders.
        [0xd4, 0xc3, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0xc3, 0xd4]
        | [0x4d, 0x3c, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0x3c, 0x4d] => return Some(BinaryFormat::Pcap),
        [0x0a, 0x0d, 0x0d, 0x0a] => return Some(BinaryFormat::Pcapng),
        _ => {}
    }
    if head.starts_with(b"ElfFile\0") {
        return Some(BinaryFormat::Evtx);
    }
    if netflow::looks_like_netflow(head) {
        return Some(BinaryFormat::NetFlow);
    }
    None
}

/// One event made by a binary decoder.
#[derive(Debug, Clone)]
pub struct Emitted {
    pub event: Event,
    /// The record for evidence, rendered on demand by [`Emitted::raw`].
    pub raw: Raw,
    /// Record number in the input: the packet number (1-based) of a flow's
    /// first packet or of the packet carrying a DNS/TLS/HTTP message, the
    /// NetFlow flow record number, the EVTX record id.
    pub record: u64,
    /// Byte offset of that record (packet, datagram, EVTX chunk) in the input.
    pub offset: u64,
}

/// What an [`Emitted`] event was made from, kept so that its evidence line
/// is only formatted for the events that are shown (formatting every flow
/// of a capture would cost a fifth of the read).
#[derive(Debug, Clone)]
pub enum Raw {
    /// Already text (DNS/TLS/HTTP lines, EVTX XML).
    Text(String),
    /// A packet flow.
    Flow(Box<flow::Flow>),
    /// A NetFlow/IPFIX record.
    NetFlow(Box<netflow::RecordView>),
}

impl Emitted {
    /// A short human-readable rendering of the record for evidence: a flow
    /// summary line, a NetFlow record's fields, an EVTX record's XML.
    pub fn raw(&self) -> std::borrow::Cow<'_, str> {
        match &self.raw {
            Raw::Text(s) => std::borrow::Cow::Borrowed(s),
            Raw::Flow(f) => std::borrow::Cow::Owned(f.render()),
            Raw::NetFlow(r) => std::borrow::Cow::Owned(r.render()),
        }
    }
}

/// A rejection reason with its count and where it first happened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProblemStat {
    pub count: u64,
    /// Position of the first occurrence, e.g. "packet 12 at offset 4096".
    pub first: String,
}

/// What a binary decoder made of one input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// `pcap`, `pcapng`, `netflow`, `evtx`.
    pub format: String,
    /// Bytes consumed.
    pub bytes: u64,
    /// Records read: packets, NetFlow datagrams, EVTX records.
    pub records: u64,
    /// Events handed to the sink.
    pub events: u64,
    /// Flow events among them (pcap flows, NetFlow records).
    pub flows: u64,
    /// Packets that were not IPv4/IPv6 (ARP, LLDP, STP…): read, not flows.
    pub non_ip: u64,
    /// IP fragments: counted, not reassembled. Their transport header is
    /// not read, so all fragments of a datagram go to one flow of their
    /// addresses and protocol with port 0, and make no DNS/TLS/HTTP event.
    pub fragments: u64,
    /// Packets on link types this reader does not decode, by link type name.
    pub unknown_link_types: BTreeMap<String, u64>,
    /// NetFlow v9/IPFIX data sets that arrived before their template. They
    /// are held (bounded) and decoded once it arrives; this counts them.
    pub waiting_for_template: u64,
    /// Data sets still without a template at the end of the input.
    pub never_decoded: u64,
    /// EVTX: records per event id, mapped or not.
    pub record_types: BTreeMap<String, u64>,
    /// Records the decoder could not read, by reason.
    pub errors: u64,
    pub reasons: BTreeMap<String, ProblemStat>,
    pub first_time: Option<Timestamp>,
    pub last_time: Option<Timestamp>,
    /// Why the input stopped early (a truncated file), if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fatal: Option<String>,
}

impl Coverage {
    /// Coverage for an input of `format`.
    pub fn new(format: &str) -> Self {
        Self {
            format: format.to_string(),
            ..Default::default()
        }
    }

    /// Count a problem with its reason and position.
    pub fn problem(&mut self, reason: impl Into<String>, position: impl FnOnce() -> String) {
        self.errors += 1;
        let reason = reason.into();
        let stat = self.reasons.entry(reason).or_default();
        if stat.count == 0 {
            stat.first = position();
        }
        stat.count += 1;
    }

    /// Extend the time range covered.
    pub fn see_time(&mut self, t: Timestamp) {
        self.first_time = Some(self.first_time.map_or(t, |f| f.min(t)));
        self.last_time = Some(self.last_time.map_or(t, |l| l.max(t)));
    }
}

/// Settings for [`read_any`].
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Use this format instead of detecting it.
    pub format: Option<BinaryFormat>,
    pub pcap: pcap::PcapOptions,
}

/// Read any binary input: detect its format by magic number (unless
/// forced) and run the matching decoder.
pub fn read_any<R: std::io::BufRead + Send>(
    mut input: R,
    opts: &ReadOptions,
    sink: &mut dyn FnMut(Emitted),
) -> Coverage {
    let format = match opts.format {
        Some(f) => Some(f),
        None => match input.fill_buf() {
            Ok(head) => detect(head),
            Err(e) => {
                let mut c = Coverage::new("unknown");
                c.fatal = Some(format!("cannot read it: {e}"));
                return c;
            }
        },
    };
    match format {
        Some(BinaryFormat::Pcap | BinaryFormat::Pcapng) => {
            pcap::read_capture(input, &opts.pcap, sink)
        }
        Some(BinaryFormat::NetFlow) => netflow::read_datagrams(input, sink),
        Some(BinaryFormat::Evtx) => evtx::read_evtx(input, sink),
        None => {
            let mut c = Coverage::new("unknown");
            c.fatal = Some("not a pcap, pcapng, NetFlow/IPFIX or EVTX file".into());
            c
        }
    }
}
