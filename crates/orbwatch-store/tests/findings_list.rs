//! The findings list of schema 7 (issue 14): the triage state and the
//! latest copy of each finding kept on write, keyset paging, counts by
//! GROUP BY, and the upgrade of a schema 6 store with findings and triage.

use std::collections::HashMap;

use orbwatch_detect::{Coverage, Finding, FindingKind, Severity};
use orbwatch_store::rusqlite;
use orbwatch_store::{FindingFilter, FindingsCursor, Store, TriageStatus};

/// A finding of `kind` with the given severity, score and first sighting
/// (`None`: without), from `src` (which makes its suppression key).
fn finding(
    id: &str,
    kind: &str,
    src: &str,
    severity: Option<&str>,
    score: Option<u8>,
    first: Option<&str>,
) -> Finding {
    let mut v = serde_json::json!({
        "id": id, "kind": kind, "first_seen": first, "last_seen": first, "count": 3,
        "src_ip": src, "dst_ip": "10.0.0.5", "severity": severity, "score": score,
        "reasons": ["seen in the test corpus"], "evidence": [], "evidence_total": 3
    });
    if kind == "ioc_match" {
        for (k, val) in [
            ("indicator", serde_json::json!(src)),
            ("indicator_type", "ipv4".into()),
            ("feed", "certfr".into()),
            ("direction", "inbound".into()),
            ("in_validity_window", true.into()),
            ("matched_value", serde_json::json!(src)),
            ("matched_field", "src_ip".into()),
            ("peer", "10.0.0.5".into()),
        ] {
            v[k] = val;
        }
    }
    serde_json::from_value(v).unwrap()
}

/// `n` findings of every severity (and none), scores with gaps and
/// repeats, some undated, two kinds; ids `{prefix}NN`, sources from
/// `net`.
fn batch(prefix: &str, net: u8, n: usize) -> Vec<Finding> {
    let sevs = [
        Some("critical"),
        Some("high"),
        Some("medium"),
        Some("low"),
        Some("info"),
        None,
    ];
    (0..n)
        .map(|i| {
            let kind = if i % 3 == 0 {
                "brute_force"
            } else {
                "ioc_match"
            };
            let score = (i % 4 != 3).then_some(((i * 37) % 5) as u8 * 20);
            let first = (i % 7 != 6).then(|| format!("2021-03-{:02}T00:00:00Z", 1 + (i * 11) % 28));
            finding(
                &format!("{prefix}{i:02}"),
                kind,
                &format!("198.51.{net}.{i}"),
                sevs[i % sevs.len()],
                score,
                first.as_deref(),
            )
        })
        .collect()
}

fn rank(sev: Option<&str>) -> i64 {
    match sev {
        Some("critical") => 4,
        Some("high") => 3,
        Some("medium") => 2,
        Some("low") => 1,
        Some("info") => 0,
        _ => -1,
    }
}

/// One listed finding as the list gives it: id, hunt, status, decision.
type Listed = (String, i64, TriageStatus, Option<i64>);

/// The list as schema 6 worked it out, from the raw tables of the store at
/// `path` (any schema): the newest row of each id (or the rows of one
/// hunt), its own latest decision, else the latest on its key, filtered,
/// most serious first. The reference the new columns must agree with.
fn reference_list(path: &std::path::Path, f: &FindingFilter) -> Vec<Listed> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut by_id: HashMap<String, (i64, String)> = HashMap::new();
    let mut by_key: HashMap<String, (i64, String)> = HashMap::new();
    let mut st = c
        .prepare("SELECT seq, finding_id, suppress_key, status FROM triage ORDER BY seq")
        .unwrap();
    let mut q = st.query([]).unwrap();
    while let Some(r) = q.next().unwrap() {
        let seq: i64 = r.get(0).unwrap();
        let status: String = r.get(3).unwrap();
        by_id.insert(r.get(1).unwrap(), (seq, status.clone()));
        by_key.insert(r.get(2).unwrap(), (seq, status));
    }
    let mut st = c
        .prepare(
            "SELECT row, hunt_id, id, suppress_key, kind, severity, score, first_seen FROM findings \
             f WHERE row = (SELECT MAX(row) FROM findings g WHERE g.id = f.id) OR ?1 IS NOT NULL",
        )
        .unwrap();
    let mut q = st.query([f.hunt]).unwrap();
    let mut rows = Vec::new();
    while let Some(r) = q.next().unwrap() {
        let hunt: i64 = r.get(1).unwrap();
        if f.hunt.is_some_and(|h| h != hunt) {
            continue;
        }
        let id: String = r.get(2).unwrap();
        let key: String = r.get(3).unwrap();
        let kind: String = r.get(4).unwrap();
        let sev: Option<String> = r.get(5).unwrap();
        let score: Option<i64> = r.get(6).unwrap();
        let first: Option<String> = r.get(7).unwrap();
        let (seq, status) = match by_id.get(&id).or_else(|| by_key.get(&key)) {
            Some((seq, s)) => (Some(*seq), TriageStatus::parse(s).unwrap()),
            None => (None, TriageStatus::New),
        };
        if (status.suppresses() && !f.show_suppressed)
            || f.status.is_some_and(|s| s != status)
            || f.kind.is_some_and(|k| k.as_str() != kind)
            || f.min_severity
                .is_some_and(|m| rank(sev.as_deref()) < rank(Some(m.as_str())))
        {
            continue;
        }
        rows.push((
            (
                -rank(sev.as_deref()),
                -score.unwrap_or(-1),
                first.is_none(),
                first,
                id.clone(),
            ),
            (id, hunt, status, seq),
        ));
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows.into_iter().map(|(_, l)| l).collect()
}

fn listed(s: &Store, f: &FindingFilter) -> Vec<Listed> {
    s.findings(f)
        .unwrap()
        .into_iter()
        .map(|x| (x.finding.id, x.hunt_id, x.status, x.decision.map(|d| d.seq)))
        .collect()
}

fn filters(hunt: i64) -> Vec<FindingFilter> {
    vec![
        FindingFilter::default(),
        FindingFilter {
            show_suppressed: true,
            ..Default::default()
        },
        FindingFilter {
            status: Some(TriageStatus::Confirmed),
            ..Default::default()
        },
        FindingFilter {
            status: Some(TriageStatus::FalsePositive),
            show_suppressed: true,
            ..Default::default()
        },
        FindingFilter {
            kind: Some(FindingKind::IocMatch),
            min_severity: Some(Severity::Medium),
            ..Default::default()
        },
        FindingFilter {
            hunt: Some(hunt),
            show_suppressed: true,
            ..Default::default()
        },
    ]
}

/// Two hunts with triage: own decisions, decisions inherited through the
/// suppression key (also by findings of the later hunt), a re-opened key,
/// and ids seen again in the second hunt.
fn triaged_store(s: &mut Store) -> i64 {
    let first = batch("a", 1, 30);
    s.record_hunt(&serde_json::json!({}), &Coverage::default(), &first)
        .unwrap();
    for (id, st) in [
        ("a01", TriageStatus::FalsePositive),
        ("a02", TriageStatus::Confirmed),
        ("a04", TriageStatus::Benign),
        ("a05", TriageStatus::Confirmed),
        ("a05", TriageStatus::FalsePositive),
        ("a07", TriageStatus::FalsePositive),
        ("a07", TriageStatus::New),
    ] {
        s.triage(id, st, None, "analyst", None).unwrap();
    }
    // The second hunt: a00..a09 again (same ids, same sources) and new
    // findings b.. whose sources repeat a01 and a04's (same keys).
    let mut second = batch("a", 1, 10);
    let mut newer = batch("b", 1, 12);
    for f in &mut newer {
        f.score = f.score.map(|s| s.saturating_add(5));
    }
    second.append(&mut newer);
    let h2 = s
        .record_hunt(&serde_json::json!({}), &Coverage::default(), &second)
        .unwrap()
        .hunt_id;
    // A decision on b02's own id wins over the key it shares with a02.
    s.triage("b02", TriageStatus::Benign, None, "analyst", None)
        .unwrap();
    h2
}

#[test]
fn the_kept_triage_state_agrees_with_the_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut s = Store::open(&path).unwrap();
    let h2 = triaged_store(&mut s);
    for f in filters(h2) {
        let want = reference_list(&path, &f);
        assert!(
            !want.is_empty(),
            "{f:?} lists nothing: the test proves nothing"
        );
        assert_eq!(listed(&s, &f), want, "{f:?}");
    }
    // b01 inherits a01's false-positive through the key; b02 has its own.
    let all = listed(
        &s,
        &FindingFilter {
            show_suppressed: true,
            ..Default::default()
        },
    );
    let status = |id: &str| all.iter().find(|l| l.0 == id).unwrap().2;
    assert_eq!(status("b01"), TriageStatus::FalsePositive);
    assert_eq!(status("b02"), TriageStatus::Benign);
    assert_eq!(status("a02"), TriageStatus::Confirmed);
    assert_eq!(status("b07"), TriageStatus::New);
}

/// A store made at schema 6 (no triggers, no kept state) with findings
/// and triage is upgraded: the list after the upgrade is the list schema
/// 6 gave, for every filter, and so is that of a store written at schema 7.
#[test]
fn a_schema_6_store_lists_the_same_after_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let new_path = dir.path().join("new.db");
    let mut new = Store::open(&new_path).unwrap();
    let h2 = triaged_store(&mut new);
    drop(new);

    let old_path = dir.path().join("old.db");
    {
        let c = rusqlite::Connection::open(&old_path).unwrap();
        for sql in &orbwatch_store::migrations::MIGRATIONS[..6] {
            c.execute_batch(sql).unwrap();
        }
        c.pragma_update(None, "user_version", 6).unwrap();
        c.execute("ATTACH DATABASE ?1 AS src", [new_path.to_str().unwrap()])
            .unwrap();
        c.execute_batch(
            "INSERT INTO hunts SELECT * FROM src.hunts;
             INSERT INTO findings (row, hunt_id, id, kind, first_seen, last_seen, count, src_ip,
                 dst_ip, indicator, feed, in_window, severity, score, suppress_key, finding_json)
               SELECT row, hunt_id, id, kind, first_seen, last_seen, count, src_ip, dst_ip,
                 indicator, feed, in_window, severity, score, suppress_key, finding_json
               FROM src.findings;
             INSERT INTO triage SELECT * FROM src.triage;",
        )
        .unwrap();
        c.execute("DETACH DATABASE src", []).unwrap();
    }
    let before: Vec<Vec<Listed>> = filters(h2)
        .iter()
        .map(|f| reference_list(&old_path, f))
        .collect();
    let old = Store::open(&old_path).unwrap();
    assert_eq!(
        old.schema_version().unwrap(),
        orbwatch_store::SCHEMA_VERSION
    );
    let new = Store::open(&new_path).unwrap();
    for (f, want) in filters(h2).iter().zip(&before) {
        assert!(!want.is_empty(), "{f:?}");
        assert_eq!(&listed(&old, f), want, "upgraded store, {f:?}");
        assert_eq!(&listed(&new, f), want, "store written at schema 7, {f:?}");
        assert_eq!(old.findings_count(f).unwrap(), want.len());
    }
    assert_eq!(old.finding_counts().unwrap(), new.finding_counts().unwrap());
}

fn ids(page: &[orbwatch_store::StoredFinding]) -> Vec<String> {
    page.iter().map(|f| f.finding.id.clone()).collect()
}

/// Keyset pages: walking with the cursor gives the whole list; after a
/// triage change and new findings between two pages, the next pages are
/// exactly the new list from where the first page ended, so nothing still
/// listed is repeated or skipped.
#[test]
fn keyset_pages_hold_across_triage_and_new_findings() {
    let (_d, mut s) = {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path().join("s.db")).unwrap();
        (d, s)
    };
    s.record_hunt(
        &serde_json::json!({}),
        &Coverage::default(),
        &batch("a", 1, 40),
    )
    .unwrap();
    s.triage("a03", TriageStatus::Benign, None, "t", None)
        .unwrap();
    let open = FindingFilter::default();
    let whole = ids(&s.findings(&open).unwrap());
    assert_eq!(whole.len(), 39);
    for limit in [1, 6, 39, 40, 100] {
        let mut walked = Vec::new();
        let mut cursor: Option<FindingsCursor> = None;
        loop {
            let (page, next) = s.findings_after(&open, cursor.as_ref(), limit).unwrap();
            assert!(page.len() <= limit);
            walked.extend(ids(&page));
            match next {
                Some(c) => {
                    // The cursor goes to clients as text and comes back.
                    cursor = Some(FindingsCursor::decode(&c.encode()).unwrap());
                }
                None => break,
            }
        }
        assert_eq!(walked, whole, "limit {limit}");
    }

    let (first, cursor) = s.findings_after(&open, None, 10).unwrap();
    let first = ids(&first);
    let cursor = cursor.unwrap();
    let last_read = first.last().unwrap().clone();
    // Between two pages: one finding already read and one not yet read are
    // dismissed, one not yet read is confirmed, and a new hunt brings new
    // findings, some more serious than the first page's (they sort before
    // the cursor) and some less.
    let unread = whole[20].clone();
    s.triage(&first[2], TriageStatus::FalsePositive, None, "t", None)
        .unwrap();
    s.triage(&unread, TriageStatus::FalsePositive, None, "t", None)
        .unwrap();
    s.triage(&whole[25], TriageStatus::Confirmed, None, "t", None)
        .unwrap();
    let arrivals = vec![
        finding(
            "c-top",
            "brute_force",
            "192.0.2.1",
            Some("critical"),
            Some(100),
            Some("2021-01-01T00:00:00Z"),
        ),
        finding(
            "c-mid",
            "brute_force",
            "192.0.2.2",
            Some("low"),
            Some(20),
            Some("2021-03-01T00:00:00Z"),
        ),
        finding("c-end", "ioc_match", "192.0.2.3", None, None, None),
    ];
    s.record_hunt(&serde_json::json!({}), &Coverage::default(), &arrivals)
        .unwrap();

    let mut rest = Vec::new();
    let mut next = Some(cursor);
    while let Some(c) = next {
        let (page, n) = s.findings_after(&open, Some(&c), 7).unwrap();
        rest.extend(ids(&page));
        next = n;
    }
    let now = ids(&s.findings(&open).unwrap());
    let all_now = ids(&s
        .findings(&FindingFilter {
            show_suppressed: true,
            ..Default::default()
        })
        .unwrap());
    let at = all_now.iter().position(|i| *i == last_read).unwrap();
    let want: Vec<String> = all_now[at + 1..]
        .iter()
        .filter(|i| now.contains(i))
        .cloned()
        .collect();
    assert_eq!(rest, want);
    assert!(!rest.contains(&unread), "dismissed after the first page");
    assert!(rest.contains(&whole[25]), "confirmed stays listed");
    assert!(
        !rest.contains(&"c-top".to_string()),
        "sorts before the cursor"
    );
    assert!(rest.contains(&"c-mid".to_string()) && rest.contains(&"c-end".to_string()));
    // Every finding still listed that was not on the first page is read
    // once, and none of the first page again.
    for id in whole
        .iter()
        .filter(|i| now.contains(i) && !first.contains(i))
    {
        assert_eq!(rest.iter().filter(|r| *r == id).count(), 1, "{id}");
    }
    assert!(first.iter().all(|i| !rest.contains(i)));
    assert_eq!(s.findings_count(&open).unwrap(), now.len());
    assert_eq!(now.len(), 39 - 2 + 3);
}

#[test]
fn cursors_from_elsewhere_are_refused() {
    let long = format!("1.-80.{}.61", "41".repeat(65));
    for bad in [
        "",
        "zz",
        "7",
        "0g",
        "31",
        "317c",
        "1.2.3",
        "1.2.3.4.5",
        "-1.-80.32.61",
        "100.-80.32.61",
        "1.-1000.32.61",
        "1.-80.3.61",
        "1.-80.3G.61",
        "1.-80.3A.61",
        "1.+8.32.61",
        "1..32.61",
        &long,
    ] {
        assert_eq!(FindingsCursor::decode(bad), None, "{bad:?}");
    }
    // Text of the layout is a position even when no server gave it; hex
    // that is not UTF-8 included.
    for good in ["0.0..", "5.1.7e.", "1.-100.ff.ff", "99.-999.00.00"] {
        let c = FindingsCursor::decode(good).unwrap_or_else(|| panic!("{good}"));
        assert_eq!(FindingsCursor::decode(&c.encode()), Some(c));
    }
}

/// The list's page and its total are read from the `findings_list` index,
/// in its order, with no sort of every finding.
#[test]
fn the_list_is_an_index_range() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("s.db");
    let mut s = Store::open(&path).unwrap();
    s.record_hunt(
        &serde_json::json!({}),
        &Coverage::default(),
        &batch("a", 1, 20),
    )
    .unwrap();
    let c = rusqlite::Connection::open(&path).unwrap();
    let plan = |sql: &str| -> String {
        let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = st
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        rows.join("; ")
    };
    let page = plan(
        "SELECT f.row, f.id FROM findings f WHERE f.is_latest = 1 \
         AND f.triage_status NOT IN ('false-positive', 'benign') \
         AND (f.sev_order, f.score_order, f.seen_order, f.id) > (1, -40, '2021', 'a01') \
         ORDER BY f.sev_order, f.score_order, f.seen_order, f.id LIMIT 101",
    );
    assert!(page.contains("findings_list"), "{page}");
    assert!(!page.contains("TEMP B-TREE"), "{page}");
    let count = plan(
        "SELECT COUNT(*) FROM findings f WHERE f.is_latest = 1 \
         AND f.triage_status NOT IN ('false-positive', 'benign')",
    );
    assert!(count.contains("COVERING INDEX"), "{count}");
    // `finding_counts` (schema 10: by `sev_order`, from a list index).
    let groups = plan(
        "SELECT kind, CASE sev_order WHEN 0 THEN 'critical' WHEN 1 THEN 'high' \
         WHEN 2 THEN 'medium' WHEN 3 THEN 'low' WHEN 4 THEN 'info' END, triage_status, \
         substr(COALESCE(first_seen, last_seen), 1, 10) AS day, COUNT(*) \
         FROM findings WHERE is_latest = 1 GROUP BY kind, sev_order, triage_status, day",
    );
    assert!(
        groups.contains("USING INDEX findings_feed_list")
            || groups.contains("USING COVERING INDEX findings_feed_list")
            || groups.contains("INDEX findings_list"),
        "{groups}"
    );
    // Schema 9: a page with any filter of the list is read in the list's
    // order from an index that holds the filter's columns (no sort, and
    // no table row read for a finding the filter leaves out); a feed's or
    // a hunt's page is a range of its own index.
    let open = "f.triage_status NOT IN ('false-positive', 'benign')";
    for (filter, index) in [
        (
            "f.is_latest = 1 AND f.feed = 'certfr'",
            "findings_feed_list",
        ),
        (
            "f.is_latest = 1 AND f.last_seen >= '2021-03-01'",
            "findings_list",
        ),
        (
            "f.is_latest = 1 AND f.first_seen <= '2021-03-01'",
            "findings_list",
        ),
        ("f.is_latest = 1 AND f.score >= 50", "findings_list"),
        // Schema 9 had SQLite take `findings_counts` for this one and
        // sort every finding of the kind.
        ("f.is_latest = 1 AND f.kind = 'ioc_match'", "findings_list"),
        (
            "f.is_latest = 1 AND f.last_seen >= '2021-03-01' AND f.first_seen <= '2021-03-09'",
            "findings_list",
        ),
        (
            "f.is_latest = 1 AND f.last_seen >= '2021' AND f.score >= 10",
            "findings_list",
        ),
        ("f.hunt_id = 1", "findings_hunt_list"),
        (
            "f.hunt_id = 1 AND f.feed = 'certfr' AND f.last_seen >= '2021'",
            "findings_hunt_list",
        ),
    ] {
        // A feed's or a hunt's total is counted in its index alone.
        if index != "findings_list" {
            let count = plan(&format!(
                "SELECT COUNT(*) FROM findings f WHERE {filter} AND {open}"
            ));
            assert!(count.contains("USING COVERING INDEX"), "{filter}: {count}");
        }
        let page = plan(&format!(
            "SELECT f.row, f.id FROM findings f WHERE {filter} AND {open} \
             ORDER BY f.sev_order, f.score_order, f.seen_order, f.id LIMIT 101"
        ));
        assert!(page.contains(index), "{filter}: {page}");
        assert!(!page.contains("TEMP B-TREE"), "{filter}: {page}");
    }
}

/// Every other query the store runs on `findings` (the look-ups by id and
/// row, a hunt's total, the statements of the triggers, the totals of each
/// filter) still reads through an index after schema 10 dropped
/// `findings_by_first_seen` and `findings_counts`; neither is left.
#[test]
fn every_findings_query_uses_an_index_after_schema_10() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("s.db");
    let mut s = Store::open(&path).unwrap();
    triaged_store(&mut s);
    let c = rusqlite::Connection::open(&path).unwrap();
    let indexes: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'findings' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        indexes,
        [
            "findings_by_id",
            "findings_by_key",
            "findings_feed_list",
            "findings_hunt_list",
            "findings_list",
            "sqlite_autoindex_findings_1"
        ]
    );
    let open = "f.triage_status NOT IN ('false-positive', 'benign')";
    let mut queries: Vec<String> = [
        "f.is_latest = 1",
        "f.is_latest = 1 AND f.kind = 'brute_force'",
        "f.is_latest = 1 AND f.feed = 'certfr'",
        "f.is_latest = 1 AND f.last_seen >= '2021-03-01'",
        "f.is_latest = 1 AND f.first_seen <= '2021-03-09'",
        "f.is_latest = 1 AND f.score >= 50",
        "f.is_latest = 1 AND f.sev_order <= 1",
        "f.is_latest = 1 AND f.triage_status = 'confirmed'",
        "f.is_latest = 1 AND f.id = 'a01'",
        "f.hunt_id = 1 AND f.first_seen <= '2021-03-09'",
    ]
    .iter()
    .map(|w| format!("SELECT COUNT(*) FROM findings f WHERE {w} AND {open}"))
    .collect();
    queries.extend(
        [
            "SELECT id FROM findings WHERE id = 'a01' LIMIT 1",
            "SELECT DISTINCT id FROM findings WHERE id >= 'a' AND id < 'b' ORDER BY id LIMIT 6",
            "SELECT suppress_key FROM findings WHERE id = 'a01' ORDER BY row DESC LIMIT 1",
            "SELECT finding_json FROM findings WHERE row = 3",
            "SELECT COUNT(*) FROM findings WHERE hunt_id = 2",
            "UPDATE findings SET is_latest = 0 WHERE id = 'a01' AND is_latest = 1 AND row < 20",
            "SELECT 1 FROM findings g WHERE g.id = 'a01' AND g.row > 20",
            "UPDATE findings SET is_latest = 1 WHERE row = (SELECT MAX(row) FROM findings WHERE id = 'a01')",
            "UPDATE findings SET triage_status = 'benign' WHERE id = 'a01'",
            "UPDATE findings SET triage_status = 'benign' WHERE suppress_key = 'k' \
             AND NOT EXISTS (SELECT 1 FROM triage t WHERE t.finding_id = findings.id)",
            "DELETE FROM findings WHERE hunt_id = 1",
        ]
        .map(String::from),
    );
    for sql in &queries {
        let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let plan = st
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        // Every line that reads `findings` names an index or the rowid.
        for line in plan.iter().filter(|l| {
            l.starts_with("SCAN f")
                || l.starts_with("SEARCH f")
                || l.starts_with("SCAN g")
                || l.starts_with("SEARCH g")
        }) {
            assert!(
                line.contains("USING INDEX")
                    || line.contains("USING COVERING INDEX")
                    || line.contains("USING INTEGER PRIMARY KEY"),
                "{sql}: {}",
                plan.join("; ")
            );
        }
    }
}

/// `finding_counts` by `sev_order` gives what the GROUP BY on the
/// severity text gave (schema 9's query, run here as the reference) on a
/// store with every severity, findings without one, undated ones and
/// triage.
#[test]
fn finding_counts_by_rank_agree_with_counts_by_severity_text() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("s.db");
    let mut s = Store::open(&path).unwrap();
    triaged_store(&mut s);
    let c = rusqlite::Connection::open(&path).unwrap();
    type Group = (String, Option<String>, String, Option<String>, i64);
    let mut want: Vec<Group> = c
        .prepare(
            "SELECT kind, severity, triage_status, substr(COALESCE(first_seen, last_seen), 1, 10) AS day, \
             COUNT(*) FROM findings WHERE is_latest = 1 GROUP BY kind, severity, triage_status, day",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut got: Vec<Group> = s
        .finding_counts()
        .unwrap()
        .into_iter()
        .map(|g| {
            (
                g.kind,
                g.severity,
                g.status.as_str().to_string(),
                g.day,
                g.count as i64,
            )
        })
        .collect();
    want.sort();
    got.sort();
    assert!(
        want.iter().any(|g| g.1.is_none()),
        "a finding without severity"
    );
    assert!(want.iter().any(|g| g.3.is_none()), "an undated finding");
    assert!(want.iter().any(|g| g.2 != "new"), "a triaged finding");
    assert_eq!(got, want);
}
