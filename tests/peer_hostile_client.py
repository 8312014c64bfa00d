#!/usr/bin/env python3
"""Hostile bytes on repd's replication port, for tests/two-node-auth.sh
(stdlib only).

    peer_hostile_client.py --host 127.0.0.1 --port PORT [--pid PID]
                           [--max-rss-mib 200] CASE
    peer_hostile_client.py --list

The peer link's frame header is 12 bytes, big-endian:
    u32 magic 0x52504431 ("RPD1"), u16 type, u16 flags, u32 payload length.
Each case connects to the port as a would-be peer and misbehaves in one
way.  Nothing the daemon sends back is required (it may answer, close, or
say nothing); what this client checks is that the daemon's memory stays
bounded (VmRSS of --pid below --max-rss-mib, sampled while the hostile
connection is still open and after it) and, as information only, whether
the daemon closed the connection.  Survival and a working NBD export are
checked by the calling script after every case.

Exit status: 0 ok, 1 the daemon misbehaved (a "FAIL:" line says why),
2 usage error.
"""

import argparse
import os
import socket
import struct
import sys
import time

MAGIC = 0x52504431
HEADER = struct.Struct(">IHHI")         # magic, type, flags, payload length
MiB = 1 << 20
TIMEOUT = 10.0


class Fail(Exception):
    pass


def mem_kib(pid):
    """(VmRSS, VmSize) of PID in KiB, or None."""
    if not pid:
        return None
    vals = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmSize"):
                    vals[k] = int(v.split()[0])
    except OSError:
        return None
    if "VmRSS" not in vals:
        return None        # a zombie has no memory lines
    return vals["VmRSS"], vals.get("VmSize", 0)


class Ctx:
    def __init__(self, a):
        self.a = a
        self.peak = 0
        m = mem_kib(a.pid)
        self.vsz0 = m[1] if m else 0

    def sample(self, what):
        """Fail if the daemon's RSS is above the limit right now, or its
        address space grew by more than 2 GiB since the case started (a
        4 GiB buffer reserved but not yet touched)."""
        m = mem_kib(self.a.pid)
        if m is None:
            if self.a.pid:
                raise Fail("%s: daemon pid %d is gone" % (what, self.a.pid))
            return
        rss, vsz = m
        self.peak = max(self.peak, rss)
        if rss > self.a.max_rss_mib * 1024:
            raise Fail("%s: daemon VmRSS %d KiB > %d MiB (allocating what the header claimed?)"
                       % (what, rss, self.a.max_rss_mib))
        if vsz - self.vsz0 > 2 * 1024 * 1024:
            raise Fail("%s: daemon VmSize grew by %d KiB (reserving what the header claimed?)"
                       % (what, vsz - self.vsz0))

    def connect(self):
        s = socket.create_connection((self.a.host, self.a.port), timeout=TIMEOUT)
        return s


def send(s, data):
    """Send as much as the daemon takes; a close or reset midway is fine."""
    try:
        s.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False
    except socket.timeout:
        return False     # it stopped reading: fine, as long as memory stays bounded


def closed_within(s, secs):
    """True if the daemon closes (EOF/RST) within SECS; drains what it sends."""
    s.settimeout(0.2)
    deadline = time.monotonic() + secs
    got = 0
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True
        if not chunk:
            return True
        got += len(chunk)
        if got > 16 * MiB:
            raise Fail("daemon sent more than 16 MiB to a hostile connection")
    return False


def info(what, s, secs=3.0):
    c = closed_within(s, secs)
    print("INFO: %s: daemon %s" % (what, "closed the connection" if c
                                   else "kept the connection open for %.0fs" % secs))


def case_garbage(ctx):
    """64 KiB of random bytes (never starting with the magic)."""
    ctx.sample("before garbage")
    s = ctx.connect()
    data = bytearray(os.urandom(64 * 1024))
    if struct.unpack(">I", data[:4])[0] == MAGIC:
        data[0] ^= 0xFF
    send(s, bytes(data))
    ctx.sample("random garbage (connection open)")
    info("random garbage", s)
    s.close()


def case_bad_magic(ctx):
    """A well-formed header and payload, with the wrong magic."""
    ctx.sample("before bad magic")
    s = ctx.connect()
    send(s, HEADER.pack(0xDEADBEEF, 1, 0, 16) + b"\x00" * 16)
    ctx.sample("bad magic (connection open)")
    info("header with bad magic 0xDEADBEEF", s)
    s.close()


def case_huge_length(ctx):
    """Correct magic, payload length 0xFFFFFFF0, then 1 MiB of payload and a
    pause with the connection open: the daemon must not allocate 4 GiB.
    Once each with an unknown type (0), a control type (1, hello) and the
    bulk type (32, write), one connection each."""
    ctx.sample("before huge length")
    for t in (0, 1, 32):
        s = ctx.connect()
        s.settimeout(2.0)
        send(s, HEADER.pack(MAGIC, t, 0, 0xFFFFFFF0))
        send(s, b"\x5a" * MiB)
        for _ in range(10):
            time.sleep(0.1)
            ctx.sample("magic 0x52504431, type %d, payload length 0xFFFFFFF0 (connection open)" % t)
        info("absurd payload length, type %d" % t, s, secs=1.0)
        s.close()


def case_truncated(ctx):
    """5 bytes of a 12-byte header, then close."""
    ctx.sample("before truncated header")
    s = ctx.connect()
    send(s, HEADER.pack(MAGIC, 1, 0, 8)[:5])
    time.sleep(0.2)
    s.close()
    time.sleep(0.2)
    ctx.sample("truncated 5-byte header")


def case_flood(ctx):
    """50 connections opened and closed quickly: 25 one after another (half
    of them reset), then 25 open at once, then all closed."""
    ctx.sample("before flood")
    for i in range(25):
        s = ctx.connect()
        if i % 2:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    socks = [ctx.connect() for _ in range(25)]
    ctx.sample("25 connections open at once")
    for s in socks:
        s.close()
    time.sleep(0.5)
    ctx.sample("after 50 connections")


CASES = {
    "garbage": case_garbage,
    "bad-magic": case_bad_magic,
    "huge-length": case_huge_length,
    "truncated": case_truncated,
    "flood": case_flood,
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int)
    p.add_argument("--pid", type=int, default=0)
    p.add_argument("--max-rss-mib", type=int, default=200)
    p.add_argument("--list", action="store_true")
    p.add_argument("case", nargs="?")
    a = p.parse_args()
    if a.list:
        print("\n".join(CASES))
        return 0
    if a.case not in CASES or not a.port:
        print("need --port and a case: %s" % " ".join(CASES), file=sys.stderr)
        return 2
    ctx = Ctx(a)
    try:
        CASES[a.case](ctx)
    except Fail as e:
        print("FAIL: %s: %s" % (a.case, e))
        return 1
    except ConnectionRefusedError as e:
        print("FAIL: %s: nothing listens on %s:%d (%s)" % (a.case, a.host, a.port, e))
        return 1
    except OSError as e:
        print("FAIL: %s: socket error: %s" % (a.case, e))
        return 1
    if a.pid:
        print("INFO: %s: daemon peak VmRSS seen %d KiB" % (a.case, ctx.peak))
    return 0


if __name__ == "__main__":
    sys.exit(main())
