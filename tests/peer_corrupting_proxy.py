#!/usr/bin/env python3
"""A TCP proxy for repd's replication link that corrupts data in flight.

    peer_corrupting_proxy.py FLAGFILE LOGFILE LISTEN_HOST:PORT=TARGET_HOST:PORT ...

Forwards every connection to its target unchanged and parses the frames
(Docs/WireProtocol.md: 12-byte header "RPD1", type u16, flags u16, length u32)
in both directions. While FLAGFILE exists, the next `write` frame (type 32)
of kind data has the last byte of its payload (the data) inverted; the flag
file is then removed, so each `touch FLAGFILE` corrupts exactly one write.
Each corruption is logged to LOGFILE as `sequence offset length`.
Runs until killed.
"""
import asyncio
import os
import struct
import sys

MAGIC = 0x52504431
WRITE = 32

flag_file, log_file = sys.argv[1], sys.argv[2]


def corrupt(payload: bytearray) -> None:
    sequence, offset, length, kind = struct.unpack(">QQIB", payload[:21])
    if kind != 0 or length == 0 or not os.path.exists(flag_file):
        return
    os.unlink(flag_file)
    payload[-1] ^= 0xFF
    with open(log_file, "a") as log:
        log.write(f"{sequence} {offset} {length}\n")


async def pump(reader, writer):
    buffer = bytearray()
    try:
        while True:
            chunk = await reader.read(1 << 20)
            if not chunk:
                break
            buffer += chunk
            out = bytearray()
            while len(buffer) >= 12:
                magic, mtype, _flags, length = struct.unpack(">IHHI", buffer[:12])
                if magic != MAGIC:
                    # Not a frame boundary we understand: pass everything on as it is.
                    out += buffer
                    buffer.clear()
                    break
                if len(buffer) < 12 + length:
                    break
                frame = bytearray(buffer[: 12 + length])
                del buffer[: 12 + length]
                if mtype == WRITE and length > 22:
                    payload = frame[12:]
                    corrupt(payload)
                    frame[12:] = payload
                out += frame
            if out:
                writer.write(out)
                await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def serve(listen, target):
    lhost, lport = listen.rsplit(":", 1)
    thost, tport = target.rsplit(":", 1)

    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(thost, int(tport))
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pump(client_reader, server_writer), pump(server_reader, client_writer))

    server = await asyncio.start_server(handle, lhost, int(lport), reuse_address=True)
    async with server:
        await server.serve_forever()


async def main():
    await asyncio.gather(*(serve(*pair.split("=")) for pair in sys.argv[3:]))


asyncio.run(main())
