"""Forwards TCP from the host's 127.0.0.1:HOST_PORT to 127.0.0.1:PORT inside a network
namespace (scripts/netns forward NAME HOST_PORT PORT). The listening socket is made in the
host namespace; the process then enters NAME, so every upstream socket is made there."""

import asyncio
import ctypes
import os
import socket
import sys

CLONE_NEWNET = 0x40000000


def enter(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns into {name}: {os.strerror(err)}")
    os.close(fd)


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def main(name: str, host_port: int, port: int) -> None:
    listener = socket.create_server(("127.0.0.1", host_port), reuse_port=False)
    enter(name)

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(pipe(client_r, up_w), pipe(up_r, client_w))

    server = await asyncio.start_server(handle, sock=listener)
    print(f"forwarding 127.0.0.1:{host_port} -> {name}:127.0.0.1:{port}", file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: netns-forward.py NAME HOST_PORT PORT")
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
