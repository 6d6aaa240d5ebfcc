//! A compiled engine written to a snapshot and read back answers every
//! lookup exactly as the original, and a damaged snapshot is an error,
//! never a panic.

use std::net::IpAddr;

use orbwatch_detect::{InternalNets, IocEngine};
use orbwatch_intel::value::parse_value;
use orbwatch_intel::{Indicator, MatchRef, Provenance};

fn ind(value: &str, feed: &str, from: Option<&str>, until: Option<&str>) -> Indicator {
    let mut i = Indicator::new(
        parse_value(value, None).expect("test value parses"),
        Provenance {
            feed: feed.into(),
            file: format!("{feed}.txt"),
            line: 1,
            record_id: value
                .starts_with("203.0.113.7")
                .then(|| "indicator--0b7a2c0e-0000-4000-8000-000000000001".to_string()),
        },
    );
    i.valid_from = from.map(|t| t.parse().expect("time"));
    i.valid_until = until.map(|t| t.parse().expect("time"));
    i.confidence = (feed == "certfr").then_some(80);
    if feed == "certfr" {
        i.tags.actors = vec!["APT31".into()];
    }
    i
}

fn engine() -> IocEngine {
    let mut inds = vec![
        ind("203.0.113.7", "certfr", Some("2021-01-01T00:00:00Z"), None),
        ind("203.0.113.7", "other", None, Some("2021-06-30T00:00:00Z")),
        ind("198.51.100.0/24", "other", None, None),
        ind("198.51.100.128/25", "certfr", None, None),
        ind("2001:db8::1", "other", None, None),
        ind("2001:db8:1::/48", "other", None, None),
        ind("evil.example", "other", None, None),
        ind("http://bad.example/x.php", "other", None, None),
        ind(
            "44d88612fea8a8f36de82e1278abb02f",
            "other",
            Some("2021-02-03T04:05:06.789Z"),
            None,
        ),
    ];
    // Enough addresses for the large-table path (the /24 filter).
    for n in 0..70_000u32 {
        let a = 0x0b00_0000u32 + n * 37;
        inds.push(ind(
            &std::net::Ipv4Addr::from(a).to_string(),
            "bulk",
            None,
            None,
        ));
    }
    IocEngine::new(inds, InternalNets::default())
}

fn probes() -> Vec<IpAddr> {
    let mut p: Vec<IpAddr> = [
        "203.0.113.7",
        "203.0.113.8",
        "198.51.100.1",
        "198.51.100.200",
        "2001:db8::1",
        "2001:db8:1::42",
        "2001:db8:2::1",
        "::ffff:203.0.113.7",
    ]
    .iter()
    .map(|s| s.parse().expect("probe"))
    .collect();
    for n in (0..80_000u32).step_by(7) {
        p.push(IpAddr::V4((0x0b00_0000u32 + n * 37).into()));
        p.push(IpAddr::V4((0x0b00_0001u32 + n * 37).into()));
    }
    p
}

type Answer = (String, Vec<MatchRef>, Vec<String>);

fn describe(e: &IocEngine, m: &[MatchRef], seen: &str) -> Vec<String> {
    m.iter()
        .map(|r| {
            let v = e.describe(r.indicator, seen).expect("describable");
            format!(
                "{} {} {:?} {:?} {:?}",
                v.value, v.meta.feed, v.meta.confidence, v.meta.tags, v.record_id
            )
        })
        .collect()
}

fn answers(e: &IocEngine) -> Vec<Answer> {
    let mut out = Vec::new();
    let mut m = Vec::new();
    for ip in probes() {
        m.clear();
        e.index().lookup_ip(ip, &mut m);
        out.push((ip.to_string(), m.clone(), describe(e, &m, &ip.to_string())));
    }
    for name in ["evil.example", "a.b.evil.example", "good.example"] {
        m.clear();
        e.index().lookup_domain(name, &mut m);
        out.push((name.into(), m.clone(), describe(e, &m, name)));
    }
    m.clear();
    e.index().lookup_url("http://bad.example/x.php", &mut m);
    out.push(("url".into(), m.clone(), describe(e, &m, "url")));
    m.clear();
    e.index()
        .lookup_hash("44D88612FEA8A8F36DE82E1278ABB02F", &mut m);
    out.push(("hash".into(), m.clone(), describe(e, &m, "hash")));
    out
}

#[test]
fn snapshot_answers_like_the_original() {
    let original = engine();
    let mut bytes = Vec::new();
    original
        .write_snapshot(&mut bytes, "feeds: test")
        .expect("write");
    let tag = IocEngine::read_snapshot_tag(&bytes[..], bytes.len() as u64).expect("header");
    assert_eq!(tag.as_deref(), Some("feeds: test"));
    let (loaded, tag) =
        IocEngine::read_snapshot(&bytes[..], bytes.len() as u64, InternalNets::default())
            .expect("read");
    assert_eq!(tag, "feeds: test");
    assert_eq!(loaded.len(), original.len());
    assert_eq!(loaded.feeds(), original.feeds());
    let (a, b) = (answers(&original), answers(&loaded));
    assert_eq!(a, b);
    // The probes really exercise matches: exact, two windows, nested
    // prefixes, IPv6, mapped IPv4, names, and the bulk table.
    let hits = a.iter().filter(|x| !x.1.is_empty()).count();
    assert!(hits > 10_000, "only {hits} probes matched");
    assert_eq!(a[0].1.len(), 2, "203.0.113.7 is in two feeds");
    assert_eq!(a[3].1.len(), 2, "198.51.100.200 is in the /24 and the /25");
    assert_eq!(a[7].1.len(), 2, "the mapped form finds the IPv4 indicator");
    assert!(loaded.raw_may_name(b"GET http://a.b.EVIL.example/ HTTP/1.1"));
    // Re-writing the loaded engine gives the same bytes.
    let mut again = Vec::new();
    loaded
        .write_snapshot(&mut again, "feeds: test")
        .expect("write");
    assert_eq!(again, bytes);
}

#[test]
fn damaged_snapshots_are_errors_not_panics() {
    let mut bytes = Vec::new();
    engine().write_snapshot(&mut bytes, "t").expect("write");
    let len = bytes.len();
    for cut in (0..len).step_by(len / 97 + 1).chain([len - 1]) {
        let r = IocEngine::read_snapshot(&bytes[..cut], cut as u64, InternalNets::default());
        assert!(r.is_err(), "snapshot cut at {cut} of {len} was accepted");
    }
    // Flipped bytes: an error, or an engine whose lookups stay in bounds.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..60 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut b = bytes.clone();
        let at = (state as usize) % len;
        b[at] ^= (state >> 32) as u8 | 1;
        if let Ok((e, _)) = IocEngine::read_snapshot(&b[..], len as u64, InternalNets::default()) {
            probe_everything(&e);
        }
    }
}

/// Run every lookup path on a possibly damaged engine.
fn probe_everything(e: &IocEngine) {
    let mut m = Vec::new();
    for ip in probes().into_iter().step_by(50) {
        e.index().lookup_ip(ip, &mut m);
        for r in &m {
            let _ = e.describe(r.indicator, "x");
        }
        m.clear();
    }
    e.index().lookup_domain("a.b.evil.example", &mut m);
    e.index().lookup_url("http://bad.example/x.php", &mut m);
    e.index()
        .lookup_hash("44d88612fea8a8f36de82e1278abb02f", &mut m);
}
