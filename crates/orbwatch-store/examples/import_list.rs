//! `feed add` of a plain list without the rest of the CLI, to profile the
//! import (`valgrind --tool=callgrind`) without building every crate: a
//! thread reads the list and hands indicators over in batches of 4096
//! through a queue of 4, as `orbwatch feed add` does, and the store writes
//! them with [`Store::import_indicators`].
//!
//! Run: `cargo run --release -p orbwatch-store --example import_list -- LIST STORE`
//! (prints the time, the report and the peak RSS).

use std::borrow::Cow;
use std::time::Instant;

use orbwatch_intel::{FeedFormat, ReadOptions};
use orbwatch_store::import::ImportEnd;
use orbwatch_store::{ImportOptions, Store};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, list, db] = &args[..] else {
        eprintln!("usage: import_list LIST STORE");
        std::process::exit(2);
    };
    let t = Instant::now();
    let opts = ReadOptions::new("bench");
    let mut store = Store::open(db).expect("open store");
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<orbwatch_intel::Indicator>>(4);
    let list_path = list.clone();
    let read_opts = opts.clone();
    let reader = std::thread::spawn(move || {
        let file = std::fs::File::open(&list_path).expect("open list");
        let input = std::io::BufReader::with_capacity(256 * 1024, file);
        let mut batch = Vec::with_capacity(4096);
        let mut rejected = Vec::new();
        orbwatch_intel::readers::plain::read_stream(
            input,
            &list_path,
            &read_opts,
            |ind| {
                batch.push(ind);
                if batch.len() == 4096 {
                    let _ = tx.send(std::mem::replace(&mut batch, Vec::with_capacity(4096)));
                }
            },
            |r| rejected.push(r),
        )
        .expect("read list");
        let _ = tx.send(batch);
        rejected
    });
    let report = store
        .import_indicators(
            "bench",
            FeedFormat::Plain,
            list,
            rx.into_iter().flatten().map(Ok::<_, String>),
            || ImportEnd {
                rejected: Cow::Owned(Vec::new()),
                skipped: Cow::Owned(Vec::new()),
                source_sha256: None,
            },
            &ImportOptions::default(),
        )
        .expect("import");
    let rejected = reader.join().expect("reader thread");
    let hwm = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:").map(|v| v.trim().to_string()))
        .unwrap_or_default();
    println!(
        "{:.2} s, loaded {}, added {}, duplicates {}, rejected {}, peak RSS {hwm}",
        t.elapsed().as_secs_f64(),
        report.loaded,
        report.added,
        report.duplicates,
        rejected.len()
    );
}
