//! iptables: `iptables-restore --noflush` input for IPv4 (the main file) and
//! `ip6tables-restore --noflush` input for IPv6 (the `.v6` file). Both
//! fill one user chain (`ORBWATCH`) that drops traffic from and to listed
//! networks; declaring the chain flushes it, so reloading replaces the
//! list. Hook it once: `iptables -I INPUT -j ORBWATCH` (and FORWARD,
//! OUTPUT). iptables has no timeouts: the end of validity is kept as a
//! rule comment. For large lists prefer the ipset target.

use std::fmt::Write as _;

use super::{OutFile, RenderOptions, Rendered, Target, header, until_text};
use crate::build::{Blocklist, Entry};

pub fn render(list: &Blocklist, opts: &RenderOptions) -> Rendered {
    let chain = opts.name.to_ascii_uppercase();
    let file = |tool: &str, entries: Vec<&Entry>| {
        let mut out = header(list, Target::Iptables, "# ");
        let _ = writeln!(
            out,
            "# load with: {tool} --noflush < FILE; hook once with: {} -I INPUT -j {chain} (and FORWARD, OUTPUT)",
            tool.trim_end_matches("-restore")
        );
        let _ = writeln!(out, "*filter");
        let _ = writeln!(out, ":{chain} - [0:0]");
        for e in entries {
            let comment = until_text(e)
                .map(|u| format!(" -m comment --comment \"until {u}\""))
                .unwrap_or_default();
            for flag in ["-s", "-d"] {
                let _ = writeln!(out, "-A {chain} {flag} {}{comment} -j DROP", e.net);
            }
        }
        let _ = writeln!(out, "COMMIT");
        out.into_bytes()
    };
    Rendered {
        files: vec![
            OutFile {
                suffix: "",
                bytes: file("iptables-restore", list.v4().collect()),
            },
            OutFile {
                suffix: ".v6",
                bytes: file("ip6tables-restore", list.v6().collect()),
            },
        ],
        notes: Vec::new(),
    }
}
