"""A local stand-in for EventBridge Scheduler: a timer thread that invokes the tasks handler.

Every ``interval_s`` it calls ``handler(event, context)`` with the scheduled event AWS would
deliver (``scheduled_event``: the shape of a scheduled event, as the template's ``Input``
makes EventBridge Scheduler send it) and a fresh
:class:`~infra.local.lambda_context.LambdaContext` whose remaining time counts down from the
function timeout, so the handler stops claiming as it would in Lambda.

Ticks never overlap here (one thread); in AWS they may, which the runner's leases allow. A
tick that raises is logged and the next one comes on time, as a failed asynchronous
invocation would be followed by the next scheduled one.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from infra.local.background import BackgroundLoop
from infra.local.lambda_context import LOCAL_ACCOUNT_ID, new_context

logger = logging.getLogger(__name__)

#: A Lambda handler: ``handler(event, context) -> result``.
Handler = Callable[[dict[str, Any], Any], Any]


def _region() -> str:
    """The region the AWS SDK would use, else us-east-1 (as the local gateway and poller do)."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def scheduled_event(
    schedule_arn: str, *, region: str | None = None, account: str = LOCAL_ACCOUNT_ID, when: datetime | None = None
) -> dict[str, Any]:
    """The scheduled event of one tick, as EventBridge delivers it to Lambda.

    Args:
        schedule_arn: The schedule's ARN (in ``resources``).
        region: AWS region; the SDK's default region when ``None``.
        account: Account id.
        when: Scheduled time (UTC now when ``None``); sent whole seconds, as AWS does.

    Returns:
        ``{"version", "id", "detail-type": "Scheduled Event", "source", "account", "time",
        "region", "resources", "detail"}``.
    """
    moment = (when or datetime.now(UTC)).astimezone(UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": account,
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region or _region(),
        "resources": [schedule_arn],
        "detail": {},
    }


class LocalScheduler(BackgroundLoop):
    """Invokes a handler on a fixed rate, like an EventBridge Scheduler ``rate()`` schedule.

    Example:
        >>> scheduler = LocalScheduler(tasks.handler, interval_s=60).start()
        >>> scheduler.stop()

    Args:
        handler: The Lambda handler, ``handler(event, context)``.
        interval_s: Seconds between ticks (the schedule's rate).
        function_name: Function name put into each context.
        timeout_s: Function timeout, as seen by ``get_remaining_time_in_millis``, seconds.
        memory_mb: Memory size reported in the context, MiB.
        schedule_name: Name in the schedule ARN of each event.
        first_tick_s: Seconds before the first tick (``interval_s`` when ``None``).

    Raises:
        ValueError: ``interval_s`` or ``timeout_s`` is not positive.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        interval_s: float = 60.0,
        function_name: str = "tasks",
        timeout_s: float = 120.0,
        memory_mb: int = 1024,
        schedule_name: str = "tasks-schedule",
        first_tick_s: float | None = None,
    ) -> None:
        if interval_s <= 0 or timeout_s <= 0:
            raise ValueError("interval_s and timeout_s must be positive")
        self._handler = handler
        self.interval_s = interval_s
        super().__init__("scheduler", function_name)
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.first_tick_s = interval_s if first_tick_s is None else max(0.0, first_tick_s)
        self.schedule_arn = f"arn:aws:scheduler:{_region()}:{LOCAL_ACCOUNT_ID}:schedule/default/{schedule_name}"
        self.ticks = 0
        self.failures = 0

    def _detail(self) -> str:
        return f": every {self.interval_s:g} s"

    def stop(self, timeout_s: float = 30) -> None:
        """Stop ticking and wait for a tick in progress; safe to call twice."""
        super().stop(timeout_s)

    def tick(self) -> Any:
        """Invoke the handler once, now, with a fresh scheduled event and context.

        Do not call it while the background thread runs (one tick at a time here).

        Returns:
            What the handler returned.

        Raises:
            Exception: whatever the handler raised.
        """
        event = scheduled_event(self.schedule_arn)
        context = new_context(self.function_name, self.timeout_s, self.memory_mb)
        self.ticks += 1
        return self._handler(event, context)

    def _run(self) -> None:
        delay = self.first_tick_s
        while not self._stop.wait(delay):
            try:
                result = self.tick()
                logger.debug("%s tick %d: %s", self.function_name, self.ticks, result)  # the handler logs it too
            except Exception:
                self.failures += 1
                logger.exception("%s tick %d failed; the next one comes on schedule", self.function_name, self.ticks)
            delay = self.interval_s
