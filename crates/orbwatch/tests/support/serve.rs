//! Starting the `orbwatch` binary's `serve` for a test, shared by the
//! test files that speak to it over HTTP (included with `#[path]`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The repository's root, where the bundled examples are.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Run `orbwatch --db DB ARGS…` from the repository's root.
pub fn orbwatch(db: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_orbwatch"))
        .arg("--db")
        .arg(db)
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap()
}

/// Start `orbwatch serve` on the store with the config file, on
/// 127.0.0.1 with an ephemeral port, and read the URL it bound from its
/// stderr (`http://127.0.0.1:PORT/`, as it prints it). Its stderr keeps
/// being drained (and shown, prefixed) so that it never blocks on it.
pub fn serve(db: &Path, config: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_orbwatch"))
        .arg("--db")
        .arg(db)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let Some(stderr) = child.stderr.take() else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("no stderr from serve");
    };
    let mut err = BufReader::new(stderr);
    let mut line = String::new();
    loop {
        line.clear();
        if err.read_line(&mut line).unwrap_or(0) == 0 {
            let status = child.wait();
            panic!("serve exited early: {status:?}");
        }
        if let Some(url) = line.trim().split(" on ").nth(1)
            && url.starts_with("http://")
        {
            let url = url.to_string();
            std::thread::spawn(move || {
                let mut rest = String::new();
                while err.read_line(&mut rest).unwrap_or(0) > 0 {
                    eprint!("serve: {rest}");
                    rest.clear();
                }
            });
            return (child, url);
        }
    }
}
