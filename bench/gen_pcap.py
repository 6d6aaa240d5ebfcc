#!/usr/bin/env python3
"""Write a large, deterministic Ethernet/IPv4 pcap for the capture benchmark.

Traffic mix (by flow): 55 % TCP sessions (handshake, 1-20 data segments of
60-1460 bytes each way, FIN close), 30 % SYN-scan probes (SYN, then RST or
nothing), 15 % DNS query/answer over UDP. Flows overlap (up to 64 open at
once) and time advances ~50 µs per packet, so idle timeouts do not split
them. Checksums are left zero (neither orbwatch nor tshark checks them).

Usage: gen_pcap.py OUT.pcap [--packets N] [--seed S]
"""
import argparse
import random
import struct


def ip4(n):
    return struct.pack(">I", n)


def frame(src, dst, proto, l4):
    total = 20 + len(l4)
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, 64, proto, 0, src, dst)
    eth = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"
    return eth + ip + l4


def tcp(sp, dp, seq, ack, flags, payload=b""):
    return struct.pack(">HHIIBBHHH", sp, dp, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload


def udp(sp, dp, payload):
    return struct.pack(">HHHH", sp, dp, 8 + len(payload), 0) + payload


SYN, ACK, FIN, RST, PSH = 0x02, 0x10, 0x01, 0x04, 0x08


def session(r, c, s, cp, sp):
    """Packets (direction, bytes) of one TCP session."""
    out = [(0, frame(c, s, 6, tcp(cp, sp, 1, 0, SYN))),
           (1, frame(s, c, 6, tcp(sp, cp, 1, 2, SYN | ACK))),
           (0, frame(c, s, 6, tcp(cp, sp, 2, 2, ACK)))]
    for _ in range(r.randint(1, 20)):
        d = r.randint(0, 1)
        size = r.choice((60, 200, 536, 1200, 1460))
        src, dst, a, b = (c, s, cp, sp) if d == 0 else (s, c, sp, cp)
        out.append((d, frame(src, dst, 6, tcp(a, b, 3, 3, PSH | ACK, bytes(size)))))
    out.append((0, frame(c, s, 6, tcp(cp, sp, 9, 9, FIN | ACK))))
    out.append((1, frame(s, c, 6, tcp(sp, cp, 9, 10, FIN | ACK))))
    out.append((0, frame(c, s, 6, tcp(cp, sp, 10, 10, ACK))))
    return out


def probe(r, c, s, cp, sp):
    out = [(0, frame(c, s, 6, tcp(cp, sp, 1, 0, SYN)))]
    if r.random() < 0.5:
        out.append((1, frame(s, c, 6, tcp(sp, cp, 0, 2, RST | ACK))))
    return out


def dns(r, c, s, cp, _sp):
    name = b"".join(bytes([len(l)]) + l for l in (b"host%d" % r.randint(0, 99999), b"example", b"org")) + b"\x00"
    q = struct.pack(">HHHHHH", r.randint(0, 65535), 0x0100, 1, 0, 0, 0) + name + b"\x00\x01\x00\x01"
    a = struct.pack(">HHHHHH", 1, 0x8180, 1, 1, 0, 0) + name + b"\x00\x01\x00\x01" + \
        b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + ip4(r.getrandbits(32))
    return [(0, frame(c, s, 17, udp(cp, 53, q))), (1, frame(s, c, 17, udp(53, cp, a)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--packets", type=int, default=2_000_000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    r = random.Random(args.seed)
    t_us = 1_700_000_000 * 1_000_000
    written = 0
    flows = 0
    open_flows = []
    with open(args.out, "wb", buffering=1 << 22) as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        while written < args.packets:
            while len(open_flows) < 64:
                kind = r.random()
                c = ip4(0x0A000000 | r.getrandbits(16))
                s = ip4(r.getrandbits(32) | 0x01000000)
                cp, sp = r.randint(1024, 65535), r.choice((22, 80, 443, 3389, 8080, r.randint(1, 1023)))
                gen = session if kind < 0.55 else probe if kind < 0.85 else dns
                open_flows.append(gen(r, c, s, cp, sp))
                flows += 1
            i = r.randrange(len(open_flows))
            _, pkt = open_flows[i].pop(0)
            if not open_flows[i]:
                open_flows.pop(i)
            t_us += r.randint(1, 100)
            f.write(struct.pack("<IIII", t_us // 1_000_000, t_us % 1_000_000, len(pkt), len(pkt)))
            f.write(pkt)
            written += 1
    print(f"{args.out}: {written} packets, {flows} flows started")


if __name__ == "__main__":
    main()
