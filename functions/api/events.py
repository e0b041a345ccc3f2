"""The API Gateway HTTP API event (payload 2.0) before the resolver sees it."""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from typing import Any

#: ``/agents/{agent}/...``: the agent a request names.
_AGENT_PATH = re.compile(r"^/agents/([^/]+)")
#: ``POST /agents/{agent}/messages``: the route whose failures count as ``MessageErrors``.
_MESSAGE_ROUTE = re.compile(r"^/agents/[^/]+/messages/?$")


def as_json(event: dict[str, Any]) -> dict[str, Any]:
    """Every body of this API is JSON text, whatever the Content-Type says.

    ``curl -d`` labels its body ``application/x-www-form-urlencoded``: Powertools would parse
    that as a form, and API Gateway HTTP APIs base64-encode it (``isBase64Encoded``), as they do
    every body whose type is not text. So the body is decoded here, once, for every route.

    Raises:
        ValueError: the body is marked base64 but is not base64 of UTF-8 text.
    """
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    request = {**event, "headers": {**headers, "content-type": "application/json"}}
    if event.get("isBase64Encoded") and event.get("body"):
        request.update(body=base64.b64decode(event["body"], validate=True).decode("utf-8"), isBase64Encoded=False)
    return request


def body_size(event: dict[str, Any]) -> int:
    """The body's size in bytes; for a base64 body, computed from its length without decoding it
    (exact for valid base64; a body that is not base64 is refused later, with 400)."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return len(body) * 3 // 4 - (len(body) - len(body.rstrip("=")))
    return len(body.encode())


def agent_ref(event: dict[str, Any]) -> str | None:
    """The ``{agent}`` of the request's path (URL-decoded), or ``None`` for other paths."""
    path = event.get("rawPath") or ((event.get("requestContext") or {}).get("http") or {}).get("path") or ""
    match = _AGENT_PATH.match(path)
    return urllib.parse.unquote(match.group(1)) if match else None


def route_key(event: dict[str, Any]) -> tuple[str, str]:
    """``(method, path)`` of the request, e.g. ``("GET", "/health")``."""
    http = (event.get("requestContext") or {}).get("http") or {}
    return str(http.get("method") or ""), str(event.get("rawPath") or http.get("path") or "")


def is_message_post(event: dict[str, Any]) -> bool:
    """``POST /agents/{agent}/messages``: the request ``MessageErrors`` counts."""
    http = (event.get("requestContext") or {}).get("http") or {}
    return http.get("method") == "POST" and bool(_MESSAGE_ROUTE.match(http.get("path") or ""))


def plain_error(status: int, error: str, message: str) -> dict[str, Any]:
    """An error response built without the resolver (before the request reaches it)."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"error": error, "message": message}),
    }
