//! Several programs opening one store at the same moment: a `worker --db`
//! pair started together, a `hunt --db` beside `serve`. Each must get the
//! store, whatever the others are doing to it (creating the file,
//! switching it to WAL, migrating its schema), and not fail with
//! "database is locked".

use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use orbwatch_store::Store;

/// Threads of one process, each with its own connection, released at once
/// by a barrier: the tightest race this test can make.
#[test]
fn connections_opening_a_new_store_at_once_all_get_it() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..40 {
        let path = dir.path().join(format!("round-{round}.db"));
        let openers = 8;
        let barrier = Arc::new(Barrier::new(openers));
        let handles: Vec<_> = (0..openers)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                let path = path.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    Store::open(&path).map(|_| ()).map_err(|e| e.to_string())
                })
            })
            .collect();
        for handle in handles {
            if let Err(e) = handle.join().unwrap() {
                panic!("round {round}: {e}");
            }
        }
    }
}

/// Set in a child of [`processes_opening_a_new_store_at_once_all_get_it`]:
/// the folder of the stores to open, and the wall-clock instant (ns since
/// the epoch) to open the first at, so the children start together.
const CHILD_DIR: &str = "ORBWATCH_TEST_CONCURRENT_OPEN_DIR";
const CHILD_START_NS: &str = "ORBWATCH_TEST_CONCURRENT_OPEN_START_NS";
/// How many new stores every child opens, one every [`ROUND_GAP`].
const ROUNDS: u32 = 25;
const ROUND_GAP: Duration = Duration::from_millis(40);

/// Separate processes, as two `orbwatch worker --db` started by one
/// systemd target are: file locks between processes, not connections.
#[test]
fn processes_opening_a_new_store_at_once_all_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let me = std::env::current_exe().unwrap();
    let start = SystemTime::now() + Duration::from_millis(500);
    let start_ns = start.duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let children: Vec<_> = (0..6)
        .map(|_| {
            Command::new(&me)
                .args(["--exact", "child_opens_the_stores", "--nocapture"])
                .env(CHILD_DIR, dir.path())
                .env(CHILD_START_NS, start_ns.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "a process could not open a store:\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains(&format!("opened {ROUNDS} stores")),
            "the child did not run: {stdout}"
        );
    }
    // Every store was left at this build's schema.
    for round in 0..ROUNDS {
        Store::open_read_only(dir.path().join(format!("round-{round}.db"))).unwrap();
    }
}

/// The child's side; does nothing when run as an ordinary test.
#[test]
fn child_opens_the_stores() {
    let (Ok(dir), Ok(start_ns)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_START_NS)) else {
        return;
    };
    let start = UNIX_EPOCH + Duration::from_nanos(start_ns.parse().unwrap());
    for round in 0..ROUNDS {
        let at = start + ROUND_GAP * round;
        // Sleep most of the way, then spin: a sleep wakes up to a
        // millisecond late, which spreads the children too far apart.
        if let Ok(wait) = at.duration_since(SystemTime::now()) {
            std::thread::sleep(wait.saturating_sub(Duration::from_millis(2)));
        }
        while SystemTime::now() < at {
            std::hint::spin_loop();
        }
        let path = std::path::Path::new(&dir).join(format!("round-{round}.db"));
        if let Err(e) = Store::open(&path) {
            panic!("round {round}: {e}");
        }
    }
    println!("opened {ROUNDS} stores");
}
