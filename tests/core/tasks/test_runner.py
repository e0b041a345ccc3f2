"""``TaskRunner`` on a real database: elizaOS tag semantics, failures, timeouts, limits, leases."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from core.db.pool import create_pool
from core.db.postgres import PostgresAdapter
from core.db.postgres.tasks import LEASE_EXPIRED_ERROR
from core.settings import Settings
from core.settings.tasks import TaskRunnerSettings
from core.tasks.runner import TaskRunner
from core.tasks.worker import TaskWorker
from core.types import TaskStatus
from tests.core.tasks.conftest import expire_lease, make_due, now_ms, sql

FAST = TaskRunnerSettings(
    task_timeout_s=5,
    time_reserve_s=1,
    lease_margin_s=5,
    retry_base_delay_s=30,
    retry_max_delay_s=600,
    max_attempts=3,
    concurrency=4,
)
SLACK_MS = 2_000


class Recorder:
    """A worker that records its calls, optionally failing or sleeping."""

    def __init__(self, name: str = "WORK", *, fail: Exception | None = None, sleep_s: float = 0.0) -> None:
        self.name, self.fail, self.sleep_s = name, fail, sleep_s
        self.calls: list[tuple] = []
        self.started: list[float] = []  # event-loop time of each call
        self.active = 0
        self.max_active = 0

    async def execute(self, runtime, options, task) -> None:
        self.calls.append((runtime.agent_id, dict(options), task))
        self.started.append(asyncio.get_running_loop().time())
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if self.sleep_s:
                await asyncio.sleep(self.sleep_s)
            if self.fail is not None:
                raise self.fail
        finally:
            self.active -= 1

    @property
    def worker(self) -> TaskWorker:
        return TaskWorker(self.name, self.execute)


async def _runner(make_agents, *workers: TaskWorker, settings: TaskRunnerSettings = FAST, count: int = 1):
    orchestrator, ids = await make_agents(workers, count=count)
    return TaskRunner(orchestrator.adapter, orchestrator, settings), ids


async def test_a_one_off_task_runs_once_and_is_deleted(make_agents, adapter):
    rec = Recorder()
    runner, [agent] = await _runner(make_agents, rec.worker)
    runtime_tasks = runner.agents.runtime(agent)
    task_id = await runtime_tasks.create_task({"name": "WORK", "tags": ["queue"], "metadata": {"k": "v"}})
    report = await runner.run(run_id="req-1")
    assert (report.claimed, report.succeeded, report.failed, report.retried) == (1, 1, 0, 0)
    assert report.owner.startswith("req-1/")
    [(called_agent, options, task)] = rec.calls
    assert called_agent == agent and task.id == task_id and options == {"k": "v"}
    assert task.status is TaskStatus.RUNNING and task.lease_owner == report.owner and task.attempts == 1
    assert await runtime_tasks.get_task(task_id) is None  # deleted on success, as elizaOS does
    assert (await runner.run()).claimed == 0


async def test_tag_semantics_queue_repeat_immediate(make_agents, adapter):
    rec = Recorder()
    runner, [agent] = await _runner(make_agents, rec.worker)
    runtime = runner.agents.runtime(agent)
    hour = 3_600_000
    unqueued = await runtime.create_task({"name": "WORK", "tags": ["approval"]})
    repeat = await runtime.create_task(
        {"name": "WORK", "tags": ["queue", "repeat"], "metadata": {"updateInterval": hour}}
    )
    immediate = await runtime.create_task(
        {"name": "WORK", "tags": ["queue", "repeat", "immediate"], "metadata": {"updateInterval": hour}}
    )
    await runner.run()
    assert [c[2].id for c in rec.calls] == [immediate]  # the plain repeat task waits one interval
    got = await runtime.get_task(immediate)
    assert got.status is TaskStatus.PENDING and got.attempts == 0 and got.lease_owner is None  # kept
    assert now_ms() + hour - SLACK_MS <= got.next_run_at <= now_ms() + hour + SLACK_MS
    assert (await runtime.get_task(unqueued)).next_run_at is None

    await make_due(adapter, repeat)
    await make_due(adapter, unqueued)  # due, but not tagged queue: still never run
    await runner.run()
    assert [c[2].id for c in rec.calls] == [immediate, repeat]
    assert len(await runtime.get_tasks(tags=["repeat"])) == 2


async def test_repeat_task_runs_every_interval(make_agents, adapter):
    rec = Recorder()
    runner, [agent] = await _runner(make_agents, rec.worker)
    runtime = runner.agents.runtime(agent)
    task_id = await runtime.create_task(
        {"name": "WORK", "tags": ["queue", "repeat", "immediate"], "metadata": {"updateInterval": 400}}
    )
    deadline = asyncio.get_running_loop().time() + 1.9
    while asyncio.get_running_loop().time() < deadline:  # the schedule firing every 20 ms
        await runner.run()
        await asyncio.sleep(0.02)
    starts = rec.started
    # Due at 0, 0.4, 0.8, 1.2, 1.6 s: five runs (fewer on a loaded machine), never two within
    # one interval (10 ms of slack: the interval is counted on the database's clock).
    assert 3 <= len(starts) <= 5, starts
    assert all(b - a >= 0.4 - 0.01 for a, b in zip(starts, starts[1:], strict=False)), starts
    assert (await runtime.get_task(task_id)).attempts == 0


async def test_each_task_runs_at_most_once_per_run(make_agents, adapter):
    rec = Recorder()
    runner, [agent] = await _runner(make_agents, rec.worker)
    await runner.agents.runtime(agent).create_task(
        {"name": "WORK", "tags": ["queue", "repeat"], "metadata": {"updateInterval": 1}, "nextRunAt": now_ms() - 1}
    )
    report = await runner.run()
    assert report.claimed == report.succeeded == len(rec.calls) == 1


async def test_failures_back_off_then_mark_the_task_failed(make_agents, adapter):
    rec = Recorder(fail=RuntimeError("upstream said no"))
    runner, [agent] = await _runner(make_agents, rec.worker)
    runtime = runner.agents.runtime(agent)
    task_id = await runtime.create_task({"name": "WORK", "tags": ["queue"]})
    for attempt in (1, 2):
        before = now_ms()
        report = await runner.run()
        assert (report.retried, report.failed) == (1, 0)
        got = await runtime.get_task(task_id)
        assert got.status is TaskStatus.PENDING and got.attempts == attempt
        assert got.last_error == "RuntimeError: upstream said no"
        delay = 30_000 * 2 ** (attempt - 1)
        assert before + delay - SLACK_MS <= got.next_run_at <= now_ms() + delay + SLACK_MS
        assert (await runner.run()).claimed == 0  # backing off
        await make_due(adapter, task_id)
    report = await runner.run()
    assert (report.retried, report.failed) == (0, 1)
    got = await runtime.get_task(task_id)
    assert got.status is TaskStatus.FAILED and got.attempts == 3 and got.last_error.startswith("RuntimeError")
    await make_due(adapter, task_id)
    for _ in range(3):  # never again, however often the schedule fires
        assert (await runner.run()).claimed == 0
    assert len(rec.calls) == 3


async def test_a_task_past_its_timeout_is_a_failed_attempt(make_agents, adapter):
    slow = Recorder(sleep_s=5)
    settings = FAST.model_copy(update={"task_timeout_s": 0.2})
    runner, [agent] = await _runner(make_agents, slow.worker, settings=settings)
    task_id = await runner.agents.runtime(agent).create_task({"name": "WORK", "tags": ["queue"]})
    started = asyncio.get_running_loop().time()
    report = await runner.run()
    assert asyncio.get_running_loop().time() - started < 2
    assert report.retried == 1
    assert (await adapter.get_task(agent, task_id)).last_error == "timed out after 0.2 s"


async def test_the_workers_own_timeout_error_is_reported_as_such(make_agents, adapter):
    rec = Recorder(fail=TimeoutError("socket read"))
    runner, [agent] = await _runner(make_agents, rec.worker)
    task_id = await runner.agents.runtime(agent).create_task({"name": "WORK", "tags": ["queue"]})
    await runner.run()
    assert (await adapter.get_task(agent, task_id)).last_error == "TimeoutError: socket read"


async def test_validate_false_puts_the_task_back_untouched(make_agents, adapter):
    rec = Recorder()
    asked = []

    async def not_now(runtime, task) -> bool:
        asked.append(task.id)
        return False

    runner, [agent] = await _runner(make_agents, TaskWorker("WORK", rec.execute, validate=not_now))
    task_id = await runner.agents.runtime(agent).create_task({"name": "WORK", "tags": ["queue"]})
    before = await adapter.get_task(agent, task_id)
    report = await runner.run()
    assert (report.claimed, report.skipped, report.succeeded) == (1, 1, 0)
    got = await adapter.get_task(agent, task_id)
    assert rec.calls == [] and asked == [task_id]
    assert (got.status, got.attempts, got.next_run_at, got.lease_owner) == (
        TaskStatus.PENDING,
        0,
        before.next_run_at,
        None,
    )
    await runner.run()
    assert asked == [task_id, task_id]  # asked again next run, as elizaOS asks every tick


async def test_validate_raising_is_a_failed_attempt(make_agents, adapter):
    async def broken(runtime, task) -> bool:
        raise ValueError("bad state")

    rec = Recorder()
    runner, [agent] = await _runner(make_agents, TaskWorker("WORK", rec.execute, validate=broken))
    task_id = await runner.agents.runtime(agent).create_task({"name": "WORK", "tags": ["queue"]})
    assert (await runner.run()).retried == 1
    got = await adapter.get_task(agent, task_id)
    assert got.last_error == "ValueError: bad state" and got.attempts == 1 and rec.calls == []


async def test_a_task_without_a_registered_worker_is_left_alone(make_agents, adapter, caplog):
    rec = Recorder()
    runner, [agent] = await _runner(make_agents, rec.worker)
    runtime = runner.agents.runtime(agent)
    orphan = await runtime.create_task({"name": "ELSEWHERE", "tags": ["queue"]})
    mine = await runtime.create_task({"name": "WORK", "tags": ["queue"]})
    before = await runtime.get_task(orphan)
    with caplog.at_level(logging.WARNING, logger="core.tasks.runner"):
        report = await runner.run()
    assert report.without_worker == 1 and report.claimed == 1 and [c[2].id for c in rec.calls] == [mine]
    after = await runtime.get_task(orphan)
    assert after.model_dump() == before.model_dump()  # not even updated_at moved
    assert any("'ELSEWHERE'" in r.getMessage() and "left alone" in r.getMessage() for r in caplog.records)


async def test_no_workers_at_all_claims_nothing(make_agents, adapter):
    runner, [agent] = await _runner(make_agents)
    task_id = await runner.agents.runtime(agent).create_task({"name": "WORK", "tags": ["queue"]})
    report = await runner.run()
    assert report.claimed == 0 and report.without_worker == 1
    assert (await adapter.get_task(agent, task_id)).status is TaskStatus.PENDING


async def test_concurrency_limit(make_agents, adapter):
    rec = Recorder(sleep_s=0.05)
    runner, [agent] = await _runner(make_agents, rec.worker, settings=FAST.model_copy(update={"concurrency": 3}))
    runtime = runner.agents.runtime(agent)
    for _ in range(10):
        await runtime.create_task({"name": "WORK", "tags": ["queue"]})
    report = await runner.run()
    assert report.claimed == report.succeeded == len(rec.calls) == 10
    assert rec.max_active == 3


async def test_max_per_run_bounds_a_run(make_agents, adapter):
    rec = Recorder()
    runner, [agent] = await _runner(make_agents, rec.worker, settings=FAST.model_copy(update={"max_per_run": 4}))
    runtime = runner.agents.runtime(agent)
    for _ in range(6):
        await runtime.create_task({"name": "WORK", "tags": ["queue"]})
    assert (await runner.run()).claimed == 4
    assert (await runner.run()).claimed == 2


async def test_no_claim_when_the_invocation_has_too_little_time(make_agents, adapter, caplog):
    rec = Recorder()
    runner, [agent] = await _runner(make_agents, rec.worker)  # needs (5 + 1) s to claim
    task_id = await runner.agents.runtime(agent).create_task({"name": "WORK", "tags": ["queue"]})
    with caplog.at_level(logging.ERROR, logger="core.tasks.runner"):
        report = await runner.run(lambda: 5_999)
    assert report.stopped_for_time and report.claimed == 0 and rec.calls == []
    assert "TASK_TIMEOUT_S" in caplog.text
    assert (await adapter.get_task(agent, task_id)).attempts == 0


async def test_claiming_stops_when_the_remaining_time_gets_short(make_agents, adapter):
    rec = Recorder(sleep_s=0.05)
    runner, [agent] = await _runner(make_agents, rec.worker, settings=FAST.model_copy(update={"concurrency": 2}))
    runtime = runner.agents.runtime(agent)
    for _ in range(6):
        await runtime.create_task({"name": "WORK", "tags": ["queue"]})
    clock = iter([60_000, 60_000] + [1_000] * 100)  # the start check, the first claim, then short
    report = await runner.run(lambda: next(clock))
    assert report.stopped_for_time and report.claimed == report.succeeded == 2
    assert len(await runtime.get_tasks(tags=["queue"])) == 4  # left for the next run, untouched


async def test_the_lease_outlives_the_invocation(make_agents, adapter):
    rec = Recorder()
    runner, [agent] = await _runner(make_agents, rec.worker)  # lease margin 5 s
    await runner.agents.runtime(agent).create_task({"name": "WORK", "tags": ["queue"]})
    before = now_ms()
    await runner.run(lambda: 120_000)
    lease = rec.calls[0][2].lease_expires_at
    assert before + 125_000 - SLACK_MS <= lease <= now_ms() + 125_000 + SLACK_MS
    # Outside Lambda: the task's own timeout plus the margin.
    await runner.agents.runtime(agent).create_task({"name": "WORK", "tags": ["queue"]})
    before = now_ms()
    await runner.run()
    assert before + 10_000 - SLACK_MS <= rec.calls[1][2].lease_expires_at <= now_ms() + 10_000 + SLACK_MS


async def test_a_crashed_runners_task_runs_again_after_its_lease_lapses(make_agents, adapter, caplog):
    rec = Recorder()
    settings = FAST.model_copy(update={"retry_base_delay_s": 0})
    runner, [agent] = await _runner(make_agents, rec.worker, settings=settings)
    task_id = await runner.agents.runtime(agent).create_task({"name": "WORK", "tags": ["queue"]})
    # A runner claims the task and dies before running it.
    [crashed] = await adapter.claim_due_tasks("dead-runner", [(agent, "WORK")], limit=1, lease_s=60)
    assert (await runner.run()).claimed == 0 and rec.calls == []  # leased: nobody else runs it
    await expire_lease(adapter, task_id)
    with caplog.at_level(logging.WARNING, logger="core.tasks.runner"):
        report = await runner.run()
    assert report.recovered == 1 and report.succeeded == 1 and len(rec.calls) == 1
    assert rec.calls[0][2].attempts == 2 and rec.calls[0][2].last_error == LEASE_EXPIRED_ERROR
    assert "lease expired" in caplog.text
    # The dead runner, should it wake up, can no longer touch the task.
    assert await adapter.complete_task(agent, crashed.id, "dead-runner") is False


async def test_a_worker_that_deletes_its_own_task_is_not_an_error(make_agents, adapter):
    async def self_deleting(runtime, options, task) -> None:
        await runtime.delete_task(task.id)

    runner, [agent] = await _runner(make_agents, TaskWorker("WORK", self_deleting))
    runtime = runner.agents.runtime(agent)
    await runtime.create_task(
        {"name": "WORK", "tags": ["queue", "repeat", "immediate"], "metadata": {"updateInterval": 10}}
    )
    report = await runner.run()
    assert (report.claimed, report.succeeded, report.lost, report.errors) == (1, 0, 1, 0)
    assert await runtime.get_tasks() == []


async def test_tasks_are_scoped_to_their_agent(make_agents, adapter):
    rec = Recorder()
    runner, [a, b] = await _runner(make_agents, rec.worker, count=2)
    ta = await runner.agents.runtime(a).create_task({"name": "WORK", "tags": ["queue"]})
    tb = await runner.agents.runtime(b).create_task({"name": "WORK", "tags": ["queue"]})
    await runner.run()
    assert {(agent, task.id) for agent, _, task in rec.calls} == {(a, ta), (b, tb)}
    with pytest.raises(ValueError, match="belongs to agent"):
        await runner.agents.runtime(a).create_task(rec.calls[1][2].model_copy(update={"agent_id": b}))


async def test_database_errors_are_reported_not_raised(make_agents, database_url):
    pool = create_pool(Settings(database_url=database_url, pool_max_size=1, pool_timeout_s=0.5))
    await pool.open()
    broken = PostgresAdapter(pool)
    rec = Recorder()
    orchestrator, [agent] = await make_agents([rec.worker])
    await orchestrator.runtime(agent).create_task({"name": "WORK", "tags": ["queue"]})
    await pool.close()  # every query now fails
    report = await TaskRunner(broken, orchestrator, FAST).run()
    assert report.errors == 3 and report.claimed == 0 and rec.calls == []


async def test_runtime_task_api(make_agents, adapter):
    rec = Recorder()
    orchestrator, [agent] = await make_agents([rec.worker])
    runtime = orchestrator.runtime(agent)
    assert runtime.get_task_worker("WORK") is not None and runtime.get_task_worker("NOPE") is None
    extra = TaskWorker("EXTRA", rec.execute)
    runtime.register_task_worker(extra)
    assert orchestrator.runtime(agent).get_task_worker("EXTRA") is extra  # kept by the blueprint
    task_id = await runtime.create_task({"name": "EXTRA", "tags": ["queue", "x"], "roomId": str(uuid.uuid4())})
    assert [t.id for t in await runtime.get_tasks(tags=["x"])] == [task_id]
    assert [t.id for t in await runtime.get_tasks_by_name("EXTRA")] == [task_id]
    assert await runtime.update_task(task_id, {"description": "d"}) is True
    assert (await runtime.get_task(task_id)).description == "d"
    assert await runtime.delete_task(task_id) is True and await runtime.get_task(task_id) is None
    rows = await sql(adapter, "SELECT count(*) AS n FROM tasks WHERE agent_id = %s", (agent,))
    assert rows[0]["n"] == 0
