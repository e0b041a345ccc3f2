"""Anthropic Messages API provider (httpx): text, streaming, tool-use structured output.

Enable with ``MODEL_PLUGINS=core.model_providers.anthropic`` and ``ANTHROPIC_API_KEY`` (or
``ANTHROPIC_API_KEY_SECRET_ID`` / ``ANTHROPIC_API_KEY_PARAMETER``, see
``core.model_providers.secrets``). Without one, the plugin registers no model and says so
once in the log (the models are built from the environment at import, as for OpenAI).

Other settings: ``ANTHROPIC_SMALL_MODEL`` (default ``claude-haiku-4-5``),
``ANTHROPIC_LARGE_MODEL`` (``claude-sonnet-4-5``), the generic ``TEXT_*_MODEL``;
``ANTHROPIC_BASE_URL`` (default ``https://api.anthropic.com``, for a gateway);
``ANTHROPIC_PRIORITY`` (default 10). Anthropic has no embeddings model: pair it with
another provider for ``TEXT_EMBEDDING``.

The system prompt goes in the top-level ``system`` field; consecutive turns of one role are
merged (the API wants them alternating). Structured output (params ``schema``, or any
OBJECT_* call) is a forced tool call: one tool whose ``input_schema`` is the schema, with
``tool_choice`` naming it; the handler returns the tool input as JSON text (TEXT_*) or the
parsed object (OBJECT_*). While streaming, the tool input's JSON fragments are delivered
to ``on_stream_chunk`` like text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from core.errors import ModelError
from core.model_providers import base, http
from core.model_providers.base import HostedProvider, ModelResult, provider_plugin
from core.model_providers.resources import ProviderResources
from core.model_providers.secrets import has_source
from core.model_providers.usage import Usage
from core.plugin import Plugin
from core.types.model_runtime import ModelRuntime

PROVIDER = "anthropic"
DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
#: Stream error types worth another provider (``overloaded_error`` is the HTTP 529 one).
_RETRYABLE_STREAM_ERRORS = {"overloaded_error", "api_error", "rate_limit_error", "timeout_error"}


class AnthropicProvider(HostedProvider):
    """The Messages API: text, SSE streaming, structured output as a forced tool call. No embeddings."""

    name = PROVIDER
    prefix = "ANTHROPIC"
    description = "Anthropic Messages API: text, streaming, tool-use structured output."
    default_models = {"SMALL": "claude-haiku-4-5", "LARGE": "claude-sonnet-4-5"}
    embeddings = False

    def disabled_reason(self, environ: Mapping[str, str]) -> str | None:
        if has_source("ANTHROPIC_API_KEY", environ):
            return None
        return "ANTHROPIC_API_KEY (or ANTHROPIC_API_KEY_SECRET_ID / _PARAMETER) is not set"

    async def chat(
        self, runtime: ModelRuntime, params: Mapping[str, Any], model: str, *, object_mode: bool
    ) -> ModelResult:
        key = await self.resources.secrets.resolve(runtime, "ANTHROPIC_API_KEY", provider=PROVIDER)
        if not key:
            raise ModelError(f"{PROVIDER}: ANTHROPIC_API_KEY is not set", provider=PROVIDER)
        callback = base.stream_callback(params)
        body, texts, tool = request_body(params, model, object_mode=object_mode, stream=callback is not None)
        url = f"{runtime.setting('ANTHROPIC_BASE_URL', str, DEFAULT_BASE_URL).rstrip('/')}/v1/messages"
        headers = {"x-api-key": key, "anthropic-version": API_VERSION}
        if callback is None:
            data = await self.http.post_json(PROVIDER, url, body, headers=headers, secrets=[key, *texts])
            return _message(data, model, tool)
        return await self._stream(url, body, headers, [key, *texts], model, tool, callback)

    async def _stream(
        self,
        url: str,
        body: Mapping[str, Any],
        headers: Mapping[str, str],
        hidden: list[str],
        model: str,
        tool: str | None,
        callback: Callable[[str], Any],
    ) -> ModelResult:
        reader = _StreamReader(model, tool)
        async with self.http.stream_post(
            PROVIDER, url, body, headers={**headers, "accept": "text/event-stream"}, secrets=hidden
        ) as response:
            async for event in http.iter_sse(response):
                data = http.parse_json_object(PROVIDER, event.data)
                kind = data.get("type") or event.event
                if kind == "error":
                    raise _stream_error(data, hidden)
                if kind == "message_stop":
                    break
                piece = reader.read(kind, data)
                if piece:
                    await base.emit(callback, piece)
        return reader.result()


class _StreamReader:
    """What a Messages stream said so far: the text (or tool input JSON), the model, the tokens."""

    def __init__(self, model: str, tool: str | None) -> None:
        self.parts: list[str] = []
        self.model = model
        self.tool = tool
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None

    def read(self, kind: str, data: Mapping[str, Any]) -> str | None:
        """Take in one event; returns the text it delivers, if any."""
        if kind == "message_start":
            message = data.get("message") or {}
            self.model = message.get("model") or self.model
            start_usage = _usage(message.get("usage"))
            self.prompt_tokens = start_usage.prompt_tokens if start_usage else None
        elif kind == "content_block_delta":
            delta = data.get("delta") or {}
            piece = (
                delta.get("text")
                if delta.get("type") == "text_delta"
                else (delta.get("partial_json") if delta.get("type") == "input_json_delta" and self.tool else None)
            )
            if piece:
                self.parts.append(piece)
                return str(piece)
        elif kind == "message_delta":
            self.completion_tokens = (data.get("usage") or {}).get("output_tokens", self.completion_tokens)
        return None

    def result(self) -> ModelResult:
        return ModelResult("".join(self.parts), str(self.model), Usage(self.prompt_tokens, self.completion_tokens))


def request_body(
    params: Mapping[str, Any], model: str, *, object_mode: bool, stream: bool
) -> tuple[dict[str, Any], list[str], str | None]:
    """The Messages API body, the texts sent (to scrub), and the forced tool's name."""
    chat = base.chat_input(params, PROVIDER, alternate=True)
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": base.max_tokens(params, DEFAULT_MAX_TOKENS),
        "messages": chat.messages,
    }
    if chat.system:
        body["system"] = chat.system
    if (value := base.temperature(params)) is not None:
        body["temperature"] = value
    if stops := base.stop_sequences(params):
        body["stop_sequences"] = stops
    tool = None
    if schema := base.output_schema(params, PROVIDER, required=object_mode):
        tool, definition = schema
        body["tools"] = [
            {"name": tool, "description": "Give the answer in this structure.", "input_schema": definition}
        ]
        body["tool_choice"] = {"type": "tool", "name": tool}
    if stream:
        body["stream"] = True
    return body, chat.texts(), tool


def _usage(raw: Mapping[str, Any] | None, prompt: int | None = None) -> Usage | None:
    if not raw and prompt is None:
        return None
    raw = raw or {}
    if prompt is None and raw.get("input_tokens") is not None:
        # Cached prompt tokens are prompt tokens too (billed at other rates).
        prompt = sum(
            int(raw.get(k) or 0) for k in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
        )
    return Usage(prompt, raw.get("output_tokens"))


def _message(data: Mapping[str, Any], model: str, tool: str | None) -> ModelResult:
    blocks = data["content"]
    if tool is not None:
        for block in blocks:
            if block.get("type") == "tool_use":
                return ModelResult(
                    json.dumps(block.get("input"), ensure_ascii=False),
                    str(data.get("model") or model),
                    _usage(data.get("usage")),
                )
        raise ModelError(
            f"{PROVIDER}: the model did not call the structured-output tool", provider=PROVIDER, retryable=True
        )
    text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
    return ModelResult(text, str(data.get("model") or model), _usage(data.get("usage")))


def _stream_error(data: Mapping[str, Any], hidden: list[str]) -> ModelError:
    error = data.get("error") or {}
    code = str(error.get("type") or "error")
    message = http.scrub(str(error.get("message") or ""), hidden)
    return http.ProviderError(
        f"{PROVIDER}: stream error {code}: {message}",
        provider=PROVIDER,
        retryable=code in _RETRYABLE_STREAM_ERRORS,
        code=code,
    )


def build_plugin(environ: Mapping[str, str] | None = None, resources: ProviderResources | None = None) -> Plugin:
    """The plugin for ``environ`` (``os.environ`` by default): no models without a key.

    Args:
        environ: Where to look for ``ANTHROPIC_API_KEY`` (or its secret reference) and ``ANTHROPIC_PRIORITY``.
        resources: The process's shared client, breakers and secrets (``process_resources()`` by default).
    """
    return provider_plugin(AnthropicProvider, environ, resources)


plugin = build_plugin()
