"""Retries of transient database errors: a few attempts, exponential backoff with full jitter.

A retry re-runs the whole operation, so what is retried depends on what the server
guarantees about the transaction that failed:

* **Rolled back** (``40001`` serialization failure, ``40P01`` deadlock): the server aborted
  the transaction and nothing of it was committed. Retried for every operation (each adapter
  method is one transaction, or statements that are each idempotent).
* **Outcome unknown** (the connection was lost: SQLSTATE class ``08``, ``57P01`` admin
  shutdown as sent by ``pg_terminate_backend`` or an RDS failover, ``57P02``, ``57P03``,
  ``57P05``, or a socket closed with no SQLSTATE): when it drops while a ``COMMIT`` (or an
  autocommit write) is in flight, the write may have landed. Re-running a plain ``INSERT``
  would then fail with a unique violation, or an increment would apply twice; so these are
  retried only for *idempotent* operations: reads and upserts, i.e. methods whose name starts
  with one of ``IDEMPOTENT_PREFIXES`` or that are marked ``@idempotent``. Any other operation
  raises ``TransientDatabaseError(outcome_unknown=True)`` at once and the caller decides.
* **Pool exhausted** (``PoolTimeout``, ``TooManyRequests``): not retried. The caller has
  already waited ``DB_POOL_TIMEOUT_S``; waiting again would multiply that past the HTTP API's
  29 s. Raised as ``TransientDatabaseError`` (nothing ran).

Every other database error (constraint violation, bad SQL...) raises ``DatabaseError`` at once.
A connection that died while the container was frozen never gets here: the pool's ``check``
replaces it on checkout (``core.db.pool``).

Settings: ``DB_RETRY_ATTEMPTS``, ``DB_RETRY_BASE_DELAY_MS``, ``DB_RETRY_MAX_DELAY_MS``
(``core.settings.db``), read once in the init phase by ``RetryPolicy.from_env()``; each sleep
is uniform in ``[0, cap]``, the cap doubling from the base to the maximum.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import random
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import psycopg
from psycopg_pool import PoolClosed, PoolTimeout, TooManyRequests

from core.errors import DatabaseError, TransientDatabaseError
from core.settings.db import RetrySettings

logger = logging.getLogger(__name__)
T = TypeVar("T")
P = ParamSpec("P")
#: An object whose public methods retry: it carries the policy they use.
S = TypeVar("S", bound="RetriesTransientErrors")
C = TypeVar("C", bound=type)
#: An async method, typed as itself: decorators that mark it keep its signature for type checkers.
M = TypeVar("M", bound=Callable[..., Awaitable[Any]])

#: Method-name prefixes of operations that are safe to re-run after a lost connection: reads
#: (``get_``, ``list_``, ``search_``, ``count_``, ``is_``) and writes that converge (``upsert_``,
#: ``ensure_``). A method with one of these names must not write anything a second run would
#: duplicate; any other converging write says so with ``@idempotent``.
IDEMPOTENT_PREFIXES = ("get_", "list_", "search_", "count_", "is_", "upsert_", "ensure_")

_ROLLED_BACK = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected
# admin_shutdown, crash_shutdown, cannot_connect_now, idle_session_timeout
_CONNECTION_LOST = frozenset({"57P01", "57P02", "57P03", "57P05"})


#: Marks a method already wrapped by ``_retrying`` (an inherited one is not wrapped twice).
_WRAPPED = "__retries_transient_errors__"


class RetriesTransientErrors(Protocol):
    """What ``retry_public_methods`` needs of an instance: the policy its methods retry by."""

    retry_policy: RetryPolicy


class Failure(Enum):
    """What a failed database call leaves behind, which decides whether it may be retried."""

    ROLLED_BACK = "rolled back"
    OUTCOME_UNKNOWN = "connection lost"
    POOL_EXHAUSTED = "pool exhausted"
    PERMANENT = "permanent"


def classify(exc: BaseException) -> Failure:
    """Sort an exception into a ``Failure`` kind (see the module docstring)."""
    if isinstance(exc, PoolTimeout | TooManyRequests):
        return Failure.POOL_EXHAUSTED
    if not isinstance(exc, psycopg.Error):
        return Failure.PERMANENT
    sqlstate = exc.sqlstate or ""
    if sqlstate in _ROLLED_BACK:
        return Failure.ROLLED_BACK
    if sqlstate in _CONNECTION_LOST or sqlstate.startswith("08"):
        return Failure.OUTCOME_UNKNOWN
    # No SQLSTATE on an OperationalError: the client lost the socket ("server closed the
    # connection unexpectedly", "the connection is lost"). PoolClosed is a bug, not transient.
    if not sqlstate and isinstance(exc, psycopg.OperationalError) and not isinstance(exc, PoolClosed):
        return Failure.OUTCOME_UNKNOWN
    return Failure.PERMANENT


class RetryPolicy(RetrySettings):
    """How often and how patiently transient failures are retried: the ``DB_RETRY_*`` settings
    (``core.settings.db.RetrySettings``: ``attempts``, ``base_delay_ms``, ``max_delay_ms``,
    read by ``RetryPolicy.from_env()``) and the backoff they define.
    """

    def backoff_ms(self, retry: int) -> float:
        """Cap of the sleep before retry number ``retry`` (1-based): base × 2^(retry-1), at most max."""
        return min(self.max_delay_ms, self.base_delay_ms * 2.0 ** (retry - 1))

    def delay_s(self, retry: int) -> float:
        """Sleep before retry number ``retry``, in seconds: uniform in ``[0, backoff_ms(retry)]``.

        Full jitter, so clients that failed together (a deadlock's victims, a failover's
        connections) do not retry together.
        """
        return random.uniform(0, self.backoff_ms(retry)) / 1000


def idempotent(method: M) -> M:
    """Mark an adapter method as safe to re-run after a lost connection (see ``IDEMPOTENT_PREFIXES``)."""
    method.__idempotent__ = True  # type: ignore[attr-defined]
    return method


def is_idempotent(method: Callable[..., Any]) -> bool:
    """True when ``method`` is marked ``@idempotent`` or named like a read or an upsert."""
    return bool(getattr(method, "__idempotent__", False)) or method.__name__.startswith(IDEMPOTENT_PREFIXES)


async def call_with_retries(
    call: Callable[[], Awaitable[T]], *, operation: str, idempotent: bool, policy: RetryPolicy
) -> T:
    """Run ``call()``, retrying transient failures, and turn database errors into typed ones.

    Args:
        call: Makes a fresh coroutine for each attempt.
        operation: Name for logs and errors (the adapter method's name).
        idempotent: Whether re-running after a lost connection is safe.
        policy: Attempts and backoff.

    Returns:
        What ``call()`` returned.

    Raises:
        TransientDatabaseError: a transient failure outlived the attempts, or was not safe to retry.
        DatabaseError: any other database error (raised at the first occurrence).
    """
    attempt = 1
    while True:
        try:
            return await call()
        except psycopg.Error as exc:  # PoolTimeout and TooManyRequests are psycopg errors too
            failure = classify(exc)
            retryable = failure is Failure.ROLLED_BACK or (failure is Failure.OUTCOME_UNKNOWN and idempotent)
            if not retryable or attempt >= policy.attempts:
                # ``from None``: the psycopg error's text may quote parameters (its DETAIL line).
                raise _typed_error(exc, failure, operation, attempt, idempotent) from None
            delay = policy.delay_s(attempt)
            logger.warning(
                "database %s retried: %s, attempt %d/%d, sleeping %.0f ms",
                operation,
                _describe(exc),
                attempt + 1,
                policy.attempts,
                delay * 1000,
            )
            await asyncio.sleep(delay)
            attempt += 1


def _describe(exc: psycopg.Error) -> str:
    """Class, SQLSTATE and the names of the objects involved: never values or the DETAIL line."""
    text = type(exc).__name__
    if exc.sqlstate:
        text += f" (SQLSTATE {exc.sqlstate})"
    diag = exc.diag
    names = [
        f"{label} {value}"
        for label, value in (
            ("table", diag.table_name),
            ("constraint", diag.constraint_name),
            ("column", diag.column_name),
        )
        if value
    ]
    return text + (" on " + ", ".join(names) if names else "")


def _typed_error(
    exc: psycopg.Error, failure: Failure, operation: str, attempts: int, idempotent: bool
) -> DatabaseError:
    what = f"{operation}: {_describe(exc)}"
    if failure is Failure.PERMANENT:
        return DatabaseError(what, sqlstate=exc.sqlstate, operation=operation)
    if failure is Failure.POOL_EXHAUSTED:
        what += f": {exc}"  # the pool's own text: a duration, no data
    elif failure is Failure.OUTCOME_UNKNOWN and not idempotent:
        what += ": not retried (not idempotent); the write may or may not have been applied"
    return TransientDatabaseError(
        f"{what} [{failure.value}, {attempts} attempt(s)]",
        sqlstate=exc.sqlstate,
        operation=operation,
        attempts=attempts,
        outcome_unknown=failure is Failure.OUTCOME_UNKNOWN,
    )


def _retrying(method: Callable[Concatenate[S, P], Awaitable[T]]) -> Callable[Concatenate[S, P], Awaitable[T]]:
    """``method`` run by ``call_with_retries`` with its instance's ``retry_policy``; same signature."""
    safe = is_idempotent(method)

    @functools.wraps(method)
    async def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await call_with_retries(
            lambda: method(self, *args, **kwargs), operation=method.__name__, idempotent=safe, policy=self.retry_policy
        )

    setattr(wrapper, _WRAPPED, True)
    return wrapper


def retry_public_methods(cls: C) -> C:
    """Class decorator: wrap every public ``async def`` of ``cls`` (inherited too) in ``call_with_retries``.

    Applied once, to the composed ``PostgresAdapter``, so methods any mixin adds are covered
    without each author remembering to. The policy is the instance's ``retry_policy``. A
    method calling another public method does not multiply attempts: the inner one raises a
    ``DatabaseError``, which the outer one passes through untouched.
    """
    for name in dir(cls):
        raw = inspect.getattr_static(cls, name)
        if name.startswith("_") or not (inspect.isfunction(raw) and inspect.iscoroutinefunction(raw)):
            continue
        if not getattr(raw, _WRAPPED, False):
            setattr(cls, name, _retrying(raw))
    return cls
