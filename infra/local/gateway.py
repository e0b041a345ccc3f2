"""A local stand-in for API Gateway HTTP API (payload format 2.0) in front of one Lambda handler.

Every HTTP request becomes the event API Gateway would send to the function
(``version "2.0"``, ``routeKey "$default"``), the handler is called with a fresh
:class:`~infra.local.lambda_context.LambdaContext`, and its payload 2.0 response is written
back. Behaviour that belongs to API Gateway itself is reproduced too: bodies over its 10 MB
limit are refused with 413 without invoking the function, a failing function becomes
``500 {"message": "Internal Server Error"}``, a result without ``statusCode`` becomes a
200 JSON response, and an authorizer (the JWT authorizer's place) answers
``401 {"message": "Unauthorized"}`` before any invocation.

The HTTP side is uvicorn (h11) serving the gateway as a small ASGI application: a well-kept
server that takes bursts of new connections (a listen backlog of 2,048, where the standard
library's server had 5 and made the 6th concurrent client wait a second for its SYN to be
retried) and that can stream a response, as server-sent events need. The invocations run
in Lambda containers (``infra.local.containers``): one event at a time per container, one
container by default, ``LOCAL_CONCURRENCY`` child processes when asked for.

Streamed replies (``functions.api.streaming``): a request with ``Accept: text/event-stream``
gets a connection id in ``requestContext.connectionId``, as a WebSocket API's events carry one,
and the gateway serves the API Gateway Management API's ``POST /@connections/{id}`` itself
(``AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI`` is set to the gateway's URL when it starts, for
this process and the containers it starts): what the function posts there is written to the
client as server-sent events (``event: <frame type>``, ``data: <the frame>``) as it arrives, and
the response ends when the invocation returns. A function that posts nothing (an error before
the turn, a 401 from the authorizer) is answered as usual, in JSON. A client that disconnects
mid-stream turns its connection gone: the next post is answered 410 ``GoneException``, as AWS
does, and the invocation runs to its end.

The chat page (``web/``, plain HTML, CSS and JavaScript): with ``page_dir``, ``GET /`` serves its
``index.html`` and ``GET /web/<file>`` its files, without a token (the page is static; what it
shows comes from the API, with a token). With ``page_token``, a browser on this machine gets a
user token in the page's ``<meta name="agent-token">``: only when the client's address is the
loopback one and the ``Host`` header names this machine (``localhost``, ``127.0.0.1``, ``[::1]``),
so neither another machine nor a web site that rebinds its DNS name to 127.0.0.1 is handed one;
anyone else gets the page without it, and the page asks for a token.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import mimetypes
import os
import secrets
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote

import uvicorn

from infra.local.containers import Handler, HandlerFailed, InProcessContainer, ProcessContainers
from infra.local.lambda_context import LOCAL_ACCOUNT_ID

logger = logging.getLogger(__name__)

#: ``authorizer(headers) -> {"jwt": {"claims": ..., "scopes": ...}} | None`` (see ``LocalGateway``).
Authorizer = Callable[[Mapping[str, str]], "dict[str, Any] | None"]
#: ASGI's types, as far as the gateway uses them.
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

#: The Management API's path (``POST /@connections/{connectionId}``), served for streamed replies.
_CONNECTIONS = "/@connections/"
#: The environment variable boto3 reads for the Management API's endpoint (set at start).
MANAGEMENT_ENDPOINT_ENV = "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI"

#: Seconds an idle keep-alive connection is kept open.
_KEEP_ALIVE_S = 60
#: Connections the kernel holds for the server before it accepts them.
_BACKLOG = 2048


class Containers(Protocol):
    """Where events run (``infra.local.containers``)."""

    concurrency: int

    def start(self) -> None: ...

    def invoke(self, event: dict[str, Any]) -> Any: ...

    def close(self) -> None: ...


#: API Gateway's payload limit for HTTP APIs: 10 MB.
API_GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024

#: An oversized body up to this size is read and thrown away so the client sees the 413;
#: beyond it the connection is simply closed rather than spending time on it.
_MAX_DRAIN_BYTES = 64 * 1024 * 1024

#: Content types whose bodies API Gateway passes as text (everything else is base64).
_TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/xml",
        "application/javascript",
        "application/x-javascript",
        "application/ecmascript",
        "application/graphql",
        "application/yaml",
        "application/x-yaml",
    }
)

#: Response headers the gateway computes itself; the handler's values would break framing.
_HOP_BY_HOP = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class HttpResponse:
    """An HTTP response ready to be written.

    Attributes:
        status: HTTP status code.
        headers: Header name/value pairs, repeated names allowed (``set-cookie``).
        body: Raw body bytes.
    """

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def json_response(status: int, payload: Any) -> HttpResponse:
    """A JSON response, as API Gateway writes its own errors.

    Args:
        status: HTTP status code.
        payload: JSON-serialisable body.

    Returns:
        The response with ``content-type: application/json``.
    """
    body = json.dumps(payload, separators=(",", ":")).encode()
    return HttpResponse(status, [("content-type", "application/json")], body)


def is_text_content_type(content_type: str | None) -> bool:
    """Whether API Gateway would pass a body of this type as text rather than base64.

    Args:
        content_type: Value of the request's ``Content-Type`` header, if any.

    Returns:
        True for ``text/*``, JSON, XML, JavaScript and ``+json``/``+xml`` types.
    """
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type.startswith("text/") or media_type in _TEXT_TYPES or media_type.endswith(("+json", "+xml"))


def _apigw_time(epoch_s: float) -> str:
    """API Gateway's ``requestContext.time`` format, e.g. ``12/Mar/2020:19:03:58 +0000``.

    Month names are spelled out here because ``%b`` follows the process locale.
    """
    t = time.gmtime(epoch_s)
    clock = f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    return f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:{clock} +0000"


def _new_request_id() -> str:
    """A request id shaped like API Gateway's (``LV7fzho-PHcEJPw=``)."""
    return secrets.token_urlsafe(11)[:14] + "="


def _trace_id(epoch_s: float) -> str:
    """An X-Ray trace header as API Gateway adds it (``Root=1-<hex time>-<24 hex>``)."""
    return f"Root=1-{int(epoch_s):08x}-{secrets.token_hex(12)}"


def _collect_headers(headers: Sequence[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    """Fold request headers the way payload 2.0 does.

    Args:
        headers: Header name/value pairs as received, in order.

    Returns:
        Lowercase headers with repeated values joined by ``,``, and the cookies, which
        payload 2.0 moves out of the ``cookie`` header into their own list.
    """
    folded: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        folded[key] = f"{folded[key]},{value}" if key in folded else value
    return folded, cookies


def _query_parameters(raw_query: str) -> dict[str, str]:
    """Decoded query parameters, repeated keys joined by ``,`` as in payload 2.0."""
    params: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        params[key] = f"{params[key]},{value}" if key in params else value
    return params


def build_http_event(
    *,
    method: str,
    target: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    source_ip: str,
    server_port: int,
    protocol: str = "HTTP/1.1",
    now_s: float | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """Build the API Gateway HTTP API (payload 2.0) event for one request.

    Args:
        method: HTTP method, e.g. ``POST``.
        target: Request target as received: path plus optional ``?query``.
        headers: Request header name/value pairs, in order.
        body: Raw request body (may be empty).
        source_ip: Client IP address.
        server_port: Port the request arrived on (``x-forwarded-port``).
        protocol: HTTP version of the request line.
        now_s: Arrival time as a Unix timestamp in seconds; now when omitted.
        request_id: API Gateway request id; a fresh one when omitted.

    Returns:
        The event, with ``body`` absent when the request had none.
    """
    now_s = time.time() if now_s is None else now_s
    request_id = request_id or _new_request_id()
    raw_path, _, raw_query = target.partition("?")
    # HTTP APIs hand the path to the function percent-decoded, in rawPath as well.
    path = unquote(raw_path) or "/"
    folded, cookies = _collect_headers(headers)
    # API Gateway appends the caller to x-forwarded-for and adds its own forwarding headers.
    forwarded_for = folded.get("x-forwarded-for")
    folded["x-forwarded-for"] = f"{forwarded_for}, {source_ip}" if forwarded_for else source_ip
    folded["x-forwarded-port"] = str(server_port)
    folded["x-forwarded-proto"] = "http"
    folded.setdefault("x-amzn-trace-id", _trace_id(now_s))
    domain = folded.get("host", "localhost").rsplit(":", 1)[0] or "localhost"

    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = folded
    if raw_query:
        event["queryStringParameters"] = _query_parameters(raw_query)
    event["requestContext"] = {
        "accountId": LOCAL_ACCOUNT_ID,
        "apiId": "local",
        "domainName": domain,
        "domainPrefix": domain.split(".", 1)[0],
        "http": {
            "method": method.upper(),
            "path": path,
            "protocol": protocol,
            "sourceIp": source_ip,
            "userAgent": folded.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": "$default",
        "stage": "$default",
        "time": _apigw_time(now_s),
        "timeEpoch": int(now_s * 1000),
    }
    event.update(_event_body(body, folded.get("content-type")))
    return event


def _event_body(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The ``body``/``isBase64Encoded`` pair of an event.

    Text-like bodies that are valid UTF-8 are passed as text; anything else as base64.
    """
    if not body:
        return {"isBase64Encoded": False}
    if is_text_content_type(content_type):
        try:
            return {"body": body.decode("utf-8"), "isBase64Encoded": False}
        except UnicodeDecodeError:
            pass  # Claims to be text but is not: API Gateway would not pass it as text either.
    return {"body": base64.b64encode(body).decode("ascii"), "isBase64Encoded": True}


def _checked_header(name: Any, value: Any) -> tuple[str, str]:
    """A header pair as strings, refusing CR/LF that would let a handler forge headers.

    Raises:
        ValueError: The name or value contains a line break.
    """
    pair = (str(name), str(value))
    if any(ch in part for part in pair for ch in "\r\n"):
        raise ValueError(f"line break in response header {pair[0]!r}")
    return pair


def _response_headers(result: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Headers of a payload 2.0 response: ``headers``, ``multiValueHeaders`` and ``cookies``."""
    pairs: list[tuple[str, str]] = []
    for name, value in (result.get("headers") or {}).items():
        pairs.append(_checked_header(name, value))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        for value in values if isinstance(values, list) else [values]:
            pair = _checked_header(name, value)
            if pair not in pairs:
                pairs.append(pair)
    pairs.extend(_checked_header("set-cookie", cookie) for cookie in result.get("cookies") or [])
    return [(name, value) for name, value in pairs if name.lower() not in _HOP_BY_HOP]


def response_from_result(result: Any) -> HttpResponse:
    """Turn a handler's return value into the HTTP response API Gateway would send.

    Args:
        result: The handler's return value. A dict with ``statusCode`` is a payload 2.0
            response; anything else (API Gateway's inference rule) is sent as 200 JSON.

    Returns:
        The response to write.

    Raises:
        ValueError: The response is malformed (bad status, non-string body, bad base64,
            header with a line break); API Gateway answers those with 500.
        TypeError: The result is not JSON-serialisable.
    """
    if not isinstance(result, Mapping) or "statusCode" not in result:
        return json_response(200, result)
    status = int(result["statusCode"])
    if not 100 <= status <= 599:
        raise ValueError(f"statusCode out of range: {status}")
    body = result.get("body")
    if body is None:
        raw = b""
    elif not isinstance(body, str):
        raise ValueError(f"body must be a string, got {type(body).__name__}")
    elif result.get("isBase64Encoded"):
        raw = base64.b64decode(body, validate=True)
    else:
        raw = body.encode("utf-8")
    return HttpResponse(status, _response_headers(result), raw)


class _BodyTooLarge(Exception):
    """The request body exceeds the gateway's limit."""


class _ClientGone(Exception):
    """The client disconnected before its request was read."""


async def _read_body(receive: Receive, headers: Mapping[str, str], limit: int) -> bytes:
    """The request body (uvicorn has already undone chunked framing).

    Raises:
        _BodyTooLarge: the body is over ``limit``; up to ``_MAX_DRAIN_BYTES`` of it were read
            and dropped so that the client, still sending, reads the 413 that follows.
        _ClientGone: the client disconnected.
    """
    declared = headers.get("content-length", "")
    too_large = declared.isdigit() and int(declared) > limit
    parts: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        total += len(chunk)
        too_large = too_large or total > limit
        if not too_large:
            parts.append(chunk)
        if not message.get("more_body") or total > _MAX_DRAIN_BYTES:
            break
    if too_large:
        raise _BodyTooLarge
    return b"".join(parts)


class LocalGateway:
    """Serves one Lambda handler over HTTP as API Gateway HTTP API would, on uvicorn.

    Example:
        >>> gateway = LocalGateway(handler, port=0).start()
        >>> gateway.url
        'http://127.0.0.1:41234'
        >>> gateway.stop()
    """

    def __init__(
        self,
        handler: Handler | str,
        host: str = "127.0.0.1",
        port: int = 3000,
        function_name: str = "messages",
        timeout_s: float = 30,
        max_body_bytes: int = API_GATEWAY_MAX_BODY_BYTES,
        memory_mb: int = 1024,
        *,
        concurrency: int = 1,
        authorizer: Authorizer | None = None,
        public_routes: Collection[tuple[str, str]] = (),
        page_dir: Path | None = None,
        page_token: Callable[[], str] | None = None,
    ) -> None:
        """Configure the gateway; nothing listens until :meth:`start`.

        Args:
            handler: The Lambda handler, ``handler(event, context)``, run in this process one
                event at a time; or its name, ``"module:attribute"``, run in ``concurrency``
                child processes, each a container with its own init phase (``infra.local.containers``).
            host: Interface to listen on.
            port: TCP port; 0 picks a free one (see :attr:`port` after start).
            function_name: Function name put into each invocation's context.
            timeout_s: Function timeout in seconds, as seen by ``get_remaining_time_in_millis``.
            max_body_bytes: Largest request body passed on; larger ones get 413 (bytes).
            memory_mb: Memory size reported in the context, in MiB.
            concurrency: Containers running events at the same time (``LOCAL_CONCURRENCY``);
                above 1, ``handler`` must be a name.
            authorizer: Called with the request's folded lowercase headers before each
                invocation, as API Gateway's JWT authorizer: a dict goes into the event's
                ``requestContext.authorizer`` (``{"jwt": {"claims": {...}, "scopes": [...]}}``);
                ``None`` answers ``401 {"message": "Unauthorized"}`` without invoking. Without
                an authorizer every request is invoked.
            public_routes: ``(METHOD, path)`` pairs the authorizer does not guard (a route with
                authorizer NONE, e.g. ``("GET", "/health")``).
            page_dir: A folder with a static page (``web/``): ``GET /`` is its ``index.html``,
                ``GET /web/<file>`` its files (see the module docstring).
            page_token: Mints the token put into the page for a browser on this machine.

        Raises:
            ValueError: ``concurrency`` is below 1, or above 1 with a handler that is not a name.
        """
        if isinstance(handler, str):
            self._containers: Containers = ProcessContainers(handler, concurrency, function_name, timeout_s, memory_mb)
        elif concurrency == 1:
            self._containers = InProcessContainer(handler, function_name, timeout_s, memory_mb)
        else:
            raise ValueError("concurrency above 1 needs the handler's name (module:attribute): one process each")
        self._host = host
        self._port = port
        self.function_name = function_name
        self.timeout_s = timeout_s
        self.max_body_bytes = max_body_bytes
        self.memory_mb = memory_mb
        self.authorizer = authorizer
        self.public_routes = frozenset((method.upper(), path) for method, path in public_routes)
        self.page_dir = page_dir
        self.page_token = page_token
        # One thread per container: it waits for its event while uvicorn's loop serves the others.
        self._executor = ThreadPoolExecutor(self._containers.concurrency, thread_name_prefix=f"invoke-{function_name}")
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._bound_port: int | None = None
        self._streams: dict[str, _Stream] = {}  # open streamed replies, by connection id

    @property
    def port(self) -> int:
        """The bound TCP port once started (the configured one before)."""
        return self._bound_port if self._bound_port is not None else self._port

    @property
    def url(self) -> str:
        """Base URL to reach the gateway, e.g. ``http://127.0.0.1:3000``."""
        host = "127.0.0.1" if self._host in ("", "0.0.0.0") else self._host
        return f"http://{host}:{self.port}"

    def start(self) -> LocalGateway:
        """Start the containers, bind the port and serve in a background thread.

        Returns:
            The gateway itself, for chaining.

        Raises:
            RuntimeError: Already started, or a container's init phase failed.
            OSError: The port cannot be bound.
        """
        if self._server is not None:
            raise RuntimeError("gateway already started")
        sock = _listening_socket(self._host)
        try:
            sock.bind((self._host, self._port))  # here, so that a port in use is an OSError to the caller
            self._bound_port = sock.getsockname()[1]
            os.environ[MANAGEMENT_ENDPOINT_ENV] = self.url  # streamed replies post here (before containers start)
            self._containers.start()
        except BaseException:
            sock.close()
            self._bound_port = None
            raise
        self._server = uvicorn.Server(_server_config(self))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=f"gateway-{self.function_name}", daemon=True
        )
        self._thread.start()
        while not self._server.started and self._thread.is_alive():
            time.sleep(0.01)
        logger.info("gateway for %s listening on %s", self.function_name, self.url)
        return self

    def stop(self) -> None:
        """Stop serving, release the port and stop the containers; safe to call twice."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.should_exit = True
        if thread is not None:
            thread.join(timeout=10)
        self._containers.close()
        self._server = self._thread = None
        self._bound_port = None
        logger.info("gateway for %s stopped", self.function_name)

    def __enter__(self) -> LocalGateway:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI application: one HTTP request, one invocation (or API Gateway's own answer)."""
        if scope["type"] != "http":
            return
        started = time.monotonic()
        query = scope["query_string"].decode("latin-1")
        target = scope["raw_path"].decode("latin-1") + (f"?{query}" if query else "")
        if scope["path"].startswith(_CONNECTIONS):
            await self._post_to_connection(scope, receive, send)
            return
        page = self._page(scope)
        if page is not None:
            await _write(send, page, scope["method"])
            return
        try:
            response = await self._respond(scope, receive, target, send)
        except _ClientGone:
            return
        if response is None:  # streamed
            elapsed_ms = (time.monotonic() - started) * 1000
            logger.info("%s %s -> streamed (%.1f ms)", scope["method"], target, elapsed_ms)
            return
        head = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in response.headers]
        head.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": head})
        body = b"" if scope["method"] == "HEAD" else response.body  # h11 frames a HEAD answer as empty
        await send({"type": "http.response.body", "body": body})
        elapsed_ms = (time.monotonic() - started) * 1000
        logger.info("%s %s -> %d (%.1f ms)", scope["method"], target, response.status, elapsed_ms)

    async def _respond(self, scope: Scope, receive: Receive, target: str, send: Send) -> HttpResponse | None:
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        try:
            body = await _read_body(receive, dict(headers), self.max_body_bytes)
        except _BodyTooLarge:
            return json_response(413, {"message": "Request Entity Too Large"})
        client = scope.get("client") or ("127.0.0.1", 0)
        event = build_http_event(
            method=scope["method"],
            target=target,
            headers=headers,
            body=body,
            source_ip=client[0],
            server_port=self.port,
            protocol=f"HTTP/{scope['http_version']}",
        )
        refused = self._authorize(event)
        if refused is not None:
            return refused
        if event["requestContext"]["http"]["method"] == "POST" and "text/event-stream" in event["headers"].get(
            "accept", ""
        ):
            return await self._stream(event, receive, send)
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.invoke, event)

    async def _stream(self, event: dict[str, Any], receive: Receive, send: Send) -> HttpResponse | None:
        """Invoke with a connection id and write what the function posts to it as server-sent events.

        Returns:
            ``None`` once streamed; the ordinary response when the function posted nothing.
        """
        connection_id = secrets.token_urlsafe(16)
        stream = _Stream()
        self._streams[connection_id] = stream
        event["requestContext"]["connectionId"] = connection_id
        loop = asyncio.get_running_loop()
        invocation = loop.run_in_executor(self._executor, self.invoke, event)
        watcher = asyncio.ensure_future(_watch_disconnect(receive, stream))
        started = False
        try:
            while True:
                getter = asyncio.ensure_future(stream.frames.get())
                waiting: set[asyncio.Future[Any]] = {getter, invocation}
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                started = await self._send_frame(send, stream, getter.result(), started, event)
            response = await invocation
            while not stream.frames.empty():
                started = await self._send_frame(send, stream, stream.frames.get_nowait(), started, event)
        finally:
            stream.gone = True
            self._streams.pop(connection_id, None)
            watcher.cancel()
        if not started:
            return response
        if not stream.disconnected:
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": b""})
        return None

    async def _send_frame(
        self, send: Send, stream: _Stream, frame: bytes, started: bool, event: dict[str, Any]
    ) -> bool:
        """Write one posted frame as a server-sent event (the response's head first); ``True`` once started."""
        if stream.disconnected:
            return started
        try:
            if not started:
                head = [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    (b"apigw-requestid", str(event["requestContext"]["requestId"]).encode("latin-1")),
                ]
                await send({"type": "http.response.start", "status": 200, "headers": head})
            await send({"type": "http.response.body", "body": _sse(frame), "more_body": True})
        except Exception:  # the client went away while we wrote
            stream.disconnected = stream.gone = True
        return True

    def _page(self, scope: Scope) -> HttpResponse | None:
        """The static page's answer to ``GET /`` or ``GET /web/<file>``; ``None`` for any other request."""
        path, method = scope["path"], scope["method"]
        if self.page_dir is None or method not in ("GET", "HEAD") or not (path == "/" or path.startswith("/web/")):
            return None
        name = "index.html" if path == "/" else path[len("/web/") :]
        files = {p.name: p for p in self.page_dir.iterdir() if p.is_file()}  # no paths: no traversal
        if name not in files:
            return json_response(404, {"message": "Not Found"})
        body = files[name].read_bytes()
        if name == "index.html" and self.page_token is not None and _on_this_machine(scope):
            meta = f'<meta name="agent-token" content="{self.page_token()}">'.encode()
            body = body.replace(b'<meta name="agent-token" content="">', meta, 1)
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        headers = [
            (
                "content-type",
                f"{kind}; charset=utf-8" if kind.startswith("text/") or kind.endswith("javascript") else kind,
            ),
            ("cache-control", "no-store"),  # the page may hold a token
            ("content-security-policy", "default-src 'self'; style-src 'self'; script-src 'self'"),
            ("x-content-type-options", "nosniff"),
        ]
        return HttpResponse(200, headers, body)

    async def _post_to_connection(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The Management API's ``POST /@connections/{id}``: 200, or 410 ``GoneException`` (local callers only)."""
        headers = dict((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"])
        try:
            body = await _read_body(receive, headers, API_GATEWAY_MAX_BODY_BYTES)
        except (_BodyTooLarge, _ClientGone):
            return
        client = (scope.get("client") or ("", 0))[0]
        connection_id = unquote(scope["path"][len(_CONNECTIONS) :])
        stream = self._streams.get(connection_id)
        if scope["method"] != "POST" or client not in ("127.0.0.1", "::1"):
            response = json_response(403, {"message": "Forbidden"})
        elif stream is None or stream.gone:
            response = json_response(410, {"message": "GoneException"})
            response.headers.append(("x-amzn-errortype", "GoneException"))
        else:
            stream.frames.put_nowait(body)
            response = HttpResponse(200)
        head = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in response.headers]
        head.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": head})
        await send({"type": "http.response.body", "body": response.body})

    def _authorize(self, event: dict[str, Any]) -> HttpResponse | None:
        """API Gateway's authorizer step: ``None`` to go on (the claims put in the event), else the answer."""
        route = (event["requestContext"]["http"]["method"], event["rawPath"])
        if self.authorizer is None or route in self.public_routes:
            return None
        try:
            granted = self.authorizer(event["headers"])
        except Exception:
            logger.exception("the authorizer of %s failed", self.function_name)
            return _internal_error()
        if granted is None:
            return json_response(401, {"message": "Unauthorized"})
        event["requestContext"]["authorizer"] = granted
        return None

    def invoke(self, event: dict[str, Any]) -> HttpResponse:
        """Run the handler on one event, on an idle container (one event at a time each).

        Args:
            event: API Gateway payload 2.0 event.

        Returns:
            The HTTP response; 500 ``Internal Server Error`` when the handler raises, its
            container dies, or it returns a malformed response, as API Gateway does.
        """
        try:
            result = self._containers.invoke(event)
        except HandlerFailed:
            return _internal_error()  # logged where it failed
        try:
            response = response_from_result(result)
        except (TypeError, ValueError):
            logger.exception("handler %s returned a malformed response", self.function_name)
            return _internal_error()
        request_id = event.get("requestContext", {}).get("requestId")
        if request_id:
            response.headers.append(("apigw-requestid", request_id))
        return response


_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})


def _on_this_machine(scope: Scope) -> bool:
    """The client is this machine, and so is the name it used (no DNS rebinding)."""
    client = (scope.get("client") or ("", 0))[0]
    host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]", 1)[0] + "]"
    return client in ("127.0.0.1", "::1") and name.lower() in _LOOPBACK_HOSTS


async def _write(send: Send, response: HttpResponse, method: str) -> None:
    """Write a whole response (an empty body for ``HEAD``)."""
    head = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in response.headers]
    head.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": head})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else response.body})


@dataclass
class _Stream:
    """One streamed reply: the frames posted to its connection, and whether its client is gone."""

    frames: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    gone: bool = False
    disconnected: bool = False


async def _watch_disconnect(receive: Receive, stream: _Stream) -> None:
    """Mark the stream gone when its client disconnects (the body was read already)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            stream.disconnected = stream.gone = True
            return


def _sse(frame: bytes) -> bytes:
    """One server-sent event: ``event:`` the frame's ``type`` (when it is JSON with one), ``data:`` the frame."""
    text = frame.decode("utf-8", errors="replace")
    try:
        kind = json.loads(text).get("type")
    except (ValueError, AttributeError):
        kind = None
    lines = "".join(f"data: {line}\n" for line in text.split("\n"))
    return (f"event: {kind}\n" if isinstance(kind, str) else "").encode() + lines.encode() + b"\n"


def _listening_socket(host: str) -> socket.socket:
    """The gateway's TCP socket, unbound, whose accepted connections send without Nagle's delay.

    asyncio turns Nagle's algorithm off (``TCP_NODELAY``) on the connections it accepts only
    when the listening socket says ``IPPROTO_TCP`` as its protocol; a socket made with the
    default protocol (0) leaves it on. Then uvicorn's two writes of a response (its head, then
    its body) meet the client's delayed ACK: the body waited about 40 ms on Linux. Measured
    (``bench/local_http.py``, scripted model, one client): ``GET /health`` 48 -> 2.1 ms p50 over
    HTTP for 1-4 ms invoked directly; back-to-back message posts 76 -> 39 ms p50 for a 24 ms
    turn. ``TCP_NODELAY`` on the listening socket as well: Linux passes it on to the accepted ones.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _server_config(gateway: LocalGateway) -> uvicorn.Config:
    """uvicorn's settings: h11, no logging set-up of its own, API Gateway's idle timeout."""
    return uvicorn.Config(
        gateway,
        http="h11",
        lifespan="off",
        log_config=None,  # the stack's logging (infra.local.logs) stays as it is
        access_log=False,  # one line per request is logged by the gateway itself
        server_header=False,
        timeout_keep_alive=_KEEP_ALIVE_S,
        timeout_graceful_shutdown=5,
        backlog=_BACKLOG,
    )


def _internal_error() -> HttpResponse:
    """API Gateway's answer when the integration fails."""
    return json_response(500, {"message": "Internal Server Error"})
