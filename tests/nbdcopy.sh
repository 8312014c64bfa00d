#!/usr/bin/env bash
# nbdcopy (libnbd, multi-conn, parallel requests): 64 MiB of random data
# into the export and back out; sha256 must match, and the backing file's
# first 64 MiB must equal the input byte for byte (external meta-disk, so
# the data file maps 1:1 to the export).
source "$(dirname "$0")/lib.sh"

require_tool nbdcopy nbdinfo sha256sum cmp head

start_single_node t0 128M
SIZE=$(nbdinfo --size "$NBD_URI")
N=$((64 * 1024 * 1024))
[ "$SIZE" -ge "$N" ] || fail "export is only $SIZE bytes"

head -c "$N" /dev/urandom >"$T/in.bin"
IN_SUM=$(sha256sum <"$T/in.bin" | cut -d' ' -f1)

run_logged copy-in timeout 300 nbdcopy --flush "$T/in.bin" "$NBD_URI"
pass "nbdcopy 64 MiB into the export"

run_logged copy-out timeout 300 nbdcopy "$NBD_URI" "$T/out.bin"
[ "$(stat -c %s "$T/out.bin")" = "$SIZE" ] || fail "copied out $(stat -c %s "$T/out.bin") bytes, export is $SIZE"
OUT_SUM=$(head -c "$N" "$T/out.bin" | sha256sum | cut -d' ' -f1)
[ "$OUT_SUM" = "$IN_SUM" ] || fail "sha256 of the first 64 MiB read back ($OUT_SUM) != input ($IN_SUM)"
pass "nbdcopy back out: sha256 equal"

# Nothing beyond what was written may have changed: the rest reads as zero.
if [ "$SIZE" -gt "$N" ]; then
    cmp -s -n $((SIZE - N)) <(tail -c +$((N + 1)) "$T/out.bin") /dev/zero ||
        fail "export beyond the first 64 MiB is not all zero"
fi

# The backing file itself holds the data at the same offsets.
if ! cmp -n "$N" "$T/in.bin" "$DISK" >"$T/cmp.out" 2>&1; then
    show_file "$T/cmp.out" 5 >&2
    fail "backing file $DISK differs from the input in the first 64 MiB"
fi
pass "backing file's first 64 MiB equal the input (cmp)"

# Same again through a single connection with synchronous requests, the
# other way round (export -> export via a second file) to exercise the
# non-multi-conn path.
head -c "$N" /dev/urandom >"$T/in2.bin"
run_logged copy-in-sync timeout 300 nbdcopy --synchronous -C 1 --flush "$T/in2.bin" "$NBD_URI"
run_logged copy-out-sync timeout 300 nbdcopy --synchronous -C 1 "$NBD_URI" "$T/out2.bin"
cmp -s -n "$N" "$T/in2.bin" "$T/out2.bin" || fail "synchronous single-connection round trip differs"
cmp -s -n "$N" "$T/in2.bin" "$DISK" || fail "backing file differs after the synchronous copy"
pass "single-connection synchronous round trip equal"
