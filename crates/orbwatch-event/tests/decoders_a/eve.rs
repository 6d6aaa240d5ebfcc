//! Suricata EVE: exact counts per file, field values, every address.

use std::net::IpAddr;

use orbwatch_event::decoders::detect;
use orbwatch_event::model::{Action, AuthOutcome, EventKind, Proto};

use super::common::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// (file, events, skipped stats records)
const FILES: &[(&str, usize, usize)] = &[
    ("crowdsec_eve_alerts.json", 4, 0),
    ("crowdsec_eve_mixed.json", 6, 2),
    ("suricata_verify_fileinfo_eve.json", 1, 0),
    ("zeek_ftp_bruteforce.eve.json", 210, 1),
    ("zeek_nmap-vsn.eve.json", 30, 1),
    ("zeek_ssh_sshguess.eve.json", 22, 1),
    ("zeek_tls_chrome-34-google.eve.json", 2, 1),
    ("zeek_wikipedia.eve.json", 76, 1),
];

/// What the decoder deliberately does not search: user agents (version
/// numbers such as `rv:1.9.2.15`) and certificate serials
/// (`5F:16:E9:1E:8E:86:3F:49` has the shape of an IPv6 address).
fn strip(l: &[u8]) -> Vec<u8> {
    strip_json_key(&strip_json_key(l, "http_user_agent"), "serial")
}

#[test]
fn counts_and_every_address() {
    let mut checked = 0;
    for &(name, ev, sk) in FILES {
        let bytes = data(name);
        let r = run("eve", &bytes);
        assert_eq!(r.counts(), (ev, sk, 0), "{name}: {:?}", r.rejects);
        checked += assert_ips_match(&r, strip, name);
        let ls = lines(&bytes);
        assert_eq!(detect(&ls[..ls.len().min(20)]).name, "eve", "{name}");
    }
    assert_eq!(checked, 351);
}

#[test]
fn corpus_only_files() {
    // Generated from LGPL/GPL pcaps: read in place, not copied.
    for (rel, ev, dns, flows) in [
        (
            "generated/suricata-eve/ndpi_synscan.eve.json",
            1994,
            0,
            1994,
        ),
        (
            "generated/suricata-eve/evtxattack_dns_txt_c2.eve.json",
            309,
            199,
            110,
        ),
    ] {
        let Some(bytes) = corpus(rel) else { return };
        let r = run("eve", &bytes);
        assert_eq!(r.counts(), (ev, 1, 0), "{rel}");
        assert_eq!(
            r.events
                .iter()
                .filter(|e| e.2.kind == EventKind::Dns)
                .count(),
            dns
        );
        assert_eq!(
            r.events
                .iter()
                .filter(|e| e.2.kind == EventKind::Connection)
                .count(),
            flows
        );
        assert_eq!(assert_ips_match(&r, strip, rel), ev);
    }
    let bytes = corpus("generated/suricata-eve/ndpi_synscan.eve.json").unwrap_or_default();
    let r = run("eve", &bytes);
    // A SYN scan: Suricata leaves every flow `new`; the decoder names the
    // ones the server never answered with SYN-ACK as Zeek would: `S0`
    // (nothing back) or `REJ` (a reset back). Counts from an independent Python pass
    // over `tcp.tcp_flags_tc` and `flow.bytes_toclient`: 1986 S0, 5 REJ,
    // and 3 that got bytes back without flags recorded stay `new`.
    let count = |st: &str| {
        r.events
            .iter()
            .filter(|e| e.2.conn_state.as_deref() == Some(st))
            .count()
    };
    assert_eq!((count("S0"), count("REJ"), count("new")), (1986, 5, 3));
}

#[test]
fn flow_alert_fields() {
    let r = run_data("eve", "zeek_ftp_bruteforce.eve.json");
    let e = r.at(1);
    assert_eq!(e.kind, EventKind::Alert);
    assert_eq!(e.action, Some(Action::Alert));
    assert_eq!(e.time.unwrap().to_string(), "2014-01-14T17:37:24.826632Z");
    assert_eq!(e.src_ip, Some(ip("192.168.56.101")));
    assert_eq!(e.src_port, Some(21));
    assert_eq!(e.dst_ip, Some(ip("192.168.56.1")));
    assert_eq!(e.dst_port, Some(54017));
    assert_eq!(e.proto, Some(Proto::Tcp));
    assert_eq!(e.service.as_deref(), Some("ftp"));
    assert_eq!(
        (e.bytes_out, e.bytes_in, e.packets),
        (Some(286), Some(275), Some(7))
    );

    let flow = r
        .events
        .iter()
        .find(|e| e.2.kind == EventKind::Connection)
        .unwrap();
    assert_eq!(flow.2.conn_state.as_deref(), Some("closed"));
    assert_eq!(flow.2.packets, Some(20));
    assert_eq!(flow.2.bytes_out, Some(763));
}

#[test]
fn ftp_failed_logins_name_their_user() {
    let r = run_data("eve", "zeek_ftp_bruteforce.eve.json");
    let fails: Vec<_> = r
        .events
        .iter()
        .filter(|e| e.2.auth == Some(AuthOutcome::Failure))
        .collect();
    assert_eq!(fails.len(), 30);
    assert!(fails.iter().all(|e| e.2.user.as_deref() == Some("bro")
        && e.2.kind == EventKind::Auth
        && e.2.src_ip == Some(ip("192.168.56.1"))
        && e.2.dst_port == Some(21)));
}

#[test]
fn dns_http_tls_fileinfo_ssh() {
    let r = run_data("eve", "zeek_nmap-vsn.eve.json");
    let e = r.at(2);
    assert_eq!(e.kind, EventKind::Dns);
    assert_eq!(e.domain.as_deref(), Some("50.1.168.192.in-addr.arpa"));
    assert_eq!(
        e.other_ips,
        vec![ip("192.168.1.50")],
        "the address a PTR query names"
    );

    let r = run_data("eve", "zeek_wikipedia.eve.json");
    let e = r.at(1);
    assert_eq!(e.kind, EventKind::Http);
    assert_eq!(e.domain.as_deref(), Some("bits.wikimedia.org"));
    assert_eq!(
        e.url.as_deref(),
        Some("http://bits.wikimedia.org/skins-1.5/monobook/main.css")
    );
    let dns_answers: Vec<_> = r
        .events
        .iter()
        .filter(|e| e.2.kind == EventKind::Dns && !e.2.other_ips.is_empty())
        .collect();
    assert!(!dns_answers.is_empty());

    let r = run_data("eve", "zeek_tls_chrome-34-google.eve.json");
    let e = r.at(1);
    assert_eq!(e.kind, EventKind::Tls);
    assert_eq!(e.domain.as_deref(), Some("google.de"));
    assert_eq!(e.other_domains, vec!["*.google.de".to_string()]);
    assert_eq!(
        e.hashes,
        vec!["cb69d04ec2ee0638e93c6ecc56b7dcc1f843c247".to_string()]
    );

    let r = run_data("eve", "suricata_verify_fileinfo_eve.json");
    let e = r.at(1);
    assert_eq!(e.kind, EventKind::File);
    assert_eq!(
        e.url.as_deref(),
        Some("http://www.eicar.org/download/eicar.com")
    );
    assert_eq!(e.src_ip, Some(ip("188.40.238.250")));
    assert_eq!(e.time.unwrap().to_string(), "2016-06-08T20:01:52.875791Z");

    let r = run_data("eve", "zeek_ssh_sshguess.eve.json");
    let e = r.at(1);
    assert_eq!(e.kind, EventKind::Auth);
    assert_eq!(e.service.as_deref(), Some("ssh"));
    assert_eq!(e.dst_ip, Some(ip("192.168.56.103")));
}

#[test]
fn crowdsec_alerts() {
    let r = run_data("eve", "crowdsec_eve_alerts.json");
    assert!(
        r.events
            .iter()
            .all(|e| e.2.kind == EventKind::Alert && e.2.action == Some(Action::Alert))
    );
    let r = run_data("eve", "crowdsec_eve_mixed.json");
    let e = r.at(1);
    assert_eq!(e.src_ip, Some(ip("1.2.3.4")));
    assert_eq!(e.dst_ip, Some(ip("127.0.0.1")));
    assert_eq!(e.time.unwrap().to_string(), "2022-07-10T23:50:05.533101Z");
}

#[test]
fn formats_and_oddities() {
    let log = concat!(
        // Offset time, blocked alert.
        r#"{"timestamp":"2021-07-20T10:00:00.123456+0200","event_type":"alert","src_ip":"203.0.113.5","src_port":4444,"dest_ip":"10.0.0.2","dest_port":22,"proto":"TCP","alert":{"action":"blocked","signature":"ET SCAN"}}"#,
        "\n",
        // DNS v1 answer.
        r#"{"timestamp":"2017-01-01T00:00:00.000000+0000","event_type":"dns","src_ip":"10.0.0.53","dest_ip":"10.0.0.1","dns":{"type":"answer","id":1,"rrname":"Evil.Example.","rrtype":"A","ttl":60,"rdata":"198.51.100.23"}}"#,
        "\n",
        // DNS v3 queries.
        r#"{"timestamp":"2024-01-01T00:00:00.000000+0000","event_type":"dns","src_ip":"10.0.0.1","dest_ip":"10.0.0.53","dns":{"version":3,"type":"request","queries":[{"rrname":"a.example","rrtype":"A"}]}}"#,
        "\n",
        // Grouped answers, IPv6, a stats-like engine record, a bad port.
        r#"{"timestamp":"2024-01-01T00:00:00Z","event_type":"dns","src_ip":"2001:db8::53","src_port":99999999999999999999,"dest_ip":"2001:db8::1","dns":{"version":2,"type":"answer","rrname":"b.example","grouped":{"AAAA":["2001:db8::77"],"CNAME":["c.example"]}}}"#,
        "\n",
        r#"{"timestamp":"2024-01-01T00:00:00Z","event_type":"stats","stats":{"uptime":1}}"#,
        "\n",
        r#"{"timestamp":"2024-01-01T00:00:00Z","event_type":"tls","src_ip":"10.0.0.1","dest_ip":"192.0.2.8","tls":{"sni":"x.example","ja3":{"hash":"E7D705A3286E19EA42F587B344EE6865"}}}"#,
        "\n",
        r#"{"timestamp":"2024-01-01T00:00:00Z","event_type":"drop","src_ip":"#,
        "\n",
    );
    let r = run("eve", log.as_bytes());
    assert_eq!(r.counts(), (5, 1, 1));
    let e = r.at(1);
    assert_eq!(e.time.unwrap().to_string(), "2021-07-20T08:00:00.123456Z");
    assert_eq!(e.action, Some(Action::Drop));
    let e = r.at(2);
    assert_eq!(e.domain.as_deref(), Some("evil.example"));
    assert_eq!(e.other_ips, vec![ip("198.51.100.23")]);
    assert_eq!(r.at(3).domain.as_deref(), Some("a.example"));
    let e = r.at(4);
    assert_eq!(e.src_port, None);
    assert_eq!(e.other_ips, vec![ip("2001:db8::77")]);
    assert_eq!(e.other_domains, vec!["c.example".to_string()]);
    assert_eq!(
        r.at(6).hashes,
        vec!["e7d705a3286e19ea42f587b344ee6865".to_string()]
    );
    assert!(r.rejects[0].1.starts_with("invalid EVE JSON"));
}
