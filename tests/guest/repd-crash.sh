#!/bin/sh
# Guest half of tests/guests-nbd-crash.sh (busybox sh, one guest of ../shared/vm): repd on /dev/vda
# with /dev/drbd1 attached through the kernel's nbd driver; the daemon is killed (-9) under a
# mounted ext4 and writes queue in the kernel; the next `repd up` takes the device over again, at
# promotion (NBD_CMD_RECONFIGURE), and the file system carries on. Then: a killed daemon whose
# device nobody uses leaves a connected /dev/nbd1 and links, which `repd down` removes. Last,
# `repd resize` of a one-node resource grows its /dev/nbd device in place (NBD_CMD_RECONFIGURE
# with the size).
export LD_LIBRARY_PATH=/data PATH=/data:$PATH
R=/data/repd
fails=0
up() { cut -d' ' -f1 /proc/uptime; }
T_START=$(up)
step() {
    name=$1; shift; t0=$(up); out=$("$@" 2>&1); rc=$?
    dt=$(awk -v a="$t0" -v b="$(up)" 'BEGIN{printf "%.2f", b-a}')
    if [ $rc = 0 ]; then echo "PASS: $name (${dt}s)"; else
        echo "FAIL: $name (rc=$rc, ${dt}s)"; echo "$out" | tail -15 | sed 's/^/    /'; fails=$((fails+1)); fi
    return $rc
}
dump() { tail -30 /run/repd/r0.log | sed 's/^/    log: /'; dmesg | grep -iE 'nbd|ext4' | tail -15 | sed 's/^/    dmesg: /'; }
must() { step "$@" || { echo "FAIL: aborting after '$1'"; dump; exit 1; }; }
wait_for() { n=$1; shift; while [ "$n" -gt 0 ]; do "$@" >/dev/null 2>&1 && return 0; sleep 1; n=$((n-1)); done; return 1; }
kill_daemon() { kill -9 "$(cat /run/repd/r0.pid)"; wait_for 20 sh -c '! kill -0 $(cat /run/repd/r0.pid) 2>/dev/null || grep -q "^State:.*Z" /proc/$(cat /run/repd/r0.pid)/status'; }

mkdir -p /etc/repd/resources.d
cat > /etc/repd/resources.d/r0.res <<RES
resource r0 {
  device /dev/drbd1;
  disk /dev/vda;
  meta-disk internal;
  on node1 { address 127.0.0.1:7789; }
  on node2 { address 127.0.0.2:7789; }
}
RES
must "create-md, up, primary --force" sh -c "$R create-md r0 && $R up r0 && $R primary --force r0"
must "/dev/drbd1 -> nbd1" sh -c '[ "$(readlink /dev/drbd1)" = nbd1 ]'
must "mkfs.ext4 + mount + 4 MiB file" sh -c "mkfs.ext4 -q -F /dev/drbd1 && mkdir -p /mnt/x && mount /dev/drbd1 /mnt/x && dd if=/dev/urandom of=/mnt/x/a bs=1M count=4 2>/dev/null && sha256sum < /mnt/x/a > /tmp/a.sum && sync"
must "kill -9 of the daemon" kill_daemon
( dd if=/dev/urandom of=/mnt/x/b bs=1M count=4 2>/dev/null; sha256sum < /mnt/x/b > /tmp/b.sum; sync; echo $? > /tmp/writer.rc ) &
sleep 2
step "writes wait in the kernel while repd is away" sh -c '[ ! -e /tmp/writer.rc ]'
must "repd up again" $R up r0
step "up defers the reconnect until Primary" grep -q "is reconnected when this node becomes Primary" /run/repd/r0.log
step "same device, same links" sh -c '[ "$(readlink /dev/drbd1)" = nbd1 ] && [ "$(readlink /dev/repd/by-res/r0)" = ../../nbd1 ]'
must "repd primary" $R primary r0
step "primary reconnected /dev/nbd1" grep -q "reconnected /dev/nbd1, which the previous daemon left in use" /run/repd/r0.log
step "the queued writes completed" wait_for 60 sh -c '[ "$(cat /tmp/writer.rc 2>/dev/null)" = 0 ]'
step "new writes after the takeover" sh -c "dd if=/dev/urandom of=/mnt/x/c bs=1M count=4 2>/dev/null && sync"
step "files written before, during and after the crash read back" sh -c '[ "$(sha256sum < /mnt/x/a)" = "$(cat /tmp/a.sum)" ] && [ "$(sha256sum < /mnt/x/b)" = "$(cat /tmp/b.sum)" ] && [ -s /mnt/x/c ]'
step "the file system was never remounted read-only" sh -c '! dmesg | grep -q "Remounting filesystem read-only"'
step "umount" umount /mnt/x
step "e2fsck clean" e2fsck -fn /dev/drbd1
must "down" $R down r0
step "down: no links, nbd1 disconnected" sh -c '[ ! -L /dev/drbd1 ] && [ ! -e /dev/repd ] && [ "$(blockdev --getsize64 /dev/nbd1)" = 0 ]'

# A killed daemon whose device nobody uses: `down` of the dead resource cleans up.
must "up again" $R up r0
must "kill -9 with the device unused" kill_daemon
step "the dead daemon left its links and /dev/nbd1 connected" sh -c '[ -L /dev/drbd1 ] && [ "$(blockdev --getsize64 /dev/nbd1)" != 0 ]'
$R down r0 > /tmp/down.out 2>&1; sed 's/^/INFO: down says: /' /tmp/down.out
step "down of the dead resource says what it removed" grep -q 'disconnected the stale /dev/nbd1' /tmp/down.out
step "links gone" sh -c '[ ! -L /dev/drbd1 ] && [ ! -e /dev/repd ]'
step "nbd1 disconnected" wait_for 10 sh -c '[ "$(blockdev --getsize64 /dev/nbd1)" = 0 ]'
step "nbd1 not left read-only" sh -c '[ "$(blockdev --getro /dev/nbd1)" = 0 ]'

# Online resize through the kernel's nbd driver: NBD_CMD_RECONFIGURE with the new size, no reconnect.
truncate -s 64M /tmp/r1.img; truncate -s 4M /tmp/r1.md
cat > /etc/repd/resources.d/r1.res <<RES
resource r1 {
  device /dev/drbd2;
  disk /tmp/r1.img;
  meta-disk /tmp/r1.md;
  on node1 { address 127.0.0.1:7790; }
}
RES
must "r1 (one node, external metadata): create-md, up, primary --force" sh -c "$R create-md r1 && $R up r1 && $R primary --force r1"
step "r1: /dev/drbd2 has 64 MiB" sh -c '[ "$(blockdev --getsize64 /dev/drbd2)" = 67108864 ]'
step "r1: the file grows to 128 MiB, repd resize" sh -c "truncate -s 128M /tmp/r1.img && $R resize r1"
step "r1: /dev/drbd2 has 128 MiB, on the same connection" wait_for 10 sh -c '[ "$(blockdev --getsize64 /dev/drbd2)" = 134217728 ]'
step "r1: 1 MiB written at the new end reads back, and is in the backing file" sh -c 'dd if=/dev/urandom of=/tmp/tail bs=1M count=1 && dd if=/tmp/tail of=/dev/drbd2 bs=1M seek=127 oflag=direct && dd if=/dev/drbd2 of=/tmp/back bs=1M skip=127 count=1 iflag=direct && cmp /tmp/back /tmp/tail && dd if=/tmp/r1.img of=/tmp/file bs=1M skip=127 count=1 && cmp /tmp/file /tmp/tail'
grep -iE "resize|grow|nbd" /run/repd/r1.log | tail -8 | sed 's/^/INFO: r1 log: /'
must "r1: down" $R down r1
echo "TIME: total $(awk -v a="$T_START" -v b="$(up)" 'BEGIN{printf "%.1f", b-a}')s"
[ $fails = 0 ] || dump
[ $fails = 0 ] && echo "PASS: all steps" || echo "FAIL: $fails step(s) failed"
exit $fails
