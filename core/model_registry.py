"""The model registry: handlers by model type, chosen by priority (elizaOS ``registerModel``/``useModel``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.errors import ModelError, ModelNotFoundError
from core.plugin import ModelRegistration
from core.types import ModelType

if TYPE_CHECKING:
    from core.runtime import AgentRuntime

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegisteredModel:
    """A registered handler with its provider name and registration order."""

    provider: str
    registration: ModelRegistration
    order: int


class ModelRegistry:
    """Model handlers by type, best first: higher priority, then earlier registration.

    Built once per agent in the init phase and shared by its ephemeral runtimes.
    """

    def __init__(self) -> None:
        self._handlers: dict[ModelType, list[RegisteredModel]] = {}
        self._count = 0

    def register(self, provider: str, registration: ModelRegistration) -> None:
        """Add a handler for ``registration.model_type`` from ``provider``."""
        entries = self._handlers.setdefault(registration.model_type, [])
        entries.append(RegisteredModel(provider, registration, self._count))
        entries.sort(key=lambda e: (-e.registration.priority, e.order))
        self._count += 1

    def candidates(self, model_type: ModelType, provider: str | None = None) -> list[RegisteredModel]:
        """Handlers to try, in order.

        Raises:
            ModelNotFoundError: none registered for the type (or for ``provider``); the
                message names the type.
        """
        entries = self._handlers.get(model_type, [])
        if provider is not None:
            entries = [e for e in entries if e.provider == provider]
        if not entries:
            suffix = f" from provider {provider!r}" if provider else ""
            raise ModelNotFoundError(f"no model handler registered for {model_type.value}{suffix}")
        return entries

    def has(self, model_type: ModelType) -> bool:
        """True when at least one handler serves ``model_type``."""
        return bool(self._handlers.get(model_type))

    def capabilities(self, model_type: ModelType) -> frozenset[str]:
        """Capabilities of the handler ``use`` would try first (empty when none)."""
        entries = self._handlers.get(model_type)
        return entries[0].registration.capabilities if entries else frozenset()

    async def use(
        self,
        runtime: AgentRuntime,
        model_type: ModelType,
        params: Mapping[str, Any],
        provider: str | None = None,
    ) -> Any:
        """Call the best handler; on a retryable ``ModelError`` fall back to the next one.

        Raises:
            ModelNotFoundError: nothing serves the type.
            ModelError: a non-retryable failure, or every handler failed (the last error).
        """
        last_error: ModelError | None = None
        for entry in self.candidates(model_type, provider):
            try:
                return await entry.registration.handler(runtime, params)
            except ModelError as exc:
                if not exc.retryable:
                    raise
                logger.warning("model %s from %s failed (%s); trying the next provider",
                               model_type.value, entry.provider, exc)
                last_error = exc
        assert last_error is not None
        raise last_error
