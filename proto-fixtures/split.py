#!/usr/bin/env python3
"""Split captured BGP sessions into per-message fixture files (stdlib only).

Usage: split.py WORKDIR OUTDIR

WORKDIR holds one sub-directory per lab (listed in WORKDIR/labs.txt, in
order), each with:
  capture.pcapng  tshark capture of every BGP session of the lab
  nodes.tsv       ip <TAB> node <TAB> sender-label <TAB> version <TAB> config

For every TCP stream the payload of each direction is reassembled (ordered
by TCP sequence number, retransmissions dropped), cut into BGP messages by
the 2-byte length at offset 16, and each DISTINCT message is written to
OUTDIR/<sender>/<NNN>-<short-name>.bin.  OUTDIR/manifest.toml describes each
file, including the decoding context negotiated by the two OPENs of the
session the message was taken from.
"""
import ipaddress
import os
import struct
import subprocess
import sys

MARKER = b"\xff" * 16
TYPES = {1: "open", 2: "update", 3: "notification", 4: "keepalive", 5: "route-refresh"}
AFISAFI = {(1, 1): "ipv4-unicast", (2, 1): "ipv6-unicast", (1, 2): "ipv4-multicast",
           (2, 2): "ipv6-multicast", (1, 4): "ipv4-labeled", (2, 4): "ipv6-labeled",
           (1, 128): "ipv4-vpn", (2, 128): "ipv6-vpn", (25, 70): "l2vpn-evpn",
           (1, 133): "ipv4-flowspec", (2, 133): "ipv6-flowspec"}
ORIGINS = {0: "IGP", 1: "EGP", 2: "INCOMPLETE"}
NOTIF = {
    1: ("message-header-error", {1: "connection-not-synchronized", 2: "bad-message-length", 3: "bad-message-type"}),
    2: ("open-message-error", {1: "unsupported-version", 2: "bad-peer-as", 3: "bad-bgp-identifier",
                               4: "unsupported-optional-parameter", 6: "unacceptable-hold-time",
                               7: "unsupported-capability", 11: "role-mismatch"}),
    3: ("update-message-error", {1: "malformed-attribute-list", 2: "unrecognized-wellknown-attribute",
                                 3: "missing-wellknown-attribute", 4: "attribute-flags-error",
                                 5: "attribute-length-error", 6: "invalid-origin", 8: "invalid-next-hop",
                                 9: "optional-attribute-error", 10: "invalid-network-field",
                                 11: "malformed-as-path"}),
    4: ("hold-timer-expired", {}),
    5: ("fsm-error", {1: "unexpected-in-opensent", 2: "unexpected-in-openconfirm", 3: "unexpected-in-established"}),
    6: ("cease", {1: "max-prefixes", 2: "admin-shutdown", 3: "peer-deconfigured", 4: "admin-reset",
                  5: "connection-rejected", 6: "other-config-change", 7: "connection-collision",
                  8: "out-of-resources", 9: "hard-reset", 10: "bfd-down"}),
    7: ("route-refresh-error", {1: "invalid-length"}),
}
CAPS = {1: "multiprotocol", 2: "route-refresh", 3: "outbound-route-filtering", 5: "extended-next-hop",
        6: "extended-message", 9: "bgp-role", 64: "graceful-restart", 65: "4-octet-as", 69: "add-path",
        70: "enhanced-route-refresh", 71: "long-lived-graceful-restart", 73: "fqdn",
        75: "software-version", 128: "route-refresh-old-cisco"}


def afs(afi, safi):
    return AFISAFI.get((afi, safi), "afi%d-safi%d" % (afi, safi))


def ip4(b):
    return str(ipaddress.IPv4Address(b))


def ip6(b):
    return str(ipaddress.IPv6Address(b))


# ---------------------------------------------------------------- OPEN
def parse_open(m):
    ver, my_as, hold = struct.unpack("!BHH", m[19:24])
    bgpid = ip4(m[24:28])
    optlen = m[28]
    opt = m[29:29 + optlen]
    caps = []  # (code, value bytes)
    i = 0
    while i + 2 <= len(opt):
        ptype, plen = opt[i], opt[i + 1]
        pv = opt[i + 2:i + 2 + plen]
        i += 2 + plen
        if ptype != 2:
            continue
        j = 0
        while j + 2 <= len(pv):
            code, clen = pv[j], pv[j + 1]
            caps.append((code, pv[j + 2:j + 2 + clen]))
            j += 2 + clen
    return dict(version=ver, my_as=my_as, hold=hold, id=bgpid, caps=caps)


def open_ctx(o):
    """Summary of an OPEN relevant for the decoding context."""
    if o is None:
        return dict(as4=False, ext=False, ap={})
    ap = {}
    for code, v in o["caps"]:
        if code == 69:
            for k in range(0, len(v) - 3, 4):
                afi, safi, sr = struct.unpack("!HBB", v[k:k + 4])
                ap[(afi, safi)] = sr
    return dict(as4=any(c == 65 for c, _ in o["caps"]), ext=any(c == 6 for c, _ in o["caps"]), ap=ap)


def describe_cap(code, v):
    name = CAPS.get(code, "capability-%d" % code)
    try:
        if code == 1:
            afi, _, safi = struct.unpack("!HBB", v)
            return "MP %s" % afs(afi, safi)
        if code == 65:
            return "4-octet-AS %d" % struct.unpack("!I", v)[0]
        if code == 69:
            d = {1: "receive", 2: "send", 3: "send/receive"}
            return "ADD-PATH " + ", ".join(
                "%s %s" % (afs(*struct.unpack("!HB", v[k:k + 3])), d.get(v[k + 3], v[k + 3]))
                for k in range(0, len(v) - 3, 4))
        if code == 64:
            flags_time = struct.unpack("!H", v[:2])[0]
            parts = ["restart-time %d" % (flags_time & 0xfff), "R=%d" % (flags_time >> 15),
                     "N=%d" % ((flags_time >> 14) & 1)]
            for k in range(2, len(v) - 3, 4):
                afi, safi, fl = struct.unpack("!HBB", v[k:k + 4])
                parts.append("%s F=%d" % (afs(afi, safi), fl >> 7))
            return "graceful-restart(%s)" % ", ".join(parts)
        if code == 71:
            if not v:
                return "long-lived-graceful-restart(empty)"
            parts = []
            for k in range(0, len(v) - 6, 7):
                afi, safi, fl = struct.unpack("!HBB", v[k:k + 4])
                st = int.from_bytes(v[k + 4:k + 7], "big")
                parts.append("%s F=%d stale-time %d" % (afs(afi, safi), fl >> 7, st))
            return "long-lived-graceful-restart(%s)" % ", ".join(parts)
        if code == 5:
            parts = []
            for k in range(0, len(v) - 5, 6):
                afi, safi, nhafi = struct.unpack("!HHH", v[k:k + 6])
                parts.append("%s via afi %d next hop" % (afs(afi, safi), nhafi))
            return "extended-next-hop(%s)" % ", ".join(parts)
        if code == 73:
            hl = v[0]
            host = v[1:1 + hl].decode("utf-8", "replace")
            dl = v[1 + hl]
            dom = v[2 + hl:2 + hl + dl].decode("utf-8", "replace")
            return "fqdn(host %r, domain %r)" % (host, dom)
        if code == 75:
            return "software-version(%r)" % v[1:1 + v[0]].decode("utf-8", "replace")
        if code == 9:
            roles = {0: "provider", 1: "rs-server", 2: "rs-client", 3: "customer", 4: "peer"}
            return "bgp-role(%s)" % roles.get(v[0], v[0])
    except Exception:
        pass
    return name + ("(%d bytes)" % len(v) if v else "")


def describe_open(m):
    o = parse_open(m)
    caps = ", ".join(describe_cap(c, v) for c, v in o["caps"])
    return ("OPEN version %d, AS %d, hold time %d, BGP id %s; capabilities: %s"
            % (o["version"], o["my_as"], o["hold"], o["id"], caps or "none"))


# ---------------------------------------------------------------- UPDATE
def parse_prefixes(b, afi, addpath):
    out = []
    i = 0
    alen = 4 if afi == 1 else 16
    while i < len(b):
        pid = None
        if addpath:
            pid = struct.unpack("!I", b[i:i + 4])[0]
            i += 4
        plen = b[i]
        i += 1
        n = (plen + 7) // 8
        raw = b[i:i + n] + b"\0" * (alen - n)
        if n > alen or i + n > len(b):
            raise ValueError("bad prefix")
        i += n
        addr = ip4(raw) if afi == 1 else ip6(raw)
        out.append("%s/%d%s" % (addr, plen, "" if pid is None else " (path id %d)" % pid))
    return out


def as_path(v, four):
    w = 4 if four else 2
    segs = []
    i = 0
    while i < len(v):
        st, cnt = v[i], v[i + 1]
        i += 2
        asns = [int.from_bytes(v[i + k * w:i + (k + 1) * w], "big") for k in range(cnt)]
        i += cnt * w
        s = " ".join(str(a) for a in asns)
        segs.append({1: "{%s}", 2: "%s", 3: "(%s)", 4: "[%s]"}.get(st, "?%s").replace("%s", s))
    if i != len(v):
        raise ValueError("bad AS_PATH")
    return "[" + " ".join(segs) + "]"


def ext_comm(c):
    t, st = c[0], c[1]
    if t in (0x00, 0x40) and st in (2, 3):
        return "%s:%d:%d" % ("rt" if st == 2 else "ro", struct.unpack("!H", c[2:4])[0], struct.unpack("!I", c[4:8])[0])
    if t in (0x01, 0x41) and st in (2, 3):
        return "%s:%s:%d" % ("rt" if st == 2 else "ro", ip4(c[2:6]), struct.unpack("!H", c[6:8])[0])
    if t in (0x02, 0x42) and st in (2, 3):
        return "%s:%d:%d" % ("rt" if st == 2 else "ro", struct.unpack("!I", c[2:6])[0], struct.unpack("!H", c[6:8])[0])
    return "0x" + c.hex()


def describe_update(m, ctx, sender_afi_hint=None):
    """ctx: dict(four=bool, addpath=set of (afi,safi)). Returns (desc, shortname)."""
    body = m[19:]
    wl = struct.unpack("!H", body[:2])[0]
    withdrawn = body[2:2 + wl]
    al = struct.unpack("!H", body[2 + wl:4 + wl])[0]
    attrs = body[4 + wl:4 + wl + al]
    nlri = body[4 + wl + al:]
    ap4 = (1, 1) in ctx["addpath"]
    parts = []
    mp_reach = mp_unreach = None
    names = []
    i = 0
    while i < len(attrs):
        flags, code = attrs[i], attrs[i + 1]
        if flags & 0x10:
            ln = struct.unpack("!H", attrs[i + 2:i + 4])[0]
            i += 4
        else:
            ln = attrs[i + 2]
            i += 3
        v = attrs[i:i + ln]
        i += ln
        if code == 1:
            parts.append("ORIGIN %s" % ORIGINS.get(v[0], v[0]))
        elif code == 2:
            parts.append("AS_PATH %s" % as_path(v, ctx["four"]))
        elif code == 3:
            parts.append("NEXT_HOP %s" % ip4(v))
        elif code == 4:
            parts.append("MED %d" % struct.unpack("!I", v)[0])
        elif code == 5:
            parts.append("LOCAL_PREF %d" % struct.unpack("!I", v)[0])
        elif code == 6:
            parts.append("ATOMIC_AGGREGATE")
        elif code == 7:
            if len(v) == 8:
                parts.append("AGGREGATOR AS %d %s (4-octet)" % (struct.unpack("!I", v[:4])[0], ip4(v[4:])))
            else:
                parts.append("AGGREGATOR AS %d %s (2-octet)" % (struct.unpack("!H", v[:2])[0], ip4(v[2:])))
        elif code == 8:
            cs = [struct.unpack("!HH", v[k:k + 4]) for k in range(0, len(v), 4)]
            parts.append("COMMUNITIES [%s]" % " ".join("%d:%d" % c for c in cs))
        elif code == 9:
            parts.append("ORIGINATOR_ID %s" % ip4(v))
        elif code == 10:
            parts.append("CLUSTER_LIST [%s]" % " ".join(ip4(v[k:k + 4]) for k in range(0, len(v), 4)))
        elif code == 14:
            afi, safi, nhl = struct.unpack("!HBB", v[:4])
            nh = v[4:4 + nhl]
            if nhl == 4:
                nhs = ip4(nh)
            elif nhl in (16, 32):
                nhs = " + ".join(ip6(nh[k:k + 16]) for k in range(0, nhl, 16))
                nhs += " (%d-byte %s)" % (nhl, "global" if nhl == 16 else "global+link-local")
            else:
                nhs = "0x" + nh.hex()
            nl = v[4 + nhl + 1:]
            pf = parse_prefixes(nl, afi, (afi, safi) in ctx["addpath"])
            mp_reach = (afi, safi, len(pf))
            parts.append("MP_REACH_NLRI %s next hop %s, %d NLRI: %s" % (afs(afi, safi), nhs, len(pf), ", ".join(pf)))
        elif code == 15:
            afi, safi = struct.unpack("!HB", v[:3])
            pf = parse_prefixes(v[3:], afi, (afi, safi) in ctx["addpath"])
            mp_unreach = (afi, safi, len(pf))
            if pf:
                parts.append("MP_UNREACH_NLRI %s %d withdrawn: %s" % (afs(afi, safi), len(pf), ", ".join(pf)))
            else:
                parts.append("MP_UNREACH_NLRI %s empty (End-of-RIB)" % afs(afi, safi))
        elif code == 16:
            parts.append("EXTENDED_COMMUNITIES [%s]" % " ".join(ext_comm(v[k:k + 8]) for k in range(0, len(v), 8)))
        elif code == 17:
            parts.append("AS4_PATH %s" % as_path(v, True))
        elif code == 18:
            parts.append("AS4_AGGREGATOR AS %d %s" % (struct.unpack("!I", v[:4])[0], ip4(v[4:])))
        elif code == 32:
            ls = [struct.unpack("!III", v[k:k + 12]) for k in range(0, len(v), 12)]
            parts.append("LARGE_COMMUNITIES [%s]" % " ".join("%d:%d:%d" % c for c in ls))
        else:
            parts.append("attribute %d flags 0x%02x (%d bytes)" % (code, flags, ln))
        names.append(code)
    wd = parse_prefixes(withdrawn, 1, ap4)
    nl = parse_prefixes(nlri, 1, ap4)
    desc = []
    if not wd and not nl and not attrs:
        return "UPDATE End-of-RIB marker for ipv4-unicast (empty UPDATE)", "update-eor-ipv4"
    if mp_unreach and mp_unreach[2] == 0 and len(names) == 1:
        a = afs(mp_unreach[0], mp_unreach[1])
        return "UPDATE End-of-RIB marker for %s (empty MP_UNREACH_NLRI)" % a, "update-eor-" + a.split("-")[0]
    if wd:
        desc.append("%d withdrawn ipv4: %s" % (len(wd), ", ".join(wd)))
    if parts:
        desc.append("attributes: " + "; ".join(parts))
    if nl:
        desc.append("%d ipv4 NLRI%s: %s" % (len(nl), " with ADD-PATH ids" if ap4 else "", ", ".join(nl)))
    if mp_reach:
        short = "update-%s-%dnlri" % (afs(*mp_reach[:2]).split("-")[0], mp_reach[2])
    elif nl:
        short = "update-ipv4-%dnlri" % len(nl)
    elif mp_unreach:
        short = "update-withdraw-%s-%d" % (afs(*mp_unreach[:2]).split("-")[0], mp_unreach[2])
    else:
        short = "update-withdraw-ipv4-%d" % len(wd)
    if mp_reach and nl:
        short = "update-mixed"
    if 17 in names:
        short += "-as4path"
    mp = mp_reach or mp_unreach
    if ((nl or wd) and ap4) or (mp and (mp[0], mp[1]) in ctx["addpath"]):
        short += "-addpath"
    if 9 in names or 10 in names:
        short += "-reflected"
    return "UPDATE " + "; ".join(desc), short


# ---------------------------------------------------------------- other
def describe_notification(m):
    code, sub = m[19], m[20]
    data = m[21:]
    cname, subs = NOTIF.get(code, ("code-%d" % code, {}))
    sname = subs.get(sub, "subcode-%d" % sub) if sub or code in (1, 2, 3, 5, 6, 7) else "unspecific"
    d = "NOTIFICATION %d/%d %s / %s" % (code, sub, cname, sname)
    extra = ""
    if code == 6 and sub in (2, 4) and data:
        ln = data[0]
        txt = data[1:1 + ln].decode("utf-8", "replace")
        d += ", RFC 8203 shutdown communication %r" % txt
    elif code == 6 and sub == 1 and len(data) >= 7:
        afi, safi, lim = struct.unpack("!HBI", data[:7])
        d += ", data %s limit %d" % (afs(afi, safi), lim)
    elif code == 2 and sub == 7 and data:
        caps = []
        j = 0
        while j + 2 <= len(data):
            caps.append(describe_cap(data[j], data[j + 2:j + 2 + data[j + 1]]))
            j += 2 + data[j + 1]
        d += ", unsupported capabilities: %s" % ", ".join(caps)
    elif code == 2 and sub == 2 and len(data) in (2, 4):
        d += ", data: AS %d (the AS number in the rejected OPEN)" % int.from_bytes(data, "big")
    elif code == 2 and sub == 3 and len(data) == 4:
        d += ", data: BGP identifier %s" % ip4(data)
    elif code == 2 and sub == 6 and len(data) == 2:
        d += ", data: offered hold time %d" % int.from_bytes(data, "big")
    elif data and all(32 <= c < 127 for c in data):
        d += ", data (ASCII) %r" % data.decode()
    elif data:
        d += ", data 0x%s" % data.hex()
    short = "notification-%d-%d-%s" % (code, sub, (subs.get(sub) if subs else cname) or cname)
    return d + extra, short


def describe_rr(m):
    afi, sub, safi = struct.unpack("!HBB", m[19:23])
    sn = {0: "", 1: "BoRR", 2: "EoRR"}.get(sub, "subtype %d" % sub)
    d = "ROUTE-REFRESH %s%s" % (afs(afi, safi), (" " + sn) if sn else "")
    return d, "route-refresh-%s%s" % (afs(afi, safi).split("-")[0], ("-" + sn.lower()) if sn else "")


def describe(m, ctx):
    t = m[18]
    if t == 1:
        return describe_open(m), "open"
    if t == 2:
        return describe_update(m, ctx)
    if t == 3:
        return describe_notification(m)
    if t == 4:
        return "KEEPALIVE", "keepalive"
    if t == 5:
        return describe_rr(m)
    return "message type %d" % t, "type%d" % t


# ---------------------------------------------------------------- pcap
def read_streams(pcap):
    """Return {stream: {(src,sport,dst,dport): [(seq, time, payload)]}} in first-seen order."""
    out = subprocess.run(
        ["tshark", "-r", pcap, "-Y", "tcp.len > 0", "-o", "tcp.relative_sequence_numbers:TRUE",
         "-T", "fields", "-E", "separator=\t", "-e", "tcp.stream", "-e", "ip.src", "-e", "ipv6.src",
         "-e", "tcp.srcport", "-e", "ip.dst", "-e", "ipv6.dst", "-e", "tcp.dstport", "-e", "tcp.seq",
         "-e", "frame.time_epoch", "-e", "tcp.payload"],
        check=True, capture_output=True, text=True).stdout
    streams = {}
    for line in out.splitlines():
        f = line.split("\t")
        if len(f) < 10 or not f[9]:
            continue
        st = int(f[0])
        src = f[1] or f[2]
        dst = f[4] or f[5]
        key = (src, int(f[3]), dst, int(f[6]))
        streams.setdefault(st, {}).setdefault(key, []).append((int(f[7]), float(f[8]), bytes.fromhex(f[9].replace(":", ""))))
    return streams


def reassemble(segs):
    """Order by seq, drop retransmitted bytes. Returns (bytes, [(offset, time)])."""
    segs = sorted(segs, key=lambda s: (s[0], s[1]))
    data = bytearray()
    times = []
    base = segs[0][0]
    for seq, t, p in segs:
        off = seq - base
        if off + len(p) <= len(data):
            continue
        if off > len(data):
            print("  warning: gap of %d bytes in stream, truncating" % (off - len(data)), file=sys.stderr)
            break
        p = p[len(data) - off:]
        times.append((len(data), t))
        data += p
    return bytes(data), times


def split_msgs(data, times):
    msgs = []
    i = 0
    while i + 19 <= len(data):
        if data[i:i + 16] != MARKER:
            print("  warning: bad marker at offset %d, stopping" % i, file=sys.stderr)
            break
        ln = struct.unpack("!H", data[i + 16:i + 18])[0]
        if ln < 19 or i + ln > len(data):
            print("  warning: truncated message at offset %d" % i, file=sys.stderr)
            break
        t = max((tt for o, tt in times if o <= i), default=0.0)
        msgs.append((t, data[i:i + ln]))
        i += ln
    return msgs


OWN_KEYS = {"file", "sender", "version", "receiver", "lab", "config", "kind", "description",
            "four_octet_as", "add_path", "extended_message", "sender_node", "receiver_node",
            "receiver_version", "length"}


def toml_val(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_val(x) for x in v) + "]"
    return toml_str(str(v))


def toml_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def main():
    work, outdir = sys.argv[1], sys.argv[2]
    labs = [l.strip() for l in open(os.path.join(work, "labs.txt")) if l.strip()]
    allmsgs = []  # (labidx, time, stream, dir-order, idx, record)
    for li, lab in enumerate(labs):
        ldir = os.path.join(work, lab)
        nodes = {}
        for line in open(os.path.join(ldir, "nodes.tsv")):
            f = line.rstrip("\n").split("\t")
            if len(f) >= 5:
                nodes[str(ipaddress.ip_address(f[0]))] = dict(node=f[1], sender=f[2], version=f[3], config=f[4])
        pcap = os.path.join(ldir, "capture.pcapng")
        streams = read_streams(pcap)
        print("lab %s: %d TCP streams with payload" % (lab, len(streams)), file=sys.stderr)
        for st, dirs in streams.items():
            per_dir = {}
            opens = {}
            for key, segs in dirs.items():
                data, times = reassemble(segs)
                msgs = split_msgs(data, times)
                per_dir[key] = msgs
                for _, m in msgs:
                    if m[18] == 1:
                        opens[key] = parse_open(m)
                        break
            for key, msgs in per_dir.items():
                src, sport, dst, dport = key
                rkey = (dst, dport, src, sport)
                s = nodes.get(str(ipaddress.ip_address(src)))
                r = nodes.get(str(ipaddress.ip_address(dst)))
                if s is None or r is None:
                    print("  warning: unknown endpoint in %s" % (key,), file=sys.stderr)
                    continue
                so, ro = open_ctx(opens.get(key)), open_ctx(opens.get(rkey))
                ap = sorted(k for k, v in so["ap"].items() if v in (2, 3) and ro["ap"].get(k) in (1, 3))
                ctx = dict(four=so["as4"] and ro["as4"], addpath=set(ap), ext=so["ext"] and ro["ext"])
                for idx, (t, m) in enumerate(msgs):
                    allmsgs.append((li, t, st, idx, dict(lab=lab, s=s, r=r, m=m, ctx=ctx, ap=ap,
                                                         sip=src, rip=dst)))
    allmsgs.sort(key=lambda x: x[:4])

    # Keys that others added by hand to manifest entries (e.g. expect_error) are
    # carried over to the new entry holding the same (sender, bytes).
    carried = {}
    try:
        import tomllib
        with open(os.path.join(outdir, "manifest.toml"), "rb") as fh:
            for f in tomllib.load(fh).get("fixture", []):
                extra = {k: v for k, v in f.items() if k not in OWN_KEYS}
                path = os.path.join(outdir, f.get("file", ""))
                if extra and os.path.isfile(path):
                    with open(path, "rb") as bh:
                        carried[(f.get("sender"), bh.read())] = extra
    except (FileNotFoundError, ImportError):
        pass
    except Exception as e:
        print("warning: could not read old manifest.toml (%s); hand-added keys are lost" % e, file=sys.stderr)

    # wipe previous output
    for d in set(x[4]["s"]["sender"] for x in allmsgs) | {"bird1", "bird1-v6", "bird2", "frr", "gobgp", "exabgp"}:
        p = os.path.join(outdir, d)
        if os.path.isdir(p):  # remove our .bin files only; leave files others derive (e.g. *.json)
            for f in os.listdir(p):
                if f.endswith(".bin"):
                    os.remove(os.path.join(p, f))
    seen = set()
    counters = {}
    entries = []
    for *_, rec in allmsgs:
        m, ctx, s = rec["m"], rec["ctx"], rec["s"]
        if m[18] == 2:
            key = (s["sender"], m, ctx["four"], tuple(rec["ap"]))
        else:
            key = (s["sender"], m)
        if key in seen:
            continue
        seen.add(key)
        try:
            desc, short = describe(m, ctx)
        except Exception as e:  # keep the bytes, flag the description
            desc, short = "undecodable by split.py (%s): %s" % (type(e).__name__, m.hex()), "unknown"
        n = counters.get(s["sender"], 0) + 1
        counters[s["sender"]] = n
        rel = "%s/%03d-%s.bin" % (s["sender"], n, short)
        os.makedirs(os.path.join(outdir, s["sender"]), exist_ok=True)
        with open(os.path.join(outdir, rel), "wb") as fh:
            fh.write(m)
        entries.append((rel, rec, desc))

    with open(os.path.join(outdir, "manifest.toml"), "w") as fh:
        fh.write("# Generated by proto-fixtures/capture.sh (split.py). Do not edit by hand.\n")
        fh.write("# Decoding context (four_octet_as, add_path, extended_message) is what the\n")
        fh.write("# two OPENs of the TCP session the message was captured from negotiated.\n\n")
        for rel, rec, desc in entries:
            s, r, ctx, m = rec["s"], rec["r"], rec["ctx"], rec["m"]
            fh.write("[[fixture]]\n")
            fh.write("file = %s\n" % toml_str(rel))
            fh.write("sender = %s\n" % toml_str(s["sender"]))
            fh.write("version = %s\n" % toml_str(s["version"]))
            fh.write("receiver = %s\n" % toml_str(r["sender"]))
            fh.write("lab = %s\n" % toml_str(rec["lab"]))
            fh.write("config = %s\n" % toml_str(s["config"]))
            fh.write("kind = %s\n" % toml_str(TYPES.get(m[18], "type-%d" % m[18])))
            fh.write("description = %s\n" % toml_str(desc))
            fh.write("four_octet_as = %s\n" % ("true" if ctx["four"] else "false"))
            fh.write("add_path = [%s]\n" % ", ".join(toml_str(afs(*k)) for k in rec["ap"]))
            fh.write("extended_message = %s\n" % ("true" if ctx["ext"] else "false"))
            fh.write("sender_node = %s\n" % toml_str("%s (%s)" % (s["node"], rec["sip"])))
            fh.write("receiver_node = %s\n" % toml_str("%s (%s)" % (r["node"], rec["rip"])))
            fh.write("receiver_version = %s\n" % toml_str(r["version"]))
            fh.write("length = %d\n" % len(m))
            for k, v in carried.get((s["sender"], m), {}).items():
                fh.write("%s = %s\n" % (k, toml_val(v)))
            fh.write("\n")
    kinds = {}
    for rel, rec, desc in entries:
        k = (rec["s"]["sender"], TYPES.get(rec["m"][18], "?"))
        kinds[k] = kinds.get(k, 0) + 1
    print("wrote %d fixtures" % len(entries), file=sys.stderr)
    for k in sorted(kinds):
        print("  %-9s %-13s %d" % (k[0], k[1], kinds[k]), file=sys.stderr)


if __name__ == "__main__":
    main()
