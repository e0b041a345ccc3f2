"""Ollama native API provider (httpx): ``/api/chat`` (streamed NDJSON or not) and ``/api/embed``.

Enable with ``MODEL_PLUGINS=core.model_providers.ollama`` and ``OLLAMA_BASE_URL`` (elizaOS's
``OLLAMA_API_ENDPOINT`` also accepted; e.g. ``http://localhost:11434``). Without it, the
plugin registers nothing and says so once in the log (built from the environment at import).
The base URL, key and model names are read per call, so a character may override them.

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

from collections.abc import Callable, Mapping
from typing import Any

from core.errors import ModelError
from core.model_providers import base, http
from core.model_providers.base import HostedProvider, ModelResult, provider_plugin
from core.model_providers.resources import ProviderResources
from core.model_providers.usage import Usage
from core.plugin import Plugin
from core.types.model_runtime import ModelRuntime

PROVIDER = "ollama"
DEFAULT_MAX_TOKENS = 4096


class OllamaProvider(HostedProvider):
    """Ollama's native ``/api/chat`` (NDJSON streaming, ``format`` for JSON schemas) and ``/api/embed``."""

    name = PROVIDER
    prefix = "OLLAMA"
    description = "Ollama native API: /api/chat and /api/embed."
    default_models = {"SMALL": "llama3.2", "LARGE": "llama3.2", "EMBEDDING": "all-minilm"}
    default_priority = 0
    default_structured = False  # local models are often small: the pipeline then asks for plain replies

    def disabled_reason(self, environ: Mapping[str, str]) -> str | None:
        if environ.get("OLLAMA_BASE_URL") or environ.get("OLLAMA_API_ENDPOINT"):
            return None
        return "OLLAMA_BASE_URL is not set"

    async def chat(
        self, runtime: ModelRuntime, params: Mapping[str, Any], model: str, *, object_mode: bool
    ) -> ModelResult:
        url = f"{_base_url(runtime)}/api/chat"
        headers, hidden = _headers(runtime)
        callback = base.stream_callback(params)
        body, texts = chat_body(params, model, object_mode=object_mode, stream=callback is not None)
        if callback is None:
            data = await self.http.post_json(PROVIDER, url, body, headers=headers, secrets=hidden + texts)
            _raise_for_error(data, hidden + texts)
            return ModelResult(str(data["message"].get("content") or ""), str(data.get("model") or model), _usage(data))
        return await self._stream(url, body, headers, hidden + texts, model, callback)

    async def embed(self, runtime: ModelRuntime, params: Mapping[str, Any], model: str) -> ModelResult:
        texts, batch = base.embedding_texts(params)
        headers, hidden = _headers(runtime)
        body: dict[str, Any] = {"model": model, "input": texts}
        if params.get("dimensions"):
            body["dimensions"] = int(params["dimensions"])
        data = await self.http.post_json(
            PROVIDER, f"{_base_url(runtime)}/api/embed", body, headers=headers, secrets=hidden + texts
        )
        _raise_for_error(data, hidden + texts)
        vectors = [[float(v) for v in e] for e in data["embeddings"]]
        if len(vectors) != len(texts):
            raise ModelError(
                f"{PROVIDER}: asked for {len(texts)} embeddings, got {len(vectors)}", provider=PROVIDER, retryable=True
            )
        tokens = data.get("prompt_eval_count")
        return ModelResult(
            vectors if batch else vectors[0],
            str(data.get("model") or model),
            Usage(tokens, 0, tokens) if tokens is not None else None,
        )

    async def _stream(
        self,
        url: str,
        body: Mapping[str, Any],
        headers: Mapping[str, str],
        hidden: list[str],
        model: str,
        callback: Callable[[str], Any],
    ) -> ModelResult:
        parts: list[str] = []
        usage: Usage | None = None
        reported = model
        async with self.http.stream_post(
            PROVIDER, url, body, headers={**headers, "accept": "application/x-ndjson"}, secrets=hidden
        ) as response:
            async for line in response.aiter_lines():  # one JSON object per line
                if not line.strip():
                    continue
                chunk = http.parse_json_object(PROVIDER, line)
                _raise_for_error(chunk, hidden)
                reported = chunk.get("model") or reported
                text = (chunk.get("message") or {}).get("content")
                if text:
                    parts.append(text)
                    await base.emit(callback, text)
                if chunk.get("done"):
                    usage = _usage(chunk)
                    break
        return ModelResult("".join(parts), str(reported), usage)


def _base_url(runtime: ModelRuntime) -> str:
    """``OLLAMA_BASE_URL`` (or elizaOS's ``OLLAMA_API_ENDPOINT``) without a trailing ``/api``.

    Raises:
        ModelError: neither is set (not retryable).
    """
    url = runtime.setting("OLLAMA_BASE_URL", str, "") or runtime.setting("OLLAMA_API_ENDPOINT", str, "")
    if not url:
        raise ModelError(f"{PROVIDER}: OLLAMA_BASE_URL is not set", provider=PROVIDER)
    url = url.rstrip("/")
    # elizaOS's OLLAMA_API_ENDPOINT is often given with /api already.
    return url[: -len("/api")] if url.endswith("/api") else url


def _headers(runtime: ModelRuntime) -> tuple[dict[str, str], list[str]]:
    key = runtime.setting("OLLAMA_API_KEY", str, "")
    return ({"authorization": f"Bearer {key}"}, [key]) if key else ({}, [])


def chat_body(
    params: Mapping[str, Any], model: str, *, object_mode: bool, stream: bool
) -> tuple[dict[str, Any], list[str]]:
    """The ``/api/chat`` body and the texts sent (to scrub)."""
    chat = base.chat_input(params, PROVIDER)
    messages = ([{"role": "system", "content": chat.system}] if chat.system else []) + chat.messages
    options: dict[str, Any] = {"num_predict": base.max_tokens(params, DEFAULT_MAX_TOKENS)}
    if (value := base.temperature(params)) is not None:
        options["temperature"] = value
    if stops := base.stop_sequences(params):
        options["stop"] = stops
    if params.get("repeat_penalty"):
        options["repeat_penalty"] = float(params["repeat_penalty"])
    body: dict[str, Any] = {"model": model, "messages": messages, "stream": stream, "options": options}
    if schema := base.output_schema(params, PROVIDER, required=object_mode):
        body["format"] = schema[1]
    return body, chat.texts()


def _usage(data: Mapping[str, Any]) -> Usage | None:
    if data.get("prompt_eval_count") is None and data.get("eval_count") is None:
        return None
    return Usage(data.get("prompt_eval_count"), data.get("eval_count"))


def _raise_for_error(data: Mapping[str, Any], hidden: list[str]) -> None:
    # Ollama reports some failures inside a 200 body (a stream that fails half way).
    if data.get("error"):
        raise http.ProviderError(
            f"{PROVIDER}: {http.scrub(str(data['error']), hidden)}", provider=PROVIDER, retryable=True
        )


def build_plugin(environ: Mapping[str, str] | None = None, resources: ProviderResources | None = None) -> Plugin:
    """The plugin for ``environ`` (``os.environ`` by default): no models without a base URL.

    Args:
        environ: Where to look for ``OLLAMA_BASE_URL``, ``OLLAMA_PRIORITY`` and ``OLLAMA_STRUCTURED_OUTPUT``.
        resources: The process's shared client and breakers (``process_resources()`` by default).
    """
    return provider_plugin(OllamaProvider, environ, resources)


plugin = build_plugin()
