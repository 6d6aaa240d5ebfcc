//! Request extractors of the JSON API whose refusals are JSON error
//! bodies with a status the OpenAPI document declares. axum's own
//! `Query`, `Path` and `Json` refuse in plain text, which a client
//! generated from the document (and schemathesis) cannot read.
//!
//! Query parameters given empty (`?since=&kind=`, as an HTML form sends
//! its blank fields) are taken as absent.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Json, Path, Query, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// `Query<T>` with blank parameters dropped and JSON refusals (400).
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        query_from(parts.uri.query().unwrap_or("")).map(ApiQuery)
    }
}

/// Read a query string (without `?`) as `T`, blank parameters dropped.
pub fn query_from<T: DeserializeOwned>(raw: &str) -> Result<T, ApiError> {
    let kept: Vec<&str> = raw
        .split('&')
        .filter(|p| !p.is_empty() && !p.ends_with('='))
        .collect();
    let uri: axum::http::Uri = format!("/?{}", kept.join("&"))
        .parse()
        .map_err(|_| ApiError::BadRequest("the query string is not valid".into()))?;
    Query::<T>::try_from_uri(&uri)
        .map(|Query(v)| v)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

/// `Path<T>` with JSON refusals (400).
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// `Json<T>` with JSON refusals: 415 without `Content-Type:
/// application/json`, 400 for a body that is not the expected JSON.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::MissingJsonContentType(e)) => {
                Err(ApiError::UnsupportedMediaType(e.body_text()))
            }
            Err(JsonRejection::BytesRejection(e)) if e.status().as_u16() == 413 => {
                Err(ApiError::TooLarge(e.body_text()))
            }
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}
