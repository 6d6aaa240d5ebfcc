//! Hunts, findings and triage in the store: round trip of the Finding JSON,
//! filters, the decision history, and suppression of the same (indicator,
//! peer) or (kind, source) in later hunts.

use orbwatch_detect::{Coverage, Finding, FindingKind, Severity};
use orbwatch_store::{FindingFilter, IdMatch, Store, StoreError, TriageStatus, suppression_key};

fn ioc(id: &str, indicator: &str, peer: Option<&str>, first: &str) -> Finding {
    let mut v = serde_json::json!({
        "id": id, "kind": "ioc_match", "first_seen": first, "last_seen": first, "count": 2,
        "src_ip": indicator, "dst_ip": peer, "indicator": indicator, "indicator_type": "ipv4",
        "feed": "certfr", "direction": "inbound", "in_validity_window": true, "confidence": 80,
        "valid_from": null, "valid_until": null, "matched_value": indicator,
        "matched_field": "src_ip",
        "evidence": [{"file": "a.log", "line": 3, "format": "syslog", "raw": "<script>x</script>"}],
        "evidence_total": 1
    });
    if let Some(p) = peer {
        v["peer"] = p.into();
    }
    serde_json::from_value(v).unwrap()
}

fn behaviour(id: &str, src: &str, score: u8) -> Finding {
    serde_json::from_value(serde_json::json!({
        "id": id, "kind": "brute_force", "first_seen": "2021-03-05T00:00:00Z",
        "last_seen": "2021-03-05T00:10:00Z", "count": 40, "src_ip": src, "dst_ip": null,
        "severity": "high", "score": score, "reasons": ["40 failed logins in 10 minutes"],
        "evidence": [], "evidence_total": 40
    }))
    .unwrap()
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("s.db")).unwrap();
    (dir, store)
}

#[test]
fn keys() {
    assert_eq!(
        suppression_key(&ioc(
            "a",
            "1.2.3.4",
            Some("10.0.0.5"),
            "2021-03-02T00:00:00Z"
        )),
        "ioc|1.2.3.4|10.0.0.5"
    );
    assert_eq!(
        suppression_key(&ioc("a", "1.2.3.4", None, "2021-03-02T00:00:00Z")),
        "ioc|1.2.3.4|-"
    );
    assert_eq!(
        suppression_key(&behaviour("b", "5.6.7.8", 70)),
        "brute_force|5.6.7.8"
    );
}

#[test]
fn findings_round_trip_and_filter() {
    let (_d, mut s) = open();
    let mut critical = ioc("aa01", "1.2.3.4", Some("10.0.0.5"), "2021-03-02T00:00:00Z");
    critical.severity = Some(Severity::Critical);
    critical.score = Some(95);
    let fs = vec![
        critical,
        // Written before IOC matches had a severity: listed last.
        ioc("aa02", "1.2.3.9", None, "2021-04-02T00:00:00Z"),
        behaviour("bb01", "5.6.7.8", 70),
    ];
    let cov = Coverage {
        findings: 3,
        ..Default::default()
    };
    let rec = s
        .record_hunt(&serde_json::json!({"paths": ["a.log"]}), &cov, &fs)
        .unwrap();
    assert_eq!(rec.findings, 3);
    assert!(rec.suppressed.is_empty());
    let all = s.findings(&FindingFilter::default()).unwrap();
    assert_eq!(all.len(), 3);
    // The stored JSON gives back exactly the finding.
    assert_eq!(all[0].finding, fs[0]);
    // Most serious first: critical, high, then no severity.
    assert_eq!(all[1].finding, fs[2]);
    assert_eq!(all[2].finding, fs[1]);
    assert!(all.iter().all(|f| f.status == TriageStatus::New));

    let kind = |k| FindingFilter {
        kind: Some(k),
        ..Default::default()
    };
    assert_eq!(s.findings(&kind(FindingKind::BruteForce)).unwrap().len(), 1);
    assert_eq!(s.findings(&kind(FindingKind::IocMatch)).unwrap().len(), 2);
    let since = FindingFilter {
        since: Some("2021-03-03T00:00:00Z".parse().unwrap()),
        ..Default::default()
    };
    assert_eq!(s.findings(&since).unwrap().len(), 2);
    let score = FindingFilter {
        min_score: Some(60),
        ..Default::default()
    };
    assert_eq!(s.findings(&score).unwrap().len(), 2);
    let severity = |v| FindingFilter {
        min_severity: Some(v),
        ..Default::default()
    };
    let ids = |f: Vec<orbwatch_store::StoredFinding>| {
        f.into_iter().map(|f| f.finding.id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(s.findings(&severity(Severity::High)).unwrap()),
        ["aa01", "bb01"]
    );
    assert_eq!(
        ids(s.findings(&severity(Severity::Critical)).unwrap()),
        ["aa01"]
    );
    assert_eq!(s.findings(&severity(Severity::Info)).unwrap().len(), 2);
    let feed = FindingFilter {
        feed: Some("certfr".into()),
        ..Default::default()
    };
    assert_eq!(s.findings(&feed).unwrap().len(), 2);

    let h = s.hunt(None).unwrap().unwrap();
    assert_eq!(h.summary.id, rec.hunt_id);
    assert_eq!(h.coverage, cov);
    assert_eq!(h.summary.args["paths"][0], "a.log");
    assert!(s.hunt(Some(99)).unwrap().is_none());
}

#[test]
fn triage_history_and_suppression_in_later_hunts() {
    let (_d, mut s) = open();
    let first = vec![
        ioc("aa01", "1.2.3.4", Some("10.0.0.5"), "2021-03-02T00:00:00Z"),
        ioc("aa02", "1.2.3.4", Some("10.0.0.6"), "2021-03-02T00:00:00Z"),
        behaviour("bb01", "5.6.7.8", 70),
    ];
    s.record_hunt(&serde_json::json!({}), &Coverage::default(), &first)
        .unwrap();

    // Prefixes: unique, ambiguous, unknown.
    assert_eq!(
        s.resolve_finding_id("bb").unwrap(),
        IdMatch::Unique("bb01".into())
    );
    assert_eq!(
        s.resolve_finding_id("aa0").unwrap(),
        IdMatch::Ambiguous(vec!["aa01".into(), "aa02".into()])
    );
    assert_eq!(s.resolve_finding_id("zz").unwrap(), IdMatch::None);
    assert_eq!(s.resolve_finding_id("%").unwrap(), IdMatch::None);
    assert!(matches!(
        s.triage("nope", TriageStatus::Confirmed, None, "me", None),
        Err(StoreError::UnknownFinding { .. })
    ));

    let t1 = "2021-08-01T10:00:00Z".parse().unwrap();
    let t2 = "2021-08-01T11:00:00Z".parse().unwrap();
    s.triage(
        "aa01",
        TriageStatus::Confirmed,
        Some("first look"),
        "alice",
        Some(t1),
    )
    .unwrap();
    s.triage(
        "aa01",
        TriageStatus::FalsePositive,
        Some("our VPN egress"),
        "bob",
        Some(t2),
    )
    .unwrap();
    s.triage("bb01", TriageStatus::Benign, None, "bob", Some(t2))
        .unwrap();
    let hist = s.decisions(Some("aa01")).unwrap();
    assert_eq!(hist.len(), 2);
    assert_eq!(hist[0].author, "alice");
    assert_eq!(hist[0].status, TriageStatus::Confirmed);
    assert_eq!(hist[1].note.as_deref(), Some("our VPN egress"));
    assert_eq!(hist[1].at, t2);

    // Dismissed findings are hidden by default, shown on request.
    let shown = s.findings(&FindingFilter::default()).unwrap();
    assert_eq!(
        shown
            .iter()
            .map(|f| f.finding.id.as_str())
            .collect::<Vec<_>>(),
        vec!["aa02"]
    );
    let all = s
        .findings(&FindingFilter {
            show_suppressed: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all.len(), 3);

    // A later hunt: the same (indicator, peer) and (kind, src) come back
    // under new ids and are suppressed; another peer is not.
    let second = vec![
        ioc("cc01", "1.2.3.4", Some("10.0.0.5"), "2021-05-02T00:00:00Z"),
        ioc("cc02", "1.2.3.4", Some("10.0.0.7"), "2021-05-02T00:00:00Z"),
        behaviour("dd01", "5.6.7.8", 90),
    ];
    let rec = s
        .record_hunt(&serde_json::json!({}), &Coverage::default(), &second)
        .unwrap();
    assert_eq!(rec.suppressed, vec!["cc01".to_string(), "dd01".to_string()]);
    let h2 = FindingFilter {
        hunt: Some(rec.hunt_id),
        show_suppressed: true,
        ..Default::default()
    };
    let got = s.findings(&h2).unwrap();
    let cc01 = got.iter().find(|f| f.finding.id == "cc01").unwrap();
    assert!(cc01.suppressed);
    assert_eq!(cc01.status, TriageStatus::FalsePositive);
    assert_eq!(cc01.decision.as_ref().unwrap().finding_id, "aa01");
    let fp = FindingFilter {
        status: Some(TriageStatus::FalsePositive),
        show_suppressed: true,
        ..Default::default()
    };
    assert_eq!(s.findings(&fp).unwrap().len(), 2);

    // A later decision on the key lifts the suppression.
    s.triage("cc01", TriageStatus::New, Some("re-open"), "carol", None)
        .unwrap();
    let rec3 = s
        .record_hunt(&serde_json::json!({}), &Coverage::default(), &second)
        .unwrap();
    assert_eq!(rec3.suppressed, vec!["dd01".to_string()]);
}

#[test]
fn store_of_schema_1_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(orbwatch_store::migrations::MIGRATIONS[0])
            .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
    }
    let mut s = Store::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), orbwatch_store::SCHEMA_VERSION);
    // Schema 3 (subscriptions) came along.
    assert!(s.subscriptions().unwrap().is_empty());
    s.record_hunt(&serde_json::json!({}), &Coverage::default(), &[])
        .unwrap();
    assert!(s.findings(&FindingFilter::default()).unwrap().is_empty());
}

/// A watch run is one hunt filled commit by commit: a finding raised
/// again replaces its earlier state, the run's count follows, and a
/// commit whose other rows fail keeps nothing of its batch.
#[test]
fn live_commits_replace_findings_and_fail_whole() {
    let (_d, mut s) = open();
    let started: jiff::Timestamp = "2021-03-05T00:00:00Z".parse().unwrap();
    let run = s
        .begin_live(&serde_json::json!({"command": "watch"}), started)
        .unwrap();
    let mut a = behaviour("aaaa000000000001", "203.0.113.9", 60);
    s.commit_live(run, std::slice::from_ref(&a), None).unwrap();
    a.count = 90;
    let b = behaviour("bbbb000000000002", "203.0.113.10", 40);
    s.commit_live(run, &[a.clone(), b.clone()], None).unwrap();
    let rows = s
        .findings(&FindingFilter {
            hunt: Some(run),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(rows.len(), 2);
    let kept_a = rows.iter().find(|r| r.finding.id == a.id).unwrap();
    assert_eq!(kept_a.finding.count, 90);
    let hunts = s.hunts().unwrap();
    assert_eq!(hunts.iter().find(|h| h.id == run).unwrap().findings, 2);

    // Something else written in the same transaction fails: the new
    // finding is not kept either.
    let c = behaviour("cccc000000000003", "203.0.113.11", 70);
    let path = s.path().to_path_buf();
    let tx = s.write_transaction().unwrap();
    orbwatch_store::findings::keep_live(&tx, &path, run, std::slice::from_ref(&c), None).unwrap();
    assert!(
        tx.execute("INSERT INTO no_such_table VALUES (1)", [])
            .is_err()
    );
    drop(tx);
    let rows = s
        .findings(&FindingFilter {
            hunt: Some(run),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.finding.id != c.id));
}

/// `keep_live` says which findings are new to the run, and the run's
/// count adds exactly those: an update is not new, an id twice in one
/// batch is new once, a finding another run kept is new to this one, and
/// a failed transaction counts nothing.
#[test]
fn live_commits_say_which_findings_are_new_and_count_them_once() {
    let (_d, mut s) = open();
    let started: jiff::Timestamp = "2021-03-05T00:00:00Z".parse().unwrap();
    let first = s
        .begin_live(&serde_json::json!({"command": "watch", "n": 1}), started)
        .unwrap();
    let run = s
        .begin_live(&serde_json::json!({"command": "watch", "n": 2}), started)
        .unwrap();
    let path = s.path().to_path_buf();
    let keep = |s: &mut Store, run: i64, findings: &[Finding]| -> Vec<bool> {
        let tx = s.write_transaction().unwrap();
        let new = orbwatch_store::findings::keep_live(&tx, &path, run, findings, None).unwrap();
        tx.commit().unwrap();
        new
    };
    let count = |s: &Store, run: i64| {
        s.hunts()
            .unwrap()
            .iter()
            .find(|h| h.id == run)
            .unwrap()
            .findings
    };
    let mut a = behaviour("aaaa000000000001", "203.0.113.9", 60);
    let b = behaviour("bbbb000000000002", "203.0.113.10", 40);
    assert_eq!(keep(&mut s, first, std::slice::from_ref(&b)), [true]);
    assert_eq!(keep(&mut s, run, std::slice::from_ref(&a)), [true]);
    a.count = 90;
    let mut a_again = a.clone();
    a_again.count = 95;
    assert_eq!(
        keep(&mut s, run, &[a.clone(), b.clone(), b.clone()]),
        [false, true, false]
    );
    assert_eq!(count(&s, run), 2);
    assert_eq!(keep(&mut s, run, &[a_again]), [false]);
    assert_eq!(count(&s, run), 2);
    assert_eq!(count(&s, first), 1);

    let c = behaviour("cccc000000000003", "203.0.113.11", 70);
    let tx = s.write_transaction().unwrap();
    let new = orbwatch_store::findings::keep_live(&tx, &path, run, std::slice::from_ref(&c), None)
        .unwrap();
    assert_eq!(new, [true]);
    drop(tx);
    assert_eq!(
        count(&s, run),
        2,
        "a transaction not committed counts nothing"
    );
    assert_eq!(keep(&mut s, run, std::slice::from_ref(&c)), [true]);
    assert_eq!(count(&s, run), 3);

    // More than the store writes at once (4,096), an id again in a later
    // part: it is kept by then, so not new twice.
    let mut many: Vec<Finding> = (0..5_000u32)
        .map(|i| {
            behaviour(
                &format!("dddd{i:012}"),
                &format!("198.51.{}.{}", i >> 8, i & 255),
                50,
            )
        })
        .collect();
    many.push(many[0].clone());
    let new = keep(&mut s, run, &many);
    assert_eq!(new.len(), 5_001);
    assert_eq!(new.iter().filter(|&&n| n).count(), 5_000);
    assert!(!new[5_000]);
    assert_eq!(count(&s, run), 5_003);
}

/// A daemon restarted after `kill -9` that is sent a kept record again
/// raises the same finding (same id, fixed by its first record) from fresh
/// state: the store keeps the view of both copies, so a kept count or last
/// sighting never goes back, and a later copy that saw more replaces it.
#[test]
fn a_finding_raised_again_after_a_restart_never_shrinks() {
    let (_d, mut s) = open();
    let args = serde_json::json!({"command": "watch"});
    let t0: jiff::Timestamp = "2024-05-01T10:00:00Z".parse().unwrap();
    let at = |m: i64| t0 + jiff::SignedDuration::from_secs(60 * m);
    let copy = |minutes: &[i64]| {
        let mut f = ioc("ee01", "203.0.113.77", None, "2024-05-01T10:00:00Z");
        f.count = minutes.len() as u64;
        f.evidence_total = f.count;
        f.last_seen = Some(at(*minutes.last().unwrap()));
        f.evidence = minutes
            .iter()
            .map(|&m| orbwatch_detect::Evidence {
                file: "syslog-tcp".into(),
                line: None,
                offset: None,
                format: "syslog".into(),
                raw: format!("line at minute {m}"),
                time: Some(at(m)),
                context: false,
            })
            .collect();
        f
    };
    let shown = |s: &Store| {
        let rows = s.findings(&FindingFilter::default()).unwrap();
        assert_eq!(rows.len(), 1);
        rows[0].finding.clone()
    };
    let first_run = s.begin_live(&args, t0).unwrap();
    s.commit_live(first_run, &[copy(&[0, 43])], None).unwrap();

    // Restarted: the first record comes again.
    let second_run = s.begin_live(&args, at(60)).unwrap();
    s.commit_live(second_run, &[copy(&[0])], None).unwrap();
    let f = shown(&s);
    assert_eq!(f.count, 2);
    assert_eq!(f.last_seen, Some(at(43)));
    assert_eq!(f.evidence, copy(&[0, 43]).evidence);
    // The row kept by the second run is the merged one.
    let second = s
        .findings(&FindingFilter {
            hunt: Some(second_run),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(second[0].finding.count, 2);

    // The second run goes on and sees more than the first did.
    s.commit_live(second_run, &[copy(&[0, 43, 50])], None)
        .unwrap();
    let f = shown(&s);
    assert_eq!(f.count, 3);
    assert_eq!(f.last_seen, Some(at(50)));
    assert_eq!(f.evidence, copy(&[0, 43, 50]).evidence);
}

/// A page of findings is exactly that slice of the whole list, with the
/// same total, whatever the offset and limit, with dismissed findings
/// left out (or shown) and a status filter, and only the page decoded.
#[test]
fn a_page_is_the_slice_of_the_whole_list() {
    let (_d, mut s) = open();
    let mut found = Vec::new();
    for i in 0..23u8 {
        found.push(ioc(
            &format!("i{i:02}"),
            &format!("45.137.21.{i}"),
            Some("10.0.0.5"),
            &format!("2021-03-{:02}T00:00:00Z", 1 + i % 20),
        ));
    }
    for i in 0..7u8 {
        found.push(behaviour(
            &format!("b{i}"),
            &format!("91.219.236.{i}"),
            40 + i,
        ));
    }
    s.record_hunt(&serde_json::json!({}), &Coverage::default(), &found)
        .unwrap();
    // Dismiss three, confirm one.
    for (id, st) in [
        ("i03", TriageStatus::FalsePositive),
        ("i07", TriageStatus::Benign),
        ("b2", TriageStatus::FalsePositive),
        ("i11", TriageStatus::Confirmed),
    ] {
        s.triage(id, st, None, "t", None).unwrap();
    }
    let filters = [
        FindingFilter::default(),
        FindingFilter {
            show_suppressed: true,
            ..Default::default()
        },
        FindingFilter {
            kind: Some(FindingKind::IocMatch),
            ..Default::default()
        },
        FindingFilter {
            status: Some(TriageStatus::Confirmed),
            ..Default::default()
        },
    ];
    let mut totals = Vec::new();
    for f in &filters {
        let all: Vec<String> = s
            .findings(f)
            .unwrap()
            .into_iter()
            .map(|x| x.finding.id)
            .collect();
        totals.push(all.len());
        for (offset, limit) in [(0, 5), (5, 5), (20, 100), (26, 3), (40, 10), (0, 1000)] {
            let (total, page) = s.findings_page(f, offset, limit).unwrap();
            assert_eq!(total, all.len());
            let ids: Vec<String> = page.into_iter().map(|x| x.finding.id).collect();
            let want: Vec<String> = all.iter().skip(offset).take(limit).cloned().collect();
            assert_eq!(ids, want, "{f:?} {offset} {limit}");
        }
    }
    assert_eq!(totals, [27, 30, 21, 1]);
}
