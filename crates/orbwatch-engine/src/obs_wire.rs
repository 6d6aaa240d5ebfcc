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
//! An sshd failure with its 105-byte line is 233 bytes (IPv6
//! destination, a 24-byte stream name). The
//! decoder never panics: anything malformed (wrong magic, unknown
//! version or kind, short, trailing bytes, bad UTF-8) is an error that
//! says what and where.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use orbwatch_detect::behaviour::observe::{NAMED_SOURCE, NONE, NodeId, Obs, ObsKind, Tables};

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

/// One message of the observations topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireMessage {
    Observation(Box<WireObservation>),
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
        WireObservation::decode(bytes).map(|w| Self::Observation(Box::new(w)))
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
}

fn is_auth(kind: ObsKind) -> bool {
    matches!(
        kind,
        ObsKind::AuthFailure | ObsKind::AuthSuccess | ObsKind::AuthAttempt
    )
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
            Self::Host(h) => NAMED_SOURCE | NodeId::from(name_id(t, h)),
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
        let (account, value) = if is_auth(o.kind) {
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
            service: t.name(u32::from(o.svc)).to_string(),
            account,
            value,
            evidence,
        }
    }

    /// The observation in `t`'s ids (interning what is new), with
    /// `evidence` as its (input, line) reference.
    pub fn to_obs(&self, t: &mut Tables, evidence: u64) -> Obs {
        let svc = name_id(t, &self.service).min(u32::from(u16::MAX)) as u16;
        let aux = if is_auth(self.kind) {
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

    /// The message key: the source address (or `host NAME`), so that all
    /// of a source's observations land in one partition.
    pub fn key(&self) -> String {
        match &self.src {
            WireNode::Addr(ip) => ip.to_string(),
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
        if is_auth(self.kind) {
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
        let magic = r.take(2, "the magic")?;
        if magic != MAGIC {
            return Err(WireError::Magic(magic.to_vec()));
        }
        let version = r.u8("the version")?;
        if version != VERSION {
            return Err(WireError::Version(version));
        }
        let k = r.u8("the kind")?;
        let kind = ObsKind::from_u8(k).ok_or(WireError::Kind(k))?;
        let flags = r.u8("the flags")?;
        let time = i64::from_le_bytes(r.array("the time")?);
        let producer = u64::from_le_bytes(r.array("the producer")?);
        let src = r.node("the source")?;
        let dst = r.node("the destination")?;
        let dst_port = u16::from_le_bytes(r.array("the port")?);
        let service = r.str("the service")?;
        let (account, value) = if is_auth(kind) {
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
        assert_eq!(t.name(u32::from(o.svc)), "sshd");
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
        let o = n.to_obs(&mut t, 1);
        assert_eq!(t.source_label(o.src), "host dc01");
        assert_eq!(o.aux, 123_456_789);
        assert_eq!(WireObservation::decode(&n.encode()), Ok(n));
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
    }
}
