#!/usr/bin/env bash
# run-all-timeout: 3000
# The whole stack repd exists for, in two guests of ../shared/vm (qemu, a stock Debian kernel
# with nbd, dm, GFS2, DLM) joined by the guest-to-guest link: repd dual-primary on each guest's
# virtio disk with /dev/drbd1 through the kernel's nbd driver, corosync + dlm_controld, one VG
# (node1 creates it, node2 activates it: the image has no lvmlockd), GFS2 lock_dlm mounted on
# both, CTDB (cluster lock on the GFS2, one public address) and smbd with `clustering = yes`
# sharing a GFS2 directory. The guest half is tests/guest/repd-ctdb.sh.
#   1. Files written through node1's Samba read back through node2's, and the other way.
#   2. The public address is on node1; a client on node2 writes files through it, keeping a
#      ledger of the completed puts; the host kills node1's qemu mid-write. node2's repd fences
#      (the fence-peer handler finds node1 unreachable: assumed down), corosync and dlm go on
#      with one node, CTDB moves the public address to node2, the client writes on, and every
#      completed put of the ledger reads back through the public address with its sha256.
#   3. node1 boots again: repd reconnects and resyncs only what changed (the bytes are printed
#      beside the bytes written while node1 was away), GFS2 is mounted again, CTDB reports both
#      nodes OK, and node1's Samba serves the file written while it was away.
#   4. Services stopped, fsck.gfs2 -n clean, `repd down` on both; after poweroff the two disks'
#      data areas are identical.
# Samba, CTDB and smbclient come from Debian 12's packages, downloaded and unpacked into a
# tarball the guests unpack (tests/guest/build-samba-root.sh), never installed on the host.
# Slow (software-emulated guests): REPD_SKIP_VM=1 skips it; see guests-gfs2.sh for the static
# binary and the harness. The guests get REPD_VM_TIMEOUT seconds (default 1500).
source "$(dirname "$0")/lib.sh"

[ -z "$STANDIN" ] || skip "stand-in mode: here repd itself runs inside the guests"
require_root
require_tool timeout setsid cmp python3 truncate ss apt-get dpkg-deb ldd
T0=$SECONDS
vm_harness --cluster
guest_repd_files
SAMBA_TAR=$(bash "$TESTS_DIR/guest/build-samba-root.sh" "$WORKDIR" 2>"$T/samba-root.err") ||
    { show_file "$T/samba-root.err" 15 >&2; missing "the guests' Samba/CTDB tarball could not be built"; }
GUEST_FILES+=(-f "$SAMBA_TAR" -f "$TESTS_DIR/guest/cluster-lib.sh")
pass "Samba + CTDB for the guests: $(du -h "$SAMBA_TAR" | cut -f1) tarball"
VM_TIMEOUT=${REPD_VM_TIMEOUT:-1500}

truncate -s "${REPD_GUEST_DISK_SIZE:-320M}" "$T/node1.img" "$T/node2.img"
PORT=$(pick_port) || fail "no free port for the guest link"
MARKER="REPD-CTDB-$(date +%s)-$RANDOM"
checkpoint vm-ready

# node2 listens on the guest link: qemu's listening socket netdev accepts again after node1's
# qemu dies, so node1's second boot can connect to the same link.
COMMON=(-s "$TESTS_DIR/guest/repd-ctdb.sh" -q -c 1 -m 1280 -t "$VM_TIMEOUT"
        -e NODE1_IP=192.168.77.1 -e NODE2_IP=192.168.77.2 -e "MARKER=$MARKER" "${GUEST_FILES[@]}")
start_guest() {  # N LINK MAC LOGNAME [ENV...]
    local n=$1 link=$2 mac=$3 log=$4; shift 4
    local envs=() e
    for e in "$@"; do envs+=(-e "$e"); done
    REPD_VM_WORKDIR=$WORKDIR setsid timeout -k 20 $((VM_TIMEOUT + 60)) bash "$VMDIR/run-guest.sh" "${COMMON[@]}" \
        --link "$link" --mac "$mac" -e "NODE_ID=$n" -e "GUEST_IP=192.168.77.$n/24" -e "GUEST_HOSTNAME=node$n" \
        ${envs[@]+"${envs[@]}"} -l "$T/$log.log" -- -drive "file=$T/node$n.img,format=raw,if=virtio,cache=writeback" \
        >"$T/$log.out" 2>&1 </dev/null 8>&- 9>&- &
}
in_log() { grep -aq "$2" "$T/$1.log" 2>/dev/null; }
summary() { grep -aE '^(PASS|FAIL|INFO|TIME|    )' "$T/$1.log" | tr -d '\r' >"$T/$1.summary" || true; }
guest_failed() {  # LOGNAME...: show what the guests said, then fail
    local l
    for l in "$@"; do
        summary "$l"
        echo "    === $l"
        grep -E '^(FAIL|    )' "$T/$l.summary" | head -40 | sed 's/^/    /' || true
        tail -n 25 "$T/$l.summary" | sed 's/^/    | /' || true
        show_file "$T/$l.out" 10
    done >&2
}

G0=$SECONDS
start_guest 2 "listen:$PORT" 52:54:00:77:00:02 node2
SID2=$!
add_session "$SID2"
wait_for "guest 2 listening on 127.0.0.1:$PORT" 300 0.2 sh -c "ss -Hltn 'sport = :$PORT' | grep -q ." ||
    { show_file "$T/node2.out" 20 >&2; fail "guest 2's link never listened"; }
start_guest 1 "connect:$PORT" 52:54:00:77:00:01 node1a BOOT=1
SID1=$!
add_session "$SID1"

# ---- phase 1 and 2: node1 is killed once node2's client writes through it --------------------
_kill_signal() { in_log node2 'KILL-NODE1-NOW' || pid_dead "$SID1" || pid_dead "$SID2"; }
wait_for "node2's client to write through node1" $((VM_TIMEOUT * 5)) 0.2 _kill_signal ||
    { guest_failed node1a node2; fail "node2 never started writing through node1"; }
if ! in_log node2 'KILL-NODE1-NOW' || ! in_log node1a 'waiting for the host to kill this guest'; then
    guest_failed node1a node2; fail "the guests failed before node1 was to be killed"
fi
sleep 2                                         # mid-write: the client puts a file every second or so
q=$(qemu_of_session "$SID1")
[ -n "$q" ] || fail "node1's qemu is gone already"
# shellcheck disable=SC2086  # a list of pids
kill -KILL $q
T_KILL=$SECONDS
wait "$SID1" 2>/dev/null || true
kill_session "$SID1"
summary node1a
if grep -q '^FAIL' "$T/node1a.summary"; then guest_failed node1a; fail "node1 reported failures before it was killed"; fi
pass "node1 built the stack and served the public address: $(grep -c '^PASS' "$T/node1a.summary") guest checks passed; its qemu killed (-9) while node2's client wrote through it"

# ---- phase 3: node1 boots again once node2 has checked the failover ------------------------------
_may_boot() { in_log node2 'NODE1-MAY-BOOT' || pid_dead "$SID2"; }
wait_for "node2 to check the failover" $((VM_TIMEOUT * 5)) 0.2 _may_boot ||
    { guest_failed node2; fail "node2 never finished the failover phase"; }
in_log node2 'NODE1-MAY-BOOT' || { guest_failed node2; fail "node2 failed in the failover phase"; }
T_AWAY=$((SECONDS - T_KILL))
start_guest 1 "connect:$PORT" 52:54:00:77:00:01 node1b BOOT=2
SID1=$!
add_session "$SID1"
rc1=0 rc2=0
wait "$SID1" || rc1=$?
wait "$SID2" || rc2=$?
kill_session "$SID1"
kill_session "$SID2"
WALL=$((SECONDS - G0))
summary node1b; summary node2
if [ "$rc1" -ne 0 ] || [ "$rc2" -ne 0 ]; then
    guest_failed node1b node2
    [ "$rc1" -ne 124 ] && [ "$rc2" -ne 124 ] || fail "the guests did not finish within ${VM_TIMEOUT}s"
    fail "the guest scenario failed (node1's second boot exit $rc1, node2 exit $rc2)"
fi
grep -q '^PASS: node1: all steps' "$T/node1b.summary" || { show_file "$T/node1b.summary" 40 >&2; fail "node1's second boot did not report all steps passed"; }
grep -q '^PASS: node2: all steps' "$T/node2.summary" || { show_file "$T/node2.summary" 40 >&2; fail "node2 did not report all steps passed"; }
npass=$(cat "$T/node1a.summary" "$T/node1b.summary" "$T/node2.summary" | grep -c '^PASS')
pass "CTDB + Samba on GFS2 on repd survived node1's death and rejoin: $npass guest checks passed (wall ${WALL}s, node1 away ${T_AWAY}s)"
for l in node1a node2 node1b; do
    grep -E '^INFO: node[12]: (client ledger|while node1 was away|repd lost|fencing resolved|CTDB took|log: |ctdb: )' "$T/$l.summary" | sed 's/^/    /' >&8 || true
done
for l in node1a node2 node1b; do
    echo "    guest-side phases, $l: $(sed -n "s/^TIME: node[12]: //p" "$T/$l.summary" | paste -sd ';' | sed 's/;/; /g')" >&8
done

guest_disks_identical "$T/node1.img" "$T/node2.img" "$MARKER"
pass "the two virtio disks' data areas ($GUEST_USABLE bytes) are identical after node1's resync; the marker is on them; total $((SECONDS - T0))s"
