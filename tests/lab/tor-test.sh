#!/usr/bin/env bash
# Calico's "ToR as route reflector" design, in namespaces: the node-to-node
# mesh is off and every node peers only with the core (a global BGPPeer, as
# Calico's docs do it), which reflects every pod block to every node.
#
#   LAN 192.168.83.0/24 on a bridge; nodes n1..n5 at 192.168.83.21-.25, each
#   BIRD 1.6 rendered from calico-node v3.8's template (programming its
#   kernel), a pod 172.15.20N.2 in block 172.15.20N.0/26, and the service
#   CIDR 172.16.0.0/16 with 172.16.0.10 on every node;
#   the core 192.168.83.1 (the route reflector, cluster id 224.0.0.1) with the
#   VM's LAN 192.168.82.0/24 behind it, announced to the nodes.
#
# Run once with bgpd as the core and once with BIRD 2 as the reference (or
# one of them: tor-test.sh bgpd|bird2). Run by tests/tor_lab.rs, or by hand:
#   BGPD=target/debug/bgpd bash tests/lab/tor-test.sh
# Exits non-zero on the first failed check, after printing what it saw.
set -euo pipefail
cd "$(dirname "$0")/../.."
BGPD=${BGPD:?set BGPD to the bgpd binary}
BIRD2=${BIRD2:-${BIRD2_DIR:-/opt/bird2}/usr/sbin/bird}
export CALICO_KERNEL_PROGRAMMING=1
source tests/lab/seed-lab.sh
NODES=(n1:192.168.83.21:172.15.201 n2:192.168.83.22:172.15.202 n3:192.168.83.23:172.15.203
    n4:192.168.83.24:172.15.204 n5:192.168.83.25:172.15.205)
RR=
trap 'rc=$?; [ $rc -ne 0 ] && dump; lab_down; exit $rc' EXIT

fail() { echo "FAIL [$RR]: $*" >&2; exit 1; }
ok() { echo "ok [$RR]: $*"; }
dump() {
    echo "--- core log (tail)"; tail -40 "$LAB_DIR/core.log" 2>/dev/null || true
    echo "--- core routes"; ip -n "$(ns core)" route 2>/dev/null || true
    echo "--- n1 routes"; ip -n "$(ns n1)" route 2>/dev/null || true
    echo "--- n1 bird"; birdc_ n1 show protocols 2>/dev/null || true
    if [ -S "$LAB_DIR/core.ctl" ]; then
        echo "--- core BIRD 2 routes"
        nsx core "${BIRD2%/bird}/birdc" -s "$LAB_DIR/core.ctl" show route 192.168.82.0/24 all 2>/dev/null
        nsx core "${BIRD2%/bird}/birdc" -s "$LAB_DIR/core.ctl" show protocols all static1 2>/dev/null || true || true
    fi
}
wait_until() { # SECONDS DESCRIPTION COMMAND...
    local t=$1 what=$2; shift 2
    local end=$((SECONDS + t))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -ge $end ] && fail "$what (after ${t}s)"
        sleep 0.2
    done
}
field() { echo "$1" | cut -d: -f"$2"; }
# node_route NODE PREFIX VIA: the node's kernel routes PREFIX via VIA, from BIRD.
node_route() {
    ip -n "$(ns "$1")" route show "$2" | grep -q "via $3 .*proto bird"
}
# core_nexthops PREFIX NH...: the core's kernel route has exactly these next hops.
core_nexthops() {
    local p=$1; shift
    local got want
    got=$(ip -n "$(ns core)" route show "$p" | grep -o 'via [0-9.]*' | awk '{print $2}' | sort | tr '\n' ' ')
    want=$(printf '%s\n' "$@" | sort | tr '\n' ' ')
    [ "$got" = "$want" ]
}
every_node_has_every_block() {
    local n m
    for n in "${NODES[@]}"; do
        for m in "${NODES[@]}"; do
            [ "$n" = "$m" ] && continue
            node_route "$(field "$n" 1)" "$(field "$m" 3).0/26" "$(field "$m" 2)" || return 1
        done
        node_route "$(field "$n" 1)" 192.168.82.0/24 192.168.83.1 || return 1
    done
}
sessions_up() {
    local n
    for n in "${NODES[@]}"; do
        birdc_ "$(field "$n" 1)" show protocols | grep -q "^Global_192_168_83_1 .*Established" || return 1
    done
}
nodes_lack() { # PREFIX [NODE...]: none of these nodes' kernels routes PREFIX via BIRD
    local p=$1 n; shift
    for n in "$@"; do
        ip -n "$(ns "$n")" route show "$p" | grep -q "proto bird" && return 1
    done
    return 0
}

tor_up() {
    mkdir -p "$LAB_DIR"
    mkns hub
    ip -n "$(ns hub)" link add br0 type bridge
    ip -n "$(ns hub)" link set br0 up
    mkns core
    lan_port core 192.168.83.1/24
    mkns vm
    ip -n "$(ns core)" link add eth1 type veth peer name eth0 netns "$(ns vm)"
    ip -n "$(ns core)" addr add 192.168.82.1/24 dev eth1
    ip -n "$(ns core)" link set eth1 up
    ip -n "$(ns vm)" addr add 192.168.82.10/24 dev eth0
    ip -n "$(ns vm)" link set eth0 up
    ip -n "$(ns vm)" route add default via 192.168.82.1
    local n name ip prefix
    for n in "${NODES[@]}"; do
        name=$(field "$n" 1) ip=$(field "$n" 2) prefix=$(field "$n" 3)
        mkns "$name"
        lan_port "$name" "$ip/24"
        # Proxy ARP answers the pod's 169.254.1.1 only with a route off
        # cali0; the default route is that, as on the seed's LAN.
        ip -n "$(ns "$name")" route add default via 192.168.83.1
        ip -n "$(ns "$name")" addr add 172.16.0.10/32 dev lo
        mkns "$name-pod"
        ip -n "$(ns "$name")" link add cali0 type veth peer name eth0 netns "$(ns "$name-pod")"
        ip -n "$(ns "$name")" link set cali0 up
        nsx "$name" sysctl -qw net.ipv4.conf.cali0.proxy_arp=1
        ip -n "$(ns "$name")" route add "$prefix.2/32" dev cali0
        ip -n "$(ns "$name-pod")" addr add "$prefix.2/32" dev eth0
        ip -n "$(ns "$name-pod")" link set eth0 up
        ip -n "$(ns "$name-pod")" route add 169.254.1.1 dev eth0
        ip -n "$(ns "$name-pod")" route add default via 169.254.1.1 dev eth0
        # calico-node with the mesh off and one global BGPPeer: the core.
        {
            calico_bird "$ip" - "$prefix.0/26"
            bird_peer Global_192_168_83_1 192.168.83.1
        } >"$LAB_DIR/$name.conf"
        start_bird "$name"
    done
}

start_core() {
    if [ "$RR" = bgpd ]; then
        # Every node of the LAN is a dynamic peer and a client; the VM's
        # LAN is announced; the routes go into the core's kernel.
        BGPD_LOG=debug ip netns exec "$(ns core)" "$BGPD" --asn 64512 --router-id 192.168.83.1 \
            --cluster-id 224.0.0.1 --listen-range 192.168.83.0/24,rr-client \
            --network 192.168.82.0/24 --control-socket "$LAB_DIR/bgpd.sock" \
            >"$LAB_DIR/core.out" 2>"$LAB_DIR/core.log" &
    else
        cat >"$LAB_DIR/core-bird2.conf" <<EOC
log stderr all;
router id 192.168.83.1;
protocol device { }
protocol direct { ipv4; interface "eth0"; }
protocol static { ipv4; route 192.168.82.0/24 via "eth1"; }
protocol kernel { ipv4 { export where source = RTS_BGP; }; merge paths on; }
protocol bgp nodes {
  local 192.168.83.1 as 64512;
  neighbor range 192.168.83.0/24 internal;
  rr client;
  rr cluster id 224.0.0.1;
  ipv4 { import all; export where source ~ [ RTS_BGP, RTS_STATIC ]; };
}
EOC
        ip netns exec "$(ns core)" "$BIRD2" -f -c "$LAB_DIR/core-bird2.conf" -s "$LAB_DIR/core.ctl" \
            >"$LAB_DIR/core.out" 2>"$LAB_DIR/core.log" &
    fi
    CORE_PID=$!
}

round() {
    RR=$1
    LAB_ID="$BASE_ID$RR"
    LAB_DIR="$BASE_DIR-$RR"
    rm -rf "$LAB_DIR"
    tor_up
    start_core
    local all_nh=() n
    for n in "${NODES[@]}"; do all_nh+=("$(field "$n" 2)"); done

    wait_until 60 "every node Established with the core" sessions_up
    ok "5 Calico nodes (mesh off, one global BGPPeer) Established with the core"
    wait_until 30 "every node's kernel to hold every other node's block via that node, and the VM's LAN via the core" \
        every_node_has_every_block
    ok "each node's kernel has every other node's /26 via that node and 192.168.82.0/24 via the core"
    wait_until 30 "the core to install the service CIDR over all 5 nodes" core_nexthops 172.16.0.0/16 "${all_nh[@]}"
    for n in "${NODES[@]}"; do
        ip -n "$(ns core)" route show "$(field "$n" 3).0/26" | grep -q "via $(field "$n" 2)" ||
            fail "the core lacks $(field "$n" 3).0/26 via $(field "$n" 2): $(ip -n "$(ns core)" route)"
    done
    ok "the core has every block via its node and 172.16.0.0/16 as ECMP over all 5 nodes"

    # Pod to pod across nodes, node to node directly: the reply comes back
    # through two hops (ttl 62); through the core it would be three.
    local out
    out=$(nsx n1-pod ping -c 3 -W 2 172.15.203.2) || fail "pod on n1 to pod on n3: $out"
    echo "$out" | grep -q "ttl=62" || fail "pod to pod went through the core, not node to node: $out"
    ok "a pod on n1 pings a pod on n3 node to node (ttl 62)"
    out=$(nsx vm ping -c 3 -W 2 172.15.201.2) || fail "VM to the pod on n1: $out"
    out=$(nsx vm ping -c 3 -W 2 172.15.205.2) || fail "VM to the pod on n5: $out"
    echo "$out" | grep -q "ttl=62" || fail "VM to pod: $out"
    nsx vm ping -c 2 -W 2 172.16.0.10 >/dev/null || fail "the service IP does not answer the VM"
    ok "the VM pings the pods on n1 and n5 (ttl 62) and the service IP"

    # A node that stops is withdrawn everywhere. calico-node's BIRD is the
    # process started in n5's namespace: signal it by its pid.
    local pid
    pid=$(ip netns pids "$(ns n5)" | head -1)
    [ -n "$pid" ] || fail "no BIRD in n5"
    kill "$pid"
    wait_until 30 "n5's block to leave n1..n4's kernels" nodes_lack 172.15.205.0/26 n1 n2 n3 n4
    wait_until 30 "the core to drop n5 from the service ECMP" core_nexthops 172.16.0.0/16 "${all_nh[@]:0:4}"
    ip -n "$(ns core)" route show 172.15.205.0/26 | grep -q . &&
        fail "the core still routes n5's block: $(ip -n "$(ns core)" route show 172.15.205.0/26)"
    ok "n5 stopped: its block left every node and the core; the service ECMP is over the other 4"

    if [ "$RR" = bgpd ]; then
        local adv
        adv=$(nsx core "$BGPD" show routes --advertised 192.168.83.21 --socket "$LAB_DIR/bgpd.sock")
        echo "$adv" | grep -q "^| 172.15.201.0/26" && fail "n1 was sent its own block: $adv"
        # n2..n4's blocks and the VM's LAN. Not the service CIDR: its best
        # path is n1's own (the lowest router id), and a route is never
        # reflected back to the peer it came from (RFC 4456 §8).
        echo "$adv" | grep -q "^4 prefixes" || fail "n1's Adj-RIB-Out: $adv"
        echo "$adv" | grep -q "^| 172.16.0.0/16" && fail "n1 was sent its own best path back: $adv"
        adv=$(nsx core "$BGPD" show routes --advertised 192.168.83.22 --socket "$LAB_DIR/bgpd.sock")
        echo "$adv" | grep -q "^| 172.16.0.0/16 *| 192.168.83.21 " ||
            fail "n2 was not sent the service CIDR via n1: $adv"
        ok "bgpd show routes --advertised: n1 gets 4 prefixes, not its own; n2 gets the service CIDR via n1"
    fi
    kill "$CORE_PID"
    wait "$CORE_PID" || true
    lab_down
}

BASE_ID=${LAB_ID:-t$$}
BASE_DIR=${LAB_DIR:-${TMPDIR:-/tmp}/bgpd-tor-$BASE_ID}
rounds=("${@:-bgpd bird2}")
for r in ${rounds[*]}; do round "$r"; done
echo "PASS: ToR lab (${rounds[*]})"
