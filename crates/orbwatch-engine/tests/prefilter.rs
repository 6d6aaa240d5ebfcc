//! The sources' threads test each record's raw addresses against the
//! indicators before queueing it (`LivePipeline::prefilter`), so that the
//! pipeline thread, which limits `watch`'s rate, does not. A feed reload
//! can come between a source's test and the pipeline: an answer given
//! against indicators replaced since must not be used.

use std::sync::Arc;
use std::time::Instant;

use orbwatch_engine::{Engine, EngineOptions, LiveOptions, LivePipeline};
use orbwatch_live::{LiveRecord, Payload, Prefiltered};

#[path = "support/stage2.rs"]
mod support;

/// An address the first indicators do not list and the reloaded ones do.
const NEW: &str = "198.51.100.23";

fn login_from(src: &str) -> Vec<u8> {
    format!("2021-03-01T10:00:00Z srv sshd[1]: Failed password for root from {src} port 4000 ssh2")
        .into_bytes()
}

fn record(bytes: Vec<u8>, prefiltered: Option<Prefiltered>) -> LiveRecord {
    LiveRecord {
        stream: Arc::from("syslog-tcp 127.0.0.1:601 from 127.0.0.1:5000"),
        number: 1,
        offset: 0,
        payload: Payload::Syslog,
        bytes,
        received: jiff::Timestamp::now(),
        checkpoint: None,
        prefiltered,
        prework: Default::default(),
    }
}

/// A pipeline matching indicators only (no behaviour detectors): a
/// record whose raw text names no listed address is then not decoded,
/// so the answer the pipeline takes decides whether it matches.
fn indicators_only() -> LivePipeline {
    let options = EngineOptions {
        year: Some(2021),
        threads: 1,
        behaviour: None,
        ..Default::default()
    };
    let engine = Engine::new(support::ioc_of(support::RELAY), options).expect("engine");
    LivePipeline::new(engine, LiveOptions::default()).expect("pipeline")
}

/// The indicator values of the IOC findings the pipeline has made.
fn matched(p: &mut LivePipeline) -> Vec<String> {
    p.take_output()
        .findings
        .into_iter()
        .filter_map(|f| f.ioc.map(|i| i.indicator))
        .collect()
}

#[test]
fn an_answer_given_before_a_reload_is_not_used_after_it() {
    let mut p = indicators_only();
    let prefilter = p.prefilter();
    let line = login_from(NEW);
    let before = prefilter
        .check(Payload::Syslog, &line)
        .expect("a text record");
    assert!(!before.may_match, "{NEW} is not listed yet");
    p.replace_indicators(support::ioc_of(NEW));
    let after = prefilter
        .check(Payload::Syslog, &line)
        .expect("a text record");
    assert!(after.may_match, "the prefilter follows the reload");
    assert_ne!(after.generation, before.generation);
    // The record reaches the pipeline with the answer its source's
    // thread gave before the reload: the pipeline tests it again.
    p.handle(record(line, Some(before)), Instant::now());
    assert_eq!(matched(&mut p), [NEW]);
}

/// Records tested on the sources' threads give the findings the
/// pipeline's own test gives, for a listed and an unlisted address.
#[test]
fn answers_of_the_current_indicators_give_the_pipelines_own_findings() {
    let mut with = LivePipeline::new(support::engine(), LiveOptions::default()).expect("pipeline");
    let mut without =
        LivePipeline::new(support::engine(), LiveOptions::default()).expect("pipeline");
    let prefilter = with.prefilter();
    for src in [support::RELAY, NEW] {
        let line = login_from(src);
        let given = prefilter
            .check(Payload::Syslog, &line)
            .expect("a text record");
        assert_eq!(given.may_match, src == support::RELAY, "{src}");
        with.handle(record(line.clone(), Some(given)), Instant::now());
        without.handle(record(line, None), Instant::now());
    }
    let found = matched(&mut with);
    assert_eq!(found, [support::RELAY]);
    assert_eq!(found, matched(&mut without));
}

/// The pipeline takes an answer of its current indicators as given: it
/// does not test the record again (that is the work it hands off).
#[test]
fn an_answer_of_the_current_indicators_is_taken_as_given() {
    let mut p = indicators_only();
    let line = login_from(support::RELAY);
    let given = p
        .prefilter()
        .check(Payload::Syslog, &line)
        .expect("a text record");
    assert!(given.may_match);
    let no = Prefiltered {
        may_match: false,
        ..given
    };
    p.handle(record(line.clone(), Some(no)), Instant::now());
    assert!(matched(&mut p).is_empty());
    p.handle(record(line, Some(given)), Instant::now());
    assert_eq!(matched(&mut p), [support::RELAY]);
}

#[test]
fn netflow_datagrams_are_left_to_the_pipeline() {
    let p = LivePipeline::new(support::engine(), LiveOptions::default()).expect("pipeline");
    let exporter = "127.0.0.1:2055".parse().expect("addr");
    assert_eq!(
        p.prefilter()
            .check(Payload::NetflowDatagram { exporter }, b"\x00\x05"),
        None
    );
}
