#!/usr/bin/env bash
# The Pacemaker resource agent ocf:repd:repd (scripts/ocf/repd; issue 17, part 4) on a real
# pair, alpha driven by the agent as Pacemaker would, beta by hand:
#  - meta-data: well-formed XML, valid against resource-agents' DTD (what ocf-tester checks) and
#    its OCF 1.1 RelaxNG schema; drbd_resource required and unique, repd's own parameters,
#    promote/demote, a monitor for each role; validate-all 0, 6 without drbd_resource, 5 without
#    the binary;
#  - monitor 7 while alpha is not up (also a probe without the binary), 0 Secondary, 8 Primary;
#    the promotion score (through a stand-in crm_attribute that logs its arguments) from the
#    disk states: none Inconsistent, 10000 UpToDate and connected, 1000 UpToDate with the peer
#    away, 5 Consistent, none Outdated; a crm_attribute that fails (no cluster) is no failure;
#  - stop of a Primary goes Secondary, then down; promote of an Outdated disk fails at once;
#    after a kill -9 of the daemon monitor says 7 and stop succeeds; `start` leaves the daemon
#    none of the caller's descriptors;
#  - ocf-tester (resource-agents) passes against alpha with beta up as its peer;
#  - nothing the agent started is left running.
# run-all-timeout: 180
source "$(dirname "$0")/lib.sh"

[ -z "$STANDIN" ] || skip "needs repd"
require_tool ocf-tester xmllint python3 timeout
OCF_ROOT=/usr/lib/ocf
[ -r "$OCF_ROOT/lib/heartbeat/ocf-shellfuncs" ] || missing "no $OCF_ROOT/lib/heartbeat/ocf-shellfuncs (resource-agents)"
AGENT="$(cd "$TESTS_DIR/.." && pwd)/scripts/ocf/repd"
[ -x "$AGENT" ] || fail "$AGENT is missing or not executable"

# A stand-in crm_attribute first on PATH: it logs its arguments, and fails as without a cluster
# while $T/crm.fail exists.
mkdir -p "$T/stub"
cat >"$T/stub/crm_attribute" <<EOF
#!/bin/sh
echo "\$*" >>"$T/crm.log"
[ ! -e "$T/crm.fail" ] || { echo "Could not connect to the CIB: Transport endpoint is not connected" >&2; exit 102; }
exit 0
EOF
chmod +x "$T/stub/crm_attribute"

# agent ACTION [VAR=VALUE...]: the agent on alpha with the environment Pacemaker gives it (clone
# instance p_repd:0); its output in $T/agent-ACTION.out.
agent() {
    local action=$1
    shift
    env PATH="$T/stub:$PATH" OCF_ROOT=$OCF_ROOT OCF_RA_VERSION_MAJOR=1 OCF_RA_VERSION_MINOR=1 \
        OCF_RESOURCE_INSTANCE=p_repd:0 OCF_RESOURCE_TYPE=repd OCF_RESOURCE_PROVIDER=repd \
        OCF_RESKEY_drbd_resource=r0 OCF_RESKEY_config_dir="${NODE_CONF[alpha]-}" \
        OCF_RESKEY_node=alpha OCF_RESKEY_run_dir="${NODE_RUN[alpha]-}" OCF_RESKEY_binary="$REPD" \
        OCF_RESKEY_wfc_timeout=10 OCF_RESKEY_CRM_meta_timeout=60000 OCF_RESKEY_CRM_meta_interval=10000 \
        OCF_RESKEY_CRM_meta_clone_max=2 OCF_RESKEY_CRM_meta_promotable=true "$@" \
        timeout 120 "$AGENT" "$action" >"$T/agent-$action.out" 2>&1 </dev/null 8>&- 9>&-
}
# expect_rc RC ACTION [VAR=VALUE...]
expect_rc() {
    local want=$1 rc=0
    shift
    agent "$@" || rc=$?
    [ "$rc" = "$want" ] && return 0
    show_file "$T/agent-$1.out" 30 >&2
    _show_states alpha beta 2>/dev/null || true
    fail "agent $* exited $rc, expected $want"
}
# expect_score SCORE|none: what the last crm_attribute call recorded.
expect_score() {
    local last got
    last=$(tail -n 1 "$T/crm.log" 2>/dev/null) || true
    case "$last" in
        *" -D") got=none ;;
        *" -v "*) got=${last##* -v } ;;
        *) got="(no call)" ;;
    esac
    [ "$got" = "$1" ] || { show_file "$T/crm.log" 10 >&2; fail "promotion score $got, expected $1 (alpha: $(node_state alpha 2>&1))"; }
}
dstate() { repd_node "$1" dstate 2>&1 </dev/null; }

# ---- meta-data ---------------------------------------------------------------------------------
expect_rc 0 meta-data
python3 - "$T/agent-meta-data.out" >"$T/meta.check" 2>&1 <<'EOF' || { cat "$T/meta.check" >&2; fail "meta-data"; }
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "resource-agent" and root.get("name") == "repd", root.attrib
assert root.findtext("version") == "1.1", "OCF version %r" % root.findtext("version")
params = {p.get("name"): p for p in root.iter("parameter")}
for name in ("drbd_resource", "config_dir", "node", "run_dir", "binary", "adjust_master_score", "wfc_timeout"):
    assert name in params, "no parameter " + name
    assert params[name].find("content") is not None and params[name].findtext("shortdesc"), name
assert params["drbd_resource"].get("required") == "1" and params["drbd_resource"].get("unique") == "1"
actions = [(a.get("name"), a.get("role")) for a in root.iter("action")]
for a in root.iter("action"):
    assert a.get("timeout"), "action %s without timeout" % a.get("name")
names = {n for n, _ in actions}
for n in ("start", "stop", "promote", "demote", "monitor", "notify", "meta-data", "validate-all"):
    assert n in names, "no action " + n
roles = {r for n, r in actions if n == "monitor"}
assert {"Promoted", "Unpromoted"} <= roles, "monitor roles %r" % roles
print("parameters:", " ".join(params), "| actions:", " ".join(sorted(names)))
EOF
(cd /usr/share/resource-agents && xmllint --noout --valid - <"$T/agent-meta-data.out") >"$T/dtd.out" 2>&1 ||
    { cat "$T/dtd.out" >&2; fail "meta-data does not validate against ra-api-1.dtd"; }
if [ -r /usr/share/resource-agents/metadata.rng ]; then
    xmllint --noout --relaxng /usr/share/resource-agents/metadata.rng - <"$T/agent-meta-data.out" >"$T/rng.out" 2>&1 ||
        { cat "$T/rng.out" >&2; fail "meta-data does not validate against resource-agents' metadata.rng"; }
fi
pass "meta-data: well-formed, valid (ra-api-1.dtd, metadata.rng); $(cat "$T/meta.check")"

# ---- a pair: beta up by hand, alpha through the agent --------------------------------------------
# A small disk at a fixed resync rate: the two resyncs take a second or so.
export TWO_NODE_DISK="c-plan-ahead 0; resync-rate 64M; c-min-rate 0;"
two_node_setup r0 16M
node_create_md alpha
node_create_md beta
node_up beta

expect_rc 0 validate-all
expect_rc 6 validate-all OCF_RESKEY_drbd_resource=
expect_rc 5 validate-all OCF_RESKEY_binary="$T/no-such-repd"
expect_rc 6 validate-all OCF_RESKEY_CRM_meta_promoted_max=2        # no allow-two-primaries
expect_rc 7 monitor
expect_rc 7 monitor OCF_RESKEY_CRM_meta_interval=0
expect_rc 7 monitor OCF_RESKEY_CRM_meta_interval=0 OCF_RESKEY_binary="$T/no-such-repd"
expect_rc 0 stop
pass "validate-all 0, 6 without drbd_resource, 5 without the binary, 6 for promoted-max 2; monitor and probe 7 while not up (also without the binary); stop of a stopped resource 0"

# start, with a descriptor open that the daemon must not inherit.
: >"$T/crm.log"
rc=0
agent start 7>"$T/caller-fd" || rc=$?
[ "$rc" = 0 ] || { show_file "$T/agent-start.out" >&2; fail "agent start exited $rc"; }
pid=$(node_pid alpha)
pid_alive "$pid" || fail "agent start returned 0 but alpha's daemon is not running"
for fd in /proc/"$pid"/fd/*; do
    [ "$(readlink "$fd" 2>/dev/null)" != "$T/caller-fd" ] || fail "alpha's daemon holds the agent caller's descriptor $fd"
done
expect_state alpha conn=Connected role=Secondary
expect_rc 0 start                                          # already up
expect_rc 0 monitor
expect_score none
grep -q -- "-l reboot -n master-p_repd " "$T/crm.log" || { show_file "$T/crm.log" >&2; fail "the score is not the transient attribute master-p_repd"; }
pass "start: up, Connected (waited for the peer), Secondary; start again 0; monitor 0; Inconsistent: no promotion score"

# The initial sync, from beta; beta back to Secondary.
run_logged primary-force-beta repd_node beta primary --force
run_logged wait-sync repd_node alpha wait-sync --timeout 120
run_logged secondary-beta repd_node beta secondary
expect_rc 0 monitor
expect_score 10000
expect_rc 0 promote
expect_state alpha role=Primary
checkpoint agent-primary
expect_rc 8 monitor
expect_score 10000
expect_rc 0 promote                                        # already Primary
expect_rc 0 demote
expect_state alpha role=Secondary
expect_rc 0 monitor
expect_rc 0 demote                                         # already Secondary
touch "$T/crm.fail"
expect_rc 0 monitor
grep -q "could not record the promotion score" "$T/agent-monitor.out" ||
    { show_file "$T/agent-monitor.out" >&2; fail "monitor does not say that the score could not be recorded"; }
rm -f "$T/crm.fail"
pass "UpToDate and connected: score 10000; promote 0, monitor 8; demote 0, monitor 0 (both twice); without a cluster monitor still 0 ($(grep -m1 -o 'could not record.*' "$T/agent-monitor.out" | head -c 150))"

# ---- the peer away ----------------------------------------------------------------------------
down_node beta
wait_state 30 alpha peer-disk=DUnknown
expect_rc 0 monitor
expect_score 1000
expect_rc 0 promote
expect_rc 8 monitor
expect_rc 0 stop
grep -q "secondary: done" "$T/agent-stop.out" || { show_file "$T/agent-stop.out" >&2; fail "stop of a Primary did not go Secondary first"; }
pid_dead "$pid" || wait_for "alpha's daemon to exit" 100 0.1 pid_dead "$pid" || fail "alpha's daemon still runs after stop"
expect_score none
expect_rc 7 monitor
pass "peer away: UpToDate Secondary score 1000; promote 0; stop of the Primary: secondary, down, score removed, monitor 7"

expect_rc 0 start OCF_RESKEY_wfc_timeout=1
d=$(dstate alpha)
[ "$d" = Consistent/DUnknown ] || fail "alpha came up alone as $d, expected Consistent/DUnknown"
expect_rc 0 monitor
expect_score 5
run_logged outdate-alpha repd_node alpha outdate
expect_rc 0 monitor
expect_score none
start=$SECONDS
expect_rc 1 promote
[ $((SECONDS - start)) -le 10 ] || fail "promote of an Outdated disk took $((SECONDS - start))s (it cannot succeed: no retries expected)"
grep -q "Outdated" "$T/agent-promote.out" || { show_file "$T/agent-promote.out" >&2; fail "the failed promote does not name the Outdated disk"; }
expect_state alpha role=Secondary
pass "alone after a restart: Consistent, score 5; outdated: no score, promote fails at once ($(grep -m1 -o 'ocf-exit-reason:.*' "$T/agent-promote.out" | head -c 200))"

pid=$(node_pid alpha)
signal_nodes KILL alpha
expect_rc 7 monitor
expect_rc 0 stop
pass "after kill -9 of alpha's daemon: monitor 7, stop 0"

# ---- ocf-tester -------------------------------------------------------------------------------
# alpha Outdated, beta UpToDate: connected, beta resyncs alpha; ocf-tester then stops and starts
# alpha again and again, promotes and demotes it.
node_up beta
expect_rc 0 start
run_logged wait-sync-2 repd_node alpha wait-sync --timeout 120
d=$(dstate alpha)
[ "$d" = UpToDate/UpToDate ] || fail "alpha is $d after the resync, expected UpToDate/UpToDate"
# ocf-tester (as root) runs meta-data as the user nobody: give it a copy it can reach.
chmod 711 "$T"
mkdir -m 755 "$T/ra"
cp -p "$AGENT" "$T/ra/repd"
rc=0
env PATH="$T/stub:$PATH" OCF_ROOT=$OCF_ROOT timeout 240 ocf-tester -v -n p_repd \
    -o drbd_resource=r0 -o config_dir="${NODE_CONF[alpha]}" -o node=alpha -o run_dir="${NODE_RUN[alpha]}" \
    -o binary="$REPD" -o wfc_timeout=10 "$T/ra/repd" >"$T/ocf-tester.out" 2>&1 </dev/null 8>&- 9>&- || rc=$?
if [ "$rc" -ne 0 ] || ! grep -q "passed all tests" "$T/ocf-tester.out"; then
    show_file "$T/ocf-tester.out" 80 >&2
    fail "ocf-tester exited $rc"
fi
expect_rc 7 monitor
node_is beta role=Secondary disk=UpToDate || fail "beta is not Secondary/UpToDate after ocf-tester: $(node_state beta)"
pass "ocf-tester: $(grep -c '^Testing\|^Checking\|^Promoting\|^Demoting\|^Restarting\|^Stopping' "$T/ocf-tester.out") steps, $(tail -n 1 "$T/ocf-tester.out")"

# ---- nothing left -------------------------------------------------------------------------------
down_node beta
left=""
for d in /proc/[0-9]*; do
    p=${d#/proc/}
    if [ "$p" = "$$" ] || [ "$p" = "$BASHPID" ]; then continue; fi
    cmd=$(tr '\0' ' ' 2>/dev/null <"$d/cmdline") || continue
    [[ $cmd == *"$T/"* ]] && pid_alive "$p" && left+=" $p(${cmd:0:80})"
done
[ -z "$left" ] || fail "processes left running:$left"
pass "no process of the test is left once beta is down"
