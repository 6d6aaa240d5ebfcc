//! `orbwatch feed …` end to end: the built binary against a store in a
//! temporary folder.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

#[path = "support/cli.rs"]
mod cli;
use cli::{bin, ok, run_with_db as run, stderr};

fn list_json(db: &Path) -> Vec<Value> {
    let out = ok(&run(db, &["feed", "list", "--json"]));
    let v: Value = serde_json::from_str(&out).expect("feed list --json is JSON");
    v.as_array().expect("an array").clone()
}

fn feed_entry<'a>(list: &'a [Value], name: &str) -> &'a Value {
    list.iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("feed {name} not listed: {list:?}"))
}

/// The CERT-FR APT31 list: in the project's test data, else in the shared
/// corpus next to the repository.
fn certfr_file() -> Option<PathBuf> {
    let candidates = [
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/feeds-text/CERTFR-2021-IOC-003-IOC.csv"
        ),
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/corpus/feeds/CERTFR-2021-IOC-003-IOC.csv"
        ),
    ];
    let found = candidates.iter().map(PathBuf::from).find(|p| p.is_file());
    if found.is_none() {
        eprintln!(
            "skipped: CERTFR-2021-IOC-003-IOC.csv not found in tests/data or ../shared/corpus"
        );
    }
    found
}

#[test]
fn certfr_add_list_show_and_zeek_round_trip() {
    let Some(certfr) = certfr_file() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let certfr = certfr.to_str().unwrap();

    let out = ok(&run(&db, &["feed", "add", certfr, "--name", "apt31"]));
    assert!(out.contains("feed `apt31` version 1 (certfr"), "{out}");
    assert!(out.contains("161"), "{out}");

    let list = list_json(&db);
    assert_eq!(list.len(), 1);
    let f = feed_entry(&list, "apt31");
    assert_eq!(f["format"], "certfr");
    assert_eq!(f["counts"]["ipv4"], 161);
    let keys: Vec<&str> = f["counts"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["cert", "cidr", "domain", "hash", "ipv4", "ipv6", "url"]
    );
    assert_eq!(f["rejected"], 0);
    assert_eq!(f["skipped"], 0);
    assert_eq!(f["version"], 1);
    assert!(
        f["source"]
            .as_str()
            .unwrap()
            .ends_with("CERTFR-2021-IOC-003-IOC.csv")
    );

    let table = ok(&run(&db, &["feed", "list"]));
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("apt31"), "{table}");

    let show = ok(&run(&db, &["feed", "show", "apt31"]));
    assert!(show.contains("indicators  161 (ipv4 161)"), "{show}");
    assert!(show.contains("APT31"), "{show}");
    assert!(show.contains("v1"), "{show}");
    let show_json: Value =
        serde_json::from_str(&ok(&run(&db, &["feed", "show", "apt31", "--json"]))).unwrap();
    assert_eq!(show_json["counts"]["ipv4"], 161);
    assert_eq!(show_json["versions"].as_array().unwrap().len(), 1);
    assert_eq!(show_json["validity"]["indicators"], 161);

    // Zeek export, to stdout and to a file, and back in as a Zeek feed.
    let zeek = ok(&run(&db, &["feed", "export", "apt31", "--to", "zeek"]));
    assert!(zeek.starts_with("#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\n"));
    assert_eq!(
        zeek.lines()
            .filter(|l| l.contains("\tIntel::ADDR\t"))
            .count(),
        161
    );
    let intel = dir.path().join("apt31.intel");
    ok(&run(
        &db,
        &[
            "feed",
            "export",
            "apt31",
            "--to",
            "zeek",
            "--output",
            intel.to_str().unwrap(),
        ],
    ));
    assert_eq!(std::fs::read_to_string(&intel).unwrap(), zeek);
    let out = ok(&run(
        &db,
        &[
            "feed",
            "add",
            intel.to_str().unwrap(),
            "--format",
            "zeek-intel",
            "--name",
            "apt31-zeek",
        ],
    ));
    assert!(out.contains("(zeek-intel,"), "{out}");
    let list = list_json(&db);
    assert_eq!(feed_entry(&list, "apt31-zeek")["counts"]["ipv4"], 161);

    // Re-adding the same file is a new version with nothing changed.
    let out = ok(&run(&db, &["feed", "add", certfr, "--name", "apt31"]));
    assert!(out.contains("version 2"), "{out}");
    assert!(
        out.contains("changes since version 1: 0 added, 0 removed, 161 unchanged"),
        "{out}"
    );
}

#[test]
fn orbwatch_db_environment_variable_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("env.db");
    let xdg = dir.path().join("xdg");
    let list = dir.path().join("list.txt");
    std::fs::write(&list, "1.2.3.4\n5.6.7.8\n").unwrap();
    let o = bin()
        .env("ORBWATCH_DB", &db)
        .env("XDG_DATA_HOME", &xdg)
        .args(["feed", "add", list.to_str().unwrap()])
        .output()
        .unwrap();
    ok(&o);
    assert!(db.is_file(), "store not created at ORBWATCH_DB");
    assert!(!xdg.join("orbwatch").join("orbwatch.db").exists());
    let listed = list_json(&db);
    assert_eq!(feed_entry(&listed, "list")["counts"]["ipv4"], 2);

    // Without --db or ORBWATCH_DB, XDG_DATA_HOME decides.
    let o = bin()
        .env("XDG_DATA_HOME", &xdg)
        .args(["feed", "add", list.to_str().unwrap(), "--name", "x"])
        .output()
        .unwrap();
    ok(&o);
    assert!(xdg.join("orbwatch").join("orbwatch.db").is_file());
}

#[test]
fn unknown_feed_names_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    for args in [
        &["feed", "show", "nope"][..],
        &["feed", "remove", "nope"][..],
        &["feed", "export", "nope", "--to", "plain"][..],
    ] {
        let o = run(&db, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = stderr(&o);
        assert!(err.contains("no feed named `nope`"), "{err}");
        assert!(err.contains("orbwatch feed list"), "{err}");
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn malformed_lines_are_reported_and_the_rest_loads() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let list = dir.path().join("relays.txt");
    let mut text =
        String::from("# relay boxes\n1.2.3.4\n1.2.3.999\n10.0.0.0/8\nnot a value at all ###\n");
    for i in 0..12 {
        text.push_str(&format!("300.1.1.{i}\n"));
    }
    text.push_str("192.0.2.4-192.0.2.9\n2001:db8::1\n1.2.3.4\n");
    std::fs::write(&list, text).unwrap();

    let out = ok(&run(
        &db,
        &["feed", "add", list.to_str().unwrap(), "--format", "plain"],
    ));
    assert!(out.contains("feed `relays` version 1 (plain"), "{out}");
    assert!(out.contains("relays.txt:3:"), "{out}");
    assert!(out.contains("relays.txt:5:"), "{out}");
    assert!(out.contains("rejected: 14"), "{out}");
    assert!(out.contains("… 4 more"), "{out}");
    assert!(out.contains("1 repeated entry stored once"), "{out}");

    let listed = list_json(&db);
    let f = feed_entry(&listed, "relays");
    assert_eq!(f["rejected"], 14);
    assert_eq!(f["counts"]["ipv4"], 1);
    assert_eq!(f["counts"]["cidr"], 2);
    assert_eq!(f["counts"]["ipv6"], 1);

    let show = ok(&run(&db, &["feed", "show", "relays"]));
    assert!(
        show.contains("rejected in version 1 (first 10 of 14)"),
        "{show}"
    );
    assert!(show.contains("relays.txt:3:"), "{show}");

    // Plain export: sorted, ranges as exact CIDR blocks.
    let plain = ok(&run(&db, &["feed", "export", "relays", "--to", "plain"]));
    assert_eq!(
        plain,
        "1.2.3.4\n10.0.0.0/8\n192.0.2.4/30\n192.0.2.8/31\n2001:db8::1\n"
    );
    assert_eq!(
        plain,
        ok(&run(&db, &["feed", "export", "relays", "--to", "plain"]))
    );

    // STIX export is a bundle with one indicator per value.
    let stix: Value = serde_json::from_str(&ok(&run(
        &db,
        &["feed", "export", "relays", "--to", "stix"],
    )))
    .unwrap();
    assert_eq!(stix["type"], "bundle");
    assert_eq!(stix["objects"].as_array().unwrap().len(), 4);

    // Suricata iprep: addresses only; here all of them qualify.
    let iprep = ok(&run(&db, &["feed", "export", "relays", "--to", "suricata"]));
    let data: Vec<&str> = iprep.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(data.len(), 5);
    assert!(data.iter().all(|l| l.ends_with(",1,127")), "{iprep}");
}

#[test]
fn re_adding_a_changed_list_reports_the_diff_and_keeps_history() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let list = dir.path().join("relays.txt");
    std::fs::write(&list, "1.1.1.1\n2.2.2.2\n3.3.3.3\n").unwrap();
    ok(&run(&db, &["feed", "add", list.to_str().unwrap()]));
    std::fs::write(&list, "2.2.2.2\n3.3.3.3\n4.4.4.4\n5.5.5.5\n").unwrap();
    let out = ok(&run(&db, &["feed", "add", list.to_str().unwrap()]));
    assert!(out.contains("version 2"), "{out}");
    assert!(
        out.contains("changes since version 1: 2 added, 1 removed, 2 unchanged"),
        "{out}"
    );
    let show: Value =
        serde_json::from_str(&ok(&run(&db, &["feed", "show", "relays", "--json"]))).unwrap();
    let versions = show["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[1]["added"], 2);
    assert_eq!(versions[1]["removed"], 1);
    assert_eq!(show["counts"]["ipv4"], 4);
    let text = ok(&run(&db, &["feed", "show", "relays"]));
    assert!(text.contains("v2"), "{text}");

    let out = ok(&run(&db, &["feed", "remove", "relays"]));
    assert!(out.contains("removed feed `relays`"), "{out}");
    assert!(list_json(&db).is_empty());
    let empty = ok(&run(&db, &["feed", "list"]));
    assert!(empty.contains("no feeds"), "{empty}");
}

#[test]
fn options_are_applied_and_bad_values_name_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let list = dir.path().join("l.txt");
    std::fs::write(&list, "1.2.3.4\n").unwrap();
    let l = list.to_str().unwrap();

    ok(&run(
        &db,
        &[
            "feed",
            "add",
            l,
            "--valid-from",
            "2021-01-01",
            "--ttl",
            "30d",
            "--confidence",
            "60",
        ],
    ));
    let show: Value =
        serde_json::from_str(&ok(&run(&db, &["feed", "show", "l", "--json"]))).unwrap();
    assert_eq!(
        show["validity"]["earliest_valid_from"],
        "2021-01-01T00:00:00Z"
    );
    assert_eq!(
        show["validity"]["latest_valid_until"],
        "2021-01-31T00:00:00Z"
    );
    assert_eq!(show["options"]["ttl"], "720h");
    let iprep = ok(&run(&db, &["feed", "export", "l", "--to", "suricata"]));
    assert!(iprep.contains("1.2.3.4,1,76"), "{iprep}");

    for (flag, value) in [
        ("--valid-from", "yesterday"),
        ("--valid-until", "soon"),
        ("--ttl", "forever"),
        ("--grace", "-"),
        ("--confidence", "250"),
        ("--format", "yaml"),
    ] {
        let o = run(&db, &["feed", "add", l, flag, value]);
        assert_eq!(o.status.code(), Some(2), "{flag}");
        let err = stderr(&o);
        assert!(err.contains(flag), "{flag}: {err}");
        assert!(
            err.contains("e.g.") || err.contains("valid formats"),
            "{flag}: {err}"
        );
    }
}

#[test]
fn unreadable_or_unknown_input_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let o = run(
        &db,
        &[
            "feed",
            "add",
            dir.path().join("missing.txt").to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing.txt"), "{}", stderr(&o));

    let bin_file = dir.path().join("blob.bin");
    std::fs::write(&bin_file, [0u8, 1, 2, 3, 0, 0, 255, 254, 0, 7]).unwrap();
    let o = run(&db, &["feed", "add", bin_file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("blob.bin"), "{}", stderr(&o));

    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    let o = run(&db, &["feed", "add", folder.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("manifest.json"), "{}", stderr(&o));

    // Nothing was stored by the failures.
    assert!(list_json(&db).is_empty());
}

#[test]
fn export_output_replaces_the_file_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let list = dir.path().join("l.txt");
    std::fs::write(&list, "evil.example\nhttp://evil.example/x\n1.2.3.4\n").unwrap();
    ok(&run(&db, &["feed", "add", list.to_str().unwrap()]));
    let out = dir.path().join("out.txt");
    std::fs::write(&out, "old content").unwrap();
    let o = run(
        &db,
        &[
            "feed",
            "export",
            "l",
            "--to",
            "suricata",
            "--output",
            out.to_str().unwrap(),
        ],
    );
    ok(&o);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("1.2.3.4,1,127"), "{text}");
    assert!(!text.contains("old content"));
    // Domains and URLs cannot go into an IP reputation file: said on stderr.
    assert!(stderr(&o).contains("left out"), "{}", stderr(&o));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn misp_feed_folder_is_read_through_its_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let feed = dir.path().join("misp-feed");
    std::fs::create_dir(&feed).unwrap();
    let uuid = "5f0c2a3e-1b2c-4d5e-8f90-0a1b2c3d4e5f";
    std::fs::write(
        feed.join("manifest.json"),
        format!(
            r#"{{"{uuid}": {{"info": "relays", "date": "2024-04-01", "timestamp": "1711929600"}}}}"#
        ),
    )
    .unwrap();
    std::fs::write(
        feed.join(format!("{uuid}.json")),
        format!(
            r#"{{"Event": {{"uuid": "{uuid}", "info": "relays", "date": "2024-04-01",
               "Tag": [{{"name": "tlp:green"}}],
               "Attribute": [
                 {{"uuid": "0b6a3e3c-aaaa-4bbb-8ccc-000000000001", "type": "ip-dst", "category": "Network activity", "value": "203.0.113.7", "to_ids": true}},
                 {{"uuid": "0b6a3e3c-aaaa-4bbb-8ccc-000000000002", "type": "domain", "category": "Network activity", "value": "relay.example", "to_ids": true}},
                 {{"uuid": "0b6a3e3c-aaaa-4bbb-8ccc-000000000003", "type": "comment", "category": "Other", "value": "hello", "to_ids": false}}
               ]}}}}"#
        ),
    )
    .unwrap();
    let out = ok(&run(&db, &["feed", "add", feed.to_str().unwrap()]));
    assert!(
        out.contains("feed `misp-feed` version 1 (misp-feed"),
        "{out}"
    );
    let listed = list_json(&db);
    let f = feed_entry(&listed, "misp-feed");
    assert_eq!(f["counts"]["ipv4"], 1);
    assert_eq!(f["counts"]["domain"], 1);
    assert_eq!(f["skipped"], 1);
    assert_eq!(f["format"], "misp-feed");
    let show = ok(&run(&db, &["feed", "show", "misp-feed"]));
    assert!(show.contains("TLP"), "{show}");
    assert!(show.contains("green"), "{show}");
    // The attribute uuid is not a STIX id: the export derives one.
    let stix: Value = serde_json::from_str(&ok(&run(
        &db,
        &["feed", "export", "misp-feed", "--to", "stix"],
    )))
    .unwrap();
    let objects = stix["objects"].as_array().unwrap();
    assert_eq!(
        objects.iter().filter(|o| o["type"] == "indicator").count(),
        2
    );
    assert!(objects.iter().any(|o| o["name"] == "TLP:GREEN"));
}

#[test]
fn csv_column_flags_fill_the_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let csv = dir.path().join("seen.csv");
    std::fs::write(
        &csv,
        "when;addr;note\n2024-03-01;198.51.100.7;relay\n2024-03-02;198.51.100.8;relay\n2024-03-03;nonsense;x\n",
    )
    .unwrap();
    let out = ok(&run(
        &db,
        &[
            "feed",
            "add",
            csv.to_str().unwrap(),
            "--format",
            "csv",
            "--delimiter",
            ";",
            "--value-column",
            "addr",
            "--first-seen-column",
            "when",
            "--grace",
            "1d",
        ],
    ));
    assert!(out.contains("rejected: 1"), "{out}");
    assert!(out.contains("seen.csv:4:"), "{out}");
    let show: Value =
        serde_json::from_str(&ok(&run(&db, &["feed", "show", "seen", "--json"]))).unwrap();
    assert_eq!(show["counts"]["ipv4"], 2);
    assert_eq!(
        show["validity"]["earliest_valid_from"],
        "2024-02-29T00:00:00Z"
    );
    assert_eq!(
        show["validity"]["latest_valid_until"],
        "2024-03-03T00:00:00Z"
    );
    assert_eq!(show["options"]["csv"]["value"], "addr");
    assert_eq!(show["options"]["csv"]["delimiter"], ";");
}

/// `orbwatch feed add - ARGS…` with `input` written to its standard input
/// through a pipe (which can be read only once, front to back).
fn add_piped(db: &Path, args: &[&str], input: &[u8]) -> Output {
    use std::io::Write as _;
    let mut child = bin()
        .arg("--db")
        .arg(db)
        .args(["feed", "add", "-"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write");
    child.wait_with_output().expect("wait")
}

/// `feed add -` reads standard input, whatever the format (a STIX bundle
/// is read in two passes, which a pipe cannot give twice), and asks for
/// a name it cannot derive.
#[test]
fn a_feed_is_read_from_standard_input() {
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("orbwatch.db");
    let mut list = String::new();
    for i in 0..5000u32 {
        list.push_str(&format!("198.18.{}.{}\n", i / 250, i % 250));
    }
    list.push_str("not an address\n");
    let out = add_piped(
        &db,
        &["--name", "piped", "--format", "plain"],
        list.as_bytes(),
    );
    let text = ok(&out);
    assert!(
        text.contains("feed `piped` version 1 (plain, stdin): 5000 indicators"),
        "{text}"
    );
    // The bad line is named by its line number, as in a file.
    assert!(text.contains("stdin:5001:"), "{text}");
    let list = list_json(&db);
    let f = feed_entry(&list, "piped");
    assert_eq!(f["counts"]["ipv4"], 5000, "{f}");
    assert_eq!(f["rejected"], 1, "{f}");
    assert_eq!(f["source"], "stdin", "{f}");

    let bundle = serde_json::json!({
        "type": "bundle",
        "id": "bundle--6c0e3e9a-0b0e-4a53-9a55-0d2c3b1f1a01",
        "objects": [
            {"type": "indicator", "spec_version": "2.1",
             "id": "indicator--1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b",
             "created": "2021-03-01T00:00:00Z", "modified": "2021-03-01T00:00:00Z",
             "pattern": "[ipv4-addr:value = '45.9.148.84']", "pattern_type": "stix",
             "valid_from": "2021-03-01T00:00:00Z"},
            {"type": "indicator", "spec_version": "2.1",
             "id": "indicator--2f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b",
             "created": "2021-03-01T00:00:00Z", "modified": "2021-03-01T00:00:00Z",
             "pattern": "[ipv4-addr:value = '45.9.148.85']", "pattern_type": "stix",
             "valid_from": "2021-03-01T00:00:00Z"}
        ]
    });
    let out = add_piped(&db, &["--name", "bundle"], bundle.to_string().as_bytes());
    let text = ok(&out);
    assert!(
        text.contains("feed `bundle` version 1 (stix, stdin): 2 indicators"),
        "{text}"
    );

    let o = run(&db, &["feed", "add", "-"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("standard input (-) needs --name NAME"),
        "{}",
        stderr(&o)
    );
}
