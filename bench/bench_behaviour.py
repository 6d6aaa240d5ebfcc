#!/usr/bin/env python3
"""Behaviour benchmark: the default hunt (behaviour detectors on) at scale.

Generates, with bench.py's generators and a seed, sshd syslog corpora of
1x and 3x the base size (the 3x corpus is three files of different seeds
on one clock: three times the days and the distinct sources, not three
copies; ISO 8601 stamps as Debian 12's rsyslog writes them), a
firewall (UFW) corpus and a Zeek conn.log corpus, and a feed of N
indicators. Then, in one run, times

    orbwatch hunt --feed FEED --format jsonl -o OUT --coverage COV FILES   (default: behaviour on)
    orbwatch hunt --feed FEED --no-behaviour ...                           (the IOC sweep, baseline)
    grepcidr -c -f FEED FILES                                              (IP matching alone, baseline)

and, for the 1x sshd corpus, the default hunt with max_observations set
to a cap (default 256 MB worth of observations) that forces spilling; the
findings must be byte-identical to the uncapped hunt.

Prints a table: wall s, MB/s, peak RSS (GNU time %M), observations and
spilled runs from the coverage, and the ratio of 3x to 1x time and RSS.

Usage: python3 bench/bench_behaviour.py [--size-mb 1024] [--indicators 100000]
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import bench  # noqa: E402  (the generators and the measuring helper)


def gen(path, fn, size, seed, hot, hit_rate, **kw):
    """Generate `path` unless it is there; returns what the generator
    returned (kept in `path.end` so a later run can continue from it)."""
    end = path + ".end"
    if os.path.exists(path) and os.path.getsize(path) >= size and os.path.exists(end):
        return json.load(open(end))
    if os.path.exists(path):
        os.remove(path)
    print(f"generating {path} ({size >> 20} MB, seed {seed}) …", file=sys.stderr)
    r = fn(path, size, random.Random(seed), hot, hit_rate, **kw)
    with open(end, "w") as f:
        json.dump(r, f)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=1024, help="base size of the sshd corpus (MB); the 3x corpus is three of these")
    ap.add_argument("--other-mb", type=int, default=1024, help="size of the firewall and conn corpora (MB)")
    ap.add_argument("--indicators", type=int, default=100000)
    ap.add_argument("--cap-mb", type=int, default=256, help="memory cap for the spilling run (MB of observations, 48 bytes each)")
    ap.add_argument("--hit-rate", type=float, default=0.005)
    ap.add_argument("--out", default=os.path.join(HERE, "out-behaviour"))
    ap.add_argument("--bin", default=None, help="orbwatch binary (default: build release)")
    ap.add_argument("--skip-3x", action="store_true")
    args = ap.parse_args()

    os.makedirs(args.out, exist_ok=True)
    for tool in ("grepcidr",):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} not found; install it (Debian: apt-get install grepcidr)")
    if not os.path.exists("/usr/bin/time"):
        sys.exit("bench: /usr/bin/time not found (Debian: apt-get install time)")
    binary = args.bin
    if binary is None:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "orbwatch"], cwd=ROOT, check=True)
        binary = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "orbwatch")

    feeds, hot = bench.write_feeds(args.out, 1, [args.indicators])
    feed = feeds[args.indicators]
    size = args.size_mb << 20
    sshd = [os.path.join(args.out, f"sshd-{i}.log") for i in (1, 2, 3)]
    # One clock across the three files (ISO 8601 stamps, from 2021-01-01):
    # the 3x corpus is three times the days of the 1x one, as months of
    # logs are, not three times as many sources on the same days.
    clock = 1609459200
    for i, p in enumerate(sshd):
        if i > 0 and args.skip_3x:
            break
        clock = gen(p, bench.gen_sshd, size, i + 1, hot, args.hit_rate, iso_start=clock) + 1
    fw = os.path.join(args.out, "fw.log")
    conn = os.path.join(args.out, "conn.log")
    gen(fw, bench.gen_fw, args.other_mb << 20, 11, hot, args.hit_rate)
    gen(conn, bench.gen_conn, args.other_mb << 20, 12, hot, args.hit_rate)
    spill = os.path.join(args.out, "spill")
    os.makedirs(spill, exist_ok=True)

    cases = [("sshd 1x", sshd[:1]), ("firewall (UFW)", [fw]), ("Zeek conn", [conn])]
    if not args.skip_3x:
        cases.insert(1, ("sshd 3x", sshd))
    cap_obs = (args.cap_mb << 20) // 48
    capcfg = os.path.join(args.out, "cap.toml")
    with open(capcfg, "w") as f:
        f.write(f"max_observations = {cap_obs}\n")

    rows = []
    outputs = {}
    for label, files in cases:
        mb = sum(os.path.getsize(f) for f in files) / 1e6
        variants = [("orbwatch hunt (behaviour on)", [])]
        if label == "sshd 1x":
            variants.append((f"orbwatch hunt, cap {args.cap_mb} MB (spills)", ["--behaviour-config", capcfg]))
        variants.append(("orbwatch hunt --no-behaviour", ["--no-behaviour"]))
        for name, extra in variants:
            cov = os.path.join(args.out, "cov.json")
            out = os.path.join(args.out, f"findings-{len(rows)}.jsonl")
            cmd = [binary, "-q", "hunt", "--year", "2021", "--feed", feed, "--format", "jsonl", "-o", out,
                   "--coverage", cov, "--spill-dir", spill, *extra, *files]
            w, rss, _, code = bench.run_measured(cmd)
            if code not in (0, 1):
                sys.exit(f"bench: orbwatch failed ({code}): {' '.join(cmd)}")
            c = json.load(open(cov))
            b = c.get("behaviour") or {}
            spilled = sum(1 for n in b.get("notes", []) if "sorted runs went to a temporary directory" in n)
            rows.append((label, mb, name, w, rss, b.get("observations", ""), "yes" if spilled else "no"))
            outputs[(label, name)] = open(out, "rb").read()
            os.remove(out)
        w, rss, text, _ = bench.run_measured(["grepcidr", "-c", "-f", feed, *files])
        rows.append((label, mb, "grepcidr -c (IP matching only)", w, rss, "", ""))
        if label == "sshd 1x":
            a = outputs[(label, "orbwatch hunt (behaviour on)")]
            b = outputs[(label, f"orbwatch hunt, cap {args.cap_mb} MB (spills)")]
            nl = a.count(b"\n")
            same = "the same" if a == b else "DIFFERENT"
            print(f"spilling run gives {same} findings ({nl} lines)", file=sys.stderr)

    print("| corpus | MB | command | wall s | MB/s | peak RSS MB | observations | spilled |")
    print("|---|---:|---|---:|---:|---:|---:|---|")
    for label, mb, name, w, rss, obs, sp in rows:
        obs_s = f"{obs:,}" if isinstance(obs, int) else obs
        print(f"| {label} | {mb:.0f} | {name} | {w:.2f} | {mb / w:.0f} | {rss / 1e6:.0f} | {obs_s} | {sp} |")
    one = [r for r in rows if r[0] == "sshd 1x" and r[2] == "orbwatch hunt (behaviour on)"]
    three = [r for r in rows if r[0] == "sshd 3x" and r[2] == "orbwatch hunt (behaviour on)"]
    if one and three:
        print()
        print(f"3x / 1x: time {three[0][3] / one[0][3]:.2f}x, peak RSS {three[0][4] / one[0][4]:.2f}x")


if __name__ == "__main__":
    main()
