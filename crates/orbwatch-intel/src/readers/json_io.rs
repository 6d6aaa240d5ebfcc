//! Byte-level helpers for the JSON readers that stream a document through
//! `serde_json::Deserializer::from_reader` (MISP events, STIX bundles):
//! line counting, a byte order mark skipped, UTF-8 checked as it passes.

use std::cell::Cell;
use std::io::Read;
use std::rc::Rc;

/// Counts the lines serde_json has consumed. serde_json reads its input
/// one byte at a time (`io::Bytes`), so the count is exact up to the one
/// byte it peeks.
pub(crate) struct LineCounting<R> {
    pub(crate) inner: R,
    pub(crate) line: Rc<Cell<u64>>,
}

impl<R: Read> Read for LineCounting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let nl = memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
        if nl > 0 {
            self.line.set(self.line.get() + nl);
        }
        Ok(n)
    }
}

/// Skips a UTF-8 byte order mark at the start.
pub(crate) struct SkipBom<R> {
    inner: R,
    checked: bool,
}

impl<R> SkipBom<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            checked: false,
        }
    }
}

impl<R: std::io::BufRead> Read for SkipBom<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.checked {
            self.checked = true;
            let head = self.inner.fill_buf()?;
            if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
                self.inner.consume(3);
            }
        }
        self.inner.read(buf)
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
