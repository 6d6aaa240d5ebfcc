//! STIX and MISP readers on the shared corpus (ArcaneDoor, STIX 2.0 from
//! MISP) and on the hand-written fixtures in `tests/data/feeds-stix-misp`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use orbwatch_intel::readers::{self, misp, stix, stix_pattern};
use orbwatch_intel::{
    FeedError, FeedFormat, HashAlgo, Indicator, IndicatorKind, IndicatorValue, ParsedFeed,
    ReadOptions,
};
use proptest::prelude::*;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/feeds-stix-misp")
        .join(name)
}

/// A file of `../shared/corpus/feeds` (no licence, so not copied into the
/// repo); `None`, with a message, when the corpus is not there.
fn corpus(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus/feeds")
        .join(name);
    if p.is_file() {
        Some(p)
    } else {
        println!("skipped: ../shared/corpus not found");
        None
    }
}

const ARCANEDOOR: &str =
    "arcanedoor-new-espionage-focused-campaign-found-targeting-perimeter-network-devices.json";

fn opts() -> ReadOptions {
    ReadOptions::new("test")
}

fn read(path: &PathBuf) -> ParsedFeed {
    let bytes = std::fs::read(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    readers::read_feed(&bytes, &name, None, &opts()).unwrap()
}

fn counts(feed: &ParsedFeed) -> BTreeMap<&'static str, u64> {
    feed.counts()
        .into_iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect()
}

fn expect(pairs: &[(&'static str, u64)]) -> BTreeMap<&'static str, u64> {
    let mut m: BTreeMap<&'static str, u64> =
        IndicatorKind::ALL.iter().map(|k| (k.as_str(), 0)).collect();
    for (k, v) in pairs {
        m.insert(k, *v);
    }
    m
}

fn find<'a>(feed: &'a ParsedFeed, value: &str) -> &'a Indicator {
    feed.indicators
        .iter()
        .find(|i| i.value.to_string() == value)
        .unwrap_or_else(|| panic!("{value} not loaded"))
}

fn reasons(list: impl IntoIterator<Item = String>) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in list {
        *m.entry(r).or_default() += 1;
    }
    m
}

/// An independent count of what the patterns of a bundle name: a plain
/// scan for `path = 'value'` in each STIX `pattern` string, no parser.
fn scan_bundle_patterns(doc: &serde_json::Value) -> BTreeMap<&'static str, u64> {
    let mut m = expect(&[]);
    for o in doc["objects"].as_array().unwrap() {
        if o["type"] != "indicator" {
            continue;
        }
        if o.get("pattern_type").is_some_and(|t| t != "stix") {
            continue;
        }
        let mut rest = o["pattern"].as_str().unwrap();
        while let Some(i) = rest.find(" = '") {
            let path = rest[..i].rsplit(['[', ' ', '(']).next().unwrap();
            let after = &rest[i + 4..];
            let end = after.find('\'').unwrap();
            let value = &after[..end];
            let is_ip = value.split('/').next().unwrap().parse::<IpAddr>();
            let cidr = value.contains('/');
            let kind = match (path, is_ip) {
                (_, Ok(_)) if cidr => "cidr",
                ("ipv4-addr:value" | "ipv6-addr:value", Ok(IpAddr::V4(_))) => "ipv4",
                ("ipv4-addr:value" | "ipv6-addr:value", Ok(IpAddr::V6(_))) => "ipv6",
                (p, Ok(IpAddr::V4(_))) if p.ends_with("_ref.value") => "ipv4",
                (p, Ok(IpAddr::V6(_))) if p.ends_with("_ref.value") => "ipv6",
                (p, Err(_)) if p.ends_with("_ref.value") => "domain",
                (p, _) => match p {
                    "domain-name:value" => "domain",
                    "url:value" => "url",
                    p if p.starts_with("file:hashes") => "hash",
                    p if p.starts_with("x509-certificate:hashes") => "cert",
                    _ => "",
                },
            };
            if !kind.is_empty() {
                *m.get_mut(kind).unwrap() += 1;
            }
            rest = &after[end + 1..];
        }
    }
    m
}

// ------------------------------------------------------------ ArcaneDoor

#[test]
fn arcanedoor_counts_match_the_patterns() {
    let Some(path) = corpus(ARCANEDOOR) else {
        return;
    };
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(readers::detect(&bytes), Some(FeedFormat::Stix));
    let feed = read(&path);

    let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let independent = scan_bundle_patterns(&doc);
    assert_eq!(counts(&feed), independent);
    // Verified by hand: 60 indicator objects, each
    // `[network-traffic:dst_ref.type = 'ipv4-addr' AND
    //   network-traffic:dst_ref.value = '<ipv4>']`; the same 60 addresses
    // as the companion .txt file.
    assert_eq!(counts(&feed), expect(&[("ipv4", 60)]));

    let Some(txt_path) = corpus(&ARCANEDOOR.replace(".json", ".txt")) else {
        return;
    };
    let txt = std::fs::read_to_string(txt_path).unwrap();
    let mut from_txt: Vec<String> = txt.split_whitespace().map(str::to_string).collect();
    let mut loaded: Vec<String> = feed
        .indicators
        .iter()
        .map(|i| i.value.to_string())
        .collect();
    from_txt.sort();
    loaded.sort();
    assert_eq!(loaded, from_txt);

    assert!(feed.rejected.is_empty(), "{:?}", feed.rejected);
    let skipped = reasons(feed.skipped.iter().map(|s| s.reason.clone()));
    assert_eq!(
        skipped,
        BTreeMap::from([
            (
                "custom STIX object x-misp-attribute is not an indicator".to_string(),
                3
            ),
            (
                "observed-data is an observation, not an indicator".to_string(),
                1
            ),
        ])
    );
}

#[test]
fn arcanedoor_metadata() {
    let Some(path) = corpus(ARCANEDOOR) else {
        return;
    };
    let feed = read(&path);
    let i = find(&feed, "192.36.57.181");
    assert_eq!(
        i.provenance.record_id.as_deref(),
        Some("indicator--183cb837-563b-4235-a772-7b373098ca4b")
    );
    assert_eq!(i.provenance.line, 1, "the bundle is a single line");
    assert_eq!(i.valid_from.unwrap().to_string(), "2024-04-18T19:34:07Z");
    assert_eq!(i.valid_until, None);
    assert_eq!(i.published.unwrap().to_string(), "2024-04-18T19:34:07Z");
    assert_eq!(
        i.tags.tlp.as_deref(),
        Some("white"),
        "from the report's TLP:WHITE label"
    );
    assert_eq!(
        i.tags.actors,
        vec!["UAT4356"],
        "from the MISP threat-actor attribute"
    );
    for t in [
        "source=Talos",
        "stix-ref=dst_ref",
        "misp:type=\"ip-dst\"",
        "report=ArcaneDoor: New espionage-focused campaign targets perimeter network devices",
    ] {
        assert!(
            i.tags.other.iter().any(|o| o == t),
            "{t} missing: {:?}",
            i.tags.other
        );
    }
    assert!(i.tags.roles.is_empty());
    assert!(feed.indicators.iter().all(|i| {
        i.provenance
            .record_id
            .as_deref()
            .is_some_and(|r| r.starts_with("indicator--"))
    }));
}

#[test]
fn truncated_bundle_is_malformed_with_position() {
    let Some(path) = corpus(ARCANEDOOR) else {
        return;
    };
    let bytes = std::fs::read(path).unwrap();
    let cut = &bytes[..bytes.len() / 2];
    let mut out = ParsedFeed::default();
    let err = stix::read(cut, "arcanedoor.json", &opts(), &mut out).unwrap_err();
    match &err {
        FeedError::Malformed {
            file,
            format,
            reason,
        } => {
            assert_eq!(file, "arcanedoor.json");
            assert_eq!(*format, FeedFormat::Stix);
            assert!(reason.contains("line 1 column"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // A pretty-printed bundle with a syntax error names the line.
    let broken =
        b"{\n  \"type\": \"bundle\",\n  \"objects\": [\n    {\"type\": \"indicator\",}\n  ]\n}\n";
    let err = stix::read(broken, "b.json", &opts(), &mut out).unwrap_err();
    assert!(err.to_string().contains("line 4"), "{err}");
}

// ------------------------------------------------------------ STIX 2.1 fixture

#[test]
fn stix21_fixture_counts() {
    let feed = read(&data("stix21-bundle.json"));
    assert_eq!(
        counts(&feed),
        expect(&[
            ("ipv4", 10),
            ("ipv6", 1),
            ("cidr", 2),
            ("domain", 1),
            ("url", 2),
            ("hash", 4),
            ("cert", 2),
        ])
    );
    let skipped = reasons(feed.skipped.iter().map(|s| s.reason.clone()));
    assert_eq!(
        skipped,
        BTreeMap::from([
            ("pattern_type yara is not a STIX pattern".to_string(), 1),
            ("pattern_type snort is not a STIX pattern".to_string(), 1),
            (
                "object path network-traffic:dst_port is not one orbwatch can match".to_string(),
                1
            ),
            (
                "negated comparison on domain-name:value names what the indicator is not"
                    .to_string(),
                1
            ),
            (
                "negated comparison on ipv4-addr:value names what the indicator is not".to_string(),
                1
            ),
            ("operator LIKE does not name an exact value".to_string(), 1),
            ("revoked indicator".to_string(), 1),
            (
                "older version of an indicator that the feed also has in a newer version"
                    .to_string(),
                1
            ),
            (
                "observed-data is an observation, not an indicator".to_string(),
                1
            ),
            (
                "custom STIX object x-example-sensor is not an indicator".to_string(),
                1
            ),
        ])
    );
    assert_eq!(feed.rejected.len(), 3, "{:#?}", feed.rejected);
    let r = &feed.rejected;
    assert!(
        r.iter().any(|x| x.reason.contains("indicator--0000000e")
            && x.reason.contains("does not parse at column 32")),
        "{r:#?}"
    );
    assert!(
        r.iter()
            .any(|x| x.reason.contains("`999.1.1.1` is not an IP address"))
    );
    assert!(
        r.iter().any(|x| x.reason.contains("indicator--00000012")
            && x.reason.contains("malformed STIX object"))
    );
    assert!(
        r.iter()
            .all(|x| x.file == "stix21-bundle.json" && x.line > 0)
    );
}

#[test]
fn stix21_fixture_metadata() {
    let feed = read(&data("stix21-bundle.json"));

    let a = find(&feed, "198.51.100.7");
    assert_eq!(a.tags.tlp.as_deref(), Some("green"));
    assert_eq!(a.confidence, Some(85));
    assert_eq!(a.valid_from.unwrap().to_string(), "2024-03-01T00:00:00Z");
    assert_eq!(a.valid_until.unwrap().to_string(), "2024-09-01T00:00:00Z");
    assert_eq!(a.published.unwrap().to_string(), "2024-03-01T10:00:00Z");
    assert_eq!(a.tags.actors, vec!["Example Relay Set"]);
    assert_eq!(a.tags.roles, vec!["compromised", "relay"]);
    assert!(a.tags.other.contains(&"source=Example CERT".to_string()));
    assert_eq!(
        a.description.as_deref(),
        Some(
            "Compromised SOHO router used as relay — Edge router observed relaying operator traffic."
        )
    );
    assert_eq!(
        a.provenance.record_id.as_deref(),
        Some("indicator--00000001-1111-4222-8333-000000000001")
    );
    // Line of the object's "id" in the pretty-printed bundle.
    let text = std::fs::read_to_string(data("stix21-bundle.json")).unwrap();
    let id_line = text
        .lines()
        .position(|l| l.contains("\"id\": \"indicator--00000001-"))
        .unwrap() as u64
        + 1;
    assert_eq!(a.provenance.line, id_line);

    // OR: two indicators, same record, campaign and its attributed actor.
    let b4 = find(&feed, "203.0.113.10");
    let b6 = find(&feed, "2001:db8::7");
    assert_eq!(b4.provenance.record_id, b6.provenance.record_id);
    assert_eq!(b4.tags.campaigns, vec!["Operation Example Relay"]);
    assert_eq!(b4.tags.actors, vec!["Example Relay Set"]);
    assert_eq!(
        b4.tags.tlp.as_deref(),
        Some("amber"),
        "TLP 1.0 well-known id"
    );
    assert_eq!(b4.tags.roles, vec!["malicious-activity"]);

    let c = find(&feed, "192.0.2.44");
    assert!(c.tags.other.contains(&"stix-ref=dst_ref".to_string()));
    assert_eq!(c.tags.tlp.as_deref(), Some("red"), "TLP 2.0 well-known id");
    assert_eq!(c.tags.roles, vec!["anonymization", "relay"]);

    let d = find(&feed, "2001:db8:1::/48");
    assert!(matches!(d.value, IndicatorValue::Cidr(_)));
    assert!(d.tags.other.contains(&"stix-ref=src_ref".to_string()));
    assert!(matches!(
        find(&feed, "198.51.100.0/24").value,
        IndicatorValue::Cidr(_)
    ));
    for ip in [
        "192.0.2.10",
        "192.0.2.11",
        "192.0.2.12",
        "203.0.113.77",
        "192.0.2.200",
        "192.0.2.201",
        "192.0.2.151",
    ] {
        find(&feed, ip);
    }
    assert!(!feed.indicators.iter().any(|i| {
        let v = i.value.to_string();
        [
            "192.0.2.202",
            "192.0.2.150",
            "192.0.2.160",
            "192.0.2.180",
            "192.0.2.99",
            "benign.example",
        ]
        .contains(&v.as_str())
    }));
    assert!(matches!(
        find(&feed, "relay-gw.example").value,
        IndicatorValue::Domain(_)
    ));
    find(&feed, "https://relay-gw.example/api/v1/beacon");
    find(&feed, "http://files.relay-gw.example/o'brien.sh");
    assert!(matches!(
        find(&feed, "d41d8cd98f00b204e9800998ecf8427e").value,
        IndicatorValue::Hash {
            algo: HashAlgo::Md5,
            ..
        }
    ));
    assert!(matches!(
        find(&feed, "4e1243bd22c66e76c2ba9eddc1f91394e57f9f83").value,
        IndicatorValue::CertFingerprint {
            algo: HashAlgo::Sha1,
            ..
        }
    ));
    // No window in the feed for an indicator without valid_until: open end.
    assert_eq!(find(&feed, "192.0.2.10").valid_until, None);
}

#[test]
fn stix_json_lines() {
    let feed = read(&data("stix20-lines.jsonl"));
    assert_eq!(feed.format, Some(FeedFormat::Stix));
    assert_eq!(
        counts(&feed),
        expect(&[("ipv4", 1), ("ipv6", 1), ("domain", 1)])
    );
    let lines: Vec<(String, u64)> = feed
        .indicators
        .iter()
        .map(|i| (i.value.to_string(), i.provenance.line))
        .collect();
    assert_eq!(
        lines,
        vec![
            ("198.51.100.200".to_string(), 2),
            ("2001:db8:ff::9".to_string(), 4),
            ("c2.relay-gw.example".to_string(), 6),
        ]
    );
    let a = find(&feed, "198.51.100.200");
    assert_eq!(a.tags.tlp.as_deref(), Some("white"));
    assert!(a.tags.other.contains(&"source=Example ISAC".to_string()));
    assert_eq!(
        find(&feed, "2001:db8:ff::9").tags.roles,
        vec!["anonymization", "relay"]
    );
    assert_eq!(feed.rejected.len(), 1);
    assert_eq!(feed.rejected[0].line, 3);
    assert!(
        feed.rejected[0].reason.starts_with("invalid JSON"),
        "{:?}",
        feed.rejected
    );
}

#[test]
fn stix_bad_input_is_contained() {
    let mut out = ParsedFeed::default();
    // Not STIX at all.
    let err = stix::read(br#"{"hello": 1}"#, "x.json", &opts(), &mut out).unwrap_err();
    assert!(matches!(err, FeedError::Malformed { .. }));
    // Deep pattern nesting is rejected, not a stack overflow.
    let deep = format!(
        "{}[ipv4-addr:value = '192.0.2.1']{}",
        "(".repeat(5000),
        ")".repeat(5000)
    );
    let obj = serde_json::json!({"type": "indicator", "id": "indicator--1", "pattern": deep});
    let mut out = ParsedFeed::default();
    stix::read(obj.to_string().as_bytes(), "deep.json", &opts(), &mut out).unwrap();
    assert!(out.indicators.is_empty());
    assert!(
        out.rejected[0].reason.contains("nested deeper than 64"),
        "{:?}",
        out.rejected
    );
    // Deep JSON nesting: serde_json's recursion limit makes it an error.
    let deep_json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let mut out = ParsedFeed::default();
    assert!(stix::read(deep_json.as_bytes(), "deep.json", &opts(), &mut out).is_err());
    // Missing id, missing pattern, bad valid_from.
    let lines = [
        r#"{"type": "indicator", "pattern": "[ipv4-addr:value = '192.0.2.1']"}"#,
        r#"{"type": "indicator", "id": "indicator--2"}"#,
        r#"{"type": "indicator", "id": "indicator--3", "pattern": "[ipv4-addr:value = '192.0.2.3']", "valid_from": "soon"}"#,
        r#"{"type": "indicator", "id": "indicator--4", "pattern": "[ipv4-addr:value = '192.0.2.4']", "valid_from": "2024-02-01T00:00:00Z", "valid_until": "2024-01-01T00:00:00Z"}"#,
        r#"{"type": "indicator", "id": "indicator--5", "pattern": "[ipv4-addr:value = 5]"}"#,
        r#"{"type": "indicator", "id": "indicator--6", "pattern": "[network-traffic:dst_ref.value = 'http://x.example/']"}"#,
        r#"{"type": "indicator", "id": "indicator--7", "pattern": "[ipv4-addr:value = '192.0.2.7']", "confidence": "70"}"#,
    ]
    .join("\n");
    let mut out = ParsedFeed::default();
    stix::read(lines.as_bytes(), "l.jsonl", &opts(), &mut out).unwrap();
    assert_eq!(out.indicators.len(), 1);
    assert_eq!(out.indicators[0].confidence, Some(70));
    let rej: Vec<(u64, &str)> = out
        .rejected
        .iter()
        .map(|r| (r.line, r.reason.as_str()))
        .collect();
    assert_eq!(rej.len(), 6, "{rej:#?}");
    assert!(rej[0].1.contains("no id"));
    assert!(rej[1].1.contains("no pattern"));
    assert!(rej[2].1.contains("valid_from `soon`"));
    assert!(rej[3].1.contains("before valid_from"));
    assert!(rej[4].1.contains("not a string"));
    assert!(rej[5].1.contains("not an address or a domain name"));
    assert_eq!(
        rej.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6]
    );
}

// ------------------------------------------------------------ MISP

#[test]
fn misp_event_fixture() {
    let path = data("misp-event.json");
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(readers::detect(&bytes), Some(FeedFormat::Misp));
    let feed = read(&path);
    assert_eq!(
        counts(&feed),
        expect(&[
            ("ipv4", 5),
            ("ipv6", 1),
            ("domain", 4),
            ("url", 2),
            ("hash", 3),
            ("cert", 2),
        ])
    );
    let skipped = reasons(feed.skipped.iter().map(|s| s.reason.clone()));
    assert_eq!(
        skipped,
        BTreeMap::from([
            ("link is a reference to a report, not an indicator".to_string(), 1),
            (
                "ja3-fingerprint-md5 is a TLS/SSH handshake fingerprint, which orbwatch does not match"
                    .to_string(),
                1
            ),
            ("MISP type as is not an indicator orbwatch can match".to_string(), 1),
            ("MISP type comment is not an indicator orbwatch can match".to_string(), 1),
            ("MISP type threat-actor is not an indicator orbwatch can match".to_string(), 1),
            ("MISP type port is not an indicator orbwatch can match".to_string(), 1),
            ("deleted attribute".to_string(), 1),
            ("attribute of a deleted object".to_string(), 1),
        ])
    );
    assert_eq!(feed.rejected.len(), 1, "{:?}", feed.rejected);
    assert!(
        feed.rejected[0]
            .reason
            .contains("a0000001-1c2d-4e3f-8a9b-000000000019")
    );
    assert!(feed.rejected[0].reason.contains("192.0.2.300"));
    assert!(feed.rejected[0].line > 0);

    let a = find(&feed, "198.51.100.23");
    assert_eq!(
        a.provenance.record_id.as_deref(),
        Some("a0000001-1c2d-4e3f-8a9b-000000000001")
    );
    assert_eq!(
        a.tags.tlp.as_deref(),
        Some("amber"),
        "attribute tag wins over the event's"
    );
    assert_eq!(
        a.tags.campaigns,
        vec!["Example Relay Network: compromised SOHO routers"]
    );
    assert_eq!(a.tags.actors, vec!["Example Panda", "Example Relay Actor"]);
    assert_eq!(a.confidence, Some(80), "admiralty-scale b");
    assert_eq!(a.first_seen.unwrap().to_string(), "2024-01-10T00:00:00Z");
    assert_eq!(a.last_seen.unwrap().to_string(), "2024-02-15T12:30:00Z");
    // finalize: window = first/last seen widened by the 7-day grace.
    assert_eq!(a.valid_from.unwrap().to_string(), "2024-01-03T00:00:00Z");
    assert_eq!(a.valid_until.unwrap().to_string(), "2024-02-22T12:30:00Z");
    assert_eq!(a.published.unwrap().to_string(), "2024-02-20T11:53:20Z");
    assert_eq!(a.description.as_deref(), Some("Relay node, SSH exposed"));
    for t in [
        "source=CERT-EXAMPLE",
        "misp:type=\"ip-dst\"",
        "misp:category=\"Network activity\"",
        "type:OSINT",
        "misp-galaxy:mitre-attack-pattern=\"Multi-hop Proxy - T1090.003\"",
        "admiralty-scale:source-reliability=\"b\"",
    ] {
        assert!(
            a.tags.other.iter().any(|o| o == t),
            "{t} missing: {:?}",
            a.tags.other
        );
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let uuid_line = text
        .lines()
        .position(|l| l.contains("a0000001-1c2d-4e3f-8a9b-000000000001"))
        .unwrap() as u64
        + 1;
    assert_eq!(a.provenance.line, uuid_line);

    let p = find(&feed, "203.0.113.5");
    assert!(p.tags.other.contains(&"port=8443".to_string()));
    assert_eq!(p.tags.tlp.as_deref(), Some("green"));
    assert_eq!(find(&feed, "relay-node.example").confidence, Some(90));
    let di = find(&feed, "192.0.2.77");
    let dd = find(&feed, "c2.relay-node.example");
    assert_eq!(di.provenance.record_id, dd.provenance.record_id);
    assert!(
        find(&feed, "http://relay-node.example/upd/fw.bin")
            .tags
            .other
            .contains(&"url-scheme-assumed".to_string())
    );
    find(
        &feed,
        "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb",
    );
    assert!(
        find(
            &feed,
            "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d"
        )
        .tags
        .other
        .contains(&"filename=fw.bin".to_string())
    );
    assert!(matches!(
        find(&feed, "a9993e364706816aba3e25717850c26c9cd0d89d").value,
        IndicatorValue::CertFingerprint {
            algo: HashAlgo::Sha1,
            ..
        }
    ));
    let nt = find(&feed, "192.0.2.250");
    assert_eq!(nt.confidence, Some(40), "to_ids false halves 80");
    assert!(nt.tags.other.contains(&"to_ids=false".to_string()));
    assert_eq!(
        find(&feed, "2001:db8:5::1").first_seen.unwrap().to_string(),
        "2024-01-01T00:00:00Z"
    );
    let o = find(&feed, "198.51.100.99");
    assert_eq!(
        o.first_seen.unwrap().to_string(),
        "2024-01-20T00:00:00Z",
        "object dates"
    );
    assert!(o.tags.other.contains(&"misp-object=ip-port".to_string()));
    assert_eq!(o.description.as_deref(), Some("SSH relay listener"));
    let c = find(
        &feed,
        "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
    );
    assert_eq!(c.tags.tlp.as_deref(), Some("red"));
    assert!(!feed.indicators.iter().any(|i| {
        let v = i.value.to_string();
        v == "192.0.2.251" || v == "old.relay-node.example"
    }));
}

#[test]
fn misp_event_shapes() {
    let attr = r#"{"type": "ip-dst", "uuid": "11111111-2222-4333-8444-555555555555", "value": "192.0.2.9", "to_ids": true, "timestamp": "1704067200"}"#;
    let bare = format!(r#"{{"info": "bare", "uuid": "e1", "Attribute": [{attr}]}}"#);
    for doc in [
        format!(r#"{{"Event": {bare}}}"#),
        bare.clone(),
        format!(r#"{{"response": [{{"Event": {bare}}}, {{"Event": {bare}}}]}}"#),
        format!(r#"[{{"Event": {bare}}}, {bare}]"#),
    ] {
        let mut out = ParsedFeed::default();
        misp::read_event_file(doc.as_bytes(), "e.json", &opts(), &mut out).unwrap();
        assert!(!out.indicators.is_empty(), "{doc}");
        assert!(
            out.indicators
                .iter()
                .all(|i| i.tags.campaigns == vec!["bare"])
        );
        // No publication date on the event: the attribute's timestamp.
        assert!(
            out.indicators
                .iter()
                .all(|i| i.published.unwrap().to_string() == "2024-01-01T00:00:00Z")
        );
    }
    // One bad attribute among good ones.
    let doc = format!(
        r#"{{"Event": {{"info": "x", "Attribute": [{attr}, {{"value": "no type"}}, 17]}}}}"#
    );
    let mut out = ParsedFeed::default();
    misp::read_event_file(doc.as_bytes(), "e.json", &opts(), &mut out).unwrap();
    assert_eq!(out.indicators.len(), 1);
    assert_eq!(out.rejected.len(), 2);
    // Errors that stop the file.
    let mut out = ParsedFeed::default();
    let e = misp::read_event_file(b"{\"Event\": [", "e.json", &opts(), &mut out).unwrap_err();
    assert!(
        e.to_string().contains("e.json") && e.to_string().contains("line 1"),
        "{e}"
    );
    let e = misp::read_event_file(b"{\"a\": 1}", "e.json", &opts(), &mut out).unwrap_err();
    assert!(e.to_string().contains("no MISP event found"), "{e}");
    let manifest = std::fs::read(data("misp-feed/manifest.json")).unwrap();
    assert_eq!(readers::detect(&manifest), Some(FeedFormat::Misp));
    let e = misp::read_event_file(&manifest, "manifest.json", &opts(), &mut out).unwrap_err();
    assert!(e.to_string().contains("feed manifest"), "{e}");
}

#[test]
fn misp_feed_directory() {
    let dir = data("misp-feed");
    let manifest = std::fs::read(dir.join("manifest.json")).unwrap();
    let mut loaded = Vec::new();
    let mut load = |uuid: &str| -> Result<Vec<u8>, String> {
        loaded.push(uuid.to_string());
        std::fs::read(dir.join(format!("{uuid}.json"))).map_err(|e| e.to_string())
    };
    let o = opts();
    let mut out = ParsedFeed {
        format: Some(FeedFormat::MispFeed),
        ..Default::default()
    };
    misp::read_feed_dir(&manifest, "manifest.json", &mut load, &o, &mut out).unwrap();
    readers::finalize(&mut out, &o);
    assert_eq!(
        loaded,
        vec![
            "5f3c9a10-1111-4c2d-9e8f-0a1b2c3d4e01",
            "5f3c9a10-2222-4c2d-9e8f-0a1b2c3d4e02",
            "5f3c9a10-3333-4c2d-9e8f-0a1b2c3d4e03",
        ]
    );
    assert_eq!(
        counts(&out),
        expect(&[("ipv4", 2), ("domain", 1), ("url", 1)])
    );
    assert_eq!(out.skipped.len(), 1);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(
        out.rejected[0].file,
        "5f3c9a10-3333-4c2d-9e8f-0a1b2c3d4e03.json"
    );
    assert!(
        out.rejected[0].reason.contains("invalid JSON"),
        "{:?}",
        out.rejected
    );

    let a = find(&out, "203.0.113.41");
    assert_eq!(
        a.provenance.file,
        "5f3c9a10-1111-4c2d-9e8f-0a1b2c3d4e01.json"
    );
    assert_eq!(a.tags.tlp.as_deref(), Some("white"));
    // Event 2 has no Orgc or Tag of its own: the manifest's are used.
    let d = find(&out, "exit-7.orb-relay.example");
    assert_eq!(d.tags.tlp.as_deref(), Some("green"));
    assert_eq!(d.tags.actors, vec!["Example Panda"]);
    assert!(d.tags.other.contains(&"source=Example ISAC".to_string()));
    assert_eq!(d.published.unwrap().to_string(), "2024-02-02T00:00:00Z");

    // Load failures and hostile keys are per-event rejections.
    let manifest = br#"{"../../etc/passwd": {"info": "x"}, "0000000a-0000-4000-8000-000000000000": {"info": "y"}}"#;
    let mut out = ParsedFeed::default();
    let mut load = |_: &str| -> Result<Vec<u8>, String> { Err("No such file".into()) };
    misp::read_feed_dir(manifest, "manifest.json", &mut load, &o, &mut out).unwrap();
    assert_eq!(out.rejected.len(), 2);
    assert!(
        out.rejected
            .iter()
            .any(|r| r.reason.contains("not an event uuid"))
    );
    assert!(
        out.rejected
            .iter()
            .any(|r| r.file == "0000000a-0000-4000-8000-000000000000.json"
                && r.reason.contains("No such file"))
    );
    let mut out = ParsedFeed::default();
    assert!(misp::read_feed_dir(b"[1,2]", "manifest.json", &mut load, &o, &mut out).is_err());
    assert!(misp::read_feed_dir(b"{", "manifest.json", &mut load, &o, &mut out).is_err());
}

// ------------------------------------------------------------ never panic

const PATTERN_TOKENS: &[&str] = &[
    "[",
    "]",
    "(",
    ")",
    "'",
    "'x'",
    "'192.0.2.1'",
    "'a\\'b'",
    "ipv4-addr:value",
    "domain-name:value",
    "file:hashes.'SHA-256'",
    "network-traffic:dst_ref.value",
    "x:y[*].z",
    "x:y[0]",
    "=",
    "!=",
    "<",
    ">=",
    "AND",
    "OR",
    "NOT",
    "IN",
    "LIKE",
    "MATCHES",
    "ISSUBSET",
    "ISSUPERSET",
    "EXISTS",
    "FOLLOWEDBY",
    "WITHIN",
    "5",
    "-1.5",
    "SECONDS",
    "REPEATS",
    "TIMES",
    "START",
    "STOP",
    "t'2024-01-01T00:00:00Z'",
    "b'AA=='",
    "h'ff'",
    "true",
    ",",
    ":",
    ".",
    "*",
    "\\",
    "é",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn pattern_parser_never_panics(s in "\\PC{0,120}") {
        let _ = stix_pattern::parse(&s);
    }

    #[test]
    fn pattern_parser_never_panics_on_token_soup(
        toks in prop::collection::vec(prop::sample::select(PATTERN_TOKENS), 0..40)
    ) {
        let p = toks.join(" ");
        if let Ok(parsed) = stix_pattern::parse(&p) {
            // Whatever parses can be walked.
            let _ = parsed.comparisons();
        }
        let obj = serde_json::json!({"type": "indicator", "id": "indicator--p", "pattern": p});
        let mut out = ParsedFeed::default();
        prop_assert!(stix::read(obj.to_string().as_bytes(), "p.json", &opts(), &mut out).is_ok());
    }

    #[test]
    fn readers_never_panic_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let o = opts();
        let mut out = ParsedFeed::default();
        let _ = stix::read(&bytes, "f", &o, &mut out);
        let _ = misp::read_event_file(&bytes, "f", &o, &mut out);
        let mut load = |_: &str| Ok(bytes.clone());
        let _ = misp::read_feed_dir(&bytes, "m", &mut load, &o, &mut out);
        let _ = stix::looks_like(&String::from_utf8_lossy(&bytes));
        let _ = misp::looks_like(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn readers_never_panic_on_json_like_text(
        parts in prop::collection::vec(prop::sample::select(&[
            "{", "}", "[", "]", ",", ":", "\"type\"", "\"bundle\"", "\"indicator\"", "\"objects\"",
            "\"pattern\"", "\"[ipv4-addr:value = '1.2.3.4']\"", "\"Event\"", "\"Attribute\"",
            "\"Object\"", "\"value\"", "\"ip-dst\"", "\"domain|ip\"", "\"a|b\"", "null", "true", "1",
            "\"Tag\"", "\"name\"", "\"tlp:red\"", "\"first_seen\"", "\"x\"", "\"id\"", "\n",
        ][..]), 0..60)
    ) {
        let text = parts.concat();
        let o = opts();
        let mut out = ParsedFeed::default();
        let _ = stix::read(text.as_bytes(), "f", &o, &mut out);
        let _ = misp::read_event_file(text.as_bytes(), "f", &o, &mut out);
        let _ = readers::read_feed(text.as_bytes(), "f", None, &o);
    }
}
