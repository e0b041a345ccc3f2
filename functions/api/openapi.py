"""The API's OpenAPI 3.1 document, from the routes' types, with the API's own error shape.

Served at ``GET /openapi.json`` when ``SERVE_OPENAPI`` is true (the local stack sets it;
deployed, the route answers 404 like any unknown path).
"""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

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
                " schedule their tasks. Every error is an `ApiError`: 400 bad JSON, 404 unknown agent,"
                " room or route, 413 body too large, 422 invalid field (named in `fields`), 502 model"
                " failure, 503 database briefly unavailable (with `Retry-After`)."
            ),
        )
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas["ApiError"] = _API_ERROR_SCHEMA
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = {"description": "Invalid request: the fields are named in `fields`", **error}
            responses["default"] = {"description": "Error", **error}
    return json.dumps(document)
