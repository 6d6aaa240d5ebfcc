//! The coverage summary printed at the end of a hunt, for people.

use std::io::{self, Write};

use orbwatch_detect::Coverage;

fn day(t: Option<jiff::Timestamp>) -> String {
    t.map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".into())
}

/// Write the coverage summary: one block per input, then one line per feed.
/// Control characters in file names, reasons and notes (which come from
/// the inputs) are escaped (see [`crate::terminal`]).
pub fn write_coverage_text(c: &Coverage, w: &mut dyn Write) -> io::Result<()> {
    let mut safe = crate::terminal::TerminalSafe(w);
    let w: &mut dyn Write = &mut safe;
    writeln!(w, "Coverage")?;
    if let Some(tz) = &c.timezone {
        writeln!(
            w,
            "  log times without a zone were read as {tz} local time; all times shown are UTC"
        )?;
    }
    for i in &c.inputs {
        let comp = if i.compression.is_empty() || i.compression == "none" {
            String::new()
        } else {
            format!(", {}", i.compression)
        };
        let fmt = if i.format.is_empty() {
            "?"
        } else {
            i.format.as_str()
        };
        writeln!(w, "  {} ({fmt}{comp})", i.file)?;
        if let Some(e) = &i.error {
            writeln!(w, "    ERROR: {e}")?;
        }
        writeln!(
            w,
            "    records {}  parsed {}  skipped {}  rejected {}  matched {}",
            i.records, i.parsed, i.skipped, i.rejected, i.matched_records
        )?;
        if i.undecoded > 0 {
            writeln!(
                w,
                "    {} records name no indicator and were not decoded (--no-behaviour)",
                i.undecoded
            )?;
        }
        if i.first_time.is_some() {
            writeln!(
                w,
                "    time range {} .. {} UTC",
                day(i.first_time),
                day(i.last_time)
            )?;
        } else if i.records > 0 {
            writeln!(w, "    time range: no timestamps understood")?;
        }
        if let Some(n) = &i.year_note {
            writeln!(w, "    {n}")?;
        }
        for n in &i.notes {
            writeln!(w, "    {n}")?;
        }
        if i.truncated_lines > 0 {
            writeln!(
                w,
                "    {} lines longer than 1 MiB were cut",
                i.truncated_lines
            )?;
        }
        if i.nul_bytes > 0 {
            writeln!(
                w,
                "    {} NUL bytes skipped (padding left by a crash or a copytruncate rotation); the text around them was read",
                i.nul_bytes
            )?;
        }
        if i.outside_time_filter > 0 {
            writeln!(
                w,
                "    {} events outside --since/--until",
                i.outside_time_filter
            )?;
        }
        for (reason, s) in i.reasons.iter().take(5) {
            let ex = s
                .examples
                .first()
                .map(|e| format!(" (first at line {})", e.line))
                .unwrap_or_default();
            writeln!(w, "    rejected {}x: {reason}{ex}", s.count)?;
        }
        if i.reasons.len() > 5 {
            writeln!(
                w,
                "    … {} more rejection reasons (see --coverage FILE)",
                i.reasons.len() - 5
            )?;
        }
    }
    write_coverage_totals(c, w)
}

/// The end of the coverage text, the same in the summary and the details:
/// each feed against the logs, what the behaviour detectors saw, and the
/// totals.
pub fn write_coverage_totals(c: &Coverage, w: &mut dyn Write) -> io::Result<()> {
    for f in &c.feeds {
        writeln!(
            w,
            "  feed {} ({} indicators): {}",
            f.feed, f.indicators, f.note
        )?;
    }
    if let Some(b) = &c.behaviour {
        let kinds: Vec<String> = b.findings.iter().map(|(k, n)| format!("{k} {n}")).collect();
        writeln!(
            w,
            "  behaviour: {} observations replayed; findings: {}",
            b.observations,
            if kinds.is_empty() {
                "none".to_string()
            } else {
                kinds.join(", ")
            }
        )?;
        for n in &b.notes {
            writeln!(w, "    {n}")?;
        }
    }
    for n in &c.notes {
        writeln!(w, "  note: {n}")?;
    }
    writeln!(
        w,
        "Findings: {} ({} inside validity windows, {} outside) from {} sightings",
        c.findings, c.findings_in_window, c.findings_out_of_window, c.sightings
    )
}
