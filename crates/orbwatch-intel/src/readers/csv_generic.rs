//! Generic CSV/TSV feeds. TODO(helper): implement.
use super::{FeedError, FeedFormat, ParsedFeed, ReadOptions};

pub fn looks_like(_head: &str) -> Option<FeedFormat> {
    None
}

pub fn read(_b: &[u8], _file: &str, _o: &ReadOptions, _delim: u8, _out: &mut ParsedFeed) -> Result<(), FeedError> {
    Ok(())
}
