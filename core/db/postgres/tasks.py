"""Tasks: work for ``TaskWorker``s, with the durable scheduler's columns, scoped by agent.

This module stores and reads tasks; leasing due tasks (``FOR UPDATE SKIP LOCKED`` on the
``tasks_due`` index) belongs to the scheduler. Only the columns an ``update_task`` caller may
change are writable here (``TaskUpdate``): the lease columns are the scheduler's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from core.db.postgres.base import PostgresBase
from core.db.postgres.values import check_page, from_ms, json_text, to_ms
from core.db.retry import idempotent
from core.errors import NotFoundError
from core.types import Task, TaskUpdate
from core.types.task import first_run_delay_ms

_TASK_COLUMNS = (
    "id, agent_id, name, description, room_id, world_id, entity_id, tags, metadata, status, next_run_at,"
    " lease_owner, lease_expires_at, attempts, last_error, created_at, updated_at"
)
# The allow-list of columns update_task may set (TaskUpdate fields of the same names);
# metadata is merged, not set, and the lease columns are the scheduler's.
_UPDATABLE = ("name", "description", "room_id", "world_id", "entity_id", "tags", "status", "next_run_at",
              "attempts", "last_error")


def _optional_ms(moment: Any) -> int | None:
    return None if moment is None else to_ms(moment)


def _task_from_row(row: dict[str, Any]) -> Task:
    for column in ("next_run_at", "lease_expires_at", "created_at", "updated_at"):
        row[column] = _optional_ms(row[column])
    return Task.model_validate(row)


class TasksMixin(PostgresBase):
    @idempotent  # a re-run finds its own row (same id) and returns it
    async def create_task(self, task: Task) -> UUID:
        """Store a new task (elizaOS ``createTask``).

        ``next_run_at`` defaults from elizaOS's rules (``first_run_delay_ms``), counted from
        the database clock: not tagged ``"queue"`` → never run by the scheduler; ``"repeat"``
        → after one ``update_interval`` (at once with ``"immediate"``); otherwise at once.

        Args:
            task: The task; its ``agent_id`` scopes it.

        Returns:
            The task's id (also when an earlier attempt already stored it).

        Raises:
            NotFoundError: no such agent.
            ValueError: the id belongs to another agent's task, or the scheduler state is
                inconsistent (``running`` without a lease).
        """
        metadata = json_text(task.metadata.model_dump(by_alias=True, exclude_none=True), "task metadata", coerce=True)
        params = {
            "id": task.id, "agent": task.agent_id, "name": task.name, "description": task.description,
            "room": task.room_id, "world": task.world_id, "entity": task.entity_id, "tags": task.tags,
            "metadata": metadata, "status": task.status.value,
            "next_run_at": None if task.next_run_at is None else from_ms(task.next_run_at, "next_run_at"),
            "delay_ms": None if task.next_run_at is not None else first_run_delay_ms(task),
            "lease_owner": task.lease_owner, "attempts": task.attempts, "last_error": task.last_error,
            "lease_expires_at": None if task.lease_expires_at is None
            else from_ms(task.lease_expires_at, "lease_expires_at"),
        }
        try:
            async with self.pool.connection() as conn:
                row = await (await conn.execute(_CREATE_TASK, params)).fetchone()
        except psycopg.errors.ForeignKeyViolation as exc:
            raise NotFoundError(f"no agent {task.agent_id}") from exc
        except psycopg.errors.CheckViolation as exc:
            raise ValueError(f"invalid task: {exc.diag.constraint_name}") from exc
        if row["inserted"] is not None or row["owner"] == task.agent_id:
            return task.id
        raise ValueError(f"task id {task.id} is already used")

    async def get_task(self, agent_id: UUID, id: UUID) -> Task | None:
        """The task, or ``None`` when this agent has no such task (elizaOS ``getTask``)."""
        async with self.pool.connection() as conn:
            row = await (
                await conn.execute(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE agent_id = %s AND id = %s",
                                   (agent_id, id))
            ).fetchone()
        return _task_from_row(row) if row else None

    async def get_tasks(
        self,
        agent_id: UUID,
        *,
        room_id: UUID | None = None,
        tags: Sequence[str] | None = None,
        entity_id: UUID | None = None,
        limit: int = 500,
    ) -> list[Task]:
        """An agent's tasks, oldest first (elizaOS ``getTasks``).

        Args:
            agent_id: Owner of the tasks.
            room_id: Only tasks of this room.
            tags: Only tasks having all these tags (an empty list matches every task).
            entity_id: Only tasks about this entity.
            limit: Most tasks, 1 to ``MAX_PAGE_SIZE``.

        Raises:
            ValueError: invalid ``limit`` or ``tags`` (a bare string is refused: it would
                otherwise be read as a list of characters).
        """
        check_page(limit)
        if isinstance(tags, str):
            raise ValueError("tags must be a list of strings, not a string")
        async with self.pool.connection() as conn:
            rows = await (
                await conn.execute(
                    f"SELECT {_TASK_COLUMNS} FROM tasks WHERE agent_id = %(agent)s"
                    " AND (%(room)s::uuid IS NULL OR room_id = %(room)s)"
                    " AND (%(entity)s::uuid IS NULL OR entity_id = %(entity)s)"
                    " AND (%(tags)s::text[] IS NULL OR tags @> %(tags)s::text[])"
                    " ORDER BY created_at, id LIMIT %(limit)s",
                    {"agent": agent_id, "room": room_id, "entity": entity_id,
                     "tags": None if tags is None else list(tags), "limit": limit},
                )
            ).fetchall()
        return [_task_from_row(r) for r in rows]

    async def get_tasks_by_name(self, agent_id: UUID, name: str) -> list[Task]:
        """An agent's tasks with this exact name, oldest first (elizaOS ``getTasksByName``)."""
        async with self.pool.connection() as conn:
            rows = await (
                await conn.execute(
                    f"SELECT {_TASK_COLUMNS} FROM tasks WHERE agent_id = %s AND name = %s ORDER BY created_at, id",
                    (agent_id, name),
                )
            ).fetchall()
        return [_task_from_row(r) for r in rows]

    @idempotent  # the same values and the same merged keys, written twice, change nothing more
    async def update_task(self, agent_id: UUID, id: UUID, changes: TaskUpdate | Mapping[str, Any]) -> bool:
        """Change some fields of a task (elizaOS ``updateTask``).

        Only the fields given are written; ``metadata`` is merged shallowly into the stored
        object. ``updated_at`` is set to now. Changing ``update_interval`` does not move
        ``next_run_at``: pass ``next_run_at`` too to reschedule.

        Args:
            agent_id: Owner of the task.
            id: The task.
            changes: ``TaskUpdate`` or a mapping of its fields (snake_case or camelCase).

        Returns:
            True when the task was updated; False when this agent has no such task.

        Raises:
            ValueError: an unknown or read-only field (lease columns), an invalid value, no
                field at all, or a status the schema refuses (``running`` without a lease).
        """
        update = changes if isinstance(changes, TaskUpdate) else TaskUpdate.model_validate(dict(changes))
        given = update.model_fields_set
        if not given:
            raise ValueError("update_task needs at least one field to change")
        sets = [sql.SQL("updated_at = now()")]
        params: dict[str, Any] = {"agent": agent_id, "id": id}
        for field in _UPDATABLE:
            if field in given:
                sets.append(sql.SQL("{} = %({})s").format(sql.Identifier(field), sql.SQL(field)))
                params[field] = _column_value(field, getattr(update, field))
        if "metadata" in given:
            sets.append(sql.SQL("metadata = metadata || %(metadata)s::jsonb"))
            params["metadata"] = json_text(update.metadata, "task metadata", coerce=True)
        query = sql.SQL("UPDATE tasks SET {} WHERE agent_id = %(agent)s AND id = %(id)s").format(
            sql.SQL(", ").join(sets))
        try:
            async with self.pool.connection() as conn:
                cur = await conn.execute(query, params)
        except psycopg.errors.CheckViolation as exc:
            raise ValueError(f"invalid task change: {exc.diag.constraint_name}") from exc
        return cur.rowcount == 1

    async def delete_task(self, agent_id: UUID, id: UUID) -> bool:
        """Delete a task (elizaOS ``deleteTask``).

        Returns:
            True when this agent had it.
        """
        async with self.pool.connection() as conn:
            cur = await conn.execute("DELETE FROM tasks WHERE agent_id = %s AND id = %s", (agent_id, id))
            return cur.rowcount == 1


def _column_value(field: str, value: Any) -> Any:
    """A ``TaskUpdate`` value as its column's parameter."""
    if field == "status":
        return value.value
    if field == "next_run_at":
        return None if value is None else from_ms(value, "next_run_at")
    if field == "tags":
        return list(value)
    return value


# Insert unless the id exists; "owner" (on the statement's snapshot) tells a retried insert
# of this agent's own task from an id that belongs to someone else.
_CREATE_TASK = """
WITH ins AS (
    INSERT INTO tasks (id, agent_id, name, description, room_id, world_id, entity_id, tags, metadata, status,
                       next_run_at, lease_owner, lease_expires_at, attempts, last_error)
    VALUES (%(id)s, %(agent)s, %(name)s, %(description)s, %(room)s, %(world)s, %(entity)s, %(tags)s::text[],
            %(metadata)s::jsonb, %(status)s,
            coalesce(%(next_run_at)s::timestamptz, now() + make_interval(secs => %(delay_ms)s::float8 / 1000)),
            %(lease_owner)s, %(lease_expires_at)s, %(attempts)s, %(last_error)s)
    ON CONFLICT (id) DO NOTHING
    RETURNING id
)
SELECT (SELECT id FROM ins) AS inserted, (SELECT agent_id FROM tasks WHERE id = %(id)s) AS owner
"""
