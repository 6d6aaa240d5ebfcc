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
    if buf.len() > HEADER && partial != 0 {
        let chunk = body / CHUNK + 1;
        let why = format!(
            "file ends {partial} bytes into chunk {chunk} of {CHUNK}: truncated EVTX; records before the cut were read"
        );
        cov.problem("truncated EVTX file (last chunk cut short)", || {
            format!("offset {}", HEADER + (chunk - 1) * CHUNK)
        });
        cov.fatal = Some(why);
        buf.resize(buf.len() + CHUNK - partial, 0);
    }
    let settings = ParserSettings::default().num_threads(1);
    let mut parser = match EvtxParser::from_read_seek(Cursor::new(buf)) {
        Ok(p) => p.with_configuration(settings),
        Err(e) => {
            let why = format!("not a readable EVTX file: {e}");
            cov.problem(why.clone(), || "offset 0".into());
            cov.fatal = Some(why);
            return cov;
        }
    };
    for (i, r) in parser.records().enumerate() {
        cov.records += 1;
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                let why = format!("unreadable EVTX record: {e}");
                let why = why
                    .lines()
                    .next()
                    .unwrap_or("unreadable EVTX record")
                    .to_string();
                cov.problem(why, || format!("record {} in file order", i + 1));
                continue;
            }
        };
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
    cov
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
