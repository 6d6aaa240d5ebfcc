//! MISP sources against local HTTP servers on 127.0.0.1:
//! - a static feed in MISP's own layout (`manifest.json`, `hashes.csv`,
//!   `<uuid>.json`) with a real CIRCL OSINT event, updated with a second
//!   event, then unchanged (304), then with a missing event file;
//! - the REST API (`/events/restSearch` with `last`, then `timestamp`),
//!   from a stand-in that answers with MISP's response shape around the
//!   same events and checks the API key.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::{Resp, Server, no_env, sub};
use orbwatch_store::Store;
use orbwatch_subscribe::{Credential, HeaderSpec, SubscriptionSpec, UpdateOutcome, update};
use serde_json::{Value, json};

const CIRCL: &str = "57c4445b-c548-4654-af0b-4be3950d210f";
/// The served files: path → (body, ETag).
type Files = Arc<Mutex<HashMap<String, (Vec<u8>, String)>>>;

const ISAC: &str = "5f3c9a10-1111-4c2d-9e8f-0a1b2c3d4e01";

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn event(uuid: &str) -> Vec<u8> {
    let p = if uuid == CIRCL {
        repo(&format!("tests/data/feeds-misp-circl/{uuid}.json"))
    } else {
        repo(&format!("tests/data/feeds-stix-misp/misp-feed/{uuid}.json"))
    };
    std::fs::read(p).unwrap()
}

/// A manifest entry as MISP's feed generator writes it: the event's
/// summary fields.
fn manifest(uuids: &[&str]) -> Vec<u8> {
    let mut m = serde_json::Map::new();
    for u in uuids {
        let ev: Value = serde_json::from_slice(&event(u)).unwrap();
        let e = &ev["Event"];
        m.insert(
            u.to_string(),
            json!({
                "Orgc": e["Orgc"], "Tag": e["Tag"], "info": e["info"], "date": e["date"],
                "analysis": e["analysis"], "threat_level_id": e["threat_level_id"],
                "timestamp": e["timestamp"]
            }),
        );
    }
    serde_json::to_vec_pretty(&Value::Object(m)).unwrap()
}

/// hashes.csv: md5 of each attribute value, event uuid.
fn hashes(uuids: &[&str]) -> Vec<u8> {
    let mut out = String::new();
    for u in uuids {
        let ev: Value = serde_json::from_slice(&event(u)).unwrap();
        for a in ev["Event"]["Attribute"].as_array().into_iter().flatten() {
            if let Some(v) = a["value"].as_str() {
                out.push_str(&format!("{},{u}\n", md5_hex(v.as_bytes())));
            }
        }
    }
    out.into_bytes()
}

/// A small MD5 (RFC 1321) for hashes.csv, to keep the test free of
/// another crate.
fn md5_hex(input: &[u8]) -> String {
    let s: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    let k: Vec<u32> = (0..64)
        .map(|i| ((i as f64 + 1.0).sin().abs() * 4294967296.0) as u32)
        .collect();
    let (mut a0, mut b0, mut c0, mut d0) =
        (0x67452301u32, 0xefcdab89u32, 0x98badcfeu32, 0x10325476u32);
    let mut msg = input.to_vec();
    let bit_len = (input.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_le_bytes());
    for chunk in msg.chunks(64) {
        let m: Vec<u32> = chunk
            .chunks(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f2 = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f2.rotate_left(s[i]));
        }
        a0 = a0.wrapping_add(a);
        b0 = b0.wrapping_add(b);
        c0 = c0.wrapping_add(c);
        d0 = d0.wrapping_add(d);
    }
    [a0, b0, c0, d0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn quick_spec() -> SubscriptionSpec {
    SubscriptionSpec {
        retries: 0,
        retry_wait_ms: 10,
        timeout_secs: 10,
        ..Default::default()
    }
}

#[test]
fn md5_matches_rfc_1321() {
    assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
}

#[test]
fn misp_feed_layout_loads_and_updates() {
    // The feed's files, by path; the test changes them between updates.
    let files: Files = Arc::new(Mutex::new(HashMap::new()));
    let publish = |uuids: &[&str], tag: &str| {
        let mut f = files.lock().unwrap();
        f.clear();
        f.insert(
            "/feed/manifest.json".into(),
            (manifest(uuids), tag.to_string()),
        );
        f.insert("/feed/hashes.csv".into(), (hashes(uuids), tag.to_string()));
        for u in uuids {
            f.insert(format!("/feed/{u}.json"), (event(u), tag.to_string()));
        }
    };
    publish(&[CIRCL], "\"m1\"");
    let served = files.clone();
    let server = Server::http(move |req| {
        let f = served.lock().unwrap();
        match f.get(req.path()) {
            Some((_, etag)) if req.header("if-none-match") == Some(etag.as_str()) => {
                Resp::status(304)
            }
            Some((body, etag)) => Resp::ok(body.clone()).with_header("ETag", etag),
            None => Resp::status(404),
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    let source = format!("misp-feed+{}", server.url("http", "/feed/manifest.json"));
    sub(&mut store, "circl", &source, &quick_spec());

    // Version 1: the CIRCL event.
    let out = update(&mut store, "circl", &no_env).unwrap();
    let UpdateOutcome::Updated {
        report, requests, ..
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(requests, 2, "manifest + one event");
    assert_eq!(report.version, 1);
    let v1 = report.loaded;
    assert_eq!(v1, 3, "{:?}", report.counts);
    assert_eq!(
        report.counts["hash"], 3,
        "md5, sha1, sha256 of the Xorist sample"
    );
    let hashes_v1 = store
        .indicators(Some("circl"))
        .unwrap()
        .into_iter()
        .filter(|s| s.indicator.value.kind().as_str() == "hash")
        .map(|s| s.indicator.value.to_string())
        .collect::<Vec<_>>();
    assert!(
        hashes_v1.contains(
            &"b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68".to_string()
        ),
        "{hashes_v1:?}"
    );

    // Version 2: a second event is published.
    publish(&[CIRCL, ISAC], "\"m2\"");
    let out = update(&mut store, "circl", &no_env).unwrap();
    let UpdateOutcome::Updated {
        report, requests, ..
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(requests, 3);
    assert_eq!(report.version, 2);
    assert_eq!(
        report.added, 2,
        "two scanner addresses: {:?}",
        report.counts
    );
    assert_eq!(report.removed, 0);
    assert_eq!(report.unchanged, v1);

    // Unchanged: one 304 on the manifest, no event fetched.
    let before = server.requests().len();
    let out = update(&mut store, "circl", &no_env).unwrap();
    assert!(
        matches!(
            out,
            UpdateOutcome::Unchanged {
                version: Some(2),
                ..
            }
        ),
        "{out:?}"
    );
    assert_eq!(server.requests().len(), before + 1);

    // An event file that cannot be fetched fails the update; version 2 stays.
    publish(&[CIRCL, ISAC], "\"m3\"");
    files.lock().unwrap().remove(&format!("/feed/{ISAC}.json"));
    let out = update(&mut store, "circl", &no_env).unwrap();
    let UpdateOutcome::Failed {
        error,
        kept_version,
        ..
    } = out
    else {
        panic!("{out:?}")
    };
    assert!(
        error.contains("HTTP 404") && error.contains(ISAC),
        "{error}"
    );
    assert_eq!(kept_version, Some(2));
    assert_eq!(store.feed_versions("circl").unwrap().len(), 2);
}

#[test]
fn misp_rest_search_uses_last_then_timestamp() {
    // The stand-in answers restSearch as MISP does ({"response": [...]})
    // with events chosen by the filter, and refuses a wrong key.
    let server = Server::http(|req| {
        if req.path() != "/events/restSearch" || req.method != "POST" {
            return Resp::status(404);
        }
        if req.header("authorization") != Some("k3y-ab12") {
            return Resp::ok(r#"{"name":"Authentication failed.","message":"Authentication failed.","url":"/events/restSearch"}"#)
                .with_header("Content-Type", "application/json");
        }
        let q: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let wanted: Vec<&str> = match q.get("timestamp").and_then(Value::as_i64) {
            None => vec![CIRCL],
            Some(t) if t <= 1704758400 => vec![ISAC],
            Some(_) => vec![],
        };
        let events: Vec<Value> = wanted
            .iter()
            .map(|u| serde_json::from_slice(&event(u)).unwrap())
            .collect();
        Resp::ok(json!({"response": events}).to_string())
            .with_header("Content-Type", "application/json")
    });
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    let mut spec = quick_spec();
    spec.headers = vec![HeaderSpec::authorization(
        &Credential::Env("MISP_KEY".into()),
        false,
    )];
    spec.misp_last = Some("90d".into());
    sub(
        &mut store,
        "misp",
        &format!("misp+{}", server.url("http", "")),
        &spec,
    );
    let env = |k: &str| (k == "MISP_KEY").then(|| "k3y-ab12".to_string());

    let out = update(&mut store, "misp", &env).unwrap();
    let UpdateOutcome::Updated { report, detail, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(report.version, 1);
    assert_eq!(report.counts["hash"], 3);
    assert!(
        detail.starts_with("1 event(s) changed since the last 90d"),
        "{detail}"
    );
    let reqs = server.requests();
    let body: Value = serde_json::from_slice(&reqs[0].body).unwrap();
    assert_eq!(body["last"], "90d");
    assert_eq!(body["returnFormat"], "json");

    // Next search starts after the newest event timestamp (1472541011).
    let out = update(&mut store, "misp", &env).unwrap();
    let UpdateOutcome::Updated { report, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(report.version, 2);
    assert_eq!(
        report.removed, 0,
        "incremental: the first event's indicators stay"
    );
    let body: Value = serde_json::from_slice(&server.requests()[1].body).unwrap();
    assert_eq!(body["timestamp"], 1472541012);
    assert!(body.get("last").is_none());

    // Then nothing newer than 1704758400.
    let out = update(&mut store, "misp", &env).unwrap();
    assert!(
        matches!(
            out,
            UpdateOutcome::Unchanged {
                version: Some(2),
                ..
            }
        ),
        "{out:?}"
    );
    let body: Value = serde_json::from_slice(&server.requests()[2].body).unwrap();
    assert_eq!(body["timestamp"], 1704758401);

    // A wrong key: MISP's own message, version kept.
    let out = update(&mut store, "misp", &|k: &str| {
        (k == "MISP_KEY").then(|| "nope".into())
    })
    .unwrap();
    let UpdateOutcome::Failed {
        error,
        kept_version,
        ..
    } = out
    else {
        panic!("{out:?}")
    };
    assert!(error.contains("Authentication failed"), "{error}");
    assert_eq!(kept_version, Some(2));
}
