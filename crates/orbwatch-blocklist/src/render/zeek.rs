//! zeek-intel: a file for the Zeek intelligence framework
//! (`Intel::read_files`): `Intel::ADDR` for single addresses and
//! `Intel::SUBNET` for networks. `meta.source` names the feeds (or
//! findings) the entry comes from, and `meta.desc` the actors they name and
//! the end of validity, so that a Zeek `intel.log` hit says who listed the
//! address and why without going back to orbwatch.

use std::fmt::Write as _;

use super::{RenderOptions, Target, header, short, until_text};
use crate::build::Blocklist;

pub fn render(list: &Blocklist, opts: &RenderOptions) -> String {
    let mut out = header(list, Target::ZeekIntel, "# ");
    out.push_str("#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\n");
    let provenance = list.provenance_of();
    for (e, (origins, actors)) in list.entries.iter().zip(provenance) {
        let ty = if e.net.prefix_len() == e.net.max_prefix_len() {
            "Intel::ADDR"
        } else {
            "Intel::SUBNET"
        };
        let source = if origins.is_empty() {
            opts.name.clone()
        } else {
            origins.join(",")
        };
        let mut desc = "orbwatch blocklist".to_string();
        if !actors.is_empty() {
            let _ = write!(desc, "; actor {}", actors.join(", "));
        }
        if let Some(u) = until_text(e) {
            let _ = write!(desc, "; valid until {u}");
        }
        let _ = writeln!(
            out,
            "{}\t{ty}\t{}\t{}",
            short(&e.net),
            field(&source),
            field(&desc)
        );
    }
    out
}

/// A value for one TSV field: no tab or line break, and `-` for empty
/// (Zeek's unset value).
fn field(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if t.trim().is_empty() { "-".into() } else { t }
}
