#!/usr/bin/env bash
# run-all-timeout: 2400
# A repd crash under a mounted file system, in a guest of ../shared/vm with
# the kernel's nbd driver (tests/guest/repd-crash.sh): kill -9 of the daemon
# while ext4 is mounted on /dev/drbd1 and a writer runs; the writes wait in
# the kernel (dead-connection timeout); `repd up` + `repd primary` take the
# same /dev/nbd1 over (NBD_CMD_RECONFIGURE): the writer finishes, the files
# written before, during and after read back, ext4 was never remounted
# read-only, e2fsck is clean.  Then a killed daemon whose device nobody
# uses: `repd down` of the dead resource removes its links and disconnects
# its nbd device.  Last, `repd resize` grows a device in place through the
# driver (NBD_CMD_RECONFIGURE with the size).  REPD_SKIP_VM=1 skips it; see guests-gfs2.sh for the
# static binary and the harness.
source "$(dirname "$0")/lib.sh"

[ -z "$STANDIN" ] || skip "stand-in mode: here repd itself runs inside the guest"
require_root
require_tool timeout setsid truncate
vm_harness
guest_repd_files
VM_TIMEOUT=${REPD_VM_TIMEOUT:-300}
truncate -s 256M "$T/node1.img"
checkpoint vm-ready
REPD_VM_WORKDIR=$WORKDIR setsid timeout -k 20 $((VM_TIMEOUT + 60)) bash "$VMDIR/run-guest.sh" \
    -s "$TESTS_DIR/guest/repd-crash.sh" -q -c 2 -m 1024 -t "$VM_TIMEOUT" "${GUEST_FILES[@]}" \
    -e GUEST_HOSTNAME=node1 -l "$T/node1.log" -- -drive "file=$T/node1.img,format=raw,if=virtio,cache=writeback" \
    >"$T/node1.out" 2>&1 </dev/null 8>&- 9>&- &
SID=$!
add_session "$SID"
G0=$SECONDS
rc=0
wait "$SID" || rc=$?
kill_session "$SID"
grep -aE '^(PASS|FAIL|INFO|TIME|    )' "$T/node1.log" | tr -d '\r' >"$T/summary" || true
if [ "$rc" -ne 0 ] || ! grep -q '^PASS: all steps' "$T/summary"; then
    show_file "$T/summary" 60 >&2
    show_file "$T/node1.out" 10 >&2
    [ "$rc" -ne 124 ] || fail "the guest did not finish within ${VM_TIMEOUT}s"
    fail "the crash scenario failed in the guest (exit $rc)"
fi
pass "kill -9 under a mounted ext4: up + primary took /dev/nbd1 over, queued writes completed, files intact, fsck clean; down of a dead resource cleaned up; resize grew /dev/drbd2 64 -> 128 MiB in place ($(grep -c '^PASS' "$T/summary") guest checks, guest $(sed -n 's/^TIME: total //p' "$T/summary"), wall $((SECONDS - G0))s)"
