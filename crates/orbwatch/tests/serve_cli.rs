//! `orbwatch serve` and `orbwatch token` end to end: a real hunt of the
//! bundled logs (examples/logs) with the bundled CERT-FR feed
//! (examples/feeds/CERTFR-2021-IOC-003-IOC.csv, 161 IPv4 indicators) into a
//! temporary store, then the binary serving it on 127.0.0.1 with an
//! ephemeral port, spoken to over HTTP, and stopped with SIGTERM.

use std::process::Command;

#[path = "support/serve.rs"]
mod support;
use support::{orbwatch, repo, serve};

#[test]
fn serve_a_real_hunt() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let feed = repo().join("examples/feeds/CERTFR-2021-IOC-003-IOC.csv");
    let out = orbwatch(
        &db,
        &["feed", "add", "--name", "certfr", feed.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = orbwatch(&db, &["hunt", "examples/logs", "--format", "jsonl"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 4);

    // Tokens: printed once, listed without the secret.
    let read = orbwatch(
        &db,
        &["token", "create", "--name", "dash", "--scope", "read"],
    );
    assert!(read.status.success());
    let read = String::from_utf8(read.stdout).unwrap().trim().to_string();
    assert!(read.starts_with("ow_") && read.len() == 67, "{read}");
    let tri = orbwatch(
        &db,
        &["token", "create", "--name", "analyst", "--scope", "triage"],
    );
    let tri = String::from_utf8(tri.stdout).unwrap().trim().to_string();
    let dup = orbwatch(
        &db,
        &["token", "create", "--name", "dash", "--scope", "admin"],
    );
    assert_eq!(dup.status.code(), Some(2));
    let list = orbwatch(&db, &["token", "list", "--json"]);
    let list = String::from_utf8(list.stdout).unwrap();
    assert_eq!(list.lines().count(), 2);
    assert!(!list.contains(&read[3..]) && !list.contains(&tri[3..]));

    let config = dir.path().join("serve.toml");
    std::fs::write(
        &config,
        "[edl.certfr]\nfeeds = [\"certfr\"]\n\n[edl.seen]\nsighted = true\n",
    )
    .unwrap();
    let (mut child, base) = serve(&db, &config);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = reqwest::Client::new();
        let get = |path: &str, tok: &str| c.get(format!("{base}{path}")).bearer_auth(tok).send();
        let json = |path: &'static str| {
            let r = get(path, &read);
            async move { r.await.unwrap().json::<serde_json::Value>().await.unwrap() }
        };
        assert_eq!(
            c.get(format!("{base}/healthz"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        assert_eq!(
            c.get(format!("{base}/api/v1/findings"))
                .send()
                .await
                .unwrap()
                .status(),
            401
        );
        // Two pages of 3 and 1, most serious first.
        let p1 = json("/api/v1/findings?limit=3").await;
        assert_eq!(p1["total"], 4);
        let sev = |p: &serde_json::Value| -> Vec<String> {
            p["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["finding"]["severity"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(sev(&p1), ["critical", "medium", "medium"]);
        assert_eq!(p1["findings"][0]["finding"]["indicator"], "94.59.209.77");
        let cur = p1["next_cursor"].as_str().unwrap().to_string();
        let p2: serde_json::Value = get(&format!("/api/v1/findings?limit=3&cursor={cur}"), &read)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(sev(&p2), ["low"]);
        assert!(p2["next_cursor"].is_null());
        let medium = json("/api/v1/findings?min_severity=medium").await;
        assert_eq!(medium["total"], 3);
        let low_id = p2["findings"][0]["finding"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let one: serde_json::Value = get(&format!("/api/v1/findings/{low_id}"), &read)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(one["finding"]["indicator"], "2.176.234.36");
        assert!(!one["finding"]["evidence"].as_array().unwrap().is_empty());

        // Triage over the API is seen by the CLI on the same store.
        let url = format!("{base}/api/v1/findings/{low_id}/triage");
        let body = serde_json::json!({"status": "false-positive", "note": "lab"});
        let r = c
            .post(&url)
            .bearer_auth(&read)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let r = c
            .post(&url)
            .bearer_auth(&tri)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(json("/api/v1/findings").await["total"], 3);

        let hunts = json("/api/v1/hunts").await;
        assert_eq!(hunts.as_array().unwrap().len(), 1);
        assert_eq!(hunts[0]["findings"], 4);
        let hunt = json("/api/v1/hunts/1").await;
        assert!(hunt["coverage"].is_object());
        let feeds = json("/api/v1/feeds").await;
        assert_eq!(feeds[0]["name"], "certfr");
        assert_eq!(feeds[0]["counts"]["ipv4"], 161);
        let certfr = json("/api/v1/feeds/certfr").await;
        assert_eq!(certfr["versions"].as_array().unwrap().len(), 1);

        // The EDL is what `export blocklist --target plain` writes.
        let edl = get("/edl/certfr.txt", &read)
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let cli = orbwatch(&db, &["export", "blocklist", "--target", "plain"]);
        assert_eq!(edl, String::from_utf8(cli.stdout).unwrap());
        assert_eq!(edl.lines().count(), 161);
        // Sighted only: the three indicators still in play after triage
        // dismissed the fourth.
        let seen = get("/edl/seen.txt", &read)
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut seen: Vec<&str> = seen.lines().collect();
        seen.sort();
        assert_eq!(seen, ["105.154.12.165", "156.222.199.111", "94.59.209.77"]);

        let metrics = get("/metrics", &read).await.unwrap().text().await.unwrap();
        assert!(metrics.contains("orbwatch_feed_indicators{feed=\"certfr\",kind=\"ipv4\"} 161"));
        assert!(metrics.contains(
            "orbwatch_findings{kind=\"ioc_match\",severity=\"low\",suppressed=\"true\"} 1"
        ));
    });
    let cli = orbwatch(&db, &["findings", "--format", "jsonl"]);
    assert_eq!(String::from_utf8_lossy(&cli.stdout).lines().count(), 3);

    // SIGTERM: a graceful stop, exit 0.
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let code = child.wait().unwrap();
    assert!(code.success(), "{code:?}");
}

#[test]
fn clear_text_beyond_loopback_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let out = orbwatch(&db, &["serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--insecure-listen"), "{err}");
    let out = orbwatch(&db, &["serve", "--listen", "localhost"]);
    assert_eq!(out.status.code(), Some(2));
    // TLS files are checked before listening; both are needed.
    let missing = dir.path().join("none.pem");
    let m = missing.to_str().unwrap();
    let out = orbwatch(
        &db,
        &[
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--tls-cert",
            m,
            "--tls-key",
            m,
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("none.pem"), "{err}");
    let out = orbwatch(&db, &["serve", "--tls-cert", m]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key"));
}

#[test]
fn the_example_serve_unit_verifies() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        if std::env::var_os("ORBWATCH_REQUIRE_TOOLS").is_some() {
            panic!("systemd-analyze is required (ORBWATCH_REQUIRE_TOOLS) but missing");
        }
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    }
    let unit = std::fs::read_to_string(repo().join("examples/orbwatch-serve.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/orbwatch serve --config"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orbwatch-serve.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/orbwatch", env!("CARGO_BIN_EXE_orbwatch")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("orbwatch-serve.service:"), "{err}");
}

/// API conformance: schemathesis (PyPI) generates requests from the
/// OpenAPI document (every operation, on a store holding a real hunt, in
/// all its phases, the stateful one following the document's links) and
/// runs all its checks on each answer: no server error, only documented
/// status codes, content types and headers, bodies that match the schema,
/// a request the schema allows is accepted and one it forbids refused.
///
/// Two runs: every operation with a triage token (uploads get 403), then
/// the upload with an admin token. The upload's run leaves out "a
/// schema-valid request is accepted": the document can only say the body
/// is bytes, and bytes that are no feed format are refused (400), as they
/// must be.
#[test]
fn schemathesis_finds_no_server_error_and_no_answer_outside_the_schema() {
    // The command pip puts on PATH, or the module (a pyenv shim may be
    // missing until `pyenv rehash`).
    let runs = |argv: &[&str]| {
        Command::new(argv[0])
            .args(&argv[1..])
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let st: &[&str] = if runs(&["schemathesis"]) {
        &["schemathesis"]
    } else {
        &["python3", "-m", "schemathesis.cli"]
    };
    if !runs(st) {
        assert!(
            std::env::var("ORBWATCH_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "schemathesis is required (ORBWATCH_REQUIRE_TOOLS=1): pip install schemathesis"
        );
        println!("skipped: schemathesis not installed (pip install schemathesis)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let feed = repo().join("examples/feeds/CERTFR-2021-IOC-003-IOC.csv");
    assert!(
        orbwatch(
            &db,
            &["feed", "add", "--name", "certfr", feed.to_str().unwrap()]
        )
        .status
        .success()
    );
    assert!(
        orbwatch(&db, &["hunt", "examples/logs", "--format", "jsonl"])
            .status
            .success()
    );
    let tri = orbwatch(
        &db,
        &[
            "token",
            "create",
            "--name",
            "conformance",
            "--scope",
            "triage",
        ],
    );
    let tri = String::from_utf8(tri.stdout).unwrap().trim().to_string();
    let admin = orbwatch(
        &db,
        &["token", "create", "--name", "uploads", "--scope", "admin"],
    );
    let admin = String::from_utf8(admin.stdout).unwrap().trim().to_string();
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, "").unwrap();
    let (mut child, url) = serve(&db, &config);
    let run = |token: &str, extra: &[&str]| {
        let out = Command::new(st[0])
            .args(&st[1..])
            .args(["run", &format!("{url}/api/v1/openapi.json"), "--url", &url])
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .args(["--max-examples", "40", "--seed", "20211", "--no-color"])
            .args(extra)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (
            out.status.success(),
            text,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let all = run(&tri, &[]);
    let upload = run(
        &admin,
        &[
            "--include-operation-id",
            "upload_feed",
            "--exclude-checks",
            "positive_data_acceptance",
            "--phases",
            "examples,coverage,fuzzing",
        ],
    );
    let _ = child.kill();
    let _ = child.wait();
    for (ok, text, err) in [&all, &upload] {
        assert!(*ok, "schemathesis found problems:\n{text}\n{err}");
    }
    // It did test the operations (12 in the document, then the upload).
    assert!(all.1.contains("Tested: 12"), "{}", all.1);
    assert!(upload.1.contains("Tested: 1"), "{}", upload.1);
    // The uploads it made were stored (not all refused as unreadable).
    let feeds = orbwatch(&db, &["feed", "list"]);
    let feeds = String::from_utf8_lossy(&feeds.stdout);
    assert!(feeds.lines().count() > 2, "{feeds}");
}
