//! `orbwatch serve --findings-topic`: the findings workers write to the
//! findings topic are kept in the store, and `findings` (the report, the
//! API, triage) reads them as any hunt's. Against a real broker (tansu on
//! loopback, see `orbwatch_kafka::test_broker`; skipped when it is not
//! installed, failed with ORBWATCH_REQUIRE_TOOLS=1).
//!
//! The findings are the ones `hunt` gives on the bundled sample logs
//! (CERT-FR's APT31 relays in sshd lines), written as workers write them:
//! JSON, keyed by finding id, into a 3-partition topic.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use orbwatch_kafka::test_broker::TestBroker;

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/store.rs"]
mod store;
use daemon::{Reap, sigterm, wait_for};

const TOPIC: &str = "orbwatch.findings";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The findings of `hunt` on the sample logs, as JSON.
fn sample_findings(dir: &Path) -> Vec<serde_json::Value> {
    let out = dir.join("hunt.jsonl");
    let st = Command::new(env!("CARGO_BIN_EXE_orbwatch"))
        .current_dir(root())
        .args(["hunt", "--year", "2021", "--timezone", "UTC", "--feed"])
        .arg("examples/feeds/CERTFR-2021-IOC-003-IOC.csv")
        .args(["--format", "jsonl", "-o"])
        .arg(&out)
        .arg("examples/logs")
        .env("ORBWATCH_DB", dir.join("hunt.db"))
        .stdout(Stdio::null())
        .status()
        .expect("hunt");
    assert!(st.success());
    std::fs::read_to_string(&out)
        .expect("hunt output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("finding json"))
        .collect()
}

fn keyed(findings: &[serde_json::Value]) -> Vec<(Option<String>, Vec<u8>)> {
    findings
        .iter()
        .map(|f| {
            (
                Some(f["id"].as_str().expect("id").to_string()),
                serde_json::to_vec(f).expect("json"),
            )
        })
        .collect()
}

fn serve(broker: &TestBroker, db: &Path, log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_orbwatch"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--findings-topic",
            TOPIC,
        ])
        .args(["--brokers", &broker.bootstrap()])
        .arg("--db")
        .arg(db)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log"))
        .spawn()
        .expect("serve")
}

/// (run, id) -> count of every finding in the store.
fn stored(db: &Path) -> BTreeMap<(i64, String), u64> {
    store::findings_where(db, "1")
        .into_iter()
        .map(|(run, f)| {
            let id = f["id"].as_str().expect("id").to_string();
            ((run, id), f["count"].as_u64().expect("count"))
        })
        .collect()
}

/// The offsets the store keeps for the topic (partition -> next offset).
fn kept_offsets(db: &Path) -> BTreeMap<i32, i64> {
    store::kept_offsets(db, &format!("kafka-findings:{TOPIC}:"))
}

#[test]
fn serve_keeps_the_findings_topic_in_the_store_across_a_kill() {
    let Some(broker) = TestBroker::start() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let mut findings = sample_findings(tmp.path());
    assert_eq!(findings.len(), 4, "the README's sample gives 4 findings");
    broker.create_topic(TOPIC, 3);
    let mut records = keyed(&findings);
    // What a worker never writes, and a tombstone: the first is skipped
    // and counted, neither stops the intake.
    records.push((Some("junk".into()), b"{\"not\": \"a finding\"}".to_vec()));
    let mut ends = broker.produce(TOPIC, &records);

    let db = tmp.path().join("orbwatch.db");
    let log = tmp.path().join("serve.log");
    let mut s = Reap(Some(serve(&broker, &db, &log)));
    let want: BTreeMap<String, u64> = findings
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_string(),
                f["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let by_id = |db: &Path| -> BTreeMap<String, u64> {
        stored(db).into_iter().map(|((_, id), c)| (id, c)).collect()
    };
    wait_for(
        "serve to keep the 4 findings",
        Duration::from_secs(60),
        || by_id(&db) == want,
    );

    // A finding grows (the worker writes it again, same id): the store
    // keeps its latest state, in the same row.
    findings[0]["count"] = serde_json::json!(want[findings[0]["id"].as_str().unwrap()] + 5);
    ends.extend(broker.produce(TOPIC, &keyed(&findings[..1])));
    let grown = findings[0]["count"].as_u64().unwrap();
    let first_id = findings[0]["id"].as_str().unwrap().to_string();
    wait_for("the grown finding", Duration::from_secs(30), || {
        by_id(&db).get(&first_id) == Some(&grown)
    });
    wait_for("the offsets kept with it", Duration::from_secs(30), || {
        kept_offsets(&db) == ends
    });

    // kill -9, another update while serve is down, start again: it goes on
    // from the kept offsets, in the same run.
    let mut c = s.0.take().expect("serve");
    c.kill().expect("kill -9");
    c.wait().expect("reap");
    findings[1]["count"] = serde_json::json!(want[findings[1]["id"].as_str().unwrap()] + 7);
    ends.extend(broker.produce(TOPIC, &keyed(&findings[1..2])));
    let second_id = findings[1]["id"].as_str().unwrap().to_string();
    let second = findings[1]["count"].as_u64().unwrap();
    let log2 = tmp.path().join("serve2.log");
    let mut s = Reap(Some(serve(&broker, &db, &log2)));
    wait_for(
        "the update written while serve was down",
        Duration::from_secs(60),
        || by_id(&db).get(&second_id) == Some(&second),
    );
    wait_for(
        "the offsets after the restart",
        Duration::from_secs(30),
        || kept_offsets(&db) == ends,
    );
    let rows = stored(&db);
    assert_eq!(rows.len(), 4, "one row per finding, in one run: {rows:?}");
    let runs: std::collections::BTreeSet<i64> = rows.keys().map(|(r, _)| *r).collect();
    assert_eq!(runs.len(), 1, "the restart went on with the same run");

    // The findings command (what the report and API read) sees them.
    let out = Command::new(env!("CARGO_BIN_EXE_orbwatch"))
        .args(["findings", "--format", "jsonl", "--db"])
        .arg(&db)
        .output()
        .expect("findings");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: BTreeMap<String, u64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            (
                v["id"].as_str().unwrap().to_string(),
                v["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed.len(), 4);
    assert_eq!(listed[&first_id], grown);
    assert_eq!(listed[&second_id], second);

    let st = sigterm(s.0.as_mut().expect("serve"));
    assert!(
        st.success(),
        "{}",
        std::fs::read_to_string(&log2).unwrap_or_default()
    );
    let first_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        first_log.contains("not a finding, skipped"),
        "the malformed message is reported: {first_log}"
    );
    let second_log = std::fs::read_to_string(&log2).unwrap_or_default();
    assert!(
        second_log.contains("findings topic: 1 messages read"),
        "after the restart only the new message is read: {second_log}"
    );
}
