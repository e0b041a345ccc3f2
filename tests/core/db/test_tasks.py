from __future__ import annotations

import time
import uuid

import pytest

from core.db.adapter import AgentRecord
from core.db.postgres.values import MAX_PAGE_SIZE
from core.errors import NotFoundError
from core.types import Task, TaskStatus, TaskUpdate

EVIL = ["'; DROP TABLE tasks; --", "x' OR '1'='1", "$$", "%s", "%(agent)s", 'a"b', "\\", "{a,b}", "}", ","]
HOUR_MS = 3_600_000


async def _other_agent(adapter) -> uuid.UUID:
    other = uuid.uuid4()
    await adapter.upsert_agents([AgentRecord(other, f"other-{other}", {})])
    return other


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def test_create_and_get_round_trip(adapter, agent_id):
    room, world, entity = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    task = Task(
        agent_id=agent_id,
        name="FOLLOW_UP",
        description="ping later",
        room_id=room,
        world_id=world,
        entity_id=entity,
        tags=["queue", "repeat"],
        metadata={"updateInterval": 60_000, "options": [{"name": "yes", "description": "Do it"}], "values": {"k": "v"}},
    )
    assert await adapter.create_task(task) == task.id
    got = await adapter.get_task(agent_id, task.id)
    assert got is not None
    assert (got.name, got.description, got.room_id, got.world_id, got.entity_id, got.tags) == (
        "FOLLOW_UP",
        "ping later",
        room,
        world,
        entity,
        ["queue", "repeat"],
    )
    assert got.metadata.update_interval == 60_000 and got.metadata.options[0].name == "yes"
    assert got.metadata.model_extra == {"values": {"k": "v"}}
    assert got.status is TaskStatus.PENDING and got.attempts == 0 and got.lease_owner is None
    assert got.created_at is not None and got.updated_at is not None
    assert await adapter.get_task(await _other_agent(adapter), task.id) is None
    assert await adapter.get_task(agent_id, uuid.uuid4()) is None


async def test_next_run_at_follows_elizaos_rules(adapter, agent_id):
    before = _now_ms()
    cases = {
        "not queued": Task(agent_id=agent_id, name="A", tags=["approval"]),
        "once": Task(agent_id=agent_id, name="B", tags=["queue"]),
        "repeat": Task(agent_id=agent_id, name="C", tags=["queue", "repeat"], metadata={"updateInterval": HOUR_MS}),
        "immediate": Task(
            agent_id=agent_id, name="D", tags=["queue", "repeat", "immediate"], metadata={"updateInterval": HOUR_MS}
        ),
        "explicit": Task(agent_id=agent_id, name="E", tags=["queue"], next_run_at=before + 5 * HOUR_MS),
    }
    for task in cases.values():
        await adapter.create_task(task)
    after = _now_ms()
    got = {label: (await adapter.get_task(agent_id, task.id)).next_run_at for label, task in cases.items()}
    slack = 5_000  # database and test clocks may differ a little
    assert got["not queued"] is None
    assert before - slack <= got["once"] <= after + slack
    assert before + HOUR_MS - slack <= got["repeat"] <= after + HOUR_MS + slack
    assert before - slack <= got["immediate"] <= after + slack
    assert got["explicit"] == before + 5 * HOUR_MS


async def test_create_is_idempotent_and_refuses_foreign_ids(adapter, agent_id):
    task = Task(agent_id=agent_id, name="ONCE")
    assert await adapter.create_task(task) == task.id
    assert await adapter.create_task(task) == task.id
    assert len(await adapter.get_tasks_by_name(agent_id, "ONCE")) == 1
    other = await _other_agent(adapter)
    with pytest.raises(ValueError, match="already used"):
        await adapter.create_task(Task(id=task.id, agent_id=other, name="STEAL"))
    assert (await adapter.get_task(agent_id, task.id)).name == "ONCE"


async def test_create_bad_input(adapter, agent_id):
    with pytest.raises(NotFoundError):
        await adapter.create_task(Task(agent_id=uuid.uuid4(), name="X"))
    # A running task must hold a lease (schema CHECK), so the scheduler can reclaim it.
    with pytest.raises(ValueError, match="tasks_running_has_lease"):
        await adapter.create_task(Task(agent_id=agent_id, name="X", status=TaskStatus.RUNNING))
    for bad in (
        {"name": ""},
        {"name": "a\x00"},
        {"name": "x", "tags": [""]},
        {"name": "x", "tags": ["a\x00"]},
        {"name": "x", "metadata": {"updateInterval": 0}},
        {"name": "x", "status": "done"},
        {"name": "x", "attempts": -1},
    ):
        with pytest.raises(ValueError):
            Task(agent_id=agent_id, **bad)
    for metadata in ({"k": "a\x00"}, {"k": float("nan")}, {"k": [float("-inf")]}):
        with pytest.raises(ValueError, match="JSON|NUL"):
            await adapter.create_task(Task(agent_id=agent_id, name="X", metadata=metadata))
    assert await adapter.get_tasks(agent_id) == []


async def test_get_tasks_filters_with_all_of_tags(adapter, agent_id):
    room, entity = uuid.uuid4(), uuid.uuid4()
    a = Task(agent_id=agent_id, name="A", tags=["queue", "repeat"], room_id=room)
    b = Task(agent_id=agent_id, name="B", tags=["queue"], room_id=room, entity_id=entity)
    c = Task(agent_id=agent_id, name="C", tags=["repeat", "other"], entity_id=entity)
    d = Task(agent_id=agent_id, name="D")
    for task in (a, b, c, d):
        await adapter.create_task(task)
    other = await _other_agent(adapter)
    await adapter.create_task(Task(agent_id=other, name="A", tags=["queue", "repeat"], room_id=room))

    async def names(**filters):
        return sorted(t.name for t in await adapter.get_tasks(agent_id, **filters))

    assert await names() == ["A", "B", "C", "D"]
    assert await names(tags=["queue"]) == ["A", "B"]
    assert await names(tags=["queue", "repeat"]) == ["A"]  # all of them, not any
    assert await names(tags=["repeat", "queue", "queue"]) == ["A"]
    assert await names(tags=["missing"]) == []
    assert await names(tags=[]) == ["A", "B", "C", "D"]
    assert await names(room_id=room) == ["A", "B"]
    assert await names(entity_id=entity) == ["B", "C"]
    assert await names(room_id=room, entity_id=entity, tags=["queue"]) == ["B"]
    assert len(await adapter.get_tasks(agent_id, limit=2)) == 2
    assert [t.name for t in await adapter.get_tasks(other)] == ["A"]
    with pytest.raises(ValueError, match="not a string"):
        await adapter.get_tasks(agent_id, tags="queue")
    for bad in (0, MAX_PAGE_SIZE + 1, -3):
        with pytest.raises(ValueError, match="limit"):
            await adapter.get_tasks(agent_id, limit=bad)


async def test_get_tasks_by_name_is_exact_and_scoped(adapter, agent_id):
    await adapter.create_task(Task(agent_id=agent_id, name="REMIND"))
    await adapter.create_task(Task(agent_id=agent_id, name="REMIND"))
    await adapter.create_task(Task(agent_id=agent_id, name="REMIND_LATER"))
    await adapter.create_task(Task(agent_id=await _other_agent(adapter), name="REMIND"))
    assert [t.name for t in await adapter.get_tasks_by_name(agent_id, "REMIND")] == ["REMIND", "REMIND"]
    assert await adapter.get_tasks_by_name(agent_id, "remind") == []
    assert await adapter.get_tasks_by_name(agent_id, "REMIND%") == []


async def test_update_task_merges_metadata_and_sets_fields(adapter, agent_id):
    task = Task(
        agent_id=agent_id,
        name="T",
        description="d",
        tags=["queue"],
        metadata={"updateInterval": 1000, "keep": 1, "nested": {"a": 1}},
    )
    await adapter.create_task(task)
    before = await adapter.get_task(agent_id, task.id)
    when = _now_ms() + HOUR_MS
    assert await adapter.update_task(
        agent_id,
        task.id,
        {
            "metadata": {"update_interval": 5000, "nested": {"b": 2}, "new": None},
            "description": None,
            "tags": ["queue", "repeat"],
            "nextRunAt": when,
            "attempts": 2,
            "last_error": "boom",
            "status": "failed",
        },
    )
    got = await adapter.get_task(agent_id, task.id)
    assert got.metadata.update_interval == 5000
    # Shallow merge: untouched keys stay, a given key replaces its whole value.
    assert got.metadata.model_extra == {"keep": 1, "nested": {"b": 2}, "new": None}
    assert (got.description, got.tags, got.next_run_at, got.attempts, got.last_error, got.status) == (
        None,
        ["queue", "repeat"],
        when,
        2,
        "boom",
        TaskStatus.FAILED,
    )
    assert got.name == "T" and got.updated_at >= before.updated_at
    assert await adapter.update_task(agent_id, task.id, TaskUpdate(next_run_at=None, status=TaskStatus.PENDING))
    got = await adapter.get_task(agent_id, task.id)
    assert got.next_run_at is None and got.status is TaskStatus.PENDING


async def test_update_task_is_scoped_and_validated(adapter, agent_id):
    task = Task(agent_id=agent_id, name="T")
    await adapter.create_task(task)
    other = await _other_agent(adapter)
    assert await adapter.update_task(other, task.id, {"name": "hijacked"}) is False
    assert await adapter.update_task(agent_id, uuid.uuid4(), {"name": "x"}) is False
    for bad in (
        {},
        {"lease_owner": "me"},
        {"leaseExpiresAt": 1},
        {"agent_id": other},
        {"id": uuid.uuid4()},
        {"name": None},
        {"tags": None},
        {"metadata": None},
        {"status": "done"},
        {"attempts": -1},
        {"metadata": {"updateInterval": -5}},
        {"name": "a\x00"},
        {"unknown": 1},
    ):
        with pytest.raises(ValueError):
            await adapter.update_task(agent_id, task.id, bad)
    with pytest.raises(ValueError, match="tasks_running_has_lease"):
        await adapter.update_task(agent_id, task.id, {"status": "running"})
    for metadata in ({"k": "a\x00"}, {"k": float("nan")}):
        with pytest.raises(ValueError, match="JSON|NUL"):
            await adapter.update_task(agent_id, task.id, {"metadata": metadata})
    got = await adapter.get_task(agent_id, task.id)
    assert (got.name, got.status, got.agent_id) == ("T", TaskStatus.PENDING, agent_id)


async def test_delete_task_is_scoped(adapter, agent_id):
    task = Task(agent_id=agent_id, name="T")
    await adapter.create_task(task)
    assert await adapter.delete_task(await _other_agent(adapter), task.id) is False
    assert await adapter.delete_task(agent_id, task.id) is True
    assert await adapter.delete_task(agent_id, task.id) is False
    assert await adapter.get_task(agent_id, task.id) is None


async def test_tasks_go_with_their_agent(adapter, agent_id):
    await adapter.create_task(Task(agent_id=agent_id, name="T"))
    async with adapter.pool.connection() as conn:
        await conn.execute("DELETE FROM agents WHERE id = %s", (agent_id,))
        row = await (await conn.execute("SELECT count(*) AS n FROM tasks WHERE agent_id = %s", (agent_id,))).fetchone()
    assert row["n"] == 0


async def test_due_task_query_uses_the_due_index(adapter, agent_id):
    # The scheduler's lease query (later) must not scan the table: check the plan uses tasks_due.
    await adapter.create_task(Task(agent_id=agent_id, name="T", tags=["queue"]))
    async with adapter.pool.connection() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        plan = await (
            await conn.execute(
                "EXPLAIN SELECT id FROM tasks WHERE status = 'pending' AND next_run_at <= now()"
                " ORDER BY next_run_at LIMIT 10 FOR UPDATE SKIP LOCKED"
            )
        ).fetchall()
    assert "tasks_due" in " ".join(r["QUERY PLAN"] for r in plan)


async def test_names_tags_and_metadata_keys_are_literal(adapter, agent_id):
    control = Task(agent_id=agent_id, name="control", tags=["a", "b"])
    await adapter.create_task(control)
    for evil in EVIL:
        task = Task(agent_id=agent_id, name=evil, description=evil, tags=[evil, "t"], metadata={evil: evil})
        await adapter.create_task(task)
        [by_name] = await adapter.get_tasks_by_name(agent_id, evil)
        assert (by_name.id, by_name.name, by_name.description, by_name.tags) == (task.id, evil, evil, [evil, "t"])
        assert by_name.metadata.model_extra == {evil: evil}
        assert [t.id for t in await adapter.get_tasks(agent_id, tags=[evil])] == [task.id]
        assert await adapter.update_task(agent_id, task.id, {"metadata": {evil: "updated", "q'\"": "$$"}})
        assert (await adapter.get_task(agent_id, task.id)).metadata.model_extra == {evil: "updated", "q'\"": "$$"}
    # "{a,b}" is one tag, not an array literal holding two.
    assert [t.name for t in await adapter.get_tasks(agent_id, tags=["{a,b}"])] == ["{a,b}"]
    assert len(await adapter.get_tasks(agent_id)) == len(EVIL) + 1
    async with adapter.pool.connection() as conn:
        row = await (await conn.execute("SELECT to_regclass('tasks') IS NOT NULL AS ok")).fetchone()
    assert row["ok"]
