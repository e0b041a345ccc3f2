"""Tasks: work for ``TaskWorker``s, with the durable scheduler's columns, scoped by agent.

The elizaOS CRUD (``create_task`` ... ``delete_task``) writes only the columns a caller may
change (``TaskUpdate``). The scheduler's lease methods (``claim_due_tasks``, ``complete_task``,
``reschedule_task``, ``fail_task``, ``release_task``, ``recover_expired_task_leases``) are the
only writers of the lease columns. Their state machine::

    pending --claim--> running --complete--> (deleted)            one-off task succeeded
                               --reschedule--> pending            repeat task succeeded
                               --fail--> pending (retry later) | failed (attempts used up)
                               --release--> pending (as before)   validate said no / not started
                               --lease expired, recovered--> pending (retry later) | failed

Every transition out of ``running`` names the lease owner, so a runner that lost its lease
(it lapsed and another runner took the task) changes nothing.
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
from core.types.task import MAX_TASK_TEXT, first_run_delay_ms

_TASK_COLUMNS = (
    "id, agent_id, name, description, room_id, world_id, entity_id, tags, metadata, status, next_run_at,"
    " lease_owner, lease_expires_at, attempts, last_error, created_at, updated_at"
)
# The allow-list of columns update_task may set (TaskUpdate fields of the same names);
# metadata is merged, not set, and the lease columns are the scheduler's.
_UPDATABLE = (
    "name",
    "description",
    "room_id",
    "world_id",
    "entity_id",
    "tags",
    "status",
    "next_run_at",
    "attempts",
    "last_error",
)


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
            "id": task.id,
            "agent": task.agent_id,
            "name": task.name,
            "description": task.description,
            "room": task.room_id,
            "world": task.world_id,
            "entity": task.entity_id,
            "tags": task.tags,
            "metadata": metadata,
            "status": task.status.value,
            "next_run_at": None if task.next_run_at is None else from_ms(task.next_run_at, "next_run_at"),
            "delay_ms": None if task.next_run_at is not None else first_run_delay_ms(task),
            "lease_owner": task.lease_owner,
            "attempts": task.attempts,
            "last_error": task.last_error,
            "lease_expires_at": None
            if task.lease_expires_at is None
            else from_ms(task.lease_expires_at, "lease_expires_at"),
        }
        try:
            row = await self._fetch_row(_CREATE_TASK, params)
        except psycopg.errors.ForeignKeyViolation as exc:
            raise NotFoundError(f"no agent {task.agent_id}") from exc
        except psycopg.errors.CheckViolation as exc:
            raise ValueError(f"invalid task: {exc.diag.constraint_name}") from exc
        if row["inserted"] is not None or row["owner"] == task.agent_id:
            return task.id
        raise ValueError(f"task id {task.id} is already used")

    async def get_task(self, agent_id: UUID, id: UUID) -> Task | None:
        """The task, or ``None`` when this agent has no such task (elizaOS ``getTask``)."""
        row = await self._fetch_one(
            f"SELECT {_TASK_COLUMNS} FROM tasks WHERE agent_id = %s AND id = %s", (agent_id, id)
        )
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
        rows = await self._fetch_all(
            f"SELECT {_TASK_COLUMNS} FROM tasks WHERE agent_id = %(agent)s"
            " AND (%(room)s::uuid IS NULL OR room_id = %(room)s)"
            " AND (%(entity)s::uuid IS NULL OR entity_id = %(entity)s)"
            " AND (%(tags)s::text[] IS NULL OR tags @> %(tags)s::text[])"
            " ORDER BY created_at, id LIMIT %(limit)s",
            {
                "agent": agent_id,
                "room": room_id,
                "entity": entity_id,
                "tags": None if tags is None else list(tags),
                "limit": limit,
            },
        )
        return [_task_from_row(r) for r in rows]

    async def get_tasks_by_name(self, agent_id: UUID, name: str) -> list[Task]:
        """An agent's tasks with this exact name, oldest first (elizaOS ``getTasksByName``)."""
        rows = await self._fetch_all(
            f"SELECT {_TASK_COLUMNS} FROM tasks WHERE agent_id = %s AND name = %s ORDER BY created_at, id",
            (agent_id, name),
        )
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
        sets: list[sql.Composable] = [sql.SQL("updated_at = now()")]
        params: dict[str, Any] = {"agent": agent_id, "id": id}
        for field in _UPDATABLE:
            if field in given:
                sets.append(sql.SQL("{} = %({})s").format(sql.Identifier(field), sql.SQL(field)))
                params[field] = _column_value(field, getattr(update, field))
        if "metadata" in given:
            sets.append(sql.SQL("metadata = metadata || %(metadata)s::jsonb"))
            params["metadata"] = json_text(update.metadata, "task metadata", coerce=True)
        query = sql.SQL("UPDATE tasks SET {} WHERE agent_id = %(agent)s AND id = %(id)s").format(
            sql.SQL(", ").join(sets)
        )
        try:
            return await self._execute(query, params) == 1
        except psycopg.errors.CheckViolation as exc:
            raise ValueError(f"invalid task change: {exc.diag.constraint_name}") from exc

    async def delete_task(self, agent_id: UUID, id: UUID) -> bool:
        """Delete a task (elizaOS ``deleteTask``).

        Returns:
            True when this agent had it.
        """
        return await self._execute("DELETE FROM tasks WHERE agent_id = %s AND id = %s", (agent_id, id)) == 1

    # -- the scheduler's lease methods ---------------------------------------------------------

    async def claim_due_tasks(
        self,
        owner: str,
        workers: Sequence[tuple[UUID, str]],
        *,
        limit: int,
        lease_s: float,
        exclude: Sequence[UUID] = (),
    ) -> list[Task]:
        """Lease up to ``limit`` due tasks in one statement: ``FOR UPDATE SKIP LOCKED`` + ``UPDATE``.

        A task is due when it is ``pending``, tagged ``"queue"`` (elizaOS runs only those) and
        its ``next_run_at`` has passed (database clock). Only tasks whose (agent, name) is in
        ``workers`` are looked at: a task this deployment has no worker for is never touched.
        Rows another claimer holds are skipped, not waited for, and a row claimed and committed
        by another runner meanwhile fails the re-check of ``status = 'pending'``, so concurrent
        claimers never get the same task. Each claimed task becomes ``running`` with
        ``lease_owner = owner``, ``lease_expires_at = now() + lease_s`` and one more attempt.

        Not retried after a lost connection (it is not idempotent): should the commit have
        landed, the tasks stay leased until their lease lapses and are then recovered.

        Args:
            owner: This run's unique lease owner (written to ``lease_owner``).
            workers: (agent id, task name) pairs this deployment can run.
            limit: Most tasks to claim, 1 to ``MAX_PAGE_SIZE``.
            lease_s: Seconds the lease lasts; it must outlive the run (see ``core.tasks.runner``).
            exclude: Task ids not to claim (those this run already ran once).

        Returns:
            The claimed tasks as now stored, earliest due first.

        Raises:
            ValueError: invalid ``limit``, ``lease_s`` or ``owner``.
        """
        check_page(limit)
        _check_owner(owner)
        if not lease_s > 0:
            raise ValueError(f"lease_s must be a positive number of seconds, got {lease_s!r}")
        if not workers:
            return []
        params = {
            "owner": owner,
            "limit": limit,
            "lease_s": float(lease_s),
            "exclude": list(exclude),
            "agents": [agent for agent, _ in workers],
            "names": [name for _, name in workers],
        }
        rows = await self._fetch_all(_CLAIM_DUE_TASKS, params)
        tasks = [_task_from_row(r) for r in rows]
        tasks.sort(key=lambda t: (t.next_run_at or 0, str(t.id)))
        return tasks

    @idempotent  # guarded by the lease owner: a second run finds the task gone and changes nothing
    async def complete_task(self, agent_id: UUID, id: UUID, owner: str) -> bool:
        """Delete a one-off task after its successful run (elizaOS deletes it too).

        Returns:
            True when deleted; False when ``owner`` no longer holds the task (its lease lapsed
            and another runner took it, or it was deleted meanwhile).
        """
        _check_owner(owner)
        return (
            await self._execute(
                "DELETE FROM tasks WHERE agent_id = %s AND id = %s AND status = 'running' AND lease_owner = %s",
                (agent_id, id, owner),
            )
            == 1
        )

    @idempotent  # guarded by the lease owner: a second run changes nothing
    async def reschedule_task(self, agent_id: UUID, id: UUID, owner: str, *, elapsed_ms: int = 0) -> bool:
        """Put a repeat task back after a successful run, due one ``updateInterval`` after it started.

        elizaOS counts the interval from the start of the run; so does this: the next run is
        ``updateInterval - elapsed_ms`` from now (at once if the run took longer). The interval
        is read from the stored metadata, so a worker that changed it during its run is obeyed.
        Attempts and the last error are cleared.

        Args:
            agent_id: Owner of the task.
            id: The task.
            owner: The lease owner that ran it.
            elapsed_ms: How long the run took, in ms.

        Returns:
            True when rescheduled; False when ``owner`` no longer holds the task.
        """
        _check_owner(owner)
        return (
            await self._execute(
                _RESCHEDULE_TASK, {"agent": agent_id, "id": id, "owner": owner, "elapsed_ms": max(0, int(elapsed_ms))}
            )
            == 1
        )

    @idempotent  # guarded by the lease owner: a second run changes nothing
    async def fail_task(self, agent_id: UUID, id: UUID, owner: str, error: str, *, retry_in_ms: int | None) -> bool:
        """Record a failed run: retry later, or mark the task ``failed`` for good.

        Args:
            agent_id: Owner of the task.
            id: The task.
            owner: The lease owner that ran it.
            error: Why it failed (stored in ``last_error``; cut to ``MAX_TASK_TEXT``, NUL removed).
            retry_in_ms: Run again this many ms from now; ``None`` marks the task ``failed``
                (never run again until someone sets it back to ``pending``).

        Returns:
            True when recorded; False when ``owner`` no longer holds the task.
        """
        _check_owner(owner)
        return (
            await self._execute(
                _FAIL_TASK,
                {
                    "agent": agent_id,
                    "id": id,
                    "owner": owner,
                    "error": _error_text(error),
                    "retry_ms": None if retry_in_ms is None else max(0, int(retry_in_ms)),
                },
            )
            == 1
        )

    @idempotent  # guarded by the lease owner: a second run changes nothing
    async def release_task(self, agent_id: UUID, id: UUID, owner: str) -> bool:
        """Hand a claimed task back as it was: ``pending``, same due time, the attempt not counted.

        Used when the worker's ``validate`` said no, or the run ended before the task started.

        Returns:
            True when released; False when ``owner`` no longer holds the task.
        """
        _check_owner(owner)
        return (
            await self._execute(
                "UPDATE tasks SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL,"
                " attempts = greatest(attempts - 1, 0), updated_at = now()"
                " WHERE agent_id = %s AND id = %s AND status = 'running' AND lease_owner = %s",
                (agent_id, id, owner),
            )
            == 1
        )

    @idempotent  # a second run finds no lapsed lease left
    async def recover_expired_task_leases(
        self,
        agent_ids: Sequence[UUID],
        *,
        max_attempts: int,
        retry_base_delay_ms: int,
        retry_max_delay_ms: int,
        limit: int = 100,
    ) -> list[Task]:
        """Take back tasks whose runner died (crash, kill, timeout) before finishing.

        A lapsed lease counts as a failed attempt: the task becomes ``pending`` again, due
        after the same backoff a failure gets (``base × 2^(attempts-1)``, at most the maximum),
        or ``failed`` once ``max_attempts`` runs were started, so a task that kills its runner
        every time stops after ``max_attempts``. ``last_error`` says what happened.

        Args:
            agent_ids: Agents of this deployment (only their tasks are looked at).
            max_attempts: Runs allowed before a task is marked failed.
            retry_base_delay_ms: Backoff before the first retry, ms.
            retry_max_delay_ms: Longest backoff, ms.
            limit: Most tasks taken back in this call, 1 to ``MAX_PAGE_SIZE``.

        Returns:
            The tasks taken back, as now stored.

        Raises:
            ValueError: invalid ``limit``, ``max_attempts`` or delays.
        """
        check_page(limit)
        if max_attempts < 1 or not 0 <= retry_base_delay_ms <= retry_max_delay_ms:
            raise ValueError("need max_attempts >= 1 and 0 <= retry_base_delay_ms <= retry_max_delay_ms")
        if not agent_ids:
            return []
        rows = await self._fetch_all(
            _RECOVER_EXPIRED,
            {
                "agents": list(agent_ids),
                "max_attempts": max_attempts,
                "limit": limit,
                "base_ms": float(retry_base_delay_ms),
                "max_ms": float(retry_max_delay_ms),
                "error": LEASE_EXPIRED_ERROR,
            },
        )
        return [_task_from_row(r) for r in rows]

    async def count_due_tasks_without_worker(
        self, agent_ids: Sequence[UUID], workers: Sequence[tuple[UUID, str]], *, scan_limit: int = 1000
    ) -> dict[tuple[UUID, str], int]:
        """Due ``"queue"`` tasks of these agents that no worker of ``workers`` can run.

        The runner leaves them alone; this read lets it say so in a warning.

        Args:
            agent_ids: Agents of this deployment.
            workers: (agent id, task name) pairs this deployment can run.
            scan_limit: Most due tasks looked at (bounds the read), 1 to ``MAX_PAGE_SIZE``.

        Returns:
            Count of such tasks by (agent id, task name).
        """
        check_page(scan_limit)
        if not agent_ids:
            return {}
        rows = await self._fetch_all(
            _DUE_WITHOUT_WORKER,
            {
                "agents": list(agent_ids),
                "scan": scan_limit,
                "w_agents": [agent for agent, _ in workers],
                "w_names": [name for _, name in workers],
            },
        )
        return {(r["agent_id"], r["name"]): r["n"] for r in rows}


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


#: ``last_error`` of a task whose lease lapsed while it was running.
LEASE_EXPIRED_ERROR = "lease expired: the runner stopped (crash, kill or timeout) before the task finished"
_TASK_COLUMNS_T = ", ".join(f"t.{c.strip()}" for c in _TASK_COLUMNS.split(","))


def _check_owner(owner: str) -> None:
    if not isinstance(owner, str) or not owner or len(owner) > 200 or "\x00" in owner:
        raise ValueError("owner must be a string of 1 to 200 characters without NUL")


def _error_text(error: str) -> str:
    # last_error is text: no NUL, and bounded like the other task texts.
    text = str(error).replace("\x00", "")
    return text if len(text) <= MAX_TASK_TEXT else text[: MAX_TASK_TEXT - 1] + "\u2026"


# Backoff after ``attempts`` runs: base x 2^(attempts-1), at most max (the exponent is capped so
# power() cannot overflow). Same rule as TaskRunnerSettings.retry_delay_ms.
_BACKOFF = (
    "make_interval(secs => least(%(max_ms)s::float8,"
    " %(base_ms)s::float8 * power(2, least(greatest(t.attempts - 1, 0), 30))) / 1000)"
)

# One statement: the CTE picks and locks due rows on the tasks_due index (status, next_run_at),
# skipping rows other claimers hold; a row committed by another claimer meanwhile is re-checked
# (READ COMMITTED re-evaluates the WHERE on the new version) and dropped as no longer pending.
# The UPDATE then leases what was locked, and the locks go at the statement's commit.
_CLAIM_DUE_TASKS = f"""
WITH due AS (
    SELECT t.id FROM tasks t
     WHERE t.status = 'pending' AND t.next_run_at <= now() AND 'queue' = ANY (t.tags)
       AND (t.agent_id, t.name) IN (SELECT w.agent_id, w.name
                                      FROM unnest(%(agents)s::uuid[], %(names)s::text[]) AS w(agent_id, name))
       AND t.id <> ALL (%(exclude)s::uuid[])
     ORDER BY t.next_run_at, t.id
     LIMIT %(limit)s
       FOR UPDATE OF t SKIP LOCKED
)
UPDATE tasks t
   SET status = 'running', lease_owner = %(owner)s,
       lease_expires_at = now() + make_interval(secs => %(lease_s)s),
       attempts = t.attempts + 1, updated_at = now()
  FROM due
 WHERE t.id = due.id
RETURNING {_TASK_COLUMNS_T}
"""

_RESCHEDULE_TASK = """
UPDATE tasks
   SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL, attempts = 0, last_error = NULL,
       next_run_at = now() + make_interval(secs => greatest(
           CASE WHEN jsonb_typeof(metadata -> 'updateInterval') = 'number'
                THEN (metadata ->> 'updateInterval')::float8 ELSE 0 END - %(elapsed_ms)s, 0) / 1000),
       updated_at = now()
 WHERE agent_id = %(agent)s AND id = %(id)s AND status = 'running' AND lease_owner = %(owner)s
"""

_FAIL_TASK = """
UPDATE tasks
   SET status = CASE WHEN %(retry_ms)s::bigint IS NULL THEN 'failed' ELSE 'pending' END,
       lease_owner = NULL, lease_expires_at = NULL, last_error = %(error)s,
       next_run_at = CASE WHEN %(retry_ms)s::bigint IS NULL THEN next_run_at
                          ELSE now() + make_interval(secs => %(retry_ms)s::bigint / 1000.0) END,
       updated_at = now()
 WHERE agent_id = %(agent)s AND id = %(id)s AND status = 'running' AND lease_owner = %(owner)s
"""

# On the tasks_lease_expired index; SKIP LOCKED so two recovering runners split the work.
_RECOVER_EXPIRED = f"""
WITH lapsed AS (
    SELECT id FROM tasks
     WHERE status = 'running' AND lease_expires_at <= now() AND agent_id = ANY (%(agents)s::uuid[])
     ORDER BY lease_expires_at
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
)
UPDATE tasks t
   SET status = CASE WHEN t.attempts >= %(max_attempts)s THEN 'failed' ELSE 'pending' END,
       next_run_at = CASE WHEN t.attempts >= %(max_attempts)s THEN t.next_run_at ELSE now() + {_BACKOFF} END,
       lease_owner = NULL, lease_expires_at = NULL, last_error = %(error)s, updated_at = now()
  FROM lapsed
 WHERE t.id = lapsed.id
RETURNING {_TASK_COLUMNS_T}
"""

_DUE_WITHOUT_WORKER = """
SELECT agent_id, name, count(*) AS n FROM (
    SELECT t.agent_id, t.name FROM tasks t
     WHERE t.status = 'pending' AND t.next_run_at <= now() AND 'queue' = ANY (t.tags)
       AND t.agent_id = ANY (%(agents)s::uuid[])
       AND NOT EXISTS (SELECT 1 FROM unnest(%(w_agents)s::uuid[], %(w_names)s::text[]) AS w(agent_id, name)
                        WHERE w.agent_id = t.agent_id AND w.name = t.name)
     LIMIT %(scan)s
) due
GROUP BY agent_id, name
"""
