"""Ollama native API provider (httpx): ``/api/chat`` (streamed NDJSON or not) and ``/api/embed``.

Enable with ``MODEL_PLUGINS=core.model_providers.ollama`` and ``OLLAMA_BASE_URL`` (elizaOS's
``OLLAMA_API_ENDPOINT`` also accepted; e.g. ``http://localhost:11434``). Without it, the
plugin registers nothing and says so once in the log (built from the environment at import).

Other settings: ``OLLAMA_SMALL_MODEL`` / ``OLLAMA_LARGE_MODEL`` (default ``llama3.2``),
``OLLAMA_EMBEDDING_MODEL`` (default ``all-minilm``: 384 dimensions, like the embedded
default), the generic ``TEXT_*_MODEL``; ``OLLAMA_API_KEY`` (sent as a bearer token, for a
hosted Ollama or an authenticating proxy); ``OLLAMA_PRIORITY`` (default 0);
``OLLAMA_STRUCTURED_OUTPUT=true`` when the served model reliably follows the action format
(off by default: local models are often small, and the pipeline then asks for plain replies).

Structured output: params ``schema`` (or OBJECT_*) go in Ollama's ``format`` field, which
constrains the output to the JSON schema.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from core.errors import ModelError
from core.model_providers import http
from core.model_providers.base import (
    ModelResult,
    announce_disabled,
    chat_input,
    embedding_texts,
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

PROVIDER = "ollama"
PREFIX = "OLLAMA"
DEFAULT_MODELS = {"SMALL": "llama3.2", "LARGE": "llama3.2", "EMBEDDING": "all-minilm"}
DEFAULT_MAX_TOKENS = 4096


def _base_url(runtime: Any) -> str:
    url = setting(runtime, "OLLAMA_BASE_URL") or setting(runtime, "OLLAMA_API_ENDPOINT")
    if not url:
        raise ModelError(f"{PROVIDER}: OLLAMA_BASE_URL is not set", provider=PROVIDER)
    url = str(url).rstrip("/")
    # elizaOS's OLLAMA_API_ENDPOINT is often given with /api already.
    return url[: -len("/api")] if url.endswith("/api") else url


def _headers(runtime: Any) -> tuple[dict[str, str], list[str]]:
    key = setting(runtime, "OLLAMA_API_KEY")
    return ({"authorization": f"Bearer {key}"}, [str(key)]) if key else ({}, [])


def chat_body(params: Mapping[str, Any], model: str, *, object_mode: bool, stream: bool
              ) -> tuple[dict[str, Any], list[str]]:
    """The ``/api/chat`` body and the texts sent (to scrub)."""
    chat = chat_input(params, PROVIDER)
    messages = ([{"role": "system", "content": chat.system}] if chat.system else []) + chat.messages
    options: dict[str, Any] = {"num_predict": max_tokens(params, DEFAULT_MAX_TOKENS)}
    if (value := temperature(params)) is not None:
        options["temperature"] = value
    if stops := stop_sequences(params):
        options["stop"] = stops
    if params.get("repeat_penalty"):
        options["repeat_penalty"] = float(params["repeat_penalty"])
    body: dict[str, Any] = {"model": model, "messages": messages, "stream": stream, "options": options}
    if schema := output_schema(params, PROVIDER, required=object_mode):
        body["format"] = schema[1]
    return body, chat.texts()


def _usage(data: Mapping[str, Any]) -> Usage | None:
    if data.get("prompt_eval_count") is None and data.get("eval_count") is None:
        return None
    return Usage(data.get("prompt_eval_count"), data.get("eval_count"))


def _chat_call(object_mode: bool):
    async def call(runtime: Any, params: Mapping[str, Any], model: str) -> ModelResult:
        url = f"{_base_url(runtime)}/api/chat"
        headers, hidden = _headers(runtime)
        callback = stream_callback(params)
        body, texts = chat_body(params, model, object_mode=object_mode, stream=callback is not None)
        if callback is None:
            data = await http.post_json(PROVIDER, url, body, headers=headers, secrets=hidden + texts)
            _raise_for_error(data, hidden + texts)
            return ModelResult(str(data["message"].get("content") or ""), str(data.get("model") or model),
                               _usage(data))
        return await _stream(url, body, headers, hidden + texts, model, callback)

    return call


async def _stream(url: str, body: Mapping[str, Any], headers: Mapping[str, str], hidden: list[str], model: str,
                  callback: Any) -> ModelResult:
    parts: list[str] = []
    usage: Usage | None = None
    reported = model
    async with http.stream_post(PROVIDER, url, body, headers={**headers, "accept": "application/x-ndjson"},
                                secrets=hidden) as response:
        async for line in response.aiter_lines():  # one JSON object per line
            if not line.strip():
                continue
            chunk = http.parse_json_object(PROVIDER, line)
            _raise_for_error(chunk, hidden)
            reported = chunk.get("model") or reported
            text = (chunk.get("message") or {}).get("content")
            if text:
                parts.append(text)
                await emit(callback, text)
            if chunk.get("done"):
                usage = _usage(chunk)
                break
    return ModelResult("".join(parts), str(reported), usage)


def _raise_for_error(data: Mapping[str, Any], hidden: list[str]) -> None:
    # Ollama reports some failures inside a 200 body (a stream that fails half way).
    if data.get("error"):
        raise http.ProviderError(f"{PROVIDER}: {http.scrub(str(data['error']), hidden)}", provider=PROVIDER,
                                 retryable=True)


async def _embed(runtime: Any, params: Mapping[str, Any], model: str) -> ModelResult:
    texts, batch = embedding_texts(params)
    headers, hidden = _headers(runtime)
    body: dict[str, Any] = {"model": model, "input": texts}
    if params.get("dimensions"):
        body["dimensions"] = int(params["dimensions"])
    data = await http.post_json(PROVIDER, f"{_base_url(runtime)}/api/embed", body, headers=headers,
                                secrets=hidden + texts)
    _raise_for_error(data, hidden + texts)
    vectors = [[float(v) for v in e] for e in data["embeddings"]]
    if len(vectors) != len(texts):
        raise ModelError(f"{PROVIDER}: asked for {len(texts)} embeddings, got {len(vectors)}", provider=PROVIDER,
                         retryable=True)
    tokens = data.get("prompt_eval_count")
    return ModelResult(vectors if batch else vectors[0], str(data.get("model") or model),
                       Usage(tokens, 0, tokens) if tokens is not None else None)


def _resolver(model_type: ModelType):
    return lambda runtime, params: model_name(runtime, params, PREFIX, model_type, DEFAULT_MODELS)


def build_plugin(environ: Mapping[str, str] | None = None) -> Plugin:
    """The plugin for ``environ`` (``os.environ`` by default): no models without a base URL."""
    env = os.environ if environ is None else environ
    description = "Ollama native API: /api/chat and /api/embed."
    if not (env.get("OLLAMA_BASE_URL") or env.get("OLLAMA_API_ENDPOINT")):
        announce_disabled(PROVIDER, "OLLAMA_BASE_URL is not set")
        return Plugin(name=PROVIDER, description=description)
    calls = {
        ModelType.TEXT_SMALL: _chat_call(False), ModelType.TEXT_LARGE: _chat_call(False),
        ModelType.OBJECT_SMALL: _chat_call(True), ModelType.OBJECT_LARGE: _chat_call(True),
        ModelType.TEXT_EMBEDDING: _embed,
    }
    structured = env.get("OLLAMA_STRUCTURED_OUTPUT", "false").lower() == "true"
    models = registrations(PROVIDER, calls, _resolver, priority=env_priority(env, PREFIX, 0), structured=structured)
    return Plugin(name=PROVIDER, description=description, models=models)


plugin = build_plugin()
