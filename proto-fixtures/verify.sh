#!/usr/bin/env bash
# Check the fixture set: every file listed in manifest.toml exists and every
# .bin is listed; each file is one well-formed BGP message (marker, length);
# and tshark decodes them all (glued into one TCP stream with text2pcap)
# without a malformed-packet expert message.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$HERE"
python3 - <<'PY'
import os, re, struct, sys
man = open("manifest.toml").read()
listed = re.findall(r'^file = "([^"]+)"', man, re.M)
onfs = sorted(os.path.relpath(os.path.join(d, f), ".") for d, _, fs in os.walk(".") for f in fs if f.endswith(".bin"))
bad = 0
if sorted(listed) != onfs:
    print("manifest and files differ:", set(listed) ^ set(onfs)); bad = 1
if len(set(listed)) != len(listed):
    print("duplicate manifest entries"); bad = 1
seen = {}
for f in onfs:
    b = open(f, "rb").read()
    if b[:16] != b"\xff" * 16 or struct.unpack("!H", b[16:18])[0] != len(b) or b[18] not in (1, 2, 3, 4, 5):
        print("bad message:", f); bad = 1
print("%d fixtures, all framed correctly" % len(onfs) if not bad else "ERRORS")
sys.exit(bad)
PY
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
find . -name '*.bin' | sort | while read -r f; do
  od -Ax -tx1 -v "$f" | sed '$d'; echo
done > "$tmp/all.txt"
text2pcap -q -T 179,179 "$tmp/all.txt" "$tmp/all.pcap"
n=$(tshark -r "$tmp/all.pcap" -Y bgp -T fields -e bgp.type 2>/dev/null | tr ',' '\n' | grep -c . || true)
mal=$(tshark -r "$tmp/all.pcap" -qz expert,error 2>/dev/null | grep -ci malformed || true)
echo "tshark decoded $n BGP messages from the fixtures; malformed reports: $mal"
[ "$mal" = 0 ]
