#!/usr/bin/env python3
"""Floods for the live daemon's memory bounds (bench/README.md, sessions
26 to 28), written to stdout for `orbwatch watch --stdin`, one second of
event time per 1,000 lines from 2024-05-01:

  gen_flood.py names N        failed logins from 1,024 sources, each
                              with a new random account name
  gen_flood.py sources N      failed logins (root), each from a new
                              IPv4 address
  gen_flood.py sources6 N     the same from new IPv6 addresses
  gen_flood.py spread N       failed logins (root), each from a new
                              IPv4 address in a /24 not seen before
  gen_flood.py twice N        failed logins (root), each new IPv4
                              address failing twice in a row (below
                              every brute-force threshold)
  gen_flood.py probes N       firewall LOG lines of SYN probes, each
                              from a new (forged) IPv4 address
  gen_flood.py conns N        a Zeek conn.log of answered SSH
                              connections (SF), each from a new client

An optional third argument sets the lines per second of event time
(default 1,000): `gen_flood.py sources 8000000 1000000` puts eight
million sources into eight seconds, all inside every detector's window.

Measure with: /usr/bin/time -f "%e s %M KB" orbwatch watch --stdin
--db X --feed examples/feeds/CERTFR-2021-IOC-003-IOC.csv -q < FILE
"""
import datetime
import random
import sys


def main():
    kind, n = sys.argv[1], int(sys.argv[2])
    per_second = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    rnd = random.Random(7)
    t0 = datetime.datetime(2024, 5, 1, tzinfo=datetime.timezone.utc)
    out = sys.stdout
    buf = []
    if kind == "conns":
        out.write(
            "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n"
            "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n"
            "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\n"
        )
    for i in range(n):
        t = (t0 + datetime.timedelta(seconds=i // per_second)).strftime("%Y-%m-%dT%H:%M:%SZ")
        v4 = "%d.%d.%d.%d" % (11 + ((i >> 24) & 63), (i >> 16) & 255, (i >> 8) & 255, i & 255)
        if kind == "names":
            src = f"203.0.{(i >> 8) & 3}.{i & 255}"
            name = "u%016x" % rnd.getrandbits(64)
            line = f"{t} srv sshd[1]: Failed password for {name} from {src} port 4000 ssh2"
        elif kind == "sources":
            line = f"{t} srv sshd[1]: Failed password for root from {v4} port 4000 ssh2"
        elif kind == "spread":
            v4 = "%d.%d.%d.%d" % (11 + ((i >> 24) & 63), i & 255, (i >> 8) & 255, (i >> 16) & 255)
            line = f"{t} srv sshd[1]: Failed password for root from {v4} port 4000 ssh2"
        elif kind == "twice":
            j = i // 2
            v4 = "%d.%d.%d.%d" % (11 + ((j >> 24) & 63), (j >> 16) & 255, (j >> 8) & 255, j & 255)
            line = f"{t} srv sshd[1]: Failed password for root from {v4} port 4000 ssh2"
        elif kind == "sources6":
            v6 = "2001:db8:%x:%x::%x" % ((i >> 32) & 0xffff, (i >> 16) & 0xffff, i & 0xffff)
            line = f"{t} srv sshd[1]: Failed password for root from {v6} port 4000 ssh2"
        elif kind == "conns":
            ts = t0.timestamp() + i / per_second
            line = (
                f"{ts:.6f}\tC{i:017x}\t{v4}\t40000\t10.73.140.49\t22\ttcp\tssh\t1.5\t2000\t3000\tSF"
                f"\t-\t-\t0\tShADadFf\t20\t3000\t20\t4000\t-"
            )
        elif kind == "probes":
            line = (
                f"{t} gw kernel: [1.0] IN=eth0 OUT= MAC=de:1c:88:64:10:19:5e:e1:a4:3b:cf:f0:08:00 "
                f"SRC={v4} DST=10.73.140.49 LEN=44 TOS=0x00 PREC=0x00 TTL=43 ID=1 PROTO=TCP "
                f"SPT=5222 DPT={1 + i % 1000} WINDOW=1024 RES=0x00 SYN URGP=0"
            )
        else:
            sys.exit(f"unknown flood {kind!r}: names, sources, spread, twice, sources6, probes or conns")
        buf.append(line + "\n")
        if len(buf) >= 10000:
            out.write("".join(buf))
            buf.clear()
    out.write("".join(buf))


if __name__ == "__main__":
    main()
