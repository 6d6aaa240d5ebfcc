//! Blocklists that firewalls and IDS load, and that can never lock their
//! owners out.
//!
//! The pipeline: [`select`] indicators and finding sources (by feed,
//! confidence, validity at a reference time, sightings, scores), [`build()`]
//! them into the smallest exact set of prefixes under a [`guard`] that
//! carves out internal, special-purpose and allowlisted ranges, then
//! [`render()`] one target format, or [`diff()`] against a previous export.
//! Interval arithmetic lives in [`span`].

pub mod build;
pub mod diff;
pub mod guard;
pub mod render;
pub mod select;
pub mod span;

pub use build::{Blocklist, BuildError, BuildOptions, Entry, Refusal, Widen, WidenedBlock, build};
pub use diff::{Diff, PreviousList, diff, parse_previous};
pub use guard::{AllowlistError, DEFAULT_ALLOWLIST, Guard, GuardSetupError};
pub use render::{OutFile, RenderOptions, Rendered, Target, render};
pub use select::{Candidate, SelectOptions, Selection, Sighted, Skip};
pub use span::{Expiry, Family};
