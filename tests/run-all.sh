#!/usr/bin/env bash
# Run every integration test script in tests/ (every *.sh except lib.sh, the
# certificate maker make-test-pki.sh and
# this file), each under `timeout 600` (REPD_TEST_TIMEOUT), or the number of
# seconds a script asks for in a `# run-all-timeout: N` line among its first
# five lines (two-node-gfs2.sh boots VMs).  One line per test; a failing
# test's output follows its line.  The last line is exactly
#     N passed, N failed, N skipped
# and the exit status is non-zero if anything failed (a timeout counts as
# a failure).
#
#   tests/run-all.sh [NAME...]     # optional subset, e.g. nbdinfo fio
#
# REPD_TEST_STANDIN=nbdkit runs the suite against nbdkit instead of repd:
# a self-check of the test scripts, NOT a test of repd (see lib.sh).
# REPD_SKIP_VM=1 skips the VM test (two-node-gfs2).
set -uo pipefail

TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF=$(basename "${BASH_SOURCE[0]}")
PER_TEST_TIMEOUT=${REPD_TEST_TIMEOUT:-600}

if [ "${REPD_TEST_STANDIN:-}" = nbdkit ]; then
    echo "NOTE: REPD_TEST_STANDIN=nbdkit: testing the test suite against nbdkit, not repd"
fi

tests=()
if [ "$#" -gt 0 ]; then
    for n in "$@"; do
        n=${n%.sh}
        [ -f "$TESTS_DIR/$n.sh" ] || { echo "run-all: no such test: $n" >&2; exit 2; }
        tests+=("$TESTS_DIR/$n.sh")
    done
else
    for f in "$TESTS_DIR"/*.sh; do
        case "$(basename "$f")" in
            lib.sh|make-test-pki.sh|"$SELF") continue ;;
        esac
        tests+=("$f")
    done
fi

logdir=$(mktemp -d /tmp/repd-run-all.XXXXXX)
trap 'rm -rf "$logdir"' EXIT

passed=0 failed=0 skipped=0
for f in "${tests[@]}"; do
    name=$(basename "$f" .sh)
    log="$logdir/$name.log"
    start=$SECONDS
    tmo=$(head -n 5 "$f" | sed -n 's/^# run-all-timeout: *\([0-9][0-9]*\) *$/\1/p' | head -n 1)
    tmo=${tmo:-$PER_TEST_TIMEOUT}
    # -k: if the test ignores TERM (stuck in its cleanup), KILL it 60s later.
    timeout -k 60 "$tmo" bash "$f" >"$log" 2>&1 </dev/null
    rc=$?
    secs=$((SECONDS - start))
    case "$rc" in
        0)   passed=$((passed + 1));  printf 'PASS  %-22s (%ss)\n' "$name" "$secs" ;;
        77)  skipped=$((skipped + 1)); printf 'SKIP  %-22s %s\n' "$name" \
                 "$(grep -m1 '^SKIP:' "$log" | sed 's/^SKIP: [^:]*: //')" ;;
        124|137)
             failed=$((failed + 1));  printf 'FAIL  %-22s (timed out after %ss)\n' "$name" "$tmo"
             sed 's/^/      /' "$log" ;;
        *)   failed=$((failed + 1));  printf 'FAIL  %-22s (exit %s, %ss)\n' "$name" "$rc" "$secs"
             sed 's/^/      /' "$log" ;;
    esac
done

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
