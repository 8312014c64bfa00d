#!/usr/bin/env bash
# Benchmarks/run.sh - repd against its peers, in one run (see Benchmarks/README.md).
#
# Starts, one after the other, on this machine (loopback only):
#   raw      the backing file itself (fio libaio, O_DIRECT)
#   nbdkit   nbdkit's file plugin on the same kind of file (one node, nothing replicated)
#   qemu     two qemu-storage-daemons: A exports its file over NBD and mirrors it
#            synchronously (blockdev-mirror, copy-mode write-blocking) to B over NBD/TCP
#   repd1    repd, one node alone (its peer never comes up)
#   repd2    repd, two nodes alpha 127.0.0.1 / beta 127.0.0.2, protocol C, Connected
#   repd2tls the same pair with `tls yes` (TLS 1.3 on the link, certificates from
#            tests/make-test-pki.sh); its initial sync and the write jobs (reads are local)
#   syncdef  the full initial sync of SIZE with DRBD's default rate settings (no disk options:
#            the dynamic controller, c-max-rate 100 MiB/s), and with `c-max-rate 4G` alone; with
#            the defaults also an application's write latency (fio randwrite 4k QD1) with the pair
#            in sync and during a full resync (`invalidate-remote`), p99 as a ratio
# and runs the same five fio jobs through fio's nbd engine against each (libaio for raw).
# Also: full initial sync of SIZE (repd) against nbdcopy between two nbdkit exports,
# a partial resync (bytes moved against dirty bytes), peak RSS of every repd daemon,
# and a byte-for-byte comparison of both replicas after the qemu and repd runs.
#
# Environment:
#   RUNTIME=20        seconds per fio job (time based)
#   RAMP=2            fio ramp time per job (seconds, not counted)
#   SIZE=1G           size of every backing file (multiple of 1 MiB)
#   REPD_BIN=...      repd binary (default: `swift build -c release` in the repo root,
#                     then .build/release/repd; SWIFT_BUILD_JOBS=N adds -j N)
#   OUT=DIR           results directory (default Benchmarks/out/DATE-TIME): fio JSON in
#                     DIR/fio, logs in DIR/logs, DIR/results.md, DIR/facts.txt
#   TMPBASE=/var/tmp  where the backing files go (a real file system, not tmpfs)
#   TARGETS="raw nbdkit qemu repd1 repd2 repd2tls syncdef"   subset to run (the resync reference with
#                     nbdcopy runs when nbdkit is in the list)
#   ONLY_JOBS="randwrite-4k-QD32 seqwrite-1M-QD8"   run only these jobs (default: all five)
#   DIRTY_BLOCKS=4096 4 KiB blocks written while beta is down (partial resync)
#   SYNC_TIMEOUT=600  bound (s) on every initial sync / resync / mirror wait
#
# Exit status: 0 when every step ran (targets met or not: they are reported, not
# enforced), 1 when a step failed (the report is still written with what ran).
set -euo pipefail
export LC_ALL=C

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)

RUNTIME=${RUNTIME:-20}
RAMP=${RAMP:-2}
SIZE=${SIZE:-1G}
TMPBASE=${TMPBASE:-/var/tmp}
TARGETS=${TARGETS:-raw nbdkit qemu repd1 repd2 repd2tls syncdef}
DIRTY_BLOCKS=${DIRTY_BLOCKS:-4096}
SYNC_TIMEOUT=${SYNC_TIMEOUT:-600}
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=${OUT:-$BENCH_DIR/out/$STAMP}
PY=python3

# The jobs: name, fio rw, block size, queue depth.
JOBS=(
    "seqwrite-1M-QD8 write 1M 8"
    "seqread-1M-QD8 read 1M 8"
    "randwrite-4k-QD32 randwrite 4k 32"
    "randread-4k-QD32 randread 4k 32"
    "randwrite-4k-QD1 randwrite 4k 1"
)

# The caller's stderr stays on fd 9: the cleanup may run (on a signal) while a
# probe's output is redirected to /dev/null, and its messages must still show.
exec 9>&2
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() {
    log "ERROR: $*"
    [ -z "${FACTS:-}" ] || fact "failure.$((FAILS += 1))" "$*"
    exit 1
}
FAILS=0
REPORTED=0

# ---------------------------------------------------------------------------
# Checks before anything is started

for t in fio nbdkit nbdinfo nbdcopy qemu-storage-daemon "$PY" cmp ss numfmt timeout setsid openssl; do
    command -v "$t" >/dev/null 2>&1 || die "required tool '$t' not found (bash scripts/install-deps.sh)"
done
fio --enghelp=nbd >/dev/null 2>&1 || die "this fio has no nbd ioengine"
SIZE_BYTES=$(numfmt --from=iec "$SIZE") || die "SIZE=$SIZE: not a size"
if [ "$SIZE_BYTES" -le 0 ] || [ $((SIZE_BYTES % 1048576)) -ne 0 ]; then die "SIZE must be a positive multiple of 1 MiB"; fi
if [ "$DIRTY_BLOCKS" -le 0 ] || [ "$DIRTY_BLOCKS" -gt $((SIZE_BYTES / 4096)) ]; then die "DIRTY_BLOCKS out of range"; fi
for t in $TARGETS; do
    case "$t" in raw|nbdkit|qemu|repd1|repd2|repd2tls|syncdef) ;; *) die "unknown target '$t' in TARGETS" ;; esac
done
want() { [[ " $TARGETS " == *" $1 "* ]]; }

if want repd1 || want repd2 || want repd2tls || want syncdef; then
    if [ -z "${REPD_BIN:-}" ]; then
        command -v swift >/dev/null 2>&1 || die "no swift on PATH: build repd or set REPD_BIN"
        log "building repd (swift build -c release${SWIFT_BUILD_JOBS:+ -j $SWIFT_BUILD_JOBS})"
        (cd "$ROOT" && swift build -c release ${SWIFT_BUILD_JOBS:+-j "$SWIFT_BUILD_JOBS"}) >&2
        REPD_BIN="$ROOT/.build/release/repd"
    fi
    [ -x "$REPD_BIN" ] || die "repd binary not executable: $REPD_BIN"
    REPD_BIN=$(cd "$(dirname "$REPD_BIN")" && pwd)/$(basename "$REPD_BIN")
fi

mkdir -p "$OUT/fio" "$OUT/logs"
OUT=$(cd "$OUT" && pwd)
FACTS="$OUT/facts.txt"
COMMANDS="$OUT/commands.txt"
: >"$FACTS"
: >"$COMMANDS"
fact() { printf '%s=%s\n' "$1" "$2" >>"$FACTS"; }
failed() { log "FAILED: $*"; fact "failure.$((FAILS += 1))" "$*"; }

WORK=$(mktemp -d "$TMPBASE/repd-bench.XXXXXX")

# ---------------------------------------------------------------------------
# Process registry and cleanup: everything started is stopped, even on failure.

PIDS=()                 # daemons and fio processes we started (our children)
declare -A NCONF=() NNODE=() NRUN=() NRES=()
HANDLES=()              # repd node instances ever brought up

pid_alive() {  # PID: exists and is not a zombie
    local st
    [ -n "${1:-}" ] && [ -r "/proc/$1/status" ] || return 1
    st=$(awk '/^State:/ {print $2; exit}' "/proc/$1/status" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# wait_until DESC SECONDS DELAY CMD...: bounded by wall-clock time.
wait_until() {
    local desc=$1 secs=$2 delay=$3 start
    shift 3
    start=$(date +%s%N)
    while :; do
        if "$@" >/dev/null 2>&1; then return 0; fi
        [ $((($(date +%s%N) - start) / 1000000)) -lt $((secs * 1000)) ] || break
        sleep "$delay"
    done
    log "timed out after ${secs}s waiting for: $desc"
    return 1
}

pid_dead() { ! pid_alive "$1"; }

# Stop a process we started: TERM, up to 10 s, then KILL.
kill_pid() {  # PID
    local pid=$1
    if pid_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        wait_until "pid $pid to exit" 10 0.1 pid_dead "$pid" 2>/dev/null || {
            kill -KILL "$pid" 2>/dev/null || true
            wait_until "pid $pid to die" 5 0.1 pid_dead "$pid" 2>/dev/null || true
        }
    fi
    wait "$pid" 2>/dev/null || true
}

# repd as node instance HANDLE: repd VERB RES ARGS --config-dir --node --run-dir
rp() {  # HANDLE VERB [ARGS...]
    local h=$1 verb=$2
    shift 2
    REPD_CONFIG_DIR=${NCONF[$h]} REPD_NODE=${NNODE[$h]} REPD_RUN_DIR=${NRUN[$h]} \
        timeout "${REPD_VERB_TIMEOUT:-120}" "$REPD_BIN" "$verb" "${NRES[$h]}" "$@" \
        --config-dir "${NCONF[$h]}" --node "${NNODE[$h]}" --run-dir "${NRUN[$h]}"
}
node_pid() { tr -dc '0-9' 2>/dev/null <"${NRUN[$1]}/${NRES[$1]}.pid"; }

stop_repd_nodes() {  # HANDLE...: `repd down` on all at once (bounded), then kill -9 leftovers
    local h pid downs=() pids=()
    for h in "$@"; do
        pid=$(node_pid "$h") || pid=""
        pid_alive "$pid" || continue
        pids+=("$pid")
        REPD_VERB_TIMEOUT=70 rp "$h" down >>"$OUT/logs/repd-down-$h.log" 2>&1 </dev/null &
        downs+=("$!")
    done
    for pid in "${downs[@]}"; do wait "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        wait_until "repd pid $pid to exit" 10 0.1 pid_dead "$pid" 2>/dev/null || {
            log "repd pid $pid still alive after 'repd down': kill -9"
            kill -KILL "$pid" 2>/dev/null || true
        }
    done
}

# Last resort: any process whose command line names a path in $WORK, or whose
# environment has REPD_RUN_DIR inside it, is ours (kill -9).
sweep_strays() {
    local d p cmd env
    for d in /proc/[0-9]*; do
        p=${d#/proc/}
        if [ "$p" = "$$" ] || [ "$p" = "$BASHPID" ]; then continue; fi
        cmd=$(tr '\0' ' ' 2>/dev/null <"$d/cmdline") || continue
        env=$(tr '\0' '\n' 2>/dev/null <"$d/environ") || env=""
        [[ $cmd == *"$WORK/"* || $env == *"REPD_RUN_DIR=$WORK/"* ]] || continue
        pid_alive "$p" || continue
        log "killing leftover process $p: ${cmd:0:120}"
        kill -KILL "$p" 2>/dev/null || true
    done
}

cleanup() {
    local rc=$? p
    set +e
    exec 2>&9
    trap '' INT TERM HUP PIPE
    [ "${#HANDLES[@]}" -eq 0 ] || stop_repd_nodes "${HANDLES[@]}"
    for p in "${PIDS[@]}"; do kill_pid "$p"; done
    sweep_strays
    rm -rf "$WORK"
    if [ "$rc" -ne 0 ]; then
        if [ "$REPORTED" = 0 ]; then
            fact "failure.$((FAILS + 1))" "run stopped early (exit $rc); the figures above are those measured before"
            fact elapsed_seconds "$SECONDS"
            timeout 60 "$PY" "$BENCH_DIR/lib/report.py" "$OUT" >/dev/null 2>&1 &&
                log "partial report: $OUT/results.md"
        fi
        log "run failed (exit $rc); logs in $OUT/logs, facts in $FACTS"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Run a command in the background as our child and wait for it (so that a signal
# reaches the trap at once rather than after the command).
bg_wait() {  # CMD...  (stdout/stderr as redirected by the caller)
    local pid rc=0
    "$@" </dev/null &
    pid=$!
    PIDS+=("$pid")
    wait "$pid" || rc=$?
    return "$rc"
}

# ---------------------------------------------------------------------------
# Facts about the machine and the run

fact date "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
fact host.cpu "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
fact host.cores "$(nproc)"
fact host.mem_gib "$(awk '/^MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)"
fact host.kernel "$(uname -r)"
# shellcheck disable=SC1091
fact host.os "$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-?}")"
fact host.fs "$(stat -f -c %T "$WORK") on $(df --output=source "$WORK" | tail -n 1) ($TMPBASE)"
fact host.loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"
fact ver.fio "$(fio --version)"
fact ver.nbdkit "$(nbdkit --version | head -n 1)"
fact ver.qemu "$(qemu-storage-daemon --version | head -n 1)"
fact ver.libnbd "$(nbdcopy --version 2>/dev/null | head -n 1)"
if [ -n "${REPD_BIN:-}" ]; then
    fact ver.repd "$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo ?) ($REPD_BIN)"
    fact ver.swift "$(swift --version 2>/dev/null | head -n 1 || echo ?)"
fi
fact param.runtime "$RUNTIME"
fact param.ramp "$RAMP"
fact param.size "$SIZE"
fact param.size_bytes "$SIZE_BYTES"
fact param.targets "$TARGETS"
fact param.dirty_blocks "$DIRTY_BLOCKS"
fact out "$OUT"
load1=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load1" 'BEGIN {exit !(l > 0.5)}'; then
    log "WARNING: load average $load1 at start: the machine is not quiet, figures will be low"
fi

# ---------------------------------------------------------------------------
# Backing files.  Every file is written in full (no holes, no unwritten extents),
# so no server benchmarks sparse regions differently: data sources get a copy of
# one random template, replica targets get zeros, and the copies are synced to
# disk before anyone is measured.

TEMPLATE="$WORK/template.img"
log "writing the $SIZE random template in $WORK"
head -c "$SIZE_BYTES" /dev/urandom >"$TEMPLATE"

make_random() { cp --sparse=never "$TEMPLATE" "$1"; }
make_zero() { dd if=/dev/zero of="$1" bs=1M count=$((SIZE_BYTES / 1048576)) status=none; }
flush_disks() { timeout 600 sync || log "sync did not finish in 600 s"; }

# ---------------------------------------------------------------------------
# fio

rss_kib() { awk '/^VmHWM:/ {print $2; exit}' "/proc/$1/status" 2>/dev/null || echo 0; }

# Print one line about a finished job.
fio_summary() {  # JSON
    "$PY" - "$1" <<'EOF' 2>/dev/null || echo "(no usable JSON)"
import json, sys
t = open(sys.argv[1]).read()
j = json.loads(t[t.index("{"):])["jobs"][0]
d = j["write"] if j["write"]["io_bytes"] > j["read"]["io_bytes"] else j["read"]
p = d["clat_ns"].get("percentile", {})
print("%.1f MiB/s, %.0f IOPS, p50 %.0f us, p99 %.0f us%s" % (
    d["bw_bytes"] / 1048576, d["iops"], p.get("50.000000", 0) / 1000, p.get("99.000000", 0) / 1000,
    ", error %d" % j["error"] if j.get("error") else ""))
EOF
}

# run_jobs TARGET ENGINE-ARGS...: the five jobs, JSON in $OUT/fio/TARGET-JOB.json.
run_jobs() {
    local target=$1 spec name rw bs qd rc json
    shift
    for spec in "${JOBS[@]}"; do
        read -r name rw bs qd <<<"$spec"
        [ -z "${ONLY_JOBS:-}" ] || [[ " $ONLY_JOBS " == *" $name "* ]] || continue
        json="$OUT/fio/$target-$name.json"
        local args=(--name="$name" --rw="$rw" --bs="$bs" --iodepth="$qd" --numjobs=1
            --size="$SIZE_BYTES" --time_based=1 --runtime="$RUNTIME" --ramp_time="$RAMP"
            "$@" --output-format=json --output="$json")
        echo "$target $name: fio ${args[*]}" >>"$COMMANDS"
        # Dirty pages of the previous job are written back first, for every target alike: the
        # previous job's writeback would otherwise slow this one down by chance.
        flush_disks
        rc=0
        (cd "$WORK" && exec timeout -k 10 $((RUNTIME + RAMP + 120)) fio "${args[@]}") \
            >"$OUT/logs/$target-$name.log" 2>&1 </dev/null &
        PIDS+=("$!")
        wait "$!" || rc=$?
        if [ "$rc" -ne 0 ]; then
            failed "$target $name: fio exit status $rc (see $OUT/logs/$target-$name.log)"
        else
            log "  $target $name: $(fio_summary "$json")"
        fi
        local w
        for w in "${RSS_WATCH[@]}"; do        # "LABEL PID": VmHWM so far, after each job
            fact "rss_after.${w%% *}.$name" "$(rss_kib "${w#* }")"
        done
    done
}
RSS_WATCH=()

pick_port() {  # [OFFSET]: a TCP port with no socket on it
    local base=$((20000 + ($$ * 7 + ${1:-0} * 101) % 30000)) p i
    for ((i = 0; i < 200; i++)); do
        p=$((base + i))
        if [ -z "$(ss -Htan "sport = :$p" 2>/dev/null)" ]; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

export_ready() { timeout 10 nbdinfo --size "$1" >/dev/null 2>&1; }

# start_nbdkit NAME FILE: nbdkit's file plugin on $WORK/NAME.sock (our child).
# Sets NBDKIT_PID and NBDKIT_URI.
start_nbdkit() {
    local name=$1 file=$2 sock="$WORK/$1.sock"
    nbdkit -f --exit-with-parent --unix "$sock" file "$file" \
        >>"$OUT/logs/$name.log" 2>&1 </dev/null &
    NBDKIT_PID=$!
    PIDS+=("$NBDKIT_PID")
    NBDKIT_URI="nbd+unix:///?socket=$sock"
    echo "$name: nbdkit -f --exit-with-parent --unix $sock file $file" >>"$COMMANDS"
    wait_until "nbdkit $name export" 30 0.1 export_ready "$NBDKIT_URI" ||
        die "nbdkit $name did not serve $NBDKIT_URI (see $OUT/logs/$name.log)"
}

# ---------------------------------------------------------------------------
# raw

bench_raw() {
    local f="$WORK/raw.img"
    log "== raw file (fio libaio, O_DIRECT)"
    make_random "$f"
    flush_disks
    run_jobs raw --ioengine=libaio --direct=1 --filename="$f"
    rm -f "$f"
}

# ---------------------------------------------------------------------------
# nbdkit, and the resync reference: nbdcopy between two nbdkit exports

bench_nbdkit() {
    local f="$WORK/nbdkit.img"
    log "== nbdkit file plugin"
    make_random "$f"
    flush_disks
    start_nbdkit nbdkit "$f"
    run_jobs nbdkit --ioengine=nbd --uri="$NBDKIT_URI"
    fact rss.nbdkit "$(rss_kib "$NBDKIT_PID")"
    kill_pid "$NBDKIT_PID"
    rm -f "$f"
}

bench_nbdcopy() {
    local src="$WORK/copy-src.img" dst="$WORK/copy-dst.img" src_uri dst_uri p1 p2 t0 t1 rc=0
    log "== nbdcopy between two nbdkit file exports ($SIZE)"
    make_random "$src"
    make_zero "$dst"
    flush_disks
    start_nbdkit nbdcopy-src "$src"; src_uri=$NBDKIT_URI; p1=$NBDKIT_PID
    start_nbdkit nbdcopy-dst "$dst"; dst_uri=$NBDKIT_URI; p2=$NBDKIT_PID
    echo "nbdcopy: nbdcopy $src_uri $dst_uri" >>"$COMMANDS"
    t0=$(date +%s%N)
    bg_wait timeout "$SYNC_TIMEOUT" nbdcopy "$src_uri" "$dst_uri" >"$OUT/logs/nbdcopy.log" 2>&1 || rc=$?
    t1=$(date +%s%N)
    kill_pid "$p1"
    kill_pid "$p2"
    if [ "$rc" -ne 0 ]; then
        failed "nbdcopy exit status $rc (see $OUT/logs/nbdcopy.log)"
    else
        fact nbdcopy.seconds "$(awk -v n=$((t1 - t0)) 'BEGIN {printf "%.3f", n / 1e9}')"
        if cmp -s "$src" "$dst"; then fact nbdcopy.identical yes; else fact nbdcopy.identical no; failed "nbdcopy: copy differs from source"; fi
        log "  nbdcopy: $(awk -v n=$((t1 - t0)) 'BEGIN {printf "%.2f", n / 1e9}') s"
    fi
    rm -f "$src" "$dst"
}

# ---------------------------------------------------------------------------
# qemu-storage-daemon: A mirrors synchronously to B

bench_qemu() {
    local a="$WORK/qemu-a.img" b="$WORK/qemu-b.img" port qmp="$WORK/qemu-a.qmp" asock="$WORK/qemu-a.sock"
    local apid bpid uri out
    log "== qemu-storage-daemon, active mirror A -> B (write-blocking)"
    make_random "$a"
    make_zero "$b"
    flush_disks
    port=$(pick_port 1) || die "no free TCP port"
    # shellcheck disable=SC2054  # the commas are qemu's option syntax
    local bcmd=(qemu-storage-daemon
        --blockdev "driver=file,node-name=file-b,filename=$b"
        --blockdev driver=raw,node-name=disk-b,file=file-b
        --nbd-server "addr.type=inet,addr.host=127.0.0.2,addr.port=$port"
        --export type=nbd,id=exp-b,node-name=disk-b,name=b,writable=on)
    # shellcheck disable=SC2054
    local acmd=(qemu-storage-daemon
        --blockdev "driver=file,node-name=file-a,filename=$a"
        --blockdev driver=raw,node-name=disk-a,file=file-a
        --nbd-server "addr.type=unix,addr.path=$asock"
        --export type=nbd,id=exp-a,node-name=disk-a,name=a,writable=on
        --chardev "socket,id=qmp,path=$qmp,server=on,wait=off" --monitor chardev=qmp)
    {
        echo "qemu B: ${bcmd[*]}"
        echo "qemu A: ${acmd[*]}"
        echo "qemu A (QMP): blockdev-add driver=nbd node-name=mirror-target server=inet:127.0.0.2:$port export=b;" \
            "blockdev-mirror device=disk-a target=mirror-target sync=full copy-mode=write-blocking; wait ready"
    } >>"$COMMANDS"
    "${bcmd[@]}" >>"$OUT/logs/qemu-b.log" 2>&1 </dev/null &
    bpid=$!
    PIDS+=("$bpid")
    wait_until "qemu B export" 30 0.1 export_ready "nbd://127.0.0.2:$port/b" || die "qemu B did not start (see $OUT/logs/qemu-b.log)"
    "${acmd[@]}" >>"$OUT/logs/qemu-a.log" 2>&1 </dev/null &
    apid=$!
    PIDS+=("$apid")
    uri="nbd+unix:///a?socket=$asock"
    wait_until "qemu A export" 30 0.1 export_ready "$uri" || die "qemu A did not start (see $OUT/logs/qemu-a.log)"
    wait_until "qemu A QMP socket" 30 0.1 test -S "$qmp" || die "qemu A has no QMP socket"

    out=$(timeout $((SYNC_TIMEOUT + 30)) "$PY" "$BENCH_DIR/lib/qmp.py" "$qmp" mirror disk-a 127.0.0.2 "$port" b "$SYNC_TIMEOUT" \
        2>>"$OUT/logs/qemu-qmp.log") || die "qemu mirror did not become ready (see $OUT/logs/qemu-qmp.log)"
    fact qemu.mirror_sync_seconds "$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["seconds"])' "$out")"
    log "  qemu mirror ready: $out"

    run_jobs qemu --ioengine=nbd --uri="$uri"

    if out=$(timeout 30 "$PY" "$BENCH_DIR/lib/qmp.py" "$qmp" check 2>>"$OUT/logs/qemu-qmp.log"); then
        fact qemu.mirror_after_runs "ready"
    else
        fact qemu.mirror_after_runs "NOT READY: $out"
        failed "qemu mirror job not ready after the runs: $out"
    fi
    fact rss.qemu-a "$(rss_kib "$apid")"
    fact rss.qemu-b "$(rss_kib "$bpid")"
    timeout 60 "$PY" "$BENCH_DIR/lib/qmp.py" "$qmp" finish 30 2>>"$OUT/logs/qemu-qmp.log" ||
        log "qmp finish failed (see $OUT/logs/qemu-qmp.log); stopping A with SIGTERM"
    wait_until "qemu A to exit after quit" 30 0.1 pid_dead "$apid" || true
    kill_pid "$apid"
    kill_pid "$bpid"
    if cmp "$a" "$b" >"$OUT/logs/qemu-cmp.log" 2>&1; then
        fact qemu.identical yes
        log "  qemu: A and B identical"
    else
        fact qemu.identical no
        failed "qemu: A and B differ after the runs ($(head -c 200 "$OUT/logs/qemu-cmp.log"))"
    fi
    rm -f "$a" "$b"
}

# ---------------------------------------------------------------------------
# repd

# node_define HANDLE NODE RES CONFDIR RUNDIR
node_define() {
    NNODE[$1]=$2 NRES[$1]=$3 NCONF[$1]=$4 NRUN[$1]=$5
    mkdir -p "$5"
    HANDLES+=("$1")
}

# node_state HANDLE: "role=.. disk=.. conn=.. repl=.. peer-disk=.. oos=.. apif=.. sent=.."
node_state() {
    local h=$1
    REPD_VERB_TIMEOUT=30 rp "$h" status --json 2>/dev/null </dev/null | "$PY" -c '
import json, sys
r = json.load(sys.stdin)[0]
def g(f):
    try:
        return str(f()).replace(" ", "_")
    except Exception:
        return "?"
c = lambda: r["connections"][0]
pd = lambda: c()["peer_devices"][0]
print(" ".join("%s=%s" % (k, g(f)) for k, f in [
    ("role", lambda: r["role"]), ("disk", lambda: r["devices"][0]["disk-state"]),
    ("conn", lambda: c()["connection-state"]), ("repl", lambda: pd()["replication-state"]),
    ("peer-disk", lambda: pd()["peer-disk-state"]), ("oos", lambda: pd()["out-of-sync"]),
    ("apif", lambda: c()["ap-in-flight"]), ("sent", lambda: pd()["sent"])]))
'
}
node_is() {  # HANDLE KEY=VALUE|KEY!=VALUE...
    local h=$1 kv line
    shift
    line=" $(node_state "$h") " || return 1
    for kv in "$@"; do
        case "$kv" in
            *!=*) [[ $line == *" ${kv%%!=*}="* && $line != *" ${kv%%!=*}=${kv#*!=} "* ]] || return 1 ;;
            *) [[ $line == *" $kv "* ]] || return 1 ;;
        esac
    done
}
node_value() {  # HANDLE KEY
    local kv
    for kv in $(node_state "$1"); do
        [ "${kv%%=*}" != "$2" ] || { echo "${kv#*=}"; return 0; }
    done
    echo "?"
}
node_up() {  # HANDLE
    rp "$1" up >>"$OUT/logs/repd-up-$1.log" 2>&1 </dev/null || die "repd up failed on $1 (see $OUT/logs/repd-up-$1.log)"
    pid_alive "$(node_pid "$1")" || die "repd up on $1 returned 0 but its daemon is not alive"
}
node_uri() { echo "nbd+unix:///${NRES[$1]}?socket=${NRUN[$1]}/${NRES[$1]}.sock"; }
node_log() { echo "${NRUN[$1]}/${NRES[$1]}.log"; }
# Keep a copy of each daemon's log in $OUT/logs (the run dir goes away).
save_log() { cp "$(node_log "$1")" "$OUT/logs/repd-$1.daemon.log" 2>/dev/null || true; }

# The resource file: alpha 127.0.0.1:PORT, beta 127.0.0.2:PORT, external meta-disk
# files (so the data files compare whole), protocol C. Resync at a fixed rate above what the
# link can do (DRBD's defaults, a dynamic controller capped at 100 MiB/s, would cap the sync
# comparison; an administrator tunes this the same way for an initial sync).
write_res() {  # FILE RES PORT DIR [MORE-NET] [DISK-OPTIONS]
    cat >"$1" <<EOF
resource $2 {
  net { protocol C; connect-int 1; ping-int 1; ping-timeout 10; timeout 30; cram-hmac-alg sha256; shared-secret "bench"; ${5:-} }
  disk { ${6-c-plan-ahead 0; resync-rate 4G; c-min-rate 0;} }
  on alpha { device none; disk $4/alpha.img; address 127.0.0.1:$3; meta-disk $4/alpha.md; }
  on beta  { device none; disk $4/beta.img;  address 127.0.0.2:$3; meta-disk $4/beta.md; }
}
EOF
}

bench_repd1() {
    local dir="$WORK/repd1" port h=r1-alpha pid
    log "== repd, one node alone"
    mkdir -p "$dir/conf"
    port=$(pick_port 2) || die "no free TCP port"
    make_random "$dir/alpha.img"
    truncate -s 16M "$dir/alpha.md"
    write_res "$dir/conf/bench.res" bench "$port" "$dir"
    cp "$dir/conf/bench.res" "$OUT/logs/repd1-bench.res"
    flush_disks
    node_define "$h" alpha bench "$dir/conf" "$dir/run-alpha"
    rp "$h" create-md >"$OUT/logs/repd1-create-md.log" 2>&1 </dev/null || die "repd create-md failed (see $OUT/logs/repd1-create-md.log)"
    node_up "$h"
    rp "$h" primary --force >"$OUT/logs/repd1-primary.log" 2>&1 </dev/null || die "repd primary --force failed"
    wait_until "repd one node Primary/UpToDate" 60 0.1 node_is "$h" role=Primary disk=UpToDate || die "repd one node not Primary/UpToDate"
    wait_until "repd one node export" 30 0.1 export_ready "$(node_uri "$h")" || die "repd export does not answer"
    echo "repd1: repd create-md/up/primary --force bench (resource file in logs/repd1-bench.res; peer beta never started)" >>"$COMMANDS"
    pid=$(node_pid "$h")
    RSS_WATCH=("repd1-alpha $pid")
    run_jobs repd1 --ioengine=nbd --uri="$(node_uri "$h")"
    RSS_WATCH=()
    fact rss.repd1-alpha "$(rss_kib "$pid")"
    stop_repd_nodes "$h"
    save_log "$h"
    rm -rf "$dir"
}

sync_done() {  # all of: alpha Primary UpToDate Established peer UpToDate, beta UpToDate
    node_is "$1" role=Primary disk=UpToDate repl=Established peer-disk=UpToDate oos=0 &&
        node_is "$2" disk=UpToDate
}
log_has_since() {  # FILE OFFSET TEXT
    tail -c "+$(($2 + 1))" "$1" 2>/dev/null | grep -q -- "$3"
}
resync_line() {  # FILE OFFSET: the last "resync finished as SyncSource" line after OFFSET
    tail -c "+$(($2 + 1))" "$1" 2>/dev/null | grep -- "resync finished as SyncSource" | tail -n 1
}

bench_repd2() {
    local dir="$WORK/repd2" port a=r2-alpha b=r2-beta t0 t1 line s0 s1 off oos rc=0 pidb
    log "== repd, two nodes, protocol C"
    mkdir -p "$dir/conf"
    port=$(pick_port 3) || die "no free TCP port"
    make_random "$dir/alpha.img"
    make_zero "$dir/beta.img"
    truncate -s 16M "$dir/alpha.md" "$dir/beta.md"
    write_res "$dir/conf/bench.res" bench "$port" "$dir"
    cp "$dir/conf/bench.res" "$OUT/logs/repd2-bench.res"
    flush_disks
    pair_up repd2 "$a" "$b" "$dir/conf" "$dir/conf" "$dir"
    wait_until "beta Connected" 30 0.1 node_is "$b" conn=Connected || die "repd beta not Connected"

    # Full initial sync: from `primary --force` until the peer is UpToDate.
    echo "repd2: repd create-md/up on alpha and beta; repd primary --force bench on alpha; wait until peer-disk UpToDate (resource file in logs/repd2-bench.res)" >>"$COMMANDS"
    off=$(stat -c %s "$(node_log "$a")")
    t0=$(date +%s%N)
    rp "$a" primary --force >"$OUT/logs/repd2-primary.log" 2>&1 </dev/null || die "repd primary --force failed on alpha"
    wait_until "initial sync alpha -> beta" "$SYNC_TIMEOUT" 0.1 node_is "$a" role=Primary repl=Established peer-disk=UpToDate oos=0 ||
        die "initial sync did not finish in ${SYNC_TIMEOUT}s"
    t1=$(date +%s%N)
    wait_until "beta UpToDate" 30 0.1 node_is "$b" disk=UpToDate || die "beta not UpToDate after the initial sync"
    fact repd.full_sync_seconds "$(awk -v n=$((t1 - t0)) 'BEGIN {printf "%.3f", n / 1e9}')"
    wait_until "resync log line" 10 0.1 log_has_since "$(node_log "$a")" "$off" "resync finished as SyncSource" || true
    line=$(resync_line "$(node_log "$a")" "$off")
    fact repd.full_sync_log "${line:-none}"
    log "  initial sync: $(awk -v n=$((t1 - t0)) 'BEGIN {printf "%.2f", n / 1e9}') s; alpha's log: ${line:-no resync line}"

    fact rss_after.repd2-alpha.initial-sync "$(rss_kib "$(node_pid "$a")")"
    fact rss_after.repd2-beta.initial-sync "$(rss_kib "$(node_pid "$b")")"
    RSS_WATCH=("repd2-alpha $(node_pid "$a")" "repd2-beta $(node_pid "$b")")
    run_jobs repd2 --ioengine=nbd --uri="$(node_uri "$a")"
    RSS_WATCH=()

    wait_until "alpha: nothing in flight, nothing out of sync" 60 0.2 \
        node_is "$a" conn=Connected repl=Established peer-disk=UpToDate oos=0 apif=0 ||
        failed "repd2: after the runs alpha is not Connected/Established/in sync: $(node_state "$a")"
    fact repd2.state_after_runs "$(node_state "$a")"

    # Partial resync: beta away, DIRTY_BLOCKS scattered 4 KiB writes, beta back.
    log "  partial resync: beta down, $DIRTY_BLOCKS x 4 KiB scattered writes through alpha, beta up"
    fact rss.repd2-beta "$(rss_kib "$(node_pid "$b")")"
    pidb=$(node_pid "$b")
    rp "$b" down >"$OUT/logs/repd2-down-beta.log" 2>&1 </dev/null || die "repd down on beta failed"
    wait_until "beta daemon to exit" 30 0.1 pid_dead "$pidb" || die "beta daemon still alive after down"
    wait_until "alpha to see beta gone" 30 0.1 node_is "$a" conn!=Connected || die "alpha still Connected to a stopped beta"
    local dargs=(--name=dirty --rw=randwrite --bs=4k --iodepth=16 --size="$SIZE_BYTES"
        --number_ios="$DIRTY_BLOCKS" --randseed=4242 --ioengine=nbd --uri="$(node_uri "$a")"
        --output-format=json --output="$OUT/fio/repd2-dirty.json")
    echo "repd2 partial resync: repd down bench on beta; fio ${dargs[*]}; repd up bench on beta" >>"$COMMANDS"
    (cd "$WORK" && exec timeout -k 10 300 fio "${dargs[@]}") >"$OUT/logs/repd2-dirty.log" 2>&1 </dev/null &
    PIDS+=("$!")
    wait "$!" || rc=$?
    [ "$rc" -eq 0 ] || die "fio (dirty writes) exit status $rc"
    fact repd.partial.dirty_written_bytes "$("$PY" -c '
import json, sys
t = open(sys.argv[1]).read()
print(json.loads(t[t.index("{"):])["jobs"][0]["write"]["io_bytes"])' "$OUT/fio/repd2-dirty.json")"
    oos=$(node_value "$a" oos)
    fact repd.partial.oos_kib_before "$oos"
    s0=$(node_value "$a" sent)
    off=$(stat -c %s "$(node_log "$a")")
    t0=$(date +%s%N)
    node_up "$b"
    wait_until "resync alpha -> beta" "$SYNC_TIMEOUT" 0.1 log_has_since "$(node_log "$a")" "$off" "resync finished as SyncSource" ||
        die "partial resync did not finish in ${SYNC_TIMEOUT}s"
    wait_until "alpha and beta in sync" 60 0.1 sync_done "$a" "$b" || die "not in sync after the partial resync"
    t1=$(date +%s%N)
    s1=$(node_value "$a" sent)
    line=$(resync_line "$(node_log "$a")" "$off")
    fact repd.partial.sent_kib "$((s1 - s0))"
    fact repd.partial.seconds "$(awk -v n=$((t1 - t0)) 'BEGIN {printf "%.3f", n / 1e9}')"
    fact repd.partial.log "${line:-none}"
    log "  partial resync: dirty $DIRTY_BLOCKS x 4 KiB, alpha out-of-sync ${oos} KiB, sent $((s1 - s0)) KiB; ${line:-no resync line}"

    fact rss.repd2-alpha "$(rss_kib "$(node_pid "$a")")"
    fact rss.repd2-beta-after-resync "$(rss_kib "$(node_pid "$b")")"
    stop_repd_nodes "$a" "$b"
    save_log "$a"
    save_log "$b"
    (cd "$OUT/logs" && grep -E -i 'error|warning' "repd-$a.daemon.log" "repd-$b.daemon.log") \
        >"$OUT/logs/repd2-log-warnings.txt" 2>/dev/null || true
    if cmp "$dir/alpha.img" "$dir/beta.img" >"$OUT/logs/repd2-cmp.log" 2>&1; then
        fact repd.identical yes
        log "  repd: alpha.img and beta.img identical"
    else
        fact repd.identical no
        failed "repd: alpha.img and beta.img differ after the runs ($(head -c 200 "$OUT/logs/repd2-cmp.log"))"
    fi
    rm -rf "$dir"
}

# pair_up LABEL A B CONF-A CONF-B DIR: alpha (handle A) and beta (B) with their resource files in
# CONF-A and CONF-B and run dirs in DIR: create-md, up, Connected.
pair_up() {
    local label=$1 a=$2 b=$3 h
    node_define "$a" alpha bench "$4" "$6/run-alpha"
    node_define "$b" beta bench "$5" "$6/run-beta"
    for h in "$a" "$b"; do
        rp "$h" create-md >"$OUT/logs/$label-create-md-$h.log" 2>&1 </dev/null || die "repd create-md failed on $h ($label)"
    done
    node_up "$a"
    node_up "$b"
    wait_until "alpha and beta Connected ($label)" 60 0.1 node_is "$a" conn=Connected || die "repd nodes did not connect ($label)"
}
# timed_initial_sync LABEL A FACT: `primary --force` on A until its peer is UpToDate; the seconds go
# to fact FACT and the log.
timed_initial_sync() {
    local label=$1 a=$2 t0 t1 secs
    t0=$(date +%s%N)
    rp "$a" primary --force >"$OUT/logs/$label-primary.log" 2>&1 </dev/null || die "repd primary --force failed on alpha ($label)"
    wait_until "initial sync alpha -> beta ($label)" "$SYNC_TIMEOUT" 0.1 node_is "$a" role=Primary repl=Established peer-disk=UpToDate oos=0 ||
        die "initial sync ($label) did not finish in ${SYNC_TIMEOUT}s"
    t1=$(date +%s%N)
    secs=$(awk -v n=$((t1 - t0)) 'BEGIN {printf "%.3f", n / 1e9}')
    fact "$3" "$secs"
    log "  initial sync ($label): $secs s"
}
# compare_pair LABEL DIR FACT: the two data files after down, identical or a failure.
compare_pair() {
    if cmp "$2/alpha.img" "$2/beta.img" >"$OUT/logs/$1-cmp.log" 2>&1; then
        fact "$3" yes
        log "  $1: alpha.img and beta.img identical"
    else
        fact "$3" no
        failed "$1: alpha.img and beta.img differ ($(head -c 200 "$OUT/logs/$1-cmp.log"))"
    fi
}

# The pair of bench_repd2 with TLS on the link: the initial sync and the write jobs, for the
# ratio of TLS to clear text (reads never cross the link).
bench_repd2tls() {
    local dir="$WORK/repd2tls" port a=r2t-alpha b=r2t-beta h pki
    log "== repd, two nodes, protocol C, TLS on the link"
    pki="$dir/pki"
    mkdir -p "$dir/conf-alpha" "$dir/conf-beta"
    bash "$ROOT/tests/make-test-pki.sh" "$pki" >"$OUT/logs/repd2tls-pki.log" 2>&1 || die "making the test certificates failed"
    port=$(pick_port 4) || die "no free TCP port"
    make_random "$dir/alpha.img"
    make_zero "$dir/beta.img"
    truncate -s 16M "$dir/alpha.md" "$dir/beta.md"
    for h in alpha beta; do
        write_res "$dir/conf-$h/bench.res" bench "$port" "$dir" \
            "tls yes; tls-certificate $pki/$h.pem; tls-privkey $pki/$h-key.pem; tls-ca $pki/ca.pem;"
    done
    cp "$dir/conf-alpha/bench.res" "$OUT/logs/repd2tls-bench.res"
    flush_disks
    pair_up repd2tls "$a" "$b" "$dir/conf-alpha" "$dir/conf-beta" "$dir"
    echo "repd2tls: as repd2, each node with its own resource file adding tls yes and its certificate (logs/repd2tls-bench.res)" >>"$COMMANDS"
    timed_initial_sync repd2tls "$a" repd2tls.full_sync_seconds
    RSS_WATCH=("repd2tls-alpha $(node_pid "$a")" "repd2tls-beta $(node_pid "$b")")
    ONLY_JOBS=${ONLY_JOBS:-seqwrite-1M-QD8 randwrite-4k-QD32 randwrite-4k-QD1} run_jobs repd2tls --ioengine=nbd --uri="$(node_uri "$a")"
    RSS_WATCH=()
    wait_until "alpha: nothing in flight, nothing out of sync" 60 0.2 \
        node_is "$a" conn=Connected repl=Established peer-disk=UpToDate oos=0 apif=0 ||
        failed "repd2tls: after the runs alpha is not Connected/Established/in sync: $(node_state "$a")"
    fact rss.repd2tls-alpha "$(rss_kib "$(node_pid "$a")")"
    fact rss.repd2tls-beta "$(rss_kib "$(node_pid "$b")")"
    stop_repd_nodes "$a" "$b"
    save_log "$a"
    save_log "$b"
    compare_pair repd2tls "$dir" repd2tls.identical
    rm -rf "$dir"
}

# sync_latency A: an application's 4 KiB write latency at queue depth 1 (fio through A's export),
# first with the pair in sync, then during a full resync (`invalidate-remote`) with the rate
# settings of A's resource file; p99 of each in OUT/fio/synclat-randwrite-*.json, for the ratio.
sync_latency() {
    local a=$1 phase json args
    for phase in idle resync; do
        # The initial sync's (or the idle job's) dirty pages are written back first, not during the job.
        flush_disks
        if [ "$phase" = resync ]; then
            rp "$a" invalidate-remote >"$OUT/logs/synclat-invalidate.log" 2>&1 </dev/null ||
                { failed "synclat: repd invalidate-remote failed"; return; }
            wait_until "alpha SyncSource" 30 0.1 node_is "$a" repl=SyncSource || { failed "synclat: no resync started"; return; }
        fi
        json="$OUT/fio/synclat-randwrite-$phase.json"
        args=(--name="synclat-$phase" --rw=randwrite --bs=4k --iodepth=1 --numjobs=1 --size="$SIZE_BYTES"
            --time_based=1 --runtime="$RUNTIME" --ioengine=nbd --uri="$(node_uri "$a")" --output-format=json --output="$json")
        echo "synclat $phase: fio ${args[*]}" >>"$COMMANDS"
        (cd "$WORK" && exec timeout -k 10 $((RUNTIME + 120)) fio "${args[@]}") >"$OUT/logs/synclat-$phase.log" 2>&1 </dev/null ||
            { failed "synclat $phase: fio failed (see $OUT/logs/synclat-$phase.log)"; return; }
        log "  application writes, $phase: $(fio_summary "$json")"
    done
    # The ratio means something only if the resync ran for the whole job.
    if node_is "$a" repl=SyncSource; then fact synclat.resync_throughout yes; else fact synclat.resync_throughout no; fi
    wait_until "the resync after invalidate-remote" "$SYNC_TIMEOUT" 0.1 node_is "$a" repl=Established peer-disk=UpToDate oos=0 ||
        failed "synclat: the resync after invalidate-remote did not finish in ${SYNC_TIMEOUT}s"
}

# The full initial sync with the rate settings an administrator gets without tuning: DRBD's
# defaults (dynamic controller, c-fill-target 50 KiB, c-max-rate 100 MiB/s), then `c-max-rate 4G`.
bench_syncdef() {
    local name opts dir port a b
    for spec in "defaults|" "cmax4g|c-max-rate 4G;"; do
        name=${spec%%|*} opts=${spec#*|}
        dir="$WORK/syncdef-$name" a="sd-$name-alpha" b="sd-$name-beta"
        log "== repd full initial sync, disk { $opts }"
        mkdir -p "$dir/conf"
        port=$(pick_port 5) || die "no free TCP port"
        make_random "$dir/alpha.img"
        make_zero "$dir/beta.img"
        truncate -s 16M "$dir/alpha.md" "$dir/beta.md"
        write_res "$dir/conf/bench.res" bench "$port" "$dir" "" "$opts"
        cp "$dir/conf/bench.res" "$OUT/logs/syncdef-$name-bench.res"
        flush_disks
        pair_up "syncdef-$name" "$a" "$b" "$dir/conf" "$dir/conf" "$dir"
        echo "syncdef $name: repd create-md/up on alpha and beta; repd primary --force bench on alpha; wait until peer-disk UpToDate (logs/syncdef-$name-bench.res)" >>"$COMMANDS"
        timed_initial_sync "syncdef-$name" "$a" "syncdef.$name.seconds"
        [ "$name" != defaults ] || sync_latency "$a"
        stop_repd_nodes "$a" "$b"
        save_log "$a"
        compare_pair "syncdef-$name" "$dir" "syncdef.$name.identical"
        rm -rf "$dir"
    done
}

# ---------------------------------------------------------------------------

log "results in $OUT; scratch files in $WORK; RUNTIME=$RUNTIME RAMP=$RAMP SIZE=$SIZE targets: $TARGETS"
want raw && bench_raw
want nbdkit && { bench_nbdkit; bench_nbdcopy; }
want qemu && bench_qemu
want repd1 && bench_repd1
want repd2 && bench_repd2
want repd2tls && bench_repd2tls
want syncdef && bench_syncdef
fact host.loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"
fact elapsed_seconds "$SECONDS"

REPORTED=1
"$PY" "$BENCH_DIR/lib/report.py" "$OUT" || failed "report.py failed"
log "report: $OUT/results.md"
[ "$FAILS" -eq 0 ] || { log "$FAILS step(s) failed: see $FACTS"; exit 1; }
