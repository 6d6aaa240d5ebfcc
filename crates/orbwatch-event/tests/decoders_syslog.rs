//! The syslog decoder on authentication logs: the fail2ban test logs (GPL,
//! read in place from `../shared/corpus`) checked against their
//! `# failJSON:` labels, and the CrowdSec hub inputs (MIT, copied to
//! `tests/data/logs-syslog` with ATTRIBUTION.md) with exact counts.

mod decoders_syslog_support;

use std::collections::BTreeSet;
use std::net::IpAddr;

use decoders_syslog_support::*;
use orbwatch_event::{Action, AuthOutcome, EventKind};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

/// Check a fail2ban log and assert the exact pass counts.
/// `outcome` = (passing, total) for `match: true` auth lines.
fn fail2ban(
    rel: &str,
    auth: bool,
    labelled: usize,
    hosts: usize,
    outcome: (usize, usize),
) -> Option<Report> {
    let path = corpus(rel)?;
    let r = fail2ban_check(&path, 2005, auth);
    println!(
        "{rel}: {} lines, {} events, {} rejected, {} labelled, host {}/{}, outcome {}/{}, time {}/{}",
        r.lines,
        r.events,
        r.errors,
        r.labelled,
        r.host_ok,
        r.host_total,
        r.outcome_ok,
        r.outcome_total,
        r.time_ok,
        r.time_total
    );
    for m in &r.misses {
        println!("  {m}");
    }
    assert_eq!(r.errors, 0, "{rel}: every line decodes or is skipped");
    assert_eq!(r.labelled, labelled, "{rel}: labelled lines");
    assert_eq!(
        (r.host_ok, r.host_total),
        (hosts, hosts),
        "{rel}: labelled hosts found"
    );
    assert_eq!(
        (r.outcome_ok, r.outcome_total),
        outcome,
        "{rel}: failure outcomes"
    );
    assert_eq!(
        r.time_ok, r.time_total,
        "{rel}: month, day and clock of zone-less times"
    );
    Some(r)
}

#[test]
fn fail2ban_sshd() {
    // The two outcome misses are `Accepted password for known from ...`:
    // fail2ban flags them because the same connection failed before for
    // other users (gh-2070); the line itself is a success, and says so.
    let Some(r) = fail2ban("auth-ssh/fail2ban_sshd.log", true, 155, 108, (106, 108)) else {
        return;
    };
    assert!(
        r.misses
            .iter()
            .all(|m| m.contains("Accepted password for known")),
        "only the Accepted lines may miss"
    );
    assert_eq!(r.time_ok, 106);
}

#[test]
fn fail2ban_sshd_journal() {
    let Some(r) = fail2ban(
        "auth-ssh/fail2ban_sshd-journal.log",
        true,
        129,
        86,
        (84, 86),
    ) else {
        return;
    };
    assert!(
        r.misses
            .iter()
            .all(|m| m.contains("Accepted password for known"))
    );
}

#[test]
fn fail2ban_other_auth_logs() {
    fail2ban("auth-ssh/fail2ban_dropbear.log", true, 10, 10, (10, 10));
    fail2ban("auth-ssh/fail2ban_selinux-ssh.log", true, 11, 11, (5, 5));
    fail2ban("auth-ssh/fail2ban_vsftpd.log", true, 8, 8, (8, 8));
    fail2ban("auth-ssh/fail2ban_proftpd.log", true, 10, 10, (10, 10));
    fail2ban("auth-ssh/fail2ban_mysqld-auth.log", true, 17, 17, (16, 16));
    fail2ban("auth-ssh/fail2ban_mssql-auth.log", true, 5, 4, (4, 4));
}

#[test]
fn fail2ban_recidive_and_portsentry() {
    fail2ban("auth-ssh/fail2ban_recidive.log", false, 9, 7, (0, 0));
    fail2ban("auth-ssh/fail2ban_portsentry.log", false, 2, 2, (0, 0));
    let Some(p) = corpus("auth-ssh/fail2ban_recidive.log") else {
        return;
    };
    let outs = decode_all("syslog", 2005, &std::fs::read(p).unwrap_or_default());
    let bans: Vec<_> = outs
        .iter()
        .filter(|(l, _)| l.contains("] Ban "))
        .filter_map(|(_, o)| o.event())
        .collect();
    assert_eq!(bans.len(), 8);
    assert!(
        bans.iter()
            .all(|e| e.action == Some(Action::Deny) && e.kind == EventKind::Alert)
    );
    let Some(p) = corpus("auth-ssh/fail2ban_portsentry.log") else {
        return;
    };
    let outs = decode_all("syslog", 2005, &std::fs::read(p).unwrap_or_default());
    let evs = events(&outs);
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[0].dst_port, Some(1));
    assert_eq!(evs[0].action, Some(Action::Deny));
    assert_eq!(
        evs[0].time.map(|t| t.to_string()).as_deref(),
        Some("2014-06-27T15:51:19Z")
    );
}

#[test]
fn fail2ban_specific_fields() {
    let Some(p) = corpus("auth-ssh/fail2ban_sshd.log") else {
        return;
    };
    let outs = decode_all("syslog", 2005, &std::fs::read(p).unwrap_or_default());
    let find = |needle: &str| {
        outs.iter()
            .find(|(l, _)| l.contains(needle))
            .and_then(|(_, o)| o.event())
            .unwrap_or_else(|| panic!("no event for {needle}"))
    };
    // Injection in the user name: the address is the real one.
    let e = find("Failed password for invalid user test from 10.10.1.2 port 55555 ssh2 from");
    assert_eq!(e.src_ip, Some(ip("127.0.0.1")));
    assert_eq!(e.src_port, Some(58946));
    assert_eq!(e.auth, Some(AuthOutcome::InvalidUser));
    let e = find("Connection closed by authenticating user test 127.0.0.1 port 12345");
    assert_eq!(e.src_ip, Some(ip("192.0.2.11")));
    assert_eq!(e.user.as_deref(), Some("test 127.0.0.1 port 12345"));
    // Host names go to `domain`.
    let e = find("User root from example.com not allowed");
    assert_eq!(e.domain.as_deref(), Some("example.com"));
    assert_eq!(e.src_ip, None);
    // Multi-line: the address comes from the connection's earlier line.
    let e = find(
        "Feb 12 04:09:21 localhost sshd[26713]: Disconnecting: Too many authentication failures [preauth]",
    );
    assert_eq!(e.src_ip, Some(ip("115.249.163.77")));
    // `Connection from A port p on B port q` is a connection event.
    let e = find("Connection from 192.0.2.3 port 39678 on 192.168.1.9 port 22");
    assert_eq!(e.kind, EventKind::Connection);
    assert_eq!((e.dst_ip, e.dst_port), (Some(ip("192.168.1.9")), Some(22)));
    // RFC 5424 with structured data holding brackets.
    let e = find("Failed unknown for invalid user redmond from 192.0.2.2");
    assert_eq!(
        e.time.map(|t| t.to_string()).as_deref(),
        Some("2019-07-08T21:40:17.954167Z")
    );
    assert_eq!(e.host.as_deref(), Some("hostname.example.com"));
    assert_eq!(e.service.as_deref(), Some("sshd"));
}

fn cs(name: &str) -> Vec<(String, Out)> {
    let bytes = std::fs::read(data(name)).expect("tests/data/logs-syslog copy");
    decode_all("syslog", 2021, &bytes)
}

#[test]
fn crowdsec_ssh_bruteforce_files() {
    let outs = cs("crowdsec_ssh-bf.log");
    let evs = events(&outs);
    assert_eq!(evs.len(), 6);
    assert!(evs.iter().all(|e| e.src_ip == Some(ip("35.188.49.176"))
        && e.auth == Some(AuthOutcome::InvalidUser)
        && e.src_port == Some(53502)));
    let users: Vec<_> = evs.iter().filter_map(|e| e.user.as_deref()).collect();
    assert_eq!(
        users,
        [
            "pascal", "pascal1", "pascal2", "pascal3", "pascal4", "pascal5"
        ]
    );

    let evs_owned = cs("crowdsec_ssh-slow-bf.log");
    let evs = events(&evs_owned);
    assert_eq!(evs.len(), 22);
    assert!(evs.iter().all(|e| e.src_ip == Some(ip("103.100.210.198"))
        && e.user.as_deref() == Some("hadoop")
        && e.auth == Some(AuthOutcome::InvalidUser)));
    assert_eq!(
        evs[0].time.map(|t| t.to_string()).as_deref(),
        Some("2021-09-30T12:11:33Z")
    );

    let o = cs("crowdsec_ssh-time-based-bf.log");
    let evs = events(&o);
    assert_eq!(evs.len(), 15);
    assert_eq!(
        evs.iter()
            .filter(|e| e.auth == Some(AuthOutcome::InvalidUser))
            .count(),
        14
    );
    assert_eq!(
        evs.iter()
            .filter(|e| e.auth == Some(AuthOutcome::Success))
            .count(),
        1
    );
    let srcs: BTreeSet<_> = evs.iter().filter_map(|e| e.src_ip).collect();
    assert_eq!(srcs.len(), 4);

    let o = cs("crowdsec_sshd-bad-keyexchange-bf.log");
    let evs = events(&o);
    assert_eq!(evs.len(), 19);
    assert!(
        evs.iter()
            .all(|e| e.auth == Some(AuthOutcome::Failure) && e.src_port.is_some())
    );
    let srcs: BTreeSet<_> = evs.iter().filter_map(|e| e.src_ip).collect();
    assert_eq!(
        srcs,
        [
            ip("123.57.135.134"),
            ip("206.189.59.169"),
            ip("123.123.123.123")
        ]
        .into_iter()
        .collect()
    );

    let o = cs("crowdsec_sshd-invalid-bf.log");
    let evs = events(&o);
    assert_eq!(evs.len(), 6);
    assert!(evs.iter().all(|e| e.src_ip == Some(ip("179.43.183.98"))
        && e.user.as_deref() == Some("root")
        && e.auth == Some(AuthOutcome::Failure)));
}

#[test]
fn crowdsec_sshd_logs_variants() {
    let o = cs("crowdsec_sshd-logs.log");
    assert!(
        o.iter().all(|(_, x)| x.event().is_some()),
        "all 24 lines decode"
    );
    let evs = events(&o);
    assert_eq!(evs.len(), 24);
    // Every line has the remote address.
    assert!(evs.iter().all(|e| e.src_ip.is_some()), "{evs:#?}");
    let failures = evs.iter().filter(|e| is_failure(e)).count();
    // `Disconnected from totobad user ...` is not an sshd message: its address
    // is kept, as a preauth close it is still a failure.
    assert_eq!(failures, 24);
    let by = |needle: &str| {
        o.iter()
            .find(|(l, _)| l.contains(needle))
            .and_then(|(_, x)| x.event())
            .unwrap_or_else(|| panic!("{needle}"))
    };
    assert_eq!(by("rhost=5.33.63.160").user.as_deref(), Some("workshop"));
    assert_eq!(
        by("Disconnected from invalid user ftp").auth,
        Some(AuthOutcome::InvalidUser)
    );
    assert_eq!(
        by("refused connect from example.com").src_ip,
        Some(ip("192.168.1.1"))
    );
    assert_eq!(by("Magic value check failed").src_port, Some(62730));
    let e = by("2023-11-14T00:20:42.738197+01:00");
    assert_eq!(
        e.time.map(|t| t.to_string()).as_deref(),
        Some("2023-11-13T23:20:42.738197Z")
    );
}

#[test]
fn crowdsec_opnsense_sshd_rfc5424() {
    let o = cs("crowdsec_opnsense-sshd.log");
    let evs = events(&o);
    assert_eq!(evs.len(), 10);
    for e in &evs {
        assert_eq!(e.src_ip, Some(ip("1.2.3.4")));
        assert_eq!(e.user.as_deref(), Some("tutu"));
        assert_eq!(e.auth, Some(AuthOutcome::InvalidUser));
        assert_eq!(e.host.as_deref(), Some("OPNsense.localdomain"));
    }
    assert_eq!(
        evs[0].time.map(|t| t.to_string()).as_deref(),
        Some("2022-01-19T14:23:55Z")
    );
}

#[test]
fn crowdsec_samba_auth_audit() {
    let o = cs("crowdsec_smb-bf.log");
    let evs = events(&o);
    assert_eq!(evs.len(), 6);
    for e in &evs {
        assert_eq!(e.kind, EventKind::Auth);
        assert_eq!(e.service.as_deref(), Some("smb"));
        assert_eq!(e.auth, Some(AuthOutcome::InvalidUser));
        assert_eq!((e.src_ip, e.src_port), (Some(ip("1.2.3.4")), Some(62419)));
        assert_eq!((e.dst_ip, e.dst_port), (Some(ip("10.1.1.1")), Some(445)));
        assert_eq!(e.user.as_deref(), Some("toto"));
    }
    assert_eq!(
        evs[0].time.map(|t| t.to_string()).as_deref(),
        Some("2021-09-24T10:04:52.030937Z")
    );
}

#[test]
fn wazuh_sshd_lines() {
    let Some(p) = corpus("firewall-vendor/wazuh_sshd.ini") else {
        return;
    };
    let lines = wazuh_lines(&p);
    assert_eq!(lines.len(), 28);
    let mut d = decoder("syslog", 2020);
    let mut with_ip = 0;
    for (_, raw) in &lines {
        let ev = match d.decode(raw.as_bytes()) {
            Ok(orbwatch_event::Decoded::Event(e)) => e,
            other => panic!("{raw}: {other:?}"),
        };
        // Every address in the message is in the event (the envelope's
        // host is the reporting device, kept in `host`).
        for tok in raw.split([' ', ':', '[', ']']) {
            if ev.host.as_deref() == Some(tok) {
                continue;
            }
            if let Ok(a) = tok.parse::<IpAddr>() {
                assert!(
                    ev.addresses().any(|(x, _)| x == a),
                    "{raw}: {a} missing in {ev:?}"
                );
                with_ip += 1;
            }
        }
        assert_eq!(ev.service.as_deref(), Some("sshd"), "{raw}");
    }
    assert_eq!(with_ip, 9);
}
