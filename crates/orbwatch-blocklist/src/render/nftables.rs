//! nftables: one `inet` table with an IPv4 and an IPv6 interval set (with
//! per-element timeouts) and input/forward/output chains that drop what
//! the sets hold. The file first declares then deletes the table, so that
//! `nft -f FILE` replaces a previous load atomically.

use std::fmt::Write as _;

use super::{OutFile, RenderOptions, Rendered, Target, cap_note, dhms, header, short};
use crate::build::{Blocklist, Entry};

/// Timeouts are capped at ten years: the kernel refuses values a little
/// beyond 100,000 days ("Numerical result out of range").
pub const NFT_MAX_TIMEOUT: u64 = 3650 * 86_400;

pub fn render(list: &Blocklist, opts: &RenderOptions) -> Rendered {
    let name = &opts.name;
    let mut out = header(list, Target::Nftables, "# ");
    let _ = writeln!(out, "# load with: nft -f FILE (replaces table inet {name})");
    let _ = writeln!(out, "table inet {name} {{\n}}\ndelete table inet {name}\n");
    let _ = writeln!(out, "table inet {name} {{");
    let mut capped = 0;
    capped += set(&mut out, list, "blocklist_v4", "ipv4_addr", list.v4());
    capped += set(&mut out, list, "blocklist_v6", "ipv6_addr", list.v6());
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
    Rendered {
        files: vec![OutFile {
            suffix: "",
            bytes: out.into_bytes(),
        }],
        notes: cap_note(Target::Nftables, capped, NFT_MAX_TIMEOUT, "ten years"),
    }
}

fn set<'a>(
    out: &mut String,
    list: &Blocklist,
    name: &str,
    ty: &str,
    entries: impl Iterator<Item = &'a Entry>,
) -> u64 {
    let mut capped = 0;
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
            capped += u64::from(t > NFT_MAX_TIMEOUT);
            let _ = write!(out, " timeout {}", dhms(t.min(NFT_MAX_TIMEOUT)));
        }
    }
    if !first {
        out.push_str("\n\t\t}\n");
    }
    let _ = writeln!(out, "\t}}");
    capped
}
