//! Suricata iprep and dataset files. TODO(helper): implement.
use super::{ParsedFeed, ReadOptions};

pub fn looks_like_iprep(_head: &str) -> bool {
    false
}

pub fn read_iprep(_b: &[u8], _file: &str, _o: &ReadOptions, _out: &mut ParsedFeed) {}

pub fn read_dataset(_b: &[u8], _file: &str, _o: &ReadOptions, _out: &mut ParsedFeed) {}
