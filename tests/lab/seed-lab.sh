#!/usr/bin/env bash
# The seed's network in network namespaces (sourced by demo.sh and tests).
#
#   LAN 192.168.83.0/24 on a bridge (namespace "hub")
#   masters m1..m3  192.168.83.36 .49 .54   BIRD 1.6 as Calico v3.8 reflectors
#                                            (cluster id 224.0.0.1, started -R)
#   workers w1, w2  192.168.83.22 .37       BIRD 1.6 Calico nodes, RR clients
#   pods            172.15.190.2 behind w1, 172.15.191.2 behind w2 (a /32 on a
#                   veth, as Felix programs them; blocks .190.0/26, .191.0/26)
#   services        172.16.0.10 bound on every node; 172.16.0.0/16 from each
#   core            192.168.83.1: bgpd, and 192.168.82.1 towards the VM
#   vm              192.168.82.10, default route via the core
#
# Dual stack: the LAN also has fd00:83::/64 (node N at fd00:83::N), the VM
# fd00:82::10, and an IPv6 pool fd00:15::/48 with /122 blocks
# (fd00:15:0:190::/122 behind w1, fd00:15:0:191::/122 behind w2). bird6 runs
# beside bird on every node with its own sessions over IPv6, the way
# calico-node runs them; pods get fd00:15:0:19x::2.
#
# Every name carries $LAB_ID, so parallel labs don't collide. lab_down
# kills whatever runs inside and deletes the namespaces.

LAB_ID=${LAB_ID:-s$$}
LAB_DIR=${LAB_DIR:-${TMPDIR:-/tmp}/bgpd-seed-$LAB_ID}
MASTERS=(m1:192.168.83.36 m2:192.168.83.49 m3:192.168.83.54)
# The cores the reflectors peer with, NAME:ADDRESS. One (the seed's
# 192.168.83.1) by default; with two (tests/lab/pair-test.sh: core1 at .2,
# core2 at .3) the VM sits on its own bridge behind both and the gateway
# addresses 192.168.83.1 and 192.168.82.1 are keepalived's to place.
read -r -a CORES <<<"${LAB_CORES:-core:192.168.83.1}"
WORKERS=(w1:192.168.83.22:172.15.190 w2:192.168.83.37:172.15.191)
LAB_NS=()

ns() { echo "$LAB_ID-$1"; }
nsx() { local n=$1; shift; ip netns exec "$(ns "$n")" "$@"; }

mkns() {
    local n; n=$(ns "$1")
    ip netns add "$n"
    LAB_NS+=("$n")
    ip -n "$n" link set lo up
    ip netns exec "$n" sysctl -qw net.ipv4.ip_forward=1
    ip netns exec "$n" sysctl -qw net.ipv6.conf.all.forwarding=1 2>/dev/null || true
    # Keep IPv6 addresses across a link flap, as a configured router does.
    ip netns exec "$n" sysctl -qw net.ipv6.conf.all.keep_addr_on_down=1 2>/dev/null || true
    ip netns exec "$n" sysctl -qw net.ipv6.conf.default.keep_addr_on_down=1 2>/dev/null || true
}

# lan_port NODE ADDR/LEN [V6ADDR/LEN]: a veth from the node to the LAN bridge.
lan_port() {
    local node=$1 addr=$2 addr6=${3:-}
    ip -n "$(ns "$node")" link add eth0 type veth peer name "p-$node" netns "$(ns hub)"
    ip -n "$(ns hub)" link set "p-$node" master br0 up
    ip -n "$(ns "$node")" addr add "$addr" dev eth0
    [ -n "$addr6" ] && ip -n "$(ns "$node")" addr add "$addr6" dev eth0 nodad
    ip -n "$(ns "$node")" link set eth0 up
}

# calico_bird, calico_bird6 and bird_peer: the one Calico BIRD rendering.
source "$(dirname "${BASH_SOURCE[0]}")/calico-bird.sh"

start_bird6() {
    local node=$1
    ip netns exec "$(ns "$node")" bird6 -f -R -c "$LAB_DIR/$node-6.conf" -s "$LAB_DIR/$node-6.ctl" \
        >"$LAB_DIR/$node-6.log" 2>&1 &
}

start_bird() {
    local node=$1
    ip netns exec "$(ns "$node")" bird -f -R -c "$LAB_DIR/$node.conf" -s "$LAB_DIR/$node.ctl" \
        >"$LAB_DIR/$node.log" 2>&1 &
}

birdc_() { local node=$1; shift; nsx "$node" birdc -s "$LAB_DIR/$node.ctl" "$@"; }

lab_up() {
    mkdir -p "$LAB_DIR"
    mkns hub
    ip -n "$(ns hub)" link add br0 type bridge
    ip -n "$(ns hub)" link set br0 up
    if [ "${#CORES[@]}" -eq 1 ]; then
        mkns core
        lan_port core 192.168.83.1/24 fd00:83::1/64
        mkns vm
        ip -n "$(ns core)" link add eth1 type veth peer name eth0 netns "$(ns vm)"
        ip -n "$(ns core)" addr add 192.168.82.1/24 dev eth1
        ip -n "$(ns core)" addr add fd00:82::1/64 dev eth1 nodad
        ip -n "$(ns core)" link set eth1 up
        ip -n "$(ns vm)" addr add 192.168.82.10/24 dev eth0
        ip -n "$(ns vm)" addr add fd00:82::10/64 dev eth0 nodad
        ip -n "$(ns vm)" link set eth0 up
        ip -n "$(ns vm)" -6 route add default via fd00:82::1
    else
        # The VM's subnet on a second bridge; each core has a port on it
        # and on the LAN (core_up), and keepalived adds the gateways.
        ip -n "$(ns hub)" link add br1 type bridge
        ip -n "$(ns hub)" link set br1 up
        mkns vm
        ip -n "$(ns vm)" link add eth0 type veth peer name q-vm netns "$(ns hub)"
        ip -n "$(ns hub)" link set q-vm master br1 up
        ip -n "$(ns vm)" addr add 192.168.82.10/24 dev eth0
        ip -n "$(ns vm)" link set eth0 up
        local c
        for c in "${CORES[@]}"; do core_up "${c%%:*}" "${c#*:}"; done
    fi
    ip -n "$(ns vm)" route add default via 192.168.82.1

    local m w name ip prefix
    for m in "${MASTERS[@]}"; do
        name=${m%%:*} ip=${m#*:}
        mkns "$name"
        lan_port "$name" "$ip/24" "fd00:83::${ip##*.}/64"
        # The core is the nodes' default gateway, as on the seed's LAN.
        ip -n "$(ns "$name")" route add default via 192.168.83.1
        ip -n "$(ns "$name")" -6 route add default via fd00:83::1
        ip -n "$(ns "$name")" addr add 172.16.0.10/32 dev lo
        {
            calico_bird "$ip"
            local o oname oip
            for o in "${MASTERS[@]}"; do
                oname=${o%%:*} oip=${o#*:}
                [ "$oip" = "$ip" ] || bird_peer "Mesh_${oip//./_}" "$oip"
            done
            for o in "${WORKERS[@]}"; do
                oip=$(echo "$o" | cut -d: -f2)
                bird_peer "Node_${oip//./_}" "$oip" rr-client
            done
            for o in "${CORES[@]}"; do
                oip=${o#*:}
                bird_peer "Node_${oip//./_}" "$oip" rr-client
            done
        } >"$LAB_DIR/$name.conf"
        start_bird "$name"
        {
            calico_bird6 "$ip" "fd00:83::${ip##*.}"
            for o in "${MASTERS[@]}"; do
                oip=${o#*:}
                [ "$oip" = "$ip" ] || bird_peer "Mesh_${oip//./_}" "fd00:83::${oip##*.}"
            done
            for o in "${WORKERS[@]}"; do
                oip=$(echo "$o" | cut -d: -f2)
                bird_peer "Node_${oip//./_}" "fd00:83::${oip##*.}" rr-client
            done
            for o in "${CORES[@]}"; do
                oip=${o#*:}
                bird_peer "Node_${oip//./_}" "fd00:83::${oip##*.}" rr-client
            done
        } >"$LAB_DIR/$name-6.conf"
        start_bird6 "$name"
    done
    for w in "${WORKERS[@]}"; do
        name=$(echo "$w" | cut -d: -f1) ip=$(echo "$w" | cut -d: -f2) prefix=$(echo "$w" | cut -d: -f3)
        mkns "$name"
        lan_port "$name" "$ip/24" "fd00:83::${ip##*.}/64"
        # The default route also lets proxy ARP answer the pod's 169.254.1.1.
        ip -n "$(ns "$name")" route add default via 192.168.83.1
        ip -n "$(ns "$name")" -6 route add default via fd00:83::1
        ip -n "$(ns "$name")" addr add 172.16.0.10/32 dev lo
        # A pod, as Felix programs it: a /32 on a veth, proxy ARP on the host side.
        mkns "$name-pod"
        ip -n "$(ns "$name")" link add cali0 type veth peer name eth0 netns "$(ns "$name-pod")"
        ip -n "$(ns "$name")" link set cali0 up
        nsx "$name" sysctl -qw net.ipv4.conf.cali0.proxy_arp=1
        ip -n "$(ns "$name")" route add "$prefix.2/32" dev cali0
        ip -n "$(ns "$name-pod")" addr add "$prefix.2/32" dev eth0
        ip -n "$(ns "$name-pod")" link set eth0 up
        ip -n "$(ns "$name-pod")" route add 169.254.1.1 dev eth0
        ip -n "$(ns "$name-pod")" route add default via 169.254.1.1 dev eth0
        # IPv6: the pod's /128, and a link-local gateway on the host side.
        local p6="fd00:15:0:${prefix##*.}"
        ip -n "$(ns "$name")" addr add fe80::1/64 dev cali0 nodad
        ip -n "$(ns "$name")" -6 route add "$p6::2/128" dev cali0
        ip -n "$(ns "$name-pod")" addr add "$p6::2/128" dev eth0 nodad
        ip -n "$(ns "$name-pod")" -6 route add default via fe80::1 dev eth0
        {
            calico_bird "$ip" "$prefix.0/26"
            local o oip
            for o in "${MASTERS[@]}"; do
                oip=${o#*:}
                bird_peer "Node_${oip//./_}" "$oip"
            done
        } >"$LAB_DIR/$name.conf"
        start_bird "$name"
        {
            calico_bird6 "$ip" "fd00:83::${ip##*.}" "$p6::/122"
            for o in "${MASTERS[@]}"; do
                oip=${o#*:}
                bird_peer "Node_${oip//./_}" "fd00:83::${oip##*.}"
            done
        } >"$LAB_DIR/$name-6.conf"
        start_bird6 "$name"
    done
}

# core_up NAME ADDRESS: a core of the pair (a box being plugged in): its
# namespace, a port on the LAN (ADDRESS, fd00:83::N) and one on the VM's
# subnet (192.168.82.N). core_gone NAME unplugs it: every process on it
# killed and the namespace, with its ports, deleted.
core_up() {
    local name=$1 ip=$2
    mkns "$name"
    lan_port "$name" "$ip/24" "fd00:83::${ip##*.}/64"
    ip -n "$(ns "$name")" link add eth1 type veth peer name "q-$name" netns "$(ns hub)"
    ip -n "$(ns hub)" link set "q-$name" master br1 up
    ip -n "$(ns "$name")" addr add "192.168.82.${ip##*.}/24" dev eth1
    ip -n "$(ns "$name")" link set eth1 up
}
core_gone() {
    local n p; n=$(ns "$1")
    for p in $(ip netns pids "$n" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "$n"
    local kept=() x
    for x in "${LAB_NS[@]}"; do [ "$x" = "$n" ] || kept+=("$x"); done
    LAB_NS=("${kept[@]}")
}

lab_down() {
    local n p
    for n in "${LAB_NS[@]}"; do
        for p in $(ip netns pids "$n" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
    done
    sleep 0.3
    for n in "${LAB_NS[@]}"; do
        for p in $(ip netns pids "$n" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
        ip netns del "$n" 2>/dev/null || true
    done
    LAB_NS=()
}
