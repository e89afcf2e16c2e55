#!/usr/bin/env bash
# neon.sh - the NEON kernels (src/kern/*_neon.c) against the scalar reference, on any machine:
# cross-builds the kernel tests for arm64 and runs them under qemu-aarch64 (natively on an arm64
# host).
#
#   tests/neon.sh                    build into build-neon-cross/ and run test_kern and test_actq
#   SEEK_NEON_BUILD=dir              build folder instead of build-neon-cross/
#   SEEK_NEON_TESTS="test_kern ..."  the tests to run (any of test_kern test_actq test_quants;
#                                    test_quants checks the scalar reference on arm64, ~1 min)
#   SEEK_NEON_CC=compiler            the arm64 C compiler (default aarch64-linux-gnu-gcc, or cc on
#                                    an arm64 host)
#
# The kernel tests link only src/base, src/gguf and src/kern (make kern-tests), statically, so no
# arm64 libraries beyond libc are needed.  Each test's output is printed as it comes, then the
# total as the last line, "neon: N passed, M failed", which tests/run.sh adds to its own.  Exits
# 0 with "neon: skipped: ..." only when the compiler, its C library or qemu-aarch64 is missing
# (Debian: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user); non-zero when
# the build fails or any test fails or crashes.
set -u
cd "$(dirname "$0")/.."
build_dir=${SEEK_NEON_BUILD:-build-neon-cross}
tests=${SEEK_NEON_TESTS:-test_kern test_actq}
install_hint="Debian: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user"

if [ "$(uname -m)" = aarch64 ]; then
    cc=${SEEK_NEON_CC:-cc}
    run=()
else
    cc=${SEEK_NEON_CC:-aarch64-linux-gnu-gcc}
    run=(qemu-aarch64)
fi
skip() { echo "neon: skipped: $*"; exit 0; }
command -v "$cc" >/dev/null || skip "no aarch64 cross compiler ($cc; $install_hint)"
[ ${#run[@]} -eq 0 ] || command -v "${run[0]}" >/dev/null || skip "no qemu-aarch64 ($install_hint)"
case "$("$cc" -dumpmachine)" in
    aarch64-*) ;;
    *) echo "neon: $cc does not target aarch64 ($("$cc" -dumpmachine)); set SEEK_NEON_CC to an arm64 compiler"
       echo "neon: 0 passed, 1 failed"
       exit 2 ;;
esac
libc=$("$cc" -print-file-name=libc.a)
[ -f "$libc" ] || skip "no static C library for $cc ($install_hint)"
ar=${cc%gcc}ar
command -v "$ar" >/dev/null || ar=ar

start=$SECONDS
targets=()
for t in $tests; do targets+=("$build_dir/kern-tests/$t"); done
if ! make --no-print-directory -s CC="$cc" AR="$ar" BUILD="$build_dir" LDFLAGS=-static \
        -j"$(nproc 2>/dev/null || echo 2)" "${targets[@]}"; then
    echo "neon: cross build failed"
    echo "neon: 0 passed, 1 failed"
    exit 1
fi
echo "neon: built ${tests// /, } for $("$cc" -dumpmachine) in $((SECONDS - start))s"

total_pass=0
total_fail=0
for t in $tests; do
    log=$(mktemp)
    t0=$SECONDS
    "${run[@]}" "$build_dir/kern-tests/$t" >"$log" 2>&1
    rc=$?
    cat "$log"
    line=$(grep -E "^$t: [0-9]+ passed, [0-9]+ failed" "$log" | tail -n 1)
    p=0 f=0
    if [ -n "$line" ]; then
        p=$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")
        f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
    fi
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "neon: $t exited with status $rc without reporting a failure: counted as one"
        f=1
    fi
    echo "neon: $t under ${run[*]:-native}: $p passed, $f failed, $((SECONDS - t0))s"
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    rm -f "$log"
done
echo "neon: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
