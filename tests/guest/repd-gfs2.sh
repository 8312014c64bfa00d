#!/bin/sh
# Guest half of tests/guests-gfs2.sh: runs under busybox sh in a guest of ../shared/vm, one per
# node. repd runs here, on this guest's own virtio disk (/dev/vda, internal metadata), replicating
# to the other guest over the guest-to-guest link; repd attaches /dev/drbd1 through this kernel's
# nbd driver. Then LVM + GFS2 lock_dlm (corosync + dlm_controld) on /dev/drbd1, mounted on both.
# Env: NODE_ID (1|2), NODE1_IP, NODE2_IP, MARKER; from -f: /data/repd (+ the shared libraries the
# guest lacks, in /data).
# The helpers, the LVM filter, the resource and corosync + dlm: tests/guest/cluster-lib.sh.
. /data/cluster-lib.sh

ip addr add "$MY_FEN/24" dev eth0
echo "INFO: node$ME ip=$(ip -4 -o addr show eth0 | awk '{print $4}' | tr '\n' ' ') peer=$PEER_IP kernel=$(uname -r)"
must "peer $PEER_IP reachable (ping)" wait_for 120 ping -c1 -W1 "$PEER_IP"
must "peer $PEER_FEN reachable on the second network (ping)" wait_for 60 ping -c1 -W1 "$PEER_FEN"
must "static repd runs here" $REPD --version

write_lvm_conf

# ---------------- repd ---------------------------------------------------------------------------
write_resource
must "repd create-md r0" $REPD create-md r0
must "repd up r0 (attaches /dev/drbd1)" $REPD up r0
echo "INFO: node$ME: $($REPD status r0 | grep 'device:')"
must "/dev/drbd1 -> /dev/nbd1 by the kernel nbd driver" sh -c \
    "[ \"\$(readlink /dev/drbd1)\" = nbd1 ] && [ -b /dev/nbd1 ] && [ \"\$(readlink /dev/repd/by-res/r0)\" = ../../nbd1 ] && cat /sys/block/nbd1/backend | grep -qx repd:r0"
must "/dev/drbd1 read-only while Secondary" sh -c "[ \"\$(blockdev --getro /dev/drbd1)\" = 1 ]"
must "Connected to the peer" wait_for 120 has '"connection-state":"Connected"'
phase "bring-up (create-md, up, kernel nbd attach, connect)"
if [ "$ME" = 1 ]; then
    # Both disks are new and zero: no initial sync needed (Docs/QuickStart.md, "Empty disks, no sync").
    must "new-current-uuid --clear-bitmap" $REPD new-current-uuid --clear-bitmap r0
fi
must "UpToDate/UpToDate" wait_for 120 both_uptodate
must "barrier 1 (in sync)" barrier 1
must "repd primary r0" $REPD primary r0
must "peer Primary too" wait_for 60 has '"peer-role":"Primary"'
must "/dev/drbd1 writable while Primary" sh -c "[ \"\$(blockdev --getro /dev/drbd1)\" = 0 ]"
$REPD status r0 | sed "s/^/INFO: node$ME: status: /"
phase "both Primary"

# ---------------- corosync + dlm -----------------------------------------------------------------
start_corosync_dlm
phase "corosync + dlm"

# ---------------- LVM + GFS2 on /dev/drbd1 -------------------------------------------------------
if [ "$ME" = 1 ]; then
    must "pvcreate $DEV" pvcreate -ff -y "$DEV"
    must "vgcreate $VG $DEV" vgcreate -y "$VG" "$DEV"
    must "lvcreate -L 256M" lvcreate -y -L 256M -n "$LV" "$VG"
    must "mkfs.gfs2 -p lock_dlm -j 2" mkfs.gfs2 -O -p lock_dlm -j 2 -J 32 -t cluster:fs "/dev/$VG/$LV"
    step "pvs shows the PV on $DEV, not on $BACKING" sh -c "pvs --noheadings -o pv_name | grep -q drbd1 && ! pvs --noheadings -o pv_name | grep -q vda"
fi
must "barrier 2 (fs created)" barrier 2
if [ "$ME" = 2 ]; then
    must "activate $VG on node2 (through its own replica)" sh -c "pvscan --cache >/dev/null 2>&1; vgscan --mknodes >/dev/null 2>&1; vgchange -ay $VG"
fi
mkdir -p /mnt/gfs2
must "mount gfs2 lock_dlm" mount -t gfs2 "/dev/$VG/$LV" /mnt/gfs2
phase "LVM + mkfs.gfs2 + mount"
must "barrier 3 (both mounted)" barrier 3
if [ "$ME" = 1 ]; then
    step "repd secondary refused while mounted, naming the mount" sh -c \
        "out=\$($REPD secondary r0 2>&1); rc=\$?; echo \"\$out\"; [ \$rc != 0 ] && echo \"\$out\" | grep -q 'mounted on /mnt/gfs2' && echo \"\$out\" | grep -q 'dm-'"
    $REPD secondary r0 2>&1 | sed "s/^/INFO: node$ME: secondary says: /"
    step "still Primary" has '"role":"Primary"'
fi
step "write node$ME files" sh -c "echo '$MARKER from node$ME' > /mnt/gfs2/node$ME.txt && mkdir -p /mnt/gfs2/shared && i=0; while [ \$i -lt 50 ]; do echo \$i > /mnt/gfs2/shared/n$ME-\$i; i=\$((i+1)); done; dd if=/dev/urandom of=/mnt/gfs2/big$ME bs=1M count=8 2>/dev/null; sha256sum < /mnt/gfs2/big$ME > /mnt/gfs2/big$ME.sum; sync"
must "barrier 4 (both written)" barrier 4
step "read node$other's file (cross-node coherence)" sh -c "[ \"\$(cat /mnt/gfs2/node$other.txt)\" = '$MARKER from node$other' ]"
step "node$other's 8 MiB file reads back with its sha256" sh -c "[ \"\$(sha256sum < /mnt/gfs2/big$other)\" = \"\$(cat /mnt/gfs2/big$other.sum)\" ]"
step "see all 100 files in shared dir" sh -c "[ \$(ls /mnt/gfs2/shared | wc -l) = 100 ]"
step "concurrent flock appends" sh -c "i=0; while [ \$i -lt 20 ]; do flock /mnt/gfs2/lockfile sh -c 'echo node$ME >> /mnt/gfs2/counter' || exit 1; i=\$((i+1)); done"
must "barrier 5 (appends done)" barrier 5
step "counter has 40 lines" sh -c "[ \$(wc -l < /mnt/gfs2/counter) = 40 ]"
must "barrier 6 (checks done)" barrier 6
phase "GFS2 cross-node checks"

# ---------------- fencing: the replication link is cut under a file workload --------------------
# Both nodes write files (each synced) and keep a ledger of the completed ones; node2 drops its
# replication address. Both freeze (resource-and-stonith), both fence-peer handlers run over the
# second network: node1 (its name sorts first) stays writable, node2 is Outdated, its GFS2 sees
# EIO and withdraws. Then the address comes back: node2 resyncs from node1, no split brain.
workload() {
    mkdir -p /mnt/gfs2/w$ME; i=0; : > /tmp/ledger
    while [ ! -e /tmp/stop ] && [ $i -lt 400 ]; do
        echo "$MARKER node$ME file $i" | dd of=/mnt/gfs2/w$ME/f$i conv=fsync 2>/dev/null && echo $i >> /tmp/ledger || break
        i=$((i+1))
    done
}
workload & WL=$!
must "barrier 10 (workloads running)" barrier 10
sleep 3
if [ "$ME" = 2 ]; then
    T_CUT=$(up)
    must "cut the replication link (drop $MY_IP)" ip addr del "$GUEST_IP" dev eth0
fi
if [ "$ME" = 1 ]; then
    must "fencing resolved: node1 UpToDate, not suspended" wait_for 120 sh -c "$REPD status r0 --json | tr -d ' \n' | grep -q '\"disk-state\":\"UpToDate\"' && ! $REPD status r0 --json | grep -q repd-suspended && grep -q 'fencing done' /run/repd/r0.log"
    grep 'fence' /run/repd/r0.log | tail -4 | sed "s/^/INFO: node$ME: log: /"
else
    must "fencing resolved: node2 Outdated" wait_for 120 has '"disk-state":"Outdated"'
    echo "INFO: node$ME: fenced $(since "$T_CUT")s after the cut"
    grep -i 'fence\|outdated' /run/repd/r0.log | tail -4 | sed "s/^/INFO: node$ME: log: /"
fi
must "barrier 11 (fencing resolved)" barrier 11
# node2's GFS2 saw EIO and withdrew; node1 replayed node2's journal, but node2 still holds glocks
# (its withdraw never finishes) until the cluster removes it: that is the STONITH in
# resource-and-stonith, a reboot by Pacemaker/dlm on a real cluster. Here node2 leaves the
# cluster instead (its corosync and dlm_controld are killed); its withdrawn GFS2 stays stuck, as
# on a real node until that reboot, and node1 goes on.
if [ "$ME" = 2 ]; then
    echo "INFO: node2: GFS2 here: $(dmesg | grep -iE 'gfs2.*(withdr|error)' | tail -1)"
    kill -9 $(pidof dlm_controld) $(pidof corosync) 2>/dev/null
    echo "INFO: node2: left the cluster (corosync and dlm_controld killed), as a STONITH would"
else
    must "node2 left the cluster" wait_for 120 sh -c "corosync-quorumtool -s | grep -qE 'Total votes: *1'"
fi
sleep 3
touch /tmp/stop
[ "$ME" = 2 ] && { echo "INFO: node2: its workload stays stuck in the withdrawn GFS2 ($(wc -l < /tmp/ledger) files completed before it)"; WL=; }
# Bounded: a workload stuck in the kernel (GFS2 or dlm waiting) is reported with the blocked
# tasks' stacks, and the scenario ends here rather than at the VM timeout.
n=90; while [ -n "$WL" ] && kill -0 $WL 2>/dev/null && [ $n -gt 0 ]; do sleep 1; n=$((n-1)); done
if [ -n "$WL" ] && kill -0 $WL 2>/dev/null; then
    echo "FAIL: node$ME: the file workload is still stuck 90 s after it was told to stop"
    echo w > /proc/sysrq-trigger 2>/dev/null
    ps -eo pid,stat,wchan:32,args | awk '$2 ~ /D/' | sed "s/^/    node$ME D-state: /"
    dmesg | tail -60 | sed "s/^/    node$ME dmesg: /"
    dlm_tool ls 2>&1 | sed "s/^/    node$ME dlm: /"
    dump_logs
    exit 1
fi
[ -z "$WL" ] || wait $WL
echo "INFO: node$ME: workload completed $(wc -l < /tmp/ledger) files"
if [ "$ME" = 1 ]; then
    step "node1 wrote on after the fence" sh -c "[ \$(wc -l < /tmp/ledger) -gt 0 ] && ls /mnt/gfs2/w1 | grep -q ."
fi
must "barrier 12 (workloads stopped)" barrier 12
if [ "$ME" = 2 ]; then
    must "restore the replication link" ip addr add "$GUEST_IP" dev eth0
    # node2's ledger to node1, over the second network
    must "send node2's ledger" sh -c "n=60; until nc -w 2 $PEER_FEN 7100 < /tmp/ledger; do sleep 1; n=\$((n-1)); [ \$n = 0 ] && exit 1; done"
else
    timeout 120 nc -l -p 7100 > /tmp/ledger2 </dev/null
fi
must "reconnected and in sync after the heal" wait_for 180 connected_in_sync
step "no split brain after the fence" sh -c "! grep -qi 'split brain' /run/repd/r0.log"
grep 'sync decision\|resync finished' /run/repd/r0.log | tail -2 | sed "s/^/INFO: node$ME: log: /"
if [ "$ME" = 1 ]; then
    step "every file of both ledgers is there, with its contents" sh -c '
        for n in 1 2; do f=/tmp/ledger; [ $n = 2 ] && f=/tmp/ledger2
            for i in $(cat $f); do [ "$(cat /mnt/gfs2/w$n/f$i)" = "'"$MARKER"' node$n file $i" ] || { echo "missing w$n/f$i"; exit 1; }; done
        done'
    echo "INFO: node1: ledgers checked: node1 $(wc -l < /tmp/ledger) files, node2 $(wc -l < /tmp/ledger2) files"
fi
must "barrier 13 (fencing phase done)" barrier 13
phase "fencing: link cut under load, fenced, healed, resynced"
if [ "$ME" = 1 ]; then step "umount" umount /mnt/gfs2; fi
must "barrier 7 (both unmounted)" barrier 7
if [ "$ME" = 1 ]; then step "fsck.gfs2 -n" fsck.gfs2 -n "/dev/$VG/$LV"; fi
# node2's withdrawn GFS2 still holds the LV (until the reboot a real cluster would give it).
if [ "$ME" = 1 ]; then step "vgchange -an" vgchange -an "$VG"; fi
p=$(pidof dlm_controld) && kill $p 2>/dev/null; corosync-cfgtool -H >/dev/null 2>&1
must "barrier 8 (released)" barrier 8
$REPD status r0 | sed "s/^/INFO: node$ME: status before down: /"
step "Connected/UpToDate/UpToDate before down" connected_in_sync
step "out-of-sync 0" has '"out-of-sync":0,'

must "barrier 9 (before down)" barrier 9
no_repd_left() { for p in $(pidof repd); do grep -q "^State:.*Z" /proc/$p/status || return 1; done; }
if [ "$ME" = 1 ]; then
    must "repd down r0" $REPD down r0
    step "down removed /dev/drbd1, /dev/repd and disconnected nbd1" sh -c "[ ! -e /dev/drbd1 ] && [ ! -L /dev/drbd1 ] && [ ! -e /dev/repd ] && [ \"\$(blockdev --getsize64 /dev/nbd1 2>/dev/null || echo 0)\" = 0 ]"
    step "no repd left (zombies aside: PID 1 is a shell)" no_repd_left
else
    # The fenced node: its withdrawn GFS2 holds the device until the reboot a cluster would give it.
    must "repd down --force r0 (the stuck GFS2 still holds the device)" $REPD down --force r0
    if ! wait_for 30 no_repd_left; then
        echo "INFO: node2: repd still waits for the kernel to let go of /dev/nbd1 (held by the withdrawn GFS2); killed, as the node's reboot would"
        kill -9 $(pidof repd) 2>/dev/null
    fi
    # Flush the backing disk only (the host compares it after poweroff -f). A plain sync would also
    # sync the withdrawn GFS2, which can block for ever; the flush is bounded all the same.
    blockdev --flushbufs "$BACKING" & fl=$!
    if ! wait_for 30 sh -c "! kill -0 $fl"; then
        echo "FAIL: node2: blockdev --flushbufs $BACKING still blocked after 30 s"
        ps -eo pid,stat,wchan:32,args | awk '$2 ~ /D/' | sed "s/^/    node2 D-state: /"
        fails=$((fails+1))
    fi
    # The harness's init runs `sync` before it powers the guest off; on a fenced node that sync can
    # block for ever in the withdrawn GFS2 (dlm and corosync are gone). Probe it, bounded, and say
    # where it blocks: the host then cuts node2's power, as the cluster's STONITH would.
    sync & sp=$!
    if ! wait_for 20 sh -c "! kill -0 $sp"; then
        echo "INFO: node2: sync still blocked after 20 s (the withdrawn GFS2); the host will cut the power"
        echo w > /proc/sysrq-trigger 2>/dev/null
        ps -eo pid,stat,wchan:32,args | awk '$2 ~ /D/' | sed "s/^/    node2 D-state: /"
        dmesg | grep -A14 'task:.* state:D' | grep -E 'task:|gfs2|dlm|nbd|blk|wait|sync' | head -40 | sed "s/^/    node2 stack: /"
    fi
fi

phase "unmount, down"
echo "TIME: node$ME: total $(since "$T_START")s"
[ $fails = 0 ] || dump_logs
[ $fails = 0 ] && echo "PASS: node$ME: all steps" || echo "FAIL: node$ME: $fails step(s) failed"
exit $fails
