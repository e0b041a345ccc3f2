"""GET /health's database check survives a pooled connection the server ended while it idled."""

from __future__ import annotations

import psycopg
import pytest

from core.db.pool import create_pool
from core.settings import Settings
from functions.api.health import database_health


async def test_health_answers_after_the_server_killed_the_idle_pooled_connection(database_url) -> None:
    # A connection idle for less than DB_POOL_CHECK_AFTER_S is handed out unchecked.
    pool = create_pool(Settings(database_url=database_url, pool_max_size=1, pool_check_after_s=3600))
    await pool.open()
    try:
        first = await database_health(pool)
        async with pool.connection() as conn:
            pid = (await (await conn.execute("SELECT pg_backend_pid() AS pid")).fetchone())["pid"]
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as admin:
            await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

        second = await database_health(pool)
    finally:
        await pool.close()

    assert first.postgres == second.postgres and second.schema_current


async def test_a_database_that_stays_down_still_raises(database_url) -> None:
    pool = create_pool(Settings(database_url="postgresql://nobody@127.0.0.1:9/none", pool_max_size=1))
    await pool.open()
    try:
        with pytest.raises(psycopg.Error):
            await database_health(pool)
    finally:
        await pool.close()
