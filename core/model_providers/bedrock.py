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

- images: ``BEDROCK_IMAGE_DESCRIPTION_MODEL_ID`` (a vision model, e.g. ``us.amazon.nova-lite-v1:0``)
  serves IMAGE_DESCRIPTION through Converse with an image block (``describe_image``), answering
  ``{"title", "description"}`` as elizaOS plugin-openai does.

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
import base64
import ipaddress
import json
import socket
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

from core.errors import ModelError
from core.model_providers import base, http
from core.model_providers import openai_media as media
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
_IMAGE_MODEL_ID = "BEDROCK_IMAGE_DESCRIPTION_MODEL_ID"
#: Converse's largest image (bytes) and the description's default length (tokens).
MAX_IMAGE_BYTES = 3_750_000
IMAGE_DESCRIPTION_MAX_TOKENS = 1024
_IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpeg"), (b"GIF87a", "gif"), (b"GIF89a", "gif"))


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
        """Text and object types when a text model id is set, embeddings when an embedding model id
        is, IMAGE_DESCRIPTION when ``BEDROCK_IMAGE_DESCRIPTION_MODEL_ID`` is (a vision model: Nova
        Lite or Pro, Claude 3+; Nova Micro reads no images, so the text model is not assumed to)."""
        text = TEXT_TYPES + OBJECT_TYPES if any(environ.get(k) for k in _TEXT_MODEL_IDS) else ()
        embedding = (ModelType.TEXT_EMBEDDING,) if environ.get("BEDROCK_EMBEDDING_MODEL_ID") else ()
        vision = (ModelType.IMAGE_DESCRIPTION,) if environ.get(_IMAGE_MODEL_ID) else ()
        return text + embedding + vision

    def model_name(self, runtime: ModelRuntime, params: Mapping[str, Any], model_type: ModelType) -> str:
        """``params["model"]``, else ``BEDROCK_EMBEDDING_MODEL_ID`` or ``BEDROCK_{SIZE}_MODEL_ID``,
        ``BEDROCK_TEXT_MODEL_ID``, ``TEXT_{SIZE}_MODEL``.

        Raises:
            ModelError: no model id is set for the type (not retryable).
        """
        if _mapping(params).get("model"):
            return str(params["model"])
        size = "SMALL" if model_type in (ModelType.TEXT_SMALL, ModelType.OBJECT_SMALL) else "LARGE"
        names = {
            ModelType.TEXT_EMBEDDING: ("BEDROCK_EMBEDDING_MODEL_ID",),
            ModelType.IMAGE_DESCRIPTION: (_IMAGE_MODEL_ID,),
        }.get(model_type) or (f"BEDROCK_{size}_MODEL_ID", "BEDROCK_TEXT_MODEL_ID", f"TEXT_{size}_MODEL")
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

    def _call(self, model_type: ModelType) -> base.ProviderCall:
        return self.describe_image if model_type is ModelType.IMAGE_DESCRIPTION else super()._call(model_type)

    async def describe_image(self, runtime: ModelRuntime, params: Mapping[str, Any], model: str) -> ModelResult:
        """IMAGE_DESCRIPTION through Converse with an image block: ``{"title", "description"}``.

        Args:
            params: As elizaOS's (an image URL, or ``{"image_url"|"imageUrl", "prompt"?}``) or
                ``{"image": bytes, "prompt"?}``. A URL is a ``data:`` URL, an ``s3://`` URI
                (sent as ``s3Location``: the model reads it with the role's rights) or an
                ``https://`` URL, fetched here (Converse takes no web URL), up to 3.75 MB.

        Raises:
            ModelError: no image, an image that is not PNG, JPEG, GIF or WebP, or too large
                (not retryable); Converse's own errors as for text.
        """
        source, prompt = image_input(params)
        image = await self._image_block(source)
        request = {
            "modelId": model,
            "messages": [{"role": "user", "content": [{"image": image}, {"text": prompt}]}],
            "inferenceConfig": {"maxTokens": base.max_tokens(_mapping(params), IMAGE_DESCRIPTION_MAX_TOKENS)},
        }
        response = await self._aws(self.resources.bedrock_client().converse, [prompt], **request)
        text = "".join(b.get("text", "") for b in response["output"]["message"]["content"])
        return ModelResult(media.title_and_description(text), model, _usage(response.get("usage")))

    async def _image_block(self, source: bytes | str) -> dict[str, Any]:
        """The Converse ``image`` block for raw bytes or a URL (see ``describe_image``)."""
        if isinstance(source, str) and source.startswith("s3://"):
            return {"format": _format_from_name(source), "source": {"s3Location": {"uri": source}}}
        data = source if isinstance(source, bytes) else await self._image_bytes(source)
        if len(data) > MAX_IMAGE_BYTES:
            raise ModelError(f"{PROVIDER}: the image is over {MAX_IMAGE_BYTES} bytes", provider=PROVIDER)
        return {"format": image_format(data), "source": {"bytes": data}}

    async def _image_bytes(self, url: str) -> bytes:
        if url.startswith("data:"):
            return _data_url_bytes(url)
        if not url.startswith("https://"):
            raise ModelError(f"{PROVIDER}: an image URL must be data:, s3:// or https://", provider=PROVIDER)
        await _refuse_internal_host(url)

        async def attempt() -> bytes:
            try:
                response = await self.http.client().get(url)  # redirects are not followed (httpx's default)
            except httpx.TransportError as exc:
                message = f"{PROVIDER}: {type(exc).__name__} fetching the image"
                raise http.ProviderError(message, provider=PROVIDER, retryable=True) from None
            if response.status_code >= 400:
                raise http.error_from_response(PROVIDER, response.status_code, response.headers, b"")
            return response.content

        return await self.http.with_retries(attempt)

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


def image_input(params: Mapping[str, Any] | str | bytes) -> tuple[bytes | str, str]:
    """(image bytes or URL, prompt) from IMAGE_DESCRIPTION params (elizaOS's, or ``{"image": bytes}``).

    Raises:
        ModelError: no image (not retryable).
    """
    if isinstance(params, str | bytes):
        return params, media.DESCRIBE_PROMPT
    source = params.get("image") or params.get("image_url") or params.get("imageUrl")
    if not isinstance(source, str | bytes) or not source:
        raise ModelError(f"{PROVIDER}: IMAGE_DESCRIPTION needs image_url or image bytes", provider=PROVIDER)
    return source, str(params.get("prompt") or media.DESCRIBE_PROMPT)


def image_format(data: bytes) -> str:
    """Converse's ``format`` of an image, from its first bytes.

    Raises:
        ModelError: not PNG, JPEG, GIF or WebP (not retryable).
    """
    for magic, name in _IMAGE_MAGIC:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    raise ModelError(f"{PROVIDER}: the image is not PNG, JPEG, GIF or WebP", provider=PROVIDER)


def _mapping(params: Any) -> Mapping[str, Any]:
    """``params`` when a mapping (IMAGE_DESCRIPTION may be given a bare URL), else no options."""
    return params if isinstance(params, Mapping) else {}


def _format_from_name(uri: str) -> str:
    extension = uri.rsplit(".", 1)[-1].lower()
    found = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg", "gif": "gif", "webp": "webp"}.get(extension)
    if found is None:
        raise ModelError(f"{PROVIDER}: cannot tell the image format of {uri!r}", provider=PROVIDER)
    return found


def _data_url_bytes(url: str) -> bytes:
    header, _, payload = url.partition(",")
    if not header.endswith(";base64"):
        raise ModelError(f"{PROVIDER}: a data: image URL must be base64", provider=PROVIDER)
    try:
        return base64.b64decode(payload, validate=True)
    except ValueError:
        raise ModelError(f"{PROVIDER}: the data: image URL is not valid base64", provider=PROVIDER) from None


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


async def _refuse_internal_host(url: str) -> None:
    """Refuse an image URL whose host resolves to anything but public addresses.

    Attachment URLs come from users: fetched as they are, ``https://169.254.169.254/...`` or a name
    resolving to 10.x would make the function read its own network (SSRF, OWASP A10). Every
    address the name resolves to must be global. A name that changes its answer between this check
    and the fetch (DNS rebinding) is not covered; a deployment that must be sure puts the function
    in a VPC without a route to what it must not reach.

    Raises:
        ModelError: the host is missing, does not resolve, or resolves to a non-global address.
    """
    host = httpx.URL(url).host
    if not host:
        raise ModelError(f"{PROVIDER}: the image URL has no host", provider=PROVIDER)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, 443, type=socket.SOCK_STREAM)
    except OSError:
        raise ModelError(f"{PROVIDER}: the image host {host!r} does not resolve", provider=PROVIDER) from None
    if not infos or not all(ipaddress.ip_address(info[4][0]).is_global for info in infos):
        raise ModelError(f"{PROVIDER}: the image host {host!r} is not a public address", provider=PROVIDER)
