//! Gaps in the logs a hunt read: periods for which no input of a given
//! format has records, within the period the hunt covers as a whole.
//!
//! "No sighting" only means something for the period the logs cover. A
//! hunt over firewall logs of January and April, and syslog of January to
//! June, has no firewall logs for February and March: a report must say so.
//! Coverage keeps one time range per input file, so gaps inside one file
//! are not visible here; gaps between files are.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use orbwatch_detect::Coverage;

/// Periods shorter than this between two files are not gaps (daily
/// rotation leaves a few seconds to hours between files).
pub const MIN_GAP: SignedDuration = SignedDuration::from_hours(24);

/// A period without logs of one format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The decoder name (`syslog`, `zeek-tsv`…).
    pub format: String,
    pub from: Timestamp,
    pub until: Timestamp,
}

/// The time ranges covered by the inputs of each format, merged
/// (overlapping or closer than [`MIN_GAP`]), sorted.
pub fn ranges_by_format(c: &Coverage) -> BTreeMap<String, Vec<(Timestamp, Timestamp)>> {
    let mut by: BTreeMap<String, Vec<(Timestamp, Timestamp)>> = BTreeMap::new();
    for i in &c.inputs {
        if let (Some(a), Some(b)) = (i.first_time, i.last_time) {
            let fmt = if i.format.is_empty() {
                "unknown".to_string()
            } else {
                i.format.clone()
            };
            by.entry(fmt).or_default().push((a.min(b), a.max(b)));
        }
    }
    for v in by.values_mut() {
        v.sort();
        let mut merged: Vec<(Timestamp, Timestamp)> = Vec::with_capacity(v.len());
        for (a, b) in v.drain(..) {
            match merged.last_mut() {
                Some(last) if a.duration_since(last.1) < MIN_GAP => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        *v = merged;
    }
    by
}

/// Gaps of each format within the overall range of all inputs: before a
/// format's first file, between its files, and after its last one.
pub fn gaps(c: &Coverage) -> Vec<Gap> {
    let (Some(start), Some(end)) = c.time_range() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (format, ranges) in ranges_by_format(c) {
        let mut cursor = start;
        for (a, b) in ranges {
            if a.duration_since(cursor) >= MIN_GAP {
                out.push(Gap {
                    format: format.clone(),
                    from: cursor,
                    until: a,
                });
            }
            cursor = cursor.max(b);
        }
        if end.duration_since(cursor) >= MIN_GAP {
            out.push(Gap {
                format: format.clone(),
                from: cursor,
                until: end,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use orbwatch_detect::InputCoverage;

    fn input(file: &str, format: &str, a: &str, b: &str) -> InputCoverage {
        InputCoverage {
            format: format.into(),
            first_time: Some(a.parse().unwrap()),
            last_time: Some(b.parse().unwrap()),
            ..InputCoverage::new(file)
        }
    }

    #[test]
    fn gap_between_files_of_one_format() {
        let c = Coverage {
            inputs: vec![
                input(
                    "fw.1",
                    "netfilter",
                    "2021-01-01T00:00:00Z",
                    "2021-03-02T00:00:00Z",
                ),
                input(
                    "fw.2",
                    "netfilter",
                    "2021-04-15T00:00:00Z",
                    "2021-06-30T00:00:00Z",
                ),
                // Daily rotation: 2 hours apart is no gap.
                input(
                    "fw.3",
                    "netfilter",
                    "2021-06-30T02:00:00Z",
                    "2021-07-01T00:00:00Z",
                ),
                input(
                    "auth",
                    "syslog",
                    "2021-01-01T00:00:00Z",
                    "2021-07-01T00:00:00Z",
                ),
                InputCoverage::new("unreadable"),
            ],
            ..Default::default()
        };
        let g = gaps(&c);
        assert_eq!(
            g,
            vec![Gap {
                format: "netfilter".into(),
                from: "2021-03-02T00:00:00Z".parse().unwrap(),
                until: "2021-04-15T00:00:00Z".parse().unwrap(),
            }]
        );
        assert_eq!(ranges_by_format(&c)["netfilter"].len(), 2);
    }

    #[test]
    fn format_that_starts_late_or_ends_early() {
        let c = Coverage {
            inputs: vec![
                input(
                    "a",
                    "syslog",
                    "2021-01-01T00:00:00Z",
                    "2021-07-01T00:00:00Z",
                ),
                input(
                    "b",
                    "zeek-tsv",
                    "2021-02-01T00:00:00Z",
                    "2021-05-01T00:00:00Z",
                ),
            ],
            ..Default::default()
        };
        let g = gaps(&c);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].until, "2021-02-01T00:00:00Z".parse().unwrap());
        assert_eq!(g[1].from, "2021-05-01T00:00:00Z".parse().unwrap());
        assert!(gaps(&Coverage::default()).is_empty());
    }
}
