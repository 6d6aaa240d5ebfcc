//! orbwatch-detect (in progress).
