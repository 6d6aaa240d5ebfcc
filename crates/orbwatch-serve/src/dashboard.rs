//! The dashboard: server-rendered pages, usable without JavaScript.
//!
//! - Log in with an API token (`POST /login`); the server keeps a session
//!   (random id in an HttpOnly, SameSite=Strict cookie, `Secure` over TLS)
//!   that points at the token, and checks the token in the store on every
//!   request, so revoking it ends its sessions at once.
//! - Every form post carries the session's CSRF token.
//! - Failed logins are rate-limited for the whole server
//!   ([`MAX_FAILED_LOGINS`] per minute), so a token cannot be guessed
//!   through the form (it could not anyway: 256 bits).
//! - Templates are minijinja with auto-escaping (every string from logs is
//!   escaped), and pages are sent with a strict Content-Security-Policy: no
//!   script, no style but the dashboard's own stylesheet (allowed by its
//!   hash), forms to this origin only.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use orbwatch_store::{FindingCount, FindingFilter, TokenInfo, TokenScope, TriageStatus};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::api::FindingsQuery;
use crate::error::ApiError;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "ow_session";
/// How long a session lasts without use.
pub const SESSION_IDLE: Duration = Duration::from_secs(8 * 3600);
/// Failed logins allowed per minute, for the whole server; beyond, 429.
pub const MAX_FAILED_LOGINS: usize = 5;
/// The Content-Security-Policy of the HTML report of a hunt
/// (`/hunts/{id}/report`). The report (crate `orbwatch-report`) is one
/// self-contained file: no script, but its CSS sits in a `<style>` element
/// and in `style` attributes (bar widths), which [`page_csp`] would block. So
/// that page alone also allows inline styles; nothing else: no script, no
/// image, no fetch, no form.
pub const REPORT_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";
/// The dashboard's stylesheet. Every page carries it in a `<style>`
/// element rather than linking a file: a stylesheet route would have to
/// be served without a token for the login page to be styled, and the
/// issue wants every route but `/healthz` behind auth.
pub const STYLESHEET: &str = include_str!("dashboard.css");

/// The Content-Security-Policy of every page: nothing may load or run
/// but the one `<style>` element whose SHA-256 is [`STYLESHEET`]'s, so an
/// injected style or script is still refused even if escaping failed.
pub fn page_csp() -> &'static str {
    static CSP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CSP.get_or_init(|| {
        use base64::Engine as _;
        use sha2::Digest as _;
        let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(STYLESHEET));
        format!(
            "default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        )
    })
}

/// One logged-in browser.
#[derive(Debug, Clone)]
struct Session {
    /// The token it logged in with (checked on every request).
    token: String,
    csrf: String,
    last_used: Instant,
}

/// Sessions and the failed-login window, in memory (a restart logs
/// everyone out).
#[derive(Debug, Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
    failures: Mutex<Vec<Instant>>,
}

impl Sessions {
    fn lock_ids(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What a page knows of its viewer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Viewer {
    pub name: String,
    pub scope: TokenScope,
    pub csrf: String,
}

fn templates() -> &'static minijinja::Environment<'static> {
    static ENV: std::sync::OnceLock<minijinja::Environment<'static>> = std::sync::OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = minijinja::Environment::new();
        // Strings from logs are escaped as the HTML report escapes them:
        // besides markup, control characters and bidirectional overrides
        // (an RLO makes `gnp.exe` read `exe.png`) become U+FFFD, so a
        // hostile record can neither run nor read as something else.
        env.set_formatter(|out, state, value| {
            if state.auto_escape() == minijinja::AutoEscape::Html
                && !value.is_safe()
                && let Some(text) = value.as_str()
            {
                return out
                    .write_str(&orbwatch_report::html::esc(text))
                    .map_err(minijinja::Error::from);
            }
            minijinja::escape_formatter(out, state, value)
        });
        // Marked safe: escaping would change the text, and with it the
        // hash the CSP allows.
        env.add_global(
            "stylesheet",
            minijinja::Value::from_safe_string(STYLESHEET.to_string()),
        );
        // `.html` names turn auto-escaping on.
        for (name, text) in [
            ("layout.html", include_str!("templates/layout.html")),
            ("login.html", include_str!("templates/login.html")),
            ("findings.html", include_str!("templates/findings.html")),
            ("finding.html", include_str!("templates/finding.html")),
            ("overview.html", include_str!("templates/overview.html")),
            ("feeds.html", include_str!("templates/feeds.html")),
            ("hunts.html", include_str!("templates/hunts.html")),
            ("hunt.html", include_str!("templates/hunt.html")),
        ] {
            if let Err(e) = env.add_template(name, text) {
                tracing::error!("template {name}: {e}");
            }
        }
        env
    })
}

/// A page with the security headers.
fn page(status: StatusCode, name: &str, ctx: minijinja::Value) -> Response {
    let html = match templates().get_template(name).and_then(|t| t.render(ctx)) {
        Ok(h) => h,
        Err(e) => return ApiError::Internal(format!("template {name}: {e}")).into_response(),
    };
    let mut r = (status, Html(html)).into_response();
    secure_headers(r.headers_mut());
    r
}

fn secure_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(page_csp()),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The session id in a request's cookies.
fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
}

/// The live session of a request: its token (still valid in the store)
/// and CSRF token. Expired sessions are dropped.
pub async fn session_of(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(TokenInfo, String)>, ApiError> {
    let Some(id) = session_id(headers) else {
        return Ok(None);
    };
    let found = {
        let mut map = state.sessions.lock_ids();
        map.retain(|_, s| s.last_used.elapsed() < SESSION_IDLE);
        map.get_mut(&id).map(|s| {
            s.last_used = Instant::now();
            (s.token.clone(), s.csrf.clone())
        })
    };
    let Some((token, csrf)) = found else {
        return Ok(None);
    };
    let info = state
        .with_reader(move |s| Ok(s.check_token(&token)?))
        .await?;
    match info {
        Some(info) => Ok(Some((info, csrf))),
        None => {
            // Revoked: the session ends with it.
            state.sessions.lock_ids().remove(&id);
            Ok(None)
        }
    }
}

/// The viewer of a page request (set by the access check).
fn viewer(req_ext: Option<&Viewer>) -> minijinja::Value {
    minijinja::Value::from_serialize(req_ext)
}

/// The answer to a page request without a session: 401 with a link to
/// the login form.
pub fn login_needed() -> Response {
    let mut r = page(
        StatusCode::UNAUTHORIZED,
        "login.html",
        minijinja::context! { error => "Log in first." },
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"orbwatch\""),
    );
    r
}

/// `GET /login`.
pub async fn login_form() -> Response {
    page(StatusCode::OK, "login.html", minijinja::context! {})
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    token: String,
}

fn cookie(id: &str, secure: bool, max_age: Option<u64>) -> HeaderValue {
    let mut c = format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict");
    if secure {
        c.push_str("; Secure");
    }
    if let Some(a) = max_age {
        c.push_str(&format!("; Max-Age={a}"));
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `POST /login`: a token for a session cookie.
pub async fn login(
    State(state): State<AppState>,
    Form(form): Form<LoginForm>,
) -> Result<Response, ApiError> {
    {
        let mut f = state
            .sessions
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        f.retain(|t| t.elapsed() < Duration::from_secs(60));
        if f.len() >= MAX_FAILED_LOGINS {
            let mut r = page(
                StatusCode::TOO_MANY_REQUESTS,
                "login.html",
                minijinja::context! { error => "Too many failed logins; wait a minute." },
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            return Ok(r);
        }
    }
    let token = form.token.trim().to_string();
    let t2 = token.clone();
    let info = state.with_reader(move |s| Ok(s.check_token(&t2)?)).await?;
    if info.is_none() {
        state
            .sessions
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Instant::now());
        return Ok(page(
            StatusCode::UNAUTHORIZED,
            "login.html",
            minijinja::context! { error => "This token is not valid." },
        ));
    }
    let id = orbwatch_store::tokens::generate_token()?;
    let csrf = orbwatch_store::tokens::generate_token()?;
    state.sessions.lock_ids().insert(
        id.clone(),
        Session {
            token,
            csrf,
            last_used: Instant::now(),
        },
    );
    let mut r = Redirect::to("/").into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, cookie(&id, state.tls, None));
    Ok(r)
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ApiError> {
    if let Some(id) = session_id(&headers) {
        let mut map = state.sessions.lock_ids();
        if map.get(&id).is_some_and(|s| s.csrf == form.csrf) {
            map.remove(&id);
        } else {
            return Err(ApiError::Forbidden {
                have: "a form without its CSRF token".into(),
                need: "the page's form".into(),
            });
        }
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, cookie("", state.tls, Some(0)));
    Ok(r)
}

/// `GET /findings`: the list with filters.
pub async fn findings_page(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    Query(mut q): Query<FindingsQuery>,
) -> Result<Response, ApiError> {
    let v = Some(v);
    // The filter form sends every field, empty ones as `kind=`: an empty
    // field is no filter (not a kind named "").
    for f in [
        &mut q.kind,
        &mut q.feed,
        &mut q.status,
        &mut q.min_severity,
        &mut q.since,
        &mut q.until,
        &mut q.cursor,
    ] {
        if f.as_deref().is_some_and(|v| v.trim().is_empty()) {
            *f = None;
        }
    }
    let filter = q.filter()?;
    // A cursor this server did not give starts from the first page (a
    // link typed by hand), as the page numbers of old links did.
    let after = crate::api::parse_cursor(q.cursor.as_deref()).unwrap_or(None);
    let limit = q
        .limit
        .unwrap_or(crate::api::DEFAULT_PAGE)
        .clamp(1, crate::api::MAX_PAGE);
    let totals = state.totals.clone();
    let (total, rows, next) = state
        .with_reader(move |s| {
            let total = totals.total(s, &filter)?;
            let (rows, next) = s.findings_after(&filter, after.as_ref(), limit)?;
            Ok((total, rows, next))
        })
        .await?;
    let next_query = next
        .as_ref()
        .map(|c| form_query(&q, &crate::api::cursor_text(c)));
    Ok(page(
        StatusCode::OK,
        "findings.html",
        minijinja::context! {
            session => viewer(v.as_ref()),
            total => total,
            findings => minijinja::Value::from_serialize(&rows),
            q => minijinja::context! {
                kind => q.kind, feed => q.feed, min_severity => q.min_severity.clone().unwrap_or_default(),
                show_suppressed => q.show_suppressed.unwrap_or(false),
            },
            next_cursor => next.is_some(),
            next_query => next_query,
        },
    ))
}

/// The query string of the next page, filters kept.
fn form_query(q: &FindingsQuery, next: &str) -> String {
    let mut parts = Vec::new();
    let mut add = |k: &str, v: &Option<String>| {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            parts.push(format!("{k}={}", pct(v)));
        }
    };
    add("kind", &q.kind);
    add("feed", &q.feed);
    add("status", &q.status);
    add("min_severity", &q.min_severity);
    add("since", &q.since);
    add("until", &q.until);
    if let Some(h) = q.hunt {
        parts.push(format!("hunt={h}"));
    }
    if q.show_suppressed == Some(true) {
        parts.push("show_suppressed=true".into());
    }
    parts.push(format!("cursor={}", pct(next)));
    parts.join("&")
}

/// Percent-encode everything but unreserved characters.
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `GET /findings/{id}`: one finding with evidence, history and buttons.
pub async fn finding_page(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let v = Some(v);
    let can_triage = v
        .as_ref()
        .is_some_and(|v| v.scope.allows(TokenScope::Triage));
    let (sf, decisions) = state
        .with_reader(move |s| {
            let wanted = id.trim().to_ascii_lowercase();
            let sf = s
                .findings(&FindingFilter {
                    show_suppressed: true,
                    id: Some(wanted.clone()),
                    ..Default::default()
                })?
                .into_iter()
                .next()
                .ok_or_else(|| ApiError::NotFound(format!("no finding `{id}`")))?;
            let d = s.decisions(Some(&wanted))?;
            Ok((sf, d))
        })
        .await?;
    Ok(page(
        StatusCode::OK,
        "finding.html",
        minijinja::context! {
            session => viewer(v.as_ref()),
            f => minijinja::Value::from_serialize(&sf),
            decisions => minijinja::Value::from_serialize(&decisions),
            can_triage => can_triage,
        },
    ))
}

#[derive(Debug, Deserialize)]
pub struct TriageForm {
    #[serde(default)]
    csrf: String,
    status: String,
    #[serde(default)]
    note: String,
}

/// `POST /findings/{id}/triage`: the buttons of the finding page.
pub async fn triage_form(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(id): Path<String>,
    Form(form): Form<TriageForm>,
) -> Result<Response, ApiError> {
    // Constant-time enough: both are 67 random characters, compared whole.
    if form.csrf.is_empty() || form.csrf != v.csrf {
        return Err(ApiError::Forbidden {
            have: "a form without this session's CSRF token".into(),
            need: "the form of the finding page".into(),
        });
    }
    if !v.scope.allows(TokenScope::Triage) {
        return Err(ApiError::Forbidden {
            have: v.scope.to_string(),
            need: "triage".into(),
        });
    }
    let req = crate::api::TriageRequest {
        status: form.status,
        note: Some(form.note).filter(|n| !n.trim().is_empty()),
    };
    let status: TriageStatus = req.validate()?;
    let author = format!("token:{}", v.name);
    let wanted = id.trim().to_ascii_lowercase();
    let target = wanted.clone();
    state
        .with_store(move |s| {
            s.triage(&target, status, req.note.as_deref(), &author, None)?;
            Ok(())
        })
        .await?;
    Ok(Redirect::to(&format!("/findings/{}", pct(&wanted))).into_response())
}

/// What the overview page shows: counts over the latest copy of every
/// finding (dismissed ones counted apart).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Overview {
    /// Findings not dismissed by triage.
    pub open: u64,
    /// Open findings never triaged (status `new`).
    pub need_triage: u64,
    /// Open findings of severity high or critical.
    pub high_or_critical: u64,
    /// Findings dismissed by triage (false-positive or benign).
    pub dismissed: u64,
    /// Open findings per severity, most serious first; `none` for findings
    /// written before IOC matches had a severity. Every severity is listed,
    /// with 0 when absent, so the table has a stable shape.
    pub by_severity: Vec<(String, u64)>,
    /// Open findings per kind, kinds with none left out.
    pub by_kind: Vec<(String, u64)>,
    /// Open findings per UTC day of first sighting, oldest first; only
    /// days with findings (a hunt over years of logs would otherwise give
    /// thousands of empty rows). `undated` last for findings without time.
    pub timeline: Vec<Day>,
}

/// One row of the overview's timeline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Day {
    pub day: String,
    pub count: u64,
    /// The bar's width in pixels (0–[`BAR_WIDTH`]), relative to the busiest day.
    pub bar: u64,
}

/// The widest bar of the overview's timeline, in pixels.
pub const BAR_WIDTH: u64 = 300;

impl Overview {
    /// The overview of the store's counts ([`Store::finding_counts`]: one
    /// `GROUP BY` over an index of the latest copy of each finding, with
    /// the triage state the store keeps on each row), so that the page
    /// does not decode every finding.
    ///
    /// [`Store::finding_counts`]: orbwatch_store::Store::finding_counts
    pub fn of(counts: &[FindingCount]) -> Overview {
        use std::collections::BTreeMap;
        let mut o = Overview::default();
        let mut sev: BTreeMap<String, u64> = BTreeMap::new();
        let mut kind: BTreeMap<String, u64> = BTreeMap::new();
        let mut days: BTreeMap<String, u64> = BTreeMap::new();
        let mut undated = 0u64;
        for c in counts {
            let n = c.count;
            if c.status.suppresses() {
                o.dismissed += n;
                continue;
            }
            o.open += n;
            if c.status == TriageStatus::New {
                o.need_triage += n;
            }
            if matches!(c.severity.as_deref(), Some("high" | "critical")) {
                o.high_or_critical += n;
            }
            *sev.entry(c.severity.clone().unwrap_or_else(|| "none".into()))
                .or_default() += n;
            *kind.entry(c.kind.clone()).or_default() += n;
            match &c.day {
                Some(d) => *days.entry(d.clone()).or_default() += n,
                None => undated += n,
            }
        }
        o.by_severity = orbwatch_detect::Severity::ALL
            .iter()
            .rev()
            .map(|s| s.as_str())
            .chain(["none"])
            .map(|s| (s.to_string(), sev.get(s).copied().unwrap_or(0)))
            .filter(|(s, n)| s != "none" || *n > 0)
            .collect();
        o.by_kind = kind.into_iter().collect();
        let mut timeline: Vec<(String, u64)> = days.into_iter().collect();
        if undated > 0 {
            timeline.push(("undated".into(), undated));
        }
        let max = timeline.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
        o.timeline = timeline
            .into_iter()
            .map(|(day, count)| Day {
                day,
                count,
                bar: (count * BAR_WIDTH).div_ceil(max),
            })
            .collect();
        o
    }

    /// The verdict line.
    pub fn verdict(&self) -> String {
        if self.open == 0 {
            return if self.dismissed == 0 {
                "Nothing found.".into()
            } else {
                format!(
                    "Nothing open: {} finding{} dismissed by triage.",
                    self.dismissed,
                    plural(self.dismissed)
                )
            };
        }
        format!(
            "{} finding{} need{} triage, {} high or critical ({} open in all).",
            self.need_triage,
            plural(self.need_triage),
            if self.need_triage == 1 { "s" } else { "" },
            self.high_or_critical,
            self.open
        )
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `GET /`: the overview (verdict, counts by severity and kind, timeline).
pub async fn overview_page(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
) -> Result<Response, ApiError> {
    let (o, hunts) = state
        .with_reader(|s| {
            let counts = s.finding_counts()?;
            Ok((Overview::of(&counts), s.hunts()?.len()))
        })
        .await?;
    Ok(page(
        StatusCode::OK,
        "overview.html",
        minijinja::context! {
            session => viewer(Some(&v)),
            verdict => o.verdict(),
            o => minijinja::Value::from_serialize(&o),
            hunts => hunts,
            bar_width => BAR_WIDTH,
        },
    ))
}

/// `GET /feeds`: every feed with its versions, indicators by kind and
/// validity coverage (the same [`feed_detail`](crate::api::feed_detail)
/// as `GET /api/v1/feeds/{name}`).
pub async fn feeds_page(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
) -> Result<Response, ApiError> {
    let now = jiff::Timestamp::now();
    let feeds = state
        .with_reader(move |s| {
            let mut out = Vec::new();
            for f in s.list_feeds()? {
                if let Some(d) = crate::api::feed_detail(s, &f.name, now)? {
                    out.push(d);
                }
            }
            Ok(out)
        })
        .await?;
    Ok(page(
        StatusCode::OK,
        "feeds.html",
        minijinja::context! {
            session => viewer(Some(&v)),
            feeds => minijinja::Value::from_serialize(&feeds),
            now => now.to_string(),
        },
    ))
}

/// A row of the hunts page: the summary and what the coverage adds up to.
#[derive(Debug, Clone, Serialize)]
pub struct HuntRow {
    pub id: i64,
    pub started: Option<jiff::Timestamp>,
    pub finished: Option<jiff::Timestamp>,
    pub findings: u64,
    pub inputs: usize,
    pub records: u64,
    pub parsed: u64,
    pub rejected: u64,
    /// Earliest and latest event time over all inputs.
    pub first_time: Option<jiff::Timestamp>,
    pub last_time: Option<jiff::Timestamp>,
    pub gaps: usize,
}

impl HuntRow {
    fn of(d: &crate::api::HuntDetail) -> HuntRow {
        let c = &d.hunt.coverage;
        let (first_time, last_time) = c.time_range();
        HuntRow {
            id: d.hunt.summary.id,
            started: d.hunt.summary.started,
            finished: d.hunt.summary.finished,
            findings: d.hunt.summary.findings,
            inputs: c.inputs.len(),
            records: c.inputs.iter().map(|i| i.records).sum(),
            parsed: c.inputs.iter().map(|i| i.parsed).sum(),
            rejected: c.inputs.iter().map(|i| i.rejected).sum(),
            first_time,
            last_time,
            gaps: d.gaps.len(),
        }
    }
}

/// `GET /hunts`: every hunt with its coverage in numbers, newest first.
/// Each hunt's coverage is read (one row each): a store keeps hundreds of
/// hunts, not millions.
pub async fn hunts_page(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
) -> Result<Response, ApiError> {
    let rows = state
        .with_reader(|s| {
            let mut out = Vec::new();
            for h in s.hunts()?.iter().rev() {
                if let Some(d) = crate::api::hunt_detail(s, h.id)? {
                    out.push(HuntRow::of(&d));
                }
            }
            Ok(out)
        })
        .await?;
    Ok(page(
        StatusCode::OK,
        "hunts.html",
        minijinja::context! {
            session => viewer(Some(&v)),
            hunts => minijinja::Value::from_serialize(&rows),
        },
    ))
}

/// `GET /hunts/{id}`: one hunt's inputs, feeds and coverage gaps (the same
/// [`hunt_detail`](crate::api::hunt_detail) as `GET /api/v1/hunts/{id}`).
pub async fn hunt_page(
    State(state): State<AppState>,
    Extension(v): Extension<Viewer>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let d = state
        .with_reader(move |s| {
            crate::api::hunt_detail(s, id)?
                .ok_or_else(|| ApiError::NotFound(format!("no hunt {id} in the store")))
        })
        .await?;
    let row = HuntRow::of(&d);
    let args = serde_json::to_string(&d.hunt.summary.args).unwrap_or_default();
    Ok(page(
        StatusCode::OK,
        "hunt.html",
        minijinja::context! {
            session => viewer(Some(&v)),
            h => minijinja::Value::from_serialize(&row),
            d => minijinja::Value::from_serialize(&d),
            args => args,
        },
    ))
}

/// `GET /hunts/{id}/report`: the HTML report of one hunt, rendered by the
/// report sink of `orbwatch report --hunt N --format html` (its findings,
/// dismissed ones listed apart, and its coverage), sent with
/// [`REPORT_CSP`].
pub async fn hunt_report(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let input = state
        .with_reader(move |s| {
            let hunt = s
                .hunt(Some(id))?
                .ok_or_else(|| ApiError::NotFound(format!("no hunt {id} in the store")))?;
            // Dismissed findings are always fetched: the HTML lists them apart.
            let findings = s
                .findings(&FindingFilter {
                    hunt: Some(id),
                    show_suppressed: true,
                    ..Default::default()
                })?
                .into_iter()
                .map(orbwatch_report::ReportFinding::from_stored)
                .collect();
            Ok(orbwatch_report::ReportInput {
                findings,
                include_dismissed: false,
                include_internal: false,
                coverage: Some(hunt.coverage),
                // The default of `orbwatch report --org`.
                org: "orbwatch user".into(),
                generated: jiff::Timestamp::now(),
                source: format!("hunt #{id} in the store"),
                routers: orbwatch_report::router_stories(s)?,
            })
        })
        .await?;
    let html = orbwatch_report::html::render(&input);
    let mut r = (StatusCode::OK, Html(html)).into_response();
    secure_headers(r.headers_mut());
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(REPORT_CSP),
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    /// The stylesheet is pasted into a `<style>` element unescaped: a `<`
    /// in it could close the element early (`</style>`) and turn the rest
    /// into markup.
    #[test]
    fn the_stylesheet_cannot_close_its_element() {
        assert!(!super::STYLESHEET.contains('<'));
    }
}
