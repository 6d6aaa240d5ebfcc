//! Report sinks on a large hunt: 10,000 findings (90% IOC matches over
//! 2,000 indicators and 300 internal hosts, 10% behaviour findings), with a
//! coverage of 200 inputs. Measures the HTML page, the STIX bundle, the
//! MISP event and sightings, and the CSV, each built and serialised.
//!
//! Run: `cargo bench -p orbwatch-report --bench report -- --sample-size 10`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use orbwatch_detect::{Coverage, Finding, InputCoverage};
use orbwatch_report::{ReportFinding, ReportInput};

fn finding(i: usize) -> Finding {
    let day = 1 + (i % 180) as i64;
    let t = jiff::Timestamp::from_second(1_609_459_200 + day * 86_400 + (i as i64 % 3600))
        .expect("valid time");
    let t2 = t
        .checked_add(jiff::SignedDuration::from_secs(600))
        .expect("valid");
    let ind = format!("203.0.{}.{}", (i % 2000) / 250, i % 250);
    let host = format!("10.0.{}.{}", (i % 300) / 250, i % 250);
    let v = if i % 10 == 9 {
        serde_json::json!({
            "id": format!("b{i:015}"), "kind": "brute_force", "first_seen": t, "last_seen": t2,
            "count": 40, "src_ip": ind, "dst_ip": host, "severity": "high", "score": 70,
            "reasons": ["40 failed logins in 10 minutes"], "targets": [format!("{host}:22")],
            "evidence": [], "evidence_total": 40
        })
    } else {
        serde_json::json!({
            "id": format!("{i:016x}"), "kind": "ioc_match", "first_seen": t, "last_seen": t2,
            "count": 1 + i % 7, "src_ip": ind, "dst_ip": host, "indicator": ind,
            "indicator_type": "ipv4", "feed": if i.is_multiple_of(3) { "certfr" } else { "stix-feed" },
            "direction": "inbound", "in_validity_window": !i.is_multiple_of(4), "confidence": 80,
            "valid_from": null, "valid_until": null, "matched_value": ind,
            "matched_field": "src_ip", "peer": host,
            "evidence": (0..3).map(|k| serde_json::json!({
                "file": "fw.log", "line": i * 3 + k, "format": "netfilter", "time": t,
                "raw": format!("Jan  1 00:00:00 fw kernel: IN=eth0 SRC={ind} DST={host} PROTO=TCP DPT=22 <x>")
            })).collect::<Vec<_>>(),
            "evidence_total": 3
        })
    };
    serde_json::from_value(v).expect("a finding")
}

fn input() -> ReportInput {
    let inputs = (0..200)
        .map(|k| {
            let a = jiff::Timestamp::from_second(1_609_459_200 + k * 86_400).expect("valid");
            InputCoverage {
                format: if k % 2 == 0 { "netfilter" } else { "syslog" }.into(),
                records: 100_000,
                first_time: Some(a),
                last_time: a.checked_add(jiff::SignedDuration::from_hours(23)).ok(),
                ..InputCoverage::new(format!("logs/{k}.log"))
            }
        })
        .collect();
    ReportInput {
        findings: (0..10_000)
            .map(|i| ReportFinding {
                finding: finding(i),
                triage: None,
            })
            .collect(),
        include_dismissed: false,
        include_internal: false,
        coverage: Some(Coverage {
            inputs,
            ..Default::default()
        }),
        org: "bench".into(),
        generated: jiff::Timestamp::from_second(1_630_000_000).expect("valid"),
        source: "bench".into(),
        routers: Vec::new(),
    }
}

fn sinks(c: &mut Criterion) {
    let input = input();
    let mut g = c.benchmark_group("report_10k_findings");
    g.bench_function("html", |b| {
        b.iter(|| black_box(orbwatch_report::html::render(&input)).len())
    });
    g.bench_function("stix", |b| {
        b.iter(|| {
            serde_json::to_vec_pretty(&orbwatch_report::stix::bundle(&input))
                .expect("serialise")
                .len()
        })
    });
    g.bench_function("misp_event", |b| {
        b.iter(|| {
            serde_json::to_vec_pretty(&orbwatch_report::misp::event(&input))
                .expect("serialise")
                .len()
        })
    });
    g.bench_function("misp_sightings", |b| {
        b.iter(|| {
            serde_json::to_vec(&orbwatch_report::misp::sightings(&input))
                .expect("serialise")
                .len()
        })
    });
    g.bench_function("csv", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            orbwatch_report::write_report_csv(input.exported(), &mut out).expect("csv");
            out.len()
        })
    });
    g.finish();
}

criterion_group!(benches, sinks);
criterion_main!(benches);
