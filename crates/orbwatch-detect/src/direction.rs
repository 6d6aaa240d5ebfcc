//! Direction of traffic relative to the networks the user calls internal.
//!
//! A relay IP as the *source* of a login attempt is an attack on you; the
//! same IP as the *destination* of your traffic may mean a host of yours is
//! talking to the relay network. The analyst needs to see which.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::finding::Direction;

/// The networks considered internal.
///
/// Asked about every address of every record (twice per sshd line in a
/// hunt), so the networks are also kept as (network, mask) integers per
/// family: a test is then a mask and a compare per network of the
/// address's family, where `IpNet::contains` matched both families'
/// variants and worked out each network's bounds again (3 % of a hunt's
/// sweep threads).
#[derive(Debug, Clone)]
pub struct InternalNets {
    nets: Vec<IpNet>,
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
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
        Self::new(nets)
    }
}

impl InternalNets {
    /// Use exactly these networks (from `--internal`).
    pub fn new(nets: Vec<IpNet>) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for n in &nets {
            match n {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.netmask()))),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.netmask()))),
            }
        }
        Self { nets, v4, v6 }
    }

    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4.iter().any(|&(net, mask)| a & mask == net)
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6.iter().any(|&(net, mask)| a & mask == net)
            }
        }
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
        // The integer test says what `IpNet::contains` says, at the edges
        // of every network and for mapped addresses.
        let nets = InternalNets::new(
            [
                "10.0.0.0/8",
                "172.16.0.0/12",
                "100.64.0.0/10",
                "0.0.0.0/0",
                "203.0.113.7/32",
                "fc00::/7",
                "2001:db8::/32",
                "::1/128",
            ]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect(),
        );
        for (i, net) in nets.nets().iter().enumerate() {
            let alone = InternalNets::new(vec![*net]);
            let (lo, hi) = (net.network(), net.broadcast());
            let probes: Vec<IpAddr> = match (lo, hi) {
                (IpAddr::V4(lo), IpAddr::V4(hi)) => {
                    let (lo, hi) = (u32::from(lo), u32::from(hi));
                    [lo.wrapping_sub(1), lo, hi, hi.wrapping_add(1)]
                        .map(|a| IpAddr::V4(a.into()))
                        .into_iter()
                        .chain([IpAddr::V6(std::net::Ipv4Addr::from(lo).to_ipv6_mapped())])
                        .collect()
                }
                (IpAddr::V6(lo), IpAddr::V6(hi)) => {
                    let (lo, hi) = (u128::from(lo), u128::from(hi));
                    [lo.wrapping_sub(1), lo, hi, hi.wrapping_add(1)]
                        .map(|a| IpAddr::V6(a.into()))
                        .to_vec()
                }
                _ => unreachable!(),
            };
            for a in probes {
                let mapped = match a {
                    IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
                    v4 => v4,
                };
                assert_eq!(
                    alone.contains(a),
                    net.contains(&mapped),
                    "net {i} {net}, {a}"
                );
            }
        }
        let custom = InternalNets::new(vec!["5.6.7.0/24".parse().unwrap()]);
        assert_eq!(
            custom.direction(ip("1.2.3.4"), ip("5.6.7.8"), false),
            Direction::Inbound
        );
    }
}
