#!/usr/bin/env bash
# run-all-timeout: 240
# TLS on NBD (issue 18, part 2): NBD_OPT_STARTTLS with X.509 certificates from
# make-test-pki.sh, on the resource's nbd-address.
#  - `nbd-tls require`: nbdinfo over nbds:// with the CA works; a plaintext
#    client is refused at negotiation; options before STARTTLS get
#    NBD_REP_ERR_TLS_REQD, NBD_OPT_EXPORT_NAME is closed, bytes sent in clear
#    after STARTTLS close the connection (checked with raw bytes);
#  - the named subset of the NBD tests over TLS: nbdcopy both ways with a
#    compare, qemu-img info and qemu-io write/read with tls-creds-x509, libnbd's
#    Python binding
#    (fio's nbd engine refuses a URI with tls-certificates: libnbd's
#    nbd_set_uri_allow_local_file, which fio does not call);
#  - `nbd-tls-ca`: a client with a certificate the CA signed is served; one from
#    another CA, and one with no certificate, are refused and the log says why;
#  - `nbd-address 0.0.0.0` with `nbd-tls require` is accepted without
#    nbd-insecure; with `nbd-tls allow` it is not.
source "$(dirname "$0")/lib.sh"

[ -z "$STANDIN" ] || skip "needs repd"
require_repd
require_python_nbd
require_tool openssl nbdinfo nbdcopy qemu-img qemu-io cmp ss

PKI="$T/pki"
run_logged make-pki bash "$TESTS_DIR/make-test-pki.sh" "$PKI"
alpha_files
RUN="$T/run"
LOG="$RUN/r0.log"
SERVER_TLS="nbd-tls-certificate $PKI/alpha.pem; nbd-tls-privkey $PKI/alpha-key.pem;"
TLS_URI="nbds://127.0.0.1:$NBD_PORT/r0?tls-certificates=$PKI/client"
PLAIN_URI="nbd://127.0.0.1:$NBD_PORT/r0"
UNIX_URI="nbd+unix:///r0?socket=$RUN/r0.sock"
QEMU_TLS=(--object "tls-creds-x509,id=tls0,endpoint=client,dir=$PKI/client")
qemu_opts() { echo "driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=$NBD_PORT,export=r0,tls-creds=tls0"; }

# ---- nbd-tls require -----------------------------------------------------------------------------
write_alpha_res "nbd-address 127.0.0.1:$NBD_PORT; nbd-tls require; $SERVER_TLS"
run_logged create-md repd_alpha create-md
run_logged up repd_alpha up
run_logged primary repd_alpha primary --force
size=$(nbdinfo --size "$TLS_URI") || fail "nbdinfo over TLS failed"
[ "$size" -gt 0 ] || fail "nbdinfo over TLS reports $size bytes"
nbdinfo "$TLS_URI" >"$T/nbdinfo-tls.txt" 2>&1 || fail "nbdinfo over TLS failed"
rc=0
nbdinfo --size "$PLAIN_URI" >"$T/plain.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "a plaintext client read the size of the export that requires TLS"
grep -qi "tls" "$T/plain.out" || { cat "$T/plain.out" >&2; fail "the plaintext client's error does not mention TLS"; }
pass "nbd-tls require: nbdinfo over nbds:// reads $size bytes; plaintext nbdinfo refused: $(grep -i -m1 tls "$T/plain.out" | cut -c1-120)"

# Raw negotiation: what a client gets before STARTTLS, and STARTTLS followed by bytes in clear.
python3 - 127.0.0.1 "$NBD_PORT" <<'EOF' || fail "raw negotiation checks failed"
import socket, struct, sys
host, port = sys.argv[1], int(sys.argv[2])
IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC = 0x3e889045565a9
def connect():
    s = socket.create_connection((host, port), timeout=10)
    hello = s.recv(18, socket.MSG_WAITALL)
    assert len(hello) == 18, hello
    s.sendall(struct.pack(">I", 3))  # fixed newstyle, no zeroes
    return s
def option(s, opt, data=b""):
    s.sendall(struct.pack(">QII", IHAVEOPT, opt, len(data)) + data)
def reply(s):
    head = s.recv(20, socket.MSG_WAITALL)
    if len(head) < 20:
        return None
    magic, opt, typ, length = struct.unpack(">QIII", head)
    assert magic == REPLY_MAGIC, hex(magic)
    s.recv(length, socket.MSG_WAITALL) if length else b""
    return opt, typ
TLS_REQD, INVALID, ACK = 0x80000005, 0x80000003, 1
s = connect()
for opt, name, data in [(3, "LIST", b""), (8, "STRUCTURED_REPLY", b""), (7, "GO", struct.pack(">I", 2) + b"r0" + struct.pack(">H", 0)),
                        (6, "INFO", struct.pack(">I", 2) + b"r0" + struct.pack(">H", 0)), (10, "LIST_META_CONTEXT", b""), (99, "unknown 99", b"")]:
    option(s, opt, data)
    got = reply(s)
    assert got == (opt, TLS_REQD), "%s before STARTTLS: %r" % (name, got)
option(s, 5, b"x")
assert reply(s) == (5, INVALID), "STARTTLS with data"
option(s, 1, b"r0")  # EXPORT_NAME has no error reply: the server must close
s.settimeout(10)
assert s.recv(1) == b"", "EXPORT_NAME in clear was not closed"
print("before STARTTLS: LIST, STRUCTURED_REPLY, GO, INFO, LIST_META_CONTEXT and an unknown option get TLS_REQD; EXPORT_NAME closes")
s = connect()
# STARTTLS and, in the same segment, an option in clear before any TLS handshake: an injection
# attempt. The server must not answer the injected option (closing at once, or feeding the bytes to
# TLS, which rejects them with an alert, are both safe).
s.sendall(struct.pack(">QII", IHAVEOPT, 5, 0) + struct.pack(">QII", IHAVEOPT, 3, 0))
s.settimeout(10)
rest = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    rest += chunk
ack = struct.pack(">QII", REPLY_MAGIC, 5, ACK) + struct.pack(">I", 0)
if rest.startswith(ack):
    rest = rest[len(ack):]
assert struct.pack(">Q", REPLY_MAGIC) not in rest, "the server answered the option injected after STARTTLS: %r" % rest[:60]
assert rest == b"" or rest[0] == 0x15, "after STARTTLS the server sent neither nothing nor a TLS alert: %r" % rest[:20]
print("STARTTLS followed by an option in clear: connection closed")
EOF
grep -Eq "bytes sent in clear after NBD_OPT_STARTTLS|closing connection: TLS" "$LOG" || fail "the log does not report the bytes in clear after STARTTLS"
pass "raw negotiation: options before STARTTLS get NBD_REP_ERR_TLS_REQD, NBD_OPT_EXPORT_NAME in clear is closed, an option injected in clear after STARTTLS closes the connection"

# ---- the NBD tests' tools, over TLS --------------------------------------------------------------
head -c 16M /dev/urandom >"$T/in.bin"
run_logged nbdcopy-to nbdcopy "$T/in.bin" "$TLS_URI"
run_logged nbdcopy-from nbdcopy "$TLS_URI" "$T/out.bin"
cmp -n $((16 << 20)) "$T/in.bin" "$T/out.bin" || fail "nbdcopy over TLS: the data read back differs"
cmp -n $((16 << 20)) "$T/in.bin" <(nbdcopy "$UNIX_URI" - | head -c $((16 << 20))) || fail "the unix socket reads other data than was written over TLS"
run_logged qemu-img-info qemu-img info "${QEMU_TLS[@]}" --image-opts "$(qemu_opts)"
grep -q "virtual size: 64 MiB" "$T/qemu-img-info.out" || { cat "$T/qemu-img-info.out" >&2; fail "qemu-img info over TLS: no 64 MiB"; }
run_logged qemu-io qemu-io "${QEMU_TLS[@]}" --image-opts "$(qemu_opts)" -c "write -P 0xa5 32M 1M" -c "read -P 0xa5 32M 1M"
grep -q "read 1048576/1048576" "$T/qemu-io.out" || { cat "$T/qemu-io.out" >&2; fail "qemu-io over TLS did not read its pattern back"; }
run_logged libnbd-python "$PY_NBD" -c '
import nbd, sys
h = nbd.NBD()
h.set_uri_allow_local_file(True)
h.connect_uri(sys.argv[1])
assert h.get_tls_negotiated(), "TLS not negotiated"
print(h.get_size())' "$TLS_URI"
pass "over TLS: nbdcopy 16 MiB both ways (identical, and as read through the unix socket), qemu-img info and qemu-io write/read with tls-creds-x509, libnbd's Python binding (TLS negotiated)"
down_alpha

# ---- client certificates -------------------------------------------------------------------------
write_alpha_res "nbd-address 127.0.0.1:$NBD_PORT; nbd-tls require; $SERVER_TLS nbd-tls-ca $PKI/ca.pem;"
run_logged up2 repd_alpha up
size=$(nbdinfo --size "$TLS_URI") || fail "a client with a certificate the CA signed was refused"
log_at=$(stat -c %s "$LOG")
rc=0
nbdinfo --size "nbds://127.0.0.1:$NBD_PORT/r0?tls-certificates=$PKI/stranger" >"$T/stranger.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "a client with a certificate from another CA was served"
mkdir -p "$PKI/anonymous"
cp "$PKI/ca.pem" "$PKI/anonymous/ca-cert.pem"
rc=0
nbdinfo --size "nbds://127.0.0.1:$NBD_PORT/r0?tls-certificates=$PKI/anonymous" >"$T/anonymous.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "a client without a certificate was served"
tail -c "+$((log_at + 1))" "$LOG" >"$T/refusals.log"
grep -q "refused the client: the certificate of 'stranger' is not signed by nbd-tls-ca $PKI/ca.pem" "$T/refusals.log" ||
    { cat "$T/refusals.log" >&2; fail "the log does not say why the stranger was refused"; }
grep -Eq "showed no certificate|requires a certificate|closing connection: TLS" "$T/refusals.log" ||
    { cat "$T/refusals.log" >&2; fail "the log does not say why the client without a certificate was refused"; }
down_alpha
pass "nbd-tls-ca: a client certificate the CA signed is served ($size bytes); another CA's is refused ($(grep -o "refused the client: [^(]*" "$T/refusals.log" | head -1)); none at all is refused"

# ---- exposure ------------------------------------------------------------------------------------
write_alpha_res "nbd-address 0.0.0.0:$NBD_PORT; nbd-tls require; $SERVER_TLS"
run_logged dump-config-require repd_alpha dump-config
write_alpha_res "nbd-address 0.0.0.0:$NBD_PORT; nbd-tls allow; $SERVER_TLS"
rc=0
repd_alpha dump-config >"$T/allow.out" 2>&1 || rc=$?
[ "$rc" = 10 ] && grep -q "nbd-tls require" "$T/allow.out" || { cat "$T/allow.out" >&2; fail "nbd-address 0.0.0.0 with nbd-tls allow: expected exit 10 naming nbd-tls require, got $rc"; }
write_alpha_res "nbd-address 127.0.0.1:$NBD_PORT; nbd-tls require;"
rc=0
repd_alpha dump-config >"$T/nocert.out" 2>&1 || rc=$?
[ "$rc" = 10 ] && grep -q "needs a certificate and its key" "$T/nocert.out" || { cat "$T/nocert.out" >&2; fail "nbd-tls without a certificate: expected exit 10, got $rc"; }
write_alpha_res "nbd-address 127.0.0.1:$NBD_PORT; nbd-tls require; nbd-tls-certificate $PKI/alpha.pem; nbd-tls-privkey $PKI/beta-key.pem;"
rc=0
repd_alpha up >"$T/wrongkey.out" 2>&1 || rc=$?
[ "$rc" != 0 ] && grep -q "does the key belong to the certificate" "$T/wrongkey.out" || { cat "$T/wrongkey.out" >&2; down_alpha; fail "up with a key that is not the certificate's: expected a refusal, got $rc"; }
ss -ltn | grep -q ":$NBD_PORT " && fail "port $NBD_PORT listens after the refused up"
pass "exposure: nbd-address 0.0.0.0 with nbd-tls require is accepted, with allow refused ($(grep -o 'nbd-tls require[^,]*' "$T/allow.out" | head -1)); no certificate: $(grep -o 'needs a certificate and its key' "$T/nocert.out"); a key of another certificate: up refused"
