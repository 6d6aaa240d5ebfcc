//! `feed subscribe` and `feed update`: fetch, read, store a new version.

use std::cell::RefCell;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use orbwatch_feedload::{FeedFile, LoadError, LoadRules};
use orbwatch_intel::{FeedFormat, ParsedFeed, ReadOptions};
use orbwatch_store::{ImportOptions, ImportReport, Store, StoreError, SubscriptionRow};

use crate::http::{Downloaded, FetchConfig, FetchError, Fetched, HttpClient};
use crate::source::{Source, is_loopback};
use crate::spec::{SubscriptionSpec, SubscriptionState};
use crate::{auth::AuthError, misp, taxii};

/// The most TAXII pages one update follows (a server whose `next` never
/// ends must not keep an update running forever).
const MAX_PAGES: usize = 10_000;

/// Errors that stop `subscribe` or `update` before any fetch.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "no subscription named `{0}`; `orbwatch feed subscribe NAME SOURCE` creates one, `orbwatch feed list` shows the feeds"
    )]
    Unknown(String),
    #[error("subscription `{name}` in the store is unreadable ({reason}); subscribe it again")]
    Corrupt { name: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

/// What one update did.
#[derive(Debug, Clone)]
pub enum UpdateOutcome {
    /// A new version was stored.
    Updated {
        report: ImportReport,
        /// Requests made.
        requests: u32,
        /// Bytes received.
        bytes: u64,
        /// What was fetched, in words (`3 new objects since …`).
        detail: String,
    },
    /// Nothing changed at the source (a 304, or no new objects): no version.
    Unchanged {
        version: Option<i64>,
        detail: String,
    },
    /// The fetch or the read failed: nothing was stored, the last good
    /// version (if any) stays.
    Failed {
        error: String,
        kept_version: Option<i64>,
        kept_at: Option<Timestamp>,
    },
}

/// Record a new subscription (or replace one of the same name). It does
/// not fetch: call [`update`] for that.
pub fn subscribe(
    store: &mut Store,
    name: &str,
    source: &Source,
    spec: &SubscriptionSpec,
    lookback: SignedDuration,
    history_grace: SignedDuration,
    ttl: Option<SignedDuration>,
) -> Result<(), SubscribeError> {
    if let Some(f) = &spec.format {
        f.parse::<FeedFormat>().map_err(SubscribeError::Invalid)?;
    }
    orbwatch_intel::time::parse_duration(&spec.every).map_err(SubscribeError::Invalid)?;
    if spec.headers.iter().any(|h| h.has_reference())
        && source.url().starts_with("http://")
        && !is_loopback(source.url())
    {
        return Err(SubscribeError::Invalid(
            AuthError::PlainHttp {
                header: "Authorization".into(),
                url: source.url().into(),
            }
            .to_string(),
        ));
    }
    let spec_json =
        serde_json::to_value(spec).map_err(|e| SubscribeError::Invalid(e.to_string()))?;
    let state = serde_json::to_value(SubscriptionState::default())
        .map_err(|e| SubscribeError::Invalid(e.to_string()))?;
    store.put_subscription(&SubscriptionRow {
        name: name.to_string(),
        source: source.to_string(),
        spec: spec_json,
        state,
        created_at: Timestamp::now(),
        lookback,
        grace: history_grace,
        ttl,
    })?;
    Ok(())
}

/// A loaded subscription.
struct Loaded {
    source: Source,
    spec: SubscriptionSpec,
    state: SubscriptionState,
}

fn load(store: &Store, name: &str) -> Result<Loaded, SubscribeError> {
    let row = store
        .subscription(name)?
        .ok_or_else(|| SubscribeError::Unknown(name.to_string()))?;
    let corrupt = |reason: String| SubscribeError::Corrupt {
        name: name.to_string(),
        reason,
    };
    Ok(Loaded {
        source: Source::parse(&row.source).map_err(|e| corrupt(e.to_string()))?,
        spec: serde_json::from_value(row.spec).map_err(|e| corrupt(e.to_string()))?,
        state: serde_json::from_value(row.state).unwrap_or_default(),
    })
}

/// Is the subscription due (its interval has passed since the last
/// attempt)?
pub fn is_due(store: &Store, name: &str, now: Timestamp) -> Result<bool, SubscribeError> {
    let l = load(store, name)?;
    let every = orbwatch_intel::time::parse_duration(&l.spec.every)
        .unwrap_or(SignedDuration::from_hours(6));
    Ok(match l.state.last_attempt {
        None => true,
        Some(t) => t.checked_add(every).map_or(true, |d| d <= now),
    })
}

/// What the fetch part of an update produced.
enum Got {
    Unchanged(String),
    /// A whole feed file downloaded to a temporary file (a plain HTTP(S)
    /// source), to be stored as it is read by [`orbwatch_feedload`]. The
    /// validators are kept only once it was stored.
    Spooled {
        file: tempfile::TempPath,
        url: String,
        label: String,
        format: Option<FeedFormat>,
        etag: Option<String>,
        last_modified: Option<String>,
        detail: String,
    },
    Feed {
        parsed: ParsedFeed,
        format: FeedFormat,
        sha256: String,
        /// New indicators are added to those the feed has (TAXII, MISP
        /// REST) rather than replacing them (a whole file).
        incremental: bool,
        detail: String,
    },
}

struct Counters {
    requests: u32,
    bytes: u64,
}

/// Fetch subscription `name` once and store what changed. `env` reads
/// environment variables (credentials). Returns an error only when the
/// subscription itself cannot be read or the store fails; fetch and read
/// failures are an [`UpdateOutcome::Failed`], recorded in the state.
pub fn update(
    store: &mut Store,
    name: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<UpdateOutcome, SubscribeError> {
    let Loaded {
        source,
        spec,
        mut state,
    } = load(store, name)?;
    let now = Timestamp::now();
    state.last_attempt = Some(now);
    let mut counters = Counters {
        requests: 0,
        bytes: 0,
    };
    // Downloads are spooled next to the store, like the server's uploads:
    // the folder is known to be writable and on the disk that holds the
    // feeds anyway.
    let spool_dir = match store.path().parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let got = fetch(
        &source,
        &spec,
        &mut state,
        name,
        env,
        &mut counters,
        now,
        &spool_dir,
    );
    let info = store.feed(name)?;
    let outcome = match got {
        Err(error) => failed(&mut state, info.as_ref(), error),
        Ok(Got::Spooled {
            file,
            url,
            label,
            format,
            etag,
            last_modified,
            detail,
        }) => {
            let opts = read_options(name, &spec, now);
            let source_text = source.to_string();
            let loaded = orbwatch_feedload::load_feed_file_with(
                store,
                &FeedFile {
                    path: &file,
                    name,
                    format,
                    opts: &opts,
                    label: &label,
                    source: &source_text,
                },
                LoadRules {
                    refuse_empty_version: true,
                },
            );
            // Removed as soon as it was read, whatever came of it.
            drop(file);
            match loaded {
                Ok(loaded) => {
                    // Validators are kept only once the content was read
                    // and stored: a body that failed must be fetched again
                    // next time.
                    state.etag = etag;
                    state.last_modified = last_modified;
                    state.updates += 1;
                    state.last_error = None;
                    state.last_success = Some(now);
                    UpdateOutcome::Updated {
                        report: loaded.report,
                        requests: counters.requests,
                        bytes: counters.bytes,
                        detail,
                    }
                }
                Err(LoadError::Store(StoreError::EmptyVersionRefused {
                    had, rejected, ..
                })) => {
                    let error = format!(
                        "{source} gave no indicators ({rejected} rejected), while the feed has {had}; not storing an empty version"
                    );
                    failed(&mut state, info.as_ref(), error)
                }
                // The store itself failed (busy, disk full): as for the
                // other sources, the caller hears of it.
                Err(LoadError::Store(e)) if !matches!(e, StoreError::ImportSource { .. }) => {
                    return Err(e.into());
                }
                // What was downloaded is not a feed of the format, or
                // could not be read back.
                Err(e) => failed(&mut state, info.as_ref(), format!("{url}: {e}")),
            }
        }
        Ok(Got::Unchanged(detail)) => {
            state.unchanged += 1;
            state.last_error = None;
            state.last_success = Some(now);
            UpdateOutcome::Unchanged {
                version: info.as_ref().map(|i| i.version),
                detail,
            }
        }
        Ok(Got::Feed {
            mut parsed,
            format,
            sha256,
            incremental,
            detail,
        }) => {
            let had = info.as_ref().map_or(0, |i| i.total());
            if incremental && had > 0 {
                // Keep what the feed has; the new objects come first so
                // that their metadata wins on identical identities.
                let old = store.indicators(Some(name))?;
                parsed
                    .indicators
                    .extend(old.into_iter().map(|s| s.indicator));
            }
            if parsed.indicators.is_empty() && had > 0 {
                let error = format!(
                    "{} gave no indicators ({} rejected), while the feed has {had}; not storing an empty version",
                    source,
                    parsed.rejected.len()
                );
                failed(&mut state, info.as_ref(), error)
            } else {
                let opts = read_options(name, &spec, now);
                let report = store.import_feed(
                    name,
                    format,
                    &source.to_string(),
                    &parsed,
                    &ImportOptions {
                        source_sha256: Some(sha256),
                        options: orbwatch_store::read_options_json(&opts),
                        at: Some(now),
                        ..Default::default()
                    },
                )?;
                state.updates += 1;
                state.last_error = None;
                state.last_success = Some(now);
                UpdateOutcome::Updated {
                    report,
                    requests: counters.requests,
                    bytes: counters.bytes,
                    detail,
                }
            }
        }
    };
    let state_json = serde_json::to_value(&state).unwrap_or_default();
    store.set_subscription_state(name, &state_json)?;
    Ok(outcome)
}

fn read_options(name: &str, spec: &SubscriptionSpec, now: Timestamp) -> ReadOptions {
    let mut opts = ReadOptions::new(name);
    opts.now = now;
    if let Ok(g) = orbwatch_intel::time::parse_duration(&spec.grace) {
        opts.grace = g;
    }
    opts.confidence = spec.confidence;
    opts
}

fn client(
    source: &Source,
    spec: &SubscriptionSpec,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<HttpClient, String> {
    let mut headers = Vec::new();
    for h in &spec.headers {
        if h.has_reference() && source.url().starts_with("http://") && !is_loopback(source.url()) {
            return Err(AuthError::PlainHttp {
                header: h.name.clone(),
                url: source.url().into(),
            }
            .to_string());
        }
        headers.push((h.name.clone(), h.resolve(env).map_err(|e| e.to_string())?));
    }
    HttpClient::new(FetchConfig {
        timeout: Duration::from_secs(spec.timeout_secs.max(1)),
        retries: spec.retries,
        retry_wait: Duration::from_millis(spec.retry_wait_ms),
        max_bytes: spec.max_bytes,
        ca_file: spec.ca_file.clone(),
        headers,
        https_only: source.url().starts_with("https://"),
    })
    .map_err(|e| e.to_string())
}

/// Fetch what the source has. A plain HTTP(S) source is downloaded to a
/// temporary file in `spool_dir` ([`Got::Spooled`]) and stored from it as
/// it is read, so memory does not grow with the feed. TAXII and MISP
/// sources stay in memory ([`Got::Feed`]): they come in pages or event
/// files each bounded by `max_bytes`, and the incremental ones (TAXII,
/// MISP REST) merge the new objects with the feed's current indicators
/// before storing, which needs them all at hand.
#[allow(clippy::too_many_arguments)]
fn fetch(
    source: &Source,
    spec: &SubscriptionSpec,
    state: &mut SubscriptionState,
    name: &str,
    env: &dyn Fn(&str) -> Option<String>,
    c: &mut Counters,
    now: Timestamp,
    spool_dir: &std::path::Path,
) -> Result<Got, String> {
    let http = client(source, spec, env)?;
    let opts = read_options(name, spec, now);
    let format = spec
        .format
        .as_deref()
        .map(|f| f.parse::<FeedFormat>())
        .transpose()?;
    match source {
        Source::Http { url } => {
            crate::http::remove_stale_fetch_files(
                spool_dir,
                crate::http::STALE_FETCH_AGE,
                std::time::SystemTime::now(),
            );
            c.requests += 1;
            let downloaded = http
                .get_to_file(
                    url,
                    state.etag.as_deref(),
                    state.last_modified.as_deref(),
                    spool_dir,
                )
                .map_err(|e| e.to_string())?;
            let Downloaded::File {
                file,
                bytes,
                etag,
                last_modified,
            } = downloaded
            else {
                return Ok(Got::Unchanged(format!("{url}: not modified (304)")));
            };
            c.bytes += bytes;
            let label = url
                .rsplit('/')
                .find(|s| !s.is_empty())
                .unwrap_or(url)
                .to_string();
            Ok(Got::Spooled {
                file,
                url: url.clone(),
                label,
                format,
                etag,
                last_modified,
                detail: format!("{bytes} bytes from {url}"),
            })
        }
        Source::Taxii { collection_url } => {
            fetch_taxii(&http, collection_url, spec, state, &opts, c)
        }
        Source::MispFeed { manifest_url } => fetch_misp_feed(&http, manifest_url, state, &opts, c),
        Source::MispRest { base_url } => fetch_misp_rest(&http, base_url, spec, state, &opts, c),
    }
}

fn fetch_taxii(
    http: &HttpClient,
    collection_url: &str,
    spec: &SubscriptionSpec,
    state: &mut SubscriptionState,
    opts: &ReadOptions,
    c: &mut Counters,
) -> Result<Got, String> {
    let added_after = state
        .taxii_added_after
        .clone()
        .filter(|a| taxii::valid_timestamp(a));
    let mut objects: Vec<serde_json::Value> = Vec::new();
    let mut newest: Option<String> = None;
    let mut next: Option<String> = None;
    let mut digest_input = Vec::new();
    for page in 0.. {
        if page >= MAX_PAGES {
            return Err(format!(
                "{collection_url}: more than {MAX_PAGES} pages; the server's `next` does not end"
            ));
        }
        let url = taxii::objects_url(
            collection_url,
            added_after.as_deref(),
            next.as_deref(),
            spec.page_limit,
        );
        c.requests += 1;
        let Fetched::Body { bytes, headers, .. } = http
            .get(&url, None, None, &[("Accept", taxii::ACCEPT)])
            .map_err(|e| e.to_string())?
        else {
            break;
        };
        c.bytes += bytes.len() as u64;
        digest_input.extend_from_slice(&bytes);
        let env = taxii::parse_envelope(&bytes).map_err(|e| format!("{url}: {e}"))?;
        if let Some((_, last)) = headers
            .iter()
            .find(|(k, _)| k == "x-taxii-date-added-last")
            .filter(|(_, v)| taxii::valid_timestamp(v))
        {
            let later = match &newest {
                Some(n) => last.parse::<Timestamp>().ok() > n.parse::<Timestamp>().ok(),
                None => true,
            };
            if later {
                newest = Some(last.clone());
            }
        }
        objects.extend(env.objects);
        match (env.more, env.next) {
            (true, Some(n)) if next.as_deref() != Some(n.as_str()) => next = Some(n),
            (true, _) => {
                return Err(format!(
                    "{url}: the server says there is more but gives no new `next`"
                ));
            }
            _ => break,
        }
    }
    let since = added_after
        .as_deref()
        .map_or_else(|| "the start".to_string(), |a| a.to_string());
    if objects.is_empty() {
        return Ok(Got::Unchanged(format!(
            "{collection_url}: no objects added after {since}"
        )));
    }
    let n = objects.len();
    let bundle = serde_json::json!({"type": "bundle", "id": "bundle--taxii", "objects": objects});
    let bytes = serde_json::to_vec(&bundle).map_err(|e| e.to_string())?;
    let parsed = orbwatch_intel::read_feed(&bytes, "taxii-objects", Some(FeedFormat::Stix), opts)
        .map_err(|e| format!("{collection_url}: {e}"))?;
    match newest {
        Some(t) => state.taxii_added_after = Some(t),
        None => tracing::warn!(
            collection_url,
            "the server sent no X-TAXII-Date-Added-Last header; the next update asks for everything again"
        ),
    }
    Ok(Got::Feed {
        detail: format!("{n} object(s) added after {since}"),
        sha256: orbwatch_store::sha256_hex(&digest_input),
        parsed,
        format: FeedFormat::Stix,
        incremental: true,
    })
}

fn fetch_misp_feed(
    http: &HttpClient,
    manifest_url: &str,
    state: &mut SubscriptionState,
    opts: &ReadOptions,
    c: &mut Counters,
) -> Result<Got, String> {
    c.requests += 1;
    let Fetched::Body {
        bytes: manifest,
        etag,
        last_modified,
        ..
    } = http
        .get(
            manifest_url,
            state.etag.as_deref(),
            state.last_modified.as_deref(),
            &[],
        )
        .map_err(|e| e.to_string())?
    else {
        return Ok(Got::Unchanged(format!(
            "{manifest_url}: not modified (304)"
        )));
    };
    c.bytes += manifest.len() as u64;
    let base = manifest_url
        .strip_suffix("manifest.json")
        .unwrap_or(manifest_url);
    let mut digests = vec![format!(
        "manifest.json:{}",
        orbwatch_store::sha256_hex(&manifest)
    )];
    let failed: RefCell<Option<FetchError>> = RefCell::new(None);
    let mut parsed = ParsedFeed {
        format: Some(FeedFormat::MispFeed),
        ..Default::default()
    };
    let mut events = 0u32;
    orbwatch_intel::readers::misp::read_feed_dir(
        &manifest,
        "manifest.json",
        &mut |uuid| {
            if failed.borrow().is_some() {
                return Err("skipped after an earlier download failed".into());
            }
            c.requests += 1;
            match http.get(&format!("{base}{uuid}.json"), None, None, &[]) {
                Ok(Fetched::Body { bytes, .. }) => {
                    c.bytes += bytes.len() as u64;
                    events += 1;
                    digests.push(format!(
                        "{uuid}.json:{}",
                        orbwatch_store::sha256_hex(&bytes)
                    ));
                    Ok(bytes)
                }
                Ok(Fetched::NotModified) => Err("unexpected 304".into()),
                Err(e) => {
                    let msg = e.to_string();
                    *failed.borrow_mut() = Some(e);
                    Err(msg)
                }
            }
        },
        opts,
        &mut parsed,
    )
    .map_err(|e| format!("{manifest_url}: {e}"))?;
    // An event that cannot be downloaded would make its indicators look
    // removed: fail the update instead, and keep the last version.
    if let Some(e) = failed.into_inner() {
        return Err(format!("an event file of the MISP feed failed: {e}"));
    }
    orbwatch_intel::finalize(&mut parsed, opts);
    digests.sort();
    state.etag = etag;
    state.last_modified = last_modified;
    Ok(Got::Feed {
        detail: format!("manifest and {events} event file(s) from {base}"),
        sha256: orbwatch_store::sha256_hex(digests.join("\n").as_bytes()),
        parsed,
        format: FeedFormat::MispFeed,
        incremental: false,
    })
}

fn fetch_misp_rest(
    http: &HttpClient,
    base_url: &str,
    spec: &SubscriptionSpec,
    state: &mut SubscriptionState,
    opts: &ReadOptions,
    c: &mut Counters,
) -> Result<Got, String> {
    let url = format!("{base_url}/events/restSearch");
    let last = spec.misp_last.as_deref().unwrap_or("30d");
    let body = misp::rest_search_body(state.misp_timestamp, last);
    c.requests += 1;
    let Fetched::Body { bytes, .. } = http
        .post_json(&url, &body, &[("Accept", "application/json")])
        .map_err(|e| e.to_string())?
    else {
        return Ok(Got::Unchanged(format!("{url}: not modified")));
    };
    c.bytes += bytes.len() as u64;
    let newest = misp::newest_timestamp(&bytes).map_err(|e| format!("{url}: {e}"))?;
    let since = state
        .misp_timestamp
        .map_or_else(|| format!("the last {last}"), |t| format!("timestamp {t}"));
    let Some(newest) = newest else {
        return Ok(Got::Unchanged(format!(
            "{url}: no events changed since {since}"
        )));
    };
    let events = misp::event_count(&bytes);
    let parsed = orbwatch_intel::read_feed(&bytes, "restSearch", Some(FeedFormat::Misp), opts)
        .map_err(|e| format!("{url}: {e}"))?;
    // MISP's `timestamp` filter is inclusive: the next search starts one
    // second after the newest event seen.
    state.misp_timestamp = Some(newest.saturating_add(1));
    Ok(Got::Feed {
        detail: format!("{events} event(s) changed since {since}"),
        sha256: orbwatch_store::sha256_hex(&bytes),
        parsed,
        format: FeedFormat::Misp,
        incremental: true,
    })
}

/// Find the collection `collection` (its id) from a TAXII 2.1 discovery URL
/// (`https://HOST/taxii2/`): the server's default API root (or its only
/// one), then `collections/ID/` below it, which must exist and be
/// readable. Returns the collection source to subscribe to.
pub fn resolve_taxii_collection(
    discovery_url: &str,
    collection: &str,
    spec: &SubscriptionSpec,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Source, String> {
    let probe = Source::Http {
        url: discovery_url.to_string(),
    };
    let http = client(&probe, spec, env)?;
    let accept = [("Accept", taxii::ACCEPT)];
    let Fetched::Body { bytes, .. } = http
        .get(discovery_url, None, None, &accept)
        .map_err(|e| e.to_string())?
    else {
        return Err(format!("{discovery_url}: unexpected 304"));
    };
    let doc: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{discovery_url}: not a TAXII discovery document ({e})"))?;
    let roots: Vec<&str> = doc
        .get("api_roots")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let root = doc
        .get("default")
        .and_then(|v| v.as_str())
        .or(if roots.len() == 1 { Some(roots[0]) } else { None })
        .ok_or_else(|| {
            format!(
                "{discovery_url}: the server names no default API root and has {} ({}); subscribe to taxii2+…/API-ROOT/collections/{collection}/ directly",
                roots.len(),
                roots.join(", ")
            )
        })?;
    // API roots may be relative to the discovery URL's host.
    let root = if root.contains("://") {
        root.to_string()
    } else {
        let scheme_end = discovery_url.find("://").map_or(0, |i| i + 3);
        let host_end = discovery_url[scheme_end..]
            .find('/')
            .map_or(discovery_url.len(), |i| scheme_end + i);
        format!(
            "{}/{}",
            &discovery_url[..host_end],
            root.trim_start_matches('/')
        )
    };
    let root = if root.ends_with('/') {
        root
    } else {
        format!("{root}/")
    };
    let collection_url = format!("{root}collections/{}/", taxii::encode(collection));
    let Fetched::Body { bytes, .. } = http
        .get(&collection_url, None, None, &accept)
        .map_err(|e| e.to_string())?
    else {
        return Err(format!("{collection_url}: unexpected 304"));
    };
    let info: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{collection_url}: not a TAXII collection ({e})"))?;
    if info.get("can_read").and_then(|v| v.as_bool()) == Some(false) {
        return Err(format!(
            "{collection_url}: the server says this collection cannot be read with these credentials"
        ));
    }
    Source::parse(&format!("taxii2+{collection_url}")).map_err(|e| e.to_string())
}

/// A failed update: counted and remembered in the subscription's state;
/// the feed keeps its last good version, which the outcome names.
fn failed(
    state: &mut SubscriptionState,
    info: Option<&orbwatch_store::FeedInfo>,
    error: String,
) -> UpdateOutcome {
    state.failures += 1;
    state.last_error = Some(error.clone());
    UpdateOutcome::Failed {
        error,
        kept_version: info.map(|i| i.version),
        kept_at: info.map(|i| i.updated_at),
    }
}
