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
            lz4_flex::frame::FrameDecoder::new(buffered),
        )),
    };
    Ok((kind, reader))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn roundtrip(kind: Compression, data: &[u8]) -> Vec<u8> {
        let compressed = match kind {
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
        };
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
