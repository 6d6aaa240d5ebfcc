//! Feeds are read as their authors meant them (issue 11, part 2; issue 17,
//! the plain list with a typo):
//!
//! - STIX 2.x as JSON lines is STIX whatever the length of its first
//!   object, and only indicator patterns give indicators;
//! - CSV exports of STIX indicators keep their windows, confidence and ids;
//! - a structured file that no reader takes is refused with a message that
//!   says what it looks like and which options name its format, never read
//!   as free text behind the user's back;
//! - a list of one value per line with a typo is a plain list, and the typo
//!   is rejected with its line number;
//! - the corpus feeds load exactly as before.
//!
//! Fixtures: `tests/data/feeds-stix-misp` (see its ATTRIBUTION.md); the
//! corpus feeds are read from `../shared/corpus/feeds` and skipped when it
//! is absent.

use std::collections::BTreeMap;
use std::path::PathBuf;

use jiff::Timestamp;
use orbwatch_intel::readers::{self, CsvMapping};
use orbwatch_intel::{FeedError, FeedFormat, Indicator, ParsedFeed, ReadOptions};

fn data(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/feeds-stix-misp")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A corpus feed, or `None` (with the skip message) when the corpus is
/// absent.
fn corpus(name: &str) -> Option<Vec<u8>> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus/feeds")
        .join(name);
    match std::fs::read(&p) {
        Ok(b) => Some(b),
        Err(_) => {
            println!("skipped: ../shared/corpus not found");
            None
        }
    }
}

fn opts() -> ReadOptions {
    ReadOptions::new("test")
}

fn read(bytes: &[u8], file: &str, fmt: Option<FeedFormat>) -> ParsedFeed {
    readers::read_feed(bytes, file, fmt, &opts())
        .unwrap_or_else(|e| panic!("{file} should read: {e}"))
}

fn refused(bytes: &[u8], file: &str) -> String {
    match readers::read_feed(bytes, file, None, &opts()) {
        Err(e @ FeedError::Unrecognised { .. }) => e.to_string(),
        other => panic!("{file} should be refused as unrecognised structure, got {other:?}"),
    }
}

fn counts(p: &ParsedFeed) -> BTreeMap<&'static str, u64> {
    p.counts()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| (k.as_str(), n))
        .collect()
}

fn expect(pairs: &[(&'static str, u64)]) -> BTreeMap<&'static str, u64> {
    pairs.iter().copied().collect()
}

fn values(p: &ParsedFeed) -> Vec<String> {
    p.indicators.iter().map(|i| i.value.to_string()).collect()
}

fn find<'a>(p: &'a ParsedFeed, v: &str) -> Vec<&'a Indicator> {
    p.indicators
        .iter()
        .filter(|i| i.value.to_string() == v)
        .collect()
}

fn ts(s: &str) -> Option<Timestamp> {
    Some(s.parse().unwrap())
}

fn reasons(p: &ParsedFeed) -> Vec<(u64, String)> {
    p.rejected
        .iter()
        .map(|r| (r.line, r.reason.clone()))
        .collect()
}

fn skips(p: &ParsedFeed) -> Vec<(u64, String)> {
    p.skipped
        .iter()
        .map(|s| (s.line, s.reason.clone()))
        .collect()
}

/// No indicator may come from prose or reference fields: none of these
/// strings may appear in any value.
fn assert_no_prose_values(p: &ParsedFeed, prose: &[&str]) {
    for i in &p.indicators {
        let v = i.value.to_string();
        for s in prose {
            assert!(!v.contains(s), "{v} comes from prose ({s})");
        }
    }
}

// ---------------------------------------------------------------------------
// STIX JSON lines
// ---------------------------------------------------------------------------

#[test]
fn stix_json_lines_export_with_a_long_first_object() {
    let bytes = data("stix21-attack-lines.jsonl");
    let first = bytes.split(|b| *b == b'\n').next().unwrap();
    assert!(
        first.len() > 20 * 1024,
        "the first line is {} bytes",
        first.len()
    );
    // No indicator in the first 64 KiB: only the STIX ids tell.
    let head = &bytes[..64 * 1024];
    assert!(!String::from_utf8_lossy(head).contains("\"type\": \"indicator\""));
    assert_eq!(readers::detect(head), Some(FeedFormat::Stix));

    let p = read(&bytes, "stix21-attack-lines.jsonl", None);
    assert_eq!(p.format, Some(FeedFormat::Stix));
    assert_eq!(
        counts(&p),
        expect(&[("ipv4", 3), ("domain", 1), ("hash", 1)])
    );
    let lines: Vec<(String, u64)> = p
        .indicators
        .iter()
        .map(|i| (i.value.to_string(), i.provenance.line))
        .collect();
    assert_eq!(
        lines,
        vec![
            ("192.0.2.41".to_string(), 10),
            ("198.51.100.42".to_string(), 11),
            ("198.51.100.43".to_string(), 11),
            ("c2.relay-ops.example".to_string(), 12),
            (
                "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824".to_string(),
                13
            ),
        ]
    );
    assert_eq!(
        skips(&p),
        vec![(14, "pattern_type yara is not a STIX pattern".to_string())]
    );
    assert!(p.rejected.is_empty(), "{:?}", p.rejected);
    // Descriptions, external references and the other objects' prose name
    // 133 URLs, addresses and domains; none is an indicator.
    assert_no_prose_values(
        &p,
        &[
            "attack.mitre.org",
            "research-blog",
            "relay-docs",
            "vendor-intel",
            "198.18.",
            "203.0.113.250",
            "actor-profile",
            "payload-mirror",
        ],
    );

    let a = find(&p, "192.0.2.41")[0];
    assert_eq!(a.valid_from, ts("2024-01-10T00:00:00Z"));
    assert_eq!(a.valid_until, ts("2024-04-10T00:00:00Z"));
    assert_eq!(a.confidence, Some(80));
    assert_eq!(a.tags.tlp.as_deref(), Some("green"));
    assert_eq!(a.tags.actors, vec!["Example Relay Actor"]);
    assert_eq!(a.tags.roles, vec!["anonymization", "relay"]);
    assert!(
        a.tags
            .other
            .contains(&"source=Example Relay Research".to_string())
    );
    assert!(
        a.provenance
            .record_id
            .as_deref()
            .is_some_and(|id| id.starts_with("indicator--"))
    );
    let h = &p.indicators[4];
    assert!(
        h.tags
            .other
            .contains(&"malware=ExampleRelayBot".to_string())
    );
    assert_eq!(h.valid_until, None);

    // The same file with --format stix gives the same indicators.
    let forced = read(&bytes, "x.jsonl", Some(FeedFormat::Stix));
    assert_eq!(values(&forced), values(&p));
}

/// An ATT&CK technique as a producer with sorted keys writes it: `id` and
/// `type` come after a description of `desc_len` bytes.
fn sorted_attack_pattern(desc_len: usize) -> String {
    let sentence = "Adversaries chain relays, see https://attack.mitre.org/techniques/T1090/003/ \
                    and hxxp://relay-notes.example/ via 198.18.0.9. ";
    let mut desc = String::new();
    while desc.len() < desc_len {
        desc.push_str(sentence);
    }
    let v = serde_json::json!({
        "created": "2020-03-14T23:23:41.770Z",
        "description": desc,
        "external_references": [{"source_name": "mitre-attack", "external_id": "T1090.003",
            "url": "https://attack.mitre.org/techniques/T1090/003/"}],
        "id": "attack-pattern--a782ebe2-daba-42c7-bc82-e8e9d923162d",
        "modified": "2023-10-02T00:41:11.224Z",
        "name": "Multi-hop Proxy",
        "spec_version": "2.1",
        "type": "attack-pattern"
    });
    // serde_json keeps keys sorted (no preserve_order feature).
    let s = v.to_string();
    assert!(s.find("\"type\"").unwrap() > desc_len);
    s
}

const ONE_INDICATOR: &str = r#"{"type": "indicator", "spec_version": "2.1", "id": "indicator--0d1c2b3a-4f5e-4a6b-8c7d-9e0f1a2b3c4d", "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z", "pattern": "[ipv4-addr:value = '192.0.2.99']", "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z"}"#;

#[test]
fn stix_first_object_longer_than_the_detection_head() {
    // 20 KB: the head holds the whole first object, and its STIX id.
    let small = format!("{}\n{ONE_INDICATOR}\n", sorted_attack_pattern(20 * 1024));
    assert_eq!(readers::detect(small.as_bytes()), Some(FeedFormat::Stix));
    let p = read(small.as_bytes(), "small.jsonl", None);
    assert_eq!(values(&p), vec!["192.0.2.99"]);
    assert_eq!(p.indicators[0].provenance.line, 2);

    // 100 KB: `id` and `type` are past the 64 KiB head; the whole first
    // object is read to decide.
    let big = format!("{}\n{ONE_INDICATOR}\n", sorted_attack_pattern(100 * 1024));
    assert_eq!(readers::detect(&big.as_bytes()[..64 * 1024]), None);
    let p = read(big.as_bytes(), "big.jsonl", None);
    assert_eq!(p.format, Some(FeedFormat::Stix));
    assert_eq!(values(&p), vec!["192.0.2.99"]);

    // With a BOM and CRLF line ends.
    let crlf = format!("\u{feff}{}", big.replace('\n', "\r\n"));
    let p = read(crlf.as_bytes(), "crlf.jsonl", None);
    assert_eq!(
        (p.format, values(&p)),
        (Some(FeedFormat::Stix), vec!["192.0.2.99".to_string()])
    );
    assert_eq!(p.indicators[0].provenance.line, 2);

    // The same objects as a JSON array, and as a bundle with sorted keys
    // (`objects` first, `type: bundle` last).
    let array = format!("[{}, {ONE_INDICATOR}]", sorted_attack_pattern(100 * 1024));
    let p = read(array.as_bytes(), "array.json", None);
    assert_eq!(
        (p.format, values(&p)),
        (Some(FeedFormat::Stix), vec!["192.0.2.99".to_string()])
    );
    let bundle = format!(
        r#"{{"id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d", "objects": [{}, {ONE_INDICATOR}], "type": "bundle"}}"#,
        sorted_attack_pattern(100 * 1024)
    );
    let p = read(bundle.as_bytes(), "bundle.json", None);
    assert_eq!(
        (p.format, values(&p)),
        (Some(FeedFormat::Stix), vec!["192.0.2.99".to_string()])
    );
}

// ---------------------------------------------------------------------------
// CSV exports of STIX indicators
// ---------------------------------------------------------------------------

#[test]
fn opencti_csv_export() {
    let bytes = data("opencti-indicators.csv");
    assert_eq!(readers::detect(&bytes), Some(FeedFormat::StixCsv));
    let p = read(&bytes, "opencti-indicators.csv", None);
    assert_eq!(p.format, Some(FeedFormat::StixCsv));
    assert_eq!(
        counts(&p),
        expect(&[("ipv4", 3), ("domain", 1), ("url", 1), ("hash", 1)])
    );
    let lines: Vec<(String, u64)> = p
        .indicators
        .iter()
        .map(|i| (i.value.to_string(), i.provenance.line))
        .collect();
    assert_eq!(
        lines,
        vec![
            ("192.0.2.10".to_string(), 2),
            ("192.0.2.11".to_string(), 3),
            ("192.0.2.10".to_string(), 4),
            ("login-portal.relay-ops.example".to_string(), 5),
            ("http://198.51.100.77/gate.php".to_string(), 6),
            (
                "486ea46224d1bb4fb680f34f7c9ad96a8f24ec88be73ea8e5a6c65260e9cb8a7".to_string(),
                7
            ),
        ]
    );
    // Descriptions and external references are not read for values.
    assert_no_prose_values(
        &p,
        &[
            "relay-mirror",
            "attack.mitre.org",
            "cert.example",
            "urlscan",
        ],
    );

    // Windows, confidence, TLP, labels, source and the STIX id are kept.
    let rows = find(&p, "192.0.2.10");
    assert_eq!(
        rows.len(),
        2,
        "one indicator per row; each keeps its window"
    );
    let a = rows[0];
    assert_eq!(a.valid_from, ts("2024-02-20T10:00:00Z"));
    assert_eq!(a.valid_until, ts("2024-05-20T10:00:00Z"));
    assert_eq!(a.published, ts("2024-02-20T10:00:00Z"));
    assert_eq!(a.confidence, Some(85));
    assert_eq!(a.tags.tlp.as_deref(), Some("green"));
    assert_eq!(
        a.tags.roles,
        vec!["malicious-activity", "relay", "apt-example"]
    );
    assert!(a.tags.other.contains(&"source=Example CERT".to_string()));
    assert!(
        a.provenance
            .record_id
            .as_deref()
            .is_some_and(|id| id.starts_with("indicator--"))
    );
    assert_eq!(
        a.description.as_deref(),
        Some(
            "192.0.2.10 — Relay node reported by partner; staging via update.relay-mirror.example"
        )
    );
    assert_eq!(rows[1].valid_from, ts("2024-06-01T00:00:00Z"));
    assert_eq!(rows[1].confidence, Some(70));
    assert_eq!(
        find(&p, "192.0.2.11")[0].tags.tlp.as_deref(),
        Some("amber"),
        "TLP:AMBER,PAP:GREEN"
    );
    assert_eq!(
        find(&p, "login-portal.relay-ops.example")[0]
            .tags
            .tlp
            .as_deref(),
        Some("clear")
    );
    // No valid_until: open, as in the STIX reader.
    assert_eq!(
        find(&p, "http://198.51.100.77/gate.php")[0].valid_until,
        None
    );

    assert_eq!(
        skips(&p),
        vec![
            (8, "pattern_type yara is not a STIX pattern".to_string()),
            (9, "revoked indicator".to_string()),
            (
                13,
                "a row of type ipv4-addr is not an indicator (only patterns are read)".to_string()
            ),
        ]
    );
    let rej = reasons(&p);
    assert_eq!(
        rej.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![10, 11, 12],
        "{rej:#?}"
    );
    assert!(rej[0].1.contains("203.0.113.300"), "{rej:?}");
    assert!(rej[1].1.contains("STIX pattern does not parse"), "{rej:?}");
    assert!(rej[2].1.contains("before valid_from"), "{rej:?}");
    assert!(
        rej.iter().all(|r| r.1.starts_with("indicator--")),
        "{rej:?}"
    );
}

#[test]
fn stix_csv_with_the_usual_columns() {
    let bytes = data("stix-indicators-export.csv");
    assert_eq!(readers::detect(&bytes), Some(FeedFormat::StixCsv));
    let p = read(&bytes, "stix-indicators-export.csv", None);
    check_usual_columns(&p);

    // The same file with a BOM and CRLF line ends reads the same.
    let mut crlf = b"\xef\xbb\xbf".to_vec();
    crlf.extend_from_slice(
        String::from_utf8(bytes.clone())
            .unwrap()
            .replace('\n', "\r\n")
            .as_bytes(),
    );
    assert_eq!(readers::detect(&crlf), Some(FeedFormat::StixCsv));
    let q = read(&crlf, "crlf.csv", None);
    check_usual_columns(&q);
    assert_eq!(
        q.indicators
            .iter()
            .map(|i| i.provenance.line)
            .collect::<Vec<_>>(),
        p.indicators
            .iter()
            .map(|i| i.provenance.line)
            .collect::<Vec<_>>()
    );

    // As a generic CSV it has no value column: the error says what to do.
    match readers::read_feed(&bytes, "x.csv", Some(FeedFormat::Csv), &opts()) {
        Err(FeedError::Malformed { reason, .. }) => {
            assert!(reason.contains("--value-column"), "{reason}");
            assert!(reason.contains("--format stix-csv"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

fn check_usual_columns(p: &ParsedFeed) {
    assert_eq!(p.format, Some(FeedFormat::StixCsv));
    assert_eq!(
        counts(p),
        expect(&[("ipv4", 2), ("ipv6", 1), ("cidr", 1), ("domain", 1)])
    );
    let lines: Vec<(String, u64)> = p
        .indicators
        .iter()
        .map(|i| (i.value.to_string(), i.provenance.line))
        .collect();
    assert_eq!(
        lines,
        vec![
            ("198.51.100.20".to_string(), 2),
            ("203.0.113.0/28".to_string(), 3),
            ("2001:db8:77::5".to_string(), 3),
            ("cdn-sync.relay-ops.example".to_string(), 5),
            ("192.0.2.200".to_string(), 6),
        ]
    );
    assert_no_prose_values(
        p,
        &[
            "backup-relay",
            "198.51.100.250",
            "partner-cert",
            "attack.mitre.org",
        ],
    );
    let a = &p.indicators[0];
    assert_eq!(
        a.provenance.record_id.as_deref(),
        Some("indicator--6b1f3a52-1f0e-4c7e-9d0b-2f51c7a2e001")
    );
    assert_eq!(a.valid_from, ts("2024-01-05T00:00:00Z"));
    assert_eq!(a.valid_until, ts("2024-03-05T00:00:00Z"));
    assert_eq!(a.first_seen, ts("2024-01-04T11:20:00Z"));
    assert_eq!(a.last_seen, ts("2024-02-28T17:45:00Z"));
    assert_eq!(a.confidence, Some(80));
    assert_eq!(a.tags.tlp.as_deref(), Some("amber"));
    assert_eq!(a.tags.roles, vec!["anonymization", "relay"]);
    let pool = &p.indicators[1];
    assert_eq!(
        (pool.confidence, pool.tags.tlp.as_deref()),
        (Some(65), Some("green"))
    );
    assert_eq!(pool.tags.roles, vec!["compromised", "relay"]);
    assert_eq!(pool.valid_until, None);
    let dom = &p.indicators[3];
    assert_eq!(dom.confidence, Some(85), "`high`");
    assert_eq!(dom.valid_until, ts("2024-08-01T00:00:00Z"));
    let dst = &p.indicators[4];
    assert!(dst.tags.other.contains(&"stix-ref=dst_ref".to_string()));
    assert_eq!(
        skips(p),
        vec![
            (
                6,
                "object path network-traffic:dst_port is not one orbwatch can match".to_string()
            ),
            (7, "pattern_type sigma is not a STIX pattern".to_string()),
        ]
    );
    let rej = reasons(p);
    assert_eq!(rej.iter().map(|r| r.0).collect::<Vec<_>>(), vec![8, 9]);
    assert!(rej[0].1.contains("valid_from `soon`"), "{rej:?}");
    assert!(
        rej[1].1.contains("4 fields but the header has 13"),
        "{rej:?}"
    );
}

#[test]
fn stix_csv_edge_cases() {
    // Header only, and nothing at all: no indicators, no error.
    let p = read(b"id,pattern,valid_from\n", "h.csv", None);
    assert_eq!(
        (p.format, p.indicators.len()),
        (Some(FeedFormat::StixCsv), 0)
    );
    let p = read(b"", "e.csv", Some(FeedFormat::StixCsv));
    assert!(p.indicators.is_empty() && p.rejected.is_empty());
    // Forced on a file without a pattern column: a clear error.
    match readers::read_feed(
        b"ip,comment\n192.0.2.1,x\n",
        "n.csv",
        Some(FeedFormat::StixCsv),
        &opts(),
    ) {
        Err(FeedError::Malformed { reason, .. }) => {
            assert!(reason.contains("no `pattern` column"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // Blank lines before the header keep line numbers true; an empty
    // pattern is rejected; a forced delimiter is honoured.
    let text = "\n\nid|pattern|valid_from\nindicator--a|[ipv4-addr:value = '192.0.2.5']|2024-01-01\nindicator--b||2024-01-01\n";
    let p = read(text.as_bytes(), "pipe.csv", None);
    assert_eq!(values(&p), vec!["192.0.2.5"]);
    assert_eq!(p.indicators[0].provenance.line, 4);
    assert_eq!(reasons(&p)[0].0, 5);
    assert!(reasons(&p)[0].1.contains("pattern column is empty"));
    let mut o = opts();
    o.csv = CsvMapping {
        delimiter: Some(b'|'),
        ..Default::default()
    };
    let q = readers::read_feed(text.as_bytes(), "pipe.csv", Some(FeedFormat::StixCsv), &o).unwrap();
    assert_eq!(values(&q), values(&p));
    // A huge pattern cell and a deep one: rejected, not a crash.
    let deep = format!(
        "id,pattern\nx,\"{}[ipv4-addr:value = '192.0.2.1']{}\"\n",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    let p = read(deep.as_bytes(), "deep.csv", Some(FeedFormat::StixCsv));
    assert!(p.indicators.is_empty());
    assert_eq!(p.rejected.len(), 1);
}

// ---------------------------------------------------------------------------
// Structure is never read as free text behind the user's back
// ---------------------------------------------------------------------------

#[test]
fn json_that_is_neither_stix_nor_misp_is_refused() {
    let doc = br#"{"data": [{"ip": "192.0.2.1", "ref": "https://blog.example/post"}], "count": 1}"#;
    let msg = refused(doc, "api.json");
    assert!(
        msg.starts_with("api.json: looks like JSON with the keys `data`, `count`, and no"),
        "{msg}"
    );
    assert!(
        msg.contains("tried certfr, csv, tsv, plain, stix, stix-csv, misp"),
        "{msg}"
    );
    assert!(msg.contains("--format"), "{msg}");
    assert!(msg.contains("--value-column"), "{msg}");
    // JSON lines of non-STIX objects, an array of them, scalars, empty.
    for (input, what) in [
        (
            &b"{\"ip\": \"192.0.2.1\"}\n{\"ip\": \"192.0.2.2\"}\n"[..],
            "JSON with the keys `ip`",
        ),
        (
            b"[{\"indicator\": \"192.0.2.1\"}]",
            "JSON with the keys `indicator`",
        ),
        (b"[]", "an empty JSON array"),
        (b"{}", "an empty JSON object"),
        (b"[1, 2]", "JSON whose first value is a number"),
        (
            b"\xef\xbb\xbf\r\n[\"192.0.2.1\"]\r\n",
            "JSON whose first value is a string",
        ),
        (b"{\"ip\": \"192.0.2.1\", ", "not valid JSON"),
    ] {
        let msg = refused(input, "x.json");
        assert!(msg.contains(what), "{msg}");
    }
    // Asked for, free text still reads it.
    let p = read(doc, "api.json", Some(FeedFormat::Freetext));
    assert_eq!(values(&p), vec!["192.0.2.1", "https://blog.example/post"]);
}

#[test]
fn a_table_whose_header_names_nothing_known_is_refused() {
    let csv = "machine,when,notes\nrelay-a.example,2024-01-02,\"see https://writeup.example/a\"\nrelay-b.example,2024-01-03,\n";
    let msg = refused(csv.as_bytes(), "hosts.csv");
    assert!(
        msg.contains("a CSV table with the header (machine, when, notes)"),
        "{msg}"
    );
    assert!(msg.contains("--format csv --value-column NAME"), "{msg}");
    // TSV, `;`, BOM and CRLF.
    let tsv =
        "\u{feff}machine\twhen\r\nrelay-a.example\t2024-01-02\r\nrelay-b.example\t2024-01-03\r\n";
    assert!(
        refused(tsv.as_bytes(), "t.tsv").contains("a TSV table with the header (machine, when)")
    );
    let semi = "Rechner;Datum\nrelay-a.example;2024-01-02\n";
    assert!(refused(semi.as_bytes(), "s.csv").contains("--delimiter ';'"));
    // Named, it reads.
    let mut o = opts();
    o.csv.value = Some("machine".into());
    let p = readers::read_feed(csv.as_bytes(), "hosts.csv", Some(FeedFormat::Csv), &o).unwrap();
    assert_eq!(values(&p), vec!["relay-a.example", "relay-b.example"]);
    // Prose with commas is not a table.
    let prose = "Hello team, please block these today:\n192.0.2.1 and 192.0.2.2, thanks.\n";
    let p = read(prose.as_bytes(), "mail.txt", None);
    assert_eq!(p.format, Some(FeedFormat::Freetext));
    assert_eq!(values(&p), vec!["192.0.2.1", "192.0.2.2"]);
}

#[test]
fn xml_and_html_are_refused() {
    let stix1 = "<?xml version=\"1.0\"?>\n<stix:STIX_Package><stix:Indicators><indicator:Indicator><cybox:Object><AddressObj:Address_Value>192.0.2.1</AddressObj:Address_Value></cybox:Object></indicator:Indicator></stix:Indicators></stix:STIX_Package>\n";
    assert!(refused(stix1.as_bytes(), "p.xml").contains("an XML document"));
    let html = "<!DOCTYPE html>\n<html><body><a href=\"https://blog.example/\">192.0.2.1</a></body></html>\n";
    assert!(refused(html.as_bytes(), "r.html").contains("an HTML page"));
}

// ---------------------------------------------------------------------------
// Plain lists with a typo
// ---------------------------------------------------------------------------

#[test]
fn a_list_with_one_typo_is_a_list() {
    let list = b"192.0.2.1\n192.0.2.2\n300.1.1.1\n";
    assert_eq!(readers::detect(list), Some(FeedFormat::Plain));
    let p = read(list, "relays.txt", None);
    assert_eq!(values(&p), vec!["192.0.2.1", "192.0.2.2"]);
    assert_eq!(p.rejected.len(), 1);
    assert_eq!(p.rejected[0].line, 3);
    assert_eq!(p.rejected[0].raw, "300.1.1.1");

    // BOM, CRLF, comments, and the typo first; a bad network; a hash
    // list with a digest one digit short.
    let list = b"\xef\xbb\xbf# relays\r\n300.1.1.1\r\n192.0.2.1\r\n198.51.100.0/33\r\n";
    assert_eq!(readers::detect(list), Some(FeedFormat::Plain));
    let p = read(list, "r.txt", None);
    assert_eq!(values(&p), vec!["192.0.2.1"]);
    assert_eq!(
        p.rejected.iter().map(|r| r.line).collect::<Vec<_>>(),
        vec![2, 4]
    );
    let hashes = "d41d8cd98f00b204e9800998ecf8427e\n0cc175b9c0f1b6a831c399e26977266\n";
    let p = read(hashes.as_bytes(), "h.txt", None);
    assert_eq!(p.format, Some(FeedFormat::Plain));
    assert_eq!(p.rejected.len(), 1);
    assert_eq!(p.rejected[0].line, 2);

    // Headings are not values: such a file stays free text.
    let report = b"Relay servers\n192.0.2.1\n192.0.2.2\n300.1.1.1\n";
    assert_eq!(readers::detect(report), None);
    // A lone typo is not a list; free text finds nothing: an error.
    assert!(matches!(
        readers::read_feed(b"300.1.1.1\n", "t.txt", None, &opts()),
        Err(FeedError::UnknownFormat { .. })
    ));
}

#[test]
fn empty_inputs_are_empty_lists() {
    for input in [&b""[..], b"\n", b"\r\n\r\n", b"\xef\xbb\xbf", b"  \t\n"] {
        let p = read(input, "e.txt", None);
        assert_eq!(p.format, Some(FeedFormat::Plain), "{input:?}");
        assert!(p.indicators.is_empty() && p.rejected.is_empty());
    }
}

// ---------------------------------------------------------------------------
// MISP: only attribute values that carry indicators
// ---------------------------------------------------------------------------

#[test]
fn misp_prose_fields_are_not_indicators() {
    let event = r#"{"Event": {
  "uuid": "5f0e1d2c-3b4a-4c5d-8e6f-7a8b9c0d1e2f", "info": "Relay campaign, see https://blog.example/relays and 198.51.100.1",
  "date": "2024-02-01", "threat_level_id": "2", "analysis": "2",
  "Orgc": {"name": "Example CERT"},
  "Attribute": [
    {"uuid": "a1", "type": "ip-dst", "category": "Network activity", "to_ids": true,
     "value": "192.0.2.80", "comment": "Talked to 203.0.113.80 and relay-c2.example, per https://writeup.example/x"},
    {"uuid": "a2", "type": "link", "category": "External analysis", "to_ids": false,
     "value": "https://attack.mitre.org/techniques/T1090/003/", "comment": ""},
    {"uuid": "a3", "type": "text", "category": "Other", "to_ids": false,
     "value": "Operators reused staging.relay-ops.example and 203.0.113.81", "comment": ""},
    {"uuid": "a4", "type": "comment", "category": "Other", "to_ids": false,
     "value": "Routers at 203.0.113.82 ran old firmware", "comment": ""}
  ],
  "Object": [{"name": "ip-port", "comment": "Object about 203.0.113.83", "deleted": false,
    "Attribute": [{"uuid": "o1", "type": "ip-dst", "object_relation": "ip", "value": "192.0.2.81",
      "comment": "also 203.0.113.84"}]}],
  "Galaxy": [{"type": "threat-actor", "name": "Threat Actor", "description": "See https://galaxy.example/ta",
    "GalaxyCluster": [{"value": "Example Panda", "description": "Uses 203.0.113.85",
      "meta": {"refs": ["https://galaxy.example/panda"]}}]}]
}}"#;
    let p = read(event.as_bytes(), "event.json", None);
    assert_eq!(p.format, Some(FeedFormat::Misp));
    assert_eq!(values(&p), vec!["192.0.2.80", "192.0.2.81"]);
    assert_eq!(p.skipped.len(), 3, "link, text and comment attributes");
    // The comment is kept as the description, not read for values.
    assert!(
        p.indicators[0]
            .description
            .as_deref()
            .is_some_and(|d| d.contains("203.0.113.80"))
    );
}

// ---------------------------------------------------------------------------
// The corpus feeds load as before
// ---------------------------------------------------------------------------

/// Counts before this change (orbwatch 271469a, `feed add` on each file):
/// the same per kind, rejected and skipped, and the same format.
#[test]
fn corpus_feeds_load_with_the_same_counts() {
    /// File, format, counts per kind, rejected, skipped.
    type Case = (
        &'static str,
        FeedFormat,
        &'static [(&'static str, u64)],
        usize,
        usize,
    );
    let cases: [Case; 6] = [
        (
            "AVrecon_IOCs.txt",
            FeedFormat::Freetext,
            &[("domain", 3), ("hash", 9), ("ipv4", 24)],
            0,
            0,
        ),
        (
            "CERTFR-2021-IOC-003-IOC.csv",
            FeedFormat::Certfr,
            &[("ipv4", 161)],
            0,
            0,
        ),
        (
            "KVbotnet_IOCs.txt",
            FeedFormat::Freetext,
            &[("cert", 2), ("hash", 51), ("ipv4", 25)],
            3,
            0,
        ),
        (
            "arcanedoor-new-espionage-focused-campaign-found-targeting-perimeter-network-devices.json",
            FeedFormat::Stix,
            &[("ipv4", 60)],
            0,
            4,
        ),
        (
            "arcanedoor-new-espionage-focused-campaign-found-targeting-perimeter-network-devices.txt",
            FeedFormat::Plain,
            &[("ipv4", 60)],
            0,
            0,
        ),
        (
            "blacklotuslabs_SOURCE.txt",
            FeedFormat::Freetext,
            &[("domain", 1), ("hash", 1)],
            0,
            0,
        ),
    ];
    for (name, format, kinds, rejected, skipped) in cases {
        let Some(bytes) = corpus(name) else {
            return;
        };
        let p = read(&bytes, name, None);
        assert_eq!(p.format, Some(format), "{name}");
        assert_eq!(counts(&p), expect(kinds), "{name}");
        assert_eq!(
            (p.rejected.len(), p.skipped.len()),
            (rejected, skipped),
            "{name}"
        );
    }
}

// ---------------------------------------------------------------------------
// Never panic
// ---------------------------------------------------------------------------

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// CSV-ish and JSON-ish soups through detection, the refusal path and
    /// the STIX CSV reader.
    #[test]
    fn structured_soup_never_panics(
        parts in prop::collection::vec(prop::sample::select(&[
            "pattern", "id", "valid_from", "pattern_type", ",", ";", "\t", "|", "\"", "\n",
            "\r\n", "[ipv4-addr:value = '192.0.2.1']", "[", "]", "(", "stix", "yara",
            "2024-01-01T00:00:00Z", "TLP:RED", "indicator--0d1c2b3a-4f5e-4a6b-8c7d-9e0f1a2b3c4d",
            "{", "}", ":", "\"type\"", "\"id\"", "\"attack-pattern\"", "<", ">", "<?xml",
            "300.1.1.1", "192.0.2.7", "\u{feff}", "é", "machine", "true",
        ][..]), 0..60)
    ) {
        let text = parts.concat();
        let o = opts();
        let _ = readers::detect(text.as_bytes());
        let _ = readers::read_feed(text.as_bytes(), "f", None, &o);
        let _ = readers::read_feed(text.as_bytes(), "f", Some(FeedFormat::StixCsv), &o);
    }

    #[test]
    fn stix_csv_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = readers::read_feed(&bytes, "f", Some(FeedFormat::StixCsv), &opts());
        let _ = readers::read_feed(&bytes, "f", None, &opts());
    }
}

/// Issue 19: an unbalanced quote makes the rest of a CSV feed one field.
/// The rows it swallowed are rejected with their own line numbers instead
/// of vanishing; a real multi-line description (no delimiter in its lines)
/// is not.
#[test]
fn rows_swallowed_by_an_unbalanced_quote_are_rejected_with_their_lines() {
    let feed = b"ip,first_seen,description\n\
1.2.3.4,2021-01-01,\"a description\nover two lines\"\n\
5.6.7.8,2021-01-01,\"oops\n\
9.9.9.9,2021-01-02,fine\n\
10.1.1.1,2021-01-03,ok\n";
    let p = read(feed, "quotes.csv", Some(FeedFormat::Csv));
    let values: Vec<String> = p.indicators.iter().map(|i| i.value.to_string()).collect();
    assert_eq!(values, ["1.2.3.4", "5.6.7.8"]);
    let rejected: Vec<(u64, &str)> = p
        .rejected
        .iter()
        .map(|r| (r.line, r.raw.as_str()))
        .collect();
    assert_eq!(
        rejected,
        [
            (5, "9.9.9.9,2021-01-02,fine"),
            (6, "10.1.1.1,2021-01-03,ok")
        ]
    );
    for r in &p.rejected {
        assert!(r.reason.contains("opened on line 4"), "{}", r.reason);
    }
}
