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
        for ip in external_sources(f, internal) {
            note(self.per.entry(ip).or_default(), f);
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
        for ip in backdoor.keys() {
            if !internal.contains(*ip) {
                self.per.entry(*ip).or_default();
            }
        }
        let scored = self
            .per
            .into_iter()
            .filter_map(|(ip, e)| scored(ip, &e, backdoor, enricher, min_score).map(|s| (ip, s)))
            .collect();
        OrbScores { scored }
    }
}

/// The external sources a finding speaks of: a campaign's members, an
/// indicator match's matched address, else its source.
fn external_sources(f: &Finding, internal: &InternalNets) -> Vec<IpAddr> {
    let mut srcs: Vec<IpAddr> = match f.kind {
        FindingKind::DistributedBruteforce => f.sources.clone(),
        FindingKind::IocMatch => f
            .ioc
            .as_ref()
            .and_then(|i| i.matched_value.parse().ok())
            .into_iter()
            .collect(),
        _ => f.src_ip.into_iter().collect(),
    };
    srcs.retain(|ip| !internal.contains(*ip));
    srcs
}

/// Count what `f` says of one of its sources into `e`: the first finding
/// of each kind gives the kind's points and reason.
fn note(e: &mut Evidence, f: &Finding) {
    if !e.kinds.insert(f.kind) {
        return;
    }
    match f.kind {
        FindingKind::IocMatch => {
            let Some(i) = &f.ioc else { return };
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

/// A source's score and reasons: what its findings said (`e`), then the
/// backdoor ports it used and its address space; `None` below
/// `min_score`.
fn scored(
    ip: IpAddr,
    e: &Evidence,
    backdoor: &BTreeMap<IpAddr, BTreeSet<u16>>,
    enricher: &Enricher,
    min_score: u8,
) -> Option<(u8, Vec<String>)> {
    let mut points = e.points;
    let mut reasons = e.reasons.clone();
    if let Some(ports) = backdoor.get(&ip) {
        points += 25;
        let p: Vec<String> = ports.iter().map(u16::to_string).collect();
        reasons.push(format!(
            "traffic on port {} that router backdoors listen on",
            p.join(", ")
        ));
    }
    if let Some(info) = enricher.lookup(ip) {
        if info.residential {
            points += 15;
            reasons.push("residential or dynamic address space".to_string());
        } else if info.hosting {
            points -= 10;
            reasons.push("hosting provider address".to_string());
        }
    }
    let s = points.clamp(0, 100) as u8;
    (s >= min_score).then_some((s, reasons))
}

/// What each external source has been seen doing over a live pipeline's
/// run, not only in the findings of one output: `watch` hands findings
/// on in batches, and scored per batch, a source's brute force handed on
/// an hour after its indicator match did not count the listing (a hunt,
/// which scores at the end, does).
///
/// Bounded: past `cap` sources, the least recently seen quarter is
/// forgotten (counted); a forgotten source that comes back starts from
/// what its new findings say.
pub struct OrbMemory {
    per: hashbrown::HashMap<IpAddr, (Evidence, u64)>,
    /// Findings seen so far: each source's entry keeps the number of the
    /// last one that named it.
    seen: u64,
    cap: usize,
    forgotten: u64,
}

impl OrbMemory {
    pub fn new(cap: usize) -> Self {
        Self {
            per: hashbrown::HashMap::new(),
            seen: 0,
            cap: cap.max(4),
            forgotten: 0,
        }
    }

    /// Count what `findings` say of their sources, then add
    /// `details.orb_likelihood` to each whose source, with all that was
    /// seen of it so far, scores at least `min_score`.
    pub fn annotate(
        &mut self,
        findings: &mut [Finding],
        backdoor: &BTreeMap<IpAddr, BTreeSet<u16>>,
        enricher: &Enricher,
        internal: &InternalNets,
        min_score: u8,
    ) {
        let mut named: BTreeSet<IpAddr> = BTreeSet::new();
        for f in findings.iter() {
            self.seen += 1;
            for ip in external_sources(f, internal) {
                let entry = self.per.entry(ip).or_default();
                note(&mut entry.0, f);
                entry.1 = self.seen;
                named.insert(ip);
            }
        }
        let empty = Evidence::default();
        let scored = named
            .into_iter()
            .filter_map(|ip| {
                let e = self.per.get(&ip).map_or(&empty, |x| &x.0);
                scored(ip, e, backdoor, enricher, min_score).map(|s| (ip, s))
            })
            .collect();
        let scores = OrbScores { scored };
        for f in findings.iter_mut() {
            scores.annotate(f);
        }
        self.bound();
    }

    /// Sources forgotten over the bound so far.
    pub fn forgotten(&self) -> u64 {
        self.forgotten
    }

    /// Sources kept now.
    pub fn len(&self) -> usize {
        self.per.len()
    }

    pub fn is_empty(&self) -> bool {
        self.per.is_empty()
    }

    fn bound(&mut self) {
        if self.per.len() <= self.cap {
            return;
        }
        let mut last: Vec<u64> = self.per.values().map(|(_, n)| *n).collect();
        let drop = self.per.len() - (self.cap - self.cap / 4);
        last.select_nth_unstable(drop - 1);
        let before = last[drop - 1];
        let n = self.per.len();
        self.per.retain(|_, (_, seen)| *seen > before);
        self.forgotten += (n - self.per.len()) as u64;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An indicator match of 94.59.209.77 inside its window (a finding as
    /// `hunt` writes it), and a brute force from `src`.
    fn listed() -> Finding {
        serde_json::from_str(
            r#"{"id":"ca6bbe10271067f3","kind":"ioc_match","first_seen":"2021-05-21T16:45:10Z","last_seen":"2021-05-21T16:45:10Z","count":1,"src_ip":"94.59.209.77","dst_ip":null,"indicator":"94.59.209.77","indicator_type":"ipv4","feed":"CERTFR-2021-IOC-003-IOC","direction":"inbound","in_validity_window":true,"confidence":80,"valid_from":null,"valid_until":null,"outcomes":{"auth_success":1,"auth_failure":0,"blocked":0,"allowed":0,"dns":0,"http":0,"outbound":0,"unknown":0},"matched_value":"94.59.209.77","matched_field":"src_ip","evidence":[],"evidence_total":0}"#,
        )
        .expect("finding")
    }

    fn brute_force(src: &str) -> Finding {
        serde_json::from_str(&format!(
            r#"{{"id":"b-{src}","kind":"brute_force","first_seen":null,"last_seen":null,"count":10,"src_ip":"{src}","dst_ip":null,"evidence":[],"evidence_total":0}}"#
        ))
        .expect("finding")
    }

    fn score(f: &Finding) -> Option<u64> {
        f.details.as_ref()?["orb_likelihood"]["score"].as_u64()
    }

    /// A source listed in one output and brute forcing in a later one:
    /// the later finding's score counts the listing too, as a hunt's
    /// does (scored per output, the brute force alone, 10 points, was
    /// below the bar and got no section).
    #[test]
    fn a_later_output_counts_what_earlier_ones_said_of_the_source() {
        let (backdoor, enricher, internal) = (
            BTreeMap::new(),
            Enricher::default(),
            InternalNets::default(),
        );
        let mut memory = OrbMemory::new(1000);
        let mut first = vec![listed()];
        memory.annotate(&mut first, &backdoor, &enricher, &internal, 30);
        assert_eq!(score(&first[0]), Some(40));
        let mut later = vec![brute_force("94.59.209.77"), brute_force("198.51.100.7")];
        memory.annotate(&mut later, &backdoor, &enricher, &internal, 30);
        assert_eq!(score(&later[0]), Some(50), "{:?}", later[0].details);
        assert_eq!(score(&later[1]), None, "10 points: below the bar");
        // The batch function, on the later output alone, misses it.
        let mut alone = vec![brute_force("94.59.209.77")];
        annotate(&mut alone, &backdoor, &enricher, &internal, 30);
        assert_eq!(score(&alone[0]), None);
    }

    /// Past its bound the memory forgets the least recently named
    /// sources, counted; the most recent stay.
    #[test]
    fn the_memory_forgets_the_least_recently_named_sources_past_its_bound() {
        let (backdoor, enricher, internal) = (
            BTreeMap::new(),
            Enricher::default(),
            InternalNets::default(),
        );
        let mut memory = OrbMemory::new(8);
        for n in 0..20 {
            let mut f = vec![brute_force(&format!("198.51.100.{n}"))];
            memory.annotate(&mut f, &backdoor, &enricher, &internal, 30);
            assert!(memory.len() <= 8, "{}", memory.len());
        }
        assert_eq!(memory.forgotten() + memory.len() as u64, 20);
        let recent: IpAddr = "198.51.100.19".parse().expect("ip");
        assert!(memory.per.contains_key(&recent));
        let old: IpAddr = "198.51.100.0".parse().expect("ip");
        assert!(!memory.per.contains_key(&old));
    }
}
