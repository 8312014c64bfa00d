#!/usr/bin/env bash
# The verbs boot scripts and cluster agents use (issue 17, part 3), on a real pair:
#  - `wait-connect --timeout` fails (exit 1, bounded, naming the state) while the
#    peer is away, and returns 0 once it connects;
#  - `role`, `cstate`, `dstate` print DRBD 8.4's words before, during and after
#    a resync (WFConnection, SyncSource/SyncTarget, Primary/Secondary,
#    UpToDate/UpToDate), one line per resource, `all` included;
#  - `wait-sync` returns 0 once the resync is done, with both disks UpToDate;
#  - the global options come before the verb too (`repd -c DIR --node N
#    --run-dir R status r0`, and `--config-dir=DIR`), with no REPD_* variables;
#  - a resource that is not up gives exit 20;
#  - the daemon `repd up` starts holds none of the caller's open descriptors.
# run-all-timeout: 300
source "$(dirname "$0")/lib.sh"

[ -z "$STANDIN" ] || skip "needs repd"
# A slow fixed-rate sync of 96 MiB (about 6 s) leaves time to see its states.
export TWO_NODE_DISK="c-plan-ahead 0; resync-rate 16M; c-min-rate 0;"
two_node_setup r0 96M
node_create_md alpha
node_create_md beta
# The daemon keeps none of its caller's descriptors: fd 7 is open across `repd up`.
exec 7>"$T/inherited.marker"
node_up alpha
exec 7>&-
for fd in /proc/"$(node_pid alpha)"/fd/*; do
    [ "$(readlink "$fd")" != "$T/inherited.marker" ] || fail "the daemon inherited its caller's fd 7 ($fd)"
done

word() {  # HANDLE VERB [ARGS...] -> the verb's output (fails if the verb fails)
    repd_node "$@" 2>"$T/word.err" </dev/null
}
expect_word() {  # HANDLE VERB EXPECTED
    local got
    got=$(word "$1" "$2") || { cat "$T/word.err" >&2; fail "repd $2 on $1 failed"; }
    [ "$got" = "$3" ] || fail "repd $2 on $1 printed '$got', expected '$3'"
}

# ---- the peer is away ----------------------------------------------------------------------
expect_word alpha cstate WFConnection
expect_word alpha role Secondary/Unknown
expect_word alpha dstate Inconsistent/DUnknown
start=$SECONDS rc=0
repd_node alpha wait-connect --timeout 2 >"$T/wc1.out" 2>&1 </dev/null || rc=$?
took=$((SECONDS - start))
[ "$rc" = 1 ] || { cat "$T/wc1.out" >&2; fail "wait-connect --timeout 2 without a peer exited $rc, expected 1"; }
[ "$took" -le 10 ] || fail "wait-connect --timeout 2 took ${took}s"
grep -q "not Connected after 2 s: r0 (WFConnection" "$T/wc1.out" || { cat "$T/wc1.out" >&2; fail "wait-connect's timeout message does not name the state"; }
pass "peer away: cstate WFConnection, role Secondary/Unknown, dstate Inconsistent/DUnknown; wait-connect --timeout 2 exits 1 after ${took}s: $(cat "$T/wc1.out")"

# ---- wait-connect returns once the peer comes ----------------------------------------------
( repd_node alpha wait-connect --timeout 60 >"$T/wc2.out" 2>&1 </dev/null 8>&- 9>&-; echo $? >"$T/wc2.rc" ) &
WC=$!
add_bg_pid "$WC"
sleep 1
[ ! -e "$T/wc2.rc" ] || { cat "$T/wc2.out" >&2; fail "wait-connect returned before the peer was up"; }
node_up beta
wait_for "wait-connect to return" 300 0.1 test -s "$T/wc2.rc" || fail "wait-connect did not return within 30 s of the peer's up"
[ "$(cat "$T/wc2.rc")" = 0 ] || { cat "$T/wc2.out" >&2; fail "wait-connect exited $(cat "$T/wc2.rc") once the peer connected"; }
expect_word alpha cstate Connected
pass "wait-connect returned 0 once beta came up"

# ---- during and after the resync -------------------------------------------------------------
run_logged primary-force repd_node alpha primary --force
seen() { [ "$(word alpha cstate)" = SyncSource ] && [ "$(word beta cstate)" = SyncTarget ]; }
wait_until "cstate SyncSource on alpha and SyncTarget on beta" 20 0.1 seen || {
    _show_states alpha beta
    fail "cstate never showed SyncSource/SyncTarget during the resync"
}
during="alpha $(word alpha role) $(word alpha dstate), beta $(word beta role) $(word beta dstate)"
start=$SECONDS rc=0
repd_node beta wait-sync --timeout 120 >"$T/ws.out" 2>&1 </dev/null || rc=$?
[ "$rc" = 0 ] || { cat "$T/ws.out" >&2; fail "wait-sync on beta exited $rc"; }
expect_word alpha cstate Connected
expect_word alpha role Primary/Secondary
expect_word beta role Secondary/Primary
expect_word alpha dstate UpToDate/UpToDate
expect_word beta dstate UpToDate/UpToDate
pass "during the resync: cstate SyncSource/SyncTarget, $during; wait-sync returned after $((SECONDS - start))s; then Connected, Primary/Secondary, UpToDate/UpToDate"

# ---- all, global options before the verb, not up ---------------------------------------------
out=$(env -u REPD_CONFIG_DIR -u REPD_NODE -u REPD_RUN_DIR \
    "$REPD" role all --node alpha --run-dir "${NODE_RUN[alpha]}" --config-dir "${NODE_CONF[alpha]}" 2>&1) ||
    fail "repd role all failed: $out"
[ "$out" = Primary/Secondary ] || fail "repd role all printed '$out'"
out=$(env -u REPD_CONFIG_DIR -u REPD_NODE -u REPD_RUN_DIR \
    "$REPD" -c "${NODE_CONF[alpha]}" --node alpha --run-dir "${NODE_RUN[alpha]}" status r0 --json 2>&1) ||
    fail "repd -c DIR --node alpha --run-dir R status r0 failed: $out"
grep -q '"role" : "Primary"\|"role":"Primary"' <<<"$out" || fail "repd -c DIR ... status r0 --json does not show alpha Primary: $(head -c 300 <<<"$out")"
out=$(env -u REPD_CONFIG_DIR -u REPD_NODE -u REPD_RUN_DIR \
    "$REPD" --config-dir="${NODE_CONF[alpha]}" --node=alpha --run-dir="${NODE_RUN[alpha]}" dstate r0 2>&1) ||
    fail "repd --config-dir=DIR --node=alpha --run-dir=R dstate r0 failed: $out"
[ "$out" = UpToDate/UpToDate ] || fail "repd --config-dir=... dstate r0 printed '$out'"
rc=0
env -u REPD_CONFIG_DIR -u REPD_NODE -u REPD_RUN_DIR "$REPD" -c "${NODE_CONF[alpha]}" --node alpha --run-dir "${NODE_RUN[alpha]}" \
    role r9 >"$T/r9.out" 2>&1 </dev/null || rc=$?
[ "$rc" = 20 ] || { cat "$T/r9.out" >&2; fail "repd role r9 (not up) exited $rc, expected 20"; }
pass "role all; -c DIR --node N --run-dir R before the verb; --config-dir=DIR; a resource not up exits 20 ($(cat "$T/r9.out"))"
