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

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use orbwatch_intel::{FeedFormat, ReadOptions, read_feed, read_feed_from};

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
