"""Logs: the agent's audit trail (model usage, actions...), scoped by agent.

Inserts are keyed by the log's id and skip ids already stored, so a retried write (after a
lost connection, or an SQS redelivery) never duplicates a log.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from core.db.postgres.base import PostgresBase
from core.db.postgres.values import check_name, check_page, from_ms, json_text, to_ms
from core.db.retry import idempotent
from core.errors import NotFoundError
from core.types import Log

_LOG_COLUMNS = "id, agent_id, entity_id, room_id, type, body, created_at"


def _log_from_row(row: dict[str, Any]) -> Log:
    return Log(
        id=row["id"],
        agent_id=row["agent_id"],
        entity_id=row["entity_id"],
        room_id=row["room_id"],
        type=row["type"],
        body=row["body"],
        created_at=to_ms(row["created_at"]),
    )


def log_insert_columns(entries: Sequence[Log]) -> tuple[list[Any], ...]:
    """The entries as column arrays for ``unnest``, validated before any SQL runs."""
    columns: tuple[list[Any], ...] = ([], [], [], [], [], [], [])
    for entry in entries:
        check_name(entry.type, "log type")
        # coerce: UUIDs, datetimes... in a body become strings; NaN and NUL are still refused
        # (pydantic's own JSON dump would turn NaN into null without a word).
        values = (
            entry.id,
            entry.agent_id,
            entry.entity_id,
            entry.room_id,
            str(entry.type),
            json_text(entry.body, "log body", coerce=True),
            from_ms(entry.created_at, "created_at"),
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    return columns


LOG_INSERT = (
    "INSERT INTO logs (id, agent_id, entity_id, room_id, type, body, created_at)"
    " SELECT id, agent_id, entity_id, room_id, type, body::jsonb, created_at"
    " FROM unnest(%s::uuid[], %s::uuid[], %s::uuid[], %s::uuid[], %s::text[], %s::text[], %s::timestamptz[])"
    "   AS b(id, agent_id, entity_id, room_id, type, body, created_at)"
    " ON CONFLICT (id) DO NOTHING"
)


class LogsMixin(PostgresBase):
    @idempotent  # ids already stored are skipped
    async def log(self, entry: Log) -> UUID:
        """Write one log (elizaOS ``log``).

        Args:
            entry: The log; its ``agent_id`` scopes it.

        Returns:
            The log's id (also when it was already stored by an earlier attempt).

        Raises:
            NotFoundError: no such agent.
            ValueError: invalid type or a body that is not JSON.
        """
        await self.log_many([entry])
        return entry.id

    @idempotent  # ids already stored are skipped
    async def log_many(self, entries: Sequence[Log]) -> int:
        """Write many logs in one statement (``unnest`` of column arrays).

        Args:
            entries: The logs, of one agent or several.

        Returns:
            How many were written (ids already stored are skipped).

        Raises:
            NotFoundError: an entry's agent does not exist (nothing is written).
            ValueError: an invalid type or a body that is not JSON (nothing is written).
        """
        if not entries:
            return 0
        columns = log_insert_columns(entries)
        try:
            return await self._execute(LOG_INSERT, columns)
        except psycopg.errors.ForeignKeyViolation as exc:
            raise NotFoundError("a log's agent does not exist") from exc

    async def get_logs(
        self,
        agent_id: UUID,
        *,
        entity_id: UUID | None = None,
        room_id: UUID | None = None,
        type: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Log]:
        """An agent's logs, newest first (elizaOS ``getLogs``).

        Args:
            agent_id: Owner of the logs.
            entity_id: Only logs about this entity.
            room_id: Only logs of this room.
            type: Only logs of this type (``"useModel"``...).
            limit: Page size, 1 to ``MAX_PAGE_SIZE``.
            offset: Logs to skip (elizaOS's paging; logs are read in small pages).

        Raises:
            ValueError: invalid ``type``, ``limit`` or ``offset``.
        """
        check_page(limit, offset)
        where = [sql.SQL("agent_id = %(agent)s")]
        params: dict[str, Any] = {"agent": agent_id, "limit": limit, "offset": offset}
        if type is not None:
            params["type"] = check_name(type, "log type")
            where.append(sql.SQL("type = %(type)s"))
        if entity_id is not None:
            params["entity"] = entity_id
            where.append(sql.SQL("entity_id = %(entity)s"))
        if room_id is not None:
            params["room"] = room_id
            where.append(sql.SQL("room_id = %(room)s"))
        query = sql.SQL(
            "SELECT {} FROM logs WHERE {} ORDER BY created_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s"
        ).format(sql.SQL(_LOG_COLUMNS), sql.SQL(" AND ").join(where))
        rows = await self._fetch_all(query, params)
        return [_log_from_row(r) for r in rows]

    async def delete_log(self, agent_id: UUID, id: UUID) -> bool:
        """Delete one log (elizaOS ``deleteLog``).

        Returns:
            True when this agent had it.
        """
        return await self._execute("DELETE FROM logs WHERE agent_id = %s AND id = %s", (agent_id, id)) == 1
