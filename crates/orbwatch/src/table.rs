//! Tables for people: `hunt`, `findings` and `hunts` on a terminal.
//!
//! They fit the terminal's width (long cells wrap instead of pushing the
//! line past the edge), and show the finding id, which `triage` needs, and
//! the severity. Colour goes to the severity cell only, only when the
//! table goes to a terminal, and never when `NO_COLOR` is set
//! (<https://no-color.org>): a pipe or a file gets plain text. Off a
//! terminal, `COLUMNS` sets the width when given (as for `ls`).

use std::io::{self, IsTerminal, Write};

use comfy_table::{
    Cell, CellAlignment, Color, ColumnConstraint, ContentArrangement, Table, Width, presets,
};
use orbwatch_detect::Finding;

/// Where a table goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    /// Standard output, which may be a terminal.
    Stdout,
    /// A file (`-o`): never a terminal.
    File,
}

impl Dest {
    fn is_terminal(self) -> bool {
        self == Dest::Stdout && io::stdout().is_terminal()
    }
}

/// Is colour wanted on this destination? Only on a terminal, and not when
/// `NO_COLOR` is set to anything non-empty.
pub fn colour(dest: Dest) -> bool {
    dest.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Write a table: `headers`, then `rows`; the cells of column
/// `severity_col` are coloured by their value when colour is wanted.
pub fn write(
    w: &mut dyn Write,
    dest: Dest,
    headers: &[&str],
    rows: &[Vec<String>],
    severity_col: Option<usize>,
) -> io::Result<()> {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    let on_terminal = dest.is_terminal();
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<u16>().ok())
        .filter(|c| *c >= 20);
    if !on_terminal {
        t.force_no_tty();
    }
    match (on_terminal, columns) {
        (_, Some(c)) => {
            t.set_width(c);
            t.set_content_arrangement(ContentArrangement::Dynamic);
        }
        (true, None) => {
            t.set_content_arrangement(ContentArrangement::Dynamic);
        }
        (false, None) => {
            t.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
    let paint = colour(dest);
    if paint {
        t.enforce_styling();
    }
    t.set_header(headers.iter().map(Cell::new));
    for row in rows {
        t.add_row(row.iter().enumerate().map(|(i, v)| {
            let c = Cell::new(v);
            match (paint, severity_col == Some(i)) {
                (true, true) => match severity_colour(v) {
                    Some(col) => c.fg(col),
                    None => c,
                },
                _ => c,
            }
        }));
    }
    // No padding before the first column (lines start with their first
    // cell, for `grep ^critical`); cells stay whole in short columns (ids,
    // severities, numbers, times) and the long text columns wrap.
    for (i, col) in t.column_iter_mut().enumerate() {
        col.set_padding((0, 1));
        let short = rows
            .iter()
            .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
            .chain(std::iter::once(headers.get(i).map_or(0, |h| h.len())))
            .max()
            .unwrap_or(0)
            <= 18;
        // Numbers line up on the right.
        let numeric = !rows.is_empty()
            && rows.iter().all(|r| {
                r.get(i)
                    .is_some_and(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()))
            });
        if numeric {
            col.set_cell_alignment(CellAlignment::Right);
        }
        if short {
            col.set_constraint(ColumnConstraint::ContentWidth);
        } else {
            // Wrapped, but never into a column too thin to read.
            col.set_constraint(ColumnConstraint::LowerBoundary(Width::Fixed(14)));
        }
    }
    // comfy-table pads every line to the table's width; trailing blanks
    // only get in the way of `grep` and diffs.
    for line in t.lines() {
        writeln!(w, "{}", line.trim_end())?;
    }
    Ok(())
}

fn severity_colour(s: &str) -> Option<Color> {
    Some(match s {
        "critical" => Color::Magenta,
        "high" => Color::Red,
        "medium" => Color::Yellow,
        "low" => Color::Cyan,
        _ => return None,
    })
}

/// One finding as a table row: severity, score, id, then `middle` cells,
/// then kind, first seen, count, indicator or source, feed, then `tail`.
pub fn finding_row(f: &Finding, middle: &[String], tail: &[String]) -> Vec<String> {
    let (what, feed) = match &f.ioc {
        Some(i) => (
            i.indicator.clone(),
            format!(
                "{}{}",
                i.feed,
                if i.in_validity_window {
                    ""
                } else {
                    " (outside window)"
                }
            ),
        ),
        None => (
            match (f.src_ip, f.sources.len()) {
                (_, n) if n > 1 => format!("{n} sources"),
                (Some(ip), _) => ip.to_string(),
                (None, _) => String::new(),
            },
            String::new(),
        ),
    };
    let mut row = vec![
        f.severity.map_or("-", |s| s.as_str()).to_string(),
        f.score.map(|s| s.to_string()).unwrap_or_default(),
        f.id.clone(),
    ];
    row.extend(middle.iter().cloned());
    row.extend([
        f.kind.as_str().to_string(),
        f.first_seen
            .map(|t| t.strftime("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_else(|| "(no time)".into()),
        f.count.to_string(),
        what,
        feed,
    ]);
    row.extend(tail.iter().cloned());
    row
}

/// Headers of [`finding_row`]'s fixed columns, before and after `middle`.
pub const FINDING_HEAD: [&str; 3] = ["severity", "score", "id"];
pub const FINDING_BODY: [&str; 5] = [
    "kind",
    "first seen (UTC)",
    "count",
    "indicator / source",
    "feed",
];

/// The table `hunt` prints: one row per finding, most serious first (the
/// order the findings come in), with its reasons in the last column.
pub fn write_findings(w: &mut dyn Write, dest: Dest, findings: &[&Finding]) -> io::Result<()> {
    if findings.is_empty() {
        return writeln!(w, "No findings.");
    }
    let mut sorted: Vec<&Finding> = findings.to_vec();
    sorted.sort_by(|a, b| orbwatch_detect::finding::most_serious_first(a, b));
    let rows: Vec<Vec<String>> = sorted
        .into_iter()
        .map(|f| {
            let why = f
                .reasons
                .iter()
                .map(|r| format!("- {r}"))
                .collect::<Vec<_>>()
                .join("\n");
            finding_row(f, &[], &[why])
        })
        .collect();
    let headers: Vec<&str> = FINDING_HEAD
        .iter()
        .chain(FINDING_BODY.iter())
        .chain(["why"].iter())
        .copied()
        .collect();
    write(w, dest, &headers, &rows, Some(0))
}
