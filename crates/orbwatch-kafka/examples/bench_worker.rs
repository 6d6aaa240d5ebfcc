//! Scaling benchmark of `orbwatch worker`: records per second of each
//! stage with 1 and 2 workers of one group, CPU seconds and peak memory
//! per worker, and the group's consumer lag over time, against a real
//! Kafka-protocol broker (tansu on 127.0.0.1, as the tests start it).
//!
//! ```text
//! cargo build --release -p orbwatch
//! cargo run --release -p orbwatch-kafka --example bench_worker -- \
//!     --orbwatch target/release/orbwatch --log sshd.log --feed feed.txt \
//!     --records 1000000 [--partitions 6] [--workers 1,2] [--out bench/out-worker]
//! ```
//!
//! What it does, in one run:
//! 1. produces the first `--records` lines of `--log` to a `--partitions`
//!    raw topic, keyed by line number modulo 64, so that every partition
//!    covers the same span of event time. Unkeyed, librdkafka's sticky
//!    partitioner gave two of six partitions 0.4 % of the lines each
//!    (a few early batches): their clocks then stay behind and hold stage
//!    1's watermark, and so its commits, until the reorder window's idle
//!    flush (60 s), which would measure that wait and not the stage;
//! 2. `--stage all` with 1 worker, then 2, each in a fresh group over the
//!    same raw topic;
//! 3. `--stage 1` with 1, then 2 workers, each into its own observations
//!    topic; the one written by the run with the most workers is the
//!    input of
//! 4. `--stage 2` with 1, then 2 workers, each writing its own summaries
//!    topic; the one written by the run with the most workers is the
//!    input of
//! 5. `--stage 3` with 1, then 2 workers (one partition: the second is a
//!    standby; measured to show it, not to claim a gain);
//! 6. `orbwatch hunt` on the same lines written to a file, and compares
//!    its findings (id, kind, count, source, sources) with the latest
//!    state of each finding on the findings topics: of `--stage all` with
//!    the most workers, and of stages 1 → 2 → 3 with the most stage-1 and
//!    stage-2 workers;
//! 7. with `--kill 1,2` (or `1`, or `2`), stages 1 → 2 → 3 once more,
//!    with one of the two workers of each stage named killed with
//!    `kill -9` once 40 % of their input is committed, compared with the
//!    hunt in the same way.
//!
//! A stage is timed from the start of its processes until the group has
//! committed every offset of its input topic (lag 0): the wall time a
//! backlog of that size takes, start-up and group join included. The
//! bulk rate runs from the first commit to 99 % committed: it leaves out
//! the group join and the tail a stage holds back for its reorder window
//! (stage 1 and 2 commit a record only once it left the window). Lag is
//! sampled every 500 ms into `OUT/lag-STAGE-K.csv`. Each worker's CPU
//! seconds (utime + stime from `/proc/PID/stat`) and peak RSS (`VmHWM`)
//! are read just before it is sent SIGTERM.
//!
//! Why end offsets are counted by reading the topic, not asked of the
//! broker: tansu 0.6 answers ListOffsets with wrong high watermarks (see
//! `test_broker::TestBroker::produce`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use orbwatch_kafka::test_broker::TestBroker;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// How long one stage may take before the benchmark gives up on it.
const STAGE_LIMIT: Duration = Duration::from_secs(1800);

#[derive(Clone)]
struct Opts {
    orbwatch: PathBuf,
    log: PathBuf,
    feed: PathBuf,
    records: usize,
    partitions: i32,
    workers: Vec<usize>,
    out: PathBuf,
    /// Also run stages 1 → 2 → 3 with one worker of each stage named
    /// here (`1`, `2` or `1,2`) killed with `kill -9` mid-stream.
    kill: Vec<String>,
}

fn usage(why: &str) -> ! {
    eprintln!(
        "bench_worker: {why}\nusage: bench_worker --orbwatch BIN --log FILE --feed FILE --records N [--partitions 6] [--workers 1,2] [--out DIR] [--kill 1,2]"
    );
    std::process::exit(2)
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        orbwatch: PathBuf::new(),
        log: PathBuf::new(),
        feed: PathBuf::new(),
        records: 1_000_000,
        partitions: 6,
        workers: vec![1, 2],
        out: PathBuf::from("bench/out-worker"),
        kill: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--orbwatch" => o.orbwatch = val().into(),
            "--log" => o.log = val().into(),
            "--feed" => o.feed = val().into(),
            "--records" => {
                o.records = val()
                    .parse()
                    .unwrap_or_else(|_| usage("--records: a count"))
            }
            "--partitions" => {
                o.partitions = val()
                    .parse()
                    .unwrap_or_else(|_| usage("--partitions: a count"))
            }
            "--workers" => {
                o.workers = val()
                    .split(',')
                    .map(|w| {
                        w.parse()
                            .unwrap_or_else(|_| usage("--workers: counts like 1,2"))
                    })
                    .collect()
            }
            "--out" => o.out = val().into(),
            "--kill" => {
                o.kill = val().split(',').map(str::to_string).collect();
                if o.kill.iter().any(|k| k != "1" && k != "2") {
                    usage("--kill: the stages whose worker is killed, 1, 2 or 1,2");
                }
            }
            other => usage(&format!("unknown argument {other}")),
        }
    }
    for (p, what) in [
        (&o.orbwatch, "--orbwatch"),
        (&o.log, "--log"),
        (&o.feed, "--feed"),
    ] {
        if !p.is_file() {
            usage(&format!("{what} {}: no such file", p.display()));
        }
    }
    o
}

/// One worker process and where its log goes.
struct Worker {
    child: Child,
    log: PathBuf,
}

/// CPU seconds (user + system) and peak RSS in bytes of a live process.
fn cpu_and_peak(pid: u32) -> (f64, u64) {
    let tick = 100.0; // USER_HZ on Linux
    let cpu = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name, which may hold spaces.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split(' ').collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / tick)
        })
        .unwrap_or(f64::NAN);
    let peak = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024)
        })
        .unwrap_or(0);
    (cpu, peak)
}

/// Call `each` with every record of `topic` (partition, offset,
/// payload), read from the beginning without a group until nothing came
/// for 3 s.
fn scan_topic(
    broker: &TestBroker,
    topic: &str,
    partitions: i32,
    mut each: impl FnMut(i32, i64, Option<&[u8]>),
) {
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "bench-topic-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("topic reader");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)
            .expect("partition");
    }
    c.assign(&tpl).expect("assign");
    let mut last = Instant::now();
    while last.elapsed() < Duration::from_secs(3) {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            each(m.partition(), m.offset(), m.payload());
            last = Instant::now();
        }
    }
}

/// The next offset of every partition of `topic` that holds records.
fn end_offsets(broker: &TestBroker, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let mut end = BTreeMap::new();
    scan_topic(broker, topic, partitions, |p, offset, _| {
        let e = end.entry(p).or_insert(0);
        *e = (*e).max(offset + 1);
    });
    end
}

/// What one run of a stage measured.
struct StageRun {
    stage: &'static str,
    workers: usize,
    input_records: i64,
    wall: f64,
    /// Seconds to the first commit (start-up, group join, first batch).
    first_commit: f64,
    /// Seconds until 99 % of the input was committed.
    most: f64,
    cpu: Vec<f64>,
    peak: Vec<u64>,
    last_lines: Vec<String>,
}

/// Start `workers` processes of `stage`, sample the group's lag on
/// `input` until it is 0, read each worker's CPU and peak memory, stop
/// them with SIGTERM and keep their last log line.
#[allow(clippy::too_many_arguments)]
fn run_stage(
    o: &Opts,
    broker: &TestBroker,
    stage: &'static str,
    workers: usize,
    group: &str,
    input: &str,
    input_partitions: i32,
    end: &BTreeMap<i32, i64>,
    extra: &[&str],
    kill_at: Option<f64>,
) -> StageRun {
    let total: i64 = end.values().sum();
    let start = Instant::now();
    let mut procs = Vec::new();
    for w in 0..workers {
        let tag = if kill_at.is_some() { "-kill" } else { "" };
        let log = o.out.join(format!("worker-{stage}-{workers}{tag}-{w}.log"));
        let f = std::fs::File::create(&log).expect("worker log");
        let mut c = Command::new(&o.orbwatch);
        c.args(["worker", "--stage", stage, "--brokers"])
            .arg(broker.bootstrap())
            .args(["--group", group])
            // As the tests set them: a killed or stopped member is noticed
            // in seconds rather than librdkafka's default 45 s.
            .args([
                "-X",
                "session.timeout.ms=6000",
                "-X",
                "heartbeat.interval.ms=500",
            ])
            .args(extra)
            .env("ORBWATCH_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(f);
        procs.push(Worker {
            child: c.spawn().expect("start orbwatch worker"),
            log,
        });
    }
    let tag = if kill_at.is_some() { "-kill" } else { "" };
    let lag_csv = o.out.join(format!("lag-{stage}-{workers}{tag}.csv"));
    let mut lag_out = std::fs::File::create(&lag_csv).expect("lag csv");
    writeln!(lag_out, "seconds,lag").expect("lag csv");
    let mut first_commit = None;
    let mut most = None;
    // Worker 0 once `kill_at` of the input is committed: `kill -9`, so it
    // neither flushes nor commits; the group gives its partitions to the
    // others after the session timeout.
    let mut killed = false;
    let wall = loop {
        let committed = broker.committed(group, input, input_partitions);
        let lag: i64 = end
            .iter()
            .map(|(p, e)| e - committed.get(p).copied().unwrap_or(0).min(*e))
            .sum();
        let t = start.elapsed().as_secs_f64();
        writeln!(lag_out, "{t:.1},{lag}").expect("lag csv");
        if lag > 0 && lag * 1000 < total && (t as u64).is_multiple_of(30) {
            // A tail that does not move: say which partitions hold it.
            let behind: Vec<String> = end
                .iter()
                .filter(|(p, e)| committed.get(p).copied().unwrap_or(0) < **e)
                .map(|(p, e)| format!("{p}: {} of {e}", committed.get(p).copied().unwrap_or(0)))
                .collect();
            println!(
                "stage {stage} at {t:.0} s: still to commit {}",
                behind.join(", ")
            );
        }
        if first_commit.is_none() && lag < total {
            first_commit = Some(t);
        }
        if most.is_none() && lag * 100 <= total {
            most = Some(t);
        }
        if lag == 0 {
            break t;
        }
        if let Some(frac) = kill_at
            && !killed
            && (total - lag) as f64 >= frac * total as f64
        {
            let _ = procs[0].child.kill();
            let _ = procs[0].child.wait();
            killed = true;
            println!(
                "stage {stage}: worker 0 of {workers} killed with kill -9 at {t:.1} s, {} of {total} committed",
                total - lag
            );
        }
        for p in procs.iter_mut().skip(usize::from(killed)) {
            if let Ok(Some(st)) = p.child.try_wait() {
                panic!(
                    "a stage-{stage} worker exited early ({st}); see {}",
                    p.log.display()
                );
            }
        }
        assert!(
            start.elapsed() < STAGE_LIMIT,
            "stage {stage} with {workers} workers: lag still {lag} after {STAGE_LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let alive = usize::from(killed);
    let (cpu, peak): (Vec<f64>, Vec<u64>) = procs[alive..]
        .iter()
        .map(|p| cpu_and_peak(p.child.id()))
        .unzip();
    for p in &procs[alive..] {
        let _ = Command::new("kill")
            .args(["-TERM", &p.child.id().to_string()])
            .status();
    }
    let mut last_lines = Vec::new();
    for p in &mut procs[alive..] {
        let st = p.child.wait().expect("wait for worker");
        assert!(
            st.success(),
            "worker exited with {st}; see {}",
            p.log.display()
        );
        let f = std::fs::File::open(&p.log).expect("worker log");
        let last = BufReader::new(f)
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.contains("stopped;"))
            .last()
            .unwrap_or_default();
        last_lines.push(last);
    }
    StageRun {
        stage,
        workers,
        input_records: total,
        wall,
        first_commit: first_commit.unwrap_or(wall),
        most: most.unwrap_or(wall),
        cpu,
        peak,
        last_lines,
    }
}

fn main() {
    let o = parse_opts();
    std::fs::create_dir_all(&o.out).expect("output folder");
    let broker = TestBroker::start().unwrap_or_else(|| usage("no tansu broker"));
    println!("broker on {}", broker.bootstrap());

    let reader = BufReader::new(std::fs::File::open(&o.log).expect("log"));
    let records: Vec<(Option<String>, Vec<u8>)> = reader
        .split(b'\n')
        .take(o.records)
        .enumerate()
        .map(|(i, l)| (Some(format!("k{}", i % 64)), l.expect("read log")))
        .collect();
    let bytes: usize = records.iter().map(|r| r.1.len() + 1).sum();
    // The same lines as a file, for the batch hunt the findings are
    // compared with.
    let lines_file = o.out.join("records.log");
    {
        let mut f =
            std::io::BufWriter::new(std::fs::File::create(&lines_file).expect("records.log"));
        for (_, l) in &records {
            f.write_all(l)
                .and_then(|()| f.write_all(b"\n"))
                .expect("records.log");
        }
        f.flush().expect("records.log");
    }
    broker.create_topic("raw", o.partitions as u32);
    let t = Instant::now();
    let raw_end = broker.produce("raw", &records);
    println!(
        "produced {} records ({:.1} MB) to raw ({} partitions) in {:.1} s",
        records.len(),
        bytes as f64 / 1e6,
        o.partitions,
        t.elapsed().as_secs_f64()
    );
    drop(records);
    println!("raw topic: next offset per partition {raw_end:?}");

    let feed = o.feed.to_string_lossy().to_string();
    let obs_parts = o.partitions * 2;
    let mut runs = Vec::new();
    for &k in &o.workers {
        let findings = format!("findings-all-{k}");
        broker.create_topic(&findings, 6);
        runs.push(run_stage(
            &o,
            &broker,
            "all",
            k,
            &format!("g-all-{k}"),
            "raw",
            o.partitions,
            &raw_end,
            &[
                "--topic",
                "raw",
                "--feed",
                &feed,
                "--findings-topic",
                &findings,
            ],
            None,
        ));
    }
    let mut obs_of = BTreeMap::new();
    for &k in &o.workers {
        let obs = format!("obs-{k}");
        let findings = format!("findings-1-{k}");
        broker.create_topic(&obs, obs_parts as u32);
        broker.create_topic(&findings, 6);
        runs.push(run_stage(
            &o,
            &broker,
            "1",
            k,
            &format!("g-1-{k}"),
            "raw",
            o.partitions,
            &raw_end,
            &[
                "--topic",
                "raw",
                "--feed",
                &feed,
                "--observations-topic",
                &obs,
                "--findings-topic",
                &findings,
            ],
            None,
        ));
        obs_of.insert(k, obs);
    }
    // Stage 2 reads what the most stage-1 workers wrote, stage 3 what
    // the most stage-2 workers wrote: the acceptance's "2 stage-1 and 2
    // stage-2 workers".
    let obs = obs_of.values().next_back().expect("a stage-1 run").clone();
    let obs_end = end_offsets(&broker, &obs, obs_parts);
    let mut sum_of = BTreeMap::new();
    for &k in &o.workers {
        let sums = format!("sum-{k}");
        let findings = format!("findings-2-{k}");
        broker.create_topic(&sums, 1);
        broker.create_topic(&findings, 6);
        runs.push(run_stage(
            &o,
            &broker,
            "2",
            k,
            &format!("g-2-{k}"),
            &obs,
            obs_parts,
            &obs_end,
            &[
                "--feed",
                &feed,
                "--observations-topic",
                &obs,
                "--summaries-topic",
                &sums,
                "--findings-topic",
                &findings,
            ],
            None,
        ));
        sum_of.insert(k, sums);
    }
    let sums = sum_of.values().next_back().expect("a stage-2 run").clone();
    let sum_end = end_offsets(&broker, &sums, 1);
    for &k in &o.workers {
        let findings = format!("findings-3-{k}");
        broker.create_topic(&findings, 6);
        runs.push(run_stage(
            &o,
            &broker,
            "3",
            k,
            &format!("g-3-{k}"),
            &sums,
            1,
            &sum_end,
            &["--summaries-topic", &sums, "--findings-topic", &findings],
            None,
        ));
    }

    println!();
    println!(
        "| stage | workers | input records | s to lag 0 | records/s | s to first commit | s to 99 % | records/s from first commit to 99 % | CPU s per worker | records per CPU s | peak RSS MB per worker |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|");
    for r in &runs {
        let cpu: f64 = r.cpu.iter().sum();
        let bulk = (r.most - r.first_commit).max(0.5);
        println!(
            "| {} | {} | {} | {:.1} | {:.0} | {:.1} | {:.1} | {:.0} | {} | {:.0} | {} |",
            r.stage,
            r.workers,
            r.input_records,
            r.wall,
            r.input_records as f64 / r.wall,
            r.first_commit,
            r.most,
            0.99 * r.input_records as f64 / bulk,
            r.cpu
                .iter()
                .map(|c| format!("{c:.1}"))
                .collect::<Vec<_>>()
                .join(" + "),
            r.input_records as f64 / cpu,
            r.peak
                .iter()
                .map(|p| format!("{}", p / 1_000_000))
                .collect::<Vec<_>>()
                .join(" + "),
        );
    }
    println!();
    for r in &runs {
        for l in &r.last_lines {
            println!("stage {} × {}: {}", r.stage, r.workers, trim_log(l));
        }
    }
    println!("lag samples: {}", display(&o.out));

    // Same answer as the batch hunt on the same lines?
    let hunt = hunt_findings(&o, &lines_file);
    let kmax = *o.workers.iter().max().expect("worker counts");
    let kmin = *o.workers.iter().min().expect("worker counts");
    for &k in &o.workers {
        let all = latest_findings(&broker, &o.out, &format!("findings-all-{k}"), 6);
        compare(&format!("--stage all × {k}"), &hunt, &all);
    }
    let mut staged = latest_findings(&broker, &o.out, &format!("findings-2-{kmax}"), 6);
    staged.extend(latest_findings(
        &broker,
        &o.out,
        &format!("findings-3-{kmin}"),
        6,
    ));
    compare(
        &format!("stage 1 × {kmax} → stage 2 × {kmax} → stage 3 × {kmin}"),
        &hunt,
        &staged,
    );
    if !o.kill.is_empty() {
        let killed = kill_runs(&o, &broker, &raw_end, &feed, obs_parts);
        compare(
            &format!(
                "stage 1 × 2 → stage 2 × 2 → stage 3 × 1, one worker of stage {} killed with kill -9 at 40 %",
                o.kill.join(" and one of stage ")
            ),
            &hunt,
            &killed,
        );
        let sightings = |m: &BTreeMap<String, Key>| -> u64 {
            m.values().filter(|k| k.1 == "ioc_match").map(|k| k.2).sum()
        };
        println!(
            "indicator sightings counted: hunt {}, killed run {}",
            sightings(&hunt),
            sightings(&killed)
        );
    }
}

/// Stages 1 → 2 → 3 again, stages 1 and 2 with 2 workers each; in the
/// stages of `--kill`, one of them is killed with `kill -9` once 40 % of
/// its input is committed. The findings of stages 2 and 3.
fn kill_runs(
    o: &Opts,
    broker: &TestBroker,
    raw_end: &BTreeMap<i32, i64>,
    feed: &str,
    obs_parts: i32,
) -> BTreeMap<String, Key> {
    for t in [
        "obs-kill",
        "findings-1-kill",
        "findings-2-kill",
        "findings-3-kill",
    ] {
        broker.create_topic(t, if t == "obs-kill" { obs_parts as u32 } else { 6 });
    }
    broker.create_topic("sum-kill", 1);
    // Logs and lag samples of these runs in OUT/kill.
    let o = &Opts {
        out: o.out.join("kill"),
        ..o.clone()
    };
    std::fs::create_dir_all(&o.out).expect("OUT/kill");
    let kill_at = |stage: &str| o.kill.iter().any(|k| k == stage).then_some(0.4);
    let mut runs = vec![run_stage(
        o,
        broker,
        "1",
        2,
        "g-1-kill",
        "raw",
        o.partitions,
        raw_end,
        &[
            "--topic",
            "raw",
            "--feed",
            feed,
            "--observations-topic",
            "obs-kill",
            "--findings-topic",
            "findings-1-kill",
        ],
        kill_at("1"),
    )];
    let obs_end = end_offsets(broker, "obs-kill", obs_parts);
    println!(
        "observations after the stage-1 kill: {} (without a kill: one per record and watermarks)",
        obs_end.values().sum::<i64>()
    );
    runs.push(run_stage(
        o,
        broker,
        "2",
        2,
        "g-2-kill",
        "obs-kill",
        obs_parts,
        &obs_end,
        &[
            "--feed",
            feed,
            "--observations-topic",
            "obs-kill",
            "--summaries-topic",
            "sum-kill",
            "--findings-topic",
            "findings-2-kill",
        ],
        kill_at("2"),
    ));
    let sum_end = end_offsets(broker, "sum-kill", 1);
    runs.push(run_stage(
        o,
        broker,
        "3",
        1,
        "g-3-kill",
        "sum-kill",
        1,
        &sum_end,
        &[
            "--summaries-topic",
            "sum-kill",
            "--findings-topic",
            "findings-3-kill",
        ],
        None,
    ));
    for r in &runs {
        println!(
            "kill run, stage {} × {}: {} input records, lag 0 after {:.1} s; {}",
            r.stage,
            r.workers,
            r.input_records,
            r.wall,
            r.last_lines
                .iter()
                .map(|l| trim_log(l))
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    let mut out = latest_findings(broker, &o.out, "findings-2-kill", 6);
    out.extend(latest_findings(broker, &o.out, "findings-3-kill", 6));
    out
}

/// What is compared of a finding: id, kind, count, source, and its
/// sorted sources (a distributed brute force's members).
type Key = (String, String, u64, String, Vec<String>);

fn key(f: &serde_json::Value) -> Key {
    let mut sources: Vec<String> = f["sources"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    sources.sort();
    (
        f["id"].as_str().unwrap_or_default().to_string(),
        f["kind"].as_str().unwrap_or_default().to_string(),
        f["count"].as_u64().unwrap_or(0),
        f["src_ip"].as_str().unwrap_or_default().to_string(),
        sources,
    )
}

/// The batch hunt's findings on the same lines, by id.
fn hunt_findings(o: &Opts, lines: &Path) -> BTreeMap<String, Key> {
    let out = o.out.join("hunt.jsonl");
    let t = Instant::now();
    let st = Command::new(&o.orbwatch)
        .args(["-q", "hunt", "--feed"])
        .arg(&o.feed)
        .args(["--format", "jsonl", "-o"])
        .arg(&out)
        .arg(lines)
        .env("ORBWATCH_DB", o.out.join("hunt.db"))
        .status()
        .expect("orbwatch hunt");
    assert!(st.success(), "orbwatch hunt: {st}");
    println!(
        "batch hunt of the same lines: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    std::fs::read_to_string(&out)
        .expect("hunt output")
        .lines()
        .map(|l| {
            let k = key(&serde_json::from_str(l).expect("finding JSON"));
            (k.0.clone(), k)
        })
        .collect()
}

/// The latest state of every finding on a findings topic (key = id),
/// also written to `OUT/TOPIC.jsonl` for a closer look.
fn latest_findings(
    broker: &TestBroker,
    out_dir: &Path,
    topic: &str,
    partitions: i32,
) -> BTreeMap<String, Key> {
    let mut out = BTreeMap::new();
    let mut raw: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    scan_topic(broker, topic, partitions, |_, _, payload| {
        let Some(v) = payload else { return };
        let k = key(&serde_json::from_slice(v).expect("finding JSON on the findings topic"));
        raw.insert(k.0.clone(), v.to_vec());
        out.insert(k.0.clone(), k);
    });
    let path = out_dir.join(format!("{topic}.jsonl"));
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("findings file"));
    for v in raw.values() {
        f.write_all(v)
            .and_then(|()| f.write_all(b"\n"))
            .expect("findings file");
    }
    f.flush().expect("findings file");
    out
}

fn compare(what: &str, hunt: &BTreeMap<String, Key>, got: &BTreeMap<String, Key>) {
    let missing: Vec<&Key> = hunt
        .iter()
        .filter(|(id, k)| got.get(*id) != Some(k))
        .map(|(_, k)| k)
        .collect();
    let extra: Vec<&Key> = got
        .iter()
        .filter(|(id, k)| hunt.get(*id) != Some(k))
        .map(|(_, k)| k)
        .collect();
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for k in hunt.values() {
        *kinds.entry(k.1.as_str()).or_default() += 1;
    }
    println!(
        "{what}: {} findings, hunt {} ({kinds:?}): {}",
        got.len(),
        hunt.len(),
        if missing.is_empty() && extra.is_empty() {
            "the same ids, kinds, counts and sources".to_string()
        } else {
            format!(
                "{} of the hunt's differ or are missing, {} differ or are extra",
                missing.len(),
                extra.len()
            )
        }
    );
    for k in missing.iter().take(5) {
        println!(
            "  hunt only: {} {} count {} {} ({} sources)",
            k.0,
            k.1,
            k.2,
            k.3,
            k.4.len()
        );
    }
    for k in extra.iter().take(5) {
        println!(
            "  worker only: {} {} count {} {} ({} sources)",
            k.0,
            k.1,
            k.2,
            k.3,
            k.4.len()
        );
    }
}

/// The message of a tracing line, without its time and level.
fn trim_log(line: &str) -> &str {
    line.find("worker:").map_or(line, |i| &line[i..])
}

fn display(p: &Path) -> String {
    p.join("lag-*.csv").display().to_string()
}
