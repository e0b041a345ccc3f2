"""Tasks (elizaOS ``Task`` in ``types/task.ts``) with the durable scheduler's state.

A task is work for a ``TaskWorker`` of the same ``name``. elizaOS semantics: only tasks
tagged ``"queue"`` are run by the scheduler; ``"repeat"`` tasks run every
``metadata.update_interval`` ms (the first run after one interval unless also tagged
``"immediate"``); other queued tasks run once. Here the scheduler reads ``next_run_at``
instead of scanning every task, so a task created without ``next_run_at`` gets one from
those rules (see ``first_run_delay_ms``).
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import ConfigDict, Field, field_validator, model_validator

from core.types._base import ElizaModel

#: Longest task name, tag and description the adapter accepts (characters).
MAX_TASK_TEXT = 1000


class TaskStatus(StrEnum):
    """Where a task is in the durable scheduler."""

    PENDING = "pending"
    RUNNING = "running"
    FAILED = "failed"


class TaskOption(ElizaModel):
    """A choice offered to people for this task (elizaOS ``metadata.options[]``)."""

    name: str
    description: str


class TaskMetadata(ElizaModel):
    """elizaOS ``TaskMetadata``: open-ended; the scheduler reads ``update_interval``.

    Attributes:
        update_interval: For ``"repeat"`` tasks, milliseconds between runs.
        options: Choices offered to people (approval flows).
    """

    update_interval: int | None = Field(default=None, gt=0)
    options: list[TaskOption] | None = None


def _check_text(value: str | None) -> str | None:
    # Postgres text cannot hold NUL: refuse it here, as a validation error, not a driver error.
    if value is not None and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _check_tags(tags: list[str] | None) -> list[str] | None:
    for tag in tags or ():
        _check_text(tag)
        if not tag or len(tag) > MAX_TASK_TEXT:
            raise ValueError(f"tags must be 1 to {MAX_TASK_TEXT} characters")
    return tags


class Task(ElizaModel):
    """A stored task.

    Attributes:
        id: Task id (random uuid4 when not given).
        agent_id: The owning agent (every query is scoped by it).
        name: Name of the ``TaskWorker`` that runs it.
        description: What it does, for people.
        room_id: Room it concerns, if any.
        world_id: World it concerns, if any.
        entity_id: Entity it concerns, if any.
        tags: Labels; ``get_tasks(tags=...)`` matches tasks having all of them.
        metadata: ``update_interval``, ``options`` and anything else (merged on update).
        status: Scheduler state.
        next_run_at: When the scheduler should run it, ms since the epoch; ``None``: never.
        lease_owner: Worker holding the task while ``running``.
        lease_expires_at: When that lease lapses, ms since the epoch.
        attempts: Runs started so far.
        last_error: Why the last run failed.
        created_at: Set by the database, ms since the epoch.
        updated_at: Set by the database on every change, ms since the epoch.
    """

    id: UUID = Field(default_factory=uuid.uuid4)
    agent_id: UUID
    name: str = Field(min_length=1, max_length=MAX_TASK_TEXT)
    description: str | None = Field(default=None, max_length=MAX_TASK_TEXT)
    room_id: UUID | None = None
    world_id: UUID | None = None
    entity_id: UUID | None = None
    tags: list[str] = []
    metadata: TaskMetadata = Field(default_factory=TaskMetadata)
    status: TaskStatus = TaskStatus.PENDING
    next_run_at: int | None = None
    lease_owner: str | None = None
    lease_expires_at: int | None = None
    attempts: int = Field(default=0, ge=0)
    last_error: str | None = None
    created_at: int | None = None
    updated_at: int | None = None

    _text = field_validator("name", "description", "last_error", "lease_owner")(_check_text)
    _tags = field_validator("tags")(_check_tags)


class TaskUpdate(ElizaModel):
    """The fields ``update_task`` may change; only fields given are written.

    Lease fields are not here: only the scheduler's lease methods move them. ``metadata``
    is merged shallowly into the stored object (elizaOS ``updateTask``), so a key set to
    ``None`` is stored as JSON null and no key is removed.
    """

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=MAX_TASK_TEXT)
    description: str | None = Field(default=None, max_length=MAX_TASK_TEXT)
    room_id: UUID | None = None
    world_id: UUID | None = None
    entity_id: UUID | None = None
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None
    status: TaskStatus | None = None
    next_run_at: int | None = None
    attempts: int | None = Field(default=None, ge=0)
    last_error: str | None = None

    _text = field_validator("name", "description", "last_error")(_check_text)
    _tags = field_validator("tags")(_check_tags)

    @field_validator("metadata")
    @classmethod
    def _check_metadata(cls, metadata: dict[str, Any] | None) -> dict[str, Any] | None:
        # Same rules and spelling as a stored task's metadata: update_interval must be > 0 and
        # is stored as elizaOS's "updateInterval"; unknown keys are kept as given.
        if metadata is None:
            return None
        return TaskMetadata.model_validate(metadata).model_dump(by_alias=True, exclude_unset=True)

    @model_validator(mode="after")
    def _not_null_columns(self) -> TaskUpdate:
        for name in ("name", "tags", "metadata", "status", "attempts"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be set to null")
        return self


def first_run_delay_ms(task: Task) -> int | None:
    """How long after creation a task without ``next_run_at`` first runs (elizaOS's rules).

    Args:
        task: The task being created.

    Returns:
        ``None`` when the task is not tagged ``"queue"`` (the scheduler never runs it);
        ``update_interval`` for a ``"repeat"`` task not tagged ``"immediate"``; otherwise 0.
        Milliseconds.
    """
    if "queue" not in task.tags:
        return None
    interval = task.metadata.update_interval
    if "repeat" in task.tags and interval and "immediate" not in task.tags:
        return interval
    return 0
