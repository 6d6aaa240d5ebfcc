//! csv: one row per entry with its family, size, end of validity, timeout
//! and whether `--widen` produced it, for spreadsheets and scripts.

use std::fmt::Write as _;

use crate::build::Blocklist;

pub fn render(list: &Blocklist) -> String {
    let mut out = String::from("network,family,addresses,valid_until,timeout_seconds,widened\n");
    for e in &list.entries {
        let family = if e.net.addr().is_ipv4() {
            "ipv4"
        } else {
            "ipv6"
        };
        let host_bits = u32::from(e.net.max_prefix_len() - e.net.prefix_len());
        let addresses = 1u128.checked_shl(host_bits).map_or_else(
            || "340282366920938463463374607431768211456".to_string(),
            |n| n.to_string(),
        );
        let until = e
            .expiry
            .as_option()
            .map(|t| t.to_string())
            .unwrap_or_default();
        let timeout = list
            .timeout_secs(e)
            .map(|t| t.to_string())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{},{family},{addresses},{until},{timeout},{}",
            e.net, e.widened
        );
    }
    out
}
