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

/// Every other line format streams too (Zeek intel, Suricata iprep and
/// datasets, STIX CSV exports, free text): a generated file of 10,000
/// entries with bad lines among them is handed on in chunks of at most
/// [`readers::STREAM_CHUNK`] indicators (plus what one line holds), and
/// gives exactly what reading it whole gives: the same indicators in the
/// same order, the same rejections with their lines.
#[test]
fn every_line_format_streams_in_chunks_as_it_reads_whole() {
    let ip = |i: u32| std::net::Ipv4Addr::from(0x0b00_0000 + i);
    let mut zeek = String::from("#fields\tindicator\tindicator_type\tmeta.source\n");
    let mut iprep = String::new();
    let mut dataset = String::from("# an ipv4 dataset\n");
    let mut stix = String::from("pattern,valid_from,name\n");
    let mut prose = String::from("Relays seen in the campaign\n\n");
    for i in 0..10_000u32 {
        if i % 2_500 == 7 {
            // One bad line in every 2,500.
            zeek.push_str("300.1.2.3\tIntel::ADDR\tgen\n");
            iprep.push_str(&format!("{},1\n", ip(i)));
            dataset.push_str("not base64 !!\n");
            stix.push_str("[ipv4-addr:value = ,2026-11-01T00:00:00Z,broken\n");
            prose.push_str("The host 10.0.0.300 is not an address: ignored.\n");
            continue;
        }
        zeek.push_str(&format!("{}\tIntel::ADDR\tgen\n", ip(i)));
        iprep.push_str(&format!("{},1,{}\n", ip(i), i % 128));
        dataset.push_str(&format!("{}\n", ip(i)));
        stix.push_str(&format!(
            "\"[ipv4-addr:value = '{}']\",2026-11-01T00:00:00Z,relay {i}\n",
            ip(i)
        ));
        // Two values on some lines: a chunk may pass the size by one line.
        if i % 3 == 0 {
            prose.push_str(&format!(
                "Seen from {} and {}[.]1 on the same day.\n",
                ip(i),
                ip(i + 20_000)
            ));
        } else {
            prose.push_str(&format!("Seen from {}.\n", ip(i)));
        }
    }
    let cases = [
        (FeedFormat::ZeekIntel, zeek),
        (FeedFormat::SuricataIprep, iprep),
        (FeedFormat::SuricataDataset, dataset),
        (FeedFormat::StixCsv, stix),
        (FeedFormat::Freetext, prose),
    ];
    let opts = ReadOptions::new("t");
    for (fmt, text) in &cases {
        assert!(readers::streams_lines(*fmt), "{fmt}");
        let whole = orbwatch_intel::read_feed_from(text.as_bytes(), "f", Some(*fmt), &opts)
            .unwrap_or_else(|e| panic!("{fmt}: {e}"));
        assert!(
            whole.indicators.len() > 9_000,
            "{fmt}: {}",
            whole.indicators.len()
        );
        // Free text ignores what is not a value (prose), so it rejects
        // nothing here.
        assert!(
            *fmt == FeedFormat::Freetext || whole.rejected.len() == 4,
            "{fmt}: the bad lines are rejected: {:?}",
            whole.rejected
        );
        let mut streamed = ParsedFeed::default();
        let mut chunks = Vec::new();
        readers::read_lines_stream(*fmt, text.as_bytes(), "f", &opts, &mut |p| {
            chunks.push(p.indicators.len());
            streamed.indicators.append(&mut p.indicators);
            streamed.rejected.append(&mut p.rejected);
            streamed.skipped.append(&mut p.skipped);
        })
        .unwrap_or_else(|e| panic!("{fmt}: {e}"));
        assert!(chunks.len() >= 3, "{fmt}: handed on in chunks: {chunks:?}");
        assert!(
            chunks.iter().all(|n| *n <= readers::STREAM_CHUNK + 1),
            "{fmt}: {chunks:?}"
        );
        assert_eq!(streamed.indicators, whole.indicators, "{fmt}");
        let key = |r: &orbwatch_intel::Rejected| (r.line, r.reason.clone(), r.raw.clone());
        let a: Vec<_> = streamed.rejected.iter().map(key).collect();
        let b: Vec<_> = whole.rejected.iter().map(key).collect();
        assert_eq!(a, b, "{fmt}");
        assert_eq!(streamed.skipped.len(), whole.skipped.len(), "{fmt}");
    }
}
