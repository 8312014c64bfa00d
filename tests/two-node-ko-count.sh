#!/usr/bin/env bash
# ko-count (issue 18, part 5): a Secondary whose daemon answers but whose disk
# hangs (nbdkit's pause filter under beta's disk) cannot stall the Primary:
#  - with `timeout 10; ko-count 3;` (1 s), alpha counts a strike per timeout
#    and pings beta, which answers: not dropped at the first timeout;
#  - at the third strike alpha drops the connection and goes StandAlone (as
#    DRBD does: reconnecting would stall the writes again), names ko-count in
#    its log, and its writes go on without the peer;
#  - once beta's disk answers again the pair reconnects, resyncs, and the
#    replicas are identical byte for byte.
# run-all-timeout: 240
source "$(dirname "$0")/lib.sh"

[ -z "$STANDIN" ] || skip "needs repd"
require_root
require_python_nbd
require_tool cmp
SIZE=64M
faulty_disk beta "$SIZE"
export TWO_NODE_BETA_DISK=${FAULTY_DEV[beta]}
# lib.sh's defaults with timeout 1 s (not 3 s) and ko-count 3.
TWO_NODE_NET_DEFAULT=${TWO_NODE_NET_DEFAULT/timeout 30;/timeout 10; ko-count 3;}
start_two_nodes r0 "$SIZE"
initial_sync

# A writer on alpha: a 4 KiB FUA write every 20 ms for 12 s, each write's completion time logged.
"$PY_NBD" - "$ALPHA_URI" "$T/writes.log" <<'EOF' >"$T/writer.out" 2>&1 &
import nbd, os, sys, time
h = nbd.NBD()
h.connect_uri(sys.argv[1])
log = open(sys.argv[2], "w", buffering=1)
end = time.time() + 12
i = 0
while time.time() < end:
    # FUA: the write is durable on both disks before it completes, so beta's hung disk holds it
    # (a plain write would sit in beta's page cache).
    h.pwrite(os.urandom(4096), (i % 8192) * 4096, nbd.CMD_FLAG_FUA)
    log.write(f"{time.time():.3f}\n")
    i += 1
    time.sleep(0.02)
h.flush()
h.shutdown()
EOF
WRITER=$!
add_bg_pid "$WRITER"
sleep 1
log_at=$(node_log_size alpha)
disk_pause beta
paused=$(date +%s.%N)
connected() { [ "$(repd_node alpha cstate 2>/dev/null </dev/null)" = Connected ]; }
while connected; do
    awk -v p="$paused" 'BEGIN { exit !(systime() - p < 15) }' || fail "alpha still Connected 15 s after beta's disk hung"
    sleep 0.1
done
dropped=$(date +%s.%N)
took=$(awk -v a="$paused" -v b="$dropped" 'BEGIN { printf "%.1f", b - a }')
node_log_since alpha "$log_at" >"$T/alpha-ko.log"
grep -q "strike 1 of ko-count 3; pinging it" "$T/alpha-ko.log" && grep -q "strike 2 of ko-count 3; pinging it" "$T/alpha-ko.log" ||
    { cat "$T/alpha-ko.log" >&2; fail "alpha did not count strikes 1 and 2 of ko-count 3"; }
grep -q "did not acknowledge a write within ko-count 3 × timeout 1.0 s .*: StandAlone until" "$T/alpha-ko.log" ||
    { cat "$T/alpha-ko.log" >&2; fail "alpha's log does not say the peer was dropped for ko-count"; }
awk -v t="$took" 'BEGIN { exit !(t >= 2.0 && t <= 6.0) }' || fail "dropped ${took}s after the hang; expected about 3 s (2 s at least: beta answers pings)"
wait "$WRITER" || { cat "$T/writer.out" >&2; fail "the writer on alpha failed"; }
after=$(awk -v d="$dropped" '$1 > d + 0.5' "$T/writes.log" | wc -l)
[ "$after" -gt 20 ] || fail "only $after writes completed on alpha after it dropped beta"
pass "beta's disk hung: strikes 1 and 2 pinged beta, dropped after ${took}s at ko-count 3 × 1 s; alpha completed $after writes after that"

[ "$(repd_node alpha cstate 2>/dev/null </dev/null)" = StandAlone ] || fail "alpha is not StandAlone after the ko-count drop (it would stall again on every reconnect)"
disk_resume beta
run_logged connect repd_node alpha connect
run_logged wait-sync2 repd_node alpha wait-sync --timeout 90
run_logged down-alpha repd_node alpha down
run_logged down-beta repd_node beta down
cmp -n "$(to_bytes "$SIZE")" "$ALPHA_DISK" "${FAULTY_RAW[beta]}" || fail "replicas differ after the resync"
pass "alpha stayed StandAlone; beta's disk back, repd connect: reconnected, resynced, replicas identical"
