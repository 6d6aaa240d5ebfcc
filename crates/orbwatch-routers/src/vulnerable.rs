//! Known-vulnerable firmware: a shipped starting list
//! (`data/vulnerable-firmware.toml`, with its sources) plus the user's
//! own lists named in the inventory.
//!
//! Why data and not code: advisories change faster than releases, and an
//! organisation knows its own fleet's bad versions; a list in TOML can be
//! reviewed and extended without a rebuild.

use std::cmp::Ordering;
use std::path::Path;

use orbwatch_detect::Severity;
use serde::Deserialize;

/// The list shipped with orbwatch.
pub const SHIPPED: &str = include_str!("../data/vulnerable-firmware.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListFile {
    #[serde(default)]
    entry: Vec<Entry>,
}

/// One known-vulnerable firmware.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub id: String,
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub model_contains: Vec<String>,
    /// Lower bound (inclusive) for `below`: only versions from this one
    /// on are affected (RouterOS' bug was introduced in 6.29, and its
    /// 6.40.8+ bugfix line is fixed while 6.41 is not).
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub below: Option<String>,
    #[serde(default)]
    pub versions: Vec<String>,
    #[serde(default)]
    pub all: bool,
    pub severity: String,
    #[serde(default)]
    pub campaigns: Vec<String>,
    #[serde(default)]
    pub cves: Vec<String>,
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub sources: Vec<String>,
    /// The advisories the entry rests on (required in the shipped list,
    /// optional in the user's own).
    #[serde(default)]
    pub advisories: Vec<Advisory>,
    /// Whether the entry was checked against its sources: `Some(true)`
    /// means ids, models and versions are backed by the quotes in
    /// `evidence`; `Some(false)` means the entry rests on a claim nobody
    /// could check, and the audit says so. Required in the shipped list;
    /// a user's own entry may leave it out (no claim either way).
    #[serde(default)]
    pub verified: Option<bool>,
    /// Where the entry was checked: the text actually read and the
    /// sentence that decides it, so the next reviewer can re-check it.
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    /// What could not be checked (required when `verified = false`; a
    /// verified entry may still name a claim, such as a campaign link,
    /// that rests on a secondary source). Repeated in the finding.
    #[serde(default)]
    pub unverified: Option<String>,
    /// The list it came from (set when loaded).
    #[serde(skip)]
    pub list: String,
}

/// One advisory an entry cites: its id (vendor advisory id, CVE, report
/// title) and where to read it.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Advisory {
    pub id: String,
    pub url: String,
}

/// One piece of evidence for an entry: where the text was read and the
/// decisive sentence, quoted.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    pub url: String,
    pub quote: String,
}

/// What the audit read about the firmware.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirmwareFacts {
    pub os: Option<String>,
    pub version: Option<String>,
    /// Model or firmware banner text (OpenWrt's DISTRIB_DESCRIPTION and
    /// DISTRIB_TARGET, os-release PRETTY_NAME, /etc/version).
    pub model: String,
    pub kernel: Option<String>,
}

impl Entry {
    pub fn severity(&self) -> Severity {
        Severity::parse(&self.severity).unwrap_or(Severity::High)
    }

    /// Does this entry apply to `f`?
    pub fn matches(&self, f: &FirmwareFacts) -> bool {
        if let Some(os) = &self.os
            && f.os.as_deref().map(|o| o.eq_ignore_ascii_case(os)) != Some(true)
        {
            return false;
        }
        if !self.model_contains.is_empty() {
            let m = f.model.to_ascii_lowercase();
            if !self
                .model_contains
                .iter()
                .any(|s| m.contains(&s.to_ascii_lowercase()))
            {
                return false;
            }
        }
        if self.os.is_none() && self.model_contains.is_empty() {
            return false;
        }
        if self.all {
            return true;
        }
        let Some(v) = f.version.as_deref() else {
            return false;
        };
        if self.versions.iter().any(|x| x == v) {
            return true;
        }
        if let Some(from) = &self.from
            && compare_versions(v, from) == Ordering::Less
        {
            return false;
        }
        match &self.below {
            Some(b) => compare_versions(v, b) == Ordering::Less,
            None => false,
        }
    }

    /// What a finding from this entry must say about its verification:
    /// `None` when the entry is verified with nothing left open (or is a
    /// user's entry that makes no claim).
    pub fn caveat(&self) -> Option<String> {
        let open = self
            .unverified
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        match (self.verified, open) {
            (Some(false), Some(why)) => Some(format!("UNVERIFIED entry: {why}")),
            (Some(false), None) => Some("UNVERIFIED entry".to_string()),
            (_, Some(why)) => Some(format!("unverified: {why}")),
            (_, None) => None,
        }
    }
}

/// Compare dotted versions segment by segment, numbers as numbers
/// (`18.06.10` > `18.06.7`); a non-numeric segment compares as text.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let split = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    };
    let (a, b) = (split(a), split(b));
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i), b.get(i));
        let o = match (x, y) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => match (x.parse::<u64>(), y.parse::<u64>()) {
                (Ok(p), Ok(q)) => p.cmp(&q),
                _ => x.cmp(y),
            },
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// Parse one list; `name` names it in errors.
pub fn parse_list(text: &str, name: &str) -> Result<Vec<Entry>, String> {
    let f: ListFile = toml::from_str(text).map_err(|e| format!("{name}: {e}"))?;
    let mut out = f.entry;
    for e in &mut out {
        if Severity::parse(&e.severity).is_none() {
            return Err(format!(
                "{name}: entry {}: severity {:?} is not info, low, medium, high or critical",
                e.id, e.severity
            ));
        }
        if !e.all && e.below.is_none() && e.versions.is_empty() {
            return Err(format!(
                "{name}: entry {}: give `below`, `versions` or `all = true`",
                e.id
            ));
        }
        if e.from.is_some() && e.below.is_none() {
            return Err(format!(
                "{name}: entry {}: `from` bounds `below` and needs it",
                e.id
            ));
        }
        if e.verified == Some(false) && e.unverified.as_deref().is_none_or(|s| s.trim().is_empty())
        {
            return Err(format!(
                "{name}: entry {}: `verified = false` needs `unverified` saying what could not be checked",
                e.id
            ));
        }
        e.list = name.to_string();
    }
    Ok(out)
}

/// The shipped list plus the user's.
pub fn load(extra: &[impl AsRef<Path>]) -> Result<Vec<Entry>, String> {
    let mut all = parse_list(SHIPPED, "shipped vulnerable-firmware.toml")?;
    for p in extra {
        let p = p.as_ref();
        let text = std::fs::read_to_string(p).map_err(|e| {
            format!(
                "cannot read the vulnerable-firmware list {}: {e}",
                p.display()
            )
        })?;
        all.extend(parse_list(&text, &p.display().to_string())?);
    }
    Ok(all)
}

/// Read the facts from the `version` probe's output (`uname -srm`, then
/// `/etc/openwrt_release`, `/etc/os-release`, `/etc/version`).
pub fn facts(output: &str) -> FirmwareFacts {
    let mut f = FirmwareFacts::default();
    let mut model = Vec::new();
    for (i, line) in output.lines().enumerate() {
        let line = line.trim();
        if i == 0 {
            f.kernel = line.split_whitespace().nth(1).map(str::to_string);
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            if !line.is_empty() {
                model.push(line.to_string());
            }
            continue;
        };
        let v = v.trim().trim_matches(['"', '\'']).to_string();
        match k.trim() {
            "DISTRIB_ID" => f.os = Some(v.to_ascii_lowercase()),
            "DISTRIB_RELEASE" => f.version = Some(v),
            "DISTRIB_DESCRIPTION" | "DISTRIB_TARGET" | "PRETTY_NAME" | "OPENWRT_DEVICE_PRODUCT" => {
                model.push(v)
            }
            "ID" if f.os.is_none() => f.os = Some(v.to_ascii_lowercase()),
            "VERSION_ID" if f.version.is_none() => f.version = Some(v),
            _ => {}
        }
    }
    f.model = model.join(" ");
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_list_parses_and_cites_sources() {
        let l = parse_list(SHIPPED, "shipped").unwrap();
        assert_eq!(l.len(), 9);
        for e in &l {
            assert!(!e.sources.is_empty(), "{}", e.id);
            assert!(e.sources.iter().all(|s| s.starts_with("https://")));
            assert!(!e.advisories.is_empty(), "{} cites no advisory", e.id);
            for a in &e.advisories {
                assert!(!a.id.trim().is_empty(), "{}", e.id);
                assert!(a.url.starts_with("https://"), "{}: {}", e.id, a.url);
            }
            // Each CVE of an entry has an advisory of its own.
            for c in &e.cves {
                assert!(
                    e.advisories.iter().any(|a| a.id == *c),
                    "{}: no advisory for {c}",
                    e.id
                );
            }
        }
    }

    /// Issue 16: every shipped entry says whether it was checked. A
    /// verified one quotes where it was checked, and each of its CVEs
    /// appears in that evidence; an unverified one says what is open.
    #[test]
    fn shipped_entries_are_verified_with_quotes_or_marked_unverified() {
        let l = parse_list(SHIPPED, "shipped").unwrap();
        for e in &l {
            match e.verified {
                None => panic!("{}: shipped entry without `verified`", e.id),
                Some(true) => {
                    assert!(
                        !e.evidence.is_empty(),
                        "{}: verified without evidence",
                        e.id
                    );
                    for ev in &e.evidence {
                        assert!(
                            ev.url.starts_with("https://") || ev.url.starts_with("http://"),
                            "{}: evidence url {}",
                            e.id,
                            ev.url
                        );
                        assert!(
                            ev.quote.trim().len() >= 40,
                            "{}: quote too short to decide anything: {:?}",
                            e.id,
                            ev.quote
                        );
                    }
                    for c in &e.cves {
                        assert!(
                            e.evidence
                                .iter()
                                .any(|ev| ev.quote.contains(c.as_str())
                                    || ev.url.contains(c.as_str())),
                            "{}: {c} is in no evidence",
                            e.id
                        );
                    }
                }
                Some(false) => assert!(
                    e.caveat().unwrap().starts_with("UNVERIFIED entry: "),
                    "{}",
                    e.id
                ),
            }
            // Fixed versions come from the sources: a `below` bound must
            // be written in one of the entry's quotes. (`from` bounds and
            // listed versions may be read off a range a quote gives.)
            if e.verified == Some(true) {
                for v in e.below.iter() {
                    assert!(
                        e.evidence.iter().any(|ev| ev.quote.contains(v.as_str())),
                        "{}: version {v} is in no quote",
                        e.id
                    );
                }
            }
        }
        let unverified: Vec<_> = l
            .iter()
            .filter(|e| e.verified == Some(false))
            .map(|e| e.id.as_str())
            .collect();
        assert_eq!(unverified, ["netgear-prosafe-eol"]);
    }

    #[test]
    fn caveats_name_what_is_open() {
        let l = parse_list(SHIPPED, "shipped").unwrap();
        let by_id = |id: &str| l.iter().find(|e| e.id == id).unwrap();
        assert!(
            by_id("netgear-prosafe-eol")
                .caveat()
                .unwrap()
                .contains("ProSAFE is a product line")
        );
        assert!(
            by_id("draytek-vigor-cve-2020-8515")
                .caveat()
                .unwrap()
                .starts_with("unverified: The Raptor Train link")
        );
        assert_eq!(by_id("openwrt-opkg-cve-2020-7982").caveat(), None);
        // A user's entry makes no claim either way.
        let user = parse_list("[[entry]]\nid='u'\nos='a'\nall=true\nseverity='low'", "l").unwrap();
        assert_eq!(user[0].caveat(), None);
        // `verified = false` without saying why is refused.
        assert!(
            parse_list(
                "[[entry]]\nid='u'\nos='a'\nall=true\nseverity='low'\nverified=false",
                "l"
            )
            .is_err()
        );
        assert!(
            parse_list(
                "[[entry]]\nid='u'\nos='a'\nfrom='1'\nversions=['1']\nseverity='low'",
                "l"
            )
            .is_err()
        );
    }

    /// The bounds read from the sources, at their edges.
    #[test]
    fn shipped_bounds_match_the_advisories() {
        let l = parse_list(SHIPPED, "shipped").unwrap();
        let hits = |os: &str, model: &str, v: &str| -> Vec<String> {
            let f = FirmwareFacts {
                os: (!os.is_empty()).then(|| os.to_string()),
                version: Some(v.to_string()),
                model: model.to_string(),
                kernel: None,
            };
            l.iter()
                .filter(|e| e.matches(&f))
                .map(|e| e.id.clone())
                .collect()
        };
        // MikroTik: 6.29..=6.42 (current) and 6.30.1..=6.40.7 (bugfix)
        // affected; 6.40.8 and 6.42.1 fixed.
        assert_eq!(hits("routeros", "", "6.28"), Vec::<String>::new());
        assert_eq!(
            hits("routeros", "", "6.29"),
            ["routeros-winbox-cve-2018-14847-6.29-6.40"]
        );
        assert_eq!(
            hits("routeros", "", "6.40.7"),
            ["routeros-winbox-cve-2018-14847-6.29-6.40"]
        );
        assert_eq!(hits("routeros", "", "6.40.8"), Vec::<String>::new());
        assert_eq!(hits("routeros", "", "6.40.9"), Vec::<String>::new());
        assert_eq!(
            hits("routeros", "", "6.41"),
            ["routeros-winbox-cve-2018-14847"]
        );
        assert_eq!(
            hits("routeros", "", "6.42"),
            ["routeros-winbox-cve-2018-14847"]
        );
        assert_eq!(hits("routeros", "", "6.42.1"), Vec::<String>::new());
        assert_eq!(hits("routeros", "", "7.15.3"), Vec::<String>::new());
        // OpenWrt 18.06.0..=18.06.6 and 19.07.0; LEDE 17.01.0..=17.01.7;
        // older OpenWrt is not named by the advisory.
        assert_eq!(
            hits("openwrt", "", "18.06.0"),
            ["openwrt-opkg-cve-2020-7982"]
        );
        assert_eq!(hits("openwrt", "", "18.06.7"), Vec::<String>::new());
        assert_eq!(
            hits("openwrt", "", "19.07.0"),
            ["openwrt-opkg-cve-2020-7982-19.07.0"]
        );
        assert_eq!(hits("openwrt", "", "19.07.1"), Vec::<String>::new());
        assert_eq!(hits("openwrt", "", "15.05.1"), Vec::<String>::new());
        assert_eq!(hits("lede", "", "17.01.7"), ["lede-opkg-cve-2020-7982"]);
        // DrayTek: fixed in 1.5.1 on the three models.
        assert_eq!(
            hits("", "DrayTek Vigor2960", "1.4.4_Beta"),
            ["draytek-vigor-cve-2020-8515"]
        );
        assert_eq!(hits("", "DrayTek Vigor2960", "1.5.1"), Vec::<String>::new());
        assert_eq!(hits("", "DrayTek Vigor2862", "1.4.4"), Vec::<String>::new());
        // TP-Link: before 1.1.4 Build 20230219.
        assert_eq!(
            hits("", "Archer AX21", "1.1.3 Build 20221208"),
            ["tplink-archer-ax21-cve-2023-1389"]
        );
        assert_eq!(
            hits("", "Archer AX21", "1.1.4 Build 20230219"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn versions_compare_as_numbers() {
        assert_eq!(compare_versions("18.06.10", "18.06.7"), Ordering::Greater);
        assert_eq!(compare_versions("18.06.6", "18.06.7"), Ordering::Less);
        assert_eq!(compare_versions("1.5", "1.5.1"), Ordering::Less);
        assert_eq!(compare_versions("", ""), Ordering::Equal);
    }

    #[test]
    fn openwrt_facts_and_matching() {
        let out = "Linux 4.14.171 mips\nDISTRIB_ID='OpenWrt'\nDISTRIB_RELEASE='18.06.5'\nDISTRIB_TARGET='ath79/generic'\nDISTRIB_DESCRIPTION='OpenWrt 18.06.5 r7897-9d401013fc'\n";
        let f = facts(out);
        assert_eq!(f.os.as_deref(), Some("openwrt"));
        assert_eq!(f.version.as_deref(), Some("18.06.5"));
        assert_eq!(f.kernel.as_deref(), Some("4.14.171"));
        let l = parse_list(SHIPPED, "shipped").unwrap();
        let hits: Vec<_> = l
            .iter()
            .filter(|e| e.matches(&f))
            .map(|e| e.id.as_str())
            .collect();
        assert_eq!(hits, ["openwrt-opkg-cve-2020-7982"]);
        let fixed = facts(&out.replace("18.06.5", "18.06.7"));
        assert_eq!(l.iter().filter(|e| e.matches(&fixed)).count(), 0);
        let rv = FirmwareFacts {
            model: "Cisco RV320 Dual Gigabit WAN VPN Router".into(),
            version: Some("1.4.2.22".into()),
            ..Default::default()
        };
        let hits: Vec<_> = l
            .iter()
            .filter(|e| e.matches(&rv))
            .map(|e| e.id.as_str())
            .collect();
        assert_eq!(hits, ["cisco-rv320-rv325-eol"]);
    }

    #[test]
    fn bad_lists_are_refused() {
        assert!(parse_list("[[entry]]\nid='x'\nos='a'\nseverity='high'", "l").is_err());
        assert!(parse_list("[[entry]]\nid='x'\nos='a'\nall=true\nseverity='dire'", "l").is_err());
        assert!(
            parse_list(
                "[[entry]]\nid='x'\nos='a'\nall=true\nseverity='low'\nbogus=1",
                "l"
            )
            .is_err()
        );
        assert!(parse_list("\u{0}", "l").is_err());
    }
}
