#!/usr/bin/env python3
"""Live load benchmark: `orbwatch watch --syslog-tcp` beside rsyslog.

Both receive the same stream of sshd syslog messages over TCP on loopback
(RFC 6587 octet counting, one connection, sent as fast as the socket takes
them). rsyslog (Debian's, imtcp -> omfile with the raw message) is the
anchor: it only writes the messages to a file. orbwatch matches them
against a feed of N indicators and runs the behaviour detectors.

For each receiver it reports: messages sent, messages it processed, the
time from the first byte sent to the last message processed, msg/s, and
peak RSS (orbwatch: from its status line; rsyslog: VmHWM). Processed
counts come from orbwatch's own status line (SIGUSR1: "watch status: N
records") and from the lines in rsyslog's output file: count in must equal
count processed (nothing lost).

Usage: python3 bench/bench_watch.py --bin target/release/orbwatch \
           [--messages 2000000] [--indicators 100000] [--out /tmp/bench-watch]
"""

import argparse
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench  # noqa: E402  (generators)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def make_frames(log_path, frames_path, limit):
    """Octet-counted frames of the first `limit` lines; returns (count, bytes of messages + newlines)."""
    n = 0
    raw = 0
    with open(log_path, "rb") as f, open(frames_path, "wb") as out:
        for line in f:
            line = line.rstrip(b"\n")
            if not line:
                continue
            out.write(b"%d %s" % (len(line), line))
            n += 1
            raw += len(line) + 1
            if n >= limit:
                break
    return n, raw


def send(port, frames_path):
    s = socket.create_connection(("127.0.0.1", port))
    with open(frames_path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            s.sendall(chunk)
    s.shutdown(socket.SHUT_WR)
    s.close()


def rss_hwm_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def bench_orbwatch(binary, feed, frames, n, work):
    port = free_port()
    db = os.path.join(work, "watch.db")
    if os.path.exists(db):
        os.remove(db)
    env = dict(os.environ, ORBWATCH_LOG="info", NO_COLOR="1")
    p = subprocess.Popen(
        [binary, "--db", db, "watch", "--syslog-tcp", f"127.0.0.1:{port}",
         "--feed", feed, "--timezone", "UTC", "--year", "2021"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True)
    status = {"records": 0, "rss": 0}
    listening = threading.Event()

    def read_log():
        for line in p.stderr:
            if "listening:" in line:
                listening.set()
            m = re.search(r"watch status: (\d+) records.*RSS (\d+) MB", line)
            if m:
                status["records"] = int(m.group(1))
                status["rss"] = max(status["rss"], int(m.group(2)))

    t = threading.Thread(target=read_log, daemon=True)
    t.start()
    listening.wait(60)
    t0 = time.time()
    sender = threading.Thread(target=send, args=(port, frames))
    sender.start()
    while status["records"] < n and time.time() - t0 < 600:
        p.send_signal(signal.SIGUSR1)
        time.sleep(0.25)
    t1 = time.time()
    sender.join()
    hwm = rss_hwm_mb(p.pid)
    p.send_signal(signal.SIGTERM)
    p.wait(120)
    t.join(10)
    return status["records"], t1 - t0, hwm


def bench_rsyslog(frames, n, raw_bytes, work):
    port = free_port()
    out = os.path.join(work, "rsyslog.out")
    wd = os.path.join(work, "rsyslog-work")
    os.makedirs(wd, exist_ok=True)
    if os.path.exists(out):
        os.remove(out)
    conf = os.path.join(work, "rsyslog.conf")
    with open(conf, "w") as f:
        f.write(f"""global(workDirectory="{wd}" maxMessageSize="64k")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{port}")
template(name="raw" type="string" string="%rawmsg%\\n")
action(type="omfile" file="{out}" template="raw" asyncWriting="on" ioBufferSize="1m" flushOnTXEnd="off" flushInterval="1")
""")
    p = subprocess.Popen(["rsyslogd", "-n", "-f", conf, "-i", os.path.join(work, "rsyslog.pid")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    t0 = time.time()
    sender = threading.Thread(target=send, args=(port, frames))
    sender.start()
    while time.time() - t0 < 600:
        size = os.path.getsize(out) if os.path.exists(out) else 0
        if size >= raw_bytes:
            break
        time.sleep(0.05)
    t1 = time.time()
    sender.join()
    hwm = rss_hwm_mb(p.pid)
    p.send_signal(signal.SIGTERM)
    p.wait(60)
    with open(out, "rb") as f:
        lines = sum(1 for _ in f)
    return lines, t1 - t0, hwm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--messages", type=int, default=2_000_000)
    ap.add_argument("--indicators", type=int, default=100_000)
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "bench-watch"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(7)
    feed = os.path.join(args.out, f"feed-{args.indicators}.txt")
    seq = bench.feed_sequence(11)
    hot = [next(seq) for _ in range(args.indicators)]
    with open(feed, "w") as f:
        for ip in hot:
            f.write(bench.ip_str(ip) + "\n")
    log = os.path.join(args.out, "sshd.log")
    if not os.path.exists(log):
        bench.gen_sshd(log, args.messages * 140, rng, hot, 0.001, iso_start=1_609_459_200)
    frames = os.path.join(args.out, "frames.bin")
    n, raw = make_frames(log, frames, args.messages)
    print(f"{n} messages, {raw / 1e6:.0f} MB, one TCP connection, {args.indicators} indicators")
    rows = []
    lines, secs, hwm = bench_rsyslog(frames, n, raw, args.out)
    rows.append(("rsyslog (imtcp -> file)", lines, secs, hwm))
    got, secs, hwm = bench_orbwatch(args.bin, feed, frames, n, args.out)
    rows.append(("orbwatch watch (match + behaviour)", got, secs, hwm))
    print(f"| receiver | sent | processed | s | msg/s | peak RSS MB |")
    print(f"|---|---:|---:|---:|---:|---:|")
    for name, got, secs, hwm in rows:
        print(f"| {name} | {n} | {got} | {secs:.1f} | {got / max(secs, 1e-9):,.0f} | {hwm:.0f} |")


if __name__ == "__main__":
    main()
