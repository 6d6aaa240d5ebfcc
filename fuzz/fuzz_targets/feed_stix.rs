//! Fuzz the stix feed reader: any bytes must give indicators, rejections or
//! an error, never a panic. The streaming bundle reader (`feed add`, `hunt
//! --feed`, `read_feed`) is checked against the whole one on the same
//! bytes: when the stream reads them, the whole reader reads them too and
//! gives the same indicator values and the same numbers of rejected and
//! skipped entries (lines may differ for an id written with a JSON escape:
//! the whole reader finds ids in the raw bytes); when the stream leaves
//! them to the whole reader, it has handed on nothing.
#![no_main]
use libfuzzer_sys::fuzz_target;
use orbwatch_intel::readers::stix;
use orbwatch_intel::{FeedFormat, ParsedFeed, ReadOptions, read_feed};

fuzz_target!(|data: &[u8]| {
    let opts = ReadOptions::new("fuzz");
    let format: Option<FeedFormat> = Some("stix".parse().unwrap());
    let _ = read_feed(data, "fuzz", format, &opts);

    let mut whole = ParsedFeed::default();
    let whole_ok = stix::read_whole(data, "fuzz", &opts, &mut whole).is_ok();
    let mut streamed = ParsedFeed::default();
    let mut open = || Ok::<_, std::io::Error>(data);
    let found = stix::read_bundle_stream(&mut open, "fuzz", &opts, &mut |p| {
        streamed.indicators.append(&mut p.indicators);
        streamed.rejected.append(&mut p.rejected);
        streamed.skipped.append(&mut p.skipped);
    });
    match found {
        Ok(true) => {
            assert!(whole_ok, "the stream read what the whole reader refused");
            let values = |p: &ParsedFeed| {
                let v: Vec<String> = p.indicators.iter().map(|i| i.value.to_string()).collect();
                v
            };
            assert_eq!(values(&streamed), values(&whole));
            assert_eq!(streamed.rejected.len(), whole.rejected.len());
            assert_eq!(streamed.skipped.len(), whole.skipped.len());
        }
        Ok(false) => assert!(
            streamed.indicators.is_empty()
                && streamed.rejected.is_empty()
                && streamed.skipped.is_empty()
        ),
        Err(e) => panic!("the stream failed on bytes that do not change: {e}"),
    }
});
