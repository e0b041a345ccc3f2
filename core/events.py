"""Events: named hooks that plugins listen to (elizaOS ``registerEvent`` / ``emitEvent``).

Handlers of one event run concurrently; a failing handler is logged and never stops the
others or the caller (elizaOS lets one failure reject the whole emit).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from enum import StrEnum
from typing import Any

logger = logging.getLogger(__name__)

EventHandler = Callable[[Mapping[str, Any]], Awaitable[None]]


class EventType(StrEnum):
    """elizaOS event names (``packages/core/src/types/events.ts``)."""

    MESSAGE_RECEIVED = "MESSAGE_RECEIVED"
    MESSAGE_SENT = "MESSAGE_SENT"
    RUN_STARTED = "RUN_STARTED"
    RUN_ENDED = "RUN_ENDED"
    RUN_TIMEOUT = "RUN_TIMEOUT"
    ACTION_STARTED = "ACTION_STARTED"
    ACTION_COMPLETED = "ACTION_COMPLETED"
    EVALUATOR_STARTED = "EVALUATOR_STARTED"
    EVALUATOR_COMPLETED = "EVALUATOR_COMPLETED"
    MODEL_USED = "MODEL_USED"
    EMBEDDING_GENERATION_REQUESTED = "EMBEDDING_GENERATION_REQUESTED"
    EMBEDDING_GENERATION_COMPLETED = "EMBEDDING_GENERATION_COMPLETED"
    EMBEDDING_GENERATION_FAILED = "EMBEDDING_GENERATION_FAILED"
    MESSAGE_DELETED = "MESSAGE_DELETED"
    CHANNEL_CLEARED = "CHANNEL_CLEARED"
    ENTITY_JOINED = "ENTITY_JOINED"
    ENTITY_LEFT = "ENTITY_LEFT"
    ENTITY_UPDATED = "ENTITY_UPDATED"
    ROOM_JOINED = "ROOM_JOINED"
    ROOM_LEFT = "ROOM_LEFT"
    WORLD_JOINED = "WORLD_JOINED"
    WORLD_CONNECTED = "WORLD_CONNECTED"
    WORLD_LEFT = "WORLD_LEFT"


class EventBus:
    """Handlers by event name. Built once per process (init phase) and shared."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[EventHandler]] = {}

    def register(self, name: str, handler: EventHandler) -> None:
        """Call ``handler(payload)`` whenever ``name`` is emitted."""
        self._handlers.setdefault(str(name), []).append(handler)

    def handlers(self, name: str) -> list[EventHandler]:
        """The handlers registered for ``name``, in registration order."""
        return list(self._handlers.get(str(name), []))

    async def emit(self, names: str | Iterable[str], payload: Mapping[str, Any]) -> int:
        """Run every handler of ``names`` concurrently with ``payload``.

        Args:
            names: One event name or several.
            payload: Passed to each handler as is.

        Returns:
            How many handlers failed (each is logged with its event name).
        """
        chosen = [names] if isinstance(names, str) else list(names)
        calls = [(name, handler) for name in chosen for handler in self.handlers(name)]
        results = await asyncio.gather(*(handler(payload) for _, handler in calls), return_exceptions=True)
        failures = 0
        for (name, _), result in zip(calls, results, strict=True):
            if isinstance(result, BaseException):
                failures += 1
                logger.error("a %s handler failed: %r", name, result)
        return failures
