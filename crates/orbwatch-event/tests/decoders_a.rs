//! Tests for the part-A decoders (Zeek TSV/JSON, Suricata EVE, web access
//! and error logs, generic CSV/JSON, text) on real files: exact counts,
//! field values, and, record by record, the addresses an independent scan
//! of the raw line finds.

#[path = "decoders_a/common.rs"]
mod common;
#[path = "decoders_a/eve.rs"]
mod eve;
#[path = "decoders_a/misc.rs"]
mod misc;
#[path = "decoders_a/web.rs"]
mod web;
#[path = "decoders_a/zeek.rs"]
mod zeek;
