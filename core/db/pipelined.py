"""Concurrent reads sent together: one pooled connection in psycopg pipeline mode for a block.

A message turn composes its state from a dozen providers at once; each reads through the
adapter, which takes a pooled connection per statement, so with one connection per container
(``DB_POOL_MAX_SIZE=1``) the reads queue and each costs its own network round trip. Inside
``pipelined(pool)`` every ``pool.connection()`` of the block's tasks gets the same connection,
in pipeline mode: a statement is sent at once without waiting for its result, and the first
task that needs a result flushes everything the others sent meanwhile, so N concurrent reads
cost one round trip (measured on the wire by ``bench/message_turn.py``).

Why each statement yields to the event loop after it is sent: a task that fetches holds the
connection's lock until the results arrive, so the other tasks must send theirs first. The
few ``sleep(0)`` let every ready task reach its own statement (a provider may first await a
shared read, which is one more hop) before the first fetch (microseconds each).

Only for blocks that read. Statements between two syncs share one implicit transaction: a
failing statement makes the rest of the block's statements fail too (each caller sees an
error, as a provider's read that failed alone would), and a write would be committed only
when the block ends. The block's end syncs and hands the connection back to the pool. A
connection lost under the block (a failover, RDS Proxy ending it) is closed, so the pool drops
it, and the block raises ``TransientDatabaseError``: its reads failed together, and a turn
must not go on composing a reply from a state that silently lacks them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

from core.errors import TransientDatabaseError

# psycopg is imported where a block runs, not here: ``core.runtime`` imports this module, and a
# module-level psycopg (with psycopg_pool) was ~140 ms of ``import core.runtime`` (bench/import_time.py).

logger = logging.getLogger(__name__)

#: Event-loop turns a statement waits after it is sent, so concurrent tasks send theirs too.
#: Three cover a provider that first awaits a read shared through a future (``core.bootstrap.shared``).
SEND_YIELDS = 3

_pinned: ContextVar[Any] = ContextVar("pipelined_connection", default=None)


class _Batching:
    """A pipelined connection whose ``execute`` lets the other tasks send before anyone fetches."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        cursor = await self._conn.execute(*args, **kwargs)
        await _let_others_send()
        return cursor

    async def execute_together(self, statements: list[tuple[Any, Any]]) -> Any:
        """Send ``(query, params)`` statements back to back, no other task's in between (a
        ``BEGIN`` ... ``COMMIT`` with ``SET LOCAL`` values that must reach only its own query);
        returns the cursor of each, in order. They join the block's round trip like the rest."""
        cursors = [await self._conn.execute(query, params) for query, params in statements]
        await _let_others_send()
        return cursors


async def _let_others_send() -> None:
    for _ in range(SEND_YIELDS):
        await asyncio.sleep(0)


def pinned_connection(pool: Any) -> Any:
    """The connection of the ``pipelined`` block of ``pool`` this task runs in, else ``None``
    (``core.db.pool.PipeliningPool.connection`` hands it out instead of a pooled one)."""
    pinned = _pinned.get()
    return pinned[1] if pinned is not None and pinned[0] is pool else None


@asynccontextmanager
async def pipelined(pool: Any) -> AsyncIterator[None]:
    """Run the block's reads on one connection in pipeline mode (see the module's docstring).

    A pool that does not pin connections (not a ``core.db.pool.PipeliningPool``), or a block
    already inside one, runs as it is.

    Raises:
        psycopg_pool.PoolTimeout: no connection within the pool's timeout.
    """
    if not getattr(pool, "pins_pipelines", False) or _pinned.get() is not None:
        yield
        return
    async with pool.connection() as conn:
        token = _pinned.set((pool, _Batching(conn)))
        try:
            async with _pipeline(conn):
                yield
        finally:
            _pinned.reset(token)


@asynccontextmanager
async def _pipeline(conn: Any) -> AsyncIterator[None]:
    import psycopg

    pipeline = conn.pipeline()
    await pipeline.__aenter__()
    try:
        yield
    except BaseException as exc:
        with contextlib.suppress(psycopg.Error):
            await pipeline.__aexit__(type(exc), exc, exc.__traceback__)
        died = conn.broken
        await _discard_if_broken(conn)
        if died and isinstance(exc, Exception):
            # The task that flushed saw the connection die; the others find no result for
            # their statements (psycopg's "no result available"). Whichever reached the block
            # first, its reads failed because the connection did: transient (HTTP 503).
            raise _lost_during_reads() from exc
        raise
    lost: psycopg.OperationalError | None = None
    try:
        await pipeline.__aexit__(None, None, None)
    except psycopg.OperationalError as exc:
        lost = exc
    except psycopg.Error as exc:
        # Each caller already saw its own statement's error; the final sync only repeats it.
        logger.warning("a pipelined read failed (%s); its caller saw the error", exc)
        with contextlib.suppress(psycopg.Error):
            await conn.rollback()
        return
    else:
        if not conn.broken:
            return
    # The connection died under the block. Its reads failed together, and the providers that made
    # them went on without their part of the state: a reply composed from that would silently miss
    # its context, so the turn stops here instead (HTTP 503; an idempotent retry completes it).
    await _discard_if_broken(conn, force=True)
    raise _lost_during_reads() from lost


def _lost_during_reads() -> TransientDatabaseError:
    return TransientDatabaseError("the database connection was lost during the turn's reads", operation="compose_state")


async def _discard_if_broken(conn: Any, *, force: bool = False) -> None:
    """Close a connection that is broken (or still stuck in pipeline mode), so the pool drops it
    instead of committing on it when the block hands it back."""
    import psycopg

    if force or conn.broken:
        with contextlib.suppress(psycopg.Error):
            await conn.close()
