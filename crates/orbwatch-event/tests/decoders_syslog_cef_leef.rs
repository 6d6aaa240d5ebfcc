//! The CEF and LEEF decoders: CrowdSec's UniFi CEF inputs (MIT copies,
//! including the malformed header variants) and our own edge cases
//! (`tests/data/logs-syslog/orbwatch-cef-leef.log`).

mod decoders_syslog_support;

use std::net::IpAddr;

use decoders_syslog_support::*;
use orbwatch_event::{Action, AuthOutcome, Event, EventKind, Proto};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn ts(e: &Event) -> String {
    e.time.map(|t| t.to_string()).unwrap_or_default()
}

#[test]
fn crowdsec_unifi_cef_with_malformed_headers() {
    let bytes = std::fs::read(data("crowdsec_cef-logs.log")).expect("copy");
    // The sniffer picks CEF for this file.
    let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    assert_eq!(orbwatch_event::decoders::detect(&lines).name, "cef");
    let o = decode_all("cef", 2025, &bytes);
    let evs = events(&o);
    // `CEF:0|`, `CEF: 0|` (space) and `0|...` (prefix cut off) are all read.
    assert_eq!(evs.len(), 4);
    for e in &evs[..2] {
        assert_eq!(e.src_ip, Some(ip("10.72.1.222")));
        assert_eq!(ts(e), "2025-09-04T08:32:58.445Z", "UNIFIutcTime");
    }
    let e = evs[2];
    assert_eq!(e.kind, EventKind::Alert);
    assert_eq!(
        (e.src_ip, e.src_port),
        (Some(ip("192.168.0.1")), Some(54587))
    );
    assert_eq!(
        (e.dst_ip, e.dst_port),
        (Some(ip("192.168.0.233")), Some(80))
    );
    assert_eq!(e.proto, Some(Proto::Tcp));
    assert_eq!(
        e.action,
        Some(Action::Deny),
        "\"...and Blocked\" in the name"
    );
    let e = evs[3];
    assert_eq!(e.host.as_deref(), Some("UDM-Gent"), "syslog header host");
    assert!(
        e.other_ips.contains(&ip("192.168.100.1")),
        "device address kept"
    );

    // The same lines through the syslog decoder give the same events.
    let o2 = decode_all("syslog", 2025, &bytes);
    let evs2 = events(&o2);
    assert_eq!(evs2.len(), 4);
    for (a, b) in evs.iter().zip(&evs2) {
        assert_eq!(a, b);
    }

    let bytes = std::fs::read(data("crowdsec_unifi-cef.log")).expect("copy");
    let o = decode_all("cef", 2025, &bytes);
    let evs = events(&o);
    assert_eq!(evs.len(), 3);
    let e = evs[2];
    assert_eq!(
        (e.src_ip, e.dst_port),
        (Some(ip("198.51.100.10")), Some(80))
    );
    assert_eq!(e.action, Some(Action::Deny), "act=blocked");
    assert_eq!(e.service.as_deref(), Some("HTTP"));
    assert_eq!(ts(e), "2025-10-26T19:01:31.807Z");
}

fn own() -> Vec<(String, Out)> {
    let bytes = std::fs::read(data("orbwatch-cef-leef.log")).expect("fixture");
    let mut out = Vec::new();
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let fmt = if line.windows(5).any(|w| w == b"LEEF:") {
            "leef"
        } else {
            "cef"
        };
        let mut o = decode_all(fmt, 2021, line);
        out.append(&mut o);
    }
    out
}

fn by<'a>(o: &'a [(String, Out)], needle: &str) -> &'a Out {
    &o.iter()
        .find(|(l, _)| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle}"))
        .1
}

#[test]
fn cef_edge_cases() {
    let o = own();
    assert!(matches!(by(&o, "# CEF and LEEF"), Out::Skip));
    let e = by(&o, "Acme\\|Corp").event().expect("escaped pipes");
    assert_eq!(e.kind, EventKind::Connection);
    assert_eq!(e.action, Some(Action::Deny));
    assert_eq!((e.src_ip, e.dst_port), (Some(ip("203.0.113.5")), Some(22)));
    assert_eq!(ts(e), "2021-07-20T10:00:00Z", "rt in epoch ms");

    let e = by(&o, "auth-fail").event().expect("syslog + CEF");
    assert_eq!(
        (e.kind, e.auth),
        (EventKind::Auth, Some(AuthOutcome::Failure))
    );
    assert_eq!(e.user.as_deref(), Some("alice"));
    assert_eq!(e.host.as_deref(), Some("fw01"));
    assert_eq!(
        ts(e),
        "2021-07-20T10:00:00Z",
        "rt as MMM dd yyyy HH:mm:ss UTC"
    );

    let e = by(&o, "Exploit attempt").event().expect("IPv6");
    assert_eq!(e.kind, EventKind::Alert);
    assert_eq!(e.src_ip, Some(ip("2001:db8::7")));
    assert_eq!(e.dst_ip, Some(ip("2001:db8::1")));
    assert_eq!(e.url.as_deref(), Some("https://victim.example/login"));
    assert!(e.other_ips.contains(&ip("192.0.2.1")), "dvc kept");

    let e = by(&o, "Web request").event().expect("proxy");
    assert_eq!(e.domain.as_deref(), Some("evil.example.net"));
    assert_eq!(
        e.url.as_deref(),
        Some("http://evil.example.net/a?b=c"),
        "unescaped"
    );
    assert_eq!((e.bytes_out, e.bytes_in), (Some(123), Some(4567)));

    // Truncated header: the address is kept, in an `Other` event...
    let e = by(&o, "header src=198.51.100.99").event().expect("kept");
    assert_eq!(e.kind, EventKind::Other);
    assert_eq!(e.other_ips, [ip("198.51.100.99")]);
    // ...and without any address the line is rejected with the reason.
    match by(&o, "without any address") {
        Out::Err(e) => assert!(e.contains("CEF header cut short: 2 of 7"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn leef_edge_cases() {
    let o = own();
    let e = by(&o, "LEEF:1.0|Acme|FW").event().expect("LEEF 1.0");
    assert_eq!(e.action, Some(Action::Deny));
    assert_eq!(e.kind, EventKind::Connection);
    assert_eq!((e.dst_port, e.proto), (Some(3389), Some(Proto::Tcp)));
    assert_eq!(ts(e), "2021-07-20T10:00:00Z");

    let e = by(&o, "LoginFailure").event().expect("LEEF 2.0 ^");
    assert_eq!(
        (e.kind, e.auth),
        (EventKind::Auth, Some(AuthOutcome::Failure))
    );
    assert_eq!(e.user.as_deref(), Some("bob"));
    assert_eq!(ts(e), "2021-07-20T08:00:00Z", "devTimeFormat with zone");

    let e = by(&o, "|x09|").event().expect("LEEF 2.0 hex delimiter");
    assert_eq!((e.src_port, e.dst_port), (Some(1234), Some(53)));
    assert_eq!((e.bytes_out, e.bytes_in), (Some(100), Some(200)));
    assert_eq!(ts(e), "2021-07-20T10:00:00Z", "devTime epoch ms");

    let e = by(&o, "portal-prelogin").event().expect("space delimiter");
    assert_eq!(e.user.as_deref(), Some("corp\\carol"));
    assert!(e.other_ips.contains(&ip("203.0.113.77")));
    assert_eq!(ts(e), "2021-09-24T20:13:46.277654Z");
}

#[test]
fn cef_and_leef_reject_what_they_cannot_read() {
    let mut d = decoder("cef", 2021);
    assert!(d.decode(b"hello world").is_err());
    assert!(d.decode(b"CEF:x|a|b|c|d|e|f|src=1.2.3.4").is_err());
    let mut d = decoder("leef", 2021);
    assert!(d.decode(b"hello world").is_err());
    assert!(d.decode(b"LEEF:1.0|a").is_err());
    assert!(d.decode(b"LEEF:9.0|a|b|c|d|src=1.2.3.4").is_err());
}
