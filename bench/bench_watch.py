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

Two more modes (issue 13's other load figures):

--udp     the same messages as datagrams, paced at rising rates (RATES
          msg/s, STEP seconds each) to orbwatch `--syslog-udp` and to
          rsyslog imudp, both with an 8 MiB receive buffer. Per step: sent,
          received, lost, and orbwatch's kernel drops. The figure is the
          highest rate with nothing lost. UDP syslog is best effort.
--reload  orbwatch alone, feeds in its store: TCP at a steady RATE msg/s
          for STEP seconds, with 1 % of the messages naming addresses of a
          second feed that is not in the store yet; after 5 s `feed add`
          puts that feed (RELOAD_INDICATORS addresses) into the store.
          Reports count in against count processed (nothing may be lost)
          and the delay from the end of `feed add` to the first alert on
          an address of the new feed.

--soak    orbwatch alone: TCP at a steady RATE msg/s for STEP seconds
          (default 600), lines made as they are sent with the current
          time as their stamp (so event time moves as in production): an
          attack from a pool of SOURCES addresses (failed passwords and
          invalid users; 0.1 % naming a listed address) and 1 % staff
          logins from 20 addresses that never fail. VmRSS is
          sampled every 10 s. Reports count in against count processed
          and the RSS over time: once every source of the pool has been
          seen, the detectors' state is full and RSS must stay flat.

Usage: python3 bench/bench_watch.py --bin target/release/orbwatch \
           [--messages 2000000] [--indicators 100000] [--out /tmp/bench-watch]
       python3 bench/bench_watch.py --bin ... --udp [--rates 20000,50000,100000]
       python3 bench/bench_watch.py --bin ... --reload [--rate 50000]
       python3 bench/bench_watch.py --bin ... --soak [--rate 20000] [--step 600] [--sources 100000]
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
    # The end is known to within this poll (it was 0.25 s, 6 % of a
    # 4-second run).
    while status["records"] < n and time.time() - t0 < 600:
        p.send_signal(signal.SIGUSR1)
        time.sleep(0.05)
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


class Watch:
    """An `orbwatch watch` process whose status line is read as it runs."""

    def __init__(self, binary, args, work):
        env = dict(os.environ, ORBWATCH_LOG="info", NO_COLOR="1")
        self.log = open(os.path.join(work, "watch.log"), "w")
        self.p = subprocess.Popen([binary] + args, stderr=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, env=env, text=True)
        self.records = 0
        self.kernel_drops = 0
        self.dropped_full = 0
        self.reload_lines = []
        self.listening = threading.Event()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()
        if not self.listening.wait(120):
            raise SystemExit(f"orbwatch watch did not start: see {self.log.name}")

    def _read(self):
        for line in self.p.stderr:
            self.log.write(line)
            if "listening:" in line:
                self.listening.set()
            if "feeds changed" in line or "new index of" in line or "now matching" in line:
                self.reload_lines.append(line.strip())
            m = re.search(r"watch status: (\d+) records", line)
            if m:
                self.records = int(m.group(1))
                k = re.findall(r"(\d+) kernel drops", line)
                self.kernel_drops = sum(int(x) for x in k)
                d = re.findall(r"(\d+) dropped \(full\)", line)
                self.dropped_full = sum(int(x) for x in d)

    def status(self):
        """Ask for a status line and wait until it has come."""
        before = self.records
        self.p.send_signal(signal.SIGUSR1)
        time.sleep(0.3)
        return self.records if self.records >= before else before

    def settle(self, quiet=1.0, limit=60):
        """Counts once they stop moving for `quiet` seconds."""
        last, since, end = -1, time.time(), time.time() + limit
        while time.time() < end:
            n = self.status()
            if n != last:
                last, since = n, time.time()
            elif time.time() - since >= quiet:
                break
        return last

    def stop(self):
        hwm = rss_hwm_mb(self.p.pid)
        self.p.send_signal(signal.SIGTERM)
        self.p.wait(120)
        self.t.join(10)
        self.log.close()
        return hwm


def paced_udp(port, messages, rate, secs):
    """Send datagrams at `rate` msg/s for `secs` s (cycling `messages`);
    returns how many were sent and the rate reached."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dst = ("127.0.0.1", port)
    total = int(rate * secs)
    tick = 0.002
    per_tick = max(1, int(rate * tick))
    sent, i, t0 = 0, 0, time.time()
    n = len(messages)
    while sent < total:
        for _ in range(min(per_tick, total - sent)):
            s.sendto(messages[i], dst)
            i = i + 1 if i + 1 < n else 0
            sent += 1
        ahead = t0 + sent / rate - time.time()
        if ahead > 0:
            time.sleep(ahead)
    s.close()
    return sent, sent / max(time.time() - t0, 1e-9)


def udp_messages(log, limit):
    out = []
    with open(log, "rb") as f:
        for line in f:
            out.append(b"<38>" + line.rstrip(b"\n"))
            if len(out) >= limit:
                break
    return out


def bench_udp(args, feed, log):
    msgs = udp_messages(log, 200_000)
    rates = [int(r) for r in args.rates.split(",")]
    rows = []
    # orbwatch
    port = free_port()
    db = os.path.join(args.out, "watch-udp.db")
    if os.path.exists(db):
        os.remove(db)
    w = Watch(args.bin, ["--db", db, "watch", "--syslog-udp", f"127.0.0.1:{port}",
                         "--udp-recv-buffer", str(8 << 20), "--feed", feed,
                         "--timezone", "UTC", "--year", "2021"], args.out)
    got_before = w.settle()
    drops_before = w.kernel_drops
    for rate in rates:
        sent, reached = paced_udp(port, msgs, rate, args.step)
        got = w.settle()
        rows.append(("orbwatch watch --syslog-udp", rate, reached, sent, got - got_before,
                     w.kernel_drops - drops_before))
        got_before, drops_before = got, w.kernel_drops
    w.stop()
    # rsyslog
    port = free_port()
    out = os.path.join(args.out, "rsyslog-udp.out")
    wd = os.path.join(args.out, "rsyslog-work")
    os.makedirs(wd, exist_ok=True)
    if os.path.exists(out):
        os.remove(out)
    conf = os.path.join(args.out, "rsyslog-udp.conf")
    with open(conf, "w") as f:
        f.write(f"""global(workDirectory="{wd}" maxMessageSize="64k")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="{port}" rcvbufSize="8m")
template(name="raw" type="string" string="%rawmsg%\\n")
action(type="omfile" file="{out}" template="raw" asyncWriting="on" ioBufferSize="1m" flushOnTXEnd="off" flushInterval="1")
""")
    p = subprocess.Popen(["rsyslogd", "-n", "-f", conf, "-i", os.path.join(args.out, "rsyslog-udp.pid")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2)

    def lines():
        if not os.path.exists(out):
            return 0
        with open(out, "rb") as f:
            return sum(1 for _ in f)

    def settle_lines():
        last, since = -1, time.time()
        while True:
            n = lines()
            if n != last:
                last, since = n, time.time()
            elif time.time() - since >= 2.0:
                return n
            time.sleep(0.5)

    before = settle_lines()
    for rate in rates:
        snmp0 = udp_rcvbuf_errors()
        sent, reached = paced_udp(port, msgs, rate, args.step)
        got = settle_lines()
        rows.append(("rsyslog imudp -> file", rate, reached, sent, got - before,
                     udp_rcvbuf_errors() - snmp0))
        before = got
    p.send_signal(signal.SIGTERM)
    p.wait(60)
    print(f"UDP, {args.step} s per rate, {args.indicators} indicators "
          "(kernel drops: orbwatch's own count; rsyslog: /proc/net/snmp RcvbufErrors, machine-wide)")
    print("| receiver | asked msg/s | sent msg/s | sent | received | lost | kernel drops |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, rate, reached, sent, got, drops in rows:
        print(f"| {name} | {rate:,} | {reached:,.0f} | {sent} | {got} | {sent - got} | {drops} |")
    for name in ("orbwatch watch --syslog-udp", "rsyslog imudp -> file"):
        # The figure: every step up to it lost nothing (a loss at a lower
        # rate is not made up for by luck at a higher one).
        best = 0
        for r in (r for r in rows if r[0] == name):
            if r[3] != r[4]:
                break
            best = max(best, r[2])
        top = max((r[2] for r in rows if r[0] == name), default=0)
        print(f"{name}: nothing lost at any rate up to {best:,.0f} msg/s"
              f" (the sender reached {top:,.0f} msg/s at most)")


def udp_rcvbuf_errors():
    with open("/proc/net/snmp") as f:
        rows = [l.split() for l in f if l.startswith("Udp:")]
    head, vals = rows[0], rows[1]
    return int(vals[head.index("RcvbufErrors")])


def paced_tcp(port, frames, rate, secs, stop):
    """Send octet-counted frames at `rate` msg/s for `secs` s; returns the
    count sent."""
    s = socket.create_connection(("127.0.0.1", port))
    total = int(rate * secs)
    sent, t0, i = 0, time.time(), 0
    batch = max(1, rate // 500)
    while sent < total and not stop.is_set():
        k = min(batch, total - sent)
        s.sendall(b"".join(frames[i:i + k]))
        i += k
        sent += k
        ahead = t0 + sent / rate - time.time()
        if ahead > 0:
            time.sleep(ahead)
    s.shutdown(socket.SHUT_WR)
    s.close()
    return sent


def bench_reload(args, work):
    rng = random.Random(13)
    seq = bench.feed_sequence(21)
    first = [next(seq) for _ in range(args.indicators)]
    second = [next(seq) for _ in range(args.reload_indicators)]
    feed_a = os.path.join(work, "reload-a.txt")
    feed_b = os.path.join(work, f"reload-b-{args.reload_indicators}.txt")
    for path, ips in ((feed_a, first), (feed_b, second)):
        with open(path, "w") as f:
            for ip in ips:
                f.write(bench.ip_str(ip) + "\n")
    total = args.rate * args.step
    log = os.path.join(work, "reload-sshd.log")
    if os.path.exists(log):
        os.remove(log)
    # 1 % of the lines name an address of the second feed.
    bench.gen_sshd(log, total * 140, rng, second, 0.01, iso_start=1_609_459_200)
    frames = []
    with open(log, "rb") as f:
        for line in f:
            line = line.rstrip(b"\n")
            frames.append(b"%d %s" % (len(line), line))
            if len(frames) >= total:
                break
    db = os.path.join(work, "watch-reload.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    subprocess.run([args.bin, "-q", "--db", db, "feed", "add", feed_a, "--name", "first"],
                   check=True, stdout=subprocess.DEVNULL)
    alerts = os.path.join(work, "reload-alerts.jsonl")
    if os.path.exists(alerts):
        os.remove(alerts)
    port = free_port()
    w = Watch(args.bin, ["--db", db, "watch", "--syslog-tcp", f"127.0.0.1:{port}",
                         "--alert-jsonl", alerts, "--timezone", "UTC", "--year", "2021"], work)
    second_set = {bench.ip_str(ip) for ip in second}
    stop = threading.Event()
    result = {}
    sender = threading.Thread(target=lambda: result.setdefault("sent", paced_tcp(port, frames, args.rate, args.step, stop)))
    t0 = time.time()
    sender.start()
    time.sleep(5)
    a0 = time.time()
    add = subprocess.run([args.bin, "-q", "--db", db, "feed", "add", feed_b, "--name", "second"],
                         capture_output=True, text=True)
    a1 = time.time()
    if add.returncode != 0:
        stop.set()
        raise SystemExit(f"feed add failed: {add.stderr}")
    first_alert = None
    seen = 0
    while time.time() - a1 < 60 and first_alert is None:
        if os.path.exists(alerts):
            with open(alerts, "rb") as f:
                f.seek(seen)
                chunk = f.read()
            # Whole lines only: the rest is read again next time.
            whole = chunk[: chunk.rfind(b"\n") + 1]
            seen += len(whole)
            for line in whole.decode("utf-8", "replace").splitlines():
                if any(ip in second_set for ip in _ips_in(line)):
                    first_alert = time.time()
                    break
        time.sleep(0.05)
    sender.join()
    got = w.settle(quiet=2.0)
    hwm = w.stop()
    sent = result.get("sent", 0)
    print(f"reload under load: {args.rate:,} msg/s over TCP for {args.step} s, "
          f"{args.indicators:,} indicators in the store, then `feed add` of {args.reload_indicators:,}")
    print("| sent | processed | lost | feed add s (from 5 s in) | first alert on the new feed, s after feed add ended | peak RSS MB |")
    print("|---:|---:|---:|---:|---:|---:|")
    delay = f"{first_alert - a1:.2f}" if first_alert else "none within 60 s"
    print(f"| {sent} | {got} | {sent - got} | {a1 - a0:.1f} | {delay} | {hwm:.0f} |")
    for line in w.reload_lines:
        print("  log:", line[-200:])
    print(f"(total {time.time() - t0:.0f} s)")


def vm_rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def soak_sender(port, rate, secs, pool, hot, stop, result):
    """sshd lines stamped with the current time, from `pool`, at `rate`
    msg/s for `secs` s, octet-counted over one TCP connection."""
    rng = random.Random(17)
    office = [f"198.18.0.{i}" for i in range(1, 21)]
    s = socket.create_connection(("127.0.0.1", port))
    total = int(rate * secs)
    batch = max(1, rate // 200)
    sent, t0, pid = 0, time.time(), 1000
    while sent < total and not stop.is_set():
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime())
        frames = []
        for _ in range(min(batch, total - sent)):
            src = hot[rng.randrange(len(hot))] if rng.random() < 0.001 else pool[rng.randrange(len(pool))]
            pid += 1
            if rng.random() < 0.01:
                # The staff's logins, from addresses that never fail.
                msg = f"Accepted publickey for deploy from {office[rng.randrange(len(office))]} port 50022 ssh2"
            else:
                msg = bench.sshd_message(rng, src, accepted=False)
            line = f"{stamp} bastion sshd[{pid}]: {msg}".encode()
            frames.append(b"%d %s" % (len(line), line))
        s.sendall(b"".join(frames))
        sent += len(frames)
        ahead = t0 + sent / rate - time.time()
        if ahead > 0:
            time.sleep(ahead)
    s.shutdown(socket.SHUT_WR)
    s.close()
    result["sent"] = sent
    result["secs"] = time.time() - t0


def bench_soak(args, work):
    rng = random.Random(19)
    seq = bench.feed_sequence(23)
    hot_ips = [next(seq) for _ in range(args.indicators)]
    feed = os.path.join(work, f"soak-feed-{args.indicators}.txt")
    with open(feed, "w") as f:
        for ip in hot_ips:
            f.write(bench.ip_str(ip) + "\n")
    hot = [bench.ip_str(ip) for ip in hot_ips[:1000]]
    pool = [bench.ip_str(rng.getrandbits(32)) for _ in range(args.sources)]
    db = os.path.join(work, "watch-soak.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    port = free_port()
    w = Watch(args.bin, ["--db", db, "watch", "--syslog-tcp", f"127.0.0.1:{port}",
                         "--feed", feed, "--timezone", "UTC"], work)
    stop, result = threading.Event(), {}
    sender = threading.Thread(target=soak_sender,
                              args=(port, args.rate, args.step, pool, hot, stop, result))
    t0 = time.time()
    sender.start()
    samples = []
    while sender.is_alive():
        sender.join(10)
        samples.append((time.time() - t0, vm_rss_mb(w.p.pid), w.status()))
    got = w.settle(quiet=2.0)
    hwm = w.stop()
    sent = result.get("sent", 0)
    print(f"soak: {args.rate:,} msg/s over TCP for {args.step} s from {args.sources:,} sources, "
          f"{args.indicators:,} indicators, behaviour on; sender kept up: "
          f"{sent / max(result.get('secs', 1), 1e-9):,.0f} msg/s")
    print("| s | VmRSS MB | processed |")
    print("|---:|---:|---:|")
    for t, rss, n in samples:
        print(f"| {t:.0f} | {rss:.1f} | {n} |")
    half = [x for x in samples if x[0] >= args.step / 2]
    if len(half) >= 2:
        xs = [x[0] for x in half]
        ys = [x[1] for x in half]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / max(sum((x - mx) ** 2 for x in xs), 1e-9)
        print(f"second half: VmRSS {min(ys):.1f} to {max(ys):.1f} MB, slope {slope * 1024:.2f} kB/s")
    print(f"sent {sent}, processed {got}, lost {sent - got}, peak RSS {hwm:.0f} MB")


def _ips_in(line):
    return re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", line)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--messages", type=int, default=2_000_000)
    ap.add_argument("--indicators", type=int, default=100_000)
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "bench-watch"))
    ap.add_argument("--udp", action="store_true", help="UDP rates instead of the TCP run")
    ap.add_argument("--rates", default="10000,25000,50000,100000,150000,200000")
    ap.add_argument("--step", type=int, help="seconds per rate (--udp, default 10) or of the run (--reload, default 30)")
    ap.add_argument("--reload", action="store_true", help="feed reload under load instead of the TCP run")
    ap.add_argument("--rate", type=int, default=50_000)
    ap.add_argument("--reload-indicators", type=int, default=1_000_000)
    ap.add_argument("--soak", action="store_true", help="a long steady run with RSS sampled instead of the TCP run")
    ap.add_argument("--sources", type=int, default=100_000, help="--soak: distinct source addresses")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.soak:
        args.step = args.step or 600
        bench_soak(args, args.out)
        return
    if args.reload:
        args.step = args.step or 30
        bench_reload(args, args.out)
        return
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
    if args.udp:
        args.step = args.step or 10
        bench_udp(args, feed, log)
        return
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
