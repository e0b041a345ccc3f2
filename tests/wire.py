"""Round trips counted on the wire, from libpq's protocol trace of one connection.

One round trip is what the client sends before it next hears from the server, when that
ends with a message that makes the server answer: Sync, Flush or a simple Query.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from typing import Any

#: Frontend messages after which the client waits for the server.
ANSWERED = {"Sync", "Flush", "Query"}


class WireTrace:
    """The frontend messages of each round trip traced so far (``round_trips``)."""

    def __init__(self) -> None:
        self.round_trips: list[list[str]] = []

    def read(self, lines: Iterator[str]) -> None:
        batches: list[list[str]] = []
        previous = "B"
        for line in lines:
            fields = line.split("\t")
            if len(fields) < 4:
                continue
            direction, message = fields[1], fields[3].strip()
            if direction == "F":
                if previous != "F":
                    batches.append([])
                batches[-1].append(message)
            previous = direction
        self.round_trips += [b for b in batches if ANSWERED & set(b)]


@contextlib.contextmanager
def traced(pgconn: Any) -> Iterator[WireTrace]:
    """Trace ``pgconn`` (a psycopg ``PGconn``) for the block; the trace is read when it ends."""
    wire = WireTrace()
    with tempfile.TemporaryFile("w+") as out:
        pgconn.trace(out.fileno())
        try:
            yield wire
        finally:
            pgconn.untrace()  # flushes libpq's trace file
            out.seek(0)
            wire.read(iter(out))
