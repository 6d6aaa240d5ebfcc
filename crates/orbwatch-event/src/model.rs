//! The normalized [`Event`]: what every decoder produces and every detector
//! consumes.
//!
//! One shape for a Zeek conn record, an sshd failure line, a firewall deny
//! and a NetFlow record means IOC matching and behaviour detection are
//! written once. Fields a format does not have stay `None`.

use std::net::IpAddr;
use std::sync::Arc;

use jiff::Timestamp;
use serde::Serialize;

/// Transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
    Icmp6,
    Other(u8),
}

impl Proto {
    /// Parse names (`tcp`, `TCP`, `udp`, `icmp`) and IANA numbers (`6`, `17`).
    pub fn parse(s: &str) -> Option<Proto> {
        let s = s.trim();
        if let Ok(n) = s.parse::<u8>() {
            return Some(match n {
                6 => Proto::Tcp,
                17 => Proto::Udp,
                1 => Proto::Icmp,
                58 => Proto::Icmp6,
                n => Proto::Other(n),
            });
        }
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            "icmp" => Some(Proto::Icmp),
            "icmpv6" | "ipv6-icmp" | "icmp6" => Some(Proto::Icmp6),
            _ => None,
        }
    }
}

/// What a firewall or IDS did with the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Deny,
    Drop,
    Reject,
    Alert,
}

/// Outcome of an authentication attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthOutcome {
    Success,
    Failure,
    /// The account does not exist (`Invalid user`, 4625 status 0xC0000064).
    InvalidUser,
}

/// What kind of record the event came from; detectors use it to pick events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A connection or flow (Zeek conn, EVE flow, NetFlow, firewall log).
    Connection,
    /// An authentication attempt.
    Auth,
    Dns,
    Http,
    Tls,
    /// An IDS alert.
    Alert,
    File,
    #[default]
    Other,
}

/// Where an event came from: the evidence trail back to the raw record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// The input path as the user gave it (or `-` for stdin).
    pub file: Arc<str>,
    /// 1-based line number, for line-oriented formats; 0 otherwise.
    pub line: u64,
    /// Byte offset of the record in the (decompressed) stream.
    pub offset: u64,
    /// The decoder's name (`zeek-tsv`, `syslog`, `eve`…).
    pub format: &'static str,
}

/// One normalized record.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Event {
    pub kind: EventKind,
    pub time: Option<Timestamp>,
    pub src_ip: Option<IpAddr>,
    pub src_port: Option<u16>,
    pub dst_ip: Option<IpAddr>,
    pub dst_port: Option<u16>,
    pub proto: Option<Proto>,
    pub action: Option<Action>,
    pub auth: Option<AuthOutcome>,
    /// The account name in an auth event.
    pub user: Option<String>,
    /// The host that wrote the record (syslog hostname, sensor name).
    pub host: Option<String>,
    /// Service or program (`sshd`, `vsftpd`, `http`, `rdp`…).
    pub service: Option<String>,
    /// A DNS name seen in the record: query, HTTP Host, TLS SNI.
    pub domain: Option<String>,
    pub url: Option<String>,
    /// Bytes from source to destination, and back.
    pub bytes_out: Option<u64>,
    pub bytes_in: Option<u64>,
    pub packets: Option<u64>,
    /// Connection state or TCP flags as the format gives them (`S0`, `REJ`, `SYN`).
    pub conn_state: Option<String>,
    /// Addresses in the record whose role is unknown (text fallback, answers
    /// of a DNS query, X-Forwarded-For…). Matched without direction.
    pub other_ips: Vec<IpAddr>,
    /// Further DNS names (DNS answers, certificate names).
    pub other_domains: Vec<String>,
    /// File hashes or certificate fingerprints in the record, lower-case hex.
    pub hashes: Vec<String>,
    /// How many underlying observations this event stands for (NetFlow
    /// records, aggregated lines). 1 for ordinary records.
    pub count: u64,
    /// Time of the last packet of a flow (pcap flows, NetFlow records);
    /// `time` is the first.
    pub end_time: Option<Timestamp>,
    /// Packets from destination back to source, where the format counts
    /// each way; `packets` is the total.
    pub packets_in: Option<u64>,
    /// The verdict an IDS wrote: a Suricata alert signature, a Zeek notice
    /// name (`Scan::Port_Scan`). Behaviour detectors read scan and brute
    /// force verdicts as evidence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

impl Event {
    /// An empty event of `kind` standing for one record.
    pub fn new(kind: EventKind) -> Self {
        Self {
            kind,
            count: 1,
            ..Default::default()
        }
    }

    /// Every address in the event, with its role.
    pub fn addresses(&self) -> impl Iterator<Item = (IpAddr, AddrRole)> + '_ {
        self.src_ip
            .map(|a| (a, AddrRole::Src))
            .into_iter()
            .chain(self.dst_ip.map(|a| (a, AddrRole::Dst)))
            .chain(self.other_ips.iter().map(|a| (*a, AddrRole::Unknown)))
    }
}

/// The role of an address within an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AddrRole {
    Src,
    Dst,
    Unknown,
}
