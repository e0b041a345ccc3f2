"""A local stand-in for API Gateway HTTP API (payload format 2.0) in front of one Lambda handler.

Every HTTP request becomes the event API Gateway would send to the function
(``version "2.0"``, ``routeKey "$default"``), the handler is called with a fresh
:class:`~infra.local.lambda_context.LambdaContext`, and its payload 2.0 response is written
back. Behaviour that belongs to API Gateway itself is reproduced too: bodies over its 10 MB
limit are refused with 413 without invoking the function, a failing function becomes
``500 {"message": "Internal Server Error"}``, and a result without ``statusCode`` becomes a
200 JSON response.

Invocations are serialised: one Lambda container handles one event at a time, and the
handlers rely on that (their event loop and pool are not thread-safe).
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

from infra.local.lambda_context import LOCAL_ACCOUNT_ID, new_context

logger = logging.getLogger(__name__)

#: A Lambda handler: ``handler(event, context) -> result``.
Handler = Callable[[dict[str, Any], Any], Any]

#: API Gateway's payload limit for HTTP APIs: 10 MB.
API_GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024

#: An oversized body up to this size is read and thrown away so the client sees the 413;
#: beyond it the connection is simply closed rather than spending time on it.
_MAX_DRAIN_BYTES = 64 * 1024 * 1024
_DRAIN_CHUNK_BYTES = 64 * 1024

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


class _GatewayServer(ThreadingHTTPServer):
    """The HTTP server, carrying a reference to its gateway for the request handlers."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], gateway: LocalGateway) -> None:
        self.gateway = gateway
        super().__init__(address, _GatewayRequestHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log connection errors instead of printing them to stderr."""
        logger.warning("error serving %s", client_address, exc_info=True)


class _BodyTooLarge(Exception):
    """The request body exceeds the gateway's limit."""


class _GatewayRequestHandler(BaseHTTPRequestHandler):
    """Turns each HTTP request into one invocation of the gateway's handler."""

    protocol_version = "HTTP/1.1"  # keep-alive, as API Gateway offers
    server_version = "agent-runtime-local-gateway"
    sys_version = ""
    timeout = 60  # seconds an idle keep-alive connection (or a stalled upload) may hold a thread
    server: _GatewayServer

    def do_GET(self) -> None:  # noqa: N802 (BaseHTTPRequestHandler's naming)
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        """Route the stdlib's access log through ``logging`` at debug level."""
        logger.debug("%s " + format, self.address_string(), *args)

    def _serve(self) -> None:
        gateway = self.server.gateway
        started = time.monotonic()
        try:
            body = self._read_body(gateway.max_body_bytes)
        except _BodyTooLarge:
            response = json_response(413, {"message": "Request Entity Too Large"})
        except ValueError as exc:
            self.close_connection = True  # framing is unknown: do not reuse the connection
            response = json_response(400, {"message": f"Bad Request: {exc}"})
        else:
            event = build_http_event(
                method=self.command,
                target=self.path,
                headers=list(self.headers.items()),
                body=body,
                source_ip=self.client_address[0],
                server_port=self.server.server_address[1],
                protocol=self.request_version,
            )
            response = gateway.invoke(event)
        self._write(response)
        logger.info(
            "%s %s -> %d (%.1f ms)",
            self.command,
            self.path,
            response.status,
            (time.monotonic() - started) * 1000,
        )

    def _read_body(self, limit: int) -> bytes:
        """Read the request body, by Content-Length or chunked.

        Args:
            limit: Largest accepted body, in bytes.

        Returns:
            The body bytes (empty when there is none).

        Raises:
            _BodyTooLarge: The body is over ``limit``.
            ValueError: The framing headers are invalid.
        """
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        length_header = self.headers.get("Content-Length")
        length = int(length_header) if length_header else 0
        if length < 0:
            raise ValueError("negative Content-Length")
        if length > limit:
            self._discard(length)
            raise _BodyTooLarge
        return self.rfile.read(length)

    def _discard(self, length: int) -> None:
        """Read and drop ``length`` bytes so the client can read the error that follows."""
        if length > _MAX_DRAIN_BYTES:
            self.close_connection = True
            return
        while length > 0:
            chunk = self.rfile.read(min(_DRAIN_CHUNK_BYTES, length))
            if not chunk:
                break
            length -= len(chunk)

    def _read_chunked(self, limit: int) -> bytes:
        """Decode a ``Transfer-Encoding: chunked`` body (the stdlib server does not)."""
        parts: list[bytes] = []
        total = 0
        while True:
            size_field = self.rfile.readline(1024).split(b";", 1)[0].strip()
            if not size_field:
                raise ValueError("malformed chunk size")
            size = int(size_field, 16)
            if size == 0:
                break
            total += size
            if total > limit:
                self.close_connection = True  # rest of the stream is left unread
                raise _BodyTooLarge
            parts.append(self.rfile.read(size))
            self.rfile.readline(8)  # CRLF after each chunk
        # Trailers end with an empty line.
        while self.rfile.readline(65536).strip():
            pass
        return b"".join(parts)

    def _write(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)


class LocalGateway:
    """Serves one Lambda handler over HTTP as API Gateway HTTP API would.

    Example:
        >>> gateway = LocalGateway(handler, port=0).start()
        >>> gateway.url
        'http://127.0.0.1:41234'
        >>> gateway.stop()
    """

    def __init__(
        self,
        handler: Handler,
        host: str = "127.0.0.1",
        port: int = 3000,
        function_name: str = "messages",
        timeout_s: float = 30,
        max_body_bytes: int = API_GATEWAY_MAX_BODY_BYTES,
        memory_mb: int = 1024,
    ) -> None:
        """Configure the gateway; nothing listens until :meth:`start`.

        Args:
            handler: The Lambda handler, ``handler(event, context)``.
            host: Interface to listen on.
            port: TCP port; 0 picks a free one (see :attr:`port` after start).
            function_name: Function name put into each invocation's context.
            timeout_s: Function timeout in seconds, as seen by ``get_remaining_time_in_millis``.
            max_body_bytes: Largest request body passed on; larger ones get 413 (bytes).
            memory_mb: Memory size reported in the context, in MiB.
        """
        self._handler = handler
        self._host = host
        self._port = port
        self.function_name = function_name
        self.timeout_s = timeout_s
        self.max_body_bytes = max_body_bytes
        self.memory_mb = memory_mb
        # One container runs one event at a time; the handler's event loop depends on it.
        self._invoke_lock = threading.Lock()
        self._server: _GatewayServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound TCP port once started (the configured one before)."""
        return self._server.server_address[1] if self._server else self._port

    @property
    def url(self) -> str:
        """Base URL to reach the gateway, e.g. ``http://127.0.0.1:3000``."""
        host = "127.0.0.1" if self._host in ("", "0.0.0.0") else self._host
        return f"http://{host}:{self.port}"

    def start(self) -> LocalGateway:
        """Bind the port and serve in a background thread.

        Returns:
            The gateway itself, for chaining.

        Raises:
            RuntimeError: Already started.
            OSError: The port cannot be bound.
        """
        if self._server is not None:
            raise RuntimeError("gateway already started")
        self._server = _GatewayServer((self._host, self._port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"gateway-{self.function_name}",
            daemon=True,
        )
        self._thread.start()
        logger.info("gateway for %s listening on %s", self.function_name, self.url)
        return self

    def stop(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None
        logger.info("gateway for %s stopped", self.function_name)

    def __enter__(self) -> LocalGateway:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def invoke(self, event: dict[str, Any]) -> HttpResponse:
        """Run the handler on one event, one invocation at a time.

        Args:
            event: API Gateway payload 2.0 event.

        Returns:
            The HTTP response; 500 ``Internal Server Error`` when the handler raises or
            returns a malformed response, as API Gateway does.
        """
        with self._invoke_lock:
            # The context is made under the lock: time spent queued is not the function's.
            context = new_context(self.function_name, self.timeout_s, self.memory_mb)
            started = time.monotonic()
            try:
                result = self._handler(event, context)
            except Exception:
                logger.exception("handler %s failed (request %s)", self.function_name, context.aws_request_id)
                return _internal_error()
            elapsed_s = time.monotonic() - started
        if elapsed_s > self.timeout_s:
            logger.warning(
                "handler %s ran %.1f s, over its %.1f s timeout: Lambda would have stopped it",
                self.function_name,
                elapsed_s,
                self.timeout_s,
            )
        try:
            response = response_from_result(result)
        except (TypeError, ValueError):
            logger.exception("handler %s returned a malformed response", self.function_name)
            return _internal_error()
        request_id = event.get("requestContext", {}).get("requestId")
        if request_id:
            response.headers.append(("apigw-requestid", request_id))
        return response


def _internal_error() -> HttpResponse:
    """API Gateway's answer when the integration fails."""
    return json_response(500, {"message": "Internal Server Error"})
