//! Syslog/CEF forwarding to real listener sockets (UDP and TCP with octet
//! counting and with newline framing), parsed back: the RFC 5424 envelope,
//! the CEF header and extensions survive hostile characters.

mod common;

use std::collections::BTreeMap;
use std::io::{BufReader, Read};
use std::net::{TcpListener, UdpSocket};
use std::sync::mpsc;
use std::time::Duration;

use common::{finding, ts, wait_for};
use orbwatch_alert::{AlertConfig, Alerts, DeliveryConfig, SinkSpec, SyslogSpec};
use orbwatch_detect::{FindingKind, Severity};
use orbwatch_store::Store;

/// An RFC 5424 message: (PRI, version, timestamp, hostname, app, procid,
/// msgid, structured data, msg).
fn parse_5424(m: &str) -> (u16, Vec<String>, String) {
    let rest = m.strip_prefix('<').expect("PRI");
    let (pri, rest) = rest.split_once('>').expect("PRI end");
    let mut parts = rest.splitn(8, ' ');
    let fields: Vec<String> = (0..7)
        .map(|_| parts.next().expect("header field").to_string())
        .collect();
    (
        pri.parse().expect("PRI number"),
        fields,
        parts.next().expect("MSG").to_string(),
    )
}

/// Split a CEF line into its 7 header fields and its extensions, undoing
/// the escapes.
fn parse_cef(line: &str) -> (Vec<String>, BTreeMap<String, String>) {
    let mut header = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars();
    while header.len() < 7 {
        match chars.next().expect("CEF header ends early") {
            '\\' => cur.push(chars.next().expect("escape")),
            '|' => header.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    let ext: String = chars.collect();
    // Extension: key=value pairs; a value runs to the next ` key=` where
    // `=` is not escaped.
    let mut out = BTreeMap::new();
    let bytes: Vec<char> = ext.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let key_start = i;
        while i < bytes.len() && bytes[i] != '=' {
            i += 1;
        }
        let key: String = bytes[key_start..i].iter().collect();
        i += 1;
        let mut value = String::new();
        loop {
            if i >= bytes.len() {
                break;
            }
            // Is this the start of ` nextkey=`?
            if bytes[i] == ' ' {
                let mut j = i + 1;
                while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == '_') {
                    j += 1;
                }
                if j > i + 1 && j < bytes.len() && bytes[j] == '=' {
                    i += 1;
                    break;
                }
            }
            if bytes[i] == '\\' && i + 1 < bytes.len() {
                value.push(match bytes[i + 1] {
                    'n' => '\n',
                    'r' => '\r',
                    c => c,
                });
                i += 2;
                continue;
            }
            value.push(bytes[i]);
            i += 1;
        }
        out.insert(key, value);
    }
    (header, out)
}

#[test]
fn cef_over_udp_and_tcp_arrives_parseable_with_hostile_text() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let mut store = Store::open(&db).unwrap();

    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_lf = TcpListener::bind("127.0.0.1:0").unwrap();
    let specs: Vec<SyslogSpec> = [
        format!("udp://{}", udp.local_addr().unwrap()),
        format!("tcp://{}", tcp.local_addr().unwrap()),
        format!("tcp+lf://{}", tcp_lf.local_addr().unwrap()),
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    // Each TCP receiver reads until the sender closes (delivery stopped).
    let (txc, rxc) = mpsc::channel::<(usize, Vec<u8>)>();
    for (k, l) in [(1usize, tcp), (2, tcp_lf)] {
        let txc = txc.clone();
        std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s);
            let mut all = Vec::new();
            let _ = r.read_to_end(&mut all);
            let _ = txc.send((k, all));
        });
    }

    let mut hostile = finding(
        "f-hostile",
        FindingKind::BruteForce,
        "45.155.205.233",
        Severity::High,
        80,
    );
    hostile.reasons = vec![
        "user a|b=c\\d tried".into(),
        "second line\nCEF:0|fake|header|".into(),
    ];
    hostile.accounts = vec!["x=y".into(), "z\\".into()];
    let v6 = finding(
        "f-v6",
        FindingKind::PortScan,
        "2a01:4f8:c17:1::1",
        Severity::Critical,
        95,
    );
    let mut low = finding(
        "f-low",
        FindingKind::PortScan,
        "45.155.205.7",
        Severity::Low,
        20,
    );
    low.reasons.clear();
    let all = [hostile.clone(), v6.clone(), low.clone()];

    let alerts = Alerts::new(AlertConfig {
        sinks: specs.into_iter().map(SinkSpec::Syslog).collect(),
        delivery: DeliveryConfig {
            poll: Duration::from_millis(10),
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_millis(50),
            ..DeliveryConfig::default()
        },
        ..AlertConfig::default()
    });
    let now = ts("2026-03-01T10:05:00.123456Z");
    let tx = store.write_transaction().unwrap();
    assert_eq!(alerts.on_findings_at(&tx, &all, now).unwrap().queued, 9);
    tx.commit().unwrap();
    let handle = alerts.start_delivery(&db).unwrap();
    let names = alerts.sink_names().to_vec();
    wait_for(Duration::from_secs(20), "syslog delivery", || {
        names
            .iter()
            .all(|n| store.pending_alert_count(n).unwrap() == 0)
    });
    handle.stop();

    let mut udp_msgs = Vec::new();
    let mut buf = [0u8; 65536];
    for _ in 0..3 {
        let n = udp.recv(&mut buf).unwrap();
        udp_msgs.push(String::from_utf8(buf[..n].to_vec()).unwrap());
    }
    let mut tcp_octet = Vec::new();
    let mut tcp_newline = Vec::new();
    for _ in 0..2 {
        let (k, bytes) = rxc.recv_timeout(Duration::from_secs(20)).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        if k == 1 {
            // Octet counting: LEN SP MSG, repeated.
            let mut rest = text.as_str();
            while !rest.is_empty() {
                let (len, tail) = rest.split_once(' ').expect("frame length");
                let len: usize = len.parse().expect("frame length digits");
                tcp_octet.push(tail[..len].to_string());
                rest = &tail[len..];
            }
        } else {
            tcp_newline.extend(text.lines().map(str::to_string));
        }
    }
    assert_eq!(udp_msgs.len(), 3);
    assert_eq!(
        tcp_octet, udp_msgs,
        "the same messages over TCP (octet counting)"
    );
    assert_eq!(
        tcp_newline, udp_msgs,
        "the same messages over TCP (newline framing)"
    );

    let (pri, head, msg) = parse_5424(&udp_msgs[0]);
    assert_eq!(pri, 16 * 8 + 3, "local0.err for high");
    assert_eq!(head[0], "1");
    assert_eq!(head[1], "2026-03-01T10:05:00.123456Z");
    assert_eq!(head[3], "orbwatch");
    assert_eq!(head[4], std::process::id().to_string());
    assert_eq!(head[5], "alert");
    assert_eq!(head[6], "-");
    let (h, ext) = parse_cef(&msg);
    assert_eq!(h[0], "CEF:0");
    assert_eq!(&h[1..3], ["orbwatch", "orbwatch"]);
    assert_eq!(h[4], "brute_force");
    assert_eq!(h[5], "brute force from 45.155.205.233");
    assert_eq!(h[6], "8");
    assert_eq!(ext["externalId"], "f-hostile-high");
    assert_eq!(ext["src"], "45.155.205.233");
    assert_eq!(ext["dst"], "10.0.0.5");
    assert_eq!(ext["cnt"], "37");
    assert_eq!(ext["cs1"], "f-hostile");
    assert_eq!(ext["cs2"], "raised");
    assert_eq!(ext["cs5"], "x=y,z\\");
    assert_eq!(ext["cn1"], "80");
    assert_eq!(ext["rt"], now.as_millisecond().to_string());
    assert_eq!(
        ext["start"],
        ts("2026-03-01T10:00:00Z").as_millisecond().to_string()
    );
    assert_eq!(
        ext["msg"],
        "user a|b=c\\d tried; second line\nCEF:0|fake|header|"
    );
    assert_eq!(ext.len(), 17, "{ext:?}");

    let (pri, _, msg) = parse_5424(&udp_msgs[1]);
    assert_eq!(pri, 16 * 8 + 2, "local0.crit for critical");
    let (h, ext) = parse_cef(&msg);
    assert_eq!(h[6], "10");
    assert_eq!(ext["c6a2"], "2a01:4f8:c17:1::1");
    assert_eq!(ext["c6a2Label"], "Source IPv6 Address");
    assert!(!ext.contains_key("src"));

    let (pri, _, msg) = parse_5424(&udp_msgs[2]);
    assert_eq!(pri, 16 * 8 + 5, "local0.notice for low");
    let (h, ext) = parse_cef(&msg);
    assert_eq!(h[4], "port_scan");
    assert_eq!(ext["msg"], "port scan from 45.155.205.7 to 10.0.0.5");
}
