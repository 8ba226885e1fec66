# The one rendering of BIRD 1.6's config as calico-node v3.8's confd writes
# it (see ../shared/guide/calico.md): sourced by tests/lab/seed-lab.sh and
# proto-fixtures/labs.sh, and run by tests/common/peers.rs (calico_bird).
# A fix to the config lands here once.
#
# Knobs (environment):
#   CALICO_BIRD_DEBUG=1          debug lines, as the fixture captures want
#   CALICO_KERNEL_PROGRAMMING=1  the kernel protocol exports through
#                                calico_kernel_programming as calico-node
#                                v3.8 does (krt_tunnel left out, stock BIRD
#                                rejects it), so a node reaches other nodes'
#                                pods directly; otherwise "export none" (the
#                                seed's nodes keep BGP routes out of their
#                                kernels)

_calico_static() {
    echo "protocol static {"
    local b
    for b in "$@"; do echo "  route $b blackhole;"; done
    echo "}"
}

# calico_aggr: a node exports its own blocks and none of their more
# specifics (the pods' /32s it learns from the kernel).
_calico_aggr() {
    echo "function calico_aggr ()"
    echo "{"
    local b
    for b in "$@"; do
        echo "  if ( net = $b ) then { accept; }"
        echo "  if ( net ~ $b ) then { reject; }"
    done
    echo "}"
}

_calico_common() {
    # $1: the source address of the BGP sessions.
    local src=$1 kexport="export none;" dbg="" tdbg=""
    if [ "${CALICO_KERNEL_PROGRAMMING:-0}" = 1 ]; then
        echo "filter calico_kernel_programming { if ( net ~ 172.15.0.0/16 ) then { accept; } accept; }"
        kexport="export filter calico_kernel_programming;"
    fi
    if [ "${CALICO_BIRD_DEBUG:-}" = 1 ]; then
        dbg="debug { states };"
        tdbg="  debug { states };"
    fi
    cat <<EOC
protocol kernel { learn; persist; scan time 2; import all; $kexport graceful restart; }
protocol device { $dbg scan time 2; }
protocol direct { $dbg interface -"cali*", "*"; }
template bgp bgp_template {
$tdbg
  description "Connection to BGP peer";
  local as 64512;
  multihop;
  gateway recursive;
  import all;
  export filter calico_export_to_bgp_peers;
  source address $src;
  add paths on;
  graceful restart;
  connect delay time 2;
  connect retry time 5;
  error wait time 5,30;
}
EOC
}

# calico_bird ROUTER_ID [CLUSTER_ID|-] BLOCK...: bird.cfg for an IPv4 pool
# (172.15.0.0/16) and the service range 172.16.0.0/16 (a blackhole static
# on every node); sessions from ROUTER_ID. Peers follow (bird_peer, which
# sets a reflector's cluster id). The optional second word (a cluster id or
# "-", anything without a "/") is accepted for older callers and unused.
calico_bird() {
    local id=$1; shift
    if [ $# -gt 0 ] && [ "${1#*/}" = "$1" ]; then shift; fi
    echo "log stderr all;"
    [ "${CALICO_BIRD_DEBUG:-}" = 1 ] && echo "debug protocols { states, events };"
    echo "router id $id;"
    _calico_static "$@" 172.16.0.0/16
    _calico_aggr "$@"
    cat <<EOC
filter calico_export_to_bgp_peers {
  calico_aggr();
  if ( net ~ 172.15.0.0/16 ) then { accept; }
  if ( net ~ 172.16.0.0/16 ) then { accept; }
  reject;
}
EOC
    _calico_common "$id"
}

# calico_bird6 ROUTER_ID SOURCE6 BLOCK6...: bird6.cfg for an IPv6 pool
# (fd00:15::/48): the IPv4 router id, sessions over IPv6 from SOURCE6.
calico_bird6() {
    local id=$1 src=$2; shift 2
    echo "log stderr all;"
    [ "${CALICO_BIRD_DEBUG:-}" = 1 ] && echo "debug protocols { states, events };"
    echo "router id $id;"
    _calico_static "$@"
    _calico_aggr "$@"
    cat <<EOC
filter calico_export_to_bgp_peers {
  calico_aggr();
  if ( net ~ fd00:15::/48 ) then { accept; }
  reject;
}
EOC
    _calico_common "$src"
}

# bird_peer NAME ADDR [rr-client [CLUSTER_ID]] [EXTRA]: a neighbour from
# the template; a reflector's clients get "rr client" and the cluster id
# (224.0.0.1 unless given). EXTRA is more lines inside the protocol block.
bird_peer() {
    echo "protocol bgp $1 from bgp_template {"
    echo "  neighbor $2 as 64512;"
    if [ "${3:-}" = rr-client ]; then
        printf '  rr client;\n  rr cluster id %s;\n' "${4:-224.0.0.1}"
    fi
    [ -n "${5:-}" ] && printf '%s\n' "$5"
    echo "}"
}
