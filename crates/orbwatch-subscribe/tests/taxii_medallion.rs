//! TAXII 2.1 against OASIS's reference server, medallion (PyPI), started on
//! 127.0.0.1 with its memory backend. A subscription loads the collection
//! page by page; after objects are added on the server, an update asks
//! with `added_after` (seen in medallion's own request log) and gets only
//! the new ones.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jiff::SignedDuration;
use orbwatch_store::Store;
use orbwatch_subscribe::{HeaderSpec, Source, SubscriptionSpec, UpdateOutcome, subscribe, update};
use serde_json::{Value, json};

const COLLECTION: &str = "365fed99-08fa-fdcd-a1b3-fb247eb41d01";
const USER: &str = "orbwatch";
const PASSWORD: &str = "taxii-test-pw";

fn medallion_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import medallion"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("ORBWATCH_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "medallion (pip install medallion) not installed and ORBWATCH_REQUIRE_TOOLS=1"
        );
        eprintln!(
            "skipped: medallion is not installed (pip install medallion; .ci/install-tools does it)"
        );
    }
    ok
}

fn indicator(id: &str, ip: &str, created: &str) -> Value {
    json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": format!("indicator--{id}"),
        "created": created,
        "modified": created,
        "name": format!("ORB relay {ip}"),
        "pattern": format!("[ipv4-addr:value = '{ip}']"),
        "pattern_type": "stix",
        "valid_from": created,
        "labels": ["relay"]
    })
}

struct Medallion {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Drop for Medallion {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Medallion {
    fn start(dir: &Path, objects: &[Value]) -> Medallion {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let manifest: Vec<Value> = objects
            .iter()
            .map(|o| {
                json!({
                    "id": o["id"],
                    "date_added": "2024-03-01T10:00:00.000000Z",
                    "version": o["modified"],
                    "media_type": "application/stix+json;version=2.1"
                })
            })
            .collect();
        let data = json!({
            "/discovery": {
                "title": "orbwatch test TAXII server",
                "default": "http://127.0.0.1/api1/",
                "api_roots": ["http://127.0.0.1/api1/"]
            },
            "api1": {
                "information": {
                    "title": "ORB relays",
                    "versions": ["application/taxii+json;version=2.1"],
                    "max_content_length": 10485760
                },
                "status": [],
                "collections": [{
                    "id": COLLECTION,
                    "title": "Relay indicators",
                    "can_read": true,
                    "can_write": true,
                    "media_types": ["application/stix+json;version=2.1"],
                    "objects": objects,
                    "manifest": manifest
                }]
            }
        });
        let data = data.to_string().replace(
            "http://127.0.0.1/api1/",
            &format!("http://127.0.0.1:{port}/api1/"),
        );
        std::fs::write(dir.join("data.json"), data).unwrap();
        let config = json!({
            "backend": {
                "module": "medallion.backends.memory_backend",
                "module_class": "MemoryBackend",
                "filename": dir.join("data.json")
            },
            "users": {USER: PASSWORD},
            "taxii": {"max_page_size": 100}
        });
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
        let log = dir.join("medallion.log");
        let child = Command::new("python3")
            .args([
                "-m",
                "medallion.scripts.run",
                "--host",
                "127.0.0.1",
                "--port",
            ])
            .arg(port.to_string())
            .arg(dir.join("config.json"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("medallion.out")).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start medallion");
        let m = Medallion { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "medallion did not listen within 30 s: {}",
                std::fs::read_to_string(&m.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        m
    }

    fn basic(&self) -> String {
        // base64 of "orbwatch:taxii-test-pw", written out to keep the
        // test free of a base64 crate.
        let raw = format!("{USER}:{PASSWORD}");
        base64(raw.as_bytes())
    }

    /// Add objects through TAXII's own POST (as a producer would).
    fn add(&self, objects: &[Value]) {
        let url = format!(
            "http://127.0.0.1:{}/api1/collections/{COLLECTION}/objects/",
            self.port
        );
        let body = json!({"objects": objects}).to_string();
        let resp = ureq::post(&url)
            .header("Authorization", &format!("Basic {}", self.basic()))
            .header("Accept", "application/taxii+json;version=2.1")
            .header("Content-Type", "application/taxii+json;version=2.1")
            .send(body.as_bytes())
            .expect("POST objects to medallion");
        assert_eq!(resp.status().as_u16(), 202);
    }

    /// The object GETs medallion logged, with their query strings.
    fn object_requests(&self) -> Vec<String> {
        let mut s = String::new();
        std::fs::File::open(&self.log)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        s.lines()
            .filter(|l| l.contains("\"GET /api1/collections/") && l.contains("/objects/"))
            .map(str::to_string)
            .collect()
    }
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(T[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn taxii_update_fetches_only_what_was_added() {
    if !medallion_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let first = [
        indicator(
            "0b9f3a5e-1c0a-4c55-9a3e-4e0d8a9c0001",
            "203.0.113.7",
            "2024-03-01T09:00:00.000Z",
        ),
        indicator(
            "0b9f3a5e-1c0a-4c55-9a3e-4e0d8a9c0002",
            "198.51.100.23",
            "2024-03-01T09:00:00.000Z",
        ),
        indicator(
            "0b9f3a5e-1c0a-4c55-9a3e-4e0d8a9c0003",
            "192.0.2.200",
            "2024-03-01T09:00:00.000Z",
        ),
    ];
    let server = Medallion::start(dir.path(), &first);
    let mut store = Store::open(dir.path().join("s.db")).unwrap();
    let spec = SubscriptionSpec {
        headers: vec![HeaderSpec::parse("Authorization: Basic ${TAXII_BASIC}").unwrap()],
        page_limit: Some(2),
        retries: 0,
        ..Default::default()
    };
    let basic = server.basic();
    let env = move |k: &str| (k == "TAXII_BASIC").then(|| basic.clone());
    // The discovery URL plus the collection id lead to the same source.
    let found = orbwatch_subscribe::update::resolve_taxii_collection(
        &format!("http://127.0.0.1:{}/taxii2/", server.port),
        COLLECTION,
        &spec,
        &env,
    )
    .unwrap();
    let source = format!(
        "taxii2+http://127.0.0.1:{}/api1/collections/{COLLECTION}/",
        server.port
    );
    assert_eq!(found, Source::parse(&source).unwrap());
    let missing = orbwatch_subscribe::update::resolve_taxii_collection(
        &format!("http://127.0.0.1:{}/taxii2/", server.port),
        "no-such-collection",
        &spec,
        &env,
    )
    .unwrap_err();
    assert!(missing.contains("HTTP 404"), "{missing}");
    subscribe(
        &mut store,
        "taxii",
        &Source::parse(&source).unwrap(),
        &spec,
        SignedDuration::from_hours(720),
        SignedDuration::from_hours(168),
        None,
    )
    .unwrap();

    // First update: the whole collection, in two pages of at most 2.
    let out = update(&mut store, "taxii", &env).unwrap();
    let UpdateOutcome::Updated {
        report, requests, ..
    } = out
    else {
        panic!("first update: {out:?}")
    };
    assert_eq!(report.version, 1);
    assert_eq!(report.loaded, 3);
    assert_eq!(requests, 2, "two pages");
    let log = server.object_requests();
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(!log[0].contains("added_after"), "{}", log[0]);
    assert!(log[1].contains("next="), "{}", log[1]);
    let state = store.subscription("taxii").unwrap().unwrap().state;
    let cursor = state["taxii_added_after"].as_str().unwrap().to_string();
    assert!(cursor.starts_with("2024-03-01T10:00:00"), "{cursor}");

    // Two new objects on the server.
    server.add(&[
        indicator(
            "0b9f3a5e-1c0a-4c55-9a3e-4e0d8a9c0004",
            "203.0.113.99",
            "2024-03-05T09:00:00.000Z",
        ),
        indicator(
            "0b9f3a5e-1c0a-4c55-9a3e-4e0d8a9c0005",
            "198.51.100.77",
            "2024-03-05T09:00:00.000Z",
        ),
    ]);
    let out = update(&mut store, "taxii", &env).unwrap();
    let UpdateOutcome::Updated {
        report,
        detail,
        requests,
        ..
    } = out
    else {
        panic!("second update: {out:?}")
    };
    assert_eq!(report.version, 2);
    assert_eq!(report.added, 2);
    assert_eq!(report.removed, 0);
    assert_eq!(report.loaded, 5);
    assert_eq!(requests, 1);
    assert!(
        detail.starts_with("2 object(s) added after 2024-03-01T10:00:00"),
        "{detail}"
    );
    let log = server.object_requests();
    assert_eq!(log.len(), 3, "{log:?}");
    // medallion logged the cursor it was asked with.
    assert!(log[2].contains("added_after=2024-03-01T10"), "{}", log[2]);

    // Nothing new: no version.
    let out = update(&mut store, "taxii", &env).unwrap();
    assert!(
        matches!(
            out,
            UpdateOutcome::Unchanged {
                version: Some(2),
                ..
            }
        ),
        "{out:?}"
    );
    let log = server.object_requests();
    assert_eq!(log.len(), 4);
    assert!(
        !log[3].contains("added_after=2024-03-01T10"),
        "cursor moved: {}",
        log[3]
    );
    assert!(log[3].contains("added_after="), "{}", log[3]);
    assert_eq!(store.feed("taxii").unwrap().unwrap().total(), 5);

    // Wrong credentials: refused, named, version kept.
    let out = update(&mut store, "taxii", &|k: &str| {
        (k == "TAXII_BASIC").then(|| base64(b"orbwatch:wrong"))
    })
    .unwrap();
    let UpdateOutcome::Failed {
        error,
        kept_version,
        ..
    } = out
    else {
        panic!("{out:?}")
    };
    assert!(error.contains("HTTP 401"), "{error}");
    assert_eq!(kept_version, Some(2));
}
