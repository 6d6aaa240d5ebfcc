//! Fuzz the XML-per-line Windows event decoder: every line is decoded,
//! rejected or skipped, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use orbwatch_event::decoders::{DecoderConfig, by_name};

fuzz_target!(|data: &[u8]| {
    let Some(info) = by_name("evtx-xml") else { return };
    let mut decoder = (info.make)(&DecoderConfig::default());
    for line in data.split(|b| *b == b'\n') {
        let _ = decoder.decode(line);
    }
});
