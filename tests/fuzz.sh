#!/usr/bin/env bash
# run-all-timeout: 900
# libFuzzer against what hostile clients and peers can send: the NBD negotiation and request
# decoding, and the peer frame decoder, handshake and the engine of a connected Secondary
# (Sources/repd-fuzz). Builds repd-fuzz with `swift build --sanitize=fuzzer` (its own scratch
# path), starts from the valid inputs `repd-fuzz --write-seeds` writes, and runs for
# REPD_FUZZ_SECONDS (default 60). A crash, a trap, a hang or running out of memory is a failure;
# libFuzzer then saves the input as crash-* in the corpus directory, which the failure shows.
source "$(dirname "$0")/lib.sh"

require_tool timeout
top=$(git -C "$TESTS_DIR" rev-parse --show-toplevel 2>/dev/null) || top=$(dirname "$TESTS_DIR")
command -v swift >/dev/null 2>&1 || PATH=/opt/swift/usr/bin:$PATH
require_tool swift
SECONDS_TO_RUN=${REPD_FUZZ_SECONDS:-60}

rc=0
(cd "$top" && exec timeout -k 20 "${REPD_FUZZ_BUILD_TIMEOUT:-900}" nice -n 5 \
    swift build -c release --sanitize=fuzzer --product repd-fuzz --scratch-path "$top/.build-fuzz") \
    >"$T/build.out" 2>&1 </dev/null || rc=$?
[ "$rc" -eq 0 ] || { show_file "$T/build.out" 30 >&2; fail "swift build --sanitize=fuzzer failed (exit $rc)"; }
FUZZ="$top/.build-fuzz/release/repd-fuzz"

mkdir -p "$T/corpus"
# The seeds come from an ordinary build (the fuzzer build's main is libFuzzer's).
(cd "$top" && swift build --product repd-fuzz >"$T/plain-build.out" 2>&1) || { show_file "$T/plain-build.out" 20 >&2; fail "swift build --product repd-fuzz failed"; }
run_logged seeds "$top/.build/debug/repd-fuzz" --write-seeds "$T/corpus"
run_logged mutation "$top/.build/debug/repd-fuzz" --runs 3000 --seed "$$"

rc=0
(cd "$T/corpus" && timeout -k 10 $((SECONDS_TO_RUN + 60)) "$FUZZ" -max_total_time="$SECONDS_TO_RUN" -rss_limit_mb=2048 \
    -timeout=10 -print_final_stats=1 "$T/corpus") >"$T/fuzz.out" 2>&1 </dev/null || rc=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$T/fuzz.out")
if [ "$rc" -ne 0 ] || ls "$T/corpus"/crash-* "$T/corpus"/timeout-* "$T/corpus"/oom-* >/dev/null 2>&1; then
    grep -E "ERROR|Fatal|SUMMARY|==[0-9]+==" "$T/fuzz.out" | head -20 >&2
    show_file "$T/fuzz.out" 40 >&2
    for f in "$T/corpus"/crash-* "$T/corpus"/timeout-*; do [ -e "$f" ] && { echo "    input $f:"; od -A d -t x1 "$f" | head -20; } >&2; done
    fail "the fuzzer found a crash or a hang (exit $rc) after ${runs:-?} inputs"
fi
[ -n "$runs" ] && [ "$runs" -gt 1000 ] || { show_file "$T/fuzz.out" 20 >&2; fail "the fuzzer ran only ${runs:-no} inputs"; }
pass "libFuzzer: $runs inputs in ${SECONDS_TO_RUN} s over NBD negotiation and requests, peer frames, handshake and engine; no crash"
