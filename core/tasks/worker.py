"""``TaskWorker``: the code that runs tasks of one name (elizaOS ``TaskWorker`` in ``types/task.ts``).

A plugin lists its workers in ``Plugin.task_workers`` (or a runtime adds one with
``register_task_worker``); the scheduled runner (``core.tasks.runner``) calls a worker for
every due task of the same ``name`` belonging to an agent that has the worker registered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.runtime import AgentRuntime
    from core.types import Task

#: ``execute(runtime, options, task)``; ``options`` is the task's metadata (camelCase keys).
TaskExecute = Callable[["AgentRuntime", Mapping[str, Any], "Task"], Awaitable[Any]]
#: ``validate(runtime, task) -> bool``: False skips this run and leaves the task due.
TaskValidate = Callable[["AgentRuntime", "Task"], Awaitable[bool]]


@dataclass(frozen=True)
class TaskWorker:
    """Runs tasks named ``name``.

    Attributes:
        name: The task name it serves (``Task.name``); unique per agent.
        execute: ``execute(runtime, options, task)``, as elizaOS calls it: ``options`` is the
            task's metadata as stored (``updateInterval``, ``options``...). Raising an
            exception (or running past ``TASK_TIMEOUT_S``) is a failed attempt: the error is
            recorded and the task retried with backoff, up to ``TASK_MAX_ATTEMPTS``. The
            exception's text is stored in ``last_error`` and shown by the API: keep secrets out
            of it. A task may run again after a crash (at least once): make it idempotent.
        validate: Optional ``validate(runtime, task) -> bool``, asked before each run; False
            puts the task back untouched (it stays due, and is asked again next run). elizaOS
            calls ``validate(runtime, {} as Memory, {} as State)``, so a validator cannot see
            which task it judges; here it gets the task. Raising counts as a failed attempt
            (elizaOS only logs it and asks again every second, forever).
    """

    name: str
    execute: TaskExecute
    validate: TaskValidate | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a task worker must have a name")
