#!/usr/bin/env bash
# The main job: the seed's network with bgpd as the core switch.
#
#   bash tests/lab/demo.sh          # as root; stays up until Ctrl-C
#   bash tests/lab/demo.sh --once   # prints, then cleans up
#   sudo bash tests/lab/demo.sh     # the same from a user with sudo
#
# Installs prerequisites (as .ci/setup), builds bgpd, brings up Calico's
# reflectors and workers in network namespaces, starts bgpd on the core,
# and prints the reflectors' view, bgpd's sessions and routes, and the VM's
# ping. Everything is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root (it creates network namespaces): as root bash $0, or sudo bash $0" >&2; exit 1; }
once=false
[ "${1:-}" = --once ] && once=true

bash .ci/setup
source .ci/toolchain.sh
echo "demo: building bgpd"
cargo build --release --quiet
BGPD=${CARGO_TARGET_DIR:-$PWD/target}/release/bgpd

source tests/lab/seed-lab.sh
tailer=
trap '[ -n "$tailer" ] && kill "$tailer" 2>/dev/null; lab_down; echo "demo: cleaned up"' EXIT
trap 'exit 130' INT TERM
lab_up

echo "demo: starting bgpd on the core (192.168.83.1)"
nsx core "$BGPD" --asn 64512 --router-id 192.168.83.1 \
    --peer 192.168.83.36 --peer 192.168.83.49 --peer 192.168.83.54 \
    --control-socket "$LAB_DIR/bgpd.sock" \
    >"$LAB_DIR/bgpd.out" 2>"$LAB_DIR/bgpd.log" &

for _ in $(seq 60); do
    n=$(grep -c "Established:" "$LAB_DIR/bgpd.out" || true)
    [ "$n" -ge 3 ] && break
    sleep 1
done
sleep 3

echo
echo "=== birdc show protocols on master m1 (192.168.83.36)"
birdc_ m1 show protocols
echo
echo "=== bgpd show neighbors (as calicoctl node status shows them)"
nsx core "$BGPD" show neighbors --socket "$LAB_DIR/bgpd.sock"
echo
echo "=== bgpd show routes"
nsx core "$BGPD" show routes --socket "$LAB_DIR/bgpd.sock"
echo
echo "=== bgpd show route 172.15.190.2 (which route carries the pod, and why)"
nsx core "$BGPD" show route 172.15.190.2 --socket "$LAB_DIR/bgpd.sock"
echo
echo "=== the core's kernel routes (ip route show proto bgp)"
ip -n "$(ns core)" route show proto bgp
echo
echo "=== the VM (192.168.82.10): ping -c 3 172.15.190.2"
if nsx vm ping -c 3 -W 1 172.15.190.2; then
    echo "demo: the VM reaches the pod"
else
    echo "demo: the ping failed; the core's routes are:"
    ip -n "$(ns core)" route
fi

echo
echo "=== the VM asks the service IP: ping -c 2 172.16.0.10"
nsx vm ping -c 2 -W 1 172.16.0.10 || true

if ! $once; then
    echo
    echo "demo: up; logs in $LAB_DIR. Ctrl-C to stop and clean up."
    tail -f "$LAB_DIR/bgpd.out" &
    tailer=$!
    wait "$tailer"
fi
