//! orbwatch-report (in progress).
