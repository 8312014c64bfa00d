#!/usr/bin/env bash
# Crashes and resync under load on a 1 GiB two-node resource (issue 4):
#  1. kill -9 of the Primary during a fio verify workload confined to 64 MiB:
#     after restart its activity log marks the hot extents out of sync, the
#     reconnect resyncs only those (never the whole disk), replicas identical;
#  2. kill -9 of the Secondary during the same workload: fio completes with
#     no verify error, the Secondary comes back and receives only what it
#     missed, replicas identical;
#  3. resync-rate 10M (fixed rate): a fio verify workload runs on the Primary
#     throughout a resync, completes without a single verify error, the
#     resync finishes, and its measured rate is printed (and must not exceed
#     the limit by more than half: the limiter limits).
# run-all-timeout: 900
source "$(dirname "$0")/lib.sh"

require_tool fio nbdinfo python3 cmp
fio --enghelp=nbd >/dev/null 2>&1 || skip "this fio has no nbd ioengine"
require_python_nbd
[ -z "$STANDIN" ] || skip "needs repd"

MIB=$((1 << 20))
REGION_OFF=256M
REGION_SIZE=64M

kib_sent() { repd_node "$1" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["connections"][0]["peer_devices"][0]["sent"])'; }
both_down_identical() {  # CONTEXT
    down_node beta
    down_node alpha
    cmp "$ALPHA_DISK" "$BETA_DISK" >"$T/cmp.out" 2>&1 || { show_file "$T/cmp.out" 5 >&2; fail "$1: the backing files differ"; }
    pass "$1: alpha's and beta's backing files are identical"
}
fio_verify_job() {  # NAME URI RUNTIME
    fio_start "$1" $(($3 + 120)) "$2" --rw=randwrite --bs=4k --offset=$REGION_OFF --size=$REGION_SIZE \
        --iodepth=16 --time_based --runtime="$3" --verify=crc32c --do_verify=1 --verify_backlog=64 \
        --verify_fatal=1 --verify_state_save=0
}
fresh_pair() {  # TAG: up, no initial sync needed (both disks empty)
    start_two_nodes r0 1G --tag "$1"
    run_logged "new-uuid-$1" repd_node alpha new-current-uuid --clear-bitmap
    wait_state 30 beta disk=UpToDate repl=Established
    wait_state 30 alpha disk=UpToDate repl=Established peer-disk=UpToDate
    promote alpha
}

# ---- 1. kill -9 of the Primary --------------------------------------------------
export TWO_NODE_DISK="c-max-rate 4G; c-fill-target 16M; c-min-rate 0;"
fresh_pair kp
pass "new-current-uuid --clear-bitmap: both UpToDate without an initial sync"
fio_verify_job crash-primary "$ALPHA_URI" 30
sleep 4
pid_alive "$FIO_PID" || { show_file "$T/crash-primary.out" 20 >&2; fail "fio ended early"; }
signal_nodes KILL alpha
fio_wait crash-primary || true     # its server died under it: errors expected
wait_state 30 beta conn!=Connected
expect_state beta role=Secondary disk=UpToDate
off=$(node_log_size alpha)
node_up alpha
recovered=$(node_log_since alpha "$off" | grep -o 'activity log holds [0-9]* extents' | grep -o '[0-9]*' || true)
[ -n "$recovered" ] || { node_log_since alpha "$off" | head -20 >&2; fail "alpha's log says nothing of its activity log after kill -9"; }
[ "$recovered" -ge 1 ] && [ "$recovered" -le 20 ] ||
    fail "alpha's activity log holds $recovered extents; the workload touched 16 (64 MiB)"
wait_until "alpha and beta in sync" 120 0.2 node_is alpha conn=Connected repl=Established oos=0 peer-disk=UpToDate ||
    { _show_states alpha beta; fail "no resync after restarting the killed Primary"; }
wait_state 30 beta disk=UpToDate repl=Established
line=$(node_log_since alpha "$off" | grep 'resync finished' | tail -1)
blocks=$(grep -o 'SyncSource: [0-9]* blocks' <<<"$line" | grep -o '[0-9]*' || echo "")
echo "    alpha: $(grep -o 'sync decision.*' <(node_log_since alpha "$off") | head -1 | cut -c1-160)"
echo "    alpha: $line"
[ -n "$blocks" ] || fail "alpha (crashed Primary) did not resync as SyncSource: $line"
[ "$blocks" -le $((recovered * 1024)) ] || fail "resync of $blocks blocks exceeds the $recovered activity-log extents"
pass "killed Primary: activity log of $recovered extents; resync of $blocks blocks ($((blocks * 4 / 1024)) MiB of 1024)"
both_down_identical "kill -9 Primary"

# ---- 2. kill -9 of the Secondary --------------------------------------------------
fresh_pair ks
fio_verify_job crash-secondary "$ALPHA_URI" 12
sleep 3
signal_nodes KILL beta
rc=0; fio_wait crash-secondary || rc=$?
check_fio crash-secondary "$rc"
pass "fio verify on alpha completed without error across the loss of beta"
oos=$(node_value alpha oos)
sent0=$(kib_sent alpha)
node_up beta
wait_until "beta back in sync" 120 0.2 node_is beta disk=UpToDate repl=Established ||
    { _show_states alpha beta; fail "beta did not resync after kill -9"; }
wait_state 30 alpha repl=Established oos=0
sent=$(( $(kib_sent alpha) - sent0 ))
[ "$sent" -le $((64 * 1024)) ] || fail "the resync to the killed Secondary sent $sent KiB: more than the 64 MiB region written"
pass "killed Secondary: $oos KiB were out of sync, the resync sent $sent KiB"
both_down_identical "kill -9 Secondary"

# ---- 3. fio verify throughout a rate-limited resync ----------------------------------
export TWO_NODE_DISK="c-plan-ahead 0; resync-rate 10M; c-min-rate 0;"
fresh_pair rate
down_node beta
"$PY_NBD" - "$ALPHA_URI" <<'EOF' || fail "writing 96 MiB on alpha"
import nbd, sys
h = nbd.NBD(); h.connect_uri(sys.argv[1])
buf = b"\xa5" * (1 << 20)
for i in range(96):
    h.pwrite(buf, (512 + i) << 20)       # 512 MiB .. 608 MiB: away from the fio region
h.flush(); h.shutdown()
EOF
off=$(node_log_size alpha)
node_up beta
wait_state 30 alpha repl=SyncSource
fio_verify_job during-resync "$ALPHA_URI" 6
t0=$(date +%s)
wait_until "rate-limited resync" 120 0.5 node_is alpha repl=Established oos=0 ||
    { _show_states alpha beta; fail "the 10 MiB/s resync of 96 MiB did not finish within 120 s"; }
rc=0; fio_wait during-resync || rc=$?
check_fio during-resync "$rc"
line=$(node_log_since alpha "$off" | grep 'resync finished' | tail -1)
echo "    alpha: $line"
rate=$(python3 - "$line" <<'EOF'
import re, sys
m = re.search(r"\((\d+) KiB\) in ([\d.]+) s", sys.argv[1])
print("%.1f" % (int(m.group(1)) / 1024 / float(m.group(2))) if m else "?")
EOF
)
[ "$rate" != "?" ] || fail "no resync summary in alpha's log"
python3 -c "import sys; sys.exit(0 if $rate <= 15 else 1)" || fail "resync-rate 10M: measured $rate MiB/s"
pass "fio verify ran through the resync without error; resync-rate 10M measured $rate MiB/s"
wait_state 30 beta disk=UpToDate
both_down_identical "rate-limited resync under load"
