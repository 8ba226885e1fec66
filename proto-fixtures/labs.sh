# Lab definitions for capture.sh (sourced, not run directly).
# Each lab writes its configs to $CDIR (= proto-fixtures/configs/<lab>/),
# starts the daemons in their namespaces, provokes events, and ends.

# ---------------------------------------------------------------- Calico
# BIRD 1.6 config as Calico v3.8's confd renders it on node $2 (IP $2),
# from the one rendering in tests/lab/calico-bird.sh. $3: "rr" or worker
# (a comment only); $4: the reflector (unused); $5..: the node's blocks
# (172.16.0.0/16, the service range, is always there).
. "$(dirname "${BASH_SOURCE[0]}")/../tests/lab/calico-bird.sh"
calico_bird_cfg() {
  local file=$1 ip=$2 role=$3; shift 4
  local blocks=() b
  for b in "$@"; do [ "$b" = 172.16.0.0/16 ] || blocks+=("$b"); done
  {
    echo "# Rendered like Calico v3.8 confd bird.cfg.template (node $ip, role $role)"
    CALICO_BIRD_DEBUG=1 CALICO_KERNEL_PROGRAMMING=1 calico_bird "$ip" "${blocks[@]}"
  } > "$file"
}

lab_calico() {
  lab_begin calico
  node core; node rr1; node w1; node w2
  addr core 192.168.83.1/24 bird2 "$V_BIRD2" core-bird2.conf
  addr rr1 192.168.83.11/24 bird1 "$V_BIRD1" rr1-bird.cfg
  addr w1 192.168.83.21/24 bird1 "$V_BIRD1" w1-bird.cfg
  addr w2 192.168.83.22/24 bird1 "$V_BIRD1" w2-bird.cfg

  calico_bird_cfg "$CDIR/rr1-bird.cfg" 192.168.83.11 rr - 172.15.11.0/26 172.16.0.0/16
  cat >> "$CDIR/rr1-bird.cfg" <<'EOF'
# ------------- RR-to-client peers (workers) and the global peer (core) -------------
protocol bgp Node_192_168_83_21 from bgp_template {
  neighbor 192.168.83.21 as 64512;
  rr client;
  rr cluster id 224.0.0.1;
}
protocol bgp Node_192_168_83_22 from bgp_template {
  neighbor 192.168.83.22 as 64512;
  rr client;
  rr cluster id 224.0.0.1;
}
# ------------- Global peers -------------
# For peer /global/peer_v4/192.168.83.1
protocol bgp Global_192_168_83_1 from bgp_template {
  neighbor 192.168.83.1 as 64512;
  rr client;
  rr cluster id 224.0.0.1;
}
EOF
  for w in 21 22; do
    calico_bird_cfg "$CDIR/w${w#2}-bird.cfg" 192.168.83.$w worker 192.168.83.11 \
      172.15.$w.0/26 172.15.$w.64/26 172.16.0.0/16
    cat >> "$CDIR/w${w#2}-bird.cfg" <<'EOF'
# ------------- Node-to-RR peers -------------
protocol bgp Node_192_168_83_11 from bgp_template {
  neighbor 192.168.83.11 as 64512;
}
EOF
  done
  cat > "$CDIR/core-bird2.conf" <<'EOF'
# "Core" router at 192.168.83.1: RR client of the Calico reflector, with
# ADD-PATH receive so it gets every path (what bgpd will do). It announces a
# default route to the reflector.
log stderr all;
router id 192.168.83.1;
protocol device {}
protocol direct { ipv4; }
protocol static { ipv4; route 0.0.0.0/0 blackhole; }
protocol bgp rr1 {
  local 192.168.83.1 as 64512;
  neighbor 192.168.83.11 as 64512;
  ipv4 { import all; export where net = 0.0.0.0/0; add paths rx; };
}
EOF
  capture_start
  start_bird2 core core-bird2.conf
  start_bird1 rr1 rr1-bird.cfg -R
  start_bird1 w1 w1-bird.cfg
  start_bird1 w2 w2-bird.cfg
  for p in Node_192_168_83_21 Node_192_168_83_22 Global_192_168_83_1; do
    wait_until 60 "rr1 $p Established" bird_up b1c rr1 $p
  done
  wait_until 30 "core learns 7 paths" sh -c "'$BIRDC2' -s '$(sock core)' show route count | grep -q '^[7-9] of\|^1[0-9] of'"
  sleep 3
  log "calico: w2 disables its session (withdrawals reflected with path ids)"
  b1c w2 disable Node_192_168_83_11 >/dev/null
  wait_until 20 "rr1 sees w2 down" bird_down b1c rr1 Node_192_168_83_22
  sleep 2
  log "calico: w1 BIRD is shut down"
  b1c w1 down >/dev/null || true
  wait_until 20 "rr1 sees w1 down" bird_down b1c rr1 Node_192_168_83_21
  sleep 2
  log "calico: w2 re-enabled"
  b1c w2 enable Node_192_168_83_11 >/dev/null
  wait_until 60 "rr1 w2 up again" bird_up b1c rr1 Node_192_168_83_22
  sleep 3
  b2c core show route all > "$LDIR/core-routes.txt" 2>&1 || true
  lab_end
}

# ---------------------------------------------------------------- Calico IPv6 (bird6)
# bird6.cfg as Calico v3.8 renders it; router id is the node's IPv4 address
# (tests/lab/calico-bird.sh).
calico_bird6_cfg() {
  local file=$1 id=$2 ip=$3; shift 3
  {
    echo "# Rendered like Calico v3.8 confd bird6.cfg.template (node $ip, router id $id)"
    CALICO_BIRD_DEBUG=1 CALICO_KERNEL_PROGRAMMING=1 calico_bird6 "$id" "$ip" "$@"
  } > "$file"
}

lab_calico_v6() {
  lab_begin calico-v6
  node core; node rr1; node w1; node ext
  addr core fd00:83::1/64 bird2 "$V_BIRD2" core-bird2.conf
  addr rr1 fd00:83::11/64 bird1-v6 "$V_BIRD6" rr1-bird6.cfg
  addr w1 fd00:83::21/64 bird1-v6 "$V_BIRD6" w1-bird6.cfg
  addr ext fd00:83::30/64 gobgp "$V_GOBGP" ext-gobgpd.toml
  calico_bird6_cfg "$CDIR/rr1-bird6.cfg" 192.168.83.11 fd00:83::11 fd00:15:0:11::/122
  cat >> "$CDIR/rr1-bird6.cfg" <<'EOF'
protocol bgp Node_fd00_83__21 from bgp_template {
  neighbor fd00:83::21 as 64512;
  rr client;
  rr cluster id 224.0.0.1;
}
# For peer /global/peer_v6/fd00:83::1
protocol bgp Global_fd00_83__1 from bgp_template {
  neighbor fd00:83::1 as 64512;
  rr client;
  rr cluster id 224.0.0.1;
}
# Not Calico: a directly connected eBGP peer (no multihop), so BIRD sends its
# global and its link-local address as next hop (32 bytes).
protocol bgp Ext_fd00_83__30 {
  local as 64512;
  neighbor fd00:83::30 as 65001;
  source address fd00:83::11;
  import all;
  export filter calico_export_to_bgp_peers;
  hold time 9;
}
EOF
  calico_bird6_cfg "$CDIR/w1-bird6.cfg" 192.168.83.21 fd00:83::21 fd00:15:0:21::/122 fd00:15:0:21::40/122
  cat >> "$CDIR/w1-bird6.cfg" <<'EOF'
protocol bgp Node_fd00_83__11 from bgp_template {
  neighbor fd00:83::11 as 64512;
}
EOF
  cat > "$CDIR/core-bird2.conf" <<'EOF'
# IPv6 core router: RR client of the bird6 reflector, ADD-PATH receive.
log stderr all;
router id 192.168.83.1;
protocol device {}
protocol direct { ipv6; }
protocol static { ipv6; route ::/0 blackhole; }
protocol bgp rr1 {
  local fd00:83::1 as 64512;
  neighbor fd00:83::11 as 64512;
  ipv6 { import all; export where net = ::/0; add paths rx; };
}
EOF
  cat > "$CDIR/ext-gobgpd.toml" <<'EOF'
# Directly connected eBGP peer of the bird6 reflector.
[global.config]
  as = 65001
  router-id = "192.168.83.30"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "fd00:83::11"
    peer-as = 64512
  [neighbors.timers.config]
    hold-time = 9
    keepalive-interval = 3
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
EOF
  capture_start
  start_bird2 core core-bird2.conf
  start_bird6 rr1 rr1-bird6.cfg -R
  start_bird6 w1 w1-bird6.cfg
  start_gobgp ext ext-gobgpd.toml 50061
  gob ext global rib add -a ipv6 fd00:15:65::/48 nexthop fd00:83::30 community 65001:100 >/dev/null
  for p in Node_fd00_83__21 Global_fd00_83__1 Ext_fd00_83__30; do
    wait_until 60 "rr1 $p Established" bird_up b6c rr1 $p
  done
  wait_until 30 "core learns pool routes" sh -c "'$BIRDC2' -s '$(sock core)' show route | grep -q 'fd00:15:0:21::40/122'"
  sleep 4
  log "calico-v6: route refresh from bird6 to core (bird2 answers with BoRR/EoRR) and to gobgp"
  b6c rr1 reload in Global_fd00_83__1 >/dev/null
  b6c rr1 reload in Ext_fd00_83__30 >/dev/null
  sleep 2
  log "calico-v6: w1 disables its session -> IPv6 withdrawals with path ids"
  b6c w1 disable Node_fd00_83__11 >/dev/null
  wait_until 20 "rr1 sees w1 down" bird_down b6c rr1 Node_fd00_83__21
  sleep 2
  b2c core show route all > "$LDIR/core-routes.txt" 2>&1 || true
  gob ext global rib -a ipv6 > "$LDIR/ext-routes.txt" 2>&1 || true
  lab_end
}

# ---------------------------------------------------------------- BIRD 2 <-> FRR
lab_bird2_frr() {
  lab_begin bird2-frr
  node b2; node fr
  addr b2 192.168.83.10/24 bird2 "$V_BIRD2" b2-bird2.conf
  addr b2 fd00:83::10/64 bird2 "$V_BIRD2" b2-bird2.conf
  addr fr 192.168.83.20/24 frr "$V_FRR" fr-bgpd.conf
  addr fr fd00:83::20/64 frr "$V_FRR" fr-bgpd.conf
  cat > "$CDIR/b2-bird2.conf" <<'EOF'
# BIRD 2 (AS 65010) <-> FRR (AS 65020): one IPv4 session (ipv4, ADD-PATH) and one
# IPv6 session (ipv6 + ipv4 with RFC 8950 extended next hop).
log stderr all;
router id 192.168.83.10;
protocol device {}
protocol direct { ipv4; ipv6; }
protocol static s4 {
  ipv4;
  route 172.15.100.0/24 blackhole {
    bgp_med = 50;
    bgp_community.add((65010, 100));
    bgp_community.add((65535, 65281));          # no-export
    bgp_large_community.add((65010, 1, 2));
    bgp_ext_community.add((rt, 65010, 7));
    bgp_ext_community.add((ro, 192.168.83.10, 8));
  };
  route 172.15.101.0/24 blackhole { bgp_large_community.add((4200000010, 3, 4)); };
  route 172.15.102.0/24 blackhole { bgp_origin = ORIGIN_INCOMPLETE; };
}
protocol static s6 {
  ipv6;
  route fd00:15:100::/48 blackhole {
    bgp_community.add((65010, 600));
    bgp_large_community.add((65010, 6, 6));
    bgp_ext_community.add((rt, 65010, 66));
    bgp_med = 60;
  };
  route fd00:15:101::/48 blackhole;
}
protocol bgp frr4 {
  local 192.168.83.10 as 65010;
  neighbor 192.168.83.20 as 65020;
  hold time 9; keepalive time 3;
  error wait time 1,5; connect retry time 2; connect delay time 1;
  # With LLGR negotiated, BIRD treats hold timer expiry as a restart and sends
  # no NOTIFICATION; turn it off here so the 4/0 shows up on the wire.
  long lived graceful restart off;
  ipv4 { import all; export all; add paths on; };
}
protocol bgp frr6 {
  local fd00:83::10 as 65010;
  neighbor fd00:83::20 as 65020;
  hold time 9; keepalive time 3;
  error wait time 1,5; connect retry time 2; connect delay time 1;
  ipv6 { import all; export all; };
  ipv4 { import all; export all; extended next hop on; };
}
EOF
  cat > "$CDIR/fr-bgpd.conf" <<'EOF'
! FRR (AS 65020) <-> BIRD 2 (AS 65010)
frr defaults traditional
hostname fr
log stdout debugging
!
route-map SET permit 10
 set community 65020:1 65020:65535
 set large-community 65020:2:3
 set extcommunity rt 65020:9
 set metric 20
!
router bgp 65020
 bgp router-id 192.168.83.20
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor 192.168.83.10 remote-as 65010
 neighbor 192.168.83.10 timers 3 9
 neighbor 192.168.83.10 timers connect 2
 neighbor fd00:83::10 remote-as 65010
 neighbor fd00:83::10 timers 3 9
 neighbor fd00:83::10 timers connect 2
 neighbor fd00:83::10 capability extended-nexthop
 !
 address-family ipv4 unicast
  network 172.15.200.0/24 route-map SET
  network 172.15.201.0/24
  neighbor 192.168.83.10 addpath-tx-all-paths
  neighbor fd00:83::10 activate
 exit-address-family
 !
 address-family ipv6 unicast
  network fd00:15:200::/48 route-map SET
  neighbor fd00:83::10 activate
 exit-address-family
!
EOF
  capture_start
  start_bird2 b2 b2-bird2.conf
  start_frr fr fr-bgpd.conf
  wait_until 60 "frr4 Established" bird_up b2c b2 frr4
  wait_until 60 "frr6 Established" bird_up b2c b2 frr6
  wait_until 30 "frr has bird2 routes" sh -c "vtysh --vty_socket '$LDIR/frr-fr' -d bgpd -c 'show bgp ipv6 unicast' | grep -q fd00:15:101::/48"
  sleep 4   # a few keepalives (3 s)
  log "bird2-frr: route refresh both ways"
  vty fr "clear bgp ipv4 unicast 192.168.83.10 soft in" >/dev/null
  b2c b2 reload in frr6 >/dev/null
  sleep 2
  log "bird2-frr: FRR admin shutdown with message; bird2 disable with message"
  vty fr "configure terminal" "router bgp 65020" "neighbor fd00:83::10 shutdown message frr maintenance window 42" >/dev/null
  wait_until 20 "frr6 down" bird_down b2c b2 frr6
  b2c b2 'disable frr4 "bird2: planned maintenance"' >/dev/null
  sleep 3
  vty fr "configure terminal" "router bgp 65020" "no neighbor fd00:83::10 shutdown" >/dev/null
  b2c b2 enable frr4 >/dev/null
  wait_until 60 "frr4 Established again" bird_up b2c b2 frr4
  wait_until 60 "frr6 Established again" bird_up b2c b2 frr6
  sleep 1
  log "bird2-frr: FRR administrative reset (clear bgp)"
  vty fr "clear bgp 192.168.83.10" >/dev/null
  sleep 1
  wait_until 60 "frr4 Established after reset" bird_up b2c b2 frr4
  log "bird2-frr: hold timer expiry: bird2 frozen (SIGSTOP), FRR sends 4/0"
  local bpid; bpid=$(ip netns pids "$(ns b2)" | head -1)
  kill -STOP $bpid
  wait_until 30 "FRR hold timer expiry" sh -c "vtysh --vty_socket '$LDIR/frr-fr' -d bgpd -c 'show bgp neighbors 192.168.83.10 json' | grep -q 'Hold Timer Expired'"
  kill -CONT $bpid
  wait_until 60 "frr4 Established after hold expiry" bird_up b2c b2 frr4
  log "bird2-frr: hold timer expiry: FRR frozen, bird2 sends 4/0"
  local fpid; fpid=$(cat "$LDIR/frr-fr/bgpd.pid")
  kill -STOP $fpid
  wait_until 30 "bird2 hold timer expiry" bird_down b2c b2 frr4
  kill -CONT $fpid
  wait_until 60 "frr4 Established after bird2 hold expiry" bird_up b2c b2 frr4
  sleep 1
  vty fr "show bgp neighbors" > "$LDIR/fr-neighbors.txt" 2>&1 || true
  lab_end
}

# ---------------------------------------------------------------- GoBGP <-> BIRD 2
lab_gobgp() {
  lab_begin gobgp
  node b2; node gb
  addr b2 192.168.83.10/24 bird2 "$V_BIRD2" b2-bird2.conf
  addr b2 fd00:83::10/64 bird2 "$V_BIRD2" b2-bird2.conf
  addr gb 192.168.83.30/24 gobgp "$V_GOBGP" gb-gobgpd.toml
  addr gb fd00:83::30/64 gobgp "$V_GOBGP" gb-gobgpd.toml
  cat > "$CDIR/b2-bird2.conf" <<'EOF'
# BIRD 2 (AS 65010) <-> GoBGP (AS 65030), ADD-PATH both ways, IPv4 and IPv6 sessions.
log stderr all;
router id 192.168.83.10;
protocol device {}
protocol direct { ipv4; ipv6; }
protocol static { ipv4; route 172.15.110.0/24 blackhole { bgp_community.add((65010, 110)); }; }
protocol static { ipv6; route fd00:15:110::/48 blackhole; }
template bgp T {
  hold time 9; keepalive time 3;
  error wait time 1,5; connect retry time 2; connect delay time 1;
  long lived graceful restart off;
}
protocol bgp gob4 from T {
  local 192.168.83.10 as 65010;
  neighbor 192.168.83.30 as 65030;
  ipv4 { import all; export all; add paths on; };
}
protocol bgp gob6 from T {
  local fd00:83::10 as 65010;
  neighbor fd00:83::30 as 65030;
  ipv6 { import all; export all; add paths on; };
}
EOF
  cat > "$CDIR/gb-gobgpd.toml" <<'EOF'
# GoBGP (AS 65030) <-> BIRD 2 (AS 65010); routes are added with `gobgp global rib add`.
[global.config]
  as = 65030
  router-id = "192.168.83.30"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "192.168.83.10"
    peer-as = 65010
  [neighbors.timers.config]
    hold-time = 9
    keepalive-interval = 3
    connect-retry = 2
  [neighbors.add-paths.config]
    receive = true
    send-max = 8
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "fd00:83::10"
    peer-as = 65010
  [neighbors.timers.config]
    hold-time = 9
    keepalive-interval = 3
    connect-retry = 2
  [neighbors.add-paths.config]
    receive = true
    send-max = 8
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
EOF
  capture_start
  start_bird2 b2 b2-bird2.conf
  start_gobgp gb gb-gobgpd.toml 50071
  gob gb global rib add -a ipv4 172.15.30.0/24 identifier 1 nexthop 192.168.83.30 origin egp med 30 \
      community 65030:1,65030:2 large-community 65030:1:1,4200000030:2:2 >/dev/null
  gob gb global rib add -a ipv4 172.15.30.0/24 identifier 2 nexthop 192.168.83.31 local-pref 50 \
      community 65030:3 >/dev/null
  gob gb global rib add -a ipv4 172.15.31.0/24 nexthop 192.168.83.30 aspath "65031 {65033,65034}" \
      rt 65030:7 aggregator 65031:192.168.83.31 >/dev/null
  gob gb global rib add -a ipv6 fd00:15:30::/48 nexthop fd00:83::30 origin incomplete \
      community 65030:6 large-community 65030:6:6 med 60 >/dev/null
  wait_until 60 "gob4 Established" bird_up b2c b2 gob4
  wait_until 60 "gob6 Established" bird_up b2c b2 gob6
  wait_until 30 "bird2 has gobgp routes" sh -c "'$BIRDC2' -s '$(sock b2)' show route | grep -q fd00:15:30::/48"
  sleep 3
  log "gobgp: soft reset in (ROUTE-REFRESH from gobgp), reload in from bird2"
  gob gb neighbor 192.168.83.10 softresetin >/dev/null
  gob gb neighbor fd00:83::10 softresetin >/dev/null
  b2c b2 reload in gob4 >/dev/null
  sleep 2
  log "gobgp: withdraw a route"
  gob gb global rib del -a ipv4 172.15.31.0/24 >/dev/null
  gob gb global rib del -a ipv6 fd00:15:30::/48 >/dev/null
  sleep 2
  log "gobgp: shutdown with reason, then reset"
  gob gb neighbor fd00:83::10 shutdown --reason "gobgp maintenance" >/dev/null 2>&1 ||
    gob gb neighbor fd00:83::10 disable --reason "gobgp maintenance" >/dev/null
  wait_until 20 "gob6 down" bird_down b2c b2 gob6
  gob gb neighbor 192.168.83.10 reset >/dev/null
  sleep 1
  wait_until 60 "gob4 Established after reset" bird_up b2c b2 gob4
  log "gobgp: hold timer expiry (bird2 frozen)"
  local bpid; bpid=$(ip netns pids "$(ns b2)" | head -1)
  kill -STOP $bpid
  wait_until 30 "gobgp hold timer expiry" sh -c "! ip netns exec '$(ns gb)' gobgp -p 50071 neighbor 192.168.83.10 | grep -qi 'state = established'"
  kill -CONT $bpid
  sleep 2
  lab_end
}

# ---------------------------------------------------------------- ExaBGP -> BIRD 2
lab_exabgp() {
  lab_begin exabgp
  node b2; node ex
  addr b2 192.168.83.10/24 bird2 "$V_BIRD2" b2-bird2.conf
  addr ex 192.168.83.40/24 exabgp "$V_EXABGP" ex-exabgp.conf
  addr ex 192.168.83.41/24 exabgp "$V_EXABGP" ex-exabgp.conf
  addr ex 192.168.83.42/24 exabgp "$V_EXABGP" ex-exabgp.conf
  ip netns exec "$(ns ex)" ip addr add fd00:83::40/64 dev eth0 nodad
  ip netns exec "$(ns b2)" ip addr add fd00:83::10/64 dev eth0 nodad
  cat > "$CDIR/b2-bird2.conf" <<'EOF'
# BIRD 2 (AS 65010) receiving from ExaBGP: eBGP AS 65040 (4-octet AS capable),
# eBGP AS 4200000041 WITHOUT the 4-octet AS capability (AS_TRANS, AS4_PATH),
# iBGP AS 65010 from .42.
log stderr all;
router id 192.168.83.10;
protocol device {}
protocol direct { ipv4; ipv6; }
protocol static { ipv4; route 172.15.120.0/24 blackhole; }
template bgp T {
  local 192.168.83.10 as 65010;
  hold time 9; keepalive time 3;
  error wait time 1,5; connect retry time 2; connect delay time 1;
}
protocol bgp ex40 from T {
  neighbor 192.168.83.40 as 65040;
  ipv4 { import all; export all; };
  ipv6 { import all; export all; };
}
# A speaker without the 4-octet AS capability is seen as AS_TRANS (RFC 6793);
# configuring 4200000041 here makes BIRD refuse it with 2/2 Bad peer AS.
protocol bgp ex41 from T {
  neighbor 192.168.83.41 as 23456;
  ipv4 { import all; export all; };
}
protocol bgp ex42 from T {
  neighbor 192.168.83.42 as 65010;
  ipv4 { import all; export all; next hop self; };
}
EOF
  cat > "$CDIR/ex-exabgp.conf" <<'EOF'
# ExaBGP 4.2: three sessions to BIRD 2 with varied attributes.
neighbor 192.168.83.10 {
  description "eBGP, 4-octet AS capable, varied attributes";
  router-id 192.168.83.40;
  local-address 192.168.83.40;
  local-as 65040;
  peer-as 65010;
  hold-time 9;
  family { ipv4 unicast; ipv6 unicast; }
  static {
    route 172.15.40.0/24 next-hop 192.168.83.40 origin egp as-path [ 65040 4200000099 ( 65050 65051 4200000052 ) ] med 100 community [ 65040:1 65040:2 ] extended-community [ target:65040:7 origin:65040:8 ] large-community [ 65040:1:2 4200000099:3:4 ] aggregator ( 4200000099:192.168.83.40 ) atomic-aggregate;
    route 172.15.41.0/24 next-hop 192.168.83.40 origin incomplete as-path [ 65040 ] med 0;
    route 172.15.42.0/25 next-hop 192.168.83.40 as-path [ 65040 65044 ] community [ 65040:42 ] aggregator ( 65044:192.168.83.44 );
    route fd00:15:40::/48 next-hop fd00:83::40 as-path [ 65040 ] community [ 65040:6 ] large-community [ 65040:6:6 ] med 6;
  }
}
neighbor 192.168.83.10 {
  description "eBGP from 4-byte AS 4200000041 WITHOUT the 4-octet AS capability";
  router-id 192.168.83.41;
  local-address 192.168.83.41;
  local-as 4200000041;
  peer-as 65010;
  hold-time 9;
  capability { asn4 disable; }
  family { ipv4 unicast; }
  static {
    route 172.15.43.0/24 next-hop 192.168.83.41 as-path [ 4200000041 65043 4200000043 ] aggregator ( 4200000041:192.168.83.41 ) community [ 65043:1 ];
  }
}
neighbor 192.168.83.10 {
  description "iBGP, LOCAL_PREF and ORIGINATOR_ID-free";
  router-id 192.168.83.42;
  local-address 192.168.83.42;
  local-as 65010;
  peer-as 65010;
  hold-time 9;
  family { ipv4 unicast; }
  static {
    route 172.15.44.0/24 next-hop 192.168.83.42 local-preference 300 community [ 65010:44 no-export ];
  }
}
EOF
  capture_start
  start_bird2 b2 b2-bird2.conf
  start_exabgp ex ex-exabgp.conf
  for p in ex40 ex41 ex42; do wait_until 60 "$p Established" bird_up b2c b2 $p; done
  wait_until 30 "bird2 has exabgp routes" sh -c "'$BIRDC2' -s '$(sock b2)' show route | grep -q 172.15.43.0/24"
  sleep 4
  b2c b2 show route all > "$LDIR/b2-routes.txt" 2>&1 || true
  log "exabgp: bird2 disables ex40 with message"
  b2c b2 'disable ex40 "bird2 to exabgp: bye"' >/dev/null
  sleep 2
  lab_end
}

# ---------------------------------------------------------------- NOTIFICATIONs
wait_soft() {   # like wait_until, but only warns
  local t=$1 what=$2; shift 2
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $end ]; then log "WARNING: lab $LAB: gave up waiting for $what"; return 0; fi
    sleep 0.5
  done
}
# seen_notif SRC MAJOR MINOR: a NOTIFICATION from SRC is in this lab's capture so far
seen_notif() {
  local f="ip.src == $1"; [[ $1 == *:* ]] && f="ipv6.src == $1"
  tshark -r "$LDIR/capture.pcapng" -Y "$f && tcp.len > 0" -T fields -e tcp.payload 2>/dev/null | tr -d ':' |
    grep -qi "ffffffffffffffffffffffffffffffff....03$(printf %02x "$2")$(printf %02x "$3")"
}

lab_notify() {
  lab_begin notify
  node nb; node nf; node ng; node nx; node nz
  local a
  for a in 10 11 12 13 14 15; do addr nb 192.168.83.$a/24 bird2 "$V_BIRD2" nb-bird2.conf; done
  addr nb fd00:83::10/64 bird2 "$V_BIRD2" nb-bird2.conf
  for a in 20 21 22 23 24; do addr nf 192.168.83.$a/24 frr "$V_FRR" nf-bgpd.conf; done
  addr ng 192.168.83.30/24 gobgp "$V_GOBGP" ng-gobgpd.toml
  addr ng 192.168.83.31/24 gobgp "$V_GOBGP" ng-gobgpd.toml
  addr nx 192.168.83.40/24 exabgp "$V_EXABGP" nx-exabgp.conf
  addr nz fd00:83::25/64 frr "$V_FRR" nz-bgpd.conf
  cat > "$CDIR/nb-bird2.conf" <<'EOF'
# BIRD 2 (AS 65010) in sessions that are meant to fail, each on its own address pair.
log stderr all;
router id 192.168.83.10;
protocol device {}
protocol direct { ipv4; ipv6; }
protocol static { ipv4; route 172.15.130.0/24 blackhole; route 172.15.131.0/24 blackhole; route 172.15.132.0/24 blackhole; }
protocol static { ipv6; route fd00:15:130::/48 blackhole; }
template bgp T {
  hold time 9; keepalive time 3;
  error wait time 1,3; error forget time 1; connect retry time 2; connect delay time 1;
  ipv4 { import all; export all; };
}
# A: FRR is AS 65020, BIRD expects 65099 -> 2/2 Bad peer AS (FRR expects 65098 too)
protocol bgp badas from T { local 192.168.83.10 as 65010; neighbor 192.168.83.20 as 65099; }
# C: FRR has maximum-prefix 2, BIRD sends more -> FRR sends 6/1
protocol bgp maxpfx from T { local 192.168.83.11 as 65010; neighbor 192.168.83.22 as 65020; }
# D: FRR activates only ipv6 unicast + strict-capability-match, BIRD offers ipv4 -> FRR sends 2/7
protocol bgp unsupcap from T { local 192.168.83.12 as 65010; neighbor 192.168.83.23 as 65020; }
# E: BGP role required (RFC 9234), ExaBGP sends no role -> BIRD sends 2/11
protocol bgp needrole from T { local 192.168.83.13 as 65010; neighbor 192.168.83.40 as 65040; local role provider; require roles on; }
# F: both sides claim role provider -> 2/11 role mismatch
protocol bgp rolemm from T { local 192.168.83.14 as 65010; neighbor 192.168.83.24 as 65020; local role provider; }
# H: GoBGP offers hold time 2 -> BIRD sends 2/6 unacceptable hold time
protocol bgp hold2 from T { local 192.168.83.15 as 65010; neighbor 192.168.83.31 as 65020; }
# G: FRR running without zebra (-Z) cannot resolve the link-local next hop BIRD
#    sends on this direct IPv6 session; FRR 8.4 then answers 3/10 Invalid network field.
protocol bgp nozebra from T {
  local fd00:83::10 as 65010; neighbor fd00:83::25 as 65025;
  ipv6 { import all; export all; };
  ipv4 { import all; export all; extended next hop on; };
}
EOF
  cat > "$CDIR/nf-bgpd.conf" <<'EOF'
! FRR (AS 65020, router id 192.168.83.20) in sessions that are meant to fail.
frr defaults traditional
hostname nf
log stdout debugging
!
router bgp 65020
 bgp router-id 192.168.83.20
 no bgp ebgp-requires-policy
 no bgp network import-check
 ! A: wrong remote-as for BIRD (really 65010) -> 2/2
 neighbor 192.168.83.10 remote-as 65098
 neighbor 192.168.83.10 update-source 192.168.83.20
 neighbor 192.168.83.10 timers connect 2
 ! B: GoBGP iBGP peer with the same router id 192.168.83.20 -> 2/3
 neighbor 192.168.83.30 remote-as 65020
 neighbor 192.168.83.30 update-source 192.168.83.21
 neighbor 192.168.83.30 timers connect 2
 ! C: maximum-prefix 2 -> 6/1
 neighbor 192.168.83.11 remote-as 65010
 neighbor 192.168.83.11 update-source 192.168.83.22
 neighbor 192.168.83.11 timers connect 2
 ! D: ipv6-only + strict-capability-match vs BIRD ipv4-only -> 2/7
 neighbor 192.168.83.12 remote-as 65010
 neighbor 192.168.83.12 update-source 192.168.83.23
 neighbor 192.168.83.12 timers connect 2
 neighbor 192.168.83.12 strict-capability-match
 ! F: role provider on both sides -> 2/11
 neighbor 192.168.83.14 remote-as 65010
 neighbor 192.168.83.14 update-source 192.168.83.24
 neighbor 192.168.83.14 timers connect 2
 neighbor 192.168.83.14 local-role provider strict-mode
 !
 address-family ipv4 unicast
  network 172.15.220.0/24
  neighbor 192.168.83.11 maximum-prefix 2
  no neighbor 192.168.83.12 activate
 exit-address-family
 address-family ipv6 unicast
  neighbor 192.168.83.12 activate
 exit-address-family
!
EOF
  cat > "$CDIR/nz-bgpd.conf" <<'EOF'
! FRR (AS 65025) started as `bgpd -Z` (no zebra): no interface information.
frr defaults traditional
hostname nz
log stdout debugging
!
router bgp 65025
 bgp router-id 192.168.83.25
 no bgp ebgp-requires-policy
 neighbor fd00:83::10 remote-as 65010
 neighbor fd00:83::10 capability extended-nexthop
 neighbor fd00:83::10 timers connect 2
 address-family ipv4 unicast
  neighbor fd00:83::10 activate
 exit-address-family
 address-family ipv6 unicast
  neighbor fd00:83::10 activate
 exit-address-family
!
EOF
  cat > "$CDIR/ng-gobgpd.toml" <<'EOF'
# GoBGP in sessions that are meant to fail.
[global.config]
  as = 65020
  router-id = "192.168.83.20"   # B: same router id as FRR, iBGP
[[neighbors]]
  [neighbors.config]
    neighbor-address = "192.168.83.21"
    peer-as = 65020
  [neighbors.transport.config]
    local-address = "192.168.83.30"
  [neighbors.timers.config]
    connect-retry = 2
[[neighbors]]
  # H: hold time 2 towards BIRD -> BIRD sends 2/6
  [neighbors.config]
    neighbor-address = "192.168.83.15"
    peer-as = 65010
  [neighbors.transport.config]
    local-address = "192.168.83.31"
  [neighbors.timers.config]
    hold-time = 2
    keepalive-interval = 1
    connect-retry = 2
EOF
  cat > "$CDIR/nx-exabgp.conf" <<'EOF'
# E: ExaBGP sends no BGP role capability; BIRD requires roles.
neighbor 192.168.83.13 {
  router-id 192.168.83.40;
  local-address 192.168.83.40;
  local-as 65040;
  peer-as 65010;
  hold-time 9;
  family { ipv4 unicast; }
}
EOF
  capture_start
  start_bird2 nb nb-bird2.conf
  start_frr nf nf-bgpd.conf
  start_frr nz nz-bgpd.conf nozebra
  start_gobgp ng ng-gobgpd.toml 50081
  start_exabgp nx nx-exabgp.conf
  # Wait until every NOTIFICATION we want was seen on the wire (sender IP, code/subcode).
  wait_soft 40 "A: 2/2 from bird2"          seen_notif 192.168.83.10 2 2
  wait_soft 20 "A: 2/2 from frr"            seen_notif 192.168.83.20 2 2
  wait_soft 20 "B: 2/3 from frr"            seen_notif 192.168.83.21 2 3
  wait_soft 20 "C: 6/1 from frr"            seen_notif 192.168.83.22 6 1
  wait_soft 20 "D: 2/7 from frr"            seen_notif 192.168.83.23 2 7
  wait_soft 20 "E: 2/11 from bird2"         seen_notif 192.168.83.13 2 11
  wait_soft 20 "F: 2/11 from frr"           seen_notif 192.168.83.24 2 11
  wait_soft 20 "H: 2/6 from bird2"          seen_notif 192.168.83.15 2 6
  wait_soft 20 "G: 3/10 from frr -Z"        seen_notif fd00:83::25 3 10
  sleep 3
  b2c nb show protocols all > "$LDIR/nb-protocols.txt" 2>&1 || true
  lab_end
}
