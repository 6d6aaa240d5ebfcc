//! Read a feed file and store it as it is read.
//!
//! Why a crate of its own: `orbwatch feed add` and the API's
//! `POST /api/v1/feeds/{name}` (orbwatch-serve) must store a file the same
//! way, in bounded memory, with the same digest, rejects and line numbers.
//! The code lived in the binary, which the server cannot depend on, so the
//! API read uploads whole into memory. Here both call [`load_feed_file`].
//!
//! Plain lists, CSV, TSV, CERT-FR CSV and the other line formats are read
//! line by line; MISP events and STIX bundles as a stream of JSON tokens;
//! everything else (a MISP feed folder, STIX JSON lines, a document the
//! stream leaves to the whole reader) is read whole.

use std::path::{Path, PathBuf};

use orbwatch_intel::{FeedFormat, Indicator, ReadOptions, Rejected, Skipped};
use orbwatch_store::{ImportOptions, ImportReport, Store, StoreError};

pub mod input;
pub mod spool;

pub use input::{
    Digesting, LoadedFeed, PlainList, freetext_notice, line_stream, read_document_stream,
    read_feed_path, read_feed_path_as, streamed_document,
};

/// Why a feed file could not be stored. Each names the file (or folder)
/// and, for a feed's content, the line, as the reader reported it.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be opened or read (missing, unreadable, a
    /// device that failed).
    #[error("cannot read feed file {}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// A folder was given that is not a MISP feed folder.
    #[error(
        "{} is a folder without manifest.json; give a feed file, or a MISP feed folder",
        path.display()
    )]
    FolderWithoutManifest { path: PathBuf },
    /// A MISP feed folder with a format that is not `misp-feed`.
    #[error(
        "{} is a MISP feed folder, but --format says {format}; drop --format or use --format misp-feed",
        path.display()
    )]
    FolderNotMispFeed { path: PathBuf, format: FeedFormat },
    /// A MISP feed folder whose manifest or events could not be read.
    #[error("cannot read the MISP feed in {}: {cause}", dir.display())]
    MispFolder {
        dir: PathBuf,
        cause: orbwatch_intel::FeedError,
    },
    /// The content is not a feed of the format given or detected (the
    /// reader says which file, line and why).
    #[error(transparent)]
    Feed(#[from] orbwatch_intel::FeedError),
    /// The store refused the import (a bad name, a busy store, a read
    /// error that stopped a streamed import: the store is left as it was).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl LoadError {
    pub(crate) fn io(path: &Path, cause: std::io::Error) -> Self {
        LoadError::Io {
            path: path.to_path_buf(),
            cause,
        }
    }

    /// True when the fault is the feed's content or the request (a format
    /// that does not fit, a bad name), not the machine: the API answers
    /// 400 for these.
    pub fn is_bad_input(&self) -> bool {
        match self {
            LoadError::Feed(_)
            | LoadError::MispFolder { .. }
            | LoadError::FolderNotMispFeed { .. }
            | LoadError::FolderWithoutManifest { .. } => true,
            LoadError::Store(e) => matches!(
                e,
                StoreError::InvalidName { .. } | StoreError::ImportSource { .. }
            ),
            LoadError::Io { .. } => false,
        }
    }
}

/// One feed file to store.
pub struct FeedFile<'a> {
    /// Where the file is read from (a feed file or a MISP feed folder).
    pub path: &'a Path,
    /// The feed's name in the store.
    pub name: &'a str,
    /// The format to read it as; `None` detects it on its first 64 KiB.
    pub format: Option<FeedFormat>,
    /// How to read it (grace, validity, CSV columns, …).
    pub opts: &'a ReadOptions,
    /// The file's name in rejects and in the indicators' provenance.
    pub label: &'a str,
    /// What the store records as the version's source (the CLI: the
    /// canonical path; the API: the name the client gave).
    pub source: &'a str,
}

/// What [`load_feed_file`] stored.
#[derive(Debug)]
pub struct LoadedReport {
    /// The format the file was read as, and stored under.
    pub format: FeedFormat,
    /// What the import did (the version, counts, changes).
    pub report: ImportReport,
    /// Every entry that could not be read, with its line.
    pub rejected: Vec<Rejected>,
    /// Entries deliberately not taken (a type orbwatch does not hunt), with
    /// their line.
    pub skipped: Vec<Skipped>,
    /// SHA-256 of the file (of a MISP folder: of its sorted per-file
    /// digests).
    pub sha256: String,
    /// Set when the file named no format and was read as free text: tell
    /// the user (see [`freetext_notice`]).
    pub freetext_notice: Option<String>,
}

/// What a load may refuse to store, beyond what every load refuses.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadRules {
    /// Refuse a version with no indicators when the feed has some
    /// ([`ImportOptions::refuse_empty_version`]): the error is
    /// [`LoadError::Store`] with [`StoreError::EmptyVersionRefused`], and
    /// the feed keeps its version. Subscriptions set it (a download that
    /// gave nothing is a broken source); `feed add` and uploads do not.
    pub refuse_empty_version: bool,
}

/// Read the feed at `feed.path` and store it as a new version of
/// `feed.name`. Line formats and MISP/STIX documents are stored as they
/// are read (memory of a few batches and of the store's bookkeeping, not
/// of the file); the rest is read whole first. A read error fails the
/// import and leaves the store as it was.
pub fn load_feed_file(store: &mut Store, feed: &FeedFile) -> Result<LoadedReport, LoadError> {
    load_feed_file_with(store, feed, LoadRules::default())
}

/// [`load_feed_file`], with `rules` on what not to store.
pub fn load_feed_file_with(
    store: &mut Store,
    feed: &FeedFile,
    rules: LoadRules,
) -> Result<LoadedReport, LoadError> {
    let path = feed.path;
    let meta = std::fs::metadata(path).map_err(|e| LoadError::io(path, e))?;
    if meta.is_dir()
        && let Some(f) = feed.format.filter(|f| *f != FeedFormat::MispFeed)
    {
        return Err(LoadError::FolderNotMispFeed {
            path: path.to_path_buf(),
            format: f,
        });
    }
    if !meta.is_dir()
        && let Some((format, list)) = line_stream(path, feed.format)?
    {
        if format == FeedFormat::Plain {
            return store_plain_streamed(store, feed, rules, format, list);
        }
        return store_lines_streamed(store, feed, rules, format, list);
    }
    if meta.is_file()
        && let Some(format @ (FeedFormat::Misp | FeedFormat::Stix)) =
            streamed_document(path, feed.format)?
    {
        return store_document_streamed(store, feed, rules, format);
    }
    let LoadedFeed {
        parsed,
        sha256,
        freetext_notice,
    } = read_feed_path_as(path, feed.label, feed.format, feed.opts)?;
    let format = parsed
        .format
        .or(feed.format)
        .unwrap_or(FeedFormat::Freetext);
    let report = store.import_feed(
        feed.name,
        format,
        feed.source,
        &parsed,
        &ImportOptions {
            source_sha256: Some(sha256.clone()),
            options: orbwatch_store::read_options_json(feed.opts),
            at: Some(feed.opts.now),
            refuse_empty_version: rules.refuse_empty_version,
        },
    )?;
    Ok(LoadedReport {
        format,
        report,
        rejected: parsed.rejected,
        skipped: parsed.skipped,
        sha256,
        freetext_notice,
    })
}

/// What a streamed reader reports when it reaches the end of its feed.
struct StreamEnd {
    rejected: Vec<Rejected>,
    skipped: Vec<Skipped>,
    sha256: String,
}

/// What the reading thread of [`store_streamed`] sends.
enum ListMsg {
    Batch(Vec<Indicator>),
    Failed(String),
    Done(StreamEnd),
}

/// A plain list, stored as it is read.
fn store_plain_streamed(
    store: &mut Store,
    feed: &FeedFile,
    rules: LoadRules,
    format: FeedFormat,
    list: PlainList,
) -> Result<LoadedReport, LoadError> {
    let shown = feed.path.display().to_string();
    store_streamed(store, feed, rules, format, move |emit| {
        let mut reader = std::io::BufReader::with_capacity(256 * 1024, Digesting::new(list));
        let mut rejected = Vec::new();
        orbwatch_intel::readers::plain::read_stream(
            &mut reader,
            feed.label,
            feed.opts,
            emit,
            |r| rejected.push(r),
        )
        .map_err(|e| format!("cannot read feed file {shown}: {e}"))?;
        Ok(StreamEnd {
            rejected,
            skipped: Vec::new(),
            sha256: reader.into_inner().hex(),
        })
    })
}

/// A CSV, TSV or CERT-FR CSV (or another line format), stored as it is
/// read ([`read_lines_stream`]): memory is that of a chunk of indicators
/// and of one record, not of the file. Rejected rows keep their line
/// numbers, and the rows an unbalanced quote swallowed are reported, as
/// when the file was read whole. A header that maps no value column stops
/// the import, which leaves the store as it was.
///
/// [`read_lines_stream`]: orbwatch_intel::readers::read_lines_stream
fn store_lines_streamed(
    store: &mut Store,
    feed: &FeedFile,
    rules: LoadRules,
    format: FeedFormat,
    list: PlainList,
) -> Result<LoadedReport, LoadError> {
    let shown = feed.path.display().to_string();
    let (opts, label) = (feed.opts, feed.label);
    store_streamed(store, feed, rules, format, move |emit| {
        let cannot = |e: std::io::Error| format!("cannot read feed file {shown}: {e}");
        let mut reader = std::io::BufReader::with_capacity(256 * 1024, Digesting::new(list));
        let (mut rejected, mut skipped) = (Vec::new(), Vec::new());
        orbwatch_intel::readers::read_lines_stream(format, &mut reader, label, opts, &mut |p| {
            for ind in p.indicators.drain(..) {
                emit(ind);
            }
            rejected.append(&mut p.rejected);
            skipped.append(&mut p.skipped);
        })
        .map_err(|e| e.to_string())?;
        // A reader may stop before the end (a CSV it cannot move past):
        // the digest is still of the whole file.
        std::io::copy(&mut reader, &mut std::io::sink()).map_err(cannot)?;
        Ok(StreamEnd {
            rejected,
            skipped,
            sha256: reader.into_inner().hex(),
        })
    })
}

/// A MISP event file or a STIX bundle, stored as it is read: the file is
/// read twice as a stream of JSON tokens ([`misp::read_event_stream`],
/// [`stix::read_bundle_stream`]), never as one JSON tree, so a million
/// attributes or indicators take the memory of the store's bookkeeping and
/// of what the document says about them, not gigabytes. A file the stream
/// leaves to the whole reader (no event found, a key given twice, STIX
/// JSON lines) is read whole.
///
/// [`misp::read_event_stream`]: orbwatch_intel::readers::misp::read_event_stream
/// [`stix::read_bundle_stream`]: orbwatch_intel::readers::stix::read_bundle_stream
fn store_document_streamed(
    store: &mut Store,
    feed: &FeedFile,
    rules: LoadRules,
    format: FeedFormat,
) -> Result<LoadedReport, LoadError> {
    let shown = feed.path.display().to_string();
    let (opts, path, label) = (feed.opts, feed.path, feed.label);
    store_streamed(store, feed, rules, format, move |emit| {
        let cannot = |e: std::io::Error| format!("cannot read feed file {shown}: {e}");
        let mut digest = Digesting::new(std::fs::File::open(path).map_err(cannot)?);
        std::io::copy(&mut digest, &mut std::io::sink()).map_err(cannot)?;
        let sha256 = digest.hex();
        let (mut rejected, mut skipped) = (Vec::new(), Vec::new());
        let found = read_document_stream(path, label, format, opts, &mut |p| {
            for ind in p.indicators.drain(..) {
                emit(ind);
            }
            rejected.append(&mut p.rejected);
            skipped.append(&mut p.skipped);
        })
        .map_err(|e| e.to_string())?;
        if !found {
            // Left to the whole reader, which answers (or explains what
            // the file is).
            let mut parsed = read_feed_path_as(path, label, Some(format), opts)
                .map_err(|e| e.to_string())?
                .parsed;
            for ind in parsed.indicators.drain(..) {
                emit(ind);
            }
            rejected.append(&mut parsed.rejected);
            skipped.append(&mut parsed.skipped);
        }
        Ok(StreamEnd {
            rejected,
            skipped,
            sha256,
        })
    })
}

/// Store a feed read as a stream: a thread runs `read`, which hands each
/// indicator to the function it is given, and the indicators go over in
/// batches of 4096 through a short queue to the store, which writes them
/// as they come ([`Store::import_indicators`]). Memory is that of the
/// queue and of the store's per-row bookkeeping, not of all the
/// indicators: a 10M-line list no longer becomes a 4.5 GB `ParsedFeed`
/// first. A read error fails the import, which then leaves the store as
/// it was.
fn store_streamed(
    store: &mut Store,
    feed: &FeedFile,
    rules: LoadRules,
    format: FeedFormat,
    read: impl FnOnce(&mut dyn FnMut(Indicator)) -> Result<StreamEnd, String> + Send,
) -> Result<LoadedReport, LoadError> {
    const BATCH: usize = 4096;
    let opts = feed.opts;
    let (tx, rx) = std::sync::mpsc::sync_channel::<ListMsg>(4);
    let end: std::sync::OnceLock<StreamEnd> = std::sync::OnceLock::new();
    let report = std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut batch = Vec::with_capacity(BATCH);
            let res = read(&mut |ind| {
                batch.push(ind);
                if batch.len() == BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    // A closed queue means the import stopped; it says why.
                    let _ = tx.send(ListMsg::Batch(full));
                }
            });
            let _ = tx.send(ListMsg::Batch(batch));
            let _ = tx.send(match res {
                Ok(end) => ListMsg::Done(end),
                Err(e) => ListMsg::Failed(e),
            });
        });
        // The indicators as they come; a queue that closes without `Done`
        // (the reading thread died) is an error, never a shorter feed.
        let mut finished = false;
        let source = rx
            .into_iter()
            .map(Some)
            .chain(std::iter::once(None))
            .flat_map(|m| -> Box<dyn Iterator<Item = Result<_, String>> + Send> {
                match m {
                    Some(ListMsg::Batch(v)) => Box::new(v.into_iter().map(Ok)),
                    Some(ListMsg::Failed(e)) => Box::new(std::iter::once(Err(e))),
                    Some(ListMsg::Done(e)) => {
                        finished = true;
                        let _ = end.set(e);
                        Box::new(std::iter::empty())
                    }
                    None if finished => Box::new(std::iter::empty()),
                    None => Box::new(std::iter::once(Err(
                        "reading the feed stopped without finishing (a bug: please report it)"
                            .to_string(),
                    ))),
                }
            });
        store.import_indicators(
            feed.name,
            format,
            feed.source,
            source,
            || match end.get() {
                Some(e) => orbwatch_store::import::ImportEnd {
                    rejected: e.rejected.as_slice().into(),
                    skipped: e.skipped.as_slice().into(),
                    source_sha256: Some(e.sha256.clone()),
                },
                None => orbwatch_store::import::ImportEnd {
                    rejected: Vec::new().into(),
                    skipped: Vec::new().into(),
                    source_sha256: None,
                },
            },
            &ImportOptions {
                source_sha256: None,
                options: orbwatch_store::read_options_json(opts),
                at: Some(opts.now),
                refuse_empty_version: rules.refuse_empty_version,
            },
        )
    })?;
    let StreamEnd {
        rejected,
        skipped,
        sha256,
    } = end.into_inner().unwrap_or(StreamEnd {
        rejected: Vec::new(),
        skipped: Vec::new(),
        sha256: String::new(),
    });
    Ok(LoadedReport {
        format,
        report,
        rejected,
        skipped,
        sha256,
        freetext_notice: None,
    })
}
