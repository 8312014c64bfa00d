# shellcheck shell=bash
# tests/lib.sh - helpers sourced by every tests/*.sh integration test.
#
# Modelled on nbdkit's tests/functions.sh: one script per behaviour,
# exit 0 = pass, 1 = fail, 77 = skip (a failure under CI=true), and
# cleanup that always runs (EXIT trap), even when the test fails half way
# through.
#
# Usage in a test:
#
#     #!/usr/bin/env bash
#     source "$(dirname "$0")/lib.sh"
#     require_tool nbdinfo
#     start_single_node t0 128M      # sets NBD_URI, NBD_SOCK, DISK, ...
#     run_logged info nbdinfo --json "$NBD_URI"
#     pass "nbdinfo works"
#
# Environment:
#   REPD                 path of the repd binary (default:
#                        <git toplevel>/.build/release/repd)
#   CI=true              a skip (missing tool, root, device, ...) is a
#                        failure, exit 1: CI installs what the tests need
#   REPD_TEST_KEEP=1     keep the per-test temp dir (for debugging)
#   REPD_TEST_MD_SIZE    size of the external meta-disk file (default 16M)
#   REPD_TEST_FAIL_AT=NAME
#                        TEST-SUITE SELF-CHECK: fail deliberately at the
#                        checkpoint NAME (see `checkpoint` calls in the
#                        tests) to prove that cleanup undoes everything.
#   REPD_TEST_STANDIN=nbdkit
#                        TEST-SUITE SELF-CHECK ONLY, not a test of repd:
#                        start_single_node serves the backing file with
#                        `nbdkit file` on the same socket instead of
#                        starting repd, so the client side of every script
#                        can be exercised before the daemon exists.  The
#                        repd verbs (create-md, up, primary, status,
#                        dump-md, down) are not run in that mode.
#
# The tests set REPD_CONFIG_DIR / REPD_NODE / REPD_RUN_DIR themselves (to
# a private temp dir); values from the caller's environment are ignored.

set -euo pipefail
set -E                                  # ERR trap inside functions too

export LC_ALL=C
export LVM_SUPPRESS_FD_WARNINGS=1       # lvm moans about inherited fds

# Keep the test's original stdout/stderr on fds 8/9: a signal trap can run
# while a command's output is redirected to a log file (run_logged), and
# the verdict and diagnostics must still reach the real stderr.  Daemons
# and background helpers are started with 8>&- 9>&- so they do not hold
# the runner's pipe open.
exec 8>&1 9>&2

TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TEST_NAME=$(basename "$0" .sh)

# --------------------------------------------------------------------------
# Reporting

_REPORTED=0          # set once a PASS/FAIL/SKIP verdict line was printed
_LAST_ERR=""         # last command that failed under set -e (ERR trap)

pass() { echo "PASS: $TEST_NAME: $*" >&8; }

fail() {
    echo "FAIL: $TEST_NAME: $*" >&9
    _REPORTED=1
    exit 1
}

# In CI (CI=true) a skip is a failure: CI installs every tool the tests
# need and runs as root, so a test that would skip there hides a broken
# setup.  require_tool, require_root, require_dev and require_python_nbd
# all end here.
skip() {
    if _in_ci; then
        echo "FAIL: $TEST_NAME: would skip, but CI=true makes a skip a failure: $*" >&9
        _REPORTED=1
        exit 1
    fi
    echo "SKIP: $TEST_NAME: $*" >&8
    _REPORTED=1
    exit 77
}
_in_ci() { [ "${CI:-}" = true ]; }

# Print a file (or its last N lines) indented, for failure reports.
show_file() {  # FILE [LINES]
    local f=$1 n=${2:-60}
    [ -e "$f" ] || { echo "    ($f: missing)"; return 0; }
    echo "    --- $f (last $n lines) ---"
    tail -n "$n" "$f" 2>/dev/null | sed 's/^/    | /'
}

# Run a command with its output captured to $T/NAME.out.  Quiet on
# success; on failure prints the command, its exit status and output,
# then fails the test.
run_logged() {  # NAME CMD [ARGS...]
    local name=$1; shift
    local out="$T/$name.out" rc=0
    "$@" >"$out" 2>&1 </dev/null || rc=$?
    if [ "$rc" -ne 0 ]; then
        {
            echo "command failed (exit $rc): $*"
            show_file "$out" 80
        } >&2
        fail "$name: exit status $rc"
    fi
}

# Deliberate failure point for checking the cleanup (REPD_TEST_FAIL_AT).
checkpoint() {  # NAME
    [ "${REPD_TEST_FAIL_AT:-}" != "$1" ] || fail "deliberate failure at checkpoint '$1' (REPD_TEST_FAIL_AT)"
}

# Run a command without the saved fds 8/9 (for anything that daemonises).
_nofds() { "$@" 8>&- 9>&-; }

# Like run_logged but returns the exit status instead of failing.
run_quiet() {  # NAME CMD [ARGS...]
    local name=$1; shift
    "$@" >"$T/$name.out" 2>&1 </dev/null
}

# --------------------------------------------------------------------------
# Requirements

# Something the test needs is missing: a SKIP, except in CI (CI=true),
# where it is a FAIL.
missing() {  # REASON
    [ "${CI:-}" != true ] || fail "$* (CI=true: a missing requirement is a failure)"
    skip "$*"
}

require_tool() {  # TOOL...
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || missing "required tool '$t' not found"
    done
}

require_root() {
    [ "$(id -u)" -eq 0 ] || missing "must be run as root"
}

require_dev() {  # /dev/NODE...
    local d
    for d in "$@"; do
        [ -e "$d" ] || missing "$d not available"
    done
}

# --------------------------------------------------------------------------
# Bounded waiting.  Every wait in the suite goes through this.

# Bounded by count (TRIES) and by time (TRIES x SLEEP + 10 s, however slow
# each probe is).
wait_for() {  # DESCRIPTION TRIES SLEEP CMD [ARGS...]
    local desc=$1 tries=$2 delay=$3 i start=$SECONDS limit
    shift 3
    limit=$(awk -v t="$tries" -v d="$delay" 'BEGIN {print int(t * d) + 10}')
    for ((i = 0; i < tries && SECONDS - start <= limit; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep "$delay"
    done
    echo "timed out after $i tries / $((SECONDS - start))s waiting for: $desc" >&2
    return 1
}

# Bounded by wall-clock time only: run CMD every SLEEP seconds until it
# succeeds or SECONDS have passed (for probes whose own cost varies, e.g.
# `repd status` of a busy daemon).
wait_until() {  # DESCRIPTION SECONDS SLEEP CMD [ARGS...]
    local desc=$1 secs=$2 delay=$3 start n=0
    shift 3
    start=$(date +%s%N)
    while :; do
        n=$((n + 1))
        if "$@" >/dev/null 2>&1; then return 0; fi
        [ $(( ($(date +%s%N) - start) / 1000000 )) -lt $((secs * 1000)) ] || break
        sleep "$delay"
    done
    echo "timed out after $n tries / ${secs}s waiting for: $desc" >&2
    return 1
}

# True if PID exists and is not a zombie.  (PID 1 on some test machines
# does not reap orphans, so a dead daemon can linger as a zombie and
# `kill -0` would still succeed.)
pid_alive() {  # PID
    local pid=$1 st
    [ -n "$pid" ] && [ -r "/proc/$pid/status" ] || return 1
    st=$(awk '/^State:/ {print $2; exit}' "/proc/$pid/status" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

pid_dead() { ! pid_alive "$1"; }

# True if PID's command line mentions WORD (guards kill -9 against pid reuse).
pid_is() {  # PID WORD
    [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q -- "$2"
}

# --------------------------------------------------------------------------
# Per-test temp dir and environment

T=$(mktemp -d "/tmp/repd-test-$TEST_NAME.XXXXXX")
export REPD_CONFIG_DIR="$T/etc"
export REPD_RUN_DIR="$T/run"
export REPD_NODE=alpha
mkdir -p "$REPD_CONFIG_DIR" "$REPD_RUN_DIR" "$T/w"

STANDIN=${REPD_TEST_STANDIN:-}
case "$STANDIN" in
    ""|nbdkit) ;;
    *) echo "FAIL: $TEST_NAME: unknown REPD_TEST_STANDIN='$STANDIN' (only 'nbdkit')" >&2
       rm -rf "$T"; exit 1 ;;
esac

if [ -z "${REPD:-}" ]; then
    _top=$(git -C "$TESTS_DIR" rev-parse --show-toplevel 2>/dev/null) || _top=$(dirname "$TESTS_DIR")
    REPD="$_top/.build/release/repd"
fi

require_repd() {
    [ -n "$STANDIN" ] && return 0
    if [ ! -x "$REPD" ]; then
        fail "repd binary not found or not executable: $REPD (build it, or set REPD=...)"
    fi
}

# --------------------------------------------------------------------------
# Cleanup registry.  Everything a test creates is registered here as soon
# as it exists; cleanup() undoes it in dependency order: background
# processes, mounts, VGs/PVs, loop devices, FUSE mounts, the daemon.

BG_PIDS=()       # background processes started by the test (killed)
SESSIONS=()      # session ids (setsid) whose every process is killed
MOUNTS=()        # mounted filesystems (umount)
VGS=()           # "VG DEVICE" volume groups (vgchange -an, vgremove)
PVS=()           # PV devices (pvremove)
LOOPS=()         # loop devices (losetup -d)
FUSE_MNTS=()     # "MOUNTPOINT PID" nbdfuse mounts (fusermount3 -u)
RES=""           # resource started by start_single_node
NODE_INSTANCES=() # "HANDLE|NODE|RES|CONFDIR|RUNDIR" of every node_define (two-node tests)

add_bg_pid()  { BG_PIDS+=("$1"); }
add_session() { SESSIONS+=("$1"); }
add_mount()   { MOUNTS+=("$1"); }
add_vg()      { VGS+=("$1 $2"); }
add_pv()      { PVS+=("$1"); }
add_loop()    { LOOPS+=("$1"); }
add_fuse()    { FUSE_MNTS+=("$1 ${2:-}"); }
NETNS=()         # network namespaces (ip netns del), after the daemons in them
add_netns()   { NETNS+=("$1"); }
DEV_LINKS=()     # /dev links a daemon makes (removed if still a link once the daemons are gone)
add_devlink() { DEV_LINKS+=("$1"); }

# Remove one entry from a registry array once the test has undone it itself.
_unregister() {  # ARRAYNAME VALUE
    local -n _arr=$1
    local v out=()
    for v in "${_arr[@]}"; do [ "$v" = "$2" ] || out+=("$v"); done
    _arr=("${out[@]}")
}
del_mount() { _unregister MOUNTS "$1"; }
del_vg()    { _unregister VGS "$1 $2"; }
del_pv()    { _unregister PVS "$1"; }
del_loop()  { _unregister LOOPS "$1"; }
del_fuse()  { _unregister FUSE_MNTS "$1 ${2:-}"; }

_mounted() { awk -v m="$1" '$2 == m {f=1} END {exit !f}' /proc/mounts; }

# Kill a process we started: TERM, bounded wait, then KILL.
kill_pid() {  # PID
    local pid=$1
    pid_alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    wait_for "pid $pid to exit" 50 0.1 pid_dead "$pid" 2>/dev/null || {
        kill -KILL "$pid" 2>/dev/null || true
        wait_for "pid $pid to die" 50 0.1 pid_dead "$pid" || true
    }
    wait "$pid" 2>/dev/null || true          # reap if it is our child
}

# Kill every process of session SID (a command started with `setsid`),
# however deep and in whatever process group: TERM, bounded wait, KILL.
_session_pids() {  # SID
    local d p st sid
    for d in /proc/[0-9]*; do
        p=${d#/proc/}
        { st=$(<"$d/stat"); } 2>/dev/null || continue
        st=${st##*) }                   # after "(comm) ": state ppid pgrp session ...
        read -r _ _ _ sid _ <<<"$st"
        [ "$sid" = "$1" ] && pid_alive "$p" && echo "$p"
    done
    return 0
}
kill_session() {  # SID
    local sid=$1 pids
    [ -n "$sid" ] || return 0
    pids=$(_session_pids "$sid")
    [ -n "$pids" ] || return 0
    # shellcheck disable=SC2086  # a list of pids
    kill -TERM $pids 2>/dev/null || true
    wait_for "session $sid to exit" 50 0.1 _session_empty "$sid" 2>/dev/null || {
        pids=$(_session_pids "$sid")
        # shellcheck disable=SC2086
        [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
        wait_for "session $sid to die" 50 0.1 _session_empty "$sid" || true
    }
    wait "$sid" 2>/dev/null || true
}
_session_empty() { [ -z "$(_session_pids "$1")" ]; }

# Stop the daemon: `repd down`, then kill -9 whatever the pid file still
# names if it is alive.  Stand-in mode: stop nbdkit the same way.
repd_cleanup() {
    [ -n "$RES" ] || return 0
    local pidfile="$REPD_RUN_DIR/$RES.pid" pid=""
    [ -s "$pidfile" ] && pid=$(tr -dc '0-9' <"$pidfile")
    if [ -z "$STANDIN" ]; then
        if [ -x "$REPD" ]; then
            timeout 60 "$REPD" down "$RES" >"$T/repd-down.out" 2>&1 </dev/null || true
        fi
        if [ -n "$pid" ] && pid_alive "$pid" && { pid_is "$pid" repd || pid_is "$pid" "$(basename "$REPD")"; }; then
            wait_for "repd pid $pid to exit after down" 50 0.1 pid_dead "$pid" 2>/dev/null || {
                echo "NOTE: repd pid $pid still alive after 'repd down'; kill -9" >&2
                kill -KILL "$pid" 2>/dev/null || true
                wait_for "repd pid $pid to die" 50 0.1 pid_dead "$pid" || true
            }
        fi
        _sweep_daemons
    else
        if [ -n "$pid" ] && pid_is "$pid" nbdkit; then kill_pid "$pid"; fi
    fi
    RES=""
}

# Last resort: any repd process whose environment carries a REPD_RUN_DIR
# inside THIS test's temp dir, or whose command line names a path in it
# (e.g. `repd up` failed after forking, so no pid file), is ours; kill -9.
_sweep_daemons() {
    local d p exe want env
    want=$(basename "$REPD")
    for d in /proc/[0-9]*; do
        p=${d#/proc/}
        [ "$p" != "$$" ] || continue
        # (2>/dev/null first: the process may vanish while we look)
        exe=$(tr '\0' '\n' 2>/dev/null <"$d/cmdline" | head -n 1) || continue
        case "$(basename -- "${exe:-none}")" in repd|"$want") ;; *) continue ;; esac
        env=$'\n'$(tr '\0' '\n' 2>/dev/null <"$d/environ")
        [[ $env == *$'\n'"REPD_RUN_DIR=$T/"* || $env == *$'\n'"REPD_RUN_DIR=$T"$'\n'* ]] ||
            [[ $(tr '\0' ' ' 2>/dev/null <"$d/cmdline") == *"$T/"* ]] || continue
        pid_alive "$p" || continue
        echo "NOTE: killing leftover repd pid $p ($exe) of this test" >&2
        kill -KILL "$p" 2>/dev/null || true
    done
}

# Very last resort, after everything else was undone: any process still
# alive whose command line names a path inside $T (an orphaned qemu of the
# VM harness, a fio or socat that escaped its registry) belongs to this
# test; kill -9.  The comparison is done in bash, so no helper process of
# this loop carries $T in its own command line.
_sweep_strays() {
    local d p cmd
    for d in /proc/[0-9]*; do
        p=${d#/proc/}
        if [ "$p" = "$$" ] || [ "$p" = "$BASHPID" ]; then continue; fi
        cmd=$(tr '\0' ' ' 2>/dev/null <"$d/cmdline") || continue
        [[ $cmd == *"$T/"* ]] || continue
        pid_alive "$p" || continue
        echo "NOTE: killing leftover process $p of this test: ${cmd:0:160}" >&2
        kill -KILL "$p" 2>/dev/null || true
    done
}

_dump_diagnostics() {
    {
        echo "---- diagnostics for $TEST_NAME (temp dir $T) ----"
        [ -n "$_LAST_ERR" ] && echo "    last failing command: $_LAST_ERR"
        if [ -n "$RES" ]; then
            local dpid
            dpid=$(tr -dc '0-9' <"$REPD_RUN_DIR/$RES.pid" 2>/dev/null) || true
            if pid_alive "$dpid"; then
                echo "    daemon pid $dpid is alive"
            else
                echo "    daemon pid '${dpid:-?}' is NOT alive (pid file $REPD_RUN_DIR/$RES.pid)"
            fi
            show_file "$REPD_RUN_DIR/$RES.log" 50
            if [ -z "$STANDIN" ] && [ -x "$REPD" ]; then
                echo "    --- repd status $RES ---"
                timeout 10 "$REPD" status "$RES" 2>&1 </dev/null | sed 's/^/    | /' || true
            fi
        fi
        [ "${#NODE_INSTANCES[@]}" -eq 0 ] || _dump_node_diagnostics
        echo "    --- losetup -a / fuse mounts ---"
        losetup -a 2>/dev/null | sed 's/^/    | /' || true
        grep fuse /proc/mounts 2>/dev/null | sed 's/^/    | /' || true
    } >&2
}

# Safety net for anything the registry missed (e.g. a signal between
# `losetup` returning and add_loop): unmount whatever is mounted under $T,
# detach loop devices backed by files under $T, lazily unmount FUSE there.
_sweep_tmpdir() {
    local m dev
    # shellcheck disable=SC2013  # paths under $T have no blanks
    for m in $(awk -v t="$T/" 'index($2, t) == 1 && $3 !~ /^fuse/ {print $2}' /proc/mounts | sort -r); do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    done
    for dev in $(losetup -a 2>/dev/null | awk -v t="($T/" 'index($0, t) {sub(/:$/, "", $1); print $1}'); do
        losetup -d "$dev" 2>/dev/null
    done
    # shellcheck disable=SC2013  # paths under $T have no blanks
    for m in $(awk -v t="$T/" 'index($2, t) == 1 && $3 ~ /^fuse/ {print $2}' /proc/mounts | sort -r); do
        fusermount3 -u "$m" 2>/dev/null || fusermount3 -u -z "$m" 2>/dev/null
    done
}

cleanup() {
    local rc=$?
    set +e +E
    trap - ERR
    trap '' PIPE INT TERM HUP     # finish cleaning up even if the reader went away
    exec 1>&8 2>&9
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
        if [ "$_REPORTED" -ne 1 ]; then
            if [ -n "$_SIGNAL" ]; then
                echo "FAIL: $TEST_NAME: killed by SIG$_SIGNAL (timeout?); cleaning up" >&2
            else
                echo "FAIL: $TEST_NAME: unexpected error (exit $rc)${_LAST_ERR:+: $_LAST_ERR}" >&2
            fi
        fi
        _dump_diagnostics
    fi

    local p m e vg dev mnt pid i sid
    for p in "${BG_PIDS[@]}"; do kill_pid "$p"; done
    for sid in "${SESSIONS[@]}"; do kill_session "$sid"; done
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        m=${MOUNTS[i]}
        _mounted "$m" && { umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; }
    done
    for e in "${VGS[@]}"; do
        read -r vg dev <<<"$e"
        vgchange --devices "$dev" -an "$vg" >/dev/null 2>&1
        vgremove --devices "$dev" -f "$vg" >/dev/null 2>&1
    done
    for dev in "${PVS[@]}"; do
        pvremove --devices "$dev" -ff -y "$dev" >/dev/null 2>&1
    done
    for dev in "${LOOPS[@]}"; do
        losetup -d "$dev" 2>/dev/null
    done
    for e in "${FUSE_MNTS[@]}"; do
        read -r mnt pid <<<"$e"
        if _mounted "$mnt"; then
            wait_for "fusermount3 -u $mnt" 20 0.25 fusermount3 -u "$mnt" 2>/dev/null ||
                fusermount3 -u -z "$mnt" 2>/dev/null
        fi
        [ -n "$pid" ] && kill_pid "$pid"
    done
    _sweep_tmpdir
    repd_cleanup
    nodes_cleanup
    _sweep_daemons
    _sweep_strays
    for dev in "${DEV_LINKS[@]}"; do
        [ -L "$dev" ] && rm -f "$dev"
    done
    [ "${#DEV_LINKS[@]}" -eq 0 ] || rmdir /dev/repd/by-res /dev/repd 2>/dev/null
    local ns
    for ns in "${NETNS[@]}"; do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
        ip netns del "$ns" 2>/dev/null
    done

    if [ "${REPD_TEST_KEEP:-0}" = 1 ]; then
        echo "NOTE: keeping $T" >&2
    else
        rm -rf "$T"
    fi
    exit "$rc"
}

trap '_LAST_ERR="${BASH_SOURCE[0]##*/}:$LINENO: $BASH_COMMAND (exit $?)"' ERR
trap cleanup EXIT
_SIGNAL=""
trap '_SIGNAL=INT; exit 130' INT
trap '_SIGNAL=TERM; exit 143' TERM
trap '_SIGNAL=HUP; exit 129' HUP

# --------------------------------------------------------------------------
# A disk that fails for real: nbdkit (file plugin behind its error and pause
# filters) -> nbdfuse -> /dev/loopN.  The kernel's I/O path sees EIO or a
# request that does not come back, as from a dying disk.
#
#   faulty_disk NAME SIZE     sets FAULTY_DEV[NAME] (/dev/loopN) and
#                             FAULTY_RAW[NAME] (the file under it)
#   disk_fail NAME / disk_heal NAME       every request fails with EIO / none
#   disk_pause NAME / disk_resume NAME    requests hang / go on
#
# Everything is registered for cleanup (the loop device, the FUSE mount,
# nbdkit, paused or not).
declare -A FAULTY_DEV=() FAULTY_RAW=()
faulty_disk() {
    local name=$1 size=$2 base
    require_tool nbdkit nbdfuse losetup fusermount3 socat
    base="$T/faulty-$name"
    mkdir -p "$base.mnt"
    truncate -s "$size" "$base.raw"
    nbdkit -f --unix "$base.sock" --filter=pause --filter=error file "$base.raw" \
        error-rate=100% error-file="$base.fail" pause-control="$base.pause" \
        >"$base.nbdkit.log" 2>&1 </dev/null 8>&- 9>&- &
    add_bg_pid "$!"
    wait_for "nbdkit for $name" 100 0.1 nbdinfo --size "nbd+unix:///?socket=$base.sock" ||
        { show_file "$base.nbdkit.log" >&2; fail "nbdkit for the faulty disk $name did not come up"; }
    nbdfuse -P "$base.nbdfuse.pid" "$base.mnt/disk" "nbd+unix:///?socket=$base.sock" \
        >"$base.nbdfuse.log" 2>&1 </dev/null 8>&- 9>&- &
    add_fuse "$base.mnt" "$!"
    wait_for "nbdfuse for $name" 150 0.1 test -f "$base.mnt/disk" ||
        { show_file "$base.nbdfuse.log" >&2; fail "nbdfuse for the faulty disk $name did not come up"; }
    FAULTY_DEV[$name]=$(losetup -f --show "$base.mnt/disk" 2>"$base.losetup.err") ||
        { show_file "$base.losetup.err" >&2; fail "losetup on the faulty disk $name failed"; }
    add_loop "${FAULTY_DEV[$name]}"
    FAULTY_RAW[$name]="$base.raw"
}
disk_fail() { touch "$T/faulty-$1.fail"; }
disk_heal() { rm -f "$T/faulty-$1.fail"; }
_pause_ctl() {  # NAME CHAR EXPECTED
    local answer
    answer=$(printf '%s' "$2" | timeout 30 socat -t 30 - "UNIX-CONNECT:$T/faulty-$1.pause" 2>&1 | head -c 1) || true
    [ "$answer" = "$3" ] || fail "the pause filter of $1 answered '$answer' to '$2' (expected '$3')"
}
disk_pause() { _pause_ctl "$1" p P; }
disk_resume() { _pause_ctl "$1" r R; }

# --------------------------------------------------------------------------
# Helpers for the export

# Evaluate a Python expression over a JSON file (bound to `j`); prints the
# result as JSON (strings unquoted).  Exit status 2 if the file is bad.
json_query() {  # FILE EXPR
    python3 - "$1" "$2" <<'EOF'
import json, sys
try:
    j = json.load(open(sys.argv[1]))
except Exception as e:
    print("bad JSON in %s: %s" % (sys.argv[1], e), file=sys.stderr)
    sys.exit(2)
try:
    v = eval(sys.argv[2], {"j": j})
except Exception as e:
    print("query %r failed: %r" % (sys.argv[2], e), file=sys.stderr)
    sys.exit(2)
print(v if isinstance(v, str) else json.dumps(v))
EOF
}

# Pick a free TCP port from a range derived from our PID; checked with ss.
pick_port() {
    local base=$((20000 + ($$ * 7) % 30000)) p i
    for ((i = 0; i < 200; i++)); do
        p=$((base + i))
        # Any TCP socket on the port, not only listeners: a port a
        # killed daemon pair left in TIME-WAIT is not reused either.
        if [ -z "$(ss -Htan "sport = :$p" 2>/dev/null)" ]; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# Size argument (e.g. 128M, 1G, 4096) to bytes.
to_bytes() { numfmt --from=iec "$1"; }

# The usable size of the export as reported by `repd dump-md --json`
# (key usable-size-bytes, searched anywhere in the document).  The output
# captured by start_single_node before `up` is used; if that failed or
# lacks the key, dump-md is asked again now that the resource is up.
# Stand-in: the backing file size.
repd_usable_size() {
    if [ -n "$STANDIN" ]; then
        stat -c %s "$DISK"
        return 0
    fi
    _usable_from "$T/dump-md.json" 2>"$T/usable-pre.err" && return 0
    timeout 60 "$REPD" dump-md "$RES" --json >"$T/dump-md-up.json" 2>"$T/dump-md-up.err" </dev/null || true
    _usable_from "$T/dump-md-up.json" && return 0
    echo "before up: $(cat "$T/usable-pre.err")" >&2
    return 1
}
_usable_from() {  # FILE
    [ -s "$1" ] || { echo "repd dump-md --json produced no output ($1)" >&2; return 1; }
    python3 - "$1" <<'EOF'
import json, sys
def find(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k == "usable-size-bytes":
                return v
            r = find(v)
            if r is not None:
                return r
    elif isinstance(o, list):
        for v in o:
            r = find(v)
            if r is not None:
                return r
    return None
try:
    v = find(json.load(open(sys.argv[1])))
except ValueError as e:
    sys.exit("repd dump-md --json output is not JSON: %s" % e)
if isinstance(v, bool) or not isinstance(v, int):
    sys.exit("no integer 'usable-size-bytes' key in repd dump-md --json output")
print(v)
EOF
}

# `repd status RES --json` field of the first resource: role, disk-state
# (devices[0]) or nbd-uri.
repd_status_json() {
    timeout 30 "$REPD" status "$RES" --json >"$T/status.json" 2>"$T/status.err" </dev/null
}
repd_role()      { repd_status_json && json_query "$T/status.json" 'j[0]["role"]'; }
repd_diskstate() { repd_status_json && json_query "$T/status.json" 'j[0]["devices"][0]["disk-state"]'; }
_is_primary_uptodate() {
    repd_status_json &&
        [ "$(json_query "$T/status.json" 'j[0]["role"] + "/" + j[0]["devices"][0]["disk-state"]')" = Primary/UpToDate ]
}

# Socket accepts an NBD handshake for the export.
export_ready() { nbdinfo --size "$NBD_URI" >/dev/null 2>&1; }

# start_single_node RES SIZE
#
# Writes RES.res (peer beta is never started; `device none;` unless
# SINGLE_NODE_DEVICE names a device path), creates the backing data
# and meta-disk files, then create-md / up / primary --force, and waits
# (bounded) until the export answers and status says Primary/UpToDate.
# Sets: RES PORT DISK MD PEER_DISK NBD_SOCK NBD_URI PID_FILE LOG_FILE
start_single_node() {  # RES SIZE
    local res=$1 size=$2
    require_repd
    require_tool ss python3 nbdinfo numfmt
    [ -z "$STANDIN" ] || require_tool nbdkit

    PORT=$(pick_port) || fail "no free TCP port found"
    DISK="$T/w/alpha.img"
    MD="$T/w/alpha.md"
    PEER_DISK="$T/w/beta.img"
    NBD_SOCK="$REPD_RUN_DIR/$res.sock"
    NBD_URI="nbd+unix:///$res?socket=$NBD_SOCK"
    PID_FILE="$REPD_RUN_DIR/$res.pid"
    LOG_FILE="$REPD_RUN_DIR/$res.log"

    truncate -s "$size" "$DISK" "$PEER_DISK"
    truncate -s "${REPD_TEST_MD_SIZE:-16M}" "$MD" "$T/w/beta.md"

    cat >"$REPD_CONFIG_DIR/$res.res" <<EOF
resource $res {
  net { protocol C; }
  on alpha { device ${SINGLE_NODE_DEVICE:-none}; disk $DISK; address 127.0.0.1:$PORT; meta-disk $MD; ${SINGLE_NODE_ALPHA_ON:-} }
  on beta  { device none; disk $PEER_DISK;  address 127.0.0.2:$PORT; meta-disk $T/w/beta.md; }
}
EOF

    RES=$res      # from here on cleanup will try to bring it down

    if [ -n "$STANDIN" ]; then
        # TEST-SUITE SELF-CHECK: nbdkit serves the data file where repd would.
        # --threads=1: nbdkit 1.32.5 with several worker threads per
        # connection aborts (assertion `sock >= 0' in raw_send_socket) on
        # hostile.sh's pipelined-garbage case; one thread avoids that race.
        # setsid: like a real daemon, out of the test's process group.
        setsid nbdkit --unix "$NBD_SOCK" -P "$PID_FILE" --threads=1 \
            --filter=exportname --filter=blocksize-policy \
            file "$DISK" \
            exportname="$res" exportname-list=explicit exportname-strict=true \
            blocksize-minimum=512 blocksize-preferred=4096 blocksize-maximum=32M \
            >>"$LOG_FILE" 2>&1 </dev/null 8>&- 9>&- ||
            fail "stand-in nbdkit failed to start"
        wait_for "stand-in export $NBD_URI" 100 0.1 export_ready ||
            fail "stand-in export never became ready"
        return 0
    fi

    run_logged repd-create-md timeout 60 "$REPD" create-md "$res"
    # dump-md is read before `up` (like drbdmeta, it may refuse while the
    # resource is attached).  Failure is not fatal here; repd_usable_size
    # reports it to the tests that need it.
    timeout 60 "$REPD" dump-md "$res" --json >"$T/dump-md.json" 2>"$T/dump-md.err" </dev/null || true
    run_logged repd-up _nofds timeout 120 "$REPD" up "$res"

    [ -S "$NBD_SOCK" ] || fail "'repd up' returned 0 but $NBD_SOCK is not a socket"
    [ -s "$PID_FILE" ] || fail "'repd up' returned 0 but $PID_FILE is missing/empty"
    pid_alive "$(tr -dc '0-9' <"$PID_FILE")" || fail "'repd up' returned 0 but pid in $PID_FILE is not alive"

    run_logged repd-primary timeout 60 "$REPD" primary "$res" --force
    wait_for "$res Primary/UpToDate" 60 0.1 _is_primary_uptodate || {
        show_file "$T/status.json" 20 >&2
        show_file "$T/status.err" 20 >&2
        fail "$res did not become Primary/UpToDate after 'primary --force'"
    }
    wait_for "export $NBD_URI" 100 0.1 export_ready ||
        fail "export $NBD_URI does not answer nbdinfo"
}

# The daemon's pid (repd, or nbdkit in stand-in mode).
daemon_pid() { tr -dc '0-9' <"$PID_FILE"; }

# Fail unless the daemon is alive and serves a fresh nbdinfo of SIZE bytes.
check_daemon_serving() {  # CONTEXT [EXPECTED_SIZE]
    local ctx=$1 want=${2:-} pid got
    pid=$(daemon_pid 2>/dev/null) || true
    pid_alive "$pid" || fail "$ctx: daemon pid '${pid:-?}' is not alive"
    got=$(timeout 30 nbdinfo --size "$NBD_URI" 2>"$T/nbdinfo-check.err") || {
        show_file "$T/nbdinfo-check.err" 20 >&2
        fail "$ctx: fresh nbdinfo against $NBD_URI failed"
    }
    [ -z "$want" ] || [ "$got" = "$want" ] || fail "$ctx: nbdinfo --size says $got, expected $want"
}

# ==========================================================================
# Two nodes on one machine: alpha (127.0.0.1) and beta (127.0.0.2)
#
# One config dir, one resource file naming both nodes, one run dir per
# node ($T/run-alpha, $T/run-beta), external meta-disk files, so the data
# files compare whole.  A node instance is addressed by a HANDLE (usually
# the node name; e.g. "beta-t9" for a second configuration of node beta).
# Every instance ever defined is registered: cleanup runs `repd down` on
# each live one (in parallel), then kill -9 whatever is still alive.
#
#     start_two_nodes t0 256M          # config, create-md, up, both Connected
#     initial_sync                     # primary --force on alpha, full sync
#     expect_state alpha conn=Connected peer-role=Secondary proto=C
#     node_uri alpha                   # nbd+unix:///t0?socket=$T/run-alpha/t0.sock
#     down_node alpha; down_node beta
#
# State keys (node_state, node_is, expect_state, wait_state), from
# `repd status RES --json` [0]: role, disk (devices[0] disk-state), conn
# (connections[0] connection-state), peer-role, proto (repd-protocol),
# apif (ap-in-flight: application writes not yet done on the peer, KiB),
# repl (peer_devices[0] replication-state), peer-disk, oos (out-of-sync,
# KiB), written (devices[0] written, KiB).  A missing key reads "?".
#
# REPD_TEST_STANDIN=nbdkit (self-check of the scripts only): node_up serves
# the node's data file with `nbdkit file`; beta's data file is a hard link
# to alpha's (one shared disk, so every data comparison passes trivially);
# node_up also puts a `socat` sink on the node's replication address (for
# hostile-bytes clients); every state query succeeds without asking
# anything; verbs other than up/down are no-ops.

TWO_NODE_NET_DEFAULT='connect-int 1; ping-int 1; ping-timeout 10; timeout 30; cram-hmac-alg sha256; shared-secret "s3cret";'

declare -A NODE_NAME=() NODE_RES=() NODE_CONF=() NODE_RUN=() NODE_SINK=()
# NODE_NS[HANDLE]: a network namespace every `repd` of that node runs in (split-brain tests).
declare -A NODE_NS=()

# node_define HANDLE NODE RES CONFDIR RUNDIR
node_define() {
    local h=$1
    NODE_NAME[$h]=$2 NODE_RES[$h]=$3 NODE_CONF[$h]=$4 NODE_RUN[$h]=$5
    mkdir -p "$5"
    NODE_INSTANCES+=("$h|$2|$3|$4|$5")
}

_node_known() { [ -n "${NODE_NAME[$1]-}" ] || fail "internal: node handle '$1' not defined (node_define)"; }
node_pidfile() { _node_known "$1"; echo "${NODE_RUN[$1]}/${NODE_RES[$1]}.pid"; }
node_logfile() { _node_known "$1"; echo "${NODE_RUN[$1]}/${NODE_RES[$1]}.log"; }
node_sock()    { _node_known "$1"; echo "${NODE_RUN[$1]}/${NODE_RES[$1]}.sock"; }
node_uri()     { _node_known "$1"; echo "nbd+unix:///${NODE_RES[$1]}?socket=${NODE_RUN[$1]}/${NODE_RES[$1]}.sock"; }
node_pid()     { tr -dc '0-9' 2>/dev/null <"$(node_pidfile "$1")"; }
node_addr() {  # HANDLE -> the address of its node in the test resource files
    case "${NODE_NAME[$1]-}" in alpha) echo 127.0.0.1 ;; beta) echo 127.0.0.2 ;; *) echo 127.0.0.9 ;; esac
}

# repd_node HANDLE VERB [ARGS...]: `repd VERB RES ARGS` as that node (the
# options and the environment both name its config dir, node, run dir).
repd_node() {
    local h=$1 verb=$2 pre=()
    shift 2
    _node_known "$h"
    [ -z "${NODE_NS[$h]-}" ] || pre=(ip netns exec "${NODE_NS[$h]}")
    REPD_CONFIG_DIR=${NODE_CONF[$h]} REPD_NODE=${NODE_NAME[$h]} REPD_RUN_DIR=${NODE_RUN[$h]} \
        "${pre[@]}" timeout "${REPD_VERB_TIMEOUT:-120}" "$REPD" "$verb" "${NODE_RES[$h]}" "$@" \
        --config-dir "${NODE_CONF[$h]}" --node "${NODE_NAME[$h]}" --run-dir "${NODE_RUN[$h]}"
}

# write_two_node_res FILE RES PORT DIR [NET...]
# One-node tests that rewrite alpha's on section between ups (exposure.sh,
# nbd-tls.sh): alpha_files picks PORT and NBD_PORT (PORT + 1, free) and
# creates 64 MiB disks and their metadata in $T/w; write_alpha_res EXTRA writes the resource r0 to
# $REPD_CONFIG_DIR, disks in $T/w, replication on $PORT, EXTRA at the end of
# alpha's section; repd_alpha VERB [ARGS...] runs a verb on alpha with the run
# dir $RUN; down_alpha brings it down if it is up (the general cleanup sweeps
# what a failure leaves).
alpha_files() {
    PORT=$(pick_port) || fail "no free TCP port found"
    NBD_PORT=$((PORT + 1))
    ! ss -ltn | grep -q ":$NBD_PORT " || fail "port $NBD_PORT is taken"
    mkdir -p "$T/w"
    truncate -s 64M "$T/w/alpha.img" "$T/w/beta.img"
    truncate -s 16M "$T/w/alpha.md" "$T/w/beta.md"
}
write_alpha_res() {
    cat >"$REPD_CONFIG_DIR/r0.res" <<EOF
resource r0 {
  net { protocol C; }
  on alpha { device none; disk $T/w/alpha.img; address 127.0.0.1:$PORT; meta-disk $T/w/alpha.md; $1 }
  on beta  { device none; disk $T/w/beta.img;  address 127.0.0.2:$PORT; meta-disk $T/w/beta.md; }
}
EOF
}
repd_alpha() {
    _nofds timeout 60 "$REPD" "$1" r0 "${@:2}" --node alpha --run-dir "$RUN" --config-dir "$REPD_CONFIG_DIR" </dev/null
}
down_alpha() { repd_alpha down >/dev/null 2>&1 || true; }

# The test resource: alpha on 127.0.0.1:PORT, beta on 127.0.0.2:PORT, data
# and meta-disk files DIR/{alpha,beta}.{img,md}.  NET is the body of the
# net section (default: protocol C plus TWO_NODE_NET_DEFAULT).  TWO_NODE_DISK,
# when set, is the body of a disk section (resync-rate, c-*, al-extents);
# TWO_NODE_EXTRA is more text inside the resource (e.g. a handlers section);
# TWO_NODE_ALPHA_ADDR / TWO_NODE_BETA_ADDR replace 127.0.0.1 / 127.0.0.2.
# Both nodes run on this one machine, so by default neither gets a block
# device (`device none;`: export only); TWO_NODE_ALPHA_DEVICE /
# TWO_NODE_BETA_DEVICE give one a device path (distinct ones).
write_two_node_res() {
    local file=$1 res=$2 port=$3 dir=$4 net
    shift 4
    net=${*:-protocol C; $TWO_NODE_NET_DEFAULT}
    local more=""
    [ -z "${TWO_NODE_DISK:-}" ] || more+=$'\n'"  disk { $TWO_NODE_DISK }"
    [ -z "${TWO_NODE_EXTRA:-}" ] || more+=$'\n'"  $TWO_NODE_EXTRA"
    cat >"$file" <<EOF
resource $res {
  net { $net }$more
  on alpha { device ${TWO_NODE_ALPHA_DEVICE:-none}; disk ${TWO_NODE_ALPHA_DISK:-$dir/alpha.img}; address ${TWO_NODE_ALPHA_ADDR:-127.0.0.1}:$port; meta-disk $dir/alpha.md; ${TWO_NODE_ALPHA_ON:-} }
  on beta  { device ${TWO_NODE_BETA_DEVICE:-none}; disk ${TWO_NODE_BETA_DISK:-$dir/beta.img};  address ${TWO_NODE_BETA_ADDR:-127.0.0.2}:$port; meta-disk $dir/beta.md; ${TWO_NODE_BETA_ON:-} }
}
EOF
}

# two_node_setup RES SIZE [--tag TAG] [--protocol A|B|C] [--net "EXTRA;"]
#
# Picks a free port, creates the data and meta-disk files and the resource
# file $REPD_CONFIG_DIR/RES.res, and defines the handles alpha and beta.
# --tag TAG gives a fresh set (files in $T/w/TAG, run dirs
# $T/run-NODE-TAG) for a test that brings a pair up several times.
# Sets: PORT TWO_NODE_SIZE ALPHA_DISK BETA_DISK ALPHA_URI BETA_URI
#       ALPHA_SOCK BETA_SOCK
two_node_setup() {
    local res=$1 size=$2 tag="" proto=C extra="" dir sfx
    shift 2
    while [ "$#" -gt 0 ]; do
        case "$1" in
            --tag) tag=$2; shift 2 ;;
            --protocol) proto=$2; shift 2 ;;
            --net) extra=$2; shift 2 ;;
            *) fail "internal: two_node_setup: unknown option '$1'" ;;
        esac
    done
    require_repd
    require_tool ss python3 nbdinfo numfmt timeout
    [ -z "$STANDIN" ] || require_tool nbdkit socat

    PORT=$(pick_port) || fail "no free TCP port found"
    TWO_NODE_SIZE=$(to_bytes "$size")
    dir="$T/w${tag:+/$tag}"
    sfx=${tag:+-$tag}
    mkdir -p "$dir"
    ALPHA_DISK="$dir/alpha.img"
    BETA_DISK="$dir/beta.img"
    truncate -s "$size" "$ALPHA_DISK" "$BETA_DISK"
    truncate -s "${REPD_TEST_MD_SIZE:-16M}" "$dir/alpha.md" "$dir/beta.md"
    if [ -n "$STANDIN" ]; then
        ln -f "$ALPHA_DISK" "$BETA_DISK"      # stand-in: one shared disk
    fi
    write_two_node_res "$REPD_CONFIG_DIR/$res.res" "$res" "$PORT" "$dir" \
        "protocol $proto; $TWO_NODE_NET_DEFAULT $extra"

    node_define alpha alpha "$res" "$REPD_CONFIG_DIR" "$T/run-alpha$sfx"
    node_define beta beta "$res" "$REPD_CONFIG_DIR" "$T/run-beta$sfx"
    # shellcheck disable=SC2034  # for the tests
    ALPHA_URI=$(node_uri alpha) BETA_URI=$(node_uri beta)
    # shellcheck disable=SC2034  # for the tests
    ALPHA_SOCK=$(node_sock alpha) BETA_SOCK=$(node_sock beta)
}

# node_create_md HANDLE: `repd create-md`, and keep `dump-md --json`.
node_create_md() {
    local h=$1
    [ -z "$STANDIN" ] || return 0
    run_logged "create-md-$h" repd_node "$h" create-md
    repd_node "$h" dump-md --json >"$T/dump-md-$h.json" 2>"$T/dump-md-$h.err" </dev/null || true
}

# node_up HANDLE: `repd up`; fails unless it leaves a socket and a live pid.
node_up() {
    local h=$1 sock pidfile log
    sock=$(node_sock "$h") pidfile=$(node_pidfile "$h") log=$(node_logfile "$h")
    if [ -n "$STANDIN" ]; then
        # TEST-SUITE SELF-CHECK: nbdkit serves the data file where repd would.
        setsid nbdkit --unix "$sock" -P "$pidfile" \
            --filter=exportname file "$(_standin_disk "$h")" \
            exportname="${NODE_RES[$h]}" exportname-list=explicit \
            >>"$log" 2>&1 </dev/null 8>&- 9>&- || fail "stand-in nbdkit for $h failed to start"
        socat -u "TCP-LISTEN:$PORT,bind=$(node_addr "$h"),reuseaddr,fork" /dev/null \
            >>"$log" 2>&1 </dev/null 8>&- 9>&- &
        NODE_SINK[$h]=$!
        add_bg_pid "$!"
        wait_for "stand-in export of $h" 100 0.1 nbdinfo --size "$(node_uri "$h")" ||
            fail "stand-in export of $h never became ready"
        return 0
    fi
    run_logged "up-$h" _nofds repd_node "$h" up
    [ -S "$sock" ] || fail "'repd up' on $h returned 0 but $sock is not a socket"
    [ -s "$pidfile" ] || fail "'repd up' on $h returned 0 but $pidfile is missing/empty"
    pid_alive "$(node_pid "$h")" || fail "'repd up' on $h returned 0 but pid in $pidfile is not alive"
}
_standin_disk() {  # HANDLE -> the data file named in its node's section
    awk -v n="${NODE_NAME[$1]}" '$1 == "on" && $2 == n {
        for (i = 3; i <= NF; i++) if ($i == "disk") { d = $(i + 1); sub(/;$/, "", d); print d; exit } }' \
        "${NODE_CONF[$1]}/${NODE_RES[$1]}.res"
}

# node_state HANDLE: one line "role=... disk=... conn=... ..." (see above);
# the JSON stays in $T/status-HANDLE.json.  Stand-in: "standin".
node_state() {
    local h=$1
    if [ -n "$STANDIN" ]; then echo standin; return 0; fi
    repd_node "$h" status --json >"$T/status-$h.json" 2>"$T/status-$h.err" </dev/null || return 1
    python3 - "$T/status-$h.json" <<'EOF'
import json, sys
try:
    r = json.load(open(sys.argv[1]))[0]
except Exception as e:
    sys.exit("bad status JSON: %s" % e)
def c():
    return r["connections"][0]
def pd():
    return c()["peer_devices"][0]
keys = [
    ("role", lambda: r["role"]),
    ("disk", lambda: r["devices"][0]["disk-state"]),
    ("conn", lambda: c()["connection-state"]),
    ("peer-role", lambda: c()["peer-role"]),
    ("proto", lambda: c()["repd-protocol"]),
    ("apif", lambda: c()["ap-in-flight"]),
    ("repl", lambda: pd()["replication-state"]),
    ("peer-disk", lambda: pd()["peer-disk-state"]),
    ("oos", lambda: pd()["out-of-sync"]),
    ("written", lambda: r["devices"][0]["written"]),
]
out = []
for k, f in keys:
    try:
        v = f()
    except Exception:
        v = "?"
    out.append("%s=%s" % (k, str(v).replace(" ", "_")))
print(" ".join(out))
EOF
}

# node_is HANDLE KEY=VALUE|KEY!=VALUE...: true if the current state matches
# all of them.  Stand-in: always true.
node_is() {
    local h=$1 kv line
    shift
    [ -z "$STANDIN" ] || return 0
    line=" $(node_state "$h") " || return 1
    for kv in "$@"; do
        case "$kv" in
            *!=*) [[ $line == *" ${kv%%!=*}="* && $line != *" ${kv%%!=*}=${kv#*!=} "* ]] || return 1 ;;
            *)    [[ $line == *" $kv "* ]] || return 1 ;;
        esac
    done
}

# node_value HANDLE KEY: one value of the current state ("?" if missing).
node_value() {
    local line kv
    line=$(node_state "$1") || return 1
    for kv in $line; do
        [ "${kv%%=*}" != "$2" ] || { echo "${kv#*=}"; return 0; }
    done
    echo "?"
}

# Print both nodes' state lines (for failure messages).
_show_states() {
    local h
    for h in "$@"; do
        echo "    $h: $(node_state "$h" 2>&1 | tr '\n' ' ')"
    done >&2
}

# expect_state HANDLE KEY=VALUE...: fail (with the full state) unless it matches.
expect_state() {
    local h=$1
    shift
    node_is "$h" "$@" && return 0
    echo "expected $h: $*" >&2
    _show_states "$h"
    show_file "$T/status-$h.json" 60 >&2
    fail "$h is not in the expected state ($*)"
}

# wait_state SECONDS HANDLE KEY=VALUE... (bounded): wait until it matches.
wait_state() {
    local secs=$1 h=$2
    shift 2
    wait_until "$h: $*" "$secs" 0.1 node_is "$h" "$@" || {
        _show_states alpha beta "$h" 2>/dev/null
        fail "$h did not reach ($*) within ${secs}s"
    }
}

_both_connected() { node_is alpha conn=Connected && node_is beta conn=Connected; }

# start_two_nodes RES SIZE [two_node_setup options]: setup, create-md on
# both, up on both, then (bounded) both Connected.
start_two_nodes() {
    two_node_setup "$@"
    node_create_md alpha
    node_create_md beta
    node_up alpha
    node_up beta
    checkpoint nodes-up
    wait_until "alpha and beta Connected" "${REPD_TEST_CONNECT_TIMEOUT:-30}" 0.1 _both_connected || {
        _show_states alpha beta
        fail "alpha and beta did not both reach Connected within ${REPD_TEST_CONNECT_TIMEOUT:-30}s"
    }
}

# initial_sync: `primary --force` on alpha, then (bounded: 60 s + 1 s per
# 8 MiB, or REPD_TEST_SYNC_TIMEOUT) alpha Primary/UpToDate, Established with
# an UpToDate peer, and beta UpToDate.
_sync_done() {
    node_is beta disk=UpToDate &&
        node_is alpha role=Primary disk=UpToDate repl=Established peer-disk=UpToDate
}
initial_sync() {
    local secs=${REPD_TEST_SYNC_TIMEOUT:-$((60 + TWO_NODE_SIZE / 8388608))}
    [ -z "$STANDIN" ] || return 0
    run_logged primary-force-alpha repd_node alpha primary --force
    wait_until "initial sync alpha -> beta" "$secs" 0.25 _sync_done || {
        _show_states alpha beta
        fail "initial sync alpha -> beta did not finish within ${secs}s"
    }
}

# promote HANDLE: `repd primary` (no --force), then (bounded) role Primary.
promote() {
    local h=$1
    [ -z "$STANDIN" ] || return 0
    run_logged "primary-$h" repd_node "$h" primary
    wait_state 30 "$h" role=Primary
}

# down_node HANDLE: `repd down`, then (bounded) its pid exits.
down_node() {
    local h=$1 pid
    pid=$(node_pid "$h") || true
    if [ -n "$STANDIN" ]; then
        [ -n "$pid" ] && pid_is "$pid" nbdkit && kill_pid "$pid"
        [ -z "${NODE_SINK[$h]-}" ] || kill_pid "${NODE_SINK[$h]}"
        return 0
    fi
    run_logged "down-$h" repd_node "$h" down
    [ -z "$pid" ] || wait_for "$h pid $pid to exit after down" 300 0.1 pid_dead "$pid" ||
        fail "$h: daemon pid $pid still alive 30s after 'repd down'"
}

# signal_nodes SIGNAL HANDLE...: send SIGNAL to all the daemons at once
# (one `kill` command); for KILL, wait (bounded) until they are dead.
signal_nodes() {
    local sig=$1 h pid pids=()
    shift
    for h in "$@"; do
        pid=$(node_pid "$h") || true
        pid_alive "$pid" || fail "signal_nodes: $h daemon (pid '${pid:-?}') is not alive"
        pids+=("$pid")
    done
    kill -s "$sig" "${pids[@]}"
    if [ "$sig" = KILL ] || [ "$sig" = 9 ]; then
        for pid in "${pids[@]}"; do
            wait_for "pid $pid to die" 100 0.1 pid_dead "$pid" || fail "pid $pid survived SIG$sig"
        done
    fi
    return 0
}

# node_serving HANDLE CONTEXT: fail unless the daemon is alive and serves a
# fresh nbdinfo of the pair's size.
node_serving() {
    local h=$1 ctx=$2 pid got
    pid=$(node_pid "$h") || true
    pid_alive "$pid" || fail "$ctx: $h daemon pid '${pid:-?}' is not alive"
    got=$(timeout 30 nbdinfo --size "$(node_uri "$h")" 2>"$T/nbdinfo-$h.err") || {
        show_file "$T/nbdinfo-$h.err" 20 >&2
        fail "$ctx: fresh nbdinfo against $h's export failed"
    }
    [ -z "${TWO_NODE_SIZE:-}" ] || [ "$got" = "$TWO_NODE_SIZE" ] ||
        fail "$ctx: nbdinfo --size on $h says $got, expected $TWO_NODE_SIZE"
}

# Bytes of HANDLE's log so far / its log from byte OFFSET on.
node_log_size()  { stat -c %s "$(node_logfile "$1")" 2>/dev/null || echo 0; }
node_log_since() { tail -c "+$(($2 + 1))" "$(node_logfile "$1")" 2>/dev/null || true; }

# A python3 that can `import nbd` (libnbd's bindings; pyenv's python3 on
# PATH may not have them).  Sets PY_NBD, or skips.
require_python_nbd() {
    local p
    for p in python3 /usr/bin/python3; do
        if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import nbd' >/dev/null 2>&1; then
            # shellcheck disable=SC2034  # for the tests
            PY_NBD=$(command -v "$p")
            return 0
        fi
    done
    skip "no python3 with libnbd bindings (python3-libnbd)"
}

# ---- fio ------------------------------------------------------------------

# fio_start NAME TIMEOUT URI [fio options...]: fio's nbd engine in the
# background (in $T: fio drops verify state files there), JSON output in
# $T/NAME.json, text in $T/NAME.out.  Sets FIO_PID; fio_wait NAME returns
# its exit status (bounded by TIMEOUT seconds of `timeout`).
declare -A FIO_PIDS=()
fio_start() {
    local name=$1 tmo=$2 uri=$3
    shift 3
    (cd "$T" && exec timeout -k 10 "$tmo" fio --name="$name" --ioengine=nbd --uri="$uri" \
        --output-format=json --output="$T/$name.json" "$@") \
        >"$T/$name.out" 2>&1 </dev/null 8>&- 9>&- &
    FIO_PID=$!
    FIO_PIDS[$name]=$FIO_PID
    add_bg_pid "$FIO_PID"
}
fio_wait() {  # NAME
    local rc=0
    wait "${FIO_PIDS[$1]}" || rc=$?
    _unregister BG_PIDS "${FIO_PIDS[$1]}"
    return "$rc"
}
# fio_run NAME TIMEOUT URI [fio options...]: foreground; returns fio's status.
fio_run() { fio_start "$@"; fio_wait "$1"; }

# check_fio NAME RC [write=BYTES] [read=BYTES] [max_clat_s=SECONDS]
# Fails unless fio exited 0, every job has error 0, no verify error is
# reported, and the optional byte counts / worst completion latency hold.
check_fio() {
    local name=$1 rc=$2
    shift 2
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        show_file "$T/$name.out" 40 >&2
        fail "fio job $name did not finish in time (timeout, exit $rc): stalled?"
    fi
    python3 - "$T/$name.json" "$rc" "$@" >"$T/$name.check" 2>&1 <<'EOF' || {
import json, sys
path, rc = sys.argv[1], int(sys.argv[2])
want = dict(a.split("=", 1) for a in sys.argv[3:])
try:
    text = open(path).read()
    j = json.loads(text[text.index("{"):])     # fio may print notes first
except Exception as e:
    sys.exit("fio exit %d, no usable JSON output (%s)" % (rc, e))
errs = []
if rc != 0:
    errs.append("fio exit status %d" % rc)
if not j.get("jobs"):
    errs.append("no jobs in fio output")
for job in j.get("jobs", []):
    n = job.get("jobname")
    if job.get("error", 0) != 0:
        errs.append("job %s: error %d" % (n, job["error"]))
    w, r = job["write"]["io_bytes"], job["read"]["io_bytes"]
    if "write" in want and w != int(want["write"]):
        errs.append("job %s wrote %d bytes, expected %s" % (n, w, want["write"]))
    if "read" in want and r != int(want["read"]):
        errs.append("job %s read (verified) %d bytes, expected %s" % (n, r, want["read"]))
    if "max_clat_s" in want:
        worst = max(job[d].get("clat_ns", {}).get("max", 0) for d in ("read", "write")) / 1e9
        if worst > float(want["max_clat_s"]):
            errs.append("job %s: worst completion latency %.1fs > %ss (stall)"
                        % (n, worst, want["max_clat_s"]))
    print("job %s: wrote %d, read %d bytes, %d write IOs, worst clat %.3fs"
          % (n, w, r, job["write"].get("total_ios", 0),
             max(job[d].get("clat_ns", {}).get("max", 0) for d in ("read", "write")) / 1e9))
if errs:
    sys.exit("; ".join(errs))
EOF
        show_file "$T/$name.out" 40 >&2
        show_file "$T/$name.check" 20 >&2
        fail "fio job $name"
    }
    if grep -Eiq 'verify: bad|bad magic|crc32c.*(mismatch|bad)' "$T/$name.out" "$T/$name.json"; then
        show_file "$T/$name.out" 40 >&2
        fail "fio job $name reported a verify error"
    fi
}

# ---- two-node cleanup and diagnostics ---------------------------------------

# Every registered node instance: `repd down` on all live ones at once
# (bounded), then kill -9 whatever the pid files still name.  A stopped
# (SIGSTOP) daemon is killed directly: `down` could not reach it.
nodes_cleanup() {
    local e h node res conf run pidf pid st downs=() pids=()
    for e in "${NODE_INSTANCES[@]}"; do
        IFS='|' read -r h node res conf run <<<"$e"
        pidf="$run/$res.pid"
        pid=$(tr -dc '0-9' 2>/dev/null <"$pidf") || pid=""
        pid_alive "$pid" || continue
        if [ -n "$STANDIN" ]; then
            pid_is "$pid" nbdkit && kill_pid "$pid"
            continue
        fi
        pid_is "$pid" repd || pid_is "$pid" "$(basename "$REPD")" || continue
        pids+=("$pid")
        st=$(awk '/^State:/ {print $2; exit}' "/proc/$pid/status" 2>/dev/null) || st=""
        if [ "$st" = T ] || [ "$st" = t ]; then
            kill -KILL "$pid" 2>/dev/null || true
            continue
        fi
        REPD_CONFIG_DIR=$conf REPD_NODE=$node REPD_RUN_DIR=$run \
            timeout 30 "$REPD" down "$res" --config-dir "$conf" --node "$node" --run-dir "$run" \
            >"$T/cleanup-down-$h.out" 2>&1 </dev/null 8>&- 9>&- &
        downs+=("$!")
    done
    for pid in "${downs[@]}"; do wait "$pid" 2>/dev/null; done
    for pid in "${pids[@]}"; do
        wait_for "repd pid $pid to exit after down" 50 0.1 pid_dead "$pid" 2>/dev/null || {
            echo "NOTE: repd pid $pid still alive after 'repd down'; kill -9" >&2
            kill -KILL "$pid" 2>/dev/null || true
            wait_for "repd pid $pid to die" 50 0.1 pid_dead "$pid" || true
        }
    done
    return 0
}

_dump_node_diagnostics() {
    local e h node res conf run pid
    for e in "${NODE_INSTANCES[@]}"; do
        IFS='|' read -r h node res conf run <<<"$e"
        [ "${NODE_RUN[$h]-}" = "$run" ] || continue        # only the current instance of each handle
        echo "    === $h (node $node, resource $res, run dir $run)"
        if [ ! -e "$run/$res.pid" ] && [ ! -e "$run/$res.log" ]; then
            echo "    (never started)"
            continue
        fi
        pid=$(tr -dc '0-9' 2>/dev/null <"$run/$res.pid") || pid=""
        if pid_alive "$pid"; then
            echo "    daemon pid $pid is alive ($(awk '/^State:/ {print $2 $3; exit}' "/proc/$pid/status" 2>/dev/null))"
            if [ -z "$STANDIN" ] && [ "$(awk '/^State:/ {print $2; exit}' "/proc/$pid/status" 2>/dev/null)" != T ]; then
                echo "    state: $(REPD_VERB_TIMEOUT=10 node_state "$h" 2>&1 | head -n 1)"
                REPD_CONFIG_DIR=$conf REPD_NODE=$node REPD_RUN_DIR=$run timeout 10 "$REPD" status "$res" \
                    --config-dir "$conf" --node "$node" --run-dir "$run" 2>&1 </dev/null | sed 's/^/    | /' || true
            fi
        else
            echo "    daemon pid '${pid:-?}' is NOT alive"
        fi
        show_file "$run/$res.log" 40
    done
}

# ==========================================================================
# repd inside qemu guests of ../shared/vm (tests/guests-*.sh)

# vm_harness [--cluster]: finds the harness (../shared/vm beside the
# checkout, or beside the main checkout of a git worktree; REPD_VM_HARNESS
# names it) and builds its kernel and initramfs (cached in REPD_VM_WORKDIR,
# default /tmp/vmwork; bounded by REPD_VM_BUILD_TIMEOUT, default 900 s).
# Sets VMDIR and WORKDIR.
vm_harness() {
    local top common d rc=0
    [ "${REPD_SKIP_VM:-0}" != 1 ] || skip "REPD_SKIP_VM=1"
    top=$(git -C "$TESTS_DIR" rev-parse --show-toplevel 2>/dev/null) || top=$(dirname "$TESTS_DIR")
    common=$(git -C "$TESTS_DIR" rev-parse --path-format=absolute --git-common-dir 2>/dev/null) || common=""
    VMDIR=${REPD_VM_HARNESS:-}
    # /work/shared/vm: a clone made elsewhere (e.g. /tmp/ci-check) on the development machine.
    for d in "$top/../shared/vm" ${common:+"$(dirname "$common")/../shared/vm"} /work/shared/vm; do
        [ -n "$VMDIR" ] || { [ -r "$d/run-guest.sh" ] && VMDIR=$d; }
    done
    [ -n "$VMDIR" ] && [ -r "$VMDIR/run-guest.sh" ] && [ -r "$VMDIR/build-initramfs.sh" ] ||
        missing "no VM harness (../shared/vm beside the repository, or REPD_VM_HARNESS)"
    VMDIR=$(cd "$VMDIR" && pwd)
    WORKDIR=${REPD_VM_WORKDIR:-/tmp/vmwork}
    REPD_VM_WORKDIR=$WORKDIR timeout -k 20 "${REPD_VM_BUILD_TIMEOUT:-900}" bash "$VMDIR/build-initramfs.sh" "$@" \
        >"$T/vm-build.out" 2>&1 </dev/null 8>&- 9>&- || rc=$?
    if [ "$rc" -ne 0 ]; then
        show_file "$T/vm-build.out" 15 >&2
        missing "the VM harness could not be built (build-initramfs.sh $* exit $rc)"
    fi
    require_tool qemu-system-x86_64
}

# qemu_of_session SID: the qemu process(es) of a guest started with setsid (its power cord).
qemu_of_session() {
    local p
    for p in $(_session_pids "$1"); do [ "$(cat "/proc/$p/comm" 2>/dev/null)" = qemu-system-x86 ] && echo "$p"; done
    return 0
}

# guest_disks_identical IMG1 IMG2 MARKER: after the guests powered off, the two virtio disks
# (repd r0 with internal metadata, as the guest scenarios set them up) have the same usable size
# and identical data areas, and the run's MARKER is on them. Needs $T/files/repd. Sets GUEST_USABLE.
guest_disks_identical() {
    local n usable
    mkdir -p "$T/check"
    cat >"$T/check/r0.res" <<EOF
resource r0 {
  on node1 { device none; disk $1; meta-disk internal; address 127.0.0.1:1; }
  on node2 { device none; disk $2; meta-disk internal; address 127.0.0.2:1; }
}
EOF
    for n in 1 2; do
        "$T/files/repd" dump-md r0 --json --config-dir "$T/check" --node "node$n" >"$T/dump-md-node$n.json" 2>"$T/dump-md-node$n.err" ||
            { show_file "$T/dump-md-node$n.err" >&2; fail "repd dump-md of node$n's disk failed"; }
    done
    usable=$(_usable_from "$T/dump-md-node1.json") || fail "no usable-size-bytes in node1's metadata"
    [ "$(_usable_from "$T/dump-md-node2.json")" = "$usable" ] || fail "the two disks' usable sizes differ"
    if ! cmp -n "$usable" "$1" "$2" >"$T/cmp.out" 2>&1; then
        show_file "$T/cmp.out" 5 >&2
        fail "after down in both guests the data areas ($usable bytes) of $(basename "$1") and $(basename "$2") differ"
    fi
    grep -aq "$3" "$1" || fail "the marker written in the guests is not on $(basename "$1")"
    GUEST_USABLE=$usable
}

# guest_repd_files: a repd that runs without the Swift toolchain, for the
# guests: REPD_STATIC, or `swift build -c release --static-swift-stdlib`
# into <top>/.build-static (bounded by REPD_STATIC_BUILD_TIMEOUT, default
# 1800 s).  Stripped into $T/files/repd, with the shared libraries the
# guest's initramfs lacks (libstdc++, libgcc_s); the guest runs it with
# LD_LIBRARY_PATH=/data.  Sets GUEST_FILES (-f options for run-guest.sh).
guest_repd_files() {
    local top static rc=0 lib
    require_tool strip ldd
    top=$(git -C "$TESTS_DIR" rev-parse --show-toplevel 2>/dev/null) || top=$(dirname "$TESTS_DIR")
    static=${REPD_STATIC:-}
    if [ -z "$static" ]; then
        static="$top/.build-static/release/repd"
        command -v swift >/dev/null 2>&1 || PATH=/opt/swift/usr/bin:$PATH
        if command -v swift >/dev/null 2>&1; then
            (cd "$top" && exec timeout -k 20 "${REPD_STATIC_BUILD_TIMEOUT:-1800}" nice -n 10 \
                swift build -c release --static-swift-stdlib --scratch-path "$top/.build-static") \
                >"$T/static-build.out" 2>&1 </dev/null 8>&- 9>&- || rc=$?
            [ "$rc" -eq 0 ] || { show_file "$T/static-build.out" 20 >&2; fail "swift build -c release --static-swift-stdlib failed (exit $rc)"; }
        elif [ ! -x "$static" ]; then
            missing "no Swift toolchain to build a static repd, and REPD_STATIC is not set"
        fi
    fi
    [ -x "$static" ] || fail "no static repd at $static"
    if ldd "$static" 2>/dev/null | grep -q 'libswift'; then
        fail "$static links the Swift runtime dynamically; build it with --static-swift-stdlib"
    fi
    mkdir -p "$T/files"
    strip -o "$T/files/repd" "$static"
    for lib in $(ldd "$T/files/repd" | grep -oE '/[^ ]+\.so[^ ]*'); do
        [ -e "$WORKDIR/initramfs-root$lib" ] || [ -e "$WORKDIR/initramfs-root/lib/x86_64-linux-gnu/$(basename "$lib")" ] ||
            cp -L "$lib" "$T/files/"
    done
    GUEST_FILES=()
    for lib in "$T"/files/*; do GUEST_FILES+=(-f "$lib"); done
    pass "static repd $(du -h "$T/files/repd" | cut -f1) stripped; into the guests with: $(cd "$T/files" && ls | tr '\n' ' ')"
}
