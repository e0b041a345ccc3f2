"""What a route needs, given by the handler for each request: the container and the orchestrator.

Routers are module-level (Powertools' pattern) and may be included in several apps of one process
(a test's, the local stack's); so they take what they need from the request being served, not
from module globals or a router's shared context: ``app.handler`` wraps each resolve in
``serving(api)`` and a route calls ``current()``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.deployment.container import Container
    from core.orchestrator import Orchestrator
    from functions.observability import Observability


@dataclass(frozen=True)
class Api:
    """The process's parts that routes use.

    Attributes:
        container: The composition root (loop, pool, adapter, settings).
        orchestrator: The agents, and runtimes for them.
        observability: Logger and metrics of the function.
    """

    container: Container
    orchestrator: Orchestrator
    observability: Observability


_serving: ContextVar[Api] = ContextVar("api")


def current() -> Api:
    """The ``Api`` of the request being served.

    Raises:
        LookupError: called outside ``serving`` (a route run without the handler).
    """
    return _serving.get()


@contextlib.contextmanager
def serving(api: Api) -> Iterator[None]:
    """Make ``api`` what ``current()`` returns while the block runs (one request)."""
    token = _serving.set(api)
    try:
        yield
    finally:
        _serving.reset(token)
