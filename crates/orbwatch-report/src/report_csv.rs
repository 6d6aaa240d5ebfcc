//! CSV for spreadsheets: one row per finding, with its triage state.
//!
//! The first columns are those of `hunt --format csv`
//! ([`crate::findings::CSV_COLUMNS`], including severity, score and
//! reasons of behaviour findings); the evidence total and triage columns
//! follow, so a sheet built on the hunt output keeps working.

use std::io::{self, Write};

use orbwatch_detect::most_serious_first;

use crate::findings::{CSV_COLUMNS, csv_row, csv_safe_cell, opt};
use crate::model::ReportFinding;

/// Columns added after [`CSV_COLUMNS`].
pub const EXTRA_COLUMNS: [&str; 5] = [
    "evidence_total",
    "status",
    "triage_note",
    "triage_author",
    "triage_at",
];

/// Write one row per finding, most serious first, after a header row (also
/// when there are no findings, so the file is never empty).
pub fn write_report_csv<'a>(
    findings: impl IntoIterator<Item = &'a ReportFinding>,
    w: &mut dyn Write,
) -> io::Result<()> {
    let mut c = csv::Writer::from_writer(w);
    c.write_record(CSV_COLUMNS.iter().chain(EXTRA_COLUMNS.iter()))?;
    let mut findings: Vec<&ReportFinding> = findings.into_iter().collect();
    findings.sort_by(|a, b| most_serious_first(&a.finding, &b.finding));
    for rf in findings {
        let f = &rf.finding;
        let t = rf.triage.as_ref();
        let mut row = csv_row(f);
        row.extend([
            f.evidence_total.to_string(),
            rf.status().to_string(),
            opt(&t.and_then(|t| t.note.clone())),
            opt(&t.and_then(|t| t.author.clone())),
            opt(&t.and_then(|t| t.at)),
        ]);
        // Log text and triage notes reach the cells (see `csv_safe_cell`).
        c.write_record(row.into_iter().map(csv_safe_cell))?;
    }
    c.flush()?;
    Ok(())
}
