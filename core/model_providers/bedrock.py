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
environment at import). Other settings: ``BEDROCK_REGION`` (else ``AWS_REGION``),
``BEDROCK_ENDPOINT_URL``, ``BEDROCK_PRIORITY`` (default 10).

Retries are ours (``core.model_providers.http.with_retries``: backoff with jitter), not
botocore's, so every provider behaves alike and the registry falls back after the same
number of attempts. Structured output (``schema``, or OBJECT_*) is a forced tool call
(``toolConfig`` with ``toolChoice``); the tool input is returned as JSON text or parsed.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from core import aws
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

PROVIDER = "bedrock"
PREFIX = "BEDROCK"
DEFAULT_MAX_TOKENS = 4096
TITAN_DIMENSIONS = (256, 512, 1024)
COHERE_MAX_TEXTS = 96
#: Error codes another attempt (or another provider) may not get.
RETRYABLE_CODES = frozenset({
    "ThrottlingException", "ServiceUnavailableException", "InternalServerException", "ModelTimeoutException",
    "ModelNotReadyException", "ModelStreamErrorException", "TooManyRequestsException",
})

_client: Any = None


def configure(client: Any = None) -> None:
    """Use ``client`` (tests: a stubbed one) instead of the process's own."""
    global _client
    _client = client


def get_client() -> Any:
    """The process's ``bedrock-runtime`` client (thread-safe; made once, in the init phase
    if called there)."""
    global _client
    if _client is None:
        from botocore.config import Config

        timeouts = http.Timeouts.from_env()
        _client = aws.client(
            "bedrock-runtime",
            region_name=os.environ.get("BEDROCK_REGION") or os.environ.get("AWS_REGION") or None,
            endpoint_url=os.environ.get("BEDROCK_ENDPOINT_URL") or None,
            config=Config(connect_timeout=timeouts.connect, read_timeout=timeouts.read,
                          retries={"total_max_attempts": 1}, max_pool_connections=16),
        )
    return _client


def error_from_exception(exc: Exception, hidden: list[str]) -> ModelError:
    """The typed error for a botocore failure (the message is scrubbed of prompt texts)."""
    from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "ClientError")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        retryable = code in RETRYABLE_CODES or (status is not None and (status == 429 or status >= 500))
        detail = http.scrub(str(error.get("Message") or ""), hidden)
        return http.ProviderError(f"{PROVIDER}: {code}" + (f": {detail}" if detail else ""), provider=PROVIDER,
                                  retryable=retryable, status=status, code=code)
    if isinstance(exc, ConnectionError | HTTPClientError):
        return http.ProviderError(f"{PROVIDER}: {type(exc).__name__} talking to the provider", provider=PROVIDER,
                                  retryable=True)
    if isinstance(exc, BotoCoreError):  # no credentials, bad parameters: not fixed by retrying
        return http.ProviderError(f"{PROVIDER}: {type(exc).__name__}", provider=PROVIDER, retryable=False)
    raise exc


async def _aws(fn: Callable[..., Any], hidden: list[str], **kwargs: Any) -> Any:
    """Call a blocking boto3 method in a thread, with our retries and typed errors."""
    from botocore.exceptions import BotoCoreError, ClientError

    async def attempt() -> Any:
        try:
            return await asyncio.to_thread(fn, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise error_from_exception(exc, hidden) from None

    return await http.with_retries(attempt)


# -- text -----------------------------------------------------------------------------------

def converse_request(params: Mapping[str, Any], model: str, *, object_mode: bool
                     ) -> tuple[dict[str, Any], list[str], str | None]:
    """Converse keyword arguments, the texts sent (to scrub), and the forced tool's name."""
    chat = chat_input(params, PROVIDER, alternate=True)
    request: dict[str, Any] = {
        "modelId": model,
        "messages": [{"role": m["role"], "content": [{"text": m["content"]}]} for m in chat.messages],
    }
    if chat.system:
        request["system"] = [{"text": chat.system}]
    config: dict[str, Any] = {"maxTokens": max_tokens(params, DEFAULT_MAX_TOKENS)}
    if (value := temperature(params)) is not None:
        config["temperature"] = value
    if stops := stop_sequences(params):
        config["stopSequences"] = stops
    request["inferenceConfig"] = config
    tool = None
    if schema := output_schema(params, PROVIDER, required=object_mode):
        tool, definition = schema
        request["toolConfig"] = {
            "tools": [{"toolSpec": {"name": tool, "description": "Give the answer in this structure.",
                                    "inputSchema": {"json": definition}}}],
            "toolChoice": {"tool": {"name": tool}},
        }
    return request, chat.texts(), tool


def _usage(raw: Mapping[str, Any] | None) -> Usage | None:
    if not raw:
        return None
    return Usage(raw.get("inputTokens"), raw.get("outputTokens"), raw.get("totalTokens"))


def _text_call(object_mode: bool):
    async def call(runtime: Any, params: Mapping[str, Any], model: str) -> ModelResult:
        request, texts, tool = converse_request(params, model, object_mode=object_mode)
        client = get_client()
        callback = stream_callback(params)
        if callback is not None:
            return await _converse_stream(client, request, texts, model, tool, callback)
        response = await _aws(client.converse, texts, **request)
        blocks = response["output"]["message"]["content"]
        usage = _usage(response.get("usage"))
        if tool is not None:
            for block in blocks:
                if "toolUse" in block:
                    return ModelResult(json.dumps(block["toolUse"].get("input"), ensure_ascii=False), model, usage)
            raise ModelError(f"{PROVIDER}: the model did not call the structured-output tool", provider=PROVIDER,
                             retryable=True)
        return ModelResult("".join(b.get("text", "") for b in blocks), model, usage)

    return call


async def _converse_stream(client: Any, request: Mapping[str, Any], hidden: list[str], model: str,
                           tool: str | None, callback: Any) -> ModelResult:
    from botocore.exceptions import BotoCoreError, ClientError

    # The call itself (until the stream opens) is retried; events are read in a thread and
    # handed to the loop through a queue, so chunks reach the callback as they arrive.
    response = await _aws(client.converse_stream, hidden, **request)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def pump() -> None:
        try:
            for event in response["stream"]:
                loop.call_soon_threadsafe(queue.put_nowait, ("event", event))
        except (ClientError, BotoCoreError) as exc:
            loop.call_soon_threadsafe(queue.put_nowait, ("error", error_from_exception(exc, hidden)))
        except Exception as exc:  # surfaced in the loop, never lost in the thread
            loop.call_soon_threadsafe(queue.put_nowait, ("error", exc))
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, ("end", None))

    reader = asyncio.ensure_future(asyncio.to_thread(pump))
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
                    await emit(callback, piece)
            elif "metadata" in item:
                usage = _usage(item["metadata"].get("usage"))
    finally:
        if not finished:  # the consumer gave up: stop reading rather than drain the stream
            response["stream"].close()
        await asyncio.gather(reader, return_exceptions=True)
    return ModelResult("".join(parts), model, usage)


# -- embeddings -----------------------------------------------------------------------------

def _titan_dimensions(runtime: Any) -> int | None:
    for key in ("BEDROCK_EMBEDDING_DIMENSIONS", "EMBEDDING_DIMENSION"):
        value = setting(runtime, key)
        if value and int(value) in TITAN_DIMENSIONS:
            return int(value)
    return None


async def _invoke(client: Any, model: str, body: Mapping[str, Any], hidden: list[str]) -> tuple[dict, dict]:
    """InvokeModel: (the JSON body answered, the response headers). Reading and parsing the
    body are part of the retried attempt, like ``http.post_json``."""
    from botocore.exceptions import BotoCoreError, ClientError

    def call() -> tuple[bytes, dict]:
        response = client.invoke_model(modelId=model, body=json.dumps(body), contentType="application/json",
                                       accept="application/json")
        return response["body"].read(), response.get("ResponseMetadata", {}).get("HTTPHeaders", {})

    async def attempt() -> tuple[dict, dict]:
        try:
            raw, headers = await asyncio.to_thread(call)
        except (ClientError, BotoCoreError) as exc:
            raise error_from_exception(exc, hidden) from None
        return http.parse_json_object(PROVIDER, raw), headers

    return await http.with_retries(attempt)


async def _embed(runtime: Any, params: Mapping[str, Any], model: str) -> ModelResult:
    texts, batch = embedding_texts(params)
    client = get_client()
    if "cohere.embed" in model:
        vectors, tokens = await _embed_cohere(client, model, texts, str(params.get("input_type") or
                                                                         "search_document"))
    else:
        vectors, tokens = await _embed_titan(runtime, client, model, texts)
    return ModelResult(vectors if batch else vectors[0], model, Usage(tokens, 0, tokens))


async def _embed_titan(runtime: Any, client: Any, model: str, texts: list[str]) -> tuple[list[list[float]], int]:
    dimensions = _titan_dimensions(runtime) if "v2" in model else None
    limit = asyncio.Semaphore(int(setting(runtime, "BEDROCK_EMBEDDING_CONCURRENCY", 8)))

    async def one(text: str) -> tuple[list[float], int]:
        body: dict[str, Any] = {"inputText": text or " "}
        if "v2" in model:
            body["normalize"] = True
            if dimensions:
                body["dimensions"] = dimensions
        async with limit:
            data, _ = await _invoke(client, model, body, [text])
        return [float(v) for v in data["embedding"]], int(data.get("inputTextTokenCount") or 0)

    results = await asyncio.gather(*(one(t) for t in texts))
    return [v for v, _ in results], sum(n for _, n in results)


async def _embed_cohere(client: Any, model: str, texts: list[str], input_type: str
                        ) -> tuple[list[list[float]], int]:
    vectors: list[list[float]] = []
    tokens = 0
    for start in range(0, len(texts), COHERE_MAX_TEXTS):
        chunk = [t or " " for t in texts[start : start + COHERE_MAX_TEXTS]]
        data, headers = await _invoke(client, model, {"texts": chunk, "input_type": input_type,
                                                      "truncate": "END"}, chunk)
        embeddings = data["embeddings"]
        if isinstance(embeddings, Mapping):  # asked with embedding_types: {"float": [...]}
            embeddings = embeddings["float"]
        if len(embeddings) != len(chunk):
            raise ModelError(f"{PROVIDER}: asked for {len(chunk)} embeddings, got {len(embeddings)}",
                             provider=PROVIDER, retryable=True)
        vectors.extend([float(v) for v in e] for e in embeddings)
        tokens += int(headers.get("x-amzn-bedrock-input-token-count") or 0)
    return vectors, tokens


# -- the plugin -----------------------------------------------------------------------------

def _resolver(model_type: ModelType):
    size = "SMALL" if model_type in (ModelType.TEXT_SMALL, ModelType.OBJECT_SMALL) else "LARGE"

    def resolve(runtime: Any, params: Mapping[str, Any]) -> str:
        if params.get("model"):
            return str(params["model"])
        if model_type is ModelType.TEXT_EMBEDDING:
            found = setting(runtime, "BEDROCK_EMBEDDING_MODEL_ID")
        else:
            found = (setting(runtime, f"BEDROCK_{size}_MODEL_ID") or setting(runtime, "BEDROCK_TEXT_MODEL_ID")
                     or setting(runtime, f"TEXT_{size}_MODEL"))
        if not found:
            raise ModelError(f"{PROVIDER}: no model id set for {model_type.value}", provider=PROVIDER)
        return str(found)

    return resolve


def build_plugin(environ: Mapping[str, str] | None = None) -> Plugin:
    """The plugin for ``environ`` (``os.environ`` by default): text handlers when a text model
    id is set, the embedding handler when an embedding model id is set, else nothing."""
    env = os.environ if environ is None else environ
    description = "Amazon Bedrock: Converse / ConverseStream text, Titan and Cohere embeddings (IAM role)."
    calls: dict[ModelType, Any] = {}
    if any(env.get(k) for k in ("BEDROCK_TEXT_MODEL_ID", "BEDROCK_SMALL_MODEL_ID", "BEDROCK_LARGE_MODEL_ID")):
        calls.update({ModelType.TEXT_SMALL: _text_call(False), ModelType.TEXT_LARGE: _text_call(False),
                      ModelType.OBJECT_SMALL: _text_call(True), ModelType.OBJECT_LARGE: _text_call(True)})
    if env.get("BEDROCK_EMBEDDING_MODEL_ID"):
        calls[ModelType.TEXT_EMBEDDING] = _embed
    if not calls:
        announce_disabled(PROVIDER, "neither BEDROCK_TEXT_MODEL_ID (or BEDROCK_SMALL/LARGE_MODEL_ID) "
                                    "nor BEDROCK_EMBEDDING_MODEL_ID is set")
        return Plugin(name=PROVIDER, description=description)
    models = registrations(PROVIDER, calls, _resolver, priority=env_priority(env, PREFIX, 10), structured=True)
    return Plugin(name=PROVIDER, description=description, models=models)


plugin = build_plugin()
