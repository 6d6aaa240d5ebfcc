//! `orbwatch watch --block` end to end, inside a network namespace the
//! test creates and always removes: a brute force arriving over syslog
//! (util-linux `logger` sending to `--syslog-tcp` inside the namespace)
//! puts its source into a real nftables set with a timeout while the
//! attack goes on; an internal source attacking the same way is never put
//! there; the set is read back with `nft`. Skipped (printing "skipped")
//! without `ip`, `nft` and `logger`, unless ORBWATCH_REQUIRE_TOOLS=1.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use orbwatch_testns::TestNetns;

/// A namespace for the test, if `ip netns` and `nft` are there.
fn netns() -> Option<TestNetns> {
    if Command::new("nft").arg("--version").output().is_err() {
        assert!(
            std::env::var("ORBWATCH_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "nft is required (ORBWATCH_REQUIRE_TOOLS=1)"
        );
        println!("skipped: needs `nft`");
        return None;
    }
    TestNetns::new("watch-block")
}

/// Load an nft script inside `ns`.
fn nft(ns: &TestNetns, script: &str) {
    let out = ns
        .output("nft", &["-f", "-"], Some(script.as_bytes()))
        .expect("nft runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The set the daemon blocks into, as `nft list set` prints it.
fn list_set(ns: &TestNetns) -> String {
    let out = ns
        .output("nft", &["list", "set", "inet", "filter", "orbwatch"], None)
        .expect("nft list runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Send `messages` (sshd's text) with `logger` over TCP, octet-counted,
/// to the daemon inside the namespace, as a host's syslog would.
fn logger(ns: &TestNetns, port: u16, messages: &str) {
    let port = port.to_string();
    let out = ns
        .output(
            "logger",
            &[
                "--server",
                "127.0.0.1",
                "--port",
                &port,
                "--tcp",
                "--octet-count",
                "--rfc3164",
                "-t",
                "sshd",
                "--id=4242",
            ],
            Some(messages.as_bytes()),
        )
        .expect("logger runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn failed_login(n: u64, src: &str) -> String {
    format!(
        "Failed password for root from {src} port {} ssh2\n",
        20_000 + n
    )
}

#[test]
fn a_live_brute_force_is_blocked_in_nftables_and_an_internal_source_never() {
    let Some(ns) = netns() else { return };
    nft(
        &ns,
        "add table inet filter\nadd set inet filter orbwatch { type ipv4_addr; flags timeout; }\n",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    let mut child = ns
        .command(env!("CARGO_BIN_EXE_orbwatch"))
        .arg("--db")
        .arg(&db)
        .args([
            "watch",
            "--syslog-tcp",
            "127.0.0.1:5514",
            "--timezone",
            "UTC",
        ])
        .args(["--allowed-lateness", "1s", "--commit-interval", "200ms"])
        .args([
            "--block",
            "nftables:inet:filter:orbwatch",
            "--block-timeout",
            "2h",
        ])
        .env("ORBWATCH_LOG", "info")
        .env_remove("ORBWATCH_DB")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("watch starts");
    // Listening once the namespace's port answers.
    let start = Instant::now();
    while ns
        .command("bash")
        .args(["-c", "echo > /dev/tcp/127.0.0.1/5514"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| !s.success())
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "watch never listened"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Two sources guess root's password, interleaved: a public address
    // and an internal one.
    let mut messages = String::new();
    for n in 0..120u64 {
        messages.push_str(&failed_login(n, "185.220.101.47"));
        messages.push_str(&failed_login(n, "10.1.2.3"));
    }
    logger(&ns, 5514, &messages);
    let start = Instant::now();
    let mut set = String::new();
    while start.elapsed() < Duration::from_secs(20) {
        set = list_set(&ns);
        if set.contains("185.220.101.47") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Blocked while the daemon runs (the attack has not gone idle), with
    // the timeout asked for.
    assert!(child.try_wait().expect("try_wait").is_none());
    assert!(set.contains("185.220.101.47 timeout 2h"), "{set}");
    assert!(!set.contains("10.1.2.3"), "{set}");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("watch ends");
    assert!(status.success());
    // Every decision is in the store: the block and the refusal.
    let conn = rusqlite::Connection::open(&db).expect("open store");
    let rows: Vec<(String, String)> = conn
        .prepare("SELECT address, action FROM blocks ORDER BY seq")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert!(
        rows.iter()
            .any(|(a, act)| a == "185.220.101.47" && act == "blocked"),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|(a, act)| a == "10.1.2.3" && act == "refused"),
        "{rows:?}"
    );
    assert!(list_set(&ns).contains("185.220.101.47"));
}
