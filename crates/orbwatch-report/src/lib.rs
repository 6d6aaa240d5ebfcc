//! Sinks: findings as JSON lines, CSV or a terminal table, the coverage
//! summary, and the reports made after a hunt: a self-contained HTML report
//! for people, a STIX 2.1 bundle and MISP sightings/events for CERTs and
//! threat-intel platforms, and a CSV for spreadsheets.

pub mod coverage_gaps;
pub mod coverage_text;
pub mod findings;
pub mod html;
pub mod misp;
pub mod model;
pub mod report_csv;
pub mod stix;
pub mod terminal;

pub use coverage_text::write_coverage_text;
pub use findings::{OutputFormat, write_findings};
pub use model::{ReportFinding, ReportInput, RouterStory, Triage, router_stories};
pub use report_csv::write_report_csv;
