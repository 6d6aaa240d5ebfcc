//! `POST /api/v1/feeds/{name}` streamed to a temporary file: over real
//! HTTP on 127.0.0.1, with a temporary store. The body is spooled in the
//! store's folder as it arrives and stored by `orbwatch-feedload`, the
//! code of `orbwatch feed add`; the spool file goes away on every path.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use orbwatch_serve::api::UPLOAD_SPOOL_PREFIX;
use orbwatch_serve::{AppState, ServeConfig};
use orbwatch_store::Store;
use reqwest::StatusCode;
use sha2::Digest as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod support;
use support::{Server, finding};

async fn start(config: &str) -> Server {
    support::start(config, |_, _| {}).await
}

/// A plain list of `n` distinct public addresses (one per line).
fn address_lines(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        out.extend_from_slice(
            format!("45.{}.{}.{}\n", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff).as_bytes(),
        );
    }
    out
}

/// The start of a raw HTTP/1.1 upload of a chunked body.
fn chunked_head(name: &str, tok: &str) -> String {
    format!(
        "POST /api/v1/feeds/{name}?format=plain HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\n\
         Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
}

/// Wait until `cond` holds, for at most 10 s.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(10), "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A body of exactly `upload_limit` bytes is stored; one byte more is
/// 413, with or without Content-Length (chunked: counted as it arrives),
/// and leaves no spool file and no feed.
#[tokio::test]
async fn the_limit_is_counted_as_the_body_arrives() {
    const LIMIT: usize = 1 << 20;
    let srv = start(&format!("upload_limit = {LIMIT}\n")).await;
    let tok = srv.admin();
    let c = reqwest::Client::new();
    // Exactly the limit: addresses, then a comment that pads to it.
    let mut exact = address_lines(60_000);
    exact.extend_from_slice(b"# ");
    exact.resize(LIMIT - 1, b'x');
    exact.push(b'\n');
    assert_eq!(exact.len(), LIMIT);
    let r = c
        .post(srv.url("/api/v1/feeds/exact?format=plain"))
        .bearer_auth(&tok)
        .body(exact)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let j: serde_json::Value = r.json().await.unwrap();
    assert_eq!(j["import"]["loaded"], 60_000, "{j:#}");

    // One byte more, with Content-Length: refused on the header, before
    // any of the body is sent.
    let mut sock = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/feeds/over?format=plain HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        LIMIT + 1
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = sock.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // Chunked: the server only learns the size as the chunks come.
    let lines = address_lines(200_000); // 2.6 MB
    let answer = chunked_upload(srv.addr, &tok, "chunked", lines.chunks(64 * 1024), None).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("upload_limit"), "{answer}");

    eventually("the spool files are removed", || {
        srv.spool_files().is_empty()
    })
    .await;
    let store = srv.store();
    assert!(store.feed("over").unwrap().is_none());
    assert!(store.feed("chunked").unwrap().is_none());
    assert!(store.feed("exact").unwrap().is_some());
    srv.stop().await;
}

/// A client that goes away halfway through its upload: the spool file
/// (seen while the body arrives) is removed and no feed is stored.
#[tokio::test]
async fn a_client_that_goes_away_midway_leaves_no_file_and_no_feed() {
    let srv = start("").await;
    let tok = srv.admin();
    let lines = address_lines(400_000); // 5.3 MB
    let mut sock = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/feeds/halfway?format=plain HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        lines.len()
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(&lines[..lines.len() / 2]).await.unwrap();
    sock.flush().await.unwrap();
    // The body is being written to its spool file.
    eventually("a spool file appears while the body arrives", || {
        !srv.spool_files().is_empty()
    })
    .await;
    drop(sock);
    eventually("the spool file is removed once the client left", || {
        srv.spool_files().is_empty()
    })
    .await;
    // And nothing came of it, also a little later.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(srv.spool_files().is_empty());
    assert!(srv.store().feed("halfway").unwrap().is_none());
    // The server still takes uploads.
    let r = reqwest::Client::new()
        .post(srv.url("/api/v1/feeds/after?format=plain"))
        .bearer_auth(&tok)
        .body(address_lines(10))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    srv.stop().await;
}

/// Real feeds uploaded through the API are stored as `feed add` stores
/// them (the same library call on the same file, into a second store):
/// the same format, counts, rejects, skips, values with the file name and
/// line they came from (the name the client gave, not the spool file's),
/// and the SHA-256 of the file. CERT-FR CSV (a line format), a STIX 2.1 bundle and a MISP
/// event (streamed JSON documents), STIX JSON lines (read whole).
#[tokio::test]
async fn an_upload_stores_what_feed_add_stores() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let files = [
        "examples/feeds/CERTFR-2021-IOC-003-IOC.csv",
        "tests/data/feeds-stix-misp/stix21-bundle.json",
        "tests/data/feeds-stix-misp/misp-event.json",
        "tests/data/feeds-stix-misp/stix21-attack-lines.jsonl",
    ];
    let srv = start("").await;
    let tok = srv.admin();
    let c = reqwest::Client::new();
    let local_dir = tempfile::tempdir().unwrap();
    let mut local = Store::open(local_dir.path().join("local.db")).unwrap();
    for rel in files {
        let path = repo.join(rel);
        let bytes = std::fs::read(&path).unwrap();
        let file_name = path.file_name().unwrap().to_string_lossy().into_owned();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let r = c
            .post(srv.url(&format!("/api/v1/feeds/{name}?file={file_name}")))
            .bearer_auth(&tok)
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "{rel}: {}",
            r.text().await.unwrap()
        );
        let j: serde_json::Value = r.json().await.unwrap();

        let opts = orbwatch_intel::ReadOptions::new(&name);
        let added = orbwatch_feedload::load_feed_file(
            &mut local,
            &orbwatch_feedload::FeedFile {
                path: &path,
                name: &name,
                format: None,
                opts: &opts,
                label: &file_name,
                source: &file_name,
            },
        )
        .unwrap();
        let sha: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(added.sha256, sha, "{rel}");

        let served = srv.store().feed(&name).unwrap().unwrap();
        let kept = local.feed(&name).unwrap().unwrap();
        assert!(served.total() > 0, "{rel}: {served:?}");
        assert_eq!(served.source_sha256.as_deref(), Some(sha.as_str()), "{rel}");
        assert_eq!(
            (
                &served.format,
                &served.counts,
                served.rejected,
                served.skipped
            ),
            (&kept.format, &kept.counts, kept.rejected, kept.skipped),
            "{rel}"
        );
        assert_eq!(j["import"]["loaded"], added.report.loaded, "{rel}: {j:#}");
        assert_eq!(j["rejected"], added.rejected.len(), "{rel}: {j:#}");
        assert_eq!(j["skipped"], added.skipped.len(), "{rel}: {j:#}");
        let values = |s: &Store| {
            let mut v: Vec<String> = s
                .indicators(Some(&name))
                .unwrap()
                .into_iter()
                .map(|i| {
                    let p = &i.indicator.provenance;
                    format!("{:?} {}:{}", i.indicator.value, p.file, p.line)
                })
                .collect();
            v.sort();
            v
        };
        assert_eq!(values(&srv.store()), values(&local), "{rel}");
    }
    assert!(srv.spool_files().is_empty());
    srv.stop().await;
}

/// An empty body is refused, and the feed keeps its indicators (stored,
/// it would be a version that drops them all).
#[tokio::test]
async fn an_empty_body_is_refused_and_the_feed_is_kept() {
    let srv = start("").await;
    let tok = srv.admin();
    let c = reqwest::Client::new();
    let r = c
        .post(srv.url("/api/v1/feeds/f"))
        .bearer_auth(&tok)
        .body(address_lines(3))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = c
        .post(srv.url("/api/v1/feeds/f"))
        .bearer_auth(&tok)
        .body(Vec::new())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let j: serde_json::Value = r.json().await.unwrap();
    assert!(j["error"].as_str().unwrap().contains("empty"), "{j}");
    let feed = srv.store().feed("f").unwrap().unwrap();
    assert_eq!((feed.version, feed.total()), (1, 3));
    assert!(srv.spool_files().is_empty());
    srv.stop().await;
}

/// Send a chunked plain-list upload in `pieces` chunks, `pause` apart;
/// the server's answer.
async fn slow_upload(
    srv: &Server,
    tok: &str,
    name: &str,
    pieces: usize,
    pause: Duration,
) -> String {
    let lines = address_lines(3000);
    let chunks = lines.chunks(lines.len() / pieces + 1);
    chunked_upload(srv.addr, tok, name, chunks, Some(pause)).await
}

/// Send `chunks` as the chunked body of an upload to feed `name`, with
/// `pause` between them; the server's answer. The server may answer and
/// close before every chunk is sent: sending stops there.
async fn chunked_upload<'a>(
    addr: SocketAddr,
    tok: &str,
    name: &str,
    chunks: impl Iterator<Item = &'a [u8]>,
    pause: Option<Duration>,
) -> String {
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    sock.write_all(chunked_head(name, tok).as_bytes())
        .await
        .unwrap();
    for (i, chunk) in chunks.enumerate() {
        if let (true, Some(pause)) = (i > 0, pause) {
            tokio::time::sleep(pause).await;
        }
        let mut piece = format!("{:x}\r\n", chunk.len()).into_bytes();
        piece.extend_from_slice(chunk);
        piece.extend_from_slice(b"\r\n");
        if sock.write_all(&piece).await.is_err() {
            break;
        }
    }
    let _ = sock.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = sock.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// Uploads have their own timeout: one that takes longer than
/// `request_timeout_secs` is stored; one cut by `upload_timeout_secs` gets
/// 408 and leaves no spool file and no feed.
#[tokio::test]
async fn uploads_have_their_own_timeout_and_leave_nothing_when_cut() {
    let srv = start("request_timeout_secs = 1\n").await;
    let tok = srv.admin();
    let answer = slow_upload(&srv, &tok, "slow", 3, Duration::from_millis(700)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(srv.store().feed("slow").unwrap().unwrap().total(), 3000);
    srv.stop().await;

    let srv = start("upload_timeout_secs = 1\n").await;
    let tok = srv.admin();
    let answer = slow_upload(&srv, &tok, "cut", 3, Duration::from_millis(1500)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    eventually("the spool file is removed after the timeout", || {
        srv.spool_files().is_empty()
    })
    .await;
    assert!(srv.store().feed("cut").unwrap().is_none());
    srv.stop().await;
}

/// Spool files left by a server that was killed are removed when the next
/// one starts, once they are older than `upload_timeout_secs` (no live
/// upload can own them); a recent one (an upload of another server sharing
/// the folder may be writing it) and files of other names are kept.
#[tokio::test]
async fn spool_files_left_by_a_killed_server_are_removed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let old = dir.path().join(format!("{UPLOAD_SPOOL_PREFIX}old.part"));
    let recent = dir.path().join(format!("{UPLOAD_SPOOL_PREFIX}recent.part"));
    let other = dir.path().join("notes.part");
    for p in [&old, &recent, &other] {
        std::fs::write(p, b"198.51.100.1\n").unwrap();
    }
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(2 * 3600);
    for p in [&old, &other] {
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
    }
    let cfg = ServeConfig::parse("upload_timeout_secs = 3600\n", Path::new("test.toml")).unwrap();
    let _state = AppState::new(Store::open(&db).unwrap(), cfg).unwrap();
    assert!(!old.exists(), "the stale spool file is still there");
    assert!(recent.exists(), "a recent spool file was removed");
    assert!(
        other.exists(),
        "a file that is not a spool file was removed"
    );
    // With a shorter timeout, the recent one is stale too.
    let later = std::time::SystemTime::now() + Duration::from_secs(120);
    assert_eq!(
        orbwatch_serve::remove_stale_spool_files(dir.path(), Duration::from_secs(60), later),
        1
    );
    assert!(!recent.exists());
    assert!(other.exists());
}

/// A large upload's import does not hold other writers up: it runs on a
/// connection of its own and commits in batches, so a triage posted while
/// it imports is answered while it still imports (on the shared writer it
/// waited for the whole import).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_triage_gets_through_while_an_upload_imports() {
    let srv = support::start("", |s, _| {
        let f = finding("f1000000000001", "45.137.21.9", "10.0.0.5", "high", 80);
        s.record_hunt(
            &serde_json::json!({}),
            &orbwatch_detect::Coverage::default(),
            &[f],
        )
        .unwrap();
    })
    .await;
    let admin = srv.admin();
    let analyst = srv.token("analyst", orbwatch_store::TokenScope::Triage);
    let body = address_lines(400_000);
    let size = body.len() as u64;
    let c = reqwest::Client::new();
    let upload = tokio::spawn({
        let (c, url) = (c.clone(), srv.url("/api/v1/feeds/big"));
        async move {
            let r = c
                .post(url)
                .bearer_auth(admin)
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status(), r.text().await.unwrap())
        }
    });
    // The body has arrived whole: the import runs (the spool file goes
    // when it ends).
    let spooled = |dir: &Path| {
        support::spool_files(dir)
            .iter()
            .any(|n| std::fs::metadata(dir.join(n)).is_ok_and(|m| m.len() == size))
    };
    eventually("the upload spooled whole", || spooled(srv.dir.path())).await;
    let t = Instant::now();
    let r = c
        .post(srv.url("/api/v1/findings/f1000000000001/triage"))
        .bearer_auth(&analyst)
        .json(&serde_json::json!({"status": "confirmed", "note": "seen on the VPN"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let took = t.elapsed();
    assert!(
        !upload.is_finished() && !srv.spool_files().is_empty(),
        "the triage (answered in {took:?}) waited for the import to end"
    );
    let (status, text) = upload.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    let s = srv.store();
    assert_eq!(s.feed("big").unwrap().unwrap().total(), 400_000);
    let decided = s.decisions(Some("f1000000000001")).unwrap();
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0].status, orbwatch_store::TriageStatus::Confirmed);
    srv.stop().await;
}
