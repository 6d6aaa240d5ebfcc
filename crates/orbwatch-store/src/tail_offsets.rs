//! Where `watch --tail` stopped in each followed file (schema 4,
//! `tail_offsets`), so that a restart — even after `kill -9` — resumes
//! exactly there: no line read twice, none skipped.
//!
//! A row is written only for positions whose findings are committed: the
//! engine saves offsets with [`save_tail_offsets`] in the same transaction
//! as the findings of the lines before them. That is why the save is a free
//! function over a [`rusqlite::Transaction`]; [`Store::save_tail_offsets`]
//! is the same for callers that have nothing else to commit.
//!
//! The row identifies the file, not only the path: device, inode and the
//! SHA-256 of its first `head_len` bytes (at most 1024). A path whose file
//! was replaced (rotation), or an inode reused by another file, is then
//! told apart from the file the position belongs to.

use jiff::Timestamp;
use rusqlite::params;
use serde::Serialize;

use crate::Store;
use crate::error::{Result, SqlContext};
use crate::rows::{parse_ts, ts_text};

/// Longest head hashed for a file's identity.
pub const HEAD_BYTES: u64 = 1024;

/// One followed file's committed position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TailOffset {
    /// The path the file was followed under (the key).
    pub path: String,
    pub device: u64,
    pub inode: u64,
    /// Byte offset after the last line whose findings are committed (of
    /// the decompressed stream, for a compressed file).
    pub position: u64,
    /// Lowercase hex SHA-256 of the first `head_len` bytes.
    pub head_hash: String,
    /// How many bytes `head_hash` covers: min(1024, length when saved).
    pub head_len: u64,
    /// Lines read up to `position` (the next line's number is `lines + 1`).
    pub lines: u64,
}

impl TailOffset {
    /// A Kafka partition's next offset kept under `key` (a worker's raw
    /// partition, the findings intake's): no file, so no device, inode or
    /// head. Kept in the same transaction as the findings it covers.
    pub fn kafka(key: String, next_offset: i64) -> Self {
        TailOffset {
            path: key,
            device: 0,
            inode: 0,
            position: u64::try_from(next_offset).unwrap_or(0),
            head_hash: String::new(),
            head_len: 0,
            lines: 0,
        }
    }
}

/// A stored offset and when it was saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredTailOffset {
    pub offset: TailOffset,
    pub updated: Timestamp,
}

/// SQLite keeps integers signed: values above `i64::MAX` (a device number
/// with the top bit set) are stored as their two's-complement bit pattern
/// and read back the same way, so no value is refused or changed.
fn to_sql(v: u64) -> i64 {
    v as i64
}

fn from_sql(v: i64) -> u64 {
    v as u64
}

/// Write `offsets` (insert or replace, by path) inside `tx`, stamped
/// `at`. The caller commits. Errors name the store file.
pub fn save_tail_offsets(
    tx: &rusqlite::Transaction<'_>,
    offsets: &[TailOffset],
    at: Timestamp,
) -> Result<()> {
    let path = std::path::PathBuf::from(tx.path().unwrap_or("(in-memory store)"));
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO tail_offsets (path, device, inode, position, head_hash, head_len, lines, \
             updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
             ON CONFLICT(path) DO UPDATE SET device = ?2, inode = ?3, position = ?4, \
             head_hash = ?5, head_len = ?6, lines = ?7, updated = ?8",
        )
        .ctx(&path, "saving tail offsets")?;
    let updated = ts_text(at);
    for o in offsets {
        stmt.execute(params![
            o.path,
            to_sql(o.device),
            to_sql(o.inode),
            to_sql(o.position),
            o.head_hash,
            to_sql(o.head_len),
            to_sql(o.lines),
            updated,
        ])
        .ctx(&path, &format!("saving the tail offset of {}", o.path))?;
    }
    Ok(())
}

impl Store {
    /// Save `offsets` in a transaction of their own (see
    /// [`save_tail_offsets`] to commit them with findings).
    pub fn save_tail_offsets(&mut self, offsets: &[TailOffset]) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .ctx(&self.path, "saving tail offsets")?;
        save_tail_offsets(&tx, offsets, Timestamp::now())?;
        tx.commit().ctx(&self.path, "saving tail offsets")
    }

    /// Every stored offset, by path.
    pub fn tail_offsets(&self) -> Result<Vec<StoredTailOffset>> {
        let p = &self.path;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT path, device, inode, position, head_hash, head_len, lines, updated \
                 FROM tail_offsets ORDER BY path",
            )
            .ctx(p, "reading tail offsets")?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    TailOffset {
                        path: r.get(0)?,
                        device: from_sql(r.get(1)?),
                        inode: from_sql(r.get(2)?),
                        position: from_sql(r.get(3)?),
                        head_hash: r.get(4)?,
                        head_len: from_sql(r.get(5)?),
                        lines: from_sql(r.get(6)?),
                    },
                    r.get::<_, String>(7)?,
                ))
            })
            .ctx(p, "reading tail offsets")?
            .collect::<rusqlite::Result<Vec<_>>>()
            .ctx(p, "reading tail offsets")?;
        rows.into_iter()
            .map(|(offset, updated)| {
                let updated = parse_ts(&updated).map_err(|e| {
                    self.corrupt(format!("tail offset of {}: bad time ({e})", offset.path))
                })?;
                Ok(StoredTailOffset { offset, updated })
            })
            .collect()
    }

    /// The stored offsets without their save times, as `orbwatch-tail`
    /// takes them.
    pub fn load_tail_offsets(&self) -> Result<Vec<TailOffset>> {
        Ok(self.tail_offsets()?.into_iter().map(|s| s.offset).collect())
    }

    /// Forget the offset of `path` (the file is no longer followed).
    /// Returns whether there was one.
    pub fn remove_tail_offset(&mut self, path: &str) -> Result<bool> {
        let n = self
            .conn
            .execute("DELETE FROM tail_offsets WHERE path = ?1", [path])
            .ctx(&self.path, "removing a tail offset")?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn off(path: &str, position: u64) -> TailOffset {
        TailOffset {
            path: path.into(),
            device: u64::MAX - 3,
            inode: 1234,
            position,
            head_hash: "ab".repeat(32),
            head_len: 1024,
            lines: position / 10,
        }
    }

    #[test]
    fn offsets_round_trip_replace_by_path_and_commit_with_other_writes() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path().join("s.db")).unwrap();
        assert!(store.load_tail_offsets().unwrap().is_empty());
        store
            .save_tail_offsets(&[off("/var/log/auth.log", 100), off("/var/log/b", 7)])
            .unwrap();
        store
            .save_tail_offsets(&[off("/var/log/auth.log", 250)])
            .unwrap();
        let got = store.load_tail_offsets().unwrap();
        assert_eq!(
            got,
            vec![off("/var/log/auth.log", 250), off("/var/log/b", 7)]
        );
        // Large u64 values (device numbers) survive the signed column.
        assert_eq!(got[0].device, u64::MAX - 3);

        // In a caller's transaction: rolled back with it, kept with it.
        {
            let tx = store.conn.transaction().unwrap();
            save_tail_offsets(&tx, &[off("/var/log/auth.log", 999)], Timestamp::now()).unwrap();
            tx.rollback().unwrap();
        }
        assert_eq!(store.load_tail_offsets().unwrap()[0].position, 250);
        {
            let tx = store.conn.transaction().unwrap();
            save_tail_offsets(&tx, &[off("/var/log/c", 5)], Timestamp::now()).unwrap();
            tx.commit().unwrap();
        }
        assert_eq!(store.load_tail_offsets().unwrap().len(), 3);
        assert!(store.remove_tail_offset("/var/log/c").unwrap());
        assert!(!store.remove_tail_offset("/var/log/c").unwrap());
        assert_eq!(store.load_tail_offsets().unwrap().len(), 2);
    }
}
