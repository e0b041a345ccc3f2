"""JSON responses and the API's one error shape: ``{"error": str, "message": str, "fields"?: [...]}``."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response


def json_response(status: int, body: dict[str, Any]) -> Response[dict[str, Any]]:
    """A JSON response with ``status``."""
    return Response(status_code=status, content_type="application/json", body=body)


def error_response(status: int, error: str, message: str, **extra: Any) -> Response[dict[str, Any]]:
    """An error: ``error`` says what happened (``not_found``...), ``message`` is a sentence for people."""
    return json_response(status, {"error": error, "message": message, **extra})


def invalid_field(field: str, kind: str, message: str, *, location: str = "body") -> Response[dict[str, Any]]:
    """422 naming one invalid field, in the shape of the validation errors of every route."""
    return invalid_fields([{"field": field, "location": location, "type": kind, "message": message}])


def invalid_fields(fields: list[dict[str, Any]]) -> Response[dict[str, Any]]:
    """422 naming each invalid field (``field``, ``location``, ``type``, ``message``)."""
    names = ", ".join(str(f["field"]) for f in fields)
    return error_response(422, "validation_error", f"invalid request: {names}", fields=fields)
