//! Fuzz the pcap/pcapng reader: any bytes give flows, counted errors or a
//! fatal reason, never a panic. The first byte picks pcap or pcapng magic
//! so that the fuzzer gets past the header check.
#![no_main]
use libfuzzer_sys::fuzz_target;
use orbwatch_capture::pcap::{NetflowInPcap, PcapOptions, read_capture};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut input = Vec::with_capacity(rest.len() + 24);
    match mode % 3 {
        0 => input.extend_from_slice(&[0xd4, 0xc3, 0xb2, 0xa1]),
        1 => input.extend_from_slice(&[0x0a, 0x0d, 0x0d, 0x0a]),
        _ => {}
    }
    input.extend_from_slice(rest);
    let opts = PcapOptions {
        netflow: if mode & 4 != 0 { NetflowInPcap::Only } else { NetflowInPcap::Auto },
        ..Default::default()
    };
    let _ = read_capture(&input[..], &opts, &mut |_| {});
});
