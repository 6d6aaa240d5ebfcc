//! The compiled index (in progress).
use jiff::Timestamp;

/// Validity window of a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowInfo {
    pub from: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

/// One indicator that matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchRef {
    pub indicator: u32,
    pub window: WindowInfo,
}

#[derive(Default)]
pub struct IndexBuilder;

#[derive(Default)]
pub struct Index;
