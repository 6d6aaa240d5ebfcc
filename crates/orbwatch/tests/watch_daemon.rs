//! `orbwatch watch` as an operator runs it: a real process, real signals,
//! the store read by the other commands while the daemon runs.
//! Logs: crowdsec's ssh-bf test log (MIT, tests/data/logs-syslog).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(rel)
}

fn orbwatch(db: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_orbwatch"));
    c.arg("--db").arg(db).env_remove("ORBWATCH_DB");
    c
}

/// `hunt` over `file` with `feed` (year 2021, UTC): its findings.
fn hunt_jsonl(db: &Path, feed: &Path, file: &Path) -> Vec<serde_json::Value> {
    let out = orbwatch(db)
        .args([
            "hunt",
            "--year",
            "2021",
            "--timezone",
            "UTC",
            "--format",
            "jsonl",
        ])
        .arg("--feed")
        .arg(feed)
        .arg(file)
        .output()
        .expect("hunt runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Kill the daemon if a test fails half-way (never leave it running).
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Findings kept in the store now, as JSON values.
fn findings(db: &Path) -> Vec<serde_json::Value> {
    let out = orbwatch(db)
        .args(["findings", "--format", "jsonl"])
        .output()
        .expect("findings runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// `cmd` started as a daemon with its stdin and stderr piped to the test.
fn spawn_piped(cmd: &mut Command) -> Daemon {
    let child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("watch starts");
    Daemon(child)
}

/// `cmd` started as a daemon fed on its stdin: its stdin, and its stderr
/// read to the end on a thread.
fn spawn_fed(
    cmd: &mut Command,
) -> (
    Daemon,
    std::process::ChildStdin,
    std::thread::JoinHandle<String>,
) {
    let mut daemon = spawn_piped(cmd);
    let stdin = daemon.0.stdin.take().expect("stdin");
    let mut stderr = daemon.0.stderr.take().expect("stderr");
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    (daemon, stdin, log)
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// SIGUSR1's status line is shown at the default verbosity (how the
/// systemd unit runs the daemon), which otherwise stays at warnings: an
/// operator who asks must get an answer.
#[test]
fn the_status_line_asked_for_with_sigusr1_shows_at_the_default_verbosity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    let (mut daemon, mut stdin, log) = spawn_fed(
        orbwatch(&db)
            .args(["watch", "--stdin", "--year", "2021", "--timezone", "UTC"])
            .env_remove("ORBWATCH_LOG"),
    );
    stdin
        .write_all(b"2021-03-01T10:00:00Z srv sshd[1]: Failed password for root from 192.0.2.7 port 4000 ssh2\n2021-03-01T10:00:01Z srv sshd[1]: Failed password for root from 192.0.2.7 port 4001 ssh2\n")
        .expect("write lines");
    stdin.flush().expect("flush");
    // Asked a few times while stdin stays open (so the daemon runs on).
    let pid = daemon.0.id().to_string();
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(700));
        let asked = Command::new("kill").args(["-USR1", &pid]).status();
        assert!(asked.expect("kill runs").success());
    }
    std::thread::sleep(Duration::from_millis(700));
    drop(stdin);
    assert_eq!(daemon.0.wait().expect("wait").code(), Some(0));
    let text = log.join().expect("stderr");
    assert!(text.contains("watch status: 2 records"), "{text}");
    // Nothing else at info: the default verbosity is unchanged.
    for line in text.lines().filter(|l| l.contains("INFO")) {
        assert!(line.contains("watch status:"), "{line}");
    }
}

/// An indicator sighting is kept while the daemon runs (the brute force
/// is still open); SIGTERM flushes the detectors, keeps the spray finding,
/// closes the run and exits 0.
#[test]
fn findings_are_kept_as_raised_and_sigterm_flushes_and_exits_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    let feed = dir.path().join("relays.txt");
    std::fs::write(&feed, "35.188.49.176\n").expect("write feed");
    let log = std::fs::read(data("logs-syslog/crowdsec_ssh-bf.log")).expect("read log");
    // Its stderr stays with the child: read at the end, with a limit.
    let mut daemon = spawn_piped(
        orbwatch(&db)
            .args(["watch", "--stdin", "--year", "2021", "--timezone", "UTC"])
            .arg("--feed")
            .arg(&feed)
            .args(["--commit-interval", "200ms"])
            .env("ORBWATCH_LOG", "info"),
    );
    let mut stdin = daemon.0.stdin.take().expect("stdin");
    stdin.write_all(&log).expect("write lines");
    stdin.flush().expect("flush");
    // Kept while running: the sighting, not the spray (its episode is
    // still open: stdin has not ended).
    wait_for("the indicator finding", Duration::from_secs(20), || {
        findings(&db).iter().any(|f| f["kind"] == "ioc_match")
    });
    let running = findings(&db);
    assert!(
        running.iter().all(|f| f["kind"] == "ioc_match"),
        "{running:#?}"
    );
    let ioc = &running[0];
    assert_eq!(ioc["src_ip"], "35.188.49.176");
    // The same count and id as a hunt over the file.
    let batch = hunt_jsonl(
        &dir.path().join("other.db"),
        &feed,
        &data("logs-syslog/crowdsec_ssh-bf.log"),
    );
    let b = batch
        .iter()
        .find(|f| f["kind"] == "ioc_match")
        .expect("the hunt sights the relay");
    assert_eq!(ioc["id"], b["id"]);
    assert_eq!(ioc["count"], b["count"]);
    let hunts = orbwatch(&db)
        .args(["hunts", "--json"])
        .output()
        .expect("hunts");
    let hunts = String::from_utf8_lossy(&hunts.stdout).to_string();
    assert!(hunts.contains("\"finished\":null"), "{hunts}");

    sigterm(&daemon.0);
    let out = daemon.0.wait_with_output_ref();
    assert_eq!(out.0.code(), Some(0), "{}", out.1);
    assert!(out.1.contains("stopping"), "{}", out.1);
    let after = findings(&db);
    assert!(
        after.iter().any(|f| f["kind"] == "password_spray"
            && f["src_ip"] == "35.188.49.176"
            && f["count"] == 6),
        "{after:#?}"
    );
    let hunts = orbwatch(&db)
        .args(["hunts", "--json"])
        .output()
        .expect("hunts");
    let hunts = String::from_utf8_lossy(&hunts.stdout).to_string();
    assert!(!hunts.contains("\"finished\":null"), "{hunts}");
    drop(stdin);
}

/// The end of standard input ends the run like SIGTERM.
#[test]
fn the_end_of_stdin_ends_the_run_with_everything_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    let out = orbwatch(&db)
        .args(["watch", "--stdin", "--year", "2021", "--timezone", "UTC"])
        .stdin(std::fs::File::open(data("logs-syslog/crowdsec_ssh-bf.log")).expect("open"))
        .output()
        .expect("watch runs");
    assert_eq!(out.status.code(), Some(0));
    let f = findings(&db);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0]["kind"], "password_spray");
    assert_eq!(f[0]["evidence"].as_array().map(Vec::len), Some(6));
    assert_eq!(f[0]["evidence"][0]["file"], "stdin");
}

#[test]
fn nothing_to_watch_and_unknown_settings_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    let out = orbwatch(&db).arg("watch").output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing to watch"), "{err}");
    let cfg = dir.path().join("w.toml");
    std::fs::write(&cfg, "[alerts]\nwebhok = \"http://127.0.0.1:1/\"\n").expect("write");
    let out = orbwatch(&db)
        .args(["watch", "--stdin", "--config"])
        .arg(&cfg)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("webhok") && err.contains("w.toml"), "{err}");
}

trait WaitRef {
    fn wait_with_output_ref(&mut self) -> (std::process::ExitStatus, String);
}

impl WaitRef for Child {
    /// Wait (at most 30 s) and collect stderr.
    fn wait_with_output_ref(&mut self) -> (std::process::ExitStatus, String) {
        let start = Instant::now();
        loop {
            if let Some(st) = self.try_wait().expect("try_wait") {
                let mut err = String::new();
                if let Some(mut e) = self.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                return (st, err);
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the daemon did not stop within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The systemd unit in examples/ is valid for systemd (checked with
/// `systemd-analyze verify`, the binary path pointed at this build).
#[test]
fn the_example_systemd_unit_verifies() {
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
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let dir = tempfile::tempdir().expect("tempdir");
    // The worker's template unit is verified as an instance whose
    // environment file (the example) is where the unit says.
    let env_file = dir.path().join("worker-all.env");
    std::fs::copy(examples.join("worker.env"), &env_file).expect("copy the env example");
    for (name, as_name, exec) in [
        (
            "orbwatch-watch.service",
            "orbwatch-watch.service",
            "ExecStart=/usr/local/bin/orbwatch watch --config",
        ),
        (
            "orbwatch-worker@.service",
            "orbwatch-worker@all.service",
            "ExecStart=/usr/local/bin/orbwatch worker $ORBWATCH_WORKER_ARGS",
        ),
    ] {
        let unit = std::fs::read_to_string(examples.join(name)).expect("read the unit");
        assert!(unit.contains(exec), "{name}");
        let path = dir.path().join(as_name);
        std::fs::write(
            &path,
            unit.replace("/usr/local/bin/orbwatch", env!("CARGO_BIN_EXE_orbwatch"))
                .replace(
                    "/etc/orbwatch/worker-%i.env",
                    &env_file.display().to_string(),
                ),
        )
        .expect("write the unit");
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .expect("systemd-analyze runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {err}");
        // A warning about the unit itself (systemd-analyze also talks
        // about the host's own units, which are not ours).
        assert!(!err.contains(&format!("{as_name}:")), "{err}");
    }
}

/// `feed add` while the daemon runs: the new feed's addresses are matched
/// within seconds, without a restart, and no record is lost across the
/// swap (the status line at the stop counts every line written).
#[test]
fn a_feed_added_while_running_is_matched_within_seconds_and_nothing_is_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    let first = dir.path().join("first.txt");
    std::fs::write(&first, "198.51.100.1\n").expect("write feed");
    let added = orbwatch(&db)
        .args(["feed", "add", "--name", "first"])
        .arg(&first)
        .output()
        .expect("feed add runs");
    assert!(added.status.success());
    let cfg = dir.path().join("watch.toml");
    std::fs::write(
        &cfg,
        "[feeds]\nreload_check = \"300ms\"\n[store]\ncommit_interval = \"200ms\"\n[detect]\nbehaviour = false\n",
    )
    .expect("write config");
    let (mut daemon, mut stdin, log) = spawn_fed(
        orbwatch(&db)
            .args(["watch", "--stdin", "--timezone", "UTC", "--config"])
            .arg(&cfg)
            .env("ORBWATCH_LOG", "info"),
    );
    let mut written = 0u64;
    let line = |stdin: &mut std::process::ChildStdin, n: u64| {
        let l = format!(
            "2024-05-01T10:{:02}:{:02}+00:00 fw kernel: [UFW BLOCK] IN=eth0 OUT= SRC=203.0.113.77 DST=10.0.0.5 LEN=60 PROTO=TCP SPT=4000 DPT=22 SYN\n",
            n / 60 % 60,
            n % 60
        );
        stdin.write_all(l.as_bytes()).expect("write");
        stdin.flush().expect("flush");
    };
    for _ in 0..60 {
        line(&mut stdin, written);
        written += 1;
    }
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        findings(&db).is_empty(),
        "nothing names a listed address yet"
    );
    let second = dir.path().join("second.txt");
    std::fs::write(&second, "203.0.113.77\n").expect("write feed");
    let added = orbwatch(&db)
        .args(["feed", "add", "--name", "second"])
        .arg(&second)
        .output()
        .expect("feed add runs");
    assert!(added.status.success());
    let clock = Instant::now();
    wait_for(
        "matches against the new feed",
        Duration::from_secs(10),
        || {
            line(&mut stdin, written);
            written += 1;
            std::thread::sleep(Duration::from_millis(100));
            findings(&db)
                .iter()
                .any(|f| f["indicator"] == "203.0.113.77")
        },
    );
    assert!(
        clock.elapsed() < Duration::from_secs(5),
        "matching began {:?} after feed add",
        clock.elapsed()
    );
    sigterm(&daemon.0);
    let (status, _) = daemon.0.wait_with_output_ref();
    assert_eq!(status.code(), Some(0));
    let log = log.join().expect("stderr read");
    assert!(log.contains("now matching 2 indicators"), "{log}");
    assert!(
        log.contains(&format!("watch status: {written} records")),
        "every line written was read: {written}\n{log}"
    );
    drop(stdin);
}

/// One line naming the relay, second `n` of a 50-minute window.
fn relay_line(n: u64) -> String {
    format!(
        "2024-05-01T10:{:02}:{:02}+00:00 fw kernel: [UFW BLOCK] IN=eth0 OUT= SRC=203.0.113.77 DST=10.0.0.5 LEN=60 PROTO=TCP SPT={} DPT=22 SYN\n",
        n / 60 % 60,
        n % 60,
        1024 + n
    )
}

/// The relay's sightings kept in the store, summed over every finding of
/// every run.
fn kept_sightings(db: &Path) -> u64 {
    findings(db)
        .iter()
        .filter(|f| f["indicator"] == "203.0.113.77")
        .filter_map(|f| f["count"].as_u64())
        .sum()
}

/// `kill -9` while lines are being written and committed: nothing
/// committed is lost, and the restarted daemon resumes the followed file
/// from the stored offset, so that over both runs every line is counted
/// exactly once (a line read twice or skipped would change the sum).
#[test]
fn kill_9_then_restart_counts_every_followed_line_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    let feed = dir.path().join("relays.txt");
    std::fs::write(&feed, "203.0.113.77\n").expect("write feed");
    let log = dir.path().join("fw.log");
    std::fs::write(&log, "").expect("create log");
    let start = |db: &Path| {
        let child = orbwatch(db)
            .args(["watch", "--no-behaviour", "--tail-start-at", "beginning"])
            .args(["--timezone", "UTC", "--commit-interval", "100ms"])
            .arg("--tail")
            .arg(&log)
            .arg("--feed")
            .arg(&feed)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("watch starts");
        Daemon(child)
    };
    let append = |from: u64, to: u64| {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .expect("open log");
        for n in from..to {
            f.write_all(relay_line(n).as_bytes()).expect("append");
        }
        f.flush().expect("flush");
    };
    let mut first = start(&db);
    // Lines arrive in bursts while the daemon commits; it is killed in the
    // middle of a burst, after something was committed.
    let mut written = 0u64;
    for _ in 0..10 {
        append(written, written + 100);
        written += 100;
        std::thread::sleep(Duration::from_millis(30));
    }
    wait_for("a first commit", Duration::from_secs(20), || {
        kept_sightings(&db) > 0
    });
    append(written, written + 500);
    written += 500;
    first.0.kill().expect("kill -9");
    let _ = first.0.wait();
    let at_kill = kept_sightings(&db);
    // The kill came before the last burst was read (the tail polls every
    // 250 ms): the restart must read exactly the uncommitted part again.
    assert!(at_kill > 0 && at_kill < written, "{at_kill} of {written}");
    // More lines while it is down, then a restart.
    append(written, written + 400);
    written += 400;
    let second = start(&db);
    wait_for("every line counted", Duration::from_secs(30), || {
        kept_sightings(&db) >= written
    });
    // Give it time to (wrongly) count more, then stop it cleanly.
    std::thread::sleep(Duration::from_millis(500));
    sigterm(&second.0);
    let mut second = second;
    let (status, _) = second.0.wait_with_output_ref();
    assert_eq!(status.code(), Some(0));
    assert_eq!(kept_sightings(&db), written, "each line counted once");
}

/// More findings at once than the store writes as JSON at once (4,096)
/// or the daemon waits to keep (10,000): at the end of input every
/// session still open closes together, and they are kept in one
/// transaction, written in parts, each finding once, the run's count
/// exact and the daemon's own tally the same.
#[test]
fn more_findings_at_once_than_the_store_writes_at_once_are_all_kept_once() {
    const PEERS: u64 = 10_500;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    let feed = dir.path().join("relays.txt");
    std::fs::write(&feed, "203.0.113.77\n").expect("write feed");
    let input = dir.path().join("fw.log");
    let lines: String = (0..PEERS)
        .map(|n| {
            format!(
                "2024-05-01T10:00:{:02}+00:00 fw kernel: [UFW BLOCK] IN=eth0 OUT= SRC=203.0.113.77 DST=10.0.{}.{} LEN=60 PROTO=TCP SPT=4000 DPT=22 SYN\n",
                n % 60,
                n >> 8,
                n & 255
            )
        })
        .collect();
    std::fs::write(&input, lines).expect("write input");
    let out = orbwatch(&db)
        .args(["watch", "--stdin", "--no-behaviour", "--timezone", "UTC"])
        .arg("--feed")
        .arg(&feed)
        .env("ORBWATCH_LOG", "info")
        .stdin(std::fs::File::open(&input).expect("open"))
        .output()
        .expect("watch runs");
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    let kept = findings(&db);
    assert_eq!(kept.len() as u64, PEERS);
    let peers: std::collections::BTreeSet<&str> =
        kept.iter().filter_map(|f| f["dst_ip"].as_str()).collect();
    assert_eq!(peers.len() as u64, PEERS, "one finding per peer");
    assert!(kept.iter().all(|f| f["count"] == 1));
    let hunts = orbwatch(&db)
        .args(["hunts", "--json"])
        .output()
        .expect("hunts runs");
    let hunts: Vec<serde_json::Value> = String::from_utf8_lossy(&hunts.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(hunts.len(), 1, "{hunts:?}");
    assert_eq!(hunts[0]["findings"], PEERS);
    // Each raised once as new, its updates (the sessions' last state at
    // the end) not: the daemon learns which are new from the store.
    let raised = log.lines().filter(|l| l.contains("new finding ")).count();
    assert_eq!(raised as u64, PEERS);
    assert!(
        log.contains(&format!("{PEERS} findings kept in run")),
        "the daemon's tally: {}",
        log.lines().last().unwrap_or_default()
    );
}

/// A sender that re-sends records after a reconnect (rsyslog's omfwd
/// does) sends a restarted daemon lines it had already kept: the finding
/// they raise again has the same id, and what the store shows of it never
/// goes back (count, last sighting), nor is a re-sent line counted twice.
#[test]
fn records_sent_again_after_a_restart_never_shrink_a_kept_finding() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    let feed = dir.path().join("relays.txt");
    std::fs::write(&feed, "203.0.113.77\n").expect("write feed");
    let run = |lines: std::ops::Range<u64>| {
        let mut child = orbwatch(&db)
            .args(["watch", "--stdin", "--no-behaviour", "--timezone", "UTC"])
            .arg("--feed")
            .arg(&feed)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("watch starts");
        let mut input = child.stdin.take().expect("stdin");
        for n in lines {
            input.write_all(relay_line(n).as_bytes()).expect("send");
        }
        drop(input);
        let out = child.wait_with_output().expect("watch runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(0..10);
    let before = findings(&db);
    assert_eq!(before.len(), 1, "{before:#?}");
    assert_eq!(before[0]["count"], 10);
    // Restarted; the first three lines come again.
    run(0..3);
    let after = findings(&db);
    assert_eq!(after.len(), 1, "{after:#?}");
    assert_eq!(after[0]["id"], before[0]["id"]);
    for field in ["count", "first_seen", "last_seen", "evidence_total"] {
        assert_eq!(after[0][field], before[0][field], "{field}");
    }
    assert_eq!(kept_sightings(&db), 10);
}

/// Start `watch` with `args`, read its log until it names the address a
/// listener of `kind` (e.g. `syslog-tcp`) is bound to; the rest of the
/// log is collected on a thread.
fn start_listening(
    db: &Path,
    args: &[&str],
    kind: &str,
) -> (
    Daemon,
    std::net::SocketAddr,
    std::thread::JoinHandle<String>,
) {
    use std::io::BufRead;
    let mut child = orbwatch(db)
        .arg("watch")
        .args(args)
        .env("ORBWATCH_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("watch starts");
    let mut lines = std::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = String::new();
    let addr = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("watch ended before listening:\n{seen}"))
            .expect("read log");
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("listening:")
            && line.contains(kind)
            && let Some(a) = line.rsplit(" on ").next()
            && let Some(a) = a.split_whitespace().next()
            && let Ok(a) = a.parse()
        {
            break a;
        }
    };
    let rest = std::thread::spawn(move || {
        let mut s = seen;
        for l in lines.map_while(Result::ok) {
            s.push_str(&l);
            s.push('\n');
        }
        s
    });
    (Daemon(child), addr, rest)
}

/// The same lines sent over `--syslog-tcp` at full speed (octet-counted
/// frames, as rsyslog's omfwd sends them) give the same findings as
/// `hunt` over the file.
#[test]
fn syslog_over_tcp_gives_the_same_findings_as_a_hunt_of_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    let feed = dir.path().join("relays.txt");
    std::fs::write(&feed, "35.188.49.176\n").expect("write feed");
    let feed_s = feed.to_string_lossy().into_owned();
    let log = data("logs-syslog/crowdsec_ssh-slow-bf.log");
    let (mut daemon, addr, rest) = start_listening(
        &db,
        &[
            "--syslog-tcp",
            "127.0.0.1:0",
            "--year",
            "2021",
            "--timezone",
            "UTC",
            "--feed",
            &feed_s,
        ],
        "syslog-tcp",
    );
    // February, then September, each file from its own sender (one
    // connection each, one after the other): each stream keeps its own
    // year-less syslog dating, as each file has in a hunt.
    let mut sent = 0u64;
    for file in [&data("logs-syslog/crowdsec_ssh-bf.log"), &log] {
        let mut conn = std::net::TcpStream::connect(addr).expect("connect");
        let mut buf = Vec::new();
        for line in std::fs::read_to_string(file).expect("read").lines() {
            if line.is_empty() {
                continue;
            }
            buf.extend_from_slice(format!("{} {line}", line.len()).as_bytes());
            sent += 1;
        }
        conn.write_all(&buf).expect("send");
        drop(conn);
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_millis(500));
    sigterm(&daemon.0);
    let status = daemon.0.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
    let log_text = rest.join().expect("log");
    assert!(
        log_text.contains(&format!("watch status: {sent} records")),
        "all {sent} messages read:\n{log_text}"
    );
    let live = findings(&db);
    let mut batch = Vec::new();
    for file in [&log, &data("logs-syslog/crowdsec_ssh-bf.log")] {
        batch.extend(hunt_jsonl(&dir.path().join("b.db"), &feed, file));
    }
    let essence = |v: &[serde_json::Value]| {
        let mut e: Vec<String> = v
            .iter()
            .filter(|f| f["details"]["superseded_by"].is_null())
            .map(|f| {
                format!(
                    "{} {} {} {} {}",
                    f["id"], f["kind"], f["count"], f["first_seen"], f["src_ip"]
                )
            })
            .collect();
        e.sort();
        e
    };
    assert!(!batch.is_empty());
    assert_eq!(essence(&batch), essence(&live));
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// Soak: a steady stream over syslog TCP (failed logins from a pool of
/// 2,000 sources, stamped with the current time) for
/// `ORBWATCH_SOAK_SECS` seconds (60 by default, so the test suite stays
/// short; the 10 minutes is `ORBWATCH_SOAK_SECS=600`), RSS sampled
/// every second. Once the detectors' state and the evidence kept per
/// source have filled (ten records for each of the 2,000 sources: the
/// first ten seconds), RSS stays flat: the last third peaks within 5 %
/// (plus 4 MB of allocator slack) of the middle third. Every message sent
/// is processed. (With 20,000 sources the evidence takes 100 s to fill,
/// about 275 bytes a message until then, which a short soak would
/// mistake for a leak; so would the reorder window, which holds the
/// allowed lateness's worth of events: 5 s here. Each source tries 7
/// accounts: its password spray turns into a brute force once it has
/// failed more than 3 times per account, about 21 s in, and the 2,000
/// new findings are a step of about 8 MB. With 97 accounts that step
/// came at 291 s, in the last third of a 420-second soak, which then
/// failed.)
#[test]
fn a_steady_stream_keeps_memory_flat_and_loses_nothing() {
    let secs: u64 = std::env::var("ORBWATCH_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60)
        .max(9);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    let (mut daemon, addr, rest) = start_listening(
        &db,
        &[
            "--syslog-tcp",
            "127.0.0.1:0",
            "--timezone",
            "UTC",
            "--allowed-lateness",
            "5s",
        ],
        "syslog-tcp",
    );
    let pid = daemon.0.id();
    let mut conn = std::net::TcpStream::connect(addr).expect("connect");
    let start = Instant::now();
    let mut sent = 0u64;
    let mut samples: Vec<u64> = Vec::new();
    let mut next_sample = Duration::from_secs(1);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    while start.elapsed() < Duration::from_secs(secs) {
        // 200 messages every 100 ms: 2,000 msg/s.
        let mut buf = Vec::new();
        let now = jiff::Timestamp::now();
        for _ in 0..200 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let src = x % 2_000;
            let msg = format!(
                "{now} bastion sshd[{}]: Failed password for invalid user u{} from 198.18.{}.{} port {} ssh2",
                x % 30_000,
                x % 7,
                src / 250,
                src % 250 + 1,
                1024 + x % 60_000
            );
            buf.extend_from_slice(format!("{} {msg}", msg.len()).as_bytes());
            sent += 1;
        }
        conn.write_all(&buf).expect("send");
        std::thread::sleep(Duration::from_millis(100));
        if start.elapsed() >= next_sample {
            samples.push(rss_kb(pid));
            next_sample += Duration::from_secs(1);
        }
    }
    drop(conn);
    std::thread::sleep(Duration::from_millis(500));
    sigterm(&daemon.0);
    let status = daemon.0.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
    let log = rest.join().expect("log");
    assert!(
        log.contains(&format!("watch status: {sent} records")),
        "all {sent} messages processed:\n{}",
        log.lines().rev().take(5).collect::<Vec<_>>().join("\n")
    );
    let third = samples.len() / 3;
    let middle = samples[third..2 * third].iter().copied().max().unwrap_or(0);
    let last = samples[2 * third..].iter().copied().max().unwrap_or(0);
    eprintln!("soak {secs} s, {sent} messages, RSS kB per second: {samples:?}");
    assert!(middle > 0, "RSS was sampled");
    assert!(
        last <= middle + middle / 20 + 4 * 1024,
        "RSS grew: middle third peak {middle} kB, last third peak {last} kB: {samples:?}"
    );
}

/// The listeners' limits come from the settings: a message longer than
/// `max_message` (set in the config file) is cut and counted, and a
/// second connection beyond `--tcp-max-connections 1` is refused and
/// counted, while the first one keeps delivering.
#[test]
fn listener_limits_come_from_the_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    let cfg = dir.path().join("w.toml");
    std::fs::write(&cfg, "[sources]\nmax_message = 100\n").expect("write config");
    let cfg_s = cfg.to_string_lossy().into_owned();
    let (mut daemon, addr, rest) = start_listening(
        &db,
        &[
            "--syslog-tcp",
            "127.0.0.1:0",
            "--tcp-max-connections",
            "1",
            "--config",
            &cfg_s,
        ],
        "syslog-tcp",
    );
    let mut first = std::net::TcpStream::connect(addr).expect("connect");
    let long = format!("<13>Dec  3 10:00:00 host app: {}\n", "x".repeat(500));
    first.write_all(long.as_bytes()).expect("send");
    first.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(300));
    // Beyond the limit: accepted and closed at once.
    let mut second = std::net::TcpStream::connect(addr).expect("connect");
    let _ = second.write_all(b"<13>Dec  3 10:00:01 host app: refused\n");
    std::thread::sleep(Duration::from_millis(300));
    first
        .write_all(b"<13>Dec  3 10:00:02 host app: still here\n")
        .expect("send");
    drop(first);
    std::thread::sleep(Duration::from_millis(500));
    sigterm(&daemon.0);
    assert_eq!(daemon.0.wait().expect("wait").code(), Some(0));
    let log = rest.join().expect("log");
    let status = log
        .lines()
        .rev()
        .find(|l| l.contains("watch status:"))
        .unwrap_or_default()
        .to_string();
    assert!(status.contains("watch status: 2 records"), "{status}");
    assert!(status.contains("1 truncated"), "{status}");
    assert!(status.contains("1 refused"), "{status}");
}

/// A plain HTTP/1.1 GET on loopback: (status, body).
fn http_get(addr: &str, path: &str, token: Option<&str>) -> (u16, String) {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, body.to_string())
}

/// `watch --listen` serves the store as `orbwatch serve` does, from the
/// daemon: the API shows findings as they are kept, `/metrics` carries
/// the daemon's counters (records read, findings kept, per source), every
/// route but `/healthz` wants a token, and SIGTERM stops both.
#[test]
fn watch_with_listen_serves_the_api_and_its_counters() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    let feed = dir.path().join("relays.txt");
    std::fs::write(&feed, "35.188.49.176\n").expect("write feed");
    let made = orbwatch(&db)
        .args(["token", "create", "--name", "grafana", "--scope", "read"])
        .output()
        .expect("token create");
    let text = String::from_utf8_lossy(&made.stdout).to_string();
    let token = text
        .split_whitespace()
        .find(|w| w.starts_with("ow_"))
        .unwrap_or_else(|| panic!("no token in {text}"))
        .to_string();
    let log = std::fs::read(data("logs-syslog/crowdsec_ssh-bf.log")).expect("read log");
    let mut child = orbwatch(&db)
        .args(["watch", "--stdin", "--year", "2021", "--timezone", "UTC"])
        .arg("--feed")
        .arg(&feed)
        .args(["--commit-interval", "200ms", "--listen", "127.0.0.1:0"])
        .env("ORBWATCH_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("watch starts");
    let mut lines = std::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut daemon = Daemon(child);
    let mut seen = String::new();
    let addr = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("watch ended before serving:\n{seen}"))
            .expect("read log");
        seen.push_str(&line);
        seen.push('\n');
        if let Some(a) = line.split("on http://").nth(1) {
            break a.trim().to_string();
        }
    };
    let rest = std::thread::spawn(move || {
        let mut s = seen;
        for l in lines.map_while(Result::ok) {
            s.push_str(&l);
            s.push('\n');
        }
        s
    });
    let mut stdin = daemon.0.stdin.take().expect("stdin");
    stdin.write_all(&log).expect("write lines");
    stdin.flush().expect("flush");

    assert_eq!(http_get(&addr, "/healthz", None).0, 200);
    assert_eq!(http_get(&addr, "/metrics", None).0, 401);
    wait_for("the daemon's counters", Duration::from_secs(20), || {
        let (code, body) = http_get(&addr, "/metrics", Some(&token));
        code == 200
            && body.contains("orbwatch_watch_records_total 7\n")
            && body.contains("orbwatch_watch_findings_kept_total 1\n")
    });
    let (_, metrics) = http_get(&addr, "/metrics", Some(&token));
    assert!(
        metrics.contains("orbwatch_watch_source_records_total{source=\"stdin\"} 7"),
        "{metrics}"
    );
    for bound in [
        "records_ended_early_total",
        "accounts_forgotten_total",
        "ids_keys_ended_early_total",
        "explicit_sprays_ended_early_total",
    ] {
        assert!(
            metrics.contains(&format!(
                "# TYPE orbwatch_watch_{bound} counter\norbwatch_watch_{bound} 0\n"
            )),
            "every detector bound is a counter, at 0 here: {bound} in {metrics}"
        );
    }
    assert!(
        metrics.contains("orbwatch_findings{kind=\"ioc_match\""),
        "the store's metrics too: {metrics}"
    );
    let (code, body) = http_get(&addr, "/api/v1/findings", Some(&token));
    assert_eq!(code, 200, "{body}");
    let page: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(page["total"], 1, "{page:#}");
    assert_eq!(page["findings"][0]["finding"]["src_ip"], "35.188.49.176");
    assert_eq!(page["findings"][0]["finding"]["count"], 6);

    sigterm(&daemon.0);
    let status = daemon.0.wait().expect("wait");
    let log = rest.join().expect("log");
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "the server still answers after the daemon stopped"
    );
    drop(stdin);
}
