"""The model registry: handlers by model type, chosen by priority (elizaOS ``registerModel``/``useModel``).

``ModelRegistry.use`` is what ``AgentRuntime.use_model`` runs. Around the handler it adds:

- **Order and fallback.** Handlers of a type are tried best first (higher priority, then
  earlier registration). A retryable ``ModelError`` (timeout, HTTP 429, 5xx) moves on to
  the next handler; anything else (a bad request) is raised at once. A named provider
  restricts the call to that provider's handlers.
- **Defaults from settings** (TEXT_* and OBJECT_* calls only, as elizaOS ``getModelSettings``):
  for ``temperature``, ``max_tokens``, ``top_p``, ``frequency_penalty`` and
  ``presence_penalty``, a param the caller did not give (or gave as ``None``) comes from
  ``<MODEL_TYPE>_<PARAM>`` (``TEXT_LARGE_TEMPERATURE``), else ``DEFAULT_<PARAM>``
  (``DEFAULT_TEMPERATURE``); a value that is not a number is skipped with a warning.
  elizaOS's camelCase spellings (``maxTokens``...) count as given. Unlike elizaOS, an
  explicit ``None`` does not erase the default, and embedding/image calls get none.
- **Streaming.** ``on_stream_chunk`` (sync or async; elizaOS ``onStreamChunk`` accepted)
  reaches the handler as ``params["on_stream_chunk"]``. A handler that returns text
  without streaming makes the registry deliver the whole text once, so callers can rely
  on the callback. Once a chunk has reached the caller, a failure is raised rather than
  retried on another provider: the second answer would follow part of the first.
- **Accounting.** Every attempt (successful or failed) leaves one ``useModel`` log row
  with the run id, and emits ``MODEL_USED``. A handler that calls
  ``core.model_providers.usage.record_usage`` itself (every provider wrapped by
  ``base.instrument``) owns its row, which also holds the model id and tokens; for any
  other handler (scripted, local, a plugin's own) the registry writes the row, without
  model id or tokens. The two never both write.

``MODEL_USED`` payload (plus ``runtime``, added by ``emit_event``): ``type`` (model type
value), ``provider`` and ``source`` (the provider name, elizaOS's two spellings),
``model`` (id or ``None``), ``durationMs`` (wall time of the handler, ms), ``runId``,
``tokens`` (``{"prompt", "completion", "total"}`` or ``None`` when not reported),
``success`` and ``error`` (the failure's message, cut to 300 characters). The prompt is
never in it: handlers may log payloads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from core.callbacks import call
from core.errors import ModelError, ModelNotFoundError
from core.events import EventType
from core.model_providers.usage import collect_usage, record_usage
from core.plugin import ModelRegistration
from core.types import ModelType

if TYPE_CHECKING:
    from core.runtime import AgentRuntime
    from core.types.log import ModelUsageBody

logger = logging.getLogger(__name__)

#: ``on_stream_chunk(text)``: sync or async; receives text as the model writes it.
StreamCallback = Callable[[str], Any]

#: Types whose calls get sampling defaults from settings.
GENERATION_TYPES = frozenset(
    {ModelType.TEXT_SMALL, ModelType.TEXT_LARGE, ModelType.OBJECT_SMALL, ModelType.OBJECT_LARGE}
)
#: Param (snake_case, as handlers read it) → (setting suffix, elizaOS camelCase spelling).
DEFAULT_PARAMS: dict[str, tuple[str, str]] = {
    "temperature": ("TEMPERATURE", "temperature"),
    "max_tokens": ("MAX_TOKENS", "maxTokens"),
    "top_p": ("TOP_P", "topP"),
    "frequency_penalty": ("FREQUENCY_PENALTY", "frequencyPenalty"),
    "presence_penalty": ("PRESENCE_PENALTY", "presencePenalty"),
}
_INTEGER_PARAMS = frozenset({"max_tokens"})
_MAX_ERROR_CHARS = 300
_warned: set[str] = set()


class RegisteredModel(NamedTuple):
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
        """Add a handler for ``registration.model_type`` from ``provider``.

        Args:
            provider: Provider name (``use(..., provider=...)`` selects by it).
            registration: The handler, its type, priority and capabilities.
        """
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

    def capabilities(self, model_type: ModelType, provider: str | None = None) -> frozenset[str]:
        """Capabilities of the handler ``use`` would try first (empty when none)."""
        entries = [e for e in self._handlers.get(model_type, []) if provider is None or e.provider == provider]
        return entries[0].registration.capabilities if entries else frozenset()

    async def use(
        self,
        runtime: AgentRuntime | None,
        model_type: ModelType,
        params: Mapping[str, Any] | None = None,
        provider: str | None = None,
        *,
        on_stream_chunk: StreamCallback | None = None,
    ) -> Any:
        """Call the best handler; on a retryable ``ModelError`` fall back to the next one.

        Args:
            runtime: The calling runtime (settings, usage log, events), or ``None`` for a
                call that serves no agent (the embeddings worker): no defaults, no events,
                usage as a metric only.
            model_type: What to call.
            params: The handler's params (not modified; defaults are merged into a copy).
            provider: Only this provider's handlers.
            on_stream_chunk: Receives text chunks; also read from ``params``.

        Returns:
            The handler's value (text for TEXT_*, the full text even when streamed).

        Raises:
            ModelNotFoundError: nothing serves the type (or nothing from ``provider``).
            ModelError: a non-retryable failure, a failure after text was streamed, or
                the last error when every handler failed.
        """
        call_params = _with_defaults(runtime, model_type, params or {})
        tap = _stream_tap(call_params, on_stream_chunk)
        last_error: ModelError | None = None
        for entry in self.candidates(model_type, provider):
            try:
                value = await self._attempt(runtime, model_type, entry, call_params)
            except ModelError as exc:
                if not exc.retryable or (tap is not None and tap.used):
                    raise
                logger.warning(
                    "model %s from %s failed (%s); trying the next provider", model_type.value, entry.provider, exc
                )
                last_error = exc
                continue
            if tap is not None and not tap.used and isinstance(value, str) and value:
                await tap.deliver(value)  # the handler did not stream: give the caller the whole text
            return value
        assert last_error is not None
        raise last_error

    async def _attempt(
        self, runtime: Any, model_type: ModelType, entry: RegisteredModel, params: Mapping[str, Any]
    ) -> Any:
        """One handler call, accounted for. A cancelled call (not an ``Exception``) is not."""
        started = time.perf_counter()
        error: Exception | None = None
        with collect_usage() as recorded:
            try:
                value = await entry.registration.handler(runtime, params)
            except Exception as exc:
                error = exc
        await _account(runtime, model_type, entry.provider, started, recorded, error)
        if error is not None:
            raise error
        return value


async def _account(
    runtime: Any,
    model_type: ModelType,
    provider: str,
    started: float,
    recorded: list[ModelUsageBody],
    error: Exception | None,
) -> None:
    """Write the usage row the handler did not write, and emit ``MODEL_USED``."""
    duration_ms = (time.perf_counter() - started) * 1000.0
    message = None if error is None else _error_text(error)
    if recorded:
        body = recorded[-1]
    else:
        # In a block of its own: inside a handler's use_model (nested calls), the outer
        # handler's collector must not mistake this row for one the outer handler wrote.
        with collect_usage():
            body = await record_usage(
                runtime,
                provider=provider,
                model_type=model_type,
                model=None,
                usage=None,
                duration_ms=duration_ms,
                error=message,
            )
    emit = getattr(runtime, "emit_event", None)
    if emit is None:
        return
    tokens = None
    if body.prompt_tokens is not None or body.completion_tokens is not None or body.total_tokens is not None:
        tokens = {"prompt": body.prompt_tokens, "completion": body.completion_tokens, "total": body.total_tokens}
    await emit(
        EventType.MODEL_USED,
        {
            "type": model_type.value,
            "provider": provider,
            "source": provider,
            "model": body.model,
            "durationMs": duration_ms,
            "runId": body.run_id,
            "tokens": tokens,
            "success": error is None,
            "error": message,
        },
    )


def _error_text(error: Exception) -> str:
    text = str(error) if isinstance(error, ModelError) else f"{type(error).__name__}: {error}"
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"


# -- defaults -------------------------------------------------------------------------------


def model_settings(runtime: Any, model_type: ModelType) -> dict[str, int | float]:
    """Sampling defaults for ``model_type`` from settings (see the module docstring).

    Args:
        runtime: Anything with ``get_setting(key)``; ``None`` gives no defaults.
        model_type: The call's type; only TEXT_* and OBJECT_* types get defaults.

    Returns:
        ``{param: value}`` for the params that have a setting (``max_tokens`` an int).
    """
    getter = getattr(runtime, "get_setting", None)
    if getter is None or model_type not in GENERATION_TYPES:
        return {}
    found: dict[str, int | float] = {}
    for param, (suffix, _) in DEFAULT_PARAMS.items():
        for key in (f"{model_type.value}_{suffix}", f"DEFAULT_{suffix}"):
            raw = getter(key)
            value = _number(raw, integer=param in _INTEGER_PARAMS)
            if value is not None:
                found[param] = value
                break
            if raw not in (None, "") and key not in _warned:
                _warned.add(key)  # once per process: not on every call
                logger.warning("setting %s=%r is not a number; ignored", key, raw)
    return found


def _with_defaults(runtime: Any, model_type: ModelType, params: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(params)
    for param, value in model_settings(runtime, model_type).items():
        camel = DEFAULT_PARAMS[param][1]
        if merged.get(param) is None and merged.get(camel) is None:
            merged[param] = value
    return merged


def _number(value: Any, *, integer: bool) -> int | float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if number != number or number in (float("inf"), float("-inf")):  # NaN, infinities
        return None
    if integer:
        return int(number) if number.is_integer() else None
    return number


# -- streaming ------------------------------------------------------------------------------


class _StreamTap:
    """Stands in for the caller's callback: forwards every chunk and remembers that text went out.

    Sync on purpose: it returns whatever the caller's callback returns, so a handler that
    awaits awaitables (``base.emit``) and one that calls a sync callback both work.
    """

    def __init__(self, callback: StreamCallback) -> None:
        self._callback = callback
        self.used = False

    def __call__(self, chunk: str) -> Any:
        if chunk:
            self.used = True
        return self._callback(chunk)

    async def deliver(self, text: str) -> None:
        await call(self, text)


def _stream_tap(params: dict[str, Any], callback: StreamCallback | None) -> _StreamTap | None:
    """Put a tap in ``params["on_stream_chunk"]`` for the caller's callback, if there is one."""
    callback = callback or params.get("on_stream_chunk") or params.get("onStreamChunk")
    params.pop("onStreamChunk", None)
    if not callable(callback):
        params.pop("on_stream_chunk", None)
        return None
    tap = _StreamTap(callback)
    params["on_stream_chunk"] = tap
    return tap
