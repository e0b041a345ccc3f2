"""The process-wide connection pool, opened once in the Lambda init phase.

Why these defaults (docs/architecture.md "Pool for Lambda"): a Lambda container runs one event at a
time, so one connection is enough (``max_size=1``) and none is held while frozen
(``min_size=0``); ``prepare_threshold=None`` keeps RDS Proxy / PgBouncer in transaction mode
working (no server-side prepared statements); autocommit plus explicit transactions keeps
no session state that would pin a proxy connection; ``check`` replaces a connection that
died while the container was frozen before it is handed out.

The check costs a round trip, so, like PgBouncer's ``server_check_delay``, it runs only on
a connection that sat idle in the pool longer than ``DB_POOL_CHECK_AFTER_S`` (1 s): a
frozen container always exceeds that, while the several checkouts of one message turn,
milliseconds apart, skip it (a turn drops from 8 round trips to 5). A connection lost within
that window is still covered by ``core.db.retry`` for idempotent operations.

One pool per process: the container opens it in the init phase and ``Container.close()`` (process
shutdown) is the only code that closes it; adapters and runtimes share it and never close it.
Transient errors met while using it (lost connections, deadlocks, pool timeouts) are typed and,
where safe, retried by ``core.db.retry``.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pgvector.psycopg.halfvec import register_halfvec_info
from pgvector.psycopg.vector import register_vector_info
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row, tuple_row
from psycopg.types import TypeInfo
from psycopg_pool import AsyncConnectionPool

from core.db.credentials import SecretsSource, database_conninfo
from core.db.pipelined import pinned_connection
from core.settings.db import DatabaseSettings


class PipeliningPool(AsyncConnectionPool[AsyncConnection[DictRow]]):
    """The process's pool: ``connection()`` is the block's pipelined connection inside
    ``core.db.pipelined.pipelined``, else a pooled one."""

    #: What ``pipelined`` looks for (an attribute, so that module need not import this one's psycopg).
    pins_pipelines = True

    @asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[Any]:
        """The pinned connection inside a ``pipelined`` block of this pool, else a pooled one."""
        pinned = pinned_connection(self)
        if pinned is not None:
            yield pinned
            return
        async with super().connection(timeout) as conn:
            yield conn


#: A connection of the pool: autocommit, rows as dicts (``dict_row``).
Connection = AsyncConnection[DictRow]
#: The process's pool, as ``create_pool`` builds it.
Pool = AsyncConnectionPool[Connection]

# The columns psycopg's own TypeInfo.fetch reads, for both pgvector types at once.
_VECTOR_TYPES_SQL = (
    "SELECT t.typname, t.oid, t.typarray, t.oid::regtype::text, t.typdelim"
    " FROM unnest(ARRAY['vector', 'halfvec']) AS wanted(name) JOIN pg_type t ON t.oid = to_regtype(wanted.name)"
)


class VectorTypes:
    """pgvector's ``vector`` and ``halfvec`` types, taught to every new connection of one pool.

    ``pgvector.psycopg.register_vector_async`` looks up four types with a transaction each:
    12 round trips per new connection, the largest part of a cold start's database work.
    Here the catalogue is read with one statement, on the pool's first connection, and kept:
    an extension's type OIDs do not change while it stays installed (migrations never drop
    it), so later connections register without a round trip.

    Raises:
        psycopg.ProgrammingError: from ``register``, when the database has no ``vector``
            type (the extension is not installed: run the migrations).
    """

    def __init__(self) -> None:
        self._infos: dict[str, TypeInfo] | None = None

    async def register(self, conn: Connection) -> None:
        """Register the loaders and dumpers on ``conn`` (psycopg pool ``configure`` hook)."""
        if self._infos is None:
            async with conn.cursor(row_factory=tuple_row) as cur:
                rows = await (await cur.execute(_VECTOR_TYPES_SQL)).fetchall()
            infos = {
                name: TypeInfo(name, oid, array_oid, regtype=regtype, delimiter=delimiter)
                for name, oid, array_oid, regtype, delimiter in rows
            }
            if "vector" not in infos:  # not migrated yet: raise below, and look again next time
                register_vector_info(conn, None)
            self._infos = infos
        register_vector_info(conn, self._infos["vector"])
        if "halfvec" in self._infos:  # pgvector 0.7 and later
            register_halfvec_info(conn, self._infos["halfvec"])


class IdleCheck:
    """Checks a connection on checkout only when it has been idle longer than ``after_s``.

    Args:
        after_s: Idle time (seconds) after which a connection is checked before use; 0 checks
            every checkout but a new connection's first.
    """

    def __init__(self, after_s: float) -> None:
        self.after_s = after_s
        self._returned_at: weakref.WeakKeyDictionary[Connection, float] = weakref.WeakKeyDictionary()
        self._fresh: weakref.WeakSet[Connection] = weakref.WeakSet()

    def opened(self, conn: Connection) -> None:
        """A connection just made (pool ``configure``): its first checkout needs no check."""
        self._fresh.add(conn)

    async def returned(self, conn: Connection) -> None:
        """Pool ``reset`` hook: remember when the connection came back."""
        self._returned_at[conn] = time.monotonic()

    async def check(self, conn: Connection) -> None:
        """Pool ``check`` hook: raises if a connection idle for too long is dead."""
        if conn in self._fresh:
            self._fresh.discard(conn)
            return
        returned_at = self._returned_at.get(conn)
        if returned_at is not None and time.monotonic() - returned_at < self.after_s:
            return
        await AsyncConnectionPool.check_connection(conn)


def create_pool(settings: DatabaseSettings, *, secrets: SecretsSource | None = None) -> Pool:
    """Build (not open) the pool. Open it with ``await pool.open()`` on the container's loop.

    Args:
        settings: ``database_url`` or the secret settings (``core.db.credentials``),
            ``pool_min_size``, ``pool_max_size``, ``pool_timeout_s``, ``pool_check_after_s``
            (a process ``Settings`` is one).
        secrets: Where a secret is read from, and cached (``core.db.credentials.SecretConninfo``);
            a Powertools ``SecretsProvider`` is made when a secret is configured and none is given.

    Returns:
        An unopened pool yielding autocommit connections with dict rows.

    Raises:
        ConfigurationError: no database is configured.
    """
    idle_check = IdleCheck(settings.pool_check_after_s)
    vector_types = VectorTypes()

    async def configure(conn: Connection) -> None:
        await vector_types.register(conn)
        idle_check.opened(conn)

    # PipeliningPool: concurrent reads of a ``pipelined`` block share one round trip (core.db.pipelined).
    return PipeliningPool(
        database_conninfo(settings, secrets),
        # The class given as AsyncConnection[DictRow] is how psycopg_pool types the pool's rows.
        connection_class=AsyncConnection[DictRow],
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        timeout=settings.pool_timeout_s,
        open=False,
        kwargs={"autocommit": True, "prepare_threshold": None, "row_factory": dict_row},
        configure=configure,
        check=idle_check.check,
        reset=idle_check.returned,
        name="agent-runtime",
    )
