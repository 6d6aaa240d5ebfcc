//! A small binary encoding for compiled-index snapshots.
//!
//! Building the index of a ten-million-address feed takes seconds, while a
//! hunt over a day of logs takes about one. A snapshot lets the next hunt
//! with the same feed start at once: the compiled tables are written as
//! flat little-endian arrays and read back without parsing the feed or
//! hashing a single address again.
//!
//! The encoding is private to one orbwatch version (the reader checks a
//! version tag) and only ever read from orbwatch's own cache. It is still
//! read defensively: every length is checked against what the file can
//! hold, so a truncated or corrupt snapshot is an error, never a panic or
//! a huge allocation.

use std::io::{self, Read, Write};

/// Bytes moved per read or write call for arrays.
const CHUNK: usize = 1 << 20;

/// Writes values in the snapshot encoding.
pub struct SnapWriter<W: Write> {
    w: W,
    buf: Vec<u8>,
}

impl<W: Write> SnapWriter<W> {
    pub fn new(w: W) -> Self {
        Self {
            w,
            buf: Vec::with_capacity(CHUNK + 64),
        }
    }

    fn spill(&mut self) -> io::Result<()> {
        if self.buf.len() >= CHUNK {
            self.w.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    pub fn u8(&mut self, v: u8) -> io::Result<()> {
        self.buf.push(v);
        self.spill()
    }

    pub fn u32(&mut self, v: u32) -> io::Result<()> {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self.spill()
    }

    pub fn u64(&mut self, v: u64) -> io::Result<()> {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self.spill()
    }

    pub fn i64(&mut self, v: i64) -> io::Result<()> {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self.spill()
    }

    pub fn u128(&mut self, v: u128) -> io::Result<()> {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self.spill()
    }

    /// A length-prefixed byte string.
    pub fn bytes(&mut self, v: &[u8]) -> io::Result<()> {
        self.u64(v.len() as u64)?;
        self.buf.extend_from_slice(v);
        self.spill()
    }

    pub fn str(&mut self, v: &str) -> io::Result<()> {
        self.bytes(v.as_bytes())
    }

    /// A length-prefixed array of `u32`.
    pub fn u32s(&mut self, v: &[u32]) -> io::Result<()> {
        self.array(v, |x, buf| buf.extend_from_slice(&x.to_le_bytes()))
    }

    /// A length-prefixed array of `u64`.
    pub fn u64s(&mut self, v: &[u64]) -> io::Result<()> {
        self.array(v, |x, buf| buf.extend_from_slice(&x.to_le_bytes()))
    }

    fn array<T>(&mut self, v: &[T], put: impl Fn(&T, &mut Vec<u8>)) -> io::Result<()> {
        self.u64(v.len() as u64)?;
        for x in v {
            put(x, &mut self.buf);
            self.spill()?;
        }
        Ok(())
    }

    /// Raw bytes, without a length (the caller wrote one). Large slices go
    /// straight to the writer.
    pub fn raw(&mut self, v: &[u8]) -> io::Result<()> {
        if v.len() >= CHUNK {
            self.w.write_all(&self.buf)?;
            self.buf.clear();
            return self.w.write_all(v);
        }
        self.buf.extend_from_slice(v);
        self.spill()
    }

    /// Flush everything and hand the writer back.
    pub fn finish(mut self) -> io::Result<W> {
        self.w.write_all(&self.buf)?;
        self.buf.clear();
        self.w.flush()?;
        Ok(self.w)
    }
}

/// Reads values in the snapshot encoding, refusing lengths the rest of
/// the input cannot hold.
pub struct SnapReader<R: Read> {
    r: R,
    /// Bytes left in the input (the caller knows the file size).
    left: u64,
    buf: Vec<u8>,
}

fn corrupt(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("index snapshot is corrupt or truncated ({what})"),
    )
}

/// The error for a snapshot whose parts read well but do not fit together
/// (a link out of bounds, a table of the wrong size).
pub fn inconsistent(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("index snapshot is inconsistent ({what})"),
    )
}

impl<R: Read> SnapReader<R> {
    /// `len` is the number of bytes `r` holds.
    pub fn new(r: R, len: u64) -> Self {
        Self {
            r,
            left: len,
            buf: Vec::new(),
        }
    }

    fn take(&mut self, n: usize) -> io::Result<&[u8]> {
        if n as u64 > self.left {
            return Err(corrupt("a field runs past the end"));
        }
        self.buf.resize(n, 0);
        self.r.read_exact(&mut self.buf)?;
        self.left -= n as u64;
        Ok(&self.buf)
    }

    fn array<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        let b = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    pub fn u8(&mut self) -> io::Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    pub fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub fn i64(&mut self) -> io::Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    pub fn u128(&mut self) -> io::Result<u128> {
        Ok(u128::from_le_bytes(self.array()?))
    }

    /// A count of items of at least `min_item` bytes each, checked against
    /// what is left.
    pub fn count(&mut self, min_item: u64) -> io::Result<usize> {
        let n = self.u64()?;
        if n.saturating_mul(min_item.max(1)) > self.left {
            return Err(corrupt("a count larger than the file"));
        }
        usize::try_from(n).map_err(|_| corrupt("a count too large for this machine"))
    }

    pub fn bytes(&mut self) -> io::Result<Vec<u8>> {
        let n = self.count(1)?;
        Ok(self.take(n)?.to_vec())
    }

    pub fn string(&mut self) -> io::Result<String> {
        String::from_utf8(self.bytes()?).map_err(|_| corrupt("text is not UTF-8"))
    }

    /// Read `n` fixed-size items of `size` bytes in chunks, decoding each.
    fn items<T>(
        &mut self,
        n: usize,
        size: usize,
        decode: impl FnMut(&[u8]) -> T,
    ) -> io::Result<Vec<T>> {
        let mut out = Vec::with_capacity(n);
        self.items_into(&mut out, n, size, decode)?;
        Ok(out)
    }

    fn items_into<T>(
        &mut self,
        out: &mut Vec<T>,
        n: usize,
        size: usize,
        mut decode: impl FnMut(&[u8]) -> T,
    ) -> io::Result<()> {
        let per_chunk = (CHUNK / size).max(1);
        let mut done = 0;
        while done < n {
            let k = per_chunk.min(n - done);
            let b = self.take(k * size)?;
            out.extend(b.chunks_exact(size).map(&mut decode));
            done += k;
        }
        Ok(())
    }

    pub fn u32s(&mut self) -> io::Result<Vec<u32>> {
        let n = self.count(4)?;
        self.items(n, 4, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64s(&mut self) -> io::Result<Vec<u64>> {
        let n = self.count(8)?;
        self.items(n, 8, |b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_le_bytes(a)
        })
    }

    /// Records of `size` bytes each, decoded by `decode`; the count is
    /// read first.
    pub fn records<T>(
        &mut self,
        size: usize,
        decode: impl FnMut(&[u8]) -> T,
    ) -> io::Result<Vec<T>> {
        let n = self.count(size as u64)?;
        self.items(n, size, decode)
    }

    /// Like [`SnapReader::records`], into a vector the caller made (and
    /// may have prepared, e.g. with huge-page advice). `reserve` is called
    /// with the count before anything is decoded.
    pub fn records_into<T>(
        &mut self,
        out: &mut Vec<T>,
        size: usize,
        reserve: impl FnOnce(&mut Vec<T>, usize),
        decode: impl FnMut(&[u8]) -> T,
    ) -> io::Result<()> {
        let n = self.count(size as u64)?;
        reserve(out, n);
        self.items_into(out, n, size, decode)
    }

    /// Fill `buf` with the next bytes of the input.
    pub fn fill(&mut self, buf: &mut [u8]) -> io::Result<()> {
        if buf.len() as u64 > self.left {
            return Err(corrupt("a table runs past the end"));
        }
        self.r.read_exact(buf)?;
        self.left -= buf.len() as u64;
        Ok(())
    }

    /// Bytes not read yet.
    pub fn left(&self) -> u64 {
        self.left
    }
}

/// Little-endian `u32` at `at` in a record (the caller sized the record).
pub fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let mut w = SnapWriter::new(Vec::new());
        w.u32(7).unwrap();
        w.str("héllo").unwrap();
        let big: Vec<u32> = (0..300_000).collect();
        w.u32s(&big).unwrap();
        w.u64s(&[1, u64::MAX]).unwrap();
        w.i64(-5).unwrap();
        w.u128(u128::MAX - 1).unwrap();
        let bytes = w.finish().unwrap();

        let mut r = SnapReader::new(&bytes[..], bytes.len() as u64);
        assert_eq!(r.u32().unwrap(), 7);
        assert_eq!(r.string().unwrap(), "héllo");
        assert_eq!(r.u32s().unwrap(), big);
        assert_eq!(r.u64s().unwrap(), vec![1, u64::MAX]);
        assert_eq!(r.i64().unwrap(), -5);
        assert_eq!(r.u128().unwrap(), u128::MAX - 1);
        assert_eq!(r.left(), 0);

        // Every truncation is an error, never a panic.
        for cut in [0, 3, 10, 100, bytes.len() / 2, bytes.len() - 1] {
            let mut r = SnapReader::new(&bytes[..cut], cut as u64);
            let all = (|| -> io::Result<()> {
                r.u32()?;
                r.string()?;
                r.u32s()?;
                r.u64s()?;
                r.i64()?;
                r.u128()?;
                Ok(())
            })();
            assert!(all.is_err(), "cut at {cut} was accepted");
        }
    }

    #[test]
    fn absurd_counts_are_refused_before_allocating() {
        let mut w = SnapWriter::new(Vec::new());
        w.u64(u64::MAX / 2).unwrap();
        let bytes = w.finish().unwrap();
        let mut r = SnapReader::new(&bytes[..], bytes.len() as u64);
        let err = r.u32s().unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
    }
}
