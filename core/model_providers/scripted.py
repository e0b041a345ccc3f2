"""A scripted model provider: replays canned answers, for tests and demos.

Text models answer from per-type queues filled with ``ScriptedModels.script``; an entry may be
a string, an exception to raise, or a callable ``(params) -> str``. Embeddings are a real,
if crude, deterministic model (hashed bag of words, 384 dimensions, unit length), so that
vector search works end to end without loading ONNX.

``SCRIPTED_REPLY`` (load tests and demos): with it set, a text call that finds nothing queued
answers with that reply instead of failing, in the XML every parser of a turn reads (the
message handler's ``<actions>REPLY</actions><text>``, should-respond's ``<action>RESPOND``, the
reflection's empty ``<facts>`` and ``<relationships>``): ``make run`` with
``MODEL_PLUGINS=core.model_providers.scripted SCRIPTED_REPLY=hi`` answers every message with
"hi" at no model cost.

``SCRIPTED_STREAM_CHARS`` and ``SCRIPTED_STREAM_DELAY_MS`` (demos and streaming tests): when a
text call asks for a stream (``on_stream_chunk``), its answer is delivered that many characters at
a time with that pause (ms) before each piece, as a hosted model streams; unset (0), the registry
delivers the whole answer at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import math
import os
import re
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from core.errors import ModelError
from core.plugin import ModelRegistration, Plugin
from core.types import ModelType
from core.types.model_runtime import ModelRuntime

Answer = str | BaseException | Callable[[Mapping[str, Any]], str]
_WORD = re.compile(r"\w+")
#: The variable holding the fixed reply of the process-wide models (see the module docstring).
SCRIPTED_REPLY_ENV = "SCRIPTED_REPLY"
#: Streamed answers: characters per chunk (0: no streaming) and the pause before each, ms.
SCRIPTED_STREAM_CHARS_ENV, SCRIPTED_STREAM_DELAY_MS_ENV = "SCRIPTED_STREAM_CHARS", "SCRIPTED_STREAM_DELAY_MS"


def fixed_answer(reply: str) -> str:
    """The answer to any text call that makes a turn reply ``reply`` (XML-escaped inside ``<text>``)."""
    return (
        "<response><thought>scripted reply</thought><action>RESPOND</action><actions>REPLY</actions>"
        f"<text>{html.escape(reply, quote=False)}</text><facts></facts><relationships></relationships></response>"
    )


class ScriptedModels:
    """Queues of canned answers by model type, texts the embedding model refuses, and a log of
    every call's params.

    Args:
        dimension: Length of the vectors ``TEXT_EMBEDDING`` returns.
        fixed_reply: When set, what a text call answers when nothing is queued (``fixed_answer``).
    """

    def __init__(self, dimension: int = 384, fixed_reply: str | None = None) -> None:
        self.dimension = dimension
        self.fixed_reply = fixed_reply
        #: Streamed answers (see the module docstring): characters per chunk, 0 for none; pause in ms.
        self.stream_chars = int(os.environ.get(SCRIPTED_STREAM_CHARS_ENV) or 0)
        self.stream_delay_ms = float(os.environ.get(SCRIPTED_STREAM_DELAY_MS_ENV) or 0)
        self.answers: dict[ModelType, deque[Answer]] = {}
        self.calls: list[tuple[ModelType, dict[str, Any]]] = []
        self.refused: set[str] = set()

    def script(self, model_type: ModelType, *answers: Answer) -> None:
        """Queue answers for ``model_type``, used in order."""
        self.answers.setdefault(model_type, deque()).extend(answers)

    def refuse(self, *texts: str) -> None:
        """Make ``TEXT_EMBEDDING`` refuse any call holding one of ``texts``, as a hosted model
        refuses a request with one input it will not take: the whole call fails (a
        non-retryable ``ModelError``)."""
        self.refused.update(texts)

    def _record(self, model_type: ModelType, params: Mapping[str, Any]) -> None:
        if self.fixed_reply is None:  # with a fixed reply (a load test), a log of calls would grow without end
            self.calls.append((model_type, dict(params)))

    def reset(self) -> None:
        """Forget queued answers and recorded calls."""
        self.answers.clear()
        self.calls.clear()
        self.refused.clear()
        self.stream_chars = int(os.environ.get(SCRIPTED_STREAM_CHARS_ENV) or 0)
        self.stream_delay_ms = float(os.environ.get(SCRIPTED_STREAM_DELAY_MS_ENV) or 0)

    async def text(self, model_type: ModelType, params: Mapping[str, Any]) -> str:
        """Next queued answer for ``model_type``, else the fixed reply's answer when one is set.

        Raises:
            ModelError: nothing is queued and no fixed reply is set (non-retryable), or the
                queued entry is that error.
        """
        self._record(model_type, params)
        queue = self.answers.get(model_type)
        if not queue and self.fixed_reply is not None:
            return await self._streamed(fixed_answer(self.fixed_reply), params)
        if not queue:
            raise ModelError(f"scripted model has no answer queued for {model_type.value}", provider="scripted")
        answer = queue.popleft()
        if isinstance(answer, BaseException):
            raise answer
        return await self._streamed(answer(params) if callable(answer) else answer, params)

    async def _streamed(self, text: str, params: Mapping[str, Any]) -> str:
        """Deliver ``text`` in pieces to ``on_stream_chunk`` when streaming is on and asked for."""
        callback = params.get("on_stream_chunk")
        if self.stream_chars <= 0 or not callable(callback):
            return text
        for start in range(0, len(text), self.stream_chars):
            if self.stream_delay_ms:
                await asyncio.sleep(self.stream_delay_ms / 1000)
            result = callback(text[start : start + self.stream_chars])
            if asyncio.iscoroutine(result):
                await result
        return text

    async def embed(self, params: Mapping[str, Any]) -> list[float] | list[list[float]]:
        """``{"text": str}`` → one vector; ``{"texts": [...]}`` → one vector per text."""
        self._record(ModelType.TEXT_EMBEDDING, params)
        texts = params["texts"] if "texts" in params else [params.get("text", "")]
        if refused := self.refused.intersection(map(str, texts)):
            raise ModelError(f"scripted model refuses {sorted(refused)[0]!r}", provider="scripted")
        if "texts" in params:
            return [self.vector(t) for t in params["texts"]]
        return self.vector(str(params.get("text", "")))

    def vector(self, text: str) -> list[float]:
        """Hashed bag-of-words vector of unit length (all zeros but one for empty text)."""
        vec = [0.0] * self.dimension
        for word in _WORD.findall(text.lower()) or [""]:
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            vec[int.from_bytes(digest[:4], "little") % self.dimension] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        return [v / norm for v in vec]

    def plugin(self, priority: int = 0) -> Plugin:
        """A plugin serving TEXT_SMALL, TEXT_LARGE (structured output) and TEXT_EMBEDDING."""

        def text_handler(model_type: ModelType) -> Callable[[ModelRuntime | None, Mapping[str, Any]], Awaitable[str]]:
            async def handler(runtime: ModelRuntime | None, params: Mapping[str, Any]) -> str:
                return await self.text(model_type, params)

            return handler

        async def embed_handler(runtime: ModelRuntime | None, params: Mapping[str, Any]) -> Any:
            return await self.embed(params)

        structured = frozenset({"structured_output"})
        return Plugin(
            name="scripted",
            description="Canned answers for tests and demos.",
            models=(
                ModelRegistration(ModelType.TEXT_SMALL, text_handler(ModelType.TEXT_SMALL), priority, structured),
                ModelRegistration(ModelType.TEXT_LARGE, text_handler(ModelType.TEXT_LARGE), priority, structured),
                ModelRegistration(ModelType.TEXT_EMBEDDING, embed_handler, priority),
            ),
        )


#: The process-wide scripted models; ``MODEL_PLUGINS=core.model_providers.scripted`` uses it.
models = ScriptedModels(fixed_reply=os.environ.get(SCRIPTED_REPLY_ENV) or None)
plugin = models.plugin()
