"""Several runners at once, as concurrent Lambda invocations would be: each in its own thread,
with its own event loop and pool, on the same database. Executions are counted."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter, defaultdict

import pytest

from core.character import Character
from core.db.pool import create_pool
from core.db.postgres import PostgresAdapter
from core.orchestrator import Orchestrator
from core.plugin import Plugin
from core.settings import Settings
from core.settings.tasks import TaskRunnerSettings
from core.tasks.runner import RunReport, TaskRunner
from core.tasks.worker import TaskWorker

CONCURRENCY = 8


class Ledger:
    """Thread-safe record of executions: how often each task ran, and whether two ran at once."""

    def __init__(self, work_s: float = 0.002) -> None:
        self.lock = threading.Lock()
        self.active: set[uuid.UUID] = set()
        self.executions: Counter[uuid.UUID] = Counter()
        self.starts: dict[uuid.UUID, list[float]] = defaultdict(list)
        self.overlaps: list[uuid.UUID] = []
        self.work_s = work_s

    async def execute(self, runtime, options, task) -> None:
        with self.lock:
            if task.id in self.active:
                self.overlaps.append(task.id)
            self.active.add(task.id)
            self.executions[task.id] += 1
            self.starts[task.id].append(time.monotonic())
        try:
            await asyncio.sleep(self.work_s)
        finally:
            with self.lock:
                self.active.discard(task.id)


def _plugin(ledger: Ledger) -> Plugin:
    return Plugin(name="concurrency-test", task_workers=(TaskWorker("WORK", ledger.execute),))


async def _runner(database_url: str, names: list[str], ledger: Ledger, settings: TaskRunnerSettings):
    pool = create_pool(Settings(database_url=database_url, pool_max_size=settings.concurrency + 1))
    await pool.open()
    adapter = PostgresAdapter(pool)
    orchestrator = Orchestrator(adapter, plugins=[_plugin(ledger)])
    await orchestrator.add_agents([Character(name=n) for n in names])
    return TaskRunner(adapter, orchestrator, settings), pool


def _run_in_threads(count: int, target) -> list:
    """Run ``target(index, barrier)`` in ``count`` threads, each with its own event loop; results in order."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list[BaseException] = []

    def main(index: int) -> None:
        try:
            results[index] = asyncio.run(target(index, barrier))
        except BaseException as exc:  # surfaced in the test thread
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=main, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


async def _create_tasks(database_url: str, names: list[str], count: int, **fields) -> list[uuid.UUID]:
    runner, pool = await _runner(database_url, names, Ledger(), TaskRunnerSettings())
    try:
        ids = []
        agents = runner.agents.get_agents()
        for i in range(count):
            runtime = runner.agents.runtime(agents[i % len(agents)].agent_id)
            ids.append(await runtime.create_task({"name": "WORK", **fields}))
        return ids
    finally:
        await pool.close()


@pytest.mark.parametrize("runners", [1, 4])
def test_concurrent_runners_execute_every_task_exactly_once(database_url, runners, capsys):
    names = [f"conc-{uuid.uuid4()}" for _ in range(3)]
    tasks = 300
    ids = asyncio.run(_create_tasks(database_url, names, tasks, tags=["queue"]))
    ledger = Ledger()
    settings = TaskRunnerSettings(concurrency=CONCURRENCY, max_per_run=10_000)

    async def drain(index: int, barrier: threading.Barrier) -> list[RunReport]:
        runner, pool = await _runner(database_url, names, ledger, settings)
        reports = []
        try:
            barrier.wait()
            while True:  # the schedule firing again and again until nothing is due
                reports.append(await runner.run(run_id=f"runner-{index}"))
                if reports[-1].claimed == 0:
                    return reports
        finally:
            await pool.close()

    started = time.perf_counter()
    results = _run_in_threads(runners, drain)
    elapsed = time.perf_counter() - started

    assert ledger.overlaps == []
    assert ledger.executions == Counter({task_id: 1 for task_id in ids})  # each once, none twice, none missed
    claimed = sum(r.claimed for reports in results for r in reports)
    succeeded = sum(r.succeeded for reports in results for r in reports)
    assert claimed == succeeded == tasks
    assert all(r.errors == r.lost == 0 for reports in results for r in reports)
    if runners > 1:
        assert sum(1 for reports in results if sum(r.claimed for r in reports) > 0) > 1, "one runner did it all"
    with capsys.disabled():
        print(
            f"\n[tasks] {runners} runner(s) x concurrency {CONCURRENCY}: {tasks} tasks claimed+run in"
            f" {elapsed:.2f} s = {tasks / elapsed:.0f} tasks/s; executions {sum(ledger.executions.values())}"
        )


def test_concurrent_runners_run_repeat_tasks_once_per_due_time(database_url):
    names = [f"conc-{uuid.uuid4()}"]
    interval_ms = 300
    ids = asyncio.run(
        _create_tasks(
            database_url, names, 20, tags=["queue", "repeat", "immediate"], metadata={"updateInterval": interval_ms}
        )
    )
    ledger = Ledger(work_s=0.01)
    settings = TaskRunnerSettings(concurrency=CONCURRENCY)
    window_s = 1.7

    async def tick(index: int, barrier: threading.Barrier) -> None:
        runner, pool = await _runner(database_url, names, ledger, settings)
        try:
            barrier.wait()
            end = time.monotonic() + window_s
            while time.monotonic() < end:  # four schedules firing every 10 ms
                await runner.run()
                await asyncio.sleep(0.01)
        finally:
            await pool.close()

    _run_in_threads(4, tick)

    assert ledger.overlaps == []
    assert set(ledger.executions) == set(ids)
    for task_id in ids:
        starts = ledger.starts[task_id]
        gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
        # Due at 0, 0.3, ... 1.5 s: at most 6 runs, never two within one interval (10 ms of
        # slack: the interval is counted on the database's clock, the gaps on ours).
        assert 3 <= len(starts) <= 6, starts
        assert min(gaps) >= interval_ms / 1000 - 0.01, gaps
