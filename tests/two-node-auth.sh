#!/usr/bin/env bash
# Who may connect to the replication port.  alpha runs the test resource t0
# (cram-hmac-alg sha256, shared-secret "s3cret"); against it:
#   (a) beta with a different shared-secret (its own config dir): the pair
#       never reaches Connected within 8 s; alpha's log or repd-message
#       mentions authentication; alpha still serves NBD.
#   (b) beta configured with another resource name (t9) on the same
#       addresses: refused the same way; alpha's log or message says why
#       (the resource, or authentication/shared-secret).
#   (c) raw hostile bytes on 127.0.0.1:PORT (tests/peer_hostile_client.py):
#       garbage, bad magic, magic with payload length 0xFFFFFFF0, a 5-byte
#       header, 50 quick connections.  After each: the same daemon pid is
#       alive, nbdinfo works, VmRSS < REPD_TEST_MAX_RSS_MIB (default 200).
#       Finally the real beta connects: the listener is not wedged.
source "$(dirname "$0")/lib.sh"

require_tool nbdinfo python3 ss
CLIENT="$TESTS_DIR/peer_hostile_client.py"
[ -r "$CLIENT" ] || fail "missing $CLIENT"
MAX_RSS_MIB=${REPD_TEST_MAX_RSS_MIB:-200}
WATCH=8

two_node_setup t0 64M
node_create_md alpha
node_up alpha
APID=$(node_pid alpha)

# Fail if alpha or HANDLE reaches Connected within WATCH seconds.
never_connected() {  # HANDLE WHAT
    local h=$1 what=$2 end=$((SECONDS + WATCH))
    while [ "$SECONDS" -lt "$end" ]; do
        if node_is alpha conn=Connected || node_is "$h" conn=Connected; then
            _show_states alpha "$h"
            fail "$what: the pair reached Connected"
        fi
        sleep 0.25
    done
}

# alpha's log from byte OFFSET on, and its current repd-message, into FILE.
alpha_evidence() {  # OFFSET FILE
    {
        node_log_since alpha "$1"
        node_state alpha >/dev/null && json_query "$T/status-alpha.json" 'j[0].get("repd-message") or ""'
    } >"$2" 2>&1
}

# A second config dir for beta: resource RES, net section NET.
beta_variant() {  # HANDLE RES NET
    local h=$1 res=$2 net=$3 conf="$T/etc-$1" dir="$T/w-$1"
    mkdir -p "$conf" "$dir"
    truncate -s 64M "$dir/alpha.img" "$dir/beta.img"
    truncate -s "${REPD_TEST_MD_SIZE:-16M}" "$dir/alpha.md" "$dir/beta.md"
    write_two_node_res "$conf/$res.res" "$res" "$PORT" "$dir" "$net"
    node_define "$h" beta "$res" "$conf" "$T/run-$h"
    node_create_md "$h"
    node_up "$h"
}

if [ -z "$STANDIN" ]; then
    # ---- (a) wrong shared-secret ----------------------------------------------
    off=$(node_log_size alpha)
    beta_variant beta-secret t0 "protocol C; ${TWO_NODE_NET_DEFAULT/s3cret/not-the-s3cret}"
    checkpoint wrong-secret-up
    never_connected beta-secret "different shared-secret"
    alpha_evidence "$off" "$T/evidence-a.txt"
    grep -qi 'authenticat' "$T/evidence-a.txt" || {
        show_file "$T/evidence-a.txt" 30 >&2
        fail "different shared-secret: neither alpha's log nor its repd-message mentions authentication"
    }
    pass "different shared-secret: never Connected in ${WATCH}s; alpha says: $(grep -i -m1 'authenticat' "$T/evidence-a.txt" | cut -c1-160)"
    node_serving alpha "after the failed authentication"
    [ "$(node_pid alpha)" = "$APID" ] || fail "alpha's pid changed"
    pass "alpha still serves nbdinfo after refusing the wrong secret"
    down_node beta-secret

    # ---- (b) wrong resource name ----------------------------------------------
    off=$(node_log_size alpha)
    beta_variant beta-t9 t9 "protocol C; $TWO_NODE_NET_DEFAULT"
    never_connected beta-t9 "peer configured as resource t9"
    alpha_evidence "$off" "$T/evidence-b.txt"
    re='t9|resource[ -]name|unknown resource|resource[^.]*(mismatch|differ|refus|reject|expect|wrong|unknown|not match)'
    re="$re|(mismatch|differ|refus|reject|expect|wrong|unknown)[^.]*resource|authenticat|shared-secret"
    grep -Eqi "$re" "$T/evidence-b.txt" || {
        show_file "$T/evidence-b.txt" 30 >&2
        fail "peer with resource t9: alpha's log/repd-message does not say why it refused (resource, authentication or shared-secret)"
    }
    pass "peer with resource t9: never Connected in ${WATCH}s; alpha says: $(grep -Ei -m1 "$re" "$T/evidence-b.txt" | cut -c1-160)"
    node_serving alpha "after refusing the t9 peer"
    down_node beta-t9
fi

# ---- (c) hostile bytes on the replication port -----------------------------------
listening() { [ -n "$(ss -Hltn "src 127.0.0.1:$PORT" 2>/dev/null)" ]; }
wait_until "alpha listening on 127.0.0.1:$PORT" 10 0.2 listening || {
    ss -Htanp "sport = :$PORT" >&2 || true
    fail "alpha does not listen on its replication address 127.0.0.1:$PORT"
}
rss_kib() { awk '/^VmRSS:/ {print $2; exit}' "/proc/$1/status" 2>/dev/null; }

for c in garbage bad-magic huge-length truncated flood; do
    rc=0
    timeout 120 python3 "$CLIENT" --host 127.0.0.1 --port "$PORT" --pid "$APID" \
        --max-rss-mib "$MAX_RSS_MIB" "$c" >"$T/hostile-$c.out" 2>&1 </dev/null || rc=$?
    if [ "$rc" -ne 0 ]; then
        sed 's/^/    /' "$T/hostile-$c.out" >&2
        fail "hostile peer bytes '$c' (client exit $rc)"
    fi
    [ "$(node_pid alpha)" = "$APID" ] || fail "after '$c': alpha's pid file changed from $APID to $(node_pid alpha)"
    node_serving alpha "after hostile peer bytes '$c'"
    rss=$(rss_kib "$APID")
    if [ -z "$rss" ] || [ "$rss" -ge $((MAX_RSS_MIB * 1024)) ]; then
        fail "after '$c': alpha's VmRSS is ${rss:-?} KiB (limit $MAX_RSS_MIB MiB)"
    fi
    pass "hostile peer bytes '$c': alpha alive, serving, VmRSS $((rss / 1024)) MiB$(
        grep -h '^INFO: [^:]*: daemon [ck]' "$T/hostile-$c.out" | sed 's/^INFO: /; /' | tr -d '\n')"
done

# ---- the real peer still gets in ---------------------------------------------------
node_create_md beta
node_up beta
wait_state 30 alpha conn=Connected
wait_state 30 beta conn=Connected
pass "after all that, the real beta connects to alpha (Connected)"
