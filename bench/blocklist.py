#!/usr/bin/env python3
"""Benchmark `orbwatch export blocklist` on a large generated feed.

Generates N seeded indicators (public IPv4 /32s from /8s that hold no
guarded or allowlisted range, 1 % of them /24s, plus 2 % IPv6 /128s), then
times, in the same run:
  * orbwatch export blocklist --target nftables (release build), and
  * the peer baseline: Python's ipaddress.collapse_addresses on the same
    list (what most hand-written converters use),
and checks that both give the same number of entries.

    python3 bench/blocklist.py                # 1,000,000 indicators
    python3 bench/blocklist.py --count 100000
"""

import argparse
import ipaddress
import os
import random
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# /8s with no special-purpose range, resolver or root server in them.
OCTETS = [5, 31, 37, 45, 46, 62, 77, 91, 103, 185]


def generate(path, count, seed):
    rng = random.Random(seed)
    with open(path, "w") as f:
        for i in range(count):
            r = rng.random()
            if r < 0.02:
                f.write("2a0%x:%x:%x::%x\n" % (rng.randrange(1, 10), rng.randrange(65536),
                                               rng.randrange(65536), rng.randrange(65536)))
            elif r < 0.03:
                f.write("%d.%d.%d.0/24\n" % (rng.choice(OCTETS), rng.randrange(256), rng.randrange(256)))
            else:
                f.write("%d.%d.%d.%d\n" % (rng.choice(OCTETS), rng.randrange(256),
                                            rng.randrange(256), rng.randrange(256)))


def timed(cmd):
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit("failed: %s\n%s" % (" ".join(cmd), p.stderr))
    rss_kb = int(p.stderr.strip().splitlines()[-1])
    return wall, rss_kb / 1024, p.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--bin", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "orbwatch"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        feed = os.path.join(d, "feed.txt")
        generate(feed, a.count, a.seed)
        out = os.path.join(d, "out.nft")
        wall, rss, err = timed([a.bin, "--db", os.path.join(d, "none.db"), "export", "blocklist",
                                "--target", "nftables", "--feed", feed, "--at", "2026-01-01",
                                "-o", out])
        entries = sum(1 for l in open(out) if l.startswith("\t\t\t"))
        t = time.perf_counter()
        nets = [ipaddress.ip_network(l.strip()) for l in open(feed)]
        v4 = list(ipaddress.collapse_addresses(n for n in nets if n.version == 4))
        v6 = list(ipaddress.collapse_addresses(n for n in nets if n.version == 6))
        py = time.perf_counter() - t
        print("| tool | indicators | wall s | peak RSS MB | entries |")
        print("|---|---:|---:|---:|---:|")
        print("| orbwatch export blocklist (nftables) | %d | %.2f | %.0f | %d |" % (a.count, wall, rss, entries))
        print("| python ipaddress.collapse_addresses | %d | %.2f |  | %d |" % (a.count, py, len(v4) + len(v6)))
        print("entries agree:", "yes" if entries == len(v4) + len(v6) else "NO")


if __name__ == "__main__":
    main()
