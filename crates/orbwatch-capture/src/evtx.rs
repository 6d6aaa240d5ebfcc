//! EVTX files (Windows XML event logs) to auth events.
//!
//! The `evtx` crate parses the binary format (chunks, templates, BinXML)
//! and renders each record as XML; the mapping from Windows events to
//! [`Event`](orbwatch_event::Event)s is the one of the XML text decoder,
//! `orbwatch_event::decoders::evtx_xml`, so both inputs give the same
//! events. Records the mapping does not cover are counted, not emitted.
//! A record the parser cannot read is a counted error with its reason; the
//! records around it are kept.

use std::io::{Cursor, Read};

use evtx::{EvtxParser, ParserSettings};
use orbwatch_event::Decoded;
use orbwatch_event::decoders::evtx_xml;

use crate::{Coverage, Emitted, Raw};

/// EVTX file header and chunk sizes.
const HEADER: usize = 4096;
const CHUNK: usize = 65536;
/// Files larger than this are refused rather than read into memory.
const MAX_FILE: u64 = 4 << 30;

/// Read an EVTX file. The file is read into memory (the format needs
/// random access to its chunks).
pub fn read_evtx<R: Read>(input: R, sink: &mut dyn FnMut(Emitted)) -> Coverage {
    let mut cov = Coverage::new("evtx");
    let mut buf = Vec::new();
    if let Err(e) = input.take(MAX_FILE).read_to_end(&mut buf) {
        cov.fatal = Some(format!("cannot read it: {e}"));
        return cov;
    }
    cov.bytes = buf.len() as u64;
    // A file cut inside a chunk: pad the chunk so the records before the
    // cut can still be read, and say so.
    let body = buf.len().saturating_sub(HEADER);
    let partial = body % CHUNK;
    let mut cut_chunk = None;
    if buf.len() > HEADER && partial != 0 {
        let chunk = body / CHUNK + 1;
        cut_chunk = Some((chunk - 1) as u64);
        let why = format!(
            "file ends {partial} bytes into chunk {chunk} of {CHUNK}: truncated EVTX; records before the cut were read"
        );
        cov.problem("truncated EVTX file (last chunk cut short)", || {
            format!("offset {}", HEADER + (chunk - 1) * CHUNK)
        });
        cov.fatal = Some(why);
        buf.resize(buf.len() + CHUNK - partial, 0);
    }
    let headers = chunk_headers(&buf);
    let settings = std::sync::Arc::new(ParserSettings::default().num_threads(1));
    let mut parser = match EvtxParser::from_read_seek(Cursor::new(buf)) {
        Ok(p) => p.with_configuration((*settings).clone()),
        Err(e) => {
            let why = format!("not a readable EVTX file: {e}");
            cov.problem(why.clone(), || "offset 0".into());
            cov.fatal = Some(why);
            return cov;
        }
    };
    // Chunk by chunk (rather than `records()`), so that records lost in a
    // damaged chunk can be told apart and counted: the chunk header says
    // how many records the chunk holds.
    let mut lost_in: Vec<(u64, u64)> = Vec::new();
    let mut seen_chunks = Vec::new();
    for chunk in parser.chunks() {
        let mut data = match chunk {
            Ok(d) => d,
            Err(e) => {
                let number = match &e {
                    evtx::err::EvtxError::FailedToParseChunk { chunk_id, .. } => Some(*chunk_id),
                    _ => None,
                };
                let why = first_line(&format!("unreadable EVTX chunk: {e}"));
                cov.records += 1;
                cov.problem(why, || match number {
                    Some(n) => format!("chunk {n}"),
                    None => "a chunk".into(),
                });
                if let Some(n) = number {
                    seen_chunks.push(n);
                    let expected = headers.get(n as usize).copied().flatten();
                    lost_in.push((n, expected.unwrap_or(1).saturating_sub(1)));
                }
                continue;
            }
        };
        let Some(number) = data.number else {
            continue;
        };
        seen_chunks.push(number);
        let expected = headers.get(number as usize).copied().flatten();
        let expected = expected.or_else(|| header_records(&data.header));
        let mut chunk = match data.parse(settings.clone()) {
            Ok(c) => c,
            Err(e) => {
                let why = first_line(&format!("unreadable EVTX chunk: {e}"));
                cov.records += 1;
                cov.problem(why, || format!("chunk {number}"));
                lost_in.push((number, expected.unwrap_or(1).saturating_sub(1)));
                continue;
            }
        };
        let mut read = 0u64;
        for r in chunk.iter() {
            cov.records += 1;
            read += 1;
            let r = match r.and_then(|r| r.into_xml()) {
                Ok(r) => r,
                Err(e) => {
                    let why = first_line(&format!("unreadable EVTX record: {e}"));
                    cov.problem(why, || format!("chunk {number}"));
                    continue;
                }
            };
            emit(&mut cov, r, sink);
        }
        if let Some(n) = expected
            && n > read
        {
            lost_in.push((number, n - read));
        }
    }
    // Chunks that `chunks()` did not even yield (an all-zero or unreadable
    // chunk between readable ones) but whose header we could read.
    for (number, h) in headers.iter().enumerate() {
        if let Some(n) = h
            && *n > 0
            && !seen_chunks.contains(&(number as u64))
        {
            lost_in.push((number as u64, *n));
        }
    }
    lost_in.retain(|(_, n)| *n > 0);
    lost_in.sort_unstable();
    for (cut, reason) in [
        (
            true,
            "records lost where the EVTX file is cut (count from the chunk header)",
        ),
        (
            false,
            "records lost in a damaged EVTX chunk (count from the chunk header)",
        ),
    ] {
        let here: Vec<&(u64, u64)> = lost_in
            .iter()
            .filter(|(c, _)| (Some(*c) == cut_chunk) == cut)
            .collect();
        let lost: u64 = here.iter().map(|(_, n)| n).sum();
        if lost == 0 {
            continue;
        }
        let chunks: Vec<String> = here
            .iter()
            .map(|(c, n)| format!("chunk {c}: {n}"))
            .collect();
        cov.records += lost;
        cov.errors += lost;
        let stat = cov.reasons.entry(reason.to_string()).or_default();
        if stat.count == 0 {
            stat.first = chunks.first().cloned().unwrap_or_default();
        }
        stat.count += lost;
        if cov.fatal.is_none() {
            cov.fatal = Some(format!(
                "damaged EVTX: {lost} record(s) could not be read ({}); the other records were read",
                chunks.join(", ")
            ));
        }
    }
    cov
}

/// Hand one record to the sink, counting it.
fn emit(cov: &mut Coverage, r: evtx::SerializedEvtxRecord<String>, sink: &mut dyn FnMut(Emitted)) {
    let xml = compact(&r.data);
    let id = r.event_record_id;
    if let Ok(w) = evtx_xml::parse_event_xml(&xml) {
        *cov.record_types.entry(w.event_id.to_string()).or_default() += 1;
    }
    match evtx_xml::map_event_xml(&xml) {
        Ok(Decoded::Event(ev)) => {
            if let Some(t) = ev.time {
                cov.see_time(t);
            }
            cov.events += 1;
            if ev.kind == orbwatch_event::EventKind::Connection {
                cov.flows += 1;
            }
            sink(Emitted {
                event: *ev,
                raw: Raw::Text(xml),
                record: id,
                // Records are addressed by id; the chunk is not exposed.
                offset: 0,
            });
        }
        Ok(Decoded::Skip) => {}
        Err(e) => cov.problem(e.0, || format!("record id {id}")),
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).to_string()
}

/// Records a chunk header says its chunk holds, when the header is sane.
fn header_records(h: &evtx::EvtxChunkHeader) -> Option<u64> {
    record_span(h.first_event_record_id, h.last_event_record_id)
}

/// `last - first + 1`, unless the range is reversed or more than a chunk
/// can hold (a record takes at least 24 bytes of the 65,024 after the
/// chunk header): then the header is damaged and says nothing.
fn record_span(first: u64, last: u64) -> Option<u64> {
    let n = last.checked_sub(first)?.checked_add(1)?;
    (n <= (CHUNK as u64 - 512) / 24).then_some(n)
}

/// The record count of each chunk from its header, read directly from the
/// bytes (`None` where the magic or the range is damaged). A header with a
/// damaged range is estimated from its neighbours' record ids.
fn chunk_headers(buf: &[u8]) -> Vec<Option<u64>> {
    let n = buf.len().saturating_sub(HEADER) / CHUNK;
    let ids: Vec<Option<(u64, u64)>> = (0..n)
        .map(|i| {
            let c = buf.get(HEADER + i * CHUNK..HEADER + i * CHUNK + 40)?;
            if &c[..8] != b"ElfChnk\0" {
                return None;
            }
            let u = |o: usize| c[o..o + 8].try_into().ok().map(u64::from_le_bytes);
            Some((u(24)?, u(32)?))
        })
        .collect();
    (0..n)
        .map(|i| {
            if let Some((first, last)) = ids[i]
                && let Some(n) = record_span(first, last)
            {
                return Some(n);
            }
            // Chunk i is damaged: the ids between its neighbours are its.
            let all_zero = buf
                .get(HEADER + i * CHUNK..HEADER + (i + 1) * CHUNK)
                .is_some_and(|c| c.iter().all(|b| *b == 0));
            if all_zero {
                return None;
            }
            let prev = i.checked_sub(1).and_then(|p| ids[p]).map(|(_, l)| l);
            let next = ids.get(i + 1).copied().flatten().map(|(f, _)| f);
            match (prev, next) {
                (Some(p), Some(nx)) if nx > p + 1 => record_span(p + 1, nx - 1),
                _ => None,
            }
        })
        .collect()
}

/// The record's XML on one line: whitespace between elements removed, so
/// the evidence is one line like the XML text format.
fn compact(xml: &str) -> String {
    let mut out = String::with_capacity(xml.len());
    for line in xml.lines() {
        let t = line.trim();
        if t.starts_with("<?xml") {
            continue;
        }
        out.push_str(t);
    }
    out
}
