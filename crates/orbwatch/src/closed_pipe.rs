//! A closed pipe ends orbwatch quietly with exit 0, as it ends ripgrep or
//! cargo: `orbwatch feed list | head -1`, `orbwatch hunt ... 2>&1 | head`.
//!
//! Rust ignores SIGPIPE, so a write to a closed pipe fails with `EPIPE`,
//! and `println!`/`eprintln!` turn that failure into a panic (exit 101
//! with a panic message). Two places turn it back into a quiet end:
//!
//! - an error that reaches `main` and was caused by a broken pipe
//!   ([`is_broken_pipe`]) ends with exit 0 and no message;
//! - the panic of a `println!`/`eprintln!` (or of a library that
//!   `expect`s its writes) on a broken pipe is recognised by the panic hook
//!   installed by [`install`] from its "Broken pipe" message, which prints
//!   nothing and records it; `main` catches the unwind and exits 0. Any
//!   other panic is reported as before.
//!
//! Why a hook rather than replacing every `println!`: the commands print
//! from many places, and new ones keep appearing; one guard at the top
//! covers them all. Code that must go on after a failed message (a hunt
//! still has to keep its findings) writes through [`note`], which never
//! panics.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Install the panic hook (once, at the start of `main`).
pub fn install() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info.payload_as_str().unwrap_or("");
        // `println!` ("failed printing to stdout: Broken pipe"), and
        // libraries that `expect` their writes (clap_complete) alike.
        if msg.contains("Broken pipe") {
            CLOSED.store(true, Ordering::SeqCst);
            return;
        }
        default(info);
    }));
}

/// Did a print panic on a closed pipe?
pub fn was_closed() -> bool {
    CLOSED.load(Ordering::SeqCst)
}

/// Was this error caused by writing to a closed pipe?
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        let kind = c
            .downcast_ref::<io::Error>()
            .map(io::Error::kind)
            .or_else(|| {
                // serde_json keeps the io::Error inside, out of the chain.
                c.downcast_ref::<serde_json::Error>()
                    .and_then(serde_json::Error::io_error_kind)
            });
        kind == Some(io::ErrorKind::BrokenPipe)
    })
}

/// A message on stderr that is dropped, rather than a panic, when stderr
/// is a closed pipe. Control characters (from file names or log text in
/// an error) are escaped.
pub fn note(args: std::fmt::Arguments<'_>) {
    let text = args.to_string();
    let text = orbwatch_report::terminal::escape_controls(&text);
    let mut err = io::stderr().lock();
    let _ = err
        .write_all(text.as_bytes())
        .and_then(|()| err.write_all(b"\n"));
}
