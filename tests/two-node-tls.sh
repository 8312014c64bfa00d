#!/usr/bin/env bash
# run-all-timeout: 300
# TLS on the replication link (issue 18, part 1). Certificates from
# make-test-pki.sh; each node has its own resource file naming its own
# certificate (as two machines would have the same path with their own file).
#  - clear: a 1 MiB random pattern written through the Primary is in a
#    tcpdump capture of the link (this proves the capture sees the data);
#  - tls yes with cram-hmac: fio with verify through the Primary, the same
#    pattern is nowhere in the capture, replicas identical after down;
#  - tls yes alone (no cram-hmac): connects, replicates, replicas identical;
#  - beta with a certificate issued to another name, from another CA, expired,
#    or without TLS: never Connected; alpha's log and `repd status` say why.
source "$(dirname "$0")/lib.sh"

[ -z "$STANDIN" ] || skip "needs repd"
require_repd
require_python_nbd
require_tool openssl tcpdump fio cmp python3 ss nbdinfo
fio --enghelp=nbd >/dev/null 2>&1 || fail "this fio has no nbd ioengine"

PKI="$T/pki"
run_logged make-pki bash "$TESTS_DIR/make-test-pki.sh" "$PKI"
SIZE=128M
PORT=$(pick_port) || fail "no free TCP port found"
WATCH=6
# The test pair's timings without cram-hmac (TWO_NODE_NET_DEFAULT adds cram-hmac-alg and its secret).
NET_BASE='connect-int 1; ping-int 1; ping-timeout 10; timeout 30;'

# res_file NET ALPHA-CERT BETA-CERT DIR: the resource file; NET may name the
# node's certificate as @CERT@ (its own one) and @KEY@.
res_file() {
    cat <<EOF
resource r0 {
  net { protocol C; $1 }
  disk { c-plan-ahead 0; resync-rate 1G; }
  on alpha { device none; disk $2/alpha.img; address 127.0.0.1:$PORT; meta-disk $2/alpha.md; }
  on beta  { device none; disk $2/beta.img;  address 127.0.0.2:$PORT; meta-disk $2/beta.md; }
}
EOF
}
tls_net() {  # CERT-NAME [CA]: the net options of a node showing $PKI/CERT-NAME.pem
    echo "tls yes; tls-certificate $PKI/$1.pem; tls-privkey $PKI/$1-key.pem; tls-ca $PKI/${2:-ca}.pem;"
}
# pair NAME ALPHA-NET BETA-NET: fresh disks, both nodes' resource files, create-md, up.
pair() {
    local name=$1 dir="$T/$1"
    mkdir -p "$dir/etc-alpha" "$dir/etc-beta"
    truncate -s "$SIZE" "$dir/alpha.img" "$dir/beta.img"
    truncate -s 16M "$dir/alpha.md" "$dir/beta.md"
    res_file "$2" "$dir" >"$dir/etc-alpha/r0.res"
    res_file "$3" "$dir" >"$dir/etc-beta/r0.res"
    node_define alpha alpha r0 "$dir/etc-alpha" "$dir/run-alpha"
    node_define beta beta r0 "$dir/etc-beta" "$dir/run-beta"
    ALPHA_DISK="$dir/alpha.img" BETA_DISK="$dir/beta.img"
    node_create_md alpha
    node_create_md beta
    node_up alpha
    node_up beta
}
synced_pair() {  # NAME ALPHA-NET BETA-NET
    pair "$@"
    run_logged "$1-wait-connect" repd_node alpha wait-connect --timeout 30
    run_logged "$1-primary" repd_node alpha primary --force
    run_logged "$1-wait-sync" repd_node beta wait-sync --timeout 120
}
both_down() {
    run_logged "down-alpha-$1" repd_node alpha down
    run_logged "down-beta-$1" repd_node beta down
}

# ---- capture: the 1 MiB pattern, and how much of it a capture of the link shows -----------------
head -c 1M /dev/urandom >"$T/pattern.bin"
capture_start() {  # FILE
    tcpdump -i lo -U -s 0 -B 65536 -w "$1" "tcp port $PORT" >"$1.log" 2>&1 </dev/null 8>&- 9>&- &
    CAPTURE_PID=$!
    add_bg_pid "$CAPTURE_PID"
    wait_until "tcpdump listening" 10 0.1 grep -q "listening on" "$1.log" || { cat "$1.log" >&2; fail "tcpdump did not start"; }
}
capture_stop() {
    sleep 0.5
    kill -INT "$CAPTURE_PID" 2>/dev/null || true
    wait "$CAPTURE_PID" 2>/dev/null || true
}
write_pattern() {  # URI: the pattern at 8 MiB, read back and compared
    "$PY_NBD" - "$1" "$T/pattern.bin" <<'EOF' || fail "writing the pattern through alpha failed"
import nbd, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
data = open(sys.argv[2], "rb").read()
h.pwrite(data, 8 << 20)
h.flush()
assert h.pread(len(data), 8 << 20) == data, "read back differs"
h.shutdown()
EOF
}
# pieces_found PCAP: how many of 256 32-byte pieces of the pattern (one per 4 KiB) the capture holds.
pieces_found() {
    python3 - "$T/pattern.bin" "$1" <<'EOF'
import sys
pattern = open(sys.argv[1], "rb").read()
capture = open(sys.argv[2], "rb").read()
print(sum(1 for i in range(256) if pattern[i * 4096:i * 4096 + 32] in capture))
EOF
}

# ---- clear text ----------------------------------------------------------------------------------
synced_pair clear "$TWO_NODE_NET_DEFAULT" "$TWO_NODE_NET_DEFAULT"
capture_start "$T/clear.pcap"
write_pattern "$(node_uri alpha)"
capture_stop
clear_found=$(pieces_found "$T/clear.pcap")
[ "$clear_found" -ge 64 ] || fail "without TLS the capture holds only $clear_found of 256 pieces of the pattern: the capture does not see the link"
both_down clear
pass "without TLS: a capture of the link holds $clear_found of 256 pieces of the 1 MiB pattern ($(stat -c %s "$T/clear.pcap") bytes captured)"

# ---- TLS and cram-hmac ---------------------------------------------------------------------------
synced_pair tls "$TWO_NODE_NET_DEFAULT $(tls_net alpha)" "$TWO_NODE_NET_DEFAULT $(tls_net beta)"
grep -q "TLS 1.3, certificate $PKI/alpha.pem" "$(node_logfile alpha)" || fail "alpha's log does not say the link runs TLS"
capture_start "$T/tls.pcap"
write_pattern "$(node_uri alpha)"
capture_stop
tls_found=$(pieces_found "$T/tls.pcap")
captured=$(stat -c %s "$T/tls.pcap")
[ "$captured" -gt $((512 << 10)) ] || fail "the TLS capture holds only $captured bytes: the pattern did not cross the link"
[ "$tls_found" = 0 ] || fail "with TLS the capture holds $tls_found of 256 pieces of the pattern"
pass "tls yes + cram-hmac: the capture ($captured bytes) holds none of the 256 pieces of the pattern"
rc=0
fio_run tls-randwrite 300 "$(node_uri alpha)" --rw=randwrite --bssplit=4k/50:64k/50 --iodepth=16 \
    --size=64M --verify=crc32c --do_verify=1 --verify_fatal=1 --verify_state_save=0 || rc=$?
check_fio tls-randwrite "$rc" write=$((64 << 20)) read=$((64 << 20))
expect_state alpha role=Primary conn=Connected repl=Established peer-disk=UpToDate oos=0
both_down tls
cmp "$ALPHA_DISK" "$BETA_DISK" || fail "replicas differ after fio over TLS"
pass "tls yes + cram-hmac: fio 64 MiB randwrite (4k/64k, iodepth 16, crc32c verify) through alpha; replicas identical"

# ---- TLS alone -----------------------------------------------------------------------------------
synced_pair tls-only "$NET_BASE $(tls_net alpha)" "$NET_BASE $(tls_net beta)"
write_pattern "$(node_uri alpha)"
both_down tls-only
cmp "$ALPHA_DISK" "$BETA_DISK" || fail "replicas differ (TLS without cram-hmac)"
pass "tls yes without cram-hmac: initial sync and writes over TLS; replicas identical"

# ---- refused peers -------------------------------------------------------------------------------
# refused NAME BETA-NET REGEX: alpha (right certificate) and a beta that must be refused; alpha's
# log and its status (repd-message) must say why, matching REGEX.
refused() {
    local name=$1 beta_net=$2 re=$3 end msg
    pair "$name" "$NET_BASE $(tls_net alpha)" "$NET_BASE $beta_net"
    end=$((SECONDS + WATCH))
    while [ "$SECONDS" -lt "$end" ]; do
        node_is alpha conn=Connected && fail "$name: the pair reached Connected"
        sleep 0.25
    done
    node_state alpha >/dev/null || fail "$name: no status from alpha"
    msg=$(json_query "$T/status-alpha.json" 'j[0].get("repd-message") or ""')
    grep -Eq "$re" "$(node_logfile alpha)" || { tail -20 "$(node_logfile alpha)" >&2; fail "$name: alpha's log does not match /$re/"; }
    echo "$msg" | grep -Eq "$re|TLS" || fail "$name: alpha's status does not say why: '$msg'"
    both_down "$name"
    pass "$name: never Connected in ${WATCH}s; alpha logs: $(grep -Eo -m1 "TLS: [^[(]*" "$(node_logfile alpha)" | head -1 | cut -c1-150); status: $(echo "$msg" | cut -c1-100)"
}
refused wrong-name "$(tls_net gamma)" "issued to 'gamma'.*not to the peer node 'beta'"
refused other-ca "$(tls_net beta-other other-ca)" "not signed by this node's tls-ca"
refused expired "$(tls_net beta-expired)" "expired on 2020-02-01"
refused no-tls "" "does not speak TLS|closed the connection during the TLS handshake|protocol error"
