//! The safety guard: address ranges a blocklist must never contain.
//!
//! Blocking an internal network, a loopback or a public resolver locks the
//! firewall's own users out. The guard holds every such range with the
//! reason it is there, so that an export can carve them out of what it
//! writes and name each entry it held back. Three sources: the special
//! ranges of RFC 6890 and friends (always on), the `--internal` networks
//! and allowlist files (the user's), and a shipped default allowlist of
//! public resolvers and root servers (on unless `--no-default-allowlist`).

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use crate::span::{Family, ip_to_u128, merge_intervals, net_bounds};

/// The shipped default allowlist (public resolvers, root servers), in the
/// allowlist file format.
pub const DEFAULT_ALLOWLIST: &str = include_str!("default-allowlist.txt");

/// Special-purpose ranges that are never exported, with why.
const SPECIAL: &[(&str, &str)] = &[
    ("0.0.0.0/8", "\"this network\" 0.0.0.0/8 (RFC 1122)"),
    ("10.0.0.0/8", "private network 10.0.0.0/8 (RFC 1918)"),
    (
        "100.64.0.0/10",
        "carrier-grade NAT 100.64.0.0/10 (RFC 6598)",
    ),
    ("127.0.0.0/8", "loopback 127.0.0.0/8"),
    ("169.254.0.0/16", "link-local 169.254.0.0/16"),
    ("172.16.0.0/12", "private network 172.16.0.0/12 (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignments 192.0.0.0/24"),
    ("192.0.2.0/24", "documentation TEST-NET-1 192.0.2.0/24"),
    (
        "192.168.0.0/16",
        "private network 192.168.0.0/16 (RFC 1918)",
    ),
    ("198.18.0.0/15", "benchmarking 198.18.0.0/15 (RFC 2544)"),
    (
        "198.51.100.0/24",
        "documentation TEST-NET-2 198.51.100.0/24",
    ),
    ("203.0.113.0/24", "documentation TEST-NET-3 203.0.113.0/24"),
    ("224.0.0.0/4", "multicast 224.0.0.0/4"),
    ("240.0.0.0/4", "reserved 240.0.0.0/4 and broadcast"),
    ("::/128", "unspecified address ::"),
    ("::1/128", "loopback ::1"),
    (
        "::ffff:0:0/96",
        "IPv4-mapped ::ffff:0:0/96 (list the IPv4 address instead)",
    ),
    ("100::/64", "discard-only 100::/64 (RFC 6666)"),
    ("2001:db8::/32", "documentation 2001:db8::/32"),
    ("3fff::/20", "documentation 3fff::/20 (RFC 9637)"),
    ("fc00::/7", "unique local fc00::/7 (RFC 4193)"),
    ("fe80::/10", "link-local fe80::/10"),
    ("fec0::/10", "site-local fec0::/10 (deprecated)"),
    ("ff00::/8", "multicast ff00::/8"),
];

/// One guarded range and the reason shown when it holds an entry back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardRange {
    pub family: Family,
    pub start: u128,
    pub end: u128,
    pub reason: Arc<str>,
}

/// A line of an allowlist file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: `{text}` is not an address, CIDR or range first-last")]
pub struct AllowlistError {
    pub file: String,
    pub line: u64,
    pub text: String,
}

/// Why the standard guard could not be built ([`Guard::standard`]).
#[derive(Debug, thiserror::Error)]
pub enum GuardSetupError {
    /// An allowlist file could not be read.
    #[error("cannot read allowlist {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An allowlist file has lines that are not addresses. A line that
    /// cannot be read might be an address the user meant to protect, so
    /// the caller must refuse to export rather than guess.
    #[error(
        "{first}{more}; fix the allowlist (the export is refused while it has unreadable lines)"
    )]
    Unreadable {
        first: AllowlistError,
        /// ` (and N more)` or empty.
        more: String,
    },
}

/// The set of guarded ranges, searchable by interval.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// Sorted by (family, start).
    ranges: Vec<GuardRange>,
    merged4: Vec<(u128, u128)>,
    merged6: Vec<(u128, u128)>,
}

impl Guard {
    /// A guard with the special-purpose ranges only.
    pub fn with_special_ranges() -> Guard {
        let mut g = Guard::default();
        for (net, why) in SPECIAL {
            if let Ok(n) = net.parse::<IpNet>() {
                g.add_net(n, why);
            }
        }
        g.finish();
        g
    }

    /// The guard of every blocklist (`export blocklist`, `watch --block`,
    /// `serve`'s EDLs and blocklists): special-purpose ranges, internal
    /// networks, allowlist files and the default allowlist. Not finished:
    /// the caller may add to it (the bouncer adds the host's resolvers) and
    /// must call [`Guard::finish`].
    pub fn standard(
        internal: &[IpNet],
        allowlists: &[std::path::PathBuf],
        default_allowlist: bool,
    ) -> Result<Guard, GuardSetupError> {
        let mut guard = Guard::with_special_ranges();
        for net in internal {
            guard.add_internal(*net);
        }
        if default_allowlist {
            guard.add_default_allowlist();
        }
        for path in allowlists {
            let text = std::fs::read_to_string(path).map_err(|source| GuardSetupError::Read {
                path: path.clone(),
                source,
            })?;
            let errors = guard.add_allowlist(&text, &path.display().to_string());
            if let Some(first) = errors.first() {
                return Err(GuardSetupError::Unreadable {
                    first: first.clone(),
                    more: if errors.len() > 1 {
                        format!(" (and {} more)", errors.len() - 1)
                    } else {
                        String::new()
                    },
                });
            }
        }
        Ok(guard)
    }

    /// Add a network with a reason.
    pub fn add_net(&mut self, net: IpNet, reason: &str) {
        let (family, start, end) = net_bounds(net.trunc());
        self.ranges.push(GuardRange {
            family,
            start,
            end,
            reason: Arc::from(reason),
        });
    }

    /// Add an `--internal` network.
    pub fn add_internal(&mut self, net: IpNet) {
        let why = format!("internal network {} (--internal)", net.trunc());
        self.add_net(net, &why);
    }

    /// Add the entries of an allowlist file (`label` names it in reasons).
    /// Returns the unreadable lines; the readable ones are added.
    pub fn add_allowlist(&mut self, text: &str, label: &str) -> Vec<AllowlistError> {
        let mut errors = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let (value, comment) = match raw.split_once('#') {
                Some((v, c)) => (v.trim(), c.trim()),
                None => (raw.trim(), ""),
            };
            if value.is_empty() {
                continue;
            }
            let lineno = i as u64 + 1;
            let Some((family, start, end)) = parse_address_token(value) else {
                errors.push(AllowlistError {
                    file: label.to_string(),
                    line: lineno,
                    text: value.to_string(),
                });
                continue;
            };
            let reason = if comment.is_empty() {
                format!("{label}:{lineno}")
            } else {
                format!("{label}:{lineno} ({comment})")
            };
            self.ranges.push(GuardRange {
                family,
                start,
                end,
                reason: Arc::from(reason.as_str()),
            });
        }
        errors
    }

    /// Add the shipped default allowlist.
    pub fn add_default_allowlist(&mut self) {
        // The shipped file is tested to parse without errors.
        let _ = self.add_allowlist(DEFAULT_ALLOWLIST, "default allowlist");
    }

    /// Sort and index; call after the last `add_*`.
    pub fn finish(&mut self) {
        self.ranges.sort_by(|a, b| {
            (a.family, a.start, a.end, &a.reason).cmp(&(b.family, b.start, b.end, &b.reason))
        });
        self.ranges.dedup();
        let pick = |f: Family| {
            merge_intervals(
                self.ranges
                    .iter()
                    .filter(|r| r.family == f)
                    .map(|r| (r.start, r.end))
                    .collect(),
            )
        };
        self.merged4 = pick(Family::V4);
        self.merged6 = pick(Family::V6);
    }

    /// The guarded address set of a family: sorted, disjoint intervals.
    pub fn merged(&self, family: Family) -> &[(u128, u128)] {
        match family {
            Family::V4 => &self.merged4,
            Family::V6 => &self.merged6,
        }
    }

    /// Does `[start, end]` touch any guarded range? O(log n).
    pub fn overlaps(&self, family: Family, start: u128, end: u128) -> bool {
        let m = self.merged(family);
        let i = m.partition_point(|&(_, e)| e < start);
        i < m.len() && m[i].0 <= end
    }

    /// The guarded ranges that `[start, end]` touches.
    pub fn overlapping(&self, family: Family, start: u128, end: u128) -> Vec<&GuardRange> {
        if !self.overlaps(family, start, end) {
            return Vec::new();
        }
        let hi = self
            .ranges
            .partition_point(|r| (r.family, r.start) <= (family, end));
        self.ranges[..hi]
            .iter()
            .filter(|r| r.family == family && r.end >= start)
            .collect()
    }

    /// Number of guarded ranges.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

/// Parse an address, a CIDR (host bits cleared) or a range `first-last` of
/// one family.
pub fn parse_address_token(s: &str) -> Option<(Family, u128, u128)> {
    let s = s.trim();
    if let Some((a, b)) = s.split_once('-') {
        let a: IpAddr = a.trim().parse().ok()?;
        let b: IpAddr = b.trim().parse().ok()?;
        if Family::of(a) != Family::of(b) {
            return None;
        }
        let (x, y) = (ip_to_u128(a), ip_to_u128(b));
        return (x <= y).then_some((Family::of(a), x, y));
    }
    if s.contains('/') {
        let n: IpNet = s.parse().ok()?;
        return Some(net_bounds(n.trunc()));
    }
    let ip: IpAddr = s.parse().ok()?;
    let v = ip_to_u128(ip);
    Some((Family::of(ip), v, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_allowlist_parses_and_holds_resolvers_and_roots() {
        let mut g = Guard::default();
        let errors = g.add_allowlist(DEFAULT_ALLOWLIST, "default allowlist");
        assert!(errors.is_empty(), "{errors:?}");
        g.finish();
        // 13 roots × 2 families + b.root's old pair.
        let roots = g
            .ranges
            .iter()
            .filter(|r| r.reason.contains("root-servers.net"))
            .count();
        assert_eq!(roots, 28);
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "9.9.9.9",
            "208.67.222.222",
            "2620:fe::fe",
        ] {
            let (f, s, e) = parse_address_token(ip).unwrap();
            assert!(g.overlaps(f, s, e), "{ip}");
        }
    }

    #[test]
    fn special_ranges_cover_the_issue_list() {
        let g = Guard::with_special_ranges();
        for ip in [
            "10.1.2.3",
            "192.168.1.1",
            "172.31.0.1",
            "127.0.0.1",
            "169.254.1.1",
            "224.0.0.1",
            "192.0.2.1",
            "0.1.2.3",
            "::",
            "::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "fd00::1",
        ] {
            let (f, s, e) = parse_address_token(ip).unwrap();
            assert!(g.overlaps(f, s, e), "{ip}");
        }
        let (f, s, e) = parse_address_token("8.8.8.8").unwrap();
        assert!(!g.overlaps(f, s, e));
    }
}
