//! Fuzz the EVTX reader: any bytes after the file magic give events,
//! counted errors or a fatal reason, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use orbwatch_capture::evtx::read_evtx;

fuzz_target!(|data: &[u8]| {
    let mut input = b"ElfFile\0".to_vec();
    input.extend_from_slice(data);
    let _ = read_evtx(&input[..], &mut |_| {});
});
