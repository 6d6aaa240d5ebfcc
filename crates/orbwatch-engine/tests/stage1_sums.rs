//! Stage 1 must not let a record's offset be committed while the hourly
//! sum it was counted into (answered connections, outbound bytes) is
//! still in memory: such a record makes no observation of its own, and a
//! worker killed with `kill -9` before the hour's end lost its part of
//! the sum (its offset committed, read again by no one).

use std::sync::Arc;
use std::time::Instant;

use jiff::Timestamp;
use orbwatch_detect::behaviour::ObsKind;
use orbwatch_engine::obs_wire::WireMessage;
use orbwatch_engine::{LiveOutput, LivePipeline};
use orbwatch_live::{Checkpoint, LiveRecord, Payload};

#[path = "support/stage2.rs"]
mod support;

const STREAM: &str = "kafka raw.fw/0";

/// An answered connection (a firewall's ALLOW) at `secs` after
/// 2024-05-01T10:00:00Z, as raw record `offset` with its checkpoint.
fn allowed(offset: u64, secs: i64) -> LiveRecord {
    let t = Timestamp::from_second(1_714_557_600 + secs).expect("time");
    let line = format!(
        "{t} gw kernel: [UFW ALLOW] IN=eth0 OUT= MAC=de:1c:88:64:10:19:5e:e1:a4:3b:cf:f0:08:00 SRC=198.51.100.{} DST=10.0.0.5 LEN=52 TOS=0x00 PREC=0x00 TTL=52 ID=1 DF PROTO=TCP SPT={} DPT=443 WINDOW=501 RES=0x00 ACK URGP=0",
        1 + offset % 200,
        40_000 + offset
    );
    LiveRecord {
        prefiltered: None,
        prework: Default::default(),
        stream: Arc::from(STREAM),
        number: offset + 1,
        offset,
        payload: Payload::Line,
        bytes: line.into_bytes(),
        received: Timestamp::now(),
        checkpoint: Some(Checkpoint {
            source: Arc::from(STREAM),
            position: offset + 1,
            identity: Arc::from("kafka:raw.fw:0"),
        }),
    }
}

/// The furthest position handed on for the stream so far.
fn committed(out: &LiveOutput, so_far: &mut u64) {
    for c in &out.checkpoints {
        *so_far = (*so_far).max(c.position);
    }
}

/// Answered-connection sums among the observations handed on: (count of
/// sums, connections counted).
fn answered(out: &LiveOutput) -> (usize, u64) {
    let mut sums = 0;
    let mut counted = 0;
    for m in &out.observations {
        if let WireMessage::Observation(o) = m
            && o.kind == ObsKind::Answered
        {
            sums += 1;
            counted += o.value;
        }
    }
    (sums, counted)
}

fn feed(p: &mut LivePipeline, records: impl Iterator<Item = LiveRecord>, now: Instant) {
    for r in records {
        p.handle(r, now);
    }
    p.tick(now);
}

#[test]
fn a_records_offset_waits_for_the_hourly_sum_it_went_into() {
    let mut p = support::stage1(1);
    let now = Instant::now();
    let mut so_far = 0;
    // 100 answered connections within 10:00–10:50.
    feed(&mut p, (0..100).map(|i| allowed(i, i as i64 * 30)), now);
    let out = p.take_output();
    committed(&out, &mut so_far);
    assert_eq!(answered(&out).0, 0, "the hour is not over");
    assert_eq!(so_far, 0, "no offset goes before the sum of its hour");
    // 11:05: the hour of 10:00 is over, and its sums go out with the
    // offsets of the records counted into them; the 11:05 record's own
    // offset waits for the sum of 11:00.
    feed(&mut p, std::iter::once(allowed(100, 3_900)), now);
    let out = p.take_output();
    committed(&out, &mut so_far);
    let (sums, counted) = answered(&out);
    assert!(sums > 0, "the 10:00 sums went out");
    assert_eq!(counted, 100, "every connection of 10:00 counted");
    assert_eq!(so_far, 100, "up to the last record of 10:00");
    // A rebalance: this worker keeps the sum of 11:00 and hands it on
    // when the hour ends, so the record's offset goes now (the next
    // owner must not count it again).
    p.flush_observations();
    let out = p.take_output();
    committed(&out, &mut so_far);
    assert_eq!(so_far, 101);
    let end = p.finish();
    assert_eq!(answered(&end).1, 1, "the 11:00 sum at the end");
}

/// At the end of input every sum goes out, and every offset with it.
#[test]
fn at_the_end_the_sums_and_their_offsets_go_together() {
    let mut p = support::stage1(1);
    let now = Instant::now();
    feed(&mut p, (0..60).map(|i| allowed(i, i as i64 * 10)), now);
    let mut so_far = 0;
    let out = p.take_output();
    committed(&out, &mut so_far);
    assert_eq!(so_far, 0);
    let end = p.finish();
    committed(&end, &mut so_far);
    assert_eq!(so_far, 60);
    assert_eq!(answered(&end).1, 60);
}

/// Input that goes quiet (the idle flush) lets the offsets go: a
/// partition that stops mid-hour does not keep them uncommitted until it
/// sends again. The sum stays, and goes out at the end.
#[test]
fn a_quiet_input_lets_the_offsets_go_and_keeps_the_sums() {
    let mut p = support::stage1(1);
    let now = Instant::now();
    feed(&mut p, (0..60).map(|i| allowed(i, i as i64 * 10)), now);
    let mut so_far = 0;
    committed(&p.take_output(), &mut so_far);
    assert_eq!(so_far, 0);
    p.tick(now + std::time::Duration::from_secs(61));
    let out = p.take_output();
    committed(&out, &mut so_far);
    assert_eq!(so_far, 60);
    assert_eq!(answered(&out).1, 0, "the hour is not over");
    assert_eq!(answered(&p.finish()).1, 60);
}

/// An answered connection (UFW ALLOW) from `src` at `secs` after
/// 2024-05-01T10:00:00Z, as raw record `offset`.
fn allowed_from(offset: u64, secs: i64, src: &str) -> LiveRecord {
    let mut r = allowed(offset, secs);
    let line = String::from_utf8(r.bytes).expect("text");
    let at = line.find("SRC=").expect("SRC") + 4;
    let end = at + line[at..].find(' ').expect("end of SRC");
    r.bytes = format!("{}{src}{}", &line[..at], &line[end..]).into_bytes();
    r
}

/// A connection log of a flood of clients, each new, within one hour:
/// past `max_hourly_sums` the smallest sums leave before the hour is
/// over, so the sums kept stay at the bound. Nothing is lost: the sums
/// handed on add up to every connection; a busy client's sum, the
/// largest, leaves whole at the hour's end; and each early sum is dated
/// inside its hour, not late.
#[test]
fn a_flood_of_new_clients_keeps_the_hourly_sums_bounded() {
    let mut p = LivePipeline::new(
        support::engine(),
        orbwatch_engine::LiveOptions {
            export_observations: Some(1),
            max_hourly_sums: 64,
            ..support::kafka_options()
        },
    )
    .expect("stage 1");
    let now = Instant::now();
    const CLIENTS: u64 = 5_000;
    let mut handed = Vec::new();
    let mut offset = 0;
    for c in 0..CLIENTS {
        let src = format!("198.{}.{}.{}", 18 + (c >> 16), (c >> 8) & 255, c & 255);
        // Within the hour 10:00 to 10:59, in time order.
        let secs = (c * 3_000 / CLIENTS) as i64;
        p.handle(allowed_from(offset, secs, &src), now);
        offset += 1;
        // The busy client: one connection in five.
        if c % 5 == 0 {
            p.handle(allowed_from(offset, secs, "203.0.113.9"), now);
            offset += 1;
        }
        assert!(
            p.stats().hourly_sums <= 64,
            "at {c}: {:?}",
            p.stats().hourly_sums
        );
        if c % 500 == 499 {
            p.tick(now);
            handed.extend(p.take_output().observations);
        }
    }
    let left_early = p.stats().sums_left_early;
    assert!(left_early > 4_000, "{left_early}");
    // No early sum was dated behind the watermark.
    let late = p.stats().late;
    let out = p.finish();
    handed.extend(out.observations);
    let mut counted = 0;
    let mut busy = Vec::new();
    for m in &handed {
        if let WireMessage::Observation(o) = m
            && o.kind == ObsKind::Answered
        {
            counted += o.value;
            // 10:00:00 to 10:59:59.999.
            assert!(
                (1_714_557_600_000..1_714_561_200_000).contains(&o.time),
                "{}",
                o.time
            );
            if o.src == support_node("203.0.113.9") {
                busy.push(o.value);
            }
        }
    }
    assert_eq!(counted, offset, "every connection counted once");
    assert_eq!(busy, [CLIENTS / 5], "the busy client's sum, whole");
    assert_eq!(late, 0);
}

fn support_node(ip: &str) -> orbwatch_engine::obs_wire::WireNode {
    orbwatch_engine::obs_wire::WireNode::Addr(ip.parse().expect("address"))
}
