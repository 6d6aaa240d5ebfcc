//! One decoder per log format, and detection of the format by content.
//!
//! A decoder is handed one record at a time (a line, for every text format)
//! and returns an [`Event`], says the record carries no event (a header or
//! comment), or rejects it with a reason. Rejections are counted and shown
//! with file and line by the caller: nothing is dropped silently.
//!
//! Adding a format: one module here, one entry in [`REGISTRY`].

use std::fmt;

use crate::model::Event;

pub mod cef;
pub mod evtx_xml;
pub mod leef;
pub mod mapped;
pub mod suricata_eve;
pub mod syslog;
pub mod text;
pub mod web_access;
pub mod web_error;
pub(crate) mod zeek_fields;
pub mod zeek_json;
pub mod zeek_tsv;

/// Why a record was rejected. Shown to the user next to file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

impl DecodeError {
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

/// One record of a log with a JSON object per line (Suricata EVE, Zeek
/// JSON), parsed as `T`; `None` for a blank line, which the decoders skip.
/// A line that does not start with `{` is refused with `not_object`
/// before serde is asked (its error on such a line says less), and a
/// line serde cannot read with `invalid` and serde's reason.
pub(crate) fn json_object_line<'a, T: serde::Deserialize<'a>>(
    record: &'a [u8],
    not_object: &'static str,
    invalid: &str,
) -> Result<Option<T>, DecodeError> {
    let record = record.trim_ascii();
    if record.is_empty() {
        return Ok(None);
    }
    if record.first() != Some(&b'{') {
        return Err(DecodeError::new(not_object));
    }
    serde_json::from_slice(record)
        .map(Some)
        .map_err(|e| DecodeError::new(format!("{invalid}: {e}")))
}

/// What a decoder made of one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A normalized event.
    Event(Box<Event>),
    /// The record is valid but carries no event: a header, comment, blank
    /// line, or a message type the decoder recognises and deliberately
    /// ignores. Counted as read, not as rejected.
    Skip,
}

/// Settings shared by all decoders.
#[derive(Debug, Clone, Default)]
pub struct DecoderConfig {
    /// Year for syslog lines that carry none (RFC 3164). The caller fills it
    /// from `--year` or from the file's modification time.
    pub year: Option<i16>,
    /// `--map field=column` for the generic CSV/JSON decoders. Fields are
    /// Event field names (`time`, `src_ip`, `dst_ip`, `src_port`, `dst_port`,
    /// `proto`, `action`, `user`, `domain`, `url`, `host`).
    pub map: Vec<(String, String)>,
    /// Zone of syslog timestamps that carry no offset (RFC 3164 `Jan  5
    /// 01:31:41`, or a date without zone in the envelope): devices write
    /// their local time. `None` reads them as UTC, as before. The CLI
    /// fills it from `--timezone` (default: the machine's zone).
    pub timezone: Option<jiff::tz::TimeZone>,
}

/// A stateful per-file decoder. State (a Zeek `#fields` header, a CSV header)
/// comes from earlier records, so a decoder is used for one file, in order.
/// `fork` gives a copy carrying the state, for decoding a later chunk of the
/// same file on another thread.
pub trait Decoder: Send {
    /// The format name as shown in coverage and evidence.
    fn name(&self) -> &'static str;
    /// Decode one record (a line without its terminator).
    fn decode(&mut self, record: &[u8]) -> Result<Decoded, DecodeError>;
    /// A copy with the same header state.
    fn fork(&self) -> Box<dyn Decoder>;
    /// Only the record's time, for callers that do not need the event (an
    /// IOC sweep reads the time of every record for coverage, but decodes
    /// only the records that mention an indicator). Must agree with the
    /// time `decode` gives, at least to the second. The default decodes the whole record; formats
    /// override it with a cheap parse of the time field. Header lines must
    /// still update the decoder's state.
    fn time_of(&mut self, record: &[u8]) -> Option<jiff::Timestamp> {
        match self.decode(record) {
            Ok(Decoded::Event(e)) => e.time,
            _ => None,
        }
    }
    /// Records dated so far with a year the decoder had to assume (syslog
    /// lines without one): the coverage explains the assumption only when
    /// it was made.
    fn assumed_years(&self) -> u64 {
        0
    }
}

/// A registered format: its name, a content sniffer and a constructor.
pub struct DecoderInfo {
    /// Name used by `--input-format` and in coverage.
    pub name: &'static str,
    /// Short description for `--help` and errors.
    pub description: &'static str,
    /// Score how well the first lines of a file fit this format: 0 = not at
    /// all, 100 = certain. Detection takes the highest score.
    pub sniff: fn(lines: &[&[u8]]) -> u8,
    /// Build a decoder for one file.
    pub make: fn(cfg: &DecoderConfig) -> Box<dyn Decoder>,
}

/// Every decoder, most specific first. `text` is the last resort and is
/// chosen when nothing else scores.
pub static REGISTRY: &[DecoderInfo] = &[
    zeek_tsv::INFO,
    zeek_json::INFO,
    suricata_eve::INFO,
    evtx_xml::INFO,
    cef::INFO,
    leef::INFO,
    syslog::INFO,
    web_access::INFO,
    web_error::INFO,
    mapped::CSV_INFO,
    mapped::JSON_INFO,
    text::INFO,
];

/// Look a decoder up by name (for `--input-format`).
pub fn by_name(name: &str) -> Option<&'static DecoderInfo> {
    REGISTRY.iter().find(|d| d.name.eq_ignore_ascii_case(name))
}

/// Names of all decoders, for error messages.
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|d| d.name).collect()
}

/// Pick the decoder that best fits the first lines of a file. Falls back to
/// the text decoder, which hunts any IP token.
pub fn detect(lines: &[&[u8]]) -> &'static DecoderInfo {
    let mut best: Option<(&'static DecoderInfo, u8)> = None;
    for d in REGISTRY {
        let s = (d.sniff)(lines);
        if s > 0 && best.is_none_or(|(_, b)| s > b) {
            best = Some((d, s));
        }
    }
    best.map(|(d, _)| d).unwrap_or(&text::INFO)
}

/// `bytes` as text if it is valid UTF-8.
///
/// Why not `std::str::from_utf8`: a syslog sweep validates every line
/// before parsing it, and the standard check was 3 % of a 1 GB hunt's
/// sweep threads; simdutf8 checks 32 bytes at a time (AVX2, SSE4.2 or
/// NEON, chosen at run time) and accepts and rejects exactly the same
/// inputs.
pub(crate) fn utf8(bytes: &[u8]) -> Option<&str> {
    simdutf8::basic::from_utf8(bytes).ok()
}

#[cfg(test)]
mod utf8_tests {
    use proptest::prelude::*;

    proptest! {
        /// The same verdict and text as the standard check, on arbitrary
        /// bytes and on text with bytes of it cut or changed (truncated
        /// sequences, overlong forms, surrogates are all among them).
        #[test]
        fn utf8_agrees_with_std(
            text in ".{0,300}",
            raw in proptest::collection::vec(any::<u8>(), 0..300),
            cut in any::<usize>(),
            byte in any::<u8>(),
        ) {
            let mut changed = text.clone().into_bytes();
            if !changed.is_empty() {
                let i = cut % changed.len();
                changed[i] = byte;
            }
            let mut short = text.clone().into_bytes();
            short.truncate(cut % (short.len() + 1));
            for b in [text.as_bytes(), &raw, &changed, &short] {
                prop_assert_eq!(super::utf8(b), std::str::from_utf8(b).ok());
            }
        }
    }

    #[test]
    fn utf8_edge_cases() {
        for b in [
            &b""[..],
            b"plain ascii line, longer than one 32-byte block of the check",
            b"\xc3\xa9t\xc3\xa9",
            b"\xed\xa0\x80",
            b"\xc0\xaf",
            b"\xf4\x90\x80\x80",
            b"ok then \xe2\x82",
        ] {
            assert_eq!(super::utf8(b), std::str::from_utf8(b).ok(), "{b:?}");
        }
    }
}
