#!/usr/bin/env python3
"""Per-thread CPU of `orbwatch watch --syslog-tcp`, to compare builds.

Replays the frames a `bench_watch.py` run left in its --out directory
(frames.bin, feed-100000.txt) through `bench_watch.bench_orbwatch` and
reads each thread's CPU time from /proc just before the SIGTERM. On a
noisy machine the pipeline thread's CPU seconds are a finer figure than
msg/s; alternate the builds and compare within one run.

Usage:
    python3 bench/bench_watch.py --bin B --messages 2000000 --out OUT   # once: makes OUT/frames.bin
    python3 bench/watch_threads.py --dir OUT --messages 2000000 BIN_A BIN_B [--rounds 3]
"""

import argparse
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_watch  # noqa: E402


def thread_cpu(pid):
    """{thread name: CPU seconds} of a live process."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                st = f.read()
        except OSError:
            continue
        name = st[st.index("(") + 1:st.rindex(")")]
        fields = st[st.rindex(")") + 2:].split()
        secs = (int(fields[11]) + int(fields[12])) / tick
        out[name] = out.get(name, 0.0) + secs
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bins", nargs="+")
    ap.add_argument("--dir", required=True, help="a bench_watch.py --out directory")
    ap.add_argument("--messages", type=int, required=True, help="messages in its frames.bin")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    frames = os.path.join(args.dir, "frames.bin")
    feed = os.path.join(args.dir, "feed-100000.txt")
    for path in (frames, feed):
        if not os.path.exists(path):
            sys.exit(f"watch_threads: {path} is missing; run bench_watch.py --out {args.dir} first")

    # The CPU is read each time the bench signals the daemon (SIGUSR1 for
    # its status every 0.05 s, then SIGTERM), keeping each thread's
    # latest figure: a connection's thread is gone once its client has
    # sent everything, so its CPU is the last seen before it ended.
    seen = {}
    send_signal = bench_watch.subprocess.Popen.send_signal

    def snapshot_then_signal(self, sig):
        if sig in (signal.SIGUSR1, signal.SIGTERM):
            seen.setdefault("cpu", {}).update(thread_cpu(self.pid))
        return send_signal(self, sig)

    bench_watch.subprocess.Popen.send_signal = snapshot_then_signal
    print("| build | processed | s | msg/s | peak RSS MB | busiest threads (CPU s) |")
    print("|---|---:|---:|---:|---:|---|")
    for _ in range(args.rounds):
        for binary in args.bins:
            seen.clear()
            got, secs, hwm = bench_watch.bench_orbwatch(binary, feed, frames, args.messages, args.dir)
            top = sorted(seen.get("cpu", {}).items(), key=lambda kv: -kv[1])[:3]
            threads = ", ".join(f"{name} {cpu:.2f}" for name, cpu in top)
            print(f"| {binary} | {got} | {secs:.2f} | {got / secs:,.0f} | {hwm:.0f} | {threads} |", flush=True)


if __name__ == "__main__":
    main()
