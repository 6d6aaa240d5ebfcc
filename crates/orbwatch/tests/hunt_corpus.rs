//! End-to-end `orbwatch hunt` on real logs, against ground truth nobody here
//! wrote:
//! - fail2ban's `# failJSON` labels: a feed built from the labelled hosts
//!   must be found on exactly the labelled lines;
//! - record-level totals: the sum of `count` must equal an independent,
//!   exact, record-level grep for every address.
//!
//! fail2ban's files are GPL-2.0 and are read from `../shared/corpus`; when
//! it is absent those tests print that they were skipped. The MIT/BSD files
//! copied into `tests/data/` are always tested.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn corpus() -> Option<PathBuf> {
    let p = repo().join("../shared/corpus");
    p.is_dir().then_some(p)
}

fn hunt(feed: &Path, inputs: &[PathBuf], extra: &[&str]) -> (Vec<serde_json::Value>, i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_orbwatch"))
        .env("TZ", "UTC") // year-less syslog is read in the machine's zone
        .arg("hunt")
        .arg("--feed")
        .arg(feed)
        .args(["--format", "jsonl", "--evidence-limit", "0"])
        .args(extra)
        .args(inputs)
        // No store: with --feed and no --db, hunt neither reads nor keeps one.
        .env_remove("ORBWATCH_DB")
        .env("XDG_DATA_HOME", "/nonexistent")
        .output()
        .expect("run orbwatch");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 output");
    // Behaviour findings (scans, brute force) are tested in
    // behaviour_corpus.rs; these tests check IOC matches.
    let findings = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("each line is a JSON finding"))
        .filter(|f| f["kind"] == "ioc_match")
        .collect();
    (
        findings,
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Lenient dotted quad (fail2ban writes `192.030.0.6`).
fn parse_ip(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut o = [0u8; 4];
    for (i, p) in parts.iter().enumerate() {
        o[i] = p.parse().ok()?;
    }
    Some(IpAddr::from(o))
}

/// (line number of the labelled log line, host, whether the line itself
/// names the host) for every label whose host is an IP address. Hostnames
/// are not IP indicators and are left out.
fn fail2ban_labels(path: &Path) -> Vec<(u64, IpAddr, bool)> {
    let text = std::fs::read_to_string(path).expect("read fixture");
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(json) = l.strip_prefix("# failJSON:") else {
            continue;
        };
        let v: serde_json::Value = match serde_json::from_str(json.trim()) {
            Ok(v) => v,
            Err(_) => continue,
        };
        let Some(host) = v.get("host").and_then(|h| h.as_str()) else {
            continue;
        };
        if let Some(ip) = parse_ip(host) {
            let next = lines.get(i + 1).copied().unwrap_or("");
            let named = next.contains(host) || next.contains(&ip.to_string());
            out.push((i as u64 + 2, ip, named));
        }
    }
    out
}

#[test]
fn fail2ban_labelled_hosts_are_found_on_their_lines() {
    let Some(corpus) = corpus() else {
        println!("skipped: ../shared/corpus not found");
        return;
    };
    let mut files = Vec::new();
    for dir in ["auth-ssh", "web-access"] {
        for e in std::fs::read_dir(corpus.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("fail2ban_")
            {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 14, "expected the fail2ban fixtures");
    let tmp = tempfile::tempdir().unwrap();
    let mut total = 0;
    let mut context_only = 0;
    for file in &files {
        let labels = fail2ban_labels(file);
        if labels.is_empty() {
            continue;
        }
        let hosts: BTreeSet<IpAddr> = labels.iter().map(|(_, h, _)| *h).collect();
        let feed = tmp.path().join("hosts.txt");
        std::fs::write(
            &feed,
            hosts.iter().map(|h| format!("{h}\n")).collect::<String>(),
        )
        .unwrap();
        let (findings, code, stderr) = hunt(&feed, std::slice::from_ref(file), &[]);
        assert!(code == 0, "{}: exit {code}: {stderr}", file.display());
        let mut seen: BTreeMap<(u64, String), bool> = BTreeMap::new();
        for f in &findings {
            for e in f["evidence"].as_array().unwrap() {
                assert_eq!(e["file"].as_str().unwrap(), file.display().to_string());
                let context = e.get("context").and_then(|c| c.as_bool()).unwrap_or(false);
                seen.insert(
                    (
                        e["line"].as_u64().unwrap(),
                        f["indicator"].as_str().unwrap().to_string(),
                    ),
                    context,
                );
            }
        }
        for (line, host, named) in &labels {
            if !named {
                // fail2ban ties these lines to an earlier line of the same
                // sshd session; the line itself names no address, and
                // orbwatch reports it as context evidence.
                context_only += 1;
            }
            let context = seen.get(&(*line, host.to_string()));
            assert!(
                context.is_some(),
                "{}: host {host} not reported on line {line}",
                file.display()
            );
            assert_eq!(
                context,
                Some(&!*named),
                "{}: line {line} should be context evidence exactly when it names no address",
                file.display()
            );
            total += 1;
        }
    }
    println!(
        "{total} labelled lines found on their line; {context_only} labels name a host only an earlier line of the session mentions"
    );
    assert!(total > 300, "only {total} labelled lines checked");
    assert_eq!(
        context_only, 19,
        "labels whose line names no address (multi-line sshd sessions)"
    );
}

/// Independent record-level grep: does `line` contain `ip` as a whole token
/// (the byte before not in [A-Za-z0-9_.], the byte after not in
/// [A-Za-z0-9_] nor a `.` followed by a digit)?
fn line_has_token(line: &str, ip: &str) -> bool {
    let b = line.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut from = 0;
    while let Some(i) = line[from..].find(ip) {
        let s = from + i;
        let e = s + ip.len();
        let before_ok = s == 0 || !(word(b[s - 1]) || b[s - 1] == b'.');
        let after_ok = e == b.len()
            || !(word(b[e]) || (b[e] == b'.' && e + 1 < b.len() && b[e + 1].is_ascii_digit()));
        if before_ok && after_ok {
            return true;
        }
        from = s + 1;
    }
    false
}

/// IPv4 candidates of a line found without the scanner under test.
fn ipv4_candidates(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    for tok in line.split(|c: char| !(c.is_ascii_digit() || c == '.')) {
        let tok = tok.trim_matches('.');
        if tok.split('.').count() == 4 && tok.parse::<std::net::Ipv4Addr>().is_ok() {
            out.push(tok.to_string());
        }
    }
    out
}

fn check_record_totals(files: &[PathBuf]) {
    let tmp = tempfile::tempdir().unwrap();
    for file in files {
        let text = String::from_utf8_lossy(&std::fs::read(file).unwrap()).into_owned();
        // Records: every non-comment, non-empty line.
        let records: Vec<&str> = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let ips: BTreeSet<String> = records.iter().flat_map(|l| ipv4_candidates(l)).collect();
        if ips.is_empty() {
            continue;
        }
        let mut expected: BTreeMap<String, u64> = BTreeMap::new();
        for ip in &ips {
            let n = records.iter().filter(|l| line_has_token(l, ip)).count() as u64;
            if n > 0 {
                expected.insert(ip.clone(), n);
            }
        }
        let feed = tmp.path().join("ips.txt");
        std::fs::write(
            &feed,
            ips.iter().map(|h| format!("{h}\n")).collect::<String>(),
        )
        .unwrap();
        let (findings, code, stderr) = hunt(&feed, std::slice::from_ref(file), &[]);
        assert!(code == 0, "{}: exit {code}: {stderr}", file.display());
        let mut got: BTreeMap<String, u64> = BTreeMap::new();
        for f in &findings {
            *got.entry(f["indicator"].as_str().unwrap().to_string())
                .or_default() += f["count"].as_u64().unwrap();
        }
        assert_eq!(
            got,
            expected,
            "{}: counts differ from a record-level grep",
            file.display()
        );
    }
}

#[test]
fn record_totals_equal_grep_on_bundled_zeek_and_eve() {
    let dir = repo().join("tests/data/logs-a");
    if !dir.is_dir() {
        println!("skipped: tests/data/logs-a not found");
        return;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            (n.starts_with("zat_") || n.ends_with(".eve.json") || n.starts_with("crowdsec_eve"))
                && !n.ends_with(".md")
        })
        .collect();
    files.sort();
    assert!(files.len() >= 10);
    check_record_totals(&files);
}

#[test]
fn record_totals_equal_grep_on_corpus_syslog() {
    let Some(corpus) = corpus() else {
        println!("skipped: ../shared/corpus not found");
        return;
    };
    let mut files = Vec::new();
    for dir in ["auth-ssh", "firewall-kernel", "zeek-json", "suricata-eve"] {
        for e in std::fs::read_dir(corpus.join(dir)).unwrap() {
            files.push(e.unwrap().path());
        }
    }
    files.sort();
    check_record_totals(&files);
}

#[test]
fn corrupt_gzip_is_named_and_the_rest_is_hunted() {
    let Some(corpus) = corpus() else {
        println!("skipped: ../shared/corpus not found");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let feed = tmp.path().join("f.txt");
    std::fs::write(&feed, "192.168.33.10\n").unwrap();
    let corrupt = corpus.join("zeek-tsv/zat_http.log.corrupt.gz");
    let good = corpus.join("zeek-tsv/zat_http.log.gz");
    let (findings, code, stderr) = hunt(&feed, &[corrupt, good], &[]);
    assert_eq!(code, 2, "an unreadable input gives exit code 2");
    assert!(stderr.contains("zat_http.log.corrupt.gz"), "{stderr}");
    assert!(stderr.contains("corrupt or truncated"), "{stderr}");
    let files: BTreeSet<String> = findings
        .iter()
        .flat_map(|f| f["evidence"].as_array().unwrap().iter())
        .map(|e| e["file"].as_str().unwrap().to_string())
        .collect();
    assert!(
        files.iter().any(|f| f.ends_with("zat_http.log.gz")),
        "{files:?}"
    );
    assert!(
        files.iter().any(|f| f.ends_with("corrupt.gz")),
        "records before the corruption are hunted too: {files:?}"
    );
}

/// Totals of `count` per indicator.
fn totals(findings: &[serde_json::Value]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for f in findings {
        *m.entry(f["indicator"].as_str().unwrap().to_string())
            .or_default() += f["count"].as_u64().unwrap();
    }
    m
}

#[test]
fn domain_indicators_match_on_dns_http_tls_fields_and_the_fast_sweep_agrees() {
    let dir = repo().join("tests/data/logs-a");
    if !dir.is_dir() {
        println!("skipped: tests/data/logs-a not found");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let feed = tmp.path().join("domains.txt");
    // `guyspy.com` also covers www.guyspy.com (subdomains match).
    std::fs::write(
        &feed,
        "guyspy.com\nmaxmind.com\nnot-in-these-logs.example\n",
    )
    .unwrap();
    let files: Vec<PathBuf> = ["zat_dns.log", "zat_http.log", "zat_ssl.log", "zat_conn.log"]
        .iter()
        .map(|f| dir.join(f))
        .collect();
    let (full, code, stderr) = hunt(&feed, &files, &[]);
    assert_eq!(code, 0, "{stderr}");
    let (fast, code, stderr) = hunt(&feed, &files, &["--no-behaviour"]);
    assert_eq!(code, 0, "{stderr}");
    let t = totals(&full);
    assert!(t.get("guyspy.com").copied().unwrap_or(0) >= 44, "{t:?}");
    assert!(t.contains_key("maxmind.com"), "{t:?}");
    assert!(!t.contains_key("not-in-these-logs.example"));
    assert_eq!(
        t,
        totals(&fast),
        "the IOC-only sweep must find what the full decode finds"
    );
    for f in &full {
        assert_eq!(f["matched_field"], "domain");
    }
}

#[test]
fn rotated_compressed_set_is_read_oldest_first_and_binary_is_reported() {
    use std::io::Write;
    let demo = std::fs::read_to_string(repo().join("examples/logs/demo-auth.log")).unwrap();
    let lines: Vec<&str> = demo.lines().collect();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("logs");
    std::fs::create_dir(&dir).unwrap();
    // auth.log.2.gz (oldest), auth.log.1 (zstd despite its name), auth.log.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all((lines[..6].join("\n") + "\n").as_bytes())
        .unwrap();
    std::fs::write(dir.join("auth.log.2.gz"), gz.finish().unwrap()).unwrap();
    let z = zstd::encode_all((lines[6..9].join("\n") + "\n").as_bytes(), 3).unwrap();
    std::fs::write(dir.join("auth.log.1"), z).unwrap();
    std::fs::write(dir.join("auth.log"), lines[9..].join("\n") + "\n").unwrap();
    std::fs::write(dir.join("core.bin"), [0u8, 1, 2, 3, 0, 0, 7, 0].repeat(100)).unwrap();
    let feed = repo().join("examples/feeds/CERTFR-2021-IOC-003-IOC.csv");
    // -v: the coverage of each input, in the order they were read (the
    // summary printed without it adds them up).
    let (findings, code, stderr) =
        hunt(&feed, std::slice::from_ref(&dir), &["--year", "2021", "-v"]);
    assert_eq!(
        code, 2,
        "the binary file makes the run incomplete: {stderr}"
    );
    assert!(stderr.contains("core.bin"), "{stderr}");
    assert!(stderr.contains("binary data"), "{stderr}");
    let order: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.trim().strip_prefix(dir.to_str().unwrap()))
        .collect();
    assert!(
        order[0].starts_with("/auth.log.2.gz (syslog, gzip)"),
        "{order:?}"
    );
    assert!(
        order[1].starts_with("/auth.log.1 (syslog, zstd)"),
        "{order:?}"
    );
    assert!(order[2].starts_with("/auth.log (syslog)"), "{order:?}");
    let t = totals(&findings);
    let expected: BTreeMap<String, u64> = [
        ("105.154.12.165", 4),
        ("156.222.199.111", 2),
        ("2.176.234.36", 2),
        ("94.59.209.77", 1),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), *v))
    .collect();
    assert_eq!(t, expected);
    // 11.154.12.165 is not 105.154.12.165's neighbour in any sense.
    assert!(!t.contains_key("11.154.12.165"));
}

#[test]
fn large_feed_fast_sweep_agrees_with_full_decode() {
    // More than 65,536 addresses switches the sweep to its pipelined,
    // prefetching path: it must find exactly what the full decode finds.
    let tmp = tempfile::tempdir().unwrap();
    let feed = tmp.path().join("big.txt");
    let mut text = String::new();
    let mut x: u32 = 12345;
    for _ in 0..70_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let ip = std::net::Ipv4Addr::from(x | 0x0100_0000);
        text.push_str(&format!("{ip}\n"));
    }
    text.push_str("105.154.12.165\n156.222.199.111\n2.176.234.36\n94.59.209.77\n");
    std::fs::write(&feed, text).unwrap();
    let logs = [repo().join("examples/logs")];
    let (full, code, stderr) = hunt(&feed, &logs, &["--year", "2021"]);
    assert_eq!(code, 0, "{stderr}");
    let (fast, code, stderr) = hunt(&feed, &logs, &["--year", "2021", "--no-behaviour"]);
    assert_eq!(code, 0, "{stderr}");
    let t = totals(&full);
    assert_eq!(t.values().sum::<u64>(), 9, "{t:?}");
    assert_eq!(t, totals(&fast));
    let lines = |f: &[serde_json::Value]| -> BTreeSet<(String, u64)> {
        f.iter()
            .flat_map(|x| x["evidence"].as_array().unwrap().clone())
            // Context evidence (an sshd line tied to its session) needs the
            // full decode, which the sweep skips for records naming nothing.
            .filter(|e| e.get("context").is_none())
            .map(|e| {
                (
                    e["file"].as_str().unwrap().to_string(),
                    e["line"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(lines(&full), lines(&fast), "same records, same lines");
    assert_eq!(lines(&fast).len(), 9);
}
