//! Free-text extraction. TODO(helper): implement.
use super::{ParsedFeed, ReadOptions};

pub fn read(_b: &[u8], _file: &str, _o: &ReadOptions, _out: &mut ParsedFeed) {}
