//! Every subcommand writing into a closed pipe (`orbwatch feed list 2>&1 |
//! head -0`) ends quietly with exit 0: no panic (exit 101), no error.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn repo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Run with stdout and stderr both on a pipe whose reader is closed.
fn into_closed_pipe(db: &Path, args: &[&str]) -> Option<i32> {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let err = writer.try_clone().unwrap();
    Command::new(env!("CARGO_BIN_EXE_orbwatch"))
        .arg("--db")
        .arg(db)
        .args(args)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(err)
        .status()
        .unwrap()
        .code()
}

fn ok(db: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_orbwatch"))
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_subcommand_ends_quietly_on_a_closed_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let feed = dir.path().join("feed.txt");
    let mut f = std::fs::File::create(&feed).unwrap();
    writeln!(f, "35.188.49.176\n92.255.85.135").unwrap();
    drop(f);
    let log = repo().join("examples/logs/crowdsec_sshd-logs.log");
    let log = log.to_str().unwrap();
    let feed = feed.to_str().unwrap();
    // A store with a feed and a hunt, to have something to print.
    ok(&db, &["feed", "add", feed, "--name", "f"]);
    let findings = ok(&db, &["hunt", "--year", "2021", "--format", "jsonl", log]);
    let id: serde_json::Value = serde_json::from_str(findings.lines().next().unwrap()).unwrap();
    let id = id["id"].as_str().unwrap().to_string();
    let jsonl = dir.path().join("f.jsonl");
    std::fs::write(&jsonl, &findings).unwrap();
    let jsonl = jsonl.to_str().unwrap();
    let csv_out = dir.path().join("r.csv");
    let csv_out = csv_out.to_str().unwrap();
    let html_out = dir.path().join("r.html");
    let html_out = html_out.to_str().unwrap();

    let runs: Vec<Vec<&str>> = vec![
        vec!["feed", "list"],
        vec!["feed", "list", "--json"],
        vec!["feed", "show", "f"],
        vec!["feed", "export", "--to", "plain", "f"],
        vec!["feed", "add", feed, "--name", "g"],
        vec!["hunt", "--year", "2021", log],
        vec!["hunt", "--year", "2021", "--format", "table", log],
        vec![
            "hunt", "--year", "2021", "--format", "csv", "--feed", feed, log,
        ],
        vec!["findings"],
        vec!["findings", "--format", "jsonl"],
        vec!["triage", &id],
        vec!["triage", &id, "--status", "confirmed", "--author", "t"],
        vec!["export", "blocklist", "--target", "plain"],
        vec![
            "export",
            "blocklist",
            "--target",
            "nftables",
            "--from-findings",
            "--findings",
            jsonl,
        ],
        vec!["report", "--csv", csv_out, "--force"],
        vec!["report", "--findings", jsonl, "--html", html_out, "--force"],
        vec!["feed", "remove", "g"],
        vec!["hunts"],
        vec!["completions", "bash"],
        vec!["man"],
        vec!["--help"],
        vec!["hunt", "--help"],
    ];
    let mut bad = Vec::new();
    for args in &runs {
        let code = into_closed_pipe(&db, args);
        if code != Some(0) {
            bad.push(format!("{args:?}: exit {code:?}"));
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
    // The hunt into a closed pipe still kept its findings.
    let hunts = ok(&db, &["findings", "--format", "jsonl"]);
    assert!(!hunts.is_empty());
}
