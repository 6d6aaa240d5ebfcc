//! Feeds distributed through the compacted Kafka feeds topic (`orbwatch
//! feed publish`, `orbwatch worker --feeds-topic`), against a real
//! broker (tansu on loopback, see `orbwatch_kafka::test_broker`; skipped
//! when it is not installed, failed with ORBWATCH_REQUIRE_TOOLS=1).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use orbwatch_kafka::test_broker::TestBroker;

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/store.rs"]
mod store;
use daemon::{Reap, sigterm, wait_for};

const PARTITIONS: u32 = 4;
const HOSTS: usize = 8;
/// Feed `orb` version 1.
const FEED_V1: [&str; 2] = ["192.0.2.10", "192.0.2.11"];
/// Named by the early records only, before version 2 lists it.
const EARLY_IP: &str = "192.0.2.77";
/// Named by the records after version 2 is in use.
const LATE_IP: &str = "192.0.2.88";
/// Batches (one line per host each) that name `EARLY_IP`.
const EARLY_BATCHES: usize = 30;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn orbwatch(db: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_orbwatch"));
    c.current_dir(root())
        .arg("--db")
        .arg(db)
        .env_remove("ORBWATCH_DB")
        .env("ORBWATCH_LOG", "info");
    c
}

/// `feed add --name orb` of `ips` into the publisher's store.
fn feed_add(db: &Path, dir: &Path, ips: &[&str]) {
    let file = dir.join("orb.txt");
    std::fs::write(&file, ips.join("\n") + "\n").expect("write feed");
    let out = orbwatch(db)
        .args(["feed", "add", "--name", "orb"])
        .arg(&file)
        .output()
        .expect("feed add");
    assert!(
        out.status.success(),
        "feed add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `feed publish orb`; its one line of output.
fn feed_publish(db: &Path, broker: &TestBroker) -> String {
    let out = orbwatch(db)
        .args(["feed", "publish", "orb", "--brokers", &broker.bootstrap()])
        .output()
        .expect("feed publish");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "feed publish: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Batch `n`: one sshd line per host at 10:00 + n s on 3 June 2021,
/// naming in turn the new address of the phase (`EARLY_IP` early,
/// `LATE_IP` late, none between; one host of each batch, so no two
/// lines that name it have the same time), a version-1 address, and
/// noise.
fn batch(n: usize, phase: usize) -> Vec<(Option<String>, Vec<u8>)> {
    (0..HOSTS)
        .map(|h| {
            let ip = match ((n + h) % 8, phase) {
                (0, 0) => EARLY_IP.to_string(),
                (0, 2) => LATE_IP.to_string(),
                (1 | 5, _) => FEED_V1[(n + h) % 2].to_string(),
                (k, _) => format!("198.51.100.{}", (h * 8 + k + n) % 250),
            };
            let t = jiff::civil::date(2021, 6, 3)
                .at(10, 0, 0, 0)
                .checked_add(jiff::SignedDuration::from_secs(n as i64))
                .expect("time");
            let line = format!(
                "Jun  3 {} web{h} sshd[{}]: Failed password for root from {ip} port {} ssh2",
                t.strftime("%H:%M:%S"),
                5000 + n,
                40000 + h
            );
            (Some(format!("web{h}")), line.into_bytes())
        })
        .collect()
}

/// A worker of `group` on `raw.logs` that reads the feeds topic and
/// keeps its findings in `db`, logging to `log`; `args` add to it.
fn worker_with(broker: &TestBroker, group: &str, args: &[&str], db: &Path, log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_orbwatch"))
        .current_dir(root())
        .args(["worker", "--brokers", &broker.bootstrap()])
        .args(["--topic", "raw.logs", "--group", group])
        .args(["--feeds-topic", "orbwatch.feeds"])
        .args(args)
        .args(["--year", "2021", "--timezone", "UTC"])
        .args(["--commit-interval", "100ms"])
        .args(["-X", "session.timeout.ms=6000"])
        .args(["-X", "heartbeat.interval.ms=500"])
        .arg("--db")
        .arg(db)
        .env_remove("ORBWATCH_DB")
        .env("ORBWATCH_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("worker log"))
        .spawn()
        .expect("worker")
}

fn worker(broker: &TestBroker, db: &Path, log: &Path) -> Child {
    worker_with(broker, "feeds", &["--no-behaviour"], db, log)
}

/// (run, finding JSON) of the IOC findings kept in the store.
fn findings(db: &Path) -> Vec<(i64, serde_json::Value)> {
    store::findings_where(db, "kind = 'ioc_match'")
}

fn log_of(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// Issue 15's acceptance line "a new feed version published while
/// records flow is used by all workers within 10 s": the publisher's
/// store holds feed `orb` version 1, published to the feeds topic (with
/// a record that is not a feed message before it, which the workers
/// refuse and count). Two `--stage all` workers of one group, whose own
/// store has no feeds, read the feeds topic and share a 4-partition raw
/// topic into which records flow (8 hosts, about 80 a second). Early
/// records name `EARLY_IP`, which version 1 does not list. Version 2
/// (adding `EARLY_IP` and `LATE_IP`) is added to the publisher's store
/// and published while the records flow: both workers log that they
/// match it within 10 s, and the records that name `LATE_IP` after it
/// give findings in both workers' runs that say `feed_version` 2, while
/// version 1's addresses were found with `feed_version` 1.
#[test]
fn a_feed_version_published_while_records_flow_is_used_by_every_worker() {
    let Some(broker) = TestBroker::start() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let intel = tmp.path().join("intel.db");
    let out = tmp.path().join("out.db");
    broker.create_topic("raw.logs", PARTITIONS);
    broker.create_topic("orbwatch.feeds", 1);
    broker.produce(
        "orbwatch.feeds",
        &[(Some("orb".to_string()), b"not a feed message".to_vec())],
    );
    feed_add(&intel, tmp.path(), &FEED_V1);
    let said = feed_publish(&intel, &broker);
    assert!(
        said.contains("published feed `orb` version 1: 2 indicators in 1 chunks"),
        "{said}"
    );
    let logs = [tmp.path().join("w1.log"), tmp.path().join("w2.log")];
    let mut workers: Vec<Reap> = logs
        .iter()
        .map(|l| Reap(Some(worker(&broker, &out, l))))
        .collect();
    // Both workers' logs on a timeout: a worker that never got a
    // partition (seen once in CI under load) must say where it stood.
    let start = Instant::now();
    while !logs.iter().all(|l| log_of(l).contains("kafka: assigned")) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out waiting for both workers to get partitions:\n--- worker 1:\n{}\n--- worker 2:\n{}",
            log_of(&logs[0]),
            log_of(&logs[1])
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(3));
    for l in &logs {
        let text = log_of(l);
        assert!(
            text.contains(
                "worker: feed orb version 1 from the feeds topic orbwatch.feeds: 2 indicators"
            ),
            "{text}"
        );
        assert!(text.contains("refused, not a feed record"), "{text}");
    }

    let phase = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let early_lines = AtomicUsize::new(0);
    let batches = AtomicUsize::new(0);
    let (produced, delay) = std::thread::scope(|s| {
        struct Stop<'a>(&'a AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, SeqCst);
            }
        }
        let stopper = Stop(&stop);
        let producer = s.spawn(|| {
            let mut produced = 0usize;
            let mut n = 0;
            while !stop.load(SeqCst) {
                let p = if n < EARLY_BATCHES {
                    0
                } else {
                    phase.load(SeqCst).max(1)
                };
                let b = batch(n, p);
                if p == 0 {
                    let named = b
                        .iter()
                        .filter(|(_, v)| String::from_utf8_lossy(v).contains(EARLY_IP))
                        .count();
                    early_lines.fetch_add(named, SeqCst);
                }
                broker.produce("raw.logs", &b);
                produced += b.len();
                n += 1;
                batches.store(n, SeqCst);
                std::thread::sleep(Duration::from_millis(100));
            }
            produced
        });
        wait_for(
            "version 1's findings from both workers, with its version",
            Duration::from_secs(60),
            || {
                let runs: BTreeSet<i64> = findings(&out)
                    .into_iter()
                    .filter(|(_, f)| f["feed_version"] == 1 && f["feed"] == "orb")
                    .map(|(run, _)| run)
                    .collect();
                runs.len() == 2
            },
        );
        wait_for(
            "the early records, and a few without the new addresses",
            Duration::from_secs(60),
            || batches.load(SeqCst) >= EARLY_BATCHES + 20,
        );
        let mut v2: Vec<&str> = FEED_V1.to_vec();
        v2.extend([EARLY_IP, LATE_IP]);
        feed_add(&intel, tmp.path(), &v2);
        let said = feed_publish(&intel, &broker);
        let published = Instant::now();
        println!("{said}");
        assert!(
            said.contains("published feed `orb` version 2: 4 indicators"),
            "{said}"
        );
        wait_for(
            "both workers to match version 2",
            Duration::from_secs(10),
            || {
                logs.iter()
                    .all(|l| log_of(l).contains("worker: now matching feed orb version 2 ("))
            },
        );
        let delay = published.elapsed();
        phase.store(2, SeqCst);
        wait_for(
            "both workers' findings on the late address, with version 2",
            Duration::from_secs(30),
            || {
                let runs: BTreeSet<i64> = findings(&out)
                    .into_iter()
                    .filter(|(_, f)| f["indicator"] == LATE_IP && f["feed_version"] == 2)
                    .map(|(run, _)| run)
                    .collect();
                runs.len() == 2
            },
        );
        std::thread::sleep(Duration::from_secs(1));
        drop(stopper);
        (producer.join().expect("producer"), delay)
    });
    println!(
        "version 2 matched by both workers {:.2} s after `feed publish` returned ({produced} records produced, {} early lines name {EARLY_IP})",
        delay.as_secs_f64(),
        early_lines.load(SeqCst)
    );
    assert!(delay < Duration::from_secs(10));
    // The re-hunt: each worker replays its partitions up to where it
    // stood at the swap, against the two new addresses only, and finds
    // every early record that named EARLY_IP, once.
    let early = early_lines.load(SeqCst) as u64;
    let on_early = || -> u64 {
        findings(&out)
            .into_iter()
            .filter(|(_, f)| f["indicator"] == EARLY_IP)
            .map(|(_, f)| f["count"].as_u64().unwrap_or(0))
            .sum()
    };
    wait_for(
        "both workers' re-hunts and the early address's findings",
        Duration::from_secs(60),
        || {
            logs.iter().all(|l| {
                log_of(l).contains("worker: re-hunt of feed orb version 2 (2 new indicators) done:")
            }) && on_early() >= early
        },
    );
    for w in &mut workers {
        let st = sigterm(w.0.as_mut().expect("child"));
        assert!(st.success(), "worker exit {st:?}");
        w.0 = None;
    }
    for (n, l) in logs.iter().enumerate() {
        let text = log_of(l);
        for line in text.lines().filter(|l| l.contains("feed")) {
            println!("w{}: {line}", n + 1);
        }
        assert!(
            text.contains("worker: feed orb version 2 arrived on orbwatch.feeds"),
            "{text}"
        );
        assert!(text.contains("2 new since version 1"), "{text}");
    }
    assert_eq!(
        on_early(),
        early,
        "sightings of {EARLY_IP}, named only by records from before version 2, found by the re-hunt"
    );
    let replayed: u64 = logs
        .iter()
        .map(|l| {
            let text = log_of(l);
            let line = text
                .lines()
                .find(|l| l.contains("re-hunt of feed orb version 2 (2 new indicators) done:"))
                .expect("re-hunt line")
                .to_string();
            line.split("done: ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse::<u64>().ok())
                .expect("records replayed")
        })
        .sum();
    println!("the re-hunts replayed {replayed} records and found {early} sightings of {EARLY_IP}");
    assert!(
        replayed >= (EARLY_BATCHES * HOSTS) as u64,
        "the re-hunts replayed {replayed} records, fewer than the early ones"
    );
    assert!(
        replayed < produced as u64,
        "the re-hunts replayed {replayed} records of {produced}: past the swap"
    );
    // Every finding of the late address says version 2; none of version
    // 1's addresses is credited to a version that did not list it.
    let all = findings(&out);
    for (_, f) in &all {
        let v = f["feed_version"]
            .as_i64()
            .expect("feed_version in every finding");
        if f["indicator"] == LATE_IP || f["indicator"] == EARLY_IP {
            assert_eq!(v, 2, "{f}");
        }
    }
}

/// The re-hunt in a staged topology: a `--stage 1` worker owns the raw
/// partitions, so it replays them when a new version arrives, and writes
/// the re-hunt's findings itself (no detector runs in a re-hunt, so
/// nothing waits for stage 2). Records naming `EARLY_IP` are produced
/// before version 2 lists it; once it is published, the stage-1 worker's
/// re-hunt finds every one of them, once, with `feed_version` 2.
#[test]
fn a_stage1_worker_rehunts_its_raw_partitions_for_a_new_version() {
    let Some(broker) = TestBroker::start() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let intel = tmp.path().join("intel.db");
    let out = tmp.path().join("out.db");
    broker.create_topic("raw.logs", PARTITIONS);
    broker.create_topic("orbwatch.observations", 2);
    broker.create_topic("orbwatch.feeds", 1);
    feed_add(&intel, tmp.path(), &FEED_V1);
    feed_publish(&intel, &broker);
    let mut early = 0usize;
    for n in 0..EARLY_BATCHES {
        let b = batch(n, 0);
        early += b
            .iter()
            .filter(|(_, v)| String::from_utf8_lossy(v).contains(EARLY_IP))
            .count();
        broker.produce("raw.logs", &b);
    }
    assert!(early > 0);
    let log = tmp.path().join("stage1.log");
    let mut w = Reap(Some(worker_with(
        &broker,
        "rehunt1",
        &[
            "--stage",
            "1",
            "--observations-topic",
            "orbwatch.observations",
        ],
        &out,
        &log,
    )));
    let ends: u64 = (EARLY_BATCHES * HOSTS) as u64;
    // Its offsets are committed only once the records' observations
    // leave stage 1's reorder window (a minute of quiet for so few), so
    // the assignment and a few seconds of reading are waited for.
    wait_for(
        "the stage-1 worker's partitions and feed",
        Duration::from_secs(60),
        || {
            let text = log_of(&log);
            text.contains("kafka: assigned") && text.contains("feed orb version 1")
        },
    );
    std::thread::sleep(Duration::from_secs(3));
    let mut v2: Vec<&str> = FEED_V1.to_vec();
    v2.extend([EARLY_IP, LATE_IP]);
    feed_add(&intel, tmp.path(), &v2);
    feed_publish(&intel, &broker);
    let on_early = || -> u64 {
        findings(&out)
            .into_iter()
            .filter(|(_, f)| f["indicator"] == EARLY_IP && f["feed_version"] == 2)
            .map(|(_, f)| f["count"].as_u64().unwrap_or(0))
            .sum()
    };
    wait_for(
        "the stage-1 re-hunt and its findings",
        Duration::from_secs(60),
        || {
            log_of(&log).contains("worker: re-hunt of feed orb version 2 (2 new indicators) done:")
                && on_early() >= early as u64
        },
    );
    let st = sigterm(w.0.as_mut().expect("child"));
    assert!(st.success(), "worker exit {st:?}");
    w.0 = None;
    let text = log_of(&log);
    assert!(text.contains("stage 1 stopped"), "{text}");
    assert_eq!(
        on_early(),
        early as u64,
        "every early record naming {EARLY_IP}, once ({ends} records produced)"
    );
}

/// `feed publish` of a feed the store does not have says so, and names
/// the command that lists them; with the broker down it says which.
#[test]
fn feed_publish_refuses_what_it_cannot_do() {
    let tmp = tempfile::tempdir().expect("tmp");
    let intel = tmp.path().join("intel.db");
    feed_add(&intel, tmp.path(), &FEED_V1);
    let out = orbwatch(&intel)
        .args(["feed", "publish", "nope", "--brokers", "127.0.0.1:1"])
        .output()
        .expect("feed publish");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no feed named `nope`") && err.contains("orbwatch feed list"),
        "{err}"
    );
    let out = orbwatch(&intel)
        .args(["feed", "publish", "orb", "--brokers", "127.0.0.1:1"])
        .output()
        .expect("feed publish");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach the Kafka brokers 127.0.0.1:1"),
        "{err}"
    );
}
