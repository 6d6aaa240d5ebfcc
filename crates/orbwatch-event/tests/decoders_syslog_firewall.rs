//! The syslog decoder on firewall logs: netfilter/UFW/Proxmox, pf
//! filterlog, MikroTik, PAN-OS, FortiGate (CrowdSec hub inputs, MIT copies
//! in `tests/data/logs-syslog`) and the Wazuh rules-testing lines for Cisco
//! ASA, PAN-OS, SonicWall, Check Point, NetScreen and JunOS (GPL, read in
//! place from `../shared/corpus`).

mod decoders_syslog_support;

use std::collections::BTreeSet;
use std::net::IpAddr;

use decoders_syslog_support::*;
use orbwatch_event::{Action, AuthOutcome, Event, EventKind, Proto};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn cs(name: &str) -> Vec<(String, Out)> {
    let bytes = std::fs::read(data(name)).expect("tests/data/logs-syslog copy");
    decode_all("syslog", 2021, &bytes)
}

/// Every address in the line except the envelope's host is in the event.
fn assert_all_ips(raw: &str, ev: &Event) {
    let host: Option<IpAddr> = ev.host.as_deref().and_then(|h| h.parse().ok());
    orbwatch_event::ipscan::for_each_ip(raw.as_bytes(), |a, _, _| {
        let a = a.to_canonical();
        if Some(a) == host || a.is_unspecified() || a == ip("255.255.255.255") {
            return;
        }
        assert!(
            ev.addresses().any(|(x, _)| x == a),
            "{raw}\n  {a} missing in {ev:?}"
        );
    });
}

fn ts(e: &Event) -> String {
    e.time.map(|t| t.to_string()).unwrap_or_default()
}

#[test]
fn iptables_logs() {
    let o = cs("crowdsec_iptables-logs.log");
    let evs = events(&o);
    assert_eq!(evs.len(), 4);
    let e = evs[0];
    assert_eq!(e.kind, EventKind::Connection);
    assert_eq!(
        (e.src_ip, e.src_port),
        (Some(ip("195.54.160.107")), Some(8080))
    );
    assert_eq!(
        (e.dst_ip, e.dst_port),
        (Some(ip("51.15.166.67")), Some(8123))
    );
    assert_eq!(e.proto, Some(Proto::Tcp));
    assert_eq!(e.conn_state.as_deref(), Some("SYN"));
    assert_eq!(e.action, None);
    assert_eq!(e.host.as_deref(), Some("sd-126005"));
    assert_eq!(ts(e), "2021-06-08T14:34:33Z");
    // `XX=enp1s0` instead of `IN=`: still a packet with addresses, kept.
    assert_eq!(evs[2].src_ip, Some(ip("195.54.160.107")));
    let e = evs[3];
    assert_eq!(e.action, Some(Action::Drop));
    assert_eq!((e.proto, e.dst_port), (Some(Proto::Udp), Some(53)));
}

#[test]
fn iptables_ufw_scan() {
    let o = cs("crowdsec_iptables-scan-multi-port.log");
    let evs = events(&o);
    assert_eq!(evs.len(), 49);
    assert!(evs.iter().all(|e| e.kind == EventKind::Connection));
    let scan: Vec<_> = evs
        .iter()
        .filter(|e| e.src_ip == Some(ip("62.34.17.168")))
        .collect();
    assert_eq!(scan.len(), 17);
    let ports: BTreeSet<_> = scan.iter().filter_map(|e| e.dst_port).collect();
    assert_eq!(ports.len(), 17);
    assert!(scan.iter().all(|e| e.conn_state.as_deref() == Some("SYN")
        && e.dst_ip == Some(ip("10.73.140.49"))));
    let block: Vec<_> = evs
        .iter()
        .filter(|e| e.src_ip == Some(ip("127.0.0.2")))
        .collect();
    assert_eq!(block.len(), 16);
    assert!(block.iter().all(|e| e.action == Some(Action::Deny)));
    let audit: Vec<_> = evs
        .iter()
        .filter(|e| e.src_ip == Some(ip("127.0.0.1")))
        .collect();
    assert_eq!(audit.len(), 16);
    assert!(audit.iter().all(|e| e.action.is_none()));
}

#[test]
fn proxmox_firewall() {
    let o = cs("crowdsec_proxmox-iptables.log");
    let evs = events(&o);
    assert_eq!(evs.len(), 10);
    let actions: Vec<_> = evs.iter().map(|e| e.action).collect();
    use Action::*;
    assert_eq!(
        actions,
        [
            Some(Drop),
            Some(Allow),
            Some(Reject),
            Some(Reject),
            Some(Allow),
            Some(Reject),
            Some(Reject),
            Some(Reject),
            None,
            Some(Drop)
        ]
    );
    assert_eq!(ts(evs[0]), "2022-06-20T11:09:14Z");
    assert_eq!(evs[5].src_ip, Some(ip("2a0a:1580::a")));
    assert_eq!(evs[3].dst_port, Some(22));
}

#[test]
fn pf_filterlog() {
    let o = cs("crowdsec_pf-logs.log");
    let evs = events(&o);
    assert_eq!(evs.len(), 9);
    let e = evs[0];
    assert_eq!((e.src_ip, e.src_port), (Some(ip("10.0.2.2")), Some(53742)));
    assert_eq!((e.dst_ip, e.dst_port), (Some(ip("10.0.2.15")), Some(22)));
    assert_eq!(e.action, Some(Action::Deny));
    assert_eq!(e.conn_state.as_deref(), Some("PSH ACK"));
    assert_eq!(evs[1].conn_state.as_deref(), Some("SYN"));
    assert_eq!(evs[4].action, Some(Action::Allow));
    assert_eq!(evs[4].proto, Some(Proto::Udp));
    assert_eq!(ts(evs[3]), "2022-09-06T16:37:34Z");
    assert_eq!(
        evs[7].src_ip,
        Some(ip("2008:8a0:702e:ce00:acc6:c7ee:fa01:2f8a"))
    );
    assert_eq!(evs[7].dst_port, Some(51918));

    let o = cs("crowdsec_pf-scan-multi-port.log");
    let evs = events(&o);
    // 16 records (the file's 17th line is empty).
    assert_eq!(evs.len(), 16);
    assert!(evs.iter().all(|e| e.src_ip == Some(ip("10.0.2.2"))
        && e.dst_ip == Some(ip("10.0.2.15"))
        && e.action == Some(Action::Deny)
        && e.conn_state.as_deref() == Some("SYN")));
    let ports: BTreeSet<_> = evs.iter().filter_map(|e| e.dst_port).collect();
    assert_eq!(ports.len(), 16);

    let o = cs("crowdsec_pfsense-rfc5424-filterlog.log");
    let evs = events(&o);
    assert_eq!(evs.len(), 4);
    assert_eq!(evs[2].src_ip, Some(ip("fdfd:ace:ace:10:d8:cdbf:f6f8:6d69")));
    assert_eq!(evs[2].proto, Some(Proto::Tcp));
    assert_eq!(evs[0].host.as_deref(), Some("firewall.lan"));
    assert_eq!(ts(evs[0]), "2025-11-06T11:32:42.868451Z");
}

#[test]
fn mikrotik() {
    let o = cs("crowdsec_mikrotik-scan-multi_ports.log");
    let evs = events(&o);
    assert_eq!(evs.len(), 19);
    assert!(evs.iter().all(|e| e.src_ip == Some(ip("36.97.161.219"))
        && e.action == Some(Action::Drop)
        && e.conn_state.as_deref() == Some("SYN")));
    let ports: BTreeSet<_> = evs.iter().filter_map(|e| e.dst_port).collect();
    assert_eq!(ports.len(), 17);

    let o = cs("crowdsec_mikrotik-logs.log");
    let evs = events(&o);
    assert_eq!(evs.len(), 7);
    assert_eq!(
        evs.iter()
            .filter(|e| e.kind == EventKind::Connection)
            .count(),
        6
    );
    let login = evs[2];
    assert_eq!(login.kind, EventKind::Auth);
    assert_eq!(login.auth, Some(AuthOutcome::Failure));
    assert_eq!(login.user.as_deref(), Some("admin"));
    assert_eq!(login.src_ip, Some(ip("10.127.0.35")));
    assert_eq!(login.service.as_deref(), Some("winbox"));
    assert_eq!(evs[3].src_ip, Some(ip("2001:db8:1234::1")));
    assert_eq!(evs[3].dst_port, Some(20461));
    assert_eq!(evs[5].src_ip, Some(ip("192.0.2.1")), "no src-mac");
    assert_eq!(ts(evs[0]), "2023-03-18T19:35:05.734637Z");
}

#[test]
fn palo_alto_threat() {
    let o = cs("crowdsec_palo-alto-threat.log");
    let evs = events(&o);
    assert_eq!(evs.len(), 2);
    let e = evs[0];
    assert_eq!(e.kind, EventKind::Alert);
    assert_eq!((e.src_ip, e.src_port), (Some(ip("1.2.3.2")), Some(47094)));
    assert_eq!((e.dst_ip, e.dst_port), (Some(ip("1.2.3.3")), Some(22)));
    assert_eq!(e.action, Some(Action::Reject));
    assert_eq!(e.count, 23);
    assert_eq!(e.service.as_deref(), Some("ssh"));
    assert_eq!(ts(e), "2023-07-06T06:11:40Z");
    assert!(e.other_ips.contains(&ip("2.2.2.3")), "NAT destination kept");
    assert_eq!(evs[1].action, Some(Action::Alert));
}

#[test]
fn fortigate_sslvpn_bruteforce() {
    let o = cs("crowdsec_fortinet-vpn-bf.log");
    let evs = events(&o);
    assert_eq!(evs.len(), 9);
    for e in &evs {
        assert_eq!(e.kind, EventKind::Auth);
        assert_eq!(e.auth, Some(AuthOutcome::Failure));
        assert_eq!(e.service.as_deref(), Some("vpn"));
        assert_eq!(e.src_ip, Some(ip("192.168.0.1")));
    }
    assert_eq!(evs.iter().filter(|e| e.user.is_some()).count(), 5);
    assert_eq!(ts(evs[0]), "2024-10-14T20:46:40.841267391Z");
}

fn wazuh(rel: &str) -> Option<Vec<(String, String, Box<Event>)>> {
    let p = corpus(rel)?;
    let mut d = decoder("syslog", 2020);
    let mut out = Vec::new();
    for (section, raw) in wazuh_lines(&p) {
        match d.decode(raw.as_bytes()) {
            Ok(orbwatch_event::Decoded::Event(e)) => {
                assert_all_ips(&raw, &e);
                out.push((section, raw, e));
            }
            other => panic!("{raw}: {other:?}"),
        }
    }
    Some(out)
}

fn line<'a>(v: &'a [(String, String, Box<Event>)], needle: &str) -> &'a Event {
    v.iter()
        .find(|(_, raw, _)| raw.contains(needle))
        .map(|(_, _, e)| e.as_ref())
        .unwrap_or_else(|| panic!("no line with {needle}"))
}

#[test]
fn wazuh_cisco_asa() {
    let Some(v) = wazuh("firewall-vendor/wazuh_cisco_asa.ini") else {
        return;
    };
    assert_eq!(v.len(), 87);
    let e = line(&v, "%ASA-2-106001");
    assert_eq!(e.action, Some(Action::Deny));
    assert_eq!(
        (e.src_ip, e.src_port),
        (Some(ip("111.93.241.59")), Some(54322))
    );
    assert_eq!(
        (e.dst_ip, e.dst_port),
        (Some(ip("116.6.127.122")), Some(1433))
    );
    assert_eq!(e.conn_state.as_deref(), Some("SYN"));
    assert_eq!(e.proto, Some(Proto::Tcp));
    let e = line(&v, "%ASA-3-106014");
    assert_eq!(
        (e.proto, e.src_ip),
        (Some(Proto::Icmp), Some(ip("151.80.47.231")))
    );
    let e = line(&v, "%ASA-3-106010");
    assert_eq!(e.proto, Some(Proto::Other(47)));
    let e = line(&v, "%ASA-4-106023");
    assert_eq!((e.dst_ip, e.dst_port), (Some(ip("172.11.1.11")), Some(139)));
    let e = line(&v, "%ASA-6-302013");
    assert_eq!(
        (e.src_ip, e.src_port),
        (Some(ip("10.1.1.2")), Some(53496)),
        "outbound"
    );
    assert_eq!((e.dst_ip, e.dst_port), (Some(ip("10.1.2.1")), Some(22)));
    let e = line(&v, "%ASA-6-605004");
    assert_eq!(
        (e.kind, e.auth),
        (EventKind::Auth, Some(AuthOutcome::Failure))
    );
    assert_eq!(e.user.as_deref(), Some("root"));
    assert_eq!(e.dst_port, Some(22));
    let e = line(&v, "%ASA-6-113005");
    assert_eq!(e.auth, Some(AuthOutcome::Failure));
    assert_eq!(e.src_ip, Some(ip("192.168.0.1")));
    assert!(
        e.other_ips.contains(&ip("174.143.32.22")),
        "AAA server kept"
    );
    let e = line(&v, "%ASA-6-305011");
    assert_eq!(e.src_ip, Some(ip("10.235.50.55")));
    assert!(e.other_ips.contains(&ip("193.17.116.1")));
    assert_eq!(line(&v, "%ASA-4-733100").kind, EventKind::Alert);
    // Unknown ids keep every address, without direction.
    let e = line(&v, "%ASA-3-421001");
    assert_eq!(e.kind, EventKind::Other);
    assert_eq!(e.other_ips, [ip("10.233.19.92"), ip("8.8.8.8")]);
    assert_eq!(
        v.iter()
            .filter(|(_, _, e)| e.kind == EventKind::Connection)
            .count(),
        16
    );
    assert_eq!(
        v.iter()
            .filter(|(_, _, e)| e.kind == EventKind::Auth)
            .count(),
        6
    );
}

#[test]
fn wazuh_palo_alto() {
    let Some(v) = wazuh("firewall-vendor/wazuh_paloalto.ini") else {
        return;
    };
    assert_eq!(v.len(), 4);
    let states: Vec<_> = v
        .iter()
        .map(|(_, _, e)| e.conn_state.clone().unwrap_or_default())
        .collect();
    assert_eq!(states, ["start", "end", "drop", "deny"]);
    assert!(v.iter().all(|(_, _, e)| e.kind == EventKind::Connection));
    // `May 00` and `2020/00/00` are not dates: no time rather than a wrong one.
    assert!(v.iter().all(|(_, _, e)| e.time.is_none()));
}

#[test]
fn wazuh_sonicwall() {
    let Some(v) = wazuh("firewall-vendor/wazuh_SonicWall.ini") else {
        return;
    };
    assert_eq!(v.len(), 8);
    let e = line(&v, "TCP connection dropped");
    assert_eq!(e.action, Some(Action::Drop));
    assert_eq!(
        (e.src_ip, e.src_port),
        (Some(ip("67.101.200.27")), Some(4507))
    );
    assert_eq!((e.dst_ip, e.dst_port), (Some(ip("67.32.44.2")), Some(445)));
    let e = line(&v, "Administrator login denied");
    assert_eq!(
        (e.kind, e.auth),
        (EventKind::Auth, Some(AuthOutcome::Failure))
    );
    assert_eq!(e.src_ip, Some(ip("2.2.2.2")));
    let e = line(&v, "Unhandled link-local");
    assert_eq!(e.src_ip, Some(ip("fe80::9851:b780:9d9d:a29e")));
    assert_eq!(e.dst_port, Some(5355));
    assert_eq!(ts(e), "2019-02-15T09:45:17Z");
    let e = line(&v, "Web site access denied");
    assert_eq!(e.action, Some(Action::Deny));
    assert!(e.other_ips.contains(&ip("83.211.91.146")), "fw= kept");
}

#[test]
fn wazuh_checkpoint() {
    let Some(v) = wazuh("firewall-vendor/wazuh_checkpoint_smart1.ini") else {
        return;
    };
    assert_eq!(v.len(), 18);
    let e = line(&v, "action:\"Drop\"");
    assert_eq!(e.kind, EventKind::Connection);
    assert_eq!(e.action, Some(Action::Drop));
    assert_eq!(
        (e.src_ip, e.src_port),
        (Some(ip("11.22.33.77")), Some(55036))
    );
    assert_eq!(
        (e.dst_ip, e.dst_port),
        (Some(ip("11.22.33.55")), Some(1514))
    );
    assert_eq!(e.proto, Some(Proto::Udp));
    assert_eq!(ts(e), "2019-05-15T16:25:50Z");
    assert_eq!(line(&v, "action:\"Reject\"").action, Some(Action::Reject));
    let e = line(&v, "action:\"Decrypt\"");
    assert!(e.other_ips.contains(&ip("11.22.33.99")), "xlatedst kept");
    assert_eq!(line(&v, "action:\"Detect\"").kind, EventKind::Alert);
}

#[test]
fn wazuh_juniper() {
    let Some(v) = wazuh("firewall-vendor/wazuh_netscreen.ini") else {
        return;
    };
    assert_eq!(v.len(), 4);
    let e = line(&v, "SYN flood!");
    assert_eq!(e.kind, EventKind::Alert);
    assert_eq!(
        (e.src_ip, e.src_port),
        (Some(ip("192.168.18.53")), Some(41437))
    );
    assert_eq!(
        (e.dst_ip, e.dst_port),
        (Some(ip("192.168.17.251")), Some(9612))
    );
    assert_eq!(e.proto, Some(Proto::Tcp));
    assert_eq!(
        ts(line(&v, "system-information-00767")),
        "2014-05-23T14:25:58.681222Z"
    );

    let Some(v) = wazuh("firewall-vendor/wazuh_junos.ini") else {
        return;
    };
    assert_eq!(v.len(), 3);
    let e = line(&v, "RT_FLOW_SESSION_DENY");
    assert_eq!(
        (e.kind, e.action),
        (EventKind::Connection, Some(Action::Deny))
    );
    assert_eq!(
        (e.src_ip, e.src_port),
        (Some(ip("192.168.1.1")), Some(1080))
    );
    assert_eq!(
        (e.dst_ip, e.dst_port),
        (Some(ip("192.168.1.2")), Some(8010))
    );
    assert_eq!(e.proto, Some(Proto::Udp));
    assert_eq!(
        ts(e),
        "2017-09-23T13:54:54.803Z",
        "inner JunOS time, with year"
    );
    let e = line(&v, "RT_SCREEN_IP");
    assert_eq!((e.kind, e.action), (EventKind::Alert, Some(Action::Drop)));
}
