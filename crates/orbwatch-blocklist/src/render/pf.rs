//! pf: a table file, one address or network per line, for
//! `table <orbwatch> persist file "FILE"` or `pfctl -t orbwatch -T replace -f FILE`.
//! pf tables have no per-entry timeouts.

use std::fmt::Write as _;

use super::{RenderOptions, Target, header, short};
use crate::build::Blocklist;

pub fn render(list: &Blocklist, opts: &RenderOptions) -> String {
    let mut out = header(list, Target::Pf, "# ");
    let _ = writeln!(
        out,
        "# load with: pfctl -t {} -T replace -f FILE",
        opts.name
    );
    for e in &list.entries {
        let _ = writeln!(out, "{}", short(&e.net));
    }
    out
}
