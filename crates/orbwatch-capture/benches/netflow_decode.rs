//! NetFlow decoding throughput, in flow records per second (target: at
//! least 1,000,000/s). Each iteration feeds a stream of real export
//! datagrams from tests/data/netflow to one decoder: v5 (30 records per
//! datagram, MikroTik), v9 (Ubiquiti EdgeRouter data sets after their
//! template) and IPFIX (OpenBSD pflow), each repeated to make a batch.
//! The sink counts events; evidence lines are not rendered (they are only
//! rendered for the records shown in findings).

use std::hint::black_box;
use std::net::IpAddr;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use orbwatch_capture::Coverage;
use orbwatch_capture::netflow::NetflowDecoder;

fn load(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/netflow")
        .join(name);
    std::fs::read(p).expect("tests/data/netflow is part of the repository")
}

/// Decode `templates` once, then `data` `reps` times; records decoded.
fn run(templates: &[Vec<u8>], data: &[Vec<u8>], reps: usize) -> u64 {
    let mut dec = NetflowDecoder::new();
    let mut cov = Coverage::new("netflow");
    let exporter = IpAddr::from([192, 0, 2, 1]);
    let mut n = 0u64;
    for t in templates {
        dec.datagram(t, exporter, 0, 0, &mut cov, &mut |_| n += 1);
    }
    for _ in 0..reps {
        for d in data {
            dec.datagram(d, exporter, 0, 0, &mut cov, &mut |e| {
                black_box(&e);
                n += 1;
            });
        }
    }
    n
}

/// A benchmark case: name, template datagrams, data datagrams.
type Case = (&'static str, Vec<Vec<u8>>, Vec<Vec<u8>>);

fn bench(c: &mut Criterion) {
    let cases: Vec<Case> = vec![
        ("v5", vec![], vec![load("netflow5_test_microtik.dat")]),
        (
            "v9",
            vec![load("netflow9_test_ubnt_edgerouter_tpl.dat")],
            vec![
                load("netflow9_test_ubnt_edgerouter_data1024.dat"),
                load("netflow9_test_ubnt_edgerouter_data1025.dat"),
            ],
        ),
        (
            "ipfix",
            vec![load("ipfix_test_openbsd_pflow_tpl.dat")],
            vec![load("ipfix_test_openbsd_pflow_data.dat")],
        ),
    ];
    let mut g = c.benchmark_group("netflow_decode");
    for (name, tpl, data) in &cases {
        let reps = 200;
        let records = run(tpl, data, reps) - run(tpl, data, 0);
        g.throughput(Throughput::Elements(records));
        g.bench_function(*name, |b| b.iter(|| run(tpl, data, reps)));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
