//! PAM `authentication failure; logname= uid= euid= tty= ruser= rhost= user=`
//! messages from any service, in every tag style fail2ban's `pam-generic`
//! filter accepts: `pam_unix(svc:auth):`, the old `(pam_unix)` prefix, the
//! old `prog(pam_unix)[pid]:` program tag, a bare `pam_unix:` tag and the
//! untagged message some vsftpd builds write. The lines are written here in
//! those shapes (fail2ban's own test log is GPL and not copied); addresses
//! are from the documentation ranges.

mod decoders_syslog_support;

use decoders_syslog_support::*;
use orbwatch_event::{AuthOutcome, EventKind};

/// (line, service, user, source address or host name).
const CASES: &[(&str, &str, Option<&str>, &str)] = &[
    (
        "Feb  7 15:10:42 example pure-ftpd: (pam_unix) authentication failure; logname= uid=0 euid=0 tty=pure-ftpd ruser=sample-user rhost=192.0.2.1 ",
        "pure-ftpd",
        Some("sample-user"),
        "192.0.2.1",
    ),
    (
        "May 12 09:47:54 vaio sshd[16004]: (pam_unix) authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.12  user=root",
        "sshd",
        Some("root"),
        "198.51.100.12",
    ),
    (
        "May 12 09:48:03 vaio sshd(pam_unix)[16021]: authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.13  user=admin",
        "sshd",
        Some("admin"),
        "198.51.100.13",
    ),
    (
        "Nov 25 17:12:13 webmail pop(pam_unix)[4920]: authentication failure; logname= uid=0 euid=0 tty= ruser= rhost=192.0.2.3 user=mailuser",
        "pop",
        Some("mailuser"),
        "192.0.2.3",
    ),
    (
        "Jul 19 18:11:26 srv2 vsftpd: pam_unix(vsftpd:auth): authentication failure; logname= uid=0 euid=0 tty=ftp ruser=an8767 rhost=ftp.example.org",
        "vsftpd",
        Some("an8767"),
        "ftp.example.org",
    ),
    (
        "Jul 19 18:11:27 srv2 vsftpd: pam_unix: authentication failure; logname= uid=0 euid=0 tty=ftp ruser=an8767 rhost=203.0.113.9",
        "vsftpd",
        Some("an8767"),
        "203.0.113.9",
    ),
    (
        "Jul 19 18:11:28 srv2 vsftpd[881]: authentication failure; logname= uid=0 euid=0 tty=ftp ruser=bob rhost=203.0.113.10",
        "vsftpd",
        Some("bob"),
        "203.0.113.10",
    ),
    (
        "Mar  1 10:00:01 box login[412]: pam_unix(login:auth): authentication failure; logname=LOGIN uid=0 euid=0 tty=/dev/pts/3 ruser= rhost=192.0.2.44  user=operator",
        "login",
        Some("operator"),
        "192.0.2.44",
    ),
    (
        "Mar  1 10:00:02 box su(pam_unix)[7712]: authentication failure; logname= uid=0 euid=0 tty= ruser= rhost=192.0.2.45 user=root",
        "su",
        Some("root"),
        "192.0.2.45",
    ),
    (
        "Mar  1 10:00:03 mail dovecot: pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=carol rhost=192.0.2.46",
        "dovecot",
        Some("carol"),
        "192.0.2.46",
    ),
    (
        "Mar  1 10:00:04 mail proftpd: (pam_unix) authentication failure; logname= uid=0 euid=0 tty= ruser= rhost=192.0.2.47  user=mark",
        "proftpd",
        Some("mark"),
        "192.0.2.47",
    ),
];

#[test]
fn pam_failures_of_any_service_and_tag_style() {
    let text: String = CASES.iter().map(|c| format!("{}\n", c.0)).collect();
    let outs = decode_all("syslog", 2024, text.as_bytes());
    assert_eq!(outs.len(), CASES.len());
    let mut ok = 0;
    for ((line, out), (_, service, user, host)) in outs.iter().zip(CASES) {
        let ev = out
            .event()
            .unwrap_or_else(|| panic!("no event for {line}: {out:?}"));
        assert_eq!(ev.kind, EventKind::Auth, "{line}");
        assert_eq!(ev.auth, Some(AuthOutcome::Failure), "{line}");
        assert_eq!(ev.service.as_deref(), Some(*service), "{line}");
        assert_eq!(ev.user.as_deref(), *user, "{line}");
        assert!(has_host(ev, host), "{line}: {host} not found in {ev:?}");
        assert!(ev.time.is_some(), "{line}");
        ok += 1;
    }
    assert_eq!(ok, 11);
}

/// Lines that look close but are not PAM failures give no failure.
#[test]
fn near_misses_are_not_failures() {
    let lines = [
        "Mar  1 10:00:05 box su[7713]: pam_unix(su:session): session opened for user root by bob(uid=1000)",
        "Mar  1 10:00:06 box vsftpd: pam_unix",
        "Mar  1 10:00:07 box vsftpd: pam_: authentication failure; rhost=192.0.2.9",
        "Mar  1 10:00:08 box sshd(pam_unix)[1]: authentication failure",
        "",
    ];
    let text = lines.join("\n");
    let outs = decode_all("syslog", 2024, text.as_bytes());
    let failures = events(&outs)
        .iter()
        .filter(|e| e.auth == Some(AuthOutcome::Failure))
        .count();
    assert_eq!(failures, 0);
}

/// Dovecot, in the shapes of fail2ban's `dovecot` filter test: its own
/// login-process and auth-worker messages, and PAM lines from the
/// `dovecot-auth` and `auth` programs, including an `rhost=` injected
/// into `ruser` that must not become the source.
#[test]
fn dovecot_failures() {
    let lines = [
        "Jun 13 16:30:54 mx dovecot: imap-login: Disconnected (auth failed, 2 attempts): user=<bob>, method=PLAIN, rip=192.0.2.60, lip=192.0.2.1, TLS",
        "Jun 23 00:52:43 mx dovecot: pop3-login: Disconnected: Inactivity (auth failed, 1 attempts): user=<info>, method=PLAIN, rip=192.0.2.61, lip=192.0.2.1",
        "Jul  2 13:49:31 mx dovecot[442]: pop3-login: Aborted login (auth failed, 1 attempts in 17 secs): user=<test>, method=PLAIN, rip=192.0.2.62, lip=192.0.2.1, session=<YADINsQC>",
        "Jul  2 13:49:32 mx dovecot[442]: auth-worker(5345): pam(carol,192.0.2.63): pam_authenticate() failed: Authentication failure (password mismatch?)",
        "Sep 16 06:51:00 mx dovecot-auth: pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=rhost=198.51.100.99 rhost=192.0.2.64",
        "Apr 19 05:22:20 mx auth: pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=informix rhost=192.0.2.65",
        // Not failures: no attempt was made.
        "Jun 13 20:48:11 mx dovecot: pop3-login: Disconnected (no auth attempts): rip=192.0.2.66, lip=192.0.2.1, TLS: Disconnected",
    ];
    let text = lines.join("\n");
    let outs = decode_all("syslog", 2024, text.as_bytes());
    let evs = events(&outs);
    assert_eq!(evs.len(), 7);
    let failures: Vec<(String, u64)> = evs
        .iter()
        .filter(|e| e.auth == Some(AuthOutcome::Failure))
        .map(|e| (e.src_ip.map(|i| i.to_string()).unwrap_or_default(), e.count))
        .collect();
    assert_eq!(
        failures,
        [
            ("192.0.2.60".to_string(), 2),
            ("192.0.2.61".to_string(), 1),
            ("192.0.2.62".to_string(), 1),
            ("192.0.2.63".to_string(), 1),
            ("192.0.2.64".to_string(), 1),
            ("192.0.2.65".to_string(), 1),
        ]
    );
    assert_eq!(evs[6].auth, None);
    assert_eq!(evs[6].src_ip, Some("192.0.2.66".parse().expect("ip")));
}

/// `login`'s own failure lines (Telnet and console logins), util-linux and
/// shadow forms.
#[test]
fn login_failures() {
    let lines = [
        "Mar  1 10:00:01 box login[412]: FAILED LOGIN (1) on '/dev/pts/3' FROM '192.0.2.70' FOR 'root', Authentication failure",
        "Mar  1 10:00:02 box login[413]: FAILED LOGIN 1 FROM 192.0.2.71 FOR root, Authentication failure",
        "Mar  1 10:00:03 box login[414]: 2 LOGIN FAILURES FROM 192.0.2.72, root",
        "Mar  1 10:00:04 box login[415]: ROOT LOGIN  on '/dev/tty1'",
    ];
    let text = lines.join("\n");
    let outs = decode_all("syslog", 2024, text.as_bytes());
    let got: Vec<(String, u64)> = events(&outs)
        .iter()
        .filter(|e| e.auth == Some(AuthOutcome::Failure))
        .map(|e| {
            assert_eq!(e.service.as_deref(), Some("login"));
            assert_eq!(e.user.as_deref(), Some("root"));
            (e.src_ip.map(|i| i.to_string()).unwrap_or_default(), e.count)
        })
        .collect();
    assert_eq!(
        got,
        [
            ("192.0.2.70".to_string(), 1),
            ("192.0.2.71".to_string(), 1),
            ("192.0.2.72".to_string(), 2),
        ]
    );
}
