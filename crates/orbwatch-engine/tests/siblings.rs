//! `LivePipeline::sibling`: a stage-2 worker's pipelines, one per
//! observations partition, share the indicators and the evidence budget
//! (the budget is the worker's, not each partition's), and a finished
//! pipeline gives its share back.

use std::sync::Arc;
use std::time::Instant;

use orbwatch_engine::obs_wire::WireMessage;
use orbwatch_engine::{LiveOptions, LivePipeline};

#[path = "support/stage2.rs"]
mod support;

/// The evidence budget of the test's worker, in bytes: records and each
/// source's entry (`EVIDENCE_ENTRY_BYTES`).
const BUDGET: usize = 8192;

/// What stage 1 sends for one failed login from each of `n` sources of
/// 198.18.`block`.0/24.
fn failures(block: u8, n: u8) -> Vec<WireMessage> {
    let mut s1 = support::stage1(1);
    let now = Instant::now();
    for i in 0..n {
        let line = format!(
            "2021-03-01T10:00:{:02}+00:00 gw sshd[42]: Failed password for root from 198.18.{block}.{i} port 4{i:04} ssh2",
            i % 60
        );
        s1.handle(support::raw_record(u64::from(i), line), now);
    }
    s1.finish().observations
}

fn feed(p: &mut LivePipeline, partition: u32, messages: Vec<WireMessage>) {
    let stream: Arc<str> = Arc::from(format!("orbwatch.observations/{partition} from 1"));
    for m in messages {
        if let WireMessage::Observation(w) = m {
            p.handle_observation(&w, &stream, None, Instant::now());
        }
    }
}

#[test]
fn siblings_share_one_evidence_budget_and_give_it_back_when_finished() {
    let mut first = LivePipeline::new(
        support::engine(),
        LiveOptions {
            export_summaries: Some(2),
            evidence_budget: BUDGET,
            ..support::kafka_options()
        },
    )
    .expect("stage 2");
    let mut second = first.sibling();
    // About 90 bytes a line and its source's entry: the first
    // partition's 60 sources fill the budget alone.
    feed(&mut first, 0, failures(1, 60));
    let a = first.stats();
    assert!(a.evidence_not_kept > 0, "{a:?}");
    let one = 100 + orbwatch_engine::EVIDENCE_ENTRY_BYTES;
    assert!(
        a.evidence_bytes <= BUDGET && a.evidence_bytes > BUDGET - one,
        "{a:?}"
    );
    feed(&mut second, 1, failures(2, 20));
    let b = second.stats();
    assert_eq!(b.evidence_bytes, 0, "nothing left for the sibling");
    assert_eq!(b.evidence_not_kept, 20);
    // Shared, not copied: the sibling matches the same indicators.
    assert!(std::ptr::eq(first.ioc(), second.ioc()));
    // The first partition goes (a rebalance): its share comes back.
    drop(first.finish());
    feed(&mut second, 1, failures(3, 20));
    let b = second.stats();
    assert!(b.evidence_bytes > 20 * 60, "{b:?}");
    assert_eq!(b.evidence_not_kept, 20);
}
