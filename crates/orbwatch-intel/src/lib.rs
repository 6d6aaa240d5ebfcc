//! Threat-intelligence indicators for orbwatch: the model, the feed readers
//! and the compiled [`index::Index`] used for matching.
//!
//! This crate does no I/O beyond parsing the bytes it is handed, so that the
//! store, `hunt` and `watch` can all use it the same way.

pub mod index;
pub mod model;
pub mod readers;
pub mod snapshot;
pub mod time;
pub mod value;
pub mod writers;

pub use index::{Index, IndexBuilder, MatchRef, WindowInfo};
pub use model::{
    HashAlgo, Indicator, IndicatorKind, IndicatorValue, Provenance, Rejected, Skipped, Tags,
};
pub use readers::{
    FeedError, FeedFormat, ParsedFeed, ReadOptions, apply_window_policy, detect, finalize,
    read_feed, read_feed_from,
};
