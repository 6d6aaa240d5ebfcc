//! The zeek-intel output read back by orbwatch-intel's Zeek intel reader
//! gives the same addresses and networks.

mod common;

use common::*;
use orbwatch_blocklist::{RenderOptions, Target, render};
use orbwatch_intel::{FeedFormat, IndicatorValue};

#[test]
fn zeek_intel_output_round_trips_through_the_zeek_reader() {
    let list = fixture();
    let r = render(Target::ZeekIntel, &list, &RenderOptions::default());
    let opts = orbwatch_intel::ReadOptions::new("rt");
    let parsed = orbwatch_intel::read_feed(
        &r.files[0].bytes,
        "rt.intel",
        Some(FeedFormat::ZeekIntel),
        &opts,
    )
    .expect("the Zeek reader accepts the file");
    assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
    let mut got: Vec<String> = parsed
        .indicators
        .iter()
        .map(|i| match &i.value {
            IndicatorValue::Ip(ip) => ipnet::IpNet::from(*ip).to_string(),
            IndicatorValue::Cidr(n) => n.to_string(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    let mut want: Vec<String> = list.entries.iter().map(|e| e.net.to_string()).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(got.len(), 12);

    // The empty list is a valid Zeek file too.
    let r = render(Target::ZeekIntel, &empty(), &RenderOptions::default());
    let parsed = orbwatch_intel::read_feed(
        &r.files[0].bytes,
        "rt.intel",
        Some(FeedFormat::ZeekIntel),
        &opts,
    )
    .expect("the Zeek reader accepts the empty file");
    assert!(parsed.indicators.is_empty() && parsed.rejected.is_empty());
}
