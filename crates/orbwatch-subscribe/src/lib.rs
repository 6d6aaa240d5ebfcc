//! Feed subscriptions: fetch a feed from where it is published (HTTPS,
//! TAXII 2.1, MISP) and store each change as a new feed version, exactly as
//! `orbwatch feed add` does with a file.
//!
//! This crate only fetches. The bytes go to the readers of
//! `orbwatch-intel`, the versioning and diff to `orbwatch-store`
//! ([`orbwatch_store::Store::import_feed`]). What is kept between fetches
//! (ETag, Last-Modified, the TAXII `added_after` cursor, the MISP timestamp)
//! lives in the subscription's state in the store.
//!
//! Guarantees:
//! - An unchanged HTTP feed costs one conditional request answered 304, and
//!   makes no version.
//! - A failed update (network, TLS, HTTP error, over the size limit,
//!   unreadable content) makes no version: the last good one stays, and the
//!   failure is recorded in the subscription state and reported.
//! - Credentials are never stored: a subscription names the environment
//!   variable or the 0600 file that holds them.

pub mod auth;
pub mod http;
pub mod misp;
pub mod source;
pub mod spec;
pub mod taxii;
pub mod update;

pub use auth::{Credential, HeaderSpec};
pub use http::{FetchConfig, FetchError, Fetched, HttpClient};
pub use source::{Source, SourceError};
pub use spec::{SubscriptionSpec, SubscriptionState};
pub use update::{SubscribeError, UpdateOutcome, subscribe, update};
