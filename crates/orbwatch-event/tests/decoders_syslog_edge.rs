//! Edge cases of the syslog decoder written for orbwatch: envelopes, years
//! and zones, hostile input, and vendor messages the corpus lacks.

mod decoders_syslog_support;

use std::net::IpAddr;

use decoders_syslog_support::*;
use orbwatch_event::decoders::{Decoded, Decoder};
use orbwatch_event::{Action, AuthOutcome, Event, EventKind, Proto};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn one(d: &mut Box<dyn Decoder>, line: &str) -> Event {
    match d.decode(line.as_bytes()) {
        Ok(Decoded::Event(e)) => *e,
        other => panic!("{line}: {other:?}"),
    }
}

fn ev(line: &str) -> Event {
    one(&mut decoder("syslog", 2021), line)
}

fn ts(e: &Event) -> String {
    e.time.map(|t| t.to_string()).unwrap_or_default()
}

#[test]
fn envelopes() {
    // journald short-iso, offset without colon.
    let e =
        ev("2021-07-20T10:00:00+0200 web1 sshd[77]: Invalid user bob from 203.0.113.4 port 5555");
    assert_eq!(ts(&e), "2021-07-20T08:00:00Z");
    assert_eq!(e.host.as_deref(), Some("web1"));
    // journalctl -o short-full and -o short-unix.
    let e = ev(
        "Tue 2021-07-20 10:00:00 UTC web1 sshd[77]: Invalid user bob from 203.0.113.4 port 5555",
    );
    assert_eq!(
        (ts(&e).as_str(), e.auth),
        ("2021-07-20T10:00:00Z", Some(AuthOutcome::InvalidUser))
    );
    let e = ev("1626775200.250000 web1 sshd[77]: Invalid user bob from 203.0.113.4 port 5555");
    assert_eq!(ts(&e), "2021-07-20T10:00:00.25Z");
    // rsyslog high precision.
    let e = ev(
        "2021-07-20T10:00:00.123456+02:00 web1 sshd[77]: Accepted publickey for bob from 2001:db8::5 port 5555 ssh2: ED25519 SHA256:x",
    );
    assert_eq!(ts(&e), "2021-07-20T08:00:00.123456Z");
    assert_eq!(
        (e.auth, e.src_ip),
        (Some(AuthOutcome::Success), Some(ip("2001:db8::5")))
    );
    // `-o short-precise`, no zone: UTC.
    let e = ev(
        "Jul 20 10:00:00.250 web1 sshd[77]: Failed password for root from 203.0.113.4 port 5555 ssh2",
    );
    assert_eq!(ts(&e), "2021-07-20T10:00:00.25Z");
    // <PRI> with RFC 3164.
    let e = ev(
        "<38>Jul 20 10:00:00 web1 sshd[77]: Failed password for root from 203.0.113.4 port 5555 ssh2",
    );
    assert_eq!(e.auth, Some(AuthOutcome::Failure));
    // RFC 5424 with nil fields and a BOM.
    let e = ev("<38>1 2021-07-20T10:00:00Z - sshd - - - \u{feff}Invalid user x from 203.0.113.9");
    assert_eq!((e.host, e.src_ip), (None, Some(ip("203.0.113.9"))));
    // rsyslog repeat: one event standing for three.
    let e = ev(
        "Jul 20 10:00:00 web1 sshd[77]: message repeated 3 times: [ Failed password for root from 203.0.113.4 port 5555 ssh2]",
    );
    assert_eq!((e.count, e.auth), (3, Some(AuthOutcome::Failure)));
    // An unknown program keeps its addresses.
    let e = ev(
        "Jul 20 10:00:00 web1 postfix/smtpd[9]: warning: unknown[198.51.100.23]: SASL LOGIN authentication failed",
    );
    assert_eq!(e.kind, EventKind::Other);
    assert_eq!(e.service.as_deref(), Some("postfix/smtpd"));
    assert_eq!(e.other_ips, [ip("198.51.100.23")]);
}

#[test]
fn years_roll_over_and_back() {
    let mut d = decoder("syslog", 2020);
    let lines = [
        (
            "Dec 31 23:59:58 h sshd[1]: Invalid user a from 192.0.2.1",
            "2020-12-31T23:59:58Z",
        ),
        (
            "Jan  1 00:00:01 h sshd[1]: Invalid user a from 192.0.2.1",
            "2021-01-01T00:00:01Z",
        ),
        // A late line from December, after January ones.
        (
            "Dec 31 23:59:59 h sshd[1]: Invalid user a from 192.0.2.1",
            "2020-12-31T23:59:59Z",
        ),
        (
            "Jan  1 00:00:02 h sshd[1]: Invalid user a from 192.0.2.1",
            "2021-01-01T00:00:02Z",
        ),
        (
            "Feb 29 12:00:00 h sshd[1]: Invalid user a from 192.0.2.1",
            "",
        ),
    ];
    for (l, want) in lines {
        assert_eq!(ts(&one(&mut d, l)), want, "{l}");
    }
}

#[test]
fn comments_blank_and_garbage() {
    let mut d = decoder("syslog", 2021);
    assert_eq!(d.decode(b""), Ok(Decoded::Skip));
    assert_eq!(d.decode(b"   \r"), Ok(Decoded::Skip));
    assert_eq!(d.decode(b"# comment"), Ok(Decoded::Skip));
    assert_eq!(
        d.decode(b"Jul 20 10:00:00 h syslogd: last message repeated 5 times"),
        Ok(Decoded::Skip)
    );
    let err = d.decode(b"hello world, this is not syslog").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("not a syslog line: hello world"),
        "{err}"
    );
    let long = vec![b'x'; 300];
    let err = d.decode(&long).unwrap_err();
    assert!(err.to_string().len() < 120, "the reason quotes an excerpt");
}

#[test]
fn hostile_bytes() {
    let mut d = decoder("syslog", 2021);
    // 2 MiB line with an address at the end.
    let mut big = b"Jul 20 10:00:00 h sshd[1]: Failed password for ".to_vec();
    big.extend(std::iter::repeat_n(b'A', 2 << 20));
    big.extend_from_slice(b" from 203.0.113.4 port 22 ssh2");
    let e = match d.decode(&big) {
        Ok(Decoded::Event(e)) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(e.src_ip, Some(ip("203.0.113.4")));
    // NUL bytes and invalid UTF-8.
    let e = one(
        &mut d,
        "Jul 20 10:00:00 h sshd[1]: Invalid user \0\0 from 203.0.113.5",
    );
    assert_eq!(e.src_ip, Some(ip("203.0.113.5")));
    let mut bad = b"Jul 20 10:00:00 h sshd[1]: Invalid user \xff\xfe from 203.0.113.6".to_vec();
    bad.push(b'\n');
    match d.decode(&bad) {
        Ok(Decoded::Event(e)) => assert_eq!(e.src_ip, Some(ip("203.0.113.6"))),
        other => panic!("{other:?}"),
    }
    // Truncated lines at every length never panic.
    let full = "<38>1 2021-07-20T10:00:00Z h sshd 1 - [a b=\"c\\\"]\"] Failed password for root from 203.0.113.4 port 22 ssh2";
    for n in 0..full.len() {
        if full.is_char_boundary(n) {
            let _ = d.decode(&full.as_bytes()[..n]);
        }
    }
}

#[test]
fn sshd_multiline_and_variants() {
    let mut d = decoder("syslog", 2021);
    one(
        &mut d,
        "Jul 20 10:00:00 h sshd[42]: Connection from 203.0.113.8 port 5000 on 192.0.2.2 port 22 rdomain \"\"",
    );
    let e = one(
        &mut d,
        "Jul 20 10:00:01 h sshd[42]: Disconnecting: Too many authentication failures [preauth]",
    );
    assert_eq!(
        (e.src_ip, e.auth),
        (Some(ip("203.0.113.8")), Some(AuthOutcome::Failure))
    );
    // Another host with the same pid does not inherit the address.
    let e = one(
        &mut d,
        "Jul 20 10:00:01 other sshd[42]: Disconnecting: Too many authentication failures [preauth]",
    );
    assert_eq!(e.src_ip, None);
    // A failure without address, then the address on the next line.
    let e = one(
        &mut d,
        "Jul 20 10:00:02 h sshd[43]: error: kex_exchange_identification: Connection closed by remote host",
    );
    assert_eq!(e.src_ip, None);
    let e = one(
        &mut d,
        "Jul 20 10:00:02 h sshd[43]: Connection closed by 203.0.113.9 port 4000",
    );
    assert_eq!(e.auth, Some(AuthOutcome::Failure));
    // The connection table travels with fork().
    one(
        &mut d,
        "Jul 20 10:00:03 h sshd[44]: Connection from 203.0.113.10 port 5000 on 192.0.2.2 port 22",
    );
    let mut f = d.fork();
    let e = one(
        &mut f,
        "Jul 20 10:00:04 h sshd[44]: fatal: Read from socket failed: Connection reset by peer [preauth]",
    );
    assert_eq!(e.src_ip, Some(ip("203.0.113.10")));

    let e = ev(
        "Jul 20 10:00:00 h sshd[1]: PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.11  user=root",
    );
    assert_eq!((e.count, e.user.as_deref()), (2, Some("root")));
    let e = ev(
        "Jul 20 10:00:00 h sshd[1]: drop connection #0 from [203.0.113.12]:50000 on [192.0.2.2]:22 penalty: failed authentication",
    );
    assert_eq!((e.src_ip, e.dst_port), (Some(ip("203.0.113.12")), Some(22)));
    let e = ev(
        "Jul 20 10:00:00 h sshd-session[1]: Timeout before authentication for 203.0.113.13 port 50000",
    );
    assert_eq!(e.auth, Some(AuthOutcome::Failure));
    let e = ev(
        "Jul 20 10:00:00 h sshd[1]: Received disconnect from 203.0.113.14 port 50000:11: disconnected by user",
    );
    assert_eq!((e.kind, e.auth), (EventKind::Other, None));
    let e = ev(
        "Jul 20 10:00:00 h sshd[1]: pam_unix(sshd:session): session opened for user bob(uid=1000) by (uid=0)",
    );
    assert_eq!((e.kind, e.user.as_deref()), (EventKind::Other, Some("bob")));
    let e = ev(
        "Jul 20 10:00:00 h dropbear[9]: Password auth succeeded for 'root' from 203.0.113.15:40000",
    );
    assert_eq!(
        (e.auth, e.src_port),
        (Some(AuthOutcome::Success), Some(40000))
    );
    let e = ev("Mon Jan 13 10:19:21 2020 [pid 123] [ftpuser] FAIL LOGIN: Client \"203.0.113.16\"");
    assert_eq!(
        (e.auth, e.user.as_deref()),
        (Some(AuthOutcome::Failure), Some("ftpuser"))
    );
    assert_eq!(ts(&e), "2020-01-13T10:19:21Z");
}

#[test]
fn vendor_messages() {
    // Cisco ASA raw, with year in the Cisco timestamp.
    let e = ev(
        "Mar 01 2019 10:00:00: %ASA-4-106100: access-list outside_in denied tcp outside/203.0.113.20(4444) -> inside/192.0.2.5(3389) hit-cnt 1 first hit [0x1, 0x0]",
    );
    assert_eq!((e.action, e.dst_port), (Some(Action::Deny), Some(3389)));
    assert_eq!(ts(&e), "2019-03-01T10:00:00Z");
    let e = ev(
        "%ASA-4-716039: Group <DfltGrpPolicy> User <admin> IP <203.0.113.21> Authentication: rejected, Session Type: WebVPN.",
    );
    assert_eq!(
        (e.auth, e.service.as_deref()),
        (Some(AuthOutcome::Failure), Some("vpn"))
    );
    assert_eq!(
        (e.src_ip, e.user.as_deref()),
        (Some(ip("203.0.113.21")), Some("admin"))
    );
    let e = ev(
        "%ASA-6-113015: AAA user authentication Rejected : reason = Invalid password : local database : user = admin : user IP = 203.0.113.22",
    );
    assert_eq!(
        (e.auth, e.src_ip),
        (Some(AuthOutcome::Failure), Some(ip("203.0.113.22")))
    );
    let e = ev("%ASA-6-611102: User authentication failed: IP address: 203.0.113.23, Uname: root");
    assert_eq!(
        (e.auth, e.user.as_deref()),
        (Some(AuthOutcome::Failure), Some("root"))
    );
    let e = ev(
        "%ASA-6-302015: Built inbound UDP connection 77 for outside:203.0.113.24/5060 (203.0.113.24/5060) to inside:192.0.2.6/5060 (198.51.100.1/5060)",
    );
    assert_eq!(
        (e.src_ip, e.proto),
        (Some(ip("203.0.113.24")), Some(Proto::Udp))
    );
    assert!(
        e.other_ips.contains(&ip("198.51.100.1")),
        "mapped address kept"
    );

    // JunOS plain and structured.
    let e = ev(
        "Jul 20 10:00:00 srx RT_FLOW: RT_FLOW_SESSION_CREATE: session created 192.0.2.7/51000->203.0.113.25/443 junos-https 198.51.100.2/21000->203.0.113.25/443 source rule r1 N/A N/A 6 p1 trust untrust 1234",
    );
    assert_eq!(
        (e.src_ip, e.dst_port, e.action),
        (Some(ip("192.0.2.7")), Some(443), Some(Action::Allow))
    );
    assert!(e.other_ips.contains(&ip("198.51.100.2")));
    let e = ev(
        "<14>1 2021-07-20T10:00:00.000Z srx RT_FLOW - RT_FLOW_SESSION_CLOSE [junos@2636.1.1.1.2.40 reason=\"TCP FIN\" source-address=\"192.0.2.8\" source-port=\"51001\" destination-address=\"203.0.113.26\" destination-port=\"22\" protocol-id=\"6\" packets-from-client=\"10\" bytes-from-client=\"1000\" packets-from-server=\"8\" bytes-from-server=\"5000\"]",
    );
    assert_eq!(
        (e.bytes_out, e.bytes_in, e.packets),
        (Some(1000), Some(5000), Some(18))
    );
    assert_eq!(e.conn_state.as_deref(), Some("close"));
    let e = ev(
        "Jul 20 10:00:00 srx sshd[5]: SSHD_LOGIN_FAILED: Login failed for user 'root' from host '203.0.113.27'",
    );
    assert_eq!(
        (e.auth, e.src_ip),
        (Some(AuthOutcome::Failure), Some(ip("203.0.113.27")))
    );

    // NetScreen traffic.
    let e = ev(
        "Jul 20 10:00:00 ssg ssg: NetScreen device_id=ssg  [Root]system-notification-00257(traffic): start_time=\"2021-07-20 10:00:00\" duration=0 policy_id=320001 service=tcp/port:22 proto=6 src zone=Untrust dst zone=Trust action=Deny sent=0 rcvd=40 src=203.0.113.28 dst=192.0.2.9 src_port=40000 dst_port=22",
    );
    assert_eq!(
        (e.action, e.src_ip, e.dst_port),
        (Some(Action::Deny), Some(ip("203.0.113.28")), Some(22))
    );

    // FortiGate traffic and admin login.
    let e = ev(
        "date=2021-07-20 time=10:00:00 devname=\"FGT\" logid=\"0000000013\" type=\"traffic\" subtype=\"forward\" srcip=203.0.113.29 srcport=40000 dstip=192.0.2.10 dstport=443 proto=6 action=\"deny\" sentbyte=0 rcvdbyte=0",
    );
    assert_eq!(
        (e.kind, e.action),
        (EventKind::Connection, Some(Action::Deny))
    );
    assert_eq!(e.host.as_deref(), Some("FGT"));
    let e = ev(
        "date=2021-07-20 time=10:00:00 tz=\"+0200\" logid=\"0100032002\" type=\"event\" subtype=\"system\" logdesc=\"Admin login failed\" user=\"admin\" ui=\"ssh(203.0.113.30)\" action=\"login\" status=\"failed\"",
    );
    assert_eq!(
        (e.auth, e.src_ip),
        (Some(AuthOutcome::Failure), Some(ip("203.0.113.30")))
    );
    assert_eq!(
        (e.service.as_deref(), ts(&e).as_str()),
        (Some("ssh"), "2021-07-20T08:00:00Z")
    );

    // PAN-OS GlobalProtect auth failures (SYSTEM and GLOBALPROTECT logs).
    let e = ev(
        "Jul 20 10:00:00 pa 1,2021/07/20 10:00:00,012345678901,SYSTEM,globalprotect,0,2021/07/20 10:00:00,,globalprotectportal-auth-fail,GP-Portal,0,0,general,medium,\"GlobalProtect portal user authentication failed. Login from: 203.0.113.31, Source region: US, User name: alice, Auth type: profile, Error: Authentication failed: Invalid username or password.\",123456,0x0,0,0,0,0,,PA-VM",
    );
    assert_eq!(
        (e.auth, e.service.as_deref()),
        (Some(AuthOutcome::Failure), Some("vpn"))
    );
    assert_eq!(
        (e.src_ip, e.user.as_deref()),
        (Some(ip("203.0.113.31")), Some("alice"))
    );
    let e = ev(
        "1,2021/07/20 10:00:00,012345678901,GLOBALPROTECT,0,2561,2021/07/20 10:00:00,vsys1,gateway-auth,login,LDAP,,bob,US,LAPTOP1,203.0.113.32,::,10.8.0.5,::,hostid,serial,5.2.1,Windows,10,1,,Authentication failed,Login failed,failure,,0,on-demand,0,GW1,123,0x0",
    );
    assert_eq!(
        (e.auth, e.src_ip),
        (Some(AuthOutcome::Failure), Some(ip("203.0.113.32")))
    );
    assert!(e.other_ips.contains(&ip("10.8.0.5")));

    // Check Point in key: value; and Log Exporter forms.
    let e = ev(
        "Jul 20 10:00:00 cp fw: src: 203.0.113.33; dst: 192.0.2.11; proto: tcp; service: 22; s_port: 40000; action: drop;",
    );
    assert_eq!(
        (e.action, e.dst_port, e.src_port),
        (Some(Action::Drop), Some(22), Some(40000))
    );
    let e = ev(
        "<134>1 2021-07-20T10:00:00Z gw CP-GW - Log [Fields@1.3.6.1.4.1.2620 Default Device Message=\"x\" action=\"Accept\" src=\"203.0.113.34\" dst=\"192.0.2.12\" proto=\"6\" s_port=\"40001\" service=\"443\"]",
    );
    assert_eq!(
        (e.action, e.src_ip, e.dst_port),
        (Some(Action::Allow), Some(ip("203.0.113.34")), Some(443))
    );
    let e = ev(
        "<134>1 2021-07-20T10:00:00Z mgmt CheckPoint 1 - [action:\"Failed Log In\"; src:\"203.0.113.35\"; user:\"admin\"]",
    );
    assert_eq!(
        (e.auth, e.user.as_deref()),
        (Some(AuthOutcome::Failure), Some("admin"))
    );

    // SonicWall admin login.
    let e = ev(
        "id=firewall sn=0017C5 time=\"2021-07-20 10:00:00 UTC\" fw=192.0.2.1 pri=1 c=32 m=30 msg=\"Administrator login denied due to bad credentials\" n=7 src=203.0.113.36:40000:X1 dst=192.0.2.1:443:X1 usr=\"admin\"",
    );
    assert_eq!(
        (e.auth, e.user.as_deref()),
        (Some(AuthOutcome::Failure), Some("admin"))
    );

    // nftables / firewalld prefixes, and a UFW allow.
    let e = ev(
        "Jul 20 10:00:00 h kernel: [ 12.3] filter_IN_public_REJECT: IN=eth0 OUT= SRC=203.0.113.37 DST=192.0.2.13 LEN=60 PROTO=TCP SPT=40000 DPT=23 WINDOW=64240 RES=0x00 SYN URGP=0",
    );
    assert_eq!(
        (e.action, e.conn_state.as_deref()),
        (Some(Action::Reject), Some("SYN"))
    );
    let e = ev(
        "Jul 20 10:00:00 h kernel: [UFW ALLOW] IN=eth0 OUT= SRC=203.0.113.38 DST=192.0.2.13 PROTO=UDP SPT=53 DPT=40000",
    );
    assert_eq!(e.action, Some(Action::Allow));

    // Audit through syslog, numeric type.
    let e = ev(
        "Jul 20 10:00:00 h audit: type=1100 audit(1626775200.000:5): pid=1 uid=0 auid=4294967295 ses=4294967295 msg='op=PAM:authentication acct=\"root\" exe=\"/usr/sbin/sshd\" hostname=203.0.113.39 addr=203.0.113.39 terminal=ssh res=failed'",
    );
    assert_eq!(
        (e.auth, e.service.as_deref()),
        (Some(AuthOutcome::Failure), Some("sshd"))
    );
    assert_eq!(ts(&e), "2021-07-20T10:00:00Z");
}

#[test]
fn sniffing() {
    use orbwatch_event::decoders::detect;
    let sshd: Vec<&[u8]> = vec![
        b"Jul 20 10:00:00 h sshd[1]: Invalid user a from 192.0.2.1",
        b"Jul 20 10:00:01 h sshd[1]: Failed password for invalid user a from 192.0.2.1 port 22 ssh2",
    ];
    assert_eq!(detect(&sshd).name, "syslog");
    let asa: Vec<&[u8]> = vec![b"%ASA-2-106001: Inbound TCP connection denied from 1.2.3.4/1 to 5.6.7.8/2 flags SYN on interface outside"];
    assert_eq!(detect(&asa).name, "syslog");
    let leef: Vec<&[u8]> = vec![b"LEEF:1.0|a|b|c|d|src=1.2.3.4"];
    assert_eq!(detect(&leef).name, "leef");
}
