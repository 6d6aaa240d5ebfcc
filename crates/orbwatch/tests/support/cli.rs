//! Running the built `orbwatch` binary as a user would and reading what
//! it printed, shared by the command-line test files (included with
//! `#[path]`; each file uses what it needs).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// The binary, in UTC, with none of the environment that would point it
/// at the machine's own store or change its logging.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_orbwatch"));
    // Year-less syslog is read in the machine's zone; the tests' answers
    // are UTC.
    c.env("TZ", "UTC");
    c.env_remove("ORBWATCH_DB")
        .env_remove("ORBWATCH_LOG")
        .env_remove("XDG_DATA_HOME");
    c
}

/// `orbwatch --db DB ARGS…`, to its end.
pub fn run_with_db(db: &Path, args: &[&str]) -> Output {
    bin()
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .expect("run orbwatch")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Its standard output, after checking that it exited 0 (else the test
/// fails showing both outputs).
#[track_caller]
pub fn ok(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
    stdout(o)
}
