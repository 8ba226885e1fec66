#!/usr/bin/env bash
# Side-by-side convergence: the same BGP load (benches/loadgen.rs) against
# bgpd, BIRD 2, BIRD 1.6 and FRR (bgpd + zebra), each run in its own pair of
# network namespaces (daemon "D", load generator "L", one veth between them).
# Root only; nothing is touched in the root namespace.
#
#   benches/harness.sh [--quick] [--daemons bgpd,bird2,bird1,frr]
#                      [--scenarios 1x1M,10x100k,100x1k,calico,listen]
#                      [--modes fib,rib] [--out FILE.jsonl] [--timeout S] [--p1 N]
#                      [--repeat N] [--idle S]
#
# Per scenario and daemon, two runs:
#   fib  kernel install on. FIB convergence = from the loadgen's "all sessions
#        Established" to the first poll that sees every prefix in the daemon
#        namespace's main table, read from /proc/PID/net/fib_triestat (a
#        netlink-maintained kernel count; polling walks the trie, so it is
#        polled every 250 ms at >= 200k routes, 100 ms at >= 20k, else 20 ms),
#        and, once the count is complete, the daemon's RIB holds every path
#        (with ADD-PATH/ECMP the prefix count is complete long before).
#   rib  kernel install off (bgpd --no-install; BIRD without a kernel
#        protocol; FRR bgpd -Z without zebra). RIB convergence = until the
#        daemon's own count of received paths reaches the total (bgpd: control
#        socket "health" paths; BIRD: birdc "show route count" or
#        "show protocols all" imported; FRR: "show bgp summary json" pfxRcd),
#        polled every 5 ms below 200k paths and 20 ms above (FRR's vtysh:
#        50 ms, 250 ms at >= 200k).
# After convergence (and 1 s of settling) it reads peak RSS (VmHWM) and CPU
# seconds (utime+stime) of the daemon processes (FRR: bgpd + zebra), and for
# bgpd how long `bgpd show neighbors` takes then (show_neighbors_s).
# --idle S then leaves the converged daemon alone for S seconds but for a
# monitoring poll every 15 s (bgpd: GET /metrics; BIRD: birdc show
# protocols all; FRR: show bgp summary json) and reports its CPU per
# minute over that window (idle_cpu_s_per_min: the periodic kernel
# reconcile included, so S >= 60) and its RSS at the end (idle_rss_mib).
# --repeat N runs each scenario, mode and daemon N times, going round the
# daemons (so a noisy minute hits them all); the tables then show medians
# of the runs that converged, and a spread table gives runs ok, median,
# min and max.
#
# Scenarios (--quick divides them for sanity runs):
#   1x1M      1 iBGP peer x 1,000,000 /28            (quick: 1 x 20,000)
#   10x100k   10 peers x 100,000 distinct /28        (quick: 4 x 5,000)
#   100x1k    100 peers x 1,000 distinct /28         (quick: 20 x 200)
#   calico    3 route reflectors with ADD-PATH, each reflecting 1,000 nodes:
#             the node's /26 and one path of 172.16.0.0/16, next hop and
#             ORIGINATOR_ID the node (quick: 100 nodes)
#   listen    1,000 nodes peering directly through a dynamic listen range, each
#             with its /26 + 172.16.0.0/16 (quick: 100). BIRD 1.6 has no
#             dynamic peers: skipped.
# Propagation scenarios (bgperf2's shape; the daemon is a route reflector,
# kernel install off, bgpd and BIRD 2 only, run in the "rib" mode): a
# monitor peer (loadgen --mode monitor) connects first; then the injectors
# connect and send. The clock runs from the injectors' first UPDATE (all
# Established, streaming starts) until the monitor holds every prefix.
# Every peer, injectors included, is an RR client, so each route is also
# reflected to every other injector.
#   prop1x1M     1 injector x 1,000,000 /28            (quick: 1 x 20,000)
#   prop10x100k  10 injectors x 100,000 /28            (quick: 4 x 5,000)
#   propcalico   1,000 Calico nodes (configured peers), each its /26 and
#                172.16.0.0/16, each receiving all    (quick: 100)
# Failover scenario (issue "Lose nothing"; kernel install on, bgpd, bgpd
# with plain routes ("bgpd-plain", [kernel] nexthop_objects = false) and
# BIRD 2, run in the "fib" mode):
#   failover     10 peers x the same 100,000 /28, each with its own next hop
#                (a 10-wide ECMP set per prefix)  (quick: 4 x 5,000)
#                Once every route holds all 10 next hops (checked on a full
#                dump), the first peer closes its session (NOTIFICATION
#                Cease, loadgen --drop-on-usr1). Failover = from that
#                NOTIFICATION until no route in the kernel forwards via the
#                lost next hop: 256 prefixes spread over the table are
#                looked up every 10 ms (`ip route get fibmatch`, which shows
#                the whole route, since a group change sends no per-route
#                request), and the time counts once they are all clean and
#                a full dump confirms it (else full dumps go on until one
#                is clean).
# The "bgpd-plain" daemon (any scenario) is bgpd with nexthop objects off.
# The "floor" daemon (1x1M and 10x100k, fib mode; benches/floor.rs) is no
# BGP at all: the same routes and next hops written by raw batched
# rtnetlink as fast as the kernel takes them (FLOOR_ARGS, default
# "--ack batch --nhid --order shuffle", the fastest the sweep found),
# timed as a FIB run from its launch; the table gives bgpd's FIB time
# over it ("vs floor").
# Environment: BGPD, LOADGEN, FLOOR (binaries; default $CARGO_TARGET_DIR/release),
# BIRD2 (/opt/bird2/usr/sbin/bird), BIRD1 (bird), BGPD_LOG (default warn),
# BGPD_MODE: "config" (default; bgpd --config FILE, as deployed, no
# foreground view) or "foreground" (bgpd --peer ... printing its view to
# BGPD_STDOUT, default /dev/null; the view rate-limits route lines and keeps
# a prefix set for its summaries, which costs some CPU and memory),
# HARNESS_KEEP=1 keeps the run directories (daemon.log, configs) in H_DIR,
# BGPD_WRAP (a command to run bgpd under, e.g. for profiling:
#   BGPD_WRAP="valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out").
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }
T=${CARGO_TARGET_DIR:-target}/release
export BGPD=${BGPD:-$T/bgpd} LOADGEN=${LOADGEN:-$T/bgpd-loadgen}
export BIRD2=${BIRD2:-/opt/bird2/usr/sbin/bird} BIRD2C=${BIRD2C:-/opt/bird2/usr/sbin/birdc}
export BIRD1=${BIRD1:-$(command -v bird || true)} BIRD1C=${BIRD1C:-$(command -v birdc || true)}
export FLOOR=${FLOOR:-$T/bgpd-floor} FLOOR_ARGS=${FLOOR_ARGS:---ack batch --nhid --order shuffle}
export BGPD_LOG=${BGPD_LOG:-warn} BGPD_STDOUT=${BGPD_STDOUT:-/dev/null} BGPD_MODE=${BGPD_MODE:-config}
for b in "$BGPD" "$LOADGEN"; do
  [ -x "$b" ] || { echo "missing $b: cargo build --release" >&2; exit 1; }
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
export H_PREFIX=bh$$ H_DIR=$(mktemp -d /tmp/harness.XXXXXX)
chmod 755 "$H_DIR"
cleanup() {
  for ns in $(ip netns list | awk '{print $1}' | grep "^$H_PREFIX" || true); do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  if [ -n "${HARNESS_KEEP:-}" ]; then echo "harness: run directories kept in $H_DIR" >&2; else rm -rf "$H_DIR"; fi
  rm -rf "/var/run/frr/$H_PREFIX"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

python3 - "$@" <<'PY'
import argparse, json, os, re, signal, socket, subprocess, sys, threading, time

ap = argparse.ArgumentParser()
ap.add_argument("--quick", action="store_true")
ap.add_argument("--daemons", default="bgpd,bird2,bird1,frr")
ap.add_argument("--scenarios", default="1x1M,10x100k,100x1k,calico,listen")
ap.add_argument("--modes", default="fib,rib")
ap.add_argument("--out", default="")
ap.add_argument("--timeout", type=float, default=180)
ap.add_argument("--repeat", type=int, default=1, help="runs per scenario, mode and daemon; tables show medians and a spread table")
ap.add_argument("--idle", type=float, default=0, help="after a converged run, leave the daemon S seconds (monitoring every 15 s) and report its CPU per minute and RSS")
ap.add_argument("--p1", type=int, default=0, help="override the prefix count of 1x1M (profiling runs)")
ap.add_argument("--failover-sample", choices=["fibmatch", "get"], default="fibmatch",
                help="failover: look up the sample's routes whole (fibmatch), or 4 flows per prefix through the kernel's multipath choice (get)")
a = ap.parse_args()
E = os.environ
PFX, DIR = E["H_PREFIX"], E["H_DIR"]
HZ = os.sysconf("SC_CLK_TCK")
ASN = 64512
DADDR = "100.64.0.1"
FIRST_PEER = "100.64.1.1"

def peers(m):
    b = int.from_bytes(socket.inet_aton(FIRST_PEER), "big")
    return [socket.inet_ntoa((b + i).to_bytes(4, "big")) for i in range(m)]

q = a.quick
SCEN = {
    "1x1M":    dict(kind="plain", m=1, p=20000 if q else 1000000),
    "10x100k": dict(kind="plain", m=4 if q else 10, p=5000 if q else 100000),
    "100x1k":  dict(kind="plain", m=20 if q else 100, p=200 if q else 1000),
    "calico":  dict(kind="calico", m=3, nodes=100 if q else 1000),
    "listen":  dict(kind="listen", m=100 if q else 1000),
    "prop1x1M":    dict(kind="prop", inj="plain", m=1, p=20000 if q else 1000000),
    "prop10x100k": dict(kind="prop", inj="plain", m=4 if q else 10, p=5000 if q else 100000),
    "propcalico":  dict(kind="prop", inj="node", m=100 if q else 1000),
    "failover":    dict(kind="failover", m=4 if q else 10, p=5000 if q else 100000),
}
MONITOR = "100.64.9.1"
if a.p1:
    SCEN["1x1M"]["p"] = a.p1
for s in SCEN.values():
    if s["kind"] == "plain":
        s["rib"] = s["fib"] = s["m"] * s["p"]
    elif s["kind"] == "failover":
        s["rib"], s["fib"] = s["m"] * s["p"], s["p"]
    elif s["kind"] == "calico":
        s["rib"], s["fib"] = 3 * 2 * s["nodes"], s["nodes"] + 1
    elif s["kind"] == "prop":
        s["rib"] = s["fib"] = s["m"] * s["p"] if s["inj"] == "plain" else s["m"] + 1
    else:
        s["rib"], s["fib"] = 2 * s["m"], s["m"] + 1

def sh(cmd, check=True):
    return subprocess.run(cmd, shell=True, check=check, capture_output=True, text=True).stdout

def versions():
    v = {}
    v["bgpd"] = sh(f"git rev-parse --short HEAD; git status --porcelain src Cargo.toml | wc -l", False).split()
    v["bird2"] = sh(f"{E['BIRD2']} --version 2>&1", False).strip()
    v["bird1"] = sh(f"{E['BIRD1']} --version 2>&1", False).strip() if E["BIRD1"] else None
    v["frr"] = sh("/usr/lib/frr/bgpd --version 2>&1 | head -1", False).strip()
    v["nproc"] = os.cpu_count()
    v["cpu"] = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2", False).strip()
    v["kernel"] = os.uname().release
    return v

# ---------------------------------------------------------------- topology
def netns_up(run):
    d, l = f"{PFX}d{run}", f"{PFX}l{run}"
    cmds = [f"ip netns add {d}", f"ip netns add {l}",
            f"ip -n {d} link add d0 type veth peer name l0 netns {l}",
            f"ip -n {d} addr add {DADDR}/10 dev d0",
            f"ip -n {l} addr add 100.64.0.2/10 dev l0"]
    for c in cmds:
        sh(c)
    return d, l

def add_sources(l, addrs):
    batch = "".join(f"addr add {x}/32 dev l0\n" for x in addrs)
    subprocess.run(["ip", "-n", l, "-b", "-"], input=batch, text=True, check=True)
    for ns, dev in ((l, "l0"), (l, "lo")):
        sh(f"ip -n {ns} link set {dev} up")

def netns_down(d, l, procs):
    if E.get("BGPD_WRAP") and procs:
        # A profiler under bgpd writes its output on a clean exit.
        procs[0].terminate()
        try: procs[0].wait(timeout=60)
        except Exception: pass
    for p in procs:
        try: p.kill()
        except Exception: pass
    for p in procs:
        try: p.wait(timeout=10)
        except Exception: pass
    for ns in (d, l):
        for pid in sh(f"ip netns pids {ns}", False).split():
            sh(f"kill -9 {pid}", False)
    # Deleting the link drops its routes synchronously, so the next run
    # does not share the CPU with a background netns cleanup.
    sh(f"ip -n {d} link del d0", False)
    sh(f"ip netns del {d}; ip netns del {l}", False)

# ---------------------------------------------------------------- configs
def bird_conf(ver, s, peers_, fib):
    rid = f"router id {DADDR};\nprotocol device {{ }}\n"
    if ver == 2:
        kern = "protocol kernel { ipv4 { export all; import none; }; merge paths on limit 32; }\n"
        tmpl = (f"template bgp peers {{ local {DADDR} as {ASN}; passive on; hold time 90; direct;\n"
                "  ipv4 { import all; export none; gateway direct; add paths rx; }; }\n")
    else:
        kern = "protocol kernel { export all; import none; merge paths on limit 32; }\n"
        tmpl = (f"template bgp peers {{ local {DADDR} as {ASN}; passive on; hold time 90; direct;\n"
                "  import all; export none; gateway direct; add paths rx; }\n")
    out = rid + (kern if fib else "") + tmpl
    if s["kind"] == "listen":
        out += f"protocol bgp dyn from peers {{ neighbor range 100.64.0.0/16 as {ASN}; }}\n"
    else:
        out += "".join(f"protocol bgp p{i} from peers {{ neighbor {x} as {ASN}; }}\n"
                       for i, x in enumerate(peers_))
    return out

def frr_conf(s, peers_):
    c = ["frr defaults traditional", "hostname harness", "log file %s/bgpd.log warnings" % DIR,
         f"router bgp {ASN}", f" bgp router-id {DADDR}", " no bgp network import-check",
         " neighbor PG peer-group", f" neighbor PG remote-as {ASN}", " neighbor PG passive",
         " neighbor PG timers 30 90"]
    if s["kind"] == "listen":
        c += [" bgp listen limit 2000", " bgp listen range 100.64.0.0/16 peer-group PG"]
    else:
        c += [f" neighbor {x} peer-group PG" for x in peers_]
    c += [" address-family ipv4 unicast", "  maximum-paths ibgp 32", " exit-address-family", ""]
    return "\n".join(c)

# ---------------------------------------------------------------- counting
def fib_count(pid):
    try:
        txt = open(f"/proc/{pid}/net/fib_triestat").read()
    except OSError:
        return None
    m = re.search(r"^Main:.*?Prefixes:\s*(\d+)", txt, re.S | re.M)
    return int(m.group(1)) if m else 0

def bgpd_rib(sock):
    try:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(sock)
        s.sendall(b'{"cmd":"health"}\n')
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
        s.close()
        return json.loads(buf)["data"]["paths"]
    except Exception:
        return None

def bird_rib(birdc, sock, use_count):
    if use_count:
        out = sh(f"{birdc} -s {sock} show route count", False)
        m = re.search(r"(\d+) of (\d+) routes", out)
        return int(m.group(2)) if m else None
    out = sh(f"{birdc} -s {sock} show protocols all", False)
    n = [int(x) for x in re.findall(r"Routes:\s+(\d+) imported", out)]
    return sum(n) if n else None

def frr_rib(vty):
    out = sh(f"vtysh --vty_socket {vty} -d bgpd -c 'show bgp ipv4 unicast summary json'", False)
    try:
        j = json.loads(out)
        return sum(p.get("pfxRcd", 0) for p in j.get("peers", {}).values())
    except Exception:
        return None

def proc_stats(pid):
    try:
        st = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        cpu = (int(st[11]) + int(st[12])) / HZ
        hwm = int(re.search(r"VmHWM:\s+(\d+)", open(f"/proc/{pid}/status").read()).group(1))
        return cpu, hwm / 1024
    except Exception:
        return None, None

# ---------------------------------------------------------------- one run
def start_loadgen(l, rd, args, name, procs):
    """Starts bgpd-loadgen in namespace `l` with `args` (its stderr in
    rd/NAME.err); returns the process and a dict of its latest JSON event
    of each kind, filled as they come."""
    p = subprocess.Popen(["ip", "netns", "exec", l, E["LOADGEN"]] + args, stdout=subprocess.PIPE,
                         stderr=open(f"{rd}/{name}.err", "w"), text=True)
    procs.append(p)
    ev = {}
    def reader():
        for line in p.stdout:
            try:
                j = json.loads(line)
                ev[j["event"]] = j
            except Exception:
                pass
    threading.Thread(target=reader, daemon=True).start()
    return p, ev

RUN = [0]
def run(daemon, sname, mode):
    s = SCEN[sname]
    fib = mode == "fib"
    RUN[0] += 1
    rd = f"{DIR}/r{RUN[0]}"
    os.makedirs(rd)
    os.chmod(rd, 0o755)
    d, l = netns_up(RUN[0])
    sh(f"ip -n {d} link set d0 up; ip -n {d} link set lo up")
    ps = peers(s["m"])
    add_sources(l, ps)
    base = fib_count_ns(d)
    procs, pids = [], []
    log = open(f"{rd}/daemon.log", "w")
    nx = ["ip", "netns", "exec", d]
    rib_reader = None
    if daemon.startswith("bgpd"):
        sock = f"{rd}/bgpd.sock"
        wrap = E.get("BGPD_WRAP", "").split()
        if E["BGPD_MODE"] == "config" or daemon == "bgpd-plain":
            # As deployed: a config file, no foreground view.
            conf = [f"local_as = {ASN}", f'router_id = "{DADDR}"', ""]
            if s["kind"] == "listen":
                conf += ["[[range]]", 'prefix = "100.64.0.0/16"', ""]
            for x in (ps if s["kind"] != "listen" else []):
                conf += ["[[peer]]", f'address = "{x}"', "passive = true", ""]
            conf += ["[kernel]", f"install = {'true' if fib else 'false'}",
                     f"nexthop_objects = {'false' if daemon == 'bgpd-plain' else 'true'}", "",
                     "[control]", f'socket = "{sock}"', "",
                     "[metrics]", 'listen = "127.0.0.1:9179"', "",
                     "[log]", f'level = "{E["BGPD_LOG"]}"', ""]
            open(f"{rd}/bgpd.toml", "w").write("\n".join(conf))
            cmd = nx + wrap + [E["BGPD"], "--config", f"{rd}/bgpd.toml"]
        else:
            cmd = nx + wrap + [E["BGPD"], "--asn", str(ASN), "--router-id", DADDR, "--control-socket", sock]
            if s["kind"] == "listen":
                cmd += ["--listen-range", "100.64.0.0/16"]
            else:
                for x in ps:
                    cmd += ["--peer", f"{x},passive"]
            if not fib:
                cmd.append("--no-install")
        out = open(E["BGPD_STDOUT"], "w")
        procs.append(subprocess.Popen(cmd, stdout=out, stderr=log))
        rib_reader = lambda: bgpd_rib(sock)
        rib_iv = RIB_IV(s)
    elif daemon in ("bird2", "bird1"):
        ver = 2 if daemon == "bird2" else 1
        if s["kind"] == "listen" and ver == 1:
            return dict(daemon=daemon, scenario=sname, mode=mode, skipped="BIRD 1.6 has no dynamic peers")
        conf, sock = f"{rd}/bird.conf", f"{rd}/bird.ctl"
        open(conf, "w").write(bird_conf(ver, s, ps, fib))
        binp, birdc = (E["BIRD2"], E["BIRD2C"]) if ver == 2 else (E["BIRD1"], E["BIRD1C"])
        procs.append(subprocess.Popen(nx + [binp, "-f", "-c", conf, "-s", sock], stdout=log, stderr=log))
        use_count = s["rib"] <= 200000
        rib_reader = lambda: bird_rib(birdc, sock, use_count)
        rib_iv = RIB_IV(s)
    elif daemon == "frr":
        lab = PFX
        os.makedirs(f"/var/run/frr/{lab}", exist_ok=True)
        sh(f"chown frr:frr /var/run/frr/{lab}")
        open(f"{rd}/bgpd.conf", "w").write(frr_conf(s, ps))
        open(f"{rd}/zebra.conf", "w").write("hostname harness\nlog file %s/zebra.log warnings\n" % rd)
        sh(f"chown -R frr:frr {rd}")
        common = ["-N", lab, "-z", f"{rd}/zserv.api", "--vty_socket", rd, "-u", "frr", "-g", "frr"]
        if fib:
            procs.append(subprocess.Popen(nx + ["/usr/lib/frr/zebra", "-f", f"{rd}/zebra.conf",
                         "-i", f"{rd}/zebra.pid"] + common, stdout=log, stderr=log))
            time.sleep(0.5)
        bcmd = nx + ["/usr/lib/frr/bgpd", "-f", f"{rd}/bgpd.conf", "-i", f"{rd}/bgpd.pid"] + common
        if not fib:
            bcmd.append("-Z")
        procs.append(subprocess.Popen(bcmd, stdout=log, stderr=log))
        rib_reader = lambda: frr_rib(rd)
        rib_iv = 0.25 if s["rib"] >= 200000 else 0.05
    pids = [p.pid for p in procs]
    main_pid = pids[0]

    lg = ["--target", DADDR, "--sources-from", FIRST_PEER,
          "--sessions", str(s["m"]), "--asn", str(ASN), "--connect-timeout", str(int(a.timeout))]
    if s["kind"] == "plain":
        lg += ["--mode", "plain", "--prefixes", str(s["p"])]
    elif s["kind"] == "calico":
        lg += ["--mode", "calico-rr", "--nodes", str(s["nodes"])]
    else:
        lg += ["--mode", "node"]
    lgp, ev = start_loadgen(l, rd, lg, "loadgen", procs)

    res = dict(daemon=daemon, scenario=sname, mode=mode, routes=s["fib"] if fib else s["rib"])
    target = s["fib"] if fib else s["rib"]
    if fib:
        iv = 0.25 if target >= 200000 else 0.1 if target >= 20000 else 0.02
        count = lambda: (lambda c: None if c is None else c - base)(fib_count(main_pid))
    else:
        iv, count = rib_iv, rib_reader
    t0 = time.time()
    done_t, last = None, None
    while time.time() - t0 < a.timeout:
        time.sleep(iv)
        if any(p.poll() is not None for p in procs):
            res["error"] = "a process exited early"
            break
        c = count()
        now = time.time()
        if c is not None:
            last = c
        if c is not None and c >= target and "established" in ev:
            # The kernel count can be complete while paths still arrive
            # (ECMP, ADD-PATH): a FIB run also waits for the daemon's RIB
            # to hold every path.
            if fib:
                rc = rib_reader()
                if rc is None or rc < s["rib"]:
                    res["fib_before_rib_s"] = res.get("fib_before_rib_s") or round(now - ev["established"]["t"], 3)
                    continue
            done_t = now
            break
    res["poll_s"] = iv
    if "established" in ev:
        res["connect_s"] = ev["established"]["connect_s"]
    if done_t:
        res["converge_s"] = round(done_t - ev["established"]["t"], 3)
        if "sent" in ev:
            res["send_s"] = ev["sent"]["send_s"]
        time.sleep(1)
        cpu = rss = 0.0
        for pid in pids:
            c_, r_ = proc_stats(pid)
            cpu += c_ or 0
            rss += r_ or 0
        res["cpu_s"], res["rss_mib"] = round(cpu, 2), round(rss, 1)
        if daemon.startswith("bgpd"):
            # How long the control socket takes to answer with the table
            # loaded (tests only check that it answers).
            t = time.time()
            sh(f"{E['BGPD']} show neighbors --json --socket {rd}/bgpd.sock >/dev/null", False)
            res["show_neighbors_s"] = round(time.time() - t, 3)
            if fib:
                j = json.loads(sh(f"{E['BGPD']} show fib --json --socket {rd}/bgpd.sock", False) or "{}")
                res["fib_ops"] = {k: v for k, v in j.get("ops", {}).items() if v}
            st = open(f"/proc/{main_pid}/stat").read().rsplit(")", 1)[1].split()
            res["user_s"], res["sys_s"] = round(int(st[11]) / HZ, 2), round(int(st[12]) / HZ, 2)
        if daemon == "frr":
            res["per_process"] = [proc_stats(p) for p in pids]
        if a.idle > 0:
            res.update(idle(daemon, d, rd, pids))
    else:
        res.setdefault("error", f"timeout, count {last} of {target}")
        tail = ""
        for f in ("daemon.log", "loadgen.err", "bgpd.log", "zebra.log"):
            try: tail += f"[{f}] " + open(f"{rd}/{f}").read()[-400:]
            except OSError: pass
        res["log_tail"] = tail
    netns_down(d, l, procs)
    time.sleep(1)
    return res

def idle(daemon, d, rd, pids):
    """--idle S: the converged daemon left alone for S seconds but for what
    monitoring does every 15 s (Prometheus scraping bgpd's /metrics, the
    bird_exporter way `birdc show protocols all` for BIRD, `show bgp
    summary json` for FRR). CPU per minute over the window (the periodic
    kernel reconcile included: bgpd and BIRD both scan every 60 s by
    default), RSS at its end."""
    def cpu():
        return sum(proc_stats(p)[0] or 0 for p in pids)
    c0, t0 = cpu(), time.time()
    scrapes = 0
    while time.time() - t0 < a.idle:
        if daemon.startswith("bgpd"):
            sh(f"ip netns exec {d} curl -sf -o /dev/null http://127.0.0.1:9179/metrics", False)
        elif daemon in ("bird2", "bird1"):
            birdc = E["BIRD2C"] if daemon == "bird2" else E["BIRD1C"]
            sh(f"{birdc} -s {rd}/bird.ctl show protocols all >/dev/null", False)
        elif daemon == "frr":
            frr_rib(rd)
        scrapes += 1
        time.sleep(max(0, min(15, a.idle - (time.time() - t0))))
    dt = time.time() - t0
    rss = sum(proc_stats(p)[1] or 0 for p in pids)
    cur = 0.0
    for p in pids:
        try:
            cur += int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{p}/status").read()).group(1)) / 1024
        except Exception:
            pass
    return dict(idle_s=round(dt, 1), idle_cpu_s_per_min=round((cpu() - c0) * 60 / dt, 3),
                idle_scrapes=scrapes, idle_rss_mib=round(cur, 1), idle_peak_rss_mib=round(rss, 1))

def run_prop(daemon, sname, mode):
    """A propagation run: the daemon reflects the injectors' routes to a
    monitor (and to each other); time from the first UPDATE to the monitor
    holding every prefix."""
    s = SCEN[sname]
    if mode != "rib":
        return dict(daemon=daemon, scenario=sname, mode=mode, skipped="propagation runs without kernel install (rib mode)")
    if daemon not in ("bgpd", "bird2"):
        return dict(daemon=daemon, scenario=sname, mode=mode, skipped="propagation is run for bgpd and BIRD 2")
    RUN[0] += 1
    rd = f"{DIR}/r{RUN[0]}"
    os.makedirs(rd)
    os.chmod(rd, 0o755)
    d, l = netns_up(RUN[0])
    sh(f"ip -n {d} link set d0 up; ip -n {d} link set lo up")
    ps = peers(s["m"])
    add_sources(l, ps + [MONITOR])
    # Configured peers, for both daemons (BIRD 2's dynamic range resets
    # connections under this load; the listen scenario measures ranges).
    listen = False
    nx = ["ip", "netns", "exec", d]
    log = open(f"{rd}/daemon.log", "w")
    if daemon == "bgpd":
        conf = [f"local_as = {ASN}", f'router_id = "{DADDR}"', ""]
        if listen:
            conf += ["[[range]]", 'prefix = "100.64.0.0/16"', "rr_client = true", f"limit = {s['m'] + 10}", ""]
        else:
            for x in ps + [MONITOR]:
                conf += ["[[peer]]", f'address = "{x}"', "passive = true", "rr_client = true", ""]
        conf += ["[kernel]", "install = false", "", "[control]", f'socket = "{rd}/bgpd.sock"', "",
                 "[log]", f'level = "{E["BGPD_LOG"]}"', ""]
        open(f"{rd}/bgpd.toml", "w").write("\n".join(conf))
        cmd = nx + E.get("BGPD_WRAP", "").split() + [E["BGPD"], "--config", f"{rd}/bgpd.toml"]
        daemon_p = subprocess.Popen(cmd, stdout=open(E["BGPD_STDOUT"], "w"), stderr=log)
    else:
        tmpl = (f"router id {DADDR};\nprotocol device {{ }}\n"
                f"template bgp peers {{ local {DADDR} as {ASN}; passive on; hold time 90; direct; rr client;\n"
                "  ipv4 { import all; export all; gateway direct; }; }\n")
        if listen:
            tmpl += f"protocol bgp dyn from peers {{ neighbor range 100.64.0.0/16 as {ASN}; }}\n"
        else:
            tmpl += "".join(f"protocol bgp p{i} from peers {{ neighbor {x} as {ASN}; }}\n"
                            for i, x in enumerate(ps + [MONITOR]))
        open(f"{rd}/bird.conf", "w").write(tmpl)
        daemon_p = subprocess.Popen(nx + [E["BIRD2"], "-f", "-c", f"{rd}/bird.conf", "-s", f"{rd}/bird.ctl"],
                                    stdout=log, stderr=log)
    procs = [daemon_p]
    evs = []
    def loadgen(args, name):
        return start_loadgen(l, rd, ["--target", DADDR, "--asn", str(ASN),
                                     "--connect-timeout", str(int(a.timeout))] + args, name, procs)[1]
    res = dict(daemon=daemon, scenario=sname, mode=mode, routes=s["rib"])
    mon = loadgen(["--source", MONITOR, "--mode", "monitor", "--expect", str(s["rib"])], "monitor")
    t0 = time.time()
    while "established" not in mon and time.time() - t0 < a.timeout and daemon_p.poll() is None:
        time.sleep(0.02)
    inj_args = ["--sources-from", FIRST_PEER, "--sessions", str(s["m"])]
    inj_args += ["--mode", "plain", "--prefixes", str(s["p"])] if s["inj"] == "plain" else ["--mode", "node"]
    inj = loadgen(inj_args, "injectors")
    t0 = time.time()
    while time.time() - t0 < a.timeout:
        time.sleep(0.02)
        if any(p.poll() is not None for p in procs):
            res["error"] = "a process exited early"
            break
        if "full" in mon and "established" in inj:
            break
    if "established" in inj:
        res["connect_s"] = inj["established"]["connect_s"]
    if "full" in mon and "established" in inj:
        res["converge_s"] = round(mon["full"]["t"] - inj["established"]["t"], 3)
        if "sent" in inj:
            res["send_s"] = inj["sent"]["send_s"]
        time.sleep(1)
        cpu, rss = proc_stats(daemon_p.pid)
        res["cpu_s"], res["rss_mib"] = round(cpu or 0, 2), round(rss or 0, 1)
    else:
        res.setdefault("error", f"timeout: monitor {mon}, injectors {inj}")
        tail = ""
        for f in ("daemon.log", "monitor.err", "injectors.err"):
            try: tail += f"[{f}] " + open(f"{rd}/{f}").read()[-400:]
            except OSError: pass
        res["log_tail"] = tail
    netns_down(d, l, procs)
    time.sleep(1)
    return res

def run_failover(daemon, sname, mode):
    """The failover run: M peers announce the same P prefixes; once every
    route holds M next hops, the first peer goes (NOTIFICATION); time until
    no route forwards via its next hop."""
    s = SCEN[sname]
    if mode != "fib":
        return dict(daemon=daemon, scenario=sname, mode=mode, skipped="failover runs with kernel install (fib mode)")
    if daemon not in ("bgpd", "bgpd-plain", "bgpd-nocompat", "bird2"):
        return dict(daemon=daemon, scenario=sname, mode=mode, skipped="failover is run for bgpd and BIRD 2")
    RUN[0] += 1
    rd = f"{DIR}/r{RUN[0]}"
    os.makedirs(rd)
    os.chmod(rd, 0o755)
    d, l = netns_up(RUN[0])
    sh(f"ip -n {d} link set d0 up; ip -n {d} link set lo up")
    ps = peers(s["m"])
    add_sources(l, ps)
    nx = ["ip", "netns", "exec", d]
    log = open(f"{rd}/daemon.log", "w")
    if daemon == "bgpd-nocompat":
        # The kernel's own advice for nexthop objects at scale: no
        # expanded hops in route dumps, no route notification per route
        # when a group changes (Documentation/networking/ip-sysctl.rst).
        sh(f"ip netns exec {d} sysctl -qw net.ipv4.nexthop_compat_mode=0")
    if daemon.startswith("bgpd"):
        sock = f"{rd}/bgpd.sock"
        conf = [f"local_as = {ASN}", f'router_id = "{DADDR}"', "multipath = 32", ""]
        for x in ps:
            conf += ["[[peer]]", f'address = "{x}"', "passive = true", ""]
        conf += ["[kernel]", f"nexthop_objects = {'false' if daemon == 'bgpd-plain' else 'true'}",
                 "nexthop_probe_ms = 0", "",
                 "[control]", f'socket = "{sock}"', "", "[log]", f'level = "{E["BGPD_LOG"]}"', ""]
        open(f"{rd}/bgpd.toml", "w").write("\n".join(conf))
        daemon_p = subprocess.Popen(nx + E.get("BGPD_WRAP", "").split() + [E["BGPD"], "--config", f"{rd}/bgpd.toml"],
                                    stdout=open(E["BGPD_STDOUT"], "w"), stderr=log)
        rib_reader = lambda: bgpd_rib(sock)
        proto = "186"
    else:
        conf, sock = f"{rd}/bird.conf", f"{rd}/bird.ctl"
        open(conf, "w").write(bird_conf(2, s, ps, True))
        daemon_p = subprocess.Popen(nx + [E["BIRD2"], "-f", "-c", conf, "-s", sock], stdout=log, stderr=log)
        rib_reader = lambda: bird_rib(E["BIRD2C"], sock, s["rib"] <= 200000)
        proto = "bird"
    procs = [daemon_p]
    lg = ["--target", DADDR, "--sources-from", FIRST_PEER, "--sessions", str(s["m"]),
          "--asn", str(ASN), "--connect-timeout", str(int(a.timeout)), "--mode", "plain",
          "--prefixes", str(s["p"]), "--same-prefixes", "--drop-on-usr1"]
    lgp, ev = start_loadgen(l, rd, lg, "loadgen", procs)
    res = dict(daemon=daemon, scenario=sname, mode=mode, routes=s["p"], paths=s["m"], sample=a.failover_sample)
    lost = FIRST_PEER
    def objects():
        # Nexthop objects by id: a hop's gateway, or a group's member ids.
        objs = {}
        for o in json.loads(sh(f"ip -n {d} -j nexthop show", False) or "[]"):
            objs[o["id"]] = o.get("gateway") or [m["id"] for m in o.get("group", [])]
        return objs
    def via(text, objs):
        # The gateways of each route in `ip route` output, nhid routes
        # resolved through the objects when the dump does not expand them.
        routes, cur = [], None
        for line in text.splitlines():
            w = line.split()
            if not w: continue
            if not line[0].isspace():
                cur = set()
                routes.append(cur)
                if "nhid" in w and objs is not None:
                    o = objs.get(int(w[w.index("nhid") + 1]))
                    for m in (o if isinstance(o, list) else [o] if o else []):
                        g = objs.get(m) if isinstance(o, list) else m
                        if isinstance(g, str): cur.add(g)
            if "via" in w and cur is not None:
                cur.add(w[w.index("via") + 1])
        return routes
    def full_count(gw):
        # Routes that forward via `gw`, in a full dump of the daemon's.
        objs = objects() if daemon == "bgpd-nocompat" else None
        return sum(1 for r in via(sh(f"ip -n {d} route show proto {proto}", False), objs) if gw in r)
    # Converged: every path in the RIB, then every route with every next hop.
    t0 = time.time()
    ok = False
    while time.time() - t0 < a.timeout and not any(p.poll() is not None for p in procs):
        time.sleep(0.5)
        rc = rib_reader()
        if "sent" in ev and rc is not None and rc >= s["rib"] and full_count(lost) >= s["p"]:
            ok = True
            break
    if not ok:
        res["error"] = f"no full ECMP table: {full_count(lost)} routes via {lost}"
        netns_down(d, l, procs)
        return res
    res["load_s"] = round(time.time() - ev["established"]["t"], 1)
    time.sleep(2)
    # The sample: 256 prefixes spread over the table (the loadgen's
    # prefixes are 10.0.0.0 + k * 16, /28).
    base = int.from_bytes(socket.inet_aton("10.0.0.0"), "big")
    idx = sorted(set([0, s["p"] - 1] + [i * (s["p"] - 1) // 255 for i in range(256)]))
    if a.failover_sample == "get":
        # What the kernel forwards: 4 destinations per prefix, each hashed
        # to one member of the ECMP set (about 1 in 10 to the lost one).
        addrs = [socket.inet_ntoa((base + k * 16 + 1 + 4 * j).to_bytes(4, "big")) for k in idx for j in range(4)]
        batch = "".join(f"route get {x}\n" for x in addrs)
        def sample_clean():
            out = subprocess.run(["ip", "-n", d, "-batch", "-"], input=batch, capture_output=True, text=True).stdout
            return out.count(" via ") >= len(addrs) and f"via {lost} " not in out
    else:
        batch = "".join(f"route get fibmatch {socket.inet_ntoa((base + k * 16).to_bytes(4, 'big'))}\n" for k in idx)
        def sample_clean():
            out = subprocess.run(["ip", "-n", d, "-batch", "-"], input=batch, capture_output=True, text=True).stdout
            routes = via(out, objects() if daemon == "bgpd-nocompat" else None)
            return len(routes) >= len(idx) and all(lost not in r and len(r) == s["m"] - 1 for r in routes)
    if sample_clean():
        res["error"] = f"the sample sees no route via {lost} before the drop: nothing to measure"
        netns_down(d, l, procs)
        return res
    before = open(f"/proc/{daemon_p.pid}/stat").read().rsplit(")", 1)[1].split()
    lgp.send_signal(signal.SIGUSR1)
    t_sig = time.time()
    done, polls, fulls = None, 0, 0
    while time.time() - t_sig < a.timeout:
        polls += 1
        if sample_clean():
            t_clean = time.time()
            fulls += 1
            if full_count(lost) == 0:
                done = t_clean
                break
            # The sample was lucky: full dumps until one is clean.
            while time.time() - t_sig < a.timeout:
                fulls += 1
                if full_count(lost) == 0:
                    done = time.time()
                    break
            break
        time.sleep(0.01)
    if "dropped" not in ev:
        time.sleep(0.2)
    t_drop = ev.get("dropped", {}).get("t", t_sig)
    if done:
        res["failover_s"] = round(done - t_drop, 3)
        res["polls"], res["full_dumps"] = polls, fulls
        after = open(f"/proc/{daemon_p.pid}/stat").read().rsplit(")", 1)[1].split()
        res["failover_cpu_s"] = round((int(after[11]) + int(after[12]) - int(before[11]) - int(before[12])) / HZ, 2)
        res["routes_left"] = len(via(sh(f"ip -n {d} route show proto {proto}", False), None))
        if daemon.startswith("bgpd"):
            j = json.loads(sh(f"{E['BGPD']} show fib --json --socket {sock}", False) or "{}")
            ops = j.get("ops", {})
            res["fib_ops"] = {k: ops.get(k) for k in ("replaced", "objects_replaced", "groups_moved", "routes_spared")}
    else:
        res["error"] = f"timeout: {full_count(lost)} routes still via {lost}"
    netns_down(d, l, procs)
    time.sleep(1)
    return res

def run_floor(daemon, sname, mode):
    """The kernel's floor (benches/floor.rs): the same routes with the same
    next hops written by raw batched rtnetlink, no BGP and no RIB, timed
    the way a FIB run is (launch to the first poll that sees them all)."""
    s = SCEN[sname]
    if s["kind"] != "plain" or mode != "fib":
        return dict(daemon=daemon, scenario=sname, mode=mode, skipped="the floor is a FIB install of plain routes")
    RUN[0] += 1
    rd = f"{DIR}/r{RUN[0]}"
    os.makedirs(rd)
    d, l = netns_up(RUN[0])
    sh(f"ip -n {d} link set d0 up; ip -n {d} link set lo up")
    ps = peers(s["m"])
    add_sources(l, ps)
    base = fib_count_ns(d)
    target = s["m"] * s["p"]
    iv = 0.25 if target >= 200000 else 0.1 if target >= 20000 else 0.02
    cmd = ["ip", "netns", "exec", d, E["FLOOR"], "--here", "--routes", str(target),
           "--gateway", ",".join(ps), "--dev", "d0"] + E["FLOOR_ARGS"].split()
    res = dict(daemon=daemon, scenario=sname, mode=mode, routes=target, floor_args=E["FLOOR_ARGS"], poll_s=iv)
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(f"{rd}/floor.err", "w"), text=True)
    done_t = last = None
    while time.time() - t0 < a.timeout:
        time.sleep(iv)
        exited = p.poll() is not None
        last = fib_count_ns(d) - base
        if last >= target:
            done_t = time.time()
            break
        if exited:
            break
    try:
        p.wait(timeout=a.timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    try:
        j = json.loads(p.stdout.read().strip().splitlines()[-1])
        res.update(floor_time_s=j["time_s"], rss_mib=j["rss_mib"], cpu_s=round(j["user_s"] + j["sys_s"], 2), floor_errors=j["errors"])
    except Exception:
        pass
    if p.returncode != 0:
        res["error"] = f"bgpd-floor exited {p.returncode}: " + open(f"{rd}/floor.err").read()[-400:]
    elif done_t:
        res["converge_s"] = round(done_t - t0, 3)
    else:
        res["error"] = f"timeout, count {last} of {target}"
    netns_down(d, l, [])
    time.sleep(1)
    return res

def RIB_IV(s):
    # RIB-only runs of bgpd and BIRD take tens of milliseconds below 200k
    # paths: poll their control sockets often enough to tell them apart.
    return 0.02 if s["rib"] >= 200000 else 0.005

def fib_count_ns(ns):
    out = sh(f"ip netns exec {ns} cat /proc/net/fib_triestat")
    m = re.search(r"^Main:.*?Prefixes:\s*(\d+)", out, re.S | re.M)
    return int(m.group(1)) if m else 0

# ---------------------------------------------------------------- main
ver = versions()
print(json.dumps(dict(versions=ver, argv=sys.argv[1:], quick=q, bgpd_log=E["BGPD_LOG"],
                      bgpd_stdout=E["BGPD_STDOUT"], bgpd_mode=E["BGPD_MODE"], date=time.strftime("%F %T %z"))), flush=True)
daemons = a.daemons.split(",")
results = []
outf = open(a.out, "a") if a.out else None
for sname in a.scenarios.split(","):
    for mode in a.modes.split(","):
        # Repeats go round the daemons, so a noisy minute hits all of them.
        for rep in range(a.repeat):
            for dmn in daemons:
                kind = SCEN[sname]["kind"]
                r = (run_prop if kind == "prop" else run_failover if kind == "failover"
                     else run_floor if dmn == "floor" else run)(dmn, sname, mode)
                if a.repeat > 1:
                    r["rep"] = rep + 1
                results.append(r)
                line = json.dumps(r)
                print(line, flush=True)
                if outf:
                    outf.write(line + "\n"); outf.flush()

# Tables: per scenario and daemon, FIB and RIB convergence, peak RSS and CPU
# (from the FIB run), and ratios to BIRD 2 from this same run. With
# --repeat, every figure is the median of the runs that converged (a run
# that failed shows as "k/N ok" in the spread table).
def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2
AGG = {}
def get(d, s, m):
    key = (d, s, m)
    if key in AGG:
        return AGG[key]
    runs = [r for r in results if (r["daemon"], r["scenario"], r["mode"]) == key]
    if not runs:
        return None
    ok = [r for r in runs if "skipped" not in r and "error" not in r]
    if len(runs) == 1 or not ok:
        out = dict(runs[0])
    else:
        out = dict(ok[0])
        for k, v in ok[0].items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "rep":
                vals = [r[k] for r in ok if isinstance(r.get(k), (int, float))]
                out[k] = median(vals)
                out[k + "_range"] = (min(vals), max(vals))
    out["runs"], out["ok"] = len(runs), len(ok)
    AGG[key] = out
    return out
def fmt(r, k, nd=2):
    if r is None: return "-"
    if "skipped" in r: return "n/a"
    if k not in r: return "fail"
    return f"{r[k]:.{nd}f}"
def ratio(r, b, k):
    if not r or not b or k not in r or k not in b or not b[k]: return ""
    return f" ({r[k]/b[k]:.2f}x)"
def rows():
    """(scenario, mode, daemon, aggregated result) of every run not skipped."""
    for sname in a.scenarios.split(","):
        for mode in a.modes.split(","):
            for dmn in daemons:
                r = get(dmn, sname, mode)
                if r and "skipped" not in r:
                    yield sname, mode, dmn, r
if a.repeat > 1:
    print()
    print(f"| scenario | mode | daemon | runs ok | median s | min s | max s | median RSS MiB | median CPU s |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for sname, mode, dmn, r in rows():
        k = "failover_s" if SCEN[sname]["kind"] == "failover" else "converge_s"
        lo, hi = r.get(k + "_range", (r.get(k), r.get(k)))
        f3 = lambda v: "-" if v is None or not r["ok"] else f"{v:.3f}"
        print(f"| {sname} | {mode} | {dmn} | {r['ok']}/{r['runs']} | {f3(r.get(k))} "
              f"| {f3(lo)} | {f3(hi)} | {fmt(r,'rss_mib',1)} | {fmt(r,'cpu_s')} |")
if a.idle > 0:
    print()
    print(f"| scenario | mode | daemon | idle CPU s per minute | RSS after MiB | vs BIRD 2 (CPU, RSS) |")
    print("|---|---|---|---:|---:|---:|")
    for sname, mode, dmn, r in rows():
        if "idle_cpu_s_per_min" in r:
            b_ = get("bird2", sname, mode)
            rt = lambda k: ratio(r, b_, k).strip(" ()") or "-"
            x = "" if dmn == "bird2" else f"{rt('idle_cpu_s_per_min')}, {rt('idle_rss_mib')}"
            print(f"| {sname} | {mode} | {dmn} | {fmt(r,'idle_cpu_s_per_min',3)} | {fmt(r,'idle_rss_mib',1)} | {x} |")
fl = [get("floor", s_, "fib") for s_ in a.scenarios.split(",")]
fl = [r for r in fl if r and "skipped" not in r]
if fl:
    print()
    print(f"| scenario | daemon | FIB conv. s | floor s ({E['FLOOR_ARGS']}) | vs floor |")
    print("|---|---|---:|---:|---:|")
    for f in fl:
        for dmn in daemons:
            r = get(dmn, f["scenario"], "fib")
            if dmn != "floor" and r and "skipped" not in r:
                print(f"| {f['scenario']} | {dmn} | {fmt(r,'converge_s')} | {fmt(f,'converge_s')} | {ratio(r, f, 'converge_s').strip(' ()')} |")
fo = [get(d_, "failover", "fib") for d_ in daemons] if "failover" in a.scenarios.split(",") else []
fo = [r for r in fo if r and "skipped" not in r]
if fo:
    print()
    print("| scenario | daemon | failover s | vs BIRD 2 | CPU s in it | route requests | groups moved |")
    print("|---|---|---:|---:|---:|---:|---:|")
    b = get("bird2", "failover", "fib")
    for r in fo:
        ops = r.get("fib_ops") or {}
        print(f"| failover | {r['daemon']} | {fmt(r,'failover_s',3)} | {ratio(r, b, 'failover_s').strip(' ()') if r['daemon'] != 'bird2' else ''} "
              f"| {fmt(r,'failover_cpu_s')} | {ops.get('replaced', '-')} | {ops.get('groups_moved', '-')} |")
print()
print("| scenario | daemon | FIB conv. s | RIB-only conv. s | peak RSS MiB | CPU s | RIB-run RSS MiB | RIB-run CPU s |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for sname in a.scenarios.split(","):
    if SCEN[sname]["kind"] == "failover":
        continue
    for dmn in daemons:
        f, r = get(dmn, sname, "fib"), get(dmn, sname, "rib")
        bf, br = get("bird2", sname, "fib"), get("bird2", sname, "rib")
        x = (lambda rr, bb, k: ratio(rr, bb, k) if dmn != "bird2" else "")
        print(f"| {sname} | {dmn} | {fmt(f,'converge_s')}{x(f,bf,'converge_s')} | {fmt(r,'converge_s')}{x(r,br,'converge_s')} "
              f"| {fmt(f,'rss_mib',1)}{x(f,bf,'rss_mib')} | {fmt(f,'cpu_s')}{x(f,bf,'cpu_s')} | {fmt(r,'rss_mib',1)} | {fmt(r,'cpu_s')} |")
PY
