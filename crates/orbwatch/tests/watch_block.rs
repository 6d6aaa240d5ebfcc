//! `orbwatch watch --block` end to end, inside a network namespace the
//! test creates and always removes: a brute force arriving over syslog
//! (util-linux `logger` sending to `--syslog-tcp` inside the namespace)
//! puts its source into a real nftables set with a timeout while the
//! attack goes on; an internal source attacking the same way is never put
//! there; the set is read back with `nft`. Skipped (printing "skipped")
//! without `ip`, `nft` and `logger`, unless ORBWATCH_REQUIRE_TOOLS=1.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A network namespace, deleted on drop (also when the test panics).
struct Netns(String);

impl Netns {
    fn new() -> Option<Netns> {
        let require = std::env::var("ORBWATCH_REQUIRE_TOOLS").as_deref() == Ok("1");
        let name = format!("orbwatch-watch-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
        let nft = Command::new("nft").arg("--version").output().is_ok();
        if !ok || !nft {
            assert!(
                !require,
                "ip netns and nft are required (ORBWATCH_REQUIRE_TOOLS=1)"
            );
            if ok {
                let _ = Command::new("ip").args(["netns", "delete", &name]).status();
            }
            println!("skipped: needs root, `ip netns` and `nft`");
            return None;
        }
        // A new namespace's loopback is down: the daemon and logger talk
        // over it.
        let _ = Command::new("ip")
            .args(["netns", "exec", &name, "ip", "link", "set", "lo", "up"])
            .status();
        Some(Netns(name))
    }

    fn nft(&self, script: &str) {
        let mut c = Command::new("ip")
            .args(["netns", "exec", &self.0, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nft runs");
        c.stdin
            .take()
            .expect("stdin")
            .write_all(script.as_bytes())
            .expect("script");
        let out = c.wait_with_output().expect("nft ends");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn list_set(&self) -> String {
        let out = Command::new("ip")
            .args([
                "netns", "exec", &self.0, "nft", "list", "set", "inet", "filter", "orbwatch",
            ])
            .output()
            .expect("nft list runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

impl Netns {
    /// Send `messages` (sshd's text) with `logger` over TCP, octet-counted,
    /// to the daemon inside the namespace, as a host's syslog would.
    fn logger(&self, port: u16, messages: &str) {
        let mut c = Command::new("ip")
            .args(["netns", "exec", &self.0, "logger"])
            .args(["--server", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--tcp",
                "--octet-count",
                "--rfc3164",
                "-t",
                "sshd",
                "--id=4242",
            ])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("logger runs");
        c.stdin
            .take()
            .expect("stdin")
            .write_all(messages.as_bytes())
            .expect("messages");
        let out = c.wait_with_output().expect("logger ends");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn failed_login(n: u64, src: &str) -> String {
    format!(
        "Failed password for root from {src} port {} ssh2\n",
        20_000 + n
    )
}

#[test]
fn a_live_brute_force_is_blocked_in_nftables_and_an_internal_source_never() {
    let Some(ns) = Netns::new() else { return };
    ns.nft(
        "add table inet filter\nadd set inet filter orbwatch { type ipv4_addr; flags timeout; }\n",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(env!("CARGO_BIN_EXE_orbwatch"))
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
    while Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.0,
            "bash",
            "-c",
            "echo > /dev/tcp/127.0.0.1/5514",
        ])
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
    ns.logger(5514, &messages);
    let start = Instant::now();
    let mut set = String::new();
    while start.elapsed() < Duration::from_secs(20) {
        set = ns.list_set();
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
    assert!(ns.list_set().contains("185.220.101.47"));
}
