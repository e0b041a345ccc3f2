"""Handlers the gateway's process containers import by name (``tests.infra.container_handlers:...``)."""

from __future__ import annotations

import os
import time
from typing import Any

#: Module state, as a handler's init phase leaves it: one per container.
INVOCATIONS = {"count": 0}


def slow(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Sleeps 0.3 s; answers its container's pid and how many events this container has run."""
    INVOCATIONS["count"] += 1
    time.sleep(0.3)
    return {"pid": os.getpid(), "count": INVOCATIONS["count"], "requestId": context.aws_request_id}


def crash_on_crash_path(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Kills its own process on ``/crash`` (a crash in native code); answers its pid otherwise."""
    if event["rawPath"] == "/crash":
        os._exit(1)
    return {"pid": os.getpid()}


def busy(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """About 50 ms of pure-Python work: a CPU-bound turn's shape."""
    deadline = time.process_time() + 0.05
    n = 0
    while time.process_time() < deadline:
        n += 1
    return {"pid": os.getpid(), "n": n}
