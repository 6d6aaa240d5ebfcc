//! A feed for tests: indicators of the given values, one per line.

use orbwatch_detect::{InternalNets, IocEngine};
use orbwatch_intel::value::parse_value;
use orbwatch_intel::{Indicator, Provenance};

/// Feed `feed` listing `values`, in that order (line 1, 2, …).
pub fn ioc_of(feed: &str, values: &[&str]) -> IocEngine {
    let inds = values.iter().enumerate().map(|(i, v)| {
        Indicator::new(
            parse_value(v, None).expect("test value parses"),
            Provenance {
                feed: feed.into(),
                file: "relays.txt".into(),
                line: i as u64 + 1,
                record_id: None,
            },
        )
    });
    IocEngine::new(inds, InternalNets::default())
}
