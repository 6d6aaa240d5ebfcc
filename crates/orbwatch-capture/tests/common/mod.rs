//! Helpers shared by the capture tests: finding the corpus, collecting
//! events.
#![allow(dead_code)]

use std::path::PathBuf;

use orbwatch_capture::Emitted;

/// `../shared/corpus`, found by walking up from the crate; `None` (and a
/// `skipped:` line) when it is absent.
pub fn corpus() -> Option<PathBuf> {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    loop {
        let c = dir.join("shared/corpus");
        if c.is_dir() {
            return Some(c);
        }
        if !dir.pop() {
            println!("skipped: ../shared/corpus not found");
            return None;
        }
    }
}

/// Run a reader over a file and collect what it emits.
pub fn collect<F>(f: F) -> (Vec<Emitted>, orbwatch_capture::Coverage)
where
    F: FnOnce(&mut dyn FnMut(Emitted)) -> orbwatch_capture::Coverage,
{
    let mut out = Vec::new();
    let cov = f(&mut |e| out.push(e));
    (out, cov)
}
