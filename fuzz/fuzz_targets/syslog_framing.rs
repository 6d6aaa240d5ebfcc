//! Fuzz the RFC 6587 framer of the TCP/TLS syslog listeners: no panic, no
//! message above the bound, memory within it, and the same messages however
//! the stream is cut into reads (the first two bytes choose the limits and
//! the cut points).
#![no_main]
use libfuzzer_sys::fuzz_target;
use orbwatch_listen::{Framed, Framer, FramingLimits};

/// Messages and errors as owned values, to compare two runs.
fn run(limits: FramingLimits, chunks: &[&[u8]]) -> Vec<(bool, Vec<u8>, u64)> {
    let mut f = Framer::new(limits);
    let mut out = Vec::new();
    let max = f.limits().max_message;
    let mut sink = |x: Framed<'_>| match x {
        Framed::Message(m) => {
            assert!(m.bytes.len() <= max, "message above the bound");
            assert!(!m.bytes.is_empty(), "empty message delivered");
            out.push((true, m.bytes.to_vec(), m.offset));
        }
        Framed::Malformed { offset, .. } => out.push((false, Vec::new(), offset)),
    };
    for c in chunks {
        f.push(c, &mut sink);
        assert!(f.buffered() <= max, "buffer above the bound");
    }
    f.finish(&mut sink);
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let limits = FramingLimits {
        max_message: 1 + data[0] as usize % 64,
        max_frame: 1 + data[1] as usize * 4,
    };
    let data = &data[2..];
    let whole = run(limits, &[data]);
    // Cut after every byte whose low bits are 0b101: arbitrary but
    // input-driven.
    let mut chunks = Vec::new();
    let mut last = 0;
    for (i, b) in data.iter().enumerate() {
        if b & 7 == 5 {
            chunks.push(&data[last..=i]);
            last = i + 1;
        }
    }
    chunks.push(&data[last..]);
    assert_eq!(
        whole,
        run(limits, &chunks),
        "framing depends on read boundaries"
    );
});
