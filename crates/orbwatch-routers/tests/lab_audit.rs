//! `routers audit` against the lab (see tests/common): six routers, one
//! clean, one with a memory-only implant, one with a persistent implant
//! whose hash is in a test feed, one with a hijacked DNS setting, one
//! talking with C2 addresses a test feed lists, one with planted port
//! forwards, and an OpenWrt-like one with a program no package owns.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use common::{C2_GONE, C2_TCP, C2_UDP, Lab, LabSpec, Plant};
use orbwatch_intel::IndicatorValue;
use orbwatch_routers::checks::check_of;
use orbwatch_routers::{AuditOptions, Inventory, Ssh, audit_router};

fn lab7() -> Option<Lab> {
    Lab::start(&[
        LabSpec::new("clean", Plant::Clean),
        LabSpec::new("memory", Plant::MemoryImplant),
        LabSpec::new("persistent", Plant::PersistentImplant),
        LabSpec::new("dns", Plant::HijackedDns),
        LabSpec::new("c2", Plant::C2Connections),
        LabSpec::new("nat", Plant::NatRedirect),
        LabSpec::new("opkg", Plant::UnownedExecutable),
        LabSpec::new("apk", Plant::UnownedExecutableApk),
    ])
}

/// The evidence's commands of a finding (the lines that start with `$ `).
fn commands_of(f: &orbwatch_detect::Finding) -> Vec<&str> {
    f.evidence
        .iter()
        .filter_map(|e| e.raw.strip_prefix("$ "))
        .collect()
}

/// Check name and key of each finding, sorted.
fn keys(fs: &[orbwatch_detect::Finding]) -> Vec<String> {
    let mut v: Vec<String> = fs
        .iter()
        .map(|f| {
            let key = f
                .details
                .as_ref()
                .and_then(|d| d.get("key"))
                .and_then(|k| k.as_str())
                .unwrap_or("");
            format!("{} {}", check_of(f), key)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn audit_flags_exactly_the_planted_problems_and_stays_in_the_allowlist() {
    let Some(lab) = lab7() else { return };
    let inv_path = lab.dir.path().join("routers.toml");
    std::fs::write(&inv_path, lab.inventory(|_| String::new())).unwrap();
    let inv = Inventory::load(&inv_path).unwrap();
    let ssh = Ssh::new(&lab.dir.path().join("known_hosts")).unwrap();
    let opts = AuditOptions {
        hash_indicators: HashMap::from([(lab.persistent_sha256.clone(), "lab-feed".to_string())]),
        vulnerable: orbwatch_routers::vulnerable::load(&[] as &[&Path]).unwrap(),
        // The lab's C2 addresses, as a feed would list them: one address,
        // one network (which covers the other two).
        ip_indicators: vec![
            (
                IndicatorValue::Ip(C2_TCP.parse().unwrap()),
                "lab-c2-feed".to_string(),
            ),
            (
                IndicatorValue::Cidr("198.51.100.96/27".parse().unwrap()),
                "lab-c2-feed".to_string(),
            ),
        ],
        ..Default::default()
    };
    let mut by_router = HashMap::new();
    for r in &inv.routers {
        let a = audit_router(&ssh, r, &opts);
        assert_eq!(a.error, None, "{}", r.name);
        // Lab routers boot with a 3-day uptime offset.
        assert!(a.uptime_secs.unwrap() > 3.0 * 86_400.0, "{}", r.name);
        if std::env::var_os("LAB_DEBUG").is_some() {
            eprintln!("{}: {:?}", r.name, a);
        }
        by_router.insert(r.name.clone(), a);
    }
    assert_eq!(keys(&by_router["clean"].findings), Vec::<String>::new());
    assert_eq!(
        keys(&by_router["memory"].findings),
        ["listening_port 7777", "process_writable_path /tmp/.xl"]
    );
    let mem_port = &by_router["memory"]
        .findings
        .iter()
        .find(|f| check_of(f) == "listening_port")
        .unwrap();
    assert_eq!(
        mem_port.severity,
        Some(orbwatch_detect::Severity::Critical),
        "xlogin banner read"
    );
    assert_eq!(
        keys(&by_router["persistent"].findings),
        [
            format!("hash_indicator {}", lab.persistent_sha256),
            "listening_port 63256".to_string(),
            "persistence /etc/crontabs/root:* * * * * /etc/.xl/xl-agent 63256 login:".to_string(),
        ]
    );
    assert_eq!(keys(&by_router["dns"].findings), ["dns 203.0.113.53"]);
    // C2 traffic: one finding per remote address, from the source(s) that
    // saw it. The one-shot datagram's socket is gone: only conntrack has it.
    let c2 = &by_router["c2"].findings;
    assert_eq!(
        keys(c2),
        [
            format!("connection {C2_GONE}"),
            format!("connection {C2_UDP}"),
            format!("connection {C2_TCP}"),
        ]
    );
    let seen_in = |ip: &str| {
        let f = c2
            .iter()
            .find(|f| f.details.as_ref().unwrap()["key"] == ip)
            .unwrap();
        (
            f.details.as_ref().unwrap()["seen_in"].clone(),
            commands_of(f).len(),
        )
    };
    assert_eq!(
        seen_in(C2_TCP),
        (serde_json::json!(["tcp", "conntrack"]), 2)
    );
    assert_eq!(
        seen_in(C2_UDP),
        (serde_json::json!(["udp", "conntrack"]), 2)
    );
    assert_eq!(seen_in(C2_GONE), (serde_json::json!(["conntrack"]), 1));
    // Port forwards, each seen by iptables-save and by nft (iptables-nft
    // rules are nftables rules), each one finding.
    let nat = &by_router["nat"].findings;
    assert_eq!(
        keys(nat),
        [
            "port_forward dnat 203.0.113.7:11288",
            "port_forward redirect :7777"
        ]
    );
    for f in nat {
        assert_eq!(f.severity, Some(orbwatch_detect::Severity::Critical));
        assert_eq!(
            f.details.as_ref().unwrap()["seen_in"],
            serde_json::json!(["iptables", "nft"]),
            "{f:?}"
        );
    }
    for f in by_router.values().flat_map(|a| &a.findings) {
        assert_eq!(f.kind.as_str(), "router_audit");
        assert!(
            f.evidence[0].raw.starts_with("$ "),
            "evidence starts with the command"
        );
        assert!(f.evidence.len() >= 2, "and has output lines: {f:?}");
    }
    // opkg: the one program no package's file list names, and nothing
    // else (its firmware version is not on the list).
    assert_eq!(
        keys(&by_router["opkg"].findings),
        ["unowned_executable /usr/sbin/xl-relay"]
    );
    assert_eq!(
        by_router["opkg"].findings[0].details.as_ref().unwrap()["sha256"],
        lab.persistent_sha256.as_str()
    );
    // apk (OpenWrt 25): the same program found through apk's database.
    let apk = &by_router["apk"].findings;
    assert_eq!(keys(apk), ["unowned_executable /usr/sbin/xl-relay"]);
    assert!(
        apk[0].reasons[0].contains("apk's installed database"),
        "{}",
        apk[0].reasons[0]
    );
    // Safety: the routers' own logs hold only allowlisted commands, each
    // audit command exactly once per router.
    for (i, r) in inv.routers.iter().enumerate() {
        let cmds = lab.commands(i);
        let allowed: BTreeSet<&str> = r.profile.probes().iter().map(|p| p.command).collect();
        for c in &cmds {
            assert!(
                allowed.contains(c.as_str()),
                "{}: ran {c:?} outside the allowlist",
                r.name
            );
        }
        assert_eq!(cmds.len(), allowed.len(), "{}: {cmds:?}", r.name);
    }
}

#[test]
fn a_changed_host_key_stops_work_and_is_a_finding() {
    let Some(lab) = Lab::start(&[LabSpec::new("swapped", Plant::Clean)]) else {
        return;
    };
    let inv_path = lab.dir.path().join("routers.toml");
    std::fs::write(&inv_path, lab.inventory(|_| String::new())).unwrap();
    let inv = Inventory::load(&inv_path).unwrap();
    let kh = lab.dir.path().join("known_hosts");
    let opts = AuditOptions::default();
    {
        let ssh = Ssh::new(&kh).unwrap();
        let a = audit_router(&ssh, &inv.routers[0], &opts);
        assert_eq!(a.error, None);
        assert!(a.findings.is_empty(), "{:?}", a.findings);
    }
    let pinned = std::fs::read_to_string(&kh).unwrap();
    assert_eq!(
        pinned.lines().count(),
        1,
        "first use pinned one key: {pinned}"
    );
    assert!(pinned.starts_with("swapped ssh-ed25519 "), "{pinned}");
    let before = lab.commands(0).len();
    lab.change_host_key(0);
    let ssh = Ssh::new(&kh).unwrap();
    let a = audit_router(&ssh, &inv.routers[0], &opts);
    assert!(a.host_key_changed);
    assert!(
        a.error.as_deref().unwrap().contains("HOST KEY CHANGED"),
        "{:?}",
        a.error
    );
    assert_eq!(keys(&a.findings), ["host_key_changed "]);
    assert_eq!(
        a.findings[0].severity,
        Some(orbwatch_detect::Severity::Critical)
    );
    // Not one command reached the router after the key changed.
    assert_eq!(lab.commands(0).len(), before);
    // The pinned key was not replaced.
    assert_eq!(std::fs::read_to_string(&kh).unwrap(), pinned);
}

#[test]
fn the_lab_tears_itself_down() {
    let Some(lab) = Lab::start(&[LabSpec::new("gone", Plant::MemoryImplant)]) else {
        return;
    };
    let ns = lab.routers[0].netns.clone();
    let host_if = lab.routers[0].host_if.clone();
    let root = lab.routers[0].root.clone();
    assert!(lab.init_pid(0).is_some());
    drop(lab);
    let list = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&list.stdout).contains(&ns),
        "netns {ns} left behind"
    );
    let link = std::process::Command::new("ip")
        .args(["link", "show", &host_if])
        .output()
        .unwrap();
    assert!(!link.status.success(), "veth {host_if} left behind");
    assert!(!root.exists(), "root {} left behind", root.display());
}

/// The lab's persistent implant is real: killed, cron starts it again
/// within a minute; and what cron runs is not taken for an SSH client's
/// command (CI once failed the allowlist check above on a cron tick).
#[test]
fn the_persistent_implant_comes_back_from_cron_and_cron_is_not_in_the_command_log() {
    let Some(lab) = Lab::start(&[LabSpec::new("persistent", Plant::PersistentImplant)]) else {
        return;
    };
    lab.run_inside(0, "killall xl-agent", None);
    let addr = lab.routers[0].addr;
    let t = std::time::Instant::now();
    while std::net::TcpStream::connect((addr, 63256)).is_ok() {
        assert!(t.elapsed().as_secs() < 10, "the implant did not stop");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    while std::net::TcpStream::connect((addr, 63256)).is_err() {
        assert!(
            t.elapsed().as_secs() < 75,
            "cron did not start the implant again within a minute"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert_eq!(lab.commands(0), Vec::<String>::new());
}
