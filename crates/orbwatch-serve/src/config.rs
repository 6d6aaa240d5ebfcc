//! The configuration file of `orbwatch serve` (TOML, see
//! `examples/serve.toml`): limits and the named EDLs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

use crate::error::ServeError;

/// The whole file. Every key is optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Address to listen on (`--listen` overrides it).
    pub listen: Option<String>,
    /// The store (`--db` overrides it).
    pub db: Option<PathBuf>,
    /// Largest request body in bytes (413 beyond).
    pub body_limit: usize,
    /// Largest feed file uploaded to `POST /api/v1/feeds/{name}`, in bytes
    /// (413 beyond, counted as the body arrives). The body is written to a
    /// temporary file in `upload_spool_dir` as it arrives and stored from
    /// there as `orbwatch feed add` stores a file, so memory does not grow
    /// with it: the limit guards the disk, not the memory.
    pub upload_limit: usize,
    /// Where uploads are written while they arrive (default: the store's
    /// folder, which has room for what the feed becomes). Each is removed
    /// once stored, refused or abandoned by its client; those a crash
    /// left, when the next server starts ([`crate::remove_stale_spool_files`]).
    pub upload_spool_dir: Option<PathBuf>,
    /// Longest a request may take, in seconds (408 beyond).
    pub request_timeout_secs: u64,
    /// Longest a feed upload may take, sending and storing, in seconds (408
    /// beyond): a 1 GiB file takes minutes, which `request_timeout_secs`
    /// would cut.
    pub upload_timeout_secs: u64,
    /// Named lists served at `/edl/NAME.txt`.
    pub edl: BTreeMap<String, EdlList>,
    /// `[findings_topic]`: keep the findings `orbwatch worker`s write to a
    /// Kafka topic in the store (`--findings-topic`, `--brokers` and `-X`
    /// override it).
    pub findings_topic: Option<FindingsTopic>,
}

/// Where `serve` reads workers' findings from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindingsTopic {
    pub topic: String,
    /// Bootstrap brokers, `HOST:PORT,...`.
    pub brokers: String,
    /// librdkafka properties (`"security.protocol" = "ssl"`, ...).
    #[serde(default)]
    pub kafka: BTreeMap<String, String>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: None,
            db: None,
            body_limit: 64 * 1024,
            upload_limit: 1 << 30,
            upload_spool_dir: None,
            request_timeout_secs: 30,
            upload_timeout_secs: 3600,
            edl: BTreeMap::new(),
            findings_topic: None,
        }
    }
}

/// One named EDL: the same selection and guard as `export blocklist`, in
/// the `plain` format (one address, CIDR or range per line).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdlList {
    /// Only these feeds (empty: all feeds of the store).
    pub feeds: Vec<String>,
    /// Minimum confidence 0-100.
    pub min_confidence: u8,
    /// Only indicators sighted in the stored findings.
    pub sighted: bool,
    /// Add the sources of behaviour findings scored at least `min_score`.
    pub from_findings: bool,
    pub min_score: u8,
    /// How long finding sources stay listed after their last sighting, in
    /// hours.
    pub ttl_hours: i64,
    /// Internal networks never listed.
    pub internal: Vec<IpNet>,
    /// Allowlist files (as `export blocklist --allowlist`).
    pub allowlist: Vec<PathBuf>,
    /// Use the shipped allowlist of public resolvers and root servers.
    pub default_allowlist: bool,
    /// Widest IPv4 / IPv6 prefix allowed.
    pub max_prefix: u8,
    pub max_prefix6: u8,
    /// Most entries the firewall takes (Palo Alto: per list, by model).
    /// A longer list is refused with 503 rather than cut, so that the
    /// firewall keeps its last good copy and the operator sees the error.
    pub max_entries: Option<usize>,
}

impl Default for EdlList {
    fn default() -> Self {
        EdlList {
            feeds: Vec::new(),
            min_confidence: 0,
            sighted: false,
            from_findings: false,
            min_score: 50,
            ttl_hours: 7 * 24,
            internal: Vec::new(),
            allowlist: Vec::new(),
            default_allowlist: true,
            max_prefix: 16,
            max_prefix6: 32,
            max_entries: None,
        }
    }
}

/// A list name: letters, digits, `-` and `_` (it is part of a URL path).
fn valid_list_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl ServeConfig {
    /// Parse the text of a configuration file (`path` names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<ServeConfig, ServeError> {
        let bad = |reason: String| ServeError::Config {
            path: path.to_path_buf(),
            reason,
        };
        let cfg: ServeConfig = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        for (name, list) in &cfg.edl {
            if !valid_list_name(name) {
                return Err(bad(format!(
                    "[edl.{name}]: a list name has 1 to 64 letters, digits, - or _"
                )));
            }
            if list.min_confidence > 100 || list.min_score > 100 {
                return Err(bad(format!(
                    "[edl.{name}]: min_confidence and min_score go from 0 to 100"
                )));
            }
            if list.max_prefix > 32 || list.max_prefix6 > 128 {
                return Err(bad(format!(
                    "[edl.{name}]: max_prefix is at most 32, max_prefix6 at most 128"
                )));
            }
        }
        if cfg.body_limit == 0 || cfg.upload_limit == 0 {
            return Err(bad("body_limit and upload_limit must be above 0".into()));
        }
        Ok(cfg)
    }

    /// Read and parse a configuration file.
    pub fn load(path: &Path) -> Result<ServeConfig, ServeError> {
        let text = std::fs::read_to_string(path).map_err(|e| ServeError::Config {
            path: path.to_path_buf(),
            reason: format!("cannot read it ({e})"),
        })?;
        Self::parse(&text, path)
    }
}
