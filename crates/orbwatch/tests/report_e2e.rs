//! End to end: hunt the bundled CERT-FR feed over `examples/logs` into a
//! store, triage a finding as a false positive, hunt again and see it
//! suppressed (and shown with `--show-suppressed`), then write every
//! report form from the store and from a `hunt --format jsonl` file.
//!
//! The oracle for the findings is a plain count of the lines of
//! `examples/logs/demo-auth.log` that name each address (grep -c): the demo
//! log has one sighting per line, except that line 11 (pam_unix, tied to
//! 94.59.209.77 by its session) is context evidence and not counted.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn orbwatch(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orbwatch"))
        .env("TZ", "UTC") // year-less syslog is read in the machine's zone
        .current_dir(repo())
        .arg("--db")
        .arg(db)
        .args(args)
        .env("USER", "tester")
        .output()
        .expect("run orbwatch")
}

fn hunt(db: &Path, extra: &[&str]) -> (Vec<serde_json::Value>, String) {
    let mut args = vec![
        "hunt",
        "--feed",
        "examples/feeds/CERTFR-2021-IOC-003-IOC.csv",
        "--year",
        "2021",
        "--format",
        "jsonl",
    ];
    args.extend_from_slice(extra);
    args.push("examples/logs");
    let out = orbwatch(db, &args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let findings = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (findings, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Lines of the demo log naming `ip` as a whole token.
fn grep_count(ip: &str) -> u64 {
    let text = std::fs::read_to_string(repo().join("examples/logs/demo-auth.log")).unwrap();
    text.lines()
        .filter(|l| {
            l.split(|c: char| !(c.is_ascii_digit() || c == '.'))
                .any(|t| t == ip)
        })
        .count() as u64
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn hunt_triage_suppress_report() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");

    // First hunt: 4 findings, counts equal to grep's.
    let (first, err) = hunt(&db, &[]);
    assert!(err.contains("hunt #1 kept in"), "{err}");
    assert_eq!(first.len(), 4);
    for f in &first {
        let ip = f["indicator"].as_str().unwrap();
        assert_eq!(f["count"].as_u64().unwrap(), grep_count(ip), "{ip}");
    }
    let target = first
        .iter()
        .find(|f| f["indicator"] == "105.154.12.165")
        .unwrap();
    let id = target["id"].as_str().unwrap().to_string();
    assert_eq!(target["count"], 4);

    // `findings` lists them with their status.
    let out = orbwatch(&db, &["findings", "--format", "jsonl"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 4);
    let out = orbwatch(&db, &["findings", "--format", "csv"]);
    assert_eq!(stdout(&out).lines().count(), 5);
    assert!(stdout(&out).lines().nth(1).unwrap().ends_with(",new,,,"));

    // Unknown id: names it and points to `orbwatch findings`.
    let out = orbwatch(&db, &["triage", "deadbeef", "--status", "benign"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no finding `deadbeef`"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("orbwatch findings"));
    // A bad status names the choices.
    let out = orbwatch(&db, &["triage", &id, "--status", "maybe"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("new, confirmed, false-positive, benign"));

    // Triage by a unique prefix.
    let out = orbwatch(
        &db,
        &[
            "triage",
            &id[..6],
            "--status",
            "false-positive",
            "--note",
            "our <pentest> box",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = orbwatch(&db, &["triage", &id]);
    assert!(stdout(&out).contains("false-positive  tester: our <pentest> box"));

    // Second hunt: the dismissed finding is hidden, and said to be.
    let (second, err) = hunt(&db, &[]);
    assert_eq!(second.len(), 3);
    assert!(second.iter().all(|f| f["indicator"] != "105.154.12.165"));
    assert!(
        err.contains("1 finding(s) dismissed by earlier triage"),
        "{err}"
    );
    let (shown, _) = hunt(&db, &["--show-suppressed"]);
    assert_eq!(shown.len(), 4);

    // `findings` hides it unless asked.
    let out = orbwatch(&db, &["findings", "--format", "jsonl"]);
    assert_eq!(stdout(&out).lines().count(), 3);
    let out = orbwatch(&db, &["findings", "--format", "jsonl", "--show-suppressed"]);
    let all: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(all.len(), 4);
    let fp = all.iter().find(|f| f["id"] == id.as_str()).unwrap();
    assert_eq!(fp["triage"]["status"], "false-positive");
    assert_eq!(fp["triage"]["author"], "tester");
    assert_eq!(fp["hunt_id"], 3);
    let out = orbwatch(
        &db,
        &[
            "findings",
            "--status",
            "false-positive",
            "--format",
            "jsonl",
        ],
    );
    assert_eq!(stdout(&out).lines().count(), 1);
    let out = orbwatch(
        &db,
        &["findings", "--since", "2021-04-01", "--format", "jsonl"],
    );
    assert_eq!(stdout(&out).lines().count(), 2);
    let out = orbwatch(
        &db,
        &["findings", "--kind", "port_scan", "--format", "jsonl"],
    );
    assert_eq!(stdout(&out).lines().count(), 0);

    // Every report form from the store.
    let r = dir.path().join("r");
    std::fs::create_dir(&r).unwrap();
    let p = |n: &str| r.join(n).display().to_string();
    let out = orbwatch(
        &db,
        &[
            "report",
            "--org",
            "ACME CERT",
            "--html",
            &p("report.html"),
            "--stix",
            &p("bundle.json"),
            "--misp-sightings",
            &p("sightings.json"),
            "--misp-event",
            &p("event.json"),
            "--csv",
            &p("findings.csv"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let html = std::fs::read_to_string(r.join("report.html")).unwrap();
    assert!(html.contains("Leads to investigate"));
    assert!(html.contains("id=\"dismissed-table\""));
    assert!(html.contains("our &lt;pentest&gt; box"));
    let bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(r.join("bundle.json")).unwrap()).unwrap();
    let sightings = bundle["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["type"] == "sighting")
        .count();
    assert_eq!(sightings, 3);
    let ms: serde_json::Value =
        serde_json::from_slice(&std::fs::read(r.join("sightings.json")).unwrap()).unwrap();
    let ms = ms.as_array().unwrap();
    assert_eq!(ms.len(), 4);
    let fp: Vec<_> = ms.iter().filter(|s| s["type"] == "1").collect();
    assert_eq!(fp.len(), 1);
    assert_eq!(fp[0]["values"][0], "105.154.12.165");
    let ev: serde_json::Value =
        serde_json::from_slice(&std::fs::read(r.join("event.json")).unwrap()).unwrap();
    assert_eq!(ev["Event"]["Attribute"].as_array().unwrap().len(), 3);
    assert_eq!(
        std::fs::read_to_string(r.join("findings.csv"))
            .unwrap()
            .lines()
            .count(),
        4
    );
    // No temporary files left behind.
    assert_eq!(std::fs::read_dir(&r).unwrap().count(), 5);

    // Existing files need --force.
    let out = orbwatch(&db, &["report", "--html", &p("report.html")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("add --force"));
    let out = orbwatch(&db, &["report", "--html", &p("report.html"), "--force"]);
    assert!(out.status.success());

    // From a findings file, with its coverage.
    let jsonl = dir.path().join("f.jsonl");
    let cov = dir.path().join("cov.json");
    let out = Command::new(env!("CARGO_BIN_EXE_orbwatch"))
        .env("TZ", "UTC") // year-less syslog is read in the machine's zone
        .current_dir(repo())
        .args([
            "hunt",
            "--feed",
            "examples/feeds/CERTFR-2021-IOC-003-IOC.csv",
            "--year",
            "2021",
            "--format",
            "jsonl",
            "-o",
        ])
        .arg(&jsonl)
        .arg("--coverage")
        .arg(&cov)
        .arg("examples/logs")
        .env_remove("ORBWATCH_DB")
        .env("XDG_DATA_HOME", dir.path().join("xdg"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!dir.path().join("xdg").exists());
    let out = orbwatch(
        &db,
        &[
            "report",
            "--findings",
            &jsonl.display().to_string(),
            "--coverage",
            &cov.display().to_string(),
            "--csv",
            &p("file.csv"),
            "--html",
            &p("file.html"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(r.join("file.csv"))
            .unwrap()
            .lines()
            .count(),
        5
    );
    let html = std::fs::read_to_string(r.join("file.html")).unwrap();
    assert!(html.contains("id=\"inputs-table\""));
}

#[test]
fn nothing_to_report() {
    let dir = tempfile::tempdir().unwrap();
    let empty_file = dir.path().join("empty.jsonl");
    std::fs::write(&empty_file, "").unwrap();
    let html = dir.path().join("r.html");
    let stix = dir.path().join("b.json");
    // A store that does not exist: not created, a "nothing to report" page.
    let db = dir.path().join("none.db");
    let out = orbwatch(
        &db,
        &[
            "report",
            "--html",
            &html.display().to_string(),
            "--stix",
            &stix.display().to_string(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("nothing to report"));
    assert!(!db.exists());
    assert!(
        std::fs::read_to_string(&html)
            .unwrap()
            .contains("Nothing to report")
    );
    let b: serde_json::Value = serde_json::from_slice(&std::fs::read(&stix).unwrap()).unwrap();
    assert_eq!(b["type"], "bundle");
    assert_eq!(b["objects"].as_array().unwrap().len(), 1);

    // An empty findings file.
    let out = orbwatch(
        &db,
        &[
            "report",
            "--findings",
            &empty_file.display().to_string(),
            "--html",
            &html.display().to_string(),
            "--force",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("nothing to report"));

    // A broken findings file names the line.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"id\": 1}\n").unwrap();
    let out = orbwatch(
        &db,
        &[
            "report",
            "--findings",
            &bad.display().to_string(),
            "--html",
            &dir.path().join("x.html").display().to_string(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad.jsonl:1"), "{}", stderr(&out));
    assert!(!dir.path().join("x.html").exists());

    // No output asked for.
    let out = orbwatch(&db, &["report"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--html FILE"));

    // Commands on a store that does not exist say how to make one.
    let out = orbwatch(&db, &["findings"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("does not exist yet"));
}

/// A STIX feed hunted end to end: the sightings point at the feed's own
/// indicator ids, and the bundle passes the OASIS validator.
#[test]
fn stix_feed_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let log = dir.path().join("auth.log");
    // 198.51.100.7 is listed alone (indicator 1) and inside a /24
    // (indicator 6); 203.0.113.10 shares a pattern with an IPv6 address
    // (indicator 2); 192.0.2.11 is one of an IN list (indicator 5).
    std::fs::write(
        &log,
        "Apr  2 10:00:00 gw sshd[1]: Failed password for root from 198.51.100.7 port 2222 ssh2\n\
         Apr  2 10:00:05 gw sshd[1]: Failed password for root from 198.51.100.7 port 2222 ssh2\n\
         Apr  3 11:00:00 gw sshd[2]: Failed password for admin from 203.0.113.10 port 4444 ssh2\n\
         Apr  4 12:00:00 gw sshd[3]: Invalid user test from 192.0.2.11 port 5555\n\
         Apr  4 12:00:01 gw sshd[3]: Invalid user test from 192.0.2.99 port 5555\n",
    )
    .unwrap();
    let feed = repo().join("tests/data/feeds-stix-misp/stix21-bundle.json");
    let out = orbwatch(
        &db,
        &[
            "hunt",
            "--feed",
            &feed.display().to_string(),
            "--year",
            "2024",
            "--format",
            "jsonl",
            &log.display().to_string(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let bundle = dir.path().join("b.json");
    let out = orbwatch(
        &db,
        &[
            "report",
            "--org",
            "Test CERT",
            "--stix",
            &bundle.display().to_string(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let b: serde_json::Value = serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    let objs = b["objects"].as_array().unwrap();
    let mut sighted: Vec<&str> = objs
        .iter()
        .filter(|o| o["type"] == "sighting")
        .map(|o| o["sighting_of_ref"].as_str().unwrap())
        .collect();
    sighted.sort();
    assert_eq!(
        sighted,
        vec![
            "indicator--00000001-1111-4222-8333-000000000001",
            "indicator--00000002-1111-4222-8333-000000000002",
            "indicator--00000005-1111-4222-8333-000000000005",
            "indicator--00000006-1111-4222-8333-000000000006",
        ]
    );
    let two = objs
        .iter()
        .find(|o| o["id"] == "indicator--00000002-1111-4222-8333-000000000002")
        .unwrap();
    assert_eq!(two["pattern"], "[ipv4-addr:value = '203.0.113.10']");
    let one = objs
        .iter()
        .filter(|o| o["type"] == "sighting")
        .find(|o| o["sighting_of_ref"] == "indicator--00000001-1111-4222-8333-000000000001")
        .unwrap();
    assert_eq!(one["count"], 2);
    assert_eq!(one["first_seen"], "2024-04-02T10:00:00.000Z");
    assert_eq!(one["last_seen"], "2024-04-02T10:00:05.000Z");

    let have_python = Command::new("python3")
        .args(["-c", "import stix2validator, stix2"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_python {
        assert!(
            std::env::var("ORBWATCH_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "python3 with stix2validator and stix2 is required"
        );
        println!("skipped: python3 with stix2validator and stix2 not installed");
        return;
    }
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, json, stix2\n\
             from stix2validator import validate_file, print_results\n\
             r = validate_file(sys.argv[1]); print_results(r)\n\
             assert r.is_valid\n\
             stix2.parse(json.load(open(sys.argv[1])), allow_custom=False)\n",
        )
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(!stdout(&out).contains("[X]"), "{}", stdout(&out));
}

/// A hunt with only `--feed` files and no store named writes nothing.
#[test]
fn hunt_with_only_feed_files_writes_no_store() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_orbwatch"))
        .env("TZ", "UTC") // year-less syslog is read in the machine's zone
        .current_dir(repo())
        .args([
            "hunt",
            "--feed",
            "examples/feeds/CERTFR-2021-IOC-003-IOC.csv",
            "--year",
            "2021",
            "--format",
            "jsonl",
            "examples/logs",
        ])
        .env_remove("ORBWATCH_DB")
        .env("XDG_DATA_HOME", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 4);
    assert!(!stderr(&out).contains("kept"));
    assert!(!dir.path().join("orbwatch").exists());
}

/// Cisco Talos' ArcaneDoor STIX bundle (shared corpus, no licence file, not
/// copied here): an outbound connection to one of its addresses is
/// reported as sightings of Talos' own indicator id.
#[test]
fn arcanedoor_stix_feed_keeps_its_indicator_id() {
    let feed = repo().join(
        "../shared/corpus/feeds/arcanedoor-new-espionage-focused-campaign-found-targeting-perimeter-network-devices.json",
    );
    if !feed.is_file() {
        println!("skipped: ../shared/corpus not found");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let log = dir.path().join("fw.log");
    std::fs::write(
        &log,
        "Apr 20 10:00:00 fw kernel: [UFW BLOCK] IN= OUT=eth0 SRC=10.1.1.5 DST=192.36.57.181 LEN=60 PROTO=TCP SPT=40000 DPT=443\n\
         Apr 21 10:00:00 fw kernel: [UFW BLOCK] IN= OUT=eth0 SRC=10.1.1.5 DST=192.36.57.181 LEN=60 PROTO=TCP SPT=40001 DPT=443\n",
    )
    .unwrap();
    let out = orbwatch(
        &db,
        &[
            "hunt",
            "--feed",
            &feed.display().to_string(),
            "--year",
            "2024",
            "--format",
            "jsonl",
            &log.display().to_string(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let bundle = dir.path().join("b.json");
    let out = orbwatch(&db, &["report", "--stix", &bundle.display().to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let b: serde_json::Value = serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    let sightings: Vec<&serde_json::Value> = b["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["type"] == "sighting")
        .collect();
    // Two days apart: two findings, two sightings of the same indicator.
    assert_eq!(sightings.len(), 2);
    for s in sightings {
        assert_eq!(
            s["sighting_of_ref"],
            "indicator--183cb837-563b-4235-a772-7b373098ca4b"
        );
        assert_eq!(s["count"], 1);
    }
}
