# shellcheck shell=bash
# tests/lib.sh - helpers sourced by every tests/*.sh integration test.
#
# Modelled on nbdkit's tests/functions.sh: one script per behaviour,
# exit 0 = pass, 1 = fail, 77 = skip, and cleanup that always runs (EXIT
# trap), even when the test fails half way through.
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

skip() {
    echo "SKIP: $TEST_NAME: $*" >&8
    _REPORTED=1
    exit 77
}

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

require_tool() {  # TOOL...
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || skip "required tool '$t' not found"
    done
}

require_root() {
    [ "$(id -u)" -eq 0 ] || skip "must be run as root"
}

require_dev() {  # /dev/NODE...
    local d
    for d in "$@"; do
        [ -e "$d" ] || skip "$d not available"
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
MOUNTS=()        # mounted filesystems (umount)
VGS=()           # "VG DEVICE" volume groups (vgchange -an, vgremove)
PVS=()           # PV devices (pvremove)
LOOPS=()         # loop devices (losetup -d)
FUSE_MNTS=()     # "MOUNTPOINT PID" nbdfuse mounts (fusermount3 -u)
RES=""           # resource started by start_single_node

add_bg_pid()  { BG_PIDS+=("$1"); }
add_mount()   { MOUNTS+=("$1"); }
add_vg()      { VGS+=("$1 $2"); }
add_pv()      { PVS+=("$1"); }
add_loop()    { LOOPS+=("$1"); }
add_fuse()    { FUSE_MNTS+=("$1 ${2:-}"); }

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

# Last resort: any repd process whose environment carries THIS test's
# REPD_RUN_DIR (e.g. `repd up` failed after forking, so no pid file) is
# ours; kill -9 it.
_sweep_daemons() {
    local d p exe want
    want=$(basename "$REPD")
    for d in /proc/[0-9]*; do
        p=${d#/proc/}
        [ "$p" != "$$" ] || continue
        exe=$(tr '\0' '\n' <"$d/cmdline" 2>/dev/null | head -n 1) || continue
        case "$(basename -- "${exe:-none}")" in repd|"$want") ;; *) continue ;; esac
        tr '\0' '\n' <"$d/environ" 2>/dev/null | grep -qxF "REPD_RUN_DIR=$REPD_RUN_DIR" || continue
        pid_alive "$p" || continue
        echo "NOTE: killing leftover repd pid $p ($exe) of this test" >&2
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

    local p m e vg dev mnt pid i
    for p in "${BG_PIDS[@]}"; do kill_pid "$p"; done
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
        if [ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ]; then
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
# Writes RES.res (peer beta is never started), creates the backing data
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
  on alpha { device /dev/repd0; disk $DISK; address 127.0.0.1:$PORT; meta-disk $MD; }
  on beta  { device /dev/repd0; disk $PEER_DISK;  address 127.0.0.2:$PORT; meta-disk $T/w/beta.md; }
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
