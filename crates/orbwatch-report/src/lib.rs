//! Sinks: findings as JSON lines, CSV or a terminal table, and the coverage
//! summary. Later: HTML, STIX 2.1, MISP and blocklists.

pub mod coverage_text;
pub mod findings;

pub use coverage_text::write_coverage_text;
pub use findings::{OutputFormat, write_findings};
