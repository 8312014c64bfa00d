#!/usr/bin/env bash
# Online resize (issue 17, part 2) on a real pair, under a running fio workload:
#  - both 1 GiB backing files grow to 2 GiB while fio writes through alpha
#    (Primary); `repd resize` on alpha alone keeps the replicated size (the
#    peer has not grown) and says so; on beta too: the size grows, nbdinfo
#    reports 2 GiB to a new connection, and the new half is resynced from
#    alpha (its bytes sent);
#  - a PV made on the export through nbdfuse + losetup before the resize is
#    grown by `pvresize` after it (new nbdfuse connection, `losetup -c`);
#  - a second resize with nothing grown is refused with the reason; the
#    replicas are identical byte for byte;
#  - both disks grown to 3 GiB while the resource is down: `repd up` says so
#    and keeps the agreed 2 GiB; `resize --assume-clean` on both grows it
#    with no resync; the replicas are identical.
# run-all-timeout: 300
source "$(dirname "$0")/lib.sh"

[ -z "$STANDIN" ] || skip "needs repd"
require_root
require_tool fio nbdinfo nbdfuse losetup pvcreate pvresize pvs cmp truncate fusermount3
fio --enghelp=nbd >/dev/null 2>&1 || missing "this fio has no nbd ioengine"

export TWO_NODE_DISK="c-plan-ahead 0; resync-rate 400M;"
start_two_nodes r0 1G
initial_sync
size_of() { nbdinfo --size "$(node_uri "$1")"; }
[ "$(size_of alpha)" = $((1 << 30)) ] || fail "alpha exports $(size_of alpha) bytes before the resize"

# ---- a PV on the export through nbdfuse + loop ----------------------------------------------
MNT="$T/fuse"
mkdir -p "$MNT"
fuse_up() {
    nbdfuse "$MNT/disk" "$ALPHA_URI" >"$T/nbdfuse.log" 2>&1 </dev/null 8>&- 9>&- &
    FUSE_PID=$!
    add_fuse "$MNT" "$FUSE_PID"
    wait_for "nbdfuse" 100 0.1 test -f "$MNT/disk" || { cat "$T/nbdfuse.log" >&2; fail "nbdfuse did not come up"; }
}
fuse_down() {
    fusermount3 -u "$MNT" 2>/dev/null || umount "$MNT" 2>/dev/null || true
    wait_for "nbdfuse to exit" 50 0.1 pid_dead "$FUSE_PID" || kill_pid "$FUSE_PID"
    del_fuse "$MNT" "$FUSE_PID"
}
fuse_up
LOOP=$(losetup -f --show "$MNT/disk") || fail "losetup failed"
add_loop "$LOOP"
run_logged pvcreate pvcreate -ff -y "$LOOP"
add_pv "$LOOP"
pv_size() { pvs --noheadings --units b --nosuffix -o pv_size "$LOOP" 2>/dev/null | tr -d ' '; }
before_pv=$(pv_size)

# ---- grow both backing files under fio ---------------------------------------------------------
fio_start load 120 "$ALPHA_URI" --rw=randwrite --bs=4k --size=128M --offset=64M --iodepth=8 --time_based --runtime=12
sleep 2
truncate -s 2G "$ALPHA_DISK" "$BETA_DISK"
rc=0
repd_node alpha resize >"$T/resize-alpha.out" 2>&1 </dev/null || rc=$?
[ "$rc" = 0 ] || { cat "$T/resize-alpha.out" >&2; fail "repd resize on alpha failed ($rc)"; }
grep -q "the replicated size stays $((1 << 30)) bytes until the peer's disk has grown too" "$T/resize-alpha.out" ||
    { cat "$T/resize-alpha.out" >&2; fail "resize on alpha alone: no word that the peer has to grow too"; }
[ "$(size_of alpha)" = $((1 << 30)) ] || fail "the export grew before the peer did: $(size_of alpha)"
sent_before=$(repd_node alpha status --json 2>/dev/null </dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["connections"][0]["peer_devices"][0]["sent"])')
log_at=$(node_log_size alpha)
repd_node beta resize >"$T/resize-beta.out" 2>&1 </dev/null || { cat "$T/resize-beta.out" >&2; fail "repd resize on beta failed"; }
grep -q "resized: $((2 << 30)) bytes replicated" "$T/resize-beta.out" || { cat "$T/resize-beta.out" >&2; fail "resize on beta: no new size"; }
wait_until "alpha to export 2 GiB" 10 0.1 sh -c "[ \"\$(nbdinfo --size '$ALPHA_URI')\" = $((2 << 30)) ]" ||
    fail "alpha's export did not grow: $(size_of alpha)"
[ "$(size_of beta)" = $((2 << 30)) ] || fail "beta's export did not grow: $(size_of beta)"
fio_wait load || fail "fio through alpha failed during the resize"
run_logged wait-sync2 repd_node beta wait-sync --timeout 180
node_log_since alpha "$log_at" | grep -q "resync of the 262144 blocks marked out of sync" || fail "alpha did not resync the grown area"
resync=$(node_log_since alpha "$log_at" | grep "resync finished as SyncSource" | tail -1 | sed 's/.*resync finished/resync finished/')
pass "both disks grown 1 -> 2 GiB under fio: alpha alone kept 1 GiB; after beta, nbdinfo sees $(size_of alpha) bytes on both; $resync"

# ---- the PV sees the new size -------------------------------------------------------------------
losetup -d "$LOOP"
del_loop "$LOOP"
fuse_down
fuse_up
LOOP2=$(losetup -f --show "$MNT/disk") || fail "losetup failed"
add_loop "$LOOP2"
LOOP=$LOOP2
run_logged pvresize pvresize "$LOOP"
after_pv=$(pv_size)
[ "$after_pv" -gt $((2000 << 20)) ] || fail "pvresize: the PV is $after_pv bytes (was $before_pv)"
pass "pvresize through nbdfuse + loop: the PV grew from $before_pv to $after_pv bytes"
run_logged pvremove pvremove -ff -y "$LOOP"
del_pv "$LOOP"
losetup -d "$LOOP"
del_loop "$LOOP"
fuse_down

# ---- refusals, then the replicas --------------------------------------------------------------
rc=0
repd_node alpha resize >"$T/again.out" 2>&1 </dev/null || rc=$?
[ "$rc" = 1 ] && grep -q "nothing to resize" "$T/again.out" || { cat "$T/again.out" >&2; fail "a second resize: expected 'nothing to resize' (exit 1), got $rc"; }
run_logged down-alpha repd_node alpha down
run_logged down-beta repd_node beta down
cmp "$ALPHA_DISK" "$BETA_DISK" || fail "replicas differ after the resize"
pass "a second resize: $(head -1 "$T/again.out"); replicas identical (2 GiB)"

# ---- grown while down; --assume-clean ----------------------------------------------------------
truncate -s 3G "$ALPHA_DISK" "$BETA_DISK"
node_up alpha
grep -q "grew to $((3 << 30)) usable bytes while r0 was down" "$T/up-alpha.out" ||
    { cat "$T/up-alpha.out" >&2; fail "repd up did not notice the disk that grew while down"; }
node_up beta
run_logged wait-connect3 repd_node alpha wait-connect --timeout 30
[ "$(size_of alpha)" = $((2 << 30)) ] || fail "after up the export is $(size_of alpha) bytes, expected the 2 GiB agreed before"
log_at=$(node_log_size alpha)
run_logged resize-clean-alpha repd_node alpha resize --assume-clean
run_logged resize-clean-beta repd_node beta resize --assume-clean
[ "$(size_of alpha)" = $((3 << 30)) ] || fail "after resize --assume-clean on both the export is $(size_of alpha) bytes"
run_logged wait-sync3 repd_node alpha wait-sync --timeout 30
# Only blocks marked before (a clean down marks writes the peer had not confirmed durable yet)
# may be resynced: none of the 262144 blocks of the new area.
# No resync at all is the usual outcome (no "resync finished" line): that counts as 0.
resynced=$(node_log_since alpha "$log_at" |
    awk '/resync finished as SyncSource: [0-9]+ blocks/ { for (i = 1; i < NF; i++) if ($i == "SyncSource:") n += $(i + 1) } END { print n + 0 }')
[ "${resynced:-0}" -lt 64 ] || fail "resize --assume-clean resynced $resynced blocks"
run_logged down-alpha2 repd_node alpha down
run_logged down-beta2 repd_node beta down
cmp "$ALPHA_DISK" "$BETA_DISK" || fail "replicas differ after the offline growth"
pass "grown to 3 GiB while down: up says $(grep -o 'grew to [0-9]* usable bytes' "$T/up-alpha.out"), keeps 2 GiB; resize --assume-clean on both: 3 GiB, ${resynced:-0} blocks resynced (none of the new area); replicas identical"
