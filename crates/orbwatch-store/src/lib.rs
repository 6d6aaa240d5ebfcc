//! orbwatch-store (in progress).
