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
