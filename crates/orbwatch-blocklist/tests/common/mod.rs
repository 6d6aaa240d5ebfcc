//! Helpers shared by the blocklist tests: read a feed with orbwatch-intel,
//! select, build under the default guard, and run external tools with the
//! project's skip rule.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use jiff::{SignedDuration, Timestamp};
use orbwatch_blocklist::{Blocklist, BuildOptions, Guard, SelectOptions, Selection, Widen, build};

pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

pub fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

pub fn ts(s: &str) -> Timestamp {
    orbwatch_intel::time::parse_timestamp(s).expect("a time")
}

pub fn select_opts(at: Timestamp) -> SelectOptions {
    SelectOptions {
        at,
        min_confidence: 0,
        finding_ttl: SignedDuration::from_hours(24 * 7),
        min_score: 50,
    }
}

pub fn build_opts(at: Timestamp) -> BuildOptions {
    BuildOptions {
        max_prefix4: 16,
        max_prefix6: 32,
        force_wide: false,
        widen: None,
        timeout_base: at,
        at_given: Some(at),
    }
}

pub fn default_guard() -> Guard {
    let mut g = Guard::with_special_ranges();
    g.add_default_allowlist();
    g.finish();
    g
}

/// Select every indicator of a feed file (read with orbwatch-intel) valid
/// at `at`.
pub fn select_file(path: &Path, at: Timestamp) -> Selection {
    let bytes = std::fs::read(path).expect("read feed");
    let name = path.file_stem().unwrap().to_string_lossy().into_owned();
    let opts = orbwatch_intel::ReadOptions::new(name.clone());
    let parsed = orbwatch_intel::read_feed(&bytes, &name, None, &opts).expect("parse feed");
    let mut sel = Selection::new(select_opts(at), None);
    for ind in &parsed.indicators {
        sel.add_indicator(ind, &name);
    }
    sel
}

pub fn build_file(path: &Path, at: Timestamp, widen: Option<Widen>) -> Blocklist {
    let sel = select_file(path, at);
    let mut o = build_opts(at);
    o.widen = widen;
    build(&sel, &default_guard(), &o).expect("build")
}

/// The fixture's reference time.
pub fn fixture_at() -> Timestamp {
    ts("2026-02-01T00:00:00Z")
}

pub fn fixture() -> Blocklist {
    build_file(&data("small-feed.csv"), fixture_at(), None)
}

/// An empty blocklist (nothing selected).
pub fn empty() -> Blocklist {
    let sel = Selection::new(select_opts(fixture_at()), None);
    build(&sel, &default_guard(), &build_opts(fixture_at())).expect("build")
}

/// Path of an external tool, or None (after printing the skip line) when
/// it is missing. With ORBWATCH_REQUIRE_TOOLS=1 a missing tool fails.
pub fn tool(name: &str) -> Option<PathBuf> {
    for dir in [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/bin",
        "/usr/local/sbin",
    ] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return Some(p);
        }
    }
    if std::env::var("ORBWATCH_REQUIRE_TOOLS").as_deref() == Ok("1") {
        panic!("{name} not installed and ORBWATCH_REQUIRE_TOOLS=1");
    }
    println!("skipped: {name} not installed");
    None
}
