#!/usr/bin/env bash
# Fencing with the link cut for real.  Each node runs in its own network
# namespace; two veth pairs join them: the replication link and a second
# network for the fencing path (`fence-address`), where the repd fence-peer
# handler (`repd fence-peer-outdate`) asks the other node to outdate itself.
# A writer on each Primary (python libnbd) keeps a ledger of every write it
# tried and every write that was acknowledged.  Scenarios, each on a fresh pair:
#   stonith - both Primary (allow-two-primaries), fencing resource-and-stonith:
#             the replication link is cut; no write is acknowledged on either
#             side until fencing resolves; alpha (its name sorts first) stays
#             writable, beta is Outdated; after the heal there is no split
#             brain, beta resyncs from alpha, the replicas are identical and
#             every acknowledged write of both ledgers is there.
#   only    - alpha Primary, beta Secondary, fencing resource-only: alpha goes
#             on while its handler outdates beta; `secondary` on alpha is
#             refused while an NBD client holds the export open, naming it;
#             a before-resync-target handler exiting 1 stops the resync (reason
#             in status and log), and once it exits 0 the resync runs;
#             identical replicas, ledger intact.
#   none    - both Primary without fencing: the same cut ends in a reported
#             split brain (no regression).
# run-all-timeout: 600
source "$(dirname "$0")/lib.sh"

require_root
require_tool ip nbdinfo python3 cmp
require_python_nbd
[ -z "$STANDIN" ] || skip "fencing needs repd"
ip netns add "repd-probe-$$" 2>/dev/null || missing "cannot create network namespaces here"
ip netns del "repd-probe-$$"

REP=10.$((150 + $$ % 40)).$(($$ % 250))
FEN=10.$((190 + $$ % 40)).$(($$ % 250))

setup_netns() {  # TAG: namespaces, a replication veth pair and a fencing veth pair
    local tag=$1 n=$(($$ % 1000))
    NS_A="rfe-$tag-a-$$" NS_B="rfe-$tag-b-$$"
    REP_A="rpa$tag$n" REP_B="rpb$tag$n" FEN_A="fna$tag$n" FEN_B="fnb$tag$n"
    REP_A=${REP_A:0:15} REP_B=${REP_B:0:15} FEN_A=${FEN_A:0:15} FEN_B=${FEN_B:0:15}
    ip netns add "$NS_A" && add_netns "$NS_A"
    ip netns add "$NS_B" && add_netns "$NS_B"
    ip link add "$REP_A" type veth peer name "$REP_B"
    ip link add "$FEN_A" type veth peer name "$FEN_B"
    ip link set "$REP_A" netns "$NS_A"; ip link set "$FEN_A" netns "$NS_A"
    ip link set "$REP_B" netns "$NS_B"; ip link set "$FEN_B" netns "$NS_B"
    ip -n "$NS_A" addr add "$REP.1/24" dev "$REP_A"; ip -n "$NS_B" addr add "$REP.2/24" dev "$REP_B"
    ip -n "$NS_A" addr add "$FEN.1/24" dev "$FEN_A"; ip -n "$NS_B" addr add "$FEN.2/24" dev "$FEN_B"
    local ns
    for ns in "$NS_A" "$NS_B"; do ip -n "$ns" link set lo up; done
    ip -n "$NS_A" link set "$REP_A" up; ip -n "$NS_B" link set "$REP_B" up
    ip -n "$NS_A" link set "$FEN_A" up; ip -n "$NS_B" link set "$FEN_B" up
}
cut_replication()  { ip -n "$NS_A" link set "$REP_A" down; }
heal_replication() { ip -n "$NS_A" link set "$REP_A" up; }

# pair TAG FENCING NET-EXTRA [HANDLERS-EXTRA]: a connected pair in two namespaces, in sync.
pair() {
    local tag=$1 fencing=$2 net=$3 handlers=${4:-}
    setup_netns "$tag"
    local fport=$(( $(pick_port) ))
    export TWO_NODE_ALPHA_ADDR=$REP.1 TWO_NODE_BETA_ADDR=$REP.2
    export TWO_NODE_ALPHA_ON="fence-address $FEN.1:$fport;" TWO_NODE_BETA_ON="fence-address $FEN.2:$fport;"
    export TWO_NODE_DISK="fencing $fencing; c-max-rate 4G; c-fill-target 16M; c-min-rate 16M;"
    export TWO_NODE_EXTRA="handlers { fence-peer \"$REPD fence-peer-outdate\"; unfence-peer \"echo unfenced \$REPD_NODE >> $T/unfence-$tag.log\"; $handlers }"
    two_node_setup r0 64M --tag "$tag" --net "$net"
    NODE_NS[alpha]=$NS_A NODE_NS[beta]=$NS_B
    node_create_md alpha; node_create_md beta
    node_up alpha; node_up beta
    wait_until "alpha and beta Connected" 30 0.1 _both_connected || { _show_states alpha beta; fail "$tag: no connection"; }
    run_logged "new-uuid-$tag" repd_node alpha new-current-uuid --clear-bitmap
    wait_state 30 beta disk=UpToDate repl=Established
    wait_state 30 alpha disk=UpToDate repl=Established peer-disk=UpToDate
}

# writer HANDLE TAG FIRST COUNT: writes 4 KiB blocks FIRST..FIRST+COUNT-1 round robin, each with
# a unique tag, until $T/stop-TAG exists; the ledger says TRY before and OK/ERR after each write,
# with the wall-clock time.
writer() {
    local h=$1 tag=$2 first=$3 count=$4
    (exec ip netns exec "${NODE_NS[$h]}" "$PY_NBD" - "$(node_uri "$h")" "$T/ledger-$tag-$h" "$first" "$count" "$h" "$T/stop-$tag" <<'EOF'
import nbd, os, sys, time
uri, path, first, count, node, stop = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
h = nbd.NBD(); h.connect_uri(uri)
i = 0
with open(path, "a", buffering=1) as ledger:
    while not os.path.exists(stop):
        block = first + i % count
        tag = "%s-%08d" % (node, i)
        ledger.write("TRY %.3f %d %s\n" % (time.time(), block, tag))
        try:
            h.pwrite(tag.encode().ljust(4096, b"."), block * 4096)
            ledger.write("OK %.3f %d %s\n" % (time.time(), block, tag))
        except nbd.Error as e:
            ledger.write("ERR %.3f %d %s %s\n" % (time.time(), block, tag, str(e).replace("\n", " ")[:120]))
            time.sleep(0.1)
        i += 1
        time.sleep(0.005)
EOF
    ) >"$T/writer-$tag-$h.out" 2>&1 </dev/null 8>&- 9>&- &
    add_bg_pid "$!"
    WRITER_PIDS+=("$!")
}
WRITER_PIDS=()
stop_writers() {  # TAG
    touch "$T/stop-$1"
    local p
    for p in "${WRITER_PIDS[@]}"; do
        wait_for "writer $p to stop" 300 0.1 pid_dead "$p" || fail "a writer did not stop (blocked on a suspended request?)"
        _unregister BG_PIDS "$p"
    done
    WRITER_PIDS=()
}
acked_count() { grep -c '^OK' "$1" 2>/dev/null || true; }

# check_ledgers FILE LEDGER...: every block's content is its last acknowledged write, or a write
# tried after it that did not report success (it may or may not have happened).
check_ledgers() {
    local file=$1
    shift
    python3 - "$file" "$@" <<'EOF' || fail "an acknowledged write is missing from the final replica (see above)"
import sys
data = open(sys.argv[1], "rb").read()
bad = checked = 0
for path in sys.argv[2:]:
    last_ok, after = {}, {}
    for line in open(path):
        kind, _, block, tag = line.split()[:4]
        block = int(block)
        if kind == "OK":
            last_ok[block] = tag
            after[block] = set()
        elif kind == "TRY":
            after.setdefault(block, set()).add(tag)
    for block, tag in last_ok.items():
        checked += 1
        got = data[block * 4096: block * 4096 + 32].split(b".")[0].decode(errors="replace")
        if got != tag and got not in after.get(block, set()) - {tag}:
            bad += 1
            if bad <= 5:
                print("block %d holds %r; its last acknowledged write was %s" % (block, got, tag))
print("ledger check: %d blocks with an acknowledged write, %d missing" % (checked, bad))
sys.exit(1 if bad else 0)
EOF
}

# The wall-clock time (Unix seconds) of the last log line of HANDLE with PATTERN.
log_time() {
    grep "$2" "$(node_logfile "$1")" | tail -n 1 | awk '{print $1}' | python3 -c '
import sys, datetime
t = sys.stdin.read().strip()
print(datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp() if t else "")'
}

# acked_between LEDGER FROM TO: acknowledgements in (FROM, TO).
acked_between() {
    awk -v a="$2" -v b="$3" '$1 == "OK" && $2 > a && $2 < b' "$1" | wc -l
}

# ---- stonith: both Primary, the link is cut -------------------------------------------------
pair stonith resource-and-stonith "allow-two-primaries; after-sb-0pri discard-zero-changes; after-sb-1pri discard-secondary; after-sb-2pri disconnect;"
promote alpha
promote beta
expect_state alpha role=Primary peer-role=Primary
writer alpha stonith 0 2048
writer beta stonith 8192 2048
sleep 2
[ "$(acked_count "$T/ledger-stonith-alpha")" -gt 0 ] && [ "$(acked_count "$T/ledger-stonith-beta")" -gt 0 ] ||
    fail "stonith: the writers acknowledged nothing before the cut"
cut_replication
# Acknowledgements already on their way when the link went down may still arrive: a quarter of a
# second of slack; everything issued later waits for the peer, then for the fence.
cut_at=$(python3 -c "import time; print('%.3f' % (time.time() + 0.25))")
wait_state 30 beta disk=Outdated
wait_state 30 alpha disk=UpToDate role=Primary
wait_until "alpha resumes" 30 0.2 sh -c "grep -q 'fencing done' '$(node_logfile alpha)'" || fail "stonith: alpha never finished fencing"
resolved_at=$(log_time alpha "fencing done")
sleep 2
a_ok=$(acked_between "$T/ledger-stonith-alpha" "$cut_at" "$resolved_at")
b_ok=$(acked_between "$T/ledger-stonith-beta" "$cut_at" 9999999999)
[ "$a_ok" -eq 0 ] || fail "stonith: alpha acknowledged $a_ok writes between the cut and the end of fencing"
[ "$b_ok" -eq 0 ] || fail "stonith: beta acknowledged $b_ok writes after the cut (it was to be fenced)"
after=$(acked_between "$T/ledger-stonith-alpha" "$resolved_at" 9999999999)
[ "$after" -gt 0 ] || fail "stonith: alpha did not go on writing once fencing was done"
took=$(python3 -c "print('%.1f' % ($resolved_at - $cut_at))")
pass "stonith: link cut; nothing acknowledged on either side until fencing resolved ${took}s later; alpha writable again ($after writes since), beta Outdated"
grep -q "outdated by alpha's fence-peer handler\|this node's disk is Outdated" "$(node_logfile beta)" || fail "stonith: beta's log does not say it was outdated"
status=$(repd_node beta status 2>&1 </dev/null || true)
echo "$status" | grep -q "disk:Outdated" || { echo "$status" >&2; fail "stonith: beta's status does not show disk:Outdated"; }
heal_replication
wait_state 60 beta conn=Connected disk=UpToDate repl=Established
wait_state 60 alpha conn=Connected repl=Established oos=0 peer-disk=UpToDate
if grep -qi "split brain" "$(node_logfile alpha)" "$(node_logfile beta)"; then
    fail "stonith: a split brain was found after the heal"
fi
pass "stonith: after the heal no split brain; beta resynced from alpha ($(grep 'sync decision' "$(node_logfile beta)" | tail -n 1 | sed 's/.*sync decision: //' | cut -c1-60))"
wait_for "unfence-peer handler" 50 0.1 test -s "$T/unfence-stonith.log" || fail "stonith: unfence-peer did not run after the resync"
stop_writers stonith
down_node beta; down_node alpha
cmp "$ALPHA_DISK" "$BETA_DISK" >"$T/cmp.out" 2>&1 || { show_file "$T/cmp.out" 3 >&2; fail "stonith: replicas differ"; }
check_ledgers "$ALPHA_DISK" "$T/ledger-stonith-alpha" "$T/ledger-stonith-beta" | tee "$T/ledger-stonith.check" >&2
pass "stonith: replicas identical; $(tail -n 1 "$T/ledger-stonith.check")"

# ---- resource-only: one Primary goes on ---------------------------------------------------------
pair only resource-only "" "before-resync-target \"test ! -e $T/block-resync\";"
promote alpha
writer alpha only 0 4096
# A client with the export open: `secondary` names it and refuses.
ip netns exec "$NS_A" "$PY_NBD" -c 'import nbd, sys, time; h = nbd.NBD(); h.connect_uri(sys.argv[1]); time.sleep(30)' "$ALPHA_URI" \
    >/dev/null 2>&1 </dev/null 8>&- 9>&- &
holder=$!
add_bg_pid "$holder"
sleep 1
if repd_node alpha secondary >"$T/secondary.out" 2>&1 </dev/null; then
    fail "only: secondary succeeded while NBD clients held the export"
fi
grep -q "NBD client.*python3 (pid" "$T/secondary.out" || { show_file "$T/secondary.out" >&2; fail "only: the refusal does not name the client"; }
pass "only: secondary refused while clients hold the export: $(sed 's/.*refusing/refusing/' "$T/secondary.out" | cut -c1-120)"
kill_pid "$holder"; _unregister BG_PIDS "$holder"
cut_at=$(date +%s.%N)
cut_replication
wait_state 30 beta disk=Outdated
wait_state 30 alpha role=Primary disk=UpToDate
grep -q "fencing done; this node goes on" "$(node_logfile alpha)" || fail "only: alpha's handler did not outdate beta"
sleep 1
during=$(acked_between "$T/ledger-only-alpha" "$cut_at" 9999999999)
[ "$during" -gt 0 ] || fail "only: alpha stopped acknowledging writes (resource-only must not freeze)"
pass "only: alpha went on ($during writes acknowledged since the cut), beta was outdated"
touch "$T/block-resync"
heal_replication
wait_until "before-resync-target refusal" 60 0.2 sh -c "grep -q 'before-resync-target handler exited with status 1' '$(node_logfile beta)'" ||
    fail "only: the before-resync-target handler's refusal is not in beta's log"
msg=$(repd_node beta status --json 2>/dev/null </dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)[0].get("repd-message",""))')
case "$msg" in *before-resync-target*) ;; *) fail "only: beta's status does not say why the resync did not start: $msg" ;; esac
expect_state beta disk=Outdated
pass "only: before-resync-target exiting 1 stops the resync; status says: $(echo "$msg" | cut -c1-100)"
rm -f "$T/block-resync"
wait_state 90 beta conn=Connected disk=UpToDate repl=Established
wait_state 60 alpha conn=Connected repl=Established oos=0
stop_writers only
down_node beta; down_node alpha
cmp "$ALPHA_DISK" "$BETA_DISK" >"$T/cmp.out" 2>&1 || { show_file "$T/cmp.out" 3 >&2; fail "only: replicas differ"; }
check_ledgers "$ALPHA_DISK" "$T/ledger-only-alpha" | tee "$T/ledger-only.check" >&2
pass "only: the resync ran once the handler allowed it; replicas identical; $(tail -n 1 "$T/ledger-only.check")"

# ---- no fencing: the same cut is a split brain ------------------------------------------------------
pair none dont-care "allow-two-primaries; after-sb-0pri disconnect; after-sb-1pri disconnect; after-sb-2pri disconnect;"
promote alpha
promote beta
writer alpha none 0 512
writer beta none 8192 512
sleep 1
cut_replication
wait_state 30 alpha conn!=Connected
wait_state 30 beta conn!=Connected
sleep 2
heal_replication
wait_until "split brain reported" 60 0.2 sh -c "grep -q 'split brain' '$(node_logfile alpha)'" || fail "none: no split brain was reported"
stop_writers none
pass "none: without fencing the cut ends in a reported split brain, as before"
