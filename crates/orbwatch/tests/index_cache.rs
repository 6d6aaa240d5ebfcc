//! The cache of compiled indicators: a second hunt with the same large
//! feed reads the snapshot and finds exactly what the first found; a
//! changed feed is compiled again, never answered from a stale snapshot.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Run a hunt with `-v` (to see where the indicators came from).
fn hunt(feed: &Path, cache: &Path, extra: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_orbwatch"))
        .env("TZ", "UTC") // year-less syslog is read in the machine's zone
        .args(["-v", "hunt", "--year", "2021", "--format", "jsonl"])
        .arg("--feed")
        .arg(feed)
        .args(extra)
        .arg(repo().join("examples/logs"))
        .env("ORBWATCH_CACHE_DIR", cache)
        .env_remove("ORBWATCH_DB")
        .output()
        .expect("run orbwatch");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).expect("utf-8"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A feed of `n` generated addresses (over the 8 MiB caching threshold
/// for n ≥ ~600k) plus the given ones.
fn write_feed(path: &Path, n: usize, extra: &[&str]) {
    let mut text = String::with_capacity(n * 16);
    let mut x: u32 = 99;
    for _ in 0..n {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        // 11.0.0.0/8 and up: never the example logs' addresses.
        let ip = std::net::Ipv4Addr::from((x % 0x1000_0000) | 0xb000_0000);
        text.push_str(&format!("{ip}\n"));
    }
    for e in extra {
        text.push_str(e);
        text.push('\n');
    }
    std::fs::write(path, text).expect("write feed");
}

fn finding_ips(jsonl: &str) -> Vec<String> {
    let mut v: Vec<String> = jsonl
        .lines()
        .map(|l| {
            let f: serde_json::Value = serde_json::from_str(l).expect("finding");
            format!("{} {}", f["indicator"], f["count"])
        })
        .collect();
    v.sort();
    v
}

#[test]
fn second_hunt_reads_the_snapshot_and_a_changed_feed_is_recompiled() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cache = tmp.path().join("cache");
    let feed = tmp.path().join("big.txt");
    write_feed(&feed, 620_000, &["105.154.12.165", "156.222.199.111"]);
    assert!(std::fs::metadata(&feed).expect("feed").len() >= 8 << 20);

    let (first, err1) = hunt(&feed, &cache, &[]);
    assert!(err1.contains("compiled indicators cached in"), "{err1}");
    assert!(!err1.contains("read from the index cache"), "{err1}");
    let (second, err2) = hunt(&feed, &cache, &[]);
    assert!(err2.contains("read from the index cache"), "{err2}");
    let ips = finding_ips(&first);
    assert!(
        ips.iter().any(|l| l.contains("105.154.12.165")),
        "the planted address is found: {ips:?}"
    );
    assert_eq!(ips, finding_ips(&second), "same findings from the snapshot");
    assert_eq!(
        std::fs::read_dir(&cache).expect("cache dir").count(),
        1,
        "one snapshot"
    );

    // Change the feed: one planted address fewer. The snapshot must not
    // be used, and the findings follow the new feed.
    write_feed(&feed, 620_000, &["105.154.12.165"]);
    let (third, err3) = hunt(&feed, &cache, &[]);
    assert!(!err3.contains("read from the index cache"), "{err3}");
    assert!(
        !finding_ips(&third)
            .iter()
            .any(|l| l.contains("156.222.199.111"))
    );

    // --no-index-cache neither reads nor writes.
    let (_, err4) = hunt(&feed, &cache, &["--no-index-cache"]);
    assert!(
        !err4.contains("index cache") && !err4.contains("cached in"),
        "{err4}"
    );

    // A damaged snapshot is reported, removed and rebuilt.
    for e in std::fs::read_dir(&cache).expect("cache dir").flatten() {
        let p = e.path();
        let len = std::fs::metadata(&p).expect("snapshot").len();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .expect("open snapshot");
        f.set_len(len / 2).expect("truncate");
    }
    let (fifth, err5) = hunt(&feed, &cache, &[]);
    assert!(err5.contains("ignoring the index cache"), "{err5}");
    assert_eq!(finding_ips(&fifth), finding_ips(&third));
}

#[test]
fn small_feeds_are_not_cached() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cache = tmp.path().join("cache");
    let (_, err) = hunt(
        &repo().join("examples/feeds/CERTFR-2021-IOC-003-IOC.csv"),
        &cache,
        &[],
    );
    assert!(!err.contains("cached in"), "{err}");
    assert!(!cache.exists());
}
