//! `orbwatch feed publish NAME --brokers H:P`: the store's current
//! version of a feed onto the compacted feeds topic, from which every
//! `orbwatch worker --feeds-topic` swaps its index (see
//! [`orbwatch_engine::feed_wire`] for the records and why they are cut
//! into chunks).
//!
//! Order: the chunks, then the head that names them (a worker uses a
//! version only once its head has come, so a publish that dies half way
//! changes nothing), then tombstones for the chunks of the versions it
//! replaces, so the compacted topic keeps about one version per feed.

use std::ops::ControlFlow;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use orbwatch_engine::feed_wire::{FeedChunk, FeedEncoder, parse_chunk_key};
use orbwatch_kafka::KeyedProducer;

use crate::Cli;

/// How long one write to the topic may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Args, Debug)]
pub struct PublishArgs {
    /// The feed's name in the store (see `orbwatch feed list`).
    pub name: String,
    /// Kafka bootstrap brokers, `host:port,…`.
    #[arg(long, required = true)]
    pub brokers: String,
    /// The compacted feeds topic (1 partition; see the README).
    #[arg(long, default_value = "orbwatch.feeds")]
    pub topic: String,
    /// A librdkafka property, `key=value` (repeatable).
    #[arg(short = 'X', long = "kafka-config")]
    pub kafka_config: Vec<String>,
}

pub fn publish(cli: &Cli, args: &PublishArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let extra = crate::cmd_worker::parse_kafka_config(&args.kafka_config)?;
    let store = crate::cmd_feed::open_store(cli)?;
    let name = args.name.as_str();
    let Some(info) = store.feed(name)? else {
        bail!(
            "no feed named `{name}` in the store {}: see `orbwatch feed list`",
            store.path().display()
        );
    };
    let version = info.version;
    let mut encoder = FeedEncoder::new(name, version).map_err(anyhow::Error::msg)?;
    crate::cmd_worker::reach_brokers(&args.brokers, &extra)?;
    // The chunks of older versions now on the topic, to delete once the
    // new head is written (their keys are unique: compaction alone would
    // keep them for ever).
    let on_topic = orbwatch_kafka::topic_reader::read_to_end(
        &args.brokers,
        &args.topic,
        &extra,
        Duration::from_secs(2),
        Duration::from_secs(120),
    )
    .with_context(|| format!("reading the feeds topic {}", args.topic))?;
    let mut live_keys: std::collections::BTreeMap<Vec<u8>, bool> = Default::default();
    for r in on_topic {
        if let Some(k) = r.key {
            live_keys.insert(k, r.value.is_some());
        }
    }
    let old_chunks: Vec<Vec<u8>> = live_keys
        .into_iter()
        .filter(|(k, live)| {
            *live
                && std::str::from_utf8(k)
                    .ok()
                    .and_then(parse_chunk_key)
                    .is_some_and(|(n, v, _)| n == name && v < version)
        })
        .map(|(k, _)| k)
        .collect();

    let mut producer = KeyedProducer::new(&args.brokers, &args.topic, &extra)?;
    let mut chunks = 0u64;
    let mut bytes = 0u64;
    let mut write = |cs: Vec<FeedChunk>| -> Result<()> {
        let msgs: Vec<(String, Vec<u8>)> = cs.iter().map(|c| (c.key(), c.encode())).collect();
        chunks += msgs.len() as u64;
        bytes += msgs.iter().map(|(_, v)| v.len() as u64).sum::<u64>();
        producer
            .write(
                msgs.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())),
                "feed chunks",
                WRITE_TIMEOUT,
            )
            .with_context(|| {
                format!(
                    "writing feed `{name}` version {version} to {} (create it first: 1 partition, cleanup.policy=compact)",
                    args.topic
                )
            })?;
        Ok(())
    };
    // What `hunt` matches from the store: subscribed feeds' undated
    // entries with the windows their history gives.
    let mut failed: Option<anyhow::Error> = None;
    store.indicators_stream_with_history(Some(name), |s, _| {
        let res = encoder
            .push(&s.indicator)
            .map_err(anyhow::Error::msg)
            .and_then(&mut write);
        match res {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                failed = Some(e);
                ControlFlow::Break(())
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    let (last, head) = encoder.finish().map_err(anyhow::Error::msg)?;
    write(last)?;
    // A version read while another was being imported would mix both:
    // the version must not have moved under the read.
    let now = store.feed(name)?.map(|f| f.version);
    if now != Some(version) {
        bail!(
            "feed `{name}` changed while it was being published (version {version}, now {}): nothing was announced; run `feed publish {name}` again",
            now.map_or("removed".to_string(), |v| v.to_string())
        );
    }
    let head_bytes = head.encode();
    producer
        .write(
            [(head.key().as_bytes(), head_bytes.as_slice())],
            "the feed head",
            WRITE_TIMEOUT,
        )
        .with_context(|| format!("writing the head of feed `{name}` to {}", args.topic))?;
    let deleted = producer
        .write_or_delete(
            old_chunks.iter().map(|k| (k.as_slice(), None)),
            "tombstones of older chunks",
            WRITE_TIMEOUT,
        )
        .unwrap_or_else(|e| {
            tracing::warn!(
                "feed `{name}` version {version} is published, but the older versions' chunks were not all deleted ({e}); the next publish tries again"
            );
            0
        });
    println!(
        "published feed `{name}` version {version}: {} indicators in {chunks} chunks ({bytes} bytes) to {} on {}; deleted {deleted} chunks of older versions; {:.2} s",
        head.indicators,
        args.topic,
        args.brokers,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
