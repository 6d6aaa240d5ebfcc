//! Feed uploads to `orbwatch serve` (`POST /api/v1/feeds/{name}`) against
//! `orbwatch feed add`: the binary serving a temporary store on 127.0.0.1
//! with an ephemeral port, uploads sent over a plain TCP connection from
//! the file on disk (so the test itself holds no body in memory), and the
//! server's peak memory read from /proc/PID/status.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Child;

#[path = "support/serve.rs"]
mod support;
use support::{orbwatch, repo};

fn ok(o: &std::process::Output) -> String {
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A running `orbwatch serve`, stopped (killed) when dropped.
struct Serve {
    child: Child,
    /// `127.0.0.1:PORT`
    addr: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    /// A line of /proc/PID/status, in kB (`VmHWM`: peak resident memory).
    fn status_kb(&self, key: &str) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key} in /proc status:\n{text}"))
    }
}

/// Start `orbwatch serve` on the store ([`support::serve`]).
fn serve(db: &Path, config: &Path) -> Serve {
    let (child, url) = support::serve(db, config);
    let addr = url
        .strip_prefix("http://")
        .unwrap_or(&url)
        .trim_end_matches('/')
        .to_string();
    Serve { child, addr }
}

/// POST the file at `file` as the body (with Content-Length), copied from
/// disk as it is sent; the status code and the answer's body.
fn upload(addr: &str, target: &str, token: &str, file: &Path) -> (u16, serde_json::Value) {
    let len = std::fs::metadata(file).unwrap().len();
    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    write!(
        sock,
        "POST {target} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    std::io::copy(&mut std::fs::File::open(file).unwrap(), &mut sock).unwrap();
    let mut answer = Vec::new();
    sock.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer);
    let status: u16 = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer}"));
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"));
    (status, json)
}

fn admin_token(db: &Path) -> String {
    ok(&orbwatch(
        db,
        &["token", "create", "--name", "ops", "--scope", "admin"],
    ))
    .trim()
    .to_string()
}

/// The feed as `feed list --json` shows it.
fn listed(db: &Path, name: &str) -> serde_json::Value {
    let list: serde_json::Value =
        serde_json::from_str(&ok(&orbwatch(db, &["feed", "list", "--json"]))).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no feed {name} in {list:#}"))
}

/// The spool files left in a folder.
fn spool_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".orbwatch-upload-"))
        .collect()
}

/// A real feed uploaded through the API is stored as `feed add` of the
/// same file stores it: the same format, indicator counts by kind,
/// rejects, skips and SHA-256. The CERT-FR CSV of examples/feeds, a STIX
/// 2.1 bundle and a MISP event of tests/data/feeds-stix-misp.
#[test]
fn an_upload_stores_what_feed_add_stores() {
    let dir = tempfile::tempdir().unwrap();
    let added_db = dir.path().join("added.db");
    let served_db = dir.path().join("served.db");
    let token = admin_token(&served_db);
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, "").unwrap();
    let srv = serve(&served_db, &config);
    for (name, rel) in [
        ("certfr", "examples/feeds/CERTFR-2021-IOC-003-IOC.csv"),
        ("stix", "tests/data/feeds-stix-misp/stix21-bundle.json"),
        ("misp", "tests/data/feeds-stix-misp/misp-event.json"),
    ] {
        let path = repo().join(rel);
        let out = ok(&orbwatch(
            &added_db,
            &["feed", "add", "--name", name, path.to_str().unwrap()],
        ));
        let file = path.file_name().unwrap().to_str().unwrap();
        let (status, answer) = upload(
            &srv.addr,
            &format!("/api/v1/feeds/{name}?file={file}"),
            &token,
            &path,
        );
        assert_eq!(status, 200, "{rel}: {answer:#}");
        let (added, served) = (listed(&added_db, name), listed(&served_db, name));
        assert!(
            added["total"].as_u64().unwrap() > 0,
            "{rel}: {added:#}\n{out}"
        );
        for key in [
            "format",
            "counts",
            "total",
            "rejected",
            "skipped",
            "source_sha256",
        ] {
            assert_eq!(added[key], served[key], "{rel}: {key}");
        }
        assert_eq!(answer["import"]["loaded"], added["total"], "{rel}");
        assert!(
            out.contains(&format!(
                "{} indicator",
                answer["import"]["loaded"].as_u64().unwrap()
            )),
            "{rel}: {out}"
        );
    }
    assert!(spool_files(dir.path()).is_empty());
}

/// An upload far above the old 64 MiB cap (a 100 MB CSV, 200,000 rows
/// with a long description each) is stored, and the server's peak
/// resident memory stays far below the file's size: the body goes to a
/// spool file as it arrives and is stored from there as it is read.
#[test]
fn a_100_mb_upload_is_stored_in_bounded_memory() {
    const ROWS: usize = 200_000;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let feed = dir.path().join("big.csv");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&feed).unwrap());
        writeln!(w, "ip,description").unwrap();
        let pad = "relay seen scanning edge devices; ".repeat(14);
        for i in 0..ROWS {
            writeln!(
                w,
                "45.{}.{}.{},\"row {i}: {pad}\"",
                (i >> 16) & 0xff,
                (i >> 8) & 0xff,
                i & 0xff
            )
            .unwrap();
        }
        w.flush().unwrap();
    }
    let size = std::fs::metadata(&feed).unwrap().len();
    assert!(size > 100_000_000, "{size}");
    let token = admin_token(&db);
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, "").unwrap();
    let srv = serve(&db, &config);
    let before = srv.status_kb("VmHWM");
    let started = std::time::Instant::now();
    let (status, answer) = upload(
        &srv.addr,
        "/api/v1/feeds/big?format=csv&file=big.csv",
        &token,
        &feed,
    );
    let took = started.elapsed();
    let peak = srv.status_kb("VmHWM");
    eprintln!(
        "100 MB upload: {size} bytes in {took:?}; serve VmHWM {before} kB before, {peak} kB after"
    );
    assert_eq!(status, 200, "{answer:#}");
    assert_eq!(answer["import"]["loaded"], ROWS as u64, "{answer:#}");
    assert_eq!(answer["rejected"], 0, "{answer:#}");
    // What it takes: the process (about 30 MB), SQLite's page cache of
    // the writing connection (64 MiB, `cache_size`) and a few batches.
    // The body alone is 100 MB; read whole and parsed, as uploads were
    // before, it took that plus about 1 KB per row.
    assert!(
        peak < 200 * 1024,
        "serve's peak resident memory was {peak} kB for a {size}-byte upload"
    );
    assert!(spool_files(dir.path()).is_empty());
    assert_eq!(listed(&db, "big")["total"], ROWS as u64);
}
