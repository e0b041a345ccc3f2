"""What a route needs, given by the handler for each request: the container, the orchestrator and the caller.

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

from functions.api.identity import Caller

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
_caller: ContextVar[Caller | None] = ContextVar("caller")


class Unauthenticated(Exception):
    """A route that needs a caller ran without one (the API answers 401)."""


def current() -> Api:
    """The ``Api`` of the request being served.

    Raises:
        LookupError: called outside ``serving`` (a route run without the handler).
    """
    return _serving.get()


def caller() -> Caller:
    """The verified caller of the request being served (``functions.api.identity``).

    Raises:
        Unauthenticated: the request carries no verified identity.
        LookupError: called outside ``serving`` (a route run without the handler).
    """
    who = _caller.get()
    if who is None:
        raise Unauthenticated("this route needs a verified caller")
    return who


@contextlib.contextmanager
def serving(api: Api, who: Caller | None = None) -> Iterator[None]:
    """Make ``api`` and ``who`` what ``current()`` and ``caller()`` return while the block runs (one request)."""
    token, caller_token = _serving.set(api), _caller.set(who)
    try:
        yield
    finally:
        _caller.reset(caller_token)
        _serving.reset(token)
