#!/usr/bin/env python3
"""Load benchmark of `orbwatch serve` (issue 14's targets).

- The findings list: `GET /api/v1/findings?limit=100` under a steady 200
  requests/s for 20 s (oha), on a store of 100,000 findings: p50, p99.
- An EDL of 1,000,000 entries: the first pull (built) and the next ones
  (served from the cache until the store changes).

The store is made by the real commands: `orbwatch hunt` of the bundled
logs with the CERT-FR feed gives a real finding, which is copied 100,000
times with new ids, sources and suppression keys (written with sqlite3 in
the store's own table, as `hunt` writes them); `orbwatch feed add` stores a
feed of 1,000,000 random public IPv4 addresses. Release build; oha from
crates.io (`cargo install oha`). `.ci/run` does not run it.

    python3 bench/bench_serve.py [--findings 100000] [--edl 1000000]

The binary is `$CARGO_TARGET_DIR/release/orbwatch` (else `target/`),
built first; `ORBWATCH_BIN=path` runs that binary as it is instead (to
measure an older build). `OHA=path` names oha when it is not on PATH.
"""

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
BIN = os.environ.get("ORBWATCH_BIN") or os.path.join(TARGET, "release", "orbwatch")
OHA = os.environ.get("OHA", "oha")


def run(*args, **kw):
    return subprocess.run([BIN, *args], check=True, capture_output=True, text=True, **kw)


def public_ipv4(rng):
    while True:
        a = rng.randrange(1, 224)
        if a in (10, 100, 127, 169, 172, 192, 198, 203):
            continue
        return f"{a}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def seed_findings(db, n):
    """Copy the hunt's first finding n times with new ids and sources."""
    c = sqlite3.connect(db)
    row = c.execute(
        "SELECT hunt_id, kind, first_seen, last_seen, count, dst_ip, indicator, feed, "
        "in_window, severity, score, finding_json FROM findings ORDER BY row LIMIT 1"
    ).fetchone()
    hunt, kind, first, last, count, dst, _ind, feed, inw, sev, score, js = row
    base = json.loads(js)
    rng = random.Random(14)
    sevs = ["info", "low", "medium", "high", "critical"]
    rows = []
    for i in range(n):
        src = public_ipv4(rng)
        f = dict(base)
        f["id"] = f"{i:016x}"
        f["src_ip"] = src
        f["indicator"] = src
        f["matched_value"] = src
        f["severity"] = sevs[i % 5]
        key = f"ioc|{src}|{dst or '-'}"
        rows.append((hunt, f["id"], kind, first, last, count, src, dst, src, feed, inw,
                     f["severity"], score, key, json.dumps(f)))
    c.executemany(
        "INSERT INTO findings (hunt_id, id, kind, first_seen, last_seen, count, src_ip, dst_ip, "
        "indicator, feed, in_window, severity, score, suppress_key, finding_json) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        rows,
    )
    c.commit()
    c.close()


def get(url, token, etag=None):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    if etag:
        req.add_header("If-None-Match", etag)
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            body = r.read()
            return r.status, time.perf_counter() - t, body, r.headers.get("ETag")
    except urllib.error.HTTPError as e:
        return e.code, time.perf_counter() - t, b"", e.headers.get("ETag")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--findings", type=int, default=100_000)
    ap.add_argument("--edl", type=int, default=1_000_000)
    ap.add_argument("--rate", type=int, default=200)
    ap.add_argument("--seconds", type=int, default=20)
    a = ap.parse_args()
    if not os.environ.get("ORBWATCH_BIN"):
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "orbwatch"], cwd=ROOT,
                       check=True)
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "s.db")
        env = dict(os.environ, ORBWATCH_DB=db)
        run("hunt", "--year", "2021", "--feed",
            os.path.join(ROOT, "examples/feeds/CERTFR-2021-IOC-003-IOC.csv"),
            os.path.join(ROOT, "examples/logs"), "--format", "jsonl", env=env)
        seed_findings(db, a.findings)
        rng = random.Random(1)
        feed = os.path.join(d, "big.txt")
        with open(feed, "w") as f:
            for _ in range(a.edl):
                f.write(public_ipv4(rng) + "\n")
        run("feed", "add", feed, "--name", "big", env=env)
        token = run("token", "create", "--name", "bench", "--scope", "read",
                    env=env).stdout.strip()
        cfg = os.path.join(d, "serve.toml")
        with open(cfg, "w") as f:
            f.write('[edl.big]\nfeeds = ["big"]\nmax_prefix = 32\n')
        port = 18000 + os.getpid() % 1000
        srv = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}", "--config", cfg],
                               env=env, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    urllib.request.urlopen(base + "/healthz", timeout=1)
                    break
                except OSError:
                    time.sleep(0.1)
            st, first, body, etag = get(base + "/edl/big.txt", token)
            lines = body.count(b"\n")
            st2, again, _, _ = get(base + "/edl/big.txt", token)
            st3, notmod, _, _ = get(base + "/edl/big.txt", token, etag)
            print(f"EDL: {lines} entries ({len(body) / 1e6:.1f} MB): first pull {first:.2f} s "
                  f"(built, HTTP {st}), next {again * 1000:.0f} ms (cached, HTTP {st2}), "
                  f"If-None-Match {notmod * 1000:.0f} ms (HTTP {st3})")
            st, one, body, _ = get(base + "/api/v1/findings?limit=100", token)
            total = json.loads(body)["total"]
            _, again, _, _ = get(base + "/api/v1/findings?limit=100", token)
            print(f"findings list: {total} findings in the store, one page in {one * 1000:.0f} ms "
                  f"(first), {again * 1000:.0f} ms (next)")
            st, took, _, _ = get(base + "/metrics", token)
            print(f"/metrics: {took * 1000:.0f} ms (HTTP {st})")
            oha = subprocess.run(
                [OHA, "-z", f"{a.seconds}s", "-q", str(a.rate), "--no-tui",
                 "--output-format", "json", "-H", f"Authorization: Bearer {token}",
                 base + "/api/v1/findings?limit=100"],
                capture_output=True, text=True, check=True)
            r = json.loads(oha.stdout)
            pct = r["latencyPercentiles"]
            codes = r.get("statusCodeDistribution", {})
            print(f"findings list at {a.rate} req/s for {a.seconds} s: "
                  f"{r['summary']['requestsPerSec']:.0f} req/s done, "
                  f"p50 {pct['p50'] * 1000:.1f} ms, p99 {pct['p99'] * 1000:.1f} ms, "
                  f"status {codes}")
        finally:
            srv.terminate()
            srv.wait()


if __name__ == "__main__":
    sys.exit(main())
