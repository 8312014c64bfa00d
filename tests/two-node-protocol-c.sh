#!/usr/bin/env bash
# Protocol C: a write is acknowledged only once it is on the peer's disk.
# Three rounds, each on a fresh pair at a different offset: write 4 MiB of
# a distinctive pattern through alpha's export with libnbd (one acknowledged
# WRITE, no FUA, no flush), then at once kill -9 both daemons (beta first,
# in the same instant), then the pattern must be in beta.img at that offset.
# (The killed daemon's writes sit in the page cache, which survives
# kill -9: reading the file sees them.  Without protocol C, alpha could ack
# before beta has pwritten the data, and beta.img would lack it.)
source "$(dirname "$0")/lib.sh"

require_tool nbdinfo cmp
require_python_nbd

LEN=$((4 * 1024 * 1024))
SIZE=64M
# 4 KiB-aligned at the start, 512-aligned in the middle, the last 4 MiB.
OFFSETS=(0 $((40 * 1024 * 1024 + 512)) $(($(to_bytes "$SIZE") - LEN)))

# argv: URI PATTERN_FILE OFFSET BETA_PID ALPHA_PID
WRITE_AND_KILL='
import os, signal, sys, time
import nbd
uri, pat, off, bpid, apid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
buf = open(pat, "rb").read()
h = nbd.NBD()
h.connect_uri(uri)
h.pwrite(buf, off)                  # returns once the server acknowledged the write
t_ack = time.monotonic()
os.kill(bpid, signal.SIGKILL)       # the peer first, then the primary, in the same instant
os.kill(apid, signal.SIGKILL)
print("acknowledged %d bytes at %d; both daemons killed %.0f us after the ack"
      % (len(buf), off, (time.monotonic() - t_ack) * 1e6))
'

round=0
for off in "${OFFSETS[@]}"; do
    round=$((round + 1))
    start_two_nodes t0 "$SIZE" --tag "r$round"
    initial_sync
    expect_state alpha role=Primary conn=Connected proto=C repl=Established peer-disk=UpToDate
    checkpoint "synced-r$round"

    pat="$T/pattern-r$round.bin"
    # Distinctive: a header naming the round and offset, then random bytes.
    { printf 'repd protocol C round %d offset %d ' "$round" "$off"; head -c "$LEN" /dev/urandom; } |
        head -c "$LEN" >"$pat"
    apid=$(node_pid alpha) bpid=$(node_pid beta)
    run_logged "write-kill-r$round" timeout 120 "$PY_NBD" -c "$WRITE_AND_KILL" \
        "$ALPHA_URI" "$pat" "$off" "$bpid" "$apid"
    for p in "$bpid" "$apid"; do
        wait_for "pid $p to die" 100 0.1 pid_dead "$p" || fail "round $round: pid $p survived kill -9"
    done
    cmp -s -n "$LEN" -i "0:$off" "$pat" "$ALPHA_DISK" ||
        fail "round $round: the acknowledged pattern is not even in alpha.img at offset $off"
    if ! cmp -n "$LEN" -i "0:$off" "$pat" "$BETA_DISK" >"$T/cmp-r$round.out" 2>&1; then
        show_file "$T/cmp-r$round.out" 5 >&2
        fail "round $round: acknowledged 4 MiB at offset $off is NOT in beta.img after kill -9 of both (not protocol C)"
    fi
    pass "round $round: 4 MiB acknowledged at offset $off was in beta.img after kill -9 of both daemons"
done
