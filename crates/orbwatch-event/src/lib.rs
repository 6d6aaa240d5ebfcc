//! Log events for orbwatch: the normalized [`Event`] and one decoder per
//! format, detected by content.
//!
//! Like `orbwatch-intel`, this crate does no I/O: decoders are handed one
//! record at a time by `orbwatch-source`.

pub mod decoders;
pub mod ipscan;
pub mod model;

pub use decoders::{DecodeError, Decoded, Decoder, DecoderConfig, DecoderInfo, REGISTRY};
pub use model::{Action, AddrRole, AuthOutcome, Event, EventKind, Origin, Proto};
