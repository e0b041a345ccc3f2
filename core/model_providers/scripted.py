"""A scripted model provider: replays canned answers, for tests and demos.

Text models answer from per-type queues filled with ``ScriptedModels.script``; an entry may be
a string, an exception to raise, or a callable ``(params) -> str``. Embeddings are a real,
if crude, deterministic model (hashed bag of words, 384 dimensions, unit length), so that
vector search works end to end without loading ONNX.
"""

from __future__ import annotations

import hashlib
import math
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


class ScriptedModels:
    """Queues of canned answers by model type, and a log of every call's params.

    Args:
        dimension: Length of the vectors ``TEXT_EMBEDDING`` returns.
    """

    def __init__(self, dimension: int = 384) -> None:
        self.dimension = dimension
        self.answers: dict[ModelType, deque[Answer]] = {}
        self.calls: list[tuple[ModelType, dict[str, Any]]] = []

    def script(self, model_type: ModelType, *answers: Answer) -> None:
        """Queue answers for ``model_type``, used in order."""
        self.answers.setdefault(model_type, deque()).extend(answers)

    def reset(self) -> None:
        """Forget queued answers and recorded calls."""
        self.answers.clear()
        self.calls.clear()

    async def text(self, model_type: ModelType, params: Mapping[str, Any]) -> str:
        """Next queued answer for ``model_type``.

        Raises:
            ModelError: nothing is queued (non-retryable), or the queued entry is that error.
        """
        self.calls.append((model_type, dict(params)))
        queue = self.answers.get(model_type)
        if not queue:
            raise ModelError(f"scripted model has no answer queued for {model_type.value}", provider="scripted")
        answer = queue.popleft()
        if isinstance(answer, BaseException):
            raise answer
        return answer(params) if callable(answer) else answer

    async def embed(self, params: Mapping[str, Any]) -> list[float] | list[list[float]]:
        """``{"text": str}`` → one vector; ``{"texts": [...]}`` → one vector per text."""
        self.calls.append((ModelType.TEXT_EMBEDDING, dict(params)))
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
models = ScriptedModels()
plugin = models.plugin()
