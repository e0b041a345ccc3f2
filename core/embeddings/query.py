"""The query vector of a turn's text, computed once per runtime however many providers ask.

KNOWLEDGE and FACTS both embed the message's text on every turn, concurrently. A runtime is
built per invocation (one turn), so keying on it makes this a per-turn cache: the second
provider awaits the first one's model call instead of making its own.
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
    task = calls.get(text)
    if task is None:
        if len(calls) >= MAX_TEXTS:
            calls.pop(next(iter(calls)))  # the oldest: dicts keep insertion order
        task = calls[text] = asyncio.ensure_future(_embed(runtime, text))
    try:
        return await asyncio.shield(task)  # one caller cancelled must not cancel the others' call
    except Exception:
        if calls.get(text) is task:
            del calls[text]
        raise


async def _embed(runtime: AgentRuntime, text: str) -> list[float]:
    vector: list[float] = await runtime.use_model(ModelType.TEXT_EMBEDDING, {"text": text})
    return vector
