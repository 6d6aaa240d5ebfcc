//! STIX JSON lines read in memory bounded by the longest line, not by the
//! file: one object (or bundle) per line, as TAXII clients and
//! `stix2-elevator` write them. The whole reader kept every line's
//! `serde_json::Value` at once, several times the file.
//!
//! As for a bundle ([`super::stream`]), what a line says about an
//! indicator can come on a later line, so the file is read twice, a line
//! at a time: the first pass builds the context (identities, markings,
//! relationships, reports, versions) and notes what cannot be read; the
//! second turns each line's indicators into indicators with all of that
//! known and hands them on.
//!
//! The answer is that of [`super::read_whole`] on the same bytes, in the
//! same order: first the lines that are not JSON or not STIX (in line
//! order), then the objects that do not deserialize, then what the
//! objects give. Test `stix_stream_equals_whole` compares them on every
//! JSON lines file of the tests and on variants of every bundle written
//! as JSON lines, with bad lines, blank lines and CRLF.
//!
//! Which files are JSON lines is the whole reader's rule
//! ([`super::is_json_lines`]), applied to the first five non-empty lines.
//! A head longer than [`HEAD_LIMIT`] is left to the whole reader (as
//! before this stream existed), so a file that is one long line of junk is
//! never taken in whole here.

use std::io::{BufRead, BufReader, Read};

use serde::Deserialize;
use serde_json::Value;

use super::{
    ContextBuilder, JSON_LINES_HEAD, StixObject, flatten, head_is_json_lines, read_object,
    reject_malformed, strip_bom,
};
use crate::readers::{FeedError, ParsedFeed, ReadOptions, apply_window_policy};

/// The most the head check reads before it gives up and leaves the file
/// to the whole reader.
pub(super) const HEAD_LIMIT: usize = 64 << 20;

/// Is the file that `open` opens STIX JSON lines, by the whole reader's
/// rule? `None` when its first lines are too long to tell within
/// [`HEAD_LIMIT`].
pub(super) fn is_json_lines<R: Read>(input: R) -> std::io::Result<Option<bool>> {
    let mut reader = BufReader::with_capacity(64 * 1024, input.take(HEAD_LIMIT as u64 + 1));
    let mut head: Vec<Vec<u8>> = Vec::new();
    let mut line = Vec::new();
    let mut read = 0usize;
    let mut first = true;
    while head.len() < JSON_LINES_HEAD {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        read += n;
        if read > HEAD_LIMIT {
            return Ok(None);
        }
        let text = trimmed(&line, first);
        first = false;
        if !text.is_empty() {
            head.push(text.to_vec());
        }
    }
    let head: Vec<&[u8]> = head.iter().map(Vec::as_slice).collect();
    Ok(Some(head_is_json_lines(&head)))
}

/// A line as the whole reader sees it: without its end and surrounding
/// blanks, and without the byte order mark on the first line.
fn trimmed(line: &[u8], first: bool) -> &[u8] {
    let line = if first { strip_bom(line) } else { line };
    line.trim_ascii()
}

/// Call `each` with (line number, trimmed line) for every non-empty line.
fn for_each_line<R: Read>(input: R, mut each: impl FnMut(u64, &[u8])) -> std::io::Result<u64> {
    let mut reader = BufReader::with_capacity(256 * 1024, input);
    let mut line = Vec::new();
    let mut lineno = 0u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(lineno);
        }
        lineno += 1;
        let text = trimmed(&line, lineno == 1);
        if !text.is_empty() {
            each(lineno, text);
        }
    }
}

/// The objects of one line, or why the line gives none: the whole
/// reader's reading of a line.
fn line_objects(text: &[u8]) -> Result<Vec<Value>, String> {
    match serde_json::from_slice::<Value>(text) {
        Ok(v) => {
            let mut vals = Vec::new();
            if flatten(v, &mut vals, 0) {
                Ok(vals)
            } else {
                Err("line is neither a STIX bundle nor a STIX object (no \"type\")".to_string())
            }
        }
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

/// Read STIX JSON lines from what `open` opens (twice), handing what each
/// line gave to `sink` as [`super::read_bundle_stream`] does.
pub(super) fn read_json_lines<R: Read>(
    open: &mut dyn FnMut() -> std::io::Result<R>,
    file: &str,
    opts: &ReadOptions,
    apply_policy: bool,
    sink: &mut dyn FnMut(&mut ParsedFeed),
) -> Result<(), FeedError> {
    let io = |source: std::io::Error| FeedError::Io {
        file: file.to_string(),
        source,
    };
    // First pass: the context, the lines that give nothing, the objects
    // that do not deserialize, and a count of the objects read, which the
    // second pass must find again.
    let mut builder = ContextBuilder::new();
    let mut bad_lines = ParsedFeed::default();
    let mut malformed = ParsedFeed::default();
    let mut objects = 0u64;
    let lines = for_each_line(open().map_err(io)?, |lineno, text| {
        match line_objects(text) {
            Ok(vals) => {
                for v in vals {
                    objects += 1;
                    match StixObject::deserialize(&v) {
                        Ok(o) => builder.add(&o),
                        Err(e) => reject_malformed(&v, lineno, &e, file, &mut malformed),
                    }
                }
            }
            Err(reason) => {
                bad_lines.reject(file, lineno, reason, &String::from_utf8_lossy(text));
            }
        }
    })
    .map_err(io)?;
    let (ctx, mut versions) = builder.finish();
    bad_lines.rejected.append(&mut malformed.rejected);
    if !bad_lines.rejected.is_empty() {
        sink(&mut bad_lines);
    }
    // Second pass: each line's objects read with the whole context.
    let mut out = ParsedFeed::default();
    let mut again = 0u64;
    let lines_again = for_each_line(open().map_err(io)?, |lineno, text| {
        let Ok(vals) = line_objects(text) else {
            return;
        };
        for v in vals {
            again += 1;
            // Malformed objects were rejected after the first pass.
            if let Ok(o) = StixObject::deserialize(&v) {
                read_object(&o, lineno, &ctx, &mut versions, file, opts, &mut out);
            }
        }
        if out.indicators.is_empty() && out.rejected.is_empty() && out.skipped.is_empty() {
            return;
        }
        if apply_policy {
            for ind in &mut out.indicators {
                apply_window_policy(ind, opts);
            }
        }
        sink(&mut out);
    })
    .map_err(io)?;
    if (lines, objects) != (lines_again, again) {
        return Err(io(std::io::Error::other(format!(
            "the file changed while it was read ({lines} lines with {objects} STIX objects, \
             then {lines_again} lines with {again}); read it again once it is written"
        ))));
    }
    Ok(())
}
