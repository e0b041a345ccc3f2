"""The API's OpenAPI 3.1 document, from the routes' types, with the API's own error shape.

Served at ``GET /openapi.json`` when ``SERVE_OPENAPI`` is true (the local stack sets it;
deployed, the route answers 404 like any unknown path).
"""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from functions.api.agents import CHARACTER_BODY, CHARACTER_PATCH_BODY

_API_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "ApiError",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "What happened: `validation_error`, `not_found`..."},
        "message": {"type": "string", "description": "A sentence for people; no internals."},
        "fields": {
            "type": "array",
            "description": "For 422: one entry per invalid field.",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "location": {"type": "string"},
                    "type": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}


#: Operations without a token (``functions.api.app.PUBLIC_ROUTES``, as OpenAPI spells paths).
_PUBLIC = frozenset({("GET", "/health")})
#: ``POST /agents/{agent}/messages``'s header, read by the route itself (``functions.api.messages``).
_IDEMPOTENCY_KEY: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Makes the post idempotent (or send `messageId`, not both): a retry replays the stored reply.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
}


#: 401 comes from API Gateway's JWT authorizer (``{"message": "Unauthorized"}``) before the function
#: runs; the function's own (an event without a verified caller) is an ``ApiError``: both have ``message``.
_UNAUTHORIZED: dict[str, Any] = {
    "description": "No valid bearer token",
    "content": {
        "application/json": {
            "schema": {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}}
        }
    },
}


def openapi_enabled() -> bool:
    """``SERVE_OPENAPI`` is true (read per request, so a test or the local stack can turn it on)."""
    return os.environ.get("SERVE_OPENAPI", "").strip().lower() in {"1", "true", "yes", "on"}


def openapi_json(app: APIGatewayHttpResolver, version: str) -> str:
    """The OpenAPI document of ``app``'s routes.

    Powertools documents its own validation error shape; this API answers every error with
    ``ApiError`` (``functions.api.responses``), so the document says that instead.
    """
    document = json.loads(
        app.get_openapi_json_schema(
            title="Serverless Agent Runtime API",
            version=version,
            summary="An elizaOS-style agent runtime on AWS Lambda.",
            description=(
                "Talk to agents (characters), read their conversations, search their memories and"
                " schedule their tasks. Every route but `GET /health` needs a bearer token (deployed:"
                " your identity provider's JWT; locally: `agent token`). Every error is an `ApiError`:"
                " 400 bad JSON, 401 no valid token, 403 the caller's role does not allow it, 404 unknown"
                " agent, room or route (or a room the caller may not see), 413 body too large, 422"
                " invalid field (named in `fields`), 502 model failure, 503 database briefly unavailable"
                " (with `Retry-After`)."
            ),
        )
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas["ApiError"] = _API_ERROR_SCHEMA
    document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
    document["security"] = [{"bearer": []}]
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}}
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = {"description": "Invalid request: the fields are named in `fields`", **error}
            if (method.upper(), path) in _PUBLIC:
                operation["security"] = []
            else:
                responses["401"] = _UNAUTHORIZED
            responses["default"] = {"description": "Error", **error}
    messages = document.get("paths", {}).get("/agents/{agent}/messages", {}).get("post")
    if messages is not None:
        messages.setdefault("parameters", []).append(_IDEMPOTENCY_KEY)
    for method, model, schema in (
        ("put", "AgentCharacter", CHARACTER_BODY),
        ("patch", "AgentChanges", CHARACTER_PATCH_BODY),
    ):
        operation = document.get("paths", {}).get("/agents/{agent}", {}).get(method)
        if operation is not None:  # the routes read their body themselves (one character document)
            schemas[model] = schema
            ref = {"$ref": f"#/components/schemas/{model}"}
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref}}}
    return json.dumps(document)
