//! Fuzz the NetFlow/IPFIX decoder: the input is split into datagrams
//! (first two bytes of each chunk = its length) fed to one decoder, so that
//! templates from early datagrams meet data in later ones.
#![no_main]
use libfuzzer_sys::fuzz_target;
use orbwatch_capture::Coverage;
use orbwatch_capture::netflow::{NetflowDecoder, read_datagrams};

fuzz_target!(|data: &[u8]| {
    let _ = read_datagrams(data, &mut |_| {});
    let mut dec = NetflowDecoder::new();
    let mut cov = Coverage::new("netflow");
    let mut rest = data;
    let mut n = 0;
    while rest.len() >= 2 {
        let len = (u16::from_be_bytes([rest[0], rest[1]]) as usize).min(rest.len() - 2);
        let (d, r) = rest[2..].split_at(len);
        n += 1;
        dec.datagram(d, std::net::IpAddr::from([192, 0, 2, (n % 3) as u8]), n, 0, &mut cov, &mut |_| {});
        rest = r;
    }
    dec.finish(&mut cov);
});
