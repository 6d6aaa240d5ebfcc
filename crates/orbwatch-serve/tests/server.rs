//! The server over real HTTP: each test starts `orbwatch_serve::serve` on
//! 127.0.0.1 with an ephemeral port and a temporary store, and talks to
//! it with reqwest.

use std::net::SocketAddr;

use orbwatch_detect::Coverage;
use orbwatch_intel::value::parse_value;
use orbwatch_intel::{FeedFormat, Indicator, ParsedFeed, Provenance};
use orbwatch_serve::{Access, AppState, ServeConfig, routes};
use orbwatch_store::{ImportOptions, Store, TokenScope};
use reqwest::StatusCode;

mod support;
use support::{Server, finding, start};

/// Five findings of one hunt: ids f1…f5, severities critical, high,
/// medium, medium, low.
fn five_findings(s: &mut Store) {
    let fs = vec![
        finding("f1000000000001", "45.137.21.9", "10.0.0.5", "critical", 95),
        finding("f2000000000002", "91.219.236.18", "10.0.0.5", "high", 80),
        finding("f3000000000003", "91.219.236.19", "10.0.0.6", "medium", 60),
        finding("f4000000000004", "91.219.236.20", "10.0.0.6", "medium", 55),
        finding("f5000000000005", "185.220.101.4", "10.0.0.7", "low", 20),
    ];
    let cov = Coverage {
        findings: 5,
        ..Default::default()
    };
    s.record_hunt(&serde_json::json!({"paths": ["auth.log"]}), &cov, &fs)
        .unwrap();
}

fn plain_feed(values: &[&str]) -> ParsedFeed {
    ParsedFeed {
        format: Some(FeedFormat::Plain),
        indicators: values
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
    }
}

#[tokio::test]
async fn every_route_without_a_token_is_401() {
    let srv = start("", |s, _| five_findings(s)).await;
    let read = srv.token("reader", TokenScope::Read);
    let c = reqwest::Client::new();
    let table = routes();
    assert!(table.len() >= 12, "the route table lost routes");
    let mut checked = 0;
    for r in &table {
        let url = srv.url(r.example);
        let req = || c.request(r.method.clone(), &url);
        match r.access {
            Access::Public => {
                let st = req().send().await.unwrap().status();
                if r.method == reqwest::Method::GET {
                    assert_eq!(st, StatusCode::OK, "{}", r.path);
                } else {
                    // POST /login without a form.
                    assert!(
                        st.is_client_error() && st != StatusCode::UNAUTHORIZED,
                        "{}",
                        r.path
                    );
                }
            }
            _ => {
                let none = req().send().await.unwrap();
                assert_eq!(
                    none.status(),
                    StatusCode::UNAUTHORIZED,
                    "{} {}",
                    r.method,
                    r.path
                );
                assert!(none.headers().contains_key("www-authenticate"));
                let wrong = req().bearer_auth("ow_0000").send().await.unwrap();
                assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{}", r.path);
                // A real token's text in the wrong scheme is no token.
                let basic_on_bearer = req().basic_auth("x", Some(&read)).send().await.unwrap();
                let want = if matches!(r.access, Access::BearerOrBasic(_)) {
                    // EDLs take basic auth; this one has no list `orb`.
                    StatusCode::NOT_FOUND
                } else {
                    StatusCode::UNAUTHORIZED
                };
                assert_eq!(basic_on_bearer.status(), want, "{}", r.path);
                checked += 1;
            }
        }
    }
    let public = table.iter().filter(|r| r.access == Access::Public).count();
    assert_eq!(public, 3, "/healthz and the login form only");
    assert_eq!(checked, table.len() - public);
    srv.stop().await;
}

#[tokio::test]
async fn read_token_cannot_triage_and_triage_suppresses() {
    let srv = start("", |s, _| five_findings(s)).await;
    let read = srv.token("reader", TokenScope::Read);
    let triage = srv.token("analyst", TokenScope::Triage);
    let c = reqwest::Client::new();
    let url = srv.url("/api/v1/findings/f5000000000005/triage");
    let body = serde_json::json!({"status": "false-positive", "note": "partner relay"});
    let r = c
        .post(&url)
        .bearer_auth(&read)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Nothing was recorded.
    assert!(srv.store().decisions(None).unwrap().is_empty());
    let r = c
        .post(&url)
        .bearer_auth(&triage)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let d: serde_json::Value = r.json().await.unwrap();
    assert_eq!(d["status"], "false-positive");
    assert_eq!(d["author"], "token:analyst");
    // Hidden from the list, shown with show_suppressed.
    let page: serde_json::Value = c
        .get(srv.url("/api/v1/findings"))
        .bearer_auth(&read)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 4);
    let one: serde_json::Value = c
        .get(srv.url("/api/v1/findings/f5000000000005"))
        .bearer_auth(&read)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["suppressed"], true);
    assert_eq!(one["decisions"].as_array().unwrap().len(), 1);
    assert_eq!(
        one["finding"]["evidence"][0]["raw"],
        "<script>alert(1)</script> \u{202e}gnp.exe"
    );
    // Bad bodies are 400/422, not 500.
    for bad in [
        serde_json::json!({"status": "gone"}),
        serde_json::json!({"status": "new", "extra": 1}),
        serde_json::json!({"note": "no status"}),
    ] {
        let r = c
            .post(&url)
            .bearer_auth(&triage)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{bad}: {}", r.status());
    }
    let r = c
        .post(&url)
        .bearer_auth(&triage)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    // Unknown finding and a prefix are 404.
    for id in ["ffffffffffff", "f50000"] {
        let r = c
            .post(srv.url(&format!("/api/v1/findings/{id}/triage")))
            .bearer_auth(&triage)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{id}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn revoked_token_stops_working_at_once() {
    let srv = start("", |s, _| five_findings(s)).await;
    let tok = srv.token("ci", TokenScope::Read);
    let c = reqwest::Client::new();
    let get = || c.get(srv.url("/api/v1/hunts")).bearer_auth(&tok).send();
    assert_eq!(get().await.unwrap().status(), StatusCode::OK);
    // Revoked from another connection, as `orbwatch token revoke` does.
    assert!(srv.store().revoke_token("ci").unwrap());
    assert_eq!(get().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    srv.stop().await;
}

#[tokio::test]
async fn oversized_body_is_413() {
    let srv = start("body_limit = 1024\n", |s, _| five_findings(s)).await;
    let tok = srv.token("analyst", TokenScope::Triage);
    let c = reqwest::Client::new();
    let note = "x".repeat(2000);
    let r = c
        .post(srv.url("/api/v1/findings/f1000000000001/triage"))
        .bearer_auth(&tok)
        .json(&serde_json::json!({"status": "confirmed", "note": note}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Without Content-Length (chunked), the limit holds too: a raw
    // HTTP/1.1 request, since the body must arrive in pieces.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/findings/f1000000000001/triage HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let first = b"{\"status\":\"confirmed\",\"note\":\"";
    sock.write_all(format!("{:x}\r\n", first.len()).as_bytes())
        .await
        .unwrap();
    sock.write_all(first).await.unwrap();
    sock.write_all(b"\r\n").await.unwrap();
    for _ in 0..4 {
        // The server may answer and close before all chunks are sent.
        if sock
            .write_all(format!("{:x}\r\n{}\r\n", 1000, "y".repeat(1000)).as_bytes())
            .await
            .is_err()
        {
            break;
        }
    }
    let _ = sock.write_all(b"2\r\n\"}\r\n0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = sock.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(srv.store().decisions(None).unwrap().is_empty());
    srv.stop().await;
}

#[tokio::test]
async fn findings_are_paged_with_exact_counts() {
    let srv = start("", |s, _| five_findings(s)).await;
    let tok = srv.token("reader", TokenScope::Read);
    let c = reqwest::Client::new();
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = srv.url("/api/v1/findings?limit=2");
        if let Some(cur) = &cursor {
            url.push_str(&format!("&cursor={cur}"));
        }
        let page: serde_json::Value = c
            .get(&url)
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(page["total"], 5);
        pages += 1;
        for f in page["findings"].as_array().unwrap() {
            ids.push(f["finding"]["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        ids,
        [
            "f1000000000001",
            "f2000000000002",
            "f3000000000003",
            "f4000000000004",
            "f5000000000005"
        ]
    );
    let filtered: serde_json::Value = c
        .get(srv.url("/api/v1/findings?min_severity=medium&min_score=56"))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(filtered["total"], 3);
    for bad in [
        "kind=nope",
        "min_severity=huge",
        "since=2021",
        "cursor=zz",
        "status=x",
        "min_score=101",
        "limit=-1",
    ] {
        let r = c
            .get(srv.url(&format!("/api/v1/findings?{bad}")))
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    srv.stop().await;
}

/// GET a findings page as JSON.
async fn list_page(srv: &Server, tok: &str, query: &str) -> serde_json::Value {
    let r = reqwest::Client::new()
        .get(srv.url(&format!("/api/v1/findings?{query}")))
        .bearer_auth(tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{query}");
    r.json().await.unwrap()
}

fn page_ids(page: &serde_json::Value) -> Vec<String> {
    page["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["finding"]["id"].as_str().unwrap().to_string())
        .collect()
}

/// The API's cursor holds across a triage decision (over the API) and a
/// new hunt between two pages: the next pages continue after the last
/// finding read, the dismissed one drops out, a new finding less serious
/// than the page read is listed and a more serious one is not, and the
/// total follows each change at once.
#[tokio::test]
async fn the_cursor_holds_across_triage_and_new_findings() {
    let srv = start("", |s, _| five_findings(s)).await;
    let reader = srv.token("reader", TokenScope::Read);
    let triager = srv.token("triager", TokenScope::Triage);
    let p1 = list_page(&srv, &reader, "limit=2").await;
    assert_eq!(page_ids(&p1), ["f1000000000001", "f2000000000002"]);
    assert_eq!(p1["total"], 5);
    let cur = p1["next_cursor"].as_str().unwrap().to_string();

    let r = reqwest::Client::new()
        .post(srv.url("/api/v1/findings/f3000000000003/triage"))
        .bearer_auth(&triager)
        .json(&serde_json::json!({"status": "false-positive"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let arrivals = vec![
        finding("f0000000000000", "45.137.21.10", "10.0.0.8", "critical", 99),
        finding("f4500000000045", "91.219.236.21", "10.0.0.9", "medium", 50),
    ];
    srv.store()
        .record_hunt(&serde_json::json!({}), &Coverage::default(), &arrivals)
        .unwrap();

    let p2 = list_page(&srv, &reader, &format!("limit=2&cursor={cur}")).await;
    assert_eq!(page_ids(&p2), ["f4000000000004", "f4500000000045"]);
    // 5 - 1 dismissed + 2 new.
    assert_eq!(p2["total"], 6);
    let cur = p2["next_cursor"].as_str().unwrap().to_string();
    let p3 = list_page(&srv, &reader, &format!("limit=2&cursor={cur}")).await;
    assert_eq!(page_ids(&p3), ["f5000000000005"]);
    assert!(p3["next_cursor"].is_null());
    // From the start, the new critical finding leads.
    let all = list_page(&srv, &reader, "").await;
    assert_eq!(page_ids(&all)[0], "f0000000000000");
    assert_eq!(all["total"], 6);
    srv.stop().await;
}

/// Reads do not wait for the writing connection: with its lock held (a
/// long write), lists, metrics and the token check still answer.
#[tokio::test]
async fn reads_do_not_queue_behind_the_writer() {
    let srv = start("", |s, _| five_findings(s)).await;
    let reader = srv.token("reader", TokenScope::Read);
    let held = srv.state.store.clone();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let _guard = held.lock().unwrap();
        locked_tx.send(()).unwrap();
        let _ = release_rx.recv();
    });
    locked_rx.recv().unwrap();
    let asks = ["/api/v1/findings?limit=2", "/metrics", "/api/v1/hunts"];
    let answered = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let c = reqwest::Client::new();
        for path in asks {
            let r = c
                .get(srv.url(path))
                .bearer_auth(&reader)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{path}");
        }
    })
    .await;
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    assert!(answered.is_ok(), "a read waited for the writer's lock");
    srv.stop().await;
}

const EDL_CONFIG: &str = r#"
[edl.orb]
allowlist = ["{dir}/allow.txt"]
internal = ["172.16.0.0/12"]

[edl.small]
max_entries = 2
"#;

fn edl_store(s: &mut Store, dir: &std::path::Path) {
    std::fs::write(dir.join("allow.txt"), "185.220.101.4 # partner exit\n").unwrap();
    let feed = plain_feed(&[
        "45.137.21.9",
        "91.219.236.0/24",
        "10.1.2.3",
        "192.168.5.5",
        "172.16.4.0/24",
        "8.8.8.8",
        "185.220.101.4",
        "8.8.8.0/28",
        "fd00::1",
    ]);
    s.import_feed(
        "relays",
        FeedFormat::Plain,
        "relays.txt",
        &feed,
        &ImportOptions::default(),
    )
    .unwrap();
}

#[tokio::test]
async fn edl_is_guarded_and_answers_304_when_unchanged() {
    let srv = start(EDL_CONFIG, edl_store).await;
    let tok = srv.token("firewall", TokenScope::Read);
    let c = reqwest::Client::new();
    // Palo Alto and FortiGate send basic auth.
    let r = c
        .get(srv.url("/edl/orb.txt"))
        .basic_auth("pan", Some(&tok))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let body = r.text().await.unwrap();
    // RFC 1918, the --internal 172.16/12, ULA, the default allowlist's
    // 8.8.8.8 (cut out of 8.8.8.0/28) and the allowlist file's entry are
    // gone.
    assert_eq!(
        body.lines().collect::<Vec<_>>(),
        [
            "8.8.8.0/29",
            "8.8.8.9",
            "8.8.8.10/31",
            "8.8.8.12/30",
            "45.137.21.9",
            "91.219.236.0/24"
        ]
    );
    let again = c
        .get(srv.url("/edl/orb.txt"))
        .bearer_auth(&tok)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    assert!(again.text().await.unwrap().is_empty());
    let other = c
        .get(srv.url("/edl/orb.txt"))
        .bearer_auth(&tok)
        .header("if-none-match", "\"0000\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    // Over max_entries: refused, not cut.
    let small = c
        .get(srv.url("/edl/small.txt"))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), StatusCode::SERVICE_UNAVAILABLE);
    for missing in ["/edl/nope.txt", "/edl/orb.csv"] {
        let r = c
            .get(srv.url(missing))
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{missing}");
    }
    // The API's blocklist in another target, through the same guard.
    let nft = c
        .get(srv.url("/api/v1/blocklist?target=nftables"))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(nft.status(), StatusCode::OK);
    let nft = nft.text().await.unwrap();
    assert!(nft.contains("45.137.21.9"), "{nft}");
    assert!(
        !nft.contains("10.1.2.3") && !nft.contains("192.168.5.5"),
        "{nft}"
    );
    let bad = c
        .get(srv.url("/api/v1/blocklist?target=cisco"))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    // Served from the cache until the store changes: one build of this list so far
    // (three pulls; `small` was built once too); a new version of the feed builds it again, and the
    // ETag changes with the body.
    assert_eq!(srv.state.edl_cache.builds(), 2);
    {
        let mut s = Store::open(&srv.db).unwrap();
        s.import_feed(
            "relays",
            FeedFormat::Plain,
            "relays.txt",
            &plain_feed(&["45.137.21.9", "91.219.237.5"]),
            &ImportOptions::default(),
        )
        .unwrap();
    }
    let changed = c
        .get(srv.url("/edl/orb.txt"))
        .bearer_auth(&tok)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    assert_ne!(changed.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(
        changed.text().await.unwrap().lines().collect::<Vec<_>>(),
        ["45.137.21.9", "91.219.237.5"]
    );
    assert_eq!(srv.state.edl_cache.builds(), 3);
    srv.stop().await;
}

#[tokio::test]
async fn metrics_and_openapi() {
    let srv = start(EDL_CONFIG, |s, d| {
        edl_store(s, d);
        five_findings(s);
    })
    .await;
    let tok = srv.token("prom", TokenScope::Read);
    let c = reqwest::Client::new();
    let text = c
        .get(srv.url("/metrics"))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "orbwatch_findings{kind=\"ioc_match\",severity=\"critical\",suppressed=\"false\"} 1",
        "orbwatch_findings{kind=\"ioc_match\",severity=\"medium\",suppressed=\"false\"} 2",
        "orbwatch_feeds 1",
        "orbwatch_feed_indicators{feed=\"relays\",kind=\"ipv4\"} 5",
        "orbwatch_feed_indicators{feed=\"relays\",kind=\"cidr\"} 3",
        "orbwatch_hunts 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
    let doc: serde_json::Value = c
        .get(srv.url("/api/v1/openapi.json"))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    // Blank optional parameters are taken as absent, and the document says
    // so; a required one (the blocklist's target) may not be blank.
    let params = |path: &str| {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .clone()
    };
    let since = params("/api/v1/findings")
        .into_iter()
        .find(|p| p["name"] == "since")
        .unwrap();
    assert_eq!(since["allowEmptyValue"], true);
    let target = params("/api/v1/blocklist")
        .into_iter()
        .find(|p| p["name"] == "target")
        .unwrap();
    assert!(target.get("allowEmptyValue").is_none());
    // Each link names an operation of the document, from an answer that
    // has one.
    let ops: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|i| i.as_object().unwrap().values())
        .filter_map(|o| o["operationId"].as_str())
        .collect();
    let mut links = 0;
    for item in doc["paths"].as_object().unwrap().values() {
        for link in item["get"]["responses"]["200"]["links"]
            .as_object()
            .into_iter()
            .flat_map(|l| l.values())
        {
            assert!(
                ops.contains(&link["operationId"].as_str().unwrap()),
                "{link}"
            );
            links += 1;
        }
    }
    assert_eq!(links, 6);
    // Every API route of the table is documented.
    for r in routes() {
        if r.path.starts_with("/api/v1/") && r.path != "/api/v1/openapi.json" {
            let m = r.method.as_str().to_ascii_lowercase();
            assert!(
                doc["paths"][r.path][&m].is_object(),
                "{} {} not in the OpenAPI document",
                m,
                r.path
            );
        }
    }
    srv.stop().await;
}

#[test]
fn clear_text_listen_is_loopback_only() {
    use orbwatch_serve::check_listen;
    let any: SocketAddr = "0.0.0.0:8440".parse().unwrap();
    assert!(check_listen(any, false, false).is_err());
    assert!(check_listen(any, false, true).is_ok());
    assert!(check_listen(any, true, false).is_ok());
    assert!(check_listen("127.0.0.1:8440".parse().unwrap(), false, false).is_ok());
    assert!(check_listen("[::1]:8440".parse().unwrap(), false, false).is_ok());
    assert!(check_listen("[::]:8440".parse().unwrap(), false, false).is_err());
}

#[test]
fn bad_configs_are_refused_with_the_reason() {
    let p = std::path::Path::new("serve.toml");
    for (text, says) in [
        ("[edl.\"a b\"]\n", "list name"),
        ("[edl.x]\nmin_confidence = 150\n", "0 to 100"),
        ("[edl.x]\nfeeds = \"certfr\"\n", "serve.toml"),
        ("listne = \"x\"\n", "unknown field"),
        ("body_limit = 0\n", "body_limit"),
    ] {
        let e = ServeConfig::parse(text, p).unwrap_err().to_string();
        assert!(e.contains(says), "{text:?}: {e}");
    }
    assert!(ServeConfig::parse("", p).is_ok());
}

#[test]
fn the_example_config_parses() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/serve.toml");
    let cfg = ServeConfig::load(&path).unwrap();
    assert_eq!(cfg.listen.as_deref(), Some("127.0.0.1:8440"));
    assert_eq!(cfg.edl.keys().collect::<Vec<_>>(), ["certfr", "seen"]);
    assert_eq!(cfg.edl["certfr"].max_entries, Some(50000));
    assert!(cfg.edl["seen"].sighted && cfg.edl["seen"].from_findings);
    // Its guards build (no allowlist file is needed).
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("s.db")).unwrap();
    assert!(AppState::new(store, cfg).is_ok());
}

/// `POST /api/v1/feeds/{name}`: an admin token adds a version of a feed
/// from the body (format detected, or given), as `feed add` does; read
/// and triage tokens get 403; junk gets 400 with the reason; a body over
/// `upload_limit` gets 413 while other routes keep `body_limit`.
#[tokio::test]
async fn an_admin_uploads_a_feed_and_others_cannot() {
    let srv = start("upload_limit = 4096\n", |_, _| {}).await;
    let admin = srv.token("ops", TokenScope::Admin);
    let triage = srv.token("analyst", TokenScope::Triage);
    let c = reqwest::Client::new();
    let post = |tok: &str, path: &str, body: Vec<u8>| {
        c.post(srv.url(path))
            .bearer_auth(tok)
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
    };
    let v1 = b"# relays\n45.137.21.9\n91.219.236.0/24\nnot-an-address!\n".to_vec();
    let r = post(&triage, "/api/v1/feeds/relays", v1.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post(&admin, "/api/v1/feeds/relays?file=relays.txt", v1)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let j: serde_json::Value = r.json().await.unwrap();
    assert_eq!(j["import"]["version"], 1, "{j:#}");
    assert_eq!(j["import"]["loaded"], 2, "{j:#}");
    let r = post(
        &admin,
        "/api/v1/feeds/relays?format=plain",
        b"45.137.21.9\n185.220.101.4\n".to_vec(),
    )
    .await
    .unwrap();
    let j: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (
            &j["import"]["version"],
            &j["import"]["added"],
            &j["import"]["removed"]
        ),
        (
            &serde_json::json!(2),
            &serde_json::json!(1),
            &serde_json::json!(1)
        ),
        "{j:#}"
    );
    // The feed as the API and the store see it.
    let f: serde_json::Value = c
        .get(srv.url("/api/v1/feeds/relays"))
        .bearer_auth(&triage)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(f["versions"].as_array().map(Vec::len), Some(2), "{f:#}");
    assert_eq!(srv.store().indicators(Some("relays")).unwrap().len(), 2);
    // Junk, a bad format, a bad name (leading space), too large.
    let r = post(&admin, "/api/v1/feeds/junk", vec![0u8, 1, 2, 0, 0, 7])
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = post(
        &admin,
        "/api/v1/feeds/x?format=cisco",
        b"1.2.3.4\n".to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = post(&admin, "/api/v1/feeds/%20a", b"45.137.21.9\n".to_vec())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let big = "45.137.21.9\n".repeat(500).into_bytes();
    let r = post(&admin, "/api/v1/feeds/big", big).await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(srv.store().feed("big").unwrap().is_none());
    srv.stop().await;
}

/// The routers' history over the API: each router's standing, one
/// router's steps paged by `after` until `next_after` is absent, and 404
/// for a router the store never saw.
#[tokio::test]
async fn routers_and_their_history_over_the_api() {
    let srv = start("", |s, _| {
        let tx = s.write_transaction().unwrap();
        let steps = [
            ("lyon", "audit", "audited", true, r#"{"findings":2}"#),
            ("paris", "audit", "audited", true, r#"{"findings":0}"#),
            ("lyon", "reboot", "precheck", true, r#"{"uptime":86400}"#),
            ("lyon", "reboot", "sent", true, "{}"),
            ("lyon", "reboot", "returned", true, r#"{"after_secs":65.0}"#),
            (
                "lyon",
                "reboot",
                "reaudit",
                false,
                r#"{"cleared":["listening"],"persistent":["persistence"],"new":[]}"#,
            ),
        ];
        for (i, (router, action, step, ok, detail)) in steps.iter().enumerate() {
            tx.execute(
                "INSERT INTO router_history (router, at, action, step, ok, hunt_id, detail_json) VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6)",
                orbwatch_store::rusqlite::params![
                    router,
                    format!("2026-11-08T02:00:{i:02}.000000000Z"),
                    action,
                    step,
                    ok,
                    detail
                ],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    })
    .await;
    let read = srv.token("reader", TokenScope::Read);
    let c = reqwest::Client::new();
    let get = |path: &str| c.get(srv.url(path)).bearer_auth(&read).send();

    let r = get("/api/v1/routers").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let routers: serde_json::Value = r.json().await.unwrap();
    let names: Vec<&str> = routers
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["router"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lyon", "paris"]);
    assert_eq!(routers[0]["steps"], 5);
    assert_eq!(routers[0]["failed_steps"], 1);
    assert_eq!(routers[0]["last"]["step"], "reaudit");
    assert_eq!(routers[0]["last"]["detail"]["persistent"][0], "persistence");
    assert_eq!(routers[0]["last_reboot"], "2026-11-08T02:00:03Z");

    let mut seen = Vec::new();
    let mut path = "/api/v1/routers/lyon/history?limit=2".to_string();
    loop {
        let r = get(&path).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let page: serde_json::Value = r.json().await.unwrap();
        assert_eq!(page["router"], "lyon");
        let steps = page["steps"].as_array().unwrap();
        assert!(steps.len() <= 2);
        seen.extend(
            steps
                .iter()
                .map(|s| s["step"].as_str().unwrap().to_string()),
        );
        match page["next_after"].as_i64() {
            Some(after) => path = format!("/api/v1/routers/lyon/history?limit=2&after={after}"),
            None => break,
        }
    }
    assert_eq!(seen, ["audited", "precheck", "sent", "returned", "reaudit"]);

    let r = get("/api/v1/routers/nowhere/history").await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let e: serde_json::Value = r.json().await.unwrap();
    assert!(e.to_string().contains("no router `nowhere`"), "{e}");
    let r = get("/api/v1/routers/lyon/history?after=x").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    srv.stop().await;
}
