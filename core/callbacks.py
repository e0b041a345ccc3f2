"""Calling user callbacks that may be sync or async (``on_stream_chunk``, ``on_response``...)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


async def call(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, awaited when it returns an awaitable; its result."""
    result = fn(*args)
    return await result if inspect.isawaitable(result) else result


async def emit_chunk(callback: Callable[[str], Any] | None, chunk: str) -> None:
    """Deliver a text chunk to a sync or async callback; empty chunks and no callback do nothing."""
    if callback is not None and chunk:
        await call(callback, chunk)
