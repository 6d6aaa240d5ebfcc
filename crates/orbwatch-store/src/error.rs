//! Errors of the store. Each one names the store's path (or the feed) and
//! says what the user can do about it.

use std::path::PathBuf;

/// Anything that can go wrong while opening, migrating, reading or writing
/// the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be opened as a SQLite database.
    #[error(
        "cannot open the store at {path}: {source}; check that its folder exists and is writable, or choose another store with --db"
    )]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// The file exists but is not a SQLite database.
    #[error(
        "{path} is not an orbwatch store ({source}); pass --db with another path, or move the file away"
    )]
    NotAStore {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// The store was written by a newer orbwatch.
    #[error(
        "the store at {path} is newer than this orbwatch (schema {found} > {supported}); upgrade orbwatch, or use another store with --db"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    /// A store opened read-only is at an older schema than this build
    /// reads (a read-only connection cannot upgrade it).
    #[error(
        "the store at {path} is at schema {found}, older than this orbwatch reads ({supported}); open it once for writing (any orbwatch command that writes, or `orbwatch serve`) to upgrade it"
    )]
    NotUpgraded {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    /// A schema migration failed; the store is left at the previous schema.
    #[error(
        "cannot upgrade the store at {path} to schema {version}: {source}; the store was left unchanged — make sure it is writable and not used by another program, then retry"
    )]
    Migration {
        path: PathBuf,
        version: i64,
        #[source]
        source: rusqlite::Error,
    },
    /// A statement failed.
    #[error("store {path}: {action} failed: {source}")]
    Sql {
        path: PathBuf,
        action: String,
        #[source]
        source: rusqlite::Error,
    },
    /// No feed has that name.
    #[error("no feed named `{name}` in the store; `orbwatch feed list` shows the feeds it has")]
    UnknownFeed { name: String },
    /// No stored finding has that id.
    #[error(
        "no finding `{id}` in the store; `orbwatch findings --show-suppressed` lists the findings it has"
    )]
    UnknownFinding { id: String },
    /// A feed name that cannot be used.
    #[error("`{name}` cannot be used as a feed name: {reason}")]
    InvalidName { name: String, reason: String },
    /// The source of an import's indicators failed part way (a read
    /// error); nothing of the import was kept.
    #[error(
        "the import of feed `{name}` stopped: {reason}; the store was left as it was — fix the \
         source and import it again"
    )]
    ImportSource { name: String, reason: String },
    /// Another import of the same feed ran at the same time and cleared
    /// this one's rows, or committed first.
    #[error(
        "feed `{name}` was imported by another run while this import was writing; this import \
         was not kept and the store has the other one — run it again if it should win"
    )]
    ConcurrentImport { name: String },
    /// An import asked to refuse an empty version
    /// ([`ImportOptions::refuse_empty_version`](crate::ImportOptions))
    /// read no indicator while the feed has some: nothing was stored, the
    /// feed keeps its version.
    #[error(
        "the new version of feed `{name}` has no indicators ({rejected} entries rejected), while \
         the feed has {had}; it was not stored and the feed keeps its current version"
    )]
    EmptyVersionRefused {
        name: String,
        had: u64,
        rejected: u64,
    },
    /// A token name that cannot be used.
    #[error("`{name}` cannot be used as a token name: {reason}")]
    InvalidTokenName { name: String, reason: String },
    /// No API token has that name.
    #[error(
        "no API token named `{name}` in the store; `orbwatch token list` shows the tokens it has"
    )]
    UnknownToken { name: String },
    /// The operating system's random source failed.
    #[error(
        "cannot draw random bytes for a token: {reason}; check the system's entropy source (getrandom) and retry"
    )]
    Random { reason: String },
    /// A row that cannot be turned back into the model.
    #[error("store {path}: {detail}; remove and re-add the feed to repair it")]
    Corrupt { path: PathBuf, detail: String },
}

impl StoreError {
    /// Did this fail because another connection held the store's lock
    /// (SQLite `BUSY` or `LOCKED`) longer than the busy timeout? Such a
    /// call can be retried as it is.
    pub fn is_busy(&self) -> bool {
        let source = match self {
            StoreError::Open { source, .. }
            | StoreError::Migration { source, .. }
            | StoreError::Sql { source, .. } => source,
            _ => return false,
        };
        matches!(
            source,
            rusqlite::Error::SqliteFailure(e, _)
                if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }
}

/// Result alias of the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Attach the store's path and the action to a SQLite error.
pub(crate) trait SqlContext<T> {
    fn ctx(self, path: &std::path::Path, action: &str) -> Result<T>;
}

impl<T> SqlContext<T> for std::result::Result<T, rusqlite::Error> {
    fn ctx(self, path: &std::path::Path, action: &str) -> Result<T> {
        self.map_err(|source| StoreError::Sql {
            path: path.to_path_buf(),
            action: action.to_string(),
            source,
        })
    }
}
