//! Fuzz decompression chosen by magic bytes (gzip, zstd, bzip2, xz, lz4 with
//! its frame check): any input is read to its end or to an error, never a
//! panic or a hang.
#![no_main]
use std::io::Read;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((_, mut reader)) = orbwatch_source::decompressed(std::io::Cursor::new(data.to_vec()))
    else {
        return;
    };
    // Bounded: a small input may expand a lot.
    let mut buf = [0u8; 64 * 1024];
    let mut total = 0usize;
    while total < 16 << 20 {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
});
