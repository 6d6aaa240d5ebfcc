//! Golden files: the small fixture (tests/data/small-feed.csv at
//! 2026-02-01) rendered for every target. Update on purpose with
//! `UPDATE_GOLDEN=1 cargo test -p orbwatch-blocklist --test golden`.

mod common;

use std::path::PathBuf;

use common::*;
use orbwatch_blocklist::{RenderOptions, Target, render};

fn golden_path(target: Target, suffix: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("small.{target}{suffix}"))
}

#[test]
fn every_target_matches_its_golden_file() {
    let list = fixture();
    let update = std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1");
    let mut mismatched = Vec::new();
    for target in Target::ALL {
        let r = render(target, &list, &RenderOptions::default());
        for f in &r.files {
            let path = golden_path(target, f.suffix);
            if update {
                std::fs::write(&path, &f.bytes).unwrap();
                continue;
            }
            let want = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
            if want != f.bytes {
                mismatched.push(path.display().to_string());
            }
        }
    }
    assert!(mismatched.is_empty(), "differ from golden: {mismatched:?}");
}

#[test]
fn rendering_is_deterministic() {
    for target in Target::ALL {
        let a = render(target, &fixture(), &RenderOptions::default());
        let b = render(target, &fixture(), &RenderOptions::default());
        assert_eq!(a, b, "{target}");
    }
}
