//! `feed add` of a plain list is stored as it is read (no whole-file read,
//! no seek): it works from a FIFO, records the file's SHA-256 and counts
//! rejects and repeats as the whole-file path did.

use std::path::Path;
use std::process::{Command, Output};

fn run(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orbwatch"))
        .env_remove("ORBWATCH_DB")
        .env_remove("ORBWATCH_LOG")
        .env_remove("XDG_DATA_HOME")
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .expect("run orbwatch")
}

#[track_caller]
fn ok(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// 20,000 addresses, 100 repeats and 3 bad lines; then a second version
/// with half of them.
#[test]
fn a_plain_list_is_stored_as_read_with_its_digest_and_counts() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("s.db");
    let list = dir.path().join("big.txt");
    let mut text = String::new();
    for i in 0..20_000u32 {
        text.push_str(&format!("{}\n", std::net::Ipv4Addr::from(0x0b00_0000 + i)));
    }
    for i in 0..100u32 {
        text.push_str(&format!("{}\n", std::net::Ipv4Addr::from(0x0b00_0000 + i)));
    }
    text.push_str("300.1.1.1\nnot-a-value!\n1.2.3\n");
    std::fs::write(&list, &text).expect("write");
    let out = ok(&run(&db, &["feed", "add", list.to_str().expect("utf-8")]));
    assert!(
        out.contains("version 1 (plain, big.txt): 20000 indicators"),
        "{out}"
    );
    assert!(out.contains("100 repeated entries stored once"), "{out}");
    assert!(out.contains("rejected: 3"), "{out}");
    assert!(out.contains("big.txt:20101:"), "{out}");
    let show = ok(&run(&db, &["feed", "show", "big"]));
    let digest = {
        use sha2::Digest;
        sha2::Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert!(show.contains(&digest), "{show}");

    let half: String = text
        .lines()
        .take(10_000)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&list, &half).expect("write");
    let out = ok(&run(&db, &["feed", "add", list.to_str().expect("utf-8")]));
    assert!(out.contains("version 2"), "{out}");
    assert!(
        out.contains("0 added, 10000 removed, 10000 unchanged"),
        "{out}"
    );
}

/// A FIFO cannot seek: the list is detected on its head and read on.
#[test]
fn a_plain_list_from_a_fifo() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("s.db");
    let fifo = dir.path().join("list.txt");
    match Command::new("mkfifo").arg(&fifo).status() {
        Ok(s) if s.success() => {}
        _ => {
            println!("skipped: mkfifo not available");
            return;
        }
    }
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(&fifo, "9.9.9.9\n8.8.8.8\n# c\n"))
    };
    let out = ok(&run(
        &db,
        &["feed", "add", fifo.to_str().expect("utf-8"), "--name", "f"],
    ));
    writer.join().expect("writer").expect("write fifo");
    assert!(
        out.contains("version 1 (plain, list.txt): 2 indicators"),
        "{out}"
    );
}
