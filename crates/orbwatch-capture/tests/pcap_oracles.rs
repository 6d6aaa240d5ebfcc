//! Flows from corpus captures against two independent oracles: nDPI's
//! `.pcap.out` flow lists (next to the pcaps) and Suricata's EVE flow
//! events (`generated/suricata-eve`, made from the same pcaps). Each flow
//! is compared by its unordered 5-tuple, with packets and bytes each way.

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::net::IpAddr;
use std::path::Path;

use orbwatch_capture::pcap::{PcapOptions, read_capture};
use orbwatch_capture::{BinaryFormat, Emitted, detect};
use orbwatch_event::EventKind;

/// Unordered flow key: protocol and the two endpoints, sorted.
type Key = (String, (IpAddr, u16), (IpAddr, u16));

/// Per flow: packets and bytes sent by the lower endpoint, then by the other.
type Counts = (u64, u64, u64, u64);

fn key(proto: &str, a: (IpAddr, u16), b: (IpAddr, u16)) -> (Key, bool) {
    if a <= b {
        ((proto.to_string(), a, b), false)
    } else {
        ((proto.to_string(), b, a), true)
    }
}

fn put(
    m: &mut BTreeMap<Key, Vec<Counts>>,
    proto: &str,
    a: (IpAddr, u16),
    b: (IpAddr, u16),
    c: Counts,
) {
    let (k, swapped) = key(proto, a, b);
    let c = if swapped { (c.2, c.3, c.0, c.1) } else { c };
    m.entry(k).or_default().push(c);
}

fn ours(path: &Path) -> (BTreeMap<Key, Vec<Counts>>, orbwatch_capture::Coverage) {
    let f = BufReader::new(File::open(path).unwrap());
    let (events, cov) = common::collect(|s| read_capture(f, &PcapOptions::default(), s));
    let mut m = BTreeMap::new();
    for Emitted { event: e, .. } in events {
        if e.kind != EventKind::Connection {
            continue;
        }
        let proto = match e.proto.unwrap() {
            orbwatch_event::Proto::Tcp => "TCP".to_string(),
            orbwatch_event::Proto::Udp => "UDP".to_string(),
            orbwatch_event::Proto::Icmp => "ICMP".to_string(),
            orbwatch_event::Proto::Icmp6 => "ICMPV6".to_string(),
            orbwatch_event::Proto::Other(n) => n.to_string(),
        };
        let total = e.packets.unwrap();
        let back = e.packets_in.unwrap();
        put(
            &mut m,
            &proto,
            (e.src_ip.unwrap(), e.src_port.unwrap_or(0)),
            (e.dst_ip.unwrap(), e.dst_port.unwrap_or(0)),
            (
                total - back,
                e.bytes_out.unwrap(),
                back,
                e.bytes_in.unwrap(),
            ),
        );
    }
    (m, cov)
}

fn endpoint(s: &str) -> (IpAddr, u16) {
    let (ip, port) = s.rsplit_once(':').unwrap();
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    (ip.parse().unwrap(), port.parse().unwrap())
}

/// Flows listed in an nDPI `.pcap.out` file.
fn ndpi(path: &Path) -> BTreeMap<Key, Vec<Counts>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix('\t') else {
            continue;
        };
        let mut parts = rest.splitn(2, '\t');
        let (Some(n), Some(body)) = (parts.next(), parts.next()) else {
            continue;
        };
        if n.parse::<u64>().is_err() {
            continue;
        }
        let mut w = body.split(' ');
        let proto = w.next().unwrap();
        let a = w.next().unwrap();
        let _arrow = w.next().unwrap();
        let b = w.next().unwrap();
        let counts = body.split("][").find(|p| p.contains(" pkts/")).unwrap();
        let nums: Vec<u64> = counts
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        put(
            &mut m,
            proto,
            endpoint(a),
            endpoint(b),
            (nums[0], nums[1], nums[2], nums[3]),
        );
    }
    m
}

/// Flow events of a Suricata EVE file.
fn suricata(path: &Path) -> BTreeMap<Key, Vec<Counts>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["event_type"] != "flow" {
            continue;
        }
        let ip = |k: &str| v[k].as_str().unwrap().parse::<IpAddr>().unwrap();
        let port = |k: &str| v[k].as_u64().unwrap_or(0) as u16;
        let f = &v["flow"];
        let n = |k: &str| f[k].as_u64().unwrap();
        put(
            &mut m,
            v["proto"].as_str().unwrap(),
            (ip("src_ip"), port("src_port")),
            (ip("dest_ip"), port("dest_port")),
            (
                n("pkts_toserver"),
                n("bytes_toserver"),
                n("pkts_toclient"),
                n("bytes_toclient"),
            ),
        );
    }
    m
}

fn total(m: &BTreeMap<Key, Vec<Counts>>) -> usize {
    m.values().map(|v| v.len()).sum()
}

/// Compare two flow maps; returns a readable list of differences.
fn diff(a: &BTreeMap<Key, Vec<Counts>>, b: &BTreeMap<Key, Vec<Counts>>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, va) in a {
        match b.get(k) {
            None => out.push(format!("only ours: {k:?} {va:?}")),
            Some(vb) => {
                let mut x = va.clone();
                let mut y = vb.clone();
                x.sort();
                y.sort();
                if x != y {
                    out.push(format!("differs: {k:?} ours {x:?} oracle {y:?}"));
                }
            }
        }
    }
    for (k, vb) in b {
        if !a.contains_key(k) {
            out.push(format!("only oracle: {k:?} {vb:?}"));
        }
    }
    out
}

fn check_ndpi(name: &str, expect_flows: usize) {
    let Some(c) = common::corpus() else { return };
    let pcap = c.join("pcap").join(name);
    let (m, cov) = ours(&pcap);
    let oracle = ndpi(&c.join("pcap").join(format!("{name}.out")));
    assert_eq!(total(&oracle), expect_flows, "oracle flow count for {name}");
    let d = diff(&m, &oracle);
    assert!(
        d.is_empty(),
        "{name}: {} differences:\n{}",
        d.len(),
        d.join("\n")
    );
    assert_eq!(cov.flows as usize, expect_flows);
    assert_eq!(cov.errors, 0, "{:?}", cov.reasons);
}

fn check_suricata(name: &str, expect_flows: usize) {
    let Some(c) = common::corpus() else { return };
    let (m, cov) = ours(&c.join("pcap").join(name));
    let stem = name.rsplit_once('.').unwrap().0;
    let oracle = suricata(
        &c.join("generated/suricata-eve")
            .join(format!("{stem}.eve.json")),
    );
    assert_eq!(total(&oracle), expect_flows, "oracle flow count for {name}");
    let d = diff(&m, &oracle);
    assert!(
        d.is_empty(),
        "{name}: {} differences:\n{}",
        d.len(),
        d.join("\n")
    );
    assert_eq!(cov.flows as usize, expect_flows);
}

#[test]
fn ndpi_synscan_flows_match_ndpi() {
    check_ndpi("ndpi_synscan.pcap", 1994);
}

#[test]
fn ndpi_tcp_scan_flows_match_ndpi() {
    check_ndpi("ndpi_tcp_scan.pcapng", 7);
}

#[test]
fn ndpi_ssh_flows_match_ndpi() {
    check_ndpi("ndpi_ssh.pcap", 2);
}

#[test]
fn synscan_flows_match_suricata() {
    check_suricata("ndpi_synscan.pcap", 1994);
}

#[test]
fn sshguess_flows_match_suricata() {
    check_suricata("zeek_ssh_sshguess.pcap", 11);
}

#[test]
fn ftp_bruteforce_flows_match_suricata() {
    check_suricata("zeek_ftp_bruteforce.pcap", 30);
}

#[test]
fn nmap_vsn_flows_match_suricata() {
    check_suricata("zeek_nmap-vsn.pcap", 18);
}

#[test]
fn wikipedia_flows_match_suricata() {
    check_suricata("zeek_wikipedia.pcap", 34);
}

#[test]
fn dns_txt_c2_flows_match_suricata() {
    check_suricata("evtxattack_dns_txt_c2.pcap", 110);
}

#[test]
fn tls_chrome_flows_match_suricata() {
    check_suricata("zeek_tls_chrome-34-google.pcap", 1);
}

#[test]
fn format_is_detected_by_magic_not_extension() {
    let Some(c) = common::corpus() else { return };
    let head = |n: &str| std::fs::read(c.join("pcap").join(n)).unwrap();
    assert_eq!(
        detect(&head("ndpi_tcp_scan.pcapng")),
        Some(BinaryFormat::Pcap)
    );
    assert_eq!(detect(&head("ndpi_ssh.pcap")), Some(BinaryFormat::Pcapng));
}

fn events(name: &str) -> Vec<Emitted> {
    let c = common::corpus().unwrap();
    let f = BufReader::new(File::open(c.join("pcap").join(name)).unwrap());
    common::collect(|s| read_capture(f, &PcapOptions::default(), s)).0
}

fn eve(name: &str) -> Vec<serde_json::Value> {
    let c = common::corpus().unwrap();
    let text = std::fs::read_to_string(c.join("generated/suricata-eve").join(name)).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// DNS messages on port 53 (Suricata parses DNS there only; we also read
/// mDNS and LLMNR) agree with Suricata's dns query + answer events, and
/// HTTP requests with its http events, except the one request whose
/// connection began before the capture (Suricata needs the handshake).
#[test]
fn dns_and_http_events_match_suricata() {
    if common::corpus().is_none() {
        return;
    }
    for (pcap, json, dns53, mdns_llmnr) in [
        ("zeek_wikipedia.pcap", "zeek_wikipedia.eve.json", 28, 10),
        ("zeek_nmap-vsn.pcap", "zeek_nmap-vsn.eve.json", 12, 0),
        (
            "evtxattack_dns_txt_c2.pcap",
            "evtxattack_dns_txt_c2.eve.json",
            199,
            12,
        ),
    ] {
        let ev = events(pcap);
        let dns: Vec<_> = ev
            .iter()
            .filter(|e| e.event.kind == EventKind::Dns)
            .collect();
        let on53 = dns
            .iter()
            .filter(|e| e.event.src_port == Some(53) || e.event.dst_port == Some(53))
            .count();
        let suri = eve(json)
            .iter()
            .filter(|v| v["event_type"] == "dns")
            .count();
        assert_eq!(suri, dns53, "{json}");
        assert_eq!(on53, dns53, "{pcap}");
        assert_eq!(dns.len() - on53, mdns_llmnr, "{pcap}");
    }
    let ev = events("zeek_wikipedia.pcap");
    let ours: Vec<(String, String)> = ev
        .iter()
        .filter(|e| e.event.kind == EventKind::Http)
        .map(|e| {
            (
                e.event.domain.clone().unwrap(),
                e.event.url.clone().unwrap(),
            )
        })
        .collect();
    let suri: Vec<(String, String)> = eve("zeek_wikipedia.eve.json")
        .iter()
        .filter(|v| v["event_type"] == "http")
        .map(|v| {
            let h = v["http"]["hostname"].as_str().unwrap().to_string();
            let u = format!("http://{h}{}", v["http"]["url"].as_str().unwrap());
            (h, u)
        })
        .collect();
    assert_eq!(suri.len(), 14);
    assert_eq!(ours.len(), 15);
    for s in &suri {
        assert!(ours.contains(s), "missing {s:?}");
    }
    assert!(ours.contains(&(
        "www.wikipedia.org".into(),
        "http://www.wikipedia.org/".into()
    )));
    let tls: Vec<_> = events("zeek_tls_chrome-34-google.pcap")
        .into_iter()
        .filter(|e| e.event.kind == EventKind::Tls)
        .collect();
    let suri_sni: Vec<String> = eve("zeek_tls_chrome-34-google.eve.json")
        .iter()
        .filter(|v| v["event_type"] == "tls")
        .map(|v| v["tls"]["sni"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tls.len(), 1);
    assert_eq!(suri_sni, vec![tls[0].event.domain.clone().unwrap()]);
}

/// TCP flags seen each way (shown in the evidence line, and the basis of
/// `conn_state`) agree with Suricata's `tcp_flags_ts`/`tcp_flags_tc`.
#[test]
fn tcp_flags_match_suricata() {
    if common::corpus().is_none() {
        return;
    }
    let letters = |hex: Option<&str>| -> String {
        let f = hex.map_or(0, |h| u8::from_str_radix(h, 16).unwrap());
        orbwatch_capture::flow::flag_letters(f & 0x3f)
    };
    let mut checked = 0;
    for (pcap, json) in [
        ("ndpi_synscan.pcap", "ndpi_synscan.eve.json"),
        ("zeek_nmap-vsn.pcap", "zeek_nmap-vsn.eve.json"),
        ("zeek_ssh_sshguess.pcap", "zeek_ssh_sshguess.eve.json"),
        ("zeek_wikipedia.pcap", "zeek_wikipedia.eve.json"),
    ] {
        let mut ours = BTreeMap::new();
        for e in events(pcap) {
            if e.event.kind != EventKind::Connection
                || e.event.proto != Some(orbwatch_event::Proto::Tcp)
            {
                continue;
            }
            let k = (
                e.event.src_ip.unwrap(),
                e.event.src_port.unwrap(),
                e.event.dst_ip.unwrap(),
                e.event.dst_port.unwrap(),
            );
            let raw = e.raw();
            let flags = raw.split(" flags ").nth(1).unwrap();
            let flags = flags.split(' ').next().unwrap().to_string();
            ours.insert(k, flags);
        }
        for v in eve(json) {
            if v["event_type"] != "flow" || v["proto"] != "TCP" {
                continue;
            }
            let k = (
                v["src_ip"].as_str().unwrap().parse::<IpAddr>().unwrap(),
                v["src_port"].as_u64().unwrap() as u16,
                v["dest_ip"].as_str().unwrap().parse::<IpAddr>().unwrap(),
                v["dest_port"].as_u64().unwrap() as u16,
            );
            // Midstream flows (no handshake seen): Suricata records no flags.
            if v["tcp"]["tcp_flags"] == "00" {
                continue;
            }
            let want = format!(
                "{}/{}",
                letters(v["tcp"]["tcp_flags_ts"].as_str()),
                letters(v["tcp"]["tcp_flags_tc"].as_str())
            );
            assert_eq!(ours.get(&k), Some(&want), "{pcap} {k:?}");
            checked += 1;
        }
    }
    println!("checked {checked}");
    assert_eq!(checked, 2030);
}

/// Connection states of the scans (see `flow` for the mapping).
#[test]
fn conn_states_tell_probes_apart() {
    if common::corpus().is_none() {
        return;
    }
    let states = |pcap: &str| {
        let mut m = BTreeMap::new();
        for e in events(pcap) {
            if let Some(s) = e.event.conn_state {
                *m.entry(s).or_insert(0) += 1;
            }
        }
        m
    };
    let s = states("ndpi_synscan.pcap");
    assert_eq!(s.get("S0"), Some(&1986));
    assert_eq!(s.get("REJ"), Some(&5));
    assert_eq!(s.get("S1"), Some(&3));
    // connect() scan of open ports (RSTO), closed ports (REJ), then
    // FIN, NULL and Xmas probes answered by RST (no SYN seen: OTH).
    let s = states("ndpi_tcp_scan.pcapng");
    assert_eq!(s.get("RSTO"), Some(&2), "{s:?}");
    assert_eq!(s.get("REJ"), Some(&2), "{s:?}");
    assert_eq!(s.get("OTH"), Some(&3), "{s:?}");
}
