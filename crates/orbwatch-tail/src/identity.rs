//! Which file a position belongs to: device, inode and a hash of the
//! file's first bytes.
//!
//! Why the head hash as well as the inode: file systems hand a freed inode
//! to the next file created, so after a rotation and a deletion a new log
//! can sit at the same path with the same inode as the one whose offset
//! was stored; resuming at that offset would skip its first lines or cut
//! one in half. Why only the inode as well as the hash: two logs may start
//! with the same bytes (a banner line). A compressed rotated file has
//! neither the inode nor the bytes of the file it came from, but its
//! decompressed content starts with the same bytes, so it is recognised by
//! the hash alone.

use std::io::Read;
use std::path::Path;

use orbwatch_live::Checkpoint;
use orbwatch_store::TailOffset;
use sha2::{Digest, Sha256};

/// Longest head hashed.
pub(crate) const HEAD_BYTES: usize = 1024;

/// Lowercase hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest {
        use std::fmt::Write;
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A file's identity as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileId {
    pub device: u64,
    pub inode: u64,
    /// Hex SHA-256 of the first `head_len` bytes.
    pub head_hash: String,
    pub head_len: u64,
}

impl FileId {
    /// The checkpoint identity of a line: `device:inode:hash:head_len:lines`.
    ///
    /// Why the line count is in it: a [`Checkpoint`] has no field for it,
    /// and the engine hands back only checkpoints; the line count is
    /// needed to number lines after a restart without reading the file
    /// from its start.
    pub fn checkpoint_identity(&self, lines: u64) -> String {
        format!(
            "{}:{}:{}:{}:{lines}",
            self.device, self.inode, self.head_hash, self.head_len
        )
    }

    pub fn of_offset(o: &TailOffset) -> Self {
        Self {
            device: o.device,
            inode: o.inode,
            head_hash: o.head_hash.clone(),
            head_len: o.head_len,
        }
    }
}

/// Does `head` (a file's first bytes, decompressed) start with the bytes
/// whose hash `id` holds? An empty recorded head matches nothing: it says
/// nothing about the content.
pub(crate) fn head_matches(id: &FileId, head: &[u8]) -> bool {
    let n = id.head_len as usize;
    n > 0 && head.len() >= n && sha256_hex(&head[..n]) == id.head_hash
}

/// Is `head` (a whole file's first bytes, up to [`HEAD_BYTES`]) the
/// content `id` names, with no inode in common (a compressed or copied
/// file)? The recorded head must be as long as the candidate's, or full:
/// a short recorded head only says how a file began (many logs begin with
/// the same header: Zeek's first 68 bytes are the same in every log), not
/// which file it was.
pub(crate) fn content_matches(id: &FileId, head: &[u8]) -> bool {
    let n = id.head_len as usize;
    (n == HEAD_BYTES || n == head.len()) && head_matches(id, head)
}

/// The first [`HEAD_BYTES`] bytes of a reader (fewer at its end).
pub(crate) fn read_head(r: &mut dyn Read) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(HEAD_BYTES);
    r.take(HEAD_BYTES as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// The first bytes of `path`, decompressed if it is compressed.
pub(crate) fn decompressed_head(path: &Path) -> std::io::Result<Vec<u8>> {
    let (_, mut r) = orbwatch_source::decompressed(std::fs::File::open(path)?)?;
    read_head(&mut r)
}

/// Turn checkpoints the engine has committed into the offsets to store:
/// the last checkpoint of each followed path wins (the engine commits in
/// order). Checkpoints that are not the tail's (their identity does not
/// parse) are left out.
///
/// This is a free function, not a method of the running tail, so that the
/// engine can call it from its commit thread without a handle, and so
/// that a checkpoint carries all a row needs.
pub fn offsets_from_checkpoints(checkpoints: &[Checkpoint]) -> Vec<TailOffset> {
    let mut out: Vec<TailOffset> = Vec::new();
    for cp in checkpoints {
        let Some(offset) = parse_checkpoint(cp) else {
            tracing::debug!(source = %cp.source, "checkpoint is not a followed file's; not saved");
            continue;
        };
        match out.iter_mut().find(|o| o.path == offset.path) {
            Some(slot) => *slot = offset,
            None => out.push(offset),
        }
    }
    out
}

fn parse_checkpoint(cp: &Checkpoint) -> Option<TailOffset> {
    let mut it = cp.identity.split(':');
    let device = it.next()?.parse().ok()?;
    let inode = it.next()?.parse().ok()?;
    let head_hash = it.next()?;
    if head_hash.len() != 64 || !head_hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let head_len = it.next()?.parse().ok()?;
    let lines = it.next()?.parse().ok()?;
    if it.next().is_some() || head_len > HEAD_BYTES as u64 {
        return None;
    }
    Some(TailOffset {
        path: cp.source.to_string(),
        device,
        inode,
        position: cp.position,
        head_hash: head_hash.to_string(),
        head_len,
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn checkpoints_become_the_last_offset_of_each_path() {
        let id = FileId {
            device: 2049,
            inode: 77,
            head_hash: sha256_hex(b"abc"),
            head_len: 3,
        };
        let cp = |path: &str, pos: u64, lines: u64| Checkpoint {
            source: Arc::from(path),
            position: pos,
            identity: Arc::from(id.checkpoint_identity(lines)),
        };
        let other = Checkpoint {
            source: Arc::from("kafka:topic/0"),
            position: 5,
            identity: Arc::from("partition 0"),
        };
        let got =
            offsets_from_checkpoints(&[cp("/a", 10, 1), other, cp("/b", 4, 1), cp("/a", 30, 3)]);
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].path.as_str(), got[0].position, got[0].lines),
            ("/a", 30, 3)
        );
        assert_eq!(
            (got[0].device, got[0].inode, got[0].head_len),
            (2049, 77, 3)
        );
        assert_eq!(got[1].path, "/b");
        assert!(head_matches(&FileId::of_offset(&got[0]), b"abcdef"));
        assert!(!head_matches(&FileId::of_offset(&got[0]), b"abXdef"));
        assert!(!head_matches(&FileId::of_offset(&got[0]), b"ab"));
    }
}
