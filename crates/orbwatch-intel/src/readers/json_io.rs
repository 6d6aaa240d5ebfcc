//! Byte-level helpers for the JSON readers that stream a document through
//! `serde_json::Deserializer::from_reader` (MISP events, STIX bundles):
//! line counting, a byte order mark skipped, UTF-8 checked as it passes.

use std::cell::Cell;
use std::io::Read;
use std::rc::Rc;

/// What serde_json reads a streamed document from: a buffer of its own,
/// a UTF-8 byte order mark skipped at the start, and the lines handed
/// over counted in `line`. serde_json reads its input one byte per call
/// (`io::Bytes`), so the count is exact up to the one byte it peeks, and
/// that call is the reader's inner loop: here it is a copy of one byte
/// from the buffer and a compare, where a `BufReader` under two adapters
/// cost three calls and a `memchr` per byte (the STIX stream took 25 s
/// for a 73 MB bundle that way, against 9 s for the whole reader).
pub(crate) struct JsonInput<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    started: bool,
    line: Rc<Cell<u64>>,
}

impl<R: Read> JsonInput<R> {
    pub(crate) fn new(inner: R, line: Rc<Cell<u64>>) -> Self {
        Self {
            inner,
            buf: vec![0; 256 * 1024].into_boxed_slice(),
            pos: 0,
            end: 0,
            started: false,
            line,
        }
    }

    /// Refill the buffer; `false` at the end of the input.
    #[cold]
    fn refill(&mut self) -> std::io::Result<bool> {
        self.pos = 0;
        self.end = 0;
        if !self.started {
            // The first bytes, enough to see a byte order mark.
            self.started = true;
            while self.end < 3 {
                let n = self.inner.read(&mut self.buf[self.end..])?;
                if n == 0 {
                    break;
                }
                self.end += n;
            }
            if self.buf[..self.end].starts_with(&[0xEF, 0xBB, 0xBF]) {
                self.pos = 3;
            }
            return Ok(self.pos < self.end);
        }
        self.end = self.inner.read(&mut self.buf)?;
        Ok(self.end > 0)
    }
}

impl<R: Read> Read for JsonInput<R> {
    #[inline]
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.pos >= self.end && !self.refill()? {
            return Ok(0);
        }
        if out.len() == 1 {
            let b = self.buf[self.pos];
            self.pos += 1;
            out[0] = b;
            if b == b'\n' {
                self.line.set(self.line.get() + 1);
            }
            return Ok(1);
        }
        let n = out.len().min(self.end - self.pos);
        let chunk = &self.buf[self.pos..self.pos + n];
        out[..n].copy_from_slice(chunk);
        let nl = memchr::memchr_iter(b'\n', chunk).count() as u64;
        if nl > 0 {
            self.line.set(self.line.get() + nl);
        }
        self.pos += n;
        Ok(n)
    }
}

/// Fails the read at the first byte sequence that is not UTF-8, or at an
/// end in the middle of a character. The whole reader refuses such a file
/// (serde_json checks every string of a tree it builds); the stream skips
/// most strings unchecked, so it checks the bytes as they pass.
pub(crate) struct Utf8Checked<R> {
    inner: R,
    /// The start of a character cut by the end of the previous read.
    carry: [u8; 4],
    carry_len: usize,
    /// Bytes read before the current read, for the error's offset.
    offset: u64,
}

impl<R> Utf8Checked<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            carry: [0; 4],
            carry_len: 0,
            offset: 0,
        }
    }

    fn invalid(&self, at: u64) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("bytes that are not UTF-8 at byte offset {at}"),
        )
    }
}

impl<R: Read> Read for Utf8Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 {
            if self.carry_len > 0 {
                return Err(self.invalid(self.offset - self.carry_len as u64));
            }
            return Ok(0);
        }
        let mut start = 0;
        if self.carry_len > 0 {
            // Only a valid but incomplete start is carried, so its first
            // byte says the character's width.
            let width = match self.carry[0] {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                _ => 4,
            };
            let take = (width - self.carry_len).min(n);
            self.carry[self.carry_len..self.carry_len + take].copy_from_slice(&buf[..take]);
            self.carry_len += take;
            start = take;
            if self.carry_len == width {
                if std::str::from_utf8(&self.carry[..width]).is_err() {
                    return Err(self.invalid(self.offset - (width - take) as u64));
                }
                self.carry_len = 0;
            } else if let Err(e) = std::str::from_utf8(&self.carry[..self.carry_len])
                && e.error_len().is_some()
            {
                return Err(self.invalid(self.offset));
            }
        }
        if let Err(e) = std::str::from_utf8(&buf[start..n]) {
            let at = start + e.valid_up_to();
            if e.error_len().is_some() || self.carry_len > 0 {
                return Err(self.invalid(self.offset + at as u64));
            }
            let tail = &buf[at..n];
            self.carry[..tail.len()].copy_from_slice(tail);
            self.carry_len = tail.len();
        }
        self.offset += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::Utf8Checked;
    use std::io::Read;

    /// Hands out at most `step` bytes a read, to cut characters anywhere.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn check(bytes: &[u8], step: usize) -> bool {
        let mut out = Vec::new();
        Utf8Checked::new(Trickle(bytes, step))
            .read_to_end(&mut out)
            .is_ok()
    }

    #[test]
    fn utf8_is_checked_across_every_cut() {
        let good = "a é € 😀 ORB \u{10FFFF}".as_bytes();
        let bad: [&[u8]; 6] = [
            b"\xE8\xE8\xE8 3",       // the fuzzer's find: a lone lead byte
            b"ok \xC3",              // a character cut by the end
            b"ok \xF0\x9F\x98",      // a longer one cut by the end
            b"\xED\xA0\x80",         // a surrogate
            b"\xC0\xAF",             // an overlong `/`
            b"\xF0\x9F\x98\x80\x80", // a stray continuation byte
        ];
        for step in 1..=7 {
            assert!(check(good, step), "step {step}");
            for b in bad {
                assert!(!check(b, step), "{b:?} step {step}");
            }
        }
    }
}
