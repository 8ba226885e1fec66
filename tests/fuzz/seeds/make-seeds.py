#!/usr/bin/env python3
"""Writes a few hand-made seed inputs into seeds/<target>/ (checked in, so
running this again is only needed after changing it)."""
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))


def msg(ty, body):
    return b"\xff" * 16 + struct.pack(">HB", 19 + len(body), ty) + body


def attr(flags, code, value):
    if flags & 0x10:
        return struct.pack(">BBH", flags, code, len(value)) + value
    return struct.pack(">BBB", flags, code, len(value)) + value


def update(withdrawn=b"", attrs=b"", nlri=b""):
    return msg(2, struct.pack(">H", len(withdrawn)) + withdrawn
               + struct.pack(">H", len(attrs)) + attrs + nlri)


ip = lambda s: bytes(int(x) for x in s.split("."))
calico = (attr(0x40, 1, b"\x00") + attr(0x40, 2, b"") + attr(0x40, 3, ip("192.168.0.1"))
          + attr(0x40, 5, struct.pack(">I", 100)) + attr(0x80, 9, ip("192.168.0.1"))
          + attr(0x80, 10, ip("172.16.0.1")))
p28 = lambda a: b"\x1c" + ip(a)
as_path4 = attr(0x40, 2, b"\x02\x02" + struct.pack(">II", 64512, 4200000000))
as_path2 = attr(0x40, 2, b"\x02\x02" + struct.pack(">HH", 64512, 23456))
mp_reach6 = attr(0x90, 14, struct.pack(">HBB", 2, 1, 16) + bytes.fromhex("fd00" + "00" * 13 + "01")
                 + b"\x00" + b"\x40" + bytes.fromhex("20010db800000001"))
mp_unreach6 = attr(0x90, 15, struct.pack(">HB", 2, 1) + b"\x40" + bytes.fromhex("20010db800000001"))
comms = (attr(0xc0, 8, struct.pack(">II", 0xfde80064, 0xffffff01))
         + attr(0xc0, 16, bytes.fromhex("0002fde800000064"))
         + attr(0xc0, 32, struct.pack(">III", 4200000000, 1, 2))
         + attr(0x80, 4, struct.pack(">I", 5)) + attr(0x40, 6, b"")
         + attr(0xc0, 7, struct.pack(">H", 64512) + ip("10.0.0.1"))
         + attr(0xe0, 99, b"\x01\x02\x03"))
caps = (b"\x41\x04" + struct.pack(">I", 4200000000) + b"\x01\x04\x00\x01\x00\x01"
        + b"\x01\x04\x00\x02\x00\x01" + b"\x45\x08\x00\x01\x01\x03\x00\x02\x01\x03"
        + b"\x06\x00" + b"\x02\x00" + b"\x40\x02\x00\x78")
open_ = msg(1, struct.pack(">BHH", 4, 23456, 90) + ip("10.0.0.1")
            + struct.pack(">BBB", len(caps) + 2, 2, len(caps)) + caps)

messages = {
    "keepalive": (0x01, msg(4, b"")),
    "open": (0x00, open_),
    "notification": (0x01, msg(3, b"\x04\x00")),
    "route-refresh": (0x01, msg(5, b"\x00\x01\x00\x01")),
    "eor-v4": (0x01, update()),
    "eor-v6": (0x01, update(attrs=attr(0x80, 15, b"\x00\x02\x01"))),
    "calico": (0x01, update(attrs=calico, nlri=p28("10.0.0.0") + p28("10.0.0.16"))),
    "calico-addpath": (0x05, update(attrs=calico, nlri=b"\x00\x00\x00\x01" + p28("10.0.0.0"))),
    "withdraw": (0x01, update(withdrawn=p28("10.0.0.0") + b"\x18\x0a\x01\x02")),
    "v6": (0x01, update(attrs=attr(0x40, 1, b"\x00") + as_path4 + mp_reach6)),
    "v6-unreach": (0x01, update(attrs=mp_unreach6)),
    "communities-2octet": (0x00, update(attrs=attr(0x40, 1, b"\x02") + as_path2
                                        + attr(0x40, 3, ip("10.0.0.1")) + comms,
                                        nlri=b"\x20" + ip("10.9.9.9"))),
}

for t in ("decode_message", "decode_stream", "mrt"):
    os.makedirs(os.path.join(here, t), exist_ok=True)
stream = b""
for name, (ctx, m) in messages.items():
    open(os.path.join(here, "decode_message", name), "wb").write(bytes([ctx]) + m)
    stream += m
    open(os.path.join(here, "mrt", name + ".raw"), "wb").write(m)
open(os.path.join(here, "decode_stream", "all"), "wb").write(b"\x01" + stream)


def mrt(kind, sub, body):
    return struct.pack(">IHHI", 1700000000, kind, sub, len(body)) + body


peer = struct.pack(">IIHH", 64512, 64513, 0, 1) + ip("10.0.0.2") + ip("10.0.0.1")
recs = b"".join(mrt(16, 4, peer + m) for _, m in list(messages.values())[2:])
recs += mrt(16, 5, peer + b"\x00\x05\x00\x06")
# TABLE_DUMP_V2 PEER_INDEX_TABLE + RIB_IPV4_UNICAST
pit = ip("10.0.0.1") + struct.pack(">H", 0) + struct.pack(">H", 1) + b"\x02" + ip("10.0.0.2") + ip("10.0.0.2") + struct.pack(">I", 64512)
recs += mrt(13, 1, pit)
attrs = calico
rib = struct.pack(">I", 0) + p28("10.0.0.0") + struct.pack(">HHIH", 1, 0, 1700000000, len(attrs)) + attrs
recs += mrt(13, 2, rib)
open(os.path.join(here, "mrt", "bgp4mp-and-rib.mrt"), "wb").write(recs)
open(os.path.join(here, "mrt", "hex.txt"), "w").write("# a keepalive\n" + msg(4, b"").hex(" ") + "\n")
