//! Fuzz the misp feed reader: any bytes must give indicators, rejections or
//! an error, never a panic. The streaming reader (`feed add`, `hunt
//! --feed`) is checked against the whole one on the same bytes: both fail,
//! or they give the same indicator values and the same numbers of rejected
//! and skipped entries. (Lines may differ where a uuid repeats: the whole
//! reader gives its first occurrence.) When the stream leaves the file to
//! the whole reader (no event, or a key given twice) it has handed on
//! nothing. Inputs it found disagreeing are kept in
//! `crates/orbwatch-intel/tests/data/misp-fuzz-regressions/`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use orbwatch_intel::readers::misp;
use orbwatch_intel::{FeedFormat, ParsedFeed, ReadOptions, read_feed};

fuzz_target!(|data: &[u8]| {
    let opts = ReadOptions::new("fuzz");
    let format: Option<FeedFormat> = Some("misp".parse().unwrap());
    let _ = read_feed(data, "fuzz", format, &opts);

    let mut whole = ParsedFeed::default();
    let whole_ok = misp::read_event_file(data, "fuzz", &opts, &mut whole).is_ok();
    let mut streamed = ParsedFeed::default();
    let mut open = || Ok::<_, std::io::Error>(data);
    let found = misp::read_event_stream(&mut open, "fuzz", &opts, &mut |p| {
        streamed.indicators.append(&mut p.indicators);
        streamed.rejected.append(&mut p.rejected);
        streamed.skipped.append(&mut p.skipped);
    });
    match found {
        Ok(true) => {
            assert!(whole_ok, "the stream read what the whole reader refused");
            let values = |p: &ParsedFeed| {
                let mut v: Vec<String> = p.indicators.iter().map(|i| i.value.to_string()).collect();
                v.sort();
                v
            };
            assert_eq!(values(&streamed), values(&whole));
            assert_eq!(streamed.rejected.len(), whole.rejected.len());
            assert_eq!(streamed.skipped.len(), whole.skipped.len());
        }
        Ok(false) => assert!(streamed.indicators.is_empty() && streamed.rejected.is_empty()),
        Err(_) => assert!(!whole_ok, "the whole reader read what the stream refused"),
    }
});
