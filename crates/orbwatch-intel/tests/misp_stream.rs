//! The streaming MISP reader (`misp::read_event_stream`, used by
//! `feed add` so that a million-attribute event is not held as one JSON
//! tree) gives exactly what the whole reader gives: the same indicators
//! (every field), the same rejected entries (line and reason) and the
//! same skipped ones. Checked on the MISP files in `tests/data` (CIRCL's
//! OSINT feed event and the hand-written fixtures) and on generated
//! documents in every shape MISP writes, with the event's tags after its
//! attributes, threat-actor attributes, deleted objects, malformed
//! attributes, objects and events, and pretty or compact layout.

use std::path::PathBuf;

use orbwatch_intel::readers::{self, misp};
use orbwatch_intel::{FeedError, ParsedFeed, ReadOptions};
use proptest::prelude::*;
use serde_json::{Value, json};

fn opts() -> ReadOptions {
    let mut o = ReadOptions::new("test");
    o.now = "2026-01-01T00:00:00Z".parse().unwrap();
    o
}

/// What must agree: indicators whole, rejections by line and reason,
/// skips by line and reason. The whole reader reports the attributes it
/// cannot parse before it reads the others, and an event's own attributes
/// before those of its objects; the stream hands everything on in the
/// order of the file. So all three are compared as sorted lists (MISP
/// writes `Attribute` before `Object`, where both orders agree).
type Outcome = (Vec<String>, Vec<(u64, String)>, Vec<(u64, String)>);

fn outcome(p: &ParsedFeed) -> Outcome {
    let mut rejected: Vec<(u64, String)> = p
        .rejected
        .iter()
        .map(|r| (r.line, r.reason.clone()))
        .collect();
    rejected.sort();
    let mut skipped: Vec<(u64, String)> = p
        .skipped
        .iter()
        .map(|s| (s.line, s.reason.clone()))
        .collect();
    skipped.sort();
    let mut indicators: Vec<String> = p
        .indicators
        .iter()
        .map(|i| serde_json::to_string(i).unwrap())
        .collect();
    indicators.sort();
    (indicators, rejected, skipped)
}

fn whole(bytes: &[u8]) -> Result<Outcome, String> {
    let mut out = ParsedFeed::default();
    misp::read_event_file(bytes, "ev.json", &opts(), &mut out).map_err(|e| e.to_string())?;
    readers::finalize(&mut out, &opts());
    Ok(outcome(&out))
}

/// `None` when the stream found no event (the caller reads whole).
fn streamed(bytes: &[u8]) -> Result<Option<Outcome>, String> {
    let mut got = ParsedFeed::default();
    let mut open = || Ok::<_, std::io::Error>(bytes);
    let found = misp::read_event_stream(&mut open, "ev.json", &opts(), &mut |p| {
        got.indicators.append(&mut p.indicators);
        got.rejected.append(&mut p.rejected);
        got.skipped.append(&mut p.skipped);
    })
    .map_err(|e: FeedError| e.to_string())?;
    Ok(found.then(|| outcome(&got)))
}

fn assert_same(bytes: &[u8], what: &str) {
    let w = whole(bytes);
    let s = streamed(bytes);
    match (&w, &s) {
        (Ok(w), Ok(Some(s))) => {
            assert_eq!(s.0, w.0, "{what}: indicators");
            assert_eq!(s.1, w.1, "{what}: rejected");
            assert_eq!(s.2, w.2, "{what}: skipped");
        }
        // No event found: the caller reads whole; nothing was handed on.
        (_, Ok(None)) => {}
        (Err(_), Err(_)) => {}
        _ => panic!("{what}: whole {w:?}, streamed {s:?}"),
    }
}

fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(rel)
}

#[test]
fn misp_stream_equals_whole_on_real_and_fixture_files() {
    let mut files = vec![
        data("feeds-misp-circl/57c4445b-c548-4654-af0b-4be3950d210f.json"),
        data("feeds-stix-misp/misp-event.json"),
    ];
    for e in std::fs::read_dir(data("feeds-stix-misp/misp-feed")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") && !p.ends_with("manifest.json") {
            files.push(p);
        }
    }
    let (mut indicators, mut broken) = (0, 0);
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let Ok(w) = whole(&bytes) else {
            // The fixture cut in the middle: an error both ways.
            assert!(streamed(&bytes).is_err(), "{}", f.display());
            broken += 1;
            continue;
        };
        assert!(!w.0.is_empty(), "{} has indicators", f.display());
        indicators += w.0.len();
        assert_eq!(streamed(&bytes).unwrap(), Some(w), "{}", f.display());
        // Compact, and with a byte order mark.
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        let compact = serde_json::to_vec(&v).unwrap();
        assert_same(&compact, &format!("{} compact", f.display()));
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(&bytes);
        assert_same(&bom, &format!("{} with BOM", f.display()));
    }
    assert_eq!((files.len(), broken), (5, 1));
    assert_eq!(indicators, 24);
}

/// The manifest of a MISP feed has no event: the stream says so, and the
/// whole reader explains it.
#[test]
fn a_manifest_is_left_to_the_whole_reader() {
    let bytes = std::fs::read(data("feeds-stix-misp/misp-feed/manifest.json")).unwrap();
    assert_eq!(streamed(&bytes).unwrap(), None);
    assert!(whole(&bytes).unwrap_err().contains("manifest"));
}

/// Broken JSON is an error naming the file, before anything is handed on.
#[test]
fn broken_json_is_an_error_before_anything_is_handed_on() {
    let doc = br#"{"Event": {"info": "x", "Attribute": [{"type": "ip-dst", "value": "198.51.100.1", "uuid": "a"}, {"type": "#;
    let mut handed = 0;
    let mut open = || Ok::<_, std::io::Error>(&doc[..]);
    let e = misp::read_event_stream(&mut open, "cut.json", &opts(), &mut |p| {
        handed += p.indicators.len();
        p.indicators.clear();
    })
    .unwrap_err();
    assert!(e.to_string().contains("cut.json"), "{e}");
    assert!(e.to_string().contains("invalid JSON"), "{e}");
    assert_eq!(handed, 0);
}

fn attribute(i: usize, kind: u8, deleted: bool, bad: bool) -> Value {
    let uuid = format!("a0000000-0000-4000-8000-{i:012}");
    if bad {
        // Not an attribute: a number, or a type that is not a string.
        return if i.is_multiple_of(2) {
            json!(i)
        } else {
            json!({"type": 5, "value": "x", "uuid": uuid})
        };
    }
    let (t, v) = match kind % 7 {
        0 => ("ip-dst", format!("198.51.100.{}", i % 250)),
        1 => ("domain", format!("relay{i}.example")),
        2 => ("url", format!("relay{i}.example/gate.php")),
        3 => ("threat-actor", format!("Actor {}", i % 3)),
        4 => ("comment", "context".to_string()),
        5 => ("ip-src|port", format!("203.0.113.{}|8443", i % 250)),
        _ => ("sha256", format!("{:064x}", i)),
    };
    let mut a = json!({"type": t, "value": v, "uuid": uuid, "to_ids": !i.is_multiple_of(3),
        "timestamp": format!("{}", 1_700_000_000 + i), "deleted": deleted});
    if i.is_multiple_of(4) {
        a["Tag"] = json!([{"name": "tlp:red"}]);
    }
    if i.is_multiple_of(5) {
        a["first_seen"] = json!("2024-01-10T00:00:00Z");
        a["last_seen"] = json!(if i.is_multiple_of(10) {
            "2023-01-01T00:00:00Z"
        } else {
            "2024-02-01T00:00:00Z"
        });
    }
    a
}

prop_compose! {
    fn event()(
        attrs in proptest::collection::vec((0u8..7, any::<bool>(), proptest::bool::weighted(0.1)), 0..12),
        objects in proptest::collection::vec(
            (proptest::collection::vec((0u8..7, any::<bool>(), proptest::bool::weighted(0.1)), 0..5),
             proptest::bool::weighted(0.2), proptest::bool::weighted(0.1)), 0..3),
        tags_last in any::<bool>(),
        objects_first in proptest::bool::weighted(0.2),
        bad_head in proptest::bool::weighted(0.1),
        bad_list in proptest::bool::weighted(0.05),
        seed in 0usize..1000,
    ) -> Value {
        let mut n = seed * 100;
        let mut next = || { n += 1; n };
        let attributes: Vec<Value> = attrs.iter().map(|(k, d, b)| attribute(next(), *k, *d, *b)).collect();
        let objects: Vec<Value> = objects.iter().map(|(list, deleted, bad)| {
            if *bad {
                return json!("not an object");
            }
            let attrs: Vec<Value> = list.iter().map(|(k, d, b)| attribute(next(), *k, *d, *b)).collect();
            json!({"name": "ip-port", "deleted": deleted, "comment": "an object",
                   "first_seen": "2024-01-05T00:00:00Z",
                   "uuid": format!("b0000000-0000-4000-8000-{:012}", next()), "Attribute": attrs})
        }).collect();
        let tag = json!([{"name": "tlp:amber"}, {"name": "misp-galaxy:threat-actor=\"APT31\""}]);
        let mut m = serde_json::Map::new();
        m.insert("uuid".into(), json!(format!("e0000000-0000-4000-8000-{seed:012}")));
        m.insert("info".into(), if bad_head { json!(12) } else { json!("Relay network") });
        m.insert("date".into(), json!("2024-02-19"));
        m.insert("Orgc".into(), json!({"name": "CERT-EXAMPLE"}));
        if !tags_last {
            m.insert("Tag".into(), tag.clone());
        }
        let attributes = if bad_list { json!({"not": "a list"}) } else { Value::Array(attributes) };
        if objects_first {
            m.insert("Object".into(), Value::Array(objects));
            m.insert("Attribute".into(), attributes);
        } else {
            m.insert("Attribute".into(), attributes);
            m.insert("Object".into(), Value::Array(objects));
        }
        if tags_last {
            m.insert("Tag".into(), tag);
        }
        Value::Object(m)
    }
}

/// Give the uuids of the `k`-th event their own second digit, so that no
/// two events share one (the whole reader gives the line of a uuid's first
/// occurrence in the file, the stream the line of the attribute itself).
fn own_uuids(v: &mut Value, k: usize) {
    match v {
        Value::Object(m) => {
            for (key, val) in m.iter_mut() {
                match val {
                    Value::String(s) if key == "uuid" && s.len() > 2 => {
                        let digit = char::from_digit(k as u32 % 10, 10).unwrap_or('0');
                        s.replace_range(1..2, &digit.to_string());
                    }
                    other => own_uuids(other, k),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| own_uuids(i, k)),
        _ => {}
    }
}

fn wrap(mut events: Vec<Value>, shape: u8) -> Value {
    for (k, e) in events.iter_mut().enumerate() {
        own_uuids(e, k);
    }
    match shape % 4 {
        0 => json!({"Event": events.into_iter().next().unwrap_or(json!({}))}),
        1 => Value::Array(events.into_iter().map(|e| json!({"Event": e})).collect()),
        2 => {
            json!({"response": events.into_iter().map(|e| json!({"Event": e})).collect::<Vec<_>>()})
        }
        _ => events.into_iter().next().unwrap_or(json!({})),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]
    #[test]
    fn misp_stream_equals_whole(
        events in proptest::collection::vec(event(), 1..3),
        shape in 0u8..4,
        pretty in any::<bool>(),
    ) {
        let doc = wrap(events, shape);
        let bytes = if pretty {
            serde_json::to_vec_pretty(&doc).unwrap()
        } else {
            serde_json::to_vec(&doc).unwrap()
        };
        assert_same(&bytes, &String::from_utf8_lossy(&bytes));
    }
}

/// Inputs the `feed_misp` fuzz target found where the two readers
/// disagreed (a repeated `Attribute` key, bytes that are not UTF-8 in an
/// event field). Kept so the fix stays fixed without the fuzzer.
#[test]
fn fuzz_found_disagreements_stay_fixed() {
    let dir = data("misp-fuzz-regressions");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let bytes = std::fs::read(&p).unwrap();
        assert_same(&bytes, &p.display().to_string());
        n += 1;
    }
    assert_eq!(n, 2, "two inputs besides ATTRIBUTION.md");
}

/// The events of a MISP feed folder go through the same stream: CIRCL's
/// event read from a folder gives what the single-file stream and the
/// whole reader give on it, and an event whose head (tags, creator) is
/// only in the manifest gets it, with a malformed attribute rejected at
/// its line while the others load.
#[test]
fn feed_folder_events_are_streamed() {
    let circl_uuid = "57c4445b-c548-4654-af0b-4be3950d210f";
    let circl = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/feeds-misp-circl")
            .join(format!("{circl_uuid}.json")),
    )
    .unwrap();
    let bare_uuid = "0000000b-0000-4000-8000-000000000001";
    let mut bare = String::from(
        "{\"Event\": {\"uuid\": \"e0000000-0000-4000-8000-000000000009\",\n\"Attribute\": [\n",
    );
    for i in 0..50u32 {
        bare.push_str(&format!(
            "{{\"type\": \"ip-dst\", \"value\": \"198.51.100.{i}\", \"uuid\": \"a0000000-0000-4000-8000-{i:012}\", \"to_ids\": true}},\n"
        ));
    }
    bare.push_str("{\"type\": [], \"value\": \"x\", \"uuid\": \"bad00000-0000-4000-8000-000000000000\"}\n]}}\n");
    let manifest = format!(
        r#"{{"{circl_uuid}": {{"info": "from the manifest"}},
            "{bare_uuid}": {{"info": "Relay sweep", "Orgc": {{"name": "Example ISAC"}},
                             "Tag": [{{"name": "tlp:amber"}}], "date": "2024-02-02"}}}}"#
    );
    let mut load = |uuid: &str| -> Result<Vec<u8>, String> {
        match uuid {
            u if u == circl_uuid => Ok(circl.clone()),
            u if u == bare_uuid => Ok(bare.clone().into_bytes()),
            _ => Err("no such event".into()),
        }
    };
    let mut out = ParsedFeed::default();
    misp::read_feed_dir(
        manifest.as_bytes(),
        "manifest.json",
        &mut load,
        &opts(),
        &mut out,
    )
    .unwrap();
    readers::finalize(&mut out, &opts());
    let circl_file = format!("{circl_uuid}.json");
    let from_folder = ParsedFeed {
        indicators: out
            .indicators
            .iter()
            .filter(|i| i.provenance.file == circl_file)
            .cloned()
            .map(|mut i| {
                i.provenance.file = "ev.json".into();
                i
            })
            .collect(),
        rejected: out
            .rejected
            .iter()
            .filter(|r| r.file == circl_file)
            .cloned()
            .collect(),
        skipped: out
            .skipped
            .iter()
            .filter(|s| s.file == circl_file)
            .cloned()
            .collect(),
        ..Default::default()
    };
    assert!(!from_folder.indicators.is_empty());
    assert_eq!(outcome(&from_folder), whole(&circl).unwrap());

    let bare_file = format!("{bare_uuid}.json");
    let relays: Vec<_> = out
        .indicators
        .iter()
        .filter(|i| i.provenance.file == bare_file)
        .collect();
    assert_eq!(relays.len(), 50);
    for i in &relays {
        assert_eq!(i.tags.tlp.as_deref(), Some("amber"));
        assert!(i.tags.campaigns.contains(&"Relay sweep".to_string()));
        assert!(i.tags.other.contains(&"source=Example ISAC".to_string()));
    }
    let bad: Vec<_> = out
        .rejected
        .iter()
        .filter(|r| r.file == bare_file)
        .collect();
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert_eq!(bad[0].line, 53);
    assert!(
        bad[0].reason.contains("malformed MISP attribute"),
        "{}",
        bad[0].reason
    );
}
