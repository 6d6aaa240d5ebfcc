//! Parse + import of large plain IPv4/CIDR block lists into a fresh store.
//!
//! The lists are generated deterministically (a seeded LCG: ~95% IPv4
//! addresses, ~5% CIDR blocks) into a temporary file, so every run measures
//! the same input. Each iteration reads the file, parses it with the feed
//! reader (format detected by content, as `feed add` does) and imports it
//! into a new, empty store; creating the store is part of the measurement.
//! A second benchmark measures the import alone from an already parsed
//! feed.
//!
//! Run: `cargo bench -p orbwatch-store --bench import -- --sample-size 10`
//! (add `100k` after `--` for the quick case only).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use orbwatch_intel::{FeedFormat, ParsedFeed, ReadOptions, read_feed};
use orbwatch_store::{ImportOptions, Store};

/// Knuth's MMIX LCG; enough to spread addresses, no `rand` needed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 32) as u32
    }
}

/// Write `n` lines (about 95% IPv4, 5% CIDR) to `path`.
fn generate(path: &Path, n: usize) {
    let mut rng = Lcg(0x6f72_6277_6174_6368);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create list"));
    for _ in 0..n {
        let a = rng.next();
        let ip = std::net::Ipv4Addr::from(a);
        if rng.next() % 100 < 5 {
            let prefix = 16 + rng.next() % 13; // /16 … /28
            let net = u32::from(ip) & (u32::MAX << (32 - prefix));
            writeln!(out, "{}/{prefix}", std::net::Ipv4Addr::from(net)).expect("write");
        } else {
            writeln!(out, "{ip}").expect("write");
        }
    }
    out.flush().expect("flush");
}

fn parse(path: &Path) -> ParsedFeed {
    let bytes = std::fs::read(path).expect("read list");
    let opts = ReadOptions::new("bench");
    read_feed(&bytes, "list.txt", None, &opts).expect("parse list")
}

fn import(db: &Path, feed: &ParsedFeed) -> u64 {
    let mut store = Store::open(db).expect("open store");
    let report = store
        .import_feed(
            "bench",
            FeedFormat::Plain,
            "list.txt",
            feed,
            &ImportOptions::default(),
        )
        .expect("import");
    report.loaded
}

struct Case {
    label: &'static str,
    lines: usize,
    list: PathBuf,
}

fn bench_import(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: Vec<Case> = [("100k", 100_000usize), ("1M", 1_000_000)]
        .into_iter()
        .map(|(label, lines)| {
            let list = dir.path().join(format!("list-{label}.txt"));
            generate(&list, lines);
            Case { label, lines, list }
        })
        .collect();

    // A sanity check, and a figure for the log: one full run per case.
    for case in &cases {
        let t = Instant::now();
        let feed = parse(&case.list);
        let parsed = t.elapsed();
        assert_eq!(
            feed.format,
            Some(FeedFormat::Plain),
            "list not detected as plain"
        );
        let db = dir.path().join(format!("check-{}.db", case.label));
        let loaded = import(&db, &feed);
        eprintln!(
            "{}: {} lines -> {} indicators ({} rejected); parse {:.2?}, parse+import {:.2?}",
            case.label,
            case.lines,
            loaded,
            feed.rejected.len(),
            parsed,
            t.elapsed()
        );
        assert!(
            loaded as f64 > case.lines as f64 * 0.99,
            "too few indicators: {loaded}"
        );
        let _ = std::fs::remove_file(&db);
    }

    let mut group = c.benchmark_group("import");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(30));
    let mut run = 0u64;
    for case in &cases {
        group.bench_with_input(
            BenchmarkId::new("parse+import", case.label),
            case,
            |b, case| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        run += 1;
                        let db = dir.path().join(format!("run-{run}.db"));
                        let t = Instant::now();
                        let feed = parse(&case.list);
                        std::hint::black_box(import(&db, &feed));
                        total += t.elapsed();
                        drop(feed);
                        for ext in ["", "-wal", "-shm"] {
                            let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
                        }
                    }
                    total
                })
            },
        );
        let feed = parse(&case.list);
        group.bench_with_input(
            BenchmarkId::new("import-only", case.label),
            &feed,
            |b, feed| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        run += 1;
                        let db = dir.path().join(format!("run-{run}.db"));
                        let t = Instant::now();
                        std::hint::black_box(import(&db, feed));
                        total += t.elapsed();
                        for ext in ["", "-wal", "-shm"] {
                            let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
                        }
                    }
                    total
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench_import);
criterion_main!(benches);
