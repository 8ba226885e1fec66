#!/usr/bin/env bash
# Regenerate proto-fixtures/: real BGP messages captured from real daemons
# (BIRD 1.6 / bird6, BIRD 2, FRR, GoBGP, ExaBGP) talking to each other in
# private network namespaces.
#
#   sudo bash proto-fixtures/capture.sh            # all labs
#   sudo bash proto-fixtures/capture.sh calico gobgp   # only some labs (debug)
#
# Safety: every daemon, address, route and link lives in network namespaces
# created here (names contain the PID) and joined by veth pairs to a bridge in
# a per-lab "hub" namespace.  Nothing is changed in the root namespace; all is
# torn down on exit.  Addresses: 192.168.83.0/24, fd00:83::/64 (LAN),
# 172.15.0.0/16 + fd00:15::/48 (pools), 172.16.0.0/16 (service range).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
CFGROOT="$HERE/configs"
T=${TMPDIR:-/tmp}
CACHE="$T/bgpd-proto-fixtures-cache"
WORK="$T/bgpd-proto-fixtures.$$"
P="pf$$"                       # namespace name prefix
ALL_LABS=(calico calico-v6 bird2-frr gobgp exabgp notify)
LABS=("$@")
[ ${#LABS[@]} -eq 0 ] && LABS=("${ALL_LABS[@]}")

die() { echo "capture.sh: ERROR: $*" >&2; exit 1; }
log() { echo "[$(date +%T)] $*" >&2; }

[ "$(id -u)" = 0 ] || die "must run as root (network namespaces)"

# ------------------------------------------------------------ tools
need() { command -v "$1" >/dev/null 2>&1 || die "missing '$1' (apt-get install $2)"; }
need ip iproute2; need tshark tshark; need python3 python3
need bird bird; need bird6 bird; need birdc bird; need birdc6 bird
need gobgpd gobgpd; need gobgp gobgpd; need exabgp exabgp
[ -x /usr/lib/frr/bgpd ] || die "missing /usr/lib/frr/bgpd (apt-get install frr)"
need vtysh frr

BIRD2_ROOT="${BIRD2_DIR:-$CACHE/bird2}"
BIRD2="$BIRD2_ROOT/usr/sbin/bird"
BIRDC2="$BIRD2_ROOT/usr/sbin/birdc"
if [ ! -x "$BIRD2" ]; then
  log "fetching bird2 into $BIRD2_ROOT (apt-get download + dpkg -x; conflicts with bird 1.6 if installed)"
  mkdir -p "$CACHE/dl" && chmod 755 "$CACHE" "$CACHE/dl"
  (cd "$CACHE/dl" && rm -f bird2_*.deb && apt-get download bird2) || die "apt-get download bird2 failed (run apt-get update?)"
  dpkg -x "$CACHE"/dl/bird2_*.deb "$BIRD2_ROOT" || die "dpkg -x bird2 failed"
  [ -x "$BIRD2" ] || die "bird2 binary not found after extraction"
fi

V_BIRD1=$(bird --version 2>&1 | awk '/BIRD version/{print $3}')
V_BIRD6=$(bird6 --version 2>&1 | awk '/BIRD version/{print $3}')
V_BIRD2=$("$BIRD2" --version 2>&1 | awk '/BIRD version/{print $3}')
V_FRR=$(/usr/lib/frr/bgpd --version 2>&1 | awk '/bgpd version/{print $3}')
V_GOBGP=$(gobgpd --version 2>&1 | awk '{print $3}')
V_EXABGP=$(exabgp --version 2>&1 | awk '/ExaBGP/{print $3}')
for v in V_BIRD1 V_BIRD6 V_BIRD2 V_FRR V_GOBGP V_EXABGP; do
  [ -n "${!v}" ] || die "could not read version for $v"
done
log "versions: bird1 $V_BIRD1, bird6 $V_BIRD6, bird2 $V_BIRD2, frr $V_FRR, gobgp $V_GOBGP, exabgp $V_EXABGP"

# ------------------------------------------------------------ namespaces
NSES=()
TSHARK_PID=""
cleanup() {
  set +e
  [ -n "$TSHARK_PID" ] && kill "$TSHARK_PID" 2>/dev/null
  for ns in "${NSES[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -CONT "$pid" 2>/dev/null; kill "$pid" 2>/dev/null; done
  done
  sleep 0.5
  for ns in "${NSES[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  NSES=()
}
on_exit() {
  local rc=$?
  cleanup
  if [ $rc -ne 0 ]; then
    echo "capture.sh: failed (rc=$rc); logs kept in $WORK" >&2
  elif [ -z "${KEEP_WORK:-}" ]; then
    rm -rf "$WORK"
  fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

mkdir -p "$WORK"; chmod 755 "$WORK"
: > "$WORK/labs.txt"

LAB=""; HUB=""; LDIR=""; CDIR=""
lab_begin() {
  LAB=$1
  LDIR="$WORK/$LAB"; CDIR="$CFGROOT/$LAB"
  rm -rf "$LDIR" "$CDIR"; mkdir -p "$LDIR" "$CDIR"; chmod 755 "$LDIR"
  : > "$LDIR/nodes.tsv"
  HUB="$P-$LAB-hub"
  ip netns add "$HUB"; NSES+=("$HUB")
  ip netns exec "$HUB" ip link set lo up
  ip netns exec "$HUB" ip link add br0 type bridge
  ip netns exec "$HUB" ip link set br0 up
  log "== lab $LAB"
}
# node NAME -> namespace $P-$LAB-NAME with eth0 bridged to the hub
node() {
  local name=$1 ns="$P-$LAB-$1"
  ip netns add "$ns"; NSES+=("$ns")
  ip link add "h-$name" netns "$HUB" type veth peer name eth0 netns "$ns"
  ip netns exec "$HUB" ip link set "h-$name" master br0 up
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.eth0.accept_dad=0
  ip netns exec "$ns" ip link set lo up
  ip netns exec "$ns" ip link set eth0 up
}
ns() { echo "$P-$LAB-$1"; }
# addr NODE ADDR/LEN SENDER VERSION CONFIGFILE  (registers ADDR as that daemon)
addr() {
  local n=$1 a=$2
  if [[ $a == *:* ]]; then ip netns exec "$(ns "$n")" ip addr add "$a" dev eth0 nodad
  else ip netns exec "$(ns "$n")" ip addr add "$a" dev eth0; fi
  printf '%s\t%s\t%s\t%s\t%s\n' "${a%/*}" "$n" "$3" "$4" "proto-fixtures/configs/$LAB/$5" >> "$LDIR/nodes.tsv"
}
capture_start() {
  ip netns exec "$HUB" tshark -q -i br0 -f 'tcp port 179' -w "$LDIR/capture.pcapng" >"$LDIR/tshark.log" 2>&1 &
  TSHARK_PID=$!
  wait_until 20 "tshark to start" grep -q "Capturing on" "$LDIR/tshark.log"
  sleep 1
}
lab_end() {
  sleep 1
  if [ -n "$TSHARK_PID" ]; then kill -INT "$TSHARK_PID" 2>/dev/null || true; wait "$TSHARK_PID" 2>/dev/null || true; TSHARK_PID=""; fi
  cleanup
  [ -s "$LDIR/capture.pcapng" ] || die "lab $LAB: empty capture"
  echo "$LAB" >> "$WORK/labs.txt"
  log "== lab $LAB done"
}
wait_until() {   # wait_until SECONDS DESCRIPTION CMD...
  local t=$1 what=$2; shift 2
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -ge $end ] && die "lab $LAB: timeout after ${t}s waiting for $what"
    sleep 0.5
  done
}

# ------------------------------------------------------------ daemons
# run NODE LOGNAME CMD...   (background, inside the node namespace)
run() { local n=$1 lg=$2; shift 2; ip netns exec "$(ns "$n")" "$@" >"$LDIR/$lg.log" 2>&1 & }
sock() { echo "$LDIR/$1.ctl"; }
start_bird1() { bird -p -c "$CDIR/$2" || die "bird config $2"; run "$1" "$1" bird -f -c "$CDIR/$2" -s "$(sock "$1")" "${@:3}"; }
start_bird6() { bird6 -p -c "$CDIR/$2" || die "bird6 config $2"; run "$1" "$1" bird6 -f -c "$CDIR/$2" -s "$(sock "$1")" "${@:3}"; }
start_bird2() { "$BIRD2" -p -c "$CDIR/$2" || die "bird2 config $2"; run "$1" "$1" "$BIRD2" -f -c "$CDIR/$2" -s "$(sock "$1")"; }
b1c() { birdc -s "$(sock "$1")" "${@:2}"; }
b6c() { birdc6 -s "$(sock "$1")" "${@:2}"; }
b2c() { "$BIRDC2" -s "$(sock "$1")" "${@:2}"; }
bird_up() { "$1" "$2" show protocols "$3" 2>/dev/null | grep -q Established; }
bird_down() { ! "$1" "$2" show protocols "$3" 2>/dev/null | grep -q Established; }
start_frr() {   # start_frr NODE CONF [nozebra]  (nozebra: bgpd -Z, no interface info)
  local n=$1 d="$LDIR/frr-$1" z=()
  mkdir -p "$d"; cp "$CDIR/$2" "$d/bgpd.conf"; : > "$d/zebra.conf"; chown -R frr:frr "$d"; chmod 755 "$d"
  if [ "${3:-}" = nozebra ]; then z=(-Z); else
    run "$n" "$n-zebra" /usr/lib/frr/zebra -N "$P$n" -f "$d/zebra.conf" -z "$d/zserv.api" -i "$d/zebra.pid" \
        --vty_socket "$d" -u frr -g frr
    wait_until 20 "frr zebra on $n" test -S "$d/zserv.api"
  fi
  run "$n" "$n" /usr/lib/frr/bgpd "${z[@]}" -N "$P$n" -f "$d/bgpd.conf" -z "$d/zserv.api" -i "$d/bgpd.pid" \
      --vty_socket "$d" -u frr -g frr
  wait_until 20 "frr bgpd on $n" test -S "$d/bgpd.vty"
}
vty() { local n=$1; shift; local a=(); for c in "$@"; do a+=(-c "$c"); done
        vtysh --vty_socket "$LDIR/frr-$n" -d bgpd "${a[@]}"; }
frr_up() { vty "$1" "show bgp neighbors $2 json" | grep -q '"bgpState":"Established"'; }
frr_down() { ! frr_up "$@"; }
start_gobgp() { run "$1" "$1" gobgpd -f "$CDIR/$2" -t toml --api-hosts "127.0.0.1:${3:-50051}" -l info; 
                GOPORT[$1]=${3:-50051}; wait_until 20 "gobgpd API on $1" gob "$1" global; }
declare -A GOPORT
gob() { local n=$1; shift; ip netns exec "$(ns "$n")" gobgp -p "${GOPORT[$n]}" "$@"; }
gob_up() { gob "$1" neighbor "$2" | grep -qi 'BGP state = established'; }
start_exabgp() {
  run "$1" "$1" env exabgp.daemon.user=root exabgp.log.destination=stderr exabgp.api.cli=false \
      exabgp "$CDIR/$2"
}

. "$HERE/labs.sh"

for lab in "${LABS[@]}"; do
  declare -F "lab_${lab//-/_}" >/dev/null || die "unknown lab $lab (have: ${ALL_LABS[*]})"
  "lab_${lab//-/_}"
done

# ------------------------------------------------------------ split + check
log "checking captures for malformed packets"
bad=0
while read -r lab; do
  exp=$(tshark -r "$WORK/$lab/capture.pcapng" -qz expert,error 2>/dev/null | grep -ci malformed || true)
  if [ "$exp" != 0 ]; then log "WARNING: lab $lab: tshark reports malformed packets"; bad=1
    tshark -r "$WORK/$lab/capture.pcapng" -qz expert,error >&2; fi
  mkdir -p "$HERE/captures"; cp "$WORK/$lab/capture.pcapng" "$HERE/captures/$lab.pcapng"
  chmod 644 "$HERE/captures/$lab.pcapng"
done < "$WORK/labs.txt"
if [ ${#LABS[@]} -ne ${#ALL_LABS[@]} ]; then
  log "partial run (${LABS[*]}): fixtures NOT rewritten; work dir kept in $WORK"
  KEEP_WORK=1
  exit 0
fi
python3 "$HERE/split.py" "$WORK" "$HERE"
bash "$HERE/verify.sh"
[ "$bad" = 0 ] || log "WARNING: see malformed-packet report above"
log "done: $(find "$HERE" -name '*.bin' | wc -l) fixtures, manifest at proto-fixtures/manifest.toml"
