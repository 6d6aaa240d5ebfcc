//! Print the events and coverage of a capture, NetFlow or EVTX file: a
//! debugging aid, and the reader used by `bench/`.
use std::io::BufReader;

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: capture_dump FILE [--quiet]");
        std::process::exit(2);
    };
    let quiet = std::env::args().any(|a| a == "--quiet");
    let f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(2);
        }
    };
    let mut n = 0u64;
    let cov = orbwatch_capture::read_any(BufReader::new(f), &Default::default(), &mut |e| {
        n += 1;
        if !quiet {
            println!("{}\t{}\t{}", e.record, e.offset, e.raw());
        }
    });
    eprintln!("{n} events; {cov:?}");
}
