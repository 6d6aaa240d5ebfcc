//! What a subscription keeps: how to fetch (the spec, set by `feed
//! subscribe`) and what the last fetch left (the state). Both are JSON in
//! the store's `subscriptions` table.

use std::path::PathBuf;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::auth::HeaderSpec;

/// How to fetch a subscribed feed. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionSpec {
    /// The feed's format (as `feed add --format`); detected when absent.
    /// Ignored for TAXII (STIX) and MISP sources.
    #[serde(default)]
    pub format: Option<String>,
    /// How often `feed update --due` (and `feed schedule`) fetches it.
    pub every: String,
    #[serde(default)]
    pub headers: Vec<HeaderSpec>,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    pub max_bytes: u64,
    pub timeout_secs: u64,
    pub retries: u32,
    pub retry_wait_ms: u64,
    /// Widening of first/last-seen dates (as `feed add --grace`).
    pub grace: String,
    #[serde(default)]
    pub confidence: Option<u8>,
    /// TAXII: objects per page asked for.
    #[serde(default)]
    pub page_limit: Option<u32>,
    /// MISP REST: how far back the first fetch goes (`last`, e.g. 30d).
    #[serde(default)]
    pub misp_last: Option<String>,
}

impl Default for SubscriptionSpec {
    fn default() -> Self {
        SubscriptionSpec {
            format: None,
            every: "6h".into(),
            headers: Vec::new(),
            ca_file: None,
            max_bytes: 256 * 1024 * 1024,
            timeout_secs: 30,
            retries: 3,
            retry_wait_ms: 2000,
            grace: "7d".into(),
            confidence: None,
            page_limit: None,
            misp_last: None,
        }
    }
}

/// What the fetches so far have left.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionState {
    #[serde(default)]
    pub etag: Option<String>,
    #[serde(default)]
    pub last_modified: Option<String>,
    /// TAXII: the `added_after` of the next fetch (the last
    /// `X-TAXII-Date-Added-Last` seen).
    #[serde(default)]
    pub taxii_added_after: Option<String>,
    /// MISP REST: the newest event timestamp seen (Unix seconds).
    #[serde(default)]
    pub misp_timestamp: Option<i64>,
    #[serde(default)]
    pub last_attempt: Option<Timestamp>,
    #[serde(default)]
    pub last_success: Option<Timestamp>,
    /// The error of the last attempt, when it failed.
    #[serde(default)]
    pub last_error: Option<String>,
    /// Fetches answered "nothing new" (304, or no new TAXII objects).
    #[serde(default)]
    pub unchanged: u64,
    /// Fetches that made a new version.
    #[serde(default)]
    pub updates: u64,
    /// Fetches that failed.
    #[serde(default)]
    pub failures: u64,
}
