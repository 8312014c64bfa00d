#!/usr/bin/env python3
"""Minimal QMP client for the benchmark's qemu-storage-daemon mirror (stdlib only).

Usage:
  qmp.py SOCKET mirror DEVICE HOST PORT EXPORT TIMEOUT
      qmp_capabilities; blockdev-add an nbd node "mirror-target" (inet HOST:PORT,
      export EXPORT); blockdev-mirror DEVICE -> mirror-target with sync=full and
      copy-mode=write-blocking (job id "bench-mirror"); then poll query-block-jobs
      until the job is ready.  Prints one JSON object: seconds to ready, bytes copied.
  qmp.py SOCKET check
      Prints the mirror job as query-block-jobs reports it (JSON); exit 1 unless it is
      present, ready, with io-status ok.
      (query-block-jobs does not report the copy mode; it is set by `mirror`.)
  qmp.py SOCKET finish TIMEOUT
      block-job-cancel of the ready job (a ready mirror cancelled is left consistent on
      the target), waits (bounded) until the job is gone, then sends quit.

Every wait is bounded by TIMEOUT seconds; exit status 1 with a message on stderr on
any QMP error or timeout.
"""
import json
import socket
import sys
import time

JOB = "bench-mirror"


class QMP:
    def __init__(self, path, timeout=30.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.events = []
        greeting = self._read()
        if "QMP" not in greeting:
            raise RuntimeError("no QMP greeting: %r" % greeting)
        self.cmd("qmp_capabilities")

    def _read(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("QMP connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = self._read()
            if "event" in r:
                self.events.append(r)
                continue
            if "error" in r:
                raise RuntimeError("%s: %s" % (name, r["error"].get("desc", r["error"])))
            return r.get("return")


def job(q):
    for j in q.cmd("query-block-jobs"):
        if j.get("device") == JOB:
            return j
    return None


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    path, verb = argv[1], argv[2]
    q = QMP(path)
    if verb == "mirror":
        device, host, port, export, timeout = argv[3], argv[4], argv[5], argv[6], float(argv[7])
        q.cmd("blockdev-add", **{
            "driver": "nbd", "node-name": "mirror-target",
            "server": {"type": "inet", "host": host, "port": str(port)},
            "export": export,
        })
        start = time.monotonic()
        q.cmd("blockdev-mirror", **{
            "job-id": JOB, "device": device, "target": "mirror-target",
            "sync": "full", "copy-mode": "write-blocking",
        })
        while True:
            j = job(q)
            if j is None:
                sys.exit("mirror job vanished before it was ready (events: %s)" % json.dumps(q.events))
            if j.get("ready"):
                break
            if time.monotonic() - start > timeout:
                sys.exit("mirror not ready after %.0f s: %s" % (timeout, json.dumps(j)))
            time.sleep(0.05)
        print(json.dumps({"seconds": round(time.monotonic() - start, 3),
                          "bytes": j.get("offset"), "len": j.get("len")}))
    elif verb == "check":
        j = job(q)
        print(json.dumps(j))
        if not j or not j.get("ready") or j.get("status") != "ready" or j.get("io-status", "ok") != "ok":
            sys.exit(1)
    elif verb == "finish":
        timeout = float(argv[3])
        start = time.monotonic()
        if job(q) is not None:
            q.cmd("block-job-cancel", device=JOB)
            while job(q) is not None:
                if time.monotonic() - start > timeout:
                    sys.exit("mirror job still present %.0f s after block-job-cancel" % timeout)
                time.sleep(0.05)
        try:
            q.cmd("quit")
        except Exception:
            pass                    # the daemon may close the socket before answering
    else:
        sys.exit("unknown verb %r" % verb)


if __name__ == "__main__":
    try:
        main(sys.argv)
    except (OSError, RuntimeError, ValueError) as e:
        sys.exit("qmp.py: %s" % e)
