//! Against a real broker (tansu on loopback, see `test_broker`): records
//! produced to a multi-partition topic arrive as live records with
//! Kafka checkpoints, shippers' JSON is unwrapped, and committed offsets
//! are the ones the group reads back.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use orbwatch_kafka::test_broker::TestBroker;
use orbwatch_kafka::{ConsumerSettings, KafkaSource, OffsetTracker, TopicPartition};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

fn produce(bootstrap: &str, topic: &str, records: &[(Option<&str>, Vec<u8>)]) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("producer");
    for (key, value) in records {
        let mut r = BaseRecord::<str, [u8]>::to(topic).payload(value.as_slice());
        if let Some(k) = key {
            r = r.key(*k);
        }
        p.send(r).map_err(|(e, _)| e).expect("send");
    }
    p.flush(Duration::from_secs(30)).expect("flush");
}

fn committed(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = c
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    got.elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

fn partition_of(r: &orbwatch_live::LiveRecord) -> i32 {
    let cp = r.checkpoint.as_ref().expect("cp");
    orbwatch_kafka::parse_identity(&cp.identity)
        .expect("kafka identity")
        .partition
}

#[test]
fn records_arrive_with_checkpoints_and_commits_stick() {
    let Some(broker) = TestBroker::start() else {
        return;
    };
    let bootstrap = broker.bootstrap();
    broker.create_topic("raw.logs", 3);
    // 3 keys (hosts): each key's records land in one partition, in
    // order; every tenth record is Filebeat-style JSON.
    let mut recs = Vec::new();
    for i in 0..30 {
        let key = ["fw1", "fw2", "fw3"][i % 3];
        let line = format!(
            "Jan 31 16:32:{:02} {key} sshd[9]: Failed password for root from 203.0.113.{i} port 22 ssh2",
            i % 60
        );
        let value = if i % 10 == 0 {
            serde_json::to_vec(&serde_json::json!({"@timestamp": "x", "message": line}))
                .expect("json")
        } else {
            line.into_bytes()
        };
        recs.push((Some(key), value));
    }
    produce(&bootstrap, "raw.logs", &recs);

    let (tx, rx) = orbwatch_live::channel(1000);
    let src = KafkaSource::spawn(
        ConsumerSettings {
            brokers: bootstrap.clone(),
            group: "g1".into(),
            topics: vec!["raw.logs".into()],
            extra: vec![],
            start_offsets: None,
            payload_as_is: false,
        },
        tx,
    )
    .expect("consumer");
    let mut got = Vec::new();
    // The first poll after joining a group can take ~20 s with tansu:
    // wait for the records, not a fixed time.
    let deadline = Instant::now() + Duration::from_secs(90);
    while got.len() < 30 && Instant::now() < deadline {
        if let Ok(r) = rx.recv_timeout(Duration::from_millis(200)) {
            got.push(r);
        }
    }
    assert_eq!(got.len(), 30, "broker log: {}", broker.log_text());
    assert_eq!(src.assigned().len(), 3);
    assert_eq!(src.stats().snapshot().records, 30);
    for r in &got {
        let text = String::from_utf8_lossy(&r.bytes);
        assert!(text.starts_with("Jan 31 16:32:"), "unwrapped: {text}");
        assert!(r.stream.starts_with("kafka raw.logs/"), "{}", r.stream);
        assert!(r.stream.contains(" key fw"), "{}", r.stream);
        let cp = r.checkpoint.as_ref().expect("checkpoint");
        assert_eq!(cp.position, r.offset + 1);
    }
    // Each key's records are in one partition, in order.
    let mut per_stream: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in &got {
        per_stream
            .entry(r.stream.to_string())
            .or_default()
            .push(r.offset);
    }
    assert_eq!(per_stream.len(), 3);
    for offsets in per_stream.values() {
        assert_eq!(offsets.len(), 10);
        assert!(offsets.windows(2).all(|w| w[0] < w[1]));
    }
    // Commit only what was "decoded": every record but each stream's
    // last. Two keys may share a partition: its commit stops at the
    // first record not decoded, whichever stream it belongs to.
    let mut tracker = OffsetTracker::new();
    for r in &got {
        tracker.entered(r.checkpoint.as_ref().expect("cp"));
    }
    let decoded: Vec<_> = got
        .iter()
        .filter(|r| !per_stream[&r.stream.to_string()].ends_with(&[r.offset]))
        .filter_map(|r| r.checkpoint.clone())
        .collect();
    tracker.decoded(&decoded);
    let mut expected: BTreeMap<i32, i64> = BTreeMap::new();
    for r in &got {
        let p = partition_of(r);
        if per_stream[&r.stream.to_string()].ends_with(&[r.offset]) {
            let e = expected.entry(p).or_insert(i64::MAX);
            *e = (*e).min(r.offset as i64);
        }
    }
    let offsets = tracker.take_committable();
    let by_partition: BTreeMap<i32, i64> =
        offsets.iter().map(|(tp, o)| (tp.partition, *o)).collect();
    assert_eq!(by_partition, expected);
    let n = offsets.len();
    assert_eq!(src.commit(offsets).expect("commit"), n);
    // A partition not ours is not committed.
    let foreign = BTreeMap::from([(
        TopicPartition {
            topic: "raw.logs".into(),
            partition: 7,
        },
        1,
    )]);
    assert_eq!(src.commit(foreign).expect("commit"), 0);
    src.close();
    assert_eq!(committed(&bootstrap, "g1", "raw.logs", 3), expected);
}
