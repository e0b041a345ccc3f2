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
import os
from collections.abc import Mapping
from typing import Any

from core.errors import ModelError
from core.model_providers import http, secrets
from core.model_providers.base import (
    ModelResult,
    announce_disabled,
    chat_input,
    emit,
    env_priority,
    max_tokens,
    model_name,
    output_schema,
    registrations,
    setting,
    stop_sequences,
    stream_callback,
    temperature,
)
from core.model_providers.usage import Usage
from core.plugin import Plugin
from core.types import ModelType

PROVIDER = "anthropic"
PREFIX = "ANTHROPIC"
DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
DEFAULT_MODELS = {"SMALL": "claude-haiku-4-5", "LARGE": "claude-sonnet-4-5"}
DEFAULT_MAX_TOKENS = 4096
#: Stream error types worth another provider (``overloaded_error`` is the HTTP 529 one).
_RETRYABLE_STREAM_ERRORS = {"overloaded_error", "api_error", "rate_limit_error", "timeout_error"}


def request_body(params: Mapping[str, Any], model: str, *, object_mode: bool,
                 stream: bool) -> tuple[dict[str, Any], list[str], str | None]:
    """The Messages API body, the texts sent (to scrub), and the forced tool's name."""
    chat = chat_input(params, PROVIDER, alternate=True)
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens(params, DEFAULT_MAX_TOKENS),
                            "messages": chat.messages}
    if chat.system:
        body["system"] = chat.system
    if (value := temperature(params)) is not None:
        body["temperature"] = value
    if stops := stop_sequences(params):
        body["stop_sequences"] = stops
    tool = None
    if schema := output_schema(params, PROVIDER, required=object_mode):
        tool, definition = schema
        body["tools"] = [{"name": tool, "description": "Give the answer in this structure.",
                          "input_schema": definition}]
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
        prompt = sum(int(raw.get(k) or 0) for k in
                     ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"))
    return Usage(prompt, raw.get("output_tokens"))


def _call(object_mode: bool):
    async def call(runtime: Any, params: Mapping[str, Any], model: str) -> ModelResult:
        key = await secrets.resolve(runtime, "ANTHROPIC_API_KEY", provider=PROVIDER)
        if not key:
            raise ModelError(f"{PROVIDER}: ANTHROPIC_API_KEY is not set", provider=PROVIDER)
        callback = stream_callback(params)
        body, texts, tool = request_body(params, model, object_mode=object_mode, stream=callback is not None)
        url = f"{str(setting(runtime, 'ANTHROPIC_BASE_URL', DEFAULT_BASE_URL)).rstrip('/')}/v1/messages"
        headers = {"x-api-key": key, "anthropic-version": API_VERSION}
        if callback is None:
            data = await http.post_json(PROVIDER, url, body, headers=headers, secrets=[key, *texts])
            return _message(data, model, tool)
        return await _stream(url, body, headers, [key, *texts], model, tool, callback)

    return call


def _message(data: Mapping[str, Any], model: str, tool: str | None) -> ModelResult:
    blocks = data["content"]
    if tool is not None:
        for block in blocks:
            if block.get("type") == "tool_use":
                return ModelResult(json.dumps(block.get("input"), ensure_ascii=False),
                                   str(data.get("model") or model), _usage(data.get("usage")))
        raise ModelError(f"{PROVIDER}: the model did not call the structured-output tool", provider=PROVIDER,
                         retryable=True)
    text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
    return ModelResult(text, str(data.get("model") or model), _usage(data.get("usage")))


async def _stream(url: str, body: Mapping[str, Any], headers: Mapping[str, str], hidden: list[str], model: str,
                  tool: str | None, callback: Any) -> ModelResult:
    parts: list[str] = []
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reported = model
    async with http.stream_post(PROVIDER, url, body, headers={**headers, "accept": "text/event-stream"},
                                secrets=hidden) as response:
        async for event in http.iter_sse(response):
            data = http.parse_json_object(PROVIDER, event.data)
            kind = data.get("type") or event.event
            if kind == "message_start":
                message = data.get("message") or {}
                reported = message.get("model") or reported
                start_usage = _usage(message.get("usage"))
                prompt_tokens = start_usage.prompt_tokens if start_usage else None
            elif kind == "content_block_delta":
                delta = data.get("delta") or {}
                piece = delta.get("text") if delta.get("type") == "text_delta" else (
                    delta.get("partial_json") if delta.get("type") == "input_json_delta" and tool else None)
                if piece:
                    parts.append(piece)
                    await emit(callback, piece)
            elif kind == "message_delta":
                completion_tokens = (data.get("usage") or {}).get("output_tokens", completion_tokens)
            elif kind == "error":
                raise _stream_error(data, hidden)
            elif kind == "message_stop":
                break
    return ModelResult("".join(parts), str(reported), Usage(prompt_tokens, completion_tokens))


def _stream_error(data: Mapping[str, Any], hidden: list[str]) -> ModelError:
    error = data.get("error") or {}
    code = str(error.get("type") or "error")
    message = http.scrub(str(error.get("message") or ""), hidden)
    return http.ProviderError(f"{PROVIDER}: stream error {code}: {message}", provider=PROVIDER,
                              retryable=code in _RETRYABLE_STREAM_ERRORS, code=code)


def _resolver(model_type: ModelType):
    return lambda runtime, params: model_name(runtime, params, PREFIX, model_type, DEFAULT_MODELS)


def build_plugin(environ: Mapping[str, str] | None = None) -> Plugin:
    """The plugin for ``environ`` (``os.environ`` by default): no models without a key."""
    env = os.environ if environ is None else environ
    description = "Anthropic Messages API: text, streaming, tool-use structured output."
    if not secrets.has_source("ANTHROPIC_API_KEY", env):
        announce_disabled(PROVIDER, "ANTHROPIC_API_KEY (or ANTHROPIC_API_KEY_SECRET_ID / _PARAMETER) is not set")
        return Plugin(name=PROVIDER, description=description)
    calls = {
        ModelType.TEXT_SMALL: _call(False), ModelType.TEXT_LARGE: _call(False),
        ModelType.OBJECT_SMALL: _call(True), ModelType.OBJECT_LARGE: _call(True),
    }
    models = registrations(PROVIDER, calls, _resolver, priority=env_priority(env, PREFIX, 10), structured=True)
    return Plugin(name=PROVIDER, description=description, models=models)


plugin = build_plugin()
