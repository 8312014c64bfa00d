#!/usr/bin/env bash
# run-all-timeout: 1200
# GFS2 with lock_dlm on two guests, one per replica: a 1 GiB pair with
# allow-two-primaries, both Primary; then the shared VM harness's cluster
# scenario (../shared/vm/scenario-cluster.sh: two qemu guests, corosync +
# dlm_controld, GFS2 mounted on both, cross-node reads, concurrent creates,
# flock'd appends, fsck.gfs2) with guest 1 on alpha's export and guest 2
# on beta's.  It only passes if repd makes the two exports behave like one
# shared disk.  Then down both: the backing files must be identical.
#
# Slow (software-emulated guests): REPD_SKIP_VM=1 skips it.  The harness is
# built first (apt packages, kernel .deb; REPD_VM_BUILD_TIMEOUT, default
# 900 s; SKIP if it cannot be built); the scenario then gets
# REPD_VM_TIMEOUT seconds (default 240).  The harness keeps its kernel and
# logs in REPD_VM_WORKDIR (default /tmp/vmwork).
# Stand-in (REPD_TEST_STANDIN=nbdkit): one `nbdkit memory 1G` socket is
# given as both --socket1 and --socket2 (truly shared storage), no repd.
source "$(dirname "$0")/lib.sh"

[ "${REPD_SKIP_VM:-0}" != 1 ] || skip "REPD_SKIP_VM=1"
require_root
require_tool timeout setsid cmp nbdinfo
VM_TIMEOUT=${REPD_VM_TIMEOUT:-240}

# ---- the harness: packages, kernel, initramfs (cached in its WORKDIR) --------------
vm_harness --cluster     # lib.sh: finds ../shared/vm (also from a git worktree), sets VMDIR

# ---- the pair --------------------------------------------------------------------
if [ -n "$STANDIN" ]; then
    require_tool nbdkit
    SOCK1="$T/standin-memory.sock" SOCK2="$T/standin-memory.sock"
    nbdkit --foreground --unix "$SOCK1" memory 1G >"$T/standin-nbdkit.log" 2>&1 </dev/null 8>&- 9>&- &
    add_bg_pid "$!"
    wait_for "stand-in nbdkit memory 1G" 100 0.1 nbdinfo --size "nbd+unix:///?socket=$SOCK1" ||
        fail "stand-in nbdkit did not come up"
    echo "NOTE: stand-in mode: one nbdkit memory export given as both sockets (no repd)" >&2
else
    start_two_nodes t0 1G --net "allow-two-primaries;"
    initial_sync
    promote beta
    expect_state alpha role=Primary conn=Connected peer-role=Primary
    expect_state beta role=Primary conn=Connected peer-role=Primary disk=UpToDate
    pass "1 GiB pair with allow-two-primaries: both Primary, Connected, in sync"
    SOCK1=$ALPHA_SOCK SOCK2=$BETA_SOCK
fi
checkpoint vm-ready

# ---- the cluster scenario ----------------------------------------------------------
# In its own session: whatever it leaves behind (qemu under its own
# `timeout` process group) is found by session id and killed by cleanup.
REPD_VM_WORKDIR=$WORKDIR setsid timeout -k 20 "$VM_TIMEOUT" bash "$VMDIR/scenario-cluster.sh" \
    --socket1 "$SOCK1" --socket2 "$SOCK2" -t $((VM_TIMEOUT - 20)) \
    >"$T/scenario.out" 2>&1 </dev/null 8>&- 9>&- &
VM_SID=$!
add_session "$VM_SID"
rc=0
wait "$VM_SID" || rc=$?
kill_session "$VM_SID"          # nothing of it may outlive the scenario
if [ "$rc" -ne 0 ]; then
    grep -E '^(FAIL|RESULT|SCENARIO|===)|ERROR' "$T/scenario.out" | sed 's/^/    /' >&2 || true
    show_file "$T/scenario.out" 40 >&2
    [ "$rc" -ne 124 ] || fail "the cluster scenario did not finish within ${VM_TIMEOUT}s"
    fail "the GFS2/lock_dlm cluster scenario failed (exit $rc)"
fi
pass "GFS2 lock_dlm cluster scenario: $(grep -c '^PASS' "$T/scenario.out") guest checks passed; $(grep -m1 '^SCENARIO-CLUSTER' "$T/scenario.out")"

[ -z "$STANDIN" ] || exit 0
expect_state alpha role=Primary conn=Connected repl=Established peer-disk=UpToDate
expect_state beta role=Primary conn=Connected repl=Established peer-disk=UpToDate
down_node alpha
down_node beta
if ! cmp "$ALPHA_DISK" "$BETA_DISK" >"$T/cmp.out" 2>&1; then
    show_file "$T/cmp.out" 5 >&2
    fail "after the cluster scenario and down: alpha.img and beta.img differ"
fi
pass "after down on both: the 1 GiB backing files are identical"
