//! Diffs against a previous export: what a reload would add, remove, and
//! drop because the indicators behind it expired.
//!
//! The previous file is read back rather than kept in a sidecar: every
//! single-file target writes its addresses as tokens that a tolerant
//! scanner finds (comment lines skipped), so the diff works on whatever is
//! deployed. The comparison is on address sets, so a change of
//! aggregation alone (two /25s that became one /24) is not a change.

use ipnet::IpNet;

use crate::build::Blocklist;
use crate::guard::parse_address_token;
use crate::span::{Family, cidr_cover, difference, intersection, merge_intervals};

/// The addresses of a previous export, per family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreviousList {
    pub v4: Vec<(u128, u128)>,
    pub v6: Vec<(u128, u128)>,
    /// Address tokens found.
    pub tokens: u64,
}

/// Scan the text of a previous export (any target but suricata-rules,
/// whose addresses live in its `.lst` file).
pub fn parse_previous(text: &str) -> PreviousList {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    let mut tokens = 0;
    for line in text.lines() {
        let line = line.trim_start();
        if line.starts_with('#') {
            continue;
        }
        for tok in line.split(|c: char| {
            c.is_whitespace() || matches!(c, ',' | '{' | '}' | '=' | ';' | '"' | '[' | ']')
        }) {
            // A bare `-` range needs both sides; `a-b` tokens are ranges
            // only in allowlists, never in our outputs.
            if tok.is_empty() || tok.contains('-') {
                continue;
            }
            if let Some((f, s, e)) = parse_address_token(tok) {
                tokens += 1;
                match f {
                    Family::V4 => v4.push((s, e)),
                    Family::V6 => v6.push((s, e)),
                }
            }
        }
    }
    PreviousList {
        v4: merge_intervals(v4),
        v6: merge_intervals(v6),
        tokens,
    }
}

/// What changed between a previous export and this one, as prefixes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    pub added: Vec<IpNet>,
    pub removed: Vec<IpNet>,
    /// Left the list because the indicators behind them expired.
    pub expired: Vec<IpNet>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.expired.is_empty()
    }
}

/// Compare the previous export `prev` with `next` (the new export's text
/// read the same way, so that a target that cannot hold some entries,
/// like a dataset, is compared on what it holds); `list` says which
/// addresses left because they expired.
pub fn diff(prev: &PreviousList, next: &PreviousList, list: &Blocklist) -> Diff {
    let mut d = Diff::default();
    for (family, old, new, expired) in [
        (Family::V4, &prev.v4, &next.v4, &list.expired4),
        (Family::V6, &prev.v6, &next.v6, &list.expired6),
    ] {
        let new = new.clone();
        let cover = |iv: Vec<(u128, u128)>| -> Vec<IpNet> {
            iv.into_iter()
                .flat_map(|(s, e)| cidr_cover(family, s, e, 0))
                .collect()
        };
        let gone = difference(old, &new);
        d.added.extend(cover(difference(&new, old)));
        d.expired.extend(cover(intersection(&gone, expired)));
        d.removed.extend(cover(difference(&gone, expired)));
    }
    d
}
