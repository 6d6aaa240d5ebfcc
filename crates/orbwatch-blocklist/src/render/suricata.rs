//! Suricata: IP reputation (a categories file and a reputation file), a
//! dataset of type `ip`, and rules that alert on or drop traffic from and
//! to the addresses of that dataset.
//!
//! Reputation files take networks; datasets take single addresses only,
//! so the dataset expands networks of up to 256 addresses (IPv4 /24, IPv6
//! /120) and leaves wider ones out with a note (use suricata-iprep for
//! those). None of these formats has timeouts.

use std::fmt::Write as _;

use super::{OutFile, RenderOptions, Rendered, Target, header, short};
use crate::build::Blocklist;
use crate::span::{net_bounds, u128_to_ip};

/// The reputation category id used for every entry.
pub const IPREP_CATEGORY: u8 = 1;
/// The reputation score (0–127) given to listed addresses.
pub const IPREP_SCORE: u8 = 100;
/// Widest network the dataset expands into addresses.
pub const DATASET_MAX_EXPAND: u32 = 256;

/// `.categories` and `.list` files.
pub fn render_iprep(list: &Blocklist, opts: &RenderOptions) -> Rendered {
    let categories = format!(
        "{IPREP_CATEGORY},{},orbwatch blocklist (ORB relays and hostile sources)\n",
        opts.name
    );
    let mut rep = header(list, Target::SuricataIprep, "# ");
    for e in &list.entries {
        let _ = writeln!(rep, "{},{IPREP_CATEGORY},{IPREP_SCORE}", short(&e.net));
    }
    Rendered {
        files: vec![
            OutFile {
                suffix: ".categories",
                bytes: categories.into_bytes(),
            },
            OutFile {
                suffix: ".list",
                bytes: rep.into_bytes(),
            },
        ],
        notes: Vec::new(),
    }
}

/// One address per line (dataset files take no comments).
pub fn render_dataset(list: &Blocklist, _opts: &RenderOptions) -> Rendered {
    let mut out = String::new();
    let mut left_out = Vec::new();
    for e in &list.entries {
        let host_bits = u32::from(e.net.max_prefix_len() - e.net.prefix_len());
        if host_bits > DATASET_MAX_EXPAND.trailing_zeros() {
            left_out.push(e.net.to_string());
            continue;
        }
        let (family, start, end) = net_bounds(e.net);
        for v in start..=end {
            let _ = writeln!(out, "{}", u128_to_ip(family, v));
        }
    }
    let mut notes = Vec::new();
    if !left_out.is_empty() {
        notes.push(format!(
            "suricata-dataset: {} network{} wider than {DATASET_MAX_EXPAND} addresses cannot go into a dataset and {} left out (export suricata-iprep for them): {}",
            left_out.len(),
            if left_out.len() == 1 { "" } else { "s" },
            if left_out.len() == 1 { "was" } else { "were" },
            left_out.join(", ")
        ));
    }
    Rendered {
        files: vec![OutFile {
            suffix: "",
            bytes: out.into_bytes(),
        }],
        notes,
    }
}

/// Two rules (source listed, destination listed) on one `ip` dataset
/// loaded from `opts.dataset_file`, and that dataset (suffix `.lst`), so
/// that one export gives a pair Suricata loads.
pub fn render_rules(list: &Blocklist, opts: &RenderOptions) -> Rendered {
    let mut out = header(list, Target::SuricataRules, "# ");
    let _ = writeln!(
        out,
        "# the addresses are in the dataset file {}, written next to this file",
        opts.dataset_file
    );
    let set = format!(
        "dataset:isset,{},type ip,load {}",
        opts.name, opts.dataset_file
    );
    for (i, (buf, what)) in [("ip.src", "source"), ("ip.dst", "destination")]
        .into_iter()
        .enumerate()
    {
        let _ = writeln!(
            out,
            "{} ip any any -> any any (msg:\"orbwatch blocklist: {what} address listed\"; {buf}; {set}; sid:{}; rev:1;)",
            opts.rule_action,
            opts.sid_base + i as u32
        );
    }
    let mut dataset = render_dataset(list, opts);
    let mut files = vec![OutFile {
        suffix: "",
        bytes: out.into_bytes(),
    }];
    for f in &mut dataset.files {
        f.suffix = ".lst";
    }
    files.append(&mut dataset.files);
    Rendered {
        files,
        notes: dataset.notes,
    }
}
