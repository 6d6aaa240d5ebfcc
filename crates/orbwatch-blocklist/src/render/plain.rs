//! plain: one address or network per line, nothing else. This is the
//! external dynamic list (EDL) format that Palo Alto, FortiGate and
//! pfSense fetch; those readers do not all accept comments, so there is no
//! header (the summary goes to stderr).

use std::fmt::Write as _;

use super::short;
use crate::build::Blocklist;

pub fn render(list: &Blocklist) -> String {
    let mut out = String::new();
    for e in &list.entries {
        let _ = writeln!(out, "{}", short(&e.net));
    }
    out
}
