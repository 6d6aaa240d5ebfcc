//! CSV for spreadsheets: one row per finding, with its triage state.
//!
//! The first eighteen columns are those of `hunt --format csv`
//! ([`crate::findings::CSV_COLUMNS`]); behaviour and triage columns follow,
//! so a sheet built on the hunt output keeps working.

use std::io::{self, Write};

use crate::findings::CSV_COLUMNS;
use crate::model::ReportFinding;

/// Columns added after [`CSV_COLUMNS`].
pub const EXTRA_COLUMNS: [&str; 8] = [
    "severity",
    "score",
    "reasons",
    "evidence_total",
    "status",
    "triage_note",
    "triage_author",
    "triage_at",
];

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// Write one row per finding, after a header row (also when there are no
/// findings, so the file is never empty).
pub fn write_report_csv<'a>(
    findings: impl IntoIterator<Item = &'a ReportFinding>,
    w: &mut dyn Write,
) -> io::Result<()> {
    let mut c = csv::Writer::from_writer(w);
    c.write_record(CSV_COLUMNS.iter().chain(EXTRA_COLUMNS.iter()))?;
    for rf in findings {
        let f = &rf.finding;
        let ioc = f.ioc.as_ref();
        let ev = f.evidence.first();
        let t = rf.triage.as_ref();
        c.write_record([
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
            opt(&ioc.and_then(|i| i.confidence)),
            ioc.map(|i| i.matched_field.clone()).unwrap_or_default(),
            ioc.map(|i| i.matched_value.clone()).unwrap_or_default(),
            ev.map(|e| e.file.clone()).unwrap_or_default(),
            opt(&ev.and_then(|e| e.line)),
            ev.map(|e| e.raw.clone()).unwrap_or_default(),
            f.severity
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            opt(&f.score),
            f.reasons.join("; "),
            f.evidence_total.to_string(),
            rf.status().to_string(),
            opt(&t.and_then(|t| t.note.clone())),
            opt(&t.and_then(|t| t.author.clone())),
            opt(&t.and_then(|t| t.at)),
        ])?;
    }
    c.flush()?;
    Ok(())
}
