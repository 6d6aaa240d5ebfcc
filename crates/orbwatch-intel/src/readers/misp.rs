//! MISP events and feeds. TODO(helper): implement.
use super::{FeedError, ParsedFeed, ReadOptions};

pub fn looks_like(_head: &str) -> bool {
    false
}

pub fn read_event_file(_b: &[u8], _file: &str, _o: &ReadOptions, _out: &mut ParsedFeed) -> Result<(), FeedError> {
    Ok(())
}

/// Read a MISP feed directory: `manifest` is the bytes of `manifest.json`;
/// `load_event(uuid)` returns the bytes of `<uuid>.json` (the caller does
/// the I/O). Events that fail to load are rejected, the others still read.
pub fn read_feed_dir(
    _manifest: &[u8],
    _manifest_file: &str,
    _load_event: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>,
    _opts: &ReadOptions,
    _out: &mut ParsedFeed,
) -> Result<(), FeedError> {
    Ok(())
}
