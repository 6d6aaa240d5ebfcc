//! A hunt never loses its findings (issue 19): a busy store is retried with
//! backoff, and when it stays busy the findings are written to `--output`
//! first and saved to a named file; concurrent hunts into one store all
//! land; outputs are written whole or not at all, and write errors name the
//! path.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn orbwatch() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_orbwatch"));
    c.env_remove("ORBWATCH_DB")
        .env_remove("ORBWATCH_STORE_WAIT");
    c
}

/// A feed of `n` documentation-range-free public addresses and an sshd log
/// with one failed login from each: `n` IOC findings per hunt.
fn feed_and_log(dir: &Path, n: u32) -> (PathBuf, PathBuf) {
    let feed = dir.join("feed.txt");
    let log = dir.join("auth.log");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&feed).unwrap());
    let mut l = std::io::BufWriter::new(std::fs::File::create(&log).unwrap());
    for i in 0..n {
        let ip = format!("45.{}.{}.{}", 10 + i / 65536, (i / 256) % 256, i % 256);
        writeln!(f, "{ip}").unwrap();
        writeln!(
            l,
            "Mar  5 10:{:02}:{:02} web1 sshd[{}]: Failed password for root from {ip} port 4{:04} ssh2",
            (i / 60) % 60,
            i % 60,
            1000 + i,
            i % 10000
        )
        .unwrap();
    }
    f.flush().unwrap();
    l.flush().unwrap();
    (feed, log)
}

fn feed_add(db: &Path, feed: &Path) {
    let out = orbwatch()
        .arg("--db")
        .arg(db)
        .args(["feed", "add"])
        .arg(feed)
        .args(["--name", "test"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn hunt(db: &Path, log: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = orbwatch();
    c.arg("--db")
        .arg(db)
        .args([
            "hunt",
            "--year",
            "2021",
            "--no-behaviour",
            "--format",
            "jsonl",
        ])
        .args(extra)
        .arg(log);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn count(db: &Path, sql: &str) -> i64 {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Hold the store's write lock from another connection for `hold`.
fn hold_lock(db: &Path, hold: Duration) -> std::thread::JoinHandle<()> {
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute_batch("BEGIN IMMEDIATE; INSERT INTO hunts (args_json, coverage_json, findings) VALUES ('{}', '{}', 0);")
        .unwrap();
    std::thread::spawn(move || {
        std::thread::sleep(hold);
        c.execute_batch("ROLLBACK").unwrap();
    })
}

#[test]
fn a_store_locked_for_the_whole_hunt_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let (feed, log) = feed_and_log(dir.path(), 300);
    feed_add(&db, &feed);
    let out_file = dir.path().join("out.jsonl");
    let holder = hold_lock(&db, Duration::from_secs(6));
    let out = hunt(
        &db,
        &log,
        &["--output", out_file.to_str().unwrap()],
        &[("ORBWATCH_STORE_WAIT", "1")],
    );
    holder.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    // --output was written before the store was tried.
    let written = std::fs::read_to_string(&out_file).expect("--output written");
    assert_eq!(written.lines().count(), 300);
    // The error names the file the findings were saved to, and it holds them.
    let saved = stderr
        .split_whitespace()
        .find(|w| w.ends_with(".jsonl") && w.contains("orbwatch-unsaved-hunt-"))
        .unwrap_or_else(|| panic!("no saved file named in: {stderr}"));
    assert!(stderr.contains("database is locked"), "{stderr}");
    let saved = std::fs::read_to_string(saved).unwrap();
    assert_eq!(saved.lines().count(), 300);
    assert_eq!(saved, written);
    let cov = PathBuf::from(
        stderr
            .split_whitespace()
            .find(|w| w.ends_with(".coverage.json"))
            .unwrap(),
    );
    let cov: serde_json::Value = serde_json::from_slice(&std::fs::read(cov).unwrap()).unwrap();
    assert!(cov.is_object());
    assert_eq!(count(&db, "SELECT count(*) FROM hunts"), 0);
}

#[test]
fn a_store_busy_for_a_while_is_retried_until_it_takes_the_hunt() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let (feed, log) = feed_and_log(dir.path(), 200);
    feed_add(&db, &feed);
    // Each attempt waits 2 s (a quarter of 8 s): the first two fail while
    // the lock is held for 3 s, a later one gets through.
    let holder = hold_lock(&db, Duration::from_secs(3));
    let out = hunt(&db, &log, &[], &[("ORBWATCH_STORE_WAIT", "8")]);
    holder.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("is busy"), "{stderr}");
    assert_eq!(count(&db, "SELECT count(*) FROM hunts"), 1);
    assert_eq!(count(&db, "SELECT count(*) FROM findings"), 200);
}

/// `writers` hunts of 4,000 findings each start together on one store,
/// next to a `feed add` of 100,000 addresses: every hunt is kept whole.
fn concurrent_writers(writers: usize) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let (feed, log) = feed_and_log(dir.path(), 4000);
    feed_add(&db, &feed);
    let big = dir.path().join("big.txt");
    let mut b = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
    for i in 0..100_000u32 {
        writeln!(b, "77.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256).unwrap();
    }
    b.flush().unwrap();
    drop(b);
    let mut children = Vec::new();
    let mut add = orbwatch();
    add.arg("--db")
        .arg(&db)
        .args(["feed", "add"])
        .arg(&big)
        .args(["--name", "big"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let adder = add.spawn().unwrap();
    for _ in 0..writers {
        let mut c = orbwatch();
        c.arg("--db")
            .arg(&db)
            .args([
                "hunt",
                "--year",
                "2021",
                "--no-behaviour",
                "--format",
                "jsonl",
            ])
            .arg(&log)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        children.push(c.spawn().unwrap());
    }
    let a = adder.wait_with_output().unwrap();
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert_eq!(count(&db, "SELECT count(*) FROM hunts"), writers as i64);
    assert_eq!(
        count(&db, "SELECT count(*) FROM findings"),
        4000 * writers as i64
    );
    assert_eq!(count(&db, "SELECT count(*) FROM indicators"), 104_000);
}

#[test]
fn two_concurrent_writers_all_land() {
    concurrent_writers(2);
}

#[test]
fn eight_concurrent_writers_all_land() {
    concurrent_writers(8);
}

#[test]
fn output_to_a_full_device_is_an_error_naming_it() {
    if !Path::new("/dev/full").exists() {
        println!("skipped: no /dev/full");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (feed, log) = feed_and_log(dir.path(), 50);
    for flag in ["--output", "--coverage"] {
        let out = orbwatch()
            .args([
                "hunt",
                "--year",
                "2021",
                "--no-behaviour",
                "--format",
                "jsonl",
                "--feed",
            ])
            .arg(&feed)
            .args([flag, "/dev/full"])
            .arg(&log)
            .stdout(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}: {stderr}");
        assert!(stderr.contains("/dev/full"), "{flag}: {stderr}");
        assert!(stderr.contains("No space left"), "{flag}: {stderr}");
    }
}

/// A full disk (a 64 KiB tmpfs, mounted only where this test may mount):
/// the previous `--output` and `--coverage` files stay whole and the
/// error names the path.
#[test]
fn a_full_disk_leaves_the_previous_output_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&mnt)
        .output()
        .is_ok_and(|o| o.status.success());
    if !mounted {
        println!("skipped: cannot mount a small tmpfs here (needs root)");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    let (feed, log) = feed_and_log(dir.path(), 2000);
    let target = mnt.join("findings.jsonl");
    let old = "{\"previous\": \"run\"}\n";
    std::fs::write(&target, old).unwrap();
    let out = orbwatch()
        .args([
            "hunt",
            "--year",
            "2021",
            "--no-behaviour",
            "--format",
            "jsonl",
            "--feed",
        ])
        .arg(&feed)
        .arg("--output")
        .arg(&target)
        .arg(&log)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&target.display().to_string()), "{stderr}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), old);
    let left: Vec<_> = std::fs::read_dir(&mnt).unwrap().collect();
    assert_eq!(left.len(), 1, "the temporary file is removed");
}

/// A 0-byte store file is reported, not silently made into a new store:
/// commands that need a store say it is empty, `feed add` says it makes a
/// new store of it.
#[test]
fn an_empty_store_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    std::fs::write(&db, b"").unwrap();
    let log = dir.path().join("a.log");
    std::fs::write(
        &log,
        "Mar  5 10:00:00 h sshd[1]: Failed password for root from 45.0.0.1 port 22 ssh2\n",
    )
    .unwrap();
    let out = hunt(&db, &log, &[], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is an empty file (0 bytes)"), "{stderr}");
    assert_eq!(std::fs::metadata(&db).unwrap().len(), 0, "left as it was");
    let out = orbwatch()
        .arg("--db")
        .arg(&db)
        .args(["triage", "abc"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is an empty file (0 bytes)"), "{stderr}");
    let (feed, _) = feed_and_log(dir.path(), 3);
    let out = orbwatch()
        .arg("--db")
        .arg(&db)
        .args(["feed", "add"])
        .arg(&feed)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("made into a new, empty store"), "{stderr}");
}
