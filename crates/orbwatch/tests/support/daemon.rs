//! Waiting for, stopping and reaping the daemons a test starts
//! (`worker`, `watch`), shared by the test files that run them
//! (included with `#[path]`).

use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Poll `ok` every 100 ms until it holds; fail the test after `limit`,
/// saying what it waited for.
pub fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Send SIGTERM and wait (at most 60 s) for the daemon to exit; its
/// exit status.
pub fn sigterm(child: &mut Child) -> std::process::ExitStatus {
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s;
        }
        assert!(Instant::now() < end, "the daemon did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Kills a child on drop (a failed assertion must not leave a daemon).
pub struct Reap(pub Option<Child>);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
