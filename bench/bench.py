#!/usr/bin/env python3
"""Hunt benchmark: orbwatch next to grepcidr and ripgrep, in one run.

Generates a deterministic corpus from a seed (sshd syslog, Zeek conn TSV,
iptables/UFW firewall lines) and nested feeds of N random IPv4 addresses
(each feed is a prefix of one seeded sequence, and the corpus only ever
uses addresses of the first 100, so every feed size matches the same
records). Then, for each feed size, runs

    orbwatch hunt --feed FEED --no-behaviour --format jsonl -o /dev/null
    grepcidr -c -f FEED FILE
    rg -c -F -w -f FEED FILE

checks that the numbers of matching records agree, and prints a table of
wall time, throughput and peak RSS, with ratios against grepcidr.

Usage: python3 bench/bench.py [--size-mb 1024] [--feeds 100,100000,10000000]
See bench/README.md.
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

USERS = ["root", "admin", "oracle", "test", "ubuntu", "pi", "git", "postgres", "deploy", "backup"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def ip_str(n):
    return f"{(n >> 24) & 255}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def feed_sequence(seed):
    """The seeded sequence of public-looking IPv4 addresses all feeds draw from."""
    rng = random.Random(seed * 7919 + 1)
    seen = set()
    while True:
        n = rng.getrandbits(32)
        first = n >> 24
        # Skip private, loopback, multicast and reserved space, and 10.x
        # which the corpus uses for internal hosts.
        if first in (0, 10, 127) or first >= 224 or (n >> 16) == 0xC0A8 or (n >> 20) == 0xAC1:
            continue
        if n in seen:
            continue
        seen.add(n)
        yield n


def write_feeds(out, seed, sizes):
    paths = {}
    biggest = max(sizes)
    gen = feed_sequence(seed)
    hot = []
    handles = {n: open(os.path.join(out, f"feed-{n}.txt"), "w") for n in sizes}
    for i in range(biggest):
        ip = next(gen)
        if i < 100:
            hot.append(ip)
        line = ip_str(ip) + "\n"
        for n, h in handles.items():
            if i < n:
                h.write(line)
    for n, h in handles.items():
        h.close()
        paths[n] = os.path.join(out, f"feed-{n}.txt")
    return paths, hot


def sshd_message(rng, src, accepted=True):
    """One sshd message about `src`: half failed passwords, then invalid
    users, accepted keys, closed connections and PAM failures. Without
    `accepted`, the accepted keys are failed passwords (an attacker's
    stream: the same draws, so the same stream otherwise)."""
    user = USERS[rng.randrange(len(USERS))]
    port = rng.randint(1024, 65535)
    k = rng.random()
    if k < 0.5:
        return f"Failed password for invalid user {user} from {src} port {port} ssh2"
    if k < 0.7:
        return f"Invalid user {user} from {src} port {port}"
    if k < 0.8 and not accepted:
        return f"Failed password for {user} from {src} port {port} ssh2"
    if k < 0.8:
        return f"Accepted publickey for {user} from {src} port {port} ssh2: RSA SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCD"
    if k < 0.9:
        return f"Connection closed by authenticating user {user} {src} port {port} [preauth]"
    return f"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={src}  user={user}"


def gen_sshd(path, size, rng, hot, hit_rate, iso_start=None):
    """sshd lines as in /var/log/auth.log: RFC 3164 (no year) by default;
    with `iso_start` (Unix seconds), rsyslog's ISO 8601 timestamps from
    that time on, as Debian 12 writes them, so consecutive files can
    continue one clock over more than a year. Returns the last second."""
    buf = []
    written = 0
    pid = 1000
    t = 0 if iso_start is None else iso_start
    while written < size:
        for _ in range(20000):
            t += rng.randint(0, 3)
            day = 1 + (t // 86400) % 28
            mon = MONTHS[(t // (86400 * 28)) % 12]
            hh, mm, ss = (t // 3600) % 24, (t // 60) % 60, t % 60
            if rng.random() < hit_rate:
                src = ip_str(hot[rng.randrange(len(hot))])
            else:
                src = ip_str(rng.getrandbits(32))
            pid += 1
            msg = sshd_message(rng, src)
            if iso_start is None:
                stamp = f"{mon} {day:2d} {hh:02d}:{mm:02d}:{ss:02d}"
            else:
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime(t))
            buf.append(f"{stamp} bastion sshd[{pid}]: {msg}\n")
        chunk = "".join(buf)
        buf.clear()
        with open(path, "a") as f:
            f.write(chunk)
        written += len(chunk)
    return t


def gen_conn(path, size, rng, hot, hit_rate):
    """Zeek conn.log TSV."""
    header = (
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#open\t2021-01-01-00-00-00\n"
        "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n"
        "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\n"
    )
    with open(path, "w") as f:
        f.write(header)
    written = len(header)
    ts = 1609459200.0
    while written < size:
        buf = []
        for _ in range(20000):
            ts += rng.random()
            internal = f"10.{rng.randint(0, 3)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            if rng.random() < hit_rate:
                ext = ip_str(hot[rng.randrange(len(hot))])
            else:
                ext = ip_str(rng.getrandbits(32))
            if rng.random() < 0.5:
                o, r = ext, internal
            else:
                o, r = internal, ext
            uid = "C" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") for _ in range(17))
            state = rng.choice(["S0", "SF", "REJ", "RSTO", "SH"])
            buf.append(
                f"{ts:.6f}\t{uid}\t{o}\t{rng.randint(1024, 65535)}\t{r}\t{rng.choice([22, 80, 443, 3389, 7777])}\ttcp\t-\t{rng.random():.6f}\t{rng.randint(0, 9999)}\t{rng.randint(0, 99999)}\t{state}\t-\t-\t0\tShADad\t{rng.randint(1, 50)}\t{rng.randint(40, 9999)}\t{rng.randint(0, 50)}\t{rng.randint(0, 99999)}\t-\n"
            )
        chunk = "".join(buf)
        with open(path, "a") as f:
            f.write(chunk)
        written += len(chunk)


def gen_fw(path, size, rng, hot, hit_rate):
    """Kernel iptables/UFW lines."""
    written = 0
    t = 0
    while written < size:
        buf = []
        for _ in range(20000):
            t += rng.randint(0, 2)
            day = 1 + (t // 86400) % 28
            hh, mm, ss = (t // 3600) % 24, (t // 60) % 60, t % 60
            src = ip_str(hot[rng.randrange(len(hot))]) if rng.random() < hit_rate else ip_str(rng.getrandbits(32))
            buf.append(
                f"Mar {day:2d} {hh:02d}:{mm:02d}:{ss:02d} gw kernel: [UFW BLOCK] IN=eth0 OUT= MAC=00:16:3e:5a:1b:2c:00:16:3e:00:00:01:08:00 SRC={src} DST=203.0.113.10 LEN=60 TOS=0x00 PREC=0x00 TTL=49 ID={rng.randint(1, 65535)} DF PROTO=TCP SPT={rng.randint(1024, 65535)} DPT={rng.choice([22, 23, 7777, 11288, 8080])} WINDOW=29200 RES=0x00 SYN URGP=0\n"
            )
        chunk = "".join(buf)
        with open(path, "a") as f:
            f.write(chunk)
        written += len(chunk)


def run_measured(cmd, stdout_path=None):
    """Run cmd; return (wall seconds, peak RSS bytes, stdout text, exit code).

    Peak RSS comes from GNU time (`/usr/bin/time -f %M`), which reports the
    measured process itself.
    """
    out = open(stdout_path, "w") if stdout_path else subprocess.PIPE
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "__RSS_KB__ %M", *cmd], stdout=out, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    if stdout_path:
        out.close()
    rss = 0
    for line in p.stderr.decode(errors="replace").splitlines():
        if line.startswith("__RSS_KB__ "):
            rss = int(line.split()[1]) * 1024
    text = "" if stdout_path else p.stdout.decode(errors="replace")
    return wall, rss, text, p.returncode


def grep_count(text):
    """Sum of `-c` counts (one file: a number; several: file:number)."""
    total = 0
    for line in text.splitlines():
        total += int(line.rsplit(":", 1)[-1])
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=1024, help="size of the sshd corpus (MB)")
    ap.add_argument("--extra-mb", type=int, default=128, help="size of each of the conn and firewall files (MB)")
    ap.add_argument("--feeds", default="100,100000,10000000", help="feed sizes")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hit-rate", type=float, default=0.005, help="share of records naming a feed address")
    ap.add_argument("--out", default=os.path.join(HERE, "out"))
    ap.add_argument("--bin", default=None, help="orbwatch binary (default: build release)")
    ap.add_argument("--rg-max", type=int, default=100, help="skip rg for feeds larger than this (rg with 100,000 -w patterns runs for minutes per 64 MB)")
    ap.add_argument("--runs", type=int, default=1, help="runs per tool (best is kept)")
    ap.add_argument("--regen", action="store_true", help="regenerate the corpus even if present")
    args = ap.parse_args()

    sizes = sorted(int(x) for x in args.feeds.split(","))
    os.makedirs(args.out, exist_ok=True)
    if not os.path.exists("/usr/bin/time"):
        sys.exit("bench: /usr/bin/time not found; install it (Debian: apt-get install time)")
    for tool in ("grepcidr", "rg"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} not found; install it (Debian: apt-get install grepcidr ripgrep)")

    binary = args.bin
    if binary is None:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "orbwatch"], cwd=ROOT, check=True)
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        binary = os.path.join(target, "release", "orbwatch")

    stamp = os.path.join(args.out, "corpus.json")
    want = {"seed": args.seed, "size_mb": args.size_mb, "extra_mb": args.extra_mb, "feeds": sizes, "hit_rate": args.hit_rate}
    have = json.load(open(stamp)) if os.path.exists(stamp) else None
    sshd = os.path.join(args.out, "sshd.log")
    conn = os.path.join(args.out, "conn.log")
    fw = os.path.join(args.out, "fw.log")
    if args.regen or have != want:
        print(f"generating corpus (seed {args.seed}) in {args.out} …", file=sys.stderr)
        for p in (sshd, conn, fw):
            if os.path.exists(p):
                os.remove(p)
        feeds, hot = write_feeds(args.out, args.seed, sizes)
        rng = random.Random(args.seed)
        gen_sshd(sshd, args.size_mb << 20, rng, hot, args.hit_rate)
        gen_conn(conn, args.extra_mb << 20, rng, hot, args.hit_rate)
        gen_fw(fw, args.extra_mb << 20, rng, hot, args.hit_rate)
        json.dump(want, open(stamp, "w"))
    feeds = {n: os.path.join(args.out, f"feed-{n}.txt") for n in sizes}

    # Feeds of 8 MiB and more are compiled once and read back from the
    # index cache afterwards; keep that cache inside the bench folder.
    os.environ["ORBWATCH_CACHE_DIR"] = os.path.join(args.out, "index-cache")
    shutil.rmtree(os.environ["ORBWATCH_CACHE_DIR"], ignore_errors=True)

    # Index build alone: the same hunt over an empty file, compiling the
    # feed (cold, --no-index-cache), then once to fill the cache, then
    # reading the compiled snapshot (warm).
    empty = os.path.join(args.out, "empty.log")
    open(empty, "w").close()
    build = {}
    for n in sizes:
        hunt_empty = [binary, "-q", "hunt", "--feed", feeds[n], "--no-behaviour", "--format", "jsonl", "-o", "/dev/null", empty]
        cold = min((run_measured(hunt_empty + ["--no-index-cache"]) for _ in range(args.runs)), key=lambda r: r[0])
        run_measured(hunt_empty)
        warm = min((run_measured(hunt_empty) for _ in range(args.runs)), key=lambda r: r[0])
        build[n] = (warm[0], warm[1], cold[0], cold[1])

    cases = [("sshd", sshd)] + [("conn+fw", None)]
    rows = []
    for label, path in cases:
        files = [path] if path else [conn, fw]
        mb = sum(os.path.getsize(f) for f in files) / 1e6
        for n in sizes:
            feed = feeds[n]
            results = {}
            cov = os.path.join(args.out, "coverage.json")

            def best(cmd, out=None):
                runs = [run_measured(cmd, out) for _ in range(args.runs)]
                return min(runs, key=lambda r: r[0])

            w, rss, _, code = best(
                [binary, "-q", "hunt", "--feed", feed, "--no-behaviour", "--format", "jsonl",
                 "-o", "/dev/null", "--coverage", cov, "--year", "2021", *files]
            )
            if code not in (0, 1):
                sys.exit(f"bench: orbwatch failed with exit code {code}")
            c = json.load(open(cov))
            matched = sum(i["matched_records"] for i in c["inputs"])
            results["orbwatch"] = (w, rss, matched)
            w, rss, text, _ = best(["grepcidr", "-c", "-f", feed, *files])
            results["grepcidr"] = (w, rss, grep_count(text))
            if n <= args.rg_max:
                w, rss, text, _ = best(["rg", "-c", "-F", "-w", "--no-filename", "-f", feed, *files])
                results["rg"] = (w, rss, grep_count(text))
            counts = {k: v[2] for k, v in results.items()}
            agree = len(set(counts.values())) == 1
            base = results["grepcidr"][0]
            for tool, (w, rss, cnt) in results.items():
                rows.append((label, f"{mb:.0f}", n, tool, w, mb / w, rss / 1e6, cnt, base / w, agree))
            if not agree:
                print(f"bench: MATCH COUNTS DIFFER for {label} with {n} indicators: {counts}", file=sys.stderr)

    print("| corpus | MB | indicators | tool | wall s | MB/s | scan MB/s (without index load) | wall s compiling the feed (no cache) | peak RSS MB | matching records | speed-up vs grepcidr | counts agree |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        scan = cold = ""
        if r[3] == "orbwatch":
            t = r[4] - build[r[2]][0]
            scan = f"{float(r[1]) / t:.0f}" if t > 0 else "-"
            cold = f"{r[4] - build[r[2]][0] + build[r[2]][2]:.2f}"
        print(f"| {r[0]} | {r[1]} | {r[2]:,} | {r[3]} | {r[4]:.2f} | {r[5]:.0f} | {scan} | {cold} | {r[6]:.0f} | {r[7]:,} | {r[8]:.2f}× | {'yes' if r[9] else 'NO'} |")
    print()
    print("| indicators | orbwatch index load s (empty input) | peak RSS MB | compiling the feed s (--no-index-cache) | peak RSS MB |")
    print("|---:|---:|---:|---:|---:|")
    for n in sizes:
        w, rss, cw, crss = build[n]
        print(f"| {n:,} | {w:.2f} | {rss / 1e6:.0f} | {cw:.2f} | {crss / 1e6:.0f} |")


if __name__ == "__main__":
    main()
