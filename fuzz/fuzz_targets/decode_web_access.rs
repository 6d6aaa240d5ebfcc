//! Fuzz the web-access decoder: every line is decoded, rejected or skipped, never
//! a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use orbwatch_event::decoders::{DecoderConfig, by_name};

fuzz_target!(|data: &[u8]| {
    let Some(info) = by_name("web-access") else { return };
    let cfg = DecoderConfig {
        year: Some(2021),
        map: vec![("src_ip".into(), "src".into()), ("time".into(), "ts".into())],
        ..Default::default()
    };
    let mut decoder = (info.make)(&cfg);
    for line in data.split(|b| *b == b'\n') {
        let _ = decoder.decode(line);
    }
});
