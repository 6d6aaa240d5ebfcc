//! Detection live equals detection in batch: the same lines given to the
//! live pipeline one record at a time (as `watch` gets them from a
//! followed file or a syslog socket) give the same findings as `hunt` on
//! the file: same ids, kinds, counts, times, sources and severities.
//! Real logs from crowdsec's test suite (MIT, tests/data/logs-syslog) and
//! the corpus' NetFlow datagrams (tests/data/netflow) are used.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use orbwatch_detect::{Finding, IocEngine};
use orbwatch_engine::{Engine, EngineOptions, LiveOptions, LivePipeline};
use orbwatch_live::{LiveRecord, Payload};
use orbwatch_source::Filters;

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(rel)
}

/// Indicators: addresses that the test logs name.
fn ioc(values: &[&str]) -> IocEngine {
    feed::ioc_of("test-relays", values)
}

#[path = "support/feed.rs"]
mod feed;
#[path = "support/stage2.rs"]
mod support;
use support::engine_options as options;

/// What must agree between live and batch (evidence is picked
/// differently: read back from the file in a hunt, kept in memory live).
fn essence(findings: &[Finding]) -> Vec<String> {
    let mut v: Vec<String> = findings
        .iter()
        .map(|f| {
            format!(
                "{} {} count={} first={:?} last={:?} src={:?} dst={:?} sev={:?} score={:?} accounts={:?}",
                f.id,
                f.kind,
                f.count,
                f.first_seen,
                f.last_seen,
                f.src_ip,
                f.dst_ip,
                f.severity,
                f.score,
                f.accounts
            )
        })
        .collect();
    v.sort();
    v
}

fn hunt(path: &Path, values: &[&str]) -> Vec<Finding> {
    hunt_with(path, values, options())
}

fn hunt_with(path: &Path, values: &[&str], opts: EngineOptions) -> Vec<Finding> {
    let engine = Engine::new(ioc(values), opts).expect("engine starts");
    let (inputs, problems) =
        orbwatch_source::expand(&[path.to_string_lossy().into_owned()], &Filters::default());
    assert!(problems.is_empty());
    let mut found = Vec::new();
    engine
        .hunt(&inputs, &problems, &mut found)
        .expect("hunt runs");
    found
}

/// Every finding the pipeline hands on, the latest state of each id.
fn collect(out: &mut Vec<Finding>, new: Vec<Finding>) {
    for f in new {
        match out.iter_mut().find(|x| x.id == f.id) {
            Some(x) => *x = f,
            None => out.push(f),
        }
    }
}

/// Hand every line of `path` to `p` as one stream (named by the path),
/// at `now`; `each` runs after each line with its index.
fn feed_file(
    p: &mut LivePipeline,
    path: &Path,
    now: Instant,
    mut each: impl FnMut(usize, &mut LivePipeline),
) {
    let text = std::fs::read(path).expect("read test log");
    let stream: Arc<str> = Arc::from(path.to_string_lossy().as_ref());
    let mut offset = 0u64;
    for (i, line) in text.split(|b| *b == b'\n').enumerate() {
        if !line.is_empty() {
            p.handle(
                LiveRecord {
                    prefiltered: None,
                    prework: Default::default(),
                    stream: stream.clone(),
                    number: i as u64 + 1,
                    offset,
                    payload: Payload::Line,
                    bytes: line.to_vec(),
                    received: Timestamp::now(),
                    checkpoint: None,
                },
                now,
            );
            each(i, p);
        }
        offset += line.len() as u64 + 1;
    }
}

fn live_lines(path: &Path, values: &[&str]) -> (Vec<Finding>, LivePipeline) {
    live_lines_with(
        path,
        values,
        options(),
        LiveOptions::default().evidence_budget,
    )
}

fn live_lines_with(
    path: &Path,
    values: &[&str],
    opts: EngineOptions,
    evidence_budget: usize,
) -> (Vec<Finding>, LivePipeline) {
    let engine = Engine::new(ioc(values), opts).expect("engine starts");
    // Names and IPv6 addresses nothing holds are given back at every tick
    // (every seventh line), and new ones take their ids at once: a holder
    // that did not mark its ids would show another account's name, or
    // count another account or source, and the findings would differ
    // from the hunt's.
    let live = LiveOptions {
        sweep_floor: 0,
        evidence_budget,
        ..LiveOptions::default()
    };
    let mut p = LivePipeline::new(engine, live).expect("pipeline starts");
    let mut found = Vec::new();
    let now = Instant::now();
    feed_file(&mut p, path, now, |i, p| {
        if i % 7 == 0 {
            p.tick(now);
            collect(&mut found, p.take_output().findings);
        }
    });
    // Long enough for detection to have waited, not for an idle flush.
    p.tick(now + Duration::from_secs(1));
    collect(&mut found, p.take_output().findings);
    (found, p)
}

/// Everything the pipeline handed on by its end, less the reports of
/// attacks made while they went on that a final finding of another id
/// replaced (marked `superseded_by`; a hunt sees only the end). Each of
/// those must name a final finding that exists.
fn finish(mut found: Vec<Finding>, p: LivePipeline) -> Vec<Finding> {
    collect(&mut found, p.finish().findings);
    let superseded = |f: &Finding| {
        f.details
            .as_ref()
            .and_then(|d| d.get("superseded_by"))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    for f in &found {
        if let Some(by) = superseded(f) {
            assert!(found.iter().any(|x| x.id == by), "{} names {by}", f.id);
        }
    }
    found.retain(|f| superseded(f).is_none());
    found
}

#[test]
fn real_sshd_and_firewall_logs_give_the_same_findings_live_and_in_batch() {
    let cases: &[(&str, &[&str])] = &[
        ("logs-syslog/crowdsec_ssh-bf.log", &["35.188.49.176"]),
        ("logs-syslog/crowdsec_sshd-invalid-bf.log", &[]),
        (
            "logs-syslog/crowdsec_iptables-scan-multi-port.log",
            &["62.34.17.168"],
        ),
        ("logs-syslog/crowdsec_ssh-slow-bf.log", &[]),
        ("logs-syslog/crowdsec_pf-scan-multi-port.log", &[]),
        ("logs-syslog/crowdsec_mikrotik-scan-multi_ports.log", &[]),
        ("logs-syslog/crowdsec_smb-bf.log", &[]),
        ("logs-syslog/crowdsec_fortinet-vpn-bf.log", &[]),
    ];
    let mut behaviour = 0;
    let mut iocs = 0;
    for (rel, values) in cases {
        let path = data(rel);
        let batch = hunt(&path, values);
        let (so_far, p) = live_lines(&path, values);
        let live = finish(so_far, p);
        assert!(!batch.is_empty(), "{rel}: the hunt finds something");
        assert_eq!(essence(&batch), essence(&live), "{rel}");
        behaviour += batch.iter().filter(|f| f.ioc.is_none()).count();
        iocs += batch.iter().filter(|f| f.ioc.is_some()).count();
        // Behaviour findings carry the records behind them live too.
        for f in live.iter().filter(|f| f.ioc.is_none()) {
            assert!(
                !f.evidence.is_empty(),
                "{rel}: {} has evidence: {f:#?}",
                f.id
            );
            assert!(
                f.evidence[0]
                    .file
                    .ends_with(rel.rsplit('/').next().unwrap_or(rel)),
                "{:?}",
                f.evidence[0]
            );
            // Each record's text is its line, as read (the pipeline
            // keeps the record's own buffer, not a copy).
            let text = std::fs::read_to_string(&path).expect("read test log");
            let lines: Vec<&str> = text.split('\n').collect();
            for e in &f.evidence {
                let line = e.line.expect("a line number") as usize;
                assert_eq!(e.raw, lines[line - 1], "{rel}: {e:?}");
            }
        }
    }
    assert!(behaviour >= 4, "behaviour findings compared: {behaviour}");
    assert!(iocs >= 2, "indicator findings compared: {iocs}");
}

/// Three days of IPv6 attacks, written by this test: port scans, brute
/// forces, sprays from a /64 per source, a success after failures, and a
/// stream of sources seen once (a probe or a failure each, spoofed or
/// not), some of them IPv4. (The spray's sources share a /64: a
/// cluster, which with the shared accounts makes a campaign.) Live, the IPv6 addresses nothing holds any
/// more are given back at every tick and new sources take their ids at
/// once: a holder that did not mark its ids would merge one source's
/// state, evidence or sums with another's, and differ from the hunt.
fn ipv6_days() -> String {
    let mut lines: Vec<(i64, String)> = Vec::new();
    let start = 1_714_521_600i64; // 2024-05-01T00:00:00Z
    let stamp = |t: i64| {
        jiff::Timestamp::from_second(t)
            .expect("time")
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    let fail = |t: i64, user: &str, src: &str| {
        (
            t,
            format!(
                "{} srv sshd[7]: Failed password for invalid user {user} from {src} port 4000 ssh2",
                stamp(t)
            ),
        )
    };
    let probe = |t: i64, src: &str, port: u16| {
        (
            t,
            format!(
                "{} gw kernel: [1.0] IN=eth0 OUT= MAC=de:1c:88:64:10:19:5e:e1:a4:3b:cf:f0:86:dd SRC={src} DST=2001:db8:ff::10 LEN=80 TC=0 HOPLIMIT=53 FLOWLBL=0 PROTO=TCP SPT=5222 DPT={port} WINDOW=1024 RES=0x00 SYN URGP=0",
                stamp(t)
            ),
        )
    };
    // Sources seen once, all the time: one every 30 s.
    for i in 0..3 * 2_880i64 {
        let t = start + i * 30;
        let src = match i % 3 {
            0 => format!("2001:db8:aa:{:x}::{:x}", i / 7, i),
            1 => format!("2001:db8:bb::{:x}", i),
            _ => format!("198.51.{}.{}", (i >> 8) & 255, i & 255),
        };
        lines.push(if i % 2 == 0 {
            probe(t, &src, 22)
        } else {
            fail(t, &format!("once{i}"), &src)
        });
    }
    for day in 0..3i64 {
        let at = |h: i64, s: i64| start + day * 86_400 + h * 3600 + s;
        // A port scan at 03:00, 40 ports in 4 minutes.
        for p in 0..40i64 {
            let src = format!("2001:db8:5ca::{:x}", day + 1);
            lines.push(probe(at(3, p * 6), &src, 1000 + p as u16));
        }
        // A brute force at 06:00 and again at 15:00: 30 names each.
        for burst in [6i64, 15] {
            for k in 0..30i64 {
                let user = format!("u{day}-{burst}-{k}");
                lines.push(fail(at(burst, k * 5), &user, "2001:db8:bf::9"));
            }
        }
        // A spray: 40 sources of one /64, three accounts each, over the
        // day.
        for s in 0..40i64 {
            for (k, user) in ["alice", "bob", "carol"].iter().enumerate() {
                let src = format!("2001:db8:5b:{day:x}::{:x}", s + 2);
                lines.push(fail(at(0, 1800 + s * 1500 + k as i64 * 500), user, &src));
            }
        }
        // Failures from one /64 then a success from another address of it.
        for k in 0..8i64 {
            lines.push(fail(at(20, k * 20), "deploy", "2001:db8:5af::7"));
        }
        let t = at(20, 300);
        lines.push((
            t,
            format!(
                "{} srv sshd[7]: Accepted password for deploy from 2001:db8:5af::8 port 4001 ssh2",
                stamp(t)
            ),
        ));
    }
    lines.sort_by_key(|l| l.0);
    let mut text: String = lines.into_iter().map(|(_, l)| l + "\n").collect();
    text.pop();
    text
}

#[test]
fn ipv6_sources_given_back_mid_stream_change_no_finding() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ipv6-days.log");
    std::fs::write(&path, ipv6_days()).expect("write the days");
    // Sources go idle within hours, not weeks: their ids are given back
    // within the three days.
    let opts = || {
        let mut o = options();
        if let Some(b) = &mut o.behaviour {
            b.config.distributed.idle_secs = 4 * 3600;
        }
        o
    };
    let batch = hunt_with(&path, &["2001:db8:bf::9"], opts());
    let kinds: Vec<String> = batch.iter().map(|f| f.kind.to_string()).collect();
    for k in [
        "port_scan",
        "brute_force",
        "distributed_bruteforce",
        "success_after_failures",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} among {kinds:?}");
    }
    assert!(batch.iter().any(|f| f.ioc.is_some()));
    // With evidence, and with almost none: the evidence cache holds a
    // source's id for a day, longer than any detector, and would hide a
    // detector that did not mark its ids.
    for budget in [LiveOptions::default().evidence_budget, 4096] {
        let (so_far, p) = live_lines_with(&path, &["2001:db8:bf::9"], opts(), budget);
        let stats = p.stats();
        assert!(
            stats.addresses_forgotten > 1_000,
            "IPv6 addresses given back: {stats:?}"
        );
        let live = finish(so_far, p);
        assert_eq!(essence(&batch), essence(&live), "evidence budget {budget}");
        // Each live finding of one source has that source's records as
        // evidence (a campaign's are its members').
        let one_source = |f: &&Finding| {
            f.ioc.is_none() && !matches!(f.kind.to_string().as_str(), "distributed_bruteforce")
        };
        for f in live.iter().filter(one_source) {
            let Some(src) = f.src_ip else { continue };
            for e in &f.evidence {
                assert!(e.raw.contains(&src.to_string()), "{}: {e:?}", f.id);
            }
        }
    }
}

/// crowdsec's bad-key-exchange log is not in time order: six records of
/// June 7 come after those of June 8. A hunt sorts them; live, they are
/// a day behind the newest event, far beyond the allowed lateness, so
/// they are late: counted, said in the coverage, and not given to the
/// detectors (their episode is not reported), never silently lost.
#[test]
fn records_a_day_out_of_order_are_counted_late_and_said() {
    let path = data("logs-syslog/crowdsec_sshd-bad-keyexchange-bf.log");
    let batch = hunt(&path, &[]);
    let (so_far, p) = live_lines(&path, &[]);
    assert_eq!(p.stats().late, 6);
    let notes = p
        .coverage()
        .behaviour
        .map(|b| b.notes.join(" "))
        .unwrap_or_default();
    assert!(
        notes.contains("6 behaviour observations arrived"),
        "{notes}"
    );
    let live = finish(so_far, p);
    let late_source = "206.189.59.169".parse().ok();
    let expected: Vec<Finding> = batch
        .iter()
        .filter(|f| f.src_ip != late_source)
        .cloned()
        .collect();
    assert_eq!(batch.len(), 3);
    assert_eq!(essence(&expected), essence(&live));
}

#[test]
fn an_indicator_sighting_is_reported_at_once_not_at_the_end() {
    let path = data("logs-syslog/crowdsec_ssh-bf.log");
    let (so_far, p) = live_lines(&path, &["35.188.49.176"]);
    let ioc: Vec<&Finding> = so_far.iter().filter(|f| f.ioc.is_some()).collect();
    assert_eq!(ioc.len(), 1, "{so_far:#?}");
    let batch = hunt(&path, &["35.188.49.176"]);
    let b = batch
        .iter()
        .find(|f| f.ioc.is_some())
        .expect("batch finding");
    assert_eq!(ioc[0].id, b.id, "same id before the end");
    assert_eq!(ioc[0].count, b.count);
    let stats = p.stats();
    assert!(stats.records > 0 && stats.matched_records == b.count);
}

/// The corpus' NetFlow v5 datagrams, sent one by one as the collector
/// would receive them, give the same findings as the hunt over the file.
#[test]
fn netflow_datagrams_live_give_the_same_findings_as_the_file() {
    let path = data("netflow/netflow5.dat");
    let bytes = std::fs::read(&path).expect("read datagrams");
    // Every address of the capture is an indicator candidate: take the
    // source of the first flow record (v5: header 24 bytes, srcaddr first).
    let ip = std::net::Ipv4Addr::new(bytes[24], bytes[25], bytes[26], bytes[27]).to_string();
    let values = [ip.as_str()];
    let batch = hunt(&path, &values);
    assert!(batch.iter().any(|f| f.ioc.is_some()), "{batch:#?}");
    let engine = Engine::new(ioc(&values), options()).expect("engine starts");
    let mut p = LivePipeline::new(engine, LiveOptions::default()).expect("pipeline starts");
    let exporter: SocketAddr = "127.0.0.1:2055".parse().expect("addr");
    let mut rest = bytes.as_slice();
    let mut n = 0u64;
    let mut offset = 0u64;
    while let Some(len) = orbwatch_capture::netflow::frame_len(rest) {
        if len == 0 || len > rest.len() {
            break;
        }
        n += 1;
        p.handle(
            LiveRecord {
                prefiltered: None,
                prework: Default::default(),
                stream: Arc::from("netflow 127.0.0.1:2055"),
                number: n,
                offset,
                payload: Payload::NetflowDatagram { exporter },
                bytes: rest[..len].to_vec(),
                received: Timestamp::now(),
                checkpoint: None,
            },
            Instant::now(),
        );
        offset += len as u64;
        rest = &rest[len..];
    }
    assert!(n > 0);
    let live = p.finish().findings;
    let ioc_only = |v: &[Finding]| -> Vec<String> {
        essence(v)
            .into_iter()
            .filter(|s| s.contains("ioc_match"))
            .collect()
    };
    assert_eq!(ioc_only(&batch), ioc_only(&live));
}

/// Feed each file as its own stream, one file after the other, all read
/// before the formats are detected (as a worker reads a backlog), then let
/// the detection wait pass.
fn live_streams(paths: &[PathBuf], live: LiveOptions) -> (Vec<Finding>, LivePipeline) {
    let engine = Engine::new(ioc(&[]), options()).expect("engine starts");
    let mut p = LivePipeline::new(engine, live).expect("pipeline starts");
    let now = Instant::now();
    for path in paths {
        feed_file(&mut p, path, now, |_, _| {});
    }
    p.tick(now + Duration::from_secs(1));
    let mut found = Vec::new();
    collect(&mut found, p.take_output().findings);
    (found, p)
}

/// Two streams six years apart, the newer read first (sshd lines of 2021,
/// then Suricata EVE records of 2015; their formats are detected in that
/// order, the order they began to wait): with one clock for all streams
/// (`watch`'s default) the EVE observations are late and its brute force
/// is missed; with the stream skew unbounded (what `worker` sets, as Kafka
/// partitions are fetched in no order) the clock follows the slowest
/// stream and the findings are the hunt's. (Detection followed the hash
/// map's order before, and CI saw the EVE stream detected first.)
#[test]
fn a_stream_years_behind_another_is_in_order_when_skew_is_allowed() {
    let dir = tempfile::tempdir().expect("tmp");
    let files = [
        "logs-syslog/crowdsec_ssh-bf.log",
        "logs-a/zeek_ssh_sshguess.eve.json",
    ];
    let mut paths = Vec::new();
    for f in files {
        let to = dir.path().join(f.rsplit('/').next().expect("name"));
        std::fs::copy(data(f), &to).expect("copy");
        paths.push(to);
    }
    let batch = hunt(dir.path(), &[]);
    let kinds: Vec<&str> = batch.iter().map(|f| f.kind.as_str()).collect();
    assert!(
        kinds.contains(&"brute_force") && batch.len() >= 2,
        "{kinds:?}"
    );

    let (so_far, p) = live_streams(&paths, LiveOptions::default());
    assert!(p.stats().late > 0, "one clock: the EVE records are late");
    let one_clock = finish(so_far, p);
    assert_ne!(essence(&one_clock), essence(&batch));

    let mut skew = LiveOptions::default();
    skew.event_time.max_stream_skew = None;
    let (so_far, p) = live_streams(&paths, skew);
    assert_eq!(p.stats().late, 0);
    assert_eq!(essence(&finish(so_far, p)), essence(&batch));
}

/// A source announced before it sends (a Kafka partition just assigned)
/// holds the clock until it is heard from. Here the newer stream (sshd,
/// 2021) is read, detected and judged before the older one (EVE, 2015)
/// sends anything, as when one partition's first fetch comes back long
/// after another's. With the stream skew unbounded but no hold, the
/// watermark has passed 2015 by then and the EVE records are late; with
/// a hold on the second source, ended as its first record comes, the
/// findings are the hunt's.
#[test]
fn a_held_source_first_heard_from_after_another_was_judged_is_not_late() {
    let dir = tempfile::tempdir().expect("tmp");
    let files = [
        "logs-syslog/crowdsec_ssh-bf.log",
        "logs-a/zeek_ssh_sshguess.eve.json",
    ];
    let mut paths = Vec::new();
    for f in files {
        let to = dir.path().join(f.rsplit('/').next().expect("name"));
        std::fs::copy(data(f), &to).expect("copy");
        paths.push(to);
    }
    let batch = hunt(dir.path(), &[]);
    let run = |hold: bool| {
        let mut live = LiveOptions::default();
        live.event_time.max_stream_skew = None;
        let engine = Engine::new(ioc(&[]), options()).expect("engine starts");
        let mut p = LivePipeline::new(engine, live).expect("pipeline starts");
        let start = Instant::now();
        if hold {
            p.hold_for("partition 1", start + Duration::from_secs(30));
        }
        let mut found = Vec::new();
        feed_file(&mut p, &paths[0], start, |_, _| {});
        // The first stream's format is detected and its records judged.
        let later = start + Duration::from_secs(1);
        p.tick(later);
        collect(&mut found, p.take_output().findings);
        assert_eq!(p.holds(), usize::from(hold));
        if hold {
            p.end_hold("partition 1");
        }
        feed_file(&mut p, &paths[1], later, |_, _| {});
        p.tick(later + Duration::from_secs(1));
        collect(&mut found, p.take_output().findings);
        let late = p.stats().late;
        (late, finish(found, p))
    };
    let (late, unheld) = run(false);
    assert!(late > 0, "without a hold the EVE records are late");
    assert_ne!(essence(&unheld), essence(&batch));
    let (late, held) = run(true);
    assert_eq!(late, 0);
    assert_eq!(essence(&held), essence(&batch));
}

/// A hold that is never ended stops holding at its deadline, so a dead
/// source cannot hold findings back for ever: nothing is judged before
/// it, and the hunt's findings come after it.
#[test]
fn a_hold_ends_at_its_deadline() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("zeek_ssh_sshguess.eve.json");
    std::fs::copy(data("logs-a/zeek_ssh_sshguess.eve.json"), &path).expect("copy");
    let batch = hunt(dir.path(), &[]);
    assert!(!batch.is_empty());
    let mut live = LiveOptions::default();
    live.event_time.max_stream_skew = None;
    let engine = Engine::new(ioc(&[]), options()).expect("engine starts");
    let mut p = LivePipeline::new(engine, live).expect("pipeline starts");
    let start = Instant::now();
    p.hold_for("partition 9", start + Duration::from_secs(5));
    feed_file(&mut p, &path, start, |_, _| {});
    p.tick(start + Duration::from_secs(1));
    let held = p.take_output().findings;
    assert_eq!(p.holds(), 1);
    assert!(held.is_empty(), "nothing is judged while held: {held:?}");
    assert_eq!(p.stats().watermark, None, "nothing released while held");
    p.tick(start + Duration::from_secs(6));
    assert_eq!(p.holds(), 0);
    assert!(p.stats().watermark.is_some(), "released after the deadline");
    let mut found = held;
    collect(&mut found, p.take_output().findings);
    assert_eq!(essence(&finish(found, p)), essence(&batch));
}

/// Zeek `conn` records (JSON) of four hours: in the first, internal host
/// 10.0.0.5 sends 1.2 GB to one external address; external clients then
/// connect to an internal server every hour.
fn conn_log_with_exfiltration() -> String {
    conn_log_with_exfiltration_to(443)
}

/// [`conn_log_with_exfiltration`], the transfers to port `port`.
fn conn_log_with_exfiltration_to(port: u16) -> String {
    let t0 = 1_614_556_800i64;
    let conn = |ts: i64, uid: &str, orig: &str, resp: &str, orig_bytes: u64| {
        let port = if orig.starts_with("10.") { port } else { 443 };
        format!(
            r#"{{"ts":{ts},"uid":"{uid}","id.orig_h":"{orig}","id.orig_p":50000,"id.resp_h":"{resp}","id.resp_p":{port},"proto":"tcp","service":"ssl","duration":10.0,"orig_bytes":{orig_bytes},"resp_bytes":1000,"conn_state":"SF","missed_bytes":0,"history":"ShADadFf","orig_pkts":1000,"resp_pkts":100}}"#
        )
    };
    let mut lines = vec![
        conn(t0, "C0", "10.0.0.5", "203.0.113.9", 600_000_000),
        conn(t0 + 60, "C1", "10.0.0.5", "203.0.113.9", 600_000_000),
    ];
    for h in 0..4 {
        for j in 1..=5 {
            let client = format!("198.51.100.{j}");
            lines.push(conn(
                t0 + 3600 * h + 100 + j,
                &format!("D{h}{j}"),
                &client,
                "10.0.0.80",
                100,
            ));
        }
    }
    lines.join("\n") + "\n"
}

/// A transfer that also makes an observation of its own (here one to a
/// known backdoor port, which alone makes no finding) is still the
/// evidence of its hour's outbound sum.
/// It was not: only a record that made nothing but the sum was kept, and
/// the sum's note of it was left for the next record to take.
#[test]
fn a_transfer_that_also_makes_an_observation_is_its_sums_evidence() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("conn.log");
    let log = conn_log_with_exfiltration_to(7777);
    std::fs::write(&path, &log).expect("write conn log");
    let batch = hunt(&path, &[]);
    let kinds = |f: &[Finding]| f.iter().map(|f| f.kind.to_string()).collect::<Vec<_>>();
    assert_eq!(kinds(&batch), ["exfiltration"], "{batch:#?}");
    let (so_far, p) = live_lines(&path, &[]);
    assert_eq!(p.stats().late, 0);
    let live = finish(so_far, p);
    assert_eq!(essence(&batch), essence(&live));
    let f = &live[0];
    let lines: Vec<&str> = log.lines().collect();
    let raws: Vec<&str> = f.evidence.iter().map(|e| e.raw.as_str()).collect();
    assert_eq!(raws, [lines[0], lines[1]], "{:#?}", f.evidence);
    assert_eq!(f.evidence_total, 2);
}

/// Hourly sums (outbound bytes, answered connections) reach the live
/// detectors once their hour is over, as a hunt's do at the end of its
/// unit of work: they were never handed on live, so `watch` never
/// reported an exfiltration (and kept every hour's sums in memory).
#[test]
fn an_exfiltration_is_reported_live_once_its_hour_is_over() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("conn.log");
    std::fs::write(&path, conn_log_with_exfiltration()).expect("write conn log");
    let batch = hunt(&path, &[]);
    let kinds = |f: &[Finding]| f.iter().map(|f| f.kind.to_string()).collect::<Vec<_>>();
    assert_eq!(kinds(&batch), ["exfiltration"], "{batch:#?}");
    let (so_far, p) = live_lines(&path, &[]);
    // Reported while the pipeline runs: three hours later came records.
    assert_eq!(kinds(&so_far), ["exfiltration"], "{so_far:#?}");
    assert_eq!(p.stats().late, 0);
    let live = finish(so_far, p);
    assert_eq!(essence(&batch), essence(&live));
    let f = &live[0];
    assert_eq!(f.src_ip, Some("10.0.0.5".parse().unwrap()));
    assert_eq!(f.dst_ip, Some("203.0.113.9".parse().unwrap()));
    // Its evidence live: the records behind the sum, as read.
    let lines: Vec<String> = conn_log_with_exfiltration()
        .lines()
        .map(str::to_string)
        .collect();
    let raws: Vec<&str> = f.evidence.iter().map(|e| e.raw.as_str()).collect();
    assert_eq!(raws, [&lines[0], &lines[1]], "{:#?}", f.evidence);
    assert_eq!(f.evidence_total, 2);
    // The same transfers with nothing after them: the hour is not over
    // when the input ends, and its sums are judged then, as in a hunt.
    std::fs::write(&path, lines[..2].join("\n") + "\n").expect("write conn log");
    let batch = hunt(&path, &[]);
    assert_eq!(kinds(&batch), ["exfiltration"], "{batch:#?}");
    let (so_far, p) = live_lines(&path, &[]);
    assert!(so_far.is_empty(), "{so_far:#?}");
    assert_eq!(essence(&batch), essence(&finish(so_far, p)));
    let shown = |t: Option<Timestamp>| t.map(|t| t.to_string());
    assert_eq!(shown(f.first_seen).as_deref(), Some("2021-03-01T00:00:00Z"));
    assert_eq!(
        shown(f.last_seen).as_deref(),
        Some("2021-03-01T00:59:59.999Z")
    );
}
