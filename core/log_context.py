"""Keys that every log line of the current run carries: agent, room and run ids.

A :class:`~contextvars.ContextVar` holds the keys of the code running now, and
:class:`LogContextFilter` copies them onto every :class:`logging.LogRecord` that passes
through the handler it is installed on. Installed on the Powertools handler of a Lambda
function (``functions.observability`` does it), the keys become fields of the JSON line,
for the function's own logger and for the stdlib loggers of ``core`` alike: Powertools
prints the extra attributes of a record. ``core`` itself needs neither Powertools nor any
handler for this: without the filter, binding keys costs a context variable set.

Contract with the runtime (``core.runtime``):

* when a run starts (a message turn, a task run), call
  ``token = bind_log_keys(agent_id=..., room_id=..., run_id=...)``;
* when it ends, whatever the outcome, call ``reset_log_keys(token)`` (``try``/``finally``),
  in the same task: a token can only be reset in the context it was made in.

Keys bound by a coroutine are seen by the tasks it starts afterwards (``asyncio`` copies
the context into each new task) and never by its caller's later lines: the Lambda handlers
run each invocation's coroutine as a task of its own, so nothing leaks into the next
invocation. Bindings nest: an inner ``bind_log_keys`` adds or replaces keys until reset.
A key given explicitly in a log call (``extra={"room_id": ...}``) wins over the bound one.

Example:
    >>> token = bind_log_keys(agent_id=agent_id, room_id=room_id, run_id=run_id)
    >>> try:
    ...     await handle(message)
    ... finally:
    ...     reset_log_keys(token)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import MappingProxyType

#: Attributes of every ``LogRecord`` (and those ``logging`` refuses in ``extra``): a bound key
#: with one of these names would overwrite the record's own data.
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

_EMPTY: Mapping[str, str] = MappingProxyType({})
# Immutable mappings: a task that inherited a binding can never change its parent's keys.
_log_keys: ContextVar[Mapping[str, str]] = ContextVar("log_keys", default=_EMPTY)


def bind_log_keys(**keys: object) -> Token[Mapping[str, str]]:
    """Add keys to every log line of the current context, until :func:`reset_log_keys`.

    Args:
        **keys: Key names and values; values are logged as strings (a ``UUID`` as its
            canonical form). ``None`` values are skipped, so optional ids can be passed as is.

    Returns:
        The token that restores the previous keys.

    Raises:
        ValueError: a key names a ``LogRecord`` attribute (``name``, ``msg``, ``message``...).
    """
    reserved = sorted(set(keys) & _RECORD_ATTRIBUTES)
    if reserved:
        raise ValueError(f"log keys {reserved} would overwrite LogRecord attributes")
    merged = {**_log_keys.get(), **{name: str(value) for name, value in keys.items() if value is not None}}
    return _log_keys.set(MappingProxyType(merged))


def reset_log_keys(token: Token[Mapping[str, str]]) -> None:
    """Restore the keys bound before the ``bind_log_keys`` call that returned ``token``.

    Raises:
        ValueError: ``token`` was made in another context (another task), or was already used.
        RuntimeError: ``token`` was already used (Python < 3.12 raises this instead).
    """
    _log_keys.reset(token)


def current_log_keys() -> dict[str, str]:
    """A copy of the keys bound in the current context (empty outside any run)."""
    return dict(_log_keys.get())


@contextmanager
def log_keys(**keys: object) -> Iterator[None]:
    """``bind_log_keys`` for the duration of a ``with`` block (synchronous code and tests)."""
    token = bind_log_keys(**keys)
    try:
        yield
    finally:
        reset_log_keys(token)


class LogContextFilter(logging.Filter):
    """Copies the bound keys onto each record; never drops a record.

    Install it on a handler (``handler.addFilter(LogContextFilter())``) rather than on a
    logger: a logger's filters only see records logged on that very logger, while a
    handler's see the records of every child logger that propagates to it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _log_keys.get().items():
            if name not in record.__dict__:  # an explicit ``extra`` wins
                setattr(record, name, value)
        return True
