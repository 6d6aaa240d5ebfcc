//! The CSV and CERT-FR CSV readers as streams (`read_lines_stream`): they
//! hand indicators on while reading, in chunks, so a feed of any size is
//! read in bounded memory; and they give exactly what the whole readers
//! give, rejections and swallowed rows with their line numbers included.

use std::io::{BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use orbwatch_intel::readers::{self, STREAM_CHUNK};
use orbwatch_intel::{FeedFormat, ParsedFeed, ReadOptions};

/// A CSV feed of `rows` data rows, generated as it is read (never held
/// whole), that fails with an I/O error once `fail_after` bytes have been
/// read: a reader that read the whole input before handing anything on
/// would hand nothing.
struct Generated {
    pending: Vec<u8>,
    next_row: u64,
    rows: u64,
    read: Arc<AtomicU64>,
    fail_after: u64,
}

impl Generated {
    fn new(rows: u64, fail_after: u64, read: Arc<AtomicU64>) -> Self {
        Self {
            pending: b"ip,first_seen,confidence,tags\n".to_vec(),
            next_row: 0,
            rows,
            read,
            fail_after,
        }
    }
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.read.load(Ordering::Relaxed) >= self.fail_after {
            return Err(std::io::Error::other(
                "the test's input ends here on purpose",
            ));
        }
        while self.pending.len() < buf.len() && self.next_row < self.rows {
            let i = self.next_row;
            self.next_row += 1;
            let ip = std::net::Ipv4Addr::from(0x0b00_0000 + i as u32);
            self.pending.extend_from_slice(
                format!("{ip},2026-11-{:02},{},scanner\n", 1 + i % 28, 50 + i % 50).as_bytes(),
            );
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[test]
fn a_csv_is_handed_on_in_chunks_before_the_input_is_read_whole() {
    // 200,000 rows are about 7 MB; the input fails after 4 MB.
    let read = Arc::new(AtomicU64::new(0));
    let input = BufReader::with_capacity(
        64 * 1024,
        Generated::new(200_000, 4 << 20, Arc::clone(&read)),
    );
    let opts = ReadOptions::new("gen");
    let mut handed = 0usize;
    let mut calls = 0usize;
    let mut largest = 0usize;
    let mut read_at_first = None;
    let res = readers::read_lines_stream(FeedFormat::Csv, input, "gen.csv", &opts, &mut |p| {
        calls += 1;
        largest = largest.max(p.indicators.len());
        read_at_first.get_or_insert(read.load(Ordering::Relaxed));
        // Each row has a first-seen date, so the window policy was applied.
        assert!(p.indicators.iter().all(|i| i.valid_from.is_some()));
        handed += p.indicators.drain(..).count();
    });
    let err = res.expect_err("the input fails part way");
    assert!(
        err.to_string().contains("on purpose"),
        "the I/O error is reported: {err}"
    );
    assert!(
        read_at_first.expect("something was handed on") <= 1 << 20,
        "the first chunk came after {read_at_first:?} bytes"
    );
    assert!(largest <= STREAM_CHUNK, "a chunk of {largest} indicators");
    // Everything read before the failure was handed on: over 100,000 rows.
    assert!(handed > 100_000 && calls > 20, "{handed} in {calls} chunks");
}

/// The stream gives the whole reader's indicators, rejections (with line
/// numbers) and skips, for the CSV, TSV and CERT-FR files of the tests, a
/// large generated CSV and damaged ones (an unbalanced quote, a bad date).
#[test]
fn the_stream_gives_what_the_whole_reader_gives() {
    let mut cases: Vec<(FeedFormat, String, Vec<u8>)> = Vec::new();
    let mut big = String::from("ip,first_seen,confidence,tags,comment\n");
    for i in 0..10_000u32 {
        let ip = std::net::Ipv4Addr::from(0x0b00_0000 + i);
        match i {
            // A date that is none: rejected with its line (1236).
            1234 => big.push_str(&format!("{ip},not-a-date,80,scanner,\"x\"\n")),
            // An unbalanced quote (line 5002) swallows the row after it.
            5000 => big.push_str(&format!("{ip},2026-11-01,80,scanner,\"open\n")),
            _ => big.push_str(&format!("{ip},2026-11-01,{},scanner,\"ok\"\n", i % 100)),
        }
    }
    cases.push((FeedFormat::Csv, "big.csv".into(), big.into_bytes()));
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    for dir in [
        "tests/data/feeds-text",
        "tests/data/feeds-stix-misp",
        "examples/feeds",
        "crates/orbwatch-blocklist/tests/data",
    ] {
        let Ok(entries) = std::fs::read_dir(format!("{root}/{dir}")) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let head = &bytes[..bytes.len().min(readers::HEAD_BYTES)];
            if let Some(f) = orbwatch_intel::detect(head).filter(|f| readers::streams_lines(*f)) {
                cases.push((f, path.display().to_string(), bytes));
            }
        }
    }
    assert!(
        cases.iter().any(|(f, _, _)| *f == FeedFormat::Certfr),
        "a CERT-FR file among the cases: {:?}",
        cases.iter().map(|c| &c.1).collect::<Vec<_>>()
    );
    let opts = ReadOptions::new("t");
    for (fmt, name, bytes) in &cases {
        let whole = orbwatch_intel::read_feed_from(&bytes[..], "f", Some(*fmt), &opts)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut streamed = ParsedFeed::default();
        readers::read_lines_stream(*fmt, &bytes[..], "f", &opts, &mut |p| {
            streamed.indicators.append(&mut p.indicators);
            streamed.rejected.append(&mut p.rejected);
            streamed.skipped.append(&mut p.skipped);
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(streamed.indicators, whole.indicators, "{name}");
        let key = |r: &orbwatch_intel::Rejected| (r.line, r.reason.clone(), r.raw.clone());
        let mut a: Vec<_> = streamed.rejected.iter().map(key).collect();
        let mut b: Vec<_> = whole.rejected.iter().map(key).collect();
        a.sort();
        b.sort();
        assert_eq!(a, b, "{name}");
        assert_eq!(streamed.skipped.len(), whole.skipped.len(), "{name}");
    }
    // The generated CSV: the bad date at line 1236, the row swallowed by
    // the quote opened on line 5002 counted with its own line.
    let (_, _, big) = &cases[0];
    let mut rejected = Vec::new();
    let mut n = 0;
    readers::read_lines_stream(FeedFormat::Csv, &big[..], "big.csv", &opts, &mut |p| {
        n += p.indicators.len();
        rejected.append(&mut p.rejected);
    })
    .expect("read");
    assert!(
        rejected
            .iter()
            .any(|r| r.line == 1236 && r.reason.contains("not a date")),
        "{rejected:?}"
    );
    assert!(
        rejected.iter().any(|r| r.line == 5003
            && r.reason
                .contains("swallowed by a quoted field opened on line 5002")),
        "{rejected:?}"
    );
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert_eq!(n, 9_998);
}
