//! The report sinks on a fixed set of findings (`tests/data/report`):
//! golden files for STIX, CSV and MISP (compared byte for byte), the OASIS
//! STIX validator and library as oracles for the bundle, orbwatch's own
//! MISP reader for the event, escaping of hostile evidence in the HTML, and
//! the HTML as headless Chromium renders it (sections and SVG charts in the
//! DOM, a screenshot kept as a test artefact).
//!
//! Set `ORBWATCH_UPDATE_GOLDEN=1` to rewrite the golden files on purpose.

use std::path::{Path, PathBuf};
use std::process::Command;

use orbwatch_detect::{Coverage, Finding};
use orbwatch_report::{ReportFinding, ReportInput, Triage};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture() -> ReportInput {
    let text = std::fs::read_to_string(repo().join("tests/data/report/findings.jsonl")).unwrap();
    let findings = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let triage: Option<Triage> = v
                .get("triage")
                .map(|t| serde_json::from_value(t.clone()).unwrap());
            let finding: Finding = serde_json::from_value(v).unwrap();
            ReportFinding { finding, triage }
        })
        .collect();
    let cov: Coverage = serde_json::from_slice(
        &std::fs::read(repo().join("tests/data/report/coverage.json")).unwrap(),
    )
    .unwrap();
    ReportInput {
        findings,
        include_dismissed: false,
        include_internal: false,
        coverage: Some(cov),
        org: "ACME <CERT> & Co".into(),
        generated: "2021-08-03T12:00:00Z".parse().unwrap(),
        source: "tests/data/report/findings.jsonl".into(),
        routers: Vec::new(),
    }
}

fn empty() -> ReportInput {
    ReportInput {
        findings: Vec::new(),
        include_dismissed: false,
        include_internal: false,
        coverage: None,
        org: "ACME".into(),
        generated: "2021-08-03T12:00:00Z".parse().unwrap(),
        source: "an empty findings file".into(),
        routers: Vec::new(),
    }
}

fn golden(name: &str, actual: &str) {
    let path = repo().join("tests/golden").join(name);
    if std::env::var_os("ORBWATCH_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with ORBWATCH_UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{} differs from the output; if the change is intended, rerun with ORBWATCH_UPDATE_GOLDEN=1\n--- output ---\n{actual}",
        path.display()
    );
}

fn pretty(v: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap();
    s.push('\n');
    s
}

fn require_tools() -> bool {
    std::env::var("ORBWATCH_REQUIRE_TOOLS").is_ok_and(|v| v == "1")
}

/// Can python3 import these modules? Skips (or fails under
/// ORBWATCH_REQUIRE_TOOLS=1) when not.
fn python_with(modules: &[&str]) -> bool {
    let ok = Command::new("python3")
        .arg("-c")
        .arg(format!("import {}", modules.join(", ")))
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let what = format!("python3 with {}", modules.join(" and "));
        assert!(
            !require_tools(),
            "{what} is required (ORBWATCH_REQUIRE_TOOLS=1)"
        );
        println!("skipped: {what} not installed");
    }
    ok
}

fn write_tmp(name: &str, text: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-outputs");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn csv_golden() {
    let input = fixture();
    let mut out = Vec::new();
    orbwatch_report::write_report_csv(input.exported(), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    // One row per finding not dismissed (8 of 9), after the header.
    let mut r = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(r.records().count(), 8);
    golden("report.csv", &text);

    let mut out = Vec::new();
    orbwatch_report::write_report_csv(empty().exported(), &mut out).unwrap();
    assert_eq!(String::from_utf8(out).unwrap().lines().count(), 1);
}

#[test]
fn stix_golden_and_shape() {
    let input = fixture();
    let b = orbwatch_report::stix::bundle(&input);
    let text = pretty(&b);
    golden("report.stix.json", &text);
    // Same input, same bytes.
    assert_eq!(pretty(&orbwatch_report::stix::bundle(&input)), text);

    let objs = b["objects"].as_array().unwrap();
    let of = |t: &str| objs.iter().filter(|o| o["type"] == t).collect::<Vec<_>>();
    // 8 exported findings, each with one observed-data and one sighting.
    assert_eq!(of("sighting").len(), 8);
    assert_eq!(of("observed-data").len(), 8);
    assert_eq!(of("identity").len(), 1);
    // 6 feed indicators (4 CERT-FR addresses, 1 STIX CIDR, 1 STIX hash) +
    // 2 created for behaviour sources.
    assert_eq!(of("indicator").len(), 8);
    assert!(orbwatch_report::stix::not_expressible(&input).is_empty());
    let file = of("file");
    assert_eq!(file.len(), 1);
    assert_eq!(
        file[0]["hashes"]["SHA-256"],
        "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea"
    );
    assert_eq!(of("relationship").len(), 2);
    let ids: Vec<&str> = of("indicator")
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    // The STIX feed's own id is kept; CERT-FR's MISP attribute uuid too.
    assert!(ids.contains(&"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"));
    assert!(ids.contains(&"indicator--c1dc1b1d-7ea0-45ad-afea-d5751c3dbd95"));
    let cidr = of("indicator")
        .into_iter()
        .find(|o| o["id"] == "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f")
        .unwrap();
    assert_eq!(
        cidr["pattern"],
        "[ipv4-addr:value ISSUBSET '203.0.113.0/24']"
    );
    let s = of("sighting")
        .into_iter()
        .find(|s| s["sighting_of_ref"] == "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f")
        .unwrap();
    assert_eq!(s["count"], 3);
    assert_eq!(s["first_seen"], "2021-06-10T08:00:00.000Z");
    assert_eq!(s["last_seen"], "2021-06-12T09:30:00.000Z");
    assert_eq!(s["where_sighted_refs"][0], of("identity")[0]["id"]);
    let od = of("observed-data")
        .into_iter()
        .find(|o| o["id"] == s["observed_data_refs"][0])
        .unwrap();
    let refs: Vec<&str> = od["object_refs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(refs.iter().any(|r| r.starts_with("network-traffic--")));
    assert_eq!(
        refs.iter().filter(|r| r.starts_with("ipv4-addr--")).count(),
        2
    );
    // The dismissed IPv6 finding is not exported; with include_dismissed it is.
    assert!(!text.contains("2001:db8::66"));
    let mut all = fixture();
    all.include_dismissed = true;
    assert!(pretty(&orbwatch_report::stix::bundle(&all)).contains("ipv6-addr--"));
}

/// Run the OASIS validator and the `stix2` library on a bundle: no errors,
/// every object parses, and every SCO id is the one `stix2` computes.
fn oasis_check(path: &Path) {
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            r#"
import sys, json
from stix2validator import validate_file, print_results
import stix2
r = validate_file(sys.argv[1])
print_results(r)
if not r.is_valid:
    sys.exit(3)
doc = json.load(open(sys.argv[1]))
b = stix2.parse(doc, allow_custom=False)
assert len(b.objects) == len(doc["objects"])
for o in doc["objects"]:
    if o["type"] in ("ipv4-addr", "ipv6-addr", "domain-name", "url"):
        cls = {"ipv4-addr": stix2.IPv4Address, "ipv6-addr": stix2.IPv6Address,
               "domain-name": stix2.DomainName, "url": stix2.URL}[o["type"]]
        assert cls(value=o["value"]).id == o["id"], o
    if o["type"] in ("file", "x509-certificate"):
        cls = {"file": stix2.File, "x509-certificate": stix2.X509Certificate}[o["type"]]
        assert cls(hashes=o["hashes"]).id == o["id"], o
    if o["type"] == "network-traffic":
        kw = {k: o[k] for k in ("src_ref", "dst_ref", "protocols") if k in o}
        assert stix2.NetworkTraffic(**kw).id == o["id"], o
print("objects", len(b.objects))
"#,
        )
        .arg(path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{}: the OASIS validator or stix2 rejected it\n{stdout}\n{stderr}",
        path.display()
    );
    assert!(!stdout.contains("[X]"), "validator errors:\n{stdout}");
}

#[test]
fn stix_passes_the_oasis_validator() {
    if !python_with(&["stix2validator", "stix2"]) {
        return;
    }
    let p = write_tmp(
        "bundle.json",
        &pretty(&orbwatch_report::stix::bundle(&fixture())),
    );
    oasis_check(&p);
    let mut all = fixture();
    all.include_dismissed = true;
    let p = write_tmp(
        "bundle-all.json",
        &pretty(&orbwatch_report::stix::bundle(&all)),
    );
    oasis_check(&p);
    // Nothing to report: still a valid bundle (the identity alone).
    let e = orbwatch_report::stix::bundle(&empty());
    assert_eq!(e["objects"].as_array().unwrap().len(), 1);
    oasis_check(&write_tmp("bundle-empty.json", &pretty(&e)));
}

#[test]
fn misp_golden_and_round_trip() {
    let input = fixture();
    let sightings = orbwatch_report::misp::sightings(&input);
    golden("report.misp-sightings.json", &pretty(&sightings));
    let arr = sightings.as_array().unwrap();
    // Every finding with a value MISP can hold, dismissed ones as false
    // positives (type 1).
    assert_eq!(arr.len(), 9);
    let fp: Vec<_> = arr.iter().filter(|s| s["type"] == "1").collect();
    assert_eq!(fp.len(), 1);
    assert_eq!(fp[0]["values"][0], "2001:db8::66");
    let first = &arr[0];
    assert_eq!(first["values"][0], "105.154.12.165");
    // last_seen 2021-03-02T03:40:55Z
    assert_eq!(first["timestamp"], 1614656455);
    assert_eq!(first["source"], "orbwatch (ACME <CERT> & Co)");

    let event = orbwatch_report::misp::event(&input);
    let text = pretty(&event);
    golden("report.misp-event.json", &text);
    let attrs = event["Event"]["Attribute"].as_array().unwrap();
    // 8 exported findings; the distributed brute force has 3 sources.
    assert_eq!(attrs.len(), 10);
    assert!(
        attrs
            .iter()
            .all(|a| a["Sighting"].as_array().unwrap().len() == 1)
    );

    // orbwatch's own MISP reader takes the event back: one indicator per
    // attribute, same values, the actor galaxy tag understood.
    let opts = orbwatch_intel::ReadOptions::new("roundtrip");
    let mut parsed = orbwatch_intel::ParsedFeed::default();
    orbwatch_intel::readers::misp::read_event_file(
        text.as_bytes(),
        "event.json",
        &opts,
        &mut parsed,
    )
    .unwrap();
    assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
    let mut got: Vec<String> = parsed
        .indicators
        .iter()
        .map(|i| i.value.to_string())
        .collect();
    got.sort();
    let mut want: Vec<String> = attrs
        .iter()
        .map(|a| a["value"].as_str().unwrap().to_string())
        .collect();
    want.sort();
    assert_eq!(got, want);
    assert!(
        parsed
            .indicators
            .iter()
            .any(|i| i.tags.actors.contains(&"APT31".to_string()))
    );

    let spread = arr
        .iter()
        .find(|s| s["values"].as_array().unwrap().len() == 3)
        .unwrap();
    assert_eq!(spread["values"][2], "198.51.100.3");

    let e = orbwatch_report::misp::event(&empty());
    assert_eq!(e["Event"]["Attribute"].as_array().unwrap().len(), 0);
    assert_eq!(
        orbwatch_report::misp::sightings(&empty()),
        serde_json::json!([])
    );
}

/// PyMISP (MISP's own Python library) loads the event and the sighting
/// bodies: attribute types it knows, sightings attached, dates understood.
#[test]
fn misp_loads_in_pymisp() {
    if !python_with(&["pymisp"]) {
        return;
    }
    let input = fixture();
    let event = write_tmp("event.json", &pretty(&orbwatch_report::misp::event(&input)));
    let bodies = write_tmp(
        "sightings.json",
        &pretty(&orbwatch_report::misp::sightings(&input)),
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            r#"
import sys, json
from pymisp import MISPEvent, MISPSighting
e = MISPEvent()
e.load_file(sys.argv[1])
types = e.describe_types["types"]
assert len(e.attributes) == 10, len(e.attributes)
for a in e.attributes:
    assert a.type in types, a.type
    assert a.category in e.describe_types["categories"], a.category
    assert len(a.sightings) == 1
    assert a.sightings[0].type in ("0", "1")
    assert a.first_seen is not None and a.last_seen >= a.first_seen
for b in json.load(open(sys.argv[2])):
    s = MISPSighting()
    s.from_dict(**b)
    assert s.type in ("0", "1") and int(s.timestamp) > 0 and s.values
print("ok")
"#,
        )
        .arg(&event)
        .arg(&bodies)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "PyMISP rejected the output:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn html_escapes_hostile_text() {
    let html = orbwatch_report::html::render(&fixture());
    // Nothing from the findings becomes markup.
    assert!(!html.to_lowercase().contains("<script"));
    assert!(!html.contains("<img"));
    assert!(!html.contains("<b>edge</b>"));
    assert!(html.contains("&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;"));
    assert!(html.contains("fw/&lt;b&gt;edge&lt;/b&gt;.log:41"));
    assert!(html.contains("ACME &lt;CERT&gt; &amp; Co"));
    // Control characters and bidi overrides are neutralised.
    assert!(!html.contains('\u{1b}'));
    assert!(!html.contains('\u{202e}'));
    // No fetches: nothing loaded from anywhere.
    assert!(!html.contains("src=\""));
    assert!(!html.contains("href=\"http"));
    assert!(!html.contains("@import"));
    // Gaps from coverage: in words per log type, then each period.
    assert!(html.contains("netfilter: 2 periods, 46 days uncovered"));
    assert!(html.contains(
        "<tr><td>netfilter</td><td>2021-03-02</td><td>2021-04-15</td><td class=\"num\">44</td></tr>"
    ));
    // A confirmed behaviour finding makes the verdict.
    assert!(html.contains("Compromise activity confirmed: 1 finding"));
}

#[test]
fn html_nothing_to_report() {
    let html = orbwatch_report::html::render(&empty());
    assert!(html.contains("Nothing to report"));
    assert!(html.contains("id=\"method\""));
    assert!(html.ends_with("</html>\n"));
}

/// A router's story as the store gives it: one step.
fn step(
    seq: i64,
    router: &str,
    at: &str,
    action: &str,
    step: &str,
    ok: bool,
    detail: serde_json::Value,
) -> orbwatch_store::RouterStep {
    orbwatch_store::RouterStep {
        seq,
        router: router.into(),
        at: at.parse().unwrap(),
        action: action.into(),
        step: step.into(),
        ok,
        hunt_id: None,
        detail: orbwatch_store::RouterStepDetail::read(step, detail),
    }
}

/// The routers section: where each router stands, its last reboot's
/// steps in words (what the reboot cleared, what persisted, the proof and
/// each health check), names escaped; no section (and no contents entry)
/// without routers.
#[test]
fn html_shows_the_routers_history() {
    use serde_json::json;
    let name = "lyon<b>";
    let recent = vec![
        step(
            1,
            name,
            "2026-11-08T02:00:00Z",
            "reboot",
            "precheck",
            true,
            json!({"uptime": 86400}),
        ),
        step(
            2,
            name,
            "2026-11-08T02:00:05Z",
            "reboot",
            "sent",
            true,
            json!({"command": "reboot"}),
        ),
        step(
            3,
            name,
            "2026-11-08T02:01:10Z",
            "reboot",
            "returned",
            true,
            json!({"after_secs": 65.0}),
        ),
        step(
            4,
            name,
            "2026-11-08T02:01:12Z",
            "reboot",
            "proof",
            true,
            json!({"uptime_before": 86400.0, "uptime_after": 12.0, "boot_id_changed": true}),
        ),
        step(
            5,
            name,
            "2026-11-08T02:01:15Z",
            "reboot",
            "health",
            false,
            json!([{"check": "ssh", "ok": true, "detail": "answers"},
                    {"check": "dns", "ok": false, "detail": "example.org did not resolve"}]),
        ),
        step(
            6,
            name,
            "2026-11-08T02:01:20Z",
            "reboot",
            "reaudit",
            false,
            json!({"cleared": ["listening"], "persistent": ["persistence", "hash_indicator"], "new": []}),
        ),
    ];
    let mut input = fixture();
    input.routers = vec![orbwatch_report::RouterStory {
        standing: orbwatch_store::RouterStanding {
            router: name.into(),
            steps: 6,
            failed_steps: 2,
            last_audit: None,
            last_reboot: Some("2026-11-08T02:00:05Z".parse().unwrap()),
            last: recent[5].clone(),
        },
        recent,
    }];
    let html = orbwatch_report::html::render(&input);
    assert!(html.contains(r##"<a href="#routers">Your routers</a>"##));
    assert!(html.contains("<section id=\"routers\">"));
    assert!(!html.contains("lyon<b>"), "the name is escaped");
    assert!(html.contains("lyon&lt;b&gt;: latest 6 steps"));
    assert!(html.contains(
        "cleared by the reboot: listening; persistent: persistence, hash_indicator; new: none"
    ));
    assert!(html.contains("uptime 86400.0 s before, 12.0 s after; boot id changed"));
    assert!(html.contains("ssh ok (answers); dns FAILED (example.org did not resolve)"));
    assert!(html.contains("reboot reaudit <span class=\"badge bad\">FAILED</span>"));
    // Typed details in words; a detail of a shape this build does not
    // know (an older writer's pre-check) as its JSON, not an error.
    assert!(html.contains("ran `reboot`"));
    assert!(html.contains("answered again after 65 s"));
    assert!(html.contains("<td class=\"small\">{&quot;uptime&quot;:86400}</td>"));

    let plain = orbwatch_report::html::render(&fixture());
    assert!(
        !plain.contains("id=\"routers\"") && !plain.contains("#routers"),
        "no routers, no section"
    );
}

/// Render in headless Chromium: the main sections and the SVG charts must
/// be in the DOM; a screenshot is kept in the target folder.
#[test]
fn html_in_headless_chromium() {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(chromium) = chromium else {
        assert!(
            !require_tools(),
            "chromium is required (ORBWATCH_REQUIRE_TOOLS=1)"
        );
        println!("skipped: chromium not installed");
        return;
    };
    let html = orbwatch_report::html::render(&fixture());
    let page = write_tmp("report.html", &html);
    let profile = tempfile::tempdir().unwrap();
    let base = |cmd: &mut Command| {
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()));
    };
    let mut cmd = Command::new(chromium);
    base(&mut cmd);
    let out = cmd
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    for id in [
        "verdict",
        "figures",
        "summary",
        "timeline",
        "top-indicators",
        "top-sources",
        "hosts-table",
        "behaviour-table",
        "coverage",
        "gaps",
        "feeds-table",
        "inputs-table",
        "findings",
        "dismissed-table",
        "method",
    ] {
        assert!(
            dom.contains(&format!("id=\"{id}\"")),
            "section {id} missing from the DOM"
        );
    }
    for chart in ["timeline-chart", "coverage-chart"] {
        let at = dom
            .find(&format!("id=\"{chart}\""))
            .unwrap_or_else(|| panic!("chart {chart} missing"));
        let svg_start = dom[..at].rfind('<').unwrap();
        assert!(
            dom[svg_start..].starts_with("<svg"),
            "{chart} is not an SVG"
        );
    }
    // Bars in the timeline: one rect per (day, series) with sightings:
    // CERT-FR on 4 days, the STIX feed on 3 (04-10, 06-10, 06-12), brute
    // force on 1, distributed brute force on 1.
    let timeline = &dom[dom.find("id=\"timeline-chart\"").unwrap()..];
    let timeline = &timeline[..timeline.find("</svg>").unwrap()];
    assert_eq!(timeline.matches("<rect").count(), 9);
    // The hostile evidence stayed text.
    assert!(!dom.to_lowercase().contains("<script"));

    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report.png");
    let _ = std::fs::remove_file(&shot);
    let mut cmd = Command::new(chromium);
    base(&mut cmd);
    let out = cmd
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1280,3000")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "no screenshot written");
    println!("screenshot: {}", shot.display());
}

/// An implant found on the organisation's own router is a finding about a
/// victim: its address must never go out as a hostile one in STIX or
/// MISP, not even with `--include-internal`.
#[test]
fn router_audits_are_never_shared_as_hostile_addresses() {
    const ROUTER: &str = "81.2.69.142";
    let mut input = fixture();
    input.include_internal = true;
    let audit: Finding = serde_json::from_value(serde_json::json!({
        "id": "r0ut3r", "kind": "router_audit",
        "first_seen": "2021-08-01T10:00:00Z", "last_seen": "2021-08-01T10:00:00Z",
        "count": 1, "src_ip": ROUTER, "dst_ip": null,
        "severity": "critical", "score": 90,
        "reasons": ["process running from /tmp listening on 7777 (xlogin banner)"],
        "targets": ["branch-lyon"],
        "evidence": [], "evidence_total": 0
    }))
    .unwrap();
    let shared_before = input.shared().count();
    input.findings.push(ReportFinding {
        finding: audit,
        triage: None,
    });
    assert_eq!(input.shared().count(), shared_before);
    assert_eq!(input.own_routers_left_out().len(), 1);
    for (what, text) in [
        ("STIX", orbwatch_report::stix::bundle(&input).to_string()),
        (
            "MISP event",
            orbwatch_report::misp::event(&input).to_string(),
        ),
        (
            "MISP sightings",
            orbwatch_report::misp::sightings(&input).to_string(),
        ),
    ] {
        assert!(!text.contains(ROUTER), "{what} names the router: {text}");
    }
}
