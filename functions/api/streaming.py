"""Streamed replies: the messages function posts each chunk to a connection through the API Gateway Management API.

How the function expresses a streamed response, deployed and locally alike: the event names a
connection (``requestContext.connectionId``) and the function calls ``post_to_connection``
(``apigatewaymanagementapi``) with one JSON frame per piece, then returns its ordinary answer:

- ``{"type": "chunk", "text": "..."}``: the reply's text as the model writes it
  (``on_stream_chunk`` of ``Orchestrator.handle_message``);
- ``{"type": "result", "status": 200, "body": {...}}``: last, the stored result, exactly the
  JSON answer (``messageId``, ``roomId``, ``responses`` with their ``actions``); an error is
  ``{"type": "error", "status": 4xx/5xx, "body": {"error", "message"...}}``.

Deployed, the connection is an API Gateway **WebSocket API**'s (``template.yaml``,
``docs/deploy.md``: "Streamed replies"): a client sends ``{"action": "sendMessage", "agent":
"eliza", "text": "..."}`` and receives the frames; ``websocket_to_http`` turns that event into
the ``POST /agents/{agent}/messages`` event the routes serve, so one code path runs. Locally,
the gateway (``infra.local.gateway``) plays both parts for ``Accept: text/event-stream``: it
gives the event a connection id, serves the Management API's ``POST /@connections/{id}``, and
writes each frame as a server-sent event.

A client that goes away mid-stream costs nothing but the remaining frames: the first
``GoneException`` (HTTP 410) stops the posting, the turn goes on, and its reply is stored as
usual. A frame that fails otherwise is logged and the turn goes on too: a stream is a courtesy,
the stored reply is the record.

Endpoint: ``AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI`` when set (the local stack sets its
gateway), else ``https://{requestContext.domainName}/{requestContext.stage}`` of the event, as
AWS documents for WebSocket APIs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from core import aws

logger = logging.getLogger(__name__)

#: The header a client sends to ask for a stream (server-sent events).
EVENT_STREAM = "text/event-stream"
#: WebSocket route whose messages are message posts (``template.yaml``'s route key).
SEND_MESSAGE_ROUTE = "sendMessage"


@dataclass
class ConnectionStream:
    """Frames to one connection, in order; stops quietly when the client is gone.

    Args:
        client: An ``apigatewaymanagementapi`` client aimed at the connection's API.
        connection_id: The connection.

    Attributes:
        gone: The client went away (a post answered 410); nothing more is posted.
        frames: Frames posted (for logs and tests).
        first_chunk_s: ``time.monotonic()`` of the first chunk posted, if any.
    """

    client: Any
    connection_id: str
    gone: bool = False
    frames: int = 0
    first_chunk_s: float | None = None
    _chunks: list[str] = field(default_factory=list)

    def post(self, frame: Mapping[str, Any]) -> bool:
        """Post one frame; ``False`` when the client is gone (or the post failed)."""
        if self.gone:
            return False
        try:
            self.client.post_to_connection(ConnectionId=self.connection_id, Data=json.dumps(frame).encode())
        except self.client.exceptions.GoneException:
            logger.info("stream client went away; the turn goes on and its reply is stored")
            self.gone = True
            return False
        except Exception:
            logger.warning("could not post a stream frame; the turn goes on", exc_info=True)
            return False
        self.frames += 1
        return True

    def chunk(self, text: str) -> None:
        """``on_stream_chunk``: one piece of the reply's text."""
        if not text:
            return
        if self.first_chunk_s is None:
            self.first_chunk_s = time.monotonic()
        self._chunks.append(text)
        self.post({"type": "chunk", "text": text})

    @property
    def streamed_text(self) -> str:
        """Every chunk given, joined (what the client was sent, unless it went away)."""
        return "".join(self._chunks)

    def finish(self, response: Mapping[str, Any]) -> None:
        """The last frame: the function's answer (``result`` for 2xx, else ``error``), as JSON."""
        status = int(response.get("statusCode", 200))
        try:
            body = json.loads(response.get("body") or "null")
        except ValueError:
            body = None
        self.post({"type": "result" if status < 400 else "error", "status": status, "body": body})


_current: ContextVar[ConnectionStream | None] = ContextVar("stream", default=None)


def chunk_callback() -> Any:
    """``on_stream_chunk`` for the request being served: the stream's ``chunk``, or ``None`` (no stream)."""
    stream = _current.get()
    return None if stream is None else stream.chunk


@contextlib.contextmanager
def streaming(stream: ConnectionStream | None) -> Iterator[ConnectionStream | None]:
    """Make ``stream`` the one ``chunk_callback`` returns while the block runs (one request)."""
    token = _current.set(stream)
    try:
        yield stream
    finally:
        _current.reset(token)


def stream_for(event: Mapping[str, Any]) -> ConnectionStream | None:
    """The stream an event asks for: a connection id and either a WebSocket message or ``Accept: text/event-stream``."""
    context = event.get("requestContext") or {}
    connection_id = context.get("connectionId")
    if not isinstance(connection_id, str) or not connection_id:
        return None
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    if context.get("eventType") != "MESSAGE" and EVENT_STREAM not in headers.get("accept", ""):
        return None
    return ConnectionStream(_client(endpoint(context)), connection_id)


def endpoint(context: Mapping[str, Any]) -> str:
    """The Management API endpoint for the event's API (see the module docstring)."""
    configured = os.environ.get("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI")
    if configured:
        return configured
    return f"https://{context.get('domainName')}/{context.get('websocketStage') or context.get('stage')}"


_clients: dict[str, Any] = {}


def _client(url: str) -> Any:
    """One Management API client per endpoint per container (made on first use: most requests never stream)."""
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = aws.client("apigatewaymanagementapi", endpoint_url=url)
    return client


def websocket_to_http(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``POST /agents/{agent}/messages`` event of a WebSocket ``sendMessage`` frame; ``None`` for other events.

    The frame is ``{"action": "sendMessage", "agent": "<id or name>", ...the message body}``; the
    caller is what the ``$connect`` authorizer returned (a Lambda authorizer's context: ``claims`` as
    JSON), or the IAM principal that signed ``$connect`` (``requestContext.identity.userArn``).

    Raises:
        ValueError: the frame is not a JSON object naming ``agent`` (the caller gets an ``error`` frame).
    """
    context = event.get("requestContext") or {}
    if context.get("eventType") != "MESSAGE" or context.get("routeKey") != SEND_MESSAGE_ROUTE:
        return None
    frame = json.loads(event.get("body") or "null")
    if not isinstance(frame, dict) or not isinstance(frame.get("agent"), str) or not frame["agent"]:
        raise ValueError("a sendMessage frame is a JSON object naming its agent")
    agent = frame.pop("agent")
    frame.pop("action", None)
    authorizer = context.get("authorizer") or {}
    claims = authorizer.get("claims")
    identity = context.get("identity") or {}
    if claims is None and identity.get("userArn"):  # $connect authorised by IAM (SigV4): an admin, as on the HTTP API
        verified: dict[str, Any] = {"iam": {"userArn": identity["userArn"]}}
    else:
        verified = {"jwt": {"claims": json.loads(claims) if isinstance(claims, str) else claims or {}, "scopes": None}}
    path = f"/agents/{agent}/messages"
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "accept": EVENT_STREAM},
        "requestContext": {
            "accountId": context.get("accountId"),
            "apiId": context.get("apiId"),
            "domainName": context.get("domainName"),
            "stage": "$default",  # Powertools strips a named stage from the path; the routes see none
            "websocketStage": context.get("stage"),
            "requestId": context.get("requestId"),
            "connectionId": context.get("connectionId"),
            "eventType": "MESSAGE",
            "routeKey": "$default",
            "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "", "userAgent": ""},
            "authorizer": verified,
            "timeEpoch": context.get("requestTimeEpoch"),
        },
        "body": json.dumps(frame),
        "isBase64Encoded": False,
    }
