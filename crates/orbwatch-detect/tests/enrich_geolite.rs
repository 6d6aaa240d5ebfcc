//! Enrichment against real GeoLite2 databases (MaxMind's GeoLite2 licence,
//! never committed): installed by .ci/install-tools in
//! ~/.cache/orbwatch-test/geolite2/, or under $ORBWATCH_TEST_CACHE.
//! Skipped when absent unless ORBWATCH_REQUIRE_TOOLS=1.

use std::path::PathBuf;

use orbwatch_detect::enrich::Enricher;

fn geolite_dir() -> Option<PathBuf> {
    let base = std::env::var_os("ORBWATCH_TEST_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/orbwatch-test"))
        })?;
    let d = base.join("geolite2");
    d.join("GeoLite2-ASN.mmdb").is_file().then_some(d)
}

#[test]
fn geolite2_asn_and_country() {
    let Some(d) = geolite_dir() else {
        if std::env::var("ORBWATCH_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("GeoLite2 databases not installed (ORBWATCH_REQUIRE_TOOLS=1)");
        }
        println!("skipped: GeoLite2 databases not installed");
        return;
    };
    let asn = d.join("GeoLite2-ASN.mmdb");
    let country = d.join("GeoLite2-Country.mmdb");
    let e = Enricher::open(&[asn.as_path(), country.as_path()]).expect("open GeoLite2");
    let g = e
        .lookup("8.8.8.8".parse().unwrap())
        .expect("8.8.8.8 is known");
    assert_eq!(g.asn, Some(15169));
    assert!(
        g.as_org.as_deref().unwrap_or("").contains("Google"),
        "{g:?}"
    );
    assert_eq!(g.country.as_deref(), Some("US"));
    let c = e
        .lookup("24.0.0.1".parse().unwrap())
        .expect("24.0.0.1 is known");
    assert_eq!(c.asn, Some(7922));
    assert!(c.reason().unwrap_or_default().contains("AS7922"));
    // Private space is in no database.
    assert!(e.lookup("10.1.2.3".parse().unwrap()).is_none());
}
