#!/usr/bin/env bash
# Two nodes (alpha Primary, beta Secondary, protocol C): 256 MiB of random
# 4k/64k writes through alpha's export with fio's nbd engine, crc32c
# verified; status says Connected / peer Secondary / protocol C /
# Established / peer UpToDate with nothing out of sync; then `down` on both
# and the two backing files must be identical over their whole length.
# Then the same, smaller (32 MiB), with protocol B and protocol A: a clean
# `down` must leave identical files whatever the protocol.
source "$(dirname "$0")/lib.sh"

require_tool fio nbdinfo cmp
fio --enghelp=nbd >/dev/null 2>&1 || skip "this fio has no nbd ioengine"

start_two_nodes t0 320M
initial_sync
expect_state alpha role=Primary conn=Connected peer-role=Secondary proto=C
expect_state beta role=Secondary disk=UpToDate conn=Connected peer-role=Primary
pass "alpha and beta Connected; initial sync done (beta UpToDate, Established)"
checkpoint synced

N=$((256 * 1024 * 1024))
rc=0
fio_run randwrite 600 "$ALPHA_URI" --rw=randwrite --bssplit=4k/50:64k/50 --iodepth=16 \
    --size=256M --verify=crc32c --do_verify=1 --verify_fatal=1 --verify_state_save=0 || rc=$?
check_fio randwrite "$rc" write=$N read=$N
pass "fio 256 MiB randwrite (4k/64k, iodepth 16) through alpha, crc32c verify"

expect_state alpha role=Primary disk=UpToDate conn=Connected peer-role=Secondary proto=C \
    repl=Established peer-disk=UpToDate oos=0
expect_state beta role=Secondary disk=UpToDate conn=Connected peer-role=Primary
pass "status after the writes: Connected, peer-role Secondary, repd-protocol C, Established, out-of-sync 0"

down_node alpha
down_node beta
if ! cmp "$ALPHA_DISK" "$BETA_DISK" >"$T/cmp.out" 2>&1; then
    show_file "$T/cmp.out" 5 >&2
    fail "after down: alpha.img and beta.img differ"
fi
pass "after down on both: alpha.img and beta.img identical ($(stat -c %s "$ALPHA_DISK") bytes)"

# ---- protocols B and A ---------------------------------------------------------
M=$((32 * 1024 * 1024))
for proto in B A; do
    start_two_nodes t0 64M --tag "proto$proto" --protocol "$proto"
    initial_sync
    expect_state alpha role=Primary conn=Connected peer-role=Secondary proto="$proto"
    rc=0
    fio_run "randwrite-$proto" 300 "$ALPHA_URI" --rw=randwrite --bssplit=4k/50:64k/50 --iodepth=16 \
        --size=32M --verify=crc32c --do_verify=1 --verify_fatal=1 --verify_state_save=0 || rc=$?
    check_fio "randwrite-$proto" "$rc" write=$M read=$M
    # Protocols A/B ack before the peer has written: wait until nothing is
    # in flight to it any more (ap-in-flight 0), then a clean down.
    wait_state 30 alpha conn=Connected repl=Established peer-disk=UpToDate oos=0 apif=0
    down_node alpha
    down_node beta
    cmp -s "$ALPHA_DISK" "$BETA_DISK" || fail "protocol $proto: after down, alpha.img and beta.img differ"
    pass "protocol $proto: repd-protocol $proto, fio 32 MiB verified, files identical after down"
done
