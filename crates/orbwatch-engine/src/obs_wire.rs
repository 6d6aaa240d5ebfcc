//! Behaviour observations on the wire: what `orbwatch worker --stage 1`
//! produces to the observations topic and `--stage 2` consumes.
//!
//! Why a format of its own: an in-memory [`Obs`] (48 bytes) names its
//! addresses, account and service by ids into the [`Tables`] of the
//! process that made it, and its evidence by (input, line) of that
//! process's inputs. A stage-2 worker has neither, so each message is
//! self-contained: the resolved addresses and names, and the raw record
//! itself (cut to [`RAW_CAP`] bytes) with where it came from, so the
//! behaviour findings of stage 2 carry the same evidence a single
//! process would show. It lives in the engine, next to the live
//! pipeline that makes and reads it, not in the Kafka crate: nothing in
//! it depends on Kafka, and any transport could carry it.
//!
//! Layout, version 1 (integers little-endian; `str` = u16 length +
//! UTF-8; `node` = tag u8: 0 none, 4 + 4 bytes IPv4, 6 + 16 bytes IPv6,
//! 1 + `str` host name):
//!
//! ```text
//! "oW" version=1 kind:u8 flags:u8 time_ms:i64 producer:u64
//! src:node dst:node dst_port:u16 service:str
//! aux: str account (auth kinds) | u64 value (other kinds)
//! origin:str stream:str format:str number:u64 offset:u64 raw:str
//! ```
//!
//! A stage-1 worker also writes a **watermark** to every partition at
//! each commit: `"oW" version=1 kind=255 producer:u64 time_ms:i64` (20
//! bytes, no key), saying that this producer will write nothing older
//! than `time_ms` any more (but for observations it itself received
//! late). Stage 2 moves that producer's clock in that partition with it,
//! so a partition that gets none of a producer's observations for a while
//! does not hold the others back, and a producer it has not heard from
//! yet in a partition is waited for (Flink and Kafka Streams forward
//! watermarks through a shuffle the same way).
//!
//! Stage 1 also writes each **indicator sighting** (kind 254, a body
//! with a layout byte of its own, version 1): everything the
//! [`Aggregator`](orbwatch_detect::Aggregator) of a hunt takes from a
//! sighting, keyed by the peer of its finding (or `indicator FEED VALUE`
//! when there is none), so that all the sightings of one finding meet in
//! one stage-2 worker, whichever raw partitions and stage-1 workers they
//! came through. Times keep their nanoseconds (a finding's id is made
//! from its first sighting's time as a hunt prints it):
//!
//! ```text
//! "oW" version=1 kind=254 layout=1 producer:u64 flags:u8 (1 in window, 2 context)
//! time:ts indicator:u32 feed:str value:str
//! rows:u16 × (id:u32 from:ts until:ts)
//! peer:node src:node dst:node direction:u8 outcome:u8 bytes_to:opt u64
//! matched_field:str matched_value:str user:opt str
//! file:str line:u64 offset:u64 format:str raw:u16 length + bytes
//! ```
//!
//! (`ts` = u8 0 for none, or 1 + i64 seconds + i32 nanoseconds; `opt` =
//! u8 0 for none or 1 + the value; `raw` is at most
//! [`RAW_CAP`] + 1 bytes, any bytes: one more than the aggregator keeps
//! tells it that the record was longer.) `indicator` is the feed row's
//! id in stage 1's indicator index; `feed` and `value` say which
//! indicator that is, so stage 2 checks that its own index gives the same
//! id the same meaning before it aggregates (see
//! `LivePipeline::handle_sighting`).
//!
//! An sshd failure with its 105-byte line is 233 bytes (IPv6
//! destination, a 24-byte stream name). The
//! decoder never panics: anything malformed (wrong magic, unknown
//! version or kind, short, trailing bytes, bad UTF-8) is an error that
//! says what and where.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use std::sync::Arc;

use jiff::Timestamp;
use orbwatch_detect::OwnedSighting;
use orbwatch_detect::aggregate::Row;
use orbwatch_detect::behaviour::observe::{
    NAMED_SOURCE, NONE, NodeId, Obs, ObsKind, Tables, is_account_kind,
};
use orbwatch_detect::finding::{Direction, Outcome, ValidityWindow};
use orbwatch_event::Origin;

/// First bytes of every message.
pub const MAGIC: [u8; 2] = *b"oW";
/// The version this build writes and reads.
pub const VERSION: u8 = 1;
/// Raw evidence is cut to this many bytes (as the live pipeline keeps it).
pub const RAW_CAP: usize = 2048;
/// Longest name kept (account, service, host, stream, format, origin).
pub(crate) const NAME_CAP: usize = 1024;

/// A source or destination, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireNode {
    None,
    Addr(IpAddr),
    /// A named host (an auth event without a source address).
    Host(String),
}

/// Where the observation's record came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireEvidence {
    /// The record source's identity: `kafka:TOPIC:PARTITION` for a Kafka
    /// record (empty when the source has none).
    pub origin: String,
    /// The stream the record belonged to (the evidence's "file"):
    /// `kafka raw.logs/3 key gw2`.
    pub stream: String,
    /// The decoder that read it (`syslog`, `eve`, …).
    pub format: String,
    /// The record's number in its stream (Kafka: offset + 1).
    pub number: u64,
    /// The record's offset (Kafka: its offset in the partition).
    pub offset: u64,
    /// The raw record, cut to [`RAW_CAP`] bytes (at a character boundary).
    pub raw: String,
}

/// One self-contained observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireObservation {
    /// The stage-1 worker that produced it (random per process): stage 2
    /// keeps one event-time clock per (partition, producer), since each
    /// producer writes in its own event-time order.
    pub producer: u64,
    pub kind: ObsKind,
    pub flags: u8,
    /// Event time, ms since the Unix epoch.
    pub time: i64,
    pub src: WireNode,
    pub dst: WireNode,
    pub dst_port: u16,
    /// Service name (empty when none).
    pub service: String,
    /// Account name, for the auth kinds (empty otherwise).
    pub account: String,
    /// `aux` of the other kinds (bytes, counts, verdict class).
    pub value: u64,
    pub evidence: WireEvidence,
}

/// The kind byte of a watermark message.
pub const WATERMARK_KIND: u8 = 255;
/// The kind byte of an indicator sighting.
pub const SIGHTING_KIND: u8 = 254;
/// The layout of a sighting's body this build writes and reads.
pub const SIGHTING_LAYOUT: u8 = 1;

/// One indicator sighting made by a stage-1 worker, for the stage-2
/// worker that aggregates its finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireSighting {
    /// The stage-1 worker that produced it.
    pub producer: u64,
    /// The feed of `sighting.indicator` at stage 1.
    pub feed: String,
    /// The indicator's value (as a finding names it) at stage 1.
    pub value: String,
    pub sighting: OwnedSighting,
}

/// One message of the observations topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireMessage {
    Observation(Box<WireObservation>),
    /// An indicator sighting (stage 2 aggregates it).
    Sighting(Box<WireSighting>),
    /// `producer` writes nothing older than `time` (ms) from now on.
    Watermark {
        producer: u64,
        time: i64,
    },
}

impl WireMessage {
    /// Read one message (an observation or a watermark).
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() >= 4
            && bytes[..2] == MAGIC
            && bytes[2] == VERSION
            && bytes[3] == WATERMARK_KIND
        {
            let mut r = Reader { b: bytes, at: 4 };
            let producer = u64::from_le_bytes(r.array("the producer")?);
            let time = i64::from_le_bytes(r.array("the time")?);
            if r.at != bytes.len() {
                return Err(WireError::Trailing(bytes.len() - r.at));
            }
            return Ok(Self::Watermark { producer, time });
        }
        if bytes.len() >= 4
            && bytes[..2] == MAGIC
            && bytes[2] == VERSION
            && bytes[3] == SIGHTING_KIND
        {
            return WireSighting::decode(bytes).map(|w| Self::Sighting(Box::new(w)));
        }
        WireObservation::decode(bytes).map(|w| Self::Observation(Box::new(w)))
    }

    /// The message key (see [`WireObservation::key`] and
    /// [`WireSighting::key`]; a watermark has none).
    pub fn key(&self) -> String {
        match self {
            Self::Observation(w) => w.key(),
            Self::Sighting(w) => w.key(),
            Self::Watermark { .. } => String::new(),
        }
    }

    /// The message bytes.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Observation(w) => w.encode(),
            Self::Sighting(w) => w.encode(),
            Self::Watermark { producer, time } => Self::watermark(*producer, *time),
        }
    }

    /// The event time the message is ordered by (ms; `None` for an
    /// untimed sighting).
    pub fn time(&self) -> Option<i64> {
        match self {
            Self::Observation(w) => Some(w.time),
            Self::Sighting(w) => w.sighting.time.map(|t| t.as_millisecond()),
            Self::Watermark { time, .. } => Some(*time),
        }
    }

    /// The bytes of a watermark message.
    pub fn watermark(producer: u64, time: i64) -> Vec<u8> {
        let mut b = Vec::with_capacity(20);
        b.extend_from_slice(&MAGIC);
        b.push(VERSION);
        b.push(WATERMARK_KIND);
        b.extend_from_slice(&producer.to_le_bytes());
        b.extend_from_slice(&time.to_le_bytes());
        b
    }
}

/// A message the decoder refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("not an orbwatch observation (first bytes {0:02x?}, expected \"oW\")")]
    Magic(Vec<u8>),
    #[error(
        "observation format version {0} is not known to this build (it reads version {VERSION}): upgrade the stage-2 workers"
    )]
    Version(u8),
    #[error("unknown observation kind {0}")]
    Kind(u8),
    #[error("unknown address tag {tag} at byte {at}")]
    NodeTag { tag: u8, at: usize },
    #[error("message ends at byte {len} while reading {what}")]
    Short { what: &'static str, len: usize },
    #[error("{what} at byte {at} is not UTF-8")]
    Utf8 { what: &'static str, at: usize },
    #[error("{0} bytes after the end of the observation")]
    Trailing(usize),
    #[error(
        "sighting layout {0} is not known to this build (it reads layout {SIGHTING_LAYOUT}): upgrade the stage-2 workers"
    )]
    SightingLayout(u8),
    #[error("{what} at byte {at} is out of range")]
    Value { what: &'static str, at: usize },
}

/// `s` as a `&'static str`: the names a sighting carries (the matched
/// field, the decoder) are `&'static str` in the aggregator, and the
/// ones a hunt makes are few. Each distinct name is leaked once; past
/// [`INTERNED_CAP`] of them (a topic written by something else), the
/// rest read as `other`.
fn intern(s: &str) -> &'static str {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(|| Mutex::new(HashSet::new()))
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(n) = names.get(s) {
        return n;
    }
    if names.len() >= INTERNED_CAP {
        return "other";
    }
    let leaked: &'static str = Box::leak(Box::from(s));
    names.insert(leaked);
    leaked
}

/// Longest indicator value and matched value kept: whole (a URL cut
/// would make another finding id), up to what a `str` can hold.
const VALUE_CAP: usize = u16::MAX as usize;

/// Distinct field and format names [`intern`] keeps.
const INTERNED_CAP: usize = 1024;

const DIRECTIONS: [Direction; 4] = [
    Direction::Inbound,
    Direction::Outbound,
    Direction::Internal,
    Direction::Unknown,
];

fn put_time(b: &mut Vec<u8>, t: Option<Timestamp>) {
    match t {
        None => b.push(0),
        Some(t) => {
            b.push(1);
            b.extend_from_slice(&t.as_second().to_le_bytes());
            b.extend_from_slice(&t.subsec_nanosecond().to_le_bytes());
        }
    }
}

fn put_ip(b: &mut Vec<u8>, ip: Option<IpAddr>) {
    put_node(b, &ip.map_or(WireNode::None, WireNode::Addr));
}

impl WireSighting {
    /// A sighting made here, with the feed and value `ioc` gives its
    /// indicator.
    pub fn new(sighting: OwnedSighting, ioc: &orbwatch_detect::IocEngine, producer: u64) -> Self {
        let (feed, value) = match ioc.describe(sighting.indicator, &sighting.matched_value) {
            Some(v) => (v.meta.feed.clone(), v.value),
            None => (String::new(), sighting.matched_value.clone()),
        };
        Self {
            producer,
            feed,
            value,
            sighting,
        }
    }

    /// The message key: the /24 (IPv6: /64) of the peer of the
    /// sighting's finding, so that all of one finding's sightings land in
    /// one partition, and in the one that holds the peer's own
    /// observations ([`WireObservation::key`]): the stage-2 task that
    /// aggregates the finding then knows what its peer did (the
    /// ORB-likelihood annotation reads it), as `--stage all` does.
    /// Without a peer, the indicator.
    pub fn key(&self) -> String {
        match self.sighting.peer {
            Some(ip) => {
                orbwatch_detect::behaviour::success_after_failures::cluster_name(ip.to_canonical())
            }
            None => format!("indicator {} {}", self.feed, self.value),
        }
    }

    /// The message bytes (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let s = &self.sighting;
        let mut b = Vec::with_capacity(160 + s.raw.len().min(RAW_CAP + 1));
        b.extend_from_slice(&MAGIC);
        b.push(VERSION);
        b.push(SIGHTING_KIND);
        b.push(SIGHTING_LAYOUT);
        b.extend_from_slice(&self.producer.to_le_bytes());
        b.push(u8::from(s.in_window) | (u8::from(s.context) << 1));
        put_time(&mut b, s.time);
        b.extend_from_slice(&s.indicator.to_le_bytes());
        put_str(&mut b, &self.feed, NAME_CAP);
        put_str(&mut b, &self.value, VALUE_CAP);
        let rows = &s.rows[..s.rows.len().min(usize::from(u16::MAX))];
        b.extend_from_slice(&(rows.len() as u16).to_le_bytes());
        for r in rows {
            b.extend_from_slice(&r.id.to_le_bytes());
            put_time(&mut b, r.window.from);
            put_time(&mut b, r.window.until);
        }
        put_ip(&mut b, s.peer);
        put_ip(&mut b, s.src_ip);
        put_ip(&mut b, s.dst_ip);
        b.push(
            DIRECTIONS
                .iter()
                .position(|d| *d == s.direction)
                .unwrap_or(3) as u8,
        );
        b.push(
            Outcome::ALL
                .iter()
                .position(|o| *o == s.outcome)
                .unwrap_or(7) as u8,
        );
        match s.bytes_to_indicator {
            None => b.push(0),
            Some(n) => {
                b.push(1);
                b.extend_from_slice(&n.to_le_bytes());
            }
        }
        put_str(&mut b, s.matched_field, NAME_CAP);
        put_str(&mut b, &s.matched_value, VALUE_CAP);
        match &s.user {
            None => b.push(0),
            Some(u) => {
                b.push(1);
                put_str(&mut b, u, NAME_CAP);
            }
        }
        put_str(&mut b, &s.origin.file, NAME_CAP);
        b.extend_from_slice(&s.origin.line.to_le_bytes());
        b.extend_from_slice(&s.origin.offset.to_le_bytes());
        put_str(&mut b, s.origin.format, NAME_CAP);
        let raw = &s.raw[..s.raw.len().min(RAW_CAP + 1)];
        b.extend_from_slice(&(raw.len() as u16).to_le_bytes());
        b.extend_from_slice(raw);
        b
    }

    /// Read one sighting message; see [`WireError`] for what is refused.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader { b: bytes, at: 0 };
        let k = r.header()?;
        if k != SIGHTING_KIND {
            return Err(WireError::Kind(k));
        }
        let layout = r.u8("the sighting layout")?;
        if layout != SIGHTING_LAYOUT {
            return Err(WireError::SightingLayout(layout));
        }
        let producer = u64::from_le_bytes(r.array("the producer")?);
        let at = r.at;
        let flags = r.u8("the flags")?;
        if flags > 3 {
            return Err(WireError::Value {
                what: "the flags",
                at,
            });
        }
        let time = r.time("the time")?;
        let indicator = u32::from_le_bytes(r.array("the indicator")?);
        let feed = r.str("the feed")?;
        let value = r.str("the indicator value")?;
        let n = u16::from_le_bytes(r.array("the row count")?);
        let mut rows = Vec::with_capacity(usize::from(n).min(64));
        for _ in 0..n {
            let id = u32::from_le_bytes(r.array("a row id")?);
            let from = r.time("a row's start")?;
            let until = r.time("a row's end")?;
            rows.push(Row {
                id,
                window: ValidityWindow { from, until },
            });
        }
        let peer = r.ip("the peer")?;
        let src_ip = r.ip("the source")?;
        let dst_ip = r.ip("the destination")?;
        let at = r.at;
        let direction =
            *DIRECTIONS
                .get(usize::from(r.u8("the direction")?))
                .ok_or(WireError::Value {
                    what: "the direction",
                    at,
                })?;
        let at = r.at;
        let outcome =
            *Outcome::ALL
                .get(usize::from(r.u8("the outcome")?))
                .ok_or(WireError::Value {
                    what: "the outcome",
                    at,
                })?;
        let bytes_to_indicator = match r.opt("the bytes to the indicator")? {
            false => None,
            true => Some(u64::from_le_bytes(r.array("the bytes to the indicator")?)),
        };
        let matched_field = intern(&r.str("the matched field")?);
        let matched_value = r.str("the matched value")?;
        let user = match r.opt("the account")? {
            false => None,
            true => Some(r.str("the account")?),
        };
        let file = r.str("the evidence file")?;
        let line = u64::from_le_bytes(r.array("the evidence line")?);
        let offset = u64::from_le_bytes(r.array("the evidence offset")?);
        let format = intern(&r.str("the evidence format")?);
        let at = r.at;
        let len = u16::from_le_bytes(r.array("the raw record")?);
        if usize::from(len) > RAW_CAP + 1 {
            return Err(WireError::Value {
                what: "the raw record's length",
                at,
            });
        }
        let raw = r.take(usize::from(len), "the raw record")?.to_vec();
        if r.at != bytes.len() {
            return Err(WireError::Trailing(bytes.len() - r.at));
        }
        Ok(Self {
            producer,
            feed,
            value,
            sighting: OwnedSighting {
                indicator,
                rows,
                in_window: flags & 1 != 0,
                peer,
                src_ip,
                dst_ip,
                direction,
                matched_field,
                matched_value,
                time,
                origin: Origin {
                    file: Arc::from(file.as_str()),
                    line,
                    offset,
                    format,
                },
                raw,
                context: flags & 2 != 0,
                outcome,
                bytes_to_indicator,
                user,
            },
        })
    }
}

/// `s` cut to at most `cap` bytes at a character boundary.
pub(crate) fn cut(s: &str, cap: usize) -> &str {
    if s.len() <= cap {
        return s;
    }
    let mut end = cap;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl WireNode {
    pub(crate) fn of(id: NodeId, t: &Tables) -> Self {
        if id == NONE {
            return Self::None;
        }
        match t.ip(id) {
            Some(ip) => Self::Addr(ip),
            None if id & NAMED_SOURCE != 0 => {
                Self::Host(t.name((id & !NAMED_SOURCE) as u32).to_string())
            }
            None => Self::None,
        }
    }

    pub(crate) fn id(&self, t: &mut Tables) -> NodeId {
        match self {
            Self::None => NONE,
            Self::Addr(ip) => t.ip_id(*ip),
            Self::Host(h) => t.host_id(h),
        }
    }
}

pub(crate) fn name_id(t: &mut Tables, s: &str) -> u32 {
    if s.is_empty() {
        0
    } else {
        t.names.intern(&Box::from(s))
    }
}

impl WireObservation {
    /// Resolve `o` against the tables it refers to.
    pub fn from_obs(o: &Obs, t: &Tables, producer: u64, evidence: WireEvidence) -> Self {
        let (account, value) = if is_account_kind(o.kind) {
            (t.name(o.aux as u32).to_string(), 0)
        } else {
            (String::new(), o.aux)
        };
        Self {
            producer,
            kind: o.kind,
            flags: o.flags,
            time: o.time,
            src: WireNode::of(o.src, t),
            dst: WireNode::of(o.dst, t),
            dst_port: o.dst_port,
            service: t.service(o.svc).to_string(),
            account,
            value,
            evidence,
        }
    }

    /// The observation in `t`'s ids (interning what is new), with
    /// `evidence` as its (input, line) reference.
    pub fn to_obs(&self, t: &mut Tables, evidence: u64) -> Obs {
        let svc = t.service_id(Some(&self.service));
        let aux = if is_account_kind(self.kind) {
            u64::from(name_id(t, &self.account))
        } else {
            self.value
        };
        Obs {
            time: self.time,
            aux,
            evidence,
            src: self.src.id(t),
            dst: self.dst.id(t),
            dst_port: self.dst_port,
            svc,
            kind: self.kind,
            flags: self.flags,
        }
    }

    /// The message key: the source's /24 (IPv4, and IPv4-mapped IPv6) or
    /// /64 (IPv6), or `host NAME`, so that all of a source's observations
    /// land in one partition, and so do its neighbours'.
    ///
    /// Why the prefix and not the address: `success_after_failures` also
    /// judges a login against the failures of the source's /24 (a relay
    /// pool that guesses from one address and logs in from the next), the
    /// one per-source detector whose state spans sources. Keyed by
    /// address, a success and its neighbours' failures met in one stage-2
    /// worker only by chance (the scaling benchmark missed one such
    /// finding of 4,812). A hunt's replay splits its partitions by the
    /// same prefix (`Part::of`).
    pub fn key(&self) -> String {
        match &self.src {
            WireNode::Addr(ip) => {
                // An IPv4-mapped address is its IPv4 /24, as for the detector.
                orbwatch_detect::behaviour::success_after_failures::cluster_name(ip.to_canonical())
            }
            WireNode::Host(h) => format!("host {h}"),
            WireNode::None => String::new(),
        }
    }

    /// The message bytes (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(64 + self.evidence.raw.len().min(RAW_CAP));
        b.extend_from_slice(&MAGIC);
        b.push(VERSION);
        b.push(self.kind as u8);
        b.push(self.flags);
        b.extend_from_slice(&self.time.to_le_bytes());
        b.extend_from_slice(&self.producer.to_le_bytes());
        put_node(&mut b, &self.src);
        put_node(&mut b, &self.dst);
        b.extend_from_slice(&self.dst_port.to_le_bytes());
        put_str(&mut b, &self.service, NAME_CAP);
        if is_account_kind(self.kind) {
            put_str(&mut b, &self.account, NAME_CAP);
        } else {
            b.extend_from_slice(&self.value.to_le_bytes());
        }
        let e = &self.evidence;
        put_str(&mut b, &e.origin, NAME_CAP);
        put_str(&mut b, &e.stream, NAME_CAP);
        put_str(&mut b, &e.format, NAME_CAP);
        b.extend_from_slice(&e.number.to_le_bytes());
        b.extend_from_slice(&e.offset.to_le_bytes());
        put_str(&mut b, &e.raw, RAW_CAP);
        b
    }

    /// Read one message; see [`WireError`] for what is refused.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader { b: bytes, at: 0 };
        let k = r.header()?;
        let kind = ObsKind::from_u8(k).ok_or(WireError::Kind(k))?;
        let flags = r.u8("the flags")?;
        let time = i64::from_le_bytes(r.array("the time")?);
        let producer = u64::from_le_bytes(r.array("the producer")?);
        let src = r.node("the source")?;
        let dst = r.node("the destination")?;
        let dst_port = u16::from_le_bytes(r.array("the port")?);
        let service = r.str("the service")?;
        let (account, value) = if is_account_kind(kind) {
            (r.str("the account")?, 0)
        } else {
            (String::new(), u64::from_le_bytes(r.array("the value")?))
        };
        let origin = r.str("the origin")?;
        let stream = r.str("the stream")?;
        let format = r.str("the format")?;
        let number = u64::from_le_bytes(r.array("the record number")?);
        let offset = u64::from_le_bytes(r.array("the record offset")?);
        let raw = r.str("the raw record")?;
        if r.at != bytes.len() {
            return Err(WireError::Trailing(bytes.len() - r.at));
        }
        Ok(Self {
            producer,
            kind,
            flags,
            time,
            src,
            dst,
            dst_port,
            service,
            account,
            value,
            evidence: WireEvidence {
                origin,
                stream,
                format,
                number,
                offset,
                raw,
            },
        })
    }
}

pub(crate) fn put_str(b: &mut Vec<u8>, s: &str, cap: usize) {
    let s = cut(s, cap.min(usize::from(u16::MAX)));
    b.extend_from_slice(&(s.len() as u16).to_le_bytes());
    b.extend_from_slice(s.as_bytes());
}

pub(crate) fn put_node(b: &mut Vec<u8>, n: &WireNode) {
    match n {
        WireNode::None => b.push(0),
        WireNode::Addr(IpAddr::V4(a)) => {
            b.push(4);
            b.extend_from_slice(&a.octets());
        }
        WireNode::Addr(IpAddr::V6(a)) => {
            b.push(6);
            b.extend_from_slice(&a.octets());
        }
        WireNode::Host(h) => {
            b.push(1);
            put_str(b, h, NAME_CAP);
        }
    }
}

pub(crate) struct Reader<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) at: usize,
}

impl<'a> Reader<'a> {
    /// The magic and version every observations-topic message opens with
    /// (observations, sightings, watermarks), then its kind byte.
    fn header(&mut self) -> Result<u8, WireError> {
        let magic = self.take(2, "the magic")?;
        if magic != MAGIC {
            return Err(WireError::Magic(magic.to_vec()));
        }
        let version = self.u8("the version")?;
        if version != VERSION {
            return Err(WireError::Version(version));
        }
        self.u8("the kind")
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let Some(end) = end else {
            return Err(WireError::Short {
                what,
                len: self.b.len(),
            });
        };
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], WireError> {
        let s = self.take(N, what)?;
        let mut a = [0; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.take(1, what)?[0])
    }

    pub(crate) fn str(&mut self, what: &'static str) -> Result<String, WireError> {
        let len = u16::from_le_bytes(self.array(what)?);
        let at = self.at;
        let s = self.take(usize::from(len), what)?;
        std::str::from_utf8(s)
            .map(str::to_string)
            .map_err(|_| WireError::Utf8 { what, at })
    }

    /// An optional value's tag: 0 none, 1 present.
    fn opt(&mut self, what: &'static str) -> Result<bool, WireError> {
        let at = self.at;
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(WireError::Value { what, at }),
        }
    }

    fn time(&mut self, what: &'static str) -> Result<Option<Timestamp>, WireError> {
        let at = self.at;
        if !self.opt(what)? {
            return Ok(None);
        }
        let secs = i64::from_le_bytes(self.array(what)?);
        let nanos = i32::from_le_bytes(self.array(what)?);
        Timestamp::new(secs, nanos)
            .map(Some)
            .map_err(|_| WireError::Value { what, at })
    }

    /// An address or none (a named host is refused).
    fn ip(&mut self, what: &'static str) -> Result<Option<IpAddr>, WireError> {
        let at = self.at;
        match self.node(what)? {
            WireNode::None => Ok(None),
            WireNode::Addr(ip) => Ok(Some(ip)),
            WireNode::Host(_) => Err(WireError::NodeTag { tag: 1, at }),
        }
    }

    pub(crate) fn node(&mut self, what: &'static str) -> Result<WireNode, WireError> {
        let at = self.at;
        Ok(match self.u8(what)? {
            0 => WireNode::None,
            4 => WireNode::Addr(IpAddr::V4(Ipv4Addr::from(self.array::<4>(what)?))),
            6 => WireNode::Addr(IpAddr::V6(Ipv6Addr::from(self.array::<16>(what)?))),
            1 => WireNode::Host(self.str(what)?),
            tag => return Err(WireError::NodeTag { tag, at }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> WireObservation {
        WireObservation {
            producer: 0x1234_5678_9abc_def0,
            kind: ObsKind::AuthFailure,
            flags: 1,
            time: 1_622_714_400_000,
            src: WireNode::Addr("203.0.113.7".parse().unwrap()),
            dst: WireNode::Addr("2001:db8::1".parse().unwrap()),
            dst_port: 22,
            service: "sshd".into(),
            account: "admin3".into(),
            value: 0,
            evidence: WireEvidence {
                origin: "kafka:raw.logs:2".into(),
                stream: "kafka raw.logs/2 key gw2".into(),
                format: "syslog".into(),
                number: 101,
                offset: 100,
                raw: "Jun  3 10:00:00 gw2 sshd[4000]: Failed password for invalid user admin3 from 203.0.113.7 port 40000 ssh2".into(),
            },
        }
    }

    #[test]
    fn round_trips_through_bytes_and_tables() {
        let w = sample();
        let bytes = w.encode();
        assert_eq!(&bytes[..3], b"oW\x01");
        // The layout of version 1, byte for byte: a change of size means
        // a change of format (and of VERSION).
        assert_eq!(bytes.len(), 233);
        assert_eq!(WireObservation::decode(&bytes), Ok(w.clone()));
        // Through another process's tables and back: the same names.
        let mut t = Tables::new();
        t.names.intern(&Box::from("something else first"));
        let o = w.to_obs(&mut t, 7);
        assert_eq!(o.kind, ObsKind::AuthFailure);
        assert_eq!(t.name(o.aux as u32), "admin3");
        assert_eq!(t.service(o.svc), "sshd");
        assert_eq!(t.source_label(o.src), "203.0.113.7");
        let back = WireObservation::from_obs(&o, &t, w.producer, w.evidence.clone());
        assert_eq!(back, w);
        // A named host and a non-auth kind.
        let mut n = sample();
        n.kind = ObsKind::Outbound;
        n.src = WireNode::Host("dc01".into());
        n.dst = WireNode::None;
        n.value = 123_456_789;
        n.account.clear();
        assert_eq!(n.key(), "host dc01");
        // Sources of one /24 (or /64) share a key: one partition.
        let keyed = |ip: &str| {
            let mut m = sample();
            m.src = WireNode::Addr(ip.parse().expect("ip"));
            m.key()
        };
        assert_eq!(keyed("218.125.180.231"), "218.125.180.0/24");
        assert_eq!(keyed("218.125.180.46"), keyed("218.125.180.231"));
        assert_eq!(keyed("::ffff:218.125.180.46"), "218.125.180.0/24");
        assert_ne!(keyed("218.125.181.46"), keyed("218.125.180.46"));
        assert_eq!(keyed("2001:db8:1:2::7"), keyed("2001:db8:1:2:ffff::1"));
        assert_ne!(keyed("2001:db8:1:3::7"), keyed("2001:db8:1:2::7"));
        let o = n.to_obs(&mut t, 1);
        assert_eq!(t.source_label(o.src), "host dc01");
        assert_eq!(o.aux, 123_456_789);
        assert_eq!(WireObservation::decode(&n.encode()), Ok(n));
    }

    fn sample_sighting() -> WireSighting {
        let raw = b"Jun  3 10:00:00 gw2 sshd[4000]: Failed password for invalid user admin3 from 203.0.113.7 port 40000 ssh2";
        let t: Timestamp = "2021-06-03T10:00:00.123456789Z".parse().unwrap();
        WireSighting {
            producer: 0x0102_0304_0506_0708,
            feed: "CERTFR-2021-IOC-003-IOC.csv".into(),
            value: "203.0.113.7".into(),
            sighting: OwnedSighting {
                indicator: 17,
                rows: vec![
                    Row {
                        id: 17,
                        window: ValidityWindow {
                            from: Some("2021-01-01T00:00:00Z".parse().unwrap()),
                            until: None,
                        },
                    },
                    Row {
                        id: 40,
                        window: ValidityWindow {
                            from: None,
                            until: Some("2022-01-01T00:00:00.5Z".parse().unwrap()),
                        },
                    },
                ],
                in_window: true,
                peer: Some("2001:db8::1".parse().unwrap()),
                src_ip: Some("203.0.113.7".parse().unwrap()),
                dst_ip: None,
                direction: Direction::Inbound,
                matched_field: "src_ip",
                matched_value: "203.0.113.7".into(),
                time: Some(t),
                origin: Origin {
                    file: Arc::from("kafka raw.logs/2 key gw2"),
                    line: 101,
                    offset: 100,
                    format: "syslog",
                },
                raw: raw.to_vec(),
                context: false,
                outcome: Outcome::AuthFailure,
                bytes_to_indicator: Some(1234),
                user: Some("admin3".into()),
            },
        }
    }

    #[test]
    fn sightings_round_trip_with_their_nanoseconds_and_rows() {
        let w = sample_sighting();
        let bytes = w.encode();
        assert_eq!(&bytes[..5], b"oW\x01\xfe\x01");
        // The layout, byte for byte: a change of size means a change of
        // format (and of SIGHTING_LAYOUT). Two rows, an IPv6 peer, the
        // 105-byte line.
        assert_eq!(bytes.len(), 331);
        assert_eq!(WireSighting::decode(&bytes), Ok(w.clone()));
        assert_eq!(
            WireMessage::decode(&bytes),
            Ok(WireMessage::Sighting(Box::new(w.clone())))
        );
        let m = WireMessage::Sighting(Box::new(w.clone()));
        assert_eq!(m.encode(), bytes);
        assert_eq!(
            m.key(),
            "2001:db8:0:0::/64",
            "keyed by the finding's peer's /64"
        );
        // A peer's sightings and its own observations share a partition
        // (the IPv4-mapped form too).
        for peer in ["203.0.113.7", "::ffff:203.0.113.7", "2001:db8::1"] {
            let mut s = sample_sighting();
            s.sighting.peer = Some(peer.parse().unwrap());
            let mut o = sample();
            o.src = WireNode::Addr(peer.parse().unwrap());
            assert_eq!(s.key(), o.key(), "{peer}");
        }
        assert_eq!(m.time(), Some(1_622_714_400_123));
        // Without a peer, keyed by the indicator; untimed, no user, no
        // bytes, a context record of another outcome and direction.
        let mut n = sample_sighting();
        n.sighting.peer = None;
        n.sighting.time = None;
        n.sighting.user = None;
        n.sighting.bytes_to_indicator = None;
        n.sighting.context = true;
        n.sighting.in_window = false;
        n.sighting.outcome = Outcome::Unknown;
        n.sighting.direction = Direction::Unknown;
        n.sighting.rows.clear();
        n.sighting.matched_field = "a field this build never saw";
        let m = WireMessage::Sighting(Box::new(n.clone()));
        assert_eq!(m.key(), "indicator CERTFR-2021-IOC-003-IOC.csv 203.0.113.7");
        assert_eq!(m.time(), None);
        assert_eq!(WireMessage::decode(&m.encode()), Ok(m));
    }

    #[test]
    fn a_sightings_raw_record_keeps_one_byte_past_the_cap() {
        // The aggregator cuts evidence at RAW_CAP bytes and adds `…` when
        // the record was longer: one byte more tells stage 2 so.
        let mut w = sample_sighting();
        w.sighting.raw = vec![b'x'; RAW_CAP + 500];
        let d = WireSighting::decode(&w.encode()).unwrap();
        assert_eq!(d.sighting.raw.len(), RAW_CAP + 1);
        // A length past it is refused, not read.
        let mut bytes = w.encode();
        let at = bytes.len() - (RAW_CAP + 1) - 2;
        bytes[at..at + 2].copy_from_slice(&((RAW_CAP + 2) as u16).to_le_bytes());
        bytes.push(b'x');
        assert!(matches!(
            WireSighting::decode(&bytes),
            Err(WireError::Value { what, .. }) if what.contains("raw")
        ));
    }

    #[test]
    fn malformed_sightings_say_what_is_wrong() {
        let good = sample_sighting().encode();
        for n in 0..good.len() {
            assert!(
                WireMessage::decode(&good[..n]).is_err(),
                "a sighting cut at {n} bytes was accepted"
            );
        }
        let mut v = good.clone();
        v.push(0);
        assert_eq!(WireMessage::decode(&v), Err(WireError::Trailing(1)));
        // A later layout of the sighting body.
        let mut v = good.clone();
        v[4] = 2;
        assert_eq!(WireMessage::decode(&v), Err(WireError::SightingLayout(2)));
        let err = WireMessage::decode(&v).unwrap_err().to_string();
        assert!(err.contains("upgrade the stage-2 workers"), "{err}");
        // Unknown flags.
        let mut v = good.clone();
        v[13] = 0x80;
        assert!(matches!(
            WireMessage::decode(&v),
            Err(WireError::Value {
                what: "the flags",
                at: 13
            })
        ));
        // A time tag that is neither 0 nor 1.
        let mut v = good.clone();
        v[14] = 7;
        assert!(matches!(
            WireMessage::decode(&v),
            Err(WireError::Value {
                what: "the time",
                at: 14
            })
        ));
        // Nanoseconds out of range.
        let mut v = good.clone();
        v[23..27].copy_from_slice(&2_000_000_000i32.to_le_bytes());
        assert!(matches!(
            WireMessage::decode(&v),
            Err(WireError::Value {
                what: "the time",
                ..
            })
        ));
        // Observations still read, and a watermark too, beside sightings.
        assert!(matches!(
            WireMessage::decode(&sample().encode()),
            Ok(WireMessage::Observation(_))
        ));
    }

    #[test]
    fn long_fields_are_cut_at_a_character_boundary() {
        let mut w = sample();
        w.evidence.raw = "é".repeat(RAW_CAP);
        let d = WireObservation::decode(&w.encode()).unwrap();
        assert_eq!(d.evidence.raw.len(), RAW_CAP);
        assert!(d.evidence.raw.chars().all(|c| c == 'é'));
    }

    #[test]
    fn malformed_messages_say_what_is_wrong() {
        let good = sample().encode();
        assert!(matches!(
            WireObservation::decode(b"Jun  3 10:00:00 gw2 sshd"),
            Err(WireError::Magic(_))
        ));
        let mut v = good.clone();
        v[2] = 9;
        assert_eq!(WireObservation::decode(&v), Err(WireError::Version(9)));
        let mut v = good.clone();
        v[3] = 200;
        assert_eq!(WireObservation::decode(&v), Err(WireError::Kind(200)));
        for n in 0..good.len() {
            assert!(
                WireObservation::decode(&good[..n]).is_err(),
                "a message cut at {n} bytes was accepted"
            );
        }
        let mut v = good.clone();
        v.push(0);
        assert_eq!(WireObservation::decode(&v), Err(WireError::Trailing(1)));
        let mark = WireMessage::watermark(7, 1_622_714_400_000);
        assert_eq!(mark.len(), 20);
        assert_eq!(
            WireMessage::decode(&mark),
            Ok(WireMessage::Watermark {
                producer: 7,
                time: 1_622_714_400_000
            })
        );
        for n in 0..mark.len() {
            assert!(WireMessage::decode(&mark[..n]).is_err());
        }
        assert_eq!(
            WireMessage::decode(&good),
            Ok(WireMessage::Observation(Box::new(sample())))
        );
        let err = WireObservation::decode(&good[..40])
            .unwrap_err()
            .to_string();
        assert!(err.contains("message ends at byte 40"), "{err}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        /// Random bytes, and a real message with random bytes changed:
        /// never a panic; what decodes encodes to the same bytes.
        #[test]
        fn random_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
            cut in any::<usize>(),
        ) {
            if let Ok(w) = WireObservation::decode(&bytes) {
                prop_assert_eq!(w.encode(), bytes.clone());
            }
            match WireMessage::decode(&bytes) {
                Ok(WireMessage::Observation(w)) => prop_assert_eq!(w.encode(), bytes.clone()),
                Ok(WireMessage::Sighting(w)) => {
                    let again = WireMessage::decode(&w.encode());
                    prop_assert_eq!(again, Ok(WireMessage::Sighting(w)));
                }
                Ok(WireMessage::Watermark { producer, time }) => {
                    prop_assert_eq!(WireMessage::watermark(producer, time), bytes.clone())
                }
                Err(_) => {}
            }
            let mut m = sample().encode();
            for (at, b) in flips {
                let i = at % m.len();
                m[i] = b;
            }
            m.truncate(cut % (m.len() + 1));
            if let Ok(w) = WireObservation::decode(&m) {
                prop_assert_eq!(w.encode(), m);
            }
        }

        /// A real sighting with random bytes changed or cut: never a
        /// panic; what decodes reads back the same after encoding (a
        /// field name past the interned cap reads as `other`, so not
        /// always the same bytes).
        #[test]
        fn damaged_sightings_never_panic(
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
            cut in any::<usize>(),
        ) {
            let mut m = sample_sighting().encode();
            for (at, b) in flips {
                let i = at % m.len();
                m[i] = b;
            }
            m.truncate(cut % (m.len() + 1));
            if let Ok(WireMessage::Sighting(w)) = WireMessage::decode(&m) {
                let again = WireMessage::decode(&w.encode());
                prop_assert_eq!(again, Ok(WireMessage::Sighting(w)));
            }
        }
    }
}
