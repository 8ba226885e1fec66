#!/usr/bin/env bash
# The seed end to end, with faults. Run by tests/seed_lab.rs (or by hand:
# sudo BGPD=target/debug/bgpd bash tests/lab/seed-test.sh). Exits non-zero
# on the first failed check, after printing what it saw.
set -euo pipefail
cd "$(dirname "$0")/../.."
BGPD=${BGPD:?set BGPD to the bgpd binary}
source tests/lab/seed-lab.sh
trap 'rc=$?; [ $rc -ne 0 ] && dump; lab_down; exit $rc' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
dump() {
    echo "--- bgpd stdout (tail)"; tail -40 "$LAB_DIR/bgpd.out" 2>/dev/null || true
    echo "--- bgpd log (tail)"; tail -40 "$LAB_DIR/bgpd.log" 2>/dev/null || true
    echo "--- core routes"; ip -n "$(ns core)" route 2>/dev/null || true
}
# wait_until SECONDS DESCRIPTION COMMAND...
wait_until() {
    local t=$1 what=$2; shift 2
    local end=$((SECONDS + t))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -ge $end ] && fail "$what (after ${t}s)"
        sleep 0.2
    done
}
show() { nsx core "$BGPD" show "$@" --socket "$LAB_DIR/bgpd.sock"; }
up_count() { show neighbors --json | grep -c '"state": "up"' || true; }
all_up() { [ "$(up_count)" -eq 3 ]; }
route() { ip -n "$(ns core)" route show "$@"; }
has_nexthops() { # PREFIX NH... : the route has exactly these next hops
    local p=$1; shift
    local got; got=$(route "$p" | grep -o 'via [0-9.]*' | awk '{print $2}' | sort | tr '\n' ' ')
    local want; want=$(printf '%s\n' "$@" | sort | tr '\n' ' ')
    [ "$got" = "$want" ]
}
start_bgpd() {
    ip netns exec "$(ns core)" "$BGPD" --asn 64512 --router-id 192.168.83.1 --hold-time 9 \
        --peer 192.168.83.36 --peer 192.168.83.49 --peer 192.168.83.54 \
        --control-socket "$LAB_DIR/bgpd.sock" >>"$LAB_DIR/bgpd.out" 2>>"$LAB_DIR/bgpd.log" &
    BGPD_PID=$!
}
NODES=(192.168.83.22 192.168.83.36 192.168.83.37 192.168.83.49 192.168.83.54)

lab_up
start_bgpd

# --- Established with every reflector, as bgpd and BIRD report it.
wait_until 60 "bgpd Established with the three reflectors" all_up
for m in m1 m2 m3; do
    wait_until 20 "$m reports the core Established" \
        sh -c "ip netns exec $(ns $m) birdc -s $LAB_DIR/$m.ctl show protocols | grep Node_192_168_83_1 | grep -q Established"
done
ok "Established with every reflector (bgpd and birdc agree)"

# --- Every pod block with its node as next hop; the service CIDR as ECMP.
wait_until 20 "172.15.190.0/26 via 192.168.83.22" has_nexthops 172.15.190.0/26 192.168.83.22
wait_until 20 "172.15.191.0/26 via 192.168.83.37" has_nexthops 172.15.191.0/26 192.168.83.37
wait_until 20 "172.16.0.0/16 over every node" has_nexthops 172.16.0.0/16 "${NODES[@]}"
route 172.15.190.0/26 | grep -q "via 192.168.83.22 dev eth0 proto bgp metric 20" || fail "block not installed as proto bgp: $(route 172.15.190.0/26)"
ok "blocks via their nodes; 172.16.0.0/16 ECMP over ${#NODES[@]} nodes (ADD-PATH)"

# --- The blog's ping, ttl 62, and the service IP.
out=$(nsx vm ping -c 3 -W 2 172.15.190.2) || fail "ping 172.15.190.2: $out"
echo "$out" | grep -q "ttl=62" || fail "expected ttl=62: $out"
nsx vm ping -c 2 -W 2 172.16.0.10 >/dev/null || fail "the service IP does not answer"
ok "ping -c 3 172.15.190.2 from the VM: ttl=62; 172.16.0.10 answers"

# --- A reflector is killed: every route stays, and no ping is lost.
nsx vm ping -i 0.1 -c 40 -W 1 172.15.190.2 >"$LAB_DIR/ping-kill.txt" 2>&1 &
pinger=$!
sleep 1
for p in $(ip netns pids "$(ns m1)"); do kill -9 "$p"; done
wait $pinger || true
grep -q " 0% packet loss" "$LAB_DIR/ping-kill.txt" || fail "ping lost packets when m1 died: $(tail -3 "$LAB_DIR/ping-kill.txt")"
has_nexthops 172.15.190.0/26 192.168.83.22 || fail "block lost after m1 died"
has_nexthops 172.15.191.0/26 192.168.83.37 || fail "block lost after m1 died"
ok "reflector m1 killed: routes stay through m2 and m3, 0% ping loss"
start_bird m1
wait_until 60 "m1 back" all_up

# --- A worker's BIRD stops cleanly: its block goes within 2 s and the
# service ECMP shrinks.
for p in $(ip netns pids "$(ns w2)"); do
    [ "$(cat /proc/$p/comm)" = bird ] && kill -TERM "$p"
done
t0=$SECONDS
wait_until 2 "172.15.191.0/26 withdrawn within 2 s" sh -c "! ip -n $(ns core) route show 172.15.191.0/26 | grep -q ."
wait_until 2 "service ECMP without w2" has_nexthops 172.16.0.0/16 192.168.83.22 192.168.83.36 192.168.83.49 192.168.83.54
ok "worker w2's BIRD stopped: its block withdrawn in $((SECONDS - t0))s, service ECMP down to 4"
start_bird w2
wait_until 30 "w2's block back" has_nexthops 172.15.191.0/26 192.168.83.37

# --- A reflector restarts with graceful restart: its routes stay as stale,
# then are refreshed; nothing flaps out of the kernel.
ip -n "$(ns core)" monitor route >"$LAB_DIR/monitor-gr.txt" 2>&1 &
mon=$!
sleep 0.5
for p in $(ip netns pids "$(ns m2)"); do kill -9 "$p"; done
start_bird m2
wait_until 60 "m2 back" all_up
sleep 3
kill $mon 2>/dev/null || true
if grep -E "^Deleted .*172\.15\.19[01]\.0/26" "$LAB_DIR/monitor-gr.txt"; then
    fail "a pod block flapped out of the kernel during m2's restart"
fi
has_nexthops 172.15.190.0/26 192.168.83.22 || fail "block wrong after m2's restart"
ok "reflector m2 restarted (graceful restart): no block left the kernel"

# --- bgpd restarts (no keep): every route is back within 5 s of the
# sessions coming up.
kill -TERM "$BGPD_PID"; wait "$BGPD_PID" || fail "bgpd did not exit cleanly on SIGTERM"
route proto bgp | grep -q . && fail "routes left in the kernel after bgpd stopped"
start_bgpd
wait_until 60 "sessions back after bgpd restart" all_up
t0=$SECONDS
wait_until 5 "routes back within 5 s" has_nexthops 172.16.0.0/16 "${NODES[@]}"
has_nexthops 172.15.190.0/26 192.168.83.22 || fail "block missing after restart"
ok "bgpd restarted: routes removed at stop, back $((SECONDS - t0))s after the sessions"

# --- The core's LAN link flaps: it recovers and the kernel ends exactly right.
ip -n "$(ns core)" link set eth0 down
sleep 3
route proto bgp | grep -q . && fail "routes stayed with the LAN link down"
ip -n "$(ns core)" link set eth0 up
wait_until 90 "sessions back after the link flap" all_up
wait_until 20 "routes back after the link flap" has_nexthops 172.16.0.0/16 "${NODES[@]}"
want="172.15.190.0/26 172.15.191.0/26 172.16.0.0/16 172.16.0.10"
got=$(route proto bgp | grep -v '^\s' | awk '{print $1}' | sort | tr '\n' ' ' | sed 's/ $//')
[ "$got" = "$want" ] || fail "kernel holds [$got], expected [$want]"
ok "core LAN link flapped: sessions and exactly the expected routes are back"

echo "PASS: seed lab"
