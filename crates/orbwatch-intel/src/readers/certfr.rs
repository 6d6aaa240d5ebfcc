//! The CERT-FR (ANSSI) IOC CSV, as published with reports such as
//! CERTFR-2021-IOC-003 (the APT31 relay-router list).
//!
//! It is a flattened MISP export with 20 columns. The header keeps upstream
//! typos (`siganture.value`, `signature_component.metedata`); both spellings
//! are accepted. Each row is one attribute: the value and its MISP type come
//! from `signature_component.*`, the context (TLP, actors, reliability,
//! publication date) from `event.*`.
//!
//! `event.date` is the *publication* date and goes to
//! [`Indicator::published`]: it does not close the validity window, since
//! ANSSI asks to search logs from well before it.
//!
//! Reliability becomes a confidence (see [`reliability_confidence`]).

use csv::ByteRecord;

use super::csv_generic::{Rows, Typed, add_tag, fold, is_blank, norm_tlp, parse_typed, split_tags};
use super::plain::provenance;
use super::{FeedError, FeedFormat, ParsedFeed, ReadOptions};
use crate::model::{Indicator, Tags};
use crate::time::parse_timestamp;

/// Map a reliability word to a 0–100 confidence. `None` for "unknown" and
/// anything not recognised.
///
/// | text (case and accents ignored) | confidence |
/// |---|---|
/// | `Confirmée`, `Confirmed`, `Completely reliable`, `Confirmed by other sources`, admiralty `A` | 95 |
/// | `Bonne`, `Usually reliable`, `Probably true`, `B` | 80 |
/// | `Assez bonne`, `Fairly reliable`, `C` | 65 |
/// | `Possibly true` | 60 |
/// | `Moyenne` | 50 |
/// | `Not usually reliable`, `Doubtful`, `D` | 35 |
/// | `Faible` | 25 |
/// | `Unreliable`, `Improbable`, `E` | 15 |
/// | `Mauvaise`, `Très faible` | 10 |
/// | `Inconnue`, `Non évaluée`, `Cannot be judged`, `F` | none |
///
/// Admiralty codes such as `B2` use the source-reliability letter.
pub fn reliability_confidence(s: &str) -> Option<u8> {
    let t = fold(s);
    let t = t.trim_matches(|c: char| c == '.' || c.is_whitespace());
    let by_word = match t {
        "confirmee"
        | "confirme"
        | "confirmed"
        | "completely reliable"
        | "confirmed by other sources"
        | "certaine"
        | "certain" => Some(95),
        "bonne" | "usually reliable" | "probably true" | "probable" => Some(80),
        "assez bonne" | "fairly reliable" => Some(65),
        "possibly true" | "possible" => Some(60),
        "moyenne" | "medium" => Some(50),
        "not usually reliable" | "doubtful" | "douteuse" => Some(35),
        "faible" => Some(25),
        "unreliable" | "improbable" => Some(15),
        "mauvaise" | "tres faible" => Some(10),
        _ => None,
    };
    if by_word.is_some() {
        return by_word;
    }
    // Admiralty scale: a letter, optionally followed by the credibility digit.
    let b = t.as_bytes();
    if (b.len() == 1 || (b.len() == 2 && b[1].is_ascii_digit())) && !b.is_empty() {
        return match b[0] {
            b'a' => Some(95),
            b'b' => Some(80),
            b'c' => Some(65),
            b'd' => Some(35),
            b'e' => Some(15),
            _ => None,
        };
    }
    None
}

/// The CSV is recognised by its header (`event.uuid` … `signature_component.value`).
pub fn looks_like(head: &str) -> bool {
    let first = head
        .trim_start_matches('\u{feff}')
        .lines()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    first.contains("event.uuid")
        && first.contains("signature_component.value")
        && first.contains("signature_component.type")
}

/// Column positions, by (lower-case) header name.
#[derive(Default)]
struct Cols {
    event_uuid: Option<usize>,
    tlp: Option<usize>,
    title: Option<usize>,
    event_reliability: Option<usize>,
    event_description: Option<usize>,
    date: Option<usize>,
    apts: Option<usize>,
    event_metadata: Option<usize>,
    sig_uuid: Option<usize>,
    sig_type: Option<usize>,
    sig_description: Option<usize>,
    sig_value: Option<usize>,
    comp_uuid: Option<usize>,
    comp_type: Option<usize>,
    comp_reliability: Option<usize>,
    comp_metadata: Option<usize>,
    comp_value: Option<usize>,
    comp_description: Option<usize>,
}

impl Cols {
    fn from_header(h: &[String]) -> Self {
        let pos = |names: &[&str]| names.iter().find_map(|n| h.iter().position(|x| x == n));
        Cols {
            event_uuid: pos(&["event.uuid"]),
            tlp: pos(&["event.tlp"]),
            title: pos(&["event.title.desensitized", "event.title"]),
            event_reliability: pos(&["event.reliability"]),
            event_description: pos(&["event.description"]),
            date: pos(&["event.date"]),
            apts: pos(&["event.apts"]),
            event_metadata: pos(&["event.metadata"]),
            sig_uuid: pos(&["signature.uuid"]),
            sig_type: pos(&["signature.type"]),
            sig_description: pos(&["signature.description"]),
            sig_value: pos(&["siganture.value", "signature.value"]),
            comp_uuid: pos(&["signature_component.uuid"]),
            comp_type: pos(&["signature_component.type"]),
            comp_reliability: pos(&["signature_component.reliability"]),
            comp_metadata: pos(&[
                "signature_component.metedata",
                "signature_component.metadata",
            ]),
            comp_value: pos(&["signature_component.value"]),
            comp_description: pos(&["signature_component.description"]),
        }
    }
}

fn get(rec: &ByteRecord, i: Option<usize>) -> Option<String> {
    let s = String::from_utf8_lossy(rec.get(i?)?);
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// Parse the Python-style actor list: `['APT31']`, `["A", "B"]`, `[]`, or
/// a bare name.
pub(crate) fn parse_py_list(s: &str) -> Vec<String> {
    let t = s.trim();
    let t = t
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(t);
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in t.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == ',' => out.push(std::mem::take(&mut cur)),
            None => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|x| x.trim().to_string())
        .filter(|x| !x.is_empty())
        .collect()
}

/// Read a CERT-FR IOC CSV.
pub fn read(
    b: &[u8],
    file: &str,
    opts: &ReadOptions,
    out: &mut ParsedFeed,
) -> Result<(), FeedError> {
    read_from(b, file, opts, out)
}

/// [`read`] from a stream, record by record (a BOM is dropped from the
/// header's first name).
pub fn read_from(
    reader: impl std::io::BufRead,
    file: &str,
    opts: &ReadOptions,
    out: &mut ParsedFeed,
) -> Result<(), FeedError> {
    read_rows(reader, file, opts, out, None)
}

/// [`read_from`] handing on what it reads as it goes (see
/// [`super::csv_generic::read_stream`], which works the same way), so that
/// a CERT-FR CSV of any size is read in bounded memory.
pub fn read_stream(
    reader: impl std::io::BufRead,
    file: &str,
    opts: &ReadOptions,
    sink: super::StreamSink<'_>,
) -> Result<(), FeedError> {
    let mut out = ParsedFeed::default();
    let res = read_rows(reader, file, opts, &mut out, Some(&mut *sink));
    super::hand_on(&mut out, opts, sink);
    res
}

/// [`read_from`] and [`read_stream`]: with a sink, what `out` gathered is
/// handed on every [`super::STREAM_CHUNK`] indicators.
fn read_rows(
    reader: impl std::io::BufRead,
    file: &str,
    opts: &ReadOptions,
    out: &mut ParsedFeed,
    mut sink: Option<super::StreamSink<'_>>,
) -> Result<(), FeedError> {
    // The shared row reader rejects unreadable records with their line and
    // reports the physical rows an unbalanced quote swallows, as the other
    // CSV readers do.
    let mut rows = Rows::new(reader, b',', false, 1);
    let malformed = |reason: &str| FeedError::Malformed {
        file: file.to_string(),
        format: FeedFormat::Certfr,
        reason: reason.to_string(),
    };
    let Some((rec, _)) = rows.next(file, out) else {
        return Ok(());
    };
    let header: Vec<String> = rec
        .iter()
        .map(|f| {
            String::from_utf8_lossy(f)
                .trim()
                .trim_start_matches('\u{feff}')
                .to_ascii_lowercase()
        })
        .collect();
    let cols = Cols::from_header(&header);
    if cols.comp_value.is_none() && cols.sig_value.is_none() {
        return Err(malformed(
            "the header has no `signature_component.value` column; is this a CERT-FR IOC CSV? \
             Pass --format csv to read it as a generic CSV",
        ));
    }
    while let Some((rec, line)) = rows.next(file, out) {
        if is_blank(rec) {
            continue;
        }
        read_row(rec, &cols, header.len(), file, line, opts, out);
        if let Some(sink) = sink.as_deref_mut()
            && out.indicators.len() >= super::STREAM_CHUNK
        {
            super::hand_on(out, opts, sink);
        }
    }
    rows.finish().map_err(|source| FeedError::Io {
        file: file.to_string(),
        source,
    })
}

fn read_row(
    rec: &ByteRecord,
    cols: &Cols,
    n_header: usize,
    file: &str,
    line: u64,
    opts: &ReadOptions,
    out: &mut ParsedFeed,
) {
    let raw = || {
        rec.iter()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect::<Vec<_>>()
            .join(",")
    };
    if super::csv_generic::rejected_for_width(rec, n_header, out, file, line, raw) {
        return;
    }
    let Some(value) = get(rec, cols.comp_value).or_else(|| get(rec, cols.sig_value)) else {
        out.reject(file, line, "no value in signature_component.value", &raw());
        return;
    };
    let kind = get(rec, cols.comp_type).or_else(|| get(rec, cols.sig_type));
    let tv = match parse_typed(&value, kind.as_deref(), None) {
        Typed::Ok(tv) => tv,
        Typed::Skip(reason) => {
            out.skip(file, line, reason);
            return;
        }
        Typed::Reject(reason) => {
            out.reject(file, line, reason, &raw());
            return;
        }
    };

    let mut tags = Tags::default();
    for col in [cols.event_metadata, cols.comp_metadata] {
        if let Some(m) = get(rec, col) {
            for t in split_tags(&m) {
                add_tag(&mut tags, t);
            }
        }
    }
    if let Some(t) = get(rec, cols.tlp).and_then(|t| norm_tlp(&t)) {
        tags.tlp = Some(t);
    }
    if let Some(a) = get(rec, cols.apts) {
        for actor in parse_py_list(&a) {
            Tags::push_unique(&mut tags.actors, actor);
        }
    }
    if let Some(c) = get(rec, cols.title) {
        Tags::push_unique(&mut tags.campaigns, c);
    }
    if let Some(u) = get(rec, cols.event_uuid) {
        Tags::push_unique(&mut tags.other, format!("event={u}"));
    }
    for o in &tv.other {
        Tags::push_unique(&mut tags.other, o.as_str());
    }

    // Reliability: the attribute's, else the event's, else the tags'.
    let tag_reliability = tags.other.iter().find_map(|o| {
        let (k, v) = o.split_once('=')?;
        let k = k.to_ascii_lowercase();
        (k == "cossi:fiabilite" || k == "admiralty-scale:source-reliability").then(|| v.to_string())
    });
    let reliability = get(rec, cols.comp_reliability)
        .or_else(|| get(rec, cols.event_reliability))
        .or(tag_reliability);
    let confidence = reliability.as_deref().and_then(reliability_confidence);
    if let (Some(r), None) = (&reliability, confidence) {
        Tags::push_unique(&mut tags.other, format!("reliability={r}"));
    }

    let published = match get(rec, cols.date) {
        Some(d) => {
            let t = parse_timestamp(&d);
            if t.is_none() {
                Tags::push_unique(&mut tags.other, format!("event.date={d}"));
            }
            t
        }
        None => None,
    };
    let description = get(rec, cols.comp_description)
        .or_else(|| get(rec, cols.sig_description))
        .or_else(|| get(rec, cols.event_description))
        .or(tv.description);
    let record_id = get(rec, cols.comp_uuid).or_else(|| get(rec, cols.sig_uuid));

    for v in tv.values {
        let mut ind = Indicator::new(v, provenance(opts, file, line));
        ind.provenance.record_id = record_id.clone();
        ind.published = published;
        ind.confidence = confidence;
        ind.tags = tags.clone();
        ind.description = description.clone();
        out.indicators.push(ind);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn py_lists() {
        assert_eq!(parse_py_list("['APT31']"), vec!["APT31"]);
        assert_eq!(parse_py_list(r#"["A", "B"]"#), vec!["A", "B"]);
        assert!(parse_py_list("[]").is_empty());
        assert_eq!(parse_py_list("APT31"), vec!["APT31"]);
        assert_eq!(parse_py_list("['a, b', 'c']"), vec!["a, b", "c"]);
    }

    #[test]
    fn reliability() {
        assert_eq!(reliability_confidence("Bonne"), Some(80));
        assert_eq!(reliability_confidence("Confirmée"), Some(95));
        assert_eq!(reliability_confidence("Confirmee"), Some(95));
        assert_eq!(reliability_confidence("Assez bonne"), Some(65));
        assert_eq!(reliability_confidence("Moyenne"), Some(50));
        assert_eq!(reliability_confidence("Faible"), Some(25));
        assert_eq!(reliability_confidence("Inconnue"), None);
        assert_eq!(reliability_confidence("Usually reliable"), Some(80));
        assert_eq!(reliability_confidence("Not usually reliable"), Some(35));
        assert_eq!(reliability_confidence("B"), Some(80));
        assert_eq!(reliability_confidence("a1"), Some(95));
        assert_eq!(reliability_confidence("F"), None);
        assert_eq!(reliability_confidence(""), None);
    }
}
