//! HTTP(S) downloads: conditional requests, timeouts, retries with backoff
//! and a size limit, over rustls with the system's roots (plus a CA file).

use std::io::{Read, Write};
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

/// The prefix of the temporary files [`HttpClient::get_to_file`] writes
/// a download to (in the store's folder): one left by a killed process
/// can be recognised as such and removed.
pub const FETCH_SPOOL_PREFIX: &str = ".orbwatch-fetch-";

/// How long a spool file must have gone unwritten before an update takes
/// it for a leftover of a killed process ([`remove_stale_fetch_files`]).
/// A download in progress writes at least once per read timeout, and the
/// import that reads it back afterwards takes minutes, not a day; even a
/// file removed while it is read only fails that update (nothing stored).
pub const STALE_FETCH_AGE: Duration = Duration::from_secs(24 * 3600);

/// Remove the download spool files ([`FETCH_SPOOL_PREFIX`]…`.part`) in
/// `dir` not written for longer than `older_than`: what a `feed update`
/// killed during its download or import left (every other way out removes
/// its file). Each removal is a warning: that download was not stored. A
/// file that cannot be removed is a warning, never a reason to fail the
/// update. Returns how many were removed.
pub fn remove_stale_fetch_files(
    dir: &Path,
    older_than: Duration,
    now: std::time::SystemTime,
) -> usize {
    let Ok(swept) =
        orbwatch_feedload::spool::remove_stale(dir, FETCH_SPOOL_PREFIX, older_than, now)
    else {
        return 0;
    };
    for path in &swept.removed {
        tracing::warn!(
            file = %path.display(),
            "removed a feed download left by a `feed update` that stopped without \
             finishing (killed); that download was not stored"
        );
    }
    for (path, e) in &swept.failed {
        tracing::warn!(file = %path.display(), "cannot remove an old feed download: {e}");
    }
    swept.removed.len()
}

/// What [`HttpClient::get_to_file`] gave.
#[derive(Debug)]
pub enum Downloaded {
    /// 304: what we have is current.
    NotModified,
    /// The body, in a temporary file removed when this is dropped.
    File {
        file: tempfile::TempPath,
        /// Bytes written (after decompression).
        bytes: u64,
        etag: Option<String>,
        last_modified: Option<String>,
    },
}

/// A 2xx response whose body is still to be read.
struct Accepted {
    body: ureq::Body,
    etag: Option<String>,
    last_modified: Option<String>,
    headers: Vec<(String, String)>,
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
    #[error(
        "{url}: the download could not be written to a temporary file in {} ({reason}); free space there",
        dir.display()
    )]
    Spool {
        url: String,
        dir: PathBuf,
        reason: String,
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
        let req = self.request_get(url, etag, last_modified, extra);
        self.finish(url, req.call(), attempt)
    }

    /// A GET with the configured headers, `extra`, and the validators.
    fn request_get(
        &self,
        url: &str,
        etag: Option<&str>,
        last_modified: Option<&str>,
        extra: &[(&str, &str)],
    ) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
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
        req
    }

    /// The status and headers of a response: a 304, or a 2xx whose body
    /// is still to be read (a declared length over the limit refused
    /// already). Anything else is an error.
    fn accept(
        &self,
        url: &str,
        res: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        attempt: u32,
    ) -> Result<Option<Accepted>, FetchError> {
        let resp = res.map_err(|e| classify(url, e, attempt))?;
        let status = resp.status().as_u16();
        if status == 304 {
            return Ok(None);
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
        // A declared length over the limit is refused before any byte of
        // the body is read.
        if let Some(len) = header("content-length").and_then(|v| v.trim().parse::<u64>().ok())
            && len > limit
            && header("content-encoding").is_none()
        {
            return Err(self.too_large(url, format!(" (it declares {len} bytes)")));
        }
        let etag = header("etag");
        let last_modified = header("last-modified");
        Ok(Some(Accepted {
            body: resp.into_body(),
            etag,
            last_modified,
            headers,
        }))
    }

    fn too_large(&self, url: &str, declared: String) -> FetchError {
        FetchError::TooLarge {
            url: url.to_string(),
            limit: self.cfg.max_bytes,
            declared,
        }
    }

    fn finish(
        &self,
        url: &str,
        res: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        attempt: u32,
    ) -> Result<Fetched, FetchError> {
        let Some(Accepted {
            body,
            etag,
            last_modified,
            headers,
        }) = self.accept(url, res, attempt)?
        else {
            return Ok(Fetched::NotModified);
        };
        let limit = self.cfg.max_bytes;
        let reader = body.into_with_config().limit(u64::MAX).reader();
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
            return Err(self.too_large(url, String::new()));
        }
        Ok(Fetched::Body {
            bytes,
            etag,
            last_modified,
            headers,
        })
    }

    /// GET `url` like [`HttpClient::get`], writing the body (decompressed)
    /// to a new temporary file in `spool_dir` as it arrives instead of
    /// into memory: a feed of a gigabyte costs disk, not RAM. The file is
    /// named [`FETCH_SPOOL_PREFIX`]…`.part`, so that one left by a killed
    /// process is recognisable, and is removed when the returned
    /// [`Downloaded::File`] is dropped, and on every failure (too large, a
    /// connection cut, a full disk). A retry starts a new file.
    pub fn get_to_file(
        &self,
        url: &str,
        etag: Option<&str>,
        last_modified: Option<&str>,
        spool_dir: &Path,
    ) -> Result<Downloaded, FetchError> {
        let mut wait = self.cfg.retry_wait;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let res = self.request_get(url, etag, last_modified, &[]).call();
            let outcome = self
                .accept(url, res, attempt)
                .and_then(|accepted| match accepted {
                    None => Ok(Downloaded::NotModified),
                    Some(a) => self.spool(url, a, spool_dir, attempt),
                });
            match outcome {
                Ok(d) => return Ok(d),
                Err(e) if e.retryable() && attempt <= self.cfg.retries => {
                    tracing::warn!(url, attempt, error = %e, "request failed; retrying in {wait:?}");
                    std::thread::sleep(wait);
                    wait = wait.saturating_mul(2).min(Duration::from_secs(300));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Copy an accepted response's body into a new spool file, counting
    /// against `max_bytes`. Memory is that of one buffer.
    fn spool(
        &self,
        url: &str,
        accepted: Accepted,
        spool_dir: &Path,
        attempt: u32,
    ) -> Result<Downloaded, FetchError> {
        let cannot = |what: &str, e: std::io::Error| FetchError::Spool {
            url: url.to_string(),
            dir: spool_dir.to_path_buf(),
            reason: format!("{what}: {e}"),
        };
        let mut file = tempfile::Builder::new()
            .prefix(FETCH_SPOOL_PREFIX)
            .suffix(".part")
            .tempfile_in(spool_dir)
            .map_err(|e| cannot("creating it", e))?;
        let limit = self.cfg.max_bytes;
        let mut reader = accepted
            .body
            .into_with_config()
            .limit(u64::MAX)
            .reader()
            .take(limit.saturating_add(1));
        let mut buf = vec![0u8; 256 * 1024];
        let mut received: u64 = 0;
        {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, file.as_file_mut());
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(FetchError::Network {
                            url: url.to_string(),
                            detail: format!(
                                "reading the response failed after {received} bytes: {e}"
                            ),
                            attempts: attempt,
                        });
                    }
                };
                received += n as u64;
                if received > limit {
                    return Err(self.too_large(url, String::new()));
                }
                out.write_all(&buf[..n]).map_err(|e| cannot("writing", e))?;
            }
            // No fsync: the file is read back through the page cache and
            // deleted, never kept.
            out.flush().map_err(|e| cannot("writing", e))?;
        }
        Ok(Downloaded::File {
            file: file.into_temp_path(),
            bytes: received,
            etag: accepted.etag,
            last_modified: accepted.last_modified,
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
