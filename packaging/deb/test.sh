#!/usr/bin/env bash
# The Debian package, as an operator meets it: build the .deb, lintian
# (no errors), dpkg -i on this machine, systemd-analyze verify of the
# installed unit, bgpd check of the installed config (as root and as the
# bgpd user), the installed daemon run as the bgpd user with the unit's
# capabilities in a namespace of its own, then dpkg -r and dpkg -P, and
# every file of the package gone. Run as root by .ci/test:
#
#   bash packaging/deb/test.sh [BINARY]      # default target/release/bgpd
#
# It installs into this machine's /usr, /etc and /lib (that is the test);
# it refuses to run when a bgpd package is already installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
bin=${1:-$src/target/release/bgpd}
[ "$(id -u)" = 0 ] || { echo "deb-test: run as root" >&2; exit 1; }
for t in dpkg-deb lintian systemd-analyze setpriv ip; do
    command -v "$t" >/dev/null || { echo "FAIL: $t is missing (see .ci/packages)" >&2; exit 1; }
done
# One package test at a time on a machine.
exec 9>/tmp/bgpd-deb-test.lock
flock 9
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
if dpkg-query -W -f='${Status}' bgpd 2>/dev/null | grep -q installed; then
    fail "a bgpd package is already installed here; not touching it (dpkg -P bgpd first)"
fi

ns=bgpddeb$$
work=$(mktemp -d)
installed=false
cleanup() {
    local rc=$?
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
    sleep 0.2
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
    if $installed; then dpkg -P bgpd >/dev/null 2>&1 || true; fi
    rm -rf "$work"
    exit $rc
}
trap cleanup EXIT

t0=$SECONDS
deb=$(bash "$here/build.sh" "$bin" "$work")
ok "built $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB) in $((SECONDS - t0))s"

# --- What is in it.
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$work/contents"
for f in /usr/sbin/bgpd /lib/systemd/system/bgpd.service /etc/bgpd/bgpd.toml \
    /usr/lib/sysusers.d/bgpd.conf /usr/lib/tmpfiles.d/bgpd.conf \
    /usr/share/bash-completion/completions/bgpd /usr/share/zsh/vendor-completions/_bgpd \
    /usr/share/fish/vendor_completions.d/bgpd.fish /usr/share/man/man8/bgpd.8.gz \
    /usr/share/man/man8/bgpd-check.8.gz /usr/share/doc/bgpd/copyright; do
    grep -qx "$f" "$work/contents" || fail "$f is not in the package"
done
[ "$(dpkg-deb -f "$deb" Package)" = bgpd ] || fail "package name"
dpkg-deb -f "$deb" Depends | grep -q libc6 || fail "no Depends on libc6: $(dpkg-deb -f "$deb" Depends)"
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx /etc/bgpd/bgpd.toml || fail "bgpd.toml is not a conffile"
ok "contents: binary, unit, conffile, sysusers.d, tmpfiles.d, completions (bash, zsh, fish), man pages; Depends: $(dpkg-deb -f "$deb" Depends)"

# --- lintian: no errors (warnings are printed).
t1=$SECONDS
lintian --fail-on error --tag-display-limit 0 "$deb" >"$work/lintian.txt" 2>&1 \
    || { cat "$work/lintian.txt" >&2; fail "lintian reports errors"; }
grep -q '^E:' "$work/lintian.txt" && { cat "$work/lintian.txt" >&2; fail "lintian reports errors"; }
ok "lintian: no errors ($(grep -c '^W:' "$work/lintian.txt" || true) warnings) in $((SECONDS - t1))s"
sed 's/^/  lintian: /' "$work/lintian.txt"

# --- Install.
installed=true
dpkg -i "$deb" >"$work/dpkg-i.txt" 2>&1 || { cat "$work/dpkg-i.txt" >&2; fail "dpkg -i"; }
dpkg-query -W -f='${Status}' bgpd | grep -q "install ok installed" || fail "dpkg does not list bgpd as installed"
getent passwd bgpd >/dev/null || fail "no bgpd user after install (sysusers.d)"
[ "$(getent passwd bgpd | cut -d: -f7)" = /usr/sbin/nologin ] || fail "bgpd user's shell: $(getent passwd bgpd)"
[ "$(stat -c '%U:%G %a' /run/bgpd)" = "bgpd:bgpd 750" ] || fail "/run/bgpd: $(stat -c '%U:%G %a' /run/bgpd 2>&1)"
[ "$(stat -c '%U:%G %a' /etc/bgpd/bgpd.toml)" = "root:bgpd 640" ] || fail "bgpd.toml: $(stat -c '%U:%G %a' /etc/bgpd/bgpd.toml)"
[ "$(command -v bgpd)" = /usr/sbin/bgpd ] || fail "bgpd on PATH: $(command -v bgpd)"
man -w 8 bgpd | grep -q /usr/share/man/man8/bgpd.8.gz || fail "man -w 8 bgpd: $(man -w 8 bgpd 2>&1)"
page=$(MANWIDTH=80 man 8 bgpd 2>/dev/null) || fail "man 8 bgpd fails"
grep -q -- "--peer" <<<"$page" || fail "man 8 bgpd does not render"
bash -c 'source /usr/share/bash-completion/completions/bgpd && complete -p bgpd' >/dev/null || fail "the bash completion does not load"
ok "dpkg -i: bgpd user (nologin), /run/bgpd bgpd:bgpd 750, bgpd.toml root:bgpd 640, man 8 bgpd, completions load"

# --- The installed unit.
out=$(systemd-analyze verify /lib/systemd/system/bgpd.service 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify says: $out"
grep -q '^ExecStart=/usr/sbin/bgpd --config /etc/bgpd/bgpd.toml$' /lib/systemd/system/bgpd.service || fail "ExecStart"
ok "systemd-analyze verify /lib/systemd/system/bgpd.service: clean"

# --- The installed config.
out=$(/usr/sbin/bgpd check --config /etc/bgpd/bgpd.toml) || fail "bgpd check: $out"
echo "$out" | grep -q "OK: AS 64512, router id 192.168.83.1, 3 peers" || fail "bgpd check: $out"
out=$(setpriv --reuid bgpd --regid bgpd --init-groups /usr/sbin/bgpd check --config /etc/bgpd/bgpd.toml) \
    || fail "bgpd check as the bgpd user: $out"
ok "bgpd check --config /etc/bgpd/bgpd.toml: $out (also as the bgpd user)"

# --- The installed daemon as the unit runs it: the bgpd user with the
# unit's ambient capabilities, the installed config, the tmpfiles
# directory for its socket. In a namespace with only loopback, so the
# example's peers (192.168.83.x) are unreachable and nothing leaves.
ip netns add "$ns"
ip -n "$ns" link set lo up
caps=+net_admin,+net_bind_service,+net_raw
# start_installed LOG: the installed bgpd as the unit runs it, in $ns; sets
# pid and waits for its control socket.
start_installed() {
    ip netns exec "$ns" setpriv --reuid bgpd --regid bgpd --init-groups \
        --inh-caps "$caps" --ambient-caps "$caps" \
        /usr/sbin/bgpd --config /etc/bgpd/bgpd.toml >"$1" 2>&1 &
    pid=$!
    for _ in $(seq 50); do [ -S /run/bgpd/bgpd.sock ] && break; sleep 0.2; done
    [ -S /run/bgpd/bgpd.sock ] || { cat "$1" >&2; fail "the installed bgpd made no control socket"; }
}
start_installed "$work/bgpd.log"
[ "$(stat -c '%U:%G' /run/bgpd/bgpd.sock)" = "bgpd:bgpd" ] || fail "socket owner: $(stat -c '%U:%G' /run/bgpd/bgpd.sock)"
[ "$(ps -o user= -p "$pid")" = bgpd ] || fail "bgpd runs as $(ps -o user= -p "$pid")"
h=$(/usr/sbin/bgpd health --socket /run/bgpd/bgpd.sock || true)
echo "$h" | grep -q "0 of 3 sessions established" || fail "bgpd health: $h"
ss -N "$ns" -ltn | grep -q ':179 ' || fail "the installed bgpd does not listen on port 179 (CAP_NET_BIND_SERVICE)"
kill -TERM "$pid"
wait "$pid" || { cat "$work/bgpd.log" >&2; fail "the installed bgpd did not exit 0 on SIGTERM"; }
[ -e /run/bgpd/bgpd.sock ] && fail "socket left behind"
ok "the installed bgpd runs as the bgpd user with the unit's capabilities: port 179, /run/bgpd/bgpd.sock, health answers, exit 0 on SIGTERM"

# --- Remove, then purge: every file of the package is gone. A bgpd still
# running is stopped by the package's prerm with `bgpd stop --flush` (its
# routes removed: it is going for good).
start_installed "$work/bgpd2.log"
dpkg -r bgpd >"$work/dpkg-r.txt" 2>&1 || { cat "$work/dpkg-r.txt" >&2; fail "dpkg -r"; }
for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
kill -0 "$pid" 2>/dev/null && fail "dpkg -r left the running bgpd running (prerm: bgpd stop --flush)"
wait "$pid" || { cat "$work/bgpd2.log" >&2; fail "bgpd stopped by prerm did not exit 0"; }
grep -q "remove_routes=true" "$work/bgpd2.log" || { cat "$work/bgpd2.log" >&2; fail "prerm's stop did not ask for the routes to be removed"; }
ip netns del "$ns"
left=()
while read -r f; do
    [ -z "$f" ] || [ "${f%/}" != "$f" ] && continue
    [ "$f" = /etc/bgpd/bgpd.toml ] && continue
    [ -e "$f" ] && left+=("$f")
done <"$work/contents"
[ ${#left[@]} -eq 0 ] || fail "dpkg -r left ${left[*]}"
[ -e /etc/bgpd/bgpd.toml ] || fail "dpkg -r removed the conffile (only purge should)"
[ -d /run/bgpd ] && fail "dpkg -r left /run/bgpd"
dpkg -P bgpd >"$work/dpkg-p.txt" 2>&1 || { cat "$work/dpkg-p.txt" >&2; fail "dpkg -P"; }
installed=false
[ -e /etc/bgpd ] && fail "dpkg -P left /etc/bgpd: $(ls -la /etc/bgpd)"
dpkg-query -W -f='${Status}' bgpd 2>/dev/null | grep -q installed && fail "dpkg still lists bgpd"
for d in /usr/share/doc/bgpd /var/lib/bgpd; do [ -e "$d" ] && fail "$d left after purge"; done
ok "dpkg -r stopped the running bgpd (prerm: bgpd stop --flush) and removed every file but the conffile; dpkg -P removed /etc/bgpd; the bgpd user stays, as Debian leaves system users"
echo "PASS: Debian package ($((SECONDS - t0))s)"
