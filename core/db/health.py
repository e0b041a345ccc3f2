"""The database as ``GET /health`` reports it: reachable, how fast, versions, and whether the schema is current."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

_HEALTH_SQL = (
    "SELECT current_setting('server_version') AS postgres,"
    " (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS pgvector,"
    " (SELECT name FROM schema_migrations WHERE namespace = 'core' ORDER BY version DESC LIMIT 1) AS schema"
)
_HEALTH_SQL_UNMIGRATED = (
    "SELECT current_setting('server_version') AS postgres,"
    " (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS pgvector, NULL::text AS schema"
)


@dataclass(frozen=True)
class DatabaseHealth:
    """One round trip's findings.

    Attributes:
        latency_ms: Checkout plus query, in milliseconds (one decimal).
        schema_current: The newest core migration applied is at least the newest this code ships.
        postgres: The server's version (``server_version``).
        pgvector: The ``vector`` extension's version, ``None`` when not installed.
        schema: The newest core migration applied (``NNNN_name.sql``), ``None`` when never migrated.
    """

    latency_ms: float
    schema_current: bool
    postgres: str
    pgvector: str | None
    schema: str | None


async def check_database(pool: AsyncConnectionPool[Any], timeout_s: float) -> DatabaseHealth:
    """One query through the pool: versions and the newest core migration applied.

    Args:
        pool: The process's pool (its rows are dicts).
        timeout_s: Longest wait for a pooled connection, in seconds.

    Raises:
        psycopg.Error: the database did not answer (``PoolTimeout`` is one).
    """
    started = time.perf_counter()
    async with pool.connection(timeout=timeout_s) as conn:
        try:
            row = await (await conn.execute(_HEALTH_SQL)).fetchone()
        except psycopg.errors.UndefinedTable:  # reachable, but never migrated
            row = await (await conn.execute(_HEALTH_SQL_UNMIGRATED)).fetchone()
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    assert row is not None  # a SELECT without FROM returns one row
    applied = row["schema"]
    # The schema may be ahead of the code (migrations run before a deploy's code): only behind is stale.
    current = applied is not None and applied[:4] >= expected_schema()[:4]
    return DatabaseHealth(
        latency_ms=latency_ms,
        schema_current=current,
        postgres=row["postgres"],
        pgvector=row["pgvector"],
        schema=applied,
    )


@functools.cache
def expected_schema() -> str:
    """The newest core migration this code ships (``NNNN_name.sql``)."""
    from core.db.migrations import core_migrations

    return core_migrations()[-1].name
