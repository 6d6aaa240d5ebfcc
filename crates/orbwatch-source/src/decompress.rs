//! Transparent decompression, chosen by magic bytes, never by extension:
//! rotated logs are renamed, re-compressed and mislabelled all the time.

use std::io::{self, BufRead, BufReader, Read};

/// Compression formats recognised by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Bzip2,
    Xz,
    Lz4,
}

impl Compression {
    /// Identify the compression of a stream from its first bytes.
    pub fn sniff(head: &[u8]) -> Self {
        match head {
            [0x1f, 0x8b, ..] => Self::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Self::Zstd,
            [b'B', b'Z', b'h', d, ..] if d.is_ascii_digit() => Self::Bzip2,
            [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Self::Xz,
            [0x04, 0x22, 0x4d, 0x18, ..] => Self::Lz4,
            _ => Self::None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Zstd => "zstd",
            Self::Bzip2 => "bzip2",
            Self::Xz => "xz",
            Self::Lz4 => "lz4",
        }
    }
}

/// Buffer size for reading: large enough that syscalls and decompressor
/// calls are amortised over many lines.
pub const READ_BUF: usize = 256 * 1024;

/// Wrap `inner` in the right decompressor after peeking at its first bytes.
/// Concatenated gzip members (as `cat a.gz b.gz` or some rotators produce)
/// are all read.
pub fn decompressed<R: Read + Send + 'static>(
    inner: R,
) -> io::Result<(Compression, Box<dyn BufRead + Send>)> {
    let mut buffered = BufReader::with_capacity(READ_BUF, inner);
    let head = buffered.fill_buf()?;
    let kind = Compression::sniff(head);
    let reader: Box<dyn BufRead + Send> = match kind {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(BufReader::with_capacity(
            READ_BUF,
            flate2::bufread::MultiGzDecoder::new(buffered),
        )),
        Compression::Zstd => Box::new(BufReader::with_capacity(
            READ_BUF,
            zstd::stream::read::Decoder::with_buffer(buffered)?,
        )),
        Compression::Bzip2 => Box::new(BufReader::with_capacity(
            READ_BUF,
            bzip2::bufread::MultiBzDecoder::new(buffered),
        )),
        Compression::Xz => Box::new(BufReader::with_capacity(
            READ_BUF,
            liblzma::bufread::XzDecoder::new_multi_decoder(buffered),
        )),
        Compression::Lz4 => Box::new(BufReader::with_capacity(
            READ_BUF,
            Lz4Frames(lz4_flex::frame::FrameDecoder::new(Lz4FrameCheck::new(
                buffered,
            ))),
        )),
    };
    Ok((kind, reader))
}

/// All the frames of an LZ4 stream. `lz4_flex`'s `FrameDecoder` ends its
/// output at the end of the first frame, so the frames after it (as `cat
/// a.lz4 b.lz4` makes them) were silently dropped; here the decoder goes
/// on while compressed bytes remain.
struct Lz4Frames<R: BufRead>(lz4_flex::frame::FrameDecoder<Lz4FrameCheck<R>>);

impl<R: BufRead> Read for Lz4Frames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let n = self.0.read(buf)?;
            if n > 0 || !self.0.get_mut().more()? {
                return Ok(n);
            }
        }
    }
}

/// Follows the frame structure of an LZ4 stream as its bytes pass to the
/// decoder, and turns an end of input anywhere but between two frames
/// into an error.
///
/// Why: `lz4_flex`'s `FrameDecoder` takes an end of input inside a frame
/// header, or where the next block size (or the end mark) should be, for
/// the end of the stream. A `.lz4` cut to 4–8 bytes then read as an empty
/// file, and one cut at a block boundary as a shorter one, with no error.
/// The error kind is `InvalidData`, not `UnexpectedEof`, which the decoder
/// would swallow again.
struct Lz4FrameCheck<R> {
    inner: R,
    state: Lz4State,
    /// Bytes of the current field still to come (or collected so far, for
    /// fields whose value is needed).
    need: usize,
    field: [u8; 4],
    have: usize,
    flg: u8,
    offset: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lz4State {
    /// Between frames: the only place the input may end.
    Magic,
    /// Frame descriptor: FLG and BD.
    Descriptor,
    /// Optional content size, dictionary id and the header checksum.
    HeaderRest,
    BlockSize,
    BlockData,
    ContentChecksum,
    SkippableSize,
    SkippableData,
    /// Legacy frames have no end mark: they end at the end of input or at
    /// the next magic number, at a block boundary.
    LegacyBlockSize,
    LegacyBlockData,
}

const LZ4_MAGIC: u32 = 0x184D_2204;
const LZ4_LEGACY_MAGIC: u32 = 0x184C_2102;

impl<R: BufRead> Lz4FrameCheck<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            state: Lz4State::Magic,
            need: 4,
            field: [0; 4],
            have: 0,
            flg: 0,
            offset: 0,
        }
    }

    fn bad(&self, what: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("lz4: {what} at compressed byte {}", self.offset),
        )
    }

    /// Collect a small field; `Some(value)` once complete.
    fn collect(&mut self, b: u8) -> Option<u32> {
        self.field[self.have] = b;
        self.have += 1;
        if self.have < self.need {
            return None;
        }
        let mut v = [0u8; 4];
        v[..self.have].copy_from_slice(&self.field[..self.have]);
        self.have = 0;
        Some(u32::from_le_bytes(v))
    }

    fn feed(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut i = 0;
        while i < bytes.len() {
            match self.state {
                Lz4State::BlockData
                | Lz4State::SkippableData
                | Lz4State::LegacyBlockData
                | Lz4State::HeaderRest
                | Lz4State::ContentChecksum => {
                    let n = self.need.min(bytes.len() - i);
                    self.need -= n;
                    i += n;
                    self.offset += n as u64;
                    if self.need == 0 {
                        self.state = match self.state {
                            Lz4State::SkippableData | Lz4State::ContentChecksum => {
                                self.need = 4;
                                Lz4State::Magic
                            }
                            Lz4State::LegacyBlockData => {
                                self.need = 4;
                                Lz4State::LegacyBlockSize
                            }
                            _ => {
                                self.need = 4;
                                Lz4State::BlockSize
                            }
                        };
                    }
                    continue;
                }
                _ => {}
            }
            let b = bytes[i];
            i += 1;
            self.offset += 1;
            let Some(v) = self.collect(b) else { continue };
            match self.state {
                Lz4State::Magic | Lz4State::LegacyBlockSize if v == LZ4_MAGIC => {
                    self.state = Lz4State::Descriptor;
                    self.need = 2;
                }
                Lz4State::Magic | Lz4State::LegacyBlockSize if v == LZ4_LEGACY_MAGIC => {
                    self.state = Lz4State::LegacyBlockSize;
                    self.need = 4;
                }
                Lz4State::Magic | Lz4State::LegacyBlockSize if v & 0xFFFF_FFF0 == 0x184D_2A50 => {
                    self.state = Lz4State::SkippableSize;
                    self.need = 4;
                }
                Lz4State::LegacyBlockSize => {
                    self.state = Lz4State::LegacyBlockData;
                    self.need = v as usize;
                }
                Lz4State::Magic => return Err(self.bad("not an LZ4 frame")),
                Lz4State::Descriptor => {
                    self.flg = (v & 0xff) as u8;
                    // Content size (8), dictionary id (4), header checksum (1).
                    let rest = 1
                        + if self.flg & 0x08 != 0 { 8 } else { 0 }
                        + if self.flg & 0x01 != 0 { 4 } else { 0 };
                    self.state = Lz4State::HeaderRest;
                    self.need = rest;
                }
                Lz4State::SkippableSize => {
                    self.state = Lz4State::SkippableData;
                    self.need = v as usize;
                    if self.need == 0 {
                        self.state = Lz4State::Magic;
                        self.need = 4;
                    }
                }
                Lz4State::BlockSize if v == 0 => {
                    if self.flg & 0x04 != 0 {
                        self.state = Lz4State::ContentChecksum;
                        self.need = 4;
                    } else {
                        self.state = Lz4State::Magic;
                        self.need = 4;
                    }
                }
                Lz4State::BlockSize => {
                    let checksum = if self.flg & 0x10 != 0 { 4 } else { 0 };
                    self.state = Lz4State::BlockData;
                    self.need = (v & 0x7FFF_FFFF) as usize + checksum;
                }
                _ => {}
            }
            if matches!(
                self.state,
                Lz4State::BlockData | Lz4State::SkippableData | Lz4State::LegacyBlockData
            ) && self.need == 0
            {
                // A zero-length block: straight to the next block size.
                self.state = if self.state == Lz4State::LegacyBlockData {
                    Lz4State::LegacyBlockSize
                } else {
                    Lz4State::BlockSize
                };
                self.need = 4;
            }
        }
        Ok(())
    }

    /// Are there compressed bytes left? At the end, an error unless the
    /// stream ended between frames.
    fn more(&mut self) -> io::Result<bool> {
        if !self.inner.fill_buf()?.is_empty() {
            return Ok(true);
        }
        if !self.at_boundary() {
            return Err(self.cut());
        }
        Ok(false)
    }

    fn cut(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "truncated lz4 stream: it ends inside a frame after {} compressed bytes",
                self.offset
            ),
        )
    }

    /// May the input end here?
    fn at_boundary(&self) -> bool {
        self.have == 0
            && self.offset > 0
            && matches!(self.state, Lz4State::Magic | Lz4State::LegacyBlockSize)
    }
}

impl<R: BufRead> Read for Lz4FrameCheck<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            if !self.at_boundary() {
                return Err(self.cut());
            }
            return Ok(0);
        }
        self.feed(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn roundtrip(kind: Compression, data: &[u8]) -> Vec<u8> {
        let compressed = super::truncation_tests::compress(kind, data);
        let (got, mut r) = decompressed(std::io::Cursor::new(compressed)).unwrap();
        assert_eq!(got, kind);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn every_format_by_magic() {
        let data = b"line one 1.2.3.4\nline two\n".repeat(100);
        for k in [
            Compression::None,
            Compression::Gzip,
            Compression::Zstd,
            Compression::Bzip2,
            Compression::Xz,
            Compression::Lz4,
        ] {
            assert_eq!(roundtrip(k, &data), data, "{k:?}");
        }
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&b"x".repeat(100_000)).unwrap();
        let mut c = e.finish().unwrap();
        c.truncate(c.len() / 2);
        let (_, mut r) = decompressed(std::io::Cursor::new(c)).unwrap();
        let mut out = Vec::new();
        assert!(r.read_to_end(&mut out).is_err());
    }
}

#[cfg(test)]
mod truncation_tests {
    use super::*;
    use std::io::Write;

    /// `data` compressed in `kind` (the library's own encoders).
    pub(super) fn compress(kind: Compression, data: &[u8]) -> Vec<u8> {
        match kind {
            Compression::None => data.to_vec(),
            Compression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Zstd => zstd::encode_all(data, 1).unwrap(),
            Compression::Bzip2 => {
                let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Xz => {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Lz4 => {
                let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
        }
    }

    /// Every cut of a compressed stream, from just past its magic to one
    /// byte short of its end, is a read error, never a short or empty file.
    #[test]
    fn every_truncated_stream_is_an_error() {
        let data = b"Feb 12 14:10:21 sd-126005 sshd[16378]: Invalid user pascal from 35.188.49.176 port 53502\n".repeat(50);
        let mut silent = Vec::new();
        for kind in [
            Compression::Gzip,
            Compression::Zstd,
            Compression::Bzip2,
            Compression::Xz,
            Compression::Lz4,
        ] {
            let full = compress(kind, &data);
            for cut in 4..full.len() {
                let r = decompressed(std::io::Cursor::new(full[..cut].to_vec()));
                let Ok((k, mut r)) = r else { continue };
                if k != kind {
                    continue;
                }
                let mut out = Vec::new();
                if r.read_to_end(&mut out).is_ok() {
                    silent.push(format!("{kind:?} cut at {cut} of {}", full.len()));
                }
            }
        }
        assert!(silent.is_empty(), "read without error: {silent:?}");
    }

    /// Frames with every optional field (content size, block and content
    /// checksums), concatenated, read whole; cut anywhere, they are an
    /// error.
    #[test]
    fn lz4_frames_with_every_option_and_concatenated() {
        use lz4_flex::frame::{BlockSize, FrameEncoder, FrameInfo};
        let data =
            b"Feb 12 14:10:21 sd-126005 sshd[16378]: Invalid user pascal from 35.188.49.176\n"
                .repeat(3000);
        let info = FrameInfo::new()
            .block_size(BlockSize::Max64KB)
            .content_size(Some(data.len() as u64))
            .block_checksums(true)
            .content_checksum(true);
        let mut e = FrameEncoder::with_frame_info(info, Vec::new());
        e.write_all(&data).unwrap();
        let one = e.finish().unwrap();
        let mut two = one.clone();
        two.extend_from_slice(&one);
        let (_, mut r) = decompressed(std::io::Cursor::new(two.clone())).unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 2 * data.len());
        for cut in [
            5,
            11,
            20,
            one.len() - 1,
            one.len() + 2,
            one.len() + 9,
            two.len() - 3,
        ] {
            let (_, mut r) = decompressed(std::io::Cursor::new(two[..cut].to_vec())).unwrap();
            let mut out = Vec::new();
            assert!(r.read_to_end(&mut out).is_err(), "cut at {cut}");
        }
    }
}
