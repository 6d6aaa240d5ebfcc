//! Enrichment of addresses with ASN, organisation, country and the kind of
//! connection, so that a finding can say "source is in AS7922 (Comcast
//! Cable), US, residential" and distributed findings can be summarised by
//! ASN.
//!
//! Two database formats are read:
//! - MaxMind DB (`.mmdb`): GeoLite2/GeoIP2 ASN, Country, City, ISP,
//!   Connection-Type and Anonymous-IP, and the `@ip-location-db` builds;
//!   fields are read by name, so any of these (or several) can be given.
//! - ip2asn TSV (`range_start range_end AS_number country_code
//!   AS_description`, tab-separated, from iptoasn.com), IPv4 and IPv6.
//!
//! Without a database, [`Enricher::none`] answers nothing and
//! [`Enricher::note`] says enrichment was skipped: it is not an error.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Error opening an enrichment database.
#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a MaxMind database: {reason}")]
    Mmdb { path: PathBuf, reason: String },
    #[error(
        "{path}:{line}: not an ip2asn row (want range_start, range_end, AS_number, country_code, AS_description separated by tabs): {reason}"
    )]
    Tsv {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{path} is compressed; decompress it first (gunzip {path})")]
    Compressed { path: PathBuf },
}

/// What is known about one address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AddrInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_org: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isp: Option<String>,
    /// ISO country code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// MaxMind Connection-Type: `Cable/DSL`, `Cellular`, `Corporate`…
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_type: Option<String>,
    /// GeoIP2 `traits.user_type` (`residential`, `hosting`, `cellular`…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
    /// Looks like residential or dynamic address space.
    pub residential: bool,
    /// A hosting provider (Anonymous-IP `is_hosting_provider`, user type
    /// `hosting`).
    pub hosting: bool,
}

impl AddrInfo {
    /// "AS15169 Google LLC", for grouping.
    pub fn label(&self) -> String {
        match (self.asn, &self.as_org) {
            (Some(a), Some(o)) => format!("AS{a} {o}"),
            (Some(a), None) => format!("AS{a}"),
            _ => "unknown ASN".to_string(),
        }
    }

    /// A sentence for a finding's reasons, if anything is known.
    pub fn reason(&self) -> Option<String> {
        if self.asn.is_none() && self.country.is_none() && self.connection_type.is_none() {
            return None;
        }
        let mut s = String::from("source is");
        match (self.asn, &self.as_org) {
            (Some(a), Some(o)) => s.push_str(&format!(" in AS{a} ({o})")),
            (Some(a), None) => s.push_str(&format!(" in AS{a}")),
            _ => {}
        }
        if let Some(c) = &self.country {
            s.push_str(&format!(", country {c}"));
        }
        if self.residential {
            let why = self
                .connection_type
                .as_deref()
                .or(self.user_type.as_deref())
                .unwrap_or("residential");
            s.push_str(&format!(" (residential or dynamic address space: {why})"));
        } else if self.hosting {
            s.push_str(" (hosting provider)");
        }
        Some(s)
    }

    fn fill_from(&mut self, o: AddrInfo) {
        self.asn = self.asn.or(o.asn);
        self.as_org = self.as_org.take().or(o.as_org);
        self.isp = self.isp.take().or(o.isp);
        self.country = self.country.take().or(o.country);
        self.connection_type = self.connection_type.take().or(o.connection_type);
        self.user_type = self.user_type.take().or(o.user_type);
        self.residential |= o.residential;
        self.hosting |= o.hosting;
    }
}

#[derive(Deserialize, Default)]
struct MmCountry {
    iso_code: Option<String>,
}

#[derive(Deserialize, Default)]
struct MmTraits {
    user_type: Option<String>,
    connection_type: Option<String>,
    autonomous_system_number: Option<u32>,
    autonomous_system_organization: Option<String>,
    isp: Option<String>,
    is_hosting_provider: Option<bool>,
    is_residential_proxy: Option<bool>,
}

/// The fields of every MaxMind database type this reads, by name.
#[derive(Deserialize, Default)]
struct MmRecord {
    autonomous_system_number: Option<u32>,
    autonomous_system_organization: Option<String>,
    isp: Option<String>,
    connection_type: Option<String>,
    user_type: Option<String>,
    is_hosting_provider: Option<bool>,
    is_residential_proxy: Option<bool>,
    country: Option<MmCountry>,
    registered_country: Option<MmCountry>,
    traits: Option<MmTraits>,
    /// `@ip-location-db` country builds.
    country_code: Option<String>,
}

fn is_residential(conn: Option<&str>, user_type: Option<&str>) -> bool {
    matches!(conn, Some("Cable/DSL" | "Cellular"))
        || matches!(user_type, Some("residential" | "cellular"))
}

impl From<MmRecord> for AddrInfo {
    fn from(r: MmRecord) -> Self {
        let tr = r.traits.unwrap_or_default();
        let connection_type = r.connection_type.or(tr.connection_type);
        let user_type = r.user_type.or(tr.user_type);
        let residential = is_residential(connection_type.as_deref(), user_type.as_deref())
            || r.is_residential_proxy.or(tr.is_residential_proxy) == Some(true);
        let hosting = r.is_hosting_provider.or(tr.is_hosting_provider) == Some(true)
            || user_type.as_deref() == Some("hosting");
        AddrInfo {
            asn: r.autonomous_system_number.or(tr.autonomous_system_number),
            as_org: r
                .autonomous_system_organization
                .or(tr.autonomous_system_organization),
            isp: r.isp.or(tr.isp),
            country: r
                .country
                .and_then(|c| c.iso_code)
                .or(r.country_code)
                .or(r.registered_country.and_then(|c| c.iso_code)),
            connection_type,
            user_type,
            residential,
            hosting,
        }
    }
}

/// One ip2asn row.
#[derive(Debug, Clone)]
struct Range {
    start: u128,
    end: u128,
    asn: u32,
    country: Option<String>,
    org: Option<String>,
}

enum Db {
    Mmdb(Box<maxminddb::Reader<Vec<u8>>>),
    Tsv(Vec<Range>),
}

/// Address enrichment from zero or more databases.
#[derive(Default)]
pub struct Enricher {
    dbs: Vec<(PathBuf, Db)>,
}

impl std::fmt::Debug for Enricher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.dbs.iter().map(|(p, _)| p))
            .finish()
    }
}

fn key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(v4.to_ipv6_mapped()),
            None => u128::from(v6),
        },
    }
}

impl Enricher {
    /// No database: every lookup answers `None`.
    pub fn none() -> Self {
        Self::default()
    }

    /// Open the databases given (`--asn-db`, `--geo-db`), either format.
    pub fn open(paths: &[&Path]) -> Result<Self, EnrichError> {
        let mut e = Self::default();
        for p in paths {
            e.add(p)?;
        }
        Ok(e)
    }

    /// Add one database file (format detected by content).
    pub fn add(&mut self, path: &Path) -> Result<(), EnrichError> {
        let bytes = std::fs::read(path).map_err(|source| EnrichError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if bytes.starts_with(&[0x1f, 0x8b]) || bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            return Err(EnrichError::Compressed {
                path: path.to_path_buf(),
            });
        }
        let marker = b"\xab\xcd\xefMaxMind.com";
        let tail = &bytes[bytes.len().saturating_sub(128 * 1024)..];
        let db = if memfind(tail, marker) {
            let r = maxminddb::Reader::from_source(bytes).map_err(|e| EnrichError::Mmdb {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
            Db::Mmdb(Box::new(r))
        } else {
            Db::Tsv(parse_tsv(path, &bytes)?)
        };
        self.dbs.push((path.to_path_buf(), db));
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.dbs.is_empty()
    }

    /// What the hunt prints about enrichment.
    pub fn note(&self) -> String {
        if self.dbs.is_empty() {
            "enrichment skipped: no --asn-db or --geo-db given (see README, \"Enrichment\")"
                .to_string()
        } else {
            let names: Vec<String> = self
                .dbs
                .iter()
                .map(|(p, _)| p.display().to_string())
                .collect();
            format!("enrichment from {}", names.join(", "))
        }
    }

    /// Everything the databases know about `ip`, or `None`.
    pub fn lookup(&self, ip: IpAddr) -> Option<AddrInfo> {
        let mut info: Option<AddrInfo> = None;
        for (_, db) in &self.dbs {
            let found = match db {
                Db::Mmdb(r) => r
                    .lookup(ip)
                    .ok()
                    .and_then(|l| l.decode::<MmRecord>().ok().flatten())
                    .map(AddrInfo::from),
                Db::Tsv(ranges) => {
                    let k = key(ip);
                    let i = ranges.partition_point(|r| r.start <= k);
                    i.checked_sub(1)
                        .map(|i| &ranges[i])
                        .filter(|r| k <= r.end && r.asn != 0)
                        .map(|r| AddrInfo {
                            asn: Some(r.asn),
                            as_org: r.org.clone(),
                            country: r.country.clone(),
                            ..Default::default()
                        })
                }
            };
            if let Some(f) = found {
                match &mut info {
                    None => info = Some(f),
                    Some(i) => i.fill_from(f),
                }
            }
        }
        info
    }
}

fn memfind(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn parse_tsv(path: &Path, bytes: &[u8]) -> Result<Vec<Range>, EnrichError> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |reason: &str| EnrichError::Tsv {
            path: path.to_path_buf(),
            line: i + 1,
            reason: reason.to_string(),
        };
        let f: Vec<&str> = line.splitn(5, '\t').collect();
        if f.len() < 3 {
            return Err(err("fewer than 3 columns"));
        }
        let start: IpAddr = f[0].trim().parse().map_err(|_| err("bad range_start"))?;
        let end: IpAddr = f[1].trim().parse().map_err(|_| err("bad range_end"))?;
        let asn: u32 = f[2]
            .trim()
            .trim_start_matches("AS")
            .parse()
            .map_err(|_| err("bad AS_number"))?;
        let nonempty = |s: Option<&&str>| {
            s.map(|s| s.trim())
                .filter(|s| !s.is_empty() && *s != "None" && *s != "Not routed")
                .map(str::to_string)
        };
        let (s, e) = (key(start), key(end));
        if e < s {
            return Err(err("range_end is before range_start"));
        }
        out.push(Range {
            start: s,
            end: e,
            asn,
            country: nonempty(f.get(3)),
            org: nonempty(f.get(4)),
        });
    }
    out.sort_by_key(|r| r.start);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ip2asn.tsv");
        std::fs::write(
            &p,
            "1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET\n\
             1.0.1.0\t1.0.3.255\t0\tNone\tNot routed\n\
             2001:200::\t2001:200:ffff:ffff:ffff:ffff:ffff:ffff\t2500\tJP\tWIDE-BB WIDE Project\n",
        )
        .unwrap();
        let e = Enricher::open(&[&p]).unwrap();
        let i = e.lookup("1.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(i.asn, Some(13335));
        assert_eq!(i.country.as_deref(), Some("US"));
        assert!(e.lookup("1.0.2.1".parse().unwrap()).is_none());
        assert!(e.lookup("9.9.9.9".parse().unwrap()).is_none());
        let v6 = e.lookup("2001:200::1".parse().unwrap()).unwrap();
        assert_eq!(v6.label(), "AS2500 WIDE-BB WIDE Project");
    }

    #[test]
    fn bad_tsv_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.tsv");
        std::fs::write(&p, "1.0.0.0\t1.0.0.255\t13335\tUS\tX\nnot an ip\tx\ty\n").unwrap();
        let err = Enricher::open(&[&p]).unwrap_err().to_string();
        assert!(err.contains("bad.tsv:2"), "{err}");
    }

    #[test]
    fn broken_databases_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/maxmind-test/GeoIP2-Connection-Type-Test.mmdb");
        let bytes = std::fs::read(src).unwrap();
        // The data section cut away, the metadata kept: opens or fails, and
        // every lookup answers or says nothing.
        let marker = b"\xab\xcd\xefMaxMind.com";
        let at = bytes
            .windows(marker.len())
            .rposition(|w| w == marker)
            .unwrap();
        for cut in [0usize, 16, at / 2, at.saturating_sub(8)] {
            let mut b = bytes[..cut].to_vec();
            b.extend_from_slice(&bytes[at..]);
            let p = dir.path().join(format!("cut{cut}.mmdb"));
            std::fs::write(&p, &b).unwrap();
            if let Ok(e) = Enricher::open(&[&p]) {
                for ip in ["1.0.0.1", "2003::1", "81.2.69.1", "0.0.0.0"] {
                    let _ = e.lookup(ip.parse().unwrap());
                }
            }
        }
        // Compressed input is refused with a hint.
        let gz = dir.path().join("x.tsv.gz");
        std::fs::write(&gz, [0x1f, 0x8b, 8, 0]).unwrap();
        assert!(
            Enricher::open(&[&gz])
                .unwrap_err()
                .to_string()
                .contains("gunzip")
        );
        // A missing file names itself.
        let missing = dir.path().join("nope.mmdb");
        assert!(
            Enricher::open(&[&missing])
                .unwrap_err()
                .to_string()
                .contains("nope.mmdb")
        );
    }

    #[test]
    fn none_is_a_note_not_an_error() {
        let e = Enricher::none();
        assert!(e.lookup("8.8.8.8".parse().unwrap()).is_none());
        assert!(e.note().contains("skipped"));
    }
}
