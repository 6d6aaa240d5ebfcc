#!/usr/bin/env python3
"""Oracle for crates/orbwatch-capture/tests/evtx_oracle.rs: records per
EventID of every corpus EVTX file, read with the PyPI `evtx` package (a
binding of the same Rust parser; independent of orbwatch's mapping).

Usage: python3 evtx_counts.py CORPUS_EVTX_DIR > evtx_counts.json
"""
import json
import re
import sys
from pathlib import Path

from evtx import PyEvtxParser

out = {}
for f in sorted(Path(sys.argv[1]).glob("*.evtx")):
    counts = {}
    for r in PyEvtxParser(str(f)).records():
        m = re.search(r"<EventID[^>]*>(\d+)</EventID>", r["data"])
        counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    out[f.name] = dict(sorted(counts.items(), key=lambda kv: int(kv[0])))
json.dump(out, sys.stdout, indent=1, sort_keys=True)
print()
