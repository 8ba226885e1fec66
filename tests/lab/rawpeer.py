#!/usr/bin/env python3
"""A raw BGP speaker for the seed lab's fault tests: it peers with bgpd over
iBGP and sends exactly the UPDATEs a scenario needs, including malformed
ones that no real daemon would send. Events go to stdout, one per line.

  rawpeer.py --local 192.168.83.99 --peer 192.168.83.1 --scenario taw
  rawpeer.py --local 192.168.83.99 --peer 192.168.83.1 --scenario maxprefix --count 10
"""
import argparse
import ipaddress
import select
import socket
import struct
import sys
import time

MARKER = b"\xff" * 16


def msg(kind, body):
    return MARKER + struct.pack("!HB", 19 + len(body), kind) + body


def attr(flags, code, value):
    return struct.pack("!BBB", flags, code, len(value)) + value


def update(nlri, nexthop, origin=0, withdrawn=()):
    attrs = (
        attr(0x40, 1, bytes([origin]))        # ORIGIN
        + attr(0x40, 2, b"")                  # AS_PATH (empty, iBGP)
        + attr(0x40, 3, socket.inet_aton(nexthop))
        + attr(0x40, 5, struct.pack("!I", 100))  # LOCAL_PREF
    )
    nl = b"".join(prefix(p) for p in nlri)
    wd = b"".join(prefix(p) for p in withdrawn)
    body = struct.pack("!H", len(wd)) + wd + struct.pack("!H", len(attrs)) + attrs + nl
    return msg(2, body)


def prefix(p):
    n = ipaddress.ip_network(p)
    octets = (n.prefixlen + 7) // 8
    return bytes([n.prefixlen]) + n.network_address.packed[:octets]


def open_msg(asn, router_id, hold):
    caps = (
        bytes([1, 4, 0, 1, 0, 1])                       # MP IPv4 unicast
        + bytes([65, 4]) + struct.pack("!I", asn)      # 4-octet AS
    )
    params = bytes([2, len(caps)]) + caps
    body = struct.pack("!BHH", 4, asn, hold) + socket.inet_aton(router_id) + bytes([len(params)]) + params
    return msg(1, body)


class Peer:
    def __init__(self, local, peer):
        self.s = socket.create_connection((peer, 179), timeout=10, source_address=(local, 0))
        self.buf = b""

    def send(self, m):
        self.s.sendall(m)

    def recv(self, timeout):
        """The next message as (type, body), or None on timeout."""
        end = time.time() + timeout
        while True:
            if len(self.buf) >= 19:
                ln = struct.unpack("!H", self.buf[16:18])[0]
                if len(self.buf) >= ln:
                    m, self.buf = self.buf[:ln], self.buf[ln:]
                    return m[18], m[19:]
            left = end - time.time()
            if left <= 0:
                return None
            r, _, _ = select.select([self.s], [], [], left)
            if not r:
                return None
            data = self.s.recv(65536)
            if not data:
                raise EOFError("bgpd closed the connection")
            self.buf += data


def say(*a):
    print(*a, flush=True)


def watch(p, seconds):
    """Answers keepalives for a while; reports any NOTIFICATION."""
    end = time.time() + seconds
    while time.time() < end:
        m = p.recv(end - time.time())
        if m is None:
            continue
        kind, body = m
        if kind == 3:
            say(f"notification {body[0]}/{body[1]}")
            return False
        if kind == 4:
            p.send(msg(4, b""))
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--local", required=True)
    ap.add_argument("--peer", required=True)
    ap.add_argument("--scenario", choices=["taw", "maxprefix"], required=True)
    ap.add_argument("--count", type=int, default=10)
    a = ap.parse_args()
    p = Peer(a.local, a.peer)
    p.send(open_msg(64512, a.local, 9))
    kind, _ = p.recv(10)
    if kind != 1:
        say(f"expected OPEN, got type {kind}")
        sys.exit(1)
    p.send(msg(4, b""))
    while True:
        kind, _ = p.recv(10)
        if kind == 4:
            break
    say("established")
    if a.scenario == "taw":
        p.send(update(["172.15.250.0/26"], a.local))
        say("announced 172.15.250.0/26")
        if not watch(p, 4):
            sys.exit(1)
        # The same prefix again with ORIGIN 5: RFC 7606 §7.1 treat-as-withdraw.
        p.send(update(["172.15.250.0/26"], a.local, origin=5))
        say("sent malformed UPDATE (ORIGIN 5)")
        ok = watch(p, 12)
        say("session stayed up" if ok else "session reset")
    else:
        nets = [f"172.15.{251 + i // 4}.{(i % 4) * 64}/26" for i in range(a.count)]
        p.send(update(nets, a.local))
        say(f"announced {len(nets)} prefixes")
        watch(p, 10)
    p.s.close()


if __name__ == "__main__":
    main()
