//! Against a real broker (tansu on loopback, see `test_broker`): the
//! bounded replay of the re-hunt reads the records of a time window up
//! to given offsets, and the feeds topic's reader sees tombstones.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use orbwatch_kafka::replay::ReplayOptions;
use orbwatch_kafka::test_broker::TestBroker;
use orbwatch_kafka::{KeyedProducer, TopicPartition};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

/// `n` records `{label}-{p}-{i}` to partition `p` of `topic`, with the
/// Kafka timestamp `at_ms`.
fn produce_at(bootstrap: &str, topic: &str, p: i32, label: &str, n: usize, at_ms: i64) {
    let prod: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("producer");
    for i in 0..n {
        let value = format!("{label}-{p}-{i}");
        let r = BaseRecord::<str, str>::to(topic)
            .partition(p)
            .key("host")
            .payload(&value)
            .timestamp(at_ms);
        prod.send(r).map_err(|(e, _)| e).expect("send");
    }
    prod.flush(Duration::from_secs(30)).expect("flush");
}

fn tp(p: i32) -> TopicPartition {
    TopicPartition {
        topic: "raw".into(),
        partition: p,
    }
}

/// Two partitions, each with 10 records two hours old, 10 ten minutes
/// old and 5 just now (offsets 0-9, 10-19, 20-24). A replay of the last
/// hour up to offset 20 gives exactly the 10-minute-old ones, in order,
/// as live records of the partition's stream; a lower bound stops it
/// there; a partition with nothing in the window gives nothing.
#[test]
fn a_replay_reads_the_window_up_to_the_offsets_given() {
    let Some(broker) = TestBroker::start() else {
        return;
    };
    broker.create_topic("raw", 2);
    let now = jiff::Timestamp::now().as_millisecond();
    for p in 0..2 {
        produce_at(&broker.bootstrap(), "raw", p, "old", 10, now - 7_200_000);
        produce_at(&broker.bootstrap(), "raw", p, "new", 10, now - 600_000);
        produce_at(&broker.bootstrap(), "raw", p, "after", 5, now);
    }
    let since = jiff::Timestamp::from_millisecond(now - 3_600_000).expect("time");
    let stop = AtomicBool::new(false);
    let until: BTreeMap<TopicPartition, i64> = [(tp(0), 20), (tp(1), 20)].into();
    let bootstrap = broker.bootstrap();
    let options = ReplayOptions {
        brokers: &bootstrap,
        extra: &[],
        since,
        until: &until,
        stop: &stop,
        payload_as_is: false,
    };
    let mut got: Vec<(String, String)> = Vec::new();
    let r = orbwatch_kafka::replay::replay(&options, |rec| {
        got.push((
            rec.stream.to_string(),
            String::from_utf8_lossy(&rec.bytes).into_owned(),
        ))
    })
    .expect("replay");
    got.sort();
    let want: Vec<(String, String)> = (0..2)
        .flat_map(|p| {
            (0..10).map(move |i| (format!("kafka raw/{p} key host"), format!("new-{p}-{i}")))
        })
        .collect();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(got, want_sorted);
    assert_eq!(r.records, 20);
    assert!(r.short.is_empty(), "{r:?}");
    println!("offsetsForTimes gave {:?}", r.from);

    let until: BTreeMap<TopicPartition, i64> = [(tp(0), 15)].into();
    let mut got = Vec::new();
    let r = orbwatch_kafka::replay::replay(
        &ReplayOptions {
            until: &until,
            ..options
        },
        |rec| got.push(String::from_utf8_lossy(&rec.bytes).into_owned()),
    )
    .expect("replay");
    assert_eq!(
        got,
        (0..5).map(|i| format!("new-0-{i}")).collect::<Vec<_>>()
    );
    assert_eq!(r.records, 5);

    // Nothing in the window before offset 10.
    let until: BTreeMap<TopicPartition, i64> = [(tp(1), 10)].into();
    let r = orbwatch_kafka::replay::replay(
        &ReplayOptions {
            until: &until,
            ..options
        },
        |_| panic!("a record outside the window"),
    )
    .expect("replay");
    assert_eq!(r.records, 0);
}

/// The feeds topic's reader reads it whole from the beginning, outside
/// any group, tombstones (null values) included, as `feed publish`
/// writes them with `KeyedProducer::write_or_delete`.
#[test]
fn the_topic_reader_sees_values_and_tombstones() {
    let Some(broker) = TestBroker::start() else {
        return;
    };
    broker.create_topic("feeds", 1);
    let mut p = KeyedProducer::new(&broker.bootstrap(), "feeds", &[]).expect("producer");
    p.write_or_delete(
        [
            (&b"a/v1/c0"[..], Some(&b"chunk"[..])),
            (&b"a"[..], Some(&b"head"[..])),
            (&b"a/v1/c0"[..], None),
        ],
        "test records",
        Duration::from_secs(30),
    )
    .expect("write");
    let got = orbwatch_kafka::topic_reader::read_to_end(
        &broker.bootstrap(),
        "feeds",
        &[],
        Duration::from_secs(3),
        Duration::from_secs(60),
    )
    .expect("read");
    let got: Vec<(Vec<u8>, Option<Vec<u8>>)> = got
        .into_iter()
        .map(|r| (r.key.expect("key"), r.value))
        .collect();
    assert_eq!(
        got,
        vec![
            (b"a/v1/c0".to_vec(), Some(b"chunk".to_vec())),
            (b"a".to_vec(), Some(b"head".to_vec())),
            (b"a/v1/c0".to_vec(), None),
        ]
    );
    // The live reader gives the same, and goes on with what comes.
    let reader =
        orbwatch_kafka::TopicReader::spawn(&broker.bootstrap(), "feeds", &[]).expect("reader");
    let first: Vec<_> = (0..3)
        .map(|_| {
            reader
                .records
                .recv_timeout(Duration::from_secs(30))
                .expect("record")
        })
        .collect();
    assert_eq!(first[2].value, None);
    p.write(
        [(&b"b"[..], &b"later"[..])],
        "a later record",
        Duration::from_secs(30),
    )
    .expect("write");
    let later = reader
        .records
        .recv_timeout(Duration::from_secs(30))
        .expect("later record");
    assert_eq!(
        (later.key.as_deref(), later.value.as_deref()),
        (Some(&b"b"[..]), Some(&b"later"[..]))
    );
}
