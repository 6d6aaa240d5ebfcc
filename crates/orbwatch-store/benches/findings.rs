//! Keeping a hunt of 10,000 findings in the store, and reading them back
//! with their triage state (the latest copy of every finding over two
//! hunts, 100 triage decisions).
//!
//! Run: `cargo bench -p orbwatch-store --bench findings -- --sample-size 10`

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use orbwatch_detect::{Coverage, Finding};
use orbwatch_store::{FindingFilter, Store, TriageStatus};

fn findings(n: usize, hunt: usize) -> Vec<Finding> {
    (0..n)
        .map(|i| {
            let ind = format!("203.0.{}.{}", (i / 250) % 250, i % 250);
            let peer = format!("10.0.{}.{}", (i / 250) % 4, i % 250);
            serde_json::from_value(serde_json::json!({
                "id": format!("{hunt:02}{i:014x}"), "kind": "ioc_match",
                "first_seen": "2021-03-02T03:11:07Z", "last_seen": "2021-03-02T03:40:55Z",
                "count": 3, "src_ip": ind, "dst_ip": peer, "indicator": ind,
                "indicator_type": "ipv4", "feed": "certfr", "direction": "inbound",
                "in_validity_window": true, "confidence": 80, "valid_from": null,
                "valid_until": null, "matched_value": ind, "matched_field": "src_ip",
                "peer": peer,
                "evidence": [{"file": "fw.log", "line": i, "format": "netfilter",
                    "raw": format!("Mar  2 03:11:07 fw kernel: SRC={ind} DST={peer} PROTO=TCP DPT=22")}],
                "evidence_total": 3
            }))
            .expect("a finding")
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let first = findings(10_000, 1);
    let second = findings(10_000, 2);
    let mut g = c.benchmark_group("findings_10k");
    g.bench_function("record_hunt", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().expect("tempdir");
                let mut store = Store::open(dir.path().join("s.db")).expect("store");
                let t = Instant::now();
                store
                    .record_hunt(&serde_json::json!({}), &Coverage::default(), &first)
                    .expect("record");
                total += t.elapsed();
            }
            total
        })
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path().join("s.db")).expect("store");
    store
        .record_hunt(&serde_json::json!({}), &Coverage::default(), &first)
        .expect("record");
    for f in first.iter().step_by(100) {
        store
            .triage(&f.id, TriageStatus::FalsePositive, None, "bench", None)
            .expect("triage");
    }
    store
        .record_hunt(&serde_json::json!({}), &Coverage::default(), &second)
        .expect("record");
    g.bench_function("list_all_latest", |b| {
        b.iter(|| {
            store
                .findings(&FindingFilter {
                    show_suppressed: true,
                    ..Default::default()
                })
                .expect("findings")
                .len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
