//! End-to-end `orbwatch hunt` on binary inputs: captures go through the
//! same IOC matching as text logs. The oracle for each count is Suricata's
//! EVE output for the same pcap (`tests/data/logs-a/zeek_wikipedia.eve.json`):
//! the flow, http and dns-answer events that name the address, which are
//! the records orbwatch makes from the capture (flows, HTTP requests, DNS
//! messages).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn hunt(feed: &Path, inputs: &[PathBuf], extra: &[&str]) -> (Vec<serde_json::Value>, i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_orbwatch"))
        .env("TZ", "UTC") // year-less syslog is read in the machine's zone
        .arg("hunt")
        .arg("--feed")
        .arg(feed)
        .args(["--format", "jsonl", "--evidence-limit", "0"])
        .args(extra)
        .args(inputs)
        // No store: only the --feed files are used, and nothing is kept.
        .env_remove("ORBWATCH_DB")
        .output()
        .expect("run orbwatch");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 output");
    let findings = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is a JSON finding"))
        .collect();
    (
        findings,
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Sum of `count` per indicator (IOC matches; behaviour findings have no
/// indicator).
fn counts(findings: &[serde_json::Value]) -> std::collections::BTreeMap<String, u64> {
    let mut m = std::collections::BTreeMap::new();
    for f in findings.iter().filter(|f| f["kind"] == "ioc_match") {
        *m.entry(f["indicator"].as_str().unwrap().to_string())
            .or_insert(0) += f["count"].as_u64().unwrap();
    }
    m
}

/// EVE events (not stats) that name an address: the oracle count.
fn eve_mentions(ip: &str) -> u64 {
    let eve =
        std::fs::read_to_string(repo().join("tests/data/logs-a/zeek_wikipedia.eve.json")).unwrap();
    eve.lines()
        .filter(|l| !l.contains("\"event_type\":\"stats\""))
        .filter(|l| l.contains(&format!("\"{ip}\"")))
        .count() as u64
}

#[test]
fn indicators_in_a_capture_are_found_with_the_right_count() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("feed.txt");
    let mut f = std::fs::File::create(&feed).unwrap();
    // The DNS server, the image server, and an address not in the capture.
    writeln!(f, "141.142.2.2\n208.80.152.3\n203.0.113.9").unwrap();
    drop(f);
    let pcap = repo().join("tests/data/captures/zeek_wikipedia.pcap");
    let cov_path = dir.path().join("cov.json");
    let (findings, code, stderr) =
        hunt(&feed, &[pcap], &["--coverage", cov_path.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let c = counts(&findings);
    assert_eq!(c.get("141.142.2.2"), Some(&42));
    assert_eq!(c.get("141.142.2.2"), Some(&eve_mentions("141.142.2.2")));
    assert_eq!(c.get("208.80.152.3"), Some(&22));
    assert_eq!(c.get("208.80.152.3"), Some(&eve_mentions("208.80.152.3")));
    assert_eq!(c.get("203.0.113.9"), None);
    for f in &findings {
        for e in f["evidence"].as_array().unwrap() {
            assert_eq!(e["format"], "pcap");
            assert!(e["line"].as_u64().unwrap() >= 1);
        }
    }
    let cov: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cov_path).unwrap()).unwrap();
    let input = &cov["inputs"][0];
    assert_eq!(input["format"], "pcap");
    assert_eq!(input["records"], 136);
    assert_eq!(input["parsed"], 87);
    assert_eq!(input["skipped"], 10);
    assert_eq!(input["rejected"], 0);
}

#[test]
fn domain_indicator_matches_tls_sni_and_http_host() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("feed.txt");
    std::fs::write(&feed, "google.de\nbits.wikimedia.org\n").unwrap();
    let inputs = [
        repo().join("tests/data/captures/zeek_tls_chrome-34-google.pcap"),
        repo().join("tests/data/captures/zeek_wikipedia.pcap"),
    ];
    let (findings, code, stderr) = hunt(&feed, &inputs, &[]);
    assert_eq!(code, 0, "{stderr}");
    let c = counts(&findings);
    // One ClientHello with SNI google.de (Suricata's tls event says the same).
    assert_eq!(c.get("google.de"), Some(&1), "{findings:?}");
    // The HTTP request with that Host and the DNS messages asking for it.
    assert_eq!(
        c.get("bits.wikimedia.org"),
        Some(&eve_mentions("bits.wikimedia.org")),
        "{findings:?}"
    );
}

#[test]
fn truncated_capture_is_an_input_error_with_earlier_packets_hunted() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::read(repo().join("tests/data/captures/zeek_wikipedia.pcap")).unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &full[..full.len() - 7]).unwrap();
    let feed = dir.path().join("feed.txt");
    std::fs::write(&feed, "141.142.2.2\n").unwrap();
    let (findings, code, stderr) = hunt(&feed, &[cut], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("truncated packet record at offset"),
        "{stderr}"
    );
    assert_eq!(counts(&findings).get("141.142.2.2"), Some(&42));
}

/// EVTX: the count is the number of records naming the address, as the
/// python `evtx` package reads them (42 records of kerbrute's 4768/4771
/// from 10.23.123.11, written `::ffff:10.23.123.11`).
#[test]
fn indicator_in_an_evtx_file() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("feed.txt");
    std::fs::write(&feed, "10.23.123.11\n192.168.9.212\n").unwrap();
    let inputs = [
        repo().join("tests/data/captures/e2m_ID4768-4771-Kerberos_user_enumeration_Kerbrute.evtx"),
        repo().join("tests/data/captures/crowdsec_windows-bf.log"),
    ];
    let (findings, code, stderr) = hunt(&feed, &inputs, &[]);
    assert_eq!(code, 0, "{stderr}");
    let c = counts(&findings);
    assert_eq!(c.get("10.23.123.11"), Some(&42));
    assert_eq!(c.get("192.168.9.212"), Some(&6));
    let formats: std::collections::BTreeSet<String> = findings
        .iter()
        .flat_map(|f| f["evidence"].as_array().unwrap().clone())
        .map(|e| e["format"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        formats,
        ["evtx", "evtx-xml"].iter().map(|s| s.to_string()).collect()
    );
}

/// NetFlow: an export file (template then data, as a collector writes
/// them) is recognised by its header; `count` is the number of flow
/// records naming the address (OpenBSD pflow: 26 records, all between
/// 192.168.0.1 and 192.168.0.17, see the spec's decode[25]).
#[test]
fn indicator_in_netflow_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes =
        std::fs::read(repo().join("tests/data/netflow/ipfix_test_openbsd_pflow_tpl.dat")).unwrap();
    bytes.extend(
        std::fs::read(repo().join("tests/data/netflow/ipfix_test_openbsd_pflow_data.dat")).unwrap(),
    );
    let input = dir.path().join("export.bin");
    std::fs::write(&input, &bytes).unwrap();
    let feed = dir.path().join("feed.txt");
    std::fs::write(&feed, "192.168.0.1\n192.168.0.17\n").unwrap();
    let (findings, code, stderr) = hunt(&feed, std::slice::from_ref(&input), &[]);
    assert_eq!(code, 0, "{stderr}");
    let c = counts(&findings);
    assert_eq!(c.get("192.168.0.1"), Some(&26), "{stderr}");
    assert_eq!(c.get("192.168.0.17"), Some(&26));
    assert!(stderr.contains("(netflow)"), "{stderr}");
}
