"""The scheduler's lease methods of the Postgres adapter, on a real database."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from core.db.postgres.tasks import LEASE_EXPIRED_ERROR
from core.settings.tasks import TaskRunnerSettings
from core.types import Task, TaskStatus, TaskUpdate
from core.types.task import MAX_TASK_TEXT
from tests.core.tasks.conftest import expire_lease, now_ms, sql

LEASE_S = 60.0
SLACK_MS = 2_000  # database and test clocks are the same machine's, plus statement time


async def _task(adapter, agent_id, name="WORK", *, tags=("queue",), due_in_ms=-1_000, **fields) -> Task:
    task = Task(agent_id=agent_id, name=name, tags=list(tags), next_run_at=now_ms() + due_in_ms, **fields)
    await adapter.create_task(task)
    return task


async def _claim(adapter, agent_id, names=("WORK",), owner="owner-a", limit=10, **kwargs):
    return await adapter.claim_due_tasks(
        owner, [(agent_id, n) for n in names], limit=limit, lease_s=kwargs.pop("lease_s", LEASE_S), **kwargs
    )


async def test_claim_leases_only_due_queued_tasks_of_known_workers(adapter, agent_id, other_agent):
    due = await _task(adapter, agent_id)
    await _task(adapter, agent_id, due_in_ms=60_000)  # not due yet
    await _task(adapter, agent_id, tags=["repeat"])  # not tagged queue
    await _task(adapter, agent_id, name="NO_WORKER")  # no worker here
    await _task(adapter, other_agent)  # worker not for that agent
    failed = await _task(adapter, agent_id)
    await adapter.update_task(agent_id, failed.id, TaskUpdate(status=TaskStatus.FAILED))
    never = Task(agent_id=agent_id, name="WORK", tags=["queue"])
    await adapter.create_task(never)
    await adapter.update_task(agent_id, never.id, {"next_run_at": None})  # never scheduled

    before = now_ms()
    claimed = await _claim(adapter, agent_id)
    assert [t.id for t in claimed] == [due.id]
    task = claimed[0]
    assert task.status is TaskStatus.RUNNING and task.lease_owner == "owner-a" and task.attempts == 1
    assert before + LEASE_S * 1000 - SLACK_MS <= task.lease_expires_at <= now_ms() + LEASE_S * 1000 + SLACK_MS
    assert (await adapter.get_task(agent_id, due.id)).status is TaskStatus.RUNNING
    # Leased: no other claimer gets it.
    assert await _claim(adapter, agent_id, owner="owner-b") == []


async def test_claim_takes_the_earliest_first_up_to_the_limit_and_skips_excluded(adapter, agent_id):
    tasks = [await _task(adapter, agent_id, due_in_ms=-10_000 + i * 1_000) for i in range(5)]
    first = await _claim(adapter, agent_id, limit=2)
    assert [t.id for t in first] == [tasks[0].id, tasks[1].id]
    rest = await _claim(adapter, agent_id, owner="owner-b", limit=10, exclude=[tasks[2].id])
    assert [t.id for t in rest] == [tasks[3].id, tasks[4].id]


async def test_claim_refuses_bad_arguments_and_needs_workers(adapter, agent_id):
    await _task(adapter, agent_id)
    for kwargs in (
        {"limit": 0},
        {"limit": 100_000},
        {"lease_s": 0},
        {"lease_s": -1},
        {"owner": ""},
        {"owner": "x" * 201},
        {"owner": "a\x00b"},
    ):
        with pytest.raises(ValueError):
            await _claim(adapter, agent_id, **kwargs)
    assert await adapter.claim_due_tasks("owner", [], limit=10, lease_s=LEASE_S) == []
    assert len(await _claim(adapter, agent_id)) == 1  # nothing above claimed it


async def test_concurrent_claims_on_separate_connections_never_share_a_task(adapter, agent_id):
    tasks = [await _task(adapter, agent_id) for _ in range(40)]
    results = await asyncio.gather(*(_claim(adapter, agent_id, owner=f"owner-{i}", limit=7) for i in range(4)))
    ids = [t.id for claimed in results for t in claimed]
    assert len(ids) == len(set(ids)) == 28
    assert set(ids) <= {t.id for t in tasks}
    rows = await sql(
        adapter,
        "SELECT lease_owner, count(*) AS n FROM tasks WHERE agent_id = %s AND status = 'running' GROUP BY lease_owner",
        (agent_id,),
    )
    assert {r["lease_owner"]: r["n"] for r in rows} == {f"owner-{i}": 7 for i in range(4)}


async def test_complete_deletes_only_under_the_lease(adapter, agent_id):
    task = await _task(adapter, agent_id)
    await _claim(adapter, agent_id)
    assert await adapter.complete_task(agent_id, task.id, "someone-else") is False
    assert await adapter.complete_task(uuid.uuid4(), task.id, "owner-a") is False
    assert await adapter.get_task(agent_id, task.id) is not None
    assert await adapter.complete_task(agent_id, task.id, "owner-a") is True
    assert await adapter.get_task(agent_id, task.id) is None
    assert await adapter.complete_task(agent_id, task.id, "owner-a") is False  # a re-run changes nothing


async def test_complete_refuses_a_pending_task(adapter, agent_id):
    task = await _task(adapter, agent_id)
    assert await adapter.complete_task(agent_id, task.id, "owner-a") is False
    assert await adapter.get_task(agent_id, task.id) is not None


async def test_reschedule_counts_the_interval_from_the_start_of_the_run(adapter, agent_id):
    task = await _task(adapter, agent_id, tags=["queue", "repeat"], metadata={"updateInterval": 600_000})
    [claimed] = await _claim(adapter, agent_id)
    await adapter.fail_task(agent_id, task.id, "other", "ignored", retry_in_ms=1)  # not the owner: no-op
    before = now_ms()
    assert await adapter.reschedule_task(agent_id, task.id, "owner-a", elapsed_ms=100_000) is True
    got = await adapter.get_task(agent_id, task.id)
    assert got.status is TaskStatus.PENDING and got.lease_owner is None and got.lease_expires_at is None
    assert got.attempts == 0 and got.last_error is None
    assert before + 500_000 - SLACK_MS <= got.next_run_at <= now_ms() + 500_000 + SLACK_MS
    assert await adapter.reschedule_task(agent_id, task.id, "owner-a") is False  # no longer running


async def test_reschedule_reads_the_interval_changed_during_the_run_and_never_goes_back(adapter, agent_id):
    task = await _task(adapter, agent_id, tags=["queue", "repeat"], metadata={"updateInterval": 600_000})
    await _claim(adapter, agent_id)
    await adapter.update_task(agent_id, task.id, {"metadata": {"updateInterval": 5_000}})
    before = now_ms()
    await adapter.reschedule_task(agent_id, task.id, "owner-a", elapsed_ms=1_000)
    got = await adapter.get_task(agent_id, task.id)
    assert before + 4_000 - SLACK_MS <= got.next_run_at <= now_ms() + 4_000 + SLACK_MS
    # A run longer than its interval: due again at once, never in the past's past.
    await adapter.update_task(agent_id, task.id, {"next_run_at": now_ms() - 1})
    await _claim(adapter, agent_id)
    before = now_ms()
    await adapter.reschedule_task(agent_id, task.id, "owner-a", elapsed_ms=60_000)
    got = await adapter.get_task(agent_id, task.id)
    assert before - SLACK_MS <= got.next_run_at <= now_ms() + SLACK_MS


async def test_reschedule_without_an_interval_is_due_at_once(adapter, agent_id):
    task = await _task(adapter, agent_id, tags=["queue", "repeat"])
    await _claim(adapter, agent_id)
    before = now_ms()
    await adapter.reschedule_task(agent_id, task.id, "owner-a", elapsed_ms=10)
    assert before - SLACK_MS <= (await adapter.get_task(agent_id, task.id)).next_run_at <= now_ms() + SLACK_MS


async def test_fail_with_a_retry_records_the_error_and_backs_off(adapter, agent_id):
    task = await _task(adapter, agent_id)
    await _claim(adapter, agent_id)
    before = now_ms()
    assert await adapter.fail_task(agent_id, task.id, "owner-a", "boom\x00!", retry_in_ms=30_000) is True
    got = await adapter.get_task(agent_id, task.id)
    assert got.status is TaskStatus.PENDING and got.last_error == "boom!" and got.attempts == 1
    assert got.lease_owner is None and got.lease_expires_at is None
    assert before + 30_000 - SLACK_MS <= got.next_run_at <= now_ms() + 30_000 + SLACK_MS
    assert await _claim(adapter, agent_id, owner="owner-b") == []  # backing off


async def test_fail_without_a_retry_marks_the_task_failed_for_good(adapter, agent_id):
    task = await _task(adapter, agent_id)
    await _claim(adapter, agent_id)
    long_error = "x" * (MAX_TASK_TEXT + 500)
    assert await adapter.fail_task(agent_id, task.id, "owner-a", long_error, retry_in_ms=None) is True
    got = await adapter.get_task(agent_id, task.id)
    assert got.status is TaskStatus.FAILED and got.lease_owner is None and len(got.last_error) == MAX_TASK_TEXT
    await adapter.update_task(agent_id, task.id, {"next_run_at": now_ms() - 1_000})
    assert await _claim(adapter, agent_id, owner="owner-b") == []  # failed tasks are never claimed
    # Set back to pending by someone, it runs again.
    await adapter.update_task(agent_id, task.id, TaskUpdate(status=TaskStatus.PENDING, attempts=0))
    assert [t.id for t in await _claim(adapter, agent_id, owner="owner-b")] == [task.id]


async def test_release_puts_the_task_back_as_it_was(adapter, agent_id):
    task = await _task(adapter, agent_id)
    stored = await adapter.get_task(agent_id, task.id)
    await _claim(adapter, agent_id)
    assert await adapter.release_task(agent_id, task.id, "someone-else") is False
    assert await adapter.release_task(agent_id, task.id, "owner-a") is True
    got = await adapter.get_task(agent_id, task.id)
    assert (got.status, got.attempts, got.next_run_at, got.lease_owner, got.lease_expires_at) == (
        TaskStatus.PENDING,
        0,
        stored.next_run_at,
        None,
        None,
    )
    assert await adapter.release_task(agent_id, task.id, "owner-a") is False


async def test_recover_retries_a_lapsed_lease_with_backoff_then_fails_it(adapter, agent_id, other_agent):
    policy = TaskRunnerSettings(max_attempts=3, retry_base_delay_s=10, retry_max_delay_s=25)
    recover = {"max_attempts": policy.max_attempts, "retry_base_delay_ms": 10_000, "retry_max_delay_ms": 25_000}
    task = await _task(adapter, agent_id)
    live = await _task(adapter, agent_id, name="LIVE")
    foreign = await _task(adapter, other_agent)
    await _claim(adapter, agent_id, names=("WORK", "LIVE"))
    await _claim(adapter, other_agent)
    await expire_lease(adapter, task.id)
    await expire_lease(adapter, foreign.id)

    for attempt in (1, 2):
        before = now_ms()
        [recovered] = await adapter.recover_expired_task_leases([agent_id], **recover)
        assert recovered.id == task.id and recovered.status is TaskStatus.PENDING
        assert recovered.last_error == LEASE_EXPIRED_ERROR and recovered.lease_owner is None
        delay = policy.retry_delay_ms(attempt)  # same rule in SQL and in Python: 10 s, then 20 s
        assert delay == min(25_000, 10_000 * 2 ** (attempt - 1))
        assert before + delay - SLACK_MS <= recovered.next_run_at <= now_ms() + delay + SLACK_MS
        await adapter.update_task(agent_id, task.id, {"next_run_at": now_ms() - 1})
        [claimed] = await _claim(adapter, agent_id, owner=f"owner-{attempt}")
        assert claimed.attempts == attempt + 1
        await expire_lease(adapter, task.id)

    [recovered] = await adapter.recover_expired_task_leases([agent_id], **recover)
    assert recovered.status is TaskStatus.FAILED and recovered.attempts == 3
    assert await adapter.recover_expired_task_leases([agent_id], **recover) == []
    assert (await adapter.get_task(agent_id, live.id)).status is TaskStatus.RUNNING  # lease still valid
    assert (await adapter.get_task(other_agent, foreign.id)).status is TaskStatus.RUNNING  # not our agent
    assert await adapter.recover_expired_task_leases([], **recover) == []


async def test_recover_caps_the_backoff_and_refuses_bad_policies(adapter, agent_id):
    task = await _task(adapter, agent_id)
    await sql(
        adapter,
        "UPDATE tasks SET status = 'running', lease_owner = 'x', attempts = 5000,"
        " lease_expires_at = now() - interval '1 s' WHERE id = %s",
        (task.id,),
    )
    before = now_ms()
    [recovered] = await adapter.recover_expired_task_leases(
        [agent_id], max_attempts=10_000, retry_base_delay_ms=1_000, retry_max_delay_ms=7_000
    )
    assert before + 7_000 - SLACK_MS <= recovered.next_run_at <= now_ms() + 7_000 + SLACK_MS  # no overflow
    for bad in (
        {"max_attempts": 0, "retry_base_delay_ms": 1, "retry_max_delay_ms": 2},
        {"max_attempts": 1, "retry_base_delay_ms": 3, "retry_max_delay_ms": 2},
        {"max_attempts": 1, "retry_base_delay_ms": -1, "retry_max_delay_ms": 2},
    ):
        with pytest.raises(ValueError):
            await adapter.recover_expired_task_leases([agent_id], **bad)
    with pytest.raises(ValueError):
        await adapter.recover_expired_task_leases(
            [agent_id], max_attempts=1, retry_base_delay_ms=0, retry_max_delay_ms=0, limit=0
        )


async def test_count_due_tasks_without_worker(adapter, agent_id, other_agent):
    for _ in range(3):
        await _task(adapter, agent_id, name="ORPHAN")
    await _task(adapter, agent_id, name="WORK")
    await _task(adapter, agent_id, name="LATER", due_in_ms=60_000)
    await _task(adapter, agent_id, name="UNQUEUED", tags=["approval"])
    await _task(adapter, other_agent, name="ORPHAN")  # not one of our agents
    counts = await adapter.count_due_tasks_without_worker([agent_id], [(agent_id, "WORK")])
    assert counts == {(agent_id, "ORPHAN"): 3}
    assert await adapter.count_due_tasks_without_worker([], [(agent_id, "WORK")]) == {}
    assert await adapter.count_due_tasks_without_worker([agent_id], []) == {
        (agent_id, "ORPHAN"): 3,
        (agent_id, "WORK"): 1,
    }
    assert sum((await adapter.count_due_tasks_without_worker([agent_id], [], scan_limit=2)).values()) == 2


async def test_hostile_names_are_plain_values(adapter, agent_id):
    evil = "'); DELETE FROM tasks; --"
    task = await _task(adapter, agent_id, name=evil)
    [claimed] = await _claim(adapter, agent_id, names=(evil,), owner=evil)
    assert claimed.id == task.id and claimed.lease_owner == evil
    assert await adapter.fail_task(agent_id, task.id, evil, evil, retry_in_ms=0) is True
    assert (await adapter.get_task(agent_id, task.id)).last_error == evil
