#!/usr/bin/env bash
# What an operator watches during a real resync (issue 6):
#  - `repd overview` on the SyncSource shows DRBD's progress bar line and
#    the finish/speed line, and the sync'ed percentage advances;
#  - `repd overview --watch=1` in a real terminal (tmux) redraws in place:
#    the screen read back shows the bar, and a later screen a higher figure;
#  - `repd events --json` on the SyncTarget is waited on (bounded) for the
#    change that ends the resync (replication Established, disk UpToDate);
#  - `repd status --statistics` shows the rate and ETA lines during sync.
# run-all-timeout: 600
source "$(dirname "$0")/lib.sh"

require_tool nbdinfo python3 tmux
[ -z "$STANDIN" ] || skip "needs repd"

# A slow fixed-rate sync of 256 MiB (about 16 s) leaves time to watch it.
export TWO_NODE_DISK="c-plan-ahead 0; resync-rate 16M; c-min-rate 0;"
start_two_nodes r0 256M

# Events on beta, from before the sync starts.
( repd_node beta events --json >"$T/events.jsonl" 2>"$T/events.err" </dev/null 8>&- 9>&- ) &
add_bg_pid "$!"
EVENTS_PID=$!
wait_until "events initial state" 20 0.1 grep -q '"object":"-"' "$T/events.jsonl" || fail "repd events printed no initial state"

run_logged primary-force repd_node alpha primary --force
wait_state 30 alpha repl=SyncSource

percent() {  # FILE -> the sync'ed percentage on the bar line
    python3 - "$1" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r"\[=*>?\.*\] sync'ed:\s*([\d.]+)% \(\d+/\d+\)M", text)
print(m.group(1) if m else "none")
EOF
}
repd_node alpha overview >"$T/ov1.txt" 2>&1 || { cat "$T/ov1.txt" >&2; fail "repd overview failed during the resync"; }
sleep 3
repd_node alpha overview >"$T/ov2.txt" 2>&1 || fail "repd overview failed"
p1=$(percent "$T/ov1.txt") p2=$(percent "$T/ov2.txt")
sed 's/^/    /' "$T/ov2.txt"
[ "$p1" != none ] && [ "$p2" != none ] || fail "no progress bar line in repd overview (got: $(head -3 "$T/ov1.txt"))"
grep -Eq "finish: [0-9]+:[0-9]{2}:[0-9]{2} speed: [0-9,]+ \([0-9,]+\) K/sec" "$T/ov2.txt" || fail "no 'finish: ... speed: ... K/sec' line"
python3 -c "import sys; sys.exit(0 if $p2 > $p1 else 1)" || fail "the sync'ed figure did not advance ($p1% -> $p2%)"
pass "repd overview: progress bar advanced from $p1% to $p2%, finish/speed line present"

repd_node alpha status --statistics >"$T/stats.txt" 2>&1 || fail "status --statistics failed"
grep -q "out-of-sync:" "$T/stats.txt" || { cat "$T/stats.txt" >&2; fail "status --statistics lacks the counters"; }
grep -q "done:" "$T/stats.txt" || { cat "$T/stats.txt" >&2; fail "status during sync lacks done:"; }
pass "status --statistics during the resync shows done: and the counters"

# The same in a real terminal, redrawn in place.
SESSION="repd-ov-$$"
tmux new-session -d -s "$SESSION" -x 132 -y 20 \
    "REPD_CONFIG_DIR=${NODE_CONF[alpha]} $REPD overview --watch=1 --config-dir ${NODE_CONF[alpha]} --node alpha --run-dir ${NODE_RUN[alpha]}" ||
    fail "cannot start tmux"
cleanup_tmux() { tmux kill-session -t "$SESSION" 2>/dev/null || true; }
trap 'cleanup_tmux' RETURN
sleep 2.5
tmux capture-pane -p -t "$SESSION" >"$T/screen1.txt"
sleep 2.5
tmux capture-pane -p -t "$SESSION" >"$T/screen2.txt"
tmux kill-session -t "$SESSION" 2>/dev/null || true
s1=$(percent "$T/screen1.txt") s2=$(percent "$T/screen2.txt")
[ "$s1" != none ] && [ "$s2" != none ] || { cat "$T/screen1.txt" >&2; fail "the tmux screen shows no progress bar"; }
[ "$(grep -c "sync'ed:" "$T/screen2.txt")" = 1 ] || { cat "$T/screen2.txt" >&2; fail "--watch did not redraw in place (the bar appears more than once)"; }
python3 -c "import sys; sys.exit(0 if $s2 > $s1 else 1)" || fail "the watched figure did not advance ($s1% -> $s2%)"
pass "overview --watch in tmux redraws in place: $s1% then $s2%"

# Wait on the event stream for the end of the resync.
cat >"$T/events-done.py" <<'EOF'
import json, sys
seen_sync = done = False
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("object") == "peer-device" and e.get("replication") == "SyncTarget":
        seen_sync = True
    if seen_sync and e.get("action") == "change" and e.get("object") == "peer-device" and e.get("replication") == "Established":
        done = True
sys.exit(0 if done else 1)
EOF
wait_until "events: resync finished on beta" 120 0.2 python3 "$T/events-done.py" "$T/events.jsonl" ||
    { tail -5 "$T/events.jsonl" >&2; fail "repd events never reported the end of the resync"; }
grep -q '"disk":"UpToDate"' "$T/events.jsonl" || fail "repd events did not report beta's disk becoming UpToDate"
kill_pid "$EVENTS_PID"
pass "repd events --json reported SyncTarget, then Established and disk UpToDate"
node_is beta disk=UpToDate || fail "beta not UpToDate after the events said so"
