//! `Decoder::time_of` is the fast path an IOC sweep uses for the time of
//! records it does not decode; it must agree with `decode`. Checked on every
//! bundled Zeek TSV and syslog file.

use std::path::Path;

use orbwatch_event::Decoded;
use orbwatch_event::decoders::{self, DecoderConfig};

fn check(path: &Path) -> (usize, usize) {
    let data = std::fs::read(path).unwrap();
    let lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    let head: Vec<&[u8]> = lines
        .iter()
        .take(50)
        .copied()
        .filter(|l| !l.is_empty())
        .collect();
    let info = decoders::detect(&head);
    let cfg = DecoderConfig {
        year: Some(2021),
        map: vec![],
        ..Default::default()
    };
    let mut full = (info.make)(&cfg);
    let mut fast = (info.make)(&cfg);
    let (mut compared, mut differ) = (0, 0);
    for l in &lines {
        let t_full = match full.decode(l) {
            Ok(Decoded::Event(e)) => e.time,
            _ => None,
        };
        let t_fast = fast.time_of(l);
        if t_full.is_some() {
            compared += 1;
            // Agreement to the second: coverage needs no more.
            if t_full.map(|t| t.as_second()) != t_fast.map(|t| t.as_second()) {
                differ += 1;
                eprintln!(
                    "{}: {:?} vs {:?}: {}",
                    path.display(),
                    t_full,
                    t_fast,
                    String::from_utf8_lossy(l)
                );
            }
        }
    }
    (compared, differ)
}

#[test]
fn time_of_agrees_with_decode_on_zeek_and_syslog() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data");
    let mut compared = 0;
    for dir in ["logs-a", "logs-syslog"] {
        let Ok(rd) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let zeek = name.starts_with("zat_") && !name.contains("json");
            let sshd = dir == "logs-syslog" && name.ends_with(".log");
            if zeek || sshd {
                let (c, d) = check(&p);
                assert_eq!(d, 0, "{name}: {d} of {c} times differ");
                compared += c;
            }
        }
    }
    assert!(compared > 1000, "only {compared} records compared");
}
