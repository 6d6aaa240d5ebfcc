//! Coverage: what a hunt actually looked at.
//!
//! "No findings" means nothing unless the analyst knows which logs were
//! read, how much of them was understood, and which period they cover
//! compared with what the feed asks for. Every hunt prints and stores this.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Examples kept per rejection reason.
pub const REASON_EXAMPLES: usize = 3;
/// Distinct rejection reasons kept per input; the rest are pooled.
pub const MAX_REASONS: usize = 50;

/// One rejected record shown as an example.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectExample {
    pub line: u64,
    pub raw: String,
}

/// Rejections grouped by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasonStat {
    pub count: u64,
    pub examples: Vec<RejectExample>,
}

/// Coverage of one input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputCoverage {
    pub file: String,
    /// Decoder used (`syslog`, `zeek-tsv`…); empty when the file could not be read.
    pub format: String,
    /// `none`, `gzip`, `zstd`…
    pub compression: String,
    /// Bytes read after decompression.
    pub bytes: u64,
    /// Records (lines) read.
    pub records: u64,
    /// Records decoded into events.
    pub parsed: u64,
    /// Records that carry no event (headers, comments, blank lines).
    pub skipped: u64,
    /// Records the decoder could not parse. They are still hunted for IP
    /// addresses in their raw text.
    pub rejected: u64,
    /// Records not decoded because they name no indicator and no behaviour
    /// detector needs them (`--no-behaviour`); only their time was read.
    #[serde(default)]
    pub undecoded: u64,
    /// Lines longer than 1 MiB, cut to that length.
    pub truncated_lines: u64,
    /// NUL bytes dropped from text: the padding a crash or a copytruncate
    /// rotation leaves in a log. The text around them is read.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub nul_bytes: u64,
    /// Events outside `--since`/`--until`, not matched.
    pub outside_time_filter: u64,
    /// Records that matched at least one indicator.
    pub matched_records: u64,
    pub reasons: BTreeMap<String, ReasonStat>,
    pub first_time: Option<Timestamp>,
    pub last_time: Option<Timestamp>,
    /// How the year of year-less syslog lines was chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year_note: Option<String>,
    /// Why the input could not be read (fully), if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Other facts about how the input was read (captures: non-IP packets,
    /// fragments, unknown link types; NetFlow data sets waiting for a
    /// template).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl InputCoverage {
    pub fn new(file: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            ..Default::default()
        }
    }

    /// Record a rejected line.
    pub fn reject(&mut self, line: u64, reason: &str, raw: &[u8]) {
        self.rejected += 1;
        let key = if self.reasons.len() >= MAX_REASONS && !self.reasons.contains_key(reason) {
            "other reasons (too many distinct reasons to list)"
        } else {
            reason
        };
        let stat = self.reasons.entry(key.to_string()).or_default();
        stat.count += 1;
        if stat.examples.len() < REASON_EXAMPLES {
            let cut = &raw[..raw.len().min(300)];
            stat.examples.push(RejectExample {
                line,
                raw: String::from_utf8_lossy(cut).into_owned(),
            });
        }
    }

    /// Extend the covered time range with an event time.
    pub fn see_time(&mut self, t: Timestamp) {
        self.first_time = Some(self.first_time.map_or(t, |f| f.min(t)));
        self.last_time = Some(self.last_time.map_or(t, |l| l.max(t)));
    }

    /// Shift example line numbers (for a chunk read from the middle of a file).
    pub fn rebase(&mut self, lines: u64) {
        for r in self.reasons.values_mut() {
            for e in &mut r.examples {
                e.line += lines;
            }
        }
    }

    /// Fold the coverage of a later chunk of the same file into this one.
    pub fn merge(&mut self, o: InputCoverage) {
        if self.format.is_empty() {
            self.format = o.format;
        }
        if self.compression.is_empty() {
            self.compression = o.compression;
        }
        self.bytes += o.bytes;
        self.records += o.records;
        self.parsed += o.parsed;
        self.skipped += o.skipped;
        self.rejected += o.rejected;
        self.undecoded += o.undecoded;
        self.truncated_lines += o.truncated_lines;
        self.nul_bytes += o.nul_bytes;
        self.outside_time_filter += o.outside_time_filter;
        self.matched_records += o.matched_records;
        for (k, v) in o.reasons {
            let s = self.reasons.entry(k).or_default();
            s.count += v.count;
            for e in v.examples {
                if s.examples.len() < REASON_EXAMPLES {
                    s.examples.push(e);
                }
            }
        }
        if let Some(t) = o.first_time {
            self.see_time(t);
        }
        if let Some(t) = o.last_time {
            self.see_time(t);
        }
        if self.year_note.is_none() {
            self.year_note = o.year_note;
        }
        if self.error.is_none() {
            self.error = o.error;
        }
        self.notes.extend(o.notes);
    }
}

/// How the logs' time range compares with one feed's validity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedCoverage {
    pub feed: String,
    pub indicators: u64,
    /// Earliest start of validity (None: some indicators are open-ended).
    pub search_from: Option<Timestamp>,
    /// Latest end of validity (None: some are still valid).
    pub search_until: Option<Timestamp>,
    /// Plain-language comparison with the logs' time range.
    pub note: String,
}

/// Everything a hunt reports besides findings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    pub started: Option<Timestamp>,
    pub finished: Option<Timestamp>,
    pub inputs: Vec<InputCoverage>,
    pub feeds: Vec<FeedCoverage>,
    pub findings: u64,
    pub findings_in_window: u64,
    pub findings_out_of_window: u64,
    pub sightings: u64,
    /// What the behaviour detectors saw (absent with `--no-behaviour`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behaviour: Option<BehaviourCoverage>,
    /// The zone assumed for log times written without one (year-less
    /// syslog), from `--timezone` or the machine. Every time in the
    /// outputs is UTC. Absent in hunts from before the option existed,
    /// which read such times as UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// What the run could not do as asked that belongs to no one input and
    /// not to the detectors, in plain words: IOC sessions or findings
    /// kept in memory because their temporary file could not be written.
    /// Findings are never lost for these; memory may grow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// What the behaviour detectors saw and said.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BehaviourCoverage {
    /// Observations (auth attempts, probes, outbound volumes) replayed.
    pub observations: u64,
    /// Relevant events without a time, which detectors cannot place.
    pub untimed: u64,
    /// Relevant events not observed because `max_observations` was
    /// reached.
    pub dropped: u64,
    /// Findings per kind.
    pub findings: BTreeMap<String, u64>,
    /// Plain-language notes (enrichment skipped, limits reached).
    pub notes: Vec<String>,
}

impl Coverage {
    /// Earliest and latest event time over all inputs.
    pub fn time_range(&self) -> (Option<Timestamp>, Option<Timestamp>) {
        let first = self.inputs.iter().filter_map(|i| i.first_time).min();
        let last = self.inputs.iter().filter_map(|i| i.last_time).max();
        (first, last)
    }
}

fn day(t: Timestamp) -> String {
    t.to_string().chars().take(10).collect()
}

/// Compare the logs' range with a feed's validity and say it in words, as
/// in "your logs start 2021-05-02; the feed asks you to search from
/// 2021-01-01".
pub fn feed_note(
    from: Option<Timestamp>,
    until: Option<Timestamp>,
    logs: (Option<Timestamp>, Option<Timestamp>),
) -> String {
    let (lf, ll) = logs;
    let (Some(lf), Some(ll)) = (lf, ll) else {
        return "no timestamps were found in the logs, so validity could not be checked".into();
    };
    let mut parts = Vec::new();
    match from {
        Some(f) if lf > f => parts.push(format!(
            "your logs start {}; the feed asks you to search from {}",
            day(lf),
            day(f)
        )),
        Some(_) => parts.push(format!(
            "your logs start {}, before the earliest validity",
            day(lf)
        )),
        None => parts.push(format!(
            "the feed gives no start date for some indicators; your logs start {}",
            day(lf)
        )),
    }
    match until {
        Some(u) if ll < u => parts.push(format!(
            "your logs end {}; indicators stay valid until {}",
            day(ll),
            day(u)
        )),
        Some(u) if lf > u => parts.push(format!(
            "every indicator had expired ({}) before your logs start",
            day(u)
        )),
        Some(_) => {}
        None => parts.push(format!("your logs end {}", day(ll))),
    }
    parts.join("; ")
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn notes() {
        let n = feed_note(
            Some(t("2021-01-01T00:00:00Z")),
            None,
            (
                Some(t("2021-05-02T10:00:00Z")),
                Some(t("2021-06-01T00:00:00Z")),
            ),
        );
        assert!(
            n.contains("your logs start 2021-05-02; the feed asks you to search from 2021-01-01"),
            "{n}"
        );
        assert!(feed_note(None, None, (None, None)).contains("no timestamps"));
    }

    #[test]
    fn reasons_are_capped() {
        let mut c = InputCoverage::new("f");
        for i in 0..200 {
            c.reject(i, &format!("reason {i}"), b"raw");
        }
        assert_eq!(c.rejected, 200);
        assert_eq!(c.reasons.len(), MAX_REASONS + 1);
        assert_eq!(c.reasons.values().map(|r| r.count).sum::<u64>(), 200);
    }
}
