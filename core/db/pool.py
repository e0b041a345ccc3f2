"""The process-wide connection pool, opened once in the Lambda init phase.

Why these defaults (DESIGN.md "Pool for Lambda"): a Lambda container runs one event at a
time, so one connection is enough (``max_size=1``) and none is held while frozen
(``min_size=0``); ``prepare_threshold=None`` keeps RDS Proxy / PgBouncer in transaction mode
working (no server-side prepared statements); autocommit plus explicit transactions keeps
no session state that would pin a proxy connection; ``check`` replaces a connection that
died while the container was frozen before it is handed out.

One pool per process: the container opens it in the init phase and ``Container.close()`` (process
shutdown) is the only code that closes it; adapters and runtimes share it and never close it.
Transient errors met while using it (lost connections, deadlocks, pool timeouts) are typed and,
where safe, retried by ``core.db.retry``.
"""

from __future__ import annotations

from pgvector.psycopg import register_vector_async
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from core.settings import Settings


async def _configure(conn: AsyncConnection) -> None:
    # Teaches this connection the pgvector types (one catalogue lookup per new connection).
    await register_vector_async(conn)


def create_pool(settings: Settings) -> AsyncConnectionPool:
    """Build (not open) the pool. Open it with ``await pool.open()`` on the container's loop.

    Args:
        settings: ``database_url``, ``pool_min_size``, ``pool_max_size``, ``pool_timeout_s``.

    Returns:
        An unopened ``AsyncConnectionPool`` yielding autocommit connections with dict rows.
    """
    return AsyncConnectionPool(
        settings.database_url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        timeout=settings.pool_timeout_s,
        open=False,
        kwargs={"autocommit": True, "prepare_threshold": None, "row_factory": dict_row},
        configure=_configure,
        check=AsyncConnectionPool.check_connection,
        name="agent-runtime",
    )
