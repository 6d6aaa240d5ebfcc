import json, uuid, random
# Writes ../stix21-attack-lines.jsonl (deterministic: fixed seed). Run from this folder.
random.seed(11)
def uid(): return str(uuid.UUID(int=random.getrandbits(128), version=4))
IDENT = "identity--" + uid()
MARK_GREEN = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"
T0 = "2024-03-04T09:15:00.000Z"

def attack_pattern(tid, name, paragraphs, n_refs):
    desc = []
    for i in range(paragraphs):
        desc.append(
            f"Procedure example {i+1} for {name}: the operators chained relays through compromised "
            f"small-office routers before reaching the victim, as described at "
            f"https://attack.mitre.org/techniques/{tid}/ and in the vendor write-up "
            f"hxxps://research-blog.example/{tid.lower()}/part-{i+1}. Relay hop {i+1} answered on "
            f"198.18.{i % 250}.{(i * 7) % 250} (a benchmarking address used here as an example) and "
            f"proxied traffic for update-{i}.relay-docs.example. (Citation: Example Report {i+1})")
    refs = [{"source_name": "mitre-attack", "external_id": tid,
             "url": f"https://attack.mitre.org/techniques/{tid.replace('.', '/')}/"}]
    for i in range(n_refs):
        refs.append({"source_name": f"Example Report {i+1}",
                     "description": f"Example vendor. (2023). Relay networks, part {i+1}.",
                     "url": f"https://reports.vendor-intel.example/relay/{i+1}.html"})
    return {
        "type": "attack-pattern", "spec_version": "2.1", "id": "attack-pattern--" + uid(),
        "created": "2020-03-14T23:23:41.770Z", "modified": "2023-10-02T00:41:11.224Z",
        "created_by_ref": IDENT, "name": name, "description": "\n\n".join(desc),
        "kill_chain_phases": [{"kill_chain_name": "mitre-attack", "phase_name": "command-and-control"}],
        "external_references": refs, "object_marking_refs": [MARK_GREEN],
        "x_mitre_domains": ["enterprise-attack"], "x_mitre_version": "2.1",
        "x_mitre_platforms": ["Linux", "macOS", "Windows", "Network"], "x_mitre_is_subtechnique": True,
    }

lines = []
big = attack_pattern("T1090.003", "Multi-hop Proxy", 52, 20)
lines.append(json.dumps(big, sort_keys=True))          # sorted keys: "type" comes last
lines.append(json.dumps({"type": "identity", "spec_version": "2.1", "id": IDENT, "created": T0,
    "modified": T0, "name": "Example Relay Research", "identity_class": "organization"}))
for tid, name in [("T1584.008", "Network Devices"), ("T1133", "External Remote Services"),
                  ("T1110.003", "Password Spraying"), ("T1021.004", "SSH"), ("T1505.003", "Web Shell")]:
    lines.append(json.dumps(attack_pattern(tid, name, 20, 6)))
IS = "intrusion-set--" + uid()
lines.append(json.dumps({"type": "intrusion-set", "spec_version": "2.1", "id": IS, "created": T0,
    "modified": T0, "name": "Example Relay Actor",
    "description": "Operates relay boxes; see https://actor-profile.example/ and 203.0.113.250.",
    "external_references": [{"source_name": "vendor", "url": "https://actor-profile.example/relay"}]}))
MAL = "malware--" + uid()
lines.append(json.dumps({"type": "malware", "spec_version": "2.1", "id": MAL, "created": T0,
    "modified": T0, "name": "ExampleRelayBot", "is_family": True,
    "description": "Downloads its payload from hxxp://payload-mirror.example/bot.mips."}))
inds = []
def indicator(pattern, name, vf, vu=None, conf=None, types=("malicious-activity",)):
    o = {"type": "indicator", "spec_version": "2.1", "id": "indicator--" + uid(), "created": T0,
         "modified": T0, "created_by_ref": IDENT, "name": name,
         "description": "Observed relaying SSH logins; details at https://attack.mitre.org/techniques/T1090/003/",
         "indicator_types": list(types), "pattern": pattern, "pattern_type": "stix",
         "pattern_version": "2.1", "valid_from": vf, "object_marking_refs": [MARK_GREEN]}
    if vu: o["valid_until"] = vu
    if conf is not None: o["confidence"] = conf
    inds.append(o["id"])
    return o
lines.append(json.dumps(indicator("[ipv4-addr:value = '192.0.2.41']", "Relay node 1",
    "2024-01-10T00:00:00Z", "2024-04-10T00:00:00Z", 80, ("anonymization",))))
lines.append(json.dumps(indicator("[ipv4-addr:value = '198.51.100.42' OR ipv4-addr:value = '198.51.100.43']",
    "Relay nodes 2 and 3", "2024-02-01T00:00:00Z", None, 60, ("compromised",))))
lines.append(json.dumps(indicator("[domain-name:value = 'c2.relay-ops.example']", "C2 domain",
    "2024-01-15T00:00:00Z", "2024-06-15T00:00:00Z", 90)))
lines.append(json.dumps(indicator("[file:hashes.'SHA-256' = '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824']",
    "ExampleRelayBot sample", "2024-01-15T00:00:00Z")))
yara = indicator("rule x { condition: true }", "YARA rule", "2024-01-15T00:00:00Z")
yara["pattern_type"] = "yara"; yara.pop("pattern_version")
lines.append(json.dumps(yara))
for i, (target) in enumerate([IS, IS, IS, MAL]):
    lines.append(json.dumps({"type": "relationship", "spec_version": "2.1", "id": "relationship--" + uid(),
        "created": T0, "modified": T0, "relationship_type": "indicates", "source_ref": inds[i],
        "target_ref": target}))
lines.append(json.dumps({"type": "relationship", "spec_version": "2.1", "id": "relationship--" + uid(),
    "created": T0, "modified": T0, "relationship_type": "uses", "source_ref": IS,
    "target_ref": json.loads(lines[0])["id"]}))
open("../stix21-attack-lines.jsonl", "w").write("\n".join(lines) + "\n")
print([len(l) for l in lines])
