#!/usr/bin/env python3
"""UDP syslog datagrams to 127.0.0.1:PORT, each from a new source address
of 127.0.0.0/8 (a socket bound to it per datagram): what a flood of
forged senders looks like to `orbwatch watch --syslog-udp` (bench/README.md,
session 28). Loopback only.

  udp_forged_senders.py N PORT
"""
import socket
import sys
import time


def main():
    n, port = int(sys.argv[1]), int(sys.argv[2])
    t0 = time.time()
    for i in range(n):
        a, b, c = 1 + (i >> 16) % 250, (i >> 8) & 255, (i & 255) or 1
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((f"127.{a}.{b}.{c}", 0))
        msg = (
            f"<38>May  1 00:00:{i % 60:02d} srv sshd[1]: Failed password for root "
            f"from 198.51.{(i >> 8) & 255}.{i & 255} port 4000 ssh2"
        )
        s.sendto(msg.encode(), ("127.0.0.1", port))
        s.close()
        if i % 50000 == 0:
            time.sleep(0.05)
    print(n, "sent in", round(time.time() - t0, 1), "s")


if __name__ == "__main__":
    main()
