"""OpenAI-compatible provider (httpx): chat completions, streamed or not, JSON-schema output, embeddings.

The same provider serves OpenAI, vLLM, LM Studio, llama.cpp server, Groq, Together and
Ollama's ``/v1`` through ``OPENAI_BASE_URL``.

Enable with ``MODEL_PLUGINS=core.model_providers.openai`` and one of:

- ``OPENAI_API_KEY`` (or ``OPENAI_API_KEY_SECRET_ID`` / ``OPENAI_API_KEY_PARAMETER``: the key
  in Secrets Manager / SSM, see ``core.model_providers.secrets``);
- ``OPENAI_BASE_URL`` alone, for a local server that wants no key.

Without either, the plugin registers no model and says so once in the log: the plugin's
``models`` are built from the environment when the module is imported (the init phase, with
the process's ``ProviderResources``), since nothing runs a plugin ``init`` hook and a provider
that cannot work must not sit in the registry's fallback chain. The key itself is read at
call time (``runtime.setting`` first), so a character's own ``OPENAI_API_KEY`` secret
overrides the process's; so are the base URL, the model names and the embedding settings.

Other settings: ``OPENAI_SMALL_MODEL`` (default ``gpt-4o-mini``), ``OPENAI_LARGE_MODEL``
(``gpt-4o``), ``OPENAI_EMBEDDING_MODEL`` (``text-embedding-3-small``), generic
``TEXT_SMALL_MODEL``... (see ``base``); ``OPENAI_EMBEDDING_DIMENSIONS`` (sent as
``dimensions``; by default ``EMBEDDING_DIMENSION`` is sent to ``text-embedding-3-*`` models
only, which are the ones that accept it); ``OPENAI_EMBEDDING_BATCH_SIZE`` (inputs per
request, default 256; OpenAI takes up to 2,048); ``OPENAI_EMBEDDING_ENCODING`` (``base64``,
the default and what the official SDK asks for: a quarter of the bytes of decimal floats,
or ``float`` for servers that only speak that); ``OPENAI_PRIORITY`` (default 10);
``OPENAI_STRUCTURED_OUTPUT`` (``false`` for a small model behind a compatible server: the
pipeline then asks it for plain replies).

Structured output: params ``schema`` (a JSON schema; ``schema_name``, ``strict``) become
``response_format: {"type": "json_schema", ...}``; the handler returns the JSON text
(TEXT_*) or the parsed object (OBJECT_*; with no schema, ``json_object`` mode).
"""

from __future__ import annotations

import array
import base64
import sys
from collections.abc import Callable, Mapping
from typing import Any

from core.errors import ModelError
from core.model_providers import base, http
from core.model_providers import openai_media as media
from core.model_providers.base import HostedProvider, ModelResult, provider_plugin
from core.model_providers.resources import ProviderResources
from core.model_providers.secrets import has_source
from core.model_providers.usage import Usage
from core.plugin import Plugin
from core.types import ModelType
from core.types.model_runtime import ModelRuntime

PROVIDER = "openai"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MAX_TOKENS = 4096
DEFAULT_EMBEDDING_BATCH = 256
#: Most inputs OpenAI takes in one embeddings request.
MAX_EMBEDDING_BATCH = 2048
#: The non-text types served besides the text, object and embedding ones (``openai_media``).
MEDIA_TYPES = (ModelType.IMAGE_DESCRIPTION, ModelType.IMAGE, ModelType.TRANSCRIPTION, ModelType.TEXT_TO_SPEECH)


class OpenAIProvider(HostedProvider):
    """Chat completions (streamed or not, JSON-schema output) and embeddings, over the OpenAI API."""

    name = PROVIDER
    prefix = "OPENAI"
    description = "OpenAI-compatible chat completions and embeddings (OpenAI, vLLM, LM Studio, Groq...)."
    default_models = {"SMALL": "gpt-4o-mini", "LARGE": "gpt-4o", "EMBEDDING": "text-embedding-3-small"}

    def disabled_reason(self, environ: Mapping[str, str]) -> str | None:
        if has_source("OPENAI_API_KEY", environ) or environ.get("OPENAI_BASE_URL"):
            return None
        return "neither OPENAI_API_KEY (or OPENAI_API_KEY_SECRET_ID / _PARAMETER) nor OPENAI_BASE_URL is set"

    async def chat(
        self, runtime: ModelRuntime, params: Mapping[str, Any], model: str, *, object_mode: bool
    ) -> ModelResult:
        base_url = _base_url(runtime)
        headers, hidden = await self._auth(runtime, base_url)
        callback = base.stream_callback(params)
        body, texts = chat_body(runtime, params, model, object_mode=object_mode, stream=callback is not None)
        url = f"{base_url}/chat/completions"
        if callback is None:
            data = await self.http.post_json(PROVIDER, url, body, headers=headers, secrets=hidden + texts)
            return _completion(data, model)
        return await self._stream(url, body, headers, hidden + texts, model, callback)

    async def embed(self, runtime: ModelRuntime, params: Mapping[str, Any], model: str) -> ModelResult:
        texts, batch = base.embedding_texts(params)
        if not texts:
            return ModelResult([], model, Usage(0, 0, 0))
        base_url = _base_url(runtime)
        headers, hidden = await self._auth(runtime, base_url)
        size = runtime.setting(
            "OPENAI_EMBEDDING_BATCH_SIZE", int, DEFAULT_EMBEDDING_BATCH, minimum=1, maximum=MAX_EMBEDDING_BATCH
        )
        template = _embedding_body(runtime, params, model)
        vectors: list[list[float]] = []
        prompt_tokens = 0
        reported = model
        for start in range(0, len(texts), size):
            # The API refuses empty strings; an empty text still needs a vector of its own.
            chunk = [t if t.strip() else " " for t in texts[start : start + size]]
            data = await self.http.post_json(
                PROVIDER,
                f"{base_url}/embeddings",
                {**template, "input": chunk},
                headers=headers,
                secrets=hidden + chunk,
            )
            vectors.extend(_vectors(data, len(chunk)))
            prompt_tokens += int((data.get("usage") or {}).get("prompt_tokens") or 0)
            reported = data.get("model") or reported
        return ModelResult(vectors if batch else vectors[0], str(reported), Usage(prompt_tokens, 0, prompt_tokens))

    # -- non-text types (core.model_providers.openai_media) -----------------------------------

    def model_types(self, environ: Mapping[str, str]) -> tuple[ModelType, ...]:
        return (*super().model_types(environ), *MEDIA_TYPES)

    def model_name(self, runtime: ModelRuntime, params: Mapping[str, Any], model_type: ModelType) -> str:
        if model_type.value in media.MEDIA_DEFAULTS:
            default = media.MEDIA_DEFAULTS[model_type.value]
            setting = media.MODEL_SETTINGS.get(model_type.value, f"OPENAI_{model_type.value}_MODEL")
            named = params.get("model") if isinstance(params, Mapping) else None
            return str(named or runtime.setting(setting, str, default))
        return super().model_name(runtime, params, model_type)

    def _call(self, model_type: ModelType) -> base.ProviderCall:
        calls = {
            ModelType.IMAGE_DESCRIPTION: self.describe_image,
            ModelType.IMAGE: self.generate_image,
            ModelType.TRANSCRIPTION: self.transcribe,
            ModelType.TEXT_TO_SPEECH: self.speak,
        }
        return calls.get(model_type) or super()._call(model_type)

    async def describe_image(self, runtime: ModelRuntime, params: Mapping[str, Any], model: str) -> ModelResult:
        """IMAGE_DESCRIPTION: ``{"title", "description"}`` of an image URL (elizaOS plugin-openai)."""
        url, prompt = media.image_url_of(params)
        base_url = _base_url(runtime)
        headers, hidden = await self._auth(runtime, base_url)
        body = media.describe_body(model, url, prompt)
        data = await self.http.post_json(
            PROVIDER, f"{base_url}/chat/completions", body, headers=headers, secrets=hidden
        )
        value, usage = media.description_of(data)
        return ModelResult(value, str(data.get("model") or model), usage)

    async def generate_image(self, runtime: ModelRuntime, params: Mapping[str, Any], model: str) -> ModelResult:
        """IMAGE: ``[{"url"}]`` for a prompt (elizaOS plugin-openai)."""
        base_url = _base_url(runtime)
        headers, hidden = await self._auth(runtime, base_url)
        body = media.image_body(model, params)
        data = await self.http.post_json(
            PROVIDER, f"{base_url}/images/generations", body, headers=headers, secrets=hidden
        )
        return ModelResult(media.images_of(data), model)

    async def transcribe(self, runtime: ModelRuntime, params: Mapping[str, Any], model: str) -> ModelResult:
        """TRANSCRIPTION: the text of ``{"audio": bytes, ...}``, uploaded as multipart (elizaOS plugin-openai)."""
        files, data = media.transcription_form(model, params)
        base_url = _base_url(runtime)
        headers, hidden = await self._auth(runtime, base_url)
        url = f"{base_url}/audio/transcriptions"
        raw = await media.post_raw(self.http, url, headers=headers, secrets=hidden, files=files, data=data)
        return ModelResult(media.transcript_of(raw, data.get("response_format")), model)

    async def speak(self, runtime: ModelRuntime, params: Mapping[str, Any], model: str) -> ModelResult:
        """TEXT_TO_SPEECH: a text spoken, as ``bytes`` (mp3 unless ``format`` says otherwise; elizaOS plugin-openai)."""
        body = media.speech_body(lambda name, default: runtime.setting(name, str, default), model, params)
        base_url = _base_url(runtime)
        headers, hidden = await self._auth(runtime, base_url)
        url = f"{base_url}/audio/speech"
        audio = await media.post_raw(self.http, url, headers=headers, secrets=[*hidden, body["input"]], json=body)
        return ModelResult(audio, model)

    async def _auth(self, runtime: ModelRuntime, base_url: str) -> tuple[dict[str, str], list[str]]:
        """Headers and the secrets to scrub. A key is required only by OpenAI itself.

        Raises:
            ModelError: no key for ``api.openai.com`` (not retryable), or its secret cannot be read.
        """
        key = await self.resources.secrets.resolve(runtime, "OPENAI_API_KEY", provider=PROVIDER)
        if key:
            return {"authorization": f"Bearer {key}"}, [key]
        if base_url == DEFAULT_BASE_URL:
            raise ModelError(f"{PROVIDER}: OPENAI_API_KEY is not set", provider=PROVIDER)
        return {}, []

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
            PROVIDER, url, body, headers={**headers, "accept": "text/event-stream"}, secrets=hidden
        ) as response:
            async for event in http.iter_sse(response):
                if event.data.strip() == "[DONE]":
                    break
                chunk = http.parse_json_object(PROVIDER, event.data)
                if "error" in chunk:
                    raise http.error_from_response(PROVIDER, 500, {}, event.data.encode(), hidden)
                reported = chunk.get("model") or reported
                if chunk.get("usage"):
                    usage = _usage(chunk["usage"])
                for choice in chunk.get("choices") or ():
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        parts.append(text)
                        await base.emit(callback, text)
        return ModelResult("".join(parts), str(reported), usage)


def _base_url(runtime: ModelRuntime) -> str:
    return runtime.setting("OPENAI_BASE_URL", str, DEFAULT_BASE_URL).rstrip("/")


def chat_body(
    runtime: ModelRuntime, params: Mapping[str, Any], model: str, *, object_mode: bool, stream: bool
) -> tuple[dict[str, Any], list[str]]:
    """The chat completions request body, and the texts sent (for scrubbing)."""
    chat = base.chat_input(params, PROVIDER)
    messages = ([{"role": "system", "content": chat.system}] if chat.system else []) + chat.messages
    body: dict[str, Any] = {"model": model, "messages": messages}
    # OpenAI's newer models refuse max_tokens; compatible servers may not know its successor.
    token_field = "max_completion_tokens" if _base_url(runtime) == DEFAULT_BASE_URL else "max_tokens"
    body[token_field] = base.max_tokens(params, DEFAULT_MAX_TOKENS)
    if (value := base.temperature(params)) is not None:
        body["temperature"] = value
    if stops := base.stop_sequences(params):
        body["stop"] = stops
    if schema := base.output_schema(params, PROVIDER):
        name, definition = schema
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": definition, "strict": bool(params.get("strict", False))},
        }
    elif object_mode:
        body["response_format"] = {"type": "json_object"}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body, chat.texts()


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, Mapping):
        return None
    return Usage(raw.get("prompt_tokens"), raw.get("completion_tokens"), raw.get("total_tokens"))


def _completion(data: Mapping[str, Any], model: str) -> ModelResult:
    choices = data.get("choices") or []
    if not choices:
        raise ModelError(f"{PROVIDER}: the response has no choices", provider=PROVIDER, retryable=True)
    message = choices[0]["message"]
    content = message.get("content")
    if content is None:
        if message.get("refusal"):
            raise ModelError(f"{PROVIDER}: the model refused to answer", provider=PROVIDER)
        content = ""
    return ModelResult(content, str(data.get("model") or model), _usage(data.get("usage")))


# -- embeddings -----------------------------------------------------------------------------


def decode_embedding(value: Any) -> list[float]:
    """A vector from the API: a list of floats, or base64 of little-endian float32."""
    if isinstance(value, list):
        return [float(v) for v in value]
    floats = array.array("f", base64.b64decode(value))
    if sys.byteorder == "big":
        floats.byteswap()
    return floats.tolist()


def _embedding_body(runtime: ModelRuntime, params: Mapping[str, Any], model: str) -> dict[str, Any]:
    """Every field of an embeddings request but ``input``."""
    body: dict[str, Any] = {
        "model": model,
        "encoding_format": runtime.setting("OPENAI_EMBEDDING_ENCODING", str, "base64"),
    }
    dimensions = params.get("dimensions") or _dimensions(runtime, model)
    if dimensions:
        body["dimensions"] = int(dimensions)
    return body


def _dimensions(runtime: ModelRuntime, model: str) -> int | None:
    explicit = runtime.setting("OPENAI_EMBEDDING_DIMENSIONS", int, 0, minimum=0)
    if explicit:
        return explicit
    if model.startswith("text-embedding-3"):
        return runtime.setting("EMBEDDING_DIMENSION", int, 0, minimum=0) or None
    return None


def _vectors(data: Mapping[str, Any], expected: int) -> list[list[float]]:
    """The vectors of an embeddings response, in input order.

    Raises:
        ModelError: not one vector per input (retryable).
    """
    items = sorted(data["data"], key=lambda item: item.get("index", 0))
    if len(items) != expected:
        raise ModelError(
            f"{PROVIDER}: asked for {expected} embeddings, got {len(items)}", provider=PROVIDER, retryable=True
        )
    return [decode_embedding(item["embedding"]) for item in items]


# -- the plugin -----------------------------------------------------------------------------


def build_plugin(environ: Mapping[str, str] | None = None, resources: ProviderResources | None = None) -> Plugin:
    """The plugin for ``environ`` (``os.environ`` by default): no models without credentials.

    Args:
        environ: Where to look for ``OPENAI_API_KEY`` (or its secret reference), ``OPENAI_BASE_URL``,
            ``OPENAI_PRIORITY`` and ``OPENAI_STRUCTURED_OUTPUT``.
        resources: The process's shared client, breakers and secrets (``process_resources()`` by default).
    """
    return provider_plugin(OpenAIProvider, environ, resources)


plugin = build_plugin()
