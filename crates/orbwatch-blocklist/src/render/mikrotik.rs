//! mikrotik: a RouterOS script (`/import file-name=FILE`) that replaces the
//! entries of one address list, IPv4 and IPv6, with per-entry timeouts.
//! Use the list in a firewall rule such as
//! `/ip firewall raw add chain=prerouting src-address-list=orbwatch action=drop`.

use std::fmt::Write as _;

use super::{OutFile, RenderOptions, Rendered, Target, cap_note, dhms, header, short};
use crate::build::{Blocklist, Entry};

/// RouterOS' longest timeout, 35w3d13:13:56.
pub const ROUTEROS_MAX_TIMEOUT: u64 = 21_474_836;

pub fn render(list: &Blocklist, opts: &RenderOptions) -> Rendered {
    let mut capped = 0;
    let name = &opts.name;
    let mut out = header(list, Target::Mikrotik, "# ");
    let _ = writeln!(out, "# load with: /import file-name=FILE");
    for (menu, entries) in [
        (
            "/ip firewall address-list",
            list.v4().collect::<Vec<&Entry>>(),
        ),
        ("/ipv6 firewall address-list", list.v6().collect()),
    ] {
        let _ = writeln!(out, "{menu}");
        let _ = writeln!(out, "remove [find list={name}]");
        for e in entries {
            let _ = write!(out, "add list={name} address={}", short(&e.net));
            if let Some(t) = list.timeout_secs(e) {
                capped += u64::from(t > ROUTEROS_MAX_TIMEOUT);
                let _ = write!(out, " timeout={}", dhms(t.min(ROUTEROS_MAX_TIMEOUT)));
            }
            let _ = writeln!(out, " comment=\"orbwatch\"");
        }
    }
    Rendered {
        files: vec![OutFile {
            suffix: "",
            bytes: out.into_bytes(),
        }],
        notes: cap_note(
            Target::Mikrotik,
            capped,
            ROUTEROS_MAX_TIMEOUT,
            "RouterOS' longest timeout, about 248 days",
        ),
    }
}
