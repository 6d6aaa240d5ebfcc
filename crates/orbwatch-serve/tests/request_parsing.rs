//! What the server makes of request bodies and query strings, on the fuzz
//! target's seeds (tests/data/serve-requests) and on hostile input: a
//! decision, a filter or an error, never a panic.

use orbwatch_detect::{FindingKind, Severity};
use orbwatch_serve::api::parse_request;
use orbwatch_store::TriageStatus;

fn seed(name: &str) -> (String, Vec<u8>) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/serve-requests")
        .join(name);
    let data = std::fs::read(&path).unwrap();
    let i = data.iter().position(|&b| b == b'\n').unwrap();
    (
        String::from_utf8(data[..i].to_vec()).unwrap(),
        data[i + 1..].to_vec(),
    )
}

#[test]
fn seeds() {
    let (q, b) = seed("triage-fp.txt");
    let (t, f) = parse_request(&b, &q);
    assert_eq!(t.unwrap().unwrap(), TriageStatus::FalsePositive);
    let f = f.unwrap().unwrap();
    assert_eq!(f.kind, Some(FindingKind::IocMatch));
    assert_eq!(f.min_severity, Some(Severity::High));

    let (q, b) = seed("filters.txt");
    let (t, f) = parse_request(&b, &q);
    assert_eq!(t.unwrap().unwrap(), TriageStatus::New);
    let f = f.unwrap().unwrap();
    assert!(f.show_suppressed && f.since.is_some() && f.until.is_some());
    assert_eq!(f.status, Some(TriageStatus::Benign));
    assert_eq!(
        (f.hunt, f.min_score, f.feed.as_deref()),
        (Some(1), Some(50), Some("certfr"))
    );

    // Unknown field: the body is refused; a bare year, a score above 100
    // (not a u8) and a foreign cursor: the query is refused.
    let (q, b) = seed("bad.txt");
    let (t, f) = parse_request(&b, &q);
    assert!(t.is_none());
    assert!(f.is_none_or(|r| r.is_err()));
    let (_, f) = parse_request(b"", "since=2021");
    assert!(f.unwrap().is_err());
    let (_, f) = parse_request(b"", "cursor=zz");
    assert!(f.unwrap().is_err());
    // Offsets are no cursors any more, nor is a `k` cursor that is not hex.
    let (_, f) = parse_request(b"", "cursor=o2");
    assert!(f.unwrap().is_err());
    let (_, f) = parse_request(b"", "cursor=kzz");
    assert!(f.unwrap().is_err());
}

#[test]
fn hostile_input() {
    let long_note = format!(
        "{{\"status\":\"confirmed\",\"note\":\"{}\"}}",
        "x".repeat(orbwatch_serve::api::MAX_NOTE + 1)
    );
    assert!(parse_request(long_note.as_bytes(), "").0.unwrap().is_err());
    let deep = "[".repeat(100_000);
    assert!(parse_request(deep.as_bytes(), "").0.is_none());
    assert!(parse_request(&[0xff, 0xfe, 0x00], "").0.is_none());
    for q in [
        "",
        "&&&",
        "kind=%ff",
        "limit=99999999999999999999999",
        "since=%00",
        "min_score=-1",
        "hunt=9223372036854775808",
        "cursor=o99999999999999999999999",
        "since=99999999999d",
    ] {
        let _ = parse_request(b"{}", q);
    }
    assert!(parse_request(b"", "since=99999999999d").1.unwrap().is_err());
}

/// The API reads `since` and `until` in exactly the forms its OpenAPI
/// document gives, and refuses the others the CLI reads (epoch seconds,
/// `7 days`, `P7D`, a space for `T`, six-digit durations), so that a
/// request the document calls invalid is not guessed at.
#[test]
fn api_times_are_the_documented_forms() {
    for ok in [
        "today",
        "yesterday",
        "24h",
        "7d",
        "2w",
        "30min",
        "99999s",
        "2021-01-01",
        "2021-01-01T00:00:00Z",
        "2021-01-01t10:20:30z",
        "2021-07-20T10:00:00.123456%2B02:00",
        "2021-07-20T10:00:00-23:59",
    ] {
        let f = parse_request(b"", &format!("since={ok}&until={ok}")).1;
        let f = f.unwrap().unwrap_or_else(|e| panic!("{ok}: {e:?}"));
        assert!(f.since.is_some() && f.until.is_some(), "{ok}");
    }
    for bad in [
        "0.5",
        "1234567890",
        "123456d",
        "7%20days",
        "P7D",
        "2021-01-01%2010:00:00",
        "2021-01-01T10:00:00",
        "2021-01-01T10:00Z",
        "2021-01-01T10:00:00.Z",
        "2021-01-01T10:00:00%2B0200",
        "Today",
        "2021-1-1",
        "2021-13-01",
    ] {
        let f = parse_request(b"", &format!("until={bad}")).1;
        assert!(f.unwrap().is_err(), "{bad} was accepted");
    }
    // The dashboard's form keeps the CLI's wider grammar.
    let q: orbwatch_serve::api::FindingsQuery =
        orbwatch_serve::extract::query_from("since=7%20days&until=2021-01-01%2010:00:00").unwrap();
    assert!(q.filter().is_ok() && q.api_filter().is_err());
}

/// A page size beyond any count is "larger than 1000" (given 1000, as
/// documented), not an error for its size; what is not a count is refused.
#[test]
fn huge_limits_saturate() {
    use orbwatch_serve::api::FindingsQuery;
    use orbwatch_serve::extract::query_from;
    let q: FindingsQuery = query_from("limit=99999999999999999999999").unwrap();
    assert_eq!(q.limit, Some(usize::MAX));
    let q: FindingsQuery = query_from("limit=").unwrap();
    assert_eq!(q.limit, None);
    for bad in ["limit=-1", "limit=1.5", "limit=ten", "limit=%2B5"] {
        assert!(query_from::<FindingsQuery>(bad).is_err(), "{bad}");
    }
}
