"""The query vector of a turn's text, computed once per runtime however many providers ask.

KNOWLEDGE and FACTS both embed the message's text on every turn, concurrently. A runtime is
built per invocation (one turn), so keying on it makes this a per-turn cache: the second
provider awaits the first one's model call instead of making its own.

The knowledge plugin starts the call as the message arrives (``prefetch_query``), while the
message is being stored, and the turn waits for it (``prefetched_queries``) before it sends the
state's reads: the searches that need the vector then go in the same round trip as the other
reads instead of one more (``bench/message_turn.py`` counts them).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from core.types import ModelType

if TYPE_CHECKING:
    from core.runtime import AgentRuntime

#: Texts remembered per runtime: a long-lived runtime (CLI, tests) must not grow without end.
MAX_TEXTS = 8

_pending: WeakKeyDictionary[Any, dict[str, asyncio.Task[list[float]]]] = WeakKeyDictionary()


async def embed_query(runtime: AgentRuntime, text: str) -> list[float]:
    """``TEXT_EMBEDDING`` of ``text``, shared by every caller with the same runtime and text.

    Args:
        runtime: The turn's runtime (the cache lives as long as it does).
        text: What to embed, as the caller will search with it.

    Returns:
        The vector (``EMBEDDING_DIMENSION`` floats).

    Raises:
        ModelNotFoundError, ModelError: the embedding call failed (not remembered: the next
            caller tries again).
    """
    calls = _pending.setdefault(runtime, {})
    task = _started(runtime, text)
    try:
        return await asyncio.shield(task)  # one caller cancelled must not cancel the others' call
    except Exception:
        if calls.get(text) is task:
            del calls[text]
        raise


def prefetch_query(runtime: AgentRuntime, text: str) -> None:
    """Start ``embed_query(runtime, text)``'s model call without waiting for it (needs a running loop)."""
    _started(runtime, text)


def _started(runtime: AgentRuntime, text: str) -> asyncio.Task[list[float]]:
    """The model call for ``text`` of ``runtime``: the one under way or remembered, else a new one."""
    calls = _pending.setdefault(runtime, {})
    task = calls.get(text)
    if task is None:
        if len(calls) >= MAX_TEXTS:
            calls.pop(next(iter(calls)))  # the oldest: dicts keep insertion order
        task = calls[text] = asyncio.ensure_future(_embed(runtime, text))
        task.add_done_callback(_ignore_failure)
    return task


async def prefetched_queries(runtime: AgentRuntime) -> None:
    """Wait until every query embedding started for ``runtime`` has finished. Never raises: the
    provider that asks for a failed one gets its error, and the next asker calls the model again."""
    calls = list(_pending.get(runtime, {}).values())
    if calls:
        await asyncio.wait(calls)


def _ignore_failure(task: asyncio.Future[list[float]]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: the providers that ask for the vector see the error


async def _embed(runtime: AgentRuntime, text: str) -> list[float]:
    vector: list[float] = await runtime.use_model(ModelType.TEXT_EMBEDDING, {"text": text})
    return vector
