//! Two copies of one finding, each kept by a run that saw part of its
//! records (a daemon before and after `kill -9`, a sender that re-sends
//! after a reconnect): their merge is the view of both, and never less
//! than either.

use jiff::Timestamp;
use orbwatch_detect::finding::{Finding, covers, merge_copies};
use proptest::prelude::*;

/// Record `i` of a session: one minute apart, line `i + 1`, account
/// `user{i % 5}`.
fn record(i: usize) -> serde_json::Value {
    serde_json::json!({
        "file": "auth.log", "line": i + 1, "format": "syslog",
        "raw": format!("record {i}"), "time": time(i).to_string(),
    })
}

fn time(i: usize) -> Timestamp {
    Timestamp::from_second(1_614_902_400 + 60 * i as i64).unwrap()
}

/// The copy a run keeps after seeing the session's records `seen` (in
/// time order), with at most `cap` of them as evidence.
fn copy(seen: &[usize], cap: usize, severity: &str, score: u8) -> Finding {
    let mut accounts: Vec<String> = seen.iter().map(|i| format!("user{}", i % 5)).collect();
    accounts.sort();
    accounts.dedup();
    serde_json::from_value(serde_json::json!({
        "id": "00000000000000aa", "kind": "brute_force",
        "first_seen": time(seen[0]).to_string(),
        "last_seen": time(*seen.last().unwrap()).to_string(),
        "count": seen.len(), "src_ip": "203.0.113.9", "dst_ip": null,
        "accounts": accounts, "severity": severity, "score": score,
        "reasons": [format!("{} failed logins", seen.len())],
        "evidence": seen.iter().take(cap).map(|&i| record(i)).collect::<Vec<_>>(),
        "evidence_total": seen.len(),
    }))
    .unwrap()
}

/// The example of the defect this mends: the kept copy had 2 records
/// (10:00:00 and 10:43:20); after a restart the first was sent again and
/// raised the same finding with 1. The store must keep 2 and 10:43:20.
#[test]
fn a_resent_first_record_does_not_shrink_the_kept_finding() {
    let kept = copy(&[0, 43], 5, "medium", 40);
    let again = copy(&[0], 5, "low", 30);
    assert!(!covers(&again, kept.count, kept.first_seen, kept.last_seen));
    let merged = merge_copies(again, kept.clone());
    assert_eq!(merged, kept);
}

/// A running daemon updating its own finding: the newer copy holds the
/// kept one, and the merge is the newer copy itself.
#[test]
fn a_copy_that_saw_more_replaces_the_kept_one() {
    let kept = copy(&[0, 1], 5, "low", 30);
    let newer = copy(&[0, 1, 2, 3], 5, "medium", 40);
    assert!(covers(&newer, kept.count, kept.first_seen, kept.last_seen));
    assert_eq!(merge_copies(newer.clone(), kept), newer);
}

fn subset(mask: u64, n: usize) -> Vec<usize> {
    // Record 0 is in both: it fixes the finding's id.
    (0..n).filter(|&i| i == 0 || mask >> i & 1 == 1).collect()
}

proptest! {
    #[test]
    fn the_merge_is_the_view_of_both_copies(
        n in 1usize..40,
        a in any::<u64>(),
        b in any::<u64>(),
        cap_a in 1usize..8,
        cap_b in 1usize..8,
        score_a in 0u8..=100,
        score_b in 0u8..=100,
        sev_a in prop::sample::select(vec!["low", "medium", "high"]),
        sev_b in prop::sample::select(vec!["low", "medium", "high"]),
    ) {
        let (sa, sb) = (subset(a, n), subset(b, n));
        let (ca, cb) = (copy(&sa, cap_a, sev_a, score_a), copy(&sb, cap_b, sev_b, score_b));
        let m = merge_copies(ca.clone(), cb.clone());
        // Never less than either copy.
        prop_assert_eq!(m.count, ca.count.max(cb.count));
        prop_assert_eq!(m.evidence_total, ca.evidence_total.max(cb.evidence_total));
        prop_assert_eq!(m.first_seen, Some(time(0)));
        prop_assert_eq!(m.last_seen, ca.last_seen.max(cb.last_seen));
        prop_assert_eq!(m.severity, ca.severity.max(cb.severity));
        prop_assert_eq!(m.score, ca.score.max(cb.score));
        // Every account of either, once.
        let mut want: Vec<String> = ca.accounts.iter().chain(&cb.accounts).cloned().collect();
        want.sort();
        want.dedup();
        let mut got = m.accounts.clone();
        got.sort();
        prop_assert_eq!(got, want);
        // The earliest distinct evidence records of either, as many as the
        // longer list held.
        let mut union: Vec<usize> = sa.iter().take(cap_a).chain(sb.iter().take(cap_b)).copied().collect();
        union.sort();
        union.dedup();
        union.truncate(ca.evidence.len().max(cb.evidence.len()));
        let want_ev: Vec<Timestamp> = union.iter().map(|&i| time(i)).collect();
        let got_ev: Vec<Timestamp> = m.evidence.iter().filter_map(|e| e.time).collect();
        prop_assert_eq!(got_ev, want_ev);
        // The same in either order, but for the tie of equal counts, where
        // the newer copy's sentences are kept.
        let r = merge_copies(cb.clone(), ca.clone());
        prop_assert_eq!((r.count, r.first_seen, r.last_seen), (m.count, m.first_seen, m.last_seen));
        if ca.count != cb.count {
            prop_assert_eq!(&r.reasons, &m.reasons);
        }
        // A copy merged with itself is itself; a copy that holds every
        // record of the other covers it.
        prop_assert_eq!(merge_copies(ca.clone(), ca.clone()), ca.clone());
        if sb.iter().all(|i| sa.contains(i)) {
            prop_assert!(covers(&ca, cb.count, cb.first_seen, cb.last_seen));
        }
        // A copy that covers the other keeps its figures when merged.
        if covers(&ca, cb.count, cb.first_seen, cb.last_seen) {
            prop_assert_eq!((m.count, m.first_seen, m.last_seen), (ca.count, ca.first_seen, ca.last_seen));
        }
    }
}

/// A report made while an attack went on, then marked superseded when
/// the attack ended as another finding: that verdict stands in the merge
/// whichever copy carries it, even when the other copy saw more records.
#[test]
fn a_superseded_verdict_stands_whichever_copy_carries_it() {
    let mut superseded = copy(&[0, 1], 5, "info", 0);
    superseded.details = Some(serde_json::json!({"superseded_by": "00000000000000bb"}));
    superseded
        .reasons
        .push("superseded by finding 00000000000000bb".into());
    let fuller = copy(&[0, 1, 2, 3], 5, "high", 80);
    for merged in [
        merge_copies(superseded.clone(), fuller.clone()),
        merge_copies(fuller.clone(), superseded.clone()),
    ] {
        assert_eq!(merged.count, 4);
        assert_eq!(merged.last_seen, fuller.last_seen);
        assert_eq!(merged.severity, superseded.severity);
        assert_eq!(merged.score, Some(0));
        assert_eq!(merged.details, superseded.details);
        assert_eq!(merged.reasons, superseded.reasons);
    }
}
