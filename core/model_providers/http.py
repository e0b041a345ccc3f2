"""The HTTP side of the hosted model providers: one shared client, retries, typed errors.

``HttpClient`` holds one ``httpx.AsyncClient`` per process (per event loop: Lambda keeps one
loop for the container's life, so connections are reused across invocations), with explicit
timeouts; the process's ``ProviderResources`` owns it.
A call is retried with exponential backoff and full jitter on 429, 5xx and connection
errors, honouring ``Retry-After``; when retries run out the error is a retryable
``ProviderError`` so the model registry falls back to the next provider. Other 4xx are not
retryable.

Error messages name the provider, the status and the provider's error type, with a short,
scrubbed excerpt of its message: never an API key, never the request body (see ``scrub``).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from core.errors import ModelError

if TYPE_CHECKING:
    from core.settings.providers import ProviderSettings

T = TypeVar("T")

#: Statuses worth another attempt (or another provider): rate limits, timeouts, server
#: errors, and Anthropic's 529 "overloaded".
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
#: Longest excerpt of a provider's error message kept in our error (characters).
MAX_ERROR_EXCERPT = 200

_KEY_PATTERNS = re.compile(
    r"(sk-[A-Za-z0-9_\-*]{6,}|AKIA[0-9A-Z]{12,}|Bearer\s+\S+|x-api-key\S*\s*\S+|key-[A-Za-z0-9]{16,})",
    re.IGNORECASE,
)


class ProviderError(ModelError):
    """A provider call failed.

    Attributes:
        status: HTTP status, when there was a response (``None`` for connection errors).
        code: The provider's error type or code (``"rate_limit_error"``...), when given.
        retry_after_s: How long the provider asked us to wait (seconds), when it did.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        retryable: bool,
        status: int | None = None,
        code: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, retryable=retryable)
        self.status = status
        self.code = code
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Timeouts:
    """Timeouts of the shared client, in seconds (``MODEL_HTTP_*_TIMEOUT_S``, see ``core.settings.providers``).

    Attributes:
        connect: To open a TCP + TLS connection.
        read: Between two bytes of the response (so a stream may run longer than this).
        write: To send the request.
        pool: To get a connection from the client's pool.
    """

    connect: float = 5.0
    read: float = 60.0
    write: float = 10.0
    pool: float = 5.0

    @classmethod
    def from_settings(cls, settings: ProviderSettings) -> Timeouts:
        return cls(
            connect=settings.connect_timeout_s,
            read=settings.read_timeout_s,
            write=settings.write_timeout_s,
            pool=settings.pool_timeout_s,
        )

    def to_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


@dataclass(frozen=True)
class RetryPolicy:
    """How a failed call is retried.

    Attributes:
        max_attempts: Attempts in all, the first included (``MODEL_HTTP_MAX_ATTEMPTS``).
        base_delay_s: Backoff before the second attempt; doubles each time (seconds).
        max_delay_s: Cap of the backoff (seconds).
        max_retry_after_s: A ``Retry-After`` longer than this is not waited for: the error
            is raised at once so the registry falls back (a Lambda has no minute to spare).
        budget_s: No retry starts (nor is waited for) once this long has passed since the
            first attempt (``MODEL_HTTP_RETRY_BUDGET_S``): API Gateway gives up on a request
            after 30 s, so the next provider must get its turn before then.
    """

    max_attempts: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    max_retry_after_s: float = 20.0
    budget_s: float = 20.0

    @classmethod
    def from_settings(cls, settings: ProviderSettings) -> RetryPolicy:
        return cls(max_attempts=settings.max_attempts, budget_s=settings.retry_budget_s)

    def delay(self, attempt: int, retry_after_s: float | None) -> float | None:
        """Seconds to wait after failed attempt number ``attempt`` (0-based).

        Full jitter (uniform in ``[0, backoff]``) so many containers hit by the same 429 do
        not retry in step; at least ``retry_after_s`` when the provider gave one.

        Returns:
            The delay, or ``None`` when the provider asked for a wait beyond
            ``max_retry_after_s``.
        """
        backoff = random.uniform(0.0, min(self.max_delay_s, self.base_delay_s * 2**attempt))
        if retry_after_s is None:
            return backoff
        if retry_after_s > self.max_retry_after_s:
            return None
        return max(retry_after_s, backoff)


# -- the shared client ----------------------------------------------------------------------


class HttpClient:
    """The process's HTTP side of the hosted providers: one ``httpx.AsyncClient``, retries, typed errors.

    Owned by ``core.model_providers.resources.ProviderResources`` (one per process); tests
    make their own with a ``httpx.MockTransport`` and a ``sleep`` that records delays.

    Args:
        timeouts: Timeouts of the client.
        policy: How failed calls are retried.
        transport: The client's transport (``None``: httpx's network transport).
        sleep: Waits between attempts (seconds).
        clock: Monotonic clock in seconds, for the retry budget.
    """

    def __init__(
        self,
        timeouts: Timeouts | None = None,
        policy: RetryPolicy | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeouts = timeouts or Timeouts()
        self.policy = policy or RetryPolicy()
        self._transport = transport
        self._sleep = sleep
        self._clock = clock
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_settings(cls, settings: ProviderSettings, **kwargs: Any) -> HttpClient:
        """The client for ``settings``; ``kwargs`` as the constructor's (``transport``, ``sleep``, ``clock``)."""
        return cls(Timeouts.from_settings(settings), RetryPolicy.from_settings(settings), **kwargs)

    def client(self) -> httpx.AsyncClient:
        """The ``httpx`` client, made on first use in the running event loop.

        A client's connections belong to the loop that opened them; a new loop (a test, or a
        handler that is not Lambda's long-lived one) gets a new client. Lambda keeps one loop
        for the container's life, so connections are reused across invocations.
        """
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop or self._client.is_closed:
            self._client = httpx.AsyncClient(
                timeout=self.timeouts.to_httpx(),
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=16, keepalive_expiry=60.0),
                transport=self._transport,
                follow_redirects=False,
            )
            self._client_loop = loop
        return self._client

    async def with_retries(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run ``attempt`` until it succeeds, fails for good, or attempts run out.

        Args:
            attempt: One try; raises ``ModelError`` (retryable or not) on failure.

        Returns:
            What ``attempt`` returned.

        Raises:
            ModelError: a non-retryable failure at once; the last retryable one when attempts
                run out, the provider asked for a longer wait than the policy allows, or the
                retry budget is spent.
        """
        policy = self.policy
        started = self._clock()
        for number in range(policy.max_attempts):
            try:
                return await attempt()
            except ModelError as exc:
                if not exc.retryable or number + 1 >= policy.max_attempts:
                    raise
                delay = policy.delay(number, getattr(exc, "retry_after_s", None))
                if delay is None or self._clock() - started + delay > policy.budget_s:
                    raise
                await self._sleep(delay)
        raise AssertionError("unreachable: max_attempts >= 1")

    async def post_json(
        self,
        provider: str,
        url: str,
        body: Mapping[str, Any],
        *,
        headers: Mapping[str, str],
        secrets: Sequence[str] = (),
    ) -> dict[str, Any]:
        """POST ``body`` as JSON and return the JSON object answered, with retries.

        Args:
            provider: Provider name, for errors.
            url: Full URL.
            body: Request body.
            headers: Request headers (authentication included).
            secrets: Values to scrub from any error message (the API key, the prompt texts).

        Raises:
            ProviderError: see ``with_retries``; a 200 whose body is not a JSON object is
                retryable (a proxy's error page, a truncated body).
        """
        content = _dumps(body)

        async def attempt() -> dict[str, Any]:
            try:
                response = await self.client().post(url, content=content, headers=_json_headers(headers))
            except httpx.TransportError as exc:
                raise _transport_error(provider, exc) from None
            if response.status_code >= 400:
                raise error_from_response(provider, response.status_code, response.headers, response.content, secrets)
            return parse_json_object(provider, response.content)

        return await self.with_retries(attempt)

    @asynccontextmanager
    async def stream_post(
        self,
        provider: str,
        url: str,
        body: Mapping[str, Any],
        *,
        headers: Mapping[str, str],
        secrets: Sequence[str] = (),
    ) -> AsyncIterator[httpx.Response]:
        """POST and yield the open streaming response once its status is known to be good.

        Failures before the first byte of the body (connection errors, 429, 5xx) are retried
        like ``post_json``; a failure in the middle of the stream is not (text was already
        delivered), it surfaces as a retryable ``ProviderError`` from the reader.

        Raises:
            ProviderError: as ``post_json``.
        """
        content = _dumps(body)
        client = self.client()

        async def attempt() -> httpx.Response:
            request = client.build_request("POST", url, content=content, headers=_json_headers(headers))
            try:
                response = await client.send(request, stream=True)
            except httpx.TransportError as exc:
                raise _transport_error(provider, exc) from None
            if response.status_code >= 400:
                raise error_from_response(
                    provider, response.status_code, response.headers, await _read_error_body(response), secrets
                )
            return response

        response = await self.with_retries(attempt)
        try:
            yield response
        except httpx.TransportError as exc:
            raise _transport_error(provider, exc) from None
        finally:
            await response.aclose()


async def _read_error_body(response: httpx.Response) -> bytes:
    """The body of a streamed error response (empty when the connection broke), closing it."""
    try:
        return await response.aread()
    except httpx.TransportError:
        return b""
    finally:
        await response.aclose()


@dataclass(frozen=True)
class ServerSentEvent:
    """One SSE event: ``event`` name (``"message"`` when unnamed) and its ``data``."""

    event: str
    data: str


async def iter_sse(response: httpx.Response) -> AsyncIterator[ServerSentEvent]:
    """Parse a ``text/event-stream`` body (WHATWG rules: ``data`` lines joined by newlines,
    ``:`` comments and ``id``/``retry`` fields ignored, an event ends at a blank line)."""
    event = ""
    data: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield ServerSentEvent(event or "message", "\n".join(data))
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
    if data:
        yield ServerSentEvent(event or "message", "\n".join(data))


def parse_json_object(provider: str, raw: bytes | str) -> dict[str, Any]:
    """``raw`` as a JSON object.

    Raises:
        ProviderError: not JSON, or JSON but not an object (retryable: a truncated body or a
            proxy's error page is a transient failure another provider does not have).
    """
    try:
        value = json.loads(raw)
    except ValueError:
        raise ProviderError(f"{provider}: the response is not valid JSON", provider=provider, retryable=True) from None
    if not isinstance(value, dict):
        raise ProviderError(f"{provider}: the response is JSON but not an object", provider=provider, retryable=True)
    return value


# -- errors ---------------------------------------------------------------------------------


def error_from_response(
    provider: str, status: int, headers: Mapping[str, str], raw: bytes, secrets: Sequence[str] = ()
) -> ProviderError:
    """The typed error for an HTTP error response.

    Args:
        provider: Provider name.
        status: HTTP status (>= 400).
        headers: Response headers (``Retry-After``, ``retry-after-ms``).
        raw: Response body; its error type and message are kept, scrubbed and cut short.
        secrets: Values that must never appear in the message.
    """
    code, detail = _error_detail(raw)
    message = f"{provider}: HTTP {status}" + (f" {code}" if code else "")
    if detail:
        message += f": {scrub(detail, secrets)}"
    return ProviderError(
        message,
        provider=provider,
        retryable=status in RETRYABLE_STATUSES or status >= 500,
        status=status,
        code=code,
        retry_after_s=retry_after(headers),
    )


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The wait a response asks for (seconds): ``retry-after-ms`` (OpenAI), else
    ``Retry-After`` as seconds or as an HTTP date. ``None`` when absent or unreadable."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def scrub(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` without secrets or prompt text, cut to ``MAX_ERROR_EXCERPT`` characters.

    Removes every given secret (API keys; prompt texts, or any 32-character run of them, as
    providers sometimes quote the input back) and anything shaped like a key or a bearer
    token.
    """
    for secret in secrets:
        if not secret or len(secret) < 8:
            continue
        if secret in text:
            text = text.replace(secret, "[redacted]")
        elif len(secret) > 32:
            for start in range(0, len(secret) - 32 + 1, 16):
                run = secret[start : start + 32]
                if run in text:
                    text = text.replace(run, "[redacted]")
    text = _KEY_PATTERNS.sub("[redacted]", text)
    return text if len(text) <= MAX_ERROR_EXCERPT else text[: MAX_ERROR_EXCERPT - 1] + "…"


def _error_detail(raw: bytes) -> tuple[str | None, str]:
    """(error type or code, message) from the error bodies of OpenAI, Anthropic and Ollama."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None, ""  # an HTML error page says nothing useful and may be long
    if not isinstance(body, dict):
        return None, ""
    error = body.get("error", body)
    if isinstance(error, str):  # Ollama: {"error": "model 'x' not found"}
        return None, error
    if not isinstance(error, dict):
        return None, ""
    code = error.get("type") or error.get("code")
    return (str(code) if code else None), str(error.get("message") or "")


def _transport_error(provider: str, exc: httpx.TransportError) -> ProviderError:
    # The class name says what happened (ConnectTimeout, ReadTimeout, ConnectError...);
    # str(exc) may hold a URL and is left out.
    return ProviderError(f"{provider}: {type(exc).__name__} talking to the provider", provider=provider, retryable=True)


def _json_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {"content-type": "application/json", "accept": "application/json", **headers}


def _dumps(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
