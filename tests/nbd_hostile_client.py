#!/usr/bin/env python3
"""Hostile NBD client for tests/hostile.sh (stdlib only).

Speaks the fixed-newstyle NBD handshake and the transmission phase
directly on a socket, written from the protocol description in
NetworkBlockDevice/nbd doc/proto.md, and misbehaves in one way per case.

    nbd_hostile_client.py --socket PATH --export NAME --size BYTES
                          [--pid PID] [--structured] CASE

Exit status: 0 the server behaved acceptably, 1 it did not (a "FAIL:"
line says why), 2 usage error.  It does not check that the daemon
survived: hostile.sh does that after every case with a fresh nbdinfo.
"""

import argparse
import os
import socket
import struct
import sys
import threading
import time

# ---- protocol constants (doc/proto.md) -----------------------------------
NBDMAGIC = 0x4E42444D41474943          # "NBDMAGIC"
IHAVEOPT = 0x49484156454F5054          # "IHAVEOPT"
OPT_REPLY_MAGIC = 0x0003E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698
STRUCTURED_REPLY_MAGIC = 0x668E33EF

FLAG_FIXED_NEWSTYLE = 1 << 0           # handshake flags
FLAG_NO_ZEROES = 1 << 1
FLAG_C_FIXED_NEWSTYLE = 1 << 0         # client flags
FLAG_C_NO_ZEROES = 1 << 1

OPT_EXPORT_NAME = 1
OPT_ABORT = 2
OPT_LIST = 3
OPT_INFO = 6
OPT_GO = 7
OPT_STRUCTURED_REPLY = 8

REP_ACK = 1
REP_SERVER = 2
REP_INFO = 3
REP_ERR_BIT = 1 << 31
REP_ERR_UNSUP = REP_ERR_BIT + 1
REP_ERR_TOO_BIG = REP_ERR_BIT + 9

INFO_EXPORT = 0
INFO_BLOCK_SIZE = 3

TFLAG_HAS_FLAGS = 1 << 0
TFLAG_READ_ONLY = 1 << 1

CMD_READ = 0
CMD_WRITE = 1
CMD_DISC = 2

REPLY_FLAG_DONE = 1 << 0
REPLY_TYPE_NONE = 0
REPLY_TYPE_OFFSET_DATA = 1
REPLY_TYPE_OFFSET_HOLE = 2
REPLY_TYPE_ERROR_BIT = 1 << 15

EPERM, EIO, ENOMEM, EINVAL, ENOSPC, EOVERFLOW, ENOTSUP, ESHUTDOWN = 1, 5, 12, 22, 28, 75, 95, 108

TIMEOUT = 15.0          # seconds for any single expected server reaction
MiB = 1 << 20


class Fail(Exception):
    pass


class Closed(Exception):
    """The server closed (or reset) the connection."""


# ---- socket helpers ---------------------------------------------------------
def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect(path)
    return s


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = s.recv(min(n - len(buf), 1 << 20))
        except (ConnectionResetError, BrokenPipeError) as e:
            raise Closed(str(e))
        except socket.timeout:
            raise Fail("timed out after %.0fs waiting for %d bytes from the server (got %d)"
                       % (TIMEOUT, n, len(buf)))
        if not chunk:
            raise Closed("EOF after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return bytes(buf)


def send(s, data):
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError) as e:
        raise Closed(str(e))


def expect_close(s, what, timeout=TIMEOUT):
    """Read until EOF/reset.  Returns whatever bytes arrived before it."""
    s.settimeout(1.0)
    got = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return bytes(got)
        if not chunk:
            return bytes(got)
        got += chunk
        if len(got) > 16 * MiB:
            raise Fail("%s: server sent >16 MiB instead of closing" % what)
    raise Fail("%s: server did not close the connection within %.0fs" % (what, timeout))


def proc_mem_kib(pid):
    """(VmRSS, VmSize) in KiB of PID, or None."""
    if not pid:
        return None
    try:
        vals = {}
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmSize"):
                    vals[k] = int(v.split()[0])
        return vals.get("VmRSS", 0), vals.get("VmSize", 0)
    except OSError:
        return None


# ---- handshake ---------------------------------------------------------------
def greeting(s):
    """Read the server greeting, return its handshake flags."""
    hdr = recv_exact(s, 18)
    magic, ihaveopt, hflags = struct.unpack(">QQH", hdr)
    if magic != NBDMAGIC:
        raise Fail("bad server magic 0x%x" % magic)
    if ihaveopt != IHAVEOPT:
        raise Fail("server is not newstyle (second magic 0x%x)" % ihaveopt)
    if not hflags & FLAG_FIXED_NEWSTYLE:
        raise Fail("server does not set NBD_FLAG_FIXED_NEWSTYLE (flags 0x%x)" % hflags)
    return hflags


def handshake(s):
    hflags = greeting(s)
    cflags = FLAG_C_FIXED_NEWSTYLE
    if hflags & FLAG_NO_ZEROES:
        cflags |= FLAG_C_NO_ZEROES
    send(s, struct.pack(">I", cflags))
    return hflags


def send_opt(s, opt, data=b""):
    send(s, struct.pack(">QII", IHAVEOPT, opt, len(data)) + data)


def read_opt_reply(s, opt):
    magic, ropt, rtype, rlen = struct.unpack(">QIII", recv_exact(s, 20))
    if magic != OPT_REPLY_MAGIC:
        raise Fail("bad option reply magic 0x%x" % magic)
    if ropt != opt:
        raise Fail("option reply for option %d, expected %d" % (ropt, opt))
    if rlen > 64 * MiB:
        raise Fail("absurd option reply length %d" % rlen)
    return rtype, recv_exact(s, rlen)


def go_data(export, infos=(INFO_BLOCK_SIZE,)):
    name = export.encode()
    return (struct.pack(">I", len(name)) + name + struct.pack(">H", len(infos))
            + b"".join(struct.pack(">H", i) for i in infos))


def info_or_go(s, opt, export):
    """Send NBD_OPT_INFO/GO; return dict(size, tflags, block sizes)."""
    send_opt(s, opt, go_data(export))
    info = {}
    for _ in range(64):
        rtype, data = read_opt_reply(s, opt)
        if rtype == REP_ACK:
            if "size" not in info:
                raise Fail("server ACKed option %d without sending NBD_INFO_EXPORT" % opt)
            return info
        if rtype == REP_INFO:
            if len(data) < 2:
                raise Fail("short NBD_REP_INFO (%d bytes)" % len(data))
            itype = struct.unpack(">H", data[:2])[0]
            if itype == INFO_EXPORT:
                if len(data) != 12:
                    raise Fail("NBD_INFO_EXPORT of length %d, expected 12" % len(data))
                info["size"], info["tflags"] = struct.unpack(">QH", data[2:])
            elif itype == INFO_BLOCK_SIZE:
                if len(data) != 14:
                    raise Fail("NBD_INFO_BLOCK_SIZE of length %d, expected 14" % len(data))
                info["min"], info["pref"], info["max"] = struct.unpack(">III", data[2:])
            continue
        if rtype & REP_ERR_BIT:
            raise Fail("option %d for export %r refused with reply type 0x%x: %r"
                       % (opt, export, rtype, data[:200]))
        raise Fail("unexpected option reply type 0x%x" % rtype)
    raise Fail("too many option replies")


def negotiate(s, export, structured, size):
    """Handshake + optional structured replies + GO.  Returns (info, sr)."""
    handshake(s)
    sr = False
    if structured:
        send_opt(s, OPT_STRUCTURED_REPLY)
        rtype, _ = read_opt_reply(s, OPT_STRUCTURED_REPLY)
        if rtype == REP_ACK:
            sr = True
        elif rtype != REP_ERR_UNSUP:
            raise Fail("NBD_OPT_STRUCTURED_REPLY answered with 0x%x" % rtype)
    info = info_or_go(s, OPT_GO, export)
    if size is not None and info["size"] != size:
        raise Fail("export size %d, expected %d" % (info["size"], size))
    if not info["tflags"] & TFLAG_HAS_FLAGS:
        raise Fail("transmission flags 0x%x lack NBD_FLAG_HAS_FLAGS" % info["tflags"])
    return info, sr


# ---- transmission ------------------------------------------------------------
def request(s, cmd, handle, offset, length, flags=0, payload=b"", magic=REQUEST_MAGIC):
    send(s, struct.pack(">IHHQQI", magic, flags, cmd, handle, offset, length) + payload)


def read_reply(s, handle, read_len, sr, offset=0):
    """Read the reply to one request.  read_len: bytes of data a successful
    READ carries (0 for other commands); offset: the READ's offset (to place
    structured data chunks).  Returns (error, data)."""
    magic = struct.unpack(">I", recv_exact(s, 4))[0]
    if magic == SIMPLE_REPLY_MAGIC:
        err, h = struct.unpack(">IQ", recv_exact(s, 12))
        if h != handle:
            raise Fail("reply for handle 0x%x, expected 0x%x" % (h, handle))
        if sr and read_len and err == 0:
            raise Fail("simple reply to a READ after structured replies were negotiated")
        data = recv_exact(s, read_len) if (err == 0 and read_len) else b""
        return err, data
    if magic != STRUCTURED_REPLY_MAGIC:
        raise Fail("bad reply magic 0x%x" % magic)
    if not sr:
        raise Fail("structured reply although structured replies were not negotiated")
    data = bytearray(read_len)
    err = 0
    while True:
        flags, rtype, h, length = struct.unpack(">HHQI", recv_exact(s, 16))
        if h != handle:
            raise Fail("chunk for handle 0x%x, expected 0x%x" % (h, handle))
        if length > 64 * MiB + 64:
            raise Fail("absurd chunk length %d" % length)
        payload = recv_exact(s, length)
        if rtype == REPLY_TYPE_OFFSET_DATA:
            if length < 9:
                raise Fail("OFFSET_DATA chunk of length %d" % length)
            off = struct.unpack(">Q", payload[:8])[0]
            chunk = payload[8:]
            if off < offset or off - offset + len(chunk) > read_len:
                raise Fail("data chunk [%d,+%d) outside the request [%d,+%d)"
                           % (off, len(chunk), offset, read_len))
            data[off - offset: off - offset + len(chunk)] = chunk
        elif rtype == REPLY_TYPE_OFFSET_HOLE:
            if length != 12:
                raise Fail("OFFSET_HOLE chunk of length %d" % length)
            off, hl = struct.unpack(">QI", payload)
            if off < offset or off - offset + hl > read_len:
                raise Fail("hole chunk [%d,+%d) outside the request [%d,+%d)"
                           % (off, hl, offset, read_len))
        elif rtype & REPLY_TYPE_ERROR_BIT:
            if length < 6:
                raise Fail("error chunk of length %d" % length)
            e = struct.unpack(">I", payload[:4])[0]
            if e == 0:
                raise Fail("error chunk with error value 0")
            err = err or e
        elif rtype != REPLY_TYPE_NONE:
            raise Fail("unexpected structured reply type %d" % rtype)
        if flags & REPLY_FLAG_DONE:
            return err, bytes(data)


def do_read(s, handle, offset, length, sr):
    request(s, CMD_READ, handle, offset, length)
    return read_reply(s, handle, length, sr, offset)


def good_read(s, sr, handle=0x600D, what="following good READ"):
    err, data = do_read(s, handle, 0, 4096, sr)
    if err:
        raise Fail("%s failed with error %d (connection should still work)" % (what, err))
    if len(data) != 4096:
        raise Fail("%s returned %d bytes" % (what, len(data)))


def disconnect(s):
    try:
        request(s, CMD_DISC, 0xD15C, 0, 0)
    except Closed:
        pass
    s.close()


# ---- cases -----------------------------------------------------------------
# Handshake phase

def case_early_close(a):
    """Connect and close without reading the greeting."""
    s = connect(a.socket)
    s.close()
    s = connect(a.socket)
    greeting(s)
    s.close()


def case_half_flags(a):
    """Send 2 of the 4 bytes of client flags, then close."""
    s = connect(a.socket)
    greeting(s)
    send(s, b"\x00\x00")
    s.close()


def case_bad_client_flags(a):
    """Unknown client flag bits: the server MUST drop the connection."""
    s = connect(a.socket)
    greeting(s)
    send(s, struct.pack(">I", FLAG_C_FIXED_NEWSTYLE | 0x80000000))
    try:
        send_opt(s, OPT_ABORT)
    except Closed:
        return
    got = expect_close(s, "unknown client flags")
    if got[:8] == struct.pack(">Q", OPT_REPLY_MAGIC):
        raise Fail("server accepted unknown client flags and answered an option")


def case_bad_opt_magic(a):
    """Option header with a wrong magic instead of IHAVEOPT."""
    s = connect(a.socket)
    handshake(s)
    send(s, struct.pack(">QII", 0x4241444D41474943, OPT_LIST, 0))   # "BADMAGIC"
    expect_close(s, "bad option magic")


def case_unknown_opt(a):
    """Unknown options -> NBD_REP_ERR_UNSUP, connection continues."""
    s = connect(a.socket)
    handshake(s)
    for opt, data in ((0x7777, b""), (0x6A6B, b"hostile payload " * 64), (0x7FFFFFFF, b"x")):
        send_opt(s, opt, data)
        rtype, _ = read_opt_reply(s, opt)
        if rtype != REP_ERR_UNSUP:
            raise Fail("unknown option 0x%x answered with reply type 0x%x, expected "
                       "NBD_REP_ERR_UNSUP (0x%x)" % (opt, rtype, REP_ERR_UNSUP))
    # The connection must still be usable: NBD_OPT_INFO on the real export.
    info = info_or_go(s, OPT_INFO, a.export)
    if info["size"] != a.size:
        raise Fail("NBD_OPT_INFO after unknown options: size %d, expected %d"
                   % (info["size"], a.size))
    # Then a proper NBD_OPT_ABORT: ACK (or, tolerated by the spec, a close).
    send_opt(s, OPT_ABORT)
    try:
        rtype, _ = read_opt_reply(s, OPT_ABORT)
    except Closed:
        return
    if rtype != REP_ACK:
        raise Fail("NBD_OPT_ABORT answered with 0x%x, expected NBD_REP_ACK" % rtype)
    s.close()


def case_oversized_opt(a):
    """Option length 0xFFFFFFF0: the server must close, not allocate 4 GiB."""
    before = proc_mem_kib(a.pid)
    s = connect(a.socket)
    handshake(s)
    send(s, struct.pack(">QII", IHAVEOPT, OPT_GO, 0xFFFFFFF0))
    try:
        send(s, struct.pack(">I", 2) + b"t0" + b"\0" * 64)    # a little of the "data"
        got = expect_close(s, "option with length 0xFFFFFFF0")
    except Closed:
        got = b""                   # closed at once: the best answer
    if len(got) >= 20:
        magic, ropt, rtype, _ = struct.unpack(">QIII", got[:20])
        if magic == OPT_REPLY_MAGIC and not rtype & REP_ERR_BIT:
            raise Fail("server answered an option of length 0xFFFFFFF0 with success 0x%x" % rtype)
    check_mem(a, before, "oversized option")


def case_truncated_opt(a):
    """Half an option header, then close."""
    s = connect(a.socket)
    handshake(s)
    send(s, struct.pack(">QII", IHAVEOPT, OPT_GO, 32)[:10])
    s.close()
    # And a full header with a truncated body.
    s = connect(a.socket)
    handshake(s)
    send(s, struct.pack(">QII", IHAVEOPT, OPT_GO, 32) + b"\0\0\0\x02t")
    s.close()


def case_idle_connections(a):
    """Many connections stuck in the handshake must not block a real client."""
    idle = []
    try:
        for i in range(16):
            s = connect(a.socket)
            if i % 2:
                greeting(s)                  # half read the greeting, then sit
            idle.append(s)
        s = connect(a.socket)
        negotiate(s, a.export, a.structured, a.size)
        good_read(s, a.structured, what="READ while 16 idle connections are open")
        disconnect(s)
    finally:
        for s in idle:
            s.close()


# Transmission phase

def case_bad_request_magic(a):
    s = connect(a.socket)
    _, sr = negotiate(s, a.export, a.structured, a.size)
    request(s, CMD_READ, 1, 0, 512, magic=0xDEADBEEF)
    got = expect_close(s, "request with bad magic")
    if len(got) >= 16 and struct.unpack(">I", got[:4])[0] == SIMPLE_REPLY_MAGIC \
            and struct.unpack(">I", got[4:8])[0] == 0:
        raise Fail("server answered a request with bad magic with success")


def case_read_beyond_end(a):
    s = connect(a.socket)
    _, sr = negotiate(s, a.export, a.structured, a.size)
    probes = (
        ("READ at offset == size", a.size, 4096),
        ("READ straddling the end", a.size - 512, 4096),
        ("READ far beyond the end", a.size + 1024 * MiB, 512),
        ("READ whose offset+length wraps 2^64", 0xFFFFFFFFFFFFF000, 0x2000),
    )
    for i, (what, off, ln) in enumerate(probes):
        h = 0x1000 + i
        request(s, CMD_READ, h, off, ln)
        err, _ = read_reply(s, h, ln, sr, off)
        if err not in (EINVAL, ENOSPC):
            raise Fail("%s (offset %d, length %d): error %d, expected EINVAL(22) or ENOSPC(28)"
                       % (what, off, ln, err))
        good_read(s, sr, handle=0x2000 + i, what="good READ after %s" % what)
    disconnect(s)


def case_write_beyond_end(a):
    s = connect(a.socket)
    _, sr = negotiate(s, a.export, a.structured, a.size)
    request(s, CMD_WRITE, 0x3001, a.size - 512, 4096, payload=b"\xee" * 4096)
    err, _ = read_reply(s, 0x3001, 0, sr)
    if err not in (EINVAL, ENOSPC):
        raise Fail("WRITE straddling the end: error %d, expected ENOSPC(28) or EINVAL(22)" % err)
    good_read(s, sr, what="good READ after WRITE beyond the end")
    disconnect(s)


def case_write_oversized(a):
    """WRITE of 64 MiB + 4 KiB (beyond the advertised/default 32 MiB max):
    an error reply or a close is fine, success only if the server said it
    accepts such sizes; never a crash."""
    before = proc_mem_kib(a.pid)
    s = connect(a.socket)
    info, sr = negotiate(s, a.export, a.structured, a.size)
    length = 64 * MiB + 4096
    maxb = info.get("max", 32 * MiB)
    request(s, CMD_WRITE, 0x4001, 0, length)
    closed = False
    try:
        chunk = b"\xa5" * MiB
        sent = 0
        s.settimeout(TIMEOUT)
        while sent < length:
            n = min(len(chunk), length - sent)
            send(s, chunk[:n])
            sent += n
    except Closed:
        closed = True
    except socket.timeout:
        closed = True     # server stopped reading: it must then close below
    if not closed:
        try:
            err, _ = read_reply(s, 0x4001, 0, sr)
            if err == 0 and length > maxb:
                raise Fail("WRITE of %d bytes (> max block size %d) succeeded" % (length, maxb))
        except Closed:
            closed = True
    if closed:
        expect_close(s, "after oversized WRITE")
    s.close()
    check_mem(a, before, "oversized WRITE")


def case_write_huge_len(a):
    """WRITE header claiming 0xFFFFFFF0 bytes, then 1 MiB of payload and a
    pause: the server must not allocate 4 GiB.  Then close."""
    before = proc_mem_kib(a.pid)
    s = connect(a.socket)
    _, sr = negotiate(s, a.export, a.structured, a.size)
    request(s, CMD_WRITE, 0x5001, 0, 0xFFFFFFF0)
    try:
        send(s, b"\x5a" * MiB)
    except Closed:
        pass
    time.sleep(1.0)
    check_mem(a, before, "WRITE with length 0xFFFFFFF0 (connection still open)")
    s.close()


def case_unknown_command(a):
    s = connect(a.socket)
    _, sr = negotiate(s, a.export, a.structured, a.size)
    for i, cmd in enumerate((0x42, 0x7FFF, 0xFFFF)):
        h = 0x6000 + i
        request(s, cmd, h, 0, 0)
        err, _ = read_reply(s, h, 0, sr)
        if err != EINVAL:
            raise Fail("unknown command type 0x%x: error %d, expected EINVAL(22)" % (cmd, err))
        good_read(s, sr, handle=0x6100 + i, what="good READ after unknown command 0x%x" % cmd)
    disconnect(s)


def case_disconnect_mid_write(a):
    """Client vanishes in the middle of a WRITE payload."""
    for hard in (False, True):
        s = connect(a.socket)
        negotiate(s, a.export, a.structured, a.size)
        request(s, CMD_WRITE, 0x7001, MiB, MiB, payload=b"\xc3" * (100 * 1024))
        if hard:   # RST instead of FIN
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()


def case_pipelined_garbage(a):
    """Good requests pipelined with no reads, then a torrent of garbage."""
    s = connect(a.socket)
    _, sr = negotiate(s, a.export, a.structured, a.size)
    reqs = b"".join(struct.pack(">IHHQQI", REQUEST_MAGIC, 0, CMD_READ, 0x8000 + i,
                                (i * 4096) % a.size, 4096) for i in range(64))
    garbage = os.urandom(256 * 1024)

    def writer():          # send from a thread: we must keep reading replies
        try:
            s.sendall(reqs + garbage)
        except OSError:
            pass
    t = threading.Thread(target=writer, daemon=True)
    t.start()
    # Replies and then a close, or just a close: both fine, as long as it ends.
    expect_close(s, "after pipelined garbage", timeout=30)
    t.join(5)


def check_mem(a, before, what):
    after = proc_mem_kib(a.pid)
    if before is None or after is None:
        return
    drss = after[0] - before[0]
    dvsz = after[1] - before[1]
    if drss > 512 * 1024 or dvsz > 2 * 1024 * 1024:
        raise Fail("%s: daemon memory grew by RSS %+d KiB, VSZ %+d KiB (allocating "
                   "what the client claimed?)" % (what, drss, dvsz))


CASES = {
    "early-close": case_early_close,
    "half-flags": case_half_flags,
    "bad-client-flags": case_bad_client_flags,
    "bad-opt-magic": case_bad_opt_magic,
    "unknown-opt": case_unknown_opt,
    "oversized-opt": case_oversized_opt,
    "truncated-opt": case_truncated_opt,
    "idle-connections": case_idle_connections,
    "bad-request-magic": case_bad_request_magic,
    "read-beyond-end": case_read_beyond_end,
    "write-beyond-end": case_write_beyond_end,
    "write-oversized": case_write_oversized,
    "write-huge-len": case_write_huge_len,
    "unknown-command": case_unknown_command,
    "disconnect-mid-write": case_disconnect_mid_write,
    "pipelined-garbage": case_pipelined_garbage,
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--socket", required=True)
    p.add_argument("--export", required=True)
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--pid", type=int, default=0)
    p.add_argument("--structured", action="store_true")
    p.add_argument("--list", action="store_true")
    p.add_argument("case", nargs="?")
    a = p.parse_args()
    if a.list:
        print("\n".join(CASES))
        return 0
    if a.case not in CASES:
        print("unknown case %r; one of: %s" % (a.case, " ".join(CASES)), file=sys.stderr)
        return 2
    tag = a.case + (" (structured replies)" if a.structured else "")
    try:
        CASES[a.case](a)
    except Fail as e:
        print("FAIL: %s: %s" % (tag, e))
        return 1
    except Closed as e:
        print("FAIL: %s: server closed the connection unexpectedly (%s)" % (tag, e))
        return 1
    except OSError as e:
        print("FAIL: %s: socket error: %s" % (tag, e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
