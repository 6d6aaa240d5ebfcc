#!/usr/bin/env python3
"""`orbwatch feed add` benchmark (issue 19): seconds and peak RSS.

Writes feed-N.txt (N random public IPv4 addresses, the same seeded
sequence as bench.py's feeds) and, optionally, feed-N.csv (the same
addresses as a CSV with a header and first-seen, confidence and tag
columns), then stores each into a fresh store with

    orbwatch --db OUT/store-K.db feed add FILE --name bench

under GNU time (`%e` wall, `%M` peak RSS), `--runs` times. With
`--baseline BIN` the runs alternate between the two binaries (baseline,
candidate, baseline, …), so that both see the same load on a shared
machine. The store is removed after each run. Every run must report all
N indicators loaded, else the benchmark fails.

Usage: python3 bench/bench_feed_add.py --bin target/release/orbwatch
           [--baseline OLD_BIN] [--n 10000000] [--runs 3] [--csv]
See bench/README.md.
"""

import argparse
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench import feed_sequence, ip_str, write_feeds  # noqa: E402


def write_csv(path, seed, n):
    """The first n addresses of the feed sequence as a CSV feed."""
    gen = feed_sequence(seed)
    with open(path, "w") as f:
        f.write("ip,first_seen,confidence,tags\n")
        for i in range(n):
            day = 1 + i % 28
            f.write(f"{ip_str(next(gen))},2026-11-{day:02d},{50 + i % 50},scanner\n")


def run_add(binary, feed, db, extra):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    p = subprocess.run(
        ["/usr/bin/time", "-f", "__TIME__ %e %M %U %S", binary, "--db", db, "feed", "add", feed,
         "--name", "bench", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = rss_kb = cpu = None
    for line in p.stderr.splitlines():
        if line.startswith("__TIME__ "):
            _, w, r, u, s = line.split()
            wall, rss_kb, cpu = float(w), int(r), float(u) + float(s)
    if p.returncode != 0:
        sys.exit(f"{binary} feed add {feed} failed ({p.returncode}):\n{p.stderr}")
    m = re.search(r": (\d+) indicators?", p.stdout)
    loaded = int(m.group(1)) if m else -1
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    return wall, cpu, rss_kb // 1024, loaded


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(HERE), "target", "release", "orbwatch"))
    ap.add_argument("--baseline", help="another orbwatch binary, run alternately with --bin")
    ap.add_argument("--n", type=int, default=10_000_000, help="addresses in the feed")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--csv", action="store_true", help="also time the same addresses as a CSV feed")
    ap.add_argument("--out", default=os.path.join(HERE, "out"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    feeds = [(os.path.join(args.out, f"feed-{args.n}.txt"), "plain", [])]
    if not os.path.exists(feeds[0][0]):
        print(f"writing {feeds[0][0]} …", file=sys.stderr)
        write_feeds(args.out, args.seed, [args.n])
    if args.csv:
        csv = os.path.join(args.out, f"feed-{args.n}.csv")
        if not os.path.exists(csv):
            print(f"writing {csv} …", file=sys.stderr)
            write_csv(csv, args.seed, args.n)
        feeds.append((csv, "csv", []))

    binaries = [("candidate", args.bin)]
    if args.baseline:
        binaries.insert(0, ("baseline", args.baseline))
    db = os.path.join(args.out, "feed-add.db")
    print("| feed | indicators | binary | run | wall s | user+sys CPU s | peak RSS MB | loaded |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for path, kind, extra in feeds:
        for run in range(1, args.runs + 1):
            for label, binary in binaries:
                wall, cpu, rss, loaded = run_add(binary, path, db, extra)
                if loaded != args.n:
                    sys.exit(f"{label} loaded {loaded} of {args.n} indicators from {path}")
                print(f"| {kind} | {args.n:,} | {label} | {run} | {wall:.2f} | {cpu:.2f} | {rss} | {loaded:,} |",
                      flush=True)


if __name__ == "__main__":
    main()
