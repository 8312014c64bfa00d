#!/usr/bin/env bash
# run-all-timeout: 900
# A failing disk is not an outage (on-io-error detach / call-local-io-error,
# disk-timeout, detach and attach).  Every backing disk here is a real block
# device that fails for real: /dev/loopN over an nbdfuse file over nbdkit
# with the error filter (every request EIO) and the pause filter (requests
# hang).  Protocol C, fio with crc32c verify through alpha (Primary) in every
# round:
#   primary   - alpha's disk fails mid-run: fio ends without an error, alpha
#               is Primary and Diskless, the local-io-error handler ran, and
#               fio's verify pass over beta's export finds every write there;
#               a read with beta down fails with EIO (no disk anywhere); then
#               the disk is replaced (new file, create-md, attach) under load:
#               a full resync online, replicas identical.
#   secondary - beta's disk fails: alpha goes on, beta is Diskless; after a
#               restart beta comes up Diskless and says why; attach brings it
#               back with a bitmap resync; replicas identical.
#   timeout   - alpha's disk stops answering (pause filter): disk-timeout
#               (3 s) detaches it, I/O goes on through beta; once the disk
#               answers again, attach resyncs it; replicas identical.
source "$(dirname "$0")/lib.sh"

require_root
require_tool fio nbdinfo nbdkit nbdfuse losetup socat cmp
fio_engine_ok() { fio --enghelp=nbd >/dev/null 2>&1; }
fio_engine_ok || missing "this fio has no nbd ioengine"
require_python_nbd

SIZE=128M
VERIFY=(--rw=randwrite --bs=4k --iodepth=16 --verify=crc32c --do_verify=1 --verify_fatal=1 --verify_state_save=0)

# A pair whose backing disks are faulty stacks, reached through links (so a
# disk can be replaced by pointing the link elsewhere, as /dev/disk/by-id does).
faulty_pair() {  # TAG
    local tag=$1
    faulty_disk "alpha-$tag" "$SIZE"
    faulty_disk "beta-$tag" "$SIZE"
    ln -sfn "${FAULTY_DEV[alpha-$tag]}" "$T/alpha-$tag.disk"
    ln -sfn "${FAULTY_DEV[beta-$tag]}" "$T/beta-$tag.disk"
    TWO_NODE_ALPHA_DISK="$T/alpha-$tag.disk" TWO_NODE_BETA_DISK="$T/beta-$tag.disk" \
        TWO_NODE_DISK="on-io-error call-local-io-error; disk-timeout 30; c-max-rate 4G; c-fill-target 16M; c-min-rate 32M;" \
        TWO_NODE_EXTRA="handlers { local-io-error \"echo \$DRBD_RESOURCE: \$REPD_DISK_FAILURE >> $T/local-io-error-$tag.log\"; }" \
        start_two_nodes t0 "$SIZE" --tag "$tag"
    initial_sync
}

last_line() {  # HANDLE PATTERN: the last log line with PATTERN, without the prefix
    grep "$2" "$(node_logfile "$1")" | tail -n 1 | sed 's/.*\(INFO\|WARNING\|ERROR\): //'
}

# The resync after an attach of the same disk: only what it missed (a bitmap resync).
expect_bitmap_resync() {  # CONTEXT HANDLE(the attaching node)
    local decision
    decision=$(last_line "$2" "sync decision")
    [[ $decision == *"(bitmap)"* ]] || fail "$1: the attach of the same disk did not resync from the bitmap: $decision"
    pass "$1: $(last_line "$2" "resync finished" | cut -c1-110) ($(echo "$decision" | cut -d: -f1-2))"
}

status_text() {  # HANDLE
    repd_node "$1" status --verbose 2>&1 </dev/null || true
}

# The data areas of two backing files (external metadata: the whole file).
compare_replicas() {  # CONTEXT FILE_A FILE_B
    cmp "$2" "$3" >"$T/cmp.out" 2>&1 || { show_file "$T/cmp.out" >&2; fail "$1: the replicas differ"; }
    pass "$1: replicas identical ($(stat -c %s "$2") bytes, cmp)"
}

wait_attached() {  # HANDLE SECONDS: attach (retried while the old disk's I/O is out), then UpToDate
    local h=$1 secs=$2 i
    for ((i = 0; i < 30; i++)); do
        repd_node "$h" attach >"$T/attach-$h.out" 2>&1 </dev/null && break
        grep -q "still has requests in flight" "$T/attach-$h.out" || { show_file "$T/attach-$h.out" >&2; fail "attach on $h failed"; }
        sleep 1
    done
    [ "$i" -lt 30 ] || { show_file "$T/attach-$h.out" >&2; fail "attach on $h: the old disk's requests never returned"; }
    wait_state "$secs" "$h" disk=UpToDate repl=Established peer-disk=UpToDate
}

# ---- the Primary's disk fails ----------------------------------------------
faulty_pair p
fio_start failp 180 "$ALPHA_URI" "${VERIFY[@]}" --size=96M --fsync=64
sleep 2
pid_alive "$FIO_PID" || { show_file "$T/failp.out" 20 >&2; fail "primary: fio ended before the disk failed"; }
disk_fail alpha-p
wait_state 20 alpha disk=Diskless role=Primary conn=Connected
pass "primary: alpha's disk failed under fio: alpha is $(node_state alpha | cut -d' ' -f1-3)"
rc=0; fio_wait failp || rc=$?
check_fio failp "$rc"
pass "primary: fio (96 MiB randwrite, verify through alpha) finished with no error and no verify failure"
expect_state alpha role=Primary disk=Diskless peer-disk=UpToDate
expect_state beta disk=UpToDate
status_text alpha >"$T/status-p.txt"
grep -q "failed: I/O error" "$T/status-p.txt" || { show_file "$T/status-p.txt" >&2; fail "primary: alpha's status does not say why it is Diskless"; }
pass "primary: status says why: $(grep -m1 'failed:' "$T/status-p.txt" | sed 's/^ *# //' | cut -c1-110)"
wait_for "the local-io-error handler" 50 0.1 test -s "$T/local-io-error-p.log" || fail "primary: the local-io-error handler did not run"
pass "primary: local-io-error handler ran: $(head -n1 "$T/local-io-error-p.log" | cut -c1-100)"
# Every acknowledged write is on beta: fio's verify pass over beta's own export.
rc=0; fio_run failp-beta 120 "$BETA_URI" "${VERIFY[@]}" --size=96M --verify_only || rc=$?
check_fio failp-beta "$rc"
pass "primary: fio --verify_only over beta's export: every block alpha acknowledged is on beta"

# No disk anywhere: alpha Diskless, beta down.  A read fails with EIO, promptly.
down_node beta
if timeout 20 "$PY_NBD" -c 'import nbd, sys; h = nbd.NBD(); h.connect_uri(sys.argv[1]); h.pread(4096, 0)' "$ALPHA_URI" >"$T/noread.out" 2>&1; then
    fail "primary: a read through a Diskless alpha with beta down succeeded"
fi
grep -qi "input/output error\|EIO" "$T/noread.out" || { show_file "$T/noread.out" >&2; fail "primary: the read without data did not fail with EIO"; }
pass "primary: with no disk on either side, a read fails with EIO ($(grep -oi 'input/output error' "$T/noread.out" | head -n1))"
node_up beta
wait_state 30 alpha conn=Connected peer-disk=UpToDate

# Replace the disk: a new file, create-md, attach, under load.
truncate -s "$SIZE" "$T/alpha-new.img"
ln -sfn "$T/alpha-new.img" "$T/alpha-p.disk"
rm -f "$T/w/p/alpha.md" && truncate -s 16M "$T/w/p/alpha.md"
run_logged create-md-new repd_node alpha create-md
fio_start loadp 180 "$ALPHA_URI" "${VERIFY[@]}" --size=64M --offset=32M --time_based --runtime=8 --verify_backlog=64
sleep 1
run_logged attach-new repd_node alpha attach
wait_state 90 alpha disk=UpToDate repl=Established peer-disk=UpToDate
decision=$(last_line alpha "sync decision")
[[ $decision == *"(full)"* ]] || fail "primary: the new disk's resync was not a full one: $decision"
pass "primary: the new disk was attached under load and fully resynced: $(last_line alpha "resync finished" | cut -c1-110)"
rc=0; fio_wait loadp || rc=$?
check_fio loadp "$rc"
pass "primary: fio during the attach and resync: no error, no verify failure"
down_node alpha
down_node beta
compare_replicas primary "$T/alpha-new.img" "${FAULTY_RAW[beta-p]}"

# ---- the Secondary's disk fails --------------------------------------------
faulty_pair s
fio_start fails 180 "$ALPHA_URI" "${VERIFY[@]}" --size=96M --fsync=64
sleep 2
disk_fail beta-s
wait_state 20 beta disk=Diskless role=Secondary
wait_state 20 alpha peer-disk=Diskless
rc=0; fio_wait fails || rc=$?
check_fio fails "$rc"
expect_state alpha role=Primary disk=UpToDate
pass "secondary: beta's disk failed under fio: beta Diskless, alpha Primary/UpToDate, fio without error"
oos=$(node_value alpha oos)
[ "$oos" != 0 ] || fail "secondary: alpha marked nothing out of sync for beta's missing writes"
# A restart keeps the failed disk out of use, and says why.
down_node beta
node_up beta
wait_state 30 beta disk=Diskless conn=Connected
status_text beta >"$T/status-s.txt"
grep -q "failed: I/O error" "$T/status-s.txt" || { show_file "$T/status-s.txt" >&2; fail "secondary: after the restart beta's status does not say why it is Diskless"; }
pass "secondary: after a restart beta is Diskless again and says why: $(grep -m1 'failed:' "$T/status-s.txt" | sed 's/^ *# //' | cut -c1-100)"
disk_heal beta-s
wait_attached beta 60
expect_bitmap_resync "secondary: attach brought beta's disk back" beta
expect_state alpha oos=0
down_node alpha
down_node beta
compare_replicas secondary "${FAULTY_RAW[alpha-s]}" "${FAULTY_RAW[beta-s]}"

# ---- disk-timeout: the disk stops answering ----------------------------------
faulty_pair t
fio_start stuck 180 "$ALPHA_URI" "${VERIFY[@]}" --size=64M --fsync=16 --time_based --runtime=12 --verify_backlog=64
sleep 2
start=$SECONDS
disk_pause alpha-t
wait_state 15 alpha disk=Diskless
took=$((SECONDS - start))
status_text alpha >"$T/status-t.txt"
grep -q "disk-timeout" "$T/status-t.txt" || { show_file "$T/status-t.txt" >&2; fail "timeout: alpha's status does not name disk-timeout"; }
pass "timeout: alpha's disk stopped answering; detached after about ${took}s (disk-timeout 3 s)"
rc=0; fio_wait stuck || rc=$?
check_fio stuck "$rc"
pass "timeout: fio went on through beta: no error, no verify failure"
disk_resume alpha-t
wait_attached alpha 60
expect_bitmap_resync "timeout: the disk answers again; attach resynced it" alpha
down_node alpha
down_node beta
compare_replicas timeout "${FAULTY_RAW[alpha-t]}" "${FAULTY_RAW[beta-t]}"
