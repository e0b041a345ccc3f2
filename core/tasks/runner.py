"""``TaskRunner``: one scheduled run, claiming due tasks with a lease and running their workers.

elizaOS runs tasks from a 1-second timer in one long-lived process, with no locking. In
Lambda that timer never fires while the container is frozen, and two containers would run
the same task twice. Here each EventBridge Scheduler tick invokes ``functions.tasks``, whose
runner:

1. takes back tasks whose lease lapsed (their runner crashed or was killed): a failed
   attempt, retried with backoff or marked ``failed`` (``recover_expired_task_leases``);
2. warns about due tasks no worker of this deployment can run, and leaves them alone (they
   are never claimed, so another deployment that has the worker still can);
3. claims due tasks with ``FOR UPDATE SKIP LOCKED`` and a lease in one statement
   (``claim_due_tasks``), at most ``TASK_CONCURRENCY`` running at once, each under a
   ``TASK_TIMEOUT_S`` timeout, each at most once per run, until nothing is due,
   ``TASK_MAX_PER_RUN`` were claimed, or less than ``TASK_TIMEOUT_S + TASK_TIME_RESERVE_S``
   remains of the invocation (``context.get_remaining_time_in_millis()``);
4. settles each task under its lease: a one-off task (no ``"repeat"`` tag) is deleted on
   success; a repeat task is due again ``updateInterval`` ms after its run started; a failure
   records ``last_error`` and retries after ``TASK_RETRY_BASE_DELAY_S × 2^(attempts-1)``
   (at most ``TASK_RETRY_MAX_DELAY_S``) until ``TASK_MAX_ATTEMPTS`` runs, then marks the task
   ``failed``. elizaOS only logs a failure and runs the task again every second, forever.

Why a task never runs twice at once: a claim changes ``pending`` to ``running`` under a row
lock, so only one claimer gets it; the lease lasts past the end of the invocation that
claimed it (the remaining invocation time plus ``TASK_LEASE_MARGIN_S``), so it cannot lapse
while that invocation can still be running the task; and every write that ends a run checks
the lease owner, so a run that lost its lease changes nothing. Delivery is at least once: a
runner that dies after the worker's side effects but before settling leaves the task to be
run again after its lease lapses; workers must tolerate that (docs/architecture.md "At-least-once everywhere").

The resolution of ``updateInterval`` is the schedule's rate (one minute by default): each
task runs at most once per invocation, as elizaOS's resolution was its 1-second tick.
Cancellation is cooperative: a worker that blocks the event loop cannot be timed out, only
killed with the invocation (its lease then lapses and the task is recovered).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

from core.db.adapter import DatabaseAdapter
from core.settings.tasks import TaskRunnerSettings
from core.tasks.worker import TaskWorker
from core.types import Task, TaskStatus

if TYPE_CHECKING:
    from core.blueprint import AgentBlueprint
    from core.runtime import AgentRuntime

logger = logging.getLogger(__name__)

#: ``context.get_remaining_time_in_millis`` of the Lambda invocation.
RemainingMs = Callable[[], int]
#: Most expired leases taken back per run.
RECOVER_LIMIT = 100


class AgentSource(Protocol):
    """Where the runner finds agents, their workers and runtimes (``core.orchestrator.Orchestrator``)."""

    def get_agents(self) -> Sequence[AgentBlueprint]: ...

    def runtime(self, ref: str | UUID) -> AgentRuntime: ...


@dataclass
class RunReport:
    """What one run did (returned by the handler and sent as metrics).

    Attributes:
        owner: The run's lease owner.
        recovered: Tasks whose lapsed lease was taken back.
        without_worker: Due tasks left alone because no worker here can run them.
        claimed: Tasks claimed.
        succeeded: Runs that succeeded (one-off tasks deleted, repeat tasks rescheduled).
        retried: Runs that failed and will be retried.
        failed: Runs that failed for the last time (task marked ``failed``).
        skipped: Tasks put back untouched because the worker's ``validate`` said no.
        lost: Tasks no longer held when their run ended (deleted by the worker, or the lease
            lapsed and another runner took them): nothing was written.
        errors: Database errors while claiming or settling (the lease then lapses and the
            task is recovered by a later run).
        stopped_for_time: Claiming stopped because the invocation's remaining time got short.
    """

    owner: str
    recovered: int = 0
    without_worker: int = 0
    claimed: int = 0
    succeeded: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    lost: int = 0
    errors: int = 0
    stopped_for_time: bool = False

    def as_dict(self) -> dict[str, int | bool | str]:
        """The report as a JSON-ready dict (snake_case keys)."""
        return asdict(self)


class TaskRunner:
    """Claims and runs due tasks for the agents of this deployment.

    Args:
        adapter: The database adapter (its pool must allow ``concurrency`` + 1 connections
            for the tasks to use the database concurrently; fewer only serialises them).
        agents: The agents, their workers and per-invocation runtimes (the orchestrator).
        settings: Concurrency, timeouts, retries (``TaskRunnerSettings.from_env()`` by default).
    """

    def __init__(
        self, adapter: DatabaseAdapter, agents: AgentSource, settings: TaskRunnerSettings | None = None
    ) -> None:
        self.adapter = adapter
        self.agents = agents
        self.settings = settings or TaskRunnerSettings.from_env()

    async def run(self, remaining_ms: RemainingMs | None = None, *, run_id: str | None = None) -> RunReport:
        """One scheduled run (see the module docstring for the steps).

        Args:
            remaining_ms: The invocation's ``context.get_remaining_time_in_millis``; ``None``
                when not in Lambda (then each lease lasts ``TASK_TIMEOUT_S`` + the margin).
            run_id: Put into the lease owner for tracing (the Lambda request id).

        Returns:
            What the run did. Worker failures and database errors are recorded, never raised.
        """
        owner = f"{run_id[:120]}/{uuid.uuid4()}" if run_id else str(uuid.uuid4())
        report = RunReport(owner=owner)
        blueprints = list(self.agents.get_agents())
        agent_ids = [b.agent_id for b in blueprints]
        workers = {(b.agent_id, name): w for b in blueprints for name, w in b.task_workers.items()}
        await self._recover(agent_ids, report)
        await self._warn_without_worker(agent_ids, list(workers), report)
        if not workers:
            return report
        if remaining_ms is not None and remaining_ms() < self.settings.claim_needs_ms:
            logger.error(
                "only %d ms left at the start of the run; TASK_TIMEOUT_S + TASK_TIME_RESERVE_S need %d ms:"
                " raise the function timeout or lower TASK_TIMEOUT_S",
                remaining_ms(),
                self.settings.claim_needs_ms,
            )
            report.stopped_for_time = True
            return report
        await self._claim_and_run(workers, remaining_ms, report)
        return report

    # -- steps ------------------------------------------------------------------------------

    async def _recover(self, agent_ids: list[UUID], report: RunReport) -> None:
        try:
            recovered = await self.adapter.recover_expired_task_leases(
                agent_ids,
                max_attempts=self.settings.max_attempts,
                limit=RECOVER_LIMIT,
                retry_base_delay_ms=int(self.settings.retry_base_delay_s * 1000),
                retry_max_delay_ms=int(self.settings.retry_max_delay_s * 1000),
            )
        except Exception:
            logger.exception("taking back expired task leases failed; tried again next run")
            report.errors += 1
            return
        for task in recovered:
            logger.warning(
                "task %s (%s) of agent %s: lease expired after attempt %d; %s",
                task.id,
                task.name,
                task.agent_id,
                task.attempts,
                "marked failed" if task.status is TaskStatus.FAILED else "retried later",
            )
        report.recovered = len(recovered)

    async def _warn_without_worker(
        self, agent_ids: list[UUID], workers: list[tuple[UUID, str]], report: RunReport
    ) -> None:
        try:
            orphans = await self.adapter.count_due_tasks_without_worker(agent_ids, workers)
        except Exception:
            logger.exception("counting due tasks without a worker failed")
            report.errors += 1
            return
        for (agent_id, name), count in sorted(orphans.items(), key=lambda item: (str(item[0][0]), item[0][1])):
            logger.warning(
                "%d due task(s) %r of agent %s have no worker registered in this deployment; left alone",
                count,
                name,
                agent_id,
            )
        report.without_worker = sum(orphans.values())

    async def _claim_and_run(
        self, workers: Mapping[tuple[UUID, str], TaskWorker], remaining_ms: RemainingMs | None, report: RunReport
    ) -> None:
        settings = self.settings
        keys = list(workers)
        seen: list[UUID] = []
        running: set[asyncio.Task[None]] = set()
        more = True
        while True:
            free = min(settings.concurrency - len(running), settings.max_per_run - report.claimed)
            if more and free > 0:
                if remaining_ms is not None and remaining_ms() < settings.claim_needs_ms:
                    logger.info("less than %d ms left: no more claims this run", settings.claim_needs_ms)
                    report.stopped_for_time = True
                    more = False
                else:
                    claimed = await self._claim(report.owner, keys, free, seen, remaining_ms, report)
                    more = len(claimed) == free  # fewer than asked: nothing else is due now
                    for task in claimed:
                        seen.append(task.id)
                        worker = workers[(task.agent_id, task.name)]
                        running.add(asyncio.create_task(self._run_one(task, worker, report)))
            if not running:
                return
            _, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)

    async def _claim(
        self,
        owner: str,
        keys: list[tuple[UUID, str]],
        limit: int,
        seen: list[UUID],
        remaining_ms: RemainingMs | None,
        report: RunReport,
    ) -> list[Task]:
        # The lease outlives anything that can still run the task: in Lambda, the rest of the
        # invocation (it is killed at its deadline); elsewhere, the task's own timeout.
        base_s = (
            self.settings.task_timeout_s
            if remaining_ms is None
            else max(remaining_ms() / 1000, self.settings.task_timeout_s)
        )
        try:
            claimed = await self.adapter.claim_due_tasks(
                owner, keys, limit=limit, lease_s=base_s + self.settings.lease_margin_s, exclude=seen
            )
        except Exception:
            logger.exception("claiming due tasks failed; no more claims this run")
            report.errors += 1
            return []
        report.claimed += len(claimed)
        return claimed

    async def _run_one(self, task: Task, worker: TaskWorker, report: RunReport) -> None:
        """Run one claimed task under its timeout and settle it; never raises."""
        timeout_s = self.settings.task_timeout_s
        started = time.monotonic()
        error: str | None = None
        skipped = False
        runtime = self.agents.runtime(task.agent_id)
        deadline = asyncio.timeout(timeout_s)
        try:
            async with deadline:
                if worker.validate is not None and not await worker.validate(runtime, task):
                    skipped = True
                else:
                    options = task.metadata.model_dump(mode="json", by_alias=True, exclude_none=True)
                    await worker.execute(runtime, options, task)
        except TimeoutError as exc:
            # Ours when the deadline expired; otherwise the worker's own TimeoutError.
            error = f"timed out after {timeout_s:g} s" if deadline.expired() else _describe(exc)
        except Exception as exc:
            error = _describe(exc)
        finally:
            await runtime.flush_embeddings()  # what the worker queued; never raises
        elapsed_ms = int((time.monotonic() - started) * 1000)
        await self._settle(task, report, error=error, elapsed_ms=elapsed_ms, skipped=skipped)

    async def _settle(
        self, task: Task, report: RunReport, *, error: str | None = None, elapsed_ms: int = 0, skipped: bool = False
    ) -> None:
        """Write the outcome under the lease; a database error is logged (the lease then lapses)."""
        adapter, owner = self.adapter, report.owner
        try:
            if skipped:
                held = await adapter.release_task(task.agent_id, task.id, owner)
                outcome = "skipped"
            elif error is None and "repeat" in task.tags:
                held = await adapter.reschedule_task(task.agent_id, task.id, owner, elapsed_ms=elapsed_ms)
                outcome = "succeeded"
            elif error is None:
                held = await adapter.complete_task(task.agent_id, task.id, owner)
                outcome = "succeeded"
            else:
                give_up = task.attempts >= self.settings.max_attempts
                retry_in_ms = None if give_up else self.settings.retry_delay_ms(task.attempts)
                held = await adapter.fail_task(task.agent_id, task.id, owner, error, retry_in_ms=retry_in_ms)
                outcome = "failed" if give_up else "retried"
                logger.warning(
                    "task %s (%s) of agent %s failed (attempt %d/%d): %s; %s",
                    task.id,
                    task.name,
                    task.agent_id,
                    task.attempts,
                    self.settings.max_attempts,
                    error,
                    "marked failed" if give_up else f"retried in {retry_in_ms} ms",
                )
        except Exception:
            logger.exception(
                "settling task %s (%s) failed; its lease will lapse and it will run again", task.id, task.name
            )
            report.errors += 1
            return
        if held:
            setattr(report, outcome, getattr(report, outcome) + 1)
        else:
            report.lost += 1
            logger.warning(
                "task %s (%s) of agent %s was no longer held by this run when it ended (deleted"
                " meanwhile, or its lease lapsed and another runner took it): nothing written",
                task.id,
                task.name,
                task.agent_id,
            )


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
