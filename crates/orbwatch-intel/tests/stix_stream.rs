//! The streaming STIX reader (`stix::read_bundle_stream`, used by `feed
//! add`, `hunt --feed` and `read_feed`) against the whole reader
//! (`stix::read_whole`, one `serde_json::Value` for the document): the
//! same indicators with the same lines and metadata, the same rejected and
//! skipped entries in the same order, on every STIX file of tests/data and
//! of `../shared/corpus/feeds` (the ArcaneDoor bundle, skipped with a
//! message when the corpus is not there), and on variants of each bundle
//! that move context after the indicators, sort keys so that `objects`
//! comes before `type`, and add malformed, duplicate, superseded and
//! nested objects.

use std::path::PathBuf;

use orbwatch_intel::readers::{self, stix};
use orbwatch_intel::{ParsedFeed, ReadOptions};
use serde_json::{Value, json};

fn opts() -> ReadOptions {
    let mut o = ReadOptions::new("test");
    o.now = "2026-01-01T00:00:00Z".parse().unwrap();
    o
}

fn tests_data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/feeds-stix-misp")
        .join(name)
}

/// Every STIX file the tests and the corpus hold: (name, bytes).
fn stix_files() -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for name in [
        "stix21-bundle.json",
        "stix20-lines.jsonl",
        "stix21-attack-lines.jsonl",
    ] {
        files.push((name.to_string(), std::fs::read(tests_data(name)).unwrap()));
    }
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
        "../../../shared/corpus/feeds/arcanedoor-new-espionage-focused-campaign-found-targeting-perimeter-network-devices.json",
    );
    match std::fs::read(&corpus) {
        Ok(b) => files.push(("arcanedoor.json".to_string(), b)),
        Err(_) => println!("skipped: ../shared/corpus not found"),
    }
    files
}

/// The stream's answer: `None` when it leaves the file to the whole reader.
fn streamed(bytes: &[u8], name: &str) -> Result<Option<ParsedFeed>, String> {
    let mut out = ParsedFeed::default();
    let mut open = || Ok::<_, std::io::Error>(bytes);
    let found = stix::read_bundle_stream(&mut open, name, &opts(), &mut |p| {
        out.indicators.append(&mut p.indicators);
        out.rejected.append(&mut p.rejected);
        out.skipped.append(&mut p.skipped);
    })
    .map_err(|e| e.to_string())?;
    Ok(found.then_some(out))
}

/// The whole reader's answer, with the window policy the stream applies.
fn whole(bytes: &[u8], name: &str) -> Result<ParsedFeed, String> {
    let mut out = ParsedFeed::default();
    stix::read_whole(bytes, name, &opts(), &mut out).map_err(|e| e.to_string())?;
    readers::finalize(&mut out, &opts());
    Ok(out)
}

/// Compare two answers entry by entry, in order, with a readable message.
fn assert_same(what: &str, got: &ParsedFeed, want: &ParsedFeed) {
    let show = |p: &ParsedFeed| {
        let mut v: Vec<String> = p.indicators.iter().map(|i| format!("{i:?}")).collect();
        v.extend(p.rejected.iter().map(|r| format!("rejected {r:?}")));
        v.extend(p.skipped.iter().map(|s| format!("skipped {s:?}")));
        v
    };
    let (g, w) = (show(got), show(want));
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        assert_eq!(a, b, "{what}: entry {i} differs");
    }
    assert_eq!(
        (got.indicators.len(), got.rejected.len(), got.skipped.len()),
        (
            want.indicators.len(),
            want.rejected.len(),
            want.skipped.len()
        ),
        "{what}: counts differ"
    );
}

/// Check one input: a bundle must be streamed and agree with the whole
/// reader; anything else must be left to it (and then nothing handed on).
fn check(what: &str, bytes: &[u8], expect_stream: bool) -> Option<ParsedFeed> {
    let s = streamed(bytes, "f.json");
    let w = whole(bytes, "f.json");
    match (s, w) {
        (Ok(Some(s)), Ok(w)) => {
            assert!(expect_stream, "{what}: streamed, but should be left whole");
            assert_same(what, &s, &w);
            Some(s)
        }
        (Ok(None), _) => {
            assert!(!expect_stream, "{what}: left to the whole reader");
            None
        }
        (s, w) => panic!(
            "{what}: the stream gave {:?}, the whole reader {:?}",
            s.map(|p| p.map(|p| p.indicators.len())),
            w.map(|p| p.indicators.len())
        ),
    }
}

/// Variants of a bundle's objects that a stream must get right.
fn variants(objects: &[Value]) -> Vec<(&'static str, Vec<Value>)> {
    let mut reversed = objects.to_vec();
    reversed.reverse();
    // Context first, indicators last, then the other way round.
    let mut ctx_last: Vec<Value> = objects
        .iter()
        .filter(|o| o["type"] == "indicator")
        .cloned()
        .collect();
    ctx_last.extend(objects.iter().filter(|o| o["type"] != "indicator").cloned());
    let mut damaged = Vec::new();
    let first_indicator = objects.iter().find(|o| o["type"] == "indicator").cloned();
    for (i, o) in objects.iter().enumerate() {
        damaged.push(o.clone());
        if i == 1 {
            // A property of the wrong type, a bare number, no type.
            damaged.push(json!({"type": "indicator", "id": "indicator--00000000-0000-4000-8000-000000000001", "labels": 5}));
            damaged.push(json!(42));
            damaged.push(json!({"id": "identity--00000000-0000-4000-8000-000000000002"}));
            // A nested bundle is unwrapped once; deeper ones are skipped.
            damaged.push(json!({"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000003", "objects": [
                {"type": "indicator", "id": "indicator--00000000-0000-4000-8000-000000000004",
                 "pattern": "[ipv4-addr:value = '198.51.100.77']", "pattern_type": "stix",
                 "valid_from": "2024-01-01T00:00:00Z"},
                {"type": "bundle", "objects": []}
            ]}));
            damaged.push(json!({"type": "x-custom-thing", "id": "x-custom-thing--00000000-0000-4000-8000-000000000005"}));
            damaged.push(json!({"type": "observed-data", "id": "observed-data--00000000-0000-4000-8000-000000000006"}));
        }
    }
    if let Some(ind) = first_indicator {
        // The same version again (a duplicate), an older one after it, a
        // newer one last (which supersedes the first), a revoked copy.
        damaged.push(ind.clone());
        let mut older = ind.clone();
        older["modified"] = json!("2000-01-01T00:00:00Z");
        damaged.push(older);
        let mut upper = ind.clone();
        upper["id"] = json!(ind["id"].as_str().unwrap().to_uppercase());
        damaged.push(upper);
        let mut newer = ind.clone();
        newer["modified"] = json!("2099-01-01T00:00:00Z");
        newer["pattern"] = json!("[domain-name:value = 'newer.example']");
        damaged.push(newer);
        let mut revoked = ind;
        revoked["revoked"] = json!(true);
        damaged.push(revoked);
    }
    vec![
        ("as is", objects.to_vec()),
        ("reversed", reversed),
        ("indicators first", ctx_last),
        ("damaged", damaged),
    ]
}

/// Keys sorted (`id`, `objects`, `spec_version`, `type`), as Python's
/// `json.dump(sort_keys=True)` writes a bundle.
fn sorted_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = serde_json::Map::new();
            for k in keys {
                out.insert(k.clone(), sorted_keys(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted_keys).collect()),
        other => other.clone(),
    }
}

#[test]
fn stix_stream_equals_whole() {
    let (mut bundles, mut line_files) = (0, 0);
    for (name, bytes) in stix_files() {
        let got = check(&name, &bytes, true).unwrap();
        if name.ends_with(".jsonl") {
            line_files += 1;
            assert!(!got.indicators.is_empty(), "{name}: no indicators");
            continue;
        }
        bundles += 1;
        assert!(!got.indicators.is_empty(), "{name}: no indicators");
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        let objects = doc["objects"].as_array().unwrap().clone();
        for (variant, objs) in variants(&objects) {
            let bundle = json!({"type": "bundle", "id": doc["id"], "objects": objs});
            let pretty = serde_json::to_vec_pretty(&bundle).unwrap();
            check(&format!("{name}, {variant}, pretty"), &pretty, true);
            let compact = serde_json::to_vec(&bundle).unwrap();
            check(&format!("{name}, {variant}, one line"), &compact, true);
            let sorted = serde_json::to_vec_pretty(&sorted_keys(&bundle)).unwrap();
            check(&format!("{name}, {variant}, keys sorted"), &sorted, true);
            let envelope = json!({"more": false, "objects": objs});
            let envelope = serde_json::to_vec_pretty(&envelope).unwrap();
            check(
                &format!("{name}, {variant}, TAXII envelope"),
                &envelope,
                true,
            );
            let array = serde_json::to_vec_pretty(&Value::Array(objs.clone())).unwrap();
            check(&format!("{name}, {variant}, array"), &array, true);
            let mut bom = b"\xef\xbb\xbf".to_vec();
            bom.extend_from_slice(&pretty);
            check(&format!("{name}, {variant}, byte order mark"), &bom, true);
            for (form, lines) in json_lines_forms(&objs) {
                check(
                    &format!("{name}, {variant}, JSON lines {form}"),
                    &lines,
                    true,
                );
            }
        }
    }
    assert!(bundles >= 1);
    assert!(line_files >= 2);
}

/// A bundle's objects written as STIX JSON lines, one object per line,
/// plainly and with what real files hold: a byte order mark, CRLF, blank
/// lines, a line that is not JSON, one that is JSON but not STIX, a line
/// holding a whole bundle, a line cut short.
fn json_lines_forms(objs: &[Value]) -> Vec<(&'static str, Vec<u8>)> {
    let line = |o: &Value| serde_json::to_string(o).unwrap();
    let plain: String = objs.iter().map(|o| line(o) + "\n").collect();
    let mut messy = b"\xef\xbb\xbf".to_vec();
    for (i, o) in objs.iter().enumerate() {
        messy.extend_from_slice(line(o).as_bytes());
        messy.extend_from_slice(b"\r\n");
        if i == 1 {
            messy.extend_from_slice(b"\n   \r\nnot json at all\n[1, 2]\n");
            messy.extend_from_slice(
                line(
                    &json!({"type": "bundle", "objects": objs.iter().take(2).collect::<Vec<_>>()}),
                )
                .as_bytes(),
            );
            messy.extend_from_slice(b"\n{\"type\": \"indicator\", \"id\": \n");
        }
    }
    vec![("plain", plain.into_bytes()), ("messy", messy)]
}

#[test]
fn what_the_stream_leaves_to_the_whole_reader() {
    let ind = r#"{"type": "indicator", "id": "indicator--00000000-0000-4000-8000-000000000001", "pattern": "[ipv4-addr:value = '198.51.100.1']", "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z"}"#;
    // A single object, a bundle with `type` twice, a bundle that is cut,
    // one followed by more text, bytes that are not UTF-8. (JSON lines
    // are streamed too: `stix_stream_equals_whole`.)
    let lines = format!("{ind}\n{ind}\n");
    let twice = format!(r#"{{"type": "bundle", "objects": [{ind}], "type": "report"}}"#);
    let cut = format!(r#"{{"type": "bundle", "objects": [{ind}, {{"type": "#);
    let trailing = format!(r#"{{"type": "bundle", "objects": [{ind}]}} x"#);
    let mut latin1 = format!(r#"{{"type": "bundle", "objects": [{ind}], "x": "#).into_bytes();
    latin1.extend_from_slice(b"\"caf\xe9\"}");
    let other_type = format!(r#"{{"objects": [{ind}], "type": "report", "id": "report--x"}}"#);
    for (what, bytes) in [
        ("a single object", ind.as_bytes()),
        ("type twice", twice.as_bytes()),
        ("cut", cut.as_bytes()),
        ("trailing text", trailing.as_bytes()),
        ("not UTF-8", &latin1[..]),
        ("a report with objects", other_type.as_bytes()),
    ] {
        assert!(
            streamed(bytes, "f.json").unwrap().is_none(),
            "{what}: should be left to the whole reader"
        );
    }
    // The bytes API answers for those as before: JSON lines are read.
    let mut out = ParsedFeed::default();
    stix::read(lines.as_bytes(), "f.jsonl", &opts(), &mut out).unwrap();
    assert_eq!(out.indicators.len(), 1);
    assert_eq!(out.skipped.len(), 1, "the second line is a duplicate");
    let mut out = ParsedFeed::default();
    let e = stix::read(cut.as_bytes(), "cut.json", &opts(), &mut out).unwrap_err();
    assert!(e.to_string().contains("cut.json"), "{e}");
}

#[test]
fn a_malformed_object_is_rejected_at_its_line_and_the_others_load() {
    let bundle = r#"{
  "type": "bundle",
  "id": "bundle--00000000-0000-4000-8000-0000000000aa",
  "objects": [
    {
      "type": "indicator",
      "id": "indicator--00000000-0000-4000-8000-000000000001",
      "pattern": "[ipv4-addr:value = '198.51.100.1']",
      "pattern_type": "stix",
      "valid_from": "2024-01-01T00:00:00Z"
    },
    {
      "type": "indicator",
      "id": "indicator--00000000-0000-4000-8000-000000000002",
      "labels": {"not": "a list"},
      "pattern": "[ipv4-addr:value = '198.51.100.2']"
    },
    {
      "type": "indicator",
      "id": "indicator--00000000-0000-4000-8000-000000000003",
      "pattern": "[ipv4-addr:value = '198.51.100.3'",
      "pattern_type": "stix",
      "valid_from": "2024-01-01T00:00:00Z"
    },
    {
      "type": "indicator",
      "id": "indicator--00000000-0000-4000-8000-000000000004",
      "pattern": "[domain-name:value = 'relay.example']",
      "pattern_type": "stix",
      "valid_from": "2024-01-01T00:00:00Z"
    }
  ]
}"#;
    let got = streamed(bundle.as_bytes(), "b.json")
        .unwrap()
        .expect("streamed");
    let values: Vec<(String, u64)> = got
        .indicators
        .iter()
        .map(|i| (i.value.to_string(), i.provenance.line))
        .collect();
    assert_eq!(
        values,
        [
            ("198.51.100.1".to_string(), 7),
            ("relay.example".to_string(), 27)
        ]
    );
    let rejected: Vec<(u64, &str)> = got
        .rejected
        .iter()
        .map(|r| (r.line, r.reason.as_str()))
        .collect();
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert_eq!(rejected[0].0, 14);
    assert!(
        rejected[0]
            .1
            .starts_with("indicator--00000000-0000-4000-8000-000000000002: malformed STIX object"),
        "{}",
        rejected[0].1
    );
    assert_eq!(rejected[1].0, 20);
    assert!(
        rejected[1].1.contains("does not parse"),
        "{}",
        rejected[1].1
    );
}

#[test]
fn ids_match_exactly_as_text() {
    // An identity written with an upper-case uuid is not the one a
    // lower-case `created_by_ref` names (STIX ids compare as strings).
    let bundle = r#"{"type": "bundle", "objects": [
      {"type": "identity", "id": "identity--AAAAAAAA-0000-4000-8000-000000000001", "name": "Upper"},
      {"type": "identity", "id": "identity--aaaaaaaa-0000-4000-8000-000000000001", "name": "Lower"},
      {"type": "indicator", "id": "indicator--00000000-0000-4000-8000-000000000001",
       "created_by_ref": "identity--AAAAAAAA-0000-4000-8000-000000000001",
       "pattern": "[ipv4-addr:value = '198.51.100.1']", "pattern_type": "stix",
       "valid_from": "2024-01-01T00:00:00Z"},
      {"type": "indicator", "id": "indicator--00000000-0000-4000-8000-000000000002",
       "created_by_ref": "identity--aaaaaaaa-0000-4000-8000-000000000001",
       "pattern": "[ipv4-addr:value = '198.51.100.2']", "pattern_type": "stix",
       "valid_from": "2024-01-01T00:00:00Z"}
    ]}"#;
    let got = check("ids", bundle.as_bytes(), true).unwrap();
    let sources: Vec<&str> = got
        .indicators
        .iter()
        .flat_map(|i| i.tags.other.iter().map(String::as_str))
        .filter(|t| t.starts_with("source="))
        .collect();
    assert_eq!(sources, ["source=Upper", "source=Lower"]);
}

#[test]
fn the_stream_refuses_a_file_that_changes_between_its_passes() {
    let good = br#"{"type": "bundle", "objects": [{"type": "indicator", "id": "indicator--00000000-0000-4000-8000-000000000001", "pattern": "[ipv4-addr:value = '198.51.100.1']", "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z"}]}"#;
    let cut = &good[..good.len() - 10];
    let mut calls = 0;
    let mut open = || {
        calls += 1;
        Ok::<_, std::io::Error>(if calls == 1 { &good[..] } else { cut })
    };
    let e = stix::read_bundle_stream(&mut open, "moving.json", &opts(), &mut |_| {})
        .expect_err("a file cut between the passes");
    let msg = e.to_string();
    assert!(
        msg.contains("moving.json") && msg.contains("changed while it was read"),
        "{msg}"
    );
}
