"""The database floor of a turn: the SQL one of our turns sent, replayed bare in two round trips.

What it answers: how much of a turn is Postgres and the driver, and how much is our runtime.
A turn must store its message and read its state before the model is called, and store its
reply after: two round trips is the least any runtime can spend on the same statements. The
floor sends exactly the statements (text and parameters) one recorded turn of ours sent,
through the same driver (psycopg 3 in pipeline mode), with no runtime around them: the message
and the reads behind one Sync, the reply and the logs behind another. Postgres does all the
work the turn's writes need (WAL flush at each commit included), so the floor is a bound below
any Python runtime's turn with these statements, not a target to reach.

Replaying a turn into another room: the room's id is swapped for the target room's, every id
the turn minted (message, reply, log rows) for a new one, so each replay writes new rows as the
real turn did. Ids of the agent, the sender and the world stay as they were.

Bench code: recording wraps psycopg's ``AsyncCursor.execute``/``executemany`` for one turn.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

Statement = tuple[str, Any, bool]  # query text, parameters, executemany


@contextmanager
def recording() -> Iterator[list[Statement]]:
    """Record every statement psycopg's async cursors send inside the block, in order."""
    from psycopg import AsyncCursor

    statements: list[Statement] = []
    execute, executemany = AsyncCursor.execute, AsyncCursor.executemany

    async def recorded_execute(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        statements.append((_text(query, self.connection), params, False))
        return await execute(self, query, params, **kwargs)

    async def recorded_executemany(self: Any, query: Any, params_seq: Any, **kwargs: Any) -> Any:
        params_seq = list(params_seq)
        statements.append((_text(query, self.connection), params_seq, True))
        return await executemany(self, query, params_seq, **kwargs)

    AsyncCursor.execute, AsyncCursor.executemany = recorded_execute, recorded_executemany  # type: ignore[method-assign]
    try:
        yield statements
    finally:
        AsyncCursor.execute, AsyncCursor.executemany = execute, executemany  # type: ignore[method-assign]


def _text(query: Any, conn: Any) -> str:
    if isinstance(query, bytes):
        return query.decode()
    return query if isinstance(query, str) else query.as_string(conn)


def round_trips(statements: list[Statement]) -> tuple[list[Statement], list[Statement]]:
    """The statements before the model call (the message and the reads) and after it (the
    reply and the logs): the split is the first write that follows a read."""
    seen_read = False
    for i, (query, _, _) in enumerate(statements):
        verb = query.lstrip().split(None, 1)[0].upper()
        if verb in ("SELECT", "WITH"):
            seen_read = True
        elif seen_read and verb in ("INSERT", "UPDATE", "DELETE"):
            return statements[:i], statements[i:]
    raise ValueError("the recorded turn has no write after its reads (no reply stored?)")


def _swap(value: Any, ids: dict[UUID, UUID], stable: frozenset[UUID]) -> Any:
    """``value`` with each UUID outside ``stable`` mapped through ``ids`` (a new one the first time)."""
    if isinstance(value, UUID):
        if value in stable:
            return value
        return ids.setdefault(value, uuid4())
    if isinstance(value, tuple | list):
        return type(value)(_swap(v, ids, stable) for v in value)
    if isinstance(value, dict):
        return {k: _swap(v, ids, stable) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class RecordedTurn:
    """The statements of one turn of ours in ``room``; ``stable``: the ids a replay keeps (the
    agent's, the entities' and the worlds'), every other id but the room's is new in each replay."""

    statements: list[Statement]
    room: UUID
    stable: frozenset[UUID]

    def into(self, target: UUID) -> tuple[list[Statement], list[Statement]]:
        """The turn replayed in ``target``, split in its two round trips (``round_trips``)."""
        ids = {self.room: target}
        return round_trips([(query, _swap(params, ids, self.stable), many) for query, params, many in self.statements])


async def stable_ids(url: str) -> frozenset[UUID]:
    """The agents', entities' and worlds' ids in the database at ``url``."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(url) as conn:
        rows = await (
            await conn.execute("SELECT id FROM agents UNION SELECT id FROM entities UNION SELECT id FROM worlds")
        ).fetchall()
    return frozenset(row[0] for row in rows)


async def floor_turns(
    url: str, turns: list[tuple[list[Statement], list[Statement]]], round_trips_sent: Callable[[], int] | None = None
) -> tuple[list[float], list[int]]:
    """Each turn's time (ms) and, when ``round_trips_sent`` counts them (``message_turn.Wire``),
    round trips. One connection, set up as our pool's (dict rows, pgvector's types), stays in
    pipeline mode for all turns, so each round trip is its statements and one Sync (a pipeline
    block's closing Sync would be a third)."""
    import psycopg
    from psycopg.rows import dict_row

    from core.db.pool import VectorTypes

    times, counts = [], []
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row)
    await VectorTypes().register(conn)  # the adapters our pool's connections have
    async with conn, conn.pipeline() as pipeline:
        for before_model, after_model in turns:
            sent = round_trips_sent() if round_trips_sent else 0
            t0 = time.perf_counter()
            for group in (before_model, after_model):
                cursors = [await _send(conn, statement) for statement in group]
                await pipeline.sync()
                for cursor in cursors:
                    if cursor.description is not None:
                        await cursor.fetchall()
            times.append((time.perf_counter() - t0) * 1000)
            counts.append(round_trips_sent() - sent if round_trips_sent else 0)
    return times, counts


async def _send(conn: Any, statement: Statement) -> Any:
    query, params, many = statement
    cursor = conn.cursor()
    if many:
        await cursor.executemany(query, params)
    else:
        await cursor.execute(query, params)
    return cursor
