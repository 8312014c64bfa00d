#!/usr/bin/env bash
# Hostile NBD clients (raw sockets, tests/nbd_hostile_client.py) against
# the export: protocol violations in the handshake and in the transmission
# phase.  After EVERY case the daemon must still be alive (same pid) and
# serve a fresh nbdinfo.  Transmission-phase cases run twice: with simple
# replies and with structured replies negotiated.
source "$(dirname "$0")/lib.sh"

require_tool python3 nbdinfo
CLIENT="$TESTS_DIR/nbd_hostile_client.py"
[ -r "$CLIENT" ] || fail "missing $CLIENT"

start_single_node t0 128M
SIZE=$(to_bytes 128M)
PID0=$(daemon_pid)
check_daemon_serving "before any hostile client" "$SIZE"

HANDSHAKE_CASES="early-close half-flags bad-client-flags bad-opt-magic unknown-opt
                 oversized-opt truncated-opt idle-connections"
TRANSMISSION_CASES="bad-request-magic read-beyond-end write-beyond-end write-oversized
                    write-huge-len unknown-command disconnect-mid-write pipelined-garbage"

run_case() {  # CASE [--structured]
    local c=$1 mode=${2:-} tag rc=0
    tag="$c${mode:+ $mode}"
    timeout 120 python3 "$CLIENT" --socket "$NBD_SOCK" --export "$RES" --size "$SIZE" \
        --pid "$PID0" ${mode:+"$mode"} "$c" >"$T/case.out" 2>&1 </dev/null || rc=$?
    if [ "$rc" -ne 0 ]; then
        sed 's/^/    /' "$T/case.out" >&2
        fail "hostile case '$tag' (client exit $rc)"
    fi
    # The daemon must have survived, without being restarted, and serve.
    [ "$(daemon_pid)" = "$PID0" ] || fail "after '$tag': pid file changed from $PID0 to $(daemon_pid)"
    check_daemon_serving "after hostile case '$tag'" "$SIZE"
    pass "$tag"
}

for c in $HANDSHAKE_CASES; do run_case "$c"; done
for c in $TRANSMISSION_CASES; do
    run_case "$c"
    run_case "$c" --structured
done

# Nothing the hostile clients did may have damaged the data path.
if command -v nbdcopy >/dev/null && command -v qemu-io >/dev/null; then
    run_logged final-write qemu-io -f raw -c 'write -P 0x3c 0 1M' "$NBD_URI"
    run_logged final-read qemu-io -f raw -c 'read -P 0x3c 0 1M' "$NBD_URI"
    pass "export still reads back what is written after all hostile cases"
fi
