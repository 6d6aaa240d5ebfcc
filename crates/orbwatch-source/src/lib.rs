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
/// text? A high share of control characters, or NUL bytes scattered among
/// the others, say so.
///
/// Runs of NUL bytes (8 or more) do not: a crash or a copytruncate rotation
/// leaves them at the start or in the middle of a text log, and the lines
/// around them must still be read (see [`LineReader`], which skips them
/// and counts them). When in doubt the input is read as text, and what
/// fails to decode is counted as rejected, rather than dropping the file.
pub fn looks_binary(head: &[u8]) -> bool {
    if head.is_empty() {
        return false;
    }
    let sample = &head[..head.len().min(8192)];
    let mut scattered_nul = 0usize;
    let mut run_nul = 0usize;
    let mut run = 0usize;
    for &b in sample.iter().chain(std::iter::once(&1u8)) {
        if b == 0 {
            run += 1;
            continue;
        }
        if run >= NUL_RUN {
            run_nul += run;
        } else {
            scattered_nul += run;
        }
        run = 0;
    }
    let text = sample.len() - run_nul;
    if text == 0 {
        // Nothing but NUL padding so far: read on as text.
        return false;
    }
    let ctrl = sample
        .iter()
        .filter(|b| **b != 0 && (**b < 0x09 || (**b > 0x0d && **b < 0x20) || **b == 0x7f))
        .count();
    scattered_nul * 100 > text || ctrl * 10 > text
}

/// Shortest run of NUL bytes taken for padding rather than binary data.
const NUL_RUN: usize = 8;

/// Read up to `max_bytes` from the start of a reader for format detection,
/// returning them and a reader that still yields every byte (the peeked
/// ones first). A read error inside the peek (a corrupt compressed file) is
/// not lost: the bytes before it are returned, and the returned reader
/// yields them and then fails with the same error, so the caller hunts what
/// could be read and reports the rest.
pub fn peek_lines(
    mut reader: Box<dyn BufRead + Send>,
    max_bytes: usize,
) -> io::Result<(Vec<u8>, Box<dyn BufRead + Send>)> {
    let mut head = Vec::with_capacity(max_bytes.min(64 * 1024));
    let mut failure = None;
    while head.len() < max_bytes {
        let buf = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        if buf.is_empty() {
            break;
        }
        let n = buf.len().min(max_bytes - head.len());
        head.extend_from_slice(&buf[..n]);
        reader.consume(n);
    }
    let rest: Box<dyn Read + Send> = match failure {
        Some(e) => Box::new(FailingReader(Some(e))),
        None => Box::new(reader),
    };
    let chained = io::Cursor::new(head.clone()).chain(rest);
    Ok((
        head,
        Box::new(io::BufReader::with_capacity(decompress::READ_BUF, chained)),
    ))
}

/// A reader that fails once with a stored error, then reports end of data.
struct FailingReader(Option<io::Error>);

impl Read for FailingReader {
    fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        match self.0.take() {
            Some(e) => Err(e),
            None => Ok(0),
        }
    }
}
