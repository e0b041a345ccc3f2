"""The scheduled function: task workers and housekeeping, on an EventBridge Scheduler rate.

Each invocation (a tick of the ``ScheduleV2`` event in ``template.yaml``, or of the local
scheduler in ``infra/local/scheduler.py``) runs, in order:

0. the agents stored since the last tick are picked up (``core.agent_refresh``, one query);
   each agent is prepared once per container (the first tick after a deploy, a cold start
   or the agent's arrival; an agent that failed is retried, the others are not):
   ``core.tasks.agent_setup.prepare_agents``, its retention tasks and character knowledge;
1. housekeeping (``core.tasks.housekeeping``): memories whose embedding never arrived are
   queued again, expired cache rows deleted; bounded per run;
2. the task runner (``core.tasks.runner``): expired leases taken back, then due tasks
   claimed with ``FOR UPDATE SKIP LOCKED`` and a lease and run by their ``TaskWorker``s,
   until nothing is due or the invocation's remaining time gets short.

Any number of invocations may overlap (a slow run, a retried tick): claims never hand the
same task to two of them. The event itself is only a tick: its time is logged and its
delay reported as a metric, its content otherwise ignored (EventBridge Scheduler sends the
``Input`` of the template, shaped like a scheduled event; without one, a default notice).

Observability (``functions.observability``): the schedule event's ``id`` (else the
invocation's request id) is the ``correlation_id`` of every line; the run logs what it did;
metrics ``TasksClaimed``, ``TasksSucceeded``, ``TasksRetried``, ``TasksFailed``, ``TasksSkipped``,
``TasksLeaseRecovered``, ``TasksWithoutWorker``, ``TasksLost``, ``SchedulerErrors``,
``EmbeddingsRequeued``, ``ExpiredCacheDeleted`` and ``ScheduleLag`` (s).

Init phase (module level, once per container): settings, loop, pool, the agents with their
plugins' task workers, the SQS link. Settings (environment, besides the container's):

| variable | default | meaning |
|---|---|---|
| ``TASK_CONCURRENCY`` | ``4`` | tasks run at once per invocation (``DB_POOL_MAX_SIZE`` should be one more) |
| ``TASK_TIMEOUT_S`` | ``60`` | longest run of one task (s); below the function timeout minus the reserve |
| ``TASK_TIME_RESERVE_S`` | ``10`` | no claim once less than ``TASK_TIMEOUT_S`` + this remains (s) |
| ``TASK_LEASE_MARGIN_S`` | ``30`` | a lease outlives the invocation's deadline by this much (s) |
| ``TASK_MAX_ATTEMPTS`` | ``5`` | runs before a task is marked ``failed`` |
| ``TASK_RETRY_BASE_DELAY_S`` / ``TASK_RETRY_MAX_DELAY_S`` | ``30`` / ``3600`` | retry backoff, doubled per try (s) |
| ``TASK_MAX_PER_RUN`` | ``500`` | most tasks claimed per invocation |
| ``EMBEDDING_PENDING_AFTER_S`` | ``300`` | a memory still without a current vector this long is queued again (s) |
| ``EMBEDDING_PENDING_MAX_AGE_S`` | ``86400`` | older memories are not looked at (s) |
| ``EMBEDDING_REQUEUE_LIMIT`` / ``CACHE_SWEEP_LIMIT`` | ``500`` / ``1000`` | per-run bounds |
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from core.settings.tasks import HousekeepingSettings, TaskRunnerSettings
from core.tasks.agent_setup import prepare_agents
from core.tasks.housekeeping import Housekeeping, HousekeepingReport
from core.tasks.runner import RunReport, TaskRunner
from functions import end_init_phase
from functions.init_phase import build_container
from functions.observability import Observability

observability = Observability("agent-tasks")
logger, metrics = observability.logger, observability.metrics
container = build_container()
orchestrator = container.orchestrator()
runner = TaskRunner(container.adapter, orchestrator, TaskRunnerSettings.from_env())
housekeeping = Housekeeping(container.adapter, orchestrator.embedding_queue, HousekeepingSettings.from_env())
#: Agents whose retention tasks and knowledge are in place (``_prepare_agents_once``).
_agents_prepared: set[UUID] = set()


@observability.lambda_handler()
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point for EventBridge Scheduler ticks.

    Returns:
        ``{"housekeeping": {...}, "tasks": {...}}``: what the run did (for logs and local
        callers; EventBridge Scheduler invokes asynchronously and ignores it). Worker
        failures and database errors are counted there, never raised: the next tick retries.
    """
    logger.set_correlation_id(_field(event, "id") or context.aws_request_id)
    lag_s = _schedule_lag_s(event)
    logger.info(
        "scheduled run",
        extra={"event_id": _field(event, "id"), "scheduled_time": _field(event, "time"), "lag_s": lag_s},
    )
    house, tasks = container.run(_run(context))
    _record_metrics(house, tasks, lag_s)
    logger.info("scheduled run done", extra={"housekeeping": house.as_dict(), "tasks": tasks.as_dict()})
    return {"housekeeping": house.as_dict(), "tasks": tasks.as_dict()}


async def _run(context: LambdaContext) -> tuple[HousekeepingReport, RunReport]:
    await orchestrator.before_request()  # agents stored since the last tick (core.agent_refresh)
    await _prepare_agents_once()
    house = await housekeeping.run()
    tasks = await runner.run(context.get_remaining_time_in_millis, run_id=context.aws_request_id)
    return house, tasks


async def _prepare_agents_once() -> None:
    """Prepare each agent once per container: those that failed are retried, the others never again."""
    if all(b.agent_id in _agents_prepared for b in orchestrator.get_agents()):
        return
    report = await prepare_agents(orchestrator, skip=_agents_prepared)
    logger.info("agents prepared", extra={"setup": report.as_dict()})
    _agents_prepared.update(report.prepared)


def _field(event: Any, key: str) -> Any:
    return event.get(key) if isinstance(event, dict) else None


def _schedule_lag_s(event: Any) -> float | None:
    """Seconds between the scheduled time (``time``, ISO 8601) and now; ``None`` without one."""
    raw = _field(event, "time")
    if not isinstance(raw, str):
        return None
    try:
        scheduled = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    if scheduled.tzinfo is None:
        scheduled = scheduled.replace(tzinfo=UTC)
    return round((datetime.now(UTC) - scheduled).total_seconds(), 3)


def _record_metrics(house: HousekeepingReport, tasks: RunReport, lag_s: float | None) -> None:
    for name, value in (
        ("TasksClaimed", tasks.claimed),
        ("TasksSucceeded", tasks.succeeded),
        ("TasksRetried", tasks.retried),
        ("TasksFailed", tasks.failed),
        ("TasksSkipped", tasks.skipped),
        ("TasksLeaseRecovered", tasks.recovered),
        ("TasksWithoutWorker", tasks.without_worker),
        ("TasksLost", tasks.lost),
        ("SchedulerErrors", tasks.errors + house.errors),
        ("EmbeddingsRequeued", house.requeued_embeddings),
        ("ExpiredCacheDeleted", house.expired_cache_deleted),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    if lag_s is not None:
        metrics.add_metric(name="ScheduleLag", unit=MetricUnit.Seconds, value=max(lag_s, 0.0))


end_init_phase()  # last: resumes the collector paused by functions/__init__.py
