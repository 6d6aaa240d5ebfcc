//! `feed add` of a plain list is stored as it is read (no whole-file read,
//! no seek): it works from a FIFO, records the file's SHA-256 and counts
//! rejects and repeats as the whole-file path did.

use std::process::Command;

#[path = "support/cli.rs"]
mod cli;
use cli::{ok, run_with_db as run};

/// 20,000 addresses, 100 repeats and 3 bad lines; then a second version
/// with half of them.
#[test]
fn a_plain_list_is_stored_as_read_with_its_digest_and_counts() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("s.db");
    let list = dir.path().join("big.txt");
    let mut text = String::new();
    for i in 0..20_000u32 {
        text.push_str(&format!("{}\n", std::net::Ipv4Addr::from(0x0b00_0000 + i)));
    }
    for i in 0..100u32 {
        text.push_str(&format!("{}\n", std::net::Ipv4Addr::from(0x0b00_0000 + i)));
    }
    text.push_str("300.1.1.1\nnot-a-value!\n1.2.3\n");
    std::fs::write(&list, &text).expect("write");
    let out = ok(&run(&db, &["feed", "add", list.to_str().expect("utf-8")]));
    assert!(
        out.contains("version 1 (plain, big.txt): 20000 indicators"),
        "{out}"
    );
    assert!(out.contains("100 repeated entries stored once"), "{out}");
    assert!(out.contains("rejected: 3"), "{out}");
    assert!(out.contains("big.txt:20101:"), "{out}");
    let show = ok(&run(&db, &["feed", "show", "big"]));
    let digest = {
        use sha2::Digest;
        sha2::Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert!(show.contains(&digest), "{show}");

    let half: String = text
        .lines()
        .take(10_000)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&list, &half).expect("write");
    let out = ok(&run(&db, &["feed", "add", list.to_str().expect("utf-8")]));
    assert!(out.contains("version 2"), "{out}");
    assert!(
        out.contains("0 added, 10000 removed, 10000 unchanged"),
        "{out}"
    );
}

/// A FIFO cannot seek: the list is detected on its head and read on.
#[test]
fn a_plain_list_from_a_fifo() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("s.db");
    let fifo = dir.path().join("list.txt");
    match Command::new("mkfifo").arg(&fifo).status() {
        Ok(s) if s.success() => {}
        _ => {
            println!("skipped: mkfifo not available");
            return;
        }
    }
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(&fifo, "9.9.9.9\n8.8.8.8\n# c\n"))
    };
    let out = ok(&run(
        &db,
        &["feed", "add", fifo.to_str().expect("utf-8"), "--name", "f"],
    ));
    writer.join().expect("writer").expect("write fifo");
    assert!(
        out.contains("version 1 (plain, list.txt): 2 indicators"),
        "{out}"
    );
}

/// `feed add` of a MISP event reads it as a stream of JSON tokens, twice
/// (never as one JSON tree): 30,000 attributes whose event tags come after
/// them (as MISP writes them) all get those tags, the `threat-actor`
/// attribute at the very end attributes every indicator, a malformed
/// attribute is rejected with its line, and the store records the file's
/// SHA-256.
#[test]
fn a_misp_event_is_stored_as_read_with_tags_written_after_its_attributes() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("s.db");
    let file = dir.path().join("event.json");
    let mut text = String::from(
        "{\"Event\": {\"uuid\": \"e0000000-0000-4000-8000-000000000001\", \"info\": \"Relay network\",\n\"date\": \"2024-02-19\", \"Orgc\": {\"name\": \"CERT-EXAMPLE\"},\n\"Attribute\": [\n",
    );
    for i in 0..30_000u32 {
        text.push_str(&format!(
            "{{\"type\": \"ip-dst\", \"value\": \"{}\", \"uuid\": \"a0000000-0000-4000-8000-{i:012}\", \"to_ids\": true}},\n",
            std::net::Ipv4Addr::from(0x0b00_0000 + i)
        ));
    }
    // Line 30,004: an attribute whose type is not a string.
    text.push_str(
        "{\"type\": 5, \"value\": \"x\", \"uuid\": \"bad00000-0000-4000-8000-000000000000\"},\n",
    );
    text.push_str(
        "{\"type\": \"threat-actor\", \"value\": \"APT31\", \"uuid\": \"a1000000-0000-4000-8000-000000000000\"}\n],\n\"Tag\": [{\"name\": \"tlp:amber\"}]}}\n",
    );
    std::fs::write(&file, &text).expect("write");
    let out = ok(&run(
        &db,
        &["feed", "add", file.to_str().expect("utf-8"), "--name", "ev"],
    ));
    assert!(
        out.contains("version 1 (misp, event.json): 30000 indicators"),
        "{out}"
    );
    assert!(out.contains("rejected: 1"), "{out}");
    assert!(out.contains("event.json:30004:"), "{out}");
    let stix = ok(&run(&db, &["feed", "export", "ev", "--to", "stix"]));
    let doc: serde_json::Value = serde_json::from_str(&stix).expect("stix json");
    let objects = doc["objects"].as_array().expect("objects");
    let indicators: Vec<&serde_json::Value> = objects
        .iter()
        .filter(|o| o["type"] == "indicator")
        .collect();
    assert_eq!(indicators.len(), 30_000);
    // Every indicator carries the event's TLP, written after the attributes.
    let amber = objects
        .iter()
        .find(|o| o["type"] == "marking-definition" && o["name"] == "TLP:AMBER")
        .map(|o| o["id"].clone())
        .expect("TLP:AMBER marking");
    assert!(
        indicators.iter().all(|i| i["object_marking_refs"]
            .as_array()
            .is_some_and(|m| m.contains(&amber))),
        "an indicator without TLP:AMBER"
    );
    // … and is attributed to the actor named by the last attribute.
    assert!(stix.contains("APT31"), "the threat actor is missing");
    let show = ok(&run(&db, &["feed", "show", "ev"]));
    let digest = {
        use sha2::Digest;
        sha2::Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert!(show.contains(&digest), "{show}");
}

/// An event that gives `Attribute` twice (ambiguous JSON, found by the
/// fuzzer) is read as serde_json and Python read it: the last value wins.
/// `feed add` and `hunt --feed` both store or match the second list's
/// indicators, not nothing, and a file with bytes that are not UTF-8 is
/// refused with its name.
#[test]
fn a_misp_event_with_a_repeated_key_is_read_whole_and_bad_utf8_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("s.db");
    let file = dir.path().join("event.json");
    std::fs::write(
        &file,
        "{\"Event\": {\"uuid\": \"e0000000-0000-4000-8000-000000000002\", \"info\": \"Relays\",\n\
         \"date\": \"2024-02-19\", \"Attribute\": \"not yet\",\n\
         \"Attribute\": [{\"type\": \"ip-src\", \"value\": \"203.0.113.41\", \"uuid\": \"a0000000-0000-4000-8000-000000000041\", \"to_ids\": true}]}}\n",
    )
    .expect("write");
    let out = ok(&run(
        &db,
        &["feed", "add", file.to_str().expect("utf-8"), "--name", "ev"],
    ));
    assert!(out.contains("): 1 indicator\n"), "{out}");
    let list = ok(&run(&db, &["feed", "export", "ev", "--to", "plain"]));
    assert_eq!(list.trim(), "203.0.113.41");

    let bad = dir.path().join("bad.json");
    let mut bytes = std::fs::read(&file).expect("read");
    let at = bytes.windows(6).position(|w| w == b"Relays").expect("info");
    bytes[at] = 0xE8;
    std::fs::write(&bad, &bytes).expect("write");
    let o = run(
        &db,
        &["feed", "add", bad.to_str().expect("utf-8"), "--name", "bad"],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.json") && err.contains("UTF-8"), "{err}");
}

/// A STIX bundle of 20,000 indicators whose context comes after them (the
/// TLP marking definition, the campaign and its `indicates`
/// relationships, the report that lists them, a newer version of the
/// first one), with a malformed object in the middle: `feed add` streams
/// it (two passes over the file) and every indicator gets its context,
/// the malformed object is rejected with its line and the others load,
/// the superseded version is skipped, and the store records the file's
/// SHA-256. `hunt --feed` reads the same file the same way.
#[test]
fn a_stix_bundle_is_stored_as_read_with_context_written_after_its_indicators() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("s.db");
    let file = dir.path().join("bundle.json");
    let n = 20_000u32;
    let id = |i: u32| format!("indicator--a0000000-0000-4000-8000-{i:012}");
    let mut objects = Vec::new();
    for i in 0..n {
        objects.push(format!(
            "{{\"type\": \"indicator\", \"spec_version\": \"2.1\", \"id\": \"{}\", \"modified\": \"2024-01-01T00:00:00Z\", \"pattern\": \"[ipv4-addr:value = '{}']\", \"pattern_type\": \"stix\", \"valid_from\": \"2024-01-01T00:00:00Z\", \"object_marking_refs\": [\"marking-definition--b0000000-0000-4000-8000-000000000001\"]}}",
            id(i),
            std::net::Ipv4Addr::from(0x0b00_0000 + i)
        ));
        if i == 100 {
            // Line 104 (objects start on line 3): labels not a list.
            objects.push(
                "{\"type\": \"indicator\", \"id\": \"indicator--bad00000-0000-4000-8000-000000000000\", \"labels\": 7, \"pattern\": \"[ipv4-addr:value = '10.9.9.9']\"}".to_string(),
            );
        }
    }
    // A newer version of indicator 0 names a domain instead.
    objects.push(format!(
        "{{\"type\": \"indicator\", \"id\": \"{}\", \"modified\": \"2024-06-01T00:00:00Z\", \"pattern\": \"[domain-name:value = 'relay.example']\", \"pattern_type\": \"stix\", \"valid_from\": \"2024-01-01T00:00:00Z\"}}",
        id(0)
    ));
    objects.push("{\"type\": \"marking-definition\", \"id\": \"marking-definition--b0000000-0000-4000-8000-000000000001\", \"definition_type\": \"tlp\", \"definition\": {\"tlp\": \"amber\"}}".to_string());
    objects.push("{\"type\": \"campaign\", \"id\": \"campaign--c0000000-0000-4000-8000-000000000001\", \"name\": \"Relay Storm\"}".to_string());
    for i in 0..n {
        objects.push(format!(
            "{{\"type\": \"relationship\", \"id\": \"relationship--d0000000-0000-4000-8000-{i:012}\", \"relationship_type\": \"indicates\", \"source_ref\": \"{}\", \"target_ref\": \"campaign--c0000000-0000-4000-8000-000000000001\"}}",
            id(i)
        ));
    }
    let text = format!(
        "{{\"type\": \"bundle\", \"id\": \"bundle--e0000000-0000-4000-8000-000000000001\",\n\"objects\": [\n{}\n]}}\n",
        objects.join(",\n")
    );
    std::fs::write(&file, &text).expect("write");
    let out = ok(&run(
        &db,
        &["feed", "add", file.to_str().expect("utf-8"), "--name", "b"],
    ));
    assert!(
        out.contains(&format!("version 1 (stix, bundle.json): {n} indicators")),
        "{out}"
    );
    assert!(out.contains("rejected: 1"), "{out}");
    assert!(out.contains("bundle.json:104:"), "{out}");
    let stix = ok(&run(&db, &["feed", "export", "b", "--to", "stix"]));
    let doc: serde_json::Value = serde_json::from_str(&stix).expect("stix json");
    let exported = doc["objects"].as_array().expect("objects");
    let indicators: Vec<&serde_json::Value> = exported
        .iter()
        .filter(|o| o["type"] == "indicator")
        .collect();
    assert_eq!(indicators.len(), n as usize);
    assert!(
        stix.contains("relay.example"),
        "the newer version is missing"
    );
    assert!(
        !stix.contains("'11.0.0.0'"),
        "the superseded version was stored"
    );
    let amber = exported
        .iter()
        .find(|o| o["type"] == "marking-definition" && o["name"] == "TLP:AMBER")
        .map(|o| o["id"].clone())
        .expect("TLP:AMBER marking");
    let amber_count = indicators
        .iter()
        .filter(|i| {
            i["object_marking_refs"]
                .as_array()
                .is_some_and(|m| m.contains(&amber))
        })
        .count();
    // The newer version of indicator 0 has no marking of its own.
    assert_eq!(amber_count, n as usize - 1);
    assert!(stix.contains("Relay Storm"), "the campaign is missing");
    let show = ok(&run(&db, &["feed", "show", "b"]));
    let digest = {
        use sha2::Digest;
        sha2::Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert!(show.contains(&digest), "{show}");

    // `hunt --feed` on the same bundle: the last indicator's address is
    // found, with the campaign written after it.
    let log = dir.path().join("auth.log");
    let last = std::net::Ipv4Addr::from(0x0b00_0000 + n - 1);
    std::fs::write(
        &log,
        format!(
            "Jan  2 10:00:00 gw sshd[11]: Accepted password for admin from {last} port 40022 ssh2\n"
        ),
    )
    .expect("write log");
    let hunt = Command::new(env!("CARGO_BIN_EXE_orbwatch"))
        .env_remove("ORBWATCH_DB")
        .env_remove("ORBWATCH_LOG")
        .env_remove("XDG_DATA_HOME")
        .args(["hunt", "--year", "2024", "--format", "jsonl", "--feed"])
        .arg(&file)
        .arg(&log)
        .output()
        .expect("run hunt");
    let found = ok(&hunt);
    let matches: Vec<serde_json::Value> = found
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("jsonl"))
        .filter(|f| f["kind"] == "ioc_match")
        .collect();
    assert_eq!(matches.len(), 1, "{found}");
    assert_eq!(matches[0]["indicator"], last.to_string());
    assert!(found.contains("Relay Storm"), "{found}");
}

/// `feed add` of a 200,000-row CSV stores it as it is read (in chunks, see
/// `read_lines_stream`): every indicator reaches the store, a row with a
/// bad date is rejected with its line while the others load, and a row an
/// unbalanced quote swallowed is reported with its own line. `hunt --feed`
/// reads the same CSV as a stream and matches it.
#[test]
fn a_large_csv_is_stored_as_read_with_rejects_and_swallowed_rows_by_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("s.db");
    let csv = dir.path().join("big.csv");
    let mut text = String::from("ip,first_seen,confidence,tags,comment\n");
    for i in 0..200_000u32 {
        let ip = std::net::Ipv4Addr::from(0x0b00_0000 + i);
        match i {
            // Line 1236: a date that is none.
            1234 => text.push_str(&format!("{ip},yesterday,80,scanner,\"x\"\n")),
            // Line 150002: an unbalanced quote, which swallows line 150003.
            150_000 => text.push_str(&format!("{ip},2026-11-01,80,scanner,\"open\n")),
            _ => text.push_str(&format!("{ip},2026-11-01,{},scanner,\"ok\"\n", i % 100)),
        }
    }
    std::fs::write(&csv, &text).expect("write");
    let out = ok(&run(&db, &["feed", "add", csv.to_str().expect("utf-8")]));
    assert!(
        out.contains("version 1 (csv, big.csv): 199998 indicators"),
        "{out}"
    );
    assert!(out.contains("rejected: 2"), "{out}");
    assert!(
        out.contains("big.csv:1236: first seen `yesterday`"),
        "{out}"
    );
    assert!(
        out.contains("big.csv:150003: row swallowed by a quoted field opened on line 150002"),
        "{out}"
    );
    let show = ok(&run(&db, &["feed", "show", "big", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&show).expect("json");
    assert_eq!(v["total"], 199_998, "{show}");
    assert_eq!(v["rejected"], 2, "{show}");
    let digest = {
        use sha2::Digest;
        sha2::Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(v["source_sha256"], digest.as_str(), "{show}");
    // Every address, with its window from the first-seen date (7 days of
    // grace each side), is in the store.
    let export = ok(&run(&db, &["feed", "export", "big", "--to", "plain"]));
    let values: std::collections::HashSet<&str> = export
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(values.len(), 199_998);
    for i in [0u32, 1233, 1235, 149_999, 150_000, 150_002, 199_999] {
        let ip = std::net::Ipv4Addr::from(0x0b00_0000 + i).to_string();
        assert!(values.contains(ip.as_str()), "{ip} missing");
    }
    let swallowed = std::net::Ipv4Addr::from(0x0b00_0000 + 150_001u32).to_string();
    assert!(!values.contains(swallowed.as_str()));

    // hunt --feed with the same CSV: a log line in the window names one.
    let log = dir.path().join("auth.log");
    std::fs::write(
        &log,
        "2026-11-02T10:00:00Z host sshd[1]: Failed password for root from 11.2.191.32 port 22 ssh2\n",
    )
    .expect("write");
    let hunt = Command::new(env!("CARGO_BIN_EXE_orbwatch"))
        .env_remove("ORBWATCH_DB")
        .env_remove("ORBWATCH_LOG")
        .env_remove("XDG_DATA_HOME")
        .args([
            "hunt",
            "--feed",
            csv.to_str().expect("utf-8"),
            "--no-behaviour",
        ])
        .args(["--format", "jsonl", log.to_str().expect("utf-8")])
        .output()
        .expect("run orbwatch");
    let found = String::from_utf8_lossy(&hunt.stdout);
    assert!(
        found.contains("11.2.191.32"),
        "{found}\n{}",
        String::from_utf8_lossy(&hunt.stderr)
    );
}
