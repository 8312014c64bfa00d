#!/usr/bin/env bash
# The README's first command: what repd is for, on one machine.  Installs what is needed, builds
# repd (release), and runs a two-node resource, nodes alpha (127.0.0.1) and beta (127.0.0.2), each
# with its own run dir:
#   1. create-md and up on both, Connected;
#   2. alpha Primary: the initial sync alpha -> beta, with `repd overview`'s progress bar
#      (resync-rate 32M, so 256 MiB take about 8 s);
#   3. 64 MiB written through alpha's NBD export (nbdcopy) and read back;
#   4. beta stopped (`repd down`), 8 MiB written at 2048 scattered 4 KiB blocks (nbdsh);
#   5. beta up again: the resync sends only what changed (bytes resynced next to bytes written);
#   6. both down, and the two backing files compared with cmp.
# Every wait is on `repd status r0 --json`, never on the human text.  Everything lives in
# $DEMO_DIR (default /tmp/repd-demo) and is stopped and removed at the end, also on failure
# (DEMO_KEEP=1 keeps the files).  DEMO_PORT (default 7789) is the replication port.
# Exit 0 only if every step worked and the replicas are identical.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-deps.sh
echo "== building repd (release)"
swift build -c release 2>&1 | tail -1
REPD="$PWD/.build/release/repd"
DEMO_DIR=${DEMO_DIR:-/tmp/repd-demo}
PORT=${DEMO_PORT:-7789}
SIZE_MIB=256          # the replicated disk
RATE=32M              # fixed resync rate: the initial sync is visible for a few seconds
AWAY_BLOCKS=2048      # 4 KiB blocks written while beta is down (8 MiB)
START=$EPOCHREALTIME

# ---- helpers -------------------------------------------------------------------------------
elapsed() { awk -v a="$START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%5.1fs", b - a }'; }
step() { echo; echo "== [$(elapsed)] $*"; }
q() { local node=$1; shift; "$REPD" "$@" --config-dir "$DEMO_DIR/conf" --node "$node" --run-dir "$DEMO_DIR/run-$node"; }
r() { local node=$1; shift; echo "+ repd $* (node $node)"; q "$node" "$@"; }
uri() { echo "nbd+unix:///r0?socket=$DEMO_DIR/run-$1/r0.sock"; }
pid_of() { tr -dc '0-9' 2>/dev/null <"$DEMO_DIR/run-$1/r0.pid" || true; }
alive() {  # PID exists and is not a zombie
  local st
  [ -n "$1" ] && st=$(awk '/^State:/ { print $2; exit }' "/proc/$1/status" 2>/dev/null) &&
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# One line of NODE's state from `repd status r0 --json`:
#   role= disk= conn= repl= peer-disk= oos= sent=      (oos and sent in KiB)
state() {
  timeout 20 "$REPD" status r0 --json --config-dir "$DEMO_DIR/conf" --node "$1" \
    --run-dir "$DEMO_DIR/run-$1" 2>/dev/null </dev/null | python3 -c '
import json, sys
r = json.load(sys.stdin)[0]
d = r["devices"][0]
c = (r.get("connections") or [{}])[0]
p = (c.get("peer_devices") or [{}])[0]
print("role=%s disk=%s conn=%s repl=%s peer-disk=%s oos=%s sent=%s" % (
    r.get("role"), d.get("disk-state"), c.get("connection-state"), p.get("replication-state"),
    p.get("peer-disk-state"), p.get("out-of-sync"), p.get("sent")))'
}
# is NODE KEY=VALUE|KEY!=VALUE...: true if NODE's state matches them all.
is() {
  local line kv
  line=" $(state "$1") " || return 1
  shift
  for kv in "$@"; do
    case "$kv" in
      *!=*) [[ $line == *" ${kv%%!=*}="* && $line != *" ${kv%%!=*}=${kv#*!=} "* ]] || return 1 ;;
      *) [[ $line == *" $kv "* ]] || return 1 ;;
    esac
  done
}
value() { local kv; for kv in $(state "$1"); do [ "${kv%%=*}" != "$2" ] || { echo "${kv#*=}"; return 0; }; done; return 1; }
# wait_until DESCRIPTION SECONDS CMD...: bounded; on timeout both nodes' states, and fail.
wait_until() {
  local desc=$1 secs=$2 deadline
  shift 2
  deadline=$((SECONDS + secs))
  until "$@"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "timed out after ${secs}s waiting for: $desc" >&2
      for n in alpha beta; do echo "  $n: $(state $n 2>&1 || echo 'no answer')" >&2; done
      return 1
    fi
    sleep 0.2
  done
}
# nbdsh is `python3 -m nbd` with the python3 on PATH, which may lack libnbd's bindings (a pyenv
# one): run it with a python3 that has them (python3-libnbd installs them for /usr/bin/python3).
nbdsh() {
  local p
  for p in python3 /usr/bin/python3; do
    if "$p" -c 'import nbd' 2>/dev/null; then "$p" -m nbd "$@"; return; fi
  done
  echo "error: no python3 with libnbd's bindings (python3-libnbd)" >&2
  return 1
}
# show NODE VERB...: print the command, then its output indented.
show() { local node=$1; shift; echo "+ repd $* (node $node)"; q "$node" "$@" | sed 's/^/  /'; }
synced() { is beta disk=UpToDate repl=Established && is alpha repl=Established peer-disk=UpToDate oos=0; }

# Stop whatever runs in $DEMO_DIR: `repd down` on both at once, then kill -9 what survives.
stop_nodes() {
  local n pid pids=()
  for n in alpha beta; do
    pid=$(pid_of $n)
    alive "$pid" || continue
    pids+=("$pid")
    timeout 60 "$REPD" down r0 --config-dir "$DEMO_DIR/conf" --node $n --run-dir "$DEMO_DIR/run-$n" \
      >/dev/null 2>&1 </dev/null &
  done
  wait
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid" && grep -q repd "/proc/$pid/cmdline" 2>/dev/null; then
      echo "note: repd pid $pid still alive after 'repd down'; kill -9" >&2
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
}
cleanup() {
  local rc=$?
  set +e
  trap - EXIT
  trap '' INT TERM HUP
  if [ "$rc" -ne 0 ]; then
    echo
    echo "demo FAILED (exit $rc) after $(elapsed); the end of the daemons' logs:" >&2
    for n in alpha beta; do
      [ -e "$DEMO_DIR/run-$n/r0.log" ] || continue
      echo "  --- $n: $DEMO_DIR/run-$n/r0.log" >&2
      tail -n 15 "$DEMO_DIR/run-$n/r0.log" | sed 's/^/  | /' >&2
    done
  fi
  stop_nodes
  if [ "${DEMO_KEEP:-0}" = 1 ]; then echo "files kept in $DEMO_DIR"; else rm -rf "$DEMO_DIR"; fi
  exit "$rc"
}

# ---- setup -----------------------------------------------------------------------------------
[ ! -d "$DEMO_DIR" ] || stop_nodes        # an earlier run that was killed: its daemons go first
rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR/conf"
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
for a in 127.0.0.1 127.0.0.2; do
  if [ -n "$(ss -Hltn "src $a:$PORT" 2>/dev/null)" ]; then
    echo "error: $a:$PORT is in use (another demo running?); set DEMO_PORT to a free port" >&2
    exit 1
  fi
done
truncate -s ${SIZE_MIB}M "$DEMO_DIR/alpha.img" "$DEMO_DIR/beta.img"
cat > "$DEMO_DIR/conf/r0.res" <<RES
resource r0 {
  net {
    protocol C;
    connect-int 1;
    cram-hmac-alg sha256;
    shared-secret "demo-secret";
  }
  disk {
    c-plan-ahead 0;
    resync-rate $RATE;
    c-min-rate 0;
  }
  # Both nodes run on this machine: no block devices ("device none;"), the exports only.
  on alpha {
    device none;
    disk $DEMO_DIR/alpha.img;
    address 127.0.0.1:$PORT;
    meta-disk $DEMO_DIR/alpha.md;
  }
  on beta {
    device none;
    disk $DEMO_DIR/beta.img;
    address 127.0.0.2:$PORT;
    meta-disk $DEMO_DIR/beta.md;
  }
}
RES
step "the resource file ($DEMO_DIR/conf/r0.res)"
cat "$DEMO_DIR/conf/r0.res"

step "metadata and up on both nodes"
for n in alpha beta; do r $n create-md r0; done
for n in alpha beta; do r $n up r0; done
wait_until "alpha and beta Connected" 30 eval 'is alpha conn=Connected && is beta conn=Connected'
echo "alpha: $(state alpha)"
echo "beta:  $(state beta)"

step "alpha becomes Primary: the initial sync alpha -> beta ($SIZE_MIB MiB at $RATE/s)"
r alpha primary --force r0
wait_until "the initial sync to start" 30 eval 'is alpha repl=SyncSource || synced'
deadline=$((SECONDS + 90))
until synced; do
  [ "$SECONDS" -lt "$deadline" ] || wait_until "the initial sync to finish" 0 synced
  printf "[%s] " "$(elapsed)"; show alpha overview r0
  for _ in 1 2 3 4 5 6 7 8 9 10; do synced && break; sleep 0.2; done
done
echo "initial sync done: alpha $(state alpha | cut -d' ' -f1-5)"

step "64 MiB of random data written through alpha's NBD export (nbdcopy)"
head -c 64M /dev/urandom > "$DEMO_DIR/payload.bin"
echo "+ nbdcopy payload.bin '$(uri alpha)'"
nbdcopy "$DEMO_DIR/payload.bin" "$(uri alpha)"
nbdcopy "$(uri alpha)" "$DEMO_DIR/readback.img"
cmp -n 64M "$DEMO_DIR/readback.img" "$DEMO_DIR/payload.bin"
rm -f "$DEMO_DIR/readback.img"
echo "read back through the export (nbdcopy): identical"
cmp <(head -c 64M "$DEMO_DIR/alpha.img") "$DEMO_DIR/payload.bin"
echo "alpha's backing file holds the data; beta's status:"
show beta status r0

step "beta stopped; alpha goes on alone"
r beta down r0
wait_until "alpha to notice beta is gone" 30 is alpha conn!=Connected
show alpha status r0

step "8 MiB written through alpha while beta is away: $AWAY_BLOCKS random 4 KiB blocks at scattered offsets (nbdsh)"
away_bytes=$((AWAY_BLOCKS * 4096))
nbdsh -u "$(uri alpha)" -c "
import os, random
rnd = random.Random()
blocks = rnd.sample(range(h.get_size() // 4096), $AWAY_BLOCKS)   # distinct blocks
for b in blocks:
    h.pwrite(os.urandom(4096), b * 4096)
h.flush()
print('wrote %d bytes: %d blocks of 4 KiB between offsets %d and %d'
      % (len(blocks) * 4096, len(blocks), min(blocks) * 4096, max(blocks) * 4096))
"
oos=$(value alpha oos)
echo "alpha's bitmap marks $oos KiB out of sync"

step "beta back up: the resync sends only what changed"
sent0=$(value alpha sent)
log_off=$(stat -c %s "$DEMO_DIR/run-alpha/r0.log" 2>/dev/null || echo 0)
r beta up r0
wait_until "the resync to finish" 60 synced
sent_kib=$(( $(value alpha sent) - sent0 ))
since_up=$(tail -c +$((log_off + 1)) "$DEMO_DIR/run-alpha/r0.log" 2>/dev/null || true)
grep -o 'sync decision: .*' <<<"$since_up" | tail -1 | sed "s/^/alpha's log: /" || true
grep -o 'resync finished.*' <<<"$since_up" | tail -1 | sed "s/^/alpha's log: /" || true
printf '%-31s %9d bytes (%d KiB)\n' "written while beta was away:" "$away_bytes" $((away_bytes / 1024))
printf '%-31s %9d bytes (%d KiB: alpha'"'"'s "sent" counter in its status JSON)\n' \
  "resynced when beta came back:" $((sent_kib * 1024)) "$sent_kib"
awk -v s="$sent_kib" -v d=$((SIZE_MIB * 1024)) \
  'BEGIN { printf "(%.1f%% of the %d MiB device; a full sync would have moved all of it)\n", 100 * s / d, d / 1024 }'
if [ "$sent_kib" -lt $((away_bytes / 1024)) ] || [ "$sent_kib" -gt $((away_bytes / 1024 * 11 / 10)) ]; then
  echo "error: the resync sent $sent_kib KiB for $((away_bytes / 1024)) KiB written (expected 1x to 1.1x)" >&2
  exit 1
fi
show alpha status r0
show beta status r0

step "both down; the backing files compared"
for n in beta alpha; do r $n down r0; done
echo "+ cmp alpha.img beta.img"
cmp "$DEMO_DIR/alpha.img" "$DEMO_DIR/beta.img"
echo "alpha.img and beta.img are identical, byte for byte (${SIZE_MIB} MiB)"
echo
echo "demo passed in $(elapsed)"
