//! Messages of the feeds topic: one version of a feed from the store,
//! written by `orbwatch feed publish` and read by every worker, which
//! swaps its index when a complete new version has arrived.
//!
//! Why chunks: Kafka refuses messages over about 1 MB by default, and a
//! ten-million-indicator feed is about 150 MB even compressed to a tenth.
//! A version is therefore written as chunk records, each under
//! [`CHUNK_LIMIT`] bytes, followed by one head record that names the
//! chunks and their SHA-256 digests. A worker uses a version only when
//! its head has arrived and every chunk it names is there with the
//! right digest: never half a version.
//!
//! Why these keys (the topic is compacted, so Kafka keeps only the last
//! record of each key):
//!
//! ```text
//! key NAME            head of the latest version of feed NAME
//! key NAME/vV/cI      chunk I of version V of feed NAME
//! ```
//!
//! A chunk key is unique to its version, so compaction never replaces a
//! chunk of the version a head names; the head key is overwritten by
//! each new version. The publisher writes the chunks first and the head
//! last (one partition: a reader sees them in that order, and compaction
//! keeps the order of what it keeps), then tombstones (null values) the
//! chunk keys of older versions, so the compacted topic holds about one
//! version of each feed. A publish that dies half way leaves chunks with
//! no head: readers ignore them, and they keep the previous version.
//!
//! Layout (integers little-endian; `str` is a `u16` length and UTF-8):
//!
//! ```text
//! "oF" version=1 tag:u8, then by tag:
//!   1 head   name:str feed_version:i64 indicators:u64 chunks:u32
//!            sha256:[u8;32] × chunks   (digest of each chunk's payload)
//!   2 chunk  name:str feed_version:i64 index:u32 indicators:u32
//!            payload: the rest, zstd of JSON lines, one `Indicator` each
//! ```
//!
//! A version other than 1, an unknown tag, a short or over-long message,
//! bad UTF-8, a key that does not match the message, a payload that does
//! not decompress (or decompresses past [`MAX_CHUNK_RAW`] bytes) or does
//! not hold the indicators it announces is refused with a
//! [`FeedWireError`] that says what and where; never a panic.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;

use orbwatch_intel::Indicator;
use sha2::{Digest, Sha256};

/// First bytes of every message.
pub const MAGIC: [u8; 2] = *b"oF";
/// The version this build writes and reads.
pub const VERSION: u8 = 1;
/// Largest value written (compressed chunk and its header): under
/// Kafka's default `message.max.bytes` (1,048,588) with room to spare.
pub const CHUNK_LIMIT: usize = 900_000;
/// Largest decompressed chunk accepted (a bound against a hostile or
/// corrupt payload that would decompress without end).
pub const MAX_CHUNK_RAW: usize = 256 * 1024 * 1024;
/// Uncompressed JSON gathered before a chunk is compressed; JSON lines
/// of indicators compress about tenfold, so this usually gives one
/// chunk under the limit (a larger one is split in halves).
const RAW_TARGET: usize = 6 * 1024 * 1024;
/// Longest feed name.
pub const NAME_CAP: usize = 1024;

const TAG_HEAD: u8 = 1;
const TAG_CHUNK: u8 = 2;

/// Why a message of the feeds topic was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedWireError {
    #[error("not a feed message (it starts with {0:02x?}, not \"oF\")")]
    Magic(Vec<u8>),
    #[error(
        "feed message version {0}, this build reads version {VERSION} (a publisher of another orbwatch version?)"
    )]
    Version(u8),
    #[error("unknown feed message tag {0}")]
    Tag(u8),
    #[error("feed message cut short at byte {at} (reading {what})")]
    Short { at: usize, what: &'static str },
    #[error("feed message: {0}")]
    Bad(String),
}

/// The head of one published version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedHead {
    pub name: String,
    /// The store's version of the feed.
    pub version: i64,
    pub indicators: u64,
    /// SHA-256 of each chunk's payload, in order.
    pub digests: Vec<[u8; 32]>,
}

/// One chunk of a published version (its payload still compressed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedChunk {
    pub name: String,
    pub version: i64,
    pub index: u32,
    pub indicators: u32,
    pub payload: Vec<u8>,
}

/// A message of the feeds topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedMessage {
    Head(FeedHead),
    Chunk(FeedChunk),
}

/// The key of a feed's head record.
pub fn head_key(name: &str) -> String {
    name.to_string()
}

/// The key of a chunk record.
pub fn chunk_key(name: &str, version: i64, index: u32) -> String {
    format!("{name}/v{version}/c{index}")
}

/// The feed, version and index a chunk key names (`None`: a head key).
pub fn parse_chunk_key(key: &str) -> Option<(&str, i64, u32)> {
    let (rest, index) = key.rsplit_once("/c")?;
    let (name, version) = rest.rsplit_once("/v")?;
    Some((name, version.parse().ok()?, index.parse().ok()?))
}

/// Can `name` be published (its keys must not be mistaken for another
/// feed's chunk keys)?
pub fn check_name(name: &str) -> Result<(), FeedWireError> {
    if name.is_empty() || name.len() > NAME_CAP || name.contains('/') {
        return Err(FeedWireError::Bad(format!(
            "feed name {name:?} cannot be published: it must be 1 to {NAME_CAP} bytes without '/'"
        )));
    }
    Ok(())
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let s = &s.as_bytes()[..s.len().min(NAME_CAP)];
    out.extend_from_slice(&(s.len() as u16).to_le_bytes());
    out.extend_from_slice(s);
}

fn header(tag: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(tag);
    out
}

impl FeedHead {
    pub fn key(&self) -> String {
        head_key(&self.name)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = header(TAG_HEAD);
        put_str(&mut out, &self.name);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.indicators.to_le_bytes());
        out.extend_from_slice(&(self.digests.len() as u32).to_le_bytes());
        for d in &self.digests {
            out.extend_from_slice(d);
        }
        out
    }
}

impl FeedChunk {
    pub fn key(&self) -> String {
        chunk_key(&self.name, self.version, self.index)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = header(TAG_CHUNK);
        put_str(&mut out, &self.name);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.index.to_le_bytes());
        out.extend_from_slice(&self.indicators.to_le_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// The chunk's indicators, checked against the count it announces.
    pub fn indicators(&self) -> Result<Vec<Indicator>, FeedWireError> {
        // The count comes from the wire: it sizes nothing before the
        // payload has shown it (a short message announcing millions of
        // indicators asked for 6.5 GB up front; found by the
        // `wire_messages` fuzz target).
        let mut out = Vec::with_capacity((self.indicators as usize).min(1 << 16));
        self.for_each(|i| out.push(i))?;
        Ok(out)
    }

    /// Each of the chunk's indicators in turn, once the whole chunk has
    /// been read (none when it is damaged: the error says where).
    pub fn for_each(&self, f: impl FnMut(Indicator)) -> Result<(), FeedWireError> {
        let where_ = || {
            format!(
                "feed {} version {} chunk {}",
                self.name, self.version, self.index
            )
        };
        // Streamed, so memory follows what the payload really holds (the
        // bulk decoder reserved MAX_CHUNK_RAW for every chunk).
        let mut raw = Vec::new();
        let read = zstd::stream::read::Decoder::new(&self.payload[..])
            .and_then(|d| d.take(MAX_CHUNK_RAW as u64 + 1).read_to_end(&mut raw));
        if let Err(e) = read {
            return Err(FeedWireError::Bad(format!(
                "{}: the payload does not decompress: {e}",
                where_()
            )));
        }
        if raw.len() > MAX_CHUNK_RAW {
            return Err(FeedWireError::Bad(format!(
                "{}: the payload decompresses past {MAX_CHUNK_RAW} bytes",
                where_()
            )));
        }
        // At least two bytes an indicator ("{}" and a newline): the
        // announced count bounds nothing by itself.
        let mut out = Vec::with_capacity((self.indicators as usize).min(raw.len() / 2 + 1));
        for (i, line) in raw.split(|b| *b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let ind: Indicator = serde_json::from_slice(line).map_err(|e| {
                FeedWireError::Bad(format!("{}: indicator {i} is not readable: {e}", where_()))
            })?;
            out.push(ind);
        }
        if out.len() != self.indicators as usize {
            return Err(FeedWireError::Bad(format!(
                "{}: {} indicators, the chunk announces {}",
                where_(),
                out.len(),
                self.indicators
            )));
        }
        out.into_iter().for_each(f);
        Ok(())
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FeedWireError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        match end {
            Some(e) => {
                let s = &self.b[self.at..e];
                self.at = e;
                Ok(s)
            }
            None => Err(FeedWireError::Short { at: self.at, what }),
        }
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, FeedWireError> {
        Ok(u16::from_le_bytes(
            self.take(2, what)?.try_into().unwrap_or_default(),
        ))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, FeedWireError> {
        Ok(u32::from_le_bytes(
            self.take(4, what)?.try_into().unwrap_or_default(),
        ))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, FeedWireError> {
        Ok(u64::from_le_bytes(
            self.take(8, what)?.try_into().unwrap_or_default(),
        ))
    }
    fn str(&mut self, what: &'static str) -> Result<String, FeedWireError> {
        let n = self.u16(what)? as usize;
        if n > NAME_CAP {
            return Err(FeedWireError::Bad(format!(
                "{what} of {n} bytes at byte {} (at most {NAME_CAP})",
                self.at
            )));
        }
        let at = self.at;
        let s = self.take(n, what)?;
        String::from_utf8(s.to_vec())
            .map_err(|_| FeedWireError::Bad(format!("{what} at byte {at} is not UTF-8")))
    }
    fn rest(&mut self) -> &'a [u8] {
        let s = &self.b[self.at..];
        self.at = self.b.len();
        s
    }
}

impl FeedMessage {
    /// Read a message (the headers; a chunk's payload is decompressed
    /// only when its version is assembled).
    pub fn decode(b: &[u8]) -> Result<Self, FeedWireError> {
        if b.len() < 2 || b[..2] != MAGIC {
            return Err(FeedWireError::Magic(b[..b.len().min(4)].to_vec()));
        }
        let mut r = Reader { b, at: 2 };
        let version = r.take(1, "the version")?[0];
        if version != VERSION {
            return Err(FeedWireError::Version(version));
        }
        let tag = r.take(1, "the tag")?[0];
        match tag {
            TAG_HEAD => {
                let name = r.str("the feed name")?;
                let version = r.u64("the feed version")? as i64;
                let indicators = r.u64("the indicator count")?;
                let n = r.u32("the chunk count")? as usize;
                // Each digest is 32 bytes: a count past what is left is a
                // lie, refused before anything is allocated for it.
                if n > (b.len() - r.at) / 32 {
                    return Err(FeedWireError::Short {
                        at: r.at,
                        what: "the chunk digests",
                    });
                }
                let mut digests = Vec::with_capacity(n);
                for _ in 0..n {
                    let d = r.take(32, "a chunk digest")?;
                    digests.push(d.try_into().unwrap_or([0; 32]));
                }
                if r.at != b.len() {
                    return Err(FeedWireError::Bad(format!(
                        "{} bytes after the head of feed {name}",
                        b.len() - r.at
                    )));
                }
                Ok(FeedMessage::Head(FeedHead {
                    name,
                    version,
                    indicators,
                    digests,
                }))
            }
            TAG_CHUNK => {
                let name = r.str("the feed name")?;
                let version = r.u64("the feed version")? as i64;
                let index = r.u32("the chunk index")?;
                let indicators = r.u32("the indicator count")?;
                let payload = r.rest().to_vec();
                Ok(FeedMessage::Chunk(FeedChunk {
                    name,
                    version,
                    index,
                    indicators,
                    payload,
                }))
            }
            t => Err(FeedWireError::Tag(t)),
        }
    }

    /// The key this message must have on the topic.
    pub fn key(&self) -> String {
        match self {
            FeedMessage::Head(h) => h.key(),
            FeedMessage::Chunk(c) => c.key(),
        }
    }
}

/// Cuts one version of a feed into chunks as its indicators arrive (a
/// ten-million-indicator feed never sits in memory whole), and gives
/// the head last.
pub struct FeedEncoder {
    name: String,
    version: i64,
    lines: Vec<u8>,
    in_lines: u32,
    next_index: u32,
    indicators: u64,
    digests: Vec<[u8; 32]>,
    limit: usize,
}

impl FeedEncoder {
    pub fn new(name: &str, version: i64) -> Result<Self, FeedWireError> {
        check_name(name)?;
        Ok(Self {
            name: name.to_string(),
            version,
            lines: Vec::new(),
            in_lines: 0,
            next_index: 0,
            indicators: 0,
            digests: Vec::new(),
            limit: CHUNK_LIMIT,
        })
    }

    /// Chunks of at most `limit` bytes (tests use small ones).
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit.max(64);
        self
    }

    /// Add one indicator; returns the chunks that are full.
    pub fn push(&mut self, ind: &Indicator) -> Result<Vec<FeedChunk>, FeedWireError> {
        serde_json::to_writer(&mut self.lines, ind)
            .map_err(|e| FeedWireError::Bad(format!("indicator {}: {e}", ind.value)))?;
        self.lines.push(b'\n');
        self.in_lines += 1;
        self.indicators += 1;
        // A tenth of the raw size is a guess at the compressed size: past
        // the limit's raw equivalent, compress.
        if self.lines.len() >= RAW_TARGET.min(self.limit.saturating_mul(8)) {
            return self.cut();
        }
        Ok(Vec::new())
    }

    fn cut(&mut self) -> Result<Vec<FeedChunk>, FeedWireError> {
        let lines = std::mem::take(&mut self.lines);
        let n = std::mem::take(&mut self.in_lines);
        let mut out = Vec::new();
        if n > 0 {
            self.compress(&lines, n, &mut out)?;
        }
        Ok(out)
    }

    /// Compress `lines` (`n` indicators) into one chunk, or into halves
    /// when it would pass the limit.
    fn compress(
        &mut self,
        lines: &[u8],
        n: u32,
        out: &mut Vec<FeedChunk>,
    ) -> Result<(), FeedWireError> {
        let payload = zstd::bulk::compress(lines, 3)
            .map_err(|e| FeedWireError::Bad(format!("compressing a chunk: {e}")))?;
        // Header: magic, version, tag, name, version, index, count.
        let size = payload.len() + 4 + 2 + self.name.len() + 8 + 4 + 4;
        if size > self.limit {
            if n < 2 {
                return Err(FeedWireError::Bad(format!(
                    "one indicator of feed {} takes {size} bytes compressed, more than the {} a message may hold",
                    self.name, self.limit
                )));
            }
            // Split at the newline ending the middle indicator.
            let half = n / 2;
            let mut seen = 0u32;
            let mut cut = 0;
            for (i, b) in lines.iter().enumerate() {
                if *b == b'\n' {
                    seen += 1;
                    if seen == half {
                        cut = i + 1;
                        break;
                    }
                }
            }
            self.compress(&lines[..cut], half, out)?;
            return self.compress(&lines[cut..], n - half, out);
        }
        self.digests.push(Sha256::digest(&payload).into());
        out.push(FeedChunk {
            name: self.name.clone(),
            version: self.version,
            index: self.next_index,
            indicators: n,
            payload,
        });
        self.next_index += 1;
        Ok(())
    }

    /// The last chunks, and the head that names them all.
    pub fn finish(mut self) -> Result<(Vec<FeedChunk>, FeedHead), FeedWireError> {
        let chunks = self.cut()?;
        Ok((
            chunks,
            FeedHead {
                name: self.name,
                version: self.version,
                indicators: self.indicators,
                digests: self.digests,
            },
        ))
    }
}

/// A complete version of a feed, assembled from the topic: its chunks,
/// checked (digests, and every indicator readable), kept compressed.
/// Why compressed: a 10M-indicator feed is about 150 MB so, and about
/// 4 GB as `Indicator`s; it is decoded again, a chunk at a time, when
/// an index is built from it.
#[derive(Debug, Clone, PartialEq)]
pub struct AssembledFeed {
    pub name: String,
    pub version: i64,
    pub indicators: u64,
    pub chunks: Vec<FeedChunk>,
    /// [`value_hash`] of every indicator's value: what the next version
    /// is compared with (values it lists and this one does not are new).
    pub value_hashes: HashSet<u64>,
}

impl AssembledFeed {
    /// Each indicator in turn.
    pub fn for_each(&self, mut f: impl FnMut(Indicator)) -> Result<(), FeedWireError> {
        for c in &self.chunks {
            c.for_each(&mut f)?;
        }
        Ok(())
    }

    /// Every indicator (tests, small feeds).
    pub fn all(&self) -> Result<Vec<Indicator>, FeedWireError> {
        let mut out = Vec::new();
        self.for_each(|i| out.push(i))?;
        Ok(out)
    }
}

/// A 64-bit hash of an indicator's value, to compare versions without
/// keeping their values (a collision, about one in 10^12 for two 10M
/// feeds, would only leave one new value out of a re-hunt).
pub fn value_hash(v: &orbwatch_intel::IndicatorValue) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

/// What one record of the topic did to the assembly.
#[derive(Debug, Clone, PartialEq)]
pub enum Offered {
    /// Kept for later (a chunk), or nothing to do (a tombstone, an old
    /// version's record).
    Nothing,
    /// A head whose version is complete: use it.
    Complete(AssembledFeed),
    /// A head whose version cannot be assembled (a chunk missing or not
    /// the one it names): not used, the previous version stays.
    Incomplete {
        name: String,
        version: i64,
        why: String,
    },
    /// Not a feed message, or not under its key: skipped.
    Malformed(String),
}

/// Gathers the chunks read from the feeds topic and gives each feed's
/// version once its head has come and every chunk it names is there.
///
/// Memory: the compressed chunks of versions whose head has not come
/// yet; a head drops the chunks of its feed's versions up to its own.
#[derive(Default)]
pub struct FeedAssembler {
    chunks: HashMap<(String, i64), BTreeMap<u32, FeedChunk>>,
    /// The version in use of each feed.
    current: HashMap<String, i64>,
    /// Records refused (malformed, or a version that was incomplete).
    pub refused: u64,
}

impl FeedAssembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// The version in use of `name`.
    pub fn current(&self, name: &str) -> Option<i64> {
        self.current.get(name).copied()
    }

    /// Take one record of the topic (`value` `None`: a tombstone).
    pub fn offer(&mut self, key: Option<&[u8]>, value: Option<&[u8]>) -> Offered {
        let Some(value) = value else {
            return Offered::Nothing;
        };
        let msg = match FeedMessage::decode(value) {
            Ok(m) => m,
            Err(e) => {
                self.refused += 1;
                return Offered::Malformed(e.to_string());
            }
        };
        let want = msg.key();
        if key != Some(want.as_bytes()) {
            self.refused += 1;
            return Offered::Malformed(format!(
                "a feed message under the key {:?}, not {want:?} (compaction would not keep it right)",
                key.map(String::from_utf8_lossy).unwrap_or_default()
            ));
        }
        match msg {
            FeedMessage::Chunk(c) => {
                if self.current(&c.name).is_some_and(|v| c.version <= v) {
                    return Offered::Nothing;
                }
                self.chunks
                    .entry((c.name.clone(), c.version))
                    .or_default()
                    .insert(c.index, c);
                Offered::Nothing
            }
            FeedMessage::Head(h) => {
                if self.current(&h.name).is_some_and(|v| h.version <= v) {
                    return Offered::Nothing;
                }
                let got = self.chunks.remove(&(h.name.clone(), h.version));
                // Older versions' chunks will never be used now.
                self.chunks
                    .retain(|(n, v), _| !(n == &h.name && *v <= h.version));
                match assemble(&h, got.unwrap_or_default()) {
                    Ok((chunks, value_hashes)) => {
                        self.current.insert(h.name.clone(), h.version);
                        Offered::Complete(AssembledFeed {
                            name: h.name,
                            version: h.version,
                            indicators: h.indicators,
                            chunks,
                            value_hashes,
                        })
                    }
                    Err(why) => {
                        self.refused += 1;
                        Offered::Incomplete {
                            name: h.name,
                            version: h.version,
                            why,
                        }
                    }
                }
            }
        }
    }
}

type Checked = (Vec<FeedChunk>, HashSet<u64>);

fn assemble(h: &FeedHead, mut got: BTreeMap<u32, FeedChunk>) -> Result<Checked, String> {
    let mut chunks = Vec::with_capacity(h.digests.len());
    let mut hashes =
        HashSet::with_capacity(usize::try_from(h.indicators).unwrap_or(0).min(1 << 24));
    let mut count = 0u64;
    for (i, digest) in h.digests.iter().enumerate() {
        let i = i as u32;
        let Some(c) = got.remove(&i) else {
            return Err(format!(
                "chunk {i} of {} is missing (not yet written, or compacted away)",
                h.digests.len()
            ));
        };
        let d: [u8; 32] = Sha256::digest(&c.payload).into();
        if &d != digest {
            return Err(format!(
                "chunk {i} of {} is not the one the head names (its digest differs)",
                h.digests.len()
            ));
        }
        c.for_each(|ind| {
            count += 1;
            hashes.insert(value_hash(&ind.value));
        })
        .map_err(|e| e.to_string())?;
        chunks.push(c);
    }
    if count != h.indicators {
        return Err(format!(
            "{count} indicators in the chunks, the head announces {}",
            h.indicators
        ));
    }
    Ok((chunks, hashes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use orbwatch_intel::{IndicatorValue, Provenance};
    use proptest::prelude::*;

    fn ind(i: u32) -> Indicator {
        let mut x = Indicator::new(
            IndicatorValue::Ip(std::net::IpAddr::V4(std::net::Ipv4Addr::from(
                0x0a00_0000 + i,
            ))),
            Provenance {
                feed: "orb".into(),
                file: "orb.csv".into(),
                line: u64::from(i) + 1,
                record_id: i.is_multiple_of(3).then(|| format!("rec-{i}")),
            },
        );
        x.confidence = Some((i % 101) as u8);
        x.valid_from = Some(jiff::Timestamp::from_second(1_700_000_000 + i64::from(i)).unwrap());
        x.valid_until = i
            .is_multiple_of(2)
            .then(|| jiff::Timestamp::from_second(1_800_000_000).unwrap());
        x.tags.actors.push("APT-X".into());
        x.tags.tlp = Some("amber".into());
        x.description = Some(format!("router {i}"));
        x
    }

    /// Records as the publisher writes them: chunks, then the head.
    fn publish(name: &str, version: i64, n: u32, limit: usize) -> Vec<(String, Option<Vec<u8>>)> {
        let mut e = FeedEncoder::new(name, version).unwrap().with_limit(limit);
        let mut out = Vec::new();
        for i in 0..n {
            for c in e.push(&ind(i)).unwrap() {
                out.push((c.key(), Some(c.encode())));
            }
        }
        let (chunks, head) = e.finish().unwrap();
        for c in chunks {
            out.push((c.key(), Some(c.encode())));
        }
        out.push((head.key(), Some(head.encode())));
        out
    }

    fn feed_all(a: &mut FeedAssembler, recs: &[(String, Option<Vec<u8>>)]) -> Vec<Offered> {
        recs.iter()
            .map(|(k, v)| a.offer(Some(k.as_bytes()), v.as_deref()))
            .filter(|o| *o != Offered::Nothing)
            .collect()
    }

    /// Kafka's log compaction: the last record of each key stays, in its
    /// place; a tombstone removes its key (once past the delete retention).
    fn compact(recs: &[(String, Option<Vec<u8>>)]) -> Vec<(String, Option<Vec<u8>>)> {
        let mut last: HashMap<&str, usize> = HashMap::new();
        for (i, (k, _)) in recs.iter().enumerate() {
            last.insert(k, i);
        }
        recs.iter()
            .enumerate()
            .filter(|(i, (k, v))| last[k.as_str()] == *i && v.is_some())
            .map(|(_, r)| r.clone())
            .collect()
    }

    #[test]
    fn a_version_round_trips_through_many_chunks() {
        let recs = publish("orb", 7, 5000, 20_000);
        let chunks = recs.len() - 1;
        assert!(
            chunks > 3,
            "{chunks} chunks: the limit should have split it"
        );
        for (_, v) in &recs {
            assert!(v.as_ref().unwrap().len() <= 20_000);
        }
        let mut a = FeedAssembler::new();
        let got = feed_all(&mut a, &recs);
        assert_eq!(got.len(), 1);
        let Offered::Complete(f) = &got[0] else {
            panic!("{got:?}")
        };
        assert_eq!((f.name.as_str(), f.version), ("orb", 7));
        let want: Vec<Indicator> = (0..5000).map(ind).collect();
        assert_eq!(f.all().unwrap(), want);
        assert_eq!(a.current("orb"), Some(7));
        // The same version again (a re-read, a re-publish) is not news.
        assert!(feed_all(&mut a, &recs).is_empty());
    }

    /// A chunk's announced count comes from the wire: it must size
    /// nothing (the `wire_messages` fuzz target found a short message
    /// that asked for 6.5 GB up front).
    #[test]
    fn a_chunk_that_announces_billions_of_indicators_is_refused_without_reserving_them() {
        let recs = publish("orb", 3, 10, 20_000);
        let bytes = recs[0].1.clone().unwrap();
        let Ok(FeedMessage::Chunk(mut c)) = FeedMessage::decode(&bytes) else {
            panic!("a chunk")
        };
        assert_eq!(c.indicators().unwrap().len(), 10);
        c.indicators = u32::MAX;
        let e = c.indicators().unwrap_err().to_string();
        assert!(
            e.contains("10 indicators, the chunk announces 4294967295"),
            "{e}"
        );
        c.payload = b"not zstd".to_vec();
        let e = c.indicators().unwrap_err().to_string();
        assert!(e.contains("does not decompress"), "{e}");
    }

    #[test]
    fn a_missing_chunk_means_the_version_is_not_used() {
        let mut recs = publish("orb", 2, 3000, 20_000);
        let gone = recs.remove(1).0;
        let mut a = FeedAssembler::new();
        let got = feed_all(&mut a, &recs);
        match &got[..] {
            [Offered::Incomplete { name, version, why }] => {
                assert_eq!((name.as_str(), *version), ("orb", 2));
                assert!(
                    why.contains("chunk 1 of") && why.contains("missing"),
                    "{why} ({gone})"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(a.current("orb"), None);
        assert_eq!(a.refused, 1);
    }

    #[test]
    fn a_chunk_of_another_publish_is_caught_by_its_digest() {
        let mut recs = publish("orb", 3, 3000, 20_000);
        // Chunk 0 replaced by a chunk 0 of the same version with other
        // contents (a second publisher of the same version number).
        let mut other = FeedEncoder::new("orb", 3).unwrap().with_limit(20_000);
        let c = other
            .push(&ind(99_999))
            .unwrap()
            .into_iter()
            .chain(other.finish().unwrap().0)
            .next()
            .unwrap();
        recs.insert(1, (c.key(), Some(c.encode())));
        let mut a = FeedAssembler::new();
        let got = feed_all(&mut a, &recs);
        assert!(
            matches!(&got[..], [Offered::Incomplete { why, .. }] if why.contains("digest")),
            "{got:?}"
        );
    }

    #[test]
    fn compaction_keeps_the_latest_complete_version() {
        // v1, then v2 with v1's chunks tombstoned, then a v3 publish that
        // died before its head.
        let v1 = publish("orb", 1, 2000, 20_000);
        let v2 = publish("orb", 2, 2500, 20_000);
        let mut log = v1.clone();
        log.extend(v2.iter().cloned());
        for (k, _) in &v1 {
            if parse_chunk_key(k).is_some() {
                log.push((k.clone(), None));
            }
        }
        let v3 = publish("orb", 3, 2600, 20_000);
        log.extend(v3[..v3.len() - 2].iter().cloned());
        let compacted = compact(&log);
        // Only v2's chunks, its head and v3's orphans stay.
        assert!(compacted.iter().all(|(k, _)| !k.contains("/v1/")));
        for log in [&log, &compacted] {
            let mut a = FeedAssembler::new();
            let got = feed_all(&mut a, log);
            let last = got.last().unwrap();
            let Offered::Complete(f) = last else {
                panic!("{got:?}")
            };
            assert_eq!(f.version, 2);
            assert_eq!(f.all().unwrap().len(), 2500);
            assert_eq!((f.indicators, f.value_hashes.len()), (2500, 2500));
            assert_eq!(a.current("orb"), Some(2));
        }
        // Without the tombstones, the head of v2 still wins over v1's
        // chunks, which stay (compaction keeps unique keys).
        let mut log2 = v1.clone();
        log2.extend(v2.iter().cloned());
        let mut a = FeedAssembler::new();
        let got = feed_all(&mut a, &compact(&log2));
        assert!(
            matches!(&got[..], [Offered::Complete(f)] if f.version == 2),
            "{got:?}"
        );
    }

    #[test]
    fn a_record_under_the_wrong_key_is_refused() {
        let recs = publish("orb", 1, 10, 20_000);
        let mut a = FeedAssembler::new();
        let (_, v) = &recs[0];
        let got = a.offer(Some(b"other/v1/c0"), v.as_deref());
        assert!(
            matches!(got, Offered::Malformed(ref m) if m.contains("key")),
            "{got:?}"
        );
        assert_eq!(a.refused, 1);
    }

    #[test]
    fn names_with_a_slash_are_refused() {
        assert!(FeedEncoder::new("a/v1/c0", 1).is_err());
        assert_eq!(parse_chunk_key("orb/v12/c3"), Some(("orb", 12, 3)));
        assert_eq!(parse_chunk_key("orb"), None);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut a = FeedAssembler::new();
            let _ = a.offer(Some(b"x"), Some(&bytes));
            if let Ok(FeedMessage::Chunk(c)) = FeedMessage::decode(&bytes) {
                let _ = c.indicators();
            }
        }

        #[test]
        fn mutated_messages_never_panic(
            which in 0usize..6,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
            cut in any::<usize>(),
        ) {
            let recs = publish("orb", 5, 300, 4000);
            let (key, value) = &recs[which % recs.len()];
            let mut bytes = value.clone().unwrap();
            for (at, b) in edits {
                let at = at % bytes.len();
                bytes[at] = b;
            }
            if cut % 3 == 0 {
                bytes.truncate(cut % (bytes.len() + 1));
            }
            let mut a = FeedAssembler::new();
            for (k, v) in &recs[..recs.len() - 1] {
                if k != key {
                    a.offer(Some(k.as_bytes()), v.as_deref());
                }
            }
            let got = a.offer(Some(key.as_bytes()), Some(&bytes));
            let head = recs.last().unwrap();
            let last = a.offer(Some(head.0.as_bytes()), head.1.as_deref());
            // A damaged record never yields a wrong version: either it is
            // refused, or the version is complete and equal to the original.
            if let Offered::Complete(f) = last {
                prop_assert_eq!(f.all().unwrap(), (0..300).map(ind).collect::<Vec<_>>());
            }
            let _ = got;
        }
    }
}
