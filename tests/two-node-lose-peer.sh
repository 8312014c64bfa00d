#!/usr/bin/env bash
# Losing the peer under load.  A 15 s fio verify workload runs on alpha
# (Primary); 3 s in, beta is lost, in two rounds on fresh pairs:
#   kill  - kill -9 beta (its sockets are closed by the kernel);
#   hang  - SIGSTOP beta (nothing is closed: only ping-timeout / timeout
#           can notice it).
# Each time alpha must leave Connected within REPD_TEST_PEER_LOSS_LIMIT
# seconds (default 5: `timeout 30` is 3 s, plus margin), keep completing
# writes (its `written` counter grows after the loss), and fio must finish
# in time with no error, no verify failure and no completion slower than
# REPD_TEST_MAX_CLAT seconds (default 10); then a fresh nbdinfo still works.
source "$(dirname "$0")/lib.sh"

require_tool fio nbdinfo
fio --enghelp=nbd >/dev/null 2>&1 || skip "this fio has no nbd ioengine"

LIMIT=${REPD_TEST_PEER_LOSS_LIMIT:-5}
MAX_CLAT=${REPD_TEST_MAX_CLAT:-10}
RUNTIME=15

now_ms() { echo $(($(date +%s%N) / 1000000)); }

lose_peer_round() {  # kill|hang
    local mode=$1 sig t_loss t_seen elapsed_ms w1 w2 rc=0 oos
    case "$mode" in kill) sig=KILL ;; hang) sig=STOP ;; esac
    start_two_nodes t0 128M --tag "$mode"
    initial_sync
    expect_state alpha role=Primary conn=Connected repl=Established peer-disk=UpToDate

    fio_start "verify-$mode" $((RUNTIME + 45)) "$ALPHA_URI" --rw=randwrite --bs=4k \
        --size=64M --iodepth=16 --time_based --runtime="$RUNTIME" \
        --verify=crc32c --do_verify=1 --verify_backlog=64 --verify_fatal=1 --verify_state_save=0
    sleep 3
    pid_alive "$FIO_PID" || { show_file "$T/verify-$mode.out" 20 >&2; fail "$mode: fio ended within 3s"; }
    checkpoint "loaded-$mode"

    t_loss=$(now_ms)
    signal_nodes "$sig" beta
    # Bounded by LIMIT seconds from the loss (each probe is a `repd status`).
    while ! node_is alpha conn!=Connected; do
        [ $(($(now_ms) - t_loss)) -le $((LIMIT * 1000)) ] || {
            _show_states alpha
            fail "$mode: alpha still Connected ${LIMIT}s after beta was lost (SIG$sig)"
        }
        sleep 0.1
    done
    t_seen=$(now_ms)
    elapsed_ms=$((t_seen - t_loss))
    pass "$mode: alpha left Connected $((elapsed_ms / 1000)).$(printf %03d $((elapsed_ms % 1000)))s after SIG$sig to beta ($(node_value alpha conn))"

    # No stall: writes keep completing on alpha without its peer.
    if [ -z "$STANDIN" ]; then
        w1=$(node_value alpha written)
        sleep 2
        w2=$(node_value alpha written)
        [[ $w1 =~ ^[0-9]+$ && $w2 =~ ^[0-9]+$ ]] || fail "$mode: no 'written' counter in alpha's status ($w1, $w2)"
        [ "$w2" -gt "$w1" ] || {
            _show_states alpha
            fail "$mode: alpha completed no writes in the 2s after leaving Connected (written $w1 -> $w2 KiB): stalled"
        }
    fi

    fio_wait "verify-$mode" || rc=$?
    check_fio "verify-$mode" "$rc" max_clat_s="$MAX_CLAT"
    pass "$mode: fio verify on alpha finished without error; $(sed -n 's/^job [^:]*: //p' "$T/verify-$mode.check")"

    node_serving alpha "$mode: after losing beta"
    expect_state alpha role=Primary disk=UpToDate conn!=Connected
    pass "$mode: alpha still Primary/UpToDate and serves nbdinfo"
    oos=$(node_value alpha oos)
    [ -n "$STANDIN" ] || [ "$oos" != 0 ] ||
        echo "NOTE: $mode: alpha wrote without its peer but reports out-of-sync 0" >&2

    [ "$mode" != hang ] || signal_nodes KILL beta
    down_node alpha
}

lose_peer_round kill
lose_peer_round hang
