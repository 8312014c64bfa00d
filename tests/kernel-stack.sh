#!/usr/bin/env bash
# The kernel block stack on top of the export, without the nbd driver:
#   export --(nbdfuse)--> FUSE file --(losetup)--> /dev/loopN
# (a) LVM: pvcreate + vgcreate + vgs shows it + vgremove + pvremove
#     (lvcreate is impossible here: no device-mapper);
# (b) mkfs.ext4 on the loop device, mount, write a 4 MiB random file, sync,
#     umount, tear the stack down, then read the file back THROUGH THE
#     EXPORT with no kernel stack: nbdcopy to a local image and
#     `debugfs -R 'dump /file OUT'`; sha256 must match.
source "$(dirname "$0")/lib.sh"

require_root
require_dev /dev/fuse /dev/loop-control
require_tool nbdfuse fusermount3 losetup pvcreate vgcreate vgs vgremove pvremove \
    mkfs.ext4 mount umount debugfs e2fsck blockdev nbdcopy nbdinfo sha256sum
grep -qw fuse /proc/filesystems || skip "kernel has no FUSE filesystem"

start_single_node t0 128M
SIZE=$(nbdinfo --size "$NBD_URI")

# ---- export -> FUSE file ----------------------------------------------------
FMNT="$T/fuse"
FFILE="$FMNT/nbd"
mkdir -p "$FMNT" "$T/fs"
nbdfuse -P "$T/nbdfuse.pid" "$FFILE" "$NBD_URI" >"$T/nbdfuse.log" 2>&1 </dev/null 8>&- 9>&- &
NBDFUSE_PID=$!
add_fuse "$FMNT" "$NBDFUSE_PID"
fuse_ready() { [ -s "$T/nbdfuse.pid" ] && _mounted "$FMNT" && [ -f "$FFILE" ]; }
wait_for "nbdfuse mount $FMNT" 150 0.1 fuse_ready || {
    show_file "$T/nbdfuse.log" >&2; fail "nbdfuse did not come up"; }
[ "$(stat -c %s "$FFILE")" = "$SIZE" ] || fail "FUSE file is $(stat -c %s "$FFILE") bytes, export is $SIZE"
pass "nbdfuse exposes the export as $FFILE"
checkpoint fuse-up

# ---- FUSE file -> loop device -----------------------------------------------
LOOP=$(losetup -f --show "$FFILE" 2>"$T/losetup.err") || {
    show_file "$T/losetup.err" >&2; fail "losetup -f --show $FFILE failed"; }
add_loop "$LOOP"
[ -b "$LOOP" ] || fail "losetup returned '$LOOP', not a block device"
[ "$(blockdev --getsize64 "$LOOP")" = "$SIZE" ] || fail "$LOOP size != export size"
pass "loop device $LOOP on the FUSE file"
checkpoint loop-up

# ---- (a) LVM PV/VG -----------------------------------------------------------
# --devices restricts every LVM command to our loop device: no scan of the
# host's disks, no use of a system devices file.
VG="repdtest_$$_$RANDOM"
lvm_() { "$@" --devices "$LOOP"; }

run_logged pvcreate lvm_ pvcreate -ff -y "$LOOP"
add_pv "$LOOP"
run_logged vgcreate lvm_ vgcreate "$VG" "$LOOP"
add_vg "$VG" "$LOOP"
run_logged vgs lvm_ vgs --noheadings -o vg_name,pv_count "$VG"
[ "$(awk -v vg="$VG" '$1 == vg {print $2}' "$T/vgs.out")" = 1 ] ||
    { show_file "$T/vgs.out" >&2; fail "vgs does not show $VG with 1 PV"; }
pass "pvcreate + vgcreate $VG; vgs shows it"
checkpoint vg-up

# The PV label went through loop -> FUSE -> NBD -> daemon: read sector 1 of
# the export on a fresh NBD connection (no kernel in the way).
run_logged label nbdcopy "$NBD_URI" "$T/head.img"
dd if="$T/head.img" bs=512 skip=1 count=1 status=none | head -c 8 | grep -q LABELONE ||
    fail "LVM label (LABELONE) not visible in sector 1 of the export"
rm -f "$T/head.img"
pass "LVM label is on the export (read via NBD)"

run_logged vgremove lvm_ vgremove -f "$VG"
del_vg "$VG" "$LOOP"
run_logged pvremove lvm_ pvremove -y "$LOOP"
del_pv "$LOOP"
if lvm_ vgs "$VG" >/dev/null 2>&1; then fail "$VG still listed after vgremove"; fi
pass "vgremove + pvremove"

# ---- (b) ext4 directly on the loop device -------------------------------------
run_logged mkfs mkfs.ext4 -q -F -L repdtest "$LOOP"
run_logged mount mount -t ext4 "$LOOP" "$T/fs"
add_mount "$T/fs"
checkpoint mounted
head -c $((4 * 1024 * 1024)) /dev/urandom >"$T/file.in"
IN_SUM=$(sha256sum <"$T/file.in" | cut -d' ' -f1)
cp "$T/file.in" "$T/fs/file"
sync
[ "$(sha256sum <"$T/fs/file" | cut -d' ' -f1)" = "$IN_SUM" ] || fail "file on the mounted fs differs"
run_logged umount umount "$T/fs"
del_mount "$T/fs"
pass "mkfs.ext4, mount, write 4 MiB file, sync, umount"

# Tear the kernel stack down: loop, then FUSE (nbdfuse exits on unmount).
run_logged losetup-d losetup -d "$LOOP"
loop_gone() { ! losetup "$LOOP" >/dev/null 2>&1; }
wait_for "$LOOP to detach" 100 0.1 loop_gone || fail "$LOOP still attached after losetup -d"
del_loop "$LOOP"
wait_for "fusermount3 -u $FMNT" 40 0.25 fusermount3 -u "$FMNT" || fail "fusermount3 -u $FMNT failed"
wait_for "nbdfuse to exit" 100 0.1 pid_dead "$NBDFUSE_PID" || fail "nbdfuse still running after unmount"
wait "$NBDFUSE_PID" 2>/dev/null || true
del_fuse "$FMNT" "$NBDFUSE_PID"
pass "loop device detached, FUSE unmounted, nbdfuse exited"

# ---- read the file back through the export only --------------------------------
run_logged copy-out timeout 300 nbdcopy "$NBD_URI" "$T/export.img"
run_logged fsck e2fsck -f -n "$T/export.img"
run_logged debugfs debugfs -R "dump /file $T/file.out" "$T/export.img"
[ -f "$T/file.out" ] || { show_file "$T/debugfs.out" >&2; fail "debugfs did not extract /file"; }
OUT_SUM=$(sha256sum <"$T/file.out" | cut -d' ' -f1)
[ "$OUT_SUM" = "$IN_SUM" ] || fail "file extracted from the export ($OUT_SUM) != written ($IN_SUM)"
pass "ext4 image read through the export: e2fsck clean, /file sha256 equal"

# The daemon survived all of it.
check_daemon_serving "after the kernel stack test" "$SIZE"
