//! One renderer per target: the bytes a firewall, IDS or sensor loads.
//!
//! Renderers are pure functions of the [`Blocklist`] and the options: no
//! clock, no randomness, sorted input, so that unchanged inputs give a
//! byte-identical file. Each target that takes comments gets a header that
//! says what the file holds, how its timeouts were counted and which
//! blocks `--widen` listed whole.

use std::fmt::Write as _;

use ipnet::IpNet;

use crate::build::{Blocklist, Entry};

mod csv;
mod ipset;
mod iptables;
mod mikrotik;
mod nftables;
mod pf;
mod plain;
mod suricata;
mod zeek;

/// Every output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Nftables,
    Ipset,
    Iptables,
    Pf,
    SuricataIprep,
    SuricataDataset,
    SuricataRules,
    ZeekIntel,
    Plain,
    Mikrotik,
    Csv,
}

impl Target {
    pub const ALL: [Target; 11] = [
        Target::Nftables,
        Target::Ipset,
        Target::Iptables,
        Target::Pf,
        Target::SuricataIprep,
        Target::SuricataDataset,
        Target::SuricataRules,
        Target::ZeekIntel,
        Target::Plain,
        Target::Mikrotik,
        Target::Csv,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Target::Nftables => "nftables",
            Target::Ipset => "ipset",
            Target::Iptables => "iptables",
            Target::Pf => "pf",
            Target::SuricataIprep => "suricata-iprep",
            Target::SuricataDataset => "suricata-dataset",
            Target::SuricataRules => "suricata-rules",
            Target::ZeekIntel => "zeek-intel",
            Target::Plain => "plain",
            Target::Mikrotik => "mikrotik",
            Target::Csv => "csv",
        }
    }

    /// Whether the format carries per-entry timeouts.
    pub fn has_timeouts(self) -> bool {
        matches!(self, Target::Nftables | Target::Ipset | Target::Mikrotik)
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Target, String> {
        Target::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Target::ALL.iter().map(|t| t.as_str()).collect();
                format!("`{s}` is not a target; use one of {}", names.join(", "))
            })
    }
}

/// Names used inside the generated files.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// Table, set, chain and list name (`orbwatch`).
    pub name: String,
    /// `alert` or `drop` for suricata-rules.
    pub rule_action: String,
    /// The dataset file name that suricata-rules load (relative to the
    /// rules file's folder).
    pub dataset_file: String,
    /// First signature id of suricata-rules.
    pub sid_base: u32,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            name: "orbwatch".into(),
            rule_action: "alert".into(),
            dataset_file: "orbwatch.lst".into(),
            sid_base: 9_400_001,
        }
    }
}

/// One file of a rendered target. `suffix` is appended to the output path
/// (empty for the main file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutFile {
    pub suffix: &'static str,
    pub bytes: Vec<u8>,
}

/// What a renderer produced: its files and notes for stderr (entries a
/// format cannot hold, caps applied).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    pub files: Vec<OutFile>,
    pub notes: Vec<String>,
}

impl Rendered {
    fn one(bytes: String) -> Rendered {
        Rendered {
            files: vec![OutFile {
                suffix: "",
                bytes: bytes.into_bytes(),
            }],
            notes: Vec::new(),
        }
    }
}

/// Render `list` for `target`.
pub fn render(target: Target, list: &Blocklist, opts: &RenderOptions) -> Rendered {
    match target {
        Target::Nftables => nftables::render(list, opts),
        Target::Ipset => ipset::render(list, opts),
        Target::Iptables => iptables::render(list, opts),
        Target::Pf => Rendered::one(pf::render(list, opts)),
        Target::SuricataIprep => suricata::render_iprep(list, opts),
        Target::SuricataDataset => suricata::render_dataset(list, opts),
        Target::SuricataRules => suricata::render_rules(list, opts),
        Target::ZeekIntel => Rendered::one(zeek::render(list, opts)),
        Target::Plain => Rendered::one(plain::render(list)),
        Target::Mikrotik => mikrotik::render(list, opts),
        Target::Csv => Rendered::one(csv::render(list)),
    }
}

/// The common header, each line prefixed with `prefix` (`# `).
pub(crate) fn header(list: &Blocklist, target: Target, prefix: &str) -> String {
    let mut h = String::new();
    let v4 = list.v4().count();
    let v6 = list.v6().count();
    let _ = writeln!(
        h,
        "{prefix}orbwatch blocklist for {target}: {} entr{} ({v4} IPv4, {v6} IPv6)",
        list.entries.len(),
        if list.entries.len() == 1 { "y" } else { "ies" }
    );
    if let Some(at) = list.at_given {
        let _ = writeln!(h, "{prefix}reference time (--at): {at}");
    }
    if target.has_timeouts() {
        let base = if list.at_given.is_some() {
            "the reference time"
        } else {
            "the start of the hour in which the file was written"
        };
        let _ = writeln!(
            h,
            "{prefix}timeouts: validity left, counted from {base}; entries with an open-ended validity have none"
        );
    }
    for w in &list.widened {
        let _ = writeln!(
            h,
            "{prefix}widened: {} listed whole ({} of its {} addresses were listed; --widen)",
            w.net,
            w.listed,
            1u128 << (w.net.max_prefix_len() - w.net.prefix_len()),
        );
    }
    if list.entries.is_empty() {
        let _ = writeln!(h, "{prefix}empty selection: nothing to block");
    }
    h
}

/// A note for entries whose timeout was cut to a format's maximum.
pub(crate) fn cap_note(target: Target, capped: u64, max: u64, what: &str) -> Vec<String> {
    if capped == 0 {
        return Vec::new();
    }
    vec![format!(
        "{target}: {capped} entr{} valid for longer than {what} ({max} s) got that timeout; re-export before it runs out",
        if capped == 1 { "y" } else { "ies" }
    )]
}

/// `1d2h3m4s` style duration (nft and RouterOS both read it).
pub(crate) fn dhms(secs: u64) -> String {
    let (d, rest) = (secs / 86_400, secs % 86_400);
    let (h, rest) = (rest / 3600, rest % 3600);
    let (m, s) = (rest / 60, rest % 60);
    let mut out = String::new();
    for (n, unit) in [(d, 'd'), (h, 'h'), (m, 'm'), (s, 's')] {
        if n > 0 {
            let _ = write!(out, "{n}{unit}");
        }
    }
    if out.is_empty() {
        out.push_str("1s");
    }
    out
}

/// An entry as a bare address for hosts, CIDR otherwise.
pub(crate) fn short(net: &IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

/// The absolute end of validity of an entry, for comments.
pub(crate) fn until_text(e: &Entry) -> Option<String> {
    e.expiry.as_option().map(|t| t.to_string())
}
