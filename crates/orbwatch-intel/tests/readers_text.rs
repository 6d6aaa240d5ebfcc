//! Integration tests for the text feed readers: CERT-FR CSV, generic CSV/TSV,
//! plain lists, free text, Zeek Intel and Suricata iprep/dataset.
//!
//! Licensed test files live in `tests/data/feeds-text/` (see ATTRIBUTION.md
//! there). Files without a licence are read from `../shared/corpus` and the
//! tests that need them are skipped when it is absent.

use std::collections::BTreeSet;
use std::net::IpAddr;

use jiff::Timestamp;
use orbwatch_intel::readers::CsvMapping;
use orbwatch_intel::{
    FeedError, FeedFormat, HashAlgo, IndicatorKind, IndicatorValue, ParsedFeed, ReadOptions,
    detect, read_feed,
};
use proptest::prelude::*;
use std::io::Read as _;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/feeds-text");
const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");

fn data(name: &str) -> Vec<u8> {
    let p = format!("{DATA}/{name}");
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// A corpus file, or `None` (with the skip message) when the corpus is absent.
fn corpus(rel: &str) -> Option<Vec<u8>> {
    if !std::path::Path::new(CORPUS).is_dir() {
        println!("skipped: ../shared/corpus not found");
        return None;
    }
    let p = format!("{CORPUS}/{rel}");
    Some(std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}")))
}

fn opts() -> ReadOptions {
    let mut o = ReadOptions::new("test-feed");
    o.now = ts("2024-06-01");
    o
}

fn ts(s: &str) -> Timestamp {
    orbwatch_intel::time::parse_timestamp(s).expect("test timestamp")
}

fn read(bytes: &[u8], file: &str, fmt: Option<FeedFormat>) -> ParsedFeed {
    read_feed(bytes, file, fmt, &opts()).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn read_with(bytes: &[u8], fmt: FeedFormat, o: &ReadOptions) -> Result<ParsedFeed, FeedError> {
    read_feed(bytes, "t", Some(fmt), o)
}

fn count(p: &ParsedFeed, k: IndicatorKind) -> u64 {
    p.counts().get(&k).copied().unwrap_or(0)
}

fn values(p: &ParsedFeed) -> Vec<String> {
    p.indicators.iter().map(|i| i.value.to_string()).collect()
}

fn day(t: Option<Timestamp>) -> Option<String> {
    t.map(|t| t.to_string()[..10].to_string())
}

// ---------------------------------------------------------------------------
// CERT-FR
// ---------------------------------------------------------------------------

#[test]
fn certfr_apt31_list() {
    let bytes = data("CERTFR-2021-IOC-003-IOC.csv");
    assert_eq!(detect(&bytes), Some(FeedFormat::Certfr));
    let p = read(&bytes, "CERTFR-2021-IOC-003-IOC.csv", None);
    assert_eq!(p.format, Some(FeedFormat::Certfr));
    assert_eq!(p.indicators.len(), 161);
    assert_eq!(count(&p, IndicatorKind::Ipv4), 161);
    assert!(p.rejected.is_empty(), "{:?}", p.rejected);
    assert!(p.skipped.is_empty());
    // Independent count: data rows of the file.
    let rows = String::from_utf8_lossy(&bytes)
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .count();
    assert_eq!(rows, 161);
    let unique: BTreeSet<String> = values(&p).into_iter().collect();
    assert_eq!(unique.len(), 161);
    for i in &p.indicators {
        assert_eq!(i.tags.actors, vec!["APT31"]);
        assert_eq!(i.tags.tlp.as_deref(), Some("white"));
        assert_eq!(i.tags.campaigns, vec!["Publication maqueurs APT31"]);
        assert!(
            i.tags
                .other
                .iter()
                .any(|o| o == "cossi:threat_category=APT")
        );
        assert_eq!(i.confidence, Some(80), "Bonne → 80");
        assert_eq!(day(i.published).as_deref(), Some("2021-07-20"));
        // The publication date does not bound the window.
        assert_eq!((i.first_seen, i.last_seen), (None, None));
        assert_eq!((i.valid_from, i.valid_until), (None, None));
        assert_eq!(i.provenance.feed, "test-feed");
        assert!(i.provenance.record_id.is_some());
    }
    let first = &p.indicators[0];
    assert_eq!(first.value.to_string(), "105.154.12.165");
    assert_eq!(first.provenance.line, 2);
    assert_eq!(
        first.provenance.record_id.as_deref(),
        Some("c1dc1b1d-7ea0-45ad-afea-d5751c3dbd95")
    );
    let last = &p.indicators[160];
    assert_eq!(last.value.to_string(), "95.73.249.55");
    assert_eq!(last.provenance.line, 162);
}

#[test]
fn certfr_corpus_copy_is_identical() {
    let Some(c) = corpus("feeds/CERTFR-2021-IOC-003-IOC.csv") else {
        return;
    };
    assert_eq!(c, data("CERTFR-2021-IOC-003-IOC.csv"));
}

const CERTFR_HEADER: &str = "event.uuid,event.classification,event.tlp,event.special_france,event.title.desensitized,event.reliability,event.description,event.date,event.apts,event.metadata,signature.uuid,signature.type,signature.description,siganture.value,signature_component.uuid,signature_component.type,signature_component.reliability,signature_component.metedata,signature_component.value,signature_component.description";

fn certfr_row(apts: &str, tlp: &str, rel: &str, ty: &str, value: &str) -> String {
    let apts = apts.replace('"', "\"\"");
    format!(
        "e1,NON-CLASSIFIEES,{tlp},False,Campagne X,Bonne,,2022-03-04,\"{apts}\",\"misp-galaxy:threat-actor=\"\"APT99\"\", cossi:TLP=\"\"green\"\"\",s1,{ty},,,c-{value},{ty},{rel},,{value},desc"
    )
}

#[test]
fn certfr_variants() {
    let rows = [
        certfr_row(r#"["A", "B"]"#, "white", "Confirmée", "ip-dst", "1.2.3.4"),
        certfr_row("[]", "", "Assez bonne", "domain", "evil[.]example"),
        certfr_row(
            "['C']",
            "amber",
            "Usually reliable",
            "ip-dst|port",
            "5.6.7.8|443",
        ),
        certfr_row("[]", "red", "Inconnue", "sha256", &"ab".repeat(32)),
        certfr_row("[]", "red", "Faible", "ip-dst", "999.1.1.1"),
        certfr_row("[]", "red", "Moyenne", "mutex", "Global\\x"),
        "only,three,fields".to_string(),
        certfr_row("[]", "red", "Faible", "url", "hxxp://bad[.]example/a"),
    ];
    let text = format!("\u{feff}{CERTFR_HEADER}\r\n{}\r\n", rows.join("\r\n"));
    assert_eq!(detect(text.as_bytes()), Some(FeedFormat::Certfr));
    let p = read(text.as_bytes(), "cf.csv", None);
    assert_eq!(
        values(&p),
        vec![
            "1.2.3.4",
            "evil.example",
            "5.6.7.8",
            &"ab".repeat(32),
            "http://bad.example/a"
        ]
    );
    let i = &p.indicators;
    assert_eq!(i[0].tags.actors, vec!["APT99", "A", "B"]);
    assert_eq!(i[0].tags.tlp.as_deref(), Some("white"));
    assert_eq!(i[0].confidence, Some(95));
    assert_eq!(i[0].description.as_deref(), Some("desc"));
    assert_eq!(i[0].provenance.record_id.as_deref(), Some("c-1.2.3.4"));
    // No event.tlp: the metadata tag gives it.
    assert_eq!(i[1].tags.tlp.as_deref(), Some("green"));
    assert_eq!(i[1].tags.actors, vec!["APT99"]);
    assert_eq!(i[1].confidence, Some(65));
    assert_eq!(i[2].tags.actors, vec!["APT99", "C"]);
    assert!(i[2].tags.other.iter().any(|o| o == "port=443"));
    assert_eq!(i[2].confidence, Some(80));
    assert_eq!(i[3].confidence, None, "Inconnue says nothing");
    assert_eq!(i[4].confidence, Some(25));
    assert_eq!(i[4].provenance.line, 9);
    let rejected: Vec<(u64, &str)> = p
        .rejected
        .iter()
        .map(|r| (r.line, r.reason.as_str()))
        .collect();
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert_eq!(rejected[0].0, 6);
    assert!(rejected[0].1.contains("not an IP"), "{}", rejected[0].1);
    assert_eq!(rejected[1].0, 8);
    assert!(rejected[1].1.contains("fields"));
    assert_eq!(p.skipped.len(), 1);
    assert_eq!(p.skipped[0].line, 7);
}

#[test]
fn certfr_without_value_column_is_an_error() {
    let e = read_feed(
        b"event.uuid,foo\n1,2\n",
        "x.csv",
        Some(FeedFormat::Certfr),
        &opts(),
    );
    assert!(matches!(e, Err(FeedError::Malformed { .. })), "{e:?}");
}

// ---------------------------------------------------------------------------
// Zeek Intel
// ---------------------------------------------------------------------------

#[test]
fn zeek_intel_zat_example() {
    let bytes = data("zat_intel_example.intel");
    assert_eq!(detect(&bytes), Some(FeedFormat::ZeekIntel));
    let p = read(&bytes, "zat_intel_example.intel", None);
    // Independent count from the raw lines.
    let text = String::from_utf8_lossy(&bytes);
    let by_type = |t: &str| {
        text.lines()
            .filter(|l| !l.starts_with('#') && l.split('\t').nth(1) == Some(t))
            .count() as u64
    };
    assert_eq!(by_type("Intel::DOMAIN"), 179);
    assert_eq!(by_type("Intel::ADDR"), 225);
    assert_eq!(by_type("Intel::FILE_HASH"), 96);
    assert_eq!(p.indicators.len(), 500);
    assert_eq!(count(&p, IndicatorKind::Domain), 179);
    assert_eq!(count(&p, IndicatorKind::Ipv4), 225);
    assert_eq!(count(&p, IndicatorKind::Hash), 96);
    assert!(p.rejected.is_empty() && p.skipped.is_empty());
    let md5 = p
        .indicators
        .iter()
        .filter(|i| {
            matches!(
                i.value,
                IndicatorValue::Hash {
                    algo: HashAlgo::Md5,
                    ..
                }
            )
        })
        .count();
    assert_eq!(md5, 50);
    let first = &p.indicators[0];
    assert_eq!(
        first.value,
        IndicatorValue::Domain("0-de-franchise.ca".into())
    );
    assert_eq!(first.provenance.line, 2);
    assert_eq!(first.description.as_deref(), Some("CIT0DAY"));
    assert!(first.tags.other.iter().any(|o| o == "source=CPS-CTI"));
}

#[test]
fn zeek_intel_types_and_errors() {
    let f = "#separator \\x09\n\
#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\tmeta.url\tmeta.cif_confidence\n\
evil.example/gate.php?x=1\tIntel::URL\tsrc\tgate\thttp://ref.example/\t8\n\
10.1.0.0/16\tIntel::SUBNET\tsrc\t-\t-\t85\n\
bad@example.com\tIntel::EMAIL\tsrc\t-\t-\t-\n\
1.2.3.4\tIntel::ADDR\tsrc\n\
1.2.3.999\tIntel::ADDR\tsrc\t-\t-\t-\n\
# comment\n\
\n\
aa:bb\tIntel::CERT_HASH\tsrc\t-\t-\t-\n\
0123456789abcdef0123456789abcdef01234567\tIntel::CERT_HASH\tsrc\t-\t-\t-\n\
x\tIntel::NEW_THING\tsrc\t-\t-\t-\n\
2001:db8::1\tIntel::ADDR\tsrc\t-\t-\t-\r\n";
    let p = read(f.as_bytes(), "z.intel", None);
    assert_eq!(p.format, Some(FeedFormat::ZeekIntel));
    assert_eq!(
        values(&p),
        vec![
            "http://evil.example/gate.php?x=1",
            "10.1.0.0/16",
            "0123456789abcdef0123456789abcdef01234567",
            "2001:db8::1"
        ]
    );
    assert_eq!(p.indicators[0].confidence, Some(80));
    assert_eq!(p.indicators[0].description.as_deref(), Some("gate"));
    assert!(
        p.indicators[0]
            .tags
            .other
            .iter()
            .any(|o| o == "url=http://ref.example/")
    );
    assert_eq!(p.indicators[1].confidence, Some(85));
    assert!(matches!(
        p.indicators[2].value,
        IndicatorValue::CertFingerprint { .. }
    ));
    assert_eq!(p.indicators[3].provenance.line, 13);
    let rej: Vec<u64> = p.rejected.iter().map(|r| r.line).collect();
    assert_eq!(rej, vec![6, 7, 10]);
    let skip: Vec<u64> = p.skipped.iter().map(|s| s.line).collect();
    assert_eq!(skip, vec![5, 12]);
}

// ---------------------------------------------------------------------------
// Free text: KV-botnet, AVrecon, ArcaneDoor
// ---------------------------------------------------------------------------

/// Every `a.b.c[.]d` in the text, found independently of the reader, with
/// its line number.
fn defanged_ipv4(text: &str) -> Vec<(u64, String)> {
    let re = regex::Regex::new(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\[\.\](\d{1,3})").expect("regex");
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for c in re.captures_iter(line) {
            out.push((
                n as u64 + 1,
                format!("{}.{}.{}.{}", &c[1], &c[2], &c[3], &c[4]),
            ));
        }
    }
    out
}

fn ipv4_with_lines(p: &ParsedFeed) -> Vec<(u64, String)> {
    p.indicators
        .iter()
        .filter(|i| matches!(i.value, IndicatorValue::Ip(IpAddr::V4(_))))
        .map(|i| (i.provenance.line, i.value.to_string()))
        .collect()
}

fn find<'a>(p: &'a ParsedFeed, v: &str) -> Vec<&'a orbwatch_intel::Indicator> {
    p.indicators
        .iter()
        .filter(|i| i.value.to_string() == v)
        .collect()
}

#[test]
fn kvbotnet_report() {
    let Some(bytes) = corpus("feeds/KVbotnet_IOCs.txt") else {
        return;
    };
    assert_eq!(detect(&bytes), None, "prose falls back to freetext");
    let p = read(&bytes, "KVbotnet_IOCs.txt", None);
    assert_eq!(p.format, Some(FeedFormat::Freetext));

    // Every defanged IPv4, on its own line, and nothing else.
    let expected = defanged_ipv4(&String::from_utf8_lossy(&bytes));
    assert_eq!(expected.len(), 25);
    assert_eq!(ipv4_with_lines(&p), expected);
    let unique: BTreeSet<&String> = expected.iter().map(|(_, v)| v).collect();
    assert_eq!(unique.len(), 24);
    assert_eq!(count(&p, IndicatorKind::Ipv4), 25);

    // Hashes: 10 file + 22 payload SHA-256, 19 SHA-1, 2 certificate
    // fingerprints; three "Sha1:" values with 32 digits are rejected.
    assert_eq!(count(&p, IndicatorKind::Hash), 51);
    assert_eq!(count(&p, IndicatorKind::Cert), 2);
    assert_eq!(count(&p, IndicatorKind::Domain), 0, "Kv-all.sh is a file");
    assert_eq!(count(&p, IndicatorKind::Url), 0);
    let sha1 = p
        .indicators
        .iter()
        .filter(|i| {
            matches!(
                i.value,
                IndicatorValue::Hash {
                    algo: HashAlgo::Sha1,
                    ..
                }
            )
        })
        .count();
    assert_eq!(sha1, 19);
    let rej: Vec<u64> = p.rejected.iter().map(|r| r.line).collect();
    assert_eq!(rej, vec![75, 78, 119]);
    assert!(p.rejected[0].reason.contains("labelled sha1"));

    // Time frames.
    let window = |v: &str| -> Vec<(Option<String>, Option<String>)> {
        find(&p, v)
            .iter()
            .map(|i| (day(i.first_seen), day(i.last_seen)))
            .collect()
    };
    let w = |a: &str, b: &str| (Some(a.to_string()), Some(b.to_string()));
    assert_eq!(
        window("207.246.100.151"),
        vec![w("2022-02-07", "2022-05-06")]
    );
    assert_eq!(
        window("140.82.20.246"),
        vec![w("2022-11-12", "2022-12-31"), w("2022-11-28", "2023-11-13")]
    );
    assert_eq!(
        window("152.32.138.247"),
        vec![w("2023-12-05", "2024-01-03")]
    );
    assert_eq!(
        window("45.159.209.228"),
        vec![w("2023-12-15", "2023-12-15")]
    );
    assert_eq!(window("45.32.88.250"), vec![w("2022-05-01", "2022-11-02")]);
    assert_eq!(
        window("108.61.132.157"),
        vec![w("2023-11-15", "2023-11-20")]
    );
    assert_eq!(window("45.11.92.176"), vec![w("2023-04-01", "2023-12-06")]);
    assert_eq!(window("193.36.119.48"), vec![w("2022-08-28", "2023-12-06")]);
    // Every table row has a window.
    assert!(
        p.indicators
            .iter()
            .filter(|i| i.value.kind() == IndicatorKind::Ipv4)
            .all(|i| i.first_seen.is_some() && i.last_seen.is_some())
    );
    // The window is first/last seen widened by the 7-day grace.
    let i = find(&p, "207.246.100.151")[0];
    assert_eq!(day(i.valid_from).as_deref(), Some("2022-01-31"));
    assert_eq!(day(i.valid_until).as_deref(), Some("2022-05-13"));
    assert_eq!(i.provenance.line, 15);

    // Roles from the characterisation column.
    assert_eq!(i.tags.roles, vec!["c2"]);
    assert_eq!(i.tags.other, vec!["Proxy Router C2"]);
    assert_eq!(find(&p, "152.32.138.247")[0].tags.roles, vec!["callback"]);
    assert_eq!(find(&p, "45.159.209.228")[0].tags.roles, vec!["payload"]);
    let up = find(&p, "193.36.119.48")[0];
    assert_eq!(up.tags.roles, vec!["upstream-controller"]);
    assert_eq!(up.tags.other, vec!["1st stage Upstream Controller"]);

    // Context: the file name above a hash, the certificate heading.
    let h = find(
        &p,
        "690638c702170dba9e43b0096944c4e7540b827218afbfaebc902143cda4f2a7",
    );
    assert_eq!(h[0].description.as_deref(), Some("Kv-arm"));
    let c = find(
        &p,
        "cdffba0ebda39b3b58f59815be3829ca9c1cde957b46a6ad5ce4b31e405455bb",
    );
    assert!(matches!(
        c[0].value,
        IndicatorValue::CertFingerprint {
            algo: HashAlgo::Sha256,
            ..
        }
    ));
}

#[test]
fn avrecon_report() {
    let Some(bytes) = corpus("feeds/AVrecon_IOCs.txt") else {
        return;
    };
    let p = read(&bytes, "AVrecon_IOCs.txt", None);
    assert_eq!(p.format, Some(FeedFormat::Freetext));
    let expected = defanged_ipv4(&String::from_utf8_lossy(&bytes));
    assert_eq!(expected.len(), 24);
    assert_eq!(ipv4_with_lines(&p), expected);
    let unique: BTreeSet<&String> = expected.iter().map(|(_, v)| v).collect();
    assert_eq!(unique.len(), 24);
    assert_eq!(count(&p, IndicatorKind::Ipv4), 24);
    assert_eq!(
        p.indicators
            .iter()
            .filter(|i| i.value.kind() == IndicatorKind::Domain)
            .map(|i| i.value.to_string())
            .collect::<Vec<_>>(),
        vec!["utcp.cc", "cleandone.cc", "zerophone.cc"]
    );
    assert_eq!(count(&p, IndicatorKind::Hash), 9);
    assert!(p.rejected.is_empty(), "{:?}", p.rejected);
    let i = find(&p, "62.138.18.50")[0];
    assert_eq!(
        i.description.as_deref(),
        Some("2nd Stage Servers (used post-publication)")
    );
    assert_eq!((i.first_seen, i.last_seen), (None, None));
}

#[test]
fn arcanedoor_ip_list() {
    let Some(bytes) = corpus(
        "feeds/arcanedoor-new-espionage-focused-campaign-found-targeting-perimeter-network-devices.txt",
    ) else {
        return;
    };
    let lines = String::from_utf8_lossy(&bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    assert_eq!(lines, 60);
    let plain = read(&bytes, "arcanedoor.txt", None);
    assert_eq!(plain.format, Some(FeedFormat::Plain));
    assert_eq!(count(&plain, IndicatorKind::Ipv4), 60);
    assert!(plain.rejected.is_empty());
    let free = read(&bytes, "arcanedoor.txt", Some(FeedFormat::Freetext));
    assert_eq!(count(&free, IndicatorKind::Ipv4), 60);
    assert_eq!(values(&plain), values(&free));
}

#[test]
fn freetext_edge_cases() {
    let text = "\u{feff}Report on things, e.g. the Kv-all.sh script and setup.exe (v1.2.3.4.5).\r\n\
On Dec 5, 2023 we saw 1.2.3[.]4 talk to evil[.]example while the operator, who was careful, used several other relays too.\r\n\
5.6.7[.]8\tMar. 1 - 3, 2024\tScanner\r\n\
5.6.7[.]8 5.6.7.8\tMar. 9 2024\r\n\
hxxps://bad[.]example/a?b=c and example.com and 2001:db8[:]:5\r\n\
Sha256:\u{a0}ZZZ\r\n\
9.9.9[.]999\r\n";
    let mut bytes = text.as_bytes().to_vec();
    bytes.extend_from_slice(b"\xff\xfe 10.0.0[.]1 \x00\r\n");
    let p = read(&bytes, "r.txt", Some(FeedFormat::Freetext));
    let got: Vec<(u64, String)> = p
        .indicators
        .iter()
        .map(|i| (i.provenance.line, i.value.to_string()))
        .collect();
    let want: Vec<(u64, String)> = [
        (2, "1.2.3.4"),
        (2, "evil.example"),
        (3, "5.6.7.8"),
        (4, "5.6.7.8"),
        (5, "https://bad.example/a?b=c"),
        (5, "example.com"),
        (5, "2001:db8::5"),
        (8, "10.0.0.1"),
    ]
    .iter()
    .map(|(l, v)| (*l, v.to_string()))
    .collect();
    assert_eq!(got, want);
    // Prose: the date is not the value's time frame.
    assert_eq!(p.indicators[0].first_seen, None);
    assert!(
        p.indicators[0]
            .description
            .as_deref()
            .unwrap_or("")
            .starts_with("On Dec 5")
    );
    // Table rows.
    assert_eq!(
        day(p.indicators[2].first_seen).as_deref(),
        Some("2024-03-01")
    );
    assert_eq!(
        day(p.indicators[2].last_seen).as_deref(),
        Some("2024-03-03")
    );
    assert_eq!(p.indicators[2].tags.roles, vec!["scanner"]);
    assert_eq!(
        day(p.indicators[3].first_seen).as_deref(),
        Some("2024-03-09")
    );
    let rej: Vec<u64> = p.rejected.iter().map(|r| r.line).collect();
    assert_eq!(rej, vec![7]);
}

#[test]
fn freetext_empty_and_odd_inputs() {
    for input in [
        &b""[..],
        b"\n\n\r\n",
        b"\xef\xbb\xbf",
        b"just words here\n",
        b"\x00\x01\x02",
    ] {
        let p = read_with(input, FeedFormat::Freetext, &opts()).expect("no error");
        assert!(p.indicators.is_empty());
    }
    // A huge line: one value at its end.
    let mut big = "word ".repeat(400_000);
    big.push_str("8.8.4[.]4");
    let p = read(big.as_bytes(), "big.txt", Some(FeedFormat::Freetext));
    assert_eq!(values(&p), vec!["8.8.4.4"]);
    assert!(p.indicators[0].description.as_deref().unwrap_or("").len() < 300);
}

#[test]
fn hostile_lines_stay_linear() {
    // A million closing brackets before a value.
    let mut t = ")".repeat(1_000_000);
    t.push_str(" 1.2.3[.]4\n");
    let p = read(t.as_bytes(), "b.txt", Some(FeedFormat::Freetext));
    assert_eq!(values(&p), vec!["1.2.3.4"]);
    // Twenty thousand distinct addresses on one line, each counted once.
    let mut line = String::new();
    for i in 0..20_000u32 {
        let [_, a, b, c] = i.to_be_bytes();
        line.push_str(&format!("10.{a}.{b}.{c}, 10.{a}.{b}.{c} "));
    }
    let p = read(line.as_bytes(), "one-line.txt", Some(FeedFormat::Freetext));
    assert_eq!(p.indicators.len(), 20_000);
    assert!(p.indicators.iter().all(|i| i.provenance.line == 1));
    // A tags field with 100,000 tags: capped, not quadratic.
    let tags: Vec<String> = (0..100_000).map(|i| format!("t{i}")).collect();
    let csv = format!("ip,tags\n1.2.3.4,\"{}\"\n", tags.join(","));
    let p = read(csv.as_bytes(), "t.csv", Some(FeedFormat::Csv));
    assert_eq!(p.indicators.len(), 1);
    assert_eq!(p.indicators[0].tags.other.len(), 256);
}

// ---------------------------------------------------------------------------
// Plain lists
// ---------------------------------------------------------------------------

#[test]
fn plain_list_forms() {
    let text = "\u{feff}# FireHOL-style header\r\n\
; another comment\r\n\
// and another\r\n\
\r\n\
1.2.3.4\r\n\
10.1.2.3/8 ; SBL123\r\n\
192.0.2.1-192.0.2.9\r\n\
evil[.]example   # trailing comment\r\n\
hxxp://bad[.]example/x#frag\r\n\
d41d8cd98f00b204e9800998ecf8427e\r\n\
2001:db8::/32\r\n\
203.0.113.5:8080\r\n\
not an indicator\r\n\
1.2.3.999\r\n\
198.51.100.7 scanner seen on port 22\r\n";
    let mut bytes = text.as_bytes().to_vec();
    bytes.extend_from_slice(b"\x80\x81 garbage\r\n");
    let p = read(&bytes, "l.txt", Some(FeedFormat::Plain));
    assert_eq!(
        values(&p),
        vec![
            "1.2.3.4",
            "10.0.0.0/8",
            "192.0.2.1-192.0.2.9",
            "evil.example",
            "http://bad.example/x#frag",
            "d41d8cd98f00b204e9800998ecf8427e",
            "2001:db8::/32",
            "203.0.113.5",
            "198.51.100.7",
        ]
    );
    let lines: Vec<u64> = p.indicators.iter().map(|i| i.provenance.line).collect();
    assert_eq!(lines, vec![5, 6, 7, 8, 9, 10, 11, 12, 15]);
    assert_eq!(p.indicators[1].description.as_deref(), Some("SBL123"));
    assert_eq!(
        p.indicators[3].description.as_deref(),
        Some("trailing comment")
    );
    assert!(p.indicators[7].tags.other.iter().any(|o| o == "port=8080"));
    assert_eq!(
        p.indicators[8].description.as_deref(),
        Some("scanner seen on port 22")
    );
    let rej: Vec<u64> = p.rejected.iter().map(|r| r.line).collect();
    assert_eq!(rej, vec![13, 14, 16]);
    assert!(p.rejected.iter().all(|r| !r.reason.is_empty()));
}

#[test]
fn plain_empty_comments_nul_and_huge() {
    // Empty: nothing, no error.
    let p = read(b"", "e.txt", None);
    assert!(p.indicators.is_empty() && p.rejected.is_empty());
    // Only comments: an empty block list.
    let c = b"# nothing listed today\n; really\n";
    assert_eq!(detect(c), Some(FeedFormat::Plain));
    let p = read(c, "c.txt", None);
    assert!(p.indicators.is_empty() && p.rejected.is_empty());
    // NUL bytes: detection refuses binary; a forced format reads the rest.
    let nul = b"1.2.3.4\n\x00\x00\n5.6.7.8\n";
    assert!(matches!(
        read_feed(nul, "n.txt", None, &opts()),
        Err(FeedError::Binary { .. })
    ));
    let p = read(nul, "n.txt", Some(FeedFormat::Plain));
    assert_eq!(values(&p), vec!["1.2.3.4", "5.6.7.8"]);
    assert_eq!(p.rejected.len(), 1);
    assert_eq!(p.rejected[0].line, 2);
    // A huge line is rejected with a short excerpt; the next still loads.
    let mut huge = "x".repeat(2_000_000);
    huge.push_str("\n9.9.9.9\n");
    let p = read(huge.as_bytes(), "h.txt", Some(FeedFormat::Plain));
    assert_eq!(values(&p), vec!["9.9.9.9"]);
    assert_eq!(p.rejected[0].line, 1);
    assert!(p.rejected[0].raw.len() < 300 && p.rejected[0].reason.len() < 400);
}

#[test]
fn plain_large_list_loads_every_line() {
    let mut s = String::with_capacity(3_000_000);
    for i in 0..100_000u32 {
        let [a, b, c, d] = (0x0100_0000 + i * 7).to_be_bytes();
        if i % 10 == 0 {
            s.push_str(&format!("{a}.{b}.{c}.0/24\n"));
        } else {
            s.push_str(&format!("{a}.{b}.{c}.{d}\n"));
        }
    }
    assert_eq!(detect(s.as_bytes()), Some(FeedFormat::Plain));
    let p = read(s.as_bytes(), "big.netset", None);
    assert_eq!(p.indicators.len(), 100_000);
    assert_eq!(count(&p, IndicatorKind::Cidr), 10_000);
    assert_eq!(p.indicators[99_999].provenance.line, 100_000);
}

#[test]
fn plain_detection_is_specific() {
    assert_eq!(
        detect(b"1.2.3.4\n5.6.7.8\nevil.example\n"),
        Some(FeedFormat::Plain)
    );
    assert_ne!(
        detect(b"Indicators of Compromise\nSome prose here.\n1.2.3[.]4\tDec 5, 2023\n"),
        Some(FeedFormat::Plain)
    );
    assert_eq!(detect(b"hello world\nthis is text\n"), None);
}

// ---------------------------------------------------------------------------
// Generic CSV / TSV
// ---------------------------------------------------------------------------

#[test]
fn csv_guessed_columns() {
    let text = "\u{feff}indicator,type,first_seen,last_seen,confidence,tags,description\r\n\
\"1.2.3.4\",ip-dst,2024-01-01,2024-02-01,75,\"tlp:amber, misp-galaxy:threat-actor=\"\"Volt Typhoon\"\", relay\",\"a, quoted\r\nmulti-line note\"\r\n\
# a comment row\r\n\
evil[.]example,domain,,,High,,\r\n\
abc,mutex,,,,,\r\n\
5.6.7.8,ip-dst,2024-01-01\r\n\
9.9.9.9,ip-dst,yesterday,,,,\r\n\
http://bad.example/x,url,,,0.9,,\r\n\
2.2.2.2,IPv4-Addr,,,,,,\r\n\
,,,,,,\r\n\
d41d8cd98f00b204e9800998ecf8427e,FileHash-MD5,,,,,\r\n\
1.1.1.1,unknown-type,,,,,\r\n";
    assert_eq!(detect(text.as_bytes()), Some(FeedFormat::Csv));
    let p = read(text.as_bytes(), "g.csv", None);
    assert_eq!(
        values(&p),
        vec![
            "1.2.3.4",
            "evil.example",
            "http://bad.example/x",
            "2.2.2.2",
            "d41d8cd98f00b204e9800998ecf8427e",
            "1.1.1.1"
        ]
    );
    let a = &p.indicators[0];
    assert_eq!(a.provenance.line, 2);
    assert_eq!(day(a.first_seen).as_deref(), Some("2024-01-01"));
    assert_eq!(day(a.last_seen).as_deref(), Some("2024-02-01"));
    assert_eq!(a.confidence, Some(75));
    assert_eq!(a.tags.tlp.as_deref(), Some("amber"));
    assert_eq!(a.tags.actors, vec!["Volt Typhoon"]);
    assert_eq!(a.tags.other, vec!["relay"]);
    assert_eq!(
        a.description.as_deref(),
        Some("a, quoted\r\nmulti-line note")
    );
    assert_eq!(p.indicators[1].provenance.line, 5);
    assert_eq!(p.indicators[1].confidence, Some(85));
    assert_eq!(p.indicators[2].confidence, Some(90));
    assert_eq!(p.indicators[3].provenance.line, 10);
    let rej: Vec<u64> = p.rejected.iter().map(|r| r.line).collect();
    assert_eq!(rej, vec![7, 8]);
    assert!(p.rejected[0].reason.contains("fields"));
    assert!(p.rejected[1].reason.contains("not a date"));
    let skip: Vec<u64> = p.skipped.iter().map(|s| s.line).collect();
    assert_eq!(skip, vec![6]);
}

#[test]
fn csv_commented_header_and_tsv() {
    // URLhaus-style: the header is a comment.
    let u = "################\n# abuse.ch URLhaus\n################\n\
# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n\
\"1\",\"2024-05-01 10:00:00\",\"http://1.2.3.4/bins/x.arm\",\"online\",\"2024-05-02 00:00:00\",\"malware_download\",\"elf,mirai\",\"https://urlhaus.abuse.ch/url/1/\",\"r\"\n";
    assert_eq!(detect(u.as_bytes()), Some(FeedFormat::Csv));
    let p = read(u.as_bytes(), "urlhaus.csv", None);
    assert_eq!(values(&p), vec!["http://1.2.3.4/bins/x.arm"]);
    assert_eq!(p.indicators[0].provenance.line, 5);
    assert_eq!(
        day(p.indicators[0].first_seen).as_deref(),
        Some("2024-05-01")
    );
    assert_eq!(
        day(p.indicators[0].last_seen).as_deref(),
        Some("2024-05-02")
    );
    assert!(p.rejected.is_empty());

    let t =
        "ip_address\tcomment\n1.2.3.4\tfirst\n5.6.7.8\tsecond\tragged\n1.1.1.1\tx\n2.2.2.2\ty\n";
    assert_eq!(detect(t.as_bytes()), Some(FeedFormat::Tsv));
    let p = read(t.as_bytes(), "t.tsv", None);
    assert_eq!(values(&p), vec!["1.2.3.4", "1.1.1.1", "2.2.2.2"]);
    assert_eq!(p.indicators[0].description.as_deref(), Some("first"));
    assert_eq!(p.rejected.len(), 1);
    assert_eq!(p.rejected[0].line, 3);
}

#[test]
fn csv_explicit_mapping() {
    let mut o = opts();
    o.csv = CsvMapping {
        value: Some("2".into()),
        first_seen: Some("1".into()),
        delimiter: Some(b';'),
        no_header: true,
        ..Default::default()
    };
    let p = read_with(
        b"2024-01-02;1.2.3.4\n2024-01-03;evil.example\n",
        FeedFormat::Csv,
        &o,
    )
    .expect("reads");
    assert_eq!(values(&p), vec!["1.2.3.4", "evil.example"]);
    assert_eq!(
        day(p.indicators[1].first_seen).as_deref(),
        Some("2024-01-03")
    );
    assert_eq!(p.indicators[1].provenance.line, 2);

    // Names without a header: a clear error.
    o.csv.value = Some("ip".into());
    let e = read_with(b"1.2.3.4\n", FeedFormat::Csv, &o);
    assert!(matches!(e, Err(FeedError::Malformed { .. })), "{e:?}");

    // By name, with a header.
    let mut o = opts();
    o.csv.value = Some("Adresse".into());
    o.csv.kind = Some("Genre".into());
    let p = read_with(b"Genre,Adresse\nip,1.2.3.4\n", FeedFormat::Csv, &o).expect("reads");
    assert_eq!(values(&p), vec!["1.2.3.4"]);

    // No recognisable value column: the error names the header.
    let e = read_with(b"foo,bar\n1,2\n", FeedFormat::Csv, &opts());
    match e {
        Err(FeedError::Malformed { reason, .. }) => assert!(reason.contains("foo, bar")),
        other => panic!("{other:?}"),
    }
    // Empty / comment-only CSV: nothing, no error.
    let p = read_with(b"# only a comment\n", FeedFormat::Csv, &opts()).expect("reads");
    assert!(p.indicators.is_empty());
}

// ---------------------------------------------------------------------------
// Suricata
// ---------------------------------------------------------------------------

#[test]
fn suricata_iprep() {
    let t = "# iprep\n1.2.3.4,1,127\n10.0.0.0/8,2,64\n2001:db8::1,3,0\n5.6.7.8,1,200\n5.6.7.9,x,10\n5.6.7.10,1\r\n";
    assert_eq!(
        detect(b"1.2.3.4,1,127\n10.0.0.0/8,2,64\n"),
        Some(FeedFormat::SuricataIprep)
    );
    let p = read(t.as_bytes(), "rep.list", Some(FeedFormat::SuricataIprep));
    assert_eq!(values(&p), vec!["1.2.3.4", "10.0.0.0/8", "2001:db8::1"]);
    let conf: Vec<Option<u8>> = p.indicators.iter().map(|i| i.confidence).collect();
    assert_eq!(conf, vec![Some(100), Some(50), Some(0)]);
    assert_eq!(p.indicators[1].tags.other, vec!["category=2"]);
    let rej: Vec<u64> = p.rejected.iter().map(|r| r.line).collect();
    assert_eq!(rej, vec![5, 6, 7]);
}

#[test]
fn suricata_dataset() {
    let t = "1.2.3.4\n\
2001:db8::2\n\
27c6ed4cf5fe4e0c6e17f0c3c5a9d7e70d7d3c0b40dc1f1c2c1a9e3b0c3bb2a1\n\
d41d8cd98f00b204e9800998ecf8427e\n\
ZXZpbC5leGFtcGxl\n\
aHR0cDovL2JhZC5leGFtcGxlL3g=,10\n\
L2luZGV4LnBocA==\n\
not base64!\n\
//8=\n";
    let p = read(t.as_bytes(), "ds.lst", Some(FeedFormat::SuricataDataset));
    assert_eq!(
        values(&p),
        vec![
            "1.2.3.4",
            "2001:db8::2",
            "27c6ed4cf5fe4e0c6e17f0c3c5a9d7e70d7d3c0b40dc1f1c2c1a9e3b0c3bb2a1",
            "d41d8cd98f00b204e9800998ecf8427e",
            "evil.example",
            "http://bad.example/x"
        ]
    );
    let skip: Vec<u64> = p.skipped.iter().map(|s| s.line).collect();
    assert_eq!(
        skip,
        vec![7, 9],
        "/index.php is not matchable; 0xffff is not text"
    );
    let rej: Vec<u64> = p.rejected.iter().map(|r| r.line).collect();
    assert_eq!(rej, vec![8]);
}

// ---------------------------------------------------------------------------
// Never panic
// ---------------------------------------------------------------------------

const FORMATS: [Option<FeedFormat>; 9] = [
    None,
    Some(FeedFormat::Certfr),
    Some(FeedFormat::Csv),
    Some(FeedFormat::Tsv),
    Some(FeedFormat::Plain),
    Some(FeedFormat::Freetext),
    Some(FeedFormat::ZeekIntel),
    Some(FeedFormat::SuricataIprep),
    Some(FeedFormat::SuricataDataset),
];

/// Pieces that reach the interesting paths of the readers.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(",".to_string()),
        Just("\t".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just("\"".to_string()),
        Just("#".to_string()),
        Just("[.]".to_string()),
        Just(":".to_string()),
        Just("-".to_string()),
        Just(" \u{2013} ".to_string()),
        Just("1.2.3.4".to_string()),
        Just("10.0.0.0/8".to_string()),
        Just("2001:db8::1".to_string()),
        Just("evil[.]example".to_string()),
        Just("hxxp://".to_string()),
        Just("Sha256:".to_string()),
        Just("d41d8cd98f00b204e9800998ecf8427e".to_string()),
        Just("Feb. 7".to_string()),
        Just("Dec 31, 2023".to_string()),
        Just("May".to_string()),
        Just("2024".to_string()),
        Just("Intel::ADDR".to_string()),
        Just("#fields\tindicator\tindicator_type\tmeta.cif_confidence\n".to_string()),
        Just(CERTFR_HEADER.to_string()),
        Just("indicator,type,first_seen,confidence,tags\n".to_string()),
        Just("ip-dst|port".to_string()),
        Just("['A', \"B".to_string()),
        Just("\u{feff}".to_string()),
        Just("\u{a0}".to_string()),
        Just("=".to_string()),
        "[0-9]{1,4}".prop_map(|s| s),
        "[a-zA-Z0-9+/=.]{1,12}".prop_map(|s| s),
        any::<char>().prop_map(|c| c.to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn readers_never_panic_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        for f in FORMATS {
            let _ = read_feed(&bytes, "fuzz", f, &opts());
        }
    }

    #[test]
    fn readers_never_panic_on_feedlike_text(parts in proptest::collection::vec(piece(), 0..80)) {
        let text = parts.concat();
        for f in FORMATS {
            let _ = read_feed(text.as_bytes(), "fuzz", f, &opts());
        }
        let mut o = opts();
        o.csv.value = Some("2".into());
        o.csv.first_seen = Some("1".into());
        o.csv.no_header = true;
        let _ = read_feed(text.as_bytes(), "fuzz", Some(FeedFormat::Csv), &o);
    }
}

/// The real CERT-FR list with the closing quote of line 50's metadata
/// field removed: the quoted field runs on into line 51, where the next
/// `"` ends it mid-row. Line 50 is rejected as the line with the
/// unbalanced quote; line 51, re-read on its own, still loads, as do the
/// 159 others.
#[test]
fn certfr_unbalanced_quote_names_the_line_and_keeps_the_other_rows() {
    let bytes = data("CERTFR-2021-IOC-003-IOC.csv");
    let text = String::from_utf8(bytes).expect("utf-8");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let broken = lines[49].replacen("APT31\"\"\",", "APT31\"\",", 1);
    assert_ne!(broken, lines[49], "the test must break a quote");
    let lost_value = lines[49].rsplit(',').nth(1).expect("value").to_string();
    lines[49] = broken;
    let feed = lines.join("\n") + "\n";
    for p in [
        read(feed.as_bytes(), "certfr-broken.csv", None),
        read_from_stream(feed.as_bytes(), "certfr-broken.csv", None),
    ] {
        assert_eq!(p.format, Some(FeedFormat::Certfr));
        assert_eq!(p.indicators.len(), 160, "{:?}", p.rejected);
        assert_eq!(p.rejected.len(), 1, "{:?}", p.rejected);
        let r = &p.rejected[0];
        assert_eq!(r.line, 50);
        assert!(r.reason.contains("unbalanced"), "{}", r.reason);
        assert!(r.reason.contains("line 51"), "{}", r.reason);
        let got: Vec<String> = values(&p);
        assert!(
            !got.contains(&lost_value),
            "{lost_value} came from the broken row"
        );
        let line51 = p
            .indicators
            .iter()
            .find(|i| i.provenance.line == 51)
            .expect("line 51 re-read");
        assert_eq!(line51.tags.actors, vec!["APT31"]);
        let lines_loaded: BTreeSet<u64> = p.indicators.iter().map(|i| i.provenance.line).collect();
        let expected: BTreeSet<u64> = (2..=162).filter(|l| *l != 50).collect();
        assert_eq!(lines_loaded, expected);
    }
}

/// The streaming reader, through a 7-byte buffer so that records and
/// line ends straddle every refill.
fn read_from_stream(bytes: &[u8], file: &str, fmt: Option<FeedFormat>) -> ParsedFeed {
    let r = std::io::BufReader::with_capacity(7, bytes);
    orbwatch_intel::read_feed_from(r, file, fmt, &opts()).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// What a reader produced, as text, for comparing two ways of reading.
fn outcome(r: Result<ParsedFeed, FeedError>) -> String {
    match r {
        Ok(p) => format!(
            "{:?}\n{:?}\n{:?}\n{:?}",
            p.format, p.indicators, p.rejected, p.skipped
        ),
        Err(e) => format!("error: {e}"),
    }
}

/// The streaming entry point gives exactly what the in-memory one gives,
/// for real feeds and for the awkward cases: BOM, CRLF, leading blanks and
/// comments, commented CSV headers, quoted multi-line cells, unbalanced
/// quotes, no final newline, an empty file. The 7-byte buffer makes every
/// record and line end straddle a refill.
#[test]
fn streaming_reads_give_what_whole_reads_give() {
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for dir in ["feeds-text", "feeds-stix-misp", "feeds-misp-circl"] {
        let d = format!("{DATA}/../{dir}");
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{d}: {e}")) {
            let p = e.expect("dir entry").path();
            if p.is_file() && p.extension().is_none_or(|x| x != "md") {
                cases.push((p.display().to_string(), std::fs::read(&p).expect("read")));
            }
        }
    }
    if std::path::Path::new(CORPUS).is_dir() {
        for sub in ["feeds", "zeek-intel"] {
            let d = format!("{CORPUS}/{sub}");
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_file() {
                    cases.push((p.display().to_string(), std::fs::read(&p).expect("read")));
                }
            }
        }
    } else {
        println!("skipped: ../shared/corpus not found (only tests/data files compared)");
    }
    let synthetic: &[(&str, &[u8])] = &[
        ("empty", b""),
        ("blank", b"\n\n  \n"),
        ("plain-bom-crlf", b"\xef\xbb\xbf1.2.3.4\r\n# c\r\n\r\nevil.example\r\n5.6.7.8"),
        ("plain-bad", b"1.2.3.4\n300.1.1.1\nnot a value at all\n"),
        (
            "csv-comment-header",
            b"# comment\n#ip,first_seen\n\n1.2.3.4,2021-01-01\n5.6.7.8,2021-02-01\n",
        ),
        (
            "csv-quotes",
            b"ip,first_seen,description\n\
1.2.3.4,2021-01-01,\"a description\nover two lines\"\n\
5.6.7.8,2021-01-01,\"oops\n\
9.9.9.9,2021-01-02,fine\n\
10.1.1.1,2021-01-03,ok\n",
        ),
        (
            "csv-broken-mid",
            b"ip,first_seen,note\r\n1.1.1.1,2021-01-01,\"x\"\r\n2.2.2.2,2021-01-01,\"a\"b,c\"\r\n3.3.3.3,2021-01-02,\"q\"\r\n",
        ),
        (
            "tsv",
            b"indicator\ttype\n1.2.3.4\tip\nevil.example\tdomain\n",
        ),
        (
            "stix-csv-leading-blanks",
            b"\n  \n\"id\";\"pattern\";\"pattern_type\"\n\"indicator--1\";\"[ipv4-addr:value = '1.2.3.4']\";\"stix\"\n",
        ),
        (
            "freetext",
            b"Report\n\nC2 servers (first seen 2023-01-02):\n  hxxp://evil[.]example/a\n  1.2.3[.]4\n",
        ),
        ("iprep", b"1.2.3.4,1,100\n5.6.7.8,2,50\n"),
        ("json-other", b"{\"hello\": [1, 2, 3]}"),
        ("json-bad", b"{\"type\": \"bundle\", "),
        ("html", b"<!doctype html><html><body>1.2.3.4</body></html>"),
    ];
    for (n, b) in synthetic {
        cases.push((n.to_string(), b.to_vec()));
    }
    assert!(cases.len() >= 20, "{} cases", cases.len());
    for (name, bytes) in &cases {
        let whole = outcome(read_feed(bytes, name, None, &opts()));
        for cap in [7, 8192] {
            let r = std::io::BufReader::with_capacity(cap, &bytes[..]);
            let streamed = outcome(orbwatch_intel::read_feed_from(r, name, None, &opts()));
            assert_eq!(streamed, whole, "{name}, buffer {cap}");
        }
    }
}

/// Detection reads a bounded head: an endless stream of NULs or of
/// text-free junk is refused after the head, not read to its end.
#[test]
fn endless_junk_is_refused_from_the_head() {
    let r = std::io::BufReader::new(std::io::repeat(0));
    let e = orbwatch_intel::read_feed_from(r, "zeros", None, &opts()).expect_err("binary");
    assert!(matches!(e, FeedError::Binary { .. }), "{e}");
    let r = std::io::BufReader::new(std::io::repeat(0x01));
    let e = orbwatch_intel::read_feed_from(r, "ctl", None, &opts()).expect_err("binary");
    assert!(matches!(e, FeedError::Binary { .. }), "{e}");
}

/// An endless source of the same bytes, counting what was read from it.
struct Endless {
    pattern: &'static [u8],
    at: usize,
    read: std::rc::Rc<std::cell::Cell<u64>>,
}

impl std::io::Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        for b in buf.iter_mut() {
            *b = self.pattern[self.at % self.pattern.len()];
            self.at += 1;
        }
        self.read.set(self.read.get() + buf.len() as u64);
        Ok(buf.len())
    }
}

fn endless(
    head: &'static [u8],
    pattern: &'static [u8],
) -> (impl std::io::BufRead, std::rc::Rc<std::cell::Cell<u64>>) {
    let read = std::rc::Rc::new(std::cell::Cell::new(0));
    let src = Endless {
        pattern,
        at: 0,
        read: read.clone(),
    };
    (
        std::io::BufReader::new(std::io::Cursor::new(head).chain(src)),
        read,
    )
}

/// Text junk (prose with no indicator, or JSON that is neither STIX nor
/// MISP) is refused after its first MiB, not read to its end: the stream
/// here never ends, so reading it whole would never return.
#[test]
fn endless_text_junk_is_refused_within_the_first_mib() {
    let limit = orbwatch_intel::readers::PROBE_BYTES as u64 + 64 * 1024;
    let (r, read) = endless(b"", b"nothing to see in this line of prose\n");
    let e = orbwatch_intel::read_feed_from(r, "prose.txt", None, &opts()).expect_err("junk");
    assert!(matches!(e, FeedError::UnknownFormat { .. }), "{e}");
    assert!(e.to_string().contains("first MiB"), "{e}");
    assert!(e.to_string().contains("prose.txt"), "{e}");
    assert!(read.get() <= limit, "read {} bytes", read.get());

    let (r, read) = endless(b"[", b"{\"a\": 1, \"b\": \"c\"},\n");
    let e = orbwatch_intel::read_feed_from(r, "junk.json", None, &opts()).expect_err("junk");
    assert!(matches!(e, FeedError::Unrecognised { .. }), "{e}");
    assert!(e.to_string().contains("--format stix"), "{e}");
    assert!(read.get() <= limit, "read {} bytes", read.get());
}

/// The first-MiB rule applies only when nothing names the format: prose
/// with an indicator in its first MiB is read to its end, and prose whose
/// only indicator comes later is read whole with `--format freetext`.
#[test]
fn prose_is_read_whole_when_it_names_an_indicator_or_the_format() {
    let filler = "nothing to see in this line of prose\n".repeat(40_000); // 1.5 MB
    let early = format!("seen from 203.0.113.7 on the edge\n{filler}and 198.51.100.9 at the end\n");
    let f =
        orbwatch_intel::read_feed_from(early.as_bytes(), "early.txt", None, &opts()).expect("read");
    assert_eq!(values(&f), ["203.0.113.7", "198.51.100.9"]);

    let late = format!("{filler}and 198.51.100.9 at the end\n");
    let e = orbwatch_intel::read_feed_from(late.as_bytes(), "late.txt", None, &opts())
        .expect_err("no indicator in the first MiB");
    assert!(e.to_string().contains("--format freetext"), "{e}");
    let f = orbwatch_intel::read_feed_from(
        late.as_bytes(),
        "late.txt",
        Some(FeedFormat::Freetext),
        &opts(),
    )
    .expect("forced");
    assert_eq!(values(&f), ["198.51.100.9"]);
}

/// A JSON document is parsed whole, so its size is bounded: past the
/// limit the read stops with an error that names the file and the limit.
#[test]
fn json_document_over_the_limit_is_refused() {
    let mut o = opts();
    o.max_document_bytes = 100_000;
    // An endless JSON array: it would never end without the bound.
    let endless = std::io::Cursor::new(b"[".to_vec()).chain(std::io::repeat(b' '));
    let e = orbwatch_intel::read_feed_from(std::io::BufReader::new(endless), "big.json", None, &o)
        .expect_err("too large");
    assert!(
        matches!(e, FeedError::TooLarge { limit: 100_000, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("big.json"), "{e}");
    // Forced formats are bounded the same way.
    let endless = std::io::Cursor::new(b"{".to_vec()).chain(std::io::repeat(b' '));
    let e = orbwatch_intel::read_feed_from(
        std::io::BufReader::new(endless),
        "big.json",
        Some(FeedFormat::Misp),
        &o,
    )
    .expect_err("too large");
    assert!(matches!(e, FeedError::TooLarge { .. }), "{e}");
    // Below the limit the same document is read.
    let small = br#"{"type":"bundle","id":"bundle--1","objects":[]}"#;
    let p = orbwatch_intel::read_feed_from(&small[..], "small.json", None, &o).expect("small");
    assert_eq!(p.format, Some(FeedFormat::Stix));
}

/// An I/O error in the middle of a list is an error naming the file, not
/// a shorter feed.
#[test]
fn read_error_midway_is_an_error() {
    struct Failing(usize);
    impl std::io::Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 > 200_000 {
                return Err(std::io::Error::other("disk gone"));
            }
            let line = b"10.0.0.1\n";
            let n = buf.len().min(line.len());
            buf[..n].copy_from_slice(&line[..n]);
            self.0 += n;
            Ok(n)
        }
    }
    for (fmt, head) in [(None, &b""[..]), (Some(FeedFormat::Csv), &b"ip\n"[..])] {
        let r = std::io::BufReader::new(head.chain(Failing(0)));
        let e = orbwatch_intel::read_feed_from(r, "list.txt", fmt, &opts()).expect_err("io");
        assert!(matches!(e, FeedError::Io { .. }), "{e}");
        assert!(e.to_string().contains("list.txt") && e.to_string().contains("disk gone"));
    }
}
