//! CSV exports of STIX indicators: one row per indicator, with the STIX
//! `pattern` in a column.
//!
//! Threat-intel platforms export their indicators this way: OpenCTI's
//! CSV export writes every property of the entity as a column (sorted
//! names, `;` between fields, every field quoted, lists joined with `,`:
//! `createdBy`, `objectLabel`, `objectMarking`, `pattern`, `pattern_type`,
//! `valid_from`, `valid_until`, `confidence`, `x_opencti_score`…);
//! ServiceNow's and others' indicator templates have `Pattern`,
//! `Pattern Type`, `Valid from` columns. What makes such a row an
//! indicator is its pattern, read with the same parser and the same rules
//! as the STIX reader (`super::stix::pattern_values`). Every other cell
//! is metadata: a URL in `externalReferences`, a domain in `description`
//! or `name` is never an indicator.
//!
//! Columns (header names are matched without case, with spaces, `-` and
//! `.` read as `_`):
//!
//! | column | use |
//! |---|---|
//! | `pattern` (`stix_pattern`, `indicator_pattern`) | the values |
//! | `pattern_type` | a row whose pattern is not `stix` (yara, sigma…) is skipped |
//! | `standard_id`, else `id` (`stix_id`) | record id (provenance) |
//! | `name`, `description` | description |
//! | `valid_from`, `valid_until` (`valid_to`, `expiration`) | validity window |
//! | `first_seen`, `last_seen` (and the generic CSV names) | sighting dates |
//! | `confidence` (`confidence_score`, `confidence_level`) | confidence |
//! | `tlp`, `objectMarking`, `object_marking_refs`, `marking`, `markings` | TLP: `TLP:AMBER`, well-known marking ids; the most restrictive wins |
//! | `labels`, `objectLabel`, `indicator_types`, `tags` | roles and tags, as the STIX reader files `labels` |
//! | `createdBy`, `created_by_ref` | `source=<name>` (not when it is only an id) |
//! | `created` | published |
//! | `revoked` | `true` skips the row |
//! | `entity_type`, `type` | a row of another type (an observable, a malware…) is skipped |
//!
//! Lines are the file's lines (a quoted cell may span several). The
//! delimiter is the one of `,`, `;`, tab and `|` that splits the header
//! into a `pattern` column, unless `--delimiter` says otherwise.

use std::io::{BufRead, Read};

use csv::ByteRecord;

use super::csv_generic::{
    FIRST_SEEN, LAST_SEEN, Rows, head_lines, is_blank, norm_header, parse_confidence, raw_record,
    records, rejected_for_width, split_line, split_tags,
};
use super::plain::strip_bom;
use super::stix::{classify_labels, normalise_tlp, pattern_values, stricter_tlp, well_known_tlp};
use super::{FeedError, FeedFormat, ParsedFeed, ReadOptions, stix_pattern};
use crate::model::Tags;
use crate::time::parse_timestamp;

const PATTERN: &[&str] = &["pattern", "stix_pattern", "indicator_pattern"];
const PATTERN_TYPE: &[&str] = &["pattern_type", "patterntype"];
const ID: &[&str] = &["standard_id", "stix_id", "id", "indicator_id"];
const NAME: &[&str] = &["name", "title"];
const DESCRIPTION: &[&str] = &["description"];
const VALID_FROM: &[&str] = &["valid_from", "validfrom"];
const VALID_UNTIL: &[&str] = &[
    "valid_until",
    "validuntil",
    "valid_to",
    "expiration",
    "expiration_date",
];
const CONFIDENCE: &[&str] = &["confidence", "confidence_score", "confidence_level"];
const TLP: &[&str] = &[
    "tlp",
    "objectmarking",
    "object_marking",
    "object_marking_refs",
    "marking",
    "markings",
    "marking_definitions",
];
/// In this order, as the STIX reader takes `indicator_types` before
/// `labels`.
const LABELS: &[&str] = &[
    "indicator_types",
    "labels",
    "objectlabel",
    "object_label",
    "tags",
];
const CREATED_BY: &[&str] = &["createdby", "created_by", "created_by_ref", "author"];
const CREATED: &[&str] = &["created"];
const REVOKED: &[&str] = &["revoked"];
const ENTITY_TYPE: &[&str] = &["entity_type", "type"];

/// Does the head look like a CSV export of STIX indicators: a header with
/// a `pattern` column, and rows whose pattern cells are STIX patterns
/// (`[…]`)? Returns the delimiter.
pub fn looks_like(head: &str) -> Option<u8> {
    let lines = head_lines(head.trim_start_matches('\u{feff}'), 40);
    let first = lines.first()?;
    for delim in [',', ';', '\t', '|'] {
        let names: Vec<String> = split_line(first, delim)
            .iter()
            .map(|h| norm_header(h))
            .collect();
        if names.len() < 2 {
            continue;
        }
        let Some(col) = find(&names, PATTERN) else {
            continue;
        };
        let rows = records(&lines[1..], 10);
        let cells: Vec<String> = rows
            .iter()
            .filter_map(|r| split_line(r, delim).get(col).cloned())
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect();
        let stixy = cells.iter().filter(|c| looks_like_pattern(c)).count();
        let header_says = find(&names, PATTERN_TYPE).is_some()
            || find(&names, VALID_FROM).is_some()
            || find(&names, ID).is_some();
        // With rows, most pattern cells must be patterns (a cut-off last
        // row may not be); with a header only, the other STIX names decide.
        let ok = if cells.is_empty() {
            rows.is_empty() && header_says
        } else {
            stixy > 0 && stixy * 4 >= cells.len() * 3
        };
        if ok {
            return Some(delim as u8);
        }
    }
    None
}

/// `[object:path …]`, possibly after `(` or `NOT`, as patterns start.
fn looks_like_pattern(cell: &str) -> bool {
    let t = cell.trim_start_matches(|c: char| c == '(' || c.is_whitespace());
    t.starts_with('[') && t.contains(':')
}

fn find(headers: &[String], names: &[&str]) -> Option<usize> {
    names
        .iter()
        .find_map(|n| headers.iter().position(|h| h == n))
}

/// Resolved column positions.
struct Columns {
    pattern: usize,
    pattern_type: Option<usize>,
    id: Option<usize>,
    name: Option<usize>,
    description: Option<usize>,
    valid_from: Option<usize>,
    valid_until: Option<usize>,
    first_seen: Option<usize>,
    last_seen: Option<usize>,
    confidence: Option<usize>,
    tlp: Option<usize>,
    labels: Vec<usize>,
    created_by: Option<usize>,
    created: Option<usize>,
    revoked: Option<usize>,
    entity_type: Option<usize>,
}

impl Columns {
    fn from_header(h: &[String]) -> Option<Self> {
        Some(Self {
            pattern: find(h, PATTERN)?,
            pattern_type: find(h, PATTERN_TYPE),
            id: find(h, ID),
            name: find(h, NAME),
            description: find(h, DESCRIPTION),
            valid_from: find(h, VALID_FROM),
            valid_until: find(h, VALID_UNTIL),
            first_seen: find(h, FIRST_SEEN),
            last_seen: find(h, LAST_SEEN),
            confidence: find(h, CONFIDENCE),
            tlp: find(h, TLP),
            labels: LABELS
                .iter()
                .filter_map(|n| h.iter().position(|x| x == n))
                .collect(),
            created_by: find(h, CREATED_BY),
            created: find(h, CREATED),
            revoked: find(h, REVOKED),
            entity_type: find(h, ENTITY_TYPE),
        })
    }
}

/// One cell as trimmed text; empty and null-like cells are `None`.
fn cell(rec: &ByteRecord, i: Option<usize>) -> Option<String> {
    let b = rec.get(i?)?;
    let s = String::from_utf8_lossy(b);
    let t = s.trim();
    let null = t.is_empty()
        || t == "-"
        || t.eq_ignore_ascii_case("null")
        || t.eq_ignore_ascii_case("none")
        || t.eq_ignore_ascii_case("n/a");
    (!null).then(|| t.to_string())
}

/// Read a CSV export of STIX indicators.
pub fn read(
    b: &[u8],
    file: &str,
    opts: &ReadOptions,
    out: &mut ParsedFeed,
) -> Result<(), FeedError> {
    read_from(b, file, opts, out)
}

/// [`read`] from a stream, record by record; the delimiter is decided on
/// the first 64 KiB.
pub fn read_from(
    reader: impl BufRead,
    file: &str,
    opts: &ReadOptions,
    out: &mut ParsedFeed,
) -> Result<(), FeedError> {
    read_into(reader, file, opts, out, None)
}

/// [`read_from`], handing on full chunks to `sink` as it goes (see
/// [`super::read_lines_stream`]).
pub(crate) fn read_into(
    mut reader: impl BufRead,
    file: &str,
    opts: &ReadOptions,
    out: &mut ParsedFeed,
    sink: Option<super::StreamSink<'_>>,
) -> Result<(), FeedError> {
    let io = |source: std::io::Error| FeedError::Io {
        file: file.to_string(),
        source,
    };
    // Leading blank lines: skipped, but counted for line numbers.
    let mut first_line = 1u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).map_err(io)? == 0 {
            return Ok(());
        }
        let l = if first_line == 1 {
            strip_bom(&line)
        } else {
            &line[..]
        };
        if l.iter().all(|c| matches!(c, b'\r' | b'\n' | b' ' | b'\t')) {
            first_line += 1;
            continue;
        }
        let l = l.to_vec();
        return read_rows(
            std::io::Cursor::new(l).chain(reader),
            file,
            opts,
            out,
            first_line,
            sink,
        );
    }
}

fn read_rows(
    reader: impl BufRead,
    file: &str,
    opts: &ReadOptions,
    out: &mut ParsedFeed,
    first_line: u64,
    mut sink: Option<super::StreamSink<'_>>,
) -> Result<(), FeedError> {
    let io = |source: std::io::Error| FeedError::Io {
        file: file.to_string(),
        source,
    };
    let mut head_bytes = Vec::with_capacity(64 * 1024);
    let mut reader = reader;
    (&mut reader)
        .take(64 * 1024)
        .read_to_end(&mut head_bytes)
        .map_err(io)?;
    if head_bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let malformed = |reason: String| FeedError::Malformed {
        file: file.to_string(),
        format: FeedFormat::StixCsv,
        reason,
    };
    let head = String::from_utf8_lossy(&head_bytes);
    let delim = opts
        .csv
        .delimiter
        .or_else(|| looks_like(&head))
        .or_else(|| {
            // Detection needs pattern-like cells; a forced format only
            // needs the header to name a pattern column.
            let line = head.lines().next().unwrap_or("");
            [',', ';', '\t', '|'].into_iter().find_map(|d| {
                let names: Vec<String> =
                    split_line(line, d).iter().map(|h| norm_header(h)).collect();
                find(&names, PATTERN).map(|_| d as u8)
            })
        })
        .ok_or_else(|| {
            let line = head.lines().next().unwrap_or("");
            malformed(format!(
                "the header ({}) has no `pattern` column; a STIX CSV export has one STIX \
                 pattern per row. For a CSV of plain values use --format csv",
                crate::model::excerpt(line)
            ))
        })?;

    let mut rows = Rows::new(
        std::io::Cursor::new(&head_bytes[..]).chain(reader),
        delim,
        false,
        first_line,
    );
    let mut cols: Option<(Columns, usize)> = None;
    while let Some((rec, line)) = rows.next(file, out) {
        super::hand_on_full(out, opts, &mut sink);
        let Some((c, width)) = &cols else {
            let names: Vec<String> = rec
                .iter()
                .map(|f| norm_header(&String::from_utf8_lossy(f)))
                .collect();
            match Columns::from_header(&names) {
                Some(c) => cols = Some((c, names.len())),
                None => {
                    return Err(malformed(format!(
                        "the header ({}) has no `pattern` column; a STIX CSV export has one \
                         STIX pattern per row. For a CSV of plain values use --format csv",
                        names.join(", ")
                    )));
                }
            }
            continue;
        };
        if is_blank(rec) {
            continue;
        }
        let raw = || raw_record(rec, delim);
        if rejected_for_width(rec, *width, out, file, line, raw) {
            continue;
        }
        read_row(rec, c, file, line, opts, out, &raw);
    }
    rows.finish().map_err(io)
}

fn read_row(
    rec: &ByteRecord,
    c: &Columns,
    file: &str,
    line: u64,
    opts: &ReadOptions,
    out: &mut ParsedFeed,
    raw: &dyn Fn() -> String,
) {
    let id = cell(rec, c.id);
    let what = id.as_deref().unwrap_or("row");
    if let Some(t) = cell(rec, c.entity_type) {
        let norm = t.to_ascii_lowercase();
        if norm != "indicator" {
            out.skip(
                file,
                line,
                format!("a row of type {norm} is not an indicator (only patterns are read)"),
            );
            return;
        }
    }
    if cell(rec, c.revoked).is_some_and(|r| r.eq_ignore_ascii_case("true")) {
        out.skip(file, line, "revoked indicator");
        return;
    }
    let Some(pattern) = cell(rec, Some(c.pattern)) else {
        out.reject(
            file,
            line,
            format!("{what}: the pattern column is empty"),
            &raw(),
        );
        return;
    };
    if let Some(pt) = cell(rec, c.pattern_type)
        && !pt.eq_ignore_ascii_case("stix")
    {
        out.skip(
            file,
            line,
            format!(
                "pattern_type {} is not a STIX pattern",
                pt.to_ascii_lowercase()
            ),
        );
        return;
    }
    let parsed = match stix_pattern::parse(&pattern) {
        Ok(p) => p,
        Err(e) => {
            out.reject(
                file,
                line,
                format!("{what}: STIX pattern does not parse at {e}"),
                &pattern,
            );
            return;
        }
    };
    let mut dates = [None; 4];
    for (slot, (col, name)) in dates.iter_mut().zip([
        (c.valid_from, "valid_from"),
        (c.valid_until, "valid_until"),
        (c.first_seen, "first_seen"),
        (c.last_seen, "last_seen"),
    ]) {
        if let Some(s) = cell(rec, col) {
            match parse_timestamp(&s) {
                Some(t) => *slot = Some(t),
                None => {
                    out.reject(
                        file,
                        line,
                        format!(
                            "{what}: {name} `{}` is not a timestamp",
                            crate::model::excerpt(&s)
                        ),
                        &raw(),
                    );
                    return;
                }
            }
        }
    }
    let [valid_from, valid_until, first_seen, last_seen] = dates;
    if let (Some(f), Some(u)) = (valid_from, valid_until)
        && u < f
    {
        out.reject(
            file,
            line,
            format!("{what}: valid_until {u} is before valid_from {f}"),
            &raw(),
        );
        return;
    }
    let values = pattern_values(&parsed, what, &pattern, file, line, out);
    if values.is_empty() {
        return;
    }

    let mut tags = Tags::default();
    let mut labels = Vec::new();
    for &i in &c.labels {
        if let Some(v) = cell(rec, Some(i)) {
            labels.extend(
                split_tags(&v)
                    .into_iter()
                    .map(|s| s.trim_matches('"').to_string()),
            );
        }
    }
    let (label_tlp, no_ids) = classify_labels(&labels, &mut tags);
    if let Some(m) = cell(rec, c.tlp) {
        for item in split_tags(&m) {
            let level = well_known_tlp(item)
                .map(str::to_string)
                .or_else(|| normalise_tlp(item));
            if let Some(l) = level {
                stricter_tlp(&mut tags.tlp, l);
            }
        }
    }
    if tags.tlp.is_none() {
        tags.tlp = label_tlp;
    }
    if let Some(by) = cell(rec, c.created_by)
        && !super::stix::is_stix_id(&by)
    {
        Tags::push_unique(&mut tags.other, format!("source={by}"));
    }
    let mut confidence = cell(rec, c.confidence).and_then(|s| parse_confidence(&s));
    if no_ids {
        confidence = Some(super::misp::lower_for_no_ids(confidence));
        Tags::push_unique(&mut tags.other, "to_ids=false");
    }
    let description = match (cell(rec, c.name), cell(rec, c.description)) {
        (Some(n), Some(d)) if n != d => Some(format!("{n} — {d}")),
        (Some(n), _) => Some(n),
        (None, d) => d,
    }
    .map(|d| crate::model::excerpt(&d));
    let published = cell(rec, c.created).and_then(|s| parse_timestamp(&s));
    let shared = super::stix::PatternRecord {
        record_id: id,
        valid_from,
        valid_until,
        first_seen,
        last_seen,
        published,
        confidence,
        description,
        tags,
    };
    super::stix::push_pattern_values(values, &shared, file, line, opts, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_needs_patterns_in_the_pattern_column() {
        let opencti = "\"confidence\";\"id\";\"name\";\"pattern\";\"pattern_type\";\"valid_from\"\n\
\"75\";\"x\";\"a\";\"[ipv4-addr:value = '192.0.2.1']\";\"stix\";\"2024-01-01T00:00:00Z\"\n";
        assert_eq!(looks_like(opencti), Some(b';'));
        assert_eq!(
            looks_like(
                "Pattern,Pattern Type,Valid from\n\"[url:value = 'http://a.example/']\",stix,2024-01-01\n"
            ),
            Some(b',')
        );
        // A `pattern` column that holds regular expressions is not STIX.
        assert_eq!(looks_like("name,pattern\nssh,^sshd\\[\\d+\\]\n"), None);
        // A header alone: only with other STIX column names.
        assert_eq!(looks_like("id,pattern,valid_from\n"), Some(b','));
        assert_eq!(looks_like("name,pattern\n"), None);
    }
}
