//! Network namespaces for orbwatch's tests.
//!
//! Tests that load real nftables sets and ipsets, or run the daemon with
//! `--block`, do it inside a namespace they make, so that nothing touches
//! the machine's own firewall. Each test file had its own small wrapper,
//! and each removed its namespace in `Drop` only: a test process killed
//! outright (`kill -9`, a CI run stopped at its time limit) left its
//! namespaces behind, with any daemon still running inside, for every
//! later run to trip over.
//!
//! Here a namespace is named `orbwatch-test-PID-N-TAG`, after the test
//! process that made it. [`TestNetns::new`] first removes the namespaces
//! of test processes that are gone ([`remove_stale`]), killing what still
//! runs inside them, and `Drop` removes the test's own, also when the test
//! panics. The routers lab, whose namespaces carry its own prefix, calls
//! [`remove_stale`] with that prefix.
//!
//! Making a namespace needs root. Without it [`TestNetns::new`] prints a
//! line starting `skipped:` and returns `None`, unless
//! `ORBWATCH_REQUIRE_TOOLS=1` (as in CI), where it panics instead: a test
//! that silently skips in CI would be a check that cannot fail.

use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The prefix of every namespace [`TestNetns`] makes.
pub const PREFIX: &str = "orbwatch-test-";

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A network namespace made for one test, deleted (with whatever still
/// runs inside) when dropped.
#[derive(Debug)]
pub struct TestNetns {
    name: String,
}

impl TestNetns {
    /// A new namespace, its loopback up. `tag` says which test made it
    /// (letters, digits and `-`). `None` after printing why when
    /// namespaces cannot be made here (not root, no `ip`); a panic instead
    /// with `ORBWATCH_REQUIRE_TOOLS=1`.
    pub fn new(tag: &str) -> Option<TestNetns> {
        remove_stale(PREFIX);
        let name = format!(
            "{PREFIX}{}-{}-{tag}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let made = Command::new("ip")
            .args(["netns", "add", &name])
            .stderr(Stdio::piped())
            .output();
        let why = match made {
            Ok(o) if o.status.success() => None,
            Ok(o) => Some(String::from_utf8_lossy(&o.stderr).trim().to_string()),
            Err(e) => Some(format!("cannot run `ip`: {e}")),
        };
        if let Some(why) = why {
            assert!(
                std::env::var("ORBWATCH_REQUIRE_TOOLS").as_deref() != Ok("1"),
                "cannot create network namespace {name} ({why}) and ORBWATCH_REQUIRE_TOOLS=1"
            );
            println!("skipped: cannot create a network namespace (needs root): {why}");
            return None;
        }
        let ns = TestNetns { name };
        // A new namespace's loopback is down; daemons under test listen
        // on it.
        let _ = ns
            .command("ip")
            .args(["link", "set", "lo", "up"])
            .stderr(Stdio::null())
            .status();
        Some(ns)
    }

    /// The namespace's name (for `ip netns exec` lines in messages).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `program` to be run inside the namespace (`ip netns exec NAME
    /// program`); add its arguments and run it as any `Command`.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// The words that put a command inside the namespace, for code that
    /// takes a wrapper (the bouncer's `wrapper`).
    pub fn wrapper(&self) -> Vec<String> {
        ["ip", "netns", "exec", &self.name]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// Run `program args` inside, with `stdin` written to it, and return
    /// what it printed and how it exited.
    pub fn output(
        &self,
        program: impl AsRef<OsStr>,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> std::io::Result<Output> {
        let mut child = self
            .command(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut pipe = child.stdin.take().expect("stdin is piped");
        // A program that exits without reading its input closes the pipe:
        // its exit status says what went wrong, not the broken pipe.
        let _ = pipe.write_all(stdin.unwrap_or_default());
        drop(pipe);
        child.wait_with_output()
    }

    /// The processes running inside now.
    pub fn pids(&self) -> Vec<u32> {
        namespace_pids(&self.name)
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        remove(&self.name);
    }
}

/// Remove the namespaces named `PREFIX` + `PID-…` whose process `PID` is
/// gone, killing what still runs inside each first. Namespaces of live
/// processes (this one, a test running beside it) are left alone.
pub fn remove_stale(prefix: &str) {
    let Ok(o) = Command::new("ip")
        .args(["netns", "list"])
        .stderr(Stdio::null())
        .output()
    else {
        return;
    };
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        // `ip netns list` prints "name" or "name (id: N)".
        let Some(ns) = line.split_whitespace().next() else {
            continue;
        };
        if owner(ns, prefix).is_some_and(|pid| !alive(pid)) {
            remove(ns);
        }
    }
}

/// The test process a namespace name of `prefix` names, if it names one.
fn owner(ns: &str, prefix: &str) -> Option<u32> {
    ns.strip_prefix(prefix)?.split('-').next()?.parse().ok()
}

fn alive(pid: u32) -> bool {
    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
}

/// Kill what runs inside `ns`, then delete it (which also deletes the
/// host end of any veth pair whose other end was inside).
fn remove(ns: &str) {
    for pid in namespace_pids(ns) {
        // SAFETY: kill has no memory preconditions; the pids are those
        // `ip` lists as running inside a namespace made for a test.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    let _ = Command::new("ip")
        .args(["netns", "delete", ns])
        .stderr(Stdio::null())
        .status();
}

/// The processes running inside namespace `ns`.
pub fn namespace_pids(ns: &str) -> Vec<u32> {
    Command::new("ip")
        .args(["netns", "pids", ns])
        .stderr(Stdio::null())
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(ns: &str) -> bool {
        let o = Command::new("ip").args(["netns", "list"]).output().unwrap();
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l.split_whitespace().next() == Some(ns))
    }

    #[test]
    fn owner_reads_the_pid_after_the_prefix_only() {
        assert_eq!(owner("orbwatch-test-123-0-nft", PREFIX), Some(123));
        assert_eq!(owner("owlab-77-3", "owlab-"), Some(77));
        assert_eq!(owner("orbwatch-test-x-0", PREFIX), None);
        assert_eq!(owner("other-123-0", PREFIX), None);
        assert_eq!(owner("owlab-77-3", PREFIX), None);
    }

    #[test]
    fn a_namespace_is_usable_and_gone_with_what_ran_inside_after_drop() {
        let Some(ns) = TestNetns::new("self") else {
            return;
        };
        let name = ns.name().to_string();
        assert!(name.starts_with(&format!("{PREFIX}{}-", std::process::id())));
        assert!(listed(&name));
        let o = ns
            .output("ip", &["-o", "link", "show", "lo"], None)
            .unwrap();
        assert!(o.status.success());
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("UP"),
            "loopback is up inside: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        let o = ns.output("cat", &[], Some(b"through stdin")).unwrap();
        assert_eq!(o.stdout, b"through stdin");
        let mut sleeper = ns.command("sleep").arg("600").spawn().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while ns.pids().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(ns.pids().len(), 1, "the sleeper runs inside");
        drop(ns);
        assert!(!listed(&name), "{name} is deleted");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let status = loop {
            if let Some(status) = sleeper.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = sleeper.kill();
                panic!("the process inside outlived its namespace");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert!(!status.success(), "the sleeper was killed: {status}");
    }

    #[test]
    fn the_namespaces_of_gone_test_processes_are_removed_and_others_kept() {
        let Some(mine) = TestNetns::new("kept") else {
            return;
        };
        // A process that has exited: its pid names a gone test.
        let mut gone = Command::new("true").spawn().unwrap();
        let gone_pid = gone.id();
        gone.wait().unwrap();
        let stale = format!("{PREFIX}{gone_pid}-0-stale");
        let made = Command::new("ip")
            .args(["netns", "add", &stale])
            .status()
            .unwrap();
        assert!(made.success());
        assert!(listed(&stale));
        remove_stale(PREFIX);
        assert!(!listed(&stale), "the gone process's namespace is removed");
        assert!(listed(mine.name()), "this process's namespace is kept");
    }
}
