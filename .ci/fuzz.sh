#!/usr/bin/env bash
# Bounded fuzzing run for CI: every cargo-fuzz target in tests/fuzz for
# ${FUZZ_SECONDS:-60} seconds each, seeded from proto-fixtures. Fails on
# any crash, panic, oracle mismatch, leak, OOM or timeout; the failing
# input is left in tests/fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${FUZZ_SECONDS:-60}
targets=(${FUZZ_TARGETS:-decode_message decode_stream mrt fsm config})

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: installing the nightly toolchain"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

tests/fuzz/seed-corpus.sh
cargo +nightly fuzz build --fuzz-dir tests/fuzz

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
status=0
for t in "${targets[@]}"; do
    echo "== fuzz $t for ${secs}s"
    if cargo +nightly fuzz run --fuzz-dir tests/fuzz "$t" -- \
        -max_total_time="$secs" -max_len=65536 -timeout=10 -print_final_stats=1 \
        >"$logs/$t.log" 2>&1; then
        grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added)' "$logs/$t.log" || true
    else
        status=1
        echo "fuzz: $t FAILED; last lines of its log:" >&2
        tail -n 60 "$logs/$t.log" >&2
        ls tests/fuzz/artifacts/"$t"/ >&2 2>/dev/null || true
    fi
done
exit $status
