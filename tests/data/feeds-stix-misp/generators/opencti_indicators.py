import csv, io, uuid, random
# Writes ../opencti-indicators.csv (deterministic: fixed seed). Run from this folder.
random.seed(1117)
def uid(): return str(uuid.UUID(int=random.getrandbits(128), version=4))
rows = []
def ind(pattern, name, vf, vu, conf, score, labels, marking, desc, refs="", ptype="stix",
        revoked="false", entity="Indicator", obs_type="IPv4-Addr"):
    sid = "indicator--" + uid()
    rows.append({
        "confidence": str(conf), "created": "2024-02-20T10:00:00.000Z",
        "createdBy": "Example CERT", "created_at": "2024-02-20T10:00:05.120Z",
        "description": desc, "entity_type": entity, "externalReferences": refs,
        "id": uid(), "indicator_types": "malicious-activity", "killChainPhases": "",
        "lang": "en", "modified": "2024-02-21T08:00:00.000Z", "name": name,
        "objectLabel": labels, "objectMarking": marking, "pattern": pattern,
        "pattern_type": ptype, "pattern_version": "2.1", "revoked": revoked,
        "spec_version": "2.1", "standard_id": sid if entity == "Indicator" else "ipv4-addr--" + uid(),
        "updated_at": "2024-02-21T08:00:01.000Z", "valid_from": vf, "valid_until": vu,
        "x_mitre_platforms": "", "x_opencti_detection": "true",
        "x_opencti_main_observable_type": obs_type, "x_opencti_score": str(score),
    })
REF = "https://attack.mitre.org/techniques/T1090/003/,https://cert.example/advisories/2024-017"
ind("[ipv4-addr:value = '192.0.2.10']", "192.0.2.10", "2024-02-20T10:00:00.000Z",
    "2024-05-20T10:00:00.000Z", 85, 80, "relay,apt-example", "TLP:GREEN",
    "Relay node reported by partner; staging via update.relay-mirror.example", REF)
ind("[ipv4-addr:value = '192.0.2.11']", "192.0.2.11", "2024-02-20T10:00:00.000Z",
    "2024-05-20T10:00:00.000Z", 85, 80, "relay", "TLP:AMBER,PAP:GREEN", "Relay node", REF)
ind("[ipv4-addr:value = '192.0.2.10']", "192.0.2.10", "2024-06-01T00:00:00.000Z",
    "2024-07-01T00:00:00.000Z", 70, 60, "relay", "TLP:GREEN",
    "Same relay seen again in June", REF)
ind("[domain-name:value = 'login-portal.relay-ops.example']", "login-portal.relay-ops.example",
    "2024-02-20T10:00:00.000Z", "2024-08-20T10:00:00.000Z", 60, 50, "phishing",
    "TLP:CLEAR", "Credential phishing portal, see https://urlscan.example/result/abc/",
    REF, obs_type="Domain-Name")
ind("[url:value = 'http://198.51.100.77/gate.php']", "http://198.51.100.77/gate.php",
    "2024-02-20T10:00:00.000Z", "", 75, 70, "c2", "TLP:GREEN", "", "", obs_type="Url")
ind("[file:hashes.'SHA-256' = '486ea46224d1bb4fb680f34f7c9ad96a8f24ec88be73ea8e5a6c65260e9cb8a7']",
    "payload", "2024-02-20T10:00:00.000Z", "", 90, 90, "", "TLP:GREEN", "", "",
    obs_type="StixFile")
ind("rule relay_bot { strings: $a = \"relay-ops.example\" condition: $a }", "YARA relay bot",
    "2024-02-20T10:00:00.000Z", "", 50, 50, "", "TLP:GREEN", "", "", ptype="yara",
    obs_type="StixFile")
ind("[ipv4-addr:value = '203.0.113.66']", "203.0.113.66", "2024-02-20T10:00:00.000Z",
    "", 50, 50, "", "TLP:GREEN", "Withdrawn: shared hosting", "", revoked="true")
ind("[ipv4-addr:value = '203.0.113.300']", "bad address", "2024-02-20T10:00:00.000Z",
    "", 50, 50, "", "TLP:GREEN", "", "")
ind("[ipv4-addr:value = '203.0.113.9'", "unterminated", "2024-02-20T10:00:00.000Z",
    "", 50, 50, "", "TLP:GREEN", "", "")
ind("[ipv4-addr:value = '203.0.113.8']", "inverted window", "2024-03-01T00:00:00.000Z",
    "2024-02-01T00:00:00.000Z", 50, 50, "", "TLP:GREEN", "", "")
ind("", "203.0.113.7", "", "", 50, 50, "", "TLP:GREEN", "An observable, not an indicator",
    "", ptype="", entity="IPv4-Addr")
headers = sorted(rows[0].keys())
out = io.StringIO()
w = csv.writer(out, delimiter=";", quotechar='"', quoting=csv.QUOTE_ALL)
w.writerow(headers)
for r in rows:
    w.writerow([r[h] for h in headers])
open("../opencti-indicators.csv", "w", newline="").write(out.getvalue())
print(out.getvalue()[:600])
