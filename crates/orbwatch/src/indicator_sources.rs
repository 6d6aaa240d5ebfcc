//! Where a command's indicators come from: `--feed` files read ad hoc
//! and/or the feeds in the store. `hunt` compiles them into its engine and
//! `export blocklist` selects from them; both read them here, the same way.

use std::ops::ControlFlow;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use orbwatch_intel::{FeedFormat, Indicator, ParsedFeed, Rejected};

use crate::Cli;

/// What to read.
pub struct IndicatorSources<'a> {
    /// `--feed` files. Without any, the store is read; with `--db` too,
    /// both.
    pub feeds: &'a [PathBuf],
    /// `--feed-format`: overrides detection.
    pub format: Option<&'a str>,
    /// `--grace`: widening of first/last-seen dates without a window.
    pub grace: Option<&'a str>,
    /// The command has other inputs (behaviour detectors, findings), so a
    /// store that does not exist yet is not an error.
    pub store_optional: bool,
    /// Give the undated entries of subscribed feeds the windows learned
    /// from their history, and include those they dropped (`hunt`); a
    /// blocklist wants only what is listed now.
    pub history: bool,
    /// The store to read instead of `--db`/`ORBWATCH_DB`/the default
    /// (`watch --config` names its own).
    pub store_path: Option<&'a std::path::Path>,
}

/// Receives the indicators.
pub trait IndicatorSink {
    /// A plain list of about `n` indicators is about to arrive.
    fn reserve(&mut self, _n: usize) {}
    /// Whether the indicators of this feed are wanted at all.
    fn wants(&self, _feed: &str) -> bool {
        true
    }
    /// One indicator of feed `feed` (the file stem of a `--feed` file, or
    /// the store's feed name).
    fn add(&mut self, ind: &Indicator, feed: &str);
}

/// The engine builder as the receiver of the indicators (`hunt`, `watch`).
pub struct EngineSink(pub orbwatch_detect::IocEngineBuilder);

impl IndicatorSink for EngineSink {
    fn reserve(&mut self, n: usize) {
        self.0.reserve(n);
    }
    fn add(&mut self, ind: &Indicator, feed: &str) {
        if ind.provenance.feed == feed {
            self.0.add(ind);
        } else {
            // Store rows carry their feed apart from the indicator.
            let mut ind = ind.clone();
            ind.provenance.feed = feed.to_string();
            self.0.add(&ind);
        }
    }
}

/// Empty one chunk of a streamed reader (a MISP event, a STIX bundle or a
/// CSV-like table all deliver the same chunks): its indicators go to
/// `sink` under the feed name `feed`, its rejects are counted into
/// `rejected_count` and the first one ever seen is kept in
/// `first_rejected` for the notice. Skipped records are dropped: the
/// notice does not speak of them. The chunk is left empty because the
/// reader keeps filling the same one.
fn drain_chunk(
    chunk: &mut ParsedFeed,
    sink: &mut dyn IndicatorSink,
    feed: &str,
    rejected_count: &mut u64,
    first_rejected: &mut Option<Rejected>,
) {
    for ind in chunk.indicators.drain(..) {
        sink.add(&ind, feed);
    }
    for r in chunk.rejected.drain(..) {
        *rejected_count += 1;
        first_rejected.get_or_insert(r);
    }
    chunk.skipped.clear();
}

/// Hand every indicator to `sink`. Returns one notice per feed file with
/// rejected entries (count and the first one), for the caller to print.
/// Plain lists are streamed: parsed in batches on a second thread while
/// this one hands the previous batch on, so a ten-million-line list never
/// sits in memory and parsing overlaps indexing.
pub fn load(
    cli: &Cli,
    src: &IndicatorSources,
    sink: &mut dyn IndicatorSink,
) -> Result<Vec<String>> {
    let mut notices = Vec::new();
    let format = src
        .format
        .map(|f| f.parse::<FeedFormat>().map_err(anyhow::Error::msg))
        .transpose()?;
    for path in src.feeds {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        if !sink.wants(&name) {
            continue;
        }
        let mut opts = orbwatch_intel::ReadOptions::new(name.clone());
        if let Some(g) = src.grace {
            opts.grace = orbwatch_intel::time::parse_duration(g)
                .map_err(|e| anyhow::anyhow!("--grace: {e}"))?;
        }
        let mut rejected: Option<Rejected> = None;
        let mut rejected_count = 0u64;
        let (plain, table) = match crate::feed_input::line_stream(path, format)? {
            Some((orbwatch_intel::FeedFormat::Plain, reader)) => (Some(reader), None),
            other => (None, other),
        };
        let document = match (&plain, &table) {
            (None, None) if path.is_file() => crate::feed_input::streamed_document(path, format)?,
            _ => None,
        };
        match (plain, document) {
            (Some(reader), _) => {
                // About 14 bytes per line in an address list.
                let size = std::fs::metadata(path).map_or(0, |m| m.len());
                sink.reserve((size / 14) as usize);
                let label = path.display().to_string();
                const BATCH: usize = 4096;
                let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Indicator>>(4);
                let parsed = std::thread::scope(|scope| {
                    let parser = scope.spawn(|| {
                        let mut batch = Vec::with_capacity(BATCH);
                        let res = orbwatch_intel::readers::plain::read_stream(
                            std::io::BufReader::with_capacity(256 * 1024, reader),
                            &label,
                            &opts,
                            |ind| {
                                batch.push(ind);
                                if batch.len() == BATCH {
                                    let full =
                                        std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                                    // The receiver only goes away on panic.
                                    let _ = tx.send(full);
                                }
                            },
                            |r| {
                                rejected_count += 1;
                                rejected.get_or_insert(r);
                            },
                        );
                        let _ = tx.send(batch);
                        drop(tx);
                        res
                    });
                    for batch in rx {
                        for ind in &batch {
                            sink.add(ind, &name);
                        }
                    }
                    parser.join()
                });
                match parsed {
                    Ok(res) => {
                        res.with_context(|| format!("cannot read feed {}", path.display()))?
                    }
                    Err(_) => bail!(
                        "reading feed {} failed (a bug: please report it)",
                        path.display()
                    ),
                }
            }
            (None, Some(doc)) => {
                // A MISP event or a STIX bundle as a stream of JSON
                // tokens, read twice, never as one JSON tree (a million
                // attributes took 6 GB).
                let label = path.display().to_string();
                let found =
                    crate::feed_input::read_document_stream(path, &label, doc, &opts, &mut |p| {
                        drain_chunk(p, sink, &name, &mut rejected_count, &mut rejected)
                    })?;
                if !found {
                    // Left to the whole reader, which answers (or
                    // explains what the file is).
                    let parsed = crate::feed_input::read_feed_path(path, Some(doc), &opts)?.parsed;
                    rejected_count += parsed.rejected.len() as u64;
                    if let Some(r) = parsed.rejected.into_iter().next() {
                        rejected.get_or_insert(r);
                    }
                    for ind in &parsed.indicators {
                        sink.add(ind, &name);
                    }
                }
            }
            (None, None) => match table {
                Some((table_format, reader)) => {
                    // A CSV, TSV or CERT-FR CSV, record by record: memory
                    // is that of a chunk of indicators, not of the file.
                    // Named by the file name, as the whole reader names it.
                    let label = path
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_else(|| path.display().to_string());
                    orbwatch_intel::readers::read_lines_stream(
                        table_format,
                        std::io::BufReader::with_capacity(256 * 1024, reader),
                        &label,
                        &opts,
                        &mut |p| drain_chunk(p, sink, &name, &mut rejected_count, &mut rejected),
                    )?;
                }
                None => {
                    let parsed = crate::feed_input::read_feed_path(path, format, &opts)?.parsed;
                    rejected_count = parsed.rejected.len() as u64;
                    rejected = parsed.rejected.into_iter().next();
                    for ind in &parsed.indicators {
                        sink.add(ind, &name);
                    }
                }
            },
        }
        if let Some(r) = rejected {
            notices.push(format!(
                "feed {}: {rejected_count} entries rejected (first: {}:{}: {})",
                path.display(),
                r.file,
                r.line,
                r.reason
            ));
        }
    }
    if src.feeds.is_empty() || cli.db.is_some() || src.store_path.is_some() {
        let path = match src.store_path {
            Some(p) => p.to_path_buf(),
            None => crate::db_path::resolve(cli)?,
        };
        if crate::db_path::exists(&path) {
            let store = orbwatch_store::Store::open(&path)
                .with_context(|| format!("cannot open the store {}", path.display()))?;
            if src.history {
                store.indicators_stream_with_history(None, |s, _| {
                    if sink.wants(&s.feed) {
                        sink.add(&s.indicator, &s.feed);
                    }
                    ControlFlow::Continue(())
                })?;
            } else {
                store.indicators_stream(None, |s| {
                    if sink.wants(&s.feed) {
                        sink.add(&s.indicator, &s.feed);
                    }
                    ControlFlow::Continue(())
                })?;
            }
        } else if src.feeds.is_empty() && !src.store_optional {
            bail!(
                "the store {} does not exist yet: add a feed with `orbwatch feed add FILE`, or pass --feed FILE",
                path.display()
            );
        }
    }
    Ok(notices)
}
