"""A counting TCP proxy to a Postgres unix socket: database round trips as the wire sees them.

A round trip is the client sending something and then the server answering: each time the
server starts sending after the client has sent, the count goes up by one. A pipeline of
several statements flushed once is one round trip, as it costs one wait for the network;
statements counted by ``pg_stat_statements`` cannot tell the two apart.

Run as its own process (so its work does not share the measured process's GIL):
``python bench/_pg_wire.py <socket-path>`` prints its TCP port on stdout, then answers each
``count`` line on stdin with the round trips so far (all connections).
"""

from __future__ import annotations

import asyncio
import sys


class Counter:
    """Round trips over every proxied connection."""

    def __init__(self) -> None:
        self.round_trips = 0


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, on_data) -> None:
    try:
        while data := await reader.read(65536):
            on_data()
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def _serve(socket_path: str, counter: Counter) -> asyncio.AbstractServer:
    async def connect(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_unix_connection(socket_path)
        waiting = [False]  # the client has sent since the server last answered

        def client_sent() -> None:
            waiting[0] = True

        def server_sent() -> None:
            if waiting[0]:
                counter.round_trips += 1
                waiting[0] = False

        await asyncio.gather(_pump(client_r, server_w, client_sent), _pump(server_r, client_w, server_sent))

    return await asyncio.start_server(connect, "127.0.0.1", 0)


async def _main(socket_path: str) -> None:
    counter = Counter()
    server = await _serve(socket_path, counter)
    print(server.sockets[0].getsockname()[1], flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        if line.strip() == "count":
            print(counter.round_trips, flush=True)
    server.close()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1]))
