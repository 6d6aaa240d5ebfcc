//! IDS verdicts as evidence: a Suricata alert or a Zeek notice that names a
//! scan or a brute force.
//!
//! An IDS that already decided "this is a scan" (`ET SCAN …`,
//! `Scan::Port_Scan`, `Scan::Address_Scan`) or "this is password guessing"
//! (`SSH::Password_Guessing`, `FTP::Bruteforcing`, an ET rule saying
//! "brute force") saw things orbwatch may not see, such as packet sizes
//! inside encrypted sessions. Its verdict strengthens the finding
//! orbwatch made for the same source (the signature becomes a reason and
//! the score rises), or becomes a finding of its own when orbwatch saw
//! nothing else: `port_scan` for scans, `brute_force` for guessing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Draft, NodeId, Obs, ObsKind, Tables, new_finding, severity_of};
use crate::finding::FindingKind;

/// Verdict class: a scan.
pub const SCAN: u64 = 1;
/// Verdict class: a brute force or password guessing.
pub const BRUTE_FORCE: u64 = 2;

/// Score points a verdict adds to an existing finding.
const BOOST: u8 = 10;

/// `ids_verdict` bounds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IdsVerdictConfig {
    /// (source, verdict class) pairs with verdicts kept at once, per
    /// partition (default 1,000,000: about 150 MB). A hunt keeps them to
    /// the end of input, to strengthen the findings orbwatch makes for
    /// the same sources, and an IDS facing the internet names millions
    /// of scanners a year. Beyond it the least recently active quarter
    /// is judged at once against the findings made so far and not yet
    /// handed on (a finding made later for the same source, or live one
    /// already handed on, is then not strengthened; the verdict stands as
    /// a finding of its own), counted and logged.
    pub max_keys: u64,
}

impl Default for IdsVerdictConfig {
    fn default() -> Self {
        Self {
            max_keys: 1_000_000,
        }
    }
}

/// The class of a signature or notice name, if it names a scan or a
/// brute force.
pub fn class_of(sig: &str) -> Option<u64> {
    let l = sig.trim().to_ascii_lowercase();
    if l.is_empty() {
        return None;
    }
    if l.contains("brute")
        || l.contains("password_guess")
        || l.contains("password guess")
        || l.contains("bruteforc")
    {
        return Some(BRUTE_FORCE);
    }
    let scan_rule = ["et scan ", "gpl scan ", "etpro scan "]
        .iter()
        .any(|p| l.starts_with(p));
    if scan_rule || l.starts_with("scan::") {
        return Some(SCAN);
    }
    None
}

#[derive(Debug, Default, Clone)]
pub struct Verdicts {
    first: i64,
    last: i64,
    count: u64,
    /// Signature ids (names) and how often each was seen.
    sigs: BTreeMap<u16, u64>,
}

/// Collects verdicts per (source, class).
pub struct IdsVerdicts {
    by_key: hashbrown::HashMap<(NodeId, u64), Verdicts>,
    max_keys: u64,
    /// Keys judged early, over `max_keys`.
    ended_early: u64,
}

impl IdsVerdicts {
    pub fn new(cfg: &IdsVerdictConfig) -> Self {
        Self {
            by_key: hashbrown::HashMap::new(),
            max_keys: cfg.max_keys,
            ended_early: 0,
        }
    }

    /// Keys judged before the end (or their idle time), over `max_keys`.
    pub fn ended_early(&self) -> u64 {
        self.ended_early
    }

    /// Mark the sources it keeps verdicts of.
    pub fn mark_held(&self, m: &mut super::observe::HeldIds) {
        self.by_key.keys().for_each(|&(src, _)| m.mark_node(src));
    }

    /// Feed one [`ObsKind::IdsVerdict`] observation; over `max_keys`, the
    /// least recently active quarter is judged against `drafts` now.
    pub fn observe(&mut self, o: &Obs, t: &Tables, drafts: &mut Vec<Draft>) {
        if o.kind != ObsKind::IdsVerdict {
            return;
        }
        let key = (o.src, o.aux);
        let gone = super::shed_for_new_key(
            &mut self.by_key,
            &key,
            self.max_keys,
            |&(src, class), v| (v.last, t.ip_key(src), class),
            &mut self.ended_early,
            |cap, excess| {
                format!(
                    "more than {cap} (source, IDS verdict class) pairs at once (ids_verdict.max_keys): the {excess} least recently active are judged now against the findings made so far, and so on each time the limit is passed"
                )
            },
        );
        for ((src, class), v) in gone {
            judge(src, class, v, t, drafts);
        }
        let v = self.by_key.entry(key).or_insert(Verdicts {
            first: o.time,
            last: o.time,
            ..Default::default()
        });
        v.last = v.last.max(o.time);
        v.count += 1;
        // A few signatures per key are enough to explain it.
        if v.sigs.len() < 8 || v.sigs.contains_key(&o.svc) {
            *v.sigs.entry(o.svc).or_default() += 1;
        }
    }

    /// Strengthen the matching drafts, or add findings of their own.
    pub fn finish(mut self, t: &Tables, drafts: &mut Vec<Draft>) {
        for ((src, class), v) in super::take_where(&mut self.by_key, |_| true) {
            judge(src, class, v, t, drafts);
        }
    }

    /// Take out the verdicts of every key whose last verdict is older
    /// than `before` (ms), for a live pipeline to judge with [`judge`]:
    /// at the end of input is too late for a daemon, and the map would
    /// grow for ever.
    pub fn take_idle(&mut self, before: i64) -> Vec<((NodeId, u64), Verdicts)> {
        super::take_where(&mut self.by_key, |v| v.last < before)
    }

    /// Keys with verdicts now.
    pub fn tracked(&self) -> usize {
        self.by_key.len()
    }
}

/// Judge the verdicts `v` of class `class` from `src`: strengthen the
/// drafts of `drafts` that made the same call for the same source (true
/// when there were some), or add a finding of their own.
pub fn judge(src: NodeId, class: u64, v: Verdicts, t: &Tables, drafts: &mut Vec<Draft>) -> bool {
    let names: Vec<String> = v
        .sigs
        .iter()
        .map(|(s, n)| {
            let name = t.service(*s);
            if *n == 1 || v.sigs.len() == 1 {
                format!("\"{name}\"")
            } else {
                format!("\"{name}\" ({n} times)")
            }
        })
        .collect();
    let sigs = names.join(", ");
    let matches = |k: FindingKind| match class {
        SCAN => k == FindingKind::PortScan,
        _ => matches!(k, FindingKind::BruteForce | FindingKind::PasswordSpray),
    };
    let mut strengthened = false;
    for d in drafts
        .iter_mut()
        .filter(|d| matches(d.finding.kind) && d.srcs.contains(&src))
    {
        d.finding
            .reasons
            .push(format!("an IDS reached the same verdict: {sigs}"));
        let score = d.finding.score.unwrap_or(50).saturating_add(BOOST).min(95);
        d.finding.score = Some(score);
        d.finding.severity = Some(severity_of(score));
        if !d.kinds.contains(&ObsKind::IdsVerdict) {
            d.kinds.push(ObsKind::IdsVerdict);
        }
        strengthened = true;
    }
    if strengthened {
        return true;
    }
    let kind = if class == SCAN {
        FindingKind::PortScan
    } else {
        FindingKind::BruteForce
    };
    let ip_s = t.source_label(src);
    let mut f = new_finding(
        kind,
        &["ids_verdict", &ip_s, &v.first.to_string()],
        v.first,
        v.last,
        v.count,
        t.ip(src),
    );
    let what = if class == SCAN {
        "a scan"
    } else {
        "a brute force"
    };
    f.reasons.push(format!(
        "an IDS named {what} from this source {} time{}: {sigs}",
        v.count,
        if v.count == 1 { "" } else { "s" }
    ));
    f.reasons.push(
        "orbwatch's own detectors saw too little of it to decide; the verdict is the IDS's"
            .to_string(),
    );
    let score = 50;
    f.score = Some(score);
    f.severity = Some(severity_of(score));
    f.details = Some(serde_json::json!({
        "method": "ids_verdict",
        "source": ip_s,
        "verdicts": v.count,
        "signatures": v.sigs.keys().map(|s| t.service(*s)).collect::<Vec<_>>(),
    }));
    drafts.push(Draft {
        finding: f,
        srcs: vec![src],
        kinds: vec![ObsKind::IdsVerdict],
        svc: None,
        from: v.first,
        to: v.last,
    });
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scan verdict on `src` at `ms` (signature id 1).
    fn verdict(ms: i64, src: NodeId) -> Obs {
        Obs {
            aux: SCAN,
            svc: 1,
            ..Obs::test(ObsKind::IdsVerdict, 1_609_459_200_000 + ms, src)
        }
    }

    /// Over `max_keys`, the least recently active verdicts are judged at
    /// once: verdicts on a flood of new sources keep the table at the
    /// bound, each flood source's verdict still stands as a finding, and
    /// a source named all along is judged once, with every verdict.
    #[test]
    fn a_flood_of_new_sources_keeps_the_verdicts_bounded() {
        let cfg = IdsVerdictConfig { max_keys: 16 };
        let t = Tables::new();
        let mut ids = IdsVerdicts::new(&cfg);
        let mut out = Vec::new();
        let scanner: NodeId = 0x0a00_0001;
        for i in 0..400i64 {
            ids.observe(&verdict(i * 1000, 0x0b00_0000 + i as NodeId), &t, &mut out);
            if i % 10 == 0 {
                ids.observe(&verdict(i * 1000 + 1, scanner), &t, &mut out);
            }
            assert!(ids.tracked() <= 16, "at {i}: {}", ids.tracked());
        }
        assert!(ids.ended_early() > 350, "{}", ids.ended_early());
        ids.finish(&t, &mut out);
        assert_eq!(out.len(), 401, "one finding a source");
        let scanner_findings: Vec<_> = out.iter().filter(|d| d.srcs == [scanner]).collect();
        assert_eq!(scanner_findings.len(), 1);
        assert_eq!(scanner_findings[0].finding.count, 40, "every verdict");
    }

    /// Judged early, a verdict still strengthens the finding orbwatch
    /// made for its source before.
    #[test]
    fn a_verdict_judged_early_still_strengthens_an_earlier_finding() {
        let cfg = IdsVerdictConfig { max_keys: 16 };
        let t = Tables::new();
        let mut ids = IdsVerdicts::new(&cfg);
        let src: NodeId = 0x0a00_0002;
        let mut out = Vec::new();
        ids.observe(&verdict(0, src), &t, &mut out);
        let mut own = new_finding(FindingKind::PortScan, &["test"], 0, 0, 1, t.ip(src));
        own.score = Some(60);
        out.push(Draft {
            finding: own,
            srcs: vec![src],
            kinds: vec![ObsKind::Probe],
            svc: None,
            from: 0,
            to: 0,
        });
        for i in 1..40i64 {
            ids.observe(&verdict(i * 1000, 0x0b00_0000 + i as NodeId), &t, &mut out);
        }
        let strengthened = &out[0].finding;
        assert_eq!(strengthened.score, Some(70), "{strengthened:?}");
        assert!(
            strengthened
                .reasons
                .iter()
                .any(|r| r.contains("an IDS reached the same verdict"))
        );
        assert_eq!(out.iter().filter(|d| d.srcs == [src]).count(), 1);
    }

    #[test]
    fn classes() {
        assert_eq!(class_of("ET SCAN Potential SSH Scan"), Some(SCAN));
        assert_eq!(
            class_of("ET SCAN Sipvicious User-Agent Detected (friendly-scanner)"),
            Some(SCAN)
        );
        assert_eq!(class_of("Scan::Port_Scan"), Some(SCAN));
        assert_eq!(class_of("Scan::Address_Scan"), Some(SCAN));
        assert_eq!(class_of("SSH::Password_Guessing"), Some(BRUTE_FORCE));
        assert_eq!(class_of("FTP::Bruteforcing"), Some(BRUTE_FORCE));
        assert_eq!(
            class_of("ET SCAN Rapid POP3 Connections - Possible Brute Force Attack"),
            Some(BRUTE_FORCE)
        );
        assert_eq!(
            class_of("ET EXPLOIT Apache HTTP Server 2.4.49 - Path Traversal Attempt"),
            None
        );
        assert_eq!(class_of("ET WEB_SERVER Possible scanner"), None);
        assert_eq!(class_of("SSL::Invalid_Server_Cert"), None);
        assert_eq!(class_of(""), None);
    }
}
