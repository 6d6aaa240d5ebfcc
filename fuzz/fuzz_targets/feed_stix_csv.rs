//! Fuzz the reader of CSV exports of STIX indicators (`stix-csv`): any
//! bytes must give indicators, rejections or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use orbwatch_intel::{FeedFormat, ReadOptions, read_feed};

fuzz_target!(|data: &[u8]| {
    let format: Option<FeedFormat> = Some("stix-csv".parse().unwrap());
    let _ = read_feed(data, "fuzz", format, &ReadOptions::new("fuzz"));
});
