#!/bin/sh
# Guest half of tests/guests-ctdb.sh: the whole stack on repd, under busybox sh in two guests of
# ../shared/vm. Each node runs repd on its own virtio disk (/dev/vda, internal metadata) with
# /dev/drbd1 attached through the kernel's nbd driver, dual-primary; corosync + dlm_controld; one
# plain VG (no lvmlockd: the image has no lvmlockd, so node1 creates the VG and node2 activates
# it); GFS2 lock_dlm mounted on both; CTDB with its cluster lock on GFS2 and one public address;
# smbd with `clustering = yes` sharing a directory of the GFS2. Clients are smbclient in the guests.
# node1 boots twice: BOOT=1 builds the stack and is killed (its qemu, by the host) while node2's
# client writes through node1's Samba at the public address; BOOT=2 rejoins. node2 runs through.
# Env: NODE_ID, NODE1_IP, NODE2_IP, GUEST_IP, MARKER, BOOT (node1); from -f: /data/repd (+ the
# shared libraries the guest lacks), /data/cluster-lib.sh, /data/samba-root.tar.gz.
. /data/cluster-lib.sh
BOOT=${BOOT:-1}
PUBLIC_IP=192.168.77.100
SHARE=/mnt/gfs2/share
EXTRA_LOGS="/tmp/ctdb.log /tmp/smbd.log"
COROSYNC_TOKEN=5000

# ---------------- helpers: Samba + CTDB -----------------------------------------------------------
install_samba() {
    tar -xzf /data/samba-root.tar.gz -C / &&
    echo "nobody:x:65534:65534:nobody:/nonexistent:/bin/false" >> /etc/passwd &&
    echo "nogroup:x:65534:" >> /etc/group &&
    mkdir -p /var/lib/ctdb/volatile /var/lib/ctdb/persistent /var/lib/ctdb/state /run/ctdb \
             /var/lib/samba/private /var/cache/samba /run/samba /var/log/samba &&
    smbd --version && [ -x /usr/sbin/ctdbd ] && ctdb version
}
write_ctdb_samba_conf() {
    cat > /etc/ctdb/ctdb.conf <<C
[logging]
    location = file:/tmp/ctdb.log
    log level = NOTICE
[cluster]
    cluster lock = !/usr/libexec/ctdb/ctdb_mutex_fcntl_helper /mnt/gfs2/.ctdb/reclock
C
    printf '%s\n%s\n' "$FEN1" "$FEN2" > /etc/ctdb/nodes
    echo "$PUBLIC_IP/24 eth0" > /etc/ctdb/public_addresses
    # Notice a dead node in ~10 s instead of 25 s.
    printf 'KeepaliveInterval=2\nKeepaliveLimit=5\n' > /etc/ctdb/ctdb.tunables
    cat > /etc/samba/smb.conf <<S
[global]
    clustering = yes
    netbios name = REPDCLUSTER
    workgroup = WORKGROUP
    server role = standalone server
    map to guest = Bad User
    disable netbios = yes
    smb ports = 445
    dos charset = ASCII
    log file = /tmp/smbd.log
    log level = 1
    load printers = no
    printing = bsd
    printcap name = /dev/null
    disable spoolss = yes
[share]
    path = $SHARE
    read only = no
    guest ok = yes
    # A write is answered once it is on stable storage: through GFS2 and repd (protocol C), on
    # both nodes' disks. Without it a completed SMB write may still be in the server's page cache.
    sync always = yes
S
}
start_ctdb_smbd() {  # WHO: "all" (both nodes) or "self"
    must "start ctdbd" ctdbd
    if [ "$1" = all ]; then
        must "CTDB: both nodes OK" wait_for 240 ctdb nodestatus all
    else
        must "CTDB: this node OK" wait_for 240 ctdb nodestatus
    fi
    must "start smbd (clustering = yes)" smbd -D
    must "smbd listening on 445" wait_for 60 sh -c "ss -Hltn 'sport = :445' | grep -q ."
}
# smbclient as a guest user, bounded; a transfer that does not say it completed counts as failed.
smb() {  # ADDR COMMAND
    out=$(timeout 30 smbclient "//$1/share" -N -c "$2" 2>&1); rc=$?
    [ $rc = 0 ] && ! echo "$out" | grep -q NT_STATUS_
}
smb_check_files() {  # ADDR LISTFILE: every "name sha256" line reads back through ADDR's Samba
    bad=0; n=0
    while read -r name sum; do
        rm -f /tmp/get.tmp
        if smb "$1" "get $name /tmp/get.tmp" && [ "$(sha256sum < /tmp/get.tmp | cut -d' ' -f1)" = "$sum" ]; then n=$((n+1))
        else echo "wrong or missing through $1: $name"; bad=$((bad+1)); fi
    done < "$2"
    echo "$n files checked through $1, $bad bad"
    [ $bad = 0 ] && [ $n -gt 0 ]
}
public_ip_on() { ctdb ip | grep -q "^$PUBLIC_IP $1\$"; }
send_file() { n=120; until nc -w 3 "$PEER_FEN" "$2" < "$1"; do sleep 1; n=$((n-1)); [ $n = 0 ] && return 1; done; }
recv_file() { timeout "${3:-300}" nc -l -p "$2" > "$1" </dev/null && [ -s "$1" ]; }

# ---------------- common start of every boot ------------------------------------------------------
ip addr add "$MY_FEN/24" dev eth0
echo "INFO: node$ME boot $BOOT ip=$(ip -4 -o addr show eth0 | awk '{print $4}' | tr '\n' ' ') kernel=$(uname -r)"
must "Samba, CTDB, smbclient unpacked" install_samba
must "peer $PEER_FEN reachable on the second network (ping)" wait_for 120 ping -c1 -W1 "$PEER_FEN"
write_lvm_conf
write_resource
write_ctdb_samba_conf
mkdir -p /mnt/gfs2

if [ "$ME" = 1 ] && [ "$BOOT" = 2 ]; then
    # ================= node1 comes back ==========================================================
    must "repd up r0 (metadata from before the crash)" $REPD up r0
    must "Connected to node2" wait_for 180 has '"connection-state":"Connected"'
    must "resynced: UpToDate/UpToDate" wait_for 300 both_uptodate
    grep -E 'sync decision|resync finished|crashed|activity log' /run/repd/r0.log | tail -4 | sed "s/^/INFO: node1: log: /"
    phase "rejoin: up, connect, resync"
    must "barrier 20 (node1 back in sync)" barrier 20
    must "repd primary r0" $REPD primary r0
    start_corosync_dlm
    must "activate $VG" sh -c "pvscan --cache >/dev/null 2>&1; vgscan --mknodes >/dev/null 2>&1; vgchange -ay $VG"
    must "mount gfs2 again" mount -t gfs2 "/dev/$VG/$LV" /mnt/gfs2
    phase "rejoin: primary, corosync + dlm, mount"
    start_ctdb_smbd all
    phase "rejoin: CTDB + Samba"
    must "barrier 21 (both serving)" barrier 21
    must "receive node2's file lists" recv_file /tmp/away.list 7201 120
    recv_file /tmp/ledger.list 7202 60
    step "node1's Samba serves the file node2 wrote while node1 was away" smb_check_files "$MY_IP" /tmp/away.list
    step "node1's Samba serves every file of the failover ledger" smb_check_files "$MY_IP" /tmp/ledger.list
    step "CTDB: both nodes OK" ctdb nodestatus all
    ctdb status 2>&1 | grep pnn | sed "s/^/INFO: node1: ctdb: /"
    must "barrier 22 (rejoin checked)" barrier 22
    phase "rejoin: files through node1's Samba"
else
    # ================= first boot: build the stack ===============================================
    must "static repd runs here" $REPD --version
    must "repd create-md r0" $REPD create-md r0
    must "repd up r0 (attaches /dev/drbd1)" $REPD up r0
    must "/dev/drbd1 -> /dev/nbd1 by the kernel nbd driver" sh -c "[ \"\$(readlink /dev/drbd1)\" = nbd1 ] && [ -b /dev/nbd1 ]"
    must "Connected to the peer" wait_for 180 has '"connection-state":"Connected"'
    # Both disks are new and zero: no initial sync needed (Docs/QuickStart.md).
    [ "$ME" = 1 ] && must "new-current-uuid --clear-bitmap" $REPD new-current-uuid --clear-bitmap r0
    must "UpToDate/UpToDate" wait_for 120 both_uptodate
    must "barrier 1 (in sync)" barrier 1
    must "repd primary r0" $REPD primary r0
    must "peer Primary too" wait_for 60 has '"peer-role":"Primary"'
    phase "repd: up, connect, both Primary"
    start_corosync_dlm
    phase "corosync + dlm"
    if [ "$ME" = 1 ]; then
        must "pvcreate + vgcreate + lvcreate on $DEV" sh -c "pvcreate -ff -y $DEV && vgcreate -y $VG $DEV && lvcreate -y -L 256M -n $LV $VG"
        must "mkfs.gfs2 -p lock_dlm -j 2" mkfs.gfs2 -O -p lock_dlm -j 2 -J 32 -t cluster:fs "/dev/$VG/$LV"
    fi
    must "barrier 2 (fs created)" barrier 2
    [ "$ME" = 2 ] && must "activate $VG on node2 (its own replica)" sh -c "pvscan --cache >/dev/null 2>&1; vgscan --mknodes >/dev/null 2>&1; vgchange -ay $VG"
    must "mount gfs2 lock_dlm" mount -t gfs2 "/dev/$VG/$LV" /mnt/gfs2
    [ "$ME" = 1 ] && must "share and CTDB lock directories on GFS2" sh -c "mkdir -p /mnt/gfs2/.ctdb $SHARE/wr $SHARE/away && chmod 777 $SHARE $SHARE/wr $SHARE/away && echo $MARKER > /mnt/gfs2/marker && sync"
    must "barrier 3 (both mounted)" barrier 3
    phase "LVM + mkfs.gfs2 + mount"
    start_ctdb_smbd all
    must "barrier 4 (both serving)" barrier 4
    phase "CTDB + Samba"

    # ---- clients through each node's own Samba ----------------------------------------------
    mkdir -p /tmp/mine; : > /tmp/mine.list
    write_mine() {
        i=0; while [ $i -lt 10 ]; do
            dd if=/dev/urandom of=/tmp/mine/n$ME-$i bs=64k count=4 2>/dev/null || return 1
            smb "$MY_IP" "put /tmp/mine/n$ME-$i n$ME-$i" || { echo "put n$ME-$i failed"; return 1; }
            echo "n$ME-$i $(sha256sum < /tmp/mine/n$ME-$i | cut -d' ' -f1)" >> /tmp/mine.list; i=$((i+1))
        done
    }
    must "10 files of 256 KiB written through node$ME's Samba ($MY_IP)" write_mine
    if [ "$ME" = 1 ]; then send_file /tmp/mine.list 7101; recv_file /tmp/theirs.list 7102 120
    else recv_file /tmp/theirs.list 7101 120; send_file /tmp/mine.list 7102; fi
    must "barrier 5 (written)" barrier 5
    step "node$other's files read back through node$ME's Samba" smb_check_files "$MY_IP" /tmp/theirs.list
    must "barrier 6 (read across)" barrier 6
    phase "files across the two Sambas"

    # ---- the public address on node1; node2's client writes through it; node1 is killed -----
    if [ "$ME" = 1 ]; then
        public_ip_on 0 || must "ctdb moveip $PUBLIC_IP to node1" ctdb moveip "$PUBLIC_IP" 0
    fi
    must "public address $PUBLIC_IP on node1 (pnn 0)" wait_for 60 public_ip_on 0
    must "barrier 7 (address on node1)" barrier 7
    if [ "$ME" = 1 ]; then
        echo "INFO: node1: serving $PUBLIC_IP; waiting for the host to kill this guest"
        sleep 300
        echo "FAIL: node1: still alive 300 s after node2's writes started (the host never killed it)"
        exit 1
    fi
fi

if [ "$ME" = 2 ]; then
    # ================= node2: the client through the public address, node1's death ==============
    mkdir -p /tmp/w; : > /tmp/ledger; : > /tmp/ledger.list; rm -f /tmp/stop
    writer() {  # each completed put: "index sha256 uptime" in the ledger
        i=0; fails_w=0
        while [ ! -e /tmp/stop ] && [ $i -lt 400 ]; do
            dd if=/dev/urandom of=/tmp/w/f$i bs=64k count=1 2>/dev/null
            if smb "$PUBLIC_IP" "put /tmp/w/f$i wr/f$i"; then
                s=$(sha256sum < /tmp/w/f$i | cut -d' ' -f1)
                echo "$i $s $(up)" >> /tmp/ledger; echo "wr/f$i $s" >> /tmp/ledger.list
            else fails_w=$((fails_w+1)); echo "$i $(up)" >> /tmp/failed; sleep 1; fi
            i=$((i+1)); rm -f /tmp/w/f$((i-1))
        done
    }
    W0=$(json_num written)
    writer & WPID=$!
    wait_for 120 sh -c '[ $(wc -l < /tmp/ledger) -ge 10 ]'
    echo "INFO: node2: KILL-NODE1-NOW ($(wc -l < /tmp/ledger) files written through $PUBLIC_IP)"
    T_KILL=$(up)
    must "node2 loses node1 (replication link)" wait_for 120 sh -c "! $REPD status r0 --json | tr -d ' \n' | grep -q '\"connection-state\":\"Connected\"'"
    echo "INFO: node2: repd lost the peer $(since "$T_KILL")s after the kill signal"
    KIB_AT_LOSS=$(json_num written)
    must "fencing resolved: node2 UpToDate, I/O resumed" wait_for 180 sh -c "$REPD status r0 --json | tr -d ' \n' | grep -q '\"disk-state\":\"UpToDate\"' && ! $REPD status r0 --json | grep -q repd-suspended && grep -q 'fencing done' /run/repd/r0.log"
    grep -E 'fence-peer|fencing' /run/repd/r0.log | tail -3 | sed "s/^/INFO: node2: log: /"
    echo "INFO: node2: fencing resolved $(since "$T_KILL")s after the kill signal"
    must "corosync: node1 gone, still quorate (two_node)" wait_for 120 sh -c "corosync-quorumtool -s | grep -qE 'Total votes: *1' && corosync-quorumtool -s | grep -q 'Quorate: *Yes'"
    must "CTDB: the public address moved to node2 (pnn 1)" wait_for 240 public_ip_on 1
    T_TAKE=$(up)
    echo "INFO: node2: CTDB took $PUBLIC_IP $(since "$T_KILL")s after the kill signal"
    ctdb status 2>&1 | grep pnn | sed "s/^/INFO: node2: ctdb: /"
    L0=$(wc -l < /tmp/ledger)
    step "the client writes on through $PUBLIC_IP (10 more files)" wait_for 180 sh -c "[ \$(wc -l < /tmp/ledger) -ge $((L0 + 10)) ]"
    touch /tmp/stop
    wait_for 60 sh -c "! kill -0 $WPID"; wait $WPID
    echo "INFO: node2: client ledger: $(wc -l < /tmp/ledger) puts completed ($L0 before the takeover), $(cat /tmp/failed 2>/dev/null | wc -l) failed or cut off by the kill"
    # the file a client writes while node1 is away, for node1 to serve when it is back
    write_away() {
        dd if=/dev/urandom of=/tmp/away.bin bs=1M count=8 2>/dev/null && smb "$PUBLIC_IP" "put /tmp/away.bin away/away.bin" &&
            echo "away/away.bin $(sha256sum < /tmp/away.bin | cut -d' ' -f1)" > /tmp/away.list
    }
    must "8 MiB written through $PUBLIC_IP while node1 is away" write_away
    step "every completed put of the ledger reads back through $PUBLIC_IP (node2)" smb_check_files "$PUBLIC_IP" /tmp/ledger.list
    cat /tmp/mine.list /tmp/theirs.list > /tmp/first.list
    step "the first 20 files (both Sambas) read back through $PUBLIC_IP" smb_check_files "$PUBLIC_IP" /tmp/first.list
    APP_AWAY=$(awk -v t="$T_KILL" '$3 >= t' /tmp/ledger | wc -l)
    KIB_AWAY=$(( $(json_num written) - KIB_AT_LOSS ))
    echo "INFO: node2: while node1 was away: $KIB_AWAY KiB written to node2's disk ($APP_AWAY files of 64 KiB and 8 MiB through Samba, plus GFS2's journal and metadata); out-of-sync $(json_num out-of-sync) KiB"
    phase "node1 killed: fencing, CTDB failover, client goes on"
    echo "INFO: node2: NODE1-MAY-BOOT"
    must "barrier 20 (node1 back in sync)" barrier 20 900
    grep -E 'sync decision|resync finished' /run/repd/r0.log | tail -2 | sed "s/^/INFO: node2: log: /"
    step "no split brain" sh -c "! grep -qi 'split brain' /run/repd/r0.log"
    must "barrier 21 (both serving)" barrier 21 900
    send_file /tmp/away.list 7201; send_file /tmp/ledger.list 7202
    step "CTDB: both nodes OK" wait_for 120 ctdb nodestatus all
    must "barrier 22 (rejoin checked)" barrier 22
    phase "node1 back: resync, rejoin"
fi

# ================= both: stop the services, fsck, down ===========================================
step "stop smbd" sh -c 'kill $(pidof smbd) 2>/dev/null; true'
must "barrier 30 (smbd stopped)" barrier 30
step "ctdb shutdown" sh -c 'ctdb shutdown; wait_n=30; while pidof ctdbd >/dev/null && [ $wait_n -gt 0 ]; do sleep 1; wait_n=$((wait_n-1)); done; ! pidof ctdbd'
must "umount" umount /mnt/gfs2
must "barrier 31 (both unmounted)" barrier 31
if [ "$ME" = 1 ]; then step "fsck.gfs2 -n" fsck.gfs2 -n "/dev/$VG/$LV"; fi
step "vgchange -an" vgchange -an "$VG"
p=$(pidof dlm_controld) && kill $p 2>/dev/null; corosync-cfgtool -H >/dev/null 2>&1
must "barrier 32 (released)" barrier 32
step "Connected/UpToDate/UpToDate, out-of-sync 0 before down" sh -c "$REPD status r0 --json | tr -d ' \n' | grep -q '\"out-of-sync\":0,' && $REPD status r0 --json | tr -d ' \n' | grep -q '\"peer-disk-state\":\"UpToDate\"'"
must "barrier 33 (before down)" barrier 33
must "repd down r0" $REPD down r0
phase "stop services, fsck, down"
echo "TIME: node$ME: total $(since "$T_START")s"
[ $fails = 0 ] || dump_logs
[ $fails = 0 ] && echo "PASS: node$ME: all steps" || echo "FAIL: node$ME: $fails step(s) failed"
exit $fails
