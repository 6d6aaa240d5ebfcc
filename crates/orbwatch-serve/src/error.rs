//! Errors of the server: [`ServeError`] at start, [`ApiError`] per request
//! (turned into a JSON body with the right status).

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// What stops the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A clear-text listener beyond loopback was asked for.
    #[error(
        "refusing to serve on {addr} without TLS: tokens and findings would cross the network in clear; listen on 127.0.0.1 or ::1 behind a TLS proxy, or pass --insecure-listen if the network is trusted"
    )]
    InsecureListen { addr: SocketAddr },
    /// The configuration file could not be read or parsed.
    #[error("{path}: {reason}; fix the file (see examples/serve.toml)")]
    Config { path: PathBuf, reason: String },
    /// The TLS certificate or key could not be used.
    #[error("{0}; check --tls-cert and --tls-key (PEM files)")]
    Tls(String),
    /// The store's read-only connections could not be opened.
    #[error("{0}")]
    Store(#[from] orbwatch_store::StoreError),
    /// The folder for feed uploads cannot be used.
    #[error(
        "the upload spool folder {}: {reason}; create it or set upload_spool_dir in the configuration",
        dir.display()
    )]
    Spool { dir: PathBuf, reason: String },
    /// The guard of an EDL could not be built.
    #[error("EDL `{list}`: {source}")]
    Guard {
        list: String,
        #[source]
        source: orbwatch_blocklist::GuardSetupError,
    },
}

/// A request that failed; the body is `{"error": "..."}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error(
        "a valid token is needed: send `Authorization: Bearer TOKEN` (`orbwatch token create`)"
    )]
    Unauthorized,
    #[error("this token's scope ({have}) does not allow this; a `{need}` token is needed")]
    Forbidden { have: String, need: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    TooLarge(String),
    /// Details go to the log, not to the client.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<orbwatch_store::StoreError> for ApiError {
    fn from(e: orbwatch_store::StoreError) -> Self {
        match e {
            orbwatch_store::StoreError::UnknownFinding { .. }
            | orbwatch_store::StoreError::UnknownFeed { .. } => ApiError::NotFound(e.to_string()),
            e if e.is_busy() => ApiError::Unavailable(format!("the store is busy ({e}); retry")),
            e => ApiError::Internal(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let msg = match &self {
            ApiError::Internal(detail) => {
                tracing::error!("{detail}");
                "internal error; the server's log has the details".to_string()
            }
            other => other.to_string(),
        };
        let mut resp = (status, axum::Json(serde_json::json!({ "error": msg }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"orbwatch\""),
            );
        }
        resp
    }
}
