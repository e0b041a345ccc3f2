"""Amazon Bedrock provider (boto3 ``bedrock-runtime``): Converse / ConverseStream, embeddings.

No API key: boto3 signs with the Lambda role's credentials (``bedrock:InvokeModel`` and
``bedrock:InvokeModelWithResponseStream`` on the model ids). Enable with
``MODEL_PLUGINS=core.model_providers.bedrock`` and a model id:

- text: ``BEDROCK_TEXT_MODEL_ID`` (any Converse model or inference profile, e.g.
  ``us.amazon.nova-micro-v1:0``, ``anthropic.claude-3-5-haiku-20241022-v1:0``), or
  ``BEDROCK_SMALL_MODEL_ID`` / ``BEDROCK_LARGE_MODEL_ID`` to split the sizes (each falls
  back to ``BEDROCK_TEXT_MODEL_ID``, then the generic ``TEXT_*_MODEL``);
- embeddings: ``BEDROCK_EMBEDDING_MODEL_ID``: Titan Text Embeddings V2
  (``amazon.titan-embed-text-v2:0``; 256, 512 or 1,024 dimensions from
  ``BEDROCK_EMBEDDING_DIMENSIONS``, else ``EMBEDDING_DIMENSION`` when it is one of those, else
  1,024; one text per request, ``BEDROCK_EMBEDDING_CONCURRENCY`` at a time, default 8) or
  Cohere Embed (``cohere.embed-english-v3`` / ``-multilingual-v3``: 1,024 dimensions, up to 96
  texts per request; ``input_type`` param, default ``search_document``).

With no model id the plugin registers nothing and says so once in the log (built from the
environment at import). Other settings: ``BEDROCK_REGION`` (else ``AWS_REGION``) and
``BEDROCK_ENDPOINT_URL`` (process settings, ``core.settings.providers``: the client is made
once per process by its ``ProviderResources``), ``BEDROCK_PRIORITY`` (default 10).

Retries are ours (``core.model_providers.http.with_retries``: backoff with jitter), not
botocore's, so every provider behaves alike and the registry falls back after the same
number of attempts. Structured output (``schema``, or OBJECT_*) is a forced tool call
(``toolConfig`` with ``toolChoice``); the tool input is returned as JSON text or parsed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

from core.errors import ModelError
from core.model_providers import base, http
from core.model_providers.base import OBJECT_TYPES, TEXT_TYPES, HostedProvider, ModelResult, provider_plugin
from core.model_providers.resources import ProviderResources
from core.model_providers.usage import Usage
from core.plugin import Plugin
from core.types import ModelType
from core.types.model_runtime import ModelRuntime

PROVIDER = "bedrock"
DEFAULT_MAX_TOKENS = 4096
TITAN_DIMENSIONS = (256, 512, 1024)
COHERE_MAX_TEXTS = 96
#: Error codes another attempt (or another provider) may not get.
RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "ServiceUnavailableException",
        "InternalServerException",
        "ModelTimeoutException",
        "ModelNotReadyException",
        "ModelStreamErrorException",
        "TooManyRequestsException",
    }
)
_TEXT_MODEL_IDS = ("BEDROCK_TEXT_MODEL_ID", "BEDROCK_SMALL_MODEL_ID", "BEDROCK_LARGE_MODEL_ID")


class BedrockProvider(HostedProvider):
    """Converse / ConverseStream for text, InvokeModel for Titan and Cohere embeddings, signed by the IAM role."""

    name = PROVIDER
    prefix = "BEDROCK"
    description = "Amazon Bedrock: Converse / ConverseStream text, Titan and Cohere embeddings (IAM role)."

    def disabled_reason(self, environ: Mapping[str, str]) -> str | None:
        if self.model_types(environ):
            return None
        return "neither BEDROCK_TEXT_MODEL_ID (or BEDROCK_SMALL/LARGE_MODEL_ID) nor BEDROCK_EMBEDDING_MODEL_ID is set"

    def model_types(self, environ: Mapping[str, str]) -> tuple[ModelType, ...]:
        """Text and object types when a text model id is set, embeddings when an embedding model id is."""
        text = TEXT_TYPES + OBJECT_TYPES if any(environ.get(k) for k in _TEXT_MODEL_IDS) else ()
        return text + ((ModelType.TEXT_EMBEDDING,) if environ.get("BEDROCK_EMBEDDING_MODEL_ID") else ())

    def model_name(self, runtime: ModelRuntime, params: Mapping[str, Any], model_type: ModelType) -> str:
        """``params["model"]``, else ``BEDROCK_EMBEDDING_MODEL_ID`` or ``BEDROCK_{SIZE}_MODEL_ID``,
        ``BEDROCK_TEXT_MODEL_ID``, ``TEXT_{SIZE}_MODEL``.

        Raises:
            ModelError: no model id is set for the type (not retryable).
        """
        if params.get("model"):
            return str(params["model"])
        size = "SMALL" if model_type in (ModelType.TEXT_SMALL, ModelType.OBJECT_SMALL) else "LARGE"
        names = (
            ("BEDROCK_EMBEDDING_MODEL_ID",)
            if model_type is ModelType.TEXT_EMBEDDING
            else (f"BEDROCK_{size}_MODEL_ID", "BEDROCK_TEXT_MODEL_ID", f"TEXT_{size}_MODEL")
        )
        found = next((value for value in (runtime.setting(n, str, "") for n in names) if value), None)
        if not found:
            raise ModelError(f"{PROVIDER}: no model id set for {model_type.value}", provider=PROVIDER)
        return found

    async def chat(
        self, runtime: ModelRuntime, params: Mapping[str, Any], model: str, *, object_mode: bool
    ) -> ModelResult:
        request, texts, tool = converse_request(params, model, object_mode=object_mode)
        client = self.resources.bedrock_client()
        callback = base.stream_callback(params)
        if callback is not None:
            return await self._converse_stream(client, request, texts, model, tool, callback)
        response = await self._aws(client.converse, texts, **request)
        blocks = response["output"]["message"]["content"]
        usage = _usage(response.get("usage"))
        if tool is not None:
            for block in blocks:
                if "toolUse" in block:
                    return ModelResult(json.dumps(block["toolUse"].get("input"), ensure_ascii=False), model, usage)
            raise ModelError(
                f"{PROVIDER}: the model did not call the structured-output tool", provider=PROVIDER, retryable=True
            )
        return ModelResult("".join(b.get("text", "") for b in blocks), model, usage)

    async def embed(self, runtime: ModelRuntime, params: Mapping[str, Any], model: str) -> ModelResult:
        texts, batch = base.embedding_texts(params)
        if "cohere.embed" in model:
            vectors, tokens = await self._embed_cohere(model, texts, str(params.get("input_type") or "search_document"))
        else:
            vectors, tokens = await self._embed_titan(runtime, model, texts)
        return ModelResult(vectors if batch else vectors[0], model, Usage(tokens, 0, tokens))

    async def _aws(self, fn: Callable[..., Any], hidden: list[str], **kwargs: Any) -> Any:
        """Call a blocking boto3 method in a thread, with our retries and typed errors."""

        async def attempt() -> Any:
            try:
                return await asyncio.to_thread(fn, **kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise error_from_exception(exc, hidden) from None

        return await self.http.with_retries(attempt)

    async def _converse_stream(
        self,
        client: Any,
        request: Mapping[str, Any],
        hidden: list[str],
        model: str,
        tool: str | None,
        callback: Callable[[str], Any],
    ) -> ModelResult:
        # The call itself (until the stream opens) is retried; events are read in a thread and
        # handed to the loop through a queue, so chunks reach the callback as they arrive.
        response = await self._aws(client.converse_stream, hidden, **request)
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        reader = asyncio.ensure_future(
            asyncio.to_thread(_pump, response["stream"], asyncio.get_running_loop(), queue, hidden)
        )
        parts: list[str] = []
        usage: Usage | None = None
        finished = False
        try:
            while True:
                kind, item = await queue.get()
                if kind == "end":
                    finished = True
                    break
                if kind == "error":
                    raise item
                if "contentBlockDelta" in item:
                    delta = item["contentBlockDelta"].get("delta", {})
                    piece = delta.get("text") or (delta.get("toolUse", {}).get("input") if tool else None)
                    if piece:
                        parts.append(piece)
                        await base.emit(callback, piece)
                elif "metadata" in item:
                    usage = _usage(item["metadata"].get("usage"))
        finally:
            if not finished:  # the consumer gave up: stop reading rather than drain the stream
                response["stream"].close()
            await asyncio.gather(reader, return_exceptions=True)
        return ModelResult("".join(parts), model, usage)

    async def _invoke(
        self, model: str, body: Mapping[str, Any], hidden: list[str]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """InvokeModel: (the JSON body answered, the response headers). Reading and parsing the
        body are part of the retried attempt, like ``HttpClient.post_json``."""
        client = self.resources.bedrock_client()

        def call() -> tuple[bytes, dict[str, Any]]:
            response = client.invoke_model(
                modelId=model, body=json.dumps(body), contentType="application/json", accept="application/json"
            )
            return response["body"].read(), response.get("ResponseMetadata", {}).get("HTTPHeaders", {})

        async def attempt() -> tuple[dict[str, Any], dict[str, Any]]:
            try:
                raw, headers = await asyncio.to_thread(call)
            except (ClientError, BotoCoreError) as exc:
                raise error_from_exception(exc, hidden) from None
            return http.parse_json_object(PROVIDER, raw), headers

        return await self.http.with_retries(attempt)

    async def _embed_titan(self, runtime: ModelRuntime, model: str, texts: list[str]) -> tuple[list[list[float]], int]:
        dimensions = _titan_dimensions(runtime) if "v2" in model else None
        limit = asyncio.Semaphore(runtime.setting("BEDROCK_EMBEDDING_CONCURRENCY", int, 8, minimum=1))

        async def one(text: str) -> tuple[list[float], int]:
            body: dict[str, Any] = {"inputText": text or " "}
            if "v2" in model:
                body["normalize"] = True
                if dimensions:
                    body["dimensions"] = dimensions
            async with limit:
                data, _ = await self._invoke(model, body, [text])
            return [float(v) for v in data["embedding"]], int(data.get("inputTextTokenCount") or 0)

        results = await asyncio.gather(*(one(t) for t in texts))
        return [v for v, _ in results], sum(n for _, n in results)

    async def _embed_cohere(self, model: str, texts: list[str], input_type: str) -> tuple[list[list[float]], int]:
        vectors: list[list[float]] = []
        tokens = 0
        for start in range(0, len(texts), COHERE_MAX_TEXTS):
            chunk = [t or " " for t in texts[start : start + COHERE_MAX_TEXTS]]
            data, headers = await self._invoke(
                model, {"texts": chunk, "input_type": input_type, "truncate": "END"}, chunk
            )
            embeddings = data["embeddings"]
            if isinstance(embeddings, Mapping):  # asked with embedding_types: {"float": [...]}
                embeddings = embeddings["float"]
            if len(embeddings) != len(chunk):
                raise ModelError(
                    f"{PROVIDER}: asked for {len(chunk)} embeddings, got {len(embeddings)}",
                    provider=PROVIDER,
                    retryable=True,
                )
            vectors.extend([float(v) for v in e] for e in embeddings)
            tokens += int(headers.get("x-amzn-bedrock-input-token-count") or 0)
        return vectors, tokens


def _pump(
    stream: Any, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[tuple[str, Any]], hidden: list[str]
) -> None:
    """Read a ConverseStream's events in a worker thread and hand each to the loop: ``("event", event)``,
    ``("error", exception)``, then ``("end", None)``."""
    try:
        for event in stream:
            loop.call_soon_threadsafe(queue.put_nowait, ("event", event))
    except (ClientError, BotoCoreError) as exc:
        loop.call_soon_threadsafe(queue.put_nowait, ("error", error_from_exception(exc, hidden)))
    except Exception as exc:  # surfaced in the loop, never lost in the thread
        loop.call_soon_threadsafe(queue.put_nowait, ("error", exc))
    finally:
        loop.call_soon_threadsafe(queue.put_nowait, ("end", None))


def error_from_exception(exc: Exception, hidden: list[str]) -> ModelError:
    """The typed error for a botocore failure (the message is scrubbed of prompt texts)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "ClientError")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        retryable = code in RETRYABLE_CODES or (status is not None and (status == 429 or status >= 500))
        detail = http.scrub(str(error.get("Message") or ""), hidden)
        return http.ProviderError(
            f"{PROVIDER}: {code}" + (f": {detail}" if detail else ""),
            provider=PROVIDER,
            retryable=retryable,
            status=status,
            code=code,
        )
    if isinstance(exc, ConnectionError | HTTPClientError):
        return http.ProviderError(
            f"{PROVIDER}: {type(exc).__name__} talking to the provider", provider=PROVIDER, retryable=True
        )
    if isinstance(exc, BotoCoreError):  # no credentials, bad parameters: not fixed by retrying
        return http.ProviderError(f"{PROVIDER}: {type(exc).__name__}", provider=PROVIDER, retryable=False)
    raise exc


def converse_request(
    params: Mapping[str, Any], model: str, *, object_mode: bool
) -> tuple[dict[str, Any], list[str], str | None]:
    """Converse keyword arguments, the texts sent (to scrub), and the forced tool's name."""
    chat = base.chat_input(params, PROVIDER, alternate=True)
    request: dict[str, Any] = {
        "modelId": model,
        "messages": [{"role": m["role"], "content": [{"text": m["content"]}]} for m in chat.messages],
    }
    if chat.system:
        request["system"] = [{"text": chat.system}]
    config: dict[str, Any] = {"maxTokens": base.max_tokens(params, DEFAULT_MAX_TOKENS)}
    if (value := base.temperature(params)) is not None:
        config["temperature"] = value
    if stops := base.stop_sequences(params):
        config["stopSequences"] = stops
    request["inferenceConfig"] = config
    tool = None
    if schema := base.output_schema(params, PROVIDER, required=object_mode):
        tool, definition = schema
        request["toolConfig"] = {
            "tools": [
                {
                    "toolSpec": {
                        "name": tool,
                        "description": "Give the answer in this structure.",
                        "inputSchema": {"json": definition},
                    }
                }
            ],
            "toolChoice": {"tool": {"name": tool}},
        }
    return request, chat.texts(), tool


def _usage(raw: Mapping[str, Any] | None) -> Usage | None:
    if not raw:
        return None
    return Usage(raw.get("inputTokens"), raw.get("outputTokens"), raw.get("totalTokens"))


def _titan_dimensions(runtime: ModelRuntime) -> int | None:
    for key in ("BEDROCK_EMBEDDING_DIMENSIONS", "EMBEDDING_DIMENSION"):
        value = runtime.setting(key, int, 0)
        if value in TITAN_DIMENSIONS:
            return value
    return None


def build_plugin(environ: Mapping[str, str] | None = None, resources: ProviderResources | None = None) -> Plugin:
    """The plugin for ``environ`` (``os.environ`` by default): text handlers when a text model
    id is set, the embedding handler when an embedding model id is set, else nothing.

    Args:
        environ: Where to look for the model ids and ``BEDROCK_PRIORITY``.
        resources: The process's shared client, breakers and retries (``process_resources()`` by default).
    """
    return provider_plugin(BedrockProvider, environ, resources)


plugin = build_plugin()
