//! The reorder window's cost per item with many streams (senders) and a
//! stream skew allowed (`[event_time] max_stream_skew`), when the
//! watermark follows the slowest stream still sending: each item is
//! pushed and the window released, as a live pipeline does per record.
//!
//! `cargo bench -p orbwatch-engine --bench reorder`

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use orbwatch_engine::{EventTimeConfig, ReorderWindow};

const ITEMS: u64 = 100_000;

fn run(streams: u32, skew: Option<Duration>) -> u64 {
    let mut w: ReorderWindow<u64> = ReorderWindow::new(&EventTimeConfig {
        allowed_lateness: Duration::from_secs(1),
        max_pending: 1 << 20,
        idle_flush: Duration::from_secs(60),
        max_stream_skew: skew,
    });
    let start = Instant::now();
    let mut out = 0u64;
    for i in 0..ITEMS {
        // Round robin over the senders, a millisecond of event time per
        // item, a microsecond of wall clock per item.
        let stream = (i % u64::from(streams)) as u32;
        let now = start + Duration::from_micros(i);
        let _ = w.push_from(stream, 1_700_000_000_000 + i as i64, i, now);
        w.release(&mut |_, x: u64| out = out.wrapping_add(x));
    }
    out
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("reorder_push_release");
    g.throughput(Throughput::Elements(ITEMS));
    g.sample_size(10);
    for streams in [1u32, 100, 10_000] {
        for (label, skew) in [
            ("no_skew", Some(Duration::ZERO)),
            ("skew_1h", Some(Duration::from_secs(3600))),
        ] {
            g.bench_with_input(BenchmarkId::new(label, streams), &streams, |b, &n| {
                b.iter(|| run(n, skew))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
