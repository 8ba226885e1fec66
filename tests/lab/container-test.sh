#!/usr/bin/env bash
# The bgpd container image, built and run for real: podman builds
# docs/containerlab/Containerfile from a debootstrap base
# (.ci/image-base.sh, made once and cached) and the host-built binary,
# then runs it as the seed lab's core (tests/lab/seed-lab.sh: BIRD 1.6
# reflectors and workers with pods, a VM, in network namespaces), the
# container joined to the core's namespace. Twice: configured by flags,
# and by the mounted docs/containerlab/core.toml. Each time: Established
# with the three reflectors (bgpd and birdc), the routes in the core's
# kernel, the VM's ping (ttl 62), logs on stdout/stderr (podman logs),
# podman healthcheck run healthy and then unhealthy when the reflectors
# stop, and exit 0 on SIGTERM (podman stop) within the grace period, the
# routes left in the kernel for the next start.
# It also checks that docs/containerlab/seed.clab.yml describes this lab.
#
#   bash tests/lab/container-test.sh [BINARY]   # as root; default target/release/bgpd
set -euo pipefail
cd "$(dirname "$0")/../.."
src=$PWD
bin=${1:-${BGPD:-$src/target/release/bgpd}}
[ "$(id -u)" = 0 ] || { echo "container-test: run as root" >&2; exit 1; }
for t in podman runc bird birdc ping python3; do
    command -v "$t" >/dev/null || { echo "FAIL: $t is missing (see .ci/packages)" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "FAIL: no bgpd binary at $bin (cargo build --release)" >&2; exit 1; }

LAB_ID=${LAB_ID:-ct$$}
source tests/lab/seed-lab.sh
# Here crun fails ("cgroups in hybrid mode") and so do the default
# ulimits: runc, cgroupfs, and explicit limits.
podman=(podman --runtime runc --cgroup-manager=cgroupfs)
ulimits=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
image=localhost/bgpd:ci-$LAB_ID
grace=10
containers=()

source tests/lab/checks.sh
cleanup() {
    local rc=$?
    if [ $rc -ne 0 ]; then
        for c in "${containers[@]}"; do
            echo "--- podman logs $c (tail)"; "${podman[@]}" logs --tail 40 "$c" 2>&1 || true
        done
        echo "--- core routes"; ip -n "$(ns core)" route 2>/dev/null || true
    fi
    for c in "${containers[@]}"; do "${podman[@]}" rm -f -t 0 "$c" >/dev/null 2>&1 || true; done
    lab_down
    "${podman[@]}" rmi -f "$image" >/dev/null 2>&1 || true
    rm -rf "$ctx" "$LAB_DIR"
    exit $rc
}
ctx=$(mktemp -d)
trap cleanup EXIT


# --- The clab topology describes this lab: the same nodes, addresses,
# links, pods and BIRD configs, and the image and config this test runs.
python3 - "$src/docs/containerlab/seed.clab.yml" <<'EOF' || fail "seed.clab.yml does not match the lab"
import sys, yaml
t = yaml.safe_load(open(sys.argv[1]))["topology"]
nodes, links = t["nodes"], {tuple(sorted(l["endpoints"])) for l in t["links"]}
def want(c, what):
    if not c:
        sys.exit(f"seed.clab.yml: {what}")
core = nodes["core"]
want(core.get("image") == "bgpd:latest", "core's image is not bgpd:latest")
want("core.toml:/etc/bgpd/bgpd.toml:ro" in core.get("binds", []), "core does not mount core.toml at /etc/bgpd/bgpd.toml")
ex = " ; ".join(core.get("exec", []))
for a in ("192.168.83.1/24 dev eth1", "192.168.82.1/24 dev eth2", "net.ipv4.ip_forward=1"):
    want(a in ex, f"core's exec lacks {a}")
lab = {"m1": "192.168.83.36", "m2": "192.168.83.49", "m3": "192.168.83.54",
       "w1": "192.168.83.22", "w2": "192.168.83.37"}
for n, ip in lab.items():
    ex = " ; ".join(nodes[n].get("exec", []))
    want(f"ip addr add {ip}/24 dev eth1" in ex, f"{n} is not {ip}")
    want("default via 192.168.83.1" in ex, f"{n}'s default route is not the core")
    want("172.16.0.10/32 dev lo" in ex, f"{n} does not bind the service IP")
    want(f"{n}.conf:/etc/bird/bird.conf:ro" in nodes[n].get("binds", []), f"{n} does not mount {n}.conf")
    want(tuple(sorted([f"{n}:eth1", f"lan:{n}"])) in links, f"{n} is not on the LAN")
want(tuple(sorted(["core:eth1", "lan:core"])) in links, "core is not on the LAN")
want(tuple(sorted(["core:eth2", "vm:eth1"])) in links, "the VM is not behind the core")
want("192.168.82.10/24" in " ".join(nodes["vm"]["exec"]), "the VM is not 192.168.82.10")
for w, pod, p in (("w1", "pod1", "172.15.190.2"), ("w2", "pod2", "172.15.191.2")):
    want(tuple(sorted([f"{w}:cali0", f"{pod}:eth1"])) in links, f"{pod} is not behind {w}")
    ex = " ; ".join(nodes[w]["exec"])
    want(f"{p}/32 dev cali0" in ex and "proxy_arp=1" in ex, f"{w} does not route {p} to its pod")
    ex = " ; ".join(nodes[pod]["exec"])
    want(f"{p}/32 dev eth1" in ex and "169.254.1.1" in ex, f"{pod} is not {p} via 169.254.1.1")
want(set(nodes) == {"lan", "core", "vm", "pod1", "pod2", *lab}, f"unexpected nodes {sorted(nodes)}")
EOF
grep -q '^socket = "/run/bgpd/bgpd.sock"' docs/containerlab/core.toml || fail "core.toml's control socket is not where the HEALTHCHECK looks"
ok "seed.clab.yml: the lab's nodes, addresses, links, pods; core runs bgpd:latest with core.toml"

# --- The image.
t0=$SECONDS
base=$(bash .ci/image-base.sh)
ok "base image $base ($((SECONDS - t0))s; debootstrap only when it is not there)"
cp "$bin" "$ctx/bgpd"
strip "$ctx/bgpd"
t0=$SECONDS
# No network in the build: the base already holds iproute2 and procps.
"${podman[@]}" build --quiet --format docker --network none "${ulimits[@]}" \
    --build-arg BASE="$base" -f docs/containerlab/Containerfile -t "$image" "$ctx" >"$ctx/build.log" 2>&1 \
    || { cat "$ctx/build.log" >&2; fail "podman build"; }
"${podman[@]}" image inspect "$image" >"$ctx/inspect.json"
read -r hc ep size < <(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))[0]
print(json.dumps((d.get("Healthcheck") or {}).get("Test"), separators=(",", ":")),
      json.dumps([d["Config"].get("Entrypoint"), d["Config"].get("Cmd")], separators=(",", ":")),
      round(d["Size"] / 1e6))' "$ctx/inspect.json")
[ "$hc" = '["CMD","bgpd","health","--socket","/run/bgpd/bgpd.sock"]' ] || fail "the image's HEALTHCHECK: $hc"
[ "$ep" = '[["bgpd"],["--config","/etc/bgpd/bgpd.toml"]]' ] || fail "entrypoint and cmd: $ep"
ok "podman build from $base: $image ($((SECONDS - t0))s, $size MB), HEALTHCHECK bgpd health, ENTRYPOINT bgpd"

lab_up
NODES=(192.168.83.22 192.168.83.36 192.168.83.37 192.168.83.49 192.168.83.54)
for n in m1 m2 m3 w1 w2; do
    # BLESS=1 rewrites them from the lab's rendering, keeping their header.
    if [ "${BLESS:-}" = 1 ]; then
        [ "${CI:-}" != true ] || fail "BLESS=1 under CI=true: bless on a workstation and commit"
        { grep '^# ' "docs/containerlab/$n.conf"; cat "$LAB_DIR/$n.conf"; } >"$ctx/$n.conf"
        cp "$ctx/$n.conf" "docs/containerlab/$n.conf"
    fi
    got=$(sed '/^# /d' "docs/containerlab/$n.conf")
    [ "$got" = "$(cat "$LAB_DIR/$n.conf")" ] || fail "docs/containerlab/$n.conf differs from the lab's: $(diff <(echo "$got") "$LAB_DIR/$n.conf" | head)"
done
ok "docs/containerlab/{m1,m2,m3,w1,w2}.conf are the configs the lab runs"

route() { ip -n "$(ns core)" route show "$@"; }
has_nexthops() {
    local p=$1; shift
    local got; got=$(route "$p" | grep -o 'via [0-9.]*' | awk '{print $2}' | sort | tr '\n' ' ')
    [ "$got" = "$(printf '%s\n' "$@" | sort | tr '\n' ' ')" ]
}
all_up() {
    "${podman[@]}" exec "$1" bgpd show neighbors --json | python3 -c '
import json, sys
rows = json.load(sys.stdin)
sys.exit(0 if sum(r["state"] == "up" for r in rows) == 3 else 1)'
}
health() { "${podman[@]}" healthcheck run "$1"; }

# run_core NAME HOW ARGS...: bgpd's container as the core, then every check.
run_core() {
    local c=$1 how=$2; shift 2
    containers+=("$c")
    # No systemd here to time the image's HEALTHCHECK: this test runs it
    # (podman healthcheck run). podman 4.3 still complains on stderr that
    # it cannot add its systemd timer; that goes to a file.
    "${podman[@]}" run -d --name "$c" "${ulimits[@]}" --health-interval disable \
        --network "ns:/run/netns/$(ns core)" --cap-add NET_ADMIN \
        "$@" >/dev/null 2>"$ctx/run-$c.err" || fail "podman run ($how): $(cat "$ctx/run-$c.err")"
    wait_until 60 "$how: bgpd Established with the three reflectors" all_up "$c"
    for m in m1 m2 m3; do
        wait_until 20 "$how: $m reports the core Established" \
            sh -c "birdc_() { ip netns exec $(ns "$m") birdc -s $LAB_DIR/$m.ctl \"\$@\"; }; birdc_ show protocols | grep Node_192_168_83_1 | grep -q Established"
    done
    ok "$how: Established with m1, m2, m3 (bgpd in the container and birdc agree)"
    wait_until 30 "$how: 172.15.190.0/26 via 192.168.83.22" has_nexthops 172.15.190.0/26 192.168.83.22
    wait_until 30 "$how: 172.15.191.0/26 via 192.168.83.37" has_nexthops 172.15.191.0/26 192.168.83.37
    wait_until 30 "$how: 172.16.0.0/16 over every node" has_nexthops 172.16.0.0/16 "${NODES[@]}"
    route 172.15.190.0/26 | grep -q "proto bgp metric 20" || fail "$how: not installed as proto bgp: $(route 172.15.190.0/26)"
    ok "$how: the core's kernel has the blocks via their nodes and 172.16.0.0/16 over ${#NODES[@]} nodes (proto bgp)"
    local out
    out=$(nsx vm ping -c 3 -W 2 172.15.190.2) || fail "$how: ping 172.15.190.2: $out"
    echo "$out" | grep -q "ttl=62" || fail "$how: expected ttl=62: $out"
    ok "$how: the VM pings 172.15.190.2 (ttl=62)"
    # The initial sync ends with the last reflector's End-of-RIB, which may
    # come a moment after the routes (a reflector still in graceful-restart
    # recovery from the previous run's close): waited for, not assumed.
    local logs t_logs; t_logs=$(now_ms)
    until logs=$("${podman[@]}" logs "$c" 2>&1) && grep -q "$LOG_WANT" <<<"$logs"; do
        [ $(( $(now_ms) - t_logs )) -lt 30000 ] || fail "$how: podman logs lacks '$LOG_WANT' after 30 s: $(echo "$logs" | tail -5)"
        sleep 0.2
    done
    ok "$how: podman logs shows bgpd's output ($(echo "$logs" | wc -l) lines, '$LOG_WANT')"
    health "$c" || fail "$how: podman healthcheck run: unhealthy with every session up"
    [ "$("${podman[@]}" inspect --format '{{.State.Health.Status}}' "$c")" = healthy ] || fail "$how: health status"
    # The reflectors stop (BIRD sends Cease): no session, so unhealthy.
    local p
    for m in m1 m2 m3; do for p in $(ip netns pids "$(ns "$m")"); do kill -TERM "$p"; done; done
    wait_until 20 "$how: healthcheck unhealthy without sessions" sh -c "! ${podman[*]} healthcheck run $c"
    ok "$how: podman healthcheck run: healthy with the sessions up, unhealthy once the reflectors stopped"
    for m in m1 m2 m3; do start_bird "$m"; start_bird6 "$m"; done
    wait_until 60 "$how: sessions back" all_up "$c"
    wait_until 30 "$how: routes back" has_nexthops 172.16.0.0/16 "${NODES[@]}"
    local t0; t0=$(date +%s.%N)
    "${podman[@]}" stop -t "$grace" "$c" >/dev/null 2>"$ctx/stop-$c.err" || fail "$how: podman stop: $(cat "$ctx/stop-$c.err")"
    local took; took=$(python3 -c "print(round($(date +%s.%N) - $t0, 2))")
    local code; code=$("${podman[@]}" inspect --format '{{.State.ExitCode}}' "$c")
    [ "$code" = 0 ] || fail "$how: exit code $code after SIGTERM (137: killed after the ${grace}s grace period)"
    python3 -c "import sys; sys.exit(0 if $took < $grace else 1)" || fail "$how: took ${took}s to stop"
    # SIGTERM is a restart (a redeploy): the routes stay for the next
    # start to adopt. This lab removes them itself, so the next run proves
    # its own install.
    has_nexthops 172.15.190.0/26 192.168.83.22 || fail "$how: podman stop removed the routes (SIGTERM keeps them)"
    logs=$("${podman[@]}" logs "$c" 2>&1)
    grep -q "shutting down" <<<"$logs" || fail "$how: no shutdown in the logs"
    grep -q "routes left in the kernel for the next start" <<<"$logs" || fail "$how: the logs do not say the routes were kept: $(echo "$logs" | tail -3)"
    # The objects first: `ip route flush` cannot delete a route that
    # points at a nexthop group (EINVAL); deleting its group does.
    ip -n "$(ns core)" nexthop flush protocol 186 >/dev/null
    ip -n "$(ns core)" route flush proto bgp
    ip -6 -n "$(ns core)" route flush proto bgp
    [ -z "$(ip -n "$(ns core)" route show proto bgp)$(ip -n "$(ns core)" nexthop show protocol 186)" ] || fail "$how: routes or objects left after the flush the stop line prints"
    ok "$how: podman stop (SIGTERM): exit 0 in ${took}s (grace ${grace}s), routes left for the next start"
}

# --- Configured by flags: the foreground view on stdout.
LOG_WANT="Established:"
run_core "bgpd-$LAB_ID-flags" "flags" "$image" \
    --asn 64512 --router-id 192.168.83.1 \
    --peer 192.168.83.36 --peer 192.168.83.49 --peer 192.168.83.54 \
    --control-socket /run/bgpd/bgpd.sock

# --- Configured by the mounted file the clab topology mounts: logs on stderr.
LOG_WANT="initial sync done"
run_core "bgpd-$LAB_ID-config" "config file" \
    -v "$src/docs/containerlab/core.toml:/etc/bgpd/bgpd.toml:ro" "$image"

echo "PASS: container image"
