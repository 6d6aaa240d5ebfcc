//! Fuzz the MISP restSearch answer handling of `feed update`: the cursor
//! (newest event timestamp), the event count and the event reader must
//! give a result or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use orbwatch_intel::{FeedFormat, ReadOptions, read_feed};
use orbwatch_subscribe::misp;

fuzz_target!(|data: &[u8]| {
    let _ = misp::event_count(data);
    if let Ok(Some(t)) = misp::newest_timestamp(data) {
        let _ = misp::rest_search_body(Some(t.saturating_add(1)), "30d");
        let _ = read_feed(data, "fuzz", Some(FeedFormat::Misp), &ReadOptions::new("fuzz"));
    }
});
