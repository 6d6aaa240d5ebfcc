//! Stage 2 must not let a record's offset be committed while the
//! indicator sighting it carried still waits in the reorder window: the
//! offset and the finding that counts the sighting leave together. A
//! stage-2 worker killed with `kill -9` otherwise lost every sighting
//! that waited in its window behind a committed offset (459 of 4,964 in
//! the scaling benchmark, `bench_worker --kill 2`).

use std::sync::Arc;
use std::time::Instant;

use jiff::Timestamp;
use orbwatch_detect::Finding;
use orbwatch_engine::LiveOutput;
use orbwatch_engine::obs_wire::{WireMessage, WireSighting};
use orbwatch_live::{Checkpoint, LiveRecord, Payload};

#[path = "support/stage2.rs"]
mod support;
use support::{RELAY, stage2};

/// Stage 1's sighting of one sshd line naming the relay.
fn sighting() -> Box<WireSighting> {
    let mut s1 = support::stage1(1);
    let line = format!(
        "2021-03-01T10:00:00+00:00 gw sshd[42]: Failed password for root from {RELAY} port 4242 ssh2"
    );
    s1.handle(
        LiveRecord {
            prefiltered: None,
            prework: Default::default(),
            stream: Arc::from("kafka raw/0"),
            number: 1,
            offset: 0,
            payload: Payload::Line,
            bytes: line.into_bytes(),
            received: Timestamp::now(),
            checkpoint: None,
        },
        Instant::now(),
    );
    let out = s1.finish();
    let mut found = out.observations.into_iter().filter_map(|m| match m {
        WireMessage::Sighting(w) => Some(w),
        _ => None,
    });
    let one = found.next().expect("stage 1 made a sighting");
    assert!(found.next().is_none(), "stage 1 made one sighting");
    one
}

fn checkpoint(stream: &Arc<str>, offset: u64) -> Checkpoint {
    Checkpoint {
        source: stream.clone(),
        position: offset + 1,
        identity: Arc::from("kafka:orbwatch.observations:0"),
    }
}

fn ioc_count(out: &LiveOutput) -> u64 {
    out.findings
        .iter()
        .filter(|f: &&Finding| f.kind.to_string() == "ioc_match")
        .map(|f| f.count)
        .sum()
}

/// (source, position) of each checkpoint handed on, sorted.
fn positions_by_source(out: &LiveOutput) -> Vec<(String, u64)> {
    let mut got: Vec<(String, u64)> = out
        .checkpoints
        .iter()
        .map(|c| (c.source.to_string(), c.position))
        .collect();
    got.sort();
    got
}

#[test]
fn a_sightings_offset_leaves_with_the_finding_that_counts_it() {
    let stream: Arc<str> = Arc::from("kafka orbwatch.observations/0 key 45.9.148.84");
    let now = Instant::now();
    let mut s2 = stage2();
    let w = sighting();
    let time = w.sighting.time.expect("timed").as_millisecond();
    s2.handle_sighting(w, &stream, Some(checkpoint(&stream, 0)), now);

    // The sighting waits for the watermark: its offset must wait too.
    let out = s2.take_output();
    assert_eq!(ioc_count(&out), 0, "not aggregated yet");
    assert!(
        out.checkpoints.is_empty(),
        "the offset of a sighting still in the window was handed on: {:?}",
        out.checkpoints
    );

    // A later message of the same stream (its producer's watermark, an
    // hour on) releases it: finding and offset leave together, the
    // offset past the later message.
    s2.handle_watermark(&stream, time + 3_600_000, Some(checkpoint(&stream, 1)), now);
    let out = s2.take_output();
    assert_eq!(ioc_count(&out), 1, "{:?}", out.findings);
    let positions: Vec<u64> = out.checkpoints.iter().map(|c| c.position).collect();
    assert_eq!(positions, vec![2], "both records are handed on at once");
}

#[test]
fn at_the_end_the_waiting_sightings_offset_goes_with_its_finding() {
    let stream: Arc<str> = Arc::from("kafka orbwatch.observations/0 key 45.9.148.84");
    let now = Instant::now();
    let mut s2 = stage2();
    s2.handle_sighting(sighting(), &stream, Some(checkpoint(&stream, 0)), now);
    assert!(s2.take_output().checkpoints.is_empty());
    let out = s2.finish();
    assert_eq!(ioc_count(&out), 1, "{:?}", out.findings);
    let positions: Vec<u64> = out.checkpoints.iter().map(|c| c.position).collect();
    assert_eq!(positions, vec![1]);
}

#[test]
fn a_rebalance_lets_the_offsets_go_while_this_worker_keeps_the_sightings() {
    let stream: Arc<str> = Arc::from("kafka orbwatch.observations/0 key 45.9.148.84");
    let now = Instant::now();
    let mut s2 = stage2();
    s2.handle_sighting(sighting(), &stream, Some(checkpoint(&stream, 0)), now);
    // The partition goes: its offset is committed now (the next owner
    // must not count the sighting again), and this worker still
    // aggregates it.
    s2.flush_observations();
    let out = s2.take_output();
    let positions: Vec<u64> = out.checkpoints.iter().map(|c| c.position).collect();
    assert_eq!(positions, vec![1]);
    let out = s2.finish();
    assert_eq!(ioc_count(&out), 1, "{:?}", out.findings);
}

#[test]
fn a_sighting_released_by_the_idle_flush_takes_its_offset_along() {
    let stream: Arc<str> = Arc::from("kafka orbwatch.observations/0 key 45.9.148.84");
    let now = Instant::now();
    let mut s2 = stage2();
    s2.handle_sighting(sighting(), &stream, Some(checkpoint(&stream, 0)), now);
    assert!(s2.take_output().checkpoints.is_empty());
    // Nothing more comes (the stage-1 workers stopped): the reorder
    // window's idle flush releases the sighting, and its offset follows.
    s2.tick(now + std::time::Duration::from_secs(61));
    let out = s2.take_output();
    assert_eq!(ioc_count(&out), 1, "{:?}", out.findings);
    let positions: Vec<u64> = out.checkpoints.iter().map(|c| c.position).collect();
    assert_eq!(positions, vec![1]);
}

/// In stage 2 a reorder-window stream is a (partition, producer), and its
/// records come from many keys, each a checkpoint source of its own: the
/// offset tracker must get every one of them, or the partition's offset
/// stays behind the one it never got (found by the scaling benchmark:
/// the last offset of 5 of 12 partitions was never committed).
#[test]
fn every_keys_checkpoint_comes_out_not_only_the_last() {
    let stream: Arc<str> = Arc::from("kafka orbwatch.observations/0 producer 1");
    let key_a: Arc<str> = Arc::from("kafka orbwatch.observations/0 key a");
    let key_b: Arc<str> = Arc::from("kafka orbwatch.observations/0 key b");
    let now = Instant::now();
    let mut s2 = stage2();
    let w = sighting();
    let time = w.sighting.time.expect("timed").as_millisecond();
    s2.handle_sighting(w, &stream, Some(checkpoint(&key_a, 0)), now);
    // Two more records of the same (partition, producer), other keys,
    // while the sighting waits.
    s2.handle_watermark(&stream, time, Some(checkpoint(&key_b, 1)), now);
    s2.handle_watermark(&stream, time, Some(checkpoint(&key_a, 2)), now);
    assert!(s2.take_output().checkpoints.is_empty());
    s2.handle_watermark(&stream, time + 3_600_000, None, now);
    let out = s2.take_output();
    assert_eq!(ioc_count(&out), 1, "{:?}", out.findings);
    let got = positions_by_source(&out);
    assert_eq!(
        got,
        vec![(key_a.to_string(), 3), (key_b.to_string(), 2)],
        "each key's latest checkpoint"
    );
}

/// Two streams' checkpoints of one source can come back out of order: a
/// held-back one is promoted after a later one that had nothing to wait
/// for. The later position must stay: replacing it with the older one
/// hid it from the offset tracker for good, and the partition's last
/// offset (a producer's final watermark, with nothing after it) was never
/// committed (3 of 12 partitions in the scaling benchmark).
#[test]
fn a_promoted_older_checkpoint_does_not_replace_a_later_one_of_its_source() {
    let stream_a: Arc<str> = Arc::from("kafka orbwatch.observations/0 from a");
    let stream_b: Arc<str> = Arc::from("kafka orbwatch.observations/0 from b");
    let key: Arc<str> = Arc::from("kafka orbwatch.observations/0 key 45.9.148.84");
    let marks: Arc<str> = Arc::from("kafka orbwatch.observations/0");
    let now = Instant::now();
    let mut s2 = stage2();
    let w = sighting();
    let time = w.sighting.time.expect("timed").as_millisecond();
    s2.handle_sighting(w, &stream_a, Some(checkpoint(&key, 0)), now);
    // Producer a's watermark waits behind its sighting; producer b's,
    // later in the partition, has nothing to wait for.
    s2.handle_watermark(&stream_a, time, Some(checkpoint(&marks, 1)), now);
    s2.handle_watermark(
        &stream_b,
        time + 3_600_000,
        Some(checkpoint(&marks, 2)),
        now,
    );
    s2.handle_watermark(&stream_a, time + 3_600_000, None, now);
    let out = s2.take_output();
    assert_eq!(ioc_count(&out), 1, "{:?}", out.findings);
    let got = positions_by_source(&out);
    assert_eq!(
        got,
        vec![(marks.to_string(), 3), (key.to_string(), 1)],
        "the watermarks' source keeps its latest position"
    );
}

/// Each restart of a stage-1 worker is a new producer, so a new
/// observation stream: stage 2 forgets the streams idle `stream_idle`,
/// but not one whose sighting still waits in the window, which then
/// still leaves with its finding and its offset.
#[test]
fn idle_observation_streams_are_forgotten_unless_something_of_theirs_waits() {
    use orbwatch_engine::{EventTimeConfig, LiveOptions, LivePipeline};
    use std::time::Duration;
    let opts = LiveOptions {
        stream_idle: Duration::from_secs(60),
        event_time: EventTimeConfig {
            // The window must not flush for idleness in this test: the
            // sighting is to wait.
            idle_flush: Duration::from_secs(3600),
            max_stream_skew: None,
            ..Default::default()
        },
        ..support::kafka_options()
    };
    let mut s2 = LivePipeline::new(support::engine(), opts).expect("stage 2");
    let now = Instant::now();
    let w = sighting();
    let time = w.sighting.time.expect("timed").as_millisecond();
    let waiting: Arc<str> = Arc::from("kafka orbwatch.observations/0 producer 1000");
    s2.handle_sighting(w, &waiting, Some(checkpoint(&waiting, 0)), now);
    for producer in 0..50 {
        let stream: Arc<str> =
            Arc::from(format!("kafka orbwatch.observations/0 producer {producer}"));
        // Far behind: the slowest clock holds the sighting in the window.
        s2.handle_watermark(&stream, time - 7_200_000, None, now);
    }
    assert_eq!(s2.stats().streams, 51);

    s2.tick(now + Duration::from_secs(30));
    assert_eq!(s2.stats().streams, 51, "none idle a minute yet");
    let active: Arc<str> = Arc::from("kafka orbwatch.observations/1 producer 1001");
    s2.handle_watermark(
        &active,
        time - 7_200_000,
        None,
        now + Duration::from_secs(45),
    );
    s2.tick(now + Duration::from_secs(61));
    assert_eq!(
        s2.stats().streams,
        2,
        "the stream heard from 16 s ago and the one whose sighting waits stay"
    );
    assert!(
        s2.take_output().checkpoints.is_empty(),
        "its offset waits too"
    );

    let out = s2.finish();
    assert_eq!(ioc_count(&out), 1, "{:?}", out.findings);
    assert_eq!(positions_by_source(&out), vec![(waiting.to_string(), 1)]);
}
