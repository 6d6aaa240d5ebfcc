//! STIX 2.1 bundle of a hunt's findings, for CERTs and threat-intel
//! platforms (OpenCTI, MISP's STIX import).
//!
//! - one `identity`: the reporting organisation, `where_sighted_refs` of
//!   every sighting;
//! - the `indicator`s concerned. When the feed's own id for the indicator
//!   is a STIX indicator id (or a MISP attribute uuid, which MISP's STIX
//!   export turns into `indicator--<uuid>`), it is kept, so the platform
//!   links the sighting to the indicator it already has. Otherwise the id
//!   is a UUIDv5 of the feed and value, stable across re-runs;
//! - per IOC finding: `ipv4-addr`/`ipv6-addr` (and `domain-name`/`url`)
//!   SCOs with the deterministic ids STIX 2.1 prescribes, a
//!   `network-traffic` SCO between the two ends, an `observed-data` holding
//!   them, and a `sighting` of the indicator with `first_seen`,
//!   `last_seen`, `count`, `where_sighted_refs` and `observed_data_refs`;
//! - per behaviour finding: an `indicator` created for the source (its
//!   address), the `observed-data` of the source, a `based-on`
//!   relationship from the indicator to the observed data, and a sighting.
//!
//! Every id is derived from content, and `created`/`modified` are the
//! report's generation time, so the same findings and time give the same
//! bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use jiff::Timestamp;
use orbwatch_detect::Finding;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::model::{ReportFinding, ReportInput, kind_label};

/// The namespace STIX 2.1 (section 2.9) fixes for deterministic SCO ids.
const SCO_NAMESPACE: Uuid = Uuid::from_u128(0x00abedb4_aa42_466c_9c01_fed23315a9b7);

/// orbwatch's namespace for the ids of the objects it creates.
const ORBWATCH_NAMESPACE: Uuid = Uuid::from_u128(0x6f72_6277_6174_4368_8000_0000_0000_0001);

/// Values above this are capped in `count`/`number_observed` (STIX limit).
const STIX_MAX_COUNT: u64 = 999_999_999;

/// At most this many sources in one behaviour indicator's pattern.
const PATTERN_SOURCES: usize = 50;

fn oid(kind: &str, key: &str) -> String {
    format!(
        "{kind}--{}",
        Uuid::new_v5(&ORBWATCH_NAMESPACE, format!("{kind}|{key}").as_bytes())
    )
}

/// The id STIX 2.1 prescribes for an SCO: UUIDv5 in the SCO namespace of
/// the canonical JSON of its id-contributing properties.
fn sco_id(kind: &str, contributing: &Value) -> String {
    let canon = canonical_json(contributing);
    format!("{kind}--{}", Uuid::new_v5(&SCO_NAMESPACE, canon.as_bytes()))
}

/// JSON with object keys sorted at every level and no whitespace: the
/// JSON canonicalization (RFC 8785) of the strings, arrays and objects
/// SCO ids are made of. The workspace builds serde_json with
/// `preserve_order`, so plain `to_string` keeps insertion order instead.
fn canonical_json(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical_json(&map[k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(canonical_json).collect();
            format!("[{}]", parts.join(","))
        }
        other => other.to_string(),
    }
}

/// STIX timestamp: UTC with millisecond precision.
pub fn stix_time(t: Timestamp) -> String {
    format!(
        "{}.{:03}Z",
        t.strftime("%Y-%m-%dT%H:%M:%S"),
        t.subsec_millisecond()
    )
}

/// Quote a value inside a STIX pattern string literal.
fn lit(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

fn ip_object(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "ipv4-addr"
    } else {
        "ipv6-addr"
    }
}

/// The comparison expressions matching one indicator value, or `None` for
/// a type STIX patterns cannot express.
fn comparisons(type_name: &str, value: &str) -> Option<Vec<String>> {
    let one = |path: &str| Some(vec![format!("{path} = {}", lit(value))]);
    match type_name {
        "ipv4" => one("ipv4-addr:value"),
        "ipv6" => one("ipv6-addr:value"),
        "cidr" => {
            let net: IpNet = value.parse().ok()?;
            let obj = if net.addr().is_ipv4() {
                "ipv4-addr"
            } else {
                "ipv6-addr"
            };
            Some(vec![format!(
                "{obj}:value ISSUBSET {}",
                lit(&net.to_string())
            )])
        }
        "range" => {
            let (a, b) = value.split_once('-')?;
            let (a, b): (IpAddr, IpAddr) = (a.parse().ok()?, b.parse().ok()?);
            let nets: Vec<IpNet> = match (a, b) {
                (IpAddr::V4(a), IpAddr::V4(b)) => {
                    ipnet::Ipv4Subnets::new(a, b, 0).map(IpNet::V4).collect()
                }
                (IpAddr::V6(a), IpAddr::V6(b)) => {
                    ipnet::Ipv6Subnets::new(a, b, 0).map(IpNet::V6).collect()
                }
                _ => return None,
            };
            Some(
                nets.iter()
                    .map(|n| {
                        let obj = if n.addr().is_ipv4() {
                            "ipv4-addr"
                        } else {
                            "ipv6-addr"
                        };
                        format!("{obj}:value ISSUBSET {}", lit(&n.to_string()))
                    })
                    .collect(),
            )
        }
        "domain" => one("domain-name:value"),
        "url" => one("url:value"),
        "md5" => one("file:hashes.MD5"),
        "sha1" => one("file:hashes.'SHA-1'"),
        "sha256" => one("file:hashes.'SHA-256'"),
        "sha512" => one("file:hashes.'SHA-512'"),
        "cert-sha1" => one("x509-certificate:hashes.'SHA-1'"),
        "cert-sha256" => one("x509-certificate:hashes.'SHA-256'"),
        "cert-md5" => one("x509-certificate:hashes.MD5"),
        "cert-sha512" => one("x509-certificate:hashes.'SHA-512'"),
        _ => None,
    }
}

/// The STIX hash-algorithm name (vocabulary `hash-algorithm-ov`).
fn stix_hash_name(algo: &str) -> Option<&'static str> {
    match algo {
        "md5" => Some("MD5"),
        "sha1" => Some("SHA-1"),
        "sha256" => Some("SHA-256"),
        "sha512" => Some("SHA-512"),
        _ => None,
    }
}

/// Ids of the exported findings that the bundle leaves out because their
/// indicator type has no STIX pattern (none of the types orbwatch reads
/// today; kept so that a new type is reported, not dropped silently).
pub fn not_expressible(input: &ReportInput) -> Vec<String> {
    input
        .exported()
        .filter(|rf| {
            let f = &rf.finding;
            match &f.ioc {
                Some(i) => comparisons(&i.indicator_type, &i.indicator).is_none(),
                None => f.src_ip.is_none() && f.sources.is_empty(),
            }
        })
        .map(|rf| rf.finding.id.clone())
        .collect()
}

/// The indicator id to use: the feed's when it is a STIX indicator id or a
/// bare uuid (MISP attribute), else derived from feed and value.
fn indicator_id(feed: &str, value: &str, indicator_ref: Option<&str>) -> (String, bool) {
    if let Some(r) = indicator_ref.map(str::trim) {
        if let Some(u) = r.strip_prefix("indicator--")
            && Uuid::parse_str(u).is_ok()
        {
            return (r.to_ascii_lowercase(), true);
        }
        if r.len() == 36
            && let Ok(u) = Uuid::parse_str(r)
        {
            return (format!("indicator--{}", u.hyphenated()), true);
        }
    }
    (oid("indicator", &format!("{feed}|{value}")), false)
}

struct IndicatorAcc {
    feed: String,
    comparisons: BTreeSet<String>,
    names: BTreeSet<String>,
    confidence: Option<u8>,
    valid_from: Option<Timestamp>,
    valid_until: Option<Timestamp>,
    first_seen: Option<Timestamp>,
    actors: BTreeSet<String>,
    kept: bool,
    indicator_ref: Option<String>,
}

/// Build the bundle.
pub fn bundle(input: &ReportInput) -> Value {
    let now = stix_time(input.generated);
    let identity_id = oid("identity", &input.org);
    let mut objects: Vec<Value> = vec![json!({
        "type": "identity",
        "spec_version": "2.1",
        "id": identity_id,
        "created": now,
        "modified": now,
        "name": input.org,
        "identity_class": "organization",
        "description": "The organisation that ran the hunt and reports these sightings.",
    })];
    let mut indicators: BTreeMap<String, IndicatorAcc> = BTreeMap::new();
    let mut scos: BTreeMap<String, Value> = BTreeMap::new();
    let mut rest: Vec<Value> = Vec::new();

    for rf in input.shared() {
        let f = &rf.finding;
        let first = f.first_seen.or(f.last_seen).unwrap_or(input.generated);
        let last = f.last_seen.unwrap_or(first).max(first);
        // Observables: the two ends and the traffic between them.
        let mut refs: Vec<String> = Vec::new();
        let ip_ref = |ip: IpAddr, scos: &mut BTreeMap<String, Value>| -> String {
            let kind = ip_object(&ip);
            let value = ip.to_string();
            let id = sco_id(kind, &json!({ "value": value }));
            scos.entry(id.clone()).or_insert_with(
                || json!({"type": kind, "spec_version": "2.1", "id": id, "value": value}),
            );
            id
        };
        let (ind_id, od_label) = match &f.ioc {
            Some(ioc) => {
                // Types no STIX pattern expresses are listed by
                // [`not_expressible`]; the caller warns about them.
                let Some(cmp) = comparisons(&ioc.indicator_type, &ioc.indicator) else {
                    continue;
                };
                let (id, kept) =
                    indicator_id(&ioc.feed, &ioc.indicator, ioc.indicator_ref.as_deref());
                let acc = indicators
                    .entry(id.clone())
                    .or_insert_with(|| IndicatorAcc {
                        feed: ioc.feed.clone(),
                        comparisons: BTreeSet::new(),
                        names: BTreeSet::new(),
                        confidence: ioc.confidence,
                        valid_from: ioc.valid_from,
                        valid_until: ioc.valid_until,
                        first_seen: Some(first),
                        actors: BTreeSet::new(),
                        kept,
                        indicator_ref: ioc.indicator_ref.clone(),
                    });
                acc.comparisons.extend(cmp);
                acc.names.insert(ioc.indicator.clone());
                acc.first_seen = acc.first_seen.min(Some(first));
                acc.actors.extend(ioc.tags.actors.iter().cloned());
                match ioc.matched_field.as_str() {
                    "domain" => {
                        let v = ioc.matched_value.clone();
                        let id = sco_id("domain-name", &json!({ "value": v }));
                        scos.entry(id.clone()).or_insert_with(|| {
                            json!({"type": "domain-name", "spec_version": "2.1", "id": id, "value": v})
                        });
                        refs.push(id);
                    }
                    "url" => {
                        let v = ioc.matched_value.clone();
                        let id = sco_id("url", &json!({ "value": v }));
                        scos.entry(id.clone()).or_insert_with(
                            || json!({"type": "url", "spec_version": "2.1", "id": id, "value": v}),
                        );
                        refs.push(id);
                    }
                    _ => {
                        // A hash: the file (or certificate) it names.
                        let (obj, algo) = match ioc.indicator_type.split_once('-') {
                            Some(("cert", a)) => ("x509-certificate", a),
                            _ => ("file", ioc.indicator_type.as_str()),
                        };
                        if let Some(name) = stix_hash_name(algo) {
                            let hashes = json!({ name: ioc.matched_value });
                            let id = sco_id(obj, &json!({ "hashes": hashes }));
                            scos.entry(id.clone()).or_insert_with(|| {
                                json!({"type": obj, "spec_version": "2.1", "id": id, "hashes": hashes})
                            });
                            refs.push(id);
                        }
                    }
                }
                (id, format!("sighting of {} ({})", ioc.indicator, ioc.feed))
            }
            None => {
                let mut sources: Vec<IpAddr> = f.sources.clone();
                if let Some(s) = f.src_ip
                    && !sources.contains(&s)
                {
                    sources.insert(0, s);
                }
                if sources.is_empty() {
                    continue;
                }
                let cmp: BTreeSet<String> = sources
                    .iter()
                    .take(PATTERN_SOURCES)
                    .map(|ip| format!("{}:value = {}", ip_object(ip), lit(&ip.to_string())))
                    .collect();
                let key = format!(
                    "{}|{}",
                    f.kind.as_str(),
                    sources
                        .iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                );
                let id = oid("indicator", &key);
                let acc = indicators
                    .entry(id.clone())
                    .or_insert_with(|| IndicatorAcc {
                        feed: String::new(),
                        comparisons: cmp,
                        names: BTreeSet::new(),
                        confidence: f.score,
                        valid_from: Some(first),
                        valid_until: None,
                        first_seen: Some(first),
                        actors: BTreeSet::new(),
                        kept: false,
                        indicator_ref: None,
                    });
                acc.names
                    .insert(format!("{} source {}", kind_label(f.kind), sources[0]));
                (id, format!("{} from {}", kind_label(f.kind), sources[0]))
            }
        };
        let src = f.src_ip.map(|ip| ip_ref(ip, &mut scos));
        let dst = f.dst_ip.map(|ip| ip_ref(ip, &mut scos));
        if f.ioc.is_none() {
            for s in f.sources.iter().take(PATTERN_SOURCES) {
                let id = ip_ref(*s, &mut scos);
                if !refs.contains(&id) {
                    refs.push(id);
                }
            }
        }
        if src.is_some() || dst.is_some() {
            let v6 = f.src_ip.or(f.dst_ip).is_some_and(|ip| ip.is_ipv6());
            let mut contributing = serde_json::Map::new();
            contributing.insert(
                "protocols".into(),
                json!([if v6 { "ipv6" } else { "ipv4" }]),
            );
            if let Some(s) = &src {
                contributing.insert("src_ref".into(), json!(s));
            }
            if let Some(d) = &dst {
                contributing.insert("dst_ref".into(), json!(d));
            }
            let contributing = Value::Object(contributing);
            let nt_id = sco_id("network-traffic", &contributing);
            let mut nt = contributing.clone();
            nt["type"] = json!("network-traffic");
            nt["spec_version"] = json!("2.1");
            nt["id"] = json!(nt_id);
            scos.entry(nt_id.clone()).or_insert(nt);
            for r in [src, dst].into_iter().flatten() {
                if !refs.contains(&r) {
                    refs.push(r);
                }
            }
            refs.push(nt_id);
        }
        // An address matched where the record gives no roles (the text
        // decoder): the address itself is the observable.
        if let Some(ioc) = &f.ioc
            && let Ok(ip) = ioc.matched_value.parse::<IpAddr>()
        {
            let id = ip_ref(ip, &mut scos);
            if !refs.contains(&id) {
                refs.push(id);
            }
        }
        let count = f.count.min(STIX_MAX_COUNT);
        // observed-data needs at least one object: without any, the
        // sighting goes out without observed_data_refs.
        let od_id = (!refs.is_empty()).then(|| oid("observed-data", &f.id));
        if let Some(od_id) = &od_id {
            rest.push(json!({
                "type": "observed-data",
                "spec_version": "2.1",
                "id": od_id,
                "created_by_ref": identity_id,
                "created": now,
                "modified": now,
                "first_observed": stix_time(first),
                "last_observed": stix_time(last),
                "number_observed": count.max(1),
                "object_refs": refs,
                "labels": labels(rf),
            }));
            if f.ioc.is_none() {
                rest.push(json!({
                    "type": "relationship",
                    "spec_version": "2.1",
                    "id": oid("relationship", &format!("{ind_id}|{od_id}")),
                    "created_by_ref": identity_id,
                    "created": now,
                    "modified": now,
                    "relationship_type": "based-on",
                    "source_ref": ind_id,
                    "target_ref": od_id,
                }));
            }
        }
        let mut sighting = json!({
            "type": "sighting",
            "spec_version": "2.1",
            "id": oid("sighting", &f.id),
            "created_by_ref": identity_id,
            "created": now,
            "modified": now,
            "first_seen": stix_time(first),
            "last_seen": stix_time(last),
            "count": count,
            "sighting_of_ref": ind_id,
            "where_sighted_refs": [identity_id],
            "description": description(rf, &od_label),
            "labels": labels(rf),
            "external_references": [{
                "source_name": "orbwatch",
                "external_id": f.id,
                "description": "orbwatch finding id (`orbwatch triage ID`)",
            }],
        });
        if let Some(od_id) = od_id {
            sighting["observed_data_refs"] = json!([od_id]);
        }
        // A sighting's confidence is how sure the match is: for an IOC
        // match the feed's confidence (its score says how serious it is,
        // and travels as the severity label and the description).
        let confidence = match &f.ioc {
            Some(i) => i.confidence.or(f.score),
            None => f.score,
        };
        if let Some(c) = confidence {
            sighting["confidence"] = json!(c.min(100));
        }
        rest.push(sighting);
    }

    for (id, acc) in &indicators {
        let pattern = format!(
            "[{}]",
            acc.comparisons
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(" OR ")
        );
        let valid_from = acc.valid_from.or(acc.first_seen).unwrap_or(input.generated);
        let behaviour = acc.feed.is_empty();
        let mut ind = json!({
            "type": "indicator",
            "spec_version": "2.1",
            "id": id,
            "created": now,
            "modified": now,
            "name": acc.names.iter().cloned().collect::<Vec<_>>().join(", "),
            "indicator_types": [if behaviour { "anomalous-activity" } else { "malicious-activity" }],
            "pattern": pattern,
            "pattern_type": "stix",
            "pattern_version": "2.1",
            "valid_from": stix_time(valid_from),
        });
        if let Some(u) = acc.valid_until.filter(|u| *u > valid_from) {
            ind["valid_until"] = json!(stix_time(u));
        }
        if let Some(c) = acc.confidence {
            ind["confidence"] = json!(c.min(100));
        }
        if !acc.kept {
            ind["created_by_ref"] = json!(identity_id);
        }
        let mut labels: Vec<String> = Vec::new();
        if !behaviour {
            labels.push(format!("feed:{}", acc.feed));
        }
        labels.extend(acc.actors.iter().map(|a| format!("actor:{a}")));
        if !labels.is_empty() {
            ind["labels"] = json!(labels);
        }
        if behaviour {
            ind["description"] = json!(
                "Created by orbwatch for the source of a behaviour finding (see the sighting)."
            );
        } else {
            ind["description"] = json!(format!(
                "Indicator of the feed {} that orbwatch sighted in this organisation's logs.{}",
                acc.feed,
                if acc.kept {
                    " The id is the feed's own; the pattern lists only the values sighted."
                } else {
                    ""
                }
            ));
            if let Some(r) = &acc.indicator_ref {
                ind["external_references"] = json!([{
                    "source_name": acc.feed,
                    "external_id": r,
                }]);
            }
        }
        objects.push(ind);
    }
    objects.extend(scos.into_values());
    objects.extend(rest);
    // TLP: the feeds' most restrictive marking, default amber, on every
    // object but the identity, with the marking's own definition.
    if objects.len() > 1 {
        let (tlp_id, tlp_def) = tlp_marking(&input.tlp());
        for o in objects.iter_mut().skip(1) {
            o["object_marking_refs"] = json!([tlp_id]);
        }
        objects.insert(1, tlp_def);
    }
    let key: Vec<&str> = input.shared().map(|f| f.finding.id.as_str()).collect();
    json!({
        "type": "bundle",
        "id": oid("bundle", &format!("{}|{}|{}", input.org, now, key.join(","))),
        "objects": objects,
    })
}

/// The STIX 2.1 TLP marking definition of a TLP name (TLP 2.0 names
/// map to the 2.1 definitions: clear is white, amber+strict is amber).
/// Ids and contents are the ones the STIX 2.1 specification fixes (§7.2.1.4).
fn tlp_marking(tlp: &str) -> (&'static str, Value) {
    let (id, name, color) = match tlp {
        "clear" | "white" => (
            "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
            "TLP:WHITE",
            "white",
        ),
        "green" => (
            "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
            "TLP:GREEN",
            "green",
        ),
        "red" => (
            "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
            "TLP:RED",
            "red",
        ),
        _ => (
            "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
            "TLP:AMBER",
            "amber",
        ),
    };
    (
        id,
        json!({
            "type": "marking-definition",
            "spec_version": "2.1",
            "id": id,
            "created": "2017-01-20T00:00:00.000Z",
            "definition_type": "tlp",
            "name": name,
            "definition": {"tlp": color},
        }),
    )
}

fn labels(rf: &ReportFinding) -> Vec<String> {
    let f: &Finding = &rf.finding;
    let mut l = vec![format!("orbwatch:{}", f.kind.as_str())];
    if let Some(i) = &f.ioc {
        l.push(format!("direction:{}", i.direction.as_str()));
        l.push(
            if i.in_validity_window {
                "validity:inside"
            } else {
                "validity:outside"
            }
            .to_string(),
        );
    }
    if let Some(s) = f.severity {
        l.push(format!("severity:{}", s.as_str()));
    }
    l.push(format!("triage:{}", rf.status()));
    l
}

fn description(rf: &ReportFinding, what: &str) -> String {
    let f = &rf.finding;
    let mut d = format!("{what}: {} record(s)", f.count);
    if !f.reasons.is_empty() {
        d.push_str(". ");
        d.push_str(&f.reasons.join(" "));
    }
    if let Some(t) = &rf.triage {
        d.push_str(&format!(". Triage: {}", t.status));
        if let Some(n) = &t.note {
            d.push_str(&format!(" ({n})"));
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sco_ids_match_the_oasis_library() {
        // The ids the OASIS `stix2` library (3.x) computes for these.
        assert_eq!(
            sco_id("email-addr", &json!({"value": "john@example.com"})),
            "email-addr--7165e2a9-671f-585d-b1e1-ca59c671d934"
        );
        assert_eq!(
            sco_id("ipv4-addr", &json!({"value": "105.154.12.165"})),
            "ipv4-addr--ca9e6d01-c182-5ba2-9b5b-9e3f969c7a15"
        );
    }

    #[test]
    fn patterns() {
        assert_eq!(
            comparisons("ipv4", "1.2.3.4").unwrap(),
            vec!["ipv4-addr:value = '1.2.3.4'"]
        );
        assert_eq!(
            comparisons("range", "10.0.0.0-10.0.0.5").unwrap(),
            vec![
                "ipv4-addr:value ISSUBSET '10.0.0.0/30'",
                "ipv4-addr:value ISSUBSET '10.0.0.4/31'"
            ]
        );
        assert_eq!(
            comparisons("url", "http://x/a'b").unwrap(),
            vec![r"url:value = 'http://x/a\'b'"]
        );
        assert!(comparisons("ja3", "x").is_none());
    }

    #[test]
    fn ids_kept_from_feeds() {
        let (id, kept) = indicator_id(
            "f",
            "1.2.3.4",
            Some("indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"),
        );
        assert!(kept);
        assert_eq!(id, "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f");
        let (id, kept) = indicator_id("f", "1.2.3.4", Some("c1dc1b1d-7ea0-45ad-afea-d5751c3dbd95"));
        assert!(kept);
        assert_eq!(id, "indicator--c1dc1b1d-7ea0-45ad-afea-d5751c3dbd95");
        let (a, kept) = indicator_id("f", "1.2.3.4", Some("line 3"));
        assert!(!kept);
        assert_eq!(a, indicator_id("f", "1.2.3.4", None).0);
    }
}
