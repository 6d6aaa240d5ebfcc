//! Byte sources for orbwatch: expanding paths into inputs, opening them with
//! transparent decompression, and splitting them into records.
//!
//! `hunt` reads archived files through this crate; `watch` will add
//! followers and listeners here, handing records to the same decoders.

pub mod decompress;
pub mod inputs;
pub mod lines;

use std::fs::File;
use std::io::{self, BufRead, Read, Seek, SeekFrom};

pub use decompress::{Compression, decompressed};
pub use inputs::{Filters, Input, InputProblem, expand};
pub use lines::{Line, LineReader, MAX_LINE, count_newlines, line_aligned_chunks};

/// Open an input (file or stdin) with decompression chosen by magic bytes.
pub fn open(input: &Input) -> io::Result<(Compression, Box<dyn BufRead + Send>)> {
    match &input.path {
        None => decompressed(io::stdin()),
        Some(p) => decompressed(File::open(p)?),
    }
}

/// Open the byte range `[start, end)` of an uncompressed file.
pub fn open_range(input: &Input, start: u64, end: u64) -> io::Result<Box<dyn BufRead + Send>> {
    let path = input
        .path
        .as_ref()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "stdin cannot be split"))?;
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(start))?;
    Ok(Box::new(io::BufReader::with_capacity(
        decompress::READ_BUF,
        f.take(end - start),
    )))
}

/// Does a block of (decompressed) bytes look like binary data rather than
/// text? NUL bytes or a high share of control characters say so.
pub fn looks_binary(head: &[u8]) -> bool {
    if head.is_empty() {
        return false;
    }
    let sample = &head[..head.len().min(8192)];
    let nul = memchr::memchr_iter(0, sample).count();
    let ctrl = sample
        .iter()
        .filter(|b| **b < 0x09 || (**b > 0x0d && **b < 0x20) || **b == 0x7f)
        .count();
    nul * 100 > sample.len() || ctrl * 10 > sample.len()
}

/// Read the first `n` lines of a reader for format detection, returning them
/// and a reader that still yields every byte (the peeked ones first).
pub fn peek_lines(
    mut reader: Box<dyn BufRead + Send>,
    max_bytes: usize,
) -> io::Result<(Vec<u8>, Box<dyn BufRead + Send>)> {
    let mut head = Vec::with_capacity(max_bytes.min(64 * 1024));
    (&mut reader)
        .take(max_bytes as u64)
        .read_to_end(&mut head)?;
    let chained = io::Cursor::new(head.clone()).chain(reader);
    Ok((
        head,
        Box::new(io::BufReader::with_capacity(decompress::READ_BUF, chained)),
    ))
}
