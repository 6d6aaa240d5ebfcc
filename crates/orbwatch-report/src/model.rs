//! What every report sink is handed: the findings with their triage state,
//! the coverage of the hunt when it is known, the history of the
//! organisation's own routers, and who reports.
//!
//! The binary and the dashboard turn stored findings (or a `hunt --format
//! jsonl` file) into a [`ReportInput`]; the sinks never open the store.

use jiff::Timestamp;
use orbwatch_detect::{Coverage, Finding, FindingKind};
use serde::{Deserialize, Serialize};

/// Triage status of a finding nobody has decided on yet (the names are
/// those the store and the CLI write).
pub const STATUS_NEW: &str = "new";
/// Triage status of a finding judged real.
pub const STATUS_CONFIRMED: &str = "confirmed";
/// Triage status of a wrong match (dismissed).
pub const STATUS_FALSE_POSITIVE: &str = "false-positive";
/// Triage status of a right match on harmless traffic (dismissed).
pub const STATUS_BENIGN: &str = "benign";

/// The triage state of a finding, as shown in reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Triage {
    /// `new`, `confirmed`, `false-positive` or `benign`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Timestamp>,
    /// The decision was taken on another finding with the same indicator
    /// and peer (or kind and source): its id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inherited_from: Option<String>,
}

impl Triage {
    /// Was the finding dismissed (false positive or benign)?
    pub fn dismissed(&self) -> bool {
        self.status == STATUS_FALSE_POSITIVE || self.status == STATUS_BENIGN
    }
}

/// One finding as reported.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportFinding {
    pub finding: Finding,
    /// `None`: never triaged (reported as `new`).
    pub triage: Option<Triage>,
}

impl ReportFinding {
    /// A finding read back from the store, with its triage decision, as
    /// the report sinks take it (`orbwatch report` and the dashboard's
    /// report page both build their input with this).
    pub fn from_stored(sf: orbwatch_store::StoredFinding) -> ReportFinding {
        let triage = sf.decision.map(|d| Triage {
            status: sf.status.as_str().to_string(),
            note: d.note,
            author: Some(d.author),
            at: Some(d.at),
            inherited_from: (d.finding_id != sf.finding.id).then_some(d.finding_id),
        });
        ReportFinding {
            finding: sf.finding,
            triage,
        }
    }

    /// The status name, `new` when never triaged.
    pub fn status(&self) -> &str {
        self.triage
            .as_ref()
            .map_or(STATUS_NEW, |t| t.status.as_str())
    }

    /// Dismissed by triage.
    pub fn dismissed(&self) -> bool {
        self.triage.as_ref().is_some_and(Triage::dismissed)
    }
}

/// Everything a report is made from.
#[derive(Debug, Clone)]
pub struct ReportInput {
    /// All findings, dismissed ones included: each sink decides what to do
    /// with them (the HTML lists them apart, MISP sightings mark them as
    /// false positives, STIX and CSV leave them out unless
    /// `include_dismissed`).
    pub findings: Vec<ReportFinding>,
    /// Include dismissed findings in the STIX bundle, the MISP event and
    /// the CSV.
    pub include_dismissed: bool,
    /// Share findings about internal and special-purpose addresses in the
    /// STIX bundle and MISP outputs (`--include-internal`). Off by default:
    /// a private address means nothing to the recipient and tells them
    /// about your network.
    pub include_internal: bool,
    /// The hunt's coverage, when known (from the store, or `--coverage`).
    pub coverage: Option<Coverage>,
    /// The reporting organisation (STIX identity, MISP `Orgc`, HTML header).
    pub org: String,
    /// When the report is made: also the `created`/`modified` time of the
    /// STIX objects, so a fixed value gives byte-identical output.
    pub generated: Timestamp,
    /// Where the findings came from, in words ("hunt #3 in /x/orbwatch.db").
    pub source: String,
    /// The organisation's own routers that `orbwatch routers` audited or
    /// rebooted, by name (empty without a store, or when it has none).
    pub routers: Vec<RouterStory>,
}

/// One of the organisation's own routers, as `orbwatch routers` left it.
#[derive(Debug, Clone, PartialEq)]
pub struct RouterStory {
    /// Where it stands: steps kept, steps failed, last audit and reboot.
    pub standing: orbwatch_store::RouterStanding,
    /// Its latest steps, oldest first ([`ROUTER_STEPS_SHOWN`] at most):
    /// enough to show its last reboot from pre-check to re-audit.
    pub recent: Vec<orbwatch_store::RouterStep>,
}

/// Steps of each router a report shows. A reboot takes six (pre-check,
/// sent, returned, proof, health, re-audit), so the last reboot and the
/// audits around it fit.
pub const ROUTER_STEPS_SHOWN: usize = 12;

/// Every router with a history in `store`, by name, with its latest steps.
pub fn router_stories(store: &orbwatch_store::Store) -> orbwatch_store::Result<Vec<RouterStory>> {
    store
        .router_standings()?
        .into_iter()
        .map(|standing| {
            let recent = store.router_recent_steps(&standing.router, ROUTER_STEPS_SHOWN)?;
            Ok(RouterStory { standing, recent })
        })
        .collect()
}

impl ReportInput {
    /// The findings the machine-readable sinks export.
    pub fn exported(&self) -> impl Iterator<Item = &ReportFinding> {
        self.findings
            .iter()
            .filter(|f| self.include_dismissed || !f.dismissed())
    }

    /// The findings shared with others (STIX, MISP): those exported, less
    /// the ones about internal addresses unless `include_internal`, and
    /// never the audits of the organisation's own routers (see
    /// [`about_own_router`]).
    pub fn shared(&self) -> impl Iterator<Item = &ReportFinding> {
        self.exported()
            .filter(|f| !about_own_router(&f.finding))
            .filter(|f| self.include_internal || !about_internal(&f.finding))
    }

    /// The exported router audits, which [`ReportInput::shared`] never
    /// shares.
    pub fn own_routers_left_out(&self) -> Vec<&ReportFinding> {
        self.exported()
            .filter(|f| about_own_router(&f.finding))
            .collect()
    }

    /// The exported findings that [`ReportInput::shared`] leaves out.
    pub fn internal_left_out(&self) -> Vec<&ReportFinding> {
        if self.include_internal {
            return Vec::new();
        }
        self.exported()
            .filter(|f| !about_own_router(&f.finding) && about_internal(&f.finding))
            .collect()
    }

    /// The TLP of what is shared: the most restrictive one the feeds of
    /// the shared findings give, else `amber` (a hunt report describes the
    /// reporter's own network). Lower case, TLP 2.0 names (`clear` for
    /// `white`).
    pub fn tlp(&self) -> String {
        let order = ["clear", "green", "amber", "amber+strict", "red"];
        self.shared()
            .filter_map(|f| f.finding.ioc.as_ref()?.tags.tlp.as_deref())
            .map(|t| {
                let t = t.trim().to_ascii_lowercase();
                let t = t.strip_prefix("tlp:").unwrap_or(&t).to_string();
                if t == "white" { "clear".to_string() } else { t }
            })
            .filter(|t| order.contains(&t.as_str()))
            .max_by_key(|t| order.iter().position(|o| o == t))
            .unwrap_or_else(|| "amber".to_string())
    }
}

/// Is this an internal or special-purpose address: private (RFC 1918,
/// RFC 4193), loopback, link-local, carrier-grade NAT, unspecified,
/// multicast or reserved? Documentation ranges (TEST-NET) are not: they are
/// what examples and tests use.
pub fn is_internal(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v) => {
            let o = v.octets();
            v.is_private()
                || v.is_loopback()
                || v.is_link_local()
                || v.is_unspecified()
                || v.is_multicast()
                || v.is_broadcast()
                || o[0] == 0
                || o[0] >= 240
                || (o[0] == 100 && (64..128).contains(&o[1]))
        }
        std::net::IpAddr::V6(v) => {
            let s = v.segments();
            v.is_loopback()
                || v.is_unspecified()
                || v.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || v.to_ipv4_mapped().is_some_and(|m| is_internal(m.into()))
        }
    }
}

/// Is the finding an audit of one of the organisation's own routers
/// (`orbwatch routers`)? Its address is the audited device, a victim at
/// worst: shared in STIX or MISP it would read as a sighting of a hostile
/// address, so it is never shared, not even with `--include-internal`.
pub fn about_own_router(f: &orbwatch_detect::Finding) -> bool {
    f.kind.is_about_own_device()
}

/// Is the address a finding would share internal: the matched indicator
/// for a sighting, every source for a behaviour?
pub fn about_internal(f: &orbwatch_detect::Finding) -> bool {
    match &f.ioc {
        Some(i) => i
            .matched_value
            .parse::<std::net::IpAddr>()
            .or_else(|_| i.indicator.parse::<std::net::IpAddr>())
            .is_ok_and(is_internal),
        None => {
            let mut any = false;
            let all = f.src_ip.iter().chain(f.sources.iter()).all(|ip| {
                any = true;
                is_internal(*ip)
            });
            any && all
        }
    }
}

/// A finding kind in words. Matched by name, so that kinds added to the
/// model by new detectors show as their name until given words here.
pub fn kind_label(k: FindingKind) -> &'static str {
    match k.as_str() {
        "ioc_match" => "indicator match",
        "port_scan" => "port scan",
        "brute_force" => "brute force",
        "password_spray" => "password spray",
        "distributed_bruteforce" => "distributed brute force",
        "success_after_failures" => "login after failures",
        other => other,
    }
}
