//! Selection: which indicators and finding sources go into a blocklist.
//!
//! Indicators come one at a time (from the store, or from feed files) and
//! findings as an iterator, so the same code serves `--feed` files, the
//! store and, later, findings kept in the store. Everything left out is
//! counted by reason; indicators left out only because their window has
//! ended are remembered, so that a diff can say "expired" rather than
//! "removed".

use std::collections::{BTreeMap, HashSet};

use jiff::{SignedDuration, Timestamp};
use orbwatch_detect::finding::{Finding, FindingKind};
use orbwatch_intel::{Indicator, IndicatorValue};

use crate::span::{Expiry, Family, ip_to_u128, net_bounds};

/// One address interval proposed for the list, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub family: Family,
    pub start: u128,
    pub end: u128,
    pub expiry: Expiry,
    /// Index into [`Selection::origins`].
    pub origin: u32,
    /// Line in the origin (0 when it has none).
    pub line: u64,
}

/// Selection settings.
#[derive(Debug, Clone)]
pub struct SelectOptions {
    /// Indicators must be valid at this instant.
    pub at: Timestamp,
    /// Minimum confidence; indicators without one pass only when this is 0.
    pub min_confidence: u8,
    /// Lifetime of addresses taken from behaviour findings, counted from
    /// the finding's `last_seen`.
    pub finding_ttl: SignedDuration,
    /// Minimum score of a behaviour finding.
    pub min_score: u8,
}

/// Which indicators were sighted inside their validity window, by
/// `(feed, indicator)` as `hunt` writes them in `ioc_match` findings.
#[derive(Debug, Clone, Default)]
pub struct Sighted {
    keys: HashSet<(String, String)>,
}

impl Sighted {
    /// Collect the sighted indicators from findings (other kinds, and
    /// sightings outside the window, are ignored).
    pub fn from_findings<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Sighted {
        let mut keys = HashSet::new();
        for f in findings {
            if f.kind != FindingKind::IocMatch {
                continue;
            }
            if let Some(ioc) = &f.ioc
                && ioc.in_validity_window
            {
                keys.insert((ioc.feed.clone(), ioc.indicator.clone()));
            }
        }
        Sighted { keys }
    }

    pub fn contains(&self, feed: &str, indicator: &str) -> bool {
        self.keys
            .contains(&(feed.to_string(), indicator.to_string()))
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Why an input was not selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Skip {
    /// A domain, URL or hash: firewalls block addresses.
    NotAnAddress,
    BelowConfidence,
    NotYetValid,
    Expired,
    NotSighted,
    /// A behaviour finding below `--min-score` or without a score.
    BelowScore,
    /// A behaviour finding without a source address.
    NoSource,
    /// A `router_audit` finding: its address is the organisation's own
    /// router (the one audited), never a source to block.
    OwnRouter,
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::NotAnAddress => "not an address (domain, URL or hash)",
            Skip::BelowConfidence => "below --min-confidence",
            Skip::NotYetValid => "not valid yet at the reference time",
            Skip::Expired => "validity ended before the reference time",
            Skip::NotSighted => "not sighted in the findings (--sighted)",
            Skip::BelowScore => "finding below --min-score or without a score",
            Skip::NoSource => "finding without a source address",
            Skip::OwnRouter => "router audit finding (the address is your own router)",
        }
    }
}

/// The selected candidates, their origins and the counts of what was left
/// out.
#[derive(Debug, Clone)]
pub struct Selection {
    pub options: SelectOptions,
    sighted: Option<Sighted>,
    pub candidates: Vec<Candidate>,
    /// Names of the sources (feed names, `findings`).
    pub origins: Vec<String>,
    origin_ids: BTreeMap<String, u32>,
    pub skipped: BTreeMap<Skip, u64>,
    /// Intervals of address indicators left out only because they expired.
    pub expired: Vec<(Family, u128, u128)>,
    /// Indicators and finding sources looked at.
    pub seen: u64,
    /// The actors the feed names for each candidate (by index in
    /// `candidates`), joined with ", "; only candidates that have some.
    /// Kept for the renderers that carry provenance (zeek-intel `meta.desc`).
    pub actors: BTreeMap<usize, String>,
}

impl Selection {
    /// Start a selection. With `sighted`, only those indicators pass.
    pub fn new(options: SelectOptions, sighted: Option<Sighted>) -> Selection {
        Selection {
            options,
            sighted,
            candidates: Vec::new(),
            origins: Vec::new(),
            origin_ids: BTreeMap::new(),
            skipped: BTreeMap::new(),
            expired: Vec::new(),
            seen: 0,
            actors: BTreeMap::new(),
        }
    }

    fn origin(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.origin_ids.get(name) {
            return id;
        }
        let id = self.origins.len() as u32;
        self.origins.push(name.to_string());
        self.origin_ids.insert(name.to_string(), id);
        id
    }

    fn skip(&mut self, why: Skip) {
        *self.skipped.entry(why).or_insert(0) += 1;
    }

    /// Offer one indicator; `feed` is its feed's name.
    pub fn add_indicator(&mut self, ind: &Indicator, feed: &str) {
        self.seen += 1;
        let Some((family, start, end)) = address_bounds(&ind.value) else {
            self.skip(Skip::NotAnAddress);
            return;
        };
        let at = self.options.at;
        if let Some(u) = ind.valid_until
            && u < at
        {
            self.skip(Skip::Expired);
            self.expired.push((family, start, end));
            return;
        }
        if ind.valid_from.is_some_and(|f| f > at) {
            self.skip(Skip::NotYetValid);
            return;
        }
        if self.options.min_confidence > 0
            && ind
                .confidence
                .is_none_or(|c| c < self.options.min_confidence)
        {
            self.skip(Skip::BelowConfidence);
            return;
        }
        if let Some(s) = &self.sighted
            && !s.contains(feed, &ind.value.to_string())
        {
            self.skip(Skip::NotSighted);
            return;
        }
        let origin = self.origin(feed);
        if !ind.tags.actors.is_empty() {
            self.actors
                .insert(self.candidates.len(), ind.tags.actors.join(", "));
        }
        self.candidates.push(Candidate {
            family,
            start,
            end,
            expiry: Expiry::from_option(ind.valid_until),
            origin,
            line: ind.provenance.line,
        });
    }

    /// Offer the sources of behaviour findings (`src_ip` and `sources`),
    /// each listed until the finding's `last_seen` (or the reference time)
    /// plus the TTL. `ioc_match` findings are not sources: see [`Sighted`].
    pub fn add_findings<'a>(&mut self, findings: impl IntoIterator<Item = &'a Finding>) {
        for (n, f) in findings.into_iter().enumerate() {
            if f.kind == FindingKind::IocMatch {
                continue;
            }
            if f.kind.is_about_own_device() {
                // `src_ip` is the audited router itself (a score of 90 for
                // an implant found on it): listing it would cut the
                // organisation's own branch off.
                self.seen += 1;
                self.skip(Skip::OwnRouter);
                continue;
            }
            let mut addrs: Vec<std::net::IpAddr> = f.src_ip.into_iter().collect();
            addrs.extend(f.sources.iter().copied());
            addrs.sort();
            addrs.dedup();
            if addrs.is_empty() {
                self.seen += 1;
                self.skip(Skip::NoSource);
                continue;
            }
            let score_ok = f.score.is_some_and(|s| s >= self.options.min_score);
            let base = f.last_seen.unwrap_or(self.options.at);
            let until = base
                .checked_add(self.options.finding_ttl)
                .unwrap_or(Timestamp::MAX);
            let origin = self.origin(&format!("findings ({})", f.kind));
            for ip in addrs {
                self.seen += 1;
                let family = Family::of(ip);
                let v = ip_to_u128(ip);
                if !score_ok {
                    self.skip(Skip::BelowScore);
                    continue;
                }
                if until < self.options.at {
                    self.skip(Skip::Expired);
                    self.expired.push((family, v, v));
                    continue;
                }
                self.candidates.push(Candidate {
                    family,
                    start: v,
                    end: v,
                    expiry: Expiry::At(until),
                    origin,
                    line: n as u64 + 1,
                });
            }
        }
    }
}

/// The address interval of an IP, CIDR or range indicator.
pub fn address_bounds(v: &IndicatorValue) -> Option<(Family, u128, u128)> {
    match v {
        IndicatorValue::Ip(ip) => {
            let x = ip_to_u128(*ip);
            Some((Family::of(*ip), x, x))
        }
        IndicatorValue::Cidr(net) => Some(net_bounds(*net)),
        IndicatorValue::Range { first, last } => {
            let (a, b) = (ip_to_u128(*first), ip_to_u128(*last));
            (Family::of(*first) == Family::of(*last) && a <= b).then_some((
                Family::of(*first),
                a,
                b,
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A finding of `kind` from `src`, scored 90, seen now.
    fn finding(kind: &str, src: &str) -> Finding {
        serde_json::from_value(serde_json::json!({
            "id": format!("{kind}-{src}"), "kind": kind,
            "first_seen": null, "last_seen": null, "count": 1,
            "src_ip": src, "dst_ip": null, "score": 90, "severity": "critical",
            "evidence": [], "evidence_total": 0
        }))
        .unwrap()
    }

    #[test]
    fn a_router_audit_finding_never_lists_the_audited_router() {
        let at = Timestamp::now();
        let mut sel = Selection::new(
            SelectOptions {
                at,
                min_confidence: 0,
                finding_ttl: SignedDuration::from_hours(24),
                min_score: 50,
            },
            None,
        );
        // An implant found on the branch router (its public address),
        // and a brute force from an attacker: only the attacker is listed.
        sel.add_findings(&[
            finding("router_audit", "198.51.100.10"),
            finding("brute_force", "203.0.113.66"),
        ]);
        let attacker = u128::from(u32::from(
            "203.0.113.66".parse::<std::net::Ipv4Addr>().unwrap(),
        ));
        let listed: Vec<(u128, u128)> = sel.candidates.iter().map(|c| (c.start, c.end)).collect();
        assert_eq!(listed, [(attacker, attacker)], "{:?}", sel.candidates);
        assert_eq!(sel.skipped.get(&Skip::OwnRouter), Some(&1));
    }
}
