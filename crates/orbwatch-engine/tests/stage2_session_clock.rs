//! Stage 2 closes indicator sessions by the slowest raw stream it has
//! heard from, not by its reorder window's watermark alone.
//!
//! Why: a stage-1 worker whose input goes quiet for a minute flushes its
//! reorder window and moves its watermark to its newest event. A slower
//! raw stream (another host) that goes on after the pause then brings
//! sightings behind that watermark. They are late and aggregated at once,
//! as a hunt counts them; but a session closed by the watermark alone
//! was closed under them, and each later batch opened a finding of its
//! own, where `--stage all` (which closes sessions by its slowest stream)
//! kept the attack in one finding. `worker_kafka`'s
//! `a_pause_in_the_raw_stream_gives_the_same_ioc_findings_in_stages_as_in_all`
//! shows the same through a broker.

use std::sync::Arc;
use std::time::{Duration, Instant};

use orbwatch_engine::obs_wire::WireMessage;
use orbwatch_engine::{LiveOutput, LivePipeline};
use orbwatch_live::LiveRecord;

#[path = "support/stage2.rs"]
mod support;
use support::RELAY;

/// Failed logins of the relay's attack on the slow host: one every 24 s
/// from 10:00:00.
const ATTACK: u64 = 75;
/// Of them, those read before the pause.
const BEFORE_PAUSE: u64 = 25;

/// Record `offset` of raw stream `stream`: a failed sshd login from `src`
/// at `secs` after 2021-03-01T10:00:00Z.
fn record(stream: &str, offset: u64, secs: u64, src: &str) -> LiveRecord {
    let t = jiff::Timestamp::from_second(1_614_592_800 + secs as i64).expect("time");
    let line = format!(
        "{} gw sshd[42]: Failed password for root from {src} port {} ssh2",
        t.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        40_000 + offset
    );
    support::raw_record_of(stream, offset, line)
}

/// The slow host's attack, records `range`.
fn attack(range: std::ops::Range<u64>) -> impl Iterator<Item = LiveRecord> {
    range.map(|n| record("kafka raw.logs/0 slow", n, n * 24, RELAY))
}

/// Hand stage 1's output to stage 2, as one observations partition,
/// then stage 1's watermark `mark` after it (as `orbwatch worker` writes
/// it after the observations it handed on).
fn deliver(s2: &mut LivePipeline, out: LiveOutput, mark: i64, now: Instant) {
    let stream: Arc<str> = Arc::from("orbwatch.observations/0 from 1");
    for m in out.observations {
        match m {
            WireMessage::Observation(w) => s2.handle_observation(&w, &stream, None, now),
            WireMessage::Sighting(w) => s2.handle_sighting(w, &stream, None, now),
            WireMessage::Watermark { time, .. } => s2.handle_watermark(&stream, time, None, now),
        }
    }
    s2.handle_watermark(&stream, mark, None, now);
}

#[test]
fn a_slow_streams_attack_after_stage1s_idle_flush_stays_one_finding() {
    let start = Instant::now();
    let mut s1 = support::stage1(1);
    let mut s2 = support::stage2();
    // Before the pause: the slow host's first 25 failures, and a fast
    // host four hours ahead in event time (noise from another address).
    for r in attack(0..BEFORE_PAUSE) {
        s1.handle(r, start);
    }
    for n in 0..20 {
        s1.handle(
            record("kafka raw.logs/1 fast", n, 4 * 3600 + n, "192.0.2.7"),
            start,
        );
    }
    // The streams' formats are detected (`detect_wait`, half a second),
    // then a minute without input: stage 1 flushes its window, and its
    // watermark moves to the fast host's newest event.
    let detected = start + Duration::from_secs(1);
    s1.tick(detected);
    let after_pause = detected + Duration::from_secs(61);
    s1.tick(after_pause);
    let first = s1.take_output();
    let mark = s1.watermark();
    assert!(
        mark >= 1_614_592_800_000 + 4 * 3_600_000,
        "stage 1's idle flush moved its watermark past the slow host: {mark}"
    );
    deliver(&mut s2, first, mark, start);
    let mut findings = s2.take_output().findings;
    // The slow host goes on after the pause.
    for r in attack(BEFORE_PAUSE..ATTACK) {
        s1.handle(r, after_pause);
    }
    let mark = s1.watermark();
    deliver(&mut s2, s1.finish(), mark, after_pause);
    findings.extend(s2.take_output().findings);
    findings.extend(s2.finish().findings);
    // The latest state of each of the relay's findings.
    let mut latest = std::collections::BTreeMap::new();
    for f in findings
        .into_iter()
        .filter(|f| f.ioc.as_ref().is_some_and(|i| i.indicator == RELAY))
    {
        latest.insert(f.id.clone(), f.count);
    }
    assert_eq!(
        latest.values().copied().collect::<Vec<_>>(),
        vec![ATTACK],
        "one finding of the whole attack, as `--stage all` and a hunt give: {latest:?}"
    );
}

/// The raw streams' clocks are bounded: a stream not heard from for
/// `stream_idle` is forgotten, and past `max_streams` all are forgotten
/// at once (sessions then close by the watermark alone until the streams
/// are heard from again: later than they could, never earlier).
#[test]
fn the_raw_streams_clocks_are_forgotten_when_idle_and_bounded_in_number() {
    let start = Instant::now();
    let mut s1 = support::stage1(1);
    let mut s2 = LivePipeline::new(
        support::engine(),
        orbwatch_engine::LiveOptions {
            export_summaries: Some(2),
            cross_source: false,
            max_streams: 8,
            ..support::kafka_options()
        },
    )
    .expect("stage 2");
    // 20 hosts (raw streams), each with one failed login from the relay.
    for n in 0..20 {
        s1.handle(
            record(&format!("kafka raw.logs/0 host{n}"), n, n, RELAY),
            start,
        );
    }
    s1.tick(start + Duration::from_secs(1));
    s1.tick(start + Duration::from_secs(62));
    let mark = s1.watermark();
    deliver(&mut s2, s1.finish(), mark, start);
    let clocks = s2.stats().raw_stream_clocks;
    assert!(
        (1..=8).contains(&clocks),
        "at most `max_streams` raw streams' clocks: {clocks}"
    );
    // Nothing heard for `stream_idle` (ten minutes): all forgotten.
    s2.tick(start + Duration::from_secs(601));
    assert_eq!(s2.stats().raw_stream_clocks, 0);
    let found: u64 = s2
        .finish()
        .findings
        .iter()
        .filter(|f| f.ioc.is_some())
        .map(|f| f.count)
        .sum();
    assert_eq!(found, 20, "every sighting counted");
}
