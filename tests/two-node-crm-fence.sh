#!/usr/bin/env bash
# The Pacemaker fence handlers (issue 17, part 4), scripts/ocf/repd-crm-fence-peer and
# repd-crm-unfence-peer, with Pacemaker's own cibadmin on a CIB file (CIB_file: the same tool
# and schema checks as on a cluster, without running one) that holds a promotable clone of
# ocf:repd:repd for r0:
#  - alpha Primary with `fencing resource-only`: beta killed -9; repd runs the handler, which
#    places a -INFINITY rule on the Promoted role off alpha and exits 4; alpha records the
#    peer as Outdated and goes on writing;
#  - beta back: it resyncs from alpha, and its after-resync-target handler removes the
#    constraint; the replicas are identical;
#  - the handler alone: run twice it keeps one constraint; for a resource no clone manages it
#    fails (exit 1) naming the reason.
# run-all-timeout: 240
source "$(dirname "$0")/lib.sh"

[ -z "$STANDIN" ] || skip "needs repd"
require_tool cibadmin cmp
require_python_nbd
HANDLER="$(cd "$(dirname "$0")/.." && pwd)/scripts/ocf/repd-crm-fence-peer"
UNFENCE="$(dirname "$HANDLER")/repd-crm-unfence-peer"
export CIB="$T/cib.xml"
cibadmin --empty >"$CIB" || fail "cibadmin --empty failed"
CIB_file=$CIB cibadmin -C -o resources -X '<clone id="ms_r0"><meta_attributes id="ms_r0-meta"><nvpair id="ms_r0-promotable" name="promotable" value="true"/></meta_attributes><primitive id="p_r0" class="ocf" provider="repd" type="repd"><instance_attributes id="p_r0-ia"><nvpair id="p_r0-res" name="drbd_resource" value="r0"/></instance_attributes></primitive></clone>' ||
    fail "cannot add the clone to the CIB"
ID=repd-fence-by-handler-r0-ms_r0
constraint() { CIB_file=$CIB cibadmin -Q --xpath "//rsc_location[@id='$ID']" 2>/dev/null; }

export TWO_NODE_DISK="fencing resource-only;"
export TWO_NODE_EXTRA="handlers { fence-peer \"CIB_file=$CIB $HANDLER\"; after-resync-target \"CIB_file=$CIB $UNFENCE\"; }"
start_two_nodes r0 64M
initial_sync
[ -z "$(constraint)" ] || fail "a constraint exists before any fencing"

# ---- beta lost: the handler fences it through the CIB -------------------------------------------
log_at=$(node_log_size alpha)
kill -9 "$(node_pid beta)"
fenced() { constraint | grep -q 'value="alpha"'; }
wait_until "the constraint in the CIB" 30 0.2 fenced || { node_log_since alpha "$log_at" >&2; fail "no constraint after beta was lost"; }
constraint >"$T/constraint.xml"
grep -q 'rsc="ms_r0"' "$T/constraint.xml" && grep -q 'role="Promoted"' "$T/constraint.xml" && grep -q 'score="-INFINITY"' "$T/constraint.xml" &&
    grep -q 'operation="ne"' "$T/constraint.xml" || { cat "$T/constraint.xml" >&2; fail "the constraint is not the expected rule"; }
outdated() { node_is alpha peer-disk=Outdated; }
wait_until "alpha to record beta Outdated" 20 0.2 outdated || { node_log_since alpha "$log_at" >&2; fail "alpha did not take the handler's exit 4"; }
node_log_since alpha "$log_at" | grep -q "placed the constraint $ID" || fail "alpha's log does not show the handler's message"
"$PY_NBD" - "$ALPHA_URI" <<'EOF' || fail "writes on alpha after fencing failed"
import nbd, os, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
for i in range(32):
    h.pwrite(os.urandom(4096), i * 1048576)
h.flush()
h.shutdown()
EOF
pass "beta killed: the handler placed $ID (Promoted -INFINITY off alpha, in the CIB), alpha has beta Outdated and goes on writing"

# ---- beta back: resync, then unfence ------------------------------------------------------------
beta_at=$(node_log_size beta)
rm -f "$(node_pidfile beta)"
node_up beta
run_logged wait-sync2 repd_node beta wait-sync --timeout 60
unfenced() { [ -z "$(constraint)" ]; }
wait_until "the constraint to go" 30 0.2 unfenced || { node_log_since beta "$beta_at" >&2; fail "the constraint stayed after beta's resync"; }
node_log_since beta "$beta_at" | grep -q "removed the constraint $ID" || fail "beta's log does not show the unfence handler"
run_logged down-alpha repd_node alpha down
run_logged down-beta repd_node beta down
cmp "$ALPHA_DISK" "$BETA_DISK" || fail "replicas differ"
pass "beta back: resynced from alpha, its after-resync-target handler removed $ID; replicas identical"

# ---- the handler alone -------------------------------------------------------------------------
run_handler() { env CIB_file="$CIB" DRBD_RESOURCE="$1" REPD_NODE=alpha "$HANDLER" 2>"$T/handler.err"; }
rc=0; run_handler r0 || rc=$?
[ "$rc" = 4 ] || { cat "$T/handler.err" >&2; fail "the handler exited $rc, expected 4"; }
rc=0; run_handler r0 || rc=$?
[ "$rc" = 4 ] || { cat "$T/handler.err" >&2; fail "the handler run again exited $rc, expected 4"; }
count=$(CIB_file=$CIB cibadmin -Q -o constraints | grep -c "<rsc_location ")
[ "$count" = 1 ] || fail "$count constraints after two runs"
rc=0; run_handler r7 || rc=$?
[ "$rc" = 1 ] && grep -q "no promotable clone in the CIB manages drbd_resource=r7" "$T/handler.err" ||
    { cat "$T/handler.err" >&2; fail "the handler for an unmanaged resource exited $rc without the reason"; }
env CIB_file="$CIB" DRBD_RESOURCE=r0 "$UNFENCE" 2>/dev/null || fail "unfence failed"
[ -z "$(constraint)" ] || fail "unfence left the constraint"
pass "the handler twice: one constraint, exit 4 both times; an unmanaged resource: exit 1, '$(cat "$T/handler.err")'; unfence removes it"
