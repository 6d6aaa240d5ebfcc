//! External Dynamic Lists: `/edl/NAME.txt`, one address, CIDR or range per
//! line (the `plain` target), as Palo Alto and FortiGate pull them. Each
//! named list of the configuration goes through the same selection, guard
//! and aggregation as `orbwatch export blocklist`. An `ETag` (SHA-256 of
//! the body) lets a firewall's `If-None-Match` get a 304 for an unchanged
//! list.
//!
//! Building a list of a million entries reads every indicator, so built
//! lists are kept ([`EdlCache`]) and served again until the store changes:
//! a feed imported or removed (the feeds' generation), a finding kept or
//! triaged (for lists built from findings), or a minute has passed, so that
//! an indicator whose validity window ends drops out within a minute.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::{SignedDuration, Timestamp};
use orbwatch_blocklist::{
    BuildOptions, Guard, RenderOptions, SelectOptions, Selection, Sighted, Target,
};
use orbwatch_store::{FindingFilter, Store};
use sha2::Digest;

use crate::AppState;
use crate::config::EdlList;
use crate::error::ApiError;

/// Build a blocklist from the store: indicators of `spec.feeds` (all when
/// empty), sighted-only and finding sources as `spec` asks, under `guard`,
/// rendered as `target`: the bytes of its one file and the number of
/// entries (callers refuse the targets that write several files). As
/// `export blocklist` does it, timeouts count from the start of the hour,
/// so that pulls within the hour get the same bytes (and the same ETag).
pub fn build_list(
    store: &Store,
    spec: &EdlList,
    guard: &Guard,
    target: Target,
) -> Result<(Vec<u8>, usize), ApiError> {
    let now = Timestamp::now();
    let timeout_base =
        Timestamp::from_second(now.as_second() - now.as_second().rem_euclid(3600)).unwrap_or(now);
    let findings: Vec<orbwatch_detect::Finding> = if spec.sighted || spec.from_findings {
        store
            .findings(&FindingFilter::default())?
            .into_iter()
            .filter(|f| !f.suppressed)
            .map(|f| f.finding)
            .collect()
    } else {
        Vec::new()
    };
    let sighted = spec.sighted.then(|| Sighted::from_findings(&findings));
    let mut sel = Selection::new(
        SelectOptions {
            at: now,
            min_confidence: spec.min_confidence,
            finding_ttl: SignedDuration::from_hours(spec.ttl_hours.max(0)),
            min_score: spec.min_score,
        },
        sighted,
    );
    let feeds = &spec.feeds;
    store.indicators_stream(None, |s| {
        if feeds.is_empty() || feeds.contains(&s.feed) {
            sel.add_indicator(&s.indicator, &s.feed);
        }
        ControlFlow::Continue(())
    })?;
    if spec.from_findings {
        sel.add_findings(&findings);
    }
    let list = orbwatch_blocklist::build(
        &sel,
        guard,
        &BuildOptions {
            max_prefix4: spec.max_prefix,
            max_prefix6: spec.max_prefix6,
            force_wide: false,
            widen: None,
            timeout_base,
            at_given: None,
        },
    )
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let entries = list.entries.len();
    let body = orbwatch_blocklist::render(target, &list, &RenderOptions::default())
        .files
        .into_iter()
        .next()
        .map(|f| f.bytes)
        .unwrap_or_default();
    Ok((body, entries))
}

/// What a built list depended on: when any of it changes, the list is
/// built again.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CacheKey {
    feeds: (i64, i64, String),
    /// Only for lists that read findings (`sighted`, `from_findings`).
    findings: Option<(i64, i64)>,
}

/// How long a built list is served before it is built again even if the
/// store did not change: validity windows are judged at the time of the
/// build, so an indicator whose window ends drops out within this.
const MAX_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// A built list, as served.
#[derive(Debug, Clone)]
struct Built {
    key: CacheKey,
    built: std::time::Instant,
    /// Shared, not copied, by every pull.
    body: axum::body::Bytes,
    etag: String,
    entries: usize,
}

/// Built EDLs by name, and how many times one was built (for tests and
/// the log).
#[derive(Debug, Default)]
pub struct EdlCache {
    lists: Mutex<HashMap<String, Built>>,
    builds: AtomicU64,
}

impl EdlCache {
    /// Lists built so far (cache misses).
    pub fn builds(&self) -> u64 {
        self.builds.load(Ordering::Relaxed)
    }
}

/// The list `name` (`spec`), from the cache when nothing it depends on
/// has changed, else built and kept.
fn cached_list(
    store: &Store,
    cache: &EdlCache,
    name: &str,
    spec: &EdlList,
    guard: &Guard,
) -> Result<Built, ApiError> {
    let key = CacheKey {
        feeds: store.feeds_generation()?,
        findings: if spec.sighted || spec.from_findings {
            Some(store.findings_generation()?)
        } else {
            None
        },
    };
    if let Ok(lists) = cache.lists.lock()
        && let Some(b) = lists.get(name)
        && b.key == key
        && b.built.elapsed() < MAX_AGE
    {
        return Ok(b.clone());
    }
    let (body, entries) = build_list(store, spec, guard, Target::Plain)?;
    cache.builds.fetch_add(1, Ordering::Relaxed);
    let built = Built {
        key,
        built: std::time::Instant::now(),
        etag: etag_of(&body),
        body: axum::body::Bytes::from(body),
        entries,
    };
    if let Ok(mut lists) = cache.lists.lock() {
        lists.insert(name.to_string(), built.clone());
    }
    Ok(built)
}

/// The strong ETag of a body.
pub fn etag_of(bytes: &[u8]) -> String {
    let d = sha2::Sha256::digest(bytes);
    let hex: String = d.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Does `If-None-Match` name this ETag (or `*`)?
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

/// `GET /edl/{name}.txt`.
pub async fn serve_edl(
    State(state): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(name) = file.strip_suffix(".txt") else {
        return Err(ApiError::NotFound(format!(
            "no list `{file}`: EDLs are served as /edl/NAME.txt"
        )));
    };
    let Some(spec) = state.config.edl.get(name).cloned() else {
        return Err(ApiError::NotFound(format!(
            "no list named `{name}` in the configuration ([edl.{name}])"
        )));
    };
    let Some(guard) = state.guards.get(name).cloned() else {
        return Err(ApiError::Internal(format!("no guard for list `{name}`")));
    };
    let cache = Arc::clone(&state.edl_cache);
    let list_name = name.to_string();
    let built = state
        .with_reader(move |s| cached_list(s, &cache, &list_name, &spec, &guard))
        .await?;
    let entries = built.entries;
    if let Some(max) = state.config.edl.get(name).and_then(|l| l.max_entries)
        && entries > max
    {
        return Err(ApiError::Unavailable(format!(
            "list `{name}` has {entries} entries, more than its max_entries {max}; it is not served so that the firewall keeps its last good copy — narrow the list or raise max_entries"
        )));
    }
    let etag = built.etag;
    let body = built.body;
    let etag_value = HeaderValue::from_str(&etag).map_err(|e| ApiError::Internal(e.to_string()))?;
    if not_modified(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response());
    }
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (header::ETAG, etag_value),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response())
}
