//! External Dynamic Lists: `/edl/NAME.txt`, one address, CIDR or range per
//! line (the `plain` target), as Palo Alto and FortiGate pull them. Each
//! named list of the configuration goes through the same selection, guard
//! and aggregation as `orbwatch export blocklist`. An `ETag` (SHA-256 of
//! the body) lets a firewall's `If-None-Match` get a 304 for an unchanged
//! list.

use std::ops::ControlFlow;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::{SignedDuration, Timestamp};
use orbwatch_blocklist::{
    BuildOptions, Guard, RenderOptions, Rendered, SelectOptions, Selection, Sighted, Target,
};
use orbwatch_store::{FindingFilter, Store};
use sha2::Digest;

use crate::AppState;
use crate::config::EdlList;
use crate::error::ApiError;

/// Build a blocklist from the store: indicators of `spec.feeds` (all when
/// empty), sighted-only and finding sources as `spec` asks, under `guard`,
/// rendered as `target`. As `export blocklist` does it, timeouts count
/// from the start of the hour, so that pulls within the hour get the same
/// bytes (and the same ETag).
pub fn build_list(
    store: &Store,
    spec: &EdlList,
    guard: &Guard,
    target: Target,
) -> Result<(Rendered, usize), ApiError> {
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
    Ok((
        orbwatch_blocklist::render(target, &list, &RenderOptions::default()),
        entries,
    ))
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
    let (rendered, entries) = state
        .with_store(move |s| build_list(s, &spec, &guard, Target::Plain))
        .await?;
    if let Some(max) = state.config.edl.get(name).and_then(|l| l.max_entries)
        && entries > max
    {
        return Err(ApiError::Unavailable(format!(
            "list `{name}` has {entries} entries, more than its max_entries {max}; it is not served so that the firewall keeps its last good copy — narrow the list or raise max_entries"
        )));
    }
    let body = rendered
        .files
        .into_iter()
        .next()
        .map(|f| f.bytes)
        .unwrap_or_default();
    let etag = etag_of(&body);
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
