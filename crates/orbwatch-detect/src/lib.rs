//! The orbwatch engine: IOC matching aware of time and direction, and
//! aggregation of sightings into [`Finding`]s, and behaviour detectors
//! ([`behaviour`]) with address enrichment ([`enrich`]), so that `hunt` and
//! `watch` share one engine.

pub mod aggregate;
pub mod behaviour;
pub mod coverage;
pub mod direction;
pub mod enrich;
pub mod finding;
pub mod ioc;

pub use aggregate::{Aggregator, OutputOrder, OwnedSighting};
pub use coverage::{BehaviourCoverage, Coverage, FeedCoverage, InputCoverage};
pub use direction::InternalNets;
pub use finding::{
    Direction, Evidence, Finding, FindingKind, IocDetails, Outcome, Outcomes, Severity,
    ValidityWindow, most_serious_first,
};
pub use ioc::{FeedSpan, IndicatorMeta, IndicatorView, IocEngine, IocEngineBuilder, MatchScratch};
