//! A daemon runs for months: the live pipeline's state must follow the
//! sources active now, not all the sources ever seen. Simulated time: a
//! day of failed logins from many sources, then an hour later a new
//! source; everything idle by then is judged and forgotten.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use orbwatch_detect::{InternalNets, IocEngine};
use orbwatch_engine::{BehaviourOptions, Engine, EngineOptions, LiveOptions, LivePipeline};
use orbwatch_intel::value::parse_value;
use orbwatch_intel::{Indicator, Provenance};
use orbwatch_live::{LiveRecord, Payload};

fn pipeline() -> LivePipeline {
    pipeline_with(BehaviourOptions::default(), LiveOptions::default())
}

/// A pipeline matching one relay address, with these behaviour and live
/// settings.
fn pipeline_with(behaviour: BehaviourOptions, live: LiveOptions) -> LivePipeline {
    let ind = Indicator::new(
        parse_value("198.51.100.77", None).expect("value"),
        Provenance {
            feed: "relays".into(),
            file: "relays.txt".into(),
            line: 1,
            record_id: None,
        },
    );
    let engine = Engine::new(
        IocEngine::new(vec![ind], InternalNets::default()),
        EngineOptions {
            year: Some(2024),
            behaviour: Some(behaviour),
            ..Default::default()
        },
    )
    .expect("engine");
    LivePipeline::new(engine, live).expect("pipeline")
}

/// Record `number` of `stream`, a syslog message.
fn record(stream: &Arc<str>, number: u64, bytes: Vec<u8>) -> LiveRecord {
    LiveRecord {
        prefiltered: None,
        prework: Default::default(),
        stream: stream.clone(),
        number,
        offset: 0,
        payload: Payload::Syslog,
        bytes,
        received: Timestamp::now(),
        checkpoint: None,
    }
}

fn line(secs: u64, src: &str) -> Vec<u8> {
    let t = Timestamp::from_second(1_714_550_400 + secs as i64).expect("time");
    format!("{t} srv sshd[1]: Failed password for root from {src} port 4000 ssh2").into_bytes()
}

/// A function handing a pipeline the next line of `stream` (numbered
/// from 1): a failed login from `src` at `secs` after the tests' epoch.
fn feeder(stream: &str, payload: Payload) -> impl FnMut(&mut LivePipeline, u64, &str) {
    let stream: Arc<str> = Arc::from(stream);
    let now = Instant::now();
    let mut n = 0u64;
    move |p: &mut LivePipeline, secs: u64, src: &str| {
        n += 1;
        p.handle(
            LiveRecord {
                prefiltered: None,
                prework: Default::default(),
                stream: stream.clone(),
                number: n,
                offset: 0,
                payload,
                bytes: line(secs, src),
                received: Timestamp::now(),
                checkpoint: None,
            },
            now,
        );
    }
}

#[test]
fn idle_sources_sessions_and_evidence_are_forgotten_as_event_time_passes() {
    let mut p = pipeline();
    let mut send = feeder(
        "syslog-tcp 127.0.0.1:601 from 127.0.0.1:5000",
        Payload::Line,
    );
    let now = Instant::now();
    // 20,000 sources, three failures each, spread over a day; the relay
    // is among them.
    for i in 0..20_000u64 {
        let src = format!("203.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        for k in 0..3 {
            send(&mut p, i * 4 + k, &src);
        }
        if i % 1000 == 0 {
            send(&mut p, i * 4 + 3, "198.51.100.77");
        }
    }
    p.tick(now + Duration::from_secs(1));
    let found = p.take_output().findings;
    let busy = p.stats();
    assert!(busy.tracked_keys > 1000, "{busy:?}");
    assert!(busy.evidence_bytes > 100_000, "{busy:?}");
    // The relay's sightings are more than an hour apart: each one is a
    // session, closed an hour (plus the lateness) after it, the last one
    // too by the end of the day.
    assert_eq!(busy.open_ioc_sessions, 0, "{busy:?}");
    assert_eq!(found.iter().filter(|f| f.ioc.is_some()).count(), 20);
    // Fifteen days later (event time: past distributed spray's 14 days
    // of memory per source), one more source.
    send(&mut p, 20_000 * 4 + 15 * 86_400, "192.0.2.1");
    p.tick(now + Duration::from_secs(2));
    let _ = p.take_output();
    let quiet = p.stats();
    assert!(quiet.tracked_keys <= 2, "{quiet:?}");
    // One account name ("root", and the empty name), no IPv6 address.
    assert_eq!(quiet.names_kept, 2, "{quiet:?}");
    assert_eq!(quiet.open_ioc_sessions, 0, "{quiet:?}");
    assert!(quiet.evidence_bytes < 1000, "{quiet:?}");
    assert_eq!(quiet.records, 20_000 * 3 + 20 + 1);
}

/// A stream that says nothing for a while is forgotten (its decoder
/// state), its counts kept under its source's name in the coverage.
#[test]
fn idle_streams_are_forgotten_and_their_counts_kept() {
    let mut p = pipeline();
    let now = Instant::now();
    for c in 0..50u64 {
        let stream: Arc<str> =
            Arc::from(format!("syslog-tcp 127.0.0.1:601 from 127.0.0.1:{}", 5000 + c).as_str());
        p.handle(
            LiveRecord {
                prefiltered: None,
                prework: Default::default(),
                stream,
                number: 1,
                offset: 0,
                payload: Payload::Syslog,
                bytes: line(c, "192.0.2.9"),
                received: Timestamp::now(),
                checkpoint: None,
            },
            now,
        );
    }
    assert_eq!(p.stats().streams, 50);
    p.tick(now + Duration::from_secs(3600));
    assert_eq!(p.stats().streams, 0);
    let cov = p.coverage();
    assert_eq!(cov.inputs.len(), 1, "{:?}", cov.inputs);
    assert_eq!(cov.inputs[0].file, "syslog-tcp 127.0.0.1:601");
    assert_eq!(cov.inputs[0].records, 50);
}

/// A flood of datagrams each from a new (forged) sender makes a stream
/// per sender: past `max_streams` the least recently used go before
/// their idle time, counted, with their counts kept. The most recent
/// senders keep their streams.
#[test]
fn a_flood_of_new_senders_keeps_the_streams_bounded() {
    let behaviour = BehaviourOptions::default();
    let live = LiveOptions {
        max_streams: 1_000,
        ..LiveOptions::default()
    };
    let mut p = pipeline_with(behaviour, live);
    let mut now = Instant::now();
    const SENDERS: u64 = 20_000;
    for c in 0..SENDERS {
        let stream: Arc<str> = Arc::from(
            format!(
                "syslog-udp 0.0.0.0:514 from 10.{}.{}.{}",
                c >> 16,
                (c >> 8) & 255,
                c & 255
            )
            .as_str(),
        );
        p.handle(record(&stream, 1, line(c / 100, "192.0.2.9")), now);
        if c % 200 == 199 {
            now += Duration::from_millis(200);
            p.tick(now);
            assert!(p.stats().streams <= 1_000, "{:?}", p.stats());
        }
    }
    let s = p.stats();
    assert!(s.streams >= 750, "{s:?}");
    assert_eq!(s.streams_forgotten + s.streams as u64, SENDERS, "{s:?}");
    // The forgotten senders' counts are kept, under their listener; the
    // senders still kept are listed apart.
    let cov = p.coverage();
    assert_eq!(cov.inputs.len(), 1 + s.streams);
    let retired = cov
        .inputs
        .iter()
        .find(|c| c.file == "syslog-udp 0.0.0.0:514")
        .expect("the forgotten senders' counts");
    assert_eq!(retired.records, s.streams_forgotten);
    let records: u64 = cov.inputs.iter().map(|c| c.records).sum();
    assert_eq!(records, SENDERS);
}

/// A brute force is reported while it goes on (when it crosses the
/// threshold, then each time its failures double), not only an hour after
/// its last attempt; the final finding has the same id and the full count.
#[test]
fn a_brute_force_is_reported_while_it_goes_on_and_completed_at_its_end() {
    let mut p = pipeline();
    let stream: Arc<str> = Arc::from("stdin");
    let now = Instant::now();
    let mut reports = Vec::new();
    for n in 0..100u64 {
        p.handle(record(&stream, n + 1, line(n, "203.0.113.50")), now);
        // Past the lateness window of the first failures.
        if n % 10 == 9 {
            p.tick(now + Duration::from_secs(61));
            reports.extend(p.take_output().findings);
        }
    }
    let during: Vec<_> = reports
        .iter()
        .filter(|f| f.kind.as_str() == "brute_force")
        .collect();
    assert!(!during.is_empty(), "reported while going on: {reports:#?}");
    let ids: std::collections::BTreeSet<&str> = during.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let counts: Vec<u64> = during.iter().map(|f| f.count).collect();
    assert!(counts.windows(2).all(|w| w[1] >= 2 * w[0]), "{counts:?}");
    let end = p.finish().findings;
    let last = end
        .iter()
        .find(|f| f.kind.as_str() == "brute_force")
        .expect("final finding");
    assert!(ids.contains(last.id.as_str()));
    assert_eq!(last.count, 100);
}

/// Evidence is forgotten a day (event time) after a source's last
/// record, not after its first: a source still active a day after its
/// first record keeps the records of its newest episode, while a source
/// that went quiet loses its own. (The cache forgets from a queue in the
/// order sources first appeared; an active source must be queued again,
/// not dropped.)
#[test]
fn evidence_of_a_source_still_active_outlives_its_first_record_by_a_day() {
    let mut p = pipeline();
    let mut send = feeder(
        "syslog-tcp 127.0.0.1:601 from 127.0.0.1:5000",
        Payload::Syslog,
    );
    let now = Instant::now();
    let (active, quiet, late) = ("203.0.113.1", "203.0.113.2", "203.0.113.3");
    send(&mut p, 0, active);
    send(&mut p, 0, quiet);
    // A new episode of the active source: its records start again.
    send(&mut p, 20 * 3600, active);
    p.tick(now + Duration::from_secs(1));
    let before = p.stats().evidence_bytes;
    // Each source's entry counts too.
    let entry = orbwatch_engine::EVIDENCE_ENTRY_BYTES;
    assert_eq!(
        before,
        2 * entry + line(0, quiet).len() + line(20 * 3600, active).len(),
        "before any is forgotten"
    );
    // 30 hours in: the quiet source's day is over, the active one's not.
    send(&mut p, 30 * 3600, late);
    p.tick(now + Duration::from_secs(2));
    assert_eq!(
        p.stats().evidence_bytes,
        2 * entry + line(20 * 3600, active).len() + line(30 * 3600, late).len()
    );
    // Two days after the active source's last record, only the newest
    // source's evidence is left.
    send(&mut p, 44 * 3600 + 1, late);
    p.tick(now + Duration::from_secs(3));
    // (The active source's entry, empty, waits behind the newer one's
    // in the queue: forgotten a little late, never early.)
    assert_eq!(
        p.stats().evidence_bytes,
        2 * entry + line(30 * 3600, late).len() + line(44 * 3600 + 1, late).len()
    );
}

/// A spray of random account names, every failed login a new name from
/// 1,024 sources that never pause: the names and the distributed-spray
/// detector's accounts follow what the detectors hold now, not every name
/// ever seen. (Before, each name stayed for as long as the daemon ran,
/// about 131 bytes a name: a way to exhaust its memory.)
#[test]
fn a_spray_of_random_names_keeps_names_and_accounts_bounded() {
    let mut behaviour = BehaviourOptions::default();
    behaviour.config.distributed.max_accounts = 2_000;
    let live = LiveOptions {
        sweep_floor: 1_000,
        ..LiveOptions::default()
    };
    let mut p = pipeline_with(behaviour, live);
    let stream: Arc<str> = Arc::from("syslog-tcp 127.0.0.1:601 from 127.0.0.1:5000");
    let now = Instant::now();
    const FAILURES: u64 = 120_000;
    for n in 0..FAILURES {
        let t = Timestamp::from_second(1_714_550_400 + (n / 10) as i64).expect("time");
        let src = format!("203.0.{}.{}", (n >> 8) & 3, n & 255);
        // A name no one tried before (a multiplicative hash of n).
        let user = format!("u{:016x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let bytes =
            format!("{t} srv sshd[1]: Failed password for {user} from {src} port 4000 ssh2");
        p.handle(record(&stream, n + 1, bytes.into_bytes()), now);
        if n % 1000 == 999 {
            p.tick(now + Duration::from_secs(1));
            let _ = p.take_output();
        }
    }
    let s = p.stats();
    eprintln!(
        "names kept {}, given back {}, accounts forgotten {}, detector keys {}",
        s.names_kept, s.names_forgotten, s.limits.accounts_forgotten, s.tracked_keys
    );
    // What the detectors hold: each source's first accounts (brute
    // force: 6, the distributed record: 3 and the last), the 2,000
    // accounts, the observations in the reorder window; and up to as
    // many new names again before the next sweep.
    assert!(s.names_kept < 25_000, "{s:?}");
    assert!(s.names_forgotten > FAILURES - 25_000, "{s:?}");
    // At most 2,000 accounts kept; those still in the reorder window
    // have not reached the detector yet.
    assert!(
        s.limits.accounts_forgotten + 2_000 + s.reorder.pending as u64 >= FAILURES,
        "{s:?}"
    );
    assert_eq!(s.records, FAILURES);
    // The detectors still see the spray: every source brute-forces.
    let end = p.finish().findings;
    let brute: Vec<_> = end
        .iter()
        .filter(|f| f.kind.as_str() == "brute_force" || f.kind.as_str() == "password_spray")
        .collect();
    assert_eq!(brute.len(), 1024, "one finding per source");
    // Every account a finding shows is a name its source tried: no
    // name was shown through an id given back and handed to another.
    let tried_by: std::collections::HashMap<String, u64> = (0..FAILURES)
        .map(|n| {
            (
                format!("u{:016x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
                n % 1024,
            )
        })
        .collect();
    for f in &brute {
        let ip = f.src_ip.expect("a source").to_string();
        let octets: Vec<u64> = ip.split('.').map(|x| x.parse().expect("IPv4")).collect();
        let source = octets[2] << 8 | octets[3];
        assert!(!f.accounts.is_empty(), "{f:?}");
        for a in &f.accounts {
            assert_eq!(tried_by.get(a), Some(&source), "{ip} shows {a}");
        }
    }
}

/// A flood of failed logins, each from an address never seen before: the
/// distributed-spray detector's records, which live 14 days after each
/// source's last failure, stay at `max_records`, the least recently
/// active ending first; what ended is counted.
#[test]
fn a_flood_of_new_sources_keeps_the_records_bounded() {
    let mut behaviour = BehaviourOptions::default();
    behaviour.config.distributed.max_records = 5_000;
    let mut p = pipeline_with(behaviour, LiveOptions::default());
    let mut send = feeder(
        "syslog-tcp 127.0.0.1:601 from 127.0.0.1:5000",
        Payload::Syslog,
    );
    let now = Instant::now();
    const SOURCES: u64 = 60_000;
    let mut most = 0;
    for i in 0..SOURCES {
        let src = format!("11.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        send(&mut p, i / 10, &src);
        // A steady source, failing every minute all along.
        if i % 600 == 0 {
            send(&mut p, i / 10, "198.51.100.200");
        }
        if i % 1000 == 999 {
            p.tick(now + Duration::from_secs(1));
            let _ = p.take_output();
            most = most.max(p.stats().tracked_keys);
        }
    }
    let s = p.stats();
    eprintln!(
        "records ended early {}, most detector keys {most}",
        s.limits.records_ended_early
    );
    // The records (and the brute-force detector's, which are none: one
    // failure each) stay at the bound.
    assert!(most <= 5_000 + 16, "{most} keys: {s:?}");
    // Ended early: all but the last 5,000 or so, less those still in the
    // reorder window (a minute of event time, 600 records).
    assert!(
        s.limits.records_ended_early + 5_000 + s.reorder.pending as u64 >= SOURCES,
        "{s:?}"
    );
    assert_eq!(s.records, SOURCES + SOURCES / 600);
    // The coverage says it, in words.
    let cov = p.coverage();
    let notes = cov.behaviour.expect("behaviour coverage").notes;
    assert!(
        notes.iter().any(|n| n.starts_with(&format!(
            "{} (source, service) records of the distributed-spray detector ended before",
            s.limits.records_ended_early
        ))),
        "{notes:#?}"
    );
}

/// Firewall lines from the relay to `peer` at `secs` after the epoch.
fn blocked(secs: u64, peer: &str) -> Vec<u8> {
    let t = Timestamp::from_second(1_714_550_400 + secs as i64).expect("time");
    format!(
        "{t} fw kernel: [UFW BLOCK] IN=eth0 OUT= MAC=00:16:3e:5a:1b:2c:00:16:3e:00:00:01:08:00 SRC=198.51.100.77 DST={peer} LEN=60 TOS=0x00 PREC=0x00 TTL=49 ID=5124 DF PROTO=TCP SPT=40122 DPT=22 WINDOW=29200 RES=0x00 SYN URGP=0"
    )
    .into_bytes()
}

/// Indicator sessions are keyed by indicator and peer and last an hour
/// after their last sighting: a flood of records naming the relay beside
/// a new peer each (forged lines, a scan of the whole network) kept one
/// open for each. Past `ioc_session_budget`, the least recently active
/// close early: their memory stays bounded, every sighting is still
/// counted once in the findings handed on, a peer seen all along keeps
/// its one finding, and the coverage says so.
#[test]
fn a_flood_of_new_peers_keeps_the_indicator_sessions_bounded() {
    const BUDGET: usize = 400 << 10;
    let mut p = pipeline_with(
        BehaviourOptions::default(),
        LiveOptions {
            ioc_session_budget: BUDGET,
            ..LiveOptions::default()
        },
    );
    let stream: Arc<str> = Arc::from("syslog-tcp 127.0.0.1:601 from 127.0.0.1:5001");
    let now = Instant::now();
    // The latest state of each finding, by id (what the store keeps).
    let mut latest = std::collections::BTreeMap::new();
    let mut keep = |out: orbwatch_engine::LiveOutput| {
        for f in out.findings {
            if f.kind.to_string() == "ioc_match" {
                latest.insert(f.id.clone(), f);
            }
        }
    };
    const PEERS: u64 = 5_000;
    let (mut most, mut most_sessions) = (0, 0);
    let mut n = 0;
    for i in 0..PEERS {
        let peer = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        n += 1;
        p.handle(record(&stream, n, blocked(i / 100, &peer)), now);
        if i % 50 == 0 {
            n += 1;
            p.handle(record(&stream, n, blocked(i / 100, "10.255.0.1")), now);
        }
        if i % 100 == 99 {
            keep(p.take_output());
            let s = p.stats();
            most = most.max(s.ioc_session_bytes);
            most_sessions = most_sessions.max(s.open_ioc_sessions);
        }
    }
    let closed = p.stats().ioc_sessions_closed_early;
    keep(p.finish());
    eprintln!("at most {most} bytes in {most_sessions} sessions; {closed} closed early");
    assert!(most <= BUDGET, "{most} bytes of sessions open at once");
    assert!(
        most_sessions > 100 && closed > 3_000,
        "{most_sessions} {closed}"
    );
    let counted: u64 = latest.values().map(|f| f.count).sum();
    assert_eq!(counted, n, "every sighting counted once");
    let steady: Vec<_> = latest
        .values()
        .filter(|f| f.ioc.as_ref().and_then(|i| i.peer) == Some("10.255.0.1".parse().unwrap()))
        .collect();
    assert_eq!(steady.len(), 1, "the peer seen all along: one finding");
    assert_eq!(steady[0].count, PEERS / 50);
    assert_eq!(latest.len() as u64, PEERS + 1, "one finding per peer");
}

/// A worker's tasks (sibling pipelines, one per partition) share the
/// budget: together their sessions stay within it, each closing its
/// share, and a pipeline that goes gives its share back.
#[test]
fn sibling_pipelines_share_the_indicator_session_budget() {
    const BUDGET: usize = 400 << 10;
    let first = pipeline_with(
        BehaviourOptions::default(),
        LiveOptions {
            ioc_session_budget: BUDGET,
            ..LiveOptions::default()
        },
    );
    let mut tasks = [first.sibling(), first.sibling()];
    let now = Instant::now();
    let mut most = 0;
    const PEERS: u64 = 2_500;
    for i in 0..PEERS {
        for (t, p) in tasks.iter_mut().enumerate() {
            let stream: Arc<str> = Arc::from(format!("kafka raw/{t}"));
            let peer = format!("10.{t}.{}.{}", (i >> 8) & 255, i & 255);
            p.handle(record(&stream, i + 1, blocked(i / 100, &peer)), now);
        }
        if i % 100 == 99 {
            for p in &mut tasks {
                drop(p.take_output());
            }
            let held: usize = tasks.iter().map(|p| p.stats().ioc_session_bytes).sum();
            most = most.max(held);
        }
    }
    let closed: Vec<u64> = tasks
        .iter()
        .map(|p| p.stats().ioc_sessions_closed_early)
        .collect();
    let each: Vec<usize> = tasks.iter().map(|p| p.stats().ioc_session_bytes).collect();
    eprintln!("at most {most} bytes together; closed early {closed:?}; now {each:?}");
    assert!(most <= BUDGET, "{most} bytes of sessions open in both");
    assert!(
        closed.iter().all(|&c| c > 500),
        "both closed theirs: {closed:?}"
    );
    // Alone, with its sibling gone, a task may keep the whole budget: it
    // closes nothing more while it holds less.
    let [mut a, b] = tasks;
    drop(b);
    let before = a.stats().ioc_sessions_closed_early;
    let stream: Arc<str> = Arc::from("kafka raw/0");
    a.handle(
        record(&stream, PEERS + 1, blocked(PEERS / 100, "10.0.255.1")),
        now,
    );
    drop(a.take_output());
    assert!(a.stats().ioc_session_bytes <= BUDGET);
    assert_eq!(a.stats().ioc_sessions_closed_early, before);
}

/// The coverage note of the bound above.
#[test]
fn indicator_sessions_closed_early_are_said_in_the_coverage() {
    let mut p = pipeline_with(
        BehaviourOptions::default(),
        LiveOptions {
            ioc_session_budget: 8 << 10,
            ..LiveOptions::default()
        },
    );
    let stream: Arc<str> = Arc::from("syslog-tcp 127.0.0.1:601 from 127.0.0.1:5002");
    let now = Instant::now();
    for i in 0..40u64 {
        p.handle(
            record(&stream, i + 1, blocked(i, &format!("10.0.0.{}", i + 1))),
            now,
        );
    }
    let _ = p.take_output();
    let s = p.stats();
    assert!(s.ioc_session_bytes <= 6 << 10, "{s:?}");
    assert!(s.open_ioc_sessions >= 1, "{s:?}");
    assert_eq!(s.ioc_sessions_closed_early + s.open_ioc_sessions as u64, 40);
    let notes = p.coverage().notes;
    let said = format!(
        "{} indicator sessions closed before an hour without sightings: those open took more than 0 MB",
        s.ioc_sessions_closed_early
    );
    assert!(notes.iter().any(|n| n.starts_with(&said)), "{notes:#?}");
}
