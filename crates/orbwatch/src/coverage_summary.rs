//! The coverage printed at the end of a hunt, as a summary: totals,
//! problems and gaps. A hunt over a thousand rotated files must not bury
//! the one corrupt file and the missing week under a thousand blocks; the
//! per-file details are behind `-v` (the full text) or in `--coverage FILE`
//! (JSON; `--coverage -` writes it to stdout).

use std::collections::BTreeMap;
use std::io::{self, Write};

use orbwatch_detect::Coverage;
use orbwatch_report::coverage_gaps;

/// Rejection reasons, notes and gaps shown before "… more".
const SHOWN: usize = 5;

/// A rejection reason over all inputs: its count and the first example
/// (file, line).
type Reason<'a> = (u64, Option<(&'a str, u64)>);

fn time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

/// Write the summary. The same facts as `write_coverage_text`, added up.
pub fn write(c: &Coverage, w: &mut dyn Write) -> io::Result<()> {
    writeln!(
        w,
        "Coverage (summary; per-input details with -v, or as JSON with --coverage FILE)"
    )?;
    if let Some(tz) = &c.timezone {
        writeln!(
            w,
            "  log times without a zone were read as {tz} local time; all times shown are UTC"
        )?;
    }
    let mut formats: BTreeMap<&str, usize> = BTreeMap::new();
    for i in &c.inputs {
        *formats
            .entry(if i.format.is_empty() {
                "?"
            } else {
                i.format.as_str()
            })
            .or_default() += 1;
    }
    let formats: Vec<String> = formats
        .iter()
        .map(|(f, n)| {
            if *n == 1 {
                f.to_string()
            } else {
                format!("{f} ×{n}")
            }
        })
        .collect();
    let sum =
        |f: fn(&orbwatch_detect::InputCoverage) -> u64| -> u64 { c.inputs.iter().map(f).sum() };
    let undecoded = sum(|i| i.undecoded);
    writeln!(
        w,
        "  {} input{} ({}): records {}  parsed {}  skipped {}  rejected {}  matched {}{}",
        c.inputs.len(),
        if c.inputs.len() == 1 { "" } else { "s" },
        formats.join(", "),
        sum(|i| i.records),
        sum(|i| i.parsed),
        sum(|i| i.skipped),
        sum(|i| i.rejected),
        sum(|i| i.matched_records),
        if undecoded > 0 {
            format!("  not decoded {undecoded} (--no-behaviour)")
        } else {
            String::new()
        }
    )?;
    match c.time_range() {
        (Some(a), Some(b)) => writeln!(w, "  time range {} .. {} UTC", time(a), time(b))?,
        _ if c.inputs.iter().any(|i| i.records > 0) => {
            writeln!(w, "  time range: no timestamps understood")?
        }
        _ => {}
    }
    // How year-less lines were dated, once per distinct note.
    let mut years: Vec<&str> = c
        .inputs
        .iter()
        .filter_map(|i| i.year_note.as_deref())
        .collect();
    years.sort_unstable();
    years.dedup();
    for y in years.iter().take(3) {
        writeln!(w, "  {y}")?;
    }

    let nul = sum(|i| i.nul_bytes);
    if nul > 0 {
        writeln!(
            w,
            "  {nul} NUL bytes skipped (padding left by a crash or a copytruncate rotation); the text around them was read"
        )?;
    }

    // Problems: each input that could not be read, then the commonest
    // rejection reasons over all inputs, then other notes.
    for i in c.inputs.iter().filter(|i| i.error.is_some()) {
        writeln!(
            w,
            "  ERROR {} ({}): {}",
            i.file,
            if i.format.is_empty() { "?" } else { &i.format },
            i.error.as_deref().unwrap_or_default()
        )?;
    }
    let mut reasons: BTreeMap<&str, Reason> = BTreeMap::new();
    for i in &c.inputs {
        for (r, s) in &i.reasons {
            let e = reasons.entry(r.as_str()).or_insert((0, None));
            e.0 += s.count;
            if e.1.is_none() {
                e.1 = s.examples.first().map(|x| (i.file.as_str(), x.line));
            }
        }
    }
    let mut reasons: Vec<(&str, Reason)> = reasons.into_iter().collect();
    reasons.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(b.0)));
    for (r, (n, first)) in reasons.iter().take(SHOWN) {
        let at = first
            .map(|(f, l)| format!(" (first at {f}:{l})"))
            .unwrap_or_default();
        writeln!(w, "  rejected {n}x: {r}{at}")?;
    }
    if reasons.len() > SHOWN {
        writeln!(
            w,
            "  … {} more rejection reasons (-v)",
            reasons.len() - SHOWN
        )?;
    }
    let notes: Vec<String> = c
        .inputs
        .iter()
        .flat_map(|i| i.notes.iter().map(move |n| format!("{}: {n}", i.file)))
        .collect();
    for n in notes.iter().take(SHOWN) {
        writeln!(w, "  {n}")?;
    }
    if notes.len() > SHOWN {
        writeln!(w, "  … {} more notes (-v)", notes.len() - SHOWN)?;
    }
    let truncated = sum(|i| i.truncated_lines);
    if truncated > 0 {
        writeln!(w, "  {truncated} lines longer than 1 MiB were cut")?;
    }
    let outside = sum(|i| i.outside_time_filter);
    if outside > 0 {
        writeln!(w, "  {outside} events outside --since/--until")?;
    }

    // Gaps, per log type.
    let mut gaps: BTreeMap<String, (usize, i64)> = BTreeMap::new();
    for g in coverage_gaps::gaps(c) {
        let e = gaps.entry(g.format).or_default();
        e.0 += 1;
        e.1 += g.until.duration_since(g.from).as_secs() / 86_400;
    }
    for (f, (n, days)) in &gaps {
        writeln!(
            w,
            "  gaps: {f}: {n} period{} without logs, {days} day{} uncovered",
            if *n == 1 { "" } else { "s" },
            if *days == 1 { "" } else { "s" }
        )?;
    }

    orbwatch_report::coverage_text::write_coverage_totals(c, w)
}
