//! Reading a feed from a path: a file in any format, or a MISP feed folder
//! (`manifest.json` plus one JSON file per event). Shared by `feed add` and
//! `hunt --feed`.

use std::fs::{self, File};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, Result, bail};
use orbwatch_intel::{FeedFormat, ParsedFeed, ReadOptions};

/// Read the feed at `path`. `format` overrides detection.
pub fn read_feed_path(
    path: &Path,
    format: Option<FeedFormat>,
    opts: &ReadOptions,
) -> Result<ParsedFeed> {
    if path.is_dir() {
        let manifest_path = path.join("manifest.json");
        if !manifest_path.is_file() {
            bail!(
                "{} is a folder without manifest.json; give a feed file, or a MISP feed folder",
                path.display()
            );
        }
        let manifest = fs::read(&manifest_path)
            .with_context(|| format!("cannot read {}", manifest_path.display()))?;
        let mut parsed = ParsedFeed {
            format: Some(FeedFormat::MispFeed),
            ..Default::default()
        };
        let mut load =
            |uuid: &str| fs::read(path.join(format!("{uuid}.json"))).map_err(|e| e.to_string());
        orbwatch_intel::readers::misp::read_feed_dir(
            &manifest,
            "manifest.json",
            &mut load,
            opts,
            &mut parsed,
        )
        .with_context(|| format!("cannot read the MISP feed in {}", path.display()))?;
        orbwatch_intel::finalize(&mut parsed, opts);
        return Ok(parsed);
    }
    let bytes = fs::read(path).with_context(|| format!("cannot read feed {}", path.display()))?;
    let label = path.display().to_string();
    Ok(orbwatch_intel::read_feed(&bytes, &label, format, opts)?)
}

/// When `path` is a plain list (by `format`, or detected from its first
/// 64 KiB), a buffered reader over it for streaming; otherwise `None`.
pub fn plain_stream(path: &Path, format: Option<FeedFormat>) -> Result<Option<BufReader<File>>> {
    if path.is_dir() {
        return Ok(None);
    }
    let mut file =
        File::open(path).with_context(|| format!("cannot read feed {}", path.display()))?;
    let is_plain = match format {
        Some(f) => f == FeedFormat::Plain,
        None => {
            let mut head = vec![0u8; 64 * 1024];
            let n = read_up_to(&mut file, &mut head)
                .with_context(|| format!("cannot read feed {}", path.display()))?;
            head.truncate(n);
            file.seek(SeekFrom::Start(0))?;
            orbwatch_intel::detect(&head) == Some(FeedFormat::Plain)
        }
    };
    Ok(is_plain.then(|| BufReader::with_capacity(256 * 1024, file)))
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
