"""Fixtures for the scheduler: adapters on their own pools, agents with task workers, raw SQL helpers."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from core.character import Character
from core.db.postgres import PostgresAdapter
from core.orchestrator import Orchestrator
from core.plugin import Plugin
from core.tasks.worker import TaskWorker


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture
def make_agents(adapter):
    """``await make_agents(workers, count=1)``: an orchestrator with ``count`` fresh agents having ``workers``."""

    async def make(
        workers: Sequence[TaskWorker], *, count: int = 1, on: Any = None, embedding_queue: Any = None
    ) -> tuple[Orchestrator, list[uuid.UUID]]:
        orchestrator = Orchestrator(
            on or adapter,
            embedding_queue=embedding_queue,
            plugins=[Plugin(name="test-tasks", task_workers=tuple(workers))],
        )
        ids = await orchestrator.add_agents([Character(name=f"tasks-{uuid.uuid4()}") for _ in range(count)])
        return orchestrator, ids

    return make


async def sql(adapter: PostgresAdapter, query: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict]:
    """Run raw SQL (test set-up and checks only), returning rows when there are any."""
    async with adapter.pool.connection() as conn:
        cur = await conn.execute(query, params)
        return await cur.fetchall() if cur.description else []


async def expire_lease(adapter: PostgresAdapter, task_id: uuid.UUID) -> None:
    """Make a running task's lease lapse now, as if its runner had died long ago."""
    await sql(adapter, "UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE id = %s", (task_id,))


async def make_due(adapter: PostgresAdapter, task_id: uuid.UUID) -> None:
    """Make a task due now (skips a retry's backoff or a repeat's interval)."""
    await sql(adapter, "UPDATE tasks SET next_run_at = now() - interval '1 millisecond' WHERE id = %s", (task_id,))
