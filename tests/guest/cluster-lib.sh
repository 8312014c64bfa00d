# Shared by the two-guest scenarios (tests/guest/repd-gfs2.sh, tests/guest/repd-ctdb.sh); sourced
# from /data/cluster-lib.sh under busybox sh. Needs NODE_ID (1|2), NODE1_IP, NODE2_IP, GUEST_IP.
# Every line starting with PASS/FAIL/INFO/TIME goes to the host; TIME lines carry each phase's
# guest-side duration.
ME=$NODE_ID; if [ "$ME" = 1 ]; then PEER_IP=$NODE2_IP; else PEER_IP=$NODE1_IP; fi
other=$((3 - ME))
# A second network on the same link for corosync/dlm, CTDB, the barriers and repd's fencing path.
FEN1=192.168.78.1; FEN2=192.168.78.2
if [ "$ME" = 1 ]; then MY_FEN=$FEN1; PEER_FEN=$FEN2; else MY_FEN=$FEN2; PEER_FEN=$FEN1; fi
MY_IP=$(echo "$GUEST_IP" | cut -d/ -f1)
VG=repdvg; LV=gfs2lv; DEV=/dev/drbd1; BACKING=/dev/vda
export LD_LIBRARY_PATH=/data
export PATH=/data:$PATH
REPD=/data/repd
fails=0
up() { cut -d' ' -f1 /proc/uptime; }
T_START=$(up)
since() { awk -v a="$1" -v b="$(up)" 'BEGIN{printf "%.1f", b-a}'; }
step() {
    name=$1; shift; t0=$(up); out=$("$@" 2>&1); rc=$?
    dt=$(since "$t0")
    if [ $rc = 0 ]; then echo "PASS: node$ME: $name (${dt}s)"; else
        echo "FAIL: node$ME: $name (rc=$rc, ${dt}s)"; echo "$out" | tail -15 | sed 's/^/    /'; fails=$((fails+1)); fi
    return $rc
}
EXTRA_LOGS=
dump_logs() {
    for f in /run/repd/r0.log /tmp/corosync.log /tmp/dlm_controld.log $EXTRA_LOGS; do
        [ -f $f ] && { echo "---- node$ME $f"; tail -30 $f | sed 's/^/    /'; }
    done
    $REPD status r0 2>&1 | sed "s/^/    node$ME status: /"
    dmesg | grep -iE 'nbd|dlm|gfs2|block' | tail -25 | sed "s/^/    node$ME dmesg: /"
}
must() { step "$@" || { echo "FAIL: node$ME: aborting after '$1'"; dump_logs; exit 1; }; }
wait_for() { n=$1; shift; while [ "$n" -gt 0 ]; do "$@" >/dev/null 2>&1 && return 0; sleep 1; n=$((n-1)); done; return 1; }
PHASE_T0=$(up)
phase() { echo "TIME: node$ME: $1 $(since "$PHASE_T0")s"; PHASE_T0=$(up); }
# Symmetric two-node barrier over the second network (busybox nc). BARRIER_WAIT bounds it in
# seconds (a node that reboots in between needs longer than the default).
barrier() {
    k=$1; bw=${2:-600}
    if [ "$ME" = 1 ]; then lport=$((6000+k)); rport=$((5000+k)); else lport=$((5000+k)); rport=$((6000+k)); fi
    timeout "$bw" nc -l -p $lport </dev/null >/tmp/barrier.$k 2>/dev/null & lp=$!
    n=$bw; until echo "node$ME-$k" | nc -w 2 "$PEER_FEN" $rport 2>/dev/null; do sleep 1; n=$((n-1)); [ $n = 0 ] && break; done
    wait $lp; rc=$?
    [ $rc = 0 ] && [ -s /tmp/barrier.$k ]
}
status_json() { $REPD status r0 --json 2>/dev/null | tr -d ' \n'; }
has() { status_json | grep -q "$1"; }
json_num() { status_json | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" | head -1; }
both_uptodate() { has '"disk-state":"UpToDate"' && has '"peer-disk-state":"UpToDate"'; }
connected_in_sync() { has '"connection-state":"Connected"' && both_uptodate; }

# LVM scans the replicated device, never the backing disk (Docs/BlockDevice.md: the backing disk
# carries the same PV label).
write_lvm_conf() {
    cat > /etc/lvm/lvm.conf <<'LVMCONF'
devices {
    global_filter = [ "r|^/dev/vda|" ]
    obtain_device_list_from_udev = 0
    external_device_info_source = "none"
    use_devicesfile = 0
    multipath_component_detection = 0
    md_component_detection = 0
}
activation {
    udev_sync = 0
    udev_rules = 0
    verify_udev_operations = 0
    monitoring = 0
}
global {
    use_lvmpolld = 0
    event_activation = 0
}
backup {
    backup = 0
    archive = 0
}
LVMCONF
}

# The resource both scenarios run: dual-primary, protocol C, resource-and-stonith fencing with
# repd's fence-peer handler over the second network.
write_resource() {
    mkdir -p /etc/repd/resources.d
    cat > /etc/repd/resources.d/r0.res <<RES
resource r0 {
    net {
        protocol C;
        allow-two-primaries;
        cram-hmac-alg sha256;
        shared-secret "guest-test";
        connect-int 1;
        ping-int 2;
        ping-timeout 20;
        timeout 100;
    }
    disk { fencing resource-and-stonith; c-max-rate 400M; c-fill-target 8M; c-min-rate 20M; }
    handlers { fence-peer "$REPD fence-peer-outdate"; }
    device /dev/drbd1;
    disk /dev/vda;
    meta-disk internal;
    on node1 { address $NODE1_IP:7789; fence-address $FEN1:7790; node-id 0; }
    on node2 { address $NODE2_IP:7789; fence-address $FEN2:7790; node-id 1; }
}
RES
}

# corosync (knet on the second network, two_node quorum) and dlm_controld without fencing: here
# the host's kill of a guest, or the scenario itself, plays the STONITH.
start_corosync_dlm() {
    mkdir -p /etc/corosync /var/lib/corosync /var/log/cluster /etc/dlm /dev/misc
    cat > /etc/corosync/corosync.conf <<CONF
totem {
    version: 2
    cluster_name: cluster
    transport: knet
    crypto_cipher: none
    crypto_hash: none
    token: ${COROSYNC_TOKEN:-10000}
}
nodelist {
    node {
        ring0_addr: $FEN1
        nodeid: 1
        name: node1
    }
    node {
        ring0_addr: $FEN2
        nodeid: 2
        name: node2
    }
}
quorum {
    provider: corosync_votequorum
    two_node: 1
}
logging {
    to_stderr: no
    to_syslog: no
    to_logfile: yes
    logfile: /tmp/corosync.log
    timestamp: on
}
CONF
    must "start corosync" corosync
    must "cluster quorate (2 nodes)" wait_for 180 sh -c "corosync-quorumtool -s | grep -q 'Quorate: *Yes' && corosync-quorumtool -s | grep -qE 'Total votes: *2'"
    for d in dlm-control dlm-monitor dlm_plock; do [ -e /dev/$d ] && ln -sf ../$d /dev/misc/$d; done
    cat > /etc/dlm/dlm.conf <<CONF
enable_fencing=0
enable_startup_fencing=0
enable_quorum_fencing=0
CONF
    must "start dlm_controld" sh -c 'dlm_controld > /tmp/dlm_controld.log 2>&1 &'
    must "dlm_controld ready" wait_for 120 sh -c 'dlm_tool status 2>&1 | grep -q "cluster nodeid"'
}
