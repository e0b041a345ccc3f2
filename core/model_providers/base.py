"""What the hosted providers share: settings, model names, chat input, the instrumented handler.

A provider module writes one ``call(runtime, params, model) -> ModelResult`` per kind of call
and wraps it with ``instrument``: the wrapper resolves the model name, consults the response
cache, asks the provider's circuit breaker, times the call, records token usage, and turns
an unexpected response shape into a retryable ``ModelError``.

Model names, for a provider whose settings start with ``PREFIX`` (``OPENAI``...):
``params["model"]``, else ``PREFIX_{SMALL,LARGE,EMBEDDING}_MODEL``, else the generic
``TEXT_SMALL_MODEL`` / ``TEXT_LARGE_MODEL`` / ``TEXT_EMBEDDING_MODEL`` (OBJECT_* use the
TEXT_* names), else the provider's default. The provider's own setting comes first so two
providers can be enabled side by side.

Streaming: a callable ``on_stream_chunk`` (elizaOS ``onStreamChunk`` also accepted) in the
params receives each text chunk as it arrives (sync or async); the handler still returns
the full text.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from core.callbacks import emit_chunk as emit  # providers import it from here
from core.errors import ModelError
from core.model_providers import cache, circuit
from core.model_providers.http import scrub
from core.model_providers.usage import Usage, record_usage
from core.plugin import ModelHandlerFn, ModelRegistration
from core.types import ModelType

logger = logging.getLogger(__name__)

STRUCTURED = frozenset({"structured_output"})
TEXT_TYPES = (ModelType.TEXT_SMALL, ModelType.TEXT_LARGE)
OBJECT_TYPES = (ModelType.OBJECT_SMALL, ModelType.OBJECT_LARGE)
_SIZE = {
    ModelType.TEXT_SMALL: "SMALL", ModelType.TEXT_LARGE: "LARGE", ModelType.OBJECT_SMALL: "SMALL",
    ModelType.OBJECT_LARGE: "LARGE", ModelType.TEXT_EMBEDDING: "EMBEDDING",
}
_GENERIC = {"SMALL": "TEXT_SMALL_MODEL", "LARGE": "TEXT_LARGE_MODEL", "EMBEDDING": "TEXT_EMBEDDING_MODEL"}
_announced: set[str] = set()


@dataclass(frozen=True)
class ModelResult:
    """What a provider call produced.

    Attributes:
        value: Text (``str``) or vectors.
        model: The model id the provider reported (or the one asked for).
        usage: Tokens, when reported.
    """

    value: Any
    model: str
    usage: Usage | None = None


ProviderCall = Callable[[Any, Mapping[str, Any], str], Awaitable[ModelResult]]


# -- settings -------------------------------------------------------------------------------

def setting(runtime: Any, key: str, default: Any = None) -> Any:
    """``runtime.get_setting(key)`` (character first, then environment), or the environment
    when there is no runtime; ``default`` when unset or empty."""
    getter = getattr(runtime, "get_setting", None)
    value = getter(key) if getter is not None else os.environ.get(key)
    return default if value is None or value == "" else value


def model_name(runtime: Any, params: Mapping[str, Any], prefix: str, model_type: ModelType,
               defaults: Mapping[str, str]) -> str:
    """The model id for a call (see the module docstring for the order)."""
    if params.get("model"):
        return str(params["model"])
    size = _SIZE.get(model_type, "LARGE")
    name = setting(runtime, f"{prefix}_{size}_MODEL") or setting(runtime, _GENERIC[size]) or defaults.get(size)
    if not name:
        raise ModelError(f"{prefix.lower()}: no model set for {model_type.value} "
                         f"(set {prefix}_{size}_MODEL)", provider=prefix.lower())
    return str(name)


def announce_disabled(provider: str, reason: str) -> None:
    """Log once per process that ``provider`` registers nothing, and why."""
    if provider not in _announced:
        _announced.add(provider)
        logger.warning("model provider %s is not enabled: %s; it registers no model", provider, reason)


def env_priority(environ: Mapping[str, str], prefix: str, default: int) -> int:
    """``PREFIX_PRIORITY`` from the environment, else ``default``."""
    value = environ.get(f"{prefix}_PRIORITY")
    return int(value) if value else default


# -- chat input -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ChatInput:
    """A call's conversation: the system prompt and ``[{"role", "content"}]`` turns."""

    system: str | None
    messages: list[dict[str, str]]

    def texts(self) -> list[str]:
        """Every text sent (to scrub from error messages)."""
        return [m["content"] for m in self.messages] + ([self.system] if self.system else [])


def chat_input(params: Mapping[str, Any], provider: str, *, alternate: bool = False) -> ChatInput:
    """The conversation of a text call.

    ``messages`` (``system`` turns among them are folded into the system prompt) then
    ``prompt`` as a last user turn; ``system`` first in the system prompt.

    Args:
        params: The call's params.
        provider: Provider name, for errors.
        alternate: Merge consecutive turns of one role and start with a user turn, as
            Anthropic and Bedrock require.

    Raises:
        ModelError: neither ``prompt`` nor ``messages`` (not retryable).
    """
    systems = [str(params["system"])] if params.get("system") else []
    messages: list[dict[str, str]] = []
    for turn in params.get("messages") or ():
        role, content = str(turn.get("role", "user")), turn.get("content")
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        if role == "system":
            systems.append(text)
        else:
            messages.append({"role": "assistant" if role == "assistant" else "user", "content": text})
    if params.get("prompt"):
        messages.append({"role": "user", "content": str(params["prompt"])})
    if not messages:
        raise ModelError(f"{provider}: a text model call needs 'prompt' or 'messages'", provider=provider)
    if alternate:
        messages = _alternate(messages)
    return ChatInput("\n\n".join(systems) or None, messages)


def _alternate(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    merged: list[dict[str, str]] = []
    for turn in messages:
        if merged and merged[-1]["role"] == turn["role"]:
            merged[-1] = {"role": turn["role"], "content": merged[-1]["content"] + "\n\n" + turn["content"]}
        else:
            merged.append(dict(turn))
    if merged[0]["role"] != "user":
        # Both APIs refuse a conversation that starts with the assistant: say so, briefly.
        merged.insert(0, {"role": "user", "content": "(conversation so far)"})
    return merged


def max_tokens(params: Mapping[str, Any], default: int) -> int:
    """``max_tokens`` (elizaOS ``maxTokens``), else ``default``."""
    value = params.get("max_tokens") or params.get("maxTokens")
    return int(value) if value else default


def temperature(params: Mapping[str, Any]) -> float | None:
    value = params.get("temperature")
    return None if value is None else float(value)


def stop_sequences(params: Mapping[str, Any]) -> list[str]:
    value = params.get("stop_sequences") or params.get("stopSequences") or []
    return [value] if isinstance(value, str) else [str(s) for s in value]


#: Schema of an OBJECT_* call that gives none: any JSON object.
ANY_OBJECT: dict[str, Any] = {"type": "object"}


def output_schema(params: Mapping[str, Any], provider: str, *, required: bool = False
                  ) -> tuple[str, dict[str, Any]] | None:
    """``(name, JSON schema)`` when the call asks for structured output.

    Args:
        params: ``schema`` (a JSON schema object) and optional ``schema_name``.
        provider: Provider name, for errors.
        required: An OBJECT_* call: without a schema, any JSON object (``ANY_OBJECT``).

    Raises:
        ModelError: ``schema`` is not an object (not retryable).
    """
    schema = params.get("schema")
    if not schema:
        return ("response", dict(ANY_OBJECT)) if required else None
    if not isinstance(schema, Mapping):
        raise ModelError(f"{provider}: 'schema' must be a JSON schema object", provider=provider)
    name = str(params.get("schema_name") or schema.get("title") or "response")
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in name)[:64], dict(schema)


def stream_callback(params: Mapping[str, Any]) -> Callable[[str], Any] | None:
    """The ``on_stream_chunk`` callable, when given."""
    callback = params.get("on_stream_chunk") or params.get("onStreamChunk")
    return callback if callable(callback) else None




def embedding_texts(params: Mapping[str, Any]) -> tuple[list[str], bool]:
    """``(texts, batch)``: ``{"texts": [...]}`` is a batch, ``{"text": str}`` one text."""
    if "texts" in params:
        return [str(t) for t in params["texts"]], True
    return [str(params.get("text") or "")], False


def parse_object(provider: str, text: str) -> Any:
    """The JSON value of a structured answer (OBJECT_* calls).

    Raises:
        ModelError: the model's answer is not JSON (retryable: another provider may do
            better, and a later attempt may too).
    """
    try:
        return json.loads(text)
    except ValueError:
        raise ModelError(f"{provider}: the model's structured answer is not valid JSON", provider=provider,
                         retryable=True) from None


# -- the instrumented handler ---------------------------------------------------------------

def instrument(
    provider: str,
    model_type: ModelType,
    call: ProviderCall,
    resolve_model: Callable[[Any, Mapping[str, Any]], str],
    *,
    post: Callable[[str], Any] | None = None,
) -> ModelHandlerFn:
    """Wrap a provider call as a model handler.

    Args:
        provider: Provider name (circuit breaker and usage log key).
        model_type: The type it serves (usage log).
        call: ``call(runtime, params, model) -> ModelResult``.
        resolve_model: ``(runtime, params) -> model id``.
        post: Turns the text into the handler's value (OBJECT_*: parse the JSON); applied
            after the cache, so the cache holds text.

    Returns:
        ``handler(runtime, params)``.
    """
    cacheable = model_type in TEXT_TYPES or model_type in OBJECT_TYPES

    async def handler(runtime: Any, params: Mapping[str, Any]) -> Any:
        model = resolve_model(runtime, params)
        key = None
        if cacheable and cache.is_deterministic(params) and cache.is_enabled(runtime):
            key = cache.cache_key(provider, model, model_type.value, params)
            hit = await cache.get(runtime, key)
            if hit is not None:
                await emit(stream_callback(params), hit)
                await record_usage(runtime, provider=provider, model_type=model_type, model=model, usage=None,
                                   duration_ms=0.0, cached=True)
                return post(hit) if post else hit
        breaker = circuit.breaker(provider)
        breaker.before_call()
        started = time.perf_counter()
        try:
            result = await call(runtime, params, model)
        except ModelError as exc:
            (breaker.record_failure if exc.retryable else breaker.record_neutral)()
            await _record_failure(runtime, provider, model_type, model, started, str(exc))
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            # The provider answered 200 with a shape we do not know: treat as a bad answer.
            breaker.record_failure()
            message = f"{provider}: unexpected response shape ({type(exc).__name__})"
            await _record_failure(runtime, provider, model_type, model, started, message)
            raise ModelError(message, provider=provider, retryable=True) from None
        except BaseException:
            breaker.record_neutral()  # cancelled: no verdict on the provider, but free the probe
            raise
        breaker.record_success()
        await record_usage(runtime, provider=provider, model_type=model_type, model=result.model,
                           usage=result.usage, duration_ms=(time.perf_counter() - started) * 1000.0)
        if key is not None and isinstance(result.value, str):
            await cache.put(runtime, key, result.value)
        return post(result.value) if post else result.value

    handler.__name__ = f"{provider}_{model_type.value.lower()}"
    handler.__qualname__ = handler.__name__
    return handler


async def _record_failure(runtime: Any, provider: str, model_type: ModelType, model: str, started: float,
                          message: str) -> None:
    await record_usage(runtime, provider=provider, model_type=model_type, model=model, usage=None,
                       duration_ms=(time.perf_counter() - started) * 1000.0, error=scrub(message))


def registrations(
    provider: str,
    calls: Mapping[ModelType, ProviderCall],
    resolve_model: Callable[[ModelType], Callable[[Any, Mapping[str, Any]], str]],
    *,
    priority: int,
    structured: bool,
) -> tuple[ModelRegistration, ...]:
    """``ModelRegistration``s for ``calls``; OBJECT_* types parse the JSON text.

    Args:
        provider: Provider name.
        calls: One call per model type served.
        resolve_model: Gives the model resolver of a type.
        priority: Registry priority of every handler.
        structured: Whether its text models claim ``structured_output``.
    """
    result = []
    for model_type, call in calls.items():
        post = (lambda text: parse_object(provider, text)) if model_type in OBJECT_TYPES else None
        capabilities = STRUCTURED if structured and model_type in TEXT_TYPES + OBJECT_TYPES else frozenset()
        handler = instrument(provider, model_type, call, resolve_model(model_type), post=post)
        result.append(ModelRegistration(model_type, handler, priority=priority, capabilities=capabilities))
    return tuple(result)
