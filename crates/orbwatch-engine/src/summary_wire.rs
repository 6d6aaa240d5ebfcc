//! Messages of the summaries topic: what stage 2 of a split Kafka
//! topology sends the one cross-source stage (stage 3) so that it can
//! judge distributed brute force over every partition's sources.
//!
//! The cross-source detector ([`Campaigns`](orbwatch_detect::behaviour::Campaigns))
//! reads the per-source stage's [`CrossEvent`]s and nothing else: one per
//! login attempt (its time, service, account, and whether its source is
//! a brute-forcer and tries the account for the first time) and one per
//! low-rate (source, service) record whose episode ended (its counts and
//! first accounts). They are sent as they are, resolved from the
//! sender's interned ids into names and addresses, with the sender's
//! watermark: stage 3 merges the producers' events into the one order
//! ([`CrossEvent::key`]) a single process gives them, up to the slowest
//! producer's watermark, so the campaigns, their ids and counts are the
//! ones `hunt` and `--stage all` find.
//!
//! Layout (integers little-endian; `str` and `node` as in
//! [`crate::obs_wire`]):
//!
//! ```text
//! "oS" version=2 tag:u8 producer:u64,
//!   [tags 1-3: origin partition:i32 offset:i64 index:u32 (partition -1: none)]
//!   then by tag:
//!   1 auth       time:i64 kind:u8 flags:u8 src:node service:str account:str
//!                (kind: an auth failure or success; flags: 1 brute, 2 first try)
//!   2 idle       at:i64 src:node service:str first:u32 last:u32 failures:u32
//!                days:u16 max_day_failures:u16 successes:u16 brute:u8
//!                n:u8 (≤ 3) account:str × n
//!   3 flagged    src:node   (a source with a brute-force or spray finding)
//!   4 watermark  time:i64   (nothing older will come from this producer)
//!   5 done       (the producer stopped: its partitions' end of input)
//! ```
//!
//! The origin (version 2) says where in the observations topic a stage-2
//! task raised the event: the partition, the offset of the message it was
//! handling, and the event's number among those that message raised.
//! A task rebuilt after a takeover raises the same events at the same
//! origins as the task it replaces, so stage 3 drops one whose origin is
//! not past the last it took from that partition: the previous owner
//! sent it already ([`crate::cross_stage`]). Version 1 (no origin) is
//! still read.
//!
//! A version other than 1 or 2, an unknown tag or kind, a short or over-long
//! message, more than 3 accounts or bad UTF-8 is refused with a
//! [`SummaryError`] that says what and where; never a panic.

use orbwatch_detect::behaviour::observe::{NodeId, ObsKind, Tables};
use orbwatch_detect::behaviour::{CrossEvent, IdleSummary};

use crate::obs_wire::{NAME_CAP, Reader, WireError, WireNode, name_id, put_node, put_str};

/// First bytes of every message.
pub const MAGIC: [u8; 2] = *b"oS";
/// The version this build writes (it reads 1 too).
pub const VERSION: u8 = 2;

const TAG_AUTH: u8 = 1;
const TAG_IDLE: u8 = 2;
const TAG_FLAGGED: u8 = 3;
const TAG_WATERMARK: u8 = 4;
const TAG_DONE: u8 = 5;

const FLAG_BRUTE: u8 = 1;
const FLAG_FIRST_TRY: u8 = 2;

/// A low-rate (source, service) record whose episode ended, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireIdle {
    /// Seconds since 2000 of its first and last failure.
    pub first: u32,
    pub last: u32,
    pub failures: u32,
    pub days: u16,
    pub max_day_failures: u16,
    pub successes: u16,
    pub brute: bool,
    /// Its first (up to 3) accounts, by name.
    pub accounts: Vec<String>,
}

/// What one summary says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SummaryBody {
    /// A login attempt (see [`CrossEvent::Auth`]).
    Auth {
        time: i64,
        kind: ObsKind,
        src: WireNode,
        service: String,
        account: String,
        brute: bool,
        first_try: bool,
    },
    /// See [`CrossEvent::Idle`].
    Idle {
        at: i64,
        src: WireNode,
        service: String,
        record: WireIdle,
    },
    /// A source with a brute-force or spray finding (sent at the end of
    /// input: a campaign judged then leaves it out).
    Flagged { src: WireNode },
    /// The producer sends nothing older than `time` (ms) from now on.
    Watermark { time: i64 },
    /// The producer stopped; nothing more comes from it.
    Done,
}

/// Where a stage-2 task raised an event (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    /// The observations partition.
    pub partition: i32,
    /// The offset of the message the task was handling (or had handled
    /// last, for what a tick or the end of input raised).
    pub offset: i64,
    /// The event's number among those raised since that message.
    pub index: u32,
}

/// One message of the summaries topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The stage-2 worker that sent it (random per process).
    pub producer: u64,
    /// Events (`Auth`, `Idle`, `Flagged`): where they were raised.
    pub origin: Option<Origin>,
    pub body: SummaryBody,
}

/// A message the decoder refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SummaryError {
    #[error("not an orbwatch summary (first bytes {0:02x?}, expected \"oS\")")]
    Magic(Vec<u8>),
    #[error(
        "summary format version {0} is not known to this build (it reads version {VERSION}): upgrade the stage-3 worker"
    )]
    Version(u8),
    #[error("unknown summary tag {0}")]
    Tag(u8),
    #[error("a login summary of kind {0}, not an auth failure or success")]
    Kind(u8),
    #[error("flags {0:#04x} have bits this build does not know")]
    Flags(u8),
    #[error("an idle record with {0} accounts (at most 3)")]
    Accounts(u8),
    #[error("{0}")]
    Field(#[from] WireError),
    #[error("{0} bytes after the end of the summary")]
    Trailing(usize),
    #[error(
        "origin partition {partition}, offset {offset}, number {index}: not an origin (a partition from 0, or -1, 0, 0 for none)"
    )]
    Origin {
        partition: i32,
        offset: i64,
        index: u32,
    },
}

impl Summary {
    /// The summary of a cross event, resolved against the tables its ids
    /// refer to.
    pub fn from_cross(e: &CrossEvent, t: &Tables, producer: u64) -> Self {
        let body = match *e {
            CrossEvent::Auth {
                time,
                kind,
                src,
                svc,
                user,
                brute,
                first_try,
                ..
            } => SummaryBody::Auth {
                time,
                kind,
                src: WireNode::of(src, t),
                service: t.service(svc).to_string(),
                account: t.name(user).to_string(),
                brute,
                first_try,
            },
            CrossEvent::Idle {
                at,
                src,
                svc,
                source: s,
            } => SummaryBody::Idle {
                at,
                src: WireNode::of(src, t),
                service: t.service(svc).to_string(),
                record: WireIdle {
                    first: s.first,
                    last: s.last,
                    failures: s.failures,
                    days: s.days,
                    max_day_failures: s.max_day_failures,
                    successes: s.successes,
                    brute: s.brute,
                    accounts: s.accounts[..usize::from(s.n_accounts)]
                        .iter()
                        .map(|a| t.name(*a).to_string())
                        .collect(),
                },
            },
        };
        Self {
            producer,
            origin: None,
            body,
        }
    }

    /// A flagged source.
    pub fn flagged(src: NodeId, t: &Tables, producer: u64) -> Self {
        Self {
            producer,
            origin: None,
            body: SummaryBody::Flagged {
                src: WireNode::of(src, t),
            },
        }
    }

    /// The cross event in `t`'s ids (interning what is new); `evidence`
    /// orders the logins of one millisecond (their order there changes
    /// no campaign). `None` for the messages that are not events.
    pub fn to_cross(&self, t: &mut Tables, evidence: u64) -> Option<CrossEvent> {
        let svc = |t: &mut Tables, s: &str| t.service_id(Some(s));
        match &self.body {
            SummaryBody::Auth {
                time,
                kind,
                src,
                service,
                account,
                brute,
                first_try,
            } => Some(CrossEvent::Auth {
                time: *time,
                evidence,
                kind: *kind,
                src: src.id(t),
                svc: svc(t, service),
                user: name_id(t, account),
                brute: *brute,
                first_try: *first_try,
            }),
            SummaryBody::Idle {
                at,
                src,
                service,
                record,
            } => {
                let mut accounts = [0u32; 3];
                for (slot, a) in accounts.iter_mut().zip(&record.accounts) {
                    *slot = name_id(t, a);
                }
                let s = IdleSummary {
                    first: record.first,
                    last: record.last,
                    failures: record.failures,
                    days: record.days,
                    max_day_failures: record.max_day_failures,
                    successes: record.successes,
                    accounts,
                    n_accounts: record.accounts.len().min(3) as u8,
                    brute: record.brute,
                };
                Some(CrossEvent::Idle {
                    at: *at,
                    src: src.id(t),
                    svc: svc(t, service),
                    source: s,
                })
            }
            _ => None,
        }
    }

    /// The message bytes (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(48);
        b.extend_from_slice(&MAGIC);
        b.push(VERSION);
        let tag = match self.body {
            SummaryBody::Auth { .. } => TAG_AUTH,
            SummaryBody::Idle { .. } => TAG_IDLE,
            SummaryBody::Flagged { .. } => TAG_FLAGGED,
            SummaryBody::Watermark { .. } => TAG_WATERMARK,
            SummaryBody::Done => TAG_DONE,
        };
        b.push(tag);
        b.extend_from_slice(&self.producer.to_le_bytes());
        if matches!(tag, TAG_AUTH | TAG_IDLE | TAG_FLAGGED) {
            let o = self.origin.unwrap_or(Origin {
                partition: -1,
                offset: 0,
                index: 0,
            });
            b.extend_from_slice(&o.partition.to_le_bytes());
            b.extend_from_slice(&o.offset.to_le_bytes());
            b.extend_from_slice(&o.index.to_le_bytes());
        }
        match &self.body {
            SummaryBody::Auth {
                time,
                kind,
                src,
                service,
                account,
                brute,
                first_try,
            } => {
                b.extend_from_slice(&time.to_le_bytes());
                b.push(*kind as u8);
                let flags = if *brute { FLAG_BRUTE } else { 0 }
                    | if *first_try { FLAG_FIRST_TRY } else { 0 };
                b.push(flags);
                put_node(&mut b, src);
                put_str(&mut b, service, NAME_CAP);
                put_str(&mut b, account, NAME_CAP);
            }
            SummaryBody::Idle {
                at,
                src,
                service,
                record: r,
            } => {
                b.extend_from_slice(&at.to_le_bytes());
                put_node(&mut b, src);
                put_str(&mut b, service, NAME_CAP);
                b.extend_from_slice(&r.first.to_le_bytes());
                b.extend_from_slice(&r.last.to_le_bytes());
                b.extend_from_slice(&r.failures.to_le_bytes());
                b.extend_from_slice(&r.days.to_le_bytes());
                b.extend_from_slice(&r.max_day_failures.to_le_bytes());
                b.extend_from_slice(&r.successes.to_le_bytes());
                b.push(u8::from(r.brute));
                let n = r.accounts.len().min(3);
                b.push(n as u8);
                for a in &r.accounts[..n] {
                    put_str(&mut b, a, NAME_CAP);
                }
            }
            SummaryBody::Flagged { src } => put_node(&mut b, src),
            SummaryBody::Watermark { time } => b.extend_from_slice(&time.to_le_bytes()),
            SummaryBody::Done => {}
        }
        b
    }

    /// The bytes of a watermark message.
    pub fn watermark(producer: u64, time: i64) -> Vec<u8> {
        Self {
            producer,
            origin: None,
            body: SummaryBody::Watermark { time },
        }
        .encode()
    }

    /// Read one message; see [`SummaryError`] for what is refused.
    pub fn decode(bytes: &[u8]) -> Result<Self, SummaryError> {
        let mut r = Reader { b: bytes, at: 0 };
        let magic = r.take(2, "the magic")?;
        if magic != MAGIC {
            return Err(SummaryError::Magic(magic.to_vec()));
        }
        let version = r.u8("the version")?;
        if version != VERSION && version != 1 {
            return Err(SummaryError::Version(version));
        }
        let tag = r.u8("the tag")?;
        let producer = u64::from_le_bytes(r.array("the producer")?);
        let mut origin = None;
        if version >= 2 && matches!(tag, TAG_AUTH | TAG_IDLE | TAG_FLAGGED) {
            let partition = i32::from_le_bytes(r.array("the origin's partition")?);
            let offset = i64::from_le_bytes(r.array("the origin's offset")?);
            let index = u32::from_le_bytes(r.array("the origin's number")?);
            match (partition, offset, index) {
                (-1, 0, 0) => {}
                (0.., _, _) => {
                    origin = Some(Origin {
                        partition,
                        offset,
                        index,
                    })
                }
                _ => {
                    return Err(SummaryError::Origin {
                        partition,
                        offset,
                        index,
                    });
                }
            }
        }
        let body = match tag {
            TAG_AUTH => {
                let time = i64::from_le_bytes(r.array("the time")?);
                let k = r.u8("the kind")?;
                let kind = match ObsKind::from_u8(k) {
                    Some(k @ (ObsKind::AuthFailure | ObsKind::AuthSuccess)) => k,
                    _ => return Err(SummaryError::Kind(k)),
                };
                let flags = r.u8("the flags")?;
                if flags & !(FLAG_BRUTE | FLAG_FIRST_TRY) != 0 {
                    return Err(SummaryError::Flags(flags));
                }
                SummaryBody::Auth {
                    time,
                    kind,
                    src: r.node("the source")?,
                    service: r.str("the service")?,
                    account: r.str("the account")?,
                    brute: flags & FLAG_BRUTE != 0,
                    first_try: flags & FLAG_FIRST_TRY != 0,
                }
            }
            TAG_IDLE => {
                let at = i64::from_le_bytes(r.array("the time")?);
                let src = r.node("the source")?;
                let service = r.str("the service")?;
                let first = u32::from_le_bytes(r.array("the first failure")?);
                let last = u32::from_le_bytes(r.array("the last failure")?);
                let failures = u32::from_le_bytes(r.array("the failures")?);
                let days = u16::from_le_bytes(r.array("the days")?);
                let max_day_failures = u16::from_le_bytes(r.array("the failures a day")?);
                let successes = u16::from_le_bytes(r.array("the successes")?);
                let brute = match r.u8("the brute-force flag")? {
                    0 => false,
                    1 => true,
                    f => return Err(SummaryError::Flags(f)),
                };
                let n = r.u8("the number of accounts")?;
                if n > 3 {
                    return Err(SummaryError::Accounts(n));
                }
                let mut accounts = Vec::with_capacity(usize::from(n));
                for _ in 0..n {
                    accounts.push(r.str("an account")?);
                }
                SummaryBody::Idle {
                    at,
                    src,
                    service,
                    record: WireIdle {
                        first,
                        last,
                        failures,
                        days,
                        max_day_failures,
                        successes,
                        brute,
                        accounts,
                    },
                }
            }
            TAG_FLAGGED => SummaryBody::Flagged {
                src: r.node("the source")?,
            },
            TAG_WATERMARK => SummaryBody::Watermark {
                time: i64::from_le_bytes(r.array("the time")?),
            },
            TAG_DONE => SummaryBody::Done,
            t => return Err(SummaryError::Tag(t)),
        };
        if r.at != bytes.len() {
            return Err(SummaryError::Trailing(bytes.len() - r.at));
        }
        Ok(Self {
            producer,
            origin,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::IpAddr;

    fn ip(s: &str) -> WireNode {
        WireNode::Addr(s.parse::<IpAddr>().unwrap())
    }

    fn samples() -> Vec<Summary> {
        let p = 0x0123_4567_89ab_cdef;
        vec![
            Summary {
                producer: p,
                origin: Some(Origin {
                    partition: 3,
                    offset: 123_456,
                    index: 2,
                }),
                body: SummaryBody::Auth {
                    time: 1_622_714_400_123,
                    kind: ObsKind::AuthFailure,
                    src: ip("203.0.113.7"),
                    service: "ssh".into(),
                    account: "admin".into(),
                    brute: false,
                    first_try: true,
                },
            },
            Summary {
                producer: p,
                origin: Some(Origin {
                    partition: 0,
                    offset: 0,
                    index: 0,
                }),
                body: SummaryBody::Idle {
                    at: 1_623_924_000_000,
                    src: ip("2001:db8::1"),
                    service: "ssh".into(),
                    record: WireIdle {
                        first: 676_000_000,
                        last: 676_086_400,
                        failures: 4,
                        days: 2,
                        max_day_failures: 2,
                        successes: 0,
                        brute: false,
                        accounts: vec!["alice".into(), "bob".into(), "carol".into()],
                    },
                },
            },
            Summary {
                producer: p,
                origin: None,
                body: SummaryBody::Flagged {
                    src: WireNode::Host("gw2".into()),
                },
            },
            Summary {
                producer: p,
                origin: None,
                body: SummaryBody::Watermark { time: i64::MIN },
            },
            Summary {
                producer: p,
                origin: None,
                body: SummaryBody::Done,
            },
        ]
    }

    #[test]
    fn round_trips_through_bytes_and_tables() {
        for s in samples() {
            assert_eq!(Summary::decode(&s.encode()), Ok(s.clone()));
        }
        // Through the receiver's tables and back: the same names.
        let mut t = Tables::new();
        for s in samples() {
            if let Some(e) = s.to_cross(&mut t, 0) {
                let back = Summary {
                    origin: s.origin,
                    ..Summary::from_cross(&e, &t, s.producer)
                };
                assert_eq!(back, s);
            }
        }
        assert_eq!(Summary::watermark(7, 42).len(), 2 + 1 + 1 + 8 + 8);
    }

    #[test]
    fn malformed_summaries_are_refused_with_what_is_wrong() {
        assert!(matches!(
            Summary::decode(b"Jun  3 10:00:00 gw2 sshd"),
            Err(SummaryError::Magic(_))
        ));
        // An observation of the observations topic is not a summary.
        assert!(matches!(
            Summary::decode(&crate::obs_wire::WireMessage::watermark(1, 2)),
            Err(SummaryError::Magic(_))
        ));
        for s in samples() {
            let good = s.encode();
            let mut v = good.clone();
            v[2] = 3;
            assert_eq!(Summary::decode(&v), Err(SummaryError::Version(3)));
            let mut v = good.clone();
            v[3] = 9;
            assert_eq!(Summary::decode(&v), Err(SummaryError::Tag(9)));
            for n in 0..good.len() {
                assert!(
                    Summary::decode(&good[..n]).is_err(),
                    "{:?} cut at {n} bytes was accepted",
                    s.body
                );
            }
            let mut v = good.clone();
            v.push(0);
            assert_eq!(Summary::decode(&v), Err(SummaryError::Trailing(1)));
        }
        let auth = samples()[0].encode();
        let mut v = auth.clone();
        // After the header (12 bytes), the origin (16) and the time (8).
        v[36] = ObsKind::Probe as u8;
        assert_eq!(
            Summary::decode(&v),
            Err(SummaryError::Kind(ObsKind::Probe as u8))
        );
        let idle = samples()[1].encode();
        // The account count sits before the three accounts (2 + 5 + 3 + 5 bytes).
        let at = idle.len() - (2 + 5) - (2 + 3) - (2 + 5) - 1;
        let mut v = idle.clone();
        assert_eq!(v[at], 3);
        v[at] = 4;
        assert_eq!(Summary::decode(&v), Err(SummaryError::Accounts(4)));
        let mut v = idle.clone();
        let last = v.len() - 1;
        v[last] = 0xff;
        let err = Summary::decode(&v).unwrap_err().to_string();
        assert!(err.contains("an account") && err.contains("UTF-8"), "{err}");
        let err = Summary::decode(&auth[..15]).unwrap_err().to_string();
        assert!(err.contains("message ends at byte 15"), "{err}");
    }

    /// What a stage-2 worker of the previous version writes: no origin.
    #[test]
    fn version_1_summaries_are_still_read_without_an_origin() {
        for s in samples() {
            let mut v = s.encode();
            v[2] = 1;
            if s.origin.is_some() || matches!(s.body, SummaryBody::Flagged { .. }) {
                v.drain(12..28);
            }
            let read = Summary::decode(&v).expect("version 1");
            assert_eq!(read.origin, None);
            assert_eq!(read.body, s.body);
        }
    }

    /// A message read, written again: the same bytes in this version, the
    /// same message from a version-1 one.
    fn written_again(bytes: &[u8], s: &Summary) -> Result<(), TestCaseError> {
        let again = s.encode();
        if bytes[2] == VERSION {
            prop_assert_eq!(&again[..], bytes);
        } else {
            let back = Summary::decode(&again);
            prop_assert_eq!(back.as_ref(), Ok(s));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        /// Random bytes, and real summaries with random bytes changed:
        /// never a panic; what decodes encodes to the same bytes (a
        /// version-1 message to the same message in this version's).
        #[test]
        fn random_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            which in 0usize..5,
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
            cut in any::<usize>(),
        ) {
            if let Ok(s) = Summary::decode(&bytes) {
                written_again(&bytes, &s)?;
            }
            let mut m = samples()[which].encode();
            for (at, b) in flips {
                let i = at % m.len();
                m[i] = b;
            }
            m.truncate(cut % (m.len() + 1));
            if let Ok(s) = Summary::decode(&m) {
                written_again(&m, &s)?;
            }
        }
    }
}
