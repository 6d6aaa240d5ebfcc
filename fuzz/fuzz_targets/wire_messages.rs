//! Fuzz the worker's wire formats, read from Kafka topics that anything
//! can write to: observations and sightings (stage 1 → 2), summaries
//! (stage 2 → 3) and published feeds (the feeds topic, chunks
//! decompressed). No input may panic or exhaust memory, and whatever
//! decodes must encode to bytes that decode to the same message, so a
//! message a worker accepted survives being written on.
#![no_main]
use libfuzzer_sys::fuzz_target;
use orbwatch_engine::feed_wire::FeedMessage;
use orbwatch_engine::obs_wire::WireMessage;
use orbwatch_engine::summary_wire::Summary;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = WireMessage::decode(data) {
        let again = WireMessage::decode(&m.encode());
        assert_eq!(again.as_ref(), Ok(&m), "observation round trip");
        let _ = m.key();
    }
    if let Ok(s) = Summary::decode(data) {
        let again = Summary::decode(&s.encode());
        assert_eq!(again.as_ref(), Ok(&s), "summary round trip");
    }
    if let Ok(FeedMessage::Chunk(c)) = FeedMessage::decode(data) {
        let mut n = 0u64;
        let _ = c.for_each(|_| n += 1);
    }
});
