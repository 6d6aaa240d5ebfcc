//! ORB likelihood per external source: one figure joining the IOC view and
//! the behaviour view, so an analyst sees which addresses look like relay
//! routers rather than ordinary internet noise.
//!
//! It is a `details.orb_likelihood` section (score 0–100 and the reasons
//! behind it) added to every finding whose source is external, rather
//! than a finding kind of its own: it qualifies findings, it is not an
//! event. Points (capped at 100):
//! - a feed lists the address: +40 when the sighting is inside the
//!   indicator's validity window, else +25 minus 5 per 30 days between the
//!   window's end and the sighting (relays are reused for about two weeks);
//! - behaviour findings: +20 for a distributed brute force membership
//!   (the ORB pattern itself), +10 for each other behaviour kind;
//! - the address used a port router backdoors listen on (7777, 11288…):
//!   +25;
//! - residential or dynamic address space (from an mmdb with
//!   Connection-Type, user type or Anonymous-IP data): +15; a hosting
//!   provider: −10 (relays are mostly home and SOHO routers).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::{Obs, ObsKind, Tables};
use crate::direction::InternalNets;
use crate::enrich::Enricher;
use crate::finding::{Finding, FindingKind};

/// Sources seen on backdoor ports, with the ports.
pub fn backdoor_sources(
    tables: &Tables,
    obs: impl Iterator<Item = Obs>,
) -> BTreeMap<IpAddr, BTreeSet<u16>> {
    let mut out: BTreeMap<IpAddr, BTreeSet<u16>> = BTreeMap::new();
    let mut add = |o: &Obs, id: super::observe::NodeId| {
        if let Some(ip) = tables.ip(id) {
            out.entry(ip).or_default().insert(o.dst_port);
        }
    };
    for o in obs.filter(|o| o.kind == ObsKind::BackdoorPort) {
        add(&o, o.src);
        if o.dst != super::observe::NONE {
            add(&o, o.dst);
        }
    }
    out
}

#[derive(Default)]
struct Evidence {
    points: i32,
    reasons: Vec<String>,
    kinds: BTreeSet<FindingKind>,
}

/// Add `details.orb_likelihood` to every finding with an external source
/// scoring at least `min_score`.
pub fn annotate(
    findings: &mut [Finding],
    backdoor: &BTreeMap<IpAddr, BTreeSet<u16>>,
    enricher: &Enricher,
    internal: &InternalNets,
    min_score: u8,
) {
    let mut orb = OrbLikelihood::default();
    for f in findings.iter() {
        orb.observe(f, internal);
    }
    let scores = orb.score(backdoor, enricher, internal, min_score);
    for f in findings.iter_mut() {
        scores.annotate(f);
    }
}

/// The first pass of [`annotate`], one finding at a time: what each
/// external source has been seen doing. Split from the second pass so a
/// hunt can score findings it does not hold in memory (IOC findings
/// spilled to disk during the behaviour replay): it observes them as they
/// are made and annotates them as they are read back, in the same order.
#[derive(Default)]
pub struct OrbLikelihood {
    per: BTreeMap<IpAddr, Evidence>,
}

impl OrbLikelihood {
    /// Count what `f` says of its sources. Order matters as in
    /// [`annotate`]: a source's reason for a kind comes from its first
    /// finding of that kind.
    pub fn observe(&mut self, f: &Finding, internal: &InternalNets) {
        let srcs: Vec<IpAddr> = match f.kind {
            FindingKind::DistributedBruteforce => f.sources.clone(),
            FindingKind::IocMatch => f
                .ioc
                .as_ref()
                .and_then(|i| i.matched_value.parse().ok())
                .into_iter()
                .collect(),
            _ => f.src_ip.into_iter().collect(),
        };
        for ip in srcs {
            if internal.contains(ip) {
                continue;
            }
            let e = self.per.entry(ip).or_default();
            if !e.kinds.insert(f.kind) {
                continue;
            }
            match f.kind {
                FindingKind::IocMatch => {
                    let Some(i) = &f.ioc else { continue };
                    if i.in_validity_window {
                        e.points += 40;
                        e.reasons.push(format!(
                            "listed in feed {} and seen inside its validity window",
                            i.feed
                        ));
                    } else {
                        let days = match (i.valid_until, f.first_seen) {
                            (Some(u), Some(s)) if s > u => (s.as_second() - u.as_second()) / 86_400,
                            _ => 0,
                        };
                        let p = (25 - 5 * (days / 30) as i32).max(5);
                        e.points += p;
                        e.reasons.push(format!(
                            "listed in feed {}, seen {days} days outside its validity window",
                            i.feed
                        ));
                    }
                }
                FindingKind::DistributedBruteforce => {
                    e.points += 20;
                    e.reasons
                        .push("member of a distributed brute-force campaign".to_string());
                }
                k => {
                    e.points += 10;
                    e.reasons.push(format!("{k} finding"));
                }
            }
        }
    }

    /// Add the backdoor ports and the address space, and keep the sources
    /// scoring at least `min_score`.
    pub fn score(
        mut self,
        backdoor: &BTreeMap<IpAddr, BTreeSet<u16>>,
        enricher: &Enricher,
        internal: &InternalNets,
        min_score: u8,
    ) -> OrbScores {
        for (ip, ports) in backdoor {
            if internal.contains(*ip) {
                continue;
            }
            let e = self.per.entry(*ip).or_default();
            e.points += 25;
            let p: Vec<String> = ports.iter().map(u16::to_string).collect();
            e.reasons.push(format!(
                "traffic on port {} that router backdoors listen on",
                p.join(", ")
            ));
        }
        for (ip, e) in self.per.iter_mut() {
            if let Some(info) = enricher.lookup(*ip) {
                if info.residential {
                    e.points += 15;
                    e.reasons
                        .push("residential or dynamic address space".to_string());
                } else if info.hosting {
                    e.points -= 10;
                    e.reasons.push("hosting provider address".to_string());
                }
            }
        }
        let scored = self
            .per
            .into_iter()
            .filter_map(|(ip, e)| {
                let s = e.points.clamp(0, 100) as u8;
                (s >= min_score).then_some((ip, (s, e.reasons)))
            })
            .collect();
        OrbScores { scored }
    }
}

/// The second pass of [`annotate`]: each source's score and reasons.
pub struct OrbScores {
    scored: BTreeMap<IpAddr, (u8, Vec<String>)>,
}

impl OrbScores {
    /// Add `details.orb_likelihood` to `f` if its source scored.
    pub fn annotate(&self, f: &mut Finding) {
        let score_of = |ip: &IpAddr| self.scored.get(ip).map(|(s, r)| (*s, r));
        let ip = match f.kind {
            FindingKind::IocMatch => f.ioc.as_ref().and_then(|i| i.matched_value.parse().ok()),
            _ => f.src_ip,
        };
        if f.kind == FindingKind::DistributedBruteforce {
            // The campaign as a whole: how many members score high.
            let scores: Vec<u8> = f
                .sources
                .iter()
                .filter_map(|s| score_of(s).map(|x| x.0))
                .collect();
            if !scores.is_empty() {
                let d = f.details.get_or_insert_with(|| serde_json::json!({}));
                if let Some(o) = d.as_object_mut() {
                    o.insert(
                        "orb_likelihood".into(),
                        serde_json::json!({
                            "members_scored": scores.len(),
                            "max": scores.iter().max(),
                        }),
                    );
                }
            }
            return;
        }
        let Some(ip) = ip else { return };
        let Some((score, reasons)) = score_of(&ip) else {
            return;
        };
        let d = f.details.get_or_insert_with(|| serde_json::json!({}));
        if let Some(o) = d.as_object_mut() {
            o.insert(
                "orb_likelihood".into(),
                serde_json::json!({"source": ip, "score": score, "reasons": reasons}),
            );
        }
    }
}
