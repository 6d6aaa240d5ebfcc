//! Reading a large plain list: the whole-file path (`fs::read` then
//! [`read_feed`], what `feed add` did before) against the streaming path
//! ([`read_feed_from`] over a `BufReader`, what it does now). Reports the
//! time and the peak resident memory (`VmHWM` of /proc/self/status). Peak
//! memory is per process, so each mode is one run of this binary:
//!
//! ```text
//! cargo bench -p orbwatch-intel --bench feed_read -- whole 10000000
//! cargo bench -p orbwatch-intel --bench feed_read -- stream 10000000
//! ```
//!
//! The list (about 95% IPv4 addresses, 5% CIDR blocks, the generator of
//! the store's import bench) is written once to the temporary directory
//! and reused by later runs.
//!
//! STIX bundles (issue 19: bundles were parsed as one document):
//!
//! ```text
//! cargo bench -p orbwatch-intel --bench feed_read -- stix-whole 1000000
//! cargo bench -p orbwatch-intel --bench feed_read -- stix-stream 1000000
//! ```
//!
//! `stix-whole` is what `feed add` and `hunt --feed` did before: the file
//! read whole, parsed as one `serde_json::Value` ([`stix::read_whole`]),
//! every indicator collected. `stix-stream` is what they do now:
//! [`stix::read_bundle_stream`] over the file, opened once per pass, each
//! object's indicators handed on and dropped (as `feed add` hands them to
//! the store in batches). The bundle ([`generate_stix`]) is written once.

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use orbwatch_intel::readers::stix;
use orbwatch_intel::{FeedFormat, ParsedFeed, ReadOptions, read_feed, read_feed_from};

/// Knuth's MMIX LCG (as in `orbwatch-store`'s import bench).
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

fn generate(path: &Path, n: usize) {
    let tmp = path.with_extension("part");
    let mut rng = Lcg(0x6f72_6277_6174_6368);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp).expect("create list"));
    for _ in 0..n {
        let ip = std::net::Ipv4Addr::from(rng.next());
        if rng.next() % 100 < 5 {
            let prefix = 16 + rng.next() % 13;
            let net = u32::from(ip) & (u32::MAX << (32 - prefix));
            writeln!(out, "{}/{prefix}", std::net::Ipv4Addr::from(net)).expect("write");
        } else {
            writeln!(out, "{ip}").expect("write");
        }
    }
    out.flush().expect("flush");
    drop(out);
    std::fs::rename(&tmp, path).expect("rename list");
}

/// A STIX 2.1 bundle of `n` indicators (IPv4 address patterns, about 5%
/// CIDR blocks) as producers write them: an identity, a TLP marking
/// definition and an intrusion set first; each indicator created by the
/// identity, marked TLP:AMBER, with a name and a description; and after
/// the indicators one `indicates` relationship for every tenth of them
/// (context that comes after what it describes, which the stream's first
/// pass has to keep). Pretty-printed with two-space indents, as python
/// `stix2` and OpenCTI write bundles.
fn generate_stix(path: &Path, n: usize) {
    let tmp = path.with_extension("part");
    let mut rng = Lcg(0x7374_6978_6275_6e64);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp).expect("create bundle"));
    let identity = "identity--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f";
    let amber = "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82";
    let set = "intrusion-set--0c7e2f3a-5b8d-4e61-8f4a-6d2c9b1e7a10";
    let uuid = |kind: u32, i: usize| format!("{kind:08x}-0000-4000-8000-{i:012x}");
    write!(
        out,
        "{{\n  \"type\": \"bundle\",\n  \"id\": \"bundle--{}\",\n  \"objects\": [\n    \
         {{\n      \"type\": \"identity\",\n      \"spec_version\": \"2.1\",\n      \"id\": \"{identity}\",\n      \
         \"created\": \"2024-01-01T00:00:00.000Z\",\n      \"modified\": \"2024-01-01T00:00:00.000Z\",\n      \
         \"name\": \"Bench CERT\",\n      \"identity_class\": \"organization\"\n    }},\n    \
         {{\n      \"type\": \"intrusion-set\",\n      \"spec_version\": \"2.1\",\n      \"id\": \"{set}\",\n      \
         \"created\": \"2024-01-01T00:00:00.000Z\",\n      \"modified\": \"2024-01-01T00:00:00.000Z\",\n      \
         \"name\": \"Bench Relay Set\"\n    }}",
        uuid(0xb, 0)
    )
    .expect("write");
    for i in 0..n {
        let ip = std::net::Ipv4Addr::from(rng.next());
        let pattern = if rng.next() % 100 < 5 {
            let prefix = 16 + rng.next() % 13;
            let net = u32::from(ip) & (u32::MAX << (32 - prefix));
            format!(
                "[ipv4-addr:value ISSUBSET '{}/{prefix}']",
                std::net::Ipv4Addr::from(net)
            )
        } else {
            format!("[ipv4-addr:value = '{ip}']")
        };
        write!(
            out,
            ",\n    {{\n      \"type\": \"indicator\",\n      \"spec_version\": \"2.1\",\n      \
             \"id\": \"indicator--{}\",\n      \"created_by_ref\": \"{identity}\",\n      \
             \"created\": \"2024-03-01T12:00:00.000Z\",\n      \"modified\": \"2024-03-01T12:00:00.000Z\",\n      \
             \"name\": \"ORB relay node\",\n      \"description\": \"Relay seen forwarding operator traffic\",\n      \
             \"indicator_types\": [\n        \"anonymization\"\n      ],\n      \
             \"pattern\": \"{pattern}\",\n      \"pattern_type\": \"stix\",\n      \
             \"valid_from\": \"2024-03-01T12:00:00Z\",\n      \
             \"object_marking_refs\": [\n        \"{amber}\"\n      ]\n    }}",
            uuid(0xa, i)
        )
        .expect("write");
    }
    for i in (0..n).step_by(10) {
        write!(
            out,
            ",\n    {{\n      \"type\": \"relationship\",\n      \"spec_version\": \"2.1\",\n      \
             \"id\": \"relationship--{}\",\n      \"created\": \"2024-03-01T12:00:00.000Z\",\n      \
             \"modified\": \"2024-03-01T12:00:00.000Z\",\n      \"relationship_type\": \"indicates\",\n      \
             \"source_ref\": \"indicator--{}\",\n      \"target_ref\": \"{set}\"\n    }}",
            uuid(0xc, i),
            uuid(0xa, i)
        )
        .expect("write");
    }
    writeln!(out, "\n  ]\n}}").expect("write");
    out.flush().expect("flush");
    drop(out);
    std::fs::rename(&tmp, path).expect("rename bundle");
}

/// Peak resident set size of this process, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn main() {
    // `cargo bench` passes `--bench`; the mode and size are the others.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let mode = args.first().map_or("stream", String::as_str).to_string();
    let lines: usize = args
        .get(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    if mode.starts_with("stix-") {
        return stix_bench(&mode, lines);
    }
    let list: PathBuf = std::env::temp_dir().join(format!("orbwatch-feed-bench-{lines}.txt"));
    if !list.is_file() {
        let t = Instant::now();
        generate(&list, lines);
        eprintln!("generated {} in {:.1?}", list.display(), t.elapsed());
    }
    let size = std::fs::metadata(&list).map_or(0, |m| m.len());
    let before = peak_rss();
    let opts = ReadOptions::new("bench");
    let t = Instant::now();
    let feed = match mode.as_str() {
        "whole" => {
            let bytes = std::fs::read(&list).expect("read list");
            read_feed(&bytes, "list.txt", None, &opts).expect("parse list")
        }
        "stream" => {
            let f = std::fs::File::open(&list).expect("open list");
            read_feed_from(
                BufReader::with_capacity(256 * 1024, f),
                "list.txt",
                None,
                &opts,
            )
            .expect("parse list")
        }
        other => panic!("mode is `whole` or `stream`, not `{other}`"),
    };
    let took = t.elapsed();
    assert_eq!(feed.format, Some(FeedFormat::Plain));
    let peak = peak_rss();
    println!(
        "mode={mode} lines={lines} file={:.1} MB indicators={} rejected={} time={:.2} s \
         peak_rss={:.0} MB (before reading {:.0} MB) bytes/indicator={:.0}",
        size as f64 / 1e6,
        feed.indicators.len(),
        feed.rejected.len(),
        took.as_secs_f64(),
        peak as f64 / 1e6,
        before as f64 / 1e6,
        (peak.saturating_sub(before)) as f64 / feed.indicators.len().max(1) as f64,
    );
}

/// The `stix-whole` and `stix-stream` modes on a bundle of `n` indicators.
fn stix_bench(mode: &str, n: usize) {
    let bundle: PathBuf = std::env::temp_dir().join(format!("orbwatch-stix-bench-{n}.json"));
    if !bundle.is_file() {
        let t = Instant::now();
        generate_stix(&bundle, n);
        eprintln!("generated {} in {:.1?}", bundle.display(), t.elapsed());
    }
    let size = std::fs::metadata(&bundle).map_or(0, |m| m.len());
    let before = peak_rss();
    let opts = ReadOptions::new("bench");
    let t = Instant::now();
    let (mut indicators, mut rejected, mut skipped, mut tagged) = (0usize, 0usize, 0usize, 0usize);
    let mut count = |p: &mut ParsedFeed| {
        indicators += p.indicators.len();
        tagged += p
            .indicators
            .iter()
            .filter(|i| i.tags.tlp.is_some() && !i.tags.other.is_empty())
            .count();
        rejected += p.rejected.len();
        skipped += p.skipped.len();
    };
    match mode {
        "stix-whole" => {
            let bytes = std::fs::read(&bundle).expect("read bundle");
            let mut feed = ParsedFeed::default();
            stix::read_whole(&bytes, "bundle.json", &opts, &mut feed).expect("parse bundle");
            orbwatch_intel::finalize(&mut feed, &opts);
            count(&mut feed);
        }
        "stix-stream" => {
            let mut open = || std::fs::File::open(&bundle);
            let streamed = stix::read_bundle_stream(&mut open, "bundle.json", &opts, &mut |p| {
                count(p);
                p.indicators.clear();
                p.rejected.clear();
                p.skipped.clear();
            })
            .expect("parse bundle");
            assert!(streamed, "the bundle was left to the whole reader");
        }
        other => panic!("mode is `stix-whole` or `stix-stream`, not `{other}`"),
    }
    let took = t.elapsed();
    let peak = peak_rss();
    assert_eq!(indicators, n, "every indicator read");
    assert_eq!(tagged, n, "every indicator has its TLP and source");
    println!(
        "mode={mode} indicators={indicators} file={:.1} MB rejected={rejected} skipped={skipped} \
         time={:.2} s peak_rss={:.0} MB (before reading {:.0} MB)",
        size as f64 / 1e6,
        took.as_secs_f64(),
        peak as f64 / 1e6,
        before as f64 / 1e6,
    );
}
