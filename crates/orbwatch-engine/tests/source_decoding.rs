//! A syslog connection's messages can be decoded on the connection's own
//! thread (`Prefilter::stream_work`), so that the pipeline thread, which
//! limits `watch`'s rate, does not decode them and connections decode in
//! parallel. The decoded event rides with the record; the pipeline must
//! take it, and findings and counts must be those of its own decoding.
//! Real syslog from crowdsec's test suite (MIT, tests/data/logs-syslog).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use orbwatch_detect::Finding;
use orbwatch_engine::{Engine, EngineOptions, LiveOptions, LivePipeline};
use orbwatch_live::{LiveRecord, Payload, StreamWork};

#[path = "support/stage2.rs"]
mod support;

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(rel)
}

fn message(stream: &Arc<str>, number: u64, bytes: &[u8]) -> LiveRecord {
    LiveRecord {
        stream: Arc::clone(stream),
        number,
        offset: 0,
        payload: Payload::Syslog,
        bytes: bytes.to_vec(),
        received: jiff::Timestamp::now(),
        checkpoint: None,
        prefiltered: None,
        prework: Default::default(),
    }
}

fn pipeline() -> LivePipeline {
    LivePipeline::new(support::engine(), LiveOptions::default()).expect("pipeline")
}

/// Every finding handed on, the latest state of each id, as JSON sorted
/// by id: what a store or an alert would get.
fn findings_json(found: Vec<Finding>) -> Vec<String> {
    let mut latest: Vec<Finding> = Vec::new();
    for f in found {
        match latest.iter_mut().find(|x| x.id == f.id) {
            Some(x) => *x = f,
            None => latest.push(f),
        }
    }
    latest.sort_by(|a, b| a.id.cmp(&b.id));
    latest
        .iter()
        .map(|f| serde_json::to_string(f).expect("finding serialises"))
        .collect()
}

/// The lines of `path` as one syslog connection's messages, each decoded
/// on "the connection's thread" by `work` when given.
fn run(path: &Path, mut work: Option<&mut Box<dyn StreamWork>>) -> (Vec<String>, String) {
    let mut p = pipeline();
    let stream: Arc<str> = Arc::from("syslog-tcp 127.0.0.1:601 from 127.0.0.1:40000");
    let text = std::fs::read(path).expect("read test log");
    let now = Instant::now();
    let mut found = Vec::new();
    for (i, line) in text.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let mut rec = message(&stream, i as u64 + 1, line);
        if let Some(w) = work.as_deref_mut() {
            w.work(&mut rec);
            assert!(!rec.prework.is_empty(), "a syslog message is decoded");
            assert!(
                rec.prefiltered.is_some(),
                "and tested against the indicators there"
            );
        }
        p.handle(rec, now);
        if i % 5 == 0 {
            p.tick(now);
            found.extend(p.take_output().findings);
        }
    }
    p.tick(now + Duration::from_secs(1));
    found.extend(p.take_output().findings);
    let stats = p.stats();
    let counts = format!(
        "records {} parsed {} rejected {} matched {}",
        stats.records, stats.parsed, stats.rejected, stats.matched_records
    );
    found.extend(p.finish().findings);
    (findings_json(found), counts)
}

#[test]
fn messages_decoded_on_their_connections_thread_give_the_pipelines_own_findings() {
    let mut behaviour = 0;
    for rel in [
        "logs-syslog/crowdsec_ssh-bf.log",
        "logs-syslog/crowdsec_sshd-invalid-bf.log",
        "logs-syslog/crowdsec_ssh-slow-bf.log",
        "logs-syslog/crowdsec_sshd-logs.log",
        "logs-syslog/crowdsec_iptables-scan-multi-port.log",
        "logs-syslog/crowdsec_pfsense-rfc5424-filterlog.log",
        "logs-syslog/crowdsec_smb-bf.log",
    ] {
        let path = data(rel);
        let (own, own_counts) = run(&path, None);
        let first = std::fs::read(&path).expect("read test log");
        let first_line = first.split(|b| *b == b'\n').next().expect("a line");
        let probe = pipeline();
        let stream: Arc<str> = Arc::from("probe");
        let mut work = probe
            .prefilter()
            .stream_work(&message(&stream, 1, first_line))
            .expect("a pipeline with detectors decodes syslog on the sources' threads");
        let (theirs, their_counts) = run(&path, Some(&mut work));
        assert_eq!(own_counts, their_counts, "{rel}");
        assert_eq!(own, theirs, "{rel}");
        behaviour += own.iter().filter(|f| !f.contains("\"ioc\"")).count();
    }
    assert!(behaviour > 0, "the logs make behaviour findings to compare");
}

/// The pipeline takes the answer decoded on the source's thread and does
/// not decode the record again: here the answer is "skip" (it was made
/// for a comment line) while the record itself is a login from a listed
/// address, which the pipeline's own decoding would report.
#[test]
fn the_pipeline_takes_the_decoding_done_on_the_sources_thread() {
    let stream: Arc<str> = Arc::from("syslog-tcp 127.0.0.1:601 from 127.0.0.1:40001");
    let login = format!(
        "2021-03-01T10:00:00Z srv sshd[1]: Failed password for root from {} port 4000 ssh2",
        support::RELAY
    );
    let mut own = pipeline();
    own.handle(message(&stream, 1, login.as_bytes()), Instant::now());
    assert_eq!(own.stats().parsed, 1);
    assert_eq!(
        own.take_output().findings.len(),
        1,
        "its own decoding finds it"
    );

    let mut p = pipeline();
    let mut work = p
        .prefilter()
        .stream_work(&message(&stream, 1, login.as_bytes()))
        .expect("stream work");
    let mut rec = message(&stream, 1, login.as_bytes());
    let mut comment = message(&stream, 1, b"# a comment");
    work.work(&mut comment);
    rec.prework = comment.prework;
    p.handle(rec, Instant::now());
    assert_eq!(p.stats().parsed, 0, "the record was not decoded again");
    assert!(p.take_output().findings.is_empty());
}

/// Only syslog messages of a pipeline that decodes every record get a
/// decoder on their source's thread: an indicators-only pipeline decodes
/// only the records whose raw text may match, and text lines wait for
/// their stream's format to be detected.
#[test]
fn only_syslog_streams_of_a_pipeline_with_detectors_decode_on_their_thread() {
    let stream: Arc<str> = Arc::from("s");
    let line =
        b"2021-03-01T10:00:00Z srv sshd[1]: Failed password for root from 192.0.2.1 port 4000 ssh2";
    let full = pipeline();
    assert!(
        full.prefilter()
            .stream_work(&message(&stream, 1, line))
            .is_some()
    );
    let mut text = message(&stream, 1, line);
    text.payload = Payload::Line;
    assert!(full.prefilter().stream_work(&text).is_none());
    let options = EngineOptions {
        behaviour: None,
        ..support::engine_options()
    };
    let engine = Engine::new(support::ioc_of(support::RELAY), options).expect("engine");
    let indicators_only = LivePipeline::new(engine, LiveOptions::default()).expect("pipeline");
    assert!(
        indicators_only
            .prefilter()
            .stream_work(&message(&stream, 1, line))
            .is_none()
    );
}
