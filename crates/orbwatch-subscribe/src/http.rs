//! HTTP(S) downloads: conditional requests, timeouts, retries with backoff
//! and a size limit, over rustls with the system's roots (plus a CA file).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use crate::auth::AuthError;

/// How to download.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// Connect timeout, and the longest wait for any one read.
    pub timeout: Duration,
    /// Retries after the first attempt, for errors that may pass
    /// (connection, timeout, 5xx, 429).
    pub retries: u32,
    /// Wait before the first retry; doubled after each.
    pub retry_wait: Duration,
    /// Largest body accepted, in bytes (after decompression).
    pub max_bytes: u64,
    /// Extra trusted CA certificates (PEM), besides the system's.
    pub ca_file: Option<PathBuf>,
    /// Headers sent with every request (already resolved).
    pub headers: Vec<(String, String)>,
    /// Refuse plain http, redirects included (for an https source, so that
    /// a redirect cannot downgrade it).
    pub https_only: bool,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            timeout: Duration::from_secs(30),
            retries: 3,
            retry_wait: Duration::from_secs(2),
            max_bytes: 256 * 1024 * 1024,
            ca_file: None,
            headers: Vec::new(),
            https_only: false,
        }
    }
}

/// What a GET gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// 304: what we have is current.
    NotModified,
    Body {
        bytes: Vec<u8>,
        etag: Option<String>,
        last_modified: Option<String>,
        /// All response headers, lower-case names (TAXII puts its
        /// date-added range there).
        headers: Vec<(String, String)>,
    },
}

/// Why a download failed. Each names the URL and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "TLS: the server certificate of {url} was refused ({detail}); if it uses a private CA, pass --ca-file CA.pem"
    )]
    Certificate { url: String, detail: String },
    #[error("{url}: the server answered HTTP {status}{hint}")]
    Status {
        url: String,
        status: u16,
        hint: String,
    },
    #[error(
        "{url}: the response is larger than the limit of {limit} bytes{declared}; it was cut there and not loaded (raise --max-size if the feed is really that big)"
    )]
    TooLarge {
        url: String,
        limit: u64,
        declared: String,
    },
    #[error("{url}: {detail} (after {attempts} attempt{s})", s = if *attempts == 1 { "" } else { "s" })]
    Network {
        url: String,
        detail: String,
        attempts: u32,
    },
    #[error("cannot read the CA file {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl FetchError {
    fn retryable(&self) -> bool {
        match self {
            FetchError::Status { status, .. } => *status >= 500 || *status == 429,
            FetchError::Network { .. } => true,
            _ => false,
        }
    }
}

/// A configured HTTP client.
pub struct HttpClient {
    agent: ureq::Agent,
    cfg: FetchConfig,
}

/// The system's trusted roots, plus those of `ca_file`.
fn root_certs(ca_file: Option<&Path>) -> Result<Vec<Certificate<'static>>, FetchError> {
    let native = rustls_native_certs::load_native_certs();
    if !native.errors.is_empty() {
        tracing::debug!(errors = ?native.errors, "some system CA certificates could not be read");
    }
    let mut certs: Vec<Certificate<'static>> = native
        .certs
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    if let Some(path) = ca_file {
        let fail = |reason: String| FetchError::CaFile {
            path: path.to_path_buf(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        let mut n = 0;
        for item in ureq::tls::parse_pem(&pem) {
            match item.map_err(|e| fail(format!("not PEM ({e})")))? {
                PemItem::Certificate(c) => {
                    certs.push(c);
                    n += 1;
                }
                _ => continue,
            }
        }
        if n == 0 {
            return Err(fail(
                "it holds no certificate (expected -----BEGIN CERTIFICATE-----)".into(),
            ));
        }
    }
    Ok(certs)
}

impl HttpClient {
    pub fn new(cfg: FetchConfig) -> Result<HttpClient, FetchError> {
        let roots = root_certs(cfg.ca_file.as_deref())?;
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::new_with_certs(&roots))
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(cfg.timeout))
            .timeout_recv_response(Some(cfg.timeout))
            .timeout_per_read(Some(cfg.timeout))
            .max_redirects(5)
            .https_only(cfg.https_only)
            .user_agent(concat!("orbwatch/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .build()
            .into();
        Ok(HttpClient { agent, cfg })
    }

    pub fn config(&self) -> &FetchConfig {
        &self.cfg
    }

    /// GET `url`, with `If-None-Match`/`If-Modified-Since` when given, and
    /// `extra` headers. Retries what may pass, waiting `retry_wait`, then
    /// twice as long, and so on.
    pub fn get(
        &self,
        url: &str,
        etag: Option<&str>,
        last_modified: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Result<Fetched, FetchError> {
        self.with_retries(url, |attempt| {
            self.get_once(url, etag, last_modified, extra, attempt)
        })
    }

    /// Run `request` (given the attempt number, from 1) until it succeeds,
    /// fails for good, or `retries` more attempts have failed; the wait
    /// between attempts doubles from `retry_wait`, up to 5 minutes.
    fn with_retries(
        &self,
        url: &str,
        mut request: impl FnMut(u32) -> Result<Fetched, FetchError>,
    ) -> Result<Fetched, FetchError> {
        let mut wait = self.cfg.retry_wait;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match request(attempt) {
                Ok(f) => return Ok(f),
                Err(e) if e.retryable() && attempt <= self.cfg.retries => {
                    tracing::warn!(url, attempt, error = %e, "request failed; retrying in {wait:?}");
                    std::thread::sleep(wait);
                    wait = wait.saturating_mul(2).min(Duration::from_secs(300));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// POST a JSON body (MISP's restSearch), with the same retries and
    /// limits as [`HttpClient::get`].
    pub fn post_json(
        &self,
        url: &str,
        body: &[u8],
        extra: &[(&str, &str)],
    ) -> Result<Fetched, FetchError> {
        self.with_retries(url, |attempt| {
            let mut req = self
                .agent
                .post(url)
                .header("Content-Type", "application/json");
            for (k, v) in &self.cfg.headers {
                req = req.header(k.as_str(), v.as_str());
            }
            for (k, v) in extra {
                req = req.header(*k, *v);
            }
            self.finish(url, req.send(body), attempt)
        })
    }

    fn get_once(
        &self,
        url: &str,
        etag: Option<&str>,
        last_modified: Option<&str>,
        extra: &[(&str, &str)],
        attempt: u32,
    ) -> Result<Fetched, FetchError> {
        let mut req = self.agent.get(url);
        for (k, v) in &self.cfg.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        if let Some(e) = etag {
            req = req.header("If-None-Match", e);
        }
        if let Some(lm) = last_modified {
            req = req.header("If-Modified-Since", lm);
        }
        self.finish(url, req.call(), attempt)
    }

    fn finish(
        &self,
        url: &str,
        res: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        attempt: u32,
    ) -> Result<Fetched, FetchError> {
        let resp = res.map_err(|e| classify(url, e, attempt))?;
        let status = resp.status().as_u16();
        if status == 304 {
            return Ok(Fetched::NotModified);
        }
        if !(200..300).contains(&status) {
            let hint = match status {
                401 | 403 => "; check the credentials (--token-env, --token-file, --header)",
                404 => "; check the URL",
                s if s >= 500 => "; the server failed, try again later",
                _ => "",
            };
            return Err(FetchError::Status {
                url: url.to_string(),
                status,
                hint: hint.to_string(),
            });
        }
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    k.as_str().to_ascii_lowercase(),
                    v.to_str().ok()?.to_string(),
                ))
            })
            .collect();
        let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let limit = self.cfg.max_bytes;
        let too_large = |declared: String| FetchError::TooLarge {
            url: url.to_string(),
            limit,
            declared,
        };
        // A declared length over the limit is refused before any byte of
        // the body is read.
        if let Some(len) = header("content-length").and_then(|v| v.trim().parse::<u64>().ok())
            && len > limit
            && header("content-encoding").is_none()
        {
            return Err(too_large(format!(" (it declares {len} bytes)")));
        }
        let etag_out = header("etag");
        let last_modified_out = header("last-modified");
        let reader = resp.into_body().into_with_config().limit(u64::MAX).reader();
        let mut bytes = Vec::new();
        let mut limited = reader.take(limit.saturating_add(1));
        limited
            .read_to_end(&mut bytes)
            .map_err(|e| FetchError::Network {
                url: url.to_string(),
                detail: format!("reading the response failed: {e}"),
                attempts: attempt,
            })?;
        if bytes.len() as u64 > limit {
            return Err(too_large(String::new()));
        }
        Ok(Fetched::Body {
            bytes,
            etag: etag_out,
            last_modified: last_modified_out,
            headers,
        })
    }
}

fn classify(url: &str, e: ureq::Error, attempt: u32) -> FetchError {
    let cert = |detail: String| FetchError::Certificate {
        url: url.to_string(),
        detail,
    };
    match e {
        ureq::Error::Rustls(r) => cert(r.to_string()),
        ureq::Error::Io(io) => {
            // rustls reports certificate failures through io errors too.
            let inner = io
                .get_ref()
                .and_then(|i| i.downcast_ref::<ureq::Error>())
                .map(|x| x.to_string());
            let text = inner.unwrap_or_else(|| io.to_string());
            if text.contains("certificate") || text.contains("UnknownIssuer") {
                cert(text)
            } else {
                FetchError::Network {
                    url: url.to_string(),
                    detail: text,
                    attempts: attempt,
                }
            }
        }
        other => {
            let text = other.to_string();
            if text.contains("certificate") {
                cert(text)
            } else {
                FetchError::Network {
                    url: url.to_string(),
                    detail: text,
                    attempts: attempt,
                }
            }
        }
    }
}
