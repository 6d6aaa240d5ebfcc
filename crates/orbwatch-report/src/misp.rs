//! MISP outputs: sightings to POST, and an event to import.
//!
//! - [`sightings`]: a JSON array of request bodies for MISP's
//!   `POST /sightings/add` (one per finding: MISP's controller takes one
//!   body per request, with `values`, `source`, `timestamp` and `type`;
//!   a behaviour finding's `values` are its source addresses).
//!   `type` is `"0"` (seen) or `"1"` (false positive: the finding was
//!   triaged false-positive or benign). Post them with e.g.
//!   `jq -c '.[]' FILE | while read -r b; do curl -H "Authorization: $KEY"
//!   -H 'Content-Type: application/json' -d "$b" $MISP/sightings/add; done`.
//! - [`event`]: a MISP event (`{"Event": {...}}`) with one attribute per
//!   finding and value (`ip-src`/`ip-dst`/`domain`/`url`/hash types, with
//!   `first_seen`/`last_seen`) carrying its sighting, for
//!   `POST /events/add` or the UI's import. orbwatch's own MISP reader
//!   reads it back (tested).

use jiff::Timestamp;
use orbwatch_detect::Finding;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::model::{ReportFinding, ReportInput};

const MISP_NAMESPACE: Uuid = Uuid::from_u128(0x6f72_6277_6174_4368_8000_0000_0000_0002);

fn uuid_of(key: &str) -> String {
    Uuid::new_v5(&MISP_NAMESPACE, key.as_bytes())
        .hyphenated()
        .to_string()
}

/// The `source` of orbwatch's sightings.
fn source(input: &ReportInput) -> String {
    format!("orbwatch ({})", input.org)
}

/// Sighting type: 0 seen, 1 false positive.
fn sighting_type(rf: &ReportFinding) -> &'static str {
    if rf.dismissed() { "1" } else { "0" }
}

/// Source addresses of a behaviour finding kept as attributes (a
/// distributed brute force may list thousands).
pub const MAX_SOURCES: usize = 50;

/// The values MISP attributes would hold for the finding, with their type
/// and category: the value seen for an IOC match, the source addresses for
/// a behaviour.
fn attributes_of(f: &Finding) -> Vec<(String, &'static str, &'static str)> {
    if let Some(i) = &f.ioc {
        let t = match (i.indicator_type.as_str(), i.matched_field.as_str()) {
            (_, "src_ip") => "ip-src",
            (_, "dst_ip") | (_, "ip") => "ip-dst",
            (_, "domain") => "domain",
            (_, "url") => "url",
            ("md5", _) => "md5",
            ("sha1", _) => "sha1",
            ("sha256", _) => "sha256",
            ("sha512", _) => "sha512",
            ("cert-sha1", _) => "x509-fingerprint-sha1",
            ("cert-sha256", _) => "x509-fingerprint-sha256",
            ("cert-md5", _) => "x509-fingerprint-md5",
            _ => return Vec::new(),
        };
        let category = match t {
            "md5" | "sha1" | "sha256" | "sha512" => "Payload delivery",
            _ => "Network activity",
        };
        return vec![(i.matched_value.clone(), t, category)];
    }
    let mut ips: Vec<std::net::IpAddr> = f.src_ip.into_iter().collect();
    for s in &f.sources {
        if !ips.contains(s) {
            ips.push(*s);
        }
    }
    ips.into_iter()
        .take(MAX_SOURCES)
        .map(|ip| (ip.to_string(), "ip-src", "Network activity"))
        .collect()
}

fn epoch(t: Timestamp) -> i64 {
    t.as_second()
}

/// Bodies for `POST /sightings/add`, one per finding (dismissed findings
/// included, as false positives).
pub fn sightings(input: &ReportInput) -> Value {
    let src = source(input);
    let bodies: Vec<Value> = input
        .findings
        .iter()
        .filter(|rf| !crate::model::about_own_router(&rf.finding))
        .filter(|rf| input.include_internal || !crate::model::about_internal(&rf.finding))
        .filter_map(|rf| {
            let values: Vec<String> = attributes_of(&rf.finding)
                .into_iter()
                .map(|(v, _, _)| v)
                .collect();
            if values.is_empty() {
                return None;
            }
            let t = rf
                .finding
                .last_seen
                .or(rf.finding.first_seen)
                .unwrap_or(input.generated);
            Some(json!({
                "values": values,
                "source": src,
                "timestamp": epoch(t),
                "type": sighting_type(rf),
            }))
        })
        .collect();
    Value::Array(bodies)
}

/// A MISP event holding the findings as attributes with their sightings.
pub fn event(input: &ReportInput) -> Value {
    let org_uuid = uuid_of(&format!("org|{}", input.org));
    let now = epoch(input.generated);
    let mut attributes = Vec::new();
    let mut first_day: Option<Timestamp> = None;
    for rf in input.shared() {
        let f = &rf.finding;
        let values = attributes_of(f);
        if values.is_empty() {
            continue;
        }
        first_day = first_day.min(f.first_seen).or(first_day.or(f.first_seen));
        let seen = f.last_seen.or(f.first_seen).unwrap_or(input.generated);
        let mut comment = match &f.ioc {
            Some(i) => format!(
                "orbwatch {}: indicator {} of feed {}, {} record(s), direction {}, {} its validity window",
                f.id,
                i.indicator,
                i.feed,
                f.count,
                i.direction.as_str(),
                if i.in_validity_window {
                    "inside"
                } else {
                    "outside"
                }
            ),
            None => format!(
                "orbwatch {}: {} — {}",
                f.id,
                f.kind.as_str(),
                if f.reasons.is_empty() {
                    format!("{} record(s)", f.count)
                } else {
                    f.reasons.join(" ")
                }
            ),
        };
        if let (Some(_), Some(s)) = (&f.ioc, f.severity) {
            comment.push_str(&format!("; severity {}", s.as_str()));
            if let Some(sc) = f.score {
                comment.push_str(&format!(" (score {sc})"));
            }
            if let Some(o) = f.ioc.as_ref().and_then(|i| i.outcomes.as_ref()) {
                let what: Vec<String> = o.present().map(|(k, n)| format!("{k} {n}")).collect();
                if !what.is_empty() {
                    comment.push_str(&format!(", outcomes: {}", what.join(", ")));
                }
            }
        }
        if let Some(t) = &rf.triage {
            comment.push_str(&format!("; triage: {}", t.status));
            if let Some(n) = &t.note {
                comment.push_str(&format!(" ({n})"));
            }
        }
        let mut tags = vec![json!({"name": format!("orbwatch:kind=\"{}\"", f.kind.as_str())})];
        tags.push(json!({"name": format!("orbwatch:triage=\"{}\"", rf.status())}));
        if let Some(i) = &f.ioc {
            for a in &i.tags.actors {
                tags.push(json!({"name": format!("misp-galaxy:threat-actor=\"{a}\"")}));
            }
        }
        for (value, kind, category) in values {
            let mut attr = json!({
                "uuid": uuid_of(&format!("attribute|{}|{value}", f.id)),
                "type": kind,
                "category": category,
                "value": value,
                // A sighting is context, not a detection rule of its own.
                "to_ids": false,
                "distribution": "5",
                "timestamp": now.to_string(),
                "comment": comment,
                "Tag": tags.clone(),
                "Sighting": [{
                    "uuid": uuid_of(&format!("sighting|{}|{value}", f.id)),
                    "type": sighting_type(rf),
                    "date_sighting": epoch(seen).to_string(),
                    "source": source(input),
                    "Organisation": {"name": input.org, "uuid": org_uuid},
                }],
            });
            if let Some(t) = f.first_seen {
                attr["first_seen"] = json!(t.to_string());
            }
            if let Some(t) = f.last_seen {
                attr["last_seen"] = json!(t.to_string());
            }
            attributes.push(attr);
        }
    }
    let mut event_tags = vec![json!({"name": "orbwatch:report"})];
    // The most restrictive TLP of the indicators reported; amber when the
    // feeds give none (see `ReportInput::tlp`).
    event_tags.push(json!({"name": format!("tlp:{}", input.tlp())}));
    // The title counts what the event holds.
    let feed_findings = input.shared().filter(|f| f.finding.ioc.is_some()).count();
    let behaviour_findings = input.shared().filter(|f| f.finding.ioc.is_none()).count();
    let date = first_day
        .unwrap_or(input.generated)
        .strftime("%Y-%m-%d")
        .to_string();
    let ids: Vec<&str> = input.shared().map(|f| f.finding.id.as_str()).collect();
    json!({
        "Event": {
            "uuid": uuid_of(&format!("event|{}|{}|{}", input.org, now, ids.join(","))),
            "info": format!(
                "orbwatch hunt for relay (ORB) infrastructure: {} feed sighting{}, {} behaviour finding{} (reported by {})",
                feed_findings,
                if feed_findings == 1 { "" } else { "s" },
                behaviour_findings,
                if behaviour_findings == 1 { "" } else { "s" },
                input.org
            ),
            "date": date,
            "threat_level_id": "2",
            "analysis": "1",
            "distribution": "0",
            "published": false,
            "timestamp": now.to_string(),
            "Orgc": {"name": input.org, "uuid": org_uuid},
            "Tag": event_tags,
            "Attribute": attributes,
        }
    })
}
