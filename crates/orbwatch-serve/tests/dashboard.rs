//! The dashboard over real HTTP: login sets an HttpOnly SameSite=Strict
//! cookie, pages carry a strict CSP and escape what came from logs, the
//! triage buttons need the session's CSRF token and a triage scope, a
//! dismissed finding leaves the list, failed logins are rate-limited and a
//! revoked token ends its session.

use orbwatch_detect::{Coverage, Finding};
use orbwatch_serve::{AppState, ServeConfig};
use orbwatch_store::{Store, TokenScope};
use reqwest::StatusCode;

fn finding(id: &str, indicator: &str, severity: &str, raw: &str) -> Finding {
    finding_on(id, "ioc_match", "2021-03-02", indicator, severity, raw)
}

/// A finding of `kind` first seen on `day` (YYYY-MM-DD, UTC).
fn finding_on(
    id: &str,
    kind: &str,
    day: &str,
    indicator: &str,
    severity: &str,
    raw: &str,
) -> Finding {
    serde_json::from_value(serde_json::json!({
        "id": id, "kind": kind, "first_seen": format!("{day}T00:00:00Z"),
        "last_seen": format!("{day}T01:00:00Z"), "count": 2,
        "src_ip": indicator, "dst_ip": "10.0.0.5", "peer": "10.0.0.5", "indicator": indicator,
        "indicator_type": "ipv4", "feed": "certfr", "direction": "inbound",
        "in_validity_window": true, "confidence": 80, "severity": severity, "score": 70,
        "valid_from": null, "valid_until": null, "matched_value": indicator,
        "matched_field": "src_ip", "reasons": ["listed by <b>certfr</b>"],
        "evidence": [{"file": "auth.log", "line": 3, "format": "syslog", "raw": raw}],
        "evidence_total": 1
    }))
    .unwrap()
}

const HOSTILE: &str =
    "<script>alert(1)</script><a href=\"javascript:alert(2)\">x</a> \u{202e}gnp.exe";

struct Srv {
    base: String,
    db: std::path::PathBuf,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start() -> Srv {
    start_with(|store, _| {
        let fs = vec![
            finding("d1000000000001", "45.137.21.9", "critical", HOSTILE),
            finding(
                "d2000000000002",
                "91.219.236.18",
                "low",
                "sshd: Failed password",
            ),
        ];
        let cov = Coverage {
            findings: 2,
            ..Default::default()
        };
        store
            .record_hunt(&serde_json::json!({}), &cov, &fs)
            .unwrap();
    })
    .await
}

/// A server over a store that `setup` filled (given the temporary folder).
async fn start_with(setup: impl FnOnce(&mut Store, &std::path::Path)) -> Srv {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let mut store = Store::open(&db).unwrap();
    setup(&mut store, dir.path());
    let state = AppState::new(store, ServeConfig::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(orbwatch_serve::serve(listener, state, async move {
        let _ = rx.await;
    }));
    Srv {
        base: format!("http://{addr}"),
        db,
        _dir: dir,
        _stop: tx,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Log in; the session cookie (name=value).
async fn login(c: &reqwest::Client, base: &str, token: &str) -> String {
    let r = c
        .post(format!("{base}/login"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // A login lands on the overview.
    assert_eq!(r.headers()["location"], "/");
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    set.split(';').next().unwrap().to_string()
}

/// The CSRF token in a page's triage form.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().unwrap().to_string()
}

#[tokio::test]
async fn login_triage_with_csrf_and_escaping() {
    let srv = start().await;
    let tok = Store::open(&srv.db)
        .unwrap()
        .create_token("ana", TokenScope::Triage)
        .unwrap()
        .1;
    let c = client();
    let cookie = login(&c, &srv.base, &tok).await;
    let get = |path: &str| {
        c.get(format!("{}{path}", srv.base))
            .header("cookie", &cookie)
            .send()
    };

    let list = get("/findings").await.unwrap();
    assert_eq!(list.status(), StatusCode::OK);
    let csp = list.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe"),
        "{csp}"
    );
    let html = list.text().await.unwrap();
    assert!(html.contains("Findings (2)"), "{html}");
    // The page's one <style> element is the one the CSP allows by hash,
    // byte for byte (a browser refuses it otherwise), and nothing else
    // inline is allowed.
    let style = html
        .split_once("<style>")
        .and_then(|(_, rest)| rest.split_once("</style>"))
        .map(|(css, _)| css)
        .expect("the page carries the dashboard's stylesheet");
    assert_eq!(style, orbwatch_serve::dashboard::STYLESHEET);
    assert_eq!(html.matches("<style").count(), 1, "{html}");
    let hash = {
        use base64::Engine as _;
        use sha2::Digest as _;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(style))
    };
    assert!(csp.contains(&format!("style-src 'sha256-{hash}'")), "{csp}");
    assert_eq!(html.matches("<tr class=\"finding\">").count(), 2);
    let low_only = get("/findings?min_severity=critical")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(low_only.matches("<tr class=\"finding\">").count(), 1);
    // What the filter form sends: every field, the unused ones empty.
    let (status, form) = {
        let r = get("/findings?kind=&feed=&min_severity=critical")
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    };
    assert_eq!(status, StatusCode::OK, "{form}");
    assert_eq!(form.matches("<tr class=\"finding\">").count(), 1);

    let page = get("/findings/d1000000000001")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // What came from the log is text, not markup.
    assert!(!page.contains("<script>alert(1)"), "{page}");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!page.contains("href=\"javascript:"));
    assert!(!page.contains("<b>certfr</b>") && page.contains("&lt;b&gt;certfr&lt;/b&gt;"));
    let csrf = csrf_of(&page);
    assert!(csrf.len() > 60);

    let post = |form: Vec<(&'static str, String)>| {
        c.post(format!("{}/findings/d1000000000001/triage", srv.base))
            .header("cookie", &cookie)
            .form(&form)
            .send()
    };
    // Without the CSRF token, or with another, nothing is recorded.
    let r = post(vec![("status", "false-positive".into())])
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post(vec![
        ("status", "false-positive".into()),
        ("csrf", "ow_forged".into()),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        Store::open(&srv.db)
            .unwrap()
            .decisions(None)
            .unwrap()
            .is_empty()
    );
    let r = post(vec![
        ("status", "false-positive".into()),
        ("csrf", csrf.clone()),
        ("note", "lab <i>scanner</i>".into()),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/findings/d1000000000001");
    let html = get("/findings").await.unwrap().text().await.unwrap();
    assert!(html.contains("Findings (1)"), "{html}");
    assert!(!html.contains("d1000000000001"));
    let page = get("/findings/d1000000000001")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("false-positive (dismissed)"));
    assert!(page.contains("lab &lt;i&gt;scanner&lt;/i&gt;"));

    // Revoking the token ends the session at once.
    Store::open(&srv.db).unwrap().revoke_token("ana").unwrap();
    assert_eq!(
        get("/findings").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn read_session_cannot_triage_and_logins_are_rate_limited() {
    let srv = start().await;
    let tok = Store::open(&srv.db)
        .unwrap()
        .create_token("viewer", TokenScope::Read)
        .unwrap()
        .1;
    let c = client();
    let cookie = login(&c, &srv.base, &tok).await;
    let page = c
        .get(format!("{}/findings/d2000000000002", srv.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("cannot triage"));
    let csrf = csrf_of(&page); // the logout form's
    let r = c
        .post(format!("{}/findings/d2000000000002/triage", srv.base))
        .header("cookie", &cookie)
        .form(&[("status", "benign"), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A forged cookie is no session.
    let r = c
        .get(format!("{}/findings", srv.base))
        .header("cookie", "ow_session=ow_0123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    for i in 0..5 {
        let r = c
            .post(format!("{}/login", srv.base))
            .form(&[("token", format!("ow_wrong{i}"))])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // The sixth failure in a minute, and then even the right token, wait.
    let r = c
        .post(format!("{}/login", srv.base))
        .form(&[("token", "ow_wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let r = c
        .post(format!("{}/login", srv.base))
        .form(&[("token", tok.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);

    // Logout needs the CSRF token, then the session is gone.
    let r = c
        .post(format!("{}/logout", srv.base))
        .header("cookie", &cookie)
        .form(&[("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c
        .post(format!("{}/logout", srv.base))
        .header("cookie", &cookie)
        .form(&[("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = c
        .get(format!("{}/findings", srv.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// A logged-in browser: GET a page with the session cookie, its status and body.
struct Browser {
    c: reqwest::Client,
    base: String,
    cookie: String,
}

impl Browser {
    async fn new(srv: &Srv, scope: TokenScope) -> Browser {
        let tok = Store::open(&srv.db)
            .unwrap()
            .create_token("ana", scope)
            .unwrap()
            .1;
        let c = client();
        let cookie = login(&c, &srv.base, &tok).await;
        Browser {
            c,
            base: srv.base.clone(),
            cookie,
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let r = self
            .c
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        let status = r.status();
        if status == StatusCode::OK {
            let csp = r.headers()["content-security-policy"].to_str().unwrap();
            assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        }
        (status, r.text().await.unwrap())
    }
}

/// The overview's fixture: five findings over three days and two kinds;
/// `a5` is then dismissed and `a2` confirmed.
fn overview_store(store: &mut Store) {
    let fs = vec![
        finding_on(
            "a1000000000001",
            "ioc_match",
            "2021-03-02",
            "45.137.21.9",
            "critical",
            HOSTILE,
        ),
        finding_on(
            "a2000000000002",
            "ioc_match",
            "2021-03-02",
            "91.219.236.18",
            "high",
            "x",
        ),
        finding_on(
            "a3000000000003",
            "ioc_match",
            "2021-03-04",
            "185.220.101.1",
            "low",
            "x",
        ),
        finding_on(
            "a4000000000004",
            "port_scan",
            "2021-03-04",
            "203.0.113.7",
            "medium",
            "x",
        ),
        finding_on(
            "a5000000000005",
            "port_scan",
            "2021-03-05",
            "198.51.100.9",
            "medium",
            "x",
        ),
    ];
    let cov = Coverage {
        findings: 5,
        ..Default::default()
    };
    store
        .record_hunt(&serde_json::json!({}), &cov, &fs)
        .unwrap();
    store
        .triage(
            "a5000000000005",
            orbwatch_store::TriageStatus::FalsePositive,
            None,
            "t",
            None,
        )
        .unwrap();
    store
        .triage(
            "a2000000000002",
            orbwatch_store::TriageStatus::Confirmed,
            None,
            "t",
            None,
        )
        .unwrap();
}

#[tokio::test]
async fn overview_counts_match_the_store() {
    let srv = start_with(|s, _| overview_store(s)).await;
    // Without a session: 401 and the login form.
    let r = client().get(format!("{}/", srv.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("action=\"/login\""));

    let b = Browser::new(&srv, TokenScope::Read).await;
    let (status, html) = b.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("<title>orbwatch · overview</title>"),
        "{html}"
    );
    assert!(
        html.contains(
            "<strong>3 findings need triage, 2 high or critical (4 open in all).</strong>"
        ),
        "{html}"
    );
    assert!(
        html.contains("1 dismissed by triage · 1 hunt in the store"),
        "{html}"
    );
    let row = |label: &str, n: u64| {
        format!(
            "<tr><td class=\"sev sev-{label}\"><a href=\"/findings?min_severity={label}\">{label}</a></td><td class=\"num\">{n}</td></tr>"
        )
    };
    for (sev, n) in [("critical", 1), ("high", 1), ("medium", 1), ("low", 1)] {
        assert!(html.contains(&row(sev, n)), "{sev} {n}: {html}");
    }
    assert!(html.contains("<tr><td class=\"sev sev-info\">info</td><td class=\"num\">0</td></tr>"));
    assert!(!html.contains(">none</td>"));
    for (kind, n) in [("ioc_match", 3), ("port_scan", 1)] {
        assert!(
            html.contains(&format!("<tr><td><a href=\"/findings?kind={kind}\">{kind}</a></td><td class=\"num\">{n}</td></tr>")),
            "{kind} {n}: {html}"
        );
    }
    // Two days with two open findings each (the 5th is dismissed): full bars.
    assert_eq!(html.matches("<tr class=\"day\">").count(), 2, "{html}");
    for day in ["2021-03-02", "2021-03-04"] {
        assert!(
            html.contains(&format!("<tr class=\"day\"><td>{day}</td><td class=\"num\">2</td><td><svg width=\"300\" height=\"12\" role=\"img\" aria-label=\"2\"><rect x=\"0\" y=\"0\" width=\"300\"")),
            "{day}: {html}"
        );
    }
    assert!(!html.contains("2021-03-05"));
    // The overview shows no evidence, and nothing unescaped.
    assert!(!html.contains("<script>"));
    // Every page links the others.
    for link in [
        "href=\"/\"",
        "href=\"/findings\"",
        "href=\"/feeds\"",
        "href=\"/hunts\"",
    ] {
        assert!(html.contains(link), "{link}");
    }
}

#[tokio::test]
async fn overview_of_an_empty_store_says_nothing_found() {
    let srv = start_with(|_, _| {}).await;
    let b = Browser::new(&srv, TokenScope::Read).await;
    let (status, html) = b.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<strong>Nothing found.</strong>"), "{html}");
    assert!(html.contains("0 hunts in the store"));
    assert!(html.contains("<td colspan=\"3\">no findings</td>"));
}

/// A feed `relays` imported twice: version 1 with six indicators (two
/// without window, two expired, one bounded and current, one open-ended),
/// version 2 without the domain. Its source path is hostile markup.
fn feeds_store(store: &mut Store, _dir: &std::path::Path) {
    use orbwatch_intel::value::parse_value;
    use orbwatch_intel::{FeedFormat, Indicator, ParsedFeed, Provenance};
    let t = |s: &str| Some(s.parse::<jiff::Timestamp>().unwrap());
    let all: Vec<(&str, Option<jiff::Timestamp>, Option<jiff::Timestamp>)> = vec![
        ("45.137.21.9", None, None),
        ("91.219.236.18", None, t("2020-01-01T00:00:00Z")),
        (
            "185.220.101.1",
            t("2021-01-01T00:00:00Z"),
            t("2099-01-01T00:00:00Z"),
        ),
        ("203.0.113.7", t("2021-01-01T00:00:00Z"), None),
        ("evil.example.com", None, None),
        ("198.51.100.0/24", None, t("2021-06-01T00:00:00Z")),
    ];
    let feed = |keep: &dyn Fn(&str) -> bool| ParsedFeed {
        format: Some(FeedFormat::Plain),
        indicators: all
            .iter()
            .filter(|(v, _, _)| keep(v))
            .enumerate()
            .map(|(i, (v, from, until))| {
                let mut ind = Indicator::new(
                    parse_value(v, None).unwrap(),
                    Provenance {
                        feed: "relays".into(),
                        file: "relays.txt".into(),
                        line: i as u64 + 1,
                        record_id: None,
                    },
                );
                ind.valid_from = *from;
                ind.valid_until = *until;
                ind
            })
            .collect(),
        rejected: vec![],
        skipped: vec![],
    };
    let source = "\"><img src=x onerror=alert(2)>.txt";
    let opts = orbwatch_store::ImportOptions::default();
    store
        .import_feed("relays", FeedFormat::Plain, source, &feed(&|_| true), &opts)
        .unwrap();
    store
        .import_feed(
            "relays",
            FeedFormat::Plain,
            source,
            &feed(&|v| v != "evil.example.com"),
            &opts,
        )
        .unwrap();
}

#[tokio::test]
async fn feeds_page_shows_versions_kinds_and_validity_coverage() {
    let srv = start_with(feeds_store).await;
    let r = client()
        .get(format!("{}/feeds", srv.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let b = Browser::new(&srv, TokenScope::Read).await;
    let (status, html) = b.get("/feeds").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<h1>Feeds (1)</h1>"), "{html}");
    assert!(html.contains("<h2>relays</h2>"));
    // The hostile source path is text.
    assert!(!html.contains("<img"), "{html}");
    assert!(
        html.contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;.txt"),
        "{html}"
    );
    assert!(html.contains("<dd>2 (updated "), "{html}");
    let count = |k: &str, n: u64| format!("<tr><td>{k}</td><td class=\"num\">{n}</td></tr>");
    for (k, n) in [("ipv4", 4), ("cidr", 1), ("domain", 0), ("url", 0)] {
        assert!(html.contains(&count(k, n)), "{k} {n}: {html}");
    }
    let val = |label: &str, n: u64| format!("<tr><th>{label}</th><td class=\"num\">{n}</td></tr>");
    for (label, n) in [
        ("present indicators", 5),
        ("with a validity window", 4),
        ("without (always valid)", 1),
        ("expired now", 2),
        ("no end (still valid)", 2),
    ] {
        assert!(html.contains(&val(label, n)), "{label} {n}: {html}");
    }
    assert!(
        html.contains("<tr><th>earliest start</th><td>2021-01-01T00:00:00Z</td></tr>"),
        "{html}"
    );
    assert!(
        html.contains("<tr><th>latest end</th><td>2099-01-01T00:00:00Z</td></tr>"),
        "{html}"
    );
    // Two versions: six loaded and added, then one removed and five kept.
    assert_eq!(html.matches("<tr class=\"version\">").count(), 2);
    assert!(html.contains("<td class=\"num\">6</td><td class=\"num\">6</td><td class=\"num\">0</td><td class=\"num\">0</td>"), "{html}");
    assert!(html.contains("<td class=\"num\">5</td><td class=\"num\">0</td><td class=\"num\">1</td><td class=\"num\">5</td>"), "{html}");

    // The API says the same, through the same function.
    let tok = Store::open(&srv.db)
        .unwrap()
        .create_token("api", TokenScope::Read)
        .unwrap()
        .1;
    let v: serde_json::Value = client()
        .get(format!("{}/api/v1/feeds/relays", srv.base))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["validity"]["indicators"], 5);
    assert_eq!(v["validity"]["with_window"], 4);
    assert_eq!(v["validity"]["expired"], 2);
    assert_eq!(v["versions"].as_array().unwrap().len(), 2);
    assert_eq!(v["windows"]["open_end"], 2);

    // No feed: a sentence, not an empty page.
    let empty = start_with(|_, _| {}).await;
    let b = Browser::new(&empty, TokenScope::Read).await;
    let (_, html) = b.get("/feeds").await;
    assert!(html.contains("No feed in the store"), "{html}");
}

/// Hunt 1: three inputs (one with a hostile file name), syslog over ten
/// days and zeek-tsv with six days missing between its two files, and the
/// overview's five findings; hunt 2: nothing read.
fn hunts_store(store: &mut Store, _dir: &std::path::Path) {
    use orbwatch_detect::InputCoverage;
    let t = |s: &str| Some(s.parse::<jiff::Timestamp>().unwrap());
    let input = |file: &str, format: &str, n: (u64, u64, u64), from: &str, until: &str| {
        let mut i = InputCoverage::new(file);
        i.format = format.into();
        (i.records, i.parsed, i.rejected) = n;
        i.first_time = t(from);
        i.last_time = t(until);
        i
    };
    let cov = Coverage {
        inputs: vec![
            input(
                "auth.log",
                "syslog",
                (100, 95, 5),
                "2021-03-01T00:00:00Z",
                "2021-03-10T00:00:00Z",
            ),
            input(
                "conn.log",
                "zeek-tsv",
                (50, 50, 0),
                "2021-03-01T00:00:00Z",
                "2021-03-02T00:00:00Z",
            ),
            input(
                "\"><img src=x onerror=alert(2)>.log",
                "zeek-tsv",
                (20, 18, 2),
                "2021-03-08T00:00:00Z",
                "2021-03-10T00:00:00Z",
            ),
        ],
        findings: 5,
        ..Default::default()
    };
    let fs = vec![
        finding_on(
            "a1000000000001",
            "ioc_match",
            "2021-03-02",
            "45.137.21.9",
            "critical",
            HOSTILE,
        ),
        finding_on(
            "a2000000000002",
            "ioc_match",
            "2021-03-02",
            "91.219.236.18",
            "high",
            "x",
        ),
    ];
    store
        .record_hunt(&serde_json::json!({"paths": ["auth.log"]}), &cov, &fs)
        .unwrap();
    store
        .record_hunt(&serde_json::json!({}), &Coverage::default(), &[])
        .unwrap();
}

#[tokio::test]
async fn hunts_pages_show_coverage_gaps_and_the_report() {
    let srv = start_with(hunts_store).await;
    for path in ["/hunts", "/hunts/1", "/hunts/1/report"] {
        let r = client()
            .get(format!("{}{path}", srv.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let b = Browser::new(&srv, TokenScope::Read).await;

    let (status, html) = b.get("/hunts").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<h1>Hunts (2)</h1>"), "{html}");
    assert_eq!(html.matches("<tr class=\"hunt\">").count(), 2);
    // Newest first; hunt 1: 2 findings, 3 inputs, 170 records, 163 parsed,
    // 7 rejected, 2021-03-01 to 2021-03-10, one gap.
    let h2 = html.find("href=\"/hunts/2\"").unwrap();
    let h1 = html.find("href=\"/hunts/1\"").unwrap();
    assert!(h2 < h1);
    assert!(
        html.contains("<td class=\"num\">2</td><td class=\"num\">3</td><td class=\"num\">170</td><td class=\"num\">163</td><td class=\"num\">7</td><td>2021-03-01T00:00:00Z</td><td>2021-03-10T00:00:00Z</td><td class=\"num\">1</td><td><a href=\"/hunts/1/report\">report</a>"),
        "{html}"
    );
    assert!(html.contains("<td class=\"num\">0</td><td class=\"num\">0</td><td class=\"num\">0</td><td class=\"num\">0</td><td class=\"num\">0</td><td>—</td><td>—</td><td class=\"num\">0</td>"), "{html}");

    let (status, html) = b.get("/hunts/1").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<h1>Hunt #1</h1>"));
    assert!(
        html.contains("<dd id=\"records\">170 read, 163 parsed, 7 rejected, in 3 inputs</dd>"),
        "{html}"
    );
    assert!(html.contains("<h2>Coverage gaps (1)</h2>"), "{html}");
    assert_eq!(html.matches("<tr class=\"gap\">").count(), 1);
    assert!(
        html.contains("<tr class=\"gap\"><td>zeek-tsv</td><td>2021-03-02T00:00:00Z</td><td>2021-03-08T00:00:00Z</td></tr>"),
        "{html}"
    );
    assert_eq!(html.matches("<tr class=\"input\">").count(), 3);
    assert!(!html.contains("<img"), "{html}");
    assert!(html.contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;.log"));
    assert!(html.contains("href=\"/hunts/1/report\""));

    // The API carries the same gaps.
    let tok = Store::open(&srv.db)
        .unwrap()
        .create_token("api", TokenScope::Read)
        .unwrap()
        .1;
    let v: serde_json::Value = client()
        .get(format!("{}/api/v1/hunts/1", srv.base))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["gaps"].as_array().unwrap().len(), 1);
    assert_eq!(v["gaps"][0]["format"], "zeek-tsv");
    assert_eq!(v["summary"]["id"], 1);
    assert_eq!(v["coverage"]["inputs"].as_array().unwrap().len(), 3);

    let r =
        b.c.get(format!("{}/hunts/1/report", srv.base))
            .header("cookie", &b.cookie)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-security-policy"],
        orbwatch_serve::dashboard::REPORT_CSP
    );
    let report = r.text().await.unwrap();
    assert!(report.contains("<!DOCTYPE html>") || report.contains("<!doctype html>"));
    // The report has no script of its own, and the hostile evidence is text.
    assert!(!report.to_ascii_lowercase().contains("<script"), "{report}");
    assert!(!report.contains("<img"));
    assert!(report.contains("45.137.21.9"));
    assert!(
        report.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{report}"
    );
    assert!(report.contains("hunt #1 in the store"));

    let (status, _) = b.get("/hunts/9").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = b.get("/hunts/9/report").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = b.get("/hunts/x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
