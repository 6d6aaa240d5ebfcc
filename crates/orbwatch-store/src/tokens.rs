//! API tokens of `orbwatch serve`.
//!
//! A token is 256 random bits, shown to the user once as text
//! (`ow_` + 64 hex digits). The store keeps only its SHA-256: a plain hash
//! is enough because the secret has full entropy (nothing to guess or
//! brute-force, unlike a password), and it lets a request be checked with
//! one indexed lookup. Revoking sets `revoked`; a revoked token's row stays
//! so that `token list` shows who had access and until when.

use std::fmt;

use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use sha2::Digest;

use crate::Store;
use crate::error::{Result, SqlContext, StoreError};
use crate::rows::{parse_opt_ts, parse_ts, ts_text};

/// What a token may do. Each scope includes the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenScope {
    /// Read findings, hunts, feeds, blocklists, EDLs and metrics.
    Read,
    /// Read, and record triage decisions.
    Triage,
    /// Everything, including changes to feeds.
    Admin,
}

impl TokenScope {
    /// All scopes, weakest first.
    pub const ALL: [TokenScope; 3] = [Self::Read, Self::Triage, Self::Admin];

    /// The scope's name on the command line and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Triage => "triage",
            Self::Admin => "admin",
        }
    }

    /// Parse a scope name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// Does a token of this scope allow what `needed` asks for?
    pub fn allows(self, needed: TokenScope) -> bool {
        self >= needed
    }
}

impl fmt::Display for TokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token as `token list` shows it (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    pub scope: TokenScope,
    pub created: Timestamp,
    pub revoked: Option<Timestamp>,
}

/// The prefix of every token's text, so that a leaked one is easy to
/// recognise in logs and by secret scanners.
pub const TOKEN_PREFIX: &str = "ow_";

/// Hex SHA-256 of a token's text, as stored.
pub fn token_hash(token: &str) -> String {
    let digest = sha2::Sha256::digest(token.as_bytes());
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// A new token's text: [`TOKEN_PREFIX`] and 32 bytes from the operating
/// system's random source, in hex.
pub fn generate_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Random {
        reason: e.to_string(),
    })?;
    let mut s = String::from(TOKEN_PREFIX);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    Ok(s)
}

/// A token name: 1 to 64 printable characters without spaces at the ends.
fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.trim() == name
        && !name.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidTokenName {
            name: name.to_string(),
            reason:
                "a token name has 1 to 64 printable characters, without leading or trailing spaces"
                    .into(),
        })
    }
}

impl Store {
    /// Create a token; returns its row and its text. The text is not kept
    /// and cannot be shown again.
    pub fn create_token(&mut self, name: &str, scope: TokenScope) -> Result<(TokenInfo, String)> {
        check_name(name)?;
        let p = &self.path;
        let a = "creating an API token";
        let taken: Option<i64> = self
            .conn
            .query_row("SELECT id FROM api_tokens WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .ctx(p, a)?;
        if taken.is_some() {
            return Err(StoreError::InvalidTokenName {
                name: name.to_string(),
                reason: "a token of that name exists already (`orbwatch token list`); choose another name or revoke it first".into(),
            });
        }
        let token = generate_token()?;
        let created = Timestamp::now();
        self.conn
            .execute(
                "INSERT INTO api_tokens (name, sha256, scope, created) VALUES (?1, ?2, ?3, ?4)",
                params![name, token_hash(&token), scope.as_str(), ts_text(created)],
            )
            .ctx(p, a)?;
        Ok((
            TokenInfo {
                id: self.conn.last_insert_rowid(),
                name: name.to_string(),
                scope,
                created,
                revoked: None,
            },
            token,
        ))
    }

    /// Every token, oldest first, revoked ones included.
    pub fn tokens(&self) -> Result<Vec<TokenInfo>> {
        let p = &self.path;
        let a = "listing API tokens";
        let mut stmt = self
            .conn
            .prepare("SELECT id, name, scope, created, revoked FROM api_tokens ORDER BY id")
            .ctx(p, a)?;
        let mut q = stmt.query([]).ctx(p, a)?;
        let mut out = Vec::new();
        while let Some(r) = q.next().ctx(p, a)? {
            out.push(self.token_row(r)?);
        }
        Ok(out)
    }

    fn token_row(&self, r: &rusqlite::Row<'_>) -> Result<TokenInfo> {
        let p = &self.path;
        let a = "reading an API token";
        let id: i64 = r.get(0).ctx(p, a)?;
        let bad = |e: String| self.corrupt(format!("API token {id}: {e}"));
        let scope: String = r.get(2).ctx(p, a)?;
        let created: String = r.get(3).ctx(p, a)?;
        Ok(TokenInfo {
            id,
            name: r.get(1).ctx(p, a)?,
            scope: TokenScope::parse(&scope)
                .ok_or_else(|| bad(format!("unknown scope `{scope}`")))?,
            created: parse_ts(&created).map_err(bad)?,
            revoked: parse_opt_ts(r.get(4).ctx(p, a)?).map_err(bad)?,
        })
    }

    /// Revoke the token of that name. `Ok(false)` when it was revoked
    /// already; an unknown name is an error.
    pub fn revoke_token(&mut self, name: &str) -> Result<bool> {
        let p = &self.path;
        let a = "revoking an API token";
        let row: Option<Option<String>> = self
            .conn
            .query_row(
                "SELECT revoked FROM api_tokens WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()
            .ctx(p, a)?;
        match row {
            None => Err(StoreError::UnknownToken {
                name: name.to_string(),
            }),
            Some(Some(_)) => Ok(false),
            Some(None) => {
                self.conn
                    .execute(
                        "UPDATE api_tokens SET revoked = ?1 WHERE name = ?2 AND revoked IS NULL",
                        params![ts_text(Timestamp::now()), name],
                    )
                    .ctx(p, a)?;
                Ok(true)
            }
        }
    }

    /// The live (not revoked) token whose text is `token`, if any. Read on
    /// every request, so a revocation takes effect at once.
    pub fn check_token(&self, token: &str) -> Result<Option<TokenInfo>> {
        let p = &self.path;
        let a = "checking an API token";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, name, scope, created, revoked FROM api_tokens \
                 WHERE sha256 = ?1 AND revoked IS NULL",
            )
            .ctx(p, a)?;
        let mut q = stmt.query([token_hash(token)]).ctx(p, a)?;
        match q.next().ctx(p, a)? {
            Some(r) => Ok(Some(self.token_row(r)?)),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_check_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path().join("t.db")).unwrap();
        let (info, tok) = s.create_token("ci", TokenScope::Triage).unwrap();
        assert_eq!(tok.len(), 3 + 64);
        assert!(tok.starts_with(TOKEN_PREFIX));
        assert_eq!(s.check_token(&tok).unwrap().unwrap().id, info.id);
        assert!(s.check_token("ow_nope").unwrap().is_none());
        // Only the hash is stored.
        let stored: String = s
            .conn
            .query_row("SELECT sha256 FROM api_tokens", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, token_hash(&tok));
        assert!(!stored.contains(&tok[3..]));
        assert!(s.create_token("ci", TokenScope::Read).is_err());
        assert!(s.create_token(" x", TokenScope::Read).is_err());
        assert!(s.revoke_token("ci").unwrap());
        assert!(!s.revoke_token("ci").unwrap());
        assert!(s.revoke_token("other").is_err());
        assert!(s.check_token(&tok).unwrap().is_none());
        let list = s.tokens().unwrap();
        assert_eq!(list.len(), 1);
        assert!(list[0].revoked.is_some());
        let (_, t2) = s.create_token("ci2", TokenScope::Read).unwrap();
        assert_ne!(t2, tok);
    }

    #[test]
    fn scopes_are_ordered() {
        assert!(TokenScope::Admin.allows(TokenScope::Triage));
        assert!(TokenScope::Triage.allows(TokenScope::Read));
        assert!(!TokenScope::Read.allows(TokenScope::Triage));
        assert_eq!(TokenScope::parse("ADMIN"), Some(TokenScope::Admin));
        assert_eq!(TokenScope::parse("root"), None);
    }
}
