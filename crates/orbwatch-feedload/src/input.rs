//! Reading a feed from a path: a file in any format, or a MISP feed folder
//! (`manifest.json` plus one JSON file per event). Shared by `feed add`,
//! `hunt --feed` and the API's feed upload.

use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::Path;

use orbwatch_intel::{FeedFormat, ParsedFeed, ReadOptions};
use sha2::{Digest, Sha256};

use crate::LoadError;

/// A feed read from disk, with a digest of what was read (for the store's
/// record of which source a version came from).
pub struct LoadedFeed {
    pub parsed: ParsedFeed,
    /// SHA-256 of the file; for a MISP folder, of the sorted per-file digests.
    pub sha256: String,
    /// Set when no format was named and the file was read as free text:
    /// free text takes every value it finds in prose, so the caller must
    /// tell the user (see [`freetext_notice`]).
    pub freetext_notice: Option<String>,
}

/// Read the feed at `path` whole. `format` overrides detection. Entries
/// are named by the file's name.
pub fn read_feed_path(
    path: &Path,
    format: Option<FeedFormat>,
    opts: &ReadOptions,
) -> Result<LoadedFeed, LoadError> {
    let label = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    read_feed_path_as(path, &label, format, opts)
}

/// [`read_feed_path`], with the entries (rejects, provenance) named
/// `label`: an upload is read from a spool file whose name means nothing
/// to the user.
pub fn read_feed_path_as(
    path: &Path,
    label: &str,
    format: Option<FeedFormat>,
    opts: &ReadOptions,
) -> Result<LoadedFeed, LoadError> {
    if path.is_dir() {
        if !path.join("manifest.json").is_file() {
            return Err(LoadError::FolderWithoutManifest {
                path: path.to_path_buf(),
            });
        }
        return read_misp_dir(path, opts);
    }
    let file = File::open(path).map_err(|e| LoadError::io(path, e))?;
    // Streamed: memory is that of the indicators kept, not of the file
    // (JSON documents excepted, which are bounded by `max_document_bytes`).
    let mut reader = BufReader::with_capacity(256 * 1024, Digesting::new(file));
    let parsed = orbwatch_intel::read_feed_from(&mut reader, label, format, opts)?;
    // A reader may stop before the end (a CSV it cannot move past): the
    // digest is still of the whole file.
    std::io::copy(&mut reader, &mut std::io::sink()).map_err(|e| LoadError::io(path, e))?;
    let sha256 = reader.into_inner().hex();
    let freetext_notice = (format.is_none() && parsed.format == Some(FeedFormat::Freetext))
        .then(|| freetext_notice(path, &parsed));
    Ok(LoadedFeed {
        parsed,
        sha256,
        freetext_notice,
    })
}

/// A reader that hashes what passes through it, so the file is read once.
pub struct Digesting<R> {
    inner: R,
    hasher: Sha256,
}

impl<R> Digesting<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// The SHA-256 of what was read, hex.
    pub fn hex(self) -> String {
        self.hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl<R: Read> Read for Digesting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
}

/// What to tell the user when a file was read as free text because no
/// structured format matched: that it happened, what came out, and how to
/// choose otherwise. Free text takes every value it finds in prose, so it
/// must never be a silent guess.
pub fn freetext_notice(path: &Path, parsed: &ParsedFeed) -> String {
    let kinds: Vec<String> = parsed
        .counts()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{n} {}", k.as_str()))
        .collect();
    format!(
        "{} matched no structured feed format, so it was read as free text (prose): \
         {} value{} extracted ({}), {} rejected. Check them (`orbwatch feed show NAME`), \
         or name the format with --format (`hunt`: --feed-format)",
        path.display(),
        parsed.indicators.len(),
        if parsed.indicators.len() == 1 {
            ""
        } else {
            "s"
        },
        if kinds.is_empty() {
            "none".to_string()
        } else {
            kinds.join(", ")
        },
        parsed.rejected.len()
    )
}

/// Read a MISP feed directory: manifest.json plus one file per event.
fn read_misp_dir(dir: &Path, opts: &ReadOptions) -> Result<LoadedFeed, LoadError> {
    let manifest_path = dir.join("manifest.json");
    let manifest = fs::read(&manifest_path).map_err(|e| LoadError::io(&manifest_path, e))?;
    let mut digests = vec![format!(
        "manifest.json:{}",
        orbwatch_store::sha256_hex(&manifest)
    )];
    let mut parsed = ParsedFeed {
        format: Some(FeedFormat::MispFeed),
        ..Default::default()
    };
    orbwatch_intel::readers::misp::read_feed_dir(
        &manifest,
        "manifest.json",
        &mut |uuid| {
            if uuid.contains(['/', '\\']) || uuid.starts_with('.') {
                return Err(format!("`{uuid}` is not an event uuid"));
            }
            let bytes = fs::read(dir.join(format!("{uuid}.json"))).map_err(|e| e.to_string())?;
            digests.push(format!(
                "{uuid}.json:{}",
                orbwatch_store::sha256_hex(&bytes)
            ));
            Ok(bytes)
        },
        opts,
        &mut parsed,
    )
    .map_err(|cause| LoadError::MispFolder {
        dir: dir.to_path_buf(),
        cause,
    })?;
    orbwatch_intel::finalize(&mut parsed, opts);
    digests.sort();
    let sha256 = orbwatch_store::sha256_hex(digests.join("\n").as_bytes());
    Ok(LoadedFeed {
        parsed,
        sha256,
        freetext_notice: None,
    })
}

/// A plain list opened for streaming: the head read for detection, then
/// the rest of the file (no seek, so a FIFO or `/dev/stdin` works too).
pub type PlainList = std::io::Chain<std::io::Cursor<Vec<u8>>, File>;

/// `Some` with the format when `path` is a feed read line by line as a
/// stream: a plain list ([`plain::read_stream`]) or any other line format
/// (CSV, TSV, CERT-FR CSV, Zeek intel, Suricata iprep and datasets, STIX
/// CSV, and free text when named: [`read_lines_stream`]), by `format` or
/// detected on its first 64 KiB (as [`read_feed_path`] detects), ready to
/// be read from its start.
///
/// [`plain::read_stream`]: orbwatch_intel::readers::plain::read_stream
/// [`read_lines_stream`]: orbwatch_intel::readers::read_lines_stream
pub fn line_stream(
    path: &Path,
    format: Option<FeedFormat>,
) -> Result<Option<(FeedFormat, PlainList)>, LoadError> {
    if path.is_dir() {
        return Ok(None);
    }
    let mut file = File::open(path).map_err(|e| LoadError::io(path, e))?;
    let mut head = vec![0u8; orbwatch_intel::readers::HEAD_BYTES];
    let n = read_up_to(&mut file, &mut head).map_err(|e| LoadError::io(path, e))?;
    head.truncate(n);
    let found = match format {
        Some(f) => Some(f),
        None => orbwatch_intel::detect(&head),
    }
    .filter(|f| *f == FeedFormat::Plain || orbwatch_intel::readers::streams_lines(*f));
    Ok(found.map(|f| (f, std::io::Cursor::new(head).chain(file))))
}

/// `Some(Misp)` or `Some(Stix)` when `path` is a MISP event file or a
/// STIX document (by `format`, or detected on its first 64 KiB): such a
/// file is read as a stream by `feed add` and `hunt --feed`
/// ([`read_document_stream`]).
pub fn streamed_document(
    path: &Path,
    format: Option<FeedFormat>,
) -> Result<Option<FeedFormat>, LoadError> {
    let detected = match format {
        Some(f) => Some(f),
        None => {
            let mut file = File::open(path).map_err(|e| LoadError::io(path, e))?;
            let mut head = vec![0u8; orbwatch_intel::readers::HEAD_BYTES];
            let n = read_up_to(&mut file, &mut head).map_err(|e| LoadError::io(path, e))?;
            head.truncate(n);
            orbwatch_intel::detect(&head)
        }
    };
    Ok(detected.filter(|f| matches!(f, FeedFormat::Misp | FeedFormat::Stix)))
}

/// Read the MISP event file or STIX bundle at `path` as a stream, opening
/// it once for each of the reader's two passes; `sink` gets what each
/// attribute or object gave. `Ok(false)`: nothing was handed on, and the
/// file is to be read whole ([`read_feed_path`]).
pub fn read_document_stream(
    path: &Path,
    label: &str,
    format: FeedFormat,
    opts: &ReadOptions,
    sink: &mut dyn FnMut(&mut ParsedFeed),
) -> Result<bool, orbwatch_intel::FeedError> {
    let mut open = || File::open(path);
    match format {
        FeedFormat::Stix => {
            orbwatch_intel::readers::stix::read_bundle_stream(&mut open, label, opts, sink)
        }
        _ => orbwatch_intel::readers::misp::read_event_stream(&mut open, label, opts, sink),
    }
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
