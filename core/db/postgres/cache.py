"""Cache: JSON values by key, per agent, with an optional time to live.

Expiry is checked in SQL against the database clock (``now()``), never the Lambda's, so
every container agrees on what has expired. An expired row is invisible to ``get_cache`` at
once and deleted later by the scheduled sweep (``delete_expired_cache``).
"""

from __future__ import annotations

import math
from typing import Any
from uuid import UUID

import psycopg

from core.db.postgres.base import PostgresBase
from core.db.postgres.values import check_name, check_page, json_text
from core.db.retry import idempotent
from core.errors import NotFoundError

#: Longest time to live (100 years, in seconds): anything longer is a mistake, not a TTL.
MAX_TTL_S = 100 * 365 * 24 * 3600


def _check_ttl(ttl_s: float | None) -> float | None:
    if ttl_s is None:
        return None
    if (
        isinstance(ttl_s, bool)
        or not isinstance(ttl_s, int | float)
        or not math.isfinite(ttl_s)
        or not 0 < ttl_s <= MAX_TTL_S
    ):
        raise ValueError(f"ttl_s must be a number of seconds in (0, {MAX_TTL_S}], got {ttl_s!r}")
    return float(ttl_s)


class CacheMixin(PostgresBase):
    async def get_cache(self, agent_id: UUID, key: str) -> Any | None:
        """The value stored under ``key`` (elizaOS ``getCache``).

        Args:
            agent_id: Owner of the cache entry.
            key: The key.

        Returns:
            The JSON value; ``None`` when missing or expired (a stored JSON ``null`` reads as
            ``None`` too).

        Raises:
            ValueError: invalid ``key``.
        """
        check_name(key, "cache key")
        row = await self._fetch_one(
            "SELECT value FROM cache WHERE agent_id = %s AND key = %s AND (expires_at IS NULL OR expires_at > now())",
            (agent_id, key),
        )
        return row["value"] if row else None

    @idempotent  # an upsert: writing the same value twice leaves one row
    async def set_cache(self, agent_id: UUID, key: str, value: Any, ttl_s: float | None = None) -> None:
        """Store ``value`` under ``key``, replacing any value and expiry (elizaOS ``setCache``).

        Args:
            agent_id: Owner of the cache entry.
            key: The key (1 to ``MAX_NAME_LENGTH`` characters).
            value: Any JSON value (dict, list, str, number, bool, None).
            ttl_s: Seconds until the entry expires; ``None``: never.

        Raises:
            NotFoundError: no such agent.
            ValueError: invalid ``key`` or ``ttl_s``, or ``value`` is not JSON.
        """
        check_name(key, "cache key")
        ttl = _check_ttl(ttl_s)
        text = json_text(value, "cache value")
        try:
            await self._execute(
                "INSERT INTO cache (agent_id, key, value, expires_at)"
                " VALUES (%s, %s, %s::jsonb, now() + make_interval(secs => %s))"
                " ON CONFLICT (agent_id, key) DO UPDATE SET value = excluded.value,"
                "   expires_at = excluded.expires_at, updated_at = now()",
                (agent_id, key, text, ttl),
            )
        except psycopg.errors.ForeignKeyViolation as exc:
            raise NotFoundError(f"no agent {agent_id}") from exc

    async def delete_cache(self, agent_id: UUID, key: str) -> bool:
        """Delete the entry under ``key`` (elizaOS ``deleteCache``).

        Returns:
            True when this agent had it (expired or not).

        Raises:
            ValueError: invalid ``key``.
        """
        check_name(key, "cache key")
        return await self._execute("DELETE FROM cache WHERE agent_id = %s AND key = %s", (agent_id, key)) == 1

    @idempotent  # deleting expired rows again deletes nothing more
    async def delete_expired_cache(self, limit: int = 1000) -> int:
        """Delete up to ``limit`` expired entries, of every agent: the scheduled sweep.

        Deliberately not scoped by agent: the sweep serves the deployment. Bounded per call
        so one run stays short; rows locked by a concurrent writer or sweep are skipped
        (``SKIP LOCKED``), and a row refreshed meanwhile is re-checked and kept.

        Args:
            limit: Most rows to delete in this call, 1 to ``MAX_PAGE_SIZE``.

        Returns:
            Rows deleted; ``limit`` means more may remain (call again).

        Raises:
            ValueError: invalid ``limit``.
        """
        check_page(limit)
        return await self._execute(
            "WITH expired AS ("
            "  SELECT agent_id, key FROM cache WHERE expires_at <= now()"
            "  ORDER BY expires_at LIMIT %s FOR UPDATE SKIP LOCKED)"
            " DELETE FROM cache c USING expired e WHERE c.agent_id = e.agent_id AND c.key = e.key",
            (limit,),
        )
