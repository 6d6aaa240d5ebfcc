//! Enrichment of residential and hosting address space, against MaxMind's
//! own test databases (tests/data/maxmind-test, MIT/Apache) and the JSON
//! they were written from: every network in the JSON must answer with the
//! connection type (or flags) it lists.

use std::net::IpAddr;
use std::path::PathBuf;

use orbwatch_detect::enrich::Enricher;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/maxmind-test")
        .join(name)
}

/// (first address of each network, its record) from a source-data JSON.
fn networks(json: &str) -> Vec<(IpAddr, serde_json::Value)> {
    let text = std::fs::read_to_string(data(json)).unwrap();
    let v: Vec<serde_json::Map<String, serde_json::Value>> = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for m in v {
        for (net, rec) in m {
            let addr = net.split('/').next().unwrap();
            // `::1.2.3.0` is how the JSON writes IPv4 networks.
            let ip: IpAddr = match addr.strip_prefix("::") {
                Some(v4) if v4.contains('.') => v4.parse().unwrap(),
                _ => addr.parse().unwrap(),
            };
            out.push((ip, rec));
        }
    }
    out
}

#[test]
fn connection_types_match_the_source_data() {
    let e = Enricher::open(&[data("GeoIP2-Connection-Type-Test.mmdb").as_path()]).unwrap();
    let nets = networks("GeoIP2-Connection-Type-Test.json");
    assert!(nets.len() >= 20);
    let mut residential = 0;
    for (ip, rec) in &nets {
        let want = rec["connection_type"].as_str().unwrap();
        let got = e.lookup(*ip).unwrap_or_else(|| panic!("{ip} not found"));
        assert_eq!(got.connection_type.as_deref(), Some(want), "{ip}");
        let res = matches!(want, "Cable/DSL" | "Cellular");
        assert_eq!(got.residential, res, "{ip}");
        residential += usize::from(res);
        if res {
            assert!(got.reason().unwrap().contains("residential"), "{ip}");
        }
    }
    println!("{} networks, {residential} residential", nets.len());
}

#[test]
fn hosting_and_residential_proxy_flags() {
    let e = Enricher::open(&[data("GeoIP2-Anonymous-IP-Test.mmdb").as_path()]).unwrap();
    for (ip, rec) in networks("GeoIP2-Anonymous-IP-Test.json") {
        let got = e.lookup(ip).unwrap_or_else(|| panic!("{ip} not found"));
        let flag = |k: &str| rec.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
        assert_eq!(got.hosting, flag("is_hosting_provider"), "{ip}");
        assert_eq!(got.residential, flag("is_residential_proxy"), "{ip}");
    }
}
