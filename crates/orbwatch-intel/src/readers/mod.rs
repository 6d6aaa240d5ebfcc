//! Feed readers: one module per format, detected by content.
//!
//! Every reader turns bytes into [`Indicator`]s and never gives up on a whole
//! feed because of one bad entry: what it cannot parse goes to
//! [`ParsedFeed::rejected`] with its line and the reason, and what is valid in
//! the format but unmatchable (a YARA rule, a MISP comment) goes to
//! [`ParsedFeed::skipped`]. After a reader has run, [`finalize`] applies the
//! validity-window policy that is common to all formats.
//!
//! Adding a format means one new module here plus one line in
//! [`FeedFormat`], [`detect`] and [`read_feed`].

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::model::{Indicator, IndicatorKind, Rejected, Skipped};

pub mod certfr;
pub mod csv_generic;
pub mod freetext;
mod json_io;
pub mod misp;
pub mod plain;
pub mod stix;
pub mod stix_csv;
pub mod stix_pattern;
pub mod suricata;
pub mod zeek_intel;

/// The formats orbwatch reads. `--format` takes the kebab-case names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeedFormat {
    /// The CERT-FR (ANSSI) MISP-derived CSV, header typos included.
    Certfr,
    /// Comma-separated values with a header; columns mapped by name or flags.
    Csv,
    /// Tab-separated values with a header.
    Tsv,
    /// One indicator per line, `#`/`;`/`//` comments allowed.
    Plain,
    /// Prose and reports: defanged values and nearby dates are extracted.
    Freetext,
    /// STIX 2.0/2.1 bundle, or STIX objects one per line (JSON lines).
    Stix,
    /// A CSV export of STIX indicators: one row per indicator, its STIX
    /// pattern in a `pattern` column (OpenCTI and similar exports).
    StixCsv,
    /// A MISP event (or a list of events) as JSON.
    Misp,
    /// A MISP feed: `manifest.json` plus one JSON file per event. Handled by
    /// the caller, which loads the event files and hands each to [`misp`].
    MispFeed,
    /// Zeek Intel framework input (`#fields indicator indicator_type meta.*`).
    ZeekIntel,
    /// Suricata IP reputation file (`ip,category,score`).
    SuricataIprep,
    /// Suricata dataset file (one value per line; strings base64-encoded).
    SuricataDataset,
}

impl FeedFormat {
    pub const ALL: [FeedFormat; 12] = [
        Self::Certfr,
        Self::Csv,
        Self::Tsv,
        Self::Plain,
        Self::Freetext,
        Self::Stix,
        Self::StixCsv,
        Self::Misp,
        Self::MispFeed,
        Self::ZeekIntel,
        Self::SuricataIprep,
        Self::SuricataDataset,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Certfr => "certfr",
            Self::Csv => "csv",
            Self::Tsv => "tsv",
            Self::Plain => "plain",
            Self::Freetext => "freetext",
            Self::Stix => "stix",
            Self::StixCsv => "stix-csv",
            Self::Misp => "misp",
            Self::MispFeed => "misp-feed",
            Self::ZeekIntel => "zeek-intel",
            Self::SuricataIprep => "suricata-iprep",
            Self::SuricataDataset => "suricata-dataset",
        }
    }
}

impl fmt::Display for FeedFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FeedFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        for f in Self::ALL {
            if f.as_str() == s {
                return Ok(f);
            }
        }
        let alias = match s.as_str() {
            "cert-fr" | "anssi" => Some(Self::Certfr),
            "text" | "txt" | "report" => Some(Self::Freetext),
            "list" => Some(Self::Plain),
            "stix2" | "stix-jsonl" | "jsonl" => Some(Self::Stix),
            "opencti-csv" | "stix2-csv" => Some(Self::StixCsv),
            "zeek" => Some(Self::ZeekIntel),
            "iprep" => Some(Self::SuricataIprep),
            "dataset" => Some(Self::SuricataDataset),
            _ => None,
        };
        alias.ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|f| f.as_str()).collect();
            format!(
                "unknown feed format `{s}`; valid formats: {}",
                names.join(", ")
            )
        })
    }
}

/// Column mapping for CSV/TSV feeds. Columns are named by header or by
/// 1-based index. Unset columns are guessed from common header names.
#[derive(Debug, Clone, Default)]
pub struct CsvMapping {
    pub value: Option<String>,
    pub kind: Option<String>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
    pub confidence: Option<String>,
    pub tags: Option<String>,
    pub description: Option<String>,
    /// Override the delimiter (default: `,` for CSV, tab for TSV).
    pub delimiter: Option<u8>,
    /// The file has no header row; columns must then be given by index.
    pub no_header: bool,
}

/// Options that apply to every reader.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Name the indicators are filed under (provenance).
    pub feed_name: String,
    /// Widening applied to first/last seen when a feed gives no validity window.
    pub grace: SignedDuration,
    /// Window start for entries that carry no dates at all.
    pub valid_from: Option<Timestamp>,
    /// Window end for entries that carry no dates at all.
    pub valid_until: Option<Timestamp>,
    /// Lifetime for entries that carry no dates: the window ends this long
    /// after its start (or after `now` when the start is open).
    pub ttl: Option<SignedDuration>,
    /// Confidence to use instead of whatever the feed says.
    pub confidence: Option<u8>,
    /// The import time, used with `ttl`.
    pub now: Timestamp,
    pub csv: CsvMapping,
    /// The largest feed [`read_feed_from`] reads whole: a JSON document
    /// (STIX bundle, MISP event) from a stream is read into memory before
    /// it is parsed, so this bounds the memory that takes. Line-oriented
    /// formats are streamed and not bound by it, nor are files that can be
    /// opened twice ([`stix::read_bundle_stream`],
    /// [`misp::read_event_stream`], what `feed add` and `hunt --feed` use).
    /// Default [`DEFAULT_MAX_DOCUMENT`].
    pub max_document_bytes: u64,
}

/// 1 GiB: the default of [`ReadOptions::max_document_bytes`].
pub const DEFAULT_MAX_DOCUMENT: u64 = 1 << 30;

/// How much of a feed detection looks at.
pub const HEAD_BYTES: usize = 64 * 1024;

/// How much of a feed whose head names no format is read before it is
/// refused: prose without a single indicator in its first MiB, or JSON
/// whose first MiB shows neither STIX nor MISP, is not read to its end (a
/// 1.5 GB junk file used to take a minute and 6 GB before it was refused).
pub const PROBE_BYTES: usize = 1 << 20;

impl ReadOptions {
    pub fn new(feed_name: impl Into<String>) -> Self {
        Self {
            feed_name: feed_name.into(),
            grace: SignedDuration::from_hours(7 * 24),
            valid_from: None,
            valid_until: None,
            ttl: None,
            confidence: None,
            now: Timestamp::now(),
            csv: CsvMapping::default(),
            max_document_bytes: DEFAULT_MAX_DOCUMENT,
        }
    }
}

/// What a reader produced from one feed file.
#[derive(Debug, Clone, Default)]
pub struct ParsedFeed {
    pub format: Option<FeedFormat>,
    pub indicators: Vec<Indicator>,
    pub rejected: Vec<Rejected>,
    pub skipped: Vec<Skipped>,
}

impl ParsedFeed {
    /// Count indicators by coarse kind; every kind is present, possibly 0.
    pub fn counts(&self) -> BTreeMap<IndicatorKind, u64> {
        let mut m: BTreeMap<IndicatorKind, u64> =
            IndicatorKind::ALL.iter().map(|k| (*k, 0)).collect();
        for i in &self.indicators {
            *m.entry(i.value.kind()).or_default() += 1;
        }
        m
    }

    /// Record a rejected entry.
    pub fn reject(&mut self, file: &str, line: u64, reason: impl Into<String>, raw: &str) {
        self.rejected.push(Rejected {
            file: file.to_string(),
            line,
            reason: reason.into(),
            raw: crate::model::excerpt(raw),
        });
    }

    /// Record a skipped entry.
    pub fn skip(&mut self, file: &str, line: u64, reason: impl Into<String>) {
        self.skipped.push(Skipped {
            file: file.to_string(),
            line,
            reason: reason.into(),
        });
    }
}

/// Errors that stop a whole feed from loading (as opposed to single entries).
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error(
        "{file}: not a feed format orbwatch knows (tried {tried}); pass --format to say which it is"
    )]
    UnknownFormat { file: String, tried: String },
    /// The file has structure (JSON, XML, a table with a header) that no
    /// reader recognises. It is not read as free text: that would turn
    /// every domain and URL of every field into an indicator.
    #[error(
        "{file}: looks like {what}, and no feed reader recognises it (tried {tried}). It was not \
         read as free text, which would make every domain and URL of every field an indicator. \
         {hint}"
    )]
    Unrecognised {
        file: String,
        /// What the file looks like (`JSON with the keys …`).
        what: String,
        tried: String,
        /// What to do about it.
        hint: String,
    },
    #[error("{file}: reading the feed failed: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// A JSON document is parsed whole; this bounds the memory that takes.
    #[error(
        "{file}: the feed is larger than {limit} bytes, the most orbwatch reads as one JSON \
         document (STIX bundle, MISP event); split it, or raise the limit with \
         ORBWATCH_MAX_FEED_DOCUMENT=BYTES"
    )]
    TooLarge { file: String, limit: u64 },
    #[error("{file}: looks like binary data, not a feed")]
    Binary { file: String },
    #[error("{file}: {format} feed could not be read: {reason}")]
    Malformed {
        file: String,
        format: FeedFormat,
        reason: String,
    },
}

/// Guess the format of a feed from its first bytes. Returns `None` when
/// nothing specific matches; [`read_feed`] then looks further (the whole
/// first JSON value) and either refuses a structured file or reads prose
/// as free text.
pub fn detect(head: &[u8]) -> Option<FeedFormat> {
    let text = String::from_utf8_lossy(head);
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if t.starts_with('{') || t.starts_with('[') {
        if stix::looks_like(t) {
            return Some(FeedFormat::Stix);
        }
        if misp::looks_like(t) {
            return Some(FeedFormat::Misp);
        }
        return None;
    }
    if stix_csv::looks_like(t).is_some() {
        return Some(FeedFormat::StixCsv);
    }
    if certfr::looks_like(t) {
        return Some(FeedFormat::Certfr);
    }
    if zeek_intel::looks_like(t) {
        return Some(FeedFormat::ZeekIntel);
    }
    if suricata::looks_like_iprep(t) {
        return Some(FeedFormat::SuricataIprep);
    }
    if let Some(f) = csv_generic::looks_like(t) {
        return Some(f);
    }
    if plain::looks_like(t) {
        return Some(FeedFormat::Plain);
    }
    None
}

/// Read one feed file. `format` overrides detection. The result has the
/// window policy applied (see [`finalize`]).
pub fn read_feed(
    bytes: &[u8],
    file: &str,
    format: Option<FeedFormat>,
    opts: &ReadOptions,
) -> Result<ParsedFeed, FeedError> {
    let head = &bytes[..bytes.len().min(64 * 1024)];
    if format.is_none() && looks_binary(head) {
        return Err(FeedError::Binary { file: file.into() });
    }
    let detected = match format {
        Some(f) => Some(f),
        None => detect_or_refuse(bytes, head, file)?,
    };
    let fmt = detected.unwrap_or(FeedFormat::Freetext);
    let mut out = ParsedFeed {
        format: Some(fmt),
        ..Default::default()
    };
    match fmt {
        FeedFormat::Stix => stix::read(bytes, file, opts, &mut out)?,
        FeedFormat::Misp | FeedFormat::MispFeed => {
            misp::read_event_file(bytes, file, opts, &mut out)?
        }
        FeedFormat::Plain => plain::read(bytes, file, opts, &mut out),
        _ => read_lines(fmt, bytes, file, opts, &mut out)?,
    }
    if detected.is_none()
        && out.indicators.is_empty()
        && !String::from_utf8_lossy(bytes).trim().is_empty()
    {
        let tried: Vec<&str> = FeedFormat::ALL
            .iter()
            .filter(|f| **f != FeedFormat::MispFeed)
            .map(|f| f.as_str())
            .collect();
        return Err(FeedError::UnknownFormat {
            file: file.into(),
            tried: tried.join(", "),
        });
    }
    finalize(&mut out, opts);
    Ok(out)
}

/// Read one feed from a stream, like [`read_feed`], in memory bounded by
/// the indicators kept rather than by the size of the file:
///
/// - detection (and the binary check) looks at the first [`HEAD_BYTES`]
///   only;
/// - line-oriented formats (plain lists, free text, CSV and TSV, CERT-FR,
///   STIX CSV, Zeek Intel, Suricata) are read line by line or record by
///   record;
/// - JSON formats (STIX, MISP), and a file whose head looks like JSON
///   without saying which, are read whole and parsed as one document, up
///   to [`ReadOptions::max_document_bytes`]; a larger one is refused with
///   [`FeedError::TooLarge`] once that many bytes have been read.
pub fn read_feed_from(
    mut reader: impl std::io::BufRead,
    file: &str,
    format: Option<FeedFormat>,
    opts: &ReadOptions,
) -> Result<ParsedFeed, FeedError> {
    use std::io::Read;
    let io = |source: std::io::Error| FeedError::Io {
        file: file.to_string(),
        source,
    };
    let mut head = Vec::with_capacity(HEAD_BYTES);
    (&mut reader)
        .take(HEAD_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(io)?;
    if format.is_none() && looks_binary(&head) {
        return Err(FeedError::Binary { file: file.into() });
    }
    let json_head = {
        let text = String::from_utf8_lossy(&head);
        let t = text.trim_start_matches('\u{feff}').trim_start();
        t.starts_with('{') || t.starts_with('[')
    };
    let whole = match format {
        Some(f) => matches!(
            f,
            FeedFormat::Stix | FeedFormat::Misp | FeedFormat::MispFeed
        ),
        None => json_head,
    };
    if whole {
        let limit = opts.max_document_bytes;
        let mut bytes = head;
        if format.is_none() && detect(&bytes).is_none() {
            // Neither STIX nor MISP in the head: look at the first MiB
            // before reading (up to a GiB of) the rest.
            let probe = (PROBE_BYTES as u64).min(limit.saturating_add(1));
            (&mut reader)
                .take(probe.saturating_sub(bytes.len() as u64))
                .read_to_end(&mut bytes)
                .map_err(io)?;
            if bytes.len() as u64 <= limit
                && detect(&bytes).is_none()
                && !reader.fill_buf().map_err(io)?.is_empty()
            {
                return Err(FeedError::Unrecognised {
                    file: file.into(),
                    what: "JSON larger than 1 MiB whose first MiB shows neither STIX nor MISP"
                        .into(),
                    tried: tried_formats(),
                    hint: "If it is a STIX bundle or a MISP event, say so with --format stix or \
                           --format misp (`hunt`: --feed-format)."
                        .into(),
                });
            }
        }
        (&mut reader)
            .take(limit.saturating_add(1).saturating_sub(bytes.len() as u64))
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > limit {
            return Err(FeedError::TooLarge {
                file: file.into(),
                limit,
            });
        }
        return read_feed(&bytes, file, format, opts);
    }
    // Not JSON: detection needs the head only.
    let detected = match format {
        Some(f) => Some(f),
        None => detect_or_refuse(&head, &head, file)?,
    };
    let fmt = detected.unwrap_or(FeedFormat::Freetext);
    let mut out = ParsedFeed {
        format: Some(fmt),
        ..Default::default()
    };
    if detected.is_none() {
        // Prose: a feed written as a report names an indicator early. A
        // first MiB with none, followed by more, is refused there.
        (&mut reader)
            .take((PROBE_BYTES - head.len().min(PROBE_BYTES)) as u64)
            .read_to_end(&mut head)
            .map_err(io)?;
        let mut probe = ParsedFeed::default();
        freetext::read_from(&head[..], file, opts, &mut probe).map_err(io)?;
        if probe.indicators.is_empty() && !reader.fill_buf().map_err(io)?.is_empty() {
            return Err(FeedError::UnknownFormat {
                file: file.into(),
                tried: format!(
                    "{}; read as free text, its first MiB holds no indicator, so the rest was \
                     not read (--format freetext reads all of it)",
                    tried_formats()
                ),
            });
        }
    }
    read_lines(
        fmt,
        std::io::Cursor::new(head).chain(reader),
        file,
        opts,
        &mut out,
    )?;
    // Without a detected format the head was not blank (a blank head is
    // an empty plain list), so finding nothing means it is no feed.
    if detected.is_none() && out.indicators.is_empty() {
        return Err(FeedError::UnknownFormat {
            file: file.into(),
            tried: FeedFormat::ALL
                .iter()
                .filter(|f| **f != FeedFormat::MispFeed)
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    finalize(&mut out, opts);
    Ok(out)
}

/// How many indicators a streaming reader gathers before it hands them on
/// ([`read_lines_stream`]): enough that handing on costs nothing per row,
/// few enough (a few MB) that a feed of any size is read in bounded
/// memory.
pub const STREAM_CHUNK: usize = 4096;

/// Where a streaming reader hands what it read: indicators, rejections
/// and skips, in the order of the file. The sink takes them (drains the
/// vectors); what it leaves is dropped.
pub type StreamSink<'a> = &'a mut dyn FnMut(&mut ParsedFeed);

/// Apply the window policy ([`finalize`]) to what `out` gathered, hand it
/// to `sink`, and clear it for the next chunk.
pub(crate) fn hand_on(out: &mut ParsedFeed, opts: &ReadOptions, sink: StreamSink<'_>) {
    if out.indicators.is_empty() && out.rejected.is_empty() && out.skipped.is_empty() {
        return;
    }
    finalize(out, opts);
    sink(out);
    out.indicators.clear();
    out.rejected.clear();
    out.skipped.clear();
}

/// For a reader that can stream: hand on what `out` holds once it is a
/// full chunk. Called between lines, so a chunk never splits one.
pub(crate) fn hand_on_full(
    out: &mut ParsedFeed,
    opts: &ReadOptions,
    sink: &mut Option<StreamSink<'_>>,
) {
    if let Some(sink) = sink.as_deref_mut()
        && out.indicators.len() >= STREAM_CHUNK
    {
        hand_on(out, opts, sink);
    }
}

/// Run a line reader that fills a [`ParsedFeed`] as a stream: it hands on
/// full chunks as it goes ([`hand_on_full`]), and what is left when it
/// stops (at the end, or at an error) is handed on here.
pub(crate) fn stream_lines<E>(
    opts: &ReadOptions,
    sink: StreamSink<'_>,
    read: impl FnOnce(&mut ParsedFeed, Option<StreamSink<'_>>) -> Result<(), E>,
) -> Result<(), E> {
    let mut out = ParsedFeed::default();
    let res = read(&mut out, Some(&mut *sink));
    hand_on(&mut out, opts, sink);
    res
}

/// Whether [`read_lines_stream`] reads `fmt` as a stream: every
/// line-oriented format (plain lists also have [`plain::read_stream`]).
/// The JSON formats have their own streams (MISP events and STIX
/// bundles).
pub fn streams_lines(fmt: FeedFormat) -> bool {
    matches!(
        fmt,
        FeedFormat::Csv
            | FeedFormat::Tsv
            | FeedFormat::Certfr
            | FeedFormat::ZeekIntel
            | FeedFormat::SuricataIprep
            | FeedFormat::SuricataDataset
            | FeedFormat::StixCsv
            | FeedFormat::Freetext
    )
}

/// Read a feed of a format [`streams_lines`] accepts as a stream, handing
/// what it reads to `sink` every [`STREAM_CHUNK`] indicators, with the
/// window policy applied: memory is that of a chunk and of one record,
/// whatever the size of the file. The format must be known (given or
/// detected on the head, as [`read_feed_from`] does). Other formats are
/// an error naming the format, never a silent whole read.
pub fn read_lines_stream(
    fmt: FeedFormat,
    r: impl std::io::BufRead,
    file: &str,
    opts: &ReadOptions,
    sink: StreamSink<'_>,
) -> Result<(), FeedError> {
    match fmt {
        FeedFormat::Certfr => certfr::read_stream(r, file, opts, sink),
        FeedFormat::Csv => csv_generic::read_stream(r, file, opts, b',', sink),
        FeedFormat::Tsv => csv_generic::read_stream(r, file, opts, b'\t', sink),
        FeedFormat::StixCsv => stream_lines(opts, sink, |out, s| {
            stix_csv::read_into(r, file, opts, out, s)
        }),
        line_by_line @ (FeedFormat::ZeekIntel
        | FeedFormat::SuricataIprep
        | FeedFormat::SuricataDataset
        | FeedFormat::Freetext) => stream_lines(opts, sink, |out, s| match line_by_line {
            FeedFormat::ZeekIntel => zeek_intel::read_into(r, file, opts, out, s),
            FeedFormat::SuricataIprep => suricata::read_iprep_into(r, file, opts, out, s),
            FeedFormat::SuricataDataset => suricata::read_dataset_into(r, file, opts, out, s),
            _ => freetext::read_into(r, file, opts, out, s),
        })
        .map_err(|source| FeedError::Io {
            file: file.to_string(),
            source,
        }),
        other => Err(FeedError::Malformed {
            file: file.to_string(),
            format: other,
            reason: format!("the {other} reader does not stream (a bug: please report it)"),
        }),
    }
}

/// The line-oriented readers, from a stream. A JSON format (which these
/// do not stream) is read whole here, bounded as in [`read_feed_from`].
fn read_lines(
    fmt: FeedFormat,
    mut r: impl std::io::BufRead,
    file: &str,
    opts: &ReadOptions,
    out: &mut ParsedFeed,
) -> Result<(), FeedError> {
    let io = |source: std::io::Error| FeedError::Io {
        file: file.to_string(),
        source,
    };
    match fmt {
        FeedFormat::Certfr => certfr::read_from(r, file, opts, out)?,
        FeedFormat::Csv => csv_generic::read_from(r, file, opts, b',', out)?,
        FeedFormat::Tsv => csv_generic::read_from(r, file, opts, b'\t', out)?,
        FeedFormat::Plain => plain::read_from(r, file, opts, out).map_err(io)?,
        FeedFormat::Freetext => freetext::read_from(r, file, opts, out).map_err(io)?,
        FeedFormat::StixCsv => stix_csv::read_from(r, file, opts, out)?,
        FeedFormat::ZeekIntel => zeek_intel::read_from(r, file, opts, out).map_err(io)?,
        FeedFormat::SuricataIprep => suricata::read_iprep_from(r, file, opts, out).map_err(io)?,
        FeedFormat::SuricataDataset => {
            suricata::read_dataset_from(r, file, opts, out).map_err(io)?
        }
        FeedFormat::Stix | FeedFormat::Misp | FeedFormat::MispFeed => {
            use std::io::Read;
            let limit = opts.max_document_bytes;
            let mut bytes = Vec::new();
            (&mut r)
                .take(limit.saturating_add(1))
                .read_to_end(&mut bytes)
                .map_err(io)?;
            if bytes.len() as u64 > limit {
                return Err(FeedError::TooLarge {
                    file: file.into(),
                    limit,
                });
            }
            match fmt {
                FeedFormat::Stix => stix::read(&bytes, file, opts, out)?,
                _ => misp::read_event_file(&bytes, file, opts, out)?,
            }
        }
    }
    Ok(())
}

/// The formats a structured file was tried against, for messages.
fn tried_formats() -> String {
    FeedFormat::ALL
        .iter()
        .filter(|f| !matches!(f, FeedFormat::MispFeed | FeedFormat::Freetext))
        .map(|f| f.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Detection for [`read_feed`] without `--format`: [`detect`] on the head;
/// for JSON the whole first value when the head does not decide (a STIX
/// JSON lines export may open with one long object); a file with nothing
/// but blanks is an empty list. `Ok(None)` means prose, to be read as free
/// text. A structured file that no reader takes (JSON that is neither STIX
/// nor MISP, XML, HTML, a table with a header) is an error that says what
/// it looks like and which options name its format.
fn detect_or_refuse(
    bytes: &[u8],
    head: &[u8],
    file: &str,
) -> Result<Option<FeedFormat>, FeedError> {
    if let Some(f) = detect(head) {
        return Ok(Some(f));
    }
    let text = String::from_utf8_lossy(head);
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if t.is_empty() {
        return Ok(Some(FeedFormat::Plain));
    }
    let refuse = |what: String, hint: &str| FeedError::Unrecognised {
        file: file.to_string(),
        what,
        tried: tried_formats(),
        hint: hint.to_string(),
    };
    const NAME_IT: &str = "If it is one of those formats, name it with --format \
        (`hunt`: --feed-format); --format freetext extracts every value from all of the text.";
    if t.starts_with('{') || t.starts_with('[') {
        return match stix::probe_json(bytes) {
            stix::JsonProbe::Stix => Ok(Some(FeedFormat::Stix)),
            stix::JsonProbe::Misp => Ok(Some(FeedFormat::Misp)),
            stix::JsonProbe::Other(what) => Err(refuse(
                what,
                &format!(
                    "orbwatch reads JSON as STIX 2.x (a bundle, or one object per line) or as a \
                     MISP event; convert the file to one of them, or export the values as a CSV \
                     with a header and read it with --format csv --value-column NAME. {NAME_IT}"
                ),
            )),
            stix::JsonProbe::Invalid(e) => Err(refuse(
                format!("the file starts like JSON but is not valid JSON ({e})"),
                &format!("fix or re-export the file. {NAME_IT}"),
            )),
        };
    }
    let lower = t.get(..t.len().min(256)).unwrap_or(t).to_ascii_lowercase();
    if lower.starts_with("<!doctype html") || lower.starts_with("<html") {
        return Err(refuse(
            "an HTML page".into(),
            &format!("save the report as text, or give its IOC list as a file. {NAME_IT}"),
        ));
    }
    if lower.starts_with("<?xml") || (lower.starts_with('<') && lower.contains('>')) {
        return Err(refuse(
            "an XML document (STIX 1.x, OpenIOC and other XML formats are not read)".into(),
            &format!("convert it to STIX 2.1 or export the values as a list. {NAME_IT}"),
        ));
    }
    if let Some(shape) = csv_generic::table_shape(t) {
        let delim = match shape.delimiter {
            '\t' => "--format tsv".to_string(),
            ',' => "--format csv".to_string(),
            d => format!("--format csv --delimiter '{d}'"),
        };
        return Err(refuse(
            format!(
                "{}, where no column name says it holds indicators",
                shape.describe()
            ),
            &format!(
                "Name the column that holds them: `feed add FILE {delim} --value-column NAME` \
                 (and --type-column, --first-seen-column… for the others). {NAME_IT}"
            ),
        ));
    }
    Ok(None)
}

/// A NUL byte or mostly non-text in the first block means binary.
fn looks_binary(head: &[u8]) -> bool {
    if head.contains(&0) {
        return true;
    }
    let bad = head
        .iter()
        .filter(|b| **b < 0x09 || (**b > 0x0d && **b < 0x20))
        .count();
    !head.is_empty() && bad * 10 > head.len()
}

/// Apply the window policy common to all formats, and the confidence
/// override.
///
/// - An explicit window from the feed is kept as is.
/// - Otherwise first/last seen, widened by `grace`, become the window: a
///   sighting date says the indicator was live then, and a little around it.
/// - Otherwise the window comes from `--valid-from`, `--valid-until` and
///   `--ttl`, and is open where none is given.
pub fn finalize(feed: &mut ParsedFeed, opts: &ReadOptions) {
    for ind in &mut feed.indicators {
        apply_window_policy(ind, opts);
    }
}

/// The policy of [`finalize`] for one indicator (for streaming readers).
pub fn apply_window_policy(ind: &mut Indicator, opts: &ReadOptions) {
    if let Some(c) = opts.confidence {
        ind.confidence = Some(c.min(100));
    }
    if ind.valid_from.is_some() || ind.valid_until.is_some() {
        return;
    }
    if ind.first_seen.is_some() || ind.last_seen.is_some() {
        let first = ind.first_seen.or(ind.last_seen);
        let last = ind.last_seen.or(ind.first_seen);
        ind.valid_from = first.and_then(|t| t.checked_sub(opts.grace).ok());
        ind.valid_until = last.and_then(|t| t.checked_add(opts.grace).ok());
        return;
    }
    ind.valid_from = opts.valid_from;
    ind.valid_until = opts.valid_until;
    if let Some(ttl) = opts.ttl {
        let start = opts.valid_from.unwrap_or(opts.now);
        let end = start.checked_add(ttl).ok();
        ind.valid_until = match (ind.valid_until, end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}
