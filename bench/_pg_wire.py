"""A counting TCP proxy to a Postgres unix socket: database round trips as the wire sees them.

A round trip is the client asking for answers and then the server answering: each time the
server starts sending after the client has sent a message that makes it wait (a Sync, a
Flush, a simple Query, the start-up and authentication messages), the count goes up by one.
Parse, Bind, Describe, Execute and Close only queue work, so a pipeline of several statements
flushed once is one round trip, as it costs one wait for the network, even when the server
starts answering a large result before the client has sent the pipeline's last statement.
Statements counted by ``pg_stat_statements`` cannot tell the two apart.

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
            on_data(data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


#: Extended-protocol messages that only queue work: the server answers them at the next Sync or Flush.
_QUEUED = frozenset(b"PBDEC")


class _ClientMessages:
    """Splits the client's byte stream into protocol messages (they may straddle reads)."""

    def __init__(self) -> None:
        self._buffer = b""
        self._started = False  # the start-up message has no type byte

    def feed(self, data: bytes) -> bool:
        """Whether ``data`` completed a message that makes the client wait for the server."""
        self._buffer += data
        waits = False
        while True:
            header = 4 if not self._started else 5
            if len(self._buffer) < header:
                return waits
            length = int.from_bytes(self._buffer[header - 4 : header], "big") + (header - 4)
            if len(self._buffer) < length:
                return waits
            kind = self._buffer[0] if self._started else None
            code = int.from_bytes(self._buffer[4:8], "big") if not self._started else 0
            self._buffer = self._buffer[length:]
            if kind is None and code not in (80877103, 80877104):  # not SSLRequest or GSSENCRequest: start-up
                self._started = True
            waits = waits or kind not in _QUEUED


async def _serve(socket_path: str, counter: Counter) -> asyncio.AbstractServer:
    async def connect(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_unix_connection(socket_path)
        waiting = [False]  # the client has asked for answers since the server last answered
        messages = _ClientMessages()

        def client_sent(data: bytes) -> None:
            if messages.feed(data):
                waiting[0] = True

        def server_sent(_: bytes) -> None:
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
