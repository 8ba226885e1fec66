#!/usr/bin/env bash
# Two cores, no single point of failure: the seed lab with a redundant pair
# of bgpd cores (core1 192.168.83.2, core2 .3, both rr-clients of the three
# reflectors) and keepalived holding the gateways 192.168.83.1 (the nodes')
# and 192.168.82.1 (the VM's) with VRRPv3 adverts every 100 ms. keepalived
# runs docs/examples/pair/keepalived-coreN.conf and bgpd
# docs/examples/pair/coreN.toml, with only the binary's and the socket's
# paths changed. Faults, each measured with 50 ms pings from the VM to a
# pod (172.15.190.2) and to the service IP (172.16.0.10), and from the node
# m1 to the VM:
#   1. the master box dies: every process SIGKILLed and its links gone;
#   2. the master's LAN link goes down;
#   3. the master's sessions all drop with the box up: (a) the reflectors
#      close them, bgpd and keepalived run on; (b) bgpd stops, keepalived
#      runs on;
#   4. each time, the old master comes back: it must stay backup (no
#      second transition) and cost nothing.
# Both cores announce the VMs' subnet with the LAN's gateway address
# 192.168.83.1 as next hop; the node m1, without a default route, reaches
# the VM through whichever core holds it (and keeps the route from the
# surviving core alone once the dead one's session has timed out).
# Prints each loss; fails when the addresses do not move to the fit core,
# when they ever sit on an unfit one, or when traffic does not come back.
#
#   sudo BGPD=target/release/bgpd bash tests/lab/pair-test.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
BGPD=$(realpath "${BGPD:?set BGPD to the bgpd binary}")
[ "$(id -u)" = 0 ] || { echo "pair-test: run as root" >&2; exit 1; }
for t in keepalived bird birdc ping python3; do
    command -v "$t" >/dev/null || { echo "FAIL: $t is missing (see .ci/packages)" >&2; exit 1; }
done
LAB_CORES="core1:192.168.83.2 core2:192.168.83.3"
# The nodes' BIRD exports what it learns into their kernels, as
# calico-node does: the reflector nodes install the LAN network the cores
# announce.
export CALICO_KERNEL_PROGRAMMING=1
source tests/lab/seed-lab.sh
EX=docs/examples/pair
declare -A ADDR=([core1]=192.168.83.2 [core2]=192.168.83.3)
declare -A BGPD_PID=() KA_PID=()
# keepalived's enable_script_security runs only scripts no other user can
# replace: the track script's bgpd is a copy in a root-only directory.
BIN_DIR=/run/bgpd-pair-$LAB_ID
mkdir -m 0755 "$BIN_DIR"
install -m 0755 "$BGPD" "$BIN_DIR/bgpd"
BGPD=$BIN_DIR/bgpd

source tests/lab/checks.sh
dump() {
    local c
    for c in core1 core2; do
        echo "--- $c: bgpd log (tail)"; tail -15 "$LAB_DIR/$c-bgpd.log" 2>/dev/null || true
        echo "--- $c: keepalived (tail)"; grep -v "Sending gratuitous ARP on" "$LAB_DIR/$c-keepalived.log" 2>/dev/null | tail -25 || true
        echo "--- $c: addresses"; ip -n "$(ns "$c")" -4 -br addr 2>/dev/null || true
        echo "--- $c: routes"; ip -n "$(ns "$c")" route 2>/dev/null || true
    done
}
trap 'rc=$?; [ $rc -ne 0 ] && dump; lab_down; rm -rf "$BIN_DIR"; exit $rc' EXIT

other() { [ "$1" = core1 ] && echo core2 || echo core1; }
# (No "| grep -q" here: with pipefail, grep's early exit fails the writer
# with SIGPIPE, and the pipeline with it.)
alive() { [ -e "/run/netns/$(ns "$1")" ]; }
# holds CORE ADDR: the gateway address is on the core.
holds() { alive "$1" && [[ $(ip -n "$(ns "$1")" -4 -o addr show 2>/dev/null) == *" $2/"* ]]; }
holds_both() { holds "$1" 192.168.83.1 && holds "$1" 192.168.82.1; }
holds_none() { ! holds "$1" 192.168.83.1 && ! holds "$1" 192.168.82.1; }
master() {
    local c
    for c in core1 core2; do holds_both "$c" && { echo "$c"; return; }; done
    return 1
}
track() { nsx "$1" "$BGPD" track --socket "$LAB_DIR/$1.sock"; }

# The core's kernel holds what the reflectors announce: both blocks via
# their nodes and the service range over all five.
synced() {
    local r; r=$(ip -n "$(ns "$1")" route show proto bgp | sed 's/ nhid [0-9]*//')
    grep -q '^172.15.190.0/26 via 192.168.83.22' <<<"$r" &&
        grep -q '^172.15.191.0/26 via 192.168.83.37' <<<"$r" &&
        [ "$(ip -n "$(ns "$1")" route show 172.16.0.0/16 proto bgp | grep -c 'nexthop via')" = 5 ]
}

start_bgpd() {
    local c=$1
    sed "s|/run/bgpd/bgpd.sock|$LAB_DIR/$c.sock|" "$EX/$c.toml" >"$LAB_DIR/$c.toml"
    # ip netns exec runs the program itself: $! is its pid (through the
    # nsx function it would be a subshell's).
    ip netns exec "$(ns "$c")" "$BGPD" --config "$LAB_DIR/$c.toml" >>"$LAB_DIR/$c-bgpd.log" 2>&1 &
    BGPD_PID[$c]=$!
}
start_keepalived() {
    local c=$1
    sed -e "s|/usr/bin/bgpd|$BGPD|" -e "s|/run/bgpd/bgpd.sock|$LAB_DIR/$c.sock|" \
        "$EX/keepalived-$c.conf" >"$LAB_DIR/keepalived-$c.conf"
    # What runs is the shipped file: only the two paths differ.
    [ "$(diff "$EX/keepalived-$c.conf" "$LAB_DIR/keepalived-$c.conf" | grep -c '^[<>]')" = 2 ] ||
        fail "keepalived-$c.conf: more than the paths changed"
    ip netns exec "$(ns "$c")" keepalived -n -l -D -P -f "$LAB_DIR/keepalived-$c.conf" \
        -p "$LAB_DIR/$c-ka.pid" -r "$LAB_DIR/$c-vrrp.pid" -i "$c" --no-syslog \
        >>"$LAB_DIR/$c-keepalived.log" 2>&1 &
    KA_PID[$c]=$!
}
# A core boots: its box, bgpd, keepalived.
boot() {
    alive "$1" || core_up "$1" "${ADDR[$1]}"
    start_bgpd "$1"
    start_keepalived "$1"
}

# Pings every 50 ms from the VM to the pod and to the service IP, and
# from the node m1 (no default route: only the route the cores announce)
# to the VM.
PING_PIDS=()
pings_start() {
    PING_TAG=$1 PING_PIDS=()
    local d
    for d in vm:172.15.190.2 vm:172.16.0.10 m1:192.168.82.10; do
        ip netns exec "$(ns "${d%%:*}")" ping -n -i 0.05 -W 1 "${d#*:}" >"$LAB_DIR/ping-$PING_TAG-${d#*:}.out" 2>&1 &
        PING_PIDS+=($!)
    done
    sleep 1
}
# pings_stop: stops them and prints "pod: ..., service: ...". A ping
# is lost when a later one was answered and it was not; the longest gap is
# the run of lost pings times 50 ms.
pings_stop() {
    local p
    sleep 0.3
    for p in "${PING_PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    for p in "${PING_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    python3 - "$LAB_DIR/ping-$PING_TAG-172.15.190.2.out" "$LAB_DIR/ping-$PING_TAG-172.16.0.10.out" \
        "$LAB_DIR/ping-$PING_TAG-192.168.82.10.out" <<'EOF'
import re, sys
out = []
names = ("pod 172.15.190.2", "service 172.16.0.10", "node m1 to the VM")
for name, path in zip(names, sys.argv[1:]):
    text = open(path).read()
    seqs = [int(s) for s in re.findall(r"icmp_seq=(\d+) ttl=", text)]
    dups = text.count("(DUP!)")
    if not seqs:
        print(f"{name}: no answer at all"); sys.exit(1)
    got = set(seqs)
    lost = [s for s in range(1, max(got) + 1) if s not in got]
    run = gap = 0
    prev = None
    for s in lost:
        run = run + 1 if prev == s - 1 else 1
        gap = max(gap, run); prev = s
    out.append(f"{name}: {len(lost)} of {max(got)} lost, longest gap {gap * 50} ms"
               + (f", {dups} duplicates" if dups else ""))
print("; ".join(out))
EOF
}

# watch_unfit CORE: while it runs, CORE must never hold a gateway address
# (sampled every 50 ms into a file; check_unfit reads it).
watch_unfit() {
    local c=$1
    ( while :; do holds_none "$c" || echo "$(now_ms) $c holds a gateway address"; sleep 0.05; done ) \
        >"$LAB_DIR/unfit-$c" 2>/dev/null &
    WATCH_PID=$!
}
check_unfit() {
    kill "$WATCH_PID" 2>/dev/null || true; wait "$WATCH_PID" 2>/dev/null || true
    [ ! -s "$LAB_DIR/unfit-$1" ] || fail "$2: $(head -1 "$LAB_DIR/unfit-$1")"
}

# The traffic is back: the last pings before the stop were answered.
flowing() {
    nsx vm ping -n -c 3 -i 0.05 -W 1 172.15.190.2 && nsx vm ping -n -c 3 -i 0.05 -W 1 172.16.0.10 &&
        nsx m1 ping -n -c 3 -i 0.05 -W 1 192.168.82.10
}
# m1's kernel reaches the VMs' subnet by the route the cores announce, via
# the gateway address, and its BIRD has a copy from each core in CORES.
lan_route() {
    local r; r=$(ip -n "$(ns m1)" route show 192.168.82.0/24)
    [[ $r == "192.168.82.0/24 via 192.168.83.1 dev eth0 proto bird"* ]] || return 1
    r=$(birdc_ m1 show route 192.168.82.0/24)
    local c
    for c in core1 core2; do
        if [[ " $CORES_UP " == *" $c "* ]]; then
            [[ $r == *"[Node_${ADDR[$c]//./_} "* ]] || return 1
        elif [[ " ${CORES_STALE:-} " == *" $c "* ]]; then
            : # may still be there, kept by graceful restart
        else
            [[ $r != *"[Node_${ADDR[$c]//./_} "* ]] || return 1
        fi
    done
}

REPORT=()
# after_failover FAULT FAILED: the other core holds both addresses, the
# failed one none, traffic flows; the loss goes in the report.
after_failover() {
    local fault=$1 failed=$2 new; new=$(other "$2")
    wait_until 10 "$fault: $new did not take both gateway addresses" holds_both "$new"
    holds_none "$failed" || fail "$fault: $failed still holds a gateway address"
    wait_until 10 "$fault: the VM's pings did not come back" flowing
    sleep 1
    local loss; loss=$(pings_stop)
    echo "measured: $fault: $loss"
    REPORT+=("$fault: $loss")
}
# comes_back NAME CORE CMD...: CMD brings CORE back; with pings running,
# it must become fit (bgpd track), stay backup and hold no address.
comes_back() {
    local name=$1 c=$2; shift 2
    local m; m=$(master)
    pings_start "${name%% *}"
    watch_unfit "$c"
    "$@"
    wait_until 30 "$name: $c's bgpd did not sync the routes" synced "$c"
    wait_until 15 "$name: bgpd track on $c did not say fit" track "$c"
    # keepalived's rise 2: two good checks, then BACKUP.
    wait_until 10 "$name: $c's keepalived did not enter BACKUP" \
        in_backup "$c"
    sleep 2
    check_unfit "$c" "$name: the returning core took an address (a second transition)"
    local now; now=$(master || echo none)
    [ "$now" = "$m" ] || fail "$name: the master moved from $m to $now"
    local loss; loss=$(pings_stop)
    echo "measured: $name: $loss"
    REPORT+=("$name: $loss")
}
mark_log() { KA_LINES=$(( $(wc -l <"$LAB_DIR/$1-keepalived.log") + 1 )); }
since_mark() { tail -n +"$KA_LINES" "$LAB_DIR/$1-keepalived.log"; }
in_backup() { grep -q '(lan) Entering BACKUP STATE' <(since_mark "$1"); }
# went_fault FAULT CORE: CORE's keepalived gave the addresses up as FAULT.
went_fault() {
    grep -q "(lan) Entering FAULT STATE" <(since_mark "$2") || fail "$1: $2's keepalived never entered FAULT"
    grep -q "(vms) Entering FAULT STATE" <(since_mark "$2") || fail "$1: $2's vms instance did not follow into FAULT"
}

# --- The pair comes up.
lab_up
for m in "${MASTERS[@]}"; do
    wait_until 10 "BIRD on ${m%%:*} did not start" test -S "$LAB_DIR/${m%%:*}.ctl"
done
# keepalived first: no address while bgpd is not fit.
start_keepalived core1
sleep 2
holds_none core1 || fail "core1 took a gateway address before bgpd ran"
out=$(track core1 || true)
grep -q "not fit to forward: bgpd is not running" <<<"$out" || fail "bgpd track without bgpd: $out"
ok "keepalived without bgpd holds no address; $out"
# Both bgpd at once: Calico's reflectors (BIRD -R) hold their exports
# back until every peer of theirs is up, the two cores included.
start_bgpd core1
start_bgpd core2
wait_until 60 "core1 did not sync the routes" synced core1
wait_until 30 "core1 did not take both gateway addresses" holds_both core1
ok "core1 synced, fit ($(track core1)), and master"
wait_until 30 "core2 did not sync the routes" synced core2
start_keepalived core2
wait_until 15 "bgpd track on core2 did not say fit" track core2
KA_LINES=1
wait_until 10 "core2's keepalived did not enter BACKUP" in_backup core2
sleep 1
holds_none core2 || fail "core2 took an address from a fit master"
for c in core1 core2; do
    n=0
    for m in "${MASTERS[@]}"; do
        grep -q "^Node_${ADDR[$c]//./_} .*Established" <<<"$(birdc_ "${m%%:*}" show protocols)" && n=$((n + 1))
    done
    [ $n = 3 ] || fail "$c: $n of 3 reflectors show the session Established"
done
ok "both cores Established with the three reflectors (birdc), both kernels hold every route; core1 master, core2 backup"
# The node m1 has no default route: it reaches the VMs only through the
# network both cores announce.
ip -n "$(ns m1)" route del default
CORES_UP="core1 core2"
wait_until 20 "m1 has no route to 192.168.82.0/24 via 192.168.83.1 from both cores" lan_route
wait_until 10 "the VM does not reach the pod and the service, or m1 the VM" flowing
ok "the VM reaches the pod and the service through the master; m1 (no default route) reaches the VM by the route both cores announce, next hop 192.168.83.1"

# --- Fault 1: the master box dies.
m=$(master); b=$(other "$m")
pings_start f1
core_gone "$m"
after_failover "1 master box dies ($m: SIGKILL, links gone)" "$m"
# m1 keeps the surviving core's copy of the route, with the same next hop.
# The dead core's copy it may keep too, for bgpd's restart time (120 s):
# bgpd offers graceful restart, and a box that dies cannot be told from a
# bgpd that restarts. Its next hop is the gateway address, so it still
# leads to the survivor.
CORES_UP=$b CORES_STALE=$m
wait_until 20 "m1's BIRD lost the surviving core's route" lan_route
CORES_STALE=
flowing >/dev/null 2>&1 || fail "1: m1 does not reach the VM through $b alone"
ok "1: m1 reaches the VM through $b alone (its BIRD has $b's copy; the dead core's at most kept stale by graceful restart)"
CORES_UP="core1 core2"
mark_log "$m"
comes_back "1' $m boots again" "$m" boot "$m"

# --- Fault 2: the master's LAN link goes down.
m=$(master); b=$(other "$m")
mark_log "$m"
pings_start f2
# The switch port goes dark (a pulled cable): the core's eth0 loses its
# carrier.
ip -n "$(ns hub)" link set "p-$m" down
after_failover "2 master's LAN link down ($m)" "$m"
went_fault 2 "$m"
up_link() { ip -n "$(ns hub)" link set "p-$1" up; }
comes_back "2' $m's LAN link back" "$m" up_link "$m"

# --- Fault 3a: the reflectors close the master's sessions; the box, bgpd
# and keepalived run on.
m=$(master); b=$(other "$m")
# reflectors enable|disable CORE: every reflector's sessions with CORE.
reflectors() {
    local mm
    for mm in "${MASTERS[@]}"; do
        birdc_ "${mm%%:*}" "$1" "Node_${ADDR[$2]//./_}" >/dev/null
        nsx "${mm%%:*}" birdc -s "$LAB_DIR/${mm%%:*}-6.ctl" "$1" "Node_${ADDR[$2]//./_}" >/dev/null
    done
}
mark_log "$m"
pings_start f3a
reflectors disable "$m"
after_failover "3a master's sessions closed by the reflectors ($m)" "$m"
out=$(track "$m" || true)
grep -q "0 of 6 sessions established (need 1)" <<<"$out" || fail "3a: bgpd track on $m: $out"
ok "3a: bgpd track on $m: $out"
went_fault 3a "$m"
comes_back "3a' $m's sessions back" "$m" reflectors enable "$m"

# --- Fault 3b: bgpd stops (SIGTERM, as systemctl stop); keepalived runs on.
m=$(master); b=$(other "$m")
mark_log "$m"
pings_start f3b
kill -TERM "${BGPD_PID[$m]}"
wait "${BGPD_PID[$m]}" || fail "3b: bgpd on $m did not exit 0 on SIGTERM"
after_failover "3b bgpd stopped on the master ($m)" "$m"
went_fault 3b "$m"
comes_back "3b' bgpd on $m started again" "$m" start_bgpd "$m"

echo
echo "Loss with 50 ms pings from the VM (goal for a dying master: under 1 s):"
printf '  %s\n' "${REPORT[@]}"
echo "PASS: two-core lab"
