#!/usr/bin/env bash
# Dual primary (allow-two-primaries): both nodes Primary, two fio jobs at
# once for 20 s, one per node's export, random 4 KiB writes over the same
# first 16 MiB, alpha's all 0xAA, beta's all 0x55.  Then down both: the
# backing files must be identical, and every 4 KiB block of the first
# 16 MiB must be entirely 0xAA, entirely 0x55 or entirely zero (no torn or
# interleaved block), with both patterns present (check_block_patterns.py).
# Separately, without allow-two-primaries, `primary` on the second node
# must fail with a message naming allow-two-primaries.
source "$(dirname "$0")/lib.sh"

require_tool fio nbdinfo cmp python3
fio --enghelp=nbd >/dev/null 2>&1 || skip "this fio has no nbd ioengine"
CHECKER="$TESTS_DIR/check_block_patterns.py"
run_logged checker-self-test python3 "$CHECKER" --self-test

# ---- (1) both Primary, concurrent writers --------------------------------------
start_two_nodes t0 64M --net "allow-two-primaries;"
initial_sync
promote beta
expect_state alpha role=Primary conn=Connected peer-role=Primary
expect_state beta role=Primary conn=Connected peer-role=Primary disk=UpToDate
pass "allow-two-primaries: alpha and beta both Primary, Connected"
checkpoint dual-primary

RUNTIME=${REPD_TEST_DUAL_RUNTIME:-20}
FIO_OPTS=(--rw=randwrite --bs=4k --size=16M --offset=0 --iodepth=8 --norandommap
          --randrepeat=0 --time_based --runtime="$RUNTIME" --verify=0 --scramble_buffers=0)
fio_start writer-alpha $((RUNTIME + 60)) "$ALPHA_URI" "${FIO_OPTS[@]}" --buffer_pattern=0xAAAAAAAA
fio_start writer-beta $((RUNTIME + 60)) "$BETA_URI" "${FIO_OPTS[@]}" --buffer_pattern=0x55555555
rc_a=0 rc_b=0
fio_wait writer-alpha || rc_a=$?
fio_wait writer-beta || rc_b=$?
check_fio writer-alpha "$rc_a"
check_fio writer-beta "$rc_b"
pass "two fio writers ran ${RUNTIME}s at once (alpha 0xAA, beta 0x55) over the same 16 MiB: $(
    sed -n 's/^job \([^:]*\): wrote \([0-9]*\).*/\1 \2 bytes/p' "$T/writer-alpha.check" "$T/writer-beta.check" | paste -sd, -)"

expect_state alpha role=Primary conn=Connected repl=Established peer-disk=UpToDate oos=0
expect_state beta role=Primary conn=Connected repl=Established peer-disk=UpToDate oos=0
pass "after the writers: still Connected, Established, out-of-sync 0 on both"

down_node alpha
down_node beta
if ! cmp "$ALPHA_DISK" "$BETA_DISK" >"$T/cmp.out" 2>&1; then
    show_file "$T/cmp.out" 5 >&2
    python3 "$CHECKER" "$BETA_DISK" >&2 || true
    fail "after down: alpha.img and beta.img differ (concurrent writes resolved differently)"
fi
pass "after down on both: alpha.img and beta.img identical"
python3 "$CHECKER" "$ALPHA_DISK" --length $((16 * 1024 * 1024)) >"$T/blocks.out" 2>&1 || {
    show_file "$T/blocks.out" 20 >&2
    fail "first 16 MiB: not every 4 KiB block is one writer's pattern (or zero)"
}
pass "every 4 KiB block of the first 16 MiB is all 0xAA, all 0x55 or zero; both occur ($(tail -n 1 "$T/blocks.out"))"

# ---- (2) without allow-two-primaries --------------------------------------------
if [ -n "$STANDIN" ]; then
    echo "NOTE: stand-in mode: the refusal of a second Primary is not checked (no repd)" >&2
    exit 0
fi
start_two_nodes t0 64M --tag single
initial_sync
rc=0
repd_node beta primary >"$T/second-primary.out" 2>&1 </dev/null || rc=$?
if [ "$rc" -eq 0 ]; then
    show_file "$T/second-primary.out" 10 >&2
    fail "without allow-two-primaries, 'repd primary' on beta succeeded while alpha is Primary"
fi
grep -q 'allow-two-primaries' "$T/second-primary.out" || {
    show_file "$T/second-primary.out" 10 >&2
    fail "the refusal (exit $rc) does not name allow-two-primaries"
}
expect_state beta role=Secondary conn=Connected
expect_state alpha role=Primary conn=Connected peer-role=Secondary
pass "without allow-two-primaries: 'primary' on beta refused (exit $rc): $(head -n 1 "$T/second-primary.out")"
