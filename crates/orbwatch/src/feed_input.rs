//! Reading a feed from a path, for `feed add` and `hunt --feed`: the
//! readers live in `orbwatch-feedload` (shared with the API's feed
//! upload); here are the parts that belong to the command line: the
//! `ORBWATCH_MAX_FEED_DOCUMENT` setting and the free-text warning on
//! standard error.

use std::path::Path;

use anyhow::Result;
use orbwatch_intel::{FeedFormat, ReadOptions};

pub use orbwatch_feedload::{LoadedFeed, line_stream, read_document_stream, streamed_document};

/// Read the feed at `path` whole. `format` overrides detection. Warns on
/// standard error when the file matched no structured format and was read
/// as free text.
pub fn read_feed_path(
    path: &Path,
    format: Option<FeedFormat>,
    opts: &ReadOptions,
) -> Result<LoadedFeed> {
    let mut opts = opts.clone();
    apply_max_document_from_env(&mut opts)?;
    let loaded = orbwatch_feedload::read_feed_path(path, format, &opts)?;
    if let Some(notice) = &loaded.freetext_notice {
        eprintln!("orbwatch: warning: {notice}");
    }
    Ok(loaded)
}

/// `ORBWATCH_MAX_FEED_DOCUMENT=BYTES`: the largest JSON feed document read
/// whole (default 1 GiB).
pub fn apply_max_document_from_env(opts: &mut ReadOptions) -> Result<()> {
    match std::env::var("ORBWATCH_MAX_FEED_DOCUMENT") {
        Ok(v) => {
            opts.max_document_bytes = v.trim().parse::<u64>().map_err(|_| {
                anyhow::anyhow!(
                    "ORBWATCH_MAX_FEED_DOCUMENT={v:?} is not a number of bytes; set it to a whole \
                     number such as 2147483648, or unset it for the 1 GiB default"
                )
            })?;
            Ok(())
        }
        Err(_) => Ok(()),
    }
}
