#!/usr/bin/env bash
# run-all-timeout: 2700
# repd inside the cluster nodes.  Two guests of ../shared/vm (qemu, a stock
# Debian kernel with nbd, dm, GFS2, DLM), joined by the guest-to-guest link;
# each runs a static repd (`swift build -c release --static-swift-stdlib`)
# on its own virtio disk (/dev/vda, internal metadata), replicating to the
# other over the link.  `repd up r0` attaches /dev/drbd1 through the guest
# kernel's nbd driver (generic netlink, sockets served by repd).  Then
# pvcreate/vgcreate/lvcreate on /dev/drbd1, mkfs.gfs2 -p lock_dlm -j 2,
# mount on both with corosync + dlm_controld, files written on one node
# read on the other, flock'd appends, `repd secondary` refused while
# mounted (naming the mount); then fencing (resource-and-stonith, the repd
# fence-peer handler over a second network that also carries corosync):
# the replication link is cut under a file workload on both nodes, node1
# stays writable, node2 is Outdated (its GFS2 withdraws), the link comes
# back, node2 resyncs, no split brain, every file either node completed is
# there; umount, fsck.gfs2 -n, `repd down` (device and links gone);
# guest-side `repd status` Connected/UpToDate on both.  After the guests
# power off, the two virtio disks' data areas must be identical.  (The fenced
# node2 whose init cannot get past `sync` in its withdrawn GFS2 has its power
# cut by the host 60 s after its last step, as STONITH would.)
# The guest half is tests/guest/repd-gfs2.sh; its TIME lines give each
# phase's guest-side duration, printed here.
#
# Slow (software-emulated guests): REPD_SKIP_VM=1 skips it.  The static
# binary is REPD_STATIC, or built into <top>/.build-static (bounded by
# REPD_STATIC_BUILD_TIMEOUT, default 1800 s).  The harness is built first
# (REPD_VM_BUILD_TIMEOUT, default 900 s) in REPD_VM_WORKDIR (default
# /tmp/vmwork); the guests get REPD_VM_TIMEOUT seconds (default 900).
source "$(dirname "$0")/lib.sh"

[ -z "$STANDIN" ] || skip "stand-in mode: here repd itself runs inside the guests"
require_root
require_tool timeout setsid cmp python3 truncate ss
T0=$SECONDS
vm_harness --cluster
guest_repd_files
VM_TIMEOUT=${REPD_VM_TIMEOUT:-900}

# ---- two virtio disks, one per guest ------------------------------------------------------
DISK_SIZE=${REPD_GUEST_DISK_SIZE:-320M}
truncate -s "$DISK_SIZE" "$T/node1.img" "$T/node2.img"
PORT=$(pick_port) || fail "no free port for the guest link"
MARKER="REPD-GUESTS-$(date +%s)-$RANDOM"
checkpoint vm-ready

# ---- the two guests, in parallel -----------------------------------------------------------
COMMON=(-s "$TESTS_DIR/guest/repd-gfs2.sh" -q -c 1 -m 1024 -t "$VM_TIMEOUT"
        -e NODE1_IP=192.168.77.1 -e NODE2_IP=192.168.77.2 -e "MARKER=$MARKER" "${GUEST_FILES[@]}"
        -f "$TESTS_DIR/guest/cluster-lib.sh")
start_guest() {  # N LINK MAC
    REPD_VM_WORKDIR=$WORKDIR setsid timeout -k 20 $((VM_TIMEOUT + 60)) bash "$VMDIR/run-guest.sh" "${COMMON[@]}" \
        --link "$2" --mac "$3" -e "NODE_ID=$1" -e "GUEST_IP=192.168.77.$1/24" -e "GUEST_HOSTNAME=node$1" \
        -l "$T/node$1.log" -- -drive "file=$T/node$1.img,format=raw,if=virtio,cache=writeback" \
        >"$T/node$1.out" 2>&1 </dev/null 8>&- 9>&- &
}
G0=$SECONDS
start_guest 1 "listen:$PORT" 52:54:00:77:00:01
SID1=$!
add_session "$SID1"
wait_for "guest 1 listening on 127.0.0.1:$PORT" 300 0.2 sh -c "ss -Hltn 'sport = :$PORT' | grep -q ." ||
    { show_file "$T/node1.out" 20 >&2; fail "guest 1's link never listened"; }
start_guest 2 "connect:$PORT" 52:54:00:77:00:02
SID2=$!
add_session "$SID2"
# node2 is the node the fencing phase fences. A real cluster would STONITH it; here its GFS2 stays
# withdrawn to the end, and the harness's `sync` before poweroff can block in it for ever. Once
# node2's script has ended (its backing disk flushed), the guest gets 60 s to power off by itself,
# then the host cuts its power (qemu stopped): its writes that completed are in node2.img already.
_node2_ended() { grep -aqE '^(PASS: node2: all steps|FAIL: node2: [0-9]+ step)' "$T/node2.log" 2>/dev/null; }
POWER_CUT=0 ENDED_AT=
while pid_alive "$SID2" && [ $((SECONDS - G0)) -le $((VM_TIMEOUT + 120)) ]; do
    if [ -z "$ENDED_AT" ]; then _node2_ended && ENDED_AT=$SECONDS
    elif [ $((SECONDS - ENDED_AT)) -ge 60 ]; then
        q=$(qemu_of_session "$SID2")
        if [ -n "$q" ]; then
            POWER_CUT=1
            # shellcheck disable=SC2086  # a list of pids
            kill -TERM $q 2>/dev/null || true
            wait_for "node2's qemu to stop" 100 0.1 pid_dead $q || kill -KILL $q 2>/dev/null || true
        fi
        break
    fi
    sleep 1
done
rc1=0 rc2=0
wait "$SID1" || rc1=$?
wait "$SID2" || rc2=$?
if [ "$POWER_CUT" = 1 ] && [ "$rc2" -ne 0 ]; then
    # The guest did not print REPD-VM-RESULT (its init never got past sync); its own verdict counts.
    _node2_ended && grep -aq '^PASS: node2: all steps' "$T/node2.log" && rc2=0
fi
kill_session "$SID1"
kill_session "$SID2"
WALL=$((SECONDS - G0))
for n in 1 2; do
    grep -aE '^(PASS|FAIL|INFO|TIME|    )' "$T/node$n.log" | tr -d '\r' >"$T/node$n.summary" || true
done
if [ "$rc1" -ne 0 ] || [ "$rc2" -ne 0 ]; then
    for n in 1 2; do
        echo "    === node$n"
        grep -E '^(FAIL|    )' "$T/node$n.summary" | head -40 | sed 's/^/    /' || true
        tail -n 25 "$T/node$n.summary" | sed 's/^/    | /' || true
        show_file "$T/node$n.out" 15
    done >&2
    [ "$rc1" -ne 124 ] && [ "$rc2" -ne 124 ] || fail "the guests did not finish within ${VM_TIMEOUT}s"
    fail "the guest scenario failed (node1 exit $rc1, node2 exit $rc2)"
fi
for n in 1 2; do
    grep -q "^PASS: node$n: all steps" "$T/node$n.summary" || { show_file "$T/node$n.summary" 40 >&2; fail "node$n did not report all steps passed"; }
done
npass=$(cat "$T/node1.summary" "$T/node2.summary" | grep -c '^PASS')
pass "two guests, repd in each, kernel nbd /dev/drbd1, LVM + GFS2 lock_dlm on both: $npass guest checks passed (wall ${WALL}s)"
if [ "$POWER_CUT" = 1 ]; then
    echo "    node2 did not power off within 60 s of its last step (sync blocked in its withdrawn GFS2): the host cut its power, as STONITH would" >&8
    grep -E '^    node2 (D-state|stack): ' "$T/node2.summary" | head -20 | sed 's/^/  /' >&8 || true
fi
for n in 1 2; do
    grep -E "^INFO: node$n: (device:|status:|secondary says|fenced|ledgers checked|workload|left the cluster|sync still blocked|log: .*(resync finished|fence-peer: |outdated by))" "$T/node$n.summary" | sed 's/^/    /' >&8 || true
done
for n in 1 2; do
    echo "    guest-side phases, node$n: $(sed -n "s/^TIME: node$n: //p" "$T/node$n.summary" | paste -sd ';' | sed 's/;/; /g')" >&8
done

# ---- the two replicas' data areas --------------------------------------------------------
guest_disks_identical "$T/node1.img" "$T/node2.img" "$MARKER"
pass "the two virtio disks' data areas ($GUEST_USABLE bytes) are identical; the marker is on them; total $((SECONDS - T0))s"
