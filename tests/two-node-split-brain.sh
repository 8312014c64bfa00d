#!/usr/bin/env bash
# Split brain, with the link cut for real: each node runs in its own network
# namespace, joined by a veth pair that is brought down (no packets pass, no
# connection is reset) and up again.  Each scenario is a fresh pair:
#   0pri  walkthrough policies (after-sb-0pri discard-zero-changes,
#         after-sb-1pri discard-secondary, after-sb-2pri disconnect), both
#         Secondary at reconnect, beta changed nothing: resolved automatically;
#   1pri  same policies, alpha Primary at reconnect: beta's changes are
#         discarded, both replicas hold alpha's data;
#   2pri  same policies and allow-two-primaries, both Primary: disconnect,
#         both StandAlone, split brain in status (with the command), the
#         split-brain handler runs; `connect --dry-run` predicts; the manual
#         recovery (`connect --discard-my-data` on beta, `connect` on alpha)
#         resyncs only the blocks changed on either side;
#   least discard-least-changes, and
#   young discard-younger-primary, each end to end.
# Every scenario ends with both backing files identical and equal to alpha's.
# run-all-timeout: 900
source "$(dirname "$0")/lib.sh"

require_root
require_tool ip nbdinfo python3 cmp sha256sum
require_python_nbd
[ -z "$STANDIN" ] || skip "split-brain handling needs repd"
ip netns add "repd-probe-$$" 2>/dev/null || skip "cannot create network namespaces here"
ip netns del "repd-probe-$$"

NET_WALK="after-sb-0pri discard-zero-changes; after-sb-1pri discard-secondary; after-sb-2pri disconnect;"
SUBNET=10.$((200 + $$ % 50)).$(($$ % 250))

setup_netns() {  # TAG: namespaces and the veth pair, node addresses
    local tag=$1
    NS_A="rsb-$tag-a-$$" NS_B="rsb-$tag-b-$$" VETH_A="rsa$tag$(($$ % 1000))" VETH_B="rsb$tag$(($$ % 1000))"
    VETH_A=${VETH_A:0:15} VETH_B=${VETH_B:0:15}
    ip netns add "$NS_A" && add_netns "$NS_A"
    ip netns add "$NS_B" && add_netns "$NS_B"
    ip link add "$VETH_A" type veth peer name "$VETH_B"
    ip link set "$VETH_A" netns "$NS_A"
    ip link set "$VETH_B" netns "$NS_B"
    ip -n "$NS_A" addr add "$SUBNET.1/24" dev "$VETH_A"
    ip -n "$NS_B" addr add "$SUBNET.2/24" dev "$VETH_B"
    ip -n "$NS_A" link set lo up; ip -n "$NS_B" link set lo up
    ip -n "$NS_A" link set "$VETH_A" up; ip -n "$NS_B" link set "$VETH_B" up
    export TWO_NODE_ALPHA_ADDR=$SUBNET.1 TWO_NODE_BETA_ADDR=$SUBNET.2
}
cut_link()  { ip -n "$NS_A" link set "$VETH_A" down; }
heal_link() { ip -n "$NS_A" link set "$VETH_A" up; }

pair() {  # TAG NET-OPTIONS: a connected, in-sync pair in two namespaces
    local tag=$1 net=$2
    setup_netns "$tag"
    export TWO_NODE_EXTRA="handlers { split-brain \"echo \$REPD_NODE \$REPD_OUTCOME >> $T/handler-$tag.log\"; }"
    two_node_setup r0 64M --tag "$tag" --net "$net"
    NODE_NS[alpha]=$NS_A NODE_NS[beta]=$NS_B
    node_create_md alpha; node_create_md beta
    node_up alpha; node_up beta
    wait_until "alpha and beta Connected" 30 0.1 _both_connected || { _show_states alpha beta; fail "$tag: no connection"; }
    run_logged "new-uuid-$tag" repd_node alpha new-current-uuid --clear-bitmap
    wait_state 30 beta disk=UpToDate repl=Established
    wait_state 30 alpha disk=UpToDate repl=Established peer-disk=UpToDate
}
write_blocks() {  # HANDLE SEED COUNT: COUNT distinct 4 KiB blocks, content from SEED
    "$PY_NBD" - "$(node_uri "$1")" "$2" "$3" <<'EOF' || fail "writing blocks on $1"
import nbd, sys, random
uri, seed, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
h = nbd.NBD(); h.connect_uri(uri)
rnd = random.Random(seed)
for b in rnd.sample(range(h.get_size() // 4096), n):
    h.pwrite(bytes([seed % 250 + 1]) * 4096, b * 4096)
h.flush(); h.shutdown()
EOF
}
split() {  # wait until both have noticed the cut
    cut_link
    wait_state 30 alpha conn!=Connected
    wait_state 30 beta conn!=Connected
}
reconnected_in_sync() {  # TAG: after the heal, both Established, nothing out of sync
    wait_until "$1: resolved and in sync" 60 0.2 node_is alpha conn=Connected repl=Established oos=0 ||
        { _show_states alpha beta; fail "$1: alpha not Connected/Established/in sync after the heal"; }
    wait_state 30 beta conn=Connected repl=Established oos=0 disk=UpToDate
}
identical_with_alpha() {  # TAG ALPHA-SHA: replicas identical, alpha's data unchanged by the resolution
    local tag=$1 want=$2
    down_node beta; down_node alpha
    cmp "$ALPHA_DISK" "$BETA_DISK" >"$T/cmp.out" 2>&1 || { show_file "$T/cmp.out" 3 >&2; fail "$tag: replicas differ"; }
    [ "$(sha256sum <"$ALPHA_DISK")" = "$want" ] || fail "$tag: alpha's data changed: the wrong side was discarded"
    pass "$tag: both replicas identical, holding alpha's data"
}
decision_in_log() {  # HANDLE OFFSET PATTERN
    node_log_since "$1" "$2" | grep -q -- "$3" || { node_log_since "$1" "$2" | grep -i 'split brain' | tail -5 >&2; fail "$1's log lacks '$3'"; }
}

# ---- 0pri: both Secondary, beta changed nothing ------------------------------------
pair 0p "$NET_WALK"
promote alpha
split
write_blocks alpha 11 20
promote beta                       # beta starts a generation too, but writes nothing
run_logged sec-beta repd_node beta secondary
run_logged sec-alpha repd_node alpha secondary
sha=$(sha256sum <"$ALPHA_DISK")
off=$(node_log_size beta)
heal_link
reconnected_in_sync 0pri
decision_in_log beta "$off" "after-sb-0pri discard-zero-changes"
pass "0pri: split brain resolved by discard-zero-changes (beta changed nothing)"
identical_with_alpha 0pri "$sha"

# ---- 1pri: alpha Primary at reconnect, beta Secondary ---------------------------------
pair 1p "$NET_WALK"
promote alpha
split
write_blocks alpha 21 20
promote beta
write_blocks beta 22 10
run_logged sec-beta repd_node beta secondary
sleep 0.5
sha=$(sha256sum <"$ALPHA_DISK")
off=$(node_log_size beta)
heal_link
reconnected_in_sync 1pri
decision_in_log beta "$off" "after-sb-1pri discard-secondary"
expect_state alpha role=Primary
pass "1pri: split brain resolved by discard-secondary: beta's 10 blocks discarded"
identical_with_alpha 1pri "$sha"

# ---- 2pri: both Primary: disconnect, then the manual recovery ---------------------------
pair 2p "$NET_WALK allow-two-primaries;"
promote alpha
promote beta
split
write_blocks alpha 31 20
write_blocks beta 32 10
heal_link
wait_state 30 alpha conn=StandAlone
wait_state 30 beta conn=StandAlone
repd_node beta status >"$T/sb-status.txt" 2>&1 || true
grep -q "split brain" "$T/sb-status.txt" || { cat "$T/sb-status.txt" >&2; fail "2pri: beta's status does not say split brain"; }
grep -q "repd connect --discard-my-data r0" "$T/sb-status.txt" || { cat "$T/sb-status.txt" >&2; fail "2pri: status lacks the resolving command"; }
wait_until "split-brain handler ran on both" 20 0.2 test "$(grep -c disconnect "$T/handler-2p.log" 2>/dev/null)" -ge 2 ||
    fail "2pri: the split-brain handler did not run on both nodes ($(cat "$T/handler-2p.log" 2>/dev/null))"
pass "2pri: both StandAlone, split brain reported with the command, split-brain handler ran on both"

run_logged sec-beta-2 repd_node beta secondary
repd_node beta connect --dry-run --discard-my-data >"$T/dry.txt" 2>&1 || { cat "$T/dry.txt" >&2; fail "connect --dry-run failed"; }
grep -q "discard-my-data" "$T/dry.txt" && grep -q "nothing was changed" "$T/dry.txt" || { cat "$T/dry.txt" >&2; fail "connect --dry-run says nothing useful"; }
expect_state beta conn=StandAlone
sed 's/^/    /' "$T/dry.txt"
pass "connect --dry-run predicts the outcome and changes nothing"
sha=$(sha256sum <"$ALPHA_DISK")
sent0=$(repd_node alpha status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["connections"][0]["peer_devices"][0]["sent"])')
run_logged connect-beta repd_node beta connect --discard-my-data
run_logged connect-alpha repd_node alpha connect
reconnected_in_sync 2pri-recovery
sent=$(( $(repd_node alpha status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["connections"][0]["peer_devices"][0]["sent"])') - sent0 ))
[ "$sent" -le $(( (20 + 10) * 4 + 8)) ] || fail "2pri recovery sent $sent KiB for at most 30 changed blocks"
[ "$sent" -ge $(( 10 * 4 )) ] || fail "2pri recovery sent only $sent KiB: beta's 10 changed blocks must be overwritten"
expect_state alpha role=Primary
pass "manual recovery: Connected again, $sent KiB resynced for 30 blocks changed on either side"
identical_with_alpha 2pri "$sha"

# ---- discard-least-changes --------------------------------------------------------------
pair lc "after-sb-0pri discard-least-changes;"
promote alpha
split
write_blocks alpha 41 30
run_logged sec-alpha-lc repd_node alpha secondary
promote beta
write_blocks beta 42 5
run_logged sec-beta-lc repd_node beta secondary
sha=$(sha256sum <"$ALPHA_DISK")
off=$(node_log_size beta)
heal_link
reconnected_in_sync least
decision_in_log beta "$off" "discard-least-changes"
pass "discard-least-changes: beta (5 blocks) lost to alpha (30 blocks)"
identical_with_alpha least "$sha"

# ---- discard-younger-primary ---------------------------------------------------------------
pair yp "after-sb-0pri discard-younger-primary;"
promote alpha                      # Primary when the link fails: the older Primary
split
write_blocks alpha 51 5
run_logged sec-alpha-yp repd_node alpha secondary
promote beta                       # promoted during the split: the younger Primary
write_blocks beta 52 30
run_logged sec-beta-yp repd_node beta secondary
sha=$(sha256sum <"$ALPHA_DISK")
off=$(node_log_size beta)
heal_link
reconnected_in_sync younger
decision_in_log beta "$off" "discard-younger-primary"
pass "discard-younger-primary: beta (younger, 30 blocks) discarded, alpha (older, 5 blocks) kept"
identical_with_alpha younger "$sha"
