//! Direction of traffic relative to the networks the user calls internal.
//!
//! A relay IP as the *source* of a login attempt is an attack on you; the
//! same IP as the *destination* of your traffic may mean a host of yours is
//! talking to the relay network. The analyst needs to see which.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::finding::Direction;

/// The networks considered internal.
#[derive(Debug, Clone)]
pub struct InternalNets {
    nets: Vec<IpNet>,
}

impl Default for InternalNets {
    /// RFC 1918, RFC 4193 (unique local), loopback and link-local.
    fn default() -> Self {
        let nets = [
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "127.0.0.0/8",
            "169.254.0.0/16",
            "fc00::/7",
            "::1/128",
            "fe80::/10",
        ]
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
        Self { nets }
    }
}

impl InternalNets {
    /// Use exactly these networks (from `--internal`).
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self { nets }
    }

    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// Direction of a flow from `src` to `dst`. `local_dst` says the record
    /// was written by the destination itself (an sshd or web server log), so
    /// a missing `dst` is this (internal) host.
    pub fn direction(
        &self,
        src: Option<IpAddr>,
        dst: Option<IpAddr>,
        local_dst: bool,
    ) -> Direction {
        let src_in = src.map(|a| self.contains(a));
        let dst_in = match dst {
            Some(a) => Some(self.contains(a)),
            None if local_dst => Some(true),
            None => None,
        };
        match (src_in, dst_in) {
            (Some(true), Some(true)) => Direction::Internal,
            (Some(false), Some(true)) => Direction::Inbound,
            (Some(true), Some(false)) => Direction::Outbound,
            _ => Direction::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn directions() {
        let n = InternalNets::default();
        assert_eq!(
            n.direction(ip("1.2.3.4"), ip("10.0.0.1"), false),
            Direction::Inbound
        );
        assert_eq!(
            n.direction(ip("192.168.1.1"), ip("8.8.8.8"), false),
            Direction::Outbound
        );
        assert_eq!(
            n.direction(ip("10.0.0.2"), ip("10.0.0.1"), false),
            Direction::Internal
        );
        assert_eq!(
            n.direction(ip("1.2.3.4"), ip("5.6.7.8"), false),
            Direction::Unknown
        );
        assert_eq!(n.direction(ip("1.2.3.4"), None, true), Direction::Inbound);
        assert_eq!(n.direction(ip("1.2.3.4"), None, false), Direction::Unknown);
        assert_eq!(
            n.direction(ip("fd00::1"), ip("2001:db8::1"), false),
            Direction::Outbound
        );
        let custom = InternalNets::new(vec!["5.6.7.0/24".parse().unwrap()]);
        assert_eq!(
            custom.direction(ip("1.2.3.4"), ip("5.6.7.8"), false),
            Direction::Inbound
        );
    }
}
