#!/usr/bin/env bash
# `repd up` gives the node its block device (issue 15), on this machine:
# the kernel's nbd driver where there is one, else nbdfuse + a loop device.
#  (a) up + primary --force: the resource's `device` path (/dev/drbdN) is a
#      link to the kernel device, plus /dev/repd/by-res/RES; status (text
#      and JSON) names the method; then, with no other command by hand:
#      pvcreate /dev/drbdN, vgcreate, vgs (lvcreate + mkfs on the LV where
#      device-mapper exists; here mkfs.ext4 on /dev/drbdN), mount, a file;
#  (b) `secondary` and `down` are refused while it is mounted, naming the
#      mount; after umount a Secondary's device is read-only (writes fail,
#      mount is read-only), promotion makes it writable and the file reads
#      back;
#  (c) `down` removes the device, its links, the FUSE mount, nbdfuse, the
#      loop device: nothing is left behind;
#  (d) kill -9 of the daemon leaves stale links: the next `up` removes
#      them, and so does `down` of the dead resource;
#  (e) `repd up` on a backing disk that carries an LVM PV visible to LVM
#      prints the warning (and `device none;` attaches nothing).
source "$(dirname "$0")/lib.sh"

require_root
require_tool losetup pvcreate vgcreate vgs vgremove pvremove mkfs.ext4 mount umount blockdev blkdiscard sha256sum dd
if [ ! -e /sys/module/nbd ]; then
    require_dev /dev/fuse /dev/loop-control
    require_tool nbdfuse
    grep -qw fuse /proc/filesystems || missing "kernel has neither nbd nor FUSE"
    METHOD="nbdfuse+loop"
else
    METHOD="kernel nbd"
fi
export LVM_SUPPRESS_FD_WARNINGS=1

# A device path nobody else on a shared machine uses.
N=$((200 + $$ % 700))
DEV=/dev/drbd$N
RESNAME=dev$N
for p in "$DEV" "/dev/repd/by-res/$RESNAME"; do
    [ ! -e "$p" ] && [ ! -L "$p" ] || skip "$p already exists"
    add_devlink "$p"
done

# ---- (a) up: the device, its links, status ------------------------------------------
SINGLE_NODE_DEVICE=$DEV start_single_node "$RESNAME" 256M
SIZE=$(repd_usable_size) || fail "no usable size"
repd_status_json || fail "repd status --json failed"
TARGET=$(json_query "$T/status.json" 'j[0]["devices"][0]["repd-device"]["target"]') ||
    { show_file "$T/status.json" 40 >&2; fail "status --json has no repd-device"; }
GOT_METHOD=$(json_query "$T/status.json" 'j[0]["devices"][0]["repd-device"]["method"]')
[ "$GOT_METHOD" = "$METHOD" ] || fail "method is '$GOT_METHOD', expected '$METHOD'"
[ "$(json_query "$T/status.json" 'j[0]["devices"][0]["repd-device"]["read-only"]')" = false ] ||
    fail "a Primary's device is read-only"
[ -b "$TARGET" ] || fail "$TARGET is not a block device"
KNAME=$(basename "$TARGET")
[ "$(readlink "$DEV")" = "$KNAME" ] || fail "$DEV -> '$(readlink "$DEV")', expected $KNAME"
[ "$(readlink "/dev/repd/by-res/$RESNAME")" = "../../$KNAME" ] || fail "/dev/repd/by-res/$RESNAME -> '$(readlink "/dev/repd/by-res/$RESNAME")'"
[ "$(blockdev --getsize64 "$DEV")" = "$SIZE" ] || fail "$DEV has $(blockdev --getsize64 "$DEV") bytes, the export $SIZE"
timeout 30 "$REPD" status "$RESNAME" >"$T/status.txt" 2>&1 || true
grep -qF "# device:$DEV -> $TARGET ($METHOD)" "$T/status.txt" || { show_file "$T/status.txt" >&2; fail "status text does not name the device"; }
pass "up: $DEV -> $TARGET ($METHOD), /dev/repd/by-res/$RESNAME, $SIZE bytes; status: $(grep 'device:' "$T/status.txt" | sed 's/^ *# //')"
# A discard of the whole device reaches the daemon in pieces that fit the activity log.
DMAX=$(cat "/sys/block/$KNAME/queue/discard_max_bytes")
[ "$DMAX" -gt 0 ] && [ "$DMAX" -le $((32 << 20)) ] || fail "discard_max_bytes of $KNAME is $DMAX, expected 1..32 MiB"
run_logged blkdiscard timeout 60 blkdiscard "$DEV"
pass "blkdiscard of all of $DEV (discard_max_bytes $DMAX)"
checkpoint device-up

VG="repddev_$$"
run_logged pvcreate pvcreate "$DEV"
add_pv "$DEV"
run_logged vgcreate vgcreate "$VG" "$DEV"
add_vg "$VG" "$DEV"
run_logged vgs vgs --noheadings -o vg_name,pv_count "$VG"
[ "$(awk -v vg="$VG" '$1 == vg {print $2}' "$T/vgs.out")" = 1 ] || { show_file "$T/vgs.out" >&2; fail "vgs does not show $VG"; }
if grep -qw device-mapper /proc/devices; then
    run_logged lvcreate lvcreate -y -L 64M -n data "$VG"
    FSDEV=/dev/$VG/data
    what="pvcreate $DEV, vgcreate, lvcreate; mkfs.ext4 on the LV"
else
    # No device-mapper in this kernel: no LV; the file system goes on the device itself.
    run_logged vgremove vgremove -f "$VG"
    del_vg "$VG" "$DEV"
    run_logged pvremove pvremove -y "$DEV"
    del_pv "$DEV"
    FSDEV=$DEV
    what="pvcreate $DEV, vgcreate, vgs, vgremove (no device-mapper here, so no LV); mkfs.ext4 on $DEV"
fi
mkdir -p "$T/fs"
run_logged mkfs mkfs.ext4 -q -F "$FSDEV"
run_logged mount mount "$FSDEV" "$T/fs"
add_mount "$T/fs"
head -c $((4 << 20)) /dev/urandom >"$T/fs/file"
sync
SUM=$(sha256sum <"$T/fs/file")
pass "$what; mounted, 4 MiB file written"
checkpoint mounted

# ---- (b) in use: secondary and down refused; a Secondary's device is read-only -------------
refused() {  # VERB: must fail and name the mount
    local out rc=0
    out=$(timeout 60 "$REPD" "$1" "$RESNAME" 2>&1) || rc=$?
    [ "$rc" -ne 0 ] || fail "'repd $1' succeeded while $DEV is mounted"
    [[ $out == *"mounted on $T/fs"* ]] || fail "'repd $1' refused without naming the mount: $out"
    echo "$out"
}
msg=$(refused secondary)
[ "$(repd_role)" = Primary ] || fail "still Primary after the refused secondary"
refused down >/dev/null
pid_alive "$(daemon_pid)" || fail "the daemon went down although down was refused"
pass "secondary and down refused while mounted: ${msg#repd: }"
[ -z "$(ls -A "$T/fs/lost+found" 2>/dev/null)" ] || true
run_logged umount umount "$T/fs"
del_mount "$T/fs"
run_logged secondary timeout 60 "$REPD" secondary "$RESNAME"
[ "$(blockdev --getro "$DEV")" = 1 ] || fail "a Secondary's $DEV is not read-only"
if dd if=/dev/zero of="$DEV" bs=4096 count=1 conv=fsync status=none 2>"$T/dd.err"; then fail "a write to the Secondary's $DEV succeeded"; fi
run_logged mount-ro mount -o ro "$FSDEV" "$T/fs"
add_mount "$T/fs"
[ "$(sha256sum <"$T/fs/file")" = "$SUM" ] || fail "the file reads back wrong through a Secondary's device"
run_logged umount-ro umount "$T/fs"
del_mount "$T/fs"
run_logged primary timeout 60 "$REPD" primary "$RESNAME"
[ "$(blockdev --getro "$DEV")" = 0 ] || fail "a Primary's $DEV is read-only"
run_logged mount-again mount "$FSDEV" "$T/fs"
add_mount "$T/fs"
[ "$(sha256sum <"$T/fs/file")" = "$SUM" ] || fail "the file reads back wrong after secondary/primary"
run_logged umount-again umount "$T/fs"
del_mount "$T/fs"
if [ "$FSDEV" != "$DEV" ]; then
    run_logged vgchange-an vgchange -an "$VG"
fi
pass "Secondary: $DEV read-only (write refused: $(head -c 80 "$T/dd.err" | tr '\n' ' ')), read-only mount reads the file; Primary again: writable, file intact"

# ---- (c) down: nothing left behind ---------------------------------------------------------
nothing_left() {  # CONTEXT
    local what=()
    [ ! -e "$DEV" ] && [ ! -L "$DEV" ] || what+=("$DEV")
    [ ! -L "/dev/repd/by-res/$RESNAME" ] || what+=("/dev/repd/by-res/$RESNAME")
    losetup -a 2>/dev/null | grep -qF "$T/" && what+=("loop device: $(losetup -a | grep -F "$T/")")
    grep -qF " $T/" /proc/mounts && what+=("mount: $(grep -F " $T/" /proc/mounts)")
    pgrep -f "nbdfuse.*$T/" >/dev/null && what+=("nbdfuse: $(pgrep -af "nbdfuse.*$T/")")
    [ ! -e "$REPD_RUN_DIR/$RESNAME.device" ] || what+=("$REPD_RUN_DIR/$RESNAME.device")
    if [ "$METHOD" = "kernel nbd" ] && [ "$(blockdev --getsize64 "$TARGET" 2>/dev/null || echo 0)" != 0 ]; then what+=("$TARGET still connected"); fi
    [ "${#what[@]}" -eq 0 ] || fail "$1: left behind: ${what[*]}"
}
if [ "$FSDEV" != "$DEV" ]; then
    run_logged vgremove2 vgremove -f "$VG"
    del_vg "$VG" "$DEV"
    run_logged pvremove2 pvremove -y "$DEV"
    del_pv "$DEV"
fi
PID=$(daemon_pid)
run_logged down timeout 60 "$REPD" down "$RESNAME"
wait_for "daemon pid $PID to exit" 300 0.1 pid_dead "$PID" || fail "the daemon did not exit after down"
nothing_left "after down"
pass "down: $DEV, /dev/repd/by-res/$RESNAME, the $METHOD device and its helpers are gone"

# ---- (d) after kill -9 -------------------------------------------------------------------
up_again() {
    run_logged "up-$1" _nofds timeout 120 "$REPD" up "$RESNAME"
    [ "$(readlink "$DEV")" != "" ] || fail "$1: no $DEV after up"
}
kill9() {
    local pid
    pid=$(daemon_pid)
    kill -KILL "$pid"
    wait_for "pid $pid to die" 100 0.1 pid_dead "$pid" || fail "pid $pid survived kill -9"
}
up_again crash1
kill9
[ -L "$DEV" ] || fail "kill -9 left no stale link to test with"
up_again after-crash
grep -q "after an unclean stop: removed the stale link $DEV" "$REPD_RUN_DIR/$RESNAME.log" ||
    { show_file "$REPD_RUN_DIR/$RESNAME.log" 20 >&2; fail "the next up did not say it removed the stale link"; }
[ -b "$(readlink -f "$DEV")" ] || fail "after the crash and up: $DEV is not a block device"
kill9
run_logged down-dead timeout 60 "$REPD" down "$RESNAME"
grep -q "removed the stale link $DEV" "$T/down-dead.out" || { show_file "$T/down-dead.out" >&2; fail "down of the dead resource did not remove $DEV"; }
wait_for "nothing left after down of a dead resource" 50 0.1 sh -c "! pgrep -f 'nbdfuse.*$T/' && ! grep -qF ' $T/' /proc/mounts" || true
nothing_left "after kill -9 and down"
pass "kill -9: the next up removes the stale links and attaches anew; down of the dead resource removes what it left: $(tr '\n' ';' <"$T/down-dead.out")"

# ---- (e) an LVM PV on the backing disk, visible to LVM -------------------------------------
truncate -s 64M "$T/w/pv.img"
truncate -s 16M "$T/w/pv.md"
PVLOOP=$(losetup -f --show "$T/w/pv.img") || fail "losetup of the PV image failed"
add_loop "$PVLOOP"
run_logged pvcreate-backing pvcreate --devices "$PVLOOP" -y "$PVLOOP"
add_pv "$PVLOOP"
cat >"$REPD_CONFIG_DIR/pv$N.res" <<EOF
resource pv$N {
  on alpha { device none; disk $PVLOOP; address 127.0.0.1:$PORT; meta-disk $T/w/pv.md; }
  on beta  { device none; disk $T/w/beta.img; address 127.0.0.2:$PORT; meta-disk $T/w/beta.md; }
}
EOF
run_logged create-md-pv timeout 60 "$REPD" create-md "pv$N"
rc=0
_nofds timeout 120 "$REPD" up "pv$N" >"$T/up-pv.out" 2>&1 </dev/null || rc=$?
RES=pv$N                          # cleanup brings it down
[ "$rc" -eq 0 ] || { show_file "$T/up-pv.out" >&2; fail "up pv$N failed (exit $rc)"; }
grep -q "warning: the backing disk $PVLOOP carries an LVM physical volume that LVM sees" "$T/up-pv.out" ||
    { show_file "$T/up-pv.out" >&2; fail "no LVM warning from up"; }
grep -q "global_filter" "$T/up-pv.out" || fail "the warning does not say how to filter"
run_logged down-pv timeout 60 "$REPD" down "pv$N"
RES=""
pass "up warns about the PV on the backing disk: $(grep -o 'warning: .*' "$T/up-pv.out" | head -c 160)..."
