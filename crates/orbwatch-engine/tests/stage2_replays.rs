//! A stage-1 worker killed after writing a record's observations and
//! before committing the record's offset: the next owner of the raw
//! partition reads the record again and sends its observations and
//! sightings again, under its own producer id. Stage 2 must count each
//! raw record once, so the answer is the one a single stage-1 worker
//! gives (see `orbwatch_engine::replay_guard`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use orbwatch_engine::obs_wire::WireMessage;

#[path = "support/stage2.rs"]
mod support;
use support::RELAY;

/// Lines in the raw partition: one failed login a second.
const LINES: u64 = 40;

/// What stage-1 worker `producer` sends for the raw partition's records
/// at `offsets`.
fn stage1(producer: u64, offsets: std::ops::Range<u64>) -> Vec<WireMessage> {
    let mut s1 = support::stage1(producer);
    let now = Instant::now();
    for offset in offsets {
        let line = format!(
            "2021-03-01T10:00:{:02}+00:00 gw sshd[42]: Failed password for root from {RELAY} port {} ssh2",
            offset % 60,
            40_000 + offset
        );
        s1.handle(support::raw_record(offset, line), now);
    }
    s1.finish().observations
}

/// Stage 2 over what each stage-1 producer sent, in turn: (kind, count)
/// of every finding, and how many messages it skipped as replays.
fn stage2(sent: Vec<(u64, Vec<WireMessage>)>) -> (BTreeMap<String, u64>, u64) {
    let mut s2 = support::stage2();
    let now = Instant::now();
    for (producer, messages) in sent {
        let stream: Arc<str> = Arc::from(format!("orbwatch.observations/0 from {producer}"));
        for m in messages {
            match m {
                WireMessage::Observation(w) => s2.handle_observation(&w, &stream, None, now),
                WireMessage::Sighting(w) => s2.handle_sighting(w, &stream, None, now),
                WireMessage::Watermark { time, .. } => {
                    s2.handle_watermark(&stream, time, None, now)
                }
            }
        }
    }
    let replayed = s2.stats().replayed;
    let mut found = BTreeMap::new();
    for f in s2.finish().findings {
        // The latest state of each finding is what counts.
        found.insert(format!("{} {}", f.kind, f.id), f.count);
    }
    let by_kind = found.into_iter().fold(BTreeMap::new(), |mut m, (k, c)| {
        let kind = k.split(' ').next().unwrap_or_default().to_string();
        *m.entry(kind).or_insert(0) += c;
        m
    });
    (by_kind, replayed)
}

#[test]
fn records_sent_again_by_the_next_stage1_owner_are_counted_once() {
    let (alone, replayed) = stage2(vec![(1, stage1(1, 0..LINES))]);
    assert_eq!(replayed, 0);
    assert_eq!(alone.get("ioc_match"), Some(&LINES), "{alone:?}");
    assert!(
        alone.keys().any(|k| k != "ioc_match"),
        "a behaviour finding too, or the test shows nothing: {alone:?}"
    );

    // Producer 1 sent the first 30 records and was killed before it
    // committed past offset 10; producer 2 reads from 10 to the end.
    let first = stage1(1, 0..30);
    let again = stage1(2, 10..LINES);
    let (got, replayed) = stage2(vec![(1, first), (2, again)]);
    assert_eq!(got, alone, "the answer of one stage-1 worker");
    // Each of the 20 records sent twice made a sighting and an
    // observation at least.
    assert!(replayed >= 40, "{replayed} skipped");
}

#[test]
fn a_producer_that_takes_over_cleanly_loses_nothing() {
    let (alone, _) = stage2(vec![(1, stage1(1, 0..LINES))]);
    // A clean rebalance: producer 1 committed everything it sent.
    let (got, replayed) = stage2(vec![(1, stage1(1, 0..25)), (2, stage1(2, 25..LINES))]);
    assert_eq!(replayed, 0);
    assert_eq!(got.get("ioc_match"), alone.get("ioc_match"));
}
