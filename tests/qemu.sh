#!/usr/bin/env bash
# QEMU's NBD client: qemu-io pattern writes/reads (incl. FUA, write-zeroes,
# discard, flush) and qemu-img convert + compare of a raw image.
source "$(dirname "$0")/lib.sh"

require_tool qemu-io qemu-img nbdinfo

start_single_node t0 64M
SIZE=$(nbdinfo --size "$NBD_URI")
[ "$SIZE" -ge $((8 * 1024 * 1024)) ] || fail "export too small ($SIZE)"
LAST64K=$((SIZE - 65536))

# qemu-io exits non-zero on a failed command; additionally refuse any
# output that reports a failure (older versions exited 0).
qio() {  # NAME [qemu-io args...]
    local name=$1; shift
    run_logged "$name" timeout 120 qemu-io "$@"
    if grep -Eiq 'fail|error|mismatch' "$T/$name.out"; then
        show_file "$T/$name.out" 40 >&2
        fail "qemu-io $name reported a failure"
    fi
}

# ---- pattern writes at several offsets, one connection -------------------
qio write -f raw \
    -c 'write -P 0xab 1M 64k' \
    -c 'write -P 0xcd 0 4k' \
    -c 'write -P 0x5a 2M 512' \
    -c 'write -P 0x11 3M 1M' \
    -c 'write -P 0x77 5M 256k' \
    -c "write -P 0xee $LAST64K 64k" \
    -c 'write -f -P 0x42 6M 64k' \
    -c 'write -P 0x99 7M 128k' \
    -c 'write -z 7M 64k' \
    -c 'flush' \
    "$NBD_URI"
pass "qemu-io pattern writes (plain, FUA, write-zeroes, flush)"

# ---- verify on a fresh connection ----------------------------------------
qio read -f raw \
    -c 'read -P 0xab 1M 64k' \
    -c 'read -P 0xcd 0 4k' \
    -c 'read -P 0x00 4k 60k' \
    -c 'read -P 0x5a 2M 512' \
    -c 'read -P 0x00 2097664 512' \
    -c 'read -P 0x11 3M 1M' \
    -c 'read -P 0x77 5M 256k' \
    -c "read -P 0xee $LAST64K 64k" \
    -c 'read -P 0x42 6M 64k' \
    -c 'read -P 0x00 7M 64k' \
    -c 'read -P 0x99 7232k 64k' \
    "$NBD_URI"
pass "qemu-io read -P verifies every pattern (and untouched/zeroed areas)"

# The backing file holds the same bytes at the same offsets.
qio read-backing -f raw -r -U \
    -c 'read -P 0xab 1M 64k' \
    -c 'read -P 0x11 3M 1M' \
    -c "read -P 0xee $LAST64K 64k" \
    -c 'read -P 0x42 6M 64k' \
    -c 'read -P 0x00 7M 64k' \
    "$DISK"
pass "backing file holds the patterns at the same offsets"

# Discard: afterwards only "no error" is guaranteed, content is unspecified.
qio discard -f raw -c 'discard 5M 256k' -c 'write -P 0x78 5M 4k' -c 'read -P 0x78 5M 4k' "$NBD_URI"
pass "qemu-io discard"

# ---- qemu-img convert a raw image into the export, then compare ----------
# Source: same size as the export, random data with zero holes in between.
SRC="$T/src.raw"
truncate -s "$SIZE" "$SRC"
for mib in 0 3 4 9 17 30 $((SIZE / 1048576 - 1)); do
    [ "$mib" -lt $((SIZE / 1048576)) ] || continue
    head -c 1048576 /dev/urandom | dd of="$SRC" bs=1M seek="$mib" conv=notrunc status=none
done
run_logged convert timeout 300 qemu-img convert -n -f raw -O raw "$SRC" "$NBD_URI"
pass "qemu-img convert -n raw image into the export"

run_logged compare timeout 300 qemu-img compare -f raw -F raw "$SRC" "$NBD_URI"
grep -q 'Images are identical' "$T/compare.out" || { show_file "$T/compare.out" >&2; fail "qemu-img compare did not report identical images"; }
cmp -s -n "$SIZE" "$SRC" "$DISK" || fail "backing file differs from the converted image"
pass "qemu-img compare: identical (and backing file equal)"

# qemu-img info over NBD reports the right size.
run_logged info timeout 60 qemu-img info --output=json "$NBD_URI"
[ "$(json_query "$T/info.out" 'j["virtual-size"]')" = "$SIZE" ] || fail "qemu-img info virtual-size mismatch"
pass "qemu-img info virtual-size $SIZE"
