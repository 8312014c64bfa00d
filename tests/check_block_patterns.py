#!/usr/bin/env python3
"""Block-pattern checker for tests/two-node-dual-primary.sh (stdlib only).

    check_block_patterns.py FILE [--length BYTES] [--block BYTES]
                            [--allow 0xAA,0x55,0x00] [--require 0xAA,0x55]
    check_block_patterns.py --self-test

Every BLOCK-sized block of the first LENGTH bytes of FILE must consist of
one byte value repeated, and that value must be one of --allow (default
0xAA, 0x55, 0x00: the two writers' fio buffer patterns, or never written).
Each value in --require must fill at least one block.  A block mixing two
values (a torn write, or two writers' data interleaved by a replication
bug) fails.

Exit status: 0 ok, 1 a rule was broken (a "FAIL:" line and the first bad
blocks say which), 2 usage error.
"""

import argparse
import os
import sys
import tempfile

MiB = 1 << 20


def parse_bytes(text):
    return [int(v, 0) for v in text.split(",") if v.strip()]


def check(path, length, block, allow, require, out=sys.stdout):
    """Returns a list of error strings (empty if the file is fine)."""
    errs = []
    size = os.path.getsize(path)
    if size < length:
        return ["%s is %d bytes, shorter than the %d bytes to check" % (path, size, length)]
    if length % block:
        return ["length %d is not a multiple of the block size %d" % (length, block)]
    fills = {v: bytes([v]) * block for v in allow}
    counts = {v: 0 for v in allow}
    bad = []
    with open(path, "rb") as f:
        for i in range(length // block):
            b = f.read(block)
            if len(b) != block:
                errs.append("short read at block %d" % i)
                break
            v = b[0]
            if v in fills and b == fills[v]:
                counts[v] += 1
                continue
            values = sorted(set(b))
            bad.append((i, values))
    if bad:
        errs.append("%d of %d blocks are not one allowed value repeated" % (len(bad), length // block))
        for i, values in bad[:10]:
            shown = ",".join("0x%02X" % v for v in values[:6]) + (",..." if len(values) > 6 else "")
            print("    block %d (offset %d): byte values %s" % (i, i * block, shown), file=out)
    for v in require:
        if counts.get(v, 0) == 0:
            errs.append("no block is entirely 0x%02X" % v)
    print("blocks: " + ", ".join("0x%02X x %d" % (v, counts[v]) for v in sorted(counts))
          + (", bad x %d" % len(bad) if bad else ""), file=out)
    return errs


def self_test():
    """Crafted files: the good one must pass, every broken one must fail."""
    blk = 4096
    allow, require = [0xAA, 0x55, 0x00], [0xAA, 0x55]
    good = [0xAA, 0x55, 0x00, 0x55, 0xAA, 0xAA, 0x00, 0x55]

    def build(blocks, tail=b""):
        data = b"".join(bytes([v]) * blk if isinstance(v, int) else v for v in blocks)
        return data + tail

    cases = [
        ("all three kinds of block", build(good), True),
        ("trailing data beyond LENGTH is ignored", build(good, b"\x01" * 100), True),
        ("a block half 0xAA, half 0x55", build(good[:3] + [b"\xaa" * 2048 + b"\x55" * 2048] + good[4:]), False),
        ("one stray byte in a 0x55 block", build(good[:1] + [b"\x55" * 4095 + b"\xaa"] + good[2:]), False),
        ("a block of another value (0x11)", build(good[:5] + [0x11] + good[6:]), False),
        ("0x55 never occurs", build([0xAA, 0x00] * 4), False),
        ("0xAA never occurs", build([0x55, 0x00] * 4), False),
        ("file shorter than LENGTH", build(good[:7]), False),
    ]
    failures = 0
    with tempfile.TemporaryDirectory() as d:
        for name, data, should_pass in cases:
            p = os.path.join(d, "f.img")
            with open(p, "wb") as f:
                f.write(data)
            errs = check(p, len(good) * blk, blk, allow, require, out=open(os.devnull, "w"))
            ok = (not errs) == should_pass
            print("%s: self-test: %s -> %s" % ("ok" if ok else "WRONG", name,
                                               "; ".join(errs) if errs else "passes"))
            failures += not ok
    if failures:
        print("FAIL: the checker got %d crafted case(s) wrong" % failures)
        return 1
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("file", nargs="?")
    p.add_argument("--length", type=int, default=16 * MiB)
    p.add_argument("--block", type=int, default=4096)
    p.add_argument("--allow", default="0xAA,0x55,0x00")
    p.add_argument("--require", default="0xAA,0x55")
    p.add_argument("--self-test", action="store_true")
    a = p.parse_args()
    if a.self_test:
        return self_test()
    if not a.file:
        p.print_usage(sys.stderr)
        return 2
    errs = check(a.file, a.length, a.block, parse_bytes(a.allow), parse_bytes(a.require))
    if errs:
        print("FAIL: %s: %s" % (a.file, "; ".join(errs)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
