#!/usr/bin/env bash
# Side by side: N IPv4 /28 routes into a kernel table inside a network
# namespace, by bgpd's FIB (benches/fib_install.rs) and by BIRD 2 (static
# protocol exported by its kernel protocol). Root only; touches nothing in
# the root namespace. Usage: benches/fib-vs-bird.sh [N]   (default 1000000)
#
# BIRD 2 is timed from the first of its routes in the kernel to the last
# (so parsing the config and starting is not counted), polling the
# kernel's /proc/net/fib_triestat route count every 250 ms (it walks the trie); bgpd reports its
# own time from the first change handed to the FIB to the last ack.
set -euo pipefail
N=${1:-1000000}
BIRD=${BIRD:-/opt/bird2/usr/sbin/bird}
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }
[ -x "$BIRD" ] || { echo "no BIRD 2 at $BIRD (apt-get download bird2 && dpkg -x bird2_*.deb /opt/bird2)" >&2; exit 1; }

if [ -z "${SKIP_BGPD:-}" ]; then
  echo "== bgpd"
  FIB_BENCH_ROUTES=$N cargo bench --bench fib_install 2>/dev/null
fi

NS=fibbird$$; PEER=${NS}p; DIR=$(mktemp -d)
cleanup() {
  [ -f "$DIR/bird.pid" ] && kill "$(cat "$DIR/bird.pid")" 2>/dev/null || true
  for p in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true; ip netns del "$PEER" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
ip netns add "$NS"; ip netns add "$PEER"
ip -n "$NS" link add v0 type veth peer name p0 netns "$PEER"
ip -n "$NS" addr add 10.0.0.1/24 dev v0; ip -n "$PEER" addr add 10.0.0.2/24 dev p0
for x in "$NS v0" "$NS lo" "$PEER p0" "$PEER lo"; do set -- $x; ip -n "$1" link set "$2" up; done

python3 - "$N" > "$DIR/bird.conf" <<'PY'
import sys
n = int(sys.argv[1])
print("router id 10.0.0.1;\nprotocol device {}\nprotocol kernel { ipv4 { export all; }; }")
print("protocol static { ipv4;")
for i in range(n):
    a = 0x0b000000 + (i << 4)
    print(f"  route {a>>24}.{(a>>16)&255}.{(a>>8)&255}.{a&255}/28 via 10.0.0.2;")
print("}")
PY
count() { ip netns exec "$NS" awk '/^Main:/{m=1} m&&/Prefixes:/{print $2; exit}' /proc/net/fib_triestat; }
base=$(count); base=${base:-0}
echo "== BIRD 2 ($($BIRD --version 2>&1 | head -1))"
t0=$(date +%s.%N)
ip netns exec "$NS" "$BIRD" -f -c "$DIR/bird.conf" -s "$DIR/sock" -P "$DIR/bird.pid" &
disown
first=""
while :; do
  c=$(count); c=${c:-0}
  now=$(date +%s.%N)
  if [ -z "$first" ] && [ "$c" -gt "$base" ]; then first=$now; fi
  [ "$c" -ge $((base + N)) ] && break
  sleep 0.25
done
python3 -c "import sys; t0,f,e=map(float,sys.argv[1:4]); n=int(sys.argv[4]); print(f'BIRD 2: {n} /28 routes\n  install   {e-f:8.3f} s  ({(e-f)*1e6/n:.2f} us/route, first to last route in the kernel)\n  total     {e-t0:8.3f} s  (from start, config parse included)')" "$t0" "$first" "$now" "$N"
