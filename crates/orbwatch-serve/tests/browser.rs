//! The dashboard in a real browser: headless Chromium driven by Selenium
//! (Debian's `chromium`, `chromium-driver` and `python3-selenium`) against
//! a real `serve` on 127.0.0.1.
//!
//! The browser logs in through the form with a triage token, opens the
//! overview, filters the findings list, opens a finding whose evidence is
//! hostile markup, marks it false-positive with the page's button, sees it
//! leave the default list, and opens the feeds, hunts, hunt and report
//! pages. It checks in the DOM that the hostile evidence is text (no
//! `<script>` or `<img>` element), that no JavaScript alert ever opened,
//! and reads the console for Content-Security-Policy violations. A
//! screenshot of each page goes to `target/dashboard-screens/`.
//!
//! Without the tools the test prints `skipped: ...` and passes, unless
//! `ORBWATCH_REQUIRE_TOOLS=1`, where it fails.

use std::path::{Path, PathBuf};

use orbwatch_detect::{Coverage, Finding, InputCoverage};
use orbwatch_serve::{AppState, ServeConfig};
use orbwatch_store::{Store, TokenScope};

/// Evidence that would run script if it reached the page as markup.
const HOSTILE: &str = "<script>alert(1)</script>\"><img src=x onerror=alert(2)><a href=\"javascript:alert(4)\">open</a> \u{202e}gnp.exe";
/// How the page shows it: as text, the right-to-left override (which
/// would make `gnp.exe` read `exe.png`) replaced by U+FFFD.
const HOSTILE_SHOWN: &str = "<script>alert(1)</script>\"><img src=x onerror=alert(2)><a href=\"javascript:alert(4)\">open</a> \u{fffd}gnp.exe";
const HOSTILE_ID: &str = "b1000000000001";
const OTHER_ID: &str = "b2000000000002";

/// A tool's path, or `None` after printing why the test is skipped (a
/// panic with `ORBWATCH_REQUIRE_TOOLS=1`).
fn require(what: &str, found: Option<PathBuf>) -> Option<PathBuf> {
    if found.is_some() {
        return found;
    }
    if std::env::var("ORBWATCH_REQUIRE_TOOLS").as_deref() == Ok("1") {
        panic!("{what} not installed and ORBWATCH_REQUIRE_TOOLS=1");
    }
    println!("skipped: {what} not installed");
    None
}

fn on_path(names: &[&str]) -> Option<PathBuf> {
    for dir in ["/usr/bin", "/bin", "/usr/local/bin"] {
        for n in names {
            let p = Path::new(dir).join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// A Python that can import selenium: Debian's first (python3-selenium
/// installs there), then whatever `python3` is.
fn python_with_selenium() -> Option<PathBuf> {
    ["/usr/bin/python3", "python3"]
        .iter()
        .map(PathBuf::from)
        .find(|p| {
            std::process::Command::new(p)
                .args(["-c", "import selenium.webdriver"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

fn finding(id: &str, indicator: &str, severity: &str, raw: &str) -> Finding {
    serde_json::from_value(serde_json::json!({
        "id": id, "kind": "ioc_match", "first_seen": "2021-03-02T00:00:00Z",
        "last_seen": "2021-03-02T01:00:00Z", "count": 2,
        "src_ip": indicator, "dst_ip": "10.0.0.5", "peer": "10.0.0.5", "indicator": indicator,
        "indicator_type": "ipv4", "feed": "relays", "direction": "inbound",
        "in_validity_window": true, "confidence": 80, "severity": severity, "score": 70,
        "valid_from": null, "valid_until": null, "matched_value": indicator,
        "matched_field": "src_ip", "reasons": [format!("listed by relays {raw}")],
        "evidence": [{"file": "auth.log", "line": 3, "format": "syslog", "raw": raw}],
        "evidence_total": 1
    }))
    .unwrap()
}

/// Two findings of one hunt (the hostile one critical), a feed.
fn fill(store: &mut Store) {
    use orbwatch_intel::value::parse_value;
    use orbwatch_intel::{FeedFormat, Indicator, ParsedFeed, Provenance};
    let mut input = InputCoverage::new("auth.log");
    input.format = "syslog".into();
    (input.records, input.parsed, input.rejected) = (10, 9, 1);
    input.first_time = Some("2021-03-01T00:00:00Z".parse().unwrap());
    input.last_time = Some("2021-03-03T00:00:00Z".parse().unwrap());
    let cov = Coverage {
        inputs: vec![input],
        findings: 2,
        ..Default::default()
    };
    let fs = vec![
        finding(HOSTILE_ID, "45.137.21.9", "critical", HOSTILE),
        finding(OTHER_ID, "91.219.236.18", "low", "sshd: Failed password"),
    ];
    store
        .record_hunt(&serde_json::json!({"paths": ["auth.log"]}), &cov, &fs)
        .unwrap();
    let feed = ParsedFeed {
        format: Some(FeedFormat::Plain),
        indicators: ["45.137.21.9", "91.219.236.18"]
            .iter()
            .enumerate()
            .map(|(i, v)| {
                Indicator::new(
                    parse_value(v, None).unwrap(),
                    Provenance {
                        feed: "relays".into(),
                        file: "relays.txt".into(),
                        line: i as u64 + 1,
                        record_id: None,
                    },
                )
            })
            .collect(),
        rejected: vec![],
        skipped: vec![],
    };
    store
        .import_feed(
            "relays",
            FeedFormat::Plain,
            "relays.txt",
            &feed,
            &orbwatch_store::ImportOptions::default(),
        )
        .unwrap();
}

/// The Selenium script: arguments base URL, token, screenshot folder,
/// chromium, chromedriver; prints one JSON object as its last line.
const SCRIPT: &str = r##"
import json, os, sys, traceback
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

base, token, screens, chromium, chromedriver, hostile_id = sys.argv[1:7]
out = {"error": None, "alerts": [], "console": [], "pages": {}}
opts = webdriver.ChromeOptions()
opts.binary_location = chromium
for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
          "--window-size=1280,1400", "--no-first-run"]:
    opts.add_argument(a)
opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
driver = None

def no_alert(step):
    # switch_to.alert must raise NoAlertPresentException: no script ran.
    try:
        a = driver.switch_to.alert
        out["alerts"].append([step, a.text])
        a.accept()
    except NoAlertPresentException:
        pass

def go(element):
    # Click something that navigates, and wait for the next page: a mark
    # set on the old window must be gone and the new document loaded
    # (reading too early sees a document in between, with no h1). While
    # the page changes, Chromium may answer with errors: they mean "not
    # yet".
    driver.execute_script("window.__orbwatch_old_page = true")
    element.click()
    WebDriverWait(driver, 20, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.execute_script(
            "return window.__orbwatch_old_page === undefined && document.readyState === 'complete'"
        )
    )

def loaded(d):
    WebDriverWait(d, 20, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )

def page(step, path=None):
    if path is not None:
        driver.get(base + path)
    loaded(driver)
    no_alert(step)
    h1 = driver.find_elements(By.TAG_NAME, "h1")
    info = {
        "url": driver.current_url[len(base):],
        "title": driver.title,
        "h1": h1[0].text if h1 else None,
        "scripts": len(driver.find_elements(By.TAG_NAME, "script")),
        "imgs": len(driver.find_elements(By.TAG_NAME, "img")),
        "js_links": len(driver.find_elements(By.CSS_SELECTOR, "[href^='javascript:' i], [src^='javascript:' i], [action^='javascript:' i]")),
        "rlo": "\u202e" in driver.page_source,
        "rows": len(driver.find_elements(By.CSS_SELECTOR, "tr.finding")),
        # "flex" only if the browser applied the dashboard's stylesheet
        # (a CSP that did not allow it would leave the default "block").
        "header_display": driver.execute_script(
            "var h = document.querySelector('body > header'); return h ? getComputedStyle(h).display : null"),
    }
    out["pages"][step] = info
    driver.save_screenshot(os.path.join(screens, step + ".png"))
    for e in driver.get_log("browser"):
        out["console"].append([step, e.get("level"), e.get("message")])
    return info

try:
    driver = webdriver.Chrome(service=Service(chromedriver), options=opts)
    driver.set_page_load_timeout(30)
    page("login", "/login")
    driver.find_element(By.NAME, "token").send_keys(token)
    go(driver.find_element(By.CSS_SELECTOR, "form[action='/login'] button"))
    page("overview")
    out["pages"]["overview"]["verdict"] = driver.find_element(By.ID, "verdict").text

    go(driver.find_element(By.LINK_TEXT, "findings"))
    page("findings")
    Select(driver.find_element(By.NAME, "min_severity")).select_by_visible_text("critical")
    go(driver.find_element(By.CSS_SELECTOR, "form[action='/findings'] button"))
    page("findings-critical")

    go(driver.find_element(By.LINK_TEXT, hostile_id))
    info = page("finding")
    info["evidence"] = driver.find_element(By.CSS_SELECTOR, "tr.evidence code").text
    info["status"] = driver.find_element(By.ID, "status").text
    go(driver.find_element(By.CSS_SELECTOR, "button[name='status'][value='false-positive']"))
    info = page("finding-dismissed")
    info["status"] = driver.find_element(By.ID, "status").text

    info = page("findings-after", "/findings")
    info["has_hostile"] = hostile_id in driver.page_source
    info = page("findings-dismissed-shown", "/findings?show_suppressed=true")
    info["has_hostile"] = hostile_id in driver.page_source

    go(driver.find_element(By.LINK_TEXT, "feeds"))
    page("feeds")
    go(driver.find_element(By.LINK_TEXT, "hunts"))
    page("hunts")
    go(driver.find_element(By.LINK_TEXT, "#1"))
    page("hunt")
    go(driver.find_element(By.LINK_TEXT, "HTML report of this hunt"))
    page("report")
    # Control: a page whose own CSP blocks its inline script must show up
    # in the console, or the check above proves nothing.
    driver.get("data:text/html,<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'\"><h1>control</h1><script>alert(3)</script>")
    no_alert("control")
    for e in driver.get_log("browser"):
        out["console"].append(["control", e.get("level"), e.get("message")])
except Exception:
    out["error"] = traceback.format_exc()
finally:
    if driver is not None:
        try:
            driver.quit()
        except Exception:
            pass
print(json.dumps(out))
"##;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_logs_in_triages_and_sees_no_script_run() {
    let Some(chromium) = require("chromium", on_path(&["chromium", "chromium-browser"])) else {
        return;
    };
    let Some(chromedriver) = require("chromedriver (chromium-driver)", on_path(&["chromedriver"]))
    else {
        return;
    };
    let Some(python) = require(
        "python3 with selenium (python3-selenium)",
        python_with_selenium(),
    ) else {
        return;
    };

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let mut store = Store::open(&db).unwrap();
    fill(&mut store);
    let token = store.create_token("browser", TokenScope::Triage).unwrap().1;
    let state = AppState::new(store, ServeConfig::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(orbwatch_serve::serve(listener, state, async move {
        let _ = rx.await;
    }));

    // The workspace's target folder (not committed).
    let screens = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/dashboard-screens");
    std::fs::create_dir_all(&screens).unwrap();
    let script = dir.path().join("dashboard.py");
    std::fs::write(&script, SCRIPT).unwrap();
    let args: Vec<String> = vec![
        script.display().to_string(),
        base.clone(),
        token,
        screens.display().to_string(),
        chromium.display().to_string(),
        chromedriver.display().to_string(),
        HOSTILE_ID.to_string(),
    ];
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .args(&args)
            .env("HOME", std::env::temp_dir())
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let _ = tx.send(());
    server.await.unwrap().unwrap();

    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    let last = stdout.lines().last().unwrap_or("");
    let out: serde_json::Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("the script printed no JSON ({e}): {stdout}\n{stderr}"));
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
    assert!(
        out["error"].is_null(),
        "the browser script failed: {}",
        out["error"]
    );
    assert_eq!(
        out["alerts"],
        serde_json::json!([]),
        "a JavaScript alert fired"
    );
    let console = out["console"].as_array().unwrap();
    let is_csp = |e: &serde_json::Value| {
        let m = e[2].as_str().unwrap_or("");
        m.contains("Content Security Policy") || m.contains("Refused to")
    };
    let (control, pages): (Vec<_>, Vec<_>) = console.iter().partition(|e| e[0] == "control");
    assert!(
        control.iter().any(|e| is_csp(e)),
        "the control page's CSP violation did not reach the console log: {control:?}"
    );
    let csp: Vec<_> = pages.iter().filter(|e| is_csp(e)).collect();
    assert!(csp.is_empty(), "CSP violations: {csp:?}");

    let p = &out["pages"];
    let expect = [
        ("login", "orbwatch · log in", "Log in"),
        ("overview", "orbwatch · overview", "Overview"),
        ("findings", "orbwatch · findings", "Findings (2)"),
        ("findings-critical", "orbwatch · findings", "Findings (1)"),
        ("finding-dismissed", "", ""),
        ("findings-after", "orbwatch · findings", "Findings (1)"),
        (
            "findings-dismissed-shown",
            "orbwatch · findings",
            "Findings (2)",
        ),
        ("feeds", "orbwatch · feeds", "Feeds (1)"),
        ("hunts", "orbwatch · hunts", "Hunts (1)"),
        ("hunt", "orbwatch · hunt 1", "Hunt #1"),
    ];
    for (step, title, h1) in expect {
        if !title.is_empty() {
            assert_eq!(p[step]["title"], title, "{step}");
            assert_eq!(p[step]["h1"], h1, "{step}");
            assert_eq!(
                p[step]["header_display"], "flex",
                "{step}: stylesheet not applied"
            );
        }
        // The dashboard has no script and no image at all.
        assert_eq!(p[step]["scripts"], 0, "{step}");
        assert_eq!(p[step]["imgs"], 0, "{step}");
        assert_eq!(p[step]["js_links"], 0, "{step}");
        assert_eq!(p[step]["rlo"], false, "{step}");
    }
    assert_eq!(p["overview"]["url"], "/");
    assert_eq!(
        p["overview"]["verdict"],
        "2 findings need triage, 1 high or critical (2 open in all)."
    );
    assert_eq!(p["findings"]["rows"], 2);
    assert_eq!(p["findings-critical"]["rows"], 1);
    // The hostile evidence is in the DOM as text, exactly as logged.
    let f = &p["finding"];
    assert_eq!(f["title"], format!("orbwatch · finding {HOSTILE_ID}"));
    assert_eq!(f["evidence"], HOSTILE_SHOWN);
    assert_eq!(f["scripts"], 0);
    assert_eq!(f["imgs"], 0);
    assert_eq!(f["status"], "new");
    assert_eq!(
        p["finding-dismissed"]["url"],
        format!("/findings/{HOSTILE_ID}")
    );
    assert_eq!(
        p["finding-dismissed"]["status"],
        "false-positive (dismissed)"
    );
    assert_eq!(p["findings-after"]["rows"], 1);
    assert_eq!(p["findings-after"]["has_hostile"], false);
    assert_eq!(p["findings-dismissed-shown"]["rows"], 2);
    assert_eq!(p["findings-dismissed-shown"]["has_hostile"], true);
    let report = &p["report"];
    assert_eq!(report["url"], "/hunts/1/report");
    assert!(
        report["title"]
            .as_str()
            .unwrap_or("")
            .starts_with("ORB hunt report"),
        "{report}"
    );
    assert_eq!(report["scripts"], 0);
    assert_eq!(report["imgs"], 0);
    for step in [
        "login", "overview", "findings", "finding", "feeds", "hunts", "hunt", "report",
    ] {
        let shot = screens.join(format!("{step}.png"));
        let len = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
        assert!(len > 1000, "no screenshot {}", shot.display());
    }
}
