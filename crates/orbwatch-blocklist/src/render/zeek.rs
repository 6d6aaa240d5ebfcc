//! zeek-intel: a file for the Zeek intelligence framework
//! (`Intel::read_files`): `Intel::ADDR` for single addresses and
//! `Intel::SUBNET` for networks, with the end of validity in `meta.desc`.

use std::fmt::Write as _;

use super::{RenderOptions, Target, header, short, until_text};
use crate::build::Blocklist;

pub fn render(list: &Blocklist, opts: &RenderOptions) -> String {
    let mut out = header(list, Target::ZeekIntel, "# ");
    out.push_str("#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\n");
    for e in &list.entries {
        let ty = if e.net.prefix_len() == e.net.max_prefix_len() {
            "Intel::ADDR"
        } else {
            "Intel::SUBNET"
        };
        let desc = match until_text(e) {
            Some(u) => format!("orbwatch blocklist, valid until {u}"),
            None => "orbwatch blocklist".to_string(),
        };
        let _ = writeln!(out, "{}\t{ty}\t{}\t{desc}", short(&e.net), opts.name);
    }
    out
}
