# The lab scripts' checks (sourced by seed-test.sh, pair-test.sh and
# container-test.sh): one way to fail, to report and to wait.

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
# Milliseconds since the epoch: windows are measured with this, not with
# $SECONDS, whose whole seconds make "2 s" anything from 1 s to 2 s.
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# wait_until SECONDS WHAT CMD...: CMD holds within SECONDS (may be
# fractional, e.g. 2.5), measured in milliseconds; else fail with WHAT.
wait_until() {
    local t=$1 what=$2; shift 2
    local end=$(( $(now_ms) + $(awk -v t="$t" 'BEGIN { printf "%d", t * 1000 }') ))
    until "$@" >/dev/null 2>&1; do
        [ "$(now_ms)" -ge $end ] && fail "$what (after ${t}s)"
        sleep 0.1
    done
}
# since_s T0: the time since now_ms gave T0, in seconds (1.234).
since_s() { awk -v d=$(( $(now_ms) - $1 )) 'BEGIN { printf "%.3f", d / 1000 }'; }
