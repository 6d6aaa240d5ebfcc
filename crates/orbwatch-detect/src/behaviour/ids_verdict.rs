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

use super::{Draft, NodeId, Obs, ObsKind, Tables, new_finding, severity_of};
use crate::finding::FindingKind;

/// Verdict class: a scan.
pub const SCAN: u64 = 1;
/// Verdict class: a brute force or password guessing.
pub const BRUTE_FORCE: u64 = 2;

/// Score points a verdict adds to an existing finding.
const BOOST: u8 = 10;

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
#[derive(Default)]
pub struct IdsVerdicts {
    by_key: BTreeMap<(NodeId, u64), Verdicts>,
}

impl IdsVerdicts {
    pub fn new() -> Self {
        Self::default()
    }

    /// Mark the sources it keeps verdicts of.
    pub fn mark_held(&self, m: &mut super::observe::HeldIds) {
        self.by_key.keys().for_each(|&(src, _)| m.mark_node(src));
    }

    /// Feed one [`ObsKind::IdsVerdict`] observation.
    pub fn observe(&mut self, o: &Obs) {
        if o.kind != ObsKind::IdsVerdict {
            return;
        }
        let v = self.by_key.entry((o.src, o.aux)).or_insert(Verdicts {
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
    pub fn finish(self, t: &Tables, drafts: &mut Vec<Draft>) {
        for ((src, class), v) in self.by_key {
            judge(src, class, v, t, drafts);
        }
    }

    /// Take out the verdicts of every key whose last verdict is older
    /// than `before` (ms), for a live pipeline to judge with [`judge`]:
    /// at the end of input is too late for a daemon, and the map would
    /// grow for ever.
    pub fn take_idle(&mut self, before: i64) -> Vec<((NodeId, u64), Verdicts)> {
        let idle: Vec<(NodeId, u64)> = self
            .by_key
            .iter()
            .filter(|(_, v)| v.last < before)
            .map(|(k, _)| *k)
            .collect();
        idle.into_iter()
            .filter_map(|k| self.by_key.remove(&k).map(|v| (k, v)))
            .collect()
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
