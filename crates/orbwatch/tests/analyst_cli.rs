//! Issue 17, "the analyst's seat", through the built binary: mistakes that
//! must not pass silently (short id prefixes, missing inputs, a corrupt
//! input hiding `--fail-on`), the zone of year-less syslog, relative
//! times, the `hunts` and `findings show` commands, tables, completions
//! and the man page.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The binary, with an environment that does not leak from the caller.
/// `TZ` is UTC unless a test sets another zone.
fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_orbwatch"));
    c.env_remove("ORBWATCH_DB")
        .env_remove("ORBWATCH_LOG")
        .env_remove("NO_COLOR")
        .env_remove("COLUMNS")
        .env("XDG_DATA_HOME", "/nonexistent")
        .env("XDG_CACHE_HOME", "/nonexistent")
        .env("TZ", "UTC");
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run orbwatch")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn code(o: &Output, want: i32) {
    assert_eq!(
        o.status.code(),
        Some(want),
        "stdout:\n{}\nstderr:\n{}",
        out(o),
        err(o)
    );
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write test file");
    p
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn jsonl(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// The shipped sample: 13 sshd/UFW lines, four of them from addresses on
/// the CERT-FR list (four findings with `--year 2021`).
fn demo_log() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/logs/demo-auth.log"
    ))
}

fn certfr() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/feeds/CERTFR-2021-IOC-003-IOC.csv"
    ))
}

/// A store holding one hunt of the sample log with the CERT-FR list.
fn store_with_hunt(dir: &Path) -> PathBuf {
    let db = dir.join("case.db");
    let o = run(&[
        "--db",
        s(&db),
        "hunt",
        "--year",
        "2021",
        "--timezone",
        "UTC",
        "--feed",
        s(&certfr()),
        s(&demo_log()),
    ]);
    code(&o, 0);
    db
}

fn findings(db: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["--db", s(db), "findings", "--format", "jsonl"];
    args.extend_from_slice(extra);
    let o = run(&args);
    code(&o, 0);
    jsonl(&out(&o))
}

// --- Mistakes must not pass silently --------------------------------------

#[test]
fn triage_refuses_an_id_prefix_shorter_than_six_characters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = store_with_hunt(dir.path());
    let all = findings(&db, &[]);
    assert_eq!(all.len(), 4);
    let id = all[0]["id"].as_str().expect("id").to_string();
    for short in [&id[..1], &id[..5]] {
        let o = run(&["--db", s(&db), "triage", short, "--status", "benign"]);
        code(&o, 2);
        assert!(err(&o).contains("at least 6 characters"), "{}", err(&o));
    }
    // Nothing was dismissed.
    assert_eq!(findings(&db, &[]).len(), 4);
    // Six characters are enough.
    let o = run(&["--db", s(&db), "triage", &id[..6], "--status", "confirmed"]);
    code(&o, 0);
    let o = run(&["--db", s(&db), "findings", "show", &id[..4]]);
    code(&o, 2);
}

#[test]
fn a_dismissal_says_what_it_dismisses_now_and_later() {
    let dir = tempfile::tempdir().expect("tempdir");
    // One listed address, seen on two days: two findings with one key.
    let log = write(
        dir.path(),
        "auth.log",
        "Mar  2 03:11:09 gw01 sshd[2210]: Failed password for root from 105.154.12.165 port 50412 ssh2\n\
         Mar  5 10:00:00 gw01 sshd[2299]: Failed password for root from 105.154.12.165 port 50990 ssh2\n\
         Mar  5 10:05:00 gw01 sshd[2300]: Failed password for root from 156.222.199.111 port 41188 ssh2\n",
    );
    let feed = write(
        dir.path(),
        "relays.txt",
        "105.154.12.165\n156.222.199.111\n",
    );
    let db = dir.path().join("case.db");
    let o = run(&[
        "--db",
        s(&db),
        "hunt",
        "--year",
        "2021",
        "--no-behaviour",
        "--feed",
        s(&feed),
        s(&log),
    ]);
    code(&o, 0);
    let all = findings(&db, &[]);
    assert_eq!(all.len(), 3, "{all:?}");
    let same: Vec<&str> = all
        .iter()
        .filter(|f| f["indicator"] == "105.154.12.165")
        .map(|f| f["id"].as_str().expect("id"))
        .collect();
    assert_eq!(same.len(), 2);
    let o = run(&["--db", s(&db), "triage", same[0], "--status", "benign"]);
    code(&o, 0);
    let e = err(&o);
    assert!(
        e.contains(&format!(
            "this decision dismisses 2 findings now (this one and 1 other: {})",
            same[1]
        )),
        "{e}"
    );
    assert!(
        e.contains(
            "keep dismissing every sighting of 105.154.12.165 (peer unknown) in later hunts"
        ),
        "{e}"
    );
    // What it said is what happened: one finding is left.
    let left = findings(&db, &[]);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["indicator"], "156.222.199.111");
}

#[test]
fn missing_inputs_and_empty_directories_are_fatal_and_store_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = store_with_hunt(dir.path());
    let missing = dir.path().join("auth.lgo");
    let o = run(&[
        "--db",
        s(&db),
        "hunt",
        "--feed",
        s(&certfr()),
        s(&demo_log()),
        s(&missing),
    ]);
    code(&o, 2);
    assert!(err(&o).contains("does not exist"), "{}", err(&o));
    assert!(err(&o).contains("auth.lgo"), "{}", err(&o));
    assert!(out(&o).is_empty(), "no findings printed: {}", out(&o));

    let empty = dir.path().join("logs");
    std::fs::create_dir(&empty).expect("mkdir");
    std::fs::create_dir(empty.join("sub")).expect("mkdir");
    let o = run(&["--db", s(&db), "hunt", "--feed", s(&certfr()), s(&empty)]);
    code(&o, 2);
    assert!(
        err(&o).contains("directory with no log files"),
        "{}",
        err(&o)
    );
    assert!(err(&o).contains(s(&empty)), "{}", err(&o));
    // A directory whose files are all excluded is empty too.
    write(&empty, "notes.txt", "hello\n");
    let o = run(&[
        "--db",
        s(&db),
        "hunt",
        "--exclude",
        "*.txt",
        "--feed",
        s(&certfr()),
        s(&empty),
    ]);
    code(&o, 2);

    // Only the first hunt is in the store.
    let o = run(&["--db", s(&db), "hunts", "--json"]);
    code(&o, 0);
    let hunts = jsonl(&out(&o));
    assert_eq!(hunts.len(), 1, "{hunts:?}");
    assert_eq!(hunts[0]["findings"], 4);
}

#[test]
fn a_store_without_feeds_says_behaviour_detection_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("empty.db");
    let o = run(&["--db", s(&db), "hunt", "--year", "2021", s(&demo_log())]);
    code(&o, 0);
    assert!(
        err(&o).contains("no indicators loaded: behaviour detection only"),
        "{}",
        err(&o)
    );
    // With feeds the notice is absent.
    let db2 = store_with_hunt(dir.path());
    let o = run(&[
        "--db",
        s(&db2),
        "hunt",
        "--year",
        "2021",
        "--feed",
        s(&certfr()),
        s(&demo_log()),
    ]);
    code(&o, 0);
    assert!(!err(&o).contains("no indicators loaded"), "{}", err(&o));
}

/// A gzip file cut in the middle: the first lines can be read, then the
/// stream ends early, which is an input error.
fn truncated_gz(dir: &Path, name: &str, first_line: &str) -> PathBuf {
    let mut text = String::from(first_line);
    // Enough varied lines that the compressed stream is long.
    for i in 0..4000u32 {
        text.push_str(&format!(
            "Mar  3 04:{:02}:{:02} gw01 sshd[{i}]: Connection closed by 192.0.2.{} port {} [preauth]\n",
            (i / 60) % 60,
            i % 60,
            i % 250,
            1024 + i * 7 % 60000
        ));
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).expect("gzip");
    let bytes = gz.finish().expect("gzip");
    let p = dir.join(name);
    std::fs::write(&p, &bytes[..bytes.len() / 2]).expect("write gz");
    p
}

#[test]
fn fail_on_keeps_its_meaning_when_an_input_is_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let feed = write(d, "relays.txt", "105.154.12.165\n");
    let clean_quiet = write(
        d,
        "quiet.log",
        "Mar  2 09:02:31 gw01 sshd[3120]: Accepted publickey for deploy from 192.168.10.20 port 51022 ssh2\n",
    );
    let clean_hit = write(
        d,
        "hit.log",
        "Mar  2 03:11:09 gw01 sshd[2210]: Failed password for root from 105.154.12.165 port 50412 ssh2\n",
    );
    let corrupt_quiet = truncated_gz(
        d,
        "quiet.log.1.gz",
        "Mar  2 09:00:00 gw01 sshd[1]: Accepted publickey for deploy from 192.168.10.21 port 1 ssh2\n",
    );
    let corrupt_hit = truncated_gz(
        d,
        "hit.log.1.gz",
        "Mar  2 03:00:00 gw01 sshd[1]: Failed password for root from 105.154.12.165 port 2 ssh2\n",
    );
    let hunt = |inputs: &[&Path], fail_on: bool| -> (i32, usize) {
        let mut args = vec![
            "-q",
            "hunt",
            "--year",
            "2021",
            "--no-behaviour",
            "--format",
            "jsonl",
            "--feed",
            s(&feed),
        ];
        if fail_on {
            args.extend(["--fail-on", "any"]);
        }
        args.extend(inputs.iter().map(|p| s(p)));
        let o = run(&args);
        (o.status.code().expect("exit code"), jsonl(&out(&o)).len())
    };
    // The README's table: 0 nothing, 1 findings met, 2 input errors, 3 both.
    assert_eq!(hunt(&[&clean_quiet], true), (0, 0));
    assert_eq!(hunt(&[&clean_hit], true), (1, 1));
    assert_eq!(hunt(&[&clean_quiet, &corrupt_quiet], true), (2, 0));
    assert_eq!(hunt(&[&clean_quiet, &corrupt_hit], true), (3, 1));
    assert_eq!(hunt(&[&clean_hit, &corrupt_quiet], true), (3, 1));
    // Without --fail-on, findings never set a bit.
    assert_eq!(hunt(&[&clean_hit], false), (0, 1));
    assert_eq!(hunt(&[&clean_hit, &corrupt_quiet], false), (2, 1));
}

#[test]
fn re_adding_a_feed_with_another_window_reports_changed_validity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("feeds.db");
    let list = write(
        dir.path(),
        "relays.txt",
        "105.154.12.165\n156.222.199.111\n2.176.234.36\n",
    );
    let add = |extra: &[&str]| -> String {
        let mut args = vec!["--db", s(&db), "feed", "add", s(&list), "--name", "relays"];
        args.extend_from_slice(extra);
        let o = run(&args);
        code(&o, 0);
        out(&o)
    };
    add(&["--valid-from", "2021-01-01", "--ttl", "30d"]);
    let second = add(&["--valid-from", "2021-01-01", "--ttl", "90d"]);
    assert!(
        second.contains(
            "changes since version 1: 0 added, 0 removed, 3 changed (validity), 0 unchanged"
        ),
        "{second}"
    );
    let third = add(&[
        "--valid-from",
        "2021-01-01",
        "--ttl",
        "90d",
        "--confidence",
        "40",
    ]);
    assert!(
        third.contains(
            "changes since version 2: 0 added, 0 removed, 3 changed (confidence), 0 unchanged"
        ),
        "{third}"
    );
    let same = add(&[
        "--valid-from",
        "2021-01-01",
        "--ttl",
        "90d",
        "--confidence",
        "40",
    ]);
    assert!(
        same.contains("changes since version 3: 0 added, 0 removed, 3 unchanged"),
        "{same}"
    );
}

// --- Time ------------------------------------------------------------------

/// First-seen times of a hunt of `log`, by indicator.
fn first_seen(log: &Path, feed: &Path, zone_flag: Option<&str>, tz_env: &str) -> Vec<String> {
    let mut c = bin();
    c.env("TZ", tz_env).args([
        "-q",
        "hunt",
        "--year",
        "2021",
        "--no-behaviour",
        "--format",
        "jsonl",
        "--feed",
        s(feed),
    ]);
    if let Some(z) = zone_flag {
        c.args(["--timezone", z]);
    }
    let o = c.arg(s(log)).output().expect("run");
    code(&o, 0);
    let mut v: Vec<String> = jsonl(&out(&o))
        .iter()
        .map(|f| {
            format!(
                "{} {}",
                f["indicator"].as_str().unwrap_or("?"),
                f["first_seen"].as_str().unwrap_or("?")
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn year_less_syslog_is_read_in_the_given_zone_and_written_in_utc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let feed = write(dir.path(), "relays.txt", "105.154.12.165\n94.59.209.77\n");
    let log = demo_log();
    // Winter (March, UTC+1) and summer (May, UTC+2) in Paris.
    assert_eq!(
        first_seen(&log, &feed, Some("Europe/Paris"), "UTC"),
        [
            "105.154.12.165 2021-03-02T02:11:07Z",
            "94.59.209.77 2021-05-21T14:45:10Z"
        ]
    );
    assert_eq!(
        first_seen(&log, &feed, Some("UTC"), "Europe/Paris"),
        [
            "105.154.12.165 2021-03-02T03:11:07Z",
            "94.59.209.77 2021-05-21T16:45:10Z"
        ]
    );
    // Without --timezone: the machine's zone (TZ).
    assert_eq!(
        first_seen(&log, &feed, None, "America/New_York"),
        [
            "105.154.12.165 2021-03-02T08:11:07Z",
            "94.59.209.77 2021-05-21T20:45:10Z"
        ]
    );
    // RFC 5424 lines carry their offset: no zone changes them.
    let zoned = write(
        dir.path(),
        "zoned.log",
        "<38>1 2021-03-02T03:11:07+00:00 gw01 sshd 2210 - - Failed password for root from 105.154.12.165 port 50412 ssh2\n",
    );
    assert_eq!(
        first_seen(&zoned, &feed, Some("Asia/Tokyo"), "UTC"),
        ["105.154.12.165 2021-03-02T03:11:07Z"]
    );
}

#[test]
fn the_coverage_names_the_zone_assumed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cov = dir.path().join("coverage.json");
    let o = run(&[
        "hunt",
        "--year",
        "2021",
        "--timezone",
        "Europe/Paris",
        "--feed",
        s(&certfr()),
        "--coverage",
        s(&cov),
        s(&demo_log()),
    ]);
    code(&o, 0);
    assert!(
        err(&o).contains("log times without a zone were read as Europe/Paris local time"),
        "{}",
        err(&o)
    );
    let c: Value =
        serde_json::from_slice(&std::fs::read(&cov).expect("coverage written")).expect("JSON");
    assert_eq!(c["timezone"], "Europe/Paris");
    // A zone that does not exist is refused before anything runs.
    let o = run(&["hunt", "--timezone", "Mars/Olympus", s(&demo_log())]);
    code(&o, 2);
    assert!(err(&o).contains("Mars/Olympus"), "{}", err(&o));
}

#[test]
fn relative_since() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cov = dir.path().join("coverage.json");
    // The sample is from 2021: nothing of it is in the last 7 days.
    for since in ["7d", "24h", "yesterday"] {
        let o = run(&[
            "-q",
            "hunt",
            "--year",
            "2021",
            "--since",
            since,
            "--format",
            "jsonl",
            "--feed",
            s(&certfr()),
            "--coverage",
            s(&cov),
            s(&demo_log()),
        ]);
        code(&o, 0);
        assert_eq!(jsonl(&out(&o)).len(), 0, "--since {since}");
        let c: Value =
            serde_json::from_slice(&std::fs::read(&cov).expect("coverage")).expect("JSON");
        assert_eq!(c["inputs"][0]["outside_time_filter"], 13, "--since {since}");
    }
    // 20000d reaches back before 2021: all four findings.
    let o = run(&[
        "-q",
        "hunt",
        "--year",
        "2021",
        "--since",
        "20000d",
        "--format",
        "jsonl",
        "--feed",
        s(&certfr()),
        s(&demo_log()),
    ]);
    code(&o, 0);
    assert_eq!(jsonl(&out(&o)).len(), 4);
    let o = run(&["hunt", "--since", "2021", s(&demo_log())]);
    code(&o, 2);
    assert!(err(&o).contains("--since"), "{}", err(&o));
}

// --- The terminal ------------------------------------------------------------

#[test]
fn hunts_and_findings_show() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = store_with_hunt(dir.path());
    let o = run(&["--db", s(&db), "hunts"]);
    code(&o, 0);
    let hunts = jsonl(&out(&o));
    assert_eq!(hunts.len(), 1);
    assert_eq!(hunts[0]["id"], 1);
    assert_eq!(hunts[0]["args"]["timezone"], "UTC");
    let o = run(&["--db", s(&db), "hunts", "--format-is-not-a-flag"]);
    code(&o, 2);

    let f = findings(&db, &[]);
    let id = f[0]["id"].as_str().expect("id");
    let o = run(&[
        "--db",
        s(&db),
        "triage",
        id,
        "--status",
        "confirmed",
        "--note",
        "seen",
    ]);
    code(&o, 0);
    let o = run(&["--db", s(&db), "findings", "show", &id[..8]]);
    code(&o, 0);
    let v: Value = serde_json::from_str(&out(&o)).expect("one JSON document");
    assert_eq!(v["id"], id);
    assert_eq!(v["hunt_id"], 1);
    assert_eq!(v["triage"]["status"], "confirmed");
    assert_eq!(v["decisions"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["decisions"][0]["note"], "seen");
    assert!(v["evidence"].as_array().is_some_and(|e| !e.is_empty()));
    let o = run(&["--db", s(&db), "findings", "show", "ffffffffff"]);
    code(&o, 2);
}

#[test]
fn tables_show_id_and_severity_fit_the_width_and_stay_plain_in_pipes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = store_with_hunt(dir.path());
    let ids: Vec<String> = findings(&db, &[])
        .iter()
        .map(|f| f["id"].as_str().expect("id").to_string())
        .collect();
    let o = bin()
        .env("COLUMNS", "120")
        .args(["--db", s(&db), "findings", "--format", "table"])
        .output()
        .expect("run");
    code(&o, 0);
    let t = out(&o);
    assert!(!t.contains('\u{1b}'), "no colour into a pipe: {t}");
    let header = t.lines().next().expect("a header");
    assert!(
        header.starts_with("severity") && header.contains(" id "),
        "{header}"
    );
    for l in t.lines() {
        assert!(l.chars().count() <= 120, "wider than COLUMNS: {l:?}");
    }
    // Ids are whole (triage needs them) and rows start with the severity.
    for id in &ids {
        let row = t.lines().find(|l| l.contains(id.as_str())).expect(id);
        assert!(
            ["critical", "high", "medium", "low", "info"]
                .iter()
                .any(|s| row.starts_with(s)),
            "{row}"
        );
    }
    // The hunt's own table, written to a file: the same columns, plain.
    let file = dir.path().join("findings.txt");
    let o = run(&[
        "-q",
        "hunt",
        "--year",
        "2021",
        "--format",
        "table",
        "-o",
        s(&file),
        "--feed",
        s(&certfr()),
        s(&demo_log()),
    ]);
    code(&o, 0);
    let t = std::fs::read_to_string(&file).expect("table written");
    assert!(!t.contains('\u{1b}'));
    for id in &ids {
        assert!(t.contains(id.as_str()), "{t}");
    }
}

#[test]
fn feed_list_is_a_table_that_fits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("feeds.db");
    let o = run(&[
        "--db",
        s(&db),
        "feed",
        "add",
        s(&certfr()),
        "--name",
        "certfr-apt31",
    ]);
    code(&o, 0);
    let o = bin()
        .env("COLUMNS", "72")
        .args(["--db", s(&db), "feed", "list"])
        .output()
        .expect("run");
    code(&o, 0);
    let t = out(&o);
    let lines: Vec<&str> = t.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{t}");
    assert!(lines[1].starts_with("certfr-apt31"), "{t}");
    // 161 indicators, right-aligned under its header.
    let col = lines[0].find("INDICATORS").expect("header") + "INDICATORS".len();
    assert_eq!(&lines[1][col - 3..col], "161", "{t}");
    for l in &lines {
        assert!(l.chars().count() <= 72, "{l:?}");
    }
}

/// Run `args` with a pseudo-terminal as stdout (util-linux `script`), to
/// see what a person at a terminal sees. `None` when `script` is missing.
fn on_terminal(args: &[&str], no_color: bool) -> Option<String> {
    let script = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let mut cmdline = format!("{} ", env!("CARGO_BIN_EXE_orbwatch"));
    for a in args {
        cmdline.push_str(&format!("'{}' ", a.replace('\'', "'\\''")));
    }
    let mut c = Command::new(script);
    c.env("TZ", "UTC")
        .env("COLUMNS", "150")
        .env_remove("NO_COLOR")
        .args(["-qec", &cmdline, "/dev/null"]);
    if no_color {
        c.env("NO_COLOR", "1");
    }
    let o = c.output().ok()?;
    Some(String::from_utf8_lossy(&o.stdout).into_owned())
}

#[test]
fn colour_on_severity_only_on_a_terminal_and_not_with_no_color() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = store_with_hunt(dir.path());
    let Some(t) = on_terminal(&["--db", s(&db), "findings"], false) else {
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    };
    // The critical finding's severity is coloured, the rest of its row not.
    let row = t.lines().find(|l| l.contains("critical")).expect(&t);
    assert!(row.starts_with('\u{1b}'), "{row:?}");
    assert!(row.contains("critical"), "{row:?}");
    let after = row.split("\u{1b}[39m").nth(1).expect("colour reset");
    assert!(!after.contains('\u{1b}'), "{row:?}");
    let plain = on_terminal(&["--db", s(&db), "findings"], true).expect("script ran before");
    assert!(plain.contains("critical"), "{plain}");
    assert!(!plain.contains('\u{1b}'), "NO_COLOR: {plain:?}");
}

#[test]
fn completions_and_man_page() {
    for shell in ["bash", "zsh", "fish"] {
        let o = run(&["completions", shell]);
        code(&o, 0);
        let text = out(&o);
        for word in ["hunt", "triage", "timezone", "fail-on", "completions"] {
            assert!(text.contains(word), "{shell} completion lacks {word}");
        }
    }
    let o = run(&["completions", "tcsh"]);
    code(&o, 2);
    let o = run(&["man"]);
    code(&o, 0);
    let man = out(&o);
    assert!(
        man.starts_with(".ie") || man.contains(".TH orbwatch"),
        "{man}"
    );
    assert!(man.contains("hunt") && man.contains("completions"));
}

#[test]
fn the_coverage_on_screen_is_a_summary_with_details_behind_v() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/logs"));
    let feed = certfr();
    let hunt = |extra: &[&str]| -> Output {
        let mut args = vec!["hunt", "--year", "2021", "--feed", s(&feed)];
        args.extend_from_slice(extra);
        args.push(s(&logs));
        run(&args)
    };
    let o = hunt(&[]);
    code(&o, 0);
    let e = err(&o);
    assert!(
        e.contains("2 inputs (syslog ×2): records 37  parsed 37  skipped 0  rejected 0  matched 9"),
        "{e}"
    );
    // No per-input block.
    assert!(!e.contains("demo-auth.log (syslog)"), "{e}");
    assert!(e.contains("Findings: 4 (4 inside validity windows"), "{e}");
    // -v: each input, and no colour codes into a pipe.
    let o = hunt(&["-v"]);
    code(&o, 0);
    let e = err(&o);
    assert!(e.contains("demo-auth.log (syslog)"), "{e}");
    assert!(e.contains("records 13  parsed 13"), "{e}");
    assert!(e.contains("INFO"), "tracing at -v: {e}");
    assert!(!e.contains('\u{1b}'), "no ANSI into a pipe: {e:?}");
    // --coverage -: the JSON on stdout, after the findings.
    let cov_file = dir.path().join("c.json");
    let f_out = dir.path().join("f.jsonl");
    let o = hunt(&["-o", s(&f_out), "--coverage", "-"]);
    code(&o, 0);
    let v: Value = serde_json::from_str(&out(&o)).expect("coverage JSON on stdout");
    assert_eq!(v["inputs"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["findings"], 4);
    let o = hunt(&["--format", "jsonl", "--coverage", s(&cov_file)]);
    code(&o, 0);
    assert_eq!(jsonl(&out(&o)).len(), 4);
}

#[test]
fn the_summary_names_problems_and_gaps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // January and March of one log type: February is a gap.
    write(
        d,
        "jan.log",
        "Jan  5 10:00:00 gw01 sshd[1]: Failed password for root from 192.0.2.1 port 1 ssh2\n",
    );
    write(
        d,
        "mar.log",
        "Mar 30 10:00:00 gw01 sshd[1]: Failed password for root from 192.0.2.1 port 1 ssh2\n",
    );
    truncated_gz(
        d,
        "old.log.1.gz",
        "Jan  6 10:00:00 gw01 sshd[1]: Failed password for root from 192.0.2.2 port 1 ssh2\n",
    );
    let feed_dir = tempfile::tempdir().expect("tempdir");
    let feed = write(feed_dir.path(), "f.txt", "192.0.2.1\n");
    let o = run(&[
        "hunt",
        "--year",
        "2021",
        "--no-behaviour",
        "--feed",
        s(&feed),
        s(d),
    ]);
    code(&o, 2);
    let e = err(&o);
    assert!(e.contains("ERROR") && e.contains("old.log.1.gz"), "{e}");
    assert!(
        e.contains("3 inputs (syslog ×3): records 2005  parsed 11"),
        "{e}"
    );
    // Jan 5 10:00 .. Jan 6 10:00 (one day between two files) and the end
    // of the corrupt file (Mar 3) .. Mar 30: 1 + 27 whole days.
    assert!(
        e.contains("gaps: syslog: 2 periods without logs, 28 days uncovered"),
        "{e}"
    );
}

#[test]
fn progress_has_a_line_per_phase_on_a_terminal_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (feed, out_file, log) = (certfr(), dir.path().join("f.jsonl"), demo_log());
    let args = [
        "hunt",
        "--year",
        "2021",
        "--feed",
        s(&feed),
        "-o",
        s(&out_file),
        s(&log),
    ];
    let Some(t) = on_terminal(&args, true) else {
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    };
    let t = t.replace('\r', "\n");
    assert!(
        t.lines()
            .any(|l| l.contains("reading and matching") && l.contains("100%")),
        "{t}"
    );
    assert!(
        t.contains("behaviour detectors and evidence: done in"),
        "{t}"
    );
    assert!(
        t.contains("writing findings and keeping the hunt: done in"),
        "{t}"
    );
    // Not on a pipe.
    let o = run(&args);
    code(&o, 0);
    assert!(!err(&o).contains("reading and matching"), "{}", err(&o));
    assert!(!err(&o).contains("writing findings"), "{}", err(&o));
}
