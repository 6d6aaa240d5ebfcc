//! Snapshots of a compiled [`IocEngine`], so that a hunt with a feed of
//! millions of indicators can skip parsing and indexing it when nothing
//! changed (see `orbwatch_intel::snapshot`).

use std::io::{self, Read, Write};

use hashbrown::HashMap;
use jiff::Timestamp;
use orbwatch_intel::Index;
use orbwatch_intel::snapshot::{SnapReader, SnapWriter, inconsistent as bad};

use super::{FeedSpan, IndicatorMeta, IocEngine, name_filter};
use crate::direction::InternalNets;

/// First bytes of a snapshot file.
const MAGIC: &[u8; 8] = b"OWIXSNAP";
/// Bumped whenever the encoding or anything it holds changes.
const FORMAT: u32 = 2;

/// Every `type_name` an indicator can have (they are `&'static str`).
const TYPE_NAMES: [&str; 14] = [
    "ipv4",
    "ipv6",
    "cidr",
    "range",
    "domain",
    "url",
    "md5",
    "sha1",
    "sha256",
    "sha512",
    "cert-md5",
    "cert-sha1",
    "cert-sha256",
    "cert-sha512",
];

fn put_time<W: Write>(w: &mut SnapWriter<W>, t: Option<Timestamp>) -> io::Result<()> {
    match t {
        None => w.u8(0),
        Some(t) => {
            w.u8(1)?;
            w.i64(t.as_second())?;
            w.u32(t.subsec_nanosecond() as u32)
        }
    }
}

fn get_time<R: Read>(r: &mut SnapReader<R>) -> io::Result<Option<Timestamp>> {
    match r.u8()? {
        0 => Ok(None),
        1 => {
            let s = r.i64()?;
            let n = r.u32()?;
            let n = i32::try_from(n).map_err(|_| bad("a time"))?;
            Timestamp::new(s, n).map(Some).map_err(|_| bad("a time"))
        }
        _ => Err(bad("a time flag")),
    }
}

fn put_map<W: Write>(w: &mut SnapWriter<W>, m: &HashMap<u32, Box<str>>) -> io::Result<()> {
    let mut keys: Vec<&u32> = m.keys().collect();
    keys.sort_unstable();
    w.u64(keys.len() as u64)?;
    for k in keys {
        w.u32(*k)?;
        w.str(&m[k])?;
    }
    Ok(())
}

fn get_map<R: Read>(r: &mut SnapReader<R>) -> io::Result<HashMap<u32, Box<str>>> {
    let n = r.count(12)?;
    let mut m = HashMap::with_capacity(n);
    for _ in 0..n {
        let k = r.u32()?;
        m.insert(k, r.string()?.into_boxed_str());
    }
    Ok(m)
}

impl IocEngine {
    /// Write the compiled engine. `tag` is the caller's description of what
    /// it was built from (feed files, sizes, options), read back by
    /// [`IocEngine::read_snapshot_tag`] to tell whether the snapshot is
    /// still good. The `--internal` networks are not part of it.
    pub fn write_snapshot(&self, out: impl Write, tag: &str) -> io::Result<()> {
        let mut w = SnapWriter::new(out);
        for b in MAGIC {
            w.u8(*b)?;
        }
        w.u32(FORMAT)?;
        w.str(env!("CARGO_PKG_VERSION"))?;
        w.str(tag)?;
        w.u64(self.metas.len() as u64)?;
        for m in &self.metas {
            w.str(&m.feed)?;
            w.str(m.type_name)?;
            w.u32(m.confidence.map_or(u32::MAX, u32::from))?;
            let tags = serde_json::to_string(&m.tags).map_err(io::Error::other)?;
            w.str(&tags)?;
        }
        w.u32s(&self.rec_meta)?;
        put_map(&mut w, &self.values)?;
        put_map(&mut w, &self.record_ids)?;
        w.u64(self.feeds.len() as u64)?;
        for f in &self.feeds {
            w.str(&f.feed)?;
            w.u64(f.indicators)?;
            put_time(&mut w, f.from)?;
            put_time(&mut w, f.until)?;
            w.u8(u8::from(f.open_from) | (u8::from(f.open_until) << 1))?;
        }
        w.u64(self.name_patterns.len() as u64)?;
        for p in &self.name_patterns {
            w.str(p)?;
        }
        self.index.write_snapshot(&mut w)?;
        w.finish()?;
        Ok(())
    }

    /// Read the header of a snapshot: the `tag` it was written with, or
    /// `None` when the file is not a snapshot of this orbwatch version.
    pub fn read_snapshot_tag(r: impl Read, len: u64) -> io::Result<Option<String>> {
        let mut r = SnapReader::new(r, len);
        read_header(&mut r)
    }

    /// Read a snapshot written by [`IocEngine::write_snapshot`]. Returns
    /// the engine and the tag it was written with.
    pub fn read_snapshot(
        r: impl Read,
        len: u64,
        internal: InternalNets,
    ) -> io::Result<(IocEngine, String)> {
        let mut r = SnapReader::new(r, len);
        let tag = read_header(&mut r)?.ok_or_else(|| bad("not a snapshot of this version"))?;
        let n = r.count(20)?;
        let mut metas = Vec::with_capacity(n);
        for _ in 0..n {
            let feed = r.string()?;
            let tn = r.string()?;
            let type_name = TYPE_NAMES
                .iter()
                .find(|t| **t == tn)
                .copied()
                .ok_or_else(|| bad("an indicator type"))?;
            let confidence = match r.u32()? {
                u32::MAX => None,
                c => Some(u8::try_from(c).map_err(|_| bad("a confidence"))?),
            };
            let tags = serde_json::from_str(&r.string()?).map_err(|_| bad("tags"))?;
            metas.push(IndicatorMeta {
                feed,
                type_name,
                confidence,
                tags,
            });
        }
        let rec_meta = r.u32s()?;
        if rec_meta.iter().any(|m| *m as usize >= metas.len()) {
            return Err(bad("an indicator's metadata id"));
        }
        let values = get_map(&mut r)?;
        let record_ids = get_map(&mut r)?;
        let n = r.count(20)?;
        let mut feeds = Vec::with_capacity(n);
        for _ in 0..n {
            let feed = r.string()?;
            let indicators = r.u64()?;
            let from = get_time(&mut r)?;
            let until = get_time(&mut r)?;
            let open = r.u8()?;
            feeds.push(FeedSpan {
                feed,
                indicators,
                from,
                until,
                open_from: open & 1 != 0,
                open_until: open & 2 != 0,
            });
        }
        let n = r.count(8)?;
        let mut name_patterns = Vec::with_capacity(n);
        for _ in 0..n {
            name_patterns.push(r.string()?);
        }
        let index = Index::read_snapshot(&mut r)?;
        if r.left() != 0 {
            return Err(bad("bytes after the end"));
        }
        Ok((
            IocEngine {
                names: name_filter(&name_patterns),
                name_patterns,
                index,
                metas,
                rec_meta,
                values,
                record_ids,
                feeds,
                internal,
                feed_versions: Default::default(),
            },
            tag,
        ))
    }
}

/// Check the magic, format and version; return the tag.
fn read_header<R: Read>(r: &mut SnapReader<R>) -> io::Result<Option<String>> {
    let mut magic = [0u8; 8];
    for b in &mut magic {
        *b = match r.u8() {
            Ok(b) => b,
            Err(_) => return Ok(None),
        };
    }
    if &magic != MAGIC || r.u32()? != FORMAT || r.string()? != env!("CARGO_PKG_VERSION") {
        return Ok(None);
    }
    Ok(Some(r.string()?))
}
