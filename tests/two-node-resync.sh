#!/usr/bin/env bash
# Metadata-driven resync on a 1 GiB two-node resource (issue 4):
#  1. bitmap: beta goes down, 4096 distinct scattered 4 KiB blocks (16 MiB)
#     are written on alpha, beta comes back: the resync moves no more than
#     1.1x those bytes (status counters and the resync log line), finishes,
#     and both backing files are identical;
#  2. online verify: blocks changed behind repd's back on beta's backing
#     file while it was down are found by `repd verify` (listed in the log,
#     counted out of sync), repaired by `invalidate-remote --reset-bitmap=no`
#     (only those blocks move), then `invalidate` (full) on beta also ends
#     identical; csums-alg makes that full resync send (almost) nothing;
#  3. pause-sync / resume-sync hold and release a running resync.
# run-all-timeout: 900
source "$(dirname "$0")/lib.sh"

require_tool nbdinfo python3 cmp
require_python_nbd
[ -z "$STANDIN" ] || skip "resync counters need repd"

BLOCKS=4096
# No rate limit worth the name, so that the test is quick; csums on for part 2.
export TWO_NODE_DISK="c-max-rate 4G; c-fill-target 16M; c-min-rate 0;"
start_two_nodes r0 1G --net "csums-alg crc32c; verify-alg crc32c;"
initial_sync
pass "initial sync of 1 GiB done"

kib_sent()     { repd_node "$1" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["connections"][0]["peer_devices"][0]["sent"])'; }
kib_received() { repd_node "$1" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["connections"][0]["peer_devices"][0]["received"])'; }
data_identical() {  # both nodes down: compare the backing files
    cmp "$ALPHA_DISK" "$BETA_DISK" >"$T/cmp.out" 2>&1
}
resync_line() {  # HANDLE OFFSET: the last "resync finished" line since OFFSET
    node_log_since "$1" "$2" | grep 'resync finished' | tail -1
}

# ---- 1. bitmap-based resync --------------------------------------------------
down_node beta
"$PY_NBD" - "$ALPHA_URI" "$BLOCKS" <<'EOF' || fail "writing scattered blocks on alpha"
import nbd, sys, random
uri, n = sys.argv[1], int(sys.argv[2])
h = nbd.NBD(); h.connect_uri(uri)
size = h.get_size()
rnd = random.Random(42)
blocks = rnd.sample(range(size // 4096), n)   # distinct, scattered
for b in blocks:
    h.pwrite(bytes([b % 251 + 1]) * 4096, b * 4096)
h.flush(); h.shutdown()
EOF
oos=$(node_value alpha oos)
[ "$oos" = $((BLOCKS * 4)) ] || fail "alpha marks $oos KiB out of sync after $BLOCKS distinct blocks, expected $((BLOCKS * 4))"
pass "alpha tracks exactly $BLOCKS blocks ($oos KiB) out of sync while beta is away"

sent0=$(kib_sent alpha)
off=$(node_log_size alpha)
node_up beta
wait_until "resync finished" 120 0.2 node_is beta disk=UpToDate repl=Established peer-disk=UpToDate ||
    { _show_states alpha beta; fail "the resync did not finish within 120 s"; }
wait_state 30 alpha repl=Established peer-disk=UpToDate oos=0
sent=$(( $(kib_sent alpha) - sent0 ))
dirty=$((BLOCKS * 4))
line=$(resync_line alpha "$off")
echo "    alpha: $line"
[ "$sent" -le $((dirty * 11 / 10)) ] || fail "the resync sent $sent KiB for $dirty KiB of changed blocks (more than 1.1x)"
[ "$sent" -ge "$dirty" ] || fail "the resync sent only $sent KiB, but $dirty KiB changed"
pass "resync moved $sent KiB for $dirty KiB changed ($(python3 -c "print(round($sent/$dirty, 3))")x)"

# ---- 3. pause and resume (while we have a pair up) -----------------------------
down_node beta
"$PY_NBD" - "$ALPHA_URI" <<'EOF' || fail "writing 256 MiB on alpha"
import nbd, sys
h = nbd.NBD(); h.connect_uri(sys.argv[1])
buf = b"\x5a" * (1 << 20)
for i in range(256):
    h.pwrite(buf, i << 20)
h.flush(); h.shutdown()
EOF
run_logged pause-alpha repd_node alpha pause-sync
node_up beta
wait_state 30 beta conn=Connected
wait_state 30 alpha repl=PausedSyncS
wait_state 30 beta repl=PausedSyncT
o1=$(node_value alpha oos); sleep 2; o2=$(node_value alpha oos)
[ "$o1" = "$o2" ] && [ "$o1" -gt 0 ] || fail "out-of-sync moved while paused ($o1 -> $o2 KiB)"
pass "pause-sync holds the resync ($o1 KiB out of sync, PausedSyncS/PausedSyncT)"
run_logged resume-alpha repd_node alpha resume-sync
wait_until "resync after resume" 120 0.2 node_is alpha repl=Established oos=0 ||
    { _show_states alpha beta; fail "the resync did not finish after resume-sync"; }
wait_state 30 beta disk=UpToDate
pass "resume-sync: the resync finished"

# ---- 2. verify and repair --------------------------------------------------------
down_node beta
# Behind repd's back: change 37 blocks of beta's backing file.
python3 - "$BETA_DISK" <<'EOF' || fail "corrupting beta's backing file"
import sys, random
rnd = random.Random(7)
with open(sys.argv[1], "r+b") as f:
    for b in sorted(rnd.sample(range(262144), 37)):
        f.seek(b * 4096); f.write(b"\xee" * 4096)
EOF
node_up beta
wait_state 60 beta conn=Connected disk=UpToDate repl=Established
wait_state 30 alpha repl=Established oos=0
off=$(node_log_size alpha)
run_logged verify-alpha repd_node alpha verify
wait_until "verify finished" 300 0.5 node_is alpha repl=Established ||
    { _show_states alpha beta; fail "verify did not finish within 300 s"; }
found=$(node_value alpha oos)
[ "$found" = $((37 * 4)) ] || { node_log_since alpha "$off" | tail -5 >&2; fail "verify marked $found KiB out of sync, expected $((37 * 4))"; }
listed=$(node_log_since alpha "$off" | grep -c 'verify: out of sync' || true)
[ "$listed" -ge 1 ] || fail "verify listed no out-of-sync range in alpha's log"
pass "verify found the 37 changed blocks ($found KiB; $listed ranges listed in the log)"

sent0=$(kib_sent alpha)
run_logged invalidate-remote repd_node alpha invalidate-remote --reset-bitmap=no
wait_until "repair resync" 120 0.2 node_is alpha repl=Established peer-disk=UpToDate oos=0 ||
    { _show_states alpha beta; fail "invalidate-remote did not finish"; }
wait_state 30 beta disk=UpToDate repl=Established
sent=$(( $(kib_sent alpha) - sent0 ))
[ "$sent" -le $((37 * 4 * 2)) ] || fail "invalidate-remote --reset-bitmap=no sent $sent KiB for 148 KiB out of sync"
pass "invalidate-remote --reset-bitmap=no repaired with $sent KiB sent"

# A full invalidate on beta: with csums-alg every block matches, so (almost) nothing is sent.
sent0=$(kib_sent alpha)
off=$(node_log_size alpha)
run_logged invalidate-beta repd_node beta invalidate
wait_until "full resync after invalidate" 300 0.5 node_is beta disk=UpToDate repl=Established ||
    { _show_states alpha beta; fail "invalidate on beta did not finish"; }
wait_state 30 alpha repl=Established peer-disk=UpToDate
sent=$(( $(kib_sent alpha) - sent0 ))
echo "    alpha: $(resync_line alpha "$off")"
[ "$sent" -le 1024 ] || fail "a full resync of identical data with csums-alg sent $sent KiB"
pass "invalidate (full) with csums-alg crc32c: $sent KiB sent for 1 GiB compared"

down_node beta
down_node alpha
data_identical || { show_file "$T/cmp.out" 5 >&2; fail "the backing files differ at the end"; }
pass "alpha's and beta's backing files are identical"
