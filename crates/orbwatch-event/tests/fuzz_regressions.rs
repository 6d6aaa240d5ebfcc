//! Inputs that made a decoder panic under `cargo fuzz`, kept so the fix
//! stays fixed. Every file in `tests/fuzz_regressions/` is fed, line by
//! line, to every decoder.

use orbwatch_event::decoders::{DecoderConfig, REGISTRY};

#[test]
fn fuzz_crashes_stay_fixed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        for info in REGISTRY {
            let cfg = DecoderConfig {
                year: Some(2021),
                map: vec![("src_ip".into(), "src".into())],
                ..Default::default()
            };
            let mut d = (info.make)(&cfg);
            for line in data.split(|b| *b == b'\n') {
                let _ = d.decode(line);
                let _ = d.time_of(line);
            }
        }
        n += 1;
    }
    assert!(n >= 2);
}
