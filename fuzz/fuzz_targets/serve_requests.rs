//! Fuzz what `orbwatch serve` makes of a client's request: the triage body
//! (JSON) and the findings query string must give a decision, a filter or
//! an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first line is the query, the rest the body; the whole input is
    // also tried as a body.
    let (query, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[..0]),
    };
    let query = String::from_utf8_lossy(query);
    let _ = orbwatch_serve::api::parse_request(body, &query);
    let _ = orbwatch_serve::api::parse_request(data, "");
});
