//! A value its feed lists on several rows gives one sighting per record,
//! whatever the path: one aggregator, chunks merged in either order, or an
//! engine read back from a snapshot. The same value in another feed stays
//! its own finding, and a network listed twice is grouped like an address.

use std::sync::Arc;

use orbwatch_detect::{Aggregator, Finding, InternalNets, IocEngine, MatchScratch, Severity};
use orbwatch_event::{AuthOutcome, Event, EventKind, Origin};
use orbwatch_intel::value::parse_value;
use orbwatch_intel::{Indicator, Provenance};

fn row(value: &str, feed: &str, from: &str, until: &str, tag: &str, conf: u8) -> Indicator {
    let mut i = Indicator::new(
        parse_value(value, None).expect("test value parses"),
        Provenance {
            feed: feed.into(),
            file: format!("{feed}.csv"),
            line: 1,
            record_id: None,
        },
    );
    i.valid_from = Some(from.parse().expect("time"));
    i.valid_until = Some(until.parse().expect("time"));
    i.confidence = Some(conf);
    i.tags.other = vec![tag.to_string()];
    i
}

fn engine() -> IocEngine {
    IocEngine::new(
        vec![
            row(
                "192.0.2.7",
                "certfr",
                "2021-03-01T00:00:00Z",
                "2021-03-10T00:00:00Z",
                "tier1",
                50,
            ),
            row(
                "192.0.2.7",
                "certfr",
                "2021-03-05T00:00:00Z",
                "2021-03-20T00:00:00Z",
                "tier2",
                80,
            ),
            row(
                "192.0.2.7",
                "certfr",
                "2021-04-01T00:00:00Z",
                "2021-04-30T00:00:00Z",
                "tier3",
                60,
            ),
            row(
                "192.0.2.7",
                "other",
                "2021-01-01T00:00:00Z",
                "2021-12-31T00:00:00Z",
                "x",
                90,
            ),
            row(
                "198.51.100.0/24",
                "certfr",
                "2021-03-01T00:00:00Z",
                "2021-03-02T00:00:00Z",
                "net-a",
                50,
            ),
            row(
                "198.51.100.0/24",
                "certfr",
                "2021-03-03T00:00:00Z",
                "2021-03-04T00:00:00Z",
                "net-b",
                50,
            ),
        ],
        InternalNets::default(),
    )
}

/// Auth records (raw line and event) at the given times: inside rows 1+2
/// (overlap), row 2 only, no row, row 3, and one naming a listed network
/// on both ends.
fn records() -> Vec<(String, Event)> {
    let mut out = Vec::new();
    for (t, ok) in [
        ("2021-03-06T10:00:00Z", false),
        ("2021-03-15T10:00:00Z", true),
        ("2021-03-25T10:00:00Z", true),
        ("2021-04-02T10:00:00Z", false),
    ] {
        let mut ev = Event::new(EventKind::Auth);
        ev.time = Some(t.parse().unwrap());
        ev.src_ip = Some("192.0.2.7".parse().unwrap());
        ev.auth = Some(if ok {
            AuthOutcome::Success
        } else {
            AuthOutcome::Failure
        });
        ev.user = Some("root".into());
        let verb = if ok { "Accepted" } else { "Failed" };
        out.push((
            format!("{t} sshd[1]: {verb} password for root from 192.0.2.7 port 2222 ssh2"),
            ev,
        ));
    }
    let mut ev = Event::new(EventKind::Connection);
    ev.time = Some("2021-03-03T12:00:00Z".parse().unwrap());
    ev.src_ip = Some("198.51.100.9".parse().unwrap());
    ev.dst_ip = Some("198.51.100.20".parse().unwrap());
    ev.conn_state = Some("REJ".into());
    out.push(("198.51.100.9 -> 198.51.100.20 REJ".to_string(), ev.clone()));
    out
}

fn hunt(e: &IocEngine, split: Option<usize>, reverse: bool) -> Vec<Finding> {
    let origin = Origin {
        file: Arc::from("auth.log"),
        line: 1,
        offset: 0,
        format: "syslog",
    };
    let recs = records();
    let cut = split.unwrap_or(recs.len());
    let mut parts = vec![Aggregator::new(), Aggregator::new()];
    let mut scratch = MatchScratch::default();
    for (i, (raw, ev)) in recs.iter().enumerate() {
        let agg = &mut parts[usize::from(i >= cut)];
        e.match_record(raw.as_bytes(), true, Some(ev), &origin, &mut scratch, agg);
    }
    let (a, b) = (parts.remove(0), parts.remove(0));
    let (mut first, second) = if reverse { (b, a) } else { (a, b) };
    first.merge(second);
    let mut fs = first.finish(e);
    fs.sort_by(|x, y| x.id.cmp(&y.id));
    fs
}

fn summary(fs: &[Finding]) -> Vec<String> {
    let mut v: Vec<String> = fs
        .iter()
        .map(|f| {
            let i = f.ioc.as_ref().unwrap();
            let o = i.outcomes.unwrap();
            format!(
                "{} {} {} in={} count={} ok={} fail={} blocked={} {} tags={} windows={} conf={:?}",
                i.feed,
                i.indicator,
                f.first_seen.unwrap(),
                i.in_validity_window,
                f.count,
                o.auth_success,
                o.auth_failure,
                o.blocked,
                f.severity.unwrap().as_str(),
                i.tags.other.join("+"),
                i.validity_windows.len(),
                i.confidence
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn rows_of_one_value_make_one_sighting() {
    let e = engine();
    let fs = hunt(&e, None, false);
    assert_eq!(
        summary(&fs),
        [
            // 03-06 (rows 1 and 2 overlap) and 03-15 (row 2): inside;
            // days apart, so separate findings.
            "certfr 192.0.2.7 2021-03-06T10:00:00Z in=true count=1 ok=0 fail=1 blocked=0 medium tags=tier1+tier2+tier3 windows=3 conf=Some(80)",
            "certfr 192.0.2.7 2021-03-15T10:00:00Z in=true count=1 ok=1 fail=0 blocked=0 critical tags=tier1+tier2+tier3 windows=3 conf=Some(80)",
            // No row's window holds 03-25: outside, critical lowered to high.
            "certfr 192.0.2.7 2021-03-25T10:00:00Z in=false count=1 ok=1 fail=0 blocked=0 high tags=tier1+tier2+tier3 windows=3 conf=Some(80)",
            "certfr 192.0.2.7 2021-04-02T10:00:00Z in=true count=1 ok=0 fail=1 blocked=0 medium tags=tier1+tier2+tier3 windows=3 conf=Some(80)",
            // The network listed twice, named on both ends of one record.
            "certfr 198.51.100.0/24 2021-03-03T12:00:00Z in=true count=1 ok=0 fail=0 blocked=1 low tags=net-a+net-b windows=2 conf=Some(50)",
            // Another feed listing the same address keeps its own findings.
            "other 192.0.2.7 2021-03-06T10:00:00Z in=true count=1 ok=0 fail=1 blocked=0 medium tags=x windows=0 conf=Some(90)",
            "other 192.0.2.7 2021-03-15T10:00:00Z in=true count=1 ok=1 fail=0 blocked=0 critical tags=x windows=0 conf=Some(90)",
            "other 192.0.2.7 2021-03-25T10:00:00Z in=true count=1 ok=1 fail=0 blocked=0 critical tags=x windows=0 conf=Some(90)",
            "other 192.0.2.7 2021-04-02T10:00:00Z in=true count=1 ok=0 fail=1 blocked=0 medium tags=x windows=0 conf=Some(90)",
        ]
    );
    let certfr: u64 = fs
        .iter()
        .filter(|f| f.ioc.as_ref().unwrap().indicator == "192.0.2.7")
        .filter(|f| f.ioc.as_ref().unwrap().feed == "certfr")
        .map(|f| f.count)
        .sum();
    assert_eq!(certfr, 4, "four records, four sightings, not one per row");
    let out = fs
        .iter()
        .find(|f| !f.ioc.as_ref().unwrap().in_validity_window)
        .unwrap();
    assert_eq!(out.severity, Some(Severity::High));
    assert!(
        out.reasons
            .iter()
            .any(|r| r.contains("severity lowered from critical to high")),
        "{:?}",
        out.reasons
    );
}

#[test]
fn chunks_and_snapshots_give_the_same_findings() {
    let e = engine();
    let whole = hunt(&e, None, false);
    for cut in 0..=5 {
        for reverse in [false, true] {
            assert_eq!(hunt(&e, Some(cut), reverse), whole, "cut {cut} {reverse}");
        }
    }
    let mut bytes = Vec::new();
    e.write_snapshot(&mut bytes, "t").expect("write");
    let (loaded, _) =
        IocEngine::read_snapshot(&bytes[..], bytes.len() as u64, InternalNets::default())
            .expect("read");
    assert_eq!(hunt(&loaded, Some(2), true), whole);
    // Ids are deterministic and distinct.
    let mut ids: Vec<&str> = whole.iter().map(|f| f.id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), whole.len());
}
