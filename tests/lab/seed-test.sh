#!/usr/bin/env bash
# The seed end to end, with faults. Run by tests/seed_lab.rs (or by hand:
# sudo BGPD=target/debug/bgpd bash tests/lab/seed-test.sh). Exits non-zero
# on the first failed check, after printing what it saw.
set -euo pipefail
cd "$(dirname "$0")/../.."
BGPD=${BGPD:?set BGPD to the bgpd binary}
source tests/lab/seed-lab.sh
trap 'rc=$?; [ $rc -ne 0 ] && dump; lab_down; exit $rc' EXIT

source tests/lab/checks.sh
dump() {
    echo "--- bgpd stdout (tail)"; tail -40 "$LAB_DIR/bgpd.out" 2>/dev/null || true
    echo "--- bgpd log (tail)"; tail -40 "$LAB_DIR/bgpd.log" 2>/dev/null || true
    echo "--- core routes"; ip -n "$(ns core)" route 2>/dev/null || true
}
show() { nsx core "$BGPD" show "$@" --socket "$LAB_DIR/bgpd.sock"; }
# The three reflectors are up (the raw test peer is not counted).
all_up() {
    show neighbors --json | python3 -c '
import json, sys
rows = json.load(sys.stdin)
up = [r for r in rows if r["address"] in ("192.168.83.36", "192.168.83.49", "192.168.83.54") and r["state"] == "up"]
sys.exit(0 if len(up) == 3 else 1)'
}
route() { ip -n "$(ns core)" route show "$@"; }
has_nexthops() { # PREFIX NH... : the route has exactly these next hops
    local p=$1; shift
    local got; got=$(route "$p" | grep -o 'via [0-9.]*' | awk '{print $2}' | sort | tr '\n' ' ')
    local want; want=$(printf '%s\n' "$@" | sort | tr '\n' ' ')
    [ "$got" = "$want" ]
}
# write_config KEEP RAW: the core's config as docs/examples/seed.toml, with
# graceful_restart_keep = KEEP (no line: the default), and with RAW=yes a raw
# test peer with a max-prefix limit (RAW=no: the VMs' subnet announced
# instead, to see the reflectors keep it while bgpd restarts).
write_config() {
    cat >"$LAB_DIR/bgpd.toml" <<EOC
local_as = 64512
router_id = "192.168.83.1"
hold_time = 9

[import]
allow = [
  { prefix = "172.15.0.0/16", le = 26 },
  { prefix = "172.16.0.0/16", le = 32 },
  { prefix = "fd00:15::/48", le = 122 },
]

[[peer]]
address = "192.168.83.36"
description = "master1"
[[peer]]
address = "192.168.83.49"
description = "master2"
[[peer]]
address = "192.168.83.54"
description = "master3"
[[peer]]
address = "fd00:83::36"
description = "master1 (bird6)"
[[peer]]
address = "fd00:83::49"
description = "master2 (bird6)"
[[peer]]
address = "fd00:83::54"
description = "master3 (bird6)"
$(if [ "$2" = yes ]; then cat <<EOR
[[peer]]
address = "192.168.83.99"
description = "raw test peer"
passive = true
max_prefix = { limit = 5, warning_percent = 80, restart_after = "1h" }
EOR
fi)

$(if [ "$2" = no ]; then printf '[[network]]\nprefix = "192.168.82.0/24"\n'; fi)

[kernel]
$([ -n "$1" ] && echo "graceful_restart_keep = \"$1\"")

[control]
socket = "$LAB_DIR/bgpd.sock"
EOC
}
start_bgpd() {
    "$BGPD" check --config "$LAB_DIR/bgpd.toml" >/dev/null || fail "bgpd check: $("$BGPD" check --config "$LAB_DIR/bgpd.toml" 2>&1)"
    BGPD_LOG=${BGPD_LOG:-debug} ip netns exec "$(ns core)" "$BGPD" --config "$LAB_DIR/bgpd.toml" \
        >>"$LAB_DIR/bgpd.out" 2>>"$LAB_DIR/bgpd.log" &
    BGPD_PID=$!
}
NODES=(192.168.83.22 192.168.83.36 192.168.83.37 192.168.83.49 192.168.83.54)

lab_up
mkns raw
lan_port raw 192.168.83.99/24
write_config 0 yes
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
# Through kernel nexthop objects: one group per set of next hops, shared.
objects() { ip -n "$(ns core)" nexthop show protocol 186; }
svcroute=$(route 172.16.0.0/16)
grep -q "^172.16.0.0/16 nhid " <<<"$svcroute" || fail "the service CIDR does not use a nexthop group: $svcroute"
objs=$(objects)
groups=$(grep -c " group " <<<"$objs" || true)
[ "$groups" -ge 1 ] || fail "no nexthop group of bgpd's: $objs"
svc=$(sed -n 's/.* nhid \([0-9]*\) .*/\1/p' <<<"$svcroute")
grep -q "^id $svc group .*/.*/" <<<"$objs" || fail "group $svc of 172.16.0.0/16 is not a multipath group: $objs"
ok "routes point at nexthop groups ($groups groups, $(grep -c via <<<"$objs") next hops; 172.16.0.0/16 via group $svc)"
# Before any fault: the cluster has converged, every reflector reflects
# every block (a worker's sessions to the reflectors come up one by one, and
# BIRD's own collisions can withdraw a path briefly), and nothing is stale.
converged() {
    show routes --json | python3 -c '
import json, sys
rows = {r["prefix"]: r for r in json.load(sys.stdin)}
ok = all(rows.get(p, {}).get("paths", 0) >= 3 for p in ("172.15.190.0/26", "172.15.191.0/26"))
# A reflector that came back keeps its old paths stale until its End-of-RIB
# (graceful restart): the next fault waits for the refresh.
ok = ok and not any(r["stale"] for r in rows.values())
sys.exit(0 if ok else 1)'
}
wait_until 60 "every reflector reflects every block" converged
sleep 2

# --- The blog's ping, ttl 62, and the service IP.
out=$(nsx vm ping -c 3 -W 2 172.15.190.2) || fail "ping 172.15.190.2: $out"
echo "$out" | grep -q "ttl=62" || fail "expected ttl=62: $out"
nsx vm ping -c 2 -W 2 172.16.0.10 >/dev/null || fail "the service IP does not answer"
ok "ping -c 3 172.15.190.2 from the VM: ttl=62; 172.16.0.10 answers"

# --- IPv6: bird6 sessions over IPv6, v6 blocks via their nodes, ping6.
all_up6() {
    show neighbors --json | python3 -c '
import json, sys
rows = json.load(sys.stdin)
up = [r for r in rows if r["address"].startswith("fd00:83::") and r["state"] == "up"]
sys.exit(0 if len(up) == 3 else 1)'
}
wait_until 60 "bgpd Established with the three bird6 reflectors" all_up6
has6() { ip -n "$(ns core)" -6 route show "$1" | grep -q "via $2"; }
wait_until 30 "fd00:15:0:190::/122 via fd00:83::22" has6 fd00:15:0:190::/122 fd00:83::22
wait_until 30 "fd00:15:0:191::/122 via fd00:83::37" has6 fd00:15:0:191::/122 fd00:83::37
out=$(nsx vm ping -6 -c 3 -W 2 fd00:15:0:190::2) || fail "ping6 fd00:15:0:190::2: $out"
ok "IPv6: Established over IPv6 with bird6, v6 blocks via their nodes, ping6 from the VM to a v6 pod"

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
start_bird6 m1
wait_until 60 "m1 back" all_up
wait_until 60 "converged after m1's return" converged

# --- A worker's BIRD stops cleanly: its block goes within 2 s and the
# service ECMP shrinks.
bird_pid=
for p in $(ip netns pids "$(ns w2)"); do
    [ "$(cat /proc/$p/comm)" = bird ] && bird_pid=$p
done
kill -TERM "$bird_pid"
# "Stopped" is when BIRD has sent its Cease and exited.
wait_until 10 "w2's BIRD to exit" sh -c "! kill -0 $bird_pid"
# Functional, not a speed target: the withdrawal follows BIRD's Cease, long
# before the 9 s hold timer could expire. The window is measured in ms.
t0=$(now_ms)
wait_until 3 "172.15.191.0/26 withdrawn on w2's Cease (well before hold expiry)" sh -c "! ip -n $(ns core) route show 172.15.191.0/26 | grep -q ."
wait_until 3 "service ECMP without w2" has_nexthops 172.16.0.0/16 192.168.83.22 192.168.83.36 192.168.83.49 192.168.83.54
ok "worker w2's BIRD stopped: its block withdrawn in $(since_s "$t0")s, service ECMP down to 4"
start_bird w2
wait_until 30 "w2's block back" has_nexthops 172.15.191.0/26 192.168.83.37
wait_until 60 "converged after w2's return" converged
sleep 2

# --- A reflector restarts with graceful restart: its routes stay as stale,
# then are refreshed; nothing flaps out of the kernel.
ip -n "$(ns core)" monitor route >"$LAB_DIR/monitor-gr.txt" 2>&1 &
mon=$!
sleep 0.5
for p in $(ip netns pids "$(ns m2)"); do kill -9 "$p"; done
start_bird m2
start_bird6 m2
wait_until 60 "m2 back" all_up
sleep 3
kill $mon 2>/dev/null || true
if grep -E "^Deleted .*172\.15\.19[01]\.0/26" "$LAB_DIR/monitor-gr.txt"; then
    fail "a pod block flapped out of the kernel during m2's restart"
fi
has_nexthops 172.15.190.0/26 192.168.83.22 || fail "block wrong after m2's restart"
ok "reflector m2 restarted (graceful restart): no block left the kernel"

# --- A peer sends a malformed UPDATE: treat-as-withdraw, the session stays.
nsx raw python3 tests/lab/rawpeer.py --local 192.168.83.99 --peer 192.168.83.1 \
    --scenario taw >"$LAB_DIR/raw-taw.txt" 2>&1 &
raw=$!
wait_until 20 "the raw peer's prefix installed" sh -c "ip -n $(ns core) route show 172.15.250.0/26 | grep -q 192.168.83.99"
wait_until 10 "treat-as-withdraw removes 172.15.250.0/26" sh -c "grep -q 'malformed' $LAB_DIR/raw-taw.txt && ! ip -n $(ns core) route show 172.15.250.0/26 | grep -q ."
wait $raw || true
grep -q "session stayed up" "$LAB_DIR/raw-taw.txt" || fail "session reset on a treat-as-withdraw UPDATE: $(cat "$LAB_DIR/raw-taw.txt")"
grep -q "treat-as-withdraw" "$LAB_DIR/bgpd.log" || fail "bgpd did not log the RFC 7606 action"
ok "malformed UPDATE (ORIGIN 5): treat-as-withdraw, the prefix left the kernel, the session stayed up"
sleep 1

# --- A peer exceeds max-prefix: Cease 6/1, and no excess route ever in the
# kernel: `ip monitor` watches from before the UPDATE, so a route added and
# removed again after the Cease is caught too.
ip -n "$(ns core)" monitor route >"$LAB_DIR/monitor-max.txt" 2>&1 &
mon=$!
sleep 0.5
nsx raw python3 tests/lab/rawpeer.py --local 192.168.83.99 --peer 192.168.83.1 \
    --scenario maxprefix --count 10 >"$LAB_DIR/raw-max.txt" 2>&1 || true
grep -q "notification 6/1" "$LAB_DIR/raw-max.txt" || fail "no Cease 6/1 on max-prefix: $(cat "$LAB_DIR/raw-max.txt")"
sleep 1
kill -0 $mon 2>/dev/null || fail "ip monitor died: the max-prefix check saw nothing"
kill $mon; wait $mon 2>/dev/null || true
if grep -E "172\.15\.25[1-3]\." "$LAB_DIR/monitor-max.txt"; then
    fail "a route of the peer that exceeded max-prefix reached the kernel (ip monitor above)"
fi
route proto bgp | grep -q "172.15.25[1-3]" && fail "routes of the peer that exceeded max-prefix are in the kernel"
ok "max-prefix (limit 5, 10 sent): Cease 6/1, none of its routes ever in the kernel (ip monitor)"

# --- bgpd restarts with graceful_restart_keep = 0: every route is removed
# at the stop and comes back once the sessions are up. The time it takes is
# a figure (printed, and measured in benches/harness.sh), not a target: the
# timeout is functional.
kill -TERM "$BGPD_PID"; wait "$BGPD_PID" || fail "bgpd did not exit cleanly on SIGTERM"
route proto bgp | grep -q . && fail "routes left in the kernel after bgpd stopped with graceful_restart_keep = 0"
start_bgpd
wait_until 60 "sessions back after bgpd restart" all_up
t0=$(now_ms)
wait_until 30 "routes back after the restart" has_nexthops 172.16.0.0/16 "${NODES[@]}"
has_nexthops 172.15.190.0/26 192.168.83.22 || fail "block missing after restart"
ok "graceful_restart_keep = 0: routes removed at stop, back $(since_s "$t0")s after the sessions"

# --- The default: a restart (SIGTERM, then the same command, as systemctl
# restart or a container redeploy do) loses nothing. The routes stay in the
# kernel, the next start adopts them and defers every change to them until
# the peers' End-of-RIBs, and a route that ends unchanged gets no kernel
# message at all. The config has no graceful_restart_keep line, and no
# passive test peer (the sync waits for every configured peer).
write_config "" no
kill -TERM "$BGPD_PID"; wait "$BGPD_PID" || true
start_bgpd
synced() { nsx core "$BGPD" track --socket "$LAB_DIR/bgpd.sock" --min-established 6 >/dev/null; }
wait_until 60 "sessions up with the default config" all_up
wait_until 60 "initial sync with the default config" synced
wait_until 30 "routes in with the default config" has_nexthops 172.16.0.0/16 "${NODES[@]}"
wait_until 60 "converged before the restart" converged
m1_route() { ip netns exec "$(ns m1)" birdc -s "$LAB_DIR/m1.ctl" show route 192.168.82.0/24 2>&1 | grep -q "192.168.82.0/24"; }
wait_until 20 "m1 has the core's 192.168.82.0/24" m1_route
sleep 2
before=$(route proto bgp; ip -6 -n "$(ns core)" route show proto bgp)
# The reflector keeps what bgpd announced while bgpd restarts: bgpd closes
# its sessions without a NOTIFICATION and comes back offering graceful
# restart with the forwarding bit (RFC 4724), so m1's BIRD holds the route
# as stale meanwhile. Sampled every 100 ms.
( while :; do if m1_route; then echo ok; else echo "miss $(now_ms)"; fi; sleep 0.1; done ) \
    >"$LAB_DIR/m1-samples.txt" 2>/dev/null &
sampler=$!
ip -n "$(ns core)" monitor route >"$LAB_DIR/monitor-restart.txt" 2>&1 &
mon=$!
# 400 pings at 50 ms (20 s) cover the stop, the start and the sync (checked
# below): each ping ends by itself, so none is cut off in flight.
ip netns exec "$(ns vm)" ping -i 0.05 -c 400 -W 1 172.15.190.2 >"$LAB_DIR/ping-restart-pod.txt" 2>&1 &
ping_pod=$!
ip netns exec "$(ns vm)" ping -i 0.05 -c 400 -W 1 172.16.0.10 >"$LAB_DIR/ping-restart-svc.txt" 2>&1 &
ping_svc=$!
sleep 1
t0=$(now_ms)
kill -TERM "$BGPD_PID"; wait "$BGPD_PID" || fail "bgpd did not exit 0 on SIGTERM"
grep -q "routes left in the kernel for the next start" "$LAB_DIR/bgpd.log" || fail "bgpd did not say it left its routes in the kernel"
has_nexthops 172.15.190.0/26 192.168.83.22 || fail "SIGTERM removed the routes (the default keeps them)"
start_bgpd
wait_until 60 "sessions back after the default restart" all_up
wait_until 60 "initial sync after the default restart" synced
took=$(since_s "$t0")
kill -0 "$ping_pod" 2>/dev/null && kill -0 "$ping_svc" 2>/dev/null || fail "the restart took ${took}s: longer than the pings' 20 s window"
sleep 1
kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
samples=$(wc -l <"$LAB_DIR/m1-samples.txt")
misses=$(grep -c miss "$LAB_DIR/m1-samples.txt" || true)
[ "$samples" -ge 10 ] || fail "only $samples samples of m1's table across the restart"
[ "$misses" = 0 ] || fail "m1 lost the core's 192.168.82.0/24 in $misses of $samples samples across the restart (graceful restart)"
grep -q "graceful restart (R and F bits) offered" "$LAB_DIR/bgpd.log" || fail "the restarted bgpd did not offer graceful restart with the R and F bits"
kill -0 "$mon" 2>/dev/null || fail "ip monitor died: the restart check saw nothing"
kill "$mon" 2>/dev/null || true; wait "$mon" 2>/dev/null || true
wait "$ping_pod" || true
wait "$ping_svc" || true
after=$(route proto bgp; ip -6 -n "$(ns core)" route show proto bgp)
[ "$before" = "$after" ] || fail "the kernel changed across the restart: before [$before] after [$after]"
sent() { sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' "$1"; }
grep -q " 0% packet loss" "$LAB_DIR/ping-restart-pod.txt" || fail "VM to pod: pings lost across the restart: $(tail -2 "$LAB_DIR/ping-restart-pod.txt")"
grep -q " 0% packet loss" "$LAB_DIR/ping-restart-svc.txt" || fail "VM to service: pings lost across the restart: $(tail -2 "$LAB_DIR/ping-restart-svc.txt")"
msgs=$(grep -c "proto bgp" "$LAB_DIR/monitor-restart.txt" || true)
[ "$msgs" = 0 ] || fail "the restart sent $msgs kernel route messages for unchanged routes: $(grep "proto bgp" "$LAB_DIR/monitor-restart.txt" | head -5)"
ok "default restart (SIGTERM, start again; synced ${took}s after the stop): 0 of $(sent "$LAB_DIR/ping-restart-pod.txt") pings to the pod and 0 of $(sent "$LAB_DIR/ping-restart-svc.txt") to the service lost at 50 ms, 0 kernel route messages (ip monitor); m1 kept the core's route throughout ($samples samples)"

# --- Stopping for good: `bgpd stop` keeps (as SIGTERM), Ctrl-C (SIGINT)
# and `bgpd stop --flush` remove every route of bgpd's.
out=$(nsx core "$BGPD" stop --socket "$LAB_DIR/bgpd.sock") || fail "bgpd stop: $out"
wait "$BGPD_PID" || fail "bgpd did not exit 0 on bgpd stop"
grep -q "^bgpd stopped: [0-9]* routes left in the kernel for the next start" <<<"$out" || fail "bgpd stop said: $out"
has_nexthops 172.15.190.0/26 192.168.83.22 || fail "bgpd stop removed the routes"
start_bgpd
wait_until 60 "sessions back after bgpd stop" all_up
wait_until 60 "initial sync after bgpd stop" synced
kill -INT "$BGPD_PID"; wait "$BGPD_PID" || fail "bgpd did not exit 0 on SIGINT"
route proto bgp | grep -q . && fail "routes left in the kernel after SIGINT: $(route proto bgp)"
[ -z "$(objects)" ] || fail "nexthop objects left in the kernel after SIGINT: $(objects)"
ip -6 -n "$(ns core)" route show proto bgp | grep -q . && fail "IPv6 routes left in the kernel after SIGINT"
start_bgpd
wait_until 60 "sessions back after SIGINT" all_up
wait_until 30 "routes back after SIGINT" has_nexthops 172.16.0.0/16 "${NODES[@]}"
out=$(nsx core "$BGPD" stop --flush --socket "$LAB_DIR/bgpd.sock") || fail "bgpd stop --flush: $out"
wait "$BGPD_PID" || fail "bgpd did not exit 0 on bgpd stop --flush"
grep -q "^bgpd stopped: [0-9]* routes removed from the kernel" <<<"$out" || fail "bgpd stop --flush said: $out"
route proto bgp | grep -q . && fail "routes left in the kernel after bgpd stop --flush: $(route proto bgp)"
[ -z "$(objects)" ] || fail "nexthop objects left in the kernel after bgpd stop --flush: $(objects)"
ok "bgpd stop: routes kept for the next start; SIGINT and bgpd stop --flush: none of bgpd's routes or nexthop objects left"
start_bgpd
wait_until 60 "sessions back after bgpd stop --flush" all_up
wait_until 30 "routes back after bgpd stop --flush" has_nexthops 172.16.0.0/16 "${NODES[@]}"

# --- A worker loses power: its switch port goes dark, no BGP goodbye. The
# reflectors keep its routes until their hold timer (minutes), but bgpd
# probes every next hop in use through the kernel's neighbour table and
# takes one that misses two ARP probes out of every route: every service
# flow from the LAN answers again within 3 s. First the two ways this must
# not fire: silent nodes (they send the core nothing, but answer ARP), and
# a loaded link.
nexthops() { # "IN_USE DOWN" from bgpd show fib
    show fib --json | python3 -c '
import json, sys
h = json.load(sys.stdin)["nexthops"]
print(len(h), sum(1 for x in h if not x["up"]))'
}
wait_until 30 "the restarted bgpd back to 5 ECMP nodes" has_nexthops 172.16.0.0/16 "${NODES[@]}"
sleep 6
read -r in_use down <<<"$(nexthops)"
[ "$in_use" -ge 5 ] && [ "$down" = 0 ] || fail "idle nodes: $in_use next hops in use, $down down (want >= 5 and 0): $(show fib)"
log_mark=$(wc -l <"$LAB_DIR/bgpd.log")
nsx vm ping -f -q -w 4 172.16.0.10 >"$LAB_DIR/flood.txt" 2>&1 || true
read -r in_use down <<<"$(nexthops)"
[ "$down" = 0 ] || fail "a next hop was called down under a flood ping: $(show fib)"
tail -n +"$log_mark" "$LAB_DIR/bgpd.log" | grep -q "does not answer" && fail "a next hop went down and up under load: $(tail -n +"$log_mark" "$LAB_DIR/bgpd.log" | grep 'does not answer' | head -2)"
ok "next-hop probing: $in_use next hops in use, none down after 6 s of silent nodes nor under a 4 s flood ping ($(grep -o '[0-9]* packets transmitted' "$LAB_DIR/flood.txt"))"
# 16 flows from distinct VM addresses; at least one hashed to w2 (.37).
base=101
flows_via_w2() {
    local n=0 i
    for i in $(seq "$1" $(( $1 + 15 ))); do
        ip -n "$(ns core)" route get 172.16.0.10 from 192.168.82.$i iif eth1 | grep -q "via 192.168.83.37 " && n=$((n + 1))
    done
    echo "$n"
}
for i in $(seq 101 228); do nsx vm ip addr add 192.168.82.$i/24 dev eth0; done
while [ "$(flows_via_w2 $base)" = 0 ]; do
    base=$((base + 16))
    [ $base -gt 213 ] && fail "no flow of 128 source addresses hashes to w2"
done
via_w2=$(flows_via_w2 $base)
pids=()
for i in $(seq $base $((base + 15))); do
    ip netns exec "$(ns vm)" ping -n -I 192.168.82.$i -i 0.1 -W 1 -w 12 172.16.0.10 >"$LAB_DIR/flow-$i.txt" 2>&1 &
    pids+=($!)
done
sleep 3
t0=$(now_ms)
ip -n "$(ns hub)" link set p-w2 down
wait_until 5 "w2 out of the service ECMP after its power cut" has_nexthops 172.16.0.0/16 192.168.83.22 192.168.83.36 192.168.83.49 192.168.83.54
took=$(since_s "$t0")
for p in "${pids[@]}"; do wait "$p" || true; done
# Per flow: the longest run of unanswered pings (100 ms each), and the last
# pings answered.
gaps=$(python3 tests/lab/flows.py "$LAB_DIR" $base) || fail "after w2's power cut: $gaps"
[ "$gaps" -lt 3000 ] || fail "after w2's power cut a flow went unanswered for ${gaps} ms (goal: under 3 s)"
show fib | grep -q "192.168.83.37 .* down .*no answer to ARP/ND probes" || fail "bgpd show fib does not say w2 is down and why: $(show fib)"
show routes | grep "172.16.0.0/16" | grep -q "192.168.83.37 (down: no ARP/ND answer)" || fail "bgpd show routes does not mark w2's next hop down: $(show routes)"
ok "worker w2 power cut (its port dark, no goodbye): out of the service ECMP in ${took}s; of 16 flows ($via_w2 via w2), the longest unanswered run ${gaps} ms; bgpd show fib and show routes say why"
ip -n "$(ns hub)" link set p-w2 up
t0=$(now_ms)
wait_until 10 "w2 back in the service ECMP once it answers" has_nexthops 172.16.0.0/16 "${NODES[@]}"
wait_until 10 "w2's block back" has_nexthops 172.15.191.0/26 192.168.83.37
ok "w2's port back: in the service ECMP again after $(since_s "$t0")s"
for i in $(seq 101 228); do nsx vm ip addr del 192.168.82.$i/24 dev eth0; done

# --- The core's LAN link flaps: it recovers and the kernel ends exactly right.
ip -n "$(ns core)" link set eth0 down
sleep 3
route proto bgp | grep -q . && fail "routes stayed with the LAN link down"
ip -n "$(ns core)" link set eth0 up
wait_until 90 "sessions back after the link flap" all_up
wait_until 20 "routes back after the link flap" has_nexthops 172.16.0.0/16 "${NODES[@]}"
want="172.15.190.0/26 172.15.191.0/26 172.16.0.0/16 172.16.0.10"
got=$(route proto bgp | grep -v '^\s' | awk '{print $1}' | sort | tr '\n' ' ' | sed 's/ $//')
wait_until 30 "v6 blocks back after the link flap" has6 fd00:15:0:191::/122 fd00:83::37
[ "$got" = "$want" ] || fail "kernel holds [$got], expected [$want]"
ok "core LAN link flapped: sessions and exactly the expected routes are back"

echo "PASS: seed lab"
