#!/usr/bin/env bash
# `repd adjust` (issue 17, part 1) on a real Connected pair:
#  - during a full sync at a fixed 8 MiB/s, resync-rate 64M in the file and
#    `adjust` on the SyncSource: the running resync takes the new rate (status
#    `want`, and it finishes far sooner), on the same connection;
#  - --dry-run lists the change and applies nothing;
#  - protocol C -> A -> C under writes: status shows each protocol, the
#    connection stays up (no reconnect in the logs), no resync starts, and the
#    replicas are identical byte for byte;
#  - a changed disk path is refused with the reason, and nothing of the same
#    file is applied (its protocol change neither);
#  - a broken file fails with file:line before the daemon is asked; a
#    resource that is not up gives exit 20.
# run-all-timeout: 300
source "$(dirname "$0")/lib.sh"

[ -z "$STANDIN" ] || skip "needs repd"
require_python_nbd
require_tool cmp sed
export TWO_NODE_DISK="c-plan-ahead 0; resync-rate 8M; c-min-rate 0;"
two_node_setup r0 128M
RES="$REPD_CONFIG_DIR/r0.res"
node_create_md alpha
node_create_md beta
node_up alpha
node_up beta
run_logged wait-connect repd_node alpha wait-connect --timeout 30

connections() { grep -c "connected to peer" "$(node_logfile "$1")" || true; }
status_field() {  # HANDLE PYTHON-EXPR-ON-j
    repd_node "$1" status --json >"$T/st.json" 2>/dev/null </dev/null || fail "status on $1 failed"
    json_query "$T/st.json" "$2"
}
run_adjust() {  # HANDLE [ARGS...]
    ADJ_RC=0
    local h=$1
    shift
    repd_node "$h" adjust "$@" >"$T/adjust.out" 2>&1 </dev/null || ADJ_RC=$?
}

# ---- resync-rate during a running resync ---------------------------------------------------
run_logged primary-force repd_node alpha primary --force
is_source() { [ "$(repd_node alpha cstate 2>/dev/null </dev/null)" = SyncSource ]; }
wait_until "the resync to start" 20 0.1 is_source || fail "the resync never started"
before=$(connections alpha)
want=$(status_field alpha 'j[0]["connections"][0]["peer_devices"][0].get("want")')
sed -i 's/resync-rate 8M;/resync-rate 64M;/' "$RES"
run_adjust alpha --dry-run
[ "$ADJ_RC" = 0 ] || { cat "$T/adjust.out" >&2; fail "adjust --dry-run failed ($ADJ_RC)"; }
grep -q "would adjust" "$T/adjust.out" && grep -q "disk resync-rate: 8M -> 64M: applied now" "$T/adjust.out" ||
    { cat "$T/adjust.out" >&2; fail "adjust --dry-run does not list the resync-rate change"; }
dry=$(status_field alpha 'j[0]["connections"][0]["peer_devices"][0].get("want")')
[ "$dry" = "$want" ] || fail "--dry-run changed the rate: want $want -> $dry"
pass "--dry-run: $(tr '\n' ' ' <"$T/adjust.out"); want stays $dry MiB/s"

start=$SECONDS
run_adjust alpha
[ "$ADJ_RC" = 0 ] || { cat "$T/adjust.out" >&2; fail "adjust failed ($ADJ_RC)"; }
now=$(status_field alpha 'j[0]["connections"][0]["peer_devices"][0].get("want")')
[ "$now" = 64 ] || [ "$now" = 64.0 ] || fail "after adjust the resync wants $now MiB/s, expected 64"
run_adjust beta
[ "$ADJ_RC" = 0 ] || { cat "$T/adjust.out" >&2; fail "adjust on beta failed ($ADJ_RC)"; }
run_logged wait-sync repd_node beta wait-sync --timeout 60
took=$((SECONDS - start))
# 128 MiB at 8 MiB/s is 16 s; at 64 MiB/s the rest takes about 2 s.
[ "$took" -le 8 ] || fail "the resync took ${took}s more after resync-rate 64M"
[ "$(connections alpha)" = "$before" ] || fail "adjust reconnected (connections $before -> $(connections alpha))"
pass "resync-rate 8M -> 64M during the resync: want $want -> $now MiB/s, finished ${took}s later, same connection"

# ---- protocol C -> A -> C under writes ------------------------------------------------------
log_at=$(node_log_size alpha)
"$PY_NBD" - "$ALPHA_URI" "$REPD" "${NODE_CONF[alpha]}" "${NODE_RUN[alpha]}" "${NODE_RUN[beta]}" "$RES" <<'EOF' >"$T/proto.out" 2>&1 ||
import nbd, os, subprocess, sys, threading
uri, repd, conf, run_a, run_b, res = sys.argv[1:7]
h = nbd.NBD()
h.connect_uri(uri)
stop = threading.Event()
count = [0]
def writer():
    i = 0
    while not stop.is_set():
        h.pwrite(os.urandom(4096), (i % 4096) * 8192)
        i += 1
    count[0] = i
t = threading.Thread(target=writer)
t.start()
def adjust(proto):
    text = open(res).read()
    for p in "ABC":
        text = text.replace(f"protocol {p};", f"protocol {proto};")
    open(res, "w").write(text)
    for node, run in (("alpha", run_a), ("beta", run_b)):
        out = subprocess.run([repd, "adjust", "r0", "--config-dir", conf, "--node", node, "--run-dir", run],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, f"adjust {node} to {proto}: {out.returncode} {out.stdout} {out.stderr}"
        print(out.stdout.strip().replace("\n", " "))
        st = subprocess.run([repd, "status", "r0", "--json", "--config-dir", conf, "--node", node, "--run-dir", run],
                            capture_output=True, text=True, timeout=60)
        assert f'"repd-protocol" : "{proto}"' in st.stdout, f"{node} status does not show protocol {proto}"
import time
time.sleep(1)
adjust("A")
time.sleep(2)
adjust("C")
time.sleep(1)
stop.set()
t.join()
h.flush()
h.shutdown()
print(f"writes during the protocol changes: {count[0]}")
EOF
    { cat "$T/proto.out" >&2; fail "protocol changes under writes failed"; }
grep -q '"repd-protocol" : "C"' <(repd_node alpha status --json 2>/dev/null </dev/null) || fail "alpha does not show protocol C at the end"
run_logged wait-sync2 repd_node alpha wait-sync --timeout 60
[ "$(connections alpha)" = "$before" ] || fail "the protocol changes reconnected"
if node_log_since alpha "$log_at" | grep -q "resync starting"; then
    fail "a resync started after the protocol changes: $(node_log_since alpha "$log_at" | grep "resync starting" | head -1)"
fi
run_logged down-alpha repd_node alpha down
run_logged down-beta repd_node beta down
cmp "$ALPHA_DISK" "$BETA_DISK" || fail "replicas differ after the protocol changes"
pass "protocol C -> A -> C on both nodes under writes: $(tail -1 "$T/proto.out"), status showed each, same connection, no resync, replicas identical"

# ---- refused: a changed disk path; broken files; not up -------------------------------------
node_up alpha
node_up beta
run_logged wait-connect2 repd_node alpha wait-connect --timeout 30
cp "$RES" "$T/r0.res.good"
sed -i "s|disk $ALPHA_DISK;|disk $T/elsewhere.img;|; s/protocol C;/protocol B;/" "$RES"
run_adjust alpha
[ "$ADJ_RC" = 1 ] || { cat "$T/adjust.out" >&2; fail "adjust with a changed disk exited $ADJ_RC, expected 1"; }
grep -q "refusing to adjust (nothing was changed)" "$T/adjust.out" && grep -q "disk: $ALPHA_DISK -> $T/elsewhere.img: refused: the backing disk" "$T/adjust.out" ||
    { cat "$T/adjust.out" >&2; fail "adjust with a changed disk: no clear refusal"; }
grep -q '"repd-protocol" : "C"' <(repd_node alpha status --json 2>/dev/null </dev/null) || fail "a refused adjust applied the protocol change"
pass "a changed disk is refused, nothing applied: $(grep 'refused' "$T/adjust.out" | head -1 | sed 's/^ *//')"
cp "$T/r0.res.good" "$RES"
echo "resource r0 { net { protocol X; } }" >"$REPD_CONFIG_DIR/r0.res"
run_adjust alpha
[ "$ADJ_RC" = 10 ] || { cat "$T/adjust.out" >&2; fail "adjust with a broken file exited $ADJ_RC, expected 10"; }
grep -q "r0.res:1" "$T/adjust.out" || { cat "$T/adjust.out" >&2; fail "adjust with a broken file does not name file:line"; }
cp "$T/r0.res.good" "$RES"
run_adjust alpha
grep -q "nothing to adjust" "$T/adjust.out" || { cat "$T/adjust.out" >&2; fail "adjust with the running file: expected 'nothing to adjust'"; }
run_logged down-beta2 repd_node beta down
run_adjust beta
[ "$ADJ_RC" = 20 ] || { cat "$T/adjust.out" >&2; fail "adjust of a resource not up exited $ADJ_RC, expected 20"; }
pass "a broken file: exit 10 naming r0.res:1; the unchanged file: nothing to adjust; not up: exit 20"
