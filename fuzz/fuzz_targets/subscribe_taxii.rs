//! Fuzz the TAXII 2.1 envelope parser of `feed update`, and the STIX reading
//! of the objects it returns: any server answer must give objects or an
//! error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use orbwatch_intel::{FeedFormat, ReadOptions, read_feed};
use orbwatch_subscribe::taxii;

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = taxii::parse_envelope(data) {
        let _ = taxii::objects_url(
            "https://h/api/collections/c/",
            env.next.as_deref(),
            env.next.as_deref(),
            Some(10),
        );
        let bundle = serde_json::json!({"type": "bundle", "id": "bundle--fuzz", "objects": env.objects});
        if let Ok(bytes) = serde_json::to_vec(&bundle) {
            let _ = read_feed(&bytes, "fuzz", Some(FeedFormat::Stix), &ReadOptions::new("fuzz"));
        }
    }
});
