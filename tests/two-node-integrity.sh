#!/usr/bin/env bash
# data-integrity-alg (issue 18, part 4): a replicated write whose data is
# altered in flight. Both directions of the replication link go through
# peer_corrupting_proxy.py, which inverts the last data byte of one `write`
# frame each time it is told to.
#  - without data-integrity-alg the corruption goes unnoticed: the replicas
#    differ afterwards (this proves the proxy really corrupts);
#  - with `data-integrity-alg crc32c;` beta detects it, logs it, the
#    connection is dropped and re-established, the block is resynced, and the
#    replicas are identical byte for byte.
# run-all-timeout: 240
source "$(dirname "$0")/lib.sh"

[ -z "$STANDIN" ] || skip "needs repd"
require_repd
require_python_nbd
require_tool cmp python3 ss nbdinfo

SIZE=32M
res_file() {  # NET DIR ALPHA-PORT BETA-PORT: the resource as one node sees it
    cat <<EOF
resource r0 {
  net { $1 }
  on alpha { device none; disk $2/w/alpha.img; address 127.0.0.1:$3; meta-disk $2/w/alpha.md; }
  on beta  { device none; disk $2/w/beta.img;  address 127.0.0.2:$4; meta-disk $2/w/beta.md; }
}
EOF
}
# round NAME NET-EXTRA: a fresh pair through the proxy; 64 writes through alpha, one corrupted.
round() {
    local name=$1 extra=$2 pa pb px py dir
    pa=$(pick_port) || fail "no free port"
    pb=$((pa + 1)) px=$((pa + 2)) py=$((pa + 3))
    dir="$T/$name"
    mkdir -p "$dir/w" "$dir/etc-alpha" "$dir/etc-beta"
    truncate -s "$SIZE" "$dir/w/alpha.img" "$dir/w/beta.img"
    truncate -s 16M "$dir/w/alpha.md" "$dir/w/beta.md"
    # Each node reaches the other through the proxy: alpha dials beta at px, beta dials alpha at py.
    local net="protocol C; $TWO_NODE_NET_DEFAULT $extra"
    res_file "$net" "$dir" "$pa" "$px" >"$dir/etc-alpha/r0.res"
    res_file "$net" "$dir" "$py" "$pb" >"$dir/etc-beta/r0.res"
    python3 "$(dirname "$0")/peer_corrupting_proxy.py" "$dir/corrupt" "$dir/corrupted.log" \
        "127.0.0.2:$px=127.0.0.2:$pb" "127.0.0.1:$py=127.0.0.1:$pa" >"$dir/proxy.log" 2>&1 </dev/null 8>&- 9>&- &
    add_bg_pid "$!"
    PROXY=$!
    node_define alpha alpha r0 "$dir/etc-alpha" "$dir/run-alpha"
    node_define beta beta r0 "$dir/etc-beta" "$dir/run-beta"
    node_create_md alpha
    node_create_md beta
    node_up alpha
    node_up beta
    run_logged "$name-wait-connect" repd_node alpha wait-connect --timeout 30
    run_logged "$name-primary" repd_node alpha primary --force
    run_logged "$name-wait-sync" repd_node beta wait-sync --timeout 60
    BEFORE=$(grep -c "connected to peer" "$(node_logfile alpha)")
    BETA_LOG_AT=$(node_log_size beta)
    touch "$dir/corrupt"
    "$PY_NBD" - "$(node_uri alpha)" <<'EOF' || fail "$name: writes through alpha failed"
import nbd, os, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
for i in range(64):
    h.pwrite(os.urandom(4096), i * 262144)
h.flush()
h.shutdown()
EOF
    [ -s "$dir/corrupted.log" ] || { cat "$dir/proxy.log" >&2; fail "$name: the proxy corrupted no write"; }
    [ ! -e "$dir/corrupt" ] || fail "$name: the proxy saw no data write to corrupt"
    CORRUPTED=$(head -1 "$dir/corrupted.log")
    DIR=$dir
}
finish() {  # NAME: both down, then compare
    run_logged "$1-down-alpha" repd_node alpha down
    run_logged "$1-down-beta" repd_node beta down
    kill_pid "$PROXY"
}

# ---- without data-integrity-alg ----------------------------------------------------------
round plain ""
sleep 2
finish plain
if cmp -s "$DIR/w/alpha.img" "$DIR/w/beta.img"; then
    fail "without data-integrity-alg the corrupted write ($CORRUPTED) left identical replicas: the proxy did not corrupt"
fi
where=$(cmp "$DIR/w/alpha.img" "$DIR/w/beta.img" 2>&1 | head -1 || true)
pass "without data-integrity-alg: write '$CORRUPTED' (sequence offset length) corrupted in flight went unnoticed: $where"

# ---- with data-integrity-alg crc32c --------------------------------------------------------
round crc "data-integrity-alg crc32c;"
wait_until "beta to log the mismatch" 20 0.2 sh -c "tail -c +$((BETA_LOG_AT + 1)) '$(node_logfile beta)' | grep -q 'does not match its digest'" ||
    { node_log_since beta "$BETA_LOG_AT" >&2; fail "beta did not report the corrupted write"; }
line=$(node_log_since beta "$BETA_LOG_AT" | grep -m1 "does not match its digest")
reconnected() { [ "$(grep -c "connected to peer" "$(node_logfile alpha)")" -gt "$BEFORE" ]; }
wait_until "the pair to reconnect" 30 0.2 reconnected || fail "the pair did not reconnect after the mismatch"
run_logged crc-wait-sync repd_node alpha wait-sync --timeout 60
resync=$(node_log_since alpha 0 | grep "resync finished as SyncSource" | tail -1 | sed 's/.*resync finished/resync finished/')
finish crc
cmp "$DIR/w/alpha.img" "$DIR/w/beta.img" || fail "with data-integrity-alg crc32c the replicas differ after the resync"
pass "data-integrity-alg crc32c: write '$CORRUPTED' corrupted in flight; beta: ${line#*WARNING: }; reconnected; alpha: $resync; replicas identical"
