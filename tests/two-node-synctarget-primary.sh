#!/usr/bin/env bash
# A Primary that is SyncTarget (issue 4): beta comes back to 192 MiB it
# missed, resyncing slowly (resync-rate 4M), and is promoted meanwhile
# (no --force: its peer is UpToDate).  Through beta's export, while the
# resync runs:
#  - every byte read equals alpha's data (blocks not resynced yet are read
#    through the peer);
#  - aligned and unaligned (512-byte) writes land, and read back;
#  - a fio verify workload completes without a verify error;
# then the resync finishes, and both backing files are identical and hold
# beta's writes.
# run-all-timeout: 600
source "$(dirname "$0")/lib.sh"

require_tool fio nbdinfo python3 cmp
fio --enghelp=nbd >/dev/null 2>&1 || skip "this fio has no nbd ioengine"
require_python_nbd
[ -z "$STANDIN" ] || skip "needs repd"

export TWO_NODE_DISK="c-plan-ahead 0; resync-rate 4M; c-min-rate 0;"
start_two_nodes r0 256M --net "allow-two-primaries;"
run_logged new-uuid repd_node alpha new-current-uuid --clear-bitmap
wait_state 30 beta disk=UpToDate repl=Established
promote alpha
down_node beta
"$PY_NBD" - "$ALPHA_URI" <<'EOF' || fail "writing 192 MiB on alpha"
import nbd, sys
h = nbd.NBD(); h.connect_uri(sys.argv[1])
for i in range(192):
    h.pwrite(bytes([(i * 7 + 3) % 256]) * (1 << 20), i << 20)
h.flush(); h.shutdown()
EOF
run_logged sec-alpha repd_node alpha secondary
node_up beta
wait_state 30 beta repl=SyncTarget disk=Inconsistent
promote beta
expect_state beta role=Primary disk=Inconsistent repl=SyncTarget
pass "beta promoted while SyncTarget (Inconsistent, peer UpToDate)"

# What beta serves is alpha's data, although most of it is not on beta's disk yet.
oos=$(node_value beta oos)
[ "$oos" -ge $((160 * 1024)) ] || fail "beta has only $oos KiB out of sync at the start: too little to show reads through the peer"
"$PY_NBD" - "$BETA_URI" "$ALPHA_DISK" <<'EOF' || fail "reading through beta during the resync"
import nbd, sys
h = nbd.NBD(); h.connect_uri(sys.argv[1])
with open(sys.argv[2], "rb") as f:
    want = f.read(32 << 20)
got = b"".join(h.pread(1 << 20, off) for off in range(0, 32 << 20, 1 << 20))
h.shutdown()
if got != want:
    sys.exit("beta's export differs from alpha's data at byte %d" % next(i for i in range(len(want)) if got[i] != want[i]))
EOF
node_is beta repl=SyncTarget || fail "the resync ended during the read-through check"
pass "reads of 32 MiB through beta ($oos KiB not resynced at the start) return alpha's data"

"$PY_NBD" - "$BETA_URI" "$ALPHA_DISK" <<'EOF' || fail "writes through beta during the resync"
import nbd, sys, random
h = nbd.NBD(); h.connect_uri(sys.argv[1])
region = 64 << 20
with open(sys.argv[2], "rb") as f:
    model = bytearray(f.read(region))          # alpha's data: what beta must show before our writes
rnd = random.Random(5)
writes = [(b * 4096, bytes([0xb0 + b % 16]) * 4096) for b in rnd.sample(range(8192, 16384), 100)]   # aligned blocks, 32..64 MiB
writes += [(b * 4096 + 1024, bytes([0xc3]) * 512) for b in rnd.sample(range(8192, 16384), 20)]     # 512 bytes inside blocks
for off, data in writes:
    h.pwrite(data, off)
    model[off:off + len(data)] = data
h.flush()
got = bytearray()
for off in range(0, region, 1 << 20):
    got += h.pread(1 << 20, off)
h.shutdown()
if got != model:
    first = next(i for i in range(region) if got[i] != model[i])
    sys.exit("beta's export differs from alpha's data plus our writes at byte %d" % first)
EOF
pass "aligned and 512-byte writes through the SyncTarget Primary read back"

fio_start during-sync 120 "$BETA_URI" --rw=randwrite --bs=4k --offset=128M --size=32M --iodepth=8 \
    --time_based --runtime=5 --verify=crc32c --do_verify=1 --verify_backlog=32 --verify_fatal=1 --verify_state_save=0
rc=0; fio_wait during-sync || rc=$?
check_fio during-sync "$rc"
node_is beta repl=SyncTarget && note="(the resync still running)" || note="(the resync ended meanwhile)"
pass "fio verify on the SyncTarget Primary: no error $note"

wait_until "resync finished" 180 0.5 node_is beta disk=UpToDate repl=Established ||
    { _show_states alpha beta; fail "the resync did not finish"; }
wait_state 30 alpha repl=Established oos=0
run_logged sec-beta repd_node beta secondary
down_node beta
down_node alpha
cmp "$ALPHA_DISK" "$BETA_DISK" >"$T/cmp.out" 2>&1 || { show_file "$T/cmp.out" 3 >&2; fail "replicas differ after the resync"; }
pass "resync finished; both backing files identical (beta's writes included)"
