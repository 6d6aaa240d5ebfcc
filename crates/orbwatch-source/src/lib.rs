//! orbwatch-source (in progress).
