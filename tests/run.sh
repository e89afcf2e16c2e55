#!/usr/bin/env bash
# run.sh - runs every test and prints the total as the last line: "N passed, M failed".
#
# Each test program (C binaries in build/tests, tests/neon.sh for the arm64 kernels, Python
# scripts tests/test_*.py run with /usr/bin/python3) prints "name: N passed, M failed" as its last
# line; this script adds them up.  A program that exits non-zero without reporting a failure (a
# crash) counts as one failure.  Exits non-zero if anything failed.
set -u
cd "$(dirname "$0")/.."
export SEEK_FIXTURES="${SEEK_FIXTURES:-$(cd .. && pwd)/shared/fixtures/gguf}"
PY=/usr/bin/python3
total_pass=0
total_fail=0
failed_names=()

run_one() { # name, command...
    local name=$1; shift
    local log; log=$(mktemp)
    local start=$SECONDS
    "$@" >"$log" 2>&1
    local rc=$?
    local line; line=$(grep -E '^[A-Za-z0-9_./-]+: [0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    local p=0 f=0
    if [ -n "$line" ]; then
        p=$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")
        f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
    fi
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
    if [ "$f" -ne 0 ]; then
        failed_names+=("$name")
        echo "---- $name (exit $rc) ----"; tail -n 40 "$log"
    fi
    printf '%-28s %5d passed %4d failed  %4ds\n' "$name" "$p" "$f" $((SECONDS - start))
    rm -f "$log"
}

for t in build/tests/test_*; do
    [ -x "$t" ] && run_one "$(basename "$t")" "$t"
done
[ -x build/tests/fuzz_gguf ] && run_one fuzz_gguf build/tests/fuzz_gguf 300
# the NEON kernels: cross-built for arm64 and run under qemu-aarch64 (prints "skipped" and counts
# nothing when the cross tools are missing)
run_one neon tests/neon.sh
for t in tests/test_*.py; do
    [ -f "$t" ] && run_one "$(basename "$t" .py)" "$PY" "$t"
done
if [ "${SEEK_TEST_ASAN:-1}" = 1 ]; then
    run_one asan make --no-print-directory -s asan
fi

[ ${#failed_names[@]} -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
