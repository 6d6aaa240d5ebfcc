//! ipset: `ipset restore` input. Entries are loaded into a scratch set that
//! is then swapped with the live one, so a reload never leaves the live
//! set empty or half-filled. `hash:net` with timeout support; entries
//! with open-ended validity get no timeout (they never expire).

use std::fmt::Write as _;

use super::{OutFile, RenderOptions, Rendered, Target, cap_note, header, short};
use crate::build::{Blocklist, Entry};

/// The largest timeout ipset accepts (seconds, about 24.8 days).
pub const IPSET_MAX_TIMEOUT: u64 = 2_147_483;

/// The `maxelem` of every set (hash sizes grow on demand; this only caps).
pub const IPSET_MAXELEM: usize = 16_777_216;

pub fn render(list: &Blocklist, opts: &RenderOptions) -> Rendered {
    let mut too_many = false;
    let mut out = header(list, Target::Ipset, "# ");
    let _ = writeln!(out, "# load with: ipset restore < FILE");
    let mut capped = 0u64;
    for (suffix, family, entries) in [
        ("v4", "inet", list.v4().collect::<Vec<&Entry>>()),
        ("v6", "inet6", list.v6().collect()),
    ] {
        let live = format!("{}-{suffix}", opts.name);
        let tmp = format!("{}-{suffix}-new", opts.name);
        // `create -exist` fails when an existing set was made with other
        // parameters, and `swap` hands the scratch set's parameters to
        // the live name: so maxelem is one constant, never the count.
        if entries.len() > IPSET_MAXELEM {
            too_many = true;
        }
        let maxelem = IPSET_MAXELEM;
        for set in [&live, &tmp] {
            let _ = writeln!(
                out,
                "create {set} hash:net family {family} hashsize 1024 maxelem {maxelem} timeout 0 -exist"
            );
        }
        let _ = writeln!(out, "flush {tmp}");
        for e in entries {
            let _ = write!(out, "add {tmp} {}", short(&e.net));
            if let Some(t) = list.timeout_secs(e) {
                if t > IPSET_MAX_TIMEOUT {
                    capped += 1;
                }
                let _ = write!(out, " timeout {}", t.min(IPSET_MAX_TIMEOUT));
            }
            out.push('\n');
        }
        let _ = writeln!(out, "swap {tmp} {live}");
        let _ = writeln!(out, "destroy {tmp}");
    }
    let mut notes = Vec::new();
    if too_many {
        notes.push(format!(
            "ipset: more than {IPSET_MAXELEM} entries in one family: ipset restore will refuse the rest"
        ));
    }
    notes.extend(cap_note(
        Target::Ipset,
        capped,
        IPSET_MAX_TIMEOUT,
        "ipset's maximum timeout, about 24.8 days",
    ));
    Rendered {
        files: vec![OutFile {
            suffix: "",
            bytes: out.into_bytes(),
        }],
        notes,
    }
}
