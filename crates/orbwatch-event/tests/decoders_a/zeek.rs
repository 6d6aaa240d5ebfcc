//! Zeek TSV and JSON logs: exact counts, field values, and every address of
//! every record.

use std::net::IpAddr;

use orbwatch_event::decoders::{Decoded, DecoderConfig, by_name, detect};
use orbwatch_event::model::{AuthOutcome, EventKind, Proto};

use super::common::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// (file, events, skipped header lines, rejects)
const TSV_FILES: &[(&str, usize, usize, usize)] = &[
    ("zat_conn.log", 360, 9, 0),
    ("zat_conn_date_issue.log", 3, 8, 0),
    ("zat_dns.log", 54, 9, 0),
    ("zat_files.log", 113, 9, 0),
    ("zat_http.log", 150, 9, 0),
    ("zat_http_empty.log", 0, 9, 0),
    ("zat_notice.log", 2, 9, 0),
    ("zat_ssl.log", 37, 9, 0),
    ("zat_tor_ssl.log", 733, 8, 0),
    ("zat_weird.log", 12, 9, 0),
    ("zat_x509.log", 13, 8, 0),
    ("zeek_baseline_ftp_bruteforce_ftp.log", 30, 10, 0),
    ("zeek_baseline_ftp_bruteforce_notice.log", 1, 10, 0),
    ("zeek_baseline_intel_smtp.log", 7, 10, 0),
    ("zeek_baseline_intel_whitelisting.log", 20, 10, 0),
    ("zeek_baseline_ssh_bruteforce_notice.log", 1, 10, 0),
    ("zeek_baseline_vnc_scanner_rfb.log", 1, 10, 0),
];

/// (file, events)
const JSON_FILES: &[(&str, usize)] = &[
    ("zat_conn.json.log", 50),
    ("zat_dce_rpc.json.log", 7),
    ("zat_dhcp.json.log", 1),
    ("zat_dns.json.log", 50),
    ("zat_files.json.log", 50),
    ("zat_http.json.log", 28),
    ("zat_kerberos.json.log", 14),
    ("zat_ntp.json.log", 2),
    ("zat_smb_files.json.log", 2),
    ("zat_smb_mapping.json.log", 7),
    ("zat_ssl.json.log", 50),
    ("zat_weird.json.log", 2),
    ("zat_x509.json.log", 50),
];

/// Blank out TSV column `col` (by #fields name) in data lines.
fn strip_tsv_col(bytes: &[u8], col: &str) -> impl Fn(&[u8]) -> Vec<u8> + use<> {
    let idx = lines(bytes).iter().find_map(|l| {
        let s = std::str::from_utf8(l).ok()?;
        let f = s.strip_prefix("#fields\t")?;
        f.split('\t').position(|c| c == col)
    });
    move |l: &[u8]| match idx {
        Some(i) if !l.starts_with(b"#") => {
            let mut cols: Vec<&[u8]> = l.split(|b| *b == b'\t').collect();
            if i < cols.len() {
                cols[i] = b"-";
            }
            cols.join(&b'\t')
        }
        _ => l.to_vec(),
    }
}

#[test]
fn tsv_counts_and_every_address() {
    let mut checked = 0;
    for &(name, ev, sk, rej) in TSV_FILES {
        let bytes = data(name);
        let r = run("zeek-tsv", &bytes);
        assert_eq!(r.counts(), (ev, sk, rej), "{name}: {:?}", r.rejects);
        checked += assert_ips_match(&r, strip_tsv_col(&bytes, "user_agent"), name);
        assert_eq!(
            detect(&lines(&bytes)[..lines(&bytes).len().min(20)]).name,
            "zeek-tsv",
            "{name}"
        );
    }
    assert_eq!(checked, 1537);
}

#[test]
fn tsv_conn_fields() {
    let bytes = data("zat_conn.log");
    let r = run("zeek-tsv", &bytes);
    let e = r.at(9);
    assert_eq!(e.kind, EventKind::Connection);
    assert_eq!(e.time.unwrap().to_string(), "2013-09-15T23:44:27.706265Z");
    assert_eq!(e.src_ip, Some(ip("192.168.33.10")));
    assert_eq!(e.src_port, Some(1032));
    assert_eq!(e.dst_ip, Some(ip("54.245.228.191")));
    assert_eq!(e.dst_port, Some(80));
    assert_eq!(e.proto, Some(Proto::Tcp));
    assert_eq!(e.service.as_deref(), Some("http"));
    assert_eq!(e.bytes_out, Some(601));
    assert_eq!(e.bytes_in, Some(38393));
    assert_eq!(e.packets, Some(53));
    assert_eq!(e.conn_state.as_deref(), Some("RSTO"));
    assert!(e.other_ips.is_empty());
    // The last record: ICMP, unset byte counts.
    let (n, _, last) = r.events.last().unwrap();
    assert_eq!(*n, 368);
    assert_eq!(last.proto, Some(Proto::Icmp));
    assert_eq!(last.src_ip, Some(ip("109.67.16.18")));
    assert_eq!(last.bytes_out, None);
    assert_eq!(last.packets, Some(1));
    assert_eq!(last.conn_state.as_deref(), Some("OTH"));
}

#[test]
fn tsv_dns_http_ssl_x509_files() {
    let dns = data("zat_dns.log");
    let r = run("zeek-tsv", &dns);
    let e = r.at(10);
    assert_eq!(e.kind, EventKind::Dns);
    assert_eq!(e.domain.as_deref(), Some("www.guyspy.com"));
    assert_eq!(e.other_domains, vec!["guyspy.com".to_string()]);
    assert_eq!(e.other_ips, vec![ip("54.245.228.191")]);
    assert_eq!(e.dst_ip, Some(ip("4.2.2.3")));

    let http = data("zat_http.log");
    let r = run("zeek-tsv", &http);
    let e = r.at(9);
    assert_eq!(e.kind, EventKind::Http);
    assert_eq!(e.domain.as_deref(), Some("guyspy.com"));
    assert_eq!(e.url.as_deref(), Some("http://guyspy.com/"));
    let e = r.at(11);
    assert_eq!(
        e.url.as_deref(),
        Some(
            "http://www.guyspy.com/wp-content/plugins/slider-pro/css/advanced-slider-base.css?ver=3.3.1"
        )
    );

    let tor = data("zat_tor_ssl.log");
    let r = run("zeek-tsv", &tor);
    let e = r.at(9);
    assert_eq!(e.kind, EventKind::Tls);
    assert_eq!(e.domain.as_deref(), Some("coezvspprd01"));
    assert_eq!(e.dst_port, Some(8443));
    let e = r.at(11);
    assert_eq!(e.other_domains, vec!["mdm.ros.com".to_string()]);

    let x509 = data("zat_x509.log");
    let r = run("zeek-tsv", &x509);
    let e = r.at(9);
    assert_eq!(e.kind, EventKind::Tls);
    assert_eq!(
        e.other_domains,
        vec![
            "*.pipe.skype.com",
            "pipe.skype.com",
            "*.pipe.aria.microsoft.com"
        ]
    );

    let files = data("zat_files.log");
    let r = run("zeek-tsv", &files);
    let e = r.at(9);
    assert_eq!(e.kind, EventKind::File);
    assert_eq!(
        e.hashes,
        vec![
            "92bf83360b8ed10d82e38bcdcfcfa4a7",
            "2c3a961bb8ff1b1647f22249c25e8cf1df9031e0"
        ]
    );
    assert_eq!(e.other_ips, vec![ip("54.245.228.191"), ip("192.168.33.10")]);
}

#[test]
fn tsv_notice_intel_auth_logs() {
    let b = data("zat_notice.log");
    let r = run("zeek-tsv", &b);
    let e = r.at(9);
    assert_eq!(e.kind, EventKind::Alert);
    assert_eq!(e.src_ip, Some(ip("192.168.33.10")));
    assert_eq!(e.dst_ip, Some(ip("108.59.9.32")));
    assert_eq!(e.dst_port, Some(80));

    // The SSH password-guessing oracle: addresses only in src and msg/sub.
    let b = data("zeek_baseline_ssh_bruteforce_notice.log");
    let r = run("zeek-tsv", &b);
    let e = r.at(10);
    assert_eq!(e.kind, EventKind::Alert);
    assert_eq!(e.time, None, "canonified XXXXXXXXXX.XXXXXX time is unknown");
    assert_eq!(e.src_ip, Some(ip("192.168.56.1")));
    assert_eq!(e.other_ips, vec![ip("192.168.56.103")]);

    let b = data("zeek_baseline_intel_whitelisting.log");
    let r = run("zeek-tsv", &b);
    let e = r.at(10);
    assert_eq!(e.kind, EventKind::Alert);
    assert_eq!(e.domain.as_deref(), Some("upload.wikimedia.org"));

    let b = data("zeek_baseline_ftp_bruteforce_ftp.log");
    let r = run("zeek-tsv", &b);
    let e = r.at(10);
    assert_eq!(e.kind, EventKind::Auth);
    assert_eq!(e.service.as_deref(), Some("ftp"));
    assert_eq!(e.user.as_deref(), Some("bro"));
    assert_eq!(e.auth, None, "QUIT/221 is no login outcome");

    let b = data("zeek_baseline_vnc_scanner_rfb.log");
    let r = run("zeek-tsv", &b);
    let e = r.at(10);
    assert_eq!(e.kind, EventKind::Auth);
    assert_eq!(e.auth, Some(AuthOutcome::Failure));
    assert_eq!(e.service.as_deref(), Some("vnc"));
    assert_eq!(e.src_ip, Some(ip("192.168.0.11")));
    assert_eq!(e.dst_port, Some(5900));
}

#[test]
fn tsv_ssh_auth_and_attempts() {
    let log = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tssh\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tversion\tauth_success\tauth_attempts\tclient\n#types\ttime\tstring\taddr\tport\taddr\tport\tcount\tbool\tcount\tstring\n1427726759.303199\tCHhAvVGS1DHFjwGM9\t192.168.56.1\t58642\t192.168.56.103\t22\t2\tF\t3\tSSH-2.0-OpenSSH_6.2\n1427726760.0\tC2\t2001:db8::1\t58643\t192.168.56.103\t22\t2\tT\t1\t-\n";
    let r = run("zeek-tsv", log.as_bytes());
    assert_eq!(r.counts(), (2, 7, 0));
    let e = r.at(8);
    assert_eq!(e.kind, EventKind::Auth);
    assert_eq!(e.auth, Some(AuthOutcome::Failure));
    assert_eq!(
        e.count, 3,
        "one record per connection, three passwords tried"
    );
    assert_eq!(e.service.as_deref(), Some("ssh"));
    let e = r.at(9);
    assert_eq!(e.auth, Some(AuthOutcome::Success));
    assert_eq!(e.src_ip, Some(ip("2001:db8::1")));
}

#[test]
fn tsv_rejects_with_reasons() {
    let info = by_name("zeek-tsv").unwrap();
    let mut d = (info.make)(&DecoderConfig::default());
    let err = d.decode(b"1379288667.706265\tC1\t1.2.3.4").unwrap_err();
    assert!(err.0.contains("before any #fields header"), "{err}");

    let bytes = data("zat_conn_date_issue.log");
    let mut d = (info.make)(&DecoderConfig::default());
    for l in lines(&bytes).iter().take(8) {
        assert_eq!(d.decode(l), Ok(Decoded::Skip));
    }
    let err = d.decode(b"1\t2\t3\t4\t5\t6\t7").unwrap_err();
    assert_eq!(
        err.0,
        "expected 21 tab-separated fields per #fields header, got 7"
    );
    // A fork carries the header.
    let mut f = d.fork();
    let line = lines(&bytes)[8];
    assert!(matches!(f.decode(line), Ok(Decoded::Event(_))));
    // Invalid UTF-8 and NUL bytes in a string column do not stop decoding.
    let mut bad = line.to_vec();
    let uid_at = bad.iter().position(|b| *b == b'\t').unwrap() + 1;
    bad[uid_at] = 0xff;
    bad[uid_at + 1] = 0;
    let Ok(Decoded::Event(e)) = f.decode(&bad) else {
        panic!("line with invalid UTF-8 rejected")
    };
    assert_eq!(e.src_ip, Some(ip("192.168.50.100")));
}

#[test]
fn tsv_concatenated_logs_switch_header() {
    let mut both = data("zat_weird.log");
    both.extend_from_slice(&data("zat_notice.log"));
    let r = run("zeek-tsv", &both);
    assert_eq!(r.counts(), (14, 18, 0));
    assert_eq!(r.events.last().unwrap().2.kind, EventKind::Alert);
    assert_eq!(r.events.first().unwrap().2.kind, EventKind::Other);
}

#[test]
fn json_counts_and_every_address() {
    let mut checked = 0;
    for &(name, ev) in JSON_FILES {
        let bytes = data(name);
        let r = run("zeek-json", &bytes);
        assert_eq!(r.counts(), (ev, 0, 0), "{name}: {:?}", r.rejects);
        checked += assert_ips_match(&r, |l| strip_json_key(l, "user_agent"), name);
        let ls = lines(&bytes);
        assert_eq!(detect(&ls[..ls.len().min(20)]).name, "zeek-json", "{name}");
    }
    assert_eq!(checked, 313);
}

#[test]
fn json_fields() {
    let r = run_data("zeek-json", "zat_conn.json.log");
    let e = r.at(1);
    assert_eq!(e.kind, EventKind::Connection);
    assert_eq!(e.time.unwrap().to_string(), "2019-12-03T22:44:56.052279Z");
    assert_eq!(e.src_ip, Some(ip("10.18.20.97")));
    assert_eq!(e.src_port, Some(49187));
    assert_eq!(e.dst_ip, Some(ip("10.18.20.8")));
    assert_eq!(e.dst_port, Some(88));
    assert_eq!(e.service.as_deref(), Some("krb_tcp"));
    assert_eq!(
        (e.bytes_out, e.bytes_in, e.packets),
        (Some(242), Some(283), Some(8))
    );
    assert_eq!(e.conn_state.as_deref(), Some("RSTR"));

    let r = run_data("zeek-json", "zat_dns.json.log");
    let e = r.at(1);
    assert_eq!(e.kind, EventKind::Dns);
    assert_eq!(
        e.domain.as_deref(),
        Some("_ldap._tcp.default-first-site-name._sites.icemaiden-dc.icemaiden.com")
    );

    let r = run_data("zeek-json", "zat_http.json.log");
    let e = r.at(1);
    assert_eq!(e.kind, EventKind::Http);
    assert_eq!(e.url.as_deref(), Some("http://mail.aol.com/"));
    assert_eq!(e.domain.as_deref(), Some("mail.aol.com"));

    let r = run_data("zeek-json", "zat_ssl.json.log");
    let e = r.at(1);
    assert_eq!(e.kind, EventKind::Tls);
    assert_eq!(e.domain.as_deref(), Some("mail.aol.com"));
    assert_eq!(e.other_domains, vec!["*.ycpi.mail.aol.com".to_string()]);

    let r = run_data("zeek-json", "zat_x509.json.log");
    let e = r.at(2);
    assert_eq!(e.kind, EventKind::Tls);
    assert_eq!(e.other_domains[0], "oidc.oath.com");
    assert!(e.other_domains.iter().any(|d| d == "oidc.mail.aol.com"));

    let r = run_data("zeek-json", "zat_files.json.log");
    let e = r.at(2);
    assert_eq!(e.kind, EventKind::File);
    assert_eq!(e.other_ips, vec![ip("69.147.64.34"), ip("10.18.20.97")]);
    assert_eq!(e.hashes.len(), 2);

    let r = run_data("zeek-json", "zat_kerberos.json.log");
    let e = r.at(1);
    assert_eq!(e.kind, EventKind::Auth);
    assert_eq!(e.user.as_deref(), Some("JUANITA-WORK-PC$/ICEMAIDEN.COM"));
    assert_eq!(
        e.auth, None,
        "KDC_ERR_PREAUTH_REQUIRED is the normal first round"
    );
    assert_eq!(r.at(2).auth, Some(AuthOutcome::Success));

    let r = run_data("zeek-json", "zat_dhcp.json.log");
    assert_eq!(r.at(1).other_ips, vec![ip("10.18.20.97")]);
}

#[test]
fn json_streaming_nested_and_iso() {
    let log = concat!(
        r#"{"_path":"conn","_write_ts":"2021-07-20T10:00:05.000000Z","ts":"2021-07-20T10:00:00.123456Z","uid":"C1","id.orig_h":"1.2.3.4","id.orig_p":1234,"id.resp_h":"5.6.7.8","id.resp_p":443,"proto":"tcp","conn_state":"S0"}"#,
        "\n",
        r#"{"_path":"dns","ts":1626775200.5,"uid":"C2","id":{"orig_h":"10.0.0.1","orig_p":5353,"resp_h":"10.0.0.53","resp_p":53},"query":"evil.example","answers":["cname.example","203.0.113.7"]}"#,
        "\n",
        r#"{"ts":1626775200.5,"uid":"C3","id.orig_h":"10.0.0.1","id.orig_p":99999999999,"id.resp_h":"10.0.0.2","id.resp_p":-1,"conn_state":"REJ","duration":1.5}"#,
        "\n",
        r#"{"ts":1626775200.5,"uid":"C4","id.orig_h":"10.0.0.1"#,
        "\n",
        r#"{"ts":1e400,"uid":"C5","id.orig_h":"10.0.0.1"}"#,
        "\n",
    );
    let r = run("zeek-json", log.as_bytes());
    assert_eq!(r.counts(), (3, 0, 2));
    let e = r.at(1);
    assert_eq!(e.kind, EventKind::Connection);
    assert_eq!(e.time.unwrap().to_string(), "2021-07-20T10:00:00.123456Z");
    assert_eq!(e.conn_state.as_deref(), Some("S0"));
    let e = r.at(2);
    assert_eq!(e.kind, EventKind::Dns);
    assert_eq!(e.src_ip, Some(ip("10.0.0.1")));
    assert_eq!(e.dst_port, Some(53));
    assert_eq!(e.other_ips, vec![ip("203.0.113.7")]);
    assert_eq!(e.other_domains, vec!["cname.example".to_string()]);
    let e = r.at(3);
    assert_eq!(e.kind, EventKind::Connection, "inferred from conn_state");
    assert_eq!(
        (e.src_port, e.dst_port),
        (None, None),
        "out-of-range ports are unknown"
    );
    assert!(
        r.rejects[0].1.starts_with("invalid JSON"),
        "{:?}",
        r.rejects
    );
}

#[test]
fn json_sniff_leaves_eve_alone() {
    let eve = data("crowdsec_eve_alerts.json");
    let ls = lines(&eve);
    assert_eq!((by_name("zeek-json").unwrap().sniff)(&ls), 0);
    let zj = data("zat_conn.json.log");
    let ls = lines(&zj);
    assert_eq!((by_name("eve").unwrap().sniff)(&ls), 0);
    assert_eq!((by_name("zeek-json").unwrap().sniff)(&ls), 95);
}
