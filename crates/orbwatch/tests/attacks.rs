//! Classic attacks peers catch (issue 11, part 3), end to end through
//! `orbwatch hunt`: PAM failures of any service, password spraying in
//! Windows 4648, port scans and login floods seen only in NetFlow v9
//! exported on an odd port, login floods in Zeek `conn.log`, and IDS
//! verdicts (Suricata alerts, Zeek notices) as evidence.
//!
//! The inputs are written by the tests in the exact shapes the tools
//! produce (addresses from the documentation ranges), each with a clean
//! control beside the attack; the corpus rows are in `behaviour_corpus.rs`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every finding of a behaviour-only hunt (no store, no feeds).
fn hunt(inputs: &[PathBuf], extra: &[&str]) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_orbwatch"))
        .env("TZ", "UTC") // year-less syslog is read in the machine's zone
        .args(["-q", "hunt", "--format", "jsonl"])
        .args(extra)
        .args(inputs)
        .env("ORBWATCH_DB", dir.path().join("absent/orbwatch.db"))
        .output()
        .expect("run orbwatch");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON finding"))
        .collect()
}

/// `kind src` of every finding.
fn kinds(f: &[serde_json::Value]) -> Vec<String> {
    let mut v: Vec<String> = f
        .iter()
        .map(|f| {
            format!(
                "{} {}",
                f["kind"].as_str().unwrap_or("?"),
                f["src_ip"].as_str().unwrap_or("-")
            )
        })
        .collect();
    v.sort();
    v
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    let mut f = std::fs::File::create(&p).expect("create");
    f.write_all(bytes).expect("write");
    p
}

fn reasons(f: &serde_json::Value) -> String {
    f["reasons"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------- PAM

#[test]
fn eighty_pam_failures_in_four_minutes_are_a_brute_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let styles = [
        "sshd(pam_unix)[{pid}]: authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.7  user=root",
        "sshd[{pid}]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.7  user=root",
        "sshd[{pid}]: (pam_unix) authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.7  user=root",
        "sshd[{pid}]: pam_unix: authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.7  user=root",
    ];
    let mut text = String::new();
    for i in 0..80u32 {
        let t = i * 3; // 80 failures in 237 s
        let body = styles[i as usize % 4].replace("{pid}", &(4000 + i).to_string());
        text.push_str(&format!(
            "Mar  4 10:{:02}:{:02} gw {body}\n",
            t / 60,
            t % 60
        ));
    }
    // A clean control in the same file: one mistyped password elsewhere.
    text.push_str("Mar  4 10:05:00 gw login[77]: pam_unix(login:auth): authentication failure; logname=LOGIN uid=0 euid=0 tty=/dev/tty1 ruser= rhost=192.0.2.8  user=alice\n");
    let p = write(dir.path(), "auth.log", text.as_bytes());
    let f = hunt(&[p], &["--year", "2024"]);
    assert_eq!(kinds(&f), ["brute_force 198.51.100.7"]);
    assert_eq!(f[0]["count"], 80);
}

// ---------------------------------------------------------------- 4648

fn ev4648(time: &str, user: &str, ip: &str) -> String {
    format!(
        r#"<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System><Provider Name="Microsoft-Windows-Security-Auditing" Guid="{{54849625-5478-4994-A5BA-3E3B0328C30D}}"/><EventID>4648</EventID><Version>0</Version><Level>0</Level><Task>12544</Task><Opcode>0</Opcode><Keywords>0x8020000000000000</Keywords><TimeCreated SystemTime="{time}"/><EventRecordID>1</EventRecordID><Correlation/><Execution ProcessID="612" ThreadID="3040"/><Channel>Security</Channel><Computer>WS01.corp.example</Computer><Security/></System><EventData><Data Name="SubjectUserSid">S-1-5-21-1-2-3-1104</Data><Data Name="SubjectUserName">mallory</Data><Data Name="SubjectDomainName">CORP</Data><Data Name="SubjectLogonId">0x3e7</Data><Data Name="LogonGuid">{{00000000-0000-0000-0000-000000000000}}</Data><Data Name="TargetUserName">{user}</Data><Data Name="TargetDomainName">CORP</Data><Data Name="TargetLogonGuid">{{00000000-0000-0000-0000-000000000000}}</Data><Data Name="TargetServerName">dc01.corp.example</Data><Data Name="TargetInfo">dc01.corp.example</Data><Data Name="ProcessId">0x4</Data><Data Name="ProcessName"></Data><Data Name="IpAddress">{ip}</Data><Data Name="IpPort">445</Data></EventData></Event>"#
    )
}

#[test]
fn explicit_credentials_for_many_accounts_are_a_spray() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = String::new();
    // The spray: 20 accounts from one address in 60 s.
    for i in 0..20 {
        let time = format!(
            "2024-05-02T09:{:02}:{:02}.000Z",
            10 + i * 3 / 60,
            i * 3 % 60
        );
        text.push_str(&ev4648(&time, &format!("user{i:02}"), "10.9.8.7"));
        text.push('\n');
    }
    // Controls: an admin using runas for 3 accounts many times, and a
    // host's machine accounts (not spray targets).
    for i in 0..20 {
        let time = format!("2024-05-02T11:{:02}:00.000Z", i);
        text.push_str(&ev4648(
            &time,
            ["adm_a", "adm_b", "adm_c"][i % 3],
            "10.1.1.1",
        ));
        text.push('\n');
        text.push_str(&ev4648(&time, &format!("SRV{i:02}$"), "10.1.1.2"));
        text.push('\n');
        // OpenSSH for Windows: one sshd_<pid> virtual account per
        // connection.
        text.push_str(&ev4648(&time, &format!("sshd_{}", 4000 + i), "-"));
        text.push('\n');
    }
    let p = write(dir.path(), "security.xml", text.as_bytes());
    let f = hunt(&[p], &[]);
    assert_eq!(kinds(&f), ["password_spray 10.9.8.7"]);
    assert_eq!(f[0]["count"], 20);
    assert_eq!(f[0]["details"]["distinct_accounts"], 20);
    let r = reasons(&f[0]);
    assert!(r.contains("for 20 different accounts"), "{r}");
    assert!(r.contains("4648"), "{r}");
}

// ------------------------------------------------------------ NetFlow

/// One flow record of the test template.
struct Rec {
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    flags: u8,
    pkts: u32,
    bytes: u32,
    /// Milliseconds of system uptime at the first and last packet.
    first: u32,
    last: u32,
}

/// Template 256: src, dst, sport, dport, proto, tcp flags, packets, bytes,
/// first and last switched (30 bytes a record).
const TEMPLATE: &[(u16, u16)] = &[
    (8, 4),
    (12, 4),
    (7, 2),
    (11, 2),
    (4, 1),
    (6, 1),
    (2, 4),
    (1, 4),
    (22, 4),
    (21, 4),
];

/// A NetFlow v9 export datagram (RFC 3954) with the template (when asked)
/// and a data FlowSet of `recs`.
fn v9_datagram(seq: u32, uptime: u32, secs: u32, template: bool, recs: &[Rec]) -> Vec<u8> {
    let mut p = Vec::new();
    let count = recs.len() as u16 + u16::from(template);
    p.extend_from_slice(&9u16.to_be_bytes());
    p.extend_from_slice(&count.to_be_bytes());
    p.extend_from_slice(&uptime.to_be_bytes());
    p.extend_from_slice(&secs.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&7u32.to_be_bytes()); // source id
    if template {
        let len = 4 + 4 + 4 * TEMPLATE.len();
        p.extend_from_slice(&0u16.to_be_bytes());
        p.extend_from_slice(&(len as u16).to_be_bytes());
        p.extend_from_slice(&256u16.to_be_bytes());
        p.extend_from_slice(&(TEMPLATE.len() as u16).to_be_bytes());
        for (t, l) in TEMPLATE {
            p.extend_from_slice(&t.to_be_bytes());
            p.extend_from_slice(&l.to_be_bytes());
        }
    }
    if !recs.is_empty() {
        let body = 30 * recs.len();
        let pad = (4 - (4 + body) % 4) % 4;
        p.extend_from_slice(&256u16.to_be_bytes());
        p.extend_from_slice(&((4 + body + pad) as u16).to_be_bytes());
        for r in recs {
            p.extend_from_slice(&r.src);
            p.extend_from_slice(&r.dst);
            p.extend_from_slice(&r.sport.to_be_bytes());
            p.extend_from_slice(&r.dport.to_be_bytes());
            p.push(6);
            p.push(r.flags);
            p.extend_from_slice(&r.pkts.to_be_bytes());
            p.extend_from_slice(&r.bytes.to_be_bytes());
            p.extend_from_slice(&r.first.to_be_bytes());
            p.extend_from_slice(&r.last.to_be_bytes());
        }
        p.extend(std::iter::repeat_n(0, pad));
    }
    p
}

/// A classic pcap (Ethernet) of UDP datagrams from the exporter to the
/// collector on `port`.
fn pcap_of(datagrams: &[Vec<u8>], port: u16, secs: u32) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&4u16.to_le_bytes());
    f.extend_from_slice(&0i32.to_le_bytes());
    f.extend_from_slice(&0u32.to_le_bytes());
    f.extend_from_slice(&65535u32.to_le_bytes());
    f.extend_from_slice(&1u32.to_le_bytes());
    for (i, d) in datagrams.iter().enumerate() {
        let udp_len = 8 + d.len();
        let ip_len = 20 + udp_len;
        let mut pkt = Vec::new();
        pkt.extend_from_slice(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00]);
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
        ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
        ip.extend_from_slice(&[192, 0, 2, 1]);
        ip.extend_from_slice(&[192, 0, 2, 2]);
        let mut sum = 0u32;
        for c in ip.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        pkt.extend_from_slice(&ip);
        pkt.extend_from_slice(&50000u16.to_be_bytes());
        pkt.extend_from_slice(&port.to_be_bytes());
        pkt.extend_from_slice(&(udp_len as u16).to_be_bytes());
        pkt.extend_from_slice(&0u16.to_be_bytes());
        pkt.extend_from_slice(d);
        f.extend_from_slice(&(secs + i as u32).to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
        f.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
        f.extend_from_slice(&pkt);
    }
    f
}

const SCANNER: [u8; 4] = [198, 51, 100, 66];
const GUESSER: [u8; 4] = [198, 51, 100, 77];
const CLIENT: [u8; 4] = [10, 0, 0, 5];
const SERVER: [u8; 4] = [10, 0, 0, 80];

/// A masscan-style SYN sweep (200 ports, SYN only or SYN+RST), an SSH
/// guesser (40 complete connections in 80 s) and a busy clean client
/// (complete web and SSH sessions), as NetFlow v9 records.
fn exported_capture(port: u16) -> Vec<u8> {
    let secs = 1_714_640_000;
    let uptime = 3_600_000;
    let mut recs = Vec::new();
    for i in 0..200u16 {
        let t = uptime - 300_000 + u32::from(i) * 100;
        recs.push(Rec {
            src: SCANNER,
            dst: SERVER,
            sport: 61000,
            dport: 1 + i * 7,
            flags: if i % 2 == 0 { 0x02 } else { 0x06 },
            pkts: if i % 2 == 0 { 1 } else { 2 },
            bytes: 44,
            first: t,
            last: t,
        });
    }
    for i in 0..40u32 {
        let t = uptime - 200_000 + i * 2000;
        recs.push(Rec {
            src: GUESSER,
            dst: SERVER,
            sport: 40000 + i as u16,
            dport: 22,
            flags: 0x1b,
            pkts: 14,
            bytes: 2900,
            first: t,
            last: t + 1500,
        });
    }
    for i in 0..60u32 {
        let t = uptime - 250_000 + i * 3000;
        recs.push(Rec {
            src: CLIENT,
            dst: SERVER,
            sport: 50000 + i as u16,
            dport: if i % 20 == 0 { 22 } else { 443 },
            flags: 0x1b,
            pkts: 30,
            bytes: 9000,
            first: t,
            last: t + 2000,
        });
    }
    let mut dgs = Vec::new();
    for (n, chunk) in recs.chunks(40).enumerate() {
        dgs.push(v9_datagram(n as u32 + 1, uptime, secs, n == 0, chunk));
    }
    pcap_of(&dgs, port, secs)
}

#[test]
fn netflow_v9_on_an_odd_port_gives_scan_and_flood() {
    let dir = tempfile::tempdir().expect("tempdir");
    let odd = write(dir.path(), "exporter-2057.pcap", &exported_capture(2057));
    let usual = write(dir.path(), "exporter-2055.pcap", &exported_capture(2055));
    for p in [odd, usual] {
        let f = hunt(std::slice::from_ref(&p), &[]);
        assert_eq!(
            kinds(&f),
            ["brute_force 198.51.100.77", "port_scan 198.51.100.66"],
            "{}",
            p.display()
        );
        let scan = f.iter().find(|f| f["kind"] == "port_scan").expect("scan");
        assert_eq!(scan["count"], 200);
        let flood = f
            .iter()
            .find(|f| f["kind"] == "brute_force")
            .expect("flood");
        assert_eq!(flood["count"], 40);
        let r = reasons(flood);
        assert!(r.contains("not visible"), "{r}");
        assert_eq!(flood["details"]["method"], "connection_flood");
    }
}

// ------------------------------------------------------ Zeek conn.log

fn conn_log(rows: &[(f64, &str, &str, u16, &str)]) -> String {
    let mut s = String::from(
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#open\t2024-05-02-10-00-00\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\n",
    );
    for (i, (ts, src, dst, port, state)) in rows.iter().enumerate() {
        s.push_str(&format!(
            "{ts:.6}\tC{i:05}\t{src}\t{}\t{dst}\t{port}\ttcp\t-\t1.2\t1500\t2100\t{state}\tF\tT\t0\tShADadFf\t12\t2100\t10\t2600\t-\n",
            40000 + i
        ));
    }
    s.push_str("#close\t2024-05-02-11-00-00\n");
    s
}

#[test]
fn rdp_flood_in_conn_log_is_a_likely_brute_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t0 = 1_714_644_000.0;
    let mut rows = Vec::new();
    // 300 RDP connections in 5 minutes to 3 hosts.
    for i in 0..300 {
        let dst = ["10.0.0.10", "10.0.0.11", "10.0.0.12"][i % 3];
        rows.push((t0 + i as f64, "203.0.113.50", dst, 3389, "SF"));
    }
    // Controls: an admin's 6 RDP sessions in an hour, a file server client
    // with 8 SMB connections in 10 minutes, a monitoring host.
    for i in 0..6 {
        rows.push((t0 + 600.0 * i as f64, "10.0.0.3", "10.0.0.10", 3389, "SF"));
    }
    for i in 0..8 {
        rows.push((t0 + 75.0 * i as f64, "10.0.0.4", "10.0.0.20", 445, "SF"));
    }
    // A monitoring host checking SSH on 4 servers every minute for two
    // hours: 480 connections, never more than 8 within 120 s.
    for i in 0..120 {
        for h in ["10.0.0.30", "10.0.0.31", "10.0.0.32", "10.0.0.33"] {
            rows.push((t0 + 60.0 * i as f64, "10.0.0.9", h, 22, "SF"));
        }
    }
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let p = write(dir.path(), "conn.log", conn_log(&rows).as_bytes());
    let f = hunt(&[p], &[]);
    assert_eq!(kinds(&f), ["brute_force 203.0.113.50"]);
    assert_eq!(f[0]["count"], 300);
    assert_eq!(f[0]["details"]["hosts"], 3);
    assert_eq!(f[0]["details"]["service"], "rdp");
    assert!(f[0]["score"].as_u64().unwrap_or(100) < 50);
    // The threshold is configurable.
    let cfg = write(
        dir.path(),
        "b.toml",
        b"[login_flood]\nmin_connections = 400\nmin_connections_any_host = 400\n",
    );
    let p = dir.path().join("conn.log");
    let f = hunt(
        &[p],
        &["--behaviour-config", cfg.to_str().expect("utf-8 path")],
    );
    assert!(kinds(&f).is_empty(), "{:?}", kinds(&f));
}

// ------------------------------------------------------- IDS verdicts

#[test]
fn zeek_notices_and_suricata_alerts_are_evidence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let notice = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tnotice\n#open\t2024-05-02-10-00-00\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tfuid\tfile_mime_type\tfile_desc\tproto\tnote\tmsg\tsub\tsrc\tdst\tp\tn\tpeer_descr\tactions\tsuppress_for\n#types\ttime\tstring\taddr\tport\taddr\tport\tstring\tstring\tstring\tenum\tenum\tstring\tstring\taddr\taddr\tport\tcount\tstring\tset[enum]\tinterval\n\
1714644000.000000\t-\t-\t-\t-\t-\t-\t-\t-\t-\tScan::Port_Scan\t198.51.100.9 scanned at least 15 unique ports of host 10.0.0.10 in 0m2s\tlocal\t198.51.100.9\t10.0.0.10\t-\t-\t-\tNotice::ACTION_LOG\t3600.000000\n\
1714644100.000000\t-\t-\t-\t-\t-\t-\t-\t-\t-\tSSH::Password_Guessing\t198.51.100.10 appears to be guessing SSH passwords (seen in 30 connections).\tSampled servers:  10.0.0.10\t198.51.100.10\t-\t-\t-\t-\tNotice::ACTION_LOG\t3600.000000\n\
1714644200.000000\t-\t-\t-\t-\t-\t-\t-\t-\t-\tSSL::Invalid_Server_Cert\tSSL certificate validation failed\t-\t198.51.100.11\t-\t-\t-\t-\tNotice::ACTION_LOG\t3600.000000\n\
#close\t2024-05-02-11-00-00\n";
    let p = write(dir.path(), "notice.log", notice.as_bytes());
    let f = hunt(&[p], &[]);
    assert_eq!(
        kinds(&f),
        ["brute_force 198.51.100.10", "port_scan 198.51.100.9"]
    );
    for x in &f {
        let r = reasons(x);
        assert!(
            r.contains("Scan::Port_Scan") || r.contains("SSH::Password_Guessing"),
            "{r}"
        );
    }

    // EVE: 20 unanswered SYNs from one source plus an ET SCAN alert from
    // it: one port scan, strengthened, with the signature as a reason.
    let mut eve = String::new();
    for i in 0..20 {
        eve.push_str(&format!(
            r#"{{"timestamp":"2024-05-02T10:00:{i:02}.000000+0000","flow_id":{},"event_type":"flow","src_ip":"198.51.100.20","src_port":40000,"dest_ip":"10.0.0.10","dest_port":{},"proto":"TCP","flow":{{"pkts_toserver":1,"pkts_toclient":0,"bytes_toserver":60,"bytes_toclient":0,"start":"2024-05-02T10:00:{i:02}.000000+0000","end":"2024-05-02T10:00:{i:02}.000000+0000","age":0,"state":"new","reason":"timeout","alerted":false}},"tcp":{{"tcp_flags":"02","tcp_flags_ts":"02","tcp_flags_tc":"00","syn":true,"state":"syn_sent"}}}}"#,
            1000 + i,
            20 + i * 3
        ));
        eve.push('\n');
    }
    let alert = |ip: &str, sig: &str| {
        format!(
            r#"{{"timestamp":"2024-05-02T10:00:30.000000+0000","flow_id":1,"event_type":"alert","src_ip":"{ip}","src_port":40000,"dest_ip":"10.0.0.10","dest_port":22,"proto":"TCP","alert":{{"action":"allowed","gid":1,"signature_id":2001219,"rev":20,"signature":"{sig}","category":"Attempted Information Leak","severity":2}}}}"#
        )
    };
    eve.push_str(&alert("198.51.100.20", "ET SCAN Potential SSH Scan"));
    eve.push('\n');
    eve.push_str(&alert(
        "198.51.100.21",
        "ET POLICY SSH session in progress on Unusual Port",
    ));
    eve.push('\n');
    let p = write(dir.path(), "eve.json", eve.as_bytes());
    let f = hunt(&[p], &[]);
    assert_eq!(kinds(&f), ["port_scan 198.51.100.20"]);
    let r = reasons(&f[0]);
    assert!(
        r.contains("an IDS reached the same verdict: \"ET SCAN Potential SSH Scan\""),
        "{r}"
    );
    assert_eq!(f[0]["count"], 20);
}

#[test]
fn one_connection_in_conn_log_and_ssh_log_counts_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t0 = 1_714_644_000.0;
    let rows: Vec<(f64, &str, &str, u16, &str)> = (0..12)
        .map(|i| {
            (
                t0 + 5.0 * f64::from(i),
                "198.51.100.40",
                "10.0.0.22",
                22,
                "SF",
            )
        })
        .collect();
    let conn = write(dir.path(), "conn.log", conn_log(&rows).as_bytes());
    let mut ssh = String::from(
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tssh\n#open\t2024-05-02-10-00-00\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tversion\tauth_success\tauth_attempts\tdirection\tclient\tserver\n#types\ttime\tstring\taddr\tport\taddr\tport\tcount\tbool\tcount\tenum\tstring\tstring\n",
    );
    for (i, (ts, src, dst, port, _)) in rows.iter().enumerate() {
        ssh.push_str(&format!(
            "{ts:.6}\tC{i:05}\t{src}\t{}\t{dst}\t{port}\t2\t-\t0\t-\tSSH-2.0-libssh2_1.4.3\tSSH-2.0-OpenSSH_8.9\n",
            40000 + i
        ));
    }
    ssh.push_str("#close\t2024-05-02-11-00-00\n");
    let ssh = write(dir.path(), "ssh.log", ssh.as_bytes());
    let f = hunt(&[conn, ssh], &[]);
    assert_eq!(kinds(&f), ["brute_force 198.51.100.40"]);
    assert_eq!(f[0]["count"], 12);
    // Below the threshold (9 in 120 s): nothing.
    let few = write(dir.path(), "few.log", conn_log(&rows[..9]).as_bytes());
    assert!(hunt(&[few], &[]).is_empty());
}

#[test]
fn zeek_json_notice_is_evidence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let line = r#"{"ts":1714644000.0,"note":"Scan::Address_Scan","msg":"198.51.100.30 scanned at least 25 unique hosts on port 445/tcp in 0m4s","sub":"remote","src":"198.51.100.30","p":445,"actions":["Notice::ACTION_LOG"],"suppress_for":3600.0}"#;
    let p = write(
        dir.path(),
        "notice.json.log",
        format!("{line}\n").as_bytes(),
    );
    let f = hunt(&[p], &[]);
    assert_eq!(kinds(&f), ["port_scan 198.51.100.30"]);
    assert!(reasons(&f[0]).contains("Scan::Address_Scan"));
}

#[test]
fn one_try_on_each_of_many_smb_hosts_is_a_flood() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t0 = 1_714_644_000.0;
    let hosts: Vec<String> = (0..150)
        .map(|i| format!("10.0.{}.{}", i / 100, i % 100 + 1))
        .collect();
    let rows: Vec<(f64, &str, &str, u16, &str)> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| (t0 + 0.5 * i as f64, "203.0.113.60", h.as_str(), 445, "SF"))
        .collect();
    let p = write(dir.path(), "conn.log", conn_log(&rows).as_bytes());
    let f = hunt(&[p], &[]);
    assert_eq!(kinds(&f), ["brute_force 203.0.113.60"]);
    assert_eq!(f[0]["count"], 150);
    assert_eq!(f[0]["details"]["service"], "smb");
    assert_eq!(f[0]["details"]["peak_per_window_one_host"], 1);
    // The same sweep at half the size stays below both bars.
    let p = write(dir.path(), "half.log", conn_log(&rows[..75]).as_bytes());
    assert!(hunt(&[p], &[]).is_empty());
}
