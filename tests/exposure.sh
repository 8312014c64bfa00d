#!/usr/bin/env bash
# Who can reach a resource (issue 18, part 3):
#  - with `umask 000` at `repd up`, the run dir it creates is 0700, the control
#    socket and the NBD unix socket 0600, owned by root; a non-root user
#    (setpriv to nobody) cannot use the NBD socket;
#  - `nbd-socket-group NAME;`: the NBD socket is 0660 with that group, the run
#    dir gets search permission, and a non-root user in the group reads the
#    export with nbdinfo while one outside it is refused; an unknown group
#    makes `up` fail with the reason;
#  - `nbd-address 0.0.0.0:PORT` without `nbd-insecure yes;`: `up` refuses with
#    file:line and the risk explained, and leaves nothing running; with it, the
#    export answers on the TCP port.
# run-all-timeout: 120
source "$(dirname "$0")/lib.sh"

[ -z "$STANDIN" ] || skip "needs repd"
require_root
require_repd
require_tool nbdinfo setpriv stat ss
id nobody >/dev/null 2>&1 || missing "no user nobody"
GROUP=disk
getent group "$GROUP" >/dev/null || missing "no group $GROUP"

alpha_files
mode() { stat -c %a "$1"; }

write_alpha_res ""
RUN="$T/run-md"
run_logged create-md repd_alpha create-md

# ---- root only, whatever the umask ------------------------------------------------------
RUN="$T/run-fresh/r"
( umask 000; repd_alpha up ) >"$T/up1.out" 2>&1 || { cat "$T/up1.out" >&2; fail "repd up with umask 000 failed"; }
[ "$(mode "$RUN")" = 700 ] || fail "run dir created with mode $(mode "$RUN"), expected 700"
[ "$(mode "$RUN/r0.ctl")" = 600 ] || fail "control socket mode $(mode "$RUN/r0.ctl"), expected 600"
[ "$(mode "$RUN/r0.sock")" = 600 ] || fail "NBD socket mode $(mode "$RUN/r0.sock"), expected 600"
[ "$(stat -c %U "$RUN/r0.sock")" = root ] || fail "NBD socket owned by $(stat -c %U "$RUN/r0.sock")"
for f in "$RUN"/*; do
    m=$(mode "$f")
    [ $((8#$m & 8#022)) = 0 ] || fail "$f is writable by group or others (mode $m) after umask 000"
done
nbdinfo --size "nbd+unix:///r0?socket=$RUN/r0.sock" >/dev/null || fail "root cannot read the export"
if setpriv --reuid nobody --regid nogroup --clear-groups nbdinfo --size "nbd+unix:///r0?socket=$RUN/r0.sock" >"$T/nobody1.out" 2>&1; then
    fail "user nobody read the export through a root-only socket"
fi
down_alpha
pass "umask 000: run dir 700, control and NBD sockets 600 (root), nothing group- or world-writable; nobody refused: $(head -1 "$T/nobody1.out")"

# ---- a group for the NBD socket -----------------------------------------------------------
# The test's temp dir is 0700: let others pass through it to reach the run dir (as /run is).
chmod 711 "$T"
mkdir -m 711 "$T/run-group"
RUN="$T/run-group/r"
write_alpha_res "nbd-socket-group $GROUP;"
( umask 000; repd_alpha up ) >"$T/up2.out" 2>&1 || { cat "$T/up2.out" >&2; fail "repd up with nbd-socket-group failed"; }
[ "$(mode "$RUN/r0.sock")" = 660 ] || fail "NBD socket mode $(mode "$RUN/r0.sock") with nbd-socket-group, expected 660"
[ "$(stat -c %G "$RUN/r0.sock")" = "$GROUP" ] || fail "NBD socket group $(stat -c %G "$RUN/r0.sock"), expected $GROUP"
[ "$(mode "$RUN/r0.ctl")" = 600 ] || fail "control socket mode $(mode "$RUN/r0.ctl") with nbd-socket-group, expected 600"
[ "$(mode "$RUN")" = 711 ] || fail "run dir mode $(mode "$RUN") with nbd-socket-group, expected 711"
size=$(setpriv --reuid nobody --regid nogroup --groups "$GROUP" nbdinfo --size "nbd+unix:///r0?socket=$RUN/r0.sock" 2>"$T/member.err") ||
    { cat "$T/member.err" >&2; fail "a member of $GROUP cannot read the export"; }
if setpriv --reuid nobody --regid nogroup --clear-groups nbdinfo --size "nbd+unix:///r0?socket=$RUN/r0.sock" >/dev/null 2>&1; then
    fail "a user outside $GROUP read the export"
fi
down_alpha
write_alpha_res "nbd-socket-group no-such-group-here;"
RUN="$T/run-nogroup/r"
rc=0
repd_alpha up >"$T/up3.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || { down_alpha; fail "repd up with an unknown nbd-socket-group succeeded"; }
grep -q "nbd-socket-group no-such-group-here: no such group" "$T/up3.out" || { cat "$T/up3.out" >&2; fail "no clear message for an unknown group"; }
pass "nbd-socket-group $GROUP: socket 660 root:$GROUP, run dir 711, a member reads $size bytes, a non-member is refused; an unknown group: $(grep -o 'nbd-socket-group no-such[^;]*' "$T/up3.out" | head -1)"

# ---- an NBD listener other machines reach ------------------------------------------------
RUN="$T/run-tcp/r"
write_alpha_res "nbd-address 0.0.0.0:$NBD_PORT;"
rc=0
repd_alpha up >"$T/up4.out" 2>&1 || rc=$?
[ "$rc" = 10 ] || { cat "$T/up4.out" >&2; down_alpha; fail "repd up with nbd-address 0.0.0.0 exited $rc, expected 10"; }
grep -q "r0.res:3:.*nbd-address 0.0.0.0:$NBD_PORT can be reached from other machines" "$T/up4.out" && grep -q "nbd-insecure yes" "$T/up4.out" ||
    { cat "$T/up4.out" >&2; fail "the refusal does not name file:line, the risk and nbd-insecure"; }
[ ! -e "$RUN/r0.pid" ] || ! pid_alive "$(tr -dc 0-9 <"$RUN/r0.pid")" || fail "a daemon runs after the refusal"
ss -ltn | grep -q ":$NBD_PORT " && fail "port $NBD_PORT listens after the refusal"
write_alpha_res "nbd-address 0.0.0.0:$NBD_PORT; nbd-insecure yes;"
repd_alpha up >"$T/up5.out" 2>&1 || { cat "$T/up5.out" >&2; fail "repd up with nbd-insecure yes failed"; }
tcp=$(nbdinfo --size "nbd://127.0.0.1:$NBD_PORT/r0") || fail "the export does not answer on 0.0.0.0:$NBD_PORT with nbd-insecure yes"
down_alpha
pass "nbd-address 0.0.0.0 refused: $(grep -o 'r0.res:3:.*other machines' "$T/up4.out" | head -1); with nbd-insecure yes it serves $tcp bytes over TCP"
