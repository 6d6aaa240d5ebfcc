//! The engine's answer does not depend on how the work was cut: the order
//! in which files are given, where chunks of a file begin and end, the
//! number of threads, or whether observations stayed in memory or were
//! spilled to disk. Each case writes a small mixed log (sshd failures and
//! successes, firewall drops, one listed relay) over several files, hunts
//! it one way as the reference, and then in a shuffled way.

use std::path::Path;

use orbwatch_detect::IocEngine;
use orbwatch_detect::behaviour::BehaviourConfig;
use orbwatch_engine::{BehaviourOptions, Engine, EngineOptions};
use orbwatch_source::Filters;
use proptest::prelude::*;

/// The relay the feed lists; some records name it.
const RELAY: &str = "198.51.100.77";

fn ioc() -> IocEngine {
    ioc_of(&[RELAY])
}

/// A feed "relays" of `values`.
fn ioc_of(values: &[&str]) -> IocEngine {
    feed::ioc_of("relays", values)
}

#[path = "support/feed.rs"]
mod feed;

/// Lines of one mixed log, one second apart (so no two records share a
/// time and the replay order is the same however the files are read).
fn lines(seed: u64, n: usize) -> Vec<String> {
    let mut x = seed | 1;
    let mut next = |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    (0..n)
        .map(|i| {
            let t = 36_000 + i as u64;
            let ts = format!(
                "Mar  1 {:02}:{:02}:{:02}",
                t / 3600 % 24,
                t / 60 % 60,
                t % 60
            );
            let src = match next(10) {
                0 => RELAY.to_string(),
                1..=3 => format!("203.0.113.{}", next(4)),
                _ => format!("192.0.2.{}", next(40)),
            };
            match next(4) {
                0 => format!(
                    "{ts} fw kernel: [UFW BLOCK] IN=eth0 OUT= SRC={src} DST=10.0.0.{} LEN=60 TOS=0x00 PREC=0x00 TTL=50 ID=1 DF PROTO=TCP SPT=5555 DPT={} WINDOW=1024 RES=0x00 SYN URGP=0",
                    next(3) + 1,
                    next(30) + 1
                ),
                1 => format!(
                    "{ts} srv sshd[{}]: Accepted password for user{} from {src} port {} ssh2",
                    next(9999),
                    next(6),
                    1024 + next(60000)
                ),
                _ => format!(
                    "{ts} srv sshd[{}]: Failed password for user{} from {src} port {} ssh2",
                    next(9999),
                    next(6),
                    1024 + next(60000)
                ),
            }
        })
        .collect()
}

/// Write `lines` over `files` files, each in time order (line i goes to
/// file `i % files`).
fn write(dir: &Path, lines: &[String], files: usize) -> Vec<String> {
    let mut bodies = vec![String::new(); files];
    for (i, l) in lines.iter().enumerate() {
        bodies[i % files].push_str(l);
        bodies[i % files].push('\n');
    }
    bodies
        .iter()
        .enumerate()
        .map(|(k, b)| {
            let p = dir.join(format!("part{k}.log"));
            std::fs::write(&p, b).expect("write test log");
            p.to_string_lossy().into_owned()
        })
        .collect()
}

/// Hunt `paths`; findings as sorted JSON lines. `keys`: IOC sessions
/// held in memory during the sweep.
fn hunt(
    paths: &[String],
    threads: usize,
    chunk_bytes: u64,
    budget: u64,
    keys: usize,
) -> Vec<String> {
    let mut out = hunt_with(
        paths,
        EngineOptions {
            ioc_sessions_in_memory: keys,
            ..options(threads, chunk_bytes, budget, None)
        },
    );
    out.sort();
    out
}

/// Hunt `paths`; findings as JSON lines in the order the sink got them.
/// `held`: IOC findings kept in memory during the replay (`None`: the
/// default).
fn hunt_in_order(
    paths: &[String],
    threads: usize,
    chunk_bytes: u64,
    budget: u64,
    held: Option<usize>,
) -> Vec<String> {
    hunt_with(paths, options(threads, chunk_bytes, budget, held))
}

/// The options of [`hunt_in_order`].
fn options(threads: usize, chunk_bytes: u64, budget: u64, held: Option<usize>) -> EngineOptions {
    let config = BehaviourConfig {
        max_observations: budget,
        ..Default::default()
    };
    EngineOptions {
        year: Some(2024),
        threads,
        chunk_bytes,
        evidence_limit: 0,
        behaviour: Some(BehaviourOptions {
            config,
            ioc_findings_in_memory: held,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Hunt `paths` with `opts`; findings as JSON lines in the order the
/// sink got them.
fn hunt_with(paths: &[String], opts: EngineOptions) -> Vec<String> {
    hunt_with_coverage(paths, opts).0
}

/// [`hunt_with`], and the coverage.
fn hunt_with_coverage(
    paths: &[String],
    opts: EngineOptions,
) -> (Vec<String>, orbwatch_detect::Coverage) {
    hunt_feed(paths, ioc(), opts)
}

/// [`hunt_with_coverage`] against the indicators of `ioc`.
fn hunt_feed(
    paths: &[String],
    ioc: IocEngine,
    opts: EngineOptions,
) -> (Vec<String>, orbwatch_detect::Coverage) {
    let engine = Engine::new(ioc, opts).expect("engine starts");
    let (inputs, problems) = orbwatch_source::expand(paths, &Filters::default());
    assert!(problems.is_empty());
    let mut found = Vec::new();
    let summary = engine
        .hunt(&inputs, &problems, &mut found)
        .expect("hunt runs");
    assert_eq!(summary.input_errors, 0);
    assert_eq!(summary.coverage.findings, found.len() as u64);
    let lines = found
        .iter()
        .map(|f| serde_json::to_string(f).expect("finding serialises"))
        .collect();
    (lines, summary.coverage)
}

/// IOC findings that waited on disk during the replay come back
/// unchanged, in the same order, with the same ORB likelihood, as those
/// held in memory.
#[test]
fn ioc_findings_held_on_disk_during_the_replay_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = write(dir.path(), &lines(11, 2000), 2);
    let in_memory = hunt_in_order(&paths, 2, 4096, 0, None);
    assert!(
        in_memory
            .iter()
            .filter(|f| f.contains("\"ioc_match\""))
            .count()
            > 1,
        "the test needs several IOC findings: {in_memory:?}"
    );
    assert!(
        in_memory.iter().any(|f| f.contains("orb_likelihood")),
        "the test needs ORB likelihood on some findings"
    );
    assert_eq!(in_memory, hunt_in_order(&paths, 2, 4096, 0, Some(0)));
    assert_eq!(in_memory, hunt_in_order(&paths, 1, u64::MAX, 50, Some(1)));
}

/// IOC sessions written out of memory in sorted runs (one key held at
/// a time: a run per record, and one per chunk) and merged back give the
/// same findings, in the same order, with the same evidence and line
/// numbers, with behaviour on and off.
#[test]
fn ioc_sessions_written_out_of_memory_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = write(dir.path(), &lines(13, 2000), 2);
    for behaviour in [true, false] {
        let opts = |keys| {
            let o = options(2, 4096, 0, None);
            EngineOptions {
                ioc_sessions_in_memory: keys,
                behaviour: o.behaviour.clone().filter(|_| behaviour),
                spill_dir: Some(dir.path().to_path_buf()),
                ..o
            }
        };
        let reference = hunt_with(&paths, opts(usize::MAX));
        let iocs = reference
            .iter()
            .filter(|f| f.contains("\"ioc_match\""))
            .count();
        assert!(iocs > 2, "the test needs several IOC findings: {iocs}");
        assert!(reference.iter().any(|f| f.contains("\"line\":")));
        for keys in [1, 2, 50] {
            let other = hunt_with(&paths, opts(keys));
            assert!(
                reference == other,
                "{keys} sessions held: the findings differ"
            );
        }
        // No file can be made there: the sessions stay in memory, the
        // findings are the same, and the coverage says why.
        let (other, coverage) = hunt_with_coverage(
            &paths,
            EngineOptions {
                spill_dir: Some("/nonexistent/orbwatch".into()),
                ..opts(1)
            },
        );
        assert!(reference == other, "unwritable: the findings differ");
        // With behaviour on or off (it was only in the log then).
        let notes = &coverage.notes;
        assert!(
            notes
                .iter()
                .any(|n| n.contains("IOC sessions were kept in memory")
                    && n.contains("/nonexistent/orbwatch")),
            "behaviour {behaviour}: {notes:?}"
        );
    }
}

/// A capture is one unit however large: it writes its IOC sessions out
/// as it reads, and they come back the same (Zeek's wikipedia.pcap, BSD
/// licence, tests/data/captures/ATTRIBUTION.md).
#[test]
fn ioc_sessions_of_a_capture_written_out_of_memory_change_nothing() {
    let pcap = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/captures/zeek_wikipedia.pcap"
    );
    let paths = vec![pcap.to_string()];
    let feed = [
        "208.80.152.3",
        "208.80.152.2",
        "208.80.152.118",
        "141.142.2.2",
    ];
    let opts = |sessions| EngineOptions {
        ioc_sessions_in_memory: sessions,
        ..options(2, 4096, 0, None)
    };
    let (reference, _) = hunt_feed(&paths, ioc_of(&feed), opts(usize::MAX));
    let iocs = reference
        .iter()
        .filter(|f| f.contains("\"ioc_match\""))
        .count();
    assert!(iocs > 2, "the test needs several IOC findings: {iocs}");
    for sessions in [1, 2] {
        let (other, _) = hunt_feed(&paths, ioc_of(&feed), opts(sessions));
        assert!(
            reference == other,
            "{sessions} sessions held: the findings differ"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn findings_do_not_depend_on_file_order_chunks_threads_or_spilling(
        seed in any::<u64>(),
        n in 200usize..1500,
        files in 1usize..4,
        threads in 1usize..4,
        chunk_bytes in 512u64..8192,
        budget in prop_oneof![Just(0u64), 1u64..200],
        keys in prop_oneof![Just(usize::MAX), 1usize..40],
        rotate in 0usize..3,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let lines = lines(seed, n);
        let paths = write(dir.path(), &lines, files);
        let reference = hunt(&paths, 1, u64::MAX, 0, usize::MAX);
        prop_assert!(!reference.is_empty());
        let mut shuffled = paths.clone();
        let r = rotate % shuffled.len();
        shuffled.rotate_left(r);
        shuffled.reverse();
        let other = hunt(&shuffled, threads, chunk_bytes, budget, keys);
        prop_assert_eq!(reference, other);
    }
}

/// The same whole log in one file gives the same behaviour findings as
/// the log cut into three files (IOC findings differ only by file names).
#[test]
fn one_file_or_three_give_the_same_behaviour_findings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lines = lines(42, 3000);
    let one = dir.path().join("one");
    let three = dir.path().join("three");
    std::fs::create_dir_all(&one).expect("mkdir");
    std::fs::create_dir_all(&three).expect("mkdir");
    let a = write(&one, &lines, 1);
    let b = write(&three, &lines, 3);
    let kinds = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .map(|s| {
                let mut f: serde_json::Value = serde_json::from_str(&s).expect("json");
                f["evidence"] = serde_json::Value::Null;
                f.to_string()
            })
            .filter(|s| !s.contains("\"ioc_match\""))
            .collect()
    };
    let x = kinds(hunt(&a, 2, 4096, 0, usize::MAX));
    assert!(x.iter().any(|s| s.contains("brute_force")), "{x:?}");
    assert_eq!(x, kinds(hunt(&b, 2, 4096, 50, usize::MAX)));
}

/// A spill directory that cannot be written loses nothing: the runs stay
/// in memory, the findings are those of an unlimited hunt, and the
/// coverage says what happened.
#[test]
fn unwritable_spill_directory_keeps_runs_in_memory_and_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = write(dir.path(), &lines(7, 800), 2);
    let reference = hunt(&paths, 2, 4096, 0, usize::MAX);
    let missing = dir.path().join("no/such/dir");
    let opts = EngineOptions {
        year: Some(2024),
        threads: 2,
        chunk_bytes: 4096,
        evidence_limit: 0,
        behaviour: Some(BehaviourOptions {
            config: BehaviourConfig {
                max_observations: 1,
                ..Default::default()
            },
            spill_dir: Some(missing),
            ..Default::default()
        }),
        ..Default::default()
    };
    let engine = Engine::new(ioc(), opts).expect("engine starts");
    let (inputs, problems) = orbwatch_source::expand(&paths, &Filters::default());
    let mut found = Vec::new();
    let summary = engine
        .hunt(&inputs, &problems, &mut found)
        .expect("hunt runs");
    let mut got: Vec<String> = found
        .iter()
        .map(|f| serde_json::to_string(f).expect("finding serialises"))
        .collect();
    got.sort();
    assert_eq!(got, reference);
    let b = summary.coverage.behaviour.expect("behaviour coverage");
    assert_eq!(b.dropped, 0);
    assert!(
        b.notes
            .iter()
            .any(|n| n.contains("could not be written to a temporary file")),
        "{:?}",
        b.notes
    );
}

/// The coverage explains how the year of year-less syslog lines was chosen
/// only when some line had no year: rsyslog's ISO 8601 stamps carry it,
/// and a note about an assumption that was never made would mislead.
#[test]
fn year_note_only_when_a_year_was_assumed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bsd = dir.path().join("bsd.log");
    let iso = dir.path().join("iso.log");
    std::fs::write(
        &bsd,
        format!(
            "Mar  1 10:00:00 srv sshd[1]: Failed password for root from {RELAY} port 22 ssh2\n"
        ),
    )
    .expect("write");
    std::fs::write(
        &iso,
        format!("2024-03-01T10:00:00.000000+00:00 srv sshd[1]: Failed password for root from {RELAY} port 22 ssh2\n"),
    )
    .expect("write");
    let engine = Engine::new(ioc(), EngineOptions::default()).expect("engine starts");
    let paths = [
        bsd.to_string_lossy().into_owned(),
        iso.to_string_lossy().into_owned(),
    ];
    let (inputs, problems) = orbwatch_source::expand(&paths, &Filters::default());
    let mut found = Vec::new();
    let summary = engine
        .hunt(&inputs, &problems, &mut found)
        .expect("hunt runs");
    let note = |name: &str| {
        summary
            .coverage
            .inputs
            .iter()
            .find(|i| i.file.ends_with(name))
            .map(|i| i.year_note.clone())
            .expect("input in the coverage")
    };
    let bsd_note = note("bsd.log").expect("the BSD line had no year");
    assert!(bsd_note.contains("without a year were dated"), "{bsd_note}");
    assert_eq!(note("iso.log"), None);
    assert_eq!(found.len(), 2, "one sighting per file");
}
