#!/usr/bin/env python3
"""pcap -> flows throughput of orbwatch next to `tshark -q -z conv,ip`.

Generates a capture with gen_pcap.py (unless --pcap is given), warms the
page cache, then times in one run:
  - `orbwatch -q hunt --feed F --format jsonl -o /dev/null --coverage C PCAP`
    (end to end: decode, flows, DNS/TLS/HTTP events, IOC matching);
  - `capture_dump PCAP --quiet` (the orbwatch-capture reader alone);
  - `tshark -r PCAP -q -z conv,ip` (the peer: IP conversations).
Each orbwatch command runs --repeat times (best taken), tshark --tshark-repeat
times. Prints wall time, MB/s, packets/s, peak RSS and the speed-up over
tshark, and checks that orbwatch read every packet without error.

Usage: python3 bench/bench_pcap.py [--packets 2000000] [--pcap FILE]
Build first: cargo build --release -p orbwatch -p orbwatch-capture --examples
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def target_dir():
    return os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))


def timed(cmd):
    """Wall seconds and peak RSS (KiB, from GNU time) of a command."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        t0 = time.perf_counter()
        r = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", tf.name] + cmd,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wall = time.perf_counter() - t0
        if r.returncode not in (0, 1):
            sys.exit(f"{cmd[0]} failed ({r.returncode}): {r.stderr.decode()[-2000:]}")
        rss = int(tf.read().strip().splitlines()[-1])
    return wall, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=2_000_000)
    ap.add_argument("--pcap")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tshark-repeat", type=int, default=1)
    ap.add_argument("--workdir", default=tempfile.gettempdir())
    args = ap.parse_args()

    pcap = args.pcap or os.path.join(args.workdir, f"orbwatch-bench-{args.packets}.pcap")
    if not os.path.exists(pcap):
        subprocess.run([sys.executable, os.path.join(HERE, "gen_pcap.py"), pcap,
                        "--packets", str(args.packets)], check=True)
    size = os.path.getsize(pcap)
    feed = os.path.join(args.workdir, "orbwatch-bench-feed.txt")
    with open(feed, "w") as f:
        f.write("10.0.89.30\n203.0.113.5\n")
    cov = os.path.join(args.workdir, "orbwatch-bench-cov.json")
    orbwatch = os.path.join(target_dir(), "release", "orbwatch")
    dump = os.path.join(target_dir(), "release", "examples", "capture_dump")
    for b in (orbwatch, dump):
        if not os.path.exists(b):
            sys.exit(f"{b} not built: cargo build --release -p orbwatch -p orbwatch-capture --examples")

    with open(pcap, "rb") as f:  # warm the page cache
        while f.read(1 << 24):
            pass

    runs = {
        "orbwatch hunt": [orbwatch, "-q", "hunt", "--feed", feed, "--format", "jsonl",
                          "-o", "/dev/null", "--coverage", cov, pcap],
        "capture_dump": [dump, pcap, "--quiet"],
        "tshark conv,ip": ["tshark", "-r", pcap, "-q", "-z", "conv,ip"],
    }
    results = {}
    for name, cmd in runs.items():
        n = args.tshark_repeat if name.startswith("tshark") else args.repeat
        best = min((timed(cmd) for _ in range(n)), key=lambda x: x[0])
        results[name] = best

    c = json.load(open(cov))["inputs"][0]
    assert c["records"] > 0 and c["rejected"] == 0 and not c.get("error"), c
    packets = c["records"]
    base = results["tshark conv,ip"][0]
    print(f"capture {pcap}: {size / 1e6:.0f} MB, {packets} packets, "
          f"{c['parsed']} events ({c['notes'][0]})")
    print(f"{'command':<16} {'wall s':>8} {'MB/s':>8} {'Mpkt/s':>8} {'RSS MB':>8} {'vs tshark':>10}")
    for name, (wall, rss) in results.items():
        print(f"{name:<16} {wall:8.2f} {size / 1e6 / wall:8.0f} {packets / 1e6 / wall:8.2f} "
              f"{rss / 1024:8.0f} {base / wall:9.1f}x")


if __name__ == "__main__":
    main()
