//! nftables: one `inet` table with an IPv4 and an IPv6 interval set (with
//! per-element timeouts) and input/forward/output chains that drop what
//! the sets hold. The file first declares then deletes the table, so that
//! `nft -f FILE` replaces a previous load atomically.

use std::fmt::Write as _;

use super::{RenderOptions, Target, dhms, header, short};
use crate::build::{Blocklist, Entry};

pub fn render(list: &Blocklist, opts: &RenderOptions) -> String {
    let name = &opts.name;
    let mut out = header(list, Target::Nftables, "# ");
    let _ = writeln!(out, "# load with: nft -f FILE (replaces table inet {name})");
    let _ = writeln!(out, "table inet {name} {{\n}}\ndelete table inet {name}\n");
    let _ = writeln!(out, "table inet {name} {{");
    set(&mut out, list, "blocklist_v4", "ipv4_addr", list.v4());
    set(&mut out, list, "blocklist_v6", "ipv6_addr", list.v6());
    let hooks = [
        ("input", &["saddr"][..]),
        ("forward", &["saddr", "daddr"][..]),
        ("output", &["daddr"][..]),
    ];
    for (hook, dirs) in hooks {
        let _ = writeln!(out, "\tchain {hook} {{");
        let _ = writeln!(
            out,
            "\t\ttype filter hook {hook} priority filter - 10; policy accept;"
        );
        for d in dirs {
            let _ = writeln!(out, "\t\tip {d} @blocklist_v4 drop");
            let _ = writeln!(out, "\t\tip6 {d} @blocklist_v6 drop");
        }
        let _ = writeln!(out, "\t}}");
    }
    out.push_str("}\n");
    out
}

fn set<'a>(
    out: &mut String,
    list: &Blocklist,
    name: &str,
    ty: &str,
    entries: impl Iterator<Item = &'a Entry>,
) {
    let _ = writeln!(out, "\tset {name} {{");
    let _ = writeln!(out, "\t\ttype {ty}");
    let _ = writeln!(out, "\t\tflags interval,timeout");
    let mut first = true;
    for e in entries {
        if first {
            let _ = writeln!(out, "\t\telements = {{");
            first = false;
        } else {
            out.push_str(",\n");
        }
        let _ = write!(out, "\t\t\t{}", short(&e.net));
        if let Some(t) = list.timeout_secs(e) {
            let _ = write!(out, " timeout {}", dhms(t));
        }
    }
    if !first {
        out.push_str("\n\t\t}\n");
    }
    let _ = writeln!(out, "\t}}");
}
