//! CERT-FR (ANSSI) MISP-derived CSV. TODO(helper): implement.
use super::{FeedError, ParsedFeed, ReadOptions};

pub fn looks_like(_head: &str) -> bool {
    false
}

pub fn read(_b: &[u8], _file: &str, _o: &ReadOptions, _out: &mut ParsedFeed) -> Result<(), FeedError> {
    Ok(())
}
