"""What the hosted providers share: the provider skeleton, model names, chat input, the instrumented handler.

A provider is a ``HostedProvider`` subclass: it names itself (``name``, ``prefix``,
``description``, default models and priority), says when the environment lets it work
(``disabled_reason``), and writes its wire format in ``chat`` (TEXT_* and OBJECT_*) and, when
it has one, ``embed``. The base builds the plugin: one handler per model type, each wrapped
by ``instrument``, which resolves the model name, consults the response cache, asks the
provider's circuit breaker, times the call, records token usage, and turns an unexpected
response shape into a retryable ``ModelError``. The provider's HTTP client, breaker and
secrets cache come from the ``ProviderResources`` given to its constructor.

Model names, for a provider whose settings start with ``PREFIX`` (``OPENAI``...):
``params["model"]``, else ``PREFIX_{SMALL,LARGE,EMBEDDING}_MODEL``, else the generic
``TEXT_SMALL_MODEL`` / ``TEXT_LARGE_MODEL`` / ``TEXT_EMBEDDING_MODEL`` (OBJECT_* use the
TEXT_* names), else the provider's default. The provider's own setting comes first so two
providers can be enabled side by side.

Streaming: a callable ``on_stream_chunk`` (elizaOS ``onStreamChunk`` also accepted) in the
params receives each text chunk as it arrives (sync or async); the handler still returns
the full text.

Runtime: handlers take any ``core.types.model_runtime.ModelRuntime`` (``AgentRuntime`` is
one); ``None`` (the embeddings function, a bench) reads settings from the environment alone.
"""

from __future__ import annotations

import json
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from core.callbacks import emit_chunk as emit
from core.errors import ModelError
from core.model_providers import cache
from core.model_providers.circuit import CircuitBreaker
from core.model_providers.http import HttpClient, scrub
from core.model_providers.resources import ProviderResources, process_resources
from core.model_providers.usage import Usage, record_usage
from core.plugin import ModelRegistration, Plugin
from core.settings.providers import EnvironmentSettings, RegistrationSettings
from core.types import ModelType
from core.types.model_runtime import ModelRuntime

__all__ = [
    "ANY_OBJECT",
    "OBJECT_TYPES",
    "STRUCTURED",
    "TEXT_TYPES",
    "ChatInput",
    "HostedProvider",
    "ModelResult",
    "ProviderCall",
    "chat_input",
    "embedding_texts",
    "emit",
    "instrument",
    "max_tokens",
    "model_name",
    "output_schema",
    "parse_object",
    "provider_plugin",
    "stop_sequences",
    "stream_callback",
    "temperature",
]

STRUCTURED = frozenset({"structured_output"})
TEXT_TYPES = (ModelType.TEXT_SMALL, ModelType.TEXT_LARGE)
OBJECT_TYPES = (ModelType.OBJECT_SMALL, ModelType.OBJECT_LARGE)
_SIZE = {
    ModelType.TEXT_SMALL: "SMALL",
    ModelType.TEXT_LARGE: "LARGE",
    ModelType.OBJECT_SMALL: "SMALL",
    ModelType.OBJECT_LARGE: "LARGE",
    ModelType.TEXT_EMBEDDING: "EMBEDDING",
}
_GENERIC = {"SMALL": "TEXT_SMALL_MODEL", "LARGE": "TEXT_LARGE_MODEL", "EMBEDDING": "TEXT_EMBEDDING_MODEL"}
#: The settings of a call made without a runtime: the process environment alone.
_NO_AGENT = EnvironmentSettings()


@dataclass(frozen=True)
class ModelResult:
    """What a provider call produced.

    Attributes:
        value: Text (``str``) or vectors (``list[float]``, or one per text for a batch).
        model: The model id the provider reported (or the one asked for).
        usage: Tokens, when reported.
    """

    value: Any
    model: str
    usage: Usage | None = None


#: ``call(runtime, params, model) -> ModelResult``: one provider request, uninstrumented.
ProviderCall = Callable[[ModelRuntime, Mapping[str, Any], str], Awaitable[ModelResult]]
#: ``resolve(runtime, params) -> model id``.
ModelResolver = Callable[[ModelRuntime, Mapping[str, Any]], str]
#: ``handler(runtime, params) -> value``: what a ``ModelRegistration`` holds.
Handler = Callable[[ModelRuntime | None, Mapping[str, Any]], Awaitable[Any]]


# -- the provider skeleton ------------------------------------------------------------------


class HostedProvider(ABC):
    """A hosted model provider: its wire format in the subclass, the plugin and the instrumentation here.

    Args:
        resources: The process's shared HTTP client, circuit breakers and secrets cache.

    Class attributes a provider sets:
        name: Provider name (``"openai"``): plugin name, breaker and usage-log key.
        prefix: Its settings' prefix (``"OPENAI"``).
        description: The plugin's description.
        default_models: Model ids by size (``"SMALL"``, ``"LARGE"``, ``"EMBEDDING"``).
        default_priority: Registry priority unless ``{prefix}_PRIORITY`` says otherwise.
        default_structured: Whether its text models claim ``structured_output`` unless
            ``{prefix}_STRUCTURED_OUTPUT`` says otherwise.
        embeddings: Whether it serves ``TEXT_EMBEDDING`` (its ``embed``).
    """

    name: ClassVar[str]
    prefix: ClassVar[str]
    description: ClassVar[str]
    default_models: ClassVar[Mapping[str, str]] = {}
    default_priority: ClassVar[int] = 10
    default_structured: ClassVar[bool] = True
    embeddings: ClassVar[bool] = True

    def __init__(self, resources: ProviderResources) -> None:
        self.resources = resources
        self.http: HttpClient = resources.http

    # -- what a provider writes

    @abstractmethod
    def disabled_reason(self, environ: Mapping[str, str]) -> str | None:
        """Why the provider cannot work in ``environ`` (logged once), or ``None`` when it can."""

    @abstractmethod
    async def chat(
        self, runtime: ModelRuntime, params: Mapping[str, Any], model: str, *, object_mode: bool
    ) -> ModelResult:
        """One TEXT_* (``object_mode`` false) or OBJECT_* (true: a JSON object is wanted) call.

        Returns:
            The text (OBJECT_*: the JSON text; the base parses it), the model and the usage.

        Raises:
            ModelError: the call failed (retryable or not).
        """

    async def embed(self, runtime: ModelRuntime, params: Mapping[str, Any], model: str) -> ModelResult:
        """One TEXT_EMBEDDING call (``{"text"}`` → a vector, ``{"texts"}`` → one per text).

        Raises:
            ModelError: the call failed; the base raises it non-retryable for a provider without embeddings.
        """
        raise ModelError(f"{self.name}: serves no embeddings", provider=self.name)

    def model_types(self, environ: Mapping[str, str]) -> tuple[ModelType, ...]:
        """The types served in ``environ`` (enabled providers only): text, object, and embeddings when it has them."""
        return TEXT_TYPES + OBJECT_TYPES + ((ModelType.TEXT_EMBEDDING,) if self.embeddings else ())

    def model_name(self, runtime: ModelRuntime, params: Mapping[str, Any], model_type: ModelType) -> str:
        """The model id of a call (see the module docstring for the order)."""
        return model_name(runtime, params, self.prefix, model_type, self.default_models)

    # -- what the base does

    def plugin(self, environ: Mapping[str, str] | None = None) -> Plugin:
        """The plugin for ``environ`` (the process environment by default): no models when disabled.

        Raises:
            ConfigurationError: ``{prefix}_PRIORITY`` or ``{prefix}_STRUCTURED_OUTPUT`` is malformed.
        """
        # The init phase: which providers are configured is read from the environment once, here.
        env = os.environ if environ is None else environ
        reason = self.disabled_reason(env)
        types = () if reason else self.model_types(env)
        if not types:
            self.resources.announce_disabled(self.name, reason or "no model type is configured")
            return Plugin(name=self.name, description=self.description)
        options = RegistrationSettings.from_env(
            env, self.prefix, priority=self.default_priority, structured=self.default_structured
        )
        return Plugin(
            name=self.name, description=self.description, models=tuple(self._registration(t, options) for t in types)
        )

    def _registration(self, model_type: ModelType, options: RegistrationSettings) -> ModelRegistration:
        structured = options.structured and model_type in TEXT_TYPES + OBJECT_TYPES
        handler = instrument(
            self.name,
            model_type,
            self._call(model_type),
            self._resolver(model_type),
            post=self._parser(model_type),
            breaker=self.resources.breakers.get(self.name),
        )
        return ModelRegistration(
            model_type, handler, priority=options.priority, capabilities=STRUCTURED if structured else frozenset()
        )

    def _call(self, model_type: ModelType) -> ProviderCall:
        if model_type is ModelType.TEXT_EMBEDDING:
            return self.embed
        object_mode = model_type in OBJECT_TYPES

        async def call(runtime: ModelRuntime, params: Mapping[str, Any], model: str) -> ModelResult:
            return await self.chat(runtime, params, model, object_mode=object_mode)

        return call

    def _resolver(self, model_type: ModelType) -> ModelResolver:
        return lambda runtime, params: self.model_name(runtime, params, model_type)

    def _parser(self, model_type: ModelType) -> Callable[[str], Any] | None:
        """OBJECT_* handlers return the parsed JSON; the others the text."""
        return (lambda text: parse_object(self.name, text)) if model_type in OBJECT_TYPES else None


def provider_plugin(
    provider: type[HostedProvider], environ: Mapping[str, str] | None = None, resources: ProviderResources | None = None
) -> Plugin:
    """``provider(resources).plugin(environ)``: the process's resources and environment by default.

    Raises:
        ConfigurationError: a provider setting is malformed (the message names the variable).
    """
    return provider(resources or process_resources()).plugin(environ)


# -- settings -------------------------------------------------------------------------------


def model_name(
    runtime: ModelRuntime, params: Mapping[str, Any], prefix: str, model_type: ModelType, defaults: Mapping[str, str]
) -> str:
    """The model id for a call (see the module docstring for the order).

    Raises:
        ModelError: no model is named anywhere and the provider has no default (not retryable).
    """
    if params.get("model"):
        return str(params["model"])
    size = _SIZE.get(model_type, "LARGE")
    name = (
        runtime.setting(f"{prefix}_{size}_MODEL", str, "")
        or runtime.setting(_GENERIC[size], str, "")
        or defaults.get(size)
    )
    if not name:
        raise ModelError(
            f"{prefix.lower()}: no model set for {model_type.value} (set {prefix}_{size}_MODEL)",
            provider=prefix.lower(),
        )
    return name


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
    """``temperature`` as a float, ``None`` when not given (the provider's default)."""
    value = params.get("temperature")
    return None if value is None else float(value)


def stop_sequences(params: Mapping[str, Any]) -> list[str]:
    """``stop_sequences`` (elizaOS ``stopSequences``; one string or several) as a list."""
    value = params.get("stop_sequences") or params.get("stopSequences") or []
    return [value] if isinstance(value, str) else [str(s) for s in value]


#: Schema of an OBJECT_* call that gives none: any JSON object.
ANY_OBJECT: dict[str, Any] = {"type": "object"}


def output_schema(
    params: Mapping[str, Any], provider: str, *, required: bool = False
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
        raise ModelError(
            f"{provider}: the model's structured answer is not valid JSON", provider=provider, retryable=True
        ) from None


# -- the instrumented handler ---------------------------------------------------------------


def instrument(
    provider: str,
    model_type: ModelType,
    call: ProviderCall,
    resolve_model: ModelResolver,
    *,
    post: Callable[[str], Any] | None = None,
    breaker: CircuitBreaker | None = None,
) -> Handler:
    """Wrap a provider call as a model handler.

    Args:
        provider: Provider name (breaker and usage log key).
        model_type: The type it serves (usage log).
        call: ``call(runtime, params, model) -> ModelResult``.
        resolve_model: ``(runtime, params) -> model id``.
        post: Turns the text into the handler's value (OBJECT_*: parse the JSON); applied
            after the cache, so the cache holds text.
        breaker: The provider's circuit breaker, shared by its handlers (``HostedProvider``
            passes its resources' one); ``None``: one of the handler's own.

    Returns:
        ``handler(runtime, params)``; ``runtime`` may be ``None`` (settings from the environment).
    """
    cacheable = model_type in TEXT_TYPES or model_type in OBJECT_TYPES
    circuit = breaker or CircuitBreaker(provider)

    async def handler(runtime: ModelRuntime | None, params: Mapping[str, Any]) -> Any:
        caller = runtime if runtime is not None else _NO_AGENT
        model = resolve_model(caller, params)
        key = None
        if cacheable and cache.is_deterministic(params) and cache.is_enabled(caller):
            key = cache.cache_key(provider, model, model_type.value, params)
            hit = await cache.get(caller, key)
            if hit is not None:
                await emit(stream_callback(params), hit)
                await record_usage(
                    caller,
                    provider=provider,
                    model_type=model_type,
                    model=model,
                    usage=None,
                    duration_ms=0.0,
                    cached=True,
                )
                return post(hit) if post else hit
        result = await _guarded(circuit, call, caller, params, model_type, model)
        if key is not None and isinstance(result.value, str):
            await cache.put(caller, key, result.value)
        return post(result.value) if post else result.value

    handler.__name__ = f"{provider}_{model_type.value.lower()}"
    handler.__qualname__ = handler.__name__
    return handler


async def _guarded(
    breaker: CircuitBreaker,
    call: ProviderCall,
    runtime: ModelRuntime,
    params: Mapping[str, Any],
    model_type: ModelType,
    model: str,
) -> ModelResult:
    """Make the call through the breaker, timed, with its usage (or its failure) recorded.

    Raises:
        ModelError: the call failed; an unexpected response shape becomes a retryable one.
    """
    provider = breaker.provider
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
    await record_usage(
        runtime,
        provider=provider,
        model_type=model_type,
        model=result.model,
        usage=result.usage,
        duration_ms=(time.perf_counter() - started) * 1000.0,
    )
    return result


async def _record_failure(
    runtime: ModelRuntime, provider: str, model_type: ModelType, model: str, started: float, message: str
) -> None:
    await record_usage(
        runtime,
        provider=provider,
        model_type=model_type,
        model=model,
        usage=None,
        duration_ms=(time.perf_counter() - started) * 1000.0,
        error=scrub(message),
    )
