//! Apache/Nginx access and error logs: crowdsec and elastic files, and the
//! fail2ban labelled files (GPL, read from ../shared/corpus in place).

use std::net::IpAddr;

use orbwatch_event::decoders::{Decoded, DecoderConfig, by_name, detect};
use orbwatch_event::model::{Action, AuthOutcome, EventKind};

use super::common::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Remove the user agent (third quoted field: request, referrer, agent).
fn strip_ua(l: &[u8]) -> Vec<u8> {
    let mut spans = Vec::new();
    let mut i = 0;
    while i < l.len() {
        if l[i] == b'"' {
            let s = i;
            i += 1;
            while i < l.len() && l[i] != b'"' {
                if l[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            spans.push((s, i.min(l.len())));
        }
        i += 1;
    }
    match spans.get(2) {
        Some(&(s, e)) => {
            let mut out = l[..=s].to_vec();
            out.extend_from_slice(&l[e..]);
            out
        }
        None => l.to_vec(),
    }
}

/// (file, events, skips)
const ACCESS_FILES: &[(&str, usize, usize)] = &[
    ("crowdsec_apache-http-probing.log", 77, 0),
    ("crowdsec_apache2-logs.log", 9, 0),
    ("crowdsec_http-bf-wordpress-bf.log", 9, 1),
    ("crowdsec_http-wordpress-scan.log", 8, 0),
    ("crowdsec_nginx-http-generic-bf.log", 22, 0),
    ("crowdsec_nginx-http-sqli-probing.log", 16, 0),
    ("crowdsec_nginx_http-logs.log", 9, 0),
    ("elastic_examples_apache_access.head2000.log", 2000, 0),
];

#[test]
fn access_counts_and_every_address() {
    let mut checked = 0;
    for &(name, ev, sk) in ACCESS_FILES {
        let bytes = data(name);
        let r = run("web-access", &bytes);
        assert_eq!(r.counts(), (ev, sk, 0), "{name}: {:?}", r.rejects);
        checked += assert_ips_match(&r, strip_ua, name);
    }
    assert_eq!(checked, 2150);
    for name in [
        "crowdsec_apache-http-probing.log",
        "crowdsec_apache2-logs.log",
        "crowdsec_nginx_http-logs.log",
        "elastic_examples_apache_access.head2000.log",
    ] {
        let bytes = data(name);
        let ls = lines(&bytes);
        assert_eq!(detect(&ls[..ls.len().min(50)]).name, "web-access", "{name}");
    }
    // Error lines mostly: the error decoder is chosen, and reads both kinds.
    let bytes = data("crowdsec_nginx-http-generic-bf.log");
    let ls = lines(&bytes);
    assert_eq!(detect(&ls[..ls.len().min(50)]).name, "web-error");
    assert_eq!(run("web-error", &bytes).counts(), (22, 0, 0));
}

#[test]
fn elastic_fields_and_grep_count() {
    let bytes = data("elastic_examples_apache_access.head2000.log");
    let r = run("web-access", &bytes);
    let e = r.at(1);
    assert_eq!(e.kind, EventKind::Http);
    assert_eq!(e.src_ip, Some(ip("83.149.9.216")));
    assert_eq!(e.time.unwrap().to_string(), "2015-05-17T10:05:03Z");
    assert_eq!(
        e.url.as_deref(),
        Some("/presentations/logstash-monitorama-2013/images/kibana-search.png")
    );
    assert_eq!(e.bytes_in, Some(203023));
    assert_eq!(e.service.as_deref(), Some("http"));
    // Same number of records as `grep -c 66.249.73.135` on the head.
    let crawler = ip("66.249.73.135");
    let hits = r
        .events
        .iter()
        .filter(|e| event_ips(&e.2).contains(&crawler))
        .count();
    assert_eq!(hits, 99);

    let Some(full) = corpus("web-access/elastic_examples_apache_access.log") else {
        return;
    };
    let r = run("web-access", &full);
    assert_eq!(r.counts(), (10_000, 0, 0));
    let hits = r
        .events
        .iter()
        .filter(|e| event_ips(&e.2).contains(&crawler))
        .count();
    assert_eq!(hits, 482);
    assert_eq!(assert_ips_match(&r, strip_ua, "elastic"), 10_000);
}

#[test]
fn access_auth_vhost_prefix() {
    let r = run_data("web-access", "crowdsec_http-bf-wordpress-bf.log");
    let e = r.at(1);
    assert_eq!(e.src_ip, Some(ip("81.150.104.130")));
    assert_eq!(e.auth, Some(AuthOutcome::Failure), "POST /wp-login.php 200");
    assert_eq!(
        e.host.as_deref(),
        Some("ip-172-31-43-28.us-east-2.compute.internal")
    );
    assert_eq!(
        r.events
            .iter()
            .filter(|e| e.2.auth == Some(AuthOutcome::Failure))
            .count(),
        9
    );

    let r = run_data("web-access", "crowdsec_apache2-logs.log");
    let e = r.at(4);
    assert_eq!(e.src_ip, Some(ip("1.2.3.4")));
    assert_eq!(e.domain.as_deref(), Some("www.crowdsec.net"));
    assert_eq!(
        e.url.as_deref(),
        Some("http://www.crowdsec.net/solr/admin/info/system?wt=json")
    );

    let r = run_data("web-access", "crowdsec_nginx-http-generic-bf.log");
    let invalid = r
        .events
        .iter()
        .filter(|e| e.2.auth == Some(AuthOutcome::InvalidUser))
        .count();
    let failed: Vec<_> = r
        .events
        .iter()
        .filter(|e| e.2.auth == Some(AuthOutcome::Failure))
        .collect();
    assert_eq!(invalid, 16);
    assert_eq!(failed.len(), 6);
    assert!(failed.iter().all(|e| e.2.user.as_deref() == Some("test")));

    // Address in the request (a payload host) and in X-Forwarded-For.
    let line = br#"192.0.2.1 - - [20/Jan/2015:19:53:28 +0100] "GET /x?u=http://198.51.100.7/sh HTTP/1.1" 404 47 "-" "Mozilla/5.0 (rv:1.9.2.15)" "203.0.113.50, 10.1.1.1""#;
    let r = run("web-access", line);
    let e = r.at(1);
    assert_eq!(e.time.unwrap().to_string(), "2015-01-20T18:53:28Z");
    assert_eq!(
        e.other_ips,
        vec![ip("198.51.100.7"), ip("203.0.113.50"), ip("10.1.1.1")]
    );
    // Common format, IPv6 client, user, 401.
    let r = run(
        "web-access",
        br#"2001:db8::7 - alice [10/Oct/2000:13:55:36 -0700] "GET /private/ HTTP/1.0" 401 2326"#,
    );
    let e = r.at(1);
    assert_eq!(e.src_ip, Some(ip("2001:db8::7")));
    assert_eq!(e.user.as_deref(), Some("alice"));
    assert_eq!(e.auth, Some(AuthOutcome::Failure));
    assert_eq!(e.time.unwrap().to_string(), "2000-10-10T20:55:36Z");
}

#[test]
fn error_log_lines() {
    let lines_ = concat!(
        "[Sat Jun 01 02:17:42.123 2013] [authz_core:error] [pid 123] [client 1.2.3.4:5678] AH01630: client denied by server configuration: /var/www\n",
        "[Thu Jul 11 01:21:43 2013] [error] [client 194.228.20.113] user dsfasdf not found: /\n",
        "2013/06/01 02:17:42 [error] 123#0: *1 no user/password was provided for basic authentication, client: 1.2.3.4, server: example.com, request: \"GET / HTTP/1.1\", host: \"example.com\"\n",
        "2013/06/01 02:17:43 [notice] 123#0: signal process started\n",
        "garbage\n",
    );
    let r = run("web-error", lines_.as_bytes());
    assert_eq!(r.counts(), (4, 0, 1));
    let e = r.at(1);
    assert_eq!(e.action, Some(Action::Deny));
    assert_eq!(e.auth, None);
    assert_eq!(e.src_port, Some(5678));
    assert_eq!(e.time.unwrap().to_string(), "2013-06-01T02:17:42.123Z");
    let e = r.at(2);
    assert_eq!(e.kind, EventKind::Auth);
    assert_eq!(e.auth, Some(AuthOutcome::InvalidUser));
    assert_eq!(e.user.as_deref(), Some("dsfasdf"));
    let e = r.at(3);
    assert_eq!(e.auth, Some(AuthOutcome::Failure));
    assert_eq!(e.domain.as_deref(), Some("example.com"));
    assert_eq!(e.url.as_deref(), Some("http://example.com/"));
    assert_eq!(r.at(4).kind, EventKind::Other);
}

/// The UTC offset of an access line's `[dd/Mon/yyyy:HH:MM:SS +hhmm]`, as
/// `+hh:mm`.
fn clf_offset(line: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(line).ok()?;
    let open = s.find('[')?;
    let close = open + s[open..].find(']')?;
    let inner = &s[open + 1..close];
    let (_, off) = inner.split_once(' ')?;
    (off.len() == 5 && inner.as_bytes().get(2) == Some(&b'/'))
        .then(|| format!("{}:{}", &off[..3], &off[3..]))
}

/// A fail2ban `# failJSON:` label and the line it describes.
struct Label<'a> {
    line_no: usize,
    line: &'a [u8],
    matched: bool,
    host: Option<String>,
    time: Option<String>,
}

fn labels(bytes: &[u8]) -> Vec<Label<'_>> {
    let ls = lines(bytes);
    let mut out = Vec::new();
    for (i, l) in ls.iter().enumerate() {
        let Some(j) = l.strip_prefix(b"# failJSON:") else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_slice(j).expect("label JSON");
        let k = (i + 1..ls.len())
            .find(|&k| !ls[k].starts_with(b"#") && !ls[k].trim_ascii().is_empty())
            .expect("labelled line");
        out.push(Label {
            line_no: k + 1,
            line: ls[k],
            matched: v["match"].as_bool().unwrap_or(false),
            host: v["host"].as_str().map(str::to_owned),
            time: v["time"].as_str().map(str::to_owned),
        });
    }
    out
}

/// Per file: labels with a host, how many events hold it, labelled times
/// matched, and `match: true` lines of authentication failures found as
/// Failure/InvalidUser.
#[test]
fn fail2ban_labels() {
    // (file, decoder, labels, with host, auth-failure lines, access denials)
    let files = [
        (
            "web-access/fail2ban_apache-auth.log",
            "web-error",
            45,
            43,
            31,
            7,
        ),
        (
            "web-access/fail2ban_nginx-http-auth.log",
            "web-error",
            18,
            17,
            10,
            0,
        ),
        (
            "web-access/fail2ban_nginx-botsearch.log",
            "web-access",
            14,
            14,
            0,
            0,
        ),
        (
            "web-access/fail2ban_apache-botsearch.log",
            "web-error",
            19,
            19,
            0,
            0,
        ),
    ];
    let mut total_host = 0;
    let mut total_ok = 0;
    for (rel, dec, n_labels, n_host, n_auth, n_deny) in files {
        let Some(bytes) = corpus(rel) else { return };
        let ls = labels(&bytes);
        assert_eq!(ls.len(), n_labels, "{rel}");
        let info = by_name(dec).unwrap();
        // As `--year 2005`: dates the syslog-borne Apache lines.
        let cfg = DecoderConfig {
            year: Some(2005),
            ..Default::default()
        };
        let mut d = (info.make)(&cfg);
        let (mut with_host, mut host_ok, mut time_ok, mut timed, mut auth_ok) = (0, 0, 0, 0, 0);
        let mut deny = 0;
        let mut problems = Vec::new();
        for lab in &ls {
            let ev = match d.decode(lab.line) {
                Ok(Decoded::Event(e)) => e,
                other => {
                    problems.push(format!("{rel}:{} not decoded: {other:?}", lab.line_no));
                    continue;
                }
            };
            if let Some(h) = &lab.host {
                with_host += 1;
                if event_ips(&ev).contains(&ip(h)) {
                    host_ok += 1;
                } else {
                    problems.push(format!("{rel}:{} host {h} missing", lab.line_no));
                }
            }
            // fail2ban checks times of matches only; one `match: false`
            // label of apache-botsearch says 2014 for a line that says
            // `[Fri Dec 06 09:29:34 2013]` (a Friday in 2013, not 2014).
            if let Some(t) = lab.time.as_ref().filter(|_| lab.matched) {
                timed += 1;
                // Labels give the line's local time; access lines carry an
                // offset, and events are in UTC.
                let want = match clf_offset(lab.line) {
                    Some(off) => format!("{t}{off}")
                        .parse::<jiff::Timestamp>()
                        .unwrap()
                        .to_string(),
                    None => t.clone(),
                };
                let got = ev.time.map(|x| x.to_string()).unwrap_or_default();
                if got.starts_with(want.trim_end_matches('Z')) {
                    time_ok += 1;
                } else {
                    problems.push(format!("{rel}:{} time {t} got {got}", lab.line_no));
                }
            }
            if lab.matched
                && matches!(
                    ev.auth,
                    Some(AuthOutcome::Failure | AuthOutcome::InvalidUser)
                )
            {
                auth_ok += 1;
            }
            if lab.matched && ev.action == Some(Action::Deny) {
                deny += 1;
            }
            if !lab.matched {
                assert_eq!(ev.auth, None, "{rel}:{} is labelled no match", lab.line_no);
            }
        }
        println!(
            "{rel}: {} labels, {host_ok}/{with_host} hosts found, {time_ok}/{timed} times, {auth_ok} auth failures, {deny} denials",
            ls.len()
        );
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        if (with_host, auth_ok, deny) != (n_host, n_auth, n_deny) {
            for lab in ls.iter().filter(|l| l.matched) {
                if let Ok(Decoded::Event(e)) = d.decode(lab.line)
                    && e.auth.is_none()
                    && e.action.is_none()
                {
                    println!("  not auth: {}", String::from_utf8_lossy(lab.line));
                }
            }
        }
        assert_eq!(
            (with_host, auth_ok, deny),
            (n_host, n_auth, n_deny),
            "{rel}"
        );
        total_host += with_host;
        total_ok += host_ok;
    }
    assert_eq!((total_ok, total_host), (93, 93));
}
